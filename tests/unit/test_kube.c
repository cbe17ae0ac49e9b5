// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of lib/kube's pure half: watch events and list pages into the store (ADDED,
 * MODIFIED, DELETED, BOOKMARK, ERROR 410, garbage; a list replaces a kind whole, an aborted
 * one leaves it), objects with missing or malformed fields (logged by object and field, the
 * rest kept), and the translation into the config model (Istio's ambient membership by
 * namespace and pod label, identity, addresses, canonical names, the controller's name,
 * services with their endpoints from EndpointSlices and named target ports, waypoints,
 * conflicts settled) and into Istio policy YAML that lib/rbac accepts (a broken
 * AuthorizationPolicy fails closed).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "kube/kube.h"
#include "rbac/rbac.h"
#include "tap.h"

static char logbuf[16384];
static char rv[ZM_KUBE_RV_LEN];

static enum zm_kube_verdict ev(struct zm_kube_store *st, enum zm_kube_kind k, const char *line)
{
	return zm_kube_store_event(st, k, line, strlen(line), rv, logbuf, sizeof(logbuf));
}

#define POD(ns, name, extra_meta, spec, status)                                                    \
	"{\"kind\":\"Pod\",\"metadata\":{\"name\":\"" name "\",\"namespace\":\"" ns                \
	"\",\"resourceVersion\":\"7\"" extra_meta "},\"spec\":{" spec "},\"status\":{" status "}}"
#define READY "\"phase\":\"Running\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]"
#define ADDED "{\"type\":\"ADDED\",\"object\":"
#define MOD   "{\"type\":\"MODIFIED\",\"object\":"
#define DEL   "{\"type\":\"DELETED\",\"object\":"

static struct zm_config *build(struct zm_kube_store *st)
{
	struct zm_kube_opts o = {.node = "n1"};
	struct zm_config *cfg = NULL;
	char err[2048];
	int r = zm_kube_store_build(st, &o, &cfg, logbuf, sizeof(logbuf), err, sizeof(err));

	if (r)
		printf("# build: %d %s\n", r, err);
	return cfg;
}

static const struct zm_cfg_workload *wl(const struct zm_config *cfg, const char *ns,
					const char *name)
{
	size_t i;

	for (i = 0; cfg && i < cfg->n_workloads; i++)
		if (!strcmp(cfg->workloads[i].namespace, ns) &&
		    !strcmp(cfg->workloads[i].name, name))
			return &cfg->workloads[i];
	return NULL;
}

static void seed(struct zm_kube_store *st)
{
	ev(st, ZM_KUBE_NAMESPACES,
	   ADDED "{\"metadata\":{\"name\":\"demo\",\"resourceVersion\":\"1\",\"labels\":{"
		 "\"istio.io/dataplane-mode\":\"ambient\"}}}}");
	ev(st, ZM_KUBE_NAMESPACES, ADDED "{\"metadata\":{\"name\":\"plain\"}}}");
	ev(st, ZM_KUBE_PODS,
	   ADDED POD(
	       "demo", "web-7d9f8-abcde",
	       ",\"labels\":{\"app\":\"web\",\"version\":\"v2\",\"pod-template-hash\":"
	       "\"7d9f8\"},\"ownerReferences\":[{\"kind\":\"ReplicaSet\",\"name\":\"web-7d9f8\","
	       "\"controller\":true}]",
	       "\"nodeName\":\"n1\",\"serviceAccountName\":\"web-sa\"",
	       READY ",\"podIPs\":[{\"ip\":\"198.18.1.20\"},{\"ip\":\"2001:2:0:1::20\"}]") "}");
	ev(st, ZM_KUBE_PODS,
	   ADDED POD("demo", "optout", ",\"labels\":{\"istio.io/dataplane-mode\":\"none\"}",
		     "\"nodeName\":\"n1\"", READY ",\"podIP\":\"198.18.1.21\"") "}");
	ev(st, ZM_KUBE_PODS,
	   ADDED POD("plain", "optin", ",\"labels\":{\"istio.io/dataplane-mode\":\"ambient\"}",
		     "\"nodeName\":\"n2\",\"serviceAccountName\":\"in\"",
		     READY ",\"podIPs\":[{\"ip\":\"198.18.2.20\"}]") "}");
	ev(st, ZM_KUBE_PODS,
	   ADDED POD("plain", "other", "", "\"nodeName\":\"n2\"",
		     "\"phase\":\"Pending\",\"podIPs\":[{\"ip\":\"198.18.2.21\"}]") "}");
	ev(st, ZM_KUBE_PODS,
	   ADDED POD("demo", "hostnet", "", "\"nodeName\":\"n1\",\"hostNetwork\":true",
		     READY ",\"podIPs\":[{\"ip\":\"198.18.0.1\"}]") "}");
	ev(st, ZM_KUBE_PODS,
	   ADDED POD("demo", "done", "", "\"nodeName\":\"n1\"",
		     "\"phase\":\"Succeeded\",\"podIPs\":[{\"ip\":\"198.18.1.99\"}]") "}");
}

