// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for the local config loader: any byte string goes through
 * zm_config_load_buf(), which must return 0 or -errno without crashing, hanging or leaking, and
 * must leave a terminated message on failure. On success the lookups are exercised on every
 * indexed address and key so a bad index shows up here too. Seed corpus: tests/data/config/.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

static void fuzz_config_lookups(const struct zm_config *cfg)
{
	char id[512];
	size_t i, j;

	for (i = 0; i < cfg->n_workloads; i++) {
		const struct zm_cfg_workload *w = &cfg->workloads[i];

		if (zm_config_workload_by_uid(cfg, w->uid) != w)
			abort(); /* uids are unique once finalized */
		for (j = 0; j < w->n_ips; j++)
			if (w->network_mode != ZM_CFG_NETMODE_HOST_NETWORK &&
			    zm_config_workload_by_ip(cfg, w->network, &w->ips[j].addr) != w)
				abort();
		for (j = 0; j < w->n_services; j++)
			if (!w->services[j].service)
				abort(); /* references are resolved */
		zm_cfg_workload_identity(w, id, sizeof(id));
	}
	for (i = 0; i < cfg->n_services; i++) {
		const struct zm_cfg_service *s = &cfg->services[i];

		if (zm_config_service_by_key(cfg, s->key) != s)
			abort();
		for (j = 0; j < s->n_vips; j++)
			if (zm_config_service_by_vip(cfg, s->vips[j].vip.network,
						     &s->vips[j].vip.addr) != s)
				abort();
	}
	for (i = 0; i < cfg->n_policies; i++)
		if (zm_config_policy_by_key(cfg, cfg->policies[i].key) != &cfg->policies[i])
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zm_config *cfg = NULL;
	char err[1024];
	int r;

	r = zm_config_load_buf("fuzz.yaml", (const char *)data, size, &cfg, err, sizeof(err));
	if (r == 0) {
		if (!cfg)
			abort();
		fuzz_config_lookups(cfg);
		zm_config_free(cfg);
		return 0;
	}
	if (cfg || (r != -EINVAL && r != -ENOMEM && r != -EFBIG) || !memchr(err, '\0', sizeof(err)))
		abort();
	if (r == -EINVAL && !err[0])
		abort(); /* every refusal says why */
	return 0;
}
