// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of the ztunnel's pure parts: routing decisions (userspace/ztunnel/route.c) on a
 * config loaded with zm_config_load_buf, weighted endpoint choice, HBONE pool keys, and the
 * exact access-log records and Istio label values (telemetry.c, lib/obs/istio.c). The
 * ztunnel's sources are not in
 * libzmesh.a, so the two files are compiled into this test directly.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../lib/tap.h"
#include "../../userspace/ztunnel/telemetry.c"
#include "../../userspace/ztunnel/route.c"

static const char cfg_text[] =
    "workloads:\n"
    "- {uid: a, name: a, namespace: ns, serviceAccount: sa-a, protocol: HBONE, node: n1,\n"
    "   workloadIps: [\"198.18.1.11\", \"2001:2:0:1::11\"]}\n"
    "- {uid: b, name: b, namespace: ns, protocol: HBONE, node: n1, workloadIps: "
    "[\"198.18.1.12\"],\n"
    "   services: {\"ns/svc.ns.svc.cluster.local\": {80: 9090}}, capacity: 3}\n"
    "- {uid: c, name: c, namespace: ns, protocol: HBONE, node: n2, workloadIps: "
    "[\"198.18.2.11\"],\n"
    "   services: {\"ns/svc.ns.svc.cluster.local\": {}}}\n"
    "- {uid: d, name: d, namespace: ns, protocol: TCP, node: n2, workloadIps: [\"198.18.2.12\"],\n"
    "   services: {\"ns/svc.ns.svc.cluster.local\": {}}, status: Unhealthy}\n"
    "- {uid: w, name: wp, namespace: ns, protocol: HBONE, node: n2, workloadIps: "
    "[\"198.18.2.20\"]}\n"
    "- {uid: e, name: e, namespace: ns, protocol: HBONE, node: n2, workloadIps: "
    "[\"198.18.2.13\"],\n"
    "   waypoint: {destination: \"/198.18.2.20\"}}\n"
    "services:\n"
    "- {name: svc, namespace: ns, hostname: svc.ns.svc.cluster.local, vips: [\"/198.18.100.1\"],\n"
    "   ports: {80: 8080}}\n"
    "- {name: down, namespace: ns, hostname: down.ns.svc.cluster.local, vips: "
    "[\"/198.18.100.2\"],\n"
    "   ports: {80: 8080}}\n"
    "- {name: wsvc, namespace: ns, hostname: wsvc.ns.svc.cluster.local, vips: "
    "[\"/198.18.100.3\"],\n"
    "   ports: {80: 8080}, waypoint: {destination: \"/198.18.2.20\", hboneMtlsPort: 15008}}\n";

static struct zm_addr A(const char *t) {
	struct zm_addr a;

	if (zm_addr_parse(t, &a))
		tap_bail("bad address %s", t);
	return a;
}

static const char *
fmt(const struct zm_addr *a, char *buf)
{
	return zm_addr_format(a, buf, ZM_ADDR_STRLEN);
}

