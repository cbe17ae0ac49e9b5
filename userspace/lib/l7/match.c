// SPDX-License-Identifier: Apache-2.0
/*
 * Pure L7 decisions over a loaded snapshot: route matching (first matching http route wins,
 * as in Istio), weighted destination choice, percentages for faults and mirrors, path
 * rewrites, AuthorizationPolicy evaluation (DENY first, then ALLOW), and the endpoints a
 * destination subset selects by workload labels.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "l7/l7.h"

/* The pseudo-headers Envoy matches on, from the request's fields. */
static const char *l7_pseudo(const struct l7_request *req, const char *name)
{
	if (!strcmp(name, ":method"))
		return req->method;
	if (!strcmp(name, ":path"))
		return req->path;
	if (!strcmp(name, ":authority"))
		return req->authority;
	if (!strcmp(name, ":scheme"))
		return req->scheme ? req->scheme : "http";
	return NULL;
}

const char *l7_request_header(const struct l7_request *req, const char *name)
{
	size_t i;

	if (name[0] == ':')
		return l7_pseudo(req, name);
	for (i = 0; i < req->n_headers; i++)
		if (!strcmp(req->headers[i].name, name))
			return req->headers[i].value;
	return NULL;
}

const char *l7_request_header_all(const struct l7_request *req, const char *name, char *buf,
				  size_t len)
{
	const char *first = NULL;
	size_t i, o = 0, n = 0;

	if (name[0] == ':')
		return l7_pseudo(req, name);
	for (i = 0; i < req->n_headers; i++) {
		const char *v = req->headers[i].value;
		size_t vl = strlen(v);

		if (strcmp(req->headers[i].name, name))
			continue;
		if (!n++)
			first = v;
		if (o + vl + 2 > len)
			continue; /* longer than buf: matched as far as it fits */
		if (o)
			buf[o++] = ',';
		memcpy(buf + o, v, vl);
		o += vl;
	}
	if (n <= 1)
		return first;
	buf[o] = '\0';
	return buf;
}

static bool l7_host_covers(const char *pattern, const char *host)
{
	size_t pl = strlen(pattern), hl = strlen(host);

	if (!strcmp(pattern, "*"))
		return true;
	if (pattern[0] == '*' && pattern[1] == '.')
		return hl > pl - 1 && !strcasecmp(host + hl - (pl - 1), pattern + 1);
	return !strcasecmp(pattern, host);
}

const struct l7_vs *l7_vs_find(const struct l7_config *cfg, const char *hostname)
{
	const struct l7_vs *wild = NULL;
	size_t i, j;

	if (!cfg)
		return NULL;
	for (i = 0; i < cfg->n_vs; i++) {
		if (cfg->vs[i].not_mesh)
			continue; /* bound to gateways only */
		for (j = 0; j < cfg->vs[i].n_hosts; j++) {
			const char *h = cfg->vs[i].hosts[j];

			if (!strcasecmp(h, hostname))
				return &cfg->vs[i];
			if (!wild && h[0] == '*' && l7_host_covers(h, hostname))
				wild = &cfg->vs[i];
		}
	}
	return wild;
}

const struct l7_dr *l7_dr_find(const struct l7_config *cfg, const char *hostname)
{
	size_t i;

	if (!cfg)
		return NULL;
	for (i = 0; i < cfg->n_dr; i++)
		if (!strcasecmp(cfg->dr[i].host, hostname))
			return &cfg->dr[i];
	for (i = 0; i < cfg->n_dr; i++)
		if (cfg->dr[i].host[0] == '*' && l7_host_covers(cfg->dr[i].host, hostname))
			return &cfg->dr[i];
	return NULL;
}

const struct l7_subset *l7_dr_subset(const struct l7_dr *dr, const char *name)
{
	size_t i;

	if (!dr || !name || !name[0])
		return NULL;
	for (i = 0; i < dr->n_subsets; i++)
		if (dr->subsets[i].name && !strcmp(dr->subsets[i].name, name))
			return &dr->subsets[i];
	return NULL;
}

const struct l7_traffic_policy *l7_policy_for(const struct l7_dr *dr, const struct l7_subset *ss)
{
	static const struct l7_traffic_policy none;

	if (ss)
		return &ss->policy;
	return dr ? &dr->policy : &none;
}

