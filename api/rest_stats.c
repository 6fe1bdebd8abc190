/*
 * rest_stats.c - GET /api/v1/stats/top and /api/v1/stats/timeseries.
 *
 * Both read the flow records that overlap [since, until] and match the
 * flow filter (fv_index_query, the same selection as /api/v1/flows) and
 * aggregate them in memory; nothing is kept between requests.
 *
 * top: one hash table entry per distinct key (host, client, server,
 * server port, protocol or host pair); a flow adds its whole counters to
 * its key(s), as nfdump -s does (a long flow that only overlaps the range
 * counts whole). Memory grows with the number of distinct keys only, up
 * to TOP_KEYS_MAX: past that the answer is a 422, never a silently
 * partial ranking. The entries are then sorted by the metric, ties by
 * the key (family, then address bytes; protocol, then port), so equal
 * requests give equal answers.
 *
 * timeseries: steps aligned on multiples of step since the epoch, the
 * first and last clipped to the range. A flow's bytes and packets (per
 * direction) are spread over [first_ns, last_ns] in proportion to time,
 * in 64.64 fixed point: the steps wholly inside a flow take a rate from
 * a difference array, so a flow costs O(1) whatever its length, and the
 * whole series O(flows + steps). Each flow adds exactly its counters
 * (the rounding remainder goes to its last nanosecond) and the points
 * are rounded on the running sum, so the points of a range that holds
 * whole flows add up to those flows' counters exactly, and each point
 * is within 1 of its exact share (the floored rate loses less than
 * duration / 2^64 of a unit per flow).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "api/rest_int.h"
#include "common/fv.h"
#include "index/filter.h"

#define TOP_LIMIT_DEFAULT 10
#define TOP_LIMIT_MAX	  10000
#define TOP_KEYS_MAX	  (1u << 18) /* distinct keys held (~100 B each) */
#define TS_STEPS_MAX	  10000
#define TS_STEPS_AUTO	  300 /* the most steps a default step gives */
#define TS_STEP_MIN	  (1000ull * 1000) /* 1 ms */

enum stats_by { BY_HOST, BY_SRC, BY_DST, BY_PORT, BY_PROTO, BY_PAIR };
enum stats_metric { MET_BYTES, MET_PACKETS, MET_FLOWS, MET_ALL };

static const char *const by_names[] = {"host", "src",	"dst",
				       "port", "proto", "pair"};
static const char *const metric_names[] = {"bytes", "packets", "flows"};

/* A name of list (n entries): its index, or -1. */
static int pick(const char *s, const char *const *list, int n)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(s, list[i]))
			return i;
	return -1;
}

/* A flow filter that does not parse: 400 with where (as /flows). */
static enum MHD_Result bad_filter(struct rest_req *q,
				  const struct fv_filter_error *e)
{
	json_t *v = json_pack("{s:s, s:s, s:i, s:i}", "error", "bad filter",
			      "detail", e->msg, "at", e->pos, "length", e->len);

	return rest_reply_json(q, MHD_HTTP_BAD_REQUEST, v);
}

/* since, until and filter, the same for both routes. 0, or a reply
 * queued (*ret). *filt is NULL or to be freed with fv_filter_free. */
static int common_args(struct rest_req *q, uint64_t *since, uint64_t *until,
		       int *have_since, int *have_until,
		       struct fv_filter **filt, enum MHD_Result *ret)
{
	const char *a, *expr = rest_arg(q, "filter");
	struct fv_filter_error ferr;
	int err;

	*filt = NULL;
	*have_since = *have_until = 0;
	if ((a = rest_arg(q, "since"))) {
		if (rest_time_arg(q, "since", a, since, ret))
			return FV_EUSAGE;
		*have_since = 1;
	}
	if ((a = rest_arg(q, "until"))) {
		if (rest_time_arg(q, "until", a, until, ret))
			return FV_EUSAGE;
		*have_until = 1;
	}
	if (*have_since && *have_until && *since > *until) {
		*ret = rest_reply_error(q, MHD_HTTP_BAD_REQUEST, "bad time", -1,
					"since is after until");
		return FV_EUSAGE;
	}
	err = fv_filter_compile(expr ? expr : "", filt, &ferr);
	if (err == FV_EFILTER) {
		*ret = bad_filter(q, &ferr);
		return err;
	}
	if (err) {
		*ret = rest_reply_fail(q, "compiling a filter", err);
		return err;
	}
	return 0;
}

