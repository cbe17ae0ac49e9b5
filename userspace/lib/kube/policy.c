// SPDX-License-Identifier: Apache-2.0
/*
 * Istio's security resources from the API (AuthorizationPolicy, PeerAuthentication) for
 * lib/rbac, which reads them as users write them. An object is reduced to what a user wrote
 * (apiVersion, kind, metadata name/namespace/labels and the istio.io/dry-run annotation, spec;
 * the server's bookkeeping would be refused as unknown fields) and kept as JSON text, which is
 * YAML, so lib/rbac's one reader checks it exactly as it checks a --policy file.
 *
 * Each object is checked alone when it arrives, and the messages name it
 * ("AuthorizationPolicy demo/deny-x:1: spec.rules[0].from: ..."). A broken
 * AuthorizationPolicy fails closed: it is enforced as a DENY of everything in its scope (its
 * selector when that one reads, else its namespace) until it is fixed, since leaving it out
 * could open what it was written to close. A broken PeerAuthentication is left out
 * (PERMISSIVE: mesh traffic stays mTLS, plaintext clients keep working).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/internal.h"
#include "rbac/rbac.h"

/* "security.istio.io/v1" from the kind's collection path "/apis/security.istio.io/v1/...". */
static json_object *zm_kube_api_version(enum zm_kube_kind k)
{
	const char *p = zm_kube_kind_path(k) + strlen("/apis/"), *end = strrchr(p, '/');

	return json_object_new_string_len(p, (int)(end - p));
}

json_object *zm_kube_pol_slim(enum zm_kube_kind k, json_object *o, json_object *meta,
			      const char *ns, const char *name, bool deny_all)
{
	json_object *s = json_object_new_object(), *m = json_object_new_object(), *v;
	json_object *labels = zm_kj_get(meta, "labels", json_type_object);
	json_object *annos = zm_kj_get(meta, "annotations", json_type_object);
	json_object *spec = zm_kj_get(o, "spec", json_type_object), *sel;
	const char *dry = zm_kj_str(annos, "istio.io/dry-run");

	if (!s || !m) {
		json_object_put(s);
		json_object_put(m);
		return NULL;
	}
	json_object_object_add(s, "apiVersion", zm_kube_api_version(k));
	json_object_object_add(s, "kind", json_object_new_string(zm_kube_kind_name(k)));
	json_object_object_add(m, "name", json_object_new_string(name));
	json_object_object_add(m, "namespace", json_object_new_string(ns));
	if (labels && !deny_all)
		json_object_object_add(m, "labels", json_object_get(labels));
	if (dry && !deny_all) {
		v = json_object_new_object();
		json_object_object_add(v, "istio.io/dry-run", json_object_new_string(dry));
		json_object_object_add(m, "annotations", v);
	}
	json_object_object_add(s, "metadata", m);
	if (!deny_all) {
		if (spec)
			json_object_object_add(s, "spec", json_object_get(spec));
		return s;
	}
	v = json_object_new_object();
	sel = zm_kj_get(spec, "selector", json_type_object);
	if (sel)
		json_object_object_add(v, "selector", json_object_get(sel));
	json_object_object_add(v, "action", json_object_new_string("DENY"));
	json_object_object_add(v, "rules", json_object_new_array());
	json_object_array_add(json_object_object_get(v, "rules"), json_object_new_object());
	json_object_object_add(s, "spec", v);
	return s;
}

