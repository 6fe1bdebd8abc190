/*
 * rest.c - the HTTP side of the REST API: the libmicrohttpd daemon, the
 * route table, JSON errors, query arguments and chunked streams.
 *
 * libmicrohttpd runs one thread per connection (a download reads the
 * disk in its content-reader callback, which may block that thread and
 * no other) with a connection limit and an idle timeout. The access
 * handler answers on its second call, once the request (and a POST
 * body) is in, so keep-alive works (PLATFORM.md).
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/rest.h"
#include "api/rest_int.h"
#include "common/fv.h"

#define STREAM_CHUNK (256u * 1024) /* what MHD asks of a reader at most */
#define EAGER_BYTES  (64u * 1024)  /* made before the reply, at most... */
#define EAGER_FILLS  16		   /* ...in so many fill()s */
/* Connections at once without --max-conns: libmicrohttpd closes any
 * connection past the limit unanswered, so it must hold a dashboard, a
 * few scripts and a load test of 100+ keep-alive clients (issue 5). */
#define DEFAULT_CONNS	256
#define DEFAULT_STREAMS 64

/* ---- replies ---- */

static enum MHD_Result queue(struct rest_req *q, unsigned status,
			     struct MHD_Response *r, const char *ctype)
{
	enum MHD_Result ret;

	if (!r)
		return MHD_NO; /* out of memory: MHD closes the connection */
	if (ctype)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	ret = MHD_queue_response(q->c, status, r);
	MHD_destroy_response(r);
	if (status >= 400)
		atomic_fetch_add(&q->srv->errors, 1);
	return ret;
}

enum MHD_Result rest_reply_bytes(struct rest_req *q, unsigned status,
				 const char *ctype, const void *buf, size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
		len, (void *)buf, MHD_RESPMEM_MUST_COPY);

	return queue(q, status, r, ctype);
}

enum MHD_Result rest_reply_json_hdr(struct rest_req *q, unsigned status,
				    json_t *v, const char *hname,
				    const char *hval)
{
	char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
	struct MHD_Response *r;
	size_t len;

	json_decref(v);
	if (!s)
		return MHD_NO;
	len = strlen(s);
	r = MHD_create_response_from_buffer(len, s, MHD_RESPMEM_MUST_FREE);
	if (!r)
		free(s);
	else if (hname)
		MHD_add_response_header(r, hname, hval);
	return queue(q, status, r, "application/json");
}

enum MHD_Result rest_reply_json(struct rest_req *q, unsigned status, json_t *v)
{
	return rest_reply_json_hdr(q, status, v, NULL, NULL);
}

enum MHD_Result rest_reply_error(struct rest_req *q, unsigned status,
				 const char *error, int at, const char *fmt,
				 ...)
{
	char detail[1024];
	va_list ap;
	json_t *v;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	v = json_pack("{s:s, s:s}", "error", error, "detail", detail);
	if (v && at >= 0)
		json_object_set_new(v, "at", json_integer(at));
	return rest_reply_json(q, status, v);
}

enum MHD_Result rest_reply_fail(struct rest_req *q, const char *what, int err)
{
	const char *ix = fv_index_last_error(q->srv->ix);

	fprintf(stderr, "flowvault serve: %s: %s%s%s\n", what, fv_strerror(err),
		*ix ? ": " : "", ix);
	if (err == -ENOMEM || err == -EMFILE || err == -ENFILE ||
	    err == -EAGAIN)
		return rest_reply_error(q, MHD_HTTP_SERVICE_UNAVAILABLE,
					"overloaded", -1, "%s: %s", what,
					fv_strerror(err));
	return rest_reply_error(q, MHD_HTTP_INTERNAL_SERVER_ERROR,
				"internal error", -1, "%s: %s", what,
				fv_strerror(err));
}

/* ---- streams ---- */

static ssize_t cookie_write(void *cookie, const char *p, size_t n)
{
	struct rest_stream *s = cookie;

	if (s->len + n > s->cap) {
		size_t cap = s->cap * 2 > s->len + n ? s->cap * 2 : s->len + n;
		char *b = realloc(s->buf, cap);

		if (!b) {
			errno = ENOMEM;
			return -1;
		}
		s->buf = b;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, p, n);
	s->len += n;
	return (ssize_t)n;
}

