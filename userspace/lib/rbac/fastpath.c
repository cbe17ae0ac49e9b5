// SPDX-License-Identifier: Apache-2.0
/*
 * The RBAC -> kernel fast-path compiler (rbac.h, zm_rbac_compile_fastpath): for each address
 * of each local destination workload, the plaintext connections (no identity) that the
 * evaluator would certainly deny, as DROP rules of struct zm_dp_policy_rule. Conservative by
 * construction: each candidate region (any port or one port named by a policy, any source or
 * one source CIDR named by a policy) is evaluated in three-valued logic where what the region
 * leaves open (the exact port or source address) is "unknown"; a DROP is emitted only when the
 * verdict is deny for every connection in the region. No DEFER rule is ever emitted, so the
 * kernel's precedence between rules cannot turn an emitted rule into a wrong drop.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datapath/datapath.h"
#include "rbac/peerauth_internal.h"

enum { F = 0, T = 1, U = 2 }; /* false, true, unknown */

/* The region: destination fixed, port 0 = any, source within src/src_prefix (0 = any). */
struct zm_fp_region {
	const struct zm_cfg_workload *wl;
	struct zm_addr dst;
	__u16 port;
	struct zm_addr src;
	unsigned int src_prefix;
};

static int zm_fp_not(int v)
{
	return v == U ? U : !v;
}

/* Is every address of the region's source range inside c (T), none (F), or some (U)? */
static int zm_fp_cidr(const struct zm_cfg_cidr *c, const struct zm_fp_region *r, bool dst)
{
	const struct zm_cfg_cidr region = {dst ? r->dst : r->src, dst ? 128 : r->src_prefix};
	unsigned int n = c->prefix_len < region.prefix_len ? c->prefix_len : region.prefix_len;
	const unsigned char *x = (const unsigned char *)c->addr.addr;
	const unsigned char *y = (const unsigned char *)region.addr.addr;
	unsigned int i;

	if (!dst && !r->src_prefix)
		return U;
	if (c->addr.family != region.addr.family)
		return F;
	for (i = 0; i < n; i++)
		if (((x[i / 8] ^ y[i / 8]) >> (7 - i % 8)) & 1)
			return F; /* disjoint */
	return c->prefix_len <= region.prefix_len ? T : U;
}

/* An attribute over three-valued entries: (no positives or any T) and no T negative. */
#define ZM_FP_ATTR(pos, neg, test)                                                                 \
	({                                                                                         \
		int any_ = (pos).n ? F : T, hit_ = F, v_;                                          \
		size_t i_;                                                                         \
		for (i_ = 0; i_ < (pos).n; i_++) {                                                 \
			__typeof__(&(pos).v[0]) e_ = &(pos).v[i_];                                 \
			v_ = (test);                                                               \
			any_ = v_ == T || any_ == T ? T : (v_ == U || any_ == U ? U : F);          \
		}                                                                                  \
		for (i_ = 0; i_ < (neg).n; i_++) {                                                 \
			__typeof__(&(neg).v[0]) e_ = &(neg).v[i_];                                 \
			v_ = (test);                                                               \
			hit_ = v_ == T || hit_ == T ? T : (v_ == U || hit_ == U ? U : F);          \
		}                                                                                  \
		zm_fp_and(any_, zm_fp_not(hit_));                                                  \
	})

static int zm_fp_and(int a, int b)
{
	return a == F || b == F ? F : (a == U || b == U ? U : T);
}

static int zm_fp_or(int a, int b)
{
	return a == T || b == T ? T : (a == U || b == U ? U : F);
}

static bool zm_fp_str(const struct zm_cfg_str_match *m, const char *s)
{
	size_t vl = strlen(m->value), len = strlen(s);

	switch (m->kind) {
	case ZM_CFG_STR_EXACT:
		return !strcmp(m->value, s);
	case ZM_CFG_STR_PREFIX:
		return !strncmp(m->value, s, vl);
	case ZM_CFG_STR_SUFFIX:
		return vl <= len && !strcmp(s + len - vl, m->value);
	default:
		return len > 0;
	}
}

/* A group for plaintext: no principal, no service account, source namespace "". */
static int zm_fp_group(const struct zm_cfg_match *m, const struct zm_fp_region *r)
{
	int v = ZM_FP_ATTR(m->destination_ips, m->not_destination_ips, zm_fp_cidr(e_, r, true));

	v = zm_fp_and(v, ZM_FP_ATTR(m->source_ips, m->not_source_ips, zm_fp_cidr(e_, r, false)));
	v = zm_fp_and(v, ZM_FP_ATTR(m->destination_ports, m->not_destination_ports,
				    r->port ? (*e_ == r->port ? T : F) : U));
	v = zm_fp_and(v, ZM_FP_ATTR(m->service_accounts, m->not_service_accounts, F + 0 * !!e_));
	v = zm_fp_and(v, ZM_FP_ATTR(m->principals, m->not_principals, F + 0 * !!e_));
	return zm_fp_and(v,
			 ZM_FP_ATTR(m->namespaces, m->not_namespaces, zm_fp_str(e_, "") ? T : F));
}

