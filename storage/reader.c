/*
 * reader.c - reads blocks back and checks them (storage.h).
 *
 * A reference names (worker, generation, offset). The file is
 * generation % nsegments. A block is returned only if its header decodes,
 * its generation is the reference's and its CRC32C matches; when it does
 * not, the file's first block tells whether the segment was refilled since
 * (FV_EEXPIRED) or the bytes are damaged (FV_ECRC / FV_EFORMAT).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fv.h"
#include "storage/storage.h"
#include "storage/storage_int.h"

#define MAX_WORKERS 256

struct seg_map {
	const uint8_t *p;
	size_t len;
};

struct fv_seg_reader {
	char dir[4096];
	uint32_t nsegments;
	uint32_t block_size;
	uint8_t *buf;
	int *fds; /* [worker * nsegments + index], -1 unopened, -2 missing */
	struct seg_map *maps; /* same index: read-only mappings, on demand */
	/* compressed blocks: the bytes read from disk, the decoder, the
	 * frame table of the block being read, and which frames of it are
	 * decoded into buf (fv_seg_read_chain) */
	uint8_t *zbuf;
	void *dctx;
	struct fv_ztab zt;
	uint8_t zdone[FV_ZFRAMES_MAX];
	bool zseen;  /* a compressed block was met: see prefetch() */
	bool zknown; /* prefetch() looked whether the store has any */
};

int fv_seg_reader_open(struct fv_seg_reader **out, const char *dir,
		       uint32_t nsegments, uint32_t block_size)
{
	struct fv_seg_reader *rd;
	void *m;

	if (!nsegments || block_size < FV_BLOCK_ALIGN)
		return -EINVAL;
	rd = calloc(1, sizeof(*rd));
	if (!rd)
		return -ENOMEM;
	snprintf(rd->dir, sizeof(rd->dir), "%s", dir);
	rd->nsegments = nsegments;
	rd->block_size = block_size;
	rd->fds = malloc((size_t)MAX_WORKERS * nsegments * sizeof(int));
	rd->maps = calloc((size_t)MAX_WORKERS * nsegments, sizeof(*rd->maps));
	if (!rd->fds || !rd->maps ||
	    posix_memalign(&m, FV_BLOCK_ALIGN,
			   block_size > FV_MAX_FRAME + FV_REC_HDR_LEN
				   ? block_size
				   : FV_MAX_FRAME + FV_REC_HDR_LEN)) {
		free(rd->maps);
		free(rd->fds);
		free(rd);
		return -ENOMEM;
	}
	rd->buf = m;
	for (size_t i = 0; i < (size_t)MAX_WORKERS * nsegments; i++)
		rd->fds[i] = -1;
	rd->zbuf = malloc(block_size);
	rd->dctx = fv_zdctx_new();
	if (!rd->zbuf || !rd->dctx) {
		fv_seg_reader_close(rd);
		return -ENOMEM;
	}
	*out = rd;
	return 0;
}

void fv_seg_reader_close(struct fv_seg_reader *rd)
{
	if (!rd)
		return;
	for (size_t i = 0; i < (size_t)MAX_WORKERS * rd->nsegments; i++) {
		if (rd->fds[i] >= 0)
			close(rd->fds[i]);
		if (rd->maps[i].p)
			munmap((void *)rd->maps[i].p, rd->maps[i].len);
	}
	free(rd->maps);
	free(rd->fds);
	free(rd->buf);
	free(rd->zbuf);
	fv_zdctx_free(rd->dctx);
	free(rd);
}

void fv_seg_reader_forget_missing(struct fv_seg_reader *rd)
{
	for (size_t i = 0; i < (size_t)MAX_WORKERS * rd->nsegments; i++)
		if (rd->fds[i] == -2)
			rd->fds[i] = -1;
}

static int get_fd(struct fv_seg_reader *rd, unsigned worker, uint32_t idx)
{
	int *slot = &rd->fds[(size_t)worker * rd->nsegments + idx];
	char path[4200];

	if (*slot == -1) {
		fv_seg_file(path, sizeof(path), rd->dir, worker, idx);
		*slot = open(path, O_RDONLY | O_CLOEXEC);
		if (*slot < 0)
			*slot = errno == ENOENT ? -2 : -1;
	}
	return *slot;
}

