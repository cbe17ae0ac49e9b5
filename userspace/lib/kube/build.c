// SPDX-License-Identifier: Apache-2.0
/*
 * The store as one config snapshot (config/model.h), the way istiod turns the same objects
 * into ztunnel's workloads and services:
 * - a workload per pod that has not finished: identity from spec.serviceAccountName, addresses
 *   from status.podIPs, all its labels (policy selectors, DestinationRule subsets), Istio's
 *   canonical service and revision, the controller it belongs to; protocol HBONE when it is in
 *   the mesh (istio.io/dataplane-mode=ambient on its namespace or itself, and not "none" on
 *   itself; never for hostNetwork pods), TCP otherwise; Healthy while Ready; a waypoint from
 *   its own istio.io/use-waypoint label;
 * - a service per Service with a cluster IP: VIPs, TCP ports (a named targetPort resolved per
 *   endpoint from the EndpointSlices), a waypoint from istio.io/use-waypoint on the Service or
 *   else its namespace ("none" opts out);
 * - endpoints from EndpointSlices: an endpoint that is ready or still serving becomes its
 *   pod's membership of the service with the slice's port numbers; an address no pod holds
 *   (a Service without selector, a pod not seen yet) becomes a TCP workload of its own.
 * Whatever the API should not allow but might send is settled here and said once in the log:
 * an address held by two pods goes to the running, ready, newest one; a cluster IP held by two
 * services to the first by name; a waypoint naming no Service is not used.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/internal.h"

/* A key -> index entry of the build's lookup arrays. */
struct zm_kb_key {
	const char *ns, *name;
	size_t idx;
};

/* One endpoint membership waiting to become a workload's svc ref. */
struct zm_kb_ref {
	size_t wl, svc;
	struct zm_cfg_port *ports;
	size_t n_ports;
};

/* An address claim by a pod. */
struct zm_kb_claim {
	struct zm_addr addr;
	const struct zm_kube_obj *pod;
	size_t wl;
	bool won;
};

struct zm_kb {
	const struct zm_kube_store *st;
	const struct zm_kube_opts *o;
	struct zm_config *cfg;
	struct zm_kube_log *log;
	struct zm_kb_key *pods, *svcs; /* sorted */
	size_t n_pods, n_svcs, cap_wl;
	struct zm_kb_ref *refs;
	size_t n_refs, cap_refs;
	struct zm_kb_claim *claims; /* sorted by address */
	size_t n_claims;
	size_t first_addr_wl; /* workloads from here on stand for bare endpoint addresses */
	const char **intern;  /* open addressing set of the snapshot's strings */
	size_t n_intern, cap_intern;
};

static int zm_kb_key_cmp(const void *a, const void *b)
{
	const struct zm_kb_key *x = a, *y = b;
	int r = strcmp(x->ns, y->ns);

	return r ? r : strcmp(x->name, y->name);
}

static const struct zm_kb_key *zm_kb_find(const struct zm_kb_key *v, size_t n, const char *ns,
					  const char *name)
{
	struct zm_kb_key k = {ns, name, 0};

	return n ? bsearch(&k, v, n, sizeof(*v), zm_kb_key_cmp) : NULL;
}

static size_t zm_kb_str_hash(const char *s)
{
	size_t h = 5381;

	while (*s)
		h = h * 33 + (unsigned char)*s++;
	return h;
}

static int zm_kb_intern_grow(struct zm_kb *b)
{
	size_t cap = b->cap_intern ? b->cap_intern * 2 : 4096, i, j;
	const char **v = calloc(cap, sizeof(*v));

	if (!v)
		return -ENOMEM;
	for (i = 0; i < b->cap_intern; i++) {
		if (!b->intern[i])
			continue;
		for (j = zm_kb_str_hash(b->intern[i]) & (cap - 1); v[j]; j = (j + 1) & (cap - 1))
			;
		v[j] = b->intern[i];
	}
	free(b->intern);
	b->intern = v;
	b->cap_intern = cap;
	return 0;
}

