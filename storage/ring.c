/*
 * ring.c - the segment ring writer: records into 1 MiB blocks, blocks
 * written by io_uring with O_DIRECT, several in flight (storage.h).
 *
 * Buffers: queue_depth + 1 aligned block buffers in one region (huge
 * pages where the kernel allows; pages are touched only when a buffer is
 * first filled); one is being filled, the others are in flight or free,
 * and the buffer freed last is filled next, so a slow input keeps reusing
 * the same warm buffers. Once a ring has
 * written REGISTER_AFTER blocks (a long import or a recording, not a small
 * file) the buffers are registered with the kernel, when it lets us, and
 * written with write_fixed from then on. Completions may arrive out of order;
 * blocks are reported sealed strictly in sequence order from a FIFO.
 *
 * Syncing: while blocks are being filled, the ring keeps one fdatasync in
 * flight through io_uring (run by the kernel's workers, on another core)
 * over the writes completed before it was queued, so a later
 * fv_ring_sync() finds most of the data durable already and waits only
 * for the last blocks. A write counts as synced only when a sync queued
 * after its completion has completed; a failed sync is a sticky error.
 * A fresh segment file (the ring's first lap) is fallocated the same way,
 * ahead: at open for the first, and when the current segment is half full
 * for the next, so it is ready when needed. No record is placed in a file
 * before its space is allocated: when the disk is full (ENOSPC, EDQUOT)
 * the ring stops between two blocks (fv_ring_full) and every block
 * sealed before can still be synced and indexed. A write that fails (EIO
 * from a failing disk, EROFS once its filesystem turned read-only) stops
 * the ring for good: that block and those after it are never reported,
 * so no index entry points at them, and closing waits only for the
 * writes still in flight.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fv.h"
#include "storage/storage.h"
#include "storage/storage_int.h"

#define REGISTER_AFTER 16
#define SYNC_TAG       UINTPTR_MAX	 /* user_data of a background sync */
#define FALLOC_TAG     (UINTPTR_MAX - 1) /* and of a fallocate */

struct wbuf {
	uint8_t *mem;
	struct fv_block_info bi;
	int fd;
	uint64_t off;  /* file offset of the block */
	uint32_t len;  /* bytes to write (disk_len) */
	uint32_t done; /* bytes written so far */
	uint32_t seg;  /* file index (generation % nsegments) */
	int complete;
	int failed; /* its write failed: no longer in flight, never reported
		     * (it stays in the FIFO: the ring's error is sticky) */
};

struct fv_ring {
	struct fv_ring_opts o;
	char dir[4096];
	struct io_uring uring;
	int uring_ok, registered, reg_tried, direct;
	uint64_t sealed_here; /* blocks sealed by this ring instance */
	struct wbuf *bufs;
	uint8_t *bufmem; /* nbuf * block_size bytes (fv_big_alloc) */
	unsigned nbuf;
	unsigned *fifo; /* buffer indexes in flight, in seq order */
	unsigned fifo_head, fifo_n;
	unsigned *freelist;
	unsigned nfree;
	/* the open block */
	int cur; /* buffer index, -1 if none */
	uint32_t cur_data, cur_cap, cur_count;
	uint32_t cur_seed; /* CRC seed of its records */
	uint64_t cur_first, cur_last;
	/* the open segment */
	uint32_t gen;
	int seg_fd;
	uint64_t seg_off;
	int *fds; /* per file index, -1 if not open */
	/* per file index: block writes completed, and how many of those a
	 * completed fdatasync covers */
	uint64_t *written, *synced;
	int syncing; /* a background fdatasync is in flight */
	int in_sync; /* in fv_ring_sync(): no background sync queued */
	uint32_t sync_seg;
	uint64_t sync_cover; /* written[sync_seg] when it was queued */
	int falloc_pending;  /* a fallocate is in flight for falloc_seg */
	uint32_t falloc_seg;
	int full; /* a segment could not be allocated (ENOSPC, EDQUOT): no
		   * more appends, but what was written is synced */
	uint64_t next_seq;
	uint64_t done_next; /* blocks below it are written and reported
			     * (atomic: read by a committer thread) */
	uint64_t disk_bytes;
	struct fv_zcomp *z; /* compress_level: compresses each sealed block */
	int err;
};

