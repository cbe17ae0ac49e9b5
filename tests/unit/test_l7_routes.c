// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of Istio's VirtualService and Gateway API semantics in the waypoint's model
 * (userspace/lib/l7), written from Istio's own expectations: header matching as Istio's
 * generated Envoy config does it (pseudo-headers, withoutHeaders with
 * treat_missing_header_as_empty, the regex "*" as presence: routing.go "without headers"
 * cases), redirect Locations (routing.go "redirect request port", "redirect port and scheme",
 * "redirect prefix_rewrite"), rewrites, CORS origins, retryOn conditions, and HTTPRoute /
 * GRPCRoute attachment with Gateway API precedence (the conformance suite's
 * HTTPRouteMatchingAcrossRoutes ordering) and its precedence over a VirtualService.
 */
#include <stdio.h>
#include <string.h>

#include "../lib/tap.h"
#include "l7/l7.h"

#define ERRLEN 8192

static struct l7_config *load(const char *yaml)
{
	char err[ERRLEN];
	struct l7_config *cfg = NULL;

	if (l7_config_load_buf("t.yaml", yaml, strlen(yaml), NULL, &cfg, err, sizeof(err))) {
		printf("# %s\n", err);
		return NULL;
	}
	return cfg;
}

/* The name of the route a request takes ("-" none). */
static const char *route_of(const struct l7_vs *vs, const char *method, const char *path,
			    const struct l7_header *h, size_t nh)
{
	struct l7_request req = {.method = method,
				 .path = path,
				 .authority = "b:80",
				 .scheme = "http",
				 .port = 80,
				 .headers = h,
				 .n_headers = nh};
	const struct l7_http_route *r = l7_route_match(vs, &req, NULL);

	return r ? (r->name ? r->name : "?") : "-";
}

static void test_header_matching(void)
{
	static const char yaml[] =
	    "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: b}\n"
	    "spec:\n  hosts: [b]\n  http:\n"
	    "  - name: get\n    match: [{headers: {':method': {exact: GET}}}]\n"
	    "    route: [{destination: {host: b}}]\n"
	    "  - name: not-jason\n    match: [{withoutHeaders: {end-user: {exact: jason}}}]\n"
	    "    route: [{destination: {host: b}}]\n"
	    "  - name: rest\n    route: [{destination: {host: b}}]\n"
	    "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: c}\n"
	    "spec:\n  hosts: [c]\n  http:\n"
	    "  - name: absent\n    match: [{withoutHeaders: {end-user: {regex: '*'}}}]\n"
	    "    route: [{destination: {host: c}}]\n"
	    "  - name: any\n    match: [{withoutHeaders: {x: {regex: '.*'}}}]\n"
	    "    route: [{destination: {host: c}}]\n"
	    "  - name: rest\n    route: [{destination: {host: c}}]\n";
	static const struct l7_header jason[] = {{"end-user", "jason"}};
	static const struct l7_header other[] = {{"end-user", "bob"}};
	static const struct l7_header empty[] = {{"end-user", ""}};
	struct l7_config *cfg = load(yaml);
	const struct l7_vs *b, *c;

	if (!ok(cfg != NULL, "header-matching routes load"))
		return;
	b = l7_vs_find(cfg, "b.default.svc.cluster.local");
	c = l7_vs_find(cfg, "c.default.svc.cluster.local");
	is_str(route_of(b, "GET", "/", NULL, 0), "get", ":method GET matches a GET");
	is_str(route_of(b, "POST", "/", jason, 1), "rest", "a POST with end-user jason: neither");
	is_str(route_of(b, "POST", "/", other, 1), "not-jason", "withoutHeaders: another user");
	is_str(route_of(b, "POST", "/", NULL, 0), "not-jason",
	       "withoutHeaders: a missing header counts as empty, which is not jason");
	is_str(route_of(c, "GET", "/", NULL, 0), "absent", "withoutHeaders regex '*': absent");
	is_str(route_of(c, "GET", "/", empty, 1), "rest",
	       "withoutHeaders regex '*' (presence): present but empty is excluded");
	is_str(route_of(c, "GET", "/", jason, 1), "rest", "withoutHeaders regex '*': present");
	l7_config_free(cfg);
}

