/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Enrollment requests from a local agent: the pods that the node's CNI plugin (zmesh-cni)
 * announced, as one more source of ztunnel's workload model beside the config file. A pod
 * record says what only the node knows (sandbox id, addresses the IPAM gave it, host-side
 * veth, cgroup); the model says whether that pod belongs in the mesh and with which identity
 * (here: a config-file workload with the pod's namespace and name, on this node or on none).
 *
 * How the sources meet: zt_state_load() builds every snapshot from the file and then calls
 * zt_agent_overlay(), which gives each such workload its pod's addresses and this node; the
 * one reconciler, zt_enroll_sync(), enrolls what the snapshot says, keyed by address. A pod
 * announced by the CNI and listed by another source (the file with addresses, later the
 * Kubernetes API or istiod) is therefore one workload and one enrollment, never two. A later
 * source only has to feed the same snapshot build.
 *
 * The records persist in RUN_DIR/pods.json (rewritten by rename on every change), so a
 * restarted ztunnel (a DaemonSet rolling update) enrolls the pods already running again;
 * records whose veth is gone are dropped when read back. Every pod the CNI announces gets the
 * capture filter on its veth, meshed or not (datapath.h: a non-mesh pod's connections to a
 * mesh pod on the same node are captured there, to 15006).
 */
#ifndef ZTUNNEL_AGENT_H
#define ZTUNNEL_AGENT_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/addr.h"

#define ZT_AGENT_MAX_PODS  1024 /* records per node (kubelet's default max is 110 pods) */
#define ZT_AGENT_MAX_ADDRS 16
#define ZT_AGENT_NAME_LEN  254
#define ZT_AGENT_CG_LEN	   512

struct zt;
struct zm_config;
struct zm_dp;

/* One pod the CNI plugin announced (ADD) and has not withdrawn (DEL). */
struct zt_agent_pod {
	char container_id[128];			  /* CNI_CONTAINERID: the sandbox */
	char namespace[ZT_AGENT_NAME_LEN];	  /* K8S_POD_NAMESPACE */
	char name[ZT_AGENT_NAME_LEN];		  /* K8S_POD_NAME */
	char uid[128];				  /* K8S_POD_UID, may be "" */
	char veth[IF_NAMESIZE];			  /* host-side interface, node namespace */
	char cgroup[ZT_AGENT_CG_LEN];		  /* cgroup v2 path below the root, "" unknown */
	struct zm_addr addrs[ZT_AGENT_MAX_ADDRS]; /* from the CNI result */
	size_t n_addrs;
};

/*
 * Read RUN_DIR/pods.json back (absent: no pods), dropping records whose veth no longer exists;
 * find the cgroup v2 root (--cgroup-root or the first cgroup2 mount). Call in the node
 * namespace before the first zt_state_load(). 0 or -errno with a sentence in err.
 */
int zt_agent_init(struct zt *zt, char *err, size_t len);

/*
 * Give the snapshot's workloads their pods' addresses (see above) and re-finalize it. An
 * address another workload owns is left out (the ADD that brought it was refused). 0 or
 * -ENOMEM / -EINVAL with the finalize messages in err.
 */
int zt_agent_overlay(struct zm_config *cfg, const char *node, char *err, size_t len);

/*
 * The veth and cgroup directory (absolute, "" for none) of the announced pod owning addr, for
 * the enrollment; false when no announced pod has it.
 */
bool zt_agent_lookup_addr(const struct zm_addr *addr, char veth[IF_NAMESIZE], char *cgroup,
			  size_t cglen);

/* Attach the capture filter to announced pods' veths not done yet (after a datapath load). */
void zt_agent_attach_pending(struct zm_dp *dp);

/* Table changes, for the CNI server. add replaces a record of the same container or pod. */
int zt_agent_add(const struct zt_agent_pod *p);
/* Remove by container id; returns true when a record went away (fills *old when not NULL). */
bool zt_agent_del(const char *container_id, struct zt_agent_pod *old);
bool zt_agent_get(const char *container_id, struct zt_agent_pod *out);
/* Does another pod's record hold one of p's addresses? who gets "namespace/name". */
bool zt_agent_addr_taken(const struct zt_agent_pod *p, char *who, size_t len);
/* Rewrite RUN_DIR/pods.json. 0 or -errno. */
int zt_agent_save(void);
/* JSON array text of the records (malloc'd), for the admin dump and the tests. */
char *zt_agent_dump(void);

/* Record <-> JSON object text, one format for the socket and for pods.json. */
struct json_object;
int zt_agent_pod_from_json(struct json_object *o, struct zt_agent_pod *p, char *err, size_t len);
struct json_object *zt_agent_pod_to_json(const struct zt_agent_pod *p);

/* cni_server.c: the unix socket RUN_DIR/cni.sock the plugin talks to, on its own thread. */
int zt_cni_server_start(struct zt *zt);
void zt_cni_server_stop(struct zt *zt);

#endif