void fv_seg_worker_dir(char *buf, unsigned len, const char *dir,
		       unsigned worker)
{
	snprintf(buf, len, "%s/w%02u", dir, worker);
}

void fv_seg_file(char *buf, unsigned len, const char *dir, unsigned worker,
		 uint32_t index)
{
	snprintf(buf, len, "%s/w%02u/s%06u.fvseg", dir, worker, index);
}

/* Reads the 64-byte header at off; the fd may be O_DIRECT, so the read is
 * one aligned 4 KiB page. */
static int read_hdr(int fd, uint64_t off, struct fv_block_hdr *h)
{
	void *page;
	ssize_t n;
	int err;

	if (posix_memalign(&page, FV_BLOCK_ALIGN, FV_BLOCK_ALIGN))
		return -ENOMEM;
	n = pread(fd, page, FV_BLOCK_ALIGN, (off_t)off);
	if (n < 0)
		err = -errno;
	else if (n < FV_BLOCK_HDR_LEN)
		err = FV_EFORMAT;
	else
		err = fv_block_hdr_decode(page, h);
	free(page);
	return err;
}

int fv_seg_first_gen(int fd, uint32_t *gen)
{
	struct fv_block_hdr h;
	int err = read_hdr(fd, 0, &h);

	if (!err)
		*gen = h.gen;
	return err;
}

static int open_file(struct fv_ring *r, uint32_t idx, int create)
{
	char path[4200];
	int fd, flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0);

	if (r->fds[idx] >= 0)
		return r->fds[idx];
	fv_seg_file(path, sizeof(path), r->o.dir, r->o.worker, idx);
	fd = r->direct ? open(path, flags | O_DIRECT, 0644) : -1;
	if (fd < 0 && r->direct && errno == EINVAL) {
		/* tmpfs and some others refuse O_DIRECT: buffered writes,
		 * made durable by fdatasync all the same. */
		r->direct = 0;
	}
	if (fd < 0)
		fd = open(path, flags, 0644);
	if (fd < 0)
		return -errno;
	r->fds[idx] = fd;
	return fd;
}

/* Reports every completed block at the head of the FIFO, in seq order. */
static void drain_fifo(struct fv_ring *r)
{
	while (r->fifo_n) {
		unsigned i = r->fifo[r->fifo_head];
		struct wbuf *b = &r->bufs[i];

		if (!b->complete)
			break;
		if (r->o.on_sealed)
			r->o.on_sealed(r->o.arg, &b->bi);
		__atomic_store_n(&r->done_next, b->bi.seq + 1,
				 __ATOMIC_RELEASE);
		r->fifo_head = (r->fifo_head + 1) % r->nbuf;
		r->fifo_n--;
		r->freelist[r->nfree++] = i;
	}
}

/* A free submission entry, submitting the queued ones if it is full. */
static int get_sqe(struct fv_ring *r, struct io_uring_sqe **sqe)
{
	*sqe = io_uring_get_sqe(&r->uring);
	if (!*sqe) {
		int n = io_uring_submit(&r->uring);

		if (n < 0)
			return n;
		*sqe = io_uring_get_sqe(&r->uring);
		if (!*sqe)
			return -EBUSY;
	}
	return 0;
}

static int submit_buf(struct fv_ring *r, unsigned i)
{
	struct wbuf *b = &r->bufs[i];
	struct io_uring_sqe *sqe;
	int err = get_sqe(r, &sqe);

	if (err)
		return err;
	if (r->registered)
		io_uring_prep_write_fixed(sqe, b->fd, b->mem + b->done,
					  b->len - b->done, b->off + b->done,
					  (int)i);
	else
		io_uring_prep_write(sqe, b->fd, b->mem + b->done,
				    b->len - b->done, b->off + b->done);
	io_uring_sqe_set_data(sqe, (void *)(uintptr_t)i);
	return 0;
}

