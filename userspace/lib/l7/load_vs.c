// SPDX-License-Identifier: Apache-2.0
/*
 * VirtualService spec reader: hosts, http routes (match, route, timeout, retries, fault,
 * mirror, headers, rewrite, redirect, directResponse) and the first tcp route. Fields Istio
 * has but the waypoint does not implement (corsPolicy, delegate, tls routes, ...) are refused
 * by name rather than silently ignored, so a user never believes a policy is in force.
 */
#include <errno.h>
#include <string.h>

#include "l7/internal.h"

/* headers/queryParams: {name: StringMatch}; an empty match {} means presence. */
static int l7_kvmatch_at(struct l7_ld *ld, yaml_node_t *map, const char *key, bool lower,
			 struct l7_kv_match **out, size_t *n)
{
	yaml_node_t *v = zm_yl_get(&ld->yl, map, key);
	yaml_node_pair_t *p;
	size_t old, i = 0;
	int ret = 0;

	if (!v)
		return 0;
	old = zm_yl_push_field(&ld->yl, key);
	if (v->type != YAML_MAPPING_NODE) {
		zm_yl_error(&ld->yl, v, "want a mapping of name: {exact|prefix|regex: value}");
		zm_yl_pop(&ld->yl, old);
		return -EINVAL;
	}
	*n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
	*out = l7_alloc(ld->cfg, (*n + 1) * sizeof(**out));
	if (!*out) {
		ld->oom = true;
		ret = -ENOMEM;
	}
	for (p = v->data.mapping.pairs.start; !ret && p < v->data.mapping.pairs.top; p++, i++) {
		yaml_node_t *k = zm_yl_node(&ld->yl, p->key), *m = zm_yl_node(&ld->yl, p->value);
		struct l7_kv_match *km = &(*out)[i];
		size_t o2;

		if (l7_scalar(ld, k, &km->name)) {
			ret = -EINVAL;
			continue;
		}
		if (lower) {
			char *s = (char *)km->name;

			for (; *s; s++)
				if (*s >= 'A' && *s <= 'Z')
					*s = (char)(*s - 'A' + 'a');
		}
		o2 = zm_yl_push_field(&ld->yl, km->name);
		if (m->type == YAML_MAPPING_NODE &&
		    m->data.mapping.pairs.start == m->data.mapping.pairs.top)
			km->m.kind = L7_STR_NONE;
		else
			ret = l7_strmatch(ld, m, &km->m) ?: ret;
		zm_yl_pop(&ld->yl, o2);
	}
	zm_yl_pop(&ld->yl, old);
	return ret;
}

/* One of match[] (l7_item_fn). */
static int l7_match_load(struct l7_ld *ld, yaml_node_t *n, void *elem, void *ctx)
{
	static const char *const known[] = {
	    "name",	"uri",		"scheme",	   "method",	    "authority",
	    "headers",	"port",		"queryParams",	   "ignoreUriCase", "withoutHeaders",
	    "gateways", "sourceLabels", "sourceNamespace", "statPrefix",    NULL};
	struct l7_http_match *m = elem;
	int ret = l7_map_check(ld, n, known);

	(void)ctx;
	if (ret && n->type != YAML_MAPPING_NODE)
		return ret;
	m->line = zm_yl_line(n);
	ret = l7_str_at(ld, n, "name", &m->name) ?: ret;
	ret = l7_at(ld, n, "uri", l7_strmatch, &m->uri) ?: ret;
	ret = l7_at(ld, n, "scheme", l7_strmatch, &m->scheme) ?: ret;
	ret = l7_at(ld, n, "method", l7_strmatch, &m->method) ?: ret;
	ret = l7_at(ld, n, "authority", l7_strmatch, &m->authority) ?: ret;
	ret = l7_kvmatch_at(ld, n, "headers", true, &m->headers, &m->n_headers) ?: ret;
	ret =
	    l7_kvmatch_at(ld, n, "withoutHeaders", true, &m->without_headers, &m->n_without_headers)
		?: ret;
	ret =
	    l7_kvmatch_at(ld, n, "queryParams", false, &m->query_params, &m->n_query_params) ?: ret;
	ret = l7_uint_at(ld, n, "port", 65535, &m->port) ?: ret;
	ret = l7_bool_at(ld, n, "ignoreUriCase", &m->ignore_uri_case) ?: ret;
	if (zm_yl_get(&ld->yl, n, "sourceLabels") || zm_yl_get(&ld->yl, n, "sourceNamespace")) {
		zm_yl_error(&ld->yl, n,
			    "sourceLabels/sourceNamespace are not supported by the waypoint");
		ret = -EINVAL;
	}
	return ret;
}