static void test_membership(void)
{
	struct zm_kube_store *st = zm_kube_store_new();
	const struct zm_cfg_workload *w;
	struct zm_config *cfg;
	char id[256], a[ZM_ADDR_STRLEN];

	seed(st);
	is_str(rv, "7", "an event moves the resourceVersion");
	cfg = build(st);
	if (!ok(cfg != NULL, "the store builds a model"))
		return;
	is_int(cfg->n_workloads, 5,
	       "a workload per pod that has not finished (Succeeded left out)");
	w = wl(cfg, "demo", "web-7d9f8-abcde");
	ok(w && w->protocol == ZM_CFG_PROTO_HBONE,
	   "a pod of a namespace labelled ambient is in the mesh");
	zm_cfg_workload_identity(w, id, sizeof(id));
	is_str(id, "spiffe://cluster.local/ns/demo/sa/web-sa",
	       "identity from spec.serviceAccountName");
	ok(w->n_ips == 2 &&
	       !strcmp(zm_addr_format(&w->ips[1].addr, a, sizeof(a)), "2001:2:0:1::20"),
	   "both addresses from status.podIPs");
	is_str(w->uid, "Kubernetes//Pod/demo/web-7d9f8-abcde", "uid in Istio's form");
	is_str(w->workload_name, "web", "a ReplicaSet's pod belongs to its Deployment");
	is_str(w->workload_type, "deployment", "of type deployment");
	is_str(w->canonical_name, "web", "canonical name from app");
	is_str(w->canonical_revision, "v2", "canonical revision from version");
	ok(w->status == ZM_CFG_HEALTHY && !strcmp(w->node, "n1"), "Ready: healthy, on its node");
	w = wl(cfg, "demo", "optout");
	ok(w && w->protocol == ZM_CFG_PROTO_TCP && w->n_ips == 1,
	   "istio.io/dataplane-mode=none on the pod opts it out (status.podIP read)");
	is_str(w->service_account, "default", "no serviceAccountName: the default account");
	is_str(w->canonical_revision, "latest", "no version label: revision latest");
	is_str(w->workload_type, "pod", "no controller: its own workload");
	w = wl(cfg, "plain", "optin");
	ok(w && w->protocol == ZM_CFG_PROTO_HBONE, "the pod label alone puts a pod in the mesh");
	w = wl(cfg, "plain", "other");
	ok(w && w->protocol == ZM_CFG_PROTO_TCP && w->status == ZM_CFG_UNHEALTHY,
	   "a pod of an unlabelled namespace stays out (and is unhealthy while not Ready)");
	w = wl(cfg, "demo", "hostnet");
	ok(w && w->protocol == ZM_CFG_PROTO_TCP && w->network_mode == ZM_CFG_NETMODE_HOST_NETWORK,
	   "a hostNetwork pod is never captured");
	is_int(zm_kube_store_pod_meshed(st, "demo", "web-7d9f8-abcde"), 1, "pod_meshed: yes");
	is_int(zm_kube_store_pod_meshed(st, "demo", "optout"), 0, "pod_meshed: opted out");
	is_int(zm_kube_store_pod_meshed(st, "demo", "nope"), -ENOENT, "pod_meshed: unknown pod");
	zm_config_free(cfg);

	/* Unlabel the namespace: its pods leave the mesh. Delete a pod: it is gone. */
	is_int(ev(st, ZM_KUBE_NAMESPACES, MOD "{\"metadata\":{\"name\":\"demo\"}}}"),
	       ZM_KUBE_APPLIED, "MODIFIED namespace applied");
	is_int(ev(st, ZM_KUBE_PODS, DEL POD("plain", "other", "", "", "") "}"), ZM_KUBE_APPLIED,
	       "DELETED pod applied");
	is_int(ev(st, ZM_KUBE_PODS, DEL POD("plain", "other", "", "", "") "}"), ZM_KUBE_UNCHANGED,
	       "deleting it again changes nothing");
	cfg = build(st);
	w = wl(cfg, "demo", "web-7d9f8-abcde");
	ok(cfg && w && w->protocol == ZM_CFG_PROTO_TCP && !wl(cfg, "plain", "other"),
	   "removing the label unmeshes the namespace's pods; the deleted pod is gone");
	zm_config_free(cfg);
	zm_kube_store_free(st);
}

