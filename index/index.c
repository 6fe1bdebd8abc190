/*
 * index.c - the flow index on LMDB: one environment per store
 * (STORE/index/data.mdb + lock.mdb) holding six named databases. The
 * key and value layouts are in docs/format.md "Index (LMDB)"; keys are
 * big-endian so that LMDB's memcmp order is numeric order, values
 * little-endian.
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
#include <time.h>

#include "common/fv.h"
#include "index/filter.h"
#include "index/index.h"

#define FV_INDEX_FORMAT	       4	     /* meta "index_format" */
#define FV_INDEX_MAP_DEFAULT   (64ull << 30) /* address space, not disk */
#define FV_INDEX_MAX_READERS   256
#define FV_INDEX_CAP_MIN_PAGES 64 /* the smallest cap: 256 KiB of pages */
#define CAP_WAIT_S	       2  /* fv_index_set_cap waits for readers */
/* Flow expiry by size deletes down to max_live - max_live / EXPIRE_BAND. */
#define EXPIRE_BAND 8

#define META_FORMAT	   "index_format"
#define META_MAX_DURATION  "max_duration_ns"
#define META_FLOWS_LAST	   "flows_last_ns"
#define META_PKTS_FROM	   "packets_from_ns"  /* also "wNN.packets_from_ns" */
#define META_GEN_FROM	   "packets_from_gen" /* "wNN.packets_from_gen" */
#define META_FLOWS_FROM	   "flows_from_ns"    /* flow records complete from */
#define META_FLOWS_EXPIRED "flows_expired"    /* flow records deleted */

/* Key and value lengths (docs/format.md "Index (LMDB)"). */
#define KEY_FLOW_LEN   8  /* id */
#define KEY_PLACES_LEN 12 /* id, part */
#define KEY_SEC_MAX    17 /* bykey: host: family, addr[16]; port: 'p', BE16 */
#define KEY_TM_LEN     8  /* timemap: id >> TM_SHIFT */
#define VAL_TM_LEN     16 /* timemap: min first_ns, max first_ns */
#define DUP_LEN	       8  /* bykey dups: flow id BE64 */
#define KEY_BLOCK_LEN  8  /* ref */
#define VAL_BLOCK_LEN  32 /* seq, first_ns, last_ns, count, disk_len */
#define VAL_FLOW_MAX   (FV_FLOW_REC_MAX + FV_PLACES_CHUNK)
#define TM_SHIFT       10  /* ids per timemap bucket: 1024 */
#define KIND_PORT      'p' /* first byte of a bykey port key */

/* A bykey entry queued in the write txn, written sorted at commit. */
struct sec_ent {
	uint8_t klen;
	uint8_t dead; /* deleted again in the same txn */
	uint8_t key[KEY_SEC_MAX];
	uint8_t dup[DUP_LEN];
};

/* A timemap bucket touched in the write txn: the first_ns range of the
 * flows put in it. */
struct tm_ent {
	uint64_t bucket, lo, hi;
};

struct fv_index {
	MDB_env *env;
	MDB_dbi meta, flows, places, blocks, timemap, bykey;
	unsigned flags;
	/* A new environment gets its databases in its first write txn (so
	 * that no page of a creation txn is left free): until that commits,
	 * uncreated is set and reads see an empty index. open_lock guards
	 * mdb_dbi_open (one txn at a time may open dbs); creating is set
	 * while the first write txn holds the new handles. */
	int uncreated, creating;
	pthread_mutex_t open_lock;
	/* LMDB's map may be replaced (mdb_env_set_mapsize) only while no
	 * txn of this process is open: every txn holds map_lock shared,
	 * the replacement holds it exclusive (fv_index_set_cap, and a
	 * reader following a map grown by another process). */
	pthread_rwlock_t map_lock;
	char *dir;
	char *data_path; /* dir/data.mdb, for fv_index_stats() */

