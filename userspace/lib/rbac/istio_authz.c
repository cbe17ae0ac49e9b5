// SPDX-License-Identifier: Apache-2.0
/*
 * Istio AuthorizationPolicy spec -> struct zm_rbac_policy, the way istiod translates it for
 * ztunnel: a rule becomes one clause for `from` (one match group per source), one for `to`
 * (one group per operation) and one per `when` condition. Values with `*` become Presence
 * ("*"), Suffix ("*x") or Prefix ("x*"); ipBlocks and remoteIpBlocks both match the source
 * address (at L4 they are the same thing); ports may be written as strings, as Istio does.
 *
 * L7 attributes (paths, methods, hosts, requestPrincipals, request.* conditions) cannot be
 * seen by ztunnel, and we follow istiod's translation for ztunnel (pilot/pkg/serviceregistry/
 * ambient/authorization.go): an ALLOW rule using one is dropped (it can never be proven to
 * match); a DENY rule loses its L7 parts, and a match group left empty by that never matches,
 * so a DENY whose rules hold only L7 attributes has no effect at ztunnel. The policy records
 * the first L7 attribute (zm_rbac_policy.l7) for the evaluator's reasons. A policy with
 * targetRefs is bound to a waypoint, which enforces it: ztunnel skips it (istiod does not send
 * it), so one file can feed both.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "rbac/istio_internal.h"

struct zm_is_strs {
	const char **v;
	size_t n;
};

struct zm_is_src {
	struct zm_cfg_match m;
	struct zm_cfg_cidr_list remote, not_remote;
	struct zm_is_strs req_principals, not_req_principals;
};

struct zm_is_op {
	struct zm_cfg_match m;
	struct zm_is_strs hosts, not_hosts, methods, not_methods, paths, not_paths;
};

/* One match group under construction and the L7 attribute it used, if any. */
struct zm_is_group {
	struct zm_cfg_match m;
	const char *l7;
};

struct zm_is_rule {
	struct zm_is_group *from, *to, *when;
	size_t n_from, n_to, n_when;
};

struct zm_is_spec {
	struct zm_is_meta *meta;
	bool target_refs;
	int action;
	struct zm_is_rule *rules;
	size_t n_rules;
};

/* "*" -> Presence, "*x" -> Suffix, "x*" -> Prefix, else Exact. */
static int zm_is_str_item(struct zm_yl *yl, yaml_node_t *n, void *elem, size_t idx)
{
	struct zm_cfg_str_match *m = elem;
	const char *s, *star;
	size_t len;
	int r = zm_yl_str(yl, n, &s);

	(void)idx;
	if (r)
		return r;
	len = strlen(s);
	star = strchr(s, '*');
	if (!len) {
		zm_yl_error(yl, n, "must not be empty");
		return -EINVAL;
	}
	if (!star) {
		*m = (struct zm_cfg_str_match){ZM_CFG_STR_EXACT, s};
	} else if (len == 1) {
		*m = (struct zm_cfg_str_match){ZM_CFG_STR_PRESENCE, ""};
	} else if (star == s && !strchr(s + 1, '*')) {
		*m = (struct zm_cfg_str_match){ZM_CFG_STR_SUFFIX, s + 1};
	} else if (star == s + len - 1) {
		*m = (struct zm_cfg_str_match){ZM_CFG_STR_PREFIX,
					       zm_config_strndup(yl->cfg, s, len - 1)};
		if (!m->value)
			return zm_yl_oom(yl);
	} else {
		zm_yl_error(yl, n, "wildcard * is allowed only at the start or the end");
		return -EINVAL;
	}
	return 0;
}

static int zm_is_str_list(struct zm_yl *yl, yaml_node_t *n, void *member)
{
	struct zm_cfg_str_list *l = member;

	return zm_yl_list(yl, n, sizeof(*l->v), zm_is_str_item, (void **)&l->v, &l->n);
}

