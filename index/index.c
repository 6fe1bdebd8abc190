/*
 * index.c - the flow index on LMDB: one environment per store
 * (STORE/index/data.mdb + lock.mdb) holding seven named databases. The
 * key and value layouts are in docs/format-index.md; keys are big-endian
 * so that LMDB's memcmp order is numeric order, values little-endian.
 *
 * Writing: one write txn lives in struct fv_index between fv_index_begin()
 * and fv_index_commit()/fv_index_abort(); after a put_* fails the caller
 * must abort (LMDB may have marked the txn unusable). Reading: each call
 * runs its own MDB_RDONLY txn (MDB_NOTLS, so any thread, also the
 * writer's) and sees only committed data.
 *
 * LMDB's codes are translated here and nowhere else: MDB_NOTFOUND ->
 * FV_ENOTFOUND, MDB_MAP_FULL -> FV_EFULL, an errno from the system ->
 * -errno, any other LMDB code -> FV_EINDEX; the LMDB text is kept for
 * fv_index_last_error().
 */
#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/fv.h"
#include "index/filter.h"
#include "index/index.h"

#define FV_INDEX_FORMAT	     2		   /* meta "index_format" */
#define FV_INDEX_MAP_DEFAULT (64ull << 30) /* address space, not disk */
#define FV_INDEX_MAX_READERS 256

#define META_FORMAT	  "index_format"
#define META_MAX_DURATION "max_duration_ns"

/* Key lengths (docs/format-index.md). */
#define KEY_FLOW_LEN   8  /* id */
#define KEY_PLACES_LEN 12 /* id, part */
#define KEY_TIME_LEN   16 /* first_ns, id */
#define KEY_HOST_PFX   17 /* family, addr[16] */
#define KEY_HOST_LEN   (KEY_HOST_PFX + 16)
#define KEY_PORT_PFX   2 /* port */
#define KEY_PORT_LEN   (KEY_PORT_PFX + 16)
#define KEY_BLOCK_LEN  8  /* ref */
#define VAL_BLOCK_LEN  32 /* seq, first_ns, last_ns, count, disk_len */

struct fv_index {
	MDB_env *env;
	MDB_dbi meta, flows, places, bytime, byhost, byport, blocks;
	unsigned flags;
	char *data_path; /* dir/data.mdb, for fv_index_stats() */

	/* The write txn and what it has learned (reset at begin). */
	MDB_txn *txn;
	int maxdur_known;
	uint64_t maxdur;
	int time_last_known, time_last_valid;
	uint8_t time_last[KEY_TIME_LEN];
	int block_last_known, block_last_valid;
	uint64_t block_last;

	pthread_mutex_t err_lock;
	char err[256];
};

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	put_le16(p, (uint16_t)v);
	put_le16(p + 2, (uint16_t)(v >> 16));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (uint16_t)p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)le16(p) | (uint32_t)le16(p + 2) << 16;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* ---- errors ---- */

static void set_errf(struct fv_index *ix, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void set_errf(struct fv_index *ix, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&ix->err_lock);
	va_start(ap, fmt);
	vsnprintf(ix->err, sizeof(ix->err), fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&ix->err_lock);
}

static int mdb_to_fv(int rc)
{
	switch (rc) {
	case MDB_SUCCESS:
		return 0;
	case MDB_NOTFOUND:
		return FV_ENOTFOUND;
	case MDB_MAP_FULL:
		return FV_EFULL;
	default:
		return rc > 0 ? -rc : FV_EINDEX;
	}
}

/* Translates an LMDB return code, keeping its text when it is a failure
 * (MDB_NOTFOUND is an answer, not a failure). */
static int ix_err(struct fv_index *ix, const char *op, int rc)
{
	if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
		set_errf(ix, "%s: %s", op, mdb_strerror(rc));
	return mdb_to_fv(rc);
}

const char *fv_index_last_error(const struct fv_index *ix)
{
	return ix ? ix->err : "";
}

/* ---- flow records ---- */

/*
 * The flow record, FV_FLOW_REC_LEN bytes, little-endian:
 *   0 u8 version  1 u8 length  2 u8 family  3 u8 proto  4 u16 vlan
 *   6 u16 sport  8 u16 dport  10 u16 flags  12 u16 iface  14 u16 reserved
 *   16 u64 id  24 saddr[16]  40 daddr[16]  56 u64 first_ns  64 u64 last_ns
 *   72 u64 pkts[0]  80 u64 pkts[1]  88 u64 bytes[0]  96 u64 bytes[1]
 *   104 u8 tcp_flags[0]  105 u8 tcp_flags[1]  106 u8 icmp_type
 *   107 u8 icmp_code  108 u8 end_reason  109 u8 worker  110 u16 zero
 *   112 u32 places_parts  116..127 zero
 */
