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
#include "api/worker.h"
#include "capture/capfile.h"
#include "capture/decode.h"
#include "capture/flow.h"
#include "common/fv.h"
#include "index/indexer.h"
#include "storage/storage.h"

static void usage(FILE *f)
{
	fputs("usage: flowvault import -r FILE [-r FILE...] -s STORE [options]\n"
	      "\n"
	      "Stores every frame of pcap/pcapng files and indexes their flows.\n"
	      "\n"
	      "  -r, --read FILE          capture file (pcap or pcapng; - = stdin)\n"
	      "  -s, --store DIR          store directory (created if missing)\n"
	      "      --max-disk SIZE      disk budget of a new store (e.g. 20G;\n"
	      "                           default 90% of the free space)\n" FV_CLI_FLOW_USAGE
	      "  -q, --quiet              no progress line\n"
	      "  -h, --help\n",
	      f);
}

struct import {
	struct fv_worker_shared sh;
	struct fv_worker w;
	int w_open;
	struct fv_ifaces ifs;
	int ifs_dirty;
	int store_err; /* the error met came from writing the store */
	/* totals for the summary */
	uint64_t files_bytes;
	int quiet;
};

static int commit(struct import *im)
{
	if (im->ifs_dirty) {
		/* The interface table rides in the batch's transaction,
		 * written before the flows that use it. */
		uint8_t buf[FV_IFACES_BYTES];
		int err = fv_indexer_set_meta(im->w.idx, "ifaces", buf,
					      fv_ifaces_encode(&im->ifs, buf));

		if (err)
			return err;
		im->ifs_dirty = 0;
	}
	return fv_worker_commit(&im->w);
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
		im->w.c.packets, (double)off / 1e6, mbs, eta);
	if (size)
		fprintf(stderr, " (%.0f%%)",
			100.0 * (double)off / (double)size);
	fputs(final ? "\n" : "\033[K", stderr);
}

/* A capture file opened before its turn; its error is told at its turn. */
struct input {
	struct fv_capfile *cf; /* NULL if the open failed */
	int err;
	char errbuf[512];
};

static void input_open(struct input *in, const char *path)
{
	in->err = fv_capfile_open(&in->cf, path, in->errbuf);
	if (in->err) {
		in->cf = NULL;
		return;
	}
	/* libpcap runs on a thread of its own, ahead of the worker (on
	 * failure it runs here, as the same reads in the same order). */
	fv_capfile_readahead(in->cf);
}

