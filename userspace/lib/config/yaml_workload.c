// SPDX-License-Identifier: Apache-2.0
/*
 * The `workloads` and `services` sections of the local config, field by field as the reference
 * ztunnel's serde structs accept them (src/state/workload.rs Workload + LocalWorkload's
 * services map, src/state/service.rs Service), plus our `labels` extension. Cross-references
 * (a workload's services and policies, hostname waypoints) are checked later, by
 * zm_config_finalize(), once every section is read.
 */
#include <errno.h>
#include <string.h>

#include "common/addr.h"
#include "config/yaml_internal.h"

static const char *const zm_yl_protocols[] = {"TCP", "HBONE", NULL};
static const char *const zm_yl_health[] = {"Healthy", "Unhealthy", NULL};
static const char *const zm_yl_netmodes[] = {"Standard", "HostNetwork", NULL};
static const char *const zm_yl_app_tunnels[] = {"NONE", "PROXY", NULL};
static const char *const zm_yl_ip_families[] = {"Dual", "IPv4", "IPv6", NULL};
static const char *const zm_yl_lb_modes[] = {"Standard", "Strict", "Failover", "Passthrough", NULL};
static const char *const zm_yl_lb_health[] = {"OnlyHealthy", "AllowAll", NULL};
static const char *const zm_yl_lb_scopes[] = {"Region",	 "Zone",    "Subzone", "Node",
					      "Cluster", "Network", NULL};

/* "<network>/<ip>" (tried first, as the reference does) or "<namespace>/<hostname>". */
static int zm_yl_gateway_dest(struct zm_yl *yl, yaml_node_t *n, void *obj)
{
	struct zm_cfg_gateway *g = obj;
	char q[ZM_YL_QUOTE_BUF];
	const char *text, *slash;
	int r = zm_yl_str(yl, n, &text);

	if (r)
		return r;
	g->line = zm_yl_line(n);
	slash = strchr(text, '/');
	if (slash && !zm_addr_parse(slash + 1, &g->address.addr)) {
		g->address.network = zm_config_strndup(yl->cfg, text, (size_t)(slash - text));
		return g->address.network ? 0 : zm_yl_oom(yl);
	}
	if (!slash || slash == text || !slash[1] || strchr(slash + 1, '/')) {
		zm_yl_error(
		    yl, n, "invalid destination %s (want <network>/<ip> or <namespace>/<hostname>)",
		    zm_yl_quote(n, q, sizeof(q)));
		return -EINVAL;
	}
	g->is_hostname = true;
	g->namespace = zm_config_strndup(yl->cfg, text, (size_t)(slash - text));
	g->hostname = slash + 1;
	return g->namespace ? 0 : zm_yl_oom(yl);
}

static const struct zm_yl_field zm_yl_gateway_fields[] = {
    ZM_YL_FUNC("destination", ZM_YL_REQUIRED, zm_yl_gateway_dest),
    ZM_YL_F("hboneMtlsPort", ZM_YL_PORT, struct zm_cfg_gateway, hbone_mtls_port, 0),
};

static int zm_yl_gateway(struct zm_yl *yl, yaml_node_t *n, struct zm_cfg_gateway *g)
{
	g->present = true;
	g->hbone_mtls_port = ZM_CFG_DEFAULT_HBONE_PORT;
	g->line = zm_yl_line(n);
	return zm_yl_mapping(yl, n, zm_yl_gateway_fields, ZM_YL_N(zm_yl_gateway_fields), g);
}

static int zm_yl_wl_waypoint(struct zm_yl *yl, yaml_node_t *n, void *obj)
{
	return zm_yl_gateway(yl, n, &((struct zm_cfg_workload *)obj)->waypoint);
}

static int zm_yl_wl_netgw(struct zm_yl *yl, yaml_node_t *n, void *obj)
{
	return zm_yl_gateway(yl, n, &((struct zm_cfg_workload *)obj)->network_gateway);
}

static int zm_yl_svc_waypoint(struct zm_yl *yl, yaml_node_t *n, void *obj)
{
	return zm_yl_gateway(yl, n, &((struct zm_cfg_service *)obj)->waypoint);
}

