// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of the local config loader (userspace/lib/config): our loopback example
 * tests/data/config/localhost.yaml loads with every reference resolved,
 * tests/data/config/full.yaml exercises every field, and a table
 * of broken inputs pins the exact "FILE:LINE: field.path: problem" message of each refusal.
 * Runs from the repository root (tests/run.sh does).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/tap.h"
#include "common/addr.h"
#include "config/config.h"

#define ERRLEN 4096

static struct zm_addr A(const char *text) {
	struct zm_addr a;

	if (zm_addr_parse(text, &a))
		tap_bail("bad address literal in test: %s", text);
	return a;
}

static const struct zm_cfg_port *
port_of(const struct zm_cfg_port *v, size_t n, unsigned int sp)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (v[i].service_port == sp)
			return &v[i];
	return NULL;
}

static void test_localhost(void)
{
	const char *path = "tests/data/config/localhost.yaml";
	char err[ERRLEN], id[256];
	const struct zm_cfg_workload *w;
	const struct zm_cfg_service *s;
	const struct zm_cfg_policy *p;
	struct zm_config *cfg = NULL;
	struct zm_addr a;
	int r;

	r = zm_config_load_file(path, &cfg, err, sizeof(err));
	if (!is_int(r, 0, "localhost.yaml loads"))
		printf("#   %s\n", err);
	if (!cfg)
		tap_bail("cannot continue without localhost.yaml (%s)", path);
	is_int(cfg->n_workloads, 2, "localhost: 2 workloads");
	is_int(cfg->n_services, 2, "localhost: 2 services");
	is_int(cfg->n_policies, 1, "localhost: 1 policy");

	w = &cfg->workloads[0];
	is_str(w->uid, "laptop//v1/Pod/shop/web", "workload 0 uid");
	is_str(w->name, "web", "workload 0 name");
	is_str(w->namespace, "shop", "workload 0 namespace");
	is_str(w->service_account, "web", "workload 0 serviceAccount");
	is_str(w->trust_domain, "cluster.local", "workload 0 trustDomain defaults");
	is_str(w->network, "", "workload 0 network is empty");
	is_str(w->node, "laptop", "workload 0 node");
	is_int(w->protocol, ZM_CFG_PROTO_HBONE, "workload 0 protocol HBONE");
	is_int(w->capacity, 1, "workload 0 capacity defaults to 1");
	is_int(w->status, ZM_CFG_HEALTHY, "workload 0 status defaults to Healthy");
	ok(!w->waypoint.present, "workload 0 has no waypoint");
	is_int(w->n_ips, 1, "workload 0 has one IP");
	a = A("127.0.0.1");
	ok(w->n_ips == 1 && zm_addr_equal(&w->ips[0].addr, &a), "workload 0 IP is 127.0.0.1");
	is_int(w->n_services, 2, "workload 0 is in 2 services");
	if (w->n_services == 2) {
		is_str(w->services[0].key, "shop/web.shop.svc.cluster.local",
		       "workload 0 service key");
		ok(w->services[0].service == &cfg->services[0], "service ref resolved");
		ok(w->services[1].service == &cfg->services[1], "second service ref resolved");
		is_int(w->services[0].n_ports, 1, "one port mapping");
		ok(port_of(w->services[0].ports, w->services[0].n_ports, 80) &&
		       port_of(w->services[0].ports, w->services[0].n_ports, 80)->target_port ==
			   8080,
		   "80 -> 8080");
	}
	zm_cfg_workload_identity(w, id, sizeof(id));
	is_str(id, "spiffe://cluster.local/ns/shop/sa/web", "workload identity");
	is_int(cfg->workloads[1].protocol, ZM_CFG_PROTO_TCP, "workload 1 protocol TCP");

	a = A("127.0.0.2");
	ok(zm_config_workload_by_ip(cfg, "", &a) == &cfg->workloads[1], "lookup 127.0.0.2");
	ok(zm_config_workload_by_ip(cfg, NULL, &a) == &cfg->workloads[1], "NULL network is \"\"");
	ok(!zm_config_workload_by_ip(cfg, "edge", &a), "no 127.0.0.2 on network edge");
	a = A("127.0.0.3");
	ok(!zm_config_workload_by_ip(cfg, "", &a), "no workload at 127.0.0.3");
	ok(zm_config_workload_by_uid(cfg, "laptop//v1/Pod/shop/legacy") == &cfg->workloads[1],
	   "lookup by uid");

	s = zm_config_service_by_key(cfg, "shop/web.shop.svc.cluster.local");
	ok(s == &cfg->services[0], "service by key");
	if (s) {
		is_str(s->name, "web", "service name");
		is_str(s->hostname, "web.shop.svc.cluster.local", "service hostname");
		ok(s->canonical, "service canonical: true");
		is_int(s->n_vips, 1, "one VIP");
		is_str(s->vips[0].vip.network, "", "VIP on the default network");
		is_int(s->n_subject_alt_names, 1, "one SAN");
		if (s->n_subject_alt_names)
			is_str(s->subject_alt_names[0], "spiffe://cluster.local/ns/shop/sa/web",
			       "SAN text");
	}
	a = A("127.10.0.1");
	ok(zm_config_service_by_vip(cfg, "", &a) == &cfg->services[0], "service by VIP");
	a = A("127.10.0.2");
	ok(zm_config_service_by_vip(cfg, "edge", &a) == &cfg->services[1],
	   "service by VIP on network edge");
	ok(!zm_config_service_by_vip(cfg, "", &a), "VIP network matters");

	p = zm_config_policy_by_key(cfg, "shop/no-debug-port");
	ok(p == &cfg->policies[0], "policy by key");
	if (p) {
		is_int(p->action, ZM_CFG_ACTION_ALLOW, "policy action Allow");
		is_int(p->scope, ZM_CFG_SCOPE_NAMESPACE, "policy scope Namespace");
		ok(!p->dry_run, "dryRun false");
		ok(p->n_rules == 1 && p->rules[0].n_clauses == 1 &&
		       p->rules[0].clauses[0].n_matches == 1,
		   "rules nest rule -> clause -> match");
		if (p->n_rules == 1 && p->rules[0].n_clauses == 1 &&
		    p->rules[0].clauses[0].n_matches == 1) {
			const struct zm_cfg_match *m = &p->rules[0].clauses[0].matches[0];

			ok(m->not_destination_ports.n == 1 && m->not_destination_ports.v[0] == 9999,
			   "notDestinationPorts [9999]");
			ok(!m->destination_ports.n && !m->principals.n, "other attributes empty");
		}
	}
	zm_config_free(cfg);
}

