/*
 * Unit tests for capture/decode.c.
 *
 * 1. Hand-built frames for every link type and encapsulation decode.h
 *    names, checked field by field against the values written into them.
 * 2. A valid TCP frame cut at every length: no read past the cut (each
 *    cut is copied to a heap buffer of exactly that size, so the ASan
 *    build catches an over-read), and the TRUNC/L3/L4 flags right.
 * 3. The corpus (../shared/corpus or $FV_CORPUS), outside malformed/:
 *    every frame libpcap reads is decoded and its outer (src, dst, proto,
 *    sport, dport) compared with tshark's view of the same frame (all
 *    files concatenated with mergecap and dissected in one tshark run,
 *    IP reassembly off). Frames where we differ by design are counted
 *    per reason; any other difference fails.
 * 4. Every file of corpus/malformed/ that libpcap opens: every frame
 *    decodes without a crash (run the ASan build for the real check).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "capture/decode.h"
#include "common/fv.h"

#include "tests/unit/check.h"

/* ---- frame builder ------------------------------------------------ */

struct fb {
	uint8_t b[4096];
	uint32_t n;
};

static void put8(struct fb *f, unsigned v)
{
	f->b[f->n++] = (uint8_t)v;
}

static void put16(struct fb *f, unsigned v)
{
	fv_put_be16(f->b + f->n, (uint16_t)v);
	f->n += 2;
}

static void put32(struct fb *f, uint32_t v)
{
	fv_put_be32(f->b + f->n, v);
	f->n += 4;
}

static void putn(struct fb *f, const void *p, uint32_t n)
{
	memcpy(f->b + f->n, p, n);
	f->n += n;
}

static void zeros(struct fb *f, uint32_t n)
{
	memset(f->b + f->n, 0, n);
	f->n += n;
}

static const uint8_t A4[4] = {10, 0, 0, 1}, B4[4] = {192, 168, 7, 9};
static const uint8_t A6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
			       0,    0,	   0,	 0,    0, 0, 0, 1};
static const uint8_t B6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
			       0,    0,	   0,	 0,    0, 0, 0, 2};
static const uint8_t C6[16] = {0x20, 0x01, 0x0d, 0xb8, 0xff, 0, 0, 0,
			       0,    0,	   0,	 0,    0,    0, 0, 3};

static void eth(struct fb *f, unsigned type)
{
	static const uint8_t macs[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};

	putn(f, macs, 12);
	put16(f, type);
}

/* An IPv4 header of 20 bytes; tot = 20 + l4len. */
static void ipv4(struct fb *f, unsigned proto, const uint8_t *s,
		 const uint8_t *d, unsigned l4len, unsigned frag, unsigned id)
{
	put8(f, 0x45);
	put8(f, 0);
	put16(f, 20 + l4len);
	put16(f, id);
	put16(f, frag);
	put8(f, 64);
	put8(f, proto);
	put16(f, 0);
	putn(f, s, 4);
	putn(f, d, 4);
}

static void ipv6(struct fb *f, unsigned nh, const uint8_t *s, const uint8_t *d,
		 unsigned plen)
{
	put32(f, 0x60000000);
	put16(f, plen);
	put8(f, nh);
	put8(f, 57);
	putn(f, s, 16);
	putn(f, d, 16);
}

/* A 20-byte TCP header followed by 4 payload bytes: 24 bytes. */
static void tcp(struct fb *f, unsigned sp, unsigned dp, uint32_t seq,
		uint32_t ack, unsigned flags)
{
	put16(f, sp);
	put16(f, dp);
	put32(f, seq);
	put32(f, ack);
	put8(f, 5 << 4);
	put8(f, flags);
	put16(f, 65535);
	put16(f, 0);
	put16(f, 0);
	putn(f, "DATA", 4);
}

/* UDP with 4 payload bytes: 12 bytes. */
static void udp(struct fb *f, unsigned sp, unsigned dp)
{
	put16(f, sp);
	put16(f, dp);
	put16(f, 12);
	put16(f, 0);
	putn(f, "ping", 4);
}

/* ICMP/ICMPv6 header with id/seq and 4 payload bytes: 12 bytes. */
static void icmp(struct fb *f, unsigned type, unsigned code, unsigned id,
		 unsigned seq)
{
	put8(f, type);
	put8(f, code);
	put16(f, 0);
	put16(f, id);
	put16(f, seq);
	putn(f, "abcd", 4);
}

/* Decodes from a heap copy of exactly the frame's size. */
static int dec(int lt, const struct fb *f, uint32_t len, struct fv_pkt *p)
{
	uint8_t *c = malloc(len ? len : 1);
	int rc;

	if (!c) {
		perror("malloc");
		exit(1);
	}
	memcpy(c, f->b, len);
	rc = fv_decode(lt, c, len, p);
	free(c);
	return rc;
}

static int key4(const struct fv_pkt *p, const uint8_t *s, const uint8_t *d)
{
	static const uint8_t z[12];

	return p->key.family == 4 && !memcmp(p->key.saddr, s, 4) &&
	       !memcmp(p->key.daddr, d, 4) &&
	       !memcmp(p->key.saddr + 4, z, 12) &&
	       !memcmp(p->key.daddr + 4, z, 12);
}

static int key6(const struct fv_pkt *p, const uint8_t *s, const uint8_t *d)
{
	return p->key.family == 6 && !memcmp(p->key.saddr, s, 16) &&
	       !memcmp(p->key.daddr, d, 16);
}

/* ---- hand-built frames -------------------------------------------- */

/* Ethernet, 802.1ad S-tag 100, 802.1Q C-tag 200, IPv4, TCP. */
static void build_qinq_tcp(struct fb *f)
{
	f->n = 0;
	eth(f, 0x88a8);
	put16(f, 0xa000 | 100); /* PCP 5, VID 100 */
	put16(f, 0x8100);
	put16(f, 0x1000 | 200); /* DEI set, VID 200 */
	put16(f, 0x0800);
	ipv4(f, 6, A4, B4, 24, 0x4000, 0x1234); /* DF */
	tcp(f, 40000, 443, 0x01020304, 0xa0b0c0d0, 0x18);
}

