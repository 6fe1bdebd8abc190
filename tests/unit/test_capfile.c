/*
 * test_capfile.c - reading capture files and writing pcap / pcapng,
 * checked against oracles that are not ours:
 *
 *  1. every corpus file tshark reads: frame by frame, our ns timestamp,
 *     lengths, interface and bytes against tshark's (-x hex dump and
 *     custom columns); link types and interface counts against
 *     MANIFEST.tsv. Known differences are counted and printed.
 *  2. corpus/malformed: no crash, and the documented outcome.
 *  3. hand-built pcapng files (both byte orders, two sections, SPB, PB,
 *     skipped blocks, if_tsresol 10^-k and 2^-k, if_tsoffset) against
 *     hand-computed values and tshark; damaged ones against the error
 *     code and sentence.
 *  4. the same inputs through a pipe and standard input; every corpus
 *     file with read-ahead (fv_capfile_readahead) against without it.
 *  5. writer round trips: every corpus frame written as pcapng (one
 *     file, many link types) and as pcap (one per link type), read back
 *     by libpcap, tshark, capinfos and our reader.
 *
 * FV_CORPUS overrides the corpus path (default ../shared/corpus from the
 * repository root). Exit 0 pass, 1 fail, 77 skip.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pcap/pcap.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "capture/capfile.h"
#include "common/fv.h"

#define MAX_ROWS	512
#define MAX_LT		64
#define MAX_FAIL_PRINTS 60

struct ctx {
	char corpus[PATH_MAX];
	char tmp[64];
	char tshark[PATH_MAX];	 /* "" when not installed */
	char capinfos[PATH_MAX]; /* "" when not installed */
	unsigned long checks;
	unsigned fails;
	unsigned diff_negtime;	/* tshark shows a negative time */
	unsigned diff_snapcut;	/* libpcap cut a frame to the snaplen */
	unsigned diff_usecwrap; /* tshark wraps usec * 1000 at 2^32 */
	unsigned diff_phdr;	/* tshark strips a SunATM pseudo-header */
	unsigned diff_nonpkt;	/* tshark shows a custom block as a record */
	unsigned diff_ps;	/* tshark overflows 10^-12 s units */
	char ltname[1024][32];	/* wiretap's short name per LINKTYPE */
	const char *seeds;	/* FV_WRITE_SEEDS: copy hand-built files here */
	unsigned nseeds;
};

static void check(struct ctx *c, int ok, const char *fmt, ...)
{
	va_list ap;

	c->checks++;
	if (ok)
		return;
	if (++c->fails <= MAX_FAIL_PRINTS) {
		printf("FAIL: ");
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
		printf("\n");
	}
}

/* snprintf for paths: a path that does not fit is a bug here. */
static void spath(char *out, size_t n, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsnprintf(out, n, fmt, ap);
	va_end(ap);
	if (r < 0 || (size_t)r >= n) {
		fprintf(stderr, "path too long: %s\n", fmt);
		abort();
	}
}

/* memcmp() that allows NULL when n is 0. */
static int same(const void *a, const void *b, size_t n)
{
	return n == 0 || !memcmp(a, b, n);
}

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

static int find_in_path(const char *name, char *out)
{
	const char *path = getenv("PATH");
	char dir[PATH_MAX];

	if (!path)
		path = "/usr/bin:/bin";
	while (*path) {
		size_t n = strcspn(path, ":");

		spath(dir, sizeof(dir), "%.*s/%s", (int)n, path, name);
		if (access(dir, X_OK) == 0) {
			snprintf(out, PATH_MAX, "%s", dir);
			return 0;
		}
		path += n + (path[n] == ':');
	}
	out[0] = '\0';
	return -1;
}

/* ---- child processes (tshark, capinfos), run in parallel ---- */

struct job {
	const char *argv[24];
	char in[PATH_MAX];
	char out[PATH_MAX];
	pid_t pid;
	int status;
	int may_fail; /* tshark on a file cut short exits non-zero */
};

static void job_set(struct job *j, const char *out, ...)
{
	va_list ap;
	int n = 0;
	const char *a;

	memset(j, 0, sizeof(*j));
	spath(j->out, sizeof(j->out), "%s", out);
	va_start(ap, out);
	while ((a = va_arg(ap, const char *)) && n < 23)
		j->argv[n++] = a;
	va_end(ap);
	j->argv[n] = NULL;
}

static void run_jobs(struct job *jobs, size_t n)
{
	long par = sysconf(_SC_NPROCESSORS_ONLN);
	size_t next = 0, running = 0;

	if (par < 2)
		par = 2;
	if (par > 8)
		par = 8;
	while (next < n || running) {
		int st;
		pid_t pid;

		while (running < (size_t)par && next < n) {
			struct job *j = &jobs[next++];

			fflush(stdout);
			j->pid = fork();
			if (j->pid == 0) {
				int fd = open(j->out,
					      O_WRONLY | O_CREAT | O_TRUNC,
					      0644);
				int nul = open("/dev/null", O_RDWR);

				if (fd < 0 || nul < 0)
					_exit(126);
				dup2(fd, 1);
				dup2(nul, 2);
				dup2(nul, 0);
				execv(j->argv[0], (char *const *)j->argv);
				_exit(127);
			}
			if (j->pid < 0) {
				j->status = -1;
				continue;
			}
			running++;
		}
		pid = wait(&st);
		if (pid < 0)
			break;
		for (size_t i = 0; i < next; i++)
			if (jobs[i].pid == pid)
				jobs[i].status = st;
		running--;
	}
}

#define TSHARK_COLS                                                            \
	"gui.column.format:\"N\",\"%Cus:frame.number\",\"T\","                 \
	"\"%Cus:frame.time_epoch\",\"L\",\"%Cus:frame.len\",\"C\","            \
	"\"%Cus:frame.cap_len\",\"I\",\"%Cus:frame.interface_id\",\"S\","      \
	"\"%Cus:frame.section_number\""

/* tshark printing per frame one summary line (number, time, len,
 * caplen, interface, section) and the frame's hex dump; IP dissection
 * off for speed. */
static void job_tshark(struct ctx *c, struct job *j, const char *in,
		       const char *out)
{
	job_set(j, out, c->tshark, "-n", "-r", in, "-P", "-x",
		"--disable-protocol", "ip", "--disable-protocol", "ipv6", "-o",
		TSHARK_COLS, NULL);
	spath(j->in, sizeof(j->in), "%s", in);
	j->argv[3] = j->in;
}

/* ---- reading tshark's output ---- */

struct tframe {
	unsigned long number;
	int has_ts; /* 0: no time (a Simple Packet Block) */
	int ts_ok;  /* 0: tshark printed a negative time */
	char ts_text[48];
	uint64_t ts_ns;
	uint32_t len;
	uint32_t caplen;
	int has_iface; /* 0: pcap, or a record that is not a packet */
	uint32_t iface;
	unsigned section; /* 0 for pcap */
	uint8_t *bytes;
	size_t nbytes;
	size_t cap;
};

struct treader {
	FILE *f;
	char *line;
	size_t lcap;
	int pending;	    /* line holds an unread summary line */
	unsigned long last; /* number of the previous frame */
	unsigned gaps;	    /* frame numbers skipped: must stay 0 */
};

static void chomp(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
}

static int all_digits(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)p[i]))
			return 0;
	return 1;
}

static uint64_t num(const char *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n && i < 19; i++)
		v = v * 10 + (uint64_t)(p[i] - '0');
	return v;
}

/*
 * The summary line: frame number, time, len, caplen, interface, section,
 * separated by single spaces; tshark leaves a column empty when the
 * record lacks the field (no time in an SPB, no interface in a pcap).
 */
static int parse_summary(const char *s, struct tframe *fr)
{
	const char *tok[6], *p = s, *dot;
	size_t len[6];
	int n = 0;

	for (;;) {
		size_t k = strcspn(p, " ");

		if (n == 6)
			return 0;
		tok[n] = p;
		len[n++] = k;
		p += k;
		if (!*p)
			break;
		p++;
	}
	if (n != 6 || !len[0] || !all_digits(tok[0], len[0]) || !len[2] ||
	    !all_digits(tok[2], len[2]) || !len[3] ||
	    !all_digits(tok[3], len[3]) || !all_digits(tok[4], len[4]) ||
	    !all_digits(tok[5], len[5]) || len[1] >= sizeof(fr->ts_text))
		return 0;
	memset(fr->ts_text, 0, sizeof(fr->ts_text));
	memcpy(fr->ts_text, tok[1], len[1]);
	fr->has_ts = len[1] > 0;
	fr->ts_ok = 1;
	fr->ts_ns = 0;
	if (fr->has_ts) {
		const char *t = fr->ts_text;

		if (*t == '-') {
			fr->ts_ok = 0; /* tshark shows a negative time */
			t++;
		}
		dot = strchr(t, '.');
		if (!dot || dot == t || !all_digits(t, (size_t)(dot - t)) ||
		    strlen(dot + 1) < 9 ||
		    !all_digits(dot + 1, strlen(dot + 1)))
			return 0;
		/* The nanoseconds, zero-padded to 9 digits; an invalid value
		 * of 10^9 or more shows as more digits. */
		fr->ts_ns = num(t, (size_t)(dot - t)) * FV_NSEC_PER_SEC +
			    num(dot + 1, strlen(dot + 1));
	}
	fr->number = (unsigned long)num(tok[0], len[0]);
	fr->len = (uint32_t)num(tok[2], len[2]);
	fr->caplen = (uint32_t)num(tok[3], len[3]);
	fr->has_iface = len[4] > 0;
	fr->iface = (uint32_t)num(tok[4], len[4]);
	fr->section = (unsigned)num(tok[5], len[5]);
	return 1;
}

/* One hex dump line at offset expect; appends its bytes. */
static int parse_hex(const char *s, size_t expect, struct tframe *fr)
{
	const char *p = s;
	size_t off = 0;
	int nd = 0, i;

	while (isxdigit((unsigned char)*p)) {
		off = off * 16 +
		      (size_t)(isdigit((unsigned char)*p)
				       ? *p - '0'
				       : tolower((unsigned char)*p) - 'a' + 10);
		p++;
		nd++;
	}
	if (nd < 4 || p[0] != ' ' || p[1] != ' ' || off != expect)
		return 0;
	p += 2;
	for (i = 0; i < 16; i++) {
		unsigned v;

		if (!isxdigit((unsigned char)p[0]) ||
		    !isxdigit((unsigned char)p[1]) ||
		    (p[2] != ' ' && p[2] != '\0'))
			break;
		if (sscanf(p, "%2x", &v) != 1)
			break;
		if (fr->nbytes == fr->cap) {
			fr->cap = fr->cap ? fr->cap * 2 : 4096;
			fr->bytes = realloc(fr->bytes, fr->cap);
			if (!fr->bytes)
				abort();
		}
		fr->bytes[fr->nbytes++] = (uint8_t)v;
		if (p[2] == '\0') {
			i++;
			break;
		}
		p += 3;
	}
	return i > 0;
}

