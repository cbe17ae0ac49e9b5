// SPDX-License-Identifier: Apache-2.0
/*
 * The store: per kind a hash table of compact records keyed by namespace/name, changed by
 * watch events (ADDED and MODIFIED replace a record whole, DELETED removes it) and replaced
 * whole by a list. A list is collected page by page into a pending table and swapped in only
 * when its last page arrived, so a list cut short (the API server gone, a 410 on a continue
 * token) leaves the last good state in force. Every change bumps a serial the caller watches
 * to know when to rebuild the model. Not thread-safe: the reflector holds its lock around it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/internal.h"

static uint64_t zm_kube_hash(const char *ns, const char *name)
{
	uint64_t h = 1469598103934665603ull;
	const unsigned char *s;

	for (s = (const unsigned char *)ns; *s; s++)
		h = (h ^ *s) * 1099511628211ull;
	h = (h ^ '/') * 1099511628211ull;
	for (s = (const unsigned char *)name; *s; s++)
		h = (h ^ *s) * 1099511628211ull;
	return h;
}

struct zm_kube_obj *zm_kube_table_get(const struct zm_kube_table *t, const char *ns,
				      const char *name)
{
	uint64_t h = zm_kube_hash(ns, name);
	struct zm_kube_obj *o;

	if (!t->n_buckets)
		return NULL;
	for (o = t->buckets[h % t->n_buckets]; o; o = o->next)
		if (o->hash == h && !strcmp(o->name, name) && !strcmp(o->ns, ns))
			return o;
	return NULL;
}

static int zm_kube_table_grow(struct zm_kube_table *t)
{
	size_t n = t->n_buckets ? t->n_buckets * 2 : 64, i;
	struct zm_kube_obj **b = calloc(n, sizeof(*b)), *o, *next;

	if (!b)
		return -ENOMEM;
	for (i = 0; i < t->n_buckets; i++)
		for (o = t->buckets[i]; o; o = next) {
			next = o->next;
			o->next = b[o->hash % n];
			b[o->hash % n] = o;
		}
	free(t->buckets);
	t->buckets = b;
	t->n_buckets = n;
	return 0;
}

int zm_kube_table_put(struct zm_kube_table *t, enum zm_kube_kind k, const char *ns,
		      const char *name, void *rec)
{
	struct zm_kube_obj *o = zm_kube_table_get(t, ns, name);

	if (o) {
		zm_kube_rec_free(k, o->rec);
		o->rec = rec;
		return 0;
	}
	if (t->n >= t->n_buckets && zm_kube_table_grow(t))
		goto oom;
	o = calloc(1, sizeof(*o));
	if (!o)
		goto oom;
	o->ns = strdup(ns);
	o->name = strdup(name);
	if (!o->ns || !o->name) {
		free(o->ns);
		free(o->name);
		free(o);
		goto oom;
	}
	o->hash = zm_kube_hash(ns, name);
	o->rec = rec;
	o->next = t->buckets[o->hash % t->n_buckets];
	t->buckets[o->hash % t->n_buckets] = o;
	t->n++;
	return 0;
oom:
	zm_kube_rec_free(k, rec);
	return -ENOMEM;
}

static void zm_kube_obj_free(enum zm_kube_kind k, struct zm_kube_obj *o)
{
	zm_kube_rec_free(k, o->rec);
	free(o->ns);
	free(o->name);
	free(o);
}

bool zm_kube_table_del(struct zm_kube_table *t, enum zm_kube_kind k, const char *ns,
		       const char *name)
{
	uint64_t h = zm_kube_hash(ns, name);
	struct zm_kube_obj **pp, *o;

	if (!t->n_buckets)
		return false;
	for (pp = &t->buckets[h % t->n_buckets]; (o = *pp); pp = &o->next)
		if (o->hash == h && !strcmp(o->name, name) && !strcmp(o->ns, ns)) {
			*pp = o->next;
			zm_kube_obj_free(k, o);
			t->n--;
			return true;
		}
	return false;
}

void zm_kube_table_clear(struct zm_kube_table *t, enum zm_kube_kind k)
{
	struct zm_kube_obj *o, *next;
	size_t i;

	for (i = 0; i < t->n_buckets; i++)
		for (o = t->buckets[i]; o; o = next) {
			next = o->next;
			zm_kube_obj_free(k, o);
		}
	free(t->buckets);
	memset(t, 0, sizeof(*t));
}

struct zm_kube_store *zm_kube_store_new(void)
{
	return calloc(1, sizeof(struct zm_kube_store));
}

void zm_kube_store_free(struct zm_kube_store *st)
{
	int k;

	if (!st)
		return;
	for (k = 0; k < ZM_KUBE_N_KINDS; k++) {
		zm_kube_table_clear(&st->t[k], k);
		zm_kube_table_clear(&st->pending[k], k);
	}
	free(st);
}

size_t zm_kube_store_count(const struct zm_kube_store *st, enum zm_kube_kind k)
{
	return k < ZM_KUBE_N_KINDS ? st->t[k].n : 0;
}

bool zm_kube_store_has(const struct zm_kube_store *st, enum zm_kube_kind k, const char *ns,
		       const char *name)
{
	return k < ZM_KUBE_N_KINDS && zm_kube_table_get(&st->t[k], ns, name);
}

uint64_t zm_kube_store_serial(const struct zm_kube_store *st)
{
	return st->serial;
}

/* Parse o and put it in t. 0, or -ENOMEM; an object that cannot be kept is logged and
 * removed from t (its old version would be wrong now). */
