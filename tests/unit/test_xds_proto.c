// SPDX-License-Identifier: Apache-2.0
/*
 * Wire compatibility of our .proto files (userspace/lib/xds/proto) with Istio's and Envoy's:
 * every field we declare must carry the name, number, type and cardinality of the published
 * definition, and every enum value its number. The expected table below was written from
 * independent copies of Istio's workload.proto and authorization.proto (istio/ztunnel proto/,
 * istio/api) and Envoy's discovery.proto and base.proto (envoyproxy/data-plane-api), not
 * from our files; it is checked against the descriptors protoc-c generated from ours, and
 * every field of ours must appear in it (nothing invented).
 */
#include <protobuf-c/protobuf-c.h>
#include <string.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "google/protobuf/struct.pb-c.h"
#include "istio/security/authorization.pb-c.h"
#include "istio/workload/workload.pb-c.h"
#include "tap.h"

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

enum { S, R, O }; /* singular (proto3 implicit), repeated, oneof member */

struct field_want {
	const char *msg;   /* full message name */
	const char *field; /* field name */
	unsigned id;
	ProtobufCType type;
	int card;
	const char *ref; /* message or enum type name for message/enum fields */
};

#define STR  PROTOBUF_C_TYPE_STRING
#define BYT  PROTOBUF_C_TYPE_BYTES
#define U32  PROTOBUF_C_TYPE_UINT32
#define I32  PROTOBUF_C_TYPE_INT32
#define BOOL PROTOBUF_C_TYPE_BOOL
#define DBL  PROTOBUF_C_TYPE_DOUBLE
#define MSG  PROTOBUF_C_TYPE_MESSAGE
#define ENM  PROTOBUF_C_TYPE_ENUM

