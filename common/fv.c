/*
 * fv.c - error names, time/size parsing, CRC32C and varints shared by
 * every module.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "common/fv.h"

const char *fv_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case FV_EFORMAT:
		return "data is not in the expected format";
	case FV_ECRC:
		return "block checksum mismatch";
	case FV_EEXPIRED:
		return "packets expired (segment recycled by retention)";
	case FV_EFILTER:
		return "bad filter expression";
	case FV_ENOTFOUND:
		return "not found";
	case FV_ECORRUPT:
		return "store or index is inconsistent";
	case FV_EVERSION:
		return "unknown on-disk format version";
	case FV_EFULL:
		return "table or map full";
	case FV_EINDEX:
		return "index (LMDB) error";
	case FV_ELOCKED:
		return "store is in use by another writer";
	case FV_EPCAP:
		return "libpcap error";
	case FV_ETRUNC:
		return "input cut short";
	case FV_EUSAGE:
		return "bad argument";
	case FV_EUNSUPPORTED:
		return "not supported by this build or system";
	}
	if (err < 0 && err > -FV_E_BASE)
		return strerror(-err);
	return "unknown error";
}

uint64_t fv_now_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * FV_NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

uint64_t fv_now_real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * FV_NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

#define BIG_ALIGN ((size_t)2 << 20) /* an x86-64 / arm64 huge page */

static size_t big_len(size_t len)
{
	return (len + BIG_ALIGN - 1) & ~(BIG_ALIGN - 1);
}

void *fv_big_alloc(size_t len)
{
	size_t n = big_len(len), head;
	uint8_t *m;

	if (!len || n < len)
		return NULL;
	/* Over-allocate by one huge page and trim to an aligned range. */
	m = mmap(NULL, n + BIG_ALIGN, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	head = (BIG_ALIGN - ((uintptr_t)m & (BIG_ALIGN - 1))) & (BIG_ALIGN - 1);
	if (head)
		munmap(m, head);
	munmap(m + head + n, BIG_ALIGN - head);
	m += head;
#ifdef MADV_HUGEPAGE
	madvise(m, n, MADV_HUGEPAGE); /* a hint: 4 KiB pages if refused */
#endif
	return m;
}

void fv_big_free(void *p, size_t len)
{
	if (p)
		munmap(p, big_len(len));
}

/* Reads up to 9 fraction digits after a '.', as nanoseconds. */
static const char *parse_frac(const char *p, uint64_t *ns)
{
	uint64_t v = 0, scale = 100000000;

	*ns = 0;
	if (*p != '.')
		return p;
	p++;
	if (!isdigit((unsigned char)*p))
		return NULL;
	while (isdigit((unsigned char)*p)) {
		v += (uint64_t)(*p - '0') * scale;
		scale /= 10;
		p++;
	}
	*ns = v;
	return p;
}

static int parse_num(const char **pp, int ndig, int *out)
{
	int v = 0;

	for (int i = 0; i < ndig; i++) {
		if (!isdigit((unsigned char)(*pp)[i]))
			return -1;
		v = v * 10 + ((*pp)[i] - '0');
	}
	*pp += ndig;
	*out = v;
	return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + doe - 719468;
}

static int parse_rfc3339(const char *s, uint64_t *ns)
{
	const char *p = s;
	int Y, M, D, h = 0, mi = 0, sec = 0, sign, oh, om;
	uint64_t frac = 0;
	int64_t secs, off = 0;

	if (parse_num(&p, 4, &Y) || *p++ != '-' || parse_num(&p, 2, &M) ||
	    *p++ != '-' || parse_num(&p, 2, &D))
		return FV_EUSAGE;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		p++;
		if (parse_num(&p, 2, &h) || *p++ != ':' ||
		    parse_num(&p, 2, &mi))
			return FV_EUSAGE;
		if (*p == ':') {
			p++;
			if (parse_num(&p, 2, &sec))
				return FV_EUSAGE;
			p = parse_frac(p, &frac);
			if (!p)
				return FV_EUSAGE;
		}
		if (*p == 'Z' || *p == 'z') {
			p++;
		} else if (*p == '+' || *p == '-') {
			sign = *p++ == '-' ? -1 : 1;
			if (parse_num(&p, 2, &oh))
				return FV_EUSAGE;
			if (*p == ':')
				p++;
			if (parse_num(&p, 2, &om))
				return FV_EUSAGE;
			off = sign * (oh * 3600 + om * 60);
		}
	}
	if (*p || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || mi > 59 ||
	    sec > 60)
		return FV_EUSAGE;
	secs = days_from_civil(Y, M, D) * 86400 + h * 3600 + mi * 60 + sec -
	       off;
	if (secs < 0)
		return FV_EUSAGE;
	*ns = (uint64_t)secs * FV_NSEC_PER_SEC + frac;
	return 0;
}

