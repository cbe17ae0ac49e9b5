/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to lib/rbac: PeerAuthentication resolution shared by the evaluator (eval.c), the
 * kernel fast-path compiler (fastpath.c) and zm_rbac_mtls_mode (peerauth.c), so all three
 * agree on which policy is in force at each level and what it requires on each port.
 */
#ifndef ZMESH_RBAC_PEERAUTH_INTERNAL_H
#define ZMESH_RBAC_PEERAUTH_INTERNAL_H

#include "rbac/rbac.h"

/* The PeerAuthentication in force at each level for one workload (NULL: none). */
struct zm_rbac_pa_levels {
	const struct zm_rbac_policy *v[ZM_RBAC_PA_LEVELS];
	bool saw_dry_run; /* a dry-run PeerAuthentication applies (counted or not) */
};

/*
 * Collect the levels for wl from src. with_dry_run: dry-run policies count as enforced (the
 * evaluator's shadow pass); otherwise they are skipped, as if absent.
 */
void zm_rbac_pa_find(const struct zm_rbac_sources *src, const struct zm_cfg_workload *wl,
		     bool with_dry_run, struct zm_rbac_pa_levels *out);

/* The effective mode at port (never UNSET); *by and *port_level as zm_rbac_mtls_mode. */
enum zm_mtls_mode zm_rbac_pa_resolve(const struct zm_rbac_pa_levels *l, unsigned int port,
				     const struct zm_rbac_policy **by, bool *port_level);

/*
 * The levels' STRICT requirement as one Deny policy the fast-path compiler understands:
 * {notPrincipals: [Presence]} on every port (minus the workload policy's PERMISSIVE/DISABLE
 * ports) when the inherited mode is STRICT, else on the workload policy's STRICT ports only.
 * Named after the policy that makes it STRICT. Returns false when nothing is STRICT.
 */
struct zm_rbac_pa_strict {
	struct zm_rbac_policy p;
	struct zm_cfg_rule rule;
	struct zm_cfg_clause clause;
	struct zm_cfg_match match;
	struct zm_cfg_str_match presence;
};

bool zm_rbac_pa_strict_policy(const struct zm_rbac_pa_levels *l, struct zm_rbac_pa_strict *out);

#endif
