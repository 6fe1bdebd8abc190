/*
 * flow.h - the flow record and the per-worker flow table.
 *
 * A flow is bidirectional: both directions of a canonical 5-tuple (+ the
 * outer VLAN id) belong to one flow. The client is the side that sent a
 * SYN without ACK, or else the side that sent the first packet seen.
 * Direction 0 is client -> server, direction 1 server -> client.
 *
 * Expiry follows NetFlow/IPFIX (RFC 5102 flowEndReason): a flow ends when
 * idle for idle_timeout, at FIN in both directions or RST (after a short
 * linger so the last ACK still counts), or at the end of input. A flow
 * older than active_timeout is *checkpointed*: its record so far is
 * written and it goes on under the same id. The table has a fixed number
 * of entries allocated at start; a packet whose flow finds no free entry
 * is still stored (flow id 0) and counted in overflow.
 *
 * The table owns no I/O: it reports records and packet places through
 * the callbacks of struct fv_flow_sink.
 */
#ifndef FV_CAPTURE_FLOW_H
#define FV_CAPTURE_FLOW_H

#include <stdint.h>

#include "capture/decode.h"

enum fv_flow_end {
	FV_END_NONE = 0, /* still open (a checkpoint) */
	FV_END_IDLE = 1,
	FV_END_ACTIVE = 2, /* checkpoint at the active timeout */
	FV_END_FIN = 3,
	FV_END_RST = 4,
	FV_END_EOF = 5,	  /* input ended (import) or the recorder stopped */
	FV_END_EVICT = 6, /* evicted to make room */
};

enum fv_flow_flag {
	FV_FLOW_CLIENT_SYN = 1 << 0, /* client chosen by a SYN */
	FV_FLOW_FRAGS = 1 << 1,	     /* fragments were attached to it */
	FV_FLOW_PARTIAL = 1 << 2,    /* record is a checkpoint, more to come */
};

/* A flow record: what the index keeps and the filter matches. */
struct fv_flow {
	uint64_t id;		/* store-wide, never reused */
	struct fv_flow_key key; /* client -> server */
	uint64_t first_ns;
	uint64_t last_ns;
	uint64_t pkts[2];     /* [0] client->server, [1] server->client */
	uint64_t bytes[2];    /* on-wire frame lengths (origlen) */
	uint8_t tcp_flags[2]; /* OR of the TCP flags per direction */
	uint8_t icmp_type;    /* of the first packet, for ICMP flows */
	uint8_t icmp_code;
	uint8_t end_reason; /* enum fv_flow_end */
	uint8_t worker;
	uint16_t flags; /* enum fv_flow_flag */
	uint16_t iface; /* store-wide interface number */
	uint16_t reserved;
	uint32_t places_parts; /* packet-place chunks written so far */
};

/*
 * Where a flow's packets are, encoded as a list of runs: for each run,
 * varint(ref - previous ref), varint(packets in that block), then
 * varint(offset of the run's first record in the block / 8) (the later
 * records follow the block's per-flow chain); the first "previous ref"
 * is 0. Runs are in capture order; a flow lives on one worker, so its
 * refs only increase.
 */
#define FV_PLACES_CHUNK 256 /* bytes of encoded runs kept per flow entry */

/* Receives what the table produces. Each callback returns 0 or -errno;
 * an error stops fv_flow_packet() and is returned from it. */
struct fv_flow_sink {
	/* A record, final or a checkpoint (end_reason says which). */
	int (*record)(void *arg, const struct fv_flow *f);
	/* A chunk of the flow's places, parts numbered from 0. */
	int (*places)(void *arg, uint64_t flow_id, uint32_t part,
		      const uint8_t *enc, uint32_t len);
	void *arg;
};

struct fv_flow_opts {
	uint32_t max_flows;	      /* entries, fixed at start */
	uint64_t idle_timeout_ns;     /* default 60 s (tcp) */
	uint64_t udp_idle_timeout_ns; /* default 60 s; also other protocols */
	uint64_t active_timeout_ns;   /* default 1800 s */
	uint64_t fin_linger_ns;	      /* default 5 s */
	uint8_t worker;
};

struct fv_flow_stats {
	uint64_t packets;
	uint64_t undecoded;	      /* no flow key: stored with flow id 0 */
	uint64_t fragments_unmatched; /* later fragment with no first one */
	uint64_t overflow;	      /* packets that found no free entry */
	uint64_t flows_created;
	uint64_t flows_ended;
	uint64_t checkpoints;
	uint64_t active; /* open now */
};

struct fv_flow_table;

/* Allocates the table. next_id is shared by the workers of a store
 * (atomically incremented). Returns 0 or -ENOMEM. */
int fv_flow_table_new(struct fv_flow_table **out,
		      const struct fv_flow_opts *opts, uint64_t *next_id,
		      const struct fv_flow_sink *sink);
void fv_flow_table_free(struct fv_flow_table *t);

/*
 * Accounts one decoded packet at time ts_ns (pkt may be undecoded:
 * key.family == 0) and returns in *flow_id the id of its flow (0 if
 * none). Call fv_flow_place() once the frame's block is known.
 */
int fv_flow_packet(struct fv_flow_table *t, const struct fv_pkt *pkt,
		   uint64_t ts_ns, uint32_t origlen, uint16_t iface,
		   uint64_t *flow_id);

/* The place (block ref, offset) of the record before the last packet's
 * (flow_id's, as fv_flow_packet() returned it): what the segment writer
 * chains the new record to. {0, 0} when there is none. */
void fv_flow_last_place(const struct fv_flow_table *t, uint64_t flow_id,
			uint64_t *ref, uint32_t *off);

/* Records that the last packet of flow_id is at (block ref, offset). */
int fv_flow_place(struct fv_flow_table *t, uint64_t flow_id, uint64_t ref,
		  uint32_t off);

/* Expires flows idle or active as of now_ns (packet time). */
int fv_flow_expire(struct fv_flow_table *t, uint64_t now_ns);

/*
 * Writes the record (and places) of every flow that closed (FIN both
 * ways, or RST) and got packets since it was last written, without
 * ending it: called before each commit, so a finished connection is
 * listed at once, not after its linger. A late packet makes the flow
 * written again when it ends. Call it only when every packet so far has
 * its place (fv_flow_place).
 */
int fv_flow_publish_closing(struct fv_flow_table *t);

/* Ends every open flow with reason (end of input, shutdown). */
int fv_flow_flush(struct fv_flow_table *t, enum fv_flow_end reason);
/* The same for max flows at most (least recently active first): returns
 * how many it ended, or an error. A writer commits between such chunks
 * so that no single index transaction takes a whole flow table. */
int fv_flow_flush_some(struct fv_flow_table *t, enum fv_flow_end reason,
		       unsigned max);
#define FV_FLOW_FLUSH_CHUNK 32768

void fv_flow_get_stats(const struct fv_flow_table *t, struct fv_flow_stats *st);

/* Canonical order helper: 1 if key's (saddr,sport) > (daddr,dport). */
int fv_flow_key_cmp_dir(const struct fv_flow_key *k);

#endif
