// SPDX-License-Identifier: Apache-2.0
/*
 * The policy index (rbac.h zm_rbac_index_build, index_internal.h). Without it every connection
 * walks every loaded policy and asks each whether it applies to the destination (namespace and
 * label string compares), then does the same again for PeerAuthentication: with 1,000 policies
 * that is most of what deciding a connection costs, though only a handful can matter. The index
 * asks those questions once per policy or config change, for the workloads this node decides
 * for, and keeps the answers in the walk's own order, so the evaluator's verdicts, deciding
 * policies, reasons and dry-run reports are the walk's to the byte (the unit tests evaluate
 * every case both ways). It also splits every long principal or namespace list (a policy
 * naming hundreds of service identities) into sorted Exact values and the rest, so matching one
 * is a binary search instead of a string compare per entry. Everything here is immutable once
 * built: any number of threads may read one index while its sources live.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rbac/index_internal.h"

/* Fibonacci hashing of an address: workloads (and lists) sit a fixed stride apart. */
static size_t zm_rbac_ptr_hash(const void *p, size_t mask)
{
	return (size_t)(((uint64_t)(uintptr_t)p * 0x9e3779b97f4a7c15ull) >> 32) & mask;
}

const struct zm_rbac_applied *zm_rbac_index_find(const struct zm_rbac_index *idx,
						 const struct zm_cfg_workload *wl)
{
	size_t i;

	if (!idx->slots || !wl)
		return NULL;
	for (i = zm_rbac_ptr_hash(wl, idx->mask); idx->slots[i]; i = (i + 1) & idx->mask)
		if (idx->slots[i]->wl == wl)
			return idx->slots[i];
	return NULL;
}

const struct zm_rbac_index *zm_rbac_index_of(const struct zm_rbac_sources *src)
{
	const struct zm_rbac_index *idx = src ? src->index : NULL;
	size_t i;

	if (!idx || idx->cfg != src->cfg || idx->n_sets != src->n_sets)
		return NULL;
	for (i = 0; i < idx->n_sets; i++)
		if (idx->sets[i] != src->sets[i])
			return NULL;
	return idx;
}

/* Every policy of src in zm_rbac_walk's order: the config's (as views), then each set's. */
static const struct zm_rbac_policy **zm_rbac_index_all(struct zm_rbac_index *idx,
						       const struct zm_rbac_sources *src, size_t *n)
{
	const struct zm_rbac_policy **all;
	size_t i, j, total = idx->cfg ? idx->cfg->n_policies : 0;

	for (i = 0; i < src->n_sets; i++)
		total += src->sets[i] ? src->sets[i]->n_policies : 0;
	all = calloc(total ? total : 1, sizeof(*all));
	if (!all)
		return NULL;
	*n = 0;
	for (i = 0; idx->cfg && i < idx->cfg->n_policies; i++)
		all[(*n)++] = &idx->views[i];
	for (i = 0; i < src->n_sets; i++)
		for (j = 0; src->sets[i] && j < src->sets[i]->n_policies; j++)
			all[(*n)++] = &src->sets[i]->policies[j];
	return all;
}

/* Fill a's lists from the n policies of all (scratch: n entries of each kind, reused). */
static int zm_rbac_index_entry(struct zm_rbac_index *idx, struct zm_rbac_applied *a,
			       const struct zm_rbac_policy **all, size_t n, size_t *scratch)
{
	size_t k, n_deny = 0, n_allow = 0, *pos = scratch, *allow = scratch + n;
	const struct zm_rbac_policy *p;
	char *mem;

	a->first_dry = ZM_RBAC_NO_POS;
	for (k = 0; k < n; k++) {
		p = all[k];
		/* PeerAuthentication is resolved by level (a->pa), never visited as rules. */
		if (p->peer_auth || !zm_rbac_policy_applies(p, a->wl))
			continue;
		if (p->dry_run && a->first_dry == ZM_RBAC_NO_POS)
			a->first_dry = k;
		if (p->action == ZM_CFG_ACTION_DENY)
			pos[n_deny++] = k;
		else if (p->action == ZM_CFG_ACTION_ALLOW)
			allow[n_allow++] = k;
	}
	zm_rbac_pa_find_in(idx->pa, idx->n_pa, a->wl, false, &a->pa[0]);
	zm_rbac_pa_find_in(idx->pa, idx->n_pa, a->wl, true, &a->pa[1]);
	if (!n_deny && !n_allow)
		return 0;
	/* One block per workload: Deny pointers, Allow pointers, Deny positions. */
	mem = malloc((n_deny + n_allow) * sizeof(*a->deny) + n_deny * sizeof(*a->deny_pos));
	if (!mem)
		return -ENOMEM;
	a->deny = (const struct zm_rbac_policy **)mem;
	a->allow = a->deny + n_deny;
	a->deny_pos = (size_t *)(a->allow + n_allow);
	for (k = 0; k < n_deny; k++) {
		a->deny[k] = all[pos[k]];
		a->deny_pos[k] = pos[k];
	}
	for (k = 0; k < n_allow; k++)
		a->allow[k] = all[allow[k]];
	a->n_deny = n_deny;
	a->n_allow = n_allow;
	idx->policy_refs += n_deny + n_allow;
	return 0;
}