void fv_flow_encode(const struct fv_flow *f, uint8_t out[FV_FLOW_REC_LEN])
{
	memset(out, 0, FV_FLOW_REC_LEN);
	out[0] = FV_FLOW_RECORD_VERSION;
	out[1] = FV_FLOW_REC_LEN;
	out[2] = f->key.family;
	out[3] = f->key.proto;
	put_le16(out + 4, f->key.vlan);
	put_le16(out + 6, f->key.sport);
	put_le16(out + 8, f->key.dport);
	put_le16(out + 10, f->flags);
	put_le16(out + 12, f->iface);
	put_le16(out + 14, f->reserved);
	put_le64(out + 16, f->id);
	memcpy(out + 24, f->key.saddr, 16);
	memcpy(out + 40, f->key.daddr, 16);
	put_le64(out + 56, f->first_ns);
	put_le64(out + 64, f->last_ns);
	put_le64(out + 72, f->pkts[0]);
	put_le64(out + 80, f->pkts[1]);
	put_le64(out + 88, f->bytes[0]);
	put_le64(out + 96, f->bytes[1]);
	out[104] = f->tcp_flags[0];
	out[105] = f->tcp_flags[1];
	out[106] = f->icmp_type;
	out[107] = f->icmp_code;
	out[108] = f->end_reason;
	out[109] = f->worker;
	put_le32(out + 112, f->places_parts);
}

/*
 * Decodes a record written by fv_flow_encode(). A record of this version
 * may declare a length above FV_FLOW_REC_LEN (fields appended later); the
 * bytes past the ones known here are ignored.
 */
int fv_flow_decode(const uint8_t *p, size_t len, struct fv_flow *f)
{
	if (len < 2)
		return FV_EFORMAT;
	if (p[0] != FV_FLOW_RECORD_VERSION)
		return FV_EVERSION;
	if (p[1] < FV_FLOW_REC_LEN || len < p[1])
		return FV_EFORMAT;
	memset(f, 0, sizeof(*f));
	f->key.family = p[2];
	f->key.proto = p[3];
	f->key.vlan = le16(p + 4);
	f->key.sport = le16(p + 6);
	f->key.dport = le16(p + 8);
	f->flags = le16(p + 10);
	f->iface = le16(p + 12);
	f->reserved = le16(p + 14);
	f->id = le64(p + 16);
	memcpy(f->key.saddr, p + 24, 16);
	memcpy(f->key.daddr, p + 40, 16);
	f->first_ns = le64(p + 56);
	f->last_ns = le64(p + 64);
	f->pkts[0] = le64(p + 72);
	f->pkts[1] = le64(p + 80);
	f->bytes[0] = le64(p + 88);
	f->bytes[1] = le64(p + 96);
	f->tcp_flags[0] = p[104];
	f->tcp_flags[1] = p[105];
	f->icmp_type = p[106];
	f->icmp_code = p[107];
	f->end_reason = p[108];
	f->worker = p[109];
	f->places_parts = le32(p + 112);
	return 0;
}

/* ---- open / close ---- */

static int open_dbs(struct fv_index *ix)
{
	static const char *const names[] = {"meta",   "flows",	"places",
					    "bytime", "byhost", "byport",
					    "blocks"};
	MDB_dbi *dbis[] = {&ix->meta,	&ix->flows,  &ix->places, &ix->bytime,
			   &ix->byhost, &ix->byport, &ix->blocks};
	int create = !!(ix->flags & FV_INDEX_CREATE);
	uint8_t fmt[8];
	MDB_txn *txn;
	MDB_val k, v;
	int rc, err = 0;

	rc = mdb_txn_begin(ix->env, NULL, create ? 0 : MDB_RDONLY, &txn);
	if (rc)
		return ix_err(ix, "mdb_txn_begin", rc);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		rc = mdb_dbi_open(txn, names[i], create ? MDB_CREATE : 0,
				  dbis[i]);
		if (rc == MDB_NOTFOUND) {
			set_errf(ix,
				 "database '%s' missing: not a flowvault index",
				 names[i]);
			err = FV_EFORMAT;
			goto out_abort;
		}
		if (rc) {
			err = ix_err(ix, "mdb_dbi_open", rc);
			goto out_abort;
		}
	}

	k.mv_data = (void *)META_FORMAT;
	k.mv_size = strlen(META_FORMAT);
	rc = mdb_get(txn, ix->meta, &k, &v);
	if (rc == MDB_NOTFOUND && create) {
		put_le64(fmt, FV_INDEX_FORMAT);
		v.mv_data = fmt;
		v.mv_size = sizeof(fmt);
		rc = mdb_put(txn, ix->meta, &k, &v, 0);
		if (rc) {
			err = ix_err(ix, "mdb_put(meta)", rc);
			goto out_abort;
		}
	} else if (rc == MDB_NOTFOUND) {
		set_errf(ix, "meta '%s' missing: not a flowvault index",
			 META_FORMAT);
		err = FV_EFORMAT;
		goto out_abort;
	} else if (rc) {
		err = ix_err(ix, "mdb_get(meta)", rc);
		goto out_abort;
	} else if (v.mv_size != 8) {
		set_errf(ix, "meta '%s' is %zu bytes", META_FORMAT, v.mv_size);
		err = FV_EFORMAT;
		goto out_abort;
	} else if (le64(v.mv_data) != FV_INDEX_FORMAT) {
		set_errf(ix,
			 "index format %llu, this build reads format %d: the "
			 "store was written by another flowvault version; "
			 "import the captures again into a new store",
			 (unsigned long long)le64(v.mv_data), FV_INDEX_FORMAT);
		err = FV_EVERSION;
		goto out_abort;
	}

	/* Committing (also a read txn) keeps the dbi handles open. */
	rc = mdb_txn_commit(txn);
	if (rc)
		return ix_err(ix, "mdb_txn_commit", rc);
	return 0;

