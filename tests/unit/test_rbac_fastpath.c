// SPDX-License-Identifier: Apache-2.0
/*
 * Property test of the kernel fast-path compiler (zm_rbac_compile_fastpath): for thousands of
 * random policy sets, mixing the local config's `policies` with Istio AuthorizationPolicy and
 * PeerAuthentication documents (dry runs, L7 attributes, selectors, when conditions, ports,
 * port-level mTLS modes, ipBlocks and their negations, identity attributes that plaintext can
 * never satisfy), every plaintext connection the compiled rules would drop under the kernel's
 * matching rules (datapath.h) must be one the evaluator denies. A fixed seed keeps failures
 * reproducible; the offending inputs are printed. Also checks that the compiler is not vacuous
 * (it drops something in a good share of the cases), and, on the same random sets, that the
 * policy index (zm_rbac_index_build) changes no decision and no PeerAuthentication mode, with
 * and without a peer identity.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/tap.h"
#include "common/addr.h"
#include "config/config.h"
#include "datapath/datapath.h"
#include "rbac/rbac.h"
#include "test_rbac_index.h"

#define ROUNDS 3000

static const char *const workloads =
    "workloads:\n"
    "- {uid: s, name: server, namespace: ns1, workloadIps: [198.18.0.10, \"2001:2::10\"],\n"
    "   labels: {app: server}, node: n1}\n"
    "- {uid: o, name: other, namespace: ns2, workloadIps: [198.18.0.20],\n"
    "   labels: {app: server}, node: n1}\n"
    "- {uid: w, name: wp, namespace: ns1, workloadIps: [198.18.0.30], labels: {app: wp},\n"
    "   waypoint: {destination: /198.18.0.99}, node: n1}\n"
    "- {uid: d, name: dup, namespace: ns2, network: net2, workloadIps: [198.18.0.10],\n"
    "   node: n1}\n";

static const char *const cidrs[] = {"198.18.1.0/24", "198.18.1.12/32",	"198.18.0.0/15",
				    "198.18.2.0/24", "2001:2:0:1::/64", "0.0.0.0/0",
				    "198.18.0.10/32"};
static const char *const ports[] = {"80", "7777", "8080"};
static const char *const strs[] = {"{Exact: ns1}", "{Prefix: \"\"}", "{Presence: {}}",
				   "{Suffix: \"\"}", "{Exact: cluster.local/ns/ns1/sa/client}"};
static const char *const ids[] = {"\"*\"", "cluster.local/ns/ns1/sa/client", "\"ns*\"", "ns1"};

static const char *pick(const char *const *v, size_t n)
{
	return v[(size_t)rand() % n];
}

#define PICK(v) pick(v, sizeof(v) / sizeof(v[0]))

static void cat(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void cat(char *buf, size_t len, const char *fmt, ...)
{
	size_t used = strlen(buf);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf + used, len - used, fmt, ap);
	va_end(ap);
}

/* One config match group: 0..3 attributes. */
static void gen_cfg_group(char *b, size_t len)
{
	static const char *const keys[] = {
	    "sourceIps",      "notSourceIps",	 "destinationPorts", "notDestinationPorts",
	    "destinationIps", "principals",	 "notPrincipals",    "namespaces",
	    "notNamespaces",  "serviceAccounts", "notDestinationIps"};
	const size_t nk = sizeof(keys) / sizeof(keys[0]);
	size_t first = (size_t)rand() % nk, step = 1 + (size_t)rand() % 4;
	int i, n = rand() % 4;

	cat(b, len, "{");
	for (i = 0; i < n; i++) {
		const char *k = keys[(first + (size_t)i * step) % nk]; /* distinct: step < nk */

		cat(b, len, "%s%s: [", i ? ", " : "", k);
		if (strstr(k, "Ips"))
			cat(b, len, "\"%s\"", PICK(cidrs));
		else if (strstr(k, "Ports"))
			cat(b, len, "%s", PICK(ports));
		else if (strstr(k, "serviceAccounts"))
			cat(b, len, "{namespace: ns1, serviceAccount: client}");
		else
			cat(b, len, "%s", PICK(strs));
		cat(b, len, "]");
	}
	cat(b, len, "}");
}

