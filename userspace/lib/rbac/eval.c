// SPDX-License-Identifier: Apache-2.0
/*
 * The L4 authorization evaluator (rbac.h): which policies apply to a destination workload and
 * what they decide about one connection. Matching follows the reference's rbac.rs to the edge
 * cases: a policy without rules never matches; a rule without clauses and a clause without
 * match groups always match; an empty match group never matches; inside a group every listed
 * attribute must hold (any positive entry, no negative entry); principals are compared without
 * "spiffe://" and an identity without that prefix (or none) matches no principal, which makes
 * every notPrincipals entry hold. The source namespace of a plaintext connection is "".
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rbac/index_internal.h"

/* The parts of the peer identity the matchers look at, as spans of conn->identity. */
struct zm_rbac_id {
	bool principal_ok; /* identity present and starts with spiffe:// */
	const char *principal;
	bool parsed; /* spiffe://<td>/ns/<ns>/sa/<sa> */
	const char *ns, *sa;
	size_t ns_len, sa_len;
};

#define ZM_RBAC_SPIFFE "spiffe://"

static void zm_rbac_id_parse(const char *id, struct zm_rbac_id *out)
{
	const char *p, *ns, *sa;

	*out = (struct zm_rbac_id){.principal = "", .ns = "", .sa = ""};
	if (!id || strncmp(id, ZM_RBAC_SPIFFE, strlen(ZM_RBAC_SPIFFE)))
		return;
	out->principal_ok = true;
	out->principal = id + strlen(ZM_RBAC_SPIFFE);
	p = strchr(out->principal, '/');
	if (!p || p == out->principal || strncmp(p, "/ns/", 4))
		return;
	ns = p + 4;
	p = strchr(ns, '/');
	if (!p || p == ns || strncmp(p, "/sa/", 4))
		return;
	sa = p + 4;
	if (!*sa || strchr(sa, '/'))
		return;
	out->parsed = true;
	out->ns = ns;
	out->ns_len = (size_t)(p - ns);
	out->sa = sa;
	out->sa_len = strlen(sa);
}

static bool zm_rbac_str_match(const struct zm_cfg_str_match *m, const char *s, size_t len)
{
	size_t vl = strlen(m->value);

	switch (m->kind) {
	case ZM_CFG_STR_EXACT:
		return vl == len && !memcmp(m->value, s, len);
	case ZM_CFG_STR_PREFIX:
		return vl <= len && !memcmp(m->value, s, vl);
	case ZM_CFG_STR_SUFFIX:
		return vl <= len && !memcmp(m->value, s + len - vl, vl);
	case ZM_CFG_STR_PRESENCE:
		return len > 0;
	}
	return false;
}

static bool zm_rbac_cidr_has(const struct zm_cfg_cidr *c, const struct zm_addr *a)
{
	const unsigned char *x = (const unsigned char *)c->addr.addr;
	const unsigned char *y = (const unsigned char *)a->addr;
	unsigned int bits = c->prefix_len, i;

	if (c->addr.family != a->family)
		return false;
	for (i = 0; bits >= 8; i++, bits -= 8)
		if (x[i] != y[i])
			return false;
	return !bits || !((x[i] ^ y[i]) & (unsigned char)(0xff << (8 - bits)));
}

/* One attribute of a group: any positive entry (when listed) and no negative entry. */
#define ZM_RBAC_ATTR(pos, neg, test)                                                               \
	({                                                                                         \
		bool any_ = false, none_ = true;                                                   \
		size_t i_;                                                                         \
		for (i_ = 0; i_ < (pos).n && !any_; i_++) {                                        \
			__typeof__(&(pos).v[0]) e_ = &(pos).v[i_];                                 \
			any_ = (test);                                                             \
		}                                                                                  \
		for (i_ = 0; i_ < (neg).n && none_; i_++) {                                        \
			__typeof__(&(neg).v[0]) e_ = &(neg).v[i_];                                 \
			none_ = !(test);                                                           \
		}                                                                                  \
		((pos).n == 0 || any_) && none_;                                                   \
	})