char *zm_kube_json_text(json_object *s)
{
	return strdup(json_object_to_json_string_ext(s, JSON_C_TO_STRING_SPACED |
							    JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* s's text when lib/rbac accepts it, else NULL with its messages in log. */
static char *zm_kube_pol_check(json_object *s, const char *label, struct zm_kube_log *log)
{
	const char *text = json_object_to_json_string_ext(s, JSON_C_TO_STRING_SPACED |
								 JSON_C_TO_STRING_NOSLASHESCAPE);
	struct zm_rbac_set *set = NULL;
	char err[2048];
	int r = zm_rbac_load_buf(label, text, strlen(text), &set, err, sizeof(err));

	zm_rbac_set_free(set);
	if (!r)
		return strdup(text);
	if (log)
		zm_kube_logf(log, "%s", err);
	return NULL;
}

void *zm_kube_pol_parse(enum zm_kube_kind k, json_object *o, json_object *meta, const char *ns,
			const char *name, struct zm_kube_log *log)
{
	struct zm_kube_pol *r = calloc(1, sizeof(*r));
	char label[600];
	json_object *s;

	if (!r)
		return NULL;
	snprintf(label, sizeof(label), "%s %s/%s", zm_kube_kind_name(k), ns, name);
	r->created = strdup(zm_kj_str(meta, "creationTimestamp") ?: "");
	s = zm_kube_pol_slim(k, o, meta, ns, name, false);
	r->yaml = s ? zm_kube_pol_check(s, label, log) : NULL;
	/* The waypoint judges it with lib/l7, which reads targetRefs and L7 fields itself. */
	if (s && k == ZM_KUBE_AUTHZ && !r->yaml)
		r->l7 = zm_kube_json_text(s);
	json_object_put(s);
	if (!r->yaml && k == ZM_KUBE_AUTHZ) {
		s = zm_kube_pol_slim(k, o, meta, ns, name, true);
		r->yaml = s ? zm_kube_pol_check(s, label, NULL) : NULL;
		json_object_put(s);
		if (!r->yaml) { /* the selector itself is broken: the whole namespace */
			json_object *spec = zm_kj_get(o, "spec", json_type_object);

			if (spec)
				json_object_object_del(spec, "selector");
			s = zm_kube_pol_slim(k, o, meta, ns, name, true);
			r->yaml = s ? zm_kube_pol_check(s, label, NULL) : NULL;
			json_object_put(s);
		}
		if (r->yaml)
			zm_kube_logf(log,
				     "%s: enforced as DENY of everything it selects until it is "
				     "fixed",
				     label);
	} else if (!r->yaml) {
		zm_kube_logf(log, "%s: left out until it is fixed", label);
	}
	if (!r->yaml || !r->created) {
		zm_kube_pol_free(r);
		return NULL;
	}
	return r;
}

void zm_kube_pol_free(void *rec)
{
	struct zm_kube_pol *r = rec;

	if (!r)
		return;
	free(r->created);
	free(r->yaml);
	free(r->l7);
	free(r);
}

struct zm_kube_pol_ent {
	const struct zm_kube_obj *o;
	enum zm_kube_kind k;
};

static int zm_kube_pol_cmp(const void *a, const void *b)
{
	const struct zm_kube_pol_ent *x = a, *y = b;
	const struct zm_kube_pol *px = x->o->rec, *py = y->o->rec;
	int r = strcmp(px->created, py->created);

	if (r)
		return r;
	r = strcmp(x->o->ns, y->o->ns);
	return r ? r : strcmp(x->o->name, y->o->name);
}

char *zm_kube_store_policies(const struct zm_kube_store *st, size_t *n)
{
	size_t total = st->t[ZM_KUBE_AUTHZ].n + st->t[ZM_KUBE_PEERAUTH].n, i, b, len = 1, off = 0;
	struct zm_kube_pol_ent *v = calloc(total ? total : 1, sizeof(*v));
	enum zm_kube_kind kinds[2] = {ZM_KUBE_AUTHZ, ZM_KUBE_PEERAUTH};
	struct zm_kube_obj *o;
	char *out;

	if (!v)
		return NULL;
	*n = 0;
	for (i = 0; i < 2; i++)
		zm_kube_table_each(&st->t[kinds[i]], b, o)
		{
			v[(*n)++] = (struct zm_kube_pol_ent){o, kinds[i]};
			len += strlen(((struct zm_kube_pol *)o->rec)->yaml) + 6;
		}
	qsort(v, *n, sizeof(*v), zm_kube_pol_cmp);
	out = malloc(len);
	if (out) {
		out[0] = '\0';
		for (i = 0; i < *n; i++)
			off += (size_t)sprintf(out + off, "---\n%s\n",
					       ((struct zm_kube_pol *)v[i].o->rec)->yaml);
	}
	free(v);
	return out;
}
