/*
 * store.h - a store directory: its settings file, its writer lock and the
 * sizing of its segment ring from the disk budget.
 *
 *   STORE/flowvault.conf   "key = value" lines, written once at creation
 *   STORE/lock             flock()ed by the one process that writes
 *   STORE/segments/        segment rings (storage.h)
 *   STORE/index/           the LMDB environment (index.h)
 *
 * Budget split: FV_INDEX_SHARE_PCT of --max-disk (at least
 * FV_INDEX_SHARE_MIN_MB, at most a quarter) is kept for the index and
 * the rest is segments; segment size is budget/16 clamped to [16 MiB,
 * 1 GiB] and rounded to the block size; at least 2 segments per worker.
 */
#ifndef FV_STORAGE_STORE_H
#define FV_STORAGE_STORE_H

#include <stdint.h>

#define FV_STORE_FORMAT	      1
#define FV_INDEX_SHARE_PCT    5
#define FV_INDEX_SHARE_MIN_MB 8

struct fv_store_conf {
	uint32_t format;   /* FV_STORE_FORMAT */
	uint64_t max_disk; /* bytes: packets + index */
	uint64_t segment_size;
	uint32_t nsegments; /* per worker */
	uint32_t block_size;
	uint32_t workers;
	uint64_t created_ns;
};

/*
 * Fills c from a budget (0: 90% of the free space of the filesystem that
 * holds dir) and a worker count. Returns 0, or FV_EUSAGE when the budget
 * is too small for two segments per worker.
 */
int fv_store_plan(struct fv_store_conf *c, const char *dir, uint64_t max_disk,
		  uint32_t workers);

/* The index's share of a budget (fv_index_expire_flows keeps it). */
uint64_t fv_store_index_share(uint64_t max_disk);

/*
 * Opens the store at dir. If it does not exist and want is not NULL, it is
 * created with *want. An existing store keeps its own settings (a
 * different max_disk in want is ignored; the caller may say so). Fills
 * *got. Returns 0, -ENOENT (no store and want NULL), FV_EVERSION (format
 * newer than this program), FV_EFORMAT (bad settings file), or -errno.
 */
int fv_store_open(const char *dir, const struct fv_store_conf *want,
		  struct fv_store_conf *got);

/* Takes the writer lock (non-blocking). Returns an fd to keep open, or
 * FV_ELOCKED, or -errno. Close the fd to release. */
int fv_store_lock(const char *dir);

/* Builds "dir/sub" into buf. Returns buf. */
char *fv_store_path(char *buf, unsigned len, const char *dir, const char *sub);

#endif
