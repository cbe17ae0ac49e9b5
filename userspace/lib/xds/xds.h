/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The xDS source of the config model: Istio's workload discovery over Envoy's incremental
 * aggregated discovery protocol (delta ADS), as istiod serves ztunnels. This library is the
 * protocol's state machine and its translation, with no I/O: it builds the requests (the
 * initial subscription per type with initial_resource_versions, ACKs and NACKs by nonce),
 * takes each DeltaDiscoveryResponse, keeps the resources it accepted, and turns them into a
 * struct zm_config (config/model.h), the same model the local config file produces, so
 * routing, policy and enrollment never know which source they came from.
 *
 * A response is applied resource by resource as the reference ztunnel does: a resource that
 * does not decode or translate (missing or out-of-range fields, unknown enum values,
 * addresses of the wrong length, port 0...), or that would conflict with what is held (an
 * address or VIP used twice, a waypoint naming no known service), is rejected and named in
 * the NACK's error_detail ("<resource>: <field>: <problem>"); the rest of the push applies.
 * Whatever is applied always finalizes into a complete, consistent model: the previous
 * model stays in force otherwise. Rejected resources are not remembered, so a reconnect's
 * initial_resource_versions makes the server send them again.
 *
 * Thread-safety: one thread drives a struct zm_xds (handle, requests, build); zm_xds_dump()
 * and the status calls may run on any thread (an internal lock).
 */
#ifndef ZMESH_XDS_XDS_H
#define ZMESH_XDS_XDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/model.h"

#define ZM_XDS_TYPE_ADDRESS "type.googleapis.com/istio.workload.Address"
#define ZM_XDS_TYPE_AUTHZ   "type.googleapis.com/istio.security.Authorization"
#define ZM_XDS_PATH                                                                                \
	"/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"
/* Istio's default xDS and CA port, and the token path of its ztunnel DaemonSet. */
#define ZM_XDS_PORT_DEFAULT 15012
#define ZM_XDS_TOKEN_PATH   "/var/run/secrets/tokens/istio-token"
/* Largest DeltaDiscoveryResponse accepted (the reference allows 200 MiB). */
#define ZM_XDS_MAX_MSG	    (64u << 20)

enum zm_xds_type { ZM_XDS_ADDRESS = 0, ZM_XDS_AUTHZ, ZM_XDS_N_TYPES };

/* Who we are to the control plane (strings copied). */
struct zm_xds_node {
	const char *ip;	       /* INSTANCE_IP: the ztunnel pod's (node's) IP */
	const char *pod_name;  /* POD_NAME */
	const char *namespace; /* POD_NAMESPACE */
	const char *node_name; /* NODE_NAME */
	const char *cluster_id;
};

struct zm_xds;

/* NULL with errno on allocation failure. */
struct zm_xds *zm_xds_new(const struct zm_xds_node *node);
void zm_xds_free(struct zm_xds *x);

/* "ztunnel~<ip>~<pod>.<ns>~<ns>.svc.cluster.local", the reference's node id. */
const char *zm_xds_node_id(const struct zm_xds *x);

/*
 * The first request of type t on a new stream: the Node, the type, and what we hold as
 * initial_resource_versions. *out is malloc'd (unframed protobuf). Returns 0 or -ENOMEM.
 */
int zm_xds_initial_request(struct zm_xds *x, enum zm_xds_type t, uint8_t **out, size_t *len);

/*
 * Handle one DeltaDiscoveryResponse (unframed). On return *reply holds the ACK or NACK to
 * send (malloc'd) and *changed says whether the held resources changed (then rebuild with
 * zm_xds_build()). log receives one line per rejected resource (may be empty). Returns 0,
 * or -EPROTO when the message itself does not decode (nothing to answer: reconnect).
 */
int zm_xds_handle(struct zm_xds *x, const uint8_t *msg, size_t len, uint8_t **reply,
		  size_t *reply_len, bool *changed, char *log, size_t loglen);

/* A finalized snapshot of everything held (source name "xds"). Returns 0 or -errno. */
int zm_xds_build(struct zm_xds *x, struct zm_config **out, char *err, size_t len);

/* Connection bookkeeping for the dump: a stream opened (true) or ended (false, why). */
void zm_xds_set_connected(struct zm_xds *x, bool up, const char *why);

/* True once every type has had a response ACKed (the reference's readiness). */
bool zm_xds_synced(struct zm_xds *x);

/*
 * The state as a JSON object (malloc'd text): address, connected, node id, and per type
 * the last ACKed system version and nonce, resource count, ACK/NACK counts, the last NACK.
 */
char *zm_xds_dump(struct zm_xds *x);

/* The address the dump shows ("" by default; copied). */
void zm_xds_set_address(struct zm_xds *x, const char *addr);

#endif
