/*
 * cli_status.c - flowvault status: what a store holds.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "api/cli.h"
#include "common/fv.h"

static void usage(FILE *f)
{
	fputs("usage: flowvault status -s STORE [--format table|json]\n"
	      "\n"
	      "Shows the store: budget, segments, packets, the time range of the\n"
	      "packets still kept (store-wide and per worker) and of the flows,\n"
	      "undecodable frames, index size.\n",
	      f);
}

/* Workers that hold packets or recycled segments. */
static unsigned retention_workers(const struct fv_cli_store *st,
				  const struct fv_block_tally *t,
				  const struct fv_retention *rt)
{
	unsigned n = st->conf.workers;

	for (unsigned w = 0; w < FV_INDEX_WORKERS; w++)
		if ((t->wlast[w] || rt->from_ns[w]) && w + 1 > n)
			n = w + 1;
	return n < FV_INDEX_WORKERS ? n : FV_INDEX_WORKERS;
}

/* Packets kept, store-wide and per worker, beside the flow time range
 * (flow records outlive their packets: docs/flows.md). */
static void print_retention(const struct fv_cli_store *st,
			    const struct fv_block_tally *t,
			    const struct fv_retention *rt, uint64_t ffirst,
			    uint64_t flast, int have_flows, int json)
{
	unsigned nw = retention_workers(st, t, rt);
	char a[48], b[48];

	if (json) {
		printf(",\"packets_from_ns\":%" PRIu64
		       ",\"flows_first_ns\":%" PRIu64
		       ",\"flows_last_ns\":%" PRIu64 ",\"retention\":[",
		       rt->packets_from_ns, ffirst, flast);
		for (unsigned w = 0; w < nw; w++)
			printf("%s{\"worker\":%u,\"packets_from_ns\":%" PRIu64
			       ",\"packets_from_gen\":%u,\"first_ns\":%" PRIu64
			       ",\"last_ns\":%" PRIu64 "}",
			       w ? "," : "", w, rt->from_ns[w], rt->from_gen[w],
			       t->wfirst[w], t->wlast[w]);
		printf("]");
		return;
	}
	if (rt->packets_from_ns)
		printf("packets kept   from %s (older ones expired: "
		       "every worker complete from here)\n",
		       fv_format_time(rt->packets_from_ns, a, sizeof(a)));
	else
		printf("packets kept   all (nothing expired yet)\n");
	for (unsigned w = 0; nw > 1 && w < nw; w++) {
		if (!t->wlast[w]) {
			printf("  worker %-3u   no packets\n", w);
			continue;
		}
		printf("  worker %-3u   %s .. %s%s\n", w,
		       fv_format_time(t->wfirst[w], a, sizeof(a)),
		       fv_format_time(t->wlast[w], b, sizeof(b)),
		       rt->from_ns[w] ? " (older expired)" : "");
	}
	if (have_flows)
		printf("flow times     %s .. %s (flow records outlive their "
		       "packets)\n",
		       fv_format_time(ffirst, a, sizeof(a)),
		       fv_format_time(flast, b, sizeof(b)));
	else
		printf("flow times     (no flows)\n");
}

/* Segment files and the bytes they take on disk. */
static uint64_t meta(struct fv_index *ix, const char *name)
{
	uint64_t v = 0;

	fv_index_get_u64(ix, name, &v);
	return v;
}

static uint64_t wmeta(struct fv_index *ix, unsigned w, const char *what)
{
	char name[64];

	snprintf(name, sizeof(name), "w%02u.%s", w, what);
	return meta(ix, name);
}

/* Live capture: drops in total and per worker, and whether a recorder
 * committed lately (it commits every second). */
