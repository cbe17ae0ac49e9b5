// SPDX-License-Identifier: Apache-2.0
/*
 * The config snapshot's memory, error collector, finalization (defaults, reference resolution,
 * duplicate checks, indexes) and lookups. Everything a snapshot owns lives in one arena of
 * blocks, so a source never has to unwind partial objects on error: it drops the snapshot.
 * Lookups use sorted arrays built once by zm_config_finalize(), searched with bsearch().
 */
#include "config/model.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"

#define ZM_CFG_ARENA_BLOCK (64 * 1024)

struct zm_cfg_arena_block {
	struct zm_cfg_arena_block *next;
	size_t used;
	size_t cap;
	max_align_t data[];
};

/* One indexed address (workload IP or service VIP) and who owns it. */
struct zm_cfg_ip_entry {
	const char *network;
	struct zm_addr addr;
	size_t owner; /* index into workloads[] or services[] */
	size_t item;  /* index into the owner's ips[] or vips[] */
	unsigned int line;
};

/* One indexed string key (uid, service key, policy key) and its owner. */
struct zm_cfg_key_entry {
	const char *key;
	size_t owner;
};

struct zm_cfg_index {
	struct zm_cfg_ip_entry *wl_ips;
	size_t n_wl_ips;
	struct zm_cfg_ip_entry *vips;
	size_t n_vips;
	struct zm_cfg_key_entry *uids;
	struct zm_cfg_key_entry *svc_keys;
	struct zm_cfg_key_entry *pol_keys;
};

void zm_cfg_quote(const void *text, size_t len, char *buf, size_t size)
{
	size_t i, o = 0, lim = len > ZM_CFG_QUOTE_MAX ? ZM_CFG_QUOTE_MAX : len;
	const unsigned char *s = text;

	/* Never cut a UTF-8 sequence in half. */
	while (lim < len && lim > 0 && (s[lim] & 0xc0) == 0x80)
		lim--;
	buf[o++] = '"';
	for (i = 0; i < lim && o + 8 < size; i++) {
		if (s[i] == '"' || s[i] == '\\')
			o += (size_t)snprintf(buf + o, size - o, "\\%c", s[i]);
		else if (s[i] < 0x20 || s[i] == 0x7f)
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", s[i]);
		else
			buf[o++] = (char)s[i];
	}
	if (lim < len)
		o += (size_t)snprintf(buf + o, size - o, "...");
	snprintf(buf + o, size - o, "\"");
}

void zm_cfg_errors_init(struct zm_cfg_errors *e, const char *source, char *buf, size_t len)
{
	memset(e, 0, sizeof(*e));
	e->source = source ? source : "(config)";
	e->buf = buf;
	e->len = buf ? len : 0;
	if (e->len)
		buf[0] = '\0';
}

