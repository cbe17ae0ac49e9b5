// SPDX-License-Identifier: Apache-2.0
/*
 * The current config snapshot. Workers take a reference per decision (zt_state_get/put) and
 * never see a snapshot change under them; a reload builds a complete new snapshot and swaps
 * the pointer under a short lock, so connections already established keep running untouched.
 * A reload that fails to parse keeps the old snapshot and logs every error. Reloads come from
 * SIGHUP and from polling the file's mtime/size (control thread only); with --xds-address the
 * xDS thread installs whole snapshots instead (zt_state_install); with the Kubernetes API as
 * the source (kube_source.c) snapshots are built from its store, overlaid with the CNI's pods
 * like the file's, by its thread and by the CNI thread, and the control loop sees each one as
 * a reload.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "config/config.h"
#include "agent.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "zt.h"

static pthread_mutex_t zt_state_lock = PTHREAD_MUTEX_INITIALIZER;
/* Serialises whole loads (control thread, CNI thread): the last one reads the newest pods. */
static pthread_mutex_t zt_state_load_lock = PTHREAD_MUTEX_INITIALIZER;
static struct zt_snap *zt_state_cur;
static __u64 zt_state_gen;
static struct stat zt_state_st; /* of the file behind the current snapshot */
/* A snapshot was built off the control thread (CNI pods): its next poll reports a change. */
static atomic_bool zt_state_news;

void zt_state_mark_news(void)
{
	atomic_store(&zt_state_news, true);
}

struct zt_snap *zt_state_get(void)
{
	struct zt_snap *s;

	pthread_mutex_lock(&zt_state_lock);
	s = zt_state_cur;
	if (s)
		s->refs++;
	pthread_mutex_unlock(&zt_state_lock);
	return s;
}

void zt_state_put(struct zt_snap *s)
{
	bool last;

	if (!s)
		return;
	pthread_mutex_lock(&zt_state_lock);
	last = --s->refs == 0;
	pthread_mutex_unlock(&zt_state_lock);
	if (last)
		zt_snap_destroy(s);
}

__u64 zt_state_generation(void)
{
	__u64 g;

	pthread_mutex_lock(&zt_state_lock);
	g = zt_state_gen;
	pthread_mutex_unlock(&zt_state_lock);
	return g;
}

/*
 * The source's config: the Kubernetes API's store, or the file (its stat in *st). 1 when there
 * is nothing to load here: with xDS snapshots come whole from the xDS thread
 * (zt_state_install), which carries the pods' addresses from istiod itself.
 */
static int zt_state_base(struct zt *zt, struct zm_config **cfg, struct stat *st, char *err,
			 size_t len)
{
	int r;

	memset(st, 0, sizeof(*st));
	if (zt_kube_enabled(zt))
		return zt_kube_config(cfg, err, len);
	if (!zt->opts.config)
		return 1;
	if (stat(zt->opts.config, st)) {
		r = -errno;
		snprintf(err, len, "%s: %s", zt->opts.config, strerror(errno));
		return r;
	}
	return zm_config_load_file(zt->opts.config, cfg, err, len);
}

int zt_state_install(struct zt *zt, struct zm_config *cfg, char *err, size_t len)
{
	struct zt_snap *s = zt_snap_build(cfg, zt->opts.node), *old;

	if (!s) {
		zm_config_free(cfg);
		snprintf(err, len, "building indexes of the xDS config: out of memory");
		return -ENOMEM;
	}
	s->refs = 1;
	pthread_mutex_lock(&zt_state_lock);
	old = zt_state_cur;
	zt_state_cur = s;
	s->generation = ++zt_state_gen;
	pthread_mutex_unlock(&zt_state_lock);
	zt_state_put(old);
	zt_state_mark_news(); /* the control loop sees it on its next poll, like a reload */
	return 0;
}

/* This node's mesh workloads: what the datapath enrolls. */
static size_t zt_state_local_mesh(const struct zm_config *cfg, const char *node)
{
	size_t i, n = 0;

	for (i = 0; cfg && i < cfg->n_workloads; i++)
		n += !strcmp(cfg->workloads[i].node, node) &&
		     cfg->workloads[i].protocol == ZM_CFG_PROTO_HBONE;
	return n;
}

/* A config load refused (the previous config stays): counted by reason. */
static void zt_state_refused(const char *reason)
{
	static const char *const labels[] = {"reason", NULL};
	static struct obs_family *f;
	const char *const v[] = {reason};
	struct obs_series *s;

	if (!f)
		f = obs_family_new(obs_metrics(), OBS_COUNTER, "zmesh_config_refused_total",
				   "Config loads refused, the previous config kept in force "
				   "(reason: invalid, unenroll_all)",
				   labels, NULL, 0);
	s = f ? obs_series_get(f, v) : NULL;
	if (s)
		obs_counter_add(s, 1);
}