/*
 * The snapshot's copy of s, one per distinct text: namespaces, nodes, accounts, label keys
 * and values repeat across thousands of pods (measured: a 50,000-pod model is ~25% smaller).
 */
static const char *zm_kb_dup(struct zm_kb *b, const char *s)
{
	size_t j;

	s = s ? s : "";
	if (b->n_intern * 2 >= b->cap_intern && zm_kb_intern_grow(b))
		return NULL;
	for (j = zm_kb_str_hash(s) & (b->cap_intern - 1); b->intern[j];
	     j = (j + 1) & (b->cap_intern - 1))
		if (!strcmp(b->intern[j], s))
			return b->intern[j];
	b->intern[j] = zm_config_strdup(b->cfg, s);
	b->n_intern += b->intern[j] != NULL;
	return b->intern[j];
}

static const struct zm_kube_ns *zm_kb_ns(const struct zm_kb *b, const char *ns)
{
	const struct zm_kube_obj *o = zm_kube_table_get(&b->st->t[ZM_KUBE_NAMESPACES], "", ns);

	return o ? o->rec : NULL;
}

/* Istio's ambient membership from the namespace's and the pod's labels. */
static bool zm_kb_meshed(const struct zm_kube_ns *ns, const struct zm_kube_pod *p)
{
	const char *mode = zm_kube_label_get(p->labels, p->n_labels, ZM_KUBE_LABEL_DATAPLANE);

	if (p->host_network)
		return false; /* shares the node's addresses: nothing to capture */
	if (mode)
		return !strcmp(mode, "ambient");
	return ns && ns->dataplane && !strcmp(ns->dataplane, "ambient");
}

int zm_kube_store_pod_meshed(const struct zm_kube_store *st, const char *ns, const char *name)
{
	const struct zm_kube_obj *po = zm_kube_table_get(&st->t[ZM_KUBE_PODS], ns, name);
	const struct zm_kube_obj *no = zm_kube_table_get(&st->t[ZM_KUBE_NAMESPACES], "", ns);
	const struct zm_kube_pod *p = po ? po->rec : NULL;

	if (!p)
		return -ENOENT;
	if (!no && !zm_kube_label_get(p->labels, p->n_labels, ZM_KUBE_LABEL_DATAPLANE))
		return -EAGAIN;
	return zm_kb_meshed(no ? no->rec : NULL, p);
}

/* "<name>.<ns>.svc.<domain>" in the snapshot. */
static const char *zm_kb_hostname(struct zm_kb *b, const char *ns, const char *name)
{
	char buf[600];

	snprintf(buf, sizeof(buf), "%s.%s.svc.%s", name, ns,
		 b->o->cluster_domain ? b->o->cluster_domain : "cluster.local");
	return zm_kb_dup(b, buf);
}

/*
 * A waypoint named by label value wp (namespace wns, or the object's own ns) as a gateway,
 * when a Service of that name exists; what names it is who for the log.
 */
static int zm_kb_waypoint(struct zm_kb *b, const char *wp, const char *wns, const char *ns,
			  const char *who, struct zm_cfg_gateway *g)
{
	if (!wp || !*wp || !strcmp(wp, "none"))
		return 0;
	wns = wns && *wns ? wns : ns;
	if (!zm_kb_find(b->svcs, b->n_svcs, wns, wp)) {
		zm_kube_logf(b->log,
			     "%s: metadata.labels[" ZM_KUBE_LABEL_WAYPOINT
			     "]: waypoint %s/%s has no "
			     "Service; its traffic goes direct until there is one",
			     who, wns, wp);
		return 0;
	}
	g->present = true;
	g->is_hostname = true;
	g->namespace = zm_kb_dup(b, wns);
	g->hostname = zm_kb_hostname(b, wns, wp);
	g->hbone_mtls_port = ZM_CFG_DEFAULT_HBONE_PORT;
	return g->namespace && g->hostname ? 0 : -ENOMEM;
}

