// SPDX-License-Identifier: Apache-2.0
/*
 * DestinationRule and AuthorizationPolicy spec readers, and the cross-resource check run after
 * every file is read: each route destination must name a service the mesh has (when a mesh
 * is given) and, with a subset, a subset some DestinationRule of that host defines.
 */
#include <errno.h>
#include <string.h>

#include "l7/internal.h"

static int l7_lb_load(struct l7_ld *ld, yaml_node_t *n, void *policy)
{
	static const char *const known[] = {
	    "simple", "consistentHash", "localityLbSetting", "warmupDurationSecs", "warmup", NULL};
	static const char *const names[] = {"UNSPECIFIED", "ROUND_ROBIN", "LEAST_REQUEST",
					    "RANDOM",	   "PASSTHROUGH", "LEAST_CONN",
					    NULL};
	struct l7_traffic_policy *p = policy;
	const char *s = NULL;
	int ret = l7_map_check(ld, n, known), i;

	ret = l7_str_at(ld, n, "simple", &s) ?: ret;
	if (zm_yl_get(&ld->yl, n, "consistentHash")) {
		zm_yl_error(&ld->yl, n, "consistentHash is not supported by the waypoint");
		ret = -EINVAL;
	}
	if (!s)
		return ret;
	for (i = 0; names[i] && strcmp(names[i], s); i++)
		;
	if (!names[i]) {
		zm_yl_error_at(&ld->yl, n, "simple",
			       "unknown value \"%s\" (want ROUND_ROBIN, LEAST_REQUEST, RANDOM or "
			       "PASSTHROUGH)",
			       s);
		return -EINVAL;
	}
	p->lb = i == 5 ? L7_LB_LEAST_REQUEST : (enum l7_lb)i;
	return ret;
}

static int l7_pool_tcp_load(struct l7_ld *ld, yaml_node_t *v, void *policy)
{
	static const char *const known[] = {"maxConnections", "connectTimeout", "tcpKeepalive",
					    "maxConnectionDuration", NULL};
	struct l7_traffic_policy *p = policy;
	int ret = l7_map_check(ld, v, known);

	ret = l7_uint_at(ld, v, "maxConnections", 0x7fffffff, &p->pool.max_connections) ?: ret;
	return l7_duration_at(ld, v, "connectTimeout", &p->pool.connect_timeout_ms) ?: ret;
}

static int l7_pool_http_load(struct l7_ld *ld, yaml_node_t *v, void *policy)
{
	static const char *const known[] = {"http1MaxPendingRequests",
					    "http2MaxRequests",
					    "maxRequestsPerConnection",
					    "maxRetries",
					    "idleTimeout",
					    "h2UpgradePolicy",
					    "useClientProtocol",
					    "maxConcurrentStreams",
					    NULL};
	struct l7_traffic_policy *p = policy;
	unsigned int dummy;
	const char *s;
	int ret = l7_map_check(ld, v, known);

	ret = l7_uint_at(ld, v, "http1MaxPendingRequests", 0x7fffffff, &p->pool.http1_max_pending)
		  ?: ret;
	ret = l7_uint_at(ld, v, "http2MaxRequests", 0x7fffffff, &p->pool.http2_max_requests) ?: ret;
	ret = l7_uint_at(ld, v, "maxRequestsPerConnection", 0x7fffffff,
			 &p->pool.max_requests_per_conn)
		  ?: ret;
	ret = l7_uint_at(ld, v, "maxRetries", 0x7fffffff, &dummy) ?: ret;
	ret = l7_uint_at(ld, v, "maxConcurrentStreams", 0x7fffffff, &dummy) ?: ret;
	ret = l7_duration_at(ld, v, "idleTimeout", &p->pool.idle_timeout_ms) ?: ret;
	return l7_str_at(ld, v, "h2UpgradePolicy", &s) ?: ret;
}

