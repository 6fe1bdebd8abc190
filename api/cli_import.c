/*
 * cli_import.c - flowvault import: capture files -> segments + index.
 *
 * One worker: read a frame, decode it, account it to its flow, append it
 * to the ring, note its place. About once a second (and at the end) the
 * indexer syncs the ring and commits the batch, so a kill at any moment
 * leaves an index that points only at durable blocks.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/cli.h"
#include "capture/capfile.h"
#include "capture/decode.h"
#include "capture/flow.h"
#include "common/fv.h"
#include "index/indexer.h"
#include "storage/storage.h"

#define COMMIT_EVERY_NS	   (1000ull * 1000 * 1000)
#define COMMIT_PENDING_MAX (32u << 20)

static void usage(FILE *f)
{
	fputs("usage: flowvault import -r FILE [-r FILE...] -s STORE [options]\n"
	      "\n"
	      "Stores every frame of pcap/pcapng files and indexes their flows.\n"
	      "\n"
	      "  -r, --read FILE          capture file (pcap or pcapng; - = stdin)\n"
	      "  -s, --store DIR          store directory (created if missing)\n"
	      "      --max-disk SIZE      disk budget of a new store (e.g. 20G;\n"
	      "                           default 90% of the free space)\n"
	      "      --max-flows N        flow table entries (default 262144)\n"
	      "      --idle-timeout T     UDP/other flows end after T idle (60s)\n"
	      "      --tcp-idle-timeout T TCP flows end after T idle (300s)\n"
	      "      --active-timeout T   checkpoint long flows every T (1800s)\n"
	      "      --fin-linger T       keep a closed TCP flow T for late\n"
	      "                           packets (5s)\n"
	      "  -q, --quiet              no progress line\n"
	      "  -h, --help\n",
	      f);
}

struct import {
	const char *store;
	struct fv_store_conf conf;
	struct fv_index *ix;
	struct fv_indexer *idx;
	struct fv_ring *ring;
	struct fv_flow_table *flows;
	struct fv_ifaces ifs;
	int ifs_dirty;
	uint64_t next_id;
	uint64_t last_commit;
	uint64_t max_ts;
	uint64_t next_expire;
	struct fv_flow_stats last_st;
	struct fv_ingest_counters cnt;
	/* totals for the summary */
	uint64_t packets, bytes, files_bytes;
	int quiet;
};

static int commit(struct import *im)
{
	struct fv_flow_stats st;
	int err;

	fv_flow_get_stats(im->flows, &st);
	im->cnt.undecoded = st.undecoded - im->last_st.undecoded;
	im->cnt.overflow = st.overflow - im->last_st.overflow;
	im->cnt.frag_unmatched =
		st.fragments_unmatched - im->last_st.fragments_unmatched;
	fv_indexer_count(im->idx, &im->cnt);
	memset(&im->cnt, 0, sizeof(im->cnt));
	im->last_st = st;
	if (im->ifs_dirty) {
		/* The interface table rides in the same transaction. */
		err = fv_ring_sync(im->ring);
		if (err)
			return err;
		err = fv_index_begin(im->ix);
		if (!err)
			err = fv_ifaces_save(im->ix, &im->ifs);
		if (!err)
			err = fv_index_commit(im->ix);
		else
			fv_index_abort(im->ix);
		if (err)
			return err;
		im->ifs_dirty = 0;
	}
	err = fv_indexer_commit(im->idx, &im->ring, 1, im->next_id);
	im->last_commit = fv_now_mono_ns();
	return err;
}

static void progress(struct import *im, struct fv_capfile *cf, uint64_t t0,
		     int final)
{
	uint64_t now = fv_now_mono_ns(), off = fv_capfile_offset(cf),
		 size = fv_capfile_size(cf);
	double secs = (double)(now - t0) / 1e9;
	double mbs = secs > 0 ? (double)off / secs / 1e6 : 0;
	char eta[32] = "";

	if (size && off && off < size && mbs > 0)
		snprintf(eta, sizeof(eta), " ETA %.0fs",
			 (double)(size - off) / 1e6 / mbs);
	fprintf(stderr, "\r%" PRIu64 " packets, %.1f MB, %.1f MB/s%s",
		im->packets, (double)off / 1e6, mbs, eta);
	if (size)
		fprintf(stderr, " (%.0f%%)",
			100.0 * (double)off / (double)size);
	fputs(final ? "\n" : "\033[K", stderr);
}

