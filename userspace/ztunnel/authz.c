// SPDX-License-Identifier: Apache-2.0
/*
 * L4 authorization of the ztunnel's inbound paths (authz.h). The Istio policy files form one
 * refcounted set swapped whole under a short lock, like the config snapshot (state.c): a file
 * that fails to load keeps the previous set and says why, since a typo must not open (or
 * close) the node. Every change bumps a generation; each worker compares it at its one-second
 * tick and re-evaluates its live inbound connections, closing those now denied the same way a
 * new connection would be refused (RST on 15006, RST_STREAM on 15008).
 *
 * The same changes recompile the kernel fast path (zm_rbac_compile_fastpath: DROP rules for
 * the plaintext SYNs the evaluator certainly denies) into the datapath's rule set. The kernel
 * set is only ever a subset of what userspace denies, so every failure degrades towards
 * userspace enforcement, never towards wrong drops.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "authz.h"
#include "config/config.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "datapath/datapath.h"
#include "rbac/rbac.h"
#include "zt.h"

/* One loaded set, shared by the sets in force and the next ones (refs under zt_authz_lock). */
struct zt_authz_ref {
	struct zm_rbac_set *set;
	int refs;
};

/* The policy files' sets, then the Kubernetes API's (zt_authz_set_api), if any. */
struct zt_authz_sets {
	struct zt_authz_ref *v[ZT_AUTHZ_MAX_FILES + 1];
	size_t n;
	int refs; /* guarded by zt_authz_lock */
};

/*
 * The policy index (zm_rbac_index_build) of one config snapshot and one policy sets pair, for
 * this node's workloads, holding both so its pointers stay valid. Rebuilt by whoever changes
 * either (zt_authz_index_sync); a decision uses it only when it was built from the very snapshot
 * and sets that decision holds, and otherwise walks the policies, which is slower, never wrong.
 */
struct zt_authz_index {
	struct zt_snap *snap;	    /* a reference (zt_state_put) */
	struct zt_authz_sets *sets; /* a reference (zt_authz_put) */
	struct zm_rbac_index *idx;
	int refs; /* guarded by zt_authz_lock */
};

static const char *zt_authz_files[ZT_AUTHZ_MAX_FILES];
static struct stat zt_authz_st[ZT_AUTHZ_MAX_FILES];
static size_t zt_authz_n_files;
static pthread_mutex_t zt_authz_lock = PTHREAD_MUTEX_INITIALIZER;
static struct zt_authz_sets *zt_authz_cur;
static struct zt_authz_ref *zt_authz_api;   /* the API's set, NULL without one */
static struct zt_authz_index *zt_authz_idx; /* NULL: none yet, or building it failed */
/* Serialises index builds (control thread, Kubernetes API thread); taken before the lock. */
static pthread_mutex_t zt_authz_idx_lock = PTHREAD_MUTEX_INITIALIZER;
/* zmesh_authz_decisions_total{path}: set up by zt_authz_init, before any worker runs. */
static struct obs_series *zt_authz_m_indexed, *zt_authz_m_walked;
static atomic_uint_fast64_t zt_authz_gen = 1;
static uint_fast64_t zt_authz_seen[ZT_MAX_WORKERS]; /* per worker, touched by that worker only */

int zt_authz_add_file(const char *path)
{
	if (zt_authz_n_files == ZT_AUTHZ_MAX_FILES)
		return -E2BIG;
	zt_authz_files[zt_authz_n_files++] = path;
	return 0;
}

static struct zt_authz_ref *zt_authz_ref_new(struct zm_rbac_set *set)
{
	struct zt_authz_ref *r = calloc(1, sizeof(*r));

	if (!r) {
		zm_rbac_set_free(set);
		return NULL;
	}
	r->set = set;
	r->refs = 1;
	return r;
}

static void zt_authz_ref_put(struct zt_authz_ref *r)
{
	bool last;

	if (!r)
		return;
	pthread_mutex_lock(&zt_authz_lock);
	last = --r->refs == 0;
	pthread_mutex_unlock(&zt_authz_lock);
	if (last) {
		zm_rbac_set_free(r->set);
		free(r);
	}
}

