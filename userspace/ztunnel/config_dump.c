// SPDX-License-Identifier: Apache-2.0
/*
 * ztunnel's /config_dump (admin port 15000). The top-level `workloads`, `services`,
 * `policies` and `certificates` use the reference ztunnel's names and shapes (camelCase:
 * workloadIps, serviceAccount, trustDomain, vips, endpoints, certChain with serialNumber,
 * validFrom, expirationTime...), so tools written for its dump read ours; `xds` holds the
 * istiod connection (connected, last ACKed version and nonce per type, NACKs), `kubernetes`
 * the API server's (per kind: synced, resourceVersion, objects, relists; model builds and
 * convergence); the rest (generation, enrolled, pool sizes) is zmesh's own.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "zt.h"

static json_object *cd_str(const char *s)
{
	return json_object_new_string(s ? s : "");
}

#define JS(s) cd_str(s)
#define JADD  json_object_object_add

static json_object *cd_addr(const struct zm_addr *a)
{
	char buf[ZM_ADDR_STRLEN];

	return JS(zm_addr_format(a, buf, sizeof(buf)));
}

static json_object *cd_net_addr(const char *network, const struct zm_addr *a)
{
	char buf[ZM_ADDR_STRLEN], out[ZM_ADDR_STRLEN + 128];

	snprintf(out, sizeof(out), "%s/%s", network ? network : "",
		 zm_addr_format(a, buf, sizeof(buf)));
	return JS(out);
}

static json_object *cd_gateway(const struct zm_cfg_gateway *g)
{
	json_object *o = json_object_new_object(), *d = json_object_new_object();

	if (g->is_hostname) {
		JADD(d, "namespace", JS(g->namespace));
		JADD(d, "hostname", JS(g->hostname));
		JADD(o, "destination", d);
	} else {
		json_object_put(d);
		JADD(o, "destination", cd_net_addr(g->address.network, &g->address.addr));
	}
	JADD(o, "hboneMtlsPort", json_object_new_int(g->hbone_mtls_port));
	return o;
}

static json_object *cd_workload(const struct zm_cfg_workload *w)
{
	json_object *o = json_object_new_object(), *ips = json_object_new_array(),
		    *svcs = json_object_new_array(), *pols = json_object_new_array(),
		    *loc = json_object_new_object();

	for (size_t j = 0; j < w->n_ips; j++)
		json_object_array_add(ips, cd_addr(&w->ips[j].addr));
	for (size_t j = 0; j < w->n_services; j++)
		json_object_array_add(svcs, JS(w->services[j].key));
	for (size_t j = 0; j < w->n_policies; j++)
		json_object_array_add(pols, JS(w->policies[j].key));
	JADD(o, "workloadIps", ips);
	if (w->waypoint.present)
		JADD(o, "waypoint", cd_gateway(&w->waypoint));
	if (w->network_gateway.present)
		JADD(o, "networkGateway", cd_gateway(&w->network_gateway));
	JADD(o, "protocol", JS(zm_cfg_protocol_name(w->protocol)));
	JADD(o, "networkMode",
	     JS(w->network_mode == ZM_CFG_NETMODE_HOST_NETWORK ? "HostNetwork" : "Standard"));
	JADD(o, "uid", JS(w->uid));
	JADD(o, "name", JS(w->name));
	JADD(o, "namespace", JS(w->namespace));
	JADD(o, "trustDomain", JS(w->trust_domain));
	JADD(o, "serviceAccount", JS(w->service_account));
	JADD(o, "network", JS(w->network));
	JADD(o, "workloadName", JS(w->workload_name));
	JADD(o, "workloadType", JS(w->workload_type));
	JADD(o, "canonicalName", JS(w->canonical_name));
	JADD(o, "canonicalRevision", JS(w->canonical_revision));
	JADD(o, "hostname", JS(w->hostname));
	JADD(o, "node", JS(w->node));
	JADD(o, "authorizationPolicies", pols);
	JADD(o, "status", JS(w->status == ZM_CFG_UNHEALTHY ? "Unhealthy" : "Healthy"));
	JADD(o, "clusterId", JS(w->cluster_id));
	JADD(loc, "region", JS(w->locality.region));
	JADD(loc, "zone", JS(w->locality.zone));
	JADD(loc, "subzone", JS(w->locality.subzone));
	JADD(o, "locality", loc);
	JADD(o, "services", svcs);
	JADD(o, "capacity", json_object_new_int64(w->capacity));
	return o;
}

static json_object *cd_service(const struct zm_config *cfg, const struct zm_cfg_service *s)
{
	json_object *o = json_object_new_object(), *vips = json_object_new_array(),
		    *ports = json_object_new_object(), *eps = json_object_new_object(),
		    *sans = json_object_new_array();
	char k[16];

	for (size_t j = 0; j < s->n_vips; j++)
		json_object_array_add(vips,
				      cd_net_addr(s->vips[j].vip.network, &s->vips[j].vip.addr));
	for (size_t j = 0; j < s->n_ports; j++) {
		snprintf(k, sizeof(k), "%u", s->ports[j].service_port);
		JADD(ports, k, json_object_new_int(s->ports[j].target_port));
	}
	for (size_t i = 0; i < cfg->n_workloads; i++)
		for (size_t j = 0; j < cfg->workloads[i].n_services; j++)
			if (cfg->workloads[i].services[j].service == s) {
				json_object *e = json_object_new_object(),
					    *p = json_object_new_object();

				for (size_t q = 0; q < cfg->workloads[i].services[j].n_ports; q++) {
					const struct zm_cfg_port *pp =
					    &cfg->workloads[i].services[j].ports[q];

					snprintf(k, sizeof(k), "%u", pp->service_port);
					JADD(p, k, json_object_new_int(pp->target_port));
				}
				JADD(e, "workloadUid", JS(cfg->workloads[i].uid));
				JADD(e, "service", JS(s->key));
				JADD(e, "port", p);
				JADD(eps, cfg->workloads[i].uid, e);
			}
	for (size_t j = 0; j < s->n_subject_alt_names; j++)
		json_object_array_add(sans, JS(s->subject_alt_names[j]));
	JADD(o, "name", JS(s->name));
	JADD(o, "namespace", JS(s->namespace));
	JADD(o, "hostname", JS(s->hostname));
	JADD(o, "vips", vips);
	JADD(o, "ports", ports);
	JADD(o, "endpoints", eps);
	JADD(o, "subjectAltNames", sans);
	if (s->waypoint.present)
		JADD(o, "waypoint", cd_gateway(&s->waypoint));
	return o;
}

static json_object *cd_strs(const struct zm_cfg_str_list *l)
{
	static const char *const kinds[] = {"Exact", "Prefix", "Suffix", "Presence"};
	json_object *a = json_object_new_array();

	for (size_t i = 0; i < l->n; i++) {
		json_object *m = json_object_new_object();

		JADD(m, kinds[l->v[i].kind],
		     l->v[i].kind == ZM_CFG_STR_PRESENCE ? json_object_new_object()
							 : JS(l->v[i].value));
		json_object_array_add(a, m);
	}
	return a;
}

static json_object *cd_match(const struct zm_cfg_match *m)
{
	json_object *o = json_object_new_object(), *dp = json_object_new_array();

	JADD(o, "namespaces", cd_strs(&m->namespaces));
	JADD(o, "notNamespaces", cd_strs(&m->not_namespaces));
	JADD(o, "principals", cd_strs(&m->principals));
	JADD(o, "notPrincipals", cd_strs(&m->not_principals));
	for (size_t i = 0; i < m->destination_ports.n; i++)
		json_object_array_add(dp, json_object_new_int(m->destination_ports.v[i]));
	JADD(o, "destinationPorts", dp);
	return o;
}

static json_object *cd_policy(const struct zm_cfg_policy *p)
{
	json_object *o = json_object_new_object(), *rules = json_object_new_array();

	for (size_t i = 0; i < p->n_rules; i++) {
		json_object *r = json_object_new_array();

		for (size_t j = 0; j < p->rules[i].n_clauses; j++) {
			json_object *c = json_object_new_array();

			for (size_t k = 0; k < p->rules[i].clauses[j].n_matches; k++)
				json_object_array_add(c,
						      cd_match(&p->rules[i].clauses[j].matches[k]));
			json_object_array_add(r, c);
		}
		json_object_array_add(rules, r);
	}
	JADD(o, "name", JS(p->name));
	JADD(o, "namespace", JS(p->namespace));
	JADD(o, "scope", JS(zm_cfg_scope_name(p->scope)));
	JADD(o, "action", JS(zm_cfg_action_name(p->action)));
	JADD(o, "rules", rules);
	JADD(o, "dryRun", json_object_new_boolean(p->dry_run));
	return o;
}

static json_object *cd_time(int64_t t)
{
	char buf[32];
	struct tm tm;
	time_t tt = (time_t)t;

	gmtime_r(&tt, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return JS(buf);
}

/* The identity provider's list reshaped as the reference's certificates[]. */
static json_object *cd_certs(struct zt *zt)
{
	char *txt = zt_identity_certs_json(zt);
	json_object *in = txt ? json_tokener_parse(txt) : NULL, *out = json_object_new_array();

	for (size_t i = 0;
	     in && json_object_is_type(in, json_type_array) && i < json_object_array_length(in);
	     i++) {
		json_object *e = json_object_array_get_idx(in, i), *c = json_object_new_object(),
			    *chain = json_object_new_array(), *v;

		JADD(c, "identity",
		     JS(json_object_object_get_ex(e, "identity", &v) ? json_object_get_string(v)
								     : ""));
		JADD(
		    c, "state",
		    JS(json_object_object_get_ex(e, "state", &v) ? json_object_get_string(v) : ""));
		if (json_object_object_get_ex(e, "serial", &v)) {
			json_object *leaf = json_object_new_object(), *t;

			JADD(leaf, "serialNumber", JS(json_object_get_string(v)));
			if (json_object_object_get_ex(e, "not_before", &t))
				JADD(leaf, "validFrom", cd_time(json_object_get_int64(t)));
			if (json_object_object_get_ex(e, "not_after", &t))
				JADD(leaf, "expirationTime", cd_time(json_object_get_int64(t)));
			json_object_array_add(chain, leaf);
		}
		JADD(c, "certChain", chain);
		JADD(c, "rootCerts", json_object_new_array());
		json_object_array_add(out, c);
	}
	json_object_put(in);
	free(txt);
	return out;
}

