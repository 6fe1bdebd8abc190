/*
 * cli_writer.c - what the writing commands (import, record) share: the
 * flow-table options and opening a store for writing.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "api/cli.h"
#include "api/worker.h"
#include "common/fv.h"

void fv_cli_flow_defaults(struct fv_flow_opts *fo)
{
	memset(fo, 0, sizeof(*fo));
	fo->max_flows = 262144;
	fo->idle_timeout_ns = 300 * FV_NSEC_PER_SEC;
	fo->udp_idle_timeout_ns = 60 * FV_NSEC_PER_SEC;
	fo->active_timeout_ns = 1800 * FV_NSEC_PER_SEC;
	fo->fin_linger_ns = 5 * FV_NSEC_PER_SEC;
}

int fv_cli_flow_opt(const char *cmd, int c, const char *arg,
		    struct fv_worker_shared *sh)
{
	struct fv_flow_opts *fo = &sh->flow_opts;
	uint64_t v;

	switch (c) {
	case FV_OPT_COMPRESS:
		if (!strcmp(arg, "none")) {
			sh->compress_level = 0;
			return 0;
		}
		if (!strcmp(arg, "zstd")) {
			sh->compress_level = 1;
			return 0;
		}
		if (strncmp(arg, "zstd:", 5) || fv_parse_count(arg + 5, &v) ||
		    v < 1 || v > 19) {
			fv_cli_err(
				cmd,
				"bad --compress '%s' (zstd, zstd:1 .. zstd:19, "
				"or none)",
				arg);
			return FV_EUSAGE;
		}
		sh->compress_level = (int)v;
		return 0;
	case FV_OPT_FLOW_RETENTION:
		if (fv_parse_duration(arg, &v) || !v) {
			fv_cli_err(cmd, "bad --flow-retention '%s' (e.g. 90d)",
				   arg);
			return FV_EUSAGE;
		}
		sh->flow_retention_ns = v;
		sh->flow_retention_set = 1;
		return 0;
	case FV_OPT_MAX_FLOWS:
		if (fv_parse_count(arg, &v) || !v || v > (1u << 28)) {
			fv_cli_err(cmd, "bad --max-flows '%s'", arg);
			return FV_EUSAGE;
		}
		fo->max_flows = (uint32_t)v;
		return 0;
	case FV_OPT_IDLE:
	case FV_OPT_TCP_IDLE:
	case FV_OPT_ACTIVE:
	case FV_OPT_LINGER:
		if (fv_parse_duration(arg, &v) || !v) {
			fv_cli_err(cmd, "bad duration '%s' (e.g. 90s, 5m)",
				   arg);
			return FV_EUSAGE;
		}
		if (c == FV_OPT_IDLE)
			fo->udp_idle_timeout_ns = v;
		else if (c == FV_OPT_TCP_IDLE)
			fo->idle_timeout_ns = v;
		else if (c == FV_OPT_ACTIVE)
			fo->active_timeout_ns = v;
		else
			fo->fin_linger_ns = v;
		return 0;
	}
	return FV_EUSAGE;
}

/* Free bytes on the filesystem of the store (0 if unknown). */
static uint64_t disk_free(const char *store)
{
	struct statvfs sv;

	if (statvfs(store, &sv))
		return 0;
	return (uint64_t)sv.f_bavail * sv.f_frsize;
}

/* Says so when the disk cannot hold the budget: it fills first, and
 * recording stops there (fv_cli_disk_full). */
static void warn_budget(const char *cmd, const char *store, uint64_t budget)
{
	uint64_t files, used, idx = 0, avail = disk_free(store);
	char path[4096], b1[32], b2[32];
	struct stat st;

	fv_segment_usage(store, &files, &used);
	if (stat(fv_store_path(path, sizeof(path), store, "index/data.mdb"),
		 &st) == 0)
		idx = (uint64_t)st.st_blocks * 512;
	if (!avail || avail + used + idx >= budget)
		return;
	fv_cli_err(cmd,
		   "warning: the budget of %s is %s but its disk has only %s "
		   "for it: the disk will fill first, and writing stops "
		   "there; give it a smaller --max-disk",
		   store, fv_cli_hsize(budget, b1, sizeof(b1)),
		   fv_cli_hsize(avail + used + idx, b2, sizeof(b2)));
}

