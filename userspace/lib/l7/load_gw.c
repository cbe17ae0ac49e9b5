// SPDX-License-Identifier: Apache-2.0
/*
 * Gateway API readers (gateway.networking.k8s.io): HTTPRoute and GRPCRoute translated into
 * the same route model as VirtualService, the way istiod converts them
 * (pilot/pkg/config/kube/gateway/conversion.go), so the one request lifecycle applies both:
 * PathPrefix as Envoy's path-separated prefix, Exact, RegularExpression; headers, queryParams
 * and method; backendRefs with weights (default 1; no backend with weight: 500, as the spec
 * says); filters RequestHeaderModifier, ResponseHeaderModifier, RequestRedirect (port
 * derived from the scheme, or the request's), URLRewrite (ReplacePrefixMatch,
 * ReplaceFullPath, hostname), RequestMirror (percent, fraction); per-backend header filters;
 * timeouts (request; backendRequest as the per-try timeout when retry is set); retry. A
 * GRPCRoute's method match becomes the path /Service/Method. Also the waypoint's own Gateway
 * (class istio-waypoint). Anything else is refused by name.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "l7/internal.h"

struct l7_gw_ctx {
	struct l7_gw_route *gr;
	struct l7_http_route *cur; /* the rule being read */
	bool grpc;
};

/* parentRefs[i] (l7_item_fn): a Service (GAMMA) or a Gateway (a waypoint). */
static int l7_gw_parent(struct l7_ld *ld, yaml_node_t *n, void *elem, void *ctx)
{
	static const char *const known[] = {"group",	   "kind", "namespace", "name",
					    "sectionName", "port", NULL};
	struct l7_gw_parent *p = elem;
	const char *group = NULL, *kind = NULL, *section = NULL;
	int ret = l7_map_check(ld, n, known);

	(void)ctx;
	if (ret && n->type != YAML_MAPPING_NODE)
		return ret;
	ret = l7_str_at(ld, n, "group", &group) ?: ret;
	ret = l7_str_at(ld, n, "kind", &kind) ?: ret;
	ret = l7_str_at(ld, n, "namespace", &p->namespace) ?: ret;
	ret = l7_str_at(ld, n, "name", &p->name) ?: ret;
	ret = l7_str_at(ld, n, "sectionName", &section) ?: ret;
	ret = l7_uint_at(ld, n, "port", 65535, &p->port) ?: ret;
	if (!p->namespace)
		p->namespace = ld->ns;
	if (!p->name) {
		zm_yl_error(&ld->yl, n, "name is required");
		return -EINVAL;
	}
	if (kind && !strcmp(kind, "Service") && (!group || !*group || !strcmp(group, "core"))) {
		p->service = true;
	} else if ((!kind || !strcmp(kind, "Gateway")) &&
		   (!group || !strcmp(group, "gateway.networking.k8s.io"))) {
		p->service = false;
	} else {
		zm_yl_error(
		    &ld->yl, n,
		    "parentRef kind %s (group %s): want a Service or the waypoint's Gateway",
		    kind ? kind : "Gateway", group ? group : "gateway.networking.k8s.io");
		ret = -EINVAL;
	}
	return ret;
}

/* {type: Exact|RegularExpression, name, value} (headers, queryParams) (l7_item_fn). */
static int l7_gw_kv(struct l7_ld *ld, yaml_node_t *n, void *elem, void *ctx)
{
	static const char *const known[] = {"type", "name", "value", NULL};
	struct l7_kv_match *km = elem;
	const char *type = NULL;
	bool header = ctx != NULL;
	int ret = l7_map_check(ld, n, known);

	if (ret && n->type != YAML_MAPPING_NODE)
		return ret;
	ret = l7_str_at(ld, n, "type", &type) ?: ret;
	ret = l7_need_at(ld, n, "name", l7_scalar, &km->name) ?: ret;
	ret = l7_need_at(ld, n, "value", l7_scalar, &km->m.value) ?: ret;
	if (ret)
		return ret;
	if (header) {
		char *s = (char *)km->name;

		for (; *s; s++)
			if (*s >= 'A' && *s <= 'Z')
				*s = (char)(*s - 'A' + 'a');
	}
	if (!type || !strcmp(type, "Exact")) {
		km->m.kind = L7_STR_EXACT;
	} else if (!strcmp(type, "RegularExpression")) {
		km->m.kind = L7_STR_REGEX;
		ret = l7_regex_compile(ld, zm_yl_get(&ld->yl, n, "value"), &km->m);
	} else {
		zm_yl_error_at(&ld->yl, zm_yl_get(&ld->yl, n, "type"), "type",
			       "want Exact or RegularExpression, got \"%s\"", type);
		ret = -EINVAL;
	}
	return ret;
}

