// SPDX-License-Identifier: Apache-2.0
/*
 * Loading Istio resource YAML for the waypoint: the snapshot's arena, the generic readers
 * (mappings checked against known fields, scalars, durations, string matches, PCRE2 regexes)
 * and the per-document dispatch on apiVersion/kind/metadata. Every "---" document of every
 * file is read; a load with any error produces no snapshot.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "l7/internal.h"

#define L7_MAX_INPUT (16u << 20)

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
	free(cfg);
}

yaml_node_t *l7_node(struct l7_ld *ld, int id)
{
	return yaml_document_get_node(ld->doc, id);
}

void l7_err(struct l7_ld *ld, const yaml_node_t *n, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	zm_cfg_error(ld->errs, l7_line(n), ld->plen ? ld->path : "(root)", "%s", msg);
}

size_t l7_push(struct l7_ld *ld, const char *field)
{
	size_t old = ld->plen;
	int n = snprintf(ld->path + old, sizeof(ld->path) - old, "%s%s", old ? "." : "", field);

	if (n > 0)
		ld->plen = old + (size_t)n < sizeof(ld->path) ? old + (size_t)n : old;
	return old;
}

size_t l7_push_idx(struct l7_ld *ld, size_t i)
{
	size_t old = ld->plen;
	int n = snprintf(ld->path + old, sizeof(ld->path) - old, "[%zu]", i);

	if (n > 0)
		ld->plen = old + (size_t)n < sizeof(ld->path) ? old + (size_t)n : old;
	return old;
}

void l7_pop(struct l7_ld *ld, size_t len)
{
	ld->plen = len;
	ld->path[len] = '\0';
}

static const char *l7_kind_name(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_SEQUENCE_NODE:
		return "a list";
	default:
		return "a scalar";
	}
}

int l7_map_check(struct l7_ld *ld, yaml_node_t *n, const char *const *known)
{
	yaml_node_pair_t *p, *q;
	int ret = 0;

	if (n->type != YAML_MAPPING_NODE) {
		l7_err(ld, n, "want a mapping, got %s", l7_kind_name(n));
		return -EINVAL;
	}
	for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = l7_node(ld, p->key);
		const char *const *kn;
		const char *key;

		if (!k || k->type != YAML_SCALAR_NODE) {
			l7_err(ld, k ? k : n, "keys must be scalars");
			ret = -EINVAL;
			continue;
		}
		key = (const char *)k->data.scalar.value;
		for (kn = known; *kn && strcmp(*kn, key); kn++)
			;
		if (!*kn) {
			size_t old = l7_push(ld, key);

			l7_err(ld, k, "unknown field");
			l7_pop(ld, old);
			ret = -EINVAL;
			continue;
		}
		for (q = n->data.mapping.pairs.start; q < p; q++) {
			yaml_node_t *k2 = l7_node(ld, q->key);

			if (k2 && k2->type == YAML_SCALAR_NODE &&
			    !strcmp((const char *)k2->data.scalar.value, key)) {
				size_t old = l7_push(ld, key);

				l7_err(ld, k, "repeated field");
				l7_pop(ld, old);
				ret = -EINVAL;
			}
		}
	}
	return ret;
}

yaml_node_t *l7_get(struct l7_ld *ld, yaml_node_t *n, const char *key)
{
	yaml_node_pair_t *p;

	if (!n || n->type != YAML_MAPPING_NODE)
		return NULL;
	for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = l7_node(ld, p->key), *v;

		if (!k || k->type != YAML_SCALAR_NODE ||
		    strcmp((const char *)k->data.scalar.value, key))
			continue;
		v = l7_node(ld, p->value);
		if (v && v->type == YAML_SCALAR_NODE && v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
		    (!strcmp((const char *)v->data.scalar.value, "null") ||
		     !strcmp((const char *)v->data.scalar.value, "~") || !v->data.scalar.length))
			return NULL;
		return v;
	}
	return NULL;
}

int l7_scalar(struct l7_ld *ld, yaml_node_t *n, const char **out)
{
	if (n->type != YAML_SCALAR_NODE) {
		l7_err(ld, n, "want a scalar, got %s", l7_kind_name(n));
		return -EINVAL;
	}
	if (strlen((const char *)n->data.scalar.value) != n->data.scalar.length) {
		l7_err(ld, n, "NUL byte in value");
		return -EINVAL;
	}
	*out = l7_strdup(ld->cfg, (const char *)n->data.scalar.value);
	if (!*out) {
		ld->oom = true;
		return -ENOMEM;
	}
	return 0;
}

int l7_str_at(struct l7_ld *ld, yaml_node_t *map, const char *key, const char **out)
{
	yaml_node_t *v = l7_get(ld, map, key);
	size_t old;
	int ret;

	if (!v)
		return 0;
	old = l7_push(ld, key);
	ret = l7_scalar(ld, v, out);
	l7_pop(ld, old);
	return ret;
}

int l7_uint_at(struct l7_ld *ld, yaml_node_t *map, const char *key, unsigned long max,
	       unsigned int *out)
{
	yaml_node_t *v = l7_get(ld, map, key);
	unsigned long x;
	const char *s;
	size_t old;
	char *end;
	int ret = 0;

	if (!v)
		return 0;
	old = l7_push(ld, key);
	if (v->type != YAML_SCALAR_NODE) {
		l7_err(ld, v, "want a number, got %s", l7_kind_name(v));
		ret = -EINVAL;
		goto out;
	}
	s = (const char *)v->data.scalar.value;
	errno = 0;
	x = strtoul(s, &end, 10);
	if (!*s || *s == '-' || *s == '+' || *end || errno || x > max) {
		l7_err(ld, v, "want an integer 0..%lu, got \"%s\"", max, s);
		ret = -EINVAL;
		goto out;
	}
	*out = (unsigned int)x;
out:
	l7_pop(ld, old);
	return ret;
}

int l7_double_at(struct l7_ld *ld, yaml_node_t *map, const char *key, double max, double *out)
{
	yaml_node_t *v = l7_get(ld, map, key);
	const char *s;
	size_t old;
	char *end;
	double x;
	int ret = 0;

	if (!v)
		return 0;
	old = l7_push(ld, key);
	if (v->type != YAML_SCALAR_NODE) {
		l7_err(ld, v, "want a number, got %s", l7_kind_name(v));
		ret = -EINVAL;
		goto out;
	}
	s = (const char *)v->data.scalar.value;
	x = strtod(s, &end);
	if (!*s || *end || !isfinite(x) || x < 0 || x > max) {
		l7_err(ld, v, "want a number 0..%g, got \"%s\"", max, s);
		ret = -EINVAL;
		goto out;
	}
	*out = x;
out:
	l7_pop(ld, old);
	return ret;
}

int l7_bool_at(struct l7_ld *ld, yaml_node_t *map, const char *key, bool *out)
{
	yaml_node_t *v = l7_get(ld, map, key);
	const char *s;

	if (!v)
		return 0;
	s = v->type == YAML_SCALAR_NODE ? (const char *)v->data.scalar.value : "";
	if (!strcmp(s, "true") || !strcmp(s, "false")) {
		*out = s[0] == 't';
		return 0;
	}
	size_t old = l7_push(ld, key);
	l7_err(ld, v, "want true or false");
	l7_pop(ld, old);
	return -EINVAL;
}

int l7_duration_at(struct l7_ld *ld, yaml_node_t *map, const char *key, uint32_t *out_ms)
{
	yaml_node_t *v = l7_get(ld, map, key);
	const char *s;
	double x, mul;
	char *end;

	if (!v)
		return 0;
	s = v->type == YAML_SCALAR_NODE ? (const char *)v->data.scalar.value : "";
	x = strtod(s, &end);
	if (end == s || x < 0 || !isfinite(x))
		goto bad;
	if (!strcmp(end, "s"))
		mul = 1000;
	else if (!strcmp(end, "ms"))
		mul = 1;
	else if (!strcmp(end, "m"))
		mul = 60000;
	else if (!strcmp(end, "h"))
		mul = 3600000;
	else
		goto bad;
	if (x * mul > 4e9)
		goto bad;
	*out_ms = (uint32_t)(x * mul + 0.5);
	if (!*out_ms && x > 0)
		*out_ms = 1;
	return 0;
bad:;
	size_t old = l7_push(ld, key);
	l7_err(ld, v, "want a duration like \"1.5s\" or \"100ms\"");
	l7_pop(ld, old);
	return -EINVAL;
}

int l7_strlist_at(struct l7_ld *ld, yaml_node_t *map, const char *key, const char ***out,
		  size_t *n)
{
	yaml_node_t *v = l7_get(ld, map, key);
	yaml_node_item_t *it;
	size_t old, i = 0;
	int ret = 0;

	if (!v)
		return 0;
	old = l7_push(ld, key);
	if (v->type != YAML_SEQUENCE_NODE) {
		l7_err(ld, v, "want a list, got %s", l7_kind_name(v));
		ret = -EINVAL;
		goto out;
	}
	*n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
	*out = l7_alloc(ld->cfg, (*n + 1) * sizeof(**out));
	if (!*out) {
		ld->oom = true;
		ret = -ENOMEM;
		goto out;
	}
	for (it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++, i++) {
		size_t o2 = l7_push_idx(ld, i);

		ret = l7_scalar(ld, l7_node(ld, *it), &(*out)[i]) ?: ret;
		l7_pop(ld, o2);
	}
out:
	l7_pop(ld, old);
	return ret;
}

int l7_kvmap_at(struct l7_ld *ld, yaml_node_t *map, const char *key, struct l7_kv **out,
		size_t *n)
{
	yaml_node_t *v = l7_get(ld, map, key);
	yaml_node_pair_t *p;
	size_t old, i = 0;
	int ret = 0;

	if (!v)
		return 0;
	old = l7_push(ld, key);
	if (v->type != YAML_MAPPING_NODE) {
		l7_err(ld, v, "want a mapping, got %s", l7_kind_name(v));
		ret = -EINVAL;
		goto out;
	}
	*n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
	*out = l7_alloc(ld->cfg, (*n + 1) * sizeof(**out));
	if (!*out) {
		ld->oom = true;
		ret = -ENOMEM;
		goto out;
	}
	for (p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++, i++) {
		ret = l7_scalar(ld, l7_node(ld, p->key), &(*out)[i].name) ?: ret;
		ret = l7_scalar(ld, l7_node(ld, p->value), &(*out)[i].value) ?: ret;
	}
out:
	l7_pop(ld, old);
	return ret;
}

int l7_regex_compile(struct l7_ld *ld, yaml_node_t *n, struct l7_strm *m)
{
	PCRE2_UCHAR msg[160];
	PCRE2_SIZE off;
	pcre2_code *re;
	int code;

	re = pcre2_compile((PCRE2_SPTR)m->value, PCRE2_ZERO_TERMINATED,
			   PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_UTF, &code, &off, NULL);
	if (!re) {
		pcre2_get_error_message(code, msg, sizeof(msg));
		l7_err(ld, n, "invalid regex \"%s\" at offset %zu: %s", m->value, (size_t)off,
		       (const char *)msg);
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

int l7_strmatch(struct l7_ld *ld, yaml_node_t *n, struct l7_strm *out)
{
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
		l7_err(ld, n, "want exactly one of exact, prefix, regex");
		return -EINVAL;
	}
	if (out->kind == L7_STR_REGEX) {
		size_t old = l7_push(ld, "regex");

		ret = l7_regex_compile(ld, n, out);
		l7_pop(ld, old);
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
	static const char *const known[] = {"apiVersion", "kind", "metadata", "spec", "status",
					    NULL};
	static const char *const meta_known[] = {"name",	"namespace", "labels",
						 "annotations", "uid",	     "resourceVersion",
						 "generation",	"creationTimestamp", NULL};
	const char *api = NULL, *kind = NULL, *name = NULL, *ns = NULL;
	yaml_node_t *meta, *spec;
	int ret;

	ret = l7_map_check(ld, root, known);
	if (ret && root->type != YAML_MAPPING_NODE)
		return ret;
	ret = l7_str_at(ld, root, "apiVersion", &api) ?: ret;
	ret = l7_str_at(ld, root, "kind", &kind) ?: ret;
	meta = l7_get(ld, root, "metadata");
	spec = l7_get(ld, root, "spec");
	if (!kind || !api || !meta || !spec) {
		l7_err(ld, root, "a resource needs apiVersion, kind, metadata and spec");
		return -EINVAL;
	}
	l7_push(ld, "metadata");
	ret = l7_map_check(ld, meta, meta_known) ?: ret;
	ret = l7_str_at(ld, meta, "name", &name) ?: ret;
	ret = l7_str_at(ld, meta, "namespace", &ns) ?: ret;
	l7_pop(ld, 0);
	if (!name) {
		l7_err(ld, meta, "metadata.name is required");
		return -EINVAL;
	}
	ld->ns = ns ? ns : L7_DEFAULT_NAMESPACE;
	l7_push(ld, "spec");
	if (!strcmp(kind, "VirtualService") && !strncmp(api, "networking.istio.io/", 20)) {
		struct l7_vs *vs = l7_grow((void **)&ld->cfg->vs, &ld->cfg->n_vs, sizeof(*vs));

		if (!vs)
			return -ENOMEM;
		*vs = (struct l7_vs){.name = name, .namespace = ld->ns, .file = ld->file,
				     .line = l7_line(root)};
		ret = l7_load_vs(ld, spec, vs) ?: ret;
	} else if (!strcmp(kind, "DestinationRule") &&
		   !strncmp(api, "networking.istio.io/", 20)) {
		struct l7_dr *dr = l7_grow((void **)&ld->cfg->dr, &ld->cfg->n_dr, sizeof(*dr));

		if (!dr)
			return -ENOMEM;
		*dr = (struct l7_dr){.name = name, .namespace = ld->ns, .file = ld->file,
				     .line = l7_line(root)};
		ret = l7_load_dr(ld, spec, dr) ?: ret;
	} else if (!strcmp(kind, "AuthorizationPolicy") &&
		   !strncmp(api, "security.istio.io/", 18)) {
		struct l7_authz *az = l7_grow((void **)&ld->cfg->authz, &ld->cfg->n_authz,
					      sizeof(*az));

		if (!az)
			return -ENOMEM;
		*az = (struct l7_authz){.name = name, .namespace = ld->ns, .file = ld->file,
					.line = l7_line(root)};
		ret = l7_load_authz(ld, spec, az) ?: ret;
	} else {
		l7_pop(ld, 0);
		l7_push(ld, "kind");
		l7_err(ld, root, "unsupported kind %s (apiVersion %s): want VirtualService, "
				 "DestinationRule (networking.istio.io) or AuthorizationPolicy "
				 "(security.istio.io)", kind, api);
		ret = -EINVAL;
	}
	l7_pop(ld, 0);
	return ret;
}

/* Every document of one buffer. Returns 0, -EINVAL (reported) or -ENOMEM. */
static int l7_load_one(struct l7_config *cfg, const struct zm_config *mesh,
		       struct zm_cfg_errors *errs, const char *name, const char *buf, size_t len)
{
	struct l7_ld ld = {.cfg = cfg, .mesh = mesh, .errs = errs, .file = name};
	yaml_parser_t parser;
	yaml_document_t doc;
	int ret = 0;

