// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of lib/xds: the delta ADS state machine and the translation into the config
 * model. Responses are built with protobuf-c as a control plane would send them; the tests
 * check the ACK/NACK each one gets (by decoding the reply), the model that results, the
 * initial_resource_versions of a reconnect, and that bad resources (wrong address length,
 * port 0, unknown enum values, duplicate addresses, a waypoint naming nothing, a removal that
 * would leave one dangling, garbage) are NACKed by name and field while the rest applies.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "istio/security/authorization.pb-c.h"
#include "istio/workload/workload.pb-c.h"
#include "xds/xds.h"
#include "tap.h"

typedef Envoy__Service__Discovery__V3__DeltaDiscoveryRequest DReq;
typedef Envoy__Service__Discovery__V3__DeltaDiscoveryResponse DResp;
typedef Envoy__Service__Discovery__V3__Resource Res;

static struct zm_xds *x;
static char lg[8192];

/* A packed Any-wrapped resource list as a response. */
struct rb {
	Res r[16];
	Res *pr[16];
	Google__Protobuf__Any any[16];
	uint8_t *buf[16];
	size_t n;
	char *rm[16];
	size_t n_rm;
};

static void rb_add(struct rb *b, const char *name, const char *ver, const char *url,
		   const ProtobufCMessage *m)
{
	size_t i = b->n++;

	b->r[i] = (Res)ENVOY__SERVICE__DISCOVERY__V3__RESOURCE__INIT;
	b->any[i] = (Google__Protobuf__Any)GOOGLE__PROTOBUF__ANY__INIT;
	b->buf[i] = malloc(protobuf_c_message_get_packed_size(m) + 1);
	b->any[i].value.len = protobuf_c_message_pack(m, b->buf[i]);
	b->any[i].value.data = b->buf[i];
	b->any[i].type_url = (char *)url;
	b->r[i].name = (char *)name;
	b->r[i].version = (char *)ver;
	b->r[i].resource = &b->any[i];
	b->pr[i] = &b->r[i];
}

static void rb_addr(struct rb *b, const char *name, const char *ver, Istio__Workload__Workload *w,
		    Istio__Workload__Service *s)
{
	Istio__Workload__Address a = ISTIO__WORKLOAD__ADDRESS__INIT;

	if (w) {
		a.type_case = ISTIO__WORKLOAD__ADDRESS__TYPE_WORKLOAD;
		a.workload = w;
	} else {
		a.type_case = ISTIO__WORKLOAD__ADDRESS__TYPE_SERVICE;
		a.service = s;
	}
	rb_add(b, name, ver, ZM_XDS_TYPE_ADDRESS, &a.base);
}

/* Send b as a response of url with nonce; returns the decoded reply (NULL on -EPROTO). */
static DReq *rb_send(struct rb *b, const char *url, const char *nonce, bool *changed)
{
	DResp rs = ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_RESPONSE__INIT;
	uint8_t *msg, *reply;
	size_t len, rl;
	DReq *rq = NULL;
	int r;

	rs.type_url = (char *)url;
	rs.nonce = (char *)nonce;
	rs.system_version_info = "v-sys";
	rs.n_resources = b->n;
	rs.resources = b->pr;
	rs.n_removed_resources = b->n_rm;
	rs.removed_resources = b->rm;
	msg = malloc(protobuf_c_message_get_packed_size(&rs.base) + 1);
	len = protobuf_c_message_pack(&rs.base, msg);
	r = zm_xds_handle(x, msg, len, &reply, &rl, changed, lg, sizeof(lg));
	if (!r) {
		rq =
		    envoy__service__discovery__v3__delta_discovery_request__unpack(NULL, rl, reply);
		free(reply);
	}
	free(msg);
	for (size_t i = 0; i < b->n; i++)
		free(b->buf[i]);
	memset(b, 0, sizeof(*b));
	return rq;
}

static uint8_t ip4[][4] = {{198, 18, 1, 11}, {198, 18, 1, 12}, {198, 18, 2, 11}, {198, 19, 0, 1}};

