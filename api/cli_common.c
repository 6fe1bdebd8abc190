/*
 * cli_common.c - what the subcommands share: the store's interface table,
 * opening a store for reading, and flow output (table, JSON, CSV).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/cli.h"
#include "capture/decode.h"
#include "common/fv.h"

void fv_cli_err(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "flowvault %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* meta "ifaces" is little-endian on disk, whatever the host. */
int fv_ifaces_load(struct fv_index *ix, struct fv_ifaces *ifs)
{
	uint8_t buf[FV_MAX_IFACES * 8];
	size_t len = 0;
	int err;

	memset(ifs, 0, sizeof(*ifs));
	err = fv_index_get_meta(ix, "ifaces", buf, sizeof(buf), &len);
	if (err == FV_ENOTFOUND)
		return 0;
	if (err)
		return err;
	if (len % 8 || len > sizeof(buf))
		return FV_ECORRUPT;
	ifs->n = (unsigned)(len / 8);
	for (unsigned i = 0; i < ifs->n; i++) {
		ifs->v[i].linktype = fv_le32(buf + 8 * i);
		ifs->v[i].snaplen = fv_le32(buf + 8 * i + 4);
	}
	return 0;
}

int fv_ifaces_get(struct fv_ifaces *ifs, uint32_t linktype, uint32_t snaplen,
		  int *added)
{
	for (unsigned i = 0; i < ifs->n; i++)
		if (ifs->v[i].linktype == linktype &&
		    ifs->v[i].snaplen == snaplen)
			return (int)i;
	if (ifs->n >= FV_MAX_IFACES)
		return -ENOSPC;
	ifs->v[ifs->n].linktype = linktype;
	ifs->v[ifs->n].snaplen = snaplen;
	*added = 1;
	return (int)ifs->n++;
}

size_t fv_ifaces_encode(const struct fv_ifaces *ifs, uint8_t *buf)
{
	for (unsigned i = 0; i < ifs->n; i++) {
		fv_put_le32(buf + 8 * i, ifs->v[i].linktype);
		fv_put_le32(buf + 8 * i + 4, ifs->v[i].snaplen);
	}
	return (size_t)ifs->n * 8;
}

int fv_ifaces_save(struct fv_index *ix, const struct fv_ifaces *ifs)
{
	uint8_t buf[FV_IFACES_BYTES];

	return fv_index_put_meta(ix, "ifaces", buf, fv_ifaces_encode(ifs, buf));
}

/*
 * The meta "index_format" this build reads and writes: index/index.c's
 * FV_INDEX_FORMAT, which index.h does not export (test_versions.sh checks
 * that a new store holds this number).
 */
#define CLI_INDEX_FORMAT 4

/* "block formats 2 and 3": what fv_block_hdr_decode accepts. */
static const char *block_versions_read(char *buf, unsigned len)
{
#ifdef FV_BLOCK_VERSION_Z
	snprintf(buf, len, "block formats %d and %d", FV_BLOCK_VERSION,
		 FV_BLOCK_VERSION_Z);
#else
	snprintf(buf, len, "block format %d", FV_BLOCK_VERSION);
#endif
	return buf;
}

static const char *older_newer(unsigned found, unsigned reads)
{
	return found < reads ? "an older" : "a newer";
}

char *fv_cli_block_version(char *buf, unsigned len,
			   const struct fv_store_conf *c, fv_ref ref,
			   unsigned version)
{
	char rd[64];

	snprintf(buf, len,
		 "block %016" PRIx64 " (worker %u, generation %u: "
		 "segments/w%02u/s%06u.fvseg at byte %" PRIu64
		 ") is in block format %u, written by %s flowvault (this "
		 "one reads %s)",
		 ref, fv_ref_worker(ref), fv_ref_gen(ref), fv_ref_worker(ref),
		 c->nsegments ? fv_ref_gen(ref) % c->nsegments : 0,
		 (uint64_t)fv_ref_off4k(ref) * FV_BLOCK_ALIGN, version,
		 older_newer(version, FV_BLOCK_VERSION),
		 block_versions_read(rd, sizeof(rd)));
	return buf;
}