static int zm_fp_policy(const struct zm_rbac_policy *p, const struct zm_fp_region *r)
{
	int pol = F, rule, clause;
	size_t i, k, g;

	for (i = 0; i < p->n_rules; i++) {
		rule = T;
		for (k = 0; k < p->rules[i].n_clauses; k++) {
			const struct zm_cfg_clause *c = &p->rules[i].clauses[k];

			clause = c->n_matches ? F : T;
			for (g = 0; g < c->n_matches; g++) {
				const struct zm_cfg_match *m = &c->matches[g];

				clause = zm_fp_or(clause,
						  zm_rbac_match_empty(m) ? F : zm_fp_group(m, r));
			}
			rule = zm_fp_and(rule, clause);
		}
		pol = zm_fp_or(pol, rule);
	}
	return pol;
}

/* Every applicable enforced policy of src for wl, in the evaluator's order of interest. */
struct zm_fp_list {
	const struct zm_rbac_policy *v[256];
	struct zm_rbac_policy cfg_views[256];
	struct zm_rbac_pa_strict strict; /* the PeerAuthentication requirement, when STRICT */
	size_t n;
	bool overflow;
};

static void zm_fp_collect(const struct zm_rbac_sources *src, const struct zm_cfg_workload *wl,
			  struct zm_fp_list *l)
{
	struct zm_rbac_pa_levels pa;
	size_t i, j, n = 0;

	l->n = 0;
	l->overflow = false;
	for (i = 0; src->cfg && i < src->cfg->n_policies && n < 256; i++) {
		zm_rbac_policy_from_cfg(&src->cfg->policies[i], src->cfg->source, &l->cfg_views[n]);
		if (!l->cfg_views[n].dry_run && zm_rbac_policy_applies(&l->cfg_views[n], wl))
			l->v[l->n++] = &l->cfg_views[n++];
	}
	if (src->cfg && i < src->cfg->n_policies) {
		l->overflow = true; /* a missed Allow would make a wrong drop: give up */
		return;
	}
	for (i = 0; i < src->n_sets; i++) {
		for (j = 0; src->sets[i] && j < src->sets[i]->n_policies; j++) {
			const struct zm_rbac_policy *p = &src->sets[i]->policies[j];

			/* PeerAuthentication: resolved below, as the evaluator does. */
			if (p->peer_auth || p->dry_run || !zm_rbac_policy_applies(p, wl))
				continue;
			if (l->n == 256) {
				l->overflow = true;
				return;
			}
			l->v[l->n++] = p;
		}
	}
	/* Enforced PeerAuthentications only: a dry-run one changes nothing. */
	zm_rbac_pa_find(src, wl, false, &pa);
	if (!zm_rbac_pa_strict_policy(&pa, &l->strict))
		return;
	if (l->n < 256)
		l->v[l->n++] = &l->strict.p;
	else
		l->overflow = true;
}

/* Certain deny for the whole region: the deciding policy key, else NULL. */
static const char *zm_fp_denies(const struct zm_fp_list *l, const struct zm_fp_region *r)
{
	const char *first_allow = NULL;
	bool maybe_allowed = false;
	size_t i;

	for (i = 0; i < l->n; i++) {
		const struct zm_rbac_policy *p = l->v[i];

		if (p->action == ZM_CFG_ACTION_DENY && zm_fp_policy(p, r) == T)
			return p->key;
	}
	for (i = 0; i < l->n; i++) {
		const struct zm_rbac_policy *p = l->v[i];

		if (p->action != ZM_CFG_ACTION_ALLOW)
			continue;
		first_allow = first_allow ? first_allow : p->key;
		maybe_allowed |= zm_fp_policy(p, r) != F;
	}
	return first_allow && !maybe_allowed ? first_allow : NULL;
}

struct zm_fp_out {
	struct zm_dp_policy_rule *v;
	size_t n, cap;
};