/* Canonical name and revision, Istio's fallbacks. */
static void zm_kb_canonical(struct zm_kb *b, const struct zm_kube_pod *p, struct zm_cfg_workload *w)
{
	static const char *const names[] = {"service.istio.io/canonical-name",
					    "app.kubernetes.io/name", "app"};
	static const char *const revs[] = {"service.istio.io/canonical-revision",
					   "app.kubernetes.io/version", "version"};
	const char *n = NULL, *r = NULL;
	size_t i;

	for (i = 0; i < 3 && !n; i++)
		n = zm_kube_label_get(p->labels, p->n_labels, names[i]);
	for (i = 0; i < 3 && !r; i++)
		r = zm_kube_label_get(p->labels, p->n_labels, revs[i]);
	w->canonical_name = zm_kb_dup(b, n ? n : p->wl_name);
	w->canonical_revision = zm_kb_dup(b, r ? r : "latest");
}

static int zm_kb_labels(struct zm_kb *b, const struct zm_kube_pod *p, struct zm_cfg_workload *w)
{
	size_t i;

	w->labels = zm_config_calloc(b->cfg, p->n_labels, sizeof(*w->labels));
	if (!w->labels)
		return -ENOMEM;
	for (i = 0; i < p->n_labels; i++) {
		w->labels[i].key = zm_kb_dup(b, p->labels[i].key);
		w->labels[i].value = zm_kb_dup(b, p->labels[i].value);
		if (!w->labels[i].key || !w->labels[i].value)
			return -ENOMEM;
	}
	w->n_labels = p->n_labels;
	return 0;
}

static int zm_kb_pod(struct zm_kb *b, const struct zm_kube_obj *o, struct zm_cfg_workload *w)
{
	const struct zm_kube_pod *p = o->rec;
	const struct zm_kube_ns *ns = zm_kb_ns(b, o->ns);
	char uid[600], who[300];

	snprintf(uid, sizeof(uid), "%s//Pod/%s/%s",
		 b->o->cluster_id ? b->o->cluster_id : "Kubernetes", o->ns, o->name);
	w->uid = zm_kb_dup(b, uid);
	w->name = zm_kb_dup(b, o->name);
	w->namespace = zm_kb_dup(b, o->ns);
	w->service_account = zm_kb_dup(b, p->sa);
	w->trust_domain =
	    zm_kb_dup(b, b->o->trust_domain ? b->o->trust_domain : ZM_CFG_DEFAULT_TRUST_DOMAIN);
	w->node = zm_kb_dup(b, p->node);
	w->workload_name = zm_kb_dup(b, p->wl_name);
	w->workload_type = zm_kb_dup(b, p->wl_type);
	zm_kb_canonical(b, p, w);
	w->protocol = zm_kb_meshed(ns, p) ? ZM_CFG_PROTO_HBONE : ZM_CFG_PROTO_TCP;
	w->network_mode = p->host_network ? ZM_CFG_NETMODE_HOST_NETWORK : ZM_CFG_NETMODE_STANDARD;
	w->status = p->ready && !p->deleting ? ZM_CFG_HEALTHY : ZM_CFG_UNHEALTHY;
	w->capacity = 1;
	if (!w->uid || !w->name || !w->namespace || !w->service_account || !w->trust_domain ||
	    !w->node || !w->workload_name || !w->workload_type || !w->canonical_name ||
	    !w->canonical_revision || zm_kb_labels(b, p, w))
		return -ENOMEM;
	snprintf(who, sizeof(who), "Pod %s/%s", o->ns, o->name);
	return zm_kb_waypoint(b, zm_kube_label_get(p->labels, p->n_labels, ZM_KUBE_LABEL_WAYPOINT),
			      zm_kube_label_get(p->labels, p->n_labels, ZM_KUBE_LABEL_WAYPOINT_NS),
			      o->ns, who, &w->waypoint);
}