static void wl_init(Istio__Workload__Workload *w, const char *uid, const char *name, int ip,
		    ProtobufCBinaryData *addr)
{
	*w = (Istio__Workload__Workload)ISTIO__WORKLOAD__WORKLOAD__INIT;
	w->uid = (char *)uid;
	w->name = (char *)name;
	w->namespace_ = "default";
	w->service_account = "sa";
	w->node = "n1";
	w->tunnel_protocol = ISTIO__WORKLOAD__TUNNEL_PROTOCOL__HBONE;
	addr->data = ip4[ip];
	addr->len = 4;
	w->n_addresses = 1;
	w->addresses = addr;
}

static struct zm_config *model(void)
{
	struct zm_config *cfg;
	char err[2048];

	if (zm_xds_build(x, &cfg, err, sizeof(err))) {
		printf("# build: %s\n", err);
		return NULL;
	}
	return cfg;
}

static bool is_ack(DReq *rq, const char *nonce)
{
	return rq && !strcmp(rq->response_nonce, nonce) && !rq->error_detail;
}

static bool is_nack(DReq *rq, const char *nonce, const char *needle)
{
	bool ok = rq && !strcmp(rq->response_nonce, nonce) && rq->error_detail &&
		  strstr(rq->error_detail->message, needle);

	if (!ok && rq && rq->error_detail)
		printf("#   error_detail: %s\n", rq->error_detail->message);
	return ok;
}

static void test_initial(void)
{
	uint8_t *buf;
	size_t len;
	DReq *rq;

	is_str(zm_xds_node_id(x),
	       "ztunnel~198.18.0.1~zt-1.istio-system~istio-system.svc.cluster.local",
	       "node id in the reference's form");
	is_int(zm_xds_initial_request(x, ZM_XDS_ADDRESS, &buf, &len), 0, "initial request");
	rq = envoy__service__discovery__v3__delta_discovery_request__unpack(NULL, len, buf);
	ok(rq && !strcmp(rq->type_url, ZM_XDS_TYPE_ADDRESS) && rq->node &&
	       !strcmp(rq->node->id, zm_xds_node_id(x)) && rq->n_initial_resource_versions == 0 &&
	       !rq->n_resource_names_subscribe && !rq->response_nonce[0],
	   "first request: type, node, wildcard subscription, nothing held, no nonce");
	ok(rq && rq->node->metadata && rq->node->metadata->n_fields >= 4,
	   "node metadata: NAME, NAMESPACE, INSTANCE_IPS, NODE_NAME");
	envoy__service__discovery__v3__delta_discovery_request__free_unpacked(rq, NULL);
	free(buf);
}

static void test_push_and_ack(void)
{
	Istio__Workload__Workload a, b;
	Istio__Workload__Service s = ISTIO__WORKLOAD__SERVICE__INIT;
	Istio__Workload__NetworkAddress vip = ISTIO__WORKLOAD__NETWORK_ADDRESS__INIT, *pvip = &vip;
	Istio__Workload__Port port = ISTIO__WORKLOAD__PORT__INIT, *pport = &port;
	Istio__Workload__PortList pl = ISTIO__WORKLOAD__PORT_LIST__INIT;
	Istio__Workload__Workload__ServicesEntry
	    se = ISTIO__WORKLOAD__WORKLOAD__SERVICES_ENTRY__INIT,
	    *pse = &se;
	ProtobufCBinaryData aa, ba;
	struct rb rb = {0};
	struct zm_config *cfg;
	bool changed;
	DReq *rq;

	wl_init(&a, "Kubernetes//Pod/default/a", "a", 0, &aa);
	wl_init(&b, "Kubernetes//Pod/default/b", "b", 2, &ba);
	b.node = "n2";
	port.service_port = 80;
	port.target_port = 8080;
	pl.n_ports = 1;
	pl.ports = &pport;
	se.key = "default/svc.default.svc.cluster.local";
	se.value = &pl;
	b.n_services = 1;
	b.services = &pse;
	s.name = "svc";
	s.namespace_ = "default";
	s.hostname = "svc.default.svc.cluster.local";
	vip.address.data = ip4[3];
	vip.address.len = 4;
	s.n_addresses = 1;
	s.addresses = &pvip;
	s.n_ports = 1;
	s.ports = &pport;
	rb_addr(&rb, a.uid, "1", &a, NULL);
	rb_addr(&rb, b.uid, "1", &b, NULL);
	rb_addr(&rb, "default/svc.default.svc.cluster.local", "1", NULL, &s);
	rq = rb_send(&rb, ZM_XDS_TYPE_ADDRESS, "n-1", &changed);
	ok(is_ack(rq, "n-1") && changed, "two workloads and a service: ACK by nonce");
	envoy__service__discovery__v3__delta_discovery_request__free_unpacked(rq, NULL);
	cfg = model();
	ok(cfg && cfg->n_workloads == 2 && cfg->n_services == 1, "the model holds them");
	if (cfg) {
		const struct zm_cfg_workload *w = zm_config_workload_by_uid(cfg, b.uid);

		ok(w && w->protocol == ZM_CFG_PROTO_HBONE && !strcmp(w->node, "n2") &&
		       w->n_services == 1 && w->services[0].service &&
		       w->services[0].ports[0].target_port == 8080,
		   "workload b: HBONE, node n2, endpoint of svc 80->8080");
		ok(zm_config_service_by_key(cfg, "default/svc.default.svc.cluster.local") != NULL,
		   "service by namespace/hostname");
		is_str(w ? w->trust_domain : NULL, "cluster.local",
		       "empty trust domain: the default");
		zm_config_free(cfg);
	}
}

