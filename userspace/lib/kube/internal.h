/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/kube's private types: the compact record kept per object (only the fields the model
 * needs, never the object's JSON: a Pod's JSON is ~5 KiB, its record ~300 bytes), the store's
 * hash tables, and the JSON readers every object parser shares. Records are immutable once
 * in a table; an update replaces the record whole.
 */
#ifndef ZMESH_KUBE_INTERNAL_H
#define ZMESH_KUBE_INTERNAL_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/addr.h"
#include "kube/kube.h"

#define ZM_KUBE_MAX_IPS	   8
#define ZM_KUBE_MAX_LABELS 64

struct zm_kube_label {
	char *key;
	char *value;
};

struct zm_kube_pod {
	char *uid, *node, *sa, *created; /* created: RFC 3339, sorts as text */
	char *wl_name, *wl_type;	 /* the controller's name and kind, Istio's way */
	struct zm_addr ips[ZM_KUBE_MAX_IPS];
	size_t n_ips;
	struct zm_kube_label *labels;
	size_t n_labels;
	bool host_network, ready, terminal, deleting;
};

struct zm_kube_ns {
	char *dataplane, *waypoint, *waypoint_ns; /* the istio.io labels, NULL when absent */
};

struct zm_kube_svc_port {
	char *name;
	uint16_t port, target; /* target 0: named (target_name) or absent */
	char *target_name;
};

struct zm_kube_svc {
	struct zm_addr vips[ZM_KUBE_MAX_IPS];
	size_t n_vips;
	struct zm_kube_svc_port *ports;
	size_t n_ports;
	char *waypoint, *waypoint_ns;
};

struct zm_kube_slice_port {
	char *name;
	uint16_t port;
};

struct zm_kube_ep {
	struct zm_addr addrs[ZM_KUBE_MAX_IPS];
	size_t n_addrs;
	char *pod;  /* targetRef name when it is a Pod of the slice's namespace, else NULL */
	char *node; /* nodeName, NULL when absent */
	bool ready, serving, terminating;
};

struct zm_kube_slice {
	char *service;
	struct zm_kube_slice_port *ports;
	size_t n_ports;
	struct zm_kube_ep *eps;
	size_t n_eps;
};

struct zm_kube_pol {
	char *created;
	char *yaml; /* the object reduced to apiVersion, kind, metadata, spec (JSON is YAML) */
	char *l7;   /* the same as written, unchecked, for the waypoint (l7.c); NULL: yaml */
};

/* One object in a table. */
struct zm_kube_obj {
	struct zm_kube_obj *next; /* hash chain */
	char *ns, *name;	  /* ns "" for cluster-scoped kinds */
	uint64_t hash;
	void *rec;
};

struct zm_kube_table {
	struct zm_kube_obj **buckets;
	size_t n_buckets, n;
};

struct zm_kube_store {
	struct zm_kube_table t[ZM_KUBE_N_KINDS];
	struct zm_kube_table pending[ZM_KUBE_N_KINDS]; /* a list in progress */
	bool listing[ZM_KUBE_N_KINDS];
	uint64_t serial;
};

/* Tables (store.c). put takes rec (freed with the kind's free on replace or removal). */
struct zm_kube_obj *zm_kube_table_get(const struct zm_kube_table *t, const char *ns,
				      const char *name);
int zm_kube_table_put(struct zm_kube_table *t, enum zm_kube_kind k, const char *ns,
		      const char *name, void *rec);
bool zm_kube_table_del(struct zm_kube_table *t, enum zm_kube_kind k, const char *ns,
		       const char *name);
void zm_kube_table_clear(struct zm_kube_table *t, enum zm_kube_kind k);
/* Every object, in no particular order. */
#define zm_kube_table_each(t, i, o)                                                                \
	for ((i) = 0; (i) < (t)->n_buckets; (i)++)                                                 \
		for ((o) = (t)->buckets[(i)]; (o); (o) = (o)->next)

/* Log lines (a buffer filled one "\n"-terminated line at a time, cut when full). */
struct zm_kube_log {
	char *buf;
	size_t len, used;
};
void zm_kube_logf(struct zm_kube_log *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Objects (object.c): parse kind k's object o into a new record. *ns and *name point into o.
 * A record problem is logged ("Pod demo/web: status.podIPs[1].ip: ..."); returns the record,
 * or NULL when the object cannot be kept at all (no name, wrong kind, out of memory: logged).
 */
void *zm_kube_obj_parse(enum zm_kube_kind k, json_object *o, const char **ns, const char **name,
			struct zm_kube_log *log);
void zm_kube_rec_free(enum zm_kube_kind k, void *rec);
/* The object's kind as its JSON says it should be ("Pod") and whether it is namespaced. */
bool zm_kube_kind_namespaced(enum zm_kube_kind k);

/* The Istio security kinds (policy.c): the record, or NULL (logged) when nothing is kept. */
void *zm_kube_pol_parse(enum zm_kube_kind k, json_object *o, json_object *meta, const char *ns,
			const char *name, struct zm_kube_log *log);
void zm_kube_pol_free(void *rec);
/* The user's part of o as a new object (NULL on ENOMEM): apiVersion, kind, metadata, spec. */
json_object *zm_kube_pol_slim(enum zm_kube_kind k, json_object *o, json_object *meta,
			      const char *ns, const char *name, bool deny_all);
/* s as JSON text (malloc'd; JSON is YAML), NULL on ENOMEM. */
char *zm_kube_json_text(json_object *s);
/* The waypoint's L7 kinds (l7.c): a struct zm_kube_pol whose yaml is the slim object. */
void *zm_kube_l7_parse(enum zm_kube_kind k, json_object *o, json_object *meta, const char *ns,
		       const char *name, struct zm_kube_log *log);

/* JSON readers: member of o, NULL when absent, null or of another type. */
json_object *zm_kj_get(json_object *o, const char *key, json_type type);
const char *zm_kj_str(json_object *o, const char *key);

/* A label value of the records' label lists, NULL when absent. */
const char *zm_kube_label_get(const struct zm_kube_label *v, size_t n, const char *key);

#endif