static void test_routes(struct zt_snap *s)
{
	struct zm_addr src = A("198.18.1.11"), dst;
	struct zt_route r;
	char b[ZM_ADDR_STRLEN];

	dst = A("198.18.2.11");
	zt_route_outbound(s, &src, &dst, 7777, 0, &r);
	is_int(r.kind, ZT_ROUTE_HBONE, "remote HBONE pod: HBONE");
	is_str(fmt(&r.dial_addr, b), "198.18.2.11", "  dialed at the pod");
	is_int(r.dial_port, 15008, "  on 15008");
	is_int(r.target_port, 7777, "  authority keeps the port");
	is_str(r.src->name, "a", "  source workload found by address");

	dst = A("198.18.2.12");
	zt_route_outbound(s, &src, &dst, 7777, 0, &r);
	is_int(r.kind, ZT_ROUTE_TCP, "remote TCP pod: plain TCP");
	dst = A("198.18.1.12");
	zt_route_outbound(s, &src, &dst, 7777, 0, &r);
	is_int(r.kind, ZT_ROUTE_LOCAL, "same-node pod: local splice");
	is_int(r.dial_port, 7777, "  straight to the app port");
	dst = A("203.0.113.9");
	zt_route_outbound(s, &src, &dst, 443, 0, &r);
	is_int(r.kind, ZT_ROUTE_PASSTHROUGH, "unknown destination: passthrough");
	is_str(fmt(&r.dial_addr, b), "203.0.113.9", "  unchanged");

	src = A("198.18.9.9");
	zt_route_outbound(s, &src, &dst, 443, 0, &r);
	ok(r.kind == ZT_ROUTE_REFUSE && r.refuse == ZT_OUT_UNKNOWN_SOURCE,
	   "unknown source refused");
	src = A("198.18.2.11");
	zt_route_outbound(s, &src, &dst, 443, 0, &r);
	ok(r.kind == ZT_ROUTE_REFUSE && r.refuse == ZT_OUT_UNKNOWN_SOURCE,
	   "a source of another node refused");

	src = A("198.18.1.11");
	dst = A("198.18.100.2");
	zt_route_outbound(s, &src, &dst, 80, 0, &r);
	ok(r.kind == ZT_ROUTE_REFUSE && r.refuse == ZT_OUT_NO_ENDPOINT,
	   "service without endpoints: no_healthy_endpoint");
	dst = A("198.18.100.3");
	zt_route_outbound(s, &src, &dst, 80, 0, &r);
	is_int(r.kind, ZT_ROUTE_HBONE, "service with a waypoint: HBONE");
	is_str(fmt(&r.dial_addr, b), "198.18.2.20", "  to the waypoint");
	is_str(fmt(&r.target_addr, b), "198.18.100.3", "  authority is the original VIP");
	is_int(r.target_port, 80, "  and the original port");
	dst = A("198.18.2.13");
	zt_route_outbound(s, &src, &dst, 80, 0, &r);
	ok(r.kind == ZT_ROUTE_HBONE && r.waypoint && !strcmp(r.waypoint->name, "wp"),
	   "pod with a waypoint goes through it");
	src = A("198.18.2.20");
	s->node = "n2";
	zt_route_outbound(s, &src, &dst, 80, 0, &r);
	ok(r.kind == ZT_ROUTE_LOCAL && !r.waypoint, "the waypoint itself goes direct (no loop)");
	s->node = "n1";
}

static void test_endpoints(struct zt_snap *s)
{
	struct zm_addr src = A("198.18.1.11"), dst = A("198.18.100.1");
	unsigned int nb = 0, nc = 0, nd = 0, i;
	struct zt_route r;

	for (i = 0; i < 400; i++) {
		zt_route_outbound(s, &src, &dst, 80, i, &r);
		if (r.dst && !strcmp(r.dst->name, "b")) {
			nb++;
			if (i == 0) {
				is_int(r.kind, ZT_ROUTE_LOCAL,
				       "VIP -> same-node endpoint b: local");
				is_int(r.target_port, 9090, "  workload port map overrides 8080");
			}
		} else if (r.dst && !strcmp(r.dst->name, "c")) {
			nc++;
			if (nc == 1) {
				is_int(r.kind, ZT_ROUTE_HBONE, "VIP -> remote endpoint c: HBONE");
				is_int(r.target_port, 8080, "  service targetPort");
			}
		} else {
			nd++;
		}
	}
	is_int(nb, 300, "capacity 3 endpoint gets 3/4 of picks");
	is_int(nc, 100, "capacity 1 endpoint gets 1/4");
	is_int(nd, 0, "unhealthy endpoint never picked");
	zt_route_outbound(s, &src, &dst, 81, 0, &r);
	ok(r.kind == ZT_ROUTE_REFUSE && r.refuse == ZT_OUT_NO_PORT,
	   "undeclared service port refused");
}

static void test_pool_key(void)
{
	struct zm_addr s4 = A("198.18.1.11"), d6 = A("2001:2:0:2::11"), d4 = A("198.18.2.11");
	char buf[ZT_POOL_KEY_LEN], tiny[8];

	ok(!zt_pool_key_format("spiffe://td/ns/a/sa/x", "spiffe://td/ns/b/sa/y", &s4, &d4, 15008,
			       buf, sizeof(buf)),
	   "pool key formats");
	is_str(buf, "spiffe://td/ns/a/sa/x|spiffe://td/ns/b/sa/y|198.18.1.11|198.18.2.11:15008",
	       "pool key text");
	zt_pool_key_format("a", "b", &s4, &d6, 15008, buf, sizeof(buf));
	is_str(buf, "a|b|198.18.1.11|[2001:2:0:2::11]:15008", "IPv6 destination bracketed");
	is_int(zt_pool_key_format("a", "b", &s4, &d4, 1, tiny, sizeof(tiny)), -ENOSPC,
	       "too small a buffer: -ENOSPC");
}