int fv_parse_duration(const char *s, uint64_t *ns)
{
	char *end;
	double v;

	if (!s || !*s)
		return FV_EUSAGE;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return FV_EUSAGE;
	if (!strcmp(end, "") || !strcmp(end, "s"))
		v *= 1e9;
	else if (!strcmp(end, "ms"))
		v *= 1e6;
	else if (!strcmp(end, "us"))
		v *= 1e3;
	else if (!strcmp(end, "ns"))
		;
	else if (!strcmp(end, "m"))
		v *= 60e9;
	else if (!strcmp(end, "h"))
		v *= 3600e9;
	else if (!strcmp(end, "d"))
		v *= 86400e9;
	else
		return FV_EUSAGE;
	if (v > 1.8e19)
		return FV_EUSAGE;
	*ns = (uint64_t)v;
	return 0;
}

int fv_parse_time(const char *s, uint64_t now_ns, uint64_t *ns)
{
	const char *p = s;
	uint64_t secs = 0, frac = 0, d;

	if (!s || !*s)
		return FV_EUSAGE;
	if (*s == '-') {
		if (fv_parse_duration(s + 1, &d) || d > now_ns)
			return FV_EUSAGE;
		*ns = now_ns - d;
		return 0;
	}
	if (strlen(s) >= 10 && s[4] == '-')
		return parse_rfc3339(s, ns);
	if (!isdigit((unsigned char)*p))
		return FV_EUSAGE;
	while (isdigit((unsigned char)*p)) {
		if (secs > 18446744073ULL / 10)
			return FV_EUSAGE;
		secs = secs * 10 + (uint64_t)(*p - '0');
		p++;
	}
	p = parse_frac(p, &frac);
	if (!p || *p || secs > 18446744073ULL)
		return FV_EUSAGE;
	*ns = secs * FV_NSEC_PER_SEC + frac;
	return 0;
}

