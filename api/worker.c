/*
 * worker.c - one capture worker's pipeline (worker.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api/worker.h"
#include "capture/decode.h"
#include "common/fv.h"

#define COMMIT_EVERY_NS	   (1000ull * 1000 * 1000)
#define COMMIT_PENDING_MAX (2u << 20)  /* ~20k flow records */
#define ASIDE_WAIT_BYTES   (64u << 20) /* a batch this large waits */
#define RETRY_NS	   (10ull * 1000 * 1000)

void fv_worker_free(struct fv_worker *w)
{
	fv_worker_stop_committer(w, 1);
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

	/* Blocks are reported in sequence order: once one of generation g
	 * is, every block of older generations has been. */
	if (fv_ref_gen(bi->ref) > w->reported_gen)
		w->reported_gen = fv_ref_gen(bi->ref);
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

	/* Done already, durably, by the committer (recycle_ahead). */
	if (__atomic_load_n(&w->recycled_upto, __ATOMIC_ACQUIRE) >= old_gen) {
		w->c.recycles++;
		w->c.recycled_ahead++;
		return 0;
	}

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

static void nap_ms(unsigned ms)
{
	struct timespec ts = {0, (long)ms * 1000 * 1000};

	nanosleep(&ts, NULL);
}

/* A block of each file of the aside batch, to sync each file once. */
struct files {
	fv_ref ref[16];
	unsigned n, more; /* more: some did not fit, sync each block's */
	uint32_t nsegments;
};

static int note_file(void *arg, fv_ref ref)
{
	struct files *f = arg;
	uint32_t idx = fv_ref_gen(ref) % f->nsegments;

	for (unsigned i = 0; i < f->n; i++)
		if (fv_ref_gen(f->ref[i]) % f->nsegments == idx)
			return 0;
	if (f->n == 16) {
		f->more = 1;
		return 1;
	}
	f->ref[f->n++] = ref;
	return 0;
}

static int sync_block(void *arg, fv_ref ref)
{
	return fv_ring_datasync(arg, ref);
}

/*
 * Commits the batch set aside, on the committer thread: waits until the
 * ring has written every block below need (the capture thread reaps),
 * makes the files of the batch's blocks durable, then one transaction
 * under the lock. Blocks of earlier batches were made durable before
 * those committed.
 */
static int commit_aside(struct fv_worker *w, uint64_t need)
{
	struct files f = {.nsegments = w->sh->conf.nsegments};
	int err;

	/* Naps of 1, 2, 4 then 8 ms: the capture thread reaps when a
	 * block fills or its poll times out (100 ms on a quiet link). */
	for (unsigned nap = 1; fv_ring_done_next(w->ring) < need;) {
		if (__atomic_load_n(&w->cabort, __ATOMIC_ACQUIRE))
			return -ECANCELED;
		nap_ms(nap);
		if (nap < 8)
			nap *= 2;
	}
	pthread_mutex_lock(&w->sh->commit_lock);
	fv_indexer_aside_blocks(w->idx, note_file, &f);
	pthread_mutex_unlock(&w->sh->commit_lock);
	err = 0;
	for (unsigned i = 0; i < f.n && !err; i++)
		err = fv_ring_datasync(w->ring, f.ref[i]);
	pthread_mutex_lock(&w->sh->commit_lock);
	if (!err && f.more)
		err = fv_indexer_aside_blocks(w->idx, sync_block, w->ring);
	if (!err)
		err = fv_indexer_commit_aside(w->idx);
	pthread_mutex_unlock(&w->sh->commit_lock);
	if (!err)
		__atomic_fetch_add(&w->c.commits, 1, __ATOMIC_RELAXED);
	return err;
}

/*
 * Drops from the index, in a transaction of its own, the blocks of the
 * generation the ring's next segment will overwrite (recycle_ahead): the
 * ring's on_recycle then finds it done.
 */
static int pre_recycle(struct fv_worker *w, uint32_t gen)
{
	struct fv_index_drop d;
	int err;

	pthread_mutex_lock(&w->sh->commit_lock);
	err = fv_indexer_recycle_indexed(w->idx, w->id, gen, &d);
	pthread_mutex_unlock(&w->sh->commit_lock);
	if (!err) {
		__atomic_fetch_add(&w->c.expired_packets, d.packets,
				   __ATOMIC_RELAXED);
		__atomic_store_n(&w->recycled_upto, gen, __ATOMIC_RELEASE);
	}
	return err;
}

/* One job of the committer, run without its lock: a recycle ahead
 * (pre) or the batch set aside. An error is kept for the capture thread
 * (sticky) and stops the committer. */
static int job(struct fv_worker *w, int pre, uint64_t arg)
{
	int err;

	pthread_mutex_unlock(&w->cmu);
	err = pre ? pre_recycle(w, (uint32_t)arg) : commit_aside(w, arg);
	pthread_mutex_lock(&w->cmu);
	if (err)
		__atomic_store_n(&w->commit_err, err, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&w->ccv);
	return err;
}

static void *committer_main(void *arg)
{
	struct fv_worker *w = arg;
	uint64_t need;

	pthread_mutex_lock(&w->cmu);
	for (;;) {
		while (!w->cstop && !fv_indexer_aside(w->idx, &need) &&
		       w->pre_gen <= w->recycled_upto)
			pthread_cond_wait(&w->ccv, &w->cmu);
		if (w->pre_gen > w->recycled_upto && !w->cabort) {
			if (job(w, 1, w->pre_gen))
				break;
			continue;
		}
		if (!fv_indexer_aside(w->idx, &need))
			break; /* stopped, nothing left */
		if (job(w, 0, need))
			break;
	}
	pthread_mutex_unlock(&w->cmu);
	return NULL;
}

/* Waits, reaping the ring, until the committer has taken the batch set
 * aside (or failed). */
static int wait_slot(struct fv_worker *w)
{
	uint64_t need;
	int err;

	while (fv_indexer_aside(w->idx, &need)) {
		err = __atomic_load_n(&w->commit_err, __ATOMIC_ACQUIRE);
		if (err)
			return err;
		err = fv_ring_poll(w->ring);
		if (err)
			return err;
		if (fv_ring_done_next(w->ring) < need) {
			nap_ms(1);
			continue;
		}
		pthread_mutex_lock(&w->cmu);
		if (fv_indexer_aside(w->idx, &need) && !w->commit_err) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 1000 * 1000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&w->ccv, &w->cmu, &ts);
		}
		pthread_mutex_unlock(&w->cmu);
	}
	return __atomic_load_n(&w->commit_err, __ATOMIC_ACQUIRE);
}

