/*
 * libFuzzer harness for fv_decode() and fv_community_id().
 *
 * Input: 2 bytes choosing the link type (big-endian, modulo the list
 * below, which holds every link type decode.h names plus one it does
 * not), then the frame. Besides the sanitizers, it checks what decode.h
 * promises: the return code agrees with the key's family, the offsets
 * lie inside the frame, and a keyed packet has a Community ID.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "capture/decode.h"
#include "common/fv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int linktypes[] = {1,   0,	  108, 101, 12,	 14, 228,
				229, 113, 276, 9,   239, 105};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t nlt = sizeof(linktypes) / sizeof(linktypes[0]);
	struct fv_pkt pkt;
	uint32_t caplen;
	char id[64];
	int lt, rc;

	if (size < 2)
		return 0;
	lt = linktypes[fv_be16(data) % nlt];
	data += 2;
	size -= 2;
	caplen = size > UINT32_MAX ? UINT32_MAX : (uint32_t)size;
	rc = fv_decode(lt, data, caplen, &pkt);
	if ((rc == 0) != (pkt.key.family != 0))
		abort();
	if (rc != 0 && rc != FV_EFORMAT)
		abort();
	if (pkt.key.family != 0 && pkt.key.family != 4 && pkt.key.family != 6)
		abort();
	if (pkt.l3_off > caplen || pkt.l4_off > caplen ||
	    (uint32_t)pkt.payload_off + pkt.payload_len > caplen)
		abort();
	if (pkt.l4_off && pkt.l4_off < pkt.l3_off)
		abort();
	if ((pkt.flags & FV_PKT_FRAG_LATER) &&
	    ((pkt.flags & FV_PKT_L4) || pkt.key.sport || pkt.key.dport))
		abort();
	if (pkt.key.family == 4 &&
	    (memcmp(pkt.key.saddr + 4, (uint8_t[12]){0}, 12) ||
	     memcmp(pkt.key.daddr + 4, (uint8_t[12]){0}, 12)))
		abort();
	rc = fv_community_id(&pkt, 0, id, sizeof(id));
	if ((rc == 0) != (pkt.key.family != 0))
		abort();
	if (rc == 0 && (strlen(id) != 30 || id[0] != '1' || id[1] != ':'))
		abort();
	return 0;
}