/* path: {type: PathPrefix|Exact|RegularExpression, value} (istiod's createURIMatch). */
static int l7_gw_path(struct l7_ld *ld, yaml_node_t *n, void *out)
{
	static const char *const known[] = {"type", "value", NULL};
	struct l7_strm *m = out;
	const char *type = NULL, *v = NULL;
	char *t;
	int ret = l7_map_check(ld, n, known);

	ret = l7_str_at(ld, n, "type", &type) ?: ret;
	ret = l7_str_at(ld, n, "value", &v) ?: ret;
	if (ret)
		return ret;
	m->value = v ? v : "/";
	if (!type || !strcmp(type, "PathPrefix")) {
		/* "When specified, a trailing / is ignored"; "/" stays a plain prefix. */
		m->kind = strcmp(m->value, "/") ? L7_STR_PATH_PREFIX : L7_STR_PREFIX;
		t = (char *)l7_strdup(ld->cfg, m->value);
		if (!t)
			return -ENOMEM;
		if (m->kind == L7_STR_PATH_PREFIX && t[strlen(t) - 1] == '/')
			t[strlen(t) - 1] = '\0';
		m->value = t;
	} else if (!strcmp(type, "Exact")) {
		m->kind = L7_STR_EXACT;
	} else if (!strcmp(type, "RegularExpression")) {
		m->kind = L7_STR_REGEX;
		ret = l7_regex_compile(ld, zm_yl_get(&ld->yl, n, "value") ?: n, m);
	} else {
		zm_yl_error_at(&ld->yl, zm_yl_get(&ld->yl, n, "type"), "type",
			       "want PathPrefix, Exact or RegularExpression, got \"%s\"", type);
		ret = -EINVAL;
	}
	if (!ret && m->value[0] != '/' && m->kind != L7_STR_REGEX) {
		zm_yl_error(&ld->yl, n, "path must start with /");
		ret = -EINVAL;
	}
	return ret;
}

/* A string into the arena. */
static const char *l7_gw_fmt(struct l7_ld *ld, const char *a, const char *b, const char *c)
{
	char buf[1024];

	snprintf(buf, sizeof(buf), "%s%s%s", a, b, c);
	return l7_strdup(ld->cfg, buf);
}

/* A GRPCRoute method: {type, service, method} into the path match (createGRPCURIMatch). */
static int l7_gw_grpc_method(struct l7_ld *ld, yaml_node_t *n, void *out)
{
	static const char *const known[] = {"type", "service", "method", NULL};
	struct l7_strm *m = out;
	const char *type = NULL, *svc = NULL, *meth = NULL;
	bool regex;
	int ret = l7_map_check(ld, n, known);

	ret = l7_str_at(ld, n, "type", &type) ?: ret;
	ret = l7_str_at(ld, n, "service", &svc) ?: ret;
	ret = l7_str_at(ld, n, "method", &meth) ?: ret;
	if (ret)
		return ret;
	if (!svc && !meth) {
		zm_yl_error(&ld->yl, n, "gRPC match must have method or service defined");
		return -EINVAL;
	}
	if (type && strcmp(type, "Exact") && strcmp(type, "RegularExpression")) {
		zm_yl_error(&ld->yl, n, "type: want Exact or RegularExpression, got \"%s\"", type);
		return -EINVAL;
	}
	regex = type && !strcmp(type, "RegularExpression");
	if (!meth) {
		m->kind = regex ? L7_STR_REGEX : L7_STR_PREFIX;
		m->value = l7_gw_fmt(ld, "/", svc, regex ? "/.+" : "/");
	} else if (!svc) {
		m->kind = L7_STR_REGEX;
		m->value = l7_gw_fmt(ld, "/[^/]+/", meth, "");
	} else {
		m->kind = regex ? L7_STR_REGEX : L7_STR_EXACT;
		m->value = l7_gw_fmt(ld, "/", svc, "");
		m->value = m->value ? l7_gw_fmt(ld, m->value, "/", meth) : NULL;
	}
	if (!m->value)
		return -ENOMEM;
	return m->kind == L7_STR_REGEX ? l7_regex_compile(ld, n, m) : 0;
}

