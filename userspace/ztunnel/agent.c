// SPDX-License-Identifier: Apache-2.0
/*
 * The local-agent source of ztunnel's model (agent.h): the table of pods the CNI plugin
 * announced, its overlay onto each config snapshot, its file in the run directory and the
 * capture filter on the announced veths. The table has its own lock and is touched by the CNI
 * server thread (changes) and by whichever thread builds a snapshot or enrolls (reads).
 */
#include "agent.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/errf.h"
#include "config/config.h"
#include "datapath/datapath.h"
#include "obs/log.h"
#include "zt.h"

static pthread_mutex_t zt_agent_lock = PTHREAD_MUTEX_INITIALIZER;
static struct zt_agent_pod *zt_agent_pods;
static bool *zt_agent_attached; /* per record: capture filter attached by this process */
static size_t zt_agent_n;
static char zt_agent_file[512];	  /* RUN_DIR/pods.json, "" when no run directory */
static char zt_agent_cgroot[256]; /* cgroup v2 root, "" when none is mounted */

/* Copies string field key of o (required unless opt) into dst of size bytes. */
static int zt_agent_str(json_object *o, const char *key, bool opt, char *dst, size_t size,
			char *err, size_t len)
{
	json_object *v;
	const char *s;

	dst[0] = '\0';
	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
		return opt ? 0 : zm_errf(err, len, -EINVAL, "%s is missing", key);
	s = json_object_get_string(v);
	if (!json_object_is_type(v, json_type_string) || strlen(s) >= size ||
	    strlen(s) != (size_t)json_object_get_string_len(v))
		return zm_errf(err, len, -EINVAL, "%s must be a string of at most %zu bytes", key,
			       size - 1);
	if (!opt && !*s)
		return zm_errf(err, len, -EINVAL, "%s is empty", key);
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}

int zt_agent_pod_from_json(json_object *o, struct zt_agent_pod *p, char *err, size_t len)
{
	json_object *v;
	size_t i, n;
	int r;

	memset(p, 0, sizeof(*p));
	if (!json_object_is_type(o, json_type_object))
		return zm_errf(err, len, -EINVAL, "a pod must be a JSON object");
	if ((r = zt_agent_str(o, "containerId", false, p->container_id, sizeof(p->container_id),
			      err, len)) ||
	    (r = zt_agent_str(o, "namespace", false, p->namespace, sizeof(p->namespace), err,
			      len)) ||
	    (r = zt_agent_str(o, "name", false, p->name, sizeof(p->name), err, len)) ||
	    (r = zt_agent_str(o, "uid", true, p->uid, sizeof(p->uid), err, len)) ||
	    (r = zt_agent_str(o, "veth", false, p->veth, sizeof(p->veth), err, len)) ||
	    (r = zt_agent_str(o, "cgroup", true, p->cgroup, sizeof(p->cgroup), err, len)))
		return r;
	/* A cgroup path is joined to the root: it must stay below it and not be the root. */
	if (p->cgroup[0] && (p->cgroup[0] != '/' || strstr(p->cgroup, "/..") || !p->cgroup[1]))
		return zm_errf(err, len, -EINVAL, "cgroup \"%s\" is not a path below the root",
			       p->cgroup);
	if (!json_object_object_get_ex(o, "addresses", &v) ||
	    !json_object_is_type(v, json_type_array))
		return zm_errf(err, len, -EINVAL, "addresses must be a list");
	n = json_object_array_length(v);
	if (n > ZT_AGENT_MAX_ADDRS)
		return zm_errf(err, len, -EINVAL, "more than %d addresses", ZT_AGENT_MAX_ADDRS);
	for (i = 0; i < n; i++) {
		json_object *a = json_object_array_get_idx(v, i);

		if (!json_object_is_type(a, json_type_string) ||
		    zm_addr_parse(json_object_get_string(a), &p->addrs[i]))
			return zm_errf(err, len, -EINVAL, "addresses[%zu] is not an IP address", i);
	}
	p->n_addrs = n;
	return 0;
}

json_object *zt_agent_pod_to_json(const struct zt_agent_pod *p)
{
	json_object *o = json_object_new_object(), *a = json_object_new_array();
	char text[ZM_ADDR_STRLEN];
	size_t i;

	if (!o || !a) {
		json_object_put(o);
		json_object_put(a);
		return NULL;
	}
	json_object_object_add(o, "containerId", json_object_new_string(p->container_id));
	json_object_object_add(o, "namespace", json_object_new_string(p->namespace));
	json_object_object_add(o, "name", json_object_new_string(p->name));
	json_object_object_add(o, "uid", json_object_new_string(p->uid));
	json_object_object_add(o, "veth", json_object_new_string(p->veth));
	json_object_object_add(o, "cgroup", json_object_new_string(p->cgroup));
	for (i = 0; i < p->n_addrs; i++)
		json_object_array_add(
		    a, json_object_new_string(zm_addr_format(&p->addrs[i], text, sizeof(text))));
	json_object_object_add(o, "addresses", a);
	return o;
}

