/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zmesh-cni, the binary: the chained CNI plugin a container runtime runs (CNI_COMMAND set,
 * plugin.c) and the installer the zmesh-node DaemonSet runs to chain it into the node's CNI
 * config (install.c). The pure parsing lives in userspace/lib/cni; this side does the I/O:
 * stdin and stdout, the pod's network namespace, /proc, the ztunnel socket, the config files.
 */
#ifndef ZMESH_CNI_BIN_H
#define ZMESH_CNI_BIN_H

#include <net/if.h>
#include <stddef.h>

struct json_object;

/* plugin.c: run the CNI command of the environment. Returns the exit status. */
int cni_plugin_main(void);

/* install.c: `zmesh-cni install|uninstall [OPTIONS]`. Returns the exit status. */
int cni_install_main(int argc, char **argv);

/*
 * pod.c: the host-side end (in the calling thread's namespace) of the veth whose other end is
 * ifname in the network namespace netns. 0, or -errno with a sentence in err.
 */
int cni_host_veth(const char *netns, const char *ifname, char out[IF_NAMESIZE], char *err,
		  size_t len);
/*
 * The cgroup v2 path ("/kubepods/...") of a process inside netns, "" when none runs there
 * yet (the runtime may call ADD before starting the sandbox) or it sits in the root cgroup.
 */
void cni_pod_cgroup(const char *netns, char *out, size_t len);

/*
 * agent.c: send one request to ztunnel's socket and read its reply. Waits up to wait_s
 * seconds for the socket to appear and accept (ztunnel starting). Returns 0 with *reply set
 * (release with json_object_put), -EAGAIN when no ztunnel answered in time, other -errno on
 * a broken exchange; a sentence in err either way.
 */
int cni_agent_call(const char *path, int wait_s, struct json_object *req,
		   struct json_object **reply, char *err, size_t len);

#endif
