/*
 * rest_pcap.c - packets as capture files: GET /api/v1/flows/{id}/pcap
 * and GET/POST /api/v1/packets.
 *
 * Both give the bytes `flowvault extract` writes (same writer, same
 * order, same first link type), streamed block by block:
 *
 * - a flow: its place runs are read from the index first (one short read
 *   transaction), then each fill() reads one run along its block's
 *   per-flow chain. A flow whose packets have expired, wholly or in part,
 *   is refused with 410 before any byte is sent, as extract refuses it.
 * - a packet query: the blocks that meet the time range are listed from
 *   the index in pages of PAGE_BLOCKS per worker (one short read
 *   transaction per page), and each worker's records are merged by
 *   timestamp through a small heap (ties: lower worker first), so several
 *   workers' streams come out as one capture in time order. With one
 *   worker this is capture order, as extract --bpf writes it.
 *
 * Memory per download: the pcap writer's buffer (256 KiB), a block per
 * worker (1 MiB each), a page of block infos per worker and what one
 * fill() wrote. A block recycled before it is read is skipped (its
 * packets are gone, as in extract --bpf); a flow's block recycled while
 * it is read aborts the connection.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <pcap/pcap.h>
#include <stdlib.h>
#include <string.h>

#include "api/rest_int.h"
#include "capture/capfile.h"
#include "common/fv.h"
#include "storage/storage.h"

#define PAGE_BLOCKS 256
#define FILL_BYTES  (256u * 1024)
#define FILL_RECS   65536
#define FILL_BLOCKS 64 /* blocks read per fill() at most, matches or not */

/* What both kinds of download share: the output side. */
struct out {
	struct fv_ifaces ifs;
	struct fv_pcapw *w;
	enum fv_pcapw_format fmt;
	int linktype;
	uint64_t written;
};

/* extract's write_rec: the writer opens on the first packet, with its
 * link type; a pcap holds one link type and 32-bit seconds. */
static int out_rec(struct out *o, FILE *f, const struct fv_rec *r,
		   const uint8_t *frame)
{
	int lt, err;
	uint32_t snap;

	if (r->iface >= o->ifs.n)
		return FV_ECORRUPT;
	lt = (int)o->ifs.v[r->iface].linktype;
	snap = o->ifs.v[r->iface].snaplen;
	if (!o->w) {
		err = fv_pcapw_open(&o->w, f, o->fmt, lt, snap ? snap : 262144);
		if (err)
			return err;
		o->linktype = lt;
	}
	if (o->fmt == FV_PCAPW_PCAP &&
	    (lt != o->linktype || r->ts_ns / FV_NSEC_PER_SEC > UINT32_MAX))
		return FV_EUSAGE; /* format=pcapng holds it */
	err = fv_pcapw_write(o->w, lt, r->ts_ns, r->caplen, r->origlen, frame);
	if (!err)
		o->written++;
	return err;
}

/* The end: an empty capture when nothing matched, then the flush. */
static int out_close(struct out *o, FILE *f)
{
	int err = 0;

	if (!o->w)
		err = fv_pcapw_open(&o->w, f, o->fmt,
				    o->ifs.n ? (int)o->ifs.v[0].linktype : 1,
				    262144);
	if (!err)
		err = fv_pcapw_close(o->w);
	o->w = NULL;
	return err;
}

static int parse_format(struct rest_req *q, const char *a,
			enum fv_pcapw_format *fmt, enum MHD_Result *ret)
{
	*fmt = FV_PCAPW_PCAP;
	if (!a || !strcmp(a, "pcap"))
		return 0;
	if (!strcmp(a, "pcapng")) {
		*fmt = FV_PCAPW_PCAPNG;
		return 0;
	}
	*ret = rest_reply_error(q, MHD_HTTP_BAD_REQUEST, "bad parameter", -1,
				"format is pcap or pcapng");
	return FV_EUSAGE;
}

