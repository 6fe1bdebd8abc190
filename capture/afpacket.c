/*
 * afpacket.c - the AF_PACKET backend: one TPACKET_V3 ring per worker,
 * the workers of a capture joined in one fanout group that keeps the
 * packets of a host pair on one worker.
 *
 * The kernel fills ring blocks (FV_AFP_BLOCK bytes, variable-size frames)
 * and hands a block to us when it is full or when tp_retire_blk_tov
 * passes, so a quiet link still delivers within FV_AFP_RETIRE_MS. We
 * deliver every frame of a ready block straight from the ring, then give
 * the block back (TP_STATUS_KERNEL). A callback that stops delivery
 * leaves the rest of its block for the next poll: nothing is lost.
 *
 * Fanout: the workers join one PACKET_FANOUT_CBPF group whose classic
 * BPF program (afp_fanout_prog) picks the worker from a symmetric hash of
 * the IP addresses only: source XOR destination, then mixed. Every
 * packet between two hosts goes to one worker, so a flow is never split:
 * not between its directions, and not between its whole packets and its
 * fragments. The kernel's PACKET_FANOUT_HASH cannot do that: it hashes
 * whole packets on addresses and ports but fragments on addresses only
 * (a later fragment has no ports), so a fragmented flow landed on two
 * workers. PACKET_FANOUT_FLAG_DEFRAG is no cure: the kernel would
 * reassemble the fragments and we would store a datagram the wire never
 * carried. The price is balance by host pair, not by connection
 * (docs/capture.md). Frames without IP (ARP, LLDP, MPLS, PPPoE, more
 * than FV_AFP_TAGS VLAN tags) go to worker 0.
 *
 * The socket is created receiving nothing, gets a drop-everything
 * filter, its ring, is bound and joins the fanout group; only then is
 * the real filter attached. So no frame reaches a worker's ring before
 * it is in the group (which would deliver that frame twice).
 *
 * VLAN: the kernel strips the outer 802.1Q/802.1ad tag into tp_vlan_tci
 * (and tp_vlan_tpid). We put it back so stored frames equal the wire,
 * as libpcap does: PACKET_RESERVE leaves FV_AFP_VLAN_LEN bytes free
 * before each frame, so the tag is inserted in place by moving the 12
 * address bytes, without copying the frame.
 *
 * Outgoing frames (PACKET_OUTGOING) are recorded: a mirror port or one
 * end of a veth shows both directions. On a loopback device each frame
 * is seen once outgoing and once incoming, so there the outgoing copy
 * is skipped (libpcap does the same).
 */
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/filter.h>

#include "capture/capfile.h"
#include "capture/source_int.h"
#include "common/fv.h"

#define FV_AFP_BLOCK	  (1u << 20) /* preferred ring block size */
#define FV_AFP_MIN_BLOCK  (64u << 10)
#define FV_AFP_FRAME	  2048u /* nominal frame size (V3 ignores it) */
#define FV_AFP_RETIRE_MS  64u	/* a partly filled block goes up after */
#define FV_AFP_VLAN_LEN	  4u
#define FV_AFP_MAC_ADDRS  12u /* destination and source address */
#define FV_LINKTYPE_ETHER 1
#define FV_LINKTYPE_RAW	  101

/* The fanout program (afp_fanout_prog). */
#define FV_AFP_TAGS	    4 /* VLAN tags it skips (besides a stripped one) */
#define FV_AFP_PROG_MAX	    128
#define FV_AFP_ETH_8021Q    0x8100
#define FV_AFP_ETH_8021AD   0x88a8
#define FV_AFP_ETH_QINQ_OLD 0x9100
#define FV_AFP_ETH_IPV4	    0x0800
#define FV_AFP_ETH_IPV6	    0x86dd
#define FV_AFP_GOLDEN	    0x9e3779b1u /* 2^32 / phi: spreads the bits */