static int is_summary(const char *s)
{
	struct tframe t = {0};

	return parse_summary(s, &t);
}

/* Next frame from tshark's output: 1, or 0 at the end. */
static int tr_next(struct treader *r, struct tframe *fr)
{
	int in_hex = 0, done = 0;

	for (;;) {
		if (!r->pending && getline(&r->line, &r->lcap, r->f) < 0)
			return 0;
		r->pending = 0;
		chomp(r->line);
		if (is_summary(r->line))
			break;
	}
	parse_summary(r->line, fr);
	if (fr->number != r->last + 1)
		r->gaps++; /* a frame this parser did not see */
	r->last = fr->number;
	fr->nbytes = 0;
	while (getline(&r->line, &r->lcap, r->f) >= 0) {
		chomp(r->line);
		if (is_summary(r->line)) {
			r->pending = 1;
			break;
		}
		if (done)
			continue;
		if (parse_hex(r->line, fr->nbytes, fr)) {
			in_hex = 1;
			continue;
		}
		/* The frame's own bytes come first; a reassembled or
		 * decompressed source after them is not part of it. */
		if (in_hex)
			done = 1;
	}
	return 1;
}

/* ---- MANIFEST.tsv ---- */

struct mrow {
	char path[256];
	char link_type[512];
	char format[128];
	long packets; /* -1 if not a number */
	char tshark_read[512];
	int lts[MAX_LT]; /* LINKTYPE numbers named in link_type */
	int nlt;
	int idbs; /* "(N IDBs)" in format, else 0 */
};

/* "ether (1)" or "per-interface: ether (1),linux-sll (113)": the
 * LINKTYPE numbers, and capinfos' short name for each into ltname. */
static void row_parse_lts(struct ctx *c, struct mrow *r)
{
	const char *p = r->link_type;

	while ((p = strchr(p, '(')) != NULL) {
		const char *e = p, *b;
		int lt;

		p++;
		if (!isdigit((unsigned char)*p) || r->nlt >= MAX_LT)
			continue;
		lt = atoi(p);
		r->lts[r->nlt++] = lt;
		while (e > r->link_type && e[-1] == ' ')
			e--;
		b = e;
		while (b > r->link_type && b[-1] != ' ' && b[-1] != ',')
			b--;
		if (lt >= 0 && lt < 1024 && e > b)
			snprintf(c->ltname[lt], sizeof(c->ltname[lt]), "%.*s",
				 (int)(e - b), b);
	}
	p = strstr(r->format, " IDBs)");
	if (p) {
		while (p > r->format && isdigit((unsigned char)p[-1]))
			p--;
		r->idbs = atoi(p);
	}
}

static int read_manifest(struct ctx *c, struct mrow *rows, int max)
{
	char path[PATH_MAX], *line = NULL;
	size_t lcap = 0;
	int col[6] = {-1, -1, -1, -1, -1, -1}, n = 0, header = 1;
	static const char *names[6] = {"path",	  "link_type",	 "format",
				       "packets", "tshark_read", NULL};
	FILE *f;

	spath(path, sizeof(path), "%s/MANIFEST.tsv", c->corpus);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (getline(&line, &lcap, f) >= 0 && n < max) {
		char *fields[32], *s = line, *tab;
		int nf = 0;

		chomp(line);
		while (nf < 32) {
			fields[nf++] = s;
			tab = strchr(s, '\t');
			if (!tab)
				break;
			*tab = '\0';
			s = tab + 1;
		}
		if (header) {
			for (int i = 0; i < nf; i++)
				for (int k = 0; names[k]; k++)
					if (!strcmp(fields[i], names[k]))
						col[k] = i;
			header = 0;
			for (int k = 0; k < 5; k++)
				if (col[k] < 0 || col[k] >= nf)
					goto out;
			continue;
		}
		if (nf <= col[4])
			continue;
		memset(&rows[n], 0, sizeof(rows[n]));
		snprintf(rows[n].path, sizeof(rows[n].path), "%s",
			 fields[col[0]]);
		snprintf(rows[n].link_type, sizeof(rows[n].link_type), "%s",
			 fields[col[1]]);
		snprintf(rows[n].format, sizeof(rows[n].format), "%s",
			 fields[col[2]]);
		rows[n].packets = isdigit((unsigned char)fields[col[3]][0])
					  ? atol(fields[col[3]])
					  : -1;
		snprintf(rows[n].tshark_read, sizeof(rows[n].tshark_read), "%s",
			 fields[col[4]]);
		row_parse_lts(c, &rows[n]);
		n++;
	}
out:
	free(line);
	fclose(f);
	return n;
}

/* ---- 1. every corpus file against tshark ---- */

static void cmp_with_tshark(struct ctx *c, const struct mrow *r,
			    const char *tsh_out)
{
	char path[PATH_MAX], errbuf[256] = "";
	struct fv_capfile *cf = NULL;
	struct fv_capfile_pkt pkt;
	struct treader tr = {0};
	struct tframe fr = {0};
	long want_frames = -1;
	int expect_err = 0, ret, is_pcap, is_usec, seen_lt[MAX_LT] = {0};
	unsigned long nframes = 0;

	if (!strcmp(r->tshark_read, "ok")) {
		want_frames = r->packets;
	} else if (isdigit((unsigned char)r->tshark_read[0]) &&
		   strstr(r->tshark_read, " frames, then")) {
		want_frames = atol(r->tshark_read);
		expect_err = 1;
	}
	spath(path, sizeof(path), "%s/%s", c->corpus, r->path);
	ret = fv_capfile_open(&cf, path, errbuf);
	check(c, ret == 0, "%s: open: %d %s", r->path, ret, errbuf);
	if (ret)
		return;
	is_pcap = !strncmp(fv_capfile_format(cf), "pcap/", 5);
	is_usec = !strcmp(fv_capfile_format(cf), "pcap/usec");
	check(c,
	      !strncmp(r->format, fv_capfile_format(cf),
		       strlen(fv_capfile_format(cf))),
	      "%s: format %s, MANIFEST says %s", r->path, fv_capfile_format(cf),
	      r->format);

	tr.f = fopen(tsh_out, "r");
	check(c, tr.f != NULL, "%s: no tshark output", r->path);
	if (!tr.f)
		goto out;
	while (tr_next(&tr, &fr) == 1) {
		const struct fv_capfile_iface *ifc;

		if (!is_pcap && !fr.has_iface) {
			/* a custom block tshark shows as a record */
			c->diff_nonpkt++;
			printf("  expected difference: %s record %lu: tshark "
			       "shows a block that is not a packet\n",
			       r->path, fr.number);
			continue;
		}
		ret = fv_capfile_next(cf, &pkt, errbuf);
		if (ret != 1) {
			check(c, 0,
			      "%s: we stop after %lu frames (%d %s), "
			      "tshark has more",
			      r->path, nframes, ret, errbuf);
			goto out;
		}
		nframes++;
		if (!fr.has_ts) {
			check(c, pkt.ts_ns == 0,
			      "%s frame %lu: no time (SPB), ours %llu", r->path,
			      nframes, (unsigned long long)pkt.ts_ns);
		} else if (!fr.ts_ok) {
			c->diff_negtime++;
			printf("  expected difference: %s frame %lu: tshark "
			       "shows time %s (nanoseconds >= 2^31 read as "
			       "negative); we read %llu ns\n",
			       r->path, nframes, fr.ts_text,
			       (unsigned long long)pkt.ts_ns);
		} else if (pkt.ts_ns > fr.ts_ns && is_usec &&
			   (pkt.ts_ns - fr.ts_ns) % (1ULL << 32) == 0) {
			c->diff_usecwrap++;
			printf("  expected difference: %s frame %lu: tshark "
			       "shows %s (it multiplies the invalid "
			       "microseconds by 1000 in 32 bits); we read "
			       "%llu ns\n",
			       r->path, nframes, fr.ts_text,
			       (unsigned long long)pkt.ts_ns);
		} else {
			check(c, pkt.ts_ns == fr.ts_ns,
			      "%s frame %lu: ts %llu, tshark %s", r->path,
			      nframes, (unsigned long long)pkt.ts_ns,
			      fr.ts_text);
		}
		/* tshark numbers interfaces per section, we file-wide:
		 * the same in a one-section file, which the corpus has. */
		if (is_pcap)
			check(c,
			      !fr.has_iface && fr.section == 0 &&
				      pkt.iface == 0,
			      "%s frame %lu: interface %u", r->path, nframes,
			      pkt.iface);
		else
			check(c, fr.section == 1 && pkt.iface == fr.iface,
			      "%s frame %lu: interface %u, tshark %u in "
			      "section %u",
			      r->path, nframes, pkt.iface, fr.iface,
			      fr.section);
		ifc = fv_capfile_iface(cf, pkt.iface);
		check(c, ifc && ifc->linktype == pkt.linktype,
		      "%s frame %lu: packet link type %d, interface's %d",
		      r->path, nframes, pkt.linktype, ifc ? ifc->linktype : -1);
		for (int k = 0; k < r->nlt; k++)
			if (r->lts[k] == pkt.linktype)
				seen_lt[k] = 1;
		/* SunATM: wiretap moves the 4-byte pseudo-header out of
		 * the frame; libpcap (and so we) keep it in the bytes. */
		if (pkt.linktype == 123 && pkt.caplen == fr.caplen + 4 &&
		    pkt.origlen == fr.len + 4 && fr.nbytes == fr.caplen &&
		    same(pkt.data + 4, fr.bytes, fr.nbytes)) {
			c->diff_phdr++;
			printf("  expected difference: %s frame %lu: tshark "
			       "takes the 4-byte SunATM pseudo-header out of "
			       "the frame (len %u, caplen %u; ours %u, %u)\n",
			       r->path, nframes, fr.len, fr.caplen, pkt.origlen,
			       pkt.caplen);
			continue;
		}
		check(c, pkt.origlen == fr.len,
		      "%s frame %lu: origlen %u, tshark %u", r->path, nframes,
		      pkt.origlen, fr.len);
		check(c, fr.nbytes == fr.caplen,
		      "%s frame %lu: tshark dump has %zu bytes, caplen %u",
		      r->path, nframes, fr.nbytes, fr.caplen);
		if (pkt.caplen != fr.caplen && is_pcap && ifc &&
		    pkt.caplen < fr.caplen && pkt.caplen == ifc->snaplen &&
		    same(pkt.data, fr.bytes, pkt.caplen)) {
			c->diff_snapcut++;
			printf("  expected difference: %s frame %lu: libpcap "
			       "cuts the %u captured bytes to the file's "
			       "snaplen %u (tshark keeps them)\n",
			       r->path, nframes, fr.caplen, pkt.caplen);
			continue;
		}
		check(c, pkt.caplen == fr.caplen,
		      "%s frame %lu: caplen %u, tshark %u", r->path, nframes,
		      pkt.caplen, fr.caplen);
		check(c,
		      pkt.caplen == fr.nbytes &&
			      same(pkt.data, fr.bytes, fr.nbytes),
		      "%s frame %lu: bytes differ from tshark's", r->path,
		      nframes);
	}
	check(c, tr.gaps == 0, "%s: %u frames missed in tshark's output",
	      r->path, tr.gaps);
	ret = fv_capfile_next(cf, &pkt, errbuf);
	if (expect_err) {
		check(c, ret == FV_ETRUNC && errbuf[0],
		      "%s: after %lu frames we return %d (%s), want FV_ETRUNC",
		      r->path, nframes, ret, errbuf);
	} else {
		check(c, ret == 0, "%s: after %lu frames we return %d (%s)",
		      r->path, nframes, ret, errbuf);
		check(c,
		      fv_capfile_offset(cf) == fv_capfile_size(cf) &&
			      fv_capfile_size(cf) > 0,
		      "%s: offset %llu at the end, size %llu", r->path,
		      (unsigned long long)fv_capfile_offset(cf),
		      (unsigned long long)fv_capfile_size(cf));
	}
	check(c, want_frames < 0 || (long)nframes == want_frames,
	      "%s: %lu frames, MANIFEST says %ld", r->path, nframes,
	      want_frames);
	/* Every link type MANIFEST names is an interface of ours. */
	for (int k = 0; k < r->nlt; k++) {
		int found = 0;

		for (unsigned i = 0; i < fv_capfile_niface(cf); i++)
			if (fv_capfile_iface(cf, i)->linktype == r->lts[k])
				found = 1;
		check(c, found || seen_lt[k],
		      "%s: link type %d (MANIFEST) not among ours", r->path,
		      r->lts[k]);
	}
	if (r->idbs)
		check(c, fv_capfile_niface(cf) == (unsigned)r->idbs,
		      "%s: %u interfaces, MANIFEST says %d", r->path,
		      fv_capfile_niface(cf), r->idbs);
	else if (is_pcap)
		check(c,
		      fv_capfile_niface(cf) == 1 && r->nlt == 1 &&
			      fv_capfile_iface(cf, 0)->linktype == r->lts[0],
		      "%s: link type %d, MANIFEST says %s", r->path,
		      fv_capfile_iface(cf, 0)->linktype, r->link_type);
out:
	if (tr.f)
		fclose(tr.f);
	free(tr.line);
	free(fr.bytes);
	fv_capfile_close(cf);
}

