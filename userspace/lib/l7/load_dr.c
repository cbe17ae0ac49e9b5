// SPDX-License-Identifier: Apache-2.0
/*
 * DestinationRule and AuthorizationPolicy spec readers, and the cross-resource check run after
 * every file is read: each route destination must name a service the mesh has (when a mesh
 * is given) and, with a subset, a subset some DestinationRule of that host defines.
 */
#include <errno.h>
#include <string.h>

#include "l7/internal.h"

static int l7_lb_load(struct l7_ld *ld, yaml_node_t *n, struct l7_traffic_policy *p)
{
	static const char *const known[] = {"simple", "consistentHash", "localityLbSetting",
					    "warmupDurationSecs", "warmup", NULL};
	static const char *const names[] = {"UNSPECIFIED", "ROUND_ROBIN", "LEAST_REQUEST",
					    "RANDOM", "PASSTHROUGH", "LEAST_CONN", NULL};
	const char *s = NULL;
	int ret = l7_map_check(ld, n, known), i;

	ret = l7_str_at(ld, n, "simple", &s) ?: ret;
	if (l7_get(ld, n, "consistentHash")) {
		l7_err(ld, n, "consistentHash is not supported by the waypoint");
		ret = -EINVAL;
	}
	if (!s)
		return ret;
	for (i = 0; names[i] && strcmp(names[i], s); i++)
		;
	if (!names[i]) {
		size_t old = l7_push(ld, "simple");

		l7_err(ld, n, "unknown value \"%s\" (want ROUND_ROBIN, LEAST_REQUEST, RANDOM or "
			      "PASSTHROUGH)", s);
		l7_pop(ld, old);
		return -EINVAL;
	}
	p->lb = i == 5 ? L7_LB_LEAST_REQUEST : (enum l7_lb)i;
	return ret;
}

static int l7_pool_load(struct l7_ld *ld, yaml_node_t *n, struct l7_traffic_policy *p)
{
	static const char *const known[] = {"tcp", "http", NULL};
	static const char *const tcp_known[] = {"maxConnections", "connectTimeout",
						"tcpKeepalive", "maxConnectionDuration", NULL};
	static const char *const http_known[] = {
		"http1MaxPendingRequests", "http2MaxRequests", "maxRequestsPerConnection",
		"maxRetries", "idleTimeout", "h2UpgradePolicy", "useClientProtocol",
		"maxConcurrentStreams", NULL};
	yaml_node_t *v;
	int ret = l7_map_check(ld, n, known);
	size_t old;

	if ((v = l7_get(ld, n, "tcp"))) {
		old = l7_push(ld, "tcp");
		ret = l7_map_check(ld, v, tcp_known) ?: ret;
		ret = l7_uint_at(ld, v, "maxConnections", 0x7fffffff,
				 &p->pool.max_connections) ?: ret;
		ret = l7_duration_at(ld, v, "connectTimeout", &p->pool.connect_timeout_ms) ?: ret;
		l7_pop(ld, old);
	}
	if ((v = l7_get(ld, n, "http"))) {
		unsigned int dummy;
		const char *s;

		old = l7_push(ld, "http");
		ret = l7_map_check(ld, v, http_known) ?: ret;
		ret = l7_uint_at(ld, v, "http1MaxPendingRequests", 0x7fffffff,
				 &p->pool.http1_max_pending) ?: ret;
		ret = l7_uint_at(ld, v, "http2MaxRequests", 0x7fffffff,
				 &p->pool.http2_max_requests) ?: ret;
		ret = l7_uint_at(ld, v, "maxRequestsPerConnection", 0x7fffffff,
				 &p->pool.max_requests_per_conn) ?: ret;
		ret = l7_uint_at(ld, v, "maxRetries", 0x7fffffff, &dummy) ?: ret;
		ret = l7_uint_at(ld, v, "maxConcurrentStreams", 0x7fffffff, &dummy) ?: ret;
		ret = l7_duration_at(ld, v, "idleTimeout", &p->pool.idle_timeout_ms) ?: ret;
		ret = l7_str_at(ld, v, "h2UpgradePolicy", &s) ?: ret;
		l7_pop(ld, old);
	}
	return ret;
}

