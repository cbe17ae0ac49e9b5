// SPDX-License-Identifier: Apache-2.0
/*
 * The waypoint's resources from the API: Istio VirtualServices and DestinationRules, Gateway
 * API HTTPRoutes, GRPCRoutes and Gateways, and (from policy.c's records) AuthorizationPolicies,
 * turned back into the YAML users write so that lib/l7's loader reads an object from the API
 * exactly as it reads a --config file. An object is reduced to apiVersion (the version the
 * collection was read at), kind, metadata name/namespace/labels, and spec: the server's
 * bookkeeping (managedFields, status, uid...) is no part of the user's resource, and the
 * kubectl last-applied annotation alone can be larger than the spec. Gateways of a class other
 * than istio-waypoint (ingress gateways) are not kept. Nothing else is judged here:
 * the waypoint loads each object with lib/l7 and names the broken ones (kube_source.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/internal.h"

void *zm_kube_l7_parse(enum zm_kube_kind k, json_object *o, json_object *meta, const char *ns,
		       const char *name, struct zm_kube_log *log)
{
	json_object *spec = zm_kj_get(o, "spec", json_type_object);
	const char *cls = zm_kj_str(spec, "gatewayClassName");
	struct zm_kube_pol *r;
	json_object *s;

	/* Ingress and other classes' Gateways are not the waypoint's: not kept, nothing said. */
	if (k == ZM_KUBE_GATEWAYS && (!cls || strcmp(cls, "istio-waypoint")))
		return NULL;
	r = calloc(1, sizeof(*r));
	s = zm_kube_pol_slim(k, o, meta, ns, name, false);
	if (r && s) {
		r->created = strdup(zm_kj_str(meta, "creationTimestamp") ?: "");
		r->yaml = zm_kube_json_text(s);
	}
	json_object_put(s);
	if (!r || !r->created || !r->yaml) {
		zm_kube_logf(log, "%s %s/%s: out of memory; the object is skipped",
			     zm_kube_kind_name(k), ns, name);
		zm_kube_pol_free(r);
		return NULL;
	}
	return r;
}

/* Sort key kept beside each document while sorting. */
struct zm_kube_doc_ent {
	const struct zm_kube_obj *o;
	enum zm_kube_kind k;
};

static int zm_kube_doc_ent_cmp(const void *a, const void *b)
{
	const struct zm_kube_doc_ent *x = a, *y = b;
	const struct zm_kube_pol *px = x->o->rec, *py = y->o->rec;
	int r = strcmp(px->created, py->created);

	if (r)
		return r;
	r = strcmp(x->o->ns, y->o->ns);
	if (r)
		return r;
	r = strcmp(x->o->name, y->o->name);
	return r ? r : (int)x->k - (int)y->k;
}

void zm_kube_docs_free(struct zm_kube_doc *v, size_t n)
{
	size_t i;

	for (i = 0; v && i < n; i++) {
		free(v[i].ns);
		free(v[i].name);
		free(v[i].yaml);
	}
	free(v);
}

struct zm_kube_doc *zm_kube_store_docs(const struct zm_kube_store *st, unsigned int mask, size_t *n)
{
	struct zm_kube_doc_ent *e;
	struct zm_kube_doc *v = NULL;
	struct zm_kube_obj *o;
	size_t total = 0, i, b;
	int k;

	*n = 0;
	mask &= ZM_KUBE_KINDS_L7;
	for (k = 0; k < ZM_KUBE_N_KINDS; k++)
		if (mask & (1u << k))
			total += st->t[k].n;
	if (!total) {
		errno = 0;
		return NULL;
	}
	e = calloc(total, sizeof(*e));
	v = calloc(total, sizeof(*v));
	if (!e || !v)
		goto oom;
	for (k = 0; k < ZM_KUBE_N_KINDS; k++)
		if (mask & (1u << k))
			zm_kube_table_each(&st->t[k], b, o) e[(*n)++] =
			    (struct zm_kube_doc_ent){o, (enum zm_kube_kind)k};
	qsort(e, *n, sizeof(*e), zm_kube_doc_ent_cmp);
	for (i = 0; i < *n; i++) {
		const struct zm_kube_pol *p = e[i].o->rec;

		v[i].kind = e[i].k;
		v[i].ns = strdup(e[i].o->ns);
		v[i].name = strdup(e[i].o->name);
		v[i].yaml = strdup(p->l7 ? p->l7 : p->yaml);
		snprintf(v[i].label, sizeof(v[i].label), "%s %s/%s", zm_kube_kind_name(e[i].k),
			 e[i].o->ns, e[i].o->name);
		if (!v[i].ns || !v[i].name || !v[i].yaml)
			goto oom;
	}
	free(e);
	return v;
oom:
	zm_kube_docs_free(v, total);
	free(e);
	*n = 0;
	errno = ENOMEM;
	return NULL;
}