static const struct field_want want[] = {
    /* envoy.service.discovery.v3 (discovery.proto) */
    {"envoy.service.discovery.v3.DeltaDiscoveryRequest", "node", 1, MSG, S,
     "envoy.config.core.v3.Node"},
    {"envoy.service.discovery.v3.DeltaDiscoveryRequest", "type_url", 2, STR, S},
    {"envoy.service.discovery.v3.DeltaDiscoveryRequest", "resource_names_subscribe", 3, STR, R},
    {"envoy.service.discovery.v3.DeltaDiscoveryRequest", "resource_names_unsubscribe", 4, STR, R},
    {"envoy.service.discovery.v3.DeltaDiscoveryRequest", "initial_resource_versions", 5, MSG, R,
     "envoy.service.discovery.v3.DeltaDiscoveryRequest.InitialResourceVersionsEntry"},
    {"envoy.service.discovery.v3.DeltaDiscoveryRequest", "response_nonce", 6, STR, S},
    {"envoy.service.discovery.v3.DeltaDiscoveryRequest", "error_detail", 7, MSG, S,
     "google.rpc.Status"},
    {"envoy.service.discovery.v3.DeltaDiscoveryRequest.InitialResourceVersionsEntry", "key", 1, STR,
     S},
    {"envoy.service.discovery.v3.DeltaDiscoveryRequest.InitialResourceVersionsEntry", "value", 2,
     STR, S},
    {"envoy.service.discovery.v3.DeltaDiscoveryResponse", "system_version_info", 1, STR, S},
    {"envoy.service.discovery.v3.DeltaDiscoveryResponse", "resources", 2, MSG, R,
     "envoy.service.discovery.v3.Resource"},
    {"envoy.service.discovery.v3.DeltaDiscoveryResponse", "type_url", 4, STR, S},
    {"envoy.service.discovery.v3.DeltaDiscoveryResponse", "nonce", 5, STR, S},
    {"envoy.service.discovery.v3.DeltaDiscoveryResponse", "removed_resources", 6, STR, R},
    {"envoy.service.discovery.v3.Resource", "version", 1, STR, S},
    {"envoy.service.discovery.v3.Resource", "resource", 2, MSG, S, "google.protobuf.Any"},
    {"envoy.service.discovery.v3.Resource", "name", 3, STR, S},
    {"envoy.service.discovery.v3.Resource", "aliases", 4, STR, R},
    /* envoy.config.core.v3 (base.proto) */
    {"envoy.config.core.v3.Node", "id", 1, STR, S},
    {"envoy.config.core.v3.Node", "cluster", 2, STR, S},
    {"envoy.config.core.v3.Node", "metadata", 3, MSG, S, "google.protobuf.Struct"},
    {"envoy.config.core.v3.Node", "user_agent_name", 6, STR, S},
    {"envoy.config.core.v3.Node", "user_agent_version", 7, STR, O},
    /* google.rpc / google.protobuf */
    {"google.rpc.Status", "code", 1, I32, S},
    {"google.rpc.Status", "message", 2, STR, S},
    {"google.rpc.Status", "details", 3, MSG, R, "google.protobuf.Any"},
    {"google.protobuf.Any", "type_url", 1, STR, S},
    {"google.protobuf.Any", "value", 2, BYT, S},
    {"google.protobuf.Struct", "fields", 1, MSG, R, "google.protobuf.Struct.FieldsEntry"},
    {"google.protobuf.Struct.FieldsEntry", "key", 1, STR, S},
    {"google.protobuf.Struct.FieldsEntry", "value", 2, MSG, S, "google.protobuf.Value"},
    {"google.protobuf.Value", "null_value", 1, ENM, O, "google.protobuf.NullValue"},
    {"google.protobuf.Value", "number_value", 2, DBL, O},
    {"google.protobuf.Value", "string_value", 3, STR, O},
    {"google.protobuf.Value", "bool_value", 4, BOOL, O},
    {"google.protobuf.Value", "struct_value", 5, MSG, O, "google.protobuf.Struct"},
    {"google.protobuf.Value", "list_value", 6, MSG, O, "google.protobuf.ListValue"},
    {"google.protobuf.ListValue", "values", 1, MSG, R, "google.protobuf.Value"},
    {"google.protobuf.UInt32Value", "value", 1, U32, S},
    /* istio.workload (workload.proto) */
    {"istio.workload.Address", "workload", 1, MSG, O, "istio.workload.Workload"},
    {"istio.workload.Address", "service", 2, MSG, O, "istio.workload.Service"},
    {"istio.workload.Service", "name", 1, STR, S},
    {"istio.workload.Service", "namespace", 2, STR, S},
    {"istio.workload.Service", "hostname", 3, STR, S},
    {"istio.workload.Service", "addresses", 4, MSG, R, "istio.workload.NetworkAddress"},
    {"istio.workload.Service", "ports", 5, MSG, R, "istio.workload.Port"},
    {"istio.workload.Service", "subject_alt_names", 6, STR, R},
    {"istio.workload.Service", "waypoint", 7, MSG, S, "istio.workload.GatewayAddress"},
    {"istio.workload.Service", "load_balancing", 8, MSG, S, "istio.workload.LoadBalancing"},
    {"istio.workload.Service", "ip_families", 9, ENM, S, "istio.workload.IPFamilies"},
    {"istio.workload.Service", "canonical", 11, BOOL, S},
    {"istio.workload.LoadBalancing", "routing_preference", 1, ENM, R,
     "istio.workload.LoadBalancing.Scope"},
    {"istio.workload.LoadBalancing", "mode", 2, ENM, S, "istio.workload.LoadBalancing.Mode"},
    {"istio.workload.LoadBalancing", "health_policy", 3, ENM, S,
     "istio.workload.LoadBalancing.HealthPolicy"},
    {"istio.workload.Workload", "uid", 20, STR, S},
    {"istio.workload.Workload", "name", 1, STR, S},
    {"istio.workload.Workload", "namespace", 2, STR, S},
    {"istio.workload.Workload", "addresses", 3, BYT, R},
    {"istio.workload.Workload", "hostname", 21, STR, S},
    {"istio.workload.Workload", "network", 4, STR, S},
    {"istio.workload.Workload", "tunnel_protocol", 5, ENM, S, "istio.workload.TunnelProtocol"},
    {"istio.workload.Workload", "trust_domain", 6, STR, S},
    {"istio.workload.Workload", "service_account", 7, STR, S},
    {"istio.workload.Workload", "waypoint", 8, MSG, S, "istio.workload.GatewayAddress"},
    {"istio.workload.Workload", "network_gateway", 19, MSG, S, "istio.workload.GatewayAddress"},
    {"istio.workload.Workload", "node", 9, STR, S},
    {"istio.workload.Workload", "canonical_name", 10, STR, S},
    {"istio.workload.Workload", "canonical_revision", 11, STR, S},
    {"istio.workload.Workload", "workload_type", 12, ENM, S, "istio.workload.WorkloadType"},
    {"istio.workload.Workload", "workload_name", 13, STR, S},
    {"istio.workload.Workload", "native_tunnel", 14, BOOL, S},
    {"istio.workload.Workload", "application_tunnel", 23, MSG, S,
     "istio.workload.ApplicationTunnel"},
    {"istio.workload.Workload", "services", 22, MSG, R, "istio.workload.Workload.ServicesEntry"},
    {"istio.workload.Workload", "authorization_policies", 16, STR, R},
    {"istio.workload.Workload", "status", 17, ENM, S, "istio.workload.WorkloadStatus"},
    {"istio.workload.Workload", "cluster_id", 18, STR, S},
    {"istio.workload.Workload", "locality", 24, MSG, S, "istio.workload.Locality"},
    {"istio.workload.Workload", "network_mode", 25, ENM, S, "istio.workload.NetworkMode"},
    {"istio.workload.Workload", "capacity", 27, MSG, S, "google.protobuf.UInt32Value"},
    {"istio.workload.Workload.ServicesEntry", "key", 1, STR, S},
    {"istio.workload.Workload.ServicesEntry", "value", 2, MSG, S, "istio.workload.PortList"},
    {"istio.workload.Locality", "region", 1, STR, S},
    {"istio.workload.Locality", "zone", 2, STR, S},
    {"istio.workload.Locality", "subzone", 3, STR, S},
    {"istio.workload.PortList", "ports", 1, MSG, R, "istio.workload.Port"},
    {"istio.workload.Port", "service_port", 1, U32, S},
    {"istio.workload.Port", "target_port", 2, U32, S},
    {"istio.workload.Port", "app_protocol", 3, ENM, S, "istio.workload.AppProtocol"},
    {"istio.workload.ApplicationTunnel", "protocol", 1, ENM, S,
     "istio.workload.ApplicationTunnel.Protocol"},
    {"istio.workload.ApplicationTunnel", "port", 2, U32, S},
    {"istio.workload.GatewayAddress", "hostname", 1, MSG, O, "istio.workload.NamespacedHostname"},
    {"istio.workload.GatewayAddress", "address", 2, MSG, O, "istio.workload.NetworkAddress"},
    {"istio.workload.GatewayAddress", "hbone_mtls_port", 3, U32, S},
    {"istio.workload.NetworkAddress", "network", 1, STR, S},
    {"istio.workload.NetworkAddress", "address", 2, BYT, S},
    {"istio.workload.NamespacedHostname", "namespace", 1, STR, S},
    {"istio.workload.NamespacedHostname", "hostname", 2, STR, S},
    /* istio.security (authorization.proto) */
    {"istio.security.Authorization", "name", 1, STR, S},
    {"istio.security.Authorization", "namespace", 2, STR, S},
    {"istio.security.Authorization", "scope", 3, ENM, S, "istio.security.Scope"},
    {"istio.security.Authorization", "action", 4, ENM, S, "istio.security.Action"},
    {"istio.security.Authorization", "rules", 5, MSG, R, "istio.security.Rule"},
    {"istio.security.Authorization", "dry_run", 6, BOOL, S},
    {"istio.security.Rule", "clauses", 1, MSG, R, "istio.security.Clause"},
    {"istio.security.Clause", "matches", 2, MSG, R, "istio.security.Match"},
    {"istio.security.Match", "namespaces", 1, MSG, R, "istio.security.StringMatch"},
    {"istio.security.Match", "not_namespaces", 2, MSG, R, "istio.security.StringMatch"},
    {"istio.security.Match", "service_accounts", 11, MSG, R, "istio.security.ServiceAccountMatch"},
    {"istio.security.Match", "not_service_accounts", 12, MSG, R,
     "istio.security.ServiceAccountMatch"},
    {"istio.security.Match", "principals", 3, MSG, R, "istio.security.StringMatch"},
    {"istio.security.Match", "not_principals", 4, MSG, R, "istio.security.StringMatch"},
    {"istio.security.Match", "source_ips", 5, MSG, R, "istio.security.Address"},
    {"istio.security.Match", "not_source_ips", 6, MSG, R, "istio.security.Address"},
    {"istio.security.Match", "destination_ips", 7, MSG, R, "istio.security.Address"},
    {"istio.security.Match", "not_destination_ips", 8, MSG, R, "istio.security.Address"},
    {"istio.security.Match", "destination_ports", 9, U32, R},
    {"istio.security.Match", "not_destination_ports", 10, U32, R},
    {"istio.security.Address", "address", 1, BYT, S},
    {"istio.security.Address", "length", 2, U32, S},
    {"istio.security.ServiceAccountMatch", "namespace", 1, STR, S},
    {"istio.security.ServiceAccountMatch", "serviceAccount", 2, STR, S},
    {"istio.security.StringMatch", "exact", 1, STR, O},
    {"istio.security.StringMatch", "prefix", 2, STR, O},
    {"istio.security.StringMatch", "suffix", 3, STR, O},
    {"istio.security.StringMatch", "presence", 4, MSG, O, "google.protobuf.Empty"},
};

