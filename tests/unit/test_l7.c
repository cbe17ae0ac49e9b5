// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of the waypoint's L7 model (userspace/lib/l7): our bookinfo routing files
 * (tests/data/samples, in Istio's formats and file names; `make test-samples` loads Istio's own
 * through the binaries) load, tests/data/l7/full.yaml translates every
 * field, tables pin route matching, weighted choice, authorization and subset endpoints, and
 * broken inputs give their exact "FILE:LINE: field: problem" messages. Runs from the repo root.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/tap.h"
#include "config/config.h"
#include "l7/l7.h"

#define ERRLEN	 8192
#define BOOKINFO "tests/data/samples/bookinfo/networking/"

static struct zm_config *mesh;

static struct l7_config *load_samples(const char *const *names, size_t n, char *err)
{
	char paths[8][512];
	const char *files[8];
	struct l7_config *cfg = NULL;
	size_t i;
	int r;

	for (i = 0; i < n; i++) {
		snprintf(paths[i], sizeof(paths[i]), BOOKINFO "%s", names[i]);
		files[i] = paths[i];
	}
	r = l7_config_load(files, n, mesh, &cfg, err, ERRLEN);
	if (r)
		printf("# %s\n", err);
	return cfg;
}

static void test_samples(void)
{
	static const char *const vs[] = {
	    "virtual-service-all-v1.yaml",
	    "virtual-service-reviews-test-v2.yaml",
	    "virtual-service-reviews-50-v3.yaml",
	    "virtual-service-reviews-90-10.yaml",
	    "virtual-service-reviews-80-20.yaml",
	    "virtual-service-ratings-test-delay.yaml",
	    "virtual-service-ratings-test-abort.yaml",
	    "virtual-service-reviews-v3.yaml",
	    "virtual-service-reviews-jason-v2-v3.yaml",
	    "virtual-service-reviews-v2-v3.yaml",
	    "virtual-service-details-v2.yaml",
	    "fault-injection-details-v1.yaml",
	    "virtual-service-ratings-db.yaml",
	};
	char err[ERRLEN];
	size_t i;

	for (i = 0; i < sizeof(vs) / sizeof(vs[0]); i++) {
		const char *names[] = {vs[i], "destination-rule-all.yaml"};
		struct l7_config *cfg = load_samples(names, 2, err);

		ok(cfg, "bookinfo %s loads with destination-rule-all.yaml", vs[i]);
		l7_config_free(cfg);
	}
	{
		const char *names[] = {"destination-rule-all-mtls.yaml"};
		struct l7_config *cfg = load_samples(names, 1, err);

		ok(cfg && cfg->n_dr == 4, "destination-rule-all-mtls.yaml: 4 rules, tls accepted");
		l7_config_free(cfg);
	}
	{
		const char *names[] = {"virtual-service-reviews-test-v2.yaml"};
		struct l7_config *cfg = load_samples(names, 1, err);

		ok(!cfg, "reviews-test-v2 alone refused (no DestinationRule defines v2)");
		ok(strstr(err, "virtual-service-reviews-test-v2.yaml:13: "
			       "spec.http[0].route[0].destination: subset v2 of host "
			       "reviews.default.svc.cluster.local: no DestinationRule") != NULL,
		   "error names file, line, field, subset and host");
	}
}

