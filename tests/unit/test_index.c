/*
 * Unit tests for index/index.c: flow record round-trip and byte layout,
 * 100k flows queried by time, host, port and flow id against a brute-force
 * scan of the same flows in memory, checkpoint replacement, places chunks,
 * block overlap queries, a read-only handle in a second process while the
 * writer holds a txn, meta counters, map-full and bad records.
 *
 * The key layouts are checked with raw LMDB calls (docs/format-index.md),
 * not through the module. LMDB forbids opening one environment twice in a
 * process, so the raw checks run while the index handle is closed and the
 * second reader is a forked child.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fv.h"
#include "index/filter.h"
#include "index/index.h"
#include "index/indexer.h"

#include "tests/unit/check.h"

#define NFLOWS 100000
#define BATCH  10000
#define SEC    FV_NSEC_PER_SEC
#define T0     (1700000000ull * SEC)

static uint64_t rnd(uint64_t *s)
{
	/* splitmix64 */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void rm_index(const char *dir)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/data.mdb", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/lock.mdb", dir);
	unlink(p);
	rmdir(dir);
}

static bool flow_eq(const struct fv_flow *a, const struct fv_flow *b)
{
	return a->id == b->id && !memcmp(a->key.saddr, b->key.saddr, 16) &&
	       !memcmp(a->key.daddr, b->key.daddr, 16) &&
	       a->key.sport == b->key.sport && a->key.dport == b->key.dport &&
	       a->key.vlan == b->key.vlan && a->key.family == b->key.family &&
	       a->key.proto == b->key.proto && a->first_ns == b->first_ns &&
	       a->last_ns == b->last_ns && a->pkts[0] == b->pkts[0] &&
	       a->pkts[1] == b->pkts[1] && a->bytes[0] == b->bytes[0] &&
	       a->bytes[1] == b->bytes[1] &&
	       a->tcp_flags[0] == b->tcp_flags[0] &&
	       a->tcp_flags[1] == b->tcp_flags[1] &&
	       a->icmp_type == b->icmp_type && a->icmp_code == b->icmp_code &&
	       a->end_reason == b->end_reason && a->worker == b->worker &&
	       a->flags == b->flags && a->iface == b->iface &&
	       a->reserved == b->reserved && a->places_parts == b->places_parts;
}

/* A flow whose every field holds a distinct value. */
static void full_flow(struct fv_flow *f)
{
	memset(f, 0, sizeof(*f));
	f->id = 0x0102030405060708ull;
	for (int i = 0; i < 16; i++) {
		f->key.saddr[i] = (uint8_t)(0x10 + i);
		f->key.daddr[i] = (uint8_t)(0x30 + i);
	}
	f->key.sport = 0x1112;
	f->key.dport = 0x1314;
	f->key.vlan = 0x0fed;
	f->key.family = 6;
	f->key.proto = 17;
	f->first_ns = 0x2122232425262728ull;
	f->last_ns = 0x3132333435363738ull;
	f->pkts[0] = 0x4142434445464748ull;
	f->pkts[1] = 0x5152535455565758ull;
	f->bytes[0] = 0x6162636465666768ull;
	f->bytes[1] = 0x7172737475767778ull;
	f->tcp_flags[0] = 0x81;
	f->tcp_flags[1] = 0x82;
	f->icmp_type = 0x83;
	f->icmp_code = 0x84;
	f->end_reason = FV_END_RST;
	f->worker = 0x86;
	f->flags = 0x8788;
	f->iface = 0x898a;
	f->reserved = 0x8b8c;
	f->places_parts = 0x8d8e8f90u;
}

/* Decodes b[0..n) and checks it re-encodes to the same bytes. */
static int dec_canon(const uint8_t *b, size_t n, struct fv_flow *g)
{
	uint8_t r[FV_FLOW_REC_MAX];
	int err = fv_flow_decode(b, n, g);

	if (err)
		return err;
	if (fv_flow_encode(g, r) != n || memcmp(r, b, n))
		return 1; /* decoded, but not the one encoding */
	return 0;
}

static void test_record(void)
{
	/* Hand-computed bytes of docs/format.md "flows" for a small flow. */
	static const uint8_t want[] = {
		2,    0,    4,	  6,	0x34, 0x12, 80,	  0,	/* head */
		10,   0,    0,	  1,	10,   0,    0,	  2,	/* addresses */
		0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* first */
		0xac, 0x02,		      /* duration 300 */
		1,    2,    100,  0xc8, 0x01, /* pkts, bytes */
		0x02, 0x12, 3,	  1,	      /* tcp flags, end, worker */
		1,    1,		      /* flags, parts */
	};
	struct fv_flow f, g;
	uint8_t b[FV_FLOW_REC_MAX + 2], m[FV_FLOW_REC_MAX + 2];
	uint64_t seed = 99;
	size_t n, bad = 0, canon = 0, tries = 0;
	int err;

	memset(&f, 0, sizeof(f));
	f.id = 77;
	f.key.family = 4;
	f.key.proto = 6;
	f.key.sport = 0x1234;
	f.key.dport = 80;
	memcpy(f.key.saddr, "\x0a\x00\x00\x01", 4);
	memcpy(f.key.daddr, "\x0a\x00\x00\x02", 4);
	f.first_ns = 0x0102030405060708ull;
	f.last_ns = f.first_ns + 300;
	f.pkts[0] = 1;
	f.pkts[1] = 2;
	f.bytes[0] = 100;
	f.bytes[1] = 200;
	f.tcp_flags[0] = 0x02;
	f.tcp_flags[1] = 0x12;
	f.end_reason = FV_END_FIN;
	f.worker = 1;
	f.flags = FV_FLOW_CLIENT_SYN;
	f.places_parts = 1;
	n = fv_flow_encode(&f, b);
	CHECK(n == sizeof(want) && !memcmp(b, want, n), "v4 layout: %zu bytes",
	      n);
	err = fv_flow_decode(b, n, &g);
	CHECK(err == 0 && g.id == 0, "id is not in the record: %d", err);
	g.id = f.id;
	CHECK(flow_eq(&f, &g), "v4 round-trip");

	/* Every field set (IPv6, vlan, iface, reserved, icmp). */
	full_flow(&f);
	n = fv_flow_encode(&f, b);
	CHECK(n <= FV_FLOW_REC_MAX && b[0] == FV_FLOW_REC_VERSION &&
		      b[1] == 0x1f,
	      "full: %zu bytes, shape %#x", n, b[1]);
	err = dec_canon(b, n, &g);
	g.id = f.id;
	CHECK(err == 0 && flow_eq(&f, &g), "full round-trip: %d", err);
	/* Largest values everywhere: still within FV_FLOW_REC_MAX. */
	memset(&f, 0xff, sizeof(f));
	f.key.family = 6;
	n = fv_flow_encode(&f, b);
	err = dec_canon(b, n, &g);
	g.id = f.id;
	CHECK(n <= FV_FLOW_REC_MAX && err == 0 && flow_eq(&f, &g),
	      "max round-trip: %zu bytes, %d", n, err);
	/* last_ns before first_ns (a pcap's clock stepping back). */
	full_flow(&f);
	f.last_ns = f.first_ns - 5;
	n = fv_flow_encode(&f, b);
	err = dec_canon(b, n, &g);
	g.id = f.id;
	CHECK(err == 0 && flow_eq(&f, &g) && (b[1] & 0x20), "backward: %d",
	      err);
	/* IPv4 with bytes past the 4th: the long form keeps them. */
	full_flow(&f);
	f.key.family = 4;
	n = fv_flow_encode(&f, b);
	err = dec_canon(b, n, &g);
	g.id = f.id;
	CHECK(err == 0 && flow_eq(&f, &g) && (b[1] & 1), "v4 long: %d", err);
	/* All zero (family 0: 16-byte addresses). */
	memset(&f, 0, sizeof(f));
	n = fv_flow_encode(&f, b);
	err = dec_canon(b, n, &g);
	CHECK(err == 0 && flow_eq(&f, &g), "zero round-trip: %d", err);

	/* Refusals, on the small v4 record. */
	memcpy(b, want, sizeof(want));
	n = sizeof(want);
	for (size_t l = 0; l < n; l++)
		if (fv_flow_decode(b, l, &g) != FV_EFORMAT)
			bad++;
	CHECK(bad == 0, "%zu cut lengths not refused", bad);
	b[n] = 0;
	CHECK(fv_flow_decode(b, n + 1, &g) == FV_EFORMAT, "trailing byte");
	b[0] = 1;
	CHECK(fv_flow_decode(b, n, &g) == FV_EVERSION, "version 1");
	b[0] = 3;
	CHECK(fv_flow_decode(b, n, &g) == FV_EVERSION, "version 3");
	b[0] = 2;
	b[1] = 0x80;
	CHECK(fv_flow_decode(b, n, &g) == FV_EFORMAT, "unknown shape bit");
	b[1] = 0x40;
	CHECK(fv_flow_decode(b, n, &g) == FV_EFORMAT,
	      "places bit in a record alone");
	b[1] = 0;
	b[2] = 6;
	CHECK(fv_flow_decode(b, n, &g) == FV_EFORMAT, "IPv6, short form");
	b[2] = 4;
	/* pkts[0] = 1 written overlong as 0x81 0x00. */
	memcpy(m, b, 26);
	m[26] = 0x81;
	m[27] = 0x00;
	memcpy(m + 28, b + 27, n - 27);
	CHECK(fv_flow_decode(m, n + 1, &g) == FV_EFORMAT, "overlong varint");
	/* flags 0x10000 does not fit 16 bits. */
	memcpy(m, b, 35);
	m[35] = 0x80;
	m[36] = 0x80;
	m[37] = 0x04;
	m[38] = 1;
	CHECK(fv_flow_decode(m, 39, &g) == FV_EFORMAT, "flags > 16 bits");
	/* The vlan bit with vlan 0; the backward bit with delta 0. */
	memcpy(m, b, n);
	m[1] = 0x02;
	m[n] = 0;
	CHECK(fv_flow_decode(m, n + 1, &g) == FV_EFORMAT, "vlan 0");
	m[1] = 0x20;
	m[24] = 0;
	m[25] = 1;
	CHECK(fv_flow_decode(m, n - 1, &g) != 0, "backward 0");
	/* 10.0.0.1 written long while the short form was due. */
	full_flow(&f);
	f.key.family = 4;
	memset(f.key.saddr + 4, 0, 12);
	memset(f.key.daddr + 4, 0, 12);
	n = fv_flow_encode(&f, b);
	CHECK(!(b[1] & 1), "v4 short form chosen");

	/* Random corruption: never a crash, and what decodes is canonical. */
	full_flow(&f);
	for (int i = 0; i < 200000; i++) {
		size_t l;

		if (i % 2)
			full_flow(&f);
		else
			memcpy(&f, &(struct fv_flow){0}, sizeof(f));
		f.key.family = (uint8_t)(i % 3 == 0 ? 4 : 6);
		if (i % 3 == 0) {
			memset(f.key.saddr + 4, 0, 12);
			memset(f.key.daddr + 4, 0, 12);
		}
		n = fv_flow_encode(&f, b);
		l = n;
		memcpy(m, b, n);
		for (int j = 0; j < 1 + i % 3; j++)
			m[rnd(&seed) % n] ^= (uint8_t)(1 + rnd(&seed) % 255);
		if (i % 5 == 0)
			l = rnd(&seed) % (n + 1);
		tries++;
		err = dec_canon(m, l, &g);
		if (err == 1)
			canon++;
	}
	CHECK(canon == 0, "%zu of %zu mutants decode to another encoding",
	      canon, tries);
	printf("record: v4 layout by hand, round-trips, %zu mutants "
	       "refused or canonical\n",
	       tries);
}

/* ---- the 100k flows ---- */

struct pair {
	uint64_t first, id;
};

struct results {
	struct pair *v;
	size_t n, cap;
	size_t stop_after; /* 0: never */
	int ret;	   /* returned when stop_after is reached */
};

static int on_flow(void *arg, const struct fv_flow *f)
{
	struct results *r = arg;

	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 1024;
		r->v = realloc(r->v, r->cap * sizeof(*r->v));
		if (!r->v)
			return -ENOMEM;
	}
	r->v[r->n].first = f->first_ns;
	r->v[r->n].id = f->id;
	r->n++;
	if (r->stop_after && r->n == r->stop_after)
		return r->ret;
	return 0;
}