static void test_ethernet(void)
{
	struct fb f;
	struct fv_pkt p;
	int rc;

	build_qinq_tcp(&f);
	rc = dec(1, &f, f.n, &p);
	CHECK(rc == 0, "qinq rc %d", rc);
	CHECK(key4(&p, A4, B4), "qinq addresses");
	CHECK(p.key.sport == 40000 && p.key.dport == 443, "qinq ports %u %u",
	      p.key.sport, p.key.dport);
	CHECK(p.key.proto == 6 && p.key.vlan == 100, "qinq proto %u vlan %u",
	      p.key.proto, p.key.vlan);
	CHECK(p.flags == (FV_PKT_L3 | FV_PKT_L4 | FV_PKT_VLAN),
	      "qinq flags %#x", p.flags);
	CHECK(p.tcp_seq == 0x01020304 && p.tcp_ack == 0xa0b0c0d0 &&
		      p.tcp_flags == 0x18,
	      "qinq tcp fields");
	CHECK(p.l3_off == 22 && p.l4_off == 42 && p.payload_off == 62 &&
		      p.payload_len == 4,
	      "qinq offsets %u %u %u %u", p.l3_off, p.l4_off, p.payload_off,
	      p.payload_len);
	CHECK(p.ip_ttl == 64 && p.frag_id == 0, "qinq ttl/frag");

	/* Ethernet padding after a short IPv4 packet is not payload. */
	f.n = 0;
	eth(&f, 0x0800);
	ipv4(&f, 17, A4, B4, 12, 0, 1);
	udp(&f, 53, 5353);
	zeros(&f, 14); /* pad to 60 bytes */
	rc = dec(1, &f, f.n, &p);
	CHECK(rc == 0 && p.key.sport == 53 && p.key.dport == 5353 &&
		      p.payload_len == 4 && !(p.flags & FV_PKT_TRUNC),
	      "padding: len %u flags %#x", p.payload_len, p.flags);

	/* 802.3 + LLC/SNAP + IPv4 + UDP is followed. */
	f.n = 0;
	putn(&f, "\0\1\2\3\4\5\6\7\10\11\12\13", 12);
	put16(&f, 8 + 20 + 12);
	putn(&f, "\xaa\xaa\x03\0\0\0", 6);
	put16(&f, 0x0800);
	ipv4(&f, 17, A4, B4, 12, 0, 1);
	udp(&f, 1000, 2000);
	rc = dec(1, &f, f.n, &p);
	CHECK(rc == 0 && key4(&p, A4, B4) && p.key.sport == 1000 &&
		      p.l3_off == 22,
	      "snap: rc %d", rc);

	/* 802.3 + plain LLC (STP): undecodable, not truncated. */
	f.n = 0;
	putn(&f, "\0\1\2\3\4\5\6\7\10\11\12\13", 12);
	put16(&f, 38);
	putn(&f, "\x42\x42\x03", 3);
	zeros(&f, 35);
	rc = dec(1, &f, f.n, &p);
	CHECK(rc == FV_EFORMAT && p.key.family == 0 && p.flags == 0,
	      "plain llc: rc %d flags %#x", rc, p.flags);

	/* ARP: undecodable. */
	f.n = 0;
	eth(&f, 0x0806);
	zeros(&f, 28);
	rc = dec(1, &f, f.n, &p);
	CHECK(rc == FV_EFORMAT && p.flags == 0, "arp rc %d", rc);

	/* Old QinQ TPID 0x9100 over 802.1Q: the outer VID is kept. */
	f.n = 0;
	eth(&f, 0x9100);
	put16(&f, 7);
	put16(&f, 0x8100);
	put16(&f, 4095);
	put16(&f, 0x86dd);
	ipv6(&f, 17, A6, B6, 12);
	udp(&f, 547, 546);
	rc = dec(1, &f, f.n, &p);
	CHECK(rc == 0 && key6(&p, A6, B6) && p.key.vlan == 7 &&
		      p.key.sport == 547 && (p.flags & FV_PKT_VLAN),
	      "9100 tag: vlan %u", p.key.vlan);

	/* A priority tag (VID 0) is still a tag. */
	f.n = 0;
	eth(&f, 0x8100);
	put16(&f, 0xe000);
	put16(&f, 0x0800);
	ipv4(&f, 6, A4, B4, 24, 0, 0);
	tcp(&f, 1, 2, 0, 0, 2);
	rc = dec(1, &f, f.n, &p);
	CHECK(rc == 0 && p.key.vlan == 0 && (p.flags & FV_PKT_VLAN), "vlan 0");
	printf("ethernet: QinQ, padding, SNAP, LLC, ARP, 0x9100, VID 0\n");
}

static void test_mpls_pppoe(void)
{
	struct fb f;
	struct fv_pkt p;
	int rc;

	/* VLAN 300, two MPLS labels, IPv4, UDP. */
	f.n = 0;
	eth(&f, 0x8100);
	put16(&f, 300);
	put16(&f, 0x8847);
	put32(&f, 16 << 12 | 0 << 8 | 64); /* label 16, S 0 */
	put32(&f, 17 << 12 | 1 << 8 | 64); /* label 17, S 1 */
	ipv4(&f, 17, A4, B4, 12, 0, 9);
	udp(&f, 3000, 4000);
	rc = dec(1, &f, f.n, &p);
	CHECK(rc == 0 && key4(&p, A4, B4) && p.key.sport == 3000 &&
		      p.key.dport == 4000 && p.key.vlan == 300,
	      "mpls v4: rc %d", rc);
	CHECK(p.flags == (FV_PKT_L3 | FV_PKT_L4 | FV_PKT_VLAN | FV_PKT_MPLS),
	      "mpls flags %#x", p.flags);
	CHECK(p.l3_off == 26, "mpls l3_off %u", p.l3_off);

	/* Multicast MPLS, one label, IPv6, TCP. */
	f.n = 0;
	eth(&f, 0x8848);
	put32(&f, 99 << 12 | 1 << 8 | 1);
	ipv6(&f, 6, A6, B6, 24);
	tcp(&f, 179, 50000, 1, 2, 0x10);
	rc = dec(1, &f, f.n, &p);
	CHECK(rc == 0 && key6(&p, A6, B6) && p.key.sport == 179 &&
		      (p.flags & FV_PKT_MPLS) && !(p.flags & FV_PKT_VLAN),
	      "mpls v6: rc %d", rc);

	/* MPLS carrying a pseudowire control word: not IP. */
	f.n = 0;
	eth(&f, 0x8847);
	put32(&f, 99 << 12 | 1 << 8 | 1);
	put32(&f, 0);
	zeros(&f, 40);
	rc = dec(1, &f, f.n, &p);
	CHECK(rc == FV_EFORMAT && (p.flags & FV_PKT_MPLS) &&
		      !(p.flags & FV_PKT_MALFORMED),
	      "mpls pw");

	/* A label stack without bottom of stack runs off the frame. */
	f.n = 0;
	eth(&f, 0x8847);
	put32(&f, 1 << 12 | 64);
	put32(&f, 2 << 12 | 64);
	rc = dec(1, &f, f.n, &p);
	CHECK(rc == FV_EFORMAT && (p.flags & FV_PKT_TRUNC), "mpls no S");

	/* PPPoE session, PPP IPv4, TCP. */
	f.n = 0;
	eth(&f, 0x8864);
	put8(&f, 0x11);
	put8(&f, 0);
	put16(&f, 0x0042);
	put16(&f, 2 + 20 + 24);
	put16(&f, 0x0021);
	ipv4(&f, 6, A4, B4, 24, 0, 5);
	tcp(&f, 1723, 1024, 5, 6, 0x12);
	rc = dec(1, &f, f.n, &p);
	CHECK(rc == 0 && key4(&p, A4, B4) && p.key.sport == 1723 &&
		      p.tcp_flags == 0x12 && p.l3_off == 22,
	      "pppoe v4: rc %d", rc);

	/* PPPoE, PPP IPv6, UDP. */
	f.n = 0;
	eth(&f, 0x8864);
	putn(&f, "\x11\0\0\x42", 4);
	put16(&f, 2 + 40 + 12);
	put16(&f, 0x0057);
	ipv6(&f, 17, B6, A6, 12);
	udp(&f, 123, 123);
	rc = dec(1, &f, f.n, &p);
	CHECK(rc == 0 && key6(&p, B6, A6) && p.key.dport == 123,
	      "pppoe v6: rc %d", rc);

	/* PPPoE carrying LCP: undecodable. */
	f.n = 0;
	eth(&f, 0x8864);
	putn(&f, "\x11\0\0\x42\0\x0a", 6);
	put16(&f, 0xc021);
	zeros(&f, 8);
	rc = dec(1, &f, f.n, &p);
	CHECK(rc == FV_EFORMAT && p.flags == 0, "pppoe lcp");
	printf("mpls/pppoe: label stacks, pseudowire, PPPoE v4/v6/LCP\n");
}

static void ip_tcp4(struct fb *f)
{
	ipv4(f, 6, A4, B4, 24, 0, 77);
	tcp(f, 22, 61000, 100, 200, 0x11);
}

static void ip_udp6(struct fb *f)
{
	ipv6(f, 17, A6, B6, 12);
	udp(f, 5000, 53);
}

static void check_tcp4(const struct fv_pkt *p, int rc, uint16_t l3,
		       const char *what)
{
	CHECK(rc == 0 && key4(p, A4, B4) && p->key.proto == 6 &&
		      p->key.sport == 22 && p->key.dport == 61000 &&
		      p->tcp_flags == 0x11 && p->l3_off == l3 &&
		      p->flags == (FV_PKT_L3 | FV_PKT_L4),
	      "%s: rc %d flags %#x l3 %u", what, rc, p->flags, p->l3_off);
}

static void check_udp6(const struct fv_pkt *p, int rc, uint16_t l3,
		       const char *what)
{
	CHECK(rc == 0 && key6(p, A6, B6) && p->key.proto == 17 &&
		      p->key.sport == 5000 && p->key.dport == 53 &&
		      p->l3_off == l3 && p->flags == (FV_PKT_L3 | FV_PKT_L4),
	      "%s: rc %d flags %#x l3 %u", what, rc, p->flags, p->l3_off);
}