/*
 * Fail safe: a config that would unenroll every mesh workload of this node is refused unless
 * it says so explicitly (`workloads: []`). A file truncated at a line boundary, or a source that
 * lost its workloads, reads as "no workloads", and obeying it would send every pod's traffic
 * out in plaintext within a second. 0, or -ECANCELED with err set. Only the file is guarded:
 * the Kubernetes API's model comes from complete lists (the reflector never hands over a
 * partial one, and keeps the last good store while the API server is away), so "no mesh pod
 * on this node" is what the cluster says (a namespace unlabelled, the last pod deleted), and
 * istiod's snapshots are installed whole (zt_state_install).
 */
static int zt_state_guard(struct zt *zt, const struct zm_config *cfg, char *err, size_t len)
{
	struct zt_snap *cur = zt_state_get();
	size_t now = cur ? zt_state_local_mesh(cur->cfg, zt->opts.node) : 0;

	zt_state_put(cur);
	if (!now || cfg->workloads_empty || zt_state_local_mesh(cfg, zt->opts.node))
		return 0;
	snprintf(err, len,
		 "%s: the new config would unenroll every mesh workload of node %s (%zu now): "
		 "refused, the previous config stays (a config meaning no workloads says "
		 "workloads: [])",
		 zt->opts.config, zt->opts.node, now);
	return -ECANCELED;
}

/*
 * guard: a file reload (zt_state_guard); CNI pods coming and going, and the Kubernetes API's
 * builds, are not guarded.
 */
static int zt_state_load_locked(struct zt *zt, bool guard, char *err, size_t len)
{
	struct zm_config *cfg;
	struct zt_snap *s, *old;
	struct stat st;
	int r;

	r = zt_state_base(zt, &cfg, &st, err, len);
	if (r > 0)
		return 0;
	if (r)
		return r;
	/* Pods announced by the CNI plugin bring the addresses the file leaves out. */
	r = zt_agent_overlay(cfg, zt->opts.node, err, len);
	if (!r && guard)
		r = zt_state_guard(zt, cfg, err, len);
	if (r) {
		zm_config_free(cfg);
		return r;
	}
	s = zt_snap_build(cfg, zt->opts.node);
	if (!s) {
		snprintf(err, len, "building indexes of %s: out of memory", cfg->source);
		zm_config_free(cfg);
		return -ENOMEM;
	}
	s->refs = 1; /* the state's own reference */
	pthread_mutex_lock(&zt_state_lock);
	old = zt_state_cur;
	zt_state_cur = s;
	s->generation = ++zt_state_gen;
	zt_state_st = st;
	pthread_mutex_unlock(&zt_state_lock);
	zt_state_put(old);
	return 0;
}

static int zt_state_load_guarded(struct zt *zt, bool guard, char *err, size_t len)
{
	int r;

	pthread_mutex_lock(&zt_state_load_lock);
	r = zt_state_load_locked(zt, guard, err, len);
	pthread_mutex_unlock(&zt_state_load_lock);
	return r;
}

int zt_state_load(struct zt *zt, char *err, size_t len)
{
	return zt_state_load_guarded(zt, false, err, len);
}

/*
 * Reload when forced (SIGHUP) or when the file's mtime, size or inode changed (an editor or a
 * ConfigMap update replaces the file by rename). Returns 1 when a new snapshot is in, 0 when
 * nothing changed, -errno when the new file was refused (the old snapshot stays).
 */
int zt_state_reload_if_changed(struct zt *zt, bool force)
{
	char err[4096];
	struct stat st;
	bool changed;
	int r;

	/* xDS or the Kubernetes API: installed by their threads, seen here once */
	if (!zt->opts.config)
		return atomic_exchange(&zt_state_news, false) ? 1 : 0;
	if (stat(zt->opts.config, &st))
		return force ? -errno : 0;
	pthread_mutex_lock(&zt_state_lock);
	changed = st.st_mtim.tv_sec != zt_state_st.st_mtim.tv_sec ||
		  st.st_mtim.tv_nsec != zt_state_st.st_mtim.tv_nsec ||
		  st.st_size != zt_state_st.st_size || st.st_ino != zt_state_st.st_ino;
	pthread_mutex_unlock(&zt_state_lock);
	if (!force && !changed)
		return atomic_exchange(&zt_state_news, false) ? 1 : 0;
	r = zt_state_load_guarded(zt, true, err, sizeof(err));
	if (r) {
		/* Keep serving the last good config: a typo must not take the node down. */
		obs_log(OBS_WARN, "config", "reloading %s failed, keeping the previous config:\n%s",
			zt->opts.config, err);
		zt_state_refused(r == -ECANCELED ? "unenroll_all" : "invalid");
		pthread_mutex_lock(&zt_state_lock);
		zt_state_st = st; /* do not retry the same broken file every poll */
		pthread_mutex_unlock(&zt_state_lock);
		return r;
	}
	obs_log(OBS_INFO, "config", "config %s reloaded (generation %llu)", zt->opts.config,
		(unsigned long long)zt_state_generation());
	return 1;
}
