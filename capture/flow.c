/*
 * flow.c - the per-worker flow table (see flow.h for the semantics).
 *
 * Layout: a fixed pool of entries and an open-addressing slot array
 * holding entry numbers (linear probing, deletion by backward shift, so
 * no tombstones). The slot array is allocated at twice the pool size, but
 * only its first nslots are in use: from SLOTS_MIN, doubled (every flow
 * put back) whenever more than half would be taken, so a table with few
 * flows keeps its slots in a few cache lines instead of one line per
 * flow. Each entry sits on one of three LRU lists by expiry class - TCP,
 * other protocols, closing (FIN both ways or RST seen) - ordered by last
 * packet time, so idle expiry only looks at list heads. Nothing here
 * allocates after fv_flow_table_new().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "capture/flow.h"
#include "common/fv.h"

#define NIL	UINT32_MAX
#define TCP_SYN 0x02
#define TCP_ACK 0x10
#define TCP_FIN 0x01
#define TCP_RST 0x04

enum { CLS_TCP, CLS_OTHER, CLS_CLOSING, NCLS };

struct flow_entry {
	struct fv_flow rec;
	uint64_t hash;
	uint64_t active_start; /* start of the current active interval */
	uint64_t prev_ref;     /* last ref written into enc (delta base) */
	uint64_t run_ref;      /* run in progress */
	uint32_t run_count;
	uint32_t run_off;  /* offset of the run's first record in its block */
	uint64_t last_ref; /* place of the flow's last record */
	uint32_t last_off;
	uint32_t lru_prev, lru_next;
	uint16_t enc_len;
	uint8_t cls;
	uint8_t fin_mask;  /* bit d: FIN seen from direction d */
	uint8_t published; /* closing, and written with every packet so far */
	uint8_t enc[FV_PLACES_CHUNK];
};

struct frag_slot {
	uint8_t saddr[16], daddr[16];
	uint32_t frag_id;
	uint8_t family, proto;
	uint32_t entry;
	uint64_t flow_id;
	uint64_t ts;
};

#define FRAG_SLOTS 4096
#define SLOTS_MIN  256

struct fv_flow_table {
	struct fv_flow_opts o;
	struct fv_flow_sink sink;
	uint64_t *next_id;
	struct flow_entry *e;
	uint32_t *slots;
	uint32_t nslots;    /* slots in use, power of two */
	uint32_t max_slots; /* slots allocated, >= 2 * max_flows */
	uint32_t free_head; /* ended entries, reused first */
	uint32_t fresh;	    /* entries never used yet: [fresh, max_flows) */
	uint32_t lru_head[NCLS], lru_tail[NCLS];
	struct frag_slot *frags;
	struct flow_entry *last; /* entry of the last packet, for place() */
	struct fv_flow_stats st;
};

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static uint64_t hash_bytes(const uint8_t *p, size_t n, uint64_t h)
{
	while (n >= 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		h = mix64(h ^ v) + 0x9e3779b97f4a7c15ULL;
		p += 8;
		n -= 8;
	}
	while (n--)
		h = mix64(h ^ *p++);
	return h;
}

/* Two 16-byte addresses as two 64-bit words each: equality, and the
 * order memcmp() gives (the words read big-endian), without a call per
 * packet. */
static int addr_eq(const uint8_t *a, const uint8_t *b)
{
	uint64_t a0, a1, b0, b1;

	memcpy(&a0, a, 8);
	memcpy(&a1, a + 8, 8);
	memcpy(&b0, b, 8);
	memcpy(&b1, b + 8, 8);
	return ((a0 ^ b0) | (a1 ^ b1)) == 0;
}

static int addr_cmp(const uint8_t *a, const uint8_t *b)
{
	uint64_t x = fv_be64(a), y = fv_be64(b);

	if (x == y) {
		x = fv_be64(a + 8);
		y = fv_be64(b + 8);
	}
	return (x > y) - (x < y);
}

int fv_flow_key_cmp_dir(const struct fv_flow_key *k)
{
	int c = addr_cmp(k->saddr, k->daddr);

	if (c)
		return c > 0;
	return k->sport > k->dport;
}

