// SPDX-License-Identifier: Apache-2.0
/*
 * What keeps zmesh-ca serving nodes while misbehaving peers sit on it, decided at accept:
 *  - the count of open connections per source address (--max-conns-per-peer), shared by every
 *    worker behind one mutex (taken once per accept and once per close, never per byte);
 *  - --max-conns, and eviction when every slot is taken: among the connections of every
 *    worker waiting in their handshake or idle (one registry behind one mutex, taken at each
 *    phase change), one of the source address with the most connections open, the one that
 *    has waited longest of those. A node holds one connection at a time and a slow peer many,
 *    so the node keeps its slot even when slow peers churn through the others faster than its
 *    handshake completes. A victim of another worker is queued for that worker and closed by
 *    it when woken (connections belong to their worker's thread); the newcomer is admitted
 *    meanwhile, so the total may pass --max-conns by the evictions in flight for the length
 *    of one loop batch;
 *  - the accounting of dropped connections: a counter per reason
 *    (zmesh_ca_connections_dropped_total on --metrics-port, refreshed at scrape time from
 *    atomics) and at most one log line a second per reason, so a flood of slow peers cannot
 *    flood the log.
 * The deadlines themselves live with the connection (conn.c).
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "ca.h"
#include "common/addr.h"
#include "common/hash.h"
#include "conn.h"
#include "obs/metrics.h"
#include "rt/loop.h"
#include "rt/workers.h"

#define ZCA_PEER_BUCKETS 256
/* Candidates an eviction weighs, from the oldest of each list: bounds its cost per accept. */
#define ZCA_EVICT_SCAN	 64

/* One source address with connections open. */
struct zca_peer {
	struct zca_peer *next;
	atomic_int conns; /* changed under the table's lock; read without it by eviction */
	char addr[48];	  /* an IPv6 address without brackets fits */
};

struct zca_peers {
	pthread_mutex_t lock;
	struct zca_peer *bucket[ZCA_PEER_BUCKETS];
};

static const char *const zca_drop_names[ZCA_DROP__N] = {
#define ZCA_DROP_NAME(e, s) [ZCA_DROP_##e] = s,
    ZCA_DROP_REASONS(ZCA_DROP_NAME)
#undef ZCA_DROP_NAME
};

const char *zca_drop_name(enum zca_drop why)
{
	return why < ZCA_DROP__N ? zca_drop_names[why] : "?";
}

/* The counters as the registry shows them, read from the atomics the workers bump. */
struct zca_metrics {
	struct zca *z;
	struct obs_series *dropped[ZCA_DROP__N];
	struct obs_series *open, *issued, *refused;
};

static void zca_metrics_scrape(void *ud)
{
	struct zca_metrics *m = ud;
	struct zca *z = m->z;

	for (int i = 0; i < ZCA_DROP__N; i++)
		if (m->dropped[i])
			obs_counter_set(m->dropped[i], (double)atomic_load(&z->dropped[i]));
	if (m->open)
		obs_gauge_set(m->open, atomic_load(&z->nconns));
	if (m->issued)
		obs_counter_set(m->issued, (double)atomic_load(&z->issued));
	if (m->refused)
		obs_counter_set(m->refused, (double)atomic_load(&z->refused));
}

static struct obs_series *zca_metric(struct obs_registry *reg, enum obs_metric_type t,
				     const char *name, const char *help, const char *label,
				     const char *value)
{
	const char *labels[] = {label, NULL};
	struct obs_family *f = obs_family_new(reg, t, name, help, label ? labels : NULL, NULL, 0);

	return f ? obs_series_get(f, label ? &value : NULL) : NULL;
}

/* Registered whether or not a metrics port serves them: they cost a few hundred bytes. */
static int zca_metrics_init(struct zca *z)
{
	static struct zca_metrics m;
	struct obs_registry *reg = obs_metrics();

	if (!reg)
		return -ENOMEM;
	m.z = z;
	for (int i = 0; i < ZCA_DROP__N; i++)
		m.dropped[i] = zca_metric(reg, OBS_COUNTER, "zmesh_ca_connections_dropped_total",
					  "Connections closed or refused by zmesh-ca's limits, by "
					  "reason (deadlines, eviction, per-peer and total caps).",
					  "reason", zca_drop_names[i]);
	m.open = zca_metric(reg, OBS_GAUGE, "zmesh_ca_connections_open",
			    "Connections zmesh-ca holds open.", NULL, NULL);
	m.issued = zca_metric(reg, OBS_COUNTER, "zmesh_ca_certificates_issued_total",
			      "Certificates zmesh-ca signed.", NULL, NULL);
	m.refused = zca_metric(reg, OBS_COUNTER, "zmesh_ca_requests_refused_total",
			       "Requests and handshakes zmesh-ca refused (with a status or a "
			       "TLS alert).",
			       NULL, NULL);
	return obs_registry_on_scrape(reg, zca_metrics_scrape, &m);
}