static int zm_kb_claim_cmp(const void *a, const void *b)
{
	const struct zm_kb_claim *x = a, *y = b;
	const struct zm_kube_pod *px = x->pod->rec, *py = y->pod->rec;
	int r;

	if (x->addr.family != y->addr.family)
		return x->addr.family < y->addr.family ? -1 : 1;
	r = memcmp(x->addr.addr, y->addr.addr, sizeof(x->addr.addr));
	if (r)
		return r;
	/* The best claim first: not being deleted, ready, then the newest. */
	if (px->deleting != py->deleting)
		return px->deleting ? 1 : -1;
	if (px->ready != py->ready)
		return px->ready ? -1 : 1;
	r = strcmp(py->created ? py->created : "", px->created ? px->created : "");
	return r ? r : strcmp(x->pod->name, y->pod->name);
}

/* Who gets each pod address; losers are logged. */
static void zm_kb_settle_claims(struct zm_kb *b)
{
	char a[ZM_ADDR_STRLEN];
	size_t i;

	qsort(b->claims, b->n_claims, sizeof(*b->claims), zm_kb_claim_cmp);
	for (i = 0; i < b->n_claims; i++) {
		const struct zm_kb_claim *w = &b->claims[i - (i > 0)];

		b->claims[i].won = !i || !zm_addr_equal(&w->addr, &b->claims[i].addr);
		if (b->claims[i].won)
			continue;
		while (!w->won)
			w--;
		zm_kube_logf(
		    b->log, "Pod %s/%s: status.podIPs: %s is also Pod %s/%s's; left to that one",
		    b->claims[i].pod->ns, b->claims[i].pod->name,
		    zm_addr_format(&b->claims[i].addr, a, sizeof(a)), w->pod->ns, w->pod->name);
	}
}

/* Pods as workloads (addresses added once the claims are settled). */
static int zm_kb_pods(struct zm_kb *b)
{
	const struct zm_kube_table *t = &b->st->t[ZM_KUBE_PODS];
	const struct zm_kube_obj *o;
	size_t i, j, n = 0, nc = 0;
	int r;

	for (i = 0; i < t->n_buckets; i++)
		for (o = t->buckets[i]; o; o = o->next)
			n += !((struct zm_kube_pod *)o->rec)->terminal;
	b->cap_wl = n + 16;
	b->cfg->workloads = calloc(b->cap_wl, sizeof(*b->cfg->workloads));
	b->pods = calloc(n + 1, sizeof(*b->pods));
	b->claims = calloc(n * ZM_KUBE_MAX_IPS + 1, sizeof(*b->claims));
	if (!b->cfg->workloads || !b->pods || !b->claims)
		return -ENOMEM;
	zm_kube_table_each(t, i, o)
	{
		const struct zm_kube_pod *p = o->rec;

		if (p->terminal)
			continue;
		r = zm_kb_pod(b, o, &b->cfg->workloads[b->cfg->n_workloads]);
		if (r)
			return r;
		b->pods[b->n_pods++] = (struct zm_kb_key){o->ns, o->name, b->cfg->n_workloads};
		for (j = 0; !p->host_network && j < p->n_ips; j++)
			b->claims[nc++] =
			    (struct zm_kb_claim){p->ips[j], o, b->cfg->n_workloads, false};
		b->cfg->n_workloads++;
	}
	b->n_claims = nc;
	qsort(b->pods, b->n_pods, sizeof(*b->pods), zm_kb_key_cmp);
	zm_kb_settle_claims(b);
	return 0;
}

/* Give each workload the addresses it won (host-network pods keep the node's, unindexed). */
static int zm_kb_pod_ips(struct zm_kb *b)
{
	size_t i;

	for (i = 0; i < b->n_claims; i++) {
		struct zm_cfg_workload *w = &b->cfg->workloads[b->claims[i].wl];

		if (!b->claims[i].won)
			continue;
		if (!w->ips &&
		    !(w->ips = zm_config_calloc(b->cfg, ZM_KUBE_MAX_IPS, sizeof(*w->ips))))
			return -ENOMEM;
		w->ips[w->n_ips++].addr = b->claims[i].addr;
	}
	return 0;
}

static struct zm_cfg_workload *zm_kb_new_workload(struct zm_kb *b)
{
	struct zm_cfg_workload *v;

