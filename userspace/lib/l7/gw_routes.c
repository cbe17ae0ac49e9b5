// SPDX-License-Identifier: Apache-2.0
/*
 * Gateway API routes attached to their parents, as istiod builds them: every match of every
 * rule becomes a route of its own (with the parentRef's port, when given, as a port match),
 * the routes of all HTTPRoutes and GRPCRoutes of one parent are put in Gateway API precedence
 * (istiod's sortHTTPRoutes: exact path before prefix before regex, longer first, then a
 * method match, more header matches, more query matches; routes without matches last; ties
 * keep document order, our stand-in for creation time), and a parent's routes come before
 * any VirtualService for the same host, as istiod selects routes with Gateway semantics first.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "l7/internal.h"

/* The parent's route set: one per Service host, one per (waypoint Gateway, route). */
static struct l7_vs *l7_gw_vs_get(struct l7_config *cfg, const struct l7_gw_route *gr,
				  const struct l7_gw_parent *p)
{
	char key[512];
	struct l7_vs *vs;
	size_t i;

	if (p->service) {
		if (l7_host_qualify(p->name, p->namespace, key, sizeof(key)))
			return NULL;
		for (i = 0; i < cfg->n_gw_vs; i++)
			if (!cfg->gw_vs[i].gw_parent && !strcmp(cfg->gw_vs[i].hosts[0], key))
				return &cfg->gw_vs[i];
	} else {
		snprintf(key, sizeof(key), "%s/%s", p->namespace, p->name);
	}
	vs = realloc(cfg->gw_vs, (cfg->n_gw_vs + 1) * sizeof(*vs));
	if (!vs)
		return NULL;
	cfg->gw_vs = vs;
	vs = &cfg->gw_vs[cfg->n_gw_vs++];
	*vs = (struct l7_vs){.name = gr->name,
			     .namespace = gr->namespace,
			     .gateway_api = true,
			     .file = gr->file,
			     .line = gr->line};
	if (p->service) {
		vs->hosts = l7_alloc(cfg, sizeof(*vs->hosts));
		if (!vs->hosts || !(vs->hosts[0] = l7_strdup(cfg, key)))
			return NULL;
		vs->n_hosts = 1;
		return vs;
	}
	vs->gw_parent = l7_strdup(cfg, key);
	vs->hosts = gr->n_hostnames ? gr->hostnames : l7_alloc(cfg, sizeof(*vs->hosts));
	vs->n_hosts = gr->n_hostnames ? gr->n_hostnames : 1;
	if (!vs->gw_parent || !vs->hosts)
		return NULL;
	if (!gr->n_hostnames)
		vs->hosts[0] = "*";
	return vs;
}

/* Append one route per match of rule (one for a rule without matches) to vs. */
static int l7_gw_add_rule(struct l7_config *cfg, struct l7_vs *vs, const struct l7_http_route *rule,
			  unsigned int port)
{
	size_t n = rule->n_matches ? rule->n_matches : 1, i;
	struct l7_http_route *all = l7_alloc(cfg, (vs->n_http + n + 1) * sizeof(*all));

	if (!all)
		return -ENOMEM;
	if (vs->n_http)
		memcpy(all, vs->http, vs->n_http * sizeof(*all));
	for (i = 0; i < n; i++) {
		struct l7_http_route *r = &all[vs->n_http + i];

		*r = *rule;
		r->n_matches = rule->n_matches ? 1 : (port ? 1 : 0);
		r->matches = NULL;
		if (!r->n_matches)
			continue;
		r->matches = l7_alloc(cfg, sizeof(*r->matches));
		if (!r->matches)
			return -ENOMEM;
		if (rule->n_matches)
			r->matches[0] = rule->matches[i];
		if (port)
			r->matches[0].port = port;
	}
	vs->http = all;
	vs->n_http += n;
	return 0;
}

