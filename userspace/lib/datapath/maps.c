// SPDX-License-Identifier: Apache-2.0
/*
 * Read access to the pinned maps for zmeshctl and the daemons: a generic walk that hands
 * every key with its value(s) to a callback (per-CPU maps give one value per possible CPU),
 * the summed reason counters, and the names printed for reasons and map types. Readers take
 * no lock: a map can change during a walk, which is acceptable for a snapshot.
 */
#include "internal.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool dp_map_percpu(__u32 type)
{
	return type == BPF_MAP_TYPE_PERCPU_ARRAY || type == BPF_MAP_TYPE_PERCPU_HASH ||
	       type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

static int dp_map_info_read(struct zm_dp *dp, int fd, const char *name, struct zm_dp_map_info *mi)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	int ncpu;

	if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0)
		return dp_errf(dp, -errno, "reading map %s info failed: %s", name, strerror(errno));
	memset(mi, 0, sizeof(*mi));
	mi->type = info.type;
	mi->key_size = info.key_size;
	mi->value_size = info.value_size;
	mi->max_entries = info.max_entries;
	mi->id = info.id;
	mi->n_values = 1;
	if (dp_map_percpu(info.type)) {
		ncpu = libbpf_num_possible_cpus();
		if (ncpu < 0)
			return dp_errf(dp, ncpu, "counting possible CPUs failed");
		mi->n_values = (unsigned int)ncpu;
	}
	return 0;
}

int zm_dp_map_walk(struct zm_dp *dp, const char *name, zm_dp_map_cb cb, void *ctx,
		   struct zm_dp_map_info *mi)
{
	struct zm_dp_map_info local;
	void *key = NULL, *next = NULL, *vals = NULL;
	bool first = true;
	size_t vsz;
	int fd, err;

	mi = mi ?: &local;
	if (strchr(name, '/') || name[0] == '.')
		return dp_errf(dp, -EINVAL, "%s is not a map name", name);
	/* zm_meta itself is how the version is known: always readable. */
	err = strcmp(name, ZM_STR(ZM_MAP_META)) ? dp_abi_check(dp, true) : 0;
	if (err)
		return err;
	fd = dp_map_open(dp, name, 0, 0);
	if (fd < 0)
		return fd;
	err = dp_map_info_read(dp, fd, name, mi);
	if (err)
		goto out;
	vsz = mi->n_values > 1 ? (((size_t)mi->value_size + 7) & ~(size_t)7) * mi->n_values
			       : mi->value_size;
	key = calloc(1, mi->key_size ?: 1);
	next = calloc(1, mi->key_size ?: 1);
	vals = calloc(1, vsz ?: 1);
	if (!key || !next || !vals) {
		err = dp_errf(dp, -ENOMEM, "out of memory walking %s", name);
		goto out;
	}
	while (!bpf_map_get_next_key(fd, first ? NULL : key, next)) {
		first = false;
		memcpy(key, next, mi->key_size);
		/* Gone between get_next_key and lookup (LRU eviction, unenroll): skip it. */
		if (bpf_map_lookup_elem(fd, key, vals))
			continue;
		err = cb(key, vals, mi, ctx);
		if (err < 0)
			goto out;
	}
	err = 0;
out:
	free(vals);
	free(next);
	free(key);
	close(fd);
	return err;
}

struct dp_stats_ctx {
	__u64 *counters;
};

static int dp_stats_cb(const void *key, const void *values, const struct zm_dp_map_info *mi,
		       void *ctx)
{
	struct dp_stats_ctx *c = ctx;
	__u32 k = *(const __u32 *)key;
	const __u64 *v = values;

	if (k >= ZM_REASON_MAX || mi->value_size != sizeof(__u64))
		return 0;
	for (unsigned int i = 0; i < mi->n_values; i++)
		c->counters[k] += v[i];
	return 0;
}

int zm_dp_stats_read(struct zm_dp *dp, __u64 counters[ZM_REASON_MAX])
{
	struct dp_stats_ctx c = {counters};

	memset(counters, 0, sizeof(__u64) * ZM_REASON_MAX);
	return zm_dp_map_walk(dp, ZM_STR(ZM_MAP_STATS), dp_stats_cb, &c, NULL);
}

#define ZM_REASON_STR(name, str, help)	[ZM_REASON_##name] = str,
#define ZM_REASON_HELP(name, str, help) [ZM_REASON_##name] = help,
static const char *const dp_reason_names[ZM_REASON_MAX] = {ZM_REASONS(ZM_REASON_STR)};
static const char *const dp_reason_helps[ZM_REASON_MAX] = {ZM_REASONS(ZM_REASON_HELP)};

const char *zm_dp_reason_name(unsigned int reason)
{
	return reason < ZM_REASON_MAX ? dp_reason_names[reason] : "?";
}

const char *zm_dp_reason_help(unsigned int reason)
{
	return reason < ZM_REASON_MAX ? dp_reason_helps[reason] : "?";
}

const char *zm_dp_map_type_name(__u32 type)
{
	return libbpf_bpf_map_type_str((enum bpf_map_type)type) ?: "unknown";
}

static int dp_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level;
	return vfprintf(stderr, fmt, ap);
}

static int dp_libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level;
	(void)fmt;
	(void)ap;
	return 0;
}

void zm_dp_set_debug(bool on)
{
	libbpf_set_print(on ? dp_libbpf_print : dp_libbpf_quiet);
}