/* First cgroup2 mount of this mount namespace, "" when none. */
static void zt_agent_find_cgroot(char *out, size_t len)
{
	char dev[256], mnt[256], type[64];
	FILE *f = fopen("/proc/self/mounts", "re");

	out[0] = '\0';
	if (!f)
		return;
	while (fscanf(f, "%255s %255s %63s %*[^\n]", dev, mnt, type) == 3)
		if (!strcmp(type, "cgroup2")) {
			snprintf(out, len, "%s", mnt);
			break;
		}
	fclose(f);
}

static int zt_agent_load_file(char *err, size_t len)
{
	json_object *root = json_object_from_file(zt_agent_file), *o;
	struct zt_agent_pod p;
	char why[256];
	size_t i, n;

	if (!root)
		return access(zt_agent_file, F_OK)
			   ? 0
			   : zm_errf(err, len, -EINVAL, "%s: not JSON", zt_agent_file);
	if (!json_object_is_type(root, json_type_array)) {
		json_object_put(root);
		return zm_errf(err, len, -EINVAL, "%s: not a list of pods", zt_agent_file);
	}
	n = json_object_array_length(root);
	for (i = 0; i < n; i++) {
		o = json_object_array_get_idx(root, i);
		if (zt_agent_pod_from_json(o, &p, why, sizeof(why))) {
			obs_log(OBS_WARN, "cni", "%s: pod %zu dropped: %s", zt_agent_file, i, why);
			continue;
		}
		/* The pod went away while no ztunnel listened: its DEL never reached us. */
		if (!if_nametoindex(p.veth)) {
			obs_log(OBS_INFO, "cni", "pod %s/%s is gone (no %s), forgetting it",
				p.namespace, p.name, p.veth);
			continue;
		}
		zt_agent_add(&p);
	}
	json_object_put(root);
	return 0;
}

int zt_agent_init(struct zt *zt, char *err, size_t len)
{
	zt_agent_pods = calloc(ZT_AGENT_MAX_PODS, sizeof(*zt_agent_pods));
	zt_agent_attached = calloc(ZT_AGENT_MAX_PODS, sizeof(*zt_agent_attached));
	if (!zt_agent_pods || !zt_agent_attached)
		return zm_errf(err, len, -ENOMEM, "out of memory");
	if (zt->opts.cgroup_root)
		snprintf(zt_agent_cgroot, sizeof(zt_agent_cgroot), "%s", zt->opts.cgroup_root);
	else
		zt_agent_find_cgroot(zt_agent_cgroot, sizeof(zt_agent_cgroot));
	if (zt->opts.run_dir && !zt_agent_cgroot[0])
		fprintf(
		    stderr,
		    "ztunnel: no cgroup v2 mount here: pods from the CNI plugin are "
		    "enrolled without their cgroup (no sockops telemetry); see --cgroup-root\n");
	if (!zt->opts.run_dir)
		return 0;
	if (mkdir(zt->opts.run_dir, 0755) && errno != EEXIST)
		return zm_errf(err, len, -errno, "creating the run directory %s: %s",
			       zt->opts.run_dir, strerror(errno));
	if (snprintf(zt_agent_file, sizeof(zt_agent_file), "%s/pods.json", zt->opts.run_dir) >=
	    (int)sizeof(zt_agent_file))
		return zm_errf(err, len, -ENAMETOOLONG, "run directory path too long");
	return zt_agent_load_file(err, len);
}

/* The config workload an announced pod stands for: same namespace and name, here or nowhere. */
static struct zm_cfg_workload *zt_agent_workload(struct zm_config *cfg, const char *node,
						 const struct zt_agent_pod *p)
{
	size_t i;

	for (i = 0; i < cfg->n_workloads; i++) {
		struct zm_cfg_workload *w = &cfg->workloads[i];

		if (!strcmp(w->namespace, p->namespace) && !strcmp(w->name, p->name) &&
		    w->network_mode == ZM_CFG_NETMODE_STANDARD &&
		    (!w->node[0] || !strcmp(w->node, node)))
			return w;
	}
	return NULL;
}

