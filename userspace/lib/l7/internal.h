/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private helpers of the L7 resource loader (load.c, load_vs.c, load_dr.c). Documents are
 * walked with lib/'s one YAML reader (config/yaml_util.h: field path, "FILE:LINE: path:
 * problem" errors, input limits, the "---" document loop); what is here is the waypoint's
 * own: the snapshot's arena (it also owns compiled regexes) and readers that speak this
 * loader's words ("want a list", "repeated field", Istio durations and string matches).
 * Readers report their own errors at the node's line and return 0 or -EINVAL (-ENOMEM, with
 * oom set, stops the load); walking goes on after -EINVAL so one load names as many problems
 * as it can.
 */
#ifndef ZMESH_L7_INTERNAL_H
#define ZMESH_L7_INTERNAL_H

#include <yaml.h>

#include "config/yaml_util.h"
#include "l7/l7.h"

struct l7_ld {
	struct zm_yl yl; /* document, errors, field path; yl.cfg unused (l7_alloc instead) */
	struct l7_config *cfg;
	const struct zm_config *mesh;
	const char *file;
	const char *ns; /* namespace of the resource being read */
	bool oom;
};

void *l7_alloc(struct l7_config *cfg, size_t size);
const char *l7_strdup(struct l7_config *cfg, const char *s);
/* Registers a compiled regex with the snapshot so l7_config_free releases it. */
int l7_arena_keep_re(struct l7_config *cfg, void *re);

/*
 * Check n is a mapping whose keys are all in known (NULL-terminated): unknown and repeated
 * keys are reported. Returns 0 or -EINVAL.
 */
int l7_map_check(struct l7_ld *ld, yaml_node_t *n, const char *const *known);

/* Reads a node into out (what out points to is the reader's to say). */
typedef int (*l7_read_fn)(struct l7_ld *ld, yaml_node_t *n, void *out);
/* fn on the value of key in map, under the path ".key"; absent or null: 0, out untouched. */
int l7_at(struct l7_ld *ld, yaml_node_t *map, const char *key, l7_read_fn fn, void *out);
/* l7_at for a key that must be there: absent or null is "<key> is required" at map. */
int l7_need_at(struct l7_ld *ld, yaml_node_t *map, const char *key, l7_read_fn fn, void *out);
/* A key the waypoint refuses: when present, "<what>" at it and -EINVAL. */
int l7_refuse_at(struct l7_ld *ld, yaml_node_t *map, const char *key, const char *what);

/* Each item of a list, in a zeroed slot of a new array of n + 1, under ".key[i]". */
typedef int (*l7_item_fn)(struct l7_ld *ld, yaml_node_t *item, void *elem, void *ctx);
int l7_each(struct l7_ld *ld, yaml_node_t *seq, const char *key, size_t elem_size, l7_item_fn fn,
	    void *ctx, void **out, size_t *n);
/* l7_each on the list at key; absent: 0 and *n = 0; not a list: "want a list". */
int l7_list_at(struct l7_ld *ld, yaml_node_t *map, const char *key, size_t elem_size, l7_item_fn fn,
	       void *ctx, void **out, size_t *n);

/* Readers of the value of key in map (absent: 0 and *out untouched). */
int l7_str_at(struct l7_ld *ld, yaml_node_t *map, const char *key, const char **out);
int l7_uint_at(struct l7_ld *ld, yaml_node_t *map, const char *key, unsigned long max,
	       unsigned int *out);
int l7_double_at(struct l7_ld *ld, yaml_node_t *map, const char *key, double max, double *out);
int l7_bool_at(struct l7_ld *ld, yaml_node_t *map, const char *key, bool *out);
/* Durations "7s", "0.5s", "100ms", "2m", "1h" -> milliseconds. */
int l7_duration_at(struct l7_ld *ld, yaml_node_t *map, const char *key, uint32_t *out_ms);
/* A list of scalars. */
int l7_strlist_at(struct l7_ld *ld, yaml_node_t *map, const char *key, const char ***out,
		  size_t *n);
/* Scalar text of n (refusing collections) into the const char * at out. */
int l7_scalar(struct l7_ld *ld, yaml_node_t *n, void *out);
/* A {key: value} map of scalars into l7_kv / zm_cfg_label arrays. */
int l7_kvmap_at(struct l7_ld *ld, yaml_node_t *map, const char *key, struct l7_kv **out, size_t *n);
/* StringMatch {exact|prefix|regex: x} (exactly one) into the struct l7_strm at out. */
int l7_strmatch(struct l7_ld *ld, yaml_node_t *n, void *out);
/*
 * Compile m->value (RE2 syntax as Istio validates it) with PCRE2 into m->re: anchored at both
 * ends like Envoy's full match, "$" at the very end only (RE2's meaning), invalid UTF-8 in a
 * subject simply not matching. The _search form is unanchored (regex_rewrite).
 */
int l7_regex_compile(struct l7_ld *ld, yaml_node_t *n, struct l7_strm *m);
int l7_regex_compile_search(struct l7_ld *ld, yaml_node_t *n, struct l7_strm *m);
/* Qualify a host in the current namespace into the arena. */
const char *l7_qualify(struct l7_ld *ld, const char *host);

int l7_load_vs(struct l7_ld *ld, yaml_node_t *spec, struct l7_vs *vs);
/* A route destination {host, subset, port} into the struct l7_dest at out. */
int l7_destination_load(struct l7_ld *ld, yaml_node_t *n, void *out);
/* corsPolicy into the struct l7_cors at out. */
int l7_cors_load(struct l7_ld *ld, yaml_node_t *n, void *out);
/* Gateway API: an HTTPRoute / GRPCRoute spec (gr->kind, name set), a waypoint Gateway spec. */
int l7_load_gw_route(struct l7_ld *ld, yaml_node_t *spec, struct l7_gw_route *gr);
int l7_load_gateway(struct l7_ld *ld, yaml_node_t *spec, const char *name);
/* Attach the Gateway API routes to their parents (l7_config.gw_vs). 0 or -ENOMEM. */
int l7_gw_attach(struct l7_config *cfg);
int l7_load_dr(struct l7_ld *ld, yaml_node_t *spec, struct l7_dr *dr);
int l7_load_authz(struct l7_ld *ld, yaml_node_t *spec, struct l7_authz *az);
/* Resolve destinations against the mesh and the loaded DestinationRules. */
int l7_config_check(struct l7_config *cfg, const struct zm_config *mesh,
		    struct zm_cfg_errors *errs);

/*
 * The files, then the documents not marked bad (each its own source: errors name it), into one
 * snapshot as l7_config_load does (load.c; load_docs.c drives it).
 */
int l7_load_set(const char *const *files, size_t n_files, const struct l7_doc *docs, size_t n_docs,
		const struct zm_config *mesh, struct l7_config **out, char *err, size_t errlen);

#endif
