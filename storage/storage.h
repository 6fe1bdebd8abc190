/*
 * storage.h - the packet store: segment rings written in blocks with
 * io_uring and O_DIRECT, and the reader that gets frames back.
 *
 * Invariants (docs/format.md has the byte layout):
 * - Each capture worker owns one ring of segment files,
 *   STORE/segments/wNN/sNNNNNN.fvseg. A segment is filled once from the
 *   start; each fill gets the worker's next *generation* number G and goes
 *   to file G % nsegments, so generations map to files without a table.
 * - A segment holds blocks back to back, each starting on a 4 KiB
 *   boundary; a block is at most block_size (1 MiB) long. A block is a
 *   64-byte header (magic, format version, worker, generation, sequence,
 *   first/last timestamp, packet count, lengths, CRC32C) then records.
 *   A record is a 32-byte header (timestamp ns, flow id, interface,
 *   caplen, flags, origlen, CRC32C, next) and the frame, padded to 8
 *   bytes. "next" chains the records of one flow inside a block: it is
 *   the offset of the flow's next record in the same block (0: none), so
 *   a flow's packets are read without walking the other flows' records.
 * - The block CRC covers the 64-byte header; each record's CRC covers its
 *   header bytes 0..23 and its frame, seeded with the block's place
 *   (generation, offset), so a record is checked by itself and a stale
 *   record of an earlier fill never passes for a current one.
 * - A block reference (fv_ref) names a block for ever:
 *   worker (8 bits) | generation (32 bits) | offset in 4 KiB units (24).
 *   Once the segment is refilled, reading an old reference fails with
 *   FV_EEXPIRED (the generation in the header moved on), never with other
 *   bytes.
 * - A block is written whole by one write. A block is *sealed* when its write
 * has completed; fv_ring_sync() makes every sealed block durable (fdatasync).
 * The index may point only at blocks that fv_ring_sync() has returned for.
 */
#ifndef FV_STORAGE_STORAGE_H
#define FV_STORAGE_STORAGE_H

#include <stddef.h>
#include <stdint.h>

#define FV_BLOCK_MAGIC	      0x4b4c4246u /* "FBLK" little-endian on disk */
#define FV_BLOCK_VERSION      2		  /* records stored as they are */
#define FV_BLOCK_VERSION_Z    3 /* may hold its records in zstd frames */
#define FV_BLOCK_HDR_LEN      64
#define FV_REC_HDR_LEN	      32
#define FV_BLOCK_ALIGN	      4096
#define FV_BLOCK_SIZE_DEFAULT (1u << 20)
#define FV_MAX_FRAME	      262144 /* largest caplen stored (libpcap's max) */

typedef uint64_t fv_ref;

static inline fv_ref fv_ref_make(unsigned worker, uint32_t gen, uint32_t off4k)
{
	return (uint64_t)(worker & 0xff) << 56 | (uint64_t)gen << 24 |
	       (off4k & 0xffffff);
}
static inline unsigned fv_ref_worker(fv_ref r)
{
	return (unsigned)(r >> 56);
}
static inline uint32_t fv_ref_gen(fv_ref r)
{
	return (uint32_t)(r >> 24);
}
static inline uint32_t fv_ref_off4k(fv_ref r)
{
	return (uint32_t)(r & 0xffffff);
}

/* A block header as read from or written to disk (host order here; the
 * disk order is little-endian, see docs/format.md). */
struct fv_block_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t hdr_len; /* 64 */
	uint32_t gen;	  /* generation of the segment fill */
	uint16_t worker;
	uint16_t flags;
	uint64_t seq;	   /* the worker's block sequence, +1 per block */
	uint64_t first_ns; /* timestamps of first and last record */
	uint64_t last_ns;
	uint32_t count;	   /* records in the block */
	uint32_t data_len; /* bytes of records after the header */
	uint32_t disk_len; /* bytes the block takes on disk (4 KiB multiple) */
	uint32_t crc;	   /* CRC32C of the header (crc = 0) */
	/* Version 3 with FV_BLK_ZSTD: data_len bytes of records cut into
	 * nframes frames of 1 << frame_shift bytes (the last shorter), each
	 * compressed alone; a table of their lengths follows the header,
	 * table_crc its CRC32C. All 0 otherwise. */
	uint16_t nframes;
	uint8_t frame_shift;
	uint32_t table_crc;
};

enum fv_block_flag {
	FV_BLK_ZSTD = 1 << 0, /* records in zstd frames (version 3) */
};
#define FV_ZFRAMES_MAX	    256
#define FV_ZFRAME_SHIFT_MIN 12
#define FV_ZFRAME_SHIFT_MAX 20

