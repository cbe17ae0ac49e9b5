/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The in-memory model of what the mesh tells a ztunnel: workloads, services and L4
 * authorization policies, mirroring the reference ztunnel's state (src/state/workload.rs,
 * service.rs, rbac.rs). A struct zm_config is an immutable snapshot: a config source (the
 * local YAML file today, an xDS client later) builds one with zm_config_new() and the arena
 * helpers, then calls zm_config_finalize() to resolve references, build the lookup indexes and
 * refuse inconsistent input. Consumers never modify a finalized snapshot; an update is a new
 * snapshot swapped in whole, and zm_config_free() releases everything a snapshot owns at once.
 *
 * All strings are NUL-terminated and never NULL once finalized (absent optional strings are
 * ""). Every object records the source line it came from (0 when the source has no lines) so
 * errors and `zmeshctl` output can point back at the input.
 */
#ifndef ZMESH_CONFIG_MODEL_H
#define ZMESH_CONFIG_MODEL_H

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>

#include "zmesh/abi.h"

#define ZM_CFG_DEFAULT_TRUST_DOMAIN    "cluster.local"
#define ZM_CFG_DEFAULT_SERVICE_ACCOUNT "default"
#define ZM_CFG_DEFAULT_HBONE_PORT      15008

enum zm_cfg_protocol {
	ZM_CFG_PROTO_TCP = 0, /* plain TCP to the workload */
	ZM_CFG_PROTO_HBONE,   /* the workload accepts HBONE on 15008 */
};

enum zm_cfg_health {
	ZM_CFG_HEALTHY = 0,
	ZM_CFG_UNHEALTHY,
};

enum zm_cfg_network_mode {
	ZM_CFG_NETMODE_STANDARD = 0,
	ZM_CFG_NETMODE_HOST_NETWORK, /* shares the node's addresses: not indexed by IP */
};

enum zm_cfg_app_tunnel {
	ZM_CFG_APP_TUNNEL_NONE = 0,
	ZM_CFG_APP_TUNNEL_PROXY, /* PROXY protocol header towards the application */
};

enum zm_cfg_ip_families {
	ZM_CFG_IPFAM_AUTO = 0, /* not set */
	ZM_CFG_IPFAM_DUAL,
	ZM_CFG_IPFAM_IPV4,
	ZM_CFG_IPFAM_IPV6,
};

enum zm_cfg_lb_mode {
	ZM_CFG_LB_STANDARD = 0,
	ZM_CFG_LB_STRICT,
	ZM_CFG_LB_FAILOVER,
	ZM_CFG_LB_PASSTHROUGH,
};

enum zm_cfg_lb_health {
	ZM_CFG_LB_ONLY_HEALTHY = 0,
	ZM_CFG_LB_ALLOW_ALL,
};

enum zm_cfg_lb_scope {
	ZM_CFG_LB_REGION = 0,
	ZM_CFG_LB_ZONE,
	ZM_CFG_LB_SUBZONE,
	ZM_CFG_LB_NODE,
	ZM_CFG_LB_CLUSTER,
	ZM_CFG_LB_NETWORK,
};

enum zm_cfg_scope {
	ZM_CFG_SCOPE_GLOBAL = 0,	/* applies to every workload */
	ZM_CFG_SCOPE_NAMESPACE,		/* applies to every workload of its namespace */
	ZM_CFG_SCOPE_WORKLOAD_SELECTOR, /* applies to workloads that name it */
};

enum zm_cfg_action {
	ZM_CFG_ACTION_ALLOW = 0,
	ZM_CFG_ACTION_DENY,
};

enum zm_cfg_str_kind {
	ZM_CFG_STR_EXACT = 0,
	ZM_CFG_STR_PREFIX,
	ZM_CFG_STR_SUFFIX,
	ZM_CFG_STR_PRESENCE, /* any non-empty value; value is "" */
};

/* An address qualified by its network ("" is the default network). */
struct zm_cfg_net_addr {
	const char *network;
	struct zm_addr addr;
};

/* A (service port -> target port) pair, host byte order. */
struct zm_cfg_port {
	__u16 service_port;
	__u16 target_port;
	unsigned int line;
};

struct zm_cfg_service;
struct zm_cfg_policy;

/* A waypoint or network gateway: an address or a namespaced service hostname. */
struct zm_cfg_gateway {
	bool present;
	bool is_hostname;
	struct zm_cfg_net_addr address;	      /* when !is_hostname */
	const char *namespace;		      /* when is_hostname */
	const char *hostname;		      /* when is_hostname */
	const struct zm_cfg_service *service; /* when is_hostname, set by finalize */
	__u16 hbone_mtls_port;		      /* default ZM_CFG_DEFAULT_HBONE_PORT */
	unsigned int line;
};

