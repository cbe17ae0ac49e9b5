// SPDX-License-Identifier: Apache-2.0
/*
 * The delta ADS state machine (see xds.h). A response is taken in three steps: decode and
 * check every resource on its own (rejects name the resource and field); build a candidate
 * store (held resources with this push's updates and removals) and check that it finalizes
 * into a consistent model, rejecting the push's resources that the errors name (or its
 * removals, when what breaks is an older resource left dangling), a few rounds at most;
 * then swap the candidate in and answer ACK, or NACK listing every rejection. Nothing is
 * half-applied: the held store changes only to a candidate that finalized.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errf.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "internal.h"

/* Rounds of "reject what the model refuses, try again" before refusing a whole push. */
#define XDS_FIX_ROUNDS 4

static void xds_copy(char *dst, size_t len, const char *s)
{
	snprintf(dst, len, "%s", s ? s : "");
}

struct zm_xds *zm_xds_new(const struct zm_xds_node *n)
{
	struct zm_xds *x = calloc(1, sizeof(*x));

	if (!x)
		return NULL;
	pthread_mutex_init(&x->lock, NULL);
	xds_copy(x->ip, sizeof(x->ip), n->ip && *n->ip ? n->ip : "1.1.1.1");
	xds_copy(x->pod, sizeof(x->pod), n->pod_name);
	xds_copy(x->ns, sizeof(x->ns), n->namespace);
	xds_copy(x->node_name, sizeof(x->node_name), n->node_name);
	xds_copy(x->cluster_id, sizeof(x->cluster_id), n->cluster_id);
	snprintf(x->node_id, sizeof(x->node_id), "ztunnel~%s~%s.%s~%s.svc.cluster.local", x->ip,
		 x->pod, x->ns, x->ns);
	x->t[ZM_XDS_ADDRESS].url = ZM_XDS_TYPE_ADDRESS;
	x->t[ZM_XDS_ADDRESS].desc = &istio__workload__address__descriptor;
	x->t[ZM_XDS_AUTHZ].url = ZM_XDS_TYPE_AUTHZ;
	x->t[ZM_XDS_AUTHZ].desc = &istio__security__authorization__descriptor;
	return x;
}

static void xds_res_free(struct xds_res *r)
{
	free(r->name);
	free(r->version);
	if (r->msg)
		protobuf_c_message_free_unpacked(r->msg, NULL);
}

void zm_xds_free(struct zm_xds *x)
{
	if (!x)
		return;
	for (int t = 0; t < ZM_XDS_N_TYPES; t++) {
		for (size_t i = 0; i < x->t[t].n; i++)
			xds_res_free(&x->t[t].v[i]);
		free(x->t[t].v);
		free(x->t[t].last_nack);
	}
	pthread_mutex_destroy(&x->lock);
	free(x);
}

const char *zm_xds_node_id(const struct zm_xds *x)
{
	return x->node_id;
}

int zm_xds_initial_request(struct zm_xds *x, enum zm_xds_type t, uint8_t **out, size_t *len)
{
	return xds_req_initial(x, &x->t[t], out, len);
}

static int xds_res_cmp(const void *a, const void *b)
{
	return strcmp(((const struct xds_res *)a)->name, ((const struct xds_res *)b)->name);
}

static struct xds_res *xds_find(struct xds_res *v, size_t n, const char *name)
{
	struct xds_res key = {.name = (char *)name};

	return n ? bsearch(&key, v, n, sizeof(*v), xds_res_cmp) : NULL;
}

/* ---- one response ---- */

/* The push as decoded: accepted updates (owning their messages) and removals. */
struct xds_push {
	struct xds_res *up;
	bool *up_ok;
	size_t n_up;
	char **rm;
	bool *rm_ok;
	size_t n_rm;
	char *rej; /* "name: field: problem; ..." */
	size_t rej_len, rej_cap;
	unsigned long n_rej;
};

