/*
 * fv.h - what every flowvault module shares: error codes, time and size
 * helpers.
 *
 * Errors: a call that can fail returns 0 (or a count) on success and a
 * negative number on failure: -errno for system errors, or one of the
 * FV_E* codes below (all below -FV_E_BASE so they never clash with errno).
 * fv_strerror() names both kinds. Foreign codes (LMDB, libpcap, io_uring)
 * are translated where they enter the project.
 */
#ifndef FV_COMMON_FV_H
#define FV_COMMON_FV_H

#include <stddef.h>
#include <stdint.h>

#define FV_VERSION "0.1.0"

#define FV_E_BASE 4096
enum fv_error {
	FV_EFORMAT =
		-(FV_E_BASE + 1),   /* bytes are not in the format expected */
	FV_ECRC = -(FV_E_BASE + 2), /* a block's CRC32C does not match */
	FV_EEXPIRED = -(FV_E_BASE + 3), /* packets were recycled by retention */
	FV_EFILTER = -(FV_E_BASE + 4),	/* a filter expression does not parse */
	FV_ENOTFOUND = -(FV_E_BASE + 5), /* no such flow / key */
	FV_ECORRUPT = -(FV_E_BASE + 6),	 /* store or index inconsistent */
	FV_EVERSION = -(FV_E_BASE + 7),	 /* on-disk format version unknown */
	FV_EFULL = -(FV_E_BASE + 8),	 /* a fixed-size table or map is full */
	FV_EINDEX = -(FV_E_BASE + 9),	 /* LMDB failed (detail in the log) */
	FV_ELOCKED = -(FV_E_BASE + 10),	 /* store in use by another writer */
	FV_EPCAP = -(FV_E_BASE + 11),	 /* libpcap failed (detail in errbuf) */
	FV_ETRUNC = -(FV_E_BASE + 12),	 /* input ended in the middle of data */
	FV_EUSAGE = -(FV_E_BASE + 13),	 /* bad argument from the user */
	FV_EUNSUPPORTED = -(FV_E_BASE + 14), /* not built in / not here */
};

/* Returns a static string naming err (negative errno or FV_E*). */
const char *fv_strerror(int err);

#define FV_NSEC_PER_SEC 1000000000ULL

/*
 * Parses a time: RFC 3339 ("2026-11-22T10:00:00Z", fractions and offsets
 * allowed, also a space instead of T), epoch seconds with an optional
 * fraction ("1700000000.5"), or a relative time "-15m" / "-2h" / "-1d"
 * counted back from now_ns. Stores nanoseconds since the epoch in *ns.
 * Returns 0 or FV_EUSAGE.
 */
int fv_parse_time(const char *s, uint64_t now_ns, uint64_t *ns);

/* Formats ns as RFC 3339 UTC with nanoseconds into buf (>= 40 bytes). */
char *fv_format_time(uint64_t ns, char *buf, size_t len);

/*
 * Parses a size with an optional K/M/G/T suffix (powers of 1024; a
 * trailing "B" or "iB" is allowed). Returns 0 or FV_EUSAGE.
 */
int fv_parse_size(const char *s, uint64_t *out);

/* Parses a count with an optional k/M/G suffix (powers of 1000). */
int fv_parse_count(const char *s, uint64_t *out);

/* Parses a duration ("90", "90s", "5m", "2h", "1d", "250ms") into ns. */
int fv_parse_duration(const char *s, uint64_t *ns);

/* Monotonic and wall clocks in ns. */
uint64_t fv_now_mono_ns(void);
uint64_t fv_now_real_ns(void);

/*
 * Large buffers and tables (block buffers, the flow table, read buffers):
 * len bytes of zeroed anonymous memory, aligned to 2 MiB and advised to
 * use transparent huge pages where the kernel allows it, so touching it
 * the first time costs one page fault per 2 MiB instead of one per
 * 4 KiB (a fault is dear under virtualisation). Nothing is touched here:
 * memory that is never used costs nothing. Returns NULL when out of
 * memory. Free with fv_big_free(p, len) (the same len); NULL is allowed.
 */
void *fv_big_alloc(size_t len);
void fv_big_free(void *p, size_t len);

/* CRC32C (Castagnoli), as used by iSCSI/ext4; crc starts at 0. */
uint32_t fv_crc32c(uint32_t crc, const void *buf, size_t len);

/* Unaligned big-endian loads and stores. */
static inline uint16_t fv_be16(const uint8_t *p)
{
	return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}
static inline uint32_t fv_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t fv_be64(const uint8_t *p)
{
	return (uint64_t)fv_be32(p) << 32 | fv_be32(p + 4);
}
static inline void fv_put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}
static inline void fv_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}
static inline void fv_put_be64(uint8_t *p, uint64_t v)
{
	fv_put_be32(p, (uint32_t)(v >> 32));
	fv_put_be32(p + 4, (uint32_t)v);
}

/* Unaligned little-endian loads and stores (the on-disk byte order). */
static inline uint16_t fv_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}
static inline uint32_t fv_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}
static inline uint64_t fv_le64(const uint8_t *p)
{
	return (uint64_t)fv_le32(p) | (uint64_t)fv_le32(p + 4) << 32;
}
static inline void fv_put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}
static inline void fv_put_le32(uint8_t *p, uint32_t v)
{
	fv_put_le16(p, (uint16_t)v);
	fv_put_le16(p + 2, (uint16_t)(v >> 16));
}
static inline void fv_put_le64(uint8_t *p, uint64_t v)
{
	fv_put_le32(p, (uint32_t)v);
	fv_put_le32(p + 4, (uint32_t)(v >> 32));
}

/* LEB128 varints. put returns bytes written (<= 10); get returns bytes
 * read, or 0 if the input ends before the varint does. */
size_t fv_varint_put(uint8_t *p, uint64_t v);
size_t fv_varint_get(const uint8_t *p, size_t len, uint64_t *v);

#endif
