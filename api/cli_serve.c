/*
 * cli_serve.c - flowvault serve: the REST API over a store (api/rest.h),
 * until SIGINT or SIGTERM.
 *
 * Safe by default: it listens on loopback only; another address needs
 * a bearer token, TLS, or --insecure (else anyone who
 * reaches the port reads every packet).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/cli.h"
#include "api/rest.h"
#include "common/fv.h"

static void usage(FILE *f)
{
	fputs("usage: flowvault serve -s STORE [--listen ADDR:PORT] [credentials]\n"
	      "\n"
	      "Serves the store's flows and packets over HTTP (docs/api.md), read-only:\n"
	      "it runs beside record or import.\n"
	      "\n"
	      "  -s, --store DIR        store directory\n"
	      "  -l, --listen ADDR:PORT where to listen (default 127.0.0.1:8080;\n"
	      "                         [::1]:8080 for IPv6; port 0 picks one)\n" FV_CLI_API_USAGE
	      "      --max-conns N      connections at once (default 256)\n"
	      "      --max-downloads N  pcap downloads streaming at once (default\n"
	      "                         64); one more is answered 503, Retry-After\n"
	      "      --timeout T        idle time before a connection is closed (60s)\n"
	      "      --openapi FILE     the docs/api.yaml to serve (default: found\n"
	      "                         beside the program)\n"
	      "      --ui DIR           the web UI's built files, served at /\n"
	      "                         (default: ui/ beside the program, where\n"
	      "                         make builds it; docs/ui.md)\n"
	      "  -h, --help\n",
	      f);
}

/* "127.0.0.1:8080", "[::1]:8080", "localhost:8080", ":8080" (loopback).
 * Numeric addresses only: no name is resolved but localhost. */
static int parse_listen(const char *s, struct sockaddr_storage *ss,
			socklen_t *len)
{
	char host[128];
	const char *colon, *port;
	unsigned long p;
	char *end;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':' || (size_t)(rb - s - 1) >= sizeof(host))
			return FV_EUSAGE;
		memcpy(host, s + 1, (size_t)(rb - s - 1));
		host[rb - s - 1] = 0;
		port = rb + 2;
	} else {
		colon = strrchr(s, ':');
		if (!colon || (size_t)(colon - s) >= sizeof(host))
			return FV_EUSAGE;
		memcpy(host, s, (size_t)(colon - s));
		host[colon - s] = 0;
		port = colon + 1;
	}
	errno = 0;
	p = strtoul(port, &end, 10);
	if (!*port || *end || errno || p > 65535)
		return FV_EUSAGE;
	if (!*host || !strcmp(host, "localhost"))
		strcpy(host, "127.0.0.1");
	if (s[0] != '[') {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)p);
		if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			return FV_EUSAGE;
		*len = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)p);
		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
			return FV_EUSAGE;
		*len = sizeof(*a);
	}
	return 0;
}

