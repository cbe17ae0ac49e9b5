// SPDX-License-Identifier: Apache-2.0
/*
 * PeerAuthentication resolution (rbac.h zm_rbac_mtls_mode, peerauth_internal.h): which
 * PeerAuthentication is in force for a workload at each level (workload selector, namespace,
 * mesh-wide), and the mode that results at one target port. A port-level entry beats its
 * policy's own mode, a more specific level beats a less specific one, UNSET at any step means
 * "ask the next level", and the end of the chain is PERMISSIVE. The evaluator, the kernel
 * fast-path compiler and ztunnel's outbound (DISABLE: plaintext instead of HBONE) all go
 * through here, so a mode never means one thing to one of them and another to the next.
 */
#include <string.h>

#include "rbac/index_internal.h"

const char *zm_mtls_mode_name(enum zm_mtls_mode m)
{
	static const char *const names[] = {"UNSET", "DISABLE", "PERMISSIVE", "STRICT"};

	return (unsigned int)m < sizeof(names) / sizeof(names[0]) ? names[m] : "?";
}

static void zm_rbac_pa_consider(const struct zm_rbac_policy *p, const struct zm_cfg_workload *wl,
				bool with_dry_run, struct zm_rbac_pa_levels *out)
{
	if (!p->peer_auth || p->peer_auth >= ZM_RBAC_PA_LEVELS || !zm_rbac_policy_applies(p, wl))
		return;
	if (p->dry_run) {
		out->saw_dry_run = true;
		if (!with_dry_run)
			return;
	}
	/* Istio keeps the oldest of several; load order is ours. */
	if (!out->v[p->peer_auth])
		out->v[p->peer_auth] = p;
}

void zm_rbac_pa_find_in(const struct zm_rbac_policy *const *v, size_t n,
			const struct zm_cfg_workload *wl, bool with_dry_run,
			struct zm_rbac_pa_levels *out)
{
	size_t i;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < n; i++)
		zm_rbac_pa_consider(v[i], wl, with_dry_run, out);
}

void zm_rbac_pa_find(const struct zm_rbac_sources *src, const struct zm_cfg_workload *wl,
		     bool with_dry_run, struct zm_rbac_pa_levels *out)
{
	const struct zm_rbac_index *idx = zm_rbac_index_of(src);
	const struct zm_rbac_applied *a = idx ? zm_rbac_index_find(idx, wl) : NULL;
	size_t i, j;

	/* Indexed: worked out already, or at least only the PeerAuthentication ones to look at. */
	if (a) {
		*out = a->pa[with_dry_run];
		return;
	}
	if (idx) {
		zm_rbac_pa_find_in(idx->pa, idx->n_pa, wl, with_dry_run, out);
		return;
	}
	memset(out, 0, sizeof(*out));
	/* Only Istio files carry PeerAuthentication; the config's policies never do. */
	for (i = 0; i < src->n_sets; i++) {
		const struct zm_rbac_set *s = src->sets[i];

		for (j = 0; s && j < s->n_policies; j++)
			zm_rbac_pa_consider(&s->policies[j], wl, with_dry_run, out);
	}
}

enum zm_mtls_mode zm_rbac_pa_resolve(const struct zm_rbac_pa_levels *l, unsigned int port,
				     const struct zm_rbac_policy **by, bool *port_level)
{
	const struct zm_rbac_policy *p;
	int lv;
	size_t i;

	if (by)
		*by = NULL;
	if (port_level)
		*port_level = false;
	for (lv = ZM_RBAC_PA_LEVELS - 1; lv > ZM_RBAC_PA_NONE; lv--) {
		p = l->v[lv];
		if (!p)
			continue;
		for (i = 0; i < p->n_port_mtls; i++) {
			if (p->port_mtls[i].port != port || p->port_mtls[i].mode == ZM_MTLS_UNSET)
				continue;
			if (by)
				*by = p;
			if (port_level)
				*port_level = true;
			return p->port_mtls[i].mode;
		}
		if (p->mtls_mode != ZM_MTLS_UNSET) {
			if (by)
				*by = p;
			return p->mtls_mode;
		}
	}
	return ZM_MTLS_PERMISSIVE;
}

enum zm_mtls_mode zm_rbac_mtls_mode(const struct zm_rbac_sources *src,
				    const struct zm_cfg_workload *wl, unsigned int port,
				    const struct zm_rbac_policy **by, bool *port_level)
{
	struct zm_rbac_pa_levels l;

	if (!src || !wl) {
		if (by)
			*by = NULL;
		if (port_level)
			*port_level = false;
		return ZM_MTLS_PERMISSIVE;
	}
	zm_rbac_pa_find(src, wl, false, &l);
	return zm_rbac_pa_resolve(&l, port, by, port_level);
}

/*
 * The mode every port gets unless a port-level entry says otherwise, and who sets it. Only a
 * workload-selector policy can carry portLevelMtls (the loader refuses it elsewhere), so the
 * levels below contribute their own modes only.
 */
static enum zm_mtls_mode zm_rbac_pa_base(const struct zm_rbac_pa_levels *l,
					 const struct zm_rbac_policy **by)
{
	int lv;

	*by = NULL;
	for (lv = ZM_RBAC_PA_LEVELS - 1; lv > ZM_RBAC_PA_NONE; lv--) {
		if (l->v[lv] && l->v[lv]->mtls_mode != ZM_MTLS_UNSET) {
			*by = l->v[lv];
			return l->v[lv]->mtls_mode;
		}
	}
	return ZM_MTLS_PERMISSIVE;
}

bool zm_rbac_pa_strict_policy(const struct zm_rbac_pa_levels *l, struct zm_rbac_pa_strict *out)
{
	const struct zm_rbac_policy *wp = l->v[ZM_RBAC_PA_WORKLOAD], *by;
	enum zm_mtls_mode base = zm_rbac_pa_base(l, &by);

	memset(out, 0, sizeof(*out));
	out->presence = (struct zm_cfg_str_match){ZM_CFG_STR_PRESENCE, ""};
	out->match.not_principals = (struct zm_cfg_str_list){&out->presence, 1};
	if (base == ZM_MTLS_STRICT) {
		/* Every port, except the ones the workload policy relaxes. */
		if (wp)
			out->match.not_destination_ports = wp->loose_ports;
	} else if (wp && wp->strict_ports.n) {
		out->match.destination_ports = wp->strict_ports;
		by = wp;
	} else {
		return false;
	}
	out->clause = (struct zm_cfg_clause){&out->match, 1};
	out->rule = (struct zm_cfg_rule){&out->clause, 1};
	out->p = *by;
	out->p.action = ZM_CFG_ACTION_DENY;
	out->p.dry_run = false;
	out->p.rules = &out->rule;
	out->p.n_rules = 1;
	out->p.l7 = "";
	return true;
}