struct enum_want {
	const char *en;
	const char *name;
	int value;
};

static const struct enum_want enums[] = {
    {"istio.workload.IPFamilies", "AUTOMATIC", 0},
    {"istio.workload.IPFamilies", "IPV4_ONLY", 1},
    {"istio.workload.IPFamilies", "IPV6_ONLY", 2},
    {"istio.workload.IPFamilies", "DUAL", 3},
    {"istio.workload.NetworkMode", "STANDARD", 0},
    {"istio.workload.NetworkMode", "HOST_NETWORK", 1},
    {"istio.workload.LoadBalancing.Scope", "UNSPECIFIED_SCOPE", 0},
    {"istio.workload.LoadBalancing.Scope", "REGION", 1},
    {"istio.workload.LoadBalancing.Scope", "ZONE", 2},
    {"istio.workload.LoadBalancing.Scope", "SUBZONE", 3},
    {"istio.workload.LoadBalancing.Scope", "NODE", 4},
    {"istio.workload.LoadBalancing.Scope", "CLUSTER", 5},
    {"istio.workload.LoadBalancing.Scope", "NETWORK", 6},
    {"istio.workload.LoadBalancing.Mode", "UNSPECIFIED_MODE", 0},
    {"istio.workload.LoadBalancing.Mode", "STRICT", 1},
    {"istio.workload.LoadBalancing.Mode", "FAILOVER", 2},
    {"istio.workload.LoadBalancing.Mode", "PASSTHROUGH", 3},
    {"istio.workload.LoadBalancing.HealthPolicy", "ONLY_HEALTHY", 0},
    {"istio.workload.LoadBalancing.HealthPolicy", "ALLOW_ALL", 1},
    {"istio.workload.WorkloadStatus", "HEALTHY", 0},
    {"istio.workload.WorkloadStatus", "UNHEALTHY", 1},
    {"istio.workload.WorkloadType", "DEPLOYMENT", 0},
    {"istio.workload.WorkloadType", "CRONJOB", 1},
    {"istio.workload.WorkloadType", "POD", 2},
    {"istio.workload.WorkloadType", "JOB", 3},
    {"istio.workload.AppProtocol", "UNKNOWN", 0},
    {"istio.workload.AppProtocol", "HTTP11", 1},
    {"istio.workload.AppProtocol", "HTTP2", 2},
    {"istio.workload.AppProtocol", "GRPC", 3},
    {"istio.workload.AppProtocol", "TCP", 4},
    {"istio.workload.AppProtocol", "TLS", 5},
    {"istio.workload.TunnelProtocol", "NONE", 0},
    {"istio.workload.TunnelProtocol", "HBONE", 1},
    {"istio.workload.TunnelProtocol", "LEGACY_ISTIO_MTLS", 2},
    {"istio.workload.ApplicationTunnel.Protocol", "NONE", 0},
    {"istio.workload.ApplicationTunnel.Protocol", "PROXY", 1},
    {"istio.security.Scope", "GLOBAL", 0},
    {"istio.security.Scope", "NAMESPACE", 1},
    {"istio.security.Scope", "WORKLOAD_SELECTOR", 2},
    {"istio.security.Action", "ALLOW", 0},
    {"istio.security.Action", "DENY", 1},
    {"google.protobuf.NullValue", "NULL_VALUE", 0},
};

