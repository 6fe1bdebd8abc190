/*
 * worker.c - one capture worker's pipeline (worker.h).
 */
#include <errno.h>
#include <string.h>

#include "api/worker.h"
#include "capture/decode.h"
#include "common/fv.h"

#define COMMIT_EVERY_NS	   (1000ull * 1000 * 1000)
#define COMMIT_PENDING_MAX (2u << 20) /* ~20k flow records */

void fv_worker_free(struct fv_worker *w)
{
	if (w->ring)
		fv_ring_close(w->ring);
	fv_flow_table_free(w->flows);
	fv_indexer_free(w->idx);
	w->ring = NULL;
	w->flows = NULL;
	w->idx = NULL;
}

/* The ring's on_sealed: the block goes into this worker's batch. */
static void on_sealed(void *arg, const struct fv_block_info *bi)
{
	struct fv_worker *w = arg;

	fv_indexer_on_sealed(w->idx, bi);
}

/*
 * The ring's on_recycle, on this worker's thread in the middle of
 * fv_ring_append, before the segment that held old_gen is overwritten:
 * one small LMDB transaction of its own, under the store's commit lock,
 * drops the blocks of old_gen (indexed or still in the batch) and moves
 * the worker's retention start; it is committed (fsync) before the ring
 * writes a byte into the file, so the index never lists packets that are
 * gone, after a crash too. An error stops the ring (sticky).
 */
static int on_recycle(void *arg, unsigned worker, uint32_t old_gen)
{
	struct fv_worker *w = arg;
	struct fv_index_drop d;
	uint64_t t0 = fv_now_mono_ns();
	int err;

	pthread_mutex_lock(&w->sh->commit_lock);
	err = fv_indexer_recycle(w->idx, worker, old_gen, &d);
	pthread_mutex_unlock(&w->sh->commit_lock);
	if (!err) {
		w->c.recycles++;
		w->c.recycle_ns += fv_now_mono_ns() - t0;
		w->c.expired_packets += d.packets;
	}
	return err;
}

int fv_worker_open(struct fv_worker *w, struct fv_worker_shared *sh,
		   unsigned id)
{
	struct fv_ring_opts ro = {0};
	struct fv_flow_opts fo = sh->flow_opts;
	struct fv_flow_sink sink;
	char path[4096];
	int err;

	memset(w, 0, sizeof(*w));
	w->sh = sh;
	w->id = id;
	err = fv_indexer_new(&w->idx, sh->ix);
	if (err)
		goto out_free;
	ro.dir = fv_store_path(path, sizeof(path), sh->store, "segments");
	ro.worker = id;
	ro.segment_size = sh->conf.segment_size;
	ro.nsegments = sh->conf.nsegments;
	ro.block_size = sh->conf.block_size;
	ro.queue_depth = 8;
	ro.on_sealed = on_sealed;
	ro.on_recycle = on_recycle;
	ro.arg = w;
	err = fv_ring_open(&w->ring, &ro);
	if (err)
		goto out_free;
	fv_indexer_sink(w->idx, &sink);
	fv_indexer_set_retention(w->idx, sh->flow_retention_ns,
				 sh->index_max_bytes);
	if (sh->flow_retention_set && id == 0)
		err = fv_indexer_set_u64(w->idx, "flow_retention_ns",
					 sh->flow_retention_ns);
	if (err)
		goto out_free;
	fo.worker = (uint8_t)id;
	err = fv_flow_table_new(&w->flows, &fo, &sh->next_id, &sink);
	if (err)
		goto out_free;
	w->last_commit = fv_now_mono_ns();
	return 0;
out_free:
	fv_worker_free(w);
	return err;
}