static void zt_authz_sets_free(struct zt_authz_sets *s)
{
	size_t i;

	for (i = 0; s && i < s->n; i++)
		zt_authz_ref_put(s->v[i]);
	free(s);
}

/* The sets as lib/rbac takes them; returns how many. */
static size_t zt_authz_view(const struct zt_authz_sets *s, const struct zm_rbac_set **v)
{
	size_t i;

	for (i = 0; s && i < s->n; i++)
		v[i] = s->v[i]->set;
	return s ? s->n : 0;
}

/* Append the API's set to s (under zt_authz_lock). */
static void zt_authz_add_api_locked(struct zt_authz_sets *s)
{
	if (!zt_authz_api)
		return;
	zt_authz_api->refs++;
	s->v[s->n++] = zt_authz_api;
}

static struct zt_authz_sets *zt_authz_get(void)
{
	struct zt_authz_sets *s;

	pthread_mutex_lock(&zt_authz_lock);
	s = zt_authz_cur;
	if (s)
		s->refs++;
	pthread_mutex_unlock(&zt_authz_lock);
	return s;
}

static void zt_authz_put(struct zt_authz_sets *s)
{
	bool last;

	if (!s)
		return;
	pthread_mutex_lock(&zt_authz_lock);
	last = --s->refs == 0;
	pthread_mutex_unlock(&zt_authz_lock);
	if (last)
		zt_authz_sets_free(s);
}

static void zt_authz_index_put(struct zt_authz_index *ix)
{
	bool last;

	if (!ix)
		return;
	pthread_mutex_lock(&zt_authz_lock);
	last = --ix->refs == 0;
	pthread_mutex_unlock(&zt_authz_lock);
	if (!last)
		return;
	zm_rbac_index_free(ix->idx);
	zt_authz_put(ix->sets);
	zt_state_put(ix->snap);
	free(ix);
}

/*
 * The sets in force (a reference, NULL: none) and, when the current index was built from them
 * and from snapshot s, that index (a reference in *ix, else NULL), under one lock.
 */
static struct zt_authz_sets *zt_authz_get_indexed(const struct zt_snap *s,
						  struct zt_authz_index **ix)
{
	struct zt_authz_sets *sets;

	pthread_mutex_lock(&zt_authz_lock);
	sets = zt_authz_cur;
	if (sets)
		sets->refs++;
	*ix = zt_authz_idx;
	if (*ix && (*ix)->snap == s && (*ix)->sets == sets)
		(*ix)->refs++;
	else
		*ix = NULL;
	pthread_mutex_unlock(&zt_authz_lock);
	return sets;
}

/*
 * Make the index match the current snapshot and policy sets. Any thread; cheap when it already
 * does. Building costs one pass over every policy per workload of this node; a failure leaves
 * no index (every decision walks) and says so.
 */
static void zt_authz_index_sync(void)
{
	const struct zm_rbac_set *v[ZT_AUTHZ_MAX_FILES + 1];
	struct zt_authz_index *ix, *old;
	struct zm_rbac_index_stats st;
	struct zm_rbac_sources src;
	struct zt_authz_sets *sets;
	struct zt_snap *s;

	pthread_mutex_lock(&zt_authz_idx_lock);
	s = zt_state_get();
	sets = zt_authz_get_indexed(s, &ix);
	if (ix || !s) {
		zt_authz_index_put(ix);
		zt_authz_put(sets);
		zt_state_put(s);
		pthread_mutex_unlock(&zt_authz_idx_lock);
		return;
	}
	src = (struct zm_rbac_sources){s->cfg, v, zt_authz_view(sets, v), NULL};
	ix = calloc(1, sizeof(*ix));
	if (ix)
		ix->idx = zm_rbac_index_build(&src, zt_g->opts.node ? zt_g->opts.node : "");
	if (!ix || !ix->idx) {
		obs_log(OBS_WARN, "authz",
			"indexing the policies: out of memory; every connection walks all of "
			"them until the next change");
		free(ix);
		ix = NULL;
		zt_authz_put(sets);
		zt_state_put(s);
	} else {
		ix->snap = s;
		ix->sets = sets;
		ix->refs = 1;
		zm_rbac_index_stats(ix->idx, &st);
		obs_log(OBS_DEBUG, "authz",
			"policy index: %zu workloads of node %s, %zu policy references, %zu "
			"PeerAuthentication, %zu long principal or namespace lists",
			st.workloads, zt_g->opts.node, st.policy_refs, st.peer_auth, st.long_lists);
	}
	pthread_mutex_lock(&zt_authz_lock);
	old = zt_authz_idx;
	zt_authz_idx = ix;
	pthread_mutex_unlock(&zt_authz_lock);
	zt_authz_index_put(old);
	pthread_mutex_unlock(&zt_authz_idx_lock);
}