static json_t *time_or_null(int have, uint64_t ns)
{
	char t[48];

	return have ? json_string(fv_format_time(ns, t, sizeof(t)))
		    : json_null();
}

static json_t *u64j(uint64_t v)
{
	return json_integer((json_int_t)v);
}

/* ---- top ---- */

/*
 * A key, zero-padded so that memcmp orders it:
 *   host, src, dst  family, address[16]
 *   pair            family, lower address[16], higher address[16]
 *   port            proto, has a port (0/1), port (BE16)
 *   proto           proto
 */
struct top_key {
	uint8_t b[36];
};

/* [0] and [1]: client->server and server->client; for host, sent and
 * received; for pair, a->b and b->a. */
struct top_ent {
	struct top_key k;
	uint64_t flows, pkts, bytes;
	uint64_t dpkts[2], dbytes[2];
};

struct top {
	enum stats_by by;
	enum stats_metric metric;
	struct top_ent *e;
	uint32_t n, cap;
	uint32_t *slot; /* open addressing: entry index + 1, 0 free */
	uint32_t nslot; /* power of 2, at least twice n */
	uint64_t flows, pkts, bytes; /* of the matching flows, each once */
};

static uint64_t key_hash(const struct top_key *k)
{
	uint64_t h = 14695981039346656037ull; /* FNV-1a */

	for (size_t i = 0; i < sizeof(k->b); i++)
		h = (h ^ k->b[i]) * 1099511628211ull;
	return h ^ (h >> 29);
}

static int top_grow(struct top *t)
{
	uint32_t ns = t->nslot ? t->nslot * 2 : 1024;
	uint32_t *s = calloc(ns, sizeof(*s));

	if (!s)
		return -ENOMEM;
	for (uint32_t i = 0; i < t->n; i++) {
		uint32_t j = (uint32_t)key_hash(&t->e[i].k) & (ns - 1);

		while (s[j])
			j = (j + 1) & (ns - 1);
		s[j] = i + 1;
	}
	free(t->slot);
	t->slot = s;
	t->nslot = ns;
	return 0;
}

/* The entry of k, added when new. NULL: out of memory (*err -ENOMEM) or
 * more than TOP_KEYS_MAX keys (*err FV_EFULL). */
static struct top_ent *top_get(struct top *t, const struct top_key *k, int *err)
{
	uint32_t j;

	if (2 * (t->n + 1) > t->nslot && (*err = top_grow(t)))
		return NULL;
	j = (uint32_t)key_hash(k) & (t->nslot - 1);
	while (t->slot[j]) {
		struct top_ent *e = &t->e[t->slot[j] - 1];

		if (!memcmp(e->k.b, k->b, sizeof(k->b)))
			return e;
		j = (j + 1) & (t->nslot - 1);
	}
	if (t->n >= TOP_KEYS_MAX) {
		*err = FV_EFULL;
		return NULL;
	}
	if (t->n == t->cap) {
		uint32_t nc = t->cap ? t->cap * 2 : 1024;
		struct top_ent *ne = realloc(t->e, nc * sizeof(*ne));

		if (!ne) {
			*err = -ENOMEM;
			return NULL;
		}
		t->e = ne;
		t->cap = nc;
	}
	memset(&t->e[t->n], 0, sizeof(t->e[t->n]));
	t->e[t->n].k = *k;
	t->slot[j] = ++t->n;
	return &t->e[t->n - 1];
}

/* Adds flow f to key k; d says which of f's directions is [0] of the
 * entry (0: as the flow, 1: swapped; 2: both, a host talking to
 * itself). */
static int top_add(struct top *t, const struct top_key *k,
		   const struct fv_flow *f, int d)
{
	int err = 0;
	struct top_ent *e = top_get(t, k, &err);

	if (!e)
		return err;
	e->flows++;
	e->pkts += f->pkts[0] + f->pkts[1];
	e->bytes += f->bytes[0] + f->bytes[1];
	for (int i = 0; i < 2; i++) {
		int s = d == 2 ? -1 : i ^ d;

		e->dpkts[i] += s < 0 ? f->pkts[0] + f->pkts[1] : f->pkts[s];
		e->dbytes[i] += s < 0 ? f->bytes[0] + f->bytes[1] : f->bytes[s];
	}
	return 0;
}