static const char *pcap_ctype(enum fv_pcapw_format fmt)
{
	return fmt == FV_PCAPW_PCAPNG ? "application/x-pcapng"
				      : "application/vnd.tcpdump.pcap";
}

/* ---- a flow ---- */

struct flow_dl {
	struct out o;
	struct fv_rest *srv;
	struct fv_seg_reader *rd; /* from the server's pool */
	uint64_t id;
	struct fv_run *v;
	size_t n, cap, next;
	FILE *f;
};

static int on_run(void *arg, fv_ref ref, uint32_t count, uint32_t off)
{
	struct flow_dl *d = arg;

	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;
		struct fv_run *v = realloc(d->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		d->v = v;
		d->cap = cap;
	}
	d->v[d->n].ref = ref;
	d->v[d->n].count = count;
	d->v[d->n].off = off;
	d->n++;
	return 0;
}

static int on_flow_packet(void *arg, const struct fv_rec *r,
			  const uint8_t *frame)
{
	struct flow_dl *d = arg;

	return out_rec(&d->o, d->f, r, frame);
}

/* One run per call: at most one block's records. */
static int flow_fill(struct rest_stream *s)
{
	struct flow_dl *d = s->arg;
	size_t start = s->len;
	int err;

	d->f = s->f;
	while (d->next < d->n && s->len - start < FILL_BYTES) {
		struct fv_run *r = &d->v[d->next++];

		err = fv_seg_read_chain(d->rd, r->ref, r->off, r->count, d->id,
					on_flow_packet, d);
		if (err)
			return err;
		if (s->len == start && d->next % 64 == 0)
			break; /* let the caller look at the connection */
	}
	if (d->next < d->n)
		return 0;
	err = out_close(&d->o, s->f);
	return err ? err : 1;
}

static void flow_release(struct rest_stream *s)
{
	struct flow_dl *d = s->arg;

	if (!d)
		return;
	if (d->o.w)
		fv_pcapw_close(d->o.w);
	rest_reader_put(d->srv, d->rd);
	free(d->v);
	free(d);
}

static unsigned gone_runs(const struct flow_dl *d,
			  const struct fv_retention *rt, uint64_t *total)
{
	uint64_t gone = 0;

	*total = 0;
	for (size_t i = 0; i < d->n; i++) {
		*total += d->v[i].count;
		if (fv_ref_gen(d->v[i].ref) <
		    rt->from_gen[fv_ref_worker(d->v[i].ref)])
			gone += d->v[i].count;
	}
	return (unsigned)(gone > UINT32_MAX ? UINT32_MAX : gone);
}

/* flow-ID-CLIENT.CPORT-SERVER.SPORT-PROTO.pcap; the ':' of IPv6
 * addresses become '_' (not in file names everywhere). */
static void flow_filename(const struct fv_flow *f, enum fv_pcapw_format fmt,
			  char *buf, size_t len)
{
	char ca[INET6_ADDRSTRLEN], sa[INET6_ADDRSTRLEN], pn[8];
	const char *proto = fv_cli_proto_name(f->key.proto, pn, sizeof(pn));
	const char *ext = fmt == FV_PCAPW_PCAPNG ? "pcapng" : "pcap";
	int ports =
		f->key.proto == 6 || f->key.proto == 17 || f->key.proto == 132;

	fv_cli_addr(f->key.family, f->key.saddr, ca, sizeof(ca));
	fv_cli_addr(f->key.family, f->key.daddr, sa, sizeof(sa));
	for (char *p = ca; *p; p++)
		if (*p == ':')
			*p = '_';
	for (char *p = sa; *p; p++)
		if (*p == ':')
			*p = '_';
	if (ports)
		snprintf(buf, len, "flow-%" PRIu64 "-%s.%u-%s.%u-%s.%s", f->id,
			 ca, f->key.sport, sa, f->key.dport, proto, ext);
	else
		snprintf(buf, len, "flow-%" PRIu64 "-%s-%s-%s.%s", f->id, ca,
			 sa, proto, ext);
}

