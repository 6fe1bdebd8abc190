/*
 * Unit tests for the flow table (capture/flow.c): client choice, per-
 * direction counters, expiry (idle, FIN/RST linger, port reuse, active
 * checkpoints), fragments, overflow, packet places, and a randomized
 * comparison against a naive model.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture/flow.h"
#include "common/fv.h"

#include "tests/unit/check.h"

#define SEC    1000000000ull
#define MAXREC 4096

/* What the sink received. */
struct sinkbuf {
	struct fv_flow rec[MAXREC];
	int nrec;
	struct {
		uint64_t id;
		uint32_t part;
		uint32_t len;
		uint8_t enc[FV_PLACES_CHUNK];
	} pl[MAXREC];
	int npl;
};

static int on_record(void *arg, const struct fv_flow *f)
{
	struct sinkbuf *s = arg;

	if (s->nrec < MAXREC)
		s->rec[s->nrec++] = *f;
	return 0;
}

static int on_places(void *arg, uint64_t id, uint32_t part, const uint8_t *enc,
		     uint32_t len)
{
	struct sinkbuf *s = arg;

	if (s->npl < MAXREC && len <= FV_PLACES_CHUNK) {
		s->pl[s->npl].id = id;
		s->pl[s->npl].part = part;
		s->pl[s->npl].len = len;
		memcpy(s->pl[s->npl].enc, enc, len);
		s->npl++;
	}
	return 0;
}

static struct fv_flow_opts opts(void)
{
	struct fv_flow_opts o = {
		.max_flows = 1024,
		.idle_timeout_ns = 300 * SEC,
		.udp_idle_timeout_ns = 60 * SEC,
		.active_timeout_ns = 1800 * SEC,
		.fin_linger_ns = 5 * SEC,
	};
	return o;
}

static struct fv_flow_table *mk(struct sinkbuf *s, struct fv_flow_opts o,
				uint64_t *next)
{
	struct fv_flow_sink sink = {on_record, on_places, s};
	struct fv_flow_table *t = NULL;

	memset(s, 0, sizeof(*s));
	*next = 1;
	if (fv_flow_table_new(&t, &o, next, &sink)) {
		fprintf(stderr, "table alloc failed\n");
		exit(1);
	}
	return t;
}

static struct fv_pkt pkt4(uint32_t src, uint16_t sport, uint32_t dst,
			  uint16_t dport, uint8_t proto, uint8_t flags)
{
	struct fv_pkt p;

	memset(&p, 0, sizeof(p));
	fv_put_be32(p.key.saddr, src);
	fv_put_be32(p.key.daddr, dst);
	p.key.sport = sport;
	p.key.dport = dport;
	p.key.family = 4;
	p.key.proto = proto;
	p.flags = FV_PKT_L3 | FV_PKT_L4;
	p.tcp_flags = flags;
	return p;
}

static uint64_t feed(struct fv_flow_table *t, struct fv_pkt p, uint64_t ts,
		     uint32_t len, uint64_t ref)
{
	uint64_t id = 0;

	CHECK(fv_flow_packet(t, &p, ts, len, 0, &id) == 0, "packet");
	CHECK(fv_flow_place(t, id, ref, 64) == 0, "place");
	return id;
}

static const struct fv_flow *find_rec(const struct sinkbuf *s, uint64_t id,
				      int last)
{
	const struct fv_flow *r = NULL;

	for (int i = 0; i < s->nrec; i++)
		if (s->rec[i].id == id) {
			r = &s->rec[i];
			if (!last)
				break;
		}
	return r;
}

#define A 0x0a000001u
#define B 0x0a000002u