static int l7_pool_load(struct l7_ld *ld, yaml_node_t *n, void *policy)
{
	static const char *const known[] = {"tcp", "http", NULL};
	int ret = l7_map_check(ld, n, known);

	ret = l7_at(ld, n, "tcp", l7_pool_tcp_load, policy) ?: ret;
	return l7_at(ld, n, "http", l7_pool_http_load, policy) ?: ret;
}

static int l7_outlier_load(struct l7_ld *ld, yaml_node_t *n, void *policy)
{
	static const char *const known[] = {"consecutive5xxErrors",
					    "consecutiveGatewayErrors",
					    "consecutiveErrors",
					    "interval",
					    "baseEjectionTime",
					    "maxEjectionPercent",
					    "minHealthPercent",
					    "splitExternalLocalOriginErrors",
					    "consecutiveLocalOriginFailures",
					    NULL};
	struct l7_traffic_policy *p = policy;
	unsigned int dummy;
	int ret = l7_map_check(ld, n, known);

	p->outlier.set = true;
	p->outlier.consecutive_5xx = 5;
	p->outlier.interval_ms = 10000;
	p->outlier.base_ejection_ms = 30000;
	p->outlier.max_ejection_pct = 10;
	ret =
	    l7_uint_at(ld, n, "consecutiveErrors", 0x7fffffff, &p->outlier.consecutive_5xx) ?: ret;
	ret = l7_uint_at(ld, n, "consecutive5xxErrors", 0x7fffffff, &p->outlier.consecutive_5xx)
		  ?: ret;
	ret = l7_uint_at(ld, n, "consecutiveGatewayErrors", 0x7fffffff, &dummy) ?: ret;
	ret = l7_duration_at(ld, n, "interval", &p->outlier.interval_ms) ?: ret;
	ret = l7_duration_at(ld, n, "baseEjectionTime", &p->outlier.base_ejection_ms) ?: ret;
	ret = l7_uint_at(ld, n, "maxEjectionPercent", 100, &p->outlier.max_ejection_pct) ?: ret;
	ret = l7_uint_at(ld, n, "minHealthPercent", 100, &dummy) ?: ret;
	return ret;
}

/* tls: HBONE is always mutual TLS; the mode (ISTIO_MUTUAL...) is accepted as a no-op. */
static int l7_tls_check(struct l7_ld *ld, yaml_node_t *v, void *unused)
{
	static const char *const known[] = {"mode",
					    "sni",
					    "subjectAltNames",
					    "credentialName",
					    "caCertificates",
					    "clientCertificate",
					    "privateKey",
					    "insecureSkipVerify",
					    NULL};

	(void)unused;
	return l7_map_check(ld, v, known);
}

/* A trafficPolicy into the struct l7_traffic_policy at policy (l7_read_fn). */
static int l7_policy_load(struct l7_ld *ld, yaml_node_t *n, void *policy)
{
	static const char *const known[] = {
	    "loadBalancer",	 "connectionPool", "outlierDetection", "tls",
	    "portLevelSettings", "tunnel",	   "proxyProtocol",    NULL};
	int ret = l7_map_check(ld, n, known);

	ret = l7_at(ld, n, "loadBalancer", l7_lb_load, policy) ?: ret;
	ret = l7_at(ld, n, "connectionPool", l7_pool_load, policy) ?: ret;
	ret = l7_at(ld, n, "outlierDetection", l7_outlier_load, policy) ?: ret;
	ret = l7_at(ld, n, "tls", l7_tls_check, NULL) ?: ret;
	return l7_refuse_at(ld, n, "portLevelSettings", "not supported by the waypoint") ?: ret;
}

