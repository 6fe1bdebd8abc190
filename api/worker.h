/*
 * worker.h - one capture worker's pipeline, shared by import and record:
 * frame -> decode -> flow table -> segment ring (chained to the flow's
 * previous record) -> place -> indexer batch, and the commit that makes a
 * batch durable and visible.
 *
 * Each worker owns its flow table, its segment ring (worker number w)
 * and its indexer batch; the workers of one store share the index, the
 * next flow id (atomic) and a commit lock. A worker commits its own batch
 * (ring sync, then one LMDB write transaction under the lock), so a kill
 * at any moment leaves an index that points only at durable blocks. With
 * sh->async_commit a committer thread of the worker does the waiting and
 * the transaction (fv_worker_commit_async; docs/architecture.md).
 *
 * A worker is used by one thread (and its committer).
 */
#ifndef FV_API_WORKER_H
#define FV_API_WORKER_H

#include <pthread.h>
#include <stdint.h>

#include "capture/flow.h"
#include "index/index.h"
#include "index/indexer.h"
#include "storage/storage.h"
#include "storage/store.h"

/* What the workers of one store share. */
struct fv_worker_shared {
	const char *store;
	struct fv_store_conf conf;
	struct fv_index *ix;
	uint64_t next_id; /* atomically incremented by the flow tables */
	pthread_mutex_t commit_lock;
	struct fv_flow_opts flow_opts; /* .worker is set per worker */
	/* Flow retention (fv_indexer_set_retention): records that ended
	 * this long before the newest packet go (0: none by age); the
	 * index's share of the budget bounds it by size. The age is kept
	 * in meta "flow_retention_ns" when set (flow_retention_set). */
	uint64_t flow_retention_ns, index_max_bytes;
	int flow_retention_set;
	/* Each worker gets a committer thread (record): the capture thread
	 * sets batches aside (fv_worker_commit_async) and never waits for
	 * the disk. */
	int async_commit;
	/* --compress: the zstd level of every block written, 0 for none. */
	int compress_level;
};

/* Cumulative counters of one worker (read by the owner thread). */
struct fv_worker_counters {
	uint64_t packets;
	uint64_t bytes;	       /* origlen */
	uint64_t stored_bytes; /* caplen */
	uint64_t commits;
	uint64_t recycles;   /* segments recycled (index entries dropped) */
	uint64_t recycle_ns; /* time spent in those recycle commits */
	uint64_t expired_packets; /* packets whose blocks were dropped */
	uint64_t recycled_ahead;  /* of the recycles, done by the committer */
};

struct fv_worker {
	struct fv_worker_shared *sh;
	unsigned id;
	struct fv_ring *ring;
	struct fv_flow_table *flows;
	struct fv_indexer *idx;
	struct fv_flow_stats last_st; /* at the last commit */
	struct fv_ingest_counters delta;
	struct fv_worker_counters c;
	uint64_t max_ts;
	uint64_t next_expire;
	uint64_t last_commit; /* monotonic ns */
	uint64_t retry_at;    /* monotonic ns: the aside slot was busy */
	uint8_t dirty;	      /* something to commit */
	/* the committer thread (sh->async_commit) */
	pthread_t committer;
	pthread_mutex_t cmu;
	pthread_cond_t ccv; /* a batch set aside, a slot freed, or stop */
	int has_committer;
	int cstop, cabort; /* cabort: give up a batch set aside */
	int commit_err;	   /* the committer's error (sticky) */
	/* Recycling ahead: the committer drops the index entries of the
	 * generation the ring's next segment will overwrite while the
	 * current one fills (pre_gen: asked; recycled_upto: done, durably,
	 * atomic), so the capture thread does not wait for that commit. */
	uint32_t pre_gen, recycled_upto;
	uint32_t reported_gen; /* of the last block the ring reported */
};

/* Opens worker id's ring, flow table and batch. Returns 0 or an error
 * (the worker is then closed). */
int fv_worker_open(struct fv_worker *w, struct fv_worker_shared *sh,
		   unsigned id);

/*
 * Stores one frame of interface iface (store-wide number) and link type
 * linktype, captured at ts_ns. caplen is cut to FV_MAX_FRAME. Flows are
 * expired by packet time once a second of it. Returns 0 or an error (the
 * ring's errors are sticky).
 */
int fv_worker_packet(struct fv_worker *w, int linktype, uint16_t iface,
		     uint64_t ts_ns, uint32_t caplen, uint32_t origlen,
		     const uint8_t *data);

/* Expires flows idle as of now_ns (a live capture on a quiet link calls
 * it with the clock). */
int fv_worker_expire(struct fv_worker *w, uint64_t now_ns);

/*
 * Makes everything stored so far durable and indexed: flows that closed
 * since the last commit are written (so a finished flow is listed at the
 * next commit, not after its linger), the ring is synced, and the batch
 * goes into one transaction under the shared lock, with the counters and
 * next_flow_id. Returns 0 or an error.
 */
int fv_worker_commit(struct fv_worker *w);

/*
 * The same without waiting for the disk, with a committer thread
 * (sh->async_commit): the closed flows and counters are written to the
 * batch, the open block is sealed and its write queued, and the batch is
 * set aside for the committer, which waits for the ring's writes, makes
 * them durable, and commits it under the lock. While it still holds the
 * last batch this one goes on growing (and is set aside at the next
 * call); only a batch past 64 MiB waits for it. Returns 0 or an error
 * (also the committer's).
 */
int fv_worker_commit_async(struct fv_worker *w);
/* Reaps the ring's completed writes (on a quiet link nothing else does,
 * and the committer waits for them). Returns 0 or an error. */
int fv_worker_poll(struct fv_worker *w);
/* Stops the committer thread, after the batch set aside is committed
 * (abort: given up). Idempotent; before the ring is closed. */
void fv_worker_stop_committer(struct fv_worker *w, int abort);
/* True when a second has passed since the last commit or the batch is
 * large. */
int fv_worker_commit_due(const struct fv_worker *w, uint64_t now_mono);

/* Ends every open flow with reason, commits, and frees the worker.
 * Returns the first error met, or 0. */
int fv_worker_close(struct fv_worker *w, enum fv_flow_end reason);

/* Frees without flushing (after an error). */
void fv_worker_free(struct fv_worker *w);

#endif