static bool cidr_is(const struct zm_cfg_cidr *c, const char *addr, unsigned int len)
{
	struct zm_addr a = A(addr);

	return zm_addr_equal(&c->addr, &a) && c->prefix_len == len;
}

static void test_full_policies(const struct zm_config *cfg)
{
	const struct zm_cfg_policy *p = zm_config_policy_by_key(cfg, "ns1/allow-client");
	const struct zm_cfg_match *m, *m2;

	if (!ok(p && p->n_rules == 2 && p->rules[0].n_clauses == 1 &&
		    p->rules[0].clauses[0].n_matches == 2 && p->rules[1].n_clauses == 1,
		"allow-client shape"))
		return;
	is_int(p->scope, ZM_CFG_SCOPE_WORKLOAD_SELECTOR, "scope WorkloadSelector");
	m = &p->rules[0].clauses[0].matches[0];
	ok(m->namespaces.n == 2 && m->namespaces.v[0].kind == ZM_CFG_STR_EXACT &&
	       !strcmp(m->namespaces.v[0].value, "ns1") &&
	       m->namespaces.v[1].kind == ZM_CFG_STR_PREFIX &&
	       !strcmp(m->namespaces.v[1].value, "team-"),
	   "namespaces Exact + Prefix");
	ok(m->not_namespaces.n == 1 && m->not_namespaces.v[0].kind == ZM_CFG_STR_SUFFIX &&
	       !strcmp(m->not_namespaces.v[0].value, "-test"),
	   "notNamespaces Suffix");
	ok(m->principals.n == 3 && m->principals.v[0].kind == ZM_CFG_STR_EXACT &&
	       m->principals.v[1].kind == ZM_CFG_STR_PREFIX &&
	       !strcmp(m->principals.v[1].value, "example.org/ns/") &&
	       m->principals.v[2].kind == ZM_CFG_STR_PRESENCE &&
	       !strcmp(m->principals.v[2].value, ""),
	   "principals Exact, tagged !Prefix, Presence");
	ok(m->not_principals.n == 1 && m->not_principals.v[0].kind == ZM_CFG_STR_SUFFIX,
	   "notPrincipals");
	m2 = &p->rules[0].clauses[0].matches[1];
	ok(m2->service_accounts.n == 1 && !strcmp(m2->service_accounts.v[0].namespace, "ns1") &&
	       !strcmp(m2->service_accounts.v[0].service_account, "client"),
	   "serviceAccounts");
	ok(m2->not_service_accounts.n == 1 &&
	       !strcmp(m2->not_service_accounts.v[0].service_account, "bad"),
	   "notServiceAccounts");
	if (!ok(p->rules[1].clauses[0].n_matches == 1, "second rule has one group"))
		return;
	m = &p->rules[1].clauses[0].matches[0];
	ok(m->source_ips.n == 3 && cidr_is(&m->source_ips.v[0], "198.18.0.0", 24) &&
	       cidr_is(&m->source_ips.v[1], "2001:2::", 48) &&
	       cidr_is(&m->source_ips.v[2], "198.18.1.7", 32),
	   "sourceIps v4, v6, bare address");
	ok(m->not_source_ips.n == 1 && cidr_is(&m->not_source_ips.v[0], "198.18.0.99", 32),
	   "notSourceIps");
	ok(m->destination_ips.n == 1 && cidr_is(&m->destination_ips.v[0], "198.18.0.20", 31),
	   "destinationIps");
	ok(m->not_destination_ips.n == 1 &&
	       cidr_is(&m->not_destination_ips.v[0], "2001:2::dead", 128),
	   "notDestinationIps");
	ok(m->destination_ports.n == 2 && m->destination_ports.v[0] == 8080 &&
	       m->destination_ports.v[1] == 8443,
	   "destinationPorts");
	ok(m->not_destination_ports.n == 1 && m->not_destination_ports.v[0] == 9999,
	   "notDestinationPorts");

	p = zm_config_policy_by_key(cfg, "ns1/deny-bad");
	ok(p && p->action == ZM_CFG_ACTION_DENY && p->dry_run && p->n_rules == 1 &&
	       p->rules[0].clauses[0].matches[0].principals.n == 2 &&
	       p->rules[0].clauses[0].matches[0].principals.v[1].kind == ZM_CFG_STR_PRESENCE,
	   "deny-bad: Deny, dryRun, tagged !Exact and !Presence");
	p = zm_config_policy_by_key(cfg, "istio-system/global-empty");
	ok(p && p->scope == ZM_CFG_SCOPE_GLOBAL && p->n_rules == 0 && !p->dry_run,
	   "rules and dryRun are optional");
}