/* Adds p's addresses that w lacks and nobody else owns. 1 when w changed, 0, or -ENOMEM. */
static int zt_agent_merge(struct zm_config *cfg, struct zm_cfg_workload *w, const char *node,
			  const struct zt_agent_pod *p)
{
	struct zm_cfg_ip *ips;
	size_t i, j, n = w->n_ips;
	bool node_set = !w->node[0];

	ips = zm_config_calloc(cfg, w->n_ips + p->n_addrs, sizeof(*ips));
	if (!ips)
		return -ENOMEM;
	if (w->n_ips) /* a source may leave ips NULL when there are none */
		memcpy(ips, w->ips, w->n_ips * sizeof(*ips));
	for (i = 0; i < p->n_addrs; i++) {
		const struct zm_cfg_workload *owner =
		    zm_config_workload_by_ip(cfg, w->network, &p->addrs[i]);

		if (owner && owner != w)
			continue;
		for (j = 0; j < n && !zm_addr_equal(&ips[j].addr, &p->addrs[i]); j++)
			;
		if (j == n)
			ips[n++] = (struct zm_cfg_ip){.addr = p->addrs[i], .line = w->line};
	}
	if (node_set && !(w->node = zm_config_strdup(cfg, node)))
		return -ENOMEM;
	if (n == w->n_ips)
		return node_set;
	w->ips = ips;
	w->n_ips = n;
	return 1;
}

int zt_agent_overlay(struct zm_config *cfg, const char *node, char *err, size_t len)
{
	struct zm_cfg_errors errs;
	bool changed = false;
	size_t i;
	int r = 0;

	pthread_mutex_lock(&zt_agent_lock);
	for (i = 0; i < zt_agent_n && r >= 0; i++) {
		struct zm_cfg_workload *w = zt_agent_workload(cfg, node, &zt_agent_pods[i]);

		r = w ? zt_agent_merge(cfg, w, node, &zt_agent_pods[i]) : 0;
		changed |= r > 0;
	}
	pthread_mutex_unlock(&zt_agent_lock);
	if (r < 0)
		return zm_errf(err, len, r, "merging announced pods: out of memory");
	if (!changed)
		return 0;
	/* New addresses need new indexes: finalize again (it rebuilds them from scratch). */
	zm_cfg_errors_init(&errs, cfg->source, err, len);
	r = zm_config_finalize(cfg, &errs);
	zm_cfg_errors_finish(&errs);
	return r;
}

bool zt_agent_lookup_addr(const struct zm_addr *addr, char veth[IF_NAMESIZE], char *cgroup,
			  size_t cglen)
{
	bool found = false;
	size_t i, j;

	pthread_mutex_lock(&zt_agent_lock);
	for (i = 0; i < zt_agent_n && !found; i++) {
		const struct zt_agent_pod *p = &zt_agent_pods[i];

		for (j = 0; j < p->n_addrs && !found; j++) {
			if (!zm_addr_equal(&p->addrs[j], addr))
				continue;
			found = true;
			snprintf(veth, IF_NAMESIZE, "%s", p->veth);
			if (p->cgroup[0] && zt_agent_cgroot[0])
				snprintf(cgroup, cglen, "%s%s", zt_agent_cgroot, p->cgroup);
			else
				cgroup[0] = '\0';
		}
	}
	pthread_mutex_unlock(&zt_agent_lock);
	return found;
}

void zt_agent_attach_pending(struct zm_dp *dp)
{
	size_t i;
	int r;

	pthread_mutex_lock(&zt_agent_lock);
	for (i = 0; i < zt_agent_n; i++) {
		if (zt_agent_attached[i])
			continue;
		r = zm_dp_attach(dp, zt_agent_pods[i].veth);
		zt_agent_attached[i] = !r;
		/* -ENOENT: datapath not loaded yet, which the enrollment path reports. */
		if (r && r != -ENOENT)
			obs_log(OBS_WARN, "cni", "attaching capture to %s of pod %s/%s: %s",
				zt_agent_pods[i].veth, zt_agent_pods[i].namespace,
				zt_agent_pods[i].name, dp->err);
	}
	pthread_mutex_unlock(&zt_agent_lock);
}

/* Index of the record of this container, or else of this pod; zt_agent_n when none. */
static size_t zt_agent_find(const char *container_id, const char *ns, const char *name)
{
	size_t i;

	for (i = 0; i < zt_agent_n; i++)
		if (!strcmp(zt_agent_pods[i].container_id, container_id))
			return i;
	for (i = 0; ns && i < zt_agent_n; i++)
		if (!strcmp(zt_agent_pods[i].namespace, ns) && !strcmp(zt_agent_pods[i].name, name))
			return i;
	return zt_agent_n;
}

