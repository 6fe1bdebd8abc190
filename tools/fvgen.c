/*
 * fvgen.c - a deterministic generator of synthetic but realistic traffic.
 *
 * Writes a capture (pcap with nanosecond timestamps by default, pcap with
 * microseconds, or pcapng) of many interleaved flows: TCP over IPv4 and
 * IPv6 carrying TLS 1.3, HTTP/1.1, SSH, SMTP, MySQL and PostgreSQL (both
 * upgraded to TLS) sessions, DNS, NTP and RTP over UDP, ICMP and ICMPv6
 * echo, 802.1Q and QinQ tags, fragmented IPv4 datagrams and a few ARP
 * frames. docs/generator.md describes the mix and the options; --summary
 * writes the generator's own ground truth, one row per flow.
 *
 * Invariants:
 *  - the output is a function of the options only: one PRNG (xoshiro256**
 *    seeded by splitmix64) per flow and one for the generator, integer
 *    arithmetic only (no libm, no floating point), no clock, no locale, no
 *    rand(); the same seed and options give the same bytes on any host
 *    (file headers are written little-endian explicitly);
 *  - timestamps strictly increase over the file;
 *  - a (protocol, address, port) pair belongs to one flow only, VLAN tags
 *    aside, so tshark's tcp.stream / udp.stream map 1:1 to flows;
 *  - IPv4 header, TCP, UDP, ICMP and ICMPv6 checksums are correct, TCP
 *    sequence and acknowledgment numbers follow the byte stream, and the
 *    application bytes parse as the protocol of the server port;
 *  - payload bytes are a keyed function of (flow, direction, stream
 *    offset), so a retransmitted segment repeats the original's bytes.
 *
 * Frames are built in place in one large output buffer that leaves in
 * write() calls of several MiB: no per-packet syscall, no per-packet
 * allocation. A regular output file is written with O_DIRECT (the page
 * cache, not the generator, is what limits buffered writes), the last
 * partial block without it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define NS_PER_US 1000ULL
#define NS_PER_MS 1000000ULL
#define NS_PER_S  1000000000ULL

#define DEFAULT_START	    1735689600ULL /* 2025-01-01T00:00:00Z */
#define DEFAULT_FLOWS	    1000
#define DEFAULT_CONCURRENCY 200
#define MAX_CONCURRENCY	    1000000

#define OUT_BUF	  (8u << 20) /* bytes buffered before one write() */
#define OUT_ALIGN 4096u	     /* O_DIRECT alignment of memory and sizes */
#define FRAME_MAX 1600	     /* >= 14 + 2 tags + 1500 */
#define REC_MAX	  32	     /* record header + trailer, pcap or pcapng */
#define SNAPLEN	  262144

#define QCAP	16   /* packets a flow can have planned ahead */
#define HDR_MAX 1024 /* structured bytes at the head of one message */
#define NO_REC	0xffffffffu

/* TCP flags (RFC 9293 section 3.1) */
#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_PSH 0x08
#define TH_ACK 0x10

/* ---- pseudo-random numbers --------------------------------------------- */

/* xoshiro256** (Blackman and Vigna), seeded through splitmix64. */
struct rng {
	uint64_t s[4];
};

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t splitmix64(uint64_t *x)
{
	*x += 0x9e3779b97f4a7c15ULL;
	return mix64(*x);
}