/* ---- 2. malformed files ---- */

/* Reads a whole file; returns packets read, the final code in *ret. */
static long read_all(const char *path, int *ret, char *errbuf)
{
	struct fv_capfile *cf;
	struct fv_capfile_pkt pkt;
	long n = 0;
	int r;

	errbuf[0] = '\0';
	r = fv_capfile_open(&cf, path, errbuf);
	if (r) {
		*ret = r;
		return -1;
	}
	while ((r = fv_capfile_next(cf, &pkt, errbuf)) == 1)
		n++;
	*ret = r;
	fv_capfile_close(cf);
	return n;
}

static void test_malformed(struct ctx *c, const struct mrow *rows, int nrows)
{
	char path[PATH_MAX], errbuf[256];
	unsigned nfiles = 0, nerr = 0;
	long n;
	int ret;

	for (int i = 0; i < nrows; i++) {
		const char *name = rows[i].path;

		if (strncmp(name, "malformed/", 10))
			continue;
		spath(path, sizeof(path), "%s/%s", c->corpus, name);
		n = read_all(path, &ret, errbuf);
		nfiles++;
		if (ret) {
			nerr++;
			check(c, errbuf[0] != '\0',
			      "%s: error %d without a "
			      "sentence",
			      name, ret);
			printf("  %s: %ld frames, then %s: %s\n", name,
			       n < 0 ? 0 : n, fv_strerror(ret), errbuf);
		}
		if (!strcmp(name, "malformed/truncated-midrecord.pcap")) {
			check(c,
			      n == 436 && ret == FV_ETRUNC &&
				      strstr(errbuf, "truncated dump file"),
			      "%s: %ld frames, %d (%s); want 436 then "
			      "FV_ETRUNC",
			      name, n, ret, errbuf);
		} else if (!strcmp(name, "malformed/not-a-pcap.pcap")) {
			check(c,
			      n < 0 && ret == FV_EFORMAT &&
				      strstr(errbuf, "not a pcap"),
			      "%s: %d (%s); want FV_EFORMAT at open", name, ret,
			      errbuf);
		} else if (!strcmp(name, "malformed/empty.pcap")) {
			check(c, n == 0 && ret == 0,
			      "%s: %ld frames, %d; want 0 and no error", name,
			      n, ret);
		} else if (!strcmp(name,
				   "malformed/truncated-global-header.pcap")) {
			check(c, n < 0 && ret == FV_ETRUNC,
			      "%s: %d (%s); want FV_ETRUNC at open", name, ret,
			      errbuf);
		} else if (!strcmp(rows[i].tshark_read, "ok")) {
			/* tshark reads it whole: so must we. */
			check(c, ret == 0 && n == rows[i].packets,
			      "%s: %ld frames, %d (%s); MANIFEST: %ld", name, n,
			      ret, errbuf, rows[i].packets);
		}
	}
	printf("malformed: %u files read without a crash, %u end in an "
	       "error\n",
	       nfiles, nerr);
	check(c, nfiles >= 20, "only %u malformed files", nfiles);
}

/* ---- 3. hand-built pcapng ---- */

struct nb {
	uint8_t *p;
	size_t len;
	size_t cap;
	int big;
	size_t blk; /* start of the open block */
};

static void nb_bytes(struct nb *b, const void *d, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 256;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			abort();
	}
	memcpy(b->p + b->len, d, n);
	b->len += n;
}

static void nb_u16(struct nb *b, uint16_t v)
{
	uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};

	if (b->big)
		fv_put_be16(x, v);
	nb_bytes(b, x, 2);
}

static void nb_u32(struct nb *b, uint32_t v)
{
	uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
			(uint8_t)(v >> 24)};

	if (b->big)
		fv_put_be32(x, v);
	nb_bytes(b, x, 4);
}

static void nb_u64(struct nb *b, uint64_t v)
{
	if (b->big) {
		nb_u32(b, (uint32_t)(v >> 32));
		nb_u32(b, (uint32_t)v);
	} else {
		nb_u32(b, (uint32_t)v);
		nb_u32(b, (uint32_t)(v >> 32));
	}
}

static void nb_pad(struct nb *b)
{
	static const uint8_t z[4];

	nb_bytes(b, z, (4 - (b->len & 3)) & 3);
}

static void nb_begin(struct nb *b, uint32_t type)
{
	b->blk = b->len;
	nb_u32(b, type);
	nb_u32(b, 0); /* length, set by nb_end */
}

static void nb_end(struct nb *b)
{
	uint32_t total = (uint32_t)(b->len - b->blk + 4);
	struct nb t = {.big = b->big};

	nb_u32(b, total);
	nb_u32(&t, total);
	memcpy(b->p + b->blk + 4, t.p, 4);
	free(t.p);
}

static void nb_opt(struct nb *b, uint16_t code, const void *v, uint16_t n)
{
	nb_u16(b, code);
	nb_u16(b, n);
	nb_bytes(b, v, n);
	nb_pad(b);
}

static void nb_shb(struct nb *b, int big)
{
	b->big = big;
	nb_begin(b, 0x0A0D0D0A);
	nb_u32(b, 0x1A2B3C4D);
	nb_u16(b, 1);
	nb_u16(b, 0);
	nb_u64(b, UINT64_MAX);
	nb_opt(b, 2, "test hardware", 13); /* shb_hardware */
	nb_u32(b, 0);			   /* opt_endofopt */
	nb_end(b);
}

/* An IDB; tsresol < 0: none; tsoffset: written when nonzero. */
static void nb_idb(struct nb *b, uint16_t lt, uint32_t snaplen,
		   const char *name, int tsresol, int64_t tsoffset)
{
	nb_begin(b, 1);
	nb_u16(b, lt);
	nb_u16(b, 0);
	nb_u32(b, snaplen);
	if (name)
		nb_opt(b, 2, name, (uint16_t)strlen(name));
	if (tsresol >= 0) {
		uint8_t v = (uint8_t)tsresol;

		nb_opt(b, 9, &v, 1);
	}
	if (tsoffset) {
		nb_u16(b, 14);
		nb_u16(b, 8);
		nb_u64(b, (uint64_t)tsoffset);
	}
	nb_u32(b, 0);
	nb_end(b);
}

static void nb_epb(struct nb *b, uint32_t iface, uint64_t units,
		   const uint8_t *d, uint32_t caplen, uint32_t origlen)
{
	nb_begin(b, 6);
	nb_u32(b, iface);
	nb_u32(b, (uint32_t)(units >> 32));
	nb_u32(b, (uint32_t)units);
	nb_u32(b, caplen);
	nb_u32(b, origlen);
	nb_bytes(b, d, caplen);
	nb_pad(b);
	nb_end(b);
}

static void nb_start(struct nb *b, int big)
{
	memset(b, 0, sizeof(*b));
	nb_shb(b, big);
	nb_idb(b, 1, 65535, NULL, -1, 0);
}

/* A frame whose bytes tell its number. */
static void frame_bytes(uint8_t *d, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		d[i] = (uint8_t)(seed * 37 + i * 11);
}

struct want {
	uint64_t ts;
	uint32_t caplen;
	uint32_t origlen;
	uint32_t iface;
	int linktype;
	unsigned seed;
	uint32_t seedlen;   /* bytes generated by frame_bytes */
	uint64_t tshark_ts; /* what tshark shows, when it differs */
};