/* One of subsets[] (l7_item_fn); names must be unique within the rule (ctx). */
static int l7_subset_load(struct l7_ld *ld, yaml_node_t *it, void *elem, void *ctx)
{
	static const char *const known[] = {"name", "labels", "trafficPolicy", NULL};
	struct l7_subset *ss = elem;
	struct l7_dr *dr = ctx;
	size_t j, i = (size_t)(ss - dr->subsets);
	int ret;

	ss->line = zm_yl_line(it);
	ret = l7_map_check(ld, it, known);
	ret = l7_str_at(ld, it, "name", &ss->name) ?: ret;
	if (!ss->name) {
		zm_yl_error(&ld->yl, it, "name is required");
		ret = -EINVAL;
	}
	for (j = 0; ss->name && j < i; j++)
		if (dr->subsets[j].name && !strcmp(dr->subsets[j].name, ss->name)) {
			zm_yl_error(&ld->yl, it, "subset %s defined twice", ss->name);
			ret = -EINVAL;
		}
	ret = l7_kvmap_at(ld, it, "labels", &ss->labels, &ss->n_labels) ?: ret;
	ss->policy = dr->policy;
	ss->has_policy = zm_yl_get(&ld->yl, it, "trafficPolicy") != NULL;
	return l7_at(ld, it, "trafficPolicy", l7_policy_load, &ss->policy) ?: ret;
}

int l7_load_dr(struct l7_ld *ld, yaml_node_t *spec, struct l7_dr *dr)
{
	static const char *const known[] = {"host",	"trafficPolicy",    "subsets",
					    "exportTo", "workloadSelector", NULL};
	const char *host = NULL;
	int ret = l7_map_check(ld, spec, known);

	if (ret && spec->type != YAML_MAPPING_NODE)
		return ret;
	ret = l7_str_at(ld, spec, "host", &host) ?: ret;
	if (!host) {
		zm_yl_error(&ld->yl, spec, "host is required");
		return -EINVAL;
	}
	dr->host = l7_qualify(ld, host);
	ret = l7_at(ld, spec, "trafficPolicy", l7_policy_load, &dr->policy) ?: ret;
	return l7_list_at(ld, spec, "subsets", sizeof(*dr->subsets), l7_subset_load, dr,
			  (void **)&dr->subsets, &dr->n_subsets)
		   ?: ret;
}

/* Istio string forms in policies: exact, "prefix*", "*suffix", "*". */
static int l7_az_strs(struct l7_ld *ld, yaml_node_t *map, const char *key, struct l7_str_list *out)
{
	const char **v = NULL;
	size_t n = 0, i;
	int ret = l7_strlist_at(ld, map, key, &v, &n);

	if (ret || !n)
		return ret;
	out->v = l7_alloc(ld->cfg, n * sizeof(*out->v));
	if (!out->v) {
		ld->oom = true;
		return -ENOMEM;
	}
	out->n = n;
	for (i = 0; i < n; i++) {
		const char *s = v[i];
		size_t len = strlen(s);
		struct l7_strm *m = &out->v[i];

		if (!strcmp(s, "*")) {
			m->kind = L7_STR_PREFIX;
			m->value = "";
		} else if (len && s[len - 1] == '*') {
			char *p = (char *)l7_strdup(ld->cfg, s);

			if (!p)
				return -ENOMEM;
			p[len - 1] = '\0';
			m->kind = L7_STR_PREFIX;
			m->value = p;
		} else if (s[0] == '*') {
			/* Suffix: kept as a regex-free kind by storing the text after '*'. */
			m->kind = L7_STR_REGEX;
			m->value = s + 1;
			m->re = NULL; /* re NULL + REGEX kind = suffix match */
		} else {
			m->kind = L7_STR_EXACT;
			m->value = s;
		}
	}
	return 0;
}

