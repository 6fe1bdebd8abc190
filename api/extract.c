/*
 * extract.c - flow id -> place runs -> the flow's records, read along
 * each block's per-flow chain (only the flow's own bytes are read).
 *
 * The runs are collected first and the index's read transaction ends
 * before any packet is read: a slow reader (a download) never holds an
 * LMDB snapshot open. Then every block of the flow is announced to the
 * kernel (readahead), so on a cold cache the blocks are read in parallel
 * rather than one record's page at a time.
 */
#include <errno.h>
#include <stdlib.h>

#include "api/extract.h"
#include "common/fv.h"

struct runs {
	struct fv_run *v;
	size_t n, cap;
};

static int on_run(void *arg, fv_ref ref, uint32_t count, uint32_t off)
{
	struct runs *rs = arg;

	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? rs->cap * 2 : 64;
		struct fv_run *v = realloc(rs->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		rs->v = v;
		rs->cap = cap;
	}
	rs->v[rs->n].ref = ref;
	rs->v[rs->n].count = count;
	rs->v[rs->n].off = off;
	rs->n++;
	return 0;
}

int fv_extract_flow(struct fv_index *ix, struct fv_seg_reader *rd,
		    uint64_t flow_id,
		    int (*cb)(void *arg, const struct fv_rec *rec,
			      const uint8_t *frame),
		    void *arg, fv_ref *bad_ref)
{
	struct runs rs = {0};
	int err = fv_index_places(ix, flow_id, on_run, &rs);

	if (!err && !rs.n)
		err = FV_ENOTFOUND;
	if (err)
		goto out;
	fv_seg_prefetch_runs(rd, rs.v, rs.n);
	for (size_t i = 0; i < rs.n && !err; i++) {
		err = fv_seg_read_chain(rd, rs.v[i].ref, rs.v[i].off,
					rs.v[i].count, flow_id, cb, arg);
		if ((err == FV_ECORRUPT || err == FV_ECRC ||
		     err == FV_EFORMAT || err == FV_EVERSION) &&
		    bad_ref)
			*bad_ref = rs.v[i].ref;
	}
out:
	free(rs.v);
	return err;
}
