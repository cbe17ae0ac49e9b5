// SPDX-License-Identifier: Apache-2.0
/*
 * Istio security YAML as users write it -> struct zm_rbac_set: any number of `---` separated
 * documents, each an AuthorizationPolicy or a PeerAuthentication (security.istio.io/v1 or
 * v1beta1). Metadata gives name and namespace ("default" when left out, as kubectl does) and
 * the istio.io/dry-run annotation; a selector in the root namespace "istio-system" selects in
 * every namespace, no selector there is mesh-wide (Global), no selector elsewhere is the
 * namespace (Namespace).
 *
 * PeerAuthentication keeps its mode and portLevelMtls as they are written (struct
 * zm_rbac_policy's mtls fields), every mode included: which mode is in force for a workload and
 * port is resolved later across levels and files (peerauth.c), since an UNSET mode or port
 * inherits from the next level up. An unknown mode is refused with its line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config/config.h"
#include "rbac/istio_internal.h"

struct zm_is_doc {
	struct zm_is_meta meta;
	yaml_node_t *kind, *spec;
};

static int zm_is_api_version(struct zm_yl *yl, yaml_node_t *n, void *obj)
{
	char q[ZM_YL_QUOTE_BUF];
	const char *s;
	int r = zm_yl_str(yl, n, &s);

	(void)obj;
	if (r)
		return r;
	if (strcmp(s, "security.istio.io/v1") && strcmp(s, "security.istio.io/v1beta1")) {
		zm_yl_error(yl, n,
			    "unsupported apiVersion %s (want security.istio.io/v1 or "
			    "security.istio.io/v1beta1)",
			    zm_yl_quote(n, q, sizeof(q)));
		return -EINVAL;
	}
	return 0;
}

static int zm_is_node(struct zm_yl *yl, yaml_node_t *n, void *member)
{
	(void)yl;
	*(yaml_node_t **)member = n;
	return 0;
}

static int zm_is_ignore(struct zm_yl *yl, yaml_node_t *n, void *obj)
{
	(void)yl, (void)n, (void)obj;
	return 0;
}

/* metadata.annotations: {string: string}, istio.io/dry-run: "true" noted. */
static int zm_is_annotation(struct zm_yl *yl, yaml_node_t *k, yaml_node_t *v, void *elem, void *ctx)
{
	struct zm_cfg_label a;
	struct zm_is_meta *m = ctx;
	int r = zm_yl_label_pair(yl, k, v, &a, NULL);

	(void)elem;
	if (!r && !strcmp(a.key, "istio.io/dry-run"))
		m->dry_run = !strcmp(a.value, "true");
	return r;
}

static int zm_is_annotations(struct zm_yl *yl, yaml_node_t *n, void *obj)
{
	return zm_yl_map_each(yl, n, 0, zm_is_annotation, obj, NULL, NULL);
}

/* metadata.labels: {string: string}, checked only. */
static int zm_is_labels(struct zm_yl *yl, yaml_node_t *n, void *obj)
{
	(void)obj;
	return zm_yl_map_each(yl, n, 0, zm_yl_label_pair, NULL, NULL, NULL);
}

static const struct zm_yl_field zm_is_meta_fields[] = {
    ZM_YL_F("name", ZM_YL_STR, struct zm_is_meta, name, ZM_YL_REQUIRED | ZM_YL_NONEMPTY),
    ZM_YL_F("namespace", ZM_YL_STR, struct zm_is_meta, namespace, ZM_YL_NONEMPTY),
    ZM_YL_FUNC("labels", 0, zm_is_labels),
    ZM_YL_FUNC("annotations", 0, zm_is_annotations),
};

static int zm_is_metadata(struct zm_yl *yl, yaml_node_t *n, void *obj)
{
	struct zm_is_doc *d = obj;

	return zm_yl_mapping(yl, n, zm_is_meta_fields, ZM_YL_N(zm_is_meta_fields), &d->meta);
}

static const struct zm_yl_field zm_is_doc_fields[] = {
    ZM_YL_FUNC("apiVersion", ZM_YL_REQUIRED, zm_is_api_version),
    ZM_YL_FUNC_AT("kind", struct zm_is_doc, kind, ZM_YL_REQUIRED, zm_is_node),
    ZM_YL_FUNC("metadata", ZM_YL_REQUIRED, zm_is_metadata),
    ZM_YL_FUNC_AT("spec", struct zm_is_doc, spec, 0, zm_is_node),
    ZM_YL_FUNC("status", 0, zm_is_ignore),
};

