/*
 * fvbench - in-process timings for make bench, where a figure should not
 * include starting a process: the same library calls the CLI makes.
 *
 *   fvbench extract-flow STORE FLOW_ID N [cold]
 *       opens the store once, then extracts the flow N times (to a pcap
 *       writer on /dev/null) and prints the median time of one extraction
 *       in seconds, and the packet count. "cold": the page cache is
 *       dropped before each extraction (root), as for a store much
 *       larger than memory.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/cli.h"
#include "api/extract.h"
#include "capture/capfile.h"
#include "common/fv.h"

volatile sig_atomic_t fv_cli_stop;

struct out {
	struct fv_pcapw *w;
	const struct fv_ifaces *ifs;
	uint64_t n;
};

static int on_packet(void *arg, const struct fv_rec *r, const uint8_t *frame)
{
	struct out *o = arg;

	o->n++;
	return fv_pcapw_write(o->w, (int)o->ifs->v[r->iface].linktype, r->ts_ns,
			      r->caplen, r->origlen, frame);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	struct fv_cli_store st;
	struct fv_seg_reader *rd;
	char path[4096];
	uint64_t id, *t;
	int n, err;
	FILE *null;

	int cold;

	if (argc < 5 || argc > 6 || strcmp(argv[1], "extract-flow") ||
	    (argc == 6 && strcmp(argv[5], "cold"))) {
		fprintf(stderr,
			"usage: fvbench extract-flow STORE FLOW_ID N [cold]\n");
		return 2;
	}
	cold = argc == 6;
	id = strtoull(argv[3], NULL, 10);
	n = atoi(argv[4]);
	if (n < 1 || !(t = calloc((size_t)n, sizeof(*t))))
		return 2;
	err = fv_cli_store_open(&st, argv[2]);
	if (!err)
		err = fv_seg_reader_open(
			&rd,
			fv_store_path(path, sizeof(path), argv[2], "segments"),
			st.conf.nsegments, st.conf.block_size);
	null = fopen("/dev/null", "wb");
	if (err || !null) {
		fprintf(stderr, "fvbench: %s\n",
			fv_strerror(err ? err : -errno));
		return 1;
	}
	for (int i = 0; i < n; i++) {
		struct out o = {.ifs = &st.ifs};
		uint64_t t0;

		if (cold) {
			FILE *dc;

			sync();
			dc = fopen("/proc/sys/vm/drop_caches", "w");
			if (!dc || fputs("3\n", dc) < 0 || fclose(dc)) {
				fprintf(stderr, "fvbench: cannot drop caches "
						"(root only)\n");
				return 1;
			}
		}
		t0 = fv_now_mono_ns();

		err = fv_pcapw_open(&o.w, null, FV_PCAPW_PCAP,
				    (int)st.ifs.v[0].linktype, 262144);
		if (!err)
			err = fv_extract_flow(st.ix, rd, id, on_packet, &o,
					      NULL);
		if (o.w)
			fv_pcapw_close(o.w);
		t[i] = fv_now_mono_ns() - t0;
		if (err) {
			fprintf(stderr, "fvbench: flow %" PRIu64 ": %s\n", id,
				fv_strerror(err));
			return 1;
		}
		if (i == n - 1) {
			qsort(t, (size_t)n, sizeof(*t), cmp_u64);
			printf("%.6f %" PRIu64 "\n", (double)t[n / 2] / 1e9,
			       o.n);
		}
	}
	fclose(null);
	fv_seg_reader_close(rd);
	fv_cli_store_close(&st);
	free(t);
	return 0;
}
