/*
 * capfile_int.h - what capfile.c and pcapng.c share. Not for other
 * modules: they use capfile.h.
 *
 * capfile.c opens the input, reads its first bytes to tell pcap from
 * pcapng and hands a pcapng stream to the reader below together with
 * the bytes it already consumed (so a pipe loses nothing).
 */
#ifndef FV_CAPTURE_CAPFILE_INT_H
#define FV_CAPTURE_CAPFILE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "capture/capfile.h"

/* First four bytes of a pcapng file: the Section Header Block type. */
#define FV_PCAPNG_SHB_TYPE 0x0A0D0D0Au

/* The largest block the pcapng reader accepts (Wireshark's limit too). */
#define FV_PCAPNG_MAX_BLOCK (16u * 1024 * 1024)

/* The most interfaces one file may declare (all sections together). */
#define FV_PCAPNG_MAX_IFACES 65536u

/* Size of the reads from the file, and of the stdio buffer for libpcap. */
#define FV_CAPFILE_READ_CHUNK (1u << 20)

struct fv_pcapng;

/*
 * Starts reading pcapng from fd, whose first nhead bytes (>= 4, the SHB
 * type) were already read into head. Takes fd in every case (closed by
 * fv_pcapng_close, or here on failure). Reads the first Section Header
 * Block and the Interface Description Blocks that follow it. Returns 0 or
 * an error with a sentence in errbuf (>= 256 bytes).
 */
int fv_pcapng_open(struct fv_pcapng **out, int fd, const uint8_t *head,
		   size_t nhead, char *errbuf);

/* As fv_capfile_next(). */
int fv_pcapng_next(struct fv_pcapng *ng, struct fv_capfile_pkt *pkt,
		   char *errbuf);

/*
 * Interfaces seen so far. The list only grows; a returned pointer stays
 * valid until fv_pcapng_close.
 */
unsigned fv_pcapng_niface(const struct fv_pcapng *ng);
const struct fv_capfile_iface *fv_pcapng_iface(const struct fv_pcapng *ng,
					       unsigned i);

/* Bytes of the file consumed (whole blocks returned or skipped). */
uint64_t fv_pcapng_offset(const struct fv_pcapng *ng);

/* Frees the reader and closes its fd. NULL is allowed. */
void fv_pcapng_close(struct fv_pcapng *ng);

#endif