static void xds_reject(struct xds_push *p, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void xds_reject(struct xds_push *p, const char *name, const char *fmt, ...)
{
	char line[768];
	va_list ap;
	int n;

	n = snprintf(line, sizeof(line), "%s%s: ", p->rej_len ? "; " : "", name);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	p->n_rej++;
	n = (int)strlen(line);
	if (p->rej_len + (size_t)n + 1 > p->rej_cap) {
		size_t cap = (p->rej_cap ? p->rej_cap * 2 : 1024) + (size_t)n;
		char *nb = cap <= (1u << 20) ? realloc(p->rej, cap) : NULL;

		if (!nb)
			return; /* counted; the text is capped */
		p->rej = nb;
		p->rej_cap = cap;
	}
	memcpy(p->rej + p->rej_len, line, (size_t)n + 1);
	p->rej_len += (size_t)n;
}

/* Translate one decoded resource into a scratch model: the field-level checks. */
static int xds_check_one(enum zm_xds_type t, const ProtobufCMessage *m, const char *name, char *err,
			 size_t len)
{
	struct zm_config *cfg = zm_config_new("xds");
	union {
		struct zm_cfg_workload w;
		struct zm_cfg_service s;
		struct zm_cfg_policy p;
	} o;
	char key[1024];
	int r;

	if (!cfg)
		return zm_errf(err, len, -ENOMEM, "out of memory");
	memset(&o, 0, sizeof(o));
	if (t == ZM_XDS_AUTHZ) {
		r = xds_tr_policy(cfg, (const void *)m, &o.p, 1, err, len);
	} else {
		const Istio__Workload__Address *a = (const void *)m;

		if (xds_address_key(a, key, sizeof(key)))
			r = zm_errf(err, len, -EINVAL, "type: neither workload nor service");
		else if (strcmp(key, name))
			r = zm_errf(err, len, -EINVAL, "%s: \"%.200s\" is not the resource name",
				    a->type_case == ISTIO__WORKLOAD__ADDRESS__TYPE_WORKLOAD
					? "workload.uid"
					: "service namespace/hostname",
				    key);
		else if (a->type_case == ISTIO__WORKLOAD__ADDRESS__TYPE_WORKLOAD)
			r = xds_tr_workload(cfg, a->workload, &o.w, 1, err, len);
		else
			r = xds_tr_service(cfg, a->service, &o.s, 1, err, len);
	}
	zm_config_free(cfg);
	return r;
}

static void xds_take_resources(struct xds_type *ty, enum zm_xds_type t,
			       const Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *rs,
			       struct xds_push *p)
{
	char err[512];

	for (size_t i = 0; i < rs->n_resources; i++) {
		const Envoy__Service__Discovery__V3__Resource *r = rs->resources[i];
		ProtobufCMessage *m;
		bool dup = false;

		if (!r->name[0]) {
			xds_reject(p, "(unnamed)", "resources[%zu].name: missing", i);
			continue;
		}
		for (size_t j = 0; j < p->n_up && !dup; j++)
			dup = !strcmp(p->up[j].name, r->name);
		if (dup) {
			xds_reject(p, r->name, "sent twice in one response");
			continue;
		}
		if (!r->resource) {
			xds_reject(p, r->name, "resource: missing");
			continue;
		}
		if (strcmp(r->resource->type_url, ty->url)) {
			xds_reject(p, r->name, "resource.type_url: \"%.100s\" in a %s response",
				   r->resource->type_url, ty->url);
			continue;
		}
		m = protobuf_c_message_unpack(ty->desc, NULL, r->resource->value.len,
					      r->resource->value.data);
		if (!m) {
			xds_reject(p, r->name, "resource: does not decode as %s", ty->desc->name);
			continue;
		}
		if (xds_check_one(t, m, r->name, err, sizeof(err))) {
			xds_reject(p, r->name, "%s", err);
			protobuf_c_message_free_unpacked(m, NULL);
			continue;
		}
		p->up[p->n_up] = (struct xds_res){strdup(r->name), strdup(r->version), m};
		if (!p->up[p->n_up].name || !p->up[p->n_up].version) {
			xds_res_free(&p->up[p->n_up]);
			xds_reject(p, r->name, "out of memory");
			continue;
		}
		p->up_ok[p->n_up++] = true;
	}
}

/*
 * The candidate store of type ty: held resources, minus removals, with updates (borrowed
 * pointers: the candidate owns nothing). Sorted by name.
 */
static struct xds_res *xds_candidate(const struct xds_type *ty, const struct xds_push *p, size_t *n)
{
	struct xds_res *v = calloc(ty->n + p->n_up + 1, sizeof(*v));
	size_t k = 0;

	if (!v)
		return NULL;
	for (size_t i = 0; i < ty->n; i++) {
		bool gone = false;

		for (size_t j = 0; j < p->n_rm && !gone; j++)
			gone = p->rm_ok[j] && !strcmp(p->rm[j], ty->v[i].name);
		for (size_t j = 0; j < p->n_up && !gone; j++)
			gone = p->up_ok[j] && !strcmp(p->up[j].name, ty->v[i].name);
		if (!gone)
			v[k++] = ty->v[i];
	}
	for (size_t j = 0; j < p->n_up; j++)
		if (p->up_ok[j])
			v[k++] = p->up[j];
	qsort(v, k, sizeof(*v), xds_res_cmp);
	*n = k;
	return v;
}

/* The text of the finalize error about resource line (1-based) into buf. */
static void xds_err_line(const char *errs, size_t line, char *buf, size_t len)
{
	char tag[32];
	int n = snprintf(tag, sizeof(tag), "xds:%zu: ", line);

	buf[0] = '\0';
	for (const char *p = errs; p && *p;) {
		const char *end = strchr(p, '\n');
		size_t l = end ? (size_t)(end - p) : strlen(p);

		if (!strncmp(p, tag, (size_t)n)) {
			snprintf(buf, len, "%.*s", (int)(l - (size_t)n), p + n);
			return;
		}
		p = end ? end + 1 : NULL;
	}
	snprintf(buf, len, "%.*s", 300, errs);
}

/* Blame the push for the errors: its named resources, else its removals. Returns the count. */
static size_t xds_blame(struct xds_push *p, const struct xds_res *cand, size_t nc, const bool *bad,
			size_t off, const char *errs)
{
	char why[400];
	size_t blamed = 0;

	for (size_t i = 0; i < nc; i++) {
		if (!bad[off + i])
			continue;
		for (size_t j = 0; j < p->n_up; j++)
			if (p->up_ok[j] && p->up[j].msg == cand[i].msg) {
				xds_err_line(errs, off + i + 1, why, sizeof(why));
				xds_reject(p, p->up[j].name, "%s", why);
				p->up_ok[j] = false;
				blamed++;
			}
	}
	if (blamed)
		return blamed;
	for (size_t j = 0; j < p->n_rm; j++)
		if (p->rm_ok[j]) {
			snprintf(why, sizeof(why), "%.300s", errs);
			for (char *c = strchr(why, '\n'); c; c = strchr(c, '\n'))
				*c = ' ';
			xds_reject(p, p->rm[j], "removal refused: without it %s", why);
			p->rm_ok[j] = false;
			blamed++;
		}
	return blamed;
}

/*
 * Find the largest part of the push that finalizes with everything held. Returns 0 with
 * the candidate store of type t in *cand (borrowing), -EINVAL when nothing can be applied,
 * or -ENOMEM.
 */
static int xds_settle(struct zm_xds *x, enum zm_xds_type t, struct xds_push *p,
		      struct xds_res **cand, size_t *nc)
{
	char *errs = malloc(8192);
	int r = -ENOMEM;

	for (int round = 0; errs && round <= XDS_FIX_ROUNDS + 1; round++) {
		const struct xds_type *o =
		    &x->t[t == ZM_XDS_ADDRESS ? ZM_XDS_AUTHZ : ZM_XDS_ADDRESS];
		struct zm_config *cfg;
		bool *bad = NULL;
		size_t off;

		*cand = xds_candidate(&x->t[t], p, nc);
		if (!*cand)
			break;
		if (t == ZM_XDS_ADDRESS)
			r = xds_build_from(*cand, *nc, o->v, o->n, &cfg, &bad, errs, 8192);
		else
			r = xds_build_from(o->v, o->n, *cand, *nc, &cfg, &bad, errs, 8192);
		zm_config_free(cfg);
		if (r != -EINVAL || !bad || round == XDS_FIX_ROUNDS + 1) {
			/* done, out of memory, or even the held store alone fails (-EINVAL) */
			free(bad);
			if (r)
				free(*cand);
			break;
		}
		off = t == ZM_XDS_ADDRESS ? 0 : o->n;
		if (round >= XDS_FIX_ROUNDS || !xds_blame(p, *cand, *nc, bad, off, errs)) {
			/* Nothing of the push to blame, or no end to it: refuse all of it. */
			for (size_t j = 0; j < p->n_up; j++)
				if (p->up_ok[j])
					xds_reject(p, p->up[j].name, "not applied: %.300s", errs);
			memset(p->up_ok, 0, p->n_up * sizeof(bool));
			memset(p->rm_ok, 0, p->n_rm * sizeof(bool));
		}
		free(bad);
		free(*cand);
		r = -ENOMEM;
	}
	free(errs);
	return r;
}

/* Swap the candidate in: free what it replaced or removed and the rejected updates. */
static bool xds_commit(struct xds_type *ty, struct xds_push *p, struct xds_res *cand, size_t nc)
{
	bool changed = false;

	for (size_t i = 0; i < ty->n; i++) {
		bool kept = false;

		for (size_t k = 0; k < nc && !kept; k++)
			kept = cand[k].msg == ty->v[i].msg;
		if (!kept) {
			xds_res_free(&ty->v[i]);
			changed = true;
		}
	}
	for (size_t j = 0; j < p->n_up; j++) {
		if (p->up_ok[j])
			changed = true;
		else
			xds_res_free(&p->up[j]);
	}
	free(ty->v);
	ty->v = cand;
	ty->n = nc;
	return changed;
}

static void xds_account(struct zm_xds *x, struct xds_type *ty, const char *version,
			const char *nonce, struct xds_push *p)
{
	pthread_mutex_lock(&x->lock);
	ty->synced = true;
	if (p->n_rej) {
		ty->nacks++;
		ty->rejected += p->n_rej;
		free(ty->last_nack);
		ty->last_nack = strdup(p->rej ? p->rej : "rejected");
		xds_copy(ty->last_nack_nonce, sizeof(ty->last_nack_nonce), nonce);
	} else {
		ty->acks++;
		xds_copy(ty->acked_version, sizeof(ty->acked_version), version);
		xds_copy(ty->acked_nonce, sizeof(ty->acked_nonce), nonce);
	}
	pthread_mutex_unlock(&x->lock);
}

int zm_xds_handle(struct zm_xds *x, const uint8_t *msg, size_t len, uint8_t **reply,
		  size_t *reply_len, bool *changed, char *log, size_t loglen)
{
	Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *rs;
	struct xds_push p = {0};
	struct xds_res *cand = NULL;
	size_t nc = 0;
	int t, r;

	*changed = false;
	*reply = NULL;
	log[0] = '\0';
	rs = envoy__service__discovery__v3__delta_discovery_response__unpack(NULL, len, msg);
	if (!rs)
		return zm_errf(log, loglen, -EPROTO,
			       "a DeltaDiscoveryResponse that does not decode");
	for (t = 0; t < ZM_XDS_N_TYPES && strcmp(rs->type_url, x->t[t].url); t++)
		;
	if (t == ZM_XDS_N_TYPES) {
		snprintf(log, loglen, "a response of unknown type_url \"%.100s\"", rs->type_url);
		r = xds_req_ack(rs->type_url, rs->nonce, log, reply, reply_len);
		goto out;
	}
	p.up = calloc(rs->n_resources + 1, sizeof(*p.up));
	p.up_ok = calloc(rs->n_resources + 1, sizeof(bool));
	p.rm = rs->removed_resources;
	p.n_rm = rs->n_removed_resources;
	p.rm_ok = calloc(p.n_rm + 1, sizeof(bool));
	r = -ENOMEM;
	if (!p.up || !p.up_ok || !p.rm_ok)
		goto out;
	for (size_t j = 0; j < p.n_rm; j++)
		p.rm_ok[j] = xds_find(x->t[t].v, x->t[t].n, p.rm[j]) != NULL;
	xds_take_resources(&x->t[t], t, rs, &p);
	r = xds_settle(x, t, &p, &cand, &nc);
	if (r == -ENOMEM)
		goto out;
	if (!r) {
		pthread_mutex_lock(&x->lock);
		*changed = xds_commit(&x->t[t], &p, cand, nc);
		pthread_mutex_unlock(&x->lock);
		p.n_up = 0; /* owned by the store now, or freed */
	} else if (!p.n_rej) {
		xds_reject(&p, "(response)", "the held resources no longer form a valid model");
	}
	xds_account(x, &x->t[t], rs->system_version_info, rs->nonce, &p);
	if (p.n_rej)
		snprintf(log, loglen, "%s", p.rej ? p.rej : "rejected");
	r = xds_req_ack(x->t[t].url, rs->nonce, p.n_rej ? (p.rej ? p.rej : "rejected") : NULL,
			reply, reply_len);
out:
	for (size_t j = 0; j < p.n_up; j++)
		xds_res_free(&p.up[j]);
	free(p.up);
	free(p.up_ok);
	free(p.rm_ok);
	free(p.rej);
	envoy__service__discovery__v3__delta_discovery_response__free_unpacked(rs, NULL);
	return r;
}

int zm_xds_build(struct zm_xds *x, struct zm_config **out, char *err, size_t len)
{
	return xds_build_from(x->t[ZM_XDS_ADDRESS].v, x->t[ZM_XDS_ADDRESS].n, x->t[ZM_XDS_AUTHZ].v,
			      x->t[ZM_XDS_AUTHZ].n, out, NULL, err, len);
}

void zm_xds_set_connected(struct zm_xds *x, bool up, const char *why)
{
	pthread_mutex_lock(&x->lock);
	x->connected = up;
	if (up)
		x->streams++;
	else
		xds_copy(x->last_error, sizeof(x->last_error), why);
	pthread_mutex_unlock(&x->lock);
}

void zm_xds_set_address(struct zm_xds *x, const char *addr)
{
	pthread_mutex_lock(&x->lock);
	xds_copy(x->addr, sizeof(x->addr), addr);
	pthread_mutex_unlock(&x->lock);
}

bool zm_xds_synced(struct zm_xds *x)
{
	bool s;

	pthread_mutex_lock(&x->lock);
	s = x->t[ZM_XDS_ADDRESS].synced && x->t[ZM_XDS_AUTHZ].synced;
	pthread_mutex_unlock(&x->lock);
	return s;
}