/* Why a block of generation gen could not be read at this file. */
static int classify(int fd, uint32_t gen, int err)
{
	uint32_t first;

	if (fv_seg_first_gen(fd, &first) == 0 && first > gen)
		return FV_EEXPIRED;
	return err;
}

/* The CRC32C of a 64-byte block header, its crc field taken as 0. */
static uint32_t hdr_crc(const uint8_t *p)
{
	static const uint8_t zero[4];
	uint32_t c = fv_crc32c(0, p, 52);

	c = fv_crc32c(c, zero, 4);
	return fv_crc32c(c, p + 56, FV_BLOCK_HDR_LEN - 56);
}

int fv_seg_read_block(struct fv_seg_reader *rd, fv_ref ref,
		      struct fv_block *blk)
{
	unsigned worker = fv_ref_worker(ref);
	uint32_t gen = fv_ref_gen(ref), idx = gen % rd->nsegments;
	uint64_t off = (uint64_t)fv_ref_off4k(ref) * FV_BLOCK_ALIGN;
	struct fv_block_hdr *h = &blk->hdr;
	ssize_t n;
	int fd, err;

	fd = get_fd(rd, worker, idx);
	if (fd == -2)
		return FV_EEXPIRED;
	if (fd < 0)
		return -errno;
	n = pread(fd, rd->buf, FV_BLOCK_ALIGN, (off_t)off);
	if (n < 0)
		return -errno;
	if (n < FV_BLOCK_HDR_LEN)
		return classify(fd, gen, FV_EFORMAT);
	err = fv_block_hdr_decode(rd->buf, h);
	if (err)
		return classify(fd, gen, err);
	if (h->gen != gen)
		return h->gen > gen ? FV_EEXPIRED
				    : classify(fd, gen, FV_EFORMAT);
	if (h->worker != worker || h->disk_len > rd->block_size ||
	    (uint64_t)h->data_len + FV_BLOCK_HDR_LEN > rd->block_size)
		return FV_EFORMAT;
	/* A compressed block is read into zbuf, then decoded into buf. */
	if (h->flags & FV_BLK_ZSTD)
		memcpy(rd->zbuf, rd->buf, FV_BLOCK_ALIGN);
	if (h->disk_len > FV_BLOCK_ALIGN) {
		uint8_t *to = h->flags & FV_BLK_ZSTD ? rd->zbuf : rd->buf;

		n = pread(fd, to + FV_BLOCK_ALIGN, h->disk_len - FV_BLOCK_ALIGN,
			  (off_t)(off + FV_BLOCK_ALIGN));
		if (n < 0)
			return -errno;
		if ((uint32_t)n != h->disk_len - FV_BLOCK_ALIGN)
			return classify(fd, gen, FV_EFORMAT);
	}
	if (hdr_crc(rd->buf) != h->crc)
		return classify(fd, gen, FV_ECRC);
	if (h->flags & FV_BLK_ZSTD) {
		rd->zseen = true;
		err = fv_ztab_parse(h, rd->zbuf + FV_BLOCK_HDR_LEN, &rd->zt);
		for (uint32_t k = 0; !err && k < rd->zt.n; k++)
			err = fv_zframe_decode(rd->dctx, &rd->zt, k,
					       rd->zbuf + rd->zt.off[k],
					       rd->buf + FV_BLOCK_HDR_LEN);
		if (err)
			return classify(fd, gen, err);
	}
	blk->data = rd->buf + FV_BLOCK_HDR_LEN;
	blk->ref = ref;
	err = fv_block_verify(blk);
	if (err)
		return classify(fd, gen, err);
	return 0;
}

struct seg_ent {
	uint32_t idx, gen;
};

static int cmp_gen(const void *a, const void *b)
{
	const struct seg_ent *x = a, *y = b;

	return x->gen < y->gen ? -1 : x->gen > y->gen;
}

