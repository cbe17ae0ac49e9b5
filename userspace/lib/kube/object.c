// SPDX-License-Identifier: Apache-2.0
/*
 * Kubernetes objects to lib/kube's compact records (internal.h): Pods, Namespaces, Services
 * and EndpointSlices here, the Istio security resources in policy.c, the waypoint's L7
 * resources in l7.c. Each parser reads only
 * what the model needs and checks it: a field of the wrong type or value is reported as
 * "Kind ns/name: field.path: problem" and left out (the object is kept without it); an object
 * without a name or namespace cannot be kept at all. Istio's derivations live here too: the
 * controller a pod belongs to (a Deployment through its ReplicaSet, a CronJob through its Job)
 * names its workload.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/internal.h"

struct zm_kube_kind_info {
	const char *kind, *resource, *path;
	bool namespaced;
};

static const struct zm_kube_kind_info zm_kube_kinds[ZM_KUBE_N_KINDS] = {
    [ZM_KUBE_PODS] = {"Pod", "pods", "/api/v1/pods", true},
    [ZM_KUBE_NAMESPACES] = {"Namespace", "namespaces", "/api/v1/namespaces", false},
    [ZM_KUBE_SERVICES] = {"Service", "services", "/api/v1/services", true},
    [ZM_KUBE_SLICES] = {"EndpointSlice", "endpointslices",
			"/apis/discovery.k8s.io/v1/endpointslices", true},
    [ZM_KUBE_AUTHZ] = {"AuthorizationPolicy", "authorizationpolicies",
		       "/apis/security.istio.io/v1/authorizationpolicies", true},
    [ZM_KUBE_PEERAUTH] = {"PeerAuthentication", "peerauthentications",
			  "/apis/security.istio.io/v1/peerauthentications", true},
    [ZM_KUBE_VIRTSVC] = {"VirtualService", "virtualservices",
			 "/apis/networking.istio.io/v1/virtualservices", true},
    [ZM_KUBE_DESTRULE] = {"DestinationRule", "destinationrules",
			  "/apis/networking.istio.io/v1/destinationrules", true},
    [ZM_KUBE_HTTPROUTES] = {"HTTPRoute", "httproutes",
			    "/apis/gateway.networking.k8s.io/v1/httproutes", true},
    [ZM_KUBE_GRPCROUTES] = {"GRPCRoute", "grpcroutes",
			    "/apis/gateway.networking.k8s.io/v1/grpcroutes", true},
    [ZM_KUBE_GATEWAYS] = {"Gateway", "gateways", "/apis/gateway.networking.k8s.io/v1/gateways",
			  true},
};

const char *zm_kube_kind_name(enum zm_kube_kind k)
{
	return k < ZM_KUBE_N_KINDS ? zm_kube_kinds[k].kind : "?";
}

const char *zm_kube_kind_resource(enum zm_kube_kind k)
{
	return k < ZM_KUBE_N_KINDS ? zm_kube_kinds[k].resource : "?";
}

const char *zm_kube_kind_path(enum zm_kube_kind k)
{
	return k < ZM_KUBE_N_KINDS ? zm_kube_kinds[k].path : "/";
}

bool zm_kube_kind_namespaced(enum zm_kube_kind k)
{
	return k < ZM_KUBE_N_KINDS && zm_kube_kinds[k].namespaced;
}

void zm_kube_logf(struct zm_kube_log *l, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!l || !l->buf || l->used + 2 >= l->len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(l->buf + l->used, l->len - l->used - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	l->used += (size_t)n < l->len - l->used - 1 ? (size_t)n : l->len - l->used - 2;
	l->buf[l->used++] = '\n';
	l->buf[l->used] = '\0';
}

json_object *zm_kj_get(json_object *o, const char *key, json_type type)
{
	json_object *v;

	if (!o || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, type))
		return NULL;
	return v;
}

const char *zm_kj_str(json_object *o, const char *key)
{
	json_object *v = zm_kj_get(o, key, json_type_string);

	return v ? json_object_get_string(v) : NULL;
}

const char *zm_kube_label_get(const struct zm_kube_label *v, size_t n, const char *key)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(v[i].key, key))
			return v[i].value;
	return NULL;
}

/* The context of one object's parse: who it is, for messages. */
struct zm_kube_pctx {
	enum zm_kube_kind k;
	const char *ns, *name;
	struct zm_kube_log *log;
	bool oom;
};