static void rng_seed(struct rng *r, uint64_t seed)
{
	int i;

	for (i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl64(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t res = rotl64(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl64(s[3], 45);
	return res;
}

/* Uniform in [0, n), n < 2^32 (multiply-shift, bias below 2^-32). */
static uint32_t rng_below(struct rng *r, uint32_t n)
{
	return (uint32_t)(((rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* Uniform in [lo, hi]. */
static uint64_t rng_range(struct rng *r, uint64_t lo, uint64_t hi)
{
	if (hi <= lo)
		return lo;
	return lo + rng_next(r) % (hi - lo + 1);
}

/* True with probability per_mille / 1000. */
static int rng_pm(struct rng *r, uint32_t per_mille)
{
	return rng_below(r, 1000) < per_mille;
}

/*
 * About log-uniform in [lo, hi] (hi < 2^62): every power-of-two octave
 * the range touches is equally likely, uniform inside it. Sizes and
 * times spread over orders of magnitude this way, with integers only.
 */
static uint64_t rng_logu(struct rng *r, uint64_t lo, uint64_t hi)
{
	int blo, bhi, b;
	uint64_t a, z;

	if (lo < 1)
		lo = 1;
	if (hi <= lo)
		return lo;
	blo = 63 - __builtin_clzll(lo);
	bhi = 63 - __builtin_clzll(hi);
	b = blo + (int)rng_below(r, (uint32_t)(bhi - blo + 1));
	a = 1ULL << b;
	z = (a << 1) - 1;
	if (a < lo)
		a = lo;
	if (z > hi)
		z = hi;
	return rng_range(r, a, z);
}

/* Index into weights[n], chosen with probability weight / sum. */
static int rng_pick(struct rng *r, const uint16_t *w, int n)
{
	uint32_t sum = 0, x;
	int i;

	for (i = 0; i < n; i++)
		sum += w[i];
	x = rng_below(r, sum);
	for (i = 0; i < n - 1; i++) {
		if (x < w[i])
			return i;
		x -= w[i];
	}
	return n - 1;
}

/* ---- byte order --------------------------------------------------------- */

static inline void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

/* ---- Internet checksum (RFC 1071) --------------------------------------- */

/*
 * Adds len bytes to a ones'-complement sum kept in native 16-bit words;
 * the folded result stored natively (memcpy) is the checksum in network
 * order on either byte order (RFC 1071 section 2(B)). Offsets must be
 * even except for the last call.
 */
static uint64_t csum_add(uint64_t sum, const uint8_t *p, size_t len)
{
	uint32_t w;
	uint16_t h;

	while (len >= 4) {
		memcpy(&w, p, 4);
		sum += w;
		p += 4;
		len -= 4;
	}
	if (len >= 2) {
		memcpy(&h, p, 2);
		sum += h;
		p += 2;
		len -= 2;
	}
	if (len) {
		uint8_t last[2] = {p[0], 0};

		memcpy(&h, last, 2);
		sum += h;
	}
	return sum;
}

static void csum_store(uint8_t *where, uint64_t sum, int udp)
{
	uint16_t c;

	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	c = (uint16_t)~sum;
	if (udp && c == 0)
		c = 0xffff; /* RFC 768: 0 means "no checksum" */
	memcpy(where, &c, 2);
}

/* ---- output: pcap / pcapng ---------------------------------------------- */

enum fmt { FMT_PCAP_NS, FMT_PCAP_US, FMT_PCAPNG_NS, FMT_PCAPNG_US };

struct out {
	int fd;
	int direct;   /* fd has O_DIRECT */
	uint8_t *buf; /* OUT_ALIGN-aligned */
	size_t len;
	int fmt;
	int err;	     /* first write error, -errno */
	uint64_t file_bytes; /* written + buffered */
	uint64_t frames;
	uint64_t frame_bytes;
};

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Leaves buffered O_DIRECT mode for good (tail, or a refusing fs). */
static void out_undirect(struct out *o)
{
	int fl = fcntl(o->fd, F_GETFL);

	if (fl >= 0)
		fcntl(o->fd, F_SETFL, fl & ~O_DIRECT);
	o->direct = 0;
}

/*
 * Writes the buffer out; with O_DIRECT only whole blocks unless final,
 * the rest moving to the buffer's head. Keeps the first error.
 */
static int out_flush(struct out *o, int final)
{
	size_t n = o->len;
	int err;

	if (o->err) {
		o->len = 0;
		return o->err;
	}
	if (o->direct) {
		n -= n % OUT_ALIGN;
		err = n ? write_all(o->fd, o->buf, n) : 0;
		if (err == -EINVAL) { /* O_DIRECT refused after all */
			out_undirect(o);
			n = o->len;
			err = write_all(o->fd, o->buf, n);
		}
		if (!err && final && o->len > n) {
			out_undirect(o);
			err = write_all(o->fd, o->buf + n, o->len - n);
			n = o->len;
		}
	} else {
		err = write_all(o->fd, o->buf, n);
	}
	if (err) {
		o->err = err;
		o->len = 0;
		return err;
	}
	memmove(o->buf, o->buf + n, o->len - n);
	o->len -= n;
	return 0;
}

static void out_raw(struct out *o, const uint8_t *p, size_t n)
{
	memcpy(o->buf + o->len, p, n);
	o->len += n;
	o->file_bytes += n;
}

/* Writes the file header (pcap) or section + interface blocks (pcapng). */
static void out_header(struct out *o)
{
	uint8_t h[64];

	memset(h, 0, sizeof(h));
	if (o->fmt == FMT_PCAP_NS || o->fmt == FMT_PCAP_US) {
		put_le32(h, o->fmt == FMT_PCAP_NS ? 0xa1b23c4d : 0xa1b2c3d4);
		put_le16(h + 4, 2);
		put_le16(h + 6, 4);
		put_le32(h + 16, SNAPLEN);
		put_le32(h + 20, 1); /* LINKTYPE_ETHERNET */
		out_raw(o, h, 24);
		return;
	}
	/* Section Header Block with shb_userappl "fvgen" */
	put_le32(h, 0x0a0d0d0a);
	put_le32(h + 4, 44);
	put_le32(h + 8, 0x1a2b3c4d);
	put_le16(h + 12, 1);
	put_le16(h + 14, 0);
	put_le64(h + 16, ~0ULL);
	put_le16(h + 24, 4);
	put_le16(h + 26, 5);
	memcpy(h + 28, "fvgen", 5);
	put_le32(h + 40, 44);
	out_raw(o, h, 44);
	/* Interface Description Block with if_tsresol */
	memset(h, 0, sizeof(h));
	put_le32(h, 1);
	put_le32(h + 4, 32);
	put_le16(h + 8, 1);
	put_le32(h + 12, SNAPLEN);
	put_le16(h + 16, 9);
	put_le16(h + 18, 1);
	h[20] = o->fmt == FMT_PCAPNG_NS ? 9 : 6;
	put_le32(h + 28, 32);
	out_raw(o, h, 32);
}

static size_t out_rec_len(const struct out *o)
{
	return o->fmt == FMT_PCAPNG_NS || o->fmt == FMT_PCAPNG_US ? 28 : 16;
}

/* Room for one frame in the buffer; returns where its bytes go. */
static uint8_t *out_frame(struct out *o)
{
	if (OUT_BUF - o->len < REC_MAX + FRAME_MAX)
		out_flush(o, 0);
	return o->buf + o->len + out_rec_len(o);
}

/* Adds the record header (and trailer) of the frame out_frame() gave. */
static void out_commit(struct out *o, uint64_t ts, uint32_t flen)
{
	uint8_t *p = o->buf + o->len;
	uint64_t t = ts;
	size_t total;

	if (o->fmt == FMT_PCAP_US || o->fmt == FMT_PCAPNG_US)
		t = ts / NS_PER_US;
	if (o->fmt == FMT_PCAP_NS || o->fmt == FMT_PCAP_US) {
		uint64_t unit = o->fmt == FMT_PCAP_NS ? NS_PER_S : 1000000;

		put_le32(p, (uint32_t)(t / unit));
		put_le32(p + 4, (uint32_t)(t % unit));
		put_le32(p + 8, flen);
		put_le32(p + 12, flen);
		total = 16 + flen;
	} else {
		uint32_t pad = (4 - (flen & 3)) & 3;

		total = 28 + flen + pad + 4;
		put_le32(p, 6);
		put_le32(p + 4, (uint32_t)total);
		put_le32(p + 8, 0);
		put_le32(p + 12, (uint32_t)(t >> 32));
		put_le32(p + 16, (uint32_t)t);
		put_le32(p + 20, flen);
		put_le32(p + 24, flen);
		memset(p + 28 + flen, 0, pad);
		put_le32(p + 28 + flen + pad, (uint32_t)total);
	}
	o->len += total;
	o->file_bytes += total;
	o->frames++;
	o->frame_bytes += flen;
}

/* ---- the flow model ----------------------------------------------------- */

enum kind {
	K_TCP,	    /* a TCP session of one application */
	K_TCP_SYN,  /* unanswered SYNs, or a SYN refused with RST */
	K_DNS,	    /* DNS query/response transactions */
	K_DNS_FRAG, /* DNS with a large response in IPv4 fragments */
	K_NTP,	    /* NTP client/server exchange(s) */
	K_RTP,	    /* a bidirectional RTP audio stream */
	K_ICMP,	    /* ICMP echo (IPv4) */
	K_ICMP6,    /* ICMPv6 echo */
	K_ARP,	    /* an ARP request and reply: frames of no flow */
	K_COUNT
};

/* Flow kind weights, per mille of flows started (docs/generator.md). */
static const uint16_t kind_weight[K_COUNT] = {
	[K_TCP] = 600,	   [K_TCP_SYN] = 20, [K_DNS] = 215,
	[K_DNS_FRAG] = 15, [K_NTP] = 30,     [K_RTP] = 8,
	[K_ICMP] = 72,	   [K_ICMP6] = 35,   [K_ARP] = 5,
};

enum app { A_TLS, A_HTTP, A_SSH, A_SMTP, A_MYSQL, A_PGSQL, A_COUNT };

struct service {
	uint8_t app;
	uint16_t port;
	uint16_t weight; /* per mille of TCP sessions */
};

static const struct service services[] = {
	{A_TLS, 443, 520},   {A_HTTP, 80, 150},	  {A_HTTP, 8080, 40},
	{A_TLS, 993, 30},    {A_SSH, 22, 60},	  {A_SMTP, 25, 60},
	{A_MYSQL, 3306, 80}, {A_PGSQL, 5432, 60},
};
#define N_SERVICES (int)(sizeof(services) / sizeof(services[0]))

/* Notes on a flow (a bit set; the summary's last column names them). */
enum {
	N_NOSYN = 1 << 0,   /* capture starts mid-connection */
	N_SYNRETX = 1 << 1, /* the first SYN is retransmitted */
	N_RETRANS = 1 << 2, /* lost data segments, retransmitted */
	N_OOO = 1 << 3,	    /* segments arrive out of order */
	N_REFUSED = 1 << 4, /* the SYN is answered by RST */
	N_FRAG = 1 << 5,    /* IPv4 fragments */
	N_QINQ = 1 << 6,    /* two VLAN tags */
	N_BIG = 1 << 7,	    /* large ICMP echo payloads */
};

/* How a TCP session ends. */
enum close { C_FIN_C, C_FIN_S, C_RST_C, C_RST_S, C_OPEN, C_COUNT };
static const uint16_t close_weight[C_COUNT] = {560, 220, 110, 60, 50};
static const char *const close_name[C_COUNT] = {"fin-c", "fin-s", "rst-c",
						"rst-s", "open"};

/* What a planned packet is. */
enum what {
	W_TCP,
	W_DNS_Q,
	W_DNS_R,
	W_FRAG,
	W_NTP,
	W_RTP,
	W_ECHO,
	W_ARP,
};

/* One packet planned by a flow, built into a frame when its time comes. */
struct pkt {
	uint64_t ts;
	uint64_t off; /* TCP stream offset; else a message number */
	uint64_t aux; /* time of the request a reply answers */
	uint32_t seq, ack, tsval, tsecr;
	uint32_t len; /* TCP payload bytes */
	uint8_t dir;  /* 0 client to server, 1 server to client */
	uint8_t what;
	uint8_t flags; /* TCP flags */
	uint8_t extra; /* fragment number */
};

enum body { BODY_BIN, BODY_TEXT };

/*
 * Record framings laid over a message: TLS 1.3 application data records
 * (RFC 8446 section 5.2: type 23, version 0x0303, 16-bit length; at most
 * 16406 bytes with the header) and SSH binary packets with a 16-byte tag
 * (RFC 4253 section 6: 32-bit packet length, a multiple of 16 bytes, the
 * tag; at most 32788 bytes). Under chacha20-poly1305@openssh.com, the
 * cipher the SSH sessions negotiate, the length is encrypted as well,
 * so SSH messages keep the sizes and drop the clear headers.
 */
enum rec { REC_TLS, REC_SSH };
#define TLS_REC_MAX 16406u
#define SSH_REC_MAX 32788u

/*
 * One application message in a TCP byte stream: structured bytes at its
 * head (hdr), pseudo-random (or text) bytes after them, an optional
 * trailer, and optionally record headers (enum rec) laid over the bytes
 * from rec_start.
 */
struct msg {
	uint64_t start; /* stream offset of the first byte */
	uint32_t len;
	uint32_t rec_start; /* message offset where records begin */
	uint32_t rec_len;   /* bytes of records from rec_start */
	uint16_t hdr_len;
	uint8_t trail_len;
	uint8_t body;
	uint8_t rec_kind; /* enum rec */
	uint8_t trail[8];
	uint8_t hdr[HDR_MAX];
};

struct host {
	uint8_t addr[16]; /* IPv4 in the first 4 bytes */
	uint8_t mac[6];
	uint16_t port;
	uint16_t ipid;
	uint8_t ttl;
	uint32_t flowlabel;
};

enum tcp_phase { TP_SYN, TP_MSG, TP_XFER, TP_CLOSE, TP_DONE };

struct flow {
	uint64_t serial; /* creation number */
	int64_t idx;	 /* summary row, -1 before the first frame */
	struct rng rng;
	uint64_t key; /* payload key */
	uint64_t t0;  /* first planned time */
	uint64_t t;   /* time of the last planned packet */
	uint8_t kind, app, v6, proto;
	uint8_t nvlan, close, svc, vidx;
	uint16_t notes;
	uint16_t vlan[2];
	struct host h[2]; /* 0 client, 1 server */

	struct pkt q[QCAP]; /* planned packets, in time order */
	uint8_t qh, qn;

	/* UDP / ICMP */
	uint32_t n, left; /* messages done, messages to go */
	uint32_t rtt;	  /* ns */
	uint32_t dlen;	  /* fragmented datagram length */
	uint32_t dtarget; /* its size as drawn */
	uint16_t fragid;
	uint16_t icmp_len;
	uint32_t ssrc[2];
	uint16_t rtpseq[2];
	uint32_t rtpts[2];
	uint8_t pt;

	/* TCP */
	uint8_t phase, sdir, ts_on, ack_owed;
	uint16_t step;
	uint8_t wscale[2], fin[2];
	uint16_t mss[2], win[2];
	uint32_t isn[2], tsbase[2], tslast[2];
	uint32_t gap, ackd; /* serialization gap, ACK delay (ns) */
	uint32_t cwnd, cwnd_max, round_left;
	uint32_t rounds, wsize;
	uint64_t nxt[2];  /* stream offset of the next new byte */
	uint64_t rcvd[2]; /* contiguous bytes the peer holds */
	uint64_t msg_end, wbase, tnext, round_t0;

	/* ground truth */
	uint64_t pk[2], by[2], first, last;
	uint32_t frags[2], retrans;

	struct msg m; /* last: flow_init() clears what is above */
};

/* One summary row, kept until the end to be written in index order. */
struct row {
	uint8_t kind, svc, proto, v6, nvlan, close;
	uint16_t notes;
	uint16_t vlan[2], port[2];
	uint8_t addr[2][16];
	uint64_t pk[2], by[2], first, last;
	uint32_t frags[2], retrans;
};

struct opts {
	const char *out, *summary;
	uint64_t seed, flows, size, start, duration;
	uint32_t concurrency;
	int fmt, quiet, have_flows, have_size, have_duration;
};

struct gen {
	const struct opts *o;
	struct rng rng;
	struct out out;
	struct flow **heap; /* min-heap on the next planned time */
	uint32_t nheap;
	struct flow *pool;
	struct flow **free;
	uint32_t nfree;
	uint64_t *tuples; /* open-addressing set of 5-tuple hashes */
	uint64_t tuples_cap, ntuples;
	struct row *rows;
	uint64_t nrows, rows_cap;
	uint64_t created; /* flows started (ARP excluded) */
	uint64_t next_idx;
	uint64_t base_ts; /* planned time the traffic starts from */
	uint64_t last_ts; /* time of the last frame written */
	uint64_t arp_frames;
	uint64_t serial; /* flows and ARP exchanges started */
	uint64_t end_ts;
	int stop, winddown;
	int err;		/* out of memory while generating */
	uint8_t scratch[65536]; /* a datagram before fragmentation */
};

/* ---- names, for payloads ------------------------------------------------ */

static const char *const domains[] = {
	"example.com",	"example.net", "example.org",	"corp.example",
	"shop.example", "cdn.test",    "internal.test", "media.example",
};
static const char *const hostpart[] = {
	"www",	"api", "cdn",	  "static", "img",   "login", "mail", "app",
	"auth", "m",   "updates", "assets", "video", "ws",    "docs", "beta",
};
static const char *const words[] = {
	"static", "assets", "api",   "v1",     "v2",   "images", "js",
	"css",	  "user",   "items", "search", "feed", "media",	 "cart",
};
static const char *const exts[] = {".js", ".css",  ".png",  ".json",
				   "",	  ".html", ".webp", ".woff2"};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---- keyed payload bytes ------------------------------------------------ */

/*
 * Fills p[0..len) with the pseudo-random bytes at stream offsets
 * [off, off + len) of the stream named by key: byte i is byte (i % 8)
 * of mix64(key + (i / 8) * golden), the same wherever a segment starts.
 */
static void prf_fill(uint8_t *p, uint64_t key, uint64_t off, uint32_t len)
{
	uint64_t w = off >> 3;
	uint32_t skip = (uint32_t)(off & 7), i = 0;
	uint8_t tmp[8];

	if (skip) {
		put_le64(tmp, mix64(key + w * 0x9e3779b97f4a7c15ULL));
		while (skip < 8 && i < len)
			p[i++] = tmp[skip++];
		w++;
	}
	while (len - i >= 8) {
		put_le64(p + i, mix64(key + w * 0x9e3779b97f4a7c15ULL));
		i += 8;
		w++;
	}
	if (i < len) {
		put_le64(tmp, mix64(key + w * 0x9e3779b97f4a7c15ULL));
		memcpy(p + i, tmp, len - i);
	}
}

static const char text_chars[64] =
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ,";

/* The segment [off, off + len) of message m in the stream named by key. */
static void msg_fill(uint8_t *p, const struct msg *m, uint64_t key,
		     uint64_t off, uint32_t len)
{
	uint64_t rel = off - m->start, end = rel + len, k, b, rs, hl;
	uint32_t i;

	prf_fill(p, key, off, len);
	if (m->body == BODY_TEXT) {
		for (i = 0; i < len; i++) {
			uint64_t pos = rel + i;

			if (pos < m->hdr_len)
				continue;
			pos = (pos - m->hdr_len) % 78;
			if (pos == 76)
				p[i] = '\r';
			else if (pos == 77)
				p[i] = '\n';
			else
				p[i] = (uint8_t)text_chars[p[i] & 63];
		}
	}
	if (rel < m->hdr_len) {
		uint64_t n = m->hdr_len - rel < len ? m->hdr_len - rel : len;

		memcpy(p, m->hdr + rel, n);
	}
	if (m->trail_len && end > m->len - m->trail_len) {
		for (b = m->len - m->trail_len; b < m->len; b++)
			if (b >= rel && b < end)
				p[b - rel] =
					m->trail[b - (m->len - m->trail_len)];
	}
	if (m->rec_start == NO_REC)
		return;
	/* full records, the last one shorter; a header at each start */
	rs = m->rec_kind == REC_TLS ? TLS_REC_MAX : SSH_REC_MAX;
	hl = m->rec_kind == REC_TLS ? 5 : 4;
	k = rel > m->rec_start + hl ? (rel - m->rec_start - hl) / rs : 0;
	for (;; k++) {
		uint64_t at = m->rec_start + k * rs, rl;
		uint8_t rh[5];

		if (at >= end || at >= (uint64_t)m->rec_start + m->rec_len)
			break;
		rl = m->rec_start + m->rec_len - at;
		if (rl > rs)
			rl = rs;
		if (m->rec_kind == REC_TLS) {
			rh[0] = 0x17;
			rh[1] = 3;
			rh[2] = 3;
			put_be16(rh + 3, (uint16_t)(rl - 5));
		} else {
			put_be32(rh, (uint32_t)(rl - 4 - 16));
		}
		for (b = 0; b < hl; b++)
			if (at + b >= rel && at + b < end)
				p[at + b - rel] = rh[b];
	}
}

/* ---- building message heads --------------------------------------------- */

static void m_begin(struct flow *f, int dir)
{
	struct msg *m = &f->m;

	m->start = f->nxt[dir];
	m->len = 0;
	m->hdr_len = 0;
	m->trail_len = 0;
	m->rec_start = NO_REC;
	m->rec_len = 0;
	m->body = BODY_BIN;
	m->rec_kind = REC_TLS;
	f->wsize = 0;
}

static uint8_t *m_room(struct msg *m, size_t n)
{
	uint8_t *p;

	if (m->hdr_len + n > HDR_MAX) {
		/* a programming error: every head is far below HDR_MAX */
		fprintf(stderr, "fvgen: message head too long\n");
		abort();
	}
	p = m->hdr + m->hdr_len;
	m->hdr_len = (uint16_t)(m->hdr_len + n);
	return p;
}

static void m_put(struct msg *m, const void *s, size_t n)
{
	memcpy(m_room(m, n), s, n);
}

static void m_str(struct msg *m, const char *s)
{
	m_put(m, s, strlen(s));
}

static void m_u8(struct msg *m, uint8_t v)
{
	*m_room(m, 1) = v;
}

static void m_u16(struct msg *m, uint16_t v)
{
	put_be16(m_room(m, 2), v);
}

static void m_u32(struct msg *m, uint32_t v)
{
	put_be32(m_room(m, 4), v);
}

static void m_rand(struct msg *m, struct rng *r, size_t n)
{
	uint8_t *p = m_room(m, n);
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)rng_next(r);
}

/* Printable random bytes (a MySQL scramble is never NUL). */
static void m_text(struct msg *m, struct rng *r, size_t n)
{
	uint8_t *p = m_room(m, n);
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(0x21 + rng_below(r, 94));
}

/* Formats into the head (snprintf of integers and strings only). */
__attribute__((format(printf, 2, 3))) static void m_fmt(struct msg *m,
							const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		abort();
	m_put(m, tmp, (size_t)n);
}

/* The head is the whole message. */
static void m_done(struct msg *m)
{
	m->len = m->hdr_len;
}

/*
 * Records of about `bytes` bytes in all follow the head. A TLS record is
 * never shorter than 22 bytes (5 + 1 + 16 tag); an SSH packet holds a
 * multiple of 16 bytes, at least 16, plus length and tag.
 */
static void m_records(struct flow *f, uint32_t bytes, int kind)
{
	struct msg *m = &f->m;
	uint32_t rs = kind == REC_TLS ? TLS_REC_MAX : SSH_REC_MAX;
	uint32_t last = bytes % rs;

	if (kind == REC_TLS) {
		if (bytes < 22)
			bytes = 22;
		else if (last && last < 22)
			bytes += 22;
	} else if (last || !bytes) {
		if (last < 36)
			last = 36;
		last = (last - 20 + 15) / 16 * 16 + 20;
		bytes = bytes - bytes % rs + last;
	}
	m->rec_kind = (uint8_t)kind;
	m->rec_start = m->hdr_len;
	m->rec_len = bytes;
	m->len = m->hdr_len + bytes;
	f->wsize = rs;
}

static void m_tls_records(struct flow *f, uint32_t bytes)
{
	m_records(f, bytes, REC_TLS);
}

static void host_name(struct rng *r, char *buf, size_t len)
{
	snprintf(buf, len, "%s.%s", hostpart[rng_below(r, NELEM(hostpart))],
		 domains[rng_below(r, NELEM(domains))]);
}

/* ---- application messages ----------------------------------------------- */

static uint32_t response_size(struct rng *r)
{
	uint32_t x = rng_below(r, 1000);

	if (x < 500)
		return (uint32_t)rng_logu(r, 100, 2000);
	if (x < 850)
		return (uint32_t)rng_logu(r, 2000, 20000);
	if (x < 970)
		return (uint32_t)rng_logu(r, 20000, 200000);
	if (x < 997)
		return (uint32_t)rng_logu(r, 200000, 1000000);
	return (uint32_t)rng_logu(r, 1000000, 4000000);
}

/* TLS 1.3 ClientHello (RFC 8446 section 4.1.2) with SNI (RFC 6066). */
static void tls_client_hello(struct flow *f, int alpn)
{
	struct msg *m = &f->m;
	char sni[64];
	size_t rec, hs, ext, e;
	static const uint16_t suites[] = {0x1301, 0x1302, 0x1303,
					  0xc02b, 0xc02f, 0xc02c,
					  0xc030, 0xcca9, 0xcca8};
	static const uint16_t sigs[] = {0x0403, 0x0804, 0x0401, 0x0503,
					0x0805, 0x0501, 0x0806, 0x0601};
	size_t i, n;

	host_name(&f->rng, sni, sizeof(sni));
	n = strlen(sni);
	m_u8(m, 0x16);
	m_u16(m, 0x0301);
	rec = m->hdr_len;
	m_u16(m, 0);
	hs = m->hdr_len;
	m_u8(m, 1);
	m_u8(m, 0);
	m_u16(m, 0);
	m_u16(m, 0x0303);
	m_rand(m, &f->rng, 32);
	m_u8(m, 32);
	m_rand(m, &f->rng, 32);
	m_u16(m, sizeof(suites));
	for (i = 0; i < NELEM(suites); i++)
		m_u16(m, suites[i]);
	m_u8(m, 1);
	m_u8(m, 0);
	ext = m->hdr_len;
	m_u16(m, 0);
	/* server_name */
	m_u16(m, 0);
	m_u16(m, (uint16_t)(n + 5));
	m_u16(m, (uint16_t)(n + 3));
	m_u8(m, 0);
	m_u16(m, (uint16_t)n);
	m_put(m, sni, n);
	/* supported_groups: x25519, secp256r1, secp384r1 */
	m_u16(m, 10);
	m_u16(m, 8);
	m_u16(m, 6);
	m_u16(m, 0x001d);
	m_u16(m, 0x0017);
	m_u16(m, 0x0018);
	/* ec_point_formats: uncompressed */
	m_u16(m, 11);
	m_u16(m, 2);
	m_u8(m, 1);
	m_u8(m, 0);
	/* signature_algorithms */
	m_u16(m, 13);
	m_u16(m, (uint16_t)(2 + sizeof(sigs)));
	m_u16(m, sizeof(sigs));
	for (i = 0; i < NELEM(sigs); i++)
		m_u16(m, sigs[i]);
	if (alpn) {
		/* application_layer_protocol_negotiation: h2, http/1.1 */
		m_u16(m, 16);
		m_u16(m, 14);
		m_u16(m, 12);
		m_u8(m, 2);
		m_str(m, "h2");
		m_u8(m, 8);
		m_str(m, "http/1.1");
	}
	/* supported_versions: TLS 1.3, 1.2 */
	m_u16(m, 43);
	m_u16(m, 5);
	m_u8(m, 4);
	m_u16(m, 0x0304);
	m_u16(m, 0x0303);
	/* psk_key_exchange_modes: psk_dhe_ke */
	m_u16(m, 45);
	m_u16(m, 2);
	m_u8(m, 1);
	m_u8(m, 1);
	/* key_share: x25519 */
	m_u16(m, 51);
	m_u16(m, 38);
	m_u16(m, 36);
	m_u16(m, 0x001d);
	m_u16(m, 32);
	m_rand(m, &f->rng, 32);
	e = m->hdr_len;
	put_be16(m->hdr + rec, (uint16_t)(e - rec - 2));
	put_be16(m->hdr + hs + 2, (uint16_t)(e - hs - 4));
	put_be16(m->hdr + ext, (uint16_t)(e - ext - 2));
	m_done(m);
}

/*
 * ServerHello, ChangeCipherSpec, then one application data record that
 * stands for the encrypted EncryptedExtensions .. Finished flight.
 */
static void tls_server_hello(struct flow *f)
{
	struct msg *m = &f->m;

	m_u8(m, 0x16);
	m_u16(m, 0x0303);
	m_u16(m, 122);
	m_u8(m, 2);
	m_u8(m, 0);
	m_u16(m, 118);
	m_u16(m, 0x0303);
	m_rand(m, &f->rng, 32);
	m_u8(m, 32);
	m_rand(m, &f->rng, 32);
	m_u16(m, 0x1301);
	m_u8(m, 0);
	m_u16(m, 46);
	m_u16(m, 43); /* supported_versions: TLS 1.3 */
	m_u16(m, 2);
	m_u16(m, 0x0304);
	m_u16(m, 51); /* key_share: x25519 */
	m_u16(m, 36);
	m_u16(m, 0x001d);
	m_u16(m, 32);
	m_rand(m, &f->rng, 32);
	m_u8(m, 0x14); /* change_cipher_spec (middlebox compatibility) */
	m_u16(m, 0x0303);
	m_u16(m, 1);
	m_u8(m, 1);
	m_tls_records(f, (uint32_t)rng_logu(&f->rng, 1500, 6000));
	f->wsize = 0;
}

/* The client's ChangeCipherSpec and encrypted Finished. */
static void tls_client_finished(struct flow *f)
{
	struct msg *m = &f->m;

	m_u8(m, 0x14);
	m_u16(m, 0x0303);
	m_u16(m, 1);
	m_u8(m, 1);
	m_tls_records(f, 58);
	f->wsize = 0;
}

/* Step s of a TLS 1.3 session; returns the sender, or -1 when over. */
static int tls_step(struct flow *f, uint32_t s, int alpn)
{
	if (s == 0) {
		m_begin(f, 0);
		tls_client_hello(f, alpn);
		return 0;
	}
	if (s == 1) {
		m_begin(f, 1);
		tls_server_hello(f);
		return 1;
	}
	if (s == 2) {
		m_begin(f, 0);
		tls_client_finished(f);
		return 0;
	}
	s -= 3;
	if (s / 2 >= f->rounds)
		return -1;
	if (s % 2 == 0) {
		m_begin(f, 0);
		if (rng_pm(&f->rng, 30))
			m_tls_records(
				f, (uint32_t)rng_logu(&f->rng, 16000, 1000000));
		else
			m_tls_records(f, (uint32_t)rng_logu(&f->rng, 80, 1500));
		return 0;
	}
	m_begin(f, 1);
	if (f->app == A_TLS)
		m_tls_records(f, response_size(&f->rng));
	else /* a database answering a query */
		m_tls_records(
			f, rng_pm(&f->rng, 50)
				   ? (uint32_t)rng_logu(&f->rng, 20000, 500000)
				   : (uint32_t)rng_logu(&f->rng, 60, 20000));
	return 1;
}

static int http_step(struct flow *f, uint32_t s)
{
	struct msg *m = &f->m;
	char host[64];
	uint32_t body;

	if (s / 2 >= f->rounds)
		return -1;
	if (s % 2 == 0) {
		struct rng *r = &f->rng;

		m_begin(f, 0);
		host_name(r, host, sizeof(host));
		if (rng_pm(r, 100)) {
			body = (uint32_t)rng_logu(r, 200, 65536);
			if (rng_pm(r, 100))
				body = (uint32_t)rng_logu(r, 65536, 1000000);
			m_fmt(m,
			      "POST /%s/%s HTTP/1.1\r\nHost: %s\r\n"
			      "User-Agent: fvgen/1.0\r\nAccept: */*\r\n"
			      "Content-Type: application/octet-stream\r\n"
			      "Content-Length: %u\r\n\r\n",
			      words[rng_below(r, NELEM(words))],
			      words[rng_below(r, NELEM(words))], host, body);
		} else {
			body = 0;
			m_fmt(m,
			      "GET /%s/%s/%08" PRIx32 "%s HTTP/1.1\r\n"
			      "Host: %s\r\nUser-Agent: fvgen/1.0\r\n"
			      "Accept: */*\r\nAccept-Language: en\r\n"
			      "Connection: keep-alive\r\n\r\n",
			      words[rng_below(r, NELEM(words))],
			      words[rng_below(r, NELEM(words))],
			      (uint32_t)rng_next(r),
			      exts[rng_below(r, NELEM(exts))], host);
		}
		m->len = m->hdr_len + body;
		f->wsize = 16384;
		return 0;
	}
	m_begin(f, 1);
	if (rng_pm(&f->rng, 60)) {
		body = (uint32_t)rng_logu(&f->rng, 100, 600);
		m_fmt(m,
		      "HTTP/1.1 404 Not Found\r\nServer: nginx\r\n"
		      "Content-Type: text/plain\r\nContent-Length: %u\r\n"
		      "\r\n",
		      body);
		m->body = BODY_TEXT;
	} else {
		body = response_size(&f->rng);
		m_fmt(m,
		      "HTTP/1.1 200 OK\r\nServer: nginx\r\n"
		      "Content-Type: application/octet-stream\r\n"
		      "Content-Length: %u\r\nCache-Control: max-age=3600\r\n"
		      "Connection: keep-alive\r\n\r\n",
		      body);
	}
	m->len = m->hdr_len + body;
	f->wsize = 32768;
	return 1;
}

/* One SSH binary packet (RFC 4253 section 6), block size 8. */
static void ssh_packet_begin(struct msg *m, size_t *at)
{
	*at = m->hdr_len;
	m_u32(m, 0);
	m_u8(m, 0);
}

static void ssh_packet_end(struct msg *m, struct rng *r, size_t at)
{
	size_t payload = m->hdr_len - at - 5;
	size_t pad = 8 - (5 + payload) % 8;

	if (pad < 4)
		pad += 8;
	m->hdr[at + 4] = (uint8_t)pad;
	m_rand(m, r, pad);
	put_be32(m->hdr + at, (uint32_t)(payload + pad + 1));
}

static void ssh_string(struct msg *m, const char *s)
{
	m_u32(m, (uint32_t)strlen(s));
	m_str(m, s);
}

static void ssh_kexinit(struct flow *f, int server)
{
	struct msg *m = &f->m;
	size_t at;

	ssh_packet_begin(m, &at);
	m_u8(m, 20); /* SSH_MSG_KEXINIT (RFC 4253 section 7.1) */
	m_rand(m, &f->rng, 16);
	ssh_string(m, server ? "curve25519-sha256,curve25519-sha256@libssh.org,"
			       "ecdh-sha2-nistp256,kex-strict-s-v00@openssh.com"
			     : "curve25519-sha256,curve25519-sha256@libssh.org,"
			       "ecdh-sha2-nistp256,ext-info-c,"
			       "kex-strict-c-v00@openssh.com");
	ssh_string(m, "ssh-rsa,rsa-sha2-512,ssh-ed25519");
	ssh_string(m, "chacha20-poly1305@openssh.com,aes128-gcm@openssh.com");
	ssh_string(m, "chacha20-poly1305@openssh.com,aes128-gcm@openssh.com");
	ssh_string(m, "umac-64-etm@openssh.com,hmac-sha2-256-etm@openssh.com");
	ssh_string(m, "umac-64-etm@openssh.com,hmac-sha2-256-etm@openssh.com");
	ssh_string(m, "none,zlib@openssh.com");
	ssh_string(m, "none,zlib@openssh.com");
	ssh_string(m, "");
	ssh_string(m, "");
	m_u8(m, 0);
	m_u32(m, 0);
	ssh_packet_end(m, &f->rng, at);
}

static int ssh_step(struct flow *f, uint32_t s)
{
	struct msg *m = &f->m;
	size_t at;

	switch (s) {
	case 0:
		m_begin(f, 1);
		m_str(m, "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n");
		m_done(m);
		return 1;
	case 1:
		m_begin(f, 0);
		m_str(m, "SSH-2.0-OpenSSH_9.6\r\n");
		m_done(m);
		return 0;
	case 2:
		m_begin(f, 0);
		ssh_kexinit(f, 0);
		m_done(m);
		return 0;
	case 3:
		m_begin(f, 1);
		ssh_kexinit(f, 1);
		m_done(m);
		return 1;
	case 4:
		m_begin(f, 0);
		ssh_packet_begin(m, &at);
		m_u8(m, 30); /* SSH_MSG_KEX_ECDH_INIT (RFC 5656 section 4) */
		m_u32(m, 32);
		m_rand(m, &f->rng, 32);
		ssh_packet_end(m, &f->rng, at);
		m_done(m);
		return 0;
	case 5:
		m_begin(f, 1);
		ssh_packet_begin(m, &at);
		m_u8(m, 31); /* SSH_MSG_KEX_ECDH_REPLY */
		/* K_S: an RSA host key (RFC 4253 section 6.6) */
		m_u32(m, 4 + 7 + 4 + 3 + 4 + 257);
		ssh_string(m, "ssh-rsa");
		m_u32(m, 3);
		m_put(m, "\x01\x00\x01", 3);
		m_u32(m, 257);
		m_u8(m, 0);
		m_rand(m, &f->rng, 256);
		m->hdr[m->hdr_len - 256] |= 0x80;
		/* Q_S */
		m_u32(m, 32);
		m_rand(m, &f->rng, 32);
		/* the signature (RFC 4253 section 6.6) */
		m_u32(m, 4 + 7 + 4 + 256);
		ssh_string(m, "ssh-rsa");
		m_u32(m, 256);
		m_rand(m, &f->rng, 256);
		ssh_packet_end(m, &f->rng, at);
		ssh_packet_begin(m, &at);
		m_u8(m, 21); /* SSH_MSG_NEWKEYS */
		ssh_packet_end(m, &f->rng, at);
		m_done(m);
		return 1;
	case 6:
		m_begin(f, 0);
		ssh_packet_begin(m, &at);
		m_u8(m, 21);
		ssh_packet_end(m, &f->rng, at);
		m_done(m);
		return 0;
	default:
		break;
	}
	/* encrypted packets: keystrokes and echoes, or one bulk download */
	s -= 7;
	if (s / 2 >= f->rounds)
		return -1;
	m_begin(f, s % 2);
	if (s % 2 == 0)
		m_records(f, (uint32_t)rng_range(&f->rng, 1, 3) * 16 + 20,
			  REC_SSH);
	else if (f->rounds == 2 && s == 1)
		m_records(f, (uint32_t)rng_logu(&f->rng, 100000, 4000000),
			  REC_SSH);
	else
		m_records(f, (uint32_t)rng_logu(&f->rng, 36, 1500), REC_SSH);
	/* chacha20-poly1305 encrypts the length too: no clear headers */
	m->rec_start = NO_REC;
	return (int)(s % 2);
}

static int smtp_step(struct flow *f, uint32_t s)
{
	struct msg *m = &f->m;
	struct rng *r = &f->rng;
	const char *dom = domains[f->serial % NELEM(domains)];
	uint32_t lines;

	if (s > 12)
		return -1;
	m_begin(f, s % 2 ? 0 : 1);
	switch (s) {
	case 0:
		m_fmt(m, "220 mx.%s ESMTP Postfix\r\n", dom);
		break;
	case 1:
		m_fmt(m, "EHLO host%u.%s\r\n", rng_below(r, 900) + 100,
		      domains[rng_below(r, NELEM(domains))]);
		break;
	case 2:
		m_fmt(m,
		      "250-mx.%s\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
		      "250-8BITMIME\r\n250 SMTPUTF8\r\n",
		      dom);
		break;
	case 3:
		m_fmt(m, "MAIL FROM:<user%u@%s>\r\n", rng_below(r, 1000),
		      domains[rng_below(r, NELEM(domains))]);
		break;
	case 4:
		m_str(m, "250 2.1.0 Ok\r\n");
		break;
	case 5:
		m_fmt(m, "RCPT TO:<user%u@%s>\r\n", rng_below(r, 1000), dom);
		break;
	case 6:
		m_str(m, "250 2.1.5 Ok\r\n");
		break;
	case 7:
		m_str(m, "DATA\r\n");
		break;
	case 8:
		m_str(m, "354 End data with <CR><LF>.<CR><LF>\r\n");
		break;
	case 9:
		m_fmt(m,
		      "From: user%u@example.org\r\nTo: user%u@%s\r\n"
		      "Subject: report %u\r\nMessage-ID: <%08" PRIx32
		      "@example.org>\r\n\r\n",
		      rng_below(r, 1000), rng_below(r, 1000), dom,
		      rng_below(r, 100000), (uint32_t)rng_next(r));
		lines = (uint32_t)rng_logu(r, 5, 2000);
		m->body = BODY_TEXT;
		memcpy(m->trail, ".\r\n", 3);
		m->trail_len = 3;
		m->len = m->hdr_len + lines * 78 + 3;
		f->wsize = 4096;
		return 0;
	case 10:
		m_fmt(m, "250 2.0.0 Ok: queued as %08" PRIX32 "\r\n",
		      (uint32_t)rng_next(r));
		break;
	case 11:
		m_str(m, "QUIT\r\n");
		break;
	default:
		m_str(m, "221 2.0.0 Bye\r\n");
		break;
	}
	m_done(m);
	return s % 2 ? 0 : 1;
}

/* MySQL handshake v10 then an SSL request, and TLS after it. */
static int mysql_step(struct flow *f, uint32_t s)
{
	struct msg *m = &f->m;
	size_t at;

	if (s == 0) {
		m_begin(f, 1);
		at = m->hdr_len;
		m_u32(m, 0); /* 3-byte length LE + sequence id 0 */
		m_u8(m, 10);
		m_put(m, "8.0.36\0", 7);
		put_le32(m_room(m, 4), (uint32_t)rng_range(&f->rng, 8, 99999));
		m_text(m, &f->rng, 8);
		m_u8(m, 0);
		put_le16(m_room(m, 2), 0xffff);
		m_u8(m, 255);
		put_le16(m_room(m, 2), 0x0002);
		put_le16(m_room(m, 2), 0xdfff);
		m_u8(m, 21);
		memset(m_room(m, 10), 0, 10);
		m_text(m, &f->rng, 12);
		m_u8(m, 0);
		m_put(m, "caching_sha2_password\0", 22);
		put_le32(m->hdr + at, (uint32_t)(m->hdr_len - at - 4));
		m_done(m);
		return 1;
	}
	if (s == 1) {
		m_begin(f, 0);
		put_le32(m_room(m, 4), 32 | 1u << 24);
		put_le32(m_room(m, 4), 0x01ffae8d); /* CLIENT_SSL among them */
		put_le32(m_room(m, 4), 16777216);
		m_u8(m, 255);
		memset(m_room(m, 23), 0, 23);
		m_done(m);
		return 0;
	}
	return tls_step(f, s - 2, 0);
}

/* PostgreSQL SSLRequest, 'S', then TLS. */
static int pgsql_step(struct flow *f, uint32_t s)
{
	struct msg *m = &f->m;

	if (s == 0) {
		m_begin(f, 0);
		m_u32(m, 8);
		m_u32(m, 80877103);
		m_done(m);
		return 0;
	}
	if (s == 1) {
		m_begin(f, 1);
		m_u8(m, 'S');
		m_done(m);
		return 1;
	}
	return tls_step(f, s - 2, 0);
}

/*
 * The next message of a TCP session into f->m; returns its sender, or -1
 * when the session has nothing more to say.
 */
static int tcp_script(struct flow *f)
{
	uint32_t s = f->step++;

	switch (f->app) {
	case A_TLS:
		return tls_step(f, s, 1);
	case A_HTTP:
		return http_step(f, s);
	case A_SSH:
		return ssh_step(f, s);
	case A_SMTP:
		return smtp_step(f, s);
	case A_MYSQL:
		return mysql_step(f, s);
	default:
		return pgsql_step(f, s);
	}
}

/* ---- planning ----------------------------------------------------------- */

static struct pkt *plan(struct flow *f, uint64_t ts, int dir, int what)
{
	struct pkt *p;

	if (f->qn >= QCAP) {
		fprintf(stderr, "fvgen: plan queue overflow\n");
		abort();
	}
	p = &f->q[(f->qh + f->qn++) % QCAP];
	if (ts <= f->t)
		ts = f->t + 1;
	f->t = ts;
	memset(p, 0, sizeof(*p));
	p->ts = ts;
	p->dir = (uint8_t)dir;
	p->what = (uint8_t)what;
	return p;
}

/* ns in [base - base/8, base + base/8], never 0 */
static uint64_t jit(struct rng *r, uint64_t base)
{
	uint64_t d = base / 8;

	return rng_range(r, base - d, base + d) + 1;
}

static void plan_tcp(struct flow *f, uint64_t ts, int dir, uint8_t flags,
		     uint64_t off, uint32_t len)
{
	struct pkt *p = plan(f, ts, dir, W_TCP);
	int e = !dir;

	p->flags = flags;
	p->off = off;
	p->len = len;
	if (flags & TH_SYN)
		p->seq = f->isn[dir];
	else if (!len) /* ACK, FIN or RST: the next sequence number */
		p->seq = f->isn[dir] + 1 + (uint32_t)f->nxt[dir] + f->fin[dir];
	else
		p->seq = f->isn[dir] + 1 + (uint32_t)off;
	if (flags & TH_ACK)
		p->ack = f->isn[e] + 1 + (uint32_t)f->rcvd[e] + f->fin[e];
	if (f->ts_on) {
		p->tsval = f->tsbase[dir] +
			   (uint32_t)((p->ts - f->t0) / NS_PER_MS);
		p->tsecr = (flags & TH_SYN) && !(flags & TH_ACK) ? 0
								 : f->tslast[e];
		f->tslast[dir] = p->tsval;
	}
}

/* Payload bytes of the segment starting at off, within the message. */
static uint32_t seg_len(const struct flow *f, uint64_t off)
{
	uint64_t lim = off + f->mss[f->sdir];

	if (f->wsize) {
		uint64_t b;

		if (off < f->wbase)
			b = f->wbase;
		else
			b = f->wbase +
			    ((off - f->wbase) / f->wsize + 1) * f->wsize;
		if (b < lim)
			lim = b;
	}
	if (f->msg_end < lim)
		lim = f->msg_end;
	/*
	 * Never leave a tail of less than 64 bytes before a write boundary:
	 * senders coalesce those, and tshark's SSH dissector throws on an
	 * encrypted segment shorter than its MAC.
	 */
	if (lim - off > 128 && lim == off + f->mss[f->sdir]) {
		uint64_t b = f->msg_end;

		if (f->wsize && off >= f->wbase)
			b = f->wbase +
			    ((off - f->wbase) / f->wsize + 1) * f->wsize;
		else if (f->wsize && f->wbase < b)
			b = f->wbase;
		if (b > f->msg_end)
			b = f->msg_end;
		if (b > lim && b - lim < 64)
			lim = b - 64;
	}
	return (uint32_t)(lim - off);
}

static uint8_t seg_flags(const struct flow *f, uint64_t off, uint32_t len)
{
	uint64_t end = off + len;

	if (end == f->msg_end)
		return TH_ACK | TH_PSH;
	if (f->wsize && end > f->wbase && (end - f->wbase) % f->wsize == 0)
		return TH_ACK | TH_PSH;
	if (end == f->wbase)
		return TH_ACK | TH_PSH;
	return TH_ACK;
}

/* Plans the next new segment of the current message at ts. */
static void plan_seg(struct flow *f, uint64_t ts)
{
	int d = f->sdir;
	uint64_t off = f->nxt[d];
	uint32_t len = seg_len(f, off);

	f->nxt[d] += len;
	f->rcvd[d] = f->nxt[d];
	plan_tcp(f, ts, d, seg_flags(f, off, len), off, len);
	if (f->round_left)
		f->round_left--;
}

/* One step of a data transfer: a few segments and the ACKs they draw. */
static void tcp_xfer(struct flow *f)
{
	struct rng *r = &f->rng;
	int d = f->sdir, e = !d;
	uint64_t t;

	if (!f->round_left) {
		t = f->round_t0 + f->rtt;
		if (t < f->t)
			t = f->t + jit(r, f->gap);
		f->round_t0 = t;
		f->cwnd = f->cwnd * 2 < f->cwnd_max ? f->cwnd * 2 : f->cwnd_max;
		f->round_left = f->cwnd;
	} else if (f->tnext > f->t) {
		t = f->tnext;
	} else {
		t = f->t + jit(r, f->gap);
	}
	f->tnext = 0;

	if ((f->notes & N_RETRANS) && rng_pm(r, 25)) {
		/* a segment lost after the capture point: dup ACKs, resend */
		uint64_t a = f->nxt[d], hole = f->rcvd[d];
		uint32_t alen = seg_len(f, a), k = 0;
		uint8_t afl = seg_flags(f, a, alen);

		f->nxt[d] += alen;
		plan_tcp(f, t, d, afl, a, alen);
		if (f->round_left)
			f->round_left--;
		while (k < 3 && f->nxt[d] < f->msg_end && f->round_left) {
			uint64_t o = f->nxt[d];
			uint32_t l = seg_len(f, o);

			f->nxt[d] += l;
			plan_tcp(f, f->t + jit(r, f->gap), d,
				 seg_flags(f, o, l), o, l);
			f->round_left--;
			f->rcvd[d] = hole;
			plan_tcp(f, f->t + jit(r, f->ackd), e, TH_ACK, 0, 0);
			k++;
		}
		if (k)
			t = f->t + jit(r, f->rtt / 4 + f->gap);
		else
			t = f->t + jit(r, f->rtt * 2 > 200 * NS_PER_MS
						  ? f->rtt * 2
						  : 200 * NS_PER_MS);
		plan_tcp(f, t, d, afl, a, alen);
		f->retrans++;
		f->rcvd[d] = f->nxt[d];
		plan_tcp(f, f->t + jit(r, f->ackd), e, TH_ACK, 0, 0);
		f->ack_owed = 0;
	} else if ((f->notes & N_OOO) && f->round_left >= 2 &&
		   f->msg_end - f->nxt[d] > f->mss[d] && rng_pm(r, 30)) {
		/* two segments swapped on the way: B, dup ACK, A, ACK */
		uint64_t a = f->nxt[d], b, hole = f->rcvd[d];
		uint32_t alen = seg_len(f, a), blen;

		b = a + alen;
		blen = seg_len(f, b);
		f->nxt[d] = b + blen;
		f->rcvd[d] = hole;
		plan_tcp(f, t, d, seg_flags(f, b, blen), b, blen);
		plan_tcp(f, f->t + jit(r, f->ackd), e, TH_ACK, 0, 0);
		plan_tcp(f, f->t + rng_range(r, 5000, 150000), d,
			 seg_flags(f, a, alen), a, alen);
		f->rcvd[d] = f->nxt[d];
		plan_tcp(f, f->t + jit(r, f->ackd), e, TH_ACK, 0, 0);
		f->round_left -= 2;
		f->ack_owed = 0;
	} else {
		plan_seg(f, t);
		if (f->nxt[d] < f->msg_end && f->round_left) {
			plan_seg(f, f->t + jit(r, f->gap));
			plan_tcp(f, f->t + jit(r, f->ackd), e, TH_ACK, 0, 0);
			f->ack_owed = 0;
		} else if (f->nxt[d] == f->msg_end) {
			f->ack_owed = (uint8_t)(e + 1);
		} else {
			plan_tcp(f, f->t + jit(r, f->ackd), e, TH_ACK, 0, 0);
			f->ack_owed = 0;
		}
	}
	if (f->nxt[d] >= f->msg_end)
		f->phase = TP_MSG;
}

/* Time from the end of one message to the first byte of the next. */
static uint64_t think_time(struct flow *f, int prev, int next)
{
	struct rng *r = &f->rng;

	if (prev == next)
		return rng_logu(r, 5000, 200000);
	if (next == 1) /* the server answers: a round trip plus its work */
		return f->rtt + rng_logu(r, 30000, 30 * NS_PER_MS);
	if (f->step < 8) /* the client goes on with a handshake */
		return rng_logu(r, 20000, NS_PER_MS);
	if (rng_pm(r, 20))
		return rng_logu(r, NS_PER_S, 8 * NS_PER_S);
	return rng_logu(r, 100000, 2 * NS_PER_S);
}

static void tcp_close(struct gen *g, struct flow *f)
{
	struct rng *r = &f->rng;
	uint64_t t = f->t + rng_logu(r, 100000, 200 * NS_PER_MS);
	int c = f->close;

	(void)g;
	if (c == C_FIN_C || c == C_FIN_S) {
		int a = c == C_FIN_C ? 0 : 1, b = !a;

		plan_tcp(f, t, a, TH_FIN | TH_ACK, f->nxt[a], 0);
		f->fin[a] = 1;
		if (a == 0) {
			/* the server closes at once: FIN/ACK, then ACK */
			plan_tcp(f, f->t + f->rtt + rng_logu(r, 5000, 100000),
				 b, TH_FIN | TH_ACK, f->nxt[b], 0);
			f->fin[b] = 1;
			plan_tcp(f, f->t + jit(r, f->ackd), a, TH_ACK, 0, 0);
		} else {
			plan_tcp(f, f->t + jit(r, f->ackd), b, TH_ACK, 0, 0);
			plan_tcp(f, f->t + rng_logu(r, 50000, 5 * NS_PER_MS), b,
				 TH_FIN | TH_ACK, f->nxt[b], 0);
			f->fin[b] = 1;
			plan_tcp(f, f->t + f->rtt, a, TH_ACK, 0, 0);
		}
	} else if (c == C_RST_C || c == C_RST_S) {
		int a = c == C_RST_C ? 0 : 1;

		plan_tcp(f, t, a, TH_RST | TH_ACK, f->nxt[a], 0);
	} else if (f->ack_owed) {
		plan_tcp(f, f->t + jit(r, f->ackd), f->ack_owed - 1, TH_ACK, 0,
			 0);
	}
	f->ack_owed = 0;
	f->phase = TP_DONE;
}

static void tcp_plan(struct gen *g, struct flow *f)
{
	struct rng *r = &f->rng;

	while (!f->qn && f->phase != TP_DONE) {
		switch (f->phase) {
		case TP_SYN: {
			uint64_t t = f->t0;

			plan_tcp(f, t, 0, TH_SYN, 0, 0);
			if (f->notes & N_SYNRETX) {
				plan_tcp(f, f->t + jit(r, NS_PER_S), 0, TH_SYN,
					 0, 0);
				f->retrans++;
			}
			if (f->kind == K_TCP_SYN) {
				uint32_t i;

				for (i = 1; i < f->left; i++) {
					plan_tcp(f,
						 f->t + jit(r, NS_PER_S << (i -
									    1)),
						 0, TH_SYN, 0, 0);
					f->retrans++;
				}
				if (f->notes & N_REFUSED) {
					/* RFC 9293 3.10.7.1: RST, ACK of SYN */
					f->fin[0] = 0;
					f->rcvd[0] = 0;
					f->isn[1] = 0xffffffff;
					plan_tcp(f, f->t + f->rtt, 1,
						 TH_RST | TH_ACK, 0, 0);
				}
				f->phase = TP_DONE;
				break;
			}
			plan_tcp(f, f->t + f->rtt, 1, TH_SYN | TH_ACK, 0, 0);
			plan_tcp(f, f->t + jit(r, f->ackd), 0, TH_ACK, 0, 0);
			f->phase = TP_MSG;
			break;
		}
		case TP_MSG: {
			int prev = f->sdir, d;
			uint64_t start;

			if (g->winddown || (d = tcp_script(f)) < 0) {
				f->phase = TP_CLOSE;
				break;
			}
			start = f->t + think_time(f, prev, d);
			if (f->ack_owed) {
				int x = f->ack_owed - 1;

				if (x != d)
					plan_tcp(f, f->t + jit(r, f->ackd), x,
						 TH_ACK, 0, 0);
				else if (start - f->t > 40 * NS_PER_MS)
					plan_tcp(f, f->t + 40 * NS_PER_MS, x,
						 TH_ACK, 0, 0);
				f->ack_owed = 0;
				if (start <= f->t)
					start = f->t + 1;
			}
			f->sdir = (uint8_t)d;
			f->msg_end = f->m.start + f->m.len;
			f->wbase = f->m.start + (f->m.rec_start != NO_REC
							 ? f->m.rec_start
							 : f->m.hdr_len);
			f->cwnd = 10;
			f->round_left = 10;
			f->round_t0 = start;
			f->tnext = start;
			f->phase = TP_XFER;
			tcp_xfer(f);
			break;
		}
		case TP_XFER:
			tcp_xfer(f);
			break;
		case TP_CLOSE:
			tcp_close(g, f);
			break;
		default:
			f->phase = TP_DONE;
			break;
		}
	}
}

static void dns_plan(struct gen *g, struct flow *f)
{
	struct rng *r = &f->rng;
	uint64_t t;
	struct pkt *p;

	if (!f->left || (g->winddown && f->n))
		return;
	t = f->n ? f->t + rng_logu(r, NS_PER_MS, 2 * NS_PER_S) : f->t0;
	p = plan(f, t, 0, W_DNS_Q);
	p->off = f->n;
	if (f->kind == K_DNS_FRAG) {
		uint32_t i, nf = (f->dlen + 1479) / 1480;

		t = f->t + f->rtt + rng_logu(r, 100000, 20 * NS_PER_MS);
		for (i = 0; i < nf; i++) {
			p = plan(f, t, 1, W_FRAG);
			p->off = f->n;
			p->extra = (uint8_t)i;
			t = f->t + rng_logu(r, 1000, 20000);
		}
	} else if (rng_pm(r, 970)) {
		p = plan(f, f->t + f->rtt + rng_logu(r, 50000, 20 * NS_PER_MS),
			 1, W_DNS_R);
		p->off = f->n;
	}
	f->n++;
	f->left--;
}

static void ntp_plan(struct gen *g, struct flow *f)
{
	struct pkt *p;
	uint64_t t, q;

	if (!f->left || (g->winddown && f->n))
		return;
	t = f->n ? f->t + jit(&f->rng, 2 * NS_PER_S) : f->t0;
	p = plan(f, t, 0, W_NTP);
	q = p->ts;
	p = plan(f, f->t + f->rtt + rng_logu(&f->rng, 20000, 500000), 1, W_NTP);
	p->aux = q;
	f->n++;
	f->left--;
}

static void rtp_plan(struct gen *g, struct flow *f)
{
	struct rng *r = &f->rng;
	uint64_t base = f->t0 + (uint64_t)f->n * 20 * NS_PER_MS;
	uint64_t tc, ts;
	struct pkt *p;

	if (f->n >= f->left || (g->winddown && f->n))
		return;
	/* the caller speaks first; then both sides every 20 ms, with jitter */
	tc = f->n ? base + rng_range(r, 0, 2 * NS_PER_MS) : base;
	ts = base + f->rtt / 2 + rng_range(r, 0, 3 * NS_PER_MS);
	p = plan(f, tc < ts ? tc : ts, tc < ts ? 0 : 1, W_RTP);
	p->off = f->n;
	p = plan(f, tc < ts ? ts : tc, tc < ts ? 1 : 0, W_RTP);
	p->off = f->n;
	f->n++;
}

static void echo_plan(struct gen *g, struct flow *f)
{
	struct pkt *p;
	uint64_t t, q;

	if (!f->left || (g->winddown && f->n))
		return;
	t = f->n ? f->t + jit(&f->rng, NS_PER_S) - f->rtt : f->t0;
	if (t <= f->t)
		t = f->t + 1;
	p = plan(f, t, 0, W_ECHO);
	p->off = f->n + 1;
	q = p->ts;
	if (!rng_pm(&f->rng, 30)) {
		p = plan(f, f->t + f->rtt, 1, W_ECHO);
		p->off = f->n + 1;
		p->aux = q;
	}
	f->n++;
	f->left--;
}

static void arp_plan(struct flow *f)
{
	struct pkt *p;

	if (f->n++)
		return;
	plan(f, f->t0, 0, W_ARP);
	p = plan(f, f->t + jit(&f->rng, 200000), 1, W_ARP);
	(void)p;
}

/* Plans the flow's next packets; returns how many (0: the flow is over). */
static int flow_plan(struct gen *g, struct flow *f)
{
	switch (f->kind) {
	case K_TCP:
	case K_TCP_SYN:
		tcp_plan(g, f);
		break;
	case K_DNS:
	case K_DNS_FRAG:
		dns_plan(g, f);
		break;
	case K_NTP:
		ntp_plan(g, f);
		break;
	case K_RTP:
		rtp_plan(g, f);
		break;
	case K_ICMP:
	case K_ICMP6:
		echo_plan(g, f);
		break;
	default:
		arp_plan(f);
		break;
	}
	return f->qn;
}

/* ---- frames ------------------------------------------------------------- */

static const uint8_t gw_mac[6] = {0x00, 0x00, 0x5e, 0x00, 0x01, 0x01};

/* Ethernet II (+ 802.1Q / 802.1ad tags); returns the header length. */
static size_t put_eth(uint8_t *p, const struct flow *f, int dir, uint16_t type)
{
	size_t n = 12;

	memcpy(p, dir ? f->h[0].mac : gw_mac, 6);
	memcpy(p + 6, dir ? gw_mac : f->h[0].mac, 6);
	if (f->nvlan == 2) {
		put_be16(p + n, 0x88a8);
		put_be16(p + n + 2, f->vlan[0]);
		n += 4;
		put_be16(p + n, 0x8100);
		put_be16(p + n + 2, f->vlan[1]);
		n += 4;
	} else if (f->nvlan == 1) {
		put_be16(p + n, 0x8100);
		put_be16(p + n + 2, f->vlan[0]);
		n += 4;
	}
	put_be16(p + n, type);
	return n + 2;
}

/* IPv4 (RFC 791) or IPv6 (RFC 8200) header; returns its length. */
static size_t put_ip(uint8_t *p, struct flow *f, int dir, uint8_t proto,
		     size_t l4len, uint16_t frag)
{
	struct host *s = &f->h[dir], *d = &f->h[!dir];

	if (f->v6) {
		put_be32(p, 6u << 28 | s->flowlabel);
		put_be16(p + 4, (uint16_t)l4len);
		p[6] = proto;
		p[7] = s->ttl;
		memcpy(p + 8, s->addr, 16);
		memcpy(p + 24, d->addr, 16);
		return 40;
	}
	p[0] = 0x45;
	p[1] = 0;
	put_be16(p + 2, (uint16_t)(20 + l4len));
	put_be16(p + 4, s->ipid++);
	put_be16(p + 6, frag);
	p[8] = s->ttl;
	p[9] = proto;
	p[10] = p[11] = 0;
	memcpy(p + 12, s->addr, 4);
	memcpy(p + 16, d->addr, 4);
	csum_store(p + 10, csum_add(0, p, 20), 0);
	return 20;
}

/* Checksum of an L4 header + payload with the pseudo-header of ip. */
static void l4_csum(const struct flow *f, const uint8_t *ip, uint8_t *l4,
		    size_t l4len, uint8_t proto, size_t at, int udp)
{
	uint8_t ph[8];
	uint64_t sum;

	if (f->v6)
		sum = csum_add(0, ip + 8, 32);
	else
		sum = csum_add(0, ip + 12, 8);
	put_be32(ph, (uint32_t)l4len);
	ph[4] = ph[5] = ph[6] = 0;
	ph[7] = proto;
	sum = csum_add(sum, ph, 8);
	sum = csum_add(sum, l4, l4len);
	csum_store(l4 + at, sum, udp);
}

/*
 * TCP options (RFC 9293 section 3.2, RFC 7323, RFC 2018) in the order
 * the two common stacks send them; returns the bytes written.
 */
static size_t tcp_options(const struct flow *f, const struct pkt *p, uint8_t *o)
{
	uint16_t mss = f->v6 ? 1440 : 1460;
	uint8_t ws = f->wscale[p->dir];

	if (p->flags & TH_SYN) {
		if (f->ts_on) {
			/* Linux: MSS, SACK_PERM, TS, NOP, WS */
			const uint8_t a[20] = {
				2, 4, mss >> 8, mss & 0xff, 4, 2, 8, 10, 0, 0,
				0, 0, 0,	0,	    0, 0, 1, 3,	 3, ws};

			memcpy(o, a, 20);
			put_be32(o + 8, p->tsval);
			put_be32(o + 12, p->tsecr);
			return 20;
		} else {
			/* Windows: MSS, NOP, WS, NOP, NOP, SACK_PERM */
			const uint8_t a[12] = {2, 4, mss >> 8, mss & 0xff,
					       1, 3, 3,	       ws,
					       1, 1, 4,	       2};

			memcpy(o, a, 12);
			return 12;
		}
	}
	if (!f->ts_on || f->kind == K_TCP_SYN)
		return 0;
	/* NOP, NOP, TS */
	o[0] = 1;
	o[1] = 1;
	o[2] = 8;
	o[3] = 10;
	put_be32(o + 4, p->tsval);
	put_be32(o + 8, p->tsecr);
	return 12;
}

static size_t build_tcp(struct flow *f, const struct pkt *p, uint8_t *l4)
{
	int dir = p->dir;
	uint16_t win = f->win[dir];
	size_t o;

	if (p->flags & TH_SYN)
		win = dir ? 65160 : 64240; /* unscaled, as Linux sends it */
	else if ((p->flags & TH_RST) && f->kind == K_TCP_SYN)
		win = 0;
	put_be16(l4, f->h[dir].port);
	put_be16(l4 + 2, f->h[!dir].port);
	put_be32(l4 + 4, p->seq);
	put_be32(l4 + 8, p->ack);
	l4[13] = p->flags;
	put_be16(l4 + 14, win);
	put_be16(l4 + 16, 0);
	put_be16(l4 + 18, 0);
	o = 20 + tcp_options(f, p, l4 + 20);
	l4[12] = (uint8_t)((o / 4) << 4);
	if (p->len)
		msg_fill(l4 + o, &f->m, f->key ^ (dir ? 0x5bd1e995ULL : 0),
			 p->off, p->len);
	return o + p->len;
}

/* DNS names used by one transaction: the query name and its type. */
struct dns_q {
	char name[96];
	uint16_t type;
	uint16_t id;
	int edns, nx;
};

static void dns_question(const struct flow *f, uint32_t txn, struct rng *r,
			 struct dns_q *q)
{
	static const uint16_t types[] = {1, 28, 15, 16};
	static const uint16_t type_w[] = {620, 270, 50, 60};

	rng_seed(r, f->key ^ mix64(txn + 0x51));
	q->id = (uint16_t)rng_next(r);
	if (f->kind == K_DNS_FRAG) {
		snprintf(q->name, sizeof(q->name), "_keys%u.%s",
			 rng_below(r, 100),
			 domains[rng_below(r, NELEM(domains))]);
		q->type = 16;
		q->edns = 1;
		q->nx = 0;
		return;
	}
	q->type = types[rng_pick(r, type_w, NELEM(types))];
	if (rng_pm(r, 300))
		snprintf(q->name, sizeof(q->name), "%s%u.%s",
			 hostpart[rng_below(r, NELEM(hostpart))],
			 rng_below(r, 100),
			 domains[rng_below(r, NELEM(domains))]);
	else
		snprintf(q->name, sizeof(q->name), "%s.%s",
			 hostpart[rng_below(r, NELEM(hostpart))],
			 domains[rng_below(r, NELEM(domains))]);
	q->edns = rng_pm(r, 500);
	q->nx = rng_pm(r, 80);
}

/* Appends a domain name in label form (RFC 1035 section 3.1). */
static size_t dns_name(uint8_t *p, const char *name)
{
	size_t n = 0;

	while (*name) {
		const char *dot = strchr(name, '.');
		size_t l = dot ? (size_t)(dot - name) : strlen(name);

		p[n++] = (uint8_t)l;
		memcpy(p + n, name, l);
		n += l;
		name += l + (dot ? 1 : 0);
	}
	p[n++] = 0;
	return n;
}

static size_t dns_rr(uint8_t *p, uint16_t owner, uint16_t type, uint32_t ttl,
		     uint16_t rdlen)
{
	put_be16(p, owner);
	put_be16(p + 2, type);
	put_be16(p + 4, 1);
	put_be32(p + 6, ttl);
	put_be16(p + 10, rdlen);
	return 12;
}

/*
 * A DNS message (RFC 1035 section 4.1) of transaction txn: the query, or
 * its response. big makes a TXT response of about f->dlen - 8 bytes.
 * Returns the message length; p has room for 9000 bytes.
 */
static size_t dns_build(const struct flow *f, uint32_t txn, int resp,
			uint8_t *p)
{
	struct rng r;
	struct dns_q q;
	size_t n = 12, qname = 12;
	uint16_t an = 0;
	uint32_t i, ttl;

	dns_question(f, txn, &r, &q);
	put_be16(p, q.id);
	put_be16(p + 2, resp ? (uint16_t)(0x8180 | (q.nx ? 3 : 0)) : 0x0100);
	put_be16(p + 4, 1);
	put_be16(p + 6, 0);
	put_be16(p + 8, 0);
	put_be16(p + 10, (uint16_t)q.edns);
	n += dns_name(p + n, q.name);
	put_be16(p + n, q.type);
	put_be16(p + n + 2, 1);
	n += 4;
	ttl = (uint32_t)rng_logu(&r, 30, 86400);
	if (resp && !q.nx) {
		uint16_t owner = 0xc000 | (uint16_t)qname;

		if ((q.type == 1 || q.type == 28) && rng_pm(&r, 300)) {
			char cname[96];
			size_t at;

			snprintf(cname, sizeof(cname), "edge%u.%s",
				 rng_below(&r, 64), domains[rng_below(&r, 4)]);
			at = n + 12;
			n += dns_rr(p + n, owner, 5, ttl,
				    (uint16_t)dns_name(p + at, cname));
			n += p[n - 1] | (size_t)p[n - 2] << 8;
			owner = 0xc000 | (uint16_t)at;
			an++;
		}
		if (q.type == 1 || q.type == 28) {
			uint32_t k = (uint32_t)rng_range(&r, 1, 4);

			for (i = 0; i < k; i++, an++) {
				if (q.type == 1) {
					n += dns_rr(p + n, owner, 1, ttl, 4);
					p[n] = 10;
					p[n + 1] = 200;
					p[n + 2] = (uint8_t)rng_below(&r, 4);
					p[n + 3] =
						(uint8_t)(rng_below(&r, 250) +
							  2);
					n += 4;
				} else {
					n += dns_rr(p + n, owner, 28, ttl, 16);
					memcpy(p + n,
					       "\xfd\x12\x34\x56\x78\x9a\xff\x00",
					       8);
					memset(p + n + 8, 0, 6);
					put_be16(p + n + 14,
						 (uint16_t)rng_range(&r, 1,
								     999));
					n += 16;
				}
			}
		} else if (q.type == 15) {
			for (i = 0; i < 2; i++, an++) {
				size_t at = n + 12, l;

				put_be16(p + at, (uint16_t)(10 * (i + 1)));
				l = dns_name(p + at + 2, i ? "mx2.example.net"
							   : "mx1.example.net");
				n += dns_rr(p + n, owner, 15, ttl,
					    (uint16_t)(l + 2));
				n += l + 2;
			}
		} else if (q.type == 16) {
			uint32_t k = 1, len = 0, j;

			if (f->kind == K_DNS_FRAG)
				k = f->dtarget / 268 + 1;
			for (i = 0; i < k; i++, an++) {
				len = f->kind == K_DNS_FRAG
					      ? 255
					      : (uint32_t)rng_range(&r, 20,
								    120);
				n += dns_rr(p + n, owner, 16, ttl,
					    (uint16_t)(len + 1));
				p[n++] = (uint8_t)len;
				for (j = 0; j < len; j++)
					p[n++] = (uint8_t)
						text_chars[rng_next(&r) % 62];
			}
		}
	}
	put_be16(p + 6, an);
	if (q.edns) {
		/* OPT pseudo-RR (RFC 6891 section 6.1.2) */
		p[n++] = 0;
		put_be16(p + n, 41);
		put_be16(p + n + 2, f->kind == K_DNS_FRAG ? 4096 : 1232);
		put_be32(p + n + 4, 0);
		put_be16(p + n + 8, 0);
		n += 10;
	}
	return n;
}

/* NTP timestamp (RFC 5905 section 6) of ns since the Unix epoch. */
static void put_ntp(uint8_t *p, uint64_t ns)
{
	uint64_t s = ns / NS_PER_S, frac = ns % NS_PER_S;

	put_be32(p, (uint32_t)(s + 2208988800ULL));
	put_be32(p + 4, (uint32_t)((frac << 32) / NS_PER_S));
}

static size_t build_ntp(const struct flow *f, const struct pkt *p, uint8_t *u)
{
	uint64_t ts = p->ts;

	memset(u, 0, 48);
	if (!p->dir) {
		u[0] = 0x23; /* LI 0, version 4, mode 3 (client) */
		u[2] = 6;
		u[3] = 0xe9;
		put_ntp(u + 40, p->ts);
		return 48;
	}
	u[0] = 0x24; /* mode 4 (server) */
	u[1] = 2;
	u[2] = 6;
	u[3] = 0xe7;
	put_be32(u + 4, 0x00000120);
	put_be32(u + 8, 0x00000350);
	u[12] = 10, u[13] = 0, u[14] = 0, u[15] = 1;
	put_ntp(u + 16, ts - (f->key % 60 + 1) * NS_PER_S);
	put_ntp(u + 24, p->aux);
	put_ntp(u + 32, ts - 60000);
	put_ntp(u + 40, ts - 20000);
	return 48;
}

static size_t build_rtp(const struct flow *f, const struct pkt *p, uint8_t *u)
{
	int d = p->dir;
	uint32_t n = (uint32_t)p->off, len = 160;
	uint64_t k = f->key ^ (d ? 0x2545f491ULL : 0x9e3779b9ULL);

	if (f->pt == 111)
		len = 60 + (uint32_t)(mix64(k + n) % 100);
	/* RTP fixed header (RFC 3550 section 5.1) */
	u[0] = 0x80;
	u[1] = (uint8_t)((n == 0 ? 0x80 : 0) | f->pt);
	put_be16(u + 2, (uint16_t)(f->rtpseq[d] + n));
	put_be32(u + 4, f->rtpts[d] + n * (f->pt == 111 ? 960 : 160));
	put_be32(u + 8, f->ssrc[d]);
	prf_fill(u + 12, k, (uint64_t)n * 256, len);
	return 12 + len;
}

/* ICMP / ICMPv6 echo (RFC 792, RFC 4443 section 4.1); payload of ping. */
static size_t build_echo(const struct flow *f, const struct pkt *p, uint8_t *c)
{
	uint64_t req = p->dir ? p->aux : p->ts;
	size_t n = f->icmp_len, i;

	if (f->v6)
		c[0] = p->dir ? 129 : 128;
	else
		c[0] = p->dir ? 0 : 8;
	c[1] = 0;
	c[2] = c[3] = 0;
	put_be16(c + 4, f->h[0].port);
	put_be16(c + 6, (uint16_t)p->off);
	if (n == 32) {
		memcpy(c + 8, "abcdefghijklmnopqrstuvwabcdefghi", 32);
	} else if (n == 56) {
		put_le64(c + 8, req / NS_PER_S);
		put_le64(c + 16, req % NS_PER_S / NS_PER_US);
		for (i = 16; i < n; i++)
			c[8 + i] = (uint8_t)(i);
	} else {
		prf_fill(c + 8, f->key, 0, (uint32_t)n);
	}
	return 8 + n;
}

static size_t build_arp(const struct flow *f, int dir, uint8_t *fr)
{
	uint8_t gw[4] = {f->h[0].addr[0], f->h[0].addr[1], f->h[0].addr[2], 1};
	uint8_t *a = fr + 14;

	if (!dir)
		memset(fr, 0xff, 6);
	else
		memcpy(fr, f->h[0].mac, 6);
	memcpy(fr + 6, dir ? gw_mac : f->h[0].mac, 6);
	put_be16(fr + 12, 0x0806);
	/* ARP (RFC 826) for IPv4 over Ethernet */
	put_be16(a, 1);
	put_be16(a + 2, 0x0800);
	a[4] = 6;
	a[5] = 4;
	put_be16(a + 6, dir ? 2 : 1);
	memcpy(a + 8, dir ? gw_mac : f->h[0].mac, 6);
	memcpy(a + 14, dir ? gw : f->h[0].addr, 4);
	if (dir)
		memcpy(a + 18, f->h[0].mac, 6);
	else
		memset(a + 18, 0, 6);
	memcpy(a + 24, dir ? f->h[0].addr : gw, 4);
	if (!dir)
		return 42;
	memset(fr + 42, 0, 18); /* padded to the Ethernet minimum */
	return 60;
}

/*
 * Builds the frame of planned packet p into fr. Its bytes depend on the
 * planned time only, never on the time written in the file, so pcap and
 * --usec output carry the same frames.
 */
static size_t build_frame(struct gen *g, struct flow *f, const struct pkt *p,
			  uint8_t *fr)
{
	int dir = p->dir;
	size_t l2, l3, l4len = 0;
	uint8_t *ip, *l4;

	if (p->what == W_ARP)
		return build_arp(f, dir, fr);
	l2 = put_eth(fr, f, dir, f->v6 ? 0x86dd : 0x0800);
	ip = fr + l2;
	l3 = f->v6 ? 40 : 20;
	l4 = ip + l3;
	switch (p->what) {
	case W_TCP:
		l4len = build_tcp(f, p, l4);
		put_ip(ip, f, dir, 6, l4len, 0x4000);
		l4_csum(f, ip, l4, l4len, 6, 16, 0);
		break;
	case W_DNS_Q:
	case W_DNS_R:
	case W_NTP:
	case W_RTP:
		if (p->what == W_NTP)
			l4len = 8 + build_ntp(f, p, l4 + 8);
		else if (p->what == W_RTP)
			l4len = 8 + build_rtp(f, p, l4 + 8);
		else
			l4len = 8 + dns_build(f, (uint32_t)p->off,
					      p->what == W_DNS_R, l4 + 8);
		put_be16(l4, f->h[dir].port);
		put_be16(l4 + 2, f->h[!dir].port);
		put_be16(l4 + 4, (uint16_t)l4len);
		put_be16(l4 + 6, 0);
		put_ip(ip, f, dir, 17, l4len, 0);
		l4_csum(f, ip, l4, l4len, 17, 6, 1);
		break;
	case W_ECHO:
		l4len = build_echo(f, p, l4);
		put_ip(ip, f, dir, f->v6 ? 58 : 1, l4len, 0);
		if (f->v6)
			l4_csum(f, ip, l4, l4len, 58, 2, 0);
		else
			csum_store(l4 + 2, csum_add(0, l4, l4len), 0);
		break;
	case W_FRAG: {
		/* IPv4 fragment (RFC 791 section 3.2) of a UDP datagram */
		uint8_t *d = g->scratch;
		uint32_t off = p->extra * 1480u, n;
		uint16_t fl;

		l4len = 8 + dns_build(f, (uint32_t)p->off, 1, d + 8);
		put_be16(d, f->h[dir].port);
		put_be16(d + 2, f->h[!dir].port);
		put_be16(d + 4, (uint16_t)l4len);
		put_be16(d + 6, 0);
		/* pseudo-header with this frame's addresses */
		memcpy(ip + 12, f->h[dir].addr, 4);
		memcpy(ip + 16, f->h[!dir].addr, 4);
		l4_csum(f, ip, d, l4len, 17, 6, 1);
		n = (uint32_t)l4len - off < 1480 ? (uint32_t)l4len - off : 1480;
		memcpy(l4, d + off, n);
		fl = (uint16_t)(off / 8);
		if (off + n < l4len)
			fl |= 0x2000;
		f->h[dir].ipid = (uint16_t)(f->fragid + p->off);
		put_ip(ip, f, dir, 17, n, fl);
		if (p->extra)
			f->frags[dir]++;
		l4len = n;
		break;
	}
	default:
		break;
	}
	return l2 + l3 + l4len;
}

/* ---- flows: creation and the 5-tuple set -------------------------------- */

/*
 * Adds a 5-tuple hash to the set; returns 0 if it was there already. Out
 * of memory, the generator stops (g->err) and the tuple counts as new.
 */
static int tuple_add(struct gen *g, uint64_t h)
{
	uint64_t i, mask;

	if (!h)
		h = 1;
	if (g->ntuples * 2 >= g->tuples_cap) {
		uint64_t ncap = g->tuples_cap ? g->tuples_cap * 2 : 1 << 16;
		uint64_t *nt = calloc(ncap, sizeof(*nt)), j;

		if (!nt) {
			g->err = -ENOMEM;
			g->stop = 1;
			return 1;
		}
		for (j = 0; j < g->tuples_cap; j++) {
			uint64_t v = g->tuples[j];

			if (!v)
				continue;
			for (i = v & (ncap - 1); nt[i];
			     i = (i + 1) & (ncap - 1))
				;
			nt[i] = v;
		}
		free(g->tuples);
		g->tuples = nt;
		g->tuples_cap = ncap;
	}
	mask = g->tuples_cap - 1;
	for (i = h & mask; g->tuples[i]; i = (i + 1) & mask)
		if (g->tuples[i] == h)
			return 0;
	g->tuples[i] = h;
	g->ntuples++;
	return 1;
}

/* Hash of the flow's endpoints without VLAN, as tshark sees a stream. */
static uint64_t tuple_hash(const struct flow *f)
{
	uint64_t h = 0x243f6a8885a308d3ULL ^ f->proto ^ (uint64_t)f->v6 << 8;
	int i, k;

	for (i = 0; i < 2; i++) {
		uint64_t a = 0, b = 0;

		for (k = 0; k < 8; k++) {
			a = a << 8 | f->h[i].addr[k];
			b = b << 8 | f->h[i].addr[8 + k];
		}
		/* order-independent over the two endpoints */
		h += mix64(mix64(a ^ (uint64_t)f->h[i].port << 48) ^ b);
	}
	return mix64(h);
}

static void client_addr(struct flow *f, uint32_t host, uint32_t subnet)
{
	struct host *c = &f->h[0];

	memset(c->addr, 0, 16);
	if (f->v6) {
		static const uint8_t pre[6] = {0xfd, 0x12, 0x34,
					       0x56, 0x78, 0x9a};
		uint64_t iid = mix64(host * 0x1000193ULL + subnet);

		memcpy(c->addr, pre, 6);
		put_be16(c->addr + 6, (uint16_t)(0x0100 + subnet));
		put_be32(c->addr + 8, (uint32_t)(iid >> 32) & 0xfdffffff);
		put_be32(c->addr + 12, (uint32_t)iid);
	} else {
		c->addr[0] = 10;
		c->addr[1] = (uint8_t)subnet;
		c->addr[2] = (uint8_t)(host / 250);
		c->addr[3] = (uint8_t)(host % 250 + 2);
	}
	c->mac[0] = 0x02;
	c->mac[1] = 0x00;
	put_be32(c->mac + 2, (uint32_t)mix64((uint64_t)subnet << 32 | host));
}

static void server_addr(struct flow *f, uint32_t net, uint32_t host)
{
	struct host *s = &f->h[1];

	memset(s->addr, 0, 16);
	if (f->v6) {
		static const uint8_t pre[6] = {0xfd, 0x12, 0x34,
					       0x56, 0x78, 0x9a};

		memcpy(s->addr, pre, 6);
		put_be16(s->addr + 6, (uint16_t)(0xff00 + net));
		put_be16(s->addr + 14, (uint16_t)host);
	} else {
		s->addr[0] = 10;
		s->addr[1] = (uint8_t)(200 + net);
		s->addr[2] = (uint8_t)(host / 250);
		s->addr[3] = (uint8_t)(host % 250 + 2);
	}
}

static const uint16_t vids[] = {10,  20,  30,	100,  101,
				200, 300, 1000, 2001, 4000};

/* Chooses addresses and ports; 5-tuples never repeat within a file. */
static void flow_endpoints(struct gen *g, struct flow *f)
{
	struct rng *r = &f->rng;
	uint32_t subnet, tries = 0;

	if (f->nvlan)
		subnet = 100 + (f->nvlan == 2 ? 10 : 0) + f->vidx;
	else
		subnet = (uint32_t)rng_logu(r, 1, 15);
	for (;;) {
		uint32_t host = (uint32_t)rng_logu(r, 1, 4000);

		client_addr(f, host, subnet);
		switch (f->kind) {
		case K_DNS:
		case K_DNS_FRAG:
			server_addr(f, 0,
				    f->v6 ? 0x53
					  : (uint32_t)rng_below(r, 2) * 250 +
						    51);
			f->h[1].port = 53;
			break;
		case K_NTP:
			server_addr(f, 0, f->v6 ? 0x123 : 121);
			f->h[1].port = 123;
			break;
		case K_RTP:
			server_addr(f, 50, (uint32_t)rng_range(r, 1, 20));
			f->h[1].port =
				(uint16_t)(16384 + 2 * rng_below(r, 417));
			break;
		default:
			server_addr(f, (uint32_t)rng_below(r, 4),
				    (uint32_t)rng_logu(r, 1, 300));
			break;
		}
		if (f->kind == K_RTP) {
			f->h[0].port =
				(uint16_t)(30100 + 2 * rng_below(r, 950));
		} else if (f->kind == K_ICMP || f->kind == K_ICMP6) {
			f->h[0].port = (uint16_t)rng_range(r, 1, 65535);
			f->h[1].port = f->h[0].port;
		} else if (f->kind != K_ARP) {
			uint32_t x = rng_below(r, 100);

			if (x < 70)
				f->h[0].port =
					(uint16_t)rng_range(r, 32768, 60999);
			else if (x < 90)
				f->h[0].port =
					(uint16_t)rng_range(r, 49152, 65535);
			else
				f->h[0].port = (uint16_t)rng_range(
					r,
					f->h[1].port < 1024 ? 1024
							    : f->h[1].port + 1u,
					65535);
		}
		if (f->kind == K_ARP || tuple_add(g, tuple_hash(f)))
			break;
		if (++tries > 1000) {
			subnet = (uint32_t)rng_logu(r, 1, 15) +
				 16 * (tries / 1000 % 6);
		}
	}
}

static void flow_init(struct gen *g, struct flow *f, uint64_t start)
{
	struct rng *r;
	int k;

	memset(f, 0, offsetof(struct flow, m));
	f->idx = -1;
	k = rng_pick(&g->rng, kind_weight, K_COUNT);
	f->kind = (uint8_t)k;
	f->serial = g->serial++;
	rng_seed(&f->rng, g->o->seed * 0x9e3779b97f4a7c15ULL ^
				  mix64(f->serial + 0x1234567));
	r = &f->rng;
	f->key = rng_next(r);
	f->t0 = start;
	f->t = start - 1;
	f->rtt = (uint32_t)rng_logu(r, 100000, 150 * NS_PER_MS);
	if (k == K_ARP) {
		f->h[0].addr[0] = 10;
		f->h[0].addr[1] = (uint8_t)rng_logu(r, 1, 15);
		f->h[0].addr[2] = (uint8_t)rng_below(r, 16);
		f->h[0].addr[3] = (uint8_t)rng_range(r, 2, 251);
		put_be32(f->h[0].mac + 2, (uint32_t)rng_next(r));
		f->h[0].mac[0] = 2;
		return;
	}
	g->created++;
	f->v6 = k == K_ICMP6 || ((k == K_TCP || k == K_TCP_SYN || k == K_DNS) &&
				 rng_pm(r, 250));
	if (rng_pm(r, 90)) {
		f->nvlan = 1;
		f->vidx = (uint8_t)rng_below(r, NELEM(vids));
		f->vlan[0] = vids[f->vidx];
		if (rng_pm(r, 110)) {
			f->nvlan = 2;
			f->notes |= N_QINQ;
			f->vidx = (uint8_t)rng_below(r, 3);
			f->vlan[0] = (uint16_t)(rng_pm(r, 500) ? 100 : 200);
			f->vlan[1] = vids[f->vidx];
		}
	}
	f->proto = 17;
	switch (k) {
	case K_TCP:
	case K_TCP_SYN: {
		uint16_t w[N_SERVICES];
		int i;

		for (i = 0; i < N_SERVICES; i++)
			w[i] = services[i].weight;
		f->svc = (uint8_t)rng_pick(r, w, N_SERVICES);
		f->app = services[f->svc].app;
		f->h[1].port = services[f->svc].port;
		f->proto = 6;
		break;
	}
	case K_ICMP:
		f->proto = 1;
		break;
	case K_ICMP6:
		f->proto = 58;
		break;
	default:
		break;
	}
	flow_endpoints(g, f);
	f->h[0].ttl = 64;
	f->h[1].ttl = (uint8_t)(64 - rng_range(r, 2, 14));
	if (rng_pm(r, 100))
		f->h[1].ttl = (uint8_t)(128 - rng_range(r, 2, 14));
	f->h[0].ipid = (uint16_t)rng_next(r);
	f->h[1].ipid = (uint16_t)rng_next(r);
	f->h[0].flowlabel = (uint32_t)rng_next(r) & 0xfffff;
	f->h[1].flowlabel = (uint32_t)rng_next(r) & 0xfffff;

	switch (k) {
	case K_TCP:
	case K_TCP_SYN: {
		int i;

		f->ts_on = rng_pm(r, 750);
		for (i = 0; i < 2; i++) {
			f->isn[i] = (uint32_t)rng_next(r);
			f->tsbase[i] = (uint32_t)rng_next(r);
			f->wscale[i] = (uint8_t)(f->ts_on ? 7 : 8);
			f->win[i] = (uint16_t)rng_range(r, 500, 2050);
			f->mss[i] = (uint16_t)((f->v6 ? 1440 : 1460) -
					       (f->ts_on ? 12 : 0));
		}
		f->gap = (uint32_t)rng_logu(r, 1200, 120000);
		f->ackd = (uint32_t)rng_logu(r, 5000, 60000);
		f->cwnd_max = (uint32_t)rng_range(r, 10, 32) * 2;
		f->close = (uint8_t)rng_pick(r, close_weight, C_COUNT);
		if (k == K_TCP_SYN) {
			f->left = (uint32_t)rng_range(r, 1, 3);
			if (rng_pm(r, 300)) {
				f->notes |= N_REFUSED;
				f->left = 1;
			}
			f->close = C_OPEN;
			break;
		}
		if (rng_pm(r, 20))
			f->notes |= N_SYNRETX;
		if (rng_pm(r, 80))
			f->notes |= N_RETRANS;
		if (rng_pm(r, 50))
			f->notes |= N_OOO;
		switch (f->app) {
		case A_SSH:
			f->rounds = rng_pm(r, 200)
					    ? 2
					    : (uint32_t)rng_range(r, 3, 60);
			break;
		case A_MYSQL:
		case A_PGSQL:
			f->rounds = (uint32_t)rng_range(r, 2, 30);
			break;
		default: {
			uint32_t x = rng_below(r, 100);

			f->rounds = x < 60   ? 1
				    : x < 85 ? (uint32_t)rng_range(r, 2, 4)
					     : (uint32_t)rng_range(r, 5, 20);
			break;
		}
		}
		f->phase = TP_SYN;
		if ((f->app == A_TLS || f->app == A_HTTP) && rng_pm(r, 40)) {
			/* the capture starts in the middle of the session */
			f->notes |= N_NOSYN;
			f->notes &= (uint16_t)~N_SYNRETX;
			f->nxt[0] = rng_range(r, 1000, 1000000);
			f->nxt[1] = rng_range(r, 10000, 100000000);
			f->rcvd[0] = f->nxt[0];
			f->rcvd[1] = f->nxt[1];
			f->tslast[1] = f->tsbase[1];
			f->step = f->app == A_TLS ? 3 : 0;
			f->sdir = 1;
			f->phase = TP_MSG;
		}
		break;
	}
	case K_DNS:
		f->left = rng_pm(r, 850) ? 1 : (uint32_t)rng_range(r, 2, 4);
		break;
	case K_DNS_FRAG:
		f->notes |= N_FRAG;
		f->left = 1;
		f->dtarget = (uint32_t)rng_logu(r, 1700, 8000);
		f->fragid = (uint16_t)rng_next(r);
		break;
	case K_NTP:
		f->left = rng_pm(r, 200) ? (uint32_t)rng_range(r, 4, 8) : 1;
		break;
	case K_RTP:
		f->left = (uint32_t)rng_logu(r, 100, 1000); /* 2 s .. 20 s */
		f->pt = (uint8_t)(rng_pm(r, 500)   ? 111
				  : rng_pm(r, 500) ? 0
						   : 8);
		f->ssrc[0] = (uint32_t)rng_next(r);
		f->ssrc[1] = (uint32_t)rng_next(r);
		f->rtpseq[0] = (uint16_t)rng_next(r);
		f->rtpseq[1] = (uint16_t)rng_next(r);
		f->rtpts[0] = (uint32_t)rng_next(r);
		f->rtpts[1] = (uint32_t)rng_next(r);
		break;
	default: /* echo */
		f->left = (uint32_t)rng_logu(r, 1, 8);
		if (rng_pm(r, 100)) {
			f->icmp_len = f->v6 ? 1452 : 1472;
			f->notes |= N_BIG;
		} else {
			f->icmp_len = rng_pm(r, 300) ? 32 : 56;
		}
		break;
	}
	if (f->kind == K_DNS_FRAG) {
		f->dlen = (uint32_t)(8 + dns_build(f, 0, 1, g->scratch));
	}
}

/* ---- the summary -------------------------------------------------------- */

static const char *const app_kind[A_COUNT] = {
	"tcp-tls", "tcp-http", "tcp-ssh", "tcp-smtp", "tcp-mysql", "tcp-pgsql",
};

static const char *kind_name(const struct row *w)
{
	switch (w->kind) {
	case K_TCP:
		return app_kind[services[w->svc].app];
	case K_TCP_SYN:
		return w->notes & N_REFUSED ? "tcp-refused" : "tcp-syn";
	case K_DNS:
		return "udp-dns";
	case K_DNS_FRAG:
		return "udp-dns-frag";
	case K_NTP:
		return "udp-ntp";
	case K_RTP:
		return "udp-rtp";
	case K_ICMP:
		return "icmp-echo";
	default:
		return "icmp6-echo";
	}
}

static void row_store(struct gen *g, const struct flow *f)
{
	struct row *w;
	int i;

	if (!g->rows || f->idx < 0)
		return;
	w = &g->rows[f->idx];
	w->kind = f->kind;
	w->svc = f->svc;
	w->proto = f->proto;
	w->v6 = f->v6;
	w->nvlan = f->nvlan;
	w->close = f->close;
	w->notes = f->notes;
	w->retrans = f->retrans;
	w->first = f->first;
	w->last = f->last;
	for (i = 0; i < 2; i++) {
		w->vlan[i] = f->vlan[i];
		w->port[i] = f->h[i].port;
		memcpy(w->addr[i], f->h[i].addr, 16);
		w->pk[i] = f->pk[i];
		w->by[i] = f->by[i];
		w->frags[i] = f->frags[i];
	}
}

static int write_summary(struct gen *g, const char *path)
{
	FILE *s = fopen(path, "w");
	uint64_t i;
	int err = 0;

	if (!s)
		return -errno;
	fprintf(s, "idx\tkind\tproto\tclient\tclient_port\tserver\tserver_port"
		   "\tvlan\tpkts_c2s\tbytes_c2s\tpkts_s2c\tbytes_s2c\tfirst_ns"
		   "\tlast_ns\tvlan_inner\tlater_frags_c2s\tlater_frags_s2c"
		   "\tretrans\tnotes\n");
	for (i = 0; i < g->nrows; i++) {
		const struct row *w = &g->rows[i];
		char a[2][INET6_ADDRSTRLEN], notes[128];
		int k;

		for (k = 0; k < 2; k++)
			inet_ntop(w->v6 ? AF_INET6 : AF_INET, w->addr[k], a[k],
				  sizeof(a[k]));
		notes[0] = 0;
		if (w->proto == 6)
			snprintf(notes, sizeof(notes), "%s",
				 w->kind == K_TCP_SYN
					 ? (w->notes & N_REFUSED ? "refused"
								 : "unanswered")
					 : close_name[w->close]);
		if (w->notes & N_NOSYN)
			strcat(notes, ",nosyn");
		if (w->notes & N_SYNRETX)
			strcat(notes, ",synretx");
		if (w->notes & N_RETRANS)
			strcat(notes, ",retrans");
		if (w->notes & N_OOO)
			strcat(notes, ",ooo");
		if (w->notes & N_FRAG)
			strcat(notes, ",frag");
		if (w->notes & N_QINQ)
			strcat(notes, ",qinq");
		if (w->notes & N_BIG)
			strcat(notes, ",big");
		fprintf(s,
			"%" PRIu64 "\t%s\t%u\t%s\t%u\t%s\t%u\t%u\t%" PRIu64
			"\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64
			"\t%" PRIu64 "\t%u\t%u\t%u\t%u\t%s\n",
			i, kind_name(w), w->proto, a[0], w->port[0], a[1],
			w->port[1], w->nvlan ? w->vlan[0] : 0, w->pk[0],
			w->by[0], w->pk[1], w->by[1], w->first, w->last,
			w->nvlan == 2 ? w->vlan[1] : 0, w->frags[0],
			w->frags[1], w->retrans,
			notes[0] == ',' ? notes + 1
			: notes[0]	? notes
					: "-");
	}
	if (fflush(s) || ferror(s))
		err = -EIO;
	if (fclose(s) && !err)
		err = -errno;
	return err;
}

/* ---- the scheduler ------------------------------------------------------ */

static inline uint64_t flow_next_ts(const struct flow *f)
{
	return f->q[f->qh].ts;
}

static void heap_down(struct gen *g, uint32_t i)
{
	struct flow **h = g->heap, *x = h[i];
	uint64_t k = flow_next_ts(x);

	for (;;) {
		uint32_t c = 2 * i + 1;

		if (c >= g->nheap)
			break;
		if (c + 1 < g->nheap &&
		    flow_next_ts(h[c + 1]) < flow_next_ts(h[c]))
			c++;
		if (flow_next_ts(h[c]) >= k)
			break;
		h[i] = h[c];
		i = c;
	}
	h[i] = x;
}

static void heap_up(struct gen *g, uint32_t i)
{
	struct flow **h = g->heap, *x = h[i];
	uint64_t k = flow_next_ts(x);

	while (i) {
		uint32_t p = (i - 1) / 2;

		if (flow_next_ts(h[p]) <= k)
			break;
		h[i] = h[p];
		i = p;
	}
	h[i] = x;
}

static void limits(struct gen *g, uint64_t now)
{
	const struct opts *o = g->o;

	if (o->have_flows && g->created >= o->flows)
		g->stop = 1;
	if (o->have_size && g->out.file_bytes >= o->size)
		g->stop = g->winddown = 1;
	if (o->have_duration && now >= g->end_ts)
		g->stop = g->winddown = 1;
}

/* Starts a flow at start in a free slot and queues it; 0 if none. */
static int flow_start(struct gen *g, uint64_t start)
{
	struct flow *f;

	while (!g->stop) {
		f = g->free[--g->nfree];
		flow_init(g, f, start);
		if (flow_plan(g, f)) {
			g->heap[g->nheap] = f;
			heap_up(g, g->nheap++);
			limits(g, start);
			return 1;
		}
		g->free[g->nfree++] = f;
		limits(g, start);
	}
	return 0;
}

static int row_reserve(struct gen *g)
{
	struct row *r;
	uint64_t cap;

	if (g->nrows < g->rows_cap)
		return 0;
	cap = g->rows_cap ? g->rows_cap * 2 : 4096;
	r = realloc(g->rows, cap * sizeof(*r));
	if (!r)
		return -ENOMEM;
	g->rows = r;
	g->rows_cap = cap;
	return 0;
}

static int gen_run(struct gen *g)
{
	const struct opts *o = g->o;
	uint64_t t0 = g->base_ts, spread;
	uint32_t i;

	spread = (uint64_t)o->concurrency * 50 * NS_PER_US;
	for (i = 0; i < o->concurrency && !g->stop; i++)
		flow_start(g, t0 + 1 + rng_range(&g->rng, 0, spread));
	while (g->nheap) {
		struct flow *f = g->heap[0];
		struct pkt *p = &f->q[f->qh];
		uint64_t planned = p->ts, ts = p->ts;
		uint8_t *fr;
		size_t len;

		if (o->fmt == FMT_PCAP_US || o->fmt == FMT_PCAPNG_US) {
			ts -= ts % NS_PER_US;
			if (ts <= g->last_ts)
				ts = (g->last_ts / NS_PER_US + 1) * NS_PER_US;
		} else if (ts <= g->last_ts) {
			ts = g->last_ts + 1;
		}
		g->last_ts = ts;
		if (f->idx < 0 && f->kind != K_ARP) {
			f->idx = (int64_t)g->next_idx++;
			f->first = ts;
			if (o->summary) {
				if (row_reserve(g))
					return -ENOMEM;
				memset(&g->rows[g->nrows++], 0,
				       sizeof(struct row));
			}
		}
		fr = out_frame(&g->out);
		len = build_frame(g, f, p, fr);
		out_commit(&g->out, ts, (uint32_t)len);
		if (f->kind == K_ARP) {
			g->arp_frames++;
		} else {
			f->pk[p->dir]++;
			f->by[p->dir] += len;
			f->last = ts;
		}
		f->qh = (uint8_t)((f->qh + 1) % QCAP);
		f->qn--;
		limits(g, planned);
		if (f->qn || flow_plan(g, f)) {
			heap_down(g, 0); /* f is the root; its time grew */
		} else {
			row_store(g, f);
			g->free[g->nfree++] = f;
			g->heap[0] = g->heap[--g->nheap];
			if (g->nheap)
				heap_down(g, 0);
			flow_start(g, planned + rng_logu(&g->rng, 1000,
							 2 * NS_PER_MS));
		}
		if (g->out.err)
			return g->out.err;
	}
	out_flush(&g->out, 1);
	return g->err ? g->err : g->out.err;
}

/* ---- options ------------------------------------------------------------ */

static void usage(FILE *s)
{
	fprintf(s,
		"usage: fvgen -w OUT.pcap [options]\n"
		"Writes deterministic synthetic traffic (docs/generator.md).\n"
		"  -w FILE              output file, - for stdout\n"
		"  --seed N             PRNG seed (default 1)\n"
		"  --flows N            number of flows (default %d)\n"
		"  --size BYTES         write flows until the file has BYTES"
		" (K/M/G = 1024^n)\n"
		"  --start SECONDS      epoch time of the first packet"
		" (default %llu)\n"
		"  --duration SECONDS   start no flow after START + SECONDS\n"
		"  --concurrency N      flows open at once (default %d)\n"
		"  --summary FILE.tsv   one row per flow: the ground truth\n"
		"  --usec               pcap/pcapng with microsecond"
		" timestamps\n"
		"  --pcapng             pcapng instead of pcap\n"
		"  -q, --quiet          no statistics on stderr\n",
		DEFAULT_FLOWS, (unsigned long long)DEFAULT_START,
		DEFAULT_CONCURRENCY);
}

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;

	if (!s || !*s || *s == '-')
		return -1;
	errno = 0;
	*v = strtoull(s, &end, 0);
	return errno || *end ? -1 : 0;
}

/* BYTES with an optional K/M/G/T suffix (powers of 1024). */
static int parse_size(const char *s, uint64_t *v)
{
	char *end;
	unsigned long long n;
	int shift = 0;

	if (!s || !*s || *s == '-')
		return -1;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 'k':
	case 'K':
		shift = 10;
		break;
	case 'm':
	case 'M':
		shift = 20;
		break;
	case 'g':
	case 'G':
		shift = 30;
		break;
	case 't':
	case 'T':
		shift = 40;
		break;
	case 0:
		break;
	default:
		return -1;
	}
	if (*end)
		end++;
	if (*end == 'i')
		end++;
	if (*end == 'B')
		end++;
	if (*end || (shift && n > (~0ULL >> shift)))
		return -1;
	*v = (uint64_t)n << shift;
	return 0;
}

/* Seconds with up to 9 decimals, as ns. */
static int parse_secs(const char *s, uint64_t *ns)
{
	uint64_t whole = 0, frac = 0, scale = NS_PER_S;
	const char *p = s;

	if (!*p)
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (whole > 18000000000ULL)
			return -1;
		whole = whole * 10 + (uint64_t)(*p - '0');
	}
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++) {
			if (scale > 1) {
				scale /= 10;
				frac += (uint64_t)(*p - '0') * scale;
			}
		}
	}
	if (*p || p == s)
		return -1;
	*ns = whole * NS_PER_S + frac;
	return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	enum {
		O_SEED = 256,
		O_FLOWS,
		O_SIZE,
		O_START,
		O_DURATION,
		O_CONC,
		O_SUMMARY,
		O_USEC,
		O_PCAPNG
	};
	static const struct option lo[] = {
		{"seed", required_argument, NULL, O_SEED},
		{"flows", required_argument, NULL, O_FLOWS},
		{"size", required_argument, NULL, O_SIZE},
		{"start", required_argument, NULL, O_START},
		{"duration", required_argument, NULL, O_DURATION},
		{"concurrency", required_argument, NULL, O_CONC},
		{"summary", required_argument, NULL, O_SUMMARY},
		{"usec", no_argument, NULL, O_USEC},
		{"pcapng", no_argument, NULL, O_PCAPNG},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c, usec = 0, ng = 0;
	uint64_t v;

	memset(o, 0, sizeof(*o));
	o->seed = 1;
	o->flows = DEFAULT_FLOWS;
	o->start = DEFAULT_START * NS_PER_S;
	o->concurrency = DEFAULT_CONCURRENCY;
	while ((c = getopt_long(argc, argv, "w:qh", lo, NULL)) != -1) {
		switch (c) {
		case 'w':
			o->out = optarg;
			break;
		case 'q':
			o->quiet = 1;
			break;
		case 'h':
			usage(stdout);
			return 1;
		case O_SEED:
			if (parse_u64(optarg, &o->seed))
				goto bad;
			break;
		case O_FLOWS:
			if (parse_u64(optarg, &o->flows))
				goto bad;
			o->have_flows = 1;
			break;
		case O_SIZE:
			if (parse_size(optarg, &o->size))
				goto bad;
			o->have_size = 1;
			break;
		case O_START:
			if (parse_secs(optarg, &o->start) ||
			    o->start > 4000000000ULL * NS_PER_S)
				goto bad;
			break;
		case O_DURATION:
			if (parse_secs(optarg, &o->duration))
				goto bad;
			o->have_duration = 1;
			break;
		case O_CONC:
			if (parse_u64(optarg, &v) || v < 1 ||
			    v > MAX_CONCURRENCY)
				goto bad;
			o->concurrency = (uint32_t)v;
			break;
		case O_SUMMARY:
			o->summary = optarg;
			break;
		case O_USEC:
			usec = 1;
			break;
		case O_PCAPNG:
			ng = 1;
			break;
		default:
			usage(stderr);
			return -1;
		}
	}
	if (!o->out || optind != argc) {
		usage(stderr);
		return -1;
	}
	if (!o->have_flows && !o->have_size && !o->have_duration)
		o->have_flows = 1;
	o->fmt = ng ? (usec ? FMT_PCAPNG_US : FMT_PCAPNG_NS)
		    : (usec ? FMT_PCAP_US : FMT_PCAP_NS);
	return 0;
bad:
	fprintf(stderr, "fvgen: bad value for %s: '%s'\n", argv[optind - 1],
		optarg);
	return -1;
}

int main(int argc, char **argv)
{
	struct opts o;
	struct gen *g;
	uint32_t i;
	int err, rc = 1;

	err = parse_opts(argc, argv, &o);
	if (err)
		return err > 0 ? 0 : 2;
	g = calloc(1, sizeof(*g));
	if (!g)
		goto out_nomem;
	g->o = &o;
	rng_seed(&g->rng, o.seed);
	g->out.fmt = o.fmt;
	if (posix_memalign((void **)&g->out.buf, OUT_ALIGN, OUT_BUF))
		g->out.buf = NULL;
	g->pool = calloc(o.concurrency, sizeof(*g->pool));
	g->heap = calloc(o.concurrency, sizeof(*g->heap));
	g->free = calloc(o.concurrency, sizeof(*g->free));
	if (!g->out.buf || !g->pool || !g->heap || !g->free)
		goto out_nomem_free;
	for (i = 0; i < o.concurrency; i++)
		g->free[i] = &g->pool[o.concurrency - 1 - i];
	g->nfree = o.concurrency;
	/* a sub-second start so that nanosecond digits show from frame 1 */
	g->base_ts = o.start + rng_range(&g->rng, 0, NS_PER_S - 1);
	g->last_ts = g->base_ts - 1;
	g->end_ts = g->base_ts + o.duration;
	if (o.summary)
		g->rows = malloc(4096 * sizeof(*g->rows));
	g->rows_cap = g->rows ? 4096 : 0;
	if (o.summary && !g->rows)
		goto out_nomem_free;
	if (!strcmp(o.out, "-")) {
		g->out.fd = STDOUT_FILENO;
	} else {
		struct stat st;
		int fl;

		g->out.fd = open(
			o.out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (g->out.fd < 0) {
			fprintf(stderr, "fvgen: %s: %s\n", o.out,
				strerror(errno));
			goto out_free;
		}
		fl = fcntl(g->out.fd, F_GETFL);
		if (!fstat(g->out.fd, &st) && S_ISREG(st.st_mode) && fl >= 0 &&
		    !fcntl(g->out.fd, F_SETFL, fl | O_DIRECT))
			g->out.direct = 1;
	}
	out_header(&g->out);
	limits(g, g->base_ts);
	err = gen_run(g);
	if (g->out.fd != STDOUT_FILENO && close(g->out.fd) && !err)
		err = -errno;
	if (err) {
		fprintf(stderr, "fvgen: %s: %s\n", o.out, strerror(-err));
		goto out_free;
	}
	if (o.summary) {
		err = write_summary(g, o.summary);
		if (err) {
			fprintf(stderr, "fvgen: %s: %s\n", o.summary,
				strerror(-err));
			goto out_free;
		}
	}
	if (!o.quiet) {
		uint64_t fr = g->out.frames;

		fprintf(stderr,
			"fvgen: %" PRIu64 " flows, %" PRIu64 " frames (%" PRIu64
			" without a flow), %" PRIu64
			" frame bytes (mean %" PRIu64 "), file %" PRIu64
			" bytes\n",
			g->next_idx, fr, g->arp_frames, g->out.frame_bytes,
			fr ? g->out.frame_bytes / fr : 0, g->out.file_bytes);
	}
	rc = 0;
	goto out_free;
out_nomem_free:
	fprintf(stderr, "fvgen: out of memory\n");
out_free:
	if (g) {
		free(g->rows);
		free(g->tuples);
		free(g->free);
		free(g->heap);
		free(g->pool);
		free(g->out.buf);
	}
	free(g);
	return rc;
out_nomem:
	fprintf(stderr, "fvgen: out of memory\n");
	return 1;
}