static int zm_fp_emit(struct zm_fp_out *o, const struct zm_fp_region *r, const char *key)
{
	struct zm_dp_policy_rule *nv;

	if (o->n == ZM_MAX_POL_RULES)
		return -E2BIG;
	if (o->n == o->cap) {
		o->cap = o->cap ? o->cap * 2 : 64;
		nv = realloc(o->v, o->cap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		o->v = nv;
	}
	nv = &o->v[o->n++];
	memset(nv, 0, sizeof(*nv));
	snprintf(nv->policy, sizeof(nv->policy), "%s", key);
	nv->dst = r->dst;
	nv->src = r->src;
	nv->src_prefix = r->src_prefix;
	nv->dst_port = r->port;
	return 0;
}

/* The ports and source CIDRs the applicable policies name: the candidate regions. */
#define ZM_FP_MAX_AXIS 64

struct zm_fp_axes {
	__u16 ports[ZM_FP_MAX_AXIS + 1];	      /* [0] = 0: any port */
	struct zm_cfg_cidr cidrs[ZM_FP_MAX_AXIS + 1]; /* [0] = /0: any source */
	size_t n_ports, n_cidrs;
};

static void zm_fp_axes_add(struct zm_fp_axes *ax, const struct zm_cfg_match *m, __u8 family)
{
	const struct zm_cfg_port_list *pl[] = {&m->destination_ports, &m->not_destination_ports};
	const struct zm_cfg_cidr_list *cl[] = {&m->source_ips, &m->not_source_ips};
	size_t c, i, j;

	for (c = 0; c < 2; c++) {
		for (i = 0; i < pl[c]->n && ax->n_ports <= ZM_FP_MAX_AXIS; i++) {
			for (j = 0; j < ax->n_ports && ax->ports[j] != pl[c]->v[i]; j++)
				;
			if (j == ax->n_ports)
				ax->ports[ax->n_ports++] = pl[c]->v[i];
		}
		for (i = 0; i < cl[c]->n && ax->n_cidrs <= ZM_FP_MAX_AXIS; i++) {
			if (cl[c]->v[i].addr.family != family)
				continue;
			for (j = 0; j < ax->n_cidrs &&
				    memcmp(&ax->cidrs[j], &cl[c]->v[i], sizeof(ax->cidrs[j]));
			     j++)
				;
			if (j == ax->n_cidrs)
				ax->cidrs[ax->n_cidrs++] = cl[c]->v[i];
		}
	}
}

static int zm_fp_address(const struct zm_fp_list *l, struct zm_fp_region *r, struct zm_fp_out *o)
{
	struct zm_fp_axes ax = {.n_ports = 1, .n_cidrs = 1};
	size_t i, a, b, g, pi, ci;
	const char *key;
	int err;

	for (i = 0; i < l->n; i++)
		for (a = 0; a < l->v[i]->n_rules; a++)
			for (b = 0; b < l->v[i]->rules[a].n_clauses; b++)
				for (g = 0; g < l->v[i]->rules[a].clauses[b].n_matches; g++)
					zm_fp_axes_add(&ax,
						       &l->v[i]->rules[a].clauses[b].matches[g],
						       r->dst.family);
	/* Coarse regions first: a finer one inside an emitted drop adds nothing. */
	for (ci = 0; ci < ax.n_cidrs; ci++) {
		for (pi = 0; pi < ax.n_ports; pi++) {
			r->port = ax.ports[pi];
			r->src = ax.cidrs[ci].addr;
			r->src_prefix = ax.cidrs[ci].prefix_len;
			key = zm_fp_denies(l, r);
			if (!key)
				continue;
			err = zm_fp_emit(o, r, key);
			if (err)
				return err;
			if (!pi)
				break; /* every port of this source range is dropped already */
		}
		if (!ci && o->n && !o->v[o->n - 1].dst_port && !o->v[o->n - 1].src_prefix &&
		    !memcmp(&o->v[o->n - 1].dst, &r->dst, sizeof(r->dst)))
			break; /* the whole address is dropped */
	}
	return 0;
}

int zm_rbac_compile_fastpath(const struct zm_rbac_sources *src, const char *node,
			     struct zm_dp_policy_rule **out, size_t *n_out)
{
	struct zm_fp_out o = {0};
	struct zm_fp_list *l = calloc(1, sizeof(*l));
	size_t w, i;
	int err = 0;

	*out = NULL;
	*n_out = 0;
	if (!l)
		return -ENOMEM;
	for (w = 0; src->cfg && w < src->cfg->n_workloads && !err; w++) {
		const struct zm_cfg_workload *wl = &src->cfg->workloads[w];

		if (node && strcmp(wl->node, node))
			continue;
		zm_fp_collect(src, wl, l);
		if (l->overflow)
			continue; /* too many policies to reason about: leave it all to ztunnel */
		for (i = 0; i < wl->n_ips && !err; i++) {
			struct zm_fp_region r = {.wl = wl, .dst = wl->ips[i].addr};

			/* ztunnel judges an address as the first workload holding it. */
			if (zm_config_workload_by_ip(src->cfg, NULL, &r.dst) != wl)
				continue;
			err = zm_fp_address(l, &r, &o);
		}
	}
	free(l);
	if (err && err != -E2BIG) {
		free(o.v);
		return err;
	}
	/* Too many: each rule is sound on its own, so the first ones are still worth having. */
	*out = o.v;
	*n_out = o.n;
	return err;
}