static void zm_kube_bad(struct zm_kube_pctx *p, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void zm_kube_bad(struct zm_kube_pctx *p, const char *field, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	zm_kube_logf(p->log, "%s %s%s%s: %s: %s", zm_kube_kind_name(p->k), p->ns ? p->ns : "",
		     p->ns && *p->ns ? "/" : "", p->name ? p->name : "(no name)", field, msg);
}

/* strdup of s (NULL stays NULL), noting ENOMEM in p. */
static char *zm_kube_dup(struct zm_kube_pctx *p, const char *s)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		p->oom = true;
	return d;
}

/* An optional string member: absent is NULL; another type is reported. */
static const char *zm_kube_opt_str(struct zm_kube_pctx *p, json_object *o, const char *key,
				   const char *field)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
		return NULL;
	if (json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	zm_kube_bad(p, field, "not a string (%s); ignored",
		    json_type_to_name(json_object_get_type(v)));
	return NULL;
}

/* An optional boolean: absent gives def. */
static bool zm_kube_opt_bool(struct zm_kube_pctx *p, json_object *o, const char *key,
			     const char *field, bool def)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
		return def;
	if (json_object_is_type(v, json_type_boolean))
		return json_object_get_boolean(v);
	zm_kube_bad(p, field, "not a boolean; taken as %s", def ? "true" : "false");
	return def;
}

/* A port number member (1..65535); 0 when absent or bad (reported). */
static uint16_t zm_kube_port(struct zm_kube_pctx *p, json_object *o, const char *key,
			     const char *field, bool required)
{
	json_object *v;
	int64_t n;

	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null)) {
		if (required)
			zm_kube_bad(p, field, "missing");
		return 0;
	}
	n = json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : -1;
	if (n < 1 || n > 65535) {
		zm_kube_bad(p, field, "not a port number (1..65535)");
		return 0;
	}
	return (uint16_t)n;
}

/* An IP address string into a[*n] (bounded); bad ones reported. */
static void zm_kube_addr(struct zm_kube_pctx *p, json_object *v, const char *field,
			 struct zm_addr *a, size_t *n)
{
	const char *s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
	struct zm_addr x;
	size_t i;

	if (!s || zm_addr_parse(s, &x)) {
		zm_kube_bad(p, field, "%s%s%s is not an IP address; left out", s ? "\"" : "",
			    s ? s : json_type_to_name(json_object_get_type(v)), s ? "\"" : "");
		return;
	}
	for (i = 0; i < *n; i++)
		if (zm_addr_equal(&a[i], &x))
			return;
	if (*n == ZM_KUBE_MAX_IPS) {
		zm_kube_bad(p, field, "more than %d addresses; left out", ZM_KUBE_MAX_IPS);
		return;
	}
	a[(*n)++] = x;
}

/* metadata.labels into a new list; bad values reported and skipped. */
static struct zm_kube_label *zm_kube_labels(struct zm_kube_pctx *p, json_object *meta, size_t *n)
{
	json_object *l = zm_kj_get(meta, "labels", json_type_object);
	struct zm_kube_label *v;
	char field[320];
	size_t cap;

	*n = 0;
	if (!l)
		return NULL;
	cap = (size_t)json_object_object_length(l);
	if (cap > ZM_KUBE_MAX_LABELS)
		cap = ZM_KUBE_MAX_LABELS;
	v = calloc(cap ? cap : 1, sizeof(*v));
	if (!v) {
		p->oom = true;
		return NULL;
	}
	json_object_object_foreach (l, key, val) {
		if (!json_object_is_type(val, json_type_string)) {
			snprintf(field, sizeof(field), "metadata.labels[%.256s]", key);
			zm_kube_bad(p, field, "not a string; ignored");
			continue;
		}
		if (*n == cap) {
			zm_kube_bad(p, "metadata.labels", "more than %d labels; the rest ignored",
				    ZM_KUBE_MAX_LABELS);
			break;
		}
		v[*n].key = zm_kube_dup(p, key);
		v[*n].value = zm_kube_dup(p, json_object_get_string(val));
		(*n)++;
	}
	return v;
}