int fv_cli_note_stop(struct fv_worker_shared *sh, const char *msg)
{
	int err;

	pthread_mutex_lock(&sh->commit_lock);
	err = fv_index_begin(sh->ix);
	if (!err)
		err = fv_index_put_meta(sh->ix, "stop_error", msg, strlen(msg));
	if (!err)
		err = fv_index_put_u64(sh->ix, "stop_error_ns",
				       msg[0] ? fv_now_real_ns() : 0);
	if (!err)
		err = fv_index_commit(sh->ix);
	else
		fv_index_abort(sh->ix);
	pthread_mutex_unlock(&sh->commit_lock);
	if (err && msg[0]) {
		const char *d =
			err == FV_EINDEX ? fv_index_last_error(sh->ix) : "";

		fprintf(stderr,
			"flowvault: %s: why writing stopped cannot be kept in "
			"the store (%s%s%s): status will not show it\n",
			sh->store, fv_strerror(err), *d ? ": " : "", d);
	}
	return err;
}

void fv_cli_disk_full(const char *cmd, const char *store, int err,
		      uint64_t packets, uint64_t budget)
{
	char b1[32], b2[32];

	fv_cli_err(cmd,
		   "the disk of %s is full (%s): stopped after %llu packets, "
		   "which are stored and indexed. Free space on it, or give "
		   "the store a budget the disk can hold (it is %s, %s are "
		   "free)",
		   store, fv_strerror(err), (unsigned long long)packets,
		   fv_cli_hsize(budget, b1, sizeof(b1)),
		   fv_cli_hsize(disk_free(store), b2, sizeof(b2)));
}

int fv_cli_disk_error(const char *cmd, const char *store, int err,
		      uint64_t packets, uint64_t budget)
{
	switch (err) {
	case -ENOSPC:
	case -EDQUOT:
		fv_cli_disk_full(cmd, store, err, packets, budget);
		return 1;
	case -EIO:
		fv_cli_err(cmd,
			   "the disk of %s fails (%s): writing stopped after "
			   "%llu packets. What was committed before the error "
			   "(all but about the last second) stays in the "
			   "store; the kernel log (dmesg) says what failed. "
			   "Once the disk works and its filesystem is checked, "
			   "check the store: flowvault fsck -s %s",
			   store, fv_strerror(err), (unsigned long long)packets,
			   store);
		return 1;
	case -EROFS:
		fv_cli_err(cmd,
			   "the filesystem of %s turned read-only (%s): "
			   "writing stopped after %llu packets. A filesystem "
			   "does that after an error (ext4 errors=remount-ro); "
			   "the kernel log (dmesg) says which. What was "
			   "committed before stays in the store; once the "
			   "filesystem is repaired and mounted read-write, "
			   "check the store: flowvault fsck -s %s",
			   store, fv_strerror(err), (unsigned long long)packets,
			   store);
		return 1;
	}
	return 0;
}

void fv_cli_write_failed(const char *cmd, struct fv_worker_shared *sh, int err,
			 uint64_t packets)
{
	const char *d = err == FV_EINDEX ? fv_index_last_error(sh->ix) : "";
	char msg[512];

	snprintf(msg, sizeof(msg), "%s: writing the store: %s%s%s", cmd,
		 fv_strerror(err), *d ? ": " : "", d);
	fv_cli_err(cmd, "writing %s: %s%s%s", sh->store, fv_strerror(err),
		   *d ? ": " : "", d);
	fv_cli_disk_error(cmd, sh->store, err, packets, sh->conf.max_disk);
	fv_cli_note_stop(sh, msg);
}

int fv_cli_writer_open(const char *cmd, struct fv_worker_shared *sh,
		       const char *store, uint64_t max_disk, unsigned workers,
		       struct fv_ifaces *ifs, int *lockfd)
{
	struct fv_store_conf want;
	char path[4096], b1[32];
	int err;