/* Stores every frame of in, opened from path; closes it. */
static int import_file(struct import *im, const char *path, struct input *in)
{
	char *errbuf = in->errbuf;
	struct fv_capfile *cf = in->cf;
	struct fv_capfile_pkt p;
	int err, rc, tty = !im->quiet && isatty(2);
	uint64_t t0 = fv_now_mono_ns(), last_prog = 0;
	int map[FV_MAX_IFACES];

	in->cf = NULL;
	if (!cf) {
		fv_cli_err("import", "%s: %s", path, errbuf);
		return in->err;
	}
	for (int i = 0; i < FV_MAX_IFACES; i++)
		map[i] = -1;
	while ((rc = fv_capfile_next(cf, &p, errbuf)) == 1) {
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
		err = fv_worker_packet(&im->w, p.linktype, (uint16_t)iface,
				       p.ts_ns, p.caplen, p.origlen, p.data);
		if (err) {
			im->store_err = 1;
			goto out;
		}
		if ((im->w.c.packets & 1023) == 0) {
			uint64_t now = fv_now_mono_ns();

			if (fv_worker_commit_due(&im->w, now)) {
				err = commit(im);
				if (err) {
					im->store_err = 1;
					goto out;
				}
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
		FV_CLI_FLOW_LONGOPTS,
		{"quiet", no_argument, 0, 'q'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	const char *files[64], *store = NULL;
	unsigned nfiles = 0;
	uint64_t max_disk = 0;
	struct import im = {0};
	struct input in = {0};
	struct fv_flow_stats st;
	struct fv_index_stats ist;
	char b1[32], b2[32];
	int c, err = 0, lockfd = -1, rc = FV_EXIT_ERROR, failed_files = 0,
	       full = 0;
	uint64_t t0 = fv_now_mono_ns();

	fv_cli_flow_defaults(&im.sh.flow_opts);
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
			store = optarg;
			break;
		case 'D':
			if (fv_parse_size(optarg, &max_disk)) {
				fv_cli_err("import",
					   "bad --max-disk '%s' (e.g. 20G)",
					   optarg);
				return FV_EXIT_USAGE;
			}
			break;
		case FV_OPT_MAX_FLOWS:
		case FV_OPT_IDLE:
		case FV_OPT_TCP_IDLE:
		case FV_OPT_ACTIVE:
		case FV_OPT_LINGER:
		case FV_OPT_FLOW_RETENTION:
		case FV_OPT_COMPRESS:
			if (fv_cli_flow_opt("import", c, optarg, &im.sh))
				return FV_EXIT_USAGE;
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
	if (!nfiles || !store || optind < argc) {
		usage(stderr);
		return FV_EXIT_USAGE;
	}
	/* The first file is read ahead while the store is opened (and, when
	 * new, created and synced). */
	input_open(&in, files[0]);
	err = fv_cli_writer_open("import", &im.sh, store, max_disk, 1, &im.ifs,
				 &lockfd);
	if (err) {
		fv_capfile_close(in.cf);
		return err == FV_EUSAGE ? FV_EXIT_USAGE : FV_EXIT_ERROR;
	}
	err = fv_worker_open(&im.w, &im.sh, 0);
	if (err) {
		fv_cli_err("import", "opening segments: %s", fv_strerror(err));
		goto out;
	}
	im.w_open = 1;
	for (unsigned i = 0; i < nfiles && !fv_cli_stop; i++) {
		if (i)
			input_open(&in, files[i]);
		err = import_file(&im, files[i], &in);
		if (err && fv_ring_full(im.w.ring)) {
			/* What was stored is indexed below; then the error. */
			full = err;
			err = 0;
			break;
		}
		if (err && im.store_err) {
			/* The store's disk failed (EIO) or turned read-only
			 * (EROFS): not the file's error. */
			fv_cli_write_failed("import", &im.sh, err,
					    im.w.c.packets);
			goto out;
		}
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
	/* The flows still open, a chunk per commit: one commit for a
	 * table that holds less than a chunk (a second would only copy
	 * index pages). */
	do {
		int n = fv_flow_flush_some(im.w.flows, FV_END_EOF,
					   FV_FLOW_FLUSH_CHUNK);

		err = n < 0 ? n : commit(&im);
		if (n < (int)FV_FLOW_FLUSH_CHUNK)
			break;
	} while (!err);
	if (err) {
		fv_cli_write_failed("import", &im.sh, err, im.w.c.packets);
		goto out;
	}
	fv_flow_get_stats(im.w.flows, &st);
	fv_index_stats(im.sh.ix, &ist);
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
				im.w.c.packets,
				fv_cli_hsize(im.w.c.bytes, b1, sizeof(b1)),
				secs,
				secs > 0 ? (double)im.files_bytes / secs / 1e6
					 : 0,
				st.flows_created, st.undecoded, st.overflow,
				fv_cli_hsize(ist.used_bytes, b2, sizeof(b2)),
				fv_cli_stop ? " (interrupted)" : "");
	}
	rc = failed_files ? FV_EXIT_ERROR : FV_EXIT_OK;
	if (full) {
		char msg[256];

		fv_cli_disk_full("import", store, full, im.w.c.packets,
				 im.sh.conf.max_disk);
		snprintf(msg, sizeof(msg),
			 "import: the disk is full (%s) after %llu packets",
			 fv_strerror(full), (unsigned long long)im.w.c.packets);
		fv_cli_note_stop(&im.sh, msg);
		rc = FV_EXIT_ERROR;
	}
out:
	fv_capfile_close(in.cf); /* the first file, if never reached */
	if (im.w_open) {
		int e = fv_ring_close(im.w.ring);

		im.w.ring = NULL;
		if (e && !err) {
			fv_cli_err("import", "closing segments: %s",
				   fv_strerror(e));
			rc = FV_EXIT_ERROR;
		}
		fv_worker_free(&im.w);
	}
	fv_cli_writer_close(&im.sh, &lockfd);
	return err ? FV_EXIT_ERROR : rc;
}
