// SPDX-License-Identifier: Apache-2.0
/*
 * The decisions of the request lifecycle (route.h), as Envoy makes them from the
 * configuration Istio generates, in the order of its filter chain: L7 AuthorizationPolicy
 * (RBAC: 403 "RBAC: access denied"), the route (the first matching one of the service's
 * Gateway API routes, else of its VirtualService; 404 when none matches), CORS (a preflight the
 * policy covers is answered here), fault abort, then the route's own action (redirect, direct
 * response, or a weighted destination). The head sent upstream gets the path rewrite, the authority
 * rewrite and the header operations in Envoy's order: for a single destination its operations join
 * the route's; for weighted ones the destination's are applied first, then the route's; within one
 * level, removes before set and add. Responses get the same, then the CORS fields.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "obs/log.h"
#include "route.h"

void wp_route_view(const struct wp_req *r, struct l7_request *out)
{
	const struct wp_conn *c = r->c;
	const struct zm_cfg_workload *self = c->snap->self;

	*out = (struct l7_request){
	    .method = r->method,
	    .path = r->path,
	    .authority = r->authority[0] ? r->authority : c->authority,
	    .scheme = r->scheme,
	    .port = c->port,
	    .headers = r->h.h,
	    .n_headers = r->h.n,
	    .source_principal = c->peer,
	    .source_namespace = c->src_ns,
	    .proxy_labels = self ? self->labels : NULL,
	    .n_proxy_labels = self ? self->n_labels : 0,
	    .proxy_namespace = c->w->wp->self_ns,
	    .proxy_gateway = c->w->wp->self_sa,
	};
}

void wp_answer_free(struct wp_answer *a)
{
	wp_hdrs_clear(&a->h);
}

static enum wp_route_verdict wp_answer(struct wp_answer *a, unsigned int code, const char *flags,
				       const char *body)
{
	a->code = code;
	a->flags = flags;
	a->body = body;
	return WP_ROUTE_ANSWER;
}

/*
 * Envoy's CORS filter: a request with an Origin is a CORS request; a preflight (OPTIONS with
 * Access-Control-Request-Method) the policy allows is answered 200 with the policy's fields,
 * one it does not is forwarded (unmatchedPreflights FORWARD) or answered 200 without them
 * (IGNORE). Other CORS requests whose origin is allowed get the fields on their response.
 */
static enum wp_route_verdict wp_route_cors(struct wp_req *r, struct wp_answer *a)
{
	const struct l7_cors *cp = &r->route->cors;
	const char *origin = wp_hdrs_get(&r->h, "origin");
	const char *acrm = wp_hdrs_get(&r->h, "access-control-request-method");
	const char *acrh = wp_hdrs_get(&r->h, "access-control-request-headers");
	bool allowed;

	if (!cp->set || !origin || !*origin)
		return WP_ROUTE_FORWARD;
	allowed = l7_cors_origin_allowed(cp, origin);
	if (strcmp(r->method, "OPTIONS") || !acrm || !*acrm) {
		r->cors = allowed;
		return WP_ROUTE_FORWARD;
	}
	if (!allowed && cp->forward_unmatched)
		return WP_ROUTE_FORWARD;
	if (allowed) {
		wp_hdrs_add_str(&a->h, "access-control-allow-origin", origin);
		if (cp->credentials)
			wp_hdrs_add_str(&a->h, "access-control-allow-credentials", "true");
		if (cp->methods)
			wp_hdrs_add_str(&a->h, "access-control-allow-methods",
					strcmp(cp->methods, "*") ? cp->methods : acrm);
		if (cp->headers && (strcmp(cp->headers, "*") || acrh))
			wp_hdrs_add_str(&a->h, "access-control-allow-headers",
					strcmp(cp->headers, "*") ? cp->headers : acrh);
		if (cp->max_age)
			wp_hdrs_add_str(&a->h, "access-control-max-age", cp->max_age);
	}
	return wp_answer(a, 200, "-", "");
}

enum wp_route_verdict wp_route_decide(struct wp_req *r, struct wp_answer *a)
{
	const struct wp_conn *c = r->c;
	const struct l7_config *l7 = c->snap->l7;
	const struct l7_http_route *rt;
	const struct l7_authz *pol;
	struct l7_request req;
	const struct l7_vs *vs;