/* matches[i] (l7_item_fn); ctx: the route context. */
static int l7_gw_match(struct l7_ld *ld, yaml_node_t *n, void *elem, void *ctx)
{
	static const char *const http_known[] = {"path", "headers", "queryParams", "method", NULL};
	static const char *const grpc_known[] = {"method", "headers", NULL};
	const struct l7_gw_ctx *c = ctx;
	struct l7_http_match *m = elem;
	int ret = l7_map_check(ld, n, c->grpc ? grpc_known : http_known);

	if (ret && n->type != YAML_MAPPING_NODE)
		return ret;
	m->line = zm_yl_line(n);
	ret = l7_list_at(ld, n, "headers", sizeof(*m->headers), l7_gw_kv, (void *)1,
			 (void **)&m->headers, &m->n_headers)
		  ?: ret;
	if (c->grpc)
		return l7_at(ld, n, "method", l7_gw_grpc_method, &m->uri) ?: ret;
	ret = l7_list_at(ld, n, "queryParams", sizeof(*m->query_params), l7_gw_kv, NULL,
			 (void **)&m->query_params, &m->n_query_params)
		  ?: ret;
	ret = l7_str_at(ld, n, "method", &m->method.value) ?: ret;
	if (m->method.value)
		m->method.kind = L7_STR_EXACT;
	if (zm_yl_get(&ld->yl, n, "path"))
		return l7_at(ld, n, "path", l7_gw_path, &m->uri) ?: ret;
	m->uri = (struct l7_strm){.kind = L7_STR_PREFIX, .value = "/"};
	return ret;
}

/* {name, value} of a header modifier list (l7_item_fn). */
static int l7_gw_header(struct l7_ld *ld, yaml_node_t *n, void *elem, void *ctx)
{
	static const char *const known[] = {"name", "value", NULL};
	struct l7_kv *kv = elem;
	int ret = l7_map_check(ld, n, known);

	(void)ctx;
	ret = l7_need_at(ld, n, "name", l7_scalar, &kv->name) ?: ret;
	ret = l7_need_at(ld, n, "value", l7_scalar, &kv->value) ?: ret;
	if (!ret && strpbrk(kv->value, "\r\n")) {
		zm_yl_error(&ld->yl, n, "header %s value contains invalid characters", kv->name);
		ret = -EINVAL;
	}
	return ret;
}

static int l7_kv_name_cmp(const void *a, const void *b)
{
	return strcasecmp(((const struct l7_kv *)a)->name, ((const struct l7_kv *)b)->name);
}

/* Istio's headerListToMap + translateAppendHeaders: first of a name wins, Host is authority. */
static void l7_gw_kv_fold(struct l7_kv *kv, size_t *n, const char **authority)
{
	size_t i, j, k = 0;

	for (i = 0; i < *n; i++) {
		for (j = 0; j < k; j++)
			if (!strcasecmp(kv[j].name, kv[i].name))
				break;
		if (j < k)
			continue; /* "Subsequent entries with an equivalent header name MUST be
				     ignored" */
		if (!strcasecmp(kv[i].name, "host") || !strcasecmp(kv[i].name, ":authority")) {
			if (!*authority)
				*authority = kv[i].value;
			continue;
		}
		kv[k++] = kv[i];
	}
	*n = k;
	if (k)
		qsort(kv, k, sizeof(*kv), l7_kv_name_cmp);
}

