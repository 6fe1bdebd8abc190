/*
 * source_int.h - what the live-source dispatch (source.c) and its
 * backends (afpacket.c, pcaplive.c, dpdk/dpdk.c) share. Not for other
 * modules: they use source.h.
 *
 * Each backend fills a struct fv_source_ops, like the function pointers
 * of libpcap's pcap-int.h. source.c checks the options, fills in the
 * defaults, allocates the struct fv_source and calls the backend's open,
 * which keeps its own state in s->priv and sets s->linktype and s->name.
 *
 * The DPDK backend is a plugin (flowvault-dpdk.so, dlopen()ed on demand):
 * it exports FV_DPDK_OPS_SYMBOL, a function returning its ops table, and
 * sees struct fv_source only through this header. FV_SOURCE_ABI changes
 * whenever the layout below does, so a plugin left over from another
 * build is refused rather than misread.
 */
#ifndef FV_CAPTURE_SOURCE_INT_H
#define FV_CAPTURE_SOURCE_INT_H

#include "capture/source.h"

#define FV_SOURCE_ABI 1

#define FV_SOURCE_DEFAULT_SNAPLEN 262144u
#define FV_SOURCE_DEFAULT_RING	  (64ull << 20)
#define FV_SOURCE_ERRBUF	  256 /* bytes of errbuf callers provide */

/* The plugin's one exported function and its file name. */
#define FV_DPDK_OPS_SYMBOL "fv_dpdk_source_ops"
#define FV_DPDK_PLUGIN	   "flowvault-dpdk.so"

typedef int (*fv_source_cb)(void *arg, const struct fv_source_pkt *p);

struct fv_source;

struct fv_source_ops {
	unsigned abi; /* FV_SOURCE_ABI of the code that filled it */
	/*
	 * Opens the backend for s->opts (defaults filled in, already
	 * checked: nworkers >= 1, worker < nworkers, snaplen and ring_bytes
	 * not 0). Sets s->priv, s->linktype and s->name. Returns 0 or an
	 * error with a sentence in errbuf; on error nothing is left open.
	 */
	int (*open)(struct fv_source *s, char *errbuf);
	/* As fv_source_poll(). */
	int (*poll)(struct fv_source *s, int timeout_ms, fv_source_cb cb,
		    void *arg);
	/* As fv_source_stats(). */
	int (*stats)(struct fv_source *s, struct fv_source_stats *st);
	/* Releases everything open() acquired. */
	void (*close)(struct fv_source *s);
};

struct fv_source {
	const struct fv_source_ops *ops;
	void *priv;   /* the backend's state */
	int linktype; /* LINKTYPE_* of the frames */
	char name[64];
	/*
	 * A copy of the caller's options with the defaults filled in. The
	 * strings (iface, bpf, dpdk_args) are the caller's and are only
	 * valid during open(): source.c clears them afterwards.
	 */
	struct fv_source_opts opts;
	void *plugin; /* dlopen() handle of the backend's .so, or NULL */
};

/* The built-in backends. */
extern const struct fv_source_ops fv_afpacket_ops;
extern const struct fv_source_ops fv_pcaplive_ops;

/* The plugin's entry point (the type of FV_DPDK_OPS_SYMBOL). */
typedef const struct fv_source_ops *(*fv_source_plugin_fn)(void);

#endif