/* An L7 list: checked for shape only, ztunnel never matches on it. */
static int zm_is_l7_list(struct zm_yl *yl, yaml_node_t *n, void *member)
{
	struct zm_is_strs *l = member;

	return zm_yl_list(yl, n, sizeof(*l->v), zm_yl_str_item, (void **)&l->v, &l->n);
}

/* serviceAccounts: "<namespace>/<name>". */
static int zm_is_sa_item(struct zm_yl *yl, yaml_node_t *n, void *elem, size_t idx)
{
	struct zm_cfg_sa_match *sa = elem;
	char q[ZM_YL_QUOTE_BUF];
	const char *s, *slash;
	int r = zm_yl_str(yl, n, &s);

	(void)idx;
	if (r)
		return r;
	slash = strchr(s, '/');
	if (!slash || slash == s || !slash[1] || strchr(slash + 1, '/')) {
		zm_yl_error(yl, n, "invalid service account %s (want <namespace>/<name>)",
			    zm_yl_quote(n, q, sizeof(q)));
		return -EINVAL;
	}
	sa->namespace = zm_config_strndup(yl->cfg, s, (size_t)(slash - s));
	sa->service_account = slash + 1;
	return sa->namespace ? 0 : zm_yl_oom(yl);
}

static int zm_is_sa_list(struct zm_yl *yl, yaml_node_t *n, void *member)
{
	struct zm_cfg_sa_list *l = member;

	return zm_yl_list(yl, n, sizeof(*l->v), zm_is_sa_item, (void **)&l->v, &l->n);
}

#define SRC(name, member, fn) ZM_YL_FUNC_AT(name, struct zm_is_src, member, 0, fn)

static const struct zm_yl_field zm_is_src_fields[] = {
    SRC("principals", m.principals, zm_is_str_list),
    SRC("notPrincipals", m.not_principals, zm_is_str_list),
    SRC("namespaces", m.namespaces, zm_is_str_list),
    SRC("notNamespaces", m.not_namespaces, zm_is_str_list),
    SRC("serviceAccounts", m.service_accounts, zm_is_sa_list),
    SRC("notServiceAccounts", m.not_service_accounts, zm_is_sa_list),
    SRC("ipBlocks", m.source_ips, zm_yl_cidr_list),
    SRC("notIpBlocks", m.not_source_ips, zm_yl_cidr_list),
    SRC("remoteIpBlocks", remote, zm_yl_cidr_list),
    SRC("notRemoteIpBlocks", not_remote, zm_yl_cidr_list),
    SRC("requestPrincipals", req_principals, zm_is_l7_list),
    SRC("notRequestPrincipals", not_req_principals, zm_is_l7_list),
};

#define OP(name, member, fn) ZM_YL_FUNC_AT(name, struct zm_is_op, member, 0, fn)

static const struct zm_yl_field zm_is_op_fields[] = {
    OP("ports", m.destination_ports, zm_yl_port_list_quoted),
    OP("notPorts", m.not_destination_ports, zm_yl_port_list_quoted),
    OP("hosts", hosts, zm_is_l7_list),
    OP("notHosts", not_hosts, zm_is_l7_list),
    OP("methods", methods, zm_is_l7_list),
    OP("notMethods", not_methods, zm_is_l7_list),
    OP("paths", paths, zm_is_l7_list),
    OP("notPaths", not_paths, zm_is_l7_list),
};

/* a ++ b in the arena (remoteIpBlocks join ipBlocks). */
static int zm_is_cidr_join(struct zm_yl *yl, struct zm_cfg_cidr_list *a,
			   const struct zm_cfg_cidr_list *b)
{
	struct zm_cfg_cidr *v;

	if (!b->n)
		return 0;
	v = zm_config_calloc(yl->cfg, a->n + b->n, sizeof(*v));
	if (!v)
		return zm_yl_oom(yl);
	if (a->n)
		memcpy(v, a->v, a->n * sizeof(*v));
	memcpy(v + a->n, b->v, b->n * sizeof(*v));
	a->v = v;
	a->n += b->n;
	return 0;
}

