/*
 * store.c - store directory, settings file, writer lock, budget plan.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "common/fv.h"
#include "storage/storage.h"
#include "storage/store.h"

char *fv_store_path(char *buf, unsigned len, const char *dir, const char *sub)
{
	snprintf(buf, len, "%s/%s", dir, sub);
	return buf;
}

uint64_t fv_store_index_share(uint64_t max_disk)
{
	uint64_t share = max_disk / 100 * FV_INDEX_SHARE_PCT;
	uint64_t floor = (uint64_t)FV_INDEX_SHARE_MIN_MB << 20;

	/* Small stores: flows per byte of packets vary, and a few MB of
	 * index would hold too few flow records; at most a quarter. */
	if (share < floor)
		share = floor < max_disk / 4 ? floor : max_disk / 4;
	return share;
}

int fv_store_plan(struct fv_store_conf *c, const char *dir, uint64_t max_disk,
		  uint32_t workers)
{
	uint64_t seg_budget, per_worker, seg;
	const uint64_t bs = FV_BLOCK_SIZE_DEFAULT;

	memset(c, 0, sizeof(*c));
	if (!workers)
		workers = 1;
	if (!max_disk) {
		struct statvfs sv;
		char probe[4096];

		/* The store may not exist yet: ask its parent. */
		snprintf(probe, sizeof(probe), "%s", dir);
		while (statvfs(probe, &sv) != 0) {
			char *slash = strrchr(probe, '/');

			if (!slash || slash == probe) {
				strcpy(probe, slash == probe ? "/" : ".");
				if (statvfs(probe, &sv) != 0)
					return -errno;
				break;
			}
			*slash = 0;
		}
		max_disk = (uint64_t)sv.f_bavail * sv.f_frsize / 10 * 9;
	}
	seg_budget = max_disk - fv_store_index_share(max_disk);
	per_worker = seg_budget / workers;
	seg = per_worker / 16;
	if (seg < 16 * bs)
		seg = 16 * bs;
	if (seg > 1024 * bs)
		seg = 1024 * bs;
	seg = seg / bs * bs;
	if (per_worker / seg < 2) {
		/* Small budgets: smaller segments, down to 4 MiB. */
		seg = per_worker / 2 / bs * bs;
		if (seg < 4 * bs)
			return FV_EUSAGE;
	}
	c->format = FV_STORE_FORMAT;
	c->max_disk = max_disk;
	c->segment_size = seg;
	c->nsegments = (uint32_t)(per_worker / seg);
	c->block_size = (uint32_t)bs;
	c->workers = workers;
	c->created_ns = fv_now_real_ns();
	return 0;
}

static int write_conf(const char *dir, const struct fv_store_conf *c)
{
	char path[4096], tmp[4200];
	FILE *f;
	int err = 0;

	fv_store_path(path, sizeof(path), dir, "flowvault.conf");
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	fprintf(f,
		"# flowvault store settings, fixed when the store was created\n"
		"format = %" PRIu32 "\nmax_disk = %" PRIu64 "\n"
		"segment_size = %" PRIu64 "\nnsegments = %" PRIu32 "\n"
		"block_size = %" PRIu32 "\nworkers = %" PRIu32 "\n"
		"created_ns = %" PRIu64 "\n",
		c->format, c->max_disk, c->segment_size, c->nsegments,
		c->block_size, c->workers, c->created_ns);
	if (fflush(f) || fsync(fileno(f)))
		err = -errno;
	if (fclose(f) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	return err;
}

static int read_conf(const char *dir, struct fv_store_conf *c)
{
	char path[4096], line[256], key[64];
	unsigned long long v;
	FILE *f;
	int seen = 0;

	fv_store_path(path, sizeof(path), dir, "flowvault.conf");
	f = fopen(path, "r");
	if (!f)
		return -errno;
	memset(c, 0, sizeof(*c));
	while (fgets(line, sizeof(line), f)) {
		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (sscanf(line, "%63s = %llu", key, &v) != 2)
			continue;
		if (!strcmp(key, "format"))
			c->format = (uint32_t)v, seen |= 1;
		else if (!strcmp(key, "max_disk"))
			c->max_disk = v, seen |= 2;
		else if (!strcmp(key, "segment_size"))
			c->segment_size = v, seen |= 4;
		else if (!strcmp(key, "nsegments"))
			c->nsegments = (uint32_t)v, seen |= 8;
		else if (!strcmp(key, "block_size"))
			c->block_size = (uint32_t)v, seen |= 16;
		else if (!strcmp(key, "workers"))
			c->workers = (uint32_t)v, seen |= 32;
		else if (!strcmp(key, "created_ns"))
			c->created_ns = v;
	}
	fclose(f);
	if (!(seen & 1))
		return FV_EFORMAT;
	/* Older or newer: the other keys may mean something else there.
	 * c->format tells the caller which version it found. */
	if (c->format != FV_STORE_FORMAT)
		return FV_EVERSION;
	if (seen != 63 || !c->nsegments || !c->workers ||
	    c->block_size < FV_BLOCK_ALIGN || c->segment_size < c->block_size)
		return FV_EFORMAT;
	return 0;
}

int fv_store_open(const char *dir, const struct fv_store_conf *want,
		  struct fv_store_conf *got)
{
	char path[4096];
	struct stat st;
	int err;

	fv_store_path(path, sizeof(path), dir, "flowvault.conf");
	if (stat(path, &st) == 0)
		return read_conf(dir, got);
	if (errno != ENOENT)
		return -errno;
	if (!want)
		return -ENOENT;
	if (mkdir(dir, 0755) && errno != EEXIST)
		return -errno;
	if (mkdir(fv_store_path(path, sizeof(path), dir, "segments"), 0755) &&
	    errno != EEXIST)
		return -errno;
	if (mkdir(fv_store_path(path, sizeof(path), dir, "index"), 0755) &&
	    errno != EEXIST)
		return -errno;
	err = write_conf(dir, want);
	if (err)
		return err;
	*got = *want;
	return 0;
}

int fv_store_lock(const char *dir)
{
	char path[4096];
	int fd;

	fv_store_path(path, sizeof(path), dir, "lock");
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		int e = errno;

		close(fd);
		return e == EWOULDBLOCK ? FV_ELOCKED : -e;
	}
	return fd;
}
