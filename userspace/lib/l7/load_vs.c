// SPDX-License-Identifier: Apache-2.0
/*
 * VirtualService spec reader: hosts, gateways, http routes (match, route with per-destination
 * headers, timeout, retries, fault, mirror and mirrors, headers, rewrite with
 * uriRegexRewrite, redirect with derivePort and prefixRewrite, directResponse, corsPolicy) and
 * the first tcp route, translated as istiod translates them for Envoy (Istio's special cases:
 * the regex "*" is a presence match, :authority in header operations is the authority
 * rewrite, header operations sorted by name). Fields Istio has but the waypoint does not
 * implement (delegate, tls routes, http2Error faults, ...) are refused by name rather than
 * silently ignored, so a user never believes a policy is in force.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "l7/internal.h"

/* A header or query StringMatch: {} and Istio's regex "*" are presence matches. */
static int l7_kvmatch_one(struct l7_ld *ld, yaml_node_t *m, struct l7_kv_match *km)
{
	yaml_node_t *re = m->type == YAML_MAPPING_NODE ? zm_yl_get(&ld->yl, m, "regex") : NULL;

	if (m->type == YAML_MAPPING_NODE &&
	    m->data.mapping.pairs.start == m->data.mapping.pairs.top) {
		km->m.kind = L7_STR_NONE;
		return 0;
	}
	if (re && re->type == YAML_SCALAR_NODE &&
	    !strcmp((const char *)re->data.scalar.value, "*") &&
	    m->data.mapping.pairs.top - m->data.mapping.pairs.start == 1) {
		km->m.kind = L7_STR_NONE; /* Istio: "*" is not RE2, it means present */
		return 0;
	}
	return l7_strmatch(ld, m, &km->m);
}

/* headers/queryParams: {name: StringMatch}. */
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
		ret = l7_kvmatch_one(ld, m, km) ?: ret;
		zm_yl_pop(&ld->yl, o2);
	}
	zm_yl_pop(&ld->yl, old);
	return ret;
}

/* A uri/method/authority/scheme StringMatch: Istio refuses an empty prefix. */
static int l7_uri_match(struct l7_ld *ld, yaml_node_t *n, void *out)
{
	struct l7_strm *m = out;
	int ret = l7_strmatch(ld, n, m);

	if (!ret && m->kind == L7_STR_PREFIX && !m->value[0]) {
		zm_yl_error(&ld->yl, n, "prefix string match should not be empty");
		ret = -EINVAL;
	}
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
	const char *stat = NULL;
	int ret = l7_map_check(ld, n, known);

	(void)ctx;
	if (ret && n->type != YAML_MAPPING_NODE)
		return ret;
	m->line = zm_yl_line(n);
	ret = l7_str_at(ld, n, "name", &m->name) ?: ret;
	ret = l7_at(ld, n, "uri", l7_uri_match, &m->uri) ?: ret;
	ret = l7_at(ld, n, "scheme", l7_uri_match, &m->scheme) ?: ret;
	ret = l7_at(ld, n, "method", l7_uri_match, &m->method) ?: ret;
	ret = l7_at(ld, n, "authority", l7_uri_match, &m->authority) ?: ret;
	ret = l7_kvmatch_at(ld, n, "headers", true, &m->headers, &m->n_headers) ?: ret;
	ret =
	    l7_kvmatch_at(ld, n, "withoutHeaders", true, &m->without_headers, &m->n_without_headers)
		?: ret;
	ret =
	    l7_kvmatch_at(ld, n, "queryParams", false, &m->query_params, &m->n_query_params) ?: ret;
	ret = l7_uint_at(ld, n, "port", 65535, &m->port) ?: ret;
	ret = l7_bool_at(ld, n, "ignoreUriCase", &m->ignore_uri_case) ?: ret;
	ret = l7_kvmap_at(ld, n, "sourceLabels", &m->source_labels, &m->n_source_labels) ?: ret;
	ret = l7_str_at(ld, n, "sourceNamespace", &m->source_namespace) ?: ret;
	ret = l7_strlist_at(ld, n, "gateways", &m->gateways, &m->n_gateways) ?: ret;
	return l7_str_at(ld, n, "statPrefix", &stat) ?: ret; /* stats only: no effect here */
}

