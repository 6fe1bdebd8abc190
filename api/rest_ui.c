/*
 * rest_ui.c - the web UI's files (docs/ui.md): GET / and the files the
 * UI build wrote, served from one directory: serve --ui DIR, or ui/
 * beside the program ($(BUILD)/ui, where make puts the Vite build), or
 * ../share/flowvault/ui beside it.
 *
 * Only the names NAME and assets/NAME are served, NAME made of
 * [A-Za-z0-9._-] and not starting with '.', so no request reaches outside
 * the directory: "..", "%2e%2e" (libmicrohttpd decodes the path before
 * we see it), absolute or doubled slashes, backslashes and any other
 * percent sequence are a 404, and so is a symlink (O_NOFOLLOW) or
 * anything but a regular file. The names under assets/ carry a hash of
 * their content (Vite), so they may be cached for good; the others
 * (index.html) are revalidated on each load, with an ETag.
 *
 * The UI talks to the public API only, from the same origin; its pages
 * get a Content-Security-Policy that allows nothing else.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/rest.h"
#include "api/rest_int.h"

#define UI_NAME_MAX 200 /* longest NAME served */

static const char csp[] =
	"default-src 'self'; script-src 'self'; style-src 'self'; "
	"img-src 'self' data:; connect-src 'self'; object-src 'none'; "
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

static const struct {
	const char *ext;
	const char *ctype;
} ctypes[] = {
	{".html", "text/html; charset=utf-8"},
	{".js", "text/javascript; charset=utf-8"},
	{".mjs", "text/javascript; charset=utf-8"},
	{".css", "text/css; charset=utf-8"},
	{".svg", "image/svg+xml"},
	{".png", "image/png"},
	{".ico", "image/x-icon"},
	{".json", "application/json"},
	{".map", "application/json"},
	{".txt", "text/plain; charset=utf-8"},
	{".woff2", "font/woff2"},
};

static const char *ctype_of(const char *name)
{
	const char *dot = strrchr(name, '.');

	for (size_t i = 0; dot && i < sizeof(ctypes) / sizeof(*ctypes); i++)
		if (!strcmp(dot, ctypes[i].ext))
			return ctypes[i].ctype;
	return "application/octet-stream";
}

/* One NAME: [A-Za-z0-9._-]+, not starting with '.'; its length or 0. */
static size_t name_ok(const char *s)
{
	size_t n = 0;

	if (*s == '.')
		return 0;
	for (; s[n] && s[n] != '/'; n++) {
		char c = s[n];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return 0;
	}
	return n <= UI_NAME_MAX ? n : 0;
}

/*
 * The file a URL path names, relative to the UI directory, or NULL:
 * "/" is index.html; otherwise "/NAME" or "/assets/NAME". *immutable
 * says whether it is a hashed asset.
 */
static const char *ui_file(const char *url, int *immutable)
{
	const char *p;
	size_t n;

	*immutable = 0;
	if (url[0] != '/')
		return NULL;
	if (!url[1])
		return "index.html";
	p = url + 1;
	if (!strncmp(p, "assets/", 7)) {
		p += 7;
		*immutable = 1;
	}
	n = name_ok(p);
	if (!n || p[n])
		return NULL;
	return url + 1;
}

void rest_ui_find(struct fv_rest *r, const char *given)
{
	static const char *const beside[] = {"ui", "../share/flowvault/ui"};
	char exe[PATH_MAX], probe[sizeof(r->ui) + 16];
	ssize_t n;

	r->ui[0] = 0;
	if (given) {
		snprintf(r->ui, sizeof(r->ui), "%s", given);
		return;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return;
	exe[n] = 0;
	if (!strrchr(exe, '/'))
		return;
	*strrchr(exe, '/') = 0;
	for (size_t i = 0; i < sizeof(beside) / sizeof(*beside); i++) {
		if (snprintf(r->ui, sizeof(r->ui), "%s/%s", exe, beside[i]) >=
		    (int)sizeof(r->ui))
			continue;
		snprintf(probe, sizeof(probe), "%s/index.html", r->ui);
		if (!access(probe, R_OK))
			return;
	}
	r->ui[0] = 0;
}

const char *fv_rest_ui_dir(const struct fv_rest *r)
{
	return r->ui[0] ? r->ui : NULL;
}

/* Queues r (NULL: out of memory) with the headers every file gets. */
static enum MHD_Result queue_file(struct rest_req *q, unsigned status,
				  struct MHD_Response *r, const char *name,
				  const char *etag, int immutable)
{
	const char *ct = ctype_of(name);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ct);
	MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
	MHD_add_response_header(
		r, MHD_HTTP_HEADER_CACHE_CONTROL,
		immutable ? "public, max-age=31536000, immutable" : "no-cache");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	if (!strncmp(ct, "text/html", 9)) {
		MHD_add_response_header(r, "Content-Security-Policy", csp);
		MHD_add_response_header(r, "X-Frame-Options", "DENY");
		MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	}
	ret = MHD_queue_response(q->c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result not_allowed(struct rest_req *q)
{
	static const char body[] =
		"{\"error\":\"method not allowed\",\"detail\":\"the web UI's "
		"files take GET\"}";
	struct MHD_Response *r = MHD_create_response_from_buffer(
		sizeof(body) - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				"application/json");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	ret = MHD_queue_response(q->c, MHD_HTTP_METHOD_NOT_ALLOWED, r);
	MHD_destroy_response(r);
	atomic_fetch_add(&q->srv->errors, 1);
	return ret;
}

enum MHD_Result rest_ui(struct rest_req *q, const char *url)
{
	char path[sizeof(q->srv->ui) + UI_NAME_MAX + 16], etag[64];
	struct MHD_Response *r;
	const char *name, *inm;
	int fd, immutable;
	struct stat st;

	if (strcmp(q->method, "GET") && strcmp(q->method, "HEAD"))
		return not_allowed(q);
	name = ui_file(url, &immutable);
	if (!name)
		return rest_reply_error(q, MHD_HTTP_NOT_FOUND, "not found", -1,
					"no such path (the API is under "
					"/api/v1/, the web UI at /)");
	if (!q->srv->ui[0])
		return rest_reply_error(
			q, MHD_HTTP_NOT_FOUND, "not found", -1,
			"the web UI was not found beside this program (make "
			"builds it into BUILD/ui when npm is there); start the "
			"server with --ui DIR, or use the API under /api/v1/");
	snprintf(path, sizeof(path), "%s/%s", q->srv->ui, name);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		if (fd >= 0)
			close(fd);
		return rest_reply_error(q, MHD_HTTP_NOT_FOUND, "not found", -1,
					"no such file in the web UI");
	}
	snprintf(etag, sizeof(etag), "\"%llx-%llx\"",
		 (unsigned long long)st.st_size,
		 (unsigned long long)st.st_mtim.tv_sec * 1000000000ull +
			 (unsigned long long)st.st_mtim.tv_nsec);
	inm = MHD_lookup_connection_value(q->c, MHD_HEADER_KIND,
					  MHD_HTTP_HEADER_IF_NONE_MATCH);
	if (inm && strstr(inm, etag)) {
		close(fd);
		r = MHD_create_response_from_buffer(0, NULL,
						    MHD_RESPMEM_PERSISTENT);
		return queue_file(q, MHD_HTTP_NOT_MODIFIED, r, name, etag,
				  immutable);
	}
	/* MHD owns fd from here (it closes it with the response). */
	r = MHD_create_response_from_fd64((uint64_t)st.st_size, fd);
	if (!r)
		close(fd);
	return queue_file(q, MHD_HTTP_OK, r, name, etag, immutable);
}