/* from[i].source into the struct l7_authz_source at out (l7_read_fn). */
static int l7_az_source_load(struct l7_ld *ld, yaml_node_t *s, void *out)
{
	static const char *const known[] = {"principals",
					    "notPrincipals",
					    "namespaces",
					    "notNamespaces",
					    "requestPrincipals",
					    "notRequestPrincipals",
					    "ipBlocks",
					    "notIpBlocks",
					    "remoteIpBlocks",
					    "notRemoteIpBlocks",
					    "serviceAccounts",
					    "notServiceAccounts",
					    NULL};
	static const char *const unsupported[] = {
	    "requestPrincipals", "notRequestPrincipals", "ipBlocks", "notIpBlocks",
	    "remoteIpBlocks",	 "notRemoteIpBlocks",	 NULL};
	struct l7_authz_source *src = out;
	int ret = l7_map_check(ld, s, known);
	size_t j;

	for (j = 0; unsupported[j]; j++)
		if (zm_yl_get(&ld->yl, s, unsupported[j])) {
			zm_yl_error(&ld->yl, s, "%s is not supported by the waypoint",
				    unsupported[j]);
			ret = -EINVAL;
		}
	ret = l7_az_strs(ld, s, "principals", &src->principals) ?: ret;
	ret = l7_az_strs(ld, s, "notPrincipals", &src->not_principals) ?: ret;
	ret = l7_az_strs(ld, s, "namespaces", &src->namespaces) ?: ret;
	return l7_az_strs(ld, s, "notNamespaces", &src->not_namespaces) ?: ret;
}

/* from[i]: {source: {...}} (l7_item_fn). */
static int l7_az_from_load(struct l7_ld *ld, yaml_node_t *it, void *elem, void *ctx)
{
	(void)ctx;
	return l7_need_at(ld, it, "source", l7_az_source_load, elem);
}

/* to[i].operation into the struct l7_authz_op at out (l7_read_fn). */
static int l7_az_op_load(struct l7_ld *ld, yaml_node_t *o, void *out)
{
	static const char *const known[] = {"hosts",	"notHosts", "ports",
					    "notPorts", "methods",  "notMethods",
					    "paths",	"notPaths", NULL};
	struct l7_authz_op *op = out;
	int ret = l7_map_check(ld, o, known);

	ret = l7_az_strs(ld, o, "hosts", &op->hosts) ?: ret;
	ret = l7_az_strs(ld, o, "notHosts", &op->not_hosts) ?: ret;
	ret = l7_az_strs(ld, o, "ports", &op->ports) ?: ret;
	ret = l7_az_strs(ld, o, "notPorts", &op->not_ports) ?: ret;
	ret = l7_az_strs(ld, o, "methods", &op->methods) ?: ret;
	ret = l7_az_strs(ld, o, "notMethods", &op->not_methods) ?: ret;
	ret = l7_az_strs(ld, o, "paths", &op->paths) ?: ret;
	return l7_az_strs(ld, o, "notPaths", &op->not_paths) ?: ret;
}

/* to[i]: {operation: {...}} (l7_item_fn). */
static int l7_az_to_load(struct l7_ld *ld, yaml_node_t *it, void *elem, void *ctx)
{
	(void)ctx;
	return l7_need_at(ld, it, "operation", l7_az_op_load, elem);
}

/* when[i]: {key, values, notValues} (l7_item_fn). */
static int l7_az_when_load(struct l7_ld *ld, yaml_node_t *it, void *elem, void *ctx)
{
	static const char *const known[] = {"key", "values", "notValues", NULL};
	struct l7_authz_cond *c = elem;
	int ret = l7_map_check(ld, it, known);

	(void)ctx;
	ret = l7_str_at(ld, it, "key", &c->key) ?: ret;
	ret = l7_az_strs(ld, it, "values", &c->values) ?: ret;
	ret = l7_az_strs(ld, it, "notValues", &c->not_values) ?: ret;
	if (!c->key) {
		zm_yl_error(&ld->yl, it, "key is required");
		ret = -EINVAL;
	} else if (strncmp(c->key, "request.headers[", 16) && strcmp(c->key, "source.principal") &&
		   strcmp(c->key, "source.namespace") && strcmp(c->key, "request.method") &&
		   strcmp(c->key, "request.path")) {
		zm_yl_error(&ld->yl, it,
			    "unsupported key \"%s\" (want request.headers[NAME], source.principal, "
			    "source.namespace)",
			    c->key);
		ret = -EINVAL;
	}
	return ret;
}

