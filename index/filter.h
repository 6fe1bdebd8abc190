/*
 * filter.h - the flow filter language, in the spirit of nfdump's.
 *
 *   expr    := term { ("or" | "||") term }
 *   term    := factor { ["and" | "&&"] factor }     (and binds tighter)
 *   factor  := ("not" | "!") factor | "(" expr ")" | prim
 *   prim    := [dir] ("host"|"ip") ADDR     | [dir] "net" CIDR
 *            | [dir] "port" NUM             | "proto" (NAME | NUM)
 *            | "tcp" | "udp" | "icmp" | "icmp6" | "sctp"
 *            | "ipv4" | "inet" | "ipv6" | "inet6"
 *            | "vlan" NUM | "flow" NUM (the flow id)
 *            | ("cid" | "community-id") STRING
 *            | NUMFIELD CMP NUM[k|K|m|M|g|G]
 *   dir     := "src" | "dst" | "client" | "server"
 *   NUMFIELD:= "bytes" | "packets" | "pkts" | "duration" | "ipackets"?...
 *   CMP     := ">" | ">=" | "<" | "<=" | "=" | "==" | "!="
 *
 * A flow is bidirectional: "src" means the client side, "dst" the server
 * side (so nfdump's unidirectional habits mostly carry over); without a
 * direction, either side matches. bytes/packets count both directions;
 * "cbytes"/"sbytes" and "cpackets"/"spackets" count one. duration is in
 * seconds (fractions allowed) unless suffixed with ms/s/m/h. Size
 * suffixes K/M/G are powers of 1000 as in nfdump. Keywords are
 * case-insensitive. The empty string or "any" matches every flow.
 */
#ifndef FV_INDEX_FILTER_H
#define FV_INDEX_FILTER_H

#include <stdbool.h>
#include <stdint.h>

#include "capture/flow.h"

struct fv_filter;

/* Where and why a filter did not parse. */
struct fv_filter_error {
	int pos;       /* 0-based byte offset of the offending token */
	int len;       /* its length (>= 1, 0 at end of input) */
	char msg[160]; /* e.g. "expected an address after 'host'" */
};

/*
 * Compiles expr. Returns 0 and *out (free with fv_filter_free), or
 * FV_EFILTER with *err filled, or -ENOMEM.
 */
int fv_filter_compile(const char *expr, struct fv_filter **out,
		      struct fv_filter_error *err);
void fv_filter_free(struct fv_filter *f);

/* True if flow f matches. f is only read; safe from many threads. */
bool fv_filter_match(const struct fv_filter *f, const struct fv_flow *flow);

/*
 * What every matching flow must have, for the index to narrow a scan:
 * the top-level AND of the filter is searched for one host address
 * (any direction) or one port. kind is 0 when there is none.
 */
struct fv_filter_plan {
	enum { FV_PLAN_NONE, FV_PLAN_HOST, FV_PLAN_PORT, FV_PLAN_FLOW } kind;
	uint8_t family; /* for HOST */
	uint8_t addr[16];
	uint16_t port;
	uint64_t flow_id;
};
void fv_filter_plan(const struct fv_filter *f, struct fv_filter_plan *p);

#endif
