// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of PeerAuthentication modes (lib/rbac peerauth.c, and what ztunnel's outbound
 * does with them in userspace/ztunnel/route.c, compiled in directly as test_ztunnel_route.c
 * does): the effective mode of a workload at a port for every scope (mesh-wide, namespace,
 * workload selector, a selector in the root namespace), port-level overrides both ways, UNSET
 * inheritance at each step, several files, dry runs; the evaluator and the kernel fast path
 * agreeing with those modes (STRICT inherited through UNSET, STRICT on one port under a
 * DISABLE namespace); refused inputs with their FILE:LINE messages; and DISABLE turning a
 * direct HBONE route into plain TCP while waypoint, same-node and service routes behave.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/tap.h"
#include "datapath/datapath.h"
#include "rbac/rbac.h"
#include "../../userspace/ztunnel/route.c"
#include "test_rbac_index.h"

#define ERRLEN 4096

/*
 * server and other in ns1 (different labels), twin in ns2 with server's labels, client on n1,
 * behind (ns1) with a waypoint that is no listed workload, svc with server as its endpoint.
 */
static const char cfg_text[] =
    "workloads:\n"
    "- {uid: s, name: server, namespace: ns1, protocol: HBONE, node: n2,\n"
    "   workloadIps: [198.18.2.10], labels: {app: server},\n"
    "   services: {\"ns1/svc.ns1.svc.cluster.local\": {80: 8080}}}\n"
    "- {uid: o, name: other, namespace: ns1, protocol: HBONE, node: n2,\n"
    "   workloadIps: [198.18.2.11], labels: {app: other}}\n"
    "- {uid: t, name: twin, namespace: ns2, protocol: HBONE, node: n2,\n"
    "   workloadIps: [198.18.2.20], labels: {app: server}}\n"
    "- {uid: c, name: client, namespace: ns1, protocol: HBONE, node: n1,\n"
    "   workloadIps: [198.18.1.10], labels: {app: server}}\n"
    "- {uid: b, name: behind, namespace: ns1, protocol: HBONE, node: n2,\n"
    "   workloadIps: [198.18.2.30], labels: {app: server},\n"
    "   waypoint: {destination: \"/198.18.2.99\"}}\n"
    "services:\n"
    "- {name: svc, namespace: ns1, hostname: svc.ns1.svc.cluster.local,\n"
    "   vips: [\"/198.18.100.1\"], ports: {80: 8080}}\n";

#define PA(name, ns)                                                                               \
	"apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"                             \
	"metadata: {name: " name ", namespace: " ns "}\n"
#define DOC	   "---\n"
#define MESH(mode) PA("default", "istio-system") "spec: {mtls: {mode: " mode "}}\n"
#define NS1(mode)  PA("ns", "ns1") "spec: {mtls: {mode: " mode "}}\n"
#define SEL	   "selector: {matchLabels: {app: server}}"
/* A workload policy in ns1 selecting app=server; more spec fields follow ", ...". */
#define WL(more)   PA("wl", "ns1") "spec: {" SEL more "}\n"

static struct zm_config *cfg;

static struct zm_addr A(const char *t) {
	struct zm_addr a;

	if (zm_addr_parse(t, &a))
		tap_bail("bad address %s", t);
	return a;
}

/* Up to two policy files, loaded as ztunnel loads --policy files. */
struct files {
	struct zm_rbac_set *set[2];
	const struct zm_rbac_set *v[2];
	struct zm_rbac_sources src;
};

static bool files_load(struct files *f, const char *a, const char *b, const char *what)
{
	const char *text[2] = {a, b};
	char err[ERRLEN];
	size_t i;

	memset(f, 0, sizeof(*f));
	f->src.cfg = cfg;
	f->src.sets = f->v;
	for (i = 0; i < 2 && text[i]; i++) {
		if (zm_rbac_load_buf(i ? "b.yaml" : "a.yaml", text[i], strlen(text[i]), &f->set[i],
				     err, sizeof(err))) {
			ok(0, "%s: policies load", what);
			printf("#   %s\n", err);
			return false;
		}
		f->v[f->src.n_sets++] = f->set[i];
	}
	return true;
}

static void files_free(struct files *f)
{
	zm_rbac_set_free(f->set[0]);
	zm_rbac_set_free(f->set[1]);
}