	if (b->cfg->n_workloads == b->cap_wl) {
		v = realloc(b->cfg->workloads, b->cap_wl * 2 * sizeof(*v));
		if (!v)
			return NULL;
		memset(v + b->cap_wl, 0, b->cap_wl * sizeof(*v));
		b->cfg->workloads = v;
		b->cap_wl *= 2;
	}
	return &b->cfg->workloads[b->cfg->n_workloads++];
}

static const char *zm_kb_key_text(struct zm_kb *b, const char *ns, const char *host)
{
	char buf[700];

	snprintf(buf, sizeof(buf), "%s/%s", ns, host);
	return zm_kb_dup(b, buf);
}

static int zm_kb_svc_ports(struct zm_kb *b, const struct zm_kube_svc *k, struct zm_cfg_service *s)
{
	size_t i;

	s->ports = zm_config_calloc(b->cfg, k->n_ports, sizeof(*s->ports));
	if (!s->ports)
		return -ENOMEM;
	for (i = 0; i < k->n_ports; i++)
		s->ports[s->n_ports++] =
		    (struct zm_cfg_port){k->ports[i].port, k->ports[i].target, 0};
	return 0;
}

static int zm_kb_service(struct zm_kb *b, const struct zm_kube_obj *o, struct zm_cfg_service *s)
{
	const struct zm_kube_svc *k = o->rec;
	const struct zm_kube_ns *ns = zm_kb_ns(b, o->ns);
	const char *wp = k->waypoint, *wns = k->waypoint_ns;
	char who[300];
	size_t i;

	s->name = zm_kb_dup(b, o->name);
	s->namespace = zm_kb_dup(b, o->ns);
	s->hostname = zm_kb_hostname(b, o->ns, o->name);
	s->key = s->namespace && s->hostname ? zm_kb_key_text(b, s->namespace, s->hostname) : NULL;
	s->vips = zm_config_calloc(b->cfg, k->n_vips, sizeof(*s->vips));
	if (!s->name || !s->namespace || !s->hostname || !s->key || !s->vips ||
	    zm_kb_svc_ports(b, k, s))
		return -ENOMEM;
	for (i = 0; i < k->n_vips; i++)
		s->vips[s->n_vips++].vip = (struct zm_cfg_net_addr){"", k->vips[i]};
	if (!wp && ns) { /* the namespace's waypoint, unless the Service names one (or none) */
		wp = ns->waypoint;
		wns = ns->waypoint_ns;
	}
	snprintf(who, sizeof(who), "Service %s/%s", o->ns, o->name);
	return zm_kb_waypoint(b, wp, wns, o->ns, who, &s->waypoint);
}

struct zm_kb_vip {
	struct zm_addr addr;
	size_t svc, item;
};

static int zm_kb_vip_cmp(const void *a, const void *b)
{
	const struct zm_kb_vip *x = a, *y = b;
	int r;

	if (x->addr.family != y->addr.family)
		return x->addr.family < y->addr.family ? -1 : 1;
	r = memcmp(x->addr.addr, y->addr.addr, sizeof(x->addr.addr));
	if (r)
		return r;
	return x->svc < y->svc ? -1 : x->svc > y->svc;
}