static void test_bad_resources(void)
{
	Istio__Workload__Workload c, d, e, f, g;
	Istio__Workload__GatewayAddress wp = ISTIO__WORKLOAD__GATEWAY_ADDRESS__INIT;
	Istio__Workload__NamespacedHostname nh = ISTIO__WORKLOAD__NAMESPACED_HOSTNAME__INIT;
	ProtobufCBinaryData ca, da, ea, fa, ga;
	uint8_t three[3] = {1, 2, 3};
	struct rb rb = {0};
	struct zm_config *cfg;
	bool changed;
	DReq *rq;

	wl_init(&c, "c", "c", 1, &ca); /* good */
	wl_init(&d, "d", "d", 1, &da);
	da.data = three;
	da.len = 3; /* address of 3 bytes */
	wl_init(&e, "e", "e", 1, &ea);
	e.tunnel_protocol = 7;	       /* unknown enum */
	wl_init(&f, "f", "f", 0, &fa); /* the address of a (held) */
	wl_init(&g, "g", "g", 1, &ga);
	g.addresses = NULL;
	g.n_addresses = 0;
	g.hostname = "g.example";
	nh.namespace_ = "default";
	nh.hostname = "nowhere.default.svc.cluster.local";
	wp.destination_case = ISTIO__WORKLOAD__GATEWAY_ADDRESS__DESTINATION_HOSTNAME;
	wp.hostname = &nh;
	wp.hbone_mtls_port = 15008;
	g.waypoint = &wp; /* dangling waypoint */
	rb_addr(&rb, "c", "1", &c, NULL);
	rb_addr(&rb, "d", "1", &d, NULL);
	rb_addr(&rb, "e", "1", &e, NULL);
	rb_addr(&rb, "f", "1", &f, NULL);
	rb_addr(&rb, "g", "1", &g, NULL);
	rb_addr(&rb, "wrong-name", "1", &c, NULL);
	rq = rb_send(&rb, ZM_XDS_TYPE_ADDRESS, "n-2", &changed);
	ok(is_nack(rq, "n-2", "d: addresses[0]: address of 3 bytes"), "NACK names d and its field");
	ok(is_nack(rq, "n-2", "e: tunnel_protocol: unknown value 7"),
	   "NACK names e's unknown enum");
	ok(is_nack(rq, "n-2", "f: ") && strstr(rq->error_detail->message, "already used"),
	   "NACK: f reuses a's address");
	ok(is_nack(rq, "n-2", "g: ") && strstr(rq->error_detail->message, "unknown service"),
	   "NACK: g's waypoint names no service");
	ok(is_nack(rq, "n-2", "wrong-name: workload.uid"), "NACK: resource name is not the uid");
	ok(changed, "the rest of the push applied");
	envoy__service__discovery__v3__delta_discovery_request__free_unpacked(rq, NULL);
	cfg = model();
	ok(cfg && cfg->n_workloads == 3 && zm_config_workload_by_uid(cfg, "c") &&
	       !zm_config_workload_by_uid(cfg, "d") && !zm_config_workload_by_uid(cfg, "f"),
	   "c applied; d, e, f, g not; a and b kept");
	zm_config_free(cfg);
}

