/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Istio's standard traffic labels, defined once for both daemons (istio.io "Istio Standard
 * Metrics"; the reference ztunnel's src/proxy/metrics.rs), so that Istio's Grafana dashboards
 * and Kiali read zmesh series unchanged: istio_tcp_* carry OBS_ISTIO_TCP_LABELS,
 * istio_requests_* and the request histograms OBS_ISTIO_HTTP_LABELS (the same plus
 * response_code and grpc_response_status). A missing value is "unknown", as in Istio.
 *
 * Per workload (obs_istio_peer_fill), as Istio derives them from the pod:
 *   workload            workloadName, else the workload's name
 *   canonical_service   canonicalName, else the label service.istio.io/canonical-name,
 *                       app.kubernetes.io/name or app, else the workload name
 *   canonical_revision  canonicalRevision, else service.istio.io/canonical-revision,
 *                       app.kubernetes.io/version or version, else "latest"
 *   app, version        the labels app (app.kubernetes.io/name) and version
 *                       (app.kubernetes.io/version), as Envoy's stats report them; the ztunnel
 *                       reports its canonical service and revision there, as the reference does
 *   cluster             clusterId, else "Kubernetes" (Istio's default cluster name)
 */
#ifndef ZMESH_OBS_ISTIO_H
#define ZMESH_OBS_ISTIO_H

#include <stdbool.h>
#include <stddef.h>

#include "obs/metrics.h"

struct zm_cfg_workload;
struct zm_cfg_service;

#define OBS_ISTIO_DEFAULT_CLUSTER "Kubernetes"
#define OBS_ISTIO_ID_MAX	  256

/* One side of a connection or request. */
struct obs_istio_peer {
	const char *workload, *ns, *app, *version;
	const char *canonical_service, *canonical_revision, *cluster;
	char principal[OBS_ISTIO_ID_MAX]; /* "spiffe://..."; "" unknown */
};

/* Everything the labels say about one connection or request. */
struct obs_istio_traffic {
	const char *reporter; /* "source", "destination" or "waypoint" */
	struct obs_istio_peer src, dst;
	const char *dst_service, *dst_service_name, *dst_service_namespace;
	const char *request_protocol;		/* "tcp", "http", "grpc" */
	const char *response_code;		/* HTTP only */
	const char *grpc_response_status;	/* HTTP only; "" when not gRPC */
	const char *connection_security_policy; /* "mutual_tls" or "unknown" */
	const char *response_flags;		/* "-" when none */
};

/* Label names, NULL-terminated, in the order the series print them. */
extern const char *const OBS_ISTIO_TCP_LABELS[];
extern const char *const OBS_ISTIO_HTTP_LABELS[];
#define OBS_ISTIO_TCP_N	 23
#define OBS_ISTIO_HTTP_N 25

/*
 * Fill p from workload wl (NULL: all unknown). canonical_as_app: report the canonical service
 * and revision as app and version (the ztunnel's way). The strings point into wl.
 */
void obs_istio_peer_fill(struct obs_istio_peer *p, const struct zm_cfg_workload *wl,
			 bool canonical_as_app);
/* The service side (hostname, name, namespace) from svc (NULL: unknown). */
void obs_istio_service_fill(struct obs_istio_traffic *t, const struct zm_cfg_service *svc);

/* A workload label's value, NULL when absent. */
const char *obs_istio_wl_label(const struct zm_cfg_workload *wl, const char *key);

/*
 * The label values of t in OBS_ISTIO_TCP_LABELS (http false) or OBS_ISTIO_HTTP_LABELS order
 * into v (OBS_ISTIO_HTTP_N slots), NULL and "" replaced by "unknown" (except
 * grpc_response_status, empty when not gRPC, and response_flags, "-").
 */
void obs_istio_values(const struct obs_istio_traffic *t, bool http, const char **v);

#endif