void fv_worker_stop_committer(struct fv_worker *w, int abort)
{
	if (!w->has_committer)
		return;
	if (!abort && w->ring && wait_slot(w))
		abort = 1;
	pthread_mutex_lock(&w->cmu);
	w->cstop = 1;
	if (abort)
		__atomic_store_n(&w->cabort, 1, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&w->ccv);
	pthread_mutex_unlock(&w->cmu);
	pthread_join(w->committer, NULL);
	pthread_cond_destroy(&w->ccv);
	pthread_mutex_destroy(&w->cmu);
	w->has_committer = 0;
}

static int start_committer(struct fv_worker *w)
{
	int err;

	pthread_mutex_init(&w->cmu, NULL);
	pthread_cond_init(&w->ccv, NULL);
	err = pthread_create(&w->committer, NULL, committer_main, w);
	if (err) {
		pthread_cond_destroy(&w->ccv);
		pthread_mutex_destroy(&w->cmu);
		return -err;
	}
	{
		char name[16];

		snprintf(name, sizeof(name), "fv-commit%u", w->id);
		pthread_setname_np(w->committer, name);
	}
	w->has_committer = 1;
	return 0;
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
	ro.register_at_open = sh->async_commit; /* record */
	ro.compress_level = sh->compress_level;
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
	if (sh->async_commit) {
		err = start_committer(w);
		if (err)
			goto out_free;
	}
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
	/* Room first: a packet the ring cannot take (a full disk) is not
	 * counted in its flow either. */
	err = fv_ring_reserve(w->ring, caplen);
	if (err)
		return err;
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
	if (now_mono < w->retry_at)
		return 0;
	return now_mono - w->last_commit >= COMMIT_EVERY_NS ||
	       fv_indexer_pending(w->idx) > COMMIT_PENDING_MAX;
}

