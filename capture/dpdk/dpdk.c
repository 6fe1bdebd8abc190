/*
 * dpdk.c - the DPDK backend, built as the plugin flowvault-dpdk.so and
 * loaded by source.c with dlopen() only when a DPDK source is opened
 * (linking libdpdk into flowvault would run DPDK's library constructors
 * at every start). It exports one function, FV_DPDK_OPS_SYMBOL, which
 * returns the ops table, and uses nothing of libflowvault.
 *
 * One port, one RX queue per worker: worker w polls queue w. With more
 * than one worker the port spreads packets with RSS on the IP addresses
 * only (the RTE_ETH_RSS_IP types, no TCP/UDP ports) and a symmetric key
 * (0x6d5a repeated: Toeplitz gives both directions the same hash), so
 * every packet between two hosts reaches one worker. Ports are left out
 * for the fragments: a NIC hashes a fragment on its addresses only (a
 * later fragment has no ports), so with ports in the hash a fragmented
 * flow's whole packets and fragments would reach different workers and
 * be recorded as two partial flows (as afpacket.c explains). A PMD
 * without RSS (net_pcap, net_af_packet) takes one worker only.
 *
 * Life cycle. DPDK is process-wide state, so the EAL and the port live in
 * one static struct shared by the workers of the capture (opens come in
 * worker order from one thread, as source.h says):
 *   worker 0's open:   rte_eal_init() (once per process, with
 *                      opts->dpdk_args), configure the port with
 *                      nworkers RX queues, the mempool, every queue;
 *   the last open:     start the port, promiscuous mode on;
 *   the last close:    stop and close the port, free the mempool,
 *                      rte_eal_cleanup(). DPDK cannot be initialised
 *                      again in the same process after that.
 * The port starts only when every worker's source exists, so no queue
 * fills before its worker is there.
 *
 * Packets: rte_eth_rx_burst() hands mbufs; each one's data goes to the
 * callback in place (a multi-segment mbuf is linearized into a scratch
 * buffer) and the mbuf is freed right after. A callback that stops
 * delivery leaves the rest of the burst for the next poll. DPDK gives no
 * timestamp by default: a burst gets the host's CLOCK_REALTIME when it
 * is received (docs/capture.md). A capture filter is compiled by libpcap
 * and run on each frame here, in software.
 *
 * Counters: packets and bytes per worker; imissed (the NIC had no room)
 * and rx_nombuf (no mbuf) are port-wide and reported by worker 0 only,
 * so sums over workers do not count them twice.
 */
#include <errno.h>
#include <pcap/pcap.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "capture/source_int.h"
#include "common/fv.h"

#define DPK_BURST      32
#define DPK_BUDGET     4096 /* frames per poll before we give the caller a turn */
#define DPK_NB_RXD     1024
#define DPK_IDLE_NS    100000 /* sleep between empty bursts */
#define DPK_MAX_ARGS   64
#define DPK_RSS_KEYMAX 64
#define DPK_LINKTYPE   1 /* LINKTYPE_ETHERNET */

enum dpk_eal { DPK_EAL_NONE, DPK_EAL_UP, DPK_EAL_DONE };

/* The EAL and the port of this process's DPDK capture. */
static struct {
	pthread_mutex_t lock;
	enum dpk_eal eal;
	char *argbuf; /* the split EAL arguments, kept while the EAL runs */
	char **argv;
	struct rte_mempool *pool;
	uint16_t port;
	unsigned nworkers; /* workers of the open capture */
	unsigned nopen;	   /* its sources open now */
	int configured;	   /* the port is configured (to be closed) */
	int started;	   /* set before any worker polls */
} dpk_g = {.lock = PTHREAD_MUTEX_INITIALIZER};

struct dpk {
	uint16_t port;
	uint16_t queue;
	uint32_t snaplen;
	int report_port; /* worker 0: the port-wide counters */
	int filter;	 /* prog is a compiled capture filter */
	struct bpf_program prog;
	uint8_t *scratch;  /* snaplen bytes for multi-segment frames */
	uint16_t pos, cnt; /* burst[pos..cnt) not yet delivered */
	uint64_t burst_ts;
	uint64_t packets, bytes;
	struct rte_mbuf *burst[DPK_BURST];
};