	/* The write txn and what it has learned (reset at begin). */
	MDB_txn *txn;
	int maxdur_known;
	uint64_t maxdur;
	int flow_last_known, flow_last_valid;
	uint64_t flow_last;
	int places_last_known, places_last_valid;
	uint8_t places_last[KEY_PLACES_LEN];
	int block_last_known, block_last_valid;
	uint64_t block_last;
	uint64_t flows_last; /* largest last_ns put in this txn */
	/* Places part 0 put last, held back to go into its flow's value. */
	int pend_valid;
	uint64_t pend_id;
	uint32_t pend_len;
	uint8_t pend[FV_PLACES_CHUNK];
	/* Secondary keys and timemap buckets of this txn (the arrays are
	 * kept across txns). */
	struct sec_ent *q;
	size_t qn, qcap;
	size_t qsorted; /* q[0..qsorted) is in sec_cmp order */
	struct tm_ent *tm;
	size_t tmn, tmcap;

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
 * The flow record, version FV_FLOW_REC_VERSION (docs/format.md "flows"):
 * fixed head, then LEB128 varints, then the fields that are seldom set,
 * each present only when its shape bit says so. The id is not in it (it
 * is the key). Varints are minimal: a decoder refuses an overlong one,
 * so one flow has exactly one encoding.
 */
enum {
	SHAPE_ADDR16 = 1 << 0,	 /* addresses are 16 bytes (else 4) */
	SHAPE_VLAN = 1 << 1,	 /* varint vlan follows */
	SHAPE_IFACE = 1 << 2,	 /* varint iface follows */
	SHAPE_RESERVED = 1 << 3, /* varint reserved follows */
	SHAPE_ICMP = 1 << 4,	 /* icmp_type, icmp_code follow */
	SHAPE_BACKWARD = 1 << 5, /* last_ns < first_ns: the delta is negated */
	SHAPE_PLACES = 1 << 6,	 /* the rest of the value is places part 0 */
	SHAPE_KNOWN = (1 << 7) - 1,
};

#define REC_HEAD_LEN 8 /* version, shape, family, proto, sport, dport */

static int addr_is_v4(const struct fv_flow *f)
{
	static const uint8_t zero[12];

	return f->key.family == 4 && !memcmp(f->key.saddr + 4, zero, 12) &&
	       !memcmp(f->key.daddr + 4, zero, 12);
}

/* Encodes f with shape bits extra (SHAPE_PLACES or 0); returns bytes. */
static size_t rec_encode(const struct fv_flow *f, unsigned extra,
			 uint8_t out[FV_FLOW_REC_MAX])
{
	size_t alen = addr_is_v4(f) ? 4 : 16, n = REC_HEAD_LEN;
	uint8_t shape = (uint8_t)extra;

	if (alen == 16)
		shape |= SHAPE_ADDR16;
	if (f->key.vlan)
		shape |= SHAPE_VLAN;
	if (f->iface)
		shape |= SHAPE_IFACE;
	if (f->reserved)
		shape |= SHAPE_RESERVED;
	if (f->icmp_type || f->icmp_code)
		shape |= SHAPE_ICMP;
	if (f->last_ns < f->first_ns)
		shape |= SHAPE_BACKWARD;
	out[0] = FV_FLOW_REC_VERSION;
	out[1] = shape;
	out[2] = f->key.family;
	out[3] = f->key.proto;
	put_le16(out + 4, f->key.sport);
	put_le16(out + 6, f->key.dport);
	memcpy(out + n, f->key.saddr, alen);
	memcpy(out + n + alen, f->key.daddr, alen);
	n += 2 * alen;
	put_le64(out + n, f->first_ns);
	n += 8;
	n += fv_varint_put(out + n, shape & SHAPE_BACKWARD
					    ? f->first_ns - f->last_ns
					    : f->last_ns - f->first_ns);
	n += fv_varint_put(out + n, f->pkts[0]);
	n += fv_varint_put(out + n, f->pkts[1]);
	n += fv_varint_put(out + n, f->bytes[0]);
	n += fv_varint_put(out + n, f->bytes[1]);
	out[n++] = f->tcp_flags[0];
	out[n++] = f->tcp_flags[1];
	out[n++] = f->end_reason;
	out[n++] = f->worker;
	n += fv_varint_put(out + n, f->flags);
	n += fv_varint_put(out + n, f->places_parts);
	if (shape & SHAPE_VLAN)
		n += fv_varint_put(out + n, f->key.vlan);
	if (shape & SHAPE_IFACE)
		n += fv_varint_put(out + n, f->iface);
	if (shape & SHAPE_RESERVED)
		n += fv_varint_put(out + n, f->reserved);
	if (shape & SHAPE_ICMP) {
		out[n++] = f->icmp_type;
		out[n++] = f->icmp_code;
	}
	return n;
}

size_t fv_flow_encode(const struct fv_flow *f, uint8_t out[FV_FLOW_REC_MAX])
{
	return rec_encode(f, 0, out);
}

/* A minimal LEB128 varint at *off, at most max: advances *off, or 0 if
 * it is cut short, overlong or too large. */
static int rd_varint(const uint8_t *p, size_t len, size_t *off, uint64_t max,
		     uint64_t *v)
{
	size_t m = fv_varint_get(p + *off, len - *off, v);

	if (!m || *v > max || (m > 1 && !p[*off + m - 1]))
		return 0;
	*off += m;
	return 1;
}

/*
 * Decodes a value of the flows db: the record into f (id left 0: it is
 * the key) and, when the value carries places part 0, its offset in
 * *places (else len). Refuses any byte it does not expect.
 */
static int rec_decode(const uint8_t *p, size_t len, struct fv_flow *f,
		      size_t *places)
{
	uint64_t v[5], flags, parts, x;
	size_t alen, n = REC_HEAD_LEN;
	uint8_t shape;

	if (len < 1)
		return FV_EFORMAT;
	if (p[0] != FV_FLOW_REC_VERSION)
		return FV_EVERSION;
	if (len < REC_HEAD_LEN || (p[1] & ~SHAPE_KNOWN))
		return FV_EFORMAT;
	memset(f, 0, sizeof(*f));
	shape = p[1];
	alen = shape & SHAPE_ADDR16 ? 16 : 4;
	if (alen == 4 && p[2] != 4)
		return FV_EFORMAT;
	f->key.family = p[2];
	f->key.proto = p[3];
	f->key.sport = le16(p + 4);
	f->key.dport = le16(p + 6);
	if (len - n < 2 * alen + 8)
		return FV_EFORMAT;
	memcpy(f->key.saddr, p + n, alen);
	memcpy(f->key.daddr, p + n + alen, alen);
	n += 2 * alen;
	if (alen == 16 && addr_is_v4(f))
		return FV_EFORMAT; /* the short form was due */
	f->first_ns = le64(p + n);
	n += 8;
	for (int i = 0; i < 5; i++)
		if (!rd_varint(p, len, &n, UINT64_MAX, &v[i]))
			return FV_EFORMAT;
	if (shape & SHAPE_BACKWARD) {
		if (!v[0] || v[0] > f->first_ns)
			return FV_EFORMAT;
		f->last_ns = f->first_ns - v[0];
	} else {
		if (v[0] > UINT64_MAX - f->first_ns)
			return FV_EFORMAT;
		f->last_ns = f->first_ns + v[0];
	}
	f->pkts[0] = v[1];
	f->pkts[1] = v[2];
	f->bytes[0] = v[3];
	f->bytes[1] = v[4];
	if (len - n < 4)
		return FV_EFORMAT;
	f->tcp_flags[0] = p[n];
	f->tcp_flags[1] = p[n + 1];
	f->end_reason = p[n + 2];
	f->worker = p[n + 3];
	n += 4;
	if (!rd_varint(p, len, &n, UINT16_MAX, &flags) ||
	    !rd_varint(p, len, &n, UINT32_MAX, &parts))
		return FV_EFORMAT;
	f->flags = (uint16_t)flags;
	f->places_parts = (uint32_t)parts;
	if (shape & SHAPE_VLAN) {
		if (!rd_varint(p, len, &n, UINT16_MAX, &x) || !x)
			return FV_EFORMAT;
		f->key.vlan = (uint16_t)x;
	}
	if (shape & SHAPE_IFACE) {
		if (!rd_varint(p, len, &n, UINT16_MAX, &x) || !x)
			return FV_EFORMAT;
		f->iface = (uint16_t)x;
	}
	if (shape & SHAPE_RESERVED) {
		if (!rd_varint(p, len, &n, UINT16_MAX, &x) || !x)
			return FV_EFORMAT;
		f->reserved = (uint16_t)x;
	}
	if (shape & SHAPE_ICMP) {
		if (len - n < 2 || !(p[n] | p[n + 1]))
			return FV_EFORMAT;
		f->icmp_type = p[n];
		f->icmp_code = p[n + 1];
		n += 2;
	}
	/* Places, when present, are 1..FV_PLACES_CHUNK bytes; else nothing
	 * may follow. */
	if ((shape & SHAPE_PLACES) ? n == len || len - n > FV_PLACES_CHUNK
				   : n != len)
		return FV_EFORMAT;
	*places = n;
	return 0;
}

int fv_flow_decode(const uint8_t *p, size_t len, struct fv_flow *f)
{
	size_t places;
	int err = rec_decode(p, len, f, &places);

	if (!err && places != len)
		return FV_EFORMAT; /* a db value, not a record alone */
	return err;
}

/* ---- open / close ---- */

/*
 * Opens the databases in txn, creating them (and writing the format) when
 * create is set. FV_ENOTFOUND: the environment has no databases yet and
 * nothing else (a new index, before its first commit). Called under
 * open_lock or before ix is shared.
 */
static int dbs_open(struct fv_index *ix, MDB_txn *txn, int create)
{
	static const char *const names[] = {"flows", "places", "blocks",
					    "timemap", "bykey"};
	MDB_dbi *dbis[] = {&ix->flows, &ix->places, &ix->blocks, &ix->timemap,
			   &ix->bykey};
	const unsigned dbflags[] = {0, 0, 0, 0, MDB_DUPSORT | MDB_DUPFIXED};
	uint8_t fmt[8];
	MDB_dbi main_dbi;
	MDB_stat ms;
	MDB_val k, v;
	int rc;

	rc = mdb_dbi_open(txn, "meta", create ? MDB_CREATE : 0, &ix->meta);
	if (rc == MDB_NOTFOUND) {
		/* An environment with nothing in it is a new index. */
		rc = mdb_dbi_open(txn, NULL, 0, &main_dbi);
		if (!rc)
			rc = mdb_stat(txn, main_dbi, &ms);
		if (!rc && !ms.ms_entries)
			return FV_ENOTFOUND;
		if (rc)
			return ix_err(ix, "mdb_stat", rc);
		set_errf(ix, "database 'meta' missing: not a flowvault index");
		return FV_EFORMAT;
	}
	if (rc)
		return ix_err(ix, "mdb_dbi_open", rc);

	/* The format first: the other dbs' flags depend on it. */
	k.mv_data = (void *)META_FORMAT;
	k.mv_size = strlen(META_FORMAT);
	rc = mdb_get(txn, ix->meta, &k, &v);
	if (rc == MDB_NOTFOUND && create) {
		put_le64(fmt, FV_INDEX_FORMAT);
		v.mv_data = fmt;
		v.mv_size = sizeof(fmt);
		rc = mdb_put(txn, ix->meta, &k, &v, 0);
		if (rc)
			return ix_err(ix, "mdb_put(meta)", rc);
	} else if (rc == MDB_NOTFOUND) {
		set_errf(ix, "meta '%s' missing: not a flowvault index",
			 META_FORMAT);
		return FV_EFORMAT;
	} else if (rc) {
		return ix_err(ix, "mdb_get(meta)", rc);
	} else if (v.mv_size != 8) {
		set_errf(ix, "meta '%s' is %zu bytes", META_FORMAT, v.mv_size);
		return FV_EFORMAT;
	} else if (le64(v.mv_data) != FV_INDEX_FORMAT) {
		set_errf(ix,
			 "index format %llu, this build reads format %d: the "
			 "store was written by another flowvault version; "
			 "import the captures again into a new store",
			 (unsigned long long)le64(v.mv_data), FV_INDEX_FORMAT);
		return FV_EVERSION;
	}

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		rc = mdb_dbi_open(txn, names[i],
				  dbflags[i] | (create ? MDB_CREATE : 0),
				  dbis[i]);
		if (rc == MDB_NOTFOUND || rc == MDB_INCOMPATIBLE) {
			set_errf(ix, "database '%s' %s: not a flowvault index",
				 names[i],
				 rc == MDB_NOTFOUND ? "missing"
						    : "of another kind");
			return FV_EFORMAT;
		}
		if (rc)
			return ix_err(ix, "mdb_dbi_open", rc);
	}
	return 0;
}

/*
 * Opens the databases of an existing index in a read txn (committed, so
 * the handles stay open). A new index with none yet is left uncreated.
 */
