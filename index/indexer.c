/*
 * indexer.c - the batch between flow tables/rings and LMDB (indexer.h).
 *
 * Pending items are appended to one growable byte arena as
 * [type u8][len u32][payload]; the arena is reused after each commit, so
 * steady state allocates nothing.
 *
 * At commit the items are written in key order, not in the order the
 * flows ended: blocks first (in arrival order: refs rise per ring), then
 * each flow's places and records by flow id, keeping their arrival order
 * within one id (a checkpoint before the final record; places part 0
 * just before its record, which lets the index keep it in the record's
 * value). LMDB appends keys past the end of a db into full pages.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/fv.h"
#include "index/indexer.h"

enum { ITEM_FLOW = 1, ITEM_PLACES, ITEM_BLOCK, ITEM_META, ITEM_DEAD };

/*
 * Under a cap (fv_indexer_set_retention): expiry by size holds the live
 * pages to LIVE_PCT% of the map (less for a while after the cap was
 * reached, not below LIVE_MIN_PCT%: learn()); a batch is written at most
 * TXN_FLOWS flows per transaction (halved after the cap was reached,
 * down to TXN_FLOWS_MIN, and doubled back after each commit); room is
 * made FULL_TRIES times at most for one transaction; the map leaves
 * RESERVE bytes of the cap to nudge() alone.
 */
#define LIVE_PCT      40
#define LIVE_MIN_PCT  20
#define TXN_FLOWS     4096
#define TXN_FLOWS_MIN 64
#define FULL_TRIES    16
#define RESERVE	      (64u << 10)

/* Where an item is in the arena and the key it is written in. */
struct item_ref {
	uint64_t id; /* flow id; 0 for a block (blocks go first) */
	size_t off;
};

/* What one commit writes: items, counters, and where it stands. */
struct batch {
	uint8_t *buf;
	size_t len, cap;
	struct fv_ingest_counters cnt;
	uint64_t batch_flows;
	uint64_t newest_ns; /* the newest packet time of a sealed block */
	uint64_t next_id;   /* aside: meta next_flow_id */
	uint64_t need_next; /* aside: the ring's blocks below it */
	int err; /* sticky error from a callback that cannot return one */
};

struct fv_indexer {
	struct fv_index *ix;
	struct batch cur;     /* what the capture thread adds to */
	struct batch aside;   /* set aside for a committer thread */
	int aside_full;	      /* atomic */
	struct item_ref *ord; /* the write order, reused across commits */
	size_t nord, ordcap;
	/* flow retention (fv_indexer_set_retention) */
	uint64_t flow_retention_ns, index_max_bytes;
	uint64_t max_live; /* expiry by size past it (0: none) */
	uint64_t map;	   /* the cap's LMDB map (0: no cap) */
};

static void nap_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000 * 1000};

	nanosleep(&ts, NULL);
}

int fv_indexer_new(struct fv_indexer **out, struct fv_index *ix)
{
	struct fv_indexer *x = calloc(1, sizeof(*x));

	if (!x)
		return -ENOMEM;
	x->ix = ix;
	*out = x;
	return 0;
}

void fv_indexer_free(struct fv_indexer *x)
{
	if (!x)
		return;
	free(x->cur.buf);
	free(x->aside.buf);
	free(x->ord);
	free(x);
}

static int push(struct batch *x, uint8_t type, const void *a, size_t alen,
		const void *b, size_t blen)
{
	size_t need = 5 + alen + blen;
	uint32_t l = (uint32_t)(alen + blen);

	if (x->len + need > x->cap) {
		size_t ncap = x->cap ? x->cap * 2 : 1 << 20;
		uint8_t *nb;

		while (ncap < x->len + need)
			ncap *= 2;
		nb = realloc(x->buf, ncap);
		if (!nb)
			return -ENOMEM;
		x->buf = nb;
		x->cap = ncap;
	}
	x->buf[x->len] = type;
	memcpy(x->buf + x->len + 1, &l, 4);
	memcpy(x->buf + x->len + 5, a, alen);
	if (blen)
		memcpy(x->buf + x->len + 5 + alen, b, blen);
	x->len += need;
	return 0;
}

