/*
 * cli.h - the command-line subcommands and what they share. Only this
 * layer (and the REST layer) talks to people: it prints, it exits.
 */
#ifndef FV_API_CLI_H
#define FV_API_CLI_H

#include <signal.h>
#include <stddef.h>
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
int fv_cli_record(int argc, char **argv);
int fv_cli_fsck(int argc, char **argv);

/* The API's listen and credential options, the same for serve and
 * record --listen (docs/api.md "Safe by default"). */
enum {
	FV_OPT_INSECURE = 0x1100, /* --insecure (or --allow-remote) */
	FV_OPT_TOKEN,		  /* --auth-token-file FILE */
	FV_OPT_TLS_CERT,	  /* --tls-cert FILE */
	FV_OPT_TLS_KEY,		  /* --tls-key FILE */
	FV_OPT_TLS_CA,		  /* --tls-client-ca FILE */
};
#define FV_CLI_API_LONGOPTS                                                    \
	{"insecure", no_argument, 0, FV_OPT_INSECURE},                         \
		{"allow-remote", no_argument, 0, FV_OPT_INSECURE},             \
		{"auth-token-file", required_argument, 0, FV_OPT_TOKEN},       \
		{"tls-cert", required_argument, 0, FV_OPT_TLS_CERT},           \
		{"tls-key", required_argument, 0, FV_OPT_TLS_KEY},             \
	{                                                                      \
		"tls-client-ca", required_argument, 0, FV_OPT_TLS_CA           \
	}
#define FV_CLI_API_USAGE                                                        \
	"      --auth-token-file F  every API request needs 'Authorization:\n"  \
	"                           Bearer TOKEN', TOKEN the first line of F\n" \
	"      --tls-cert F, --tls-key F  HTTPS with this certificate (PEM)\n"  \
	"      --tls-client-ca F    and a client certificate signed by F\n"     \
	"      --insecure           a non-loopback address with neither\n"      \
	"                           (anyone who reaches it reads every packet)\n"
struct fv_cli_api {
	int insecure;
	const char *token_file, *tls_cert, *tls_key, *tls_ca;
};
/* Takes getopt code c if it is one of FV_CLI_API_LONGOPTS: 1, else 0. */
int fv_cli_api_opt(int c, const char *arg, struct fv_cli_api *a);

/* Starts the REST API (api/rest.h) for command cmd on listen
 * ("ADDR:PORT") with the credentials of a: a non-loopback address only
 * with a token, TLS or --insecure; prints where it listens, or why not.
 * Returns an FV_EXIT_ code. */
struct fv_rest;
struct fv_rest_opts;
int fv_cli_rest_start(const char *cmd, const char *listen,
		      const struct fv_cli_api *a, struct fv_rest_opts *o,
		      struct fv_rest **r);

