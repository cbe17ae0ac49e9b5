// SPDX-License-Identifier: Apache-2.0
/*
 * Load, reload and unload of the datapath (the capture tc program and the sockops program)
 * under the pin directory. The zm_meta map decides: absent, fresh install; our ZM_ABI_VERSION,
 * reuse the pinned maps (libbpf's pin-by-name reuse, so workloads and counters survive) and
 * swap the programs in place; anything else, refuse before touching a single pin. Programs are
 * pinned through a temporary name and rename(2) so a reader never sees a missing pin.
 */
#include "internal.h"

#include "capture.skel.h"
#include "policy_xdp.skel.h"
#include "sockops.skel.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Rodata settings of the capture program, written between open and load. */
static void dp_capture_configure(struct capture_bpf *skel, const struct zm_dp_load_opts *opts)
{
	skel->rodata->zm_cfg_fail_open = opts->fail_open;
	/* The policy route (route.c) matches this mark: keep both from ports.h. */
	skel->rodata->zm_cfg_mark = ZM_MARK;
	skel->rodata->zm_cfg_mark_mask = ZM_MARK_MASK;
}

/* Pin fd as name atomically: pin under a temporary name, then rename over the old pin. */
static int dp_pin_replace(struct zm_dp *dp, int fd, const char *name)
{
	char path[ZM_DP_PATH_MAX + 32], tmp[ZM_DP_PATH_MAX + 48];
	int err;

	err = dp_pin_path(dp, name, path, sizeof(path));
	if (err)
		return err;
	/* bpffs refuses names with a dot. */
	snprintf(tmp, sizeof(tmp), "%s_new", path);
	unlink(tmp);
	if (bpf_obj_pin(fd, tmp) < 0)
		return dp_errf(dp, -errno, "pinning %s failed: %s", tmp, strerror(errno));
	if (rename(tmp, path) < 0) {
		err = -errno;
		unlink(tmp);
		return dp_errf(dp, err, "renaming %s to %s failed: %s", tmp, path, strerror(-err));
	}
	return 0;
}

static int dp_meta_write(struct zm_dp *dp)
{
	struct zm_meta meta = {.abi_version = ZM_ABI_VERSION, .loaded_at = (__u64)time(NULL)};
	__u32 key = 0;
	int fd, err = 0;

	fd = dp_map_open(dp, ZM_STR(ZM_MAP_META), sizeof(key), sizeof(meta));
	if (fd < 0)
		return fd;
	if (bpf_map_update_elem(fd, &key, &meta, BPF_ANY) < 0)
		err = dp_errf(dp, -errno, "writing %s failed: %s", ZM_STR(ZM_MAP_META),
			      strerror(errno));
	close(fd);
	return err;
}

/* Move every pinned sockops cgroup link to prog_fd (bpf_link_update is atomic). */
static int dp_links_update(struct zm_dp *dp, int prog_fd, unsigned int *n)
{
	char path[ZM_DP_PATH_MAX + 300];
	struct dirent *de;
	DIR *d;
	int err = 0, fd;

	d = opendir(dp->pin_dir);
	if (!d)
		return dp_errf(dp, -errno, "opendir(%s) failed: %s", dp->pin_dir, strerror(errno));
	while ((de = readdir(d)) && !err) {
		if (strncmp(de->d_name, "link_sockops_", 13))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dp->pin_dir, de->d_name);
		fd = bpf_obj_get(path);
		if (fd < 0 || bpf_link_update(fd, prog_fd, NULL) < 0)
			err = dp_errf(dp, -errno,
				      "moving sockops link %s to the new program failed: "
				      "%s",
				      path, strerror(errno));
		else
			(*n)++;
		if (fd >= 0)
			close(fd);
	}
	closedir(d);
	return err;
}