/* requestHeaderModifier / responseHeaderModifier: {set, add, remove}. */
static int l7_gw_header_mod(struct l7_ld *ld, yaml_node_t *n, void *out)
{
	static const char *const known[] = {"set", "add", "remove", NULL};
	struct l7_header_ops *o = out;
	const char *set_auth = NULL, *add_auth = NULL;
	int ret = l7_map_check(ld, n, known);

	ret = l7_list_at(ld, n, "set", sizeof(*o->set), l7_gw_header, NULL, (void **)&o->set,
			 &o->n_set)
		  ?: ret;
	ret = l7_list_at(ld, n, "add", sizeof(*o->add), l7_gw_header, NULL, (void **)&o->add,
			 &o->n_add)
		  ?: ret;
	ret = l7_strlist_at(ld, n, "remove", &o->remove, &o->n_remove) ?: ret;
	l7_gw_kv_fold(o->set, &o->n_set, &set_auth);
	l7_gw_kv_fold(o->add, &o->n_add, &add_auth);
	o->authority = set_auth ? set_auth : add_auth;
	return ret;
}

/* path: {type: ReplaceFullPath|ReplacePrefixMatch, replaceFullPath|replacePrefixMatch}. */
static int l7_gw_path_mod(struct l7_ld *ld, yaml_node_t *n, const char **full, const char **prefix)
{
	static const char *const known[] = {"type", "replaceFullPath", "replacePrefixMatch", NULL};
	const char *type = NULL;
	int ret = l7_map_check(ld, n, known);

	ret = l7_str_at(ld, n, "type", &type) ?: ret;
	ret = l7_str_at(ld, n, "replaceFullPath", full) ?: ret;
	ret = l7_str_at(ld, n, "replacePrefixMatch", prefix) ?: ret;
	if (ret)
		return ret;
	if (type && !strcmp(type, "ReplaceFullPath") && *full && !*prefix)
		return 0;
	if (type && !strcmp(type, "ReplacePrefixMatch") && *prefix && !*full)
		return 0;
	zm_yl_error(&ld->yl, n,
		    "want type ReplaceFullPath with replaceFullPath, or ReplacePrefixMatch with "
		    "replacePrefixMatch");
	return -EINVAL;
}

static int l7_gw_redirect(struct l7_ld *ld, yaml_node_t *n, void *route)
{
	static const char *const known[] = {"scheme", "hostname",   "path",
					    "port",   "statusCode", NULL};
	struct l7_http_route *r = route;
	yaml_node_t *path = zm_yl_get(&ld->yl, n, "path");
	const char *full = NULL, *prefix = NULL;
	int ret = l7_map_check(ld, n, known);

	r->redirect.set = true;
	r->redirect.code = 302; /* the field's default in the CRD */
	ret = l7_str_at(ld, n, "scheme", &r->redirect.scheme) ?: ret;
	ret = l7_str_at(ld, n, "hostname", &r->redirect.authority) ?: ret;
	ret = l7_uint_at(ld, n, "port", 65535, &r->redirect.port) ?: ret;
	ret = l7_uint_at(ld, n, "statusCode", 999, &r->redirect.code) ?: ret;
	if (path) {
		size_t old = zm_yl_push_field(&ld->yl, "path");

		ret = l7_gw_path_mod(ld, path, &full, &prefix) ?: ret;
		zm_yl_pop(&ld->yl, old);
	}
	r->redirect.uri = full;
	r->redirect.prefix = prefix;
	/* "When empty, port (if specified) of the request is used", or the scheme's default. */
	if (zm_yl_get(&ld->yl, n, "port"))
		r->redirect.port_rule = L7_PORT_FIXED;
	else
		r->redirect.port_rule =
		    r->redirect.scheme ? L7_PORT_PROTOCOL_DEFAULT : L7_PORT_FROM_REQUEST;
	/* 301 and 302 (standard), 303, 307 and 308 (experimental); Istio takes all five. */
	if (r->redirect.code != 301 && r->redirect.code != 302 && r->redirect.code != 303 &&
	    r->redirect.code != 307 && r->redirect.code != 308) {
		zm_yl_error(&ld->yl, n, "statusCode %u: want 301, 302, 303, 307 or 308",
			    r->redirect.code);
		ret = -EINVAL;
	}
	if (r->redirect.scheme && strcmp(r->redirect.scheme, "http") &&
	    strcmp(r->redirect.scheme, "https")) {
		zm_yl_error(&ld->yl, n, "scheme: want http or https");
		ret = -EINVAL;
	}
	return ret;
}

