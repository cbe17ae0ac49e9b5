// SPDX-License-Identifier: Apache-2.0
/*
 * Istio's workload and authorization resources (decoded by protobuf-c) into the config model:
 * the xDS counterpart of lib/config's YAML loaders, with the reference ztunnel's reading of
 * each field (empty trust domain and service account mean the defaults, a missing capacity
 * means 1, LEGACY_ISTIO_MTLS is plain TCP to us). Everything the wire can hold but the model
 * cannot is refused with the field named: addresses that are not 4 or 16 bytes, ports 0 or
 * above 65535, enum values the protocol does not define, empty string matches, CIDR lengths
 * beyond the family, missing names.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/errf.h"
#include "internal.h"

static int xt_fail(char *err, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int xt_fail(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* A string field: NULL when empty (the model's defaults apply), else copied. */
static const char *xt_str(struct zm_config *cfg, const char *s)
{
	return s && *s ? zm_config_strdup(cfg, s) : NULL;
}

static int xt_addr(ProtobufCBinaryData b, struct zm_addr *out, const char *field, char *err,
		   size_t len)
{
	memset(out, 0, sizeof(*out));
	if (b.len == 4) {
		out->family = ZM_AF_INET;
		memcpy(&out->addr[0], b.data, 4);
	} else if (b.len == 16) {
		out->family = ZM_AF_INET6;
		memcpy(out->addr, b.data, 16);
	} else {
		return xt_fail(err, len, "%s: address of %zu bytes (want 4 or 16)", field, b.len);
	}
	return 0;
}

static int xt_port(uint32_t v, bool zero_ok, const char *field, char *err, size_t len)
{
	if ((!v && !zero_ok) || v > 65535)
		return xt_fail(err, len, "%s: port %u out of range (1-65535)", field, v);
	return 0;
}

static int xt_gateway(struct zm_config *cfg, const Istio__Workload__GatewayAddress *g,
		      struct zm_cfg_gateway *out, unsigned int line, const char *field, char *err,
		      size_t len)
{
	char f[96];
	int r;

	if (!g)
		return 0;
	out->present = true;
	out->line = line;
	snprintf(f, sizeof(f), "%s.hbone_mtls_port", field);
	r = xt_port(g->hbone_mtls_port, false, f, err, len);
	if (r)
		return r;
	out->hbone_mtls_port = (__u16)g->hbone_mtls_port;
	switch (g->destination_case) {
	case ISTIO__WORKLOAD__GATEWAY_ADDRESS__DESTINATION_HOSTNAME:
		if (!g->hostname->hostname[0] || !g->hostname->namespace_[0])
			return xt_fail(err, len, "%s.hostname: namespace and hostname required",
				       field);
		out->is_hostname = true;
		out->namespace = zm_config_strdup(cfg, g->hostname->namespace_);
		out->hostname = zm_config_strdup(cfg, g->hostname->hostname);
		return out->namespace && out->hostname ? 0 : -ENOMEM;
	case ISTIO__WORKLOAD__GATEWAY_ADDRESS__DESTINATION_ADDRESS:
		snprintf(f, sizeof(f), "%s.address.address", field);
		out->address.network = xt_str(cfg, g->address->network);
		return xt_addr(g->address->address, &out->address.addr, f, err, len);
	default:
		return xt_fail(err, len, "%s: neither hostname nor address", field);
	}
}