static void zm_cfg_errors_append(struct zm_cfg_errors *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void zm_cfg_errors_append(struct zm_cfg_errors *e, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (e->used + 1 >= e->len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(e->buf + e->used, e->len - e->used, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	e->used += (size_t)n;
	if (e->used >= e->len)
		e->used = e->len - 1;
}

void zm_cfg_error(struct zm_cfg_errors *e, unsigned int line, const char *path, const char *fmt,
		  ...)
{
	char msg[512];
	va_list ap;

	e->count++;
	if (e->count > ZM_CFG_MAX_ERRORS)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (e->count > 1)
		zm_cfg_errors_append(e, "\n");
	if (line)
		zm_cfg_errors_append(e, "%s:%u: %s: %s", e->source, line, path, msg);
	else
		zm_cfg_errors_append(e, "%s: %s: %s", e->source, path, msg);
}

void zm_cfg_errors_finish(struct zm_cfg_errors *e)
{
	if (e->count > ZM_CFG_MAX_ERRORS)
		zm_cfg_errors_append(e, "\n%s: ... and %u more errors", e->source,
				     e->count - ZM_CFG_MAX_ERRORS);
}

struct zm_config *zm_config_new(const char *source)
{
	struct zm_config *cfg = calloc(1, sizeof(*cfg));

	if (!cfg) {
		errno = ENOMEM;
		return NULL;
	}
	cfg->source = zm_config_strdup(cfg, source ? source : "(config)");
	if (!cfg->source) {
		zm_config_free(cfg);
		errno = ENOMEM;
		return NULL;
	}
	return cfg;
}

void *zm_config_alloc(struct zm_config *cfg, size_t size)
{
	struct zm_cfg_arena_block *b = cfg->arena;
	size_t align = sizeof(max_align_t), need;
	void *p;

	if (size > SIZE_MAX / 2) {
		errno = ENOMEM;
		return NULL;
	}
	need = (size + align - 1) / align * align;
	if (!need)
		need = align;
	if (!b || b->cap - b->used < need) {
		size_t cap = need > ZM_CFG_ARENA_BLOCK ? need : ZM_CFG_ARENA_BLOCK;

		if (cap > ZM_CFG_MAX_MEMORY - cfg->arena_size) {
			errno = ENOMEM;
			return NULL;
		}
		b = calloc(1, sizeof(*b) + cap);
		if (!b) {
			errno = ENOMEM;
			return NULL;
		}
		b->cap = cap;
		cfg->arena_size += cap;
		b->next = cfg->arena;
		cfg->arena = b;
	}
	p = (char *)b->data + b->used;
	b->used += need;
	return p;
}

void *zm_config_calloc(struct zm_config *cfg, size_t n, size_t size)
{
	if (size && n > SIZE_MAX / 2 / size) {
		errno = ENOMEM;
		return NULL;
	}
	return zm_config_alloc(cfg, n * size);
}

const char *zm_config_strndup(struct zm_config *cfg, const char *s, size_t len)
{
	char *p = zm_config_alloc(cfg, len + 1);

	if (!p)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

const char *zm_config_strdup(struct zm_config *cfg, const char *s)
{
	return zm_config_strndup(cfg, s, strlen(s));
}

void zm_config_free(struct zm_config *cfg)
{
	struct zm_cfg_arena_block *b, *next;

	if (!cfg)
		return;
	for (b = cfg->arena; b; b = next) {
		next = b->next;
		free(b);
	}
	free(cfg);
}

static int zm_cfg_ip_cmp_key(const struct zm_cfg_ip_entry *a, const struct zm_cfg_ip_entry *b)
{
	int r = strcmp(a->network, b->network);

	if (r)
		return r;
	if (a->addr.family != b->addr.family)
		return a->addr.family < b->addr.family ? -1 : 1;
	return memcmp(a->addr.addr, b->addr.addr, sizeof(a->addr.addr));
}

/* Sort order: key, then document order, so the first of equal keys is the earliest. */
static int zm_cfg_ip_cmp(const void *pa, const void *pb)
{
	const struct zm_cfg_ip_entry *a = pa, *b = pb;
	int r = zm_cfg_ip_cmp_key(a, b);

	if (r)
		return r;
	if (a->owner != b->owner)
		return a->owner < b->owner ? -1 : 1;
	return a->item < b->item ? -1 : a->item > b->item;
}

static int zm_cfg_key_cmp(const void *pa, const void *pb)
{
	const struct zm_cfg_key_entry *a = pa, *b = pb;
	int r = strcmp(a->key, b->key);

	if (r)
		return r;
	return a->owner < b->owner ? -1 : a->owner > b->owner;
}

static const char *zm_cfg_join(struct zm_config *cfg, const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *p = zm_config_alloc(cfg, la + lb + 2);

	if (!p)
		return NULL;
	memcpy(p, a, la);
	p[la] = '/';
	memcpy(p + la + 1, b, lb + 1);
	return p;
}

#define ZM_CFG_DEFAULT_STR(field) ((field) = (field) ? (field) : "")

static void zm_cfg_gateway_defaults(struct zm_cfg_gateway *g)
{
	ZM_CFG_DEFAULT_STR(g->address.network);
	ZM_CFG_DEFAULT_STR(g->namespace);
	ZM_CFG_DEFAULT_STR(g->hostname);
}

static void zm_cfg_workload_defaults(struct zm_cfg_workload *w)
{
	ZM_CFG_DEFAULT_STR(w->uid);
	ZM_CFG_DEFAULT_STR(w->name);
	ZM_CFG_DEFAULT_STR(w->namespace);
	ZM_CFG_DEFAULT_STR(w->node);
	ZM_CFG_DEFAULT_STR(w->network);
	ZM_CFG_DEFAULT_STR(w->hostname);
	ZM_CFG_DEFAULT_STR(w->cluster_id);
	ZM_CFG_DEFAULT_STR(w->canonical_name);
	ZM_CFG_DEFAULT_STR(w->canonical_revision);
	ZM_CFG_DEFAULT_STR(w->workload_name);
	ZM_CFG_DEFAULT_STR(w->workload_type);
	ZM_CFG_DEFAULT_STR(w->locality.region);
	ZM_CFG_DEFAULT_STR(w->locality.zone);
	ZM_CFG_DEFAULT_STR(w->locality.subzone);
	/* The reference treats an empty account or trust domain as the default one. */
	if (!w->service_account || !*w->service_account)
		w->service_account = ZM_CFG_DEFAULT_SERVICE_ACCOUNT;
	if (!w->trust_domain || !*w->trust_domain)
		w->trust_domain = ZM_CFG_DEFAULT_TRUST_DOMAIN;
	zm_cfg_gateway_defaults(&w->waypoint);
	zm_cfg_gateway_defaults(&w->network_gateway);
}

/* Defaults and derived keys. Returns 0 or -ENOMEM. */
static int zm_cfg_fill_defaults(struct zm_config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->n_workloads; i++)
		zm_cfg_workload_defaults(&cfg->workloads[i]);
	for (i = 0; i < cfg->n_services; i++) {
		struct zm_cfg_service *s = &cfg->services[i];

		ZM_CFG_DEFAULT_STR(s->name);
		ZM_CFG_DEFAULT_STR(s->namespace);
		ZM_CFG_DEFAULT_STR(s->hostname);
		zm_cfg_gateway_defaults(&s->waypoint);
		if (!s->key && !(s->key = zm_cfg_join(cfg, s->namespace, s->hostname)))
			return -ENOMEM;
	}
	for (i = 0; i < cfg->n_policies; i++) {
		struct zm_cfg_policy *p = &cfg->policies[i];

		ZM_CFG_DEFAULT_STR(p->name);
		ZM_CFG_DEFAULT_STR(p->namespace);
		if (!p->key && !(p->key = zm_cfg_join(cfg, p->namespace, p->name)))
			return -ENOMEM;
	}
	return 0;
}

/* Reports every address that repeats an earlier one in the sorted index. */
static void zm_cfg_check_dup_ips(const struct zm_cfg_ip_entry *v, size_t n, const char *what,
				 const char *item, struct zm_cfg_errors *errs)
{
	char path[96], first[96], text[ZM_ADDR_STRLEN], net[ZM_CFG_QUOTE_BUF];
	size_t i, run = 0;

	for (i = 1; i < n; i++) {
		if (zm_cfg_ip_cmp_key(&v[run], &v[i])) {
			run = i;
			continue;
		}
		snprintf(path, sizeof(path), "%s[%zu].%s[%zu]", what, v[i].owner, item, v[i].item);
		snprintf(first, sizeof(first), "%s[%zu].%s[%zu]", what, v[run].owner, item,
			 v[run].item);
		zm_cfg_quote(v[i].network, strlen(v[i].network), net, sizeof(net));
		zm_cfg_error(
		    errs, v[i].line, path, "address %s on network %s already used by %s (line %u)",
		    zm_addr_format(&v[i].addr, text, sizeof(text)), net, first, v[run].line);
	}
}

/* Builds the address indexes; HostNetwork workloads share the node's IPs and are skipped. */
static int zm_cfg_index_ips(struct zm_config *cfg, struct zm_cfg_index *ix)
{
	size_t i, j, n = 0;

	for (i = 0; i < cfg->n_workloads; i++)
		if (cfg->workloads[i].network_mode != ZM_CFG_NETMODE_HOST_NETWORK)
			n += cfg->workloads[i].n_ips;
	ix->wl_ips = zm_config_calloc(cfg, n, sizeof(*ix->wl_ips));
	if (!ix->wl_ips)
		return -ENOMEM;
	for (i = 0; i < cfg->n_workloads; i++) {
		const struct zm_cfg_workload *w = &cfg->workloads[i];

		if (w->network_mode == ZM_CFG_NETMODE_HOST_NETWORK)
			continue;
		for (j = 0; j < w->n_ips; j++)
			ix->wl_ips[ix->n_wl_ips++] = (struct zm_cfg_ip_entry){
			    w->network, w->ips[j].addr, i, j, w->ips[j].line};
	}
	qsort(ix->wl_ips, ix->n_wl_ips, sizeof(*ix->wl_ips), zm_cfg_ip_cmp);

	for (i = 0, n = 0; i < cfg->n_services; i++)
		n += cfg->services[i].n_vips;
	ix->vips = zm_config_calloc(cfg, n, sizeof(*ix->vips));
	if (!ix->vips)
		return -ENOMEM;
	for (i = 0; i < cfg->n_services; i++) {
		const struct zm_cfg_service *s = &cfg->services[i];

		for (j = 0; j < s->n_vips; j++)
			ix->vips[ix->n_vips++] = (struct zm_cfg_ip_entry){
			    s->vips[j].vip.network ? s->vips[j].vip.network : "",
			    s->vips[j].vip.addr, i, j, s->vips[j].line};
	}
	qsort(ix->vips, ix->n_vips, sizeof(*ix->vips), zm_cfg_ip_cmp);
	return 0;
}

/* Builds a sorted key index and reports repeated keys. */
static struct zm_cfg_key_entry *
zm_cfg_index_keys(struct zm_config *cfg, size_t n,
		  const char *(*key_of)(struct zm_config *, size_t),
		  unsigned int (*line_of)(struct zm_config *, size_t), const char *what,
		  const char *field, const char *noun, struct zm_cfg_errors *errs)
{
	struct zm_cfg_key_entry *v = zm_config_calloc(cfg, n, sizeof(*v));
	char path[96], q[ZM_CFG_QUOTE_BUF];
	size_t i, run = 0;

	if (!v)
		return NULL;
	for (i = 0; i < n; i++)
		v[i] = (struct zm_cfg_key_entry){key_of(cfg, i), i};
	qsort(v, n, sizeof(*v), zm_cfg_key_cmp);
	for (i = 1; i < n; i++) {
		if (strcmp(v[run].key, v[i].key)) {
			run = i;
			continue;
		}
		snprintf(path, sizeof(path), "%s[%zu]%s", what, v[i].owner, field);
		zm_cfg_quote(v[i].key, strlen(v[i].key), q, sizeof(q));
		zm_cfg_error(errs, line_of(cfg, v[i].owner), path,
			     "duplicate %s %s (first defined by %s[%zu], line %u)", noun, q, what,
			     v[run].owner, line_of(cfg, v[run].owner));
	}
	return v;
}

static const char *zm_cfg_wl_uid(struct zm_config *c, size_t i)
{
	return c->workloads[i].uid;
}

static unsigned int zm_cfg_wl_uid_line(struct zm_config *c, size_t i)
{
	return c->workloads[i].uid_line ? c->workloads[i].uid_line : c->workloads[i].line;
}

static const char *zm_cfg_svc_key(struct zm_config *c, size_t i)
{
	return c->services[i].key;
}

static unsigned int zm_cfg_svc_line(struct zm_config *c, size_t i)
{
	return c->services[i].line;
}

static const char *zm_cfg_pol_key(struct zm_config *c, size_t i)
{
	return c->policies[i].key;
}

static unsigned int zm_cfg_pol_line(struct zm_config *c, size_t i)
{
	return c->policies[i].line;
}

static const struct zm_cfg_key_entry *zm_cfg_key_find(const struct zm_cfg_key_entry *v, size_t n,
						      const char *key)
{
	size_t lo = 0, hi = n;

	/* Lower bound, so duplicates (refused anyway) resolve to the first definition. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(v[mid].key, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && !strcmp(v[lo].key, key) ? &v[lo] : NULL;
}

static void zm_cfg_resolve_gateway(struct zm_config *cfg, struct zm_cfg_gateway *g,
				   const char *path, struct zm_cfg_errors *errs)
{
	const struct zm_cfg_key_entry *k;
	char q[ZM_CFG_QUOTE_BUF];
	const char *key;

	if (!g->present || !g->is_hostname)
		return;
	key = zm_cfg_join(cfg, g->namespace, g->hostname);
	if (!key)
		return; /* out of memory: unresolved, the caller's allocation fails too */
	k = zm_cfg_key_find(cfg->index->svc_keys, cfg->n_services, key);
	if (k) {
		g->service = &cfg->services[k->owner];
		return;
	}
	zm_cfg_quote(key, strlen(key), q, sizeof(q));
	zm_cfg_error(errs, g->line, path, "unknown service %s", q);
}

/* Resolves a workload's services, policies and waypoint; reports dangling names. */
static void zm_cfg_resolve_workload(struct zm_config *cfg, size_t i, struct zm_cfg_errors *errs)
{
	struct zm_cfg_workload *w = &cfg->workloads[i];
	const struct zm_cfg_index *ix = cfg->index;
	const struct zm_cfg_key_entry *k;
	char path[160 + ZM_CFG_QUOTE_BUF], q[ZM_CFG_QUOTE_BUF];
	size_t j;

	for (j = 0; j < w->n_services; j++) {
		struct zm_cfg_svc_ref *r = &w->services[j];

		k = zm_cfg_key_find(ix->svc_keys, cfg->n_services, r->key);
		if (k) {
			r->service = &cfg->services[k->owner];
			continue;
		}
		if (cfg->lenient_refs)
			continue;
		zm_cfg_quote(r->key, strlen(r->key), q, sizeof(q));
		snprintf(path, sizeof(path), "workloads[%zu].services[%s]", i, q);
		zm_cfg_error(errs, r->line, path, "unknown service %s", q);
	}
	for (j = 0; j < w->n_policies; j++) {
		struct zm_cfg_policy_ref *r = &w->policies[j];

		k = zm_cfg_key_find(ix->pol_keys, cfg->n_policies, r->key);
		if (k) {
			r->policy = &cfg->policies[k->owner];
			continue;
		}
		if (cfg->lenient_refs)
			continue;
		zm_cfg_quote(r->key, strlen(r->key), q, sizeof(q));
		snprintf(path, sizeof(path), "workloads[%zu].authorizationPolicies[%zu]", i, j);
		zm_cfg_error(errs, r->line, path, "unknown policy %s", q);
	}
	snprintf(path, sizeof(path), "workloads[%zu].waypoint.destination", i);
	zm_cfg_resolve_gateway(cfg, &w->waypoint, path, errs);
	snprintf(path, sizeof(path), "workloads[%zu].networkGateway.destination", i);
	zm_cfg_resolve_gateway(cfg, &w->network_gateway, path, errs);
}

int zm_config_finalize(struct zm_config *cfg, struct zm_cfg_errors *errs)
{
	unsigned int before = errs->count;
	struct zm_cfg_index *ix;
	char path[64];
	size_t i;

	if (zm_cfg_fill_defaults(cfg))
		return -ENOMEM;
	ix = zm_config_alloc(cfg, sizeof(*ix));
	if (!ix)
		return -ENOMEM;
	cfg->index = ix;
	ix->uids = zm_cfg_index_keys(cfg, cfg->n_workloads, zm_cfg_wl_uid, zm_cfg_wl_uid_line,
				     "workloads", ".uid", "uid", errs);
	ix->svc_keys = zm_cfg_index_keys(cfg, cfg->n_services, zm_cfg_svc_key, zm_cfg_svc_line,
					 "services", "", "service", errs);
	ix->pol_keys = zm_cfg_index_keys(cfg, cfg->n_policies, zm_cfg_pol_key, zm_cfg_pol_line,
					 "policies", "", "policy", errs);
	if (!ix->uids || !ix->svc_keys || !ix->pol_keys || zm_cfg_index_ips(cfg, ix))
		return -ENOMEM;
	zm_cfg_check_dup_ips(ix->wl_ips, ix->n_wl_ips, "workloads", "workloadIps", errs);
	zm_cfg_check_dup_ips(ix->vips, ix->n_vips, "services", "vips", errs);
	for (i = 0; i < cfg->n_workloads; i++)
		zm_cfg_resolve_workload(cfg, i, errs);
	for (i = 0; i < cfg->n_services; i++) {
		snprintf(path, sizeof(path), "services[%zu].waypoint.destination", i);
		zm_cfg_resolve_gateway(cfg, &cfg->services[i].waypoint, path, errs);
	}
	return errs->count != before ? -EINVAL : 0;
}

static const struct zm_cfg_ip_entry *zm_cfg_ip_find(const struct zm_cfg_ip_entry *v, size_t n,
						    const char *network, const struct zm_addr *addr)
{
	struct zm_cfg_ip_entry want = {.network = network ? network : "", .addr = *addr};
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (zm_cfg_ip_cmp_key(&v[mid], &want) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && !zm_cfg_ip_cmp_key(&v[lo], &want) ? &v[lo] : NULL;
}

const struct zm_cfg_workload *zm_config_workload_by_ip(const struct zm_config *cfg,
						       const char *network,
						       const struct zm_addr *addr)
{
	const struct zm_cfg_ip_entry *e;

	if (!cfg || !cfg->index || !addr)
		return NULL;
	e = zm_cfg_ip_find(cfg->index->wl_ips, cfg->index->n_wl_ips, network, addr);
	return e ? &cfg->workloads[e->owner] : NULL;
}

const struct zm_cfg_workload *zm_config_workload_by_uid(const struct zm_config *cfg,
							const char *uid)
{
	const struct zm_cfg_key_entry *k;

	if (!cfg || !cfg->index || !uid)
		return NULL;
	k = zm_cfg_key_find(cfg->index->uids, cfg->n_workloads, uid);
	return k ? &cfg->workloads[k->owner] : NULL;
}

const struct zm_cfg_service *zm_config_service_by_vip(const struct zm_config *cfg,
						      const char *network,
						      const struct zm_addr *addr)
{
	const struct zm_cfg_ip_entry *e;

	if (!cfg || !cfg->index || !addr)
		return NULL;
	e = zm_cfg_ip_find(cfg->index->vips, cfg->index->n_vips, network, addr);
	return e ? &cfg->services[e->owner] : NULL;
}

const struct zm_cfg_service *zm_config_service_by_key(const struct zm_config *cfg, const char *key)
{
	const struct zm_cfg_key_entry *k;

	if (!cfg || !cfg->index || !key)
		return NULL;
	k = zm_cfg_key_find(cfg->index->svc_keys, cfg->n_services, key);
	return k ? &cfg->services[k->owner] : NULL;
}

const struct zm_cfg_policy *zm_config_policy_by_key(const struct zm_config *cfg, const char *key)
{
	const struct zm_cfg_key_entry *k;

	if (!cfg || !cfg->index || !key)
		return NULL;
	k = zm_cfg_key_find(cfg->index->pol_keys, cfg->n_policies, key);
	return k ? &cfg->policies[k->owner] : NULL;
}

int zm_cfg_workload_identity(const struct zm_cfg_workload *wl, char *buf, size_t len)
{
	int n = snprintf(buf, len, "spiffe://%s/ns/%s/sa/%s", wl->trust_domain, wl->namespace,
			 wl->service_account);

	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

const char *zm_cfg_protocol_name(enum zm_cfg_protocol p)
{
	return p == ZM_CFG_PROTO_HBONE ? "HBONE" : "TCP";
}

const char *zm_cfg_scope_name(enum zm_cfg_scope s)
{
	switch (s) {
	case ZM_CFG_SCOPE_GLOBAL:
		return "Global";
	case ZM_CFG_SCOPE_NAMESPACE:
		return "Namespace";
	case ZM_CFG_SCOPE_WORKLOAD_SELECTOR:
		return "WorkloadSelector";
	}
	return "?";
}

const char *zm_cfg_action_name(enum zm_cfg_action a)
{
	return a == ZM_CFG_ACTION_DENY ? "Deny" : "Allow";
}
