// SPDX-License-Identifier: Apache-2.0
/*
 * zmesh-ca's Kubernetes source (--kube in a pod, --kubeconfig FILE outside one): which
 * identity may run on which node, from the API instead of ztunnel's config file. A thread
 * lists and watches Pods and Namespaces (lib/kube) and turns them into the same config model
 * the file gives (workload: namespace, service account, node), so sign.c's rule is unchanged:
 * a node gets spiffe://TD/ns/NS/sa/SA only while a pod of that account runs on it. Startup
 * waits for the first list; while the API server is away the last model keeps deciding. The
 * thread runs with every signal blocked: SIGTERM is the control loop's (rt_control).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/errf.h"
#include "kube/kube.h"
#include "obs/log.h"
#include "ca.h"

static struct {
	struct zca *z;
	struct zm_kube_src src;
	struct zm_kube_opts opts;
	uint64_t built;
	char log[16384];
} zck;

/* Swap in a model of the store (under the config lock sign.c reads it with). */
static void zca_kube_build(void)
{
	struct zm_config *cfg = NULL, *old;
	char err[1024];
	int r;

	zm_kube_client_lock(zck.src.client);
	zck.built = zm_kube_store_serial(zck.src.store);
	r = zm_kube_store_build(zck.src.store, &zck.opts, &cfg, zck.log, sizeof(zck.log), err,
				sizeof(err));
	zm_kube_client_unlock(zck.src.client);
	if (r) {
		obs_log(OBS_WARN, "kube", "building the model failed, keeping the last: %s", err);
		return;
	}
	pthread_mutex_lock(&zck.z->cfg_lock);
	old = zck.z->cfg;
	zck.z->cfg = cfg;
	pthread_mutex_unlock(&zck.z->cfg_lock);
	zm_config_free(old);
}

static void *zca_kube_thread(void *arg)
{
	uint64_t serial;

	(void)arg;
	while (!atomic_load(&zck.src.stop)) {
		zm_kube_client_step(zck.src.client, 200);
		zm_kube_client_lock(zck.src.client);
		serial = zm_kube_store_serial(zck.src.store);
		zm_kube_client_unlock(zck.src.client);
		if (serial != zck.built)
			zca_kube_build();
	}
	return NULL;
}

int zca_kube_start(struct zca *z, const char *kubeconfig, char *err, size_t len)
{
	int r;

	zck.z = z;
	zck.opts.trust_domain = z->td;
	r = zm_kube_src_open(&zck.src, kubeconfig, getenv("ZMESH_KUBE_SA_DIR"),
			     1u << ZM_KUBE_PODS | 1u << ZM_KUBE_NAMESPACES, "zmesh-ca",
			     "identities by node", err, len);
	if (r)
		return r;
	zca_kube_build();
	return zm_kube_src_run(&zck.src, zca_kube_thread, err, len);
}

void zca_kube_stop(void)
{
	zm_kube_src_close(&zck.src);
}