static int zm_is_source(struct zm_yl *yl, yaml_node_t *n, void *member)
{
	struct zm_is_group *g = member;
	struct zm_is_src s = {0};
	int r = zm_yl_mapping(yl, n, zm_is_src_fields, ZM_YL_N(zm_is_src_fields), &s);

	if (r)
		return r;
	r = zm_is_cidr_join(yl, &s.m.source_ips, &s.remote)
		?: zm_is_cidr_join(yl, &s.m.not_source_ips, &s.not_remote);
	if (r)
		return r;
	g->m = s.m;
	if (s.req_principals.n)
		g->l7 = "from.source.requestPrincipals";
	else if (s.not_req_principals.n)
		g->l7 = "from.source.notRequestPrincipals";
	if (!g->l7 && !s.m.principals.n && !s.m.not_principals.n && !s.m.namespaces.n &&
	    !s.m.not_namespaces.n && !s.m.service_accounts.n && !s.m.not_service_accounts.n &&
	    !s.m.source_ips.n && !s.m.not_source_ips.n) {
		zm_yl_error(yl, n, "must set at least one field");
		return -EINVAL;
	}
	return 0;
}

static int zm_is_operation(struct zm_yl *yl, yaml_node_t *n, void *member)
{
	static const char *const names[] = {"hosts",	  "notHosts", "methods",
					    "notMethods", "paths",    "notPaths"};
	struct zm_is_group *g = member;
	struct zm_is_op o = {0};
	const struct zm_is_strs *l7[] = {&o.hosts,	 &o.not_hosts, &o.methods,
					 &o.not_methods, &o.paths,     &o.not_paths};
	size_t i;
	int r = zm_yl_mapping(yl, n, zm_is_op_fields, ZM_YL_N(zm_is_op_fields), &o);

	if (r)
		return r;
	g->m = o.m;
	for (i = 0; i < ZM_YL_N(l7) && !g->l7; i++) {
		if (!l7[i]->n)
			continue;
		g->l7 = zm_config_alloc(yl->cfg, 32);
		if (!g->l7)
			return zm_yl_oom(yl);
		snprintf((char *)g->l7, 32, "to.operation.%s", names[i]);
	}
	if (!g->l7 && !o.m.destination_ports.n && !o.m.not_destination_ports.n) {
		zm_yl_error(yl, n, "must set at least one field");
		return -EINVAL;
	}
	return 0;
}

static const struct zm_yl_field zm_is_from_fields[] = {
    ZM_YL_FUNC("source", ZM_YL_REQUIRED, zm_is_source),
};
static const struct zm_yl_field zm_is_to_fields[] = {
    ZM_YL_FUNC("operation", ZM_YL_REQUIRED, zm_is_operation),
};

static int zm_is_from_item(struct zm_yl *yl, yaml_node_t *n, void *elem, size_t idx)
{
	(void)idx;
	return zm_yl_mapping(yl, n, zm_is_from_fields, ZM_YL_N(zm_is_from_fields), elem);
}

static int zm_is_to_item(struct zm_yl *yl, yaml_node_t *n, void *elem, size_t idx)
{
	(void)idx;
	return zm_yl_mapping(yl, n, zm_is_to_fields, ZM_YL_N(zm_is_to_fields), elem);
}

/* A `when` condition: {key, values, notValues}; nodes kept so each value reports its line. */
struct zm_is_when {
	const char *key;
	yaml_node_t *values, *not_values;
};

static int zm_is_stash(struct zm_yl *yl, yaml_node_t *n, void *member)
{
	if (n->type != YAML_SEQUENCE_NODE) {
		zm_yl_error(yl, n, "expected a list, got %s", zm_yl_kind_name(n));
		return -EINVAL;
	}
	*(yaml_node_t **)member = n;
	return 0;
}

