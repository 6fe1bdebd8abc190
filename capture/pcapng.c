/*
 * pcapng.c - our own pcapng reader.
 *
 * Format: "PCAP Now Generic (pcapng) Capture File Format",
 * draft-ietf-opsawg-pcapng-02,
 * https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-02.html
 * (section numbers below are that draft's):
 *   3.1  General Block Structure: type, total length, body, total length
 *        again; lengths are multiples of 4.
 *   4.1  Section Header Block (SHB): starts a section and fixes its byte
 *        order (the byte-order magic 0x1A2B3C4D); sections of one file
 *        may differ in byte order.
 *   4.2  Interface Description Block (IDB): link type, snap length and
 *        options if_name (2), if_tsresol (9), if_tsoffset (14). Interface
 *        numbers count IDBs within a section.
 *   4.3  Enhanced Packet Block (EPB), 4.4 Simple Packet Block (SPB),
 *        Appendix A: the obsolete Packet Block (PB).
 *   Every other block (NRB, ISB, DSB, custom, ...) is skipped whole.
 *
 * We read it ourselves because libpcap 1.10 refuses a file whose
 * interfaces differ in link type or snap length ("an interface has a
 * snapshot length 8192 different from the snapshot length of the first
 * interface").
 *
 * Invariants: the file is read in FV_CAPFILE_READ_CHUNK reads into one
 * buffer that holds at least the current block whole, so a packet's
 * data points into the buffer (valid until the next call) and no
 * syscall is made per packet. Every length from the file is checked
 * against the block that holds it before it is used; a block is at
 * most FV_PCAPNG_MAX_BLOCK bytes. Interfaces from all sections form one
 * flat list: section s's interface i is entry sec_base + i.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture/capfile_int.h"
#include "common/fv.h"

#define NG_BT_IDB	0x00000001u
#define NG_BT_PB	0x00000002u
#define NG_BT_SPB	0x00000003u
#define NG_BT_NRB	0x00000004u
#define NG_BT_ISB	0x00000005u
#define NG_BT_EPB	0x00000006u
#define NG_BT_DSB	0x0000000Au
#define NG_BT_CB	0x00000BADu
#define NG_BT_CB_NOCOPY 0x40000BADu

#define NG_BYTE_ORDER_MAGIC 0x1A2B3C4Du

#define NG_OPT_ENDOFOPT	   0
#define NG_OPT_IF_NAME	   2
#define NG_OPT_IF_TSRESOL  9
#define NG_OPT_IF_TSOFFSET 14

/* Fixed sizes: header (8) + fixed body + trailing length (4). */
#define NG_SHB_MIN 28u
#define NG_IDB_MIN 20u
#define NG_EPB_MIN 32u
#define NG_PB_MIN  32u
#define NG_SPB_MIN 16u

#define NG_IFACE_CHUNK 64u

enum ng_ts_kind {
	NG_TS_MUL,   /* 10^-k, k <= 9: units * factor */
	NG_TS_DIV,   /* 10^-k, k > 9: units / factor */
	NG_TS_SHIFT, /* 2^-k: units * 1e9 >> k */
};

struct ng_iface {
	struct fv_capfile_iface pub;
	enum ng_ts_kind ts_kind;
	unsigned ts_shift;
	uint64_t ts_factor;
	int64_t ts_offset_s; /* if_tsoffset, seconds */
};

struct fv_pcapng {
	int fd;
	uint8_t *buf;
	size_t cap;		  /* bytes allocated */
	size_t pos;		  /* start of the next block */
	size_t end;		  /* end of the bytes read */
	uint64_t buf_off;	  /* file offset of buf[0] */
	int eof;		  /* read() returned 0 */
	int big;		  /* the current section is big-endian */
	unsigned sec_base;	  /* flat index of this section's interface 0 */
	unsigned sec_n;		  /* interfaces declared in this section */
	struct ng_iface **chunks; /* NG_IFACE_CHUNK interfaces each */
	unsigned nchunks;
	unsigned niface;
};

static uint16_t ng_rd16(const struct fv_pcapng *ng, const uint8_t *p)
{
	if (ng->big)
		return fv_be16(p);
	return (uint16_t)(p[0] | (uint16_t)p[1] << 8);
}

