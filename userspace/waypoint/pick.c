// SPDX-License-Identifier: Apache-2.0
/*
 * Endpoint choice for every kind of stream: the cluster (service and port, or the route's
 * destination host, port and subset), its endpoints (subset labels), the ejected outliers
 * left out while any other endpoint is left (Envoy's panic mode routes to all), then the
 * DestinationRule's load balancer: ROUND_ROBIN, RANDOM, or LEAST_REQUEST (Istio's default:
 * the less busy of two random picks). The counters behind these decisions are the process's,
 * not a worker's, so an endpoint failing on one worker is ejected for all of them.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "pick.h"

static unsigned int wp_hash(const char *s)
{
	unsigned int h = 5381;

	for (; *s; s++)
		h = h * 33 + (unsigned char)*s;
	return h;
}

/*
 * The slot for key in an open-addressed table of n slots of size bytes, each starting with
 * the used flag and the key. Claimed under the lock, read without it: the key is written
 * before used is set (release) and compared only after used was read (acquire).
 */
static void *wp_slot(struct wp_stats *st, void *base, size_t size, const char *key)
{
	unsigned int h = wp_hash(key), i;
	void *hit = NULL;

	for (i = 0; i < WP_EP_SLOTS; i++) {
		char *s = (char *)base + ((h + i) % WP_EP_SLOTS) * size;
		atomic_bool *used = (atomic_bool *)s;
		const char *k = s + offsetof(struct wp_ep_stat, key);

		if (!atomic_load_explicit(used, memory_order_acquire))
			break;
		if (!strcmp(k, key))
			return s;
	}
	pthread_mutex_lock(&st->lock);
	for (i = 0; i < WP_EP_SLOTS && !hit; i++) {
		char *s = (char *)base + ((h + i) % WP_EP_SLOTS) * size;
		atomic_bool *used = (atomic_bool *)s;
		char *k = s + offsetof(struct wp_ep_stat, key);

		if (!atomic_load_explicit(used, memory_order_acquire)) {
			snprintf(k, WP_STAT_KEY, "%s", key);
			atomic_store_explicit(used, true, memory_order_release);
			hit = s;
		} else if (!strcmp(k, key)) {
			hit = s;
		}
	}
	pthread_mutex_unlock(&st->lock);
	/* Full: share a slot. Counters only ever steer choices, never correctness. */
	return hit ? hit : (char *)base + (h % WP_EP_SLOTS) * size;
}

_Static_assert(offsetof(struct wp_ep_stat, key) == offsetof(struct wp_cl_stat, key),
	       "stat slots share their head");

struct wp_ep_stat *wp_ep_stat(struct wp *wp, const char *key)
{
	return wp_slot(wp->stats, wp->stats->eps, sizeof(wp->stats->eps[0]), key);
}

struct wp_cl_stat *wp_cl_stat(struct wp *wp, const char *host, const char *subset)
{
	char key[WP_STAT_KEY];

	snprintf(key, sizeof(key), "%s|%s", host, subset ? subset : "");
	return wp_slot(wp->stats, wp->stats->cls, sizeof(wp->stats->cls[0]), key);
}

const struct zm_addr *wp_ep_addr(const struct l7_endpoint *ep, uint8_t family)
{
	size_t i;

	for (i = 0; family && i < ep->wl->n_ips; i++)
		if (ep->wl->ips[i].addr.family == family)
			return &ep->wl->ips[i].addr;
	return &ep->wl->ips[0].addr;
}

static const char *wp_ep_key(const struct l7_endpoint *ep, uint8_t family, char *buf, size_t len)
{
	return zm_addr_port_format(wp_ep_addr(ep, family), ep->target_port, buf, len);
}

static bool wp_ejected(struct wp *wp, const struct l7_endpoint *ep, uint8_t family, uint64_t now)
{
	char key[ZM_ADDR_STRLEN];

	wp_ep_key(ep, family, key, sizeof(key));
	return atomic_load(&wp_ep_stat(wp, key)->ejected_until_ms) > now;
}

static unsigned int wp_active(struct wp *wp, const struct l7_endpoint *ep, uint8_t family)
{
	char key[ZM_ADDR_STRLEN];

	return atomic_load(&wp_ep_stat(wp, wp_ep_key(ep, family, key, sizeof(key)))->active);
}

/* The cluster's endpoints into eps (at most L7_MAX_ENDPOINTS); fills t's cluster fields. */
static size_t wp_cluster(struct wp *wp, struct wp_target *t, struct l7_endpoint *eps)
{
	const struct l7_dr *dr;

	t->csvc = t->svc;
	t->cport = t->port;
	if (t->dest) {
		t->csvc = t->dest->service ? t->dest->service : t->csvc;
		t->cport = t->dest->port ? t->dest->port : t->cport;
	}
	dr = l7_dr_find(t->snap->l7, t->csvc->hostname);
	t->subset = t->dest ? l7_dr_subset(dr, t->dest->subset) : NULL;
	t->policy = l7_policy_for(dr, t->subset);
	t->cl = wp_cl_stat(wp, t->csvc->hostname, t->subset ? t->subset->name : NULL);
	return l7_endpoints(t->snap->mesh, t->csvc, t->cport, t->subset, eps, L7_MAX_ENDPOINTS);
}