static const struct zm_yl_field zm_is_when_fields[] = {
    ZM_YL_F("key", ZM_YL_STR, struct zm_is_when, key, ZM_YL_REQUIRED | ZM_YL_NONEMPTY),
    ZM_YL_FUNC_AT("values", struct zm_is_when, values, 0, zm_is_stash),
    ZM_YL_FUNC_AT("notValues", struct zm_is_when, not_values, 0, zm_is_stash),
};

/* Condition keys ztunnel evaluates, and where each lands in a match group. */
enum zm_is_when_kind {
	ZM_IS_W_SRC_IP,
	ZM_IS_W_NS,
	ZM_IS_W_PRINCIPAL,
	ZM_IS_W_DST_IP,
	ZM_IS_W_PORT
};

static const struct {
	const char *key;
	enum zm_is_when_kind kind;
} zm_is_when_keys[] = {
    {"source.ip", ZM_IS_W_SRC_IP},	{"remote.ip", ZM_IS_W_SRC_IP},
    {"source.namespace", ZM_IS_W_NS},	{"source.principal", ZM_IS_W_PRINCIPAL},
    {"destination.ip", ZM_IS_W_DST_IP}, {"destination.port", ZM_IS_W_PORT},
};

static int zm_is_when_values(struct zm_yl *yl, yaml_node_t *n, enum zm_is_when_kind kind,
			     struct zm_cfg_match *m, bool neg)
{
	size_t old = zm_yl_push_field(yl, neg ? "notValues" : "values");
	int r;

	switch (kind) {
	case ZM_IS_W_SRC_IP:
		r = zm_yl_cidr_list(yl, n, neg ? &m->not_source_ips : &m->source_ips);
		break;
	case ZM_IS_W_DST_IP:
		r = zm_yl_cidr_list(yl, n, neg ? &m->not_destination_ips : &m->destination_ips);
		break;
	case ZM_IS_W_NS:
		r = zm_is_str_list(yl, n, neg ? &m->not_namespaces : &m->namespaces);
		break;
	case ZM_IS_W_PRINCIPAL:
		r = zm_is_str_list(yl, n, neg ? &m->not_principals : &m->principals);
		break;
	default:
		r = zm_yl_port_list_quoted(yl, n,
					   neg ? &m->not_destination_ports : &m->destination_ports);
		break;
	}
	zm_yl_pop(yl, old);
	return r;
}

static size_t zm_is_seq_len(const yaml_node_t *n)
{
	return n ? (size_t)(n->data.sequence.items.top - n->data.sequence.items.start) : 0;
}

static bool zm_is_l7_key(const char *k)
{
	return !strncmp(k, "request.", 8) || !strncmp(k, "experimental.", 13) ||
	       !strcmp(k, "connection.sni") || !strcmp(k, "source.user");
}

static int zm_is_when_item(struct zm_yl *yl, yaml_node_t *n, void *elem, size_t idx)
{
	struct zm_is_group *g = elem;
	struct zm_is_when w = {0};
	char q[ZM_YL_QUOTE_BUF], *l7;
	size_t i;
	int r = zm_yl_mapping(yl, n, zm_is_when_fields, ZM_YL_N(zm_is_when_fields), &w);

	(void)idx;
	if (r)
		return r;
	if (!zm_is_seq_len(w.values) && !zm_is_seq_len(w.not_values)) {
		zm_yl_error(yl, n, "needs values or notValues");
		return -EINVAL;
	}
	if (zm_is_l7_key(w.key)) {
		l7 = zm_config_alloc(yl->cfg, strlen(w.key) + 6);
		if (!l7)
			return zm_yl_oom(yl);
		sprintf(l7, "when.%s", w.key);
		g->l7 = l7;
		return 0;
	}
	for (i = 0; i < ZM_YL_N(zm_is_when_keys); i++)
		if (!strcmp(w.key, zm_is_when_keys[i].key))
			break;
	if (i == ZM_YL_N(zm_is_when_keys)) {
		zm_cfg_quote(w.key, strlen(w.key), q, sizeof(q));
		zm_yl_error_at(yl, n, "key",
			       "unknown condition key %s (want source.ip, remote.ip, "
			       "source.namespace, source.principal, destination.ip, "
			       "destination.port or an L7 key)",
			       q);
		return -EINVAL;
	}
	r = w.values ? zm_is_when_values(yl, w.values, zm_is_when_keys[i].kind, &g->m, false) : 0;
	if (w.not_values)
		r = zm_is_when_values(yl, w.not_values, zm_is_when_keys[i].kind, &g->m, true) ?: r;
	return r;
}