static void test_full_translation(void)
{
	const struct l7_http_route *r;
	const struct l7_dr *dr;
	struct l7_config *cfg = NULL;
	char err[ERRLEN];
	const char *f = "tests/data/l7/full.yaml";
	int ret;

	ret = l7_config_load(&f, 1, mesh, &cfg, err, sizeof(err));
	if (!is_int(ret, 0, "full.yaml loads"))
		tap_bail("full.yaml: %s", err);
	is_int(cfg->n_vs, 1, "one VirtualService");
	is_str(cfg->vs[0].hosts[0], "reviews.default.svc.cluster.local", "short host qualified");
	is_int(cfg->vs[0].n_http, 5, "five http routes");
	r = &cfg->vs[0].http[0];
	is_str(r->name, "jason", "route name");
	is_int(r->matches[0].headers[0].m.kind, L7_STR_EXACT, "header exact");
	is_str(r->matches[0].headers[1].name, "x-trace", "presence header");
	is_int(r->matches[0].headers[1].m.kind, L7_STR_NONE, "{} is presence");
	is_int(r->matches[0].uri.kind, L7_STR_PREFIX, "uri prefix");
	is_int(r->matches[0].port, 9080, "match port");
	is_int(r->matches[0].query_params[0].m.kind, L7_STR_REGEX, "query regex");
	is_int(r->matches[0].n_without_headers, 1, "withoutHeaders");
	is_int(r->timeout_ms, 1500, "timeout 1.5s");
	is_int(r->retries.attempts, 3, "retries.attempts");
	is_int(r->retries.per_try_timeout_ms, 500, "perTryTimeout 500ms");
	is_int(r->retries.retry_on, L7_RETRY_5XX | L7_RETRY_CONNECT_FAILURE, "retryOn bits");
	is_str(r->req_ops.set[0].name, "x-route", "request set");
	is_str(r->req_ops.add[0].value, "1", "request add");
	is_str(r->req_ops.remove[0], "x-secret", "request remove");
	is_str(r->resp_ops.set[0].value, "waypoint", "response set");
	is_str(r->rewrite.uri, "/v2/", "rewrite uri");
	is_str(r->rewrite.authority, "reviews-v2", "rewrite authority");
	ok(r->dests[0].service && !strcmp(r->dests[0].service->name, "reviews"),
	   "destination resolved to the mesh service");
	r = &cfg->vs[0].http[1];
	is_int(r->fault.delay_ms, 7000, "fault delay 7s");
	ok(r->fault.delay_pct == 12.5, "delay percentage 12.5");
	is_int(r->fault.abort_status, 503, "abort status");
	is_int(r->n_mirrors, 1, "one mirror");
	is_str(r->mirrors[0].dest.host, "ratings.default.svc.cluster.local", "mirror host");
	ok(r->mirrors[0].pct == 25, "mirrorPercentage 25");
	is_int(r->total_weight, 100, "weights 70+30");
	is_int(r->dests[0].port, 9080, "destination port");
	r = &cfg->vs[0].http[2];
	ok(r->redirect.set && r->redirect.code == 302 && !strcmp(r->redirect.uri, "/new"),
	   "redirect uri + code");
	r = &cfg->vs[0].http[3];
	ok(r->direct.status == 418 && !strcmp(r->direct.body, "short and stout"), "directResponse");
	dr = l7_dr_find(cfg, "reviews.default.svc.cluster.local");
	ok(dr && dr->policy.lb == L7_LB_ROUND_ROBIN, "DR loadBalancer ROUND_ROBIN");
	ok(dr && dr->policy.pool.max_connections == 100 &&
	       dr->policy.pool.connect_timeout_ms == 2000 &&
	       dr->policy.pool.http1_max_pending == 10 &&
	       dr->policy.pool.max_requests_per_conn == 5 &&
	       dr->policy.pool.idle_timeout_ms == 30000,
	   "DR connectionPool limits");
	ok(dr && dr->policy.outlier.set && dr->policy.outlier.consecutive_5xx == 3 &&
	       dr->policy.outlier.interval_ms == 5000 &&
	       dr->policy.outlier.base_ejection_ms == 60000,
	   "DR outlierDetection");
	ok(dr && l7_policy_for(dr, l7_dr_subset(dr, "v2"))->lb == L7_LB_RANDOM,
	   "subset v2 overrides the LB policy");
	ok(dr && l7_policy_for(dr, l7_dr_subset(dr, "v1"))->lb == L7_LB_ROUND_ROBIN,
	   "subset v1 inherits the rule's policy");
	ok(l7_dr_find(cfg, "ratings.default.svc.cluster.local")->policy.lb == L7_LB_LEAST_REQUEST,
	   "LEAST_REQUEST");
	is_int(cfg->n_authz, 2, "two AuthorizationPolicies");
	l7_config_free(cfg);
}

#define H(n, v)                                                                                    \
	{                                                                                          \
		n, v                                                                               \
	}