static int zm_kube_apply_obj(struct zm_kube_table *t, enum zm_kube_kind k, json_object *o,
			     struct zm_kube_log *log)
{
	json_object *meta = zm_kj_get(o, "metadata", json_type_object);
	const char *ns = NULL, *name = NULL;
	void *rec = zm_kube_obj_parse(k, o, &ns, &name, log);

	if (!rec) {
		/* A known object that turned unreadable must not keep its old self. */
		ns = zm_kube_kind_namespaced(k) ? zm_kj_str(meta, "namespace") : "";
		name = zm_kj_str(meta, "name");
		if (ns && name)
			zm_kube_table_del(t, k, ns, name);
		return 0;
	}
	return zm_kube_table_put(t, k, ns, name, rec);
}

static void zm_kube_copy_rv(json_object *o, char *rv)
{
	const char *v = zm_kj_str(zm_kj_get(o, "metadata", json_type_object), "resourceVersion");

	if (rv && v)
		snprintf(rv, ZM_KUBE_RV_LEN, "%s", v);
}

/* An ERROR event's Status: 410 means the history we asked for is gone. */
static enum zm_kube_verdict zm_kube_error_event(enum zm_kube_kind k, json_object *obj,
						struct zm_kube_log *log)
{
	json_object *code = zm_kj_get(obj, "code", json_type_int);
	const char *msg = zm_kj_str(obj, "message");

	if (code && json_object_get_int(code) == 410)
		return ZM_KUBE_GONE;
	zm_kube_logf(log, "watch of %s: the server sent an error: %d %.300s",
		     zm_kube_kind_resource(k), code ? json_object_get_int(code) : 0,
		     msg ? msg : "(no message)");
	return ZM_KUBE_ERROR;
}

enum zm_kube_verdict zm_kube_store_event(struct zm_kube_store *st, enum zm_kube_kind k,
					 const char *line, size_t len, char *rv, char *log,
					 size_t loglen)
{
	struct zm_kube_log l = {log, loglen, 0};
	enum zm_kube_verdict v = ZM_KUBE_GARBAGE;
	struct json_tokener *tok = json_tokener_new_ex(64);
	json_object *ev = NULL, *obj, *meta;
	const char *type = NULL, *ns, *name;
	char q[ZM_CFG_QUOTE_BUF];

	if (log && loglen)
		log[0] = '\0';
	if (!tok || k >= ZM_KUBE_N_KINDS)
		goto out;
	ev = json_tokener_parse_ex(tok, line, (int)len);
	/* One event is one whole JSON object: trailing bytes mean a broken stream. */
	if (!ev || json_tokener_get_error(tok) != json_tokener_success ||
	    (size_t)json_tokener_get_parse_end(tok) < len)
		goto garbage;
	type = zm_kj_str(ev, "type");
	obj = zm_kj_get(ev, "object", json_type_object);
	if (!type || !obj)
		goto garbage;
	if (!strcmp(type, "ERROR")) {
		v = zm_kube_error_event(k, obj, &l);
		goto out;
	}
	zm_kube_copy_rv(obj, rv);
	if (!strcmp(type, "BOOKMARK")) {
		v = ZM_KUBE_BOOKMARK;
	} else if (!strcmp(type, "ADDED") || !strcmp(type, "MODIFIED")) {
		v = zm_kube_apply_obj(&st->t[k], k, obj, &l) ? ZM_KUBE_ERROR : ZM_KUBE_APPLIED;
		st->serial++;
	} else if (!strcmp(type, "DELETED")) {
		meta = zm_kj_get(obj, "metadata", json_type_object);
		ns = zm_kube_kind_namespaced(k) ? zm_kj_str(meta, "namespace") : "";
		name = zm_kj_str(meta, "name");
		v = ns && name && zm_kube_table_del(&st->t[k], k, ns, name) ? ZM_KUBE_APPLIED
									    : ZM_KUBE_UNCHANGED;
		st->serial += v == ZM_KUBE_APPLIED;
	} else {
		zm_kube_logf(&l, "watch of %s: unknown event type \"%.32s\" ignored",
			     zm_kube_kind_resource(k), type);
		v = ZM_KUBE_UNCHANGED;
	}
	goto out;
garbage:
	zm_cfg_quote(line, len, q, sizeof(q));
	zm_kube_logf(&l, "watch of %s: not a watch event (%zu bytes: %s): the stream is broken",
		     zm_kube_kind_resource(k), len, q);
out:
	json_object_put(ev);
	if (tok)
		json_tokener_free(tok);
	return v;
}