struct rest_stream *rest_stream_new(struct fv_rest *srv)
{
	cookie_io_functions_t io = {.write = cookie_write};
	struct rest_stream *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->srv = srv;
	s->f = fopencookie(s, "w", io);
	if (!s->f) {
		free(s);
		return NULL;
	}
	return s;
}

void rest_stream_free(struct rest_stream *s)
{
	if (!s)
		return;
	if (s->counted)
		atomic_fetch_sub(&s->srv->streams_active, 1);
	if (s->release)
		s->release(s);
	fclose(s->f);
	free(s->buf);
	free(s);
}

static void stream_free_cb(void *cls)
{
	rest_stream_free(cls);
}

/* Whether the client closed its side (it reads nothing more from us). */
static int peer_gone(struct rest_stream *s)
{
	const union MHD_ConnectionInfo *ci;
	struct pollfd p;

	if (!s->c)
		return 0;
	ci = MHD_get_connection_info(s->c, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (!ci)
		return 0;
	p.fd = ci->connect_fd;
	p.events = POLLRDHUP;
	p.revents = 0;
	return poll(&p, 1, 0) == 1 &&
	       (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

/* One fill() into the stream's buffer; the end sets done. Returns what
 * fill() did, or an error. */
static int fill_once(struct rest_stream *s)
{
	int rc = s->fill(s);

	if (fflush(s->f) && rc >= 0)
		rc = -ENOMEM;
	if (rc == 1)
		s->done = 1;
	return rc;
}

/*
 * MHD's content reader: hands out what fill() wrote, calling it again
 * when the buffer is empty, until max bytes are ready (PLATFORM.md: a
 * full buffer per call). A failure aborts the connection, so the client
 * never takes a cut transfer for a complete one.
 */
static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
	struct rest_stream *s = cls;
	size_t n = 0;
	int rc;

	while (n < max) {
		if (s->off < s->len) {
			size_t k = s->len - s->off;

			if (k > max - n)
				k = max - n;
			memcpy(out + n, s->buf + s->off, k);
			s->off += k;
			n += k;
			continue;
		}
		s->off = s->len = 0;
		if (s->done)
			break;
		if (atomic_load(&s->srv->stopping) || peer_gone(s))
			goto fail;
		rc = fill_once(s);
		if (rc < 0) {
			fprintf(stderr,
				"flowvault serve: %s: %s: connection aborted\n",
				s->what ? s->what : "stream", fv_strerror(rc));
			goto fail;
		}
	}
	if (n == 0 && s->done)
		return MHD_CONTENT_READER_END_OF_STREAM;
	return (ssize_t)n;
fail:
	atomic_fetch_add(&s->srv->streams_aborted, 1);
	return MHD_CONTENT_READER_END_WITH_ERROR;
}

/* A failure before the first byte is sent: a reply that says what. */
static enum MHD_Result stream_fail(struct rest_req *q, struct rest_stream *s,
				   int err)
{
	const char *what = s->what ? s->what : "stream";
	enum MHD_Result ret;

	if (err == FV_EEXPIRED)
		ret = rest_reply_error(q, MHD_HTTP_GONE, "expired", -1,
				       "%s: its packets expired while it was "
				       "read",
				       what);
	else if (err == FV_EVERSION)
		ret = rest_reply_error(
			q, MHD_HTTP_INTERNAL_SERVER_ERROR, "block format", -1,
			"%s: a block of its packets is in a block format this "
			"flowvault does not read (another version wrote it); "
			"read it with the flowvault that wrote it",
			what);
	else if (err == FV_EUSAGE)
		ret = rest_reply_error(
			q, MHD_HTTP_BAD_REQUEST, "pcap cannot hold it", -1,
			"%s: a pcap holds one link type and times before "
			"2106; ask format=pcapng",
			what);
	else
		ret = rest_reply_fail(q, what, err);
	rest_stream_free(s);
	return ret;
}

enum MHD_Result rest_reply_stream(struct rest_req *q, struct rest_stream *s,
				  const char *ctype, const char *filename,
				  const char *hname, const char *hval)
{
	struct MHD_Response *r;
	char cd[512];

	s->c = q->c;
	/* At most max_streams downloads at once: one more is told to come
	 * back (each holds a segment reader and a thread of the server). */
	if (s->download && atomic_fetch_add(&q->srv->streams_active, 1) >=
				   q->srv->max_streams) {
		atomic_fetch_sub(&q->srv->streams_active, 1);
		atomic_fetch_add(&q->srv->streams_refused, 1);
		rest_stream_free(s);
		return rest_reply_json_hdr(
			q, MHD_HTTP_SERVICE_UNAVAILABLE,
			json_pack("{s:s, s:s}", "error", "busy", "detail",
				  "as many pcap downloads as the server makes "
				  "at once (--max-downloads) are running: "
				  "retry in a moment"),
			MHD_HTTP_HEADER_RETRY_AFTER, "1");
	}
	s->counted = s->download;
	/*
	 * The first EAGER_BYTES are made before the reply: an answer that
	 * ends there (most flows) goes out with its Content-Length in one
	 * send instead of three chunked ones, and a failure there gets a
	 * reply that says what went wrong instead of a cut transfer.
	 */
	for (int i = 0; i < EAGER_FILLS && !s->done && s->len < EAGER_BYTES;
	     i++) {
		int rc = fill_once(s);

		if (rc < 0)
			return stream_fail(q, s, rc);
	}
	if (s->done) {
		r = MHD_create_response_from_buffer(
			s->len, s->len ? s->buf : (void *)"",
			s->len ? MHD_RESPMEM_MUST_FREE
			       : MHD_RESPMEM_PERSISTENT);
		if (r && s->len)
			s->buf = NULL;
	} else {
		r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN,
						      STREAM_CHUNK, stream_read,
						      s, stream_free_cb);
	}
	if (!r) {
		rest_stream_free(s);
		return MHD_NO;
	}
	/* The headers are copied now: filename and hval may belong to the
	 * stream's state, which the stream frees. */
	if (filename) {
		snprintf(cd, sizeof(cd), "attachment; filename=\"%s\"",
			 filename);
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_DISPOSITION,
					cd);
	}
	if (hname && hval)
		MHD_add_response_header(r, hname, hval);
	if (s->done)
		rest_stream_free(s); /* the body is the response's now */
	return queue(q, MHD_HTTP_OK, r, ctype);
}