static const struct {
	const char *name, *file_a, *file_b, *wl;
	unsigned int port;
	enum zm_mtls_mode want;
	const char *by; /* deciding policy, "" for the default */
	bool port_level;
} mode_cases[] = {
    {"no PeerAuthentication: PERMISSIVE", NULL, NULL, "s", 8080, ZM_MTLS_PERMISSIVE, "", false},
    {"mesh-wide DISABLE", MESH("DISABLE"), NULL, "t", 8080, ZM_MTLS_DISABLE, "istio-system/default",
     false},
    {"namespace beats mesh", MESH("STRICT") DOC NS1("DISABLE"), NULL, "s", 8080, ZM_MTLS_DISABLE,
     "ns1/ns", false},
    {"namespace policy stays in its namespace", MESH("STRICT") DOC NS1("DISABLE"), NULL, "t", 8080,
     ZM_MTLS_STRICT, "istio-system/default", false},
    {"workload selector beats namespace", NS1("STRICT") DOC WL(", mtls: {mode: DISABLE}"), NULL,
     "s", 8080, ZM_MTLS_DISABLE, "ns1/wl", false},
    {"selector misses other labels", NS1("STRICT") DOC WL(", mtls: {mode: DISABLE}"), NULL, "o",
     8080, ZM_MTLS_STRICT, "ns1/ns", false},
    {"selector stays in its namespace", WL(", mtls: {mode: DISABLE}"), NULL, "t", 8080,
     ZM_MTLS_PERMISSIVE, "", false},
    {"selector in the root namespace selects everywhere",
     PA("wl", "istio-system") "spec: {" SEL ", mtls: {mode: DISABLE}}\n", NULL, "t", 8080,
     ZM_MTLS_DISABLE, "istio-system/wl", false},
    {"port-level STRICT beats the policy's DISABLE",
     WL(", mtls: {mode: DISABLE}, portLevelMtls: {8443: {mode: STRICT}}"), NULL, "s", 8443,
     ZM_MTLS_STRICT, "ns1/wl", true},
    {"  other ports keep the policy's DISABLE",
     WL(", mtls: {mode: DISABLE}, portLevelMtls: {8443: {mode: STRICT}}"), NULL, "s", 8080,
     ZM_MTLS_DISABLE, "ns1/wl", false},
    {"port-level DISABLE beats the policy's STRICT",
     WL(", mtls: {mode: STRICT}, portLevelMtls: {\"8080\": {mode: DISABLE}}"), NULL, "s", 8080,
     ZM_MTLS_DISABLE, "ns1/wl", true},
    {"  other ports keep the policy's STRICT",
     WL(", mtls: {mode: STRICT}, portLevelMtls: {\"8080\": {mode: DISABLE}}"), NULL, "s", 9090,
     ZM_MTLS_STRICT, "ns1/wl", false},
    {"workload UNSET inherits the namespace",
     NS1("DISABLE") DOC WL(", mtls: {mode: UNSET}, portLevelMtls: {8443: {mode: STRICT}}"), NULL,
     "s", 8080, ZM_MTLS_DISABLE, "ns1/ns", false},
    {"  while its port-level STRICT holds",
     NS1("DISABLE") DOC WL(", mtls: {mode: UNSET}, portLevelMtls: {8443: {mode: STRICT}}"), NULL,
     "s", 8443, ZM_MTLS_STRICT, "ns1/wl", true},
    {"workload without mtls inherits (mesh through UNSET namespace)",
     MESH("DISABLE") DOC NS1("UNSET") DOC WL(""), NULL, "s", 8080, ZM_MTLS_DISABLE,
     "istio-system/default", false},
    {"namespace UNSET inherits the mesh", MESH("STRICT") DOC NS1("UNSET"), NULL, "s", 8080,
     ZM_MTLS_STRICT, "istio-system/default", false},
    {"port-level UNSET inherits the policy's mode",
     WL(", mtls: {mode: DISABLE}, portLevelMtls: {8443: {mode: UNSET}}"), NULL, "s", 8443,
     ZM_MTLS_DISABLE, "ns1/wl", false},
    {"port-level UNSET under UNSET inherits the namespace",
     NS1("STRICT") DOC WL(", portLevelMtls: {8443: {mode: UNSET}}"), NULL, "s", 8443,
     ZM_MTLS_STRICT, "ns1/ns", false},
    {"UNSET everywhere: PERMISSIVE", MESH("UNSET") DOC NS1("UNSET"), NULL, "s", 8080,
     ZM_MTLS_PERMISSIVE, "", false},
    {"levels across files", MESH("STRICT"), NS1("DISABLE"), "s", 8080, ZM_MTLS_DISABLE, "ns1/ns",
     false},
    {"first of two namespace policies wins", NS1("DISABLE"),
     PA("ns-b", "ns1") "spec: {mtls: {mode: STRICT}}\n", "s", 8080, ZM_MTLS_DISABLE, "ns1/ns",
     false},
    {"dry-run policy is not in force",
     NS1("STRICT") DOC
     "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
     "metadata: {name: dry, namespace: ns1, annotations: {istio.io/dry-run: \"true\"}}\n"
     "spec: {" SEL ", mtls: {mode: DISABLE}}\n",
     NULL, "s", 8080, ZM_MTLS_STRICT, "ns1/ns", false},
    {"AuthorizationPolicy has no say",
     "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
     "metadata: {name: deny, namespace: ns1}\nspec: {action: DENY, rules: [{}]}\n",
     NULL, "s", 8080, ZM_MTLS_PERMISSIVE, "", false},
};