static int zm_is_match_labels(struct zm_yl *yl, yaml_node_t *n, void *obj)
{
	struct zm_is_meta *m = obj;

	return zm_yl_map_each(yl, n, sizeof(*m->selector), zm_yl_label_pair, NULL,
			      (void **)&m->selector, &m->n_selector);
}

static const struct zm_yl_field zm_is_selector_fields[] = {
    ZM_YL_FUNC("matchLabels", 0, zm_is_match_labels),
};

int zm_is_selector(struct zm_yl *yl, yaml_node_t *n, void *member)
{
	struct zm_is_meta *m = member;
	int r = zm_yl_mapping(yl, n, zm_is_selector_fields, ZM_YL_N(zm_is_selector_fields), m);

	if (r)
		return r;
	if (!m->n_selector) {
		zm_yl_error(yl, n,
			    "empty selector selects nothing here: leave selector out to apply to "
			    "the whole namespace");
		return -EINVAL;
	}
	m->has_selector = true;
	return 0;
}

void zm_is_scope(const struct zm_is_meta *m, struct zm_rbac_policy *p)
{
	bool root = !strcmp(m->namespace, ZM_RBAC_ROOT_NAMESPACE);

	p->selector = m->selector;
	p->n_selector = m->n_selector;
	if (m->has_selector)
		p->scope = ZM_CFG_SCOPE_WORKLOAD_SELECTOR;
	else
		p->scope = root ? ZM_CFG_SCOPE_GLOBAL : ZM_CFG_SCOPE_NAMESPACE;
	if (p->peer_auth)
		p->peer_auth = m->has_selector ? ZM_RBAC_PA_WORKLOAD
			       : root	       ? ZM_RBAC_PA_MESH
					       : ZM_RBAC_PA_NAMESPACE;
}

/* ---- PeerAuthentication ---- */

/* Indexed by enum zm_mtls_mode: the table order is the enum's. */
static const char *const zm_is_pa_modes[] = {"UNSET", "DISABLE", "PERMISSIVE", "STRICT", NULL};

struct zm_is_mtls {
	int mode;
};

static const struct zm_yl_field zm_is_mtls_fields[] = {
    ZM_YL_E("mode", struct zm_is_mtls, mode, 0, zm_is_pa_modes),
};

struct zm_is_pa {
	struct zm_is_meta *meta;
	struct zm_is_mtls mtls;
	struct zm_rbac_port_mtls *ports;
	size_t n_ports;
	struct zm_cfg_port_list strict, loose; /* port-level STRICT / PERMISSIVE|DISABLE */
	yaml_node_t *ports_node;
};

static int zm_is_pa_mtls(struct zm_yl *yl, yaml_node_t *n, void *obj)
{
	struct zm_is_pa *pa = obj;

	return zm_yl_mapping(yl, n, zm_is_mtls_fields, ZM_YL_N(zm_is_mtls_fields), &pa->mtls);
}

/* One portLevelMtls entry "PORT: {mode: M}"; a port listed twice is refused. */
static int zm_is_pa_port(struct zm_yl *yl, yaml_node_t *k, yaml_node_t *v, void *elem, void *ctx)
{
	struct zm_is_pa *pa = ctx;
	struct zm_is_mtls m = {0};
	__u16 port = 0;
	size_t i;
	int r;

	(void)elem;
	r = zm_yl_port(yl, k, true, &port);
	r = zm_yl_mapping(yl, v, zm_is_mtls_fields, ZM_YL_N(zm_is_mtls_fields), &m) ?: r;
	if (r)
		return r;
	for (i = 0; i < pa->n_ports; i++) {
		if (pa->ports[i].port != port)
			continue;
		zm_yl_error(yl, k, "port %u given twice", port);
		return -EINVAL;
	}
	pa->ports[pa->n_ports++] = (struct zm_rbac_port_mtls){port, (enum zm_mtls_mode)m.mode};
	if (m.mode == ZM_MTLS_STRICT)
		pa->strict.v[pa->strict.n++] = port;
	else if (m.mode != ZM_MTLS_UNSET)
		pa->loose.v[pa->loose.n++] = port;
	return 0;
}

