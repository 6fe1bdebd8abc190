/*
 * fvcap - a diagnostic for the live sources of capture/source.h: opens N
 * workers of one backend, runs a thread per worker and reports what each
 * got, so a test can compare what was captured with what was sent.
 *
 *   fvcap --backend afpacket|pcap|dpdk -i IFACE [--threads N] [--bpf F]
 *         [--snaplen N] [--ring SIZE] [--promisc] [--dpdk-args 'EAL ARGS']
 *         [--dpdk-port N] [--count N] [--seconds S] [-w PREFIX] [--flows]
 *
 * It stops after --count frames (all workers together), after --seconds,
 * after --idle seconds without a frame (once one was seen), or on
 * SIGINT/SIGTERM, then prints one line per worker and a total:
 *
 *   worker 0: packets=N bytes=N kernel_drops=N if_drops=N nombuf=N
 *             freezes=N [flows=N]
 *   total: packets=N bytes=N drops=N [flows=N split=N frags=N
 *          unmatched=N nokey=N]
 *
 * -w PREFIX writes worker N's frames to PREFIX.wN.pcap (nanosecond pcap).
 * --flows counts, per worker, the distinct bidirectional 5-tuples (the
 * two directions of a flow are one key) and in the total how many of
 * them were seen on more than one worker ("split"). IP fragments count
 * as the flow's packets, as the flow table (capture/flow.h) attaches
 * them: the first fragment has the ports, and a later fragment belongs
 * to the flow of the first fragment with its (source, destination,
 * protocol, IP id), wherever that first fragment went. So a flow whose
 * fragments reached another worker than its whole packets is split.
 * "frags" is the number of fragments seen, "unmatched" the later
 * fragments whose first fragment no worker saw (each counts as the
 * flow of its addresses and protocol, ports 0). An IP id used twice in
 * one run goes to the flow that used it first. Frames without an IP
 * header are "nokey".
 *
 * "fvcap: capturing ..." on stderr says the sources are open (a test
 * waits for it before it sends).
 *
 * Two knobs exist for tests of the sources themselves: --stop-every N
 * makes the callback stop delivery every N frames (the next poll must
 * resume where it stopped, losing nothing), and --pause-us N sleeps in
 * the callback after each frame (a slow consumer: the ring overflows and
 * the drop counters must account for every frame not delivered).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture/capfile.h"
#include "capture/decode.h"
#include "capture/source.h"
#include "common/fv.h"

#define POLL_MS 100

static volatile sig_atomic_t got_signal;

/*
 * A flow's identity regardless of direction: the lower endpoint first.
 * The same struct holds a fragmented datagram's identity, in its own
 * direction: a = source, b = destination, pa:pb = the IP id.
 */
struct ckey {
	uint8_t a[16], b[16];
	uint16_t pa, pb;
	uint8_t family, proto;
	uint8_t pad[2];
};

/* A set of keys, each with a value (a flow's key) that maps may use. */
struct keyset {
	struct ckey *k;
	struct ckey *v;
	uint8_t *used;
	size_t cap, n;
};

struct cap {
	uint64_t count;	   /* stop after this many frames, 0 = no limit */
	uint64_t deadline; /* monotonic ns, 0 = none */
	uint64_t idle_ns;  /* stop after this long without a frame, 0 = no */
	uint64_t stop_every;
	unsigned pause_us;
	uint64_t stats_ns; /* read the counters this often while running */
	int flows;
	atomic_uint_fast64_t last_ns; /* monotonic time of the last frame */
	atomic_uint_fast64_t total;
	atomic_int stop;
};

struct worker {
	struct cap *cap;
	unsigned id;
	struct fv_source *src;
	int linktype;
	FILE *f;
	struct fv_pcapw *pw;
	struct keyset set;    /* flows */
	struct keyset firsts; /* first fragment's datagram -> its flow */
	struct keyset laters; /* later fragment's datagram -> ports-0 flow */
	uint64_t frags, nokey;
	uint64_t since_stop;
	int err;
	pthread_t thread;
} __attribute__((aligned(64)));

static uint32_t ckey_hash(const struct ckey *k)
{
	return fv_crc32c(0, k, sizeof(*k));
}

static void keyset_release(struct keyset *s)
{
	free(s->k);
	free(s->v);
	free(s->used);
	memset(s, 0, sizeof(*s));
}