static void test_matching(void)
{
	static const struct l7_header jason[] = {H("end-user", "jason"), H("x-trace", "1")};
	static const struct l7_header other[] = {H("end-user", "bob"), H("x-trace", "1")};
	static const struct l7_header skip[] = {H("end-user", "jason"), H("x-trace", "1"),
						H("x-skip", "yes")};
	static const struct {
		const char *method, *path;
		const struct l7_header *h;
		size_t nh;
		unsigned int port;
		const char *want; /* route name, "" the catch-all */
	} cases[] = {
	    {"GET", "/api/x?debug=42", jason, 2, 9080, "jason"},
	    {"GET", "/api/x?debug=4a", jason, 2, 9080, ""}, /* query regex is a full match */
	    {"GET", "/api/x?a=1&debug=7", jason, 2, 9080, "jason"},
	    {"POST", "/api/x?debug=42", jason, 2, 9080, ""}, /* method */
	    {"GET", "/api/x?debug=42", other, 2, 9080, ""},  /* header value */
	    {"GET", "/api/x?debug=42", jason, 1, 9080, ""},  /* presence */
	    {"GET", "/api/x?debug=42", skip, 3, 9080, ""},   /* withoutHeaders */
	    {"GET", "/api/x?debug=42", jason, 2, 9090, ""},  /* port */
	    {"GET", "/apix?debug=42", jason, 2, 9080, ""},   /* prefix */
	    {"GET", "/fault/abc", NULL, 0, 9080, "faults"},
	    {"GET", "/fault/abc/d", NULL, 0, 9080, ""}, /* regex anchored at the end */
	    {"GET", "/x/fault/abc", NULL, 0, 9080, ""}, /* and at the start */
	    {"GET", "/old", NULL, 0, 9080, "moved"},
	    {"GET", "/old?q=1", NULL, 0, 9080, "moved"}, /* exact ignores the query */
	    {"GET", "/older", NULL, 0, 9080, ""},
	};
	struct l7_config *cfg = NULL;
	const char *f = "tests/data/l7/full.yaml";
	char err[ERRLEN], path[256];
	const struct l7_vs *vs;
	size_t i;

	if (l7_config_load(&f, 1, mesh, &cfg, err, sizeof(err)))
		tap_bail("full.yaml: %s", err);
	vs = l7_vs_find(cfg, "reviews.default.svc.cluster.local");
	ok(vs != NULL, "VirtualService found by service hostname");
	ok(!l7_vs_find(cfg, "ratings.default.svc.cluster.local"), "no VS for ratings");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct l7_request req = {.method = cases[i].method,
					 .path = cases[i].path,
					 .authority = "reviews:9080",
					 .port = cases[i].port,
					 .headers = cases[i].h,
					 .n_headers = cases[i].nh};
		const struct l7_http_route *r = l7_route_match(vs, &req, NULL);

		is_str(r && r->name ? r->name : (r ? "" : "(none)"), cases[i].want,
		       "%s %s (%zu headers, port %u)", cases[i].method, cases[i].path, cases[i].nh,
		       cases[i].port);
	}
	{
		struct l7_request req = {.method = "GET",
					 .path = "/api/v1/x?debug=1",
					 .headers = jason,
					 .n_headers = 2,
					 .port = 9080};

		l7_rewrite_path(&vs->http[0], &vs->http[0].matches[0], &req, path, sizeof(path));
		is_str(path, "/v2/v1/x?debug=1",
		       "rewrite replaces the matched prefix, keeps query");
	}
	l7_config_free(cfg);
}

static void test_weights(void)
{
	struct l7_dest d[3] = {{.weight = 90}, {.weight = 10}, {.weight = 0}};
	struct l7_dest eq[3] = {{.weight = 0}, {.weight = 0}, {.weight = 0}};
	unsigned int hits[3] = {0}, i;

	for (i = 0; i < 10000; i++)
		hits[l7_dest_pick(d, 3, i * 2654435761u) - d]++;
	ok(hits[0] > 8700 && hits[0] < 9300, "90/10 split: %u of 10000 to the 90", hits[0]);
	is_int(hits[2], 0, "weight 0 beside weighted destinations gets nothing");
	is_int(l7_dest_pick(d, 3, 89) - d, 0, "rnd 89 -> first");
	is_int(l7_dest_pick(d, 3, 90) - d, 1, "rnd 90 -> second");
	is_int(l7_dest_pick(eq, 3, 4) - eq, 1, "all weights 0: equal shares");
	ok(!l7_dest_pick(d, 0, 1), "no destinations -> NULL");
	ok(l7_percent_hit(100, 123) && !l7_percent_hit(0, 123), "0% and 100%");
	for (hits[0] = 0, i = 0; i < 100000; i++)
		hits[0] += l7_percent_hit(12.5, i * 2654435761u);
	ok(hits[0] > 11500 && hits[0] < 13500, "12.5%%: %u of 100000", hits[0]);
}