/* port: {number: N} into the unsigned int at out. */
static int l7_port_load(struct l7_ld *ld, yaml_node_t *n, void *out)
{
	static const char *const known[] = {"number", NULL};
	int ret = l7_map_check(ld, n, known);

	return l7_uint_at(ld, n, "number", 65535, out) ?: ret;
}

/* A destination {host, subset, port} into the struct l7_dest at out (l7_read_fn). */
int l7_destination_load(struct l7_ld *ld, yaml_node_t *n, void *out)
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

static int l7_kv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct l7_kv *)a)->name, ((const struct l7_kv *)b)->name);
}

/*
 * One set/add map as Istio translates it (translateAppendHeaders): :authority and Host are
 * the authority rewrite, other pseudo-headers dropped, the rest sorted by name.
 */
static int l7_ops_kv(struct l7_ld *ld, yaml_node_t *n, const char *key, struct l7_kv **kv,
		     size_t *cnt, const char **authority)
{
	yaml_node_t *v = zm_yl_get(&ld->yl, n, key);
	size_t i, k = 0;
	int ret = l7_kvmap_at(ld, n, key, kv, cnt);

	if (ret || !*cnt)
		return ret;
	for (i = 0; i < *cnt; i++) {
		struct l7_kv *e = &(*kv)[i];

		if (strpbrk(e->value, "\r\n") || strpbrk(e->name, "\r\n: \t")) {
			if (!(e->name[0] == ':' && !strpbrk(e->name + 1, "\r\n: \t"))) {
				zm_yl_error_at(&ld->yl, v, key, "header %s: CR, LF or whitespace",
					       e->name);
				ret = -EINVAL;
				continue;
			}
		}
		if (!strcasecmp(e->name, ":authority") || !strcasecmp(e->name, "host")) {
			*authority = e->value;
			continue;
		}
		if (e->name[0] == ':')
			continue;
		(*kv)[k++] = *e;
	}
	*cnt = k;
	qsort(*kv, k, sizeof(**kv), l7_kv_cmp);
	return ret;
}

static int l7_header_ops_load(struct l7_ld *ld, yaml_node_t *n, void *ops)
{
	static const char *const known[] = {"set", "add", "remove", NULL};
	struct l7_header_ops *o = ops;
	const char *set_auth = NULL, *add_auth = NULL;
	size_t i, k = 0;
	int ret = l7_map_check(ld, n, known);

	ret = l7_ops_kv(ld, n, "set", &o->set, &o->n_set, &set_auth) ?: ret;
	ret = l7_ops_kv(ld, n, "add", &o->add, &o->n_add, &add_auth) ?: ret;
	ret = l7_strlist_at(ld, n, "remove", &o->remove, &o->n_remove) ?: ret;
	for (i = 0; i < o->n_remove; i++)
		if (o->remove[i] && o->remove[i][0] != ':' && strcasecmp(o->remove[i], "host"))
			o->remove[k++] = o->remove[i];
	o->n_remove = k;
	o->authority = set_auth ? set_auth : add_auth; /* Istio: set wins over add */
	return ret;
}

/* headers: {request, response} into a pair of l7_header_ops (ops[0], ops[1]). */
static int l7_headers_load(struct l7_ld *ld, yaml_node_t *n, void *ops)
{
	static const char *const known[] = {"request", "response", NULL};
	struct l7_header_ops *o = ops;
	int ret = l7_map_check(ld, n, known);

	ret = l7_at(ld, n, "request", l7_header_ops_load, &o[0]) ?: ret;
	ret = l7_at(ld, n, "response", l7_header_ops_load, &o[1]) ?: ret;
	if (o[1].authority) {
		zm_yl_error(&ld->yl, n, "response headers cannot set :authority");
		ret = -EINVAL;
	}
	return ret;
}