/* The value of key k, NULL if k is not in the set. */
static const struct ckey *keyset_get(const struct keyset *s,
				     const struct ckey *k)
{
	size_t i;

	if (!s->cap)
		return NULL;
	for (i = ckey_hash(k) & (s->cap - 1); s->used[i];
	     i = (i + 1) & (s->cap - 1))
		if (!memcmp(&s->k[i], k, sizeof(*k)))
			return &s->v[i];
	return NULL;
}

static int keyset_add(struct keyset *s, const struct ckey *k,
		      const struct ckey *v);

static int keyset_grow(struct keyset *s)
{
	struct keyset n = {.cap = s->cap ? s->cap * 2 : 4096};

	n.k = calloc(n.cap, sizeof(*n.k));
	n.v = calloc(n.cap, sizeof(*n.v));
	n.used = calloc(n.cap, 1);
	if (!n.k || !n.v || !n.used) {
		free(n.k);
		free(n.v);
		free(n.used);
		return -ENOMEM;
	}
	for (size_t i = 0; i < s->cap; i++)
		if (s->used[i])
			keyset_add(&n, &s->k[i], &s->v[i]);
	keyset_release(s);
	*s = n;
	return 0;
}

/* Adds k with value v (NULL: zeros); a key already there keeps its
 * value. */
static int keyset_add(struct keyset *s, const struct ckey *k,
		      const struct ckey *v)
{
	size_t i;
	int err;

	if ((s->n + 1) * 2 > s->cap) {
		err = keyset_grow(s);
		if (err)
			return err;
	}
	for (i = ckey_hash(k) & (s->cap - 1); s->used[i];
	     i = (i + 1) & (s->cap - 1))
		if (!memcmp(&s->k[i], k, sizeof(*k)))
			return 0;
	s->k[i] = *k;
	if (v)
		s->v[i] = *v;
	s->used[i] = 1;
	s->n++;
	return 0;
}

static void canon_key(const struct fv_flow_key *fk, struct ckey *k)
{
	int swap = memcmp(fk->saddr, fk->daddr, 16);

	if (!swap)
		swap = fk->sport > fk->dport;
	else
		swap = swap > 0;
	memset(k, 0, sizeof(*k));
	memcpy(k->a, swap ? fk->daddr : fk->saddr, 16);
	memcpy(k->b, swap ? fk->saddr : fk->daddr, 16);
	k->pa = swap ? fk->dport : fk->sport;
	k->pb = swap ? fk->sport : fk->dport;
	k->family = fk->family;
	k->proto = fk->proto;
}

/* A fragmented datagram's identity: addresses, protocol, IP id. */
static void frag_key(const struct fv_pkt *pkt, struct ckey *f)
{
	memset(f, 0, sizeof(*f));
	memcpy(f->a, pkt->key.saddr, 16);
	memcpy(f->b, pkt->key.daddr, 16);
	f->pa = (uint16_t)(pkt->frag_id >> 16);
	f->pb = (uint16_t)pkt->frag_id;
	f->family = pkt->key.family;
	f->proto = pkt->key.proto;
}

/*
 * Counts the frame's flow. A later fragment is only noted here: its
 * flow is the first fragment's, known once every worker has stopped
 * (resolve_frags).
 */
static int count_flow(struct worker *w, const struct fv_source_pkt *p)
{
	struct fv_pkt pkt;
	struct ckey k, f;
	int err;

	if (fv_decode(w->linktype, p->data, p->caplen, &pkt) != 0) {
		w->nokey++;
		return 0;
	}
	canon_key(&pkt.key, &k);
	if (pkt.flags & FV_PKT_FRAG) {
		w->frags++;
		frag_key(&pkt, &f);
		if (pkt.flags & FV_PKT_FRAG_LATER)
			return keyset_add(&w->laters, &f, &k);
		err = keyset_add(&w->firsts, &f, &k);
		if (err)
			return err;
	}
	return keyset_add(&w->set, &k, NULL);
}

static int on_packet(void *arg, const struct fv_source_pkt *p)
{
	struct worker *w = arg;
	struct cap *c = w->cap;
	uint64_t n;
	int err;

	if (w->pw) {
		err = fv_pcapw_write(w->pw, w->linktype, p->ts_ns, p->caplen,
				     p->origlen, p->data);
		if (err)
			return err;
	}
	if (c->flows) {
		err = count_flow(w, p);
		if (err)
			return err;
	}
	n = atomic_fetch_add(&c->total, 1) + 1;
	if (c->idle_ns)
		atomic_store(&c->last_ns, fv_now_mono_ns());
	if (c->pause_us)
		usleep(c->pause_us);
	if (c->count && n >= c->count) {
		atomic_store(&c->stop, 1);
		return 1;
	}
	if (c->stop_every && ++w->since_stop >= c->stop_every) {
		w->since_stop = 0;
		return 1;
	}
	return 0;
}