static int zm_is_from_list(struct zm_yl *yl, yaml_node_t *n, void *obj)
{
	struct zm_is_rule *r = obj;

	return zm_yl_list(yl, n, sizeof(*r->from), zm_is_from_item, (void **)&r->from, &r->n_from);
}

static int zm_is_to_list(struct zm_yl *yl, yaml_node_t *n, void *obj)
{
	struct zm_is_rule *r = obj;

	return zm_yl_list(yl, n, sizeof(*r->to), zm_is_to_item, (void **)&r->to, &r->n_to);
}

static int zm_is_when_list(struct zm_yl *yl, yaml_node_t *n, void *obj)
{
	struct zm_is_rule *r = obj;

	return zm_yl_list(yl, n, sizeof(*r->when), zm_is_when_item, (void **)&r->when, &r->n_when);
}

static const struct zm_yl_field zm_is_rule_fields[] = {
    ZM_YL_FUNC("from", 0, zm_is_from_list),
    ZM_YL_FUNC("to", 0, zm_is_to_list),
    ZM_YL_FUNC("when", 0, zm_is_when_list),
};

static int zm_is_rule_item(struct zm_yl *yl, yaml_node_t *n, void *elem, size_t idx)
{
	(void)idx;
	return zm_yl_mapping(yl, n, zm_is_rule_fields, ZM_YL_N(zm_is_rule_fields), elem);
}

static int zm_is_rules(struct zm_yl *yl, yaml_node_t *n, void *obj)
{
	struct zm_is_spec *s = obj;

	return zm_yl_list(yl, n, sizeof(*s->rules), zm_is_rule_item, (void **)&s->rules,
			  &s->n_rules);
}

static int zm_is_action(struct zm_yl *yl, yaml_node_t *n, void *obj)
{
	static const char *const names[] = {"ALLOW", "DENY", "AUDIT", "CUSTOM", NULL};
	struct zm_is_spec *s = obj;
	int r = zm_yl_enum(yl, n, names, &s->action);

	if (!r && s->action > 1) {
		zm_yl_error(yl, n,
			    "action %s is not supported: ztunnel enforces ALLOW and DENY only",
			    names[s->action]);
		r = -EINVAL;
	}
	return r;
}

static int zm_is_spec_selector(struct zm_yl *yl, yaml_node_t *n, void *obj)
{
	struct zm_is_spec *s = obj;

	return zm_is_selector(yl, n, s->meta);
}

/* targetRefs: the waypoint's policy; read for its shape only (a list of references). */
static int zm_is_target_refs(struct zm_yl *yl, yaml_node_t *n, void *obj)
{
	struct zm_is_spec *s = obj;

	if (n->type != YAML_SEQUENCE_NODE && n->type != YAML_MAPPING_NODE) {
		zm_yl_error(yl, n, "want a list of {group, kind, name}");
		return -EINVAL;
	}
	s->target_refs = true;
	return 0;
}

static int zm_is_provider(struct zm_yl *yl, yaml_node_t *n, void *obj)
{
	(void)obj;
	zm_yl_error(yl, n, "not supported: provider belongs to action CUSTOM");
	return -EINVAL;
}