/* port: {number: N} into the unsigned int at out. */
static int l7_port_load(struct l7_ld *ld, yaml_node_t *n, void *out)
{
	static const char *const known[] = {"number", NULL};
	int ret = l7_map_check(ld, n, known);

	return l7_uint_at(ld, n, "number", 65535, out) ?: ret;
}

/* A destination {host, subset, port} into the struct l7_dest at out (l7_read_fn). */
static int l7_destination_load(struct l7_ld *ld, yaml_node_t *n, void *out)
{
	static const char *const known[] = {"host", "subset", "port", NULL};
	struct l7_dest *d = out;
	const char *host = NULL;
	int ret = l7_map_check(ld, n, known);

	if (ret && n->type != YAML_MAPPING_NODE)
		return ret;
	d->line = zm_yl_line(n);
	ret = l7_str_at(ld, n, "host", &host) ?: ret;
	ret = l7_str_at(ld, n, "subset", &d->subset) ?: ret;
	if (!d->subset)
		d->subset = "";
	ret = l7_at(ld, n, "port", l7_port_load, &d->port) ?: ret;
	if (!host) {
		if (!ret)
			zm_yl_error(&ld->yl, n, "host is required");
		return -EINVAL;
	}
	d->host = l7_qualify(ld, host);
	return ret;
}

static int l7_header_ops_load(struct l7_ld *ld, yaml_node_t *n, void *ops)
{
	static const char *const known[] = {"set", "add", "remove", NULL};
	struct l7_header_ops *o = ops;
	int ret = l7_map_check(ld, n, known);

	ret = l7_kvmap_at(ld, n, "set", &o->set, &o->n_set) ?: ret;
	ret = l7_kvmap_at(ld, n, "add", &o->add, &o->n_add) ?: ret;
	ret = l7_strlist_at(ld, n, "remove", &o->remove, &o->n_remove) ?: ret;
	return ret;
}

/* headers: {request, response} into the struct l7_http_route at route. */
static int l7_headers_load(struct l7_ld *ld, yaml_node_t *n, void *route)
{
	static const char *const known[] = {"request", "response", NULL};
	struct l7_http_route *r = route;
	int ret = l7_map_check(ld, n, known);

	ret = l7_at(ld, n, "request", l7_header_ops_load, &r->req_ops) ?: ret;
	return l7_at(ld, n, "response", l7_header_ops_load, &r->resp_ops) ?: ret;
}

/* What a route[] item adds to: the weights' total and, for http, the route's header ops. */
struct l7_dests_ctx {
	unsigned int *total;
	struct l7_http_route *hr;
};

/* route[i]: {destination, weight, headers} (l7_item_fn). */
static int l7_route_dest_load(struct l7_ld *ld, yaml_node_t *it, void *elem, void *ctx)
{
	static const char *const known[] = {"destination", "weight", "headers", NULL};
	struct l7_dests_ctx *c = ctx;
	struct l7_dest *dst = elem;
	int ret = l7_map_check(ld, it, known);

	ret = l7_need_at(ld, it, "destination", l7_destination_load, dst) ?: ret;
	ret = l7_uint_at(ld, it, "weight", 100000, &dst->weight) ?: ret;
	*c->total += dst->weight;
	/* Per-destination header ops: folded into the route's (same effect here). */
	if (c->hr)
		ret = l7_at(ld, it, "headers", l7_headers_load, c->hr) ?: ret;
	return ret;
}

static int l7_route_dests_load(struct l7_ld *ld, yaml_node_t *map, struct l7_dest **out, size_t *n,
			       unsigned int *total, struct l7_http_route *hr)
{
	struct l7_dests_ctx c = {total, hr};

	return l7_list_at(ld, map, "route", sizeof(**out), l7_route_dest_load, &c, (void **)out, n);
}

