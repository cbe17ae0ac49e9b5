// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of the waypoint's request metrics (userspace/waypoint/telemetry.c): the series a
 * request counts in carry Istio's labels, and a connection's cache of them (struct wp_mcache)
 * gives the same series as a lookup, is hit by the requests that differ only in what it keys
 * on, and is emptied by a request of another snapshot or another client. The waypoint's
 * sources are not in libzmesh.a, so telemetry.c is compiled into this test directly.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../lib/tap.h"
#include "../../userspace/waypoint/telemetry.c"

static const char cfg_text[] =
    "workloads:\n"
    "- {uid: a, name: a, namespace: ns, serviceAccount: sa-a, protocol: HBONE, node: n1,\n"
    "   workloadIps: [\"198.18.1.11\"], labels: {app: client, version: v1}}\n"
    "- {uid: b, name: b-0, workloadName: b, namespace: ns, serviceAccount: sa-b, protocol: "
    "HBONE,\n"
    "   node: n2, workloadIps: [\"198.18.2.11\"], services: {\"ns/svc.ns.svc.cluster.local\": "
    "{}}}\n"
    "- {uid: c, name: c, namespace: ns, protocol: HBONE, node: n2, workloadIps: "
    "[\"198.18.2.12\"],\n"
    "   services: {\"ns/svc.ns.svc.cluster.local\": {}}}\n"
    "services:\n"
    "- {name: svc, namespace: ns, hostname: svc.ns.svc.cluster.local, vips: [\"/198.18.100.1\"],\n"
    "   ports: {80: 8080}}\n";

static struct wp wp;

/* The istio_requests_total count of the series r's labels give, looked up without a cache. */
static double count_of(const struct wp_mreq *r)
{
	struct obs_series *const *s = wp_metric_series(&wp, r);

	return s ? obs_series_value(s[WP_M_REQUESTS]) : -1;
}

/* The rendered registry has this series of istio_requests_total with value v. */
static bool has_series(const char *labels, const char *v)
{
	size_t len;
	char *text = obs_registry_render(obs_metrics(), &len), line[2048];
	bool found;

	snprintf(line, sizeof(line), "istio_requests_total{%s} %s\n", labels, v);
	found = text && strstr(text, line);
	if (!found)
		printf("# no line: %s", line);
	free(text);
	return found;
}

static void test_labels(const struct wp_mreq *base)
{
	struct wp_mreq r = *base;

	r.cache = NULL;
	wp_metric_request(&wp, &r);
	ok(has_series(
	       "reporter=\"waypoint\",source_workload=\"a\",source_workload_namespace=\"ns\","
	       "source_principal=\"spiffe://cluster.local/ns/ns/sa/sa-a\","
	       "source_app=\"client\",source_version=\"v1\","
	       "source_canonical_service=\"client\",source_canonical_revision=\"v1\","
	       "source_cluster=\"Kubernetes\",destination_workload=\"b\","
	       "destination_workload_namespace=\"ns\","
	       "destination_principal=\"spiffe://cluster.local/ns/ns/sa/sa-b\","
	       "destination_app=\"unknown\",destination_version=\"unknown\","
	       "destination_service=\"svc.ns.svc.cluster.local\","
	       "destination_service_name=\"svc\",destination_service_namespace=\"ns\","
	       "destination_canonical_service=\"b\",destination_canonical_revision=\"latest\","
	       "destination_cluster=\"Kubernetes\",connection_security_policy=\"mutual_tls\","
	       "grpc_response_status=\"\",request_protocol=\"http\",response_code=\"200\","
	       "response_flags=\"-\"",
	       "1"),
	   "labels: both workloads, both principals in full (dst's from its identity), the "
	   "service");
	r.dst = NULL;
	r.src = NULL;
	r.src_principal = "";
	r.svc = NULL;
	r.code = 503;
	r.flags = "UH";
	wp_metric_request(&wp, &r);
	ok(has_series("reporter=\"waypoint\",source_workload=\"unknown\","
		      "source_workload_namespace=\"unknown\",source_principal=\"unknown\","
		      "source_app=\"unknown\",source_version=\"unknown\","
		      "source_canonical_service=\"unknown\",source_canonical_revision=\"unknown\","
		      "source_cluster=\"unknown\",destination_workload=\"unknown\","
		      "destination_workload_namespace=\"unknown\","
		      "destination_principal=\"unknown\",destination_app=\"unknown\","
		      "destination_version=\"unknown\",destination_service=\"unknown\","
		      "destination_service_name=\"unknown\","
		      "destination_service_namespace=\"unknown\","
		      "destination_canonical_service=\"unknown\","
		      "destination_canonical_revision=\"unknown\","
		      "destination_cluster=\"unknown\",connection_security_policy=\"mutual_tls\","
		      "grpc_response_status=\"\",request_protocol=\"http\",response_code=\"503\","
		      "response_flags=\"UH\"",
		      "1"),
	   "labels: nothing known is unknown");
}