static int on_record(void *arg, const struct fv_flow *f)
{
	struct fv_indexer *x = arg;

	x->cur.batch_flows++;
	return push(&x->cur, ITEM_FLOW, f, sizeof(*f), NULL, 0);
}

static int on_places(void *arg, uint64_t flow_id, uint32_t part,
		     const uint8_t *enc, uint32_t len)
{
	struct fv_indexer *x = arg;
	uint8_t hdr[12];

	memcpy(hdr, &flow_id, 8);
	memcpy(hdr + 8, &part, 4);
	return push(&x->cur, ITEM_PLACES, hdr, sizeof(hdr), enc, len);
}

void fv_indexer_on_sealed(void *arg, const struct fv_block_info *bi)
{
	struct fv_indexer *x = arg;
	struct batch *b = &x->cur;
	int err;

	/* A block sealed before the batch was set aside, whose write
	 * completed after: it belongs with the places that point at it.
	 * (The committer reads the aside batch only once the ring reports
	 * every block below need_next, so it is not reading it now.) */
	if (__atomic_load_n(&x->aside_full, __ATOMIC_ACQUIRE) &&
	    bi->seq < x->aside.need_next)
		b = &x->aside;
	err = push(b, ITEM_BLOCK, bi, sizeof(*bi), NULL, 0);
	b->cnt.block_raw_bytes += bi->raw_len;
	b->cnt.block_disk_bytes += bi->disk_len;
	if (bi->last_ns > b->newest_ns)
		b->newest_ns = bi->last_ns;
	if (bi->last_ns > x->cur.newest_ns)
		x->cur.newest_ns = bi->last_ns;
	if (err && !b->err)
		b->err = err;
}

void fv_indexer_sink(struct fv_indexer *x, struct fv_flow_sink *sink)
{
	sink->record = on_record;
	sink->places = on_places;
	sink->arg = x;
}

/*
 * The bound of the live pages under a cap. A transaction copies every
 * page it changes into a free one (or one past the end of the file, up
 * to the map), and the pages a commit frees (its copies' originals, the
 * pages of what it deleted) are reused only two commits later: the map
 * holds the live pages and about two commits' worth of copies. Host and
 * port keys are spread over the whole of bykey, so a commit of many
 * short flows copies most of it: measured, the live pages then fit with
 * their copies under LIVE_PCT% of the map. Each time the cap is reached
 * anyway the bound falls by a 32nd of the map (down to LIVE_MIN_PCT%);
 * each commit that fits brings it back up by a 1024th.
 */
static void learn(struct fv_indexer *x, int full)
{
	uint64_t lo = x->map / 100 * LIVE_MIN_PCT, hi = x->map / 100 * LIVE_PCT;

	if (full)
		x->max_live -= x->max_live > x->map / 32 ? x->map / 32 : 0;
	else
		x->max_live += x->map / 1024;
	if (x->max_live < lo)
		x->max_live = lo;
	if (x->max_live > hi)
		x->max_live = hi;
}

/* Sets the map: the cap less the reserve, or (whole) the cap. */
static int set_map(struct fv_indexer *x, int whole)
{
	uint64_t cap = x->index_max_bytes;

	return fv_index_set_cap(
		x->ix, whole || cap < 2 * RESERVE ? cap : cap - RESERVE);
}

void fv_indexer_set_retention(struct fv_indexer *x, uint64_t flow_retention_ns,
			      uint64_t index_max_bytes)
{
	struct fv_index_stats st;
	int err;

	x->flow_retention_ns = flow_retention_ns;
	x->index_max_bytes = index_max_bytes;
	x->max_live = 0;
	x->map = 0;
	if (!index_max_bytes)
		return;
	/* The share is the index's files' cap: LMDB's map. */
	err = set_map(x, 0);
	if (!err)
		err = fv_index_stats(x->ix, &st);
	if (err) {
		if (!x->cur.err)
			x->cur.err = err;
		return;
	}
	/* LMDB maps at least the pages in use: an index written past the
	 * cap before keeps its file, and its records are held to the cap. */
	x->map =
		st.map_bytes < index_max_bytes ? st.map_bytes : index_max_bytes;
	x->max_live = x->map / 100 * LIVE_PCT;
}