out_abort:
	mdb_txn_abort(txn);
	return err;
}

int fv_index_open(struct fv_index **out, const char *dir, unsigned flags,
		  uint64_t map_size)
{
	unsigned envflags = MDB_NOTLS;
	struct fv_index *ix;
	struct stat st;
	int rc, dead, err;

	*out = NULL;
	if (!dir || !*dir)
		return -EINVAL;
	if ((flags & FV_INDEX_RDONLY) && (flags & FV_INDEX_CREATE))
		return -EINVAL;
	ix = calloc(1, sizeof(*ix));
	if (!ix)
		return -ENOMEM;
	ix->flags = flags;
	err = pthread_mutex_init(&ix->err_lock, NULL);
	if (err) {
		err = -err;
		goto out_free;
	}
	if (asprintf(&ix->data_path, "%s/data.mdb", dir) < 0) {
		ix->data_path = NULL;
		err = -ENOMEM;
		goto out_mutex;
	}

	/* Without CREATE the environment must exist (LMDB would make one). */
	if (flags & FV_INDEX_CREATE) {
		if (mkdir(dir, 0755) && errno != EEXIST) {
			err = -errno;
			goto out_path;
		}
	} else if (stat(ix->data_path, &st)) {
		err = -errno;
		goto out_path;
	}

	rc = mdb_env_create(&ix->env);
	if (rc) {
		err = ix_err(ix, "mdb_env_create", rc);
		goto out_path;
	}
	rc = mdb_env_set_maxdbs(ix->env, 8);
	if (!rc)
		rc = mdb_env_set_maxreaders(ix->env, FV_INDEX_MAX_READERS);
	/* A reader given no size takes the one recorded by the writer. */
	if (!rc && (map_size || !(flags & FV_INDEX_RDONLY)))
		rc = mdb_env_set_mapsize(
			ix->env, map_size ? map_size : FV_INDEX_MAP_DEFAULT);
	if (rc) {
		err = ix_err(ix, "mdb_env_set", rc);
		goto out_env;
	}
	if (flags & FV_INDEX_RDONLY)
		envflags |= MDB_RDONLY;
	rc = mdb_env_open(ix->env, dir, envflags, 0644);
	if (rc) {
		err = ix_err(ix, "mdb_env_open", rc);
		if (rc == MDB_INVALID)
			err = FV_EFORMAT;
		else if (rc == MDB_VERSION_MISMATCH)
			err = FV_EVERSION;
		goto out_env;
	}
	/* Frees reader slots left by processes that died mid-read. */
	rc = mdb_reader_check(ix->env, &dead);
	if (rc) {
		err = ix_err(ix, "mdb_reader_check", rc);
		goto out_env;
	}
	err = open_dbs(ix);
	if (err)
		goto out_env;
	*out = ix;
	return 0;

out_env:
	mdb_env_close(ix->env);
out_path:
	free(ix->data_path);
out_mutex:
	pthread_mutex_destroy(&ix->err_lock);
out_free:
	free(ix);
	return err;
}

void fv_index_close(struct fv_index *ix)
{
	if (!ix)
		return;
	if (ix->txn)
		mdb_txn_abort(ix->txn);
	mdb_env_close(ix->env);
	free(ix->data_path);
	pthread_mutex_destroy(&ix->err_lock);
	free(ix);
}

/* ---- writing ---- */

static void txn_reset(struct fv_index *ix)
{
	ix->txn = NULL;
	ix->maxdur_known = 0;
	ix->time_last_known = 0;
	ix->block_last_known = 0;
}

int fv_index_begin(struct fv_index *ix)
{
	int rc;

	if (ix->flags & FV_INDEX_RDONLY)
		return -EROFS;
	if (ix->txn)
		return -EINVAL;
	txn_reset(ix);
	rc = mdb_txn_begin(ix->env, NULL, 0, &ix->txn);
	if (rc) {
		ix->txn = NULL;
		return ix_err(ix, "mdb_txn_begin", rc);
	}
	return 0;
}

int fv_index_commit(struct fv_index *ix)
{
	int rc;

	if (!ix->txn)
		return -EINVAL;
	rc = mdb_txn_commit(ix->txn); /* frees the txn, also on failure */
	txn_reset(ix);
	return ix_err(ix, "mdb_txn_commit", rc);
}

void fv_index_abort(struct fv_index *ix)
{
	if (!ix->txn)
		return;
	mdb_txn_abort(ix->txn);
	txn_reset(ix);
}