/* Attach (or atomically replace) our filter on every interface that has it and the uplinks. */
static int dp_tc_attach_all(struct zm_dp *dp, int prog_fd, const struct zm_dp_load_opts *opts,
			    unsigned int *n)
{
	static struct zm_dp_iface ifs[ZM_DP_MAX_IFACES];
	int cnt, err;

	cnt = dp_tc_scan(ifs, ZM_DP_MAX_IFACES);
	if (cnt < 0)
		return dp_errf(dp, cnt, "listing interfaces failed: %s", strerror(-cnt));
	for (int i = 0; i < cnt; i++) {
		err = dp_tc_attach(dp, ifs[i].ifindex, prog_fd);
		if (err)
			return err;
		(*n)++;
	}
	for (size_t i = 0; i < opts->n_uplinks; i++) {
		__u32 id;
		int ifindex = (int)if_nametoindex(opts->uplinks[i]);

		if (!dp_tc_query(ifindex, &id))
			continue; /* replaced above */
		err = dp_tc_attach(dp, ifindex, prog_fd);
		if (err)
			return err;
		(*n)++;
	}
	return 0;
}

/*
 * The XDP policy program: mode OFF detaches ours everywhere and drops its pin; otherwise load
 * it against the pinned maps, pin it, and attach (or replace) it on every interface that has
 * it and on the uplinks. Refuses an uplink held by another XDP program.
 */
static int dp_xdp_apply(struct zm_dp *dp, const struct zm_dp_load_opts *opts, unsigned int *n)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = dp->pin_dir);
	static struct zm_dp_iface ifs[ZM_DP_MAX_IFACES];
	char path[ZM_DP_PATH_MAX + 32];
	struct policy_xdp_bpf *skel;
	int cnt, err = 0, fd;

	cnt = dp_xdp_scan(ifs, ZM_DP_MAX_IFACES);
	if (cnt < 0)
		return dp_errf(dp, cnt, "listing interfaces failed: %s", strerror(-cnt));
	if (opts->xdp == ZM_DP_XDP_OFF) {
		for (int i = 0; i < cnt && !err; i++)
			err = dp_xdp_detach(dp, ifs[i].ifindex);
		if (!err && !dp_pin_path(dp, ZM_PIN_PROG_POLICY_XDP, path, sizeof(path)))
			unlink(path);
		return err;
	}
	skel = policy_xdp_bpf__open_opts(&oo);
	if (!skel)
		return dp_errf(dp, -errno, "opening the XDP policy program failed: %s",
			       strerror(errno));
	err = policy_xdp_bpf__load(skel);
	if (err) {
		err = dp_errf(dp, err,
			      "loading the XDP policy program failed: %s (run with -d for the "
			      "verifier log)",
			      strerror(-err));
		goto out;
	}
	fd = bpf_program__fd(skel->progs.zm_policy_xdp);
	err = dp_pin_replace(dp, fd, ZM_PIN_PROG_POLICY_XDP);
	for (int i = 0; i < cnt && !err; i++, (*n)++)
		err = dp_xdp_attach(dp, ifs[i].ifindex, fd, opts->xdp);
	for (size_t i = 0; i < opts->n_uplinks && !err; i++) {
		struct dp_xdp_state st;
		int ifindex = (int)if_nametoindex(opts->uplinks[i]);

		if (!dp_xdp_query(ifindex, &st) && st.ours == opts->xdp)
			continue; /* done above */
		err = dp_xdp_attach(dp, ifindex, fd, opts->xdp);
		(*n) += !err;
	}
out:
	policy_xdp_bpf__destroy(skel);
	return err;
}

/* Open both skeletons against the pin directory and load them (maps created or reused). */
static int dp_skel_load(struct zm_dp *dp, const struct zm_dp_load_opts *opts,
			struct capture_bpf **cap, struct sockops_bpf **sops)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = dp->pin_dir);
	int err;

	*cap = capture_bpf__open_opts(&oo);
	if (!*cap)
		return dp_errf(dp, -errno, "opening the capture program failed: %s",
			       strerror(errno));
	dp_capture_configure(*cap, opts);
	err = capture_bpf__load(*cap);
	if (err)
		return dp_errf(
		    dp, err,
		    "loading the capture program failed: %s (a pinned map "
		    "that libbpf cannot reuse means an incompatible datapath is pinned in "
		    "%s; run with -d for the verifier log)",
		    strerror(-err), dp->pin_dir);
	*sops = sockops_bpf__open_opts(&oo);
	if (!*sops)
		return dp_errf(dp, -errno, "opening the sockops program failed: %s",
			       strerror(errno));
	err = sockops_bpf__load(*sops);
	if (err)
		return dp_errf(dp, err,
			       "loading the sockops program failed: %s (run with -d for "
			       "the verifier log)",
			       strerror(-err));
	return 0;
}

