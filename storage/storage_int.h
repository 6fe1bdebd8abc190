/*
 * storage_int.h - internals shared by the files of storage/ only.
 */
#ifndef FV_STORAGE_STORAGE_INT_H
#define FV_STORAGE_STORAGE_INT_H

#include <stdint.h>

#include "storage/storage.h"

/* Encodes a record header into its 32 disk bytes (crc and next 0), and
 * decodes one. */
void fv_rec_encode(const struct fv_rec *r, uint8_t *p);
void fv_rec_decode(const uint8_t *p, struct fv_rec *r);

/* The CRC32C seed of the records of the block at ref, and a record's CRC
 * (header bytes 0..23, then the frame). */
uint32_t fv_rec_seed(fv_ref ref);
uint32_t fv_rec_crc(uint32_t seed, const uint8_t *hdr, const uint8_t *frame,
		    uint32_t caplen);

/* Checks every record of a block read whole: structure, CRCs, chain
 * links, count. Returns 0 or FV_ECRC. */
int fv_block_verify(const struct fv_block *blk);

/* "DIR/wNN" and "DIR/wNN/sNNNNNN.fvseg". */
void fv_seg_worker_dir(char *buf, unsigned len, const char *dir,
		       unsigned worker);
void fv_seg_file(char *buf, unsigned len, const char *dir, unsigned worker,
		 uint32_t index);

/* Reads the header of the first block of an open segment file: 0 and
 * *gen, or an error if it holds no valid block. */
int fv_seg_first_gen(int fd, uint32_t *gen);

/* ---- compressed blocks (zblock.c) ---- */

struct fv_zcomp;

/* A compressor for blocks of up to block_size bytes at a zstd level. */
int fv_zcomp_new(struct fv_zcomp **out, int level, uint32_t block_size);
void fv_zcomp_free(struct fv_zcomp *z);

/*
 * Compresses a sealed block in place: blk holds the header room and
 * h->data_len bytes of records after it, h the header about to be
 * written (disk_len: its uncompressed length). When that saves at least
 * one 4 KiB page, the frame table and frames replace the records and h
 * becomes a version 3 header (flags, nframes, frame_shift, table_crc,
 * the smaller disk_len, zero padding written); otherwise nothing changes.
 */
void fv_zblock_pack(struct fv_zcomp *z, uint8_t *blk, struct fv_block_hdr *h);

/* The frame table of a compressed block, parsed and checked. */
struct fv_ztab {
	uint32_t n, shift, data_len;
	uint32_t off[FV_ZFRAMES_MAX + 1]; /* from the block's start */
	uint8_t raw[FV_ZFRAMES_MAX];	  /* stored without compression */
};

/* Parses the 4 * h->nframes bytes of table that follow a compressed
 * block's header (h decoded and its CRC checked): 0, or FV_ECRC when the
 * table's CRC fails or its frames do not fit in disk_len. */
int fv_ztab_parse(const struct fv_block_hdr *h, const uint8_t *table,
		  struct fv_ztab *t);
/* Bytes of records frame k holds once decoded. */
uint32_t fv_ztab_frame_len(const struct fv_ztab *t, uint32_t k);
/* Decodes frame k (its t->off[k + 1] - t->off[k] bytes at src, a private
 * copy) into data + (k << shift), data being the records' start (the
 * byte after the header). 0, or FV_ECRC when it does not decode to
 * exactly its length. */
int fv_zframe_decode(void *dctx, const struct fv_ztab *t, uint32_t k,
		     const uint8_t *src, uint8_t *data);
void *fv_zdctx_new(void);
void fv_zdctx_free(void *dctx);

#endif
