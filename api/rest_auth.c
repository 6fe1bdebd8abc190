/*
 * rest_auth.c - who may ask the REST API: a bearer token
 * (--auth-token-file) and/or TLS (--tls-cert/--tls-key, libmicrohttpd
 * with GnuTLS) with an optional client certificate checked against a CA
 * (--tls-client-ca, as Stenographer does).
 *
 * Every /api/ path and /metrics needs the credentials configured; other
 * paths (the web UI's static files) hold no data and do not. The token
 * comes as "Authorization: Bearer T" or, from the web UI, as the cookie
 * fv_token=T (which the browser also sends with a download). A refusal
 * is a 401 with a JSON error and, for the token, a WWW-Authenticate
 * header. The token is compared in constant time.
 */
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/rest.h"
#include "api/rest_int.h"
#include "common/fv.h"

#define PEM_MAX (1u << 20)

/* Reads a whole small file into a NUL-terminated buffer. */
static int slurp(const char *path, char **out, char *why, unsigned len)
{
	struct stat st;
	char *b = NULL;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC), err = 0;

	*out = NULL;
	if (fd < 0 || fstat(fd, &st)) {
		err = -errno;
		snprintf(why, len, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (st.st_size <= 0 || st.st_size > PEM_MAX) {
		snprintf(why, len, "%s: %lld bytes (1 byte to 1 MiB expected)",
			 path, (long long)st.st_size);
		err = FV_EUSAGE;
		goto out;
	}
	b = malloc((size_t)st.st_size + 1);
	if (!b) {
		err = -ENOMEM;
		goto out;
	}
	n = read(fd, b, (size_t)st.st_size);
	if (n != st.st_size) {
		snprintf(why, len, "%s: short read", path);
		err = FV_EUSAGE;
		goto out;
	}
	b[n] = 0;
	*out = b;
	b = NULL;
out:
	free(b);
	if (fd >= 0)
		close(fd);
	return err;
}

int rest_auth_load(struct fv_rest *srv, const struct fv_rest_opts *o, char *why,
		   unsigned len)
{
	int err = 0;

	if (o->token) {
		srv->token = strdup(o->token);
		if (!srv->token)
			return -ENOMEM;
	}
	if (!o->tls_cert != !o->tls_key) {
		snprintf(why, len, "TLS needs both --tls-cert and --tls-key");
		return FV_EUSAGE;
	}
	if (o->tls_client_ca && !o->tls_cert) {
		snprintf(why, len,
			 "--tls-client-ca needs --tls-cert and "
			 "--tls-key");
		return FV_EUSAGE;
	}
	if (o->tls_cert)
		err = slurp(o->tls_cert, &srv->tls_cert, why, len);
	if (!err && o->tls_key)
		err = slurp(o->tls_key, &srv->tls_key, why, len);
	if (!err && o->tls_client_ca)
		err = slurp(o->tls_client_ca, &srv->tls_ca, why, len);
	return err;
}

void rest_auth_free(struct fv_rest *srv)
{
	if (srv->tls_key) /* a private key: not left in freed memory */
		explicit_bzero(srv->tls_key, strlen(srv->tls_key));
	if (srv->token)
		explicit_bzero(srv->token, strlen(srv->token));
	free(srv->token);
	free(srv->tls_cert);
	free(srv->tls_key);
	free(srv->tls_ca);
}

/* Constant-time equality of a and the first n bytes of b (NUL-ended). */
static int same(const char *a, size_t alen, const char *b)
{
	size_t blen = strlen(b);
	unsigned char d = alen != blen;

	for (size_t i = 0; i < alen; i++)
		d |= (unsigned char)(a[i] ^ b[i < blen ? i : 0]);
	return !d;
}

/* The client's certificate was given and verifies against the CA. */
static int client_cert_ok(struct rest_req *q)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
		q->c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	gnutls_session_t s;
	unsigned status = 0, n = 0;

	if (!ci || !ci->tls_session)
		return 0;
	s = (gnutls_session_t)ci->tls_session;
	if (!gnutls_certificate_get_peers(s, &n) || !n)
		return 0;
	return gnutls_certificate_verify_peers2(s, &status) == 0 && !status;
}

int rest_auth_needed(const struct fv_rest *srv, const char *url)
{
	return (srv->token || srv->tls_ca) &&
	       (!strncmp(url, "/api/", 5) || !strcmp(url, "/metrics"));
}

enum MHD_Result rest_auth_check(struct rest_req *q, int *ok)
{
	struct fv_rest *srv = q->srv;
	const char *h, *c, *want = "Bearer ";
	json_t *v;

	*ok = 1;
	if (srv->tls_ca && !client_cert_ok(q)) {
		*ok = 0;
		return rest_reply_error(q, MHD_HTTP_UNAUTHORIZED,
					"unauthorized", -1,
					"a client certificate signed by the "
					"server's client CA is required");
	}
	if (!srv->token)
		return MHD_YES;
	h = MHD_lookup_connection_value(q->c, MHD_HEADER_KIND,
					MHD_HTTP_HEADER_AUTHORIZATION);
	if (h && !strncmp(h, want, strlen(want)) &&
	    same(h + strlen(want), strlen(h + strlen(want)), srv->token))
		return MHD_YES;
	/* The web UI's way: the browser sends the cookie with every
	 * request, downloads by link too. */
	c = MHD_lookup_connection_value(q->c, MHD_COOKIE_KIND, "fv_token");
	if (c && same(c, strlen(c), srv->token))
		return MHD_YES;
	*ok = 0;
	v = json_pack("{s:s, s:s}", "error", "unauthorized", "detail",
		      h ? "the bearer token is wrong"
			: "this server wants 'Authorization: Bearer TOKEN'");
	return rest_reply_json_hdr(q, MHD_HTTP_UNAUTHORIZED, v,
				   MHD_HTTP_HEADER_WWW_AUTHENTICATE,
				   "Bearer realm=\"flowvault\"");
}