static void test_linktypes(void)
{
	static const uint32_t af6[] = {24, 28, 30};
	struct fb f;
	struct fv_pkt p;
	int rc;

	/* LINKTYPE_NULL: family in either byte order. */
	f.n = 0;
	putn(&f, "\2\0\0\0", 4); /* AF_INET, little-endian host */
	ip_tcp4(&f);
	check_tcp4(&p, dec(0, &f, f.n, &p), 4, "null le v4");
	f.n = 0;
	putn(&f, "\0\0\0\2", 4); /* AF_INET, big-endian host */
	ip_tcp4(&f);
	check_tcp4(&p, dec(0, &f, f.n, &p), 4, "null be v4");
	for (int i = 0; i < 3; i++) {
		f.n = 0;
		put8(&f, af6[i]);
		zeros(&f, 3);
		ip_udp6(&f);
		check_udp6(&p, dec(0, &f, f.n, &p), 4, "null le v6");
		f.n = 0;
		put32(&f, af6[i]);
		ip_udp6(&f);
		check_udp6(&p, dec(0, &f, f.n, &p), 4, "null be v6");
		/* LINKTYPE_LOOP is big-endian only. */
		check_udp6(&p, dec(108, &f, f.n, &p), 4, "loop v6");
	}
	f.n = 0;
	putn(&f, "\0\0\0\2", 4);
	ip_tcp4(&f);
	check_tcp4(&p, dec(108, &f, f.n, &p), 4, "loop v4");
	f.n = 0;
	putn(&f, "\2\0\0\0", 4);
	ip_tcp4(&f);
	rc = dec(108, &f, f.n, &p);
	CHECK(rc == FV_EFORMAT, "loop with a little-endian family");
	f.n = 0;
	putn(&f, "\7\0\0\0", 4); /* AF_ISO */
	ip_tcp4(&f);
	rc = dec(0, &f, f.n, &p);
	CHECK(rc == FV_EFORMAT, "null with another family");

	/* Raw IP: 101, and the DLT_RAW numbers 12 and 14. */
	static const int raw[] = {101, 12, 14};
	for (int i = 0; i < 3; i++) {
		f.n = 0;
		ip_tcp4(&f);
		check_tcp4(&p, dec(raw[i], &f, f.n, &p), 0, "raw v4");
		f.n = 0;
		ip_udp6(&f);
		check_udp6(&p, dec(raw[i], &f, f.n, &p), 0, "raw v6");
	}
	f.n = 0;
	put8(&f, 0x55);
	zeros(&f, 40);
	rc = dec(101, &f, f.n, &p);
	CHECK(rc == FV_EFORMAT && (p.flags & FV_PKT_MALFORMED),
	      "raw version 5");

	/* LINKTYPE_IPV4 / IPV6 and the wrong version in each. */
	f.n = 0;
	ip_tcp4(&f);
	check_tcp4(&p, dec(228, &f, f.n, &p), 0, "ipv4");
	rc = dec(229, &f, f.n, &p);
	CHECK(rc == FV_EFORMAT && p.key.family == 0 &&
		      (p.flags & FV_PKT_MALFORMED),
	      "ipv4 packet on LINKTYPE_IPV6");
	f.n = 0;
	ip_udp6(&f);
	check_udp6(&p, dec(229, &f, f.n, &p), 0, "ipv6");
	rc = dec(228, &f, f.n, &p);
	CHECK(rc == FV_EFORMAT && p.key.family == 0 &&
		      (p.flags & FV_PKT_MALFORMED),
	      "ipv6 packet on LINKTYPE_IPV4");

	/* Linux cooked v1: 16 bytes, protocol at 14; VLAN tag inside. */
	f.n = 0;
	putn(&f, "\0\0\0\1\0\6\0\1\2\3\4\5\0\0", 14);
	put16(&f, 0x0800);
	ip_tcp4(&f);
	check_tcp4(&p, dec(113, &f, f.n, &p), 16, "sll v4");
	f.n = 0;
	putn(&f, "\0\4\0\1\0\6\0\1\2\3\4\5\0\0", 14);
	put16(&f, 0x8100);
	put16(&f, 42);
	put16(&f, 0x86dd);
	ip_udp6(&f);
	rc = dec(113, &f, f.n, &p);
	CHECK(rc == 0 && key6(&p, A6, B6) && p.key.vlan == 42 && p.l3_off == 20,
	      "sll vlan v6");
	f.n = 0;
	putn(&f, "\0\0\0\1\0\6\0\1\2\3\4\5\0\0", 14);
	put16(&f, 0x0806);
	zeros(&f, 28);
	CHECK(dec(113, &f, f.n, &p) == FV_EFORMAT, "sll arp");

	/* Linux cooked v2: 20 bytes, protocol at 0. */
	f.n = 0;
	put16(&f, 0x86dd);
	zeros(&f, 2);
	put32(&f, 3);
	putn(&f, "\0\1\4\6\0\1\2\3\4\5\0\0", 12);
	ip_udp6(&f);
	check_udp6(&p, dec(276, &f, f.n, &p), 20, "sll2 v6");
	f.n = 0;
	put16(&f, 0x0800);
	zeros(&f, 18);
	ip_tcp4(&f);
	check_tcp4(&p, dec(276, &f, f.n, &p), 20, "sll2 v4");

	/* PPP: with and without FF 03, full and compressed protocol. */
	f.n = 0;
	putn(&f, "\xff\x03\x00\x21", 4);
	ip_tcp4(&f);
	check_tcp4(&p, dec(9, &f, f.n, &p), 4, "ppp ff03 v4");
	f.n = 0;
	putn(&f, "\x00\x57", 2);
	ip_udp6(&f);
	check_udp6(&p, dec(9, &f, f.n, &p), 2, "ppp v6");
	f.n = 0;
	putn(&f, "\x21", 1);
	ip_tcp4(&f);
	check_tcp4(&p, dec(9, &f, f.n, &p), 1, "ppp compressed v4");
	f.n = 0;
	putn(&f, "\xff\x03\xc0\x21\x01\x01\x00\x04", 8);
	CHECK(dec(9, &f, f.n, &p) == FV_EFORMAT, "ppp lcp");

	/* NFLOG: header, a prefix TLV of odd length (padded), a packet
	 * header TLV, then the payload TLV; little- and big-endian TLVs. */
	for (int be = 0; be < 2; be++) {
		uint8_t t[4];

		f.n = 0;
		putn(&f, "\x02\x00\x00\x00", 4);
		/* NFULA_PREFIX (10), "abc\0\0" = 5 bytes, padded to 12 */
		if (be)
			putn(&f, "\x00\x09\x00\x0a", 4);
		else
			putn(&f, "\x09\x00\x0a\x00", 4);
		putn(&f, "abc\0\0\0\0\0", 8);
		/* NFULA_PACKET_HDR (1), 8 bytes */
		if (be)
			putn(&f, "\x00\x08\x00\x01", 4);
		else
			putn(&f, "\x08\x00\x01\x00", 4);
		putn(&f, "\x08\x00\x03\x00", 4);
		/* NFULA_PAYLOAD (9) */
		if (be) {
			fv_put_be16(t, 4 + 44);
			fv_put_be16(t + 2, 9);
		} else {
			t[0] = 4 + 44;
			t[1] = 0;
			t[2] = 9;
			t[3] = 0;
		}
		putn(&f, t, 4);
		ip_tcp4(&f);
		check_tcp4(&p, dec(239, &f, f.n, &p), 28,
			   be ? "nflog be" : "nflog le");
	}
	/* A TLV length below 4 would loop forever if trusted. */
	f.n = 0;
	putn(&f, "\x02\x00\x00\x00\x02\x00\x0a\x00", 8);
	ip_tcp4(&f);
	rc = dec(239, &f, f.n, &p);
	CHECK(rc == FV_EFORMAT && (p.flags & FV_PKT_MALFORMED),
	      "nflog tlv len 2");
	/* No payload TLV. */
	f.n = 0;
	putn(&f, "\x02\x00\x00\x00\x08\x00\x01\x00\x08\x00\x03\x00", 12);
	rc = dec(239, &f, f.n, &p);
	CHECK(rc == FV_EFORMAT, "nflog without payload");

	/* Unknown link types (802.11 105, radiotap 127, USER13 160). */
	f.n = 0;
	ip_tcp4(&f);
	CHECK(dec(105, &f, f.n, &p) == FV_EFORMAT && p.flags == 0, "lt 105");
	CHECK(dec(127, &f, f.n, &p) == FV_EFORMAT, "lt 127");
	CHECK(dec(160, &f, f.n, &p) == FV_EFORMAT, "lt 160");
	CHECK(dec(-1, &f, f.n, &p) == FV_EFORMAT, "lt -1");
	printf("link types: NULL, LOOP, RAW x3, IPV4, IPV6, SLL, SLL2, PPP, "
	       "NFLOG, unknown\n");
}