/*
 * Flow retention, in each commit's txn after its part of the batch (an
 * import that commits once expires in that commit too): the flows that
 * ended flow_retention_ns before the newest packet stored (packet time,
 * so an import of an old capture keeps what it imports), and the oldest
 * while the index's live pages pass max_live. About two buckets per 1024
 * flows written, and at least four, so that deletion keeps pace.
 */
static int expire_flows(struct fv_indexer *x, const struct batch *b,
			size_t flows)
{
	struct fv_index_expiry e;
	uint64_t before = 0;
	unsigned nb = 4 + (unsigned)(flows >> 9);

	if (!x->flow_retention_ns && !x->max_live)
		return 0;
	if (x->flow_retention_ns && b->newest_ns > x->flow_retention_ns)
		before = b->newest_ns - x->flow_retention_ns;
	return fv_index_expire_flows(x->ix, before, x->max_live, nb, &e);
}

/*
 * A small transaction: adds add to meta "index_full". It lets the next
 * one reuse the pages the last commit freed. If even it finds no page
 * (every free page is one the last commit freed), it is tried with the
 * map's reserve.
 */
static int nudge(struct fv_indexer *x, uint64_t add)
{
	int err, whole = 0;

	for (;;) {
		err = fv_index_begin(x->ix);
		if (err)
			break;
		err = fv_index_add_u64(x->ix, "index_full", add);
		if (err)
			fv_index_abort(x->ix);
		else
			err = fv_index_commit(x->ix);
		if (err != FV_EFULL || whole)
			break;
		whole = 1;
		err = set_map(x, 1);
		if (err)
			break;
	}
	if (whole) {
		int e = set_map(x, 0);

		if (!err)
			err = e;
	}
	return err;
}

/*
 * The index's cap is reached (FV_EFULL: LMDB found no page for a
 * transaction under its map): the oldest flow records go, one timemap
 * bucket (1024 ids), in a transaction of their own between two small
 * ones (nudge; the first adds 1 to meta "index_full"): LMDB reuses the
 * pages a commit frees two commits later, the first lets the deletion
 * use those of the commit before it, the second lets the next
 * transaction use those of the deletion. *none: no flow record was left
 * to delete.
 */
static int make_room(struct fv_indexer *x, int *none)
{
	struct fv_index_expiry e = {0};
	int err = nudge(x, 1);

	*none = 0;
	if (!err)
		err = fv_index_begin(x->ix);
	if (err)
		return err;
	err = fv_index_expire_flows(x->ix, 0, 1, 1, &e);
	if (!err && !e.flows) {
		*none = 1;
		err = FV_EFULL;
	}
	if (err) {
		fv_index_abort(x->ix);
		return err;
	}
	err = fv_index_commit(x->ix);
	if (!err)
		err = nudge(x, 0);
	return err;
}

/*
 * After a transaction ended with *err: 1 when it is worth another try,
 * room having been made for it (FV_EFULL under a cap, and flow records
 * left to delete); else 0 with *err the answer. When no room can be made
 * (the pages freed are still in a reader's snapshot), waits a little for
 * the readers; FULL_TRIES times at most.
 */
static int room_made(struct fv_indexer *x, int *err, unsigned *tries)
{
	int none, e;

	while (*err == FV_EFULL && x->map && *tries < FULL_TRIES) {
		++*tries;
		e = make_room(x, &none);
		if (none)
			return 0;
		if (!e) {
			learn(x, 1);
			return 1;
		}
		if (e != FV_EFULL) {
			*err = e;
			return 0;
		}
		nap_ms(1u << (*tries < 8 ? *tries : 8));
	}
	return 0;
}