/* Load every file into a new set; NULL with the messages in err on any failure. */
static struct zt_authz_sets *zt_authz_load(struct stat *st, char *err, size_t len)
{
	struct zt_authz_sets *s = calloc(1, sizeof(*s));
	size_t i;

	if (!s) {
		snprintf(err, len, "policy files: out of memory");
		return NULL;
	}
	for (i = 0; i < zt_authz_n_files; i++) {
		struct zm_rbac_set *set;

		if (stat(zt_authz_files[i], &st[i]))
			memset(&st[i], 0, sizeof(st[i]));
		if (zm_rbac_load_file(zt_authz_files[i], &set, err, len)) {
			zt_authz_sets_free(s);
			return NULL;
		}
		if (!(s->v[s->n] = zt_authz_ref_new(set))) {
			snprintf(err, len, "policy files: out of memory");
			zt_authz_sets_free(s);
			return NULL;
		}
		s->n++;
	}
	pthread_mutex_lock(&zt_authz_lock);
	zt_authz_add_api_locked(s);
	pthread_mutex_unlock(&zt_authz_lock);
	s->refs = 1;
	return s;
}

static void zt_authz_swap(struct zt_authz_sets *s)
{
	struct zt_authz_sets *old;

	pthread_mutex_lock(&zt_authz_lock);
	old = zt_authz_cur;
	zt_authz_cur = s;
	pthread_mutex_unlock(&zt_authz_lock);
	zt_authz_put(old);
	atomic_fetch_add(&zt_authz_gen, 1);
}

void zt_authz_set_api(struct zm_rbac_set *set)
{
	struct zt_authz_ref *r = set ? zt_authz_ref_new(set) : NULL, *old;
	struct zt_authz_sets *s = calloc(1, sizeof(*s));
	size_t i;

	if ((set && !r) || !s) {
		obs_log(OBS_ERROR, "authz",
			"policies from the Kubernetes API: out of memory, keeping the previous "
			"ones");
		zt_authz_ref_put(r);
		free(s);
		return;
	}
	s->refs = 1;
	pthread_mutex_lock(&zt_authz_lock);
	old = zt_authz_api;
	zt_authz_api = r;
	/* The files' sets in force stay; the API's is replaced. */
	for (i = 0; zt_authz_cur && i < zt_authz_cur->n; i++) {
		if (zt_authz_cur->v[i] == old)
			continue;
		zt_authz_cur->v[i]->refs++;
		s->v[s->n++] = zt_authz_cur->v[i];
	}
	zt_authz_add_api_locked(s);
	pthread_mutex_unlock(&zt_authz_lock);
	zt_authz_ref_put(old);
	zt_authz_swap(s);
	zt_authz_index_sync();
}

/* ---- the kernel fast path (control thread only) ---- */

static bool zt_fp_off;			     /* --no-fastpath */
static bool zt_fp_dirty = true;		     /* policies or config changed since the last sync */
static bool zt_fp_waiting;		     /* "datapath not loaded" was said */
static __u64 zt_fp_serial;		     /* zm_pol_gen serial after our last replace, 0: none */
static struct zm_dp_policy_rule *zt_fp_live; /* the set we put in, sorted */
static size_t zt_fp_n_live;

void zt_authz_fastpath_off(void)
{
	zt_fp_off = true;
}

static int zt_fp_rule_cmp(const void *a, const void *b)
{
	/* The compiler zeroes each rule before filling it: padding compares equal. */
	return memcmp(a, b, sizeof(struct zm_dp_policy_rule));
}