	wp_route_view(r, &req);
	if (c->svc && !l7_authz_allows(l7, c->svc->hostname, c->svc->namespace, &req, &pol))
		return wp_answer(a, 403, "RBAC", L7_DENY_BODY);
	vs = c->svc ? l7_routes_for(l7, c->svc->hostname, req.proxy_namespace, req.proxy_gateway)
		    : NULL;
	if (!vs)
		return WP_ROUTE_FORWARD;
	rt = r->route = l7_route_match(vs, &req, &r->match);
	if (!rt)
		return wp_answer(a, 404, "NR", "");
	obs_log(OBS_DEBUG, "http", "%s %s from %s: route %s of %s", req.method, req.path,
		c->peer[0] ? c->peer : "-", rt->name ? rt->name : "-", c->svc->hostname);
	if (wp_route_cors(r, a) == WP_ROUTE_ANSWER)
		return WP_ROUTE_ANSWER;
	if ((rt->fault.abort_status || rt->fault.abort_grpc >= 0) &&
	    l7_percent_hit(rt->fault.abort_pct, wp_rand())) {
		a->grpc_status = rt->fault.abort_grpc;
		return wp_answer(a, rt->fault.abort_status, "FI", "fault filter abort");
	}
	return WP_ROUTE_FORWARD;
}

enum wp_route_verdict wp_route_action(struct wp_req *r, struct wp_answer *a)
{
	const struct l7_http_route *rt = r->route;
	struct l7_request req;

	if (!rt)
		return WP_ROUTE_FORWARD;
	wp_route_view(r, &req);
	a->route_ops = true;
	if (rt->redirect.set) {
		if (l7_redirect_location(rt, r->match, &req, a->buf, sizeof(a->buf)))
			return wp_answer(a, 500, "-", "redirect location too long");
		wp_hdrs_add_str(&a->h, "location", a->buf);
		return wp_answer(a, rt->redirect.code, "-", "");
	}
	if (rt->direct.status)
		return wp_answer(a, rt->direct.status, "-", rt->direct.body ? rt->direct.body : "");
	r->dest = l7_dest_pick(rt->dests, rt->n_dests, wp_rand());
	return WP_ROUTE_FORWARD;
}

/* One level of header operations: removes, then set (overwrite), then add (append). */
static int wp_ops_apply(struct wp_hdrs *h, const struct l7_header_ops *ops)
{
	size_t i;
	int r = 0;

	for (i = 0; i < ops->n_remove; i++)
		wp_hdrs_del(h, ops->remove[i]);
	for (i = 0; i < ops->n_set && !r; i++)
		r = wp_hdrs_set(h, ops->set[i].name, ops->set[i].value);
	for (i = 0; i < ops->n_add && !r; i++)
		r = wp_hdrs_add_str(h, ops->add[i].name, ops->add[i].value);
	return r;
}

/*
 * The route's and the chosen destination's operations (resp: the response halves) in Envoy's
 * order. A single destination's join the route's level (Istio appends them): all removes,
 * then the route's set and add, then the destination's.
 */
static int wp_ops_route(struct wp_hdrs *h, const struct wp_req *r, bool resp)
{
	const struct l7_http_route *rt = r->route;
	const struct l7_header_ops *ro, *dop;
	size_t i;
	int err;

	if (!rt)
		return 0;
	ro = resp ? &rt->resp_ops : &rt->req_ops;
	dop = r->dest ? (resp ? &r->dest->resp_ops : &r->dest->req_ops) : NULL;
	if (!dop)
		return wp_ops_apply(h, ro);
	if (rt->n_dests > 1)
		return wp_ops_apply(h, dop) ?: wp_ops_apply(h, ro);
	for (i = 0; i < dop->n_remove; i++)
		wp_hdrs_del(h, dop->remove[i]);
	err = wp_ops_apply(h, ro);
	for (i = 0; i < dop->n_set && !err; i++)
		err = wp_hdrs_set(h, dop->set[i].name, dop->set[i].value);
	for (i = 0; i < dop->n_add && !err; i++)
		err = wp_hdrs_add_str(h, dop->add[i].name, dop->add[i].value);
	return err;
}

/* Envoy's host rewrite: the route's (rewrite.authority, else its headers'), else the dest's. */
static const char *wp_route_authority(const struct wp_req *r, const char *req_auth)
{
	const struct l7_http_route *rt = r->route;

	if (!rt)
		return req_auth;
	if (rt->rewrite.authority)
		return rt->rewrite.authority;
	if (rt->req_ops.authority)
		return rt->req_ops.authority;
	if (r->dest && r->dest->req_ops.authority)
		return r->dest->req_ops.authority;
	return req_auth;
}

