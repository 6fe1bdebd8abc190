/*
 * rest.h - the REST API over a store (docs/api.md, docs/api.yaml), served
 * with libmicrohttpd: flows, a flow's packets, packet queries, status and
 * metrics.
 *
 * The server opens the store read-only, so it runs beside the process
 * that records or imports into it (LMDB readers never block the writer).
 * Every index read is a short transaction of its own: a download never
 * holds an LMDB snapshot open while it streams (docs/api.md
 * "Streaming").
 *
 * Lifecycle: fv_rest_start() binds and serves on its own threads (one per
 * connection) until fv_rest_stop(), which ends the downloads in progress
 * (their clients see a truncated transfer), joins the threads and frees
 * everything.
 */
#ifndef FV_API_REST_H
#define FV_API_REST_H

#include <stdint.h>
#include <sys/socket.h>

struct fv_rest;

struct fv_rest_opts {
	const char *store; /* store directory; borrowed until fv_rest_stop */
	const struct sockaddr *addr; /* where to listen (IPv4 or IPv6) */
	socklen_t addrlen;
	unsigned max_conns; /* connection limit (0: 256) */
	/* pcap downloads streaming at once (0: 64); one more is answered
	 * 503 with Retry-After */
	unsigned max_streams;
	unsigned timeout_s;  /* idle timeout per connection (0: 60) */
	const char *openapi; /* docs/api.yaml path (NULL: looked up) */
	const char *ui;	     /* the web UI's built files (NULL: looked up) */
	/* The store's index when this process has it open already (record
	 * --listen: LMDB allows one handle per process), borrowed until
	 * fv_rest_stop; NULL: the server opens it read-only. */
	struct fv_index *ix;
	/* Credentials (NULL: none): every /api/ path and /metrics then
	 * wants "Authorization: Bearer TOKEN" and/or, with TLS, a client
	 * certificate that tls_client_ca signed. Files are PEM. */
	const char *token;
	const char *tls_cert, *tls_key, *tls_client_ca;
};

/*
 * Opens the store and starts serving. Returns 0 and *out, -ENOENT (no
 * store), FV_EUSAGE (cannot listen there: *why says it), or another
 * error. why (may be NULL) gets a sentence for a person, len bytes.
 */
int fv_rest_start(struct fv_rest **out, const struct fv_rest_opts *o, char *why,
		  unsigned len);

/* The port it listens on (useful with port 0). */
unsigned fv_rest_port(const struct fv_rest *r);

/* The directory the web UI is served from (docs/ui.md), or NULL when it
 * was not found; valid until fv_rest_stop. */
const char *fv_rest_ui_dir(const struct fv_rest *r);

/* Stops serving and frees r (NULL is fine). */
void fv_rest_stop(struct fv_rest *r);

#endif