int wp_target_pick(struct wp_worker *w, struct wp_target *t)
{
	struct l7_endpoint eps[L7_MAX_ENDPOINTS];
	struct wp *wp = w->wp;
	size_t i, n, live = 0, pick;

	if (t->pod) {
		static const struct l7_traffic_policy none;

		t->ep = (struct l7_endpoint){.wl = t->pod, .target_port = t->port};
		t->policy = &none;
		t->subset = NULL;
		t->csvc = NULL;
		t->cl = wp_cl_stat(wp, t->pod->name, NULL);
		t->addr = wp_ep_addr(&t->ep, t->family);
		wp_ep_key(&t->ep, t->family, t->ep_key, sizeof(t->ep_key));
		return 0;
	}
	n = wp_cluster(wp, t, eps);
	if (!n)
		return -ENOENT;
	for (i = 0; i < n; i++)
		if (!wp_ejected(wp, &eps[i], t->family, w->loop->now_ms))
			eps[live++] = eps[i];
	if (!live)
		live = n; /* everything ejected: Envoy's panic mode routes to all */
	if (t->policy->lb == L7_LB_ROUND_ROBIN) {
		unsigned int h = wp_hash(t->csvc->hostname) % 64;

		pick = atomic_fetch_add(&wp->stats->rr[h], 1) % live;
	} else {
		pick = wp_rand() % live;
		if ((t->policy->lb == L7_LB_LEAST_REQUEST || t->policy->lb == L7_LB_DEFAULT) &&
		    live > 1) {
			size_t other = wp_rand() % live;

			if (wp_active(wp, &eps[other], t->family) <
			    wp_active(wp, &eps[pick], t->family))
				pick = other;
		}
	}
	t->ep = eps[pick];
	t->addr = wp_ep_addr(&t->ep, t->family);
	wp_ep_key(&t->ep, t->family, t->ep_key, sizeof(t->ep_key));
	return 0;
}

void wp_outlier_note(struct wp_worker *w, const struct wp_target *t, const char *key,
		     unsigned int code)
{
	const struct l7_traffic_policy *pol = t->policy;
	struct l7_endpoint eps[L7_MAX_ENDPOINTS];
	struct wp_ep_stat *st = wp_ep_stat(w->wp, key);
	size_t i, n, ejected = 0;
	unsigned int k;
	uint64_t until;

	if (code < 500) {
		atomic_store(&st->consecutive_5xx, 0);
		return;
	}
	if (!pol || !pol->outlier.set || !t->csvc ||
	    atomic_fetch_add(&st->consecutive_5xx, 1) + 1 < pol->outlier.consecutive_5xx)
		return;
	atomic_store(&st->consecutive_5xx, 0);
	/* maxEjectionPercent: no ejection once that share of the cluster is out. */
	n = l7_endpoints(t->snap->mesh, t->csvc, t->cport, t->subset, eps, L7_MAX_ENDPOINTS);
	for (i = 0; i < n; i++)
		ejected += wp_ejected(w->wp, &eps[i], t->family, w->loop->now_ms);
	if (!n || ejected * 100 >= (size_t)pol->outlier.max_ejection_pct * n) {
		obs_log(OBS_WARN, "upstream",
			"outlier %s not ejected: %zu of %zu endpoints already "
			"out (maxEjectionPercent %u)",
			key, ejected, n, pol->outlier.max_ejection_pct);
		return;
	}
	k = atomic_fetch_add(&st->ejections, 1) + 1;
	until = w->loop->now_ms + (uint64_t)pol->outlier.base_ejection_ms * k;
	atomic_store(&st->ejected_until_ms, until);
	obs_log(OBS_WARN, "upstream", "outlier %s ejected for %llu ms after %u consecutive 5xx",
		key, (unsigned long long)(until - w->loop->now_ms), pol->outlier.consecutive_5xx);
}

bool wp_cl_request_begin(struct wp_cl_stat *cl, const struct l7_traffic_policy *pol)
{
	unsigned int max = pol ? pol->pool.http2_max_requests : 0;

	if (!cl)
		return true;
	if (max && atomic_fetch_add(&cl->requests, 1) >= max) {
		atomic_fetch_sub(&cl->requests, 1);
		atomic_fetch_add(&cl->overflows, 1);
		return false;
	}
	if (!max)
		atomic_fetch_add(&cl->requests, 1);
	return true;
}

void wp_cl_request_end(struct wp_cl_stat *cl)
{
	if (cl)
		atomic_fetch_sub(&cl->requests, 1);
}

bool wp_cl_conn_allowed(const struct wp_cl_stat *cl, const struct l7_traffic_policy *pol)
{
	unsigned int max = pol ? pol->pool.max_connections : 0;

	return !cl || !max || atomic_load(&cl->conns) < max;
}

bool wp_cl_conn_claim(struct wp_cl_stat *cl, unsigned int max)
{
	unsigned int n;

	if (!cl)
		return true;
	if (!max) {
		atomic_fetch_add(&cl->conns, 1);
		return true;
	}
	n = atomic_load(&cl->conns);
	do {
		if (n >= max)
			return false;
	} while (!atomic_compare_exchange_weak(&cl->conns, &n, n + 1));
	return true;
}

void wp_cl_conn_release(struct wp_cl_stat *cl)
{
	if (cl)
		atomic_fetch_sub(&cl->conns, 1);
}