static void test_full(void)
{
	const char *path = "tests/data/config/full.yaml";
	const struct zm_cfg_workload *w, *srv;
	const struct zm_cfg_service *s;
	struct zm_config *cfg = NULL;
	char err[ERRLEN], id[256];
	struct zm_addr a;
	int r;

	r = zm_config_load_file(path, &cfg, err, sizeof(err));
	if (!is_int(r, 0, "full.yaml loads"))
		printf("#   %s\n", err);
	if (!cfg)
		tap_bail("cannot continue without %s", path);
	is_int(cfg->n_workloads, 5, "full: 5 workloads");

	w = &cfg->workloads[0];
	zm_cfg_workload_identity(w, id, sizeof(id));
	is_str(id, "spiffe://example.org/ns/ns1/sa/client", "identity uses trustDomain and SA");
	is_int(w->capacity, 3, "capacity 3");
	is_str(w->locality.zone, "z1", "locality zone");
	is_str(w->workload_type, "deployment", "workloadType");
	ok(w->n_labels == 2 && !strcmp(w->labels[1].key, "version") &&
	       !strcmp(w->labels[1].value, "v1"),
	   "labels");
	a = A("2001:2::10");
	ok(zm_config_workload_by_ip(cfg, "", &a) == w, "IPv6 workload lookup");
	a = A("198.18.0.10");
	ok(zm_config_workload_by_ip(cfg, "", &a) == w, "IPv4 lookup of a dual-stack workload");

	srv = &cfg->workloads[1];
	ok(srv->waypoint.present && srv->waypoint.is_hostname &&
	       !strcmp(srv->waypoint.namespace, "ns1") &&
	       srv->waypoint.service ==
		   zm_config_service_by_key(cfg, "ns1/waypoint.ns1.svc.cluster.local"),
	   "hostname waypoint resolved");
	is_int(srv->status, ZM_CFG_UNHEALTHY, "status Unhealthy");
	ok(srv->n_policies == 2 &&
	       srv->policies[1].policy == zm_config_policy_by_key(cfg, "ns1/deny-bad"),
	   "authorizationPolicies resolved");
	ok(srv->n_services == 1 && port_of(srv->services[0].ports, srv->services[0].n_ports, 443) &&
	       port_of(srv->services[0].ports, srv->services[0].n_ports, 443)->target_port == 8443,
	   "quoted port key \"443\" accepted");
	a = A("198.18.0.20");
	ok(zm_config_workload_by_ip(cfg, "net1", &a) == srv, "lookup on network net1");
	ok(!zm_config_workload_by_ip(cfg, "", &a), "not on the default network");

	w = &cfg->workloads[2];
	ok(w->waypoint.present && !w->waypoint.is_hostname &&
	       !strcmp(w->waypoint.address.network, "net1") && w->waypoint.hbone_mtls_port == 15008,
	   "address waypoint, hboneMtlsPort defaults to 15008");
	ok(w->application_tunnel.present &&
	       w->application_tunnel.protocol == ZM_CFG_APP_TUNNEL_PROXY &&
	       w->application_tunnel.port == 15088,
	   "applicationTunnel");
	a = A("198.18.0.40");
	ok(!zm_config_workload_by_ip(cfg, "", &a), "HostNetwork workloads are not indexed by IP");

	s = zm_config_service_by_key(cfg, "ns1/server.ns1.svc.cluster.local");
	ok(s && s->waypoint.present && s->waypoint.hbone_mtls_port == 15009 &&
	       !strcmp(s->waypoint.address.network, ""),
	   "service waypoint");
	ok(s && s->load_balancer.present && s->load_balancer.mode == ZM_CFG_LB_FAILOVER &&
	       s->load_balancer.health_policy == ZM_CFG_LB_ALLOW_ALL &&
	       s->load_balancer.n_routing_preferences == 6 &&
	       s->load_balancer.routing_preferences[0] == ZM_CFG_LB_NETWORK,
	   "loadBalancer");
	ok(s && s->ip_families == ZM_CFG_IPFAM_DUAL, "ipFamilies Dual");
	a = A("2001:2::a:1");
	ok(zm_config_service_by_vip(cfg, "net1", &a) == s, "IPv6 VIP lookup");
	test_full_policies(cfg);
	zm_config_free(cfg);
}