static uint32_t ng_rd32(const struct fv_pcapng *ng, const uint8_t *p)
{
	if (ng->big)
		return fv_be32(p);
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t ng_rd64(const struct fv_pcapng *ng, const uint8_t *p)
{
	uint64_t a = ng_rd32(ng, p), b = ng_rd32(ng, p + 4);

	return ng->big ? a << 32 | b : b << 32 | a;
}

static const char *ng_block_name(uint32_t type)
{
	switch (type) {
	case FV_PCAPNG_SHB_TYPE:
		return "Section Header Block";
	case NG_BT_IDB:
		return "Interface Description Block";
	case NG_BT_PB:
		return "Packet Block";
	case NG_BT_SPB:
		return "Simple Packet Block";
	case NG_BT_NRB:
		return "Name Resolution Block";
	case NG_BT_ISB:
		return "Interface Statistics Block";
	case NG_BT_EPB:
		return "Enhanced Packet Block";
	case NG_BT_DSB:
		return "Decryption Secrets Block";
	case NG_BT_CB:
	case NG_BT_CB_NOCOPY:
		return "Custom Block";
	default:
		return "block";
	}
}

static unsigned long long ng_off(const struct fv_pcapng *ng)
{
	return (unsigned long long)(ng->buf_off + ng->pos);
}

/*
 * Makes at least need bytes available at buf + pos, reading big chunks.
 * Returns 0, 1 if the file ends first (what there is stays available),
 * or -errno.
 */
static int ng_fill(struct fv_pcapng *ng, size_t need)
{
	size_t have = ng->end - ng->pos;

	if (have >= need)
		return 0;
	if (ng->eof)
		return 1;
	/* Move the partial block to the front so each read is big. */
	if (ng->pos > 0) {
		memmove(ng->buf, ng->buf + ng->pos, have);
		ng->buf_off += ng->pos;
		ng->pos = 0;
		ng->end = have;
	}
	if (ng->cap < need) {
		size_t ncap = (need + FV_CAPFILE_READ_CHUNK - 1) /
			      FV_CAPFILE_READ_CHUNK * FV_CAPFILE_READ_CHUNK;
		uint8_t *nb = realloc(ng->buf, ncap);

		if (!nb)
			return -ENOMEM;
		ng->buf = nb;
		ng->cap = ncap;
	}
	while (ng->end - ng->pos < need) {
		ssize_t n = read(ng->fd, ng->buf + ng->end, ng->cap - ng->end);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0) {
			ng->eof = 1;
			return 1;
		}
		ng->end += (size_t)n;
	}
	return 0;
}

static struct ng_iface *ng_if(const struct fv_pcapng *ng, unsigned i)
{
	return &ng->chunks[i / NG_IFACE_CHUNK][i % NG_IFACE_CHUNK];
}

/* Appends an interface with the defaults of 4.2 (microseconds). */
static int ng_add_iface(struct fv_pcapng *ng, struct ng_iface **out)
{
	struct ng_iface *ifc;

	if (ng->niface >= FV_PCAPNG_MAX_IFACES)
		return FV_EFORMAT;
	if (ng->niface == ng->nchunks * NG_IFACE_CHUNK) {
		struct ng_iface **nc;

		nc = realloc(ng->chunks, (ng->nchunks + 1) * sizeof(*nc));
		if (!nc)
			return -ENOMEM;
		ng->chunks = nc;
		nc[ng->nchunks] = calloc(NG_IFACE_CHUNK, sizeof(**nc));
		if (!nc[ng->nchunks])
			return -ENOMEM;
		ng->nchunks++;
	}
	ifc = ng_if(ng, ng->niface);
	memset(ifc, 0, sizeof(*ifc));
	ifc->ts_kind = NG_TS_MUL;
	ifc->ts_factor = 1000;
	ng->niface++;
	ng->sec_n++;
	*out = ifc;
	return 0;
}

/*
 * if_tsresol (4.2): the low 7 bits are an exponent of 10 (MSB clear) or
 * of 2 (MSB set); the unit is 10^-k or 2^-k seconds.
 */
static int ng_set_tsresol(struct ng_iface *ifc, uint8_t v)
{
	unsigned k = v & 0x7f;
	uint64_t f = 1;

	if (v & 0x80) {
		if (k > 63)
			return -1;
		ifc->ts_kind = NG_TS_SHIFT;
		ifc->ts_shift = k;
		return 0;
	}
	if (k > 19) /* 10^20 does not fit 64 bits */
		return -1;
	if (k <= 9) {
		for (unsigned i = k; i < 9; i++)
			f *= 10;
		ifc->ts_kind = NG_TS_MUL;
	} else {
		for (unsigned i = 9; i < k; i++)
			f *= 10;
		ifc->ts_kind = NG_TS_DIV;
	}
	ifc->ts_factor = f;
	return 0;
}