static int l7_gw_rewrite(struct l7_ld *ld, yaml_node_t *n, void *route)
{
	static const char *const known[] = {"hostname", "path", NULL};
	struct l7_http_route *r = route;
	yaml_node_t *path = zm_yl_get(&ld->yl, n, "path");
	const char *full = NULL, *prefix = NULL;
	struct l7_strm re = {.kind = L7_STR_REGEX, .value = "/.*"};
	char *u;
	int ret = l7_map_check(ld, n, known);

	ret = l7_str_at(ld, n, "hostname", &r->rewrite.authority) ?: ret;
	if (!path)
		return ret;
	{
		size_t old = zm_yl_push_field(&ld->yl, "path");

		ret = l7_gw_path_mod(ld, path, &full, &prefix) ?: ret;
		zm_yl_pop(&ld->yl, old);
	}
	if (full) {
		/* istiod: uriRegexRewrite {match: "/.*", rewrite: replaceFullPath} */
		ret = l7_regex_compile_search(ld, path, &re) ?: ret;
		r->rewrite.re = re.re;
		r->rewrite.re_sub = full;
	} else if (prefix) {
		u = (char *)l7_strdup(ld->cfg, prefix);
		if (!u)
			return -ENOMEM;
		while (strlen(u) > 1 && u[strlen(u) - 1] == '/')
			u[strlen(u) - 1] = '\0'; /* istiod trims it; "/" removes the prefix */
		r->rewrite.uri = u;
	}
	return ret;
}

/* backendRef (of a rule, or a mirror's) into a destination: a Service and its port. */
static int l7_gw_backend(struct l7_ld *ld, yaml_node_t *n, struct l7_dest *d, bool filters_ok)
{
	static const char *const known[] = {"group", "kind",   "name",	  "namespace",
					    "port",  "weight", "filters", NULL};
	const char *group = NULL, *kind = NULL, *name = NULL, *ns = NULL;
	char host[512];
	int ret = l7_map_check(ld, n, known);

	if (ret && n->type != YAML_MAPPING_NODE)
		return ret;
	d->line = zm_yl_line(n);
	d->subset = "";
	d->weight = 1;
	ret = l7_str_at(ld, n, "group", &group) ?: ret;
	ret = l7_str_at(ld, n, "kind", &kind) ?: ret;
	ret = l7_str_at(ld, n, "name", &name) ?: ret;
	ret = l7_str_at(ld, n, "namespace", &ns) ?: ret;
	ret = l7_uint_at(ld, n, "port", 65535, &d->port) ?: ret;
	ret = l7_uint_at(ld, n, "weight", 1000000, &d->weight) ?: ret;
	if (!filters_ok)
		ret = l7_refuse_at(ld, n, "filters", "not allowed here") ?: ret;
	if ((kind && strcmp(kind, "Service")) || (group && *group && strcmp(group, "core"))) {
		zm_yl_error(&ld->yl, n, "backendRef kind %s (group %s): only Service is supported",
			    kind ? kind : "Service", group ? group : "\"\"");
		return -EINVAL;
	}
	if (!name || !d->port) {
		zm_yl_error(&ld->yl, n, "a Service backendRef needs name and port");
		return -EINVAL;
	}
	l7_host_qualify(name, ns ? ns : ld->ns, host, sizeof(host));
	d->host = l7_strdup(ld->cfg, host);
	return d->host ? ret : -ENOMEM;
}

