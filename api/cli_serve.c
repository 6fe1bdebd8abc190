/*
 * cli_serve.c - flowvault serve: the REST API over a store (api/rest.h),
 * until SIGINT or SIGTERM.
 *
 * Safe by default: it listens on loopback only; another address needs
 * --allow-remote (there is no authentication or TLS yet, so anyone who
 * reaches the port reads every packet).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/cli.h"
#include "api/rest.h"
#include "common/fv.h"

static void usage(FILE *f)
{
	fputs("usage: flowvault serve -s STORE [--listen ADDR:PORT] [--allow-remote]\n"
	      "\n"
	      "Serves the store's flows and packets over HTTP (docs/api.md), read-only:\n"
	      "it runs beside record or import.\n"
	      "\n"
	      "  -s, --store DIR        store directory\n"
	      "  -l, --listen ADDR:PORT where to listen (default 127.0.0.1:8080;\n"
	      "                         [::1]:8080 for IPv6; port 0 picks one)\n"
	      "      --allow-remote     listen on an address other than loopback\n"
	      "                         (no authentication yet: anyone who reaches\n"
	      "                         the port reads every packet)\n"
	      "      --max-conns N      connections at once (default 64)\n"
	      "      --timeout T        idle time before a connection is closed (60s)\n"
	      "      --openapi FILE     the docs/api.yaml to serve (default: found\n"
	      "                         beside the program)\n"
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

int fv_cli_rest_start(const char *cmd, const char *listen, int remote,
		      struct fv_rest_opts *o, struct fv_rest **r)
{
	struct sockaddr_storage ss;
	char why[512];
	int err;

	if (parse_listen(listen, &ss, &o->addrlen)) {
		fv_cli_err(cmd,
			   "bad --listen '%s': ADDR:PORT with a numeric "
			   "address, e.g. 127.0.0.1:8080 or [::1]:8080",
			   listen);
		return FV_EXIT_USAGE;
	}
	if (!is_loopback(&ss) && !remote) {
		fv_cli_err(cmd,
			   "refusing to listen on %s: it is not a loopback "
			   "address, and the API has no authentication yet "
			   "(anyone who reaches it reads every packet). Add "
			   "--allow-remote if that is what you want",
			   listen);
		return FV_EXIT_USAGE;
	}
	o->addr = (const struct sockaddr *)&ss;
	err = fv_rest_start(r, o, why, sizeof(why));
	o->addr = NULL; /* ss is gone when this returns */
	if (err) {
		fv_cli_err(cmd, "%s", why);
		return err == FV_EUSAGE ? FV_EXIT_USAGE : FV_EXIT_ERROR;
	}
	if (!is_loopback(&ss))
		fv_cli_err(cmd,
			   "warning: listening on %s without authentication",
			   listen);
	fprintf(stderr, "flowvault %s: %s on http://%s%s%s:%u/api/v1/\n", cmd,
		o->store, ss.ss_family == AF_INET6 ? "[" : "",
		ss.ss_family == AF_INET6
			? inet_ntop(AF_INET6,
				    &((struct sockaddr_in6 *)&ss)->sin6_addr,
				    why, sizeof(why))
			: inet_ntop(AF_INET,
				    &((struct sockaddr_in *)&ss)->sin_addr, why,
				    sizeof(why)),
		ss.ss_family == AF_INET6 ? "]" : "", fv_rest_port(*r));
	return FV_EXIT_OK;
}

int fv_cli_serve(int argc, char **argv)
{
	static const struct option lo[] = {
		{"store", required_argument, 0, 's'},
		{"listen", required_argument, 0, 'l'},
		{"allow-remote", no_argument, 0, 'R'},
		{"max-conns", required_argument, 0, 'C'},
		{"timeout", required_argument, 0, 'T'},
		{"openapi", required_argument, 0, 'O'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	const char *listen = "127.0.0.1:8080";
	struct fv_rest_opts o = {0};
	struct fv_rest *r;
	int c, rc, remote = 0;
	uint64_t v;

	while ((c = getopt_long(argc, argv, "s:l:h", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			o.store = optarg;
			break;
		case 'l':
			listen = optarg;
			break;
		case 'R':
			remote = 1;
			break;
		case 'C':
			if (fv_parse_count(optarg, &v) || !v || v > 10000) {
				fv_cli_err("serve",
					   "--max-conns is 1 to 10000");
				return FV_EXIT_USAGE;
			}
			o.max_conns = (unsigned)v;
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
		case 'h':
			usage(stdout);
			return FV_EXIT_OK;
		default:
			usage(stderr);
			return FV_EXIT_USAGE;
		}
	}
	if (!o.store || optind < argc) {
		usage(stderr);
		return FV_EXIT_USAGE;
	}
	rc = fv_cli_rest_start("serve", listen, remote, &o, &r);
	if (rc)
		return rc;
	while (!fv_cli_stop)
		usleep(100 * 1000);
	fprintf(stderr, "flowvault serve: stopping\n");
	fv_rest_stop(r);
	return FV_EXIT_OK;
}