static void test_modes(void)
{
	const struct zm_rbac_policy *by;
	struct files f;
	bool pl;
	size_t i;

	for (i = 0; i < sizeof(mode_cases) / sizeof(mode_cases[0]); i++) {
		enum zm_mtls_mode m;

		if (!files_load(&f, mode_cases[i].file_a, mode_cases[i].file_b, mode_cases[i].name))
			continue;
		m = zm_rbac_mtls_mode(&f.src, zm_config_workload_by_uid(cfg, mode_cases[i].wl),
				      mode_cases[i].port, &by, &pl);
		is_str(zm_mtls_mode_name(m), zm_mtls_mode_name(mode_cases[i].want), "%s",
		       mode_cases[i].name);
		is_str(by ? by->key : "", mode_cases[i].by, "%s: decided by", mode_cases[i].name);
		is_int(pl, mode_cases[i].port_level, "%s: port-level %s", mode_cases[i].name,
		       mode_cases[i].port_level ? "entry" : "not used");
		index_same_mode(&f.src, zm_config_workload_by_uid(cfg, mode_cases[i].wl),
				mode_cases[i].port, m, by, pl, mode_cases[i].name);
		files_free(&f);
	}
	is_str(zm_mtls_mode_name(ZM_MTLS_UNSET), "UNSET", "mode names: UNSET");
	is_str(zm_mtls_mode_name((enum zm_mtls_mode)9), "?", "mode names: out of range");
	ok(zm_rbac_mtls_mode(NULL, NULL, 80, &by, &pl) == ZM_MTLS_PERMISSIVE && !by && !pl,
	   "no sources, no workload: PERMISSIVE default");
}

/* The evaluator enforces the resolved mode: plaintext (no identity) vs. mTLS. */
static const struct {
	const char *name, *file;
	unsigned int port;
	const char *id;
	bool allow;
	const char *policy, *reason;
} eval_cases[] = {
    {"STRICT inherited through an UNSET workload policy",
     NS1("STRICT") DOC WL(", portLevelMtls: {8443: {mode: PERMISSIVE}}"), 8080, NULL, false,
     "ns1/ns",
     "PeerAuthentication ns1/ns requires mTLS (STRICT) and the connection has no peer "
     "identity"},
    {"  its PERMISSIVE port takes plaintext",
     NS1("STRICT") DOC WL(", portLevelMtls: {8443: {mode: PERMISSIVE}}"), 8443, NULL, true, "",
     "no allow policy"},
    {"DISABLE takes plaintext", NS1("DISABLE") DOC WL(", portLevelMtls: {8443: {mode: STRICT}}"),
     8080, NULL, true, "", "no allow policy"},
    {"  port-level STRICT under DISABLE refuses plaintext",
     NS1("DISABLE") DOC WL(", portLevelMtls: {8443: {mode: STRICT}}"), 8443, NULL, false, "ns1/wl",
     "PeerAuthentication ns1/wl requires mTLS (STRICT) on port 8443 and the connection has no "
     "peer identity"},
    {"  and takes mTLS", NS1("DISABLE") DOC WL(", portLevelMtls: {8443: {mode: STRICT}}"), 8443,
     "spiffe://cluster.local/ns/ns1/sa/client", true, "", "no allow policy"},
    {"an identity of just spiffe:// is none", NS1("STRICT"), 8080, "spiffe://", false, "ns1/ns",
     "requires mTLS (STRICT)"},
    {"a DENY AuthorizationPolicy still applies under DISABLE",
     NS1("DISABLE") DOC
     "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
     "metadata: {name: deny, namespace: ns1}\nspec: {action: DENY, rules: [{}]}\n",
     8080, NULL, false, "ns1/deny", "denied by AuthorizationPolicy ns1/deny"},
};

