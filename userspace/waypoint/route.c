// SPDX-License-Identifier: Apache-2.0
/*
 * The decisions of the request lifecycle (route.h), as Envoy makes them from the
 * configuration Istio generates: L7 AuthorizationPolicy (403 "RBAC: access denied"), the
 * first matching http route of the service's VirtualService (404 when none matches), the
 * answers a route gives itself (redirect, direct response, fault abort), the head sent
 * upstream and the response's header operations.
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

/* Redirect, direct response and fault abort: answers a route gives before any endpoint. */
static enum wp_route_verdict wp_route_local(struct wp_req *r, const struct l7_request *req,
					    struct wp_answer *a)
{
	const struct l7_http_route *rt = r->route;

	if (rt->redirect.set) {
		const char *q = strchr(req->path, '?');

		snprintf(a->buf, sizeof(a->buf), "%s://%s%s%s",
			 rt->redirect.scheme ? rt->redirect.scheme : "http",
			 rt->redirect.authority ? rt->redirect.authority : req->authority,
			 rt->redirect.uri ? rt->redirect.uri : req->path,
			 rt->redirect.uri && q ? q : "");
		wp_hdrs_add_str(&a->h, "location", a->buf);
		return wp_answer(a, rt->redirect.code, "-", "");
	}
	if (rt->direct.status)
		return wp_answer(a, rt->direct.status, "-", rt->direct.body ? rt->direct.body : "");
	if (rt->fault.abort_status && l7_percent_hit(rt->fault.abort_pct, wp_rand()))
		return wp_answer(a, rt->fault.abort_status, "FI", "fault filter abort");
	return WP_ROUTE_FORWARD;
}

enum wp_route_verdict wp_route_decide(struct wp_req *r, struct wp_answer *a)
{
	const struct wp_conn *c = r->c;
	const struct l7_config *l7 = c->snap->l7;
	const struct l7_authz *pol;
	struct l7_request req;
	const struct l7_vs *vs;

	wp_route_view(r, &req);
	if (c->svc && !l7_authz_allows(l7, c->svc->hostname, c->svc->namespace, &req, &pol))
		return wp_answer(a, 403, "RBAC", L7_DENY_BODY);
	vs = c->svc ? l7_vs_find(l7, c->svc->hostname) : NULL;
	if (!vs)
		return WP_ROUTE_FORWARD;
	r->route = l7_route_match(vs, &req);
	if (!r->route)
		return wp_answer(a, 404, "NR", "route not found");
	if (wp_route_local(r, &req, a) == WP_ROUTE_ANSWER)
		return WP_ROUTE_ANSWER;
	r->dest = l7_dest_pick(r->route->dests, r->route->n_dests, wp_rand());
	obs_log(OBS_DEBUG, "http", "%s %s from %s: route %s of %s", req.method, req.path,
		c->peer[0] ? c->peer : "-", r->route->name ? r->route->name : "-",
		c->svc->hostname);
	return WP_ROUTE_FORWARD;
}

/* Does ops remove or set header name (so the original value does not go on)? */
static bool wp_ops_replaces(const struct l7_header_ops *ops, const char *name)
{
	size_t i;

	for (i = 0; ops && i < ops->n_remove; i++)
		if (!strcasecmp(ops->remove[i], name))
			return true;
	for (i = 0; ops && i < ops->n_set; i++)
		if (!strcasecmp(ops->set[i].name, name))
			return true;
	return false;
}

/* Header operations on a list: remove, then set, then add (Envoy's order within a level). */
static int wp_ops_apply(struct wp_hdrs *h, const struct l7_header_ops *ops)
{
	size_t i;
	int r = 0;

	if (!ops)
		return 0;
	for (i = 0; i < ops->n_remove; i++)
		wp_hdrs_del(h, ops->remove[i]);
	for (i = 0; i < ops->n_set && !r; i++)
		r = wp_hdrs_set(h, ops->set[i].name, ops->set[i].value);
	for (i = 0; i < ops->n_add && !r; i++)
		r = wp_hdrs_add_str(h, ops->add[i].name, ops->add[i].value);
	return r;
}

int wp_route_upstream_head(struct wp_req *r)
{
	const struct l7_http_route *rt = r->route;
	struct l7_request req;
	char path[4096];
	size_t i;
	int err = 0;

	wp_route_view(r, &req);
	if (!rt || l7_rewrite_path(rt, &req, path, sizeof(path)))
		snprintf(path, sizeof(path), "%s", r->path);
	r->up_path = strdup(path);
	r->up_authority =
	    strdup(rt && rt->rewrite.authority ? rt->rewrite.authority : req.authority);
	if (!r->up_path || !r->up_authority)
		return -ENOMEM;
	for (i = 0; i < r->h.n && !err; i++)
		if (!wp_ops_replaces(rt ? &rt->req_ops : NULL, r->h.h[i].name))
			err = wp_hdrs_add_str(&r->up_h, r->h.h[i].name, r->h.h[i].value);
	if (!err && rt)
		err = wp_ops_apply(&r->up_h, &rt->req_ops);
	/* Envoy's request id: kept when the client sent one, else the one made for it. */
	if (!err && !wp_hdrs_get(&r->up_h, "x-request-id"))
		err = wp_hdrs_add_str(&r->up_h, "x-request-id", r->request_id);
	if (!err && !wp_hdrs_get(&r->up_h, "x-forwarded-proto"))
		err = wp_hdrs_add_str(&r->up_h, "x-forwarded-proto", "http");
	return err;
}

void wp_route_response(const struct wp_req *r, struct wp_resp *resp)
{
	if (r->route)
		wp_ops_apply(&resp->h, &r->route->resp_ops);
}

unsigned int wp_route_attempts(const struct wp_req *r)
{
	if (r->route && r->route->retries.set)
		return r->route->retries.attempts + 1;
	return 3; /* Istio's default: 2 retries */
}

static uint32_t wp_route_retry_on(const struct wp_req *r)
{
	if (r->route && r->route->retries.set)
		return r->route->retries.retry_on;
	return L7_RETRY_CONNECT_FAILURE; /* Istio's default policy, as it applies at L7 here */
}

bool wp_route_retry_status(const struct wp_req *r, unsigned int code, const char *grpc_status)
{
	uint32_t on = wp_route_retry_on(r);

	(void)grpc_status;
	if (!r->route || !r->route->retries.set)
		return false;
	return ((on & L7_RETRY_5XX) && code >= 500) ||
	       ((on & L7_RETRY_GATEWAY_ERROR) && code >= 502 && code <= 504) ||
	       ((on & L7_RETRY_UNAVAILABLE) && code == 503) ||
	       ((on & L7_RETRY_RETRIABLE_4XX) && code == 409);
}

bool wp_route_retry_failure(const struct wp_req *r, enum wp_up_fail why, bool timeout)
{
	uint32_t on = wp_route_retry_on(r);

	/*
	 * Envoy's retryOn: "5xx" also covers no answer at all (connect failure, reset, per-try
	 * timeout), "gateway-error" the same failures as 502/503/504.
	 */
	if (on & (L7_RETRY_5XX | L7_RETRY_GATEWAY_ERROR))
		return true;
	if (timeout)
		return on & L7_RETRY_RESET;
	if (why == WP_UPF_CONNECT)
		return on & L7_RETRY_CONNECT_FAILURE;
	return on & L7_RETRY_RESET;
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