static int write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	int ok;

	if (!f)
		return -1;
	ok = fwrite(p, 1, n, f) == n;
	return fclose(f) == 0 && ok ? 0 : -1;
}

/*
 * Two sections (big-endian, then little-endian), four interfaces with
 * four timestamp resolutions, an SPB cut by the snaplen, an obsolete PB,
 * and NRB/ISB/custom blocks to skip. Expected values computed by hand.
 */
static void build_synthetic(struct nb *b, struct want *w, int *nw)
{
	uint8_t d[128];
	int n = 0;

	memset(b, 0, sizeof(*b));
	nb_shb(b, 1);
	nb_idb(b, 1, 64, "eth0", 6, 0);
	nb_idb(b, 228, 0,
	       "a name longer than sixty-three bytes is cut to fit the field"
	       " of the struct",
	       0x8A, 0); /* 2^-10 s */
	nb_begin(b, 4);	 /* NRB: an IPv4 record, then nrb_record_end */
	nb_u16(b, 1);
	nb_u16(b, 14);
	nb_bytes(b, "\x0a\x00\x00\x01host.test", 14);
	nb_pad(b);
	nb_u32(b, 0);
	nb_end(b);
	nb_begin(b, 0x00000BAD); /* custom block, PEN 32473 */
	nb_u32(b, 32473);
	nb_bytes(b, "abc", 3);
	nb_pad(b);
	nb_end(b);

	/* 1700000000.123456 s in microseconds */
	frame_bytes(d, 60, 1);
	nb_epb(b, 0, 1700000000123456ULL, d, 60, 60);
	w[n++] = (struct want){1700000000123456000ULL, 60, 60, 0, 1, 1, 60, 0};
	/* 1700000000.5 s in 2^-10 s units */
	frame_bytes(d, 42, 2);
	nb_epb(b, 1, 1700000000ULL * 1024 + 512, d, 42, 42);
	w[n++] =
		(struct want){1700000000500000000ULL, 42, 42, 1, 228, 2, 42, 0};
	/* 1700000001 + 1/1024 s: 976562.5 ns, rounded down */
	frame_bytes(d, 20, 3);
	nb_epb(b, 1, 1700000001ULL * 1024 + 1, d, 20, 1500);
	w[n++] = (struct want){
		1700000001000976562ULL, 20, 1500, 1, 228, 3, 20, 0};
	nb_begin(b, 5); /* ISB for interface 0, no options */
	nb_u32(b, 0);
	nb_u32(b, 0);
	nb_u32(b, 0);
	nb_end(b);
	/* SPB: original length 100, snaplen 64, so 64 bytes present */
	frame_bytes(d, 64, 4);
	nb_begin(b, 3);
	nb_u32(b, 100);
	nb_bytes(b, d, 64);
	nb_end(b);
	w[n++] = (struct want){0, 64, 100, 0, 1, 4, 64, 0};
	/* obsolete Packet Block on interface 1, drops 7 */
	frame_bytes(d, 21, 5);
	nb_begin(b, 2);
	nb_u16(b, 1);
	nb_u16(b, 7);
	nb_u32(b, (uint32_t)((1700000002ULL * 1024) >> 32));
	nb_u32(b, (uint32_t)(1700000002ULL * 1024));
	nb_u32(b, 21);
	nb_u32(b, 21);
	nb_bytes(b, d, 21);
	nb_pad(b);
	nb_end(b);
	w[n++] =
		(struct want){1700000002000000000ULL, 21, 21, 1, 228, 5, 21, 0};

	/* Section 2, little-endian: its interfaces are ours 2 and 3. */
	nb_shb(b, 0);
	nb_idb(b, 113, 262144, NULL, 3, 100); /* ms, +100 s */
	nb_idb(b, 1, 65535, "ps", 12, 0);     /* picoseconds */
	frame_bytes(d, 44, 6);
	nb_epb(b, 0, 1700000000123ULL, d, 44, 44);
	w[n++] =
		(struct want){1700000100123000000ULL, 44, 44, 2, 113, 6, 44, 0};
	frame_bytes(d, 64, 7);
	nb_epb(b, 1, 18000000123456789999ULL, d, 64, 64);
	w[n++] = (struct want){18000000123456789ULL, 64, 64, 3, 1, 7, 64, 0};
	/* Wireshark computes (units % 10^12) * 10^9 in 64 bits, which
	 * wraps: it shows 18000000.012776325 s for this one. */
	w[n - 1].tshark_ts =
		18000000ULL * FV_NSEC_PER_SEC +
		(uint64_t)(123456789999ULL * 1000000000ULL) / 1000000000000ULL;
	*nw = n;
}

/*
 * With FV_WRITE_SEEDS=DIR, the hand-built files become the fuzzer's seed
 * corpus (tests/fuzz/corpus/fuzz_pcapng/): the synthetic file, and its
 * frames rewritten by our writer as pcapng and (Ethernet only) pcap.
 */
static void write_seeds(struct ctx *c, const char *synth)
{
	static const char *names[] = {"synthetic.pcapng", "writer.pcapng",
				      "writer-ether.pcap"};
	char path[PATH_MAX], errbuf[256];
	struct fv_capfile *cf;
	struct fv_capfile_pkt p;
	struct fv_pcapw *w[2];
	FILE *f[2];
	struct nb b = {0};
	FILE *in = fopen(synth, "rb");
	uint8_t buf[4096];
	size_t n;

	while (in && (n = fread(buf, 1, sizeof(buf), in)) > 0)
		nb_bytes(&b, buf, n);
	if (in)
		fclose(in);
	spath(path, sizeof(path), "%s/%s", c->seeds, names[0]);
	write_file(path, b.p, b.len);
	free(b.p);
	for (int k = 0; k < 2; k++) {
		spath(path, sizeof(path), "%s/%s", c->seeds, names[k + 1]);
		f[k] = fopen(path, "wb");
		if (!f[k] ||
		    fv_pcapw_open(&w[k], f[k],
				  k ? FV_PCAPW_PCAP : FV_PCAPW_PCAPNG, 1, 0))
			return;
	}
	if (fv_capfile_open(&cf, synth, errbuf) == 0) {
		while (fv_capfile_next(cf, &p, errbuf) == 1) {
			fv_pcapw_write(w[0], p.linktype, p.ts_ns, p.caplen,
				       p.origlen, p.data);
			if (p.linktype == 1)
				fv_pcapw_write(w[1], 1, p.ts_ns, p.caplen,
					       p.origlen, p.data);
		}
		fv_capfile_close(cf);
	}
	for (int k = 0; k < 2; k++) {
		fv_pcapw_close(w[k]);
		fclose(f[k]);
	}
}

static void test_synthetic(struct ctx *c, const char *path, const char *tsh_out)
{
	struct fv_capfile *cf;
	struct fv_capfile_pkt pkt;
	struct want w[16];
	struct nb b;
	char errbuf[256], spb[PATH_MAX];
	uint8_t d[128];
	int nw = 0, ret, i;

	build_synthetic(&b, w, &nw);
	free(b.p);
	ret = fv_capfile_open(&cf, path, errbuf);
	check(c, ret == 0, "synthetic: open %d %s", ret, errbuf);
	if (ret)
		return;
	check(c, fv_capfile_niface(cf) == 2,
	      "synthetic: %u interfaces at "
	      "open, want the first section's 2",
	      fv_capfile_niface(cf));
	for (i = 0; i < nw; i++) {
		ret = fv_capfile_next(cf, &pkt, errbuf);
		check(c, ret == 1, "synthetic frame %d: %d %s", i, ret, errbuf);
		if (ret != 1)
			break;
		frame_bytes(d, w[i].seedlen, w[i].seed);
		check(c,
		      pkt.ts_ns == w[i].ts && pkt.caplen == w[i].caplen &&
			      pkt.origlen == w[i].origlen &&
			      pkt.iface == w[i].iface &&
			      pkt.linktype == w[i].linktype &&
			      same(pkt.data, d, pkt.caplen),
		      "synthetic frame %d: ts %llu caplen %u origlen %u "
		      "iface %u lt %d; want %llu %u %u %u %d",
		      i, (unsigned long long)pkt.ts_ns, pkt.caplen, pkt.origlen,
		      pkt.iface, pkt.linktype, (unsigned long long)w[i].ts,
		      w[i].caplen, w[i].origlen, w[i].iface, w[i].linktype);
	}
	ret = fv_capfile_next(cf, &pkt, errbuf);
	check(c, ret == 0, "synthetic: end %d %s", ret, errbuf);
	check(c, fv_capfile_niface(cf) == 4, "synthetic: %u interfaces",
	      fv_capfile_niface(cf));
	if (fv_capfile_niface(cf) == 4) {
		check(c,
		      !strcmp(fv_capfile_iface(cf, 0)->name, "eth0") &&
			      strlen(fv_capfile_iface(cf, 1)->name) == 63 &&
			      !strcmp(fv_capfile_iface(cf, 2)->name, "") &&
			      !strcmp(fv_capfile_iface(cf, 3)->name, "ps"),
		      "synthetic: interface names");
		check(c,
		      fv_capfile_iface(cf, 0)->snaplen == 64 &&
			      fv_capfile_iface(cf, 2)->linktype == 113 &&
			      fv_capfile_iface(cf, 2)->snaplen == 262144,
		      "synthetic: interface fields");
	}
	fv_capfile_close(cf);

	/* tshark's view of the same file. */
	if (tsh_out) {
		struct treader tr = {.f = fopen(tsh_out, "r")};
		struct tframe fr = {0};

		int nonpkt = 0;

		i = 0;
		while (tr.f && tr_next(&tr, &fr) == 1 && i < nw) {
			uint64_t ts = w[i].tshark_ts ? w[i].tshark_ts : w[i].ts;
			/* our interfaces 0-1 are section 1's, 2-3 section
			 * 2's 0-1: tshark numbers them per section */
			unsigned sec = w[i].iface < 2 ? 1 : 2;

			if (!fr.has_iface) {
				nonpkt++; /* the custom block */
				continue;
			}
			if (w[i].tshark_ts) {
				c->diff_ps++;
				printf("  expected difference: synthetic "
				       "frame %d: tshark shows %s for "
				       "10^-12 s units, exact is %llu ns\n",
				       i, fr.ts_text,
				       (unsigned long long)w[i].ts);
			}
			frame_bytes(d, w[i].seedlen, w[i].seed);
			check(c,
			      (ts ? fr.has_ts && fr.ts_ok && fr.ts_ns == ts
				  : !fr.has_ts) &&
				      fr.caplen == w[i].caplen &&
				      fr.len == w[i].origlen &&
				      fr.nbytes == w[i].caplen &&
				      same(fr.bytes, d, fr.nbytes),
			      "synthetic frame %d: tshark says ts %s len %u "
			      "caplen %u",
			      i, fr.ts_text, fr.len, fr.caplen);
			check(c,
			      fr.section == sec &&
				      fr.iface == w[i].iface - (sec - 1) * 2,
			      "synthetic frame %d: tshark: interface %u of "
			      "section %u, ours %u",
			      i, fr.iface, fr.section, w[i].iface);
			i++;
		}
		check(c, nonpkt == 1 && tr.gaps == 0,
		      "synthetic: tshark shows %d non-packet records, want "
		      "the custom block; %u gaps",
		      nonpkt, tr.gaps);
		check(c, i == nw, "synthetic: tshark shows %d frames of %d", i,
		      nw);
		if (tr.f)
			fclose(tr.f);
		free(tr.line);
		free(fr.bytes);
	}
	printf("synthetic pcapng: %d frames in 2 sections checked\n", nw);
	if (c->seeds)
		write_seeds(c, path);

	/* An SPB holding fewer bytes than min(original length, snaplen):
	 * the block's room bounds the captured length. */
	memset(&b, 0, sizeof(b));
	nb_start(&b, 0);
	frame_bytes(d, 40, 9);
	nb_begin(&b, 3);
	nb_u32(&b, 100);
	nb_bytes(&b, d, 40);
	nb_end(&b);
	spath(spb, sizeof(spb), "%s/short-spb.pcapng", c->tmp);
	if (c->seeds) {
		char seed[PATH_MAX];

		spath(seed, sizeof(seed), "%s/short-spb.pcapng", c->seeds);
		write_file(seed, b.p, b.len);
	}
	if (write_file(spb, b.p, b.len) == 0 &&
	    fv_capfile_open(&cf, spb, errbuf) == 0) {
		ret = fv_capfile_next(cf, &pkt, errbuf);
		check(c,
		      ret == 1 && pkt.caplen == 40 && pkt.origlen == 100 &&
			      pkt.iface == 0 && !memcmp(pkt.data, d, 40),
		      "short SPB: %d caplen %u origlen %u", ret,
		      ret == 1 ? pkt.caplen : 0, ret == 1 ? pkt.origlen : 0);
		check(c, fv_capfile_next(cf, &pkt, errbuf) == 0,
		      "short SPB: end");
		fv_capfile_close(cf);
	} else {
		check(c, 0, "short SPB: cannot write or open %s", spb);
	}
	free(b.p);
}