/* Symmetric hash: the same for both directions of a flow. */
static uint64_t key_hash(const struct fv_flow_key *k)
{
	const uint8_t *a = k->saddr, *b = k->daddr;
	uint16_t pa = k->sport, pb = k->dport;
	uint64_t h;

	if (fv_flow_key_cmp_dir(k)) {
		a = k->daddr;
		b = k->saddr;
		pa = k->dport;
		pb = k->sport;
	}
	h = hash_bytes(a, 16,
		       (uint64_t)k->family << 40 | (uint64_t)k->proto << 32 |
			       k->vlan);
	h = hash_bytes(b, 16, h);
	return mix64(h ^ ((uint64_t)pa << 16 | pb));
}

/* Returns 0 if pkt key is the entry's direction 0, 1 if reversed, -1 if
 * it is another flow. */
static int key_dir(const struct fv_flow_key *ek, const struct fv_flow_key *k)
{
	if (ek->family != k->family || ek->proto != k->proto ||
	    ek->vlan != k->vlan)
		return -1;
	if (ek->sport == k->sport && ek->dport == k->dport &&
	    addr_eq(ek->saddr, k->saddr) && addr_eq(ek->daddr, k->daddr))
		return 0;
	if (ek->sport == k->dport && ek->dport == k->sport &&
	    addr_eq(ek->saddr, k->daddr) && addr_eq(ek->daddr, k->saddr))
		return 1;
	return -1;
}

static void key_reverse(struct fv_flow_key *k)
{
	uint8_t tmp[16];
	uint16_t p = k->sport;

	memcpy(tmp, k->saddr, 16);
	memcpy(k->saddr, k->daddr, 16);
	memcpy(k->daddr, tmp, 16);
	k->sport = k->dport;
	k->dport = p;
}

static void lru_unlink(struct fv_flow_table *t, uint32_t i)
{
	struct flow_entry *x = &t->e[i];

	if (x->lru_prev != NIL)
		t->e[x->lru_prev].lru_next = x->lru_next;
	else
		t->lru_head[x->cls] = x->lru_next;
	if (x->lru_next != NIL)
		t->e[x->lru_next].lru_prev = x->lru_prev;
	else
		t->lru_tail[x->cls] = x->lru_prev;
	x->lru_prev = x->lru_next = NIL;
}

static void lru_push(struct fv_flow_table *t, uint32_t i, uint8_t cls)
{
	struct flow_entry *x = &t->e[i];

	x->cls = cls;
	x->lru_next = NIL;
	x->lru_prev = t->lru_tail[cls];
	if (t->lru_tail[cls] != NIL)
		t->e[t->lru_tail[cls]].lru_next = i;
	else
		t->lru_head[cls] = i;
	t->lru_tail[cls] = i;
}

int fv_flow_table_new(struct fv_flow_table **out,
		      const struct fv_flow_opts *opts, uint64_t *next_id,
		      const struct fv_flow_sink *sink)
{
	struct fv_flow_table *t;
	uint32_t n = opts->max_flows ? opts->max_flows : 1;

	if (n > (1u << 30))
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->o = *opts;
	t->sink = *sink;
	t->next_id = next_id;
	t->max_slots = 16;
	while (t->max_slots < 2 * n)
		t->max_slots <<= 1;
	t->nslots = t->max_slots < SLOTS_MIN ? t->max_slots : SLOTS_MIN;
	t->o.max_flows = n;
	/* Big zeroed allocations (huge pages where allowed): a fault per
	 * 2 MiB rather than per 4 KiB as the table fills. Slots hold entry
	 * number + 1; 0 is empty. */
	t->e = fv_big_alloc((size_t)n * sizeof(*t->e));
	t->slots = fv_big_alloc((size_t)t->max_slots * sizeof(*t->slots));
	t->frags = calloc(FRAG_SLOTS, sizeof(*t->frags));
	if (!t->e || !t->slots || !t->frags) {
		fv_flow_table_free(t);
		return -ENOMEM;
	}
	/* Entries are handed out from 'fresh' on first use, so pages of the
	 * table are touched only as flows need them. */
	t->free_head = NIL;
	t->fresh = 0;
	for (int c = 0; c < NCLS; c++)
		t->lru_head[c] = t->lru_tail[c] = NIL;
	*out = t;
	return 0;
}

