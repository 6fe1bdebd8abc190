/*
 * Unit tests for index/filter.c: a table of expressions against hand-made
 * flows, a table of bad expressions with the exact error position, the
 * index plan, nesting limits, a randomized differential check against a
 * naive evaluator written here, concurrent matching, and last the
 * Community ID primitive (needs capture/decode.c).
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fv.h"
#include "index/filter.h"

#include "tests/unit/check.h"

#define NSEC 1000000000ULL

/* ---- fixture flows ---- */

static void set_addr(uint8_t a[16], int *family, const char *txt)
{
	memset(a, 0, 16);
	if (inet_pton(AF_INET, txt, a) == 1) {
		*family = 4;
		return;
	}
	if (inet_pton(AF_INET6, txt, a) != 1) {
		fprintf(stderr, "bad fixture address %s\n", txt);
		exit(1);
	}
	*family = 6;
}

static struct fv_flow mkflow(uint64_t id, const char *cli, uint16_t sport,
			     const char *srv, uint16_t dport, uint8_t proto)
{
	struct fv_flow f;
	int fam1, fam2;

	memset(&f, 0, sizeof(f));
	f.id = id;
	set_addr(f.key.saddr, &fam1, cli);
	set_addr(f.key.daddr, &fam2, srv);
	f.key.family = (uint8_t)fam1;
	f.key.sport = sport;
	f.key.dport = dport;
	f.key.proto = proto;
	f.first_ns = 1700000000ULL * NSEC;
	f.last_ns = f.first_ns;
	return f;
}

enum {
	F_TCP4,	 /* 10.1.2.3:51000 -> 192.168.7.8:443, https-ish */
	F_UDP6,	 /* [2001:db8:0:1::5]:40000 -> [2001:4860:4860::8888]:53 */
	F_ICMP4, /* 172.16.0.1 -> 8.8.8.8 echo, id 0x1234 */
	F_ICMP6, /* fe80::1 -> ff02::1 echo */
	F_EDGE4, /* 0.0.0.0:0 -> 255.255.255.255:65535 udp */
	F_EDGE6, /* [::]:65535 -> [ffff:...:ffff]:0 sctp */
	F_GRE,	 /* 10.9.9.9 -> 10.8.8.8 gre, ports 0 */
	F_CID,	 /* the Community ID spec's example flow */
	NFLOWS
};

static struct fv_flow flows[NFLOWS];

static void make_flows(void)
{
	struct fv_flow *f;

	f = &flows[F_TCP4];
	*f = mkflow(42, "10.1.2.3", 51000, "192.168.7.8", 443, 6);
	f->pkts[0] = 10;
	f->pkts[1] = 8;
	f->bytes[0] = 1500;
	f->bytes[1] = 250000;
	f->tcp_flags[0] = 0x1a;			  /* S P A */
	f->tcp_flags[1] = 0x13;			  /* F S A */
	f->last_ns = f->first_ns + 2500000000ULL; /* 2.5 s */

	f = &flows[F_UDP6];
	*f = mkflow(7, "2001:db8:0:1::5", 40000, "2001:4860:4860::8888", 53,
		    17);
	f->key.vlan = 100;
	f->pkts[0] = 1;
	f->pkts[1] = 1;
	f->bytes[0] = 80;
	f->bytes[1] = 120;

	f = &flows[F_ICMP4];
	*f = mkflow(9, "172.16.0.1", 0x1234, "8.8.8.8", 0x1234, 1);
	f->icmp_type = 8;
	f->icmp_code = 0;
	f->pkts[0] = 4;
	f->pkts[1] = 4;
	f->bytes[0] = 392;
	f->bytes[1] = 392;
	f->last_ns = f->first_ns + 3 * NSEC;

	f = &flows[F_ICMP6];
	*f = mkflow(10, "fe80::1", 77, "ff02::1", 77, 58);
	f->icmp_type = 128;
	f->pkts[0] = 1;
	f->bytes[0] = 118;

	f = &flows[F_EDGE4];
	*f = mkflow(UINT64_MAX, "0.0.0.0", 0, "255.255.255.255", 65535, 17);
	f->key.vlan = 4095;
	f->pkts[0] = 1000;
	f->bytes[0] = 1000000;
	f->last_ns = f->first_ns + 3600 * NSEC;

	f = &flows[F_EDGE6];
	*f = mkflow(1, "::", 65535, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
		    0, 132);
	f->pkts[1] = 1000000;
	f->bytes[1] = 1000000000;
	f->last_ns = f->first_ns + 250 * 1000000ULL; /* 250 ms */

	f = &flows[F_GRE];
	*f = mkflow(11, "10.9.9.9", 0, "10.8.8.8", 0, 47);
	f->pkts[0] = 5;
	f->bytes[0] = 700;

	f = &flows[F_CID];
	*f = mkflow(12, "128.232.110.120", 34855, "66.35.250.204", 80, 6);
}

/* ---- expressions that compile ---- */

struct good {
	const char *expr;
	int flow;
	int want;
};

