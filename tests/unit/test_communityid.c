/*
 * Unit tests for capture/communityid.c and capture/sha1.c.
 *
 * 1. SHA-1 against the FIPS 180-4 example vectors (NIST "Examples with
 *    intermediate values": "abc", the 448- and 896-bit messages) and the
 *    long-message value for one million 'a', fed in uneven pieces.
 * 2. Community ID against the published baseline of
 *    corelight/community-id-spec (baseline/README.md tables: defaults,
 *    seed 1, and the unencoded SHA-1 digests; baseline_deflt.json and
 *    baseline_seed1.json), copied here as constants.
 * 3. The Community ID test captures in corpus/communityid/ (from Zeek):
 *    every frame decoded, and the set of IDs compared with Zeek's btest
 *    baselines (testing/btest/Baseline/bifs.community_id.run-pcaps/,
 *    one .out per capture, zeek/zeek). Zeek's sctp.pcap baseline has no
 *    ID (the Zeek of that baseline had no SCTP analyzer), so sctp.pcap is
 *    checked against the spec's baseline_deflt.json, made from the same
 *    trace.
 * 4. Every frame of the corpus outside malformed/, against the ID tshark
 *    computes for it (its "communityid" post-dissector), with the frames
 *    where tshark differs by design counted per reason.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capture/decode.h"
#include "capture/sha1_int.h"
#include "common/fv.h"

#include "tests/unit/check.h"

static void hex(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

static void test_sha1(void)
{
	static const struct {
		const char *msg, *digest;
	} v[] = {
		{"abc", "a9993e364706816aba3e25717850c26c9cd0d89d"},
		{"", "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
		{"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		 "84983e441c3bd26ebaae4aa1f95129e5e54670f1"},
		{"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
		 "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
		 "a49b2446a02c645bf419f995b67091253a04a259"},
	};
	uint8_t d[FV_SHA1_LEN], d2[FV_SHA1_LEN];
	char h[2 * FV_SHA1_LEN + 1];
	struct fv_sha1 s;
	static char mil[1000000];
	size_t i, off;

	for (i = 0; i < 4; i++) {
		fv_sha1(v[i].msg, strlen(v[i].msg), d);
		hex(d, sizeof(d), h);
		CHECK(!strcmp(h, v[i].digest), "sha1 vector %zu: %s", i, h);
		/* Byte by byte gives the same digest. */
		fv_sha1_init(&s);
		for (off = 0; v[i].msg[off]; off++)
			fv_sha1_update(&s, v[i].msg + off, 1);
		fv_sha1_final(&s, d2);
		CHECK(!memcmp(d, d2, sizeof(d)), "sha1 vector %zu bytewise", i);
	}
	/* One million 'a' (FIPS 180-2 appendix A.3), in pieces of 1..97. */
	memset(mil, 'a', sizeof(mil));
	fv_sha1_init(&s);
	for (off = 0, i = 1; off < sizeof(mil); i = i % 97 + 1) {
		size_t n = i < sizeof(mil) - off ? i : sizeof(mil) - off;

		fv_sha1_update(&s, mil + off, n);
		off += n;
	}
	fv_sha1_final(&s, d);
	hex(d, sizeof(d), h);
	CHECK(!strcmp(h, "34aa973cd4c4daa4f61eeb2bdbad27316534016f"),
	      "sha1 million a: %s", h);
	/* Every message length 0..130 hashes the same in one piece and in
	 * two pieces split anywhere (padding across block edges). */
	for (size_t len = 0; len <= 130; len++) {
		fv_sha1(mil, len, d);
		for (size_t cut = 0; cut <= len; cut += 7) {
			fv_sha1_init(&s);
			fv_sha1_update(&s, mil, cut);
			fv_sha1_update(&s, mil + cut, len - cut);
			fv_sha1_final(&s, d2);
			CHECK(!memcmp(d, d2, sizeof(d)), "sha1 len %zu cut %zu",
			      len, cut);
		}
	}
	printf("sha1: FIPS 180 vectors, million 'a', split updates\n");
}

/* One baseline row: a flow tuple and its IDs (sport < 0: no ports). */
struct row {
	int proto;
	const char *saddr, *daddr;
	int sport, dport;
	const char *id0, *id1, *hex0;
};