/* The first file with completed writes that no sync covers, or -1. */
static int64_t unsynced_seg(const struct fv_ring *r)
{
	for (uint32_t i = 0; i < r->o.nsegments; i++)
		if (r->written[i] != r->synced[i])
			return i;
	return -1;
}

/* Queues a background fdatasync of a file with unsynced completed writes,
 * unless one is in flight. */
static int sync_kick(struct fv_ring *r)
{
	struct io_uring_sqe *sqe;
	int64_t seg;
	int err;

	if (r->syncing)
		return 0;
	seg = unsynced_seg(r);
	if (seg < 0)
		return 0;
	err = get_sqe(r, &sqe);
	if (err)
		return err;
	io_uring_prep_fsync(sqe, r->fds[seg], IORING_FSYNC_DATASYNC);
	io_uring_sqe_set_data(sqe, (void *)SYNC_TAG);
	r->syncing = 1;
	r->sync_seg = (uint32_t)seg;
	r->sync_cover = r->written[seg];
	err = io_uring_submit(&r->uring);
	return err < 0 ? err : 0;
}

/* A background sync completed: the writes it covers are durable. */
static int sync_done(struct fv_ring *r, int res)
{
	r->syncing = 0;
	if (res == -EINTR || res == -EAGAIN)
		return 0; /* queued again by the next sync_kick */
	if (res < 0)
		return res;
	if (r->synced[r->sync_seg] < r->sync_cover)
		r->synced[r->sync_seg] = r->sync_cover;
	return 0;
}

/* Gives a fresh segment file its full size (fallocate, or ftruncate
 * where the filesystem has no fallocate). */
static int seg_allocate(struct fv_ring *r, int fd)
{
	int err = fallocate(fd, 0, 0, (off_t)r->o.segment_size);

	if (err && errno != EOPNOTSUPP)
		return -errno;
	if (err && ftruncate(fd, (off_t)r->o.segment_size))
		return -errno;
	r->disk_bytes += r->o.segment_size;
	return 0;
}

/* The fallocate completed. A failure is not an error here: the file is
 * left short, and next_segment() allocates it the plain way before its
 * first block (and fails there, with nothing placed in it, if the disk
 * is full). */
static int falloc_done(struct fv_ring *r, int res)
{
	r->falloc_pending = 0;
	if (res >= 0)
		r->disk_bytes += r->o.segment_size;
	return 0;
}

/* Handles one completion; resubmits short or interrupted writes. */
static int handle_cqe(struct fv_ring *r, struct io_uring_cqe *cqe)
{
	uintptr_t tag = (uintptr_t)io_uring_cqe_get_data(cqe);
	unsigned i = (unsigned)tag;
	struct wbuf *b;
	int res = cqe->res;

	io_uring_cqe_seen(&r->uring, cqe);
	if (tag == SYNC_TAG)
		return sync_done(r, res);
	if (tag == FALLOC_TAG)
		return falloc_done(r, res);
	b = &r->bufs[i];
	if (res == -EAGAIN || res == -EINTR) {
		res = submit_buf(r, i);
	} else if (res > 0) {
		b->done += (uint32_t)res;
		if (b->done == b->len) {
			b->complete = 1;
			r->written[b->seg]++;
			return 0;
		}
		res = submit_buf(r, i);
	} else if (res == 0) {
		res = -EIO;
	}
	/* A write that failed (EIO from the disk, EROFS once the filesystem
	 * turned read-only) or could not be queued again is over: nothing
	 * waits for it any more. */
	if (res)
		b->failed = 1;
	return res;
}