static int l7_outlier_load(struct l7_ld *ld, yaml_node_t *n, struct l7_traffic_policy *p)
{
	static const char *const known[] = {
		"consecutive5xxErrors", "consecutiveGatewayErrors", "consecutiveErrors",
		"interval", "baseEjectionTime", "maxEjectionPercent", "minHealthPercent",
		"splitExternalLocalOriginErrors", "consecutiveLocalOriginFailures", NULL};
	unsigned int dummy;
	int ret = l7_map_check(ld, n, known);

	p->outlier.set = true;
	p->outlier.consecutive_5xx = 5;
	p->outlier.interval_ms = 10000;
	p->outlier.base_ejection_ms = 30000;
	p->outlier.max_ejection_pct = 10;
	ret = l7_uint_at(ld, n, "consecutiveErrors", 0x7fffffff, &p->outlier.consecutive_5xx) ?:
		ret;
	ret = l7_uint_at(ld, n, "consecutive5xxErrors", 0x7fffffff,
			 &p->outlier.consecutive_5xx) ?: ret;
	ret = l7_uint_at(ld, n, "consecutiveGatewayErrors", 0x7fffffff, &dummy) ?: ret;
	ret = l7_duration_at(ld, n, "interval", &p->outlier.interval_ms) ?: ret;
	ret = l7_duration_at(ld, n, "baseEjectionTime", &p->outlier.base_ejection_ms) ?: ret;
	ret = l7_uint_at(ld, n, "maxEjectionPercent", 100, &p->outlier.max_ejection_pct) ?: ret;
	ret = l7_uint_at(ld, n, "minHealthPercent", 100, &dummy) ?: ret;
	return ret;
}

static int l7_policy_load(struct l7_ld *ld, yaml_node_t *n, struct l7_traffic_policy *p)
{
	static const char *const known[] = {"loadBalancer", "connectionPool", "outlierDetection",
					    "tls", "portLevelSettings", "tunnel", "proxyProtocol",
					    NULL};
	static const char *const tls_known[] = {"mode", "sni", "subjectAltNames",
						"credentialName", "caCertificates",
						"clientCertificate", "privateKey",
						"insecureSkipVerify", NULL};
	yaml_node_t *v;
	int ret = l7_map_check(ld, n, known);
	size_t old;

	if ((v = l7_get(ld, n, "loadBalancer"))) {
		old = l7_push(ld, "loadBalancer");
		ret = l7_lb_load(ld, v, p) ?: ret;
		l7_pop(ld, old);
	}
	if ((v = l7_get(ld, n, "connectionPool"))) {
		old = l7_push(ld, "connectionPool");
		ret = l7_pool_load(ld, v, p) ?: ret;
		l7_pop(ld, old);
	}
	if ((v = l7_get(ld, n, "outlierDetection"))) {
		old = l7_push(ld, "outlierDetection");
		ret = l7_outlier_load(ld, v, p) ?: ret;
		l7_pop(ld, old);
	}
	/* tls: HBONE is always mutual TLS; the mode (ISTIO_MUTUAL...) is accepted as a no-op. */
	if ((v = l7_get(ld, n, "tls"))) {
		old = l7_push(ld, "tls");
		ret = l7_map_check(ld, v, tls_known) ?: ret;
		l7_pop(ld, old);
	}
	if ((v = l7_get(ld, n, "portLevelSettings"))) {
		old = l7_push(ld, "portLevelSettings");
		l7_err(ld, v, "not supported by the waypoint");
		l7_pop(ld, old);
		ret = -EINVAL;
	}
	return ret;
}