static void test_ipv4(void)
{
	struct fb f;
	struct fv_pkt p;
	int rc;

	/* First fragment (MF, offset 0): ports and the fragment id. */
	f.n = 0;
	ipv4(&f, 17, A4, B4, 12, 0x2000, 0xbeef);
	udp(&f, 4444, 53);
	rc = dec(228, &f, f.n, &p);
	CHECK(rc == 0 && p.key.sport == 4444 && p.key.dport == 53 &&
		      p.frag_id == 0xbeef &&
		      p.flags == (FV_PKT_L3 | FV_PKT_L4 | FV_PKT_FRAG),
	      "v4 first fragment: flags %#x", p.flags);

	/* A middle fragment (MF, offset 185*8): no L4, ports 0. */
	f.n = 0;
	ipv4(&f, 17, A4, B4, 12, 0x2000 | 185, 0xbeef);
	udp(&f, 4444, 53);
	rc = dec(228, &f, f.n, &p);
	CHECK(rc == 0 && key4(&p, A4, B4) && p.key.proto == 17 &&
		      p.key.sport == 0 && p.key.dport == 0 &&
		      p.frag_id == 0xbeef &&
		      p.flags ==
			      (FV_PKT_L3 | FV_PKT_FRAG | FV_PKT_FRAG_LATER) &&
		      p.l4_off == 0 && p.payload_off == 20 &&
		      p.payload_len == 12,
	      "v4 middle fragment: flags %#x", p.flags);

	/* The last fragment (offset, no MF). */
	f.n = 0;
	ipv4(&f, 6, A4, B4, 24, 370, 7);
	tcp(&f, 1, 2, 3, 4, 5);
	rc = dec(228, &f, f.n, &p);
	CHECK(rc == 0 && p.key.sport == 0 && p.frag_id == 7 &&
		      p.flags == (FV_PKT_L3 | FV_PKT_FRAG | FV_PKT_FRAG_LATER),
	      "v4 last fragment: flags %#x", p.flags);

	/* DF alone is not a fragment. */
	f.n = 0;
	ipv4(&f, 6, A4, B4, 24, 0x4000, 7);
	tcp(&f, 1, 2, 3, 4, 5);
	rc = dec(228, &f, f.n, &p);
	CHECK(rc == 0 && !(p.flags & FV_PKT_FRAG) && p.frag_id == 0, "v4 DF");

	/* IHL 4: impossible, no key. */
	f.n = 0;
	ip_tcp4(&f);
	f.b[0] = 0x44;
	rc = dec(228, &f, f.n, &p);
	CHECK(rc == FV_EFORMAT && (p.flags & FV_PKT_MALFORMED) &&
		      !(p.flags & FV_PKT_L3),
	      "ihl 4");

	/* Total length below the header: addresses, no ports. */
	f.n = 0;
	ip_tcp4(&f);
	fv_put_be16(f.b + 2, 19);
	rc = dec(228, &f, f.n, &p);
	CHECK(rc == 0 && (p.flags & FV_PKT_MALFORMED) &&
		      !(p.flags & FV_PKT_L4) && p.key.sport == 0,
	      "total length 19");

	/* Total length 0 (TSO capture): the captured bytes count. */
	f.n = 0;
	ip_tcp4(&f);
	fv_put_be16(f.b + 2, 0);
	rc = dec(228, &f, f.n, &p);
	CHECK(rc == 0 && p.key.sport == 22 && p.payload_len == 4,
	      "total length 0");

	/* Options: IHL 6 moves the TCP header. */
	f.n = 0;
	ipv4(&f, 6, A4, B4, 4 + 24, 0, 1);
	f.b[0] = 0x46;
	putn(&f, "\x01\x01\x01\x00", 4);
	tcp(&f, 8080, 9090, 0, 0, 2);
	rc = dec(228, &f, f.n, &p);
	CHECK(rc == 0 && p.key.sport == 8080 && p.l4_off == 24, "v4 options");

	/* TCP data offset 4: ports kept, flagged malformed. */
	f.n = 0;
	ip_tcp4(&f);
	f.b[20 + 12] = 4 << 4;
	rc = dec(228, &f, f.n, &p);
	CHECK(rc == 0 && p.key.sport == 22 && (p.flags & FV_PKT_MALFORMED) &&
		      (p.flags & FV_PKT_L4),
	      "tcp doff 4");

	/* TCP data offset 15 past the datagram's end (not the capture's). */
	f.n = 0;
	ip_tcp4(&f);
	f.b[20 + 12] = 15 << 4;
	zeros(&f, 60); /* trailing bytes after the IP packet */
	rc = dec(228, &f, f.n, &p);
	CHECK(rc == 0 && (p.flags & FV_PKT_MALFORMED) &&
		      !(p.flags & FV_PKT_TRUNC),
	      "tcp doff 15: flags %#x", p.flags);

	/* SCTP: ports from the common header. */
	f.n = 0;
	ipv4(&f, 132, A4, B4, 16, 0, 1);
	put16(&f, 2905);
	put16(&f, 2906);
	put32(&f, 0xdeadbeef);
	put32(&f, 0);
	put32(&f, 0);
	rc = dec(228, &f, f.n, &p);
	CHECK(rc == 0 && p.key.proto == 132 && p.key.sport == 2905 &&
		      p.key.dport == 2906 && (p.flags & FV_PKT_L4) &&
		      p.payload_off == 32,
	      "sctp");

	/* Tunnels are flows of the outer header: IP-in-IP, 6in4, GRE. */
	static const unsigned tun[] = {4, 41, 47};
	for (int i = 0; i < 3; i++) {
		f.n = 0;
		ipv4(&f, tun[i], A4, B4, 44, 0, 1);
		ipv4(&f, 6, B4, A4, 24, 0, 2);
		tcp(&f, 80, 1234, 0, 0, 2);
		rc = dec(228, &f, f.n, &p);
		CHECK(rc == 0 && key4(&p, A4, B4) && p.key.proto == tun[i] &&
			      p.key.sport == 0 && p.key.dport == 0 &&
			      p.flags == FV_PKT_L3 && p.payload_off == 20,
		      "tunnel proto %u: flags %#x", tun[i], p.flags);
	}
	/* Another protocol (OSPF): key without ports. */
	f.n = 0;
	ipv4(&f, 89, A4, B4, 24, 0, 1);
	zeros(&f, 24);
	rc = dec(228, &f, f.n, &p);
	CHECK(rc == 0 && p.key.proto == 89 && p.flags == FV_PKT_L3 &&
		      p.key.sport == 0,
	      "ospf");
	printf("ipv4: fragments first/middle/last, DF, IHL, total length, "
	       "options, TCP offsets, SCTP, tunnels, other protocols\n");
}