/* corelight/community-id-spec baseline/README.md, the three tables
 * (ICMP rows give type and code as the ports). */
static const struct row readme[] = {
	{6, "1.2.3.4", "5.6.7.8", 1122, 3344,
	 "1:wCb3OG7yAFWelaUydu0D+125CLM=", "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk=",
	 "c026f7386ef200559e95a53276ed03fb5db908b3"},
	{6, "5.6.7.8", "1.2.3.4", 3344, 1122,
	 "1:wCb3OG7yAFWelaUydu0D+125CLM=", "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk=",
	 "c026f7386ef200559e95a53276ed03fb5db908b3"},
	{17, "1.2.3.4", "5.6.7.8", 1122, 3344,
	 "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg=", "1:OShq+iKDAMVouh/4bMxB9Sz4amw=",
	 "d0cbbd227431eb3e1988264cffb1d78b658c84e8"},
	{17, "5.6.7.8", "1.2.3.4", 3344, 1122,
	 "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg=", "1:OShq+iKDAMVouh/4bMxB9Sz4amw=",
	 "d0cbbd227431eb3e1988264cffb1d78b658c84e8"},
	{132, "1.2.3.4", "5.6.7.8", 1122, 3344,
	 "1:EKt4MsxuyaE6mL+hmrEkQ9csDD8=", "1:uitchpn5MMGAQKBJh7bIr/bAr7s=",
	 "10ab7832cc6ec9a13a98bfa19ab12443d72c0c3f"},
	{132, "5.6.7.8", "1.2.3.4", 3344, 1122,
	 "1:EKt4MsxuyaE6mL+hmrEkQ9csDD8=", "1:uitchpn5MMGAQKBJh7bIr/bAr7s=",
	 "10ab7832cc6ec9a13a98bfa19ab12443d72c0c3f"},
	{1, "1.2.3.4", "5.6.7.8", 8, 0,
	 "1:crodRHL2FEsHjbv3UkRrfbs4bZ0=", "1:9pr4ZGTICiuZoIh90RRYE2RyXpU=",
	 "72ba1d4472f6144b078dbbf752446b7dbb386d9d"},
	{1, "5.6.7.8", "1.2.3.4", 0, 0,
	 "1:crodRHL2FEsHjbv3UkRrfbs4bZ0=", "1:9pr4ZGTICiuZoIh90RRYE2RyXpU=",
	 "72ba1d4472f6144b078dbbf752446b7dbb386d9d"},
	{1, "1.2.3.4", "5.6.7.8", 11, 0,
	 "1:f/YiSyWqczrTgfUCZlBUnvHRcPk=", "1:1DD7cWGC/Yg91YGsQeni8du3pIA=",
	 "7ff6224b25aa733ad381f5026650549ef1d170f9"},
	{58, "fe80:0001:0203:0405:0607:0809:0A0B:0C0D",
	 "fe80:1011:1213:1415:1617:1819:1A1B:1C1D", 128, 0,
	 "1:0bf7hyMJUwt3fMED7z8LIfRpBeo=", "1:IO27GQzPuCtNnwFvjWALMHu5tJE=",
	 "d1b7fb872309530b777cc103ef3f0b21f46905ea"},
	{58, "fe80:1011:1213:1415:1617:1819:1A1B:1C1D",
	 "fe80:0001:0203:0405:0607:0809:0A0B:0C0D", 129, 0,
	 "1:0bf7hyMJUwt3fMED7z8LIfRpBeo=", "1:IO27GQzPuCtNnwFvjWALMHu5tJE=",
	 "d1b7fb872309530b777cc103ef3f0b21f46905ea"},
	{58, "fe80:0001:0203:0405:0607:0809:0A0B:0C0D",
	 "fe80:1011:1213:1415:1617:1819:1A1B:1C1D", 146, 0,
	 "1:fYC8+pz24E+EhANP1EZhpX0Dw10=", "1:Cv4IKJe56BNkF0MBW2YxQ3Nwc3s=",
	 "7d80bcfa9cf6e04f8484034fd44661a57d03c35d"},
	{46, "1.2.3.4", "5.6.7.8", -1, -1,
	 "1:ikv3kmf89luf73WPz1jOs49S768=", "1:/buhqeOmaRCopOZFy9HnoJd5XW8=",
	 "8a4bf79267fcf65b9fef758fcf58ceb38f52efaf"},
	{46, "5.6.7.8", "1.2.3.4", -1, -1,
	 "1:ikv3kmf89luf73WPz1jOs49S768=", "1:/buhqeOmaRCopOZFy9HnoJd5XW8=",
	 "8a4bf79267fcf65b9fef758fcf58ceb38f52efaf"},
	{46, "fe80:0001:0203:0405:0607:0809:0A0B:0C0D",
	 "fe80:1011:1213:1415:1617:1819:1A1B:1C1D", -1, -1,
	 "1:wQ/2mwrnXP4lmJcHdGL5ePjR+e0=", "1:j6EyyfBzL4vWKHFXgUqb5Az3OxM=",
	 "c10ff69b0ae75cfe259897077462f978f8d1f9ed"},
	{46, "fe80:1011:1213:1415:1617:1819:1A1B:1C1D",
	 "fe80:0001:0203:0405:0607:0809:0A0B:0C0D", -1, -1,
	 "1:wQ/2mwrnXP4lmJcHdGL5ePjR+e0=", "1:j6EyyfBzL4vWKHFXgUqb5Az3OxM=",
	 "c10ff69b0ae75cfe259897077462f978f8d1f9ed"},
};

