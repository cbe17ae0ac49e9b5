/* SPDX-License-Identifier: Apache-2.0 */
/*
 * L4 authorization in the ztunnel (userspace/lib/rbac/README.md): the policy set in force (the
 * config snapshot's `policies` plus Istio AuthorizationPolicy/PeerAuthentication files given with
 * --policy), the check on both inbound paths (15008 per CONNECT: 401 on deny; 15006: reset)
 * and the re-check of live inbound connections after any policy or config change. Decisions
 * are lib/rbac's; this file owns files, reloads, logging and the DENY metric series.
 */
#ifndef ZTUNNEL_AUTHZ_H
#define ZTUNNEL_AUTHZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rbac/rbac.h" /* ZM_RBAC_REASON_LEN: the size of a why buffer */

struct zt_conn;
struct zt_worker;

/* Remember a --policy FILE (repeatable, at most ZT_AUTHZ_MAX_FILES). -E2BIG when full. */
#define ZT_AUTHZ_MAX_FILES 16
int zt_authz_add_file(const char *path);

/* --no-fastpath: never touch the kernel rule set (every decision stays in userspace). */
void zt_authz_fastpath_off(void);

/*
 * Policies from the Kubernetes API (kube_source.c): set replaces the previous API set (NULL:
 * none) beside the --policy files, taking ownership; live connections are re-checked as after
 * a file reload. Any thread.
 */
struct zm_rbac_set;
void zt_authz_set_api(struct zm_rbac_set *set);

/*
 * Load every policy file once at startup (-errno with the messages in err), then compile the
 * kernel fast path for this node into the datapath, when it is loaded.
 */
int zt_authz_init(char *err, size_t len);

/*
 * `ztunnel --check`: load every --policy file, printing "FILE:LINE: field: problem" lines on
 * stderr for each broken one; with node, also report how many kernel fast-path rules the
 * policies give that node under cfg. Returns the exit status: 0 all good, 1 otherwise.
 */
struct zm_config;
int zt_authz_check(const struct zm_config *cfg, const char *node);

/*
 * Control thread, after every config reload attempt: reload the policy files when forced or
 * when one changed (a broken file keeps the previous set in force and is logged);
 * config_changed says a new config snapshot went in. Either change makes every worker re-check
 * its live inbound connections at its next tick and recompiles the kernel fast path (a
 * refused replacement is logged and retried; the kernel then keeps only rules that both the
 * old and new policies deny, or none). A rule set replaced by anyone else is restored.
 */
void zt_authz_reload(bool force, bool config_changed);

/*
 * Decide an inbound connection described by c->info (src, dst, dport: the real port) with
 * peer identity peer_id (NULL or "": plaintext). 0 allows; -EACCES denies, with the reason
 * (naming the policy) in why and c's metric series moved to response_flags="DENY" so its close
 * is counted there. Dry-run verdicts that differ are logged, never enforced.
 */
int zt_authz_inbound(struct zt_conn *c, const char *peer_id, char *why, size_t len);

/*
 * A same-node connection (route ZT_ROUTE_LOCAL, never seen by the destination's inbound
 * paths): decide it here as the destination's inbound would, towards workload dst at
 * dst_addr:dport, with the source workload's identity (c->info.src_id). Same returns as
 * zt_authz_inbound.
 */
struct zt_snap;
struct zm_cfg_workload;
struct zm_addr;
int zt_authz_local(struct zt_conn *c, const struct zt_snap *s, const struct zm_cfg_workload *dst,
		   const struct zm_addr *dst_addr, __u16 dport, char *why, size_t len);

/*
 * Outbound: the effective PeerAuthentication mode of destination workload wl (of snapshot s)
 * at its target port, from the policy files in force (zm_rbac_mtls_mode: Istio's precedence,
 * UNSET inherits, PERMISSIVE by default). The policy that decided is copied as "ns/name" into
 * by (len > 0; "" for the default). DISABLE means: send plaintext, not HBONE.
 */
struct zt_snap;
struct zm_cfg_workload;
enum zm_mtls_mode zt_authz_mtls_mode(const struct zt_snap *s, const struct zm_cfg_workload *wl,
				     __u16 port, char *by, size_t len);

/* Changes whenever the policies or the config snapshot change. */
uint64_t zt_authz_generation(void);

/*
 * On a worker, woken by the control thread after the generation changed: close this worker's
 * inbound connections that the policies now deny.
 */
void zt_authz_recheck(struct zt_worker *w);

#endif
