/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private helpers of the L7 resource loader (load.c, load_vs.c, load_dr.c): the walk state
 * over one libyaml document, the field path used in messages, an allocation arena owned by
 * the snapshot, and typed readers. Readers report their own errors at the node's line and
 * return 0 or -EINVAL (-ENOMEM stops the load); walking goes on after -EINVAL so one load
 * names as many problems as it can.
 */
#ifndef ZMESH_L7_INTERNAL_H
#define ZMESH_L7_INTERNAL_H

#include <yaml.h>

#include "l7/l7.h"

struct l7_ld {
	struct l7_config *cfg;
	const struct zm_config *mesh;
	yaml_document_t *doc;
	struct zm_cfg_errors *errs;
	const char *file;
	const char *ns; /* namespace of the resource being read */
	char path[512];
	size_t plen;
	bool oom;
};

void *l7_alloc(struct l7_config *cfg, size_t size);
const char *l7_strdup(struct l7_config *cfg, const char *s);
/* Registers a compiled regex with the snapshot so l7_config_free releases it. */
int l7_arena_keep_re(struct l7_config *cfg, void *re);

yaml_node_t *l7_node(struct l7_ld *ld, int id);
static inline unsigned int l7_line(const yaml_node_t *n)
{
	return n ? (unsigned int)n->start_mark.line + 1 : 0;
}
void l7_err(struct l7_ld *ld, const yaml_node_t *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
size_t l7_push(struct l7_ld *ld, const char *field);
size_t l7_push_idx(struct l7_ld *ld, size_t i);
void l7_pop(struct l7_ld *ld, size_t len);

/*
 * Check n is a mapping whose keys are all in known (NULL-terminated): unknown and repeated
 * keys are reported. Returns 0 or -EINVAL.
 */
int l7_map_check(struct l7_ld *ld, yaml_node_t *n, const char *const *known);
/* Value node of key in mapping n, NULL when absent or null. */
yaml_node_t *l7_get(struct l7_ld *ld, yaml_node_t *n, const char *key);

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
/* Scalar text of n (refusing collections). */
int l7_scalar(struct l7_ld *ld, yaml_node_t *n, const char **out);
/* A {key: value} map of scalars into l7_kv / zm_cfg_label arrays. */
int l7_kvmap_at(struct l7_ld *ld, yaml_node_t *map, const char *key, struct l7_kv **out,
		size_t *n);
/* StringMatch {exact|prefix|regex: x} (exactly one). */
int l7_strmatch(struct l7_ld *ld, yaml_node_t *n, struct l7_strm *out);
int l7_regex_compile(struct l7_ld *ld, yaml_node_t *n, struct l7_strm *m);
/* Qualify a host in the current namespace into the arena. */
const char *l7_qualify(struct l7_ld *ld, const char *host);

int l7_load_vs(struct l7_ld *ld, yaml_node_t *spec, struct l7_vs *vs);
int l7_load_dr(struct l7_ld *ld, yaml_node_t *spec, struct l7_dr *dr);
int l7_load_authz(struct l7_ld *ld, yaml_node_t *spec, struct l7_authz *az);
/* Resolve destinations against the mesh and the loaded DestinationRules. */
int l7_config_check(struct l7_config *cfg, const struct zm_config *mesh,
		    struct zm_cfg_errors *errs);

#endif
