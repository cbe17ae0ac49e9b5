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

#define L7_ALLOC_N(ld, ptr, n)                                                                     \
	((ptr) = l7_alloc((ld)->cfg, ((n) + 1) * sizeof(*(ptr))), (ptr) ? 0 : ((ld)->oom = true, -ENOMEM))

static size_t l7_seq_len(yaml_node_t *n)
{
	return n->type == YAML_SEQUENCE_NODE ?
		       (size_t)(n->data.sequence.items.top - n->data.sequence.items.start) :
		       0;
}

/* A list under key: checks the type and returns its length (0 when absent). */
static int l7_seq_at(struct l7_ld *ld, yaml_node_t *map, const char *key, yaml_node_t **seq,
		     size_t *n)
{
	yaml_node_t *v = l7_get(ld, map, key);

	*seq = v;
	*n = 0;
	if (!v)
		return 0;
	if (v->type != YAML_SEQUENCE_NODE) {
		size_t old = l7_push(ld, key);

		l7_err(ld, v, "want a list");
		l7_pop(ld, old);
		return -EINVAL;
	}
	*n = l7_seq_len(v);
	return 0;
}

static yaml_node_t *l7_item(struct l7_ld *ld, yaml_node_t *seq, size_t i)
{
	return l7_node(ld, seq->data.sequence.items.start[i]);
}

/* headers/queryParams: {name: StringMatch}; an empty match {} means presence. */
static int l7_kvmatch_at(struct l7_ld *ld, yaml_node_t *map, const char *key, bool lower,
			 struct l7_kv_match **out, size_t *n)
{
	yaml_node_t *v = l7_get(ld, map, key);
	yaml_node_pair_t *p;
	size_t old, i = 0;
	int ret = 0;

	if (!v)
		return 0;
	old = l7_push(ld, key);
	if (v->type != YAML_MAPPING_NODE) {
		l7_err(ld, v, "want a mapping of name: {exact|prefix|regex: value}");
		l7_pop(ld, old);
		return -EINVAL;
	}
	*n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
	ret = L7_ALLOC_N(ld, *out, *n);
	for (p = v->data.mapping.pairs.start; !ret && p < v->data.mapping.pairs.top; p++, i++) {
		yaml_node_t *k = l7_node(ld, p->key), *m = l7_node(ld, p->value);
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
		o2 = l7_push(ld, km->name);
		if (m->type == YAML_MAPPING_NODE && m->data.mapping.pairs.start ==
							    m->data.mapping.pairs.top)
			km->m.kind = L7_STR_NONE;
		else
			ret = l7_strmatch(ld, m, &km->m) ?: ret;
		l7_pop(ld, o2);
	}
	l7_pop(ld, old);
	return ret;
}

static int l7_strmatch_at(struct l7_ld *ld, yaml_node_t *map, const char *key,
			  struct l7_strm *out)
{
	yaml_node_t *v = l7_get(ld, map, key);
	size_t old;
	int ret;

	if (!v)
		return 0;
	old = l7_push(ld, key);
	ret = l7_strmatch(ld, v, out);
	l7_pop(ld, old);
	return ret;
}

static int l7_match_load(struct l7_ld *ld, yaml_node_t *n, struct l7_http_match *m)
{
	static const char *const known[] = {
		"name",	   "uri",	    "scheme",	     "method",	       "authority",
		"headers", "port",	    "queryParams",   "ignoreUriCase", "withoutHeaders",
		"gateways", "sourceLabels", "sourceNamespace", "statPrefix",	NULL};
	int ret = l7_map_check(ld, n, known);

	if (ret && n->type != YAML_MAPPING_NODE)
		return ret;
	m->line = l7_line(n);
	ret = l7_str_at(ld, n, "name", &m->name) ?: ret;
	ret = l7_strmatch_at(ld, n, "uri", &m->uri) ?: ret;
	ret = l7_strmatch_at(ld, n, "scheme", &m->scheme) ?: ret;
	ret = l7_strmatch_at(ld, n, "method", &m->method) ?: ret;
	ret = l7_strmatch_at(ld, n, "authority", &m->authority) ?: ret;
	ret = l7_kvmatch_at(ld, n, "headers", true, &m->headers, &m->n_headers) ?: ret;
	ret = l7_kvmatch_at(ld, n, "withoutHeaders", true, &m->without_headers,
			    &m->n_without_headers) ?: ret;
	ret = l7_kvmatch_at(ld, n, "queryParams", false, &m->query_params, &m->n_query_params) ?:
		ret;
	ret = l7_uint_at(ld, n, "port", 65535, &m->port) ?: ret;
	ret = l7_bool_at(ld, n, "ignoreUriCase", &m->ignore_uri_case) ?: ret;
	if (l7_get(ld, n, "sourceLabels") || l7_get(ld, n, "sourceNamespace")) {
		l7_err(ld, n, "sourceLabels/sourceNamespace are not supported by the waypoint");
		ret = -EINVAL;
	}
	return ret;
}

