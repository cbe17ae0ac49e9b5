// SPDX-License-Identifier: Apache-2.0
/*
 * Loading Istio resource YAML for the waypoint: the snapshot's arena, this loader's readers
 * (mappings checked against known fields, values under a key, lists, scalars, numbers,
 * durations, string matches, PCRE2 regexes) and the per-document dispatch on
 * apiVersion/kind/metadata. Files, input limits and the "---" documents go through the shared
 * YAML reader (config/yaml_util.h). Every document of every file is read; a load with any error
 * produces no snapshot.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "l7/internal.h"

struct l7_arena {
	struct l7_arena *next;
	void *re; /* pcre2_code to free, or NULL */
	max_align_t data[];
};

void *l7_alloc(struct l7_config *cfg, size_t size)
{
	struct l7_arena *a = calloc(1, sizeof(*a) + size);

	if (!a)
		return NULL;
	a->next = cfg->arena;
	cfg->arena = a;
	return a->data;
}

const char *l7_strdup(struct l7_config *cfg, const char *s)
{
	size_t n = strlen(s);
	char *p = l7_alloc(cfg, n + 1);

	if (p)
		memcpy(p, s, n + 1);
	return p;
}

int l7_arena_keep_re(struct l7_config *cfg, void *re)
{
	struct l7_arena *a = calloc(1, sizeof(*a));

	if (!a)
		return -ENOMEM;
	a->re = re;
	a->next = cfg->arena;
	cfg->arena = a;
	return 0;
}

void l7_config_free(struct l7_config *cfg)
{
	struct l7_arena *a, *next;

	if (!cfg)
		return;
	for (a = cfg->arena; a; a = next) {
		next = a->next;
		if (a->re)
			pcre2_code_free(a->re);
		free(a);
	}
	free(cfg->vs);
	free(cfg->dr);
	free(cfg->authz);
	free(cfg->gw);
	free(cfg->gw_vs);
	free(cfg);
}

/* Node kinds as this loader names them (a null is "a scalar" here). */
static const char *l7_kind_name(const yaml_node_t *n)
{
	return n->type == YAML_SCALAR_NODE ? "a scalar" : zm_yl_kind_name(n);
}

int l7_map_check(struct l7_ld *ld, yaml_node_t *n, const char *const *known)
{
	yaml_node_pair_t *p, *q;
	int ret = 0;

	if (n->type != YAML_MAPPING_NODE) {
		zm_yl_error(&ld->yl, n, "want a mapping, got %s", l7_kind_name(n));
		return -EINVAL;
	}
	for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = zm_yl_node(&ld->yl, p->key);
		const char *const *kn;
		const char *key;

		if (!k || k->type != YAML_SCALAR_NODE) {
			zm_yl_error(&ld->yl, k ? k : n, "keys must be scalars");
			ret = -EINVAL;
			continue;
		}
		key = (const char *)k->data.scalar.value;
		for (kn = known; *kn && strcmp(*kn, key); kn++)
			;
		if (!*kn) {
			zm_yl_error_at(&ld->yl, k, key, "unknown field");
			ret = -EINVAL;
			continue;
		}
		for (q = n->data.mapping.pairs.start; q < p; q++) {
			yaml_node_t *k2 = zm_yl_node(&ld->yl, q->key);

			if (k2 && k2->type == YAML_SCALAR_NODE &&
			    !strcmp((const char *)k2->data.scalar.value, key)) {
				zm_yl_error_at(&ld->yl, k, key, "repeated field");
				ret = -EINVAL;
			}
		}
	}
	return ret;
}

int l7_at(struct l7_ld *ld, yaml_node_t *map, const char *key, l7_read_fn fn, void *out)
{
	yaml_node_t *v = zm_yl_get(&ld->yl, map, key);
	size_t old;
	int ret;

	if (!v)
		return 0;
	old = zm_yl_push_field(&ld->yl, key);
	ret = fn(ld, v, out);
	zm_yl_pop(&ld->yl, old);
	return ret;
}

int l7_need_at(struct l7_ld *ld, yaml_node_t *map, const char *key, l7_read_fn fn, void *out)
{
	if (!zm_yl_get(&ld->yl, map, key)) {
		zm_yl_error(&ld->yl, map, "%s is required", key);
		return -EINVAL;
	}
	return l7_at(ld, map, key, fn, out);
}

