/*
 * cli_flows.c - flowvault flows: list flows matching a flow filter and a
 * time range, sorted, as a table, JSON, JSON lines or CSV.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/cli.h"
#include "common/fv.h"
#include "index/filter.h"

static void usage(FILE *f)
{
	fputs("usage: flowvault flows -s STORE [--filter EXPR] [--since T] [--until T]\n"
	      "                       [--sort KEY] [--asc|--desc] [--limit N] [--format F]\n"
	      "\n"
	      "Lists the flows that overlap the time range and match the filter.\n"
	      "\n"
	      "  -s, --store DIR     store directory\n"
	      "  -f, --filter EXPR   flow filter, e.g. 'host 10.0.0.1 and port 443 and bytes > 1M'\n"
	      "                      (docs/filter.md)\n"
	      "      --since T       RFC 3339, epoch seconds, or relative (-15m)\n"
	      "      --until T\n"
	      "      --sort KEY      time (default), bytes, packets, duration, id\n"
	      "      --asc, --desc   order (default: ascending for time and id,\n"
	      "                      descending otherwise)\n"
	      "  -n, --limit N       at most N flows (default: all)\n"
	      "      --format F      table (default), json, ndjson, csv\n"
	      "\n"
	      "A flow record outlives its packets: packets_available (the last column)\n"
	      "says yes, partial or expired against the store's retention (docs/flows.md).\n"
	      "  -h, --help\n",
	      f);
}

struct list {
	enum fv_flow_sort key;
	int desc;
	uint64_t limit;
	struct fv_flow *v;
	size_t n, cap;
	/* streaming output (time order, ascending) */
	FILE *out;
	enum fv_flow_fmt fmt;
	int stream;
	uint64_t printed;
	struct fv_retention rt; /* for packets_available */
};

static int cmp_flow(const void *a, const void *b, void *arg)
{
	const struct fv_flow *fa = a, *fb = b;
	enum fv_flow_sort k = *(const enum fv_flow_sort *)arg;
	uint64_t va = fv_flow_sort_val(k, fa), vb = fv_flow_sort_val(k, fb);

	if (va != vb)
		return va < vb ? -1 : 1;
	return fa->id < fb->id ? -1 : fa->id > fb->id;
}

static int on_flow(void *arg, const struct fv_flow *f)
{
	struct list *l = arg;

	if (l->stream) {
		fv_cli_flow_print(l->out, l->fmt, f, l->printed == 0, &l->rt);
		l->printed++;
		return l->limit && l->printed >= l->limit ? 1 : 0;
	}
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 1024;
		struct fv_flow *nv = realloc(l->v, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		l->v = nv;
		l->cap = ncap;
	}
	l->v[l->n++] = *f;
	/* Keep memory bounded for top-N: sort and cut when twice full. */
	if (l->limit && l->n >= 2 * l->limit + 1024) {
		qsort_r(l->v, l->n, sizeof(*l->v), cmp_flow, &l->key);
		if (l->desc)
			memmove(l->v, l->v + l->n - l->limit,
				l->limit * sizeof(*l->v));
		l->n = l->limit;
	}
	return 0;
}

static void show_filter_error(const char *expr, const struct fv_filter_error *e)
{
	fprintf(stderr, "flowvault flows: bad filter: %s\n  %s\n  %*s", e->msg,
		expr, e->pos, "");
	for (int i = 0; i < (e->len > 0 ? e->len : 1); i++)
		fputc('^', stderr);
	fputc('\n', stderr);
}