static int wput(struct fv_index *ix, MDB_dbi dbi, const char *op,
		const void *key, size_t klen, const void *val, size_t vlen,
		unsigned fl)
{
	static const uint8_t none[1];
	MDB_val k = {.mv_size = klen, .mv_data = (void *)key};
	MDB_val v = {.mv_size = vlen, .mv_data = (void *)(val ? val : none)};

	return ix_err(ix, op, mdb_put(ix->txn, dbi, &k, &v, fl));
}

static int wdel(struct fv_index *ix, MDB_dbi dbi, const char *op,
		const void *key, size_t klen)
{
	MDB_val k = {.mv_size = klen, .mv_data = (void *)key};
	int rc = mdb_del(ix->txn, dbi, &k, NULL);

	return rc == MDB_NOTFOUND ? 0 : ix_err(ix, op, rc);
}

/* The last key of dbi in the write txn (*valid = 0 if dbi is empty). */
static int last_key(struct fv_index *ix, MDB_dbi dbi, void *key, size_t klen,
		    int *valid)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc;

	*valid = 0;
	rc = mdb_cursor_open(ix->txn, dbi, &c);
	if (rc)
		return ix_err(ix, "mdb_cursor_open", rc);
	rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	mdb_cursor_close(c);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc)
		return ix_err(ix, "mdb_cursor_get(last)", rc);
	if (k.mv_size != klen) {
		set_errf(ix, "last key is %zu bytes, expected %zu", k.mv_size,
			 klen);
		return FV_ECORRUPT;
	}
	memcpy(key, k.mv_data, klen);
	*valid = 1;
	return 0;
}

/* The secondary keys of a flow: they depend only on the key and first_ns. */
struct sec_keys {
	uint8_t time[KEY_TIME_LEN];
	uint8_t host[2][KEY_HOST_LEN];
	uint8_t port[2][KEY_PORT_LEN];
	int nhost, nport;
};

static void sec_keys_make(const struct fv_flow *f, struct sec_keys *s)
{
	const uint8_t *addr[2] = {f->key.saddr, f->key.daddr};
	uint16_t port[2] = {f->key.sport, f->key.dport};

	memset(s, 0, sizeof(*s));
	fv_put_be64(s->time, f->first_ns);
	fv_put_be64(s->time + 8, f->id);
	if (f->key.family) {
		for (int i = 0; i < 2; i++) {
			uint8_t *k = s->host[s->nhost];

			if (i == 1 && !memcmp(addr[0], addr[1], 16))
				break;
			k[0] = f->key.family;
			memcpy(k + 1, addr[i], 16);
			fv_put_be64(k + KEY_HOST_PFX, f->first_ns);
			fv_put_be64(k + KEY_HOST_PFX + 8, f->id);
			s->nhost++;
		}
	}
	for (int i = 0; i < 2; i++) {
		uint8_t *k = s->port[s->nport];

		if (!port[i] || (i == 1 && port[0] == port[1]))
			continue;
		fv_put_be16(k, port[i]);
		fv_put_be64(k + KEY_PORT_PFX, f->first_ns);
		fv_put_be64(k + KEY_PORT_PFX + 8, f->id);
		s->nport++;
	}
}

static int sec_keys_same(const struct sec_keys *a, const struct sec_keys *b)
{
	if (a->nhost != b->nhost || a->nport != b->nport ||
	    memcmp(a->time, b->time, sizeof(a->time)))
		return 0;
	for (int i = 0; i < a->nhost; i++)
		if (memcmp(a->host[i], b->host[i], KEY_HOST_LEN))
			return 0;
	for (int i = 0; i < a->nport; i++)
		if (memcmp(a->port[i], b->port[i], KEY_PORT_LEN))
			return 0;
	return 1;
}

static int sec_keys_del(struct fv_index *ix, const struct sec_keys *s)
{
	int err =
		wdel(ix, ix->bytime, "mdb_del(bytime)", s->time, KEY_TIME_LEN);

	for (int i = 0; !err && i < s->nhost; i++)
		err = wdel(ix, ix->byhost, "mdb_del(byhost)", s->host[i],
			   KEY_HOST_LEN);
	for (int i = 0; !err && i < s->nport; i++)
		err = wdel(ix, ix->byport, "mdb_del(byport)", s->port[i],
			   KEY_PORT_LEN);
	return err;
}

static int sec_keys_put(struct fv_index *ix, const struct sec_keys *s)
{
	unsigned fl = 0;
	int err = 0;

	/* bytime keys mostly arrive in order: append when past the last. */
	if (!ix->time_last_known) {
		err = last_key(ix, ix->bytime, ix->time_last, KEY_TIME_LEN,
			       &ix->time_last_valid);
		if (err)
			return err;
		ix->time_last_known = 1;
	}
	if (!ix->time_last_valid ||
	    memcmp(s->time, ix->time_last, KEY_TIME_LEN) > 0)
		fl = MDB_APPEND;
	err = wput(ix, ix->bytime, "mdb_put(bytime)", s->time, KEY_TIME_LEN,
		   NULL, 0, fl);
	if (err)
		return err;
	if (fl) {
		memcpy(ix->time_last, s->time, KEY_TIME_LEN);
		ix->time_last_valid = 1;
	}
	for (int i = 0; !err && i < s->nhost; i++)
		err = wput(ix, ix->byhost, "mdb_put(byhost)", s->host[i],
			   KEY_HOST_LEN, NULL, 0, 0);
	for (int i = 0; !err && i < s->nport; i++)
		err = wput(ix, ix->byport, "mdb_put(byport)", s->port[i],
			   KEY_PORT_LEN, NULL, 0, 0);
	return err;
}