int l7_refuse_at(struct l7_ld *ld, yaml_node_t *map, const char *key, const char *what)
{
	yaml_node_t *v = zm_yl_get(&ld->yl, map, key);

	if (!v)
		return 0;
	zm_yl_error_at(&ld->yl, v, key, "%s", what);
	return -EINVAL;
}

int l7_each(struct l7_ld *ld, yaml_node_t *seq, const char *key, size_t elem_size, l7_item_fn fn,
	    void *ctx, void **out, size_t *n)
{
	size_t i, old,
	    count = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
	char *arr = l7_alloc(ld->cfg, (count + 1) * elem_size);
	int ret = 0;

	if (!arr) {
		ld->oom = true;
		return -ENOMEM;
	}
	*out = arr;
	*n = count;
	old = zm_yl_push_field(&ld->yl, key);
	for (i = 0; i < count; i++) {
		yaml_node_t *item = zm_yl_node(&ld->yl, seq->data.sequence.items.start[i]);
		size_t o2 = zm_yl_push_index(&ld->yl, i);

		ret = fn(ld, item, arr + i * elem_size, ctx) ?: ret;
		zm_yl_pop(&ld->yl, o2);
	}
	zm_yl_pop(&ld->yl, old);
	return ret;
}

int l7_list_at(struct l7_ld *ld, yaml_node_t *map, const char *key, size_t elem_size, l7_item_fn fn,
	       void *ctx, void **out, size_t *n)
{
	yaml_node_t *v = zm_yl_get(&ld->yl, map, key);

	*n = 0;
	if (!v)
		return 0;
	if (v->type != YAML_SEQUENCE_NODE) {
		zm_yl_error_at(&ld->yl, v, key, "want a list");
		return -EINVAL;
	}
	return l7_each(ld, v, key, elem_size, fn, ctx, out, n);
}

int l7_scalar(struct l7_ld *ld, yaml_node_t *n, void *out)
{
	const char **s = out;

	if (n->type != YAML_SCALAR_NODE) {
		zm_yl_error(&ld->yl, n, "want a scalar, got %s", l7_kind_name(n));
		return -EINVAL;
	}
	if (strlen((const char *)n->data.scalar.value) != n->data.scalar.length) {
		zm_yl_error(&ld->yl, n, "NUL byte in value");
		return -EINVAL;
	}
	*s = l7_strdup(ld->cfg, (const char *)n->data.scalar.value);
	if (!*s) {
		ld->oom = true;
		return -ENOMEM;
	}
	return 0;
}

int l7_str_at(struct l7_ld *ld, yaml_node_t *map, const char *key, const char **out)
{
	return l7_at(ld, map, key, l7_scalar, out);
}

/* What l7_number reads: an integer into an unsigned int, or any number into a double. */
struct l7_num {
	bool integer;
	double max;
	void *out;
};

static int l7_number(struct l7_ld *ld, yaml_node_t *v, void *arg)
{
	const struct l7_num *num = arg;
	const char *s;
	char *end;

	if (v->type != YAML_SCALAR_NODE) {
		zm_yl_error(&ld->yl, v, "want a number, got %s", l7_kind_name(v));
		return -EINVAL;
	}
	s = (const char *)v->data.scalar.value;
	if (num->integer) {
		unsigned long x, max = (unsigned long)num->max;

		errno = 0;
		x = strtoul(s, &end, 10);
		if (!*s || *s == '-' || *s == '+' || *end || errno || x > max) {
			zm_yl_error(&ld->yl, v, "want an integer 0..%lu, got \"%s\"", max, s);
			return -EINVAL;
		}
		*(unsigned int *)num->out = (unsigned int)x;
	} else {
		double x = strtod(s, &end);

		if (!*s || *end || !isfinite(x) || x < 0 || x > num->max) {
			zm_yl_error(&ld->yl, v, "want a number 0..%g, got \"%s\"", num->max, s);
			return -EINVAL;
		}
		*(double *)num->out = x;
	}
	return 0;
}

int l7_uint_at(struct l7_ld *ld, yaml_node_t *map, const char *key, unsigned long max,
	       unsigned int *out)
{
	struct l7_num num = {true, (double)max, out};

	return l7_at(ld, map, key, l7_number, &num);
}