void fv_flow_table_free(struct fv_flow_table *t)
{
	if (!t)
		return;
	free(t->frags);
	fv_big_free(t->slots, (size_t)t->max_slots * sizeof(*t->slots));
	fv_big_free(t->e, (size_t)t->o.max_flows * sizeof(*t->e));
	free(t);
}

static uint64_t cls_timeout(const struct fv_flow_table *t, uint8_t cls)
{
	switch (cls) {
	case CLS_TCP:
		return t->o.idle_timeout_ns;
	case CLS_OTHER:
		return t->o.udp_idle_timeout_ns;
	default:
		return t->o.fin_linger_ns;
	}
}

/* Flushes the run in progress into the entry's encoded places, emitting a
 * chunk first if it might not fit. */
static int places_flush_run(struct fv_flow_table *t, struct flow_entry *x)
{
	int err;

	if (!x->run_count)
		return 0;
	if (x->enc_len + 25 > FV_PLACES_CHUNK) {
		err = t->sink.places(t->sink.arg, x->rec.id,
				     x->rec.places_parts, x->enc, x->enc_len);
		if (err)
			return err;
		x->rec.places_parts++;
		x->enc_len = 0;
		x->prev_ref = 0;
	}
	x->enc_len += (uint16_t)fv_varint_put(x->enc + x->enc_len,
					      x->run_ref - x->prev_ref);
	x->enc_len +=
		(uint16_t)fv_varint_put(x->enc + x->enc_len, x->run_count);
	x->enc_len +=
		(uint16_t)fv_varint_put(x->enc + x->enc_len, x->run_off / 8);
	x->prev_ref = x->run_ref;
	x->run_count = 0;
	return 0;
}

/* Writes the places so far and the record (final or checkpoint). */
static int emit(struct fv_flow_table *t, struct flow_entry *x, uint8_t reason)
{
	int err = places_flush_run(t, x);

	if (err)
		return err;
	if (x->enc_len) {
		err = t->sink.places(t->sink.arg, x->rec.id,
				     x->rec.places_parts, x->enc, x->enc_len);
		if (err)
			return err;
		x->rec.places_parts++;
		x->enc_len = 0;
		x->prev_ref = 0;
	}
	x->rec.end_reason = reason;
	if (reason == FV_END_ACTIVE)
		x->rec.flags |= FV_FLOW_PARTIAL;
	else
		x->rec.flags &= (uint16_t)~FV_FLOW_PARTIAL;
	return t->sink.record(t->sink.arg, &x->rec);
}

static uint32_t slot_of(const struct fv_flow_table *t, uint64_t h)
{
	return (uint32_t)h & (t->nslots - 1);
}

/* Removes entry i from the slot array (backward-shift deletion). */
static void slot_remove(struct fv_flow_table *t, uint32_t i)
{
	uint32_t mask = t->nslots - 1, s = slot_of(t, t->e[i].hash);

	while (t->slots[s] != i + 1)
		s = (s + 1) & mask;
	for (;;) {
		uint32_t n = (s + 1) & mask, home;

		t->slots[s] = 0;
		if (!t->slots[n])
			return;
		/* Move slots[n] back to s unless its home lies in (s, n]. */
		for (;;) {
			home = slot_of(t, t->e[t->slots[n] - 1].hash);
			if (((n - home) & mask) >= ((n - s) & mask))
				break;
			n = (n + 1) & mask;
			if (!t->slots[n])
				return;
		}
		t->slots[s] = t->slots[n];
		s = n;
	}
}

static int end_flow(struct fv_flow_table *t, uint32_t i, uint8_t reason)
{
	struct flow_entry *x = &t->e[i];
	int err = x->published ? 0 : emit(t, x, reason);

	lru_unlink(t, i);
	slot_remove(t, i);
	if (t->last == x)
		t->last = NULL;
	x->rec.id = 0;
	x->lru_next = t->free_head;
	t->free_head = i;
	t->st.flows_ended++;
	t->st.active--;
	return err;
}