static void print_capture(struct fv_cli_store *st, int json)
{
	static const char *const what[] = {"packets",  "kernel_drops",
					   "if_drops", "nombuf",
					   "overflow", "flows_active"};
	uint64_t now = fv_now_real_ns(), hb = 0;
	unsigned nw = 0;
	int live;

	int stopped = 1;

	for (unsigned w = 0; w < st->conf.workers; w++) {
		uint64_t h = wmeta(st->ix, w, "heartbeat_ns");

		if (h) {
			nw = w + 1;
			if (h > hb)
				hb = h;
			if (!wmeta(st->ix, w, "stopped_ns"))
				stopped = 0;
		}
	}
	/* A recorder commits every second; one that stopped said so. */
	live = hb && !stopped && now < hb + 5 * FV_NSEC_PER_SEC;
	if (json) {
		printf(",\"capture\":{\"recording\":%s,\"last_commit_ns\":%" PRIu64
		       ",\"kernel_drops\":%" PRIu64 ",\"if_drops\":%" PRIu64
		       ",\"nombuf\":%" PRIu64 ",\"workers\":[",
		       live ? "true" : "false", hb,
		       meta(st->ix, "kernel_drops"), meta(st->ix, "if_drops"),
		       meta(st->ix, "nombuf"));
		for (unsigned w = 0; w < nw; w++) {
			printf("%s{\"worker\":%u", w ? "," : "", w);
			for (unsigned k = 0; k < sizeof(what) / sizeof(*what);
			     k++)
				printf(",\"%s\":%" PRIu64, what[k],
				       wmeta(st->ix, w, what[k]));
			printf(",\"last_commit_ns\":%" PRIu64 "}",
			       wmeta(st->ix, w, "heartbeat_ns"));
		}
		printf("]}");
		return;
	}
	if (!nw)
		return;
	if (live)
		printf("recording      yes, last commit %.1f s ago\n",
		       (double)(now > hb ? now - hb : 0) / 1e9);
	else
		printf("recording      no (last commit %.0f s ago)\n",
		       (double)(now - hb) / 1e9);
	printf("capture drops  %" PRIu64 " kernel, %" PRIu64
	       " interface, %" PRIu64 " no mbuf (since the store began)\n",
	       meta(st->ix, "kernel_drops"), meta(st->ix, "if_drops"),
	       meta(st->ix, "nombuf"));
	for (unsigned w = 0; w < nw; w++)
		printf("  worker %-3u   %" PRIu64 " packets, %" PRIu64
		       " kernel drops, %" PRIu64 " interface drops, %" PRIu64
		       " no mbuf, %" PRIu64 " flow overflows, %" PRIu64
		       " flows open (%s recording)\n",
		       w, wmeta(st->ix, w, "packets"),
		       wmeta(st->ix, w, "kernel_drops"),
		       wmeta(st->ix, w, "if_drops"), wmeta(st->ix, w, "nombuf"),
		       wmeta(st->ix, w, "overflow"),
		       wmeta(st->ix, w, "flows_active"),
		       live ? "this" : "last");
}

/* Why writing stopped, when a disk error stopped it (fv_cli_note_stop);
 * cleared by the next writer. */
/* What compression saved (--compress), over every block written. */
static void print_compression(const struct fv_cli_store *st)
{
	uint64_t raw = meta(st->ix, "block_raw_bytes"),
		 disk = meta(st->ix, "block_disk_bytes");
	char b[2][48];

	if (!disk || disk >= raw)
		return;
	printf("compression    %s of blocks written in %s (%.2fx, zstd)\n",
	       fv_cli_hsize(raw, b[0], 48), fv_cli_hsize(disk, b[1], 48),
	       (double)raw / (double)disk);
}

static void print_stop(struct fv_cli_store *st, int json)
{
	char msg[1025], t[48];
	size_t len = 0;

	if (fv_index_get_meta(st->ix, "stop_error", msg, sizeof(msg) - 1,
			      &len) ||
	    len >= sizeof(msg))
		len = 0;
	msg[len] = 0;
	if (!json) {
		if (len)
			printf("stopped        %s: %s\n",
			       fv_format_time(meta(st->ix, "stop_error_ns"), t,
					      sizeof(t)),
			       msg);
		return;
	}
	if (!len) {
		printf(",\"stop_error\":null");
		return;
	}
	printf(",\"stop_error\":{\"ns\":%" PRIu64 ",\"message\":\"",
	       meta(st->ix, "stop_error_ns"));
	for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	printf("\"}");
}