#define WP_PATH_MAX (256u << 10) /* a rewritten path: a head is at most 32 KiB (lib/http1) */

/*
 * The path sent upstream, rewritten, whatever its length (a regex rewrite can make it longer
 * than the head it came in); the path as it came when there is no route or the rewrite fails
 * (the regex engine gave up, or the result is over WP_PATH_MAX). NULL when out of memory.
 */
static char *wp_route_path(struct wp_req *r, const struct l7_request *req)
{
	size_t len;
	char *buf;

	for (len = 4096; r->route && len <= WP_PATH_MAX; len *= 4) {
		buf = malloc(len);
		if (!buf || !l7_rewrite_path(r->route, r->match, req, buf, len))
			return buf;
		free(buf);
	}
	return strdup(r->path);
}

int wp_route_upstream_head(struct wp_req *r)
{
	struct l7_request req;
	int err;

	wp_route_view(r, &req);
	r->up_path = wp_route_path(r, &req);
	r->up_authority = strdup(wp_route_authority(r, req.authority));
	if (!r->up_path || !r->up_authority)
		return -ENOMEM;
	err = wp_hdrs_copy(&r->up_h, &r->h) ?: wp_ops_route(&r->up_h, r, false);
	/* Envoy's request id: kept when the client sent one, else the one made for it. */
	if (!err && !wp_hdrs_get(&r->up_h, "x-request-id"))
		err = wp_hdrs_add_str(&r->up_h, "x-request-id", r->request_id);
	if (!err && !wp_hdrs_get(&r->up_h, "x-forwarded-proto"))
		err = wp_hdrs_add_str(&r->up_h, "x-forwarded-proto", r->scheme);
	return err;
}

void wp_route_response(const struct wp_req *r, struct wp_resp *resp, bool ops)
{
	const struct l7_cors *cp = r->route ? &r->route->cors : NULL;
	const char *origin = wp_hdrs_get(&r->h, "origin");

	if (ops)
		wp_ops_route(&resp->h, r, true);
	if (!r->cors || !cp || !origin)
		return;
	wp_hdrs_set(&resp->h, "access-control-allow-origin", origin);
	if (cp->credentials)
		wp_hdrs_set(&resp->h, "access-control-allow-credentials", "true");
	if (cp->expose)
		wp_hdrs_set(&resp->h, "access-control-expose-headers", cp->expose);
}

unsigned int wp_route_attempts(const struct wp_req *r)
{
	return 1 + l7_route_retry(r->route)->attempts;
}

uint32_t wp_route_per_try_ms(const struct wp_req *r)
{
	return r->route && r->route->retries_set ? r->route->retries.per_try_timeout_ms : 0;
}

bool wp_route_retry_status(const struct wp_req *r, unsigned int code, const char *grpc_status)
{
	int gs = grpc_status && *grpc_status ? atoi(grpc_status) : -1;

	return l7_retry_on_response(l7_route_retry(r->route), code, gs);
}

bool wp_route_retry_failure(const struct wp_req *r, enum wp_up_fail why, bool timeout)
{
	static const enum l7_reset map[] = {
	    [WP_UPF_CONNECT] = L7_RESET_CONNECT,
	    [WP_UPF_REFUSED] = L7_RESET_REFUSED,
	    [WP_UPF_RESET_BEFORE] = L7_RESET_BEFORE_REQUEST,
	    [WP_UPF_RESET] = L7_RESET_AFTER_REQUEST,
	    [WP_UPF_PROTOCOL] = L7_RESET_AFTER_REQUEST,
	};

	return l7_retry_on_reset(l7_route_retry(r->route), timeout ? L7_RESET_TIMEOUT : map[why]);
}

unsigned int wp_grpc_status_of(unsigned int http)
{
	switch (http) {
	case 400:
		return 13; /* INTERNAL */
	case 401:
		return 16; /* UNAUTHENTICATED */
	case 403:
		return 7; /* PERMISSION_DENIED */
	case 404:
		return 12; /* UNIMPLEMENTED */
	case 504:
		return 4; /* DEADLINE_EXCEEDED */
	case 429:
	case 502:
	case 503:
		return 14; /* UNAVAILABLE */
	default:
		return 2; /* UNKNOWN */
	}
}
