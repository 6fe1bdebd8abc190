/*
 * rest_flows.c - GET /api/v1/flows and /api/v1/flows/{id}.
 *
 * The same answer as `flowvault flows`: the same filter, time range, sort
 * (ties broken by flow id) and the same row text (fv_cli_flow_print).
 * Paging is by cursor: the sort key value and the id of the last row
 * returned. The next page is the rows strictly after it in the sort
 * order, so flows that arrive between two pages never shift a page
 * (they have new, larger ids and later times) and no row is given twice.
 * Only one page (limit + 1 rows, or twice that while the top-N is cut)
 * is held in memory.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "api/rest_int.h"
#include "common/fv.h"
#include "index/filter.h"

#define LIMIT_DEFAULT 100
#define LIMIT_MAX     100000
#define ROWS_PER_FILL 256
#define CURSOR_LEN    19 /* version, key, desc, value BE64, id BE64 */

/* (value, id) order, ascending. */
static int cmp_key(uint64_t va, uint64_t ia, uint64_t vb, uint64_t ib)
{
	if (va != vb)
		return va < vb ? -1 : 1;
	return ia < ib ? -1 : ia > ib;
}

static int cmp_flow(const void *a, const void *b, void *arg)
{
	const struct fv_flow *fa = a, *fb = b;
	enum fv_flow_sort k = *(const enum fv_flow_sort *)arg;

	return cmp_key(fv_flow_sort_val(k, fa), fa->id, fv_flow_sort_val(k, fb),
		       fb->id);
}

struct page {
	enum fv_flow_sort key;
	int desc;
	uint64_t want; /* limit + 1: one more tells there is a next page */
	int have_cursor;
	uint64_t cur_val, cur_id;
	struct fv_flow *v;
	size_t n, cap;
	/* the stream */
	enum fv_flow_fmt fmt;
	struct fv_retention rt;
	size_t rows, next;		 /* rows to print, next one */
	char cursor[2 * CURSOR_LEN + 1]; /* "" when no next page */
};

/* Keeps the best want rows of v (sorted) when v is twice full. */
static void cut(struct page *p)
{
	qsort_r(p->v, p->n, sizeof(*p->v), cmp_flow, &p->key);
	if (p->desc)
		memmove(p->v, p->v + p->n - p->want, p->want * sizeof(*p->v));
	p->n = p->want;
}

static int on_flow(void *arg, const struct fv_flow *f)
{
	struct page *p = arg;

	if (p->have_cursor) {
		int c = cmp_key(fv_flow_sort_val(p->key, f), f->id, p->cur_val,
				p->cur_id);

		if (p->desc ? c >= 0 : c <= 0)
			return 0;
	}
	if (p->n == p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : 256;
		struct fv_flow *nv = realloc(p->v, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		p->v = nv;
		p->cap = ncap;
	}
	p->v[p->n++] = *f;
	/* The index gives flows in (first_ns, id) order: an ascending time
	 * page is complete once it has want rows. */
	if (p->key == FV_SORT_TIME && !p->desc)
		return p->n >= p->want ? 1 : 0;
	if (p->n >= 2 * p->want + 1024)
		cut(p);
	return 0;
}

static void cursor_encode(const struct page *p, const struct fv_flow *f,
			  char *out)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t b[CURSOR_LEN];

	b[0] = 1;
	b[1] = (uint8_t)p->key;
	b[2] = (uint8_t)p->desc;
	fv_put_be64(b + 3, fv_flow_sort_val(p->key, f));
	fv_put_be64(b + 11, f->id);
	for (int i = 0; i < CURSOR_LEN; i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 15];
	}
	out[2 * CURSOR_LEN] = 0;
}

static int cursor_decode(const char *s, uint8_t *b)
{
	if (strlen(s) != 2 * CURSOR_LEN)
		return FV_EUSAGE;
	for (int i = 0; i < 2 * CURSOR_LEN; i++) {
		int c = s[i], v;

		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else
			return FV_EUSAGE;
		if (i % 2)
			b[i / 2] |= (uint8_t)v;
		else
			b[i / 2] = (uint8_t)(v << 4);
	}
	if (b[0] != 1 || b[1] > FV_SORT_ID || b[2] > 1)
		return FV_EUSAGE;
	return 0;
}