/* A minimal valid workload (lines 1-5), to which each case appends. */
#define WL "workloads:\n- uid: u1\n  name: w1\n  namespace: ns\n  workloadIps: [\"10.0.0.1\"]\n"
#define SVC                                                                                        \
	"services:\n- name: s\n  namespace: ns\n  hostname: s.example\n  vips: [\"/10.1.0.1\"]\n"  \
	"  ports: {80: 8080}\n"
#define POL "policies:\n- name: p\n  namespace: ns\n  scope: Global\n  action: Allow\n"

struct bad_case {
	const char *desc;
	const char *yaml;
	const char *want; /* the whole error text */
};

static const struct bad_case bad_cases[] = {
    {"unknown protocol", WL "  protocol: HTTP\n",
     "cfg.yaml:6: workloads[0].protocol: unknown value \"HTTP\" (want TCP or HBONE)"},
    {"unknown field", WL "  foo: 1\n", "cfg.yaml:6: workloads[0].foo: unknown field"},
    {"field given twice", WL "  name: w2\n", "cfg.yaml:6: workloads[0].name: field given twice"},
    {"string instead of list",
     "workloads:\n- uid: u1\n  name: w1\n  namespace: ns\n"
     "  workloadIps: 10.0.0.1\n",
     "cfg.yaml:5: workloads[0].workloadIps: expected a list, got \"10.0.0.1\""},
    {"bad IP",
     "workloads:\n- uid: u1\n  name: w1\n  namespace: ns\n"
     "  workloadIps: [10.0.0.256]\n",
     "cfg.yaml:5: workloads[0].workloadIps[0]: invalid IP address \"10.0.0.256\""},
    {"missing namespace", "workloads:\n- uid: u1\n  name: w1\n  workloadIps: []\n",
     "cfg.yaml:2: workloads[0].namespace: missing required field"},
    {"missing workloadIps", "workloads:\n- uid: u1\n  name: w1\n  namespace: ns\n",
     "cfg.yaml:2: workloads[0].workloadIps: missing required field"},
    {"empty namespace",
     "workloads:\n- uid: u1\n  name: w1\n  namespace: \"\"\n"
     "  workloadIps: []\n",
     "cfg.yaml:4: workloads[0].namespace: must not be empty"},
    {"null required field",
     "workloads:\n- uid:\n  name: w1\n  namespace: ns\n"
     "  workloadIps: []\n",
     "cfg.yaml:2: workloads[0].uid: required field is null"},
    {"workload is a scalar", "workloads:\n- just-a-name\n",
     "cfg.yaml:2: workloads[0]: expected a mapping, got \"just-a-name\""},
    {"non-integer target port", SVC WL "  services: {\"ns/s.example\": {80: http}}\n",
     "cfg.yaml:12: workloads[0].services[\"ns/s.example\"][80]: expected an integer, "
     "got \"http\""},
    {"float port", SVC WL "  services: {\"ns/s.example\": {80: 80.5}}\n",
     "cfg.yaml:12: workloads[0].services[\"ns/s.example\"][80]: expected an integer, "
     "got \"80.5\""},
    {"quoted target port", SVC WL "  services: {\"ns/s.example\": {80: \"8080\"}}\n",
     "cfg.yaml:12: workloads[0].services[\"ns/s.example\"][80]: expected an integer, "
     "got \"8080\""},
    {"port out of range", SVC WL "  services: {\"ns/s.example\": {80: 70000}}\n",
     "cfg.yaml:12: workloads[0].services[\"ns/s.example\"][80]: port 70000 out of range "
     "(want 1..65535)"},
    {"port zero",
     "services:\n- name: s\n  namespace: ns\n  hostname: h\n  vips: []\n"
     "  ports: {0: 80}\n",
     "cfg.yaml:6: services[0].ports[0]: port 0 out of range (want 1..65535)"},
    {"negative port",
     "services:\n- name: s\n  namespace: ns\n  hostname: h\n  vips: []\n"
     "  ports: {80: -1}\n",
     "cfg.yaml:6: services[0].ports[80]: port -1 out of range (want 1..65535)"},
    {"huge number", WL "  capacity: 99999999999999999999999999999999\n",
     "cfg.yaml:6: workloads[0].capacity: value 999999999999999999999999... out of range "
     "(want 0..4294967295)"},
    {"service port twice",
     "services:\n- name: s\n  namespace: ns\n  hostname: h\n"
     "  vips: []\n  ports:\n    80: 1\n    080: 2\n",
     "cfg.yaml:8: services[0].ports[080]: service port 80 given twice"},
    {"quoted key twice",
     "services:\n- name: s\n  namespace: ns\n  hostname: h\n"
     "  vips: []\n  ports:\n    80: 1\n    \"80\": 2\n",
     "cfg.yaml:8: services[0].ports[80]: key given twice (first at line 7)"},
    {"map key twice",
     "services:\n- name: s\n  namespace: ns\n  hostname: h\n"
     "  vips: []\n  ports:\n    80: 1\n    80: 2\n",
     "cfg.yaml:8: services[0].ports[80]: key given twice (first at line 7)"},
    {"dangling service", WL "  services: {\"ns/nope\": {80: 8080}}\n",
     "cfg.yaml:6: workloads[0].services[\"ns/nope\"]: unknown service \"ns/nope\""},
    {"bad service key", WL "  services: {nope: {80: 8080}}\n",
     "cfg.yaml:6: workloads[0].services[\"nope\"]: invalid service key \"nope\" "
     "(want <namespace>/<hostname>)"},
    {"dangling policy", WL "  authorizationPolicies: [ns/missing]\n",
     "cfg.yaml:6: workloads[0].authorizationPolicies[0]: unknown policy \"ns/missing\""},
    {"duplicate uid", WL "- uid: u1\n  name: w2\n  namespace: ns\n  workloadIps: []\n",
     "cfg.yaml:6: workloads[1].uid: duplicate uid \"u1\" (first defined by workloads[0], "
     "line 2)"},
    {"duplicate IP",
     WL "- uid: u2\n  name: w2\n  namespace: ns\n"
	"  workloadIps: [\"10.0.0.1\"]\n",
     "cfg.yaml:9: workloads[1].workloadIps[0]: address 10.0.0.1 on network \"\" already "
     "used by workloads[0].workloadIps[0] (line 5)"},
    {"bad waypoint", WL "  waypoint: {destination: nope}\n",
     "cfg.yaml:6: workloads[0].waypoint.destination: invalid destination \"nope\" (want "
     "<network>/<ip> or <namespace>/<hostname>)"},
    {"dangling waypoint", WL "  waypoint: {destination: ns/wp.example}\n",
     "cfg.yaml:6: workloads[0].waypoint.destination: unknown service \"ns/wp.example\""},
    {"waypoint port", WL "  waypoint: {destination: /10.0.0.9, hboneMtlsPort: 0}\n",
     "cfg.yaml:6: workloads[0].waypoint.hboneMtlsPort: port 0 out of range (want 1..65535)"},
    {"bad status", WL "  status: Dead\n",
     "cfg.yaml:6: workloads[0].status: unknown value \"Dead\" (want Healthy or Unhealthy)"},
    {"bool as string", WL "  nativeTunnel: yes\n",
     "cfg.yaml:6: workloads[0].nativeTunnel: expected true or false, got \"yes\""},
    {"labels value", WL "  labels: {app: [a]}\n",
     "cfg.yaml:6: workloads[0].labels[\"app\"]: expected a string, got a list"},
    {"NUL in string",
     "workloads:\n- uid: \"a\\0b\"\n  name: w\n  namespace: ns\n"
     "  workloadIps: []\n",
     "cfg.yaml:2: workloads[0].uid: string contains a NUL character"},
    {"bad VIP",
     "services:\n- name: s\n  namespace: ns\n  hostname: h\n"
     "  vips: [10.1.0.1]\n  ports: {}\n",
     "cfg.yaml:5: services[0].vips[0]: invalid VIP \"10.1.0.1\" (want <network>/<ip>)"},
    {"service without ports", "services:\n- name: s\n  namespace: ns\n  hostname: h\n  vips: []\n",
     "cfg.yaml:2: services[0].ports: missing required field"},
    {"duplicate service",
     SVC "- name: s2\n  namespace: ns\n  hostname: s.example\n"
	 "  vips: []\n  ports: {}\n",
     "cfg.yaml:7: services[1]: duplicate service \"ns/s.example\" (first defined by "
     "services[0], line 2)"},
    {"duplicate VIP",
     SVC "- name: s2\n  namespace: ns\n  hostname: s2.example\n"
	 "  vips: [\"/10.1.0.1\"]\n  ports: {}\n",
     "cfg.yaml:10: services[1].vips[0]: address 10.1.0.1 on network \"\" already used by "
     "services[0].vips[0] (line 5)"},
    {"bad ipFamilies", SVC "  ipFamilies: IPv5\n",
     "cfg.yaml:7: services[0].ipFamilies: unknown value \"IPv5\" (want Dual, IPv4 or IPv6)"},
    {"bad lb mode", SVC "  loadBalancer: {mode: Random}\n",
     "cfg.yaml:7: services[0].loadBalancer.mode: unknown value \"Random\" (want Standard, "
     "Strict, Failover or Passthrough)"},
    {"bad scope", "policies:\n- name: p\n  namespace: ns\n  scope: Cluster\n  action: Allow\n",
     "cfg.yaml:4: policies[0].scope: unknown value \"Cluster\" (want Global, Namespace or "
     "WorkloadSelector)"},
    {"bad action", "policies:\n- name: p\n  namespace: ns\n  scope: Global\n  action: Audit\n",
     "cfg.yaml:5: policies[0].action: unknown value \"Audit\" (want Allow or Deny)"},
    {"missing action", "policies:\n- name: p\n  namespace: ns\n  scope: Global\n",
     "cfg.yaml:2: policies[0].action: missing required field"},
    {"duplicate policy", POL "- name: p\n  namespace: ns\n  scope: Global\n  action: Deny\n",
     "cfg.yaml:6: policies[1]: duplicate policy \"ns/p\" (first defined by policies[0], "
     "line 2)"},
    {"rules not a list", POL "  rules: allow-all\n",
     "cfg.yaml:6: policies[0].rules: expected a list, got \"allow-all\""},
    {"bad CIDR", POL "  rules: [[[{sourceIps: [10.0.0.0/33]}]]]\n",
     "cfg.yaml:6: policies[0].rules[0][0][0].sourceIps[0]: invalid CIDR \"10.0.0.0/33\""},
    {"CIDR with space", POL "  rules: [[[{destinationIps: [\"10.0.0.0/ 8\"]}]]]\n",
     "cfg.yaml:6: policies[0].rules[0][0][0].destinationIps[0]: invalid CIDR "
     "\"10.0.0.0/ 8\""},
    {"unknown matcher", POL "  rules: [[[{principals: [{Regex: \".*\"}]}]]]\n",
     "cfg.yaml:6: policies[0].rules[0][0][0].principals[0]: unknown string match "
     "\"Regex\" (want Exact, Prefix, Suffix or Presence)"},
    {"matcher as plain string", POL "  rules: [[[{namespaces: [ns1]}]]]\n",
     "cfg.yaml:6: policies[0].rules[0][0][0].namespaces[0]: expected a string match "
     "(Exact, Prefix, Suffix or Presence), got a scalar"},
    {"presence with value", POL "  rules: [[[{namespaces: [{Presence: x}]}]]]\n",
     "cfg.yaml:6: policies[0].rules[0][0][0].namespaces[0].Presence: Presence takes no "
     "value (write Presence: {})"},
    {"unknown match key", POL "  rules: [[[{ports: [80]}]]]\n",
     "cfg.yaml:6: policies[0].rules[0][0][0].ports: unknown field"},
    {"quoted port in rule", POL "  rules: [[[{notDestinationPorts: [\"80\"]}]]]\n",
     "cfg.yaml:6: policies[0].rules[0][0][0].notDestinationPorts[0]: expected an integer, "
     "got \"80\""},
    {"service account match", POL "  rules: [[[{serviceAccounts: [{namespace: ns}]}]]]\n",
     "cfg.yaml:6: policies[0].rules[0][0][0].serviceAccounts[0].serviceAccount: missing "
     "required field"},
    {"rule not nested", POL "  rules: [{principals: []}]\n",
     "cfg.yaml:6: policies[0].rules[0]: expected a list, got a mapping"},
    {"dryRun string", POL "  dryRun: \"false\"\n",
     "cfg.yaml:6: policies[0].dryRun: expected true or false, got \"false\""},
    {"top-level scalar", "hello\n",
     "cfg.yaml:1: (root): expected a mapping with workloads, services and policies, got "
     "a scalar"},
    {"top-level list", "- a\n- b\n",
     "cfg.yaml:1: (root): expected a mapping with workloads, services and policies, got "
     "a list"},
    {"unknown section", "endpoints: []\n", "cfg.yaml:1: endpoints: unknown field"},
    {"section not a list", "workloads: {}\n",
     "cfg.yaml:1: workloads: expected a list, got a mapping"},
    {"complex key", "? [a]\n: b\n", "cfg.yaml:1: (root): field names must be strings, got a list"},
    {"odd key in path", WL "  \"we\\nird\": 1\n",
     "cfg.yaml:6: workloads[0][\"we\\x0aird\"]: unknown field"},
    {"syntax error", "workloads: [\n",
     "cfg.yaml:2: (yaml): did not find expected node content (while parsing a flow node at "
     "line 2)"},
    {"bad indentation", "workloads:\n- uid: a\n name: b\n",
     "cfg.yaml:3: (yaml): did not find expected key (while parsing a block mapping at line 1)"},
    {"two documents", "workloads: []\n---\npolicies: []\n",
     "cfg.yaml:2: (yaml): more than one YAML document"},
    {"non-UTF-8", "workloads:\n- uid: \xff\n",
     "cfg.yaml:2: (yaml): invalid leading UTF-8 octet (byte 0xff at offset 18)"},
    {"control character", "workloads: \x01\n",
     "cfg.yaml:1: (yaml): control characters are not allowed (byte 0x01 at offset 11)"},
    {"undefined alias", "workloads: *nope\n", "cfg.yaml:1: (yaml): found undefined alias"},
};