static void gen_cfg_policy(char *b, size_t len, int idx)
{
	static const char *const scopes[] = {"Global", "Namespace"};
	int r, c, g, nr = rand() % 3;

	cat(b, len, "- {name: p%d, namespace: %s, scope: %s, action: %s%s, rules: [", idx,
	    rand() % 2 ? "ns1" : "ns2", PICK(scopes), rand() % 2 ? "Allow" : "Deny",
	    rand() % 6 ? "" : ", dryRun: true");
	for (r = 0; r < nr; r++) {
		int nc = rand() % 3;

		cat(b, len, "%s[", r ? ", " : "");
		for (c = 0; c < nc; c++) {
			int ng = rand() % 3;

			cat(b, len, "%s[", c ? ", " : "");
			for (g = 0; g < ng; g++) {
				cat(b, len, "%s", g ? ", " : "");
				gen_cfg_group(b, len);
			}
			cat(b, len, "]");
		}
		cat(b, len, "]");
	}
	cat(b, len, "]}\n");
}

static void gen_istio_meta(char *b, size_t len, const char *kind, int idx)
{
	cat(b, len,
	    "---\napiVersion: security.istio.io/v1\nkind: %s\nmetadata: {name: i%d, "
	    "namespace: %s%s}\nspec:\n",
	    kind, idx, rand() % 3 ? "ns1" : (rand() % 2 ? "ns2" : "istio-system"),
	    rand() % 6 ? "" : ", annotations: {istio.io/dry-run: \"true\"}");
	if (rand() % 2)
		cat(b, len, "  selector: {matchLabels: {app: %s}}\n", rand() % 2 ? "server" : "wp");
}

static void gen_istio_rule(char *b, size_t len)
{
	static const char *const src_keys[] = {"ipBlocks",	"notIpBlocks", "principals",
					       "notPrincipals", "namespaces",  "notNamespaces",
					       "remoteIpBlocks"};
	static const char *const when_keys[] = {"source.ip", "destination.port", "source.namespace",
						"destination.ip"};
	const char *k;

	cat(b, len, "  - {");
	if (rand() % 3) {
		k = PICK(src_keys);
		cat(b, len, "from: [{source: {%s: [%s]}}], ", k,
		    strstr(k, "pBlocks") ? (rand() % 2 ? "\"198.18.1.12\"" : "\"198.18.1.0/24\"")
					 : PICK(ids));
	}
	if (rand() % 2)
		cat(b, len, "to: [{operation: {%s: [\"%s\"]%s}}], ",
		    rand() % 3 ? "ports" : "notPorts", PICK(ports),
		    rand() % 8 ? "" : ", methods: [GET]");
	if (!(rand() % 4)) {
		k = PICK(when_keys);
		cat(b, len, "when: [{key: %s, %s: [\"%s\"]}], ", k,
		    rand() % 2 ? "values" : "notValues",
		    !strcmp(k, "destination.port")   ? PICK(ports)
		    : !strcmp(k, "source.namespace") ? "ns1"
						     : "198.18.1.0/24");
	}
	cat(b, len, "}\n");
}

static void gen_istio(char *b, size_t len, int idx)
{
	static const char *const modes[] = {"STRICT", "PERMISSIVE", "DISABLE", "UNSET"};
	static const char *const actions[] = {"ALLOW", "DENY"};
	int i, n;

	if (rand() % 3 == 0) {
		size_t start = strlen(b);

		gen_istio_meta(b, len, "PeerAuthentication", idx);
		cat(b, len, "  mtls: {mode: %s}\n", PICK(modes));
		/* Port-level modes (allowed with a selector only), inheriting through UNSET. */
		if (strstr(b + start, "selector") && rand() % 2)
			cat(b, len, "  portLevelMtls: {%s: {mode: %s}}\n", PICK(ports),
			    PICK(modes));
		return;
	}
	gen_istio_meta(b, len, "AuthorizationPolicy", idx);
	cat(b, len, "  action: %s\n", PICK(actions));
	n = rand() % 3;
	if (!n && rand() % 2)
		return; /* no rules at all */
	cat(b, len, "  rules:\n");
	for (i = 0; i < n; i++)
		gen_istio_rule(b, len);
	if (!n)
		cat(b, len, "  - {}\n");
}