int fv_worker_packet(struct fv_worker *w, int linktype, uint16_t iface,
		     uint64_t ts_ns, uint32_t caplen, uint32_t origlen,
		     const uint8_t *data)
{
	struct fv_pkt pkt;
	struct fv_rec rec;
	struct fv_place pl;
	uint64_t id;
	int err;

	if (caplen > FV_MAX_FRAME)
		caplen = FV_MAX_FRAME;
	fv_decode(linktype, data, caplen, &pkt);
	err = fv_flow_packet(w->flows, &pkt, ts_ns, origlen, iface, &id);
	if (err)
		return err;
	rec.ts_ns = ts_ns;
	rec.flow_id = id;
	rec.caplen = caplen;
	rec.origlen = origlen;
	rec.iface = iface;
	rec.flags = pkt.key.family ? 0 : FV_REC_UNDECODED;
	fv_flow_last_place(w->flows, id, &pl.ref, &pl.off);
	err = fv_ring_append(w->ring, &rec, data, &pl);
	if (err)
		return err;
	err = fv_flow_place(w->flows, id, pl.ref, pl.off);
	if (err)
		return err;
	w->dirty = 1;
	w->c.packets++;
	w->c.bytes += origlen;
	w->c.stored_bytes += caplen;
	w->delta.packets++;
	w->delta.bytes += origlen;
	w->delta.stored_bytes += caplen;
	if (ts_ns > w->max_ts)
		w->max_ts = ts_ns;
	if (w->max_ts >= w->next_expire) {
		err = fv_flow_expire(w->flows, w->max_ts);
		if (err)
			return err;
		w->next_expire = w->max_ts + FV_NSEC_PER_SEC;
	}
	return 0;
}

int fv_worker_expire(struct fv_worker *w, uint64_t now_ns)
{
	struct fv_flow_stats st;
	int err;

	fv_flow_get_stats(w->flows, &st);
	err = fv_flow_expire(w->flows, now_ns);
	if (!err && st.flows_ended != w->last_st.flows_ended)
		w->dirty = 1;
	return err;
}

int fv_worker_commit_due(const struct fv_worker *w, uint64_t now_mono)
{
	return now_mono - w->last_commit >= COMMIT_EVERY_NS ||
	       fv_indexer_pending(w->idx) > COMMIT_PENDING_MAX;
}

int fv_worker_commit(struct fv_worker *w)
{
	struct fv_worker_shared *sh = w->sh;
	struct fv_flow_stats st;
	int err;

	err = fv_flow_publish_closing(w->flows);
	if (err)
		return err;
	fv_flow_get_stats(w->flows, &st);
	w->delta.undecoded = st.undecoded - w->last_st.undecoded;
	w->delta.overflow = st.overflow - w->last_st.overflow;
	w->delta.frag_unmatched =
		st.fragments_unmatched - w->last_st.fragments_unmatched;
	fv_indexer_count(w->idx, &w->delta);
	memset(&w->delta, 0, sizeof(w->delta));
	w->last_st = st;
	/* The ring is this thread's: sync it outside the lock. */
	err = fv_ring_sync(w->ring);
	if (err)
		return err;
	pthread_mutex_lock(&sh->commit_lock);
	err = fv_indexer_commit(
		w->idx, &w->ring, 1,
		__atomic_load_n(&sh->next_id, __ATOMIC_RELAXED));
	pthread_mutex_unlock(&sh->commit_lock);
	w->last_commit = fv_now_mono_ns();
	if (!err) {
		w->c.commits++;
		w->dirty = 0;
	}
	return err;
}

int fv_worker_close(struct fv_worker *w, enum fv_flow_end reason)
{
	int err = 0, n;

	/* A chunk of the open flows per commit (the last one holds less
	 * than a chunk). */
	do {
		n = fv_flow_flush_some(w->flows, reason, FV_FLOW_FLUSH_CHUNK);
		err = n < 0 ? n : fv_worker_commit(w);
	} while (!err && n >= (int)FV_FLOW_FLUSH_CHUNK);
	if (w->ring) {
		int e = fv_ring_close(w->ring);

		w->ring = NULL;
		if (!err)
			err = e;
	}
	fv_worker_free(w);
	return err;
}
