/*
 * sha1_int.h - SHA-1 (FIPS 180-4 section 6.1), used inside capture/ for
 * the Community ID. Not for security: SHA-1 is what that identifier is
 * defined with. Streaming: init, update any number of times, final.
 */
#ifndef FV_CAPTURE_SHA1_INT_H
#define FV_CAPTURE_SHA1_INT_H

#include <stddef.h>
#include <stdint.h>

#define FV_SHA1_LEN 20

struct fv_sha1 {
	uint32_t h[5];
	uint64_t nbytes;  /* message bytes so far */
	uint8_t buf[64];  /* the partial block */
	uint32_t buf_len; /* bytes in buf */
};

void fv_sha1_init(struct fv_sha1 *s);
void fv_sha1_update(struct fv_sha1 *s, const void *data, size_t len);
/* Pads, writes the 20-byte digest to out; s must be initialised again
 * before reuse. */
void fv_sha1_final(struct fv_sha1 *s, uint8_t out[FV_SHA1_LEN]);
/* One-shot digest of data. */
void fv_sha1(const void *data, size_t len, uint8_t out[FV_SHA1_LEN]);

#endif