int l7_load_dr(struct l7_ld *ld, yaml_node_t *spec, struct l7_dr *dr)
{
	static const char *const known[] = {"host", "trafficPolicy", "subsets", "exportTo",
					    "workloadSelector", NULL};
	static const char *const ss_known[] = {"name", "labels", "trafficPolicy", NULL};
	const char *host = NULL;
	yaml_node_t *v;
	size_t i, old;
	int ret = l7_map_check(ld, spec, known);

	if (ret && spec->type != YAML_MAPPING_NODE)
		return ret;
	ret = l7_str_at(ld, spec, "host", &host) ?: ret;
	if (!host) {
		l7_err(ld, spec, "host is required");
		return -EINVAL;
	}
	dr->host = l7_qualify(ld, host);
	if ((v = l7_get(ld, spec, "trafficPolicy"))) {
		old = l7_push(ld, "trafficPolicy");
		ret = l7_policy_load(ld, v, &dr->policy) ?: ret;
		l7_pop(ld, old);
	}
	v = l7_get(ld, spec, "subsets");
	if (!v)
		return ret;
	old = l7_push(ld, "subsets");
	if (v->type != YAML_SEQUENCE_NODE) {
		l7_err(ld, v, "want a list");
		l7_pop(ld, old);
		return -EINVAL;
	}
	dr->n_subsets = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
	dr->subsets = l7_alloc(ld->cfg, (dr->n_subsets + 1) * sizeof(*dr->subsets));
	if (!dr->subsets) {
		ld->oom = true;
		return -ENOMEM;
	}
	for (i = 0; i < dr->n_subsets; i++) {
		yaml_node_t *it = l7_node(ld, v->data.sequence.items.start[i]), *tp;
		struct l7_subset *ss = &dr->subsets[i];
		size_t o2 = l7_push_idx(ld, i), j;

		ss->line = l7_line(it);
		ret = l7_map_check(ld, it, ss_known) ?: ret;
		ret = l7_str_at(ld, it, "name", &ss->name) ?: ret;
		if (!ss->name) {
			l7_err(ld, it, "name is required");
			ret = -EINVAL;
		}
		for (j = 0; ss->name && j < i; j++)
			if (dr->subsets[j].name && !strcmp(dr->subsets[j].name, ss->name)) {
				l7_err(ld, it, "subset %s defined twice", ss->name);
				ret = -EINVAL;
			}
		ret = l7_kvmap_at(ld, it, "labels", &ss->labels, &ss->n_labels) ?: ret;
		ss->policy = dr->policy;
		if ((tp = l7_get(ld, it, "trafficPolicy"))) {
			size_t o3 = l7_push(ld, "trafficPolicy");

			ss->has_policy = true;
			ret = l7_policy_load(ld, tp, &ss->policy) ?: ret;
			l7_pop(ld, o3);
		}
		l7_pop(ld, o2);
	}
	l7_pop(ld, old);
	return ret;
}

/* Istio string forms in policies: exact, "prefix*", "*suffix", "*". */
static int l7_az_strs(struct l7_ld *ld, yaml_node_t *map, const char *key,
		      struct l7_str_list *out)
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