/* ---- long principal and namespace lists ---- */

const struct zm_rbac_strset *zm_rbac_index_strset(const struct zm_rbac_index *idx,
						  const struct zm_cfg_str_match *v)
{
	size_t i;

	if (!idx->strslots)
		return NULL;
	for (i = zm_rbac_ptr_hash(v, idx->strmask); idx->strslots[i]; i = (i + 1) & idx->strmask)
		if (idx->strslots[i]->list == v)
			return idx->strslots[i];
	return NULL;
}

/* Order of two spans: bytes first, then the shorter one first. */
static int zm_rbac_span_cmp(const char *a, size_t al, const char *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);

	return c ? c : (al > bl) - (al < bl);
}

static int zm_rbac_exact_cmp(const void *a, const void *b)
{
	const char *x = (*(const struct zm_cfg_str_match *const *)a)->value;
	const char *y = (*(const struct zm_cfg_str_match *const *)b)->value;

	return zm_rbac_span_cmp(x, strlen(x), y, strlen(y));
}

bool zm_rbac_strset_has_exact(const struct zm_rbac_strset *set, const char *s, size_t len)
{
	size_t lo = 0, hi = set->n_exact, mid;
	int c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = zm_rbac_span_cmp(set->v[mid]->value, strlen(set->v[mid]->value), s, len);
		if (!c)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* Split one list into *set (entries malloc'd). */
static int zm_rbac_strset_make(const struct zm_cfg_str_list *l, struct zm_rbac_strset *set)
{
	size_t i, k = 0, r;

	set->v = calloc(l->n, sizeof(*set->v));
	if (!set->v)
		return -ENOMEM;
	set->list = l->v;
	for (i = 0; i < l->n; i++)
		if (l->v[i].kind == ZM_CFG_STR_EXACT)
			set->v[k++] = &l->v[i];
	set->n_exact = k;
	for (i = 0, r = k; i < l->n; i++)
		if (l->v[i].kind != ZM_CFG_STR_EXACT)
			set->v[r++] = &l->v[i];
	set->n_rest = r - k;
	qsort(set->v, k, sizeof(*set->v), zm_rbac_exact_cmp);
	return 0;
}

/* Calls fn(l, ctx) for each principal or namespace list of p with ZM_RBAC_STRSET_MIN entries. */
static int zm_rbac_long_lists(const struct zm_rbac_policy *p,
			      int (*fn)(const struct zm_cfg_str_list *l, void *ctx), void *ctx)
{
	size_t r, k, g, j;
	int err;

	for (r = 0; r < p->n_rules; r++) {
		for (k = 0; k < p->rules[r].n_clauses; k++) {
			const struct zm_cfg_clause *cl = &p->rules[r].clauses[k];

			for (g = 0; g < cl->n_matches; g++) {
				const struct zm_cfg_match *m = &cl->matches[g];
				const struct zm_cfg_str_list *v[] = {
				    &m->principals, &m->not_principals, &m->namespaces,
				    &m->not_namespaces};

				for (j = 0; j < sizeof(v) / sizeof(v[0]); j++)
					if (v[j]->n >= ZM_RBAC_STRSET_MIN && (err = fn(v[j], ctx)))
						return err;
			}
		}
	}
	return 0;
}

static int zm_rbac_count_list(const struct zm_cfg_str_list *l, void *ctx)
{
	(void)l;
	++*(size_t *)ctx;
	return 0;
}

static int zm_rbac_add_list(const struct zm_cfg_str_list *l, void *ctx)
{
	struct zm_rbac_index *idx = ctx;
	struct zm_rbac_strset *set = &idx->strsets[idx->n_strsets];
	size_t h;

	if (zm_rbac_index_strset(idx, l->v))
		return 0; /* shared by two policies: one split serves both */
	if (zm_rbac_strset_make(l, set))
		return -ENOMEM;
	idx->n_strsets++;
	for (h = zm_rbac_ptr_hash(l->v, idx->strmask); idx->strslots[h]; h = (h + 1) & idx->strmask)
		;
	idx->strslots[h] = set;
	return 0;
}

/* Split every long principal and namespace list of the n policies of all. */
static int zm_rbac_index_strsets(struct zm_rbac_index *idx, const struct zm_rbac_policy **all,
				 size_t n)
{
	size_t i, lists = 0, slots = 2;

	for (i = 0; i < n; i++)
		zm_rbac_long_lists(all[i], zm_rbac_count_list, &lists);
	if (!lists)
		return 0;
	while (slots < 2 * lists)
		slots *= 2;
	idx->strsets = calloc(lists, sizeof(*idx->strsets));
	idx->strslots = calloc(slots, sizeof(*idx->strslots));
	if (!idx->strsets || !idx->strslots)
		return -ENOMEM;
	idx->strmask = slots - 1;
	for (i = 0; i < n; i++)
		if (zm_rbac_long_lists(all[i], zm_rbac_add_list, idx))
			return -ENOMEM;
	return 0;
}

/* ---- the workloads ---- */

static bool zm_rbac_index_wants(const struct zm_cfg_workload *wl, const char *node)
{
	return !node || (*node && wl->node && !strcmp(wl->node, node));
}

/* Entries for the workloads of node and the table that finds them. */
static int zm_rbac_index_workloads(struct zm_rbac_index *idx, const char *node,
				   const struct zm_rbac_policy **all, size_t n_all)
{
	const struct zm_config *cfg = idx->cfg;
	size_t i, h, n = 0, slots = 2, *scratch;
	struct zm_rbac_applied *a;

	for (i = 0; cfg && i < cfg->n_workloads; i++)
		n += zm_rbac_index_wants(&cfg->workloads[i], node);
	if (!n)
		return 0;
	while (slots < 2 * n)
		slots *= 2;
	idx->wl = calloc(n, sizeof(*idx->wl));
	idx->slots = calloc(slots, sizeof(*idx->slots));
	scratch = calloc(2 * n_all + 1, sizeof(*scratch));
	if (!idx->wl || !idx->slots || !scratch) {
		free(scratch);
		return -ENOMEM;
	}
	idx->mask = slots - 1;
	for (i = 0; i < cfg->n_workloads; i++) {
		if (!zm_rbac_index_wants(&cfg->workloads[i], node))
			continue;
		a = &idx->wl[idx->n_wl++];
		a->wl = &cfg->workloads[i];
		if (zm_rbac_index_entry(idx, a, all, n_all, scratch)) {
			free(scratch);
			return -ENOMEM;
		}
		h = zm_rbac_ptr_hash(a->wl, idx->mask);
		while (idx->slots[h])
			h = (h + 1) & idx->mask;
		idx->slots[h] = a;
	}
	free(scratch);
	return 0;
}

struct zm_rbac_index *zm_rbac_index_build(const struct zm_rbac_sources *src, const char *node)
{
	struct zm_rbac_index *idx = calloc(1, sizeof(*idx));
	const struct zm_rbac_policy **all = NULL;
	size_t i, n_all = 0;

	if (!idx)
		return NULL;
	idx->cfg = src->cfg;
	idx->n_sets = src->n_sets;
	idx->sets = calloc(src->n_sets ? src->n_sets : 1, sizeof(*idx->sets));
	idx->views = calloc(idx->cfg && idx->cfg->n_policies ? idx->cfg->n_policies : 1,
			    sizeof(*idx->views));
	if (!idx->sets || !idx->views)
		goto nomem;
	for (i = 0; i < src->n_sets; i++)
		idx->sets[i] = src->sets[i];
	for (i = 0; idx->cfg && i < idx->cfg->n_policies; i++)
		zm_rbac_policy_from_cfg(&idx->cfg->policies[i], idx->cfg->source, &idx->views[i]);
	all = zm_rbac_index_all(idx, src, &n_all);
	if (!all)
		goto nomem;
	/* The PeerAuthentication list is a subset of all: same storage, packed to the front. */
	idx->pa = calloc(n_all ? n_all : 1, sizeof(*idx->pa));
	if (!idx->pa)
		goto nomem;
	for (i = 0; i < n_all; i++)
		if (all[i]->peer_auth)
			idx->pa[idx->n_pa++] = all[i];
	if (zm_rbac_index_workloads(idx, node, all, n_all) ||
	    zm_rbac_index_strsets(idx, all, n_all))
		goto nomem;
	free(all);
	return idx;
nomem:
	free(all);
	zm_rbac_index_free(idx);
	errno = ENOMEM;
	return NULL;
}

void zm_rbac_index_free(struct zm_rbac_index *idx)
{
	size_t i;

	if (!idx)
		return;
	for (i = 0; i < idx->n_wl; i++)
		free(idx->wl[i].deny);
	for (i = 0; i < idx->n_strsets; i++)
		free(idx->strsets[i].v);
	free(idx->strsets);
	free(idx->strslots);
	free(idx->wl);
	free(idx->slots);
	free(idx->pa);
	free(idx->views);
	free(idx->sets);
	free(idx);
}

void zm_rbac_index_stats(const struct zm_rbac_index *idx, struct zm_rbac_index_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!idx)
		return;
	st->workloads = idx->n_wl;
	st->policy_refs = idx->policy_refs;
	st->peer_auth = idx->n_pa;
	st->long_lists = idx->n_strsets;
}