static const struct zm_yl_field zm_is_spec_fields[] = {
    ZM_YL_FUNC("selector", 0, zm_is_spec_selector),
    ZM_YL_FUNC("action", 0, zm_is_action),
    ZM_YL_FUNC("rules", 0, zm_is_rules),
    ZM_YL_FUNC("targetRef", 0, zm_is_target_refs),
    ZM_YL_FUNC("targetRefs", 0, zm_is_target_refs),
    ZM_YL_FUNC("provider", 0, zm_is_provider),
};

/* A clause from groups (a DENY group whose only attributes were L7 is empty: matches none). */
static int zm_is_clause(struct zm_yl *yl, const struct zm_is_group *g, size_t n,
			struct zm_cfg_rule *out)
{
	struct zm_cfg_clause *c = &((struct zm_cfg_clause *)out->clauses)[out->n_clauses];
	size_t i;

	if (!n)
		return 0;
	c->matches = zm_config_calloc(yl->cfg, n, sizeof(*c->matches));
	if (!c->matches)
		return zm_yl_oom(yl);
	/* A group left empty by dropping L7 attributes stays: an empty group never matches. */
	for (i = 0; i < n; i++)
		c->matches[i] = g[i].m;
	c->n_matches = n;
	out->n_clauses++;
	return 0;
}

static const char *zm_is_rule_l7(const struct zm_is_rule *ir)
{
	size_t i;

	for (i = 0; i < ir->n_from; i++)
		if (ir->from[i].l7)
			return ir->from[i].l7;
	for (i = 0; i < ir->n_to; i++)
		if (ir->to[i].l7)
			return ir->to[i].l7;
	for (i = 0; i < ir->n_when; i++)
		if (ir->when[i].l7)
			return ir->when[i].l7;
	return NULL;
}

static int zm_is_rule_build(struct zm_yl *yl, const struct zm_is_rule *ir, struct zm_cfg_rule *out)
{
	size_t i;
	int r;

	out->clauses = zm_config_calloc(yl->cfg, 2 + ir->n_when, sizeof(*out->clauses));
	if (!out->clauses)
		return zm_yl_oom(yl);
	r = zm_is_clause(yl, ir->from, ir->n_from, out) ?: zm_is_clause(yl, ir->to, ir->n_to, out);
	for (i = 0; !r && i < ir->n_when; i++)
		r = zm_is_clause(yl, &ir->when[i], 1, out);
	return r;
}

int zm_is_authz_spec(struct zm_yl *yl, yaml_node_t *spec, struct zm_is_meta *m,
		     struct zm_rbac_policy *p)
{
	struct zm_is_spec s = {.meta = m};
	struct zm_cfg_rule *rules;
	const char *l7;
	size_t i;
	int r;

	if (spec && !zm_yl_is_null(spec)) {
		r = zm_yl_mapping(yl, spec, zm_is_spec_fields, ZM_YL_N(zm_is_spec_fields), &s);
		if (r)
			return r;
	}
	if (s.target_refs && m->has_selector) {
		zm_yl_error(yl, spec, "only one of targetRefs or selector can be set");
		return -EINVAL;
	}
	if (s.target_refs)
		return ZM_IS_SKIP; /* the waypoint's: istiod does not send it to ztunnel */
	p->action = s.action == 1 ? ZM_CFG_ACTION_DENY : ZM_CFG_ACTION_ALLOW;
	rules = zm_config_calloc(yl->cfg, s.n_rules ? s.n_rules : 1, sizeof(*rules));
	if (!rules)
		return zm_yl_oom(yl);
	p->rules = rules;
	for (i = 0; i < s.n_rules; i++) {
		l7 = zm_is_rule_l7(&s.rules[i]);
		if (l7 && !*p->l7)
			p->l7 = l7;
		/* An ALLOW rule needing L7 can never be proven at L4: drop it (istiod does). */
		if (l7 && p->action == ZM_CFG_ACTION_ALLOW)
			continue;
		r = zm_is_rule_build(yl, &s.rules[i], &rules[p->n_rules]);
		if (r)
			return r;
		p->n_rules++;
	}
	return 0;
}