static int zt_fp_gen_cb(const void *key, const void *values, const struct zm_dp_map_info *mi,
			void *ctx)
{
	(void)key;
	if (mi->value_size == sizeof(struct zm_pol_gen))
		*(__u64 *)ctx = ((const struct zm_pol_gen *)values)->serial;
	return 0;
}

/* Compile this node's rules from the current snapshot and policy files; rbac.h's returns. */
static int zt_fp_compile(struct zm_dp_policy_rule **rules, size_t *n)
{
	struct zt_snap *s = zt_state_get();
	struct zt_authz_sets *sets = zt_authz_get();
	const struct zm_rbac_set *v[ZT_AUTHZ_MAX_FILES + 1];
	struct zm_rbac_sources src = {s ? s->cfg : NULL, v, zt_authz_view(sets, v), NULL};
	int err;

	err = zm_rbac_compile_fastpath(&src, zt_g->opts.node, rules, n);
	zt_authz_put(sets);
	zt_state_put(s);
	if (*n)
		qsort(*rules, *n, sizeof(**rules), zt_fp_rule_cmp);
	return err;
}

/* Keep the rules of v that are also in the live set: both policy versions deny those. */
static size_t zt_fp_intersect(struct zm_dp_policy_rule *v, size_t n)
{
	size_t i, k = 0;

	for (i = 0; i < n && zt_fp_n_live; i++)
		if (bsearch(&v[i], zt_fp_live, zt_fp_n_live, sizeof(*v), zt_fp_rule_cmp))
			v[k++] = v[i];
	return k;
}

/*
 * Put v in force. When the kernel refuses it, the old set may drop what the new policies
 * allow, so fall back to the rules both versions deny, then to none. 0 when some set went in.
 */
static int zt_fp_replace(struct zm_dp *dp, struct zm_dp_policy_rule *v, size_t *n)
{
	int err = zm_dp_policy_replace(dp, v, *n);

	if (!err)
		return 0;
	obs_log(OBS_WARN, "authz",
		"kernel fast path: replacing the rule set (%zu rules) failed: %s", *n, dp->err);
	*n = zt_fp_intersect(v, *n);
	err = zm_dp_policy_replace(dp, v, *n);
	if (err) {
		*n = 0;
		err = zm_dp_policy_replace(dp, NULL, 0);
	}
	if (err)
		obs_log(OBS_WARN, "authz",
			"kernel fast path: clearing the rule set failed too: %s; "
			"retrying",
			dp->err);
	else
		obs_log(OBS_WARN, "authz",
			"kernel fast path: kept only the %zu rules the old and the new "
			"policies both deny",
			*n);
	return err;
}

static size_t zt_fp_count_policies(const struct zm_dp_policy_rule *v, size_t n)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++)
		k += !i || strcmp(v[i].policy, v[i - 1].policy);
	return k;
}

/*
 * Bring the kernel rule set in line with the policies: after a change, when the datapath
 * appears, and when someone else replaced the set (a fresh datapath load, a manual `zmeshctl
 * policy set`): ztunnel owns it, and only its own compilation is known to be sound.
 */