static void test_removals(void)
{
	Istio__Workload__Workload w;
	Istio__Workload__Service s = ISTIO__WORKLOAD__SERVICE__INIT;
	Istio__Workload__GatewayAddress wp = ISTIO__WORKLOAD__GATEWAY_ADDRESS__INIT;
	Istio__Workload__NamespacedHostname nh = ISTIO__WORKLOAD__NAMESPACED_HOSTNAME__INIT;
	ProtobufCBinaryData wa;
	struct rb rb = {0};
	struct zm_config *cfg;
	bool changed;
	DReq *rq;

	/* a workload whose waypoint is the held service */
	wl_init(&w, "h", "h", 3, &wa);
	nh.namespace_ = "default";
	nh.hostname = "svc.default.svc.cluster.local";
	wp.destination_case = ISTIO__WORKLOAD__GATEWAY_ADDRESS__DESTINATION_HOSTNAME;
	wp.hostname = &nh;
	wp.hbone_mtls_port = 15008;
	w.waypoint = &wp;
	(void)s;
	rb_addr(&rb, "h", "1", &w, NULL);
	rq = rb_send(&rb, ZM_XDS_TYPE_ADDRESS, "n-3", &changed);
	ok(is_ack(rq, "n-3"), "a workload using svc as its waypoint: ACK");
	envoy__service__discovery__v3__delta_discovery_request__free_unpacked(rq, NULL);

	rb.rm[rb.n_rm++] = "default/svc.default.svc.cluster.local";
	rq = rb_send(&rb, ZM_XDS_TYPE_ADDRESS, "n-4", &changed);
	ok(is_nack(rq, "n-4", "default/svc.default.svc.cluster.local: removal refused"),
	   "removing the waypoint's service would dangle h: NACK, service kept");
	envoy__service__discovery__v3__delta_discovery_request__free_unpacked(rq, NULL);

	rb.rm[rb.n_rm++] = "h";
	rb.rm[rb.n_rm++] = "c";
	rq = rb_send(&rb, ZM_XDS_TYPE_ADDRESS, "n-5", &changed);
	ok(is_ack(rq, "n-5") && changed, "removing workloads h and c: ACK");
	envoy__service__discovery__v3__delta_discovery_request__free_unpacked(rq, NULL);
	cfg = model();
	ok(cfg && !zm_config_workload_by_uid(cfg, "c") && !zm_config_workload_by_uid(cfg, "h") &&
	       cfg->n_workloads == 2,
	   "removed workloads are gone from the model");
	zm_config_free(cfg);
}

