/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared by the L4 authorization unit tests: the policy index (zm_rbac_index_build) must not
 * change a single byte of a decision. index_same evaluates conn again through an index of src
 * built for every workload, then through one that indexes none (the PeerAuthentication list
 * only), and compares each result with want; index_same_mode does the same for
 * zm_rbac_mtls_mode.
 */
#ifndef TEST_RBAC_INDEX_H
#define TEST_RBAC_INDEX_H

#include <stdio.h>
#include <string.h>

#include "rbac/rbac.h"

/* Index every workload (node NULL), then none (node ""). */
#define INDEX_NODE(i) ((i) ? "" : NULL)
#define INDEX_HOW(i)  ((i) ? "no workload indexed" : "every workload indexed")

static inline bool index_result_same(const struct zm_rbac_result *a, const struct zm_rbac_result *b)
{
	return a->allow == b->allow && !strcmp(a->policy, b->policy) &&
	       !strcmp(a->reason, b->reason) && a->dry_run_differs == b->dry_run_differs &&
	       !strcmp(a->dry_run, b->dry_run);
}

static inline void index_same(const struct zm_rbac_sources *src, const struct zm_rbac_conn *conn,
			      const struct zm_rbac_result *want, const char *name)
{
	struct zm_rbac_sources is;
	struct zm_rbac_result r;
	size_t i;

	for (i = 0; i < 2; i++) {
		is = *src;
		is.index = zm_rbac_index_build(src, INDEX_NODE(i));
		if (!ok(is.index != NULL, "%s: index builds (%s)", name, INDEX_HOW(i)))
			continue;
		zm_rbac_evaluate(&is, conn, &r);
		if (!ok(index_result_same(&r, want), "%s: the same decision through the index (%s)",
			name, INDEX_HOW(i)))
			printf("#   indexed: %s %s | %s | %s\n#   walked:  %s %s | %s | %s\n",
			       r.allow ? "allow" : "deny", r.policy, r.reason, r.dry_run,
			       want->allow ? "allow" : "deny", want->policy, want->reason,
			       want->dry_run);
		zm_rbac_index_free((struct zm_rbac_index *)is.index);
	}
}

static inline void index_same_mode(const struct zm_rbac_sources *src,
				   const struct zm_cfg_workload *wl, unsigned int port,
				   enum zm_mtls_mode want, const struct zm_rbac_policy *want_by,
				   bool want_pl, const char *name)
{
	const struct zm_rbac_policy *by;
	struct zm_rbac_sources is;
	enum zm_mtls_mode m;
	bool pl;
	size_t i;

	for (i = 0; i < 2; i++) {
		is = *src;
		is.index = zm_rbac_index_build(src, INDEX_NODE(i));
		if (!ok(is.index != NULL, "%s: index builds (%s)", name, INDEX_HOW(i)))
			continue;
		m = zm_rbac_mtls_mode(&is, wl, port, &by, &pl);
		ok(m == want && by == want_by && pl == want_pl,
		   "%s: the same mode through the index (%s)", name, INDEX_HOW(i));
		zm_rbac_index_free((struct zm_rbac_index *)is.index);
	}
}

#endif