static void zt_fp_sync(void)
{
	struct zm_dp_policy_rule *v = NULL;
	__u64 serial = 0;
	struct zm_dp dp;
	size_t n = 0;
	int err;

	if (zt_fp_off)
		return;
	zm_dp_init(&dp, zt_g->opts.pin_dir);
	if (zm_dp_map_walk(&dp, ZM_STR(ZM_MAP_POL_GEN), zt_fp_gen_cb, &serial, NULL)) {
		if (!zt_fp_waiting)
			obs_log(OBS_INFO, "authz",
				"kernel fast path: %s; userspace enforces every policy "
				"until the datapath is loaded",
				dp.err);
		zt_fp_waiting = true;
		zt_fp_serial = 0;
		goto out;
	}
	if (!zt_fp_dirty && serial == zt_fp_serial)
		goto out;
	if (!zt_fp_dirty && zt_fp_serial)
		obs_log(OBS_WARN, "authz",
			"kernel fast path: the rule set was replaced outside ztunnel "
			"(serial %llu, ours %llu): restoring it",
			(unsigned long long)serial, (unsigned long long)zt_fp_serial);
	zt_fp_waiting = false;
	zt_fp_dirty = false;
	err = zt_fp_compile(&v, &n);
	if (err == -E2BIG)
		obs_log(OBS_WARN, "authz",
			"kernel fast path: the policies need more than %u rules; the "
			"first %zu go to the kernel, userspace enforces the rest",
			ZM_MAX_POL_RULES, n);
	else if (err)
		obs_log(OBS_WARN, "authz", "kernel fast path: compiling failed: %s; clearing it",
			strerror(-err));
	if (zt_fp_replace(&dp, v, &n)) {
		zt_fp_dirty = true;
		goto out;
	}
	free(zt_fp_live);
	zt_fp_live = v;
	zt_fp_n_live = n;
	v = NULL;
	zm_dp_map_walk(&dp, ZM_STR(ZM_MAP_POL_GEN), zt_fp_gen_cb, &zt_fp_serial, NULL);
	obs_log(OBS_INFO, "authz", "kernel fast path: %zu drop rules from %zu policies for node %s",
		zt_fp_n_live, zt_fp_count_policies(zt_fp_live, zt_fp_n_live), zt_g->opts.node);
out:
	free(v);
	zm_dp_close(&dp);
}

static void zt_authz_metrics_init(void)
{
	static const char *const labels[] = {"path", NULL};
	static const char *const indexed[] = {"indexed"}, *const walked[] = {"walked"};
	struct obs_family *f;

	f = obs_family_new(
	    obs_metrics(), OBS_COUNTER, "zmesh_authz_decisions_total",
	    "L4 authorization decisions by how the destination's policies were found "
	    "(path: indexed, precomputed at the last policy or config change; walked, "
	    "every policy asked, until the index catches up with a change)",
	    labels, NULL, 0);
	zt_authz_m_indexed = f ? obs_series_get(f, indexed) : NULL;
	zt_authz_m_walked = f ? obs_series_get(f, walked) : NULL;
}

int zt_authz_init(char *err, size_t len)
{
	struct zt_authz_sets *s = zt_authz_load(zt_authz_st, err, len);
	size_t i, n = 0;

	if (!s)
		return -EINVAL;
	zt_authz_metrics_init();
	for (i = 0; i < s->n; i++)
		n += s->v[i]->set->n_policies;
	if (zt_authz_n_files)
		obs_log(OBS_INFO, "authz", "%zu policies from %zu --policy files", n, s->n);
	zt_authz_swap(s);
	zt_authz_index_sync();
	zt_fp_sync();
	return 0;
}

int zt_authz_check(const struct zm_config *cfg, const char *node)
{
	const struct zm_rbac_set *v[ZT_AUTHZ_MAX_FILES];
	struct zm_rbac_set *sets[ZT_AUTHZ_MAX_FILES] = {0};
	struct zm_rbac_sources src = {cfg, v, 0, NULL};
	struct zm_dp_policy_rule *rules;
	char err[8192];
	size_t i, n;
	int bad = 0, r;

	for (i = 0; i < zt_authz_n_files; i++) {
		if (zm_rbac_load_file(zt_authz_files[i], &sets[i], err, sizeof(err))) {
			fprintf(stderr, "%s\n", err);
			bad = 1;
			continue;
		}
		v[src.n_sets++] = sets[i];
		printf("%s: ok (%zu policies)\n", zt_authz_files[i], sets[i]->n_policies);
	}
	if (!bad && node && *node) {
		r = zm_rbac_compile_fastpath(&src, node, &rules, &n);
		if (r && r != -E2BIG) {
			fprintf(stderr, "fast path for node %s: %s\n", node, strerror(-r));
			bad = 1;
		} else {
			printf("fast path: %zu kernel drop rules for node %s%s\n", n, node,
			       r ? " (truncated: more than the kernel holds)" : "");
			free(rules);
		}
	}
	for (i = 0; i < zt_authz_n_files; i++)
		zm_rbac_set_free(sets[i]);
	return bad;
}

