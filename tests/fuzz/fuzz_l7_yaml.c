// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for the waypoint's L7 config loader (lib/l7: VirtualService,
 * DestinationRule, AuthorizationPolicy, HTTPRoute, GRPCRoute and Gateway documents, and the
 * attachment of Gateway API routes to their parents): any byte string goes through
 * l7_config_load_buf() without a mesh config (no host checks), which must return 0 or -errno
 * without crashing, hanging or leaking, and say why when it refuses. Regexes go through
 * PCRE2, so a pattern that compiles slowly shows up as a timeout here. Seeds: tests/data/l7/
 * (see fuzz_l7_yaml.seeds).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "l7/l7.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct l7_config *cfg = NULL;
	char err[1024];
	int r;

	r = l7_config_load_buf("fuzz.yaml", (const char *)data, size, NULL, &cfg, err, sizeof(err));
	if (r == 0) {
		if (!cfg)
			abort();
		l7_config_free(cfg);
		return 0;
	}
	if (r > 0 || !memchr(err, '\0', sizeof(err)))
		abort();
	if (r == -EINVAL && !err[0])
		abort(); /* every refusal says why */
	return 0;
}