int fv_cli_flows(int argc, char **argv)
{
	static const struct option lo[] = {
		{"store", required_argument, 0, 's'},
		{"filter", required_argument, 0, 'f'},
		{"since", required_argument, 0, 'S'},
		{"until", required_argument, 0, 'U'},
		{"sort", required_argument, 0, 'o'},
		{"asc", no_argument, 0, 'a'},
		{"desc", no_argument, 0, 'd'},
		{"limit", required_argument, 0, 'n'},
		{"format", required_argument, 0, 'F'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	const char *store = NULL, *expr = "";
	uint64_t since = 0, until = UINT64_MAX, now = fv_now_real_ns();
	struct list l = {.out = stdout, .fmt = FV_FMT_TABLE};
	struct fv_filter *filt = NULL;
	struct fv_filter_error ferr;
	struct fv_cli_store st;
	int c, err, order = 0, rc = FV_EXIT_ERROR;

	while ((c = getopt_long(argc, argv, "s:f:n:h", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			store = optarg;
			break;
		case 'f':
			expr = optarg;
			break;
		case 'S':
		case 'U':
			if (fv_parse_time(optarg, now,
					  c == 'S' ? &since : &until)) {
				fv_cli_err(
					"flows",
					"bad time '%s' (RFC 3339, epoch seconds, or -15m)",
					optarg);
				return FV_EXIT_USAGE;
			}
			break;
		case 'o':
			if (fv_flow_sort_parse(optarg, &l.key)) {
				fv_cli_err(
					"flows",
					"--sort is time, bytes, packets, duration or id");
				return FV_EXIT_USAGE;
			}
			break;
		case 'a':
			order = 1;
			break;
		case 'd':
			order = 2;
			break;
		case 'n':
			if (fv_parse_count(optarg, &l.limit)) {
				fv_cli_err("flows", "bad --limit '%s'", optarg);
				return FV_EXIT_USAGE;
			}
			break;
		case 'F':
			if (fv_cli_parse_fmt(optarg, &l.fmt)) {
				fv_cli_err(
					"flows",
					"--format is table, json, ndjson or csv");
				return FV_EXIT_USAGE;
			}
			break;
		case 'h':
			usage(stdout);
			return FV_EXIT_OK;
		default:
			usage(stderr);
			return FV_EXIT_USAGE;
		}
	}
	if (!store || optind < argc) {
		usage(stderr);
		return FV_EXIT_USAGE;
	}
	l.desc = order ? order == 2
		       : (l.key != FV_SORT_TIME && l.key != FV_SORT_ID);
	err = fv_filter_compile(expr, &filt, &ferr);
	if (err == FV_EFILTER) {
		show_filter_error(expr, &ferr);
		return FV_EXIT_USAGE;
	} else if (err) {
		fv_cli_err("flows", "%s", fv_strerror(err));
		return FV_EXIT_ERROR;
	}
	err = fv_cli_store_open(&st, store);
	if (err) {
		fv_cli_err("flows", "%s: %s", store,
			   err == -ENOENT ? "no store here" : fv_strerror(err));
		fv_filter_free(filt);
		return FV_EXIT_ERROR;
	}
	/* The index returns flows in first-seen order: stream them. */
	l.stream = l.key == FV_SORT_TIME && !l.desc;
	err = fv_index_retention(st.ix, &l.rt);
	if (err) {
		fv_cli_err("flows", "%s", fv_strerror(err));
		goto out;
	}
	fv_cli_flow_header(l.out, l.fmt);
	err = fv_index_query(st.ix, since, until, filt, on_flow, &l);
	if (!err && !l.stream) {
		size_t n;

		if (l.n) /* l.v is NULL when nothing matched */
			qsort_r(l.v, l.n, sizeof(*l.v), cmp_flow, &l.key);
		n = l.limit && l.limit < l.n ? l.limit : l.n;
		for (size_t i = 0; i < n; i++) {
			size_t j = l.desc ? l.n - 1 - i : i;

			fv_cli_flow_print(l.out, l.fmt, &l.v[j], i == 0, &l.rt);
		}
		l.printed = n;
	}
	fv_cli_flow_footer(l.out, l.fmt, l.printed > 0);
	if (err) {
		fv_cli_err("flows", "%s", fv_strerror(err));
	} else {
		rc = FV_EXIT_OK;
		fflush(l.out);
		if (l.fmt == FV_FMT_TABLE)
			fprintf(stderr, "%" PRIu64 " flows\n", l.printed);
	}
out:
	free(l.v);
	fv_filter_free(filt);
	fv_cli_store_close(&st);
	return rc;
}