char *fv_format_time(uint64_t ns, char *buf, size_t len)
{
	time_t t = (time_t)(ns / FV_NSEC_PER_SEC);
	struct tm tm;
	char tmp[32];

	gmtime_r(&t, &tm);
	strftime(tmp, sizeof(tmp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%09lluZ", tmp,
		 (unsigned long long)(ns % FV_NSEC_PER_SEC));
	return buf;
}

static int parse_suffixed(const char *s, uint64_t unit, int allow_b,
			  uint64_t *out)
{
	char *end;
	double v, mul = 1;

	if (!s || !*s || *s == '-')
		return FV_EUSAGE;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return FV_EUSAGE;
	switch (toupper((unsigned char)*end)) {
	case 'K':
		mul = (double)unit;
		end++;
		break;
	case 'M':
		mul = (double)unit * unit;
		end++;
		break;
	case 'G':
		mul = (double)unit * unit * unit;
		end++;
		break;
	case 'T':
		mul = (double)unit * unit * unit * unit;
		end++;
		break;
	}
	if (allow_b && (*end == 'i' || *end == 'I'))
		end++;
	if (allow_b && (*end == 'B' || *end == 'b'))
		end++;
	if (*end || v * mul > 1.8e19)
		return FV_EUSAGE;
	*out = (uint64_t)(v * mul);
	return 0;
}

int fv_parse_size(const char *s, uint64_t *out)
{
	return parse_suffixed(s, 1024, 1, out);
}

int fv_parse_count(const char *s, uint64_t *out)
{
	return parse_suffixed(s, 1000, 0, out);
}

/* CRC32C, reflected polynomial 0x82F63B78, slicing by 8. */
static uint32_t crc_tab[8][256];
static int crc_ready;
/*
 * The hardware path runs three independent crc32 streams over three
 * adjacent pieces of CRC_LONG (then CRC_SHORT) bytes, since one stream
 * is bound by the instruction's latency (3 cycles per 8 bytes), then
 * joins them: the register after A then B is shift(crc(A), |B|) ^
 * crc_from_0(B), where shift runs |B| zero bytes through the register
 * (a linear map: four table lookups).
 */
#define CRC_LONG  256
#define CRC_SHORT 64
static uint32_t crc_long[4][256], crc_short[4][256];

static uint32_t crc_zeros(uint32_t c, size_t n)
{
	while (n--)
		c = (c >> 8) ^ crc_tab[0][c & 0xff];
	return c;
}

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crc_tab[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^
					crc_tab[0][crc_tab[t - 1][i] & 0xff];
	for (int j = 0; j < 4; j++)
		for (uint32_t i = 0; i < 256; i++) {
			crc_long[j][i] = crc_zeros(i << (8 * j), CRC_LONG);
			crc_short[j][i] = crc_zeros(i << (8 * j), CRC_SHORT);
		}
	__atomic_store_n(&crc_ready, 1, __ATOMIC_RELEASE);
}

static uint32_t crc_shift(const uint32_t t[4][256], uint32_t c)
{
	return t[0][c & 0xff] ^ t[1][(c >> 8) & 0xff] ^ t[2][(c >> 16) & 0xff] ^
	       t[3][c >> 24];
}

#if defined(__x86_64__)
#include <cpuid.h>
__attribute__((target("sse4.2"))) static uint32_t
crc_hw(uint32_t crc, const uint8_t *p, size_t len)
{
	uint64_t c = crc;

	while (len && ((uintptr_t)p & 7)) {
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
		len--;
	}
	for (size_t n = CRC_LONG; n >= CRC_SHORT; n /= 4) {
		const uint32_t(*t)[256] = n == CRC_LONG ? crc_long : crc_short;

		while (len >= 3 * n) {
			const uint8_t *end = p + n;
			uint64_t c1 = 0, c2 = 0;

			do {
				uint64_t a, b, d;

				memcpy(&a, p, 8);
				memcpy(&b, p + n, 8);
				memcpy(&d, p + 2 * n, 8);
				c = __builtin_ia32_crc32di(c, a);
				c1 = __builtin_ia32_crc32di(c1, b);
				c2 = __builtin_ia32_crc32di(c2, d);
				p += 8;
			} while (p < end);
			c = crc_shift(t, (uint32_t)c) ^ (uint32_t)c1;
			c = crc_shift(t, (uint32_t)c) ^ (uint32_t)c2;
			p += 2 * n;
			len -= 3 * n;
		}
	}
	while (len >= 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
		p += 8;
		len -= 8;
	}
	while (len--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return (uint32_t)c;
}

static int have_sse42(void)
{
	unsigned a, b, c, d;

	if (!__get_cpuid(1, &a, &b, &c, &d))
		return 0;
	return (c & bit_SSE4_2) != 0;
}
#endif

uint32_t fv_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	crc = ~crc;
#if defined(__x86_64__)
	static int hw = -1;

	if (hw < 0)
		__atomic_store_n(&hw, have_sse42(), __ATOMIC_RELAXED);
	if (!__atomic_load_n(&crc_ready, __ATOMIC_ACQUIRE))
		crc_init();
	if (hw)
		return ~crc_hw(crc, p, len);
#endif
	if (!__atomic_load_n(&crc_ready, __ATOMIC_ACQUIRE))
		crc_init();
	while (len >= 8) {
		uint32_t lo =
			crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 |
			       (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
		crc = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^
		      crc_tab[5][(lo >> 16) & 0xff] ^ crc_tab[4][lo >> 24] ^
		      crc_tab[3][p[4]] ^ crc_tab[2][p[5]] ^ crc_tab[1][p[6]] ^
		      crc_tab[0][p[7]];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = (crc >> 8) ^ crc_tab[0][(crc ^ *p++) & 0xff];
	return ~crc;
}

size_t fv_varint_put(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

size_t fv_varint_get(const uint8_t *p, size_t len, uint64_t *v)
{
	uint64_t r = 0;

	for (size_t i = 0; i < len && i < 10; i++) {
		r |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if (!(p[i] & 0x80)) {
			if (i == 9 && p[i] > 1)
				return 0;
			*v = r;
			return i + 1;
		}
	}
	return 0;
}
