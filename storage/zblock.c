/*
 * zblock.c - compressed blocks (docs/format.md "Compressed blocks").
 *
 * A block's records are cut into frames of 16 KiB (the last shorter) and
 * each is compressed by itself with zstd, so a reader that wants a few
 * records of one flow decodes only the frames they lie in. The frames
 * follow a table of their lengths, right after the header; a frame that
 * zstd cannot shrink is stored as it is (bit 31 of its length). A block
 * that would not take at least one 4 KiB page less on disk is left
 * uncompressed (version 2). Offsets in a block - the index's places, the
 * per-flow chain, the records' CRC seed - are those of the uncompressed
 * records, so compression changes nothing above this file and the
 * reader.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "common/fv.h"
#include "storage/storage.h"
#include "storage/storage_int.h"

#define ZFRAME_SHIFT 14
#define RAW_BIT	     0x80000000u

struct fv_zcomp {
	ZSTD_CCtx *cctx;
	uint8_t *out; /* a block being built: header room, table, frames */
	uint32_t cap;
};

int fv_zcomp_new(struct fv_zcomp **out, int level, uint32_t block_size)
{
	struct fv_zcomp *z = calloc(1, sizeof(*z));

	if (!z)
		return -ENOMEM;
	z->cap = block_size;
	z->cctx = ZSTD_createCCtx();
	z->out = malloc(block_size);
	if (!z->cctx || !z->out ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(
		    z->cctx, ZSTD_c_compressionLevel, level)) ||
	    ZSTD_isError(
		    ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_checksumFlag, 0)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_contentSizeFlag,
						1))) {
		fv_zcomp_free(z);
		return -ENOMEM;
	}
	*out = z;
	return 0;
}

void fv_zcomp_free(struct fv_zcomp *z)
{
	if (!z)
		return;
	ZSTD_freeCCtx(z->cctx);
	free(z->out);
	free(z);
}

void fv_zblock_pack(struct fv_zcomp *z, uint8_t *blk, struct fv_block_hdr *h)
{
	uint32_t fsz = 1u << ZFRAME_SHIFT, n, pos, limit, disk;
	const uint8_t *in = blk + FV_BLOCK_HDR_LEN;

	n = (h->data_len + fsz - 1) >> ZFRAME_SHIFT;
	if (!n || n > FV_ZFRAMES_MAX || h->disk_len > z->cap ||
	    h->disk_len <= FV_BLOCK_ALIGN)
		return;
	/* Worth it only if it saves a page. */
	limit = h->disk_len - FV_BLOCK_ALIGN;
	pos = FV_BLOCK_HDR_LEN + 4 * n;
	for (uint32_t k = 0; k < n; k++) {
		uint32_t len = k + 1 < n ? fsz : h->data_len - k * fsz;
		size_t c = 0;

		if (pos < limit)
			c = ZSTD_compress2(z->cctx, z->out + pos, limit - pos,
					   in + (size_t)k * fsz, len);
		if (pos >= limit || ZSTD_isError(c) || c >= len) {
			if (pos > limit || len > limit - pos)
				return; /* does not shrink enough */
			memcpy(z->out + pos, in + (size_t)k * fsz, len);
			fv_put_le32(z->out + FV_BLOCK_HDR_LEN + 4 * k,
				    len | RAW_BIT);
			pos += len;
		} else {
			fv_put_le32(z->out + FV_BLOCK_HDR_LEN + 4 * k,
				    (uint32_t)c);
			pos += (uint32_t)c;
		}
	}
	disk = (pos + FV_BLOCK_ALIGN - 1) & ~(uint32_t)(FV_BLOCK_ALIGN - 1);
	if (disk > limit)
		return;
	memset(z->out + pos, 0, disk - pos);
	memcpy(blk + FV_BLOCK_HDR_LEN, z->out + FV_BLOCK_HDR_LEN,
	       disk - FV_BLOCK_HDR_LEN);
	h->version = FV_BLOCK_VERSION_Z;
	h->flags = FV_BLK_ZSTD;
	h->nframes = (uint16_t)n;
	h->frame_shift = ZFRAME_SHIFT;
	h->table_crc = fv_crc32c(0, blk + FV_BLOCK_HDR_LEN, 4 * n);
	h->disk_len = disk;
}

int fv_ztab_parse(const struct fv_block_hdr *h, const uint8_t *table,
		  struct fv_ztab *t)
{
	uint64_t off = FV_BLOCK_HDR_LEN + 4u * h->nframes;

	if (fv_crc32c(0, table, 4u * h->nframes) != h->table_crc)
		return FV_ECRC;
	t->n = h->nframes;
	t->shift = h->frame_shift;
	t->data_len = h->data_len;
	for (uint32_t k = 0; k < t->n; k++) {
		uint32_t v = fv_le32(table + 4 * k), len = v & ~RAW_BIT;

		t->raw[k] = !!(v & RAW_BIT);
		if (!len || (t->raw[k] && len != fv_ztab_frame_len(t, k)))
			return FV_ECRC;
		t->off[k] = (uint32_t)off;
		off += len;
		if (off > h->disk_len)
			return FV_ECRC;
	}
	t->off[t->n] = (uint32_t)off;
	return 0;
}

uint32_t fv_ztab_frame_len(const struct fv_ztab *t, uint32_t k)
{
	uint32_t fsz = 1u << t->shift;

	return k + 1 < t->n ? fsz : t->data_len - k * fsz;
}

int fv_zframe_decode(void *dctx, const struct fv_ztab *t, uint32_t k,
		     const uint8_t *src, uint8_t *data)
{
	uint32_t len = fv_ztab_frame_len(t, k),
		 clen = t->off[k + 1] - t->off[k];
	uint8_t *dst = data + ((size_t)k << t->shift);
	size_t r;

	if (t->raw[k]) {
		memcpy(dst, src, len);
		return 0;
	}
	r = ZSTD_decompressDCtx(dctx, dst, len, src, clen);
	return ZSTD_isError(r) || r != len ? FV_ECRC : 0;
}

void *fv_zdctx_new(void)
{
	return ZSTD_createDCtx();
}

void fv_zdctx_free(void *dctx)
{
	ZSTD_freeDCtx(dctx);
}