/* baseline_deflt.json and baseline_seed1.json (pycommunityid over the
 * spec's pcaps/combined.pcap). For ICMP the ports there are the type and
 * its counterpart (or code), so sport is the type. */
static const struct row json[] = {
	{58, "fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea", 135, 136,
	 "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=", "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY=",
	 NULL},
	{58, "fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", 136, 135,
	 "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=", "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY=",
	 NULL},
	{58, "fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", 135, 136,
	 "1:zavyT/cezQr1fmImYCwYnMXbgck=", "1:2hSqmsDZ2kdcY9kbiUzOEBic0iM=",
	 NULL},
	{58, "fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea", 136, 135,
	 "1:zavyT/cezQr1fmImYCwYnMXbgck=", "1:2hSqmsDZ2kdcY9kbiUzOEBic0iM=",
	 NULL},
	{58, "3ffe:501:1800:2345::2", "3ffe:507:0:1:200:86ff:fe05:80da", 3, 0,
	 "1:2ObVBgIn28oZvibYZhZMBgh7WdQ=", "1:lVEtCZpYu84Xqaa++3lXFyuu2n4=",
	 NULL},
	{58, "3ffe:501:410:0:2c0:dfff:fe47:33e",
	 "3ffe:507:0:1:200:86ff:fe05:80da", 1, 4,
	 "1:hLZd0XGWojozrvxqE0dWB1iM6R0=", "1:W8MHwXpWzpoSTD+cGcaJr4u0ys8=",
	 NULL},
	{58, "3ffe:507:0:1:200:86ff:fe05:80da", "3ffe:501:0:1001::2", 128, 129,
	 "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=", "1:GfZxjAkDk2MkegpBYHV6tadtFXQ=",
	 NULL},
	{58, "3ffe:501:0:1001::2", "3ffe:507:0:1:200:86ff:fe05:80da", 129, 128,
	 "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=", "1:GfZxjAkDk2MkegpBYHV6tadtFXQ=",
	 NULL},
	{58, "fe80::200:86ff:fe05:80da", "ff02::2", 133, 134,
	 "1:hO+sN4H+MG5MY/8hIrXPqc4ZQz0=", "1:L7Ka0ZMYu+J3bL4ulW2PrqyXNo8=",
	 NULL},
	{58, "fe80::260:97ff:fe07:69ea", "ff02::1", 134, 133,
	 "1:pkvHqCL88/tg1k4cPigmZXUtL00=", "1:K/ee5UCqAMAQXDorP5nSa2CGLjc=",
	 NULL},
	{1, "192.168.0.89", "192.168.0.1", 8, 0,
	 "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=", "1:03g6IloqVBdcZlPyX8r0hgoE7kA=",
	 NULL},
	{1, "192.168.0.1", "192.168.0.89", 0, 8,
	 "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=", "1:03g6IloqVBdcZlPyX8r0hgoE7kA=",
	 NULL},
	{1, "10.0.0.1", "10.0.0.2", 11, 0, "1:YHxtAirCG//0OzkcVAukqKQN9xM=",
	 "1:XjUibYHaafLQ3pxQeiMI8g25q20=", NULL},
	{6, "2001:470:e5bf:dead:4957:2174:e82c:4887", "2607:f8b0:400c:c03::1a",
	 63943, 25, "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=",
	 "1:eJYTW6AOzFLlSUoESovMjnu7rMw=", NULL},
	{6, "2607:f8b0:400c:c03::1a", "2001:470:e5bf:dead:4957:2174:e82c:4887",
	 25, 63943, "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=",
	 "1:eJYTW6AOzFLlSUoESovMjnu7rMw=", NULL},
	{132, "192.168.170.8", "192.168.170.56", 7, 7,
	 "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=", "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg=",
	 NULL},
	{132, "192.168.170.56", "192.168.170.8", 7, 7,
	 "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=", "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg=",
	 NULL},
	{6, "128.232.110.120", "66.35.250.204", 34855, 80,
	 "1:LQU9qZlK+B5F3KDmev6m5PMibrg=", "1:3V71V58M3Ksw/yuFALMcW0LAHvc=",
	 NULL},
	{6, "66.35.250.204", "128.232.110.120", 80, 34855,
	 "1:LQU9qZlK+B5F3KDmev6m5PMibrg=", "1:3V71V58M3Ksw/yuFALMcW0LAHvc=",
	 NULL},
	{17, "192.168.1.52", "8.8.8.8", 54585, 53,
	 "1:d/FP5EW3wiY1vCndhwleRRKHowQ=", "1:Q9We8WO3piVF8yEQBNJF4uiSVrI=",
	 NULL},
	{17, "8.8.8.8", "192.168.1.52", 53, 54585,
	 "1:d/FP5EW3wiY1vCndhwleRRKHowQ=", "1:Q9We8WO3piVF8yEQBNJF4uiSVrI=",
	 NULL},
	{46, "10.1.12.1", "10.1.12.2", -1, -1, "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=",
	 "1:rYir8gphR31noO9iDRQmF/BteEI=", NULL},
	{46, "10.1.12.2", "10.1.12.1", -1, -1, "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=",
	 "1:rYir8gphR31noO9iDRQmF/BteEI=", NULL},
};