static uint32_t lookup(const struct fv_flow_table *t,
		       const struct fv_flow_key *k, uint64_t h, int *dir)
{
	uint32_t mask = t->nslots - 1, s = slot_of(t, h);

	for (;;) {
		uint32_t i = t->slots[s] - 1;

		if (!t->slots[s])
			return NIL;
		if (t->e[i].hash == h) {
			int d = key_dir(&t->e[i].rec.key, k);

			if (d >= 0) {
				*dir = d;
				return i;
			}
		}
		s = (s + 1) & mask;
	}
}

/* Evicts the least recently active flow to make room. */
static int evict_one(struct fv_flow_table *t)
{
	uint32_t best = NIL;

	for (int c = 0; c < NCLS; c++) {
		uint32_t h = t->lru_head[c];

		if (h != NIL && (best == NIL ||
				 t->e[h].rec.last_ns < t->e[best].rec.last_ns))
			best = h;
	}
	if (best == NIL)
		return -ENOSPC;
	return end_flow(t, best, FV_END_EVICT);
}

/* Doubles the slots in use and puts every flow (every entry on an LRU
 * list) back. Amortised: each flow is moved about once per doubling. */
static void slots_grow(struct fv_flow_table *t)
{
	uint32_t mask;

	t->nslots *= 2;
	mask = t->nslots - 1;
	memset(t->slots, 0, (size_t)t->nslots * sizeof(*t->slots));
	for (int c = 0; c < NCLS; c++) {
		for (uint32_t i = t->lru_head[c]; i != NIL;
		     i = t->e[i].lru_next) {
			uint32_t s = slot_of(t, t->e[i].hash);

			while (t->slots[s])
				s = (s + 1) & mask;
			t->slots[s] = i + 1;
		}
	}
}

static int create(struct fv_flow_table *t, const struct fv_pkt *pkt, uint64_t h,
		  uint64_t ts, uint16_t iface, uint32_t *out)
{
	struct flow_entry *x;
	uint32_t i, s, mask;
	int err;

	if (t->free_head == NIL && t->fresh == t->o.max_flows) {
		err = fv_flow_expire(t, ts);
		if (err)
			return err;
	}
	if (t->free_head == NIL && t->fresh == t->o.max_flows) {
		t->st.overflow++;
		err = evict_one(t);
		if (err)
			return err;
	}
	if (t->free_head != NIL) {
		i = t->free_head;
		t->free_head = t->e[i].lru_next;
	} else {
		i = t->fresh++;
	}
	/* At most half the slots in use are taken (the new flow counted). */
	if ((t->st.active + 1) * 2 > t->nslots && t->nslots < t->max_slots)
		slots_grow(t);
	mask = t->nslots - 1;
	x = &t->e[i];
	memset(x, 0, offsetof(struct flow_entry, enc));
	x->rec.id = __atomic_fetch_add(t->next_id, 1, __ATOMIC_RELAXED);
	x->rec.key = pkt->key;
	/* The client is the sender of a SYN, else of the first packet; a
	 * SYN-ACK seen first means its receiver is the client. */
	if (pkt->key.proto == 6 && (pkt->flags & FV_PKT_L4)) {
		uint8_t f = pkt->tcp_flags & (TCP_SYN | TCP_ACK);

		if (f == TCP_SYN)
			x->rec.flags |= FV_FLOW_CLIENT_SYN;
		else if (f == (TCP_SYN | TCP_ACK))
			key_reverse(&x->rec.key);
	}
	x->rec.first_ns = ts;
	x->rec.last_ns = ts;
	x->rec.icmp_type = pkt->icmp_type;
	x->rec.icmp_code = pkt->icmp_code;
	x->rec.worker = t->o.worker;
	x->rec.iface = iface;
	x->hash = h;
	x->active_start = ts;
	x->lru_prev = x->lru_next = NIL;
	lru_push(t, i, pkt->key.proto == 6 ? CLS_TCP : CLS_OTHER);
	s = slot_of(t, h);
	while (t->slots[s])
		s = (s + 1) & mask;
	t->slots[s] = i + 1;
	t->st.flows_created++;
	t->st.active++;
	*out = i;
	return 0;
}