static uint64_t dpk_clock(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * FV_NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

/*
 * Starts the EAL with "flowvault" followed by args split on blanks. The
 * EAL pins the calling thread to its main lcore; the caller's CPU set is
 * put back so the worker threads it creates later are not all pinned to
 * one core.
 */
static int dpk_eal_init(const char *args, char *errbuf)
{
	cpu_set_t cpus;
	int argc = 0, have_cpus, err = 0;
	char *save = NULL, *tok;

	if (dpk_g.eal == DPK_EAL_DONE) {
		snprintf(errbuf, FV_SOURCE_ERRBUF,
			 "dpdk: the EAL was already shut down in this process "
			 "and cannot start again");
		return FV_EUNSUPPORTED;
	}
	if (dpk_g.eal == DPK_EAL_UP)
		return 0;
	dpk_g.argbuf = strdup(args ? args : "");
	dpk_g.argv = calloc(DPK_MAX_ARGS + 2, sizeof(char *));
	if (!dpk_g.argbuf || !dpk_g.argv) {
		err = -ENOMEM;
		goto out_free;
	}
	dpk_g.argv[argc++] = "flowvault";
	for (tok = strtok_r(dpk_g.argbuf, " \t", &save); tok;
	     tok = strtok_r(NULL, " \t", &save)) {
		if (argc > DPK_MAX_ARGS) {
			err = FV_EUSAGE;
			snprintf(errbuf, FV_SOURCE_ERRBUF,
				 "dpdk: more than %d EAL arguments",
				 DPK_MAX_ARGS);
			goto out_free;
		}
		dpk_g.argv[argc++] = tok;
	}
	have_cpus =
		!pthread_getaffinity_np(pthread_self(), sizeof(cpus), &cpus);
	if (rte_eal_init(argc, dpk_g.argv) < 0) {
		err = rte_errno ? -rte_errno : FV_EUSAGE;
		snprintf(errbuf, FV_SOURCE_ERRBUF,
			 "dpdk: EAL initialisation failed (%s); check "
			 "--dpdk-args",
			 rte_strerror(rte_errno));
		/* A failed EAL cannot be initialised again either. */
		dpk_g.eal = DPK_EAL_DONE;
		goto out_free;
	}
	if (have_cpus)
		pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus);
	dpk_g.eal = DPK_EAL_UP;
	return 0;

out_free:
	free(dpk_g.argv);
	free(dpk_g.argbuf);
	dpk_g.argv = NULL;
	dpk_g.argbuf = NULL;
	return err;
}

/* Configures the port with nworkers RX queues and sets them all up. */
static int dpk_port_setup(uint16_t port, unsigned nworkers, char *errbuf)
{
	/* Addresses only, for every IPv4 and IPv6 packet: see the top. */
	static const uint64_t want_rss = RTE_ETH_RSS_IP;
	uint8_t key[DPK_RSS_KEYMAX];
	struct rte_eth_dev_info info;
	struct rte_eth_conf conf;
	struct rte_eth_rxconf rxq;
	uint16_t nb_rxd = DPK_NB_RXD, nb_txd = DPK_NB_RXD;
	unsigned nmbuf, keylen;
	int socket, err;
	char name[32];

	if (!rte_eth_dev_is_valid_port(port)) {
		snprintf(errbuf, FV_SOURCE_ERRBUF,
			 "dpdk: no port %u (%u ports found; add a --vdev or "
			 "-a device to --dpdk-args)",
			 port, (unsigned)rte_eth_dev_count_avail());
		return -ENODEV;
	}
	err = rte_eth_dev_info_get(port, &info);
	if (err)
		goto out_err;
	memset(&conf, 0, sizeof(conf));
	if (nworkers > 1) {
		if (!(info.flow_type_rss_offloads & want_rss) ||
		    info.max_rx_queues < nworkers) {
			snprintf(errbuf, FV_SOURCE_ERRBUF,
				 "dpdk: port %u (%s) has no RSS over %u "
				 "queues: use one worker",
				 port, info.driver_name, nworkers);
			return FV_EUNSUPPORTED;
		}
		/* Symmetric Toeplitz key: 0x6d5a repeated. */
		keylen = info.hash_key_size ? info.hash_key_size : 40;
		if (keylen > sizeof(key))
			keylen = sizeof(key);
		for (unsigned i = 0; i < keylen; i++)
			key[i] = i % 2 ? 0x5a : 0x6d;
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_key = key;
		conf.rx_adv_conf.rss_conf.rss_key_len = (uint8_t)keylen;
		conf.rx_adv_conf.rss_conf.rss_hf =
			want_rss & info.flow_type_rss_offloads;
	}
	if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_SCATTER)
		conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_SCATTER;
	err = rte_eth_dev_configure(port, (uint16_t)nworkers, 0, &conf);
	if (err)
		goto out_err;
	dpk_g.configured = 1;
	err = rte_eth_dev_adjust_nb_rx_tx_desc(port, &nb_rxd, &nb_txd);
	if (err)
		goto out_err;
	socket = rte_eth_dev_socket_id(port);
	nmbuf = nworkers * (nb_rxd + 2 * DPK_BURST) + 1024;
	snprintf(name, sizeof(name), "fv_rx_%u", port);
	dpk_g.pool = rte_pktmbuf_pool_create(name, nmbuf, 0, 0,
					     RTE_MBUF_DEFAULT_BUF_SIZE, socket);
	if (!dpk_g.pool) {
		err = -rte_errno;
		snprintf(errbuf, FV_SOURCE_ERRBUF,
			 "dpdk: mempool of %u mbufs: %s (more memory: -m in "
			 "--dpdk-args)",
			 nmbuf, rte_strerror(rte_errno));
		return err;
	}
	rxq = info.default_rxconf;
	rxq.offloads = conf.rxmode.offloads;
	for (unsigned q = 0; q < nworkers; q++) {
		err = rte_eth_rx_queue_setup(port, (uint16_t)q, nb_rxd,
					     (unsigned)socket, &rxq,
					     dpk_g.pool);
		if (err)
			goto out_err;
	}
	return 0;