static int zm_yl_wl_uid(struct zm_yl *yl, yaml_node_t *n, void *obj)
{
	struct zm_cfg_workload *w = obj;
	int r = zm_yl_str(yl, n, &w->uid);

	if (!r && !*w->uid) {
		zm_yl_error(yl, n, "must not be empty");
		r = -EINVAL;
	}
	w->uid_line = zm_yl_line(n);
	return r;
}

static int zm_yl_ip_item(struct zm_yl *yl, yaml_node_t *n, void *elem, size_t idx)
{
	struct zm_cfg_ip *ip = elem;
	char q[ZM_YL_QUOTE_BUF];
	const char *text;
	int r = zm_yl_str(yl, n, &text);

	(void)idx;
	if (r)
		return r;
	ip->line = zm_yl_line(n);
	if (zm_addr_parse(text, &ip->addr)) {
		zm_yl_error(yl, n, "invalid IP address %s", zm_yl_quote(n, q, sizeof(q)));
		return -EINVAL;
	}
	return 0;
}

static int zm_yl_wl_ips(struct zm_yl *yl, yaml_node_t *n, void *obj)
{
	struct zm_cfg_workload *w = obj;

	return zm_yl_list(yl, n, sizeof(*w->ips), zm_yl_ip_item, (void **)&w->ips, &w->n_ips);
}

/* One "<ns>/<hostname>": {servicePort: targetPort} pair of a workload's services. */
static int zm_yl_wl_service(struct zm_yl *yl, yaml_node_t *k, yaml_node_t *v, void *elem, void *ctx)
{
	struct zm_cfg_svc_ref *ref = elem;
	char q[ZM_YL_QUOTE_BUF];
	const char *slash;
	int r;

	(void)ctx;
	ref->line = zm_yl_line(k);
	r = zm_yl_str(yl, k, &ref->key);
	slash = r ? NULL : strchr(ref->key, '/');
	if (!r && (!slash || slash == ref->key || !slash[1])) {
		zm_yl_error(yl, k, "invalid service key %s (want <namespace>/<hostname>)",
			    zm_yl_quote(k, q, sizeof(q)));
		r = -EINVAL;
	}
	if (!r) {
		ref->namespace = zm_config_strndup(yl->cfg, ref->key, (size_t)(slash - ref->key));
		ref->hostname = slash + 1;
		if (!ref->namespace)
			r = zm_yl_oom(yl);
	}
	/* "ns/host": with no ports is a member without port mappings. */
	if (!zm_yl_is_null(v))
		r = zm_yl_port_map(yl, v, &ref->ports, &ref->n_ports) ?: r;
	return r;
}

static int zm_yl_wl_services(struct zm_yl *yl, yaml_node_t *n, void *obj)
{
	struct zm_cfg_workload *w = obj;

	return zm_yl_map_each(yl, n, sizeof(*w->services), zm_yl_wl_service, NULL,
			      (void **)&w->services, &w->n_services);
}

static int zm_yl_policy_ref_item(struct zm_yl *yl, yaml_node_t *n, void *elem, size_t idx)
{
	struct zm_cfg_policy_ref *ref = elem;

	(void)idx;
	ref->line = zm_yl_line(n);
	return zm_yl_str(yl, n, &ref->key);
}

static int zm_yl_wl_policies(struct zm_yl *yl, yaml_node_t *n, void *obj)
{
	struct zm_cfg_workload *w = obj;

	return zm_yl_list(yl, n, sizeof(*w->policies), zm_yl_policy_ref_item, (void **)&w->policies,
			  &w->n_policies);
}

static int zm_yl_wl_labels(struct zm_yl *yl, yaml_node_t *n, void *obj)
{
	struct zm_cfg_workload *w = obj;

	return zm_yl_map_each(yl, n, sizeof(*w->labels), zm_yl_label_pair, NULL,
			      (void **)&w->labels, &w->n_labels);
}

static int zm_yl_wl_locality(struct zm_yl *yl, yaml_node_t *n, void *obj)
{
	static const struct zm_yl_field fields[] = {
	    ZM_YL_F("region", ZM_YL_STR, struct zm_cfg_workload, locality.region, 0),
	    ZM_YL_F("zone", ZM_YL_STR, struct zm_cfg_workload, locality.zone, 0),
	    ZM_YL_F("subzone", ZM_YL_STR, struct zm_cfg_workload, locality.subzone, 0),
	};

	return zm_yl_mapping(yl, n, fields, ZM_YL_N(fields), obj);
}