/*
 * The first block of every segment file of the store, which a writer
 * reads to go on from the newest generation (docs/format.md "Segment
 * files"): a block of a version this build does not read would be
 * skipped there, and the ring could refill a segment the index still
 * points into. FV_EVERSION, saying which file, else 0 (missing files,
 * never written ones and damage are the ring's and fsck's business).
 */
static int first_blocks_check(const char *dir, const struct fv_store_conf *c,
			      char *why, unsigned len)
{
	for (uint32_t w = 0; w < c->workers && w < FV_INDEX_WORKERS; w++) {
		for (uint32_t i = 0; i < c->nsegments; i++) {
			uint8_t p[FV_BLOCK_HDR_LEN];
			struct fv_block_hdr h;
			char path[4200];
			ssize_t n;
			int fd;

			snprintf(path, sizeof(path),
				 "%s/segments/w%02u/s%06u.fvseg", dir, w, i);
			fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				continue;
			n = pread(fd, p, sizeof(p), 0);
			close(fd);
			if (n != (ssize_t)sizeof(p) ||
			    fv_block_hdr_decode(p, &h) != FV_EVERSION)
				continue;
			fv_cli_block_version(why, len, c,
					     fv_ref_make(w, h.gen, 0),
					     h.version);
			return FV_EVERSION;
		}
	}
	return 0;
}

static void say_blocks(const char *dir, const char *why, int writing)
{
	fprintf(stderr, "flowvault: %s: %s: %s\n", dir, why,
		writing ? "this flowvault does not write into a store with "
			  "blocks it cannot read (it could refill their "
			  "segments); nothing was written to it. Import into "
			  "a new store, or use the flowvault that wrote them"
			: "read the store with the flowvault that wrote it");
}

void fv_cli_version_err(const char *dir, int writing)
{
	const char *what = writing ? "; nothing was written to it" : "";
	struct fv_store_conf c;
	struct fv_index *ix = NULL;
	char path[4096], why[512];
	int err;

	err = fv_store_open(dir, NULL, &c);
	if (err == FV_EVERSION) {
		fprintf(stderr,
			"flowvault: %s: store format %u was written by %s "
			"flowvault (this one reads store format %d): %s%s\n",
			dir, c.format, older_newer(c.format, FV_STORE_FORMAT),
			FV_STORE_FORMAT,
			c.format < FV_STORE_FORMAT
				? "import the captures again into a new "
				  "store, or read this one with the "
				  "flowvault that wrote it"
				: "use that flowvault (or a later one) with "
				  "this store",
			what);
		return;
	}
	if (err) /* not a version problem (any more): say what it is */
		goto other;
	err = fv_index_open(&ix,
			    fv_store_path(path, sizeof(path), dir, "index"),
			    FV_INDEX_RDONLY, 0);
	if (ix)
		fv_index_close(ix);
	if (err == FV_EVERSION) {
		fprintf(stderr,
			"flowvault: %s: its index (%s) is not in index format "
			"%d, the only one this flowvault reads: it was "
			"written by an older or a newer flowvault. Read the "
			"store with the flowvault that wrote it, or import the "
			"captures again into a new store%s\n",
			dir, path, CLI_INDEX_FORMAT, what);
		return;
	}
	if (err)
		goto other;
	err = first_blocks_check(dir, &c, why, sizeof(why));
	if (err == FV_EVERSION) {
		say_blocks(dir, why, writing);
		return;
	}
	err = FV_EVERSION;
other:
	fprintf(stderr, "flowvault: %s: %s%s\n", dir, fv_strerror(err), what);
}

int fv_cli_writer_check_blocks(const char *dir, const struct fv_store_conf *c)
{
	char why[512];
	int err = first_blocks_check(dir, c, why, sizeof(why));

	if (err)
		say_blocks(dir, why, 1);
	return err;
}