/* ---- parameters ---- */

const char *rest_arg(struct rest_req *q, const char *name)
{
	const char *v =
		MHD_lookup_connection_value(q->c, MHD_GET_ARGUMENT_KIND, name);

	if (v)
		return v;
	/* "?name" without "=": present, empty. */
	return MHD_lookup_connection_value_n(q->c, MHD_GET_ARGUMENT_KIND, name,
					     strlen(name), NULL,
					     NULL) == MHD_YES
		       ? ""
		       : NULL;
}

struct args_check {
	const char *const *names;
	const char *bad;
};

static enum MHD_Result on_arg(void *cls, enum MHD_ValueKind kind,
			      const char *key, const char *value)
{
	struct args_check *a = cls;

	for (const char *const *n = a->names; *n; n++)
		if (!strcmp(*n, key))
			return MHD_YES;
	a->bad = key;
	return MHD_NO;
}

int rest_args_known(struct rest_req *q, const char *const *names,
		    enum MHD_Result *ret)
{
	struct args_check a = {.names = names};
	char list[512] = "";
	size_t n = 0;

	MHD_get_connection_values(q->c, MHD_GET_ARGUMENT_KIND, on_arg, &a);
	if (!a.bad)
		return 1;
	for (const char *const *p = names; *p && n < sizeof(list); p++)
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s",
				      p == names ? "" : ", ", *p);
	*ret = rest_reply_error(q, MHD_HTTP_BAD_REQUEST, "bad parameter", -1,
				"unknown parameter '%.100s' (this route takes: "
				"%s)",
				a.bad, *names ? list : "none");
	return 0;
}

int rest_time_arg(struct rest_req *q, const char *name, const char *val,
		  uint64_t *ns, enum MHD_Result *ret)
{
	if (!fv_parse_time(val, fv_now_real_ns(), ns))
		return 0;
	*ret = rest_reply_error(
		q, MHD_HTTP_BAD_REQUEST, "bad time", -1,
		"%s='%.100s' is not a time: use RFC 3339 "
		"(2026-11-22T10:00:00Z), epoch seconds, or a relative time "
		"(-15m)",
		name, val);
	return FV_EUSAGE;
}

int rest_parse_flow_id(const char *s, uint64_t *id)
{
	char *end;

	if (!s || *s < '0' || *s > '9' || strlen(s) > 20)
		return FV_EUSAGE;
	errno = 0;
	*id = strtoull(s, &end, 10);
	if (errno || *end || !*id || *id > FV_FLOW_ID_MAX)
		return FV_EUSAGE;
	return 0;
}