static void test_events(void)
{
	struct zm_kube_store *st = zm_kube_store_new();
	uint64_t serial;

	is_int(ev(st, ZM_KUBE_PODS,
		  "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Pod\",\"metadata\":{"
		  "\"resourceVersion\":\"12345\"}}}"),
	       ZM_KUBE_BOOKMARK, "BOOKMARK");
	is_str(rv, "12345", "a bookmark moves the resourceVersion");
	is_int(ev(st, ZM_KUBE_PODS,
		  "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,\"reason\":"
		  "\"Expired\",\"message\":\"too old resource version\"}}"),
	       ZM_KUBE_GONE, "ERROR 410: re-list");
	is_int(ev(st, ZM_KUBE_PODS, "{\"type\":\"ERROR\",\"object\":{\"code\":500}}"),
	       ZM_KUBE_ERROR, "ERROR 500: an error of the stream");
	is_int(ev(st, ZM_KUBE_PODS, "this is not json"), ZM_KUBE_GARBAGE, "garbage");
	ok(strstr(logbuf, "watch of pods: not a watch event"), "named in the log: %s", logbuf);
	is_int(ev(st, ZM_KUBE_PODS, "{\"type\":\"ADDED\"} {}"), ZM_KUBE_GARBAGE,
	       "trailing bytes after an event: garbage");
	is_int(ev(st, ZM_KUBE_PODS, "{\"type\":\"ADDED\",\"object\":[]}"), ZM_KUBE_GARBAGE,
	       "an event whose object is no object: garbage");
	is_int(ev(st, ZM_KUBE_PODS, "{\"type\":\"SHRUG\",\"object\":{}}"), ZM_KUBE_UNCHANGED,
	       "an unknown event type is ignored");
	serial = zm_kube_store_serial(st);
	is_int(ev(st, ZM_KUBE_PODS, ADDED "{\"metadata\":{\"namespace\":\"x\"}}}"), ZM_KUBE_APPLIED,
	       "an object without a name: the stream is fine");
	ok(strstr(logbuf, "Pod x/(no name): metadata.name: missing"), "and the log says so: %s",
	   logbuf);
	is_int(zm_kube_store_count(st, ZM_KUBE_PODS), 0, "nothing kept of it");
	ok(zm_kube_store_serial(st) > serial, "events bump the serial");
	ev(st, ZM_KUBE_PODS,
	   ADDED POD("demo", "bad", ",\"labels\":{\"a\":7}",
		     "\"nodeName\":\"n1\",\"serviceAccountName\":42,\"hostNetwork\":\"yes\"",
		     "\"podIPs\":[{\"ip\":\"198.18.1.300\"},{\"ip\":\"198.18.1.30\"},{}]") "}");
	ok(strstr(logbuf,
		  "Pod demo/bad: status.podIPs[0].ip: \"198.18.1.300\" is not an IP address"),
	   "a bad address is named by object and field");
	ok(strstr(logbuf, "Pod demo/bad: spec.serviceAccountName: not a string") &&
	       strstr(logbuf, "metadata.labels[a]: not a string") &&
	       strstr(logbuf, "status.podIPs[2].ip: missing") &&
	       strstr(logbuf, "spec.hostNetwork: not a boolean"),
	   "so is every other bad field");
	is_int(zm_kube_store_count(st, ZM_KUBE_PODS), 1, "the pod is kept with its good fields");
	is_int(ev(st, ZM_KUBE_PODS,
		  ADDED "{\"kind\":\"Service\",\"metadata\":{\"name\":\"s\","
			"\"namespace\":\"x\"}}}"),
	       ZM_KUBE_APPLIED, "an object of another kind in a pod watch");
	ok(strstr(logbuf, "a Service in the list or watch of pods is not ours"), "is skipped: %s",
	   logbuf);
	zm_kube_store_free(st);
}