static int l7_gw_mirror(struct l7_ld *ld, yaml_node_t *n, void *route)
{
	static const char *const known[] = {"backendRef", "percent", "fraction", NULL};
	struct l7_http_route *r = route;
	yaml_node_t *b = zm_yl_get(&ld->yl, n, "backendRef"),
		    *f = zm_yl_get(&ld->yl, n, "fraction");
	struct l7_mirror *all = l7_alloc(ld->cfg, (r->n_mirrors + 2) * sizeof(*all));
	struct l7_mirror *m;
	unsigned int pct = 100, num = 0, den = 100;
	int ret = l7_map_check(ld, n, known);

	if (!all)
		return -ENOMEM;
	if (r->n_mirrors)
		memcpy(all, r->mirrors, r->n_mirrors * sizeof(*all));
	m = &all[r->n_mirrors];
	r->mirrors = all;
	r->n_mirrors++;
	ret = l7_uint_at(ld, n, "percent", 100, &pct) ?: ret;
	m->pct = pct;
	if (f) {
		static const char *const fk[] = {"numerator", "denominator", NULL};
		size_t old = zm_yl_push_field(&ld->yl, "fraction");

		ret = l7_map_check(ld, f, fk) ?: ret;
		ret = l7_uint_at(ld, f, "numerator", 1000000, &num) ?: ret;
		ret = l7_uint_at(ld, f, "denominator", 1000000, &den) ?: ret;
		zm_yl_pop(&ld->yl, old);
		m->pct = den ? 100.0 * num / den : 0;
	}
	if (!b) {
		zm_yl_error(&ld->yl, n, "backendRef is required");
		return -EINVAL;
	}
	{
		size_t old = zm_yl_push_field(&ld->yl, "backendRef");

		ret = l7_gw_backend(ld, b, &m->dest, false) ?: ret;
		zm_yl_pop(&ld->yl, old);
	}
	return ret;
}

/* filters[i] of a rule (l7_item_fn); elem is a scratch slot, the route is ctx. */
static int l7_gw_filter(struct l7_ld *ld, yaml_node_t *n, void *elem, void *ctx)
{
	static const char *const known[] = {
	    "type",	  "requestHeaderModifier", "responseHeaderModifier", "requestRedirect",
	    "urlRewrite", "requestMirror",	   "extensionRef",	     "cors",
	    NULL};
	struct l7_gw_ctx *c = ctx;
	struct l7_http_route *r = c->cur;
	const char *type = NULL;
	int ret = l7_map_check(ld, n, known);

	(void)elem;
	if (ret && n->type != YAML_MAPPING_NODE)
		return ret;
	ret = l7_need_at(ld, n, "type", l7_scalar, &type) ?: ret;
	if (!type)
		return ret;
	if (!strcmp(type, "RequestHeaderModifier"))
		return l7_need_at(ld, n, "requestHeaderModifier", l7_gw_header_mod, &r->req_ops)
			   ?: ret;
	if (!strcmp(type, "ResponseHeaderModifier"))
		return l7_need_at(ld, n, "responseHeaderModifier", l7_gw_header_mod, &r->resp_ops)
			   ?: ret;
	if (!strcmp(type, "RequestMirror"))
		return l7_need_at(ld, n, "requestMirror", l7_gw_mirror, r) ?: ret;
	if (!c->grpc && !strcmp(type, "RequestRedirect"))
		return l7_need_at(ld, n, "requestRedirect", l7_gw_redirect, r) ?: ret;
	if (!c->grpc && !strcmp(type, "URLRewrite"))
		return l7_need_at(ld, n, "urlRewrite", l7_gw_rewrite, r) ?: ret;
	zm_yl_error_at(&ld->yl, zm_yl_get(&ld->yl, n, "type"), "type",
		       "filter %s is not supported by the waypoint", type);
	return -EINVAL;
}