size_t fv_indexer_pending(const struct fv_indexer *x)
{
	return x->cur.len;
}

void fv_indexer_count(struct fv_indexer *x, const struct fv_ingest_counters *c)
{
	struct fv_ingest_counters *t = &x->cur.cnt;

	t->packets += c->packets;
	t->bytes += c->bytes;
	t->stored_bytes += c->stored_bytes;
	t->block_raw_bytes += c->block_raw_bytes;
	t->block_disk_bytes += c->block_disk_bytes;
	t->undecoded += c->undecoded;
	t->overflow += c->overflow;
	t->frag_unmatched += c->frag_unmatched;
	t->kernel_drops += c->kernel_drops;
	t->if_drops += c->if_drops;
	t->nombuf += c->nombuf;
}

int fv_indexer_set_meta(struct fv_indexer *x, const char *name, const void *val,
			size_t len)
{
	size_t n = strlen(name);
	uint8_t hdr[1 + 64];
	int err;

	if (n == 0 || n > 64 || len > 4096)
		return -EINVAL;
	hdr[0] = (uint8_t)n;
	memcpy(hdr + 1, name, n);
	err = push(&x->cur, ITEM_META, hdr, 1 + n, val, len);
	if (err && !x->cur.err)
		x->cur.err = err;
	return err;
}

int fv_indexer_set_u64(struct fv_indexer *x, const char *name, uint64_t v)
{
	uint8_t b[8];

	fv_put_le64(b, v);
	return fv_indexer_set_meta(x, name, b, sizeof(b));
}

static int item_cmp(const void *pa, const void *pb)
{
	const struct item_ref *a = pa, *b = pb;

	if (a->id != b->id)
		return a->id < b->id ? -1 : 1;
	return a->off < b->off ? -1 : a->off > b->off;
}

/* Lists the arena's items in the order they are written. */
static int order_items(struct fv_indexer *x, const struct batch *b)
{
	size_t off = 0;

	x->nord = 0;
	while (off < b->len) {
		uint8_t type = b->buf[off];
		uint64_t id = 0;
		uint32_t l;

		memcpy(&l, b->buf + off + 1, 4);
		if (type == ITEM_DEAD) {
			off += 5 + l;
			continue;
		}
		if (type == ITEM_FLOW)
			memcpy(&id,
			       b->buf + off + 5 + offsetof(struct fv_flow, id),
			       8);
		else if (type == ITEM_PLACES)
			memcpy(&id, b->buf + off + 5, 8);
		if (x->nord == x->ordcap) {
			size_t ncap = x->ordcap ? x->ordcap * 2 : 4096;
			struct item_ref *n = realloc(x->ord, ncap * sizeof(*n));

			if (!n)
				return -ENOMEM;
			x->ord = n;
			x->ordcap = ncap;
		}
		x->ord[x->nord].id = id;
		x->ord[x->nord].off = off;
		x->nord++;
		off += 5 + l;
	}
	if (x->nord > 1) /* qsort's pointer may not be NULL (UBSan) */
		qsort(x->ord, x->nord, sizeof(*x->ord), item_cmp);
	return 0;
}

static int write_item(struct fv_indexer *x, const struct batch *b, size_t off)
{
	uint8_t type = b->buf[off];
	const uint8_t *p = b->buf + off + 5;
	uint32_t l;

	memcpy(&l, b->buf + off + 1, 4);
	switch (type) {
	case ITEM_FLOW: {
		struct fv_flow f;

		memcpy(&f, p, sizeof(f));
		return fv_index_put_flow(x->ix, &f);
	}
	case ITEM_PLACES: {
		uint64_t id;
		uint32_t part;

		memcpy(&id, p, 8);
		memcpy(&part, p + 8, 4);
		return fv_index_put_places(x->ix, id, part, p + 12, l - 12);
	}
	case ITEM_BLOCK: {
		struct fv_block_info bi;

		memcpy(&bi, p, sizeof(bi));
		return fv_index_put_block(x->ix, &bi);
	}
	case ITEM_META: {
		char name[65];
		uint8_t n = p[0];

		if (n > 64 || 1u + n > l)
			return FV_ECORRUPT;
		memcpy(name, p + 1, n);
		name[n] = 0;
		return fv_index_put_meta(x->ix, name, p + 1 + n, l - 1 - n);
	}
	default:
		return FV_ECORRUPT;
	}
}

