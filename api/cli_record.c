/*
 * cli_record.c - flowvault record: live capture into a store, for months.
 *
 * N worker threads, each with its own source (capture/source.h: the
 * backend spreads flows over the workers, both directions of a flow on
 * one), flow table, segment ring and indexer batch (api/worker.h). Each
 * worker commits its batch at least once a second, also on a quiet link
 * (the source's poll returns after 100 ms without packets), so a finished
 * flow is listed within about a second. SIGINT/SIGTERM: every worker
 * ends its flows, commits and closes; exit 0.
 *
 * Drops are counted at each commit: the source's counters (kernel,
 * interface, mbuf) and the flow table's overflow go into the store's
 * totals and into per-worker meta ("wNN.kernel_drops", ...), which
 * `status` shows while recording and after. There is no queue between
 * the source and the worker (the worker reads the ring block itself), so
 * there is no internal queue to overflow: a slow worker shows as kernel
 * (or NIC) drops.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/cli.h"
#include "api/rest.h"
#include "api/worker.h"
#include "capture/source.h"
#include "common/fv.h"

#define MAX_THREADS 64
#define POLL_MS	    100

static void usage(FILE *f)
{
	fputs("usage: flowvault record -i IFACE -s STORE [options]\n"
	      "       flowvault record --backend dpdk --dpdk-args 'EAL ARGS' "
	      "-s STORE [options]\n"
	      "\n"
	      "Records every frame seen on an interface into a store, and "
	      "indexes its flows,\nuntil SIGINT or SIGTERM.\n"
	      "\n"
	      "  -i, --interface IFACE    interface to capture on\n"
	      "  -s, --store DIR          store directory (created if missing)\n"
	      "      --max-disk SIZE      disk budget of a new store (e.g. "
	      "500G;\n"
	      "                           default 90% of the free space)\n"
	      "      --threads N          capture workers (default 1; afpacket "
	      "and dpdk)\n"
	      "      --backend B          afpacket (default), pcap or dpdk\n"
	      "      --bpf FILTER         capture only what FILTER matches "
	      "(BPF)\n"
	      "      --snaplen N          bytes kept per frame (262144)\n"
	      "      --ring-size SIZE     kernel ring / buffer per worker "
	      "(64M)\n"
	      "      --no-promisc         do not put the interface in "
	      "promiscuous mode\n"
	      "      --dpdk-args ARGS     DPDK EAL arguments, e.g. '-l 0-3 -a "
	      "0000:03:00.0'\n"
	      "      --dpdk-port N        DPDK port id (0)\n"
	      "      --listen ADDR:PORT   serve the REST API from this process\n"
	      "                           too (as flowvault serve, e.g.\n"
	      "                           127.0.0.1:8080)\n" FV_CLI_API_USAGE
		      FV_CLI_FLOW_USAGE
	      "  -q, --quiet              no periodic status line\n"
	      "  -h, --help\n",
	      f);
}

enum {
	OPT_THREADS = 0x2000,
	OPT_BACKEND,
	OPT_BPF,
	OPT_SNAPLEN,
	OPT_RING,
	OPT_NOPROMISC,
	OPT_DPDK_ARGS,
	OPT_DPDK_PORT,
	OPT_LISTEN,
};

struct rworker {
	struct fv_worker w;
	struct fv_source *src;
	int linktype;
	uint16_t iface;
	int err;		     /* why the thread stopped, 0 if asked to */
	const char *what;	     /* where it failed */
	struct fv_source_stats last; /* counters at the last commit */
	volatile int done;
	pthread_t th;
	int started;
	uint64_t next_sample; /* realtime ns of the next stats sample */
	int *stop;	      /* shared: a worker that fails stops the others */
};

/* Stops delivery (returns 1) once a commit is due, so a busy link still
 * commits every second. */
static int on_packet(void *arg, const struct fv_source_pkt *p)
{
	struct rworker *rw = arg;
	int err = fv_worker_packet(&rw->w, rw->linktype, rw->iface, p->ts_ns,
				   p->caplen, p->origlen, p->data);

	if (err)
		return err;
	if ((rw->w.c.packets & 255) == 0 &&
	    fv_worker_commit_due(&rw->w, fv_now_mono_ns()))
		return 1;
	return 0;
}