/* A cluster IP of two services stays with the first by namespace/name. */
static int zm_kb_settle_vips(struct zm_kb *b)
{
	struct zm_cfg_service *sv = b->cfg->services;
	struct zm_kb_vip *v;
	char a[ZM_ADDR_STRLEN];
	size_t i, j, n = 0;

	for (i = 0; i < b->cfg->n_services; i++)
		n += sv[i].n_vips;
	v = calloc(n + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	n = 0;
	for (i = 0; i < b->cfg->n_services; i++)
		for (j = 0; j < sv[i].n_vips; j++)
			v[n++] = (struct zm_kb_vip){sv[i].vips[j].vip.addr, i, j};
	qsort(v, n, sizeof(*v), zm_kb_vip_cmp);
	for (i = 1; i < n; i++) {
		struct zm_cfg_service *s = &sv[v[i].svc];

		if (!zm_addr_equal(&v[i].addr, &v[i - 1].addr))
			continue;
		zm_kube_logf(b->log,
			     "Service %s/%s: spec.clusterIPs: %s is also Service %s/%s's; "
			     "left to that one",
			     s->namespace, s->name, zm_addr_format(&v[i].addr, a, sizeof(a)),
			     sv[v[i - 1].svc].namespace, sv[v[i - 1].svc].name);
		/* Mark it unspecified; dropped below. */
		s->vips[v[i].item].vip.addr.family = 0;
		v[i].svc = v[i - 1].svc;
	}
	free(v);
	for (i = 0; i < b->cfg->n_services; i++) {
		for (j = 0, n = 0; j < sv[i].n_vips; j++)
			if (sv[i].vips[j].vip.addr.family)
				sv[i].vips[n++] = sv[i].vips[j];
		sv[i].n_vips = n;
	}
	return 0;
}

static int zm_kb_services(struct zm_kb *b)
{
	const struct zm_kube_table *t = &b->st->t[ZM_KUBE_SERVICES];
	const struct zm_kube_obj *o;
	size_t i, n = 0;
	int r;

	b->svcs = calloc(t->n + 1, sizeof(*b->svcs));
	if (!b->svcs)
		return -ENOMEM;
	zm_kube_table_each(t, i, o) if (((struct zm_kube_svc *)o->rec)->n_vips) b->svcs[n++] =
	    (struct zm_kb_key){o->ns, o->name, 0};
	qsort(b->svcs, n, sizeof(*b->svcs), zm_kb_key_cmp);
	b->n_svcs = n;
	b->cfg->services = zm_config_calloc(b->cfg, n, sizeof(*b->cfg->services));
	if (!b->cfg->services)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		b->svcs[i].idx = i;
		r = zm_kb_service(b, zm_kube_table_get(t, b->svcs[i].ns, b->svcs[i].name),
				  &b->cfg->services[i]);
		if (r)
			return r;
		b->cfg->n_services++;
	}
	return zm_kb_settle_vips(b);
}

/* The endpoint's port map for service k: each service port to the slice's number by name. */
static struct zm_cfg_port *zm_kb_ep_ports(struct zm_kb *b, const struct zm_kube_svc *k,
					  const struct zm_kube_slice *sl, size_t *n)
{
	struct zm_cfg_port *v = zm_config_calloc(b->cfg, k->n_ports, sizeof(*v));
	size_t i, j;

	*n = 0;
	for (i = 0; v && i < k->n_ports; i++) {
		__u16 target = k->ports[i].target;

		for (j = 0; j < sl->n_ports; j++)
			if (!strcmp(sl->ports[j].name, k->ports[i].name))
				target = sl->ports[j].port;
		if (target)
			v[(*n)++] = (struct zm_cfg_port){k->ports[i].port, target, 0};
	}
	return v;
}

static int zm_kb_ref_push(struct zm_kb *b, size_t wl, size_t svc, struct zm_cfg_port *ports,
			  size_t n)
{
	struct zm_kb_ref *v;

	if (b->n_refs == b->cap_refs) {
		b->cap_refs = b->cap_refs ? b->cap_refs * 2 : 256;
		v = realloc(b->refs, b->cap_refs * sizeof(*v));
		if (!v)
			return -ENOMEM;
		b->refs = v;
	}
	b->refs[b->n_refs++] = (struct zm_kb_ref){wl, svc, ports, n};
	return 0;
}