static void test_ipv6(void)
{
	struct fb f;
	struct fv_pkt p;
	int rc;

	/* Hop-by-hop, then a first fragment (M=1), then UDP. */
	f.n = 0;
	ipv6(&f, 0, A6, B6, 8 + 8 + 12);
	putn(&f, "\x2c\x00\x01\x04\x00\x00\x00\x00", 8); /* nh 44, PadN */
	put8(&f, 17);
	put8(&f, 0);
	put16(&f, 0 << 3 | 1);
	put32(&f, 0xcafef00d);
	udp(&f, 33000, 443);
	rc = dec(229, &f, f.n, &p);
	CHECK(rc == 0 && key6(&p, A6, B6) && p.key.proto == 17 &&
		      p.key.sport == 33000 && p.key.dport == 443 &&
		      p.frag_id == 0xcafef00d && p.l4_off == 56 &&
		      p.flags == (FV_PKT_L3 | FV_PKT_L4 | FV_PKT_FRAG),
	      "v6 hbh + first fragment: flags %#x l4 %u", p.flags, p.l4_off);

	/* The same with offset 1448/8: a later fragment, ports 0. */
	f.n = 0;
	ipv6(&f, 0, A6, B6, 8 + 8 + 12);
	putn(&f, "\x2c\x00\x01\x04\x00\x00\x00\x00", 8);
	put8(&f, 17);
	put8(&f, 0);
	put16(&f, 181 << 3 | 0);
	put32(&f, 0xcafef00d);
	udp(&f, 33000, 443);
	rc = dec(229, &f, f.n, &p);
	CHECK(rc == 0 && p.key.proto == 17 && p.key.sport == 0 &&
		      p.key.dport == 0 && p.frag_id == 0xcafef00d &&
		      p.flags ==
			      (FV_PKT_L3 | FV_PKT_FRAG | FV_PKT_FRAG_LATER) &&
		      p.payload_off == 56,
	      "v6 later fragment: flags %#x", p.flags);

	/* An atomic fragment (offset 0, M 0) is a whole packet. */
	f.n = 0;
	ipv6(&f, 44, A6, B6, 8 + 24);
	put8(&f, 6);
	put8(&f, 0);
	put16(&f, 0);
	put32(&f, 99);
	tcp(&f, 80, 50505, 1, 1, 0x10);
	rc = dec(229, &f, f.n, &p);
	CHECK(rc == 0 && p.key.sport == 80 && p.key.proto == 6 &&
		      p.flags == (FV_PKT_L3 | FV_PKT_L4) && p.frag_id == 0,
	      "v6 atomic fragment: flags %#x", p.flags);

	/* A routing header: the key keeps the header's destination. */
	f.n = 0;
	ipv6(&f, 43, A6, B6, 24 + 12);
	put8(&f, 17);
	put8(&f, 2); /* 24 bytes */
	put8(&f, 0); /* type 0 */
	put8(&f, 1); /* segments left */
	zeros(&f, 4);
	putn(&f, C6, 16);
	udp(&f, 7, 7);
	rc = dec(229, &f, f.n, &p);
	CHECK(rc == 0 && key6(&p, A6, B6) && p.key.sport == 7 && p.l4_off == 64,
	      "v6 routing header");

	/* Destination options + AH (length in 4-byte units + 2) + TCP. */
	f.n = 0;
	ipv6(&f, 60, A6, B6, 8 + 16 + 24);
	putn(&f, "\x33\x00\x01\x04\x00\x00\x00\x00", 8); /* nh 51 */
	put8(&f, 6);
	put8(&f, 2); /* (2 + 2) * 4 = 16 bytes */
	zeros(&f, 14);
	tcp(&f, 500, 501, 0, 0, 2);
	rc = dec(229, &f, f.n, &p);
	CHECK(rc == 0 && p.key.proto == 6 && p.key.sport == 500 &&
		      p.l4_off == 64,
	      "v6 dstopts + ah: l4 %u", p.l4_off);

	/* ESP and no-next-header: a key without ports. */
	f.n = 0;
	ipv6(&f, 50, A6, B6, 16);
	zeros(&f, 16);
	rc = dec(229, &f, f.n, &p);
	CHECK(rc == 0 && p.key.proto == 50 && p.flags == FV_PKT_L3, "esp");
	f.n = 0;
	ipv6(&f, 60, A6, B6, 8);
	putn(&f, "\x3b\x00\x01\x04\x00\x00\x00\x00", 8);
	rc = dec(229, &f, f.n, &p);
	CHECK(rc == 0 && p.key.proto == 59 && p.flags == FV_PKT_L3,
	      "no next header");

	/* 16 extension headers are walked, 17 are too many. */
	for (int k = 16; k <= 17; k++) {
		f.n = 0;
		ipv6(&f, 60, A6, B6, (unsigned)k * 8 + 12);
		for (int i = 0; i < k; i++) {
			put8(&f, i == k - 1 ? 17 : 60);
			putn(&f, "\x00\x01\x04\x00\x00\x00\x00", 7);
		}
		udp(&f, 1, 2);
		rc = dec(229, &f, f.n, &p);
		if (k == 16)
			CHECK(rc == 0 && p.key.sport == 1 &&
				      !(p.flags & FV_PKT_MALFORMED),
			      "16 extension headers");
		else
			CHECK(rc == 0 && p.key.sport == 0 &&
				      (p.flags & FV_PKT_MALFORMED),
			      "17 extension headers");
	}

	/* An extension header running past the payload length. */
	f.n = 0;
	ipv6(&f, 0, A6, B6, 8);
	put8(&f, 17);
	put8(&f, 1); /* 16 bytes, but the payload is 8 */
	zeros(&f, 6);
	udp(&f, 1, 2);
	rc = dec(229, &f, f.n, &p);
	CHECK(rc == 0 && (p.flags & FV_PKT_MALFORMED) && p.key.sport == 0,
	      "ext header past payload length: flags %#x", p.flags);

	/* Payload length beyond the capture: truncated, still decoded. */
	f.n = 0;
	ip_udp6(&f);
	fv_put_be16(f.b + 4, 1000);
	rc = dec(229, &f, f.n, &p);
	CHECK(rc == 0 && p.key.sport == 5000 && (p.flags & FV_PKT_TRUNC),
	      "v6 payload length past capture");

	/* IPv6 in IPv6: outer flow. */
	f.n = 0;
	ipv6(&f, 41, A6, B6, 40 + 12);
	ip_udp6(&f);
	rc = dec(229, &f, f.n, &p);
	CHECK(rc == 0 && key6(&p, A6, B6) && p.key.proto == 41 &&
		      p.flags == FV_PKT_L3,
	      "6in6");
	printf("ipv6: hop-by-hop, fragments first/later/atomic, routing, "
	       "dstopts, AH, ESP, no-next, 16/17 headers, truncation, 6in6\n");
}

static void test_icmp(void)
{
	struct fb f;
	struct fv_pkt req, rep, p;
	int rc;

	/* Echo request A -> B and reply B -> A: equal ports (the id). */
	f.n = 0;
	ipv4(&f, 1, A4, B4, 12, 0, 1);
	icmp(&f, 8, 0, 0x1d2e, 1);
	rc = dec(228, &f, f.n, &req);
	f.n = 0;
	ipv4(&f, 1, B4, A4, 12, 0, 2);
	icmp(&f, 0, 0, 0x1d2e, 1);
	CHECK(rc == 0 && dec(228, &f, f.n, &rep) == 0, "echo rc");
	CHECK(req.key.sport == 0x1d2e && req.key.dport == 0x1d2e &&
		      rep.key.sport == 0x1d2e && rep.key.dport == 0x1d2e,
	      "echo ports %u/%u %u/%u", req.key.sport, req.key.dport,
	      rep.key.sport, rep.key.dport);
	CHECK(req.icmp_type == 8 && rep.icmp_type == 0 && req.icmp_code == 0 &&
		      (req.flags & FV_PKT_L4) && req.payload_off == 28,
	      "echo type/code");
	CHECK(key4(&req, A4, B4) && key4(&rep, B4, A4), "echo addresses");

	/* Timestamp request/reply also use the identifier. */
	f.n = 0;
	ipv4(&f, 1, A4, B4, 12, 0, 1);
	icmp(&f, 13, 0, 77, 1);
	CHECK(dec(228, &f, f.n, &p) == 0 && p.key.sport == 77 &&
		      p.key.dport == 77,
	      "timestamp");

	/* Port unreachable quoting IPv4/UDP: an ICMP flow between the
	 * ICMP packet's own addresses, never the quoted UDP flow. */
	f.n = 0;
	ipv4(&f, 1, B4, A4, 8 + 28, 0, 3);
	put8(&f, 3);
	put8(&f, 3);
	put16(&f, 0);
	put32(&f, 0);
	ipv4(&f, 17, A4, B4, 8, 0, 4);
	put16(&f, 5353);
	put16(&f, 53);
	put16(&f, 8);
	put16(&f, 0);
	rc = dec(228, &f, f.n, &p);
	CHECK(rc == 0 && key4(&p, B4, A4) && p.key.proto == 1 &&
		      p.key.sport == (3 << 8 | 3) &&
		      p.key.dport == (3 << 8 | 3) && p.icmp_type == 3 &&
		      p.icmp_code == 3,
	      "icmp error: proto %u ports %u %u", p.key.proto, p.key.sport,
	      p.key.dport);

	/* ICMPv6 echo both ways, and a neighbor solicitation. */
	f.n = 0;
	ipv6(&f, 58, A6, B6, 12);
	icmp(&f, 128, 0, 0x4242, 9);
	rc = dec(229, &f, f.n, &req);
	f.n = 0;
	ipv6(&f, 58, B6, A6, 12);
	icmp(&f, 129, 0, 0x4242, 9);
	CHECK(rc == 0 && dec(229, &f, f.n, &rep) == 0 &&
		      req.key.sport == 0x4242 && rep.key.dport == 0x4242 &&
		      req.icmp_type == 128 && rep.icmp_type == 129,
	      "icmpv6 echo");
	f.n = 0;
	ipv6(&f, 58, A6, B6, 24);
	icmp(&f, 135, 0, 0, 0);
	zeros(&f, 12);
	CHECK(dec(229, &f, f.n, &p) == 0 && p.key.sport == 135 << 8 &&
		      p.key.dport == 135 << 8,
	      "icmpv6 ns");

	/* ICMP shorter than 8 bytes: truncated, no ports. */
	f.n = 0;
	ipv4(&f, 1, A4, B4, 12, 0, 1);
	icmp(&f, 8, 0, 5, 5);
	rc = dec(228, &f, 20 + 6, &p);
	CHECK(rc == 0 && (p.flags & FV_PKT_TRUNC) && !(p.flags & FV_PKT_L4) &&
		      p.key.sport == 0,
	      "icmp truncated");
	printf("icmp: echo both ways, timestamp, error quoting UDP, ICMPv6 "
	       "echo/NS, truncated\n");
}