/* Every message descriptor reachable from the roots, found by walking message fields. */
static const ProtobufCMessageDescriptor *seen[128];
static size_t n_seen;

static void walk(const ProtobufCMessageDescriptor *d)
{
	for (size_t i = 0; i < n_seen; i++)
		if (seen[i] == d)
			return;
	if (n_seen == sizeof(seen) / sizeof(seen[0]))
		return;
	seen[n_seen++] = d;
	for (unsigned i = 0; i < d->n_fields; i++)
		if (d->fields[i].type == PROTOBUF_C_TYPE_MESSAGE)
			walk(d->fields[i].descriptor);
}

static const ProtobufCMessageDescriptor *msg_by_name(const char *name)
{
	for (size_t i = 0; i < n_seen; i++)
		if (!strcmp(seen[i]->name, name))
			return seen[i];
	return NULL;
}

static const ProtobufCEnumDescriptor *enum_by_name(const char *name)
{
	for (size_t i = 0; i < n_seen; i++)
		for (unsigned j = 0; j < seen[i]->n_fields; j++) {
			const ProtobufCFieldDescriptor *f = &seen[i]->fields[j];

			if (f->type == PROTOBUF_C_TYPE_ENUM &&
			    !strcmp(((const ProtobufCEnumDescriptor *)f->descriptor)->name, name))
				return f->descriptor;
		}
	return NULL;
}