static void test_list(void)
{
	struct zm_kube_store *st = zm_kube_store_new();
	char cont[ZM_KUBE_CONT_LEN];
	const char *p1 = "{\"kind\":\"PodList\",\"metadata\":{\"resourceVersion\":\"50\","
			 "\"continue\":\"tok\"},\"items\":[" POD("a", "p1", "", "", "") "]}";
	const char *p2 =
	    "{\"kind\":\"PodList\",\"metadata\":{\"resourceVersion\":\"50\"},\"items\":[" POD(
		"a", "p2", "", "", "") ",{\"kind\":\"Secret\",\"metadata\":{\"name\":\"s\","
				       "\"namespace\":\"a\"}}]}";

	ev(st, ZM_KUBE_PODS, ADDED POD("a", "old", "", "", "") "}");
	zm_kube_store_list_begin(st, ZM_KUBE_PODS);
	is_int(zm_kube_store_list_page(st, ZM_KUBE_PODS, p1, strlen(p1), rv, cont, logbuf,
				       sizeof(logbuf)),
	       0, "page 1");
	is_str(cont, "tok", "with a continue token");
	is_int(zm_kube_store_count(st, ZM_KUBE_PODS), 1, "the old state serves while listing");
	zm_kube_store_list_page(st, ZM_KUBE_PODS, p2, strlen(p2), rv, cont, logbuf, sizeof(logbuf));
	ok(!cont[0] && !strcmp(rv, "50"), "page 2 ends the list at resourceVersion 50");
	ok(strstr(logbuf, "a Secret in the list or watch of pods is not ours"),
	   "an unknown kind in a list is skipped by name");
	zm_kube_store_list_commit(st, ZM_KUBE_PODS);
	ok(zm_kube_store_count(st, ZM_KUBE_PODS) == 2 &&
	       zm_kube_store_has(st, ZM_KUBE_PODS, "a", "p2") &&
	       !zm_kube_store_has(st, ZM_KUBE_PODS, "a", "old"),
	   "commit replaces the kind whole: what is no longer listed is gone");
	zm_kube_store_list_begin(st, ZM_KUBE_PODS);
	ok(zm_kube_store_list_page(st, ZM_KUBE_PODS, "{\"items\":3}", 11, rv, cont, logbuf,
				   sizeof(logbuf)) < 0,
	   "a page that is no list is refused: %s", logbuf);
	zm_kube_store_list_abort(st, ZM_KUBE_PODS);
	is_int(zm_kube_store_count(st, ZM_KUBE_PODS), 2,
	       "an aborted list leaves the last good state");
	zm_kube_store_free(st);
}