/* A backendRef's own filters: header modifiers only (l7_item_fn; ctx: the destination). */
static int l7_gw_backend_filter(struct l7_ld *ld, yaml_node_t *n, void *elem, void *ctx)
{
	static const char *const known[] = {"type", "requestHeaderModifier",
					    "responseHeaderModifier", NULL};
	struct l7_dest *d = ctx;
	const char *type = NULL;
	int ret = l7_map_check(ld, n, known);

	(void)elem;
	ret = l7_need_at(ld, n, "type", l7_scalar, &type) ?: ret;
	if (type && !strcmp(type, "RequestHeaderModifier"))
		return l7_need_at(ld, n, "requestHeaderModifier", l7_gw_header_mod, &d->req_ops)
			   ?: ret;
	if (type && !strcmp(type, "ResponseHeaderModifier"))
		return l7_need_at(ld, n, "responseHeaderModifier", l7_gw_header_mod, &d->resp_ops)
			   ?: ret;
	if (type)
		zm_yl_error(&ld->yl, n, "backendRef filter %s is not supported", type);
	return -EINVAL;
}

/* backendRefs[i] (l7_item_fn). */
static int l7_gw_backend_item(struct l7_ld *ld, yaml_node_t *n, void *elem, void *ctx)
{
	struct l7_dest *d = elem;
	int ret = l7_gw_backend(ld, n, d, true);
	void *scratch = NULL;
	size_t k = 0;

	(void)ctx;
	if (n->type == YAML_MAPPING_NODE)
		ret = l7_list_at(ld, n, "filters", sizeof(long), l7_gw_backend_filter, d, &scratch,
				 &k)
			  ?: ret;
	return ret;
}

static int l7_gw_timeouts(struct l7_ld *ld, yaml_node_t *n, void *route)
{
	static const char *const known[] = {"request", "backendRequest", NULL};
	struct l7_http_route *r = route;
	uint32_t backend = 0;
	int ret = l7_map_check(ld, n, known);

	ret = l7_duration_at(ld, n, "request", &r->timeout_ms) ?: ret;
	ret = l7_duration_at(ld, n, "backendRequest", &backend) ?: ret;
	if (backend && r->retries_set)
		r->retries.per_try_timeout_ms = backend;
	else if (backend)
		r->timeout_ms = backend;
	return ret;
}

static int l7_gw_retry(struct l7_ld *ld, yaml_node_t *n, void *route)
{
	static const char *const known[] = {"codes", "attempts", "backoff", NULL};
	struct l7_http_route *r = route;
	const char **codes = NULL;
	size_t n_codes = 0, i;
	uint32_t backoff;
	int ret = l7_map_check(ld, n, known);

	r->retries_set = true;
	r->retries.attempts = 2;
	/* istiod: connection errors, and the codes listed */
	r->retries.retry_on = L7_RETRY_CONNECT_FAILURE | L7_RETRY_REFUSED_STREAM |
			      L7_RETRY_UNAVAILABLE | L7_RETRY_CANCELLED;
	ret = l7_uint_at(ld, n, "attempts", 100, &r->retries.attempts) ?: ret;
	ret = l7_duration_at(ld, n, "backoff", &backoff) ?: ret;
	ret = l7_strlist_at(ld, n, "codes", &codes, &n_codes) ?: ret;
	for (i = 0; i < n_codes && r->retries.n_codes < L7_RETRY_MAX_CODES; i++) {
		r->retries.codes[r->retries.n_codes++] = (unsigned int)atoi(codes[i]);
		r->retries.retry_on |= L7_RETRY_RETRIABLE_CODES;
	}
	return ret;
}