int zca_limits_init(struct zca *z)
{
	z->peers = calloc(1, sizeof(*z->peers));
	if (!z->peers)
		return -ENOMEM;
	pthread_mutex_init(&z->peers->lock, NULL);
	pthread_mutex_init(&z->evict_lock, NULL);
	zm_list_init(&z->handshaking);
	zm_list_init(&z->idle);
	return zca_metrics_init(z);
}

void zca_limits_fini(struct zca *z)
{
	if (!z->peers)
		return;
	for (int i = 0; i < ZCA_PEER_BUCKETS; i++)
		while (z->peers->bucket[i]) {
			struct zca_peer *p = z->peers->bucket[i];

			z->peers->bucket[i] = p->next;
			free(p);
		}
	pthread_mutex_destroy(&z->peers->lock);
	free(z->peers);
	z->peers = NULL;
}

static struct zca_peer **zca_peer_slot(struct zca_peers *ps, const char *peer)
{
	struct zca_peer **pp = &ps->bucket[zm_hash_str(peer) % ZCA_PEER_BUCKETS];

	while (*pp && strcmp((*pp)->addr, peer))
		pp = &(*pp)->next;
	return pp;
}

struct zca_peer *zca_peer_get(struct zca *z, const char *addr)
{
	struct zca_peers *ps = z->peers;
	struct zca_peer **pp, *p;
	int err = 0;

	pthread_mutex_lock(&ps->lock);
	pp = zca_peer_slot(ps, addr);
	p = *pp;
	if (!p) {
		p = calloc(1, sizeof(*p));
		if (!p) {
			err = ENOMEM;
			goto out;
		}
		snprintf(p->addr, sizeof(p->addr), "%s", addr);
		*pp = p;
	}
	if (atomic_load(&p->conns) >= z->peer_conns) {
		err = EBUSY;
		p = NULL;
	} else {
		atomic_fetch_add(&p->conns, 1);
	}
out:
	pthread_mutex_unlock(&ps->lock);
	errno = err;
	return err ? NULL : p;
}

void zca_peer_put(struct zca *z, struct zca_peer *p)
{
	struct zca_peers *ps = z->peers;
	struct zca_peer **pp;

	if (!p)
		return;
	pthread_mutex_lock(&ps->lock);
	if (atomic_fetch_sub(&p->conns, 1) == 1) {
		pp = zca_peer_slot(ps, p->addr);
		if (*pp == p)
			*pp = p->next;
		free(p);
	}
	pthread_mutex_unlock(&ps->lock);
}

void zca_drop(struct zca *z, enum zca_drop why, const char *addr, const char *fmt, ...)
{
	uint64_t suppressed = 0;
	char detail[256];
	va_list ap;

	atomic_fetch_add(&z->dropped[why], 1);
	if (!obs_ratelimit_ok(&z->drop_rl[why], rt_now_ms(), ZCA_DROP_LOG_INTERVAL_MS, &suppressed))
		return;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	obs_log(OBS_WARN, "rpc", "dropped %s (%s): %s; %llu more %s drops since the last line",
		addr, zca_drop_names[why], detail, (unsigned long long)suppressed,
		zca_drop_names[why]);
}

/* ---- eviction ---- */

void zca_evict_track(struct zca_conn *c, enum zca_phase ph, bool closing)
{
	struct zca *z = c->z;

	pthread_mutex_lock(&z->evict_lock);
	/* Picked for eviction: it stays on its worker's queue until it closes. */
	if (closing || !c->evicting)
		zm_list_del(&c->lru);
	if (ph != c->phase || ph != ZCA_PH_BUSY)
		c->phase_ms = rt_now_ms();
	c->phase = ph;
	if (!closing && !c->evicting && ph != ZCA_PH_BUSY)
		zm_list_add(ph == ZCA_PH_HANDSHAKE ? &z->handshaking : &z->idle, &c->lru);
	pthread_mutex_unlock(&z->evict_lock);
}

/*
 * The better victim of c and best (NULL: none yet): the one whose source address holds more
 * connections, then the one that has waited longer.
 */
static struct zca_conn *zca_victim_pick(struct zca_conn *best, struct zca_conn *c)
{
	int nb, nc;

	if (!best)
		return c;
	nb = atomic_load(&best->peer->conns);
	nc = atomic_load(&c->peer->conns);
	return nc > nb || (nc == nb && c->phase_ms < best->phase_ms) ? c : best;
}