/* Damaged pcapng: each must give the code and a sentence with words. */
static void bad_case(struct ctx *c, const char *tmp, const char *what,
		     struct nb *b, long want_pkts, int want_err,
		     const char *want_text)
{
	char path[PATH_MAX], errbuf[256];
	long n;
	int ret;

	spath(path, sizeof(path), "%s/bad.pcapng", tmp);
	if (write_file(path, b->p, b->len)) {
		check(c, 0, "%s: cannot write %s", what, path);
		return;
	}
	n = read_all(path, &ret, errbuf);
	check(c,
	      n == want_pkts && ret == want_err &&
		      strstr(errbuf, want_text) != NULL,
	      "damaged pcapng (%s): %ld packets, %d \"%s\"; want %ld, %d "
	      "\"%s\"",
	      what, n, ret, errbuf, want_pkts, want_err, want_text);
	printf("  damaged pcapng (%s): %s\n", what, errbuf);
	if (c->seeds) {
		spath(path, sizeof(path), "%s/damaged-%02u.pcapng", c->seeds,
		      c->nseeds++);
		write_file(path, b->p, b->len);
	}
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static void test_damaged(struct ctx *c)
{
	uint8_t d[64] = {0};
	struct nb b;
	char text[160];
	size_t off;

	/* EPB claims more captured bytes than its block holds */
	nb_start(&b, 0);
	nb_epb(&b, 0, 1, d, 40, 40);
	off = b.len;
	nb_begin(&b, 6);
	nb_u32(&b, 0);
	nb_u32(&b, 0);
	nb_u32(&b, 1);
	nb_u32(&b, 9999);
	nb_u32(&b, 9999);
	nb_bytes(&b, d, 64);
	nb_bytes(&b, d, 4);
	nb_end(&b);
	snprintf(text, sizeof(text),
		 "Enhanced Packet Block at offset %zu claims 9999 captured "
		 "bytes in a 100-byte block",
		 off);
	bad_case(c, c->tmp, "caplen beyond the block", &b, 1, FV_EFORMAT, text);

	/* block length below 12, not a multiple of 4, beyond 16 MiB */
	nb_start(&b, 1);
	nb_u32(&b, 6);
	nb_u32(&b, 8);
	nb_u32(&b, 8);
	bad_case(c, c->tmp, "length 8", &b, 0, FV_EFORMAT,
		 "less than the 12-byte minimum");
	nb_start(&b, 0);
	nb_u32(&b, 6);
	nb_u32(&b, 102);
	nb_bytes(&b, d, 64);
	bad_case(c, c->tmp, "length 102", &b, 0, FV_EFORMAT,
		 "not a multiple of 4");
	nb_start(&b, 0);
	nb_u32(&b, 6);
	nb_u32(&b, 32u << 20);
	nb_bytes(&b, d, 64);
	bad_case(c, c->tmp, "length 32 MiB", &b, 0, FV_EFORMAT,
		 "more than the 16 MiB");
	/* longer than the rest of the file */
	nb_start(&b, 0);
	nb_epb(&b, 0, 1, d, 40, 40);
	nb_epb(&b, 0, 2, d, 40, 40);
	off = b.len;
	nb_u32(&b, 6);
	nb_u32(&b, 1000);
	nb_bytes(&b, d, 42);
	snprintf(text, sizeof(text),
		 "Enhanced Packet Block at offset %zu claims 1000 bytes, only "
		 "50 remain",
		 off);
	bad_case(c, c->tmp, "cut short", &b, 2, FV_ETRUNC, text);
	/* file cut inside a block header */
	nb_start(&b, 0);
	nb_epb(&b, 0, 1, d, 40, 40);
	nb_u32(&b, 6);
	nb_bytes(&b, d, 2);
	bad_case(c, c->tmp, "cut in a header", &b, 1, FV_ETRUNC,
		 "ends 6 bytes into the block header");
	/* unknown interface; packet before any IDB */
	nb_start(&b, 1);
	nb_epb(&b, 5, 1, d, 40, 40);
	bad_case(c, c->tmp, "interface 5 of 1", &b, 0, FV_EFORMAT,
		 "names interface 5, but its section has declared 1");
	memset(&b, 0, sizeof(b));
	nb_shb(&b, 0);
	nb_epb(&b, 0, 1, d, 40, 40);
	bad_case(c, c->tmp, "no interface", &b, 0, FV_EFORMAT,
		 "names interface 0, but its section has declared 0");
	/* trailing length differs */
	nb_start(&b, 0);
	nb_epb(&b, 0, 1, d, 40, 40);
	b.p[b.len - 4] ^= 4;
	bad_case(c, c->tmp, "trailing length", &b, 0, FV_EFORMAT,
		 "trailing length 76 differs from its leading length 72");
	/* byte-order magic, version, start */
	memset(&b, 0, sizeof(b));
	nb_shb(&b, 0);
	b.p[8] = 0x11;
	bad_case(c, c->tmp, "byte-order magic", &b, -1, FV_EFORMAT,
		 "byte-order magic 113c2b1a");
	memset(&b, 0, sizeof(b));
	nb_shb(&b, 1);
	b.p[13] = 2;
	bad_case(c, c->tmp, "version 2.0", &b, -1, FV_EFORMAT, "version 2.0");
	memset(&b, 0, sizeof(b));
	nb_u32(&b, 0x0A0D0D0A);
	bad_case(c, c->tmp, "4 bytes", &b, -1, FV_ETRUNC,
		 "ends 4 bytes into the block header at offset 0");
	/* IDB options: overrun, unsupported resolution */
	memset(&b, 0, sizeof(b));
	nb_shb(&b, 0);
	nb_begin(&b, 1);
	nb_u16(&b, 1);
	nb_u16(&b, 0);
	nb_u32(&b, 0);
	nb_u16(&b, 2);
	nb_u16(&b, 200);
	nb_bytes(&b, "eth0", 4);
	nb_end(&b);
	bad_case(c, c->tmp, "option overrun", &b, -1, FV_EFORMAT,
		 "option 2 of the Interface Description Block at offset 52 "
		 "claims 200 bytes, only 4 remain");
	memset(&b, 0, sizeof(b));
	nb_shb(&b, 0);
	nb_idb(&b, 1, 0, NULL, 20, 0);
	bad_case(c, c->tmp, "if_tsresol 10^-20", &b, -1, FV_EFORMAT,
		 "if_tsresol 0x14");
	/* negative time through if_tsoffset, after a good packet */
	memset(&b, 0, sizeof(b));
	nb_shb(&b, 0);
	nb_idb(&b, 1, 0, NULL, -1, -2000000000LL);
	nb_epb(&b, 0, 2000000000000000ULL, d, 40, 40);
	nb_epb(&b, 0, 1000000000000000ULL, d, 40, 40);
	bad_case(c, c->tmp, "negative time", &b, 1, FV_EFORMAT,
		 "timestamp outside");
	/* a damaged first packet is reported by next, not open */
	nb_start(&b, 0);
	nb_u32(&b, 6);
	nb_u32(&b, 13);
	bad_case(c, c->tmp, "damaged first packet", &b, 0, FV_EFORMAT,
		 "not a multiple of 4");
}

/* ---- 4. pipes and standard input ---- */

struct sum {
	unsigned long n;
	uint64_t h; /* over ts, lengths, iface, link type and bytes */
	int ret;
	uint64_t offset; /* fv_capfile_offset() at the end */
};

static void sum_read_ra(const char *path, struct sum *s, char *errbuf,
			int readahead)
{
	struct fv_capfile *cf;
	struct fv_capfile_pkt p;

	memset(s, 0, sizeof(*s));
	s->ret = fv_capfile_open(&cf, path, errbuf);
	if (s->ret)
		return;
	if (readahead && fv_capfile_readahead(cf)) {
		s->ret = -999;
		fv_capfile_close(cf);
		return;
	}
	while ((s->ret = fv_capfile_next(cf, &p, errbuf)) == 1) {
		uint64_t v[5] = {p.ts_ns, p.caplen, p.origlen, p.iface,
				 (uint64_t)p.linktype};

		s->h ^= fnv1a((const uint8_t *)v, sizeof(v)) + s->n;
		s->h = s->h * 31 + fnv1a(p.data, p.caplen);
		s->n++;
	}
	s->offset = fv_capfile_offset(cf);
	fv_capfile_close(cf);
}

static void sum_read(const char *path, struct sum *s, char *errbuf)
{
	sum_read_ra(path, s, errbuf, 0);
}

/* Reads file through a pipe: as "-" (stdin) or as /proc/self/fd/N. */
static void sum_pipe(const char *file, int as_stdin, struct sum *s,
		     char *errbuf)
{
	int pfd[2], saved = -1;
	char path[64];
	pid_t pid;

	memset(s, 0, sizeof(*s));
	s->ret = -1;
	if (pipe(pfd))
		return;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		int fd = open(file, O_RDONLY);
		char buf[7919]; /* odd sizes: records span writes */
		ssize_t n;

		close(pfd[0]);
		while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0)
			if (write(pfd[1], buf, (size_t)n) != n)
				break;
		_exit(0);
	}
	close(pfd[1]);
	if (as_stdin) {
		saved = dup(0);
		dup2(pfd[0], 0);
		close(pfd[0]);
		sum_read("-", s, errbuf);
		dup2(saved, 0);
		close(saved);
	} else {
		spath(path, sizeof(path), "/proc/self/fd/%d", pfd[0]);
		sum_read(path, s, errbuf);
		close(pfd[0]);
	}
	waitpid(pid, NULL, 0);
}

