// SPDX-License-Identifier: Apache-2.0
/*
 * BPF tier for zm_sockops (bpf/sockops.bpf.c) and for the map-sharing contract of
 * bpf/lib/maps.h. sockops has no BPF_PROG_TEST_RUN, so this test drives real TCP over
 * loopback: it enters a private network and mount namespace, moves itself into a cgroup v2
 * directory of its own (under /sys/fs/cgroup/unified), attaches zm_sockops there through a
 * BPF link, enrolls 127.0.0.1, and checks zm_conns for an IPv4 loopback connection
 * (recorded, then TCP_CLOSE after close) and an IPv6 one (::1, not enrolled: not recorded).
 *
 * Pinning: a private bpffs is mounted in the private mount namespace; zm_capture and
 * zm_sockops are loaded with it as pin_root_path and must end up on the very same maps.
 * Cleanup: the link and maps die with their fds, the mount with the namespace; the cgroup
 * and the mount point directory are removed before exit (the process moves back first).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "capture.skel.h"
#include "sockops.skel.h"
#include "common/addr.h"
#include "zmesh/abi.h"
#include "../lib/lo_up.h"
#include "../lib/tap.h"

#define CGROUP_ROOT	      "/sys/fs/cgroup/unified"
#define TCP_CLOSE_STATE	      7
#define TCP_ESTABLISHED_STATE 1

static char pin_dir[] = "/tmp/zmh-bpf-XXXXXX";
static char cg_dir[640], cg_orig[640];

static int netns_enter(void)
{
	if (unshare(CLONE_NEWNET | CLONE_NEWNS))
		return -errno;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return -errno;
	return test_lo_up();
}

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, s, strlen(s)) < 0)
		err = -errno;
	close(fd);
	return err;
}

/* Our current cgroup v2 path (the "0::" line), so we can move back before rmdir. */
static int cgroup_self(char *out, size_t len)
{
	char line[600];
	FILE *f = fopen("/proc/self/cgroup", "re");
	int err = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3) == 0) {
			line[strcspn(line, "\n")] = 0;
			if ((size_t)snprintf(out, len, "%s%s", CGROUP_ROOT, line + 3) >= len)
				err = -ENAMETOOLONG;
			else
				err = 0;
		}
	}
	fclose(f);
	return err;
}

static int cgroup_enter(void)
{
	char pid[32], path[700];
	int err;

	err = cgroup_self(cg_orig, sizeof(cg_orig));
	if (err)
		return err;
	snprintf(cg_dir, sizeof(cg_dir), CGROUP_ROOT "/zmh-sockops-%d", getpid());
	if (mkdir(cg_dir, 0755))
		return -errno;
	snprintf(pid, sizeof(pid), "%d", getpid());
	snprintf(path, sizeof(path), "%s/cgroup.procs", cg_dir);
	return write_str(path, pid);
}

static void cgroup_leave(void)
{
	char path[700], pid[32];

	if (!cg_dir[0])
		return;
	snprintf(pid, sizeof(pid), "%d", getpid());
	snprintf(path, sizeof(path), "%s/cgroup.procs", cg_orig);
	if (write_str(path, pid))
		write_str(CGROUP_ROOT "/cgroup.procs", pid);
	rmdir(cg_dir);
}

static __u32 map_id(struct bpf_map *map)
{
	struct bpf_map_info info = {0};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(bpf_map__fd(map), &info, &len))
		return 0;
	return info.id;
}

/* Both objects opened with the same pin_root_path must share every map. */
static void pins_check(struct capture_bpf *cap, struct sockops_bpf *so)
{
	struct bpf_map *pairs[][2] = {
	    {cap->maps.zm_meta, so->maps.zm_meta},
	    {cap->maps.zm_workloads, so->maps.zm_workloads},
	    {cap->maps.zm_wl_info, so->maps.zm_wl_info},
	    {cap->maps.zm_bypass, so->maps.zm_bypass},
	    {cap->maps.zm_stats, so->maps.zm_stats},
	    {cap->maps.zm_conns, so->maps.zm_conns},
	};
	char path[300];

	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		const char *name = bpf_map__name(pairs[i][0]);
		__u32 a = map_id(pairs[i][0]), b = map_id(pairs[i][1]);

		snprintf(path, sizeof(path), "%s/%s", pin_dir, name);
		ok(a && a == b, "%s shared by zm_capture and zm_sockops (ids %u, %u)", name, a, b);
		ok(access(path, F_OK) == 0, "%s pinned by name", name);
	}
}