static void key_addr(struct top_key *k, uint8_t family, const uint8_t *a)
{
	memset(k, 0, sizeof(*k));
	k->b[0] = family;
	memcpy(k->b + 1, a, 16);
}

static int on_top_flow(void *arg, const struct fv_flow *f)
{
	struct top *t = arg;
	const struct fv_flow_key *fk = &f->key;
	struct top_key k;
	int c, err = 0;

	t->flows++;
	t->pkts += f->pkts[0] + f->pkts[1];
	t->bytes += f->bytes[0] + f->bytes[1];
	switch (t->by) {
	case BY_HOST:
		c = memcmp(fk->saddr, fk->daddr, 16);
		key_addr(&k, fk->family, fk->saddr);
		err = top_add(t, &k, f, c ? 0 : 2);
		if (!err && c) {
			key_addr(&k, fk->family, fk->daddr);
			err = top_add(t, &k, f, 1);
		}
		break;
	case BY_SRC:
		key_addr(&k, fk->family, fk->saddr);
		err = top_add(t, &k, f, 0);
		break;
	case BY_DST:
		key_addr(&k, fk->family, fk->daddr);
		err = top_add(t, &k, f, 0);
		break;
	case BY_PAIR:
		c = memcmp(fk->saddr, fk->daddr, 16);
		key_addr(&k, fk->family, c <= 0 ? fk->saddr : fk->daddr);
		memcpy(k.b + 17, c <= 0 ? fk->daddr : fk->saddr, 16);
		err = top_add(t, &k, f, c <= 0 ? 0 : 1);
		break;
	case BY_PORT:
		memset(&k, 0, sizeof(k));
		k.b[0] = fk->proto;
		if (fk->proto == 6 || fk->proto == 17 || fk->proto == 132) {
			k.b[1] = 1;
			fv_put_be16(k.b + 2, fk->dport);
		}
		err = top_add(t, &k, f, 0);
		break;
	case BY_PROTO:
		memset(&k, 0, sizeof(k));
		k.b[0] = fk->proto;
		err = top_add(t, &k, f, 0);
		break;
	}
	return err;
}

static uint64_t ent_val(const struct top_ent *e, enum stats_metric m)
{
	return m == MET_FLOWS	  ? e->flows
	       : m == MET_PACKETS ? e->pkts
				  : e->bytes;
}

/* The metric descending, then the key ascending. */
static int cmp_ent(const void *a, const void *b, void *arg)
{
	const struct top_ent *ea = a, *eb = b;
	enum stats_metric m = *(const enum stats_metric *)arg;
	uint64_t va = ent_val(ea, m), vb = ent_val(eb, m);

	if (va != vb)
		return va > vb ? -1 : 1;
	return memcmp(ea->k.b, eb->k.b, sizeof(ea->k.b));
}

static json_t *top_entry_json(const struct top *t, const struct top_ent *e)
{
	static const char *const dir[][4] = {
		{"c2s_bytes", "s2c_bytes", "c2s_packets", "s2c_packets"},
		{"sent_bytes", "received_bytes", "sent_packets",
		 "received_packets"},
		{"a_to_b_bytes", "b_to_a_bytes", "a_to_b_packets",
		 "b_to_a_packets"},
	};
	const uint8_t *k = e->k.b;
	char a[48], b[48], pn[8];
	json_t *v = json_object();
	int d = t->by == BY_HOST ? 1 : t->by == BY_PAIR ? 2 : 0;

	if (!v)
		return NULL;
	switch (t->by) {
	case BY_HOST:
	case BY_SRC:
	case BY_DST:
		json_object_set_new(
			v, "host",
			json_string(fv_cli_addr(k[0], k + 1, a, sizeof(a))));
		json_object_set_new(v, "family", json_integer(k[0]));
		break;
	case BY_PAIR:
		json_object_set_new(
			v, "a",
			json_string(fv_cli_addr(k[0], k + 1, a, sizeof(a))));
		json_object_set_new(
			v, "b",
			json_string(fv_cli_addr(k[0], k + 17, b, sizeof(b))));
		json_object_set_new(v, "family", json_integer(k[0]));
		break;
	case BY_PORT:
	case BY_PROTO:
		json_object_set_new(v, "proto", json_integer(k[0]));
		json_object_set_new(
			v, "proto_name",
			json_string(fv_cli_proto_name(k[0], pn, sizeof(pn))));
		if (t->by == BY_PORT)
			json_object_set_new(v, "port",
					    k[1] ? json_integer(fv_be16(k + 2))
						 : json_null());
		break;
	}
	json_object_set_new(v, "flows", u64j(e->flows));
	json_object_set_new(v, "packets", u64j(e->pkts));
	json_object_set_new(v, "bytes", u64j(e->bytes));
	json_object_set_new(v, dir[d][0], u64j(e->dbytes[0]));
	json_object_set_new(v, dir[d][1], u64j(e->dbytes[1]));
	json_object_set_new(v, dir[d][2], u64j(e->dpkts[0]));
	json_object_set_new(v, dir[d][3], u64j(e->dpkts[1]));
	return v;
}