static const struct good goods[] = {
	/* empty and any */
	{"", F_TCP4, 1},
	{"   \t\n ", F_GRE, 1},
	{"any", F_UDP6, 1},
	{"ANY", F_EDGE6, 1},
	{"not any", F_TCP4, 0},
	/* host / ip, directions */
	{"host 10.1.2.3", F_TCP4, 1},
	{"host 192.168.7.8", F_TCP4, 1},
	{"host 10.1.2.4", F_TCP4, 0},
	{"ip 10.1.2.3", F_TCP4, 1},
	{"src host 10.1.2.3", F_TCP4, 1},
	{"src host 192.168.7.8", F_TCP4, 0},
	{"dst host 192.168.7.8", F_TCP4, 1},
	{"dst host 10.1.2.3", F_TCP4, 0},
	{"client ip 10.1.2.3", F_TCP4, 1},
	{"server ip 10.1.2.3", F_TCP4, 0},
	{"src or dst host 192.168.7.8", F_TCP4, 1},
	{"src and dst host 192.168.7.8", F_TCP4, 0},
	{"src and dst port 0x", F_TCP4, -1},   /* (error, see bads) */
	{"src and dst port 4660", F_ICMP4, 0}, /* no ports for ICMP */
	{"src and dst host 10.9.9.9", F_GRE, 0},
	{"dst || src host 10.9.9.9", F_GRE, 1},
	{"host 2001:db8:0:1::5", F_UDP6, 1},
	{"host 2001:DB8:0:1:0:0:0:5", F_UDP6, 1},
	{"host 2001:db8:0:1::5", F_TCP4, 0},
	{"host ::", F_EDGE6, 1},
	{"src host ::", F_EDGE6, 1},
	{"dst host ::", F_EDGE6, 0},
	{"host 0.0.0.0", F_EDGE4, 1},
	{"host 0.0.0.0", F_EDGE6, 0}, /* :: is not 0.0.0.0 */
	{"host ::ffff:10.1.2.3", F_TCP4, 0},
	{"host 255.255.255.255", F_EDGE4, 1},
	{"host in [ 1.1.1.1 8.8.8.8 ]", F_ICMP4, 1},
	{"host in [1.1.1.1,9.9.9.9]", F_ICMP4, 0},
	{"dst ip in [ 172.16.0.1 ]", F_ICMP4, 0},
	{"src ip in [ 172.16.0.1 ]", F_ICMP4, 1},
	/* net */
	{"net 10.0.0.0/8", F_TCP4, 1},
	{"net 10/8", F_TCP4, 1},
	{"net 10", F_TCP4, 1},
	{"net 10.1", F_TCP4, 1},
	{"net 10.2", F_TCP4, 0},
	{"net 192.168/16", F_TCP4, 1},
	{"src net 192.168/16", F_TCP4, 0},
	{"dst net 192.168.0.0/16", F_TCP4, 1},
	{"net 10.1.2.3/8", F_TCP4, 1}, /* host bits ignored */
	{"net 10.1.2.3", F_TCP4, 1},   /* a /32 */
	{"net 10.1.2.2", F_TCP4, 0},
	{"net 10.1.2.2/31", F_TCP4, 1},
	{"net 10.1.2.0/31", F_TCP4, 0},
	{"net 10.1.2.3/32", F_TCP4, 1},
	{"net 10.1.2.4/32", F_TCP4, 0},
	{"net 0.0.0.0/0", F_TCP4, 1},
	{"net 0.0.0.0/0", F_UDP6, 0}, /* a v4 net never matches v6 */
	{"net ::/0", F_UDP6, 1},
	{"net ::/0", F_TCP4, 0},
	{"net 10.0.0.0 mask 255.0.0.0", F_TCP4, 1},
	{"net 10.0.0.0 MASK 255.255.0.0", F_TCP4, 0},
	{"net 10.1.0.0 255.255.0.0", F_TCP4, 1},
	{"net 10.1.0.0 255.255.0.0 and port 443", F_TCP4, 1},
	{"net 128.0.0.0/1", F_EDGE4, 1},
	{"src net 128.0.0.0/1", F_EDGE4, 0},
	{"net 2001:db8::/32", F_UDP6, 1},
	{"src net 2001:db8::/32", F_UDP6, 1},
	{"dst net 2001:db8::/32", F_UDP6, 0},
	{"net 2001:db8:0:1::/64", F_UDP6, 1},
	{"net 2001:db8:0:2::/64", F_UDP6, 0},
	{"net 2001:db8:0:1::5/128", F_UDP6, 1},
	{"net 2001:db8:0:1::4/128", F_UDP6, 0},
	{"net 2001:db8:0:1::4/127", F_UDP6, 1},
	{"net 2001:4860::/33", F_UDP6, 1},
	{"net 2001:4860:8000::/33", F_UDP6, 0},
	{"net ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127", F_EDGE6, 1},
	{"net fe80::/10", F_ICMP6, 1},
	{"net fec0::/10", F_ICMP6, 0},
	{"net in [ 10/8 172.16/12 ]", F_ICMP4, 1},
	/* ports */
	{"port 443", F_TCP4, 1},
	{"port 51000", F_TCP4, 1},
	{"port 80", F_TCP4, 0},
	{"src port 51000", F_TCP4, 1},
	{"dst port 51000", F_TCP4, 0},
	{"dst port 443", F_TCP4, 1},
	{"port 0", F_EDGE4, 1},
	{"port 65535", F_EDGE4, 1},
	{"src port 0", F_EDGE4, 1},
	{"dst port 65535", F_EDGE4, 1},
	{"src port 65535", F_EDGE6, 1},
	{"port 0", F_GRE, 0},	   /* GRE has no ports */
	{"port 4660", F_ICMP4, 0}, /* nor has ICMP */
	{"port in [ 80 443 ]", F_TCP4, 1},
	{"port in [ 80, 8080 ]", F_TCP4, 0},
	{"port > 1024", F_TCP4, 1}, /* the client side */
	{"dst port > 1024", F_TCP4, 0},
	{"dst port < 1024", F_TCP4, 1},
	{"dst port <= 443", F_TCP4, 1},
	{"dst port >= 444", F_TCP4, 0},
	{"dst port != 443", F_TCP4, 0},
	{"port != 443", F_TCP4, 1}, /* client side is not 443 */
	{"not port 443", F_TCP4, 0},
	{"dst port = 443", F_TCP4, 1},
	{"dst port == 443", F_TCP4, 1},
	{"dst port eq 443", F_TCP4, 1},
	{"dst port gt 442", F_TCP4, 1},
	{"port 53", F_UDP6, 1},
	/* protocols and families */
	{"proto tcp", F_TCP4, 1},
	{"proto TCP", F_TCP4, 1},
	{"proto 6", F_TCP4, 1},
	{"proto udp", F_TCP4, 0},
	{"tcp", F_TCP4, 1},
	{"udp", F_UDP6, 1},
	{"Udp", F_TCP4, 0},
	{"icmp", F_ICMP4, 1},
	{"icmp", F_ICMP6, 0},
	{"icmp6", F_ICMP6, 1},
	{"proto ipv6-icmp", F_ICMP6, 1},
	{"sctp", F_EDGE6, 1},
	{"proto gre", F_GRE, 1},
	{"proto 47", F_GRE, 1},
	{"proto 0", F_GRE, 0},
	{"proto 255", F_GRE, 0},
	{"proto esp", F_GRE, 0},
	{"proto in [ tcp udp ]", F_UDP6, 1},
	{"proto in [ tcp 17 ]", F_GRE, 0},
	{"ipv4", F_TCP4, 1},
	{"inet", F_UDP6, 0},
	{"ipv6", F_UDP6, 1},
	{"INET6", F_UDP6, 1},
	{"inet6", F_TCP4, 0},
	/* vlan, flow id, icmp */
	{"vlan 100", F_UDP6, 1},
	{"vlan 0", F_TCP4, 1},
	{"vlan 100", F_TCP4, 0},
	{"vlan 4095", F_EDGE4, 1},
	{"vlan > 99", F_UDP6, 1},
	{"flow 42", F_TCP4, 1},
	{"flow 43", F_TCP4, 0},
	{"flow 18446744073709551615", F_EDGE4, 1},
	{"flow in [ 1 2 3 ]", F_EDGE6, 1},
	{"icmp-type 8", F_ICMP4, 1},
	{"icmp-type 8 and icmp-code 0", F_ICMP4, 1},
	{"icmp-type 0", F_ICMP4, 0},
	{"icmp-type 128", F_ICMP6, 1},
	{"icmp-code 0", F_TCP4, 0}, /* not ICMP */
	/* counters and suffixes */
	{"bytes > 251000", F_TCP4, 1}, /* 251500 both ways */
	{"bytes > 251500", F_TCP4, 0},
	{"bytes >= 251500", F_TCP4, 1},
	{"bytes 251500", F_TCP4, 1},
	{"bytes = 251.5k", F_TCP4, 1},
	{"bytes = 251.5KB", F_TCP4, 1},
	{"bytes < 0.2515M", F_TCP4, 0},
	{"bytes <= 0.2515m", F_TCP4, 1},
	{"bytes > 1G", F_EDGE6, 0},
	{"bytes >= 1g", F_EDGE6, 1},
	{"bytes == 1GB", F_EDGE6, 1},
	{"bytes != 1000M", F_EDGE6, 0},
	{"bytes > 976562KiB", F_EDGE6, 1}, /* 999999488 */
	{"bytes > 976563KiB", F_EDGE6, 0}, /* 1000000512 */
	{"bytes > 1M", F_EDGE4, 0},
	{"bytes >= 1M", F_EDGE4, 1},
	{"cbytes > 1k", F_TCP4, 1},
	{"sbytes > 1k", F_TCP4, 1},
	{"cbytes > 2k", F_TCP4, 0},
	{"src bytes > 2k", F_TCP4, 0},
	{"dst bytes > 2k", F_TCP4, 1},
	{"src or dst bytes > 2k", F_TCP4, 1},
	{"src and dst bytes > 2k", F_TCP4, 0},
	{"src and dst bytes > 1k", F_TCP4, 1},
	{"packets 18", F_TCP4, 1},
	{"pkts > 17", F_TCP4, 1},
	{"pkts > 18", F_TCP4, 0},
	{"cpackets 10", F_TCP4, 1},
	{"spackets 8", F_TCP4, 1},
	{"cpkts < 10", F_TCP4, 0},
	{"spkts >= 1M", F_EDGE6, 1},
	{"packets > 1k", F_EDGE6, 1},
	{"packets > 1K", F_EDGE4, 0},
	{"packets >= 1k", F_EDGE4, 1},
	{"duration > 2", F_TCP4, 1},
	{"duration > 2.5", F_TCP4, 0},
	{"duration >= 2.5", F_TCP4, 1},
	{"duration = 2500ms", F_TCP4, 1},
	{"duration = 2.5s", F_TCP4, 1},
	{"duration < 1", F_UDP6, 1},
	{"duration = 0", F_UDP6, 1},
	{"duration = 1h", F_EDGE4, 1},
	{"duration = 60m", F_EDGE4, 1},
	{"duration = 60min", F_EDGE4, 1},
	{"duration > 0.04166d", F_EDGE4, 1},
	{"duration < 0.25", F_EDGE6, 0},
	{"duration <= 250ms", F_EDGE6, 1},
	{"duration = 250000us", F_EDGE6, 1},
	{"duration = 250000000ns", F_EDGE6, 1},
	/* TCP flags */
	{"flags S", F_TCP4, 1},
	{"flags SA", F_TCP4, 1},
	{"flags FSPA", F_TCP4, 1}, /* F from the server, P from the client */
	{"flags R", F_TCP4, 0},
	{"flags sa", F_TCP4, 1},
	{"src flags F", F_TCP4, 0},
	{"dst flags F", F_TCP4, 1},
	{"src or dst flags FP", F_TCP4, 0}, /* no one side had both */
	{"src and dst flags SA", F_TCP4, 1},
	{"flags E or flags C or flags U", F_TCP4, 0},
	{"tcp flags S and not flags R", F_TCP4, 1},
	{"flags S", F_UDP6, 0},
	/* boolean structure and precedence */
	{"tcp and port 443", F_TCP4, 1},
	{"tcp && port 80", F_TCP4, 0},
	{"tcp port 443", F_TCP4, 1}, /* implicit and */
	{"udp or port 443", F_TCP4, 1},
	{"udp || port 80", F_TCP4, 0},
	{"udp or tcp and port 80", F_TCP4, 0}, /* udp or (tcp and ..) */
	{"udp or tcp and port 80", F_UDP6, 1},
	{"(udp or tcp) and port 80", F_UDP6, 0},
	{"tcp and port 80 or udp", F_UDP6, 1}, /* (tcp and ..) or udp */
	{"tcp and (port 80 or udp)", F_UDP6, 0},
	{"port 80 or port 443 and udp", F_TCP4, 0},
	{"port 443 and udp or tcp", F_TCP4, 1},
	{"not tcp", F_TCP4, 0},
	{"! tcp", F_UDP6, 1},
	{"!tcp", F_UDP6, 1},
	{"not not tcp", F_TCP4, 1},
	{"not tcp or port 443", F_TCP4, 1}, /* (not tcp) or .. */
	{"not (tcp or port 443)", F_TCP4, 0},
	{"not tcp and port 443", F_TCP4, 0},
	{"!(udp)&&!(icmp)", F_TCP4, 1},
	{"((((tcp))))", F_TCP4, 1},
	{"tcp (port 80 or port 443)", F_TCP4, 1},
	{"tcp not port 80", F_TCP4, 1},
	{"host 10.1.2.3 and (dst port 443 or dst port 8443) and bytes > 1M",
	 F_TCP4, 0},
	{"host 10.1.2.3 and (dst port 443 or dst port 8443) and bytes > 1k",
	 F_TCP4, 1},
	{"HOST 10.1.2.3 AND NOT PORT 22", F_TCP4, 1},
	{"Src Host 10.1.2.3 Or Dst Port 22", F_TCP4, 1},
	{"src host 10.1.2.3 and dst port 443 and bytes > 1M", F_TCP4, 0},
	{"any and tcp", F_UDP6, 0},
	{"any or tcp", F_UDP6, 1},
	{"ipv6 and (udp port 53 or tcp port 53)", F_UDP6, 1},
	{"inet and proto icmp and icmp-type 8", F_ICMP4, 1},
	{"not (host 10.1.2.3 or host 10.1.2.4) or bytes > 1k", F_TCP4, 1},
	{"not (host 10.1.2.3 or host 10.1.2.4) or bytes > 1M", F_TCP4, 0},
};

