/*
 * extract.c - flow id -> place runs -> blocks -> the flow's records.
 */
#include "api/extract.h"
#include "common/fv.h"

struct walk {
	struct fv_seg_reader *rd;
	uint64_t flow_id;
	fv_ref run_ref;
	uint64_t run_count;
	uint64_t runs;
	int (*cb)(void *arg, const struct fv_rec *rec, const uint8_t *frame);
	void *arg;
	fv_ref *bad_ref;
};

/* Reads one block and passes on the records of the flow; checks the
 * count against the index. */
static int flush_run(struct walk *w)
{
	struct fv_block blk;
	struct fv_rec r;
	const uint8_t *frame;
	uint32_t off = 0;
	uint64_t found = 0;
	int rc;

	if (!w->run_count)
		return 0;
	rc = fv_seg_read_block(w->rd, w->run_ref, &blk);
	if (rc)
		return rc;
	while ((rc = fv_block_next(&blk, &off, &r, &frame)) == 1) {
		if (r.flow_id != w->flow_id)
			continue;
		found++;
		rc = w->cb(w->arg, &r, frame);
		if (rc)
			return rc;
	}
	if (rc < 0)
		return rc;
	if (found != w->run_count) {
		if (w->bad_ref)
			*w->bad_ref = w->run_ref;
		return FV_ECORRUPT;
	}
	w->run_count = 0;
	return 0;
}

/* Runs arrive in capture order; runs of one block (a flow checkpointed
 * inside a block) are merged so each block is read once. */
static int on_run(void *arg, fv_ref ref, uint32_t count)
{
	struct walk *w = arg;
	int err;

	w->runs++;
	if (w->run_count && ref == w->run_ref) {
		w->run_count += count;
		return 0;
	}
	err = flush_run(w);
	if (err)
		return err;
	w->run_ref = ref;
	w->run_count = count;
	return 0;
}

int fv_extract_flow(struct fv_index *ix, struct fv_seg_reader *rd,
		    uint64_t flow_id,
		    int (*cb)(void *arg, const struct fv_rec *rec,
			      const uint8_t *frame),
		    void *arg, fv_ref *bad_ref)
{
	struct walk w = {
		.rd = rd,
		.flow_id = flow_id,
		.cb = cb,
		.arg = arg,
		.bad_ref = bad_ref,
	};
	int err = fv_index_places(ix, flow_id, on_run, &w);

	if (!err)
		err = flush_run(&w);
	if (!err && !w.runs)
		err = FV_ENOTFOUND;
	return err;
}
