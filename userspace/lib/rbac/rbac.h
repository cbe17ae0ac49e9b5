/* SPDX-License-Identifier: Apache-2.0 */
/*
 * L4 authorization (userspace/lib/rbac/README.md): one policy model for both sources, the local
 * config's `policies` (config/model.h, the reference ztunnel's Authorization) and Istio
 * AuthorizationPolicy / PeerAuthentication YAML as users write it, plus a pure evaluator over
 * them. Both sources end up as struct zm_rbac_policy: rules -> clauses -> match groups reuse
 * the config model's structs, so the evaluator has exactly one matching routine.
 *
 * Evaluation (the reference's src/state.rs assert_rbac and src/rbac.rs, exactly): the policies
 * that apply to a destination workload are every Global one, every Namespace one of its
 * namespace and the WorkloadSelector ones it names (config) or whose selector labels it carries
 * (Istio). Any matching Deny rejects; no enforced Allow means allow; any matching Allow allows;
 * otherwise reject. Dry-run policies are evaluated too but only reported. PeerAuthentication
 * is no rule set: its effective mode at the connection's port (zm_rbac_mtls_mode, Istio's
 * precedence and inheritance) decides, and STRICT denies a connection without a principal;
 * DISABLE tells the source ztunnel to send plaintext. Nothing here does I/O or keeps state:
 * ztunnel (userspace/ztunnel/authz.c) and the unit tests drive it directly.
 */
#ifndef ZMESH_RBAC_RBAC_H
#define ZMESH_RBAC_RBAC_H

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>

#include "config/model.h"

/* Istio's root namespace: a selector-less policy there is mesh-wide (Global). */
#define ZM_RBAC_ROOT_NAMESPACE "istio-system"

#define ZM_RBAC_KEY_LEN	   256
#define ZM_RBAC_REASON_LEN 512

/* PeerAuthentication levels: the most specific one that applies wins (Istio's precedence). */
enum zm_rbac_pa_level {
	ZM_RBAC_PA_NONE = 0, /* not a PeerAuthentication */
	ZM_RBAC_PA_MESH,
	ZM_RBAC_PA_NAMESPACE,
	ZM_RBAC_PA_WORKLOAD,
	ZM_RBAC_PA_LEVELS,
};

/*
 * PeerAuthentication mTLS modes, Istio's names in Istio's order. UNSET inherits from the next
 * level up; what the destination requires and, for DISABLE, how mesh sources reach it:
 * STRICT refuses connections without a peer identity, PERMISSIVE accepts both, DISABLE
 * accepts both and makes mesh sources send plaintext instead of HBONE.
 */
enum zm_mtls_mode {
	ZM_MTLS_UNSET = 0,
	ZM_MTLS_DISABLE,
	ZM_MTLS_PERMISSIVE,
	ZM_MTLS_STRICT,
};

/* "UNSET", "DISABLE", "PERMISSIVE", "STRICT"; "?" for anything else. */
const char *zm_mtls_mode_name(enum zm_mtls_mode m);

/* One spec.portLevelMtls entry (a mode for one target port of the selected workloads). */
struct zm_rbac_port_mtls {
	__u16 port;
	enum zm_mtls_mode mode;
};

/*
 * One policy of either source. Strings are never NULL. rules/clauses/matches point into the
 * memory of the source (a struct zm_config or a struct zm_rbac_set).
 */