/* A rule's from, to or when: read when a list, anything else is passed over. */
static int l7_az_list(struct l7_ld *ld, yaml_node_t *n, const char *key, size_t elem_size,
		      l7_item_fn fn, void **out, size_t *count)
{
	/* Not a list is an error: a rule without its from/to/when would match everything. */
	return l7_list_at(ld, n, key, elem_size, fn, NULL, out, count);
}

/* rules[i] (l7_item_fn). */
static int l7_az_rule_load(struct l7_ld *ld, yaml_node_t *n, void *elem, void *ctx)
{
	static const char *const known[] = {"from", "to", "when", NULL};
	struct l7_authz_rule *r = elem;
	int ret = l7_map_check(ld, n, known);

	(void)ctx;
	ret = l7_az_list(ld, n, "from", sizeof(*r->from), l7_az_from_load, (void **)&r->from,
			 &r->n_from)
		  ?: ret;
	ret = l7_az_list(ld, n, "to", sizeof(*r->to), l7_az_to_load, (void **)&r->to, &r->n_to)
		  ?: ret;
	return l7_az_list(ld, n, "when", sizeof(*r->when), l7_az_when_load, (void **)&r->when,
			  &r->n_when)
		   ?: ret;
}

int l7_load_authz(struct l7_ld *ld, yaml_node_t *spec, struct l7_authz *az)
{
	static const char *const known[] = {"action",	  "rules",    "selector", "targetRef",
					    "targetRefs", "provider", NULL};
	static const char *const ref_known[] = {"kind", "group", "name", "namespace", NULL};
	static const char *const actions[] = {"ALLOW", "DENY", "AUDIT", NULL};
	const char *action = NULL;
	yaml_node_t *seq;
	size_t i, old;
	int ret = l7_map_check(ld, spec, known), k;

	if (ret && spec->type != YAML_MAPPING_NODE)
		return ret;
	ret = l7_str_at(ld, spec, "action", &action) ?: ret;
	for (k = 0; action && actions[k] && strcmp(actions[k], action); k++)
		;
	if (action && !actions[k]) {
		zm_yl_error_at(&ld->yl, zm_yl_get(&ld->yl, spec, "action"), "action",
			       "unsupported action \"%s\" (want ALLOW, DENY or AUDIT)", action);
		ret = -EINVAL;
	} else if (action) {
		az->action = (enum l7_authz_action)k;
	}
	if (zm_yl_get(&ld->yl, spec, "selector")) {
		/* Workload selectors target ztunnel/sidecars, not the waypoint (Istio ambient). */
		az->has_selector = true;
	}
	seq = zm_yl_get(&ld->yl, spec, "targetRefs");
	if (!seq)
		seq = zm_yl_get(&ld->yl, spec, "targetRef");
	if (seq) {
		size_t n =
		    seq->type == YAML_SEQUENCE_NODE
			? (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start)
			: 1;

		old = zm_yl_push_field(&ld->yl, "targetRefs");
		az->target_services = l7_alloc(ld->cfg, (n + 1) * sizeof(char *));
		az->target_gateways = l7_alloc(ld->cfg, (n + 1) * sizeof(char *));
		if (!az->target_services || !az->target_gateways)
			return -ENOMEM;
		for (i = 0; i < n; i++) {
			yaml_node_t *it =
			    seq->type == YAML_SEQUENCE_NODE
				? zm_yl_node(&ld->yl, seq->data.sequence.items.start[i])
				: seq;
			const char *kind = NULL, *name = NULL, *ns = NULL;
			char key[512];

			ret = l7_map_check(ld, it, ref_known) ?: ret;
			ret = l7_str_at(ld, it, "kind", &kind) ?: ret;
			ret = l7_str_at(ld, it, "name", &name) ?: ret;
			ret = l7_str_at(ld, it, "namespace", &ns) ?: ret;
			if (kind && !strcmp(kind, "Gateway") && name) {
				snprintf(key, sizeof(key), "%s/%s", ns ? ns : ld->ns, name);
				az->target_gateways[az->n_target_gateways++] =
				    l7_strdup(ld->cfg, key);
			} else if (kind && !strcmp(kind, "Service") && name) {
				az->target_services[az->n_target_services++] = l7_qualify(ld, name);
			} else {
				zm_yl_error(&ld->yl, it,
					    "want kind Service or Gateway with a name");
				ret = -EINVAL;
			}
		}
		zm_yl_pop(&ld->yl, old);
	}
	return l7_list_at(ld, spec, "rules", sizeof(*az->rules), l7_az_rule_load, NULL,
			  (void **)&az->rules, &az->n_rules)
		   ?: ret;
}