enum MHD_Result rest_flow_pcap(struct rest_req *q, const char *id_s)
{
	static const char *const names[] = {"format", NULL};
	struct fv_rest *srv = q->srv;
	struct fv_retention *rt = NULL;
	struct rest_stream *s;
	struct flow_dl *d;
	struct fv_flow f;
	enum MHD_Result ret;
	char fname[256], t[48];
	uint64_t total;
	unsigned gone;
	int err;

	if (!rest_args_known(q, names, &ret))
		return ret;
	d = calloc(1, sizeof(*d));
	if (!d)
		return MHD_NO;
	d->srv = srv;
	if (parse_format(q, rest_arg(q, "format"), &d->o.fmt, &ret))
		goto out;
	if (rest_parse_flow_id(id_s, &d->id)) {
		ret = rest_reply_error(q, MHD_HTTP_BAD_REQUEST, "bad flow id",
				       -1,
				       "a flow id is a number from 1 to %llu",
				       (unsigned long long)FV_FLOW_ID_MAX);
		goto out;
	}
	err = fv_index_get_flow(srv->ix, d->id, &f);
	if (err == FV_ENOTFOUND) {
		ret = rest_reply_error(
			q, MHD_HTTP_NOT_FOUND, "no such flow", -1,
			"flow %" PRIu64 " is not in the store", d->id);
		goto out;
	}
	rt = malloc(sizeof(*rt));
	if (!rt) {
		ret = MHD_NO;
		goto out;
	}
	if (!err)
		err = fv_index_retention(srv->ix, rt);
	if (!err)
		err = fv_ifaces_load(srv->ix, &d->o.ifs);
	/* The runs first, in their own read txn: none is held while the
	 * packets stream. */
	if (!err)
		err = fv_index_places(srv->ix, d->id, on_run, d);
	if (!err && !d->n)
		err = FV_ECORRUPT; /* a flow always has a place */
	if (err) {
		ret = rest_reply_fail(q, "reading a flow's places", err);
		goto out;
	}
	gone = rt->from_gen[f.worker] ? gone_runs(d, rt, &total) : 0;
	if (gone) {
		ret = rest_reply_error(
			q, MHD_HTTP_GONE, "expired", -1,
			"flow %" PRIu64 ": %s of its %" PRIu64
			" packets have expired (worker %u keeps packets from "
			"%s on); a flow is given whole or not at all",
			d->id, gone == total ? "all" : "some", total, f.worker,
			fv_format_time(rt->from_ns[f.worker], t, sizeof(t)));
		goto out;
	}
	err = rest_reader_get(srv, &d->rd);
	if (err) {
		ret = rest_reply_fail(q, "opening the segments", err);
		goto out;
	}
	fv_seg_prefetch_runs(d->rd, d->v, d->n);
	s = rest_stream_new(srv);
	if (!s) {
		ret = MHD_NO;
		goto out;
	}
	free(rt);
	s->fill = flow_fill;
	s->release = flow_release;
	s->arg = d;
	s->what = "flow pcap";
	s->download = 1;
	flow_filename(&f, d->o.fmt, fname, sizeof(fname));
	return rest_reply_stream(q, s, pcap_ctype(d->o.fmt), fname, NULL, NULL);
out:
	free(rt);
	rest_reader_put(srv, d->rd);
	free(d->v);
	free(d);
	return ret;
}

/* ---- a packet query ---- */

/* One worker's records, from its blocks in ref (= capture) order. */
struct wstream {
	unsigned worker;
	struct fv_seg_reader *rd; /* one per worker: its block stays */
	struct fv_block blk;
	int have_blk;
	uint32_t off;
	struct fv_rec rec;
	const uint8_t *frame;
	struct fv_block_info *page;
	size_t npage, ipage;
	fv_ref last_ref; /* the last ref taken into a page */
	int started;	 /* has been advanced to its first record */
	int more;	 /* the index may hold more after last_ref */
};