static struct frag_slot *frag_slot(struct fv_flow_table *t,
				   const struct fv_pkt *p)
{
	uint64_t h = hash_bytes(p->key.saddr, 16, p->frag_id);

	h = hash_bytes(p->key.daddr, 16, h ^ p->key.proto);
	return &t->frags[h & (FRAG_SLOTS - 1)];
}

static int frag_match(const struct frag_slot *f, const struct fv_pkt *p)
{
	return f->flow_id && f->frag_id == p->frag_id &&
	       f->family == p->key.family && f->proto == p->key.proto &&
	       !memcmp(f->saddr, p->key.saddr, 16) &&
	       !memcmp(f->daddr, p->key.daddr, 16);
}

static void account(struct fv_flow_table *t, uint32_t i, int dir,
		    const struct fv_pkt *pkt, uint64_t ts, uint32_t origlen)
{
	struct flow_entry *x = &t->e[i];
	uint8_t cls = x->cls;

	x->published = 0;
	x->rec.pkts[dir]++;
	x->rec.bytes[dir] += origlen;
	if (ts > x->rec.last_ns)
		x->rec.last_ns = ts;
	if (pkt->key.proto == 6 && (pkt->flags & FV_PKT_L4)) {
		x->rec.tcp_flags[dir] |= pkt->tcp_flags;
		if (pkt->tcp_flags & TCP_FIN)
			x->fin_mask |= (uint8_t)(1u << dir);
		if ((pkt->tcp_flags & TCP_RST) || x->fin_mask == 3)
			cls = CLS_CLOSING;
	}
	lru_unlink(t, i);
	lru_push(t, i, cls);
	t->last = x;
}

int fv_flow_packet(struct fv_flow_table *t, const struct fv_pkt *pkt,
		   uint64_t ts_ns, uint32_t origlen, uint16_t iface,
		   uint64_t *flow_id)
{
	uint32_t i;
	uint64_t h;
	int dir = 0, err;

	t->st.packets++;
	*flow_id = 0;
	t->last = NULL;
	if (!pkt->key.family) {
		t->st.undecoded++;
		return 0;
	}
	if (pkt->flags & FV_PKT_FRAG_LATER) {
		struct frag_slot *f = frag_slot(t, pkt);

		if (frag_match(f, pkt) && t->e[f->entry].rec.id == f->flow_id) {
			i = f->entry;
			dir = memcmp(t->e[i].rec.key.saddr, pkt->key.saddr, 16)
				      ? 1
				      : 0;
			t->e[i].rec.flags |= FV_FLOW_FRAGS;
			account(t, i, dir, pkt, ts_ns, origlen);
			*flow_id = t->e[i].rec.id;
			return 0;
		}
		t->st.fragments_unmatched++;
	}
	h = key_hash(&pkt->key);
	i = lookup(t, &pkt->key, h, &dir);
	if (i != NIL) {
		struct flow_entry *x = &t->e[i];
		int syn = pkt->key.proto == 6 && (pkt->flags & FV_PKT_L4) &&
			  (pkt->tcp_flags & (TCP_SYN | TCP_ACK)) == TCP_SYN;

		/* A new SYN on a closing connection is a new connection
		 * reusing the ports. */
		if (syn && x->cls == CLS_CLOSING) {
			err = end_flow(t, i,
				       x->fin_mask == 3 ? FV_END_FIN
							: FV_END_RST);
			if (err)
				return err;
			i = NIL;
		} else if (ts_ns >= x->active_start &&
			   ts_ns - x->active_start >= t->o.active_timeout_ns) {
			err = emit(t, x, FV_END_ACTIVE);
			if (err)
				return err;
			t->st.checkpoints++;
			x->active_start = ts_ns;
		}
	}
	if (i == NIL) {
		err = create(t, pkt, h, ts_ns, iface, &i);
		if (err)
			return err;
		dir = key_dir(&t->e[i].rec.key, &pkt->key);
		if (dir < 0)
			dir = 0;
	}
	account(t, i, dir, pkt, ts_ns, origlen);
	if ((pkt->flags & (FV_PKT_FRAG | FV_PKT_FRAG_LATER)) == FV_PKT_FRAG) {
		struct frag_slot *f = frag_slot(t, pkt);

		memcpy(f->saddr, pkt->key.saddr, 16);
		memcpy(f->daddr, pkt->key.daddr, 16);
		f->frag_id = pkt->frag_id;
		f->family = pkt->key.family;
		f->proto = pkt->key.proto;
		f->entry = i;
		f->flow_id = t->e[i].rec.id;
		f->ts = ts_ns;
		t->e[i].rec.flags |= FV_FLOW_FRAGS;
	}
	*flow_id = t->e[i].rec.id;
	return 0;
}

