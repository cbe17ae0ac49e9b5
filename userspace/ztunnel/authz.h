/* SPDX-License-Identifier: Apache-2.0 */
/*
 * L4 authorization in the ztunnel (DESIGN.md section 5): the policy set in force (the config
 * snapshot's `policies` plus Istio AuthorizationPolicy/PeerAuthentication files given with
 * --policy), the check on both inbound paths (15008 per CONNECT: 401 on deny; 15006: reset)
 * and the re-check of live inbound connections after any policy or config change. Decisions
 * are lib/rbac's; this file owns files, reloads, logging and the DENY metric series.
 */
#ifndef ZTUNNEL_AUTHZ_H
#define ZTUNNEL_AUTHZ_H

#include <stdbool.h>
#include <stddef.h>

#include "rbac/rbac.h" /* ZM_RBAC_REASON_LEN: the size of a why buffer */

struct zt_conn;
struct zt_worker;

/* Remember a --policy FILE (repeatable, at most ZT_AUTHZ_MAX_FILES). -E2BIG when full. */
#define ZT_AUTHZ_MAX_FILES 16
int zt_authz_add_file(const char *path);

/* Load every policy file once at startup. -errno with the messages in err. */
int zt_authz_init(char *err, size_t len);

/*
 * Control thread, after every config reload attempt: reload the policy files when forced or
 * when one changed (a broken file keeps the previous set in force and is logged);
 * config_changed says a new config snapshot went in. Either change makes every worker re-check
 * its live inbound connections at its next tick.
 */
void zt_authz_reload(bool force, bool config_changed);

/*
 * Decide an inbound connection described by c->info (src, dst, dport: the real port) with
 * peer identity peer_id (NULL or "": plaintext). 0 allows; -EACCES denies, with the reason
 * (naming the policy) in why and c's metric series moved to response_flags="DENY" so its close
 * is counted there. Dry-run verdicts that differ are logged, never enforced.
 */
int zt_authz_inbound(struct zt_conn *c, const char *peer_id, char *why, size_t len);

/* Worker tick: after a policy change, close this worker's inbound connections now denied. */
void zt_authz_recheck(struct zt_worker *w);

#endif