static int l7_az_rule_load(struct l7_ld *ld, yaml_node_t *n, struct l7_authz_rule *r)
{
	static const char *const known[] = {"from", "to", "when", NULL};
	static const char *const src_known[] = {"principals", "notPrincipals", "namespaces",
						"notNamespaces", "requestPrincipals",
						"notRequestPrincipals", "ipBlocks", "notIpBlocks",
						"remoteIpBlocks", "notRemoteIpBlocks",
						"serviceAccounts", "notServiceAccounts", NULL};
	static const char *const op_known[] = {"hosts", "notHosts", "ports", "notPorts",
					       "methods", "notMethods", "paths", "notPaths", NULL};
	static const char *const when_known[] = {"key", "values", "notValues", NULL};
	static const char *const unsupported[] = {"requestPrincipals", "notRequestPrincipals",
						  "ipBlocks", "notIpBlocks", "remoteIpBlocks",
						  "notRemoteIpBlocks", NULL};
	yaml_node_t *seq;
	size_t i, j, old;
	int ret = l7_map_check(ld, n, known);

	if ((seq = l7_get(ld, n, "from")) && seq->type == YAML_SEQUENCE_NODE) {
		old = l7_push(ld, "from");
		r->n_from = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
		r->from = l7_alloc(ld->cfg, (r->n_from + 1) * sizeof(*r->from));
		if (!r->from)
			return -ENOMEM;
		for (i = 0; i < r->n_from; i++) {
			yaml_node_t *it = l7_node(ld, seq->data.sequence.items.start[i]);
			yaml_node_t *s = l7_get(ld, it, "source");
			struct l7_authz_source *src = &r->from[i];
			size_t o2 = l7_push_idx(ld, i);

			if (!s) {
				l7_err(ld, it, "source is required");
				ret = -EINVAL;
				l7_pop(ld, o2);
				continue;
			}
			l7_push(ld, "source");
			ret = l7_map_check(ld, s, src_known) ?: ret;
			for (j = 0; unsupported[j]; j++)
				if (l7_get(ld, s, unsupported[j])) {
					l7_err(ld, s, "%s is not supported by the waypoint",
					       unsupported[j]);
					ret = -EINVAL;
				}
			ret = l7_az_strs(ld, s, "principals", &src->principals) ?: ret;
			ret = l7_az_strs(ld, s, "notPrincipals", &src->not_principals) ?: ret;
			ret = l7_az_strs(ld, s, "namespaces", &src->namespaces) ?: ret;
			ret = l7_az_strs(ld, s, "notNamespaces", &src->not_namespaces) ?: ret;
			l7_pop(ld, o2);
		}
		l7_pop(ld, old);
	}
	if ((seq = l7_get(ld, n, "to")) && seq->type == YAML_SEQUENCE_NODE) {
		old = l7_push(ld, "to");
		r->n_to = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
		r->to = l7_alloc(ld->cfg, (r->n_to + 1) * sizeof(*r->to));
		if (!r->to)
			return -ENOMEM;
		for (i = 0; i < r->n_to; i++) {
			yaml_node_t *it = l7_node(ld, seq->data.sequence.items.start[i]);
			yaml_node_t *o = l7_get(ld, it, "operation");
			struct l7_authz_op *op = &r->to[i];
			size_t o2 = l7_push_idx(ld, i);

			if (!o) {
				l7_err(ld, it, "operation is required");
				ret = -EINVAL;
				l7_pop(ld, o2);
				continue;
			}
			l7_push(ld, "operation");
			ret = l7_map_check(ld, o, op_known) ?: ret;
			ret = l7_az_strs(ld, o, "hosts", &op->hosts) ?: ret;
			ret = l7_az_strs(ld, o, "notHosts", &op->not_hosts) ?: ret;
			ret = l7_az_strs(ld, o, "ports", &op->ports) ?: ret;
			ret = l7_az_strs(ld, o, "notPorts", &op->not_ports) ?: ret;
			ret = l7_az_strs(ld, o, "methods", &op->methods) ?: ret;
			ret = l7_az_strs(ld, o, "notMethods", &op->not_methods) ?: ret;
			ret = l7_az_strs(ld, o, "paths", &op->paths) ?: ret;
			ret = l7_az_strs(ld, o, "notPaths", &op->not_paths) ?: ret;
			l7_pop(ld, o2);
		}
		l7_pop(ld, old);
	}
	if ((seq = l7_get(ld, n, "when")) && seq->type == YAML_SEQUENCE_NODE) {
		old = l7_push(ld, "when");
		r->n_when = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
		r->when = l7_alloc(ld->cfg, (r->n_when + 1) * sizeof(*r->when));
		if (!r->when)
			return -ENOMEM;
		for (i = 0; i < r->n_when; i++) {
			yaml_node_t *it = l7_node(ld, seq->data.sequence.items.start[i]);
			struct l7_authz_cond *c = &r->when[i];
			size_t o2 = l7_push_idx(ld, i);

			ret = l7_map_check(ld, it, when_known) ?: ret;
			ret = l7_str_at(ld, it, "key", &c->key) ?: ret;
			ret = l7_az_strs(ld, it, "values", &c->values) ?: ret;
			ret = l7_az_strs(ld, it, "notValues", &c->not_values) ?: ret;
			if (!c->key) {
				l7_err(ld, it, "key is required");
				ret = -EINVAL;
			} else if (strncmp(c->key, "request.headers[", 16) &&
				   strcmp(c->key, "source.principal") &&
				   strcmp(c->key, "source.namespace") &&
				   strcmp(c->key, "request.method") &&
				   strcmp(c->key, "request.path")) {
				l7_err(ld, it, "unsupported key \"%s\" (want request.headers[NAME], "
					       "source.principal, source.namespace)", c->key);
				ret = -EINVAL;
			}
			l7_pop(ld, o2);
		}
		l7_pop(ld, old);
	}
	return ret;
}