static void make_key(const struct row *r, struct fv_flow_key *k)
{
	memset(k, 0, sizeof(*k));
	if (inet_pton(AF_INET, r->saddr, k->saddr) == 1) {
		k->family = 4;
		inet_pton(AF_INET, r->daddr, k->daddr);
	} else {
		k->family = 6;
		inet_pton(AF_INET6, r->saddr, k->saddr);
		inet_pton(AF_INET6, r->daddr, k->daddr);
	}
	k->proto = (uint8_t)r->proto;
	if (r->sport >= 0 && r->proto != 1 && r->proto != 58) {
		k->sport = (uint16_t)r->sport;
		k->dport = (uint16_t)r->dport;
	}
}

/* Decodes the base64 after "1:" back to the digest, as hex. */
static int unbase64_hex(const char *id, char *out)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				  "abcdefghijklmnopqrstuvwxyz0123456789+/";
	uint8_t d[32];
	size_t n = 0;
	uint32_t acc = 0;
	int bits = 0;

	for (const char *p = id + 2; *p && *p != '='; p++) {
		const char *c = strchr(tab, *p);

		if (!c)
			return -1;
		acc = acc << 6 | (uint32_t)(c - tab);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			d[n++] = (uint8_t)(acc >> bits);
		}
	}
	hex(d, n, out);
	return (int)n;
}