/* Exit codes scripts can trust. */
enum {
	FV_EXIT_OK = 0,
	FV_EXIT_ERROR = 1,    /* runtime failure */
	FV_EXIT_USAGE = 2,    /* bad arguments or filter */
	FV_EXIT_NOTFOUND = 3, /* no such flow */
	FV_EXIT_EXPIRED = 4,  /* packets no longer in the store */
	FV_EXIT_DAMAGED = 5,  /* fsck: index and segments disagree */
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
/* The meta "ifaces" bytes (FV_IFACES_BYTES at most); returns the length. */
#define FV_IFACES_BYTES (FV_MAX_IFACES * 8)
size_t fv_ifaces_encode(const struct fv_ifaces *ifs, uint8_t *buf);

/* An opened store for reading. */
struct fv_cli_store {
	const char *dir;
	struct fv_store_conf conf;
	struct fv_index *ix;
	struct fv_ifaces ifs;
};
/* Opens the store at dir for reading. A format version this build does
 * not read (FV_EVERSION) is explained on stderr (fv_cli_version_err)
 * before it returns; other errors are the caller's to tell. */
int fv_cli_store_open(struct fv_cli_store *s, const char *dir);
void fv_cli_store_close(struct fv_cli_store *s);

/*
 * Format versions (docs/format.md): after opening the store at dir gave
 * FV_EVERSION, says on stderr, as "flowvault: DIR: ...", which part is in
 * a version this build does not read (the settings file's store format,
 * the index format, or the first block of a segment file), the version
 * found and the one read here, and what to do. writing: the caller meant
 * to write (it adds that nothing was written).
 */
void fv_cli_version_err(const char *dir, int writing);
/* For a writer, before it opens the ring: FV_EVERSION (said as above) if
 * the first block of a segment file is of a version this build does not
 * read (the ring would not see its generation and could refill a
 * segment the index points into), else 0. */
int fv_cli_writer_check_blocks(const char *dir, const struct fv_store_conf *c);
/* "block R (worker W, generation G: segments/wWW/sNNNNNN.fvseg at byte B)
 * is in block format V, written by an older flowvault (this one reads
 * ...)" into buf, for a block whose header holds version. Returns buf. */
char *fv_cli_block_version(char *buf, unsigned len,
			   const struct fv_store_conf *c, fv_ref ref,
			   unsigned version);

/* What status (CLI and REST) reports of the blocks the index lists: the
 * packets still on disk, in all and per worker. fv_block_tally_add is
 * fv_index_blocks' callback (arg: a zeroed struct fv_block_tally). */
struct fv_block_tally {
	uint64_t blocks, first, last, packets;
	uint64_t wfirst[FV_INDEX_WORKERS], wlast[FV_INDEX_WORKERS];
};
int fv_block_tally_add(void *arg, const struct fv_block_info *bi);
/* Segment files of the store and the bytes they take on disk. */
void fv_segment_usage(const char *store, uint64_t *files, uint64_t *bytes);

/* Prints "flowvault CMD: MSG" to stderr (printf-style). */
void fv_cli_err(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Formats an address of the key (family 4 or 6). */
char *fv_cli_addr(uint8_t family, const uint8_t *a, char *buf, unsigned len);
const char *fv_cli_proto_name(uint8_t proto, char *buf, unsigned len);
char *fv_cli_tcp_flags(uint8_t f, char *buf);
const char *fv_cli_end_name(uint8_t reason);

/* Flow sort keys, the same for the CLI and REST (their numbers are in
 * REST cursors: append only). */
enum fv_flow_sort {
	FV_SORT_TIME, /* first_ns */
	FV_SORT_BYTES,
	FV_SORT_PACKETS,
	FV_SORT_DURATION,
	FV_SORT_ID,
};
/* "time" (or "first"), "bytes", "packets", "duration", "id": 0 and *k,
 * or FV_EUSAGE. */
int fv_flow_sort_parse(const char *s, enum fv_flow_sort *k);
uint64_t fv_flow_sort_val(enum fv_flow_sort k, const struct fv_flow *f);

/* Flow output formats. */
enum fv_flow_fmt { FV_FMT_TABLE, FV_FMT_JSON, FV_FMT_NDJSON, FV_FMT_CSV };
int fv_cli_parse_fmt(const char *s, enum fv_flow_fmt *fmt);
void fv_cli_flow_header(FILE *out, enum fv_flow_fmt fmt);
/* rt: the store's packet retention, for the packets_available column
 * (yes / partial / expired); NULL prints "yes". */
void fv_cli_flow_print(FILE *out, enum fv_flow_fmt fmt, const struct fv_flow *f,
		       int first, const struct fv_retention *rt);
void fv_cli_flow_footer(FILE *out, enum fv_flow_fmt fmt, int any);

/* ---- shared by the writing commands (cli_writer.c) ---- */

/* getopt codes of the flow-table options, the same for import and record:
 * {"max-flows", required_argument, 0, FV_OPT_MAX_FLOWS}, ... */
enum {
	FV_OPT_MAX_FLOWS = 0x1000,
	FV_OPT_IDLE,	       /* --idle-timeout: UDP and other protocols */
	FV_OPT_TCP_IDLE,       /* --tcp-idle-timeout */
	FV_OPT_ACTIVE,	       /* --active-timeout */
	FV_OPT_LINGER,	       /* --fin-linger */
	FV_OPT_FLOW_RETENTION, /* --flow-retention */
	FV_OPT_COMPRESS, /* --compress (a writer option, not a flow one) */
};
#define FV_CLI_FLOW_LONGOPTS                                                   \
	{"max-flows", required_argument, 0, FV_OPT_MAX_FLOWS},                 \
		{"idle-timeout", required_argument, 0, FV_OPT_IDLE},           \
		{"tcp-idle-timeout", required_argument, 0, FV_OPT_TCP_IDLE},   \
		{"active-timeout", required_argument, 0, FV_OPT_ACTIVE},       \
		{"fin-linger", required_argument, 0, FV_OPT_LINGER},           \
		{"flow-retention", required_argument, 0,                       \
		 FV_OPT_FLOW_RETENTION},                                       \
	{                                                                      \
		"compress", required_argument, 0, FV_OPT_COMPRESS              \
	}
#define FV_CLI_FLOW_USAGE                                                        \
	"      --max-flows N        flow table entries per worker (262144)\n"    \
	"      --idle-timeout T     UDP/other flows end after T idle (60s)\n"    \
	"      --tcp-idle-timeout T TCP flows end after T idle (300s)\n"         \
	"      --active-timeout T   checkpoint long flows every T (1800s)\n"     \
	"      --fin-linger T       keep a closed TCP flow T for late\n"         \
	"                           packets (5s)\n"                              \
	"      --flow-retention T   drop flow records that ended T before\n"     \
	"                           the newest packet (e.g. 90d; kept in the\n"  \
	"                           store; default: while the index has room)\n" \
	"      --compress zstd[:L]  compress each block with zstd level L\n"     \
	"                           (1..19, default 1) as it is written; none\n" \
	"                           (the default) stores records as they are\n"

void fv_cli_flow_defaults(struct fv_flow_opts *fo);
struct fv_worker_shared;
/* Applies flow option c (an FV_OPT_* code) to sh. Returns 0, or
 * FV_EUSAGE after saying what is wrong. */
int fv_cli_flow_opt(const char *cmd, int c, const char *arg,
		    struct fv_worker_shared *sh);

/*
 * Opens (creating if needed, with max_disk planned for workers) a store
 * for writing: the writer lock, the index, its interface table and next
 * flow id. Says what is wrong on failure. Returns 0 or an error; close
 * with fv_cli_writer_close().
 */
int fv_cli_writer_open(const char *cmd, struct fv_worker_shared *sh,
		       const char *store, uint64_t max_disk, unsigned workers,
		       struct fv_ifaces *ifs, int *lockfd);
void fv_cli_writer_close(struct fv_worker_shared *sh, int *lockfd);
/* Keeps in the store why writing stopped (meta "stop_error", with the
 * time; "" clears it), in a transaction of its own: status shows it.
 * Returns 0 or an error: a disk that failed (EIO) or turned read-only
 * (EROFS) refuses it too, and then it says so on stderr ("status will
 * not show it"). */
int fv_cli_note_stop(struct fv_worker_shared *sh, const char *msg);
/* Says that the disk of store filled up (err: ENOSPC or EDQUOT) after
 * packets were stored, and what to do. */
void fv_cli_disk_full(const char *cmd, const char *store, int err,
		      uint64_t packets, uint64_t budget);
/*
 * Says what a write error of the store means and what to do: a full
 * disk (ENOSPC, EDQUOT: fv_cli_disk_full), a disk that fails (EIO), a
 * filesystem turned read-only (EROFS). Returns 1 if err was one of
 * those, 0 (nothing said) otherwise.
 */
int fv_cli_disk_error(const char *cmd, const char *store, int err,
		      uint64_t packets, uint64_t budget);
/*
 * Writing to the store failed with err (its ring or a commit; packets:
 * stored so far): says so naming the store ("CMD: writing STORE: ERR",
 * then fv_cli_disk_error), and keeps "CMD: writing the store: ERR" in
 * the store for status when it still takes it (fv_cli_note_stop).
 */
void fv_cli_write_failed(const char *cmd, struct fv_worker_shared *sh, int err,
			 uint64_t packets);

/* A human size ("1.5 MB"). */
char *fv_cli_hsize(uint64_t v, char *buf, unsigned len);

/* flowvault serve: the REST API (api/rest.h). */
int fv_cli_serve(int argc, char **argv);

#endif