static int card_of(const ProtobufCFieldDescriptor *f)
{
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		return O;
	return f->label == PROTOBUF_C_LABEL_REPEATED ? R : S;
}

static void check_fields(void)
{
	size_t nw = sizeof(want) / sizeof(want[0]);

	for (size_t i = 0; i < nw; i++) {
		const struct field_want *w = &want[i];
		const ProtobufCMessageDescriptor *d = msg_by_name(w->msg);
		const ProtobufCFieldDescriptor *f =
		    d ? protobuf_c_message_descriptor_get_field_by_name(d, w->field) : NULL;
		const char *ref = NULL;

		if (!ok(f != NULL, "%s.%s is declared", w->msg, w->field))
			continue;
		if (f->type == PROTOBUF_C_TYPE_MESSAGE)
			ref = ((const ProtobufCMessageDescriptor *)f->descriptor)->name;
		else if (f->type == PROTOBUF_C_TYPE_ENUM)
			ref = ((const ProtobufCEnumDescriptor *)f->descriptor)->name;
		ok(f->id == w->id && f->type == w->type && card_of(f) == w->card &&
		       (!w->ref || (ref && !strcmp(ref, w->ref))),
		   "%s.%s = %u, type %d, cardinality %d%s%s", w->msg, w->field, w->id, w->type,
		   w->card, w->ref ? ", " : "", w->ref ? w->ref : "");
	}
	/* Nothing of ours that the table does not know. */
	for (size_t i = 0; i < n_seen; i++)
		for (unsigned j = 0; j < seen[i]->n_fields; j++) {
			size_t k;

			for (k = 0; k < nw; k++)
				if (!strcmp(want[k].msg, seen[i]->name) &&
				    !strcmp(want[k].field, seen[i]->fields[j].name))
					break;
			ok(k < nw, "%s.%s is a published field", seen[i]->name,
			   seen[i]->fields[j].name);
		}
}

static void check_enums(void)
{
	for (size_t i = 0; i < sizeof(enums) / sizeof(enums[0]); i++) {
		const ProtobufCEnumDescriptor *e = enum_by_name(enums[i].en);
		const ProtobufCEnumValue *v =
		    e ? protobuf_c_enum_descriptor_get_value_by_name(e, enums[i].name) : NULL;

		ok(v && v->value == enums[i].value, "%s.%s = %d", enums[i].en, enums[i].name,
		   enums[i].value);
	}
}

int main(void)
{
	walk(&envoy__service__discovery__v3__delta_discovery_request__descriptor);
	walk(&envoy__service__discovery__v3__delta_discovery_response__descriptor);
	walk(&istio__workload__address__descriptor);
	walk(&istio__security__authorization__descriptor);
	walk(&google__protobuf__struct__descriptor);
	check_fields();
	check_enums();
	is_str(istio__workload__address__descriptor.name, "istio.workload.Address",
	       "resource type istio.workload.Address");
	is_str(istio__security__authorization__descriptor.name, "istio.security.Authorization",
	       "resource type istio.security.Authorization");
	return tap_done();
}