static int zm_yl_wl_app_tunnel(struct zm_yl *yl, yaml_node_t *n, void *obj)
{
	static const struct zm_yl_field fields[] = {
	    ZM_YL_E("protocol", struct zm_cfg_workload, application_tunnel.protocol, ZM_YL_REQUIRED,
		    zm_yl_app_tunnels),
	    ZM_YL_F("port", ZM_YL_PORT, struct zm_cfg_workload, application_tunnel.port, 0),
	};
	struct zm_cfg_workload *w = obj;

	w->application_tunnel.present = true;
	return zm_yl_mapping(yl, n, fields, ZM_YL_N(fields), obj);
}

#define WL(name, kind, member, flags) ZM_YL_F(name, kind, struct zm_cfg_workload, member, flags)
#define WLE(name, member, names)      ZM_YL_E(name, struct zm_cfg_workload, member, 0, names)
#define RQ			      (ZM_YL_REQUIRED | ZM_YL_NONEMPTY)

static const struct zm_yl_field zm_yl_workload_fields[] = {
    ZM_YL_FUNC("uid", ZM_YL_REQUIRED, zm_yl_wl_uid),
    WL("name", ZM_YL_STR, name, RQ),
    WL("namespace", ZM_YL_STR, namespace, RQ),
    WL("serviceAccount", ZM_YL_STR, service_account, 0),
    ZM_YL_FUNC("workloadIps", ZM_YL_REQUIRED, zm_yl_wl_ips),
    WLE("protocol", protocol, zm_yl_protocols),
    WL("node", ZM_YL_STR, node, 0),
    WL("network", ZM_YL_STR, network, 0),
    WL("trustDomain", ZM_YL_STR, trust_domain, 0),
    ZM_YL_FUNC("waypoint", 0, zm_yl_wl_waypoint),
    ZM_YL_FUNC("networkGateway", 0, zm_yl_wl_netgw),
    ZM_YL_FUNC("services", 0, zm_yl_wl_services),
    WLE("status", status, zm_yl_health),
    ZM_YL_FUNC("locality", 0, zm_yl_wl_locality),
    WL("capacity", ZM_YL_U32, capacity, 0),
    ZM_YL_FUNC("authorizationPolicies", 0, zm_yl_wl_policies),
    WL("canonicalName", ZM_YL_STR, canonical_name, 0),
    WL("canonicalRevision", ZM_YL_STR, canonical_revision, 0),
    WL("workloadName", ZM_YL_STR, workload_name, 0),
    WL("workloadType", ZM_YL_STR, workload_type, 0),
    ZM_YL_FUNC("applicationTunnel", 0, zm_yl_wl_app_tunnel),
    WLE("networkMode", network_mode, zm_yl_netmodes),
    WL("hostname", ZM_YL_STR, hostname, 0),
    WL("clusterId", ZM_YL_STR, cluster_id, 0),
    WL("nativeTunnel", ZM_YL_BOOL, native_tunnel, 0),
    ZM_YL_FUNC("labels", 0, zm_yl_wl_labels),
};

static int zm_yl_workload_item(struct zm_yl *yl, yaml_node_t *n, void *elem, size_t idx)
{
	struct zm_cfg_workload *w = elem;

	(void)idx;
	w->line = zm_yl_line(n);
	w->capacity = 1;
	return zm_yl_mapping(yl, n, zm_yl_workload_fields, ZM_YL_N(zm_yl_workload_fields), w);
}

int zm_yl_workloads(struct zm_yl *yl, yaml_node_t *n, void *obj)
{
	struct zm_config *cfg = obj;

	cfg->workloads_empty = n->type == YAML_SEQUENCE_NODE &&
			       n->data.sequence.items.top == n->data.sequence.items.start;

	return zm_yl_list(yl, n, sizeof(*cfg->workloads), zm_yl_workload_item,
			  (void **)&cfg->workloads, &cfg->n_workloads);
}

static int zm_yl_vip_item(struct zm_yl *yl, yaml_node_t *n, void *elem, size_t idx)
{
	struct zm_cfg_vip *v = elem;

	(void)idx;
	v->line = zm_yl_line(n);
	return zm_yl_net_addr(yl, n, "VIP", &v->vip);
}