int fv_seg_scan(struct fv_seg_reader *rd, unsigned worker,
		int (*cb)(void *arg, const struct fv_block_info *bi), void *arg)
{
	struct seg_ent *v = calloc(rd->nsegments, sizeof(*v));
	uint32_t n = 0;
	int err = 0;

	if (!v)
		return -ENOMEM;
	for (uint32_t i = 0; i < rd->nsegments; i++) {
		int fd = get_fd(rd, worker, i);
		uint32_t g;

		if (fd >= 0 && fv_seg_first_gen(fd, &g) == 0 &&
		    g % rd->nsegments == i) {
			v[n].idx = i;
			v[n].gen = g;
			n++;
		}
	}
	qsort(v, n, sizeof(*v), cmp_gen);
	for (uint32_t k = 0; k < n && !err; k++) {
		uint64_t off = 0;

		for (;;) {
			struct fv_block blk;
			struct fv_block_info bi;
			fv_ref ref =
				fv_ref_make(worker, v[k].gen,
					    (uint32_t)(off / FV_BLOCK_ALIGN));

			if (off / FV_BLOCK_ALIGN > 0xffffff ||
			    fv_seg_read_block(rd, ref, &blk))
				break;
			bi.ref = ref;
			bi.seq = blk.hdr.seq;
			bi.first_ns = blk.hdr.first_ns;
			bi.last_ns = blk.hdr.last_ns;
			bi.count = blk.hdr.count;
			bi.disk_len = blk.hdr.disk_len;
			err = cb(arg, &bi);
			if (err)
				break;
			off += blk.hdr.disk_len;
		}
	}
	free(v);
	return err > 0 ? 0 : err;
}

/*
 * The mapping of segment file idx of worker, (re)made when it does not
 * reach end bytes (a file is fallocated whole when first filled, so a
 * mapping is made about once per file). Returns 0, FV_EEXPIRED for a
 * missing file, or -errno.
 */
static int get_map(struct fv_seg_reader *rd, unsigned worker, uint32_t idx,
		   uint64_t end, const uint8_t **out)
{
	struct seg_map *m = &rd->maps[(size_t)worker * rd->nsegments + idx];
	struct stat st;
	void *p;
	int fd;

	if (m->p && m->len >= end) {
		*out = m->p;
		return 0;
	}
	fd = get_fd(rd, worker, idx);
	if (fd == -2)
		return FV_EEXPIRED;
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st))
		return -errno;
	if ((uint64_t)st.st_size < end)
		return FV_EFORMAT;
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	if (m->p)
		munmap((void *)m->p, m->len);
	m->p = p;
	m->len = (size_t)st.st_size;
	*out = m->p;
	return 0;
}

/*
 * Decodes the frames of the compressed block at blk (in the mapping)
 * that bytes [off, off + len) of its records lie in, each once per
 * fv_seg_read_chain call, into rd->buf at their place: each frame is
 * copied out of the mapping first, so a writer refilling the segment
 * meanwhile changes nothing under the decoder.
 */
static int zensure(struct fv_seg_reader *rd, const uint8_t *blk, uint32_t off,
		   uint32_t len)
{
	uint32_t lo, hi;
	int err;

	if (!len)
		return 0;
	lo = (off - FV_BLOCK_HDR_LEN) >> rd->zt.shift;
	hi = (off - FV_BLOCK_HDR_LEN + len - 1) >> rd->zt.shift;
	for (uint32_t k = lo; k <= hi; k++) {
		if (rd->zdone[k])
			continue;
		memcpy(rd->zbuf, blk + rd->zt.off[k],
		       rd->zt.off[k + 1] - rd->zt.off[k]);
		err = fv_zframe_decode(rd->dctx, &rd->zt, k, rd->zbuf,
				       rd->buf + FV_BLOCK_HDR_LEN);
		if (err)
			return err;
		rd->zdone[k] = 1;
	}
	return 0;
}