static void test_good(void)
{
	unsigned n = 0;

	for (size_t i = 0; i < sizeof(goods) / sizeof(goods[0]); i++) {
		const struct good *g = &goods[i];
		struct fv_filter *f = NULL;
		struct fv_filter_error err;
		int rc;

		if (g->want < 0)
			continue;
		rc = fv_filter_compile(g->expr, &f, &err);
		CHECK(rc == 0, "compile \"%s\": %d at %d: %s", g->expr, rc,
		      err.pos, err.msg);
		if (rc)
			continue;
		CHECK(fv_filter_match(f, &flows[g->flow]) == (g->want == 1),
		      "\"%s\" on flow %d: want %d", g->expr, g->flow, g->want);
		fv_filter_free(f);
		n++;
	}
	printf("good: %u expressions matched as expected\n", n);
}

/* ---- expressions that do not compile ---- */

struct bad {
	const char *expr;
	int pos;
	int len;
	const char *msg; /* a substring of the message */
};

static const struct bad bads[] = {
	{"host", 4, 0,
	 "expected an IPv4 or IPv6 address after 'host', got end of input"},
	{"host 1.2.3.256", 5, 9, "'1.2.3.256' is not an IPv4 or IPv6 address"},
	{"host 10.0.0.0/8", 5, 10, "use 'net 10.0.0.0/8'"},
	{"host and port 80", 5, 3, "expected an IPv4 or IPv6 address"},
	{"host 2001:db8:::1", 5, 12, "not an IPv4 or IPv6 address"},
	{"port abc", 5, 3, "expected a port number after 'port', got 'abc'"},
	{"port 65536", 5, 5, "port 65536 is out of range (0-65535)"},
	{"port 99999999999999999999999", 5, 23, "out of range (0-65535)"},
	{"port -1", 5, 2, "expected a port number after 'port', got '-1'"},
	{"port", 4, 0, "got end of input"},
	{"port >", 6, 0, "expected a port number after '>', got end"},
	{"src and dst port 0x", 17, 2, "expected a port number"},
	{"bytes >", 7, 0, "expected a number after '>', got end of input"},
	{"bytes", 5, 0, "expected a number after 'bytes'"},
	{"bytes > x", 8, 1, "expected a number after '>', got 'x'"},
	{"bytes > > 5", 8, 1, "got '>'"},
	{"bytes > 5X", 9, 1, "unknown unit 'X' in '5X'"},
	{"bytes > 5 X", 10, 1, "unknown keyword 'X'"},
	{"packets > 5KB", 11, 2, "unknown unit 'KB'"},
	{"duration > 5y", 12, 1, "use ns, us, ms, s, m, h or d"},
	{"bytes > 1.5", 8, 3, "'1.5' is not a whole number of bytes"},
	{"bytes > 1.", 9, 1, "expected digits after the decimal point"},
	{"bytes > 99999999999999999999", 8, 20, "is too large"},
	{"bytes > 20000000000G", 8, 12, "is too large"},
	{"duration > 0.1ns", 11, 5, "not a whole number of nanoseconds"},
	{"foo", 0, 3, "unknown keyword 'foo'"},
	{"host 1.2.3.4 bar", 13, 3, "unknown keyword 'bar'"},
	{"10.0.0.1", 0, 8, "needs a keyword before it, e.g. 'host 10.0.0.1'"},
	{"port 80 443", 8, 3, "unexpected number '443'"},
	{"(host 1.2.3.4", 0, 1, "this '(' is never closed"},
	{"((port 80)", 0, 1, "never closed"},
	{"(port 80 or (port 81)", 0, 1, "never closed"},
	{"host 1.2.3.4)", 12, 1, "this ')' has no matching '('"},
	{"(tcp))", 5, 1, "no matching '('"},
	{"(tcp]", 4, 1, "expected ')' to close the '(' at offset 0, got ']'"},
	{"port 80 ]", 8, 1, "unexpected ']' after '80'"},
	{"port 80 > 5", 8, 1, "unexpected '>' after '80'"},
	{"port 80 and", 11, 0,
	 "expected a filter term after 'and', got end of input"},
	{"port 80 &&", 10, 0, "after '&&', got end of input"},
	{"and port 80", 0, 3, "expected a filter term, got 'and'"},
	{"port 80 or or port 81", 11, 2,
	 "expected a filter term after 'or', got 'or'"},
	{"()", 1, 1, "expected a filter term after '(', got ')'"},
	{"not", 3, 0, "expected a filter term after 'not', got end"},
	{"tcp !", 5, 0, "after '!', got end of input"},
	{"port 80 & port 81", 8, 1, "'&' is not an operator: use '&&'"},
	{"port 80 | port 81", 8, 1, "'|' is not an operator: use '||'"},
	{"host \xc3\xa9", 5, 2, "unexpected character byte 0xc3"},
	{"port 80 \"x\"", 8, 1, "unexpected character '\"'"},
	{"tcp $", 4, 1, "unexpected character '$'"},
	{"src foo", 4, 3,
	 "expected host, ip, net, port, bytes, packets or flags after 'src', "
	 "got 'foo'"},
	{"src and dst", 11, 0, "after 'src and dst', got end of input"},
	{"src or  server", 14, 0, "after 'src or  server'"},
	{"src duration > 1", 4, 8, "got 'duration'"},
	{"dst cbytes > 1", 4, 6, "got 'cbytes'"},
	{"src and port 80", 4, 3, "after 'src', got 'and'"},
	{"src and src host 1.2.3.4", 4, 3, "after 'src', got 'and'"},
	{"net 10.0.0.0/33", 13, 2,
	 "prefix length 33 is out of range for IPv4 (0-32)"},
	{"net 2001:db8::/129", 15, 3,
	 "prefix length 129 is out of range for IPv6 (0-128)"},
	{"net 10.0.0.0/", 12, 1, "expected a prefix length after '/'"},
	{"net 10.0.0.0/x", 13, 1, "'x' is not a prefix length"},
	{"net 10.0.0.0 mask 255.0.255.0", 18, 11,
	 "'255.0.255.0' is not a netmask"},
	{"net 10.0.0.0 255.0.255.0", 13, 11, "is not a netmask"},
	{"net 10.0.0.0 mask", 17, 0, "expected a netmask"},
	{"net 10.0.0.0 mask x", 18, 1, "expected a netmask"},
	{"net foo", 4, 3, "'foo' is not a network"},
	{"net 10.1.0.0/16 mask 255.0.0.0", 16, 4,
	 "'mask' cannot follow a prefix length: write either 10.1.0.0/16 or "
	 "10.1.0.0 mask M.M.M.M"},
	{"host example.com", 5, 11, "(host names are not resolved)"},
	{"tcp and app tls", 8, 3, "'app' is not supported yet"},
	{"net 256/8", 4, 5, "is not a network"},
	{"net 1.2.3.4.5/8", 4, 11, "is not a network"},
	{"net", 3, 0, "expected a network such as 10.0.0.0/8 after 'net'"},
	{"proto 256", 6, 3, "protocol number 256 is out of range (0-255)"},
	{"proto foo", 6, 3, "unknown protocol 'foo'"},
	{"proto", 5, 0, "expected a protocol name or number"},
	{"vlan 4096", 5, 4, "VLAN id 4096 is out of range (0-4095)"},
	{"vlan x", 5, 1, "expected a VLAN id after 'vlan'"},
	{"flow", 4, 0, "expected a flow id after 'flow', got end of input"},
	{"flow 18446744073709551616", 5, 20,
	 "flow id 18446744073709551616 "
	 "is too large"},
	{"icmp-type 256", 10, 3, "ICMP type 256 is out of range (0-255)"},
	{"icmp-code x", 10, 1, "expected an ICMP code"},
	{"flags SZ", 7, 1, "unknown TCP flag 'Z' in 'SZ'"},
	{"flags S1", 7, 1, "unknown TCP flag '1'"},
	{"flags", 5, 0, "expected TCP flags"},
	{"flags and tcp", 6, 3, "expected TCP flags"},
	{"cid", 3, 0, "expected a Community ID"},
	{"cid 1:abc", 4, 5, "'1:abc' is not a Community ID"},
	{"cid 2:LQU9qZlK+B5F3KDmev6m5PMibrg=", 4, 30, "not a Community ID"},
	{"cid 1:LQU9qZlK+B5F3KDmev6m5PMibrgg", 4, 30, "not a Community ID"},
	{"cid \"1:LQU9qZlK+B5F3KDmev6m5PMibrg=", 4, 1,
	 "this '\"' is never closed"},
	{"cid (tcp)", 4, 1, "after 'cid', got '('"},
	{"port in [ 80 443", 8, 1, "this '[' is never closed"},
	{"port in [ ]", 10, 1, "empty list"},
	{"port in 80", 8, 2, "expected '[' to open a list after 'in'"},
	{"port in [ 80 abc ]", 13, 3,
	 "expected a port number after '80', got 'abc'"},
	{"port in [ 80 70000 ]", 13, 5, "out of range"},
	{"port in [ > 80 ]", 10, 1, "expected a port number after '['"},
	{"host in [ 1.2.3.4 x ]", 18, 1, "'x' is not an IPv4 or IPv6"},
};