static int xt_ports(struct zm_config *cfg, Istio__Workload__Port **v, size_t n,
		    struct zm_cfg_port **out, size_t *n_out, unsigned int line, const char *field,
		    char *err, size_t len)
{
	char f[160];
	int r;

	*out = zm_config_calloc(cfg, n ? n : 1, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		snprintf(f, sizeof(f), "%s[%zu].service_port", field, i);
		r = xt_port(v[i]->service_port, false, f, err, len);
		snprintf(f, sizeof(f), "%s[%zu].target_port", field, i);
		if (!r)
			r = xt_port(v[i]->target_port, true, f, err, len);
		if (r)
			return r;
		if (v[i]->app_protocol > ISTIO__WORKLOAD__APP_PROTOCOL__TLS)
			return xt_fail(err, len, "%s[%zu].app_protocol: unknown value %d", field, i,
				       v[i]->app_protocol);
		(*out)[i].service_port = (__u16)v[i]->service_port;
		/* 0: the service's own port number (a named targetPort istiod could not map) */
		(*out)[i].target_port =
		    (__u16)(v[i]->target_port ? v[i]->target_port : v[i]->service_port);
		(*out)[i].line = line;
	}
	*n_out = n;
	return 0;
}

static const char *const xt_wl_types[] = {"deployment", "cronjob", "pod", "job"};

static int xt_wl_enums(const Istio__Workload__Workload *w, struct zm_cfg_workload *o, char *err,
		       size_t len)
{
	switch (w->tunnel_protocol) {
	case ISTIO__WORKLOAD__TUNNEL_PROTOCOL__HBONE:
		o->protocol = ZM_CFG_PROTO_HBONE;
		break;
	case ISTIO__WORKLOAD__TUNNEL_PROTOCOL__NONE:
	case ISTIO__WORKLOAD__TUNNEL_PROTOCOL__LEGACY_ISTIO_MTLS: /* not sent by ztunnels */
		o->protocol = ZM_CFG_PROTO_TCP;
		break;
	default:
		return xt_fail(err, len, "tunnel_protocol: unknown value %d", w->tunnel_protocol);
	}
	if (w->status > ISTIO__WORKLOAD__WORKLOAD_STATUS__UNHEALTHY)
		return xt_fail(err, len, "status: unknown value %d", w->status);
	o->status = w->status ? ZM_CFG_UNHEALTHY : ZM_CFG_HEALTHY;
	if (w->network_mode > ISTIO__WORKLOAD__NETWORK_MODE__HOST_NETWORK)
		return xt_fail(err, len, "network_mode: unknown value %d", w->network_mode);
	o->network_mode = w->network_mode ? ZM_CFG_NETMODE_HOST_NETWORK : ZM_CFG_NETMODE_STANDARD;
	if ((unsigned)w->workload_type >= sizeof(xt_wl_types) / sizeof(xt_wl_types[0]))
		return xt_fail(err, len, "workload_type: unknown value %d", w->workload_type);
	o->workload_type = xt_wl_types[w->workload_type];
	if (w->application_tunnel) {
		if (w->application_tunnel->protocol >
		    ISTIO__WORKLOAD__APPLICATION_TUNNEL__PROTOCOL__PROXY)
			return xt_fail(err, len, "application_tunnel.protocol: unknown value %d",
				       w->application_tunnel->protocol);
		if (w->application_tunnel->port > 65535)
			return xt_fail(err, len, "application_tunnel.port: %u out of range",
				       w->application_tunnel->port);
		o->application_tunnel.present = true;
		o->application_tunnel.protocol = w->application_tunnel->protocol
						     ? ZM_CFG_APP_TUNNEL_PROXY
						     : ZM_CFG_APP_TUNNEL_NONE;
		o->application_tunnel.port = (__u16)w->application_tunnel->port;
	}
	return 0;
}

static int xt_wl_services(struct zm_config *cfg, const Istio__Workload__Workload *w,
			  struct zm_cfg_workload *o, unsigned int line, char *err, size_t len)
{
	char f[96 + 256];
	int r;