static void zm_kube_labels_free(struct zm_kube_label *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(v[i].key);
		free(v[i].value);
	}
	free(v);
}

/* Does name end with "-" followed by digits only? Returns the prefix length, or 0. */
static size_t zm_kube_digit_suffix(const char *name)
{
	size_t n = strlen(name), i = n;

	while (i > 0 && isdigit((unsigned char)name[i - 1]))
		i--;
	return i < n && i > 1 && name[i - 1] == '-' ? i - 1 : 0;
}

/*
 * The workload a pod belongs to, as Istio names it: its controller, except that a ReplicaSet
 * made by a Deployment (its name is the Deployment's plus "-<pod-template-hash>") stands for
 * the Deployment and a Job made by a CronJob ("<cronjob>-<digits>") for the CronJob. A pod
 * without a controller is its own workload.
 */
static void zm_kube_pod_workload(struct zm_kube_pctx *p, json_object *meta, struct zm_kube_pod *r)
{
	json_object *owners = zm_kj_get(meta, "ownerReferences", json_type_array);
	const char *kind = NULL, *name = NULL, *hash;
	char buf[320], *s;
	size_t i, n;

	for (i = 0; owners && i < json_object_array_length(owners); i++) {
		json_object *o = json_object_array_get_idx(owners, i);

		if (zm_kj_get(o, "controller", json_type_boolean) &&
		    json_object_get_boolean(zm_kj_get(o, "controller", json_type_boolean)) &&
		    zm_kj_str(o, "kind") && zm_kj_str(o, "name")) {
			kind = zm_kj_str(o, "kind");
			name = zm_kj_str(o, "name");
			break;
		}
	}
	if (!kind) {
		r->wl_type = zm_kube_dup(p, "pod");
		r->wl_name = zm_kube_dup(p, p->name);
		return;
	}
	hash = zm_kube_label_get(r->labels, r->n_labels, "pod-template-hash");
	n = strlen(name);
	if (!strcmp(kind, "ReplicaSet") && hash && *hash && n > strlen(hash) + 1 &&
	    !strcmp(name + n - strlen(hash), hash) && name[n - strlen(hash) - 1] == '-') {
		kind = "Deployment";
		n -= strlen(hash) + 1;
	} else if (!strcmp(kind, "Job") && zm_kube_digit_suffix(name)) {
		kind = "CronJob";
		n = zm_kube_digit_suffix(name);
	}
	snprintf(buf, sizeof(buf), "%s", kind);
	for (s = buf; *s; s++)
		*s = (char)tolower((unsigned char)*s);
	r->wl_type = zm_kube_dup(p, buf);
	r->wl_name = strndup(name, n);
	if (!r->wl_name)
		p->oom = true;
}