int zm_kube_store_list_begin(struct zm_kube_store *st, enum zm_kube_kind k)
{
	zm_kube_table_clear(&st->pending[k], k);
	st->listing[k] = true;
	return 0;
}

int zm_kube_store_list_page(struct zm_kube_store *st, enum zm_kube_kind k, const char *text,
			    size_t len, char *rv, char *cont, char *log, size_t loglen)
{
	struct zm_kube_log l = {log, loglen, 0};
	json_object *list, *items, *meta;
	const char *c;
	size_t i;
	int r = 0;

	if (log && loglen)
		log[0] = '\0';
	cont[0] = '\0';
	list = len <= ZM_KUBE_MAX_BODY ? json_tokener_parse(text) : NULL;
	items = zm_kj_get(list, "items", json_type_array);
	meta = zm_kj_get(list, "metadata", json_type_object);
	/* "items" may be absent or null in an empty list; anything else must be a list. */
	if (!meta || !zm_kj_str(meta, "resourceVersion") ||
	    (!items && json_object_object_get_ex(list, "items", NULL) &&
	     !json_object_is_type(json_object_object_get(list, "items"), json_type_null))) {
		zm_kube_logf(&l, "list of %s: the answer is no list (%zu bytes)",
			     zm_kube_kind_resource(k), len);
		json_object_put(list);
		return -EINVAL;
	}
	for (i = 0; items && i < json_object_array_length(items) && !r; i++)
		r = zm_kube_apply_obj(&st->pending[k], k, json_object_array_get_idx(items, i), &l);
	snprintf(rv, ZM_KUBE_RV_LEN, "%s", zm_kj_str(meta, "resourceVersion") ?: "");
	c = zm_kj_str(meta, "continue");
	snprintf(cont, ZM_KUBE_CONT_LEN, "%s", c ? c : "");
	json_object_put(list);
	return r;
}

void zm_kube_store_list_commit(struct zm_kube_store *st, enum zm_kube_kind k)
{
	zm_kube_table_clear(&st->t[k], k);
	st->t[k] = st->pending[k];
	memset(&st->pending[k], 0, sizeof(st->pending[k]));
	st->listing[k] = false;
	st->serial++;
}

void zm_kube_store_list_abort(struct zm_kube_store *st, enum zm_kube_kind k)
{
	zm_kube_table_clear(&st->pending[k], k);
	st->listing[k] = false;
}

int zm_kube_store_put(struct zm_kube_store *st, enum zm_kube_kind k, const char *text, size_t len,
		      char *log, size_t loglen)
{
	struct zm_kube_log l = {log, loglen, 0};
	json_object *o = len <= ZM_KUBE_MAX_BODY ? json_tokener_parse(text) : NULL;
	int r;

	if (log && loglen)
		log[0] = '\0';
	if (!o || !json_object_is_type(o, json_type_object)) {
		zm_kube_logf(&l, "a %s from the API is not a JSON object", zm_kube_kind_name(k));
		json_object_put(o);
		return -EINVAL;
	}
	r = zm_kube_apply_obj(&st->t[k], k, o, &l);
	st->serial++;
	json_object_put(o);
	return r;
}