static int l7_retry_on_parse(struct l7_ld *ld, yaml_node_t *n, const char *s, uint32_t *out)
{
	static const struct {
		const char *name;
		uint32_t bit;
	} names[] = {
	    {"5xx", L7_RETRY_5XX},
	    {"gateway-error", L7_RETRY_GATEWAY_ERROR},
	    {"connect-failure", L7_RETRY_CONNECT_FAILURE},
	    {"reset", L7_RETRY_RESET},
	    {"refused-stream", L7_RETRY_REFUSED_STREAM},
	    {"retriable-4xx", L7_RETRY_RETRIABLE_4XX},
	    {"unavailable", L7_RETRY_UNAVAILABLE},
	    {"retriable-status-codes", 0},
	    {"cancelled", 0},
	    {"deadline-exceeded", 0},
	    {"resource-exhausted", 0},
	};
	const char *p = s;

	while (*p) {
		size_t len = strcspn(p, ","), i;

		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (strlen(names[i].name) == len && !strncmp(names[i].name, p, len))
				break;
		if (i == sizeof(names) / sizeof(names[0])) {
			zm_yl_error(&ld->yl, n, "unknown retry condition \"%.*s\"", (int)len, p);
			return -EINVAL;
		}
		*out |= names[i].bit;
		p += len;
		if (*p == ',')
			p++;
	}
	return 0;
}

static int l7_retries_load(struct l7_ld *ld, yaml_node_t *n, void *route)
{
	static const char *const known[] = {"attempts", "perTryTimeout", "retryOn",
					    "retryRemoteLocalities", NULL};
	struct l7_http_route *r = route;
	const char *on = NULL;
	int ret = l7_map_check(ld, n, known);

	r->retries.set = true;
	ret = l7_uint_at(ld, n, "attempts", 100, &r->retries.attempts) ?: ret;
	ret = l7_duration_at(ld, n, "perTryTimeout", &r->retries.per_try_timeout_ms) ?: ret;
	ret = l7_str_at(ld, n, "retryOn", &on) ?: ret;
	if (on) {
		size_t old = zm_yl_push_field(&ld->yl, "retryOn");

		ret = l7_retry_on_parse(ld, zm_yl_get(&ld->yl, n, "retryOn"), on,
					&r->retries.retry_on)
			  ?: ret;
		zm_yl_pop(&ld->yl, old);
	} else {
		r->retries.retry_on =
		    L7_RETRY_CONNECT_FAILURE | L7_RETRY_REFUSED_STREAM | L7_RETRY_UNAVAILABLE;
	}
	return ret;
}

static int l7_percentage(struct l7_ld *ld, yaml_node_t *p, void *pct)
{
	static const char *const known[] = {"value", NULL};
	int ret = l7_map_check(ld, p, known);

	return l7_double_at(ld, p, "value", 100, pct) ?: ret;
}

/* percentage: {value: 0..100} or the deprecated integer percent. Absent means 100. */
static int l7_percent_load(struct l7_ld *ld, yaml_node_t *n, const char *key, double *pct)
{
	unsigned int legacy = 100;
	int ret = 0;

	*pct = 100;
	if (zm_yl_get(&ld->yl, n, key)) {
		ret = l7_at(ld, n, key, l7_percentage, pct);
	} else if (zm_yl_get(&ld->yl, n, "percent")) {
		ret = l7_uint_at(ld, n, "percent", 100, &legacy);
		*pct = legacy;
	}
	return ret;
}

static int l7_delay_load(struct l7_ld *ld, yaml_node_t *d, void *route)
{
	static const char *const known[] = {"fixedDelay", "percentage", "percent",
					    "exponentialDelay", NULL};
	struct l7_http_route *r = route;
	int ret = l7_map_check(ld, d, known);

	ret = l7_duration_at(ld, d, "fixedDelay", &r->fault.delay_ms) ?: ret;
	ret = l7_percent_load(ld, d, "percentage", &r->fault.delay_pct) ?: ret;
	if (!zm_yl_get(&ld->yl, d, "fixedDelay")) {
		zm_yl_error(&ld->yl, d, "fixedDelay is required");
		ret = -EINVAL;
	}
	return ret;
}