static int pair_cmp(const void *a, const void *b)
{
	const struct pair *x = a, *y = b;

	if (x->first != y->first)
		return x->first < y->first ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* What a query should return, by an independent predicate. */
struct want {
	enum {
		W_ALL,
		W_HOST,
		W_SRC_HOST,
		W_PORT,
		W_FLOW,
		W_TCP,
		W_HOST_PORT
	} kind;
	uint8_t family, addr[16];
	uint16_t port;
	uint64_t id;
};

static bool want_match(const struct want *w, const struct fv_flow *f)
{
	bool s = f->key.family == w->family &&
		 !memcmp(f->key.saddr, w->addr, 16);
	bool d = f->key.family == w->family &&
		 !memcmp(f->key.daddr, w->addr, 16);
	bool p = f->key.sport == w->port || f->key.dport == w->port;

	switch (w->kind) {
	case W_ALL:
		return true;
	case W_HOST:
		return s || d;
	case W_SRC_HOST:
		return s;
	case W_PORT:
		return p;
	case W_FLOW:
		return f->id == w->id;
	case W_TCP:
		return f->key.proto == 6;
	case W_HOST_PORT:
		return (s || d) && p;
	}
	return false;
}

static size_t brute(const struct fv_flow *fl, size_t n, uint64_t since,
		    uint64_t until, const struct want *w, struct pair *out)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		if (fl[i].first_ns > until || fl[i].last_ns < since)
			continue;
		if (!want_match(w, &fl[i]))
			continue;
		out[k].first = fl[i].first_ns;
		out[k].id = fl[i].id;
		k++;
	}
	qsort(out, k, sizeof(*out), pair_cmp);
	return k;
}

static void addr_str(uint8_t family, const uint8_t *a, char *buf, size_t len)
{
	inet_ntop(family == 4 ? AF_INET : AF_INET6, a, buf, (socklen_t)len);
}

/* Builds the filter text for w (NULL filter for W_ALL). */
static void want_expr(const struct want *w, char *buf, size_t len)
{
	char a[64];

	addr_str(w->family, w->addr, a, sizeof(a));
	switch (w->kind) {
	case W_ALL:
		buf[0] = 0;
		break;
	case W_HOST:
		snprintf(buf, len, "host %s", a);
		break;
	case W_SRC_HOST:
		snprintf(buf, len, "src host %s", a);
		break;
	case W_PORT:
		snprintf(buf, len, "port %u", w->port);
		break;
	case W_FLOW:
		snprintf(buf, len, "flow %llu", (unsigned long long)w->id);
		break;
	case W_TCP:
		snprintf(buf, len, "tcp");
		break;
	case W_HOST_PORT:
		snprintf(buf, len, "host %s and port %u", a, w->port);
		break;
	}
}

struct big {
	struct fv_flow *fl; /* final records, fl[i].id == i + 1 */
	size_t n;
	struct pair *want;
	unsigned queries, results;
	uint64_t host_ns; /* time of the host queries */
	unsigned host_queries;
};

/* Runs one query and compares with the brute force; returns results. */
static void check_query(struct fv_index *ix, struct big *b, uint64_t since,
			uint64_t until, const struct want *w)
{
	struct results r = {0};
	struct fv_filter *filt = NULL;
	struct fv_filter_error fe;
	char expr[128];
	size_t nw, i;
	uint64_t t;
	int err;

	want_expr(w, expr, sizeof(expr));
	if (w->kind != W_ALL) {
		err = fv_filter_compile(expr, &filt, &fe);
		CHECK(err == 0, "compile '%s': %d %s", expr, err, fe.msg);
		if (err)
			return;
	}
	nw = brute(b->fl, b->n, since, until, w, b->want);
	t = fv_now_mono_ns();
	err = fv_index_query(ix, since, until, filt, on_flow, &r);
	t = fv_now_mono_ns() - t;
	if (w->kind == W_HOST) {
		b->host_ns += t;
		b->host_queries++;
	}
	CHECK(err == 0, "query '%s': %s (%s)", expr, fv_strerror(err),
	      fv_index_last_error(ix));
	for (i = 0; i < r.n && i < nw; i++)
		if (r.v[i].first != b->want[i].first ||
		    r.v[i].id != b->want[i].id)
			break;
	CHECK(r.n == nw && i == nw,
	      "query '%s' [%llu, %llu]: %zu results, want %zu, first diff at %zu",
	      expr, (unsigned long long)since, (unsigned long long)until, r.n,
	      nw, i);
	b->queries++;
	b->results += (unsigned)r.n;
	free(r.v);
	fv_filter_free(filt);
}

static void make_flows(struct big *b, uint64_t *seed, uint8_t v4[][16],
		       size_t n4, uint8_t v6[][16], size_t n6,
		       const uint16_t *ports, size_t nports)
{
	for (size_t i = 0; i < b->n; i++) {
		struct fv_flow *f = &b->fl[i];
		uint64_t r = rnd(seed), dur;
		int six = r % 5 == 0;

		memset(f, 0, sizeof(*f));
		f->id = i + 1;
		f->key.family = six ? 6 : 4;
		memcpy(f->key.saddr,
		       six ? v6[rnd(seed) % n6] : v4[rnd(seed) % n4], 16);
		if (rnd(seed) % 50 == 0)
			memcpy(f->key.daddr, f->key.saddr, 16);
		else
			memcpy(f->key.daddr,
			       six ? v6[rnd(seed) % n6] : v4[rnd(seed) % n4],
			       16);
		r = rnd(seed) % 100;
		if (r < 3) {
			f->key.proto = 47; /* GRE: no ports */
		} else {
			f->key.proto = r < 60 ? 6 : 17;
			f->key.sport = (uint16_t)(1024 + rnd(seed) % 64000);
			f->key.dport = r < 5 ? f->key.sport
					     : ports[rnd(seed) % nports];
		}
		f->key.vlan = (uint16_t)(rnd(seed) % 4);
		/* Some flows share a whole second, to tie on first_ns. */
		if (rnd(seed) % 20 == 0)
			f->first_ns = T0 + (rnd(seed) % 100) * SEC;
		else
			f->first_ns = T0 + rnd(seed) % (3600 * SEC);
		r = rnd(seed) % 100;
		dur = r < 90   ? rnd(seed) % (10 * SEC)
		      : r < 99 ? rnd(seed) % (300 * SEC)
			       : rnd(seed) % (1800 * SEC);
		f->last_ns = f->first_ns + dur;
		f->pkts[0] = 1 + rnd(seed) % 100;
		f->pkts[1] = rnd(seed) % 100;
		f->bytes[0] = f->pkts[0] * 100;
		f->bytes[1] = f->pkts[1] * 1000;
		f->end_reason = FV_END_IDLE;
		f->worker = (uint8_t)(i % 3);
		f->places_parts = 1;
	}
}

/* Puts the flows in batches of BATCH, in a shuffled order; 5% of them get
 * a checkpoint record first (same txn for batch 0, an earlier txn else). */
static void put_flows(struct fv_index *ix, struct big *b, uint64_t *seed)
{
	size_t *perm = malloc(b->n * sizeof(*perm));
	uint64_t t;
	int err = 0;

	for (size_t i = 0; i < b->n; i++)
		perm[i] = i;
	for (size_t i = b->n - 1; i > 0; i--) {
		size_t j = rnd(seed) % (i + 1), x = perm[i];

		perm[i] = perm[j];
		perm[j] = x;
	}
	t = fv_now_mono_ns();
	for (size_t s = 0; s < b->n && !err; s += BATCH) {
		size_t e = s + BATCH < b->n ? s + BATCH : b->n;
		size_t ce = e + BATCH < b->n ? e + BATCH : b->n;

		err = fv_index_begin(ix);
		CHECK(err == 0, "begin: %s", fv_strerror(err));
		/*
		 * In the first txn, 1 flow in 1000 first gets a record with
		 * another first_ns, address and port (not what the flow
		 * table does, but the index must not keep the stale keys:
		 * the raw counts in test_big check it).
		 */
		for (size_t i = 0; s == 0 && i < b->n && !err; i++) {
			struct fv_flow c = b->fl[i];

			if (c.id % 1000 != 7)
				continue;
			c.first_ns += 12345 * SEC;
			c.last_ns += 12345 * SEC;
			c.key.saddr[5] ^= 0x55;
			c.key.sport ^= 0x5555;
			err = fv_index_put_flow(ix, &c);
		}
		/* Checkpoints of this batch (batch 0) and of the next one. */
		for (size_t i = s == 0 ? 0 : e; i < ce && !err; i++) {
			struct fv_flow c = b->fl[perm[i]];

			if (c.id % 20)
				continue;
			c.last_ns = c.first_ns + (c.last_ns - c.first_ns) / 2;
			c.pkts[0] /= 2;
			c.flags |= FV_FLOW_PARTIAL;
			c.end_reason = FV_END_ACTIVE;
			err = fv_index_put_flow(ix, &c);
		}
		for (size_t i = s; i < e && !err; i++)
			err = fv_index_put_flow(ix, &b->fl[perm[i]]);
		CHECK(err == 0, "put: %s (%s)", fv_strerror(err),
		      fv_index_last_error(ix));
		if (err) {
			fv_index_abort(ix);
			break;
		}
		err = fv_index_commit(ix);
		CHECK(err == 0, "commit: %s", fv_strerror(err));
	}
	t = fv_now_mono_ns() - t;
	printf("big: %zu flows (+%zu checkpoints) put in batches of %d: "
	       "%.3f s (%.0f puts/s)\n",
	       b->n, b->n / 20, BATCH, (double)t / 1e9,
	       (double)(b->n + b->n / 20) / ((double)t / 1e9));
	free(perm);
}