/* Reads a little-endian u64 from meta inside the write txn (0 if absent). */
static int txn_get_u64(struct fv_index *ix, const char *name, uint64_t *v)
{
	MDB_val k = {.mv_size = strlen(name), .mv_data = (void *)name};
	MDB_val d;
	int rc = mdb_get(ix->txn, ix->meta, &k, &d);

	*v = 0;
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc)
		return ix_err(ix, "mdb_get(meta)", rc);
	if (d.mv_size != 8) {
		set_errf(ix, "meta '%s' is %zu bytes, not a u64", name,
			 d.mv_size);
		return FV_EFORMAT;
	}
	*v = le64(d.mv_data);
	return 0;
}

/* Keeps meta "max_duration_ns" >= every flow's last_ns - first_ns. */
static int note_duration(struct fv_index *ix, const struct fv_flow *f)
{
	uint64_t d = f->last_ns > f->first_ns ? f->last_ns - f->first_ns : 0;
	int err;

	if (!ix->maxdur_known) {
		err = txn_get_u64(ix, META_MAX_DURATION, &ix->maxdur);
		if (err)
			return err;
		ix->maxdur_known = 1;
	}
	if (d <= ix->maxdur)
		return 0;
	err = fv_index_put_u64(ix, META_MAX_DURATION, d);
	if (err)
		return err;
	ix->maxdur = d;
	return 0;
}

int fv_index_put_flow(struct fv_index *ix, const struct fv_flow *f)
{
	uint8_t key[KEY_FLOW_LEN], rec[FV_FLOW_REC_LEN];
	struct sec_keys nk, ok;
	struct fv_flow old;
	MDB_val k = {.mv_size = sizeof(key), .mv_data = key}, v;
	int rc, err;

	if (!ix->txn || !f->id)
		return -EINVAL;
	fv_put_be64(key, f->id);
	sec_keys_make(f, &nk);

	/*
	 * A checkpoint replaces the record. Its secondary keys are the same
	 * unless the caller changed first_ns or the key: then the old ones
	 * go. An old record that does not decode is simply overwritten (its
	 * stale keys, if any, only cost a lookup: the query checks the
	 * record itself).
	 */
	rc = mdb_get(ix->txn, ix->flows, &k, &v);
	if (rc && rc != MDB_NOTFOUND)
		return ix_err(ix, "mdb_get(flows)", rc);
	if (!rc && !fv_flow_decode(v.mv_data, v.mv_size, &old)) {
		sec_keys_make(&old, &ok);
		if (sec_keys_same(&ok, &nk))
			goto put_record;
		err = sec_keys_del(ix, &ok);
		if (err)
			return err;
	}
	err = sec_keys_put(ix, &nk);
	if (err)
		return err;

put_record:
	fv_flow_encode(f, rec);
	err = wput(ix, ix->flows, "mdb_put(flows)", key, sizeof(key), rec,
		   sizeof(rec), 0);
	if (err)
		return err;
	return note_duration(ix, f);
}

int fv_index_put_places(struct fv_index *ix, uint64_t flow_id, uint32_t part,
			const uint8_t *enc, uint32_t len)
{
	uint8_t key[KEY_PLACES_LEN];

	if (!ix->txn || (!enc && len))
		return -EINVAL;
	fv_put_be64(key, flow_id);
	fv_put_be32(key + 8, part);
	return wput(ix, ix->places, "mdb_put(places)", key, sizeof(key), enc,
		    len, 0);
}

int fv_index_put_block(struct fv_index *ix, const struct fv_block_info *bi)
{
	uint8_t key[KEY_BLOCK_LEN], val[VAL_BLOCK_LEN], last[KEY_BLOCK_LEN];
	unsigned fl = 0;
	int err;

	if (!ix->txn)
		return -EINVAL;
	if (!ix->block_last_known) {
		err = last_key(ix, ix->blocks, last, sizeof(last),
			       &ix->block_last_valid);
		if (err)
			return err;
		ix->block_last = ix->block_last_valid ? fv_be64(last) : 0;
		ix->block_last_known = 1;
	}
	/* Refs rise per worker; with several workers only mostly. */
	if (!ix->block_last_valid || bi->ref > ix->block_last)
		fl = MDB_APPEND;
	fv_put_be64(key, bi->ref);
	put_le64(val, bi->seq);
	put_le64(val + 8, bi->first_ns);
	put_le64(val + 16, bi->last_ns);
	put_le32(val + 24, bi->count);
	put_le32(val + 28, bi->disk_len);
	err = wput(ix, ix->blocks, "mdb_put(blocks)", key, sizeof(key), val,
		   sizeof(val), fl);
	if (err)
		return err;
	if (fl) {
		ix->block_last = bi->ref;
		ix->block_last_valid = 1;
	}
	return 0;
}