/* The kernel's view: does any rule drop a SYN src -> dst:port? */
static bool kernel_drops(const struct zm_dp_policy_rule *r, size_t n, const struct zm_addr *src,
			 const struct zm_addr *dst, __u16 port)
{
	size_t i;

	for (i = 0; i < n; i++) {
		struct zm_cfg_cidr c = {r[i].src, r[i].src_prefix};
		const unsigned char *x = (const unsigned char *)c.addr.addr;
		const unsigned char *y = (const unsigned char *)src->addr;
		unsigned int b;
		bool in = true;

		if (!zm_addr_equal(&r[i].dst, dst) || (r[i].dst_port && r[i].dst_port != port))
			continue;
		for (b = 0; b < c.prefix_len && in; b++)
			in = !(((x[b / 8] ^ y[b / 8]) >> (7 - b % 8)) & 1);
		if (in && !r[i].defer)
			return true;
	}
	return false;
}

static const char *const srcs[] = {"198.18.1.12", "198.18.1.13", "198.18.2.5",	  "198.18.0.99",
				   "203.0.113.7", "198.18.0.10", "2001:2:0:1::5", "2001:2:0:9::5"};
static const __u16 tports[] = {80, 7777, 8080, 9999};

/* Check every (dst, src, port) of the grid; false (inputs printed) on a wrong drop. */
static bool check_grid(const struct zm_rbac_sources *src, const struct zm_config *cfg,
		       const struct zm_dp_policy_rule *rules, size_t n, size_t *drops)
{
	size_t w, i, s, p;

	for (w = 0; w < cfg->n_workloads; w++) {
		for (i = 0; i < cfg->workloads[w].n_ips; i++) {
			const struct zm_addr *dst = &cfg->workloads[w].ips[i].addr;

			for (s = 0; s < sizeof(srcs) / sizeof(srcs[0]); s++) {
				for (p = 0; p < sizeof(tports) / sizeof(tports[0]); p++) {
					struct zm_rbac_conn c = {.dst_ip = *dst,
								 .dst_port = tports[p]};
					struct zm_rbac_result r;

					zm_addr_parse(srcs[s], &c.src_ip);
					if (c.src_ip.family != dst->family ||
					    !kernel_drops(rules, n, &c.src_ip, dst, tports[p]))
						continue;
					(*drops)++;
					c.dst = zm_config_workload_by_ip(cfg, NULL, dst);
					zm_rbac_evaluate(src, &c, &r);
					if (r.allow) {
						printf("# wrong drop: %s -> %s port %u (%s)\n",
						       srcs[s], cfg->workloads[w].name, tports[p],
						       r.reason);
						return false;
					}
				}
			}
		}
	}
	return true;
}

static const char *const peer_ids[] = {NULL, "spiffe://cluster.local/ns/ns1/sa/client",
				       "spiffe://cluster.local/ns/ns2/sa/x"};

#define N_OF(v) (sizeof(v) / sizeof(v[0]))

/* Connection n of the grid (source, port, identity) to wl at dst, walked and indexed. */
static bool same_decision(const struct zm_rbac_sources *src, const struct zm_rbac_sources *is,
			  const struct zm_cfg_workload *wl, const struct zm_addr *dst, size_t n)
{
	const char *from = srcs[n / (N_OF(tports) * N_OF(peer_ids))];
	const char *id = peer_ids[n % N_OF(peer_ids)];
	__u16 port = tports[n / N_OF(peer_ids) % N_OF(tports)];
	struct zm_rbac_conn c = {.dst_ip = *dst, .dst_port = port, .identity = id, .dst = wl};
	struct zm_rbac_result r1, r2;

	zm_addr_parse(from, &c.src_ip);
	zm_rbac_evaluate(src, &c, &r1);
	zm_rbac_evaluate(is, &c, &r2);
	if (index_result_same(&r1, &r2))
		return true;
	printf("# indexed differs: %s -> %s port %u id %s\n#   walked: %s [%s]\n#   indexed: %s "
	       "[%s]\n",
	       from, wl->name, port, id ? id : "-", r1.reason, r1.dry_run, r2.reason, r2.dry_run);
	return false;
}

