/* Unit tests for common/: CRC32C vectors, varints, time/size parsing. */
#include <stdio.h>
#include <string.h>

#include "common/fv.h"

#include "tests/unit/check.h"

static void test_crc(void)
{
	/* RFC 3720 B.4 test vectors and the classic check value. */
	uint8_t zeros[32] = {0}, ones[32], inc[32];

	memset(ones, 0xff, sizeof(ones));
	for (int i = 0; i < 32; i++)
		inc[i] = (uint8_t)i;
	CHECK(fv_crc32c(0, "123456789", 9) == 0xE3069283u, "check value");
	CHECK(fv_crc32c(0, zeros, 32) == 0x8A9136AAu, "32 zeros");
	CHECK(fv_crc32c(0, ones, 32) == 0x62A8AB43u, "32 ones");
	CHECK(fv_crc32c(0, inc, 32) == 0x46DD794Eu, "incrementing");
	/* Incremental == one-shot, at every split and alignment. */
	for (size_t s = 0; s <= 32; s++) {
		uint32_t c = fv_crc32c(0, inc, s);

		c = fv_crc32c(c, inc + s, 32 - s);
		CHECK(c == 0x46DD794Eu, "split at %zu", s);
	}
	/* Against a bit-by-bit reference, at every length to 3 KiB (the
	 * three-stream pieces of 3 x 256 and 3 x 64 bytes and the tails) and
	 * at every alignment. */
	{
		static uint8_t buf[3200];
		uint32_t x = 12345;
		int bad = 0;

		for (size_t i = 0; i < sizeof(buf); i++) {
			x = x * 1103515245u + 12345u;
			buf[i] = (uint8_t)(x >> 16);
		}
		for (size_t len = 0; len <= 3072 && bad < 5; len++) {
			size_t off = len % 8;
			uint32_t want = ~0u;

			for (size_t i = 0; i < len; i++) {
				want ^= buf[off + i];
				for (int k = 0; k < 8; k++)
					want = want & 1 ? (want >> 1) ^
								  0x82F63B78u
							: want >> 1;
			}
			want = ~want;
			if (fv_crc32c(0, buf + off, len) != want) {
				CHECK(0, "length %zu at offset %zu", len, off);
				bad++;
			}
		}
		CHECK(!bad, "every length to 3072 equals the bitwise CRC32C");
	}
	printf("crc32c: vectors checked\n");
}

static void test_varint(void)
{
	uint64_t vals[] = {0,	  1,	 127,	     128,	300,
			   16383, 16384, 1ull << 32, UINT64_MAX};
	uint8_t buf[10];

	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		uint64_t v = 0;
		size_t n = fv_varint_put(buf, vals[i]);

		CHECK(fv_varint_get(buf, n, &v) == n && v == vals[i],
		      "varint %llu", (unsigned long long)vals[i]);
		CHECK(fv_varint_get(buf, n - 1, &v) == 0, "short varint");
	}
	CHECK(fv_varint_put(buf, 300) == 2 && buf[0] == 0xac && buf[1] == 0x02,
	      "300 encodes as ac 02");
	printf("varint: %zu values round-trip\n",
	       sizeof(vals) / sizeof(vals[0]));
}

static void test_time(void)
{
	uint64_t ns = 0;
	char buf[64];

	CHECK(fv_parse_time("2026-11-22T10:00:00Z", 0, &ns) == 0 &&
		      ns == 1795341600ull * FV_NSEC_PER_SEC,
	      "rfc3339 Z: %llu", (unsigned long long)ns);
	CHECK(fv_parse_time("2026-11-22T12:00:00.5+02:00", 0, &ns) == 0 &&
		      ns == 1795341600ull * FV_NSEC_PER_SEC + 500000000ull,
	      "rfc3339 offset + fraction");
	CHECK(fv_parse_time("1700000000.000000123", 0, &ns) == 0 &&
		      ns == 1700000000000000123ull,
	      "epoch with ns");
	CHECK(fv_parse_time("-15m", 1000ull * FV_NSEC_PER_SEC, &ns) == 0 &&
		      ns == 100ull * FV_NSEC_PER_SEC,
	      "relative");
	CHECK(fv_parse_time("yesterday", 0, &ns) == FV_EUSAGE, "bad time");
	CHECK(fv_parse_time("2026-13-01", 0, &ns) == FV_EUSAGE, "bad month");
	fv_format_time(1795341600ull * FV_NSEC_PER_SEC + 7, buf, sizeof(buf));
	CHECK(!strcmp(buf, "2026-11-22T10:00:00.000000007Z"), "format: %s",
	      buf);
	printf("time: parse and format checked\n");
}

static void test_size(void)
{
	uint64_t v = 0;

	CHECK(fv_parse_size("20G", &v) == 0 && v == 20ull << 30, "20G");
	CHECK(fv_parse_size("64MiB", &v) == 0 && v == 64ull << 20, "64MiB");
	CHECK(fv_parse_size("512", &v) == 0 && v == 512, "512");
	CHECK(fv_parse_size("12Q", &v) == FV_EUSAGE, "bad suffix");
	CHECK(fv_parse_count("1.5k", &v) == 0 && v == 1500, "1.5k");
	CHECK(fv_parse_duration("250ms", &v) == 0 && v == 250000000ull, "ms");
	CHECK(fv_parse_duration("2h", &v) == 0 &&
		      v == 7200ull * FV_NSEC_PER_SEC,
	      "2h");
	CHECK(!strcmp(fv_strerror(FV_EEXPIRED),
		      "packets expired (segment recycled by retention)"),
	      "strerror");
	printf("sizes and durations checked\n");
}

int main(void)
{
	test_crc();
	test_varint();
	test_time();
	test_size();
	printf("%s\n", failed ? "FAILED" : "ok");
	return failed ? 1 : 0;
}