static void test_bad(void)
{
	unsigned n = 0;

	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		const struct bad *b = &bads[i];
		struct fv_filter *f = (struct fv_filter *)&n;
		struct fv_filter_error err;
		int rc;

		memset(&err, 0x5a, sizeof(err));
		rc = fv_filter_compile(b->expr, &f, &err);
		CHECK(rc == FV_EFILTER && f == NULL, "\"%s\" compiled (%d)",
		      b->expr, rc);
		if (rc != FV_EFILTER) {
			fv_filter_free(f);
			continue;
		}
		CHECK(err.pos == b->pos && err.len == b->len,
		      "\"%s\": at %d+%d, want %d+%d (%s)", b->expr, err.pos,
		      err.len, b->pos, b->len, err.msg);
		CHECK(memchr(err.msg, '\0', sizeof(err.msg)) &&
			      strstr(err.msg, b->msg),
		      "\"%s\": message \"%s\" lacks \"%s\"", b->expr, err.msg,
		      b->msg);
		CHECK(err.pos >= 0 && err.pos + err.len <= (int)strlen(b->expr),
		      "\"%s\": span outside the text", b->expr);
		n++;
	}
	printf("bad: %u expressions rejected at the right place\n", n);
}

/* Nesting: 64 levels compile, 65 do not, 100000 do not crash. */
static void test_depth(void)
{
	size_t big = 100000;
	char *s = malloc(big * 2 + 16);
	struct fv_filter *f;
	struct fv_filter_error err;
	int rc;

	if (!s) {
		CHECK(0, "malloc");
		return;
	}
	for (int depth = 63; depth <= 65; depth++) {
		char *q = s;

		for (int i = 0; i < depth; i++)
			*q++ = '(';
		q += sprintf(q, "tcp");
		for (int i = 0; i < depth; i++)
			*q++ = ')';
		*q = '\0';
		rc = fv_filter_compile(s, &f, &err);
		if (depth <= 64) {
			CHECK(rc == 0, "%d parens: %d %s", depth, rc, err.msg);
			if (!rc) {
				CHECK(fv_filter_match(f, &flows[F_TCP4]) &&
					      !fv_filter_match(f,
							       &flows[F_UDP6]),
				      "%d parens match", depth);
				fv_filter_free(f);
			}
		} else {
			CHECK(rc == FV_EFILTER && err.pos == 64 &&
				      err.len == 1 &&
				      strstr(err.msg, "deeper than 64"),
			      "65 parens: %d at %d: %s", rc, err.pos, err.msg);
		}
	}
	/* 64 "not" are even: tcp; the 65th is refused at its own offset. */
	s[0] = '\0';
	for (int i = 0; i < 64; i++)
		strcat(s, "not ");
	strcat(s, "tcp");
	rc = fv_filter_compile(s, &f, &err);
	CHECK(rc == 0, "64 nots: %s", err.msg);
	if (!rc) {
		CHECK(fv_filter_match(f, &flows[F_TCP4]), "64 nots match");
		fv_filter_free(f);
	}
	memmove(s + 1, s, strlen(s) + 1);
	s[0] = '!';
	rc = fv_filter_compile(s, &f, &err);
	CHECK(rc == FV_EFILTER && err.pos == 1 + 63 * 4 && err.len == 3,
	      "65 nots: %d at %d+%d", rc, err.pos, err.len);
	memset(s, '(', big);
	s[big] = '\0';
	rc = fv_filter_compile(s, &f, &err);
	CHECK(rc == FV_EFILTER && err.pos == 64, "100000 '(': %d at %d", rc,
	      err.pos);
	for (size_t i = 0; i < big; i++)
		memcpy(s + 2 * i, "! ", 2);
	strcpy(s + 2 * big, "tcp");
	rc = fv_filter_compile(s, &f, &err);
	CHECK(rc == FV_EFILTER && err.pos == 128, "100000 '!': %d at %d", rc,
	      err.pos);
	free(s);
	printf("depth: 64 levels compile, 65 and 100000 are refused\n");
}

