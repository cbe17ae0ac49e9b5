/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to lib/rbac: the policy index (index.c) as the evaluator (eval.c) and the
 * PeerAuthentication resolver (peerauth.c) read it. An entry lists, for one workload, exactly
 * what zm_rbac_walk would hand the Deny and Allow visitors, in the same order, plus enough of the
 * walk's shape (positions, the first dry-run policy) for the evaluator to report dry-run
 * differences exactly as the walk does.
 */
#ifndef ZMESH_RBAC_INDEX_INTERNAL_H
#define ZMESH_RBAC_INDEX_INTERNAL_H

#include <stdint.h>

#include "rbac/peerauth_internal.h"

#define ZM_RBAC_NO_POS SIZE_MAX

/* The policies that apply to one workload, as zm_rbac_walk visits them. */
struct zm_rbac_applied {
	const struct zm_cfg_workload *wl;
	const struct zm_rbac_policy **deny; /* action Deny, dry-run ones too, walk order */
	size_t *deny_pos;		    /* each one's position in the whole walk */
	size_t n_deny;
	const struct zm_rbac_policy **allow; /* action Allow, dry-run ones too, walk order */
	size_t n_allow;
	size_t first_dry; /* walk position of the first dry-run one, or NO_POS */
	struct zm_rbac_pa_levels
	    pa[2]; /* zm_rbac_pa_find's answer: [0] enforced, [1] with dry-run */
};

/*
 * A long principal or namespace list (at least ZM_RBAC_STRSET_MIN entries), split for lookup:
 * its Exact entries sorted by value, then every other entry in list order. Whether any entry
 * matches does not depend on the order, so a binary search over the first part plus a scan of
 * the rest answers what the scan of the whole list does.
 */
#define ZM_RBAC_STRSET_MIN 8
struct zm_rbac_strset {
	const struct zm_cfg_str_match *list; /* the key: the list's entries (v) */
	const struct zm_cfg_str_match **v;   /* n_exact sorted Exact entries, then n_rest others */
	size_t n_exact, n_rest;
};

struct zm_rbac_index {
	/* What it was built from: the evaluator uses it only for these exact sources. */
	const struct zm_config *cfg;
	const struct zm_rbac_set **sets;
	size_t n_sets;
	struct zm_rbac_policy *views;	  /* the config's policies in the model (cfg->n_policies) */
	const struct zm_rbac_policy **pa; /* every PeerAuthentication, load order */
	size_t n_pa;
	struct zm_rbac_applied *wl; /* the indexed workloads */
	size_t n_wl;
	struct zm_rbac_applied **slots; /* open addressing on the workload's address */
	size_t mask;			/* slots - 1; 0 with no slots */
	size_t policy_refs;
	struct zm_rbac_strset *strsets; /* every long list of every policy */
	size_t n_strsets;
	struct zm_rbac_strset **strslots; /* open addressing on the list's address */
	size_t strmask;
};

/* src's index when it was built from exactly src's config and sets, else NULL. */
const struct zm_rbac_index *zm_rbac_index_of(const struct zm_rbac_sources *src);

/* wl's entry (NULL: wl is not one of the indexed workloads). */
const struct zm_rbac_applied *zm_rbac_index_find(const struct zm_rbac_index *idx,
						 const struct zm_cfg_workload *wl);

/* The split form of the list whose entries are at v (NULL: not a long list of idx's policies). */
const struct zm_rbac_strset *zm_rbac_index_strset(const struct zm_rbac_index *idx,
						  const struct zm_cfg_str_match *v);

/* Is the span s, len one of set's Exact values? */
bool zm_rbac_strset_has_exact(const struct zm_rbac_strset *set, const char *s, size_t len);

/* zm_rbac_pa_find over a list of policies (only PeerAuthentication ones count). */
void zm_rbac_pa_find_in(const struct zm_rbac_policy *const *v, size_t n,
			const struct zm_cfg_workload *wl, bool with_dry_run,
			struct zm_rbac_pa_levels *out);

#endif