struct pkt_dl {
	struct out o;
	struct fv_rest *srv;
	uint64_t since, until;
	struct bpf_program prog[FV_MAX_IFACES];
	int prog_ok[FV_MAX_IFACES];
	int match_all;
	struct wstream *ws[FV_INDEX_WORKERS];
	unsigned nws;
	struct wstream *heap[FV_INDEX_WORKERS];
	unsigned nheap;
	struct wstream *pending; /* yielded in ws_advance: not in the heap */
	unsigned budget;	 /* blocks this fill() may still read */
	int started;
};

/* fv_index_blocks' callbacks: the first pages of every worker (one scan),
 * then a worker's next page (a scan that stops past the worker). */
struct page_fill {
	struct pkt_dl *d;
	struct wstream *one; /* NULL: the first scan */
	int err;
};

static int page_add(struct wstream *w, const struct fv_block_info *bi)
{
	if (w->npage == PAGE_BLOCKS) {
		w->more = 1;
		return 1;
	}
	w->page[w->npage++] = *bi;
	w->last_ref = bi->ref;
	return 0;
}

static int on_page_block(void *arg, const struct fv_block_info *bi)
{
	struct page_fill *pf = arg;
	unsigned wk = fv_ref_worker(bi->ref);
	struct wstream *w;

	if (pf->one) {
		w = pf->one;
		if (wk < w->worker || bi->ref <= w->last_ref)
			return 0;
		if (wk > w->worker)
			return 1;
		return page_add(w, bi);
	}
	w = pf->d->ws[wk];
	if (!w) {
		w = calloc(1, sizeof(*w));
		if (w)
			w->page = malloc(PAGE_BLOCKS * sizeof(*w->page));
		if (!w || !w->page) {
			if (w)
				free(w);
			pf->err = -ENOMEM;
			return -ENOMEM;
		}
		w->worker = wk;
		pf->d->ws[wk] = w;
		pf->d->nws++;
	}
	if (w->npage < PAGE_BLOCKS)
		page_add(w, bi);
	else
		w->more = 1;
	return 0;
}

static int next_page(struct pkt_dl *d, struct wstream *w)
{
	struct page_fill pf = {.d = d, .one = w};

	w->npage = w->ipage = 0;
	w->more = 0;
	return fv_index_blocks(d->srv->ix, d->since, d->until, on_page_block,
			       &pf);
}

/* Moves w to its next record in range that the filter takes; w->frame
 * NULL when w has no more. Returns 1 (yield: call again) when this
 * fill()'s block budget is spent first, so a query that matches little
 * still returns to the connection often (a client gone is seen). */
static int ws_advance(struct pkt_dl *d, struct wstream *w)
{
	int rc;

	for (;;) {
		if (w->have_blk) {
			rc = fv_block_next(&w->blk, &w->off, &w->rec,
					   &w->frame);
			if (rc < 0)
				return rc;
			if (rc == 0) {
				w->have_blk = 0;
				continue;
			}
			if (w->rec.ts_ns < d->since || w->rec.ts_ns > d->until)
				continue;
			if (w->rec.iface >= d->o.ifs.n ||
			    !d->prog_ok[w->rec.iface])
				continue;
			if (!d->match_all) {
				struct pcap_pkthdr h;

				h.caplen = w->rec.caplen;
				h.len = w->rec.origlen;
				h.ts.tv_sec = (time_t)(w->rec.ts_ns /
						       FV_NSEC_PER_SEC);
				h.ts.tv_usec =
					(suseconds_t)(w->rec.ts_ns %
						      FV_NSEC_PER_SEC / 1000);
				if (!pcap_offline_filter(&d->prog[w->rec.iface],
							 &h, w->frame))
					continue;
			}
			return 0;
		}
		if (w->ipage == w->npage) {
			if (!w->more) {
				w->frame = NULL;
				return 0;
			}
			rc = next_page(d, w);
			if (rc)
				return rc;
			if (!w->npage) {
				w->frame = NULL;
				return 0;
			}
		}
		if (!d->budget)
			return 1;
		d->budget--;
		rc = fv_seg_read_block(w->rd, w->page[w->ipage++].ref, &w->blk);
		if (rc == FV_EEXPIRED)
			continue; /* recycled since: its packets are gone */
		if (rc)
			return rc;
		w->have_blk = 1;
		w->off = 0;
	}
}