/* ---- routes ---- */

enum { M_GET = 1 << 0, M_POST = 1 << 1 };

/* Splits "/api/v1/flows/12/pcap" against a pattern where "{}" takes one
 * segment; returns 1 on a match and the segment in *var. */
static int match(const char *pat, const char *url, const char **var,
		 size_t *varlen)
{
	while (*pat) {
		if (pat[0] == '{' && pat[1] == '}') {
			const char *e = strchr(url, '/');
			size_t n = e ? (size_t)(e - url) : strlen(url);

			if (!n)
				return 0;
			*var = url;
			*varlen = n;
			url += n;
			pat += 2;
			continue;
		}
		if (*pat++ != *url++)
			return 0;
	}
	return *url == 0;
}

enum route_id {
	R_FLOWS,
	R_FLOW,
	R_FLOW_PCAP,
	R_PACKETS,
	R_STATUS,
	R_METRICS,
	R_OPENAPI,
	R_STATS_TOP,
	R_STATS_TIMESERIES
};

static const struct route {
	const char *pat;
	unsigned methods;
	enum route_id id;
} routes[] = {
	{"/api/v1/flows", M_GET, R_FLOWS},
	{"/api/v1/flows/{}", M_GET, R_FLOW},
	{"/api/v1/flows/{}/pcap", M_GET, R_FLOW_PCAP},
	{"/api/v1/packets", M_GET | M_POST, R_PACKETS},
	{"/api/v1/status", M_GET, R_STATUS},
	{"/metrics", M_GET, R_METRICS},
	{"/api/v1/openapi.yaml", M_GET, R_OPENAPI},
	{"/api/v1/stats/top", M_GET, R_STATS_TOP},
	{"/api/v1/stats/timeseries", M_GET, R_STATS_TIMESERIES},
};

static enum MHD_Result dispatch(struct rest_req *q, const char *url)
{
	const struct route *rt = NULL;
	const char *var = NULL;
	size_t varlen = 0;
	char id[32];
	unsigned m = 0;

	if (!strcmp(q->method, "GET") || !strcmp(q->method, "HEAD"))
		m = M_GET;
	else if (!strcmp(q->method, "POST"))
		m = M_POST;
	for (size_t i = 0; i < sizeof(routes) / sizeof(*routes); i++)
		if (match(routes[i].pat, url, &var, &varlen)) {
			rt = &routes[i];
			break;
		}
	if (!rt && strncmp(url, "/api/", 5))
		return rest_ui(q, url); /* the web UI's files (rest_ui.c) */
	if (!rt)
		return rest_reply_error(q, MHD_HTTP_NOT_FOUND, "not found", -1,
					"no such path (see "
					"/api/v1/openapi.yaml)");
	if (!(rt->methods & m)) {
		json_t *v = json_pack(
			"{s:s, s:s}", "error", "method not allowed", "detail",
			rt->methods & M_POST ? "this path takes GET or POST"
					     : "this path takes GET");

		return rest_reply_json_hdr(
			q, MHD_HTTP_METHOD_NOT_ALLOWED, v,
			MHD_HTTP_HEADER_ALLOW,
			rt->methods & M_POST ? "GET, HEAD, POST" : "GET, HEAD");
	}
	if (q->body_too_big)
		return rest_reply_error(
			q, MHD_HTTP_CONTENT_TOO_LARGE, "request too large", -1,
			"a request body is at most %u bytes", REST_BODY_MAX);
	if (var) {
		if (varlen >= sizeof(id))
			varlen = sizeof(id) - 1;
		memcpy(id, var, varlen);
		id[varlen] = 0;
	}
	switch (rt->id) {
	case R_FLOWS:
		return rest_flows(q);
	case R_FLOW:
		return rest_flow(q, id);
	case R_FLOW_PCAP:
		return rest_flow_pcap(q, id);
	case R_PACKETS:
		return rest_packets(q);
	case R_STATUS:
		return rest_status(q);
	case R_METRICS:
		return rest_metrics(q);
	case R_OPENAPI:
		return rest_openapi(q);
	case R_STATS_TOP:
		return rest_stats_top(q);
	case R_STATS_TIMESERIES:
		return rest_stats_timeseries(q);
	}
	return MHD_NO;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
				  const char *url, const char *method,
				  const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct fv_rest *srv = cls;
	struct rest_req *q = *con_cls;
	const char *cl;
	int ok;

