/*
 * decode.c - one captured frame to a flow key (see decode.h).
 *
 * Every read from the frame goes through have(), which checks that n
 * bytes starting at off lie inside the captured bytes; no length field
 * from the wire is used before it has been checked against what was
 * captured. Layers are decoded from the outside in, and decoding stops
 * at the first IP header's transport header: tunnels are not entered.
 *
 * A frame that ends early is decoded as far as its bytes go and flagged
 * FV_PKT_TRUNC; a field that cannot be right (IPv4 IHL < 5, an IPv4
 * packet on LINKTYPE_IPV6, ...) flags FV_PKT_MALFORMED. The result is a
 * flow key as soon as both IP addresses were read.
 */
#include <string.h>

#include "capture/decode.h"
#include "common/fv.h"

/* LINKTYPE_* values (pcap-linktype(7)); 12 and 14 are the DLT_RAW that
 * pcap_datalink() returns for LINKTYPE_RAW (14 on OpenBSD, else 12). */
#define LT_NULL	      0
#define LT_ETHERNET   1
#define LT_PPP	      9
#define LT_RAW_BSD    12
#define LT_RAW_OBSD   14
#define LT_RAW	      101
#define LT_LOOP	      108
#define LT_LINUX_SLL  113
#define LT_IPV4	      228
#define LT_IPV6	      229
#define LT_NFLOG      239
#define LT_LINUX_SLL2 276

/* Ethertypes (IEEE 802 numbers) and PPP protocol numbers (RFC 1661). */
#define ETH_IPV4       0x0800
#define ETH_IPV6       0x86dd
#define ETH_8021Q      0x8100
#define ETH_8021AD     0x88a8
#define ETH_QINQ_OLD   0x9100
#define ETH_MPLS_UC    0x8847
#define ETH_MPLS_MC    0x8848
#define ETH_PPPOE_SESS 0x8864
#define ETH_PBB_ITAG   0x88e7
#define ETH_VNTAG      0x8926
#define ETH_ETAG       0x893f
#define PPP_IPV4       0x0021
#define PPP_IPV6       0x0057

/* IP protocol numbers (IANA). */
#define IPP_HOPOPTS  0
#define IPP_ICMP     1
#define IPP_TCP	     6
#define IPP_UDP	     17
#define IPP_ROUTING  43
#define IPP_FRAGMENT 44
#define IPP_ESP	     50
#define IPP_AH	     51
#define IPP_ICMPV6   58
#define IPP_NONXT    59
#define IPP_DSTOPTS  60
#define IPP_SCTP     132

/* At most this many IPv6 extension headers are walked (RFC 8200 sets no
 * limit; real stacks stop far earlier, and a bound keeps the walk short). */
#define MAX_EXT_HDRS 16

/* NFLOG (Linux nfnetlink_log as captured by libpcap): a 4-byte header,
 * then TLVs; attribute 9 is the packet from its network header on. */
#define NFLOG_HDR_LEN 4
#define NFULA_PAYLOAD 9

/* A frame being decoded: the bytes, how many were captured, the result. */
struct dec {
	const uint8_t *p;
	uint32_t len;
	struct fv_pkt *pkt;
};