char *zt_config_dump(struct zt *zt)
{
	struct zt_snap *s = zt_state_get();
	json_object *o = json_object_new_object(), *wls = json_object_new_array(),
		    *svcs = json_object_new_array(), *pols = json_object_new_array();
	char *enrolled = zt_enroll_dump(), *xds = zt_xds_dump(), *kube = zt_kube_dump(), *out;
	size_t i;

	JADD(o, "node", JS(zt->opts.node));
	JADD(o, "config", JS(zt->opts.config ?: zt->opts.xds_address ?: "kubernetes"));
	JADD(o, "generation", json_object_new_int64((int64_t)s->generation));
	JADD(o, "workers", json_object_new_int(zt->n_workers));
	JADD(o, "mtls", json_object_new_boolean(zt->idp != NULL));
	JADD(o, "pool_idle_ms", json_object_new_int(zt->opts.pool_idle_ms));
	JADD(o, "pool_connections", json_object_new_int(atomic_load(&zt->pool_conns)));
	JADD(o, "hbone_inbound_connections", json_object_new_int(atomic_load(&zt->hbone_inbound)));
	for (i = 0; i < s->cfg->n_workloads; i++)
		json_object_array_add(wls, cd_workload(&s->cfg->workloads[i]));
	for (i = 0; i < s->cfg->n_services; i++)
		json_object_array_add(svcs, cd_service(s->cfg, &s->cfg->services[i]));
	for (i = 0; i < s->cfg->n_policies; i++)
		json_object_array_add(pols, cd_policy(&s->cfg->policies[i]));
	JADD(o, "workloads", wls);
	JADD(o, "services", svcs);
	JADD(o, "policies", pols);
	JADD(o, "certificates", cd_certs(zt));
	JADD(o, "enrolled", enrolled ? json_tokener_parse(enrolled) : NULL);
	JADD(o, "xds", xds ? json_tokener_parse(xds) : NULL);
	if (zt_kube_enabled(zt))
		JADD(o, "kubernetes", kube ? json_tokener_parse(kube) : NULL);
	out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
	json_object_put(o);
	free(enrolled);
	free(xds);
	free(kube);
	zt_state_put(s);
	return out;
}