/* Parses limit: 0, or a reply queued (*ret): 400 or, over max, 422. */
static int limit_arg(struct rest_req *q, const char *a, uint64_t max,
		     uint64_t *limit, enum MHD_Result *ret)
{
	char *end;

	errno = 0;
	*limit = strtoull(a, &end, 10);
	if (*a >= '0' && *a <= '9' && !*end &&
	    (errno == ERANGE || *limit > max)) {
		*ret = rest_reply_error(q, MHD_HTTP_UNPROCESSABLE_CONTENT,
					"limit too large", -1,
					"limit is at most %" PRIu64, max);
		return FV_EUSAGE;
	}
	if (*a < '0' || *a > '9' || *end || !*limit) {
		*ret = rest_reply_error(
			q, MHD_HTTP_BAD_REQUEST, "bad parameter", -1,
			"limit is a number from 1 to %" PRIu64, max);
		return FV_EUSAGE;
	}
	return 0;
}

enum MHD_Result rest_stats_top(struct rest_req *q)
{
	static const char *const names[] = {
		"by", "metric", "since", "until", "filter", "limit", NULL};
	uint64_t since = 0, until = UINT64_MAX, limit = TOP_LIMIT_DEFAULT;
	struct fv_filter *filt = NULL;
	struct top t = {.by = BY_HOST, .metric = MET_BYTES};
	uint64_t of = 0, op = 0, ob = 0;
	int have_since, have_until, err, i;
	json_t *v, *list;
	enum MHD_Result ret;
	const char *a;

	if (!rest_args_known(q, names, &ret))
		return ret;
	if ((a = rest_arg(q, "by"))) {
		if ((i = pick(a, by_names, 6)) < 0)
			return rest_reply_error(q, MHD_HTTP_BAD_REQUEST,
						"bad parameter", -1,
						"by is host, src, dst, port, "
						"proto or pair");
		t.by = (enum stats_by)i;
	}
	if ((a = rest_arg(q, "metric"))) {
		if ((i = pick(a, metric_names, 3)) < 0)
			return rest_reply_error(q, MHD_HTTP_BAD_REQUEST,
						"bad parameter", -1,
						"metric is bytes, packets or "
						"flows");
		t.metric = (enum stats_metric)i;
	}
	if ((a = rest_arg(q, "limit")) &&
	    limit_arg(q, a, TOP_LIMIT_MAX, &limit, &ret))
		return ret;
	if (common_args(q, &since, &until, &have_since, &have_until, &filt,
			&ret))
		return ret;
	err = fv_index_query(q->srv->ix, since, until, filt, on_top_flow, &t);
	fv_filter_free(filt);
	if (err == FV_EFULL) {
		ret = rest_reply_error(
			q, MHD_HTTP_UNPROCESSABLE_CONTENT, "too many keys", -1,
			"more than %u distinct %s keys match: narrow the time "
			"range or the filter",
			TOP_KEYS_MAX, by_names[t.by]);
		goto out;
	}
	if (err) {
		ret = rest_reply_fail(q, "querying flows", err);
		goto out;
	}
	if (t.n)
		qsort_r(t.e, t.n, sizeof(*t.e), cmp_ent, &t.metric);
	for (uint32_t j = (uint32_t)(limit < t.n ? limit : t.n); j < t.n; j++) {
		of += t.e[j].flows;
		op += t.e[j].pkts;
		ob += t.e[j].bytes;
	}
	list = json_array();
	v = json_pack("{s:s, s:s, s:o, s:o, s:o, s:{s:o, s:o, s:o}, "
		      "s:{s:o, s:o, s:o, s:o}, s:o}",
		      "by", by_names[t.by], "metric", metric_names[t.metric],
		      "since", time_or_null(have_since, since), "until",
		      time_or_null(have_until, until), "keys", u64j(t.n),
		      "totals", "flows", u64j(t.flows), "packets", u64j(t.pkts),
		      "bytes", u64j(t.bytes), "other", "keys",
		      u64j(limit < t.n ? t.n - limit : 0), "flows", u64j(of),
		      "packets", u64j(op), "bytes", u64j(ob), "top", list);
	if (!v) {
		ret = MHD_NO;
		goto out;
	}
	for (uint32_t j = 0; j < t.n && j < limit; j++)
		if (json_array_append_new(list, top_entry_json(&t, &t.e[j]))) {
			json_decref(v);
			ret = MHD_NO;
			goto out;
		}
	ret = rest_reply_json(q, MHD_HTTP_OK, v);
out:
	free(t.e);
	free(t.slot);
	return ret;
}

