/*
 * rest_status.c - GET /api/v1/status (what `flowvault status --format
 * json` prints, plus the version and the server's own figures) and GET
 * /metrics (the same figures in Prometheus text format).
 *
 * The figures are read the way cli_status.c reads them, with the same
 * helpers (cli.h): the index stats, one pass over the blocks, the
 * retention, the flow time range, the counters in meta, the segment
 * files on disk.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "api/rest_int.h"
#include "common/fv.h"

struct figures {
	struct fv_index_stats is;
	struct fv_retention rt;
	struct fv_ifaces ifs;
	struct fv_block_tally bt;
	uint64_t ffirst, flast;
	int have_flows;
	uint64_t seg_files, seg_bytes;
};

static int gather(struct fv_rest *srv, struct figures *t)
{
	int err = fv_index_stats(srv->ix, &t->is);

	if (!err)
		err = fv_index_blocks(srv->ix, 0, UINT64_MAX,
				      fv_block_tally_add, &t->bt);
	if (!err)
		err = fv_index_retention(srv->ix, &t->rt);
	if (!err)
		err = fv_ifaces_load(srv->ix, &t->ifs);
	if (!err) {
		err = fv_index_flow_range(srv->ix, &t->ffirst, &t->flast);
		t->have_flows = !err;
		if (err == FV_ENOTFOUND)
			err = 0;
	}
	fv_segment_usage(srv->dir, &t->seg_files, &t->seg_bytes);
	return err;
}

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

static json_t *u64(uint64_t v)
{
	return json_integer((json_int_t)(v > INT64_MAX ? INT64_MAX : v));
}

static const char *const capture_what[] = {"packets",  "kernel_drops",
					   "if_drops", "nombuf",
					   "overflow", "flows_active"};
#define NWHAT (sizeof(capture_what) / sizeof(*capture_what))

/* Workers with capture counters (a recorder's heartbeat). */
static unsigned capture_workers(struct fv_rest *srv, uint64_t *hb, int *live)
{
	unsigned nw = 0;
	int stopped = 1;

	*hb = 0;
	for (unsigned w = 0; w < srv->conf.workers; w++) {
		uint64_t h = wmeta(srv->ix, w, "heartbeat_ns");

		if (h) {
			nw = w + 1;
			if (h > *hb)
				*hb = h;
			if (!wmeta(srv->ix, w, "stopped_ns"))
				stopped = 0;
		}
	}
	*live = *hb && !stopped && fv_now_real_ns() < *hb + 5 * FV_NSEC_PER_SEC;
	return nw;
}

static unsigned retention_workers(struct fv_rest *srv, const struct figures *t)
{
	unsigned n = srv->conf.workers;

	for (unsigned w = 0; w < FV_INDEX_WORKERS; w++)
		if ((t->bt.wlast[w] || t->rt.from_ns[w]) && w + 1 > n)
			n = w + 1;
	return n < FV_INDEX_WORKERS ? n : FV_INDEX_WORKERS;
}