struct afp {
	int fd;
	uint8_t *ring;
	size_t ring_len;
	uint32_t block_size;
	uint32_t nblocks;
	uint32_t block; /* the block read next */
	uint8_t *pkt;	/* next frame of the open block, NULL if none open */
	uint32_t left;	/* frames of the open block not yet delivered */
	uint32_t snaplen;
	int ether;	   /* frames have an Ethernet header (VLAN tags) */
	int skip_outgoing; /* loopback: drop the outgoing copy */
	uint64_t packets, bytes;
	uint64_t drops, freezes; /* PACKET_STATISTICS resets: summed here */
};

static struct tpacket_block_desc *afp_block(const struct afp *a, uint32_t i)
{
	return (struct tpacket_block_desc *)(a->ring +
					     (size_t)i * a->block_size);
}

/* Hands the open block back to the kernel and moves to the next. */
static void afp_release(struct afp *a, struct tpacket_block_desc *bd)
{
	__atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL,
			 __ATOMIC_RELEASE);
	a->pkt = NULL;
	a->left = 0;
	a->block = (a->block + 1) % a->nblocks;
}

/*
 * Waits for a block. Returns 1 when the socket is readable, 0 on timeout
 * or a signal, or -errno of an error the socket reports (ENETDOWN when
 * the interface goes away).
 */
