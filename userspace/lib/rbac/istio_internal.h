/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to the Istio YAML translator (istio_load.c: documents, metadata, selectors,
 * PeerAuthentication; istio_authz.c: AuthorizationPolicy rules). Parsing goes through lib/'s
 * one YAML reader (config/yaml_util.h) so messages have the same
 * "FILE:LINE: field.path: problem" shape; the translated policies live in the set's arena.
 */
#ifndef ZMESH_RBAC_ISTIO_INTERNAL_H
#define ZMESH_RBAC_ISTIO_INTERNAL_H

#include "config/yaml_util.h"
#include "rbac/rbac.h"

/* What both kinds share once metadata and selector are read. */
struct zm_is_meta {
	const char *name;
	const char *namespace;
	bool dry_run; /* annotation istio.io/dry-run: "true" */
	struct zm_cfg_label *selector;
	size_t n_selector;
	bool has_selector;
};

/* spec.selector: {matchLabels: {k: v}}; an empty selector is refused. */
int zm_is_selector(struct zm_yl *yl, yaml_node_t *n, void *member);

/* Fills scope (and the PeerAuthentication level) from namespace and selector. */
void zm_is_scope(const struct zm_is_meta *m, struct zm_rbac_policy *p);

#define ZM_IS_SKIP 2 /* a resource that is not ztunnel's (a policy with targetRefs) */

/* Translates an AuthorizationPolicy spec (node may be NULL: no spec) into p; ZM_IS_SKIP. */
int zm_is_authz_spec(struct zm_yl *yl, yaml_node_t *spec, struct zm_is_meta *m,
		     struct zm_rbac_policy *p);

#endif
