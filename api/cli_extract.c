/*
 * cli_extract.c - flowvault extract: a flow's packets, or a BPF query over
 * a time range, as pcap (nanosecond) or pcapng.
 *
 * --flow: flow id -> its place runs -> each block read once -> the records
 * whose flow id matches, in capture order. The number found per block must
 * equal the count the index holds, or the extraction fails loudly.
 * --bpf: blocks whose time range meets [since, until] -> every record in
 * the range that the filter (libpcap's compiler, per link type) accepts.
 *
 * Retention (docs/flows.md "When packets expire"): a flow is extracted
 * whole or not at all. One whose packets are all or partly in recycled
 * segments is refused with exit 4 and the time from which packets are
 * kept, before any byte is written; one whose segment is recycled while
 * it is read fails the same way (the file is removed). A time range
 * that reaches before the retention start gives what is still stored
 * and says on stderr which part is gone (exit 0); one that lies wholly
 * before it is exit 4.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/cli.h"
#include "api/extract.h"
#include "capture/capfile.h"
#include "common/fv.h"
#include "storage/storage.h"

static void usage(FILE *f)
{
	fputs("usage: flowvault extract -s STORE (--flow ID | --bpf EXPR [--since T] [--until T]) -w FILE\n"
	      "\n"
	      "Writes packets from the store as a capture file.\n"
	      "\n"
	      "  -s, --store DIR      store directory\n"
	      "      --flow ID        every packet of flow ID, in capture order\n"
	      "      --bpf EXPR       packets matching a tcpdump filter (\"\" = all)\n"
	      "      --since T        from T (RFC 3339, epoch seconds, or -15m)\n"
	      "      --until T        up to T, inclusive\n"
	      "  -w, --write FILE     output file, - for standard output\n"
	      "      --format F       pcap (nanosecond, default) or pcapng\n"
	      "  -h, --help\n"
	      "\n"
	      "A flow is written whole or not at all: one whose packets have expired,\n"
	      "even in part, is exit 4 (the message says from when packets are kept).\n"
	      "A time range reaching before that writes what is left and says so.\n"
	      "\n"
	      "exit status: 0 ok, 1 error, 2 usage, 3 no such flow, 4 packets expired\n",
	      f);
}

struct extract {
	struct fv_cli_store st;
	struct fv_seg_reader *rd;
	struct fv_pcapw *w;
	enum fv_pcapw_format fmt;
	FILE *out;
	uint64_t written;
	/* --flow */
	uint64_t flow_id;
	/* --bpf */
	uint64_t since, until;
	struct bpf_program prog[FV_MAX_IFACES];
	int prog_ok[FV_MAX_IFACES];
	const char *bpf;
	int out_linktype;
	struct fv_retention rt;
};

/* fv_index_places' callback: counts a flow's packets, and those in blocks
 * of generations its worker no longer holds. */
struct flow_count {
	const struct fv_retention *rt;
	uint64_t total, gone;
};

static int on_count_run(void *arg, fv_ref ref, uint32_t count, uint32_t off)
{
	struct flow_count *fc = arg;

	fc->total += count;
	if (fv_ref_gen(ref) < fc->rt->from_gen[fv_ref_worker(ref)])
		fc->gone += count;
	return 0;
}

/*
 * Refuses (exit 4) a flow whose packets are gone, wholly or in part,
 * before anything is written: returns 0 to go on, or an exit code.
 */
static int check_flow_kept(struct extract *x, const struct fv_flow *f)
{
	struct flow_count fc = {.rt = &x->rt};
	uint64_t from = x->rt.from_ns[f->worker];
	char t[48], tl[48];
	int err;

	if (!x->rt.from_gen[f->worker])
		return 0; /* this worker never recycled a segment */
	err = fv_index_places(x->st.ix, x->flow_id, on_count_run, &fc);
	if (err)
		return 0; /* fv_extract_flow says what is wrong */
	fv_format_time(from, t, sizeof(t));
	if (fc.gone && fc.gone == fc.total) {
		fv_format_time(f->last_ns, tl, sizeof(tl));
		fv_cli_err("extract",
			   "flow %" PRIu64 ": its packets have expired (its "
			   "last packet was at %s; worker %u keeps packets "
			   "from %s on)",
			   x->flow_id, tl, f->worker, t);
		return FV_EXIT_EXPIRED;
	}
	if (fc.gone) {
		fv_cli_err("extract",
			   "flow %" PRIu64 ": %" PRIu64 " of its %" PRIu64
			   " packets have expired (worker %u keeps packets "
			   "from %s on); a flow is written whole or not at "
			   "all: --bpf with --since %s gives what is left",
			   x->flow_id, fc.gone, fc.total, f->worker, t, t);
		return FV_EXIT_EXPIRED;
	}
	return 0;
}