static void test_evaluator(void)
{
	struct zm_rbac_result r;
	struct zm_rbac_conn c;
	struct files f;
	size_t i;

	for (i = 0; i < sizeof(eval_cases) / sizeof(eval_cases[0]); i++) {
		if (!files_load(&f, eval_cases[i].file, NULL, eval_cases[i].name))
			continue;
		c = (struct zm_rbac_conn){A("198.18.1.10"), A("198.18.2.10"),
					  (__u16)eval_cases[i].port, eval_cases[i].id,
					  zm_config_workload_by_uid(cfg, "s")};
		zm_rbac_evaluate(&f.src, &c, &r);
		if (!is_int(r.allow, eval_cases[i].allow, "eval %s: %s", eval_cases[i].name,
			    eval_cases[i].allow ? "allow" : "deny") ||
		    !is_str(r.policy, eval_cases[i].policy, "eval %s: policy",
			    eval_cases[i].name) ||
		    !ok(strstr(r.reason, eval_cases[i].reason) != NULL, "eval %s: reason",
			eval_cases[i].name))
			printf("#   reason: %s\n", r.reason);
		index_same(&f.src, &c, &r, eval_cases[i].name);
		files_free(&f);
	}

	/* A dry-run PeerAuthentication: enforced verdict unchanged, the difference reported. */
	if (!files_load(&f,
			NS1("STRICT") DOC
			"apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
			"metadata: {name: dry, namespace: ns1,\n"
			"           annotations: {istio.io/dry-run: \"true\"}}\n"
			"spec: {" SEL ", mtls: {mode: PERMISSIVE}}\n",
			NULL, "dry run"))
		return;
	c = (struct zm_rbac_conn){A("198.18.1.10"), A("198.18.2.10"), 8080, NULL,
				  zm_config_workload_by_uid(cfg, "s")};
	zm_rbac_evaluate(&f.src, &c, &r);
	ok(!r.allow && !strcmp(r.policy, "ns1/ns") && r.dry_run_differs,
	   "dry-run PERMISSIVE over STRICT: still denied, reported as differing");
	is_str(r.dry_run, "with dry-run policies: allow (no allow policy applies to ns1/server)",
	       "dry-run text");
	index_same(&f.src, &c, &r, "dry-run PERMISSIVE over STRICT");
	files_free(&f);
}

/*
 * The kernel fast path drops exactly the plaintext the resolved modes refuse: "dst port
 * policy;" per rule (port 0: every port). A STRICT workload with a PERMISSIVE port gets no
 * rule at all: the kernel cannot say "every port but one", so ztunnel decides those.
 */
static const struct {
	const char *name, *file, *want;
} fp_cases[] = {
    {"DISABLE namespace, STRICT port on the workload",
     NS1("DISABLE") DOC WL(", portLevelMtls: {8443: {mode: STRICT}}"),
     "198.18.2.10 8443 ns1/wl;198.18.1.10 8443 ns1/wl;198.18.2.30 8443 ns1/wl;"},
    {"STRICT inherited, one PERMISSIVE port",
     NS1("STRICT") DOC WL(", mtls: {mode: UNSET}, portLevelMtls: {8443: {mode: PERMISSIVE}}"),
     "198.18.2.11 0 ns1/ns;"},
    {"STRICT namespace", NS1("STRICT"),
     "198.18.2.10 0 ns1/ns;198.18.2.11 0 ns1/ns;198.18.1.10 0 ns1/ns;198.18.2.30 0 ns1/ns;"},
    {"mesh DISABLE drops nothing", MESH("DISABLE"), ""},
};