struct zm_rbac_policy {
	const char *name;
	const char *namespace;
	const char *key;  /* "<namespace>/<name>" */
	const char *kind; /* "policy" (config), "AuthorizationPolicy" or "PeerAuthentication" */
	enum zm_cfg_scope scope;
	enum zm_cfg_action action;
	const struct zm_cfg_rule *rules;
	size_t n_rules;
	bool dry_run;
	/* WorkloadSelector by labels (Istio); n_selector 0: only workloads naming key apply. */
	const struct zm_cfg_label *selector;
	size_t n_selector;
	/*
	 * First L7 attribute the policy uses ("to.operation.methods"), "" when none. ztunnel
	 * cannot see L7, and istiod translates accordingly: an ALLOW rule using one is dropped
	 * (alone, such a policy denies everything), a DENY rule loses its L7 parts, and a match
	 * group left empty never matches (a DENY with only L7 attributes has no effect).
	 */
	const char *l7;
	enum zm_rbac_pa_level peer_auth;
	/*
	 * PeerAuthentication only (rules stay empty: the evaluator resolves modes, see
	 * zm_rbac_mtls_mode): spec.mtls.mode, spec.portLevelMtls in document order, and those
	 * ports split by whether their mode is STRICT or PERMISSIVE/DISABLE (UNSET ports are in
	 * neither: they inherit like the policy's own mode).
	 */
	enum zm_mtls_mode mtls_mode;
	const struct zm_rbac_port_mtls *port_mtls;
	size_t n_port_mtls;
	struct zm_cfg_port_list strict_ports, loose_ports;
	const char *source; /* file name, for messages */
	unsigned int line;
};

/* Policies read from Istio YAML; owns all of its memory. */
struct zm_rbac_set {
	struct zm_config *arena; /* an empty config used as the allocation arena */
	struct zm_rbac_policy *policies;
	size_t n_policies;
};

/*
 * Everything that can apply: the config's policies plus any number of Istio sets. index
 * (zm_rbac_index_build, NULL: none) is a precomputed view of exactly these cfg and sets; the
 * evaluator uses it only when it was built from the same pointers, so a stale one is ignored,
 * never trusted.
 */
struct zm_rbac_index;
struct zm_rbac_sources {
	const struct zm_config *cfg; /* NULL: none */
	const struct zm_rbac_set *const *sets;
	size_t n_sets;
	const struct zm_rbac_index *index;
};

/*
 * A connection as the destination ztunnel sees it. identity is the peer certificate's SPIFFE
 * URI ("spiffe://td/ns/N/sa/S"); NULL or "" means none (plaintext inbound has no identity).
 */
struct zm_rbac_conn {
	struct zm_addr src_ip;
	struct zm_addr dst_ip;
	__u16 dst_port; /* the real upstream port (the CONNECT target), never 15008 */
	const char *identity;
	const struct zm_cfg_workload *dst; /* namespace, name, authorizationPolicies, labels */
};

struct zm_rbac_result {
	bool allow;
	char policy[ZM_RBAC_KEY_LEN];	  /* deciding policy "ns/name", "" when none decided */
	char reason[ZM_RBAC_REASON_LEN];  /* why, for the access log */
	bool dry_run_differs;		  /* a dry-run policy would change the verdict */
	char dry_run[ZM_RBAC_REASON_LEN]; /* what the dry-run policies would do, "" if nothing */
};

/*
 * Decide conn against every applicable policy of src. Always fills *r; returns 0, or -EINVAL
 * when conn has no destination workload (then r->allow is false: no workload, no access).
 */
int zm_rbac_evaluate(const struct zm_rbac_sources *src, const struct zm_rbac_conn *conn,
		     struct zm_rbac_result *r);

/*
 * The effective PeerAuthentication mode of destination workload wl at target port, Istio's
 * way: the workload-selector policy that selects wl (its portLevelMtls entry for port, else
 * its own mode), else the namespace policy of wl's namespace, else the mesh-wide one (root
 * namespace, no selector); an UNSET mode at any level inherits from the next one up, and
 * nothing set means PERMISSIVE. Several policies at one level: the first loaded wins. Dry-run
 * policies are not in force. Never returns ZM_MTLS_UNSET. When by is not NULL it gets the
 * deciding policy (NULL: the PERMISSIVE default) and *port_level whether its portLevelMtls
 * entry decided (port_level may be NULL).
 */
enum zm_mtls_mode zm_rbac_mtls_mode(const struct zm_rbac_sources *src,
				    const struct zm_cfg_workload *wl, unsigned int port,
				    const struct zm_rbac_policy **by, bool *port_level);

