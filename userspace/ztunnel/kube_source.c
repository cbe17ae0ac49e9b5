// SPDX-License-Identifier: Apache-2.0
/*
 * ztunnel's Kubernetes API source (--kube in a pod, --kubeconfig FILE outside one): one thread
 * running lib/kube's reflector (list and watch of Pods, Namespaces, Services, EndpointSlices,
 * AuthorizationPolicies and PeerAuthentications), and the hooks through which its store feeds
 * the rest of ztunnel exactly as the config file does:
 * - zt_state_load() (state.c) builds each snapshot from the store instead of the file, so the
 *   CNI overlay (agent.c), the one enrollment reconciler and every reader are unchanged;
 * - after changes (coalesced: at most one rebuild per ZMESH_KUBE_BUILD_MS, 100 ms) the thread
 *   installs a new snapshot, enrolls what it says and tells the control loop, which re-checks
 *   live connections and the kernel fast path as after a reload;
 * - the Istio policies go to authz.c as one set beside the --policy files;
 * - the CNI server asks zt_kube_cni_pod() before it decides about a pod, which fetches a pod
 *   (and its namespace) the watch has not delivered yet: a pod is never judged outside the
 *   mesh only because its event is late, and while the API cannot be asked the ADD fails
 *   with "try again" (the kubelet retries).
 * Startup waits for the first list of every kind (so a restart never unenrolls running pods
 * from an empty model, and an upgrade's new process takes no socket over before it has a
 * model), and readiness (zt_ready_update) counts it with xDS's first answers; afterwards the
 * last good model serves while the API server is away. Its builds go through zt_state_load()
 * unguarded: a complete list saying no pod of this node is meshed is the cluster's answer,
 * not a truncated file (state.c, zt_state_guard).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/errf.h"
#include "common/heap.h"
#include "kube/kube.h"
#include "obs/log.h"
#include "rbac/rbac.h"
#include "authz.h"
#include "zt.h"

#define ZT_KUBE_LOG_LEN	     (64 * 1024)
#define ZT_KUBE_CONV_BUCKETS 64 /* convergence histogram: 0..62 ms by 1, 63: >= 63 ms... */

static struct {
	struct zt *zt;
	struct zm_kube_src src;
	struct zm_kube_opts opts;
	atomic_bool waiting; /* for the first list of every kind: not ready (zt_kube_synced) */
	atomic_ulong built_serial; /* the store's serial behind the last build */
	unsigned int build_ms;
	char *log, *last_log; /* the build's notes, and the previous build's (said once) */
	char *last_policies;
	atomic_ulong builds, last_build_us;
	/* From the first change after a model to the next model in force (ms): bench figures. */
	pthread_mutex_t conv_lock;
	unsigned long conv_n, conv_max, conv_hist[ZT_KUBE_CONV_BUCKETS];
} zk = {.conv_lock = PTHREAD_MUTEX_INITIALIZER};

static uint64_t zt_kube_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

bool zt_kube_enabled(const struct zt *zt)
{
	return zt->opts.kube || zt->opts.kubeconfig;
}

int zt_kube_config(struct zm_config **out, char *err, size_t len)
{
	uint64_t t0 = zt_kube_now_us();
	int r;

	zm_kube_client_lock(zk.src.client);
	atomic_store(&zk.built_serial, (unsigned long)zm_kube_store_serial(zk.src.store));
	r = zm_kube_store_build(zk.src.store, &zk.opts, out, zk.log, ZT_KUBE_LOG_LEN, err, len);
	zm_kube_client_unlock(zk.src.client);
	zm_kube_say_new(zk.log, &zk.last_log);
	/* Lists, events and the previous model were freed: give the pages back (measured: a
	 * 5,000-pod cluster under churn holds ~1.3x more RSS without this, bench-kube.sh). */
	zm_heap_trim();
	atomic_store(&zk.last_build_us, (unsigned long)(zt_kube_now_us() - t0));
	atomic_fetch_add(&zk.builds, 1);
	return r;
}

