/*
 * index.h - the flow index: one LMDB environment per store (STORE/index).
 *
 * Databases (docs/format.md has the key and value layouts):
 *   meta     settings, counters, interfaces, the flow-id high-water mark
 *   flows    flow id (BE64) -> flow record (struct fv_flow, versioned,
 *            compact) + places part 0 when it came with the record
 *   places   flow id (BE64) + part (BE32) -> encoded packet places (the
 *            parts not kept in the flows value)
 *   timemap  flow id >> 10 (BE64) -> the first_ns range of the bucket's
 *            flows: where flows are in time, one entry per 1024 flows
 *   bykey    family + address, or 'p' + port (BE16) -> sorted dups of
 *            flow ids (BE64)
 *   blocks   ref (BE64) -> block info (time range, count, length), for
 *            the blocks still on disk: a recycled generation's entries
 *            are deleted before its segment is overwritten
 *            (fv_index_drop_blocks), and meta keeps each worker's
 *            retention start (fv_index_set_packets_from)
 *
 * The bykey entries and timemap buckets of a write txn are queued and
 * written at commit, sorted, so that most land at the end (appended:
 * full pages). A new index gets its databases in its first write txn;
 * until that commits, reads answer "nothing".
 *
 * One writer at a time (the process that records or imports; LMDB's own
 * writer lock keeps others out); readers run alongside it without
 * blocking. Writes happen inside fv_index_begin()/fv_index_commit(); the
 * caller commits only after the packets the batch points at are durable
 * (fv_ring_sync), so the index never points at bytes not on disk.
 */
#ifndef FV_INDEX_INDEX_H
#define FV_INDEX_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "capture/flow.h"
#include "storage/storage.h"

struct fv_index;
struct fv_filter;

enum fv_index_flag {
	FV_INDEX_RDONLY = 1 << 0,
	FV_INDEX_CREATE = 1 << 1,
};

/* Opens (or with FV_INDEX_CREATE creates) the environment in dir.
 * map_size is the LMDB map size (0: 64 GiB of address space for a
 * writer; a reader takes the largest size a writer recorded). */
int fv_index_open(struct fv_index **out, const char *dir, unsigned flags,
		  uint64_t map_size);
void fv_index_close(struct fv_index *ix);

/*
 * Caps the index directory (data.mdb, lock.mdb and the directory entry
 * itself) at cap bytes (0: no cap): the writer's LMDB map becomes what
 * lock.mdb and the directory leave of it, in whole pages, so data.mdb
 * cannot grow past it. A write that finds no page left fails with
 * FV_EFULL (abort the txn; make room with fv_index_expire_flows in a
 * txn of its own). LMDB never maps less than the pages in use: a file
 * already past the cap keeps its size and grows no further. Not inside
 * a write txn (-EBUSY); readers of this handle wait while the map is
 * replaced, and it waits at most 2 s for their reads to end (-ETIMEDOUT).
 * -EINVAL: cap is below 64 pages plus lock.mdb; -EROFS: a read-only
 * open. A reader (another process) keeps the map it opened with: the
 * size the store recorded, which LMDB only ever raises.
 */
int fv_index_set_cap(struct fv_index *ix, uint64_t cap);

/* Text of the last LMDB failure seen on ix ("" if none), for a caller to
 * show next to fv_strerror(). Owned by ix; overwritten by the next
 * failure (from any thread) and freed by fv_index_close(). */
const char *fv_index_last_error(const struct fv_index *ix);

/* ---- writing (one thread) ---- */
int fv_index_begin(struct fv_index *ix);
int fv_index_commit(struct fv_index *ix);
void fv_index_abort(struct fv_index *ix);

/* Inserts or replaces a flow record and its secondary keys. */
int fv_index_put_flow(struct fv_index *ix, const struct fv_flow *f);
int fv_index_put_places(struct fv_index *ix, uint64_t flow_id, uint32_t part,
			const uint8_t *enc, uint32_t len);
int fv_index_put_block(struct fv_index *ix, const struct fv_block_info *bi);
/* Deletes the entry of one block (fsck --repair: its bytes are gone or
 * damaged); absent is not an error. */
int fv_index_del_block(struct fv_index *ix, fv_ref ref);

/*
 * The recycle step (docs/format.md "Recycling a segment"): inside the
 * write txn, deletes every blocks entry of worker whose generation is
 * <= gen (the fill about to be overwritten, and any older one left
 * behind) and says what it dropped and which block of the worker is
 * now the oldest in the index. Returns 0 or an error (abort the txn).
 */
struct fv_index_drop {
	uint64_t blocks, packets; /* dropped */
	uint64_t last_ns;	  /* largest last_ns dropped (0: none) */
	int have_next;		  /* next is the worker's oldest block left */
	struct fv_block_info next;
};
int fv_index_drop_blocks(struct fv_index *ix, unsigned worker, uint32_t gen,
			 struct fv_index_drop *d);

/*
 * Moves worker's packet retention start forward (never back), inside the
 * write txn: meta "wNN.packets_from_ns" = from_ns (the first_ns of the
 * worker's oldest block still on disk), "wNN.packets_from_gen" =
 * from_gen (the oldest generation still on disk), and the store-wide
 * "packets_from_ns" = the largest of every worker's: from then on every
 * worker's packets are complete.
 */
int fv_index_set_packets_from(struct fv_index *ix, unsigned worker,
			      uint64_t from_ns, uint32_t from_gen);

