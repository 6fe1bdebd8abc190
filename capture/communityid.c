/*
 * communityid.c - Community ID v1 flow hashes (the spec of
 * github.com/corelight/community-id-spec; see decode.h).
 *
 * The hash input, all in network byte order, 4-byte aligned:
 *
 *   seed (2) . saddr (4|16) . daddr (4|16) . proto (1) . 0 (1)
 *            [ . sport (2) . dport (2) ]      ports for TCP, UDP, SCTP,
 *                                             ICMP and ICMPv6 only
 *
 * with the endpoints ordered so that the smaller address (or, for equal
 * addresses, the smaller port) comes first. For ICMP and ICMPv6 the
 * "ports" are the message type and the type of its counterpart (echo
 * request <-> reply and the other pairs Zeek defines), so both halves
 * of an exchange hash alike; a message without a counterpart is one-way:
 * type and code, never reordered. The result is "1:" followed by the
 * base64 (RFC 4648 section 4, padded) of the SHA-1 digest.
 *
 * A packet whose transport header was not decoded (a later fragment, a
 * header cut short) hashes without ports, as Wireshark does; a flow key
 * always hashes its ports (0 for a flow of such packets only).
 */
#include <errno.h>
#include <string.h>

#include "capture/decode.h"
#include "capture/sha1_int.h"
#include "common/fv.h"

#define CID_LEN 32 /* "1:" + 28 base64 characters + NUL, as decode.h asks */

/*
 * The counterpart of an ICMP (RFC 792, RFC 950) or ICMPv6 (RFC 4443,
 * RFC 4861, RFC 2710, RFC 6275) message type, as Zeek's ICMP analyzer
 * and the spec's reference implementation pair them; -1 for one-way
 * messages (errors, redirects, unsolicited reports...).
 */
static int icmp_counterpart(uint8_t proto, uint8_t type)
{
	if (proto == 58) {
		switch (type) {
		case 128: /* echo request -> reply */
			return 129;
		case 129:
			return 128;
		case 130: /* multicast listener query -> report */
			return 131;
		case 131:
			return 130;
		case 133: /* router solicitation -> advertisement */
			return 134;
		case 134:
			return 133;
		case 135: /* neighbor solicitation -> advertisement */
			return 136;
		case 136:
			return 135;
		case 139: /* node information query -> response */
			return 140;
		case 140:
			return 139;
		case 144: /* home agent address discovery request -> reply */
			return 145;
		case 145:
			return 144;
		}
		return -1;
	}
	switch (type) {
	case 8: /* echo -> echo reply */
		return 0;
	case 0:
		return 8;
	case 13: /* timestamp -> timestamp reply */
		return 14;
	case 14:
		return 13;
	case 15: /* information request -> reply */
		return 16;
	case 16:
		return 15;
	case 10: /* router solicitation -> advertisement */
		return 9;
	case 9:
		return 10;
	case 17: /* address mask request -> reply */
		return 18;
	case 18:
		return 17;
	}
	return -1;
}

static void base64(const uint8_t *in, size_t len, char *out)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				  "abcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i;

	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
			     in[i + 2];

		*out++ = tab[v >> 18];
		*out++ = tab[(v >> 12) & 63];
		*out++ = tab[(v >> 6) & 63];
		*out++ = tab[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;

		*out++ = tab[v >> 18];
		*out++ = tab[(v >> 12) & 63];
		*out++ = '=';
		*out++ = '=';
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;

		*out++ = tab[v >> 18];
		*out++ = tab[(v >> 12) & 63];
		*out++ = tab[(v >> 6) & 63];
		*out++ = '=';
	}
	*out = '\0';
}

/*
 * The Community ID of key; have_l4 = 0 when the packet's transport header
 * was not decoded (a later fragment, a truncated header): then, as
 * Wireshark does, the addresses and protocol alone are hashed.
 */
static int community_id(const struct fv_flow_key *key, int have_l4,
			uint8_t icmp_type, uint8_t icmp_code, uint16_t seed,
			char *out, unsigned outlen)
{
	uint8_t buf[2 + 16 + 16 + 2 + 4], digest[FV_SHA1_LEN];
	const uint8_t *a = key->saddr, *b = key->daddr;
	uint16_t pa = key->sport, pb = key->dport;
	size_t alen, n = 0;
	int ports = 0, one_way = 0, cmp, peer;

	if (outlen < CID_LEN)
		return -EINVAL;
	if (key->family == 4)
		alen = 4;
	else if (key->family == 6)
		alen = 16;
	else
		return FV_EFORMAT;

	switch (key->proto) {
	case 6:	  /* TCP */
	case 17:  /* UDP */
	case 132: /* SCTP */
		ports = have_l4;
		break;
	case 1:	 /* ICMP */
	case 58: /* ICMPv6 */
		if (!have_l4)
			break;
		ports = 1;
		pa = icmp_type;
		peer = icmp_counterpart(key->proto, icmp_type);
		if (peer < 0) {
			pb = icmp_code;
			one_way = 1;
		} else {
			pb = (uint16_t)peer;
		}
		break;
	default:
		break;
	}

	/* Smaller (address, port) first, unless the flow is one-way. */
	cmp = memcmp(a, b, alen);
	if (!one_way && (cmp > 0 || (cmp == 0 && ports && pa > pb))) {
		const uint8_t *t = a;
		uint16_t tp = pa;

		a = b;
		b = t;
		pa = pb;
		pb = tp;
	}

	fv_put_be16(buf, seed);
	n = 2;
	memcpy(buf + n, a, alen);
	n += alen;
	memcpy(buf + n, b, alen);
	n += alen;
	buf[n++] = key->proto;
	buf[n++] = 0;
	if (ports) {
		fv_put_be16(buf + n, pa);
		fv_put_be16(buf + n + 2, pb);
		n += 4;
	}
	fv_sha1(buf, n, digest);
	out[0] = '1';
	out[1] = ':';
	base64(digest, sizeof(digest), out + 2);
	return 0;
}

int fv_community_id_key(const struct fv_flow_key *key, uint8_t icmp_type,
			uint8_t icmp_code, uint16_t seed, char *out,
			unsigned outlen)
{
	return community_id(key, 1, icmp_type, icmp_code, seed, out, outlen);
}

int fv_community_id(const struct fv_pkt *pkt, uint16_t seed, char *out,
		    unsigned outlen)
{
	if (!pkt->key.family)
		return FV_EFORMAT;
	return community_id(&pkt->key, !!(pkt->flags & FV_PKT_L4),
			    pkt->icmp_type, pkt->icmp_code, seed, out, outlen);
}