/* A meta name is a non-empty string that fits an LMDB key. */
static int meta_name_ok(struct fv_index *ix, const char *name)
{
	size_t n = name ? strlen(name) : 0;

	return n > 0 && n <= (size_t)mdb_env_get_maxkeysize(ix->env);
}

int fv_index_put_meta(struct fv_index *ix, const char *name, const void *val,
		      size_t len)
{
	if (!ix->txn || !meta_name_ok(ix, name) || (!val && len))
		return -EINVAL;
	return wput(ix, ix->meta, "mdb_put(meta)", name, strlen(name), val, len,
		    0);
}

int fv_index_put_u64(struct fv_index *ix, const char *name, uint64_t v)
{
	uint8_t b[8];

	put_le64(b, v);
	return fv_index_put_meta(ix, name, b, sizeof(b));
}

int fv_index_add_u64(struct fv_index *ix, const char *name, uint64_t delta)
{
	uint64_t v;
	int err;

	if (!ix->txn || !meta_name_ok(ix, name))
		return -EINVAL;
	err = txn_get_u64(ix, name, &v);
	if (err)
		return err;
	return fv_index_put_u64(ix, name, v + delta);
}

/* ---- reading ---- */

static int rd_begin(struct fv_index *ix, MDB_txn **txn)
{
	int rc = mdb_txn_begin(ix->env, NULL, MDB_RDONLY, txn);

	if (rc) {
		*txn = NULL;
		return ix_err(ix, "mdb_txn_begin(rdonly)", rc);
	}
	return 0;
}

/* Looks up meta name in txn: FV_ENOTFOUND if absent. */
static int rd_meta(struct fv_index *ix, MDB_txn *txn, const char *name,
		   MDB_val *d)
{
	MDB_val k = {.mv_size = strlen(name), .mv_data = (void *)name};

	return ix_err(ix, "mdb_get(meta)", mdb_get(txn, ix->meta, &k, d));
}

int fv_index_get_meta(struct fv_index *ix, const char *name, void *val,
		      size_t cap, size_t *len)
{
	MDB_txn *txn;
	MDB_val d;
	int err;

	if (!meta_name_ok(ix, name) || (!val && cap))
		return -EINVAL;
	err = rd_begin(ix, &txn);
	if (err)
		return err;
	err = rd_meta(ix, txn, name, &d);
	if (err)
		goto out_txn;
	if (len)
		*len = d.mv_size;
	if (d.mv_size > cap) {
		err = -ENOBUFS;
		goto out_txn;
	}
	if (d.mv_size)
		memcpy(val, d.mv_data, d.mv_size);
out_txn:
	mdb_txn_abort(txn);
	return err;
}

int fv_index_get_u64(struct fv_index *ix, const char *name, uint64_t *v)
{
	uint8_t b[8];
	size_t n;
	int err = fv_index_get_meta(ix, name, b, sizeof(b), &n);

	if (err == -ENOBUFS || (!err && n != sizeof(b)))
		return FV_EFORMAT;
	if (err)
		return err;
	*v = le64(b);
	return 0;
}

/* Reads and decodes flow id in txn. */
static int rd_flow(struct fv_index *ix, MDB_txn *txn, uint64_t id,
		   struct fv_flow *f)
{
	uint8_t key[KEY_FLOW_LEN];
	MDB_val k = {.mv_size = sizeof(key), .mv_data = key}, v;
	int err;

	fv_put_be64(key, id);
	err = ix_err(ix, "mdb_get(flows)", mdb_get(txn, ix->flows, &k, &v));
	if (err)
		return err;
	err = fv_flow_decode(v.mv_data, v.mv_size, f);
	if (err) {
		set_errf(ix, "flow %llu: record of %zu bytes, version %u: %s",
			 (unsigned long long)id, v.mv_size,
			 v.mv_size ? ((uint8_t *)v.mv_data)[0] : 0,
			 fv_strerror(err));
		return err;
	}
	return 0;
}

int fv_index_get_flow(struct fv_index *ix, uint64_t id, struct fv_flow *f)
{
	MDB_txn *txn;
	int err = rd_begin(ix, &txn);

	if (err)
		return err;
	err = rd_flow(ix, txn, id, f);
	mdb_txn_abort(txn);
	return err;
}