static void test_cache(struct zm_config *cfg, const struct wp_mreq *base)
{
	struct wp_snap s1 = {.mesh = cfg, .serial = 101}, s2 = {.mesh = cfg, .serial = 102};
	struct zm_cfg_workload *b = &cfg->workloads[1];
	struct wp_mcache mc = {0};
	struct wp_mreq r = *base;
	double before;

	r.snap = &s1;
	r.cache = &mc;
	r.code = 201;
	before = count_of(&r);
	wp_metric_request(&wp, &r);
	ok(mc.n == 1 && mc.serial == 101 && mc.e[0].s == wp_metric_series(&wp, &r),
	   "a miss fills an entry with the series a lookup gives");
	wp_metric_request(&wp, &r);
	is_int(mc.n, 1, "the same labels again: a hit, no new entry");
	is_int(count_of(&r) - before, 2, "  counted twice in that series");

	/* A hit does not read the workload again: renamed in place, the old series still counts. */
	b->workload_name = "b-renamed";
	wp_metric_request(&wp, &r);
	is_int(mc.n, 1, "a hit does not look at the workload's fields");
	is_int(count_of(&r), 0, "  the renamed workload's series was not counted");
	b->workload_name = "b";
	is_int(count_of(&r) - before, 3, "  the cached one was");

	/* Another snapshot empties the cache, though the pointers are the same. */
	b->workload_name = "b-renamed";
	r.snap = &s2;
	wp_metric_request(&wp, &r);
	ok(mc.n == 1 && mc.serial == 102, "another snapshot: the cache starts again");
	is_int(count_of(&r), 1, "  and counts the labels that snapshot gives");
	b->workload_name = "b";

	/* What varies per request: each its own entry, replaced in turn past WP_MCACHE_N. */
	r.code = 500;
	wp_metric_request(&wp, &r);
	r.flags = "UF";
	wp_metric_request(&wp, &r);
	r.protocol = "grpc";
	r.grpc_status = "14";
	wp_metric_request(&wp, &r);
	is_int(mc.n, 4, "code, flags, protocol and gRPC status are keys");
	r.dst = &cfg->workloads[2];
	wp_metric_request(&wp, &r);
	ok(mc.n == 4 && mc.next == 1 && mc.e[0].dst == r.dst, "a fifth replaces the oldest");
	is_int(count_of(&r), 1, "  counted in the other endpoint's series");
	r.protocol = NULL;
	r.grpc_status = NULL;
	r.flags = NULL;
	wp_metric_request(&wp, &r);
	ok(mc.e[1].s == wp_metric_series(&wp, &r) && !strcmp(mc.e[1].protocol, "http"),
	   "NULL protocol is cached as the \"http\" it counts as");

	/* A label too long for the key: counted, not cached, the entries left as they were. */
	r.flags = "UF,URX,DC";
	before = count_of(&r);
	wp_metric_request(&wp, &r);
	ok(mc.n == 4 && mc.next == 2, "flags longer than the key: not cached");
	is_int(count_of(&r) - before, 1, "  but counted");

	/* The connection-level key: another client or service empties the cache. */
	r.flags = "-";
	r.src_principal = "cluster.local/ns/other/sa/x";
	wp_metric_request(&wp, &r);
	ok(mc.n == 1 && !strcmp(mc.src_principal, r.src_principal),
	   "another client principal: the cache starts again");
	r.svc = NULL;
	wp_metric_request(&wp, &r);
	ok(mc.n == 1 && !mc.svc, "another service: the cache starts again");
	r.snap = &(struct wp_snap){.mesh = cfg, .serial = 0};
	wp_metric_request(&wp, &r);
	ok(mc.n == 1 && mc.serial == 102, "a snapshot without a serial is not cached");
}

int main(void)
{
	struct zm_config *cfg = NULL;
	struct wp_snap snap;
	struct wp_mreq r;
	char err[512];

	obs_log_init("waypoint", (const char *const[]){"access", NULL});
	if (wp_metrics_init(&wp))
		tap_bail("wp_metrics_init failed");
	if (zm_config_load_buf("t.yaml", cfg_text, strlen(cfg_text), &cfg, err, sizeof(err)))
		tap_bail("config: %s", err);
	snap = (struct wp_snap){.mesh = cfg, .serial = 1};
	r = (struct wp_mreq){.snap = &snap,
			     .src_principal = "cluster.local/ns/ns/sa/sa-a",
			     .src = &cfg->workloads[0],
			     .dst = &cfg->workloads[1],
			     .svc = &cfg->services[0],
			     .protocol = "http",
			     .code = 200,
			     .grpc_status = "",
			     .flags = "-"};
	test_labels(&r);
	test_cache(cfg, &r);
	zm_config_free(cfg);
	return tap_done();
}