/* Writes the items ord[from, to). */
static int write_items(struct fv_indexer *x, const struct batch *b, size_t from,
		       size_t to)
{
	int err = 0;

	for (size_t i = from; i < to && !err; i++)
		err = write_item(x, b, x->ord[i].off);
	return err;
}

/*
 * The end of the transaction that starts at ord[from]: the blocks and
 * meta items (id 0, first), then the items of at most n flow ids (never
 * between two items of one id); *ids: how many.
 */
static size_t txn_end_at(const struct fv_indexer *x, size_t from, size_t n,
			 size_t *ids)
{
	size_t i;

	*ids = 0;
	for (i = from; i < x->nord; i++) {
		if (!x->ord[i].id ||
		    (i > from && x->ord[i].id == x->ord[i - 1].id))
			continue;
		if (*ids == n)
			break;
		++*ids;
	}
	return i;
}

/*
 * Turns the pending blocks of worker with a generation <= gen into dead
 * items (their bytes are about to be overwritten: they never reach the
 * index) and finds the first pending block of the worker after them.
 */
static void drop_pending(struct batch *x, unsigned worker, uint32_t gen,
			 struct fv_index_drop *d)
{
	size_t off = 0;

	while (off < x->len) {
		uint8_t type = x->buf[off];
		struct fv_block_info bi;
		uint32_t l;

		memcpy(&l, x->buf + off + 1, 4);
		if (type == ITEM_BLOCK) {
			memcpy(&bi, x->buf + off + 5, sizeof(bi));
			if (fv_ref_worker(bi.ref) != worker) {
				/* another ring's: not ours to judge */
			} else if (fv_ref_gen(bi.ref) <= gen) {
				x->buf[off] = ITEM_DEAD;
				d->blocks++;
				d->packets += bi.count;
				if (bi.last_ns > d->last_ns)
					d->last_ns = bi.last_ns;
			} else if (!d->have_next) {
				/* Pending blocks arrive in sequence order. */
				d->next = bi;
				d->have_next = 1;
			}
		}
		off += 5 + l;
	}
}

/* The transaction of the recycle step: the index's blocks of worker up
 * to gen, and the retention start (pend: what the batches dropped). */
static int recycle_txn(struct fv_indexer *x, unsigned worker, uint32_t gen,
		       const struct fv_index_drop *pend,
		       struct fv_index_drop *out)
{
	struct fv_index_drop d;
	uint64_t from_ns;
	int err;

	err = fv_index_begin(x->ix);
	if (err)
		return err;
	err = fv_index_drop_blocks(x->ix, worker, gen, &d);
	if (err)
		goto out_abort;
	/* The oldest block left is in the index if any is; else the first
	 * pending one (the index holds older blocks than the batch). */
	if (!d.have_next && pend->have_next) {
		d.next = pend->next;
		d.have_next = 1;
	}
	d.blocks += pend->blocks;
	d.packets += pend->packets;
	if (pend->last_ns > d.last_ns)
		d.last_ns = pend->last_ns;
	if (d.have_next)
		from_ns = d.next.first_ns;
	else
		from_ns = d.last_ns ? d.last_ns + 1 : 0;
	if (from_ns) {
		err = fv_index_set_packets_from(x->ix, worker, from_ns,
						gen + 1);
		if (err)
			goto out_abort;
	}
	err = fv_index_commit(x->ix);
	if (!err && out)
		*out = d;
	return err;
out_abort:
	fv_index_abort(x->ix);
	return err;
}

/* fv_indexer_recycle, and without the batches (pending 0) for
 * fv_indexer_recycle_indexed. */