static int zm_yl_svc_vips(struct zm_yl *yl, yaml_node_t *n, void *obj)
{
	struct zm_cfg_service *s = obj;

	return zm_yl_list(yl, n, sizeof(*s->vips), zm_yl_vip_item, (void **)&s->vips, &s->n_vips);
}

static int zm_yl_svc_ports(struct zm_yl *yl, yaml_node_t *n, void *obj)
{
	struct zm_cfg_service *s = obj;

	return zm_yl_port_map(yl, n, &s->ports, &s->n_ports);
}

static int zm_yl_svc_sans(struct zm_yl *yl, yaml_node_t *n, void *obj)
{
	struct zm_cfg_service *s = obj;

	return zm_yl_list(yl, n, sizeof(*s->subject_alt_names), zm_yl_str_item,
			  (void **)&s->subject_alt_names, &s->n_subject_alt_names);
}

static int zm_yl_svc_ip_families(struct zm_yl *yl, yaml_node_t *n, void *obj)
{
	struct zm_cfg_service *s = obj;
	int v, r = zm_yl_enum(yl, n, zm_yl_ip_families, &v);

	if (!r)
		s->ip_families = (enum zm_cfg_ip_families)(v + ZM_CFG_IPFAM_DUAL);
	return r;
}

static int zm_yl_lb_scope_item(struct zm_yl *yl, yaml_node_t *n, void *elem, size_t idx)
{
	(void)idx;
	return zm_yl_enum(yl, n, zm_yl_lb_scopes, elem);
}

static int zm_yl_lb_prefs(struct zm_yl *yl, yaml_node_t *n, void *obj)
{
	struct zm_cfg_service *s = obj;

	return zm_yl_list(yl, n, sizeof(*s->load_balancer.routing_preferences), zm_yl_lb_scope_item,
			  (void **)&s->load_balancer.routing_preferences,
			  &s->load_balancer.n_routing_preferences);
}

static int zm_yl_svc_lb(struct zm_yl *yl, yaml_node_t *n, void *obj)
{
	static const struct zm_yl_field fields[] = {
	    ZM_YL_FUNC("routingPreferences", 0, zm_yl_lb_prefs),
	    ZM_YL_E("mode", struct zm_cfg_service, load_balancer.mode, 0, zm_yl_lb_modes),
	    ZM_YL_E("healthPolicy", struct zm_cfg_service, load_balancer.health_policy, 0,
		    zm_yl_lb_health),
	};
	struct zm_cfg_service *s = obj;

	s->load_balancer.present = true;
	return zm_yl_mapping(yl, n, fields, ZM_YL_N(fields), obj);
}

#define SVC(name, kind, member, flags) ZM_YL_F(name, kind, struct zm_cfg_service, member, flags)

static const struct zm_yl_field zm_yl_service_fields[] = {
    SVC("name", ZM_YL_STR, name, RQ),
    SVC("namespace", ZM_YL_STR, namespace, RQ),
    SVC("hostname", ZM_YL_STR, hostname, RQ),
    ZM_YL_FUNC("vips", ZM_YL_REQUIRED, zm_yl_svc_vips),
    ZM_YL_FUNC("ports", ZM_YL_REQUIRED, zm_yl_svc_ports),
    ZM_YL_FUNC("subjectAltNames", 0, zm_yl_svc_sans),
    ZM_YL_FUNC("waypoint", 0, zm_yl_svc_waypoint),
    ZM_YL_FUNC("loadBalancer", 0, zm_yl_svc_lb),
    ZM_YL_FUNC("ipFamilies", 0, zm_yl_svc_ip_families),
    SVC("canonical", ZM_YL_BOOL, canonical, 0),
};

static int zm_yl_service_item(struct zm_yl *yl, yaml_node_t *n, void *elem, size_t idx)
{
	struct zm_cfg_service *s = elem;

	(void)idx;
	s->line = zm_yl_line(n);
	return zm_yl_mapping(yl, n, zm_yl_service_fields, ZM_YL_N(zm_yl_service_fields), s);
}

int zm_yl_services(struct zm_yl *yl, yaml_node_t *n, void *obj)
{
	struct zm_config *cfg = obj;

	return zm_yl_list(yl, n, sizeof(*cfg->services), zm_yl_service_item,
			  (void **)&cfg->services, &cfg->n_services);
}