#define SVC(ns, name, labels, spec)                                                                \
	ADDED "{\"metadata\":{\"name\":\"" name "\",\"namespace\":\"" ns "\"" labels               \
	      "},\"spec\":{" spec "}}}"

static void test_services(void)
{
	struct zm_kube_store *st = zm_kube_store_new();
	const struct zm_cfg_service *s;
	const struct zm_cfg_workload *w;
	struct zm_config *cfg;
	struct zm_addr vip;
	size_t i;

	seed(st);
	ev(st, ZM_KUBE_SERVICES,
	   SVC("demo", "web", "",
	       "\"clusterIPs\":[\"198.19.0.10\"],\"ports\":[{\"name\":\"http\","
	       "\"port\":80,\"targetPort\":\"web-port\"},{\"port\":53,"
	       "\"protocol\":\"UDP\"},{\"name\":\"m\",\"port\":9000}]"));
	ev(st, ZM_KUBE_SERVICES,
	   SVC("demo", "waypoint", "",
	       "\"clusterIP\":\"198.19.0.11\",\"ports\":[{\"port\":15008}]"));
	ev(st, ZM_KUBE_SERVICES,
	   SVC("demo", "routed", ",\"labels\":{\"istio.io/use-waypoint\":\"waypoint\"}",
	       "\"clusterIP\":\"198.19.0.12\",\"ports\":[{\"port\":80}]"));
	ev(st, ZM_KUBE_SERVICES,
	   SVC("demo", "lost", ",\"labels\":{\"istio.io/use-waypoint\":\"nowhere\"}",
	       "\"clusterIP\":\"198.19.0.13\",\"ports\":[{\"port\":80}]"));
	ev(st, ZM_KUBE_SERVICES,
	   SVC("demo", "zdup", "", "\"clusterIP\":\"198.19.0.10\",\"ports\":[{\"port\":80}]"));
	ev(st, ZM_KUBE_SERVICES, SVC("demo", "headless", "", "\"clusterIP\":\"None\""));
	ev(st, ZM_KUBE_SLICES,
	   ADDED
	   "{\"metadata\":{\"name\":\"web-abc\",\"namespace\":\"demo\",\"labels\":{"
	   "\"kubernetes.io/service-name\":\"web\"}},\"addressType\":\"IPv4\",\"ports\":[{"
	   "\"name\":\"http\",\"port\":8080},{\"name\":\"m\",\"port\":9000}],\"endpoints\":[{"
	   "\"addresses\":[\"198.18.1.20\"],\"conditions\":{\"ready\":true},\"targetRef\":{"
	   "\"kind\":\"Pod\",\"name\":\"web-7d9f8-abcde\",\"namespace\":\"demo\"}},{"
	   "\"addresses\":[\"198.18.1.21\"],\"conditions\":{\"ready\":false,\"serving\":false},"
	   "\"targetRef\":{\"kind\":\"Pod\",\"name\":\"optout\"}},{\"addresses\":["
	   "\"198.18.9.9\"],\"conditions\":{\"ready\":true},\"nodeName\":\"n9\"},{"
	   "\"addresses\":\"oops\"}]}}");
	ok(strstr(logbuf,
		  "EndpointSlice demo/web-abc: endpoints[3].addresses: missing or not a list"),
	   "a bad endpoint is named: %s", logbuf);
	cfg = build(st);
	if (!ok(cfg != NULL, "services build"))
		return;
	ok(strstr(logbuf, "Service demo/zdup: spec.clusterIPs: 198.19.0.10 is also Service "
			  "demo/web's; left to that one"),
	   "a cluster IP of two services goes to the first: %s", logbuf);
	ok(strstr(logbuf, "Service demo/lost: metadata.labels[istio.io/use-waypoint]: waypoint "
			  "demo/nowhere has no Service"),
	   "a waypoint without a Service is reported");
	zm_addr_parse("198.19.0.10", &vip);
	s = zm_config_service_by_vip(cfg, NULL, &vip);
	ok(s && !strcmp(s->key, "demo/web.demo.svc.cluster.local") && s->n_ports == 2 &&
	       s->ports[0].service_port == 80 && s->ports[0].target_port == 0,
	   "Service web: its VIP, hostname, TCP ports only (named target left to the endpoints)");
	w = wl(cfg, "demo", "web-7d9f8-abcde");
	ok(w && w->n_services == 1 && w->services[0].service == s && w->services[0].n_ports == 2 &&
	       w->services[0].ports[0].target_port == 8080,
	   "the ready pod is an endpoint; the named port resolved to 8080 by the slice");
	w = wl(cfg, "demo", "optout");
	ok(w && w->n_services == 0, "an endpoint neither ready nor serving is left out");
	for (i = 0, w = NULL; i < cfg->n_workloads; i++)
		if (!strcmp(cfg->workloads[i].name, "198.18.9.9"))
			w = &cfg->workloads[i];
	ok(w && w->protocol == ZM_CFG_PROTO_TCP && w->n_services == 1 && !strcmp(w->node, "n9"),
	   "an address no pod holds becomes a TCP workload of the service");
	zm_addr_parse("198.19.0.12", &vip);
	s = zm_config_service_by_vip(cfg, NULL, &vip);
	ok(s && s->waypoint.present && s->waypoint.service &&
	       !strcmp(s->waypoint.service->name, "waypoint"),
	   "istio.io/use-waypoint on a Service names its waypoint");
	zm_addr_parse("198.19.0.13", &vip);
	s = zm_config_service_by_vip(cfg, NULL, &vip);
	ok(s && !s->waypoint.present, "an unknown waypoint is not used");
	zm_config_free(cfg);

	/* The namespace's waypoint applies to its services; "none" on a Service opts out. */
	ev(st, ZM_KUBE_NAMESPACES,
	   MOD
	   "{\"metadata\":{\"name\":\"demo\",\"labels\":{\"istio.io/dataplane-mode\":\"ambient\","
	   "\"istio.io/use-waypoint\":\"waypoint\"}}}}");
	ev(st, ZM_KUBE_SERVICES,
	   SVC("demo", "lost", ",\"labels\":{\"istio.io/use-waypoint\":\"none\"}",
	       "\"clusterIP\":\"198.19.0.13\",\"ports\":[{\"port\":80}]"));
	cfg = build(st);
	zm_addr_parse("198.19.0.10", &vip);
	s = zm_config_service_by_vip(cfg, NULL, &vip);
	ok(s && s->waypoint.present, "a namespace's istio.io/use-waypoint applies to its services");
	zm_addr_parse("198.19.0.13", &vip);
	s = zm_config_service_by_vip(cfg, NULL, &vip);
	ok(s && !s->waypoint.present, "a Service labelled none keeps out");
	zm_config_free(cfg);
	zm_kube_store_free(st);
}

