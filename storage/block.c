/*
 * block.c - block header codec and record iteration (docs/format.md).
 * All integers on disk are little-endian.
 */
#include <errno.h>
#include <string.h>

#include "common/fv.h"
#include "storage/storage.h"
#include "storage/storage_int.h"

static inline uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}
static inline uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}
static inline uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}
static inline void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}
static inline void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}
static inline void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

void fv_block_hdr_encode(const struct fv_block_hdr *h, uint8_t *p)
{
	memset(p, 0, FV_BLOCK_HDR_LEN);
	put32(p + 0, h->magic);
	put16(p + 4, h->version);
	put16(p + 6, h->hdr_len);
	put32(p + 8, h->gen);
	put16(p + 12, h->worker);
	put16(p + 14, h->flags);
	put64(p + 16, h->seq);
	put64(p + 24, h->first_ns);
	put64(p + 32, h->last_ns);
	put32(p + 40, h->count);
	put32(p + 44, h->data_len);
	put32(p + 48, h->disk_len);
	put32(p + 52, h->crc);
}

int fv_block_hdr_decode(const uint8_t *p, struct fv_block_hdr *h)
{
	h->magic = le32(p + 0);
	h->version = le16(p + 4);
	h->hdr_len = le16(p + 6);
	h->gen = le32(p + 8);
	h->worker = le16(p + 12);
	h->flags = le16(p + 14);
	h->seq = le64(p + 16);
	h->first_ns = le64(p + 24);
	h->last_ns = le64(p + 32);
	h->count = le32(p + 40);
	h->data_len = le32(p + 44);
	h->disk_len = le32(p + 48);
	h->crc = le32(p + 52);
	if (h->magic != FV_BLOCK_MAGIC)
		return FV_EFORMAT;
	if (h->version != FV_BLOCK_VERSION)
		return FV_EVERSION;
	if (h->hdr_len != FV_BLOCK_HDR_LEN || h->disk_len % FV_BLOCK_ALIGN ||
	    (uint64_t)h->data_len + FV_BLOCK_HDR_LEN > h->disk_len ||
	    h->disk_len == 0)
		return FV_EFORMAT;
	return 0;
}

void fv_rec_encode(const struct fv_rec *r, uint8_t *p)
{
	put64(p, r->ts_ns);
	put64(p + 8, r->flow_id);
	put32(p + 16, r->caplen);
	put32(p + 20, r->origlen);
	put16(p + 24, r->iface);
	put16(p + 26, r->flags);
	put32(p + 28, 0);
}

int fv_block_next(const struct fv_block *blk, uint32_t *off,
		  struct fv_rec *rec, const uint8_t **frame)
{
	uint32_t o = *off, len = blk->hdr.data_len, need;
	const uint8_t *p;

	if (o >= len)
		return 0;
	if (len - o < FV_REC_HDR_LEN)
		return FV_EFORMAT;
	p = blk->data + o;
	rec->ts_ns = le64(p);
	rec->flow_id = le64(p + 8);
	rec->caplen = le32(p + 16);
	rec->origlen = le32(p + 20);
	rec->iface = le16(p + 24);
	rec->flags = le16(p + 26);
	rec->reserved = le32(p + 28);
	if (rec->caplen > FV_MAX_FRAME)
		return FV_EFORMAT;
	need = (FV_REC_HDR_LEN + rec->caplen + 7) & ~7u;
	if (need > len - o)
		return FV_EFORMAT;
	*frame = p + FV_REC_HDR_LEN;
	*off = o + need;
	return 1;
}