	o->services =
	    zm_config_calloc(cfg, w->n_services ? w->n_services : 1, sizeof(*o->services));
	if (!o->services)
		return -ENOMEM;
	for (size_t i = 0; i < w->n_services; i++) {
		const Istio__Workload__Workload__ServicesEntry *e = w->services[i];
		struct zm_cfg_svc_ref *s = &o->services[i];
		const char *slash = e->key ? strchr(e->key, '/') : NULL;

		if (!slash || slash == e->key || !slash[1])
			return xt_fail(err, len,
				       "services[%zu]: key \"%.100s\" is not namespace/hostname", i,
				       e->key ? e->key : "");
		s->key = zm_config_strdup(cfg, e->key);
		s->namespace = zm_config_strndup(cfg, e->key, (size_t)(slash - e->key));
		s->hostname = zm_config_strdup(cfg, slash + 1);
		s->line = line;
		if (!s->key || !s->namespace || !s->hostname)
			return -ENOMEM;
		snprintf(f, sizeof(f), "services[%.200s].ports", e->key);
		r = xt_ports(cfg, e->value ? e->value->ports : NULL,
			     e->value ? e->value->n_ports : 0, &s->ports, &s->n_ports, line, f, err,
			     len);
		if (r)
			return r;
	}
	o->n_services = w->n_services;
	o->policies = zm_config_calloc(cfg, w->n_authorization_policies ?: 1, sizeof(*o->policies));
	if (!o->policies)
		return -ENOMEM;
	for (size_t i = 0; i < w->n_authorization_policies; i++) {
		if (!strchr(w->authorization_policies[i], '/'))
			return xt_fail(
			    err, len,
			    "authorization_policies[%zu]: \"%.100s\" is not namespace/name", i,
			    w->authorization_policies[i]);
		o->policies[i].key = zm_config_strdup(cfg, w->authorization_policies[i]);
		o->policies[i].line = line;
		if (!o->policies[i].key)
			return -ENOMEM;
	}
	o->n_policies = w->n_authorization_policies;
	return 0;
}

int xds_tr_workload(struct zm_config *cfg, const Istio__Workload__Workload *w,
		    struct zm_cfg_workload *o, unsigned int line, char *err, size_t len)
{
	char f[48];
	int r;

	if (!w->uid[0])
		return xt_fail(err, len, "uid: missing");
	if (!w->namespace_[0])
		return xt_fail(err, len, "namespace: missing");
	if (!w->n_addresses && !w->hostname[0])
		return xt_fail(err, len, "addresses: neither addresses nor hostname");
	o->uid = zm_config_strdup(cfg, w->uid);
	o->name = zm_config_strdup(cfg, w->name[0] ? w->name : w->uid);
	o->namespace = zm_config_strdup(cfg, w->namespace_);
	if (!o->uid || !o->name || !o->namespace)
		return -ENOMEM;
	o->service_account = xt_str(cfg, w->service_account);
	o->trust_domain = xt_str(cfg, w->trust_domain);
	o->node = xt_str(cfg, w->node);
	o->network = xt_str(cfg, w->network);
	o->hostname = xt_str(cfg, w->hostname);
	o->cluster_id = xt_str(cfg, w->cluster_id);
	o->canonical_name = xt_str(cfg, w->canonical_name);
	o->canonical_revision = xt_str(cfg, w->canonical_revision);
	o->workload_name = xt_str(cfg, w->workload_name);
	o->native_tunnel = w->native_tunnel;
	o->line = o->uid_line = line;
	o->ips = zm_config_calloc(cfg, w->n_addresses ? w->n_addresses : 1, sizeof(*o->ips));
	if (!o->ips)
		return -ENOMEM;
	for (size_t i = 0; i < w->n_addresses; i++) {
		snprintf(f, sizeof(f), "addresses[%zu]", i);
		r = xt_addr(w->addresses[i], &o->ips[i].addr, f, err, len);
		if (r)
			return r;
		o->ips[i].line = line;
	}
	o->n_ips = w->n_addresses;
	r = xt_wl_enums(w, o, err, len);
	if (!r)
		r = xt_gateway(cfg, w->waypoint, &o->waypoint, line, "waypoint", err, len);
	if (!r)
		r = xt_gateway(cfg, w->network_gateway, &o->network_gateway, line,
			       "network_gateway", err, len);
	if (r)
		return r;
	if (w->locality) {
		o->locality.region = xt_str(cfg, w->locality->region);
		o->locality.zone = xt_str(cfg, w->locality->zone);
		o->locality.subzone = xt_str(cfg, w->locality->subzone);
	}
	o->capacity = w->capacity ? w->capacity->value : 1;
	return xt_wl_services(cfg, w, o, line, err, len);
}

