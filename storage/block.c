/*
 * block.c - block header codec and record iteration (docs/format.md).
 * All integers on disk are little-endian.
 */
#include <errno.h>
#include <string.h>

#include "common/fv.h"
#include "storage/storage.h"
#include "storage/storage_int.h"

void fv_block_hdr_encode(const struct fv_block_hdr *h, uint8_t *p)
{
	memset(p, 0, FV_BLOCK_HDR_LEN);
	fv_put_le32(p + 0, h->magic);
	fv_put_le16(p + 4, h->version);
	fv_put_le16(p + 6, h->hdr_len);
	fv_put_le32(p + 8, h->gen);
	fv_put_le16(p + 12, h->worker);
	fv_put_le16(p + 14, h->flags);
	fv_put_le64(p + 16, h->seq);
	fv_put_le64(p + 24, h->first_ns);
	fv_put_le64(p + 32, h->last_ns);
	fv_put_le32(p + 40, h->count);
	fv_put_le32(p + 44, h->data_len);
	fv_put_le32(p + 48, h->disk_len);
	fv_put_le32(p + 52, h->crc);
	fv_put_le16(p + 56, h->nframes);
	p[58] = h->frame_shift;
	fv_put_le32(p + 60, h->table_crc);
}

int fv_block_hdr_decode(const uint8_t *p, struct fv_block_hdr *h)
{
	h->magic = fv_le32(p + 0);
	h->version = fv_le16(p + 4);
	h->hdr_len = fv_le16(p + 6);
	h->gen = fv_le32(p + 8);
	h->worker = fv_le16(p + 12);
	h->flags = fv_le16(p + 14);
	h->seq = fv_le64(p + 16);
	h->first_ns = fv_le64(p + 24);
	h->last_ns = fv_le64(p + 32);
	h->count = fv_le32(p + 40);
	h->data_len = fv_le32(p + 44);
	h->disk_len = fv_le32(p + 48);
	h->crc = fv_le32(p + 52);
	h->nframes = fv_le16(p + 56);
	h->frame_shift = p[58];
	h->table_crc = fv_le32(p + 60);
	if (h->magic != FV_BLOCK_MAGIC)
		return FV_EFORMAT;
	if (h->version != FV_BLOCK_VERSION && h->version != FV_BLOCK_VERSION_Z)
		return FV_EVERSION;
	if (h->hdr_len != FV_BLOCK_HDR_LEN || h->disk_len % FV_BLOCK_ALIGN ||
	    h->disk_len == 0)
		return FV_EFORMAT;
	if (!(h->flags & FV_BLK_ZSTD))
		return h->flags || h->nframes || h->frame_shift || p[59] ||
				       h->table_crc ||
				       (uint64_t)h->data_len +
						       FV_BLOCK_HDR_LEN >
					       h->disk_len
			       ? FV_EFORMAT
			       : 0;
	/* Compressed: the table must fit, the frames cover data_len. */
	if (h->version < FV_BLOCK_VERSION_Z || h->flags != FV_BLK_ZSTD ||
	    h->frame_shift < FV_ZFRAME_SHIFT_MIN ||
	    h->frame_shift > FV_ZFRAME_SHIFT_MAX || p[59] || !h->data_len ||
	    h->nframes > FV_ZFRAMES_MAX ||
	    h->nframes != ((uint64_t)h->data_len + (1u << h->frame_shift) -
			   1) >> h->frame_shift ||
	    FV_BLOCK_HDR_LEN + 4u * h->nframes > h->disk_len)
		return FV_EFORMAT;
	return 0;
}

void fv_rec_encode(const struct fv_rec *r, uint8_t *p)
{
	fv_put_le64(p, r->ts_ns);
	fv_put_le64(p + 8,
		    (r->flow_id & FV_FLOW_ID_MAX) | (uint64_t)r->iface << 48);
	fv_put_le32(p + 16, r->caplen | (uint32_t)(r->flags & 0xff) << 24);
	fv_put_le32(p + 20, r->origlen);
	fv_put_le32(p + 24, 0);
	fv_put_le32(p + 28, 0);
}

void fv_rec_decode(const uint8_t *p, struct fv_rec *r)
{
	uint64_t idf = fv_le64(p + 8);
	uint32_t cf = fv_le32(p + 16);

	r->ts_ns = fv_le64(p);
	r->flow_id = idf & FV_FLOW_ID_MAX;
	r->iface = (uint16_t)(idf >> 48);
	r->caplen = cf & 0xffffff;
	r->flags = (uint16_t)(cf >> 24);
	r->origlen = fv_le32(p + 20);
	r->crc = fv_le32(p + 24);
	r->next = fv_le32(p + 28);
}

uint32_t fv_rec_seed(fv_ref ref)
{
	uint8_t b[8];

	fv_put_le32(b, fv_ref_gen(ref));
	fv_put_le32(b + 4, fv_ref_off4k(ref));
	return fv_crc32c(0, b, sizeof(b));
}

uint32_t fv_rec_crc(uint32_t seed, const uint8_t *hdr, const uint8_t *frame,
		    uint32_t caplen)
{
	return fv_crc32c(fv_crc32c(seed, hdr, 24), frame, caplen);
}

int fv_block_next(const struct fv_block *blk, uint32_t *off, struct fv_rec *rec,
		  const uint8_t **frame)
{
	uint32_t o = *off, len = blk->hdr.data_len, need;
	const uint8_t *p;

	if (o >= len)
		return 0;
	if (len - o < FV_REC_HDR_LEN)
		return FV_EFORMAT;
	p = blk->data + o;
	fv_rec_decode(p, rec);
	if (rec->caplen > FV_MAX_FRAME)
		return FV_EFORMAT;
	need = (FV_REC_HDR_LEN + rec->caplen + 7) & ~7u;
	if (need > len - o)
		return FV_EFORMAT;
	*frame = p + FV_REC_HDR_LEN;
	*off = o + need;
	return 1;
}

int fv_block_verify(const struct fv_block *blk)
{
	uint32_t off = 0, n = 0, seed = fv_rec_seed(blk->ref);
	const uint8_t *frame;
	struct fv_rec rec;
	int rc;

	while ((rc = fv_block_next(blk, &off, &rec, &frame)) == 1) {
		const uint8_t *p = frame - FV_REC_HDR_LEN;

		if (fv_rec_crc(seed, p, frame, rec.caplen) != rec.crc)
			return FV_ECRC;
		/* A chain goes forward and stays inside the block. */
		if (rec.next &&
		    (rec.next <= off + FV_BLOCK_HDR_LEN - 8 || rec.next % 8 ||
		     rec.next >= blk->hdr.data_len + FV_BLOCK_HDR_LEN))
			return FV_ECRC;
		n++;
	}
	if (rc < 0)
		return FV_ECRC;
	return n == blk->hdr.count ? 0 : FV_ECRC;
}