bool zm_rbac_match_empty(const struct zm_cfg_match *m)
{
	return !m->namespaces.n && !m->not_namespaces.n && !m->service_accounts.n &&
	       !m->not_service_accounts.n && !m->principals.n && !m->not_principals.n &&
	       !m->source_ips.n && !m->not_source_ips.n && !m->destination_ips.n &&
	       !m->not_destination_ips.n && !m->destination_ports.n && !m->not_destination_ports.n;
}

/* Does any entry of l match s? A long list of idx's policies: through its split form. */
static bool zm_rbac_strs_any(const struct zm_cfg_str_list *l, const char *s, size_t len,
			     const struct zm_rbac_index *idx)
{
	const struct zm_rbac_strset *set =
	    idx && l->n >= ZM_RBAC_STRSET_MIN ? zm_rbac_index_strset(idx, l->v) : NULL;
	size_t i;

	if (!set) {
		for (i = 0; i < l->n; i++)
			if (zm_rbac_str_match(&l->v[i], s, len))
				return true;
		return false;
	}
	if (zm_rbac_strset_has_exact(set, s, len))
		return true;
	for (i = set->n_exact; i < set->n_exact + set->n_rest; i++)
		if (zm_rbac_str_match(set->v[i], s, len))
			return true;
	return false;
}

/* ZM_RBAC_ATTR for string lists; usable says whether s can match at all (no identity: no). */
static bool zm_rbac_strs_attr(const struct zm_cfg_str_list *pos, const struct zm_cfg_str_list *neg,
			      bool usable, const char *s, size_t len,
			      const struct zm_rbac_index *idx)
{
	return (!pos->n || (usable && zm_rbac_strs_any(pos, s, len, idx))) &&
	       !(usable && neg->n && zm_rbac_strs_any(neg, s, len, idx));
}

static bool zm_rbac_group_matches(const struct zm_cfg_match *m, const struct zm_rbac_conn *c,
				  const struct zm_rbac_id *id, const struct zm_rbac_index *idx)
{
	size_t plen = strlen(id->principal);

	return ZM_RBAC_ATTR(m->destination_ips, m->not_destination_ips,
			    zm_rbac_cidr_has(e_, &c->dst_ip)) &&
	       ZM_RBAC_ATTR(m->source_ips, m->not_source_ips, zm_rbac_cidr_has(e_, &c->src_ip)) &&
	       ZM_RBAC_ATTR(m->destination_ports, m->not_destination_ports, *e_ == c->dst_port) &&
	       ZM_RBAC_ATTR(m->service_accounts, m->not_service_accounts,
			    id->parsed && strlen(e_->namespace) == id->ns_len &&
				!memcmp(e_->namespace, id->ns, id->ns_len) &&
				!strcmp(e_->service_account, id->sa)) &&
	       zm_rbac_strs_attr(&m->principals, &m->not_principals, id->principal_ok,
				 id->principal, plen, idx) &&
	       zm_rbac_strs_attr(&m->namespaces, &m->not_namespaces, true, id->ns, id->ns_len, idx);
}

/* idx: the index of the sources p comes from (its long lists), or NULL. */
static bool zm_rbac_matches(const struct zm_rbac_policy *p, const struct zm_rbac_conn *c,
			    const struct zm_rbac_id *id, const struct zm_rbac_index *idx)
{
	size_t r, k, g;

	for (r = 0; r < p->n_rules; r++) {
		const struct zm_cfg_rule *rule = &p->rules[r];
		bool rule_ok = true;

		for (k = 0; k < rule->n_clauses && rule_ok; k++) {
			const struct zm_cfg_clause *cl = &rule->clauses[k];
			bool clause_ok = cl->n_matches == 0;

			for (g = 0; g < cl->n_matches && !clause_ok; g++)
				clause_ok = !zm_rbac_match_empty(&cl->matches[g]) &&
					    zm_rbac_group_matches(&cl->matches[g], c, id, idx);
			rule_ok = clause_ok;
		}
		if (rule_ok)
			return true;
	}
	return false;
}

