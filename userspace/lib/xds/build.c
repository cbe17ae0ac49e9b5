// SPDX-License-Identifier: Apache-2.0
/*
 * Held xDS resources into one finalized struct zm_config. Every object translated from
 * resource i (Address store first, then Authorization) carries line i + 1, so a finalize
 * error ("xds:LINE: path: problem") names the resource it is about: an address or VIP used
 * twice, a waypoint naming an unknown service. Service and policy references of workloads
 * resolve leniently (they may arrive in a later push, as in the reference).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errf.h"
#include "internal.h"

/* Count and translate; every resource was validated on arrival, so failures here are rare. */
static int xds_fill(struct zm_config *cfg, const struct xds_res *a, size_t n_a,
		    const struct xds_res *b, size_t n_b, char *err, size_t len)
{
	size_t nw = 0, ns = 0, i;
	char e[256];
	int r;

	for (i = 0; i < n_a; i++) {
		const Istio__Workload__Address *ad = (const void *)a[i].msg;

		if (ad->type_case == ISTIO__WORKLOAD__ADDRESS__TYPE_WORKLOAD)
			nw++;
		else
			ns++;
	}
	cfg->workloads = zm_config_calloc(cfg, nw ?: 1, sizeof(*cfg->workloads));
	cfg->services = zm_config_calloc(cfg, ns ?: 1, sizeof(*cfg->services));
	cfg->policies = zm_config_calloc(cfg, n_b ?: 1, sizeof(*cfg->policies));
	if (!cfg->workloads || !cfg->services || !cfg->policies)
		return zm_errf(err, len, -ENOMEM, "out of memory");
	for (i = 0; i < n_a; i++) {
		const Istio__Workload__Address *ad = (const void *)a[i].msg;

		if (ad->type_case == ISTIO__WORKLOAD__ADDRESS__TYPE_WORKLOAD)
			r = xds_tr_workload(cfg, ad->workload, &cfg->workloads[cfg->n_workloads++],
					    (unsigned int)i + 1, e, sizeof(e));
		else
			r = xds_tr_service(cfg, ad->service, &cfg->services[cfg->n_services++],
					   (unsigned int)i + 1, e, sizeof(e));
		if (r)
			return zm_errf(err, len, r, "xds:%zu: %s", i + 1,
				       r == -ENOMEM ? "out of memory" : e);
	}
	for (i = 0; i < n_b; i++) {
		r = xds_tr_policy(cfg, (const void *)b[i].msg, &cfg->policies[cfg->n_policies++],
				  (unsigned int)(n_a + i) + 1, e, sizeof(e));
		if (r)
			return zm_errf(err, len, r, "xds:%zu: %s", n_a + i + 1,
				       r == -ENOMEM ? "out of memory" : e);
	}
	return 0;
}

/* Flag the resources named by "xds:LINE:" at the start of each error line. */
static void xds_mark_bad(const char *msgs, bool *bad, size_t n)
{
	for (const char *p = msgs; p && *p;) {
		unsigned long line;
		char *end;

		if (!strncmp(p, "xds:", 4)) {
			line = strtoul(p + 4, &end, 10);
			if (end != p + 4 && *end == ':' && line >= 1 && line <= n)
				bad[line - 1] = true;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
}

int xds_build_from(const struct xds_res *a, size_t n_a, const struct xds_res *b, size_t n_b,
		   struct zm_config **out, bool **bad, char *err, size_t len)
{
	struct zm_cfg_errors errs;
	struct zm_config *cfg;
	int r;

	*out = NULL;
	if (bad)
		*bad = NULL;
	cfg = zm_config_new("xds");
	if (!cfg)
		return zm_errf(err, len, -ENOMEM, "out of memory");
	cfg->lenient_refs = true;
	r = xds_fill(cfg, a, n_a, b, n_b, err, len);
	if (!r) {
		zm_cfg_errors_init(&errs, "xds", err, len);
		r = zm_config_finalize(cfg, &errs);
		zm_cfg_errors_finish(&errs);
	}
	if (r && bad && (*bad = calloc(n_a + n_b + 1, sizeof(bool))))
		xds_mark_bad(err, *bad, n_a + n_b);
	if (r) {
		zm_config_free(cfg);
		return r;
	}
	*out = cfg;
	return 0;
}