/* Waits for at least min completions (0: only those ready). */
static int reap(struct fv_ring *r, unsigned min)
{
	struct io_uring_cqe *cqe;
	int err;

	err = io_uring_submit(&r->uring);
	if (err < 0)
		return err;
	while (min) {
		err = io_uring_wait_cqe(&r->uring, &cqe);
		if (err == -EINTR)
			continue;
		if (err)
			return err;
		err = handle_cqe(r, cqe);
		if (err)
			return err;
		min--;
		err = io_uring_submit(&r->uring);
		if (err < 0)
			return err;
	}
	while (io_uring_peek_cqe(&r->uring, &cqe) == 0) {
		err = handle_cqe(r, cqe);
		if (err)
			return err;
	}
	drain_fifo(r);
	return r->in_sync ? 0 : sync_kick(r);
}

/* A block write is still in flight (neither complete nor failed). */
static int in_flight_incomplete(const struct fv_ring *r)
{
	for (unsigned k = 0; k < r->fifo_n; k++) {
		const struct wbuf *b =
			&r->bufs[r->fifo[(r->fifo_head + k) % r->nbuf]];

		if (!b->complete && !b->failed)
			return 1;
	}
	return 0;
}

/* Queues the fallocate of file idx (empty or short), after the one in
 * flight if any. */
static int falloc_queue(struct fv_ring *r, uint32_t idx, int fd)
{
	struct io_uring_sqe *sqe;
	int err;

	while (r->falloc_pending) {
		err = reap(r, 1);
		if (err)
			return err;
	}
	err = get_sqe(r, &sqe);
	if (err)
		return err;
	io_uring_prep_fallocate(sqe, fd, 0, 0, (off_t)r->o.segment_size);
	io_uring_sqe_set_data(sqe, (void *)FALLOC_TAG);
	r->falloc_pending = 1;
	r->falloc_seg = idx;
	err = io_uring_submit(&r->uring);
	return err < 0 ? err : 0;
}

/*
 * Queues the allocation of the file the next fill will use, if it was
 * never filled (the ring's first lap): at open and once the current
 * segment is half full, so it is done before it is needed.
 */
static int falloc_ahead(struct fv_ring *r)
{
	uint32_t idx = (r->gen + 1) % r->o.nsegments;
	struct stat st;
	int fd;

	if (r->falloc_pending)
		return 0;
	fd = open_file(r, idx, 1);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st))
		return -errno;
	if ((uint64_t)st.st_size >= r->o.segment_size)
		return 0;
	return falloc_queue(r, idx, fd);
}

/* Starts the next segment fill (generation gen + 1). */
static int next_segment(struct fv_ring *r)
{
	uint32_t gen = r->gen + 1, idx = gen % r->o.nsegments, old;
	struct stat st;
	int fd, err;

	/* Writes still in flight into the file about to be refilled must
	 * land first (only possible with a tiny ring). */
	while (in_flight_incomplete(r)) {
		err = reap(r, 1);
		if (err)
			return err;
	}
	fd = open_file(r, idx, 1);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st))
		return -errno;
	/* The index drops the old fill's blocks, durably, before any byte
	 * of the file changes (docs/format.md "Recycling a segment"). */
	if (fv_seg_first_gen(fd, &old) == 0 && r->o.on_recycle) {
		err = r->o.on_recycle(r->o.arg, r->o.worker, old);
		if (err)
			return err;
	}
	/* A file's first fill: its space is allocated before any record is
	 * placed in it (usually in the background already, see
	 * falloc_ahead), so a full disk stops the ring between two blocks,
	 * never with a block that cannot be written. */
	while (r->falloc_pending && r->falloc_seg == idx) {
		err = reap(r, 1);
		if (err)
			return err;
	}
	if (fstat(fd, &st))
		return -errno;
	if ((uint64_t)st.st_size < r->o.segment_size) {
		err = seg_allocate(r, fd);
		if (err == -ENOSPC || err == -EDQUOT)
			r->full = 1;
		if (err)
			return err;
	}
	r->gen = gen;
	r->seg_fd = fd;
	r->seg_off = 0;
	return 0;
}