static int l7_destination_load(struct l7_ld *ld, yaml_node_t *n, struct l7_dest *d)
{
	static const char *const known[] = {"host", "subset", "port", NULL};
	static const char *const port_known[] = {"number", NULL};
	yaml_node_t *port;
	const char *host = NULL;
	int ret = l7_map_check(ld, n, known);

	if (ret && n->type != YAML_MAPPING_NODE)
		return ret;
	d->line = l7_line(n);
	ret = l7_str_at(ld, n, "host", &host) ?: ret;
	ret = l7_str_at(ld, n, "subset", &d->subset) ?: ret;
	if (!d->subset)
		d->subset = "";
	port = l7_get(ld, n, "port");
	if (port) {
		size_t old = l7_push(ld, "port");

		ret = l7_map_check(ld, port, port_known) ?: ret;
		ret = l7_uint_at(ld, port, "number", 65535, &d->port) ?: ret;
		l7_pop(ld, old);
	}
	if (!host) {
		if (!ret)
			l7_err(ld, n, "host is required");
		return -EINVAL;
	}
	d->host = l7_qualify(ld, host);
	return ret;
}

static int l7_header_ops_load(struct l7_ld *ld, yaml_node_t *n, struct l7_header_ops *o)
{
	static const char *const known[] = {"set", "add", "remove", NULL};
	int ret = l7_map_check(ld, n, known);

	ret = l7_kvmap_at(ld, n, "set", &o->set, &o->n_set) ?: ret;
	ret = l7_kvmap_at(ld, n, "add", &o->add, &o->n_add) ?: ret;
	ret = l7_strlist_at(ld, n, "remove", &o->remove, &o->n_remove) ?: ret;
	return ret;
}

static int l7_headers_load(struct l7_ld *ld, yaml_node_t *map, struct l7_header_ops *req,
			   struct l7_header_ops *resp)
{
	static const char *const known[] = {"request", "response", NULL};
	yaml_node_t *n = l7_get(ld, map, "headers"), *v;
	size_t old;
	int ret;

	if (!n)
		return 0;
	old = l7_push(ld, "headers");
	ret = l7_map_check(ld, n, known);
	if ((v = l7_get(ld, n, "request"))) {
		size_t o2 = l7_push(ld, "request");

		ret = l7_header_ops_load(ld, v, req) ?: ret;
		l7_pop(ld, o2);
	}
	if ((v = l7_get(ld, n, "response"))) {
		size_t o2 = l7_push(ld, "response");

		ret = l7_header_ops_load(ld, v, resp) ?: ret;
		l7_pop(ld, o2);
	}
	l7_pop(ld, old);
	return ret;
}