static void test_pipes(struct ctx *c)
{
	static const char *files[] = {
		"mixed/ssh.pcap", /* 1.3 MB: many 1 MiB reads */
		"pcapng/pcapng-multi-interface.pcapng",
		"mixed/irc-dcc-send.pcapng", /* 1.4 MB pcapng */
		"timestamps/vntag.pcap",     /* nanosecond magic */
		"malformed/truncated-midrecord.pcap",
	};
	char path[PATH_MAX], errbuf[256];
	struct sum ref, s;

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		spath(path, sizeof(path), "%s/%s", c->corpus, files[i]);
		sum_read(path, &ref, errbuf);
		for (int as_stdin = 0; as_stdin < 2; as_stdin++) {
			sum_pipe(path, as_stdin, &s, errbuf);
			check(c,
			      s.n == ref.n && s.h == ref.h && s.ret == ref.ret,
			      "%s through %s: %lu frames (%d), file: %lu "
			      "(%d)",
			      files[i], as_stdin ? "stdin" : "a pipe", s.n,
			      s.ret, ref.n, ref.ret);
		}
		printf("pipe and stdin: %s: %lu frames, same as the file\n",
		       files[i], ref.n);
	}
}

/*
 * Read-ahead hands out the same packets, the same error (code and
 * sentence) after the same packet, and the same final offset, for every
 * corpus file; and stopping early (closing in the middle) is clean.
 */
static void test_readahead(struct ctx *c, const struct mrow *rows, int nrows)
{
	char path[PATH_MAX], eb1[256], eb2[256];
	unsigned long frames = 0;
	struct sum ref, s;
	int files = 0;

	for (int i = 0; i < nrows; i++) {
		spath(path, sizeof(path), "%s/%s", c->corpus, rows[i].path);
		eb1[0] = eb2[0] = 0;
		sum_read_ra(path, &ref, eb1, 0);
		sum_read_ra(path, &s, eb2, 1);
		check(c,
		      s.n == ref.n && s.h == ref.h && s.ret == ref.ret &&
			      s.offset == ref.offset &&
			      (ref.ret >= 0 || !strcmp(eb1, eb2)),
		      "%s with read-ahead: %lu frames, end %d '%s', offset "
		      "%llu; without: %lu, %d '%s', %llu",
		      rows[i].path, s.n, s.ret, eb2,
		      (unsigned long long)s.offset, ref.n, ref.ret, eb1,
		      (unsigned long long)ref.offset);
		files++;
		frames += ref.n;
	}
	/* Frames larger than a batch's room, between small ones. */
	{
		static const uint32_t big[] = {200000, 250000, 262144, 90000};
		uint32_t hdr[6] = {0xa1b2c3d4, 0x00040002, 0, 0, 262144, 1};
		uint8_t *frame = malloc(262144);
		FILE *f;

		spath(path, sizeof(path), "%s/bigframes.pcap", c->tmp);
		f = fopen(path, "wb");
		if (!f || !frame) {
			check(c, 0, "write %s", path);
			free(frame);
			if (f)
				fclose(f);
			return;
		}
		fwrite(hdr, sizeof(hdr), 1, f);
		for (uint32_t i = 0; i < 5000; i++) {
			uint32_t len =
				i % 700 == 3 ? big[i / 700 % 4] : 60 + i % 1400;
			uint32_t rh[4] = {1700000000 + i, i, len, len};

			frame_bytes(frame, len, i);
			fwrite(rh, sizeof(rh), 1, f);
			fwrite(frame, len, 1, f);
		}
		fclose(f);
		free(frame);
		sum_read_ra(path, &ref, eb1, 0);
		sum_read_ra(path, &s, eb2, 1);
		check(c,
		      ref.n == 5000 && s.n == ref.n && s.h == ref.h &&
			      s.ret == 0 && ref.ret == 0 &&
			      s.offset == ref.offset,
		      "big frames with read-ahead: %lu frames (%d), "
		      "without: %lu (%d '%s')",
		      s.n, s.ret, ref.n, ref.ret, eb1);
	}
	/* Stop after a few packets, with the thread still reading. */
	spath(path, sizeof(path), "%s/mixed/ssh.pcap", c->corpus);
	for (int k = 0; k < 3; k++) {
		struct fv_capfile *cf;
		struct fv_capfile_pkt p;
		int n = 0;

		if (fv_capfile_open(&cf, path, eb1) ||
		    fv_capfile_readahead(cf)) {
			check(c, 0, "open %s with read-ahead", path);
			break;
		}
		while (n < k * 700 && fv_capfile_next(cf, &p, eb1) == 1)
			n++;
		fv_capfile_close(cf);
	}
	printf("read-ahead: %d files, %lu frames, same as without\n", files,
	       frames);
}

/* ---- 5. writer round trips ---- */

struct rec {
	uint64_t ts;
	uint32_t caplen;
	uint32_t origlen;
	int linktype;
	uint64_t h;
	uint64_t h_after4; /* hash of the bytes after the first 4 */
};

struct recs {
	struct rec *r;
	size_t n;
	size_t cap;
};

static void recs_add(struct recs *v, const struct fv_capfile_pkt *p)
{
	if (v->n == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 1024;
		v->r = realloc(v->r, v->cap * sizeof(*v->r));
		if (!v->r)
			abort();
	}
	v->r[v->n++] = (struct rec){
		p->ts_ns,
		p->caplen,
		p->origlen,
		p->linktype,
		fnv1a(p->data, p->caplen),
		p->caplen >= 4 ? fnv1a(p->data + 4, p->caplen - 4) : 0};
}

struct ltout {
	int linktype;
	char path[PATH_MAX];
	FILE *f;
	struct fv_pcapw *w;
	struct recs recs;
};

struct rt {
	char all_path[PATH_MAX];
	FILE *all_f;
	struct fv_pcapw *all_w;
	struct recs all;
	int lt_order[MAX_LT]; /* link types in order of first use */
	int nlt_order;
	struct ltout lt[MAX_LT];
	int nlt;
	unsigned too_late; /* frames pcap cannot hold (time > 2^32 s) */
};

static struct ltout *rt_lt(struct ctx *c, struct rt *rt, int linktype)
{
	struct ltout *o;
	int err;

	for (int i = 0; i < rt->nlt; i++)
		if (rt->lt[i].linktype == linktype)
			return &rt->lt[i];
	if (rt->nlt == MAX_LT)
		return NULL;
	o = &rt->lt[rt->nlt++];
	o->linktype = linktype;
	spath(o->path, sizeof(o->path), "%s/lt%d.pcap", c->tmp, linktype);
	o->f = fopen(o->path, "wb");
	err = o->f ? fv_pcapw_open(&o->w, o->f, FV_PCAPW_PCAP, linktype, 0)
		   : -errno;
	check(c, err == 0, "pcapw_open %s: %d", o->path, err);
	return err ? NULL : o;
}

/* Writes every frame of every readable corpus file to the outputs. */
static void rt_write(struct ctx *c, struct rt *rt, const struct mrow *rows,
		     int nrows)
{
	char path[PATH_MAX], errbuf[256];
	int err;

	spath(rt->all_path, sizeof(rt->all_path), "%s/all.pcapng", c->tmp);
	rt->all_f = fopen(rt->all_path, "wb");
	err = fv_pcapw_open(&rt->all_w, rt->all_f, FV_PCAPW_PCAPNG, -1, 0);
	check(c, err == 0, "pcapw_open all.pcapng: %d", err);
	if (err)
		return;
	for (int i = 0; i < nrows; i++) {
		struct fv_capfile *cf;
		struct fv_capfile_pkt p;

		spath(path, sizeof(path), "%s/%s", c->corpus, rows[i].path);
		if (fv_capfile_open(&cf, path, errbuf))
			continue;
		while (fv_capfile_next(cf, &p, errbuf) == 1) {
			struct ltout *o = rt_lt(c, rt, p.linktype);
			int k;

			err = fv_pcapw_write(rt->all_w, p.linktype, p.ts_ns,
					     p.caplen, p.origlen, p.data);
			check(c, err == 0, "pcapng write: %d", err);
			recs_add(&rt->all, &p);
			for (k = 0; k < rt->nlt_order; k++)
				if (rt->lt_order[k] == p.linktype)
					break;
			if (k == rt->nlt_order && k < MAX_LT)
				rt->lt_order[rt->nlt_order++] = p.linktype;
			if (!o)
				continue;
			err = fv_pcapw_write(o->w, p.linktype, p.ts_ns,
					     p.caplen, p.origlen, p.data);
			if (p.ts_ns / FV_NSEC_PER_SEC > UINT32_MAX) {
				check(c, err == -EINVAL,
				      "pcap write of a time past 2106: %d",
				      err);
				rt->too_late++;
				continue;
			}
			check(c, err == 0, "pcap write: %d", err);
			recs_add(&o->recs, &p);
		}
		fv_capfile_close(cf);
	}
	err = fv_pcapw_close(rt->all_w);
	check(c, err == 0 && fclose(rt->all_f) == 0, "close all.pcapng: %d",
	      err);
	for (int i = 0; i < rt->nlt; i++) {
		err = fv_pcapw_close(rt->lt[i].w);
		check(c, err == 0 && fclose(rt->lt[i].f) == 0, "close %s: %d",
		      rt->lt[i].path, err);
	}
}