int l7_double_at(struct l7_ld *ld, yaml_node_t *map, const char *key, double max, double *out)
{
	struct l7_num num = {false, max, out};

	return l7_at(ld, map, key, l7_number, &num);
}

static int l7_bool(struct l7_ld *ld, yaml_node_t *v, void *out)
{
	const char *s = v->type == YAML_SCALAR_NODE ? (const char *)v->data.scalar.value : "";

	if (!strcmp(s, "true") || !strcmp(s, "false")) {
		*(bool *)out = s[0] == 't';
		return 0;
	}
	zm_yl_error(&ld->yl, v, "want true or false");
	return -EINVAL;
}

int l7_bool_at(struct l7_ld *ld, yaml_node_t *map, const char *key, bool *out)
{
	return l7_at(ld, map, key, l7_bool, out);
}

/* "7s", "0.5s", "100ms", "2m", "1h", and Go's compound "1m30s" (Gateway API durations). */
static int l7_duration(struct l7_ld *ld, yaml_node_t *v, void *out)
{
	const char *s = v->type == YAML_SCALAR_NODE ? (const char *)v->data.scalar.value : "";
	static const struct {
		const char *unit;
		double mul;
	} units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
	uint32_t *ms = out;
	double total = 0, x;
	char *end;
	size_t i, n;
	bool any = false;

	while (*s) {
		x = strtod(s, &end);
		if (end == s || x < 0 || !isfinite(x) || *s == '+' || *s == '-')
			goto bad;
		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			n = strlen(units[i].unit);
			if (!strncmp(end, units[i].unit, n) && (end[n] < 'a' || end[n] > 'z'))
				break;
		}
		if (i == sizeof(units) / sizeof(units[0]))
			goto bad;
		total += x * units[i].mul;
		s = end + strlen(units[i].unit);
		any = true;
	}
	if (!any || total > 4e9)
		goto bad;
	*ms = (uint32_t)(total + 0.5);
	if (!*ms && total > 0)
		*ms = 1;
	return 0;
bad:
	zm_yl_error(&ld->yl, v, "want a duration like \"1.5s\" or \"100ms\"");
	return -EINVAL;
}

int l7_duration_at(struct l7_ld *ld, yaml_node_t *map, const char *key, uint32_t *out_ms)
{
	return l7_at(ld, map, key, l7_duration, out_ms);
}

static int l7_scalar_item(struct l7_ld *ld, yaml_node_t *item, void *elem, void *ctx)
{
	(void)ctx;
	return l7_scalar(ld, item, elem);
}

int l7_strlist_at(struct l7_ld *ld, yaml_node_t *map, const char *key, const char ***out, size_t *n)
{
	yaml_node_t *v = zm_yl_get(&ld->yl, map, key);

	if (!v)
		return 0;
	if (v->type != YAML_SEQUENCE_NODE) {
		zm_yl_error_at(&ld->yl, v, key, "want a list, got %s", l7_kind_name(v));
		return -EINVAL;
	}
	return l7_each(ld, v, key, sizeof(**out), l7_scalar_item, NULL, (void **)out, n);
}

struct l7_kvs {
	struct l7_kv **v;
	size_t *n;
};

static int l7_kvmap(struct l7_ld *ld, yaml_node_t *v, void *arg)
{
	const struct l7_kvs *kvs = arg;
	yaml_node_pair_t *p;
	size_t i = 0;
	int ret = 0;

	if (v->type != YAML_MAPPING_NODE) {
		zm_yl_error(&ld->yl, v, "want a mapping, got %s", l7_kind_name(v));
		return -EINVAL;
	}
	*kvs->n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
	*kvs->v = l7_alloc(ld->cfg, (*kvs->n + 1) * sizeof(**kvs->v));
	if (!*kvs->v) {
		ld->oom = true;
		return -ENOMEM;
	}
	for (p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++, i++) {
		struct l7_kv *kv = &(*kvs->v)[i];

		ret = l7_scalar(ld, zm_yl_node(&ld->yl, p->key), &kv->name) ?: ret;
		ret = l7_scalar(ld, zm_yl_node(&ld->yl, p->value), &kv->value) ?: ret;
	}
	return ret;
}