static int start_block(struct fv_ring *r)
{
	uint64_t room;
	int err;

	if (!r->nfree) {
		err = reap(r, 1);
		if (err)
			return err;
		while (!r->nfree) {
			err = reap(r, 1);
			if (err)
				return err;
		}
	}
	room = r->o.segment_size - r->seg_off;
	if (r->seg_fd < 0 || room < r->o.block_size / 4 ||
	    room < FV_BLOCK_ALIGN * 2) {
		err = next_segment(r);
		if (err)
			return err;
		room = r->o.segment_size;
	}
	r->cur = (int)r->freelist[--r->nfree];
	r->cur_cap =
		(uint32_t)(room < r->o.block_size ? room : r->o.block_size);
	r->cur_data = 0;
	r->cur_count = 0;
	r->cur_seed = fv_rec_seed(fv_ring_current(r));
	r->cur_first = UINT64_MAX;
	r->cur_last = 0;
	return 0;
}

/*
 * Registers every buffer with the kernel, so later writes are
 * write_fixed. Without CAP_IPC_LOCK or enough locked memory the kernel
 * refuses, and plain writes go on.
 */
static void register_buffers(struct fv_ring *r)
{
	struct iovec *iov = calloc(r->nbuf, sizeof(*iov));

	r->reg_tried = 1;
	if (!iov)
		return;
	for (unsigned i = 0; i < r->nbuf; i++) {
		iov[i].iov_base = r->bufs[i].mem;
		iov[i].iov_len = r->o.block_size;
	}
	r->registered = io_uring_register_buffers(&r->uring, iov, r->nbuf) == 0;
	free(iov);
}

/* Finishes the open block and queues its write. */
static int seal(struct fv_ring *r)
{
	struct wbuf *b;
	struct fv_block_hdr h;
	uint32_t disk_len;
	unsigned i;
	int err;

	if (r->cur < 0 || !r->cur_count)
		return 0;
	/* The segment's space is allocated before its first write. */
	while (r->falloc_pending && r->falloc_seg == r->gen % r->o.nsegments) {
		err = reap(r, 1);
		if (err)
			return err;
	}
	if (!r->reg_tried && ++r->sealed_here >= REGISTER_AFTER)
		register_buffers(r);
	i = (unsigned)r->cur;
	b = &r->bufs[i];
	disk_len = (FV_BLOCK_HDR_LEN + r->cur_data + FV_BLOCK_ALIGN - 1) &
		   ~(uint32_t)(FV_BLOCK_ALIGN - 1);
	memset(&h, 0, sizeof(h));
	h.magic = FV_BLOCK_MAGIC;
	h.version = FV_BLOCK_VERSION;
	h.hdr_len = FV_BLOCK_HDR_LEN;
	h.gen = r->gen;
	h.worker = (uint16_t)r->o.worker;
	h.seq = r->next_seq++;
	h.first_ns = r->cur_first;
	h.last_ns = r->cur_last;
	h.count = r->cur_count;
	h.data_len = r->cur_data;
	h.disk_len = disk_len;
	h.crc = 0;
	if (r->z)
		fv_zblock_pack(r->z, b->mem, &h);
	if (h.disk_len == disk_len)
		memset(b->mem + FV_BLOCK_HDR_LEN + r->cur_data, 0,
		       disk_len - FV_BLOCK_HDR_LEN - r->cur_data);
	b->bi.raw_len = disk_len;
	disk_len = h.disk_len;
	fv_block_hdr_encode(&h, b->mem);
	h.crc = fv_crc32c(0, b->mem, FV_BLOCK_HDR_LEN);
	fv_block_hdr_encode(&h, b->mem);
	b->bi.ref = fv_ref_make(r->o.worker, r->gen,
				(uint32_t)(r->seg_off / FV_BLOCK_ALIGN));
	b->bi.seq = h.seq;
	b->bi.first_ns = h.first_ns;
	b->bi.last_ns = h.last_ns;
	b->bi.count = h.count;
	b->bi.disk_len = disk_len;
	b->fd = r->seg_fd;
	b->off = r->seg_off;
	b->len = disk_len;
	b->done = 0;
	b->seg = r->gen % r->o.nsegments;
	b->complete = 0;
	if (r->seg_off < r->o.segment_size / 2 &&
	    r->seg_off + disk_len >= r->o.segment_size / 2) {
		err = falloc_ahead(r);
		if (err)
			return err;
	}
	r->seg_off += disk_len;
	r->fifo[(r->fifo_head + r->fifo_n) % r->nbuf] = i;
	r->fifo_n++;
	r->cur = -1;
	err = submit_buf(r, i);
	if (err)
		return err;
	return reap(r, 0);
}