static void check_rows(const struct row *rows, size_t n, const char *name)
{
	char id[64], h[64];
	struct fv_flow_key k;
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		const struct row *r = &rows[i];
		uint8_t type = r->sport >= 0 ? (uint8_t)r->sport : 0;
		uint8_t code = r->dport >= 0 ? (uint8_t)r->dport : 0;

		make_key(r, &k);
		rc = fv_community_id_key(&k, type, code, 0, id, sizeof(id));
		CHECK(rc == 0 && !strcmp(id, r->id0), "%s row %zu: %s, want %s",
		      name, i, id, r->id0);
		rc = fv_community_id_key(&k, type, code, 1, id, sizeof(id));
		CHECK(rc == 0 && !strcmp(id, r->id1),
		      "%s row %zu seed 1: %s, want %s", name, i, id, r->id1);
		if (r->hex0) {
			fv_community_id_key(&k, type, code, 0, id, sizeof(id));
			CHECK(unbase64_hex(id, h) == 20 && !strcmp(h, r->hex0),
			      "%s row %zu digest %s", name, i, h);
		}
	}
	printf("community id: %zu rows of the spec's %s checked, seeds 0 "
	       "and 1\n",
	       n, name);
}

static void test_api(void)
{
	struct fv_pkt p;
	char id[64], id2[64];
	int rc;

	/* No IP: FV_EFORMAT; a short buffer: -EINVAL. */
	memset(&p, 0, sizeof(p));
	CHECK(fv_community_id(&p, 0, id, sizeof(id)) == FV_EFORMAT,
	      "no family");
	p.key.family = 4;
	p.key.proto = 6;
	p.flags = FV_PKT_L3 | FV_PKT_L4;
	CHECK(fv_community_id(&p, 0, id, 31) == -EINVAL, "short buffer");
	rc = fv_community_id(&p, 0, id, 32);
	CHECK(rc == 0 && strlen(id) == 30, "32 bytes suffice: %s", id);

	/* A packet without its transport header (a later fragment) hashes
	 * addresses and protocol only, as the spec's port-less form; its
	 * flow key hashes ports 0. */
	memset(&p, 0, sizeof(p));
	p.key.family = 4;
	inet_pton(AF_INET, "1.2.3.4", p.key.saddr);
	inet_pton(AF_INET, "5.6.7.8", p.key.daddr);
	p.key.proto = 46;
	p.flags = FV_PKT_L3;
	fv_community_id(&p, 0, id, sizeof(id));
	CHECK(!strcmp(id, "1:ikv3kmf89luf73WPz1jOs49S768="), "rsvp pkt %s", id);
	p.key.proto = 6;
	p.flags = FV_PKT_L3 | FV_PKT_FRAG | FV_PKT_FRAG_LATER;
	fv_community_id(&p, 0, id, sizeof(id));
	fv_community_id_key(&p.key, 0, 0, 0, id2, sizeof(id2));
	CHECK(strcmp(id, id2) != 0, "later fragment: port-less %s", id);
	p.flags |= FV_PKT_L4;
	fv_community_id(&p, 0, id, sizeof(id));
	CHECK(!strcmp(id, id2), "with L4 the packet and key forms agree");

	/* Equal addresses: the ports decide the order. */
	memset(&p, 0, sizeof(p));
	p.key.family = 4;
	inet_pton(AF_INET, "127.0.0.1", p.key.saddr);
	inet_pton(AF_INET, "127.0.0.1", p.key.daddr);
	p.key.proto = 17;
	p.flags = FV_PKT_L3 | FV_PKT_L4;
	p.key.sport = 5000;
	p.key.dport = 53;
	fv_community_id(&p, 0, id, sizeof(id));
	p.key.sport = 53;
	p.key.dport = 5000;
	fv_community_id(&p, 0, id2, sizeof(id2));
	CHECK(!strcmp(id, id2), "loopback both ways: %s %s", id, id2);

	/* Symmetry over many keys (two-way protocols). */
	unsigned bad = 0;
	uint32_t x = 12345;
	for (int i = 0; i < 2000; i++) {
		struct fv_flow_key k = {0}, r;
		static const uint8_t protos[] = {6, 17, 132, 47, 1, 58};

		k.family = i & 1 ? 6 : 4;
		for (int j = 0; j < (k.family == 4 ? 4 : 16); j++) {
			x = x * 1103515245u + 12345u;
			k.saddr[j] = (uint8_t)(x >> 16);
			x = x * 1103515245u + 12345u;
			/* mostly equal prefixes, so later bytes decide */
			k.daddr[j] = j < 3 ? k.saddr[j] : (uint8_t)(x >> 16);
		}
		k.proto = protos[i % 6];
		k.sport = (uint16_t)(x >> 3);
		k.dport = (uint16_t)(x >> 7);
		r = k;
		memcpy(r.saddr, k.daddr, 16);
		memcpy(r.daddr, k.saddr, 16);
		r.sport = k.dport;
		r.dport = k.sport;
		/* ICMP: echo request one way, reply the other. */
		fv_community_id_key(&k, k.proto == 58 ? 128 : 8, 0, 0, id,
				    sizeof(id));
		fv_community_id_key(&r, k.proto == 58 ? 129 : 0, 0, 0, id2,
				    sizeof(id2));
		if (strcmp(id, id2))
			bad++;
	}
	CHECK(bad == 0, "%u asymmetric ids", bad);
	printf("community id: errors, port-less packets, loopback, symmetry "
	       "of 2000 keys\n");
}