/* ---- timeseries ---- */

typedef unsigned __int128 u128;

enum { Q_C2S_BYTES, Q_S2C_BYTES, Q_C2S_PKTS, Q_S2C_PKTS, NQ };

struct series {
	uint64_t since, end; /* [since, end): the range, end = until + 1 */
	uint64_t t0, step;   /* step k starts at t0 + k * step */
	uint32_t n;	     /* steps */
	u128 *acc[NQ];	     /* 64.64 fixed point, per step */
	u128 *rate[NQ];	     /* difference array of per-ns rates */
	uint64_t *started;   /* flows whose first packet is in the step */
	int64_t *active;     /* difference array of overlapping flows */
};

static uint64_t step_lo(const struct series *s, uint32_t k)
{
	uint64_t b = s->t0 + (uint64_t)k * s->step;

	return b > s->since ? b : s->since;
}

static uint64_t step_hi(const struct series *s, uint32_t k)
{
	uint64_t b = s->t0 + (uint64_t)(k + 1) * s->step;

	return b < s->end ? b : s->end;
}

/* Spreads total over the flow's [first, last + 1), the part in [lo, hi)
 * (steps ka .. kb). */
static void spread(struct series *s, int q, uint64_t total, uint64_t first,
		   uint64_t last, uint64_t lo, uint64_t hi, uint32_t ka,
		   uint32_t kb)
{
	u128 d = (u128)(last - first) + 1, all = (u128)total << 64;
	u128 r = all / d, rest = all - r * d;
	u128 tail = hi == last + 1 ? rest : 0; /* at the last ns */

	if (!total)
		return;
	if (ka == kb) {
		s->acc[q][ka] += r * (hi - lo) + tail;
		return;
	}
	s->acc[q][ka] += r * (step_hi(s, ka) - lo);
	s->acc[q][kb] += r * (hi - step_lo(s, kb)) + tail;
	if (kb > ka + 1) {
		s->rate[q][ka + 1] += r;
		s->rate[q][kb] -= r;
	}
}

static int on_series_flow(void *arg, const struct fv_flow *f)
{
	struct series *s = arg;
	uint64_t lo = f->first_ns > s->since ? f->first_ns : s->since;
	uint64_t hi = f->last_ns < s->end - 1 ? f->last_ns + 1 : s->end;
	uint32_t ka, kb;

	if (f->last_ns < f->first_ns || lo >= hi)
		return 0; /* not in the range (cannot happen) */
	ka = (uint32_t)((lo - s->t0) / s->step);
	kb = (uint32_t)((hi - 1 - s->t0) / s->step);
	if (f->first_ns >= s->since)
		s->started[ka]++;
	s->active[ka]++;
	s->active[kb + 1]--;
	spread(s, Q_C2S_BYTES, f->bytes[0], f->first_ns, f->last_ns, lo, hi, ka,
	       kb);
	spread(s, Q_S2C_BYTES, f->bytes[1], f->first_ns, f->last_ns, lo, hi, ka,
	       kb);
	spread(s, Q_C2S_PKTS, f->pkts[0], f->first_ns, f->last_ns, lo, hi, ka,
	       kb);
	spread(s, Q_S2C_PKTS, f->pkts[1], f->first_ns, f->last_ns, lo, hi, ka,
	       kb);
	return 0;
}