fv_ref fv_ring_current(const struct fv_ring *r)
{
	return fv_ref_make(r->o.worker, r->gen,
			   (uint32_t)(r->seg_off / FV_BLOCK_ALIGN));
}

/* An open block with room for a record of need bytes. */
static int make_room(struct fv_ring *r, uint32_t need)
{
	int err;

	if (r->cur >= 0 && FV_BLOCK_HDR_LEN + r->cur_data + need > r->cur_cap) {
		err = seal(r);
		if (err)
			goto fail;
	}
	if (r->cur < 0) {
		err = start_block(r);
		if (err)
			goto fail;
		if (FV_BLOCK_HDR_LEN + need > r->cur_cap) {
			/* The tail of the segment is too short for it. */
			r->freelist[r->nfree++] = (unsigned)r->cur;
			r->cur = -1;
			r->seg_off = r->o.segment_size;
			err = start_block(r);
			if (err)
				goto fail;
		}
	}
	return 0;
fail:
	r->err = err;
	return err;
}

int fv_ring_reserve(struct fv_ring *r, uint32_t caplen)
{
	uint32_t need = (FV_REC_HDR_LEN + caplen + 7) & ~7u;

	if (r->err)
		return r->err;
	if (caplen > FV_MAX_FRAME || need + FV_BLOCK_HDR_LEN > r->o.block_size)
		return -EMSGSIZE;
	return make_room(r, need);
}

int fv_ring_append(struct fv_ring *r, const struct fv_rec *rec,
		   const void *frame, struct fv_place *pl)
{
	uint32_t need = (FV_REC_HDR_LEN + rec->caplen + 7) & ~7u, off;
	uint8_t *mem, *p;
	fv_ref cur;
	int err;

	if (r->err)
		return r->err;
	if (rec->caplen > FV_MAX_FRAME ||
	    need + FV_BLOCK_HDR_LEN > r->o.block_size)
		return -EMSGSIZE;
	if (rec->flow_id > FV_FLOW_ID_MAX)
		return -EOVERFLOW;
	err = make_room(r, need);
	if (err)
		return err;
	mem = r->bufs[r->cur].mem;
	off = FV_BLOCK_HDR_LEN + r->cur_data;
	p = mem + off;
	fv_rec_encode(rec, p);
	memcpy(p + FV_REC_HDR_LEN, frame, rec->caplen);
	memset(p + FV_REC_HDR_LEN + rec->caplen, 0,
	       need - FV_REC_HDR_LEN - rec->caplen);
	fv_put_le32(p + 24, fv_rec_crc(r->cur_seed, p, p + FV_REC_HDR_LEN,
				       rec->caplen));
	cur = fv_ring_current(r);
	/* Chain the flow's previous record in this block to this one. */
	if (pl->off >= FV_BLOCK_HDR_LEN && pl->off < off && pl->ref == cur)
		fv_put_le32(mem + pl->off + 28, off);
	pl->ref = cur;
	pl->off = off;
	r->cur_data += need;
	r->cur_count++;
	if (rec->ts_ns < r->cur_first)
		r->cur_first = rec->ts_ns;
	if (rec->ts_ns > r->cur_last)
		r->cur_last = rec->ts_ns;
	return 0;
}

