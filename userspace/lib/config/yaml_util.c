// SPDX-License-Identifier: Apache-2.0
/*
 * Typed readers over a loaded libyaml document (config/yaml_util.h), for every YAML loader in
 * lib/: scalars (strings, booleans, integers, enums, addresses), lists (and the list kinds
 * several schemas share: strings, CIDRs, ports), schema-driven mappings and free-form maps,
 * plus the field-path stack and the depth/work limits. Scalars are typed the way YAML 1.2's
 * core schema types plain scalars: `80` is an integer, `"80"` a string, `true` a boolean.
 * Aliases are followed (libyaml resolves them to shared nodes), so every descent is counted
 * and bounded: a small document cannot make the walk exponential.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "config/config.h"
#include "config/yaml_internal.h"
#include "config/yaml_util.h"

/*
 * Items walked, counting every alias expansion. A file without aliases walks about as many as
 * it has nodes (the scale bench's 50,000 workloads: ~1 million of its 1.2 million nodes);
 * aliases that fan out hit this budget of 2 million, as before.
 */
#define ZM_YL_MAX_VISITS ZM_CFG_MAX_NODES

yaml_node_t *zm_yl_node(struct zm_yl *yl, int id)
{
	return yaml_document_get_node(yl->doc, id);
}

int zm_yl_oom(struct zm_yl *yl)
{
	if (!yl->fatal)
		zm_cfg_error(yl->errs, 0, "(root)", "out of memory (config larger than %u MiB?)",
			     ZM_CFG_MAX_MEMORY >> 20);
	yl->fatal = true;
	return -ENOMEM;
}

void zm_yl_error(struct zm_yl *yl, const yaml_node_t *n, const char *fmt, ...)
{
	char msg[512]; /* zm_cfg_error keeps as much */
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	zm_cfg_error(yl->errs, n ? zm_yl_line(n) : 0, yl->path_len ? yl->path : "(root)", "%s",
		     msg);
	/* Past the kept maximum nothing more is shown: stop walking. */
	if (yl->errs->count > ZM_CFG_MAX_ERRORS)
		yl->fatal = true;
}

void zm_yl_error_at(struct zm_yl *yl, const yaml_node_t *n, const char *suffix, const char *fmt,
		    ...)
{
	size_t old = zm_yl_push_field(yl, suffix);
	char msg[512]; /* zm_cfg_error keeps as much */
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	zm_yl_error(yl, n, "%s", msg);
	zm_yl_pop(yl, old);
}