static int afp_wait(struct afp *a, int timeout_ms)
{
	struct pollfd pfd = {.fd = a->fd, .events = POLLIN | POLLERR};
	int n, soerr = 0;
	socklen_t len = sizeof(soerr);

	n = poll(&pfd, 1, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	if (n == 0)
		return 0;
	if (pfd.revents & POLLERR) {
		if (getsockopt(a->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
			return -errno;
		return soerr ? -soerr : 1;
	}
	if (pfd.revents & (POLLHUP | POLLNVAL))
		return -ENODEV;
	return 1;
}

/*
 * Fills p from the ring frame h. Puts a stripped VLAN tag back in front
 * of the frame (in the PACKET_RESERVE room) so the frame equals the wire.
 */
static void afp_frame(const struct afp *a, struct tpacket3_hdr *h,
		      struct fv_source_pkt *p)
{
	uint8_t *data = (uint8_t *)h + h->tp_mac;
	uint32_t caplen = h->tp_snaplen, origlen = h->tp_len;

	if (a->ether &&
	    ((h->tp_status & TP_STATUS_VLAN_VALID) || h->hv1.tp_vlan_tci) &&
	    caplen >= FV_AFP_MAC_ADDRS) {
		uint16_t tpid = (h->tp_status & TP_STATUS_VLAN_TPID_VALID)
					? h->hv1.tp_vlan_tpid
					: ETHERTYPE_VLAN;

		data -= FV_AFP_VLAN_LEN;
		memmove(data, data + FV_AFP_VLAN_LEN, FV_AFP_MAC_ADDRS);
		fv_put_be16(data + FV_AFP_MAC_ADDRS, tpid);
		fv_put_be16(data + FV_AFP_MAC_ADDRS + 2, h->hv1.tp_vlan_tci);
		caplen += FV_AFP_VLAN_LEN;
		origlen += FV_AFP_VLAN_LEN;
		if (caplen > a->snaplen)
			caplen = a->snaplen;
	}
	p->ts_ns = (uint64_t)h->tp_sec * FV_NSEC_PER_SEC + h->tp_nsec;
	p->caplen = caplen;
	p->origlen = origlen;
	p->data = data;
}

static int afp_is_outgoing(const struct tpacket3_hdr *h)
{
	const struct sockaddr_ll *sll =
		(const void *)((const uint8_t *)h +
			       TPACKET_ALIGN(sizeof(struct tpacket3_hdr)));

	return sll->sll_pkttype == PACKET_OUTGOING;
}

/*
 * Delivers the frames of the ready blocks, at most one lap of the ring
 * per call so a busy link still lets the caller commit and check for a
 * stop. Waits (once) only when nothing was ready.
 */
static int afp_poll(struct fv_source *s, int timeout_ms, fv_source_cb cb,
		    void *arg)
{
	struct afp *a = s->priv;
	uint32_t blocks = 0;
	int delivered = 0, waited = 0, rc;

	for (;;) {
		struct tpacket_block_desc *bd = afp_block(a, a->block);

		if (!a->pkt) {
			uint32_t st = __atomic_load_n(&bd->hdr.bh1.block_status,
						      __ATOMIC_ACQUIRE);

			if (!(st & TP_STATUS_USER)) {
				if (delivered || waited)
					return delivered;
				rc = afp_wait(a, timeout_ms);
				if (rc <= 0)
					return rc;
				waited = 1;
				continue;
			}
			a->pkt =
				(uint8_t *)bd + bd->hdr.bh1.offset_to_first_pkt;
			a->left = bd->hdr.bh1.num_pkts;
		}
		while (a->left) {
			struct tpacket3_hdr *h = (struct tpacket3_hdr *)a->pkt;
			struct fv_source_pkt p;

			a->pkt += h->tp_next_offset;
			a->left--;
			if (a->skip_outgoing && afp_is_outgoing(h))
				continue;
			afp_frame(a, h, &p);
			a->packets++;
			a->bytes += p.origlen;
			delivered++;
			rc = cb(arg, &p);
			if (rc) {
				if (!a->left)
					afp_release(a, bd);
				return rc;
			}
		}
		afp_release(a, bd);
		if (++blocks >= a->nblocks)
			return delivered;
	}
}

static int afp_stats(struct fv_source *s, struct fv_source_stats *st)
{
	struct afp *a = s->priv;
	struct tpacket_stats_v3 ks;
	socklen_t len = sizeof(ks);

	/* Reading the counters resets them in the kernel. */
	if (getsockopt(a->fd, SOL_PACKET, PACKET_STATISTICS, &ks, &len) < 0)
		return -errno;
	a->drops += ks.tp_drops;
	a->freezes += ks.tp_freeze_q_cnt;
	st->packets = a->packets;
	st->bytes = a->bytes;
	st->kernel_drops = a->drops;
	st->freezes = a->freezes;
	return 0;
}

static void afp_close(struct fv_source *s)
{
	struct afp *a = s->priv;

	if (a->ring)
		munmap(a->ring, a->ring_len);
	if (a->fd >= 0)
		close(a->fd);
	free(a);
}

/*
 * A pcap handle whose compiler knows this kernel: an activated live
 * handle on the interface, so that libpcap emits the Linux ancillary
 * loads (SKF_AD_VLAN_TAG_PRESENT...) for "vlan" and the filter sees
 * stripped tags as tcpdump's does. Opened only to compile, with a small
 * buffer. Falls back to pcap_open_dead() (no "vlan" on stripped tags)
 * when the live handle cannot be made.
 */
static pcap_t *afp_compiler(const struct fv_source_opts *o, int linktype)
{
	char ebuf[PCAP_ERRBUF_SIZE];
	pcap_t *p = pcap_create(o->iface, ebuf);

	if (p) {
		pcap_set_snaplen(p, (int)o->snaplen);
		pcap_set_buffer_size(p, 1 << 20);
		pcap_set_timeout(p, FV_AFP_RETIRE_MS);
		if (pcap_activate(p) >= 0 &&
		    pcap_datalink(p) == fv_linktype_to_dlt(linktype))
			return p;
		pcap_close(p);
	}
	return pcap_open_dead(fv_linktype_to_dlt(linktype), (int)o->snaplen);
}

/* The kernel filter for opts->bpf (compiled by libpcap for linktype),
 * or "keep snaplen bytes of everything"; *prog is freed by the caller
 * with pcap_freecode when *compiled is set. */
static int afp_compile(const struct fv_source_opts *o, int linktype,
		       struct bpf_program *prog, int *compiled,
		       struct sock_filter *keep, char *errbuf)
{
	pcap_t *pc;
	int err = 0;

	*compiled = 0;
	if (!o->bpf) {
		keep->code = BPF_RET | BPF_K;
		keep->jt = keep->jf = 0;
		keep->k = o->snaplen;
		prog->bf_len = 1;
		prog->bf_insns = (struct bpf_insn *)keep;
		return 0;
	}
	pc = afp_compiler(o, linktype);
	if (!pc) {
		snprintf(errbuf, FV_SOURCE_ERRBUF, "out of memory");
		return -ENOMEM;
	}
	if (pcap_compile(pc, prog, o->bpf, 1, PCAP_NETMASK_UNKNOWN) < 0) {
		snprintf(errbuf, FV_SOURCE_ERRBUF,
			 "bad filter \"%.64s\": %.150s", o->bpf,
			 pcap_geterr(pc));
		err = FV_EPCAP;
	} else {
		*compiled = 1;
	}
	pcap_close(pc);
	return err;
}

static int afp_attach(int fd, const struct bpf_program *prog)
{
	struct sock_fprog fp = {
		.len = (unsigned short)prog->bf_len,
		.filter = (struct sock_filter *)prog->bf_insns,
	};

	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof(fp)) < 0)
		return -errno;
	return 0;
}

/*
 * A classic BPF program under construction, jumps to labels resolved at
 * the end (all jumps go forward, as cBPF requires). Label AFP_NEXT is
 * the next instruction.
 */
enum afp_label {
	AFP_NEXT = 0,
	AFP_RX,
	AFP_TAGS,
	AFP_L3,
	AFP_V4,
	AFP_V6,
	AFP_MIX,
	AFP_OTHER,
	AFP_SKIP, /* AFP_SKIP + i: skip tag i */
	AFP_NLABELS = AFP_SKIP + FV_AFP_TAGS,
};

struct afp_prog {
	struct sock_filter insn[FV_AFP_PROG_MAX];
	unsigned n;
	int label[AFP_NLABELS]; /* instruction index, -1 until placed */
	int err;
};

static void afp_op(struct afp_prog *p, uint16_t code, uint32_t k)
{
	if (p->n >= FV_AFP_PROG_MAX) {
		p->err = -E2BIG;
		return;
	}
	p->insn[p->n++] = (struct sock_filter){code, 0, 0, k};
}

/* A conditional jump: to lt when true, lf when false (labels). */
static void afp_jmp(struct afp_prog *p, uint16_t code, uint32_t k,
		    enum afp_label lt, enum afp_label lf)
{
	afp_op(p, code, k);
	if (!p->err) {
		p->insn[p->n - 1].jt = (uint8_t)lt;
		p->insn[p->n - 1].jf = (uint8_t)lf;
	}
}

static void afp_place(struct afp_prog *p, enum afp_label l)
{
	p->label[l] = (int)p->n;
}

/* Turns the label numbers of the jumps into offsets. */
static int afp_resolve(struct afp_prog *p)
{
	if (p->err)
		return p->err;
	for (unsigned i = 0; i < p->n; i++) {
		struct sock_filter *f = &p->insn[i];
		int t, e;

		if (BPF_CLASS(f->code) != BPF_JMP)
			continue;
		if (BPF_OP(f->code) == BPF_JA) {
			t = p->label[f->k] - (int)i - 1;
			if (f->k == AFP_NEXT || t < 0)
				return -EINVAL;
			f->k = (uint32_t)t;
			continue;
		}
		t = f->jt == AFP_NEXT ? 0 : p->label[f->jt] - (int)i - 1;
		e = f->jf == AFP_NEXT ? 0 : p->label[f->jf] - (int)i - 1;
		if (t < 0 || t > 255 || e < 0 || e > 255)
			return -EINVAL;
		f->jt = (uint8_t)t;
		f->jf = (uint8_t)e;
	}
	return 0;
}

/*
 * The fanout program: returns a hash of the IP addresses that is the
 * same for both directions (the kernel takes it modulo the number of
 * workers), 0 for frames without IP.
 *
 * Where the frame is: a fanout program runs on the skb as the device
 * handed it over, not on the frame the socket gets. On Ethernet, an
 * incoming frame's skb->data is past the Ethernet header and past the
 * outer 802.1Q/802.1ad tag, which is in the skb's metadata, and
 * skb->protocol (SKF_AD_PROTOCOL) is the type that follows; an outgoing
 * frame (SKF_AD_PKTTYPE = PACKET_OUTGOING) starts at its Ethernet
 * header, with any tags in the data. Both are walked to the IP header:
 * up to FV_AFP_TAGS tags (0x8100, 0x88a8, 0x9100, as decode.c knows
 * them) are skipped, X holding the offset. Raw IP devices start at the
 * IP header; the version nibble says which.
 *
 * The hash: IPv4 source XOR destination; IPv6 the XOR of the eight
 * address words. Then h ^= h >> 16, multiplied by FV_AFP_GOLDEN and
 * folded again, so every address bit reaches the low bits the modulo
 * keeps. A frame too short for a load ends the program with 0 (the
 * kernel's rule for a failed load): worker 0, as for non-IP frames.
 */
static int afp_fanout_prog(struct afp_prog *p, int ether)
{
	unsigned i;

	memset(p, 0, sizeof(*p));
	for (i = 0; i < AFP_NLABELS; i++)
		p->label[i] = -1;
	if (ether) {
		afp_op(p, BPF_LD | BPF_W | BPF_ABS,
		       SKF_AD_OFF + SKF_AD_PKTTYPE);
		afp_jmp(p, BPF_JMP | BPF_JEQ | BPF_K, PACKET_OUTGOING, AFP_NEXT,
			AFP_RX);
		afp_op(p, BPF_LDX | BPF_W | BPF_IMM, ETHER_HDR_LEN);
		afp_op(p, BPF_LD | BPF_H | BPF_ABS, FV_AFP_MAC_ADDRS);
		afp_jmp(p, BPF_JMP | BPF_JA, AFP_TAGS, 0, 0);
		afp_place(p, AFP_RX);
		afp_op(p, BPF_LDX | BPF_W | BPF_IMM, 0);
		afp_op(p, BPF_LD | BPF_W | BPF_ABS,
		       SKF_AD_OFF + SKF_AD_PROTOCOL);
		afp_place(p, AFP_TAGS);
		for (i = 0; i < FV_AFP_TAGS; i++) {
			/* A = the type at X - 2; a tag: A = the next type. */
			afp_jmp(p, BPF_JMP | BPF_JEQ | BPF_K, FV_AFP_ETH_8021Q,
				AFP_SKIP + i, AFP_NEXT);
			afp_jmp(p, BPF_JMP | BPF_JEQ | BPF_K, FV_AFP_ETH_8021AD,
				AFP_SKIP + i, AFP_NEXT);
			afp_jmp(p, BPF_JMP | BPF_JEQ | BPF_K,
				FV_AFP_ETH_QINQ_OLD, AFP_SKIP + i, AFP_L3);
			afp_place(p, AFP_SKIP + i);
			afp_op(p, BPF_LD | BPF_H | BPF_IND, 2);
			afp_op(p, BPF_ST, 0);
			afp_op(p, BPF_MISC | BPF_TXA, 0);
			afp_op(p, BPF_ALU | BPF_ADD | BPF_K, FV_AFP_VLAN_LEN);
			afp_op(p, BPF_MISC | BPF_TAX, 0);
			afp_op(p, BPF_LD | BPF_MEM, 0);
		}
		afp_place(p, AFP_L3);
		afp_jmp(p, BPF_JMP | BPF_JEQ | BPF_K, FV_AFP_ETH_IPV4, AFP_V4,
			AFP_NEXT);
		afp_jmp(p, BPF_JMP | BPF_JEQ | BPF_K, FV_AFP_ETH_IPV6, AFP_V6,
			AFP_OTHER);
	} else {
		afp_op(p, BPF_LDX | BPF_W | BPF_IMM, 0);
		afp_op(p, BPF_LD | BPF_B | BPF_ABS, 0);
		afp_op(p, BPF_ALU | BPF_RSH | BPF_K, 4);
		afp_jmp(p, BPF_JMP | BPF_JEQ | BPF_K, 4, AFP_V4, AFP_NEXT);
		afp_jmp(p, BPF_JMP | BPF_JEQ | BPF_K, 6, AFP_V6, AFP_OTHER);
	}
	/* IPv4 (RFC 791): addresses at 12 and 16. */
	afp_place(p, AFP_V4);
	afp_op(p, BPF_LD | BPF_W | BPF_IND, 12);
	afp_op(p, BPF_ST, 0);
	afp_op(p, BPF_LD | BPF_W | BPF_IND, 16);
	afp_op(p, BPF_LDX | BPF_W | BPF_MEM, 0);
	afp_op(p, BPF_ALU | BPF_XOR | BPF_X, 0);
	afp_jmp(p, BPF_JMP | BPF_JA, AFP_MIX, 0, 0);
	/* IPv6 (RFC 8200): addresses at 8 and 24; M[1] = offset, M[0] = h. */
	afp_place(p, AFP_V6);
	afp_op(p, BPF_STX, 1);
	afp_op(p, BPF_LD | BPF_W | BPF_IND, 8);
	afp_op(p, BPF_ST, 0);
	for (i = 1; i < 8; i++) {
		afp_op(p, BPF_LDX | BPF_W | BPF_MEM, 1);
		afp_op(p, BPF_LD | BPF_W | BPF_IND, 8 + 4 * i);
		afp_op(p, BPF_LDX | BPF_W | BPF_MEM, 0);
		afp_op(p, BPF_ALU | BPF_XOR | BPF_X, 0);
		afp_op(p, BPF_ST, 0);
	}
	afp_place(p, AFP_MIX);
	afp_op(p, BPF_MISC | BPF_TAX, 0);
	afp_op(p, BPF_ALU | BPF_RSH | BPF_K, 16);
	afp_op(p, BPF_ALU | BPF_XOR | BPF_X, 0);
	afp_op(p, BPF_ALU | BPF_MUL | BPF_K, FV_AFP_GOLDEN);
	afp_op(p, BPF_MISC | BPF_TAX, 0);
	afp_op(p, BPF_ALU | BPF_RSH | BPF_K, 16);
	afp_op(p, BPF_ALU | BPF_XOR | BPF_X, 0);
	afp_op(p, BPF_RET | BPF_A, 0);
	afp_place(p, AFP_OTHER);
	afp_op(p, BPF_RET | BPF_K, 0);
	return afp_resolve(p);
}

/*
 * Joins the capture's fanout group and gives the group its program
 * (every worker sets the same one; the kernel keeps one per group).
 * Until the first worker has set it the group sends everything to that
 * worker, the only one in it.
 */
static int afp_fanout(struct afp *a, const struct fv_source_opts *o,
		      char *errbuf)
{
	struct afp_prog p;
	struct sock_fprog fp;
	int val, err;

	err = afp_fanout_prog(&p, a->ether);
	if (err) {
		snprintf(errbuf, FV_SOURCE_ERRBUF, "fanout program: %s",
			 strerror(-err));
		return err;
	}
	val = (int)((o->fanout_id & 0xffff) | (PACKET_FANOUT_CBPF << 16));
	if (setsockopt(a->fd, SOL_PACKET, PACKET_FANOUT, &val, sizeof(val)) <
	    0) {
		err = -errno;
		snprintf(errbuf, FV_SOURCE_ERRBUF,
			 "%.64s: fanout group %u: %s (in use by another "
			 "capture?)",
			 o->iface, o->fanout_id & 0xffff, strerror(errno));
		return err;
	}
	fp.len = (unsigned short)p.n;
	fp.filter = p.insn;
	if (setsockopt(a->fd, SOL_PACKET, PACKET_FANOUT_DATA, &fp, sizeof(fp)) <
	    0) {
		err = -errno;
		snprintf(errbuf, FV_SOURCE_ERRBUF,
			 "%.64s: fanout program: %s (Linux >= 4.3 needed)",
			 o->iface, strerror(errno));
		return err;
	}
	return 0;
}

/* Link type of the interface's frames, from its hardware type. */
static int afp_linktype(int fd, const char *iface, int *linktype, int *loopback,
			char *errbuf)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", iface);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) {
		snprintf(errbuf, FV_SOURCE_ERRBUF, "%s: %s", iface,
			 strerror(errno));
		return -errno;
	}
	/* lo frames carry an (all-zero) Ethernet header. */
	*loopback = ifr.ifr_hwaddr.sa_family == ARPHRD_LOOPBACK;
	switch (ifr.ifr_hwaddr.sa_family) {
	case ARPHRD_LOOPBACK:
	case ARPHRD_ETHER:
		*linktype = FV_LINKTYPE_ETHER;
		return 0;
	case ARPHRD_NONE:
	case ARPHRD_RAWIP:
		*linktype = FV_LINKTYPE_RAW;
		return 0;
	}
	snprintf(errbuf, FV_SOURCE_ERRBUF,
		 "%s: hardware type %u is not Ethernet or raw IP (try "
		 "--backend pcap)",
		 iface, ifr.ifr_hwaddr.sa_family);
	return FV_EUNSUPPORTED;
}