static json_t *status_json(struct fv_rest *srv, const struct figures *t)
{
	struct fv_index *ix = srv->ix;
	json_t *o = json_object(), *a, *cap, *ws;
	unsigned nw;
	uint64_t hb;
	int live;

	if (!o)
		return NULL;
	json_object_set_new(o, "store", json_string(srv->dir));
	json_object_set_new(o, "format", u64(srv->conf.format));
	json_object_set_new(o, "max_disk", u64(srv->conf.max_disk));
	json_object_set_new(o, "segment_size", u64(srv->conf.segment_size));
	json_object_set_new(o, "segments_per_worker", u64(srv->conf.nsegments));
	json_object_set_new(o, "workers", u64(srv->conf.workers));
	json_object_set_new(o, "segment_files", u64(t->seg_files));
	json_object_set_new(o, "segment_bytes", u64(t->seg_bytes));
	json_object_set_new(o, "blocks", u64(t->bt.blocks));
	json_object_set_new(o, "packets", u64(meta(ix, "packets")));
	json_object_set_new(o, "bytes", u64(meta(ix, "bytes")));
	json_object_set_new(o, "stored_bytes", u64(meta(ix, "stored_bytes")));
	json_object_set_new(o, "block_raw_bytes",
			    u64(meta(ix, "block_raw_bytes")));
	json_object_set_new(o, "block_disk_bytes",
			    u64(meta(ix, "block_disk_bytes")));
	json_object_set_new(o, "first_ns", u64(t->bt.first));
	json_object_set_new(o, "last_ns", u64(t->bt.last));
	json_object_set_new(o, "flows", u64(t->is.flows));
	json_object_set_new(o, "undecodable", u64(meta(ix, "undecoded")));
	json_object_set_new(o, "flow_overflow", u64(meta(ix, "overflow")));
	json_object_set_new(o, "fragments_unmatched",
			    u64(meta(ix, "fragments_unmatched")));
	json_object_set_new(o, "flows_expired", u64(meta(ix, "flows_expired")));
	json_object_set_new(o, "flows_from_ns", u64(meta(ix, "flows_from_ns")));
	json_object_set_new(o, "index_file_bytes", u64(t->is.file_bytes));
	json_object_set_new(o, "index_used_bytes", u64(t->is.used_bytes));
	a = json_array();
	for (unsigned i = 0; a && i < t->ifs.n; i++)
		json_array_append_new(
			a,
			json_pack("{s:I, s:I, s:I}", "id", (json_int_t)i,
				  "linktype", (json_int_t)t->ifs.v[i].linktype,
				  "snaplen", (json_int_t)t->ifs.v[i].snaplen));
	json_object_set_new(o, "interfaces", a ? a : json_null());
	json_object_set_new(o, "packets_from_ns", u64(t->rt.packets_from_ns));
	json_object_set_new(o, "flows_first_ns", u64(t->ffirst));
	json_object_set_new(o, "flows_last_ns", u64(t->flast));
	a = json_array();
	nw = retention_workers(srv, t);
	for (unsigned w = 0; a && w < nw; w++)
		json_array_append_new(
			a, json_pack("{s:I, s:o, s:o, s:o, s:o}", "worker",
				     (json_int_t)w, "packets_from_ns",
				     u64(t->rt.from_ns[w]), "packets_from_gen",
				     u64(t->rt.from_gen[w]), "first_ns",
				     u64(t->bt.wfirst[w]), "last_ns",
				     u64(t->bt.wlast[w])));
	json_object_set_new(o, "retention", a ? a : json_null());
	nw = capture_workers(srv, &hb, &live);
	ws = json_array();
	for (unsigned w = 0; ws && w < nw; w++) {
		json_t *x = json_pack("{s:I}", "worker", (json_int_t)w);

		for (unsigned k = 0; x && k < NWHAT; k++)
			json_object_set_new(x, capture_what[k],
					    u64(wmeta(ix, w, capture_what[k])));
		if (x)
			json_object_set_new(x, "last_commit_ns",
					    u64(wmeta(ix, w, "heartbeat_ns")));
		json_array_append_new(ws, x);
	}
	cap = json_pack("{s:b, s:o, s:o, s:o, s:o, s:o}", "recording", live,
			"last_commit_ns", u64(hb), "kernel_drops",
			u64(meta(ix, "kernel_drops")), "if_drops",
			u64(meta(ix, "if_drops")), "nombuf",
			u64(meta(ix, "nombuf")), "workers",
			ws ? ws : json_null());
	json_object_set_new(o, "capture", cap ? cap : json_null());
	{
		/* Why writing stopped (a disk error), until the next writer. */
		char msg[1024];
		size_t len = 0;

		if (fv_index_get_meta(ix, "stop_error", msg, sizeof(msg),
				      &len) == 0 &&
		    len && len < sizeof(msg))
			json_object_set_new(
				o, "stop_error",
				json_pack("{s:o, s:s%}", "ns",
					  u64(meta(ix, "stop_error_ns")),
					  "message", msg, len));
		else
			json_object_set_new(o, "stop_error", json_null());
	}
	json_object_set_new(o, "version", json_string(FV_VERSION));
	json_object_set_new(
		o, "server",
		json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "started_ns",
			  u64(srv->started_ns), "requests",
			  u64(atomic_load(&srv->requests)), "errors",
			  u64(atomic_load(&srv->errors)), "streams_aborted",
			  u64(atomic_load(&srv->streams_aborted)),
			  "downloads_active",
			  u64(atomic_load(&srv->streams_active)),
			  "max_downloads", u64(srv->max_streams),
			  "downloads_refused",
			  u64(atomic_load(&srv->streams_refused))));
	return o;
}

enum MHD_Result rest_status(struct rest_req *q)
{
	static const char *const none[] = {NULL};
	struct figures *t;
	enum MHD_Result ret;
	int err;

	if (!rest_args_known(q, none, &ret))
		return ret;
	t = calloc(1, sizeof(*t));
	if (!t)
		return MHD_NO;
	err = gather(q->srv, t);
	if (err)
		ret = rest_reply_fail(q, "reading the status", err);
	else
		ret = rest_reply_json(q, MHD_HTTP_OK, status_json(q->srv, t));
	free(t);
	return ret;
}

/* One metric: # HELP, # TYPE, then the sample lines the caller prints. */
static void help(FILE *f, const char *name, const char *type, const char *h)
{
	fprintf(f, "# HELP flowvault_%s %s\n# TYPE flowvault_%s %s\n", name, h,
		name, type);
}

static void gauge(FILE *f, const char *name, const char *type, const char *h,
		  uint64_t v)
{
	help(f, name, type, h);
	fprintf(f, "flowvault_%s %" PRIu64 "\n", name, v);
}