static int l7_uri_rank(const struct l7_http_route *r)
{
	if (!r->n_matches)
		return -1;
	switch (r->matches[0].uri.kind) {
	case L7_STR_EXACT:
		return 3;
	case L7_STR_PREFIX:
	case L7_STR_PATH_PREFIX:
		return 2;
	case L7_STR_REGEX:
		return 1;
	default:
		return -1;
	}
}

/* Does a come after b in istiod's sortHTTPRoutes order? */
static bool l7_gw_after(const struct l7_http_route *a, const struct l7_http_route *b)
{
	const struct l7_http_match *ma, *mb;
	size_t la, lb;

	if (!a->n_matches)
		return b->n_matches != 0;
	if (!b->n_matches)
		return false;
	ma = &a->matches[0];
	mb = &b->matches[0];
	if (l7_uri_rank(a) != l7_uri_rank(b))
		return l7_uri_rank(a) < l7_uri_rank(b);
	la = ma->uri.value ? strlen(ma->uri.value) : 0;
	lb = mb->uri.value ? strlen(mb->uri.value) : 0;
	if (la != lb)
		return la < lb;
	if ((ma->method.kind != L7_STR_NONE) != (mb->method.kind != L7_STR_NONE))
		return mb->method.kind != L7_STR_NONE;
	if (ma->n_headers != mb->n_headers)
		return ma->n_headers < mb->n_headers;
	return ma->n_query_params < mb->n_query_params;
}

/* A stable insertion sort: ties keep document order. */
static void l7_gw_sort(struct l7_vs *vs)
{
	struct l7_http_route t;
	size_t i, j;

	for (i = 1; i < vs->n_http; i++) {
		t = vs->http[i];
		for (j = i; j > 0 && l7_gw_after(&vs->http[j - 1], &t); j--)
			vs->http[j] = vs->http[j - 1];
		vs->http[j] = t;
	}
}

int l7_gw_attach(struct l7_config *cfg)
{
	size_t i, j, k;
	int r;

	for (i = 0; i < cfg->n_gw; i++) {
		const struct l7_gw_route *gr = &cfg->gw[i];

		for (j = 0; j < gr->n_parents; j++) {
			struct l7_vs *vs = l7_gw_vs_get(cfg, gr, &gr->parents[j]);

			if (!vs)
				return -ENOMEM;
			for (k = 0; k < gr->n_rules; k++) {
				r = l7_gw_add_rule(cfg, vs, &gr->rules[k], gr->parents[j].port);
				if (r)
					return r;
			}
		}
	}
	for (i = 0; i < cfg->n_gw_vs; i++)
		l7_gw_sort(&cfg->gw_vs[i]);
	return 0;
}

static bool l7_gw_host_covers(const char *pattern, const char *host)
{
	size_t pl = strlen(pattern), hl = strlen(host);

	if (!strcmp(pattern, "*"))
		return true;
	if (pattern[0] == '*' && pattern[1] == '.')
		return hl > pl - 1 && !strcasecmp(host + hl - (pl - 1), pattern + 1);
	return !strcasecmp(pattern, host);
}

const struct l7_vs *l7_routes_for(const struct l7_config *cfg, const char *hostname,
				  const char *gw_ns, const char *gw_name)
{
	size_t i, j, nl = gw_ns ? strlen(gw_ns) : 0;

	if (!cfg)
		return NULL;
	for (i = 0; i < cfg->n_gw_vs; i++)
		if (!cfg->gw_vs[i].gw_parent && !strcasecmp(cfg->gw_vs[i].hosts[0], hostname))
			return &cfg->gw_vs[i];
	for (i = 0; gw_ns && gw_name && i < cfg->n_gw_vs; i++) {
		const struct l7_vs *vs = &cfg->gw_vs[i];

		if (!vs->gw_parent || strncmp(vs->gw_parent, gw_ns, nl) ||
		    vs->gw_parent[nl] != '/' || strcmp(vs->gw_parent + nl + 1, gw_name))
			continue;
		for (j = 0; j < vs->n_hosts; j++)
			if (l7_gw_host_covers(vs->hosts[j], hostname))
				return vs;
	}
	return l7_vs_find(cfg, hostname);
}
