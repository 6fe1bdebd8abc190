/*
 * pcaplive.c - the libpcap backend: one live pcap handle, one worker.
 *
 * For interfaces AF_PACKET cannot take as Ethernet or raw IP, and as a
 * reference for the afpacket backend (on Linux libpcap itself runs a
 * TPACKET_V3 ring). The handle is non-blocking: a poll drains what
 * pcap_dispatch() has ready and otherwise waits in poll(2) on
 * pcap_get_selectable_fd() for at most the caller's timeout. Immediate
 * mode is off, so libpcap's ring blocks go up when full or after
 * FV_PCL_TIMEOUT_MS, like the afpacket backend's.
 *
 * libpcap has no fanout: several workers would each see every frame,
 * so the backend takes one worker only.
 */
#include <errno.h>
#include <limits.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture/source_int.h"
#include "common/fv.h"

#define FV_PCL_TIMEOUT_MS 64
#define FV_PCL_BUDGET	  65536 /* frames per pcap_dispatch() */

struct pcl {
	pcap_t *p;
	int fd;
	int nano; /* pcap timestamps in ns (else us) */
	uint64_t packets, bytes;
	/* the poll in progress */
	fv_source_cb cb;
	void *arg;
	int rc; /* first non-zero return of cb */
	int n;	/* frames delivered in this poll */
};

static void pcl_handler(u_char *user, const struct pcap_pkthdr *h,
			const u_char *bytes)
{
	struct pcl *c = (struct pcl *)user;
	struct fv_source_pkt p;
	int rc;

	p.ts_ns = (uint64_t)h->ts.tv_sec * FV_NSEC_PER_SEC +
		  (uint64_t)h->ts.tv_usec * (c->nano ? 1 : 1000);
	p.caplen = h->caplen;
	p.origlen = h->len;
	p.data = bytes;
	c->packets++;
	c->bytes += h->len;
	c->n++;
	rc = c->cb(c->arg, &p);
	if (rc) {
		/* libpcap stops before the next frame and resumes there. */
		c->rc = rc;
		pcap_breakloop(c->p);
	}
}

/* Translates a failed pcap_dispatch(). */
static int pcl_error(struct pcl *c)
{
	const char *msg = pcap_geterr(c->p);

	if (strstr(msg, "went down"))
		return -ENETDOWN;
	if (strstr(msg, "No such device"))
		return -ENODEV;
	return FV_EPCAP;
}

static int pcl_dispatch(struct pcl *c)
{
	int r = pcap_dispatch(c->p, FV_PCL_BUDGET, pcl_handler, (u_char *)c);

	if (r == PCAP_ERROR)
		return pcl_error(c);
	return 0;
}

