/*
 * capfile.c - opening a capture file: tells pcap from pcapng by its first
 * bytes, reads classic pcap through libpcap (nanosecond precision) and
 * hands pcapng to our own reader (pcapng.c).
 *
 * The input may be a regular file, a pipe or standard input ("-"). The
 * first bytes are read here; for pcapng they are passed on to the reader,
 * and for pcap on a pipe a FILE made with fopencookie() replays them
 * before the rest of the stream, so nothing is lost and nothing is read
 * twice. A seekable file is rewound and given to libpcap as is, with a
 * FV_CAPFILE_READ_CHUNK stdio buffer (libpcap reads each record with two
 * fread() calls; the big buffer makes that one read(2) per MiB).
 *
 * Read-ahead (fv_capfile_readahead, classic pcap only): a thread runs
 * libpcap and copies the packets into RA_BATCHES batches in one region;
 * the n-th batch of the file goes to slot n % RA_BATCHES. The thread
 * fills free slots and publishes them (ra.filled); the caller reads slot
 * ra.taken and gives it back when it asks for the packet after the
 * batch's last (ra.taken + 1), so a packet's bytes stay put until the
 * next call. The end of the file or an error rides in the last batch,
 * after its packets. Batches change hands under a lock, packets do not.
 *
 * Classic pcap layout (draft-ietf-opsawg-pcap, "File Header"): magic,
 * version, two reserved words, snap length, then LinkType in the low 16
 * bits of the last word, all in the byte order the magic shows.
 */
#include <errno.h>
#include <pcap/pcap.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <fcntl.h>

#include "capture/capfile_int.h"
#include "common/fv.h"

#define CF_PCAP_HDR_LEN 24

/* pcap magics as read big-endian from the first four bytes. */
#define CF_MAGIC_USEC	   0xA1B2C3D4u
#define CF_MAGIC_NSEC	   0xA1B23C4Du
#define CF_MAGIC_KUZNETZOV 0xA1B2CD34u /* libpcap's "patched" format */

#define RA_BATCHES 8
#define RA_SLOT	   (256u << 10) /* bytes per batch: packet table, frames */
#define RA_PKTS	   1024		/* packets per batch at most */
#define RA_HANDOFF (64u << 10)	/* frame bytes after which it is handed */

struct ra_batch {
	struct fv_capfile_pkt *pkts;
	uint8_t *data; /* frames */
	uint32_t cap;  /* bytes at data */
	uint32_t n;    /* packets */
	/* 1: more batches follow; else what fv_capfile_next() returns after
	 * the last packet: 0 (end of file) or an error, with errbuf */
	int end;
	uint64_t offset; /* file offset after its last packet */
	uint8_t *big;	 /* a frame larger than cap (malloc'd, reused) */
	size_t big_cap;
	char errbuf[256];
};

struct cf_readahead {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t filled_cond, free_cond;
	uint8_t *mem; /* RA_BATCHES * RA_SLOT (fv_big_alloc) */
	struct ra_batch b[RA_BATCHES];
	uint64_t filled; /* batches published (under lock) */
	uint64_t taken;	 /* the batch the caller reads (under lock) */
	int stop;	 /* the caller closes: the thread ends (under lock) */
	int have;	 /* the caller holds batch taken (caller only) */
	uint32_t pos;	 /* its next packet (caller only) */
	uint64_t offset; /* its offset (caller only) */
};

/* Replays the bytes read for detection, then reads the fd. */
struct cf_cookie {
	int fd;
	uint8_t head[CF_PCAP_HDR_LEN];
	size_t nhead;
	size_t hpos;
	uint64_t off; /* bytes handed to stdio so far */
};

struct fv_capfile {
	pcap_t *pcap;	      /* classic pcap, or NULL */
	struct fv_pcapng *ng; /* pcapng, or NULL */
	const char *format;
	int usec;		       /* pcap with microsecond magic */
	struct fv_capfile_iface iface; /* a pcap file's one interface */
	uint64_t size;
	char *iobuf;		  /* stdio buffer of libpcap's FILE */
	struct cf_cookie *cookie; /* freed after pcap_close */
	struct cf_readahead *ra;  /* NULL: read on the caller's thread */
};