static int recycle(struct fv_indexer *x, unsigned worker, uint32_t gen,
		   struct fv_index_drop *out, int pending)
{
	struct fv_index_drop pend = {0};
	unsigned tries = 0;
	int err;

	if (pending) {
		if (x->cur.err)
			return x->cur.err;
		/* The aside batch's blocks are older than the current
		 * one's. */
		if (__atomic_load_n(&x->aside_full, __ATOMIC_ACQUIRE))
			drop_pending(&x->aside, worker, gen, &pend);
		drop_pending(&x->cur, worker, gen, &pend);
	}
	do
		err = recycle_txn(x, worker, gen, &pend, out);
	while (room_made(x, &err, &tries));
	return err;
}

int fv_indexer_recycle(struct fv_indexer *x, unsigned worker, uint32_t gen,
		       struct fv_index_drop *out)
{
	return recycle(x, worker, gen, out, 1);
}

int fv_indexer_recycle_indexed(struct fv_indexer *x, unsigned worker,
			       uint32_t gen, struct fv_index_drop *out)
{
	return recycle(x, worker, gen, out, 0);
}

int fv_indexer_pending_upto(const struct fv_indexer *x, unsigned worker,
			    uint32_t gen)
{
	const struct batch *b = &x->cur;
	size_t off = 0;

	while (off < b->len) {
		uint32_t l;

		memcpy(&l, b->buf + off + 1, 4);
		if (b->buf[off] == ITEM_BLOCK) {
			struct fv_block_info bi;

			memcpy(&bi, b->buf + off + 5, sizeof(bi));
			if (fv_ref_worker(bi.ref) == worker &&
			    fv_ref_gen(bi.ref) <= gen)
				return 1;
		}
		off += 5 + l;
	}
	return 0;
}

/*
 * Writes the items ord[from, to) of batch b (of flows flow ids), the
 * counters and next_flow_id in one transaction. Once it is committed, the items
 * are dead in b and the counters 0: a retry of b writes neither again.
 */
static int commit_part(struct fv_indexer *x, struct batch *b, size_t from,
		       size_t to, size_t flows)
{
	const struct fv_ingest_counters *c = &b->cnt;
	int err;

	err = fv_index_begin(x->ix);
	if (err)
		return err;
	err = write_items(x, b, from, to);
	if (!err)
		err = expire_flows(x, b, flows);
	if (!err)
		err = fv_index_put_u64(x->ix, "next_flow_id", b->next_id);
	if (!err && c->packets)
		err = fv_index_add_u64(x->ix, "packets", c->packets);
	if (!err && c->bytes)
		err = fv_index_add_u64(x->ix, "bytes", c->bytes);
	if (!err && c->stored_bytes)
		err = fv_index_add_u64(x->ix, "stored_bytes", c->stored_bytes);
	if (!err && c->block_disk_bytes)
		err = fv_index_add_u64(x->ix, "block_raw_bytes",
				       c->block_raw_bytes);
	if (!err && c->block_disk_bytes)
		err = fv_index_add_u64(x->ix, "block_disk_bytes",
				       c->block_disk_bytes);
	if (!err && c->undecoded)
		err = fv_index_add_u64(x->ix, "undecoded", c->undecoded);
	if (!err && c->overflow)
		err = fv_index_add_u64(x->ix, "overflow", c->overflow);
	if (!err && c->frag_unmatched)
		err = fv_index_add_u64(x->ix, "fragments_unmatched",
				       c->frag_unmatched);
	if (!err && c->kernel_drops)
		err = fv_index_add_u64(x->ix, "kernel_drops", c->kernel_drops);
	if (!err && c->if_drops)
		err = fv_index_add_u64(x->ix, "if_drops", c->if_drops);
	if (!err && c->nombuf)
		err = fv_index_add_u64(x->ix, "nombuf", c->nombuf);
	if (err) {
		fv_index_abort(x->ix);
		return err;
	}
	err = fv_index_commit(x->ix);
	if (err)
		return err;
	for (size_t i = from; i < to; i++)
		b->buf[x->ord[i].off] = ITEM_DEAD;
	memset(&b->cnt, 0, sizeof(b->cnt));
	return 0;
}