/* The workload holding addr: a pod that won it, an earlier address workload, or a new one. */
static int zm_kb_addr_workload(struct zm_kb *b, const struct zm_kube_obj *so,
			       const struct zm_kube_ep *ep, const struct zm_addr *addr, size_t *wl)
{
	const struct zm_cfg_workload *have;
	struct zm_cfg_workload *w;
	char a[ZM_ADDR_STRLEN], uid[600];
	size_t i;

	for (i = b->first_addr_wl; i < b->cfg->n_workloads; i++) {
		have = &b->cfg->workloads[i];
		if (have->n_ips && zm_addr_equal(&have->ips[0].addr, addr) &&
		    (have->network_mode == ZM_CFG_NETMODE_STANDARD)) {
			*wl = i;
			return 0;
		}
	}
	w = zm_kb_new_workload(b);
	if (!w)
		return -ENOMEM;
	*wl = b->cfg->n_workloads - 1;
	zm_addr_format(addr, a, sizeof(a));
	snprintf(uid, sizeof(uid), "%s//EndpointSlice/%s/%s/%s",
		 b->o->cluster_id ? b->o->cluster_id : "Kubernetes", so->ns, so->name, a);
	w->uid = zm_kb_dup(b, uid);
	w->name = zm_kb_dup(b, ep->pod ? ep->pod : a);
	w->namespace = zm_kb_dup(b, so->ns);
	w->node = zm_kb_dup(b, ep->node);
	w->workload_name = w->canonical_name =
	    zm_kb_dup(b, ((struct zm_kube_slice *)so->rec)->service);
	w->protocol = ZM_CFG_PROTO_TCP;
	w->status = ep->ready ? ZM_CFG_HEALTHY : ZM_CFG_UNHEALTHY;
	w->capacity = 1;
	w->ips = zm_config_calloc(b->cfg, 1, sizeof(*w->ips));
	if (!w->uid || !w->name || !w->namespace || !w->node || !w->workload_name || !w->ips)
		return -ENOMEM;
	w->ips[0].addr = *addr;
	w->n_ips = 1;
	return 0;
}

/* A claim-winning pod's workload for addr, or SIZE_MAX. */
static size_t zm_kb_claimed(const struct zm_kb *b, const struct zm_addr *addr)
{
	size_t lo = 0, hi = b->n_claims;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct zm_addr *m = &b->claims[mid].addr;
		int r = m->family != addr->family ? (m->family < addr->family ? -1 : 1)
						  : memcmp(m->addr, addr->addr, sizeof(m->addr));

		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < b->n_claims && zm_addr_equal(&b->claims[lo].addr, addr); lo++)
		if (b->claims[lo].won)
			return b->claims[lo].wl;
	return SIZE_MAX;
}

static int zm_kb_slice(struct zm_kb *b, const struct zm_kube_obj *so)
{
	const struct zm_kube_slice *sl = so->rec;
	const struct zm_kb_key *sk =
	    sl->service ? zm_kb_find(b->svcs, b->n_svcs, so->ns, sl->service) : NULL;
	const struct zm_kube_obj *ko;
	const struct zm_kb_key *pk;
	struct zm_cfg_port *ports;
	size_t i, j, n, wl;
	int r = 0;

	if (!sk)
		return 0; /* a headless or unknown Service: no VIP to balance */
	ko = zm_kube_table_get(&b->st->t[ZM_KUBE_SERVICES], so->ns, sl->service);
	for (i = 0; i < sl->n_eps && !r; i++) {
		const struct zm_kube_ep *ep = &sl->eps[i];

		if (!ep->ready && !ep->serving)
			continue;
		ports = zm_kb_ep_ports(b, ko->rec, sl, &n);
		if (!ports)
			return -ENOMEM;
		pk = ep->pod ? zm_kb_find(b->pods, b->n_pods, so->ns, ep->pod) : NULL;
		if (pk) {
			r = zm_kb_ref_push(b, pk->idx, sk->idx, ports, n);
			continue;
		}
		for (j = 0; j < ep->n_addrs && !r; j++) {
			wl = zm_kb_claimed(b, &ep->addrs[j]);
			if (wl == SIZE_MAX)
				r = zm_kb_addr_workload(b, so, ep, &ep->addrs[j], &wl);
			if (!r)
				r = zm_kb_ref_push(b, wl, sk->idx, ports, n);
		}
	}
	return r;
}

