/*
 * decode.h - reads one captured frame and says what flow it belongs to.
 *
 * The decoder never trusts a length from the wire: every read goes through
 * bounds-checked helpers, and a frame that ends early is decoded as far as
 * its bytes go. It never allocates and keeps no state between frames, so
 * it is safe on the hot path and from any thread. It does not reassemble:
 * IP fragments are reported with their fragment identity and the flow
 * table (flow.h) attaches later fragments to the flow of the first one.
 *
 * Link types (LINKTYPE_* numbers as in pcap-linktype(7)): ETHERNET (1),
 * NULL (0) and LOOP (108), RAW (101), IPV4 (228), IPV6 (229), LINUX_SLL
 * (113), LINUX_SLL2 (276), PPP (9), NFLOG (239). Inside: 802.1Q and
 * 802.1ad tags (any depth), MPLS label stacks, PPPoE session, IPv4 (RFC
 * 791) and IPv6 (RFC 8200) with extension headers (hop-by-hop, routing,
 * destination options, fragment, AH), then TCP (RFC 9293), UDP (RFC 768),
 * ICMP (RFC 792), ICMPv6 (RFC 4443), SCTP (RFC 9260). Tunnels are not
 * entered: the flow is the outer one (GRE, IP-in-IP, VXLAN are flows of
 * their carrier), so the stored bytes and the flow agree with what a BPF
 * filter on the outer header selects.
 */
#ifndef FV_CAPTURE_DECODE_H
#define FV_CAPTURE_DECODE_H

#include <stdint.h>

/* pkt->flags */
enum fv_pkt_flag {
	FV_PKT_L3 = 1 << 0,	    /* an IPv4/IPv6 header was found */
	FV_PKT_L4 = 1 << 1,	    /* transport ports (or ICMP fields) valid */
	FV_PKT_FRAG = 1 << 2,	    /* part of a fragmented IP datagram */
	FV_PKT_FRAG_LATER = 1 << 3, /* a non-first fragment: no L4 header */
	FV_PKT_TRUNC = 1 << 4,	    /* a header ran past the captured bytes */
	FV_PKT_MALFORMED = 1 << 5,  /* a header field is impossible */
	FV_PKT_VLAN = 1 << 6,	    /* at least one 802.1Q/802.1ad tag */
	FV_PKT_MPLS = 1 << 7,	    /* an MPLS label stack was crossed */
};

/*
 * The identity of a flow as carried by one packet, in the packet's own
 * direction (src -> dst). Addresses of family 4 use the first 4 bytes of
 * the 16 and the rest are zero, so keys compare with memcmp.
 *
 * Ports: TCP, UDP, SCTP: the ports. ICMP echo/timestamp/information/
 * address-mask (request and reply) and ICMPv6 echo: sport = dport = the
 * identifier, so request and reply map to one flow. Other ICMP/ICMPv6
 * messages: sport = dport = type << 8 | code. Other protocols and later
 * fragments: 0 and 0.
 */
struct fv_flow_key {
	uint8_t saddr[16];
	uint8_t daddr[16];
	uint16_t sport;
	uint16_t dport;
	uint16_t vlan;	/* VLAN ID of the outermost tag, 0 if none */
	uint8_t family; /* 4, 6, or 0 when no IP header was decoded */
	uint8_t proto;	/* IP protocol number of the transport header */
};

/* Everything decode learns about one frame. */
struct fv_pkt {
	struct fv_flow_key key;
	uint32_t flags;	      /* enum fv_pkt_flag */
	uint32_t frag_id;     /* IPv4 identification or IPv6 fragment id */
	uint16_t l3_off;      /* offset of the (outer) IP header in the frame */
	uint16_t l4_off;      /* offset of the transport header, 0 if none */
	uint16_t payload_off; /* first byte after the transport header */
	uint16_t payload_len; /* payload bytes present in the frame */
	uint8_t tcp_flags; /* FIN 0x01 SYN 0x02 RST 0x04 PSH 0x08 ACK 0x10 ...
			    */
	uint8_t icmp_type; /* ICMP/ICMPv6 type and code when proto is one */
	uint8_t icmp_code;
	uint8_t ip_ttl;
	uint32_t tcp_seq;
	uint32_t tcp_ack;
};

/*
 * Decodes frame (caplen bytes captured) of the given LINKTYPE into *pkt.
 * Returns 0 when a flow key was found (pkt->key.family != 0), FV_EFORMAT
 * when the frame could not be decoded to an IP header (pkt->flags says how
 * far it got); the frame is still to be stored either way.
 */
int fv_decode(int linktype, const uint8_t *frame, uint32_t caplen,
	      struct fv_pkt *pkt);

/*
 * Community ID v1 (https://github.com/corelight/community-id-spec) of the
 * flow of pkt, with the given seed (0 by default), as "1:" + base64 of the
 * SHA-1; out must hold at least 32 bytes. Returns 0, or FV_EFORMAT when the
 * packet has no IP header. Symmetric: both directions give the same id.
 */
int fv_community_id(const struct fv_pkt *pkt, uint16_t seed, char *out,
		    unsigned outlen);

/* Same, from a flow's client-side key and, for ICMP, the type and code of
 * its first packet (what the flow record keeps). */
int fv_community_id_key(const struct fv_flow_key *key, uint8_t icmp_type,
			uint8_t icmp_code, uint16_t seed, char *out,
			unsigned outlen);

#endif