static bool zt_authz_files_changed(void)
{
	struct stat st;
	size_t i;

	for (i = 0; i < zt_authz_n_files; i++) {
		if (stat(zt_authz_files[i], &st))
			memset(&st, 0, sizeof(st));
		if (st.st_mtim.tv_sec != zt_authz_st[i].st_mtim.tv_sec ||
		    st.st_mtim.tv_nsec != zt_authz_st[i].st_mtim.tv_nsec ||
		    st.st_size != zt_authz_st[i].st_size || st.st_ino != zt_authz_st[i].st_ino)
			return true;
	}
	return false;
}

void zt_authz_reload(bool force, bool config_changed)
{
	struct stat st[ZT_AUTHZ_MAX_FILES];
	struct zt_authz_sets *s;
	char err[4096];

	if (zt_authz_n_files && (force || zt_authz_files_changed())) {
		s = zt_authz_load(st, err, sizeof(err));
		/* Do not retry the same broken file every poll: remember what we saw. */
		memcpy(zt_authz_st, st, sizeof(st));
		if (!s) {
			obs_log(OBS_WARN, "authz",
				"reloading policy files failed, keeping the previous "
				"policies:\n%s",
				err);
		} else {
			obs_log(OBS_INFO, "authz", "policy files reloaded");
			zt_authz_swap(s);
			zt_fp_dirty = true;
			config_changed = false; /* the swap bumped the generation already */
		}
	}
	if (config_changed)
		atomic_fetch_add(&zt_authz_gen, 1);
	/* Every poll: snapshots also come from the xDS, API and CNI threads. */
	zt_authz_index_sync();
	zt_fp_dirty |= config_changed;
	zt_fp_sync();
}

/* Point c at its series with response_flags="DENY": the close is counted there. */
static void zt_authz_deny_series(struct zt_conn *c, const struct zt_snap *s,
				 const struct zm_cfg_workload *dst)
{
	const struct zm_cfg_workload *src = zm_config_workload_by_ip(s->cfg, NULL, &c->info.src);

	zt_conn_series_flag(c, src, dst, !strcmp(c->info.dir, "inbound"), "DENY");
}

/* Evaluate against snapshot s; 0 allow, -EACCES deny (why filled), -ENOENT no workload. */
/*
 * Decide c towards workload dst at dst_addr:dport with peer identity peer_id (NULL or "":
 * plaintext). -ENOENT when dst is not a workload of this node.
 */
static int zt_authz_eval_to(struct zt_conn *c, const struct zt_snap *s,
			    const struct zm_cfg_workload *dst, const struct zm_addr *dst_addr,
			    __u16 dport, const char *peer_id, char *why, size_t len)
{
	const struct zm_rbac_set *v[ZT_AUTHZ_MAX_FILES + 1];
	struct zm_rbac_conn rc = {c->info.src, *dst_addr, dport, peer_id, dst};
	struct zm_rbac_sources src = {s->cfg, v, 0, NULL};
	struct zt_authz_sets *sets;
	struct zt_authz_index *ix;
	struct zm_rbac_result r;
	char a[ZM_ADDR_STRLEN];
	struct obs_rec rec;

	if (!dst)
		return -ENOENT;
	sets = zt_authz_get_indexed(s, &ix);
	src.n_sets = zt_authz_view(sets, v);
	src.index = ix ? ix->idx : NULL;
	zm_rbac_evaluate(&src, &rc, &r);
	obs_counter_add(ix ? zt_authz_m_indexed : zt_authz_m_walked, 1);
	zt_authz_index_put(ix);
	zt_authz_put(sets);
	if (r.dry_run_differs) {
		obs_rec_begin(&rec, OBS_INFO, "authz", "dry-run");
		obs_rec_str(&rec, "src.addr",
			    zm_addr_port_format(&c->info.src, c->info.sport, a, sizeof(a)));
		obs_rec_str(&rec, "src.identity", peer_id && *peer_id ? peer_id : "-");
		obs_rec_str(&rec, "dst.addr", zm_addr_port_format(dst_addr, dport, a, sizeof(a)));
		obs_rec_strf(&rec, "dst.workload", "%s/%s", dst->namespace, dst->name);
		obs_rec_str(&rec, "enforced", r.allow ? "allow" : "deny");
		obs_rec_strf(&rec, "reason", "%s; %s", r.reason, r.dry_run);
		obs_rec_emit(&rec);
	}
	if (r.allow)
		return 0;
	snprintf(why, len, "%s", r.reason);
	zt_authz_deny_series(c, s, dst);
	return -EACCES;
}