/* route[]: {destination, weight, headers}. */
static int l7_route_dests_load(struct l7_ld *ld, yaml_node_t *map, struct l7_dest **out,
			       size_t *n, unsigned int *total, struct l7_http_route *hr)
{
	static const char *const known[] = {"destination", "weight", "headers", NULL};
	yaml_node_t *seq;
	size_t i, old;
	int ret = l7_seq_at(ld, map, "route", &seq, n);

	if (ret || !*n)
		return ret;
	ret = L7_ALLOC_N(ld, *out, *n);
	if (ret)
		return ret;
	old = l7_push(ld, "route");
	for (i = 0; i < *n; i++) {
		yaml_node_t *it = l7_item(ld, seq, i), *d;
		struct l7_dest *dst = &(*out)[i];
		size_t o2 = l7_push_idx(ld, i);

		ret = l7_map_check(ld, it, known) ?: ret;
		d = l7_get(ld, it, "destination");
		if (d) {
			size_t o3 = l7_push(ld, "destination");

			ret = l7_destination_load(ld, d, dst) ?: ret;
			l7_pop(ld, o3);
		} else {
			l7_err(ld, it, "destination is required");
			ret = -EINVAL;
		}
		ret = l7_uint_at(ld, it, "weight", 100000, &dst->weight) ?: ret;
		*total += dst->weight;
		/* Per-destination header ops: folded into the route's (same effect here). */
		if (hr)
			ret = l7_headers_load(ld, it, &hr->req_ops, &hr->resp_ops) ?: ret;
		l7_pop(ld, o2);
	}
	l7_pop(ld, old);
	return ret;
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
			l7_err(ld, n, "unknown retry condition \"%.*s\"", (int)len, p);
			return -EINVAL;
		}
		*out |= names[i].bit;
		p += len;
		if (*p == ',')
			p++;
	}
	return 0;
}

static int l7_retries_load(struct l7_ld *ld, yaml_node_t *n, struct l7_http_route *r)
{
	static const char *const known[] = {"attempts", "perTryTimeout", "retryOn",
					    "retryRemoteLocalities", NULL};
	const char *on = NULL;
	int ret = l7_map_check(ld, n, known);

	r->retries.set = true;
	ret = l7_uint_at(ld, n, "attempts", 100, &r->retries.attempts) ?: ret;
	ret = l7_duration_at(ld, n, "perTryTimeout", &r->retries.per_try_timeout_ms) ?: ret;
	ret = l7_str_at(ld, n, "retryOn", &on) ?: ret;
	if (on) {
		size_t old = l7_push(ld, "retryOn");

		ret = l7_retry_on_parse(ld, l7_get(ld, n, "retryOn"), on, &r->retries.retry_on) ?:
			ret;
		l7_pop(ld, old);
	} else {
		r->retries.retry_on = L7_RETRY_CONNECT_FAILURE | L7_RETRY_REFUSED_STREAM |
				      L7_RETRY_UNAVAILABLE;
	}
	return ret;
}

/* percentage: {value: 0..100} or the deprecated integer percent. Absent means 100. */
static int l7_percent_load(struct l7_ld *ld, yaml_node_t *n, const char *key, double *pct)
{
	static const char *const known[] = {"value", NULL};
	yaml_node_t *p = l7_get(ld, n, key);
	unsigned int legacy = 100;
	int ret = 0;

	*pct = 100;
	if (p) {
		size_t old = l7_push(ld, key);

		ret = l7_map_check(ld, p, known);
		ret = l7_double_at(ld, p, "value", 100, pct) ?: ret;
		l7_pop(ld, old);
	} else if (l7_get(ld, n, "percent")) {
		ret = l7_uint_at(ld, n, "percent", 100, &legacy);
		*pct = legacy;
	}
	return ret;
}

static int l7_fault_load(struct l7_ld *ld, yaml_node_t *n, struct l7_http_route *r)
{
	static const char *const known[] = {"delay", "abort", NULL};
	static const char *const delay_known[] = {"fixedDelay", "percentage", "percent",
						  "exponentialDelay", NULL};
	static const char *const abort_known[] = {"httpStatus", "grpcStatus", "http2Error",
						  "percentage", NULL};
	yaml_node_t *d, *a;
	int ret = l7_map_check(ld, n, known);
	size_t old;

	if ((d = l7_get(ld, n, "delay"))) {
		old = l7_push(ld, "delay");
		ret = l7_map_check(ld, d, delay_known) ?: ret;
		ret = l7_duration_at(ld, d, "fixedDelay", &r->fault.delay_ms) ?: ret;
		ret = l7_percent_load(ld, d, "percentage", &r->fault.delay_pct) ?: ret;
		if (!l7_get(ld, d, "fixedDelay")) {
			l7_err(ld, d, "fixedDelay is required");
			ret = -EINVAL;
		}
		l7_pop(ld, old);
	}
	if ((a = l7_get(ld, n, "abort"))) {
		old = l7_push(ld, "abort");
		ret = l7_map_check(ld, a, abort_known) ?: ret;
		ret = l7_uint_at(ld, a, "httpStatus", 599, &r->fault.abort_status) ?: ret;
		ret = l7_percent_load(ld, a, "percentage", &r->fault.abort_pct) ?: ret;
		if (r->fault.abort_status < 200) {
			l7_err(ld, a, "httpStatus 200..599 is required (grpcStatus and "
				      "http2Error are not supported)");
			ret = -EINVAL;
		}
		l7_pop(ld, old);
	}
	return ret;
}