/*
 * Writes batch b, then empties it: in one transaction, or under a cap
 * in transactions of at most TXN_FLOWS flows (the first also holds the
 * blocks, meta items and counters; next_flow_id is in each), so that
 * each one's copied pages stay few. When the cap is reached, room is
 * made (make_room) and the rest is tried again in halves. After an
 * error, what is left of b stays for a retry.
 */
static int commit_batch(struct fv_indexer *x, struct batch *b)
{
	size_t from = 0, to, flows, n = x->map ? TXN_FLOWS : SIZE_MAX;
	unsigned tries = 0;
	int err;

	if (b->err)
		return b->err;
	err = order_items(x, b);
	if (err)
		return err;
	for (;;) {
		to = txn_end_at(x, from, n, &flows);
		err = commit_part(x, b, from, to, flows);
		if (room_made(x, &err, &tries)) {
			if (n > TXN_FLOWS_MIN)
				n /= 2;
			continue;
		}
		if (err)
			return err;
		if (x->map) {
			learn(x, 0);
			if (n < TXN_FLOWS)
				n *= 2;
		}
		tries = 0;
		from = to;
		if (from == x->nord)
			break;
	}
	b->len = 0;
	b->batch_flows = 0;
	return 0;
}

int fv_indexer_commit(struct fv_indexer *x, struct fv_ring **rings, unsigned n,
		      uint64_t next_id)
{
	int err;

	if (__atomic_load_n(&x->aside_full, __ATOMIC_ACQUIRE))
		return -EBUSY;
	for (unsigned i = 0; i < n; i++) {
		err = fv_ring_sync(rings[i]);
		if (err)
			return err;
	}
	x->cur.next_id = next_id;
	return commit_batch(x, &x->cur);
}

int fv_indexer_set_aside(struct fv_indexer *x, uint64_t next_id,
			 uint64_t need_next)
{
	struct batch t;

	if (__atomic_load_n(&x->aside_full, __ATOMIC_ACQUIRE))
		return -EBUSY;
	if (x->cur.err)
		return x->cur.err;
	/* The buffers swap, so both stay allocated and reused. */
	t = x->aside;
	x->aside = x->cur;
	x->aside.next_id = next_id;
	x->aside.need_next = need_next;
	x->cur = t;
	x->cur.len = 0;
	x->cur.batch_flows = 0;
	x->cur.err = 0;
	x->cur.newest_ns = x->aside.newest_ns;
	memset(&x->cur.cnt, 0, sizeof(x->cur.cnt));
	__atomic_store_n(&x->aside_full, 1, __ATOMIC_RELEASE);
	return 0;
}

int fv_indexer_aside(const struct fv_indexer *x, uint64_t *need_next)
{
	if (!__atomic_load_n(&x->aside_full, __ATOMIC_ACQUIRE))
		return 0;
	*need_next = x->aside.need_next;
	return 1;
}

int fv_indexer_aside_blocks(const struct fv_indexer *x,
			    int (*cb)(void *arg, fv_ref ref), void *arg)
{
	const struct batch *b = &x->aside;
	size_t off = 0;
	int err = 0;

	while (off < b->len && !err) {
		uint32_t l;

		memcpy(&l, b->buf + off + 1, 4);
		if (b->buf[off] == ITEM_BLOCK) {
			struct fv_block_info bi;

			memcpy(&bi, b->buf + off + 5, sizeof(bi));
			err = cb(arg, bi.ref);
		}
		off += 5 + l;
	}
	return err;
}

int fv_indexer_commit_aside(struct fv_indexer *x)
{
	int err = commit_batch(x, &x->aside);

	if (!err)
		__atomic_store_n(&x->aside_full, 0, __ATOMIC_RELEASE);
	return err;
}