int fv_cli_store_open(struct fv_cli_store *s, const char *dir)
{
	char path[4096];
	int err;

	memset(s, 0, sizeof(*s));
	s->dir = dir;
	err = fv_store_open(dir, NULL, &s->conf);
	if (err == FV_EVERSION)
		fv_cli_version_err(dir, 0);
	if (err)
		return err;
	err = fv_index_open(&s->ix,
			    fv_store_path(path, sizeof(path), dir, "index"),
			    FV_INDEX_RDONLY, 0);
	if (err == FV_EVERSION)
		fv_cli_version_err(dir, 0);
	if (err)
		return err;
	err = fv_ifaces_load(s->ix, &s->ifs);
	if (err) {
		fv_index_close(s->ix);
		s->ix = NULL;
	}
	return err;
}

void fv_cli_store_close(struct fv_cli_store *s)
{
	if (s->ix)
		fv_index_close(s->ix);
	s->ix = NULL;
}

char *fv_cli_addr(uint8_t family, const uint8_t *a, char *buf, unsigned len)
{
	if (family == 4)
		inet_ntop(AF_INET, a, buf, len);
	else if (family == 6)
		inet_ntop(AF_INET6, a, buf, len);
	else
		snprintf(buf, len, "-");
	return buf;
}

const char *fv_cli_proto_name(uint8_t proto, char *buf, unsigned len)
{
	switch (proto) {
	case 1:
		return "icmp";
	case 6:
		return "tcp";
	case 17:
		return "udp";
	case 47:
		return "gre";
	case 50:
		return "esp";
	case 58:
		return "icmp6";
	case 132:
		return "sctp";
	}
	snprintf(buf, len, "%u", proto);
	return buf;
}

char *fv_cli_tcp_flags(uint8_t f, char *buf)
{
	static const char names[] = "FSRPAUEC";
	int n = 0;

	for (int i = 0; i < 8; i++)
		if (f & (1u << i))
			buf[n++] = names[i];
	buf[n] = 0;
	return buf;
}

const char *fv_cli_end_name(uint8_t reason)
{
	switch (reason) {
	case FV_END_IDLE:
		return "idle";
	case FV_END_ACTIVE:
		return "active";
	case FV_END_FIN:
		return "fin";
	case FV_END_RST:
		return "rst";
	case FV_END_EOF:
		return "eof";
	case FV_END_EVICT:
		return "evicted";
	}
	return "open";
}

int fv_cli_parse_fmt(const char *s, enum fv_flow_fmt *fmt)
{
	if (!strcmp(s, "table"))
		*fmt = FV_FMT_TABLE;
	else if (!strcmp(s, "json"))
		*fmt = FV_FMT_JSON;
	else if (!strcmp(s, "ndjson") || !strcmp(s, "jsonl"))
		*fmt = FV_FMT_NDJSON;
	else if (!strcmp(s, "csv"))
		*fmt = FV_FMT_CSV;
	else
		return FV_EUSAGE;
	return 0;
}

char *fv_cli_hsize(uint64_t v, char *buf, unsigned len)
{
	static const char *u[] = {"B", "KB", "MB", "GB", "TB", "PB"};
	double d = (double)v;
	int i = 0;

	while (d >= 1000 && i < 5) {
		d /= 1000;
		i++;
	}
	if (i == 0)
		snprintf(buf, len, "%" PRIu64 " B", v);
	else
		snprintf(buf, len, "%.1f %s", d, u[i]);
	return buf;
}

#define CSV_HEADER                                                             \
	"id,first,last,duration,proto,client,client_port,server,server_port,"  \
	"vlan,c2s_packets,c2s_bytes,s2c_packets,s2c_bytes,packets,bytes,"      \
	"c2s_tcp_flags,s2c_tcp_flags,end,community_id,first_ns,last_ns,iface," \
	"worker,packets_available"

void fv_cli_flow_header(FILE *out, enum fv_flow_fmt fmt)
{
	switch (fmt) {
	case FV_FMT_TABLE:
		fprintf(out,
			"%-8s %-30s %9s %-5s %-41s %-41s %8s %10s %8s %10s %-7s "
			"%s\n",
			"ID", "FIRST", "DURATION", "PROTO", "CLIENT", "SERVER",
			"C>S PKTS", "C>S BYTES", "S>C PKTS", "S>C BYTES", "END",
			"PACKETS");
		break;
	case FV_FMT_JSON:
		fputs("[", out);
		break;
	case FV_FMT_CSV:
		fputs(CSV_HEADER "\n", out);
		break;
	case FV_FMT_NDJSON:
		break;
	}
}

