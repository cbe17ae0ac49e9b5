// SPDX-License-Identifier: Apache-2.0
/*
 * HBONE connection sets (hbset.h): creation, the event handler (connect completion, then
 * hb_conn_io), the per-connection health/idle timer, the end-of-batch re-arm and release.
 */
#include "rt/hbset.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/heap.h"
#include "obs/log.h"

static void rt_hconn_free(void *p)
{
	struct rt_hconn *h = p;

	/* Streams still open hear CANCEL now; h (and h->err) is still valid for them. */
	if (h->hc)
		hb_conn_free(h->hc);
	if (!h->ev.closed && h->ev.fd >= 0)
		close(h->ev.fd);
	free(h);
}

/* Out of the set; released after the batch. */
static void rt_hconn_drop(struct rt_hconn *h)
{
	struct rt_hset *s = h->set;

	if (h->dead)
		return;
	h->dead = true;
	if (h->server ? s->ops.n_server : s->ops.n_client)
		atomic_fetch_sub(h->server ? s->ops.n_server : s->ops.n_client, 1);
	rt_ev_del(s->loop, &h->ev);
	zm_list_del(&h->link);
	rt_defer_free_timed(s->loop, &h->tick, rt_hconn_free, h);
}

/* The one arming policy (hbset.h). */
static void rt_hconn_arm(struct rt_hconn *h)
{
	uint32_t want;

	if (h->dead)
		return;
	want = h->connecting ? EPOLLOUT : hb_conn_want(h->hc);
	if (!want && hb_conn_is_closed(h->hc)) {
		rt_hconn_drop(h);
		return;
	}
	if (rt_ev_set(h->set->loop, &h->ev, want ? want : EPOLLIN))
		rt_hconn_drop(h);
}

/* End of a round: what the round's stream calls queued leaves, one send() per connection. */
static void rt_hset_after_batch(struct rt_loop *l, void *ud)
{
	struct rt_hset *s = ud;
	struct zm_link *pos, *tmp;
	struct rt_hconn *h;

	(void)l;
	zm_list_each_safe(pos, tmp, &s->conns)
	{
		h = zm_container_of(pos, struct rt_hconn, link);
		if (h->hc && !h->dead)
			hb_conn_flush(h->hc);
		rt_hconn_arm(h);
	}
}

/* A dial that failed before TLS: reported like any other end of a connection. */
static void rt_hconn_dial_failed(struct rt_hconn *h, int err)
{
	char why[RT_HCONN_KEY_LEN + 64];

	snprintf(why, sizeof(why), "dial %s failed: %s", h->key, strerror(err));
	if (!h->err[0])
		snprintf(h->err, sizeof(h->err), "%s", why);
	if (h->set->ops.on_closed)
		h->set->ops.on_closed(h, -err, why);
	rt_hconn_drop(h);
}

static void rt_hconn_event(struct rt_loop *l, struct rt_ev *ev, uint32_t events)
{
	struct rt_hconn *h = (struct rt_hconn *)ev;
	int err = 0;
	socklen_t sl = sizeof(err);

	(void)l;
	if (h->dead)
		return;
	h->set->io++;
	if (h->connecting) {
		if (getsockopt(ev->fd, SOL_SOCKET, SO_ERROR, &err, &sl))
			err = errno;
		if (err) {
			rt_hconn_dial_failed(h, err);
			return;
		}
		h->connecting = false;
		events = EPOLLOUT;
	}
	if (hb_conn_io(h->hc, events) < 0 || hb_conn_is_closed(h->hc)) {
		rt_hconn_drop(h);
		return;
	}
	rt_hconn_arm(h);
}

static void rt_hconn_release_idle(struct rt_hconn *h)
{
	if (h->set->draining)
		obs_log(OBS_DEBUG, "hbone",
			"HBONE connection %s: no streams left, released (drain)", h->key);
	else
		obs_log(OBS_INFO, "hbone", "HBONE connection %s idle for %llu ms: released", h->key,
			(unsigned long long)h->set->idle_ms);
	/* The peer gets a GOAWAY (best effort: flushed now), we free the TLS state. */
	hb_conn_shutdown(h->hc);
	hb_conn_io(h->hc, EPOLLOUT);
	rt_hconn_drop(h);
}