/* The policy objects, when they changed, to authz.c. */
static void zt_kube_policies(void)
{
	struct zm_rbac_set *set = NULL;
	char err[4096], *text;
	size_t n;

	zm_kube_client_lock(zk.src.client);
	text = zm_kube_store_policies(zk.src.store, &n);
	zm_kube_client_unlock(zk.src.client);
	if (!text || (zk.last_policies && !strcmp(text, zk.last_policies))) {
		free(text);
		return;
	}
	/* Each object was checked alone when it came: this can only fail on duplicates. */
	if (zm_rbac_load_buf("kubernetes", text, strlen(text), &set, err, sizeof(err))) {
		obs_log(OBS_WARN, "kube", "policies refused, keeping the previous ones:\n%s", err);
		free(text);
		return;
	}
	obs_log(OBS_INFO, "kube", "%zu AuthorizationPolicies and PeerAuthentications in force", n);
	zt_authz_set_api(set);
	free(zk.last_policies);
	zk.last_policies = text;
}

/* A new snapshot from the store, enrolled, announced to the control loop. */
static void zt_kube_apply(void)
{
	char err[4096];
	struct zt_snap *s;

	zt_kube_policies();
	if (zt_state_load(zk.zt, err, sizeof(err))) {
		obs_log(OBS_WARN, "kube", "building the model failed, keeping the previous: %s",
			err);
		return;
	}
	s = zt_state_get();
	zt_enroll_sync(zk.zt, s);
	zt_state_put(s);
	zt_state_mark_news();
}

/* Bucket of a convergence time: 1 ms steps to 32 ms, then 32 ms steps (the last: more). */
static unsigned int zt_kube_conv_bucket(unsigned long ms)
{
	unsigned long b = ms < 32 ? ms : 32 + (ms - 32) / 32;

	return b < ZT_KUBE_CONV_BUCKETS ? (unsigned int)b : ZT_KUBE_CONV_BUCKETS - 1;
}

static unsigned long zt_kube_conv_upper(unsigned int b)
{
	return b < 32 ? b + 1 : 32 + (b - 31) * 32ul;
}

static void zt_kube_conv_note(uint64_t since_us)
{
	unsigned long ms = (unsigned long)((zt_kube_now_us() - since_us + 999) / 1000);

	pthread_mutex_lock(&zk.conv_lock);
	zk.conv_n++;
	zk.conv_max = ms > zk.conv_max ? ms : zk.conv_max;
	zk.conv_hist[zt_kube_conv_bucket(ms)]++;
	pthread_mutex_unlock(&zk.conv_lock);
}

static void *zt_kube_thread(void *arg)
{
	uint64_t last = 0, now, serial, first_change = 0;

	(void)arg;
	while (!atomic_load(&zk.src.stop)) {
		zm_kube_client_step(zk.src.client, 50);
		zm_kube_client_lock(zk.src.client);
		serial = zm_kube_store_serial(zk.src.store);
		zm_kube_client_unlock(zk.src.client);
		if (serial == atomic_load(&zk.built_serial)) {
			first_change = 0;
			continue;
		}
		if (!first_change)
			first_change = zt_kube_now_us();
		now = zt_kube_now_us() / 1000;
		if (now - last < zk.build_ms)
			continue;
		last = now;
		zt_kube_apply();
		zt_kube_conv_note(first_change);
		first_change = 0;
	}
	return NULL;
}

