// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for the Istio AuthorizationPolicy / PeerAuthentication loader of lib/rbac:
 * any byte string goes through zm_rbac_load_buf(), which must return 0 or -errno without
 * crashing, hanging or leaking, and say why when it refuses. What loads is then evaluated
 * against a fixed connection to a workload in "default" (labels app=web), so a policy the
 * loader accepted but left half-built shows up in the evaluator. Seeds: tests/data/policies/
 * and the AuthorizationPolicies of tests/data/l7/ (see fuzz_rbac_yaml.seeds).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "rbac/rbac.h"

static void fuzz_rbac_eval(const struct zm_rbac_set *set)
{
	static struct zm_cfg_label labels[] = {{"app", "web"}};
	struct zm_cfg_workload wl = {.uid = "default/web-0",
				     .name = "web-0",
				     .namespace = "default",
				     .labels = labels,
				     .n_labels = 1};
	const struct zm_rbac_set *sets[] = {set};
	struct zm_rbac_sources src = {.sets = sets, .n_sets = 1};
	struct zm_rbac_conn conn = {
	    .dst_port = 8080, .identity = "spiffe://cluster.local/ns/client/sa/sleep", .dst = &wl};
	struct zm_rbac_result r;
	size_t i;

	zm_addr_parse("10.0.0.1", &conn.src_ip);
	zm_addr_parse("10.0.0.2", &conn.dst_ip);
	for (i = 0; i < set->n_policies; i++) {
		zm_rbac_policy_applies(&set->policies[i], &wl);
		zm_rbac_policy_matches(&set->policies[i], &conn);
	}
	zm_rbac_evaluate(&src, &conn, &r);
	if (!memchr(r.reason, '\0', sizeof(r.reason)) || !memchr(r.policy, '\0', sizeof(r.policy)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zm_rbac_set *set = NULL;
	char err[1024];
	int r;

	r = zm_rbac_load_buf("fuzz.yaml", (const char *)data, size, &set, err, sizeof(err));
	if (r == 0) {
		if (!set)
			abort();
		fuzz_rbac_eval(set);
		zm_rbac_set_free(set);
		return 0;
	}
	if ((r != -EINVAL && r != -ENOMEM && r != -EFBIG) || !memchr(err, '\0', sizeof(err)))
		abort();
	if (r == -EINVAL && !err[0])
		abort(); /* every refusal says why */
	return 0;
}
