/*
 * source.c - the live-source dispatch: checks the options, fills in the
 * defaults and hands the source to its backend's ops table (afpacket.c,
 * pcaplive.c, or the DPDK plugin).
 *
 * The DPDK backend lives in flowvault-dpdk.so beside the executable and
 * is dlopen()ed only when a DPDK source is opened: linking libdpdk into
 * the main binary would run DPDK's many library constructors at every
 * start of every subcommand. The plugin is opened with RTLD_NODELETE:
 * DPDK keeps threads and process-wide state after its cleanup call, so
 * its code must never be unmapped.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture/source_int.h"
#include "common/fv.h"

static const char *const backend_names[] = {
	[FV_BACKEND_AFPACKET] = "afpacket",
	[FV_BACKEND_PCAP] = "pcap",
	[FV_BACKEND_DPDK] = "dpdk",
};

const char *fv_backend_name(enum fv_backend b)
{
	if ((unsigned)b >= sizeof(backend_names) / sizeof(backend_names[0]))
		return "unknown";
	return backend_names[b];
}

int fv_backend_parse(const char *name)
{
	for (unsigned i = 0;
	     i < sizeof(backend_names) / sizeof(backend_names[0]); i++)
		if (name && !strcmp(name, backend_names[i]))
			return (int)i;
	return -1;
}

/*
 * Finds FV_DPDK_PLUGIN in the directory of the running executable and
 * returns its ops table in *ops and its handle in *handle. A missing
 * file is FV_EUNSUPPORTED (the build had no libdpdk-dev).
 */
static int load_dpdk_plugin(const struct fv_source_ops **ops, void **handle,
			    char *errbuf)
{
	char path[PATH_MAX];
	fv_source_plugin_fn fn;
	ssize_t n;
	char *slash;
	void *h;
	int err;

	n = readlink("/proc/self/exe", path, sizeof(path) - 1);
	if (n < 0) {
		err = -errno;
		snprintf(errbuf, FV_SOURCE_ERRBUF,
			 "dpdk: cannot find the executable's directory: %s",
			 strerror(errno));
		goto out;
	}
	path[n] = '\0';
	slash = strrchr(path, '/');
	if (!slash || (size_t)(slash - path) + 1 + sizeof(FV_DPDK_PLUGIN) >
			      sizeof(path)) {
		err = -ENAMETOOLONG;
		snprintf(errbuf, FV_SOURCE_ERRBUF,
			 "dpdk: odd executable path %.200s", path);
		goto out;
	}
	strcpy(slash + 1, FV_DPDK_PLUGIN);
	if (access(path, R_OK) != 0) {
		err = FV_EUNSUPPORTED;
		snprintf(errbuf, FV_SOURCE_ERRBUF,
			 "dpdk backend not built: %.160s is missing (install "
			 "libdpdk-dev and run make)",
			 path);
		goto out;
	}
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
	if (!h) {
		err = FV_EUNSUPPORTED;
		snprintf(errbuf, FV_SOURCE_ERRBUF, "dpdk: cannot load %.200s",
			 dlerror());
		goto out;
	}
	*(void **)&fn = dlsym(h, FV_DPDK_OPS_SYMBOL);
	if (!fn || !(*ops = fn()) || (*ops)->abi != FV_SOURCE_ABI) {
		err = FV_EUNSUPPORTED;
		snprintf(errbuf, FV_SOURCE_ERRBUF,
			 "dpdk: %.160s is not a plugin of this build (rebuild "
			 "it with make)",
			 path);
		goto out_close;
	}
	*handle = h;
	return 0;

out_close:
	dlclose(h);
out:
	return err;
}

/* Checks the options and fills in the defaults into s->opts. */
static int check_opts(struct fv_source *s, const struct fv_source_opts *o,
		      char *errbuf)
{
	s->opts = *o;
	if (o->nworkers == 0 || o->worker >= o->nworkers) {
		snprintf(errbuf, FV_SOURCE_ERRBUF,
			 "worker %u of %u: no such worker", o->worker,
			 o->nworkers);
		return FV_EUSAGE;
	}
	if (o->backend != FV_BACKEND_DPDK && (!o->iface || !*o->iface)) {
		snprintf(errbuf, FV_SOURCE_ERRBUF,
			 "%s: an interface name is needed",
			 fv_backend_name(o->backend));
		return FV_EUSAGE;
	}
	if (!s->opts.snaplen)
		s->opts.snaplen = FV_SOURCE_DEFAULT_SNAPLEN;
	if (s->opts.snaplen > FV_SOURCE_DEFAULT_SNAPLEN)
		s->opts.snaplen = FV_SOURCE_DEFAULT_SNAPLEN;
	if (!s->opts.ring_bytes)
		s->opts.ring_bytes = FV_SOURCE_DEFAULT_RING;
	if (s->opts.bpf && !*s->opts.bpf)
		s->opts.bpf = NULL;
	return 0;
}

int fv_source_open(struct fv_source **out, const struct fv_source_opts *o,
		   char *errbuf)
{
	struct fv_source *s;
	int err;

	errbuf[0] = '\0';
	s = calloc(1, sizeof(*s));
	if (!s) {
		err = -ENOMEM;
		snprintf(errbuf, FV_SOURCE_ERRBUF, "out of memory");
		goto out;
	}
	err = check_opts(s, o, errbuf);
	if (err)
		goto out_free;
	switch (o->backend) {
	case FV_BACKEND_AFPACKET:
		s->ops = &fv_afpacket_ops;
		break;
	case FV_BACKEND_PCAP:
		s->ops = &fv_pcaplive_ops;
		break;
	case FV_BACKEND_DPDK:
		err = load_dpdk_plugin(&s->ops, &s->plugin, errbuf);
		if (err)
			goto out_free;
		break;
	default:
		err = FV_EUSAGE;
		snprintf(errbuf, FV_SOURCE_ERRBUF, "unknown backend %d",
			 (int)o->backend);
		goto out_free;
	}
	err = s->ops->open(s, errbuf);
	if (err)
		goto out_unload;
	/* The caller's strings are not ours to keep. */
	s->opts.iface = NULL;
	s->opts.bpf = NULL;
	s->opts.dpdk_args = NULL;
	*out = s;
	return 0;

out_unload:
	if (s->plugin)
		dlclose(s->plugin);
out_free:
	free(s);
out:
	if (!errbuf[0])
		snprintf(errbuf, FV_SOURCE_ERRBUF, "%s", fv_strerror(err));
	return err;
}

int fv_source_poll(struct fv_source *s, int timeout_ms,
		   int (*cb)(void *arg, const struct fv_source_pkt *p),
		   void *arg)
{
	if (timeout_ms < 0)
		timeout_ms = 0;
	return s->ops->poll(s, timeout_ms, cb, arg);
}

int fv_source_linktype(const struct fv_source *s)
{
	return s->linktype;
}

const char *fv_source_name(const struct fv_source *s)
{
	return s->name;
}

int fv_source_stats(struct fv_source *s, struct fv_source_stats *st)
{
	memset(st, 0, sizeof(*st));
	return s->ops->stats(s, st);
}

void fv_source_close(struct fv_source *s)
{
	if (!s)
		return;
	s->ops->close(s);
	if (s->plugin)
		dlclose(s->plugin);
	free(s);
}