void fv_flow_last_place(const struct fv_flow_table *t, uint64_t flow_id,
			uint64_t *ref, uint32_t *off)
{
	const struct flow_entry *x = t->last;

	if (flow_id && x && x->rec.id == flow_id) {
		*ref = x->last_ref;
		*off = x->last_off;
	} else {
		*ref = 0;
		*off = 0;
	}
}

int fv_flow_place(struct fv_flow_table *t, uint64_t flow_id, uint64_t ref,
		  uint32_t off)
{
	struct flow_entry *x = t->last;
	int err;

	if (!flow_id)
		return 0;
	if (!x || x->rec.id != flow_id || off % 8)
		return -EINVAL;
	x->last_ref = ref;
	x->last_off = off;
	if (x->run_count && x->run_ref == ref) {
		x->run_count++;
		return 0;
	}
	err = places_flush_run(t, x);
	if (err)
		return err;
	x->run_ref = ref;
	x->run_count = 1;
	x->run_off = off;
	return 0;
}

int fv_flow_expire(struct fv_flow_table *t, uint64_t now_ns)
{
	int err;

	for (int c = 0; c < NCLS; c++) {
		uint64_t to = cls_timeout(t, (uint8_t)c);

		while (t->lru_head[c] != NIL) {
			uint32_t i = t->lru_head[c];
			struct flow_entry *x = &t->e[i];
			uint8_t why;

			if (x->rec.last_ns + to > now_ns)
				break;
			why = c == CLS_CLOSING ? (x->fin_mask == 3 ? FV_END_FIN
								   : FV_END_RST)
					       : FV_END_IDLE;
			err = end_flow(t, i, why);
			if (err)
				return err;
		}
	}
	return 0;
}

int fv_flow_publish_closing(struct fv_flow_table *t)
{
	for (uint32_t i = t->lru_head[CLS_CLOSING]; i != NIL;
	     i = t->e[i].lru_next) {
		struct flow_entry *x = &t->e[i];
		int err;

		if (x->published)
			continue;
		err = emit(t, x, x->fin_mask == 3 ? FV_END_FIN : FV_END_RST);
		if (err)
			return err;
		x->published = 1;
	}
	return 0;
}

int fv_flow_flush_some(struct fv_flow_table *t, enum fv_flow_end reason,
		       unsigned max)
{
	unsigned n = 0;
	int err;

	for (int c = 0; c < NCLS; c++) {
		while (t->lru_head[c] != NIL && n < max) {
			uint32_t i = t->lru_head[c];
			uint8_t why = (uint8_t)reason;

			if (c == CLS_CLOSING)
				why = t->e[i].fin_mask == 3 ? FV_END_FIN
							    : FV_END_RST;
			err = end_flow(t, i, why);
			if (err)
				return err;
			n++;
		}
	}
	return (int)n;
}

int fv_flow_flush(struct fv_flow_table *t, enum fv_flow_end reason)
{
	int n = fv_flow_flush_some(t, reason, UINT32_MAX);

	return n < 0 ? n : 0;
}

void fv_flow_get_stats(const struct fv_flow_table *t, struct fv_flow_stats *st)
{
	*st = t->st;
}
