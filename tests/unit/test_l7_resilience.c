// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of what tests/integration/waypoint-resilience.sh relies on in the L7 model: its
 * route file loads against bookinfo, and each route carries the timeout, retry policy
 * (attempts, perTryTimeout, retryOn bits), mirror with its percentage, redirect, rewrite and
 * header operations, and the DestinationRule's outlier detection, with the values written.
 * A mismatch here would make an integration failure hard to place. Runs from the repo root.
 */
#include <stdio.h>
#include <string.h>

#include "../lib/tap.h"
#include "config/config.h"
#include "l7/l7.h"

#define ERRLEN 8192

static const struct l7_http_route *route(const struct l7_vs *vs, const char *name)
{
	size_t i;

	for (i = 0; vs && i < vs->n_http; i++)
		if (vs->http[i].name && !strcmp(vs->http[i].name, name))
			return &vs->http[i];
	tap_bail("no route %s", name);
	return NULL;
}

int main(void)
{
	const char *f = "tests/data/l7/waypoint-resilience.yaml";
	const struct l7_http_route *r;
	struct l7_config *cfg = NULL;
	struct zm_config *mesh;
	const struct l7_vs *vs;
	const struct l7_dr *dr;
	char err[ERRLEN];

	if (zm_config_load_file("tests/data/l7/bookinfo-mesh.yaml", &mesh, err, sizeof(err)))
		tap_bail("bookinfo-mesh.yaml: %s", err);
	if (!is_int(l7_config_load(&f, 1, mesh, &cfg, err, sizeof(err)), 0,
		    "waypoint-resilience.yaml loads"))
		tap_bail("%s", err);
	vs = l7_vs_find(cfg, "reviews.default.svc.cluster.local");
	ok(vs != NULL, "the reviews VirtualService");
	is_int(route(vs, "timeout")->timeout_ms, 500, "timeout 500ms");
	r = route(vs, "retry");
	ok(r->retries_set, "retries set");
	is_int(r->retries.attempts, 3, "attempts 3");
	is_int(r->retries.per_try_timeout_ms, 2000, "perTryTimeout 2s");
	is_int(r->retries.retry_on, L7_RETRY_5XX, "retryOn 5xx");
	r = route(vs, "pertry");
	is_int(r->retries.per_try_timeout_ms, 300, "perTryTimeout 300ms");
	is_int(r->retries.retry_on, L7_RETRY_5XX | L7_RETRY_RESET, "retryOn 5xx,reset");
	r = route(vs, "mirror");
	is_str(r->mirrors[0].dest.host, "reviews.default.svc.cluster.local",
	       "mirror host qualified");
	is_str(r->mirrors[0].dest.subset, "v3", "mirror subset");
	ok(r->mirrors[0].dest.service != NULL, "mirror resolved to the service");
	ok(r->mirrors[0].pct == 100.0, "mirrorPercentage 100");
	r = route(vs, "redirect");
	ok(r->redirect.set && r->redirect.code == 302, "redirect 302");
	is_str(r->redirect.uri, "/moved/here", "redirect uri");
	is_str(r->redirect.authority, "new.example.com", "redirect authority");
	is_str(route(vs, "rewrite")->rewrite.uri, "/new/", "rewrite uri");
	r = route(vs, "headers");
	is_int((int)r->req_ops.n_set, 1, "request set");
	is_int((int)r->req_ops.n_add, 1, "request add");
	is_str(r->req_ops.remove[0], "x-remove-me", "request remove");
	is_str(r->resp_ops.remove[0], "x-pod", "response remove");
	dr = l7_dr_find(cfg, "reviews.default.svc.cluster.local");
	ok(dr && dr->policy.outlier.set, "outlierDetection set");
	is_int(dr->policy.outlier.consecutive_5xx, 2, "consecutive5xxErrors 2");
	is_int(dr->policy.outlier.base_ejection_ms, 60000, "baseEjectionTime 60s");
	is_int(dr->policy.lb, L7_LB_ROUND_ROBIN, "ROUND_ROBIN");
	ok(dr && l7_policy_for(dr, l7_dr_subset(dr, "v1"))->outlier.set,
	   "subsets without a policy inherit the rule's outlier detection");
	l7_config_free(cfg);
	zm_config_free(mesh);
	return tap_done();
}