static void test_bad_cases(void)
{
	size_t i;

	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		struct zm_config *cfg = (struct zm_config *)1;
		char err[ERRLEN];
		int r;

		r = zm_config_load_buf("cfg.yaml", c->yaml, strlen(c->yaml), &cfg, err,
				       sizeof(err));
		ok(r == -EINVAL && !cfg, "%s: refused", c->desc);
		is_str(err, c->want, "%s: message", c->desc);
	}
}

static int load(const char *yaml, size_t len, char *err, size_t errlen)
{
	struct zm_config *cfg = NULL;
	int r = zm_config_load_buf("cfg.yaml", yaml, len, &cfg, err, errlen);

	zm_config_free(cfg);
	return r;
}

/* Nesting, alias fan-out and size limits; several errors in one load. */
static void test_limits(void)
{
	char err[ERRLEN], *buf;
	size_t i, o;
	int r;

	buf = malloc(ZM_CFG_MAX_INPUT + 2);
	if (!buf)
		tap_bail("out of memory");

	o = (size_t)sprintf(buf, "workloads: ");
	for (i = 0; i < 100; i++)
		buf[o++] = '[';
	for (i = 0; i < 100; i++)
		buf[o++] = ']';
	buf[o++] = '\n';
	r = load(buf, o, err, sizeof(err));
	is_int(r, -EINVAL, "deep nesting refused");
	is_str(err, "cfg.yaml:1: (yaml): nested deeper than 32 levels", "deep nesting message");

	/* 50 x 50 x 50 match groups per policy, all aliases of one: millions of visits. */
	o = (size_t)sprintf(buf, "policies:\n- name: p0\n  namespace: n\n  scope: Global\n"
				 "  action: Allow\n  rules: &r\n  - &c\n    - &m\n"
				 "      - &g {principals: [{Exact: a}]}\n");
	for (i = 1; i < 50; i++)
		o += (size_t)sprintf(buf + o, "      - *g\n");
	for (i = 1; i < 50; i++)
		o += (size_t)sprintf(buf + o, "    - *m\n");
	for (i = 1; i < 50; i++)
		o += (size_t)sprintf(buf + o, "  - *c\n");
	for (i = 1; i < 40; i++)
		o += (size_t)sprintf(buf + o,
				     "- {name: p%zu, namespace: n, scope: Global, "
				     "action: Allow, rules: *r}\n",
				     i);
	r = load(buf, o, err, sizeof(err));
	is_int(r, -EINVAL, "alias fan-out refused");
	ok(strstr(err, "document expands to more than 2000000 nodes (aliases?)") != NULL,
	   "alias fan-out message: %s", err);

	/* Aliases within the budget are followed. */
	r = load("services:\n- name: s\n  namespace: ns\n  hostname: h\n  vips: []\n"
		 "  ports: &p {80: 8080}\n- name: s2\n  namespace: ns\n  hostname: h2\n"
		 "  vips: []\n  ports: *p\n",
		 strlen("services:\n- name: s\n  namespace: ns\n  hostname: h\n  vips: []\n"
			"  ports: &p {80: 8080}\n- name: s2\n  namespace: ns\n  hostname: h2\n"
			"  vips: []\n  ports: *p\n"),
		 err, sizeof(err));
	is_int(r, 0, "aliases are followed");

	memset(buf, '#', ZM_CFG_MAX_INPUT + 1);
	r = load(buf, ZM_CFG_MAX_INPUT + 1, err, sizeof(err));
	is_int(r, -EFBIG, "input over the size limit refused");
	is_str(err, "cfg.yaml: (file): 16777217 bytes is more than the 16777216 byte limit",
	       "size limit message");
	free(buf);

	r = load(WL "  protocol: HTTP\n  foo: 1\n- uid: u2\n", strlen(WL) + 34, err, sizeof(err));
	is_int(r, -EINVAL, "several errors refused");
	is_str(err,
	       "cfg.yaml:6: workloads[0].protocol: unknown value \"HTTP\" (want TCP or HBONE)\n"
	       "cfg.yaml:7: workloads[0].foo: unknown field\n"
	       "cfg.yaml:8: workloads[1].name: missing required field\n"
	       "cfg.yaml:8: workloads[1].namespace: missing required field\n"
	       "cfg.yaml:8: workloads[1].workloadIps: missing required field",
	       "every error is reported, in order");

	r = load(WL "  protocol: HTTP\n", strlen(WL) + 17, err, 16);
	is_int(r, -EINVAL, "small error buffer");
	is_str(err, "cfg.yaml:6: wor", "message truncated to the buffer");
	r = load(WL "  protocol: HTTP\n", strlen(WL) + 17, NULL, 0);
	is_int(r, -EINVAL, "no error buffer is fine");
}