static void *run_worker(void *arg)
{
	struct worker *w = arg;
	struct cap *c = w->cap;
	uint64_t now, last, next_stats = fv_now_mono_ns() + c->stats_ns;
	struct fv_source_stats st;
	int rc;

	while (!atomic_load(&c->stop) && !got_signal) {
		rc = fv_source_poll(w->src, POLL_MS, on_packet, w);
		if (rc < 0) {
			w->err = rc;
			atomic_store(&c->stop, 1);
			break;
		}
		now = fv_now_mono_ns();
		if (now >= next_stats) {
			/* As a recorder would: the totals must survive. */
			rc = fv_source_stats(w->src, &st);
			if (rc < 0) {
				w->err = rc;
				atomic_store(&c->stop, 1);
				break;
			}
			next_stats = now + c->stats_ns;
		}
		last = atomic_load(&c->last_ns);
		if ((c->deadline && now >= c->deadline) ||
		    (c->idle_ns && last && now - last >= c->idle_ns))
			atomic_store(&c->stop, 1);
	}
	return NULL;
}

static void on_signal(int sig)
{
	(void)sig;
	got_signal = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: fvcap --backend afpacket|pcap|dpdk -i IFACE [options]\n"
		"  --threads N        workers (default 1)\n"
		"  --bpf FILTER       capture filter\n"
		"  --snaplen N        bytes kept per frame (default 262144)\n"
		"  --ring SIZE        ring / buffer per worker (default 64M)\n"
		"  --promisc          promiscuous mode\n"
		"  --dpdk-args ARGS   EAL arguments, space separated\n"
		"  --dpdk-port N      DPDK port (default 0)\n"
		"  --count N          stop after N frames (all workers)\n"
		"  --seconds S        stop after S seconds\n"
		"  --idle S           stop after S seconds without a frame\n"
		"  --stop-every N     (test) stop delivery every N frames\n"
		"  --pause-us N       (test) sleep N us after each frame\n"
		"  --stats-ms N       read the counters every N ms (1000)\n"
		"  -w PREFIX          write PREFIX.wN.pcap per worker\n"
		"  --flows            count 5-tuples per worker and split "
		"ones\n");
}

/*
 * Puts each worker's later fragments into the flow of their first
 * fragment: the one on the same worker if there is one (as the worker's
 * flow table would), else one on another worker (the flow is then
 * split), else the fragment's own ports-0 flow (*unmatched).
 */
static int resolve_frags(struct worker *ws, unsigned n, uint64_t *unmatched)
{
	*unmatched = 0;
	for (unsigned i = 0; i < n; i++) {
		const struct keyset *l = &ws[i].laters;

		for (size_t e = 0; e < l->cap; e++) {
			const struct ckey *flow;
			int err;

			if (!l->used[e])
				continue;
			flow = keyset_get(&ws[i].firsts, &l->k[e]);
			for (unsigned j = 0; j < n && !flow; j++)
				flow = keyset_get(&ws[j].firsts, &l->k[e]);
			if (!flow) {
				flow = &l->v[e];
				(*unmatched)++;
			}
			err = keyset_add(&ws[i].set, flow, NULL);
			if (err)
				return err;
		}
	}
	return 0;
}

/* Flows seen by worker i and not by an earlier one; split ones. */
static void count_split(struct worker *ws, unsigned n, uint64_t *distinct,
			uint64_t *split)
{
	*distinct = *split = 0;
	for (unsigned i = 0; i < n; i++) {
		const struct keyset *s = &ws[i].set;

		for (size_t e = 0; e < s->cap; e++) {
			int earlier = 0, later = 0;

			if (!s->used[e])
				continue;
			for (unsigned j = 0; j < n && !earlier; j++) {
				if (j == i || !keyset_get(&ws[j].set, &s->k[e]))
					continue;
				if (j < i)
					earlier = 1;
				else
					later = 1;
			}
			if (earlier)
				continue;
			(*distinct)++;
			if (later)
				(*split)++;
		}
	}
}