int fv_ring_sync(struct fv_ring *r)
{
	int err;

	if (r->err && !r->full)
		return r->err;
	/* Every write completed, then an fdatasync here of each file with
	 * writes that no completed sync covers: it runs alongside a
	 * background sync still in flight instead of after it. That one is
	 * waited for all the same, so an error it meets is not missed. */
	r->in_sync = 1;
	err = seal(r);
	while (!err && r->fifo_n)
		err = reap(r, 1);
	for (uint32_t i = 0; !err && i < r->o.nsegments; i++) {
		if (r->written[i] == r->synced[i])
			continue;
		if (fdatasync(r->fds[i]))
			err = -errno;
		else
			r->synced[i] = r->written[i];
	}
	while (!err && r->syncing)
		err = reap(r, 1);
	r->in_sync = 0;
	if (err) {
		r->err = err;
		r->full = 0;
	}
	return err;
}

int fv_ring_full(const struct fv_ring *r)
{
	return r->full;
}

int fv_ring_flush(struct fv_ring *r, uint64_t *next)
{
	int err;

	if (r->err && !r->full)
		return r->err;
	err = seal(r);
	if (err) {
		/* a write failed after the disk filled: not full */
		r->err = err;
		r->full = 0;
	}
	*next = r->next_seq;
	return err;
}

uint64_t fv_ring_done_next(const struct fv_ring *r)
{
	return __atomic_load_n(&r->done_next, __ATOMIC_ACQUIRE);
}

int fv_ring_datasync(struct fv_ring *r, fv_ref ref)
{
	int fd = r->fds[fv_ref_gen(ref) % r->o.nsegments];

	if (fd >= 0 && fdatasync(fd))
		return -errno;
	return 0;
}

int fv_ring_poll(struct fv_ring *r)
{
	int err;

	if (r->err && !r->full)
		return r->err;
	err = reap(r, 0);
	if (err) {
		/* a write failed after the disk filled: not full */
		r->err = err;
		r->full = 0;
	}
	return err;
}

uint64_t fv_ring_disk_bytes(const struct fv_ring *r)
{
	return r->disk_bytes;
}

/* Finds the newest generation and the next sequence number on disk. */
static int recover(struct fv_ring *r)
{
	uint32_t newest_idx = 0;
	int have = 0;

	for (uint32_t i = 0; i < r->o.nsegments; i++) {
		char path[4200];
		struct stat st;
		uint32_t g;
		int fd;

		fv_seg_file(path, sizeof(path), r->o.dir, r->o.worker, i);
		if (stat(path, &st))
			continue;
		r->disk_bytes += (uint64_t)st.st_size;
		fd = open_file(r, i, 0);
		if (fd < 0)
			return fd;
		if (fv_seg_first_gen(fd, &g))
			continue;
		if (!have || g > r->gen) {
			r->gen = g;
			newest_idx = i;
			have = 1;
		}
	}
	if (have) {
		/* Walk the newest segment for its last sequence number. */
		uint64_t off = 0;
		int fd = r->fds[newest_idx];

		while (off + FV_BLOCK_HDR_LEN <= r->o.segment_size) {
			struct fv_block_hdr h;

			if (read_hdr(fd, off, &h) || h.gen != r->gen)
				break;
			if (h.seq + 1 > r->next_seq)
				r->next_seq = h.seq + 1;
			off += h.disk_len;
		}
	}
	return 0;
}