struct redirect_case {
	const char *name, *redirect, *match, *path, *host;
	unsigned int port;
	const char *want;
};

/* istio/istio tests/integration/pilot/common/routing.go, the redirect cases. */
static const struct redirect_case redirects[] = {
    {"uri keeps the query", "{uri: /new/path}", "{uri: {exact: /foo}}", "/foo?key=value", "b", 80,
     "http://b/new/path?key=value"},
    {"request port 80, Host b", "{derivePort: FROM_REQUEST_PORT}", "{uri: {exact: /foo}}", "/foo",
     "b", 80, "http://b/foo"},
    {"request port 80, Host b:80", "{derivePort: FROM_REQUEST_PORT}", "{uri: {exact: /foo}}",
     "/foo", "b:80", 80, "http://b:80/foo"},
    {"request port 85, Host b", "{derivePort: FROM_REQUEST_PORT}", "{uri: {exact: /foo}}", "/foo",
     "b", 85, "http://b:85/foo"},
    {"request port 85, Host b:85", "{derivePort: FROM_REQUEST_PORT}", "{uri: {exact: /foo}}",
     "/foo", "b:85", 85, "http://b:85/foo"},
    {"https on request port 80", "{derivePort: FROM_REQUEST_PORT, scheme: https}",
     "{uri: {exact: /foo}}", "/foo", "b", 80, "https://b:80/foo"},
    {"prefixRewrite", "{prefixRewrite: /new/}", "{uri: {prefix: /foo/}}", "/foo/bar", "b", 80,
     "http://b/new/bar"},
    {"authority and port", "{authority: a.example, port: 8443, scheme: https}",
     "{uri: {exact: /foo}}", "/foo?q", "b", 80, "https://a.example:8443/foo?q"},
    {"scheme change drops the default port", "{scheme: https}", "{uri: {exact: /foo}}", "/foo",
     "b:80", 80, "https://b/foo"},
};

static void test_redirects(void)
{
	char yaml[1024], loc[512];
	size_t i;

	for (i = 0; i < sizeof(redirects) / sizeof(redirects[0]); i++) {
		const struct redirect_case *t = &redirects[i];
		struct l7_request req = {.method = "GET",
					 .path = t->path,
					 .authority = t->host,
					 .scheme = "http",
					 .port = t->port};
		const struct l7_http_match *m = NULL;
		const struct l7_http_route *r;
		struct l7_config *cfg;

		snprintf(yaml, sizeof(yaml),
			 "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
			 "metadata: {name: b}\nspec:\n  hosts: [b]\n  http:\n"
			 "  - match: [%s]\n    redirect: %s\n",
			 t->match, t->redirect);
		cfg = load(yaml);
		if (!ok(cfg != NULL, "redirect %s loads", t->name))
			continue;
		r = l7_route_match(&cfg->vs[0], &req, &m);
		ok(r && !l7_redirect_location(r, m, &req, loc, sizeof(loc)), "redirect %s: built",
		   t->name);
		is_str(loc, t->want, "redirect %s: Location", t->name);
		l7_config_free(cfg);
	}
}