static int l7_abort_load(struct l7_ld *ld, yaml_node_t *a, void *route)
{
	static const char *const known[] = {"httpStatus", "grpcStatus", "http2Error", "percentage",
					    NULL};
	struct l7_http_route *r = route;
	int ret = l7_map_check(ld, a, known);

	ret = l7_uint_at(ld, a, "httpStatus", 599, &r->fault.abort_status) ?: ret;
	ret = l7_percent_load(ld, a, "percentage", &r->fault.abort_pct) ?: ret;
	if (r->fault.abort_status < 200) {
		zm_yl_error(&ld->yl, a,
			    "httpStatus 200..599 is required (grpcStatus and http2Error are not "
			    "supported)");
		ret = -EINVAL;
	}
	return ret;
}

static int l7_fault_load(struct l7_ld *ld, yaml_node_t *n, void *route)
{
	static const char *const known[] = {"delay", "abort", NULL};
	int ret = l7_map_check(ld, n, known);

	ret = l7_at(ld, n, "delay", l7_delay_load, route) ?: ret;
	return l7_at(ld, n, "abort", l7_abort_load, route) ?: ret;
}

static int l7_rewrite_load(struct l7_ld *ld, yaml_node_t *v, void *route)
{
	static const char *const known[] = {"uri", "authority", NULL};
	struct l7_http_route *r = route;
	int ret = l7_map_check(ld, v, known);

	ret = l7_str_at(ld, v, "uri", &r->rewrite.uri) ?: ret;
	return l7_str_at(ld, v, "authority", &r->rewrite.authority) ?: ret;
}

static int l7_redirect_load(struct l7_ld *ld, yaml_node_t *v, void *route)
{
	static const char *const known[] = {"uri",    "authority",    "port", "derivePort",
					    "scheme", "redirectCode", NULL};
	struct l7_http_route *r = route;
	int ret;

	r->redirect.set = true;
	r->redirect.code = 301;
	ret = l7_map_check(ld, v, known);
	ret = l7_str_at(ld, v, "uri", &r->redirect.uri) ?: ret;
	ret = l7_str_at(ld, v, "authority", &r->redirect.authority) ?: ret;
	ret = l7_str_at(ld, v, "scheme", &r->redirect.scheme) ?: ret;
	return l7_uint_at(ld, v, "redirectCode", 399, &r->redirect.code) ?: ret;
}

static int l7_body_load(struct l7_ld *ld, yaml_node_t *b, void *body)
{
	static const char *const known[] = {"string", NULL};
	int ret = l7_map_check(ld, b, known);

	return l7_str_at(ld, b, "string", body) ?: ret;
}

static int l7_direct_load(struct l7_ld *ld, yaml_node_t *v, void *route)
{
	static const char *const known[] = {"status", "body", NULL};
	struct l7_http_route *r = route;
	int ret = l7_map_check(ld, v, known);

	ret = l7_uint_at(ld, v, "status", 599, &r->direct.status) ?: ret;
	ret = l7_at(ld, v, "body", l7_body_load, &r->direct.body) ?: ret;
	if (r->direct.status < 200) {
		zm_yl_error(&ld->yl, v, "status 200..599 is required");
		ret = -EINVAL;
	}
	return ret;
}