static void test_authz(void)
{
	static const struct l7_header acme[] = {H("x-tenant", "acme")};
	static const struct l7_header beta[] = {H("x-tenant", "beta-2")};
	static const struct l7_header evil[] = {H("x-tenant", "evil")};
	static const struct {
		const char *svc, *method, *path, *principal, *ns;
		const struct l7_header *h;
		bool want;
		const char *what;
	} cases[] = {
	    {"reviews", "GET", "/api/x", "cluster.local/ns/default/sa/a", "default", acme, true,
	     "GET /api with tenant acme"},
	    {"reviews", "HEAD", "/health", "cluster.local/ns/default/sa/a", "default", beta, true,
	     "HEAD /health, tenant prefix beta*"},
	    {"reviews", "POST", "/api/x", "cluster.local/ns/default/sa/a", "default", acme, false,
	     "POST refused"},
	    {"reviews", "GET", "/api/admin/x", "cluster.local/ns/default/sa/a", "default", acme,
	     false, "notPaths /api/admin*"},
	    {"reviews", "GET", "/api/x", "cluster.local/ns/other/sa/a", "default", acme, false,
	     "principal outside ns default"},
	    {"reviews", "GET", "/api/x", "cluster.local/ns/default/sa/a", "blocked", acme, false,
	     "notNamespaces"},
	    {"reviews", "GET", "/api/x", "cluster.local/ns/default/sa/a", "default", evil, false,
	     "when header value"},
	    {"reviews", "GET", "/api/x", "cluster.local/ns/default/sa/a", "default", NULL, false,
	     "when header absent"},
	    {"reviews", "GET", "/api/debug", "cluster.local/ns/default/sa/a", "default", acme,
	     false, "DENY */debug wins over ALLOW"},
	    {"ratings", "POST", "/x", "", "", NULL, true,
	     "ratings: no ALLOW in scope (targetRefs reviews only)"},
	    {"ratings", "GET", "/x/debug", "", "", NULL, false,
	     "ratings: namespace-wide DENY applies"},
	};
	struct l7_config *cfg = NULL;
	const char *f = "tests/data/l7/full.yaml";
	char err[ERRLEN], host[128];
	size_t i;

	if (l7_config_load(&f, 1, mesh, &cfg, err, sizeof(err)))
		tap_bail("full.yaml: %s", err);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct l7_request req = {.method = cases[i].method,
					 .path = cases[i].path,
					 .authority = "reviews:9080",
					 .port = 9080,
					 .headers = cases[i].h,
					 .n_headers = cases[i].h ? 1 : 0,
					 .source_principal = cases[i].principal,
					 .source_namespace = cases[i].ns};
		const struct l7_authz *p;

		l7_host_qualify(cases[i].svc, "default", host, sizeof(host));
		is_int(l7_authz_allows(cfg, host, "default", &req, &p), cases[i].want, "authz: %s",
		       cases[i].what);
	}
	l7_config_free(cfg);
}

static void test_endpoints(void)
{
	const char *names[] = {"destination-rule-all.yaml"};
	const struct zm_cfg_service *svc =
	    zm_config_service_by_key(mesh, "default/reviews.default.svc.cluster.local");
	struct l7_endpoint eps[8];
	struct l7_config *cfg;
	char err[ERRLEN];
	const struct l7_dr *dr;
	size_t n;

	cfg = load_samples(names, 1, err);
	if (!cfg || !svc)
		tap_bail("destination-rule-all.yaml or the reviews service missing");
	dr = l7_dr_find(cfg, "reviews.default.svc.cluster.local");
	n = l7_endpoints(mesh, svc, 9080, NULL, eps, 8);
	is_int(n, 3, "reviews: 3 healthy endpoints (the unhealthy v3 left out)");
	n = l7_endpoints(mesh, svc, 9080, l7_dr_subset(dr, "v2"), eps, 8);
	ok(n == 1 && !strcmp(eps[0].wl->name, "reviews-v2") && eps[0].target_port == 9081,
	   "subset v2 -> reviews-v2, its own target port 9081");
	n = l7_endpoints(mesh, svc, 9080, l7_dr_subset(dr, "v3"), eps, 8);
	ok(n == 1 && !strcmp(eps[0].wl->name, "reviews-v3"), "subset v3 -> reviews-v3 only");
	is_int(l7_endpoints(mesh, svc, 1234, NULL, eps, 8), 0, "unknown service port: none");
	l7_config_free(cfg);
}