/* Block size: 1 MiB, smaller for a small ring, but always enough for a
 * whole snaplen frame with its headers. */
static void afp_geometry(struct afp *a, uint64_t ring_bytes)
{
	uint32_t min = FV_AFP_MIN_BLOCK;

	while (min < a->snaplen + 512)
		min <<= 1;
	a->block_size = FV_AFP_BLOCK;
	while (a->block_size > min && ring_bytes / a->block_size < 8)
		a->block_size >>= 1;
	if (a->block_size < min)
		a->block_size = min;
	a->nblocks = (uint32_t)(ring_bytes / a->block_size);
	if (a->nblocks < 2)
		a->nblocks = 2;
}

static int afp_open(struct fv_source *s, char *errbuf)
{
	const struct fv_source_opts *o = &s->opts;
	struct sock_filter drop = {BPF_RET | BPF_K, 0, 0, 0}, keep;
	struct bpf_program none = {1, (struct bpf_insn *)&drop}, prog;
	struct tpacket_req3 req;
	struct sockaddr_ll sll;
	struct packet_mreq mr;
	int ifindex, val, compiled = 0, err;
	struct afp *a;

	a = calloc(1, sizeof(*a));
	if (!a) {
		err = -ENOMEM;
		goto out;
	}
	a->fd = -1;
	a->snaplen = o->snaplen;
	ifindex = (int)if_nametoindex(o->iface);
	if (!ifindex) {
		err = -ENODEV;
		snprintf(errbuf, FV_SOURCE_ERRBUF, "%.64s: no such interface",
			 o->iface);
		goto out_free;
	}
	/* Protocol 0: the socket receives nothing until bind(). */
	a->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (a->fd < 0) {
		err = -errno;
		if (errno == EPERM || errno == EACCES)
			snprintf(errbuf, FV_SOURCE_ERRBUF,
				 "%.64s: need CAP_NET_RAW (run as root)",
				 o->iface);
		else
			snprintf(errbuf, FV_SOURCE_ERRBUF,
				 "AF_PACKET socket: %s", strerror(errno));
		goto out_free;
	}
	err = afp_linktype(a->fd, o->iface, &s->linktype, &a->skip_outgoing,
			   errbuf);
	if (err)
		goto out_close;
	a->ether = s->linktype == FV_LINKTYPE_ETHER;
	err = afp_compile(o, s->linktype, &prog, &compiled, &keep, errbuf);
	if (err)
		goto out_close;
	err = afp_attach(a->fd, &none);
	if (err) {
		snprintf(errbuf, FV_SOURCE_ERRBUF, "SO_ATTACH_FILTER: %s",
			 strerror(-err));
		goto out_prog;
	}
	val = TPACKET_V3;
	if (setsockopt(a->fd, SOL_PACKET, PACKET_VERSION, &val, sizeof(val)) <
	    0) {
		err = -errno;
		snprintf(errbuf, FV_SOURCE_ERRBUF, "TPACKET_V3: %s",
			 strerror(errno));
		goto out_prog;
	}
	val = FV_AFP_VLAN_LEN;
	if (setsockopt(a->fd, SOL_PACKET, PACKET_RESERVE, &val, sizeof(val)) <
	    0) {
		err = -errno;
		snprintf(errbuf, FV_SOURCE_ERRBUF, "PACKET_RESERVE: %s",
			 strerror(errno));
		goto out_prog;
	}
	afp_geometry(a, o->ring_bytes);
	memset(&req, 0, sizeof(req));
	req.tp_block_size = a->block_size;
	req.tp_block_nr = a->nblocks;
	req.tp_frame_size = FV_AFP_FRAME;
	req.tp_frame_nr = a->block_size / FV_AFP_FRAME * a->nblocks;
	req.tp_retire_blk_tov = FV_AFP_RETIRE_MS;
	if (setsockopt(a->fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) <
	    0) {
		err = -errno;
		snprintf(errbuf, FV_SOURCE_ERRBUF,
			 "%.64s: ring of %u x %u bytes: %s", o->iface,
			 a->nblocks, a->block_size, strerror(errno));
		goto out_prog;
	}
	a->ring_len = (size_t)a->block_size * a->nblocks;
	a->ring = mmap(NULL, a->ring_len, PROT_READ | PROT_WRITE, MAP_SHARED,
		       a->fd, 0);
	if (a->ring == MAP_FAILED) {
		a->ring = NULL;
		err = -errno;
		snprintf(errbuf, FV_SOURCE_ERRBUF, "mmap of the ring: %s",
			 strerror(errno));
		goto out_prog;
	}
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(ETH_P_ALL);
	sll.sll_ifindex = ifindex;
	if (bind(a->fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		err = -errno;
		snprintf(errbuf, FV_SOURCE_ERRBUF, "%.64s: bind: %s", o->iface,
			 strerror(errno));
		goto out_prog;
	}
	if (o->nworkers > 1) {
		err = afp_fanout(a, o, errbuf);
		if (err)
			goto out_prog;
	}
	if (o->promisc) {
		memset(&mr, 0, sizeof(mr));
		mr.mr_ifindex = ifindex;
		mr.mr_type = PACKET_MR_PROMISC;
		if (setsockopt(a->fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr,
			       sizeof(mr)) < 0) {
			err = -errno;
			snprintf(errbuf, FV_SOURCE_ERRBUF,
				 "%.64s: promiscuous mode: %s", o->iface,
				 strerror(errno));
			goto out_prog;
		}
	}
	err = afp_attach(a->fd, &prog);
	if (err) {
		snprintf(errbuf, FV_SOURCE_ERRBUF, "%.64s: filter: %s",
			 o->iface, strerror(-err));
		goto out_prog;
	}
	if (compiled)
		pcap_freecode(&prog);
	snprintf(s->name, sizeof(s->name), "%s", o->iface);
	s->priv = a;
	return 0;

out_prog:
	if (compiled)
		pcap_freecode(&prog);
out_close:
	if (a->ring)
		munmap(a->ring, a->ring_len);
	close(a->fd);
out_free:
	free(a);
out:
	return err;
}

const struct fv_source_ops fv_afpacket_ops = {
	.abi = FV_SOURCE_ABI,
	.open = afp_open,
	.poll = afp_poll,
	.stats = afp_stats,
	.close = afp_close,
};