static char *endpoint(const struct fv_flow *f, int server, char *buf,
		      unsigned len)
{
	char a[INET6_ADDRSTRLEN];
	const uint8_t *addr = server ? f->key.daddr : f->key.saddr;
	uint16_t port = server ? f->key.dport : f->key.sport;

	fv_cli_addr(f->key.family, addr, a, sizeof(a));
	if (f->key.proto == 6 || f->key.proto == 17 || f->key.proto == 132)
		snprintf(buf, len, f->key.family == 6 ? "[%s]:%u" : "%s:%u", a,
			 port);
	else
		snprintf(buf, len, "%s", a);
	return buf;
}

void fv_cli_flow_print(FILE *out, enum fv_flow_fmt fmt, const struct fv_flow *f,
		       int first, const struct fv_retention *rt)
{
	const char *avail =
		fv_avail_name(rt ? fv_retention_flow(rt, f) : FV_AVAIL_YES);
	char t0[48], t1[48], ca[INET6_ADDRSTRLEN], sa[INET6_ADDRSTRLEN];
	char pn[8], cf[9], sf[9], cid[40] = "", ce[64], se[64];
	double dur = (double)(f->last_ns - f->first_ns) / 1e9;
	const char *proto = fv_cli_proto_name(f->key.proto, pn, sizeof(pn));

	fv_format_time(f->first_ns, t0, sizeof(t0));
	fv_format_time(f->last_ns, t1, sizeof(t1));
	fv_cli_addr(f->key.family, f->key.saddr, ca, sizeof(ca));
	fv_cli_addr(f->key.family, f->key.daddr, sa, sizeof(sa));
	fv_cli_tcp_flags(f->tcp_flags[0], cf);
	fv_cli_tcp_flags(f->tcp_flags[1], sf);
	if (fmt != FV_FMT_TABLE)
		fv_community_id_key(&f->key, f->icmp_type, f->icmp_code, 0, cid,
				    sizeof(cid));
	switch (fmt) {
	case FV_FMT_TABLE:
		fprintf(out,
			"%-8" PRIu64 " %-30s %9.3f %-5s %-41s %-41s %8" PRIu64
			" %10" PRIu64 " %8" PRIu64 " %10" PRIu64 " %-7s %s\n",
			f->id, t0, dur, proto, endpoint(f, 0, ce, sizeof(ce)),
			endpoint(f, 1, se, sizeof(se)), f->pkts[0], f->bytes[0],
			f->pkts[1], f->bytes[1], fv_cli_end_name(f->end_reason),
			avail);
		break;
	case FV_FMT_CSV:
		fprintf(out,
			"%" PRIu64 ",%s,%s,%.9f,%s,%s,%u,%s,%u,%u,%" PRIu64
			",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
			",%" PRIu64 ",%s,%s,%s,%s,%" PRIu64 ",%" PRIu64
			",%u,%u,%s\n",
			f->id, t0, t1, dur, proto, ca, f->key.sport, sa,
			f->key.dport, f->key.vlan, f->pkts[0], f->bytes[0],
			f->pkts[1], f->bytes[1], f->pkts[0] + f->pkts[1],
			f->bytes[0] + f->bytes[1], cf, sf,
			fv_cli_end_name(f->end_reason), cid, f->first_ns,
			f->last_ns, f->iface, f->worker, avail);
		break;
	case FV_FMT_JSON:
	case FV_FMT_NDJSON:
		if (fmt == FV_FMT_JSON)
			fputs(first ? "\n" : ",\n", out);
		fprintf(out,
			"{\"id\":%" PRIu64 ",\"first\":\"%s\",\"last\":\"%s\","
			"\"first_ns\":%" PRIu64 ",\"last_ns\":%" PRIu64
			",\"duration\":%.9f,\"family\":%u,\"proto\":%u,"
			"\"proto_name\":\"%s\",\"client\":\"%s\","
			"\"client_port\":%u,\"server\":\"%s\","
			"\"server_port\":%u,\"vlan\":%u,"
			"\"c2s_packets\":%" PRIu64 ",\"c2s_bytes\":%" PRIu64
			",\"s2c_packets\":%" PRIu64 ",\"s2c_bytes\":%" PRIu64
			",\"packets\":%" PRIu64 ",\"bytes\":%" PRIu64
			",\"c2s_tcp_flags\":\"%s\",\"s2c_tcp_flags\":\"%s\","
			"\"end\":\"%s\",\"partial\":%s,\"community_id\":\"%s\","
			"\"iface\":%u,\"worker\":%u,"
			"\"packets_available\":\"%s\"}",
			f->id, t0, t1, f->first_ns, f->last_ns, dur,
			f->key.family, f->key.proto, proto, ca, f->key.sport,
			sa, f->key.dport, f->key.vlan, f->pkts[0], f->bytes[0],
			f->pkts[1], f->bytes[1], f->pkts[0] + f->pkts[1],
			f->bytes[0] + f->bytes[1], cf, sf,
			fv_cli_end_name(f->end_reason),
			(f->flags & FV_FLOW_PARTIAL) ? "true" : "false", cid,
			f->iface, f->worker, avail);
		if (fmt == FV_FMT_NDJSON)
			fputc('\n', out);
		break;
	}
}