/*
 * Queues the source's drop counters for the next commit: deltas into the
 * store's totals, this worker's cumulative values (what status shows),
 * and once a minute (and at the end) a sample "capstats.<ns hex>.wNN" of
 * 8 LE u64 - packets, bytes, kernel drops, interface drops, no mbuf
 * (cumulative since this recording started), flow-table overflows, open
 * flows, packets stored - so drops can be charted later.
 */
static int note_counters(struct rworker *rw, int final)
{
	uint64_t now = fv_now_real_ns();
	struct fv_source_stats s;
	struct fv_flow_stats fs;
	char name[64];
	unsigned id = rw->w.id;
	int err = fv_source_stats(rw->src, &s);

	if (err)
		return err;
	rw->w.delta.kernel_drops += s.kernel_drops - rw->last.kernel_drops;
	rw->w.delta.if_drops += s.if_drops - rw->last.if_drops;
	rw->w.delta.nombuf += s.nombuf - rw->last.nombuf;
	rw->last = s;
	fv_flow_get_stats(rw->w.flows, &fs);
	snprintf(name, sizeof(name), "w%02u.packets", id);
	err = fv_indexer_set_u64(rw->w.idx, name, s.packets);
	snprintf(name, sizeof(name), "w%02u.kernel_drops", id);
	err = err ? err : fv_indexer_set_u64(rw->w.idx, name, s.kernel_drops);
	snprintf(name, sizeof(name), "w%02u.if_drops", id);
	err = err ? err : fv_indexer_set_u64(rw->w.idx, name, s.if_drops);
	snprintf(name, sizeof(name), "w%02u.nombuf", id);
	err = err ? err : fv_indexer_set_u64(rw->w.idx, name, s.nombuf);
	snprintf(name, sizeof(name), "w%02u.overflow", id);
	err = err ? err : fv_indexer_set_u64(rw->w.idx, name, fs.overflow);
	snprintf(name, sizeof(name), "w%02u.flows_active", id);
	err = err ? err : fv_indexer_set_u64(rw->w.idx, name, fs.active);
	snprintf(name, sizeof(name), "w%02u.heartbeat_ns", id);
	err = err ? err : fv_indexer_set_u64(rw->w.idx, name, now);
	snprintf(name, sizeof(name), "w%02u.stopped_ns", id);
	err = err ? err : fv_indexer_set_u64(rw->w.idx, name, final ? now : 0);
	if (!err && (now >= rw->next_sample || final)) {
		/* A sample a minute, kept for charts (docs/capture.md). */
		uint8_t v[8 * 8];
		const uint64_t f[8] = {s.packets,      s.bytes,
				       s.kernel_drops, s.if_drops,
				       s.nombuf,       fs.overflow,
				       fs.active,      rw->w.c.packets};

		for (unsigned k = 0; k < 8; k++)
			fv_put_le64(v + 8 * k, f[k]);
		snprintf(name, sizeof(name), "capstats.%016" PRIx64 ".w%02u",
			 now, id);
		err = fv_indexer_set_meta(rw->w.idx, name, v, sizeof(v));
		rw->next_sample = now - now % (60 * FV_NSEC_PER_SEC) +
				  60 * FV_NSEC_PER_SEC;
	}
	return err;
}

static void *worker_main(void *arg)
{
	struct rworker *rw = arg;
	uint64_t next_expire = 0;
	int rc, err = 0, full = 0;

	while (!fv_cli_stop && !*rw->stop) {
		uint64_t mono;

		rc = fv_source_poll(rw->src, POLL_MS, on_packet, rw);
		if (rc < 0) {
			err = rc;
			rw->what = "capturing";
			break;
		}
		mono = fv_now_mono_ns();
		if (mono >= next_expire) {
			/* A quiet link: flows end by the clock too. */
			err = fv_worker_expire(&rw->w, fv_now_real_ns());
			if (err) {
				rw->what = "expiring flows";
				break;
			}
			next_expire = mono + FV_NSEC_PER_SEC;
		}
		err = fv_worker_poll(&rw->w);
		if (err) {
			rw->what = "writing the store";
			break;
		}
		if (fv_worker_commit_due(&rw->w, mono)) {
			err = note_counters(rw, 0);
			if (!err)
				err = fv_worker_commit_async(&rw->w);
			if (err) {
				rw->what = "writing the store";
				break;
			}
		}
	}
	/* A full disk: what was stored is made durable and indexed below,
	 * then the recorder stops with the error. */
	if (err && fv_ring_full(rw->w.ring)) {
		full = err;
		err = 0;
	}
	/* The flows still open, a chunk per commit (the last one holds
	 * less than a chunk). */
	while (!err) {
		int n = fv_flow_flush_some(rw->w.flows, FV_END_EOF,
					   FV_FLOW_FLUSH_CHUNK);
		int last = n < (int)FV_FLOW_FLUSH_CHUNK;

		err = n < 0 ? n : note_counters(rw, last);
		if (!err)
			err = fv_worker_commit(&rw->w);
		if (err)
			rw->what = "writing the store";
		if (last)
			break;
	}
	if (!err && full) {
		err = full;
		rw->what = "the disk is full";
	}
	rw->err = err;
	if (err)
		*rw->stop = 1;
	rw->done = 1;
	return NULL;
}