/* The closed flows and the counters since the last commit, into the
 * batch. */
static int prepare(struct fv_worker *w)
{
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
	return 0;
}

int fv_worker_commit(struct fv_worker *w)
{
	struct fv_worker_shared *sh = w->sh;
	int err;

	if (w->has_committer) {
		err = wait_slot(w);
		if (err)
			return err;
	}
	err = prepare(w);
	if (err)
		return err;
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
		__atomic_fetch_add(&w->c.commits, 1, __ATOMIC_RELAXED);
		w->dirty = 0;
	}
	return err;
}

/*
 * Asks the committer to recycle, in the index, the generation the ring's
 * next segment will overwrite (gen + 1 - nsegments, the ring filling
 * gen), as soon as the current batch holds none of its blocks; called
 * while no batch is aside, so no batch does. The ring's own recycle then
 * finds it done (on_recycle) instead of committing on this thread. The
 * packets of that generation leave the index a segment early: the ring
 * keeps nsegments - 1 segments reachable, not nsegments. Rings of fewer
 * than 3 segments recycle on the capture thread as before.
 */
static void recycle_ahead(struct fv_worker *w)
{
	uint32_t n = w->sh->conf.nsegments;
	uint32_t g = fv_ref_gen(fv_ring_current(w->ring)), x;

	if (n < 3 || g + 1 <= n)
		return;
	x = g + 1 - n;
	/* Every block of x reported (none still being written, to be
	 * reported later) and none of them pending in the batch. */
	if (x <= w->pre_gen || w->reported_gen <= x ||
	    fv_indexer_pending_upto(w->idx, w->id, x))
		return;
	pthread_mutex_lock(&w->cmu);
	w->pre_gen = x;
	pthread_cond_broadcast(&w->ccv);
	pthread_mutex_unlock(&w->cmu);
}

int fv_worker_commit_async(struct fv_worker *w)
{
	uint64_t need;
	int err;

	if (!w->has_committer)
		return fv_worker_commit(w);
	err = __atomic_load_n(&w->commit_err, __ATOMIC_ACQUIRE);
	if (err)
		return err;
	if (fv_indexer_aside(w->idx, &need)) {
		if (fv_indexer_pending(w->idx) < ASIDE_WAIT_BYTES) {
			w->retry_at = fv_now_mono_ns() + RETRY_NS;
			return 0;
		}
		err = wait_slot(w);
		if (err)
			return err;
	}
	recycle_ahead(w);
	err = prepare(w);
	if (!err)
		err = fv_ring_flush(w->ring, &need);
	if (err)
		return err;
	pthread_mutex_lock(&w->cmu);
	err = fv_indexer_set_aside(
		w->idx, __atomic_load_n(&w->sh->next_id, __ATOMIC_RELAXED),
		need);
	pthread_cond_broadcast(&w->ccv);
	pthread_mutex_unlock(&w->cmu);
	w->last_commit = fv_now_mono_ns();
	w->retry_at = 0;
	if (!err)
		w->dirty = 0;
	return err;
}

int fv_worker_poll(struct fv_worker *w)
{
	return fv_ring_poll(w->ring);
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
	fv_worker_stop_committer(w, err != 0);
	if (w->ring) {
		int e = fv_ring_close(w->ring);

		w->ring = NULL;
		if (!err)
			err = e;
	}
	fv_worker_free(w);
	return err;
}
