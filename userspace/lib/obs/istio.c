// SPDX-License-Identifier: Apache-2.0
/*
 * Istio's standard traffic labels and how a workload's values are derived (istio.h).
 */
#include "obs/istio.h"

#include <string.h>

#include "config/model.h"

/* clang-format off */
#define OBS_ISTIO_COMMON_HEAD                                                                      \
	"reporter",                                                                                \
	"source_workload", "source_workload_namespace", "source_principal",                       \
	"source_app", "source_version",                                                            \
	"source_canonical_service", "source_canonical_revision", "source_cluster",                \
	"destination_workload", "destination_workload_namespace", "destination_principal",        \
	"destination_app", "destination_version",                                                  \
	"destination_service", "destination_service_name", "destination_service_namespace",       \
	"destination_canonical_service", "destination_canonical_revision", "destination_cluster", \
	"connection_security_policy"

const char *const OBS_ISTIO_TCP_LABELS[] = {
	OBS_ISTIO_COMMON_HEAD, "request_protocol", "response_flags", NULL};

const char *const OBS_ISTIO_HTTP_LABELS[] = {
	OBS_ISTIO_COMMON_HEAD, "grpc_response_status", "request_protocol", "response_code",
	"response_flags", NULL};
/* clang-format on */

_Static_assert(sizeof(OBS_ISTIO_TCP_LABELS) / sizeof(OBS_ISTIO_TCP_LABELS[0]) ==
		   OBS_ISTIO_TCP_N + 1,
	       "OBS_ISTIO_TCP_N");
_Static_assert(sizeof(OBS_ISTIO_HTTP_LABELS) / sizeof(OBS_ISTIO_HTTP_LABELS[0]) ==
		   OBS_ISTIO_HTTP_N + 1,
	       "OBS_ISTIO_HTTP_N");

const char *obs_istio_wl_label(const struct zm_cfg_workload *wl, const char *key)
{
	size_t i;

	for (i = 0; wl && i < wl->n_labels; i++)
		if (!strcmp(wl->labels[i].key, key))
			return wl->labels[i].value;
	return NULL;
}

static const char *obs_nz(const char *s)
{
	return s && *s ? s : NULL;
}

/* The first of the labels in keys that wl has, NULL when none. */
static const char *obs_first_label(const struct zm_cfg_workload *wl, const char *const *keys)
{
	const char *v;

	for (; *keys; keys++)
		if ((v = obs_nz(obs_istio_wl_label(wl, *keys))))
			return v;
	return NULL;
}

void obs_istio_peer_fill(struct obs_istio_peer *p, const struct zm_cfg_workload *wl,
			 bool canonical_as_app)
{
	static const char *const name_keys[] = {"service.istio.io/canonical-name",
						"app.kubernetes.io/name", "app", NULL};
	static const char *const rev_keys[] = {"service.istio.io/canonical-revision",
					       "app.kubernetes.io/version", "version", NULL};
	static const char *const app_keys[] = {"app", "app.kubernetes.io/name", NULL};
	static const char *const ver_keys[] = {"version", "app.kubernetes.io/version", NULL};

	memset(p, 0, sizeof(*p));
	if (!wl)
		return;
	p->workload = obs_nz(wl->workload_name) ?: wl->name;
	p->ns = wl->namespace;
	p->canonical_service = obs_nz(wl->canonical_name) ?: obs_first_label(wl, name_keys)
								  ?: p->workload;
	p->canonical_revision = obs_nz(wl->canonical_revision) ?: obs_first_label(wl, rev_keys)
								     ?: "latest";
	p->app = canonical_as_app ? p->canonical_service : obs_first_label(wl, app_keys);
	p->version = canonical_as_app ? p->canonical_revision : obs_first_label(wl, ver_keys);
	p->cluster = obs_nz(wl->cluster_id) ?: OBS_ISTIO_DEFAULT_CLUSTER;
	zm_cfg_workload_identity(wl, p->principal, sizeof(p->principal));
}

void obs_istio_service_fill(struct obs_istio_traffic *t, const struct zm_cfg_service *svc)
{
	t->dst_service = svc ? svc->hostname : NULL;
	t->dst_service_name = svc ? svc->name : NULL;
	t->dst_service_namespace = svc ? svc->namespace : NULL;
}

static const char *obs_unk(const char *s)
{
	return s && *s ? s : "unknown";
}

static void obs_istio_side(const struct obs_istio_peer *p, const char **v)
{
	v[0] = obs_unk(p->workload);
	v[1] = obs_unk(p->ns);
	v[2] = obs_unk(p->principal);
	v[3] = obs_unk(p->app);
	v[4] = obs_unk(p->version);
}

void obs_istio_values(const struct obs_istio_traffic *t, bool http, const char **v)
{
	size_t i = 0;

	v[i++] = obs_unk(t->reporter);
	obs_istio_side(&t->src, v + i);
	i += 5;
	v[i++] = obs_unk(t->src.canonical_service);
	v[i++] = obs_unk(t->src.canonical_revision);
	v[i++] = obs_unk(t->src.cluster);
	obs_istio_side(&t->dst, v + i);
	i += 5;
	v[i++] = obs_unk(t->dst_service);
	v[i++] = obs_unk(t->dst_service_name);
	v[i++] = obs_unk(t->dst_service_namespace);
	v[i++] = obs_unk(t->dst.canonical_service);
	v[i++] = obs_unk(t->dst.canonical_revision);
	v[i++] = obs_unk(t->dst.cluster);
	v[i++] = obs_unk(t->connection_security_policy);
	if (http)
		v[i++] = t->grpc_response_status ? t->grpc_response_status : "";
	v[i++] = obs_unk(t->request_protocol);
	if (http)
		v[i++] = obs_unk(t->response_code);
	v[i++] = t->response_flags && *t->response_flags ? t->response_flags : "-";
}
