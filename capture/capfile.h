/*
 * capfile.h - reading capture files and writing pcap / pcapng.
 *
 * Reading: classic pcap (microsecond and nanosecond magic, both byte
 * orders) goes through libpcap, opened with nanosecond precision.
 * pcapng goes through our own reader, because libpcap 1.10 refuses a
 * pcapng whose interfaces differ in link type or snap length: it reads
 * every section, every interface (link type, snaplen, if_tsresol,
 * if_tsoffset, name) and Enhanced, Simple and obsolete Packet Blocks.
 * Timestamps come out in ns since the epoch.
 *
 * Writing: pcap with the nanosecond magic (0xa1b23c4d) or pcapng (an
 * Interface Description Block per interface, if_tsresol = 9), so the
 * output keeps every timestamp to the nanosecond.
 */
#ifndef FV_CAPTURE_CAPFILE_H
#define FV_CAPTURE_CAPFILE_H

#include <stdint.h>
#include <stdio.h>

struct fv_capfile;

struct fv_capfile_iface {
	int linktype; /* LINKTYPE_* */
	uint32_t snaplen;
	char name[64]; /* if_name, or "" */
};

/* One packet; data is owned by the reader and valid until the next call. */
struct fv_capfile_pkt {
	uint64_t ts_ns;
	uint32_t caplen;
	uint32_t origlen;
	uint32_t iface; /* index into the file's interfaces */
	int linktype;
	const uint8_t *data;
};

/*
 * Opens path ("-" for standard input). Returns 0 and *out, or an error
 * (-errno, FV_EFORMAT for a file that is not pcap/pcapng, FV_ETRUNC for a
 * header cut short) with a human sentence in errbuf (>= 256 bytes).
 */
int fv_capfile_open(struct fv_capfile **out, const char *path, char *errbuf);

/*
 * Reads the next packet. Returns 1 and *pkt, 0 at the end of the file,
 * or an error (FV_ETRUNC: the file ends inside a record; FV_EFORMAT: a
 * block or record is invalid) with a sentence in errbuf. Packets before
 * an error have been returned and stay valid input.
 */
int fv_capfile_next(struct fv_capfile *cf, struct fv_capfile_pkt *pkt,
		    char *errbuf);

/*
 * Starts reading ahead: a thread of the reader's own runs libpcap over
 * the file and queues the packets in batches (a few hundred KiB in all),
 * so that fv_capfile_next() hands out packets read while the caller was
 * busy with the ones before. Packets, their order, the errors and where
 * they occur are the same as without it; a packet's data then stays
 * valid until the next call, as before. Call it once, right after
 * fv_capfile_open() and before any fv_capfile_next(); the file is then
 * used by one thread, the caller's (apart from the reader's own).
 * pcapng input is read on the caller's thread as before (returns 0).
 * Returns 0 or -errno (reading then goes on without it).
 */
int fv_capfile_readahead(struct fv_capfile *cf);

unsigned fv_capfile_niface(const struct fv_capfile *cf);
const struct fv_capfile_iface *fv_capfile_iface(const struct fv_capfile *cf,
						unsigned i);
/* "pcap/usec", "pcap/nsec" or "pcapng". */
const char *fv_capfile_format(const struct fv_capfile *cf);
/* Bytes of the file consumed so far (with read-ahead: up to the batch
 * of the last packet returned), and its size (0 if unknown). */
uint64_t fv_capfile_offset(const struct fv_capfile *cf);
uint64_t fv_capfile_size(const struct fv_capfile *cf);
void fv_capfile_close(struct fv_capfile *cf);

/*
 * The libpcap DLT_ number for a LINKTYPE_ number, for pcap_open_dead():
 * the two differ for a few historical types (LINKTYPE_RAW 101 is DLT_RAW
 * 12 on Linux). Returns linktype itself where they agree.
 */
int fv_linktype_to_dlt(int linktype);

/* ---- writing ---- */

enum fv_pcapw_format { FV_PCAPW_PCAP, FV_PCAPW_PCAPNG };

struct fv_pcapw;

/*
 * Starts a capture file on f (not closed by the writer). For pcap the
 * file's link type is linktype and every packet must have it; pcapng
 * adds an interface per distinct (linktype, snaplen) seen. Returns 0 or
 * -errno.
 */
int fv_pcapw_open(struct fv_pcapw **out, FILE *f, enum fv_pcapw_format fmt,
		  int linktype, uint32_t snaplen);

/* Writes one packet. Returns 0, -EINVAL for a link type that a pcap
 * output cannot hold or a time that does not fit, or -errno. */
int fv_pcapw_write(struct fv_pcapw *w, int linktype, uint64_t ts_ns,
		   uint32_t caplen, uint32_t origlen, const uint8_t *data);

/* Flushes and frees the writer. Returns 0 or -errno of a failed write. */
int fv_pcapw_close(struct fv_pcapw *w);

#endif