static int l7_dest_check(struct l7_config *cfg, const struct zm_config *mesh,
			 struct zm_cfg_errors *errs, struct l7_dest *d, const char *path)
{
	const struct l7_dr *dr;
	size_t i;

	if (mesh) {
		for (i = 0; i < mesh->n_services; i++)
			if (!strcmp(mesh->services[i].hostname, d->host))
				d->service = &mesh->services[i];
		if (!d->service) {
			zm_cfg_error(errs, d->line, path, "host %s: no such service in the mesh",
				     d->host);
			return -EINVAL;
		}
	}
	if (!d->subset[0])
		return 0;
	dr = l7_dr_find(cfg, d->host);
	if (!dr || !l7_dr_subset(dr, d->subset)) {
		zm_cfg_error(errs, d->line, path, "subset %s of host %s: %s", d->subset, d->host,
			     dr ? "not defined by its DestinationRule"
				: "no DestinationRule for this host defines subsets");
		return -EINVAL;
	}
	return 0;
}

int l7_config_check(struct l7_config *cfg, const struct zm_config *mesh, struct zm_cfg_errors *errs)
{
	char path[128];
	size_t i, j, k;
	int ret = 0;

	for (i = 0; i < cfg->n_vs; i++) {
		struct l7_vs *vs = &cfg->vs[i];

		errs->source = vs->file;
		for (j = 0; j < vs->n_http; j++) {
			struct l7_http_route *r = &vs->http[j];

			for (k = 0; k < r->n_dests; k++) {
				snprintf(path, sizeof(path),
					 "spec.http[%zu].route[%zu].destination", j, k);
				ret = l7_dest_check(cfg, mesh, errs, &r->dests[k], path) ?: ret;
			}
			for (k = 0; k < r->n_mirrors; k++) {
				snprintf(path, sizeof(path), "spec.http[%zu].mirror%s", j,
					 k ? "s" : "");
				ret = l7_dest_check(cfg, mesh, errs, &r->mirrors[k].dest, path)
					  ?: ret;
			}
		}
		for (k = 0; k < vs->n_tcp; k++) {
			snprintf(path, sizeof(path), "spec.tcp[0].route[%zu].destination", k);
			ret = l7_dest_check(cfg, mesh, errs, &vs->tcp[k], path) ?: ret;
		}
	}
	for (i = 0; i < cfg->n_gw; i++) {
		const struct l7_gw_route *gr = &cfg->gw[i];

		errs->source = gr->file;
		for (j = 0; j < gr->n_rules; j++) {
			for (k = 0; k < gr->rules[j].n_dests; k++) {
				snprintf(path, sizeof(path), "spec.rules[%zu].backendRefs[%zu]", j,
					 k);
				ret = l7_dest_check(cfg, mesh, errs, &gr->rules[j].dests[k], path)
					  ?: ret;
			}
			for (k = 0; k < gr->rules[j].n_mirrors; k++) {
				snprintf(path, sizeof(path),
					 "spec.rules[%zu].filters.requestMirror", j);
				ret = l7_dest_check(cfg, mesh, errs, &gr->rules[j].mirrors[k].dest,
						    path)
					  ?: ret;
			}
		}
	}
	return ret ?: l7_gw_attach(cfg);
}