static void test_authz(void)
{
	Istio__Security__Authorization a = ISTIO__SECURITY__AUTHORIZATION__INIT, bad;
	Istio__Security__Rule ru = ISTIO__SECURITY__RULE__INIT, *pru = &ru;
	Istio__Security__Clause cl = ISTIO__SECURITY__CLAUSE__INIT, *pcl = &cl;
	Istio__Security__Match m = ISTIO__SECURITY__MATCH__INIT, *pm = &m;
	Istio__Security__StringMatch sm = ISTIO__SECURITY__STRING_MATCH__INIT, *psm = &sm;
	Google__Protobuf__Empty empty = GOOGLE__PROTOBUF__EMPTY__INIT;
	uint32_t zero = 0;
	struct rb rb = {0};
	struct zm_config *cfg;
	bool changed;
	DReq *rq;

	/* PeerAuthentication STRICT as istiod sends it: DENY without a principal */
	sm.match_type_case = ISTIO__SECURITY__STRING_MATCH__MATCH_TYPE_PRESENCE;
	sm.presence = &empty;
	m.n_not_principals = 1;
	m.not_principals = &psm;
	cl.n_matches = 1;
	cl.matches = &pm;
	ru.n_clauses = 1;
	ru.clauses = &pcl;
	a.name = "istio_converted_static_strict";
	a.namespace_ = "istio-system";
	a.scope = ISTIO__SECURITY__SCOPE__GLOBAL;
	a.action = ISTIO__SECURITY__ACTION__DENY;
	a.n_rules = 1;
	a.rules = &pru;
	bad = a;
	bad.name = "bad";
	bad.action = 9;
	rb_add(&rb, "istio-system/istio_converted_static_strict", "1", ZM_XDS_TYPE_AUTHZ, &a.base);
	rb_add(&rb, "istio-system/bad", "1", ZM_XDS_TYPE_AUTHZ, &bad.base);
	rq = rb_send(&rb, ZM_XDS_TYPE_AUTHZ, "p-1", &changed);
	ok(is_nack(rq, "p-1", "istio-system/bad: action: unknown value 9"), "bad action NACKed");
	envoy__service__discovery__v3__delta_discovery_request__free_unpacked(rq, NULL);
	cfg = model();
	ok(cfg && cfg->n_policies == 1 && cfg->policies[0].action == ZM_CFG_ACTION_DENY &&
	       cfg->policies[0].rules[0].clauses[0].matches[0].not_principals.v[0].kind ==
		   ZM_CFG_STR_PRESENCE,
	   "the STRICT policy: DENY not_principals presence, scope global");
	zm_config_free(cfg);

	m.n_not_principals = 0;
	m.n_destination_ports = 1;
	m.destination_ports = &zero;
	rb_add(&rb, "istio-system/istio_converted_static_strict", "2", ZM_XDS_TYPE_AUTHZ, &a.base);
	rq = rb_send(&rb, ZM_XDS_TYPE_AUTHZ, "p-2", &changed);
	ok(is_nack(rq, "p-2", "rules[0].clauses[0].matches[0].destination_ports[0]: port 0"),
	   "port 0 in a policy: NACK naming the field; version 1 kept");
	envoy__service__discovery__v3__delta_discovery_request__free_unpacked(rq, NULL);
}

static void test_reconnect_and_garbage(void)
{
	uint8_t junk[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f}, *buf, *reply;
	size_t len, rl;
	bool changed;
	DReq *rq;

	is_int(zm_xds_handle(x, junk, sizeof(junk), &reply, &rl, &changed, lg, sizeof(lg)), -EPROTO,
	       "a response that does not decode: -EPROTO (reconnect)");
	is_int(zm_xds_initial_request(x, ZM_XDS_ADDRESS, &buf, &len), 0, "reconnect request");
	rq = envoy__service__discovery__v3__delta_discovery_request__unpack(NULL, len, buf);
	ok(rq && rq->n_initial_resource_versions == 3, "initial_resource_versions: what we hold");
	if (rq)
		printf("# held %zu\n", rq->n_initial_resource_versions);
	envoy__service__discovery__v3__delta_discovery_request__free_unpacked(rq, NULL);
	free(buf);
	is_int(zm_xds_initial_request(x, ZM_XDS_AUTHZ, &buf, &len), 0, "reconnect request (authz)");
	rq = envoy__service__discovery__v3__delta_discovery_request__unpack(NULL, len, buf);
	ok(rq && rq->n_initial_resource_versions == 1 &&
	       !strcmp(rq->initial_resource_versions[0]->value, "1"),
	   "the policy's held version is 1 (the rejected 2 is not claimed)");
	envoy__service__discovery__v3__delta_discovery_request__free_unpacked(rq, NULL);
	free(buf);
	ok(zm_xds_synced(x), "both types synced");
	buf = (uint8_t *)zm_xds_dump(x);
	ok(buf && strstr((char *)buf, "\"lastAckedNonce\":\"n-5\"") &&
	       strstr((char *)buf, "\"nacks\":2"),
	   "dump: last ACKed nonce and NACK count per type");
	free(buf);
}

int main(void)
{
	struct zm_xds_node n = {
	    .ip = "198.18.0.1", .pod_name = "zt-1", .namespace = "istio-system", .node_name = "n1"};

	x = zm_xds_new(&n);
	if (!x)
		tap_bail("zm_xds_new failed");
	test_initial();
	test_push_and_ack();
	test_bad_resources();
	test_removals();
	test_authz();
	test_reconnect_and_garbage();
	zm_xds_free(x);
	return tap_done();
}
