// SPDX-License-Identifier: Apache-2.0
/*
 * The waypoint's Kubernetes API source (--kube in a pod, --kubeconfig FILE outside one): lib/kube's
 * reflector on its own thread, listing and watching what ztunnel's model is built from (Pods,
 * Namespaces, Services, EndpointSlices) and the resources lib/l7 reads (VirtualServices,
 * DestinationRules, AuthorizationPolicies, HTTPRoutes, GRPCRoutes, Gateways). snap.c builds
 * every snapshot from here instead of --mesh-config: the mesh with lib/kube's translation
 * (the same as ztunnel's), the L7 config by loading each object's YAML (lib/kube/l7.c) with
 * the --config files through lib/l7, so an object from the API means what the same object in a
 * file means.
 *
 * An object lib/l7 refuses is named in the log with the field ("VirtualService demo/r:1:
 * spec.http[0]...: ...", once per distinct message) and replaced by the last version of it that
 * loaded, or left out when there is none; the rest of the snapshot goes on. After changes the
 * thread rebuilds, at most once per ZMESH_KUBE_BUILD_MS (100 ms); while the API server is away
 * the store, and so the snapshot, stays the last good one. Startup waits for the first list of
 * every kind, so the waypoint is ready (15021) only with a complete model; a kind the API
 * forbids (403) or lacks (404: its CRD is not installed) is logged once and stays empty.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/errf.h"
#include "kube/kube.h"
#include "obs/log.h"
#include "wp.h"

#define WP_KUBE_LOG_LEN (64 * 1024)

/* An object's last version lib/l7 accepted. */
struct wp_kube_good {
	char *label, *text;
};

static struct {
	struct wp *wp;
	struct zm_kube_src src;
	struct zm_kube_opts opts;
	atomic_ulong built_serial; /* the store's serial behind the last snapshot */
	unsigned int build_ms;
	char *log, *said_mesh, *said_l7; /* notes, and the previous build's (said once) */
	struct wp_kube_good *good;	 /* sorted by label */
	size_t n_good;
} wk;

bool wp_kube_enabled(const struct wp *wp)
{
	return wp->opts.kube || wp->opts.kubeconfig;
}

static uint64_t wp_kube_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int wp_kube_mesh(struct zm_config **out, char *err, size_t len)
{
	int r;

	zm_kube_client_lock(wk.src.client);
	atomic_store(&wk.built_serial, (unsigned long)zm_kube_store_serial(wk.src.store));
	r = zm_kube_store_build(wk.src.store, &wk.opts, out, wk.log, WP_KUBE_LOG_LEN, err, len);
	zm_kube_client_unlock(wk.src.client);
	zm_kube_say_new(wk.log, &wk.said_mesh);
	return r;
}

static int wp_kube_good_cmp(const void *a, const void *b)
{
	return strcmp(((const struct wp_kube_good *)a)->label,
		      ((const struct wp_kube_good *)b)->label);
}

/* The last accepted text of the object labelled label, NULL when none. */
static const char *wp_kube_good_get(const char *label)
{
	struct wp_kube_good key = {.label = (char *)label}, *g;

	g = wk.n_good ? bsearch(&key, wk.good, wk.n_good, sizeof(key), wp_kube_good_cmp) : NULL;
	return g ? g->text : NULL;
}

static void wp_kube_good_free(struct wp_kube_good *v, size_t n)
{
	size_t i;

	for (i = 0; v && i < n; i++) {
		free(v[i].label);
		free(v[i].text);
	}
	free(v);
}

/* The documents that loaded become the last good versions (deleted objects are forgotten). */
static void wp_kube_good_keep(const struct l7_doc *d, size_t n)
{
	struct wp_kube_good *v = calloc(n ? n : 1, sizeof(*v));
	size_t i, k = 0;

	if (!v)
		return; /* keep the old ones: only a fallback gets staler */
	for (i = 0; i < n; i++) {
		if (d[i].bad)
			continue;
		v[k].label = strdup(d[i].name);
		v[k].text = strdup(d[i].text);
		if (!v[k].label || !v[k].text) {
			wp_kube_good_free(v, k + 1);
			return;
		}
		k++;
	}
	qsort(v, k, sizeof(*v), wp_kube_good_cmp);
	wp_kube_good_free(wk.good, wk.n_good);
	wk.good = v;
	wk.n_good = k;
}