static void test_rewrites(void)
{
	static const char yaml[] =
	    "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: b}\n"
	    "spec:\n  hosts: [b]\n  http:\n"
	    "  - match: [{uri: {exact: /foo}}]\n    rewrite: {uri: /new/path}\n"
	    "    route: [{destination: {host: b}}]\n"
	    "  - match: [{uri: {prefix: /old}}]\n    rewrite: {uri: /n}\n"
	    "    route: [{destination: {host: b}}]\n"
	    "  - match: [{uri: {prefix: /re/}}]\n"
	    "    rewrite: {uriRegexRewrite: {match: '^/re/([a-z]+)/(.*)$', rewrite: '/\\2/\\1'}}\n"
	    "    route: [{destination: {host: b}}]\n";
	static const char *const cases[][2] = {
	    {"/foo?key=value", "/new/path?key=value"},
	    {"/old/x?y", "/n/x?y"},
	    {"/re/abc/d/e?q=1", "/d/e/abc?q=1"},
	};
	struct l7_config *cfg = load(yaml);
	char out[256];
	size_t i;

	if (!ok(cfg != NULL, "rewrite routes load"))
		return;
	for (i = 0; i < 3; i++) {
		struct l7_request req = {.method = "GET", .path = cases[i][0], .port = 80};
		const struct l7_http_match *m;
		const struct l7_http_route *r = l7_route_match(&cfg->vs[0], &req, &m);

		ok(r && !l7_rewrite_path(r, m, &req, out, sizeof(out)), "rewrite of %s",
		   cases[i][0]);
		is_str(out, cases[i][1], "rewrite of %s", cases[i][0]);
	}
	l7_config_free(cfg);
}

static void test_cors_and_retries(void)
{
	static const char yaml[] =
	    "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: b}\n"
	    "spec:\n  hosts: [b]\n  http:\n"
	    "  - corsPolicy:\n      allowOrigins: [{exact: cors.com}, {prefix: 'https://p.'}, "
	    "{regex: 'https://[a-z]+\\.r\\.com'}]\n"
	    "      allowMethods: [POST, GET]\n      maxAge: 24h\n"
	    "    retries: {attempts: 3, retryOn: 'gateway-error,retriable-4xx,425,unavailable'}\n"
	    "    route: [{destination: {host: b}}]\n"
	    "  - retries: {attempts: 0}\n    route: [{destination: {host: b}}]\n";
	struct l7_config *cfg = load(yaml);
	const struct l7_http_route *r;
	const struct l7_retry *rt;

	if (!ok(cfg != NULL, "CORS and retries load"))
		return;
	r = &cfg->vs[0].http[0];
	ok(l7_cors_origin_allowed(&r->cors, "cors.com") &&
	       l7_cors_origin_allowed(&r->cors, "https://p.x") &&
	       l7_cors_origin_allowed(&r->cors, "https://ab.r.com") &&
	       !l7_cors_origin_allowed(&r->cors, "https://ab.r.com.evil") &&
	       !l7_cors_origin_allowed(&r->cors, "evil.com"),
	   "allowOrigins: exact, prefix and (full-match) regex");
	is_str(r->cors.methods, "POST,GET", "allowMethods joined as Envoy gets them");
	is_str(r->cors.max_age, "86400", "maxAge 24h in seconds");
	ok(r->cors.forward_unmatched, "unmatchedPreflights defaults to FORWARD");
	rt = l7_route_retry(r);
	ok(l7_retry_on_response(rt, 503, -1) && l7_retry_on_response(rt, 409, -1) &&
	       l7_retry_on_response(rt, 425, -1) && !l7_retry_on_response(rt, 500, -1),
	   "gateway-error, retriable-4xx, a status code; not 500");
	ok(l7_retry_on_response(rt, 200, 14) && !l7_retry_on_response(rt, 200, 13),
	   "gRPC unavailable (14) retried, internal (13) not");
	ok(l7_retry_on_reset(rt, L7_RESET_CONNECT) && l7_retry_on_reset(rt, L7_RESET_TIMEOUT),
	   "gateway-error retries resets and per-try timeouts");
	is_int(l7_route_retry(&cfg->vs[0].http[1])->attempts, 0, "attempts 0: no retries");
	rt = l7_route_retry(NULL);
	ok(rt->attempts == 2 && l7_retry_on_reset(rt, L7_RESET_CONNECT) &&
	       l7_retry_on_reset(rt, L7_RESET_REFUSED) &&
	       !l7_retry_on_reset(rt, L7_RESET_AFTER_REQUEST) &&
	       !l7_retry_on_response(rt, 503, -1) && l7_retry_on_response(rt, 200, 1),
	   "Istio's default policy: 2 retries on connect-failure, refused-stream, cancelled...");
	l7_config_free(cfg);
}