static void print_line(struct rworker *rws, unsigned n, uint64_t t0, int final)
{
	uint64_t pk = 0, by = 0, dr = 0, ov = 0, rc = 0, ra = 0;
	double secs = (double)(fv_now_mono_ns() - t0) / 1e9;

	for (unsigned i = 0; i < n; i++) {
		pk += rws[i].w.c.packets;
		by += rws[i].w.c.bytes;
		dr += rws[i].last.kernel_drops + rws[i].last.if_drops +
		      rws[i].last.nombuf;
		rc += rws[i].w.c.recycles;
		ra += rws[i].w.c.recycled_ahead;
	}
	for (unsigned i = 0; i < n; i++) {
		struct fv_flow_stats fs;

		if (!final)
			continue;
		fv_flow_get_stats(rws[i].w.flows, &fs);
		ov += fs.overflow;
	}
	fprintf(stderr,
		"%s%" PRIu64 " packets, %.1f MB in %.0f s, %" PRIu64
		" dropped%s",
		final ? "recorded " : "\r", pk, (double)by / 1e6, secs, dr,
		final ? "" : "\033[K");
	if (final)
		fprintf(stderr,
			", %" PRIu64 " flow-table overflows, %" PRIu64
			" segments recycled (%" PRIu64
			" ahead, by the committer)\n",
			ov, rc, ra);
}