static int pcl_poll(struct fv_source *s, int timeout_ms, fv_source_cb cb,
		    void *arg)
{
	struct pcl *c = s->priv;
	struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
	int err, n;

	c->cb = cb;
	c->arg = arg;
	c->rc = 0;
	c->n = 0;
	err = pcl_dispatch(c);
	if (err)
		return err;
	if (c->rc || c->n)
		return c->rc ? c->rc : c->n;
	n = poll(&pfd, 1, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	if (n == 0)
		return 0;
	err = pcl_dispatch(c);
	if (err)
		return err;
	return c->rc ? c->rc : c->n;
}

static int pcl_stats(struct fv_source *s, struct fv_source_stats *st)
{
	struct pcl *c = s->priv;
	struct pcap_stat ps;

	/* On Linux libpcap sums the kernel's counters since activation. */
	if (pcap_stats(c->p, &ps) < 0)
		return FV_EPCAP;
	st->packets = c->packets;
	st->bytes = c->bytes;
	st->kernel_drops = ps.ps_drop;
	st->if_drops = ps.ps_ifdrop;
	return 0;
}

static void pcl_close(struct fv_source *s)
{
	struct pcl *c = s->priv;

	pcap_close(c->p);
	free(c);
}

/* An error of pcap_activate() as our code, with a sentence. */
static int pcl_activate_error(pcap_t *p, int rc, const char *iface,
			      char *errbuf)
{
	switch (rc) {
	case PCAP_ERROR_NO_SUCH_DEVICE:
		snprintf(errbuf, FV_SOURCE_ERRBUF, "%.64s: no such interface",
			 iface);
		return -ENODEV;
	case PCAP_ERROR_PERM_DENIED:
		snprintf(errbuf, FV_SOURCE_ERRBUF,
			 "%.64s: need CAP_NET_RAW (run as root)", iface);
		return -EPERM;
	case PCAP_ERROR_IFACE_NOT_UP:
		snprintf(errbuf, FV_SOURCE_ERRBUF, "%.64s: interface is down",
			 iface);
		return -ENETDOWN;
	}
	snprintf(errbuf, FV_SOURCE_ERRBUF, "%.64s: %.160s", iface,
		 rc == PCAP_ERROR ? pcap_geterr(p) : pcap_statustostr(rc));
	return FV_EPCAP;
}

static int pcl_filter(struct pcl *c, const struct fv_source_opts *o,
		      char *errbuf)
{
	struct bpf_program prog;
	int err = 0;

	if (pcap_compile(c->p, &prog, o->bpf, 1, PCAP_NETMASK_UNKNOWN) < 0) {
		snprintf(errbuf, FV_SOURCE_ERRBUF,
			 "bad filter \"%.64s\": %.150s", o->bpf,
			 pcap_geterr(c->p));
		return FV_EPCAP;
	}
	if (pcap_setfilter(c->p, &prog) < 0) {
		snprintf(errbuf, FV_SOURCE_ERRBUF, "%.64s: filter: %.150s",
			 o->iface, pcap_geterr(c->p));
		err = FV_EPCAP;
	}
	pcap_freecode(&prog);
	return err;
}

static int pcl_open(struct fv_source *s, char *errbuf)
{
	const struct fv_source_opts *o = &s->opts;
	char ebuf[PCAP_ERRBUF_SIZE];
	struct pcl *c;
	int rc, dlt, err;

	if (o->nworkers != 1) {
		snprintf(errbuf, FV_SOURCE_ERRBUF,
			 "the pcap backend takes one worker only (use "
			 "--backend afpacket for %u workers)",
			 o->nworkers);
		return FV_EUSAGE;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		err = -ENOMEM;
		goto out;
	}
	c->p = pcap_create(o->iface, ebuf);
	if (!c->p) {
		snprintf(errbuf, FV_SOURCE_ERRBUF, "%.64s: %.160s", o->iface,
			 ebuf);
		err = FV_EPCAP;
		goto out_free;
	}
	pcap_set_snaplen(c->p, (int)o->snaplen);
	pcap_set_promisc(c->p, o->promisc ? 1 : 0);
	pcap_set_buffer_size(
		c->p, o->ring_bytes > INT_MAX ? INT_MAX : (int)o->ring_bytes);
	pcap_set_timeout(c->p, FV_PCL_TIMEOUT_MS);
	pcap_set_immediate_mode(c->p, 0);
	/* Not every platform has ns timestamps: then we get us. */
	pcap_set_tstamp_precision(c->p, PCAP_TSTAMP_PRECISION_NANO);
	rc = pcap_activate(c->p);
	if (rc < 0) {
		err = pcl_activate_error(c->p, rc, o->iface, errbuf);
		goto out_pcap;
	}
	c->nano = pcap_get_tstamp_precision(c->p) == PCAP_TSTAMP_PRECISION_NANO;
	if (o->bpf) {
		err = pcl_filter(c, o, errbuf);
		if (err)
			goto out_pcap;
	}
	if (pcap_setnonblock(c->p, 1, ebuf) < 0) {
		snprintf(errbuf, FV_SOURCE_ERRBUF, "%.64s: %.160s", o->iface,
			 ebuf);
		err = FV_EPCAP;
		goto out_pcap;
	}
	c->fd = pcap_get_selectable_fd(c->p);
	if (c->fd < 0) {
		snprintf(errbuf, FV_SOURCE_ERRBUF,
			 "%.64s: no selectable descriptor", o->iface);
		err = FV_EUNSUPPORTED;
		goto out_pcap;
	}
	/* LINKTYPE_ numbers equal DLT_ ones but for DLT_RAW (12 or 14). */
	dlt = pcap_datalink(c->p);
	s->linktype = dlt == DLT_RAW ? 101 : dlt;
	snprintf(s->name, sizeof(s->name), "%s", o->iface);
	s->priv = c;
	return 0;

out_pcap:
	pcap_close(c->p);
out_free:
	free(c);
out:
	return err;
}

const struct fv_source_ops fv_pcaplive_ops = {
	.abi = FV_SOURCE_ABI,
	.open = pcl_open,
	.poll = pcl_poll,
	.stats = pcl_stats,
	.close = pcl_close,
};
