/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one YAML reader of lib/: every loader of YAML (the config file, lib/rbac's Istio security
 * resources, lib/l7's waypoint resources) walks libyaml documents through it, so a problem is
 * always reported as "FILE:LINE: field.path: problem" the same way. It holds the walk context
 * (document, error collector, field-path stack, depth and work limits), typed readers for
 * scalars, lists, schema-described mappings and free-form maps, and the stream side: reading a
 * file, the input limits checked before libyaml builds a document, libyaml's own syntax errors,
 * and the loop over "---" documents. Every reader reports its own error (at the node's line,
 * under the current path) and returns 0, -EINVAL or -ENOMEM; the walk goes on after -EINVAL so
 * one load reports as many problems as it can.
 */
#ifndef ZMESH_CONFIG_YAML_UTIL_H
#define ZMESH_CONFIG_YAML_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

#include "config/model.h"

#define ZM_YL_PATH_LEN 512
#define ZM_YL_N(a)     (sizeof(a) / sizeof((a)[0]))

struct zm_yl {
	struct zm_config *cfg; /* arena of what readers copy out (strings, lists) */
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

/* 1-based line of n; 0 for NULL (no line). */
static inline unsigned int zm_yl_line(const yaml_node_t *n)
{
	return n ? (unsigned int)n->start_mark.line + 1 : 0;
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
 * Walks a free-form map (scalar keys, each once) pair by pair under the path "[key]".
 * With elem_size, *out gets a new zeroed array of one slot per pair (and *n_out its length) and
 * fn gets the pair's slot as elem; without, elem is NULL and out, n_out may be NULL.
 */
typedef int (*zm_yl_pair_fn)(struct zm_yl *yl, yaml_node_t *k, yaml_node_t *v, void *elem,
			     void *ctx);
int zm_yl_map_each(struct zm_yl *yl, yaml_node_t *n, size_t elem_size, zm_yl_pair_fn fn, void *ctx,
		   void **out, size_t *n_out);
/* A zm_yl_pair_fn for {string: string} maps: fills the struct zm_cfg_label elem, if any. */
int zm_yl_label_pair(struct zm_yl *yl, yaml_node_t *k, yaml_node_t *v, void *elem, void *ctx);

/* Value node of key in mapping n; NULL when n is no mapping, key is absent or its value null. */
yaml_node_t *zm_yl_get(struct zm_yl *yl, yaml_node_t *n, const char *key);

/* List items and whole lists (zm_yl_field ZM_YL_FN members) shared by the loaders. */
int zm_yl_str_item(struct zm_yl *yl, yaml_node_t *n, void *elem, size_t idx);
/* CIDR text (a bare address is a host range), host bits cleared: struct zm_cfg_cidr_list. */
int zm_yl_cidr_list(struct zm_yl *yl, yaml_node_t *n, void *member);
/* Ports as integers / also as quoted digits (Istio writes "8080"): struct zm_cfg_port_list. */
int zm_yl_port_list(struct zm_yl *yl, yaml_node_t *n, void *member);
int zm_yl_port_list_quoted(struct zm_yl *yl, yaml_node_t *n, void *member);

/* ---- streams (yaml_stream.c) ---- */

/*
 * Reads path whole into a malloc'ed *data; at most ZM_CFG_MAX_INPUT + 1 bytes, so a larger file
 * reaches zm_yl_load_stream and is refused there, not cut. Returns 0, or -errno after reporting
 * "(file): cannot read: <why>" to errs.
 */
int zm_yl_read_file(const char *path, char **data, size_t *len, struct zm_cfg_errors *errs);

/* A loader of one named buffer, shaped as zm_config_load_buf (out passed through). */
typedef int (*zm_yl_buf_fn)(const char *name, const char *buf, size_t len, void *out, char *err,
			    size_t errlen);
/* zm_yl_read_file, then fn on what was read, named path; errors in err as fn writes them. */
int zm_yl_load_file(const char *path, zm_yl_buf_fn fn, void *out, char *err, size_t errlen);

#define ZM_YL_ONE_DOC 0x1u /* zm_yl_load_stream: a second "---" document is an error */

/* Called with each document's root (never NULL); yl->doc is that document, the path empty. */
typedef int (*zm_yl_doc_fn)(struct zm_yl *yl, yaml_node_t *root, void *ctx);

/*
 * Refuses input over ZM_CFG_MAX_INPUT (-EFBIG), nested deeper than ZM_CFG_MAX_DEPTH, holding
 * more than ZM_CFG_MAX_NODES nodes or not valid YAML (-EINVAL), all reported under "(file)" or
 * "(yaml)" before libyaml's document loader (which has no limits) runs; then hands every
 * document's root to fn, stopping at -ENOMEM or once yl->fatal. The caller sets yl->cfg and
 * yl->errs; the rest of *yl is reset for each document. Returns the first error, -ENOMEM first
 * of all, or 0.
 */
int zm_yl_load_stream(struct zm_yl *yl, const char *buf, size_t len, unsigned int flags,
		      zm_yl_doc_fn fn, void *ctx);

#endif