/* ---- captures ----------------------------------------------------- */

struct idset {
	char (*v)[40];
	size_t n, cap;
};

static void set_add(struct idset *s, const char *id)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->v[i], id))
			return;
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		if (!s->v) {
			perror("realloc");
			exit(1);
		}
	}
	snprintf(s->v[s->n++], sizeof(s->v[0]), "%s", id);
}

static int set_has(const struct idset *s, const char *id)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->v[i], id))
			return 1;
	return 0;
}

/* Per-frame IDs of a file ("" when none), or -1 if libpcap fails. */
typedef void (*frame_fn)(void *ctx, const struct fv_pkt *p, const char *id);

static int each_frame(const char *path, frame_fn fn, void *ctx)
{
	char errbuf[PCAP_ERRBUF_SIZE], id[64];
	struct pcap_pkthdr *h;
	const u_char *data;
	pcap_t *pc = pcap_open_offline(path, errbuf);
	int lt, r;

	if (!pc)
		return -1;
	lt = pcap_datalink(pc);
	while ((r = pcap_next_ex(pc, &h, &data)) == 1) {
		struct fv_pkt p;

		fv_decode(lt, data, h->caplen, &p);
		if (fv_community_id(&p, 0, id, sizeof(id)))
			id[0] = '\0';
		fn(ctx, &p, id);
	}
	pcap_close(pc);
	return r == -2 ? 0 : -1;
}

struct zeek_ctx {
	struct idset got;
	unsigned long frames, key_mismatch;
};

static void zeek_frame(void *vctx, const struct fv_pkt *p, const char *id)
{
	struct zeek_ctx *c = vctx;
	char kid[64];

	c->frames++;
	if (!id[0])
		return;
	set_add(&c->got, id);
	/* The flow-record form agrees when the transport was decoded. */
	if (p->flags & FV_PKT_L4) {
		fv_community_id_key(&p->key, p->icmp_type, p->icmp_code, 0, kid,
				    sizeof(kid));
		if (strcmp(kid, id))
			c->key_mismatch++;
	}
}