static int l7_rewrite_redirect_load(struct l7_ld *ld, yaml_node_t *n, struct l7_http_route *r)
{
	static const char *const rw_known[] = {"uri", "authority", NULL};
	static const char *const rd_known[] = {"uri",	     "authority",    "port",
					       "derivePort", "scheme",	     "redirectCode",
					       NULL};
	static const char *const dr_known[] = {"status", "body", NULL};
	static const char *const body_known[] = {"string", NULL};
	yaml_node_t *v;
	size_t old;
	int ret = 0;

	if ((v = l7_get(ld, n, "rewrite"))) {
		old = l7_push(ld, "rewrite");
		ret = l7_map_check(ld, v, rw_known) ?: ret;
		ret = l7_str_at(ld, v, "uri", &r->rewrite.uri) ?: ret;
		ret = l7_str_at(ld, v, "authority", &r->rewrite.authority) ?: ret;
		l7_pop(ld, old);
	}
	if ((v = l7_get(ld, n, "redirect"))) {
		old = l7_push(ld, "redirect");
		r->redirect.set = true;
		r->redirect.code = 301;
		ret = l7_map_check(ld, v, rd_known) ?: ret;
		ret = l7_str_at(ld, v, "uri", &r->redirect.uri) ?: ret;
		ret = l7_str_at(ld, v, "authority", &r->redirect.authority) ?: ret;
		ret = l7_str_at(ld, v, "scheme", &r->redirect.scheme) ?: ret;
		ret = l7_uint_at(ld, v, "redirectCode", 399, &r->redirect.code) ?: ret;
		l7_pop(ld, old);
	}
	if ((v = l7_get(ld, n, "directResponse"))) {
		yaml_node_t *b;

		old = l7_push(ld, "directResponse");
		ret = l7_map_check(ld, v, dr_known) ?: ret;
		ret = l7_uint_at(ld, v, "status", 599, &r->direct.status) ?: ret;
		if ((b = l7_get(ld, v, "body"))) {
			size_t o2 = l7_push(ld, "body");

			ret = l7_map_check(ld, b, body_known) ?: ret;
			ret = l7_str_at(ld, b, "string", &r->direct.body) ?: ret;
			l7_pop(ld, o2);
		}
		if (r->direct.status < 200) {
			l7_err(ld, v, "status 200..599 is required");
			ret = -EINVAL;
		}
		l7_pop(ld, old);
	}
	return ret;
}