static void series_free(struct series *s)
{
	for (int q = 0; q < NQ; q++) {
		free(s->acc[q]);
		free(s->rate[q]);
	}
	free(s->started);
	free(s->active);
}

static int series_alloc(struct series *s)
{
	for (int q = 0; q < NQ; q++) {
		s->acc[q] = calloc(s->n, sizeof(u128));
		s->rate[q] = calloc(s->n, sizeof(u128));
		if (!s->acc[q] || !s->rate[q])
			return -ENOMEM;
	}
	s->started = calloc(s->n, sizeof(*s->started));
	s->active = calloc((size_t)s->n + 1, sizeof(*s->active));
	return s->started && s->active ? 0 : -ENOMEM;
}

/* The smallest of 1s, 2s, 5s, ... 1d, 7d giving at most TS_STEPS_AUTO
 * steps over span ns; beyond, whole days. */
static uint64_t auto_step(uint64_t span)
{
	static const uint64_t s[] = {
		1,   2,	   5,	 10,   15,    30,    60,    120,   300,	  600,
		900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 604800};
	uint64_t d;

	for (size_t i = 0; i < sizeof(s) / sizeof(*s); i++)
		if (span / (s[i] * FV_NSEC_PER_SEC) + 1 < TS_STEPS_AUTO)
			return s[i] * FV_NSEC_PER_SEC;
	d = span / (86400 * FV_NSEC_PER_SEC) / (TS_STEPS_AUTO - 2) + 1;
	return d * 86400 * FV_NSEC_PER_SEC;
}

/* Adds the points (and the totals) of the metric m to list and tot. */
static int series_json(struct series *s, enum stats_metric m, json_t *list,
		       json_t *tot)
{
	static const char *const qn[NQ] = {"c2s_bytes", "s2c_bytes",
					   "c2s_packets", "s2c_packets"};
	u128 sum[NQ] = {0}, r[NQ] = {0};
	uint64_t prev[NQ] = {0}, started = 0;
	int64_t active = 0;
	char t[48];

	for (uint32_t k = 0; k < s->n; k++) {
		uint64_t t_ns = s->t0 + (uint64_t)k * s->step, val[NQ];
		json_t *p;

		for (int q = 0; q < NQ; q++) {
			r[q] += s->rate[q][k];
			sum[q] += s->acc[q][k] +
				  r[q] * (step_hi(s, k) - step_lo(s, k));
			/* rounded on the running sum: the points add up */
			val[q] = (uint64_t)((sum[q] + ((u128)1 << 63)) >> 64) -
				 prev[q];
			prev[q] += val[q];
		}
		active += s->active[k];
		started += s->started[k];
		p = json_pack("{s:s, s:o}", "t",
			      fv_format_time(t_ns, t, sizeof(t)), "t_ns",
			      u64j(t_ns));
		if (!p || json_array_append_new(list, p))
			return -ENOMEM;
		if (m == MET_BYTES || m == MET_ALL) {
			json_object_set_new(p, qn[0], u64j(val[0]));
			json_object_set_new(p, qn[1], u64j(val[1]));
			json_object_set_new(p, "bytes", u64j(val[0] + val[1]));
		}
		if (m == MET_PACKETS || m == MET_ALL) {
			json_object_set_new(p, qn[2], u64j(val[2]));
			json_object_set_new(p, qn[3], u64j(val[3]));
			json_object_set_new(p, "packets",
					    u64j(val[2] + val[3]));
		}
		if (m == MET_FLOWS || m == MET_ALL) {
			json_object_set_new(p, "flows", u64j(s->started[k]));
			json_object_set_new(p, "active_flows",
					    u64j((uint64_t)active));
		}
	}
	if (m == MET_BYTES || m == MET_ALL) {
		json_object_set_new(tot, qn[0], u64j(prev[0]));
		json_object_set_new(tot, qn[1], u64j(prev[1]));
		json_object_set_new(tot, "bytes", u64j(prev[0] + prev[1]));
	}
	if (m == MET_PACKETS || m == MET_ALL) {
		json_object_set_new(tot, qn[2], u64j(prev[2]));
		json_object_set_new(tot, qn[3], u64j(prev[3]));
		json_object_set_new(tot, "packets", u64j(prev[2] + prev[3]));
	}
	if (m == MET_FLOWS || m == MET_ALL)
		json_object_set_new(tot, "flows", u64j(started));
	return 0;
}