static int zm_is_pa_ports(struct zm_yl *yl, yaml_node_t *n, void *obj)
{
	struct zm_is_pa *pa = obj;
	size_t count = n->type == YAML_MAPPING_NODE
			   ? (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start)
			   : 0;

	pa->ports_node = n;
	pa->ports = zm_config_calloc(yl->cfg, count + 1, sizeof(*pa->ports));
	pa->strict.v = zm_config_calloc(yl->cfg, count + 1, sizeof(__u16));
	pa->loose.v = zm_config_calloc(yl->cfg, count + 1, sizeof(__u16));
	if (!pa->ports || !pa->strict.v || !pa->loose.v)
		return zm_yl_oom(yl);
	return zm_yl_map_each(yl, n, 0, zm_is_pa_port, pa, NULL, NULL);
}

static int zm_is_pa_selector(struct zm_yl *yl, yaml_node_t *n, void *obj)
{
	struct zm_is_pa *pa = obj;

	return zm_is_selector(yl, n, pa->meta);
}

static const struct zm_yl_field zm_is_pa_fields[] = {
    ZM_YL_FUNC("selector", 0, zm_is_pa_selector),
    ZM_YL_FUNC("mtls", 0, zm_is_pa_mtls),
    ZM_YL_FUNC("portLevelMtls", 0, zm_is_pa_ports),
};

/*
 * Every PeerAuthentication document yields a policy, UNSET and DISABLE included: DISABLE
 * changes how sources connect, and which policy is the most specific one matters even when
 * its mode inherits. No rules: modes are resolved per connection (peerauth.c).
 */
static int zm_is_pa_spec(struct zm_yl *yl, yaml_node_t *spec, struct zm_is_meta *m,
			 struct zm_rbac_policy *p)
{
	struct zm_is_pa pa = {.meta = m};
	int r;

	if (spec && !zm_yl_is_null(spec)) {
		r = zm_yl_mapping(yl, spec, zm_is_pa_fields, ZM_YL_N(zm_is_pa_fields), &pa);
		if (r)
			return r;
	}
	if (pa.ports_node && !m->has_selector) {
		zm_yl_error_at(yl, pa.ports_node, "portLevelMtls", "requires a selector");
		return -EINVAL;
	}
	p->action = ZM_CFG_ACTION_DENY;	     /* never matched as a rule set: no rules */
	p->peer_auth = ZM_RBAC_PA_NAMESPACE; /* refined by zm_is_scope */
	p->mtls_mode = (enum zm_mtls_mode)pa.mtls.mode;
	p->port_mtls = pa.ports;
	p->n_port_mtls = pa.n_ports;
	p->strict_ports = pa.strict;
	p->loose_ports = pa.loose;
	return 1;
}

/* ---- documents ---- */

struct zm_is_build {
	struct zm_rbac_policy *v;
	size_t n, cap;
};

static int zm_is_push(struct zm_is_build *b, const struct zm_rbac_policy *p)
{
	struct zm_rbac_policy *nv;

	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 8;
		nv = realloc(b->v, b->cap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		b->v = nv;
	}
	b->v[b->n++] = *p;
	return 0;
}

static int zm_is_key(struct zm_yl *yl, struct zm_rbac_policy *p, const struct zm_is_meta *m)
{
	size_t len = strlen(m->namespace) + strlen(m->name) + 2;
	char *key = zm_config_alloc(yl->cfg, len);

	if (!key)
		return zm_yl_oom(yl);
	snprintf(key, len, "%s/%s", m->namespace, m->name);
	p->key = key;
	p->name = m->name;
	p->namespace = m->namespace;
	return 0;
}

