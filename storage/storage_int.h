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

#endif
