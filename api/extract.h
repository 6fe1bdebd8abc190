/*
 * extract.h - the packets of a flow, from index to segments, for every
 * front end (CLI, REST). Library code: it prints nothing.
 */
#ifndef FV_API_EXTRACT_H
#define FV_API_EXTRACT_H

#include <stdint.h>

#include "index/index.h"
#include "storage/storage.h"

/*
 * Calls cb(arg, rec, frame) for every packet of flow_id, in capture order:
 * the flow's place runs are read from the index and each run's records
 * are read along the block's per-flow chain (fv_seg_read_chain: every
 * record checked by CRC and flow id, only the flow's own bytes touched).
 * A run whose records do not match what the index says gives FV_ECORRUPT
 * (or FV_ECRC), and *bad_ref (if not NULL) names the block. frame is
 * valid only during the call. Returns 0, FV_ENOTFOUND (no places),
 * FV_EEXPIRED (a block was recycled), an error of the reader, or the
 * first non-zero value cb returned.
 */
int fv_extract_flow(struct fv_index *ix, struct fv_seg_reader *rd,
		    uint64_t flow_id,
		    int (*cb)(void *arg, const struct fv_rec *rec,
			      const uint8_t *frame),
		    void *arg, fv_ref *bad_ref);

#endif