static void test_big(const char *dir)
{
	static const uint16_t ports[] = {80,  443,  53,	  22,	25,
					 123, 8080, 3306, 5432, 6379};
	uint8_t v4[300][16] = {{0}}, v6[60][16] = {{0}};
	struct big b = {.n = NFLOWS};
	struct fv_index *ix;
	uint64_t seed = 42, maxdur = 0, v;
	struct fv_index_stats st;
	struct want w;
	int err;

	for (size_t i = 0; i < 300; i++) {
		v4[i][0] = 10;
		v4[i][2] = (uint8_t)(i >> 8);
		v4[i][3] = (uint8_t)(i + 1);
	}
	for (size_t i = 0; i < 60; i++) {
		v6[i][0] = 0x20;
		v6[i][1] = 0x01;
		v6[i][2] = 0x0d;
		v6[i][3] = 0xb8;
		v6[i][15] = (uint8_t)(i + 1);
	}
	b.fl = calloc(b.n, sizeof(*b.fl));
	b.want = calloc(b.n, sizeof(*b.want));
	make_flows(&b, &seed, v4, 300, v6, 60, ports,
		   sizeof(ports) / sizeof(ports[0]));
	for (size_t i = 0; i < b.n; i++)
		if (b.fl[i].last_ns - b.fl[i].first_ns > maxdur)
			maxdur = b.fl[i].last_ns - b.fl[i].first_ns;

	err = fv_index_open(&ix, dir, FV_INDEX_CREATE, 0);
	CHECK(err == 0, "open %s: %s", dir, fv_strerror(err));
	if (err)
		goto out_free;
	put_flows(ix, &b, &seed);

	err = fv_index_get_u64(ix, "max_duration_ns", &v);
	CHECK(err == 0 && v == maxdur, "max_duration_ns %llu, want %llu",
	      (unsigned long long)v, (unsigned long long)maxdur);
	err = fv_index_stats(ix, &st);
	CHECK(err == 0 && st.flows == b.n && st.places == 0 && st.blocks == 0,
	      "stats: %llu flows", (unsigned long long)st.flows);
	CHECK(st.used_bytes > 0 && st.used_bytes % 4096 == 0 &&
		      st.file_bytes >= st.used_bytes,
	      "stats: used %llu file %llu", (unsigned long long)st.used_bytes,
	      (unsigned long long)st.file_bytes);
	printf("big: index %.1f MB used, data.mdb %.1f MB (%.0f B/flow)\n",
	       (double)st.used_bytes / 1e6, (double)st.file_bytes / 1e6,
	       (double)st.used_bytes / (double)b.n);

	/* Time windows, no filter (bytime path). */
	memset(&w, 0, sizeof(w));
	w.kind = W_ALL;
	{
		uint64_t win[][2] = {
			{0, UINT64_MAX},
			{T0 + 1800 * SEC, T0 + 1810 * SEC},
			{T0 + 100 * SEC, T0 + 100 * SEC},
			{T0 + 50 * SEC, T0 + 50 * SEC}, /* a tie second */
			{T0 + 3500 * SEC, UINT64_MAX},
			{0, T0 + 5 * SEC},
			{T0 + 3600 * SEC, T0 + 5400 * SEC}, /* long ones */
			{0, T0 - 1},
			{T0 + 9000 * SEC, UINT64_MAX},
		};
		for (size_t i = 0; i < sizeof(win) / sizeof(win[0]); i++)
			check_query(ix, &b, win[i][0], win[i][1], &w);
		for (int i = 0; i < 6; i++) {
			uint64_t s = T0 + rnd(&seed) % (3700 * SEC);

			check_query(ix, &b, s, s + rnd(&seed) % (120 * SEC),
				    &w);
		}
	}
	{
		struct results r = {0};

		err = fv_index_query(ix, T0 + 10 * SEC, T0, NULL, on_flow, &r);
		CHECK(err == 0 && r.n == 0, "since > until: %zu", r.n);
		r.stop_after = 5;
		r.ret = 1;
		err = fv_index_query(ix, 0, UINT64_MAX, NULL, on_flow, &r);
		CHECK(err == 0 && r.n == 5, "stop after 5: %d %zu", err, r.n);
		r.n = 0;
		r.ret = -EINTR;
		err = fv_index_query(ix, 0, UINT64_MAX, NULL, on_flow, &r);
		CHECK(err == -EINTR && r.n == 5, "cb error: %d %zu", err, r.n);
		free(r.v);
	}
	printf("big: %u time queries match the brute force (%u results)\n",
	       b.queries, b.results);

	/* Host, port and flow filters: byhost, byport, flows paths. */
	{
		struct fv_filter *filt;
		struct fv_filter_error fe;
		struct fv_filter_plan pl;
		unsigned q0 = b.queries;
		uint64_t win[][2] = {
			{0, UINT64_MAX},
			{T0 + 1000 * SEC, T0 + 1300 * SEC},
			{T0 + 2500 * SEC, T0 + 2500 * SEC},
		};

		/* The plans the index relies on. */
		CHECK(fv_filter_compile("host 10.0.0.7", &filt, &fe) == 0,
		      "compile host");
		fv_filter_plan(filt, &pl);
		CHECK(pl.kind == FV_PLAN_HOST && pl.family == 4 &&
			      pl.addr[0] == 10 && pl.addr[3] == 7 &&
			      !pl.addr[4],
		      "plan host: kind %d family %u", pl.kind, pl.family);
		fv_filter_free(filt);
		CHECK(fv_filter_compile("port 443", &filt, &fe) == 0,
		      "compile port");
		fv_filter_plan(filt, &pl);
		CHECK(pl.kind == FV_PLAN_PORT && pl.port == 443,
		      "plan port: kind %d", pl.kind);
		fv_filter_free(filt);
		CHECK(fv_filter_compile("flow 77", &filt, &fe) == 0,
		      "compile flow");
		fv_filter_plan(filt, &pl);
		CHECK(pl.kind == FV_PLAN_FLOW && pl.flow_id == 77,
		      "plan flow: kind %d", pl.kind);
		fv_filter_free(filt);

		for (int i = 0; i < 16; i++) {
			const struct fv_flow *f = &b.fl[rnd(&seed) % b.n];

			memset(&w, 0, sizeof(w));
			w.family = f->key.family;
			memcpy(w.addr, i % 2 ? f->key.daddr : f->key.saddr, 16);
			w.port = i % 3 ? f->key.dport : f->key.sport;
			w.id = f->id;
			for (size_t j = 0; j < 3; j++) {
				uint64_t s = win[j][0], u = win[j][1];

				w.kind = W_HOST;
				check_query(ix, &b, s, u, &w);
				w.kind = i < 4 ? W_SRC_HOST : W_HOST_PORT;
				check_query(ix, &b, s, u, &w);
				if (w.port) {
					w.kind = W_PORT;
					check_query(ix, &b, s, u, &w);
				}
				w.kind = W_FLOW;
				check_query(ix, &b, s, u, &w);
			}
			/* The flow's own time: must find it. */
			w.kind = W_FLOW;
			check_query(ix, &b, f->last_ns, f->last_ns, &w);
		}
		memset(&w, 0, sizeof(w));
		w.kind = W_FLOW;
		w.id = b.n + 1000; /* no such flow */
		check_query(ix, &b, 0, UINT64_MAX, &w);
		w.kind = W_HOST;
		w.family = 4;
		w.addr[0] = 192;
		w.addr[3] = 1; /* no such host */
		check_query(ix, &b, 0, UINT64_MAX, &w);
		w.kind = W_TCP; /* no plan: bytime + match */
		check_query(ix, &b, T0 + 600 * SEC, T0 + 660 * SEC, &w);
		printf("big: %u host/port/flow queries match the brute force "
		       "(host query: %.2f ms on average)\n",
		       b.queries - q0,
		       (double)b.host_ns / 1e6 / (double)b.host_queries);
	}
	{
		/* For scale: the same host query by a full time scan. */
		struct results r = {0};
		uint64_t t = fv_now_mono_ns();

		err = fv_index_query(ix, 0, UINT64_MAX, NULL, on_flow, &r);
		t = fv_now_mono_ns() - t;
		printf("big: full scan of %zu flows: %.1f ms\n", r.n,
		       (double)t / 1e6);
		free(r.v);
	}
	fv_index_close(ix);

	/* The bykey entries and the timemap, counted and read with raw
	 * LMDB. */
	{
		uint64_t nkey = 0, nbk = 0, ntm = 0, lo = UINT64_MAX, hi = 0;
		const struct fv_flow *f = &b.fl[12345];
		uint8_t k[33], dup[8], rec[FV_FLOW_REC_MAX];
		MDB_cursor *cur;
		MDB_env *env;
		MDB_txn *txn;
		MDB_dbi tm, bk, fd;
		MDB_stat ms;
		MDB_val key, val;
		int rc;

		for (size_t i = 0; i < b.n; i++) {
			const struct fv_flow *g = &b.fl[i];

			nkey += memcmp(g->key.saddr, g->key.daddr, 16) ? 2 : 1;
			nkey += (g->key.sport != 0) +
				(g->key.dport != 0 &&
				 g->key.dport != g->key.sport);
			if (g->id >> 10 == f->id >> 10) {
				lo = g->first_ns < lo ? g->first_ns : lo;
				hi = g->first_ns > hi ? g->first_ns : hi;
			}
		}
		rc = mdb_env_create(&env);
		mdb_env_set_maxdbs(env, 8);
		rc = rc ? rc : mdb_env_open(env, dir, MDB_RDONLY, 0644);
		rc = rc ? rc : mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
		rc = rc ? rc : mdb_dbi_open(txn, "timemap", 0, &tm);
		rc = rc ? rc : mdb_dbi_open(txn, "bykey", 0, &bk);
		rc = rc ? rc : mdb_dbi_open(txn, "flows", 0, &fd);
		CHECK(rc == 0, "raw open: %s", mdb_strerror(rc));
		if (!rc) {
			mdb_stat(txn, bk, &ms);
			nbk = ms.ms_entries;
			mdb_stat(txn, tm, &ms);
			ntm = ms.ms_entries;
			CHECK(nbk == nkey, "entries: bykey %llu, want %llu",
			      (unsigned long long)nbk,
			      (unsigned long long)nkey);
			/* Ids 1..n: one bucket per 1024 ids. */
			CHECK(ntm == (b.fl[b.n - 1].id >> 10) + 1,
			      "timemap: %llu buckets", (unsigned long long)ntm);
			/* The flow's bucket, by hand: key id >> 10 BE64,
			 * value min and max first_ns LE64 (checkpoints may
			 * have widened it: they moved first_ns). */
			for (int i = 0; i < 8; i++)
				k[i] = (uint8_t)((f->id >> 10) >> (56 - 8 * i));
			key.mv_data = k;
			key.mv_size = 8;
			rc = mdb_get(txn, tm, &key, &val);
			CHECK(rc == 0 && val.mv_size == 16, "timemap entry");
			if (!rc && val.mv_size == 16) {
				uint64_t vlo = 0, vhi = 0;

				for (int i = 7; i >= 0; i--) {
					vlo = vlo << 8 |
					      ((uint8_t *)val.mv_data)[i];
					vhi = vhi << 8 |
					      ((uint8_t *)val.mv_data)[8 + i];
				}
				CHECK(vlo <= lo && vhi >= hi,
				      "timemap range covers the bucket");
			}
			/* Each bykey entry of one flow, by hand: the key and
			 * the dup (id BE64). */
			for (int i = 0; i < 8; i++)
				dup[i] = (uint8_t)(f->id >> (56 - 8 * i));
			val.mv_data = dup;
			val.mv_size = 8;
			k[0] = f->key.family;
			memcpy(k + 1, f->key.daddr, 16);
			key.mv_size = f->key.family == 4 ? 5 : 17;
			rc = mdb_cursor_open(txn, bk, &cur);
			rc = rc ? rc
				: mdb_cursor_get(cur, &key, &val, MDB_GET_BOTH);
			CHECK(rc == 0, "bykey host dup by hand: %s",
			      mdb_strerror(rc));
			mdb_cursor_close(cur);
			k[0] = 'p';
			k[1] = (uint8_t)(f->key.dport >> 8);
			k[2] = (uint8_t)f->key.dport;
			key.mv_size = 3;
			rc = mdb_cursor_open(txn, bk, &cur);
			rc = rc ? rc
				: mdb_cursor_get(cur, &key, &val, MDB_GET_BOTH);
			CHECK(rc == 0 || !f->key.dport,
			      "bykey port dup by hand: %s", mdb_strerror(rc));
			mdb_cursor_close(cur);
			key.mv_data = k;
			key.mv_size = 8;
			memcpy(k, dup, 8);
			rc = mdb_get(txn, fd, &key, &val);
			CHECK(rc == 0 &&
				      val.mv_size == fv_flow_encode(f, rec) &&
				      ((uint8_t *)val.mv_data)[0] ==
					      FV_FLOW_REC_VERSION,
			      "flow value by hand");
			mdb_txn_abort(txn);
		}
		mdb_env_close(env);
		printf("big: raw keys: bykey %llu entries, timemap %llu "
		       "buckets, as computed\n",
		       (unsigned long long)nbk, (unsigned long long)ntm);
	}
out_free:
	free(b.fl);
	free(b.want);
}

/* ---- checkpoints, places, blocks, meta ---- */

static void test_checkpoint(struct fv_index *ix)
{
	struct fv_flow f, g;
	struct fv_index_stats s0, s1;
	struct results r = {0};
	uint64_t md0 = 0, md1 = 0;
	int err;

	fv_index_stats(ix, &s0);
	fv_index_get_u64(ix, "max_duration_ns", &md0);
	memset(&f, 0, sizeof(f));
	f.id = 5000000;
	f.key.family = 4;
	f.key.saddr[0] = 172;
	f.key.daddr[0] = 173;
	f.key.sport = 1;
	f.key.dport = 2;
	f.first_ns = T0 + 7 * 3600 * SEC;
	f.last_ns = f.first_ns + SEC;
	f.end_reason = FV_END_ACTIVE;
	f.flags = FV_FLOW_PARTIAL;
	err = fv_index_begin(ix);
	err = err ? err : fv_index_put_flow(ix, &f);
	err = err ? err : fv_index_commit(ix);
	CHECK(err == 0, "checkpoint put: %s", fv_strerror(err));
	/* The final record: 5 hours long, so max_duration_ns must grow. */
	f.last_ns = f.first_ns + 5 * 3600 * SEC;
	f.end_reason = FV_END_FIN;
	f.flags = 0;
	f.pkts[0] = 99;
	err = fv_index_begin(ix);
	err = err ? err : fv_index_put_flow(ix, &f);
	err = err ? err : fv_index_commit(ix);
	CHECK(err == 0, "final put: %s", fv_strerror(err));
	fv_index_stats(ix, &s1);
	CHECK(s1.flows == s0.flows + 1, "one record: %llu -> %llu",
	      (unsigned long long)s0.flows, (unsigned long long)s1.flows);
	CHECK(fv_index_get_flow(ix, f.id, &g) == 0 && flow_eq(&f, &g),
	      "get returns the final record");
	fv_index_get_u64(ix, "max_duration_ns", &md1);
	CHECK(md1 == 5 * 3600 * SEC && md1 > md0, "max duration %llu",
	      (unsigned long long)md1);
	/* Found by the new range only: 4 h after it began, 3 h after the
	 * checkpoint's end, far beyond the earlier max duration. */
	err = fv_index_query(ix, f.first_ns + 4 * 3600 * SEC,
			     f.first_ns + 4 * 3600 * SEC, NULL, on_flow, &r);
	CHECK(err == 0 && r.n == 1 && r.v[0].id == f.id,
	      "query by the new range: %zu results", r.n);
	free(r.v);
	printf("checkpoint: replaced in place, found by its new range, "
	       "max_duration_ns %llu -> %llu\n",
	       (unsigned long long)md0, (unsigned long long)md1);
}

struct run {
	uint64_t ref;
	uint32_t count;
	uint32_t off;
};

struct runs {
	struct run v[64];
	size_t n;
	size_t stop_after;
};

static int on_run(void *arg, fv_ref ref, uint32_t count, uint32_t off)
{
	struct runs *r = arg;

	if (r->n == 64)
		return -E2BIG;
	r->v[r->n].ref = ref;
	r->v[r->n].count = count;
	r->v[r->n].off = off;
	r->n++;
	return r->stop_after && r->n == r->stop_after;
}

