/*
 * fuzz_filter - libFuzzer harness for the flow filter compiler.
 *
 * Input: the bytes of a filter expression (a NUL-terminated copy is
 * compiled, so an embedded NUL ends it as it would in a C string). When
 * it compiles, the filter is matched against a few fixed flows of each
 * family and the plan is computed; when it does not, the error must lie
 * inside the text and carry a message.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/fv.h"
#include "index/filter.h"

static void fill(struct fv_flow *f, int family, uint8_t proto, uint16_t sp,
		 uint16_t dp)
{
	memset(f, 0, sizeof(*f));
	f->id = (uint64_t)sp << 16 | dp;
	f->key.family = (uint8_t)family;
	f->key.proto = proto;
	f->key.sport = sp;
	f->key.dport = dp;
	f->key.vlan = 100;
	if (family == 4) {
		f->key.saddr[0] = 10;
		f->key.saddr[3] = 1;
		f->key.daddr[0] = 192;
		f->key.daddr[1] = 168;
		f->key.daddr[3] = 7;
	} else {
		f->key.saddr[0] = 0x20;
		f->key.saddr[1] = 0x01;
		f->key.saddr[2] = 0x0d;
		f->key.saddr[3] = 0xb8;
		f->key.saddr[15] = 1;
		memset(f->key.daddr, 0xff, 16);
	}
	f->pkts[0] = 10;
	f->pkts[1] = UINT64_MAX;
	f->bytes[0] = 1500;
	f->bytes[1] = UINT64_MAX - 1;
	f->tcp_flags[0] = 0x02;
	f->tcp_flags[1] = 0x12;
	f->icmp_type = 8;
	f->first_ns = 1700000000ULL * FV_NSEC_PER_SEC;
	f->last_ns = f->first_ns + 2500000000ULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fv_filter *f = NULL;
	struct fv_filter_error err;
	struct fv_filter_plan plan;
	struct fv_flow flows[4];
	char *expr;
	int rc;

	expr = malloc(size + 1);
	if (!expr)
		return 0;
	memcpy(expr, data, size);
	expr[size] = '\0';
	fill(&flows[0], 4, 6, 51000, 443);
	fill(&flows[1], 6, 17, 53, 53);
	fill(&flows[2], 4, 1, 0x1234, 0x1234);
	fill(&flows[3], 6, 47, 0, 0);
	flows[3].last_ns = 0; /* before first_ns */
	rc = fv_filter_compile(expr, &f, &err);
	if (rc == 0) {
		for (int i = 0; i < 4; i++)
			(void)fv_filter_match(f, &flows[i]);
		fv_filter_plan(f, &plan);
		if (plan.kind != FV_PLAN_NONE && plan.kind != FV_PLAN_HOST &&
		    plan.kind != FV_PLAN_PORT && plan.kind != FV_PLAN_FLOW)
			abort();
		fv_filter_free(f);
	} else {
		size_t len = strlen(expr);

		if (rc != FV_EFILTER && rc != -ENOMEM)
			abort();
		if (rc == FV_EFILTER &&
		    (err.pos < 0 || err.len < 0 ||
		     (size_t)err.pos + (size_t)err.len > len ||
		     !memchr(err.msg, '\0', sizeof(err.msg)) || !err.msg[0]))
			abort();
		if (f)
			abort();
	}
	free(expr);
	return 0;
}