static int l7_http_route_load(struct l7_ld *ld, yaml_node_t *n, struct l7_http_route *r)
{
	static const char *const known[] = {
		"name",	     "match",	     "route",	 "redirect",	   "directResponse",
		"rewrite",   "timeout",	     "retries",	 "fault",	   "mirror",
		"mirrorPercentage", "mirrorPercent", "headers", "corsPolicy", "delegate",
		"mirrors",   NULL};
	yaml_node_t *seq, *v;
	size_t i, old;
	int ret = l7_map_check(ld, n, known);

	if (ret && n->type != YAML_MAPPING_NODE)
		return ret;
	r->line = l7_line(n);
	ret = l7_str_at(ld, n, "name", &r->name) ?: ret;
	ret = l7_seq_at(ld, n, "match", &seq, &r->n_matches) ?: ret;
	if (r->n_matches && !(ret = L7_ALLOC_N(ld, r->matches, r->n_matches) ?: ret)) {
		old = l7_push(ld, "match");
		for (i = 0; i < r->n_matches; i++) {
			size_t o2 = l7_push_idx(ld, i);

			ret = l7_match_load(ld, l7_item(ld, seq, i), &r->matches[i]) ?: ret;
			l7_pop(ld, o2);
		}
		l7_pop(ld, old);
	}
	ret = l7_route_dests_load(ld, n, &r->dests, &r->n_dests, &r->total_weight, r) ?: ret;
	ret = l7_duration_at(ld, n, "timeout", &r->timeout_ms) ?: ret;
	if ((v = l7_get(ld, n, "retries"))) {
		old = l7_push(ld, "retries");
		ret = l7_retries_load(ld, v, r) ?: ret;
		l7_pop(ld, old);
	}
	if ((v = l7_get(ld, n, "fault"))) {
		old = l7_push(ld, "fault");
		ret = l7_fault_load(ld, v, r) ?: ret;
		l7_pop(ld, old);
	}
	if ((v = l7_get(ld, n, "mirror"))) {
		old = l7_push(ld, "mirror");
		ret = l7_destination_load(ld, v, &r->mirror) ?: ret;
		l7_pop(ld, old);
		r->mirror_pct = 100;
		ret = l7_percent_load(ld, n, "mirrorPercentage", &r->mirror_pct) ?: ret;
	}
	ret = l7_headers_load(ld, n, &r->req_ops, &r->resp_ops) ?: ret;
	ret = l7_rewrite_redirect_load(ld, n, r) ?: ret;
	for (i = 0; i < 3; i++) {
		static const char *const unsupported[] = {"corsPolicy", "delegate", "mirrors"};

		if ((v = l7_get(ld, n, unsupported[i]))) {
			old = l7_push(ld, unsupported[i]);
			l7_err(ld, v, "not supported by the waypoint");
			l7_pop(ld, old);
			ret = -EINVAL;
		}
	}
	if (!r->n_dests && !r->redirect.set && !r->direct.status) {
		l7_err(ld, n, "a route needs route, redirect or directResponse");
		ret = -EINVAL;
	}
	return ret;
}

int l7_load_vs(struct l7_ld *ld, yaml_node_t *spec, struct l7_vs *vs)
{
	static const char *const known[] = {"hosts", "gateways", "http", "tcp", "tls", "exportTo",
					    NULL};
	yaml_node_t *seq;
	size_t i, n = 0, old;
	int ret = l7_map_check(ld, spec, known);

	if (ret && spec->type != YAML_MAPPING_NODE)
		return ret;
	ret = l7_strlist_at(ld, spec, "hosts", &vs->hosts, &vs->n_hosts) ?: ret;
	if (!vs->n_hosts) {
		l7_err(ld, spec, "hosts is required");
		ret = -EINVAL;
	}
	for (i = 0; i < vs->n_hosts; i++)
		if (vs->hosts[i])
			vs->hosts[i] = l7_qualify(ld, vs->hosts[i]);
	ret = l7_seq_at(ld, spec, "http", &seq, &vs->n_http) ?: ret;
	if (vs->n_http && !(ret = L7_ALLOC_N(ld, vs->http, vs->n_http) ?: ret)) {
		old = l7_push(ld, "http");
		for (i = 0; i < vs->n_http; i++) {
			size_t o2 = l7_push_idx(ld, i);

			ret = l7_http_route_load(ld, l7_item(ld, seq, i), &vs->http[i]) ?: ret;
			l7_pop(ld, o2);
		}
		l7_pop(ld, old);
	}
	ret = l7_seq_at(ld, spec, "tcp", &seq, &n) ?: ret;
	if (n) {
		static const char *const tcp_known[] = {"match", "route", NULL};
		yaml_node_t *t = l7_item(ld, seq, 0);

		old = l7_push(ld, "tcp[0]");
		ret = l7_map_check(ld, t, tcp_known) ?: ret;
		ret = l7_route_dests_load(ld, t, &vs->tcp, &vs->n_tcp, &vs->tcp_weight, NULL) ?:
			ret;
		l7_pop(ld, old);
	}
	if ((seq = l7_get(ld, spec, "tls"))) {
		old = l7_push(ld, "tls");
		l7_err(ld, seq, "tls routes are not supported by the waypoint");
		l7_pop(ld, old);
		ret = -EINVAL;
	}
	return ret;
}