static int is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;

		return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
	}
	return IN6_IS_ADDR_LOOPBACK(
		&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

int fv_cli_api_opt(int c, const char *arg, struct fv_cli_api *a)
{
	switch (c) {
	case FV_OPT_INSECURE:
		a->insecure = 1;
		return 1;
	case FV_OPT_TOKEN:
		a->token_file = arg;
		return 1;
	case FV_OPT_TLS_CERT:
		a->tls_cert = arg;
		return 1;
	case FV_OPT_TLS_KEY:
		a->tls_key = arg;
		return 1;
	case FV_OPT_TLS_CA:
		a->tls_ca = arg;
		return 1;
	}
	return 0;
}

/* The token: the first line of the file, without surrounding blanks;
 * at least 16 characters. */
static int read_token(const char *cmd, const char *path, char *tok, size_t len)
{
	FILE *f = fopen(path, "r");
	struct stat st;
	size_t n;
	char *p;

	if (!f || !fgets(tok, (int)len, f)) {
		fv_cli_err(cmd, "--auth-token-file %s: %s", path,
			   f ? "empty" : strerror(errno));
		if (f)
			fclose(f);
		return FV_EXIT_USAGE;
	}
	if (!fstat(fileno(f), &st) && (st.st_mode & 077))
		fv_cli_err(cmd,
			   "warning: %s can be read by others (chmod 600 it)",
			   path);
	fclose(f);
	for (p = tok; *p == ' ' || *p == '\t'; p++)
		;
	memmove(tok, p, strlen(p) + 1);
	n = strlen(tok);
	while (n && strchr(" \t\r\n", tok[n - 1]))
		tok[--n] = 0;
	for (p = tok; *p; p++)
		if (*p <= ' ' || *p > '~' || strchr("\";,\\", *p)) {
			fv_cli_err(
				cmd,
				"--auth-token-file %s: the token holds a "
				"space, a control character or one of \";,\\ "
				"(it also goes into a cookie: use e.g. "
				"openssl rand -hex 32)",
				path);
			return FV_EXIT_USAGE;
		}
	if (n < 16) {
		fv_cli_err(cmd,
			   "--auth-token-file %s: the token is %zu characters, "
			   "16 at least (e.g. openssl rand -hex 32 > %s)",
			   path, n, path);
		return FV_EXIT_USAGE;
	}
	return 0;
}

int fv_cli_rest_start(const char *cmd, const char *listen,
		      const struct fv_cli_api *a, struct fv_rest_opts *o,
		      struct fv_rest **r)
{
	struct sockaddr_storage ss;
	char why[512], tok[512];
	int err;

	if (parse_listen(listen, &ss, &o->addrlen)) {
		fv_cli_err(cmd,
			   "bad --listen '%s': ADDR:PORT with a numeric "
			   "address, e.g. 127.0.0.1:8080 or [::1]:8080",
			   listen);
		return FV_EXIT_USAGE;
	}
	if (!is_loopback(&ss) && !a->insecure && !a->token_file &&
	    !a->tls_cert) {
		fv_cli_err(cmd,
			   "refusing to listen on %s: it is not a loopback "
			   "address and neither --auth-token-file nor "
			   "--tls-cert is given (anyone who reaches it would "
			   "read every packet). Add one, or --insecure if "
			   "that is what you want",
			   listen);
		return FV_EXIT_USAGE;
	}
	if (a->token_file) {
		err = read_token(cmd, a->token_file, tok, sizeof(tok));
		if (err)
			return err;
		o->token = tok;
	}
	o->tls_cert = a->tls_cert;
	o->tls_key = a->tls_key;
	o->tls_client_ca = a->tls_ca;
	o->addr = (const struct sockaddr *)&ss;
	err = fv_rest_start(r, o, why, sizeof(why));
	explicit_bzero(tok, sizeof(tok)); /* the server keeps its copy */
	o->token = NULL;
	o->addr = NULL; /* ss is gone when this returns */
	/* A format version: say which part, which version, what to do. */
	if (err == FV_EVERSION)
		fv_cli_version_err(o->store, 0);
	else if (err)
		fv_cli_err(cmd, "%s", why);
	if (err)
		return err == FV_EUSAGE ? FV_EXIT_USAGE : FV_EXIT_ERROR;
	if (!is_loopback(&ss) && !a->token_file && !a->tls_cert)
		fv_cli_err(cmd,
			   "warning: listening on %s without authentication",
			   listen);
	fprintf(stderr, "flowvault %s: %s on %s://%s%s%s:%u/api/v1/%s\n", cmd,
		o->store, a->tls_cert ? "https" : "http",
		ss.ss_family == AF_INET6 ? "[" : "",
		ss.ss_family == AF_INET6
			? inet_ntop(AF_INET6,
				    &((struct sockaddr_in6 *)&ss)->sin6_addr,
				    why, sizeof(why))
			: inet_ntop(AF_INET,
				    &((struct sockaddr_in *)&ss)->sin_addr, why,
				    sizeof(why)),
		ss.ss_family == AF_INET6 ? "]" : "", fv_rest_port(*r),
		a->token_file ? " (bearer token)" : "");
	return FV_EXIT_OK;
}

/* --ui DIR: a directory with the UI's index.html (0), else says so. */
static int ui_dir_ok(const char *dir)
{
	char p[4096];

	if (snprintf(p, sizeof(p), "%s/index.html", dir) < (int)sizeof(p) &&
	    !access(p, R_OK))
		return 0;
	fv_cli_err("serve",
		   "--ui %s: no index.html there (the UI is built by make "
		   "into BUILD/ui, or by npm run build in ui/ into ui/dist)",
		   dir);
	return FV_EUSAGE;
}

int fv_cli_serve(int argc, char **argv)
{
	static const struct option lo[] = {
		{"store", required_argument, 0, 's'},
		{"listen", required_argument, 0, 'l'},
		FV_CLI_API_LONGOPTS,
		{"max-conns", required_argument, 0, 'C'},
		{"max-downloads", required_argument, 0, 'D'},
		{"timeout", required_argument, 0, 'T'},
		{"openapi", required_argument, 0, 'O'},
		{"ui", required_argument, 0, 'U'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	const char *listen = "127.0.0.1:8080";
	struct fv_rest_opts o = {0};
	struct fv_cli_api api = {0};
	struct fv_rest *r;
	int c, rc;
	uint64_t v;

	while ((c = getopt_long(argc, argv, "s:l:h", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			o.store = optarg;
			break;
		case 'l':
			listen = optarg;
			break;
		case 'C':
			if (fv_parse_count(optarg, &v) || !v || v > 10000) {
				fv_cli_err("serve",
					   "--max-conns is 1 to 10000");
				return FV_EXIT_USAGE;
			}
			o.max_conns = (unsigned)v;
			break;
		case 'D':
			if (fv_parse_count(optarg, &v) || !v || v > 10000) {
				fv_cli_err("serve",
					   "--max-downloads is 1 to 10000");
				return FV_EXIT_USAGE;
			}
			o.max_streams = (unsigned)v;
			break;
		case 'T':
			if (fv_parse_duration(optarg, &v) ||
			    v < FV_NSEC_PER_SEC ||
			    v / FV_NSEC_PER_SEC > 86400) {
				fv_cli_err("serve",
					   "--timeout is 1s to 1d, e.g. 60s");
				return FV_EXIT_USAGE;
			}
			o.timeout_s = (unsigned)(v / FV_NSEC_PER_SEC);
			break;
		case 'O':
			o.openapi = optarg;
			break;
		case 'U':
			if (ui_dir_ok(optarg))
				return FV_EXIT_USAGE;
			o.ui = optarg;
			break;
		case 'h':
			usage(stdout);
			return FV_EXIT_OK;
		default:
			if (fv_cli_api_opt(c, optarg, &api))
				break;
			usage(stderr);
			return FV_EXIT_USAGE;
		}
	}
	if (!o.store || optind < argc) {
		usage(stderr);
		return FV_EXIT_USAGE;
	}
	rc = fv_cli_rest_start("serve", listen, &api, &o, &r);
	if (rc)
		return rc;
	if (fv_rest_ui_dir(r))
		fprintf(stderr,
			"flowvault serve: web UI at / (files from %s)\n",
			fv_rest_ui_dir(r));
	else
		fprintf(stderr,
			"flowvault serve: no web UI: not built (make "
			"builds it when npm is there) and no --ui DIR\n");
	while (!fv_cli_stop)
		usleep(100 * 1000);
	fprintf(stderr, "flowvault serve: stopping\n");
	fv_rest_stop(r);
	return FV_EXIT_OK;
}