/*
 * For a time range: the earliest time any worker still holds packets
 * from (0: some worker never recycled, or none did).
 */
static uint64_t earliest_kept(const struct extract *x)
{
	uint64_t m = UINT64_MAX;

	for (unsigned w = 0; w < x->st.conf.workers && w < FV_INDEX_WORKERS;
	     w++)
		if (x->rt.from_ns[w] < m)
			m = x->rt.from_ns[w];
	return m == UINT64_MAX ? 0 : m;
}

static int open_writer(struct extract *x, int linktype, uint32_t snaplen)
{
	int err;

	if (x->w)
		return 0;
	err = fv_pcapw_open(&x->w, x->out, x->fmt, linktype, snaplen);
	x->out_linktype = linktype;
	return err;
}

static int write_rec(struct extract *x, const struct fv_rec *r,
		     const uint8_t *frame)
{
	int lt = -1, err;
	uint32_t snap = 262144;

	if (r->iface < x->st.ifs.n) {
		lt = (int)x->st.ifs.v[r->iface].linktype;
		snap = x->st.ifs.v[r->iface].snaplen;
	}
	if (lt < 0)
		return FV_ECORRUPT;
	err = open_writer(x, lt, snap ? snap : 262144);
	if (err)
		return err;
	if (x->fmt == FV_PCAPW_PCAP && lt != x->out_linktype) {
		fv_cli_err(
			"extract",
			"packets of link types %d and %d: a pcap file holds one; "
			"use --format pcapng",
			x->out_linktype, lt);
		return FV_EUSAGE;
	}
	if (x->fmt == FV_PCAPW_PCAP &&
	    r->ts_ns / FV_NSEC_PER_SEC > UINT32_MAX) {
		char t[48];

		fv_cli_err(
			"extract",
			"a packet's time (%s) is past what classic pcap holds "
			"(2106-02-07); use --format pcapng",
			fv_format_time(r->ts_ns, t, sizeof(t)));
		return FV_EUSAGE;
	}
	err = fv_pcapw_write(x->w, lt, r->ts_ns, r->caplen, r->origlen, frame);
	if (!err)
		x->written++;
	return err;
}

/* fv_extract_flow's callback: one packet of the flow. */
static int on_flow_packet(void *arg, const struct fv_rec *r,
			  const uint8_t *frame)
{
	return write_rec(arg, r, frame);
}

static int compile_bpf(struct extract *x)
{
	char msg[PCAP_ERRBUF_SIZE] = "";
	int any = 0;

	/* A filter that does not fit one link type of the store (e.g. "ether
	 * host" on raw IP) matches nothing there; one that fits none is an
	 * error. */
	for (unsigned i = 0; i < x->st.ifs.n; i++) {
		pcap_t *p = pcap_open_dead(
			fv_linktype_to_dlt((int)x->st.ifs.v[i].linktype),
			262144);

		if (!p)
			return -ENOMEM;
		if (pcap_compile(p, &x->prog[i], x->bpf, 1,
				 PCAP_NETMASK_UNKNOWN) == 0) {
			x->prog_ok[i] = 1;
			any = 1;
		} else {
			snprintf(msg, sizeof(msg), "%s", pcap_geterr(p));
		}
		pcap_close(p);
	}
	if (!any && x->st.ifs.n) {
		fv_cli_err("extract", "bad --bpf filter '%s': %s", x->bpf, msg);
		return FV_EFILTER;
	}
	return 0;
}

/* Writes r if it is in the time range and matches the filter. */
static int bpf_rec(struct extract *x, const struct fv_rec *r,
		   const uint8_t *frame)
{
	struct pcap_pkthdr h;

	if (r->ts_ns < x->since || r->ts_ns > x->until)
		return 0;
	if (r->iface >= x->st.ifs.n || !x->prog_ok[r->iface])
		return 0;
	h.caplen = r->caplen;
	h.len = r->origlen;
	h.ts.tv_sec = (time_t)(r->ts_ns / FV_NSEC_PER_SEC);
	h.ts.tv_usec = (suseconds_t)(r->ts_ns % FV_NSEC_PER_SEC / 1000);
	if (x->bpf[0] && !pcap_offline_filter(&x->prog[r->iface], &h, frame))
		return 0;
	return write_rec(x, r, frame);
}