static void test_places(struct fv_index *ix)
{
	struct run want[30];
	uint8_t chunk[3][256], bad[4];
	uint32_t len[3] = {0};
	struct runs got = {.n = 0};
	uint64_t prev;
	size_t i;
	int err;

	/* 30 runs over 3 chunks of 10; refs grow; deltas restart per chunk. */
	for (i = 0; i < 30; i++) {
		want[i].ref = fv_ref_make(3, (uint32_t)(1000 + i),
					  (uint32_t)(i * 256));
		want[i].count = (uint32_t)(1 + i * 1000);
		want[i].off = (uint32_t)(64 + i * 4096 * 9);
	}
	for (size_t c = 0; c < 3; c++) {
		prev = 0;
		for (i = c * 10; i < c * 10 + 10; i++) {
			len[c] += (uint32_t)fv_varint_put(chunk[c] + len[c],
							  want[i].ref - prev);
			len[c] += (uint32_t)fv_varint_put(chunk[c] + len[c],
							  want[i].count);
			len[c] += (uint32_t)fv_varint_put(chunk[c] + len[c],
							  want[i].off / 8);
			prev = want[i].ref;
		}
	}
	err = fv_index_begin(ix);
	/* Parts out of order; neighbours 41 and 43 to test the prefix. */
	err = err ? err : fv_index_put_places(ix, 42, 2, chunk[2], len[2]);
	err = err ? err : fv_index_put_places(ix, 43, 0, chunk[1], len[1]);
	err = err ? err : fv_index_put_places(ix, 42, 0, chunk[0], len[0]);
	err = err ? err : fv_index_put_places(ix, 41, 7, chunk[2], len[2]);
	err = err ? err : fv_index_put_places(ix, 42, 1, chunk[1], len[1]);
	err = err ? err : fv_index_commit(ix);
	CHECK(err == 0, "put places: %s", fv_strerror(err));

	err = fv_index_places(ix, 42, on_run, &got);
	CHECK(err == 0 && got.n == 30, "places: %d, %zu runs", err, got.n);
	for (i = 0; i < got.n && i < 30; i++)
		if (got.v[i].ref != want[i].ref ||
		    got.v[i].count != want[i].count ||
		    got.v[i].off != want[i].off)
			break;
	CHECK(i == 30, "runs differ at %zu", i);
	got.n = 0;
	err = fv_index_places(ix, 44, on_run, &got);
	CHECK(err == 0 && got.n == 0, "no places: %zu", got.n);
	got.n = 0;
	got.stop_after = 12;
	err = fv_index_places(ix, 42, on_run, &got);
	CHECK(err == 0 && got.n == 12, "stop early: %d %zu", err, got.n);

	/* Malformed chunks: a varint cut short, a count of 0, a count
	 * without its ref. */
	bad[0] = 0x05;
	bad[1] = 0x80;
	err = fv_index_begin(ix);
	err = err ? err : fv_index_put_places(ix, 50, 0, bad, 2);
	bad[1] = 0x00;
	err = err ? err : fv_index_put_places(ix, 51, 0, bad, 2);
	err = err ? err : fv_index_put_places(ix, 52, 0, chunk[0], len[0]);
	err = err ? err : fv_index_put_places(ix, 52, 1, bad, 1);
	err = err ? err : fv_index_commit(ix);
	CHECK(err == 0, "put bad places: %s", fv_strerror(err));
	for (uint64_t id = 50; id <= 52; id++) {
		got.n = 0;
		got.stop_after = 0;
		err = fv_index_places(ix, id, on_run, &got);
		CHECK(err == FV_ECORRUPT, "flow %llu bad chunk: %d",
		      (unsigned long long)id, err);
	}
	CHECK(got.n == 10, "runs before the bad chunk: %zu", got.n);
	CHECK(strstr(fv_index_last_error(ix), "places") != NULL,
	      "error text: %s", fv_index_last_error(ix));
	/*
	 * Part 0 put just before its record goes into the flow's value
	 * (the places db does not grow); a checkpoint keeps it; part 0 put
	 * again replaces it; part 0 that waited in the places db moves into
	 * the value when it comes again with the record.
	 */
	{
		struct fv_index_stats s0, s1;
		struct fv_flow f, g;
		size_t j;

		memset(&f, 0, sizeof(f));
		f.key.family = 4;
		f.key.proto = 6;
		f.key.sport = 1000;
		f.key.dport = 80;
		f.first_ns = T0;
		f.last_ns = T0 + SEC;
		f.places_parts = 1;
		err = fv_index_stats(ix, &s0);
		err = err ? err : fv_index_begin(ix);
		f.id = 60;
		err = err ? err
			  : fv_index_put_places(ix, 60, 0, chunk[0], len[0]);
		err = err ? err : fv_index_put_flow(ix, &f);
		/* 62's part 0 is not followed by its record: places db. */
		err = err ? err
			  : fv_index_put_places(ix, 62, 0, chunk[1], len[1]);
		f.id = 63;
		err = err ? err : fv_index_put_flow(ix, &f);
		err = err ? err : fv_index_commit(ix);
		err = err ? err : fv_index_stats(ix, &s1);
		CHECK(err == 0 && s1.places == s0.places + 1,
		      "inline part 0: %d, places %llu -> %llu", err,
		      (unsigned long long)s0.places,
		      (unsigned long long)s1.places);
		got.n = 0;
		got.stop_after = 0;
		err = fv_index_places(ix, 60, on_run, &got);
		for (j = 0; j < got.n && j < 10; j++)
			if (got.v[j].ref != want[j].ref ||
			    got.v[j].count != want[j].count ||
			    got.v[j].off != want[j].off)
				break;
		CHECK(err == 0 && got.n == 10 && j == 10,
		      "inline runs: %d, %zu", err, got.n);
		got.n = 0;
		err = fv_index_places(ix, 62, on_run, &got);
		CHECK(err == 0 && got.n == 10 && got.v[0].ref == want[10].ref,
		      "part 0 in the places db: %d %zu", err, got.n);
		got.n = 0;
		err = fv_index_places(ix, 63, on_run, &got);
		CHECK(err == 0 && got.n == 0, "no places: %zu", got.n);

		/* A checkpoint, then part 1: the runs of both, in order. */
		f.id = 60;
		f.pkts[0] = 99;
		f.places_parts = 2;
		err = fv_index_begin(ix);
		err = err ? err : fv_index_put_flow(ix, &f);
		err = err ? err
			  : fv_index_put_places(ix, 60, 1, chunk[1], len[1]);
		err = err ? err : fv_index_commit(ix);
		got.n = 0;
		err = err ? err : fv_index_places(ix, 60, on_run, &got);
		for (j = 0; j < got.n && j < 20; j++)
			if (got.v[j].ref != want[j].ref)
				break;
		CHECK(err == 0 && got.n == 20 && j == 20,
		      "part 0 kept across a replace: %d, %zu", err, got.n);
		err = fv_index_get_flow(ix, 60, &g);
		CHECK(err == 0 && g.pkts[0] == 99 && g.places_parts == 2,
		      "record replaced: %d", err);

		/* Part 0 again, alone: replaces the one in the value. */
		err = fv_index_begin(ix);
		err = err ? err
			  : fv_index_put_places(ix, 60, 0, chunk[2], len[2]);
		err = err ? err : fv_index_commit(ix);
		got.n = 0;
		err = err ? err : fv_index_places(ix, 60, on_run, &got);
		CHECK(err == 0 && got.n == 20 && got.v[0].ref == want[20].ref &&
			      got.v[10].ref == want[10].ref,
		      "part 0 replaced in the value: %d, %zu", err, got.n);
		err = fv_index_get_flow(ix, 60, &g);
		CHECK(err == 0 && g.pkts[0] == 99, "record kept: %d", err);

		/* 62's part 0 comes again with its record: moves. */
		f.id = 62;
		err = fv_index_begin(ix);
		err = err ? err
			  : fv_index_put_places(ix, 62, 0, chunk[0], len[0]);
		err = err ? err : fv_index_put_flow(ix, &f);
		err = err ? err : fv_index_commit(ix);
		err = err ? err : fv_index_stats(ix, &s1);
		got.n = 0;
		err = err ? err : fv_index_places(ix, 62, on_run, &got);
		CHECK(err == 0 && got.n == 10 && got.v[0].ref == want[0].ref &&
			      s1.places == s0.places + 1,
		      "part 0 moved into the value: %d, %zu runs, places %llu",
		      err, got.n, (unsigned long long)s1.places);
		/* An aborted txn leaves no held-back part behind. */
		err = fv_index_begin(ix);
		err = err ? err
			  : fv_index_put_places(ix, 64, 0, chunk[0], len[0]);
		fv_index_abort(ix);
		err = err ? err : fv_index_begin(ix);
		f.id = 64;
		err = err ? err : fv_index_put_flow(ix, &f);
		err = err ? err : fv_index_commit(ix);
		got.n = 0;
		err = err ? err : fv_index_places(ix, 64, on_run, &got);
		CHECK(err == 0 && got.n == 0, "abort drops part 0: %d %zu", err,
		      got.n);
	}
	printf("places: 30 runs in 3 parts round-trip, prefix bounded, "
	       "part 0 in the flow value, 3 malformed chunks -> FV_ECORRUPT\n");
}

struct blocks {
	struct fv_block_info *v;
	size_t n;
};

static int on_block(void *arg, const struct fv_block_info *bi)
{
	struct blocks *r = arg;

	r->v[r->n++] = *bi;
	return 0;
}

static int block_cmp(const void *a, const void *b)
{
	const struct fv_block_info *x = a, *y = b;

	return x->ref < y->ref ? -1 : x->ref > y->ref;
}

static void test_blocks(struct fv_index *ix)
{
	enum { NB = 20000, NW = 3 };
	struct fv_block_info *all = calloc(NB, sizeof(*all));
	struct blocks got = {.v = calloc(NB, sizeof(*all))};
	struct fv_block_info *want = calloc(NB, sizeof(*all));
	uint64_t t[NW], seed = 7, tm;
	uint32_t off[NW] = {0}, gen[NW] = {0};
	size_t i, j, nw;
	int err = 0;

	/* Workers interleave, so refs are not globally ascending. */
	for (i = 0; i < NW; i++)
		t[i] = T0 + i * SEC / 3;
	for (i = 0; i < NB; i++) {
		unsigned w = (unsigned)(rnd(&seed) % NW);

		if (off[w] >= 1000) {
			gen[w]++;
			off[w] = 0;
		}
		all[i].ref = fv_ref_make(w, gen[w], off[w]);
		all[i].seq = i;
		all[i].first_ns = t[w];
		t[w] += rnd(&seed) % (2 * SEC);
		all[i].last_ns = t[w];
		t[w] += rnd(&seed) % (SEC / 2);
		all[i].count = (uint32_t)(1 + rnd(&seed) % 1000);
		all[i].disk_len = 256 * 4096;
		off[w] += 256;
	}
	for (i = 0; i < NB && !err; i += 1000) {
		err = fv_index_begin(ix);
		for (j = i; j < i + 1000 && !err; j++)
			err = fv_index_put_block(ix, &all[j]);
		err = err ? err : fv_index_commit(ix);
	}
	CHECK(err == 0, "put blocks: %s (%s)", fv_strerror(err),
	      fv_index_last_error(ix));
	/* A block put again (a retry) replaces itself. */
	err = fv_index_begin(ix);
	err = err ? err : fv_index_put_block(ix, &all[17]);
	err = err ? err : fv_index_commit(ix);
	CHECK(err == 0, "put block again");
	qsort(all, NB, sizeof(*all), block_cmp);

	{
		uint64_t win[][2] = {
			{0, UINT64_MAX},
			{T0 + 100 * SEC, T0 + 100 * SEC},
			{T0 + 1000 * SEC, T0 + 1100 * SEC},
			{0, T0},
			{T0 + 30000 * SEC, UINT64_MAX},
			{T0 + 7 * SEC, T0 + 6 * SEC},
		};
		for (size_t q = 0; q < sizeof(win) / sizeof(win[0]); q++) {
			uint64_t s = win[q][0], u = win[q][1];

			nw = 0;
			for (i = 0; i < NB; i++)
				if (s <= u && all[i].first_ns <= u &&
				    all[i].last_ns >= s)
					want[nw++] = all[i];
			got.n = 0;
			tm = fv_now_mono_ns();
			err = fv_index_blocks(ix, s, u, on_block, &got);
			tm = fv_now_mono_ns() - tm;
			CHECK(err == 0 && got.n == nw &&
				      !memcmp(got.v, want, nw * sizeof(*want)),
			      "blocks window %zu: %zu, want %zu", q, got.n, nw);
			if (q == 0)
				printf("blocks: full scan of %zu: %.2f ms\n",
				       got.n, (double)tm / 1e6);
		}
	}
	{
		struct fv_index_stats st;

		fv_index_stats(ix, &st);
		CHECK(st.blocks == NB, "stats blocks %llu",
		      (unsigned long long)st.blocks);
	}
	printf("blocks: %d from %d workers, 6 windows match the brute force\n",
	       NB, NW);
	free(all);
	free(got.v);
	free(want);
}

