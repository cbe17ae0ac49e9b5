/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pure half of zmesh-cni, the chained CNI plugin (CNI spec 1.0.0): parsing what a
 * container runtime hands a plugin (the network config with its prevResult on stdin, CNI_ARGS),
 * the error object a plugin prints, and the edit of a node's conflist that inserts or removes
 * our entry. No I/O here: the plugin binary (userspace/zmesh-cni) reads stdin, talks to the
 * node's ztunnel and touches files; these functions only turn bytes into structs and back, so
 * the unit tests and the fuzz target (tests/fuzz/fuzz_cni_conf.c) drive them directly.
 *
 * Error codes are the spec's well-known ones (1-7, 11) plus ZM_CNI_E_AGENT for "the node's
 * ztunnel refused", in the plugin-specific range (100+).
 */
#ifndef ZMESH_CNI_CNI_H
#define ZMESH_CNI_CNI_H

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>

#include "zmesh/abi.h"

#define ZM_CNI_TYPE	      "zmesh-cni"
#define ZM_CNI_SOCKET_DEFAULT "/var/run/zmesh/cni.sock"
#define ZM_CNI_WAIT_DEFAULT   10  /* seconds an ADD waits for ztunnel before failing */
#define ZM_CNI_WAIT_MAX	      300 /* most agentWaitSeconds accepted */
#define ZM_CNI_MAX_INPUT      (1u << 20)
#define ZM_CNI_MAX_ADDRS      16
#define ZM_CNI_MAX_EXCLUDE    32
#define ZM_CNI_NAME_LEN	      254 /* Kubernetes names: at most 253 characters */
#define ZM_CNI_PATH_LEN	      108 /* sun_path */

/* The spec's error codes (SPEC.md "Error codes"), and ours from 100 on. */
enum zm_cni_code {
	ZM_CNI_E_VERSION = 1,	/* incompatible CNI version */
	ZM_CNI_E_FIELD = 2,	/* unsupported field in the network config */
	ZM_CNI_E_CONTAINER = 3, /* container unknown or does not exist */
	ZM_CNI_E_ENV = 4,	/* invalid necessary environment variables */
	ZM_CNI_E_IO = 5,	/* I/O failure */
	ZM_CNI_E_DECODE = 6,	/* failed to decode content */
	ZM_CNI_E_CONFIG = 7,	/* invalid network config */
	ZM_CNI_E_AGAIN = 11,	/* try again later (ztunnel not up yet) */
	ZM_CNI_E_AGENT = 100,	/* the node's ztunnel refused the request */
};

/* Versions whose result format we read and write (the same shape since 0.3.0). */
bool zm_cni_version_supported(const char *v);
/* The VERSION command's answer, a static JSON text ending in a newline. */
const char *zm_cni_version_json(void);

/* Our entry's settings and what the runtime passed, from one network config on stdin. */
struct zm_cni_conf {
	char cni_version[16];
	char name[ZM_CNI_NAME_LEN];
	char socket_path[ZM_CNI_PATH_LEN]; /* socketPath, default ZM_CNI_SOCKET_DEFAULT */
	int agent_wait_s;		   /* agentWaitSeconds, default ZM_CNI_WAIT_DEFAULT */
	char exclude[ZM_CNI_MAX_EXCLUDE][ZM_CNI_NAME_LEN]; /* excludeNamespaces */
	size_t n_exclude;
	/* defaultNamespace: for runtimes that name the pod without a namespace (podman passes
	 * only K8S_POD_NAME); "" leaves such pods alone. */
	char default_ns[ZM_CNI_NAME_LEN];
	bool has_prev;
	char *prev_json; /* prevResult as compact JSON (malloc'd), NULL when absent */
	/* Addresses of prevResult's ips[] that sit on the container interface (ifname). */
	struct zm_addr addrs[ZM_CNI_MAX_ADDRS];
	size_t n_addrs;
};

/*
 * Parse a network config (buf, len: what stdin held) for the container interface ifname
 * (CNI_IFNAME; NULL or "" accepts the addresses of any sandbox interface). Refuses: not a JSON
 * object (ZM_CNI_E_DECODE), missing or unsupported cniVersion (ZM_CNI_E_VERSION), our own
 * fields with a wrong type or value, or a prevResult that is not a result (ZM_CNI_E_CONFIG).
 * Fields we do not know are ignored, as runtimes add their own (runtimeConfig, args, ...).
 * Returns 0, or the positive CNI code with a sentence in err; c is zeroed first and owns
 * memory either way: release it with zm_cni_conf_free().
 */
int zm_cni_conf_parse(const char *buf, size_t len, const char *ifname, struct zm_cni_conf *c,
		      char *err, size_t errlen);
void zm_cni_conf_free(struct zm_cni_conf *c);

/* The pod, from CNI_ARGS ("K8S_POD_NAMESPACE=a;K8S_POD_NAME=b;K8S_POD_UID=c;..."). */
struct zm_cni_pod {
	char namespace[ZM_CNI_NAME_LEN];
	char name[ZM_CNI_NAME_LEN];
	char uid[128];
	bool k8s; /* namespace and name both present */
};

/*
 * Parse CNI_ARGS (NULL or "" is fine: not a Kubernetes pod). Refuses a pair without '=' or a
 * value too long for its field. Returns 0 or ZM_CNI_E_ENV with a sentence in err.
 */
int zm_cni_args_parse(const char *args, struct zm_cni_pod *pod, char *err, size_t errlen);

/* A pod named without a namespace takes the config's defaultNamespace, when it has one. */
void zm_cni_pod_default_ns(const struct zm_cni_conf *c, struct zm_cni_pod *pod);

/* Is ns one of the config's excludeNamespaces? */
bool zm_cni_excluded(const struct zm_cni_conf *c, const char *ns);

/*
 * The error object a plugin prints on stdout before exiting non-zero:
 * {"cniVersion": V, "code": N, "msg": M, "details": D}. version NULL or unsupported prints
 * "1.0.0". Returns malloc'd text ending in a newline, NULL on ENOMEM.
 */
char *zm_cni_error_json(const char *version, int code, const char *msg, const char *details);

/*
 * The result to print after ADD: prevResult unchanged but for its cniVersion, which becomes the
 * config's (a chained plugin passes the previous result on). malloc'd, newline-terminated.
 */
char *zm_cni_result_json(const struct zm_cni_conf *c);

/*
 * Conflist edits, on the text of one file of the node's CNI config directory. in is either a
 * conflist ({"plugins": [...]}) or a single plugin config (turned into a conflist holding it).
 * insert puts entry (one plugin's JSON object, its "type" ZM_CNI_TYPE) last in the chain: a
 * chain already ending in one entry equal to it is left alone (*changed false), otherwise
 * every older entry of that type is dropped and entry appended. remove drops every entry of type
 * ZM_CNI_TYPE. *out: the new text (malloc'd), also when unchanged. Returns 0 or -EINVAL/-ENOMEM
 * with a sentence in err.
 */
int zm_cni_conflist_insert(const char *in, size_t len, const char *entry, char **out, bool *changed,
			   char *err, size_t errlen);
int zm_cni_conflist_remove(const char *in, size_t len, char **out, bool *changed, char *err,
			   size_t errlen);

#endif
