// SPDX-License-Identifier: Apache-2.0
/*
 * Config snapshots: the mesh config and the Istio resources (from the files, or from the
 * Kubernetes API with the --config files beside: kube_source.c) loaded together into one
 * refcounted, immutable pair (struct wp_snap). Connections take a reference when they start
 * and keep the snapshot they started with; a reload swaps in a new one whole, and a broken
 * update keeps the previous one in service. Also the process's random numbers for routing
 * and fault percentages.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "obs/log.h"
#include "wp.h"

#define WP_ERRLEN 8192

struct wp *wp_g;

uint32_t wp_rand(void)
{
	static __thread uint64_t s;

	if (!s && getrandom(&s, sizeof(s), 0) != sizeof(s))
		s = rt_now_ms() | 1;
	/* xorshift64*: routing and fault percentages, not secrets */
	s ^= s >> 12;
	s ^= s << 25;
	s ^= s >> 27;
	return (uint32_t)((s * 2685821657736338717ull) >> 32);
}

struct wp_snap *wp_snap_get(struct wp *wp)
{
	struct wp_snap *s;

	pthread_mutex_lock(&wp->snap_lock);
	s = wp->snap;
	atomic_fetch_add(&s->refs, 1);
	pthread_mutex_unlock(&wp->snap_lock);
	return s;
}

void wp_snap_put(struct wp_snap *s)
{
	if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	l7_config_free(s->l7);
	zm_config_free(s->mesh);
	free(s);
}

/* The waypoint's own workload: its namespace and service account (the first such). */
static const struct zm_cfg_workload *wp_snap_self(const struct zm_config *mesh, const char *ns,
						  const char *sa)
{
	size_t i;

	for (i = 0; ns[0] && i < mesh->n_workloads; i++)
		if (!strcmp(mesh->workloads[i].namespace, ns) &&
		    mesh->workloads[i].service_account &&
		    !strcmp(mesh->workloads[i].service_account, sa))
			return &mesh->workloads[i];
	return NULL;
}

struct wp_snap *wp_snap_load(struct wp *wp, char *err, size_t len)
{
	static atomic_uint_fast64_t serial; /* the control loop and the Kubernetes thread load */
	struct wp_snap *s = calloc(1, sizeof(*s));

	if (!s) {
		snprintf(err, len, "out of memory");
		return NULL;
	}
	atomic_init(&s->refs, 1);
	s->serial = atomic_fetch_add(&serial, 1) + 1;
	if (wp_kube_enabled(wp)) {
		if (wp_kube_mesh(&s->mesh, err, len) || wp_kube_l7(wp, s->mesh, &s->l7, err, len))
			goto err;
	} else if (zm_config_load_file(wp->opts.mesh_config, &s->mesh, err, len) ||
		   l7_config_load(wp->opts.configs, (size_t)wp->opts.n_configs, s->mesh, &s->l7,
				  err, len)) {
		goto err;
	}
	s->self = wp_snap_self(s->mesh, wp->self_ns, wp->self_sa);
	return s;
err:
	wp_snap_put(s);
	return NULL;
}

void wp_snap_reload(struct wp *wp)
{
	/* The control loop (files, SIGHUP) and the Kubernetes thread both reload. */
	static pthread_mutex_t reload_lock = PTHREAD_MUTEX_INITIALIZER;
	char *err = malloc(WP_ERRLEN);
	struct wp_snap *s, *old;

	if (!err)
		return;
	pthread_mutex_lock(&reload_lock);
	s = wp_snap_load(wp, err, WP_ERRLEN);
	if (!s) {
		pthread_mutex_unlock(&reload_lock);
		obs_log(OBS_WARN, "config", "config reload refused, keeping the previous one:\n%s",
			err);
		free(err);
		return;
	}
	free(err);
	pthread_mutex_lock(&wp->snap_lock);
	old = wp->snap;
	wp->snap = s;
	pthread_mutex_unlock(&wp->snap_lock);
	pthread_mutex_unlock(&reload_lock);
	wp_snap_put(old);
	obs_log(OBS_INFO, "config",
		"config reloaded: %zu VirtualService, %zu DestinationRule, "
		"%zu AuthorizationPolicy, %zu HTTPRoute/GRPCRoute, %zu workloads, %zu services",
		s->l7->n_vs, s->l7->n_dr, s->l7->n_authz, s->l7->n_gw, s->mesh->n_workloads,
		s->mesh->n_services);
}