/* One of http[] (l7_item_fn). */
static int l7_http_route_load(struct l7_ld *ld, yaml_node_t *n, void *elem, void *ctx)
{
	static const char *const known[] = {"name",
					    "match",
					    "route",
					    "redirect",
					    "directResponse",
					    "rewrite",
					    "timeout",
					    "retries",
					    "fault",
					    "mirror",
					    "mirrorPercentage",
					    "mirrorPercent",
					    "headers",
					    "corsPolicy",
					    "delegate",
					    "mirrors",
					    NULL};
	static const char *const unsupported[] = {"corsPolicy", "delegate", "mirrors", NULL};
	struct l7_http_route *r = elem;
	size_t i;
	int ret = l7_map_check(ld, n, known);

	(void)ctx;
	if (ret && n->type != YAML_MAPPING_NODE)
		return ret;
	r->line = zm_yl_line(n);
	ret = l7_str_at(ld, n, "name", &r->name) ?: ret;
	ret = l7_list_at(ld, n, "match", sizeof(*r->matches), l7_match_load, NULL,
			 (void **)&r->matches, &r->n_matches)
		  ?: ret;
	ret = l7_route_dests_load(ld, n, &r->dests, &r->n_dests, &r->total_weight, r) ?: ret;
	ret = l7_duration_at(ld, n, "timeout", &r->timeout_ms) ?: ret;
	ret = l7_at(ld, n, "retries", l7_retries_load, r) ?: ret;
	ret = l7_at(ld, n, "fault", l7_fault_load, r) ?: ret;
	if (zm_yl_get(&ld->yl, n, "mirror")) {
		ret = l7_at(ld, n, "mirror", l7_destination_load, &r->mirror) ?: ret;
		r->mirror_pct = 100;
		ret = l7_percent_load(ld, n, "mirrorPercentage", &r->mirror_pct) ?: ret;
	}
	ret = l7_at(ld, n, "headers", l7_headers_load, r) ?: ret;
	ret = l7_at(ld, n, "rewrite", l7_rewrite_load, r) ?: ret;
	ret = l7_at(ld, n, "redirect", l7_redirect_load, r) ?: ret;
	ret = l7_at(ld, n, "directResponse", l7_direct_load, r) ?: ret;
	for (i = 0; unsupported[i]; i++)
		ret = l7_refuse_at(ld, n, unsupported[i], "not supported by the waypoint") ?: ret;
	if (!r->n_dests && !r->redirect.set && !r->direct.status) {
		zm_yl_error(&ld->yl, n, "a route needs route, redirect or directResponse");
		ret = -EINVAL;
	}
	return ret;
}

/* tcp: only the first route is used; the rest must still be a list. */
static int l7_tcp_load(struct l7_ld *ld, yaml_node_t *spec, struct l7_vs *vs)
{
	static const char *const known[] = {"match", "route", NULL};
	yaml_node_t *seq = zm_yl_get(&ld->yl, spec, "tcp"), *t;
	size_t old;
	int ret;

	if (!seq)
		return 0;
	if (seq->type != YAML_SEQUENCE_NODE) {
		zm_yl_error_at(&ld->yl, seq, "tcp", "want a list");
		return -EINVAL;
	}
	if (seq->data.sequence.items.top == seq->data.sequence.items.start)
		return 0;
	t = zm_yl_node(&ld->yl, seq->data.sequence.items.start[0]);
	old = zm_yl_push_field(&ld->yl, "tcp[0]");
	ret = l7_map_check(ld, t, known);
	ret = l7_route_dests_load(ld, t, &vs->tcp, &vs->n_tcp, &vs->tcp_weight, NULL) ?: ret;
	zm_yl_pop(&ld->yl, old);
	return ret;
}

int l7_load_vs(struct l7_ld *ld, yaml_node_t *spec, struct l7_vs *vs)
{
	static const char *const known[] = {"hosts", "gateways", "http", "tcp",
					    "tls",   "exportTo", NULL};
	size_t i;
	int ret = l7_map_check(ld, spec, known);

	if (ret && spec->type != YAML_MAPPING_NODE)
		return ret;
	ret = l7_strlist_at(ld, spec, "hosts", &vs->hosts, &vs->n_hosts) ?: ret;
	if (!vs->n_hosts) {
		zm_yl_error(&ld->yl, spec, "hosts is required");
		ret = -EINVAL;
	}
	for (i = 0; i < vs->n_hosts; i++)
		if (vs->hosts[i])
			vs->hosts[i] = l7_qualify(ld, vs->hosts[i]);
	ret = l7_list_at(ld, spec, "http", sizeof(*vs->http), l7_http_route_load, NULL,
			 (void **)&vs->http, &vs->n_http)
		  ?: ret;
	ret = l7_tcp_load(ld, spec, vs) ?: ret;
	return l7_refuse_at(ld, spec, "tls", "tls routes are not supported by the waypoint") ?: ret;
}
