/*
 * libFuzzer harness for the pcap reader path: the input bytes are a
 * capture file, written to a memfd and opened with libpcap's
 * pcap_fopen_offline() (pcap or pcapng), and every frame libpcap hands
 * out is decoded with fv_decode() and given a Community ID, with the
 * link type libpcap reports, from a buffer of exactly caplen bytes.
 */
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "capture/decode.h"
#include "common/fv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Frames read per input at most, so a slow input stays short. */
#define MAX_FRAMES 10000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char errbuf[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *h;
	const u_char *frame;
	pcap_t *pc;
	FILE *f;
	int fd, lt, n = 0;

	fd = memfd_create("fuzz_pcap", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	if (size && write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	if (lseek(fd, 0, SEEK_SET) != 0) {
		close(fd);
		return 0;
	}
	f = fdopen(fd, "rb");
	if (!f) {
		close(fd);
		return 0;
	}
	pc = pcap_fopen_offline(f, errbuf);
	if (!pc) {
		fclose(f);
		return 0;
	}
	/* pc owns f from here: pcap_close() closes it. */
	lt = pcap_datalink(pc);
	while (n++ < MAX_FRAMES && pcap_next_ex(pc, &h, &frame) == 1) {
		uint8_t *copy = malloc(h->caplen ? h->caplen : 1);
		struct fv_pkt pkt;
		char id[64];
		int rc;

		if (!copy)
			break;
		memcpy(copy, frame, h->caplen);
		rc = fv_decode(lt, copy, h->caplen, &pkt);
		free(copy);
		if ((rc == 0) != (pkt.key.family != 0))
			abort();
		if (pkt.l3_off > h->caplen ||
		    (uint32_t)pkt.payload_off + pkt.payload_len > h->caplen)
			abort();
		if (fv_community_id(&pkt, 0, id, sizeof(id)) != rc)
			abort();
	}
	pcap_close(pc);
	return 0;
}