static int on_block(void *arg, const struct fv_block_info *bi)
{
	struct extract *x = arg;
	struct fv_block blk;
	struct fv_rec r;
	const uint8_t *frame;
	uint32_t off = 0;
	int rc;

	rc = fv_seg_read_block(x->rd, bi->ref, &blk);
	if (rc == FV_EEXPIRED)
		return 0; /* recycled since: its packets are gone */
	if (rc)
		return rc;
	while ((rc = fv_block_next(&blk, &off, &r, &frame)) == 1) {
		rc = bpf_rec(x, &r, frame);
		if (rc)
			return rc;
	}
	return rc < 0 ? rc : 0;
}

/*
 * Several workers: each worker's blocks are a stream in capture order;
 * the streams are merged by timestamp (ties: lower worker first), one
 * block per worker in memory, so the output is in time order as one
 * capture of the link would be.
 */
struct wstream {
	struct fv_seg_reader *rd;
	struct fv_block_info *bi;
	size_t n, cap, next;
	struct fv_block blk;
	uint32_t off;
	struct fv_rec r;
	const uint8_t *frame;
	unsigned worker;
};

struct blist {
	struct wstream *ws; /* [FV_MERGE_WORKERS] */
};

#define FV_MERGE_WORKERS 256

static int collect_block(void *arg, const struct fv_block_info *bi)
{
	struct blist *b = arg;
	struct wstream *w = &b->ws[fv_ref_worker(bi->ref)];

	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 16;
		struct fv_block_info *v = realloc(w->bi, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		w->bi = v;
		w->cap = cap;
	}
	w->bi[w->n++] = *bi;
	return 0;
}

/* Moves w to its next record: 1, 0 at the end, or an error. */
static int ws_next(struct wstream *w)
{
	int rc;

	for (;;) {
		if (w->blk.data) {
			rc = fv_block_next(&w->blk, &w->off, &w->r, &w->frame);
			if (rc)
				return rc;
			w->blk.data = NULL;
		}
		if (w->next == w->n)
			return 0;
		rc = fv_seg_read_block(w->rd, w->bi[w->next++].ref, &w->blk);
		if (rc == FV_EEXPIRED) {
			w->blk.data = NULL;
			continue; /* recycled since: its packets are gone */
		}
		if (rc)
			return rc;
		w->off = 0;
	}
}

static int ws_less(const struct wstream *a, const struct wstream *b)
{
	if (a->r.ts_ns != b->r.ts_ns)
		return a->r.ts_ns < b->r.ts_ns;
	return a->worker < b->worker;
}

static int extract_merged(struct extract *x, const char *segdir)
{
	struct wstream *ws = calloc(FV_MERGE_WORKERS, sizeof(*ws));
	struct wstream *live[FV_MERGE_WORKERS];
	struct blist b = {.ws = ws};
	unsigned nh = 0, nw = 0;
	int err;

	if (!ws)
		return -ENOMEM;
	err = fv_index_blocks(x->st.ix, x->since, x->until, collect_block, &b);
	for (unsigned i = 0; i < FV_MERGE_WORKERS && !err; i++)
		nw += ws[i].n > 0;
	if (!err && nw <= 1) {
		/* One worker: its blocks in order, no merge needed. */
		for (unsigned i = 0; i < FV_MERGE_WORKERS && !err; i++)
			for (size_t k = 0; k < ws[i].n && !err; k++)
				err = on_block(x, &ws[i].bi[k]);
		goto out;
	}
	for (unsigned i = 0; i < FV_MERGE_WORKERS && !err; i++) {
		int rc;

		if (!ws[i].n)
			continue;
		ws[i].worker = i;
		err = fv_seg_reader_open(&ws[i].rd, segdir,
					 x->st.conf.nsegments,
					 x->st.conf.block_size);
		if (err)
			break;
		rc = ws_next(&ws[i]);
		if (rc < 0)
			err = rc;
		else if (rc == 1)
			live[nh++] = &ws[i];
	}
	/* The earliest record of the live streams, by a scan: workers are
	 * few (cores), so a heap would not pay. */
	while (!err && nh) {
		unsigned m = 0;
		int rc;

		for (unsigned i = 1; i < nh; i++)
			if (ws_less(live[i], live[m]))
				m = i;
		err = bpf_rec(x, &live[m]->r, live[m]->frame);
		if (err)
			break;
		rc = ws_next(live[m]);
		if (rc < 0)
			err = rc;
		else if (rc == 0)
			live[m] = live[--nh];
	}
out:
	for (unsigned i = 0; i < FV_MERGE_WORKERS; i++) {
		if (ws[i].rd)
			fv_seg_reader_close(ws[i].rd);
		free(ws[i].bi);
	}
	free(ws);
	return err;
}