static size_t zm_yl_push(struct zm_yl *yl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static size_t zm_yl_push(struct zm_yl *yl, const char *fmt, ...)
{
	size_t old = yl->path_len, room = sizeof(yl->path) - old;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(yl->path + old, room, fmt, ap);
	va_end(ap);
	if (n < 0)
		yl->path[old] = '\0';
	else
		yl->path_len = (size_t)n < room ? old + (size_t)n : sizeof(yl->path) - 1;
	return old;
}

size_t zm_yl_push_field(struct zm_yl *yl, const char *name)
{
	return zm_yl_push(yl, yl->path_len ? ".%s" : "%s", name);
}

size_t zm_yl_push_index(struct zm_yl *yl, size_t i)
{
	return zm_yl_push(yl, "[%zu]", i);
}

const char *zm_yl_quote(const yaml_node_t *n, char *buf, size_t size)
{
	if (n->type != YAML_SCALAR_NODE)
		return zm_yl_kind_name(n);
	zm_cfg_quote(n->data.scalar.value, n->data.scalar.length, buf, size);
	return buf;
}

static bool zm_yl_is_digits(const yaml_node_t *n)
{
	size_t i;

	if (n->type != YAML_SCALAR_NODE || !n->data.scalar.length)
		return false;
	for (i = 0; i < n->data.scalar.length; i++)
		if (n->data.scalar.value[i] < '0' || n->data.scalar.value[i] > '9')
			return false;
	return true;
}

size_t zm_yl_push_key(struct zm_yl *yl, const yaml_node_t *key)
{
	char q[ZM_YL_QUOTE_BUF];

	if (zm_yl_is_digits(key) && key->data.scalar.length <= 10)
		return zm_yl_push(yl, "[%.*s]", (int)key->data.scalar.length,
				  (const char *)key->data.scalar.value);
	return zm_yl_push(yl, "[%s]", zm_yl_quote(key, q, sizeof(q)));
}

void zm_yl_pop(struct zm_yl *yl, size_t len)
{
	yl->path_len = len;
	yl->path[len] = '\0';
}

int zm_yl_enter(struct zm_yl *yl, const yaml_node_t *n)
{
	size_t items = 0;

	if (yl->fatal)
		return -EINVAL;
	if (n->type == YAML_SEQUENCE_NODE)
		items = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	else if (n->type == YAML_MAPPING_NODE)
		items = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
	yl->visits += 1 + items;
	if (yl->visits > ZM_YL_MAX_VISITS) {
		zm_yl_error(yl, n, "document expands to more than %u nodes (aliases?)",
			    ZM_YL_MAX_VISITS);
		yl->fatal = true;
		return -EINVAL;
	}
	if (++yl->depth > ZM_CFG_MAX_DEPTH) {
		yl->depth--;
		zm_yl_error(yl, n, "nested deeper than %d levels", ZM_CFG_MAX_DEPTH);
		yl->fatal = true;
		return -EINVAL;
	}
	return 0;
}

void zm_yl_leave(struct zm_yl *yl)
{
	yl->depth--;
}

bool zm_yl_is_null(const yaml_node_t *n)
{
	static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
	size_t i;

	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	for (i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		if (n->data.scalar.length == strlen(nulls[i]) &&
		    !memcmp(n->data.scalar.value, nulls[i], n->data.scalar.length))
			return true;
	return false;
}

const char *zm_yl_kind_name(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_SEQUENCE_NODE:
		return "a list";
	case YAML_SCALAR_NODE:
		return zm_yl_is_null(n) ? "null" : "a scalar";
	default:
		return "nothing";
	}
}

/* "expected X, got Y" where Y quotes a scalar's text. */
static int zm_yl_type_error(struct zm_yl *yl, yaml_node_t *n, const char *want)
{
	char q[ZM_YL_QUOTE_BUF];

	zm_yl_error(yl, n, "expected %s, got %s", want,
		    zm_yl_is_null(n) ? "null" : zm_yl_quote(n, q, sizeof(q)));
	return -EINVAL;
}

int zm_yl_str(struct zm_yl *yl, yaml_node_t *n, const char **out)
{
	const char *s;

	if (n->type != YAML_SCALAR_NODE || zm_yl_is_null(n))
		return zm_yl_type_error(yl, n, "a string");
	if (memchr(n->data.scalar.value, '\0', n->data.scalar.length)) {
		zm_yl_error(yl, n, "string contains a NUL character");
		return -EINVAL;
	}
	s = zm_config_strndup(yl->cfg, (const char *)n->data.scalar.value, n->data.scalar.length);
	if (!s)
		return zm_yl_oom(yl);
	*out = s;
	return 0;
}

static bool zm_yl_text_is(const yaml_node_t *n, const char *s)
{
	return n->data.scalar.length == strlen(s) && !memcmp(n->data.scalar.value, s, strlen(s));
}

int zm_yl_bool(struct zm_yl *yl, yaml_node_t *n, bool *out)
{
	static const char *const yes[] = {"true", "True", "TRUE"};
	static const char *const no[] = {"false", "False", "FALSE"};
	size_t i;

	if (n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
		for (i = 0; i < 3; i++) {
			if (zm_yl_text_is(n, yes[i]) || zm_yl_text_is(n, no[i])) {
				*out = zm_yl_text_is(n, yes[i]);
				return 0;
			}
		}
	}
	return zm_yl_type_error(yl, n, "true or false");
}

int zm_yl_uint(struct zm_yl *yl, yaml_node_t *n, const char *noun, unsigned long min,
	       unsigned long max, bool quoted_ok, unsigned long *out)
{
	const unsigned char *s;
	unsigned long v = 0;
	bool neg, big = false;
	size_t i;

	if (n->type != YAML_SCALAR_NODE || zm_yl_is_null(n) ||
	    (!quoted_ok && n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE))
		return zm_yl_type_error(yl, n, "an integer");
	s = n->data.scalar.value;
	neg = s[0] == '-';
	i = neg || s[0] == '+';
	if (i == n->data.scalar.length)
		return zm_yl_type_error(yl, n, "an integer");
	for (; i < n->data.scalar.length; i++) {
		if (s[i] < '0' || s[i] > '9')
			return zm_yl_type_error(yl, n, "an integer");
		if (v > (max - (unsigned long)(s[i] - '0')) / 10)
			big = true;
		else
			v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (big || (neg && v) || v < min || v > max) {
		/* Only sign and digits here, so the text prints as is (cut when huge). */
		zm_yl_error(yl, n, "%s %.*s%s out of range (want %lu..%lu)", noun,
			    (int)(n->data.scalar.length > 24 ? 24 : n->data.scalar.length),
			    (const char *)s, n->data.scalar.length > 24 ? "..." : "", min, max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

int zm_yl_port(struct zm_yl *yl, yaml_node_t *n, bool quoted_ok, __u16 *out)
{
	unsigned long v;
	int r = zm_yl_uint(yl, n, "port", 1, 65535, quoted_ok, &v);

	if (!r)
		*out = (__u16)v;
	return r;
}

int zm_yl_enum(struct zm_yl *yl, yaml_node_t *n, const char *const *names, int *out)
{
	char want[256], q[ZM_YL_QUOTE_MAX * 4 + 16];
	size_t o = 0, count = 0;
	int i;

	for (i = 0; names[i]; i++)
		count++;
	if (n->type == YAML_SCALAR_NODE) {
		for (i = 0; names[i]; i++) {
			if (zm_yl_text_is(n, names[i])) {
				*out = i;
				return 0;
			}
		}
	}
	for (i = 0; names[i] && o < sizeof(want); i++)
		o += (size_t)snprintf(want + o, sizeof(want) - o, "%s%s",
				      !i		       ? ""
				      : (size_t)i + 1 == count ? " or "
							       : ", ",
				      names[i]);
	if (n->type != YAML_SCALAR_NODE || zm_yl_is_null(n))
		zm_yl_error(yl, n, "expected one of %s, got %s", want,
			    zm_yl_is_null(n) ? "null" : zm_yl_kind_name(n));
	else
		zm_yl_error(yl, n, "unknown value %s (want %s)", zm_yl_quote(n, q, sizeof(q)),
			    want);
	return -EINVAL;
}

int zm_yl_net_addr(struct zm_yl *yl, yaml_node_t *n, const char *what, struct zm_cfg_net_addr *out)
{
	char q[ZM_YL_QUOTE_BUF];
	const char *text, *slash;
	int r = zm_yl_str(yl, n, &text);

	if (r)
		return r;
	slash = strchr(text, '/');
	if (!slash || zm_addr_parse(slash + 1, &out->addr)) {
		zm_yl_error(yl, n, "invalid %s %s (want <network>/<ip>)", what,
			    zm_yl_quote(n, q, sizeof(q)));
		return -EINVAL;
	}
	out->network = zm_config_strndup(yl->cfg, text, (size_t)(slash - text));
	return out->network ? 0 : zm_yl_oom(yl);
}

static int zm_yl_field_parse(struct zm_yl *yl, const struct zm_yl_field *f, yaml_node_t *v,
			     void *obj)
{
	char *p = (char *)obj + f->off;
	unsigned long u;
	int r;

	switch (f->kind) {
	case ZM_YL_STR:
		r = zm_yl_str(yl, v, (const char **)p);
		if (!r && (f->flags & ZM_YL_NONEMPTY) && !**(const char **)p) {
			zm_yl_error(yl, v, "must not be empty");
			r = -EINVAL;
		}
		return r;
	case ZM_YL_BOOL:
		return zm_yl_bool(yl, v, (bool *)p);
	case ZM_YL_U32:
		r = zm_yl_uint(yl, v, "value", 0, 0xffffffffUL, false, &u);
		if (!r)
			*(__u32 *)p = (__u32)u;
		return r;
	case ZM_YL_PORT:
		return zm_yl_port(yl, v, false, (__u16 *)p);
	case ZM_YL_ENUM:
		return zm_yl_enum(yl, v, f->names, (int *)p);
	case ZM_YL_FN:
		return f->fn(yl, v, p);
	}
	return -EINVAL;
}

/* Finds the table row named by a scalar key; -1 when unknown. */
static int zm_yl_field_find(const yaml_node_t *key, const struct zm_yl_field *fields,
			    size_t n_fields)
{
	size_t i;

	for (i = 0; i < n_fields; i++)
		if (zm_yl_text_is(key, fields[i].name))
			return (int)i;
	return -1;
}

/* Unknown keys are named in the path when they look like field names, quoted otherwise. */
static size_t zm_yl_push_unknown(struct zm_yl *yl, const yaml_node_t *key)
{
	size_t i, len = key->data.scalar.length;
	const unsigned char *s = key->data.scalar.value;
	bool ident = len > 0 && len <= ZM_YL_QUOTE_MAX;

	for (i = 0; ident && i < len; i++)
		ident = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
			(s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-';
	if (ident)
		return zm_yl_push(yl, yl->path_len ? ".%.*s" : "%.*s", (int)len, (const char *)s);
	return zm_yl_push_key(yl, key);
}

int zm_yl_mapping(struct zm_yl *yl, yaml_node_t *n, const struct zm_yl_field *fields,
		  size_t n_fields, void *obj)
{
	unsigned long long seen = 0;
	yaml_node_pair_t *pair;
	int ret = 0, r, i;
	size_t old;

	if (n->type != YAML_MAPPING_NODE)
		return zm_yl_type_error(yl, n, "a mapping");
	r = zm_yl_enter(yl, n);
	if (r)
		return r;
	for (pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top; pair++) {
		yaml_node_t *k = zm_yl_node(yl, pair->key), *v = zm_yl_node(yl, pair->value);

		if (yl->fatal)
			break;
		if (!k || !v)
			continue;
		if (k->type != YAML_SCALAR_NODE) {
			zm_yl_error(yl, k, "field names must be strings, got %s",
				    zm_yl_kind_name(k));
			ret = -EINVAL;
			continue;
		}
		i = zm_yl_field_find(k, fields, n_fields);
		if (i < 0) {
			old = zm_yl_push_unknown(yl, k);
			zm_yl_error(yl, k, "unknown field");
			zm_yl_pop(yl, old);
			ret = -EINVAL;
			continue;
		}
		old = zm_yl_push_field(yl, fields[i].name);
		if (seen & (1ull << i)) {
			zm_yl_error(yl, k, "field given twice");
			r = -EINVAL;
		} else if (zm_yl_is_null(v)) {
			/* "key:" with nothing means absent, except for what must be there. */
			r = 0;
			if (fields[i].flags & ZM_YL_REQUIRED) {
				zm_yl_error(yl, v, "required field is null");
				r = -EINVAL;
			}
		} else {
			r = zm_yl_field_parse(yl, &fields[i], v, obj);
		}
		seen |= 1ull << i;
		zm_yl_pop(yl, old);
		ret = ret ?: r;
	}
	for (i = 0; i < (int)n_fields && !yl->fatal; i++) {
		if ((fields[i].flags & ZM_YL_REQUIRED) && !(seen & (1ull << i))) {
			zm_yl_error_at(yl, n, fields[i].name, "missing required field");
			ret = -EINVAL;
		}
	}
	zm_yl_leave(yl);
	return yl->fatal && !ret ? -EINVAL : ret;
}

int zm_yl_list(struct zm_yl *yl, yaml_node_t *n, size_t elem_size, zm_yl_item_fn fn, void **out,
	       size_t *n_out)
{
	size_t i, count;
	char *arr;
	int ret, r;

	if (n->type != YAML_SEQUENCE_NODE)
		return zm_yl_type_error(yl, n, "a list");
	ret = zm_yl_enter(yl, n);
	if (ret)
		return ret;
	count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	arr = zm_config_calloc(yl->cfg, count, elem_size);
	if (!arr) {
		zm_yl_leave(yl);
		return zm_yl_oom(yl);
	}
	for (i = 0; i < count && !yl->fatal; i++) {
		yaml_node_t *item = zm_yl_node(yl, n->data.sequence.items.start[i]);
		size_t old = zm_yl_push_index(yl, i);

		r = item ? fn(yl, item, arr + i * elem_size, i) : -EINVAL;
		zm_yl_pop(yl, old);
		ret = ret ?: r;
	}
	*out = arr;
	*n_out = count;
	zm_yl_leave(yl);
	return yl->fatal && !ret ? -EINVAL : ret;
}

struct zm_yl_key_ref {
	const yaml_node_t *key;
	size_t idx;
};

static int zm_yl_key_ref_cmp(const void *pa, const void *pb)
{
	const struct zm_yl_key_ref *a = pa, *b = pb;
	size_t la = a->key->data.scalar.length, lb = b->key->data.scalar.length;
	int r = memcmp(a->key->data.scalar.value, b->key->data.scalar.value, la < lb ? la : lb);

	if (r)
		return r;
	if (la != lb)
		return la < lb ? -1 : 1;
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* Sorting beats pairwise comparison: a hostile map may have a million keys. */
static int zm_yl_check_dup_keys(struct zm_yl *yl, yaml_node_t *n, size_t count)
{
	struct zm_yl_key_ref *refs;
	size_t i, m = 0;
	int ret = 0;

	refs = calloc(count ? count : 1, sizeof(*refs));
	if (!refs)
		return zm_yl_oom(yl);
	for (i = 0; i < count; i++) {
		yaml_node_t *k = zm_yl_node(yl, n->data.mapping.pairs.start[i].key);

		if (k && k->type == YAML_SCALAR_NODE)
			refs[m++] = (struct zm_yl_key_ref){k, i};
	}
	qsort(refs, m, sizeof(*refs), zm_yl_key_ref_cmp);
	for (i = 1; i < m && !yl->fatal; i++) {
		const yaml_node_t *a = refs[i - 1].key, *b = refs[i].key;

		if (a->data.scalar.length != b->data.scalar.length ||
		    memcmp(a->data.scalar.value, b->data.scalar.value, a->data.scalar.length))
			continue;
		{
			size_t old = zm_yl_push_key(yl, b);

			zm_yl_error(yl, b, "key given twice (first at line %u)", zm_yl_line(a));
			zm_yl_pop(yl, old);
		}
		ret = -EINVAL;
	}
	free(refs);
	return ret;
}

/*
 * Checks n is a mapping with scalar, unique keys and counts its pairs. On success the caller
 * walks the pairs and then calls zm_yl_leave() (the map was entered for depth and work limits).
 */
static int zm_yl_user_map(struct zm_yl *yl, yaml_node_t *n, size_t *n_pairs)
{
	yaml_node_pair_t *pair;
	int ret;

	if (n->type != YAML_MAPPING_NODE)
		return zm_yl_type_error(yl, n, "a mapping");
	ret = zm_yl_enter(yl, n);
	if (ret)
		return ret;
	*n_pairs = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
	for (pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top; pair++) {
		yaml_node_t *k = zm_yl_node(yl, pair->key);

		if (k && k->type != YAML_SCALAR_NODE) {
			zm_yl_error(yl, k, "keys must be scalars, got %s", zm_yl_kind_name(k));
			ret = -EINVAL;
		}
	}
	ret = ret ?: zm_yl_check_dup_keys(yl, n, *n_pairs);
	if (ret)
		zm_yl_leave(yl);
	return ret;
}

/* zm_yl_map_each's walk over a port map; ctx is the bitmap of service ports seen. */
static int zm_yl_port_pair(struct zm_yl *yl, yaml_node_t *k, yaml_node_t *v, void *elem, void *ctx)
{
	struct zm_cfg_port *p = elem;
	unsigned char *seen = ctx;
	int r;

	/* JSON can only write keys as strings, so "80": 8080 is accepted too. */
	r = zm_yl_port(yl, k, true, &p->service_port);
	if (!r && (seen[p->service_port / 8] & (1u << (p->service_port % 8)))) {
		zm_yl_error(yl, k, "service port %u given twice", p->service_port);
		r = -EINVAL;
	}
	if (!r)
		seen[p->service_port / 8] |= (unsigned char)(1u << (p->service_port % 8));
	r = zm_yl_port(yl, v, false, &p->target_port) ?: r;
	p->line = zm_yl_line(k);
	return r;
}

int zm_yl_port_map(struct zm_yl *yl, yaml_node_t *n, struct zm_cfg_port **out, size_t *n_out)
{
	unsigned char seen[65536 / 8] = {0};

	return zm_yl_map_each(yl, n, sizeof(**out), zm_yl_port_pair, seen, (void **)out, n_out);
}

int zm_yl_map_each(struct zm_yl *yl, yaml_node_t *n, size_t elem_size, zm_yl_pair_fn fn, void *ctx,
		   void **out, size_t *n_out)
{
	char *arr = NULL;
	size_t i, count = 0;
	int ret, r;

	ret = zm_yl_user_map(yl, n, &count);
	if (ret)
		return ret;
	if (elem_size) {
		arr = zm_config_calloc(yl->cfg, count, elem_size);
		if (!arr) {
			zm_yl_leave(yl);
			return zm_yl_oom(yl);
		}
		*out = arr;
		*n_out = count;
	}
	for (i = 0; i < count && !yl->fatal; i++) {
		yaml_node_t *k = zm_yl_node(yl, n->data.mapping.pairs.start[i].key);
		yaml_node_t *v = zm_yl_node(yl, n->data.mapping.pairs.start[i].value);
		size_t old;

		if (!k || !v)
			continue;
		old = zm_yl_push_key(yl, k);
		r = fn(yl, k, v, arr ? arr + i * elem_size : NULL, ctx);
		zm_yl_pop(yl, old);
		ret = ret ?: r;
	}
	zm_yl_leave(yl);
	return ret;
}

int zm_yl_label_pair(struct zm_yl *yl, yaml_node_t *k, yaml_node_t *v, void *elem, void *ctx)
{
	struct zm_cfg_label scratch, *l = elem ? elem : &scratch;
	int r;

	(void)ctx;
	r = zm_yl_str(yl, k, &l->key);
	return zm_yl_str(yl, v, &l->value) ?: r;
}

yaml_node_t *zm_yl_get(struct zm_yl *yl, yaml_node_t *n, const char *key)
{
	yaml_node_pair_t *p;

	if (!n || n->type != YAML_MAPPING_NODE)
		return NULL;
	for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = zm_yl_node(yl, p->key), *v;

		if (!k || k->type != YAML_SCALAR_NODE || !zm_yl_text_is(k, key))
			continue;
		v = zm_yl_node(yl, p->value);
		return v && !zm_yl_is_null(v) ? v : NULL;
	}
	return NULL;
}

int zm_yl_str_item(struct zm_yl *yl, yaml_node_t *n, void *elem, size_t idx)
{
	(void)idx;
	return zm_yl_str(yl, n, elem);
}

/* Clears the bits beyond prefix_len: 10.1.2.3/8 matches what 10.0.0.0/8 does. */
static void zm_yl_cidr_mask(struct zm_cfg_cidr *c)
{
	unsigned int i, len = c->prefix_len;
	unsigned char *b = (unsigned char *)c->addr.addr;
	unsigned int bytes = c->addr.family == ZM_AF_INET ? 4 : 16;

	for (i = 0; i < bytes; i++) {
		unsigned int lo = i * 8;

		if (len <= lo)
			b[i] = 0;
		else if (len < lo + 8)
			b[i] &= (unsigned char)(0xff << (8 - (len - lo)));
	}
}

static int zm_yl_cidr_item(struct zm_yl *yl, yaml_node_t *n, void *elem, size_t idx)
{
	struct zm_cfg_cidr *c = elem;
	char q[ZM_YL_QUOTE_BUF];
	const char *text;
	int r = zm_yl_str(yl, n, &text);

	(void)idx;
	if (r)
		return r;
	/* zm_cidr_parse's strtoul would let " 8" through as a length. */
	if (strpbrk(text, " \t\r\n") || zm_cidr_parse(text, false, &c->addr, &c->prefix_len)) {
		zm_yl_error(yl, n, "invalid CIDR %s", zm_yl_quote(n, q, sizeof(q)));
		return -EINVAL;
	}
	zm_yl_cidr_mask(c);
	return 0;
}

int zm_yl_cidr_list(struct zm_yl *yl, yaml_node_t *n, void *member)
{
	struct zm_cfg_cidr_list *l = member;

	return zm_yl_list(yl, n, sizeof(*l->v), zm_yl_cidr_item, (void **)&l->v, &l->n);
}

static int zm_yl_port_item(struct zm_yl *yl, yaml_node_t *n, void *elem, size_t idx)
{
	(void)idx;
	return zm_yl_port(yl, n, false, elem);
}

static int zm_yl_port_item_quoted(struct zm_yl *yl, yaml_node_t *n, void *elem, size_t idx)
{
	(void)idx;
	return zm_yl_port(yl, n, true, elem);
}

int zm_yl_port_list(struct zm_yl *yl, yaml_node_t *n, void *member)
{
	struct zm_cfg_port_list *l = member;

	return zm_yl_list(yl, n, sizeof(*l->v), zm_yl_port_item, (void **)&l->v, &l->n);
}

int zm_yl_port_list_quoted(struct zm_yl *yl, yaml_node_t *n, void *member)
{
	struct zm_cfg_port_list *l = member;

	return zm_yl_list(yl, n, sizeof(*l->v), zm_yl_port_item_quoted, (void **)&l->v, &l->n);
}
