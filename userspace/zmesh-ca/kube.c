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
	struct zm_kube_conn conn;
	struct zm_kube_store *store;
	struct zm_kube_client *client;
	struct zm_kube_opts opts;
	uint64_t built;
	pthread_t thread;
	bool started;
	atomic_bool stop;
	char log[16384];
} zck;

/* Swap in a model of the store (under the config lock sign.c reads it with). */
static void zca_kube_build(void)
{
	struct zm_config *cfg = NULL, *old;
	char err[1024];
	int r;

	zm_kube_client_lock(zck.client);
	zck.built = zm_kube_store_serial(zck.store);
	r = zm_kube_store_build(zck.store, &zck.opts, &cfg, zck.log, sizeof(zck.log), err,
				sizeof(err));
	zm_kube_client_unlock(zck.client);
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
	while (!atomic_load(&zck.stop)) {
		zm_kube_client_step(zck.client, 200);
		zm_kube_client_lock(zck.client);
		serial = zm_kube_store_serial(zck.store);
		zm_kube_client_unlock(zck.client);
		if (serial != zck.built)
			zca_kube_build();
	}
	return NULL;
}

int zca_kube_start(struct zca *z, const char *kubeconfig, char *err, size_t len)
{
	struct zm_kube_client_opts co = {0};
	sigset_t all, old;
	int r;

	zck.z = z;
	zck.opts.trust_domain = z->td;
	r = kubeconfig ? zm_kube_conn_kubeconfig(&zck.conn, kubeconfig, err, len)
		       : zm_kube_conn_incluster(&zck.conn, getenv("ZMESH_KUBE_SA_DIR"), err, len);
	if (r)
		return r;
	zck.store = zm_kube_store_new();
	if (!zck.store)
		return zm_errf(err, len, -ENOMEM, "out of memory");
	co.conn = &zck.conn;
	co.store = zck.store;
	co.kinds = 1u << ZM_KUBE_PODS | 1u << ZM_KUBE_NAMESPACES;
	co.who = "zmesh-ca";
	zck.client = zm_kube_client_new(&co, err, len);
	if (!zck.client)
		return -ENOMEM;
	r = zm_kube_client_wait(zck.client, zck.conn.server, err, len);
	if (r)
		return r;
	zca_kube_build();
	obs_log(OBS_INFO, "kube", "identities by node from the Kubernetes API at %s",
		zck.conn.server);
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = pthread_create(&zck.thread, NULL, zca_kube_thread, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r)
		return zm_errf(err, len, -r, "starting the Kubernetes thread: %s", strerror(r));
	zck.started = true;
	return 0;
}

void zca_kube_stop(void)
{
	if (zck.started) {
		atomic_store(&zck.stop, true);
		pthread_join(zck.thread, NULL);
		zck.started = false;
	}
	zm_kube_client_free(zck.client);
	zm_kube_store_free(zck.store);
	zm_kube_conn_free(&zck.conn);
	zck.client = NULL;
	zck.store = NULL;
}