static ssize_t cf_cookie_read(void *c, char *buf, size_t len)
{
	struct cf_cookie *ck = c;
	ssize_t n;

	if (ck->hpos < ck->nhead) {
		size_t k = ck->nhead - ck->hpos;

		if (k > len)
			k = len;
		memcpy(buf, ck->head + ck->hpos, k);
		ck->hpos += k;
		ck->off += k;
		return (ssize_t)k;
	}
	do
		n = read(ck->fd, buf, len);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		ck->off += (uint64_t)n;
	return n;
}

/* Only ftell() is supported: it asks for SEEK_CUR + 0. */
static int cf_cookie_seek(void *c, off64_t *pos, int whence)
{
	struct cf_cookie *ck = c;

	if (whence != SEEK_CUR || *pos != 0) {
		errno = ESPIPE;
		return -1;
	}
	*pos = (off64_t)ck->off;
	return 0;
}

static int cf_cookie_close(void *c)
{
	struct cf_cookie *ck = c;

	return close(ck->fd);
}

/* Reads up to len bytes, fewer only at the end of the input. */
static ssize_t cf_read_full(int fd, uint8_t *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* Translates a libpcap error sentence into our code. */
static int cf_pcap_err(const char *msg)
{
	if (strstr(msg, "truncated dump file"))
		return FV_ETRUNC;
	if (strstr(msg, "out of memory"))
		return -ENOMEM;
	if (strstr(msg, "error reading dump file"))
		return -EIO;
	return FV_EFORMAT;
}

/*
 * Gives the pcap stream on fd (whose first nhead bytes are in head and
 * whose data started at off0) to libpcap. Takes fd.
 */
static int cf_open_pcap(struct fv_capfile *cf, int fd, const uint8_t *head,
			size_t nhead, off_t off0, char *errbuf)
{
	char pbuf[PCAP_ERRBUF_SIZE];
	FILE *f;
	int err;

	/* Huge pages where allowed: read() fills all of it at once. */
	cf->iobuf = fv_big_alloc(FV_CAPFILE_READ_CHUNK);
	if (!cf->iobuf) {
		err = -ENOMEM;
		goto out_close_fd;
	}
	if (off0 >= 0 && lseek(fd, off0, SEEK_SET) == off0) {
		f = fdopen(fd, "rb");
	} else {
		cookie_io_functions_t io = {
			.read = cf_cookie_read,
			.seek = cf_cookie_seek,
			.close = cf_cookie_close,
		};

		cf->cookie = calloc(1, sizeof(*cf->cookie));
		if (!cf->cookie) {
			err = -ENOMEM;
			goto out_close_fd;
		}
		cf->cookie->fd = fd;
		memcpy(cf->cookie->head, head, nhead);
		cf->cookie->nhead = nhead;
		f = fopencookie(cf->cookie, "rb", io);
	}
	if (!f) {
		err = -errno;
		goto out_close_fd;
	}
	setvbuf(f, cf->iobuf, _IOFBF, FV_CAPFILE_READ_CHUNK);
	/* One thread at a time reads the FILE (the caller's, or the
	 * read-ahead thread's): no lock per fread(), which in a process
	 * with threads is a locked instruction twice a packet. */
	__fsetlocking(f, FSETLOCKING_BYCALLER);
	cf->pcap = pcap_fopen_offline_with_tstamp_precision(
		f, PCAP_TSTAMP_PRECISION_NANO, pbuf);
	if (!cf->pcap) {
		fclose(f); /* libpcap leaves f to us when it fails */
		snprintf(errbuf, 256, "%s", pbuf);
		return cf_pcap_err(pbuf);
	}
	cf->iface.snaplen = (uint32_t)pcap_snapshot(cf->pcap);
	return 0;

out_close_fd:
	close(fd);
	snprintf(errbuf, 256, "cannot read the capture file: %s",
		 strerror(-err));
	return err;
}

int fv_capfile_open(struct fv_capfile **out, const char *path, char *errbuf)
{
	uint8_t head[CF_PCAP_HDR_LEN];
	struct fv_capfile *cf;
	struct stat st;
	uint32_t magic, swapped, lt;
	off_t off0;
	ssize_t n;
	int fd, err;

	cf = calloc(1, sizeof(*cf));
	if (!cf) {
		snprintf(errbuf, 256, "out of memory");
		return -ENOMEM;
	}
	if (strcmp(path, "-") == 0)
		fd = fcntl(0, F_DUPFD_CLOEXEC, 3);
	else
		fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		snprintf(errbuf, 256, "cannot open %s: %s",
			 strcmp(path, "-") ? path : "standard input",
			 strerror(errno));
		goto out_free;
	}
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		cf->size = (uint64_t)st.st_size;
	off0 = lseek(fd, 0, SEEK_CUR);

	/* Enough for a pcap file header; pcapng needs only 4. */
	n = cf_read_full(fd, head, sizeof(head));
	if (n < 0) {
		err = (int)n;
		snprintf(errbuf, 256, "read error: %s", strerror(-err));
		goto out_close_fd;
	}
	if (n < 4) {
		snprintf(errbuf, 256,
			 "the input ends after %zd bytes, before the 4-byte "
			 "magic number of a pcap or pcapng file",
			 n);
		err = FV_ETRUNC;
		goto out_close_fd;
	}

	if (fv_be32(head) == FV_PCAPNG_SHB_TYPE) {
		cf->format = "pcapng";
		err = fv_pcapng_open(&cf->ng, fd, head, (size_t)n, errbuf);
		if (err)
			goto out_free;
		goto out_ok;
	}

	magic = fv_be32(head);
	swapped = (uint32_t)head[0] | (uint32_t)head[1] << 8 |
		  (uint32_t)head[2] << 16 | (uint32_t)head[3] << 24;
	if (magic != CF_MAGIC_USEC && magic != CF_MAGIC_NSEC &&
	    magic != CF_MAGIC_KUZNETZOV && swapped != CF_MAGIC_USEC &&
	    swapped != CF_MAGIC_NSEC && swapped != CF_MAGIC_KUZNETZOV) {
		snprintf(errbuf, 256,
			 "not a pcap or pcapng file: it starts with "
			 "%02x %02x %02x %02x, no capture file magic number",
			 head[0], head[1], head[2], head[3]);
		err = FV_EFORMAT;
		goto out_close_fd;
	}
	cf->usec = magic != CF_MAGIC_NSEC && swapped != CF_MAGIC_NSEC;
	cf->format = cf->usec ? "pcap/usec" : "pcap/nsec";
	/* libpcap reports a DLT_ value (DLT_RAW is 12 on Linux where the
	 * file says LINKTYPE_RAW 101): take the LINKTYPE from the header. */
	if (n == CF_PCAP_HDR_LEN) {
		lt = magic == CF_MAGIC_USEC || magic == CF_MAGIC_NSEC ||
				     magic == CF_MAGIC_KUZNETZOV
			     ? fv_be32(head + 20)
			     : (uint32_t)head[20] | (uint32_t)head[21] << 8 |
				       (uint32_t)head[22] << 16 |
				       (uint32_t)head[23] << 24;
		cf->iface.linktype = (int)(lt & 0xffff);
	}
	err = cf_open_pcap(cf, fd, head, (size_t)n, off0, errbuf);
	if (err)
		goto out_free_pcap;
out_ok:
	*out = cf;
	return 0;

out_close_fd:
	close(fd);
out_free:
	free(cf);
	return err;
out_free_pcap:
	fv_big_free(cf->iobuf, FV_CAPFILE_READ_CHUNK);
	free(cf->cookie);
	free(cf);
	return err;
}