static void test_gateway_api(void)
{
	/* The Gateway API conformance HTTPRouteMatchingAcrossRoutes idea, on one parent. */
	static const char yaml[] =
	    "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: b}\n"
	    "spec: {hosts: [b], http: [{name: vs, route: [{destination: {host: b}}]}]}\n"
	    "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
	    "metadata: {name: one}\nspec:\n  parentRefs: [{group: '', kind: Service, name: b}]\n"
	    "  rules:\n  - name: prefix-v2\n    matches: [{path: {value: /v2}}]\n"
	    "    backendRefs: [{name: b, port: 80}]\n"
	    "  - name: catch-all\n    backendRefs: [{name: b, port: 80}]\n"
	    "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
	    "metadata: {name: two}\nspec:\n  parentRefs: [{group: '', kind: Service, name: b}]\n"
	    "  rules:\n  - name: exact-v2\n    matches: [{path: {type: Exact, value: /v2}}]\n"
	    "    backendRefs: [{name: b, port: 80}]\n"
	    "  - name: prefix-v2-header\n"
	    "    matches: [{path: {value: /v2/}, headers: [{name: X-V, value: '1'}]}]\n"
	    "    backendRefs: [{name: b, port: 80, weight: 0}]\n"
	    "---\napiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\n"
	    "metadata: {name: g}\nspec:\n  parentRefs: [{group: '', kind: Service, name: g}]\n"
	    "  rules:\n  - name: say\n    matches: [{method: {service: e.E, method: Say}}]\n"
	    "    backendRefs: [{name: g, port: 80}]\n";
	static const struct l7_header v1[] = {{"x-v", "1"}};
	struct l7_config *cfg = load(yaml);
	const struct l7_vs *vs;

	if (!ok(cfg != NULL, "HTTPRoutes and a VirtualService for one service load"))
		return;
	vs = l7_routes_for(cfg, "b.default.svc.cluster.local", "default", "waypoint");
	ok(vs && vs->gateway_api, "the HTTPRoutes take precedence over the VirtualService");
	if (!vs)
		return;
	is_str(route_of(vs, "GET", "/v2", NULL, 0), "exact-v2", "an exact path beats prefixes");
	is_str(route_of(vs, "GET", "/v2/x", v1, 1), "prefix-v2-header",
	       "across routes: the longer prefix first");
	is_str(route_of(vs, "GET", "/v2/x", NULL, 0), "prefix-v2", "then the shorter one");
	is_str(route_of(vs, "GET", "/v2x", NULL, 0), "catch-all",
	       "PathPrefix /v2 does not match /v2x (path-separated)");
	is_int(vs->http[1].direct.status, 500, "no backend with weight: 500");
	vs = l7_routes_for(cfg, "g.default.svc.cluster.local", NULL, NULL);
	ok(vs && !strcmp(route_of(vs, "POST", "/e.E/Say", NULL, 0), "say") &&
	       !strcmp(route_of(vs, "POST", "/e.E/Other", NULL, 0), "-"),
	   "GRPCRoute method match on /Service/Method");
	l7_config_free(cfg);
}