static void test_meta(struct fv_index *ix)
{
	uint8_t buf[16];
	size_t n = 0;
	uint64_t v = 0;
	int err;

	CHECK(fv_index_put_u64(ix, "x", 1) == -EINVAL, "put without txn");
	CHECK(fv_index_add_u64(ix, "x", 1) == -EINVAL, "add without txn");
	CHECK(fv_index_put_places(ix, 1, 0, buf, 1) == -EINVAL,
	      "places without txn");
	CHECK(fv_index_commit(ix) == -EINVAL, "commit without txn");
	err = fv_index_begin(ix);
	CHECK(err == 0 && fv_index_begin(ix) == -EINVAL, "begin twice");
	err = err ? err : fv_index_add_u64(ix, "packets", 5);
	err = err ? err : fv_index_add_u64(ix, "packets", 7);
	err = err ? err : fv_index_put_meta(ix, "iface.0", "eth0", 4);
	err = err ? err : fv_index_put_meta(ix, "empty", NULL, 0);
	CHECK(fv_index_put_meta(ix, "", "x", 1) == -EINVAL, "empty name");
	err = err ? err : fv_index_commit(ix);
	CHECK(err == 0, "meta txn: %s", fv_strerror(err));
	err = fv_index_begin(ix);
	err = err ? err : fv_index_add_u64(ix, "packets", 100);
	err = err ? err : fv_index_add_u64(ix, "iface.0", 1);
	CHECK(err == FV_EFORMAT, "add to a non-u64: %d", err);
	fv_index_abort(ix);
	err = fv_index_begin(ix);
	err = err ? err : fv_index_add_u64(ix, "packets", 1000);
	/* Readers see only what is committed. */
	CHECK(fv_index_get_u64(ix, "packets", &v) == 0 && v == 12,
	      "reader during txn: %llu", (unsigned long long)v);
	err = err ? err : fv_index_commit(ix);
	CHECK(fv_index_get_u64(ix, "packets", &v) == 0 && v == 1012,
	      "counter after abort and commit: %llu", (unsigned long long)v);
	CHECK(fv_index_get_meta(ix, "iface.0", buf, sizeof(buf), &n) == 0 &&
		      n == 4 && !memcmp(buf, "eth0", 4),
	      "meta bytes");
	CHECK(fv_index_get_meta(ix, "iface.0", buf, 2, &n) == -ENOBUFS &&
		      n == 4,
	      "meta too small");
	CHECK(fv_index_get_meta(ix, "empty", buf, sizeof(buf), &n) == 0 &&
		      n == 0,
	      "empty meta");
	CHECK(fv_index_get_u64(ix, "iface.0", &v) == FV_EFORMAT,
	      "u64 of 4 bytes");
	CHECK(fv_index_get_u64(ix, "nothing", &v) == FV_ENOTFOUND, "missing");
	CHECK(fv_index_get_flow(ix, 999999999, &(struct fv_flow){0}) ==
		      FV_ENOTFOUND,
	      "missing flow");
	printf("meta: put/get, add_u64 across txns and aborts checked\n");
}

/* ---- the recycle step: blocks of a generation dropped, retention ---- */

static struct fv_block_info ret_block(unsigned w, uint32_t gen, uint32_t i)
{
	struct fv_block_info bi = {
		.ref = fv_ref_make(w, gen, i * 256),
		.seq = gen * 100 + i,
		.first_ns = T0 + (gen * 100 + i) * SEC + w,
		.last_ns = T0 + (gen * 100 + i) * SEC + SEC / 2 + w,
		.count = 10,
		.disk_len = 256 * 4096,
	};
	return bi;
}

static size_t count_blocks(struct fv_index *ix, unsigned w, uint32_t gen)
{
	struct blocks got = {.v = calloc(1000, sizeof(struct fv_block_info))};
	size_t n = 0;

	fv_index_blocks(ix, 0, UINT64_MAX, on_block, &got);
	for (size_t i = 0; i < got.n; i++)
		if (fv_ref_worker(got.v[i].ref) == w &&
		    (gen == UINT32_MAX || fv_ref_gen(got.v[i].ref) == gen))
			n++;
	free(got.v);
	return n;
}

static void test_recycle(const char *dir)
{
	struct fv_indexer *x0 = NULL, *x1 = NULL;
	struct fv_retention rt;
	struct fv_index_drop d;
	struct fv_index *ix;
	struct fv_block_info bi;
	struct fv_flow f;
	uint64_t first, last, tm;
	int err;

	err = fv_index_open(&ix, dir, FV_INDEX_CREATE, 0);
	CHECK(err == 0, "open: %s", fv_strerror(err));
	if (err)
		return;
	CHECK(fv_index_retention(ix, &rt) == 0 && !rt.packets_from_ns &&
		      !rt.from_ns[0] && !rt.from_gen[0],
	      "a new store keeps everything");
	CHECK(fv_index_flow_range(ix, &first, &last) == FV_ENOTFOUND,
	      "no flow range yet");
	err = fv_indexer_new(&x0, ix);
	err = err ? err : fv_indexer_new(&x1, ix);
	/* Worker 0: generations 1..3 committed, 4 pending in the batch;
	 * worker 1: generations 1..2 committed. */
	for (uint32_t g = 1; g <= 3; g++)
		for (uint32_t i = 0; i < 10; i++) {
			bi = ret_block(0, g, i);
			fv_indexer_on_sealed(x0, &bi);
		}
	for (uint32_t g = 1; g <= 2; g++)
		for (uint32_t i = 0; i < 10; i++) {
			bi = ret_block(1, g, i);
			fv_indexer_on_sealed(x1, &bi);
		}
	err = err ? err : fv_indexer_commit(x0, NULL, 0, 1);
	err = err ? err : fv_indexer_commit(x1, NULL, 0, 1);
	CHECK(err == 0, "commit blocks: %s", fv_strerror(err));
	for (uint32_t i = 0; i < 10; i++) {
		bi = ret_block(0, 4, i);
		fv_indexer_on_sealed(x0, &bi);
	}
	CHECK(count_blocks(ix, 0, UINT32_MAX) == 30, "30 blocks of worker 0");

	/* Generation 1 of worker 0 goes: its 10 blocks, nothing else. */
	err = fv_indexer_recycle(x0, 0, 1, &d);
	CHECK(err == 0 && d.blocks == 10 && d.packets == 100 && d.have_next &&
		      d.next.ref == ret_block(0, 2, 0).ref,
	      "recycle gen 1: %s, %llu blocks", fv_strerror(err),
	      (unsigned long long)d.blocks);
	CHECK(count_blocks(ix, 0, 1) == 0 && count_blocks(ix, 0, 2) == 10 &&
		      count_blocks(ix, 1, UINT32_MAX) == 20,
	      "gen 1 of worker 0 gone, the rest stays");
	CHECK(fv_index_retention(ix, &rt) == 0 &&
		      rt.from_ns[0] == ret_block(0, 2, 0).first_ns &&
		      rt.from_gen[0] == 2 && rt.from_ns[1] == 0 &&
		      rt.packets_from_ns == rt.from_ns[0],
	      "retention of worker 0 from its gen 2: %llu",
	      (unsigned long long)rt.from_ns[0]);

	/* Generation 3 (2 left behind goes too); the oldest left, gen 4, is
	 * only in the batch. */
	err = fv_indexer_recycle(x0, 0, 3, &d);
	CHECK(err == 0 && d.blocks == 20 && d.have_next &&
		      d.next.ref == ret_block(0, 4, 0).ref,
	      "recycle gen 3: %llu blocks", (unsigned long long)d.blocks);
	fv_index_retention(ix, &rt);
	CHECK(rt.from_ns[0] == ret_block(0, 4, 0).first_ns &&
		      rt.from_gen[0] == 4,
	      "retention from the batch's first block");

	/* Generation 4, still pending: dropped from the batch, never
	 * written; nothing left: retention after its last packet. */
	err = fv_indexer_recycle(x0, 0, 4, &d);
	CHECK(err == 0 && d.blocks == 10 && !d.have_next,
	      "recycle pending gen 4: %llu", (unsigned long long)d.blocks);
	err = fv_indexer_commit(x0, NULL, 0, 1);
	CHECK(err == 0 && count_blocks(ix, 0, UINT32_MAX) == 0,
	      "dropped pending blocks never reach the index");
	fv_index_retention(ix, &rt);
	CHECK(rt.from_ns[0] == ret_block(0, 4, 9).last_ns + 1,
	      "retention after the last dropped packet");

	/* Worker 1 recycles an older time: the store-wide start stays the
	 * largest (worker 0's). */
	err = fv_indexer_recycle(x1, 1, 1, &d);
	fv_index_retention(ix, &rt);
	CHECK(err == 0 && rt.from_ns[1] == ret_block(1, 2, 0).first_ns &&
		      rt.packets_from_ns == rt.from_ns[0] &&
		      count_blocks(ix, 1, UINT32_MAX) == 10,
	      "worker 1 retention %llu, store %llu",
	      (unsigned long long)rt.from_ns[1],
	      (unsigned long long)rt.packets_from_ns);
	/* Never backwards. */
	err = fv_index_begin(ix);
	err = err ? err : fv_index_set_packets_from(ix, 1, T0, 1);
	err = err ? err : fv_index_commit(ix);
	fv_index_retention(ix, &rt);
	CHECK(err == 0 && rt.from_ns[1] == ret_block(1, 2, 0).first_ns &&
		      rt.from_gen[1] == 2,
	      "retention never moves back");

	/* A flow's packets against its worker's start. */
	memset(&f, 0, sizeof(f));
	f.worker = 1;
	f.first_ns = rt.from_ns[1];
	f.last_ns = f.first_ns + SEC;
	CHECK(fv_retention_flow(&rt, &f) == FV_AVAIL_YES, "yes");
	f.first_ns = rt.from_ns[1] - 1;
	CHECK(fv_retention_flow(&rt, &f) == FV_AVAIL_PARTIAL, "partial");
	f.last_ns = rt.from_ns[1] - 1;
	f.first_ns = T0;
	CHECK(fv_retention_flow(&rt, &f) == FV_AVAIL_EXPIRED, "expired");
	f.worker = 2;
	CHECK(fv_retention_flow(&rt, &f) == FV_AVAIL_YES,
	      "a worker that never recycled keeps all");
	CHECK(!strcmp(fv_avail_name(FV_AVAIL_PARTIAL), "partial"), "names");

	/* The flow time range: first first_ns and largest last_ns. */
	err = fv_index_begin(ix);
	full_flow(&f);
	f.id = 1;
	f.first_ns = T0 + 5 * SEC;
	f.last_ns = T0 + 500 * SEC;
	err = err ? err : fv_index_put_flow(ix, &f);
	f.id = 2;
	f.first_ns = T0 + 7 * SEC;
	f.last_ns = T0 + 9 * SEC;
	err = err ? err : fv_index_put_flow(ix, &f);
	err = err ? err : fv_index_commit(ix);
	CHECK(err == 0 && fv_index_flow_range(ix, &first, &last) == 0 &&
		      first == T0 + 5 * SEC && last == T0 + 500 * SEC,
	      "flow range %llu..%llu", (unsigned long long)first,
	      (unsigned long long)last);

	/* Cost of one recycle commit (an fsync of the index), with 10000
	 * blocks in the index: informational. */
	for (uint32_t g = 10; g < 30; g++)
		for (uint32_t i = 0; i < 500; i++) {
			bi = ret_block(2, g, i);
			fv_indexer_on_sealed(x0, &bi);
		}
	err = fv_indexer_commit(x0, NULL, 0, 3);
	tm = fv_now_mono_ns();
	for (uint32_t g = 10; g < 30 && !err; g++)
		err = fv_indexer_recycle(x0, 2, g, &d);
	tm = fv_now_mono_ns() - tm;
	CHECK(err == 0 && count_blocks(ix, 2, UINT32_MAX) == 0,
	      "20 recycles of 500 blocks");
	printf("recycle: blocks of a generation dropped (indexed and pending), "
	       "retention per worker and store-wide; %.2f ms per recycle "
	       "commit of 500 blocks\n",
	       (double)tm / 20 / 1e6);
	fv_indexer_free(x0);
	fv_indexer_free(x1);
	fv_index_close(ix);
}

/* ---- a second process reads while this one writes ---- */