/* The victim among the oldest ZCA_EVICT_SCAN of a list (tail first: the oldest). */
static struct zca_conn *zca_victim_scan(struct zm_link *head, struct zca_conn *best)
{
	struct zm_link *pos = head->prev;

	for (int n = 0; pos != head && n < ZCA_EVICT_SCAN; pos = pos->prev, n++)
		best = zca_victim_pick(best, zm_container_of(pos, struct zca_conn, lru));
	return best;
}

/*
 * Pick a connection of any worker that waits in its handshake or idle (zca_victim_pick's
 * order) and have it closed: at once when it is this loop's, else queued for its worker and
 * that worker woken. False when every connection has a request in progress (each bounded by
 * its own deadline).
 */
static bool zca_evict(struct zca *z, struct rt_loop *self, const char *newcomer)
{
	struct zca_worker *w;
	struct zca_conn *c;
	char addr[64];
	uint64_t age;
	bool handshake;
	int n;

	pthread_mutex_lock(&z->evict_lock);
	c = zca_victim_scan(&z->idle, zca_victim_scan(&z->handshaking, NULL));
	if (!c) {
		pthread_mutex_unlock(&z->evict_lock);
		return false;
	}
	zm_list_del(&c->lru);
	c->evicting = true;
	w = c->w;
	if (w->loop != self)
		zm_list_add(&w->evict_q, &c->lru);
	/* What the log line needs, read while c cannot go away. */
	snprintf(addr, sizeof(addr), "%s", c->caller.addr);
	handshake = c->phase == ZCA_PH_HANDSHAKE;
	age = rt_now_ms() - c->phase_ms;
	n = atomic_load(&c->peer->conns);
	pthread_mutex_unlock(&z->evict_lock);
	zca_drop(z, ZCA_DROP_EVICTED, addr,
		 "all %d connection slots taken: this connection (%s for %llu ms; %d open from "
		 "its address) made room for %s",
		 z->max_conns, handshake ? "in its TLS handshake" : "idle", (unsigned long long)age,
		 n, newcomer);
	if (w->loop == self)
		zca_conn_close(c);
	else
		rt_loop_wake(w->loop);
	return true;
}

/* A worker's wake-up: close the connections other workers picked for eviction. */
static void zca_worker_wake(struct rt_loop *l, void *ud)
{
	struct zca *z = ud;
	struct zca_worker *w = &z->workers[rt_worker_of(l)->id];
	struct zca_conn *c;

	for (;;) {
		pthread_mutex_lock(&z->evict_lock);
		c = zm_list_empty(&w->evict_q)
			? NULL
			: zm_container_of(w->evict_q.next, struct zca_conn, lru);
		if (c)
			zm_list_del(&c->lru);
		pthread_mutex_unlock(&z->evict_lock);
		if (!c)
			break;
		zca_conn_close(c);
	}
}

void zca_worker_setup(struct zca *z, struct rt_worker *w)
{
	z->workers[w->id].loop = &w->loop;
	zm_list_init(&z->workers[w->id].evict_q);
	rt_loop_on_wake(&w->loop, zca_worker_wake, z);
}

/* ---- admission ---- */

/* The connection's "ip:port" (for logs) and its address alone (the peer table's key). */
static void zca_peer_names(int fd, char *addr, size_t alen, char *peer, size_t plen)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct zm_addr a;
	unsigned int port;

	snprintf(addr, alen, "?");
	snprintf(peer, plen, "?");
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) ||
	    zm_addr_from_sockaddr((struct sockaddr *)&ss, &a, &port))
		return;
	zm_addr_port_format(&a, port, addr, alen);
	zm_addr_format(&a, peer, plen);
}

void zca_conn_accept(struct zca *z, struct rt_loop *l, int fd)
{
	char addr[64], text[48];
	struct zca_peer *peer;

	zca_peer_names(fd, addr, sizeof(addr), text, sizeof(text));
	peer = zca_peer_get(z, text);
	if (!peer) {
		if (errno == EBUSY)
			zca_drop(z, ZCA_DROP_PEER_LIMIT, addr,
				 "%d connections from %s are open already (--max-conns-per-peer)",
				 z->peer_conns, text);
		close(fd);
		return;
	}
	if (atomic_fetch_add(&z->nconns, 1) >= z->max_conns && !zca_evict(z, l, addr)) {
		atomic_fetch_sub(&z->nconns, 1);
		zca_peer_put(z, peer);
		zca_drop(
		    z, ZCA_DROP_MAX_CONNS, addr,
		    "all %d connection slots taken, each by a request in progress (--max-conns)",
		    z->max_conns);
		close(fd);
		return;
	}
	zca_conn_start(z, l, fd, addr, peer);
}