/* The QinQ TCP frame cut at every length. */
static void test_truncation(void)
{
	struct fb f;
	struct fv_pkt p;
	uint32_t len, l3 = 22, l4 = 42;
	unsigned bad = 0;

	build_qinq_tcp(&f);
	for (len = 0; len <= f.n; len++) {
		int rc = dec(1, &f, len, &p);
		uint32_t want;

		if (len < l3 + 20) {
			want = FV_PKT_TRUNC;
			if (len >= 18)
				want |= FV_PKT_VLAN;
			if (rc != FV_EFORMAT || p.key.family != 0 ||
			    p.flags != want ||
			    (len >= 18 && p.key.vlan != 100)) {
				bad++;
				CHECK(0, "cut %u: rc %d flags %#x", len, rc,
				      p.flags);
			}
			continue;
		}
		want = FV_PKT_L3 | FV_PKT_VLAN;
		if (len >= l4 + 20)
			want |= FV_PKT_L4;
		if (len < f.n)
			want |= FV_PKT_TRUNC;
		if (rc != 0 || p.flags != want || !key4(&p, A4, B4) ||
		    p.key.vlan != 100 ||
		    (len >= l4 + 20 ? p.key.sport != 40000 || p.key.dport != 443
				    : p.key.sport != 0 || p.key.dport != 0) ||
		    (len >= l4 + 20 && p.payload_len != len - l4 - 20)) {
			bad++;
			CHECK(0, "cut %u: rc %d flags %#x want %#x", len, rc,
			      p.flags, want);
		}
	}
	printf("truncation: %u cuts of a %u-byte frame, %u wrong\n", f.n + 1,
	       f.n, bad);
}

/* ---- the corpus against tshark ------------------------------------ */

/* What we decoded for one frame. */
struct rec {
	uint32_t file, fno; /* index in the file list, frame number in it */
	int lt, rc;
	uint32_t flags;
	struct fv_flow_key key;
	uint8_t icmp_type, icmp_code;
	uint32_t frag_id;
};

struct recs {
	struct rec *r;
	size_t n, cap;
};

struct files {
	char **v;
	size_t n, cap;
};

static void files_add(struct files *fl, const char *path)
{
	if (fl->n == fl->cap) {
		fl->cap = fl->cap ? fl->cap * 2 : 64;
		fl->v = realloc(fl->v, fl->cap * sizeof(*fl->v));
		if (!fl->v) {
			perror("realloc");
			exit(1);
		}
	}
	fl->v[fl->n++] = strdup(path);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists the capture files under dir (recursively), skipping "skip". */
static void list_captures(const char *dir, const char *skip, struct files *fl)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[4096];

	if (!d)
		return;
	while ((e = readdir(d))) {
		struct stat st;
		size_t l = strlen(e->d_name);

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (stat(path, &st))
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (!skip || strcmp(e->d_name, skip))
				list_captures(path, skip, fl);
		} else if ((l > 5 && !strcmp(e->d_name + l - 5, ".pcap")) ||
			   (l > 7 && !strcmp(e->d_name + l - 7, ".pcapng"))) {
			files_add(fl, path);
		}
	}
	closedir(d);
}

/*
 * Reads every frame of path with libpcap and decodes it from a heap
 * buffer of exactly caplen bytes; *nread counts the frames. Returns 0,
 * -1 if libpcap cannot open the file, -2 if it stops before the end (the
 * frames of such a file are not kept in out).
 */
