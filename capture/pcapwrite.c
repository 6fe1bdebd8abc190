/*
 * pcapwrite.c - writing pcap (nanosecond) and pcapng files.
 *
 * pcap (draft-ietf-opsawg-pcap, "File Header" and "Packet Record"): a
 * 24-byte header with the nanosecond magic 0xA1B23C4D, version 2.4,
 * snap length and link type, then per packet seconds, nanoseconds,
 * captured and original length, in host byte order as libpcap writes.
 *
 * pcapng (draft-ietf-opsawg-pcapng-02): one Section Header Block (4.1)
 * in host byte order with shb_userappl, an Interface Description Block
 * (4.2) with if_tsresol = 9 per distinct (link type, snap length), and
 * an Enhanced Packet Block (4.3) per packet with a 64-bit nanosecond
 * timestamp, data padded to 32 bits.
 *
 * Output goes through our own buffer (FV_PCAPW_BUF bytes) and leaves in
 * big fwrite() calls; a packet never costs a syscall of its own. The
 * first write error is kept and returned by every later call.
 */
#include <errno.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "capture/capfile.h"
#include "common/fv.h"

#define FV_PCAPW_BUF	      (256u * 1024)
#define PCAPW_MAGIC_NSEC      0xA1B23C4Du
#define PCAPW_DEFAULT_SNAPLEN 262144u
#define PCAPW_MAX_IFACES      65536u

#define NGW_SHB		     0x0A0D0D0Au
#define NGW_IDB		     0x00000001u
#define NGW_EPB		     0x00000006u
#define NGW_BYTE_ORDER_MAGIC 0x1A2B3C4Du
#define NGW_OPT_SHB_USERAPPL 4
#define NGW_OPT_IF_TSRESOL   9

struct pcapw_iface {
	int linktype;
	uint32_t snaplen;
};

struct fv_pcapw {
	FILE *f;
	enum fv_pcapw_format fmt;
	int linktype;	  /* pcap: the file's; pcapng: the one given */
	uint32_t snaplen; /* pcap: in the header; pcapng: the one given */
	struct pcapw_iface *ifaces;
	unsigned niface;
	unsigned cap_iface;
	unsigned last; /* interface of the previous packet */
	int err;       /* first write error, sticky */
	size_t len;    /* bytes in buf */
	uint8_t buf[FV_PCAPW_BUF];
};

static void pw_put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, sizeof(v));
}

static void pw_put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

static int pw_flush(struct fv_pcapw *w)
{
	if (w->err)
		return w->err;
	if (w->len && fwrite(w->buf, 1, w->len, w->f) != w->len)
		w->err = errno ? -errno : -EIO;
	w->len = 0;
	return w->err;
}

/* Appends len bytes; big ones go straight to the FILE. */
static int pw_out(struct fv_pcapw *w, const void *p, size_t len)
{
	if (w->err || len == 0)
		return w->err;
	if (len > sizeof(w->buf) - w->len) {
		if (pw_flush(w))
			return w->err;
		if (len > sizeof(w->buf)) {
			if (fwrite(p, 1, len, w->f) != len)
				w->err = errno ? -errno : -EIO;
			return w->err;
		}
	}
	memcpy(w->buf + w->len, p, len);
	w->len += len;
	return 0;
}

/* Writes an IDB for (linktype, snaplen) and records it. */
static int pw_add_iface(struct fv_pcapw *w, int linktype, uint32_t snaplen)
{
	uint8_t b[32];

	if (w->niface >= PCAPW_MAX_IFACES)
		return -EINVAL;
	if (w->niface == w->cap_iface) {
		unsigned ncap = w->cap_iface ? w->cap_iface * 2 : 8;
		struct pcapw_iface *ni;

		ni = realloc(w->ifaces, ncap * sizeof(*ni));
		if (!ni)
			return -ENOMEM;
		w->ifaces = ni;
		w->cap_iface = ncap;
	}
	pw_put32(b, NGW_IDB);
	pw_put32(b + 4, sizeof(b));
	pw_put16(b + 8, (uint16_t)linktype);
	pw_put16(b + 10, 0);
	pw_put32(b + 12, snaplen);
	pw_put16(b + 16, NGW_OPT_IF_TSRESOL);
	pw_put16(b + 18, 1);
	b[20] = 9; /* 10^-9 s */
	b[21] = b[22] = b[23] = 0;
	pw_put32(b + 24, 0); /* opt_endofopt */
	pw_put32(b + 28, sizeof(b));
	w->ifaces[w->niface].linktype = linktype;
	w->ifaces[w->niface].snaplen = snaplen;
	w->last = w->niface++;
	return pw_out(w, b, sizeof(b));
}

static int pw_pcap_header(struct fv_pcapw *w)
{
	uint8_t h[24];

	pw_put32(h, PCAPW_MAGIC_NSEC);
	pw_put16(h + 4, 2);
	pw_put16(h + 6, 4);
	pw_put32(h + 8, 0);  /* reserved (thiszone) */
	pw_put32(h + 12, 0); /* reserved (sigfigs) */
	pw_put32(h + 16, w->snaplen);
	pw_put32(h + 20, (uint32_t)w->linktype);
	return pw_out(w, h, sizeof(h));
}