static void test_empty_and_sources(void)
{
	/* What a file caught mid-write looks like: refused, never "no workloads". */
	static const char *const empties[] = {"", "# only a comment\n", "---\n", "{}\n",
					      "\n\n   \n"};
	struct zm_config_source *src;
	struct zm_config *cfg = NULL;
	char err[ERRLEN];
	size_t i;
	int r;

	for (i = 0; i < sizeof(empties) / sizeof(empties[0]); i++) {
		r = zm_config_load_buf("cfg.yaml", empties[i], strlen(empties[i]), &cfg, err,
				       sizeof(err));
		ok(r == -EINVAL && !cfg, "empty config %zu refused", i);
		ok(!strncmp(err, "cfg.yaml", 8) && strstr(err, ": (root): the config is empty (") &&
		       strstr(err, "says so: workloads: []"),
		   "empty config %zu: the message says how to write an empty config (%s)", i, err);
		zm_config_free(cfg);
		cfg = NULL;
	}
	r = zm_config_load_buf("cfg.yaml", NULL, 0, &cfg, err, sizeof(err));
	ok(r == -EINVAL && !cfg, "NULL buffer refused as empty");

	r = zm_config_load_buf("cfg.yaml", "workloads: []\nservices:\npolicies: []\n",
			       strlen("workloads: []\nservices:\npolicies: []\n"), &cfg, err,
			       sizeof(err));
	ok(r == 0 && cfg && !cfg->n_workloads && cfg->workloads_empty,
	   "workloads: [] is an explicit empty config");
	zm_config_free(cfg);
	r = zm_config_load_buf("cfg.yaml", "services: []\n", strlen("services: []\n"), &cfg, err,
			       sizeof(err));
	ok(r == 0 && cfg && !cfg->n_workloads && !cfg->workloads_empty,
	   "no workloads key: loads, but is not an explicit empty config");
	zm_config_free(cfg);
	r = zm_config_load_file("tests/data/config/localhost.yaml", &cfg, err, sizeof(err));
	ok(r == 0 && cfg && !cfg->workloads_empty, "a config with workloads is not empty");
	zm_config_free(cfg);

	r = zm_config_load_buf("cfg.yaml",
			       "workloads:\n- uid: a\n  name: a\n  namespace: n\n"
			       "  workloadIps: [10.0.0.1]\n  network: n1\n- uid: b\n  name: b\n"
			       "  namespace: n\n  workloadIps: [10.0.0.1]\n  network: n2\n",
			       strlen("workloads:\n- uid: a\n  name: a\n  namespace: n\n"
				      "  workloadIps: [10.0.0.1]\n  network: n1\n- uid: b\n"
				      "  name: b\n  namespace: n\n  workloadIps: [10.0.0.1]\n"
				      "  network: n2\n"),
			       &cfg, err, sizeof(err));
	is_int(r, 0, "one address on two networks is fine");
	zm_config_free(cfg);

	r = zm_config_load_file("tests/data/config/does-not-exist.yaml", &cfg, err, sizeof(err));
	is_int(r, -ENOENT, "missing file");
	is_str(err,
	       "tests/data/config/does-not-exist.yaml: (file): cannot read: No such file or "
	       "directory",
	       "missing file message");

	src = zm_config_source_file("tests/data/config/full.yaml");
	if (!ok(src != NULL, "file source created"))
		return;
	r = src->load(src, &cfg, err, sizeof(err));
	ok(r == 0 && cfg && cfg->n_workloads == 5, "file source loads a snapshot");
	zm_config_free(cfg);
	src->close(src);
}

int main(void)
{
	test_localhost();
	test_full();
	test_bad_cases();
	test_limits();
	test_empty_and_sources();
	return tap_done();
}