/* A record as stored (host order here). */
struct fv_rec {
	uint64_t ts_ns;
	uint64_t flow_id; /* 0 for a frame that belongs to no flow; < 2^48 */
	uint32_t caplen;
	uint32_t origlen;
	uint16_t iface; /* store-wide interface number (index meta) */
	uint16_t flags; /* FV_REC_* (8 bits on disk) */
	uint32_t crc;	/* read back: the stored CRC32C */
	uint32_t next;	/* read back: offset of the flow's next record */
};

#define FV_FLOW_ID_MAX ((1ull << 48) - 1)

/* Where a record is: its block and its byte offset from the block's
 * start (the first record is at FV_BLOCK_HDR_LEN). */
struct fv_place {
	fv_ref ref;
	uint32_t off; /* 0: no place */
};

enum fv_rec_flag {
	FV_REC_UNDECODED = 1 << 0, /* the decoder found no flow key */
};

/* What the writer says about a block once its write has completed. */
struct fv_block_info {
	fv_ref ref;
	uint64_t seq;
	uint64_t first_ns;
	uint64_t last_ns;
	uint32_t count;
	uint32_t disk_len;
	uint32_t raw_len; /* what disk_len would be uncompressed (the index
			   * does not keep it: 0 when read from there) */
};

struct fv_ring;

struct fv_ring_opts {
	const char *dir;       /* STORE/segments */
	unsigned worker;       /* 0..255 */
	uint64_t segment_size; /* bytes, multiple of block_size */
	uint32_t nsegments;    /* files in the ring */
	uint32_t block_size;   /* FV_BLOCK_SIZE_DEFAULT */
	unsigned queue_depth;  /* blocks in flight, e.g. 8 */
	/* Register (and so fault in) the block buffers at open, not after
	 * the first blocks: a recorder pays for its memory before it
	 * captures, not while its kernel ring fills. */
	int register_at_open;
	/* zstd level (1..19) to compress each block with as it is sealed,
	 * 0 for none (docs/format.md "Compressed blocks"). */
	int compress_level;
	/*
	 * Called (from fv_ring_append/sync, on the caller's thread) for each
	 * block whose write has completed, in sequence order.
	 */
	void (*on_sealed)(void *arg, const struct fv_block_info *bi);
	/*
	 * Called before a segment is refilled: every block of generation
	 * old_gen (and older) of this worker is about to be overwritten. No
	 * byte of the file is written before it returns, so the index can
	 * drop (durably) what pointed into it first. A non-zero return (an
	 * error) stops the ring before the file is touched: it becomes the
	 * ring's sticky error.
	 */
	int (*on_recycle)(void *arg, unsigned worker, uint32_t old_gen);
	void *arg;
};

/*
 * Opens the ring of opts->worker for writing, creating the directory and
 * files as needed (a file is fallocated when it is first filled). Writing
 * resumes in a new segment after the highest generation found on disk.
 * Returns 0 and *out, or -errno. Free with fv_ring_close().
 */
int fv_ring_open(struct fv_ring **out, const struct fv_ring_opts *opts);

/*
 * Appends one record and its frame (rec->caplen bytes, at most
 * FV_MAX_FRAME) to the current block; submits the block when it is full.
 * *pl is, on input, the place of the previous record of the same flow
 * ({0, 0} if none or for flow id 0): when that record is in the same
 * block, its "next" is set to the new record. On return *pl is the new
 * record's place. Never blocks for long: it waits only when queue_depth
 * writes are in flight. Returns 0 or -errno (the ring is then unusable:
 * the error is sticky and returned by every later call).
 */
int fv_ring_append(struct fv_ring *r, const struct fv_rec *rec,
		   const void *frame, struct fv_place *pl);

/*
 * Makes room for a record of caplen bytes, as fv_ring_append would
 * (sealing the open block, starting the next, recycling or allocating a
 * segment), so that the append after it cannot fail for space. A caller
 * that accounts a packet before storing it calls this first. Returns 0
 * or -errno (sticky, as for fv_ring_append).
 */
int fv_ring_reserve(struct fv_ring *r, uint32_t caplen);

/*
 * True once a segment file could not be allocated (ENOSPC or EDQUOT: the
 * disk is fuller than the budget allows). Appends then fail with that
 * error, but every block sealed before it is in allocated space:
 * fv_ring_sync, fv_ring_flush and fv_ring_poll go on working, so what was
 * stored can still be made durable and indexed.
 */
int fv_ring_full(const struct fv_ring *r);

/* The reference the next appended record will get (the open block). */
fv_ref fv_ring_current(const struct fv_ring *r);

/*
 * Seals the open block if it holds records, waits for every write and
 * makes them durable (fdatasync). After it returns 0, every reference
 * handed out so far may be put in the index. Returns 0 or -errno.
 */
int fv_ring_sync(struct fv_ring *r);