static int dp_load_locked(struct zm_dp *dp, const struct zm_dp_load_opts *opts,
			  struct zm_dp_load_result *res, bool *fresh)
{
	struct capture_bpf *cap = NULL;
	struct sockops_bpf *sops = NULL;
	struct zm_meta meta;
	int err, fd, cap_fd, sops_fd;

	err = dp_meta_read(dp, &meta);
	if (err && err != -ENOENT)
		return err;
	*fresh = err == -ENOENT;
	if (!*fresh && meta.abi_version != ZM_ABI_VERSION && meta.abi_version != 0)
		return dp_errf(dp, -EPROTO,
			       "the datapath pinned in %s has ABI version %u but this "
			       "build has ABI version %u: refusing to reuse its maps; unload it "
			       "with the matching zmeshctl (or zmeshctl datapath unload) first",
			       dp->pin_dir, meta.abi_version, ZM_ABI_VERSION);
	res->reused = !*fresh;
	err = dp_skel_load(dp, opts, &cap, &sops);
	if (err)
		goto out;
	cap_fd = bpf_program__fd(cap->progs.zm_capture);
	sops_fd = bpf_program__fd(sops->progs.zm_sockops);
	if (*fresh || meta.abi_version == 0) {
		err = dp_meta_write(dp);
		if (err)
			goto out;
	}
	err = dp_pin_replace(dp, cap_fd, ZM_PIN_PROG_CAPTURE)
		  ?: dp_pin_replace(dp, sops_fd, ZM_PIN_PROG_SOCKOPS);
	if (err)
		goto out;
	fd = dp_map_open(dp, ZM_STR(ZM_MAP_BYPASS), sizeof(struct zm_addr), sizeof(__u32));
	if (fd < 0) {
		err = fd;
		goto out;
	}
	err = dp_node_addrs_sync(dp, fd, &res->n_node_addrs);
	close(fd);
	if (err)
		goto out;
	err = dp_route_add(dp) ?: dp_tc_attach_all(dp, cap_fd, opts, &res->n_attached) ?:
	      dp_links_update(dp, sops_fd, &res->n_links) ?: dp_xdp_apply(dp, opts, &res->n_xdp);
out:
	sockops_bpf__destroy(sops);
	capture_bpf__destroy(cap);
	return err;
}

int zm_dp_load(struct zm_dp *dp, const struct zm_dp_load_opts *opts, struct zm_dp_load_result *res)
{
	static const struct zm_dp_load_opts none;
	char saved[ZM_DP_ERR_LEN];
	bool fresh = false;
	int err;

	memset(res, 0, sizeof(*res));
	opts = opts ?: &none;
	/* Check the uplinks before anything changes: a typo must not leave half a datapath. */
	for (size_t i = 0; i < opts->n_uplinks; i++)
		if (!if_nametoindex(opts->uplinks[i]))
			return dp_errf(dp, -ENODEV,
				       "uplink %s does not exist in the node namespace",
				       opts->uplinks[i]);
	err = dp_lock(dp);
	if (err)
		return err;
	err = dp_load_locked(dp, opts, res, &fresh);
	if (err && fresh) {
		/* A failed fresh install leaves nothing behind; keep the first error. */
		memcpy(saved, dp->err, sizeof(saved));
		dp_teardown_locked(dp);
		memcpy(dp->err, saved, sizeof(saved));
	}
	dp_unlock(dp);
	return err;
}