static int xt_lb(const Istio__Workload__LoadBalancing *lb, struct zm_cfg_service *o,
		 struct zm_config *cfg, char *err, size_t len)
{
	static const enum zm_cfg_lb_scope scopes[] = {
	    [ISTIO__WORKLOAD__LOAD_BALANCING__SCOPE__REGION] = ZM_CFG_LB_REGION,
	    [ISTIO__WORKLOAD__LOAD_BALANCING__SCOPE__ZONE] = ZM_CFG_LB_ZONE,
	    [ISTIO__WORKLOAD__LOAD_BALANCING__SCOPE__SUBZONE] = ZM_CFG_LB_SUBZONE,
	    [ISTIO__WORKLOAD__LOAD_BALANCING__SCOPE__NODE] = ZM_CFG_LB_NODE,
	    [ISTIO__WORKLOAD__LOAD_BALANCING__SCOPE__CLUSTER] = ZM_CFG_LB_CLUSTER,
	    [ISTIO__WORKLOAD__LOAD_BALANCING__SCOPE__NETWORK] = ZM_CFG_LB_NETWORK,
	};
	static const enum zm_cfg_lb_mode modes[] = {ZM_CFG_LB_STANDARD, ZM_CFG_LB_STRICT,
						    ZM_CFG_LB_FAILOVER, ZM_CFG_LB_PASSTHROUGH};

	if (!lb)
		return 0;
	o->load_balancer.present = true;
	o->load_balancer.routing_preferences =
	    zm_config_calloc(cfg, lb->n_routing_preference ?: 1, sizeof(enum zm_cfg_lb_scope));
	if (!o->load_balancer.routing_preferences)
		return -ENOMEM;
	for (size_t i = 0; i < lb->n_routing_preference; i++) {
		int v = lb->routing_preference[i];

		if (v < ISTIO__WORKLOAD__LOAD_BALANCING__SCOPE__REGION ||
		    v > ISTIO__WORKLOAD__LOAD_BALANCING__SCOPE__NETWORK)
			return xt_fail(err, len,
				       "load_balancing.routing_preference[%zu]: "
				       "unknown or unspecified value %d",
				       i, v);
		o->load_balancer.routing_preferences[i] = scopes[v];
	}
	o->load_balancer.n_routing_preferences = lb->n_routing_preference;
	if ((unsigned)lb->mode > 3)
		return xt_fail(err, len, "load_balancing.mode: unknown value %d", lb->mode);
	o->load_balancer.mode = modes[lb->mode];
	if ((unsigned)lb->health_policy > 1)
		return xt_fail(err, len, "load_balancing.health_policy: unknown value %d",
			       lb->health_policy);
	o->load_balancer.health_policy =
	    lb->health_policy ? ZM_CFG_LB_ALLOW_ALL : ZM_CFG_LB_ONLY_HEALTHY;
	return 0;
}

int xds_tr_service(struct zm_config *cfg, const Istio__Workload__Service *s,
		   struct zm_cfg_service *o, unsigned int line, char *err, size_t len)
{
	static const enum zm_cfg_ip_families fams[] = {ZM_CFG_IPFAM_AUTO, ZM_CFG_IPFAM_IPV4,
						       ZM_CFG_IPFAM_IPV6, ZM_CFG_IPFAM_DUAL};
	char f[48];
	int r;