out_err:
	snprintf(errbuf, FV_SOURCE_ERRBUF, "dpdk: port %u: %s", port,
		 rte_strerror(-err));
	return err < 0 ? err : -EIO;
}

/* Undoes dpk_port_setup() and the start; the EAL stays. */
static void dpk_port_release(void)
{
	if (dpk_g.started)
		rte_eth_dev_stop(dpk_g.port);
	if (dpk_g.configured)
		rte_eth_dev_close(dpk_g.port);
	if (dpk_g.pool)
		rte_mempool_free(dpk_g.pool);
	dpk_g.started = 0;
	dpk_g.configured = 0;
	dpk_g.pool = NULL;
}

static int dpk_port_start(char *errbuf)
{
	int err = rte_eth_dev_start(dpk_g.port);

	if (err) {
		snprintf(errbuf, FV_SOURCE_ERRBUF, "dpdk: port %u start: %s",
			 dpk_g.port, rte_strerror(-err));
		return err < 0 ? err : -EIO;
	}
	/* Some PMDs (net_pcap) have no such mode: not an error. */
	rte_eth_promiscuous_enable(dpk_g.port);
	dpk_g.started = 1;
	return 0;
}

static int dpk_compile(struct dpk *d, const char *bpf, char *errbuf)
{
	pcap_t *dead = pcap_open_dead(DLT_EN10MB, (int)d->snaplen);
	int err = 0;

	if (!dead)
		return -ENOMEM;
	if (pcap_compile(dead, &d->prog, bpf, 1, PCAP_NETMASK_UNKNOWN) < 0) {
		snprintf(errbuf, FV_SOURCE_ERRBUF,
			 "bad filter \"%.64s\": %.150s", bpf,
			 pcap_geterr(dead));
		err = FV_EPCAP;
	} else {
		d->filter = 1;
	}
	pcap_close(dead);
	return err;
}

static void dpk_free(struct dpk *d)
{
	if (d->filter)
		pcap_freecode(&d->prog);
	free(d->scratch);
	free(d);
}

/* Opens worker o->worker: the first sets the port up, the last starts
 * it. Called with dpk_g.lock held. */
static int dpk_open_locked(struct fv_source *s, struct dpk *d, char *errbuf)
{
	const struct fv_source_opts *o = &s->opts;
	int err;

	if (o->worker == 0) {
		if (dpk_g.nopen) {
			snprintf(errbuf, FV_SOURCE_ERRBUF,
				 "dpdk: a capture is already open in this "
				 "process");
			return -EBUSY;
		}
		err = dpk_eal_init(o->dpdk_args, errbuf);
		if (err)
			return err;
		dpk_g.port = o->dpdk_port;
		dpk_g.nworkers = o->nworkers;
		err = dpk_port_setup(o->dpdk_port, o->nworkers, errbuf);
		if (err) {
			dpk_port_release();
			return err;
		}
	} else if (o->worker != dpk_g.nopen || o->nworkers != dpk_g.nworkers ||
		   o->dpdk_port != dpk_g.port || !dpk_g.configured) {
		snprintf(errbuf, FV_SOURCE_ERRBUF,
			 "dpdk: worker %u opened out of order (open workers "
			 "0..%u of port %u first)",
			 o->worker, o->nworkers - 1, o->dpdk_port);
		return FV_EUSAGE;
	}
	if (o->worker == o->nworkers - 1) {
		err = dpk_port_start(errbuf);
		if (err) {
			if (o->worker == 0)
				dpk_port_release();
			return err;
		}
	}
	d->port = o->dpdk_port;
	d->queue = (uint16_t)o->worker;
	d->report_port = o->worker == 0;
	dpk_g.nopen++;
	return 0;
}