static int open_output(struct worker *w, const char *prefix, uint32_t snap)
{
	char path[4096];
	int err;

	snprintf(path, sizeof(path), "%s.w%u.pcap", prefix, w->id);
	w->f = fopen(path, "wb");
	if (!w->f) {
		err = -errno;
		fprintf(stderr, "fvcap: %s: %s\n", path, strerror(errno));
		return err;
	}
	err = fv_pcapw_open(&w->pw, w->f, FV_PCAPW_PCAP, w->linktype,
			    snap ? snap : 262144);
	if (err)
		fprintf(stderr, "fvcap: %s: %s\n", path, fv_strerror(err));
	return err;
}

static int report(struct worker *ws, unsigned n, int flows)
{
	struct fv_source_stats st, tot;
	uint64_t frags = 0, nokey = 0, unmatched = 0, distinct, split;
	int err;

	if (flows) {
		err = resolve_frags(ws, n, &unmatched);
		if (err) {
			fprintf(stderr, "fvcap: --flows: %s\n",
				fv_strerror(err));
			return err;
		}
	}
	memset(&tot, 0, sizeof(tot));
	for (unsigned i = 0; i < n; i++) {
		err = fv_source_stats(ws[i].src, &st);
		if (err)
			fprintf(stderr, "fvcap: worker %u stats: %s\n", i,
				fv_strerror(err));
		printf("worker %u: packets=%" PRIu64 " bytes=%" PRIu64
		       " kernel_drops=%" PRIu64 " if_drops=%" PRIu64
		       " nombuf=%" PRIu64 " freezes=%" PRIu64,
		       i, st.packets, st.bytes, st.kernel_drops, st.if_drops,
		       st.nombuf, st.freezes);
		if (flows)
			printf(" flows=%zu", ws[i].set.n);
		printf("\n");
		tot.packets += st.packets;
		tot.bytes += st.bytes;
		tot.kernel_drops += st.kernel_drops + st.if_drops + st.nombuf;
		frags += ws[i].frags;
		nokey += ws[i].nokey;
	}
	printf("total: packets=%" PRIu64 " bytes=%" PRIu64 " drops=%" PRIu64,
	       tot.packets, tot.bytes, tot.kernel_drops);
	if (flows) {
		count_split(ws, n, &distinct, &split);
		printf(" flows=%" PRIu64 " split=%" PRIu64 " frags=%" PRIu64
		       " unmatched=%" PRIu64 " nokey=%" PRIu64,
		       distinct, split, frags, unmatched, nokey);
	}
	printf("\n");
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{"backend", required_argument, NULL, 'b'},
		{"threads", required_argument, NULL, 't'},
		{"bpf", required_argument, NULL, 'f'},
		{"snaplen", required_argument, NULL, 's'},
		{"ring", required_argument, NULL, 'r'},
		{"promisc", no_argument, NULL, 'p'},
		{"dpdk-args", required_argument, NULL, 'a'},
		{"dpdk-port", required_argument, NULL, 'P'},
		{"count", required_argument, NULL, 'c'},
		{"seconds", required_argument, NULL, 'S'},
		{"idle", required_argument, NULL, 'I'},
		{"stop-every", required_argument, NULL, 'E'},
		{"pause-us", required_argument, NULL, 'U'},
		{"stats-ms", required_argument, NULL, 'M'},
		{"flows", no_argument, NULL, 'F'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct fv_source_opts o = {.backend = FV_BACKEND_AFPACKET};
	struct cap c = {.stats_ns = 1000000000};
	struct worker *ws = NULL;
	const char *prefix = NULL;
	char errbuf[256];
	unsigned nw = 1, opened = 0, started = 0;
	uint64_t v, seconds_ns = 0;
	int opt, b, err = 0, rc = 1;

	while ((opt = getopt_long(argc, argv, "i:w:h", lopts, NULL)) != -1) {
		switch (opt) {
		case 'b':
			b = fv_backend_parse(optarg);
			if (b < 0) {
				fprintf(stderr, "fvcap: unknown backend %s\n",
					optarg);
				return 2;
			}
			o.backend = (enum fv_backend)b;
			break;
		case 'i':
			o.iface = optarg;
			break;
		case 't':
			if (fv_parse_count(optarg, &v) || !v || v > 64) {
				fprintf(stderr, "fvcap: bad --threads\n");
				return 2;
			}
			nw = (unsigned)v;
			break;
		case 'f':
			o.bpf = optarg;
			break;
		case 's':
			if (fv_parse_count(optarg, &v) || v > UINT32_MAX) {
				fprintf(stderr, "fvcap: bad --snaplen\n");
				return 2;
			}
			o.snaplen = (uint32_t)v;
			break;
		case 'r':
			if (fv_parse_size(optarg, &o.ring_bytes)) {
				fprintf(stderr, "fvcap: bad --ring\n");
				return 2;
			}
			break;
		case 'p':
			o.promisc = 1;
			break;
		case 'a':
			o.dpdk_args = optarg;
			break;
		case 'P':
			if (fv_parse_count(optarg, &v) || v > UINT16_MAX) {
				fprintf(stderr, "fvcap: bad --dpdk-port\n");
				return 2;
			}
			o.dpdk_port = (uint16_t)v;
			break;
		case 'c':
			if (fv_parse_count(optarg, &c.count)) {
				fprintf(stderr, "fvcap: bad --count\n");
				return 2;
			}
			break;
		case 'S':
			if (fv_parse_duration(optarg, &seconds_ns)) {
				fprintf(stderr, "fvcap: bad --seconds\n");
				return 2;
			}
			break;
		case 'I':
			if (fv_parse_duration(optarg, &c.idle_ns)) {
				fprintf(stderr, "fvcap: bad --idle\n");
				return 2;
			}
			break;
		case 'E':
			if (fv_parse_count(optarg, &c.stop_every)) {
				fprintf(stderr, "fvcap: bad --stop-every\n");
				return 2;
			}
			break;
		case 'U':
			if (fv_parse_count(optarg, &v) || v > 1000000) {
				fprintf(stderr, "fvcap: bad --pause-us\n");
				return 2;
			}
			c.pause_us = (unsigned)v;
			break;
		case 'M':
			if (fv_parse_count(optarg, &v) || !v) {
				fprintf(stderr, "fvcap: bad --stats-ms\n");
				return 2;
			}
			c.stats_ns = v * 1000000;
			break;
		case 'w':
			prefix = optarg;
			break;
		case 'F':
			c.flows = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || (!o.iface && o.backend != FV_BACKEND_DPDK)) {
		usage(stderr);
		return 2;
	}
	ws = aligned_alloc(64, sizeof(*ws) * nw);
	if (!ws) {
		fprintf(stderr, "fvcap: out of memory\n");
		return 1;
	}
	memset(ws, 0, sizeof(*ws) * nw);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	o.nworkers = nw;
	o.fanout_id = (unsigned)getpid() & 0xffff;
	for (opened = 0; opened < nw; opened++) {
		struct worker *w = &ws[opened];

		o.worker = opened;
		w->cap = &c;
		w->id = opened;
		err = fv_source_open(&w->src, &o, errbuf);
		if (err) {
			fprintf(stderr, "fvcap: worker %u: %s\n", opened,
				errbuf);
			goto out_close;
		}
		w->linktype = fv_source_linktype(w->src);
		if (prefix && (err = open_output(w, prefix, o.snaplen))) {
			opened++; /* close this worker's source too */
			goto out_close;
		}
	}
	fprintf(stderr, "fvcap: capturing on %s (%s, %u workers)\n",
		fv_source_name(ws[0].src), fv_backend_name(o.backend), nw);
	if (seconds_ns)
		c.deadline = fv_now_mono_ns() + seconds_ns;
	for (started = 0; started < nw; started++) {
		err = -pthread_create(&ws[started].thread, NULL, run_worker,
				      &ws[started]);
		if (err) {
			fprintf(stderr, "fvcap: thread: %s\n", strerror(-err));
			atomic_store(&c.stop, 1);
			break;
		}
	}
	for (unsigned i = 0; i < started; i++)
		pthread_join(ws[i].thread, NULL);
	rc = err ? 1 : 0;
	for (unsigned i = 0; i < nw; i++) {
		if (ws[i].err) {
			fprintf(stderr, "fvcap: worker %u: %s\n", i,
				fv_strerror(ws[i].err));
			rc = 1;
		}
	}
	if (report(ws, nw, c.flows))
		rc = 1;
out_close:
	for (unsigned i = 0; i < opened; i++) {
		if (ws[i].pw && (err = fv_pcapw_close(ws[i].pw))) {
			fprintf(stderr, "fvcap: worker %u output: %s\n", i,
				fv_strerror(err));
			rc = 1;
		}
		if (ws[i].f && fclose(ws[i].f)) {
			fprintf(stderr, "fvcap: worker %u output: %s\n", i,
				strerror(errno));
			rc = 1;
		}
		fv_source_close(ws[i].src);
		keyset_release(&ws[i].set);
		keyset_release(&ws[i].firsts);
		keyset_release(&ws[i].laters);
	}
	free(ws);
	return rc;
}