static int decode_file(const char *path, uint32_t file, struct recs *out,
		       long *nread)
{
	char errbuf[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *h;
	const u_char *data;
	pcap_t *pc = pcap_open_offline(path, errbuf);
	long n = 0;
	size_t n0 = out ? out->n : 0;
	int lt, r;

	*nread = 0;
	if (!pc)
		return -1;
	lt = pcap_datalink(pc);
	while ((r = pcap_next_ex(pc, &h, &data)) == 1) {
		uint8_t *c = malloc(h->caplen ? h->caplen : 1);
		struct fv_pkt p;
		struct rec *x;

		if (!c) {
			perror("malloc");
			exit(1);
		}
		memcpy(c, data, h->caplen);
		r = fv_decode(lt, c, h->caplen, &p);
		free(c);
		*nread = ++n;
		if (!out)
			continue;
		if (out->n == out->cap) {
			out->cap = out->cap ? out->cap * 2 : 4096;
			out->r = realloc(out->r, out->cap * sizeof(*out->r));
			if (!out->r) {
				perror("realloc");
				exit(1);
			}
		}
		x = &out->r[out->n++];
		x->file = file;
		x->fno = (uint32_t)n;
		x->lt = lt;
		x->rc = r;
		x->flags = p.flags;
		x->key = p.key;
		x->icmp_type = p.icmp_type;
		x->icmp_code = p.icmp_code;
		x->frag_id = p.frag_id;
	}
	pcap_close(pc);
	if (r != -2 && out)
		out->n = n0; /* only files read to their end are kept */
	return r == -2 ? 0 : -2;
}

/* Splits s at sep in place, keeping empty fields. */
static int split(char *s, char sep, char **f, int max)
{
	int n = 0;

	while (n < max) {
		char *e = strchr(s, sep);

		f[n++] = s;
		if (!e)
			break;
		*e = '\0';
		s = e + 1;
	}
	return n;
}

/* Fields asked of tshark, in this order (first occurrence of each). */
enum {
	T_NUM,
	T_PROTOS,
	T_IP_SRC,
	T_IP_DST,
	T_IP_PROTO,
	T_IP_MF,
	T_IP_FOFF,
	T_IP_ID,
	T_IP6_SRC,
	T_IP6_DST,
	T_IP6_NXT,
	T_IP6_FOFF,
	T_IP6_MORE,
	T_IP6_FID,
	T_TCP_SP,
	T_TCP_DP,
	T_UDP_SP,
	T_UDP_DP,
	T_SCTP_SP,
	T_SCTP_DP,
	T_ICMP_TYPE,
	T_ICMP_CODE,
	T_ICMP_ID,
	T_ICMP6_TYPE,
	T_ICMP6_CODE,
	T_ICMP6_ID,
	T_VLAN_ID,
	T_AD_ID,
	T_NFIELDS
};

static const char *const tfields[T_NFIELDS] = {
	"frame.number",
	"frame.protocols",
	"ip.src",
	"ip.dst",
	"ip.proto",
	"ip.flags.mf",
	"ip.frag_offset",
	"ip.id",
	"ipv6.src",
	"ipv6.dst",
	"ipv6.nxt",
	"ipv6.fraghdr.offset",
	"ipv6.fraghdr.more",
	"ipv6.fraghdr.ident",
	"tcp.srcport",
	"tcp.dstport",
	"udp.srcport",
	"udp.dstport",
	"sctp.srcport",
	"sctp.dstport",
	"icmp.type",
	"icmp.code",
	"icmp.ident",
	"icmpv6.type",
	"icmpv6.code",
	"icmpv6.echo.identifier",
	"vlan.id",
	"ieee8021ad.id",
};

/* Reasons a frame may differ from tshark on purpose. */
enum {
	R_LINKTYPE, /* a link type we do not decode (802.11, ...) */
	R_ENCAP,    /* an encapsulation before IP we do not decode */
	R_L4_TRUNC, /* transport header cut or impossible: no ports */
	R_NREASONS
};

static const char *const reason_name[R_NREASONS] = {
	"link type not decoded (802.11, radiotap, user)",
	"encapsulation before IP not decoded",
	"transport header truncated/malformed (tshark shows ports)",
};

static int supported_lt(int lt)
{
	switch (lt) {
	case 0:
	case 1:
	case 9:
	case 12:
	case 14:
	case 101:
	case 108:
	case 113:
	case 228:
	case 229:
	case 239:
	case 276:
		return 1;
	}
	return 0;
}

/* Layers we decode on the way to the outer IP header. */
static int known_layer(const char *t)
{
	static const char *const ok[] = {
		"eth", "ethertype",  "vlan",  "mpls",  "pppoes",
		"ppp", "sll",	     "null",  "nflog", "raw",
		"llc", "ieee8021ad", "frame", NULL,
	};

	for (int i = 0; ok[i]; i++)
		if (!strcmp(t, ok[i]))
			return 1;
	return 0;
}

static unsigned num(const char *s)
{
	return (unsigned)strtoul(s, NULL, 0);
}

struct cmp_stats {
	unsigned long frames, keyed, no_ip, ports, icmp, noports, frags, tagged;
	unsigned long reason[R_NREASONS];
	unsigned long mismatches;
	char encap[256];
};

static void note_encap(struct cmp_stats *st, const char *t)
{
	if (strstr(st->encap, t))
		return;
	if (strlen(st->encap) + strlen(t) + 2 < sizeof(st->encap)) {
		if (st->encap[0])
			strcat(st->encap, " ");
		strcat(st->encap, t);
	}
}

#define MISMATCH(...)                                                          \
	do {                                                                   \
		st->mismatches++;                                              \
		if (st->mismatches <= 30) {                                    \
			fprintf(stderr, "MISMATCH %s frame %lu: ", file, fno); \
			fprintf(stderr, __VA_ARGS__);                          \
			fprintf(stderr, " [%s]\n", f[T_PROTOS]);               \
		}                                                              \
		return;                                                        \
	} while (0)

/* Compares one frame's decode with tshark's fields. */
static void compare_frame(const struct rec *r, char **f, const char *file,
			  unsigned long fno, struct cmp_stats *st)
{
	char protos[8192], *tok[512];
	int nt, l3 = -1, i, v6;
	uint8_t s[16] = {0}, d[16] = {0};
	const char *t;
	unsigned sp, dp, proto;

	st->frames++;
	snprintf(protos, sizeof(protos), "%s", f[T_PROTOS]);
	nt = split(protos, ':', tok, 512);
	for (i = 0; i < nt; i++)
		if (!strcmp(tok[i], "ip") || !strcmp(tok[i], "ipv6")) {
			l3 = i;
			break;
		}
	if (l3 < 0) {
		if (r->key.family)
			MISMATCH("we found IP, tshark did not");
		st->no_ip++;
		return;
	}
	v6 = !strcmp(tok[l3], "ipv6");
	if (!r->key.family) {
		if (!supported_lt(r->lt)) {
			st->reason[R_LINKTYPE]++;
			return;
		}
		for (i = 1; i < l3; i++)
			if (!known_layer(tok[i])) {
				st->reason[R_ENCAP]++;
				note_encap(st, tok[i]);
				return;
			}
		MISMATCH("no key (rc %d flags %#x), tshark has %s", r->rc,
			 r->flags, tok[l3]);
	}
	if (inet_pton(v6 ? AF_INET6 : AF_INET, f[v6 ? T_IP6_SRC : T_IP_SRC],
		      s) != 1 ||
	    inet_pton(v6 ? AF_INET6 : AF_INET, f[v6 ? T_IP6_DST : T_IP_DST],
		      d) != 1)
		MISMATCH("tshark addresses unreadable");
	if (r->key.family != (v6 ? 6 : 4) ||
	    memcmp(r->key.saddr, s, v6 ? 16 : 4) ||
	    memcmp(r->key.daddr, d, v6 ? 16 : 4))
		MISMATCH("addresses differ (family %u)", r->key.family);
	st->keyed++;

	/* The VLAN of the outermost tag: tshark names an 802.1Q tag
	 * "vlan" and an 802.1ad S-tag "ieee8021ad". */
	for (i = 1; i < l3; i++) {
		const char *vid;

		if (!strcmp(tok[i], "vlan"))
			vid = f[T_VLAN_ID];
		else if (!strcmp(tok[i], "ieee8021ad"))
			vid = f[T_AD_ID];
		else
			continue;
		if (!(r->flags & FV_PKT_VLAN) || r->key.vlan != num(vid))
			MISMATCH("vlan %u, tshark %s", r->key.vlan, vid);
		st->tagged++;
		break;
	}
	if (i == l3 && (r->flags & FV_PKT_VLAN))
		MISMATCH("vlan %u, tshark none", r->key.vlan);

	/* Fragment flags. */
	if (!v6) {
		unsigned mf = num(f[T_IP_MF]), off = num(f[T_IP_FOFF]);
		int frag = mf || off;

		if (!!(r->flags & FV_PKT_FRAG) != frag ||
		    !!(r->flags & FV_PKT_FRAG_LATER) != (off != 0) ||
		    (frag && r->frag_id != num(f[T_IP_ID])))
			MISMATCH("v4 fragment flags %#x, tshark mf %u off %u",
				 r->flags, mf, off);
		if (frag)
			st->frags++;
		if (r->key.proto != num(f[T_IP_PROTO]))
			MISMATCH("proto %u, tshark %s", r->key.proto,
				 f[T_IP_PROTO]);
	} else if (f[T_IP6_FOFF][0]) {
		unsigned more = !strcmp(f[T_IP6_MORE], "1") ||
				!strcmp(f[T_IP6_MORE], "True");
		unsigned off = num(f[T_IP6_FOFF]);
		int frag = more || off;

		if (!!(r->flags & FV_PKT_FRAG) != frag ||
		    !!(r->flags & FV_PKT_FRAG_LATER) != (off != 0) ||
		    (frag && r->frag_id != num(f[T_IP6_FID])))
			MISMATCH("v6 fragment flags %#x, tshark more %s off %u",
				 r->flags, f[T_IP6_MORE], off);
		if (frag)
			st->frags++;
	}

	/* The outer transport: the layer after the outer IP header and
	 * its extension headers. */
	t = "";
	for (i = l3 + 1; i < nt; i++)
		if (strncmp(tok[i], "ipv6.", 5) && strcmp(tok[i], "ah")) {
			t = tok[i];
			break;
		}
	if (!strcmp(t, "tcp") || !strcmp(t, "udp") || !strcmp(t, "sctp")) {
		int k = t[0] == 't'   ? T_TCP_SP
			: t[0] == 'u' ? T_UDP_SP
				      : T_SCTP_SP;

		proto = t[0] == 't' ? 6 : t[0] == 'u' ? 17 : 132;
		sp = num(f[k]);
		dp = num(f[k + 1]);
		if (!(r->flags & FV_PKT_L4) &&
		    (r->flags & (FV_PKT_TRUNC | FV_PKT_MALFORMED))) {
			st->reason[R_L4_TRUNC]++;
			return;
		}
		if (r->key.proto != proto || !(r->flags & FV_PKT_L4) ||
		    r->key.sport != sp || r->key.dport != dp)
			MISMATCH("%s ports %u > %u proto %u flags %#x, tshark "
				 "%u > %u",
				 t, r->key.sport, r->key.dport, r->key.proto,
				 r->flags, sp, dp);
		st->ports++;
		return;
	}
	if (!strcmp(t, "icmp") || !strcmp(t, "icmpv6")) {
		int six = !strcmp(t, "icmpv6");
		unsigned ty = num(f[six ? T_ICMP6_TYPE : T_ICMP_TYPE]);
		unsigned co = num(f[six ? T_ICMP6_CODE : T_ICMP_CODE]);
		const char *id = f[six ? T_ICMP6_ID : T_ICMP_ID];
		unsigned want;

		if (!(r->flags & FV_PKT_L4) &&
		    (r->flags & (FV_PKT_TRUNC | FV_PKT_MALFORMED))) {
			st->reason[R_L4_TRUNC]++;
			return;
		}
		want = id[0] ? num(id) : (ty << 8 | co);
		if (r->key.proto != (six ? 58 : 1) || !(r->flags & FV_PKT_L4) ||
		    r->icmp_type != ty || r->icmp_code != co ||
		    r->key.sport != want || r->key.dport != want)
			MISMATCH("%s type %u code %u ports %u/%u, tshark type "
				 "%u code %u id '%s'",
				 t, r->icmp_type, r->icmp_code, r->key.sport,
				 r->key.dport, ty, co, id);
		st->icmp++;
		return;
	}
	/* Anything else (a later fragment, a tunnel, another protocol):
	 * a key without ports. */
	if ((r->flags & FV_PKT_L4) || r->key.sport || r->key.dport)
		MISMATCH("ports %u > %u for '%s'", r->key.sport, r->key.dport,
			 t);
	if (v6 && l3 + 1 < nt && strncmp(tok[l3 + 1], "ipv6.", 5) &&
	    f[T_IP6_NXT][0] && r->key.proto != num(f[T_IP6_NXT]))
		MISMATCH("v6 proto %u, tshark nxt %s", r->key.proto,
			 f[T_IP6_NXT]);
	st->noports++;
}

static int have_tool(const char *name)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", name);
	return system(cmd) == 0;
}