static void test_errors(void)
{
	static const struct {
		const char *yaml, *want;
	} cases[] = {
	    {"apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec: {}\n",
	     "t.yaml:1: kind: unsupported kind Gateway"},
	    {"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\n"
	     "spec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews}\n"
	     "    timeouts: 1s\n",
	     "t.yaml:9: spec.http[0].timeouts: unknown field"},
	    {"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\n"
	     "spec:\n  hosts: [reviews]\n  http:\n  - match:\n    - uri: {regex: \"/a(b\"}\n"
	     "    route:\n    - destination: {host: reviews}\n",
	     "t.yaml:8: spec.http[0].match[0].uri.regex: invalid regex \"/a(b\" at offset 4: "
	     "missing closing parenthesis"},
	    {"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\n"
	     "spec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: nosuch}\n",
	     "t.yaml:8: spec.http[0].route[0].destination: host nosuch.default.svc.cluster.local: "
	     "no such service in the mesh"},
	    {"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\n"
	     "spec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews, "
	     "subset: v9}\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
	     "metadata: {name: r}\nspec:\n  host: reviews\n  subsets: [{name: v1, labels: "
	     "{version: v1}}]\n",
	     "t.yaml:8: spec.http[0].route[0].destination: subset v9 of host "
	     "reviews.default.svc.cluster.local: not defined by its DestinationRule"},
	    {"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\n"
	     "spec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews}\n"
	     "    timeout: 5 seconds\n",
	     "t.yaml:9: spec.http[0].timeout: want a duration"},
	    {"apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r}\n"
	     "spec:\n  host: reviews\n  trafficPolicy:\n    loadBalancer: {simple: FASTEST}\n",
	     "t.yaml:7: spec.trafficPolicy.loadBalancer.simple: unknown value \"FASTEST\""},
	    {"apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a}\n"
	     "spec:\n  action: CUSTOM\n",
	     "t.yaml:5: spec.action: unsupported action \"CUSTOM\""},
	    {"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\n"
	     "spec:\n  hosts: [reviews]\n  http:\n  - fault: {abort: {httpStatus: 503, percentage: "
	     "{value: 150}}}\n    route:\n    - destination: {host: reviews}\n",
	     "t.yaml:7: spec.http[0].fault.abort.percentage.value: want a number 0..100"},
	    /* A from written as a map, not a list, must not load as "any source". */
	    {"apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a}\n"
	     "spec:\n  action: ALLOW\n  rules:\n  - from: {source: {principals: [x]}}\n",
	     "t.yaml:7: spec.rules[0].from: want a list"},
	    {"kind: [\n", "t.yaml:2: (yaml): "},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct l7_config *cfg = NULL;
		char err[ERRLEN] = "";
		int r = l7_config_load_buf("t.yaml", cases[i].yaml, strlen(cases[i].yaml), mesh,
					   &cfg, err, sizeof(err));

		ok(r == -EINVAL && !cfg && !strncmp(err, cases[i].want, strlen(cases[i].want)),
		   "refused: %s", cases[i].want);
		if (strncmp(err, cases[i].want, strlen(cases[i].want)))
			printf("#   got: %s\n", err);
	}
}

int main(void)
{
	char err[ERRLEN];

	if (zm_config_load_file("tests/data/l7/bookinfo-mesh.yaml", &mesh, err, sizeof(err)))
		tap_bail("bookinfo-mesh.yaml: %s", err);
	test_samples();
	test_full_translation();
	test_matching();
	test_weights();
	test_authz();
	test_endpoints();
	test_errors();
	zm_config_free(mesh);
	return tap_done();
}