/* One document; appends at most one policy to b. */
static int zm_is_document(struct zm_yl *yl, yaml_node_t *root, struct zm_is_build *b)
{
	struct zm_is_doc d = {.meta = {.namespace = "default"}};
	struct zm_rbac_policy p = {.l7 = "", .source = yl->cfg->source};
	char q[ZM_YL_QUOTE_BUF];
	size_t old, i;
	int r;

	if (root->type != YAML_MAPPING_NODE) {
		zm_yl_error(yl, root, "expected an Istio resource (a mapping), got %s",
			    zm_yl_kind_name(root));
		return -EINVAL;
	}
	r = zm_yl_mapping(yl, root, zm_is_doc_fields, ZM_YL_N(zm_is_doc_fields), &d);
	if (r)
		return r;
	p.line = zm_yl_line(root);
	old = zm_yl_push_field(yl, "spec");
	if (d.kind->type == YAML_SCALAR_NODE &&
	    !strcmp((const char *)d.kind->data.scalar.value, "AuthorizationPolicy")) {
		p.kind = "AuthorizationPolicy";
		r = zm_is_authz_spec(yl, d.spec, &d.meta, &p);
		if (r == ZM_IS_SKIP) {
			zm_yl_pop(yl, old);
			return 0;
		}
		r = r ?: 1;
	} else if (d.kind->type == YAML_SCALAR_NODE &&
		   !strcmp((const char *)d.kind->data.scalar.value, "PeerAuthentication")) {
		p.kind = "PeerAuthentication";
		r = zm_is_pa_spec(yl, d.spec, &d.meta, &p);
	} else {
		zm_yl_pop(yl, old);
		zm_yl_error_at(yl, d.kind, "kind",
			       "unknown kind %s (want AuthorizationPolicy or PeerAuthentication)",
			       zm_yl_quote(d.kind, q, sizeof(q)));
		return -EINVAL;
	}
	zm_yl_pop(yl, old);
	if (r <= 0)
		return r;
	p.dry_run = d.meta.dry_run;
	zm_is_scope(&d.meta, &p);
	r = zm_is_key(yl, &p, &d.meta);
	for (i = 0; !r && i < b->n; i++) {
		if (strcmp(b->v[i].key, p.key) || strcmp(b->v[i].kind, p.kind))
			continue;
		zm_yl_error_at(yl, root, "metadata.name", "%s %s given twice (first at line %u)",
			       p.kind, p.key, b->v[i].line);
		r = -EINVAL;
	}
	return r ?: zm_is_push(b, &p);
}

/* One document of the stream (zm_yl_doc_fn); an empty one is skipped. */
static int zm_is_stream_doc(struct zm_yl *yl, yaml_node_t *root, void *b)
{
	return zm_yl_is_null(root) ? 0 : zm_is_document(yl, root, b);
}

int zm_rbac_load_buf(const char *name, const char *buf, size_t len, struct zm_rbac_set **out,
		     char *err, size_t errlen)
{
	struct zm_is_build b = {0};
	struct zm_cfg_errors errs;
	struct zm_rbac_set *set;
	struct zm_yl yl = {.errs = &errs};
	int ret;

	*out = NULL;
	name = name ? name : "(policies)";
	zm_cfg_errors_init(&errs, name, err, errlen);
	set = calloc(1, sizeof(*set));
	if (!set || !(set->arena = zm_config_new(name))) {
		free(set);
		return -ENOMEM;
	}
	yl.cfg = set->arena;
	ret = zm_yl_load_stream(&yl, buf, len, 0, zm_is_stream_doc, &b);
	if (!ret && errs.count)
		ret = -EINVAL;
	if (!ret && b.n) {
		set->policies = zm_config_calloc(set->arena, b.n, sizeof(*set->policies));
		if (!set->policies)
			ret = -ENOMEM;
		else
			memcpy(set->policies, b.v, b.n * sizeof(*b.v));
		set->n_policies = b.n;
	}
	free(b.v);
	if (ret) {
		if (ret == -ENOMEM && !errs.count)
			zm_cfg_error(&errs, 0, "(root)", "out of memory");
		zm_cfg_errors_finish(&errs);
		zm_rbac_set_free(set);
		return ret;
	}
	*out = set;
	return 0;
}

static int zm_is_load_buf(const char *name, const char *buf, size_t len, void *out, char *err,
			  size_t errlen)
{
	return zm_rbac_load_buf(name, buf, len, out, err, errlen);
}

int zm_rbac_load_file(const char *path, struct zm_rbac_set **out, char *err, size_t errlen)
{
	*out = NULL;
	return zm_yl_load_file(path, zm_is_load_buf, out, err, errlen);
}

void zm_rbac_set_free(struct zm_rbac_set *set)
{
	if (!set)
		return;
	zm_config_free(set->arena);
	free(set);
}