static int zm_kb_endpoints(struct zm_kb *b)
{
	const struct zm_kube_table *t = &b->st->t[ZM_KUBE_SLICES];
	const struct zm_kube_obj *o;
	size_t i;
	int r;

	zm_kube_table_each(t, i, o)
	{
		r = zm_kb_slice(b, o);
		if (r)
			return r;
	}
	return 0;
}

static int zm_kb_ref_cmp(const void *a, const void *b)
{
	const struct zm_kb_ref *x = a, *y = b;

	if (x->wl != y->wl)
		return x->wl < y->wl ? -1 : 1;
	return x->svc < y->svc ? -1 : x->svc > y->svc;
}

/* Each workload's services map from the collected memberships (one entry per service). */
static int zm_kb_refs(struct zm_kb *b)
{
	size_t i = 0, j, k, n;

	if (b->n_refs)
		qsort(b->refs, b->n_refs, sizeof(*b->refs), zm_kb_ref_cmp);
	while (i < b->n_refs) {
		struct zm_cfg_workload *w = &b->cfg->workloads[b->refs[i].wl];

		for (j = i; j < b->n_refs && b->refs[j].wl == b->refs[i].wl; j++)
			;
		w->services = zm_config_calloc(b->cfg, j - i, sizeof(*w->services));
		if (!w->services)
			return -ENOMEM;
		for (k = i, n = 0; k < j; k++) {
			const struct zm_cfg_service *s = &b->cfg->services[b->refs[k].svc];
			struct zm_cfg_svc_ref *ref = &w->services[n];

			if (k > i && b->refs[k - 1].svc == b->refs[k].svc)
				continue; /* two slices naming one endpoint: once is enough */
			ref->key = s->key;
			ref->namespace = s->namespace;
			ref->hostname = s->hostname;
			ref->ports = b->refs[k].ports;
			ref->n_ports = b->refs[k].n_ports;
			n++;
		}
		w->n_services = n;
		i = j;
	}
	return 0;
}

int zm_kube_store_build(const struct zm_kube_store *st, const struct zm_kube_opts *o,
			struct zm_config **out, char *log, size_t loglen, char *err, size_t errlen)
{
	struct zm_kube_log l = {log, loglen, 0};
	struct zm_kb b = {.st = st, .o = o, .log = &l};
	struct zm_cfg_workload *wls = NULL;
	struct zm_cfg_errors errs;
	int r = -ENOMEM;

	*out = NULL;
	if (log && loglen)
		log[0] = '\0';
	b.cfg = zm_config_new("kubernetes");
	if (!b.cfg)
		goto out;
	b.cfg->workloads = NULL;
	b.cfg->workloads_empty = true; /* the API's word, even when it lists no pod */
	/* Services first: workloads and services name waypoints by their Service. */
	r = zm_kb_services(&b);
	if (!r)
		r = zm_kb_pods(&b);
	if (!r)
		r = zm_kb_pod_ips(&b);
	b.first_addr_wl = b.cfg->n_workloads;
	if (!r)
		r = zm_kb_endpoints(&b);
	if (!r)
		r = zm_kb_refs(&b);
	/* The workload array moves into the arena: finalize and free see one owner. */
	wls = r ? NULL : zm_config_calloc(b.cfg, b.cfg->n_workloads, sizeof(*wls));
	if (!r && !wls)
		r = -ENOMEM;
	if (!r && b.cfg->n_workloads)
		memcpy(wls, b.cfg->workloads, b.cfg->n_workloads * sizeof(*wls));
	free(b.cfg->workloads);
	b.cfg->workloads = wls;
	if (!r) {
		zm_cfg_errors_init(&errs, "kubernetes", err, errlen);
		r = zm_config_finalize(b.cfg, &errs);
		zm_cfg_errors_finish(&errs);
	}
out:
	if (r == -ENOMEM && err && errlen)
		snprintf(err, errlen, "kubernetes: building the model: out of memory");
	free(b.intern);
	free(b.pods);
	free(b.svcs);
	free(b.refs);
	free(b.claims);
	if (r) {
		zm_config_free(b.cfg);
		return r;
	}
	*out = b.cfg;
	return 0;
}