/* Decodes one places chunk (runs restart from ref 0 in each chunk). */
static int places_chunk(struct fv_index *ix, uint64_t id, uint32_t part,
			const uint8_t *p, size_t n,
			int (*cb)(void *arg, fv_ref ref, uint32_t count,
				  uint32_t off),
			void *arg)
{
	uint64_t prev = 0, delta, count, off8;
	size_t off = 0, m;
	int r;

	while (off < n) {
		m = fv_varint_get(p + off, n - off, &delta);
		if (!m)
			goto corrupt;
		off += m;
		m = fv_varint_get(p + off, n - off, &count);
		if (!m || !count || count > UINT32_MAX ||
		    delta > UINT64_MAX - prev)
			goto corrupt;
		off += m;
		m = fv_varint_get(p + off, n - off, &off8);
		if (!m || off8 < FV_BLOCK_HDR_LEN / 8 || off8 > UINT32_MAX / 8)
			goto corrupt;
		off += m;
		prev += delta;
		r = cb(arg, prev, (uint32_t)count, (uint32_t)(off8 * 8));
		if (r)
			return r;
	}
	return 0;

corrupt:
	set_errf(ix, "flow %llu places part %u: bad run at byte %zu",
		 (unsigned long long)id, part, off);
	return FV_ECORRUPT;
}

int fv_index_places(struct fv_index *ix, uint64_t flow_id,
		    int (*cb)(void *arg, fv_ref ref, uint32_t count,
			      uint32_t off),
		    void *arg)
{
	uint8_t key[KEY_PLACES_LEN];
	MDB_val k = {.mv_size = sizeof(key), .mv_data = key}, v;
	MDB_cursor *c;
	MDB_txn *txn;
	int rc, err;

	err = rd_begin(ix, &txn);
	if (err)
		return err;
	rc = mdb_cursor_open(txn, ix->places, &c);
	if (rc) {
		err = ix_err(ix, "mdb_cursor_open(places)", rc);
		goto out_txn;
	}
	fv_put_be64(key, flow_id);
	fv_put_be32(key + 8, 0);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); !rc;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		const uint8_t *kp = k.mv_data;

		if (k.mv_size < 8 || fv_be64(kp) != flow_id)
			break;
		if (k.mv_size != KEY_PLACES_LEN) {
			set_errf(ix, "places key of %zu bytes", k.mv_size);
			err = FV_ECORRUPT;
			break;
		}
		err = places_chunk(ix, flow_id, fv_be32(kp + 8), v.mv_data,
				   v.mv_size, cb, arg);
		if (err)
			break;
	}
	if (!err && rc && rc != MDB_NOTFOUND)
		err = ix_err(ix, "mdb_cursor_get(places)", rc);
	mdb_cursor_close(c);
out_txn:
	mdb_txn_abort(txn);
	return err > 0 ? 0 : err;
}

struct query {
	struct fv_index *ix;
	MDB_txn *txn;
	uint64_t since, until;
	const struct fv_filter *filter;
	int (*cb)(void *arg, const struct fv_flow *f);
	void *arg;
};

/* Checks flow id against the query; returns cb's answer when it is a
 * result. from_key: id came from a secondary key, so it must exist. */
static int query_visit(struct query *q, uint64_t id, int from_key)
{
	struct fv_flow f;
	int err = rd_flow(q->ix, q->txn, id, &f);

	if (err == FV_ENOTFOUND) {
		if (!from_key)
			return 0;
		set_errf(q->ix, "secondary key points at missing flow %llu",
			 (unsigned long long)id);
		return FV_ECORRUPT;
	}
	if (err)
		return err;
	if (f.first_ns > q->until || f.last_ns < q->since)
		return 0;
	if (q->filter && !fv_filter_match(q->filter, &f))
		return 0;
	return q->cb(q->arg, &f);
}

/*
 * Scans a secondary db whose keys are prefix, first_ns BE64, id BE64, for
 * first_ns in [lo, q->until], in key order (= first_ns order).
 */
static int query_scan(struct query *q, MDB_dbi dbi, const char *name,
		      const uint8_t *prefix, size_t plen, uint64_t lo)
{
	uint8_t key[KEY_HOST_LEN];
	MDB_val k = {.mv_size = plen + 16, .mv_data = key}, v;
	MDB_cursor *c;
	int rc, err = 0;

	memcpy(key, prefix, plen);
	fv_put_be64(key + plen, lo);
	fv_put_be64(key + plen + 8, 0);
	rc = mdb_cursor_open(q->txn, dbi, &c);
	if (rc)
		return ix_err(q->ix, "mdb_cursor_open", rc);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); !rc;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		const uint8_t *kp = k.mv_data;

		if (k.mv_size != plen + 16) {
			set_errf(q->ix, "%s key of %zu bytes", name, k.mv_size);
			err = FV_ECORRUPT;
			break;
		}
		if (memcmp(kp, prefix, plen) || fv_be64(kp + plen) > q->until)
			break;
		err = query_visit(q, fv_be64(kp + plen + 8), 1);
		if (err)
			break;
	}
	if (!err && rc && rc != MDB_NOTFOUND)
		err = ix_err(q->ix, "mdb_cursor_get", rc);
	mdb_cursor_close(c);
	return err;
}

