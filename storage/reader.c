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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fv.h"
#include "storage/storage.h"
#include "storage/storage_int.h"

#define MAX_WORKERS 256

struct fv_seg_reader {
	char dir[4096];
	uint32_t nsegments;
	uint32_t block_size;
	uint8_t *buf;
	int *fds; /* [worker * nsegments + index], -1 unopened, -2 missing */
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
	if (!rd->fds || posix_memalign(&m, FV_BLOCK_ALIGN, block_size)) {
		free(rd->fds);
		free(rd);
		return -ENOMEM;
	}
	rd->buf = m;
	for (size_t i = 0; i < (size_t)MAX_WORKERS * nsegments; i++)
		rd->fds[i] = -1;
	*out = rd;
	return 0;
}

void fv_seg_reader_close(struct fv_seg_reader *rd)
{
	if (!rd)
		return;
	for (size_t i = 0; i < (size_t)MAX_WORKERS * rd->nsegments; i++)
		if (rd->fds[i] >= 0)
			close(rd->fds[i]);
	free(rd->fds);
	free(rd->buf);
	free(rd);
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
	if (h->worker != worker || h->disk_len > rd->block_size)
		return FV_EFORMAT;
	if (h->disk_len > FV_BLOCK_ALIGN) {
		n = pread(fd, rd->buf + FV_BLOCK_ALIGN,
			  h->disk_len - FV_BLOCK_ALIGN,
			  (off_t)(off + FV_BLOCK_ALIGN));
		if (n < 0)
			return -errno;
		if ((uint32_t)n != h->disk_len - FV_BLOCK_ALIGN)
			return classify(fd, gen, FV_EFORMAT);
	}
	{
		uint32_t want = h->crc, crc;

		memset(rd->buf + 52, 0, 4);
		crc = fv_crc32c(0, rd->buf, FV_BLOCK_HDR_LEN + h->data_len);
		fv_put_le32(rd->buf + 52, want);
		if (crc != want)
			return classify(fd, gen, FV_ECRC);
	}
	blk->data = rd->buf + FV_BLOCK_HDR_LEN;
	blk->ref = ref;
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