static int pw_pcapng_header(struct fv_pcapw *w)
{
	static const char appl[] = "flowvault " FV_VERSION;
	uint32_t alen = sizeof(appl) - 1;
	uint32_t apad = (alen + 3) & ~3u;
	uint32_t total = 28 + 4 + apad + 4;
	uint8_t b[28 + 4 + 64 + 4] = {0};
	uint64_t seclen = UINT64_MAX; /* -1: not given */

	pw_put32(b, NGW_SHB);
	pw_put32(b + 4, total);
	pw_put32(b + 8, NGW_BYTE_ORDER_MAGIC);
	pw_put16(b + 12, 1);
	pw_put16(b + 14, 0);
	memcpy(b + 16, &seclen, 8);
	pw_put16(b + 24, NGW_OPT_SHB_USERAPPL);
	pw_put16(b + 26, (uint16_t)alen);
	memcpy(b + 28, appl, alen);
	/* opt_endofopt (4 zero bytes) is already there */
	pw_put32(b + 28 + apad + 4, total);
	return pw_out(w, b, total);
}

int fv_pcapw_open(struct fv_pcapw **out, FILE *f, enum fv_pcapw_format fmt,
		  int linktype, uint32_t snaplen)
{
	struct fv_pcapw *w;
	int err;

	if (fmt != FV_PCAPW_PCAP && fmt != FV_PCAPW_PCAPNG)
		return -EINVAL;
	if (linktype > 0xffff || (fmt == FV_PCAPW_PCAP && linktype < 0))
		return -EINVAL;
	/* Not calloc: the 256 KiB buffer needs no zeroing (a REST download
	 * of a small flow would otherwise clear and fault it all in). */
	w = malloc(sizeof(*w));
	if (!w)
		return -ENOMEM;
	memset(w, 0, offsetof(struct fv_pcapw, buf));
	w->f = f;
	w->fmt = fmt;
	w->linktype = linktype;
	w->snaplen = snaplen;
	if (fmt == FV_PCAPW_PCAP) {
		if (!w->snaplen)
			w->snaplen = PCAPW_DEFAULT_SNAPLEN;
		err = pw_pcap_header(w);
	} else {
		err = pw_pcapng_header(w);
		if (!err && linktype >= 0)
			err = pw_add_iface(w, linktype, snaplen);
	}
	if (err) {
		free(w->ifaces);
		free(w);
		return err;
	}
	*out = w;
	return 0;
}

/*
 * Finds the interface for linktype: the one with the snap length given
 * at open, or one with no limit (0) when the packet exceeds that.
 */
static int pw_iface(struct fv_pcapw *w, int linktype, uint32_t caplen,
		    unsigned *idx)
{
	uint32_t snaplen = w->snaplen;
	const struct pcapw_iface *l = w->niface ? &w->ifaces[w->last] : NULL;
	int err;

	if (snaplen && caplen > snaplen)
		snaplen = 0;
	if (l && l->linktype == linktype && l->snaplen == snaplen) {
		*idx = w->last;
		return 0;
	}
	for (unsigned i = 0; i < w->niface; i++) {
		if (w->ifaces[i].linktype == linktype &&
		    w->ifaces[i].snaplen == snaplen) {
			*idx = w->last = i;
			return 0;
		}
	}
	err = pw_add_iface(w, linktype, snaplen);
	*idx = w->last;
	return err;
}

int fv_pcapw_write(struct fv_pcapw *w, int linktype, uint64_t ts_ns,
		   uint32_t caplen, uint32_t origlen, const uint8_t *data)
{
	static const uint8_t zero[4];
	uint32_t pad, total;
	uint8_t h[28];
	unsigned idx;
	int err;

	if (w->err)
		return w->err;
	if (w->fmt == FV_PCAPW_PCAP) {
		uint64_t sec = ts_ns / FV_NSEC_PER_SEC;

		if (linktype != w->linktype || sec > UINT32_MAX ||
		    caplen > w->snaplen)
			return -EINVAL;
		pw_put32(h, (uint32_t)sec);
		pw_put32(h + 4, (uint32_t)(ts_ns % FV_NSEC_PER_SEC));
		pw_put32(h + 8, caplen);
		pw_put32(h + 12, origlen);
		err = pw_out(w, h, 16);
		if (!err)
			err = pw_out(w, data, caplen);
		return err;
	}

	if (linktype < 0 || linktype > 0xffff || caplen > UINT32_MAX - 32 - 3)
		return -EINVAL;
	err = pw_iface(w, linktype, caplen, &idx);
	if (err)
		return err;
	pad = (4 - (caplen & 3)) & 3;
	total = 32 + caplen + pad;

	pw_put32(h, NGW_EPB);
	pw_put32(h + 4, total);
	pw_put32(h + 8, idx);
	pw_put32(h + 12, (uint32_t)(ts_ns >> 32));
	pw_put32(h + 16, (uint32_t)ts_ns);
	pw_put32(h + 20, caplen);
	pw_put32(h + 24, origlen);
	err = pw_out(w, h, sizeof(h));
	if (!err)
		err = pw_out(w, data, caplen);
	if (!err)
		err = pw_out(w, zero, pad);
	if (!err) {
		uint8_t t[4];

		pw_put32(t, total);
		err = pw_out(w, t, 4);
	}
	return err;
}

int fv_pcapw_close(struct fv_pcapw *w)
{
	int err;

	if (!w)
		return 0;
	err = pw_flush(w);
	if (fflush(w->f) != 0 && !err)
		err = errno ? -errno : -EIO;
	free(w->ifaces);
	free(w);
	return err;
}