static int lt_index(const struct rt *rt, int linktype)
{
	for (int k = 0; k < rt->nlt_order; k++)
		if (rt->lt_order[k] == linktype)
			return k;
	return -1;
}

/* tshark's reading of one of our outputs against what we wrote. */
static void rt_cmp_tshark(struct ctx *c, const char *what, const struct recs *v,
			  const struct rt *rt, const char *tsh_out)
{
	struct treader tr = {.f = fopen(tsh_out, "r")};
	struct tframe fr = {0};
	size_t i = 0;

	while (tr.f && tr_next(&tr, &fr) == 1) {
		const struct rec *r = &v->r[i];

		if (i >= v->n) {
			check(c, 0,
			      "%s: tshark shows more frames than the "
			      "%zu written",
			      what, v->n);
			break;
		}
		uint32_t ph = 0;

		/* wiretap takes SunATM's 4-byte pseudo-header out of the
		 * frame (counted in section 1); compare what follows it. */
		if (r->linktype == 123 && r->caplen >= 4 &&
		    fr.caplen + 4 == r->caplen && fr.len + 4 == r->origlen) {
			ph = 4;
			c->diff_phdr++;
		}
		check(c,
		      fr.ts_ok && fr.ts_ns == r->ts &&
			      fr.len + ph == r->origlen &&
			      fr.caplen + ph == r->caplen &&
			      fr.nbytes + ph == r->caplen &&
			      (ph ? fr.nbytes == 0 ||
					       fnv1a(fr.bytes, fr.nbytes) ==
						       r->h_after4
				  : fnv1a(fr.bytes, fr.nbytes) == r->h),
		      "%s frame %zu: tshark ts %s len %u caplen %u; wrote "
		      "%llu %u %u",
		      what, i + 1, fr.ts_text, fr.len, fr.caplen,
		      (unsigned long long)r->ts, r->origlen, r->caplen);
		if (rt)
			check(c, (int)fr.iface == lt_index(rt, r->linktype),
			      "%s frame %zu: tshark interface %u for link "
			      "type %d, want %d",
			      what, i + 1, fr.iface, r->linktype,
			      lt_index(rt, r->linktype));
		i++;
	}
	check(c, i == v->n && tr.gaps == 0,
	      "%s: tshark read %zu frames of %zu (%u gaps)", what, i, v->n,
	      tr.gaps);
	if (tr.f)
		fclose(tr.f);
	free(tr.line);
	free(fr.bytes);
}