static int dpk_open(struct fv_source *s, char *errbuf)
{
	const struct fv_source_opts *o = &s->opts;
	struct dpk *d;
	int err;

	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->snaplen = o->snaplen;
	d->scratch = malloc(d->snaplen);
	if (!d->scratch) {
		err = -ENOMEM;
		goto out_free;
	}
	if (o->bpf) {
		err = dpk_compile(d, o->bpf, errbuf);
		if (err)
			goto out_free;
	}
	pthread_mutex_lock(&dpk_g.lock);
	err = dpk_open_locked(s, d, errbuf);
	pthread_mutex_unlock(&dpk_g.lock);
	if (err)
		goto out_free;
	s->linktype = DPK_LINKTYPE;
	snprintf(s->name, sizeof(s->name), "dpdk:%u", o->dpdk_port);
	s->priv = d;
	return 0;

out_free:
	dpk_free(d);
	return err;
}

/*
 * Gives one mbuf's frame to cb unless the filter drops it. Returns cb's
 * value (0 also for a dropped frame); *n counts the frames delivered.
 */
static int dpk_deliver(struct dpk *d, struct rte_mbuf *m, fv_source_cb cb,
		       void *arg, int *n)
{
	struct fv_source_pkt p;
	uint32_t caplen = m->pkt_len < d->snaplen ? m->pkt_len : d->snaplen;

	if (m->nb_segs > 1)
		p.data = rte_pktmbuf_read(m, 0, caplen, d->scratch);
	else
		p.data = rte_pktmbuf_mtod(m, const uint8_t *);
	if (!p.data)
		return 0;
	if (d->filter) {
		struct pcap_pkthdr h = {.caplen = caplen, .len = m->pkt_len};
		int keep = pcap_offline_filter(&d->prog, &h, p.data);

		if (!keep)
			return 0;
		if ((uint32_t)keep < caplen)
			caplen = (uint32_t)keep;
	}
	p.ts_ns = d->burst_ts;
	p.caplen = caplen;
	p.origlen = m->pkt_len;
	d->packets++;
	d->bytes += m->pkt_len;
	(*n)++;
	return cb(arg, &p);
}

static int dpk_poll(struct fv_source *s, int timeout_ms, fv_source_cb cb,
		    void *arg)
{
	const struct timespec idle = {0, DPK_IDLE_NS};
	struct dpk *d = s->priv;
	uint64_t deadline = 0;
	int n = 0, rc;

	if (!dpk_g.started)
		return FV_EUSAGE; /* not every worker's source was opened */
	for (;;) {
		if (d->pos == d->cnt) {
			if (n >= DPK_BUDGET)
				return n;
			d->pos = 0;
			d->cnt = rte_eth_rx_burst(d->port, d->queue, d->burst,
						  DPK_BURST);
			if (!d->cnt) {
				uint64_t now = dpk_clock(CLOCK_MONOTONIC);

				if (n)
					return n;
				if (!deadline)
					deadline = now + (uint64_t)timeout_ms *
								 1000000u;
				if (now >= deadline)
					return 0;
				nanosleep(&idle, NULL);
				continue;
			}
			d->burst_ts = dpk_clock(CLOCK_REALTIME);
		}
		while (d->pos < d->cnt) {
			struct rte_mbuf *m = d->burst[d->pos++];

			rc = dpk_deliver(d, m, cb, arg, &n);
			rte_pktmbuf_free(m);
			if (rc)
				return rc;
		}
	}
}

static int dpk_stats(struct fv_source *s, struct fv_source_stats *st)
{
	struct dpk *d = s->priv;
	struct rte_eth_stats es;
	int err;

	st->packets = d->packets;
	st->bytes = d->bytes;
	if (!d->report_port)
		return 0;
	err = rte_eth_stats_get(d->port, &es);
	if (err)
		return err < 0 ? err : -EIO;
	st->if_drops = es.imissed;
	st->nombuf = es.rx_nombuf;
	return 0;
}

static void dpk_close(struct fv_source *s)
{
	struct dpk *d = s->priv;

	while (d->pos < d->cnt)
		rte_pktmbuf_free(d->burst[d->pos++]);
	pthread_mutex_lock(&dpk_g.lock);
	if (--dpk_g.nopen == 0) {
		dpk_port_release();
		rte_eal_cleanup();
		dpk_g.eal = DPK_EAL_DONE;
		free(dpk_g.argv);
		free(dpk_g.argbuf);
		dpk_g.argv = NULL;
		dpk_g.argbuf = NULL;
	}
	pthread_mutex_unlock(&dpk_g.lock);
	dpk_free(d);
}

static const struct fv_source_ops dpk_ops = {
	.abi = FV_SOURCE_ABI,
	.open = dpk_open,
	.poll = dpk_poll,
	.stats = dpk_stats,
	.close = dpk_close,
};

/* The plugin's entry point (FV_DPDK_OPS_SYMBOL). */
__attribute__((visibility("default"))) const struct fv_source_ops *
fv_dpdk_source_ops(void);

const struct fv_source_ops *fv_dpdk_source_ops(void)
{
	return &dpk_ops;
}