static int ws_less(const struct wstream *a, const struct wstream *b)
{
	if (a->rec.ts_ns != b->rec.ts_ns)
		return a->rec.ts_ns < b->rec.ts_ns;
	return a->worker < b->worker;
}

static void heap_push(struct pkt_dl *d, struct wstream *w)
{
	unsigned i = d->nheap++;

	while (i && ws_less(w, d->heap[(i - 1) / 2])) {
		d->heap[i] = d->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	d->heap[i] = w;
}

static struct wstream *heap_pop(struct pkt_dl *d)
{
	struct wstream *top = d->heap[0], *last = d->heap[--d->nheap];
	unsigned i = 0;

	for (;;) {
		unsigned c = 2 * i + 1;

		if (c >= d->nheap)
			break;
		if (c + 1 < d->nheap && ws_less(d->heap[c + 1], d->heap[c]))
			c++;
		if (!ws_less(d->heap[c], last))
			break;
		d->heap[i] = d->heap[c];
		i = c;
	}
	if (d->nheap)
		d->heap[i] = last;
	return top;
}

static int pkt_start(struct pkt_dl *d)
{
	char path[4096];
	int err;

	d->started = 1;
	fv_store_path(path, sizeof(path), d->srv->dir, "segments");
	for (unsigned wk = 0; wk < FV_INDEX_WORKERS; wk++) {
		struct wstream *w = d->ws[wk];

		if (!w)
			continue;
		err = fv_seg_reader_open(&w->rd, path, d->srv->conf.nsegments,
					 d->srv->conf.block_size);
		if (err)
			return err;
		w->started = 0;
	}
	return 0;
}

/* Brings the streams not yet in the heap (not started, or yielded) to
 * their next record. Returns 0 when all are in (or done), 1 to yield. */
static int pkt_settle(struct pkt_dl *d)
{
	int rc;

	if (d->pending) {
		rc = ws_advance(d, d->pending);
		if (rc)
			return rc;
		if (d->pending->frame)
			heap_push(d, d->pending);
		d->pending = NULL;
	}
	for (unsigned wk = 0; wk < FV_INDEX_WORKERS; wk++) {
		struct wstream *w = d->ws[wk];

		if (!w || w->started)
			continue;
		rc = ws_advance(d, w);
		if (rc)
			return rc;
		w->started = 1;
		if (w->frame)
			heap_push(d, w);
	}
	return 0;
}

static int pkt_fill(struct rest_stream *s)
{
	struct pkt_dl *d = s->arg;
	size_t start = s->len;
	int err;

	if (!d->started) {
		err = pkt_start(d);
		if (err)
			return err;
	}
	d->budget = FILL_BLOCKS;
	err = pkt_settle(d);
	if (err)
		return err < 0 ? err : 0;
	for (unsigned n = 0; d->nheap && n < FILL_RECS; n++) {
		struct wstream *w = heap_pop(d);

		err = out_rec(&d->o, s->f, &w->rec, w->frame);
		if (!err)
			err = ws_advance(d, w);
		if (err == 1) {
			d->pending = w;
			return 0;
		}
		if (err)
			return err;
		if (w->frame)
			heap_push(d, w);
		if (s->len - start >= FILL_BYTES)
			return 0;
	}
	if (d->nheap)
		return 0;
	err = out_close(&d->o, s->f);
	return err ? err : 1;
}

static void pkt_free(struct pkt_dl *d)
{
	if (!d)
		return;
	if (d->o.w)
		fv_pcapw_close(d->o.w);
	for (unsigned i = 0; i < FV_INDEX_WORKERS; i++) {
		if (!d->ws[i])
			continue;
		fv_seg_reader_close(d->ws[i]->rd);
		free(d->ws[i]->page);
		free(d->ws[i]);
	}
	for (unsigned i = 0; i < d->o.ifs.n; i++)
		if (d->prog_ok[i])
			pcap_freecode(&d->prog[i]);
	free(d);
}

static void pkt_release(struct rest_stream *s)
{
	pkt_free(s->arg);
}

/* A filter that fits no link type of the store is an error; one that
 * fits some matches nothing on the others (as extract --bpf). */
static int compile_bpf(struct pkt_dl *d, const char *expr, char *msg,
		       size_t len)
{
	int any = 0;

	d->match_all = !*expr;
	pthread_mutex_lock(&d->srv->bpf_lock);
	for (unsigned i = 0; i < d->o.ifs.n; i++) {
		pcap_t *p = pcap_open_dead(
			fv_linktype_to_dlt((int)d->o.ifs.v[i].linktype),
			262144);

		if (!p) {
			pthread_mutex_unlock(&d->srv->bpf_lock);
			return -ENOMEM;
		}
		if (pcap_compile(p, &d->prog[i], expr, 1,
				 PCAP_NETMASK_UNKNOWN) == 0) {
			d->prog_ok[i] = 1;
			any = 1;
		} else {
			snprintf(msg, len, "%s", pcap_geterr(p));
		}
		pcap_close(p);
	}
	pthread_mutex_unlock(&d->srv->bpf_lock);
	return any || !d->o.ifs.n ? 0 : FV_EFILTER;
}

/* The query's parameters, from the URL or from a JSON body. */
struct pkt_args {
	const char *bpf, *since, *until, *host, *port, *proto, *format;
};

static int is_number(const char *s, unsigned long max)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9' || strlen(s) > 10)
		return 0;
	v = strtoul(s, &end, 10);
	return !*end && v <= max;
}