void fv_cli_flow_footer(FILE *out, enum fv_flow_fmt fmt, int any)
{
	if (fmt == FV_FMT_JSON)
		fputs(any ? "\n]\n" : "]\n", out);
}

int fv_block_tally_add(void *arg, const struct fv_block_info *bi)
{
	struct fv_block_tally *t = arg;
	unsigned w = fv_ref_worker(bi->ref);

	t->blocks++;
	t->packets += bi->count;
	if (!t->first || bi->first_ns < t->first)
		t->first = bi->first_ns;
	if (bi->last_ns > t->last)
		t->last = bi->last_ns;
	if (!t->wfirst[w] || bi->first_ns < t->wfirst[w])
		t->wfirst[w] = bi->first_ns;
	if (bi->last_ns > t->wlast[w])
		t->wlast[w] = bi->last_ns;
	return 0;
}

void fv_segment_usage(const char *dir, uint64_t *files, uint64_t *bytes)
{
	char path[4096];
	DIR *d, *w;
	struct dirent *e, *s;

	*files = *bytes = 0;
	d = opendir(fv_store_path(path, sizeof(path), dir, "segments"));
	if (!d)
		return;
	while ((e = readdir(d))) {
		char wp[4600];

		if (e->d_name[0] != 'w')
			continue;
		snprintf(wp, sizeof(wp), "%s/%s", path, e->d_name);
		w = opendir(wp);
		if (!w)
			continue;
		while ((s = readdir(w))) {
			char fp[4900];
			struct stat st;

			if (s->d_name[0] != 's')
				continue;
			snprintf(fp, sizeof(fp), "%s/%s", wp, s->d_name);
			if (stat(fp, &st) == 0) {
				(*files)++;
				*bytes += (uint64_t)st.st_blocks * 512;
			}
		}
		closedir(w);
	}
	closedir(d);
}

int fv_flow_sort_parse(const char *s, enum fv_flow_sort *k)
{
	static const char *const names[] = {"time", "bytes", "packets",
					    "duration", "id"};

	if (!strcmp(s, "first")) {
		*k = FV_SORT_TIME;
		return 0;
	}
	for (unsigned i = 0; i < sizeof(names) / sizeof(*names); i++)
		if (!strcmp(s, names[i])) {
			*k = (enum fv_flow_sort)i;
			return 0;
		}
	return FV_EUSAGE;
}

uint64_t fv_flow_sort_val(enum fv_flow_sort k, const struct fv_flow *f)
{
	switch (k) {
	case FV_SORT_BYTES:
		return f->bytes[0] + f->bytes[1];
	case FV_SORT_PACKETS:
		return f->pkts[0] + f->pkts[1];
	case FV_SORT_DURATION:
		return f->last_ns - f->first_ns;
	case FV_SORT_ID:
		return f->id;
	case FV_SORT_TIME:
		break;
	}
	return f->first_ns;
}