static int import_file(struct import *im, const char *path)
{
	char errbuf[512];
	struct fv_capfile *cf;
	struct fv_capfile_pkt p;
	struct fv_pkt pkt;
	int err, rc, tty = !im->quiet && isatty(2);
	uint64_t t0 = fv_now_mono_ns(), last_prog = 0;
	int map[FV_MAX_IFACES];

	for (int i = 0; i < FV_MAX_IFACES; i++)
		map[i] = -1;
	err = fv_capfile_open(&cf, path, errbuf);
	if (err) {
		fv_cli_err("import", "%s: %s", path, errbuf);
		return err;
	}
	while ((rc = fv_capfile_next(cf, &p, errbuf)) == 1) {
		struct fv_rec rec;
		struct fv_place pl;
		uint64_t id;
		int iface;

		if (p.iface >= FV_MAX_IFACES) {
			fv_cli_err("import", "%s: more than %d interfaces",
				   path, FV_MAX_IFACES);
			err = -ENOSPC;
			goto out;
		}
		iface = map[p.iface];
		if (iface < 0) {
			const struct fv_capfile_iface *fi =
				fv_capfile_iface(cf, p.iface);

			iface = fv_ifaces_get(&im->ifs, (uint32_t)p.linktype,
					      fi ? fi->snaplen : 0,
					      &im->ifs_dirty);
			if (iface < 0) {
				err = iface;
				goto out;
			}
			map[p.iface] = iface;
		}
		if (p.caplen > FV_MAX_FRAME)
			p.caplen = FV_MAX_FRAME;
		fv_decode(p.linktype, p.data, p.caplen, &pkt);
		err = fv_flow_packet(im->flows, &pkt, p.ts_ns, p.origlen,
				     (uint16_t)iface, &id);
		if (err)
			goto out;
		rec.ts_ns = p.ts_ns;
		rec.flow_id = id;
		rec.caplen = p.caplen;
		rec.origlen = p.origlen;
		rec.iface = (uint16_t)iface;
		rec.flags = pkt.key.family ? 0 : FV_REC_UNDECODED;
		fv_flow_last_place(im->flows, id, &pl.ref, &pl.off);
		err = fv_ring_append(im->ring, &rec, p.data, &pl);
		if (err)
			goto out;
		err = fv_flow_place(im->flows, id, pl.ref, pl.off);
		if (err)
			goto out;
		im->packets++;
		im->bytes += p.origlen;
		im->cnt.packets++;
		im->cnt.bytes += p.origlen;
		im->cnt.stored_bytes += p.caplen;
		if (p.ts_ns > im->max_ts)
			im->max_ts = p.ts_ns;
		if (im->max_ts >= im->next_expire) {
			err = fv_flow_expire(im->flows, im->max_ts);
			if (err)
				goto out;
			im->next_expire = im->max_ts + FV_NSEC_PER_SEC;
		}
		if ((im->packets & 1023) == 0) {
			uint64_t now = fv_now_mono_ns();

			if (now - im->last_commit >= COMMIT_EVERY_NS ||
			    fv_indexer_pending(im->idx) > COMMIT_PENDING_MAX) {
				err = commit(im);
				if (err)
					goto out;
			}
			if (tty && now - last_prog > 250000000ull) {
				progress(im, cf, t0, 0);
				last_prog = now;
			}
			if (fv_cli_stop) {
				err = -EINTR;
				goto out;
			}
		}
	}
	if (rc < 0) {
		/* The frames before the damage are stored; say what broke. */
		fv_cli_err("import", "%s: %s (frames before it were stored)",
			   path, errbuf);
		err = rc;
	}
out:
	if (tty)
		progress(im, cf, t0, 1);
	im->files_bytes += fv_capfile_offset(cf);
	fv_capfile_close(cf);
	return err;
}