int wp_kube_l7(struct wp *wp, const struct zm_config *mesh, struct l7_config **out, char *err,
	       size_t len)
{
	struct zm_kube_doc *kd;
	struct l7_doc *d;
	size_t n, i;
	int r;

	zm_kube_client_lock(wk.src.client);
	kd = zm_kube_store_docs(wk.src.store, ZM_KUBE_KINDS_L7, &n);
	zm_kube_client_unlock(wk.src.client);
	if (!kd && errno == ENOMEM)
		return zm_errf(err, len, -ENOMEM, "out of memory");
	d = calloc(n ? n : 1, sizeof(*d));
	if (!d) {
		zm_kube_docs_free(kd, n);
		return zm_errf(err, len, -ENOMEM, "out of memory");
	}
	for (i = 0; i < n; i++)
		d[i] = (struct l7_doc){.name = kd[i].label,
				       .text = kd[i].yaml,
				       .fallback = wp_kube_good_get(kd[i].label)};
	r = l7_config_load_docs(wp->opts.configs, (size_t)wp->opts.n_configs, d, n, mesh, out,
				wk.log, WP_KUBE_LOG_LEN);
	if (r) {
		snprintf(err, len, "%s", wk.log);
	} else {
		zm_kube_say_new(wk.log, &wk.said_l7);
		wp_kube_good_keep(d, n);
	}
	free(d);
	zm_kube_docs_free(kd, n);
	return r;
}

static void *wp_kube_thread(void *arg)
{
	uint64_t last = 0, now, serial;

	(void)arg;
	while (!atomic_load(&wk.src.stop)) {
		zm_kube_client_step(wk.src.client, 50);
		zm_kube_client_lock(wk.src.client);
		serial = zm_kube_store_serial(wk.src.store);
		zm_kube_client_unlock(wk.src.client);
		if (serial == atomic_load(&wk.built_serial))
			continue;
		now = wp_kube_now_ms();
		if (now - last < wk.build_ms)
			continue;
		last = now;
		wp_snap_reload(wk.wp);
	}
	return NULL;
}

int wp_kube_start(struct wp *wp, char *err, size_t len)
{
	wk.wp = wp;
	wk.build_ms = zm_kube_env("ZMESH_KUBE_BUILD_MS", 100);
	wk.opts = (struct zm_kube_opts){.trust_domain = getenv("TRUST_DOMAIN"),
					.cluster_domain = getenv("CLUSTER_DOMAIN"),
					.cluster_id = getenv("CLUSTER_ID")};
	wk.log = malloc(WP_KUBE_LOG_LEN);
	if (!wk.log)
		return zm_errf(err, len, -ENOMEM, "out of memory");
	return zm_kube_src_open(&wk.src, wp->opts.kubeconfig, wp->opts.kube_sa_dir,
				ZM_KUBE_KINDS_WAYPOINT, "zmesh-waypoint", "mesh and L7 resources",
				err, len);
}

int wp_kube_watch(void)
{
	char err[256];
	int r = zm_kube_src_run(&wk.src, wp_kube_thread, err, sizeof(err));

	if (r)
		obs_log(OBS_ERROR, "kube", "%s", err);
	return r;
}

void wp_kube_stop(void)
{
	zm_kube_src_close(&wk.src);
	wp_kube_good_free(wk.good, wk.n_good);
	free(wk.log);
	free(wk.said_mesh);
	free(wk.said_l7);
	memset(&wk, 0, sizeof(wk));
}

char *wp_kube_dump(void)
{
	return wk.src.client ? zm_kube_client_dump(wk.src.client) : NULL;
}