/* A flow whose segment was recycled while it was read (or a store that
 * has no retention record): says when packets are kept from now. */
static void say_expired_during(struct extract *x)
{
	struct fv_flow f;
	char t[48];

	if (fv_index_retention(x->st.ix, &x->rt) == 0 &&
	    fv_index_get_flow(x->st.ix, x->flow_id, &f) == 0 &&
	    x->rt.from_ns[f.worker]) {
		fv_cli_err(
			"extract",
			"flow %" PRIu64 ": its packets have expired (the "
			"segment holding them was recycled; worker %u "
			"keeps packets from %s on); nothing written",
			x->flow_id, f.worker,
			fv_format_time(x->rt.from_ns[f.worker], t, sizeof(t)));
		return;
	}
	fv_cli_err("extract",
		   "flow %" PRIu64 ": its packets have expired (the segment "
		   "holding them was recycled)",
		   x->flow_id);
}

int fv_cli_extract(int argc, char **argv)
{
	static const struct option lo[] = {
		{"store", required_argument, 0, 's'},
		{"flow", required_argument, 0, 'f'},
		{"bpf", required_argument, 0, 'b'},
		{"since", required_argument, 0, 'S'},
		{"until", required_argument, 0, 'U'},
		{"write", required_argument, 0, 'w'},
		{"format", required_argument, 0, 'F'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	struct extract x = {.fmt = FV_PCAPW_PCAP, .until = UINT64_MAX};
	const char *store = NULL, *outpath = NULL, *flow = NULL;
	char path[4096], *end;
	int c, err, rc = FV_EXIT_ERROR, said = 0;
	uint64_t now = fv_now_real_ns();

	while ((c = getopt_long(argc, argv, "s:w:h", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			store = optarg;
			break;
		case 'f':
			flow = optarg;
			break;
		case 'b':
			x.bpf = optarg;
			break;
		case 'S':
		case 'U':
			if (fv_parse_time(optarg, now,
					  c == 'S' ? &x.since : &x.until)) {
				fv_cli_err(
					"extract",
					"bad time '%s' (RFC 3339, epoch seconds, or -15m)",
					optarg);
				return FV_EXIT_USAGE;
			}
			break;
		case 'w':
			outpath = optarg;
			break;
		case 'F':
			if (!strcmp(optarg, "pcap"))
				x.fmt = FV_PCAPW_PCAP;
			else if (!strcmp(optarg, "pcapng"))
				x.fmt = FV_PCAPW_PCAPNG;
			else {
				fv_cli_err("extract",
					   "--format is pcap or pcapng");
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
	if (!store || !outpath || !!flow == !!x.bpf || optind < argc) {
		usage(stderr);
		return FV_EXIT_USAGE;
	}
	if (flow) {
		errno = 0;
		x.flow_id = strtoull(flow, &end, 10);
		if (errno || *end || !x.flow_id) {
			fv_cli_err("extract", "bad flow id '%s'", flow);
			return FV_EXIT_USAGE;
		}
	}
	err = fv_cli_store_open(&x.st, store);
	if (err) {
		fv_cli_err("extract", "%s: %s", store,
			   err == -ENOENT ? "no store here" : fv_strerror(err));
		return FV_EXIT_ERROR;
	}
	if (x.bpf) {
		err = compile_bpf(&x);
		if (err) {
			rc = FV_EXIT_USAGE;
			goto out_store;
		}
	}
	err = fv_index_retention(x.st.ix, &x.rt);
	if (err) {
		fv_cli_err("extract", "%s", fv_strerror(err));
		goto out_store;
	}
	if (flow) {
		struct fv_flow f;

		err = fv_index_get_flow(x.st.ix, x.flow_id, &f);
		if (err) {
			fv_cli_err("extract", "flow %" PRIu64 ": %s", x.flow_id,
				   err == FV_ENOTFOUND ? "no such flow"
						       : fv_strerror(err));
			rc = err == FV_ENOTFOUND ? FV_EXIT_NOTFOUND
						 : FV_EXIT_ERROR;
			goto out_store;
		}
		rc = check_flow_kept(&x, &f);
		if (rc)
			goto out_store;
		rc = FV_EXIT_ERROR;
	} else if (x.rt.packets_from_ns && x.since < x.rt.packets_from_ns &&
		   x.until < earliest_kept(&x)) {
		char t[48];

		fv_cli_err("extract",
			   "no packets in that range: they have expired "
			   "(packets are kept from %s on)",
			   fv_format_time(earliest_kept(&x), t, sizeof(t)));
		rc = FV_EXIT_EXPIRED;
		goto out_store;
	}
	err = fv_seg_reader_open(
		&x.rd, fv_store_path(path, sizeof(path), store, "segments"),
		x.st.conf.nsegments, x.st.conf.block_size);
	if (err) {
		fv_cli_err("extract", "opening segments: %s", fv_strerror(err));
		goto out_store;
	}
	if (!strcmp(outpath, "-")) {
		x.out = stdout;
	} else {
		x.out = fopen(outpath, "wb");
		if (!x.out) {
			fv_cli_err("extract", "%s: %s", outpath,
				   strerror(errno));
			goto out_reader;
		}
	}
	if (flow) {
		fv_ref bad = 0;

		err = fv_extract_flow(x.st.ix, x.rd, x.flow_id, on_flow_packet,
				      &x, &bad);
		if (err == FV_ECORRUPT && bad)
			fv_cli_err("extract",
				   "block %016" PRIx64
				   " does not hold the packets "
				   "of flow %" PRIu64 " the index says it does",
				   bad, x.flow_id);
		if (err == FV_EVERSION && bad) {
			/* Another flowvault's block: say which and whose. */
			struct fv_block blk;
			char v[512];

			if (fv_seg_read_block(x.rd, bad, &blk) == FV_EVERSION)
				fv_cli_block_version(v, sizeof(v), &x.st.conf,
						     bad, blk.hdr.version);
			else
				snprintf(v, sizeof(v), "block %016" PRIx64,
					 bad);
			fv_cli_err("extract",
				   "%s: flow %" PRIu64 " not written: read "
				   "it with the flowvault that wrote it",
				   v, x.flow_id);
			said = 1;
		}
		if (err == FV_ENOTFOUND) {
			fv_cli_err("extract",
				   "flow %" PRIu64
				   " has no packet places in the index",
				   x.flow_id);
			err = FV_ECORRUPT;
		}
	} else {
		err = extract_merged(&x, fv_store_path(path, sizeof(path),
						       store, "segments"));
	}
	if (!err && !x.w) {
		/* Nothing matched: still a valid, empty capture file. */
		int lt = x.st.ifs.n ? (int)x.st.ifs.v[0].linktype : 1;

		err = open_writer(&x, lt, 262144);
	}
	if (x.w) {
		int e = fv_pcapw_close(x.w);

		if (!err)
			err = e;
	}
	if (x.out != stdout) {
		if (fclose(x.out) && !err)
			err = -errno;
	} else if (fflush(stdout) && !err) {
		err = -errno;
	}
	if (err == -EPIPE && x.out == stdout) {
		/* The reader went away (| head, a closed download): as tcpdump
		 * does, stop quietly. */
		rc = FV_EXIT_OK;
	} else if (err == FV_EEXPIRED) {
		say_expired_during(&x);
		rc = FV_EXIT_EXPIRED;
	} else if (err == FV_EUSAGE) {
		rc = FV_EXIT_USAGE;
	} else if (err) {
		if (!said)
			fv_cli_err("extract", "%s", fv_strerror(err));
	} else {
		rc = FV_EXIT_OK;
		if (x.bpf && x.since < x.rt.packets_from_ns) {
			char t[48];

			fv_cli_err(
				"extract",
				"warning: packets before %s have expired (in "
				"part or whole); wrote the %" PRIu64
				" still stored",
				fv_format_time(x.rt.packets_from_ns, t,
					       sizeof(t)),
				x.written);
		}
	}
	if (rc != FV_EXIT_OK && x.out != stdout)
		unlink(outpath);
out_reader:
	fv_seg_reader_close(x.rd);
out_store:
	for (unsigned i = 0; i < x.st.ifs.n; i++)
		if (x.prog_ok[i])
			pcap_freecode(&x.prog[i]);
	fv_cli_store_close(&x.st);
	return rc;
}
