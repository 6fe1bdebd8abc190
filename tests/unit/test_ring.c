/*
 * Unit tests for storage/: write records through the io_uring ring, read
 * every one back and compare; ring wrap and expiry; reopen; damage on disk
 * detected (CRC, magic, missing file); fv_seg_scan. The round trip, the
 * wrap and the damage run again with compressed blocks (--compress).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fv.h"
#include "storage/storage.h"

#include "tests/unit/check.h"

#define MIB (1u << 20)

struct sealed {
	struct fv_block_info v[4096];
	int n;
	uint32_t recycled[64];
	int nrec;
	int recycle_err; /* what on_recycle returns */
	/* When set, on_recycle reads the first block of the old fill: it
	 * must still be intact (nothing written before the callback). */
	struct fv_seg_reader *probe;
	int probe_ok, probe_bad;
};

static void on_sealed(void *arg, const struct fv_block_info *bi)
{
	struct sealed *s = arg;

	if (s->n < 4096)
		s->v[s->n++] = *bi;
}

static int on_recycle(void *arg, unsigned worker, uint32_t old_gen)
{
	struct sealed *s = arg;

	if (s->nrec < 64)
		s->recycled[s->nrec++] = old_gen;
	if (s->probe) {
		struct fv_block b;

		if (fv_seg_read_block(s->probe, fv_ref_make(worker, old_gen, 0),
				      &b) == 0 &&
		    b.hdr.gen == old_gen)
			s->probe_ok++;
		else
			s->probe_bad++;
	}
	return s->recycle_err;
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Deterministic content of record i. */
static uint32_t rec_len(uint64_t i)
{
	if (i % 997 == 5)
		return FV_MAX_FRAME;
	return 1 + (uint32_t)((i * 2654435761u) % 9000);
}
static int zlevel; /* compress_level of the rings the tests open */

/* With compression, every other byte is noise, so blocks shrink about
 * 1.5x and not 50x: the wrap test still wraps. */
static uint8_t rec_byte(uint64_t i, uint32_t k)
{
	if (zlevel && (k & 1)) {
		uint64_t x = (i << 20 | k) * 0x9e3779b97f4a7c15ull;

		return (uint8_t)(x >> 56);
	}
	return (uint8_t)(i * 31 + k * 7 + (k >> 8));
}

static struct fv_ring *open_ring(const char *dir, uint64_t segsz, uint32_t nseg,
				 struct sealed *s)
{
	struct fv_ring_opts o = {
		.compress_level = zlevel,
		.dir = dir,
		.worker = 3,
		.segment_size = segsz,
		.nsegments = nseg,
		.block_size = MIB,
		.queue_depth = 4,
		.on_sealed = on_sealed,
		.on_recycle = on_recycle,
		.arg = s,
	};
	struct fv_ring *r = NULL;
	int err = fv_ring_open(&r, &o);

	CHECK(err == 0, "ring open: %s", fv_strerror(err));
	return r;
}

static uint8_t frame[FV_MAX_FRAME];
static struct fv_place last_pl[51]; /* per flow id: its last record */
static uint32_t offs[3000];	    /* record i's offset in its block */

static void write_range(struct fv_ring *r, uint64_t from, uint64_t to,
			fv_ref *refs)
{
	for (uint64_t i = from; i < to; i++) {
		struct fv_rec rec = {
			.ts_ns = 1000000000ull * 1700000000 + i * 1000 + 7,
			.flow_id = i % 50 + 1,
			.caplen = rec_len(i),
			.origlen = rec_len(i) + (uint32_t)(i % 3),
			.iface = (uint16_t)(i % 4),
		};
		int err;

		for (uint32_t k = 0; k < rec.caplen; k++)
			frame[k] = rec_byte(i, k);
		err = fv_ring_append(r, &rec, frame, &last_pl[rec.flow_id]);
		refs[i] = last_pl[rec.flow_id].ref;
		if (i < 3000)
			offs[i] = last_pl[rec.flow_id].off;
		if (err) {
			CHECK(0, "append %llu: %s", (unsigned long long)i,
			      fv_strerror(err));
			return;
		}
	}
}

/* Reads every block of refs[from..to) and checks every record. */
static uint64_t verify(struct fv_seg_reader *rd, const fv_ref *refs,
		       uint64_t from, uint64_t to)
{
	uint64_t i = from, ok = 0;

	while (i < to) {
		struct fv_block blk;
		struct fv_rec rec;
		const uint8_t *f;
		uint32_t off = 0;
		int err = fv_seg_read_block(rd, refs[i], &blk);

		if (err) {
			CHECK(0, "read block of record %llu: %s",
			      (unsigned long long)i, fv_strerror(err));
			return ok;
		}
		/* Skip records of this block written before 'from'. */
		while (fv_block_next(&blk, &off, &rec, &f) == 1) {
			uint64_t want =
				(rec.ts_ns - 1000000000ull * 1700000000 - 7) /
				1000;

			if (want < from)
				continue;
			CHECK(want == i, "record order: got %llu want %llu",
			      (unsigned long long)want, (unsigned long long)i);
			CHECK(rec.caplen == rec_len(i) &&
				      rec.origlen == rec_len(i) + i % 3 &&
				      rec.flow_id == i % 50 + 1 &&
				      rec.iface == i % 4,
			      "record %llu header", (unsigned long long)i);
			for (uint32_t k = 0; k < rec.caplen; k++)
				if (f[k] != rec_byte(i, k)) {
					CHECK(0, "record %llu byte %u",
					      (unsigned long long)i, k);
					break;
				}
			ok++;
			i++;
			if (i >= to)
				break;
		}
		if (i < to && refs[i] == blk.ref) {
			CHECK(0, "records missing from block");
			return ok;
		}
	}
	return ok;
}

struct chain_got {
	uint64_t flow;
	uint64_t n;
	uint64_t want[3000];
};

static int chain_cb(void *arg, const struct fv_rec *rec, const uint8_t *f)
{
	struct chain_got *g = arg;
	uint64_t i = (rec->ts_ns - 1000000000ull * 1700000000 - 7) / 1000;

	CHECK(rec->flow_id == g->flow && g->n < 3000 && i == g->want[g->n],
	      "chain of flow %llu: record %llu, want %llu",
	      (unsigned long long)g->flow, (unsigned long long)i,
	      (unsigned long long)g->want[g->n]);
	for (uint32_t k = 0; k < rec->caplen; k++)
		if (f[k] != rec_byte(i, k)) {
			CHECK(0, "chain record %llu byte %u",
			      (unsigned long long)i, k);
			break;
		}
	g->n++;
	return 0;
}

/*
 * Follows every flow's chain in every block of refs[0..n) from its first
 * record, and checks it yields exactly that flow's records of the block,
 * in order; then that a chain asked for more records than it holds, or
 * started at another flow's record, is refused.
 */
static void verify_chains(struct fv_seg_reader *rd, const fv_ref *refs,
			  uint64_t n)
{
	static struct chain_got g;
	uint64_t runs = 0;

	for (uint64_t i = 0; i < n; i++) {
		uint64_t flow = i % 50 + 1;
		int err;

		/* i starts a run: no earlier record of flow in this block */
		if (i >= 50 && refs[i - 50] == refs[i])
			continue;
		g.flow = flow;
		g.n = 0;
		for (uint64_t j = i; j < n && refs[j] == refs[i]; j += 50)
			g.want[g.n++] = j;
		{
			uint32_t cnt = (uint32_t)g.n;

			g.n = 0;
			err = fv_seg_read_chain(rd, refs[i], offs[i], cnt, flow,
						chain_cb, &g);
			CHECK(err == 0 && g.n == cnt,
			      "chain from record %llu: %s, %llu of %u",
			      (unsigned long long)i, fv_strerror(err),
			      (unsigned long long)g.n, cnt);
			g.n = 0;
			err = fv_seg_read_chain(rd, refs[i], offs[i], cnt + 1,
						flow, chain_cb, &g);
			CHECK(err == FV_ECORRUPT,
			      "chain past its end refused: %s",
			      fv_strerror(err));
		}
		runs++;
	}
	CHECK(fv_seg_read_chain(rd, refs[0], offs[1], 1, 1, chain_cb, &g) ==
		      FV_ECORRUPT,
	      "chain at another flow's record refused");
	CHECK(fv_seg_read_chain(rd, refs[0], offs[0] + 8, 1, 1, chain_cb, &g) !=
		      0,
	      "chain at a bad offset refused");
	printf("chains: %llu runs followed\n", (unsigned long long)runs);
}

static void test_roundtrip(const char *dir)
{
	enum { N = 3000 };
	static fv_ref refs[N];
	struct sealed *s = calloc(1, sizeof(*s));
	struct fv_ring *r = open_ring(dir, 64 * MIB, 8, s);
	struct fv_seg_reader *rd;
	uint64_t got;

	write_range(r, 0, N, refs);
	CHECK(fv_ring_sync(r) == 0, "sync");
	CHECK(fv_ring_close(r) == 0, "close");
	for (int i = 1; i < s->n; i++)
		CHECK(s->v[i].seq == s->v[i - 1].seq + 1 &&
			      s->v[i].ref > s->v[i - 1].ref,
		      "sealed in order");
	for (uint64_t i = 1; i < N; i++)
		CHECK(refs[i] >= refs[i - 1], "refs non-decreasing");
	CHECK(s->n > 0 && s->v[s->n - 1].ref == refs[N - 1],
	      "last block sealed");
	{
		uint64_t sum = 0;

		for (int i = 0; i < s->n; i++)
			sum += s->v[i].count;
		CHECK(sum == N, "sealed counts %llu", (unsigned long long)sum);
	}
	{
		/* Compressed: every full block takes less room, and the
		 * next block starts where the smaller one ends. */
		uint64_t raw = 0, disk = 0;
		int smaller = 0;

		for (int i = 0; i < s->n; i++) {
			raw += s->v[i].raw_len;
			disk += s->v[i].disk_len;
			smaller += s->v[i].disk_len < s->v[i].raw_len;
			if (i && fv_ref_gen(s->v[i].ref) ==
					 fv_ref_gen(s->v[i - 1].ref))
				CHECK(fv_ref_off4k(s->v[i].ref) ==
					      fv_ref_off4k(s->v[i - 1].ref) +
						      s->v[i - 1].disk_len /
							      4096,
				      "blocks back to back");
		}
		CHECK(zlevel ? smaller >= s->n - 1 : disk == raw,
		      "level %d: %d of %d blocks smaller", zlevel, smaller,
		      s->n);
		printf("roundtrip, level %d: %.1f MB of blocks in %.1f MB\n",
		       zlevel, raw / 1e6, disk / 1e6);
	}
	CHECK(fv_seg_reader_open(&rd, dir, 8, MIB) == 0, "reader");
	got = verify(rd, refs, 0, N);
	verify_chains(rd, refs, N);
	CHECK(got == N, "read back %llu of %d", (unsigned long long)got, N);
	fv_seg_reader_close(rd);
	printf("roundtrip: %d records in %d blocks read back exactly\n", N,
	       s->n);
	free(s);
}

static void test_reopen_and_wrap(const char *dir)
{
	enum { N = 12000 };
	static fv_ref refs[N];
	struct sealed *s = calloc(1, sizeof(*s));
	struct fv_ring *r = open_ring(dir, 4 * MIB, 4, s);
	struct fv_seg_reader *rd;
	uint64_t seq_before;
	int expired = 0;

	write_range(r, 0, 200, refs);
	fv_ring_close(r);
	seq_before = s->v[s->n - 1].seq;
	/* Reopen: a new generation, sequence continues. */
	r = open_ring(dir, 4 * MIB, 4, s);
	write_range(r, 200, 400, refs);
	fv_ring_sync(r);
	CHECK(fv_ref_gen(refs[200]) > fv_ref_gen(refs[199]),
	      "reopen starts a new generation");
	for (int i = 0; i < s->n; i++)
		if (fv_ref_gen(s->v[i].ref) == fv_ref_gen(refs[200])) {
			CHECK(s->v[i].seq == seq_before + 1,
			      "seq continues: %llu",
			      (unsigned long long)s->v[i].seq);
			break;
		}
	CHECK(fv_seg_reader_open(&rd, dir, 4, MIB) == 0, "reader");
	CHECK(verify(rd, refs, 0, 400) == 400, "old and new read back");
	/* Wrap: ~45 MiB through a 16 MiB ring. */
	write_range(r, 400, N, refs);
	fv_ring_sync(r);
	CHECK(s->nrec > 0, "segments recycled");
	for (int i = 1; i < s->nrec; i++)
		CHECK(s->recycled[i] == s->recycled[i - 1] + 1,
		      "recycled generations in order");
	CHECK(fv_seg_read_block(rd, refs[0], &(struct fv_block){0}) ==
		      FV_EEXPIRED,
	      "oldest ref expired");
	for (uint64_t i = 0; i < N; i += 97) {
		struct fv_block b;

		if (fv_seg_read_block(rd, refs[i], &b) == FV_EEXPIRED)
			expired++;
	}
	CHECK(expired > 0, "some expired");
	CHECK(verify(rd, refs, N - 1500, N) == 1500, "newest read back");
	fv_ring_close(r);
	fv_seg_reader_close(rd);
	printf("reopen + wrap: %d recycles, oldest refs expired, newest exact\n",
	       s->nrec);
	free(s);
}

/*
 * The recycle step: on_recycle is called before any byte of the old fill
 * is overwritten (its first block still reads back inside the callback),
 * and an error from it stops the ring before the file is touched.
 */
static void test_recycle_hook(const char *dir)
{
	enum { N = 3000 };
	static fv_ref refs[N];
	struct sealed *s = calloc(1, sizeof(*s));
	struct fv_ring *r = open_ring(dir, 4 * MIB, 2, s);
	struct fv_seg_reader *rd;
	struct fv_block b;
	int err = 0;
	uint64_t i;

	CHECK(fv_seg_reader_open(&rd, dir, 2, MIB) == 0, "reader");
	s->probe = rd;
	memset(last_pl, 0, sizeof(last_pl));
	/* Two fills, then the first recycle is refused. */
	write_range(r, 0, 1, refs);
	for (i = 1; i < N && !s->nrec; i++)
		write_range(r, i, i + 1, refs);
	CHECK(s->nrec == 1 && s->probe_ok == 1,
	      "the old fill is intact when on_recycle runs (%d ok, %d bad)",
	      s->probe_ok, s->probe_bad);
	fv_ring_close(r);
	/* Reopen, refuse the recycle: the append fails, sticky, and the
	 * oldest fill is not overwritten. */
	memset(s, 0, sizeof(*s));
	s->probe = rd;
	s->recycle_err = -EIO;
	memset(last_pl, 0, sizeof(last_pl));
	r = open_ring(dir, 4 * MIB, 2, s);
	for (i = 0; i < N && !err; i++) {
		struct fv_rec rec = {.ts_ns = i + 1,
				     .flow_id = 1,
				     .caplen = 60,
				     .origlen = 60};
		struct fv_place pl = {0, 0};

		err = fv_ring_append(r, &rec, frame, &pl);
	}
	CHECK(err == -EIO, "a refused recycle stops the ring: %s",
	      fv_strerror(err));
	CHECK(s->nrec == 1, "on_recycle called once: %d", s->nrec);
	CHECK(fv_ring_append(r, &(struct fv_rec){.ts_ns = 1, .caplen = 60},
			     frame, &(struct fv_place){0, 0}) == -EIO,
	      "the error is sticky");
	CHECK(fv_ring_close(r) == -EIO, "close reports it");
	CHECK(s->nrec == 1 &&
		      fv_seg_read_block(rd, fv_ref_make(3, s->recycled[0], 0),
					&b) == 0,
	      "the refused fill still reads back");
	fv_seg_reader_close(rd);
	printf("recycle hook: called before the overwrite; an error stops the ring\n");
	free(s);
}

static int count_cb(void *arg, const struct fv_block_info *bi)
{
	(*(int *)arg)++;
	return 0;
}

static void test_damage(const char *dir)
{
	enum { N = 2000 };
	static fv_ref refs[N];
	struct sealed *s = calloc(1, sizeof(*s));
	struct fv_ring *r = open_ring(dir, 64 * MIB, 8, s);
	struct fv_seg_reader *rd;
	struct fv_block b;
	char path[4200];
	int fd, nblk = 0, err;
	uint8_t byte;
	uint32_t gen = fv_ref_gen(refs[0]);
	off_t off;

	write_range(r, 0, N, refs);
	fv_ring_close(r);
	gen = fv_ref_gen(refs[N - 1]);
	snprintf(path, sizeof(path), "%s/w03/s%06u.fvseg", dir, gen % 8);
	CHECK(fv_seg_reader_open(&rd, dir, 8, MIB) == 0, "reader");
	fv_seg_scan(rd, 3, count_cb, &nblk);
	CHECK(nblk == s->n, "scan sees %d of %d blocks", nblk, s->n);
	/* Flip a data byte of the third block. */
	off = (off_t)fv_ref_off4k(s->v[2].ref) * 4096 + 5000;
	fd = open(path, O_RDWR);
	CHECK(fd >= 0, "open %s", path);
	CHECK(pread(fd, &byte, 1, off) == 1, "pread");
	byte ^= 0x40;
	CHECK(pwrite(fd, &byte, 1, off) == 1, "pwrite");
	fv_seg_reader_close(rd);
	fv_seg_reader_open(&rd, dir, 8, MIB);
	err = fv_seg_read_block(rd, s->v[2].ref, &b);
	CHECK(err == FV_ECRC, "flipped byte -> %s", fv_strerror(err));
	{
		/* Read record by record, exactly the one holding it fails. */
		int nbad = 0, nrec = 0;
		struct chain_got g;

		for (uint64_t i = 0; i < N; i++) {
			if (refs[i] != s->v[2].ref)
				continue;
			g.flow = i % 50 + 1;
			g.n = 0;
			g.want[0] = i;
			err = fv_seg_read_chain(rd, refs[i], offs[i], 1, g.flow,
						chain_cb, &g);
			nrec++;
			if (err) {
				CHECK(err == FV_ECRC && offs[i] <= 5000 &&
					      offs[i] + 32 + rec_len(i) > 5000,
				      "record %llu at %u: %s",
				      (unsigned long long)i, offs[i],
				      fv_strerror(err));
				nbad++;
			}
		}
		CHECK(nbad == 1 && nrec > 100,
		      "one damaged record of %d read alone: %d", nrec, nbad);
	}
	nblk = 0;
	fv_seg_scan(rd, 3, count_cb, &nblk);
	CHECK(nblk == 2, "scan stops at the damage (%d)", nblk);
	CHECK(fv_seg_read_block(rd, s->v[1].ref, &b) == 0, "block before fine");
	/* Break a header's magic. */
	off = (off_t)fv_ref_off4k(s->v[1].ref) * 4096;
	CHECK(pwrite(fd, "XXXX", 4, off) == 4, "pwrite");
	fv_seg_reader_close(rd);
	fv_seg_reader_open(&rd, dir, 8, MIB);
	err = fv_seg_read_block(rd, s->v[1].ref, &b);
	CHECK(err == FV_EFORMAT, "bad magic -> %s", fv_strerror(err));
	close(fd);
	/* A missing file: expired. */
	unlink(path);
	fv_seg_reader_close(rd);
	fv_seg_reader_open(&rd, dir, 8, MIB);
	err = fv_seg_read_block(rd, s->v[0].ref, &b);
	CHECK(err == FV_EEXPIRED, "missing file -> %s", fv_strerror(err));
	fv_seg_reader_close(rd);
	printf("damage: CRC, magic and missing file detected\n");
	free(s);
}

/* Flips the byte at off of a segment file. */
static void flip(const char *path, off_t off)
{
	int fd = open(path, O_RDWR);
	uint8_t byte;

	CHECK(fd >= 0 && pread(fd, &byte, 1, off) == 1, "read %s", path);
	byte ^= 0x40;
	CHECK(pwrite(fd, &byte, 1, off) == 1, "pwrite");
	close(fd);
}

/*
 * Reads each record of block blk alone (refs[0..n)) after damage to the
 * frame holding bytes [lo, hi) of it: one that reads is exact (chain_cb);
 * one that fails has bytes in the frame and fails its CRC. undecodable:
 * every record with bytes in the frame must fail. *nbad counts the
 * failures, *nrec the records read (undecodable: those in the frame).
 */
static void read_alone(struct fv_seg_reader *rd, const fv_ref *refs, uint64_t n,
		       fv_ref blk, uint32_t lo, uint32_t hi, int undecodable,
		       int *nbad, int *nrec)
{
	*nbad = *nrec = 0;
	for (uint64_t i = 0; i < n; i++) {
		struct chain_got g = {.flow = i % 50 + 1, .want = {i}};
		int hit = offs[i] < hi && offs[i] + 32 + rec_len(i) > lo, err;

		if (refs[i] != blk)
			continue;
		err = fv_seg_read_chain(rd, refs[i], offs[i], 1, g.flow,
					chain_cb, &g);
		CHECK(err ? hit && err == FV_ECRC
			  : g.n == 1 && !(undecodable && hit),
		      "record %llu at %u (frame bytes %u..%u): %s",
		      (unsigned long long)i, offs[i], lo, hi, fv_strerror(err));
		*nrec += undecodable ? hit : 1;
		*nbad += err != 0;
	}
}

/*
 * Damage in a compressed block: a byte of one frame fails exactly the
 * records with bytes in that frame (the others of the block still read
 * alone), and the whole block; a byte of the frame table fails all.
 */
static void test_zdamage(const char *dir)
{
	enum { N = 2000 };
	static fv_ref refs[N];
	struct sealed *s = calloc(1, sizeof(*s));
	struct fv_ring *r = open_ring(dir, 64 * MIB, 8, s);
	struct fv_seg_reader *rd;
	struct fv_block_hdr h;
	struct fv_block b;
	uint8_t hb[128];
	char path[4200];
	int fd, err, nbad = 0, nrec = 0;
	uint32_t f0, f1, lo, hi;
	off_t base;

	write_range(r, 0, N, refs);
	fv_ring_close(r);
	snprintf(path, sizeof(path), "%s/w03/s%06u.fvseg", dir,
		 fv_ref_gen(s->v[1].ref) % 8);
	base = (off_t)fv_ref_off4k(s->v[1].ref) * 4096;
	fd = open(path, O_RDONLY);
	CHECK(fd >= 0 && pread(fd, hb, sizeof(hb), base) == sizeof(hb),
	      "read header");
	close(fd);
	CHECK(fv_block_hdr_decode(hb, &h) == 0 && (h.flags & FV_BLK_ZSTD) &&
		      h.version == FV_BLOCK_VERSION_Z && h.nframes > 4,
	      "block 1 compressed (version %u, %u frames)", h.version,
	      h.nframes);
	/* Frame 2: its compressed bytes, and the records it decodes to. */
	f0 = 64 + 4u * h.nframes;
	for (unsigned k = 0; k < 2; k++)
		f0 += hb[64 + 4 * k] | hb[65 + 4 * k] << 8 |
		      hb[66 + 4 * k] << 16 | (hb[67 + 4 * k] & 0x7f) << 24;
	f1 = hb[72] | hb[73] << 8 | hb[74] << 16 | (hb[75] & 0x7f) << 24;
	lo = 64 + (2u << h.frame_shift);
	hi = lo + (1u << h.frame_shift);
	flip(path, base + f0 + f1 / 2);
	CHECK(fv_seg_reader_open(&rd, dir, 8, MIB) == 0, "reader");
	err = fv_seg_read_block(rd, s->v[1].ref, &b);
	CHECK(err == FV_ECRC, "flipped frame byte -> %s", fv_strerror(err));
	read_alone(rd, refs, N, s->v[1].ref, lo, hi, 0, &nbad, &nrec);
	CHECK(nbad > 0 && nbad < nrec, "%d of %d records fail", nbad, nrec);
	CHECK(fv_seg_read_block(rd, s->v[2].ref, &b) == 0, "next block fine");
	/* A frame that no longer decodes (its zstd magic): every record
	 * with a byte in it fails, the others read. */
	flip(path, base + f0);
	fv_seg_reader_close(rd);
	fv_seg_reader_open(&rd, dir, 8, MIB);
	read_alone(rd, refs, N, s->v[1].ref, lo, hi, 1, &nbad, &nrec);
	CHECK(nbad == nrec && nbad > 0, "%d records in the frame, %d fail",
	      nrec, nbad);
	/* The table. */
	flip(path, base + 64 + 5);
	fv_seg_reader_close(rd);
	fv_seg_reader_open(&rd, dir, 8, MIB);
	err = fv_seg_read_block(rd, s->v[1].ref, &b);
	CHECK(err == FV_ECRC, "flipped table byte -> %s", fv_strerror(err));
	err = fv_seg_read_chain(rd,
				refs[0] == s->v[1].ref ? refs[0] : s->v[1].ref,
				64, 1, 0, chain_cb, &(struct chain_got){0});
	CHECK(err == FV_ECRC, "chain over a bad table -> %s", fv_strerror(err));
	fv_seg_reader_close(rd);
	printf("compressed damage: a changed byte fails its records only, "
	       "an undecodable frame its %d records, a bad table all\n",
	       nrec);
	free(s);
}

/* Records that do not compress leave the block as it is (version 2). */
static void test_incompressible(const char *dir)
{
	struct sealed *s = calloc(1, sizeof(*s));
	struct fv_ring *r = open_ring(dir, 64 * MIB, 8, s);
	struct fv_rec rec = {.caplen = 1500, .origlen = 1500, .flow_id = 1};
	struct fv_place pl = {0};
	struct fv_seg_reader *rd;
	struct fv_block b;

	for (uint64_t i = 0; i < 2000; i++) {
		for (uint32_t k = 0; k < 1500; k++)
			frame[k] = (uint8_t)next_rand();
		rec.ts_ns = i;
		CHECK(fv_ring_append(r, &rec, frame, &pl) == 0, "append");
	}
	fv_ring_close(r);
	CHECK(s->n >= 2, "blocks");
	CHECK(fv_seg_reader_open(&rd, dir, 8, MIB) == 0, "reader");
	for (int i = 0; i < s->n; i++) {
		CHECK(s->v[i].disk_len == s->v[i].raw_len, "block %d as is", i);
		CHECK(fv_seg_read_block(rd, s->v[i].ref, &b) == 0 &&
			      b.hdr.version == FV_BLOCK_VERSION &&
			      b.hdr.flags == 0,
		      "block %d version %u", i, b.hdr.version);
	}
	fv_seg_reader_close(rd);
	printf("incompressible: %d blocks stored as they are\n", s->n);
	free(s);
}

static void throughput(const char *dir)
{
	struct sealed *s = calloc(1, sizeof(*s));
	struct fv_ring *r = open_ring(dir, 256 * MIB, 8, s);
	struct fv_rec rec = {.caplen = 1500, .origlen = 1500, .flow_id = 1};
	uint64_t t0 = fv_now_mono_ns(), n = (512ull * MIB) / 1536;
	struct fv_place pl = {0};
	double secs;

	for (uint32_t k = 0; k < 1500; k++)
		frame[k] = (uint8_t)next_rand();
	for (uint64_t i = 0; i < n; i++) {
		rec.ts_ns = i;
		if (fv_ring_append(r, &rec, frame, &pl))
			break;
	}
	fv_ring_close(r);
	secs = (double)(fv_now_mono_ns() - t0) / 1e9;
	printf("throughput (informational): %.0f MB/s of 1500-byte records\n",
	       (double)n * 1532 / secs / 1e6);
	free(s);
}

int main(void)
{
	char tmpl[] = "/tmp/fvringXXXXXX", sub[4096], cmd[4200];

	if (!mkdtemp(tmpl)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(sub, sizeof(sub), "%s/a", tmpl);
	test_roundtrip(sub);
	snprintf(sub, sizeof(sub), "%s/b", tmpl);
	test_reopen_and_wrap(sub);
	snprintf(sub, sizeof(sub), "%s/c", tmpl);
	test_damage(sub);
	snprintf(sub, sizeof(sub), "%s/e", tmpl);
	test_recycle_hook(sub);
	snprintf(sub, sizeof(sub), "%s/d", tmpl);
	throughput(sub);
	/* The same with every block compressed (zstd level 3). */
	zlevel = 3;
	snprintf(sub, sizeof(sub), "%s/za", tmpl);
	test_roundtrip(sub);
	snprintf(sub, sizeof(sub), "%s/zb", tmpl);
	test_reopen_and_wrap(sub);
	snprintf(sub, sizeof(sub), "%s/zc", tmpl);
	test_zdamage(sub);
	snprintf(sub, sizeof(sub), "%s/zi", tmpl);
	test_incompressible(sub);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpl);
	if (system(cmd))
		fprintf(stderr, "could not remove %s\n", tmpl);
	printf("%s\n", failed ? "FAILED" : "ok");
	return failed ? 1 : 0;
}