/* Converts a timestamp in the interface's units to ns since the epoch,
 * exactly (rounded down). Returns 0, or -1 if it is not in 0..2^64-1. */
static int ng_ts(const struct ng_iface *ifc, uint64_t units, uint64_t *ns)
{
	unsigned __int128 v;
	__int128 t;

	switch (ifc->ts_kind) {
	case NG_TS_MUL:
		v = (unsigned __int128)units * ifc->ts_factor;
		break;
	case NG_TS_DIV:
		v = units / ifc->ts_factor;
		break;
	default:
		v = ((unsigned __int128)units * FV_NSEC_PER_SEC) >>
		    ifc->ts_shift;
		break;
	}
	t = (__int128)v + (__int128)ifc->ts_offset_s * (__int128)1000000000;
	if (t < 0 || t > (__int128)UINT64_MAX)
		return -1;
	*ns = (uint64_t)t;
	return 0;
}

/*
 * Reads the Interface Description Block b of len bytes (4.2) into a new
 * interface of the current section.
 */
static int ng_idb(struct fv_pcapng *ng, const uint8_t *b, uint32_t len,
		  char *errbuf)
{
	struct ng_iface *ifc;
	const uint8_t *o = b + 16;
	uint32_t rem = len - NG_IDB_MIN;
	int err;

	err = ng_add_iface(ng, &ifc);
	if (err == FV_EFORMAT)
		snprintf(errbuf, 256,
			 "pcapng: Interface Description Block at offset %llu "
			 "goes beyond the %u interfaces this reader accepts "
			 "in one file",
			 ng_off(ng), FV_PCAPNG_MAX_IFACES);
	else if (err)
		snprintf(errbuf, 256, "pcapng: %s", strerror(-err));
	if (err)
		return err;
	ifc->pub.linktype = ng_rd16(ng, b + 8);
	ifc->pub.snaplen = ng_rd32(ng, b + 12);

	/* Options (3.5): code, length, value padded to 32 bits. */
	while (rem >= 4) {
		uint16_t code = ng_rd16(ng, o);
		uint16_t olen = ng_rd16(ng, o + 2);
		uint32_t step = 4 + (((uint32_t)olen + 3) & ~3u);
		const uint8_t *val = o + 4;

		if (code == NG_OPT_ENDOFOPT)
			break;
		if (olen > rem - 4) {
			snprintf(errbuf, 256,
				 "pcapng: option %u of the Interface "
				 "Description Block at offset %llu claims %u "
				 "bytes, only %u remain in the block",
				 code, ng_off(ng), olen, rem - 4);
			return FV_EFORMAT;
		}
		switch (code) {
		case NG_OPT_IF_NAME: {
			size_t n = olen < sizeof(ifc->pub.name) - 1
					   ? olen
					   : sizeof(ifc->pub.name) - 1;
			const uint8_t *nul = memchr(val, 0, n);

			if (nul)
				n = (size_t)(nul - val);
			memcpy(ifc->pub.name, val, n);
			ifc->pub.name[n] = '\0';
			break;
		}
		case NG_OPT_IF_TSRESOL:
			if (olen != 1)
				break;
			if (ng_set_tsresol(ifc, val[0])) {
				snprintf(errbuf, 256,
					 "pcapng: Interface Description Block "
					 "at offset %llu has if_tsresol 0x%02x "
					 "(%s^-%u s), finer than this reader "
					 "supports",
					 ng_off(ng), val[0],
					 val[0] & 0x80 ? "2" : "10",
					 val[0] & 0x7f);
				return FV_EFORMAT;
			}
			break;
		case NG_OPT_IF_TSOFFSET:
			if (olen == 8)
				ifc->ts_offset_s = (int64_t)ng_rd64(ng, val);
			break;
		default:
			break;
		}
		if (step > rem)
			step = rem; /* an unpadded last option */
		o += step;
		rem -= step;
	}
	return 0;
}

/*
 * Reads the byte order of the Section Header Block at pos (4.1) from its
 * byte-order magic; at least 12 bytes are available.
 */
