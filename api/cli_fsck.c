/*
 * cli_fsck.c - flowvault fsck: do the index and the segments agree?
 *
 * Checks, in order (docs/format.md "How a reader knows the bytes are
 * right" says what a valid block is):
 *  1. every block the index lists reads back whole from its segment
 *     (magic, version, generation, header CRC, every record's CRC and
 *     chain), with the sequence, count and time range the index has;
 *  2. every flow's packets extract whole along its places (each record's
 *     CRC and flow id), and as many as its record counts, unless the
 *     store's retention says they expired;
 *  3. the valid blocks on disk that the index does not list: the batch a
 *     crash cut off after the last commit (at most about a second of
 *     packets), which no query returns.
 * --repair deletes the index entries of the blocks of check 1 that are
 * gone or damaged, so that BPF queries and status stop counting them; a
 * flow whose packets are damaged keeps its record (its extraction says
 * which block is bad). A block in a format version this build does not
 * read (an older one, or one a newer flowvault wrote) is a problem it
 * names, never one it repairs: another flowvault may read it. The store's
 * writer lock is taken: a recorder or an import must be stopped first (its
 * blocks in flight would look like damage).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/cli.h"
#include "api/extract.h"
#include "common/fv.h"

#define SHOW_MAX 20 /* problems printed one by one, per kind */

static void usage(FILE *f)
{
	fputs("usage: flowvault fsck -s STORE [--repair] [--quick]\n"
	      "\n"
	      "Checks that the index and the segments agree: every block the\n"
	      "index lists reads back whole (CRCs, records, header), every\n"
	      "flow's packets extract whole, and counts the blocks on disk the\n"
	      "index does not list (what a crash cut off). The store must not\n"
	      "be in use by record or import.\n"
	      "\n"
	      "  -s, --store DIR   store directory\n"
	      "      --repair      delete the index entries of blocks that are\n"
	      "                    gone or damaged\n"
	      "      --quick       skip reading every flow's packets (check 2)\n"
	      "\n"
	      "Exit status: 0 consistent (after --repair, if it fixed all),\n"
	      "5 problems left, 1 the check could not run, 2 usage.\n",
	      f);
}

struct fsck {
	const struct fv_store_conf *conf;
	struct fv_index *ix;
	struct fv_seg_reader *rd;
	struct fv_retention rt;
	fv_ref *listed; /* every ref the index lists, sorted */
	size_t nlisted, caplisted;
	fv_ref *bad; /* listed, but gone or damaged */
	size_t nbad, capbad;
	uint64_t blocks_ok, blocks_gone, blocks_damaged, blocks_version;
	uint64_t flows, flows_ok, flows_expired, flows_damaged, flows_short;
	uint64_t flows_version; /* in a block of another format version */
	uint64_t packets;
	uint64_t disk_blocks, unlisted;
	unsigned shown_blocks, shown_flows;
	/* the flow being extracted */
	uint64_t got;
};