int zt_kube_start(struct zt *zt, char *err, size_t len)
{
	int r;

	zk.zt = zt;
	atomic_store(&zk.waiting, true);
	zk.build_ms = zm_kube_env("ZMESH_KUBE_BUILD_MS", 100);
	zk.opts = (struct zm_kube_opts){.node = zt->opts.node,
					.trust_domain = getenv("TRUST_DOMAIN"),
					.cluster_domain = getenv("CLUSTER_DOMAIN"),
					.cluster_id = getenv("CLUSTER_ID")};
	zk.log = malloc(ZT_KUBE_LOG_LEN);
	if (!zk.log)
		return zm_errf(err, len, -ENOMEM, "out of memory");
	r = zm_kube_src_open(&zk.src, zt->opts.kubeconfig, zt->opts.kube_sa_dir,
			     ZM_KUBE_KINDS_ZTUNNEL, "zmesh-node", "workloads", err, len);
	if (r)
		return r;
	atomic_store(&zk.waiting, false);
	zt_kube_policies();
	return zm_kube_src_run(&zk.src, zt_kube_thread, err, len);
}

void zt_kube_stop(void)
{
	zm_kube_src_close(&zk.src);
	free(zk.log);
	free(zk.last_log);
	free(zk.last_policies);
	zk.src.client = NULL;
	zk.src.store = NULL;
}

bool zt_kube_synced(void)
{
	return !atomic_load(&zk.waiting);
}

int zt_kube_cni_pod(const char *ns, const char *name, char *err, size_t len)
{
	bool have_ns, have_pod;
	int r = 0;

	if (!zk.src.client)
		return 0;
	zm_kube_client_lock(zk.src.client);
	have_ns = zm_kube_store_has(zk.src.store, ZM_KUBE_NAMESPACES, "", ns);
	have_pod = zm_kube_store_has(zk.src.store, ZM_KUBE_PODS, ns, name);
	zm_kube_client_unlock(zk.src.client);
	if (!have_ns)
		r = zm_kube_client_fetch(zk.src.client, ZM_KUBE_NAMESPACES, "", ns, 2000, err, len);
	if (!r && !have_pod)
		r = zm_kube_client_fetch(zk.src.client, ZM_KUBE_PODS, ns, name, 2000, err, len);
	if (r == -ENOENT && have_ns)
		return 0; /* no such pod in the API: not ours to mesh (a static pod's sandbox?) */
	if (r)
		return zm_errf(err, len, -EAGAIN,
			       "pod %s/%s is not known yet and the Kubernetes API cannot tell "
			       "whether it is in the mesh (%s): try again",
			       ns, name, err);
	if (!have_pod)
		obs_log(OBS_INFO, "kube", "pod %s/%s fetched for the CNI before its watch event",
			ns, name);
	return 0;
}

/* The q-quantile of the convergence histogram, as its bucket's upper bound (ms). */
static unsigned long zt_kube_conv_quantile(double q)
{
	unsigned long want = (unsigned long)(q * (double)zk.conv_n + 0.999999), seen = 0;
	unsigned int b;

	for (b = 0; b < ZT_KUBE_CONV_BUCKETS; b++) {
		seen += zk.conv_hist[b];
		if (seen >= want && seen) /* never above the largest seen */
			return zt_kube_conv_upper(b) < zk.conv_max ? zt_kube_conv_upper(b)
								   : zk.conv_max;
	}
	return 0;
}

char *zt_kube_dump(void)
{
	char *d, *out = NULL;
	size_t n;

	if (!zk.src.client || !(d = zm_kube_client_dump(zk.src.client)))
		return NULL;
	n = strlen(d);
	/* Append the build figures to the client's object. */
	pthread_mutex_lock(&zk.conv_lock);
	if (n && d[n - 1] == '}' &&
	    asprintf(&out,
		     "%.*s,\"builds\":%lu,\"last_build_us\":%lu,\"convergence_ms\":{\"count\":%lu,"
		     "\"p50\":%lu,\"p99\":%lu,\"max\":%lu}}",
		     (int)(n - 1), d, atomic_load(&zk.builds), atomic_load(&zk.last_build_us),
		     zk.conv_n, zt_kube_conv_quantile(0.5), zt_kube_conv_quantile(0.99),
		     zk.conv_max) < 0)
		out = NULL;
	pthread_mutex_unlock(&zk.conv_lock);
	free(d);
	return out;
}