static void rt_hconn_tick(struct rt_loop *l, struct rt_timer *t)
{
	struct rt_hconn *h = zm_container_of(t, struct rt_hconn, tick);

	if (h->dead)
		return;
	if (!h->connecting) {
		if (hb_conn_tick(h->hc, l->now_ms) < 0 || hb_conn_is_closed(h->hc)) {
			rt_hconn_drop(h);
			return;
		}
		if (hb_conn_stream_count(h->hc)) {
			h->idle_since_ms = l->now_ms;
		} else if (h->set->draining ||
			   (!h->server && l->now_ms - h->idle_since_ms >= h->set->idle_ms)) {
			rt_hconn_release_idle(h);
			return;
		}
	} else if (l->now_ms - h->idle_since_ms >= HB_HANDSHAKE_TIMEOUT_MS) {
		rt_hconn_dial_failed(h, ETIMEDOUT);
		return;
	}
	rt_timer_after(l, &h->tick, RT_HCONN_TICK_MS);
}

static void rt_hset_conn_ready(struct hb_conn *conn)
{
	struct rt_hconn *h = rt_hconn_of(conn);
	char a[ZM_ADDR_STRLEN];

	if (h->server)
		obs_log(OBS_DEBUG, "hbone", "inbound HBONE connection from %s ready (peer %s)",
			zm_addr_port_format(&h->peer, h->peer_port, a, sizeof(a)),
			hb_conn_peer_identity(conn));
	else
		obs_log(OBS_DEBUG, "hbone", "HBONE connection %s ready", h->key);
	if (h->set->ops.on_ready)
		h->set->ops.on_ready(h);
}

static void rt_hset_conn_closed(struct hb_conn *conn, int err, const char *reason)
{
	struct rt_hconn *h = rt_hconn_of(conn);

	if (!h)
		return;
	if (err && !h->err[0])
		snprintf(h->err, sizeof(h->err), "%s", reason ? reason : strerror(-err));
	if (h->set->ops.on_closed)
		h->set->ops.on_closed(h, err, reason);
}

static void rt_hset_trim(struct rt_loop *l, struct rt_timer *t)
{
	struct rt_hset *s = zm_container_of(t, struct rt_hset, trim);

	if (s->io != s->io_seen) {
		s->io_seen = s->io;
		s->trimmed = false;
	} else if (!s->trimmed) {
		s->trimmed = true;
		hb_thread_trim();
		zm_heap_trim();
	}
	rt_timer_after(l, &s->trim, RT_HSET_TRIM_MS);
}

int rt_hset_init(struct rt_hset *s, struct rt_loop *l, const struct rt_hset_ops *ops,
		 uint64_t idle_ms)
{
	memset(s, 0, sizeof(*s));
	zm_list_init(&s->conns);
	s->loop = l;
	s->ops = *ops;
	s->idle_ms = idle_ms;
	if (ops->client)
		s->client_cbs = *ops->client;
	if (ops->server)
		s->server_cbs = *ops->server;
	s->client_cbs.on_conn_close = rt_hset_conn_closed;
	s->server_cbs.on_conn_close = rt_hset_conn_closed;
	s->client_cbs.on_ready = rt_hset_conn_ready;
	s->server_cbs.on_ready = rt_hset_conn_ready;
	rt_timer_init(&s->trim, rt_hset_trim);
	if (rt_timer_after(l, &s->trim, RT_HSET_TRIM_MS))
		return -ENOMEM;
	return rt_loop_add_hook(l, rt_hset_after_batch, s);
}

void rt_hset_fini(struct rt_hset *s)
{
	rt_timer_cancel(s->loop, &s->trim);
	while (!zm_list_empty(&s->conns))
		rt_hconn_drop(zm_container_of(s->conns.next, struct rt_hconn, link));
}