int fv_cli_record(int argc, char **argv)
{
	static const struct option lo[] = {
		{"interface", required_argument, 0, 'i'},
		{"store", required_argument, 0, 's'},
		{"max-disk", required_argument, 0, 'D'},
		{"threads", required_argument, 0, OPT_THREADS},
		{"backend", required_argument, 0, OPT_BACKEND},
		{"bpf", required_argument, 0, OPT_BPF},
		{"snaplen", required_argument, 0, OPT_SNAPLEN},
		{"ring-size", required_argument, 0, OPT_RING},
		{"no-promisc", no_argument, 0, OPT_NOPROMISC},
		{"dpdk-args", required_argument, 0, OPT_DPDK_ARGS},
		{"dpdk-port", required_argument, 0, OPT_DPDK_PORT},
		{"listen", required_argument, 0, OPT_LISTEN},
		FV_CLI_API_LONGOPTS,
		FV_CLI_FLOW_LONGOPTS,
		{"quiet", no_argument, 0, 'q'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	struct fv_worker_shared sh = {0};
	struct fv_source_opts so = {
		.backend = FV_BACKEND_AFPACKET,
		.promisc = 1,
		.nworkers = 1,
	};
	struct fv_ifaces ifs = {0};
	struct rworker *rws = NULL;
	const char *store = NULL, *listen = NULL;
	struct fv_rest_opts ro = {0};
	struct fv_rest *rest = NULL;
	uint64_t max_disk = 0, v, t0, last_line = 0;
	unsigned n = 1, opened = 0;
	int c, err, lockfd = -1, quiet = 0, stop = 0, rc = FV_EXIT_ERROR,
		    added = 0, tty = isatty(2);
	struct fv_cli_api api = {0};
	char errbuf[512];

	fv_cli_flow_defaults(&sh.flow_opts);
	while ((c = getopt_long(argc, argv, "i:s:qh", lo, NULL)) != -1) {
		switch (c) {
		case 'i':
			so.iface = optarg;
			break;
		case 's':
			store = optarg;
			break;
		case 'D':
			if (fv_parse_size(optarg, &max_disk)) {
				fv_cli_err("record",
					   "bad --max-disk '%s' (e.g. 500G)",
					   optarg);
				return FV_EXIT_USAGE;
			}
			break;
		case OPT_THREADS:
			if (fv_parse_count(optarg, &v) || !v ||
			    v > MAX_THREADS) {
				fv_cli_err("record",
					   "bad --threads '%s' (1..%d)", optarg,
					   MAX_THREADS);
				return FV_EXIT_USAGE;
			}
			n = (unsigned)v;
			break;
		case OPT_BACKEND: {
			int b = fv_backend_parse(optarg);

			if (b < 0) {
				fv_cli_err("record",
					   "unknown --backend '%s' (afpacket, "
					   "pcap or dpdk)",
					   optarg);
				return FV_EXIT_USAGE;
			}
			so.backend = (enum fv_backend)b;
			break;
		}
		case OPT_BPF:
			so.bpf = optarg;
			break;
		case OPT_SNAPLEN:
			if (fv_parse_count(optarg, &v) || v < 64 ||
			    v > FV_MAX_FRAME) {
				fv_cli_err("record",
					   "bad --snaplen '%s' (64..%u)",
					   optarg, FV_MAX_FRAME);
				return FV_EXIT_USAGE;
			}
			so.snaplen = (uint32_t)v;
			break;
		case OPT_RING:
			if (fv_parse_size(optarg, &v) || v < (1u << 20)) {
				fv_cli_err("record",
					   "bad --ring-size '%s' (e.g. 256M)",
					   optarg);
				return FV_EXIT_USAGE;
			}
			so.ring_bytes = v;
			break;
		case OPT_NOPROMISC:
			so.promisc = 0;
			break;
		case OPT_DPDK_ARGS:
			so.dpdk_args = optarg;
			break;
		case OPT_DPDK_PORT:
			if (fv_parse_count(optarg, &v) || v > 65535) {
				fv_cli_err("record", "bad --dpdk-port '%s'",
					   optarg);
				return FV_EXIT_USAGE;
			}
			so.dpdk_port = (uint16_t)v;
			break;
		case OPT_LISTEN:
			listen = optarg;
			break;
		case FV_OPT_MAX_FLOWS:
		case FV_OPT_IDLE:
		case FV_OPT_TCP_IDLE:
		case FV_OPT_ACTIVE:
		case FV_OPT_LINGER:
		case FV_OPT_FLOW_RETENTION:
		case FV_OPT_COMPRESS:
			if (fv_cli_flow_opt("record", c, optarg, &sh))
				return FV_EXIT_USAGE;
			break;
		case 'q':
			quiet = 1;
			break;
		case 'h':
			usage(stdout);
			return FV_EXIT_OK;
		default:
			if (fv_cli_api_opt(c, optarg, &api))
				break;
			usage(stderr);
			return FV_EXIT_USAGE;
		}
	}
	if (!store || optind < argc ||
	    (!so.iface && so.backend != FV_BACKEND_DPDK)) {
		usage(stderr);
		return FV_EXIT_USAGE;
	}
	if (so.backend == FV_BACKEND_DPDK && !so.dpdk_args) {
		fv_cli_err("record", "--backend dpdk needs --dpdk-args");
		return FV_EXIT_USAGE;
	}
	err = fv_cli_writer_open("record", &sh, store, max_disk, n, &ifs,
				 &lockfd);
	if (err)
		return err == FV_EUSAGE ? FV_EXIT_USAGE : FV_EXIT_ERROR;
	rws = calloc(n, sizeof(*rws));
	if (!rws) {
		err = -ENOMEM;
		goto out;
	}
	so.nworkers = n;
	so.fanout_id = (unsigned)getpid() & 0xffff;
	for (opened = 0; opened < n; opened++) {
		struct rworker *rw = &rws[opened];
		int iface;

		so.worker = opened;
		err = fv_source_open(&rw->src, &so, errbuf);
		if (err) {
			fv_cli_err("record", "%s", errbuf);
			rc = err == FV_EUSAGE || err == FV_EPCAP
				     ? FV_EXIT_USAGE
				     : FV_EXIT_ERROR;
			goto out;
		}
		rw->linktype = fv_source_linktype(rw->src);
		iface = fv_ifaces_get(&ifs, (uint32_t)rw->linktype,
				      so.snaplen ? so.snaplen : FV_MAX_FRAME,
				      &added);
		if (iface < 0) {
			err = iface;
			fv_source_close(rw->src);
			rw->src = NULL;
			goto out;
		}
		rw->iface = (uint16_t)iface;
		rw->stop = &stop;
	}
	if (added) {
		err = fv_index_begin(sh.ix);
		if (!err)
			err = fv_ifaces_save(sh.ix, &ifs);
		if (!err)
			err = fv_index_commit(sh.ix);
		else
			fv_index_abort(sh.ix);
		if (err) {
			fv_cli_err("record", "writing the index: %s",
				   fv_strerror(err));
			goto out;
		}
	}
	/* The capture threads never wait for the disk: each worker's
	 * batches are committed by a thread of its own. */
	sh.async_commit = 1;
	for (unsigned i = 0; i < n; i++) {
		err = fv_worker_open(&rws[i].w, &sh, i);
		if (err) {
			fv_cli_err("record",
				   "opening segments of worker %u: %s", i,
				   fv_strerror(err));
			goto out;
		}
	}
	/* The API from this process: the recorder's index handle, since
	 * LMDB allows one per process (reads never block the writer). */
	if (listen) {
		ro.store = store;
		ro.ix = sh.ix;
		rc = fv_cli_rest_start("record", listen, &api, &ro, &rest);
		if (rc) {
			err = 0;
			goto out;
		}
		rc = FV_EXIT_ERROR;
	}
	if (!quiet)
		fprintf(stderr,
			"flowvault record: %s on %s, %u worker%s, into %s "
			"(Ctrl-C stops)\n",
			fv_backend_name(so.backend), fv_source_name(rws[0].src),
			n, n > 1 ? "s" : "", store);
	t0 = fv_now_mono_ns();
	for (unsigned i = 0; i < n; i++) {
		err = -pthread_create(&rws[i].th, NULL, worker_main, &rws[i]);
		if (err) {
			stop = 1;
			break;
		}
		rws[i].started = 1;
	}
	for (;;) {
		unsigned done = 0;

		for (unsigned i = 0; i < n; i++)
			done += !rws[i].started || rws[i].done;
		if (done == n)
			break;
		usleep(50000);
		if (!quiet && tty &&
		    fv_now_mono_ns() - last_line > 1000000000) {
			print_line(rws, n, t0, 0);
			last_line = fv_now_mono_ns();
		}
	}
	rc = FV_EXIT_OK;
	for (unsigned i = 0; i < n; i++) {
		if (rws[i].started)
			pthread_join(rws[i].th, NULL);
		if (rws[i].err) {
			const char *d = fv_index_last_error(sh.ix);
			char msg[512];

			snprintf(msg, sizeof(msg),
				 "record: worker %u: %s: %s%s%s", i,
				 rws[i].what ? rws[i].what : "stopped",
				 fv_strerror(rws[i].err), *d ? ": " : "", d);
			fv_cli_err("record", "%s", msg + 8);
			if (rws[i].w.ring && fv_ring_full(rws[i].w.ring))
				fv_cli_disk_full("record", store, rws[i].err,
						 rws[i].w.c.packets,
						 sh.conf.max_disk);
			else /* EIO, EROFS, ENOSPC: say what it means */
				fv_cli_disk_error("record", store, rws[i].err,
						  rws[i].w.c.packets,
						  sh.conf.max_disk);
			/* In the store too, for status (unless the disk
			 * refuses that as well). */
			fv_cli_note_stop(&sh, msg);
			rc = FV_EXIT_ERROR;
		}
	}
	if (!quiet) {
		if (tty)
			fputs("\r", stderr);
		print_line(rws, n, t0, 1);
	}
	err = 0;
out:
	fv_rest_stop(rest); /* before the index it borrows closes */
	if (rws) {
		for (unsigned i = 0; i < n; i++) {
			/* Its batch was committed at the end of worker_main
			 * (unless that failed): nothing is left aside. */
			fv_worker_stop_committer(&rws[i].w, 1);
			if (rws[i].w.ring) {
				int e = fv_ring_close(rws[i].w.ring);

				rws[i].w.ring = NULL;
				if (e && rc == FV_EXIT_OK) {
					fv_cli_err("record",
						   "closing segments: %s",
						   fv_strerror(e));
					rc = FV_EXIT_ERROR;
				}
			}
			fv_worker_free(&rws[i].w);
			if (rws[i].src)
				fv_source_close(rws[i].src);
		}
		free(rws);
	}
	fv_cli_writer_close(&sh, &lockfd);
	return err && rc == FV_EXIT_OK ? FV_EXIT_ERROR : rc;
}
