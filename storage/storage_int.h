/*
 * storage_int.h - internals shared by the files of storage/ only.
 */
#ifndef FV_STORAGE_STORAGE_INT_H
#define FV_STORAGE_STORAGE_INT_H

#include <stdint.h>

#include "storage/storage.h"

/* Encodes a record header into its 32 disk bytes. */
void fv_rec_encode(const struct fv_rec *r, uint8_t *p);

/* "DIR/wNN" and "DIR/wNN/sNNNNNN.fvseg". */
void fv_seg_worker_dir(char *buf, unsigned len, const char *dir,
		       unsigned worker);
void fv_seg_file(char *buf, unsigned len, const char *dir, unsigned worker,
		 uint32_t index);

/* Reads the header of the first block of an open segment file: 0 and
 * *gen, or an error if it holds no valid block. */
int fv_seg_first_gen(int fd, uint32_t *gen);

#endif