int l7_load_authz(struct l7_ld *ld, yaml_node_t *spec, struct l7_authz *az)
{
	static const char *const known[] = {"action", "rules", "selector", "targetRef",
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
		old = l7_push(ld, "action");
		l7_err(ld, l7_get(ld, spec, "action"),
		       "unsupported action \"%s\" (want ALLOW, DENY or AUDIT)", action);
		l7_pop(ld, old);
		ret = -EINVAL;
	} else if (action) {
		az->action = (enum l7_authz_action)k;
	}
	if (l7_get(ld, spec, "selector")) {
		/* Workload selectors target ztunnel/sidecars, not the waypoint (Istio ambient). */
		az->has_selector = true;
	}
	seq = l7_get(ld, spec, "targetRefs");
	if (!seq)
		seq = l7_get(ld, spec, "targetRef");
	if (seq) {
		size_t n = seq->type == YAML_SEQUENCE_NODE ?
				   (size_t)(seq->data.sequence.items.top -
					    seq->data.sequence.items.start) :
				   1;

		old = l7_push(ld, "targetRefs");
		az->target_services = l7_alloc(ld->cfg, (n + 1) * sizeof(char *));
		if (!az->target_services)
			return -ENOMEM;
		for (i = 0; i < n; i++) {
			yaml_node_t *it = seq->type == YAML_SEQUENCE_NODE ?
						  l7_node(ld, seq->data.sequence.items.start[i]) :
						  seq;
			const char *kind = NULL, *name = NULL;

			ret = l7_map_check(ld, it, ref_known) ?: ret;
			ret = l7_str_at(ld, it, "kind", &kind) ?: ret;
			ret = l7_str_at(ld, it, "name", &name) ?: ret;
			if (kind && !strcmp(kind, "Gateway")) {
				az->targets_gateway = true;
			} else if (kind && !strcmp(kind, "Service") && name) {
				az->target_services[az->n_target_services++] =
					l7_qualify(ld, name);
			} else {
				l7_err(ld, it, "want kind Service or Gateway with a name");
				ret = -EINVAL;
			}
		}
		l7_pop(ld, old);
	}
	seq = l7_get(ld, spec, "rules");
	if (seq) {
		old = l7_push(ld, "rules");
		if (seq->type != YAML_SEQUENCE_NODE) {
			l7_err(ld, seq, "want a list");
			l7_pop(ld, old);
			return -EINVAL;
		}
		az->n_rules = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
		az->rules = l7_alloc(ld->cfg, (az->n_rules + 1) * sizeof(*az->rules));
		if (!az->rules)
			return -ENOMEM;
		for (i = 0; i < az->n_rules; i++) {
			size_t o2 = l7_push_idx(ld, i);

			ret = l7_az_rule_load(ld, l7_node(ld, seq->data.sequence.items.start[i]),
					      &az->rules[i]) ?: ret;
			l7_pop(ld, o2);
		}
		l7_pop(ld, old);
	}
	return ret;
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
			     dr ? "not defined by its DestinationRule" :
				  "no DestinationRule for this host defines subsets");
		return -EINVAL;
	}
	return 0;
}

int l7_config_check(struct l7_config *cfg, const struct zm_config *mesh,
		    struct zm_cfg_errors *errs)
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
				snprintf(path, sizeof(path), "spec.http[%zu].route[%zu].destination",
					 j, k);
				ret = l7_dest_check(cfg, mesh, errs, &r->dests[k], path) ?: ret;
			}
			if (r->mirror.host) {
				snprintf(path, sizeof(path), "spec.http[%zu].mirror", j);
				ret = l7_dest_check(cfg, mesh, errs, &r->mirror, path) ?: ret;
			}
		}
		for (k = 0; k < vs->n_tcp; k++) {
			snprintf(path, sizeof(path), "spec.tcp[0].route[%zu].destination", k);
			ret = l7_dest_check(cfg, mesh, errs, &vs->tcp[k], path) ?: ret;
		}
	}
	return ret;
}