int fv_cli_status(int argc, char **argv)
{
	static const struct option lo[] = {
		{"store", required_argument, 0, 's'},
		{"format", required_argument, 0, 'F'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	const char *store = NULL;
	int c, err, json = 0;
	struct fv_cli_store st;
	struct fv_index_stats is;
	static struct fv_block_tally t;
	struct fv_retention rt;
	uint64_t files, segbytes, ffirst = 0, flast = 0;
	int have_flows = 0;
	char b[6][48], t0[48], t1[48];

	while ((c = getopt_long(argc, argv, "s:h", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			store = optarg;
			break;
		case 'F':
			if (!strcmp(optarg, "json"))
				json = 1;
			else if (strcmp(optarg, "table")) {
				fv_cli_err("status",
					   "--format is table or json");
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
	err = fv_cli_store_open(&st, store);
	if (err) {
		if (err != FV_EVERSION) /* else it said which and why */
			fv_cli_err("status", "%s: %s", store,
				   err == -ENOENT ? "no store here"
						  : fv_strerror(err));
		return FV_EXIT_ERROR;
	}
	err = fv_index_stats(st.ix, &is);
	if (!err)
		err = fv_index_blocks(st.ix, 0, UINT64_MAX, fv_block_tally_add,
				      &t);
	if (!err)
		err = fv_index_retention(st.ix, &rt);
	if (!err) {
		err = fv_index_flow_range(st.ix, &ffirst, &flast);
		have_flows = !err;
		if (err == FV_ENOTFOUND)
			err = 0;
	}
	if (err) {
		fv_cli_err("status", "%s", fv_strerror(err));
		fv_cli_store_close(&st);
		return FV_EXIT_ERROR;
	}
	fv_segment_usage(store, &files, &segbytes);
	fv_format_time(t.first, t0, sizeof(t0));
	fv_format_time(t.last, t1, sizeof(t1));
	if (json) {
		printf("{\"store\":\"%s\",\"format\":%u,\"max_disk\":%" PRIu64
		       ",\"segment_size\":%" PRIu64
		       ",\"segments_per_worker\":%u,"
		       "\"workers\":%u,\"segment_files\":%" PRIu64
		       ",\"segment_bytes\":%" PRIu64 ",\"blocks\":%" PRIu64
		       ",\"packets\":%" PRIu64 ",\"bytes\":%" PRIu64
		       ",\"stored_bytes\":%" PRIu64
		       ",\"block_raw_bytes\":%" PRIu64
		       ",\"block_disk_bytes\":%" PRIu64 ",\"first_ns\":%" PRIu64
		       ",\"last_ns\":%" PRIu64 ",\"flows\":%" PRIu64
		       ",\"undecodable\":%" PRIu64 ",\"flow_overflow\":%" PRIu64
		       ",\"fragments_unmatched\":%" PRIu64
		       ",\"flows_expired\":%" PRIu64
		       ",\"flows_from_ns\":%" PRIu64
		       ",\"index_file_bytes\":%" PRIu64
		       ",\"index_used_bytes\":%" PRIu64 ",\"interfaces\":[",
		       store, st.conf.format, st.conf.max_disk,
		       st.conf.segment_size, st.conf.nsegments, st.conf.workers,
		       files, segbytes, t.blocks, meta(st.ix, "packets"),
		       meta(st.ix, "bytes"), meta(st.ix, "stored_bytes"),
		       meta(st.ix, "block_raw_bytes"),
		       meta(st.ix, "block_disk_bytes"), t.first, t.last,
		       is.flows, meta(st.ix, "undecoded"),
		       meta(st.ix, "overflow"),
		       meta(st.ix, "fragments_unmatched"),
		       meta(st.ix, "flows_expired"),
		       meta(st.ix, "flows_from_ns"), is.file_bytes,
		       is.used_bytes);
		for (unsigned i = 0; i < st.ifs.n; i++)
			printf("%s{\"id\":%u,\"linktype\":%u,\"snaplen\":%u}",
			       i ? "," : "", i, st.ifs.v[i].linktype,
			       st.ifs.v[i].snaplen);
		printf("]");
		print_retention(&st, &t, &rt, ffirst, flast, have_flows, 1);
		print_capture(&st, 1);
		print_stop(&st, 1);
		printf("}\n");
	} else {
		printf("store          %s (format %u)\n", store,
		       st.conf.format);
		printf("budget         %s (segments of %s, %u per worker, %u worker%s)\n",
		       fv_cli_hsize(st.conf.max_disk, b[0], 48),
		       fv_cli_hsize(st.conf.segment_size, b[1], 48),
		       st.conf.nsegments, st.conf.workers,
		       st.conf.workers == 1 ? "" : "s");
		printf("segments       %" PRIu64 " files, %s on disk, %" PRIu64
		       " blocks\n",
		       files, fv_cli_hsize(segbytes, b[2], 48), t.blocks);
		printf("packets        %" PRIu64
		       " (%s on the wire, %s stored)\n",
		       meta(st.ix, "packets"),
		       fv_cli_hsize(meta(st.ix, "bytes"), b[3], 48),
		       fv_cli_hsize(meta(st.ix, "stored_bytes"), b[4], 48));
		print_compression(&st);
		if (t.blocks)
			printf("time range     %s .. %s (packets on disk)\n",
			       t0, t1);
		else
			printf("time range     (empty)\n");
		print_retention(&st, &t, &rt, ffirst, flast, have_flows, 0);
		if (meta(st.ix, "flows_expired"))
			printf("flows          %" PRIu64 " (%" PRIu64
			       " older records expired: complete from %s)\n",
			       is.flows, meta(st.ix, "flows_expired"),
			       fv_format_time(meta(st.ix, "flows_from_ns"), t0,
					      sizeof(t0)));
		else
			printf("flows          %" PRIu64 "\n", is.flows);
		printf("undecodable    %" PRIu64
		       " frames (stored, reachable by time and BPF)\n",
		       meta(st.ix, "undecoded"));
		printf("flow overflow  %" PRIu64
		       " (flows evicted from a full flow table)\n",
		       meta(st.ix, "overflow"));
		printf("index          %s used, %s file\n",
		       fv_cli_hsize(is.used_bytes, b[5], 48),
		       fv_cli_hsize(is.file_bytes, b[0], 48));
		printf("interfaces    ");
		for (unsigned i = 0; i < st.ifs.n; i++)
			printf(" %u:linktype %u/snaplen %u", i,
			       st.ifs.v[i].linktype, st.ifs.v[i].snaplen);
		printf("\n");
		print_capture(&st, 0);
		print_stop(&st, 0);
	}
	fv_cli_store_close(&st);
	return FV_EXIT_OK;
}
