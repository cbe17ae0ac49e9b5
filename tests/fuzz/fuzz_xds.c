// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for the xDS client (lib/xds): the input is split at "\n--\n" markers into
 * DeltaDiscoveryResponses handed one after another to one struct zm_xds, so a sequence
 * exercises updates, removals and rejections against what earlier ones left. Every message
 * must be answered (ACK/NACK that decodes back) or refused with -EPROTO, the held resources
 * must always build into a finalized model, and nothing may crash or leak (ASan/UBSan).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "xds/xds.h"

static void fuzz_one(struct zm_xds *x, const uint8_t *p, size_t n)
{
	uint8_t *copy = malloc(n ? n : 1), *reply = NULL;
	Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *rq;
	struct zm_config *cfg;
	static char log[8192], err[8192];
	size_t rl = 0;
	bool changed;
	int r;

	if (!copy)
		abort();
	memcpy(copy, p, n);
	r = zm_xds_handle(x, copy, n, &reply, &rl, &changed, log, sizeof(log));
	free(copy);
	if (r && r != -EPROTO && r != -ENOMEM)
		abort();
	if (!r) {
		rq =
		    envoy__service__discovery__v3__delta_discovery_request__unpack(NULL, rl, reply);
		if (!rq)
			abort(); /* our own ACK/NACK must decode */
		envoy__service__discovery__v3__delta_discovery_request__free_unpacked(rq, NULL);
	}
	free(reply);
	r = zm_xds_build(x, &cfg, err, sizeof(err));
	if (r && r != -ENOMEM)
		abort(); /* the held store always finalizes */
	zm_config_free(cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zm_xds_node node = {.ip = "198.18.0.1", .pod_name = "z", .namespace = "ns"};
	struct zm_xds *x = zm_xds_new(&node);
	const uint8_t *p = data, *end = data + size;
	uint8_t *buf;
	size_t len;

	if (!x)
		return 0;
	while (p <= end) {
		const uint8_t *m = memmem(p, (size_t)(end - p), "\n--\n", 4);
		const uint8_t *stop = m ? m : end;

		fuzz_one(x, p, (size_t)(stop - p));
		if (!m)
			break;
		p = m + 4;
	}
	for (int t = 0; t < ZM_XDS_N_TYPES; t++)
		if (!zm_xds_initial_request(x, (enum zm_xds_type)t, &buf, &len))
			free(buf);
	free(zm_xds_dump(x));
	zm_xds_free(x);
	return 0;
}