static bool l7_strm_match_len(const struct l7_strm *m, const char *s, size_t len, bool icase)
{
	size_t vl;

	switch (m->kind) {
	case L7_STR_NONE:
		return true;
	case L7_STR_EXACT:
		vl = strlen(m->value);
		return vl == len && !(icase ? strncasecmp : strncmp)(m->value, s, len);
	case L7_STR_PREFIX:
		vl = strlen(m->value);
		return vl <= len && !(icase ? strncasecmp : strncmp)(m->value, s, vl);
	case L7_STR_PATH_PREFIX:
		vl = strlen(m->value);
		return vl <= len && !(icase ? strncasecmp : strncmp)(m->value, s, vl) &&
		       (vl == len || s[vl] == '/' || (vl && m->value[vl - 1] == '/'));
	case L7_STR_REGEX:
		if (!m->re) { /* policy "*suffix" form */
			vl = strlen(m->value);
			return vl <= len && !strncmp(m->value, s + len - vl, vl);
		} else {
			pcre2_match_data *md = pcre2_match_data_create(1, NULL);
			int rc;

			if (!md)
				return false; /* fail closed: no memory, no match */
			rc = pcre2_match(m->re, (PCRE2_SPTR)s, len, 0, 0, md, NULL);
			pcre2_match_data_free(md);
			return rc >= 0;
		}
	}
	return false;
}

bool l7_strm_match(const struct l7_strm *m, const char *s)
{
	return l7_strm_match_len(m, s, strlen(s), false);
}

/* Value of query parameter name in the query string q (after '?'), into buf. */
static bool l7_query_get(const char *q, const char *name, char *buf, size_t len)
{
	size_t nl = strlen(name);

	while (q && *q) {
		const char *end = strchr(q, '&'), *eq;
		size_t il = end ? (size_t)(end - q) : strlen(q);

		eq = memchr(q, '=', il);
		if ((eq ? (size_t)(eq - q) : il) == nl && !strncmp(q, name, nl)) {
			size_t vl = eq ? il - nl - 1 : 0;

			if (vl >= len)
				vl = len - 1;
			memcpy(buf, eq ? eq + 1 : "", vl);
			buf[vl] = '\0';
			return true;
		}
		q = end ? end + 1 : NULL;
	}
	return false;
}

/*
 * Envoy's header matcher as Istio configures it: a presence match is true when the header is
 * there; a value match is false on a missing header, unless inverted (withoutHeaders), where
 * Istio sets treat_missing_header_as_empty and "" is matched instead.
 */
static bool l7_header_match(const struct l7_kv_match *km, const struct l7_request *req, bool invert)
{
	char buf[4096];
	const char *v = l7_request_header_all(req, km->name, buf, sizeof(buf));

	if (km->m.kind == L7_STR_NONE)
		return (v != NULL) != invert;
	if (!v && !invert)
		return false;
	return l7_strm_match(&km->m, v ? v : "") != invert;
}

/* sourceLabels, sourceNamespace and gateways name the proxy (Istio's sourceMatchHTTP). */
static bool l7_match_proxy(const struct l7_http_match *m, const struct l7_request *req)
{
	size_t i, j;

	if (m->source_namespace &&
	    (!req->proxy_namespace || strcmp(m->source_namespace, req->proxy_namespace)))
		return false;
	for (i = 0; i < m->n_source_labels; i++) {
		for (j = 0; j < req->n_proxy_labels; j++)
			if (!strcmp(req->proxy_labels[j].key, m->source_labels[i].name) &&
			    !strcmp(req->proxy_labels[j].value, m->source_labels[i].value))
				break;
		if (j == req->n_proxy_labels)
			return false;
	}
	for (i = 0; i < m->n_gateways; i++)
		if (!strcmp(m->gateways[i], "mesh"))
			return true;
	return !m->n_gateways;
}

bool l7_match_request(const struct l7_http_match *m, const struct l7_request *req)
{
	const char *q = strchr(req->path, '?');
	size_t plen = q ? (size_t)(q - req->path) : strlen(req->path), i;
	char val[1024];

	if (m->port && m->port != req->port)
		return false;
	if (!l7_match_proxy(m, req))
		return false;
	if (!l7_strm_match_len(&m->uri, req->path, plen, m->ignore_uri_case))
		return false;
	if (m->method.kind && !l7_strm_match(&m->method, req->method))
		return false;
	if (m->authority.kind && !l7_strm_match(&m->authority, req->authority ?: ""))
		return false;
	if (m->scheme.kind && !l7_strm_match(&m->scheme, req->scheme ?: "http"))
		return false;
	for (i = 0; i < m->n_headers; i++)
		if (!l7_header_match(&m->headers[i], req, false))
			return false;
	/* Each withoutHeaders entry is an inverted matcher that must hold, as in Envoy. */
	for (i = 0; i < m->n_without_headers; i++)
		if (!l7_header_match(&m->without_headers[i], req, true))
			return false;
	for (i = 0; i < m->n_query_params; i++) {
		if (!l7_query_get(q ? q + 1 : NULL, m->query_params[i].name, val, sizeof(val)))
			return false;
		if (!l7_strm_match(&m->query_params[i].m, val))
			return false;
	}
	return true;
}

