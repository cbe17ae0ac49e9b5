/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private helpers of the YAML config loader (yaml_load.c, yaml_workload.c, yaml_policy.c):
 * the walk context over a libyaml document, the field-path stack used in error messages, and
 * typed readers for scalars, lists and schema-described mappings. Every reader reports its own
 * error (at the node's line, under the current path) and returns 0, -EINVAL or -ENOMEM; the
 * walk goes on after -EINVAL so one load reports as many problems as it can.
 */
#ifndef ZMESH_CONFIG_YAML_INTERNAL_H
#define ZMESH_CONFIG_YAML_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

#include "config/model.h"

#define ZM_YL_PATH_LEN 512

struct zm_yl {
	struct zm_config *cfg;
	yaml_document_t *doc;
	struct zm_cfg_errors *errs;
	char path[ZM_YL_PATH_LEN];
	size_t path_len;
	unsigned int depth;
	unsigned long visits; /* items walked; bounds alias fan-out */
	bool fatal;	      /* out of memory or a limit hit: stop walking */
};

enum zm_yl_kind {
	ZM_YL_STR,  /* const char * */
	ZM_YL_BOOL, /* bool */
	ZM_YL_U32,  /* __u32 */
	ZM_YL_PORT, /* __u16, 1..65535 */
	ZM_YL_ENUM, /* enum stored as int, value = index in names[] */
	ZM_YL_FN,   /* custom parser */
};

#define ZM_YL_REQUIRED 0x1u
#define ZM_YL_NONEMPTY 0x2u /* strings: "" refused */

struct zm_yl_field {
	const char *name;
	enum zm_yl_kind kind;
	size_t off;
	unsigned int flags;
	const char *const *names; /* ZM_YL_ENUM: NULL-terminated spellings */
	int (*fn)(struct zm_yl *yl, yaml_node_t *value, void *obj);
};

/* Table row helpers. */
#define ZM_YL_F(name, kind, type, member, flags)                                                   \
	{                                                                                          \
		name, kind, offsetof(type, member), flags, NULL, NULL                              \
	}
#define ZM_YL_E(name, type, member, flags, names)                                                  \
	{                                                                                          \
		name, ZM_YL_ENUM, offsetof(type, member), flags, names, NULL                       \
	}
/* fn gets the whole object, or with _AT the member at offsetof(type, member). */
#define ZM_YL_FUNC(name, flags, fn)                                                                \
	{                                                                                          \
		name, ZM_YL_FN, 0, flags, NULL, fn                                                 \
	}
#define ZM_YL_FUNC_AT(name, type, member, flags, fn)                                               \
	{                                                                                          \
		name, ZM_YL_FN, offsetof(type, member), flags, NULL, fn                            \
	}

static inline unsigned int zm_yl_line(const yaml_node_t *n)
{
	return (unsigned int)n->start_mark.line + 1;
}

yaml_node_t *zm_yl_node(struct zm_yl *yl, int id);
void zm_yl_error(struct zm_yl *yl, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Reports at the given node but under a path suffix (e.g. a missing member). */
void zm_yl_error_at(struct zm_yl *yl, const yaml_node_t *n, const char *suffix, const char *fmt,
		    ...) __attribute__((format(printf, 4, 5)));
int zm_yl_oom(struct zm_yl *yl);

/* Path stack: push returns the previous length to pass to pop. */
size_t zm_yl_push_field(struct zm_yl *yl, const char *name);
size_t zm_yl_push_index(struct zm_yl *yl, size_t i);
size_t zm_yl_push_key(struct zm_yl *yl, const yaml_node_t *key);
void zm_yl_pop(struct zm_yl *yl, size_t len);

/* Depth and work accounting around any descent into a collection. */
int zm_yl_enter(struct zm_yl *yl, const yaml_node_t *n);
void zm_yl_leave(struct zm_yl *yl);

#define ZM_YL_QUOTE_MAX ZM_CFG_QUOTE_MAX
#define ZM_YL_QUOTE_BUF ZM_CFG_QUOTE_BUF
/* A scalar's text quoted, or the node's kind ("a list") for collections. */
const char *zm_yl_quote(const yaml_node_t *n, char *buf, size_t size);

bool zm_yl_is_null(const yaml_node_t *n);
const char *zm_yl_kind_name(const yaml_node_t *n);

/* Scalars. Text of a scalar (NUL inside refused) copied into the snapshot. */
int zm_yl_str(struct zm_yl *yl, yaml_node_t *n, const char **out);
int zm_yl_bool(struct zm_yl *yl, yaml_node_t *n, bool *out);
/* Decimal integer in [min, max]; quoted digits accepted only when quoted_ok (JSON keys). */
/* Out-of-range values are reported as "<noun> <value> out of range (want min..max)". */
int zm_yl_uint(struct zm_yl *yl, yaml_node_t *n, const char *noun, unsigned long min,
	       unsigned long max, bool quoted_ok, unsigned long *out);
int zm_yl_port(struct zm_yl *yl, yaml_node_t *n, bool quoted_ok, __u16 *out);
int zm_yl_enum(struct zm_yl *yl, yaml_node_t *n, const char *const *names, int *out);
/* "<network>/<ip>" */
int zm_yl_net_addr(struct zm_yl *yl, yaml_node_t *n, const char *what, struct zm_cfg_net_addr *out);

/*
 * Walks a mapping against a field table: unknown and repeated keys, missing required fields,
 * wrong types. A null value counts as absent for optional fields.
 */
int zm_yl_mapping(struct zm_yl *yl, yaml_node_t *n, const struct zm_yl_field *fields,
		  size_t n_fields, void *obj);

/* Walks a list, giving each item a zeroed elem_size slot of a new array. */
typedef int (*zm_yl_item_fn)(struct zm_yl *yl, yaml_node_t *item, void *elem, size_t idx);
int zm_yl_list(struct zm_yl *yl, yaml_node_t *n, size_t elem_size, zm_yl_item_fn fn, void **out,
	       size_t *n_out);

/*
 * Checks n is a mapping with scalar, unique keys and counts its pairs. On success the caller
 * walks the pairs and then calls zm_yl_leave() (the map was entered for depth and work limits).
 */
int zm_yl_user_map(struct zm_yl *yl, yaml_node_t *n, size_t *n_pairs);

/* {servicePort: targetPort}, duplicate service ports refused. */
int zm_yl_port_map(struct zm_yl *yl, yaml_node_t *n, struct zm_cfg_port **out, size_t *n_out);

/* Top-level sections. */
int zm_yl_workloads(struct zm_yl *yl, yaml_node_t *n, void *cfg);
int zm_yl_services(struct zm_yl *yl, yaml_node_t *n, void *cfg);
int zm_yl_policies(struct zm_yl *yl, yaml_node_t *n, void *cfg);

#endif