int fv_seg_read_chain(struct fv_seg_reader *rd, fv_ref ref, uint32_t first_off,
		      uint32_t count, uint64_t flow_id,
		      int (*cb)(void *arg, const struct fv_rec *rec,
				const uint8_t *frame),
		      void *arg)
{
	unsigned worker = fv_ref_worker(ref);
	uint32_t gen = fv_ref_gen(ref), idx = gen % rd->nsegments, seed, off;
	uint64_t base = (uint64_t)fv_ref_off4k(ref) * FV_BLOCK_ALIGN, end,
		 maplen;
	const uint8_t *map = NULL;
	uint8_t hb[FV_BLOCK_HDR_LEN], *p;
	struct fv_block_hdr h;
	struct fv_rec rec;
	bool z;
	int err;

	err = get_map(rd, worker, idx, base + FV_BLOCK_HDR_LEN, &map);
	if (err)
		return err;
	memcpy(hb, map + base, FV_BLOCK_HDR_LEN);
	err = fv_block_hdr_decode(hb, &h);
	if (!err && h.gen != gen)
		err = h.gen > gen ? FV_EEXPIRED : FV_EFORMAT;
	if (!err && (h.worker != worker || h.disk_len > rd->block_size ||
		     hdr_crc(hb) != h.crc))
		err = FV_ECRC;
	if (err)
		goto bad;
	end = FV_BLOCK_HDR_LEN + (uint64_t)h.data_len;
	maplen = rd->maps[(size_t)worker * rd->nsegments + idx].len;
	z = h.flags & FV_BLK_ZSTD;
	if (z) {
		/* The frame table (copied out), then the frames as needed. */
		if (end > rd->block_size ||
		    base + FV_BLOCK_HDR_LEN + 4u * h.nframes > maplen) {
			err = FV_EFORMAT;
			goto bad;
		}
		memcpy(rd->zbuf, map + base + FV_BLOCK_HDR_LEN, 4u * h.nframes);
		err = fv_ztab_parse(&h, rd->zbuf, &rd->zt);
		if (err)
			goto bad;
		if (base + rd->zt.off[rd->zt.n] > maplen) {
			err = FV_EFORMAT;
			goto bad;
		}
		memset(rd->zdone, 0, rd->zt.n);
		rd->zseen = true;
	} else if (base + end > maplen) {
		err = FV_EFORMAT;
		goto bad;
	}
	seed = fv_rec_seed(ref);
	off = first_off;
	for (uint32_t i = 0; i < count; i++) {
		uint32_t need;

		/* Each record is copied out (or decoded), then checked on
		 * the copy. */
		if (off < FV_BLOCK_HDR_LEN || off % 8 ||
		    off + (uint64_t)FV_REC_HDR_LEN > end) {
			err = FV_ECORRUPT;
			goto bad;
		}
		if (z) {
			err = zensure(rd, map + base, off, FV_REC_HDR_LEN);
			if (err)
				goto bad;
			p = rd->buf + off;
		} else {
			p = rd->buf;
			memcpy(p, map + base + off, FV_REC_HDR_LEN);
		}
		fv_rec_decode(p, &rec);
		need = FV_REC_HDR_LEN + rec.caplen;
		if (rec.caplen > FV_MAX_FRAME || off + (uint64_t)need > end) {
			err = FV_ECRC;
			goto bad;
		}
		if (z)
			err = zensure(rd, map + base, off + FV_REC_HDR_LEN,
				      rec.caplen);
		else
			memcpy(p + FV_REC_HDR_LEN,
			       map + base + off + FV_REC_HDR_LEN, rec.caplen);
		if (err)
			goto bad;
		if (fv_rec_crc(seed, p, p + FV_REC_HDR_LEN, rec.caplen) !=
		    rec.crc) {
			err = FV_ECRC;
			goto bad;
		}
		if (rec.flow_id != flow_id ||
		    (i + 1 < count && rec.next <= off)) {
			err = FV_ECORRUPT;
			goto bad;
		}
		err = cb(arg, &rec, p + FV_REC_HDR_LEN);
		if (err)
			return err;
		off = rec.next;
	}
	return 0;
bad:
	/* A block refilled under us reads as expired, not as damage. */
	{
		int fd = get_fd(rd, worker, idx);

		if (err != FV_EEXPIRED && fd >= 0) {
			memcpy(hb, map + base, FV_BLOCK_HDR_LEN);
			if (fv_block_hdr_decode(hb, &h) == 0 && h.gen > gen)
				return FV_EEXPIRED;
			return classify(fd, gen, err);
		}
	}
	return err;
}