	if (!q) {
		q = calloc(1, sizeof(*q));
		if (!q)
			return MHD_NO;
		q->srv = srv;
		q->c = c;
		q->method = method;
		*con_cls = q;
		atomic_fetch_add(&srv->requests, 1);
		/* No credentials: refused before any body is read. */
		if (rest_auth_needed(srv, url)) {
			enum MHD_Result ret = rest_auth_check(q, &ok);

			if (!ok) {
				q->seen = 1;
				return ret;
			}
		}
		cl = MHD_lookup_connection_value(
			c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > REST_BODY_MAX) {
			/* Too big: say so before the body comes (no "100
			 * Continue"); the connection is closed after. */
			q->body_too_big = 1;
			q->seen = 1;
			return dispatch(q, url);
		}
		return MHD_YES;
	}
	if (*upload_size) {
		if (q->seen) {
			/* answered already (413): the rest is dropped */
		} else if (q->body_len + *upload_size > REST_BODY_MAX) {
			q->body_too_big = 1;
		} else {
			char *b = realloc(q->body,
					  q->body_len + *upload_size + 1);

			if (!b)
				return MHD_NO;
			memcpy(b + q->body_len, upload, *upload_size);
			q->body = b;
			q->body_len += *upload_size;
			q->body[q->body_len] = 0;
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (q->seen)
		return MHD_YES;
	q->seen = 1;
	return dispatch(q, url);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct rest_req *q = *con_cls;

	if (!q)
		return;
	free(q->body);
	free(q);
	*con_cls = NULL;
}

/* docs/api.yaml: given, or beside the executable (build/../docs), or in
 * the working directory. */
static void find_openapi(struct fv_rest *r, const char *given)
{
	char exe[PATH_MAX];
	ssize_t n;

	if (given) {
		snprintf(r->openapi, sizeof(r->openapi), "%s", given);
		return;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		char *slash;

		exe[n] = 0;
		slash = strrchr(exe, '/');
		if (slash) {
			*slash = 0;
			if (snprintf(r->openapi, sizeof(r->openapi),
				     "%s/../docs/api.yaml",
				     exe) < (int)sizeof(r->openapi) &&
			    !access(r->openapi, R_OK))
				return;
		}
	}
	snprintf(r->openapi, sizeof(r->openapi), "%s",
		 access("docs/api.yaml", R_OK) ? "" : "docs/api.yaml");
}

enum MHD_Result rest_openapi(struct rest_req *q)
{
	static const char *const none[] = {NULL};
	enum MHD_Result ret;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	if (!rest_args_known(q, none, &ret))
		return ret;
	f = *q->srv->openapi ? fopen(q->srv->openapi, "r") : NULL;
	if (!f)
		return rest_reply_error(
			q, MHD_HTTP_NOT_FOUND, "not found", -1,
			"the OpenAPI description (docs/api.yaml) was not found "
			"beside this program; start the server with --openapi "
			"FILE");
	buf = malloc(1u << 20);
	if (buf)
		len = fread(buf, 1, 1u << 20, f);
	fclose(f);
	if (!buf)
		return MHD_NO;
	ret = rest_reply_bytes(q, MHD_HTTP_OK, "application/yaml", buf, len);
	free(buf);
	return ret;
}

int fv_rest_start(struct fv_rest **out, const struct fv_rest_opts *o, char *why,
		  unsigned len)
{
	struct MHD_OptionItem tls[4];
	unsigned nt = 0;
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION |
			 MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
			 MHD_USE_ERROR_LOG;
	char path[4096], dummy[8];
	struct fv_rest *r;
	int err;

	if (!why) {
		why = dummy;
		len = sizeof(dummy);
	}
	*why = 0;
	/* Each request allocates a few hundred KiB (a pcap writer's
	 * buffer) and frees them: keep glibc from giving those pages back
	 * at every free (they would fault in again, ~3 us a page here). */
	mallopt(M_TRIM_THRESHOLD, 64 << 20);
	mallopt(M_MMAP_THRESHOLD, 8 << 20);
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->dir = o->store;
	r->started_ns = fv_now_real_ns();
	pthread_mutex_init(&r->bpf_lock, NULL);
	pthread_mutex_init(&r->pool_lock, NULL);
	find_openapi(r, o->openapi);
	rest_ui_find(r, o->ui);
	err = rest_auth_load(r, o, why, len);
	if (err)
		goto out_free;
	err = fv_store_open(o->store, NULL, &r->conf);
	if (err) {
		snprintf(why, len, "%s: %s", o->store,
			 err == -ENOENT ? "no store here" : fv_strerror(err));
		goto out_free;
	}
	r->own_ix = !o->ix;
	r->ix = o->ix;
	if (r->own_ix)
		err = fv_index_open(
			&r->ix,
			fv_store_path(path, sizeof(path), o->store, "index"),
			FV_INDEX_RDONLY, 0);
	if (err) {
		snprintf(why, len, "%s: opening the index: %s", o->store,
			 fv_strerror(err));
		goto out_free;
	}
	if (o->addr->sa_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (r->tls_cert) {
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			snprintf(why, len, "this libmicrohttpd has no TLS");
			err = FV_EUSAGE;
			goto out_index;
		}
		flags |= MHD_USE_TLS;
		tls[nt].option = MHD_OPTION_HTTPS_MEM_CERT;
		tls[nt++].ptr_value = r->tls_cert;
		tls[nt].option = MHD_OPTION_HTTPS_MEM_KEY;
		tls[nt++].ptr_value = r->tls_key;
		if (r->tls_ca) {
			tls[nt].option = MHD_OPTION_HTTPS_MEM_TRUST;
			tls[nt++].ptr_value = r->tls_ca;
		}
	}
	tls[nt].option = MHD_OPTION_END;
	errno = 0;
	r->max_streams = o->max_streams ? o->max_streams : DEFAULT_STREAMS;
	r->d = MHD_start_daemon(
		flags, 0, NULL, NULL, on_request, r, MHD_OPTION_SOCK_ADDR,
		o->addr, MHD_OPTION_CONNECTION_LIMIT,
		(unsigned)(o->max_conns ? o->max_conns : DEFAULT_CONNS),
		MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned)(o->timeout_s ? o->timeout_s : 60),
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(128 * 1024),
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, r, MHD_OPTION_ARRAY,
		tls, MHD_OPTION_END);
	if (!r->d) {
		err = errno ? -errno : FV_EUSAGE;
		snprintf(why, len, "cannot listen there: %s",
			 errno ? strerror(errno) : "libmicrohttpd refused");
		goto out_index;
	}
	*out = r;
	return 0;
out_index:
	if (r->own_ix)
		fv_index_close(r->ix);
out_free:
	rest_auth_free(r);
	pthread_mutex_destroy(&r->pool_lock);
	pthread_mutex_destroy(&r->bpf_lock);
	free(r);
	return err;
}

int rest_reader_get(struct fv_rest *srv, struct fv_seg_reader **rd)
{
	char path[4096];

	pthread_mutex_lock(&srv->pool_lock);
	*rd = srv->npool ? srv->pool[--srv->npool] : NULL;
	pthread_mutex_unlock(&srv->pool_lock);
	if (*rd) {
		fv_seg_reader_forget_missing(*rd); /* files made since */
		return 0;
	}
	return fv_seg_reader_open(
		rd, fv_store_path(path, sizeof(path), srv->dir, "segments"),
		srv->conf.nsegments, srv->conf.block_size);
}

void rest_reader_put(struct fv_rest *srv, struct fv_seg_reader *rd)
{
	if (!rd)
		return;
	pthread_mutex_lock(&srv->pool_lock);
	if (srv->npool < REST_POOL_MAX) {
		srv->pool[srv->npool++] = rd;
		rd = NULL;
	}
	pthread_mutex_unlock(&srv->pool_lock);
	fv_seg_reader_close(rd); /* the pool is full */
}

unsigned fv_rest_port(const struct fv_rest *r)
{
	const union MHD_DaemonInfo *i =
		MHD_get_daemon_info(r->d, MHD_DAEMON_INFO_BIND_PORT);

	return i ? i->port : 0;
}

void fv_rest_stop(struct fv_rest *r)
{
	if (!r)
		return;
	atomic_store(&r->stopping, 1);
	MHD_stop_daemon(r->d);
	while (r->npool)
		fv_seg_reader_close(r->pool[--r->npool]);
	if (r->own_ix)
		fv_index_close(r->ix);
	rest_auth_free(r);
	pthread_mutex_destroy(&r->pool_lock);
	pthread_mutex_destroy(&r->bpf_lock);
	free(r);
}