int fv_cli_import(int argc, char **argv)
{
	static const struct option lo[] = {
		{"read", required_argument, 0, 'r'},
		{"store", required_argument, 0, 's'},
		{"max-disk", required_argument, 0, 'D'},
		{"max-flows", required_argument, 0, 'F'},
		{"idle-timeout", required_argument, 0, 'I'},
		{"tcp-idle-timeout", required_argument, 0, 'T'},
		{"active-timeout", required_argument, 0, 'A'},
		{"fin-linger", required_argument, 0, 'L'},
		{"quiet", no_argument, 0, 'q'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	const char *files[64];
	unsigned nfiles = 0;
	uint64_t max_disk = 0, v;
	struct fv_flow_opts fo = {
		.max_flows = 262144,
		.idle_timeout_ns = 300 * FV_NSEC_PER_SEC,
		.udp_idle_timeout_ns = 60 * FV_NSEC_PER_SEC,
		.active_timeout_ns = 1800 * FV_NSEC_PER_SEC,
		.fin_linger_ns = 5 * FV_NSEC_PER_SEC,
	};
	struct import im = {0};
	struct fv_store_conf want;
	struct fv_flow_sink sink;
	struct fv_ring_opts ro = {0};
	struct fv_flow_stats st;
	struct fv_index_stats ist;
	char path[4096], b1[32], b2[32];
	int c, err = 0, lockfd = -1, rc = FV_EXIT_ERROR, failed_files = 0;
	uint64_t t0 = fv_now_mono_ns();

	while ((c = getopt_long(argc, argv, "r:s:qh", lo, NULL)) != -1) {
		switch (c) {
		case 'r':
			if (nfiles == 64) {
				fv_cli_err("import", "at most 64 files");
				return FV_EXIT_USAGE;
			}
			files[nfiles++] = optarg;
			break;
		case 's':
			im.store = optarg;
			break;
		case 'D':
			if (fv_parse_size(optarg, &max_disk)) {
				fv_cli_err("import",
					   "bad --max-disk '%s' (e.g. 20G)",
					   optarg);
				return FV_EXIT_USAGE;
			}
			break;
		case 'F':
			if (fv_parse_count(optarg, &v) || !v ||
			    v > (1u << 28)) {
				fv_cli_err("import", "bad --max-flows '%s'",
					   optarg);
				return FV_EXIT_USAGE;
			}
			fo.max_flows = (uint32_t)v;
			break;
		case 'I':
		case 'T':
		case 'A':
		case 'L':
			if (fv_parse_duration(optarg, &v) || !v) {
				fv_cli_err("import",
					   "bad duration '%s' (e.g. 90s, 5m)",
					   optarg);
				return FV_EXIT_USAGE;
			}
			if (c == 'I')
				fo.udp_idle_timeout_ns = v;
			else if (c == 'T')
				fo.idle_timeout_ns = v;
			else if (c == 'A')
				fo.active_timeout_ns = v;
			else
				fo.fin_linger_ns = v;
			break;
		case 'q':
			im.quiet = 1;
			break;
		case 'h':
			usage(stdout);
			return FV_EXIT_OK;
		default:
			usage(stderr);
			return FV_EXIT_USAGE;
		}
	}
	if (!nfiles || !im.store || optind < argc) {
		usage(stderr);
		return FV_EXIT_USAGE;
	}
	err = fv_store_plan(&want, im.store, max_disk, 1);
	if (err) {
		fv_cli_err("import",
			   "--max-disk too small: need at least %u MiB",
			   8 * 100 / (100 - FV_INDEX_SHARE_PCT) + 1);
		return FV_EXIT_USAGE;
	}
	err = fv_store_open(im.store, &want, &im.conf);
	if (err) {
		fv_cli_err("import", "%s: %s", im.store, fv_strerror(err));
		return FV_EXIT_ERROR;
	}
	if (max_disk && im.conf.max_disk != want.max_disk)
		fv_cli_err(
			"import",
			"note: %s exists with a budget of %s; --max-disk ignored",
			im.store,
			fv_cli_hsize(im.conf.max_disk, b1, sizeof(b1)));
	lockfd = fv_store_lock(im.store);
	if (lockfd < 0) {
		fv_cli_err(
			"import", "%s: %s", im.store,
			lockfd == FV_ELOCKED
				? "another flowvault process is writing to this store"
				: fv_strerror(lockfd));
		return FV_EXIT_ERROR;
	}
	err = fv_index_open(
		&im.ix, fv_store_path(path, sizeof(path), im.store, "index"),
		FV_INDEX_CREATE, 0);
	if (err) {
		fv_cli_err("import", "opening the index: %s", fv_strerror(err));
		goto out;
	}
	err = fv_ifaces_load(im.ix, &im.ifs);
	if (!err) {
		err = fv_index_get_u64(im.ix, "next_flow_id", &im.next_id);
		if (err == FV_ENOTFOUND) {
			im.next_id = 1;
			err = 0;
		}
	}
	if (err) {
		fv_cli_err("import", "reading the index: %s", fv_strerror(err));
		goto out;
	}
	err = fv_indexer_new(&im.idx, im.ix);
	if (err)
		goto out;
	ro.dir = fv_store_path(path, sizeof(path), im.store, "segments");
	ro.worker = 0;
	ro.segment_size = im.conf.segment_size;
	ro.nsegments = im.conf.nsegments;
	ro.block_size = im.conf.block_size;
	ro.queue_depth = 8;
	ro.on_sealed = fv_indexer_on_sealed;
	ro.arg = im.idx;
	err = fv_ring_open(&im.ring, &ro);
	if (err) {
		fv_cli_err("import", "opening segments: %s", fv_strerror(err));
		goto out;
	}
	fv_indexer_sink(im.idx, &sink);
	err = fv_flow_table_new(&im.flows, &fo, &im.next_id, &sink);
	if (err)
		goto out;
	im.last_commit = fv_now_mono_ns();
	for (unsigned i = 0; i < nfiles && !fv_cli_stop; i++) {
		err = import_file(&im, files[i]);
		if (err == FV_ETRUNC || err == FV_EFORMAT) {
			failed_files++;
			err = 0;
		} else if (err == -EINTR) {
			err = 0;
			break;
		} else if (err) {
			if (err != FV_EPCAP && err != -ENOENT)
				fv_cli_err("import", "%s: %s", files[i],
					   fv_strerror(err));
			failed_files++;
			if (err == FV_EPCAP || err == -ENOENT ||
			    err == -EACCES) {
				err = 0;
				continue;
			}
			goto out;
		}
	}
	err = fv_flow_flush(im.flows, FV_END_EOF);
	if (!err)
		err = commit(&im);
	if (err) {
		fv_cli_err("import", "writing the store: %s", fv_strerror(err));
		goto out;
	}
	fv_flow_get_stats(im.flows, &st);
	fv_index_stats(im.ix, &ist);
	{
		double secs = (double)(fv_now_mono_ns() - t0) / 1e9;

		if (!im.quiet)
			fprintf(stderr,
				"imported %" PRIu64
				" packets (%s) in %.2f s, %.1f MB/s: "
				"%" PRIu64 " flows, %" PRIu64
				" undecodable frames, "
				"%" PRIu64
				" flow-table overflows; index %s%s\n",
				im.packets,
				fv_cli_hsize(im.bytes, b1, sizeof(b1)), secs,
				secs > 0 ? (double)im.files_bytes / secs / 1e6
					 : 0,
				st.flows_created, st.undecoded, st.overflow,
				fv_cli_hsize(ist.used_bytes, b2, sizeof(b2)),
				fv_cli_stop ? " (interrupted)" : "");
	}
	rc = failed_files ? FV_EXIT_ERROR : FV_EXIT_OK;
out:
	if (im.ring) {
		int e = fv_ring_close(im.ring);

		if (e && !err) {
			fv_cli_err("import", "closing segments: %s",
				   fv_strerror(e));
			rc = FV_EXIT_ERROR;
		}
	}
	fv_flow_table_free(im.flows);
	fv_indexer_free(im.idx);
	if (im.ix)
		fv_index_close(im.ix);
	if (lockfd >= 0)
		close(lockfd);
	return err ? FV_EXIT_ERROR : rc;
}