	*lockfd = -1;
	sh->store = store;
	sh->ix = NULL;
	sh->next_id = 1;
	pthread_mutex_init(&sh->commit_lock, NULL);
	err = fv_store_plan(&want, store, max_disk, workers);
	if (err) {
		fv_cli_err(cmd, "--max-disk too small: need at least %u MiB",
			   8 * workers * 4 / 3 + 1); /* the index: a quarter */
		return FV_EUSAGE;
	}
	err = fv_store_open(store, &want, &sh->conf);
	if (err == FV_EVERSION)
		fv_cli_version_err(store, 1);
	else if (err)
		fv_cli_err(cmd, "%s: %s", store, fv_strerror(err));
	if (err)
		return err;
	if (max_disk && sh->conf.max_disk != want.max_disk)
		fv_cli_err(cmd,
			   "note: %s exists with a budget of %s; --max-disk "
			   "ignored",
			   store,
			   fv_cli_hsize(sh->conf.max_disk, b1, sizeof(b1)));
	warn_budget(cmd, store, sh->conf.max_disk);
	if (sh->conf.workers < workers) {
		fv_cli_err(cmd,
			   "%s was created for %u worker(s); record into it "
			   "with --threads %u or fewer, or use a new store",
			   store, sh->conf.workers, sh->conf.workers);
		return FV_EUSAGE;
	}
	*lockfd = fv_store_lock(store);
	if (*lockfd < 0) {
		err = *lockfd;
		*lockfd = -1;
		fv_cli_err(cmd, "%s: %s", store,
			   err == FV_ELOCKED ? "another flowvault process is "
					       "writing to this store"
					     : fv_strerror(err));
		return err;
	}
	err = fv_index_open(&sh->ix,
			    fv_store_path(path, sizeof(path), store, "index"),
			    FV_INDEX_CREATE, 0);
	if (err == FV_EVERSION) {
		fv_cli_version_err(store, 1);
		goto out_close;
	}
	if (err) {
		fv_cli_err(cmd, "opening the index: %s%s%s", fv_strerror(err),
			   sh->ix ? ": " : "",
			   sh->ix ? fv_index_last_error(sh->ix) : "");
		goto out_close;
	}
	/* Blocks of another version: the ring would skip their segments'
	 * generations (never mix them). */
	err = fv_cli_writer_check_blocks(store, &sh->conf);
	if (err)
		goto out_close;
	err = fv_ifaces_load(sh->ix, ifs);
	if (!err) {
		err = fv_index_get_u64(sh->ix, "next_flow_id", &sh->next_id);
		if (err == FV_ENOTFOUND) {
			sh->next_id = 1;
			err = 0;
		}
	}
	/* The store's flow retention, unless given now (the worker keeps
	 * the new one in the store), and the index's share of the budget. */
	if (!err && !sh->flow_retention_set) {
		err = fv_index_get_u64(sh->ix, "flow_retention_ns",
				       &sh->flow_retention_ns);
		if (err == FV_ENOTFOUND)
			err = 0;
	}
	sh->index_max_bytes = fv_store_index_share(sh->conf.max_disk);
	if (!err) {
		/* A new writer: the last one's stop reason is history. */
		char m[8];
		size_t len = 0;

		if (fv_index_get_meta(sh->ix, "stop_error", m, sizeof(m),
				      &len) == 0 &&
		    len)
			err = fv_cli_note_stop(sh, "");
	}
	if (err) {
		fv_cli_err(cmd, "reading the index: %s", fv_strerror(err));
		goto out_close;
	}
	return 0;
out_close:
	fv_cli_writer_close(sh, lockfd);
	return err;
}

void fv_cli_writer_close(struct fv_worker_shared *sh, int *lockfd)
{
	if (sh->ix)
		fv_index_close(sh->ix);
	sh->ix = NULL;
	if (*lockfd >= 0)
		close(*lockfd);
	*lockfd = -1;
	pthread_mutex_destroy(&sh->commit_lock);
}