static int child_reader(const char *dir, int rd, int wr, uint64_t id)
{
	struct fv_index *ro;
	struct fv_flow f;
	struct results r = {0};
	int bad = 0, err;
	char c;

	alarm(20);
	if (read(rd, &c, 1) != 1)
		return 1;
	err = fv_index_open(&ro, dir, FV_INDEX_RDONLY, 0);
	if (err) {
		fprintf(stderr, "child: open: %s\n", fv_strerror(err));
		return 1;
	}
	bad |= fv_index_get_flow(ro, id, &f) != FV_ENOTFOUND;
	bad |= (fv_index_get_flow(ro, 42424242, &f) != 0) << 1;
	bad |= (fv_index_query(ro, 0, UINT64_MAX, NULL, on_flow, &r) != 0 ||
		r.n != 1)
	       << 2;
	bad |= (fv_index_begin(ro) != -EROFS) << 3;
	bad |= (fv_index_put_u64(ro, "x", 1) != -EINVAL) << 4;
	if (write(wr, "r", 1) != 1 || read(rd, &c, 1) != 1)
		return 1;
	/* The writer has committed: a new read txn sees the flow. */
	bad |= (fv_index_get_flow(ro, id, &f) != 0 || f.id != id) << 5;
	r.n = 0;
	bad |= (fv_index_query(ro, 0, UINT64_MAX, NULL, on_flow, &r) != 0 ||
		r.n != 2)
	       << 6;
	fv_index_close(ro);
	free(r.v);
	if (bad)
		fprintf(stderr, "child: failed checks 0x%x\n", bad);
	return bad ? 1 : 0;
}

static void test_second_reader(const char *dir)
{
	int to_child[2], to_parent[2], status = 0, err;
	struct fv_index *ix;
	struct fv_flow f;
	pid_t pid;
	char c;

	err = fv_index_open(&ix, dir, FV_INDEX_CREATE, 0);
	CHECK(err == 0, "open: %s", fv_strerror(err));
	if (err)
		return;
	memset(&f, 0, sizeof(f));
	f.id = 42424242;
	f.key.family = 4;
	f.first_ns = T0;
	f.last_ns = T0 + SEC;
	err = fv_index_begin(ix);
	err = err ? err : fv_index_put_flow(ix, &f);
	err = err ? err : fv_index_commit(ix);
	CHECK(err == 0, "first flow: %s", fv_strerror(err));
	if (pipe(to_child) || pipe(to_parent)) {
		CHECK(0, "pipe: %s", strerror(errno));
		goto out_close;
	}
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		/* Never touch the parent's environment here. */
		close(to_child[1]);
		close(to_parent[0]);
		_exit(child_reader(dir, to_child[0], to_parent[1], 42424243));
	}
	CHECK(pid > 0, "fork: %s", strerror(errno));
	/* Only the child writes to_parent: its death ends the parent's read. */
	close(to_child[0]);
	close(to_parent[1]);
	if (pid < 0) {
		close(to_child[1]);
		close(to_parent[0]);
		goto out_close;
	}
	f.id = 42424243;
	err = fv_index_begin(ix);
	err = err ? err : fv_index_put_flow(ix, &f);
	CHECK(err == 0, "second flow: %s", fv_strerror(err));
	/* The writer holds its txn while the child opens and reads. */
	CHECK(write(to_child[1], "w", 1) == 1 && read(to_parent[0], &c, 1) == 1,
	      "child did not answer");
	err = fv_index_commit(ix);
	CHECK(err == 0, "commit: %s", fv_strerror(err));
	CHECK(write(to_child[1], "c", 1) == 1, "pipe write");
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "child reader status 0x%x", status);
	printf("reader: a read-only handle in another process reads beside "
	       "an open write txn\n");
	close(to_child[1]);
	close(to_parent[0]);
out_close:
	fv_index_close(ix);
}

/* ---- flow retention ---- */

static void retention_flow(struct fv_flow *f, uint64_t id)
{
	memset(f, 0, sizeof(*f));
	f->id = id;
	f->key.family = 4;
	f->key.proto = 6;
	f->key.saddr[0] = 10;
	f->key.saddr[3] = (uint8_t)(id % 200 + 1);
	f->key.daddr[0] = 10;
	f->key.daddr[3] = 250;
	f->key.sport = (uint16_t)(20000 + id);
	f->key.dport = 443;
	f->first_ns = T0 + id * SEC;
	f->last_ns = f->first_ns + 10 * SEC;
	f->pkts[0] = 1;
}

static void test_flow_retention(const char *dir)
{
	static const uint8_t enc[] = {0x80, 0x80, 0x80, 0x08, 0x01, 0x08};
	struct fv_index_expiry e;
	struct results r = {0};
	struct runs runs = {.n = 0};
	struct fv_filter *filt = NULL;
	struct fv_filter_error fe;
	struct fv_index *ix;
	struct fv_flow f, g;
	uint64_t v = 0, live0, live1;
	int err;

	err = fv_index_open(&ix, dir, FV_INDEX_CREATE, 0);
	CHECK(err == 0, "open: %s", fv_strerror(err));
	if (err)
		return;
	/* 5000 flows, one a second, 10 s long; places in the value for
	 * the even ones, in the places db (part 1 too) for the odd. */
	err = fv_index_begin(ix);
	for (uint64_t id = 1; !err && id <= 5000; id++) {
		retention_flow(&f, id);
		if (id % 2) {
			err = fv_index_put_flow(ix, &f);
			err = err ? err
				  : fv_index_put_places(ix, id, 1, enc,
							sizeof(enc));
		}
		err = err ? err
			  : fv_index_put_places(ix, id, 0, enc, sizeof(enc));
		if (!err && !(id % 2))
			err = fv_index_put_flow(ix, &f);
	}
	err = err ? err : fv_index_commit(ix);
	CHECK(err == 0, "put: %s", fv_strerror(err));

	/* By time: ids up to 1990 ended before T0 + 2000.5 s. Bucket 0
	 * (ids 1..1023) goes whole, bucket 1 keeps 1991..2047: it stops
	 * there. */
	err = fv_index_begin(ix);
	err = err ? err
		  : fv_index_expire_flows(ix, T0 + 2000 * SEC + SEC / 2, 0, 10,
					  &e);
	err = err ? err : fv_index_commit(ix);
	CHECK(err == 0 && e.flows == 1990 && e.buckets == 1 &&
		      e.from_ns == T0 + 2000 * SEC + 1,
	      "by time: %s, %llu flows, %llu buckets, from %llu",
	      fv_strerror(err), (unsigned long long)e.flows,
	      (unsigned long long)e.buckets,
	      (unsigned long long)(e.from_ns - T0));
	CHECK(fv_index_get_flow(ix, 1990, &g) == FV_ENOTFOUND &&
		      fv_index_get_flow(ix, 1991, &g) == 0,
	      "flow 1990 gone, 1991 kept");
	CHECK(fv_index_places(ix, 1989, on_run, &runs) == 0 && runs.n == 0,
	      "places of a deleted flow gone (%zu runs)", runs.n);
	runs.n = 0;
	CHECK(fv_index_places(ix, 1991, on_run, &runs) == 0 && runs.n == 2,
	      "places of a kept flow kept (%zu runs)", runs.n);
	CHECK(fv_index_query(ix, 0, UINT64_MAX, NULL, on_flow, &r) == 0 &&
		      r.n == 5000 - 1990 && r.v[0].id == 1991,
	      "query: %zu flows left, first %llu", r.n,
	      r.n ? (unsigned long long)r.v[0].id : 0ull);
	r.n = 0;
	err = fv_filter_compile("host 10.0.0.10", &filt, &fe);
	CHECK(err == 0 &&
		      fv_index_query(ix, 0, UINT64_MAX, filt, on_flow, &r) ==
			      0 &&
		      r.n == 15 && r.v[0].id >= 1991,
	      "host query after expiry: %zu flows", r.n);
	fv_filter_free(filt);
	CHECK(fv_index_get_u64(ix, "flows_expired", &v) == 0 && v == 1990,
	      "meta flows_expired %llu", (unsigned long long)v);
	CHECK(fv_index_get_u64(ix, "flows_from_ns", &v) == 0 &&
		      v == T0 + 2000 * SEC + 1,
	      "meta flows_from_ns");

	/* By size: a bound below what the index holds takes whole buckets,
	 * oldest first, and the pages come back to LMDB's free list. */
	err = fv_index_begin(ix);
	err = err ? err : fv_index_expire_flows(ix, 0, 1, 1, &e);
	live0 = e.live_bytes;
	err = err ? err : fv_index_commit(ix);
	/* A bucket's worth of reading: the 57 left of bucket 1, then
	 * bucket 2 whole (the budget is met inside it). */
	CHECK(err == 0 && e.flows == 57 + 1024 && e.buckets == 2,
	      "by size, 1 bucket's worth: %s, %llu flows, %llu buckets",
	      fv_strerror(err), (unsigned long long)e.flows,
	      (unsigned long long)e.buckets);
	err = fv_index_begin(ix);
	err = err ? err : fv_index_expire_flows(ix, 0, 1, 100, &e);
	err = err ? err : fv_index_commit(ix);
	CHECK(err == 0 && e.flows == 5000 - 3071 && e.buckets == 2,
	      "by size, the rest: %llu flows, %llu buckets",
	      (unsigned long long)e.flows, (unsigned long long)e.buckets);
	err = fv_index_begin(ix);
	err = err ? err : fv_index_expire_flows(ix, 0, 1, 100, &e);
	live1 = e.live_bytes;
	fv_index_abort(ix);
	CHECK(live1 < live0 / 2, "live bytes %llu -> %llu",
	      (unsigned long long)live0, (unsigned long long)live1);
	r.n = 0;
	CHECK(fv_index_query(ix, 0, UINT64_MAX, NULL, on_flow, &r) == 0 &&
		      r.n == 0,
	      "no flow left: %zu", r.n);
	free(r.v);
	fv_index_close(ix);
	printf("flow retention: 1990 flows by time (the bucket still "
	       "holding later ones is kept), the rest by size; live bytes "
	       "%llu -> %llu\n",
	       (unsigned long long)live0, (unsigned long long)live1);
}

/* ---- a new index: empty to readers until its first commit ---- */

static void test_new_index(const char *dir)
{
	struct fv_index *w, *r = NULL;
	struct fv_retention rt;
	struct fv_index_stats st;
	struct results res = {0};
	struct fv_flow f, g;
	uint64_t a, b, v;
	int err;

	err = fv_index_open(&w, dir, FV_INDEX_CREATE, 0);
	CHECK(err == 0, "open new: %s", fv_strerror(err));
	if (err)
		return;
	err = fv_index_open(&r, dir, FV_INDEX_RDONLY, 0);
	CHECK(err == 0, "reader of a new index: %s", fv_strerror(err));
	if (!err) {
		CHECK(fv_index_get_flow(r, 7, &g) == FV_ENOTFOUND, "no flow");
		CHECK(fv_index_query(r, 0, UINT64_MAX, NULL, on_flow, &res) ==
				      0 &&
			      res.n == 0,
		      "no result");
		CHECK(fv_index_flow_range(r, &a, &b) == FV_ENOTFOUND,
		      "no range");
		CHECK(fv_index_retention(r, &rt) == 0 && !rt.packets_from_ns,
		      "no retention");
		CHECK(fv_index_get_u64(r, "next_flow_id", &v) == FV_ENOTFOUND,
		      "no meta");
		CHECK(fv_index_stats(r, &st) == 0 && st.flows == 0, "stats");
	}
	memset(&f, 0, sizeof(f));
	f.id = 7;
	f.key.family = 4;
	f.first_ns = T0;
	f.last_ns = T0 + SEC;
	/* An aborted first txn leaves the index new. */
	err = fv_index_begin(w);
	err = err ? err : fv_index_put_flow(w, &f);
	CHECK(err == 0, "first txn: %s", fv_strerror(err));
	fv_index_abort(w);
	if (r)
		CHECK(fv_index_get_flow(r, 7, &g) == FV_ENOTFOUND,
		      "nothing after an abort");
	err = fv_index_begin(w);
	err = err ? err : fv_index_put_flow(w, &f);
	/* The dbs live in the writer's txn: readers see nothing yet. */
	if (!err && r)
		CHECK(fv_index_get_flow(r, 7, &g) == FV_ENOTFOUND,
		      "nothing before the commit");
	err = err ? err : fv_index_commit(w);
	CHECK(err == 0, "first commit: %s", fv_strerror(err));
	if (r) {
		CHECK(fv_index_get_flow(r, 7, &g) == 0 && g.first_ns == T0,
		      "the same reader sees the first commit");
		free(res.v);
		memset(&res, 0, sizeof(res));
		CHECK(fv_index_query(r, 0, UINT64_MAX, NULL, on_flow, &res) ==
				      0 &&
			      res.n == 1,
		      "query after the first commit");
		fv_index_close(r);
	}
	free(res.v);
	fv_index_close(w);
	printf("new index: empty to readers until the first commit (an "
	       "aborted one leaves it new), then read by the same handle\n");
}

/* ---- threads reading one handle while it writes ---- */

struct reader_arg {
	struct fv_index *ix;
	int stop;
	unsigned loops, errors;
};

static void *reader_thread(void *p)
{
	struct reader_arg *a = p;
	struct results r = {0};

	while (!__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE)) {
		struct fv_flow f;
		int err;

		r.n = 0;
		err = fv_index_query(a->ix, 0, UINT64_MAX, NULL, on_flow, &r);
		if (err)
			a->errors++;
		for (size_t i = 1; i < r.n; i++)
			if (r.v[i].first < r.v[i - 1].first)
				a->errors++;
		if (r.n && fv_index_get_flow(a->ix, r.v[0].id, &f))
			a->errors++;
		a->loops++;
	}
	free(r.v);
	return NULL;
}