/*
 * The record's time in ns. The file holds two unsigned 32-bit fields
 * (draft-ietf-opsawg-pcap, "Packet Record"), but libpcap 1.10 reads them
 * as signed (struct pcap_timeval has bpf_int32 members) before it widens
 * them, and for a microsecond file multiplies the fraction by 1000 in a
 * long. Both steps are exact, so the file's unsigned fields are
 * recovered here: seconds up to 2^32-1 (year 2106) stay positive, and an
 * invalid fraction (>= 10^6 us or >= 10^9 ns) is added as it is, which
 * carries it into the following seconds.
 */
static uint64_t cf_pcap_ts(const struct fv_capfile *cf,
			   const struct pcap_pkthdr *h)
{
	uint64_t sec = (uint32_t)h->ts.tv_sec;
	uint64_t frac;

	if (cf->usec)
		frac = (uint64_t)(uint32_t)(h->ts.tv_usec / 1000) * 1000;
	else
		frac = (uint32_t)h->ts.tv_usec;
	return sec * FV_NSEC_PER_SEC + frac;
}

/* Bytes consumed by whichever thread reads the file. */
static uint64_t cf_file_offset(const struct fv_capfile *cf)
{
	off_t off;

	if (cf->ng)
		return fv_pcapng_offset(cf->ng);
	off = ftello(pcap_file(cf->pcap));
	return off < 0 ? 0 : (uint64_t)off;
}