/*
 * Every (dst, src, port, identity) of the grid, and every workload's mode at every port,
 * through an index of every workload and walked: false (the difference printed) when any
 * differs.
 */
static bool check_index(const struct zm_rbac_sources *src, const struct zm_config *cfg)
{
	struct zm_rbac_sources is = *src;
	const struct zm_rbac_policy *b1, *b2;
	bool same = true, pl1, pl2;
	size_t w, i, n;

	is.index = zm_rbac_index_build(src, NULL);
	if (!is.index)
		return false;
	for (w = 0; w < cfg->n_workloads && same; w++) {
		const struct zm_cfg_workload *wl = &cfg->workloads[w];

		for (n = 0; n < N_OF(tports) && same; n++)
			same = zm_rbac_mtls_mode(src, wl, tports[n], &b1, &pl1) ==
				   zm_rbac_mtls_mode(&is, wl, tports[n], &b2, &pl2) &&
			       b1 == b2 && pl1 == pl2;
		for (i = 0; i < wl->n_ips && same; i++)
			for (n = 0; n < N_OF(srcs) * N_OF(tports) * N_OF(peer_ids) && same; n++)
				same = same_decision(src, &is, wl, &wl->ips[i].addr, n);
	}
	zm_rbac_index_free((struct zm_rbac_index *)is.index);
	return same;
}

int main(void)
{
	static char cfg_text[32768], istio[32768];
	size_t round, n, rounds_dropping = 0, drops = 0, bad = 0;
	char err[4096];

	srand(20240601);
	for (round = 0; round < ROUNDS && bad < 3; round++) {
		struct zm_config *cfg = NULL;
		struct zm_rbac_set *set = NULL;
		const struct zm_rbac_set *sets[1];
		struct zm_dp_policy_rule *rules = NULL;
		struct zm_rbac_sources src;
		size_t before = drops;
		int i, np = rand() % 4, ni = rand() % 3;

		snprintf(cfg_text, sizeof(cfg_text), "%s%s", workloads, np ? "policies:\n" : "");
		for (i = 0; i < np; i++)
			gen_cfg_policy(cfg_text, sizeof(cfg_text), i);
		istio[0] = '\0';
		for (i = 0; i < ni; i++)
			gen_istio(istio, sizeof(istio), i);
		if (zm_config_load_buf("cfg.yaml", cfg_text, strlen(cfg_text), &cfg, err,
				       sizeof(err)) ||
		    (ni &&
		     zm_rbac_load_buf("p.yaml", istio, strlen(istio), &set, err, sizeof(err)))) {
			/* A generator bug, not a compiler one: say so once per input. */
			ok(0, "round %zu: generated inputs load: %s", round, err);
			printf("# config:\n%s# istio:\n%s", cfg_text, istio);
			zm_config_free(cfg);
			bad++;
			continue;
		}
		sets[0] = set;
		src = (struct zm_rbac_sources){cfg, sets, set ? 1 : 0, NULL};
		if (zm_rbac_compile_fastpath(&src, NULL, &rules, &n)) {
			ok(0, "round %zu: compiles", round);
			bad++;
		} else if (!check_grid(&src, cfg, rules, n, &drops)) {
			ok(0, "round %zu: every kernel drop is an evaluator deny", round);
			printf("# config:\n%s# istio:\n%s", cfg_text, istio);
			bad++;
		} else if (!check_index(&src, cfg)) {
			ok(0, "round %zu: the index decides as the walk", round);
			printf("# config:\n%s# istio:\n%s", cfg_text, istio);
			bad++;
		}
		rounds_dropping += drops > before;
		free(rules);
		zm_rbac_set_free(set);
		zm_config_free(cfg);
	}
	ok(!bad,
	   "%zu random policy sets: no kernel drop the evaluator would allow, and the index "
	   "decides every connection as the walk",
	   round);
	ok(rounds_dropping > ROUNDS / 10,
	   "the compiler drops something in %zu of %zu sets (%zu drops)", rounds_dropping, round,
	   drops);
	tap_done();
}
