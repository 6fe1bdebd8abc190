/*
 * fuzz_pcapng.c - any bytes given to fv_capfile_open() as a file
 * (a memfd, opened by its /proc/self/fd/N path as a user's file would be)
 * must give packets and then 0 or an error with a sentence: never a crash,
 * an out-of-bounds read or a hang. Every packet byte is read, so ASan sees
 * a caplen that overruns the reader's buffer.
 *
 * Seeds (tests/fuzz/corpus/fuzz_pcapng/) are the hand-built files of
 * tests/unit/test_capfile.c: FV_WRITE_SEEDS=DIR build/tests/test_capfile
 * regenerates them.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "capture/capfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fv_capfile_pkt pkt;
	struct fv_capfile *cf;
	char path[64], errbuf[256];
	volatile uint8_t sink = 0;
	unsigned long n = 0;
	size_t off = 0;
	int fd, ret;

	fd = memfd_create("fuzz_pcapng", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	while (off < size) {
		ssize_t w = write(fd, data + off, size - off);

		if (w <= 0)
			goto out_close;
		off += (size_t)w;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	errbuf[0] = '\0';
	ret = fv_capfile_open(&cf, path, errbuf);
	if (ret) {
		if (!errbuf[0])
			__builtin_trap(); /* an error must say why */
		goto out_close;
	}
	for (unsigned i = 0; i < fv_capfile_niface(cf); i++)
		sink ^= (uint8_t)fv_capfile_iface(cf, i)->name[0];
	while ((ret = fv_capfile_next(cf, &pkt, errbuf)) == 1) {
		const struct fv_capfile_iface *ifc;

		for (uint32_t i = 0; i < pkt.caplen; i++)
			sink ^= pkt.data[i];
		ifc = fv_capfile_iface(cf, pkt.iface);
		if (!ifc || ifc->linktype != pkt.linktype ||
		    pkt.iface >= fv_capfile_niface(cf))
			__builtin_trap();
		if (fv_capfile_offset(cf) > size)
			__builtin_trap();
		n++;
	}
	if (ret < 0 && !errbuf[0])
		__builtin_trap();
	sink ^= (uint8_t)fv_capfile_format(cf)[0];
	(void)fv_capfile_size(cf);
	fv_capfile_close(cf);
out_close:
	close(fd);
	(void)n;
	(void)sink;
	return 0;
}