	if (!s->name[0] || !s->namespace_[0] || !s->hostname[0])
		return xt_fail(err, len, "%s: missing",
			       !s->name[0]	   ? "name"
			       : !s->namespace_[0] ? "namespace"
						   : "hostname");
	o->name = zm_config_strdup(cfg, s->name);
	o->namespace = zm_config_strdup(cfg, s->namespace_);
	o->hostname = zm_config_strdup(cfg, s->hostname);
	if (!o->name || !o->namespace || !o->hostname)
		return -ENOMEM;
	o->line = line;
	o->vips = zm_config_calloc(cfg, s->n_addresses ?: 1, sizeof(*o->vips));
	if (!o->vips)
		return -ENOMEM;
	for (size_t i = 0; i < s->n_addresses; i++) {
		snprintf(f, sizeof(f), "addresses[%zu].address", i);
		r = xt_addr(s->addresses[i]->address, &o->vips[i].vip.addr, f, err, len);
		if (r)
			return r;
		o->vips[i].vip.network = zm_config_strdup(cfg, s->addresses[i]->network);
		o->vips[i].line = line;
	}
	o->n_vips = s->n_addresses;
	r = xt_ports(cfg, s->ports, s->n_ports, &o->ports, &o->n_ports, line, "ports", err, len);
	if (r)
		return r;
	o->subject_alt_names = zm_config_calloc(cfg, s->n_subject_alt_names ?: 1, sizeof(char *));
	if (!o->subject_alt_names)
		return -ENOMEM;
	for (size_t i = 0; i < s->n_subject_alt_names; i++)
		o->subject_alt_names[i] = zm_config_strdup(cfg, s->subject_alt_names[i]);
	o->n_subject_alt_names = s->n_subject_alt_names;
	r = xt_gateway(cfg, s->waypoint, &o->waypoint, line, "waypoint", err, len);
	if (r)
		return r;
	if ((unsigned)s->ip_families > 3)
		return xt_fail(err, len, "ip_families: unknown value %d", s->ip_families);
	o->ip_families = fams[s->ip_families];
	o->canonical = s->canonical;
	return xt_lb(s->load_balancing, o, cfg, err, len);
}

/* ---- Authorization ---- */

static int xt_strs(struct zm_config *cfg, Istio__Security__StringMatch **v, size_t n,
		   struct zm_cfg_str_list *out, const char *field, char *err, size_t len)
{
	out->v = zm_config_calloc(cfg, n ?: 1, sizeof(*out->v));
	if (!out->v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct zm_cfg_str_match *m = &out->v[i];

		switch (v[i]->match_type_case) {
		case ISTIO__SECURITY__STRING_MATCH__MATCH_TYPE_EXACT:
			m->kind = ZM_CFG_STR_EXACT, m->value = v[i]->exact;
			break;
		case ISTIO__SECURITY__STRING_MATCH__MATCH_TYPE_PREFIX:
			m->kind = ZM_CFG_STR_PREFIX, m->value = v[i]->prefix;
			break;
		case ISTIO__SECURITY__STRING_MATCH__MATCH_TYPE_SUFFIX:
			m->kind = ZM_CFG_STR_SUFFIX, m->value = v[i]->suffix;
			break;
		case ISTIO__SECURITY__STRING_MATCH__MATCH_TYPE_PRESENCE:
			m->kind = ZM_CFG_STR_PRESENCE, m->value = "";
			break;
		default:
			return xt_fail(err, len, "%s[%zu]: no exact, prefix, suffix or presence",
				       field, i);
		}
		m->value = zm_config_strdup(cfg, m->value);
		if (!m->value)
			return -ENOMEM;
	}
	out->n = n;
	return 0;
}

static int xt_sas(struct zm_config *cfg, Istio__Security__ServiceAccountMatch **v, size_t n,
		  struct zm_cfg_sa_list *out)
{
	out->v = zm_config_calloc(cfg, n ?: 1, sizeof(*out->v));
	if (!out->v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		out->v[i].namespace = zm_config_strdup(cfg, v[i]->namespace_);
		out->v[i].service_account = zm_config_strdup(cfg, v[i]->serviceaccount);
		if (!out->v[i].namespace || !out->v[i].service_account)
			return -ENOMEM;
	}
	out->n = n;
	return 0;
}