static void test_fastpath(void)
{
	struct zm_dp_policy_rule *rules;
	char got[1024], a[ZM_ADDR_STRLEN];
	struct files f;
	size_t i, j, n;

	for (i = 0; i < sizeof(fp_cases) / sizeof(fp_cases[0]); i++) {
		bool consistent = true;

		if (!files_load(&f, fp_cases[i].file, NULL, fp_cases[i].name))
			continue;
		if (!ok(!zm_rbac_compile_fastpath(&f.src, NULL, &rules, &n),
			"fastpath %s: compiles", fp_cases[i].name))
			n = 0, rules = NULL;
		got[0] = '\0';
		for (j = 0; j < n; j++) {
			struct zm_rbac_result r;
			const struct zm_cfg_workload *wl =
			    zm_config_workload_by_ip(cfg, NULL, &rules[j].dst);
			__u16 port = rules[j].dst_port ? rules[j].dst_port : 12345;
			struct zm_rbac_conn c = {A("203.0.113.9"), rules[j].dst, port, NULL, wl};

			zm_rbac_evaluate(&f.src, &c, &r);
			consistent &= !r.allow;
			snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s %u %s;",
				 zm_addr_format(&rules[j].dst, a, sizeof(a)), rules[j].dst_port,
				 rules[j].policy);
		}
		is_str(got, fp_cases[i].want, "fastpath %s: rules", fp_cases[i].name);
		ok(consistent, "fastpath %s: the evaluator denies every dropped address",
		   fp_cases[i].name);
		free(rules);
		files_free(&f);
	}
}

#define PAB                                                                                        \
	"apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata:\n"                  \
	"  name: p\n  namespace: ns1\n"

static const struct {
	const char *yaml, *msg;
} bad_inputs[] = {
    {PAB "spec:\n  mtls:\n    mode: DISALBE\n",
     "p.yaml:8: spec.mtls.mode: unknown value \"DISALBE\" (want UNSET, DISABLE, PERMISSIVE or "
     "STRICT)"},
    {PAB "spec:\n  selector:\n    matchLabels: {app: server}\n  portLevelMtls:\n"
	 "    8443:\n      mode: disable\n",
     "p.yaml:11: spec.portLevelMtls[8443].mode: unknown value \"disable\" (want UNSET, "
     "DISABLE, "
     "PERMISSIVE or STRICT)"},
    {PAB "spec:\n  selector:\n    matchLabels: {app: server}\n  portLevelMtls:\n"
	 "    8443: {mode: STRICT}\n    \"8443\": {mode: DISABLE}\n",
     "p.yaml:11: spec.portLevelMtls[8443]: key given twice (first at line 10)"},
    {PAB "spec:\n  selector:\n    matchLabels: {app: server}\n  portLevelMtls:\n"
	 "    8443: {mode: STRICT}\n    08443: {mode: DISABLE}\n",
     "p.yaml:11: spec.portLevelMtls[08443]: port 8443 given twice"},
    {PAB "spec:\n  selector:\n    matchLabels: {app: server}\n  portLevelMtls:\n"
	 "    0: {mode: STRICT}\n",
     "p.yaml:10: spec.portLevelMtls[0]: port 0 out of range (want 1..65535)"},
    {PAB "spec:\n  mtls:\n    mode: DISABLE\n    extra: 1\n",
     "p.yaml:9: spec.mtls.extra: unknown field"},
    {PAB "spec:\n  mtls: DISABLE\n", "p.yaml:7: spec.mtls: expected a mapping, got \"DISABLE\""},
};

static void test_bad_inputs(void)
{
	struct zm_rbac_set *s;
	char err[ERRLEN];
	size_t i;
	int r;

	for (i = 0; i < sizeof(bad_inputs) / sizeof(bad_inputs[0]); i++) {
		r = zm_rbac_load_buf("p.yaml", bad_inputs[i].yaml, strlen(bad_inputs[i].yaml), &s,
				     err, sizeof(err));
		ok(r == -EINVAL && !s, "bad input %zu refused", i);
		is_str(err, bad_inputs[i].msg, "bad input %zu message", i);
	}
	r = zm_rbac_load_file("tests/data/peerauth/disalbe.yaml", &s, err, sizeof(err));
	ok(r == -EINVAL && !s, "tests/data/peerauth/disalbe.yaml refused");
	is_str(err,
	       "tests/data/peerauth/disalbe.yaml:10: spec.mtls.mode: unknown value \"DISALBE\" "
	       "(want UNSET, DISABLE, PERMISSIVE or STRICT)",
	       "  FILE:LINE and the field named");
}

/* What ztunnel's outbound does (conn.c): direct HBONE + DISABLE -> plain TCP. */
static void outbound(struct zt_snap *s, const struct files *f, const char *dst, __u16 port,
		     struct zt_route *r)
{
	struct zm_addr src = A("198.18.1.10"), d = A(dst);

	zt_route_outbound(s, &src, &d, port, 0, r);
	if (zt_route_direct_hbone(r) &&
	    zm_rbac_mtls_mode(&f->src, r->dst, r->target_port, NULL, NULL) == ZM_MTLS_DISABLE)
		zt_route_plaintext(r);
}