static void zm_kube_pod_status(struct zm_kube_pctx *p, json_object *status, struct zm_kube_pod *r)
{
	json_object *ips = zm_kj_get(status, "podIPs", json_type_array), *conds;
	const char *phase = zm_kube_opt_str(p, status, "phase", "status.phase"), *one;
	char field[64];
	size_t i;

	r->terminal = phase && (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed"));
	for (i = 0; ips && i < json_object_array_length(ips); i++) {
		json_object *e = json_object_array_get_idx(ips, i), *ip;

		snprintf(field, sizeof(field), "status.podIPs[%zu].ip", i);
		if (!json_object_object_get_ex(e, "ip", &ip)) {
			zm_kube_bad(p, field, "missing; left out");
			continue;
		}
		zm_kube_addr(p, ip, field, r->ips, &r->n_ips);
	}
	one = zm_kube_opt_str(p, status, "podIP", "status.podIP");
	if (!r->n_ips && one && *one)
		zm_kube_addr(p, json_object_object_get(status, "podIP"), "status.podIP", r->ips,
			     &r->n_ips);
	conds = zm_kj_get(status, "conditions", json_type_array);
	for (i = 0; conds && i < json_object_array_length(conds); i++) {
		json_object *c = json_object_array_get_idx(conds, i);
		const char *t = zm_kj_str(c, "type"), *s = zm_kj_str(c, "status");

		if (t && s && !strcmp(t, "Ready"))
			r->ready = !strcmp(s, "True");
	}
}

static void *zm_kube_pod_parse(struct zm_kube_pctx *p, json_object *o, json_object *meta)
{
	struct zm_kube_pod *r = calloc(1, sizeof(*r));
	json_object *spec = zm_kj_get(o, "spec", json_type_object);
	const char *sa;

	if (!r)
		return NULL;
	r->uid = zm_kube_dup(p, zm_kube_opt_str(p, meta, "uid", "metadata.uid"));
	r->created = zm_kube_dup(
	    p, zm_kube_opt_str(p, meta, "creationTimestamp", "metadata.creationTimestamp"));
	r->deleting = zm_kj_str(meta, "deletionTimestamp") != NULL;
	r->labels = zm_kube_labels(p, meta, &r->n_labels);
	if (!spec)
		zm_kube_bad(p, "spec", "missing or not an object; the pod has no node or identity");
	r->node = zm_kube_dup(p, zm_kube_opt_str(p, spec, "nodeName", "spec.nodeName"));
	sa = zm_kube_opt_str(p, spec, "serviceAccountName", "spec.serviceAccountName");
	if (!sa)
		sa = zm_kube_opt_str(p, spec, "serviceAccount", "spec.serviceAccount");
	/* Kubernetes gives a pod without one the namespace's "default" account. */
	r->sa = zm_kube_dup(p, sa && *sa ? sa : "default");
	r->host_network = zm_kube_opt_bool(p, spec, "hostNetwork", "spec.hostNetwork", false);
	zm_kube_pod_status(p, zm_kj_get(o, "status", json_type_object), r);
	zm_kube_pod_workload(p, meta, r);
	return r;
}

static void zm_kube_pod_free(struct zm_kube_pod *r)
{
	free(r->uid);
	free(r->node);
	free(r->sa);
	free(r->created);
	free(r->wl_name);
	free(r->wl_type);
	zm_kube_labels_free(r->labels, r->n_labels);
	free(r);
}

static void *zm_kube_ns_parse(struct zm_kube_pctx *p, json_object *meta)
{
	struct zm_kube_ns *r = calloc(1, sizeof(*r));
	size_t n;
	struct zm_kube_label *l;

	if (!r)
		return NULL;
	l = zm_kube_labels(p, meta, &n);
	r->dataplane = zm_kube_dup(p, zm_kube_label_get(l, n, ZM_KUBE_LABEL_DATAPLANE));
	r->waypoint = zm_kube_dup(p, zm_kube_label_get(l, n, ZM_KUBE_LABEL_WAYPOINT));
	r->waypoint_ns = zm_kube_dup(p, zm_kube_label_get(l, n, ZM_KUBE_LABEL_WAYPOINT_NS));
	zm_kube_labels_free(l, n);
	return r;
}

static void zm_kube_ns_free(struct zm_kube_ns *r)
{
	free(r->dataplane);
	free(r->waypoint);
	free(r->waypoint_ns);
	free(r);
}

/* spec.ports[i] of a Service; false when the port is left out (not TCP, or bad). */
static bool zm_kube_svc_port(struct zm_kube_pctx *p, json_object *o, size_t i,
			     struct zm_kube_svc_port *sp)
{
	char field[64];
	const char *proto;
	json_object *t;

	snprintf(field, sizeof(field), "spec.ports[%zu].protocol", i);
	proto = zm_kube_opt_str(p, o, "protocol", field);
	if (proto && strcmp(proto, "TCP"))
		return false; /* UDP and SCTP are not the mesh's: quietly not ours */
	snprintf(field, sizeof(field), "spec.ports[%zu].port", i);
	sp->port = zm_kube_port(p, o, "port", field, true);
	if (!sp->port)
		return false;
	snprintf(field, sizeof(field), "spec.ports[%zu].name", i);
	sp->name = zm_kube_dup(p, zm_kube_opt_str(p, o, "name", field) ?: "");
	t = json_object_object_get(o, "targetPort");
	snprintf(field, sizeof(field), "spec.ports[%zu].targetPort", i);
	if (t && json_object_is_type(t, json_type_string))
		sp->target_name = zm_kube_dup(p, json_object_get_string(t));
	else if (t && !json_object_is_type(t, json_type_null))
		sp->target = zm_kube_port(p, o, "targetPort", field, false);
	else
		sp->target = sp->port; /* Kubernetes' default: the same number */
	return true;
}

static void *zm_kube_svc_parse(struct zm_kube_pctx *p, json_object *o, json_object *meta)
{
	struct zm_kube_svc *r = calloc(1, sizeof(*r));
	json_object *spec = zm_kj_get(o, "spec", json_type_object), *ips, *ports;
	const char *type, *one;
	struct zm_kube_label *l;
	char field[64];
	size_t i, n;

	if (!r)
		return NULL;
	l = zm_kube_labels(p, meta, &n);
	r->waypoint = zm_kube_dup(p, zm_kube_label_get(l, n, ZM_KUBE_LABEL_WAYPOINT));
	r->waypoint_ns = zm_kube_dup(p, zm_kube_label_get(l, n, ZM_KUBE_LABEL_WAYPOINT_NS));
	zm_kube_labels_free(l, n);
	if (!spec) {
		zm_kube_bad(p, "spec", "missing or not an object; the service has no address");
		return r;
	}
	type = zm_kube_opt_str(p, spec, "type", "spec.type");
	if (type && !strcmp(type, "ExternalName"))
		return r; /* a DNS alias: no address to capture */
	ips = zm_kj_get(spec, "clusterIPs", json_type_array);
	for (i = 0; ips && i < json_object_array_length(ips); i++) {
		json_object *v = json_object_array_get_idx(ips, i);

		if (json_object_is_type(v, json_type_string) &&
		    !strcmp(json_object_get_string(v), "None"))
			continue; /* headless */
		snprintf(field, sizeof(field), "spec.clusterIPs[%zu]", i);
		zm_kube_addr(p, v, field, r->vips, &r->n_vips);
	}
	one = zm_kube_opt_str(p, spec, "clusterIP", "spec.clusterIP");
	if (!ips && one && *one && strcmp(one, "None"))
		zm_kube_addr(p, json_object_object_get(spec, "clusterIP"), "spec.clusterIP",
			     r->vips, &r->n_vips);
	ports = zm_kj_get(spec, "ports", json_type_array);
	n = ports ? json_object_array_length(ports) : 0;
	r->ports = calloc(n ? n : 1, sizeof(*r->ports));
	if (!r->ports) {
		p->oom = true;
		return r;
	}
	for (i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(ports, i);

		if (!json_object_is_type(e, json_type_object)) {
			snprintf(field, sizeof(field), "spec.ports[%zu]", i);
			zm_kube_bad(p, field, "not an object; left out");
			continue;
		}
		if (zm_kube_svc_port(p, e, i, &r->ports[r->n_ports]))
			r->n_ports++;
		else {
			free(r->ports[r->n_ports].name);
			free(r->ports[r->n_ports].target_name);
			memset(&r->ports[r->n_ports], 0, sizeof(r->ports[0]));
		}
	}
	return r;
}

static void zm_kube_svc_free(struct zm_kube_svc *r)
{
	size_t i;

	for (i = 0; i < r->n_ports; i++) {
		free(r->ports[i].name);
		free(r->ports[i].target_name);
	}
	free(r->ports);
	free(r->waypoint);
	free(r->waypoint_ns);
	free(r);
}

/* EndpointConditions: a null ready means ready, a null serving means "as ready". */
static void zm_kube_ep_conditions(struct zm_kube_pctx *p, json_object *c, const char *base,
				  struct zm_kube_ep *ep)
{
	char field[96];

	snprintf(field, sizeof(field), "%s.conditions.ready", base);
	ep->ready = zm_kube_opt_bool(p, c, "ready", field, true);
	snprintf(field, sizeof(field), "%s.conditions.serving", base);
	ep->serving = zm_kube_opt_bool(p, c, "serving", field, ep->ready);
	snprintf(field, sizeof(field), "%s.conditions.terminating", base);
	ep->terminating = zm_kube_opt_bool(p, c, "terminating", field, false);
}

static void zm_kube_ep_parse(struct zm_kube_pctx *p, json_object *e, size_t i,
			     struct zm_kube_ep *ep)
{
	json_object *addrs = zm_kj_get(e, "addresses", json_type_array), *ref;
	char base[48], field[96];
	const char *kind, *ns;
	size_t j;

	snprintf(base, sizeof(base), "endpoints[%zu]", i);
	if (!addrs) {
		snprintf(field, sizeof(field), "%s.addresses", base);
		zm_kube_bad(p, field, "missing or not a list; the endpoint is left out");
		return;
	}
	for (j = 0; j < json_object_array_length(addrs); j++) {
		snprintf(field, sizeof(field), "%s.addresses[%zu]", base, j);
		zm_kube_addr(p, json_object_array_get_idx(addrs, j), field, ep->addrs,
			     &ep->n_addrs);
	}
	zm_kube_ep_conditions(p, zm_kj_get(e, "conditions", json_type_object), base, ep);
	snprintf(field, sizeof(field), "%s.nodeName", base);
	ep->node = zm_kube_dup(p, zm_kube_opt_str(p, e, "nodeName", field));
	ref = zm_kj_get(e, "targetRef", json_type_object);
	kind = zm_kj_str(ref, "kind");
	ns = zm_kj_str(ref, "namespace");
	if (kind && !strcmp(kind, "Pod") && (!ns || !strcmp(ns, p->ns)))
		ep->pod = zm_kube_dup(p, zm_kj_str(ref, "name"));
}

static void zm_kube_slice_ports(struct zm_kube_pctx *p, json_object *ports, struct zm_kube_slice *r)
{
	size_t i, n = ports ? json_object_array_length(ports) : 0;
	char field[64];

	r->ports = calloc(n ? n : 1, sizeof(*r->ports));
	if (!r->ports) {
		p->oom = true;
		return;
	}
	for (i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(ports, i);
		const char *proto;
		uint16_t port;

		snprintf(field, sizeof(field), "ports[%zu].protocol", i);
		proto = zm_kube_opt_str(p, e, "protocol", field);
		if (proto && strcmp(proto, "TCP"))
			continue;
		snprintf(field, sizeof(field), "ports[%zu].port", i);
		/* A null port means "all ports" (the API's wording): nothing to map. */
		port = json_object_is_type(e, json_type_object)
			   ? zm_kube_port(p, e, "port", field, false)
			   : 0;
		if (!port)
			continue;
		snprintf(field, sizeof(field), "ports[%zu].name", i);
		r->ports[r->n_ports].name =
		    zm_kube_dup(p, zm_kube_opt_str(p, e, "name", field) ?: "");
		r->ports[r->n_ports++].port = port;
	}
}

static void *zm_kube_slice_parse(struct zm_kube_pctx *p, json_object *o, json_object *meta)
{
	struct zm_kube_slice *r = calloc(1, sizeof(*r));
	json_object *eps = zm_kj_get(o, "endpoints", json_type_array);
	const char *at = zm_kube_opt_str(p, o, "addressType", "addressType");
	struct zm_kube_label *l;
	size_t i, n;

	if (!r)
		return NULL;
	l = zm_kube_labels(p, meta, &n);
	r->service = zm_kube_dup(p, zm_kube_label_get(l, n, ZM_KUBE_LABEL_SERVICE_NAME));
	zm_kube_labels_free(l, n);
	if (!r->service)
		return r; /* a slice of no Service (a controller's own): not ours */
	if (at && strcmp(at, "IPv4") && strcmp(at, "IPv6"))
		return r; /* FQDN slices name hosts, not addresses */
	zm_kube_slice_ports(p, zm_kj_get(o, "ports", json_type_array), r);
	n = eps ? json_object_array_length(eps) : 0;
	r->eps = calloc(n ? n : 1, sizeof(*r->eps));
	if (!r->eps) {
		p->oom = true;
		return r;
	}
	for (i = 0; i < n; i++) {
		zm_kube_ep_parse(p, json_object_array_get_idx(eps, i), i, &r->eps[r->n_eps]);
		if (r->eps[r->n_eps].n_addrs)
			r->n_eps++;
		else {
			free(r->eps[r->n_eps].pod);
			free(r->eps[r->n_eps].node);
			memset(&r->eps[r->n_eps], 0, sizeof(r->eps[0]));
		}
	}
	return r;
}

static void zm_kube_slice_free(struct zm_kube_slice *r)
{
	size_t i;

	for (i = 0; i < r->n_ports; i++)
		free(r->ports[i].name);
	for (i = 0; i < r->n_eps; i++) {
		free(r->eps[i].pod);
		free(r->eps[i].node);
	}
	free(r->ports);
	free(r->eps);
	free(r->service);
	free(r);
}

void *zm_kube_obj_parse(enum zm_kube_kind k, json_object *o, const char **ns, const char **name,
			struct zm_kube_log *log)
{
	struct zm_kube_pctx p = {.k = k, .log = log};
	json_object *meta = zm_kj_get(o, "metadata", json_type_object);
	const char *kind = zm_kj_str(o, "kind");
	void *r = NULL;

	p.name = zm_kj_str(meta, "name");
	p.ns = zm_kube_kind_namespaced(k) ? zm_kj_str(meta, "namespace") : "";
	if (kind && strcmp(kind, zm_kube_kind_name(k))) {
		zm_kube_logf(log, "a %.64s in the %s of %s is not ours; skipped", kind,
			     "list or watch", zm_kube_kind_resource(k));
		return NULL;
	}
	if (!p.name || !*p.name || !p.ns || (zm_kube_kind_namespaced(k) && !*p.ns)) {
		zm_kube_bad(&p, !p.name || !*p.name ? "metadata.name" : "metadata.namespace",
			    "missing; the object is skipped");
		return NULL;
	}
	*ns = p.ns;
	*name = p.name;
	switch (k) {
	case ZM_KUBE_PODS:
		r = zm_kube_pod_parse(&p, o, meta);
		break;
	case ZM_KUBE_NAMESPACES:
		r = zm_kube_ns_parse(&p, meta);
		break;
	case ZM_KUBE_SERVICES:
		r = zm_kube_svc_parse(&p, o, meta);
		break;
	case ZM_KUBE_SLICES:
		r = zm_kube_slice_parse(&p, o, meta);
		break;
	case ZM_KUBE_AUTHZ:
	case ZM_KUBE_PEERAUTH:
		return zm_kube_pol_parse(k, o, meta, p.ns, p.name, log);
	case ZM_KUBE_VIRTSVC:
	case ZM_KUBE_DESTRULE:
	case ZM_KUBE_HTTPROUTES:
	case ZM_KUBE_GRPCROUTES:
	case ZM_KUBE_GATEWAYS:
		return zm_kube_l7_parse(k, o, meta, p.ns, p.name, log);
	default:
		return NULL;
	}
	if (r && p.oom) {
		zm_kube_rec_free(k, r);
		r = NULL;
	}
	if (!r)
		zm_kube_bad(&p, "(object)", "out of memory; the object is skipped");
	return r;
}

void zm_kube_rec_free(enum zm_kube_kind k, void *rec)
{
	if (!rec)
		return;
	switch (k) {
	case ZM_KUBE_PODS:
		zm_kube_pod_free(rec);
		break;
	case ZM_KUBE_NAMESPACES:
		zm_kube_ns_free(rec);
		break;
	case ZM_KUBE_SERVICES:
		zm_kube_svc_free(rec);
		break;
	case ZM_KUBE_SLICES:
		zm_kube_slice_free(rec);
		break;
	default:
		zm_kube_pol_free(rec);
		break;
	}
}