static void zt_agent_remove_at(size_t i)
{
	zt_agent_n--;
	memmove(&zt_agent_pods[i], &zt_agent_pods[i + 1],
		(zt_agent_n - i) * sizeof(*zt_agent_pods));
	memmove(&zt_agent_attached[i], &zt_agent_attached[i + 1],
		(zt_agent_n - i) * sizeof(*zt_agent_attached));
}

int zt_agent_add(const struct zt_agent_pod *p)
{
	size_t i;

	pthread_mutex_lock(&zt_agent_lock);
	/* A pod's new sandbox replaces its old one (kubelet may send the old DEL later). */
	i = zt_agent_find(p->container_id, p->namespace, p->name);
	if (i == zt_agent_n && zt_agent_n == ZT_AGENT_MAX_PODS) {
		pthread_mutex_unlock(&zt_agent_lock);
		return -ENOSPC;
	}
	if (i == zt_agent_n)
		zt_agent_n++;
	zt_agent_pods[i] = *p;
	zt_agent_attached[i] = false;
	pthread_mutex_unlock(&zt_agent_lock);
	return 0;
}

bool zt_agent_del(const char *container_id, struct zt_agent_pod *old)
{
	bool found;
	size_t i;

	pthread_mutex_lock(&zt_agent_lock);
	i = zt_agent_find(container_id, NULL, NULL);
	found = i < zt_agent_n;
	if (found) {
		if (old)
			*old = zt_agent_pods[i];
		zt_agent_remove_at(i);
	}
	pthread_mutex_unlock(&zt_agent_lock);
	return found;
}

bool zt_agent_get(const char *container_id, struct zt_agent_pod *out)
{
	size_t i;

	pthread_mutex_lock(&zt_agent_lock);
	i = zt_agent_find(container_id, NULL, NULL);
	if (i < zt_agent_n)
		*out = zt_agent_pods[i];
	pthread_mutex_unlock(&zt_agent_lock);
	return i < zt_agent_n;
}

bool zt_agent_addr_taken(const struct zt_agent_pod *p, char *who, size_t len)
{
	bool taken = false;
	size_t i, j, k;

	pthread_mutex_lock(&zt_agent_lock);
	for (i = 0; i < zt_agent_n && !taken; i++) {
		const struct zt_agent_pod *o = &zt_agent_pods[i];

		/* The pod's own older sandbox is replaced, not a conflict. */
		if (!strcmp(o->container_id, p->container_id) ||
		    (!strcmp(o->namespace, p->namespace) && !strcmp(o->name, p->name)))
			continue;
		for (j = 0; j < o->n_addrs && !taken; j++)
			for (k = 0; k < p->n_addrs && !taken; k++)
				if (zm_addr_equal(&o->addrs[j], &p->addrs[k])) {
					taken = true;
					snprintf(who, len, "%s/%s", o->namespace, o->name);
				}
	}
	pthread_mutex_unlock(&zt_agent_lock);
	return taken;
}

static json_object *zt_agent_to_json_locked(void)
{
	json_object *a = json_object_new_array();
	size_t i;

	for (i = 0; a && i < zt_agent_n; i++)
		json_object_array_add(a, zt_agent_pod_to_json(&zt_agent_pods[i]));
	return a;
}

int zt_agent_save(void)
{
	char tmp[sizeof(zt_agent_file) + 8];
	json_object *a;
	int r = 0;

	if (!zt_agent_file[0])
		return 0;
	snprintf(tmp, sizeof(tmp), "%s.tmp", zt_agent_file);
	pthread_mutex_lock(&zt_agent_lock);
	a = zt_agent_to_json_locked();
	pthread_mutex_unlock(&zt_agent_lock);
	if (!a)
		return -ENOMEM;
	if (json_object_to_file_ext(tmp, a, JSON_C_TO_STRING_PRETTY) ||
	    rename(tmp, zt_agent_file)) {
		r = -errno;
		obs_log(OBS_ERROR, "cni", "writing %s failed: %s (a restart would forget pods)",
			zt_agent_file, strerror(errno));
	}
	json_object_put(a);
	return r;
}

char *zt_agent_dump(void)
{
	json_object *a;
	char *out;

	pthread_mutex_lock(&zt_agent_lock);
	a = zt_agent_to_json_locked();
	pthread_mutex_unlock(&zt_agent_lock);
	if (!a)
		return NULL;
	out = strdup(json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN |
							   JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(a);
	return out;
}