static int ng_shb_order(struct fv_pcapng *ng, int *big, char *errbuf)
{
	const uint8_t *p = ng->buf + ng->pos;

	if (fv_be32(p + 8) == NG_BYTE_ORDER_MAGIC) {
		*big = 1;
		return 0;
	}
	if (p[8] == 0x4D && p[9] == 0x3C && p[10] == 0x2B && p[11] == 0x1A) {
		*big = 0;
		return 0;
	}
	snprintf(errbuf, 256,
		 "pcapng: Section Header Block at offset %llu has byte-order "
		 "magic %02x%02x%02x%02x, neither 1a2b3c4d nor 4d3c2b1a",
		 ng_off(ng), p[8], p[9], p[10], p[11]);
	return FV_EFORMAT;
}

/* Checks a whole Section Header Block (4.1) and starts a new section. */
static int ng_shb(struct fv_pcapng *ng, const uint8_t *b, uint32_t len,
		  char *errbuf)
{
	uint16_t major, minor;

	if (len < NG_SHB_MIN) {
		snprintf(errbuf, 256,
			 "pcapng: Section Header Block at offset %llu is %u "
			 "bytes long, less than the %u-byte minimum",
			 ng_off(ng), len, NG_SHB_MIN);
		return FV_EFORMAT;
	}
	major = ng_rd16(ng, b + 12);
	minor = ng_rd16(ng, b + 14);
	if (major != 1) {
		snprintf(errbuf, 256,
			 "pcapng: Section Header Block at offset %llu has "
			 "version %u.%u; only 1.x is supported",
			 ng_off(ng), major, minor);
		return FV_EFORMAT;
	}
	ng->sec_base = ng->niface;
	ng->sec_n = 0;
	return 0;
}

/*
 * Makes the next whole block available at buf + pos. Returns 1 with its
 * type and length, 0 at a clean end of file, or an error. A Section
 * Header Block's byte order is set in ng->big.
 */