const struct l7_http_route *l7_route_match(const struct l7_vs *vs, const struct l7_request *req,
					   const struct l7_http_match **match)
{
	size_t i, j;

	if (match)
		*match = NULL;
	for (i = 0; vs && i < vs->n_http; i++) {
		const struct l7_http_route *r = &vs->http[i];

		if (!r->n_matches)
			return r;
		for (j = 0; j < r->n_matches; j++) {
			if (l7_match_request(&r->matches[j], req)) {
				if (match)
					*match = &r->matches[j];
				return r;
			}
		}
	}
	return NULL;
}

const struct l7_dest *l7_dest_pick(const struct l7_dest *dests, size_t n, uint32_t rnd)
{
	uint64_t total = 0, pick;
	size_t i;

	if (!n)
		return NULL;
	for (i = 0; i < n; i++)
		total += dests[i].weight;
	if (!total)
		return &dests[rnd % n];
	pick = rnd % total;
	for (i = 0; i < n; i++) {
		if (pick < dests[i].weight)
			return &dests[i];
		pick -= dests[i].weight;
	}
	return &dests[n - 1];
}

bool l7_percent_hit(double pct, uint32_t rnd)
{
	if (pct >= 100)
		return true;
	if (pct <= 0)
		return false;
	/* Resolution of 1/10000 percent, like Envoy's fractional percent in millionths. */
	return (double)(rnd % 1000000u) < pct * 10000.0;
}

/* ---- authorization ---- */

static bool l7_list_any(const struct l7_str_list *l, const char *s, size_t len, bool icase)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (l7_strm_match_len(&l->v[i], s, len, icase))
			return true;
	return false;
}

/* A positive list (empty: no constraint) and its negative form. */
static bool l7_field_ok(const struct l7_str_list *pos, const struct l7_str_list *neg, const char *s,
			size_t len, bool icase)
{
	if (pos->n && !l7_list_any(pos, s, len, icase))
		return false;
	return !(neg->n && l7_list_any(neg, s, len, icase));
}

static bool l7_host_ok(const struct l7_str_list *l, const char *host)
{
	const char *colon = strrchr(host, ':');
	size_t hl = colon && !strchr(colon, ']') ? (size_t)(colon - host) : strlen(host);

	/* Istio compares hosts case-insensitively, with or without the port. */
	return l7_list_any(l, host, strlen(host), true) || l7_list_any(l, host, hl, true);
}

static bool l7_source_match(const struct l7_authz_source *s, const struct l7_request *req)
{
	const char *p = req->source_principal ?: "", *ns = req->source_namespace ?: "";

	return l7_field_ok(&s->principals, &s->not_principals, p, strlen(p), false) &&
	       l7_field_ok(&s->namespaces, &s->not_namespaces, ns, strlen(ns), false);
}

static bool l7_op_match(const struct l7_authz_op *o, const struct l7_request *req)
{
	const char *q = strchr(req->path, '?'), *host = req->authority ?: "";
	size_t plen = q ? (size_t)(q - req->path) : strlen(req->path);
	char port[8];

	snprintf(port, sizeof(port), "%u", req->port);
	if (!l7_field_ok(&o->methods, &o->not_methods, req->method, strlen(req->method), false))
		return false;
	if (!l7_field_ok(&o->paths, &o->not_paths, req->path, plen, false))
		return false;
	if (!l7_field_ok(&o->ports, &o->not_ports, port, strlen(port), false))
		return false;
	if (o->hosts.n && !l7_host_ok(&o->hosts, host))
		return false;
	return !(o->not_hosts.n && l7_host_ok(&o->not_hosts, host));
}