/* Returns 0 when compared, 77 when the corpus or tshark is missing. */
static int test_corpus(const char *corpus)
{
	struct files fl = {0}, used = {0};
	struct recs rs = {0};
	struct cmp_stats st = {0};
	char dir[] = "/tmp/fv-test-decode.XXXXXX", merged[64], line[16384];
	char *cmd, *f[T_NFIELDS + 1];
	size_t clen, i, unread = 0;
	FILE *out;
	unsigned long fno = 0;
	long n;

	list_captures(corpus, "malformed", &fl);
	if (!fl.n) {
		printf("SKIP corpus: no captures under %s\n", corpus);
		return 77;
	}
	if (!have_tool("tshark") || !have_tool("mergecap")) {
		printf("SKIP corpus: tshark/mergecap not installed\n");
		return 77;
	}
	qsort(fl.v, fl.n, sizeof(*fl.v), cmp_str);
	for (i = 0; i < fl.n; i++) {
		if (decode_file(fl.v[i], (uint32_t)used.n, &rs, &n)) {
			unread++;
			printf("corpus: libpcap cannot read all of %s, left out\n",
			       fl.v[i]);
			continue;
		}
		files_add(&used, fl.v[i]);
	}
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(merged, sizeof(merged), "%s/all.pcapng", dir);
	clen = 8192;
	for (i = 0; i < used.n; i++)
		clen += strlen(used.v[i]) + 4;
	cmd = malloc(clen);
	if (!cmd) {
		perror("malloc");
		return 1;
	}
	n = snprintf(cmd, clen, "mergecap -a -F pcapng -w %s", merged);
	for (i = 0; i < used.n; i++)
		n += snprintf(cmd + n, clen - (size_t)n, " '%s'", used.v[i]);
	n += snprintf(cmd + n, clen - (size_t)n,
		      " && tshark -n -r %s -o ip.defragment:FALSE"
		      " -o ipv6.defragment:FALSE -T fields -E separator=,"
		      " -E occurrence=f",
		      merged);
	for (i = 0; i < T_NFIELDS; i++)
		n += snprintf(cmd + n, clen - (size_t)n, " -e %s", tfields[i]);
	snprintf(cmd + n, clen - (size_t)n, " 2>/dev/null");
	out = popen(cmd, "r");
	if (!out) {
		perror("popen");
		return 1;
	}
	while (fgets(line, sizeof(line), out)) {
		char *nl = strchr(line, '\n');
		const struct rec *r;

		if (nl)
			*nl = '\0';
		if (split(line, ',', f, T_NFIELDS) != T_NFIELDS) {
			fprintf(stderr, "tshark line with too few fields\n");
			failed++;
			continue;
		}
		fno++;
		if (num(f[T_NUM]) != fno || fno > rs.n) {
			fprintf(stderr,
				"tshark frame %s, expected %lu of %zu\n",
				f[T_NUM], fno, rs.n);
			failed++;
			break;
		}
		r = &rs.r[fno - 1];
		compare_frame(r, f, used.v[r->file], r->fno, &st);
	}
	pclose(out);
	unlink(merged);
	rmdir(dir);
	free(cmd);

	printf("corpus: %zu files (%zu left out: libpcap cannot read them), "
	       "%zu frames decoded, %lu compared with tshark\n",
	       used.n, unread, rs.n, st.frames);
	printf("corpus: %lu frames with an IP key: %lu TCP/UDP/SCTP ports, "
	       "%lu ICMP, %lu without ports; %lu fragments; %lu VLAN-tagged; "
	       "%lu without IP in either\n",
	       st.keyed, st.ports, st.icmp, st.noports, st.frags, st.tagged,
	       st.no_ip);
	for (i = 0; i < R_NREASONS; i++)
		printf("corpus: differs by design: %-58s %lu\n", reason_name[i],
		       st.reason[i]);
	if (st.encap[0])
		printf("corpus: encapsulations not decoded: %s\n", st.encap);
	printf("corpus: %lu unexplained differences\n", st.mismatches);
	CHECK(fno == rs.n, "tshark gave %lu frames, we read %zu", fno, rs.n);
	CHECK(st.mismatches == 0, "%lu frames differ from tshark",
	      st.mismatches);
	CHECK(st.ports > 100000 && st.icmp > 50,
	      "too few frames compared (%lu ports, %lu icmp)", st.ports,
	      st.icmp);
	for (i = 0; i < fl.n; i++)
		free(fl.v[i]);
	for (i = 0; i < used.n; i++)
		free(used.v[i]);
	free(fl.v);
	free(used.v);
	free(rs.r);
	return 0;
}

static void test_malformed(const char *corpus)
{
	struct files fl = {0};
	char dir[4096];
	unsigned long frames = 0, opened = 0;
	size_t i;

	snprintf(dir, sizeof(dir), "%s/malformed", corpus);
	list_captures(dir, NULL, &fl);
	qsort(fl.v, fl.n, sizeof(*fl.v), cmp_str);
	for (i = 0; i < fl.n; i++) {
		long n;

		if (decode_file(fl.v[i], 0, NULL, &n) != -1)
			opened++;
		frames += (unsigned long)n;
		free(fl.v[i]);
	}
	free(fl.v);
	printf("malformed: %zu files, %lu opened by libpcap, %lu frames "
	       "decoded without a crash\n",
	       fl.n, opened, frames);
	CHECK(fl.n == 0 || frames > 2000, "too few malformed frames");
}

int main(void)
{
	const char *corpus = getenv("FV_CORPUS");
	struct timespec t0, t1;
	int rc;

	if (!corpus || !*corpus)
		corpus = "../shared/corpus";
	clock_gettime(CLOCK_MONOTONIC, &t0);
	test_ethernet();
	test_mpls_pppoe();
	test_linktypes();
	test_ipv4();
	test_ipv6();
	test_icmp();
	test_truncation();
	test_malformed(corpus);
	rc = test_corpus(corpus);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("time: %.1f s\n",
	       (double)(t1.tv_sec - t0.tv_sec) +
		       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	if (failed) {
		printf("%d checks failed\n", failed);
		return 1;
	}
	if (rc == 77)
		return 77;
	printf("all checks passed\n");
	return 0;
}