/* The next packet from libpcap, on whichever thread reads the file. */
static int cf_pcap_next(struct fv_capfile *cf, struct fv_capfile_pkt *pkt,
			char *errbuf)
{
	struct pcap_pkthdr *h;
	const u_char *data;
	int ret;

	ret = pcap_next_ex(cf->pcap, &h, &data);
	if (ret == 1) {
		pkt->ts_ns = cf_pcap_ts(cf, h);
		pkt->caplen = h->caplen;
		pkt->origlen = h->len;
		pkt->iface = 0;
		pkt->linktype = cf->iface.linktype;
		pkt->data = data;
		return 1;
	}
	if (ret == PCAP_ERROR_BREAK)
		return 0;
	snprintf(errbuf, 256, "%s", pcap_geterr(cf->pcap));
	return cf_pcap_err(errbuf);
}

/* Fills batch b with the next packets, copied out of libpcap's buffer. */
static void ra_fill(struct fv_capfile *cf, struct ra_batch *b)
{
	uint32_t used = 0;

	b->n = 0;
	b->end = 1;
	while (b->n < RA_PKTS && used < RA_HANDOFF) {
		struct fv_capfile_pkt *p = &b->pkts[b->n];
		uint8_t *dst;
		int ret = cf_pcap_next(cf, p, b->errbuf);

		if (ret != 1) {
			b->end = ret;
			break;
		}
		b->n++;
		if (p->caplen <= b->cap - used) {
			dst = b->data + used;
			used += (p->caplen + 7) & ~7u;
		} else {
			/* Only for link types whose frames may exceed the
			 * slot (a few, by libpcap's limits); one per batch. */
			if (p->caplen > b->big_cap) {
				uint8_t *m = realloc(b->big, p->caplen);

				if (!m) {
					b->n--;
					b->end = -ENOMEM;
					snprintf(b->errbuf, sizeof(b->errbuf),
						 "out of memory");
					break;
				}
				b->big = m;
				b->big_cap = p->caplen;
			}
			dst = b->big;
			used = RA_HANDOFF; /* hand over after this one */
		}
		memcpy(dst, p->data, p->caplen);
		p->data = dst;
	}
	b->offset = cf_file_offset(cf);
}

/* The read-ahead thread: fills free slots until the end of the file, an
 * error, or the caller's close. */
static void *ra_main(void *arg)
{
	struct fv_capfile *cf = arg;
	struct cf_readahead *ra = cf->ra;
	uint64_t n = 0;
	int end = 1;

	while (end == 1) {
		struct ra_batch *b = &ra->b[n % RA_BATCHES];
		int stop;

		pthread_mutex_lock(&ra->lock);
		while (n - ra->taken >= RA_BATCHES && !ra->stop)
			pthread_cond_wait(&ra->free_cond, &ra->lock);
		stop = ra->stop;
		pthread_mutex_unlock(&ra->lock);
		if (stop)
			break;
		ra_fill(cf, b);
		end = b->end;
		pthread_mutex_lock(&ra->lock);
		ra->filled = ++n;
		pthread_cond_signal(&ra->filled_cond);
		pthread_mutex_unlock(&ra->lock);
	}
	return NULL;
}

/* fv_capfile_next() with read-ahead: packets of the batch held, then the
 * next batch (the held one given back first). */
static int ra_next(struct cf_readahead *ra, struct fv_capfile_pkt *pkt,
		   char *errbuf)
{
	for (;;) {
		struct ra_batch *b = &ra->b[ra->taken % RA_BATCHES];

		if (ra->have) {
			if (ra->pos < b->n) {
				*pkt = b->pkts[ra->pos++];
				return 1;
			}
			if (b->end != 1) {
				if (b->end < 0)
					snprintf(errbuf, 256, "%s", b->errbuf);
				return b->end;
			}
		}
		pthread_mutex_lock(&ra->lock);
		if (ra->have) {
			ra->taken++;
			pthread_cond_signal(&ra->free_cond);
		}
		while (ra->filled <= ra->taken)
			pthread_cond_wait(&ra->filled_cond, &ra->lock);
		pthread_mutex_unlock(&ra->lock);
		ra->have = 1;
		ra->pos = 0;
		ra->offset = ra->b[ra->taken % RA_BATCHES].offset;
	}
}