	ld.file = l7_strdup(cfg, name);
	if (!ld.file)
		return -ENOMEM;
	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	for (;;) {
		yaml_node_t *root;

		if (!yaml_parser_load(&parser, &doc)) {
			zm_cfg_error(errs, (unsigned int)parser.problem_mark.line + 1, "(yaml)",
				     "%s%s%s", parser.problem ? parser.problem : "syntax error",
				     parser.context ? " " : "",
				     parser.context ? parser.context : "");
			ret = -EINVAL;
			break;
		}
		root = yaml_document_get_root_node(&doc);
		if (!root) {
			yaml_document_delete(&doc);
			break; /* end of stream */
		}
		ld.doc = &doc;
		ld.plen = 0;
		ld.path[0] = '\0';
		/* An empty document between "---" separators is fine. */
		if (!(root->type == YAML_SCALAR_NODE && !root->data.scalar.length)) {
			int r = l7_load_doc(&ld, root);

			if (r == -ENOMEM || ld.oom)
				ret = -ENOMEM;
			else if (r && !ret)
				ret = r;
		}
		yaml_document_delete(&doc);
		if (ret == -ENOMEM)
			break;
	}
	yaml_parser_delete(&parser);
	return ret;
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

int l7_config_load_buf(const char *name, const char *buf, size_t len,
		       const struct zm_config *mesh, struct l7_config **out, char *err,
		       size_t errlen)
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

static int l7_read_file(const char *path, char **buf, size_t *len)
{
	FILE *f = fopen(path, "re");
	size_t cap = 0, n = 0, r;
	char *b = NULL, *nb;
	int ret = 0;

	if (!f)
		return -errno;
	do {
		if (n + 65536 > cap) {
			cap = cap ? cap * 2 : 65536;
			if (cap > L7_MAX_INPUT + 65536) {
				ret = -EFBIG;
				break;
			}
			nb = realloc(b, cap);
			if (!nb) {
				ret = -ENOMEM;
				break;
			}
			b = nb;
		}
		r = fread(b + n, 1, cap - n, f);
		n += r;
	} while (r > 0);
	if (!ret && ferror(f))
		ret = -EIO;
	fclose(f);
	if (ret) {
		free(b);
		return ret;
	}
	*buf = b;
	*len = n;
	return 0;
}

int l7_config_load(const char *const *files, size_t n_files, const struct zm_config *mesh,
		   struct l7_config **out, char *err, size_t errlen)
{
	struct l7_config *cfg = calloc(1, sizeof(*cfg));
	struct zm_cfg_errors errs;
	size_t i;
	int ret = 0;

	*out = NULL;
	zm_cfg_errors_init(&errs, "", err, errlen);
	if (!cfg)
		return -ENOMEM;
	for (i = 0; i < n_files && ret != -ENOMEM; i++) {
		char *buf = NULL;
		size_t len = 0;
		int r = l7_read_file(files[i], &buf, &len);

		errs.source = files[i];
		if (r) {
			zm_cfg_error(&errs, 0, "(file)", "cannot read: %s", strerror(-r));
			ret = ret ?: r;
			continue;
		}
		r = l7_load_one(cfg, mesh, &errs, files[i], buf, len);
		free(buf);
		ret = ret ?: r;
		if (r == -ENOMEM)
			ret = r;
	}
	return l7_finish(cfg, mesh, &errs, ret, out);
}