/* One entry of a workload's `services` map: "<ns>/<hostname>" and its port map. */
struct zm_cfg_svc_ref {
	const char *key; /* "<ns>/<hostname>" as written */
	const char *namespace;
	const char *hostname;
	struct zm_cfg_port *ports;
	size_t n_ports;
	const struct zm_cfg_service *service; /* set by finalize */
	unsigned int line;
};

/* One `authorizationPolicies` entry ("<ns>/<name>"). */
struct zm_cfg_policy_ref {
	const char *key;
	const struct zm_cfg_policy *policy; /* set by finalize */
	unsigned int line;
};

struct zm_cfg_label {
	const char *key;
	const char *value;
};

struct zm_cfg_ip {
	struct zm_addr addr;
	unsigned int line;
};

struct zm_cfg_workload {
	const char *uid;
	const char *name;
	const char *namespace;
	const char *service_account; /* default "default" */
	const char *trust_domain;    /* default "cluster.local" */
	const char *node;
	const char *network;
	const char *hostname;
	const char *cluster_id;
	const char *canonical_name;
	const char *canonical_revision;
	const char *workload_name;
	const char *workload_type;
	struct zm_cfg_ip *ips;
	size_t n_ips;
	enum zm_cfg_protocol protocol;
	enum zm_cfg_network_mode network_mode;
	enum zm_cfg_health status;
	struct zm_cfg_gateway waypoint;
	struct zm_cfg_gateway network_gateway;
	struct {
		const char *region;
		const char *zone;
		const char *subzone;
	} locality;
	__u32 capacity; /* default 1 */
	bool native_tunnel;
	struct {
		bool present;
		enum zm_cfg_app_tunnel protocol;
		__u16 port; /* 0: not set */
	} application_tunnel;
	struct zm_cfg_svc_ref *services;
	size_t n_services;
	struct zm_cfg_policy_ref *policies;
	size_t n_policies;
	struct zm_cfg_label *labels; /* our extension: the waypoint's subset selectors */
	size_t n_labels;
	unsigned int line;
	unsigned int uid_line;
};

struct zm_cfg_vip {
	struct zm_cfg_net_addr vip;
	unsigned int line;
};

struct zm_cfg_service {
	const char *name;
	const char *namespace;
	const char *hostname;
	const char *key; /* "<namespace>/<hostname>" */
	struct zm_cfg_vip *vips;
	size_t n_vips;
	struct zm_cfg_port *ports;
	size_t n_ports;
	const char **subject_alt_names;
	size_t n_subject_alt_names;
	struct zm_cfg_gateway waypoint;
	struct {
		bool present;
		enum zm_cfg_lb_scope *routing_preferences;
		size_t n_routing_preferences;
		enum zm_cfg_lb_mode mode;
		enum zm_cfg_lb_health health_policy;
	} load_balancer;
	enum zm_cfg_ip_families ip_families;
	bool canonical;
	unsigned int line;
};

struct zm_cfg_str_match {
	enum zm_cfg_str_kind kind;
	const char *value;
};

struct zm_cfg_sa_match {
	const char *namespace;
	const char *service_account;
};

struct zm_cfg_cidr {
	struct zm_addr addr; /* host bits beyond prefix_len are cleared */
	unsigned int prefix_len;
};

struct zm_cfg_str_list {
	struct zm_cfg_str_match *v;
	size_t n;
};

struct zm_cfg_sa_list {
	struct zm_cfg_sa_match *v;
	size_t n;
};

struct zm_cfg_cidr_list {
	struct zm_cfg_cidr *v;
	size_t n;
};

struct zm_cfg_port_list {
	__u16 *v;
	size_t n;
};

/* A match group: every non-empty attribute must match (any positive, no negative entry). */
struct zm_cfg_match {
	struct zm_cfg_str_list namespaces, not_namespaces;
	struct zm_cfg_sa_list service_accounts, not_service_accounts;
	struct zm_cfg_str_list principals, not_principals;
	struct zm_cfg_cidr_list source_ips, not_source_ips;
	struct zm_cfg_cidr_list destination_ips, not_destination_ips;
	struct zm_cfg_port_list destination_ports, not_destination_ports;
};

/* A clause matches when any of its (non-empty) match groups does. */
struct zm_cfg_clause {
	struct zm_cfg_match *matches;
	size_t n_matches;
};

/* A rule matches when all of its clauses do. */
struct zm_cfg_rule {
	struct zm_cfg_clause *clauses;
	size_t n_clauses;
};

struct zm_cfg_policy {
	const char *name;
	const char *namespace;
	const char *key; /* "<namespace>/<name>" */
	enum zm_cfg_scope scope;
	enum zm_cfg_action action;
	struct zm_cfg_rule *rules; /* a policy matches when any rule does */
	size_t n_rules;
	bool dry_run;
	unsigned int line;
};

struct zm_cfg_index;
struct zm_cfg_arena_block;