static void ra_free(struct cf_readahead *ra)
{
	for (unsigned i = 0; i < RA_BATCHES; i++)
		free(ra->b[i].big);
	fv_big_free(ra->mem, (size_t)RA_BATCHES * RA_SLOT);
	pthread_cond_destroy(&ra->filled_cond);
	pthread_cond_destroy(&ra->free_cond);
	pthread_mutex_destroy(&ra->lock);
	free(ra);
}

/* Ends the read-ahead thread (at the end of the file, or stopped
 * wherever it is) and frees its batches. */
static void ra_stop(struct fv_capfile *cf)
{
	struct cf_readahead *ra = cf->ra;

	pthread_mutex_lock(&ra->lock);
	ra->stop = 1;
	pthread_cond_signal(&ra->free_cond);
	pthread_mutex_unlock(&ra->lock);
	pthread_join(ra->thread, NULL);
	ra_free(ra);
	cf->ra = NULL;
}

int fv_capfile_readahead(struct fv_capfile *cf)
{
	const size_t table = RA_PKTS * sizeof(struct fv_capfile_pkt);
	struct cf_readahead *ra;
	sigset_t all, old;
	int err;

	if (!cf->pcap || cf->ra)
		return 0;
	ra = calloc(1, sizeof(*ra));
	if (!ra)
		return -ENOMEM;
	pthread_mutex_init(&ra->lock, NULL);
	pthread_cond_init(&ra->filled_cond, NULL);
	pthread_cond_init(&ra->free_cond, NULL);
	ra->mem = fv_big_alloc((size_t)RA_BATCHES * RA_SLOT);
	if (!ra->mem) {
		ra_free(ra);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < RA_BATCHES; i++) {
		struct ra_batch *b = &ra->b[i];

		b->pkts = (struct fv_capfile_pkt *)(ra->mem + i * RA_SLOT);
		b->data = ra->mem + i * RA_SLOT + table;
		b->cap = (uint32_t)(RA_SLOT - table);
	}
	cf->ra = ra;
	/* Signals go to the caller's threads, never to the reader. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = -pthread_create(&ra->thread, NULL, ra_main, cf);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		cf->ra = NULL;
		ra_free(ra);
	}
	return err;
}

int fv_capfile_next(struct fv_capfile *cf, struct fv_capfile_pkt *pkt,
		    char *errbuf)
{
	if (cf->ra)
		return ra_next(cf->ra, pkt, errbuf);
	if (cf->ng)
		return fv_pcapng_next(cf->ng, pkt, errbuf);
	return cf_pcap_next(cf, pkt, errbuf);
}

unsigned fv_capfile_niface(const struct fv_capfile *cf)
{
	return cf->ng ? fv_pcapng_niface(cf->ng) : 1;
}

const struct fv_capfile_iface *fv_capfile_iface(const struct fv_capfile *cf,
						unsigned i)
{
	if (cf->ng)
		return fv_pcapng_iface(cf->ng, i);
	return i == 0 ? &cf->iface : NULL;
}

const char *fv_capfile_format(const struct fv_capfile *cf)
{
	return cf->format;
}

uint64_t fv_capfile_offset(const struct fv_capfile *cf)
{
	return cf->ra ? cf->ra->offset : cf_file_offset(cf);
}

uint64_t fv_capfile_size(const struct fv_capfile *cf)
{
	return cf->size;
}

void fv_capfile_close(struct fv_capfile *cf)
{
	if (!cf)
		return;
	if (cf->ra)
		ra_stop(cf);
	if (cf->pcap)
		pcap_close(cf->pcap); /* closes the FILE, then the fd */
	fv_pcapng_close(cf->ng);
	fv_big_free(cf->iobuf, FV_CAPFILE_READ_CHUNK);
	free(cf->cookie);
	free(cf);
}

int fv_linktype_to_dlt(int linktype)
{
	/* pcap-linktype(7): the values where LINKTYPE_ and DLT_ differ. */
	switch (linktype) {
	case 100: /* LINKTYPE_ATM_RFC1483 */
		return DLT_ATM_RFC1483;
	case 101: /* LINKTYPE_RAW */
		return DLT_RAW;
	case 102: /* LINKTYPE_SLIP_BSDOS */
		return DLT_SLIP_BSDOS;
	case 103: /* LINKTYPE_PPP_BSDOS */
		return DLT_PPP_BSDOS;
	case 106: /* LINKTYPE_ATM_CLIP */
		return DLT_ATM_CLIP;
	case 138: /* LINKTYPE_ENC */
		return DLT_ENC;
	}
	return linktype;
}