static bool l7_cond_match(const struct l7_authz_cond *c, const struct l7_request *req)
{
	char name[128];
	const char *v = NULL;

	if (!strncmp(c->key, "request.headers[", 16)) {
		size_t n = strcspn(c->key + 16, "]"), i;

		if (n >= sizeof(name))
			return false;
		for (i = 0; i < n; i++) {
			char ch = c->key[16 + i];

			name[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
		}
		name[n] = '\0';
		v = l7_request_header(req, name);
	} else if (!strcmp(c->key, "source.principal")) {
		v = req->source_principal;
	} else if (!strcmp(c->key, "source.namespace")) {
		v = req->source_namespace;
	} else if (!strcmp(c->key, "request.method")) {
		v = req->method;
	} else if (!strcmp(c->key, "request.path")) {
		v = req->path;
	}
	if (!v)
		return !c->values.n && c->not_values.n; /* absent: only a pure negative holds */
	return l7_field_ok(&c->values, &c->not_values, v, strlen(v), false);
}

static bool l7_rule_match(const struct l7_authz_rule *r, const struct l7_request *req)
{
	size_t i;
	bool any;

	if (r->n_from) {
		for (any = false, i = 0; i < r->n_from && !any; i++)
			any = l7_source_match(&r->from[i], req);
		if (!any)
			return false;
	}
	if (r->n_to) {
		for (any = false, i = 0; i < r->n_to && !any; i++)
			any = l7_op_match(&r->to[i], req);
		if (!any)
			return false;
	}
	for (i = 0; i < r->n_when; i++)
		if (!l7_cond_match(&r->when[i], req))
			return false;
	return true;
}

/* A targetRef to Gateway ns/name names this waypoint (any, when the caller did not say). */
static bool l7_authz_our_gateway(const char *ref, const struct l7_request *req)
{
	size_t nl;

	if (!req->proxy_gateway || !req->proxy_namespace)
		return true;
	nl = strlen(req->proxy_namespace);
	return !strncmp(ref, req->proxy_namespace, nl) && ref[nl] == '/' &&
	       !strcmp(ref + nl + 1, req->proxy_gateway);
}

static bool l7_authz_in_scope(const struct l7_authz *az, const char *svc_host, const char *svc_ns,
			      const struct l7_request *req)
{
	size_t i;

	if (az->has_selector)
		return false;
	for (i = 0; i < az->n_target_gateways; i++)
		if (l7_authz_our_gateway(az->target_gateways[i], req))
			return true;
	for (i = 0; i < az->n_target_services; i++)
		if (!strcasecmp(az->target_services[i], svc_host))
			return true;
	if (az->n_target_services || az->n_target_gateways)
		return false;
	return !strcmp(az->namespace, svc_ns) || !strcmp(az->namespace, "istio-system");
}

static bool l7_authz_matches(const struct l7_authz *az, const struct l7_request *req)
{
	size_t i;

	for (i = 0; i < az->n_rules; i++)
		if (l7_rule_match(&az->rules[i], req))
			return true;
	return false;
}

bool l7_authz_allows(const struct l7_config *cfg, const char *svc_host, const char *svc_ns,
		     const struct l7_request *req, const struct l7_authz **policy)
{
	bool have_allow = false;
	size_t i;

	*policy = NULL;
	if (!cfg)
		return true;
	for (i = 0; i < cfg->n_authz; i++) {
		const struct l7_authz *az = &cfg->authz[i];

		if (!l7_authz_in_scope(az, svc_host, svc_ns, req))
			continue;
		if (az->action == L7_AUTHZ_DENY && l7_authz_matches(az, req)) {
			*policy = az;
			return false;
		}
		have_allow |= az->action == L7_AUTHZ_ALLOW;
	}
	if (!have_allow)
		return true;
	for (i = 0; i < cfg->n_authz; i++) {
		const struct l7_authz *az = &cfg->authz[i];

		if (az->action == L7_AUTHZ_ALLOW && l7_authz_in_scope(az, svc_host, svc_ns, req) &&
		    l7_authz_matches(az, req)) {
			*policy = az;
			return true;
		}
	}
	return false;
}

/* ---- endpoints ---- */

static bool l7_labels_match(const struct zm_cfg_workload *wl, const struct l7_subset *ss)
{
	size_t i, j;

	for (i = 0; ss && i < ss->n_labels; i++) {
		for (j = 0; j < wl->n_labels; j++)
			if (!strcmp(wl->labels[j].key, ss->labels[i].name) &&
			    !strcmp(wl->labels[j].value, ss->labels[i].value))
				break;
		if (j == wl->n_labels)
			return false;
	}
	return true;
}

size_t l7_endpoints(const struct zm_config *mesh, const struct zm_cfg_service *svc,
		    unsigned int sport, const struct l7_subset *subset, struct l7_endpoint *out,
		    size_t max)
{
	unsigned int target = 0;
	size_t i, j, n = 0;

	for (i = 0; i < svc->n_ports; i++)
		if (svc->ports[i].service_port == sport)
			target = svc->ports[i].target_port ? svc->ports[i].target_port : sport;
	if (!target)
		return 0;
	for (i = 0; i < mesh->n_workloads && n < max; i++) {
		const struct zm_cfg_workload *wl = &mesh->workloads[i];
		unsigned int port = target;

		if (wl->status != ZM_CFG_HEALTHY || !wl->n_ips || !l7_labels_match(wl, subset))
			continue;
		for (j = 0; j < wl->n_services; j++)
			if (wl->services[j].service == svc)
				break;
		if (j == wl->n_services)
			continue;
		/* The workload's own port map knows the container port. */
		for (size_t k = 0; k < wl->services[j].n_ports; k++)
			if (wl->services[j].ports[k].service_port == sport &&
			    wl->services[j].ports[k].target_port)
				port = wl->services[j].ports[k].target_port;
		out[n++] = (struct l7_endpoint){wl, port};
	}
	return n;
}