/*
 * The same without waiting, for a committer on another thread (api/
 * worker.c): fv_ring_flush() seals the open block if it holds records,
 * queues its write and sets *next to the sequence number after it (every
 * reference handed out so far is in a block below *next).
 * fv_ring_done_next() may be called from any thread: every block below
 * the number it returns has been written and reported by on_sealed
 * (acquire: what on_sealed did is visible). fv_ring_datasync(), from any
 * thread while the ring is open, makes the completed writes into the file
 * of ref durable (fdatasync). fv_ring_poll() reaps completions without
 * waiting (the owner calls it when no packet comes, so writes finish on a
 * quiet link). All but fv_ring_done_next and fv_ring_datasync are the
 * owner's. Each returns 0 or -errno.
 */
int fv_ring_flush(struct fv_ring *r, uint64_t *next);
uint64_t fv_ring_done_next(const struct fv_ring *r);
int fv_ring_datasync(struct fv_ring *r, fv_ref ref);
int fv_ring_poll(struct fv_ring *r);

/* Bytes of segment files allocated on disk by this ring. */
uint64_t fv_ring_disk_bytes(const struct fv_ring *r);

/* Syncs and frees the ring. Returns the first error met, or 0. */
int fv_ring_close(struct fv_ring *r);

/* ---- reading ---- */

struct fv_seg_reader;

/* Opens a reader over STORE/segments (read-only, any worker). */
int fv_seg_reader_open(struct fv_seg_reader **out, const char *dir,
		       uint32_t nsegments, uint32_t block_size);
void fv_seg_reader_close(struct fv_seg_reader *rd);
/* A reader remembers the segment files it found missing; this makes it
 * look again (a reader kept between requests, as the REST server does,
 * while the writer creates files). */
void fv_seg_reader_forget_missing(struct fv_seg_reader *rd);

/* A block read into memory. buf is owned by the reader and valid until
 * the next read on the same reader. */
struct fv_block {
	struct fv_block_hdr hdr;
	const uint8_t *data; /* data_len bytes of records */
	fv_ref ref;
};

/*
 * Reads and checks the block at ref: magic, version, generation, length,
 * the header's CRC and every record's (structure, CRC, chain links). Returns 0,
 * FV_EEXPIRED when the segment has been refilled (or the file is gone), FV_ECRC
 * or FV_EFORMAT when the bytes are not a valid block of that generation, or
 * -errno.
 */
int fv_seg_read_block(struct fv_seg_reader *rd, fv_ref ref,
		      struct fv_block *blk);

/*
 * Iterates the records of a block that fv_seg_read_block() returned (and
 * so checked whole): *off starts at 0. Returns 1 and fills *rec and
 * *frame, 0 at the end, FV_EFORMAT if a record is malformed.
 */
int fv_block_next(const struct fv_block *blk, uint32_t *off, struct fv_rec *rec,
		  const uint8_t **frame);

/* A flow's packets in one block: count records along its chain from off
 * (what the index's places hold). */
struct fv_run {
	fv_ref ref;
	uint32_t count, off;
};

/*
 * Tells the kernel that the blocks of a flow's runs will be read, each
 * from its run's offset on (readahead, asynchronous), so a cold cache is
 * read in parallel before the chains are walked. When the first and the
 * last block are in memory already the flow is taken as warm and no
 * advice is given (advice on cached pages still walks the page cache,
 * and each probe is a system call). A hint: errors are ignored.
 */
void fv_seg_prefetch_runs(struct fv_seg_reader *rd, const struct fv_run *v,
			  size_t n);

/*
 * Reads the records of one flow in one block without reading the rest:
 * count records following the chain from byte offset first_off, each
 * checked (bounds, CRC, flow id) before cb sees it. The segment files
 * are mapped (read-only) and only the pages of those records are
 * touched; each record is copied out and checked on the copy, so a
 * segment refilled meanwhile gives FV_EEXPIRED, never other bytes.
 * cb's frame is valid during the call. Returns 0, cb's non-zero value,
 * FV_EEXPIRED, FV_ECRC / FV_ECORRUPT / FV_EFORMAT, or -errno.
 */
int fv_seg_read_chain(struct fv_seg_reader *rd, fv_ref ref, uint32_t first_off,
		      uint32_t count, uint64_t flow_id,
		      int (*cb)(void *arg, const struct fv_rec *rec,
				const uint8_t *frame),
		      void *arg);

/*
 * Walks every valid block of one worker's segments in generation and
 * offset order (for fsck and for rebuilding), calling cb for each header;
 * stops at the first invalid block of a segment. cb returns 0 to go on.
 */
int fv_seg_scan(struct fv_seg_reader *rd, unsigned worker,
		int (*cb)(void *arg, const struct fv_block_info *bi),
		void *arg);

/* Parses / encodes a block header from / to its 64 disk bytes. */
int fv_block_hdr_decode(const uint8_t *p, struct fv_block_hdr *h);
void fv_block_hdr_encode(const struct fv_block_hdr *h, uint8_t *p);

#endif