_Static_assert(offsetof(struct l7_dest, resp_ops) ==
		   offsetof(struct l7_dest, req_ops) + sizeof(struct l7_header_ops),
	       "destination header ops are a request/response pair");
_Static_assert(offsetof(struct l7_http_route, resp_ops) ==
		   offsetof(struct l7_http_route, req_ops) + sizeof(struct l7_header_ops),
	       "route header ops are a request/response pair");

/* route[i]: {destination, weight, headers} (l7_item_fn); ctx: the weights' total. */
static int l7_route_dest_load(struct l7_ld *ld, yaml_node_t *it, void *elem, void *ctx)
{
	static const char *const known[] = {"destination", "weight", "headers", NULL};
	unsigned int *total = ctx;
	struct l7_dest *dst = elem;
	int ret = l7_map_check(ld, it, known);

	ret = l7_need_at(ld, it, "destination", l7_destination_load, dst) ?: ret;
	ret = l7_uint_at(ld, it, "weight", 100000, &dst->weight) ?: ret;
	*total += dst->weight;
	return l7_at(ld, it, "headers", l7_headers_load, &dst->req_ops) ?: ret;
}

static int l7_route_dests_load(struct l7_ld *ld, yaml_node_t *map, struct l7_dest **out, size_t *n,
			       unsigned int *total)
{
	return l7_list_at(ld, map, "route", sizeof(**out), l7_route_dest_load, total, (void **)out,
			  n);
}

/* retryOn: Envoy's conditions (Istio's list), and HTTP status codes as numbers. */
static int l7_retry_on_parse(struct l7_ld *ld, yaml_node_t *n, const char *s, struct l7_retry *rt)
{
	static const struct {
		const char *name;
		uint32_t bit;
	} names[] = {
	    {"5xx", L7_RETRY_5XX},
	    {"gateway-error", L7_RETRY_GATEWAY_ERROR},
	    {"reset", L7_RETRY_RESET},
	    {"reset-before-request", L7_RETRY_RESET_BEFORE_REQUEST},
	    {"connect-failure", L7_RETRY_CONNECT_FAILURE},
	    {"retriable-4xx", L7_RETRY_RETRIABLE_4XX},
	    {"refused-stream", L7_RETRY_REFUSED_STREAM},
	    {"retriable-status-codes", L7_RETRY_RETRIABLE_CODES},
	    {"retriable-headers", L7_RETRY_RETRIABLE_HEADERS},
	    {"envoy-ratelimited", L7_RETRY_ENVOY_RATELIMITED},
	    {"http3-post-connect-failure", L7_RETRY_HTTP3_POST_CONNECT},
	    {"cancelled", L7_RETRY_CANCELLED},
	    {"deadline-exceeded", L7_RETRY_DEADLINE_EXCEEDED},
	    {"internal", L7_RETRY_INTERNAL},
	    {"resource-exhausted", L7_RETRY_RESOURCE_EXHAUSTED},
	    {"unavailable", L7_RETRY_UNAVAILABLE},
	};
	const char *p = s;

	rt->retry_on = 0;
	while (*p) {
		size_t len, i;
		char *end;
		unsigned long code;

		while (*p == ' ')
			p++;
		len = strcspn(p, ", ");
		code = strtoul(p, &end, 10);
		if (len && end == p + len && code >= 100 && code <= 599) {
			/* Istio: integers are status codes, and imply retriable-status-codes. */
			if (rt->n_codes < L7_RETRY_MAX_CODES)
				rt->codes[rt->n_codes++] = (unsigned int)code;
			rt->retry_on |= L7_RETRY_RETRIABLE_CODES;
		} else if (len) {
			for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
				if (strlen(names[i].name) == len && !strncmp(names[i].name, p, len))
					break;
			if (i == sizeof(names) / sizeof(names[0])) {
				zm_yl_error(&ld->yl, n, "unknown retry condition \"%.*s\"",
					    (int)len, p);
				return -EINVAL;
			}
			rt->retry_on |= names[i].bit;
		}
		p += len;
		while (*p == ',' || *p == ' ')
			p++;
	}
	return 0;
}

