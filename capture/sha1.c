/*
 * sha1.c - SHA-1 as specified in FIPS 180-4: section 5.1.1 (padding),
 * 5.3.1 (initial hash value), 6.1.2 (the hash computation), 4.1.1 and
 * 4.2.1 (the functions and constants). Written from the standard; the
 * tests check the standard's example vectors.
 */
#include <string.h>

#include "capture/sha1_int.h"
#include "common/fv.h"

static uint32_t rotl(uint32_t x, unsigned n)
{
	return x << n | x >> (32 - n);
}

/* Processes one 512-bit block (FIPS 180-4 section 6.1.2). */
static void sha1_block(struct fv_sha1 *s, const uint8_t *blk)
{
	uint32_t w[80], a, b, c, d, e, f, k, t;
	int i;

	for (i = 0; i < 16; i++)
		w[i] = fv_be32(blk + 4 * i);
	for (i = 16; i < 80; i++)
		w[i] = rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
	a = s->h[0];
	b = s->h[1];
	c = s->h[2];
	d = s->h[3];
	e = s->h[4];
	for (i = 0; i < 80; i++) {
		if (i < 20) {
			f = (b & c) ^ (~b & d); /* Ch */
			k = 0x5a827999;
		} else if (i < 40) {
			f = b ^ c ^ d; /* Parity */
			k = 0x6ed9eba1;
		} else if (i < 60) {
			f = (b & c) ^ (b & d) ^ (c & d); /* Maj */
			k = 0x8f1bbcdc;
		} else {
			f = b ^ c ^ d;
			k = 0xca62c1d6;
		}
		t = rotl(a, 5) + f + e + k + w[i];
		e = d;
		d = c;
		c = rotl(b, 30);
		b = a;
		a = t;
	}
	s->h[0] += a;
	s->h[1] += b;
	s->h[2] += c;
	s->h[3] += d;
	s->h[4] += e;
}

void fv_sha1_init(struct fv_sha1 *s)
{
	s->h[0] = 0x67452301;
	s->h[1] = 0xefcdab89;
	s->h[2] = 0x98badcfe;
	s->h[3] = 0x10325476;
	s->h[4] = 0xc3d2e1f0;
	s->nbytes = 0;
	s->buf_len = 0;
}

void fv_sha1_update(struct fv_sha1 *s, const void *data, size_t len)
{
	const uint8_t *p = data;

	if (!len)
		return;
	s->nbytes += len;
	if (s->buf_len) {
		size_t n = 64 - s->buf_len;

		if (n > len)
			n = len;
		memcpy(s->buf + s->buf_len, p, n);
		s->buf_len += (uint32_t)n;
		p += n;
		len -= n;
		if (s->buf_len < 64)
			return;
		sha1_block(s, s->buf);
		s->buf_len = 0;
	}
	while (len >= 64) {
		sha1_block(s, p);
		p += 64;
		len -= 64;
	}
	if (len) {
		memcpy(s->buf, p, len);
		s->buf_len = (uint32_t)len;
	}
}

void fv_sha1_final(struct fv_sha1 *s, uint8_t out[FV_SHA1_LEN])
{
	uint64_t bits = s->nbytes * 8;
	int i;

	/* FIPS 180-4 section 5.1.1: a 1 bit, zeros to 448 mod 512, then the
	 * message length in bits as a 64-bit big-endian number. */
	s->buf[s->buf_len++] = 0x80;
	if (s->buf_len > 56) {
		memset(s->buf + s->buf_len, 0, 64 - s->buf_len);
		sha1_block(s, s->buf);
		s->buf_len = 0;
	}
	memset(s->buf + s->buf_len, 0, 56 - s->buf_len);
	fv_put_be64(s->buf + 56, bits);
	sha1_block(s, s->buf);
	for (i = 0; i < 5; i++)
		fv_put_be32(out + 4 * i, s->h[i]);
	memset(s, 0, sizeof(*s));
}

void fv_sha1(const void *data, size_t len, uint8_t out[FV_SHA1_LEN])
{
	struct fv_sha1 s;

	fv_sha1_init(&s);
	fv_sha1_update(&s, data, len);
	fv_sha1_final(&s, out);
}