int l7_kvmap_at(struct l7_ld *ld, yaml_node_t *map, const char *key, struct l7_kv **out, size_t *n)
{
	struct l7_kvs kvs = {out, n};

	return l7_at(ld, map, key, l7_kvmap, &kvs);
}

#ifndef PCRE2_MATCH_INVALID_UTF
#define PCRE2_MATCH_INVALID_UTF 0 /* older PCRE2: a subject that is not UTF-8 fails to match */
#endif

static int l7_regex_build(struct l7_ld *ld, yaml_node_t *n, struct l7_strm *m, uint32_t anchors)
{
	PCRE2_UCHAR msg[160];
	PCRE2_SIZE off;
	pcre2_code *re;
	int code;

	if (strlen(m->value) > 1024) {
		zm_yl_error(&ld->yl, n, "regex is too large, max length allowed is 1024");
		return -EINVAL;
	}
	re = pcre2_compile((PCRE2_SPTR)m->value, PCRE2_ZERO_TERMINATED,
			   anchors | PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_MATCH_INVALID_UTF,
			   &code, &off, NULL);
	if (!re) {
		pcre2_get_error_message(code, msg, sizeof(msg));
		zm_yl_error(&ld->yl, n, "invalid regex \"%s\" at offset %zu: %s", m->value,
			    (size_t)off, (const char *)msg);
		return -EINVAL;
	}
	if (l7_arena_keep_re(ld->cfg, re)) {
		pcre2_code_free(re);
		ld->oom = true;
		return -ENOMEM;
	}
	m->re = re;
	return 0;
}

int l7_regex_compile(struct l7_ld *ld, yaml_node_t *n, struct l7_strm *m)
{
	return l7_regex_build(ld, n, m, PCRE2_ANCHORED | PCRE2_ENDANCHORED);
}

int l7_regex_compile_search(struct l7_ld *ld, yaml_node_t *n, struct l7_strm *m)
{
	return l7_regex_build(ld, n, m, 0);
}

int l7_strmatch(struct l7_ld *ld, yaml_node_t *n, void *m)
{
	struct l7_strm *out = m;
	static const char *const known[] = {"exact", "prefix", "regex", NULL};
	static const enum l7_str_kind kinds[] = {L7_STR_EXACT, L7_STR_PREFIX, L7_STR_REGEX};
	int ret, i, set = 0;

	ret = l7_map_check(ld, n, known);
	if (ret)
		return ret;
	for (i = 0; i < 3; i++) {
		const char *v = NULL;

		ret = l7_str_at(ld, n, known[i], &v) ?: ret;
		if (!v)
			continue;
		set++;
		out->kind = kinds[i];
		out->value = v;
	}
	if (ret)
		return ret;
	if (set != 1) {
		zm_yl_error(&ld->yl, n, "want exactly one of exact, prefix, regex");
		return -EINVAL;
	}
	if (out->kind == L7_STR_REGEX) {
		size_t old = zm_yl_push_field(&ld->yl, "regex");

		ret = l7_regex_compile(ld, n, out);
		zm_yl_pop(&ld->yl, old);
	}
	return ret;
}