static void test_routes(void)
{
	struct zm_config *copy;
	struct zt_snap *s;
	struct zt_route r;
	char err[ERRLEN], b[ZM_ADDR_STRLEN];
	struct files f;

	if (zm_config_load_buf("cfg.yaml", cfg_text, sizeof(cfg_text) - 1, &copy, err, sizeof(err)))
		tap_bail("config: %s", err);
	s = zt_snap_build(copy, "n1");
	if (!s)
		tap_bail("zt_snap_build failed");
	if (!files_load(&f, NS1("DISABLE") DOC WL(", portLevelMtls: {8443: {mode: STRICT}}"), NULL,
			"routes")) {
		zt_snap_destroy(s);
		return;
	}
	f.src.cfg = s->cfg;
	outbound(s, &f, "198.18.2.10", 8080, &r);
	is_int(r.kind, ZT_ROUTE_MTLS_DISABLED, "DISABLE pod: plain TCP, not HBONE");
	ok(!strcmp(zm_addr_format(&r.dial_addr, b, sizeof(b)), "198.18.2.10") &&
	       r.dial_port == 8080,
	   "  dialed at the pod's own ip:port (%s:%u)", b, r.dial_port);
	outbound(s, &f, "198.18.2.10", 8443, &r);
	ok(r.kind == ZT_ROUTE_HBONE && r.dial_port == ZM_PORT_HBONE,
	   "same pod, port-level STRICT port: HBONE to 15008");
	outbound(s, &f, "198.18.100.1", 80, &r);
	ok(r.kind == ZT_ROUTE_MTLS_DISABLED && r.dial_port == 8080 &&
	       !strcmp(zm_addr_format(&r.dial_addr, b, sizeof(b)), "198.18.2.10"),
	   "service VIP: mode of the chosen endpoint at its target port, plain to %s:%u", b,
	   r.dial_port);
	outbound(s, &f, "198.18.2.30", 8080, &r);
	ok(r.kind == ZT_ROUTE_HBONE && r.via_waypoint && r.dial_port == 15008 &&
	       !strcmp(zm_addr_format(&r.dial_addr, b, sizeof(b)), "198.18.2.99"),
	   "pod with a waypoint: still HBONE to the waypoint");
	ok(!zt_route_plaintext(&r) && r.kind == ZT_ROUTE_HBONE,
	   "  zt_route_plaintext leaves a waypoint route alone");
	s->node = "n2";
	outbound(s, &f, "198.18.2.11", 8080, &r);
	s->node = "n1";
	ok(r.kind == ZT_ROUTE_REFUSE, "(a source of another node is refused as before)");
	{
		struct zm_addr src = A("198.18.2.10"), d = A("198.18.2.11");

		s->node = "n2";
		zt_route_outbound(s, &src, &d, 8080, 0, &r);
		s->node = "n1";
		ok(r.kind == ZT_ROUTE_LOCAL && !zt_route_plaintext(&r) && r.kind == ZT_ROUTE_LOCAL,
		   "same-node DISABLE destination: the local plaintext splice, unchanged");
	}
	files_free(&f);
	if (files_load(&f, NS1("PERMISSIVE"), NULL, "routes permissive")) {
		f.src.cfg = s->cfg;
		outbound(s, &f, "198.18.2.10", 8080, &r);
		is_int(r.kind, ZT_ROUTE_HBONE, "PERMISSIVE pod: HBONE");
		files_free(&f);
	}
	if (files_load(&f,
		       NS1("STRICT") DOC PA("wl", "ns1") "spec: {" SEL ", portLevelMtls: "
							 "{8080: {mode: DISABLE}}}\n",
		       NULL, "routes strict")) {
		f.src.cfg = s->cfg;
		outbound(s, &f, "198.18.2.10", 8080, &r);
		is_int(r.kind, ZT_ROUTE_MTLS_DISABLED,
		       "port-level DISABLE under STRICT: plain TCP");
		outbound(s, &f, "198.18.2.10", 9090, &r);
		is_int(r.kind, ZT_ROUTE_HBONE, "  other ports of the STRICT workload: HBONE");
		files_free(&f);
	}
	zt_snap_destroy(s);
}

int main(void)
{
	char err[ERRLEN];

	if (zm_config_load_buf("cfg.yaml", cfg_text, sizeof(cfg_text) - 1, &cfg, err, sizeof(err)))
		tap_bail("config: %s", err);
	test_modes();
	test_evaluator();
	test_fastpath();
	test_bad_inputs();
	test_routes();
	zm_config_free(cfg);
	return tap_done();
}