static int xt_cidrs(struct zm_config *cfg, Istio__Security__Address **v, size_t n,
		    struct zm_cfg_cidr_list *out, const char *field, char *err, size_t len)
{
	char f[64];
	int r;

	out->v = zm_config_calloc(cfg, n ?: 1, sizeof(*out->v));
	if (!out->v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct zm_cfg_cidr *c = &out->v[i];
		unsigned int max;

		snprintf(f, sizeof(f), "%s[%zu].address", field, i);
		r = xt_addr(v[i]->address, &c->addr, f, err, len);
		if (r)
			return r;
		max = c->addr.family == ZM_AF_INET ? 32 : 128;
		if (v[i]->length > max)
			return xt_fail(err, len, "%s[%zu].length: %u beyond /%u", field, i,
				       v[i]->length, max);
		c->prefix_len = v[i]->length;
		/* host bits beyond the prefix cleared, as the model promises */
		for (unsigned int b = c->prefix_len; b < max; b++)
			((uint8_t *)c->addr.addr)[b / 8] &= (uint8_t) ~(0x80u >> (b % 8));
	}
	out->n = n;
	return 0;
}

static int xt_dports(struct zm_config *cfg, const uint32_t *v, size_t n,
		     struct zm_cfg_port_list *out, const char *field, char *err, size_t len)
{
	char f[64];

	out->v = zm_config_calloc(cfg, n ?: 1, sizeof(*out->v));
	if (!out->v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		snprintf(f, sizeof(f), "%s[%zu]", field, i);
		if (xt_port(v[i], false, f, err, len))
			return -EINVAL;
		out->v[i] = (__u16)v[i];
	}
	out->n = n;
	return 0;
}

static int xt_match(struct zm_config *cfg, const Istio__Security__Match *m, struct zm_cfg_match *o,
		    const char *p, char *err, size_t len)
{
	char f[4][128];
	int r;

	snprintf(f[0], sizeof(f[0]), "%s.namespaces", p);
	snprintf(f[1], sizeof(f[1]), "%s.not_namespaces", p);
	snprintf(f[2], sizeof(f[2]), "%s.principals", p);
	snprintf(f[3], sizeof(f[3]), "%s.not_principals", p);
	r = xt_strs(cfg, m->namespaces, m->n_namespaces, &o->namespaces, f[0], err, len);
	r = r
		?: xt_strs(cfg, m->not_namespaces, m->n_not_namespaces, &o->not_namespaces, f[1],
			   err, len);
	r = r ?: xt_strs(cfg, m->principals, m->n_principals, &o->principals, f[2], err, len);
	r = r
		?: xt_strs(cfg, m->not_principals, m->n_not_principals, &o->not_principals, f[3],
			   err, len);
	r = r ?: xt_sas(cfg, m->service_accounts, m->n_service_accounts, &o->service_accounts);
	r = r
		?: xt_sas(cfg, m->not_service_accounts, m->n_not_service_accounts,
			  &o->not_service_accounts);
	if (r)
		return r;
	snprintf(f[0], sizeof(f[0]), "%s.source_ips", p);
	snprintf(f[1], sizeof(f[1]), "%s.not_source_ips", p);
	snprintf(f[2], sizeof(f[2]), "%s.destination_ips", p);
	snprintf(f[3], sizeof(f[3]), "%s.not_destination_ips", p);
	r = xt_cidrs(cfg, m->source_ips, m->n_source_ips, &o->source_ips, f[0], err, len);
	r = r
		?: xt_cidrs(cfg, m->not_source_ips, m->n_not_source_ips, &o->not_source_ips, f[1],
			    err, len);
	r = r
		?: xt_cidrs(cfg, m->destination_ips, m->n_destination_ips, &o->destination_ips,
			    f[2], err, len);
	r = r
		?: xt_cidrs(cfg, m->not_destination_ips, m->n_not_destination_ips,
			    &o->not_destination_ips, f[3], err, len);
	if (r)
		return r;
	snprintf(f[0], sizeof(f[0]), "%s.destination_ports", p);
	snprintf(f[1], sizeof(f[1]), "%s.not_destination_ports", p);
	r = xt_dports(cfg, m->destination_ports, m->n_destination_ports, &o->destination_ports,
		      f[0], err, len);
	return r
		   ?: xt_dports(cfg, m->not_destination_ports, m->n_not_destination_ports,
				&o->not_destination_ports, f[1], err, len);
}