int l7_host_qualify(const char *host, const char *ns, char *buf, size_t len)
{
	int n;

	if (strchr(host, '.') || !strcmp(host, "*"))
		n = snprintf(buf, len, "%s", host);
	else
		n = snprintf(buf, len, "%s.%s." L7_DOMAIN_SUFFIX, host, ns);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

const char *l7_qualify(struct l7_ld *ld, const char *host)
{
	char buf[512];
	const char *s;

	if (l7_host_qualify(host, ld->ns, buf, sizeof(buf)))
		return host;
	s = l7_strdup(ld->cfg, buf);
	if (!s)
		ld->oom = true;
	return s ? s : host;
}

/* Appends one zeroed element to a realloc'ed top-level array. */
static void *l7_grow(void **arr, size_t *n, size_t size)
{
	void *p = realloc(*arr, (*n + 1) * size);

	if (!p)
		return NULL;
	*arr = p;
	memset((char *)p + *n * size, 0, size);
	return (char *)p + (*n)++ * size;
}

static int l7_load_doc(struct l7_ld *ld, yaml_node_t *root)
{
	static const char *const known[] = {"apiVersion", "kind",   "metadata",
					    "spec",	  "status", NULL};
	static const char *const meta_known[] = {
	    "name",	  "namespace",	       "labels", "annotations", "uid", "resourceVersion",
	    "generation", "creationTimestamp", NULL};
	/* kind points into the document; the Gateway API route keeps it: copy it. */
	const char *api = NULL, *kind = NULL, *name = NULL, *ns = NULL;
	yaml_node_t *meta, *spec;
	int ret;

	ret = l7_map_check(ld, root, known);
	if (ret && root->type != YAML_MAPPING_NODE)
		return ret;
	ret = l7_str_at(ld, root, "apiVersion", &api) ?: ret;
	ret = l7_str_at(ld, root, "kind", &kind) ?: ret;
	meta = zm_yl_get(&ld->yl, root, "metadata");
	spec = zm_yl_get(&ld->yl, root, "spec");
	if (!kind || !api || !meta || !spec) {
		zm_yl_error(&ld->yl, root, "a resource needs apiVersion, kind, metadata and spec");
		return -EINVAL;
	}
	zm_yl_push_field(&ld->yl, "metadata");
	ret = l7_map_check(ld, meta, meta_known) ?: ret;
	ret = l7_str_at(ld, meta, "name", &name) ?: ret;
	ret = l7_str_at(ld, meta, "namespace", &ns) ?: ret;
	zm_yl_pop(&ld->yl, 0);
	if (!name) {
		zm_yl_error(&ld->yl, meta, "metadata.name is required");
		return -EINVAL;
	}
	ld->ns = ns ? ns : L7_DEFAULT_NAMESPACE;
	zm_yl_push_field(&ld->yl, "spec");
	if (!strcmp(kind, "VirtualService") && !strncmp(api, "networking.istio.io/", 20)) {
		struct l7_vs *vs = l7_grow((void **)&ld->cfg->vs, &ld->cfg->n_vs, sizeof(*vs));

		if (!vs)
			return -ENOMEM;
		*vs = (struct l7_vs){
		    .name = name, .namespace = ld->ns, .file = ld->file, .line = zm_yl_line(root)};
		ret = l7_load_vs(ld, spec, vs) ?: ret;
	} else if (!strcmp(kind, "DestinationRule") && !strncmp(api, "networking.istio.io/", 20)) {
		struct l7_dr *dr = l7_grow((void **)&ld->cfg->dr, &ld->cfg->n_dr, sizeof(*dr));

		if (!dr)
			return -ENOMEM;
		*dr = (struct l7_dr){
		    .name = name, .namespace = ld->ns, .file = ld->file, .line = zm_yl_line(root)};
		ret = l7_load_dr(ld, spec, dr) ?: ret;
	} else if (!strcmp(kind, "AuthorizationPolicy") &&
		   !strncmp(api, "security.istio.io/", 18)) {
		struct l7_authz *az =
		    l7_grow((void **)&ld->cfg->authz, &ld->cfg->n_authz, sizeof(*az));

		if (!az)
			return -ENOMEM;
		*az = (struct l7_authz){
		    .name = name, .namespace = ld->ns, .file = ld->file, .line = zm_yl_line(root)};
		ret = l7_load_authz(ld, spec, az) ?: ret;
	} else if ((!strcmp(kind, "HTTPRoute") || !strcmp(kind, "GRPCRoute")) &&
		   !strncmp(api, "gateway.networking.k8s.io/", 26)) {
		struct l7_gw_route *gr =
		    l7_grow((void **)&ld->cfg->gw, &ld->cfg->n_gw, sizeof(*gr));

		if (!gr)
			return -ENOMEM;
		*gr = (struct l7_gw_route){.kind = kind,
					   .name = name,
					   .namespace = ld->ns,
					   .file = ld->file,
					   .line = zm_yl_line(root)};
		ret = l7_load_gw_route(ld, spec, gr) ?: ret;
	} else if (!strcmp(kind, "Gateway") && !strncmp(api, "gateway.networking.k8s.io/", 26)) {
		ret = l7_load_gateway(ld, spec, name) ?: ret;
	} else {
		zm_yl_pop(&ld->yl, 0);
		zm_yl_push_field(&ld->yl, "kind");
		zm_yl_error(&ld->yl, root,
			    "unsupported kind %s (apiVersion %s): want VirtualService, "
			    "DestinationRule (networking.istio.io), AuthorizationPolicy "
			    "(security.istio.io), HTTPRoute, GRPCRoute or the waypoint's Gateway "
			    "(gateway.networking.k8s.io)",
			    kind, api);
		ret = -EINVAL;
	}
	zm_yl_pop(&ld->yl, 0);
	return ret;
}

/* One document of a buffer (zm_yl_doc_fn); ctx is the struct l7_ld around yl. */
static int l7_load_stream_doc(struct zm_yl *yl, yaml_node_t *root, void *ctx)
{
	struct l7_ld *ld = ctx;
	int r;

	(void)yl;
	/* An empty document between "---" separators is fine. */
	if (root->type == YAML_SCALAR_NODE && !root->data.scalar.length)
		return 0;
	r = l7_load_doc(ld, root);
	return ld->oom ? -ENOMEM : r;
}

/* Every document of one buffer. Returns 0, -EINVAL / -EFBIG (reported) or -ENOMEM. */
static int l7_load_one(struct l7_config *cfg, const struct zm_config *mesh,
		       struct zm_cfg_errors *errs, const char *name, const char *buf, size_t len)
{
	struct l7_ld ld = {.yl = {.errs = errs}, .cfg = cfg, .mesh = mesh};

	ld.file = l7_strdup(cfg, name);
	if (!ld.file)
		return -ENOMEM;
	return zm_yl_load_stream(&ld.yl, buf, len, 0, l7_load_stream_doc, &ld);
}

static int l7_finish(struct l7_config *cfg, const struct zm_config *mesh,
		     struct zm_cfg_errors *errs, int ret, struct l7_config **out)
{
	if (!ret)
		ret = l7_config_check(cfg, mesh, errs);
	if (!ret && errs->count)
		ret = -EINVAL;
	zm_cfg_errors_finish(errs);
	if (ret) {
		l7_config_free(cfg);
		return ret;
	}
	*out = cfg;
	return 0;
}

int l7_config_load_buf(const char *name, const char *buf, size_t len, const struct zm_config *mesh,
		       struct l7_config **out, char *err, size_t errlen)
{
	struct l7_config *cfg = calloc(1, sizeof(*cfg));
	struct zm_cfg_errors errs;
	int ret;

	*out = NULL;
	zm_cfg_errors_init(&errs, name, err, errlen);
	if (!cfg)
		return -ENOMEM;
	ret = l7_load_one(cfg, mesh, &errs, name, buf, len);
	return l7_finish(cfg, mesh, &errs, ret, out);
}

int l7_load_set(const char *const *files, size_t n_files, const struct l7_doc *docs, size_t n_docs,
		const struct zm_config *mesh, struct l7_config **out, char *err, size_t errlen)
{
	struct l7_config *cfg = calloc(1, sizeof(*cfg));
	struct zm_cfg_errors errs;
	size_t i;
	int ret = 0, r;

	*out = NULL;
	zm_cfg_errors_init(&errs, "", err, errlen);
	if (!cfg)
		return -ENOMEM;
	for (i = 0; i < n_files && ret != -ENOMEM; i++) {
		char *buf = NULL;
		size_t len = 0;

		errs.source = files[i];
		r = zm_yl_read_file(files[i], &buf, &len, &errs);
		if (!r)
			r = l7_load_one(cfg, mesh, &errs, files[i], buf, len);
		free(buf);
		ret = r == -ENOMEM ? r : ret ?: r;
	}
	for (i = 0; i < n_docs && ret != -ENOMEM; i++) {
		if (docs[i].bad)
			continue;
		errs.source = docs[i].name;
		r = l7_load_one(cfg, mesh, &errs, docs[i].name, docs[i].text, strlen(docs[i].text));
		ret = r == -ENOMEM ? r : ret ?: r;
	}
	return l7_finish(cfg, mesh, &errs, ret, out);
}

int l7_config_load(const char *const *files, size_t n_files, const struct zm_config *mesh,
		   struct l7_config **out, char *err, size_t errlen)
{
	return l7_load_set(files, n_files, NULL, 0, mesh, out, err, errlen);
}