/* Does one policy match conn (any rule)? Exposed for tests and the fast-path compiler. */
bool zm_rbac_policy_matches(const struct zm_rbac_policy *p, const struct zm_rbac_conn *conn);

/*
 * Is a match group empty (no attribute listed)? An empty group never matches: the evaluator
 * and the fast-path compiler must agree on this, so both use this one definition.
 */
bool zm_rbac_match_empty(const struct zm_cfg_match *m);

/* Does p apply to the destination workload wl (scope, naming, selector labels)? */
bool zm_rbac_policy_applies(const struct zm_rbac_policy *p, const struct zm_cfg_workload *wl);

/* The model view of a config policy (no allocation: points into cp). */
void zm_rbac_policy_from_cfg(const struct zm_cfg_policy *cp, const char *source,
			     struct zm_rbac_policy *out);

/*
 * The policy index (index.c): what zm_rbac_evaluate would walk for every connection, worked out
 * once per policy or config change. For each workload of node (NULL: every workload; "": none)
 * it keeps the applicable Deny and Allow policies in evaluation order and the PeerAuthentication
 * in force at each level; for every other workload, the PeerAuthentication policies alone, so
 * zm_rbac_mtls_mode never walks the AuthorizationPolicies. A connection to an indexed workload
 * then costs what its deciding policies cost, whatever else is loaded. The index points into
 * src's config and sets: free it before them, and rebuild it when either changes (a workload's
 * labels, namespace or named policies are read at build time). NULL with errno on ENOMEM.
 */
struct zm_rbac_index *zm_rbac_index_build(const struct zm_rbac_sources *src, const char *node);
void zm_rbac_index_free(struct zm_rbac_index *idx);

/* What an index holds, for logs and tests. */
struct zm_rbac_index_stats {
	size_t workloads;   /* workloads with a precomputed entry */
	size_t policy_refs; /* Deny and Allow references over all of them */
	size_t peer_auth;   /* PeerAuthentication policies, the list every workload falls back on */
	size_t long_lists;  /* principal and namespace lists split for binary search */
};
void zm_rbac_index_stats(const struct zm_rbac_index *idx, struct zm_rbac_index_stats *st);

/*
 * Istio YAML: any number of `---` separated documents of kind AuthorizationPolicy
 * (security.istio.io/v1 or v1beta1) or PeerAuthentication. name is used in messages only.
 * On success *out owns the policies (free with zm_rbac_set_free) and 0 is returned; on failure
 * err holds "FILE:LINE: field.path: problem" lines and -EINVAL, -EFBIG or -ENOMEM is returned.
 */
int zm_rbac_load_buf(const char *name, const char *buf, size_t len, struct zm_rbac_set **out,
		     char *err, size_t errlen);
int zm_rbac_load_file(const char *path, struct zm_rbac_set **out, char *err, size_t errlen);
void zm_rbac_set_free(struct zm_rbac_set *set);

/*
 * The kernel fast path (datapath.h, struct zm_dp_policy_rule): for every address of every
 * workload on node (NULL: all workloads), DROP rules for the plaintext connections (no
 * identity) the evaluator certainly denies by destination, port and source prefix alone:
 * never a drop zm_rbac_evaluate would not also make. Rules are named by the deciding policy
 * (for "no allow matched", the first applicable Allow). Addresses are judged as the first
 * workload holding them (zm_config_workload_by_ip), as ztunnel does. *out is malloc'd (free
 * it); returns 0, -ENOMEM (nothing in *out), or -E2BIG when more than ZM_MAX_POL_RULES rules
 * would be needed: *out then holds the first ZM_MAX_POL_RULES (each sound on its own).
 */
struct zm_dp_policy_rule;
int zm_rbac_compile_fastpath(const struct zm_rbac_sources *src, const char *node,
			     struct zm_dp_policy_rule **out, size_t *n_out);

#endif
