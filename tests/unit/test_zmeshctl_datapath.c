// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for the parts of the datapath library and its helpers that need no bpffs and no
 * namespaces: pin directory normalisation, refusal of a pin directory outside bpffs (with a
 * message naming the mount to make), reason and map type names, netns name resolution, and
 * the argument checks of enroll/unenroll that must fire before any system call.
 */
#include "common/netns.h"
#include "datapath/datapath.h"
#include "tap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_init(void)
{
	struct zm_dp dp;

	zm_dp_init(&dp, NULL);
	is_str(dp.pin_dir, ZM_PIN_DIR_DEFAULT, "default pin dir");
	zm_dp_init(&dp, "/tmp/x/zmesh//");
	is_str(dp.pin_dir, "/tmp/x/zmesh", "trailing slashes dropped");
	is_int(dp.lock_fd, -1, "no lock held after init");
	zm_dp_close(&dp);
}

static void test_not_bpffs(void)
{
	char dir[] = "/tmp/zmh-unit-XXXXXX";
	struct zm_dp dp;
	struct zm_dp_load_result res;
	int err;

	if (!mkdtemp(dir))
		tap_bail("mkdtemp failed");
	zm_dp_init(&dp, dir);
	err = zm_dp_load(&dp, NULL, &res);
	is_int(err, -ENODEV, "load refuses a pin dir outside bpffs");
	ok(strstr(dp.err, "not on a bpf filesystem") != NULL, "message says why: %s", dp.err);
	err = zm_dp_unload(&dp);
	is_int(err, -ENODEV, "unload refuses a pin dir outside bpffs");
	rmdir(dir);
}

static void test_names(void)
{
	is_str(zm_dp_reason_name(ZM_REASON_CAPTURED_OUTBOUND), "captured_outbound", "reason name");
	is_str(zm_dp_reason_name(ZM_REASON_MAX), "?", "unknown reason");
	ok(strlen(zm_dp_reason_help(ZM_REASON_DROP_NO_LISTENER)) > 0, "reason help");
	is_str(zm_dp_map_type_name(1), "hash", "map type name");
}

static void test_netns_resolve(void)
{
	char p[64];

	is_int(zm_netns_resolve("zmh-a", p, sizeof(p)), 0, "bare name resolves");
	is_str(p, "/var/run/netns/zmh-a", "bare name -> /var/run/netns");
	is_int(zm_netns_resolve("/proc/1/ns/net", p, sizeof(p)), 0, "path kept");
	is_str(p, "/proc/1/ns/net", "path unchanged");
	is_int(zm_netns_resolve("..", p, sizeof(p)), -EINVAL, "dot-dot refused");
	is_int(zm_netns_resolve("", p, sizeof(p)), -EINVAL, "empty refused");
}

static void test_enroll_args(void)
{
	struct zm_dp_enroll e = {0};
	struct zm_addr a = {.family = ZM_AF_INET};
	struct zm_dp dp;
	unsigned int n;

	zm_dp_init(&dp, "/tmp/zmh-unit-none");
	is_int(zm_dp_enroll(&dp, &e), -EINVAL, "enroll without addresses refused");
	e.n_addrs = 1;
	e.veth = "zmh-no-such-if0";
	is_int(zm_dp_enroll(&dp, &e), -ENODEV, "enroll on a missing veth refused");
	ok(strstr(dp.err, "zmh-no-such-if0") != NULL, "message names the veth: %s", dp.err);
	is_int(zm_dp_unenroll(&dp, &a, "x", &n), -EINVAL, "unenroll with both refused");
	is_int(zm_dp_unenroll(&dp, NULL, NULL, &n), -EINVAL, "unenroll with neither refused");
}

int main(void)
{
	zm_dp_set_debug(false);
	test_init();
	test_not_bpffs();
	test_names();
	test_netns_resolve();
	test_enroll_args();
	return tap_done();
}