static int test_zeek(const char *corpus)
{
	/* zeek/zeek testing/btest/Baseline/bifs.community_id.run-pcaps/
	 * <file>.out; sctp from the spec's baseline_deflt.json. */
	static const struct {
		const char *file;
		const char *ids[16];
	} z[] = {
		{"icmp.pcap", {"1:X0snYXpgwiv9TZtqg64sgzUn6Dk="}},
		{"icmp6.pcap",
		 {"1:bnQKq8A2r//dWnkRW2EYcMhShjc=",
		  "1:2ObVBgIn28oZvibYZhZMBgh7WdQ=",
		  "1:hLZd0XGWojozrvxqE0dWB1iM6R0=",
		  "1:jwuBy9UWZK1KUFqJV5cHdVpfrlY=",
		  "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=",
		  "1:GpbEQrKqfWtsfsFiqg8fufoZe5Y=",
		  "1:ORxAZfN3ld7Sv73/HQTNnvgxbpY=",
		  "1:MEixa66kuz0OMvlQqnAIzP3n2xg=",
		  "1:BtEUCMYecYjJ7spEkVZDiCFaMTY=",
		  "1:NdobDX8PQNJbAyfkWxhtL2Pqp5w=",
		  "1:hO+sN4H+MG5MY/8hIrXPqc4ZQz0=",
		  "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=",
		  "1:pkvHqCL88/tg1k4cPigmZXUtL00=",
		  "1:zavyT/cezQr1fmImYCwYnMXbgck="}},
		{"ipv6.pcap", {"1:/qFaeAR+gFe1KYjMzVDsMv+wgU4="}},
		{"tcp.pcap", {"1:LQU9qZlK+B5F3KDmev6m5PMibrg="}},
		{"udp.pcap", {"1:d/FP5EW3wiY1vCndhwleRRKHowQ="}},
		{"sctp.pcap", {"1:MP2EtRCAUIZvTw6MxJHLV7N7JDs="}},
	};
	char path[4096];
	size_t i, j, nfiles = sizeof(z) / sizeof(z[0]);

	for (i = 0; i < nfiles; i++) {
		struct zeek_ctx c = {0};
		size_t want = 0;

		snprintf(path, sizeof(path), "%s/communityid/%s", corpus,
			 z[i].file);
		if (access(path, R_OK)) {
			printf("SKIP zeek captures: %s missing\n", path);
			return 77;
		}
		CHECK(each_frame(path, zeek_frame, &c) == 0, "read %s", path);
		for (j = 0; j < 16 && z[i].ids[j]; j++) {
			want++;
			CHECK(set_has(&c.got, z[i].ids[j]), "%s: %s missing",
			      z[i].file, z[i].ids[j]);
		}
		CHECK(c.got.n == want, "%s: %zu distinct ids, Zeek has %zu",
		      z[i].file, c.got.n, want);
		CHECK(c.key_mismatch == 0, "%s: %lu key-form mismatches",
		      z[i].file, c.key_mismatch);
		printf("zeek %s: %lu frames, %zu distinct ids, %zu expected\n",
		       z[i].file, c.frames, c.got.n, want);
		free(c.got.v);
	}
	return 0;
}

/* ---- every corpus frame against tshark ---------------------------- */

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