bool zm_rbac_policy_matches(const struct zm_rbac_policy *p, const struct zm_rbac_conn *conn)
{
	struct zm_rbac_id id;

	zm_rbac_id_parse(conn->identity && *conn->identity ? conn->identity : NULL, &id);
	return zm_rbac_matches(p, conn, &id, NULL);
}

static bool zm_rbac_labels_match(const struct zm_rbac_policy *p, const struct zm_cfg_workload *wl)
{
	size_t i, j;

	for (i = 0; i < p->n_selector; i++) {
		for (j = 0; j < wl->n_labels; j++)
			if (!strcmp(wl->labels[j].key, p->selector[i].key) &&
			    !strcmp(wl->labels[j].value, p->selector[i].value))
				break;
		if (j == wl->n_labels)
			return false;
	}
	return true;
}

bool zm_rbac_policy_applies(const struct zm_rbac_policy *p, const struct zm_cfg_workload *wl)
{
	size_t i;

	switch (p->scope) {
	case ZM_CFG_SCOPE_GLOBAL:
		return true;
	case ZM_CFG_SCOPE_NAMESPACE:
		return !strcmp(p->namespace, wl->namespace);
	case ZM_CFG_SCOPE_WORKLOAD_SELECTOR:
		for (i = 0; i < wl->n_policies; i++)
			if (wl->policies[i].key && !strcmp(wl->policies[i].key, p->key))
				return true;
		/* Istio: a selector selects in its own namespace, or anywhere from the root. */
		return p->n_selector &&
		       (!strcmp(p->namespace, wl->namespace) ||
			!strcmp(p->namespace, ZM_RBAC_ROOT_NAMESPACE)) &&
		       zm_rbac_labels_match(p, wl);
	}
	return false;
}

void zm_rbac_policy_from_cfg(const struct zm_cfg_policy *cp, const char *source,
			     struct zm_rbac_policy *out)
{
	*out = (struct zm_rbac_policy){
	    .name = cp->name,
	    .namespace = cp->namespace,
	    .key = cp->key ? cp->key : "",
	    .kind = "policy",
	    .scope = cp->scope,
	    .action = cp->action,
	    .rules = cp->rules,
	    .n_rules = cp->n_rules,
	    .dry_run = cp->dry_run,
	    .l7 = "",
	    .source = source ? source : "",
	    .line = cp->line,
	};
}

/* Calls fn for every policy of src that applies to wl, until fn returns true. */
typedef bool (*zm_rbac_visit_fn)(const struct zm_rbac_policy *p, void *ctx);

static void zm_rbac_walk(const struct zm_rbac_sources *src, const struct zm_cfg_workload *wl,
			 zm_rbac_visit_fn fn, void *ctx)
{
	struct zm_rbac_policy view;
	size_t i, j;

	for (i = 0; src->cfg && i < src->cfg->n_policies; i++) {
		zm_rbac_policy_from_cfg(&src->cfg->policies[i], src->cfg->source, &view);
		if (zm_rbac_policy_applies(&view, wl) && fn(&view, ctx))
			return;
	}
	for (i = 0; i < src->n_sets; i++) {
		const struct zm_rbac_set *s = src->sets[i];

		for (j = 0; s && j < s->n_policies; j++)
			if (zm_rbac_policy_applies(&s->policies[j], wl) && fn(&s->policies[j], ctx))
				return;
	}
}