/* Whether the page at off of a segment is in memory (mapped, mincore). */
static bool resident(struct fv_seg_reader *rd, unsigned worker, uint32_t idx,
		     uint64_t off)
{
	const uint8_t *map;
	unsigned char v = 0;

	if (get_map(rd, worker, idx, off + FV_BLOCK_ALIGN, &map))
		return false;
	return mincore((void *)(map + off), FV_BLOCK_ALIGN, &v) == 0 && (v & 1);
}

static void prefetch(struct fv_seg_reader *rd, fv_ref ref, uint32_t from)
{
	unsigned worker = fv_ref_worker(ref);
	uint32_t idx = fv_ref_gen(ref) % rd->nsegments;
	uint64_t base = (uint64_t)fv_ref_off4k(ref) * FV_BLOCK_ALIGN;
	int fd = get_fd(rd, worker, idx);

	if (fd < 0 || from >= rd->block_size)
		return;
	/* A compressed block's records are not at their offsets: the
	 * whole block (it ends before block_size). */
	if (rd->zseen)
		from = 0;
	/* The header page, then the flow's part of the block. */
	posix_fadvise(fd, (off_t)base, FV_BLOCK_ALIGN, POSIX_FADV_WILLNEED);
	from &= ~(uint32_t)(FV_BLOCK_ALIGN - 1);
	if (from)
		posix_fadvise(fd, (off_t)(base + from), rd->block_size - from,
			      POSIX_FADV_WILLNEED);
	else
		posix_fadvise(fd, (off_t)base, rd->block_size,
			      POSIX_FADV_WILLNEED);
}

/* Whether the first page of a run's part of its block is in memory. */
static bool run_resident(struct fv_seg_reader *rd, const struct fv_run *r)
{
	unsigned worker = fv_ref_worker(r->ref);
	uint32_t idx = fv_ref_gen(r->ref) % rd->nsegments;
	uint64_t off =
		(uint64_t)fv_ref_off4k(r->ref) * FV_BLOCK_ALIGN +
		(rd->zseen ? 0 : r->off & ~(uint32_t)(FV_BLOCK_ALIGN - 1));

	return resident(rd, worker, idx, off);
}

/* Whether the block at ref is compressed, from its header in the mapping
 * (a page read when it is not in memory). */
static bool zpeek(struct fv_seg_reader *rd, fv_ref ref)
{
	uint64_t base = (uint64_t)fv_ref_off4k(ref) * FV_BLOCK_ALIGN;
	const uint8_t *map;
	uint8_t hb[FV_BLOCK_HDR_LEN];
	struct fv_block_hdr h;

	if (get_map(rd, fv_ref_worker(ref), fv_ref_gen(ref) % rd->nsegments,
		    base + FV_BLOCK_HDR_LEN, &map))
		return false;
	memcpy(hb, map + base, sizeof(hb));
	return fv_block_hdr_decode(hb, &h) == 0 && (h.flags & FV_BLK_ZSTD);
}

void fv_seg_prefetch_runs(struct fv_seg_reader *rd, const struct fv_run *v,
			  size_t n)
{
	if (!n)
		return;
	/* A reader that has read no block yet looks once whether the
	 * store is compressed, so its advice covers the right bytes. */
	if (!rd->zknown) {
		rd->zknown = true;
		if (!rd->zseen && zpeek(rd, v[0].ref))
			rd->zseen = true;
	}
	if (run_resident(rd, &v[0]) && run_resident(rd, &v[n - 1]))
		return;
	for (size_t i = 0; i < n; i++)
		if (i == 0 || v[i].ref != v[i - 1].ref)
			prefetch(rd, v[i].ref, v[i].off);
}