/* libpcap's reading of one of our pcap outputs. */
static void rt_cmp_libpcap(struct ctx *c, const struct ltout *o)
{
	char pbuf[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *h;
	const u_char *d;
	pcap_t *p;
	size_t i = 0;
	int ret;

	p = pcap_open_offline_with_tstamp_precision(
		o->path, PCAP_TSTAMP_PRECISION_NANO, pbuf);
	check(c, p != NULL, "libpcap cannot open %s: %s", o->path, pbuf);
	if (!p)
		return;
	check(c,
	      pcap_get_tstamp_precision(p) == PCAP_TSTAMP_PRECISION_NANO &&
		      pcap_snapshot(p) == 262144 &&
		      pcap_major_version(p) == 2 && pcap_minor_version(p) == 4,
	      "%s: header (precision, snaplen, version)", o->path);
	while ((ret = pcap_next_ex(p, &h, &d)) == 1 && i < o->recs.n) {
		const struct rec *r = &o->recs.r[i++];
		/* libpcap keeps the file's unsigned 32-bit fields in
		 * signed ones (bpf_int32): undo that. */
		uint64_t ts =
			(uint64_t)(uint32_t)h->ts.tv_sec * FV_NSEC_PER_SEC +
			(uint32_t)h->ts.tv_usec;

		check(c,
		      ts == r->ts && h->caplen == r->caplen &&
			      h->len == r->origlen &&
			      fnv1a(d, h->caplen) == r->h,
		      "%s record %zu: libpcap reads %llu %u %u", o->path, i,
		      (unsigned long long)ts, h->caplen, h->len);
	}
	check(c, ret == PCAP_ERROR_BREAK && i == o->recs.n,
	      "%s: libpcap read %zu records of %zu (%d)", o->path, i, o->recs.n,
	      ret);
	pcap_close(p);
}

/* Our own reading of all.pcapng. */
static void rt_cmp_ours(struct ctx *c, const struct rt *rt)
{
	struct fv_capfile *cf;
	struct fv_capfile_pkt p;
	char errbuf[256];
	size_t i = 0;
	int ret;

	ret = fv_capfile_open(&cf, rt->all_path, errbuf);
	check(c, ret == 0, "reopen all.pcapng: %s", errbuf);
	if (ret)
		return;
	while ((ret = fv_capfile_next(cf, &p, errbuf)) == 1 && i < rt->all.n) {
		const struct rec *r = &rt->all.r[i++];

		check(c,
		      p.ts_ns == r->ts && p.caplen == r->caplen &&
			      p.origlen == r->origlen &&
			      p.linktype == r->linktype &&
			      (int)p.iface == lt_index(rt, r->linktype) &&
			      fnv1a(p.data, p.caplen) == r->h,
		      "all.pcapng frame %zu differs when we read it back", i);
	}
	check(c, ret == 0 && i == rt->all.n, "all.pcapng: %zu of %zu (%d)", i,
	      rt->all.n, ret);
	check(c, fv_capfile_niface(cf) == (unsigned)rt->nlt_order,
	      "all.pcapng: %u interfaces, %d link types", fv_capfile_niface(cf),
	      rt->nlt_order);
	fv_capfile_close(cf);
}

/* capinfos: packet count, interfaces and their link types, in order. */
static void rt_cmp_capinfos(struct ctx *c, const char *what, const char *out,
			    size_t npkts, const int *lts, int nlts)
{
	FILE *f = fopen(out, "r");
	char *line = NULL;
	size_t lcap = 0;
	long pk = -1, nif = -1;
	int seen = 0, ok_lt = 1, appl = 0;

	while (f && getline(&line, &lcap, f) >= 0) {
		const char *p;

		if (sscanf(line, "Number of packets: %ld", &pk) == 1)
			continue;
		if (sscanf(line, "Number of interfaces in file: %ld", &nif) ==
		    1)
			continue;
		if (strstr(line, "Capture application: flowvault"))
			appl = 1;
		/* "Encapsulation = Ethernet (1 - ether)": wiretap's own
		 * number, then the short name MANIFEST also uses. */
		p = strstr(line, "Encapsulation = ");
		if (p && (p = strstr(p, " - ")) != NULL) {
			size_t n = strcspn(p + 3, ")");
			const char *want = seen < nlts && lts[seen] >= 0 &&
							   lts[seen] < 1024
						   ? c->ltname[lts[seen]]
						   : "";

			/* For a pcapng interface wiretap names SunATM by
			 * the encapsulation it maps it to. */
			if (seen < nlts && lts[seen] == 123)
				want = "atm-pdus";

			if (!want[0] || strlen(want) != n ||
			    strncmp(p + 3, want, n)) {
				ok_lt = 0;
				printf("  capinfos interface %d: %.*s, want "
				       "%s (LINKTYPE %d)\n",
				       seen, (int)n, p + 3, want,
				       seen < nlts ? lts[seen] : -1);
			}
			seen++;
		}
	}
	check(c,
	      f && pk == (long)npkts && nif == nlts && seen == nlts && ok_lt &&
		      appl,
	      "%s: capinfos says %ld packets, %ld interfaces (%d link types "
	      "%s), application %s; want %zu, %d",
	      what, pk, nif, seen, ok_lt ? "in order" : "differ",
	      appl ? "flowvault" : "missing", npkts, nlts);
	printf("%s: capinfos reads %ld packets on %ld interfaces\n", what, pk,
	       nif);
	if (f)
		fclose(f);
	free(line);
}

/* A small pcapng mixing Ethernet and raw IPv4 frames. */
static void rt_mixed(struct ctx *c, struct recs *v, char *path)
{
	static const char *src[] = {"linktypes/LINKTYPE_IPV4.pcap",
				    "icmp/icmp-destunreach-udp.pcap",
				    "linktypes/LINKTYPE_RAW_ipv4.pcap"};
	char in[PATH_MAX], errbuf[256];
	struct fv_pcapw *w;
	FILE *f;
	int err;

	spath(path, PATH_MAX, "%s/mixed.pcapng", c->tmp);
	f = fopen(path, "wb");
	if (!f || fv_pcapw_open(&w, f, FV_PCAPW_PCAPNG, 1, 65535)) {
		check(c, 0, "cannot start %s", path);
		if (f)
			fclose(f);
		return;
	}
	for (int k = 0; k < 2; k++) {
		for (size_t i = 0; i < sizeof(src) / sizeof(src[0]); i++) {
			struct fv_capfile *cf;
			struct fv_capfile_pkt p;

			spath(in, sizeof(in), "%s/%s", c->corpus, src[i]);
			if (fv_capfile_open(&cf, in, errbuf))
				continue;
			while (fv_capfile_next(cf, &p, errbuf) == 1) {
				/* raw IP (101) holding IPv4 is LINKTYPE
				 * 228 for this file's purpose */
				int lt = p.linktype == 101 ? 228 : p.linktype;

				err = fv_pcapw_write(w, lt, p.ts_ns, p.caplen,
						     p.origlen, p.data);
				check(c, err == 0, "mixed write %d", err);
				p.linktype = lt;
				recs_add(v, &p);
			}
			fv_capfile_close(cf);
		}
	}
	err = fv_pcapw_close(w);
	check(c, err == 0 && fclose(f) == 0, "close mixed.pcapng %d", err);
}

/* Errors the writer must report. */
static void test_writer_errors(struct ctx *c)
{
	static const uint8_t d[8];
	struct fv_pcapw *w;
	FILE *f;
	int err;

	f = fopen("/dev/null", "wb");
	if (!f)
		return;
	err = fv_pcapw_open(&w, f, FV_PCAPW_PCAP, 1, 0);
	check(c, err == 0, "open pcap writer %d", err);
	if (!err) {
		check(c, fv_pcapw_write(w, 101, 0, 8, 8, d) == -EINVAL,
		      "pcap: another link type must be -EINVAL");
		check(c,
		      fv_pcapw_write(w, 1, 4294967296ULL * FV_NSEC_PER_SEC, 8,
				     8, d) == -EINVAL,
		      "pcap: a time at 2^32 s must be -EINVAL");
		check(c,
		      fv_pcapw_write(w, 1, 4294967295999999999ULL, 8, 8, d) ==
			      0,
		      "pcap: the last nanosecond of 2106 fits");
		check(c, fv_pcapw_close(w) == 0, "close pcap writer");
	}
	check(c, fv_pcapw_open(&w, f, FV_PCAPW_PCAP, -1, 0) == -EINVAL,
	      "pcap writer without a link type must be -EINVAL");
	fclose(f);

	/* A full disk shows at the latest in close. */
	f = fopen("/dev/full", "wb");
	if (f) {
		uint8_t big[2000] = {0};
		int e2 = 0;

		err = fv_pcapw_open(&w, f, FV_PCAPW_PCAPNG, 1, 0);
		for (int i = 0; !err && i < 400 && !e2; i++)
			e2 = fv_pcapw_write(w, 1, 1, sizeof(big), sizeof(big),
					    big);
		if (!err) {
			int e3 = fv_pcapw_close(w);

			check(c, e2 == -ENOSPC || e3 == -ENOSPC,
			      "writing to /dev/full: write %d close %d", e2,
			      e3);
		}
		fclose(f);
	}
}

/* ---- main ---- */

static int find_corpus(struct ctx *c)
{
	const char *env = getenv("FV_CORPUS");
	char exe[PATH_MAX], *p;
	ssize_t n;

	if (env && *env) {
		spath(c->corpus, sizeof(c->corpus), "%s", env);
		return access(c->corpus, R_OK);
	}
	spath(c->corpus, sizeof(c->corpus), "../shared/corpus");
	if (access("../shared/corpus/MANIFEST.tsv", R_OK) == 0)
		return 0;
	/* From build/tests/test_capfile up to the repository root. */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return -1;
	exe[n] = '\0';
	for (int i = 0; i < 3 && (p = strrchr(exe, '/')); i++)
		*p = '\0';
	spath(c->corpus, sizeof(c->corpus), "%s/../shared/corpus", exe);
	return access(c->corpus, R_OK);
}

int main(void)
{
	static struct mrow rows[MAX_ROWS];
	static struct ctx c;
	static struct rt rt;
	struct recs mixed = {0};
	char synth[PATH_MAX], mixed_path[PATH_MAX], out[PATH_MAX];
	struct job *jobs;
	size_t njobs = 0, first_rt;
	int nrows, tshark_files = 0, nw;
	struct want w[16];
	struct nb b;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (find_corpus(&c)) {
		printf("SKIP: no corpus (set FV_CORPUS or put it at "
		       "../shared/corpus)\n");
		return 77;
	}
	nrows = read_manifest(&c, rows, MAX_ROWS);
	if (nrows <= 0) {
		printf("SKIP: cannot read %s/MANIFEST.tsv\n", c.corpus);
		return 77;
	}
	snprintf(c.tmp, sizeof(c.tmp), "/tmp/fv-test-capfile-XXXXXX");
	if (!mkdtemp(c.tmp)) {
		printf("FAIL: mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	c.seeds = getenv("FV_WRITE_SEEDS");
	find_in_path("tshark", c.tshark);
	find_in_path("capinfos", c.capinfos);
	printf("corpus %s: %d files; tshark %s\n", c.corpus, nrows,
	       c.tshark[0] ? c.tshark : "missing");

	/* Files our checks need before tshark runs. */
	build_synthetic(&b, w, &nw);
	spath(synth, sizeof(synth), "%s/synthetic.pcapng", c.tmp);
	check(&c, write_file(synth, b.p, b.len) == 0, "write %s", synth);
	free(b.p);
	rt_write(&c, &rt, rows, nrows);
	rt_mixed(&c, &mixed, mixed_path);

	/* Every tshark and capinfos run, in parallel. */
	jobs = calloc((size_t)nrows + MAX_LT + 8, sizeof(*jobs));
	if (!jobs)
		return 1;
	for (int i = 0; c.tshark[0] && i < nrows; i++) {
		char in[PATH_MAX];

		if (strncmp(rows[i].tshark_read, "ok", 2) &&
		    !strstr(rows[i].tshark_read, " frames, then"))
			continue;
		spath(in, sizeof(in), "%s/%s", c.corpus, rows[i].path);
		spath(out, sizeof(out), "%s/tshark-%d.txt", c.tmp, i);
		job_tshark(&c, &jobs[njobs], in, out);
		jobs[njobs++].may_fail = strncmp(rows[i].tshark_read, "ok", 2);
		tshark_files++;
	}
	first_rt = njobs;
	if (c.tshark[0]) {
		spath(out, sizeof(out), "%s/tshark-synthetic.txt", c.tmp);
		job_tshark(&c, &jobs[njobs++], synth, out);
		spath(out, sizeof(out), "%s/tshark-all.txt", c.tmp);
		job_tshark(&c, &jobs[njobs++], rt.all_path, out);
		spath(out, sizeof(out), "%s/tshark-mixed.txt", c.tmp);
		job_tshark(&c, &jobs[njobs++], mixed_path, out);
		for (int i = 0; i < rt.nlt; i++) {
			spath(out, sizeof(out), "%s/tshark-lt%d.txt", c.tmp, i);
			job_tshark(&c, &jobs[njobs++], rt.lt[i].path, out);
		}
	}
	if (c.capinfos[0]) {
		spath(out, sizeof(out), "%s/capinfos-all.txt", c.tmp);
		job_set(&jobs[njobs], out, c.capinfos, "-M", rt.all_path, NULL);
		njobs++;
		spath(out, sizeof(out), "%s/capinfos-mixed.txt", c.tmp);
		job_set(&jobs[njobs], out, c.capinfos, "-M", mixed_path, NULL);
		njobs++;
	}
	run_jobs(jobs, njobs);
	for (size_t i = 0; i < njobs; i++)
		check(&c,
		      jobs[i].may_fail || (WIFEXITED(jobs[i].status) &&
					   WEXITSTATUS(jobs[i].status) == 0),
		      "%s (output %s) exited with status %d", jobs[i].argv[0],
		      jobs[i].out, jobs[i].status);

	/* 1. corpus against tshark */
	for (int i = 0, j = 0; c.tshark[0] && i < nrows; i++) {
		if (strncmp(rows[i].tshark_read, "ok", 2) &&
		    !strstr(rows[i].tshark_read, " frames, then"))
			continue;
		spath(out, sizeof(out), "%s/tshark-%d.txt", c.tmp, i);
		cmp_with_tshark(&c, &rows[i], out);
		j++;
		(void)j;
	}
	printf("corpus: %d files compared with tshark frame by frame; "
	       "expected differences: %u negative tshark times, %u tshark "
	       "times wrapped at 2^32 ns, %u SunATM pseudo-headers, %u "
	       "frames cut to the snaplen by libpcap, %u non-packet "
	       "records\n",
	       tshark_files, c.diff_negtime, c.diff_usecwrap, c.diff_phdr,
	       c.diff_snapcut, c.diff_nonpkt);

	/* 2., 3., 4. */
	test_malformed(&c, rows, nrows);
	spath(out, sizeof(out), "%s/tshark-synthetic.txt", c.tmp);
	test_synthetic(&c, synth, c.tshark[0] ? out : NULL);
	test_damaged(&c);
	test_pipes(&c);
	test_readahead(&c, rows, nrows);
	test_writer_errors(&c);

	/* 5. round trips */
	rt_cmp_ours(&c, &rt);
	for (int i = 0; i < rt.nlt; i++)
		rt_cmp_libpcap(&c, &rt.lt[i]);
	check(&c, rt.too_late == 1,
	      "%u frames past 2106 refused by the pcap writer, want 1 "
	      "(timestamps/time_2106_overflow.pcapng)",
	      rt.too_late);
	if (c.tshark[0]) {
		spath(out, sizeof(out), "%s/tshark-all.txt", c.tmp);
		rt_cmp_tshark(&c, "all.pcapng", &rt.all, &rt, out);
		spath(out, sizeof(out), "%s/tshark-mixed.txt", c.tmp);
		rt_cmp_tshark(&c, "mixed.pcapng", &mixed, NULL, out);
		for (int i = 0; i < rt.nlt; i++) {
			char what[64];

			spath(out, sizeof(out), "%s/tshark-lt%d.txt", c.tmp, i);
			snprintf(what, sizeof(what), "lt%d.pcap",
				 rt.lt[i].linktype);
			rt_cmp_tshark(&c, what, &rt.lt[i].recs, NULL, out);
		}
	}
	if (c.capinfos[0]) {
		static const int mixed_lts[] = {1, 228};

		spath(out, sizeof(out), "%s/capinfos-all.txt", c.tmp);
		rt_cmp_capinfos(&c, "all.pcapng", out, rt.all.n, rt.lt_order,
				rt.nlt_order);
		spath(out, sizeof(out), "%s/capinfos-mixed.txt", c.tmp);
		rt_cmp_capinfos(&c, "mixed.pcapng", out, mixed.n, mixed_lts, 2);
	}
	printf("round trip: %zu frames in one pcapng with %d link types, "
	       "%d pcap files; %u frame past 2106 refused by pcap\n",
	       rt.all.n, rt.nlt_order, rt.nlt, rt.too_late);
	(void)first_rt;

	/* Clean up the temporary directory. */
	{
		char cmd[PATH_MAX + 16];

		spath(cmd, sizeof(cmd), "rm -rf '%s'", c.tmp);
		if (!c.fails && system(cmd) != 0)
			printf("note: could not remove %s\n", c.tmp);
		else if (c.fails)
			printf("outputs kept in %s\n", c.tmp);
	}
	for (int i = 0; i < rt.nlt; i++)
		free(rt.lt[i].recs.r);
	free(rt.all.r);
	free(mixed.r);
	free(jobs);
	printf("%lu checks, %u failed\n", c.checks, c.fails);
	if (c.fails)
		return 1;
	if (!c.tshark[0]) {
		printf("SKIP: tshark is not installed; the checks against it "
		       "did not run\n");
		return 77;
	}
	return 0;
}