/* One evaluation pass: enforced policies only, or with the dry-run ones added. */
struct zm_rbac_pass {
	const struct zm_rbac_conn *conn;
	const struct zm_rbac_index *index;     /* the sources' index, NULL: none */
	const struct zm_rbac_applied *applied; /* the index's entry for conn->dst, NULL: walk */
	struct zm_rbac_id id;
	bool with_dry_run;
	bool decided, allow, saw_dry_run;
	size_t n_allow;
	const struct zm_rbac_policy *l7_allow; /* an ALLOW in scope whose L7 rules were dropped */
	char policy[ZM_RBAC_KEY_LEN];
	char reason[ZM_RBAC_REASON_LEN];
	char allow_keys[ZM_RBAC_REASON_LEN / 2];
};

/* PeerAuthentication is judged by its mode (zm_rbac_pass_mtls), never as a rule set. */
static bool zm_rbac_counts(const struct zm_rbac_policy *p, struct zm_rbac_pass *ps)
{
	if (p->peer_auth)
		return false;
	if (p->dry_run) {
		ps->saw_dry_run = true;
		return ps->with_dry_run;
	}
	return true;
}

static void zm_rbac_decide(struct zm_rbac_pass *ps, bool allow, const struct zm_rbac_policy *p,
			   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void zm_rbac_decide(struct zm_rbac_pass *ps, bool allow, const struct zm_rbac_policy *p,
			   const char *fmt, ...)
{
	va_list ap;

	ps->decided = true;
	ps->allow = allow;
	snprintf(ps->policy, sizeof(ps->policy), "%s", p ? p->key : "");
	va_start(ap, fmt);
	vsnprintf(ps->reason, sizeof(ps->reason), fmt, ap);
	va_end(ap);
}

static bool zm_rbac_visit_deny(const struct zm_rbac_policy *p, void *ctx)
{
	struct zm_rbac_pass *ps = ctx;
	const struct zm_cfg_workload *wl = ps->conn->dst;

	(void)wl;
	if (!zm_rbac_counts(p, ps))
		return false;
	if (p->action != ZM_CFG_ACTION_DENY || !zm_rbac_matches(p, ps->conn, &ps->id, ps->index))
		return false;
	zm_rbac_decide(ps, false, p, "denied by %s %s", p->kind, p->key);
	return true;
}

/* STRICT at the connection's port refuses a connection without a principal. */
static void zm_rbac_pass_mtls(const struct zm_rbac_sources *src, struct zm_rbac_pass *ps)
{
	const struct zm_rbac_policy *by;
	struct zm_rbac_pa_levels l;
	bool port_level;
	char port[24] = "";

	zm_rbac_pa_find(src, ps->conn->dst, ps->with_dry_run, &l);
	ps->saw_dry_run |= l.saw_dry_run;
	/* The same test as {notPrincipals: [Presence]}: no identity, or an empty one. */
	if (ps->id.principal_ok && *ps->id.principal)
		return;
	if (zm_rbac_pa_resolve(&l, ps->conn->dst_port, &by, &port_level) != ZM_MTLS_STRICT)
		return;
	if (port_level)
		snprintf(port, sizeof(port), " on port %u", ps->conn->dst_port);
	zm_rbac_decide(ps, false, by,
		       "PeerAuthentication %s requires mTLS (STRICT)%s and the connection has no "
		       "peer identity",
		       by->key, port);
}

static bool zm_rbac_visit_allow(const struct zm_rbac_policy *p, void *ctx)
{
	struct zm_rbac_pass *ps = ctx;
	size_t used = strlen(ps->allow_keys);

	if (p->action != ZM_CFG_ACTION_ALLOW || !zm_rbac_counts(p, ps))
		return false;
	ps->n_allow++;
	if (p->l7 && *p->l7 && !ps->l7_allow)
		ps->l7_allow = p;
	if (used + strlen(p->key) + 8 < sizeof(ps->allow_keys))
		snprintf(ps->allow_keys + used, sizeof(ps->allow_keys) - used, "%s%s",
			 used ? ", " : "", p->key);
	if (!zm_rbac_matches(p, ps->conn, &ps->id, ps->index))
		return false;
	zm_rbac_decide(ps, true, p, "allowed by %s %s", p->kind, p->key);
	return true;
}

/*
 * The Deny walk over the index's list. The walk proper also passes every other applicable
 * policy through zm_rbac_counts, which notes dry-run ones up to the Deny that decides: the
 * positions say which of them the walk would have seen.
 */
static void zm_rbac_scan_deny(struct zm_rbac_pass *ps)
{
	const struct zm_rbac_applied *a = ps->applied;
	size_t i;

	for (i = 0; i < a->n_deny; i++)
		if (zm_rbac_visit_deny(a->deny[i], ps))
			break;
	if (a->first_dry < (i < a->n_deny ? a->deny_pos[i] : ZM_RBAC_NO_POS))
		ps->saw_dry_run = true;
}

static void zm_rbac_scan_allow(struct zm_rbac_pass *ps)
{
	size_t i;

	for (i = 0; i < ps->applied->n_allow; i++)
		if (zm_rbac_visit_allow(ps->applied->allow[i], ps))
			return;
}

static void zm_rbac_pass_run(const struct zm_rbac_sources *src, struct zm_rbac_pass *ps)
{
	const struct zm_cfg_workload *wl = ps->conn->dst;

	zm_rbac_pass_mtls(src, ps);
	if (ps->decided)
		return;
	if (ps->applied)
		zm_rbac_scan_deny(ps);
	else
		zm_rbac_walk(src, wl, zm_rbac_visit_deny, ps);
	if (ps->decided)
		return;
	if (ps->applied)
		zm_rbac_scan_allow(ps);
	else
		zm_rbac_walk(src, wl, zm_rbac_visit_allow, ps);
	if (ps->decided)
		return;
	if (!ps->n_allow)
		zm_rbac_decide(ps, true, NULL, "no allow policy applies to %s/%s", wl->namespace,
			       wl->name);
	else if (ps->l7_allow && !wl->waypoint.present)
		/* istiod drops ALLOW rules ztunnel cannot see: without a waypoint, say so. */
		zm_rbac_decide(ps, false, ps->l7_allow,
			       "%s %s uses the L7 attribute %s but workload %s/%s has no waypoint "
			       "to enforce it: no allow policy matched (%zu apply: %s)",
			       ps->l7_allow->kind, ps->l7_allow->key, ps->l7_allow->l7,
			       wl->namespace, wl->name, ps->n_allow, ps->allow_keys);
	else
		zm_rbac_decide(ps, false, NULL, "no allow policy matched (%zu apply: %s)",
			       ps->n_allow, ps->allow_keys);
}

int zm_rbac_evaluate(const struct zm_rbac_sources *src, const struct zm_rbac_conn *conn,
		     struct zm_rbac_result *r)
{
	const struct zm_rbac_index *idx = zm_rbac_index_of(src);
	struct zm_rbac_pass enforced = {.conn = conn}, shadow;

	memset(r, 0, sizeof(*r));
	if (!conn->dst) {
		snprintf(r->reason, sizeof(r->reason), "no destination workload");
		return -EINVAL;
	}
	enforced.index = idx;
	enforced.applied = idx ? zm_rbac_index_find(idx, conn->dst) : NULL;
	zm_rbac_id_parse(conn->identity && *conn->identity ? conn->identity : NULL, &enforced.id);
	zm_rbac_pass_run(src, &enforced);
	r->allow = enforced.allow;
	memcpy(r->policy, enforced.policy, sizeof(r->policy));
	memcpy(r->reason, enforced.reason, sizeof(r->reason));
	if (!enforced.saw_dry_run)
		return 0;
	shadow = (struct zm_rbac_pass){.conn = conn,
				       .index = idx,
				       .applied = enforced.applied,
				       .id = enforced.id,
				       .with_dry_run = true};
	zm_rbac_pass_run(src, &shadow);
	r->dry_run_differs = shadow.allow != enforced.allow;
	snprintf(r->dry_run, sizeof(r->dry_run), "with dry-run policies: %s (%.400s)",
		 shadow.allow ? "allow" : "deny", shadow.reason);
	return 0;
}