static int push_ref(fv_ref **v, size_t *n, size_t *cap, fv_ref r)
{
	if (*n == *cap) {
		size_t ncap = *cap ? 2 * *cap : 1024;
		fv_ref *nv = realloc(*v, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = ncap;
	}
	(*v)[(*n)++] = r;
	return 0;
}

static int ref_cmp(const void *a, const void *b)
{
	fv_ref x = *(const fv_ref *)a, y = *(const fv_ref *)b;

	return x < y ? -1 : x > y;
}

/* Check 1: one listed block. */
static int on_listed(void *arg, const struct fv_block_info *bi)
{
	struct fsck *k = arg;
	struct fv_block blk;
	const char *why = NULL;
	char v[512];
	int err = push_ref(&k->listed, &k->nlisted, &k->caplisted, bi->ref);

	if (err)
		return err;
	err = fv_seg_read_block(k->rd, bi->ref, &blk);
	if (err == FV_EVERSION) {
		/* Not damage, and not for --repair: named, left alone. */
		k->blocks_version++;
		if (k->shown_blocks++ < SHOW_MAX)
			printf("%s: not checked\n",
			       fv_cli_block_version(v, sizeof(v), k->conf,
						    bi->ref, blk.hdr.version));
		return 0;
	} else if (err == FV_EEXPIRED) {
		k->blocks_gone++;
		why = "gone: its segment was refilled or removed";
	} else if (err == FV_ECRC || err == FV_EFORMAT) {
		k->blocks_damaged++;
		why = err == FV_ECRC ? "damaged: a CRC does not match"
				     : "damaged: not a valid block";
	} else if (err) {
		return err; /* the check itself failed (I/O, memory) */
	} else if (blk.hdr.seq != bi->seq || blk.hdr.count != bi->count ||
		   blk.hdr.first_ns != bi->first_ns ||
		   blk.hdr.last_ns != bi->last_ns) {
		k->blocks_damaged++;
		why = "differs from the index (sequence, count or times)";
	} else {
		k->blocks_ok++;
		return 0;
	}
	if (k->shown_blocks++ < SHOW_MAX)
		printf("block %016" PRIx64 " (worker %u, generation %u, "
		       "%u packets): %s\n",
		       bi->ref, fv_ref_worker(bi->ref), fv_ref_gen(bi->ref),
		       bi->count, why);
	return push_ref(&k->bad, &k->nbad, &k->capbad, bi->ref);
}

static int count_packet(void *arg, const struct fv_rec *rec,
			const uint8_t *frame)
{
	(void)rec;
	(void)frame;
	((struct fsck *)arg)->got++;
	return 0;
}

static void show_flow(struct fsck *k, const struct fv_flow *f, const char *why)
{
	if (k->shown_flows++ < SHOW_MAX)
		printf("flow %" PRIu64 ": %s\n", f->id, why);
}

/* Check 2: one flow. */
static int on_flow(void *arg, const struct fv_flow *f)
{
	struct fsck *k = arg;
	enum fv_avail a = fv_retention_flow(&k->rt, f);
	uint64_t want = f->pkts[0] + f->pkts[1];
	fv_ref bad = 0;
	char why[640];
	int err;

	k->flows++;
	k->got = 0;
	err = fv_extract_flow(k->ix, k->rd, f->id, count_packet, k, &bad);
	k->packets += k->got;
	if (err == FV_EEXPIRED && a != FV_AVAIL_YES) {
		k->flows_expired++;
		return 0;
	}
	if (err == -ENOMEM || err == -EMFILE)
		return err;
	if (err == FV_EVERSION && bad) {
		struct fv_block blk;
		char v[512];

		k->flows_version++;
		if (fv_seg_read_block(k->rd, bad, &blk) == FV_EVERSION)
			fv_cli_block_version(v, sizeof(v), k->conf, bad,
					     blk.hdr.version);
		else
			snprintf(v, sizeof(v), "block %016" PRIx64, bad);
		snprintf(why, sizeof(why), "not read: %s", v);
		show_flow(k, f, why);
		return 0;
	}
	if (err) {
		k->flows_damaged++;
		if (bad)
			snprintf(why, sizeof(why), "%s in block %016" PRIx64,
				 fv_strerror(err), bad);
		else
			snprintf(why, sizeof(why), "%s", fv_strerror(err));
		show_flow(k, f, why);
		return 0;
	}
	if (k->got != want && a == FV_AVAIL_YES) {
		k->flows_short++;
		snprintf(why, sizeof(why),
			 "%" PRIu64 " packets extract, its record counts "
			 "%" PRIu64,
			 k->got, want);
		show_flow(k, f, why);
		return 0;
	}
	k->flows_ok++;
	return 0;
}

/* Check 3: one valid block on disk. */
static int on_disk(void *arg, const struct fv_block_info *bi)
{
	struct fsck *k = arg;

	k->disk_blocks++;
	if (!bsearch(&bi->ref, k->listed, k->nlisted, sizeof(fv_ref), ref_cmp))
		k->unlisted++;
	return 0;
}

/* --repair: the bad blocks' entries go, in one txn. */
static int repair(struct fsck *k)
{
	int err = fv_index_begin(k->ix);

	for (size_t i = 0; !err && i < k->nbad; i++)
		err = fv_index_del_block(k->ix, k->bad[i]);
	if (err) {
		fv_index_abort(k->ix);
		return err;
	}
	return fv_index_commit(k->ix);
}

int fv_cli_fsck(int argc, char **argv)
{
	static const struct option opts[] = {
		{"store", required_argument, 0, 's'},
		{"repair", no_argument, 0, 'R'},
		{"quick", no_argument, 0, 'Q'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	struct fsck k;
	struct fv_store_conf conf;
	const char *store = NULL;
	char path[4096];
	int do_repair = 0, quick = 0, lockfd = -1, c, err;
	int rc = FV_EXIT_ERROR;
	uint64_t problems;

	memset(&k, 0, sizeof(k));
	optind = 1;
	while ((c = getopt_long(argc, argv, "s:h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			store = optarg;
			break;
		case 'R':
			do_repair = 1;
			break;
		case 'Q':
			quick = 1;
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
	err = fv_store_open(store, NULL, &conf);
	if (err == FV_EVERSION) {
		fv_cli_version_err(store, do_repair);
		return FV_EXIT_ERROR;
	}
	if (err) {
		fv_cli_err("fsck", "%s: %s", store,
			   err == -ENOENT ? "no store here" : fv_strerror(err));
		return FV_EXIT_ERROR;
	}
	k.conf = &conf;
	lockfd = fv_store_lock(store);
	if (lockfd < 0) {
		fv_cli_err("fsck", "%s: %s", store,
			   lockfd == FV_ELOCKED
				   ? "another flowvault process is writing to "
				     "this store: stop it first"
				   : fv_strerror(lockfd));
		return FV_EXIT_ERROR;
	}
	err = fv_index_open(&k.ix,
			    fv_store_path(path, sizeof(path), store, "index"),
			    do_repair ? 0 : FV_INDEX_RDONLY, 0);
	if (err == FV_EVERSION) {
		fv_cli_version_err(store, do_repair);
		goto out_lock;
	}
	if (err) {
		fv_cli_err("fsck", "opening the index: %s", fv_strerror(err));
		goto out_lock;
	}
	err = fv_index_retention(k.ix, &k.rt);
	if (!err)
		err = fv_seg_reader_open(
			&k.rd,
			fv_store_path(path, sizeof(path), store, "segments"),
			conf.nsegments, conf.block_size);
	if (err) {
		fv_cli_err("fsck", "%s", fv_strerror(err));
		goto out_index;
	}

	printf("fsck %s\n", store);
	err = fv_index_blocks(k.ix, 0, UINT64_MAX, on_listed, &k);
	if (err) {
		fv_cli_err("fsck", "reading the blocks: %s", fv_strerror(err));
		goto out_reader;
	}
	qsort(k.listed, k.nlisted, sizeof(*k.listed), ref_cmp);
	printf("blocks    %zu listed by the index: %" PRIu64 " read back "
	       "whole, %" PRIu64 " gone, %" PRIu64 " damaged",
	       k.nlisted, k.blocks_ok, k.blocks_gone, k.blocks_damaged);
	if (k.blocks_version)
		printf(", %" PRIu64 " in a block format this flowvault does "
		       "not read",
		       k.blocks_version);
	putchar('\n');

	if (!quick) {
		err = fv_index_query(k.ix, 0, UINT64_MAX, NULL, on_flow, &k);
		if (err == FV_EVERSION) {
			/* The index's format fixes the record version: a
			 * record of another one is another writer's, or
			 * damage. The query cannot step over it. */
			fv_cli_err(
				"fsck",
				"%s: reading the flows: %s (this flowvault "
				"reads flow record version %d only): another "
				"flowvault wrote it, or it is damaged; the "
				"check stops there",
				store, fv_index_last_error(k.ix),
				FV_FLOW_REC_VERSION);
			goto out_reader;
		}
		if (err) {
			fv_cli_err("fsck", "reading the flows: %s",
				   fv_strerror(err));
			goto out_reader;
		}
		printf("flows     %" PRIu64 ": %" PRIu64 " extract whole "
		       "(%" PRIu64 " packets), %" PRIu64 " expired, %" PRIu64
		       " damaged, %" PRIu64 " short of their count",
		       k.flows, k.flows_ok, k.packets, k.flows_expired,
		       k.flows_damaged, k.flows_short);
		if (k.flows_version)
			printf(", %" PRIu64 " in a block format this "
			       "flowvault does not read",
			       k.flows_version);
		putchar('\n');
	}

	for (unsigned w = 0; w < conf.workers && !err; w++)
		err = fv_seg_scan(k.rd, w, on_disk, &k);
	if (err) {
		fv_cli_err("fsck", "scanning the segments: %s",
			   fv_strerror(err));
		goto out_reader;
	}
	printf("disk      %" PRIu64 " valid blocks in the segments, %" PRIu64
	       " not listed by the index (cut off by a crash before their "
	       "commit: no query returns them)\n",
	       k.disk_blocks, k.unlisted);

	problems = k.blocks_gone + k.blocks_damaged + k.flows_damaged +
		   k.flows_short + k.blocks_version + k.flows_version;
	if (do_repair && k.nbad) {
		err = repair(&k);
		if (err) {
			fv_cli_err("fsck", "repair: %s (%s)", fv_strerror(err),
				   fv_index_last_error(k.ix));
			goto out_reader;
		}
		printf("repaired  %zu index entries of blocks gone or damaged "
		       "deleted\n",
		       k.nbad);
		problems -= k.nbad;
	}
	if (problems) {
		printf("result    %" PRIu64 " problem(s) left%s", problems,
		       do_repair || !k.nbad ? ""
					    : " (--repair deletes the index "
					      "entries of bad blocks)");
		if (k.blocks_version)
			printf("; %" PRIu64 " block(s) in a format this "
			       "flowvault does not read, which --repair "
			       "leaves alone: read them with the flowvault "
			       "that wrote them",
			       k.blocks_version);
		putchar('\n');
		rc = FV_EXIT_DAMAGED;
	} else {
		printf("result    consistent\n");
		rc = FV_EXIT_OK;
	}
out_reader:
	fv_seg_reader_close(k.rd);
out_index:
	fv_index_close(k.ix);
out_lock:
	close(lockfd);
	free(k.listed);
	free(k.bad);
	return rc;
}