/* "(bpf) and host H and port P and proto": the shortcuts are checked
 * (an address, a number, a known name) so they cannot change the
 * meaning of the rest. Returns a malloc()ed string or NULL with a 400
 * queued (*ret). */
static char *build_bpf(struct rest_req *q, const struct pkt_args *a,
		       enum MHD_Result *ret)
{
	static const char *const protos[] = {"tcp",  "udp",  "icmp", "icmp6",
					     "sctp", "igmp", NULL};
	uint8_t addr[16];
	const char *proto = NULL;
	char *s = NULL;
	size_t len = 0;
	FILE *m;

	if (a->host && inet_pton(AF_INET, a->host, addr) != 1 &&
	    inet_pton(AF_INET6, a->host, addr) != 1) {
		*ret = rest_reply_error(q, MHD_HTTP_BAD_REQUEST,
					"bad parameter", -1,
					"host is an IPv4 or IPv6 address");
		return NULL;
	}
	if (a->port && !is_number(a->port, 65535)) {
		*ret = rest_reply_error(q, MHD_HTTP_BAD_REQUEST,
					"bad parameter", -1,
					"port is a number from 0 to 65535");
		return NULL;
	}
	if (a->proto) {
		for (const char *const *p = protos; *p; p++)
			if (!strcmp(*p, a->proto))
				proto = *p;
		if (!proto && !is_number(a->proto, 255)) {
			*ret = rest_reply_error(
				q, MHD_HTTP_BAD_REQUEST, "bad parameter", -1,
				"proto is tcp, udp, icmp, icmp6, sctp, igmp "
				"or a number from 0 to 255");
			return NULL;
		}
	}
	m = open_memstream(&s, &len);
	if (!m) {
		*ret = MHD_NO;
		return NULL;
	}
	if (a->bpf && *a->bpf)
		fprintf(m, "(%s)", a->bpf);
	if (a->host)
		fprintf(m, "%shost %s", len || ftell(m) ? " and " : "",
			a->host);
	if (a->port)
		fprintf(m, "%sport %s", ftell(m) ? " and " : "", a->port);
	if (proto)
		fprintf(m, "%s%s", ftell(m) ? " and " : "", proto);
	else if (a->proto)
		fprintf(m, "%s(ip proto %s or ip6 proto %s)",
			ftell(m) ? " and " : "", a->proto, a->proto);
	if (fclose(m)) {
		*ret = MHD_NO;
		return NULL;
	}
	return s;
}