/* A long flat list and a long and-chain: no recursion on width. */
static void test_width(void)
{
	size_t cap = 800000;
	char *s = malloc(cap), *q;
	struct fv_filter *f;
	struct fv_filter_error err;
	int rc;

	if (!s) {
		CHECK(0, "malloc");
		return;
	}
	q = s + sprintf(s, "dst port in [");
	for (int i = 0; i <= 65535; i += 2)
		q += sprintf(q, " %d", i);
	strcpy(q, " ]");
	rc = fv_filter_compile(s, &f, &err);
	CHECK(rc == 0, "even-port list: %s", err.msg);
	if (!rc) {
		CHECK(!fv_filter_match(f, &flows[F_UDP6]), "53 is odd");
		CHECK(!fv_filter_match(f, &flows[F_TCP4]),
		      "443 is odd (51000 is the client's)");
		CHECK(fv_filter_match(f, &flows[F_EDGE6]), "server port 0");
		CHECK(!fv_filter_match(f, &flows[F_EDGE4]), "65535 is odd");
		fv_filter_free(f);
	}
	q = s;
	for (int i = 0; i < 50000; i++)
		q += sprintf(q, "%s!port 9", i ? " and " : "");
	rc = fv_filter_compile(s, &f, &err);
	CHECK(rc == 0, "50000 conjuncts: %s", err.msg);
	if (!rc) {
		CHECK(fv_filter_match(f, &flows[F_TCP4]), "50000 conjuncts");
		fv_filter_free(f);
	}
	free(s);
	printf("width: 32768-value list and 50000-term chain\n");
}

/* ---- the index plan ---- */

struct plan_case {
	const char *expr;
	int kind;
	const char *addr; /* for HOST */
	uint64_t num;	  /* port or flow id */
};

static const struct plan_case plans[] = {
	{"", FV_PLAN_NONE, NULL, 0},
	{"any", FV_PLAN_NONE, NULL, 0},
	{"host 10.0.0.1", FV_PLAN_HOST, "10.0.0.1", 0},
	{"src host 2001:db8::1 and port 80", FV_PLAN_HOST, "2001:db8::1", 0},
	{"dst ip 10.0.0.2", FV_PLAN_HOST, "10.0.0.2", 0},
	{"src and dst host 10.0.0.3", FV_PLAN_HOST, "10.0.0.3", 0},
	{"port 80 and host 10.0.0.1", FV_PLAN_HOST, "10.0.0.1", 0},
	{"tcp host 10.0.0.1", FV_PLAN_HOST, "10.0.0.1", 0},
	{"host 10.0.0.1 and host 10.0.0.2", FV_PLAN_HOST, "10.0.0.1", 0},
	{"(host 10.0.0.1 and tcp) and port 80", FV_PLAN_HOST, "10.0.0.1", 0},
	{"host in [ 10.0.0.4 ]", FV_PLAN_HOST, "10.0.0.4", 0},
	{"port 80", FV_PLAN_PORT, NULL, 80},
	{"dst port 443 and tcp", FV_PLAN_PORT, NULL, 443},
	{"udp and src port 0", FV_PLAN_PORT, NULL, 0},
	{"port 65535", FV_PLAN_PORT, NULL, 65535},
	{"(host 10.0.0.1 or host 10.0.0.2) and port 80", FV_PLAN_PORT, NULL,
	 80},
	{"flow 42", FV_PLAN_FLOW, NULL, 42},
	{"host 1.2.3.4 and flow 42 and port 1", FV_PLAN_FLOW, NULL, 42},
	{"host 10.0.0.1 or port 80", FV_PLAN_NONE, NULL, 0},
	{"not host 10.0.0.1", FV_PLAN_NONE, NULL, 0},
	{"not port 80 and tcp", FV_PLAN_NONE, NULL, 0},
	{"tcp and (host 10.0.0.1 or udp)", FV_PLAN_NONE, NULL, 0},
	{"host in [ 10.0.0.1 10.0.0.2 ]", FV_PLAN_NONE, NULL, 0},
	{"port > 80", FV_PLAN_NONE, NULL, 0},
	{"port != 80", FV_PLAN_NONE, NULL, 0},
	{"port in [ 80 443 ]", FV_PLAN_NONE, NULL, 0},
	{"flow > 42", FV_PLAN_NONE, NULL, 0},
	{"net 10.0.0.1/32", FV_PLAN_NONE, NULL, 0},
	{"not (host 10.0.0.1 and port 80)", FV_PLAN_NONE, NULL, 0},
};

static void test_plan(void)
{
	unsigned n = 0;

	for (size_t i = 0; i < sizeof(plans) / sizeof(plans[0]); i++) {
		const struct plan_case *c = &plans[i];
		struct fv_filter *f;
		struct fv_filter_error err;
		struct fv_filter_plan pl;
		uint8_t a[16];
		int fam = 0;

		if (fv_filter_compile(c->expr, &f, &err)) {
			CHECK(0, "plan \"%s\": %s", c->expr, err.msg);
			continue;
		}
		memset(&pl, 0x5a, sizeof(pl));
		fv_filter_plan(f, &pl);
		CHECK((int)pl.kind == c->kind, "plan \"%s\": kind %d, want %d",
		      c->expr, pl.kind, c->kind);
		if (c->kind == FV_PLAN_HOST) {
			set_addr(a, &fam, c->addr);
			CHECK(pl.family == fam && !memcmp(pl.addr, a, 16),
			      "plan \"%s\": address", c->expr);
		}
		if (c->kind == FV_PLAN_PORT)
			CHECK(pl.port == c->num, "plan \"%s\": port %u",
			      c->expr, pl.port);
		if (c->kind == FV_PLAN_FLOW)
			CHECK(pl.flow_id == c->num, "plan \"%s\": flow",
			      c->expr);
		fv_filter_free(f);
		n++;
	}
	printf("plan: %u cases\n", n);
}

/*
 * ---- randomized differential check ----
 *
 * A random tree of and/or/not over random primitives is printed as text
 * (random spelling, case, spacing and redundant parentheses; parentheses
 * left out wherever precedence makes them unnecessary, and implicit
 * "and" sometimes) and evaluated by a direct recursive interpreter of
 * the tree, written independently of filter.c. The compiled filter must
 * agree on random flows, and its plan must hold for every match.
 */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static unsigned rn(unsigned n)
{
	return (unsigned)(rnd() % n);
}

static const char *const v4pool[] = {"10.0.0.1", "10.0.0.2", "10.1.0.1",
				     "192.168.1.1"};