static void test_tcp_basic(void)
{
	struct sinkbuf *s = calloc(1, sizeof(*s));
	uint64_t next, id, id2;
	struct fv_flow_table *t = mk(s, opts(), &next);
	const struct fv_flow *r;

	id = feed(t, pkt4(A, 40000, B, 443, 6, 0x02), 1 * SEC, 74, 1);
	CHECK(feed(t, pkt4(B, 443, A, 40000, 6, 0x12), 1 * SEC + 5, 74, 1) ==
		      id,
	      "syn-ack same flow");
	CHECK(feed(t, pkt4(A, 40000, B, 443, 6, 0x10), 1 * SEC + 9, 66, 1) ==
		      id,
	      "ack same flow");
	feed(t, pkt4(A, 40000, B, 443, 6, 0x18), 2 * SEC, 600, 2);
	feed(t, pkt4(B, 443, A, 40000, 6, 0x11), 3 * SEC, 66, 2);
	feed(t, pkt4(A, 40000, B, 443, 6, 0x11), 3 * SEC + 1, 66, 2);
	feed(t, pkt4(B, 443, A, 40000, 6, 0x10), 3 * SEC + 2, 66, 2);
	/* Within the linger: nothing ends yet. */
	CHECK(fv_flow_expire(t, 6 * SEC) == 0 && s->nrec == 0,
	      "no record during linger (%d)", s->nrec);
	CHECK(fv_flow_expire(t, 9 * SEC) == 0 && s->nrec == 1,
	      "fin ends after linger (%d)", s->nrec);
	r = find_rec(s, id, 1);
	CHECK(r && r->end_reason == FV_END_FIN, "end fin");
	CHECK(r && r->pkts[0] == 4 && r->pkts[1] == 3, "pkts %llu/%llu",
	      r ? (unsigned long long)r->pkts[0] : 0,
	      r ? (unsigned long long)r->pkts[1] : 0);
	CHECK(r && r->bytes[0] == 74 + 66 + 600 + 66 &&
		      r->bytes[1] == 74 + 66 + 66,
	      "bytes");
	CHECK(r && r->tcp_flags[0] == 0x1b && r->tcp_flags[1] == 0x13,
	      "flags %x %x", r ? r->tcp_flags[0] : 0, r ? r->tcp_flags[1] : 0);
	CHECK(r && r->first_ns == 1 * SEC && r->last_ns == 3 * SEC + 2,
	      "times");
	CHECK(r && r->key.sport == 40000 && r->key.dport == 443 &&
		      (r->flags & FV_FLOW_CLIENT_SYN),
	      "client by syn");
	/* Places: two runs, refs 1 (3 pkts) and 2 (4 pkts). */
	CHECK(s->npl == 1 && s->pl[0].id == id && s->pl[0].part == 0, "places");
	if (s->npl == 1) {
		uint64_t v[6];
		size_t o = 0;

		/* (ref delta, count, first offset / 8) per run */
		for (int k = 0; k < 6; k++)
			o += fv_varint_get(s->pl[0].enc + o, s->pl[0].len - o,
					   &v[k]);
		CHECK(o == s->pl[0].len && v[0] == 1 && v[1] == 3 &&
			      v[2] == 8 && v[3] == 1 && v[4] == 4 && v[5] == 8,
		      "runs %llu %llu %llu %llu %llu %llu",
		      (unsigned long long)v[0], (unsigned long long)v[1],
		      (unsigned long long)v[2], (unsigned long long)v[3],
		      (unsigned long long)v[4], (unsigned long long)v[5]);
	}
	/* SYN-ACK seen first: its receiver is the client. */
	id2 = feed(t, pkt4(B, 80, A, 50000, 6, 0x12), 10 * SEC, 74, 3);
	fv_flow_flush(t, FV_END_EOF);
	r = find_rec(s, id2, 1);
	CHECK(r && r->key.sport == 50000 && r->key.dport == 80 &&
		      r->pkts[1] == 1 && r->pkts[0] == 0,
	      "synack-first client");
	fv_flow_table_free(t);
	free(s);
	printf("tcp: handshake, counters, linger, places, client choice\n");
}

static void test_reuse_idle_active(void)
{
	struct sinkbuf *s = calloc(1, sizeof(*s));
	uint64_t next, id1, id2, id3, id4;
	struct fv_flow_opts o = opts();
	struct fv_flow_table *t;
	const struct fv_flow *r;
	int parts = 0;

	o.active_timeout_ns = 100 * SEC;
	t = mk(s, o, &next);
	id1 = feed(t, pkt4(A, 1000, B, 80, 6, 0x02), 1 * SEC, 60, 1);
	feed(t, pkt4(B, 80, A, 1000, 6, 0x14), 1 * SEC + 1, 60, 1);
	/* A new SYN on the reset connection is a new flow. */
	id2 = feed(t, pkt4(A, 1000, B, 80, 6, 0x02), 2 * SEC, 60, 1);
	CHECK(id2 != id1, "port reuse after RST gives a new flow");
	r = find_rec(s, id1, 1);
	CHECK(r && r->end_reason == FV_END_RST && r->pkts[0] == 1 &&
		      r->pkts[1] == 1,
	      "rst flow ended");
	/* UDP idle timeout splits. */
	id3 = feed(t, pkt4(A, 53000, B, 53, 17, 0), 10 * SEC, 80, 2);
	fv_flow_expire(t, 69 * SEC);
	CHECK(feed(t, pkt4(B, 53, A, 53000, 17, 0), 69 * SEC, 90, 2) == id3,
	      "udp alive at 59 s idle");
	fv_flow_expire(t, 130 * SEC);
	id4 = feed(t, pkt4(A, 53000, B, 53, 17, 0), 130 * SEC, 80, 3);
	CHECK(id4 != id3, "udp split after 61 s idle");
	r = find_rec(s, id3, 1);
	CHECK(r && r->end_reason == FV_END_IDLE && r->pkts[0] == 1 &&
		      r->pkts[1] == 1,
	      "udp idle record");
	/* Active timeout: a checkpoint with the same id, then the rest. */
	for (int i = 0; i < 300; i++)
		feed(t, pkt4(A, 2000, B, 22, 6, 0x10),
		     200 * SEC + (uint64_t)i * SEC, 100, 10 + (uint64_t)i / 7);
	fv_flow_flush(t, FV_END_EOF);
	r = NULL;
	for (int i = 0; i < s->nrec; i++)
		if (s->rec[i].key.dport == 22) {
			if (s->rec[i].end_reason == FV_END_ACTIVE) {
				parts++;
				CHECK(s->rec[i].flags & FV_FLOW_PARTIAL,
				      "checkpoint marked partial");
			}
			r = &s->rec[i];
		}
	CHECK(parts == 2, "two checkpoints in 300 s at 100 s (%d)", parts);
	CHECK(r && r->end_reason == FV_END_EOF && r->pkts[0] == 300 &&
		      !(r->flags & FV_FLOW_PARTIAL),
	      "final record has all packets");
	fv_flow_table_free(t);
	free(s);
	printf("expiry: port reuse, udp idle, active checkpoints\n");
}

