/*
 * indexer.h - batches what the flow tables and segment rings report and
 * writes it to the index in one LMDB transaction per commit.
 *
 * Order that keeps the index honest: fv_indexer_commit() first syncs every
 * ring (so every block a pending place points at is durable), then writes
 * the pending flow records, places and block infos, then commits. A crash
 * before the commit loses the batch, never points the index at bytes that
 * are not on disk.
 *
 * The indexer is the flow tables' sink (fv_indexer_sink) and the rings'
 * on_sealed callback (fv_indexer_on_sealed). One thread uses it, and a
 * committer thread the batch it sets aside (fv_indexer_set_aside).
 */
#ifndef FV_INDEX_INDEXER_H
#define FV_INDEX_INDEXER_H

#include <stddef.h>
#include <stdint.h>

#include "capture/flow.h"
#include "index/index.h"
#include "storage/storage.h"

struct fv_indexer;

/* Counters added to the index meta at each commit (deltas). */
struct fv_ingest_counters {
	uint64_t packets;
	uint64_t bytes;	       /* origlen */
	uint64_t stored_bytes; /* caplen */
	/* blocks sealed: bytes they would take uncompressed, and take */
	uint64_t block_raw_bytes, block_disk_bytes;
	uint64_t undecoded;
	uint64_t overflow;
	uint64_t frag_unmatched;
	uint64_t kernel_drops; /* live capture: see capture/source.h */
	uint64_t if_drops;
	uint64_t nombuf;
};

int fv_indexer_new(struct fv_indexer **out, struct fv_index *ix);
void fv_indexer_free(struct fv_indexer *x);

/* A struct fv_flow_sink that feeds this indexer. */
void fv_indexer_sink(struct fv_indexer *x, struct fv_flow_sink *sink);

/* The rings' on_sealed callback (arg = the indexer). */
void fv_indexer_on_sealed(void *arg, const struct fv_block_info *bi);

/*
 * Flow retention at each commit (fv_index_expire_flows): flow records
 * that ended flow_retention_ns before the newest packet stored go (0:
 * kept as long as the index has room). index_max_bytes (0: none) caps the
 * index directory (fv_index_set_cap): the oldest records go while the
 * live pages exceed 40% of it (the rest is for LMDB's copy-on-write;
 * less for a while after the cap was reached); a commit is cut into
 * transactions of at most 4096 flows; and when one finds the cap reached
 * anyway (FV_EFULL), the oldest records make room (a bucket of 1024 ids
 * in a transaction of their own; meta "index_full" counts it) and it is
 * tried again, smaller. Call it before the first commit, outside any
 * transaction; a failure to set the cap is the next commit's error.
 */
void fv_indexer_set_retention(struct fv_indexer *x, uint64_t flow_retention_ns,
			      uint64_t index_max_bytes);

/* Bytes waiting for the next commit. */
size_t fv_indexer_pending(const struct fv_indexer *x);

/* Adds to the counters written with the next commit. */
void fv_indexer_count(struct fv_indexer *x, const struct fv_ingest_counters *c);

/* Sets meta name (at most 64 bytes) to val (at most 4096 bytes), or to
 * v as a u64 LE, in the next commit, before its flows (the interface
 * table, per-worker capture counters such as "w00.kernel_drops").
 * Returns 0 or -errno. */
int fv_indexer_set_meta(struct fv_indexer *x, const char *name, const void *val,
			size_t len);
int fv_indexer_set_u64(struct fv_indexer *x, const char *name, uint64_t v);

/*
 * The recycle step of worker's ring, called before the segment that held
 * generation gen is overwritten (the ring's on_recycle): in one LMDB
 * transaction of its own, committed (fsync) before it returns, drops the
 * blocks of generations <= gen of that worker from the index and sets
 * the worker's retention start (fv_index_set_packets_from: the first_ns
 * of its oldest block left, in the index or in this batch). The batch's
 * own pending blocks of those generations are dropped too and never
 * written. Flow records and places stay. *out (if not NULL) says what
 * was dropped. The caller holds the store's commit lock. Returns 0 or
 * an error (the index is then unchanged, but for flow records expired
 * to make room under a cap).
 */
int fv_indexer_recycle(struct fv_indexer *x, unsigned worker, uint32_t gen,
		       struct fv_index_drop *out);

/*
 * The same ahead of time, from a committer thread: only the index's
 * entries, the batches untouched, so it is for a generation none of whose
 * blocks is pending (fv_indexer_pending_upto, asked by the owner while no
 * batch is aside, says so for the current batch). The caller holds the
 * commit lock.
 */
int fv_indexer_recycle_indexed(struct fv_indexer *x, unsigned worker,
			       uint32_t gen, struct fv_index_drop *out);
/* True when the current batch holds a block of worker of generation
 * <= gen. The owner's. */
int fv_indexer_pending_upto(const struct fv_indexer *x, unsigned worker,
			    uint32_t gen);

/*
 * Syncs rings[0..n), then writes everything pending and the counters in
 * one transaction, plus meta "next_flow_id" = next_id (under a cap, in
 * several: the first holds the blocks, meta items and counters, each
 * next_flow_id). Returns 0 or an error; after an error what the batch
 * holds and is not in the index yet is kept for a retry (FV_EFULL: the
 * cap is reached and no flow record is left to make room with, or room
 * could not be made in 16 tries). -EBUSY while a batch is set aside.
 */
int fv_indexer_commit(struct fv_indexer *x, struct fv_ring **rings, unsigned n,
		      uint64_t next_id);

/*
 * The same in two steps on two threads, so the capture thread never
 * waits for a disk (api/worker.c):
 *
 * - the owner sets the pending batch aside with next_id and need_next
 *   (fv_ring_flush: its places point only at blocks below it) and goes on
 *   filling a new one; -EBUSY while the last one is still aside. Blocks
 *   below need_next that the ring reports later join the aside batch.
 * - a committer, once fv_ring_done_next() >= need_next (fv_indexer_aside
 *   gives it), makes the files of the aside blocks durable
 *   (fv_indexer_aside_blocks lists them) and commits the batch with
 *   fv_indexer_commit_aside(); the slot is then free again. It holds the
 *   store's commit lock for both calls (fv_indexer_recycle, on the owner's
 *   thread under the same lock, drops recycled blocks from the aside batch
 *   too). After an error the batch stays aside.
 */
int fv_indexer_set_aside(struct fv_indexer *x, uint64_t next_id,
			 uint64_t need_next);
int fv_indexer_aside(const struct fv_indexer *x, uint64_t *need_next);
int fv_indexer_aside_blocks(const struct fv_indexer *x,
			    int (*cb)(void *arg, fv_ref ref), void *arg);
int fv_indexer_commit_aside(struct fv_indexer *x);

#endif