static void list_captures(const char *dir, struct files *fl)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[4096];

	if (!d)
		return;
	while ((e = readdir(d))) {
		struct stat st;
		size_t l = strlen(e->d_name);

		if (e->d_name[0] == '.' || !strcmp(e->d_name, "malformed"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (stat(path, &st))
			continue;
		if (S_ISDIR(st.st_mode))
			list_captures(path, fl);
		else if ((l > 5 && !strcmp(e->d_name + l - 5, ".pcap")) ||
			 (l > 7 && !strcmp(e->d_name + l - 7, ".pcapng")))
			files_add(fl, path);
	}
	closedir(d);
}

struct frames {
	char (*id)[40];
	size_t n, cap;
};

static void frame_add(void *vctx, const struct fv_pkt *p, const char *id)
{
	struct frames *fr = vctx;

	(void)p;
	if (fr->n == fr->cap) {
		fr->cap = fr->cap ? fr->cap * 2 : 4096;
		fr->id = realloc(fr->id, fr->cap * sizeof(*fr->id));
		if (!fr->id) {
			perror("realloc");
			exit(1);
		}
	}
	snprintf(fr->id[fr->n++], sizeof(fr->id[0]), "%s", id);
}

/* Reasons for a frame's ID to differ from tshark's on purpose. */
enum { R_TUNNEL, R_TSHARK_NONE, R_OURS_NONE, R_NREASONS };

static const char *const reason_name[R_NREASONS] = {
	"tunnel: tshark hashes the innermost IP header",
	"tshark gives no id (dissector error, IPv6 later fragment)",
	"no IP header decoded by us (link type, 802.1ah, VN-Tag)",
};

static int test_tshark(const char *corpus)
{
	struct files fl = {0}, used = {0};
	struct frames fr = {0};
	char dir[] = "/tmp/fv-test-cid.XXXXXX", merged[64], line[16384];
	unsigned long reason[R_NREASONS] = {0}, same = 0, bad = 0, fno = 0;
	size_t i, clen, n0;
	char *cmd;
	FILE *out;
	int n;

	list_captures(corpus, &fl);
	if (!fl.n || system("command -v tshark >/dev/null 2>&1") ||
	    system("command -v mergecap >/dev/null 2>&1")) {
		printf("SKIP tshark comparison: no corpus or no tshark\n");
		return 77;
	}
	qsort(fl.v, fl.n, sizeof(*fl.v), cmp_str);
	for (i = 0; i < fl.n; i++) {
		n0 = fr.n;
		if (each_frame(fl.v[i], frame_add, &fr)) {
			fr.n = n0; /* libpcap cannot read all of it */
			continue;
		}
		files_add(&used, fl.v[i]);
	}
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(merged, sizeof(merged), "%s/all.pcapng", dir);
	clen = 4096;
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
	snprintf(cmd + n, clen - (size_t)n,
		 " && tshark -n -r %s --enable-protocol communityid"
		 " -o ip.defragment:FALSE -o ipv6.defragment:FALSE -T fields"
		 " -E separator=/t -E occurrence=f -e communityid"
		 " -e frame.protocols 2>/dev/null",
		 merged);
	out = popen(cmd, "r");
	if (!out) {
		perror("popen");
		return 1;
	}
	while (fgets(line, sizeof(line), out)) {
		char *tab = strchr(line, '\t'), *protos, *nl, *t;
		const char *ours;
		int nip = 0, icmp = 0;

		if (!tab || fno >= fr.n) {
			bad++;
			break;
		}
		*tab = '\0';
		protos = tab + 1;
		nl = strchr(protos, '\n');
		if (nl)
			*nl = '\0';
		ours = fr.id[fno++];
		if (!strcmp(ours, line)) {
			same++;
			continue;
		}
		for (t = strtok(protos, ":"); t; t = strtok(NULL, ":")) {
			if (!strcmp(t, "ip") || !strcmp(t, "ipv6"))
				nip++;
			else if (nip == 1 &&
				 (!strcmp(t, "icmp") || !strcmp(t, "icmpv6")))
				icmp = 1;
		}
		if (!ours[0])
			reason[R_OURS_NONE]++;
		else if (!line[0])
			reason[R_TSHARK_NONE]++;
		else if (nip > 1 && !icmp)
			reason[R_TUNNEL]++;
		else if (++bad <= 20)
			fprintf(stderr,
				"MISMATCH frame %lu: ours %s, tshark %s\n", fno,
				ours, line);
	}
	pclose(out);
	unlink(merged);
	rmdir(dir);
	free(cmd);
	printf("tshark: %zu files, %lu frames, %lu equal ids\n", used.n, fno,
	       same);
	for (i = 0; i < R_NREASONS; i++)
		printf("tshark: differs by design: %-60s %lu\n", reason_name[i],
		       reason[i]);
	printf("tshark: %lu unexplained differences\n", bad);
	CHECK(fno == fr.n, "tshark gave %lu frames, we read %zu", fno, fr.n);
	CHECK(bad == 0, "%lu frames with another id than tshark's", bad);
	CHECK(same > 100000, "only %lu equal ids", same);
	for (i = 0; i < fl.n; i++)
		free(fl.v[i]);
	for (i = 0; i < used.n; i++)
		free(used.v[i]);
	free(fl.v);
	free(used.v);
	free(fr.id);
	return 0;
}

int main(void)
{
	const char *corpus = getenv("FV_CORPUS");
	int skip = 0;

	if (!corpus || !*corpus)
		corpus = "../shared/corpus";
	test_sha1();
	check_rows(readme, sizeof(readme) / sizeof(readme[0]), "README tables");
	check_rows(json, sizeof(json) / sizeof(json[0]), "baseline json");
	test_api();
	if (test_zeek(corpus) == 77)
		skip = 1;
	if (test_tshark(corpus) == 77)
		skip = 1;
	if (failed) {
		printf("%d checks failed\n", failed);
		return 1;
	}
	if (skip)
		return 77;
	printf("all checks passed\n");
	return 0;
}
