/*
 * cli.h - the command-line subcommands and what they share. Only this
 * layer (and the REST layer) talks to people: it prints, it exits.
 */
#ifndef FV_API_CLI_H
#define FV_API_CLI_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "capture/flow.h"
#include "index/index.h"
#include "storage/store.h"

/* Set by SIGINT/SIGTERM handlers in main.c: the one mutable global. */
extern volatile sig_atomic_t fv_cli_stop;

int fv_cli_import(int argc, char **argv);
int fv_cli_flows(int argc, char **argv);
int fv_cli_extract(int argc, char **argv);
int fv_cli_status(int argc, char **argv);

/* Exit codes scripts can trust. */
enum {
	FV_EXIT_OK = 0,
	FV_EXIT_ERROR = 1,    /* runtime failure */
	FV_EXIT_USAGE = 2,    /* bad arguments or filter */
	FV_EXIT_NOTFOUND = 3, /* no such flow */
	FV_EXIT_EXPIRED = 4,  /* packets no longer in the store */
};

/* Store-wide interfaces: (link type, snaplen) pairs, numbered from 0,
 * kept in the index meta "ifaces". */
#define FV_MAX_IFACES 256
struct fv_ifaces {
	unsigned n;
	struct {
		uint32_t linktype;
		uint32_t snaplen;
	} v[FV_MAX_IFACES];
};
int fv_ifaces_load(struct fv_index *ix, struct fv_ifaces *ifs);
/* Finds or adds (linktype, snaplen); returns its number or -ENOSPC.
 * *added is set when the table changed (save it in the next txn). */
int fv_ifaces_get(struct fv_ifaces *ifs, uint32_t linktype, uint32_t snaplen,
		  int *added);
int fv_ifaces_save(struct fv_index *ix, const struct fv_ifaces *ifs);

/* An opened store for reading. */
struct fv_cli_store {
	const char *dir;
	struct fv_store_conf conf;
	struct fv_index *ix;
	struct fv_ifaces ifs;
};
int fv_cli_store_open(struct fv_cli_store *s, const char *dir);
void fv_cli_store_close(struct fv_cli_store *s);

/* Prints "flowvault CMD: MSG" to stderr (printf-style). */
void fv_cli_err(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Formats an address of the key (family 4 or 6). */
char *fv_cli_addr(uint8_t family, const uint8_t *a, char *buf, unsigned len);
const char *fv_cli_proto_name(uint8_t proto, char *buf, unsigned len);
char *fv_cli_tcp_flags(uint8_t f, char *buf);
const char *fv_cli_end_name(uint8_t reason);

/* Flow output formats. */
enum fv_flow_fmt { FV_FMT_TABLE, FV_FMT_JSON, FV_FMT_NDJSON, FV_FMT_CSV };
int fv_cli_parse_fmt(const char *s, enum fv_flow_fmt *fmt);
void fv_cli_flow_header(FILE *out, enum fv_flow_fmt fmt);
void fv_cli_flow_print(FILE *out, enum fv_flow_fmt fmt, const struct fv_flow *f,
		       int first);
void fv_cli_flow_footer(FILE *out, enum fv_flow_fmt fmt, int any);

/* A human size ("1.5 MB"). */
char *fv_cli_hsize(uint64_t v, char *buf, unsigned len);

#endif