/* tests/data/l7/gateway-api-routes.yaml: every Gateway API field, as istiod translates it. */
static void test_gateway_api_file(void)
{
	const char *f = "tests/data/l7/gateway-api-routes.yaml";
	struct l7_config *cfg = NULL;
	const struct l7_http_route *r;
	const struct l7_vs *vs;
	char err[ERRLEN];

	if (!is_int(l7_config_load(&f, 1, NULL, &cfg, err, sizeof(err)), 0,
		    "gateway-api-routes.yaml loads"))
		tap_bail("%s", err);
	is_int(cfg->n_gw, 3, "two HTTPRoutes and a GRPCRoute");
	vs = l7_routes_for(cfg, "reviews.default.svc.cluster.local", "default", "waypoint");
	if (!ok(vs && vs->gateway_api && vs->n_http == 3, "reviews: three routes"))
		tap_bail("no routes for reviews");
	/* Sorted as istiod sorts them: exact path, then prefix, then regex. */
	r = &vs->http[1];
	is_str(r->name, "jason", "the rule's name; the exact-path rule sorted before it");
	ok(r->matches[0].uri.kind == L7_STR_PATH_PREFIX && !strcmp(r->matches[0].uri.value, "/api"),
	   "PathPrefix /api/ is the path-separated prefix /api");
	is_int(r->matches[0].port, 9080, "parentRef port becomes a port match");
	ok(r->matches[0].n_headers == 2 && !strcmp(r->matches[0].headers[0].name, "end-user") &&
	       r->matches[0].headers[1].m.kind == L7_STR_REGEX,
	   "headers: exact (name lower-cased) and RegularExpression");
	ok(r->matches[0].method.kind == L7_STR_EXACT && r->matches[0].n_query_params == 1,
	   "method and queryParams");
	ok(r->req_ops.n_set == 1 && !strcmp(r->req_ops.authority, "reviews-v2") &&
	       r->req_ops.n_add == 1 && r->req_ops.n_remove == 1,
	   "RequestHeaderModifier: set, add, remove; Host is the authority rewrite");
	is_str(r->resp_ops.set[0].value, "c", "ResponseHeaderModifier");
	is_str(r->rewrite.uri, "/v2", "ReplacePrefixMatch /v2/ (trailing / trimmed)");
	ok(r->n_mirrors == 1 && r->mirrors[0].pct == 25, "RequestMirror fraction 1/4");
	ok(r->n_dests == 2 && r->total_weight == 100 && r->dests[0].req_ops.n_add == 1,
	   "backendRefs with weights and their own filters");
	ok(r->timeout_ms == 90000 && r->retries_set && r->retries.per_try_timeout_ms == 500 &&
	       r->retries.attempts == 3 && r->retries.codes[0] == 503,
	   "timeouts (1m30s, backendRequest as per-try with retry) and retry codes");
	r = &vs->http[0];
	ok(r->redirect.set && r->redirect.code == 301 && !strcmp(r->redirect.uri, "/new") &&
	       r->redirect.port_rule == L7_PORT_FIXED && r->redirect.port == 8443,
	   "RequestRedirect: status, ReplaceFullPath, port");
	ok(vs->http[2].rewrite.re && !strcmp(vs->http[2].rewrite.authority, "reviews.internal"),
	   "URLRewrite ReplaceFullPath (a regex rewrite of /.*) and hostname");
	vs = l7_routes_for(cfg, "ratings.default.svc.cluster.local", NULL, NULL);
	ok(vs && vs->n_http == 2 && vs->http[0].matches[0].uri.kind == L7_STR_EXACT &&
	       !strcmp(vs->http[0].matches[0].uri.value, "/ratings.Ratings/Get"),
	   "GRPCRoute: each match a route; service and method as an exact path");
	vs = l7_routes_for(cfg, "details.default.svc.cluster.local", "default", "waypoint");
	ok(vs && vs->gw_parent, "a route attached to the waypoint's Gateway, by hostname");
	ok(!l7_routes_for(cfg, "details.default.svc.cluster.local", "default", "other"),
	   "not for another waypoint");
	l7_config_free(cfg);
}

int main(void)
{
	test_header_matching();
	test_redirects();
	test_rewrites();
	test_cors_and_retries();
	test_gateway_api();
	test_gateway_api_file();
	return tap_done();
}