/* rules[i] (l7_item_fn): one l7_http_route with all the rule's matches. */
static int l7_gw_rule(struct l7_ld *ld, yaml_node_t *n, void *elem, void *ctx)
{
	static const char *const known[] = {
	    "name", "matches", "filters", "backendRefs", "timeouts", "retry", "sessionPersistence",
	    NULL};
	struct l7_gw_ctx *c = ctx;
	struct l7_http_route *r = elem;
	void *scratch = NULL;
	size_t k = 0, i;
	int ret = l7_map_check(ld, n, known);
	char name[256];

	if (ret && n->type != YAML_MAPPING_NODE)
		return ret;
	c->cur = r;
	r->line = zm_yl_line(n);
	r->fault.abort_grpc = -1;
	ret = l7_str_at(ld, n, "name", &r->name) ?: ret;
	if (!r->name) {
		snprintf(name, sizeof(name), "%s.%s.%zu", ld->ns, c->gr->name,
			 (size_t)(r - c->gr->rules));
		r->name = l7_strdup(ld->cfg, name);
	}
	ret = l7_list_at(ld, n, "matches", sizeof(*r->matches), l7_gw_match, c,
			 (void **)&r->matches, &r->n_matches)
		  ?: ret;
	ret = l7_at(ld, n, "retry", l7_gw_retry, r) ?: ret;
	ret = l7_list_at(ld, n, "filters", sizeof(long), l7_gw_filter, c, &scratch, &k) ?: ret;
	ret = l7_list_at(ld, n, "backendRefs", sizeof(*r->dests), l7_gw_backend_item, NULL,
			 (void **)&r->dests, &r->n_dests)
		  ?: ret;
	ret = l7_at(ld, n, "timeouts", l7_gw_timeouts, r) ?: ret;
	ret = l7_refuse_at(ld, n, "sessionPersistence",
			   "sessionPersistence is not supported by the waypoint")
		  ?: ret;
	/* Weights: default 1, zero drops the backend; none left and no redirect: 500. */
	for (i = k = 0; i < r->n_dests; i++)
		if (r->dests[i].weight)
			r->dests[k++] = r->dests[i];
	r->n_dests = k;
	for (i = 0; i < r->n_dests; i++)
		r->total_weight += r->dests[i].weight;
	if (!r->n_dests && !r->redirect.set)
		r->direct.status = 500;
	return ret;
}

int l7_load_gw_route(struct l7_ld *ld, yaml_node_t *spec, struct l7_gw_route *gr)
{
	static const char *const known[] = {"parentRefs", "hostnames", "rules", NULL};
	struct l7_gw_ctx c = {.gr = gr, .grpc = !strcmp(gr->kind, "GRPCRoute")};
	size_t i;
	int ret = l7_map_check(ld, spec, known);

	if (ret && spec->type != YAML_MAPPING_NODE)
		return ret;
	ret = l7_list_at(ld, spec, "parentRefs", sizeof(*gr->parents), l7_gw_parent, NULL,
			 (void **)&gr->parents, &gr->n_parents)
		  ?: ret;
	ret = l7_strlist_at(ld, spec, "hostnames", &gr->hostnames, &gr->n_hostnames) ?: ret;
	for (i = 0; i < gr->n_hostnames; i++)
		gr->hostnames[i] = l7_qualify(ld, gr->hostnames[i]);
	ret = l7_list_at(ld, spec, "rules", sizeof(*gr->rules), l7_gw_rule, &c, (void **)&gr->rules,
			 &gr->n_rules)
		  ?: ret;
	if (!gr->n_parents) {
		zm_yl_error(&ld->yl, spec, "parentRefs is required (a Service, or the waypoint)");
		ret = -EINVAL;
	}
	return ret;
}

int l7_load_gateway(struct l7_ld *ld, yaml_node_t *spec, const char *name)
{
	static const char *const known[] = {"gatewayClassName", "listeners", "addresses",
					    "infrastructure", NULL};
	const char *cls = NULL;
	int ret = l7_map_check(ld, spec, known);

	ret = l7_str_at(ld, spec, "gatewayClassName", &cls) ?: ret;
	if (!cls || strcmp(cls, "istio-waypoint")) {
		zm_yl_error(&ld->yl, spec,
			    "Gateway %s: gatewayClassName %s: the waypoint reads its own Gateway "
			    "(class istio-waypoint) only",
			    name, cls ? cls : "(none)");
		return -EINVAL;
	}
	return ret;
}