/* True when n bytes at off were captured. */
static int have(const struct dec *d, uint32_t off, uint32_t n)
{
	return off <= d->len && n <= d->len - off;
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (uint16_t)p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void set_flag(struct dec *d, uint32_t f)
{
	d->pkt->flags |= f;
}

/* The offsets in struct fv_pkt are 16 bits: an offset past that cannot be
 * reported, so such a frame is not decoded further. */
static int off_ok(struct dec *d, uint32_t off)
{
	if (off <= UINT16_MAX)
		return 1;
	set_flag(d, FV_PKT_MALFORMED);
	return 0;
}

/* A header of n bytes at off does not fit before end: it ran past the
 * captured bytes (TRUNC), or past the end its IP header gave (MALFORMED). */
static void short_hdr(struct dec *d, uint32_t off, uint32_t n)
{
	set_flag(d, have(d, off, n) ? FV_PKT_MALFORMED : FV_PKT_TRUNC);
}

static void set_payload(struct dec *d, uint32_t off, uint32_t end)
{
	struct fv_pkt *pkt = d->pkt;
	uint32_t n;

	if (off > end || !off_ok(d, off))
		return;
	n = end - off;
	pkt->payload_off = (uint16_t)off;
	pkt->payload_len = n > UINT16_MAX ? UINT16_MAX : (uint16_t)n;
}

/*
 * ICMP (RFC 792) and ICMPv6 (RFC 4443). The key's ports follow decode.h:
 * query/reply pairs that carry an identifier (echo, timestamp,
 * information, address mask; ICMPv6 echo) use it for both ports so the
 * request and its reply form one flow; every other message uses
 * type << 8 | code. An error message's quoted IP header is never read:
 * the flow is that of the ICMP packet itself.
 */
static int icmp_has_id(uint8_t proto, uint8_t type)
{
	if (proto == IPP_ICMPV6)
		return type == 128 || type == 129;
	switch (type) {
	case 0:	 /* echo reply */
	case 8:	 /* echo */
	case 13: /* timestamp */
	case 14: /* timestamp reply */
	case 15: /* information request */
	case 16: /* information reply */
	case 17: /* address mask request (RFC 950) */
	case 18: /* address mask reply */
		return 1;
	}
	return 0;
}

static void decode_icmp(struct dec *d, uint32_t off, uint32_t end)
{
	struct fv_pkt *pkt = d->pkt;
	const uint8_t *h = d->p + off;
	uint16_t port;

	/* Type, code, checksum and the 4-byte rest of header. */
	if (end - off < 8) {
		short_hdr(d, off, 8);
		return;
	}
	pkt->icmp_type = h[0];
	pkt->icmp_code = h[1];
	if (icmp_has_id(pkt->key.proto, h[0]))
		port = fv_be16(h + 4);
	else
		port = (uint16_t)(h[0] << 8 | h[1]);
	pkt->key.sport = pkt->key.dport = port;
	pkt->l4_off = (uint16_t)off;
	set_flag(d, FV_PKT_L4);
	set_payload(d, off + 8, end);
}

/* TCP (RFC 9293 section 3.1): ports, sequence and acknowledgment numbers,
 * the control bits, and the data offset (in 32-bit words, at least 5). */
static void decode_tcp(struct dec *d, uint32_t off, uint32_t end)
{
	struct fv_pkt *pkt = d->pkt;
	const uint8_t *h = d->p + off;
	uint32_t hlen;

	if (end - off < 20) {
		short_hdr(d, off, 20);
		return;
	}
	pkt->key.sport = fv_be16(h);
	pkt->key.dport = fv_be16(h + 2);
	pkt->tcp_seq = fv_be32(h + 4);
	pkt->tcp_ack = fv_be32(h + 8);
	pkt->tcp_flags = h[13];
	pkt->l4_off = (uint16_t)off;
	set_flag(d, FV_PKT_L4);
	hlen = (uint32_t)(h[12] >> 4) * 4;
	if (hlen < 20) {
		set_flag(d, FV_PKT_MALFORMED);
		return;
	}
	if (hlen > end - off) {
		short_hdr(d, off, hlen);
		return;
	}
	set_payload(d, off + hlen, end);
}

/*
 * The transport header at off, the IP payload ending at end (already
 * bounded by the captured bytes). UDP (RFC 768) has an 8-byte header;
 * SCTP (RFC 9260 section 3.1) a 12-byte common header whose first 4
 * bytes are the ports. Other protocols have no ports in the key.
 */
static void decode_l4(struct dec *d, uint32_t off, uint32_t end)
{
	struct fv_pkt *pkt = d->pkt;
	const uint8_t *h = d->p + off;
	uint32_t hlen;

	if (!off_ok(d, off))
		return;
	switch (pkt->key.proto) {
	case IPP_TCP:
		decode_tcp(d, off, end);
		return;
	case IPP_ICMP:
	case IPP_ICMPV6:
		decode_icmp(d, off, end);
		return;
	case IPP_UDP:
		hlen = 8;
		break;
	case IPP_SCTP:
		hlen = 12;
		break;
	default:
		set_payload(d, off, end);
		return;
	}
	if (end - off < hlen) {
		short_hdr(d, off, hlen);
		return;
	}
	pkt->key.sport = fv_be16(h);
	pkt->key.dport = fv_be16(h + 2);
	pkt->l4_off = (uint16_t)off;
	set_flag(d, FV_PKT_L4);
	set_payload(d, off + hlen, end);
}

/*
 * IPv4 (RFC 791 section 3.1). The header must be complete for the
 * addresses; the total length bounds the payload (trailing Ethernet
 * padding is not payload) unless it is 0, which segmentation offload
 * (TSO/GSO) captures carry: then the captured bytes are the packet.
 */
static void decode_ipv4(struct dec *d, uint32_t off)
{
	struct fv_pkt *pkt = d->pkt;
	const uint8_t *h = d->p + off;
	uint32_t ihl, tot, end, frag;

	if (!off_ok(d, off))
		return;
	pkt->l3_off = (uint16_t)off;
	if (!have(d, off, 1)) {
		set_flag(d, FV_PKT_TRUNC);
		return;
	}
	ihl = (uint32_t)(h[0] & 0x0f) * 4;
	if (h[0] >> 4 != 4 || ihl < 20) {
		set_flag(d, FV_PKT_MALFORMED);
		return;
	}
	if (!have(d, off, 20)) {
		set_flag(d, FV_PKT_TRUNC);
		return;
	}
	set_flag(d, FV_PKT_L3);
	pkt->key.family = 4;
	memcpy(pkt->key.saddr, h + 12, 4);
	memcpy(pkt->key.daddr, h + 16, 4);
	pkt->key.proto = h[9];
	pkt->ip_ttl = h[8];

	frag = fv_be16(h + 6);
	if (frag & 0x3fff) { /* MF set or a fragment offset */
		set_flag(d, FV_PKT_FRAG);
		pkt->frag_id = fv_be16(h + 4);
		if (frag & 0x1fff)
			set_flag(d, FV_PKT_FRAG_LATER);
	}

	tot = fv_be16(h + 2);
	end = d->len;
	if (tot == 0) {
		/* Segmentation offload: the length was never filled in. */
	} else if (tot < ihl) {
		set_flag(d, FV_PKT_MALFORMED);
		return;
	} else if (tot > d->len - off) {
		set_flag(d, FV_PKT_TRUNC);
	} else {
		end = off + tot;
	}
	if (!have(d, off, ihl)) {
		set_flag(d, FV_PKT_TRUNC);
		return;
	}
	if (pkt->flags & FV_PKT_FRAG_LATER) {
		set_payload(d, off + ihl, end);
		return;
	}
	decode_l4(d, off + ihl, end);
}

/*
 * IPv6 (RFC 8200). The key uses the addresses of the fixed header, even
 * when a routing header names another final destination: that is what
 * the packet carries on this link and what a BPF filter matches. The
 * extension headers of RFC 8200 section 4 (and AH, RFC 4302) are walked
 * to the transport header; ESP and "no next header" end the walk with no
 * ports. A payload length of 0 (a jumbogram, RFC 2675, or an offloaded
 * segment) means the captured bytes are the packet.
 */
static void decode_ipv6(struct dec *d, uint32_t off)
{
	struct fv_pkt *pkt = d->pkt;
	const uint8_t *h = d->p + off;
	uint32_t plen, end, cur, n, nexts;
	uint8_t nh;

	if (!off_ok(d, off))
		return;
	pkt->l3_off = (uint16_t)off;
	if (!have(d, off, 1)) {
		set_flag(d, FV_PKT_TRUNC);
		return;
	}
	if (h[0] >> 4 != 6) {
		set_flag(d, FV_PKT_MALFORMED);
		return;
	}
	if (!have(d, off, 40)) {
		set_flag(d, FV_PKT_TRUNC);
		return;
	}
	set_flag(d, FV_PKT_L3);
	pkt->key.family = 6;
	memcpy(pkt->key.saddr, h + 8, 16);
	memcpy(pkt->key.daddr, h + 24, 16);
	nh = h[6];
	pkt->key.proto = nh;
	pkt->ip_ttl = h[7];

	plen = fv_be16(h + 4);
	end = d->len;
	if (plen && plen <= d->len - off - 40)
		end = off + 40 + plen;
	else if (plen)
		set_flag(d, FV_PKT_TRUNC);

	cur = off + 40;
	for (nexts = 0;; nexts++) {
		const uint8_t *x = d->p + cur;

		switch (nh) {
		case IPP_HOPOPTS:
		case IPP_ROUTING:
		case IPP_DSTOPTS:
		case IPP_FRAGMENT:
		case IPP_AH:
			break;
		case IPP_ESP:
		case IPP_NONXT:
			set_payload(d, cur, end);
			return;
		default:
			decode_l4(d, cur, end);
			return;
		}
		if (nexts == MAX_EXT_HDRS) {
			set_flag(d, FV_PKT_MALFORMED);
			return;
		}
		if (end - cur < 8) { /* every extension header is >= 8 bytes */
			short_hdr(d, cur, 8);
			return;
		}
		if (nh == IPP_FRAGMENT) {
			/* RFC 8200 section 4.5: offset (13 bits, 8-byte
			 * units), 2 reserved bits, M; 32-bit identification.
			 * Offset 0 with M clear is an atomic fragment
			 * (RFC 6946): a whole packet, not a fragment. */
			uint16_t offm = fv_be16(x + 2);

			if (offm & 0xfff9) {
				set_flag(d, FV_PKT_FRAG);
				pkt->frag_id = fv_be32(x + 4);
				if (offm & 0xfff8) {
					set_flag(d, FV_PKT_FRAG_LATER);
					pkt->key.proto = x[0];
					set_payload(d, cur + 8, end);
					return;
				}
			} else {
				pkt->flags &= ~(uint32_t)FV_PKT_FRAG;
			}
			n = 8;
		} else if (nh == IPP_AH) {
			n = ((uint32_t)x[1] + 2) * 4; /* RFC 4302 section 2.2 */
		} else {
			n = ((uint32_t)x[1] + 1) * 8;
		}
		if (n > end - cur) {
			short_hdr(d, cur, n);
			return;
		}
		nh = x[0];
		pkt->key.proto = nh;
		cur += n;
	}
}

/* Dispatches on the IP version nibble (raw IP, MPLS payloads). Anything
 * else is malformed where only IP can be (raw IP link types). */
static void decode_ip_guess(struct dec *d, uint32_t off, int only_ip)
{
	if (!have(d, off, 1)) {
		set_flag(d, FV_PKT_TRUNC);
		return;
	}
	switch (d->p[off] >> 4) {
	case 4:
		decode_ipv4(d, off);
		break;
	case 6:
		decode_ipv6(d, off);
		break;
	default:
		/* Not IP (an MPLS pseudowire, say): nothing to key on. */
		if (only_ip)
			set_flag(d, FV_PKT_MALFORMED);
		break;
	}
}

/* A PPP protocol field (RFC 1661 section 2), possibly compressed to one
 * byte (RFC 1661 section 6.5: an odd first byte), then IPv4 or IPv6. */
static void decode_ppp_proto(struct dec *d, uint32_t off)
{
	uint16_t proto;

	if (!have(d, off, 1)) {
		set_flag(d, FV_PKT_TRUNC);
		return;
	}
	if (d->p[off] & 1) {
		proto = d->p[off];
		off += 1;
	} else {
		if (!have(d, off, 2)) {
			set_flag(d, FV_PKT_TRUNC);
			return;
		}
		proto = fv_be16(d->p + off);
		off += 2;
	}
	if (proto == PPP_IPV4)
		decode_ipv4(d, off);
	else if (proto == PPP_IPV6)
		decode_ipv6(d, off);
}

/*
 * What follows an ethertype: VLAN tags (IEEE 802.1Q; 802.1ad S-tags, also
 * under the older 0x9100), 802.1ah PBB I-tags, VN-Tag and 802.1BR E-Tag
 * headers, MPLS label stacks (RFC 3032), a PPPoE session
 * header (RFC 2516), IPv4 or IPv6. Each step consumes bytes, so the loop
 * ends with the frame.
 */
static void decode_ethertype(struct dec *d, uint16_t type, uint32_t off)
{
	struct fv_pkt *pkt = d->pkt;

	for (;;) {
		switch (type) {
		case ETH_IPV4:
			decode_ipv4(d, off);
			return;
		case ETH_IPV6:
			decode_ipv6(d, off);
			return;
		case ETH_8021Q:
		case ETH_8021AD:
		case ETH_QINQ_OLD:
			/* TCI (PCP 3, DEI 1, VID 12), then the next type. */
			if (!have(d, off, 4)) {
				set_flag(d, FV_PKT_TRUNC);
				return;
			}
			if (!(pkt->flags & FV_PKT_VLAN)) {
				pkt->key.vlan = fv_be16(d->p + off) & 0x0fff;
				set_flag(d, FV_PKT_VLAN);
			}
			type = fv_be16(d->p + off + 2);
			off += 4;
			break;
		case ETH_MPLS_UC:
		case ETH_MPLS_MC:
			/* Label 20, TC 3, S 1, TTL 8: walk to S = 1. */
			set_flag(d, FV_PKT_MPLS);
			for (;;) {
				if (!have(d, off, 4)) {
					set_flag(d, FV_PKT_TRUNC);
					return;
				}
				off += 4;
				if (d->p[off - 2] & 1)
					break;
			}
			decode_ip_guess(d, off, 0);
			return;
		case ETH_PBB_ITAG:
			/* IEEE 802.1ah I-TAG (4 bytes: PCP, DEI, UCA, I-SID),
			 * then the customer's destination and source MAC
			 * addresses and its ethertype. */
			if (!have(d, off, 18)) {
				set_flag(d, FV_PKT_TRUNC);
				return;
			}
			type = fv_be16(d->p + off + 16);
			off += 18;
			break;
		case ETH_VNTAG:
		case ETH_ETAG:
			/* Cisco VN-Tag (4 bytes) and IEEE 802.1BR E-Tag (6
			 * bytes) sit before the next ethertype. */
			{
				uint32_t n = type == ETH_VNTAG ? 4 : 6;

				if (!have(d, off, n + 2)) {
					set_flag(d, FV_PKT_TRUNC);
					return;
				}
				type = fv_be16(d->p + off + n);
				off += n + 2;
			}
			break;
		case ETH_PPPOE_SESS:
			/* Version/type, code, session id, length. */
			if (!have(d, off, 6)) {
				set_flag(d, FV_PKT_TRUNC);
				return;
			}
			decode_ppp_proto(d, off + 6);
			return;
		default:
			return;
		}
	}
}

/*
 * Ethernet (IEEE 802.3): Ethernet II when the type/length field is an
 * ethertype (>= 0x0600); otherwise an 802.3 length followed by IEEE 802.2
 * LLC, which is followed only when it is SNAP (AA AA 03, RFC 1042) with an
 * ethertype.
 */
static void decode_ether(struct dec *d, uint32_t off)
{
	const uint8_t *h = d->p + off;
	uint16_t type;

	if (!have(d, off, 14)) {
		set_flag(d, FV_PKT_TRUNC);
		return;
	}
	type = fv_be16(h + 12);
	off += 14;
	if (type >= 0x0600) {
		decode_ethertype(d, type, off);
		return;
	}
	if (type > 1500)
		return; /* neither a length nor an ethertype */
	if (!have(d, off, 8)) {
		set_flag(d, FV_PKT_TRUNC);
		return;
	}
	h = d->p + off;
	if (h[0] != 0xaa || h[1] != 0xaa || h[2] != 0x03)
		return; /* plain LLC (STP, NetBIOS...): no IP */
	decode_ethertype(d, fv_be16(h + 6), off + 8);
}

static int af_is_inet6(uint32_t af)
{
	/* AF_INET6 on NetBSD/OpenBSD (24), FreeBSD (28) and macOS (30): the
	 * value depends on the capturing system (pcap-linktype(7)). */
	return af == 24 || af == 28 || af == 30;
}

/* LINKTYPE_NULL (4-byte family in the byte order of the capturing host)
 * and LINKTYPE_LOOP (the same, big-endian). */
static void decode_null(struct dec *d, int big_endian_only)
{
	uint32_t be, le;

	if (!have(d, 0, 4)) {
		set_flag(d, FV_PKT_TRUNC);
		return;
	}
	be = fv_be32(d->p);
	le = big_endian_only ? be : le32(d->p);
	if (be == 2 || le == 2)
		decode_ipv4(d, 4);
	else if (af_is_inet6(be) || af_is_inet6(le))
		decode_ipv6(d, 4);
}

/*
 * LINKTYPE_NFLOG: nfgenmsg (family, version, resource id), then TLVs
 * (struct nfattr: 16-bit length including the 4-byte TLV header, 16-bit
 * type, both in the capturing host's byte order; each TLV padded to 4
 * bytes). The byte order is taken from the first TLV's type: every
 * attribute type is below 256, so only one order reads it that way.
 */
static void decode_nflog(struct dec *d)
{
	uint32_t off = NFLOG_HDR_LEN;
	int le = 1;

	if (!have(d, 0, NFLOG_HDR_LEN + 4)) {
		set_flag(d, FV_PKT_TRUNC);
		return;
	}
	if ((le16(d->p + off + 2) & 0x3fff) >= 256)
		le = 0;
	while (have(d, off, 4)) {
		const uint8_t *t = d->p + off;
		uint32_t tlen = le ? le16(t) : fv_be16(t);
		uint32_t type = (le ? le16(t + 2) : fv_be16(t + 2)) & 0x3fff;

		if (tlen < 4) {
			set_flag(d, FV_PKT_MALFORMED);
			return;
		}
		if (tlen > d->len - off) {
			set_flag(d, FV_PKT_TRUNC);
			if (type != NFULA_PAYLOAD)
				return;
			tlen = d->len - off;
		}
		if (type == NFULA_PAYLOAD) {
			/* The packet ends with its TLV, not the frame. */
			struct dec sub = {d->p, off + tlen, d->pkt};

			decode_ip_guess(&sub, off + 4, 1);
			return;
		}
		tlen = (tlen + 3) & ~3u;
		if (tlen > d->len - off)
			break;
		off += tlen;
	}
	/* No payload TLV was captured. */
	set_flag(d, FV_PKT_TRUNC);
}

int fv_decode(int linktype, const uint8_t *frame, uint32_t caplen,
	      struct fv_pkt *pkt)
{
	struct dec d = {frame, caplen, pkt};

	memset(pkt, 0, sizeof(*pkt));
	if (!frame)
		d.len = 0;
	switch (linktype) {
	case LT_ETHERNET:
		decode_ether(&d, 0);
		break;
	case LT_NULL:
		decode_null(&d, 0);
		break;
	case LT_LOOP:
		decode_null(&d, 1);
		break;
	case LT_RAW:
	case LT_RAW_BSD:
	case LT_RAW_OBSD:
		decode_ip_guess(&d, 0, 1);
		break;
	case LT_IPV4:
		decode_ipv4(&d, 0);
		break;
	case LT_IPV6:
		decode_ipv6(&d, 0);
		break;
	case LT_LINUX_SLL:
		/* Packet type, ARPHRD, address length, 8-byte address,
		 * protocol (an ethertype for the protocols we read). */
		if (!have(&d, 0, 16)) {
			set_flag(&d, FV_PKT_TRUNC);
			break;
		}
		decode_ethertype(&d, fv_be16(frame + 14), 16);
		break;
	case LT_LINUX_SLL2:
		/* Protocol, reserved, interface index, ARPHRD, packet type,
		 * address length, 8-byte address. */
		if (!have(&d, 0, 20)) {
			set_flag(&d, FV_PKT_TRUNC);
			break;
		}
		decode_ethertype(&d, fv_be16(frame), 20);
		break;
	case LT_PPP:
		/* RFC 1662 address and control (FF 03) are optional. */
		if (have(&d, 0, 2) && frame[0] == 0xff && frame[1] == 0x03)
			decode_ppp_proto(&d, 2);
		else
			decode_ppp_proto(&d, 0);
		break;
	case LT_NFLOG:
		decode_nflog(&d);
		break;
	default:
		break;
	}
	return pkt->key.family ? 0 : FV_EFORMAT;
}