static void test_threads(const char *dir)
{
	struct reader_arg a[2] = {{0}};
	pthread_t th[2];
	struct fv_index *ix;
	struct fv_flow f;
	int err;

	err = fv_index_open(&ix, dir, FV_INDEX_CREATE, 0);
	CHECK(err == 0, "open: %s", fv_strerror(err));
	if (err)
		return;
	for (int i = 0; i < 2; i++) {
		a[i].ix = ix;
		pthread_create(&th[i], NULL, reader_thread, &a[i]);
	}
	memset(&f, 0, sizeof(f));
	f.key.family = 6;
	for (int b = 0; b < 20 && !err; b++) {
		err = fv_index_begin(ix);
		for (int i = 0; i < 100 && !err; i++) {
			f.id = 1 + (uint64_t)b * 100 + (uint64_t)i;
			f.first_ns = T0 + f.id * SEC;
			f.last_ns = f.first_ns + SEC;
			err = fv_index_put_flow(ix, &f);
		}
		/* Reads on the writer's thread while its txn is open. */
		if (!err && b)
			err = fv_index_get_flow(ix, 1, &f);
		err = err ? err : fv_index_commit(ix);
		/* The map replaced while the readers read. */
		err = err ? err : fv_index_set_cap(ix, b % 2 ? 0 : 64 << 20);
	}
	CHECK(err == 0, "writes beside readers: %s", fv_strerror(err));
	for (int i = 0; i < 2; i++) {
		__atomic_store_n(&a[i].stop, 1, __ATOMIC_RELEASE);
		pthread_join(th[i], NULL);
		CHECK(a[i].errors == 0, "reader %d: %u errors", i, a[i].errors);
	}
	printf("threads: 2 readers (%u, %u queries) beside 20 commits and "
	       "20 maps\n",
	       a[0].loops, a[1].loops);
	fv_index_close(ix);
}

/* ---- a cap on the index's files ---- */

/* What du -b says of an index directory: data.mdb, lock.mdb and itself. */
static uint64_t dir_bytes(const char *dir)
{
	const char *files[] = {"", "/data.mdb", "/lock.mdb"};
	uint64_t n = 0;
	struct stat st;
	char p[700];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", dir, files[i]);
		if (!stat(p, &st))
			n += (uint64_t)st.st_size;
	}
	return n;
}

/* A short flow as tools/bench/manyflows.py makes them: one of 4096
 * clients, a random client port, one of 512 servers, one every 100 us. */
static void churn_flow(struct fv_flow *f, uint64_t id, uint64_t *seed)
{
	uint64_t r = rnd(seed);

	memset(f, 0, sizeof(*f));
	f->id = id;
	f->key.family = 4;
	f->key.proto = 17;
	f->key.saddr[0] = 10;
	f->key.saddr[1] = 1;
	f->key.saddr[2] = (uint8_t)(r >> 8 & 15);
	f->key.saddr[3] = (uint8_t)r;
	f->key.daddr[0] = 10;
	f->key.daddr[1] = 200;
	f->key.daddr[2] = (uint8_t)(r >> 12 & 1);
	f->key.daddr[3] = (uint8_t)(r >> 16);
	f->key.sport = (uint16_t)(1024 + (r >> 24) % 64000);
	f->key.dport = 53;
	f->first_ns = T0 + id * 100000;
	f->last_ns = f->first_ns + 1000000;
	f->pkts[0] = f->pkts[1] = 1;
	f->bytes[0] = 80;
	f->bytes[1] = 120;
}

/*
 * fv_index_set_cap: the files never pass the cap and a write that finds
 * no page fails with FV_EFULL, leaving the last commit whole. Then the
 * indexer given that cap takes a batch (and its blocks) into the full
 * index by making room (the oldest records go, counted), and keeps
 * taking batches under the cap.
 */
static void test_cap(const char *dir)
{
	const uint64_t cap = 2 << 20;
	struct fv_indexer *x = NULL;
	struct fv_index_stats st;
	struct fv_flow_sink sink;
	struct fv_block_info bi;
	struct fv_index_drop d;
	struct fv_index *ix;
	struct fv_flow f;
	uint64_t seed = 7, id = 0, kept = 0, big = 0, v = 0, ex = 0;
	size_t missing = 0;
	int err;

	err = fv_index_open(&ix, dir, FV_INDEX_CREATE, 0);
	CHECK(err == 0, "open: %s", fv_strerror(err));
	if (err)
		return;
	CHECK(fv_index_set_cap(ix, 64 << 10) == -EINVAL, "a cap of 16 pages");
	err = fv_index_set_cap(ix, cap);
	CHECK(err == 0, "cap: %s", fv_strerror(err));
	/* Commits of 500 flows, no expiry, until the map is full. */
	while (!err && id < 100000) {
		err = fv_index_begin(ix);
		for (int i = 0; i < 500 && !err; i++) {
			churn_flow(&f, ++id, &seed);
			err = fv_index_put_flow(ix, &f);
		}
		if (err)
			fv_index_abort(ix);
		else
			err = fv_index_commit(ix);
		if (!err)
			kept = id;
		if (dir_bytes(dir) > big)
			big = dir_bytes(dir);
	}
	CHECK(err == FV_EFULL, "filled: %s after %llu flows", fv_strerror(err),
	      (unsigned long long)id);
	CHECK(big <= cap && big > cap - cap / 8,
	      "files %llu bytes at most, cap %llu", (unsigned long long)big,
	      (unsigned long long)cap);
	err = fv_index_stats(ix, &st);
	CHECK(err == 0 && st.flows == kept && st.used_bytes <= st.map_bytes &&
		      st.map_bytes <= cap && st.free_bytes >= st.freed_bytes &&
		      st.freed_bytes > 0,
	      "stats: %llu flows of %llu, used %llu, map %llu, free %llu, "
	      "freed %llu",
	      (unsigned long long)st.flows, (unsigned long long)kept,
	      (unsigned long long)st.used_bytes,
	      (unsigned long long)st.map_bytes,
	      (unsigned long long)st.free_bytes,
	      (unsigned long long)st.freed_bytes);
	CHECK(fv_index_get_flow(ix, kept, &f) == 0 &&
		      fv_index_get_flow(ix, kept + 1, &f) == FV_ENOTFOUND,
	      "the last commit whole, nothing of the failed one");
	printf("cap: %llu bytes of files for a cap of %llu: FV_EFULL after "
	       "%llu flows\n",
	       (unsigned long long)big, (unsigned long long)cap,
	       (unsigned long long)kept);
	id = kept; /* the ids of the failed txn are free again */

	/* The indexer, into the full index: a batch of 3000 flows and 3
	 * blocks, then 20 more of 2000 flows. Each commit expires the oldest
	 * records down to what the cap holds (the batch's own too, when it
	 * shares their bucket): every flow is there or counted. */
	err = fv_indexer_new(&x, ix);
	CHECK(err == 0, "indexer: %s", fv_strerror(err));
	if (err)
		goto out_close;
	fv_indexer_set_retention(x, 0, cap);
	fv_indexer_sink(x, &sink);
	for (uint32_t i = 0; i < 3; i++) {
		bi = ret_block(0, 1, i);
		fv_indexer_on_sealed(x, &bi);
	}
	for (int i = 0; i < 3000; i++) {
		churn_flow(&f, ++id, &seed);
		sink.record(sink.arg, &f);
	}
	err = fv_indexer_commit(x, NULL, 0, id + 1);
	CHECK(err == 0, "a batch into the full index: %s (%s)",
	      fv_strerror(err), fv_index_last_error(ix));
	CHECK(fv_index_get_u64(ix, "index_full", &v) == 0 && v >= 1,
	      "meta index_full %llu", (unsigned long long)v);
	for (uint64_t i = kept + 1; i <= id; i++)
		missing += fv_index_get_flow(ix, i, &f) != 0;
	err = fv_index_stats(ix, &st);
	err = err ? err : fv_index_get_u64(ix, "flows_expired", &ex);
	CHECK(err == 0 && st.flows + ex == id && missing < 3000,
	      "%llu flows kept + %llu expired, of %llu (%zu of the batch "
	      "expired)",
	      (unsigned long long)st.flows, (unsigned long long)ex,
	      (unsigned long long)id, missing);
	CHECK(count_blocks(ix, 0, 1) == 3, "its blocks indexed");
	CHECK(dir_bytes(dir) <= cap, "files %llu bytes after it",
	      (unsigned long long)dir_bytes(dir));
	for (int c = 0; c < 20 && !err; c++) {
		for (int i = 0; i < 2000; i++) {
			churn_flow(&f, ++id, &seed);
			sink.record(sink.arg, &f);
		}
		err = fv_indexer_commit(x, NULL, 0, id + 1);
		if (dir_bytes(dir) > big)
			big = dir_bytes(dir);
	}
	CHECK(err == 0 && big <= cap,
	      "20 more batches: %s, files %llu bytes at most", fv_strerror(err),
	      (unsigned long long)big);
	err = fv_index_stats(ix, &st);
	err = err ? err : fv_index_get_u64(ix, "flows_expired", &ex);
	CHECK(err == 0 && st.flows + ex == id && st.flows > id / 100 &&
		      fv_index_get_flow(ix, id, &f) == 0,
	      "%llu flows kept + %llu expired, of %llu",
	      (unsigned long long)st.flows, (unsigned long long)ex,
	      (unsigned long long)id);
	/* The recycle step under the cap too. */
	err = fv_indexer_recycle(x, 0, 1, &d);
	CHECK(err == 0 && d.blocks == 3 && count_blocks(ix, 0, 1) == 0,
	      "recycle: %s", fv_strerror(err));
	printf("cap: the indexer took 43000 flows into the full index (%llu "
	       "kept, %llu expired, %llu times full), files %llu bytes at "
	       "most\n",
	       (unsigned long long)st.flows, (unsigned long long)ex,
	       (unsigned long long)v, (unsigned long long)big);
	fv_indexer_free(x);
out_close:
	fv_index_close(ix);
}

/* The child of test_map_follow: reads with the map it opened with (the
 * small one recorded), then after the writer grew the data past it. */
static int child_follow(const char *dir, int rd, int wr)
{
	struct fv_index *ro;
	struct fv_flow f;
	uint64_t last;
	int bad = 0, err;

	alarm(20);
	err = fv_index_open(&ro, dir, FV_INDEX_RDONLY, 0);
	if (err) {
		fprintf(stderr, "child: open: %s\n", fv_strerror(err));
		return 1;
	}
	bad |= fv_index_get_flow(ro, 1, &f) != 0;
	if (write(wr, "r", 1) != 1 ||
	    read(rd, &last, sizeof(last)) != sizeof(last))
		return 1;
	err = fv_index_get_flow(ro, last, &f);
	if (err)
		fprintf(stderr, "child: flow %llu: %s (%s)\n",
			(unsigned long long)last, fv_strerror(err),
			fv_index_last_error(ro));
	bad |= (err != 0) << 1;
	fv_index_close(ro);
	return bad;
}

/*
 * A reader in another process opened with a smaller map than the data
 * grows to (a store written before with a small cap, then by a writer
 * with a larger one): LMDB says MDB_MAP_RESIZED and the reader takes the
 * size the writer recorded.
 */
static void test_map_follow(const char *dir)
{
	int to_child[2], to_parent[2], status = 0, err;
	struct fv_index_stats st;
	struct fv_index *ix;
	uint64_t seed = 9, id = 1;
	struct fv_flow f;
	pid_t pid;
	char c;

	/* A new environment records the map it is created with. */
	err = fv_index_open(&ix, dir, FV_INDEX_CREATE, 1 << 20);
	CHECK(err == 0, "open: %s", fv_strerror(err));
	if (err)
		return;
	churn_flow(&f, id, &seed);
	err = fv_index_begin(ix);
	err = err ? err : fv_index_put_flow(ix, &f);
	err = err ? err : fv_index_commit(ix);
	CHECK(err == 0, "first flow: %s", fv_strerror(err));
	if (pipe(to_child) || pipe(to_parent)) {
		CHECK(0, "pipe: %s", strerror(errno));
		goto out_close;
	}
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		close(to_child[1]);
		close(to_parent[0]);
		_exit(child_follow(dir, to_child[0], to_parent[1]));
	}
	CHECK(pid > 0, "fork: %s", strerror(errno));
	close(to_child[0]);
	close(to_parent[1]);
	if (pid < 0)
		goto out_pipes;
	CHECK(read(to_parent[0], &c, 1) == 1, "child did not answer");
	err = fv_index_set_cap(ix, 0); /* 64 GiB */
	for (int t = 0; t < 8 && !err; t++) {
		err = fv_index_begin(ix);
		for (int i = 0; i < 5000 && !err; i++) {
			churn_flow(&f, ++id, &seed);
			err = fv_index_put_flow(ix, &f);
		}
		err = err ? err : fv_index_commit(ix);
	}
	err = err ? err : fv_index_stats(ix, &st);
	CHECK(err == 0 && st.used_bytes > 2 << 20,
	      "the data grew past the reader's map: %s, %llu bytes",
	      fv_strerror(err), (unsigned long long)st.used_bytes);
	CHECK(write(to_child[1], &id, sizeof(id)) == sizeof(id), "pipe");
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "child reader status 0x%x", status);
	printf("map: a reader in another process opened with a 1 MiB map "
	       "follows the data to %llu bytes\n",
	       (unsigned long long)st.used_bytes);
