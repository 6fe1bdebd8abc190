/*
 * source.h - live packet sources: one API, one backend per kind
 * (AF_PACKET TPACKET_V3, libpcap, DPDK), the way libpcap puts its
 * platforms behind one ops table.
 *
 * A *source* is one worker's view of a capture: `record --threads N`
 * opens N sources of the same backend on the same interface (worker
 * 0..N-1) and each worker thread polls its own. The backend spreads
 * packets over the workers so that both directions of a flow reach the
 * same worker, IP fragments included (AF_PACKET: a PACKET_FANOUT_CBPF
 * program that hashes the two IP addresses symmetrically; DPDK: one RX
 * queue per worker with address-only symmetric RSS; libpcap: one worker
 * only). Balance is therefore by host pair (docs/capture.md).
 *
 * Packets are handed to a callback straight from the backend's buffer
 * (the TPACKET_V3 ring block, the DPDK mbuf): the data pointer is valid
 * only during the callback, which copies what it keeps. The backend
 * gives the ring block / mbuf back right after the callback returns.
 *
 * Every drop is counted: fv_source_stats() returns the kernel's or the
 * NIC's counters (cumulative since open) beside the packets delivered.
 *
 * A source is used by one thread. fv_source_open() of several workers of
 * one capture is done from one thread, in worker order, before the
 * workers start.
 */
#ifndef FV_CAPTURE_SOURCE_H
#define FV_CAPTURE_SOURCE_H

#include <stdint.h>

enum fv_backend {
	FV_BACKEND_AFPACKET = 0, /* default on Linux */
	FV_BACKEND_PCAP = 1,
	FV_BACKEND_DPDK = 2,
};

struct fv_source_opts {
	enum fv_backend backend;
	const char *iface;     /* interface name (afpacket, pcap) */
	unsigned worker;       /* 0..nworkers-1 */
	unsigned nworkers;     /* sources of this capture (fanout / queues) */
	uint32_t snaplen;      /* bytes kept per frame; 0 = 262144 */
	const char *bpf;       /* capture filter, NULL = everything */
	uint64_t ring_bytes;   /* afpacket ring / pcap buffer per worker; 0 =
				  default (64 MiB) */
	int promisc;	       /* put the interface in promiscuous mode */
	unsigned fanout_id;    /* afpacket: the group id shared by the workers
				  of one capture (e.g. getpid() & 0xffff) */
	const char *dpdk_args; /* dpdk: EAL arguments, space separated */
	uint16_t dpdk_port;    /* dpdk: port id (0 = the first port) */
};

/* One packet, valid during the callback only. */
struct fv_source_pkt {
	uint64_t ts_ns; /* ns since the epoch */
	uint32_t caplen;
	uint32_t origlen;
	const uint8_t *data;
};

/* Cumulative since open, for this worker's source. */
struct fv_source_stats {
	uint64_t packets;      /* delivered to the callback */
	uint64_t bytes;	       /* origlen of those */
	uint64_t kernel_drops; /* afpacket tp_drops, pcap ps_drop */
	uint64_t if_drops;     /* pcap ps_ifdrop; dpdk imissed */
	uint64_t nombuf;       /* dpdk rx_nombuf */
	uint64_t freezes;      /* afpacket tp_freeze_q_cnt */
};

struct fv_source;

/*
 * Opens one worker's source. Returns 0 and *out, or an error (-errno,
 * FV_EPCAP for a BPF that does not compile, FV_EUNSUPPORTED for a
 * backend not built in) with a sentence for people in errbuf (>= 256
 * bytes), e.g. "eth9: no such interface" or "need CAP_NET_RAW".
 */
int fv_source_open(struct fv_source **out, const struct fv_source_opts *o,
		   char *errbuf);

/*
 * Delivers the packets that are ready, calling cb for each, and waits at
 * most timeout_ms for some to arrive (a quiet link still returns, so the
 * caller can commit and check for a stop). Returns the number of packets
 * delivered (0 on timeout), the first non-zero value cb returned (which
 * stops delivery; the packets not yet delivered stay queued), or -errno.
 */
int fv_source_poll(struct fv_source *s, int timeout_ms,
		   int (*cb)(void *arg, const struct fv_source_pkt *p),
		   void *arg);

/* The LINKTYPE_* of the frames (LINKTYPE_ETHERNET = 1 for afpacket and
 * dpdk). */
int fv_source_linktype(const struct fv_source *s);

/* The interface's name as the store records it ("eth1", "dpdk:0"). */
const char *fv_source_name(const struct fv_source *s);

/* Reads the counters (a syscall or a NIC query: call it about once a
 * second, not per packet). Returns 0 or -errno. */
int fv_source_stats(struct fv_source *s, struct fv_source_stats *st);

void fv_source_close(struct fv_source *s);

/* "afpacket", "pcap", "dpdk"; and back (-1 for an unknown name). */
const char *fv_backend_name(enum fv_backend b);
int fv_backend_parse(const char *name);

#endif
