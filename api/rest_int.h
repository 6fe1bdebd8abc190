/*
 * rest_int.h - what the REST API's files share (api/rest*.c only).
 *
 * A route handler runs once per request, after the whole request (and a
 * POST body) is in: it queues exactly one response with the rest_reply_*
 * helpers and returns what they return. Large answers are streams: a
 * fill() callback writes the next piece (a block of packets, a page of
 * flows) into the stream's FILE, and the content-reader callback hands
 * the bytes to libmicrohttpd, so memory stays bounded whatever the size.
 */
#ifndef FV_API_REST_INT_H
#define FV_API_REST_INT_H

#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "api/cli.h"
#include "index/index.h"
#include "storage/store.h"

#define REST_POOL_MAX 16

struct fv_rest {
	struct MHD_Daemon *d;
	const char *dir; /* the store */
	struct fv_store_conf conf;
	struct fv_index *ix;
	int own_ix;	    /* opened here (else the recorder's, borrowed) */
	char openapi[4096]; /* path of docs/api.yaml, "" if none */
	char ui[4096];	    /* the web UI's directory, "" if none */
	pthread_mutex_t bpf_lock; /* around pcap_compile */
	/* Credentials (rest_auth.c): NULL when not asked for. */
	char *token;			   /* the bearer token */
	char *tls_cert, *tls_key, *tls_ca; /* PEM, read at start */
	/* Segment readers kept between requests (their files and mappings
	 * stay open: a flow's download does not map and unmap segments). */
	pthread_mutex_t pool_lock;
	struct fv_seg_reader *pool[REST_POOL_MAX];
	unsigned npool;
	uint64_t started_ns;
	atomic_int stopping;
	atomic_ullong requests, errors, streams_aborted;
	/* pcap downloads being made, their limit, and those turned away */
	atomic_uint streams_active;
	unsigned max_streams;
	atomic_ullong streams_refused;
};

/* One request: its connection, method and the POST body. */
struct rest_req {
	struct fv_rest *srv;
	struct MHD_Connection *c;
	const char *method;
	char *body;
	size_t body_len;
	int body_too_big;
	int seen; /* the handler ran once: the second call answers */
};

#define REST_BODY_MAX (1u << 20) /* a filter is at most 1 MiB */

/* ---- credentials (rest_auth.c) ---- */

/* Takes the token and reads the TLS files of o; *why says what is wrong. */
int rest_auth_load(struct fv_rest *srv, const struct fv_rest_opts *o, char *why,
		   unsigned len);
void rest_auth_free(struct fv_rest *srv);
/* Whether url needs the credentials (every /api/ path and /metrics). */
int rest_auth_needed(const struct fv_rest *srv, const char *url);
/* Checks q's credentials: *ok set, or a 401 queued (the return). */
enum MHD_Result rest_auth_check(struct rest_req *q, int *ok);

/* A segment reader from the server's pool, or a new one (rest.c);
 * give it back with rest_reader_put (NULL is fine). */
int rest_reader_get(struct fv_rest *srv, struct fv_seg_reader **rd);
void rest_reader_put(struct fv_rest *srv, struct fv_seg_reader *rd);

/* ---- replies (rest.c) ---- */

/* {"error": error, "detail": detail, "at": at (when at >= 0)} */
enum MHD_Result rest_reply_error(struct rest_req *q, unsigned status,
				 const char *error, int at, const char *fmt,
				 ...) __attribute__((format(printf, 5, 6)));
/* Dumps v (and drops the reference) as application/json. */
enum MHD_Result rest_reply_json(struct rest_req *q, unsigned status, json_t *v);
/* The same with one more response header (hname NULL: none). */
enum MHD_Result rest_reply_json_hdr(struct rest_req *q, unsigned status,
				    json_t *v, const char *hname,
				    const char *hval);
/* Copies len bytes of buf. */
enum MHD_Result rest_reply_bytes(struct rest_req *q, unsigned status,
				 const char *ctype, const void *buf,
				 size_t len);
/* Maps an FV_E* / -errno of the store to a 500 or 503 reply. */
enum MHD_Result rest_reply_fail(struct rest_req *q, const char *what, int err);

/* ---- streams (rest.c) ---- */

struct rest_stream {
	struct fv_rest *srv;
	int download;		  /* a pcap download: under --max-downloads */
	int counted;		  /* in srv->streams_active */
	struct MHD_Connection *c; /* to see a client gone */
	FILE *f; /* fill() writes here; the bytes land in buf */
	char *buf;
	size_t len, off, cap;
	int done;
	/* Writes the next piece to f. Returns 0 (more to come), 1 (that
	 * was the end: everything is written) or an error (the connection
	 * is then aborted). */
	int (*fill)(struct rest_stream *s);
	void (*release)(struct rest_stream *s); /* frees arg */
	void *arg;
	const char *what; /* for the log on failure */
};

/* Creates a stream whose f writes into its own buffer; NULL on ENOMEM. */
struct rest_stream *rest_stream_new(struct fv_rest *srv);
/* Frees a stream that was never queued (calls release). */
void rest_stream_free(struct rest_stream *s);
/* Queues s (owned by the response from now on, even on failure) as a
 * 200 with ctype and, when not NULL, a Content-Disposition filename and
 * one extra header (name, value). Pieces are made first until they hold 64 KiB:
 * an answer that ends there goes with a Content-Length, a longer one is
 * chunked, and a failure before then gets an error reply (410 for
 * expired packets, 400 for what a pcap cannot hold, 5xx otherwise). */
enum MHD_Result rest_reply_stream(struct rest_req *q, struct rest_stream *s,
				  const char *ctype, const char *filename,
				  const char *hname, const char *hval);

/* ---- parameters (rest.c) ---- */

/* The query argument name, or NULL. */
const char *rest_arg(struct rest_req *q, const char *name);
/* Checks that every query argument is in names (NULL-terminated); on a
 * stranger, queues a 400 and returns 0 (*ret set). */
int rest_args_known(struct rest_req *q, const char *const *names,
		    enum MHD_Result *ret);
/* Parses a time argument (fv_parse_time). 0, or a 400 queued (*ret). */
int rest_time_arg(struct rest_req *q, const char *name, const char *val,
		  uint64_t *ns, enum MHD_Result *ret);

/* ---- routes ---- */
enum MHD_Result rest_flows(struct rest_req *q);
enum MHD_Result rest_flow(struct rest_req *q, const char *id);
enum MHD_Result rest_flow_pcap(struct rest_req *q, const char *id);
enum MHD_Result rest_packets(struct rest_req *q);
enum MHD_Result rest_status(struct rest_req *q);
enum MHD_Result rest_metrics(struct rest_req *q);
enum MHD_Result rest_openapi(struct rest_req *q);
enum MHD_Result rest_stats_top(struct rest_req *q); /* rest_stats.c */
enum MHD_Result rest_stats_timeseries(struct rest_req *q);

/* The web UI's files (rest_ui.c): a path outside /api/ that no route
 * took. rest_ui_find() sets srv->ui (given, or found beside the
 * program). */
enum MHD_Result rest_ui(struct rest_req *q, const char *url);
void rest_ui_find(struct fv_rest *r, const char *given);

/* Parses a flow id of a path (1 .. FV_FLOW_ID_MAX). 0 or FV_EUSAGE. */
int rest_parse_flow_id(const char *s, uint64_t *id);

#endif