int fv_index_query(struct fv_index *ix, uint64_t since, uint64_t until,
		   const struct fv_filter *filter,
		   int (*cb)(void *arg, const struct fv_flow *f), void *arg)
{
	struct query q = {.ix = ix,
			  .since = since,
			  .until = until,
			  .filter = filter,
			  .cb = cb,
			  .arg = arg};
	struct fv_filter_plan plan = {.kind = FV_PLAN_NONE};
	uint8_t prefix[KEY_HOST_PFX];
	uint64_t maxdur = 0, lo;
	MDB_val d;
	int err;

	if (since > until)
		return 0;
	if (filter)
		fv_filter_plan(filter, &plan);
	err = rd_begin(ix, &q.txn);
	if (err)
		return err;

	/* Flows overlapping [since, until] began in [since - maxdur, until]. */
	err = rd_meta(ix, q.txn, META_MAX_DURATION, &d);
	if (!err && d.mv_size == 8)
		maxdur = le64(d.mv_data);
	else if (!err)
		err = FV_EFORMAT;
	else if (err == FV_ENOTFOUND)
		err = 0;
	if (err)
		goto out_txn;
	lo = since > maxdur ? since - maxdur : 0;

	switch (plan.kind) {
	case FV_PLAN_FLOW:
		err = query_visit(&q, plan.flow_id, 0);
		break;
	case FV_PLAN_HOST:
		if (plan.family != 4 && plan.family != 6)
			goto by_time;
		memset(prefix, 0, sizeof(prefix));
		prefix[0] = plan.family;
		memcpy(prefix + 1, plan.addr, plan.family == 4 ? 4 : 16);
		err = query_scan(&q, ix->byhost, "byhost", prefix, KEY_HOST_PFX,
				 lo);
		break;
	case FV_PLAN_PORT:
		if (!plan.port) /* port 0 is not indexed */
			goto by_time;
		fv_put_be16(prefix, plan.port);
		err = query_scan(&q, ix->byport, "byport", prefix, KEY_PORT_PFX,
				 lo);
		break;
	default:
	by_time:
		err = query_scan(&q, ix->bytime, "bytime", prefix, 0, lo);
		break;
	}
out_txn:
	mdb_txn_abort(q.txn);
	return err > 0 ? 0 : err;
}

/*
 * Blocks are keyed by ref, not time, so this is a full scan: about one
 * entry per MiB of packets (10 TB of store: ~10M entries, a fraction of a
 * second at LMDB's scan speed). Per worker, refs are in capture order; a
 * time-keyed db would bound it if stores grow far beyond that.
 */
int fv_index_blocks(struct fv_index *ix, uint64_t since, uint64_t until,
		    int (*cb)(void *arg, const struct fv_block_info *bi),
		    void *arg)
{
	struct fv_block_info bi;
	MDB_cursor *c;
	MDB_txn *txn;
	MDB_val k, v;
	int rc, err;

	if (since > until)
		return 0;
	err = rd_begin(ix, &txn);
	if (err)
		return err;
	rc = mdb_cursor_open(txn, ix->blocks, &c);
	if (rc) {
		err = ix_err(ix, "mdb_cursor_open(blocks)", rc);
		goto out_txn;
	}
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); !rc;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		const uint8_t *p = v.mv_data;

		if (k.mv_size != KEY_BLOCK_LEN || v.mv_size < VAL_BLOCK_LEN) {
			set_errf(ix, "blocks entry of %zu+%zu bytes", k.mv_size,
				 v.mv_size);
			err = FV_ECORRUPT;
			break;
		}
		bi.ref = fv_be64(k.mv_data);
		bi.seq = le64(p);
		bi.first_ns = le64(p + 8);
		bi.last_ns = le64(p + 16);
		bi.count = le32(p + 24);
		bi.disk_len = le32(p + 28);
		if (bi.first_ns > until || bi.last_ns < since)
			continue;
		err = cb(arg, &bi);
		if (err)
			break;
	}
	if (!err && rc && rc != MDB_NOTFOUND)
		err = ix_err(ix, "mdb_cursor_get(blocks)", rc);
	mdb_cursor_close(c);
out_txn:
	mdb_txn_abort(txn);
	return err > 0 ? 0 : err;
}

int fv_index_stats(struct fv_index *ix, struct fv_index_stats *st)
{
	MDB_stat ms;
	MDB_envinfo info;
	MDB_txn *txn;
	struct stat sb;
	int rc, err;

	memset(st, 0, sizeof(*st));
	err = rd_begin(ix, &txn);
	if (err)
		return err;
	rc = mdb_stat(txn, ix->flows, &ms);
	if (rc)
		goto out_mdb;
	st->flows = ms.ms_entries;
	rc = mdb_stat(txn, ix->places, &ms);
	if (rc)
		goto out_mdb;
	st->places = ms.ms_entries;
	rc = mdb_stat(txn, ix->blocks, &ms);
	if (rc)
		goto out_mdb;
	st->blocks = ms.ms_entries;
	rc = mdb_env_info(ix->env, &info);
	if (!rc)
		rc = mdb_env_stat(ix->env, &ms);
	if (rc)
		goto out_mdb;
	st->used_bytes = ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize;
	if (stat(ix->data_path, &sb))
		err = -errno;
	else
		st->file_bytes = (uint64_t)sb.st_size;
	mdb_txn_abort(txn);
	return err;

out_mdb:
	mdb_txn_abort(txn);
	return ix_err(ix, "mdb_stat", rc);
}