enum zm_mtls_mode zt_authz_mtls_mode(const struct zt_snap *s, const struct zm_cfg_workload *wl,
				     __u16 port, char *by, size_t len)
{
	const struct zm_rbac_set *v[ZT_AUTHZ_MAX_FILES + 1];
	struct zm_rbac_sources src = {s ? s->cfg : NULL, v, 0, NULL};
	const struct zm_rbac_policy *p;
	struct zt_authz_sets *sets;
	struct zt_authz_index *ix;
	enum zm_mtls_mode m;

	sets = zt_authz_get_indexed(s, &ix);
	src.n_sets = zt_authz_view(sets, v);
	src.index = ix ? ix->idx : NULL;
	m = zm_rbac_mtls_mode(&src, wl, port, &p, NULL);
	if (by && len)
		snprintf(by, len, "%s", p ? p->key : "");
	/* p points into the sets: use it before letting them go. */
	zt_authz_index_put(ix);
	zt_authz_put(sets);
	return m;
}

static int zt_authz_eval(struct zt_conn *c, const struct zt_snap *s, const char *peer_id, char *why,
			 size_t len)
{
	/* A same-node connection was dialled by us: its real destination is the upstream. */
	bool local = c->info.via && !strcmp(c->info.via, "local");
	const struct zm_addr *a = local ? &c->info.up : &c->info.dst;
	__u16 port = local ? c->info.up_port : c->info.dport;

	return zt_authz_eval_to(c, s, zt_route_local_workload(s, a), a, port, peer_id, why, len);
}

int zt_authz_local(struct zt_conn *c, const struct zt_snap *s, const struct zm_cfg_workload *dst,
		   const struct zm_addr *dst_addr, __u16 dport, char *why, size_t len)
{
	int r = zt_authz_eval_to(c, s, dst, dst_addr, dport, c->info.src_id, why, len);

	return r == -EACCES ? r : 0;
}

int zt_authz_inbound(struct zt_conn *c, const char *peer_id, char *why, size_t len)
{
	struct zt_snap *s = zt_state_get();
	int r = s ? zt_authz_eval(c, s, peer_id, why, len) : 0;

	zt_state_put(s);
	/* No local workload is the caller's 503/refusal, not a policy verdict. */
	return r == -EACCES ? r : 0;
}

uint64_t zt_authz_generation(void)
{
	return atomic_load(&zt_authz_gen) + zt_state_generation();
}

void zt_authz_recheck(struct zt_worker *w)
{
	uint_fast64_t gen = zt_authz_generation();
	struct zm_link *pos, *tmp;
	struct zt_snap *s;
	char why[ZM_RBAC_REASON_LEN];

	if (w->id < 0 || w->id >= ZT_MAX_WORKERS || zt_authz_seen[w->id] == gen)
		return;
	zt_authz_seen[w->id] = gen;
	s = zt_state_get();
	if (!s)
		return;
	zm_list_each_safe(pos, tmp, &w->conns)
	{
		struct zt_conn *c = zm_container_of(pos, struct zt_conn, link);
		bool mtls;

		if (c->state == ZT_CS_DONE || !c->info.dir ||
		    (strcmp(c->info.dir, "inbound") && strcmp(c->info.dir, "inbound_plain") &&
		     !(c->info.via && !strcmp(c->info.via, "local"))))
			continue;
		/* Inbound over HBONE and same-node connections know their peer's identity. */
		mtls = strcmp(c->info.dir, "inbound_plain");
		if (zt_authz_eval(c, s, mtls ? c->info.src_id : NULL, why, sizeof(why)) != -EACCES)
			continue;
		zt_conn_finish(c, ZT_OUT_DENIED, "policy changed: %s", why);
	}
	zt_state_put(s);
}