/* Writes up to ROWS_PER_FILL rows, then the footer. */
static int flows_fill(struct rest_stream *s)
{
	struct page *p = s->arg;

	if (p->next == 0) {
		if (p->fmt == FV_FMT_JSON)
			fprintf(s->f,
				"{\"count\":%zu,\"next_cursor\":", p->rows);
		if (p->fmt == FV_FMT_JSON && *p->cursor)
			fprintf(s->f, "\"%s\",\"flows\":", p->cursor);
		else if (p->fmt == FV_FMT_JSON)
			fputs("null,\"flows\":", s->f);
		fv_cli_flow_header(s->f, p->fmt);
	}
	for (int i = 0; i < ROWS_PER_FILL && p->next < p->rows; i++) {
		size_t j = p->desc ? p->n - 1 - p->next : p->next;

		fv_cli_flow_print(s->f, p->fmt, &p->v[j], p->next == 0, &p->rt);
		p->next++;
	}
	if (p->next < p->rows)
		return 0;
	if (p->fmt == FV_FMT_JSON) {
		fputs(p->rows ? "\n]" : "]", s->f);
		fputs("}\n", s->f);
	}
	return 1;
}

static void flows_release(struct rest_stream *s)
{
	struct page *p = s->arg;

	if (p)
		free(p->v);
	free(p);
}

/* A flow filter that does not parse: 400 with where. */
static enum MHD_Result bad_filter(struct rest_req *q,
				  const struct fv_filter_error *e)
{
	json_t *v = json_pack("{s:s, s:s, s:i, s:i}", "error", "bad filter",
			      "detail", e->msg, "at", e->pos, "length", e->len);

	return rest_reply_json(q, MHD_HTTP_BAD_REQUEST, v);
}

static const char *fmt_ctype(enum fv_flow_fmt f)
{
	switch (f) {
	case FV_FMT_NDJSON:
		return "application/x-ndjson";
	case FV_FMT_CSV:
		return "text/csv; charset=utf-8";
	default:
		return "application/json";
	}
}

enum MHD_Result rest_flows(struct rest_req *q)
{
	static const char *const names[] = {"filter", "since",	"until",
					    "sort",   "order",	"limit",
					    "cursor", "format", NULL};
	const char *a, *expr = rest_arg(q, "filter");
	uint64_t since = 0, until = UINT64_MAX, limit = LIMIT_DEFAULT;
	struct fv_filter *filt = NULL;
	struct fv_filter_error ferr;
	struct rest_stream *s = NULL;
	struct page *p;
	enum MHD_Result ret;
	int err, order = 0, have_sort = 0;