static int ng_block(struct fv_pcapng *ng, uint32_t *type, uint32_t *len,
		    char *errbuf)
{
	const uint8_t *p;
	size_t have;
	uint32_t t, l;
	int big = ng->big;
	int err;

	err = ng_fill(ng, 8);
	if (err < 0)
		goto out_read;
	have = ng->end - ng->pos;
	if (err) {
		if (have == 0)
			return 0;
		snprintf(errbuf, 256,
			 "pcapng: the file ends %zu bytes into the block "
			 "header at offset %llu",
			 have, ng_off(ng));
		return FV_ETRUNC;
	}
	p = ng->buf + ng->pos;
	t = ng_rd32(ng, p); /* the SHB type reads the same in both orders */
	if (t == FV_PCAPNG_SHB_TYPE) {
		err = ng_fill(ng, 12);
		if (err < 0)
			goto out_read;
		if (err) {
			snprintf(errbuf, 256,
				 "pcapng: the file ends inside the Section "
				 "Header Block at offset %llu",
				 ng_off(ng));
			return FV_ETRUNC;
		}
		err = ng_shb_order(ng, &big, errbuf);
		if (err)
			return err;
		p = ng->buf + ng->pos;
	}
	l = big ? fv_be32(p + 4)
		: (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 |
			    (uint32_t)p[7] << 24;
	if (l < 12 || l % 4 || l > FV_PCAPNG_MAX_BLOCK) {
		snprintf(errbuf, 256,
			 "pcapng: %s at offset %llu (type 0x%08x) claims a "
			 "length of %u bytes, %s",
			 ng_block_name(t), ng_off(ng), t, l,
			 l < 12	 ? "less than the 12-byte minimum"
			 : l % 4 ? "not a multiple of 4"
				 : "more than the 16 MiB this reader accepts");
		return FV_EFORMAT;
	}
	err = ng_fill(ng, l);
	if (err < 0)
		goto out_read;
	if (err) {
		snprintf(errbuf, 256,
			 "pcapng: %s at offset %llu claims %u bytes, only %zu "
			 "remain in the file",
			 ng_block_name(t), ng_off(ng), l, ng->end - ng->pos);
		return FV_ETRUNC;
	}
	p = ng->buf + ng->pos;
	ng->big = big;
	if (ng_rd32(ng, p + l - 4) != l) {
		snprintf(errbuf, 256,
			 "pcapng: %s at offset %llu: its trailing length %u "
			 "differs from its leading length %u",
			 ng_block_name(t), ng_off(ng), ng_rd32(ng, p + l - 4),
			 l);
		return FV_EFORMAT;
	}
	*type = t;
	*len = l;
	return 1;

out_read:
	snprintf(errbuf, 256, "pcapng: read error at offset %llu: %s",
		 ng_off(ng), strerror(-err));
	return err;
}

static int ng_bad_iface(struct fv_pcapng *ng, uint32_t type, uint32_t id,
			char *errbuf)
{
	snprintf(errbuf, 256,
		 "pcapng: %s at offset %llu names interface %u, but its "
		 "section has declared %u",
		 ng_block_name(type), ng_off(ng), id, ng->sec_n);
	return FV_EFORMAT;
}

/* Fills pkt from an EPB (4.3) or an obsolete PB (Appendix A). */
static int ng_epb(struct fv_pcapng *ng, uint32_t type, const uint8_t *b,
		  uint32_t len, struct fv_capfile_pkt *pkt, char *errbuf)
{
	const struct ng_iface *ifc;
	uint32_t id, caplen, room = len - NG_EPB_MIN;
	uint64_t units;

	/* The PB has a 16-bit interface id and 16-bit drop count where
	 * the EPB has a 32-bit interface id; the rest lines up. */
	id = type == NG_BT_EPB ? ng_rd32(ng, b + 8) : ng_rd16(ng, b + 8);
	if (id >= ng->sec_n)
		return ng_bad_iface(ng, type, id, errbuf);
	caplen = ng_rd32(ng, b + 20);
	if (caplen > room) {
		snprintf(errbuf, 256,
			 "pcapng: %s at offset %llu claims %u captured bytes "
			 "in a %u-byte block",
			 ng_block_name(type), ng_off(ng), caplen, len);
		return FV_EFORMAT;
	}
	ifc = ng_if(ng, ng->sec_base + id);
	units = (uint64_t)ng_rd32(ng, b + 12) << 32 | ng_rd32(ng, b + 16);
	if (ng_ts(ifc, units, &pkt->ts_ns)) {
		snprintf(errbuf, 256,
			 "pcapng: %s at offset %llu has a timestamp outside "
			 "1970..2554 (%llu units, if_tsoffset %lld s)",
			 ng_block_name(type), ng_off(ng),
			 (unsigned long long)units,
			 (long long)ifc->ts_offset_s);
		return FV_EFORMAT;
	}
	pkt->caplen = caplen;
	pkt->origlen = ng_rd32(ng, b + 24);
	pkt->iface = ng->sec_base + id;
	pkt->linktype = ifc->pub.linktype;
	pkt->data = b + 28;
	return 1;
}

/* Fills pkt from a Simple Packet Block (4.4): interface 0, no time. */
static int ng_spb(struct fv_pcapng *ng, const uint8_t *b, uint32_t len,
		  struct fv_capfile_pkt *pkt, char *errbuf)
{
	const struct ng_iface *ifc;
	uint32_t origlen, caplen, room = len - NG_SPB_MIN;

	if (ng->sec_n == 0)
		return ng_bad_iface(ng, NG_BT_SPB, 0, errbuf);
	ifc = ng_if(ng, ng->sec_base);
	origlen = ng_rd32(ng, b + 8);
	caplen = origlen;
	if (ifc->pub.snaplen && caplen > ifc->pub.snaplen)
		caplen = ifc->pub.snaplen;
	if (caplen > room)
		caplen = room;
	pkt->ts_ns = 0;
	pkt->caplen = caplen;
	pkt->origlen = origlen;
	pkt->iface = ng->sec_base;
	pkt->linktype = ifc->pub.linktype;
	pkt->data = b + 12;
	return 1;
}

static int ng_too_short(struct fv_pcapng *ng, uint32_t type, uint32_t len,
			uint32_t min, char *errbuf)
{
	snprintf(errbuf, 256,
		 "pcapng: %s at offset %llu is %u bytes long, less than the "
		 "%u-byte minimum",
		 ng_block_name(type), ng_off(ng), len, min);
	return FV_EFORMAT;
}

/*
 * Reads blocks until a packet (returns 1), the end (0) or an error. With
 * headers_only set (used by open), stops instead before the first block
 * that is neither an SHB nor an IDB, leaving it unread, and returns 0.
 */
static int ng_run(struct fv_pcapng *ng, struct fv_capfile_pkt *pkt,
		  int headers_only, char *errbuf)
{
	for (;;) {
		uint32_t type, len;
		const uint8_t *b;
		int ret;

		if (headers_only) {
			/* Peek at the type only: a damaged packet block is
			 * reported by fv_pcapng_next, after the packets
			 * before it, not by open. */
			if (ng_fill(ng, 8))
				return 0;
			type = ng_rd32(ng, ng->buf + ng->pos);
			if (type != FV_PCAPNG_SHB_TYPE && type != NG_BT_IDB)
				return 0;
		}
		ret = ng_block(ng, &type, &len, errbuf);
		if (ret <= 0)
			return ret;
		b = ng->buf + ng->pos;
		switch (type) {
		case FV_PCAPNG_SHB_TYPE:
			ret = ng_shb(ng, b, len, errbuf);
			break;
		case NG_BT_IDB:
			ret = len < NG_IDB_MIN
				      ? ng_too_short(ng, type, len, NG_IDB_MIN,
						     errbuf)
				      : ng_idb(ng, b, len, errbuf);
			break;
		case NG_BT_EPB:
		case NG_BT_PB:
			ret = len < NG_EPB_MIN
				      ? ng_too_short(ng, type, len, NG_EPB_MIN,
						     errbuf)
				      : ng_epb(ng, type, b, len, pkt, errbuf);
			break;
		case NG_BT_SPB:
			ret = len < NG_SPB_MIN
				      ? ng_too_short(ng, type, len, NG_SPB_MIN,
						     errbuf)
				      : ng_spb(ng, b, len, pkt, errbuf);
			break;
		default:
			ret = 0; /* NRB, ISB, DSB, custom, unknown: skipped */
			break;
		}
		if (ret < 0)
			return ret;
		/* The block is consumed; its bytes stay in the buffer until
		 * the next fill, so pkt->data remains valid. */
		ng->pos += len;
		if (ret == 1)
			return 1;
	}
}

int fv_pcapng_open(struct fv_pcapng **out, int fd, const uint8_t *head,
		   size_t nhead, char *errbuf)
{
	struct fv_pcapng *ng;
	uint32_t type, len;
	int err;

	ng = calloc(1, sizeof(*ng));
	if (!ng) {
		close(fd);
		snprintf(errbuf, 256, "pcapng: out of memory");
		return -ENOMEM;
	}
	ng->fd = fd;
	ng->cap = FV_CAPFILE_READ_CHUNK;
	ng->buf = malloc(ng->cap);
	if (!ng->buf) {
		snprintf(errbuf, 256, "pcapng: out of memory");
		err = -ENOMEM;
		goto out_free;
	}
	if (nhead > ng->cap)
		nhead = ng->cap;
	memcpy(ng->buf, head, nhead);
	ng->end = nhead;

	/* The file must start with a Section Header Block. */
	err = ng_block(ng, &type, &len, errbuf);
	if (err == 0) {
		snprintf(errbuf, 256, "pcapng: the file is empty");
		err = FV_ETRUNC;
	}
	if (err < 0)
		goto out_free;
	if (type != FV_PCAPNG_SHB_TYPE) {
		snprintf(errbuf, 256,
			 "pcapng: the file starts with a block of type 0x%08x, "
			 "not a Section Header Block",
			 type);
		err = FV_EFORMAT;
		goto out_free;
	}
	/* Leave the SHB unread: ng_run handles it with the IDBs after it,
	 * so that fv_capfile_niface() is right as soon as the file is open. */
	err = ng_run(ng, NULL, 1, errbuf);
	if (err < 0)
		goto out_free;
	*out = ng;
	return 0;

out_free:
	fv_pcapng_close(ng);
	return err;
}

int fv_pcapng_next(struct fv_pcapng *ng, struct fv_capfile_pkt *pkt,
		   char *errbuf)
{
	return ng_run(ng, pkt, 0, errbuf);
}

unsigned fv_pcapng_niface(const struct fv_pcapng *ng)
{
	return ng->niface;
}

const struct fv_capfile_iface *fv_pcapng_iface(const struct fv_pcapng *ng,
					       unsigned i)
{
	if (i >= ng->niface)
		return NULL;
	return &ng_if(ng, i)->pub;
}

uint64_t fv_pcapng_offset(const struct fv_pcapng *ng)
{
	return ng->buf_off + ng->pos;
}

void fv_pcapng_close(struct fv_pcapng *ng)
{
	if (!ng)
		return;
	for (unsigned i = 0; i < ng->nchunks; i++)
		free(ng->chunks[i]);
	free(ng->chunks);
	free(ng->buf);
	close(ng->fd);
	free(ng);
}