static int dbs_open_existing(struct fv_index *ix)
{
	MDB_txn *txn;
	int rc, err;

	rc = mdb_txn_begin(ix->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return ix_err(ix, "mdb_txn_begin", rc);
	err = dbs_open(ix, txn, 0);
	if (err) {
		mdb_txn_abort(txn);
		if (err != FV_ENOTFOUND)
			return err;
		__atomic_store_n(&ix->uncreated, 1, __ATOMIC_RELEASE);
		return 0;
	}
	rc = mdb_txn_commit(txn);
	if (rc)
		return ix_err(ix, "mdb_txn_commit", rc);
	__atomic_store_n(&ix->uncreated, 0, __ATOMIC_RELEASE);
	return 0;
}

/*
 * For readers of an uncreated index: looks again (the writer may have
 * committed since). Returns 1 while the index is still empty, 0 once its
 * databases are open. Never waits for the writer's first txn.
 */
static int still_uncreated(struct fv_index *ix)
{
	int err;

	if (!__atomic_load_n(&ix->uncreated, __ATOMIC_ACQUIRE))
		return 0;
	if (pthread_mutex_trylock(&ix->open_lock))
		return 1;
	err = ix->creating ? 0 : dbs_open_existing(ix);
	pthread_mutex_unlock(&ix->open_lock);
	if (err)
		return err;
	return __atomic_load_n(&ix->uncreated, __ATOMIC_ACQUIRE);
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
	err = pthread_mutex_init(&ix->open_lock, NULL);
	if (err) {
		pthread_mutex_destroy(&ix->err_lock);
		err = -err;
		goto out_free;
	}
	err = -pthread_rwlock_init(&ix->map_lock, NULL);
	if (err)
		goto out_mutex;
	ix->dir = strdup(dir);
	if (!ix->dir || asprintf(&ix->data_path, "%s/data.mdb", dir) < 0) {
		ix->data_path = NULL;
		err = -ENOMEM;
		goto out_path;
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
	err = dbs_open_existing(ix);
	if (err)
		goto out_env;
	*out = ix;
	return 0;

out_env:
	mdb_env_close(ix->env);
out_path:
	free(ix->data_path);
	free(ix->dir);
	pthread_rwlock_destroy(&ix->map_lock);
out_mutex:
	pthread_mutex_destroy(&ix->open_lock);
	pthread_mutex_destroy(&ix->err_lock);
out_free:
	free(ix);
	return err;
}

static int txn_end(struct fv_index *ix, int commit);

void fv_index_close(struct fv_index *ix)
{
	if (!ix)
		return;
	if (ix->txn)
		txn_end(ix, 0);
	mdb_env_close(ix->env);
	free(ix->data_path);
	free(ix->dir);
	free(ix->q);
	free(ix->tm);
	pthread_rwlock_destroy(&ix->map_lock);
	pthread_mutex_destroy(&ix->open_lock);
	pthread_mutex_destroy(&ix->err_lock);
	free(ix);
}

/* The bytes of the index directory that are not data.mdb: lock.mdb (its
 * size is set at open: the reader table) and the directory itself. */
static int files_beside(struct fv_index *ix, uint64_t *out)
{
	struct stat st;
	char *lock;
	int err = 0;

	if (asprintf(&lock, "%s/lock.mdb", ix->dir) < 0)
		return -ENOMEM;
	*out = 0;
	if (stat(lock, &st))
		err = -errno;
	else
		*out += (uint64_t)st.st_size;
	free(lock);
	if (!err && stat(ix->dir, &st))
		err = -errno;
	else if (!err)
		*out += (uint64_t)st.st_size;
	return err;
}

int fv_index_set_cap(struct fv_index *ix, uint64_t cap)
{
	uint64_t map = FV_INDEX_MAP_DEFAULT, beside;
	struct timespec ts;
	MDB_stat ms;
	int rc, err;

	if (ix->flags & FV_INDEX_RDONLY)
		return -EROFS;
	if (cap) {
		rc = mdb_env_stat(ix->env, &ms);
		if (rc)
			return ix_err(ix, "mdb_env_stat", rc);
		err = files_beside(ix, &beside);
		if (err)
			return err;
		/* Fewer pages than an empty index takes is no cap. */
		if (cap < beside + FV_INDEX_CAP_MIN_PAGES * ms.ms_psize)
			return -EINVAL;
		map = (cap - beside) / ms.ms_psize * ms.ms_psize;
	}
	/* Readers of this handle may come one after the other for long:
	 * a few seconds at most. */
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += CAP_WAIT_S;
	rc = pthread_rwlock_timedwrlock(&ix->map_lock, &ts);
	if (rc)
		return -rc;
	if (ix->txn) {
		pthread_rwlock_unlock(&ix->map_lock);
		return -EBUSY;
	}
	/* LMDB keeps the pages already used: a file past the cap (written
	 * without one) keeps its size and grows no more. */
	rc = mdb_env_set_mapsize(ix->env, map);
	pthread_rwlock_unlock(&ix->map_lock);
	return ix_err(ix, "mdb_env_set_mapsize", rc);
}

/* ---- writing ---- */

static void txn_reset(struct fv_index *ix)
{
	ix->txn = NULL;
	ix->maxdur_known = 0;
	ix->flow_last_known = 0;
	ix->places_last_known = 0;
	ix->block_last_known = 0;
	ix->flows_last = 0;
	ix->pend_valid = 0;
	ix->qn = 0;
	ix->qsorted = 0;
	ix->tmn = 0;
}

int fv_index_begin(struct fv_index *ix)
{
	int rc, err = 0;

	if (ix->flags & FV_INDEX_RDONLY)
		return -EROFS;
	if (ix->txn)
		return -EINVAL;
	txn_reset(ix);
	pthread_rwlock_rdlock(&ix->map_lock);
	rc = mdb_txn_begin(ix->env, NULL, 0, &ix->txn);
	if (rc) {
		ix->txn = NULL;
		pthread_rwlock_unlock(&ix->map_lock);
		return ix_err(ix, "mdb_txn_begin", rc);
	}
	/* A new index: its databases come into being in this txn. */
	if (__atomic_load_n(&ix->uncreated, __ATOMIC_ACQUIRE)) {
		pthread_mutex_lock(&ix->open_lock);
		err = dbs_open(ix, ix->txn, 1);
		ix->creating = !err;
		pthread_mutex_unlock(&ix->open_lock);
	}
	if (err) {
		mdb_txn_abort(ix->txn);
		txn_reset(ix);
		pthread_rwlock_unlock(&ix->map_lock);
	}
	return err;
}

/* Ends the write txn: committed (0) or given up; settles creation. */
static int txn_end(struct fv_index *ix, int commit)
{
	int rc = 0;

	if (commit)
		rc = mdb_txn_commit(
			ix->txn); /* frees the txn, also on failure */
	else
		mdb_txn_abort(ix->txn);
	txn_reset(ix);
	pthread_rwlock_unlock(&ix->map_lock);
	if (ix->creating) {
		pthread_mutex_lock(&ix->open_lock);
		ix->creating = 0;
		if (commit && !rc)
			__atomic_store_n(&ix->uncreated, 0, __ATOMIC_RELEASE);
		pthread_mutex_unlock(&ix->open_lock);
	}
	return ix_err(ix, "mdb_txn_commit", rc);
}

static int pend_flush(struct fv_index *ix);
static int sec_write(struct fv_index *ix);
static int tm_write(struct fv_index *ix);
static int note_flows_last(struct fv_index *ix);

int fv_index_commit(struct fv_index *ix)
{
	int err;

	if (!ix->txn)
		return -EINVAL;
	/* What was held back goes in first; a failure drops the batch. */
	err = pend_flush(ix);
	if (!err)
		err = sec_write(ix);
	if (!err)
		err = tm_write(ix);
	if (!err)
		err = note_flows_last(ix);
	if (err) {
		txn_end(ix, 0);
		return err;
	}
	return txn_end(ix, 1);
}

void fv_index_abort(struct fv_index *ix)
{
	if (ix->txn)
		txn_end(ix, 0);
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

/* Deletes key (with dup: that one dup only); absent is not an error. */
static int wdel(struct fv_index *ix, MDB_dbi dbi, const char *op,
		const void *key, size_t klen, const void *dup, size_t dlen)
{
	MDB_val k = {.mv_size = klen, .mv_data = (void *)key};
	MDB_val d = {.mv_size = dlen, .mv_data = (void *)dup};
	int rc = mdb_del(ix->txn, dbi, &k, dup ? &d : NULL);

	return rc == MDB_NOTFOUND ? 0 : ix_err(ix, op, rc);
}

/* The last key of dbi in the write txn (*valid = 0 if dbi is empty);
 * *klen in: the room in key, out: its length. */
static int last_key(struct fv_index *ix, MDB_dbi dbi, void *key, size_t *klen,
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
	if (k.mv_size > *klen || !k.mv_size) {
		set_errf(ix, "last key is %zu bytes, at most %zu expected",
			 k.mv_size, *klen);
		return FV_ECORRUPT;
	}
	memcpy(key, k.mv_data, k.mv_size);
	*klen = k.mv_size;
	*valid = 1;
	return 0;
}

/* LMDB's default key order: memcmp, then the shorter first. */
static int key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

/* ---- secondary keys ---- */

/* The bykey entries of a flow: they depend only on its key and id.
 * Returns how many (at most 4: 2 hosts, 2 ports). */
static int sec_keys_make(const struct fv_flow *f, struct sec_ent s[4])
{
	const uint8_t *addr[2] = {f->key.saddr, f->key.daddr};
	uint16_t port[2] = {f->key.sport, f->key.dport};
	size_t alen = addr_is_v4(f) ? 4 : 16;
	int n = 0;

	memset(s, 0, 4 * sizeof(*s));
	for (int i = 0; f->key.family && i < 2; i++) {
		if (i == 1 && !memcmp(addr[0], addr[1], 16))
			break;
		s[n].klen = (uint8_t)(1 + alen);
		s[n].key[0] = f->key.family;
		memcpy(s[n].key + 1, addr[i], alen);
		n++;
	}
	for (int i = 0; i < 2; i++) {
		if (!port[i] || (i == 1 && port[0] == port[1]))
			continue;
		s[n].klen = 3;
		s[n].key[0] = KIND_PORT;
		fv_put_be16(s[n].key + 1, port[i]);
		n++;
	}
	for (int i = 0; i < n; i++)
		fv_put_be64(s[i].dup, f->id);
	return n;
}

static int sec_cmp(const void *pa, const void *pb)
{
	const struct sec_ent *a = pa, *b = pb;
	int c = key_cmp(a->key, a->klen, b->key, b->klen);

	return c ? c : memcmp(a->dup, b->dup, DUP_LEN);
}

static int sec_in(const struct sec_ent *e, const struct sec_ent *set, int n)
{
	for (int i = 0; i < n; i++)
		if (!sec_cmp(e, &set[i]))
			return 1;
	return 0;
}

/* Queues the entries of s that are not in but (n, nbut). */
static int sec_queue(struct fv_index *ix, const struct sec_ent *s, int n,
		     const struct sec_ent *but, int nbut)
{
	for (int i = 0; i < n; i++) {
		if (sec_in(&s[i], but, nbut))
			continue;
		if (ix->qn == ix->qcap) {
			size_t ncap = ix->qcap ? ix->qcap * 2 : 4096;
			struct sec_ent *nq = realloc(ix->q, ncap * sizeof(*nq));

			if (!nq)
				return -ENOMEM;
			ix->q = nq;
			ix->qcap = ncap;
		}
		ix->q[ix->qn++] = s[i];
	}
	return 0;
}

/*
 * Marks dead the queued entries equal to e: a binary search of the
 * sorted part of the queue, a scan of what was queued after it.
 */
static void q_kill(struct fv_index *ix, const struct sec_ent *e)
{
	size_t lo = 0, hi = ix->qsorted;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (sec_cmp(&ix->q[mid], e) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t j = lo; j < ix->qsorted && !sec_cmp(&ix->q[j], e); j++)
		ix->q[j].dead = 1;
	for (size_t j = ix->qsorted; j < ix->qn; j++)
		if (!ix->q[j].dead && !sec_cmp(&ix->q[j], e))
			ix->q[j].dead = 1;
}

/*
 * Deletes the entries of s that are not in keep: from the db (committed
 * before) and from this txn's queue. Flow expiry (bulk) deletes
 * thousands of entries in a commit whose queue holds a batch's worth:
 * the queue is sorted first (once per commit; sec_write sorts it
 * anyway), so each deletion is a binary search, not a scan (that scan
 * made an import of 200k short flows into a small store take 6 minutes).
 * A record put again with other keys (bulk 0) deletes a few.
 */
static int sec_del(struct fv_index *ix, const struct sec_ent *s, int n,
		   const struct sec_ent *keep, int nkeep, int bulk)
{
	int err = 0;

	/* Only for expiry: a flow record put again between two entries
	 * queued would sort the queue for each put. */
	if (bulk && ix->qn - ix->qsorted > 64) {
		qsort(ix->q, ix->qn, sizeof(*ix->q), sec_cmp);
		ix->qsorted = ix->qn;
	}
	for (int i = 0; !err && i < n; i++) {
		if (sec_in(&s[i], keep, nkeep))
			continue;
		err = wdel(ix, ix->bykey, "mdb_del(bykey)", s[i].key, s[i].klen,
			   s[i].dup, DUP_LEN);
		q_kill(ix, &s[i]);
	}
	return err;
}

/*
 * Writes the queued bykey entries in key order. A key past the last of
 * the db is appended (MDB_APPEND); a dup past the last of its key too
 * (MDB_APPENDDUP, which LMDB refuses with MDB_KEYEXIST otherwise: then a
 * plain put, which also takes a dup that is there already). Appends fill
 * pages; inserts in the middle split them.
 */
static int sec_write(struct fv_index *ix)
{
	const struct sec_ent *prev = NULL; /* the last one written */
	uint8_t last[KEY_SEC_MAX];
	size_t llen = sizeof(last);
	int known = 0, valid = 0;
	int rc, err;

	if (ix->qn > 1) /* ix->q is NULL until a flow is put (UBSan) */
		qsort(ix->q, ix->qn, sizeof(*ix->q), sec_cmp);
	for (size_t i = 0; i < ix->qn; i++) {
		const struct sec_ent *s = &ix->q[i];
		MDB_val k = {.mv_size = s->klen, .mv_data = (void *)s->key};
		MDB_val d = {.mv_size = DUP_LEN, .mv_data = (void *)s->dup};

		if (s->dead || (prev && !sec_cmp(s, prev)))
			continue;
		prev = s;
		if (!known) {
			err = last_key(ix, ix->bykey, last, &llen, &valid);
			if (err)
				return err;
			known = 1;
		}
		if (!valid || key_cmp(s->key, s->klen, last, llen) > 0) {
			rc = mdb_put(ix->txn, ix->bykey, &k, &d, MDB_APPEND);
			if (!rc) {
				memcpy(last, s->key, s->klen);
				llen = s->klen;
				valid = 1;
			}
		} else {
			rc = mdb_put(ix->txn, ix->bykey, &k, &d, MDB_APPENDDUP);
			if (rc == MDB_KEYEXIST)
				rc = mdb_put(ix->txn, ix->bykey, &k, &d,
					     MDB_NODUPDATA);
			if (rc == MDB_KEYEXIST)
				rc = 0; /* the flow's entry is there */
		}
		if (rc)
			return ix_err(ix, "mdb_put(bykey)", rc);
	}
	ix->qn = 0;
	ix->qsorted = 0;
	return 0;
}

/* ---- timemap ---- */

/* Widens the txn's range of flow id's bucket to take first_ns. */
static int tm_note(struct fv_index *ix, uint64_t id, uint64_t first_ns)
{
	uint64_t b = id >> TM_SHIFT;
	struct tm_ent *t;

	/* Ids of one txn come in order, mostly: look from the end. */
	for (size_t i = ix->tmn; i-- > 0;) {
		t = &ix->tm[i];
		if (t->bucket != b)
			continue;
		if (first_ns < t->lo)
			t->lo = first_ns;
		if (first_ns > t->hi)
			t->hi = first_ns;
		return 0;
	}
	if (ix->tmn == ix->tmcap) {
		size_t ncap = ix->tmcap ? ix->tmcap * 2 : 16;
		struct tm_ent *nt = realloc(ix->tm, ncap * sizeof(*nt));

		if (!nt)
			return -ENOMEM;
		ix->tm = nt;
		ix->tmcap = ncap;
	}
	ix->tm[ix->tmn++] = (struct tm_ent){b, first_ns, first_ns};
	return 0;
}

static int tm_cmp(const void *pa, const void *pb)
{
	const struct tm_ent *a = pa, *b = pb;

	return a->bucket < b->bucket ? -1 : a->bucket > b->bucket;
}

/* Merges the txn's buckets into the timemap db (ranges only widen). */
static int tm_write(struct fv_index *ix)
{
	uint8_t key[KEY_TM_LEN], val[VAL_TM_LEN], last[KEY_TM_LEN];
	MDB_val k = {.mv_size = sizeof(key), .mv_data = key}, v;
	size_t llen = sizeof(last);
	int valid, rc, err;

	if (!ix->tmn)
		return 0;
	if (ix->tmn > 1)
		qsort(ix->tm, ix->tmn, sizeof(*ix->tm), tm_cmp);
	err = last_key(ix, ix->timemap, last, &llen, &valid);
	if (err)
		return err;
	if (valid && llen != KEY_TM_LEN) {
		set_errf(ix, "timemap key of %zu bytes", llen);
		return FV_ECORRUPT;
	}
	for (size_t i = 0; i < ix->tmn; i++) {
		struct tm_ent t = ix->tm[i];
		unsigned fl = 0;

		fv_put_be64(key, t.bucket);
		if (!valid || t.bucket > fv_be64(last)) {
			fl = MDB_APPEND;
		} else {
			rc = mdb_get(ix->txn, ix->timemap, &k, &v);
			if (rc && rc != MDB_NOTFOUND)
				return ix_err(ix, "mdb_get(timemap)", rc);
			if (!rc && v.mv_size != VAL_TM_LEN) {
				set_errf(ix, "timemap value of %zu bytes",
					 v.mv_size);
				return FV_ECORRUPT;
			}
			if (!rc) {
				uint64_t lo = le64(v.mv_data),
					 hi = le64((uint8_t *)v.mv_data + 8);

				if (lo <= t.lo && hi >= t.hi)
					continue;
				t.lo = lo < t.lo ? lo : t.lo;
				t.hi = hi > t.hi ? hi : t.hi;
			}
		}
		put_le64(val, t.lo);
		put_le64(val + 8, t.hi);
		err = wput(ix, ix->timemap, "mdb_put(timemap)", key,
			   sizeof(key), val, sizeof(val), fl);
		if (err)
			return err;
		if (fl) {
			memcpy(last, key, sizeof(key));
			valid = 1;
		}
	}
	ix->tmn = 0;
	return 0;
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

/* Keeps meta "flows_last_ns" >= every flow's last_ns (one put per txn). */
static int note_flows_last(struct fv_index *ix)
{
	uint64_t v;
	int err;

	if (!ix->flows_last)
		return 0;
	err = txn_get_u64(ix, META_FLOWS_LAST, &v);
	if (err || v >= ix->flows_last)
		return err;
	return fv_index_put_u64(ix, META_FLOWS_LAST, ix->flows_last);
}

/* ---- places ---- */

/* Puts a places chunk in the places db (appended when past the last). */
static int places_put_db(struct fv_index *ix, uint64_t id, uint32_t part,
			 const uint8_t *enc, uint32_t len)
{
	uint8_t key[KEY_PLACES_LEN];
	size_t llen = KEY_PLACES_LEN;
	unsigned fl = 0;
	int err;

	if (!ix->places_last_known) {
		err = last_key(ix, ix->places, ix->places_last, &llen,
			       &ix->places_last_valid);
		if (err)
			return err;
		if (ix->places_last_valid && llen != KEY_PLACES_LEN) {
			set_errf(ix, "places key of %zu bytes", llen);
			return FV_ECORRUPT;
		}
		ix->places_last_known = 1;
	}
	fv_put_be64(key, id);
	fv_put_be32(key + 8, part);
	if (!ix->places_last_valid ||
	    memcmp(key, ix->places_last, KEY_PLACES_LEN) > 0)
		fl = MDB_APPEND;
	err = wput(ix, ix->places, "mdb_put(places)", key, sizeof(key), enc,
		   len, fl);
	if (!err && fl) {
		memcpy(ix->places_last, key, KEY_PLACES_LEN);
		ix->places_last_valid = 1;
	}
	return err;
}

/*
 * Writes the held-back places part 0 that its record did not follow:
 * into the flow's value if that already carries part 0 (replacing it),
 * else into the places db. Part 0 is in exactly one of the two.
 */
static int pend_flush(struct fv_index *ix)
{
	uint8_t key[KEY_FLOW_LEN], val[VAL_FLOW_MAX];
	MDB_val k = {.mv_size = sizeof(key), .mv_data = key}, v;
	struct fv_flow old;
	size_t off, n;
	int rc;

	if (!ix->pend_valid)
		return 0;
	ix->pend_valid = 0;
	fv_put_be64(key, ix->pend_id);
	rc = mdb_get(ix->txn, ix->flows, &k, &v);
	if (rc && rc != MDB_NOTFOUND)
		return ix_err(ix, "mdb_get(flows)", rc);
	if (rc || rec_decode(v.mv_data, v.mv_size, &old, &off) ||
	    off == v.mv_size)
		return places_put_db(ix, ix->pend_id, 0, ix->pend,
				     ix->pend_len);
	old.id = ix->pend_id;
	n = rec_encode(&old, SHAPE_PLACES, val);
	memcpy(val + n, ix->pend, ix->pend_len);
	return wput(ix, ix->flows, "mdb_put(flows)", key, sizeof(key), val,
		    n + ix->pend_len, 0);
}

int fv_index_put_places(struct fv_index *ix, uint64_t flow_id, uint32_t part,
			const uint8_t *enc, uint32_t len)
{
	int err;

	if (!ix->txn || (!enc && len))
		return -EINVAL;
	err = pend_flush(ix);
	if (err)
		return err;
	/* Part 0 waits for its record (the flow table puts it next). */
	if (part == 0 && len && len <= FV_PLACES_CHUNK) {
		memcpy(ix->pend, enc, len);
		ix->pend_len = len;
		ix->pend_id = flow_id;
		ix->pend_valid = 1;
		return 0;
	}
	return places_put_db(ix, flow_id, part, enc, len);
}

/* ---- flows ---- */

int fv_index_put_flow(struct fv_index *ix, const struct fv_flow *f)
{
	uint8_t key[KEY_FLOW_LEN], val[VAL_FLOW_MAX];
	MDB_val k = {.mv_size = sizeof(key), .mv_data = key}, v;
	struct sec_ent nk[4], ok[4];
	const uint8_t *places = NULL;
	size_t plen = 0, off, n;
	struct fv_flow old;
	int nn, on = 0, rc, err, found = 0, from_pend = 0;
	unsigned fl = 0;

	if (!ix->txn || !f->id)
		return -EINVAL;
	if (ix->pend_valid && ix->pend_id != f->id) {
		err = pend_flush(ix);
		if (err)
			return err;
	}
	fv_put_be64(key, f->id);
	nn = sec_keys_make(f, nk);

	/*
	 * A checkpoint replaces the record. Its bykey entries are the same
	 * unless the caller changed the key: then the old ones go. An old
	 * record that does not decode is simply overwritten (its
	 * stale keys, if any, only cost a lookup: the query checks the
	 * record itself). Places part 0 kept in the old value stays.
	 */
	rc = mdb_get(ix->txn, ix->flows, &k, &v);
	if (rc && rc != MDB_NOTFOUND)
		return ix_err(ix, "mdb_get(flows)", rc);
	if (!rc && !rec_decode(v.mv_data, v.mv_size, &old, &off)) {
		found = 1;
		old.id = f->id;
		if (off < v.mv_size) {
			plen = v.mv_size - off;
			memcpy(val + FV_FLOW_REC_MAX,
			       (uint8_t *)v.mv_data + off, plen);
			places = val + FV_FLOW_REC_MAX;
		}
		on = sec_keys_make(&old, ok);
	} else if (!rc) {
		found = 1;
	}
	/* Entries both records have stay; the old one's others go. */
	err = sec_del(ix, ok, on, nk, nn, 0);
	if (!err)
		err = sec_queue(ix, nk, nn, ok, on);
	if (err)
		return err;

	if (ix->pend_valid) { /* part 0 of this flow, put just before */
		places = ix->pend;
		plen = ix->pend_len;
		ix->pend_valid = 0;
		from_pend = 1;
	}
	n = rec_encode(f, plen ? SHAPE_PLACES : 0, val);
	if (plen)
		memmove(val + n, places, plen);
	if (!ix->flow_last_known) {
		uint8_t last[KEY_FLOW_LEN];
		size_t llen = sizeof(last);

		err = last_key(ix, ix->flows, last, &llen,
			       &ix->flow_last_valid);
		if (err)
			return err;
		ix->flow_last = ix->flow_last_valid ? fv_be64(last) : 0;
		ix->flow_last_known = 1;
	}
	/* Ids mostly rise (the indexer sorts each batch by id). */
	if (!found && (!ix->flow_last_valid || f->id > ix->flow_last))
		fl = MDB_APPEND;
	err = wput(ix, ix->flows, "mdb_put(flows)", key, sizeof(key), val,
		   n + plen, fl);
	if (err)
		return err;
	if (fl) {
		ix->flow_last = f->id;
		ix->flow_last_valid = 1;
	}
	if (from_pend) {
		/* Part 0 now lives in the value: none may stay in places. */
		MDB_stat ms;
		uint8_t pk[KEY_PLACES_LEN];

		rc = mdb_stat(ix->txn, ix->places, &ms);
		if (rc)
			return ix_err(ix, "mdb_stat(places)", rc);
		if (ms.ms_entries) {
			fv_put_be64(pk, f->id);
			fv_put_be32(pk + 8, 0);
			err = wdel(ix, ix->places, "mdb_del(places)", pk,
				   sizeof(pk), NULL, 0);
			if (err)
				return err;
		}
	}
	if (f->last_ns > ix->flows_last)
		ix->flows_last = f->last_ns;
	err = tm_note(ix, f->id, f->first_ns);
	if (err)
		return err;
	return note_duration(ix, f);
}

int fv_index_put_block(struct fv_index *ix, const struct fv_block_info *bi)
{
	uint8_t key[KEY_BLOCK_LEN], val[VAL_BLOCK_LEN], last[KEY_BLOCK_LEN];
	unsigned fl = 0;
	int err;

	if (!ix->txn)
		return -EINVAL;
	if (!ix->block_last_known) {
		size_t llen = sizeof(last);

		err = last_key(ix, ix->blocks, last, &llen,
			       &ix->block_last_valid);
		if (err)
			return err;
		if (ix->block_last_valid && llen != KEY_BLOCK_LEN) {
			set_errf(ix, "blocks key of %zu bytes", llen);
			return FV_ECORRUPT;
		}
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

int fv_index_del_block(struct fv_index *ix, fv_ref ref)
{
	uint8_t key[KEY_BLOCK_LEN];

	if (!ix->txn)
		return -EINVAL;
	fv_put_be64(key, ref);
	ix->block_last_known = 0; /* it may have been the last key */
	return wdel(ix, ix->blocks, "mdb_del(blocks)", key, sizeof(key), NULL,
		    0);
}

/* ---- flow retention ---- */

static int tm_load(struct fv_index *ix, MDB_txn *txn, uint64_t lo, uint64_t hi,
		   struct tm_ent **out, size_t *n);

/* The pages of the six databases' main trees in txn (LMDB counts a
 * key's tree of duplicates apart: not in these). */
static int tree_pages(struct fv_index *ix, MDB_txn *txn, uint64_t *pages)
{
	const MDB_dbi dbis[] = {ix->meta,   ix->flows,	 ix->places,
				ix->blocks, ix->timemap, ix->bykey};
	MDB_stat ms;
	int rc;

	*pages = 0;
	for (size_t i = 0; i < sizeof(dbis) / sizeof(dbis[0]); i++) {
		rc = mdb_stat(txn, dbis[i], &ms);
		if (rc)
			return ix_err(ix, "mdb_stat", rc);
		*pages += ms.ms_branch_pages + ms.ms_leaf_pages +
			  ms.ms_overflow_pages;
	}
	return 0;
}

static int free_pages(struct fv_index *ix, MDB_txn *txn, uint64_t *all,
		      uint64_t *last);

/*
 * Bytes of the pages the index holds data in, as the write txn leaves
 * them: the pages of the last commit that are not on LMDB's free list
 * (exact: duplicate trees, the free list's own pages counted), plus what
 * this txn changed in the databases' main trees (its own puts and
 * deletions; a change of a duplicate tree shows at the next commit).
 */
static int live_bytes(struct fv_index *ix, uint64_t *out)
{
	uint64_t nfree, nlast, before, now;
	MDB_envinfo info;
	MDB_txn *txn;
	MDB_stat ms;
	int rc, err;

	rc = mdb_env_info(ix->env, &info);
	if (!rc)
		rc = mdb_env_stat(ix->env, &ms);
	if (rc)
		return ix_err(ix, "mdb_env_info", rc);
	/* The last commit: what the write txn began from (one writer). */
	rc = mdb_txn_begin(ix->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return ix_err(ix, "mdb_txn_begin(rdonly)", rc);
	rc = free_pages(ix, txn, &nfree, &nlast);
	before = 0; /* a new index: its databases come with this txn */
	err = rc	     ? ix_err(ix, "mdb_cursor_get(free list)", rc)
	      : ix->creating ? 0
			     : tree_pages(ix, txn, &before);
	mdb_txn_abort(txn);
	if (!err)
		err = tree_pages(ix, ix->txn, &now);
	if (err)
		return err;
	now += info.me_last_pgno + 1 - nfree;
	*out = (now > before ? now - before : 0) * ms.ms_psize;
	return 0;
}

/* Deletes flow id (record f) with its bykey entries and places. */
static int flow_delete(struct fv_index *ix, uint64_t id,
		       const struct fv_flow *f)
{
	uint8_t key[KEY_PLACES_LEN];
	struct sec_ent s[4];
	int n = sec_keys_make(f, s), rc, err = 0;
	MDB_cursor *c;
	MDB_val k, v;

	/* From the db and from this txn's queue (the flow may have been
	 * put in this txn). */
	err = sec_del(ix, s, n, NULL, 0, 1);
	if (err)
		return err;
	rc = mdb_cursor_open(ix->txn, ix->places, &c);
	if (rc)
		return ix_err(ix, "mdb_cursor_open(places)", rc);
	fv_put_be64(key, id);
	fv_put_be32(key + 8, 0);
	k.mv_size = sizeof(key);
	k.mv_data = key;
	for (;;) {
		rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
		if (rc || k.mv_size < 8 || fv_be64(k.mv_data) != id)
			break;
		rc = mdb_cursor_del(c, 0);
		if (rc)
			break;
		k.mv_size = sizeof(key);
		k.mv_data = key;
	}
	mdb_cursor_close(c);
	if (rc && rc != MDB_NOTFOUND)
		return ix_err(ix, "mdb_del(places)", rc);
	fv_put_be64(key, id);
	return wdel(ix, ix->flows, "mdb_del(flows)", key, KEY_FLOW_LEN, NULL,
		    0);
}

/*
 * Deletes the flows of bucket b that pass (all of them when all is set,
 * else those that ended before before_ns); *left: how many stay.
 */
static int bucket_expire(struct fv_index *ix, uint64_t b, uint64_t before_ns,
			 int all, struct fv_index_expiry *e, uint64_t *left,
			 uint64_t *seen)
{
	uint8_t from[KEY_FLOW_LEN];
	uint64_t *ids, newest = 0;
	struct fv_flow *fl;
	MDB_val k = {.mv_size = sizeof(from), .mv_data = from}, v;
	size_t n = 0, off;
	MDB_cursor *c;
	int rc, err = 0;

	*left = 0;
	ids = malloc(sizeof(*ids) << TM_SHIFT);
	fl = malloc(sizeof(*fl) << TM_SHIFT);
	rc = ids && fl ? mdb_cursor_open(ix->txn, ix->flows, &c) : ENOMEM;
	if (rc) {
		free(ids);
		free(fl);
		return ix_err(ix, "mdb_cursor_open(flows)", rc);
	}
	fv_put_be64(from, b << TM_SHIFT);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); !rc;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		uint64_t id = fv_be64(k.mv_data);

		if (k.mv_size != KEY_FLOW_LEN || id >> TM_SHIFT != b)
			break;
		(*seen)++;
		/* A record that does not decode goes too: nothing reads it. */
		if (rec_decode(v.mv_data, v.mv_size, &fl[n], &off))
			memset(&fl[n], 0, sizeof(fl[n]));
		fl[n].id = id; /* the key: its bykey dups */
		if (!all && fl[n].last_ns >= before_ns) {
			(*left)++;
			continue;
		}
		ids[n++] = id;
	}
	mdb_cursor_close(c);
	if (rc && rc != MDB_NOTFOUND)
		err = ix_err(ix, "mdb_cursor_get(flows)", rc);
	for (size_t i = 0; i < n && !err; i++) {
		err = flow_delete(ix, ids[i], &fl[i]);
		if (fl[i].last_ns > newest)
			newest = fl[i].last_ns;
	}
	free(ids);
	free(fl);
	e->flows += n;
	if (!err && n && newest + 1 > e->from_ns)
		e->from_ns = newest + 1;
	return err;
}

int fv_index_expire_flows(struct fv_index *ix, uint64_t before_ns,
			  uint64_t max_live, unsigned max_buckets,
			  struct fv_index_expiry *e)
{
	uint64_t live = 0, old, seen = 0, want = 0,
		 budget = (uint64_t)max_buckets << TM_SHIFT;
	struct tm_ent *tm = NULL;
	MDB_txn *txn = ix->txn;
	MDB_stat ms;
	size_t n = 0;
	int err, rc;

	memset(e, 0, sizeof(*e));
	if (!ix->txn)
		return -EINVAL;
	/* What this txn put goes in first: a held-back places part 0, the
	 * host/port keys and the timemap buckets (the walk below reads them
	 * from the db, and the live pages count them). */
	err = pend_flush(ix);
	if (!err)
		err = sec_write(ix);
	if (!err)
		err = tm_write(ix);
	if (err)
		return err;
	/*
	 * By size: past the bound, records go (oldest first) until the live
	 * pages would be an eighth below it, counted from the average a
	 * record takes now. A narrow band: each commit then deletes about
	 * what it adds, which keeps the pages it frees (reused only two
	 * transactions later) few.
	 */
	if (max_live) {
		err = live_bytes(ix, &live);
		if (err)
			return err;
		e->live_bytes = live;
		rc = mdb_stat(txn, ix->flows, &ms);
		if (rc)
			return ix_err(ix, "mdb_stat(flows)", rc);
		if (live > max_live && ms.ms_entries)
			want = (live - (max_live - max_live / EXPIRE_BAND)) /
				       (live / ms.ms_entries + 1) +
			       1;
	}
	if (!want && !before_ns)
		return 0;
	/* The work is bounded by the records read: max_buckets buckets'
	 * worth. A bucket with a long flow left in it is read again at the
	 * next call (only what is left of it), and the next ones too. */
	err = tm_load(ix, txn, 0, UINT64_MAX, &tm, &n);
	for (size_t i = 0; !err && i < n && seen < budget; i++) {
		int all = e->flows < want;
		uint64_t left;

		/* By time, a bucket whose flows all began after the
		 * cut-off holds none to delete, nor does any later one. */
		if (!all && tm[i].lo >= before_ns)
			break;
		err = bucket_expire(ix, tm[i].bucket, before_ns, all, e, &left,
				    &seen);
		if (!err && !left) {
			uint8_t key[KEY_TM_LEN];

			fv_put_be64(key, tm[i].bucket);
			err = wdel(ix, ix->timemap, "mdb_del(timemap)", key,
				   sizeof(key), NULL, 0);
			e->buckets++;
		}
	}
	free(tm);
	ix->flow_last_known = ix->places_last_known = 0;
	if (!err && e->flows)
		err = fv_index_add_u64(ix, META_FLOWS_EXPIRED, e->flows);
	if (!err && e->from_ns) {
		err = txn_get_u64(ix, META_FLOWS_FROM, &old);
		if (!err && e->from_ns > old)
			err = fv_index_put_u64(ix, META_FLOWS_FROM, e->from_ns);
	}
	return err;
}

static void block_val_decode(fv_ref ref, const uint8_t *p,
			     struct fv_block_info *bi)
{
	memset(bi, 0, sizeof(*bi)); /* raw_len is not kept */
	bi->ref = ref;
	bi->seq = le64(p);
	bi->first_ns = le64(p + 8);
	bi->last_ns = le64(p + 16);
	bi->count = le32(p + 24);
	bi->disk_len = le32(p + 28);
}

int fv_index_drop_blocks(struct fv_index *ix, unsigned worker, uint32_t gen,
			 struct fv_index_drop *d)
{
	uint8_t from[KEY_BLOCK_LEN];
	MDB_cursor *c;
	MDB_val k, v;
	int rc, err = 0;

	memset(d, 0, sizeof(*d));
	if (!ix->txn || worker > 255)
		return -EINVAL;
	rc = mdb_cursor_open(ix->txn, ix->blocks, &c);
	if (rc)
		return ix_err(ix, "mdb_cursor_open(blocks)", rc);
	fv_put_be64(from, fv_ref_make(worker, 0, 0));
	/* Each delete repositions at the worker's first key: the dropped
	 * blocks are the first ones of the worker, in ref order. */
	for (;;) {
		struct fv_block_info bi;
		fv_ref ref;

		k.mv_size = sizeof(from);
		k.mv_data = from;
		rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
		if (rc == MDB_NOTFOUND)
			break;
		if (rc) {
			err = ix_err(ix, "mdb_cursor_get(blocks)", rc);
			break;
		}
		if (k.mv_size != KEY_BLOCK_LEN || v.mv_size < VAL_BLOCK_LEN) {
			set_errf(ix, "blocks entry of %zu+%zu bytes", k.mv_size,
				 v.mv_size);
			err = FV_ECORRUPT;
			break;
		}
		ref = fv_be64(k.mv_data);
		if (fv_ref_worker(ref) != worker)
			break;
		block_val_decode(ref, v.mv_data, &bi);
		if (fv_ref_gen(ref) > gen) {
			d->next = bi;
			d->have_next = 1;
			break;
		}
		if (bi.last_ns > d->last_ns)
			d->last_ns = bi.last_ns;
		d->blocks++;
		d->packets += bi.count;
		rc = mdb_cursor_del(c, 0);
		if (rc) {
			err = ix_err(ix, "mdb_cursor_del(blocks)", rc);
			break;
		}
	}
	mdb_cursor_close(c);
	/* The cached last key may be gone: look it up again if needed. */
	ix->block_last_known = 0;
	return err;
}

int fv_index_set_packets_from(struct fv_index *ix, unsigned worker,
			      uint64_t from_ns, uint32_t from_gen)
{
	char name[32];
	uint64_t v;
	int err;

	if (!ix->txn || worker > 255)
		return -EINVAL;
	snprintf(name, sizeof(name), "w%02u." META_PKTS_FROM, worker);
	err = txn_get_u64(ix, name, &v);
	if (!err && from_ns > v)
		err = fv_index_put_u64(ix, name, from_ns);
	snprintf(name, sizeof(name), "w%02u." META_GEN_FROM, worker);
	if (!err)
		err = txn_get_u64(ix, name, &v);
	if (!err && from_gen > v)
		err = fv_index_put_u64(ix, name, from_gen);
	/* Store-wide: the max over workers, and each worker's value only
	 * rises, so the max of every value ever set. */
	if (!err)
		err = txn_get_u64(ix, META_PKTS_FROM, &v);
	if (!err && from_ns > v)
		err = fv_index_put_u64(ix, META_PKTS_FROM, from_ns);
	return err;
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

/*
 * Another process (a writer given a larger cap) grew the map past this
 * one's: takes the size it recorded (mdb_env_set_mapsize(0)), once no
 * txn of this process is open. Waits at most a second for them (a
 * thread reading inside a callback of its own read may hold one).
 */
static int map_follow(struct fv_index *ix)
{
	struct timespec ts;
	int rc;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 1;
	rc = pthread_rwlock_timedwrlock(&ix->map_lock, &ts);
	if (rc)
		return ix_err(ix, "mdb_txn_begin(rdonly)", MDB_MAP_RESIZED);
	rc = mdb_env_set_mapsize(ix->env, 0);
	pthread_rwlock_unlock(&ix->map_lock);
	return ix_err(ix, "mdb_env_set_mapsize", rc);
}

/* Begins a read txn (end it with rd_end). FV_ENOTFOUND: the index has
 * no databases yet (a new store before its first commit): the answer is
 * "nothing". */
static int rd_begin(struct fv_index *ix, MDB_txn **txn)
{
	int rc, tries = 0;

	*txn = NULL;
again:
	pthread_rwlock_rdlock(&ix->map_lock);
	rc = still_uncreated(ix);
	if (rc) {
		pthread_rwlock_unlock(&ix->map_lock);
		return rc > 0 ? FV_ENOTFOUND : rc;
	}
	rc = mdb_txn_begin(ix->env, NULL, MDB_RDONLY, txn);
	if (rc) {
		*txn = NULL;
		pthread_rwlock_unlock(&ix->map_lock);
		if (rc == MDB_MAP_RESIZED && !tries++) {
			rc = map_follow(ix);
			if (!rc)
				goto again;
			return rc;
		}
		return ix_err(ix, "mdb_txn_begin(rdonly)", rc);
	}
	return 0;
}

static void rd_end(struct fv_index *ix, MDB_txn *txn)
{
	mdb_txn_abort(txn);
	pthread_rwlock_unlock(&ix->map_lock);
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
	rd_end(ix, txn);
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

/* A u64 of meta in a read txn: 0 if absent. */
static int rd_u64(struct fv_index *ix, MDB_txn *txn, const char *name,
		  uint64_t *v)
{
	MDB_val d;
	int err = rd_meta(ix, txn, name, &d);

	*v = 0;
	if (err == FV_ENOTFOUND)
		return 0;
	if (err)
		return err;
	if (d.mv_size != 8) {
		set_errf(ix, "meta '%s' is %zu bytes, not a u64", name,
			 d.mv_size);
		return FV_EFORMAT;
	}
	*v = le64(d.mv_data);
	return 0;
}

int fv_index_retention(struct fv_index *ix, struct fv_retention *rt)
{
	MDB_txn *txn;
	char name[32];
	int err;

	memset(rt, 0, sizeof(*rt));
	err = rd_begin(ix, &txn);
	if (err)
		return err == FV_ENOTFOUND ? 0 : err; /* nothing yet */
	err = rd_u64(ix, txn, META_PKTS_FROM, &rt->packets_from_ns);
	for (unsigned w = 0; w < FV_INDEX_WORKERS && !err; w++) {
		uint64_t g = 0;

		snprintf(name, sizeof(name), "w%02u." META_PKTS_FROM, w);
		err = rd_u64(ix, txn, name, &rt->from_ns[w]);
		snprintf(name, sizeof(name), "w%02u." META_GEN_FROM, w);
		if (!err)
			err = rd_u64(ix, txn, name, &g);
		if (!err && g > UINT32_MAX)
			err = FV_EFORMAT;
		rt->from_gen[w] = (uint32_t)g;
	}
	rd_end(ix, txn);
	return err;
}

enum fv_avail fv_retention_flow(const struct fv_retention *rt,
				const struct fv_flow *f)
{
	uint64_t from = rt->from_ns[f->worker];

	if (!from || f->first_ns >= from)
		return FV_AVAIL_YES;
	if (f->last_ns < from)
		return FV_AVAIL_EXPIRED;
	return FV_AVAIL_PARTIAL;
}

const char *fv_avail_name(enum fv_avail a)
{
	switch (a) {
	case FV_AVAIL_PARTIAL:
		return "partial";
	case FV_AVAIL_EXPIRED:
		return "expired";
	case FV_AVAIL_YES:
		break;
	}
	return "yes";
}

/*
 * Loads the timemap buckets whose first_ns range meets [lo, hi], in
 * bucket (= id) order, into *out (malloc'ed; NULL when none).
 */
static int tm_load(struct fv_index *ix, MDB_txn *txn, uint64_t lo, uint64_t hi,
		   struct tm_ent **out, size_t *n)
{
	struct tm_ent *v = NULL;
	size_t cap = 0;
	MDB_cursor *c;
	MDB_val k, d;
	int rc, err = 0;

	*out = NULL;
	*n = 0;
	rc = mdb_cursor_open(txn, ix->timemap, &c);
	if (rc)
		return ix_err(ix, "mdb_cursor_open(timemap)", rc);
	for (rc = mdb_cursor_get(c, &k, &d, MDB_FIRST); !rc;
	     rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		struct tm_ent t;

		if (k.mv_size != KEY_TM_LEN || d.mv_size != VAL_TM_LEN) {
			set_errf(ix, "timemap entry of %zu+%zu bytes",
				 k.mv_size, d.mv_size);
			err = FV_ECORRUPT;
			break;
		}
		t.bucket = fv_be64(k.mv_data);
		t.lo = le64(d.mv_data);
		t.hi = le64((uint8_t *)d.mv_data + 8);
		if (t.lo > hi || t.hi < lo)
			continue;
		if (*n == cap) {
			size_t ncap = cap ? 2 * cap : 64;
			struct tm_ent *nv = realloc(v, ncap * sizeof(*nv));

			if (!nv) {
				err = -ENOMEM;
				break;
			}
			v = nv;
			cap = ncap;
		}
		v[(*n)++] = t;
	}
	if (!err && rc != MDB_NOTFOUND)
		err = ix_err(ix, "mdb_cursor_get(timemap)", rc);
	mdb_cursor_close(c);
	if (err) {
		free(v);
		*n = 0;
		return err;
	}
	*out = v;
	return 0;
}

int fv_index_flow_range(struct fv_index *ix, uint64_t *first_ns,
			uint64_t *last_ns)
{
	struct tm_ent *tm;
	MDB_txn *txn;
	size_t n;
	int err;

	*first_ns = *last_ns = 0;
	err = rd_begin(ix, &txn);
	if (err)
		return err;
	err = tm_load(ix, txn, 0, UINT64_MAX, &tm, &n);
	if (!err && !n)
		err = FV_ENOTFOUND; /* no flow */
	if (!err) {
		*first_ns = UINT64_MAX;
		for (size_t i = 0; i < n; i++)
			if (tm[i].lo < *first_ns)
				*first_ns = tm[i].lo;
		err = rd_u64(ix, txn, META_FLOWS_LAST, last_ns);
	}
	free(tm);
	if (!err && *last_ns < *first_ns)
		*last_ns = *first_ns;
	rd_end(ix, txn);
	return err;
}

/* Reads and decodes flow id in txn; *places, *plen: places part 0 kept in
 * the value (plen 0 if none), valid for the txn. */
static int rd_flow_places(struct fv_index *ix, MDB_txn *txn, uint64_t id,
			  struct fv_flow *f, const uint8_t **places,
			  size_t *plen)
{
	uint8_t key[KEY_FLOW_LEN];
	MDB_val k = {.mv_size = sizeof(key), .mv_data = key}, v;
	size_t off;
	int err;

	fv_put_be64(key, id);
	err = ix_err(ix, "mdb_get(flows)", mdb_get(txn, ix->flows, &k, &v));
	if (err)
		return err;
	err = rec_decode(v.mv_data, v.mv_size, f, &off);
	if (err) {
		set_errf(ix, "flow %llu: record of %zu bytes, version %u: %s",
			 (unsigned long long)id, v.mv_size,
			 v.mv_size ? ((uint8_t *)v.mv_data)[0] : 0,
			 fv_strerror(err));
		return err;
	}
	f->id = id;
	*places = (const uint8_t *)v.mv_data + off;
	*plen = v.mv_size - off;
	return 0;
}

static int rd_flow(struct fv_index *ix, MDB_txn *txn, uint64_t id,
		   struct fv_flow *f)
{
	const uint8_t *places;
	size_t plen;

	return rd_flow_places(ix, txn, id, f, &places, &plen);
}

int fv_index_get_flow(struct fv_index *ix, uint64_t id, struct fv_flow *f)
{
	MDB_txn *txn;
	int err = rd_begin(ix, &txn);

	if (err)
		return err;
	err = rd_flow(ix, txn, id, f);
	rd_end(ix, txn);
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
	const uint8_t *p0 = NULL;
	size_t p0len = 0;
	struct fv_flow f;
	MDB_cursor *c;
	MDB_txn *txn;
	int rc, err;

	err = rd_begin(ix, &txn);
	if (err)
		return err == FV_ENOTFOUND ? 0 : err; /* nothing yet */
	/* Part 0 is in the flow's value or in the places db, not both. */
	err = rd_flow_places(ix, txn, flow_id, &f, &p0, &p0len);
	if (err == FV_ENOTFOUND)
		err = 0;
	if (!err && p0len)
		err = places_chunk(ix, flow_id, 0, p0, p0len, cb, arg);
	if (err)
		goto out_txn;
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
		if (p0len && !fv_be32(kp + 8)) {
			set_errf(ix, "flow %llu: places part 0 twice",
				 (unsigned long long)flow_id);
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
	rd_end(ix, txn);
	return err > 0 ? 0 : err;
}

struct query {
	struct fv_index *ix;
	MDB_txn *txn;
	uint64_t since, until;
	const struct fv_filter *filter;
	int (*cb)(void *arg, const struct fv_flow *f);
	void *arg;
	/* Results found and not given yet: a min-heap by (first_ns, id). */
	struct fv_flow *h;
	size_t hn, hcap;
};

static int q_less(const struct fv_flow *a, const struct fv_flow *b)
{
	if (a->first_ns != b->first_ns)
		return a->first_ns < b->first_ns;
	return a->id < b->id;
}

static void q_swap(struct fv_flow *a, struct fv_flow *b)
{
	struct fv_flow t = *a;

	*a = *b;
	*b = t;
}

/* Holds f if it overlaps the query's time range and matches its filter. */
static int q_take(struct query *q, const struct fv_flow *f)
{
	size_t i;

	if (f->first_ns > q->until || f->last_ns < q->since)
		return 0;
	if (q->filter && !fv_filter_match(q->filter, f))
		return 0;
	if (q->hn == q->hcap) {
		size_t ncap = q->hcap ? 2 * q->hcap : 256;
		struct fv_flow *nh = realloc(q->h, ncap * sizeof(*nh));

		if (!nh)
			return -ENOMEM;
		q->h = nh;
		q->hcap = ncap;
	}
	i = q->hn++;
	q->h[i] = *f;
	while (i && q_less(&q->h[i], &q->h[(i - 1) / 2])) {
		q_swap(&q->h[i], &q->h[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	return 0;
}

/* Gives the held results that begin before wm (all of them if all is
 * set), in (first_ns, id) order; returns the callback's nonzero answer. */
static int q_emit(struct query *q, uint64_t wm, int all)
{
	while (q->hn && (all || q->h[0].first_ns < wm)) {
		struct fv_flow f = q->h[0];
		size_t i = 0;
		int r;

		q->h[0] = q->h[--q->hn];
		for (;;) {
			size_t l = 2 * i + 1, m = i;

			if (l < q->hn && q_less(&q->h[l], &q->h[m]))
				m = l;
			if (l + 1 < q->hn && q_less(&q->h[l + 1], &q->h[m]))
				m = l + 1;
			if (m == i)
				break;
			q_swap(&q->h[i], &q->h[m]);
			i = m;
		}
		r = q->cb(q->arg, &f);
		if (r)
			return r;
	}
	return 0;
}

/* Every flow of ids [lo, hi), read from the flows db in id order. */
static int q_flows(struct query *q, MDB_cursor *c, uint64_t lo, uint64_t hi)
{
	uint8_t from[KEY_FLOW_LEN];
	MDB_val k = {.mv_size = sizeof(from), .mv_data = from}, v;
	struct fv_flow f;
	size_t off;
	int rc, err = 0;

	fv_put_be64(from, lo);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); !rc;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		uint64_t id;

		if (k.mv_size != KEY_FLOW_LEN) {
			set_errf(q->ix, "flows key of %zu bytes", k.mv_size);
			return FV_ECORRUPT;
		}
		id = fv_be64(k.mv_data);
		if (id >= hi)
			break;
		err = rec_decode(v.mv_data, v.mv_size, &f, &off);
		if (err) {
			set_errf(q->ix, "flow %llu: record of %zu bytes: %s",
				 (unsigned long long)id, v.mv_size,
				 fv_strerror(err));
			return err;
		}
		f.id = id;
		err = q_take(q, &f);
		if (err)
			return err;
	}
	if (rc && rc != MDB_NOTFOUND)
		return ix_err(q->ix, "mdb_cursor_get(flows)", rc);
	return 0;
}

/* The flows of one bykey key with ids in [lo, hi), in id order. */
static int q_key(struct query *q, MDB_cursor *c, const uint8_t *key,
		 size_t klen, uint64_t lo, uint64_t hi)
{
	uint8_t from[DUP_LEN];
	MDB_val k = {.mv_size = klen, .mv_data = (void *)key};
	MDB_val d = {.mv_size = sizeof(from), .mv_data = from};
	struct fv_flow f;
	int rc, err = 0;

	fv_put_be64(from, lo);
	for (rc = mdb_cursor_get(c, &k, &d, MDB_GET_BOTH_RANGE); !rc;
	     rc = mdb_cursor_get(c, &k, &d, MDB_NEXT_DUP)) {
		uint64_t id;

		if (d.mv_size != DUP_LEN) {
			set_errf(q->ix, "bykey dup of %zu bytes", d.mv_size);
			return FV_ECORRUPT;
		}
		id = fv_be64(d.mv_data);
		if (id >= hi)
			break;
		err = rd_flow(q->ix, q->txn, id, &f);
		if (err == FV_ENOTFOUND) {
			set_errf(q->ix,
				 "bykey entry points at missing flow "
				 "%llu",
				 (unsigned long long)id);
			return FV_ECORRUPT;
		}
		if (!err)
			err = q_take(q, &f);
		if (err)
			return err;
	}
	if (rc && rc != MDB_NOTFOUND)
		return ix_err(q->ix, "mdb_cursor_get(bykey)", rc);
	return 0;
}

/*
 * q_emit without the snapshot: the read txn is reset and the map lock let
 * go while the callback runs, so a caller that takes its time (flows
 * printed into a pager) does not keep LMDB from reusing the pages a
 * writer frees (under a cap, the writer would find the map full). The
 * next bucket is read in a new snapshot, each bucket whole in one; the
 * results given are copies.
 */
static int q_emit_unpinned(struct query *q, MDB_cursor *c, uint64_t wm, int all)
{
	struct fv_index *ix = q->ix;
	int rc, err;

	mdb_txn_reset(q->txn);
	pthread_rwlock_unlock(&ix->map_lock);
	err = q_emit(q, wm, all);
	pthread_rwlock_rdlock(&ix->map_lock);
	rc = mdb_txn_renew(q->txn);
	if (rc == MDB_MAP_RESIZED) {
		pthread_rwlock_unlock(&ix->map_lock);
		rc = map_follow(ix);
		pthread_rwlock_rdlock(&ix->map_lock);
		if (rc)
			return err ? err : rc;
		rc = mdb_txn_renew(q->txn);
	}
	if (!rc)
		rc = mdb_cursor_renew(q->txn, c);
	if (err)
		return err;
	return ix_err(ix, "mdb_txn_renew", rc);
}

/* Timemap buckets by first_ns: by lo, then by id. */
static int tm_lo_cmp(const void *pa, const void *pb)
{
	const struct tm_ent *a = pa, *b = pb;

	if (a->lo != b->lo)
		return a->lo < b->lo ? -1 : 1;
	return tm_cmp(pa, pb);
}

/*
 * The candidates come bucket by bucket from the timemap (flows of ids
 * [b << TM_SHIFT, (b + 1) << TM_SHIFT) began in [lo_b, hi_b]), taken in
 * lo order. After a bucket, every held result that begins before the lo
 * of the next one is given: no bucket still to come holds a flow that
 * begins before it. So the heap holds about one bucket when buckets do
 * not overlap much (ids rise with time, also across several imports in
 * any order); overlapping buckets (a capture whose packets are out of
 * time order) make it hold more.
 */
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
	uint8_t key[KEY_SEC_MAX];
	size_t klen = 0, n = 0;
	uint64_t maxdur = 0, lo;
	struct tm_ent *tm = NULL;
	MDB_cursor *c = NULL;
	MDB_val d;
	int rc, err;

	if (since > until)
		return 0;
	if (filter)
		fv_filter_plan(filter, &plan);
	err = rd_begin(ix, &q.txn);
	if (err)
		return err == FV_ENOTFOUND ? 0 : err; /* nothing yet */

	if (plan.kind == FV_PLAN_FLOW) {
		struct fv_flow f;

		err = rd_flow(ix, q.txn, plan.flow_id, &f);
		if (!err)
			err = q_take(&q, &f);
		if (!err)
			err = q_emit(&q, 0, 1);
		if (err == FV_ENOTFOUND)
			err = 0;
		goto out;
	}

	/* Flows overlapping [since, until] began in [since - maxdur, until]. */
	err = rd_meta(ix, q.txn, META_MAX_DURATION, &d);
	if (!err && d.mv_size == 8)
		maxdur = le64(d.mv_data);
	else if (!err)
		err = FV_EFORMAT;
	else if (err == FV_ENOTFOUND)
		err = 0;
	if (err)
		goto out;
	lo = since > maxdur ? since - maxdur : 0;

	if (plan.kind == FV_PLAN_HOST &&
	    (plan.family == 4 || plan.family == 6)) {
		key[0] = plan.family;
		klen = plan.family == 4 ? 5 : 17;
		memcpy(key + 1, plan.addr, klen - 1);
	} else if (plan.kind == FV_PLAN_PORT && plan.port) {
		key[0] = KIND_PORT; /* port 0 is not indexed */
		fv_put_be16(key + 1, plan.port);
		klen = 3;
	}
	err = tm_load(ix, q.txn, lo, until, &tm, &n);
	if (err || !n)
		goto out;
	qsort(tm, n, sizeof(*tm), tm_lo_cmp);
	rc = mdb_cursor_open(q.txn, klen ? ix->bykey : ix->flows, &c);
	if (rc) {
		err = ix_err(ix, "mdb_cursor_open", rc);
		goto out;
	}
	for (size_t i = 0; i < n && !err; i++) {
		uint64_t a = tm[i].bucket << TM_SHIFT, b = (tm[i].bucket + 1)
							   << TM_SHIFT;

		err = klen ? q_key(&q, c, key, klen, a, b)
			   : q_flows(&q, c, a, b);
		if (!err)
			err = q_emit_unpinned(&q, c,
					      i + 1 < n ? tm[i + 1].lo : 0,
					      i + 1 == n);
	}
	mdb_cursor_close(c);
out:
	free(tm);
	free(q.h);
	rd_end(ix, q.txn);
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
		return err == FV_ENOTFOUND ? 0 : err; /* nothing yet */
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
		block_val_decode(fv_be64(k.mv_data), p, &bi);
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
	rd_end(ix, txn);
	return err > 0 ? 0 : err;
}

/*
 * Walks LMDB's free list in txn (a read txn: the snapshot's): the pages
 * on it, and those the snapshot's own commit freed (its record is keyed
 * by its txn id; they are reused two commits later).
 */
static int free_pages(struct fv_index *ix, MDB_txn *txn, uint64_t *all,
		      uint64_t *last)
{
	size_t id = mdb_txn_id(txn), n;
	MDB_cursor *c;
	MDB_val k, v;
	int rc;

	*all = *last = 0;
	rc = mdb_cursor_open(txn, 0, &c); /* 0: the free list */
	if (rc)
		return rc;
	/* Each value is an ID list: its first word counts the pages. */
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); !rc;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (v.mv_size < sizeof(n))
			continue;
		memcpy(&n, v.mv_data, sizeof(n));
		*all += n;
		if (k.mv_size == sizeof(id) &&
		    !memcmp(k.mv_data, &id, sizeof(id)))
			*last = n;
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int fv_index_stats(struct fv_index *ix, struct fv_index_stats *st)
{
	uint64_t nfree, nlast;
	MDB_stat ms;
	MDB_envinfo info;
	MDB_txn *txn;
	struct stat sb;
	int rc, err;

	memset(st, 0, sizeof(*st));
	pthread_rwlock_rdlock(&ix->map_lock);
	rc = mdb_env_info(ix->env, &info);
	pthread_rwlock_unlock(&ix->map_lock);
	if (rc)
		return ix_err(ix, "mdb_env_info", rc);
	st->map_bytes = info.me_mapsize;
	err = rd_begin(ix, &txn);
	if (err)
		return err == FV_ENOTFOUND ? 0 : err; /* nothing yet */
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
	rc = free_pages(ix, txn, &nfree, &nlast);
	if (rc)
		goto out_mdb;
	st->free_bytes = nfree * ms.ms_psize;
	st->freed_bytes = nlast * ms.ms_psize;
	if (stat(ix->data_path, &sb))
		err = -errno;
	else
		st->file_bytes = (uint64_t)sb.st_size;
	rd_end(ix, txn);
	return err;

out_mdb:
	rd_end(ix, txn);
	return ix_err(ix, "mdb_stat", rc);
}