static void test_fragments_overflow_undecoded(void)
{
	struct sinkbuf *s = calloc(1, sizeof(*s));
	uint64_t next, id, id2, idu;
	struct fv_flow_opts o = opts();
	struct fv_flow_table *t;
	struct fv_pkt p, u;
	struct fv_flow_stats st;
	int evicted = 0;

	o.max_flows = 4;
	t = mk(s, o, &next);
	p = pkt4(A, 123, B, 123, 17, 0);
	p.flags |= FV_PKT_FRAG;
	p.frag_id = 77;
	id = feed(t, p, 1 * SEC, 1514, 1);
	p = pkt4(A, 0, B, 0, 17, 0);
	p.flags = FV_PKT_L3 | FV_PKT_FRAG | FV_PKT_FRAG_LATER;
	p.frag_id = 77;
	CHECK(feed(t, p, 1 * SEC + 1, 500, 1) == id, "later fragment joins");
	p.frag_id = 78;
	id2 = feed(t, p, 1 * SEC + 2, 500, 1);
	CHECK(id2 && id2 != id, "unmatched fragment: its own flow");
	memset(&u, 0, sizeof(u));
	CHECK(fv_flow_packet(t, &u, 2 * SEC, 60, 0, &idu) == 0 && idu == 0,
	      "undecoded -> flow 0");
	for (uint16_t i = 0; i < 6; i++)
		feed(t, pkt4(A, 3000 + i, B, 80, 6, 0x02), 3 * SEC + i, 60, 2);
	fv_flow_get_stats(t, &st);
	CHECK(st.undecoded == 1 && st.fragments_unmatched == 1, "counters");
	CHECK(st.overflow == 4 && st.active == 4, "overflow %llu active %llu",
	      (unsigned long long)st.overflow, (unsigned long long)st.active);
	for (int i = 0; i < s->nrec; i++)
		evicted += s->rec[i].end_reason == FV_END_EVICT;
	CHECK(evicted == 4, "evicted records %d", evicted);
	fv_flow_flush(t, FV_END_EOF);
	CHECK(find_rec(s, id, 1) && find_rec(s, id, 1)->pkts[0] == 2 &&
		      (find_rec(s, id, 1)->flags & FV_FLOW_FRAGS),
	      "fragment flow record");
	fv_flow_table_free(t);
	free(s);
	printf("fragments, undecoded frames, overflow by eviction\n");
}

/* Random traffic over a few hundred tuples without expiry: packet counts
 * per tuple (either direction) must equal a naive model's. */
static void test_random_model(void)
{
	struct sinkbuf *s = calloc(1, sizeof(*s));
	uint64_t next, st = 12345;
	struct fv_flow_opts o = opts();
	struct fv_flow_table *t;
	enum { N = 300, P = 20000 };
	static uint64_t model[N], ids[N];
	int bad = 0;

	o.max_flows = 512;
	t = mk(s, o, &next);
	for (int i = 0; i < P; i++) {
		uint32_t k, r;
		struct fv_pkt p;
		uint64_t id;

		st = st * 6364136223846793005ull + 1442695040888963407ull;
		r = (uint32_t)(st >> 33);
		k = r % N;
		if (r & 0x100000)
			p = pkt4(0x0a010000 + k, (uint16_t)(1024 + k),
				 0x0a020000, 53, 17, 0);
		else
			p = pkt4(0x0a020000, 53, 0x0a010000 + k,
				 (uint16_t)(1024 + k), 17, 0);
		id = feed(t, p, SEC + (uint64_t)i, 100, 1 + (uint64_t)i / 100);
		if (ids[k] && ids[k] != id)
			bad++;
		ids[k] = id;
		model[k]++;
	}
	fv_flow_flush(t, FV_END_EOF);
	for (int k = 0; k < N; k++) {
		const struct fv_flow *r = find_rec(s, ids[k], 1);

		if (model[k] && (!r || r->pkts[0] + r->pkts[1] != model[k]))
			bad++;
	}
	CHECK(bad == 0, "%d tuples disagree with the model", bad);
	CHECK(s->nrec == N, "records %d", s->nrec);
	fv_flow_table_free(t);
	free(s);
	printf("random: %d packets over %d tuples match the model\n", P, N);
}

int main(void)
{
	test_tcp_basic();
	test_reuse_idle_active();
	test_fragments_overflow_undecoded();
	test_random_model();
	printf("%s\n", failed ? "FAILED" : "ok");
	return failed ? 1 : 0;
}