int xds_tr_policy(struct zm_config *cfg, const Istio__Security__Authorization *a,
		  struct zm_cfg_policy *o, unsigned int line, char *err, size_t len)
{
	char p[96];
	int r;

	if (!a->name[0] || !a->namespace_[0])
		return xt_fail(err, len, "%s: missing", a->name[0] ? "namespace" : "name");
	if ((unsigned)a->scope > ISTIO__SECURITY__SCOPE__WORKLOAD_SELECTOR)
		return xt_fail(err, len, "scope: unknown value %d", a->scope);
	if ((unsigned)a->action > ISTIO__SECURITY__ACTION__DENY)
		return xt_fail(err, len, "action: unknown value %d", a->action);
	o->name = zm_config_strdup(cfg, a->name);
	o->namespace = zm_config_strdup(cfg, a->namespace_);
	o->rules = zm_config_calloc(cfg, a->n_rules ?: 1, sizeof(*o->rules));
	if (!o->name || !o->namespace || !o->rules)
		return -ENOMEM;
	o->scope = a->scope == ISTIO__SECURITY__SCOPE__GLOBAL	   ? ZM_CFG_SCOPE_GLOBAL
		   : a->scope == ISTIO__SECURITY__SCOPE__NAMESPACE ? ZM_CFG_SCOPE_NAMESPACE
								   : ZM_CFG_SCOPE_WORKLOAD_SELECTOR;
	o->action =
	    a->action == ISTIO__SECURITY__ACTION__DENY ? ZM_CFG_ACTION_DENY : ZM_CFG_ACTION_ALLOW;
	o->dry_run = a->dry_run;
	o->line = line;
	for (size_t i = 0; i < a->n_rules; i++) {
		const Istio__Security__Rule *ru = a->rules[i];
		struct zm_cfg_rule *rr = &o->rules[i];

		rr->clauses = zm_config_calloc(cfg, ru->n_clauses ?: 1, sizeof(*rr->clauses));
		if (!rr->clauses)
			return -ENOMEM;
		for (size_t j = 0; j < ru->n_clauses; j++) {
			const Istio__Security__Clause *cl = ru->clauses[j];
			struct zm_cfg_clause *cc = &rr->clauses[j];

			cc->matches =
			    zm_config_calloc(cfg, cl->n_matches ?: 1, sizeof(*cc->matches));
			if (!cc->matches)
				return -ENOMEM;
			for (size_t k = 0; k < cl->n_matches; k++) {
				snprintf(p, sizeof(p), "rules[%zu].clauses[%zu].matches[%zu]", i, j,
					 k);
				r = xt_match(cfg, cl->matches[k], &cc->matches[k], p, err, len);
				if (r)
					return r;
			}
			cc->n_matches = cl->n_matches;
		}
		rr->n_clauses = ru->n_clauses;
	}
	o->n_rules = a->n_rules;
	return 0;
}

int xds_address_key(const Istio__Workload__Address *a, char *buf, size_t len)
{
	switch (a->type_case) {
	case ISTIO__WORKLOAD__ADDRESS__TYPE_WORKLOAD:
		snprintf(buf, len, "%s", a->workload->uid);
		return 0;
	case ISTIO__WORKLOAD__ADDRESS__TYPE_SERVICE:
		snprintf(buf, len, "%s/%s", a->service->namespace_, a->service->hostname);
		return 0;
	default:
		return -EINVAL;
	}
}