static const char *const v6pool[] = {"2001:db8::1", "2001:db8::2",
				     "2001:db8:1::1", "fe80::1"};
static const uint16_t portpool[] = {0, 22, 53, 80, 443, 65535};
static const uint8_t protopool[] = {6, 17, 1, 58, 132, 47};
static const uint64_t countpool[] = {0,	   1,	 999,	 1000,
				     1001, 1500, 250000, 1000000};

/* Count literals and their values, spelled in several ways. */
struct numtext {
	const char *text;
	uint64_t val;
};

static const struct numtext counttexts[] = {
	{"0", 0},	{"1", 1},	  {"999", 999},	   {"1000", 1000},
	{"1k", 1000},	{"1K", 1000},	  {"1.5k", 1500},  {"0.001M", 1000},
	{"1001", 1001}, {"250k", 250000}, {"1m", 1000000}, {"0.25M", 250000},
};

static const struct numtext bytetexts[] = {
	{"1KB", 1000},
	{"1kb", 1000},
	{"1.5KB", 1500},
	{"1MB", 1000000},
};

static const struct numtext durtexts[] = {
	{"0", 0},
	{"0.5", 500000000ULL},
	{"500ms", 500000000ULL},
	{"1", 1000000000ULL},
	{"1s", 1000000000ULL},
	{"1.5", 1500000000ULL},
	{"1m", 60000000000ULL},
	{"60", 60000000000ULL},
};

static const uint64_t durpool[] = {0, 500000000ULL, 1000000000ULL,
				   1500000000ULL, 60000000000ULL};

enum rkind {
	R_HOST,
	R_NET,
	R_PORT,
	R_PROTO,
	R_FAM,
	R_BYTES,
	R_PKTS,
	R_CBYTES,
	R_SPKTS,
	R_FLAGS,
	R_VLAN,
	R_DUR,
	R_FLOW,
	R_NKINDS
};
enum rdir { RD_ANY, RD_SRC, RD_DST, RD_OR, RD_AND };
enum rcmp { RC_EQ, RC_NE, RC_LT, RC_LE, RC_GT, RC_GE };

struct rprim {
	int kind, dir, cmp;
	uint64_t val;
	char addr[48]; /* text of host/net address */
	int plen;
};

enum { X_PRIM, X_AND, X_OR, X_NOT };

struct rnode {
	int type;
	int nkids;
	struct rnode *kids[3];
	struct rprim prim;
};

static struct rnode pool[4096];
static int pool_used;

static struct rnode *gen_tree(int depth)
{
	struct rnode *n = &pool[pool_used++];
	unsigned r = rn(10);

	memset(n, 0, sizeof(*n));
	if (depth <= 0 || r < 4) {
		struct rprim *p = &n->prim;

		n->type = X_PRIM;
		p->kind = (int)rn(R_NKINDS);
		p->dir = (int)rn(5);
		p->cmp = (int)rn(6);
		switch (p->kind) {
		case R_HOST:
		case R_NET:
			if (rn(2))
				strcpy(p->addr, v4pool[rn(4)]);
			else
				strcpy(p->addr, v6pool[rn(4)]);
			p->plen = strchr(p->addr, ':') ? (int)rn(129)
						       : (int)rn(33);
			break;
		case R_PORT:
			p->val = portpool[rn(6)];
			break;
		case R_PROTO:
			p->val = protopool[rn(6)];
			break;
		case R_FAM:
			p->val = rn(2) ? 4 : 6;
			break;
		case R_FLAGS:
			p->val = rn(256);
			if (!p->val)
				p->val = 2;
			break;
		case R_VLAN:
			p->val = rn(3) == 0 ? 100 : rn(2);
			break;
		case R_FLOW:
			p->val = 1 + rn(3);
			break;
		default:
			break; /* counters pick their literal when printed */
		}
		return n;
	}
	if (r < 6) {
		n->type = X_NOT;
		n->nkids = 1;
		n->kids[0] = gen_tree(depth - 1);
		return n;
	}
	n->type = r < 8 ? X_AND : X_OR;
	n->nkids = 2 + (int)rn(2);
	for (int i = 0; i < n->nkids; i++)
		n->kids[i] = gen_tree(depth - 1);
	return n;
}

struct sbuf {
	char s[8192];
	size_t len;
};

static void put(struct sbuf *b, const char *t)
{
	size_t l = strlen(t);

	if (b->len + l < sizeof(b->s)) {
		memcpy(b->s + b->len, t, l + 1);
		b->len += l;
	}
}

/* Puts a keyword in random case. */
static void putkw(struct sbuf *b, const char *kw)
{
	char w[32];
	size_t i;
	unsigned mode = rn(4);

	for (i = 0; kw[i] && i < sizeof(w) - 1; i++) {
		char c = kw[i];

		if (c >= 'a' && c <= 'z' &&
		    (mode == 1 || (mode == 2 && i == 0) ||
		     (mode == 3 && rn(2))))
			c = (char)(c - 32);
		w[i] = c;
	}
	w[i] = '\0';
	put(b, w);
}

static void sp(struct sbuf *b)
{
	put(b, rn(5) ? " " : rn(2) ? "  " : "\t");
}

static void put_dir(struct sbuf *b, int dir)
{
	static const char *const side[2][2] = {{"src", "client"},
					       {"dst", "server"}};

	switch (dir) {
	case RD_SRC:
	case RD_DST:
		putkw(b, side[dir - RD_SRC][rn(2)]);
		sp(b);
		break;
	case RD_OR:
	case RD_AND: {
		int first = (int)rn(2);

		putkw(b, side[first][rn(2)]);
		sp(b);
		if (dir == RD_OR)
			putkw(b, rn(2) ? "or" : "||");
		else
			putkw(b, rn(2) ? "and" : "&&");
		sp(b);
		putkw(b, side[!first][rn(2)]);
		sp(b);
		break;
	}
	}
}

static void put_cmp(struct sbuf *b, int cmp, int optional_eq)
{
	static const char *const sym[6][3] = {
		{"=", "==", "eq"},  {"!=", "ne", "!="}, {"<", "lt", "<"},
		{"<=", "le", "<="}, {">", "gt", ">"},	{">=", "ge", ">="},
	};

	if (cmp == RC_EQ && optional_eq && rn(2))
		return;
	putkw(b, sym[cmp][rn(3)]);
	sp(b);
}