int fv_ring_open(struct fv_ring **out, const struct fv_ring_opts *opts)
{
	struct fv_ring *r;
	char wdir[4200];
	int err;

	if (!opts->nsegments || opts->block_size < 2 * FV_BLOCK_ALIGN ||
	    opts->block_size % FV_BLOCK_ALIGN ||
	    opts->segment_size < opts->block_size ||
	    opts->segment_size / FV_BLOCK_ALIGN > 0xffffff ||
	    opts->worker > 255)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->o = *opts;
	snprintf(r->dir, sizeof(r->dir), "%s", opts->dir);
	r->o.dir = r->dir;
	if (!r->o.queue_depth)
		r->o.queue_depth = 8;
	r->nbuf = r->o.queue_depth + 1;
	r->cur = -1;
	r->seg_fd = -1;
	r->direct = 1;
	r->bufs = calloc(r->nbuf, sizeof(*r->bufs));
	r->fifo = calloc(r->nbuf, sizeof(*r->fifo));
	r->freelist = calloc(r->nbuf, sizeof(*r->freelist));
	r->fds = malloc(r->o.nsegments * sizeof(*r->fds));
	r->written = calloc(r->o.nsegments, sizeof(*r->written));
	r->synced = calloc(r->o.nsegments, sizeof(*r->synced));
	if (!r->bufs || !r->fifo || !r->freelist || !r->fds || !r->written ||
	    !r->synced) {
		err = -ENOMEM;
		goto out_free;
	}
	r->bufmem = fv_big_alloc((size_t)r->nbuf * r->o.block_size);
	if (!r->bufmem) {
		err = -ENOMEM;
		goto out_free;
	}
	for (uint32_t i = 0; i < r->o.nsegments; i++)
		r->fds[i] = -1;
	for (unsigned i = 0; i < r->nbuf; i++) {
		r->bufs[i].mem = r->bufmem + (size_t)i * r->o.block_size;
		r->freelist[r->nfree++] = r->nbuf - 1 - i;
	}
	if (mkdir(r->dir, 0755) && errno != EEXIST) {
		err = -errno;
		goto out_free;
	}
	fv_seg_worker_dir(wdir, sizeof(wdir), r->dir, r->o.worker);
	if (mkdir(wdir, 0755) && errno != EEXIST) {
		err = -errno;
		goto out_free;
	}
	err = io_uring_queue_init(r->o.queue_depth * 2, &r->uring, 0);
	if (err)
		goto out_free;
	r->uring_ok = 1;
	if (r->o.compress_level) {
		err = fv_zcomp_new(&r->z, r->o.compress_level, r->o.block_size);
		if (err)
			goto out_free;
	}
	if (r->o.register_at_open)
		register_buffers(r);
	err = recover(r);
	if (err)
		goto out_free;
	r->done_next = r->next_seq;
	err = falloc_ahead(r);
	if (err)
		goto out_free;
	*out = r;
	return 0;
out_free:
	fv_ring_close(r);
	return err;
}

/*
 * Waits for every operation still in flight, whatever its result, so no
 * buffer is freed while the kernel may still write from it. After an
 * error (a failed write is no longer in flight) this must not stop at
 * the next failure, nor wait for a completion that will never come. The
 * errors met here are not new: the ring's first one is kept.
 */
static void wait_all(struct fv_ring *r)
{
	struct io_uring_cqe *cqe;
	int err;

	while (r->syncing || r->falloc_pending || in_flight_incomplete(r)) {
		if (io_uring_submit(&r->uring) < 0)
			break;
		err = io_uring_wait_cqe(&r->uring, &cqe);
		if (err == -EINTR)
			continue;
		if (err)
			break;
		handle_cqe(r, cqe);
	}
}

int fv_ring_close(struct fv_ring *r)
{
	int err = 0;

	if (!r)
		return 0;
	if (r->uring_ok) {
		err = fv_ring_sync(r);
		wait_all(r);
		io_uring_queue_exit(&r->uring);
	}
	if (r->fds)
		for (uint32_t i = 0; i < r->o.nsegments; i++)
			if (r->fds[i] >= 0)
				close(r->fds[i]);
	fv_big_free(r->bufmem, (size_t)r->nbuf * r->o.block_size);
	fv_zcomp_free(r->z);
	free(r->bufs);
	free(r->fifo);
	free(r->freelist);
	free(r->fds);
	free(r->written);
	free(r->synced);
	free(r);
	return err;
}