/*
 * Flow retention, inside the write txn: deletes flow records (with their
 * bykey entries and places), oldest timemap bucket first: the flows that
 * ended before before_ns (0: none by time), and, when the index's live
 * pages (every page of its databases as this txn leaves them, free pages
 * not counted) take more than max_live bytes (0: no bound), whole
 * buckets until they would take max_live - max_live / 8 (estimated from
 * the average record). Reads at most max_buckets buckets' worth of
 * records (1024 each); a bucket whose flows did not all go (a long flow
 * still running) is read again, what is left of it, at the next call. A
 * bucket left empty leaves the timemap. Adds the deleted flows to meta
 * "flows_expired" and moves meta "flows_from_ns" (flow records are
 * complete from then on: one past the largest last_ns deleted) forward.
 * The txn's queued host/port keys are written first.
 */
struct fv_index_expiry {
	uint64_t flows, buckets; /* deleted */
	uint64_t from_ns;	 /* one past the largest last_ns deleted */
	uint64_t live_bytes;	 /* measured before (max_live given) */
};
int fv_index_expire_flows(struct fv_index *ix, uint64_t before_ns,
			  uint64_t max_live, unsigned max_buckets,
			  struct fv_index_expiry *e);

/* meta: small named values (counters, settings). */
int fv_index_put_meta(struct fv_index *ix, const char *name, const void *val,
		      size_t len);
int fv_index_put_u64(struct fv_index *ix, const char *name, uint64_t v);
/* Adds delta to a u64 counter in meta (inside the write txn). */
int fv_index_add_u64(struct fv_index *ix, const char *name, uint64_t delta);

/* ---- reading (any thread; each call runs its own read txn) ---- */
int fv_index_get_meta(struct fv_index *ix, const char *name, void *val,
		      size_t cap, size_t *len);
int fv_index_get_u64(struct fv_index *ix, const char *name, uint64_t *v);
int fv_index_get_flow(struct fv_index *ix, uint64_t id, struct fv_flow *f);

/*
 * The packet retention start of every worker and of the store, read in
 * one txn (0: that worker never recycled a segment, it holds everything
 * it stored). A packet of worker w older than from_ns[w], or in a block
 * of a generation below from_gen[w], is gone.
 */
#define FV_INDEX_WORKERS 256
struct fv_retention {
	uint64_t packets_from_ns; /* store-wide: every worker complete */
	uint64_t from_ns[FV_INDEX_WORKERS];
	uint32_t from_gen[FV_INDEX_WORKERS];
};
int fv_index_retention(struct fv_index *ix, struct fv_retention *rt);

/* Whether a flow's packets are still stored, judged by its times against
 * its worker's retention start: all (first_ns >= from), none (last_ns <
 * from), or some. */
enum fv_avail { FV_AVAIL_YES, FV_AVAIL_PARTIAL, FV_AVAIL_EXPIRED };
enum fv_avail fv_retention_flow(const struct fv_retention *rt,
				const struct fv_flow *f);
/* "yes", "partial", "expired" (static strings). */
const char *fv_avail_name(enum fv_avail a);

/* The flow time range: the smallest first_ns (from timemap) and the largest
 * last_ns of every flow (meta "flows_last_ns"). FV_ENOTFOUND: no flow. */
int fv_index_flow_range(struct fv_index *ix, uint64_t *first_ns,
			uint64_t *last_ns);

/* Calls cb for each run of the flow's places, in capture order: count
 * records in block ref, the first at byte offset off of the block. */
int fv_index_places(struct fv_index *ix, uint64_t flow_id,
		    int (*cb)(void *arg, fv_ref ref, uint32_t count,
			      uint32_t off),
		    void *arg);

/*
 * Calls cb for each flow that overlaps [since, until] (ns, inclusive;
 * 0 and UINT64_MAX for open ends) and matches filter (NULL: all), in
 * order of first_ns. Uses the host/port keys when the filter's plan
 * allows. cb returns 0 to go on, 1 to stop (not an error), or < 0.
 * Each timemap bucket is read in a snapshot of its own and cb runs
 * outside any (with a copy): a slow cb (output into a pager) keeps no
 * snapshot, so the writer can reuse the pages it frees meanwhile.
 */
int fv_index_query(struct fv_index *ix, uint64_t since, uint64_t until,
		   const struct fv_filter *filter,
		   int (*cb)(void *arg, const struct fv_flow *f), void *arg);

/* Calls cb for each block whose time range overlaps [since, until], in
 * ref order (per worker, capture order). */
int fv_index_blocks(struct fv_index *ix, uint64_t since, uint64_t until,
		    int (*cb)(void *arg, const struct fv_block_info *bi),
		    void *arg);

struct fv_index_stats {
	uint64_t flows;
	uint64_t places;
	uint64_t blocks;
	uint64_t file_bytes;  /* data.mdb size on disk */
	uint64_t used_bytes;  /* pages up to the last one used * page size */
	uint64_t free_bytes;  /* of which on LMDB's free list */
	uint64_t freed_bytes; /* of which the last commit freed */
	uint64_t map_bytes;   /* this handle's map (a capped writer's: cap) */
};
int fv_index_stats(struct fv_index *ix, struct fv_index_stats *st);

/*
 * Encode/decode a flow record to its on-disk bytes (versioned, variable
 * length, at most FV_FLOW_REC_MAX; docs/format.md "flows"). encode returns
 * the length. The id is the record's key, not part of the bytes: decode
 * leaves f->id 0. decode refuses another version (FV_EVERSION) and any
 * byte out of place: cut short, overlong varints, trailing bytes
 * (FV_EFORMAT).
 */
#define FV_FLOW_REC_VERSION 2
#define FV_FLOW_REC_MAX	    128
size_t fv_flow_encode(const struct fv_flow *f, uint8_t out[FV_FLOW_REC_MAX]);
int fv_flow_decode(const uint8_t *p, size_t len, struct fv_flow *f);

#endif