static void put_prim(struct sbuf *b, struct rprim *p)
{
	char t[96];
	static const char *const protoname[] = {"tcp",	 "udp",	 "icmp",
						"icmp6", "sctp", "gre"};

	switch (p->kind) {
	case R_HOST:
		put_dir(b, p->dir);
		putkw(b, rn(2) ? "host" : "ip");
		sp(b);
		put(b, p->addr);
		break;
	case R_NET:
		put_dir(b, p->dir);
		putkw(b, "net");
		sp(b);
		snprintf(t, sizeof(t), "%s/%d", p->addr, p->plen);
		put(b, t);
		break;
	case R_PORT:
		if (p->dir == RD_ANY && p->cmp == RC_EQ && rn(3) == 0) {
			snprintf(t, sizeof(t), "port in [ %u ]",
				 (unsigned)p->val);
			put(b, t);
			break;
		}
		put_dir(b, p->dir);
		putkw(b, "port");
		sp(b);
		put_cmp(b, p->cmp, 1);
		snprintf(t, sizeof(t), "%u", (unsigned)p->val);
		put(b, t);
		break;
	case R_PROTO:
		for (int i = 0; i < 6; i++)
			if (protopool[i] == p->val) {
				if (rn(2)) {
					putkw(b, protoname[i]);
				} else {
					putkw(b, "proto");
					sp(b);
					if (rn(2))
						putkw(b, protoname[i]);
					else {
						snprintf(t, sizeof(t), "%u",
							 (unsigned)p->val);
						put(b, t);
					}
				}
			}
		break;
	case R_FAM:
		putkw(b, p->val == 4 ? (rn(2) ? "ipv4" : "inet")
				     : (rn(2) ? "ipv6" : "inet6"));
		break;
	case R_BYTES:
	case R_PKTS:
	case R_CBYTES:
	case R_SPKTS: {
		const struct numtext *nt;

		if (p->kind == R_BYTES && rn(4) == 0)
			nt = &bytetexts[rn(4)];
		else
			nt = &counttexts[rn(12)];
		p->val = nt->val;
		if (p->kind == R_BYTES || p->kind == R_PKTS)
			put_dir(b, p->dir);
		if (p->kind == R_BYTES)
			putkw(b, "bytes");
		else if (p->kind == R_PKTS)
			putkw(b, rn(2) ? "packets" : "pkts");
		else if (p->kind == R_CBYTES)
			putkw(b, "cbytes");
		else
			putkw(b, rn(2) ? "spackets" : "spkts");
		sp(b);
		put_cmp(b, p->cmp, 1);
		put(b, nt->text);
		break;
	}
	case R_DUR: {
		const struct numtext *nt = &durtexts[rn(8)];

		p->val = nt->val;
		putkw(b, "duration");
		sp(b);
		put_cmp(b, p->cmp, 1);
		put(b, nt->text);
		break;
	}
	case R_FLAGS: {
		const char *letters = "FSRPAUEC";
		int k = 0;

		put_dir(b, p->dir);
		putkw(b, "flags");
		sp(b);
		for (int i = 0; i < 8; i++)
			if (p->val & (1u << i))
				t[k++] = rn(2) ? letters[i]
					       : (char)(letters[i] + 32);
		t[k] = '\0';
		put(b, t);
		break;
	}
	case R_VLAN:
		putkw(b, "vlan");
		sp(b);
		put_cmp(b, p->cmp, 1);
		snprintf(t, sizeof(t), "%u", (unsigned)p->val);
		put(b, t);
		break;
	case R_FLOW:
		putkw(b, "flow");
		sp(b);
		put_cmp(b, p->cmp, 1);
		snprintf(t, sizeof(t), "%u", (unsigned)p->val);
		put(b, t);
		break;
	}
}

/* Precedence: or 1, and 2, not and primitives 3. */
static int prec(const struct rnode *n)
{
	return n->type == X_OR ? 1 : n->type == X_AND ? 2 : 3;
}

static void print_tree(struct sbuf *b, struct rnode *n);

static void print_child(struct sbuf *b, struct rnode *c, int need)
{
	int paren = prec(c) < need || rn(8) == 0;

	if (paren) {
		put(b, "(");
		if (rn(2))
			sp(b);
	}
	print_tree(b, c);
	if (paren) {
		if (rn(2))
			sp(b);
		put(b, ")");
	}
}

static void print_tree(struct sbuf *b, struct rnode *n)
{
	switch (n->type) {
	case X_PRIM:
		put_prim(b, &n->prim);
		break;
	case X_NOT:
		put(b, rn(2) ? "not " : rn(2) ? "!" : "! ");
		print_child(b, n->kids[0], 3);
		break;
	case X_AND:
	case X_OR:
		for (int i = 0; i < n->nkids; i++) {
			if (i) {
				sp(b);
				if (n->type == X_OR)
					putkw(b, rn(2) ? "or" : "||");
				else if (rn(3))
					putkw(b, rn(2) ? "and" : "&&");
				/* else: implicit and */
				sp(b);
			}
			print_child(b, n->kids[i], n->type == X_OR ? 1 : 2);
		}
		break;
	}
}

/* The naive side: one flow's fields, read the plain way. */
static int naive_addr(const struct fv_flow *fl, int side, const char *txt,
		      int plen)
{
	char have[64];
	uint8_t want[16], got[16];
	int fam = strchr(txt, ':') ? 6 : 4;
	int bytes = fam == 4 ? 4 : 16;

	if (fl->key.family != fam)
		return 0;
	memcpy(got, side ? fl->key.daddr : fl->key.saddr, 16);
	if (plen < 0) {
		/* host: compare the canonical presentation strings */
		char wtxt[64];

		inet_pton(fam == 4 ? AF_INET : AF_INET6, txt, want);
		inet_ntop(fam == 4 ? AF_INET : AF_INET6, want, wtxt,
			  sizeof(wtxt));
		inet_ntop(fam == 4 ? AF_INET : AF_INET6, got, have,
			  sizeof(have));
		return !strcmp(have, wtxt);
	}
	inet_pton(fam == 4 ? AF_INET : AF_INET6, txt, want);
	for (int i = 0; i < plen && i < bytes * 8; i++) {
		int bit = 7 - i % 8;

		if (((got[i / 8] >> bit) & 1) != ((want[i / 8] >> bit) & 1))
			return 0;
	}
	return 1;
}

static int naive_cmp(int cmp, uint64_t a, uint64_t b)
{
	switch (cmp) {
	case RC_EQ:
		return a == b;
	case RC_NE:
		return a != b;
	case RC_LT:
		return a < b;
	case RC_LE:
		return a <= b;
	case RC_GT:
		return a > b;
	}
	return a >= b;
}

static int naive_side(const struct rprim *p, const struct fv_flow *fl, int side)
{
	int ported = fl->key.proto == 6 || fl->key.proto == 17 ||
		     fl->key.proto == 132;

	switch (p->kind) {
	case R_HOST:
		return naive_addr(fl, side, p->addr, -1);
	case R_NET:
		return naive_addr(fl, side, p->addr, p->plen);
	case R_PORT:
		return ported &&
		       naive_cmp(p->cmp, side ? fl->key.dport : fl->key.sport,
				 p->val);
	case R_BYTES:
		return naive_cmp(p->cmp, fl->bytes[side], p->val);
	case R_PKTS:
		return naive_cmp(p->cmp, fl->pkts[side], p->val);
	case R_FLAGS:
		for (int i = 0; i < 8; i++)
			if ((p->val >> i & 1) &&
			    !(fl->tcp_flags[side] >> i & 1))
				return 0;
		return 1;
	}
	return 0;
}

static int naive_prim(const struct rprim *p, const struct fv_flow *fl)
{
	switch (p->kind) {
	case R_PROTO:
		return fl->key.proto == p->val;
	case R_FAM:
		return fl->key.family == p->val;
	case R_CBYTES:
		return naive_cmp(p->cmp, fl->bytes[0], p->val);
	case R_SPKTS:
		return naive_cmp(p->cmp, fl->pkts[1], p->val);
	case R_VLAN:
		return naive_cmp(p->cmp, fl->key.vlan, p->val);
	case R_FLOW:
		return naive_cmp(p->cmp, fl->id, p->val);
	case R_DUR:
		return naive_cmp(p->cmp, fl->last_ns - fl->first_ns, p->val);
	}
	if (p->dir == RD_ANY) {
		if (p->kind == R_BYTES)
			return naive_cmp(p->cmp, fl->bytes[0] + fl->bytes[1],
					 p->val);
		if (p->kind == R_PKTS)
			return naive_cmp(p->cmp, fl->pkts[0] + fl->pkts[1],
					 p->val);
		if (p->kind == R_FLAGS) {
			struct fv_flow u = *fl;

			u.tcp_flags[0] |= u.tcp_flags[1];
			return naive_side(p, &u, 0);
		}
	}
	switch (p->dir) {
	case RD_SRC:
		return naive_side(p, fl, 0);
	case RD_DST:
		return naive_side(p, fl, 1);
	case RD_AND:
		return naive_side(p, fl, 0) && naive_side(p, fl, 1);
	}
	return naive_side(p, fl, 0) || naive_side(p, fl, 1);
}