/* The earliest time any worker still holds packets from (0: none
 * recycled), as extract judges a time range. */
static uint64_t earliest_kept(const struct fv_rest *srv,
			      const struct fv_retention *rt)
{
	uint64_t m = UINT64_MAX;

	for (unsigned w = 0; w < srv->conf.workers && w < FV_INDEX_WORKERS; w++)
		if (rt->from_ns[w] < m)
			m = rt->from_ns[w];
	return m == UINT64_MAX ? 0 : m;
}

/* POST: {"bpf": "...", "since": "..." | N, "until": ..., "host",
 * "port", "proto", "format"}; strings kept in *keep (freed by caller). */
static int body_args(struct rest_req *q, struct pkt_args *a, json_t **keep,
		     enum MHD_Result *ret)
{
	static const char *const keys[] = {"bpf",  "since", "until",  "host",
					   "port", "proto", "format", NULL};
	const char **slot[] = {&a->bpf,	 &a->since, &a->until, &a->host,
			       &a->port, &a->proto, &a->format};
	json_error_t je;
	json_t *v, *num;
	const char *key;
	json_t *val;

	v = json_loadb(q->body ? q->body : "", q->body_len,
		       JSON_REJECT_DUPLICATES, &je);
	if (!v || !json_is_object(v)) {
		*ret = rest_reply_error(
			q, MHD_HTTP_BAD_REQUEST, "bad body",
			v ? 0 : je.position, "%s",
			v ? "the body is a JSON object: {\"bpf\": ..., "
			    "\"since\": ..., \"until\": ...}"
			  : je.text);
		json_decref(v);
		return FV_EUSAGE;
	}
	num = json_array();
	*keep = v;
	json_object_set_new(v, "", num ? num : json_null());
	json_object_foreach(v, key, val)
	{
		unsigned i;

		if (!*key)
			continue;
		for (i = 0; keys[i] && strcmp(keys[i], key); i++)
			;
		if (!keys[i]) {
			*ret = rest_reply_error(
				q, MHD_HTTP_BAD_REQUEST, "bad parameter", -1,
				"unknown key '%.100s' in the body", key);
			return FV_EUSAGE;
		}
		if (json_is_string(val)) {
			*slot[i] = json_string_value(val);
		} else if (json_is_integer(val) && num) {
			json_t *str = json_sprintf("%" JSON_INTEGER_FORMAT,
						   json_integer_value(val));

			if (!str || json_array_append_new(num, str))
				return -ENOMEM;
			*slot[i] = json_string_value(str);
		} else if (json_is_real(val) && num) {
			json_t *str =
				json_sprintf("%.9f", json_real_value(val));

			if (!str || json_array_append_new(num, str))
				return -ENOMEM;
			*slot[i] = json_string_value(str);
		} else {
			*ret = rest_reply_error(
				q, MHD_HTTP_BAD_REQUEST, "bad parameter", -1,
				"'%s' is a string or a number", key);
			return FV_EUSAGE;
		}
	}
	return 0;
}

enum MHD_Result rest_packets(struct rest_req *q)
{
	static const char *const names[] = {"bpf",  "since", "until",  "host",
					    "port", "proto", "format", NULL};
	static const char *const none[] = {NULL};
	struct fv_rest *srv = q->srv;
	struct pkt_args a = {0};
	struct fv_retention *rt = NULL;
	struct page_fill pf;
	struct rest_stream *s;
	struct pkt_dl *d;
	json_t *keep = NULL;
	enum MHD_Result ret;
	char *expr = NULL, msg[PCAP_ERRBUF_SIZE] = "", t[48], hval[64];
	int err;