	if (!rest_args_known(q, names, &ret))
		return ret;
	p = calloc(1, sizeof(*p));
	if (!p)
		return MHD_NO;
	p->fmt = FV_FMT_JSON;
	if ((a = rest_arg(q, "since")) &&
	    rest_time_arg(q, "since", a, &since, &ret))
		goto out;
	if ((a = rest_arg(q, "until")) &&
	    rest_time_arg(q, "until", a, &until, &ret))
		goto out;
	if ((a = rest_arg(q, "sort"))) {
		have_sort = 1;
		if (fv_flow_sort_parse(a, &p->key)) {
			ret = rest_reply_error(
				q, MHD_HTTP_BAD_REQUEST, "bad parameter", -1,
				"sort is time, bytes, packets, duration or id");
			goto out;
		}
	}
	if ((a = rest_arg(q, "order"))) {
		if (!strcmp(a, "asc"))
			order = 1;
		else if (!strcmp(a, "desc"))
			order = 2;
		else {
			ret = rest_reply_error(q, MHD_HTTP_BAD_REQUEST,
					       "bad parameter", -1,
					       "order is asc or desc");
			goto out;
		}
	}
	if ((a = rest_arg(q, "limit"))) {
		char *end;

		errno = 0;
		limit = strtoull(a, &end, 10);
		if (errno == ERANGE ||
		    (*a >= '0' && *a <= '9' && !*end && limit > LIMIT_MAX)) {
			ret = rest_reply_error(
				q, MHD_HTTP_UNPROCESSABLE_CONTENT,
				"limit too large", -1,
				"limit is at most %d: page with cursor",
				LIMIT_MAX);
			goto out;
		}
		if (*a < '0' || *a > '9' || *end || !limit) {
			ret = rest_reply_error(
				q, MHD_HTTP_BAD_REQUEST, "bad parameter", -1,
				"limit is a number from 1 to %d", LIMIT_MAX);
			goto out;
		}
	}
	if ((a = rest_arg(q, "format")) &&
	    (fv_cli_parse_fmt(a, &p->fmt) || p->fmt == FV_FMT_TABLE)) {
		ret = rest_reply_error(q, MHD_HTTP_BAD_REQUEST, "bad parameter",
				       -1, "format is json, ndjson or csv");
		goto out;
	}
	p->desc = order ? order == 2
			: (p->key != FV_SORT_TIME && p->key != FV_SORT_ID);
	if ((a = rest_arg(q, "cursor"))) {
		uint8_t b[CURSOR_LEN];

		if (cursor_decode(a, b)) {
			ret = rest_reply_error(q, MHD_HTTP_BAD_REQUEST,
					       "bad cursor", -1,
					       "use the next_cursor of a "
					       "previous page as it is");
			goto out;
		}
		if ((have_sort && b[1] != p->key) ||
		    (order && b[2] != p->desc)) {
			ret = rest_reply_error(q, MHD_HTTP_BAD_REQUEST,
					       "bad cursor", -1,
					       "the cursor belongs to another "
					       "sort or order");
			goto out;
		}
		p->key = b[1];
		p->desc = b[2];
		p->have_cursor = 1;
		p->cur_val = fv_be64(b + 3);
		p->cur_id = fv_be64(b + 11);
	}
	if (since > until) {
		ret = rest_reply_error(q, MHD_HTTP_BAD_REQUEST, "bad time", -1,
				       "since is after until");
		goto out;
	}
	p->want = limit + 1;
	/* Ascending time after a cursor: every row left starts at or after
	 * the cursor's time, so the scan can start there. */
	if (p->have_cursor && p->key == FV_SORT_TIME && !p->desc &&
	    p->cur_val > since)
		since = p->cur_val;
	err = fv_filter_compile(expr ? expr : "", &filt, &ferr);
	if (err == FV_EFILTER) {
		ret = bad_filter(q, &ferr);
		goto out;
	} else if (err) {
		ret = rest_reply_fail(q, "compiling a filter", err);
		goto out;
	}
	err = fv_index_retention(q->srv->ix, &p->rt);
	if (!err)
		err = fv_index_query(q->srv->ix, since, until, filt, on_flow,
				     p);
	fv_filter_free(filt);
	if (err) {
		ret = rest_reply_fail(q, "querying flows", err);
		goto out;
	}
	if (p->n) /* p->v is NULL when nothing matched */
		qsort_r(p->v, p->n, sizeof(*p->v), cmp_flow, &p->key);
	if (p->n > p->want) { /* drop what the last cut kept extra */
		if (p->desc)
			memmove(p->v, p->v + p->n - p->want,
				p->want * sizeof(*p->v));
		p->n = p->want;
	}
	p->rows = p->n > limit ? limit : p->n;
	if (p->n > limit)
		cursor_encode(p, &p->v[p->desc ? p->n - p->rows : p->rows - 1],
			      p->cursor);
	s = rest_stream_new(q->srv);
	if (!s) {
		ret = MHD_NO;
		goto out;
	}
	s->fill = flows_fill;
	s->release = flows_release;
	s->arg = p;
	s->what = "flows";
	return rest_reply_stream(q, s, fmt_ctype(p->fmt), NULL,
				 *p->cursor ? "X-Next-Cursor" : NULL,
				 p->cursor);
out:
	free(p->v);
	free(p);
	return ret;
}

enum MHD_Result rest_flow(struct rest_req *q, const char *id_s)
{
	static const char *const none[] = {NULL};
	struct fv_retention *rt;
	struct fv_flow f;
	enum MHD_Result ret;
	char *buf = NULL;
	size_t len = 0;
	uint64_t id;
	FILE *m;
	int err;

	if (!rest_args_known(q, none, &ret))
		return ret;
	if (rest_parse_flow_id(id_s, &id))
		return rest_reply_error(q, MHD_HTTP_BAD_REQUEST, "bad flow id",
					-1,
					"a flow id is a number from 1 to %llu",
					(unsigned long long)FV_FLOW_ID_MAX);
	err = fv_index_get_flow(q->srv->ix, id, &f);
	if (err == FV_ENOTFOUND)
		return rest_reply_error(
			q, MHD_HTTP_NOT_FOUND, "no such flow", -1,
			"flow %" PRIu64 " is not in the store", id);
	if (err)
		return rest_reply_fail(q, "reading a flow", err);
	rt = malloc(sizeof(*rt));
	if (!rt)
		return MHD_NO;
	err = fv_index_retention(q->srv->ix, rt);
	if (err) {
		free(rt);
		return rest_reply_fail(q, "reading the retention", err);
	}
	m = open_memstream(&buf, &len);
	if (!m) {
		free(rt);
		return MHD_NO;
	}
	fv_cli_flow_print(m, FV_FMT_NDJSON, &f, 1, rt);
	free(rt);
	if (fclose(m)) {
		free(buf);
		return MHD_NO;
	}
	ret = rest_reply_bytes(q, MHD_HTTP_OK, "application/json", buf, len);
	free(buf);
	return ret;
}