struct zm_config {
	const char *source; /* file name or source name, for messages */
	struct zm_cfg_workload *workloads;
	size_t n_workloads;
	struct zm_cfg_service *services;
	size_t n_services;
	struct zm_cfg_policy *policies;
	size_t n_policies;
	bool workloads_empty; /* the source said "no workloads" explicitly (`workloads: []`) */
	/*
	 * Set by a source before finalize when a workload's `services` and
	 * `authorizationPolicies` may name what has not arrived yet (xDS: istiod sends services,
	 * workloads and policies in separate pushes, and the reference ztunnel resolves them
	 * when they come). Such references stay unresolved (NULL) instead of being refused.
	 * Waypoints must always resolve.
	 */
	bool lenient_refs;
	/* private */
	struct zm_cfg_arena_block *arena;
	size_t arena_size; /* bytes held, bounded by ZM_CFG_MAX_MEMORY */
	struct zm_cfg_index *index;
};

/*
 * Error collector shared by every source. Messages have the form
 * "SOURCE:LINE: field.path: problem" (or "SOURCE: field.path: problem" when line is 0), one per
 * line in buf, in the order found. At most ZM_CFG_MAX_ERRORS are kept; the rest are counted.
 */
#define ZM_CFG_MAX_ERRORS 20

struct zm_cfg_errors {
	const char *source;
	char *buf;
	size_t len;
	size_t used;
	unsigned int count;
};

/*
 * Writes text (len bytes) double-quoted into buf for a message: quotes, backslashes and control
 * characters escaped, cut after ZM_CFG_QUOTE_MAX bytes with "...". size >= ZM_CFG_QUOTE_BUF.
 */
#define ZM_CFG_QUOTE_MAX 64
#define ZM_CFG_QUOTE_BUF (ZM_CFG_QUOTE_MAX * 4 + 16)
void zm_cfg_quote(const void *text, size_t len, char *buf, size_t size);

void zm_cfg_errors_init(struct zm_cfg_errors *e, const char *source, char *buf, size_t len);
void zm_cfg_error(struct zm_cfg_errors *e, unsigned int line, const char *path, const char *fmt,
		  ...) __attribute__((format(printf, 4, 5)));
/* Appends the "... and N more errors" tail when errors were dropped. */
void zm_cfg_errors_finish(struct zm_cfg_errors *e);

/* Most memory one snapshot may hold; beyond it allocations fail with ENOMEM. */
#define ZM_CFG_MAX_MEMORY (256u << 20)

/* Builder side, for config sources. Returns NULL with errno set on allocation failure. */
struct zm_config *zm_config_new(const char *source);
/* Zeroed memory owned by cfg, freed by zm_config_free(). */
void *zm_config_alloc(struct zm_config *cfg, size_t size);
void *zm_config_calloc(struct zm_config *cfg, size_t n, size_t size);
const char *zm_config_strndup(struct zm_config *cfg, const char *s, size_t len);
const char *zm_config_strdup(struct zm_config *cfg, const char *s);

/*
 * Fill defaults, resolve references (workload services, authorizationPolicies, hostname
 * waypoints) and build the lookup indexes. Refuses duplicate workload uids, a workload address
 * used twice on one network, duplicate service keys or VIPs, duplicate policy keys and
 * dangling references, reporting each to errs. Returns 0 or -EINVAL (errors reported) or
 * -ENOMEM. A source may change a finalized snapshot it has not published yet (ztunnel's
 * CNI overlay adds pod addresses) and call this again: every index is built anew.
 */
int zm_config_finalize(struct zm_config *cfg, struct zm_cfg_errors *errs);

/* Releases a snapshot and everything it owns. NULL is fine. */
void zm_config_free(struct zm_config *cfg);

/* Lookups on a finalized snapshot; NULL when absent. network NULL means "". */
const struct zm_cfg_workload *zm_config_workload_by_ip(const struct zm_config *cfg,
						       const char *network,
						       const struct zm_addr *addr);
const struct zm_cfg_workload *zm_config_workload_by_uid(const struct zm_config *cfg,
							const char *uid);
const struct zm_cfg_service *zm_config_service_by_vip(const struct zm_config *cfg,
						      const char *network,
						      const struct zm_addr *addr);
/* key is "<namespace>/<hostname>". */
const struct zm_cfg_service *zm_config_service_by_key(const struct zm_config *cfg, const char *key);
/* key is "<namespace>/<name>". */
const struct zm_cfg_policy *zm_config_policy_by_key(const struct zm_config *cfg, const char *key);

/*
 * Writes "spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>" to buf. Returns 0, or
 * -ENOSPC when it does not fit (buf then holds a truncated, terminated string).
 */
int zm_cfg_workload_identity(const struct zm_cfg_workload *wl, char *buf, size_t len);

/* Names of enum values as the YAML spells them. */
const char *zm_cfg_protocol_name(enum zm_cfg_protocol p);
const char *zm_cfg_scope_name(enum zm_cfg_scope s);
const char *zm_cfg_action_name(enum zm_cfg_action a);

#endif