/* A loopback connection: returns the client socket, the server's accepted one in *afd. */
static int tcp_pair(int v6, int *lfd, int *afd, unsigned int *cport, unsigned int *sport)
{
	struct sockaddr_storage ss = {0};
	socklen_t len;
	int cfd;

	ss.ss_family = v6 ? AF_INET6 : AF_INET;
	if (v6)
		((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
	else
		((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	len = v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	*lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*lfd < 0 || cfd < 0 || bind(*lfd, (struct sockaddr *)&ss, len) || listen(*lfd, 1) ||
	    getsockname(*lfd, (struct sockaddr *)&ss, &len) ||
	    connect(cfd, (struct sockaddr *)&ss, len))
		return -1;
	*afd = accept(*lfd, NULL, NULL);
	*sport = ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
			  : ((struct sockaddr_in *)&ss)->sin_port);
	len = sizeof(ss);
	if (*afd < 0 || getsockname(cfd, (struct sockaddr *)&ss, &len))
		return -1;
	*cport = ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
			  : ((struct sockaddr_in *)&ss)->sin_port);
	return cfd;
}

static int conn_get(struct sockops_bpf *so, const char *addr, unsigned int lport,
		    unsigned int rport, struct zm_conn_stats *cs)
{
	struct zm_flow flow = {0};

	zm_addr_parse(addr, &flow.local);
	zm_addr_parse(addr, &flow.remote);
	flow.local_port = htons(lport);
	flow.remote_port = htons(rport);
	return bpf_map_lookup_elem(bpf_map__fd(so->maps.zm_conns), &flow, cs) ? -errno : 0;
}

static void traffic_check(struct sockops_bpf *so)
{
	struct zm_workload wl = {.ifindex = 0, .flags = ZM_WL_F_CAPTURE};
	struct zm_conn_stats cs = {0};
	unsigned int cport, sport;
	struct zm_addr lo4;
	char buf[65536] = {0};
	int lfd, afd, cfd, i;
	ssize_t got = 0;

	zm_addr_parse("127.0.0.1", &lo4);
	if (!ok(bpf_map_update_elem(bpf_map__fd(so->maps.zm_workloads), &lo4, &wl, BPF_ANY) == 0,
		"enroll 127.0.0.1"))
		return;

	cfd = tcp_pair(0, &lfd, &afd, &cport, &sport);
	if (!ok(cfd >= 0, "IPv4 loopback connection"))
		return;
	ok(write(cfd, buf, sizeof(buf)) == sizeof(buf), "client sends 64 KiB");
	while (got < (ssize_t)sizeof(buf)) {
		ssize_t n = read(afd, buf, sizeof(buf));

		if (n <= 0)
			break;
		got += n;
	}
	usleep(20000); /* let the last ACKs arrive */
	ok(conn_get(so, "127.0.0.1", cport, sport, &cs) == 0, "client flow recorded");
	is_int(cs.state, TCP_ESTABLISHED_STATE, "client flow state ESTABLISHED");
	ok(cs.bytes_acked >= sizeof(buf), "bytes_acked %llu >= 64 KiB",
	   (unsigned long long)cs.bytes_acked);
	ok(cs.srtt_us > 0 && cs.snd_cwnd > 0, "srtt %u us, cwnd %u", cs.srtt_us, cs.snd_cwnd);
	ok(cs.first_seen_ns && cs.last_seen_ns >= cs.first_seen_ns, "timestamps");
	ok(conn_get(so, "127.0.0.1", sport, cport, &cs) == 0, "server flow recorded");

	close(cfd);
	close(afd);
	close(lfd);
	for (i = 0; i < 50; i++) {
		if (conn_get(so, "127.0.0.1", cport, sport, &cs) == 0 &&
		    cs.state == TCP_CLOSE_STATE)
			break;
		usleep(20000);
	}
	is_int(cs.state, TCP_CLOSE_STATE, "client flow kept after close with state TCP_CLOSE");

	cfd = tcp_pair(1, &lfd, &afd, &cport, &sport);
	if (ok(cfd >= 0, "IPv6 loopback connection (::1 not enrolled)")) {
		usleep(20000);
		is_int(conn_get(so, "::1", cport, sport, &cs), -ENOENT,
		       "not-enrolled flow not recorded");
		close(cfd);
		close(afd);
		close(lfd);
	}
}

int main(void)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir);
	struct capture_bpf *cap = NULL;
	struct sockops_bpf *so = NULL;
	struct bpf_link *link = NULL;
	bool mounted = false;
	int err, cgfd = -1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (geteuid() != 0)
		tap_bail("test_sockops needs root (namespaces, bpffs, cgroups, BPF)");
	err = netns_enter();
	if (err)
		tap_bail("private network/mount namespace: %s", strerror(-err));
	if (!mkdtemp(pin_dir))
		tap_bail("mkdtemp: %s", strerror(errno));
	if (mount("bpf", pin_dir, "bpf", 0, NULL)) {
		err = -errno;
		rmdir(pin_dir);
		tap_bail("mount bpffs on %s: %s", pin_dir, strerror(-err));
	}
	mounted = true;
	libbpf_set_strict_mode(LIBBPF_STRICT_ALL);

	cap = capture_bpf__open_opts(&opts);
	ok(cap && capture_bpf__load(cap) == 0, "zm_capture loads, creating the pins");
	so = sockops_bpf__open_opts(&opts);
	if (!ok(so && sockops_bpf__load(so) == 0, "zm_sockops passes the verifier, reusing pins"))
		goto out;
	if (cap)
		pins_check(cap, so);

	err = cgroup_enter();
	if (!ok(err == 0, "own cgroup %s: %s", cg_dir, strerror(-err)))
		goto out;
	cgfd = open(cg_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	link = cgfd >= 0 ? bpf_program__attach_cgroup(so->progs.zm_sockops, cgfd) : NULL;
	if (!ok(link, "zm_sockops attached to %s", cg_dir))
		goto out;
	traffic_check(so);
out:
	bpf_link__destroy(link);
	if (cgfd >= 0)
		close(cgfd);
	cgroup_leave();
	sockops_bpf__destroy(so);
	capture_bpf__destroy(cap);
	if (mounted && umount2(pin_dir, MNT_DETACH) == 0)
		rmdir(pin_dir);
	return tap_done();
}