out_pipes:
	close(to_child[1]);
	close(to_parent[0]);
out_close:
	fv_index_close(ix);
}

/* ---- errors at the edges ---- */

static void test_errors(const char *base)
{
	char dir[700], path[600];
	struct fv_index *ix;
	struct fv_flow f, g;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k, v;
	uint8_t key[8], rec[FV_FLOW_REC_MAX], prec[FV_FLOW_REC_MAX + 3];
	uint8_t pkey[12];
	int err, rc, n = 0;
	size_t rlen;

	snprintf(dir, sizeof(dir), "%s/none", base);
	CHECK(fv_index_open(&ix, dir, 0, 0) == -ENOENT, "missing index");
	CHECK(fv_index_open(&ix, dir, FV_INDEX_RDONLY, 0) == -ENOENT,
	      "missing index, read-only");
	CHECK(fv_index_open(&ix, dir, FV_INDEX_RDONLY | FV_INDEX_CREATE, 0) ==
		      -EINVAL,
	      "rdonly + create");

	/* A 1 MiB map fills up: FV_EFULL with LMDB's text kept. */
	snprintf(dir, sizeof(dir), "%s/small", base);
	err = fv_index_open(&ix, dir, FV_INDEX_CREATE, 1 << 20);
	CHECK(err == 0, "open small: %s", fv_strerror(err));
	if (!err) {
		memset(&f, 0, sizeof(f));
		f.key.family = 4;
		err = fv_index_begin(ix);
		while (!err && n < 100000) {
			f.id = (uint64_t)++n * 2654435761u;
			f.first_ns = f.id;
			err = fv_index_put_flow(ix, &f);
		}
		CHECK(err == FV_EFULL, "map full: %d after %d", err, n);
		CHECK(strstr(fv_index_last_error(ix), "MDB_MAP_FULL") != NULL,
		      "text: %s", fv_index_last_error(ix));
		fv_index_abort(ix);
		fv_index_close(ix);
		printf("errors: 1 MiB map full after %d flows\n", n);
	}
	rm_index(dir);

	/* An LMDB environment that is not a flowvault index: it holds a
	 * database of its own. */
	snprintf(dir, sizeof(dir), "%s/other", base);
	mkdir(dir, 0755);
	rc = mdb_env_create(&env);
	mdb_env_set_maxdbs(env, 8);
	rc = rc ? rc : mdb_env_open(env, dir, 0, 0644);
	rc = rc ? rc : mdb_txn_begin(env, NULL, 0, &txn);
	rc = rc ? rc : mdb_dbi_open(txn, "other", MDB_CREATE, &dbi);
	rc = rc ? rc : mdb_txn_commit(txn);
	mdb_env_close(env);
	CHECK(rc == 0, "raw env: %s", mdb_strerror(rc));
	CHECK(fv_index_open(&ix, dir, FV_INDEX_RDONLY, 0) == FV_EFORMAT,
	      "not an index");
	rm_index(dir);
	snprintf(path, sizeof(path), "%s/garbage", base);
	mkdir(path, 0755);
	snprintf(dir, sizeof(dir), "%s/data.mdb", path);
	{
		FILE *fp = fopen(dir, "w");
		char junk[8192];

		memset(junk, 'x', sizeof(junk));
		fwrite(junk, 1, sizeof(junk), fp);
		fclose(fp);
	}
	err = fv_index_open(&ix, path, FV_INDEX_RDONLY, 0);
	CHECK(err == FV_EFORMAT, "garbage file: %d (%s)", err,
	      fv_strerror(err));
	rm_index(path);

	/* Records of an unknown version or cut short, written raw. */
	snprintf(dir, sizeof(dir), "%s/bad", base);
	err = fv_index_open(&ix, dir, FV_INDEX_CREATE, 0);
	CHECK(err == 0, "open bad: %s", fv_strerror(err));
	if (err)
		return;
	err = fv_index_begin(ix); /* the first txn makes the dbs */
	err = err ? err : fv_index_commit(ix);
	CHECK(err == 0, "empty first txn: %s", fv_strerror(err));
	fv_index_close(ix);
	full_flow(&f);
	rlen = fv_flow_encode(&f, rec);
	rec[0] = FV_FLOW_REC_VERSION + 1;
	rc = mdb_env_create(&env);
	mdb_env_set_maxdbs(env, 8);
	rc = rc ? rc : mdb_env_open(env, dir, 0, 0644);
	rc = rc ? rc : mdb_txn_begin(env, NULL, 0, &txn);
	rc = rc ? rc : mdb_dbi_open(txn, "flows", 0, &dbi);
	k.mv_data = key;
	k.mv_size = 8;
	fv_put_be64(key, 7);
	v.mv_data = rec;
	v.mv_size = rlen;
	rc = rc ? rc : mdb_put(txn, dbi, &k, &v, 0);
	fv_put_be64(key, 8);
	rec[0] = FV_FLOW_REC_VERSION;
	v.mv_size = 40;
	rc = rc ? rc : mdb_put(txn, dbi, &k, &v, 0);
	/* Flow 9 carries places part 0 and the places db has it too. */
	fv_put_be64(key, 9);
	rlen = fv_flow_encode(&f, prec);
	prec[1] |= 0x40;
	memcpy(prec + rlen, "\x01\x01\x08", 3);
	v.mv_data = prec;
	v.mv_size = rlen + 3;
	rc = rc ? rc : mdb_put(txn, dbi, &k, &v, 0);
	rc = rc ? rc : mdb_dbi_open(txn, "places", 0, &dbi);
	memset(pkey, 0, sizeof(pkey));
	fv_put_be64(pkey, 9);
	k.mv_data = pkey;
	k.mv_size = sizeof(pkey);
	rc = rc ? rc : mdb_put(txn, dbi, &k, &v, 0);
	rc = rc ? rc : mdb_txn_commit(txn);
	mdb_env_close(env);
	CHECK(rc == 0, "raw put: %s", mdb_strerror(rc));
	err = fv_index_open(&ix, dir, FV_INDEX_RDONLY, 0);
	CHECK(err == 0, "reopen bad: %s", fv_strerror(err));
	if (!err) {
		CHECK(fv_index_get_flow(ix, 7, &g) == FV_EVERSION,
		      "bad version -> FV_EVERSION");
		CHECK(strstr(fv_index_last_error(ix), "flow 7") != NULL,
		      "text: %s", fv_index_last_error(ix));
		CHECK(fv_index_get_flow(ix, 8, &g) == FV_EFORMAT,
		      "short record -> FV_EFORMAT");
		CHECK(fv_index_get_flow(ix, 9, &g) == 0 && g.id == 9,
		      "record with places part 0");
		CHECK(fv_index_places(ix, 9, on_run, &(struct runs){.n = 0}) ==
			      FV_ECORRUPT,
		      "places part 0 twice -> FV_ECORRUPT");
		fv_index_close(ix);
	}
	rm_index(dir);
	printf("errors: missing/foreign/garbage opens, FV_EVERSION, "
	       "FV_EFORMAT checked\n");
}

static int count_ref(void *arg, fv_ref ref)
{
	(*(unsigned *)arg)++;
	return 0;
}

/*
 * A batch set aside for a committer thread: blocks sealed before it was
 * set aside and reported later join it, later ones the next batch; the
 * sync commit refuses while it is aside; a recycle drops its blocks as it
 * drops the current batch's; it commits with its own next_flow_id.
 */
static void test_aside(const char *dir)
{
	struct fv_indexer *x = NULL;
	struct fv_index_drop d;
	struct fv_block_info bi;
	struct fv_retention rt;
	uint64_t need = 0, v = 0;
	unsigned n = 0;
	int err;
	struct fv_index *ix;

	err = fv_index_open(&ix, dir, FV_INDEX_CREATE, 0);
	CHECK(err == 0, "open: %s", fv_strerror(err));
	if (err)
		return;
	err = fv_indexer_new(&x, ix);
	CHECK(err == 0, "indexer: %s", fv_strerror(err));
	if (err) {
		fv_index_close(ix);
		return;
	}
	CHECK(!fv_indexer_aside(x, &need), "nothing aside at first");
	/* Blocks 100..103 of gen 1 reported; 104..105 sealed but not yet
	 * written when the batch is set aside (need_next 106). */
	for (uint32_t i = 0; i < 4; i++) {
		bi = ret_block(0, 1, i);
		fv_indexer_on_sealed(x, &bi);
	}
	err = fv_indexer_set_aside(x, 7, 106);
	CHECK(err == 0 && fv_indexer_aside(x, &need) && need == 106,
	      "set aside: %s, need %llu", fv_strerror(err),
	      (unsigned long long)need);
	CHECK(fv_indexer_set_aside(x, 8, 200) == -EBUSY,
	      "one batch aside at a time");
	CHECK(fv_indexer_commit(x, NULL, 0, 8) == -EBUSY,
	      "no sync commit while a batch is aside");
	CHECK(fv_indexer_pending(x) == 0, "the current batch starts empty");
	for (uint32_t i = 4; i < 6; i++) {
		bi = ret_block(0, 1, i);
		fv_indexer_on_sealed(x, &bi);
	}
	CHECK(fv_indexer_pending(x) == 0,
	      "blocks below need_next join the batch aside");
	bi = ret_block(0, 2, 0); /* seq 200: the next batch's */
	fv_indexer_on_sealed(x, &bi);
	CHECK(fv_indexer_pending(x) > 0, "a later block: the current batch");
	fv_indexer_aside_blocks(x, count_ref, &n);
	CHECK(n == 6, "6 blocks aside: %u", n);

	/* Gen 1 recycled before the committer got to it: all 6 go, and the
	 * retention starts at the current batch's first block. */
	err = fv_indexer_recycle(x, 0, 1, &d);
	CHECK(err == 0 && d.blocks == 6 && d.have_next &&
		      d.next.ref == ret_block(0, 2, 0).ref,
	      "recycle through the aside batch: %s, %llu blocks",
	      fv_strerror(err), (unsigned long long)d.blocks);
	n = 0;
	fv_indexer_aside_blocks(x, count_ref, &n);
	CHECK(n == 0, "none of them listed for syncing any more: %u", n);

	err = fv_indexer_commit_aside(x);
	CHECK(err == 0 && !fv_indexer_aside(x, &need), "commit aside: %s",
	      fv_strerror(err));
	CHECK(fv_index_get_u64(ix, "next_flow_id", &v) == 0 && v == 7,
	      "its next_flow_id: %llu", (unsigned long long)v);
	CHECK(count_blocks(ix, 0, UINT32_MAX) == 0,
	      "recycled blocks never reach the index");
	err = fv_indexer_commit(x, NULL, 0, 9);
	CHECK(err == 0 && count_blocks(ix, 0, 2) == 1,
	      "then the current batch, sync: %s", fv_strerror(err));
	fv_index_retention(ix, &rt);
	CHECK(rt.from_ns[0] == ret_block(0, 2, 0).first_ns,
	      "retention from the first block left");
	fv_indexer_free(x);
	fv_index_close(ix);
}

int main(void)
{
	char base[] = "/tmp/fv_test_index.XXXXXX", dir[600];
	struct fv_index *ix;
	int err;

	signal(SIGPIPE, SIG_IGN); /* a dead child reader fails a CHECK */
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return 1;
	}
	test_record();
	snprintf(dir, sizeof(dir), "%s/index", base);
	test_big(dir);
	err = fv_index_open(&ix, dir, FV_INDEX_CREATE, 0);
	CHECK(err == 0, "reopen: %s", fv_strerror(err));
	if (!err) {
		test_checkpoint(ix);
		test_places(ix);
		test_blocks(ix);
		test_meta(ix);
		fv_index_close(ix);
	}
	rm_index(dir);
	test_recycle(dir);
	rm_index(dir);
	test_aside(dir);
	rm_index(dir);
	test_second_reader(dir);
	rm_index(dir);
	test_new_index(dir);
	rm_index(dir);
	test_flow_retention(dir);
	rm_index(dir);
	test_threads(dir);
	rm_index(dir);
	test_cap(dir);
	rm_index(dir);
	test_map_follow(dir);
	rm_index(dir);
	test_errors(base);
	rmdir(base);
	if (failed) {
		printf("test_index: %d checks FAILED\n", failed);
		return 1;
	}
	printf("test_index: all checks passed\n");
	return 0;
}