static int l7_retries_load(struct l7_ld *ld, yaml_node_t *n, void *route)
{
	static const char *const known[] = {"attempts",
					    "perTryTimeout",
					    "retryOn",
					    "retryRemoteLocalities",
					    "retryIgnorePreviousHosts",
					    "backoff",
					    NULL};
	struct l7_http_route *r = route;
	const char *on = NULL;
	bool flag;
	uint32_t backoff;
	int ret = l7_map_check(ld, n, known);

	r->retries_set = true;
	r->retries.retry_on = L7_RETRY_DEFAULT;
	ret = l7_uint_at(ld, n, "attempts", 100, &r->retries.attempts) ?: ret;
	ret = l7_duration_at(ld, n, "perTryTimeout", &r->retries.per_try_timeout_ms) ?: ret;
	ret = l7_str_at(ld, n, "retryOn", &on) ?: ret;
	/* Locality and host selection: one locality, and a retry picks among all endpoints. */
	ret = l7_bool_at(ld, n, "retryRemoteLocalities", &flag) ?: ret;
	ret = l7_bool_at(ld, n, "retryIgnorePreviousHosts", &flag) ?: ret;
	ret = l7_duration_at(ld, n, "backoff", &backoff) ?: ret;
	if (on) {
		size_t old = zm_yl_push_field(&ld->yl, "retryOn");

		ret =
		    l7_retry_on_parse(ld, zm_yl_get(&ld->yl, n, "retryOn"), on, &r->retries) ?: ret;
		zm_yl_pop(&ld->yl, old);
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
static int l7_percent_load(struct l7_ld *ld, yaml_node_t *n, const char *key,
			   const char *legacy_key, double *pct)
{
	unsigned int legacy = 100;
	int ret = 0;

	*pct = 100;
	if (zm_yl_get(&ld->yl, n, key)) {
		ret = l7_at(ld, n, key, l7_percentage, pct);
	} else if (legacy_key && zm_yl_get(&ld->yl, n, legacy_key)) {
		ret = l7_uint_at(ld, n, legacy_key, 100, &legacy);
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
	ret = l7_percent_load(ld, d, "percentage", "percent", &r->fault.delay_pct) ?: ret;
	ret = l7_refuse_at(ld, d, "exponentialDelay",
			   "exponentialDelay is not supported (Istio does not implement it)")
		  ?: ret;
	if (!zm_yl_get(&ld->yl, d, "fixedDelay")) {
		zm_yl_error(&ld->yl, d, "fixedDelay is required");
		ret = -EINVAL;
	}
	return ret;
}

/* grpcStatus: a code name ("UNAVAILABLE") or number, as Istio accepts it. */
static int l7_grpc_code(const char *s)
{
	static const char *const names[] = {"OK",
					    "CANCELLED",
					    "UNKNOWN",
					    "INVALID_ARGUMENT",
					    "DEADLINE_EXCEEDED",
					    "NOT_FOUND",
					    "ALREADY_EXISTS",
					    "PERMISSION_DENIED",
					    "RESOURCE_EXHAUSTED",
					    "FAILED_PRECONDITION",
					    "ABORTED",
					    "OUT_OF_RANGE",
					    "UNIMPLEMENTED",
					    "INTERNAL",
					    "UNAVAILABLE",
					    "DATA_LOSS",
					    "UNAUTHENTICATED"};
	char *end;
	unsigned long n = strtoul(s, &end, 10);
	int i;

	if (*s && !*end && n <= 16)
		return (int)n;
	for (i = 0; i < 17; i++)
		if (!strcmp(names[i], s))
			return i;
	return -1;
}

static int l7_abort_load(struct l7_ld *ld, yaml_node_t *a, void *route)
{
	static const char *const known[] = {"httpStatus", "grpcStatus", "http2Error",
					    "percentage", "percent",	NULL};
	struct l7_http_route *r = route;
	const char *grpc = NULL;
	int ret = l7_map_check(ld, a, known);

	ret = l7_uint_at(ld, a, "httpStatus", 599, &r->fault.abort_status) ?: ret;
	ret = l7_str_at(ld, a, "grpcStatus", &grpc) ?: ret;
	ret = l7_percent_load(ld, a, "percentage", "percent", &r->fault.abort_pct) ?: ret;
	ret =
	    l7_refuse_at(ld, a, "http2Error", "http2Error is not supported by the waypoint") ?: ret;
	r->fault.abort_grpc = -1;
	if (grpc && (r->fault.abort_grpc = l7_grpc_code(grpc)) < 0) {
		zm_yl_error_at(&ld->yl, zm_yl_get(&ld->yl, a, "grpcStatus"), "grpcStatus",
			       "unknown gRPC status \"%s\"", grpc);
		ret = -EINVAL;
	}
	if (!grpc && r->fault.abort_status < 200) {
		zm_yl_error(&ld->yl, a, "httpStatus 200..599 or grpcStatus is required");
		ret = -EINVAL;
	}
	if (grpc)
		r->fault.abort_status = 200; /* a gRPC abort is an HTTP 200 carrying grpc-status */
	return ret;
}

static int l7_fault_load(struct l7_ld *ld, yaml_node_t *n, void *route)
{
	static const char *const known[] = {"delay", "abort", NULL};
	int ret = l7_map_check(ld, n, known);

	ret = l7_at(ld, n, "delay", l7_delay_load, route) ?: ret;
	return l7_at(ld, n, "abort", l7_abort_load, route) ?: ret;
}

static int l7_regex_rewrite_load(struct l7_ld *ld, yaml_node_t *v, void *route)
{
	static const char *const known[] = {"match", "rewrite", NULL};
	struct l7_http_route *r = route;
	struct l7_strm m = {.kind = L7_STR_REGEX};
	int ret = l7_map_check(ld, v, known);

	ret = l7_str_at(ld, v, "match", &m.value) ?: ret;
	ret = l7_str_at(ld, v, "rewrite", &r->rewrite.re_sub) ?: ret;
	if (!m.value || !r->rewrite.re_sub) {
		zm_yl_error(&ld->yl, v, "uriRegexRewrite needs both match and rewrite");
		return -EINVAL;
	}
	/* A search, not a full match: Envoy's regex_rewrite substitutes every occurrence. */
	ret = l7_regex_compile_search(ld, zm_yl_get(&ld->yl, v, "match"), &m) ?: ret;
	r->rewrite.re = m.re;
	return ret;
}

static int l7_rewrite_load(struct l7_ld *ld, yaml_node_t *v, void *route)
{
	static const char *const known[] = {"uri", "uriRegexRewrite", "authority", NULL};
	struct l7_http_route *r = route;
	int ret = l7_map_check(ld, v, known);

	ret = l7_str_at(ld, v, "uri", &r->rewrite.uri) ?: ret;
	ret = l7_at(ld, v, "uriRegexRewrite", l7_regex_rewrite_load, r) ?: ret;
	ret = l7_str_at(ld, v, "authority", &r->rewrite.authority) ?: ret;
	if (r->rewrite.uri && r->rewrite.re) {
		zm_yl_error(&ld->yl, v, "rewrite may only contain one of uri or uriRegexRewrite");
		ret = -EINVAL;
	}
	return ret;
}

static int l7_redirect_load(struct l7_ld *ld, yaml_node_t *v, void *route)
{
	static const char *const known[] = {"uri",    "authority",    "port",	       "derivePort",
					    "scheme", "redirectCode", "prefixRewrite", NULL};
	static const char *const derive[] = {"FROM_PROTOCOL_DEFAULT", "FROM_REQUEST_PORT", NULL};
	struct l7_http_route *r = route;
	const char *dp = NULL;
	int ret, i;

	r->redirect.set = true;
	r->redirect.code = 301;
	ret = l7_map_check(ld, v, known);
	ret = l7_str_at(ld, v, "uri", &r->redirect.uri) ?: ret;
	ret = l7_str_at(ld, v, "prefixRewrite", &r->redirect.prefix) ?: ret;
	ret = l7_str_at(ld, v, "authority", &r->redirect.authority) ?: ret;
	ret = l7_str_at(ld, v, "scheme", &r->redirect.scheme) ?: ret;
	ret = l7_uint_at(ld, v, "redirectCode", 999, &r->redirect.code) ?: ret;
	ret = l7_uint_at(ld, v, "port", 65535, &r->redirect.port) ?: ret;
	ret = l7_str_at(ld, v, "derivePort", &dp) ?: ret;
	if (zm_yl_get(&ld->yl, v, "port"))
		r->redirect.port_rule = L7_PORT_FIXED;
	for (i = 0; dp && derive[i] && strcmp(derive[i], dp); i++)
		;
	if (dp && !derive[i]) {
		zm_yl_error_at(&ld->yl, zm_yl_get(&ld->yl, v, "derivePort"), "derivePort",
			       "want FROM_PROTOCOL_DEFAULT or FROM_REQUEST_PORT");
		ret = -EINVAL;
	} else if (dp) {
		r->redirect.port_rule = i ? L7_PORT_FROM_REQUEST : L7_PORT_PROTOCOL_DEFAULT;
	}
	if (r->redirect.code != 301 && r->redirect.code != 302 && r->redirect.code != 303 &&
	    r->redirect.code != 307 && r->redirect.code != 308) {
		zm_yl_error(&ld->yl, v, "redirectCode %u: want 301, 302, 303, 307 or 308",
			    r->redirect.code);
		ret = -EINVAL;
	}
	if (r->redirect.scheme && strcmp(r->redirect.scheme, "http") &&
	    strcmp(r->redirect.scheme, "https")) {
		zm_yl_error(&ld->yl, v, "invalid redirect scheme, must be \"http\" or \"https\"");
		ret = -EINVAL;
	}
	if (r->redirect.uri && r->redirect.prefix) {
		zm_yl_error(&ld->yl, v, "redirect may only specify one of uri or prefixRewrite");
		ret = -EINVAL;
	}
	return ret;
}

static int l7_body_load(struct l7_ld *ld, yaml_node_t *b, void *body)
{
	static const char *const known[] = {"string", "bytes", NULL};
	int ret = l7_map_check(ld, b, known);

	ret = l7_refuse_at(ld, b, "bytes", "body.bytes is not supported (use body.string)") ?: ret;
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

/* mirrors[i]: {destination, percentage} (l7_item_fn). */
static int l7_mirror_item(struct l7_ld *ld, yaml_node_t *it, void *elem, void *ctx)
{
	static const char *const known[] = {"destination", "percentage", NULL};
	struct l7_mirror *m = elem;
	int ret = l7_map_check(ld, it, known);

	(void)ctx;
	ret = l7_need_at(ld, it, "destination", l7_destination_load, &m->dest) ?: ret;
	return l7_percent_load(ld, it, "percentage", NULL, &m->pct) ?: ret;
}

/* mirror (+ mirrorPercentage / mirrorPercent), then mirrors[], into one list. */
static int l7_mirrors_load(struct l7_ld *ld, yaml_node_t *n, struct l7_http_route *r)
{
	struct l7_mirror *list = NULL, *all;
	size_t n_list = 0, one = zm_yl_get(&ld->yl, n, "mirror") ? 1 : 0;
	int ret = l7_list_at(ld, n, "mirrors", sizeof(*list), l7_mirror_item, NULL, (void **)&list,
			     &n_list);

	if (!one && !n_list)
		return ret;
	all = l7_alloc(ld->cfg, (one + n_list + 1) * sizeof(*all));
	if (!all) {
		ld->oom = true;
		return -ENOMEM;
	}
	if (one) {
		ret = l7_at(ld, n, "mirror", l7_destination_load, &all[0].dest) ?: ret;
		ret =
		    l7_percent_load(ld, n, "mirrorPercentage", "mirrorPercent", &all[0].pct) ?: ret;
	}
	if (n_list)
		memcpy(all + one, list, n_list * sizeof(*all));
	r->mirrors = all;
	r->n_mirrors = one + n_list;
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
					    "mirrors",
					    "headers",
					    "corsPolicy",
					    "delegate",
					    NULL};
	struct l7_http_route *r = elem;
	size_t i;
	int ret = l7_map_check(ld, n, known);

	(void)ctx;
	if (ret && n->type != YAML_MAPPING_NODE)
		return ret;
	r->line = zm_yl_line(n);
	r->fault.abort_grpc = -1;
	ret = l7_str_at(ld, n, "name", &r->name) ?: ret;
	ret = l7_list_at(ld, n, "match", sizeof(*r->matches), l7_match_load, NULL,
			 (void **)&r->matches, &r->n_matches)
		  ?: ret;
	ret = l7_route_dests_load(ld, n, &r->dests, &r->n_dests, &r->total_weight) ?: ret;
	ret = l7_duration_at(ld, n, "timeout", &r->timeout_ms) ?: ret;
	ret = l7_at(ld, n, "retries", l7_retries_load, r) ?: ret;
	ret = l7_at(ld, n, "fault", l7_fault_load, r) ?: ret;
	ret = l7_mirrors_load(ld, n, r) ?: ret;
	ret = l7_at(ld, n, "headers", l7_headers_load, &r->req_ops) ?: ret;
	ret = l7_at(ld, n, "rewrite", l7_rewrite_load, r) ?: ret;
	ret = l7_at(ld, n, "redirect", l7_redirect_load, r) ?: ret;
	ret = l7_at(ld, n, "directResponse", l7_direct_load, r) ?: ret;
	ret = l7_at(ld, n, "corsPolicy", l7_cors_load, &r->cors) ?: ret;
	ret = l7_refuse_at(ld, n, "delegate", "delegate is not supported by the waypoint") ?: ret;
	if (!r->n_dests && !r->redirect.set && !r->direct.status) {
		zm_yl_error(&ld->yl, n, "a route needs route, redirect or directResponse");
		ret = -EINVAL;
	}
	for (i = 0; r->redirect.prefix && i < r->n_matches; i++) {
		if (r->matches[i].uri.kind != L7_STR_NONE &&
		    r->matches[i].uri.kind != L7_STR_PREFIX) {
			zm_yl_error(&ld->yl, n,
				    "redirect prefixRewrite requires all URI matches to use prefix "
				    "match type");
			ret = -EINVAL;
			break;
		}
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
	ret = l7_route_dests_load(ld, t, &vs->tcp, &vs->n_tcp, &vs->tcp_weight) ?: ret;
	zm_yl_pop(&ld->yl, old);
	return ret;
}

int l7_load_vs(struct l7_ld *ld, yaml_node_t *spec, struct l7_vs *vs)
{
	static const char *const known[] = {"hosts", "gateways", "http", "tcp",
					    "tls",   "exportTo", NULL};
	const char **gws = NULL, **export = NULL;
	size_t i, n_gws = 0, n_export = 0;
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
	/* Bound to gateways only: Istio does not apply it to the mesh, nor do we. */
	ret = l7_strlist_at(ld, spec, "gateways", &gws, &n_gws) ?: ret;
	for (i = 0; i < n_gws && gws[i] && strcmp(gws[i], "mesh"); i++)
		;
	vs->not_mesh = n_gws && i == n_gws;
	ret = l7_strlist_at(ld, spec, "exportTo", &export, &n_export) ?: ret;
	ret = l7_list_at(ld, spec, "http", sizeof(*vs->http), l7_http_route_load, NULL,
			 (void **)&vs->http, &vs->n_http)
		  ?: ret;
	ret = l7_tcp_load(ld, spec, vs) ?: ret;
	return l7_refuse_at(ld, spec, "tls", "tls routes are not supported by the waypoint") ?: ret;
}