static void test_conflicts(void)
{
	struct zm_kube_store *st = zm_kube_store_new();
	struct zm_config *cfg;
	const struct zm_cfg_workload *w;
	struct zm_addr a;

	ev(st, ZM_KUBE_PODS,
	   ADDED POD("a", "old", ",\"creationTimestamp\":\"2026-01-01T00:00:00Z\"", "",
		     READY ",\"podIPs\":[{\"ip\":\"198.18.1.40\"}]") "}");
	ev(st, ZM_KUBE_PODS,
	   ADDED POD("a", "new", ",\"creationTimestamp\":\"2026-02-01T00:00:00Z\"", "",
		     READY ",\"podIPs\":[{\"ip\":\"198.18.1.40\"}]") "}");
	cfg = build(st);
	zm_addr_parse("198.18.1.40", &a);
	w = cfg ? zm_config_workload_by_ip(cfg, NULL, &a) : NULL;
	ok(w && !strcmp(w->name, "new"), "an address of two pods goes to the newest");
	ok(strstr(logbuf, "Pod a/old: status.podIPs: 198.18.1.40 is also Pod a/new's"),
	   "and the other is named: %s", logbuf);
	zm_config_free(cfg);
	zm_kube_store_free(st);
}

static void test_policies(void)
{
	struct zm_kube_store *st = zm_kube_store_new();
	struct zm_rbac_set *set = NULL;
	char err[2048], *text;
	size_t n;

	ev(st, ZM_KUBE_AUTHZ,
	   ADDED "{\"apiVersion\":\"security.istio.io/v1\",\"kind\":\"AuthorizationPolicy\","
		 "\"metadata\":{\"name\":\"deny-b\",\"namespace\":\"demo\",\"uid\":\"u1\","
		 "\"resourceVersion\":\"3\",\"creationTimestamp\":\"2026-01-02T00:00:00Z\","
		 "\"managedFields\":[{}],\"annotations\":{\"kubectl.kubernetes.io/x\":\"y\"}},"
		 "\"spec\":{\"action\":\"DENY\",\"rules\":[{\"from\":[{\"source\":{\"principals\":["
		 "\"cluster.local/ns/demo/sa/b\"]}}]}]},\"status\":{}}}");
	is_str(logbuf, "", "a valid policy is taken without a word (the server's fields dropped)");
	ev(st, ZM_KUBE_AUTHZ,
	   ADDED "{\"kind\":\"AuthorizationPolicy\",\"metadata\":{\"name\":\"broken\","
		 "\"namespace\":\"demo\",\"creationTimestamp\":\"2026-01-01T00:00:00Z\"},\"spec\":{"
		 "\"selector\":{\"matchLabels\":{\"app\":\"web\"}},\"rules\":[{\"from\":7}]}}}");
	ok(strstr(logbuf, "AuthorizationPolicy demo/broken:") &&
	       strstr(logbuf, "spec.rules[0].from") &&
	       strstr(logbuf, "enforced as DENY of everything it selects"),
	   "a broken AuthorizationPolicy is named with its field and fails closed: %s", logbuf);
	ev(st, ZM_KUBE_PEERAUTH,
	   ADDED "{\"kind\":\"PeerAuthentication\",\"metadata\":{\"name\":\"pa\",\"namespace\":"
		 "\"demo\"},\"spec\":{\"mtls\":{\"mode\":\"SOMETIMES\"}}}}");
	ok(strstr(logbuf, "PeerAuthentication demo/pa:") && strstr(logbuf, "left out"),
	   "a broken PeerAuthentication is left out by name: %s", logbuf);
	is_int(zm_kube_store_count(st, ZM_KUBE_PEERAUTH), 0, "and not kept");
	text = zm_kube_store_policies(st, &n);
	is_int(n, 2, "two policies as YAML documents");
	ok(text && strstr(text, "broken") < strstr(text, "deny-b"), "oldest first");
	ok(text && !zm_rbac_load_buf("kubernetes", text, strlen(text), &set, err, sizeof(err)) &&
	       set && set->n_policies == 2 && set->policies[0].action == ZM_CFG_ACTION_DENY &&
	       set->policies[0].n_rules == 1 && set->policies[0].n_selector == 1,
	   "lib/rbac reads them; the broken one is a DENY of all for its selector: %s", err);
	zm_rbac_set_free(set);
	free(text);
	zm_kube_store_free(st);
}

int main(void)
{
	test_membership();
	test_events();
	test_list();
	test_services();
	test_conflicts();
	test_policies();
	return tap_done();
}