enum MHD_Result rest_metrics(struct rest_req *q)
{
	static const char *const none[] = {NULL};
	static const char *const whelp[NWHAT] = {
		"Packets captured by the worker.",
		"Packets the kernel dropped before the worker saw them.",
		"Packets the interface dropped.",
		"Packets dropped for want of an mbuf (DPDK).",
		"Flows evicted from the worker's full flow table.",
		"Flows open in the worker's table at its last commit."};
	static const char *const wtype[NWHAT] = {
		"counter", "counter", "counter", "counter", "counter", "gauge"};
	struct fv_rest *srv = q->srv;
	struct fv_index *ix = srv->ix;
	struct figures *t;
	enum MHD_Result ret;
	char *buf = NULL;
	size_t len = 0;
	unsigned nw;
	uint64_t hb;
	int live, err;
	FILE *f;

	if (!rest_args_known(q, none, &ret))
		return ret;
	t = calloc(1, sizeof(*t));
	if (!t)
		return MHD_NO;
	err = gather(srv, t);
	if (err) {
		ret = rest_reply_fail(q, "reading the metrics", err);
		goto out;
	}
	f = open_memstream(&buf, &len);
	if (!f) {
		ret = MHD_NO;
		goto out;
	}
	gauge(f, "up", "gauge", "1 while the server answers.", 1);
	help(f, "build_info", "gauge", "The version of flowvault.");
	fprintf(f, "flowvault_build_info{version=\"%s\"} 1\n", FV_VERSION);
	gauge(f, "packets_total", "counter",
	      "Packets stored since the store began.", meta(ix, "packets"));
	gauge(f, "bytes_total", "counter",
	      "Bytes on the wire of the packets stored.", meta(ix, "bytes"));
	gauge(f, "stored_bytes_total", "counter",
	      "Bytes of the packets as stored (captured lengths).",
	      meta(ix, "stored_bytes"));
	gauge(f, "block_raw_bytes_total", "counter",
	      "Bytes the blocks written would take uncompressed.",
	      meta(ix, "block_raw_bytes"));
	gauge(f, "block_disk_bytes_total", "counter",
	      "Bytes the blocks written take on disk (compressed with "
	      "--compress).",
	      meta(ix, "block_disk_bytes"));
	gauge(f, "packets_kept", "gauge",
	      "Packets in the blocks still on disk.", t->bt.packets);
	gauge(f, "blocks", "gauge", "Blocks still on disk.", t->bt.blocks);
	gauge(f, "flows", "gauge", "Flow records in the index.", t->is.flows);
	gauge(f, "undecodable_total", "counter",
	      "Frames stored without a flow key.", meta(ix, "undecoded"));
	gauge(f, "index_file_bytes", "gauge", "Size of the LMDB file.",
	      t->is.file_bytes);
	gauge(f, "index_used_bytes", "gauge", "LMDB pages in use, in bytes.",
	      t->is.used_bytes);
	gauge(f, "segment_bytes", "gauge", "Segment files on disk, in bytes.",
	      t->seg_bytes);
	gauge(f, "max_disk_bytes", "gauge", "The store's disk budget.",
	      srv->conf.max_disk);
	gauge(f, "packets_from_seconds", "gauge",
	      "Every worker's packets are kept from this time on (0: none "
	      "expired).",
	      t->rt.packets_from_ns / FV_NSEC_PER_SEC);
	gauge(f, "kernel_drops_total", "counter",
	      "Kernel drops of every recording.", meta(ix, "kernel_drops"));
	gauge(f, "if_drops_total", "counter",
	      "Interface drops of every recording.", meta(ix, "if_drops"));
	nw = capture_workers(srv, &hb, &live);
	gauge(f, "recording", "gauge", "1 while a recorder commits.",
	      (uint64_t)live);
	for (unsigned k = 0; k < NWHAT && nw; k++) {
		char name[64];

		snprintf(name, sizeof(name), "worker_%s%s", capture_what[k],
			 !strcmp(wtype[k], "counter") ? "_total" : "");
		help(f, name, wtype[k], whelp[k]);
		for (unsigned w = 0; w < nw; w++)
			fprintf(f, "flowvault_%s{worker=\"%u\"} %" PRIu64 "\n",
				name, w, wmeta(ix, w, capture_what[k]));
	}
	gauge(f, "http_requests_total", "counter",
	      "Requests this server answered.", atomic_load(&srv->requests));
	gauge(f, "http_errors_total", "counter",
	      "Requests answered with a 4xx or 5xx status.",
	      atomic_load(&srv->errors));
	gauge(f, "http_streams_aborted_total", "counter",
	      "Downloads cut by a failure or a stop.",
	      atomic_load(&srv->streams_aborted));
	gauge(f, "http_downloads_active", "gauge",
	      "pcap downloads being made now.",
	      atomic_load(&srv->streams_active));
	gauge(f, "http_downloads_refused_total", "counter",
	      "pcap downloads answered 503: --max-downloads were running.",
	      atomic_load(&srv->streams_refused));
	if (fclose(f)) {
		free(buf);
		ret = MHD_NO;
		goto out;
	}
	ret = rest_reply_bytes(q, MHD_HTTP_OK,
			       "text/plain; version=0.0.4; charset=utf-8", buf,
			       len);
	free(buf);
out:
	free(t);
	return ret;
}