	if (!rest_args_known(q, !strcmp(q->method, "POST") ? none : names,
			     &ret))
		return ret;
	d = calloc(1, sizeof(*d));
	if (!d)
		return MHD_NO;
	d->srv = srv;
	d->until = UINT64_MAX;
	if (!strcmp(q->method, "POST")) {
		err = body_args(q, &a, &keep, &ret);
		if (err == -ENOMEM)
			ret = MHD_NO;
		if (err)
			goto out;
	} else {
		a.bpf = rest_arg(q, "bpf");
		a.since = rest_arg(q, "since");
		a.until = rest_arg(q, "until");
		a.host = rest_arg(q, "host");
		a.port = rest_arg(q, "port");
		a.proto = rest_arg(q, "proto");
		a.format = rest_arg(q, "format");
	}
	if (parse_format(q, a.format, &d->o.fmt, &ret))
		goto out;
	if (a.since && rest_time_arg(q, "since", a.since, &d->since, &ret))
		goto out;
	if (a.until && rest_time_arg(q, "until", a.until, &d->until, &ret))
		goto out;
	if (d->since > d->until) {
		ret = rest_reply_error(q, MHD_HTTP_BAD_REQUEST, "bad time", -1,
				       "since is after until");
		goto out;
	}
	expr = build_bpf(q, &a, &ret);
	if (!expr)
		goto out;
	rt = malloc(sizeof(*rt));
	if (!rt) {
		ret = MHD_NO;
		goto out;
	}
	err = fv_ifaces_load(srv->ix, &d->o.ifs);
	if (!err)
		err = fv_index_retention(srv->ix, rt);
	if (err) {
		ret = rest_reply_fail(q, "reading the store", err);
		goto out;
	}
	err = compile_bpf(d, expr, msg, sizeof(msg));
	if (err == FV_EFILTER) {
		ret = rest_reply_error(q, MHD_HTTP_BAD_REQUEST, "bad filter",
				       -1, "bpf '%.300s': %s", expr, msg);
		goto out;
	} else if (err) {
		ret = MHD_NO;
		goto out;
	}
	if (rt->packets_from_ns && d->since < rt->packets_from_ns &&
	    d->until < earliest_kept(srv, rt)) {
		ret = rest_reply_error(
			q, MHD_HTTP_GONE, "expired", -1,
			"no packets in that range: they have expired (packets "
			"are kept from %s on)",
			fv_format_time(earliest_kept(srv, rt), t, sizeof(t)));
		goto out;
	}
	/* The first page of every worker, in one short read txn. */
	pf.d = d;
	pf.one = NULL;
	pf.err = 0;
	err = fv_index_blocks(srv->ix, d->since, d->until, on_page_block, &pf);
	if (err) {
		ret = rest_reply_fail(q, "listing blocks", err);
		goto out;
	}
	s = rest_stream_new(srv);
	if (!s) {
		ret = MHD_NO;
		goto out;
	}
	s->fill = pkt_fill;
	s->release = pkt_release;
	s->arg = d;
	s->what = "packets";
	s->download = 1;
	/* Packets before the retention start are gone: say from when the
	 * answer is complete. */
	if (d->since < rt->packets_from_ns)
		fv_format_time(rt->packets_from_ns, hval, sizeof(hval));
	else
		hval[0] = 0;
	free(rt);
	free(expr);
	json_decref(keep);
	return rest_reply_stream(
		q, s, pcap_ctype(d->o.fmt),
		d->o.fmt == FV_PCAPW_PCAPNG ? "packets.pcapng" : "packets.pcap",
		*hval ? "X-Flowvault-Complete-From" : NULL, hval);
out:
	free(rt);
	free(expr);
	json_decref(keep);
	pkt_free(d);
	return ret;
}
