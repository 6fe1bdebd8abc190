/*
 * Fuzzes the segment reader: the input is a segment file (worker 0,
 * generation 1). Every block reachable by fv_seg_scan and by a read at
 * each 4 KiB offset is checked and its records iterated, and per-flow
 * chains are followed from every 8-byte offset of each block's first
 * page (the mapped-file path of extract --flow); nothing may read out of
 * bounds, and a block returned must pass its own checks. Compressed
 * blocks (version 3, seeds v3-zstd-*) go through the same paths.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fv.h"
#include "storage/storage.h"

static char dir[64];

static void cleanup(void)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/w00/s000001.fvseg", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/w00", dir);
	rmdir(path);
	rmdir(dir);
}

static int walk(struct fv_seg_reader *rd, fv_ref ref)
{
	struct fv_block blk;
	struct fv_rec rec;
	const uint8_t *frame;
	uint32_t off = 0, n = 0;
	int rc;

	if (fv_seg_read_block(rd, ref, &blk))
		return 0;
	if (blk.hdr.gen != fv_ref_gen(ref) ||
	    (!(blk.hdr.flags & FV_BLK_ZSTD) &&
	     blk.hdr.data_len + FV_BLOCK_HDR_LEN > blk.hdr.disk_len))
		abort(); /* a block returned must be what the ref names */
	while ((rc = fv_block_next(&blk, &off, &rec, &frame)) == 1) {
		volatile uint8_t sink = 0;

		if (rec.caplen)
			sink = frame[0] ^ frame[rec.caplen - 1];
		(void)sink;
		n++;
	}
	return (int)n;
}

static int on_chain_rec(void *arg, const struct fv_rec *rec,
			const uint8_t *frame)
{
	volatile uint8_t sink = 0;

	if (rec->caplen)
		sink = frame[0] ^ frame[rec->caplen - 1];
	(void)sink;
	(*(unsigned *)arg)++;
	return 0;
}

/* The flow path: chains followed from arbitrary offsets (mapped file). */
static void chains(struct fv_seg_reader *rd, fv_ref ref, const uint8_t *data,
		   size_t size)
{
	size_t base = (size_t)fv_ref_off4k(ref) * 4096;

	for (uint32_t off = 64; off < 4096 && base + off + 16 <= size;
	     off += 8) {
		uint64_t id = 0;
		unsigned n = 0;

		memcpy(&id, data + base + off + 8, 6);
		fv_seg_read_chain(rd, ref, off, 3, id, on_chain_rec, &n);
	}
}

static int on_block(void *arg, const struct fv_block_info *bi)
{
	return walk(arg, bi->ref) < 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[128];
	struct fv_seg_reader *rd;
	int fd;

	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/tmp/fvfuzzblockXXXXXX");
		if (!mkdtemp(dir))
			abort();
		snprintf(path, sizeof(path), "%s/w00", dir);
		mkdir(path, 0755);
		atexit(cleanup);
	}
	if (size > 8 << 20)
		return 0;
	snprintf(path, sizeof(path), "%s/w00/s000001.fvseg", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
	if (fv_seg_reader_open(&rd, dir, 4, 1u << 20))
		abort();
	fv_seg_scan(rd, 0, on_block, rd);
	for (size_t off = 0; off < size; off += 4096) {
		fv_ref ref = fv_ref_make(0, 1, (uint32_t)(off / 4096));

		walk(rd, ref);
		chains(rd, ref, data, size);
	}
	fv_seg_reader_close(rd);
	return 0;
}