enum MHD_Result rest_stats_timeseries(struct rest_req *q)
{
	static const char *const names[] = {"step",  "metric", "since",
					    "until", "filter", NULL};
	enum stats_metric m = MET_ALL;
	uint64_t since = 0, until = UINT64_MAX, step = 0, fr0, fr1, nsteps;
	struct fv_filter *filt = NULL;
	struct series s = {0};
	int have_since, have_until, err, i, empty = 0;
	json_t *v = NULL, *list, *tot;
	enum MHD_Result ret;
	const char *a;

	if (!rest_args_known(q, names, &ret))
		return ret;
	if ((a = rest_arg(q, "metric"))) {
		if ((i = pick(a, metric_names, 3)) < 0)
			return rest_reply_error(q, MHD_HTTP_BAD_REQUEST,
						"bad parameter", -1,
						"metric is bytes, packets or "
						"flows (none: all three)");
		m = (enum stats_metric)i;
	}
	if ((a = rest_arg(q, "step")) &&
	    (fv_parse_duration(a, &step) || step < TS_STEP_MIN))
		return rest_reply_error(q, MHD_HTTP_BAD_REQUEST,
					"bad parameter", -1,
					"step='%.100s' is not a duration of "
					"1ms or more (e.g. 10s, 5m, 1h)",
					a);
	if (common_args(q, &since, &until, &have_since, &have_until, &filt,
			&ret))
		return ret;
	/* Open ends: the time range of the flows in the store. */
	if (!have_since || !have_until) {
		err = fv_index_flow_range(q->srv->ix, &fr0, &fr1);
		if (err == FV_ENOTFOUND) {
			empty = 1;
			fr0 = fr1 = 0;
		} else if (err) {
			ret = rest_reply_fail(q, "reading the flow range", err);
			goto out;
		}
		if (!have_since)
			since = fr0;
		if (!have_since && have_until && (empty || until < fr0))
			since = until; /* nothing before: one step */
		if (!have_until)
			until = fr1 > since ? fr1 : since;
	}
	if (until == UINT64_MAX)
		until--; /* end = until + 1 must not wrap */
	if (!step)
		step = auto_step(until - since);
	s.since = since;
	s.end = until + 1;
	s.step = step;
	s.t0 = since - since % step;
	nsteps = (until - s.t0) / step + 1;
	if (nsteps > TS_STEPS_MAX) {
		ret = rest_reply_error(
			q, MHD_HTTP_UNPROCESSABLE_CONTENT, "too many steps", -1,
			"%" PRIu64 " steps of %.3f s from since to until; at "
			"most %u: use a larger step or a shorter range",
			nsteps, (double)step / 1e9, TS_STEPS_MAX);
		goto out;
	}
	s.n = empty && !have_since && !have_until ? 0 : (uint32_t)nsteps;
	if (s.n && (err = series_alloc(&s))) {
		ret = rest_reply_fail(q, "a time series", err);
		goto out;
	}
	if (s.n) {
		err = fv_index_query(q->srv->ix, since, until, filt,
				     on_series_flow, &s);
		if (err) {
			ret = rest_reply_fail(q, "querying flows", err);
			goto out;
		}
	}
	list = json_array();
	tot = json_object();
	v = json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "metric",
		      m == MET_ALL ? "all" : metric_names[m], "since",
		      time_or_null(s.n, since), "until",
		      time_or_null(s.n, until), "since_ns",
		      s.n ? u64j(since) : json_null(), "until_ns",
		      s.n ? u64j(until) : json_null(), "step_ns", u64j(step),
		      "totals", tot, "points", list);
	if (!v || series_json(&s, m, list, tot)) {
		ret = MHD_NO;
		goto out;
	}
	ret = rest_reply_json(q, MHD_HTTP_OK, v);
	v = NULL;
out:
	json_decref(v);
	fv_filter_free(filt);
	series_free(&s);
	return ret;
}