void rt_hset_drain(struct rt_hset *s)
{
	struct zm_link *pos, *tmp;

	s->draining = true;
	zm_list_each_safe(pos, tmp, &s->conns)
	{
		struct rt_hconn *h = zm_container_of(pos, struct rt_hconn, link);

		if (h->dead)
			continue;
		if (h->connecting)
			rt_hconn_dial_failed(h, ESHUTDOWN);
		else if (!hb_conn_stream_count(h->hc))
			rt_hconn_release_idle(h);
		else
			hb_conn_shutdown(h->hc);
	}
}

struct rt_hconn *rt_hset_find(struct rt_hset *s, const char *key)
{
	struct zm_link *pos, *tmp;

	zm_list_each_safe(pos, tmp, &s->conns)
	{
		struct rt_hconn *h = zm_container_of(pos, struct rt_hconn, link);

		if (h->server || h->dead || strcmp(h->key, key) || hb_conn_is_closed(h->hc))
			continue;
		if (hb_conn_is_ready(h->hc) ? hb_conn_streams_available(h->hc) > 0
					    : hb_conn_stream_count(h->hc) < HB_MAX_STREAMS)
			return h;
	}
	return NULL;
}

static struct rt_hconn *rt_hset_add(struct rt_hset *s, bool server, const char *key, int fd,
				    SSL *ssl, void *ud)
{
	struct rt_hconn *h = calloc(1, sizeof(*h));
	int err = ENOMEM;

	if (!h)
		goto fail;
	h->hc = hb_conn_new(server ? HB_ROLE_SERVER : HB_ROLE_CLIENT, fd, ssl,
			    server ? &s->server_cbs : &s->client_cbs, h, s->loop->now_ms);
	if (!h->hc) {
		err = errno;
		goto fail;
	}
	hb_conn_set_batching(h->hc, true); /* flushed by rt_hset_after_batch */
	rt_ev_init(&h->ev, fd, rt_hconn_event);
	rt_timer_init(&h->tick, rt_hconn_tick);
	h->set = s;
	h->server = server;
	h->connecting = !server;
	h->idle_since_ms = s->loop->now_ms;
	h->ud = ud;
	snprintf(h->key, sizeof(h->key), "%s", key);
	zm_list_add(&s->conns, &h->link);
	if (server ? s->ops.n_server : s->ops.n_client)
		atomic_fetch_add(server ? s->ops.n_server : s->ops.n_client, 1);
	rt_timer_after(s->loop, &h->tick, RT_HCONN_TICK_MS);
	rt_hconn_arm(h);
	return h;
fail:
	SSL_free(ssl);
	close(fd);
	free(h);
	errno = err;
	return NULL;
}

struct rt_hconn *rt_hset_client_new(struct rt_hset *s, const char *key, int fd, SSL *ssl, void *ud)
{
	return rt_hset_add(s, false, key, fd, ssl, ud);
}

struct rt_hconn *rt_hset_server_new(struct rt_hset *s, int fd, SSL *ssl, void *ud)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct rt_hconn *h = rt_hset_add(s, true, "inbound", fd, ssl, ud);

	if (!h)
		return NULL;
	if (!getsockname(fd, (struct sockaddr *)&ss, &sl))
		zm_addr_from_sockaddr((struct sockaddr *)&ss, &h->local, &h->local_port);
	sl = sizeof(ss);
	if (!getpeername(fd, (struct sockaddr *)&ss, &sl))
		zm_addr_from_sockaddr((struct sockaddr *)&ss, &h->peer, &h->peer_port);
	return h;
}

void rt_hconn_used(struct rt_hconn *h)
{
	h->idle_since_ms = h->set->loop->now_ms;
	rt_hconn_arm(h);
}

unsigned int rt_hset_count(const struct rt_hset *s, bool server)
{
	const struct zm_link *pos;
	unsigned int n = 0;

	for (pos = s->conns.next; pos != &s->conns; pos = pos->next)
		n += zm_container_of(pos, const struct rt_hconn, link)->server == server;
	return n;
}