static int naive_eval(const struct rnode *n, const struct fv_flow *fl)
{
	int v;

	switch (n->type) {
	case X_PRIM:
		return naive_prim(&n->prim, fl);
	case X_NOT:
		return !naive_eval(n->kids[0], fl);
	case X_AND:
		v = 1;
		for (int i = 0; i < n->nkids; i++)
			v &= naive_eval(n->kids[i], fl);
		return v;
	}
	v = 0;
	for (int i = 0; i < n->nkids; i++)
		v |= naive_eval(n->kids[i], fl);
	return v;
}

static void random_flow(struct fv_flow *f)
{
	int v6 = (int)rn(2), fam;
	const char *const *pool_ = v6 ? v6pool : v4pool;

	memset(f, 0, sizeof(*f));
	set_addr(f->key.saddr, &fam, pool_[rn(4)]);
	set_addr(f->key.daddr, &fam, pool_[rn(4)]);
	f->key.family = (uint8_t)fam;
	f->key.proto = protopool[rn(6)];
	f->key.sport = portpool[rn(6)];
	f->key.dport = portpool[rn(6)];
	f->key.vlan = rn(3) == 0 ? 100 : (uint16_t)rn(2);
	f->id = 1 + rn(3);
	for (int d = 0; d < 2; d++) {
		f->pkts[d] = countpool[rn(8)];
		f->bytes[d] = countpool[rn(8)];
		f->tcp_flags[d] = (uint8_t)rn(256);
	}
	f->first_ns = 1700000000ULL * NSEC;
	f->last_ns = f->first_ns + durpool[rn(5)];
}

/* Checks that a plan is a necessary condition of a match. */
static int plan_holds(const struct fv_filter_plan *pl, const struct fv_flow *fl)
{
	switch (pl->kind) {
	case FV_PLAN_HOST:
		return pl->family == fl->key.family &&
		       (!memcmp(pl->addr, fl->key.saddr, 16) ||
			!memcmp(pl->addr, fl->key.daddr, 16));
	case FV_PLAN_PORT:
		return pl->port == fl->key.sport || pl->port == fl->key.dport;
	case FV_PLAN_FLOW:
		return pl->flow_id == fl->id;
	default:
		return 1;
	}
}

static void test_random(void)
{
	const int nexpr = 3000, nflows = 64;
	struct fv_flow fl[64];
	unsigned long long matches = 0, evals = 0;
	int shown = 0, plans_seen = 0;

	for (int i = 0; i < nflows; i++)
		random_flow(&fl[i]);
	for (int e = 0; e < nexpr; e++) {
		struct sbuf b = {.len = 0};
		struct rnode *root;
		struct fv_filter *f;
		struct fv_filter_error err;
		struct fv_filter_plan pl;

		pool_used = 0;
		b.s[0] = '\0';
		root = gen_tree((int)rn(5));
		print_tree(&b, root);
		if (fv_filter_compile(b.s, &f, &err)) {
			CHECK(0, "random \"%s\": %s at %d", b.s, err.msg,
			      err.pos);
			continue;
		}
		fv_filter_plan(f, &pl);
		plans_seen += pl.kind != FV_PLAN_NONE;
		for (int i = 0; i < nflows; i++) {
			int want = naive_eval(root, &fl[i]);
			int got = fv_filter_match(f, &fl[i]);

			evals++;
			matches += (unsigned)got;
			if (want != got && shown++ < 5)
				fprintf(stderr, "  \"%s\" flow %d: naive %d\n",
					b.s, i, want);
			CHECK(want == got || shown > 5, "differential");
			if (got)
				CHECK(plan_holds(&pl, &fl[i]),
				      "plan of \"%s\" fails flow %d", b.s, i);
		}
		fv_filter_free(f);
	}
	CHECK(matches > evals / 10 && matches < evals * 9 / 10,
	      "random matches are lopsided: %llu of %llu", matches, evals);
	printf("random: %d expressions x %d flows = %llu evaluations, %llu "
	       "matches, %d with a plan, %d disagreements\n",
	       nexpr, nflows, evals, matches, plans_seen, shown);
}

/* ---- concurrent readers ---- */

struct thr {
	const struct fv_filter *f;
	const struct fv_flow *fl;
	int n;
	const unsigned char *want;
	int bad;
};

static void *reader(void *arg)
{
	struct thr *t = arg;

	for (int round = 0; round < 200; round++)
		for (int i = 0; i < t->n; i++)
			t->bad +=
				fv_filter_match(t->f, &t->fl[i]) != t->want[i];
	return NULL;
}

static void test_threads(void)
{
	static struct fv_flow fl[256];
	unsigned char want[256];
	struct thr th[4];
	pthread_t tid[4];
	struct fv_filter *f;
	struct fv_filter_error err;
	int started = 0, bad = 0;

	for (int i = 0; i < 256; i++)
		random_flow(&fl[i]);
	if (fv_filter_compile("(tcp or udp) and not src net 10/8 and "
			      "(bytes > 1k or flags SA) or host fe80::1",
			      &f, &err)) {
		CHECK(0, "threads: %s", err.msg);
		return;
	}
	for (int i = 0; i < 256; i++)
		want[i] = fv_filter_match(f, &fl[i]);
	for (int i = 0; i < 4; i++) {
		th[i] = (struct thr){f, fl, 256, want, 0};
		if (pthread_create(&tid[i], NULL, reader, &th[i]) == 0)
			started++;
	}
	for (int i = 0; i < started; i++) {
		pthread_join(tid[i], NULL);
		bad += th[i].bad;
	}
	CHECK(started == 4 && bad == 0, "threads: %d started, %d wrong",
	      started, bad);
	fv_filter_free(f);
	printf("threads: %d readers x 200 rounds x 256 flows agree\n", started);
}

/* ---- Community ID (needs fv_community_id_key from capture/decode.c) ---- */

static void test_cid(void)
{
	static const struct good cids[] = {
		/* the example of the Community ID spec, recomputed by hand
		 * with Python's hashlib for 128.232.110.120:34855 ->
		 * 66.35.250.204:80 tcp */
		{"cid 1:LQU9qZlK+B5F3KDmev6m5PMibrg=", F_CID, 1},
		{"community-id \"1:LQU9qZlK+B5F3KDmev6m5PMibrg=\"", F_CID, 1},
		{"CID 1:LQU9qZlK+B5F3KDmev6m5PMibrg= and tcp", F_CID, 1},
		{"(cid 1:LQU9qZlK+B5F3KDmev6m5PMibrg=)", F_CID, 1},
		{"cid 1:LQU9qZlK+B5F3KDmev6m5PMibrg=", F_TCP4, 0},
		/* 10.1.2.3:51000 -> 192.168.7.8:443 tcp, same method */
		{"cid 1:T+DWdwvr4DUe1UNIsEZZBNURbZ0=", F_TCP4, 1},
		{"not cid 1:T+DWdwvr4DUe1UNIsEZZBNURbZ0=", F_TCP4, 0},
		{"cid 1:t+DWdwvr4DUe1UNIsEZZBNURbZ0=", F_TCP4, 0},
	};
	unsigned n = 0;

	for (size_t i = 0; i < sizeof(cids) / sizeof(cids[0]); i++) {
		struct fv_filter *f;
		struct fv_filter_error err;

		if (fv_filter_compile(cids[i].expr, &f, &err)) {
			CHECK(0, "cid \"%s\": %s", cids[i].expr, err.msg);
			continue;
		}
		CHECK(fv_filter_match(f, &flows[cids[i].flow]) == cids[i].want,
		      "\"%s\" on flow %d: want %d", cids[i].expr, cids[i].flow,
		      cids[i].want);
		fv_filter_free(f);
		n++;
	}
	printf("cid: %u Community ID cases\n", n);
}

int main(void)
{
	make_flows();
	test_good();
	test_bad();
	test_depth();
	test_width();
	test_plan();
	test_random();
	test_threads();
	test_cid();
	if (failed) {
		printf("test_filter: %d of %d checks FAILED\n", failed, checks);
		return 1;
	}
	printf("test_filter: all %d checks passed\n", checks);
	return 0;
}