static void test_log(void)
{
	struct zt_conn_info i = {.dir = "outbound",
				 .via = "hbone",
				 .sport = 40000,
				 .dport = 7777,
				 .up_port = 15008,
				 .bytes_sent = 5,
				 .bytes_recv = 7};
	struct obs_rec r;
	char buf[4096];

	i.src = A("198.18.1.11");
	i.dst = A("198.18.2.11");
	i.up = A("198.18.2.11");
	snprintf(i.src_workload, sizeof(i.src_workload), "ns/a");
	snprintf(i.src_id, sizeof(i.src_id), "spiffe://td/ns/ns/sa/a");
	zt_access_open_rec(&i, &r);
	obs_rec_render(&r, buf, sizeof(buf));
	ok(strstr(buf, " level=info scope=access msg=open dir=outbound via=hbone "
		       "src.addr=198.18.1.11:40000 src.workload=ns/a "
		       "src.identity=spiffe://td/ns/ns/sa/a dst.addr=198.18.2.11:7777 "
		       "dst.service=- dst.workload=- dst.identity=- upstream=198.18.2.11:15008") &&
	       !strstr(buf, "truncated"),
	   "open record (%s)", buf);
	zt_access_close_rec(&i, ZT_OUT_DIAL_FAILED, "198.18.2.11:15008: Connection refused", 12,
			    &r);
	obs_rec_render(&r, buf, sizeof(buf));
	ok(strstr(buf, " upstream=198.18.2.11:15008 bytes_sent=5 bytes_recv=7 duration_ms=12 "
		       "outcome=dial_failed reason=\"upstream connect failed: 198.18.2.11:15008: "
		       "Connection refused\"") != NULL,
	   "close record: bytes, duration, outcome and hint (%s)", buf);
	obs_log_set_format("json");
	obs_rec_render(&r, buf, sizeof(buf));
	ok(strstr(buf, "\"scope\":\"access\",\"msg\":\"close\",\"dir\":\"outbound\"") &&
	       strstr(buf, "\"bytes_sent\":5,\"bytes_recv\":7,\"duration_ms\":12,"),
	   "the same record in JSON (%s)", buf);
	obs_log_set_format("logfmt");
	is_str(zt_outcome_name(ZT_OUT_OK), "ok", "outcome names");
}

/* Istio's labels of a connection, as lib/obs/istio.c derives them from the workloads. */
static void test_labels(struct zt_snap *s)
{
	struct obs_istio_traffic t = {.reporter = "source",
				      .request_protocol = "tcp",
				      .connection_security_policy = "unknown"};
	const char *v[OBS_ISTIO_HTTP_N];
	size_t i;

	obs_istio_peer_fill(&t.src, &s->cfg->workloads[0], true);
	obs_istio_values(&t, false, v);
	for (i = 0; OBS_ISTIO_TCP_LABELS[i]; i++)
		;
	is_int(i, OBS_ISTIO_TCP_N, "TCP label names");
	is_str(OBS_ISTIO_TCP_LABELS[0], "reporter", "reporter first");
	is_str(v[1], s->cfg->workloads[0].name, "source_workload is the workload's name");
	is_str(v[7], "latest", "no revision anywhere: canonical revision \"latest\"");
	is_str(v[8], "Kubernetes", "default cluster");
	is_str(v[9], "unknown", "no destination: unknown");
	is_str(v[OBS_ISTIO_TCP_N - 1], "-", "response_flags \"-\" when none");
}

int main(void)
{
	char err[4096];
	struct zm_config *cfg;
	struct zt_snap *s;

	if (zm_config_load_buf("t.yaml", cfg_text, strlen(cfg_text), &cfg, err, sizeof(err)))
		tap_bail("config: %s", err);
	s = zt_snap_build(cfg, "n1");
	if (!s)
		tap_bail("zt_snap_build failed");
	test_routes(s);
	test_endpoints(s);
	test_pool_key();
	test_log();
	test_labels(s);
	zt_snap_destroy(s);
	return tap_done();
}
