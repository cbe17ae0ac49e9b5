// SPDX-License-Identifier: Apache-2.0
/*
 * Waypoint workers: one thread and epoll loop each, a SO_REUSEPORT listener on 15008 per
 * worker (the kernel spreads connections), the inbound HBONE server sessions, and the pool of
 * outbound HBONE client sessions to endpoint pods (keyed by pod address and expected server
 * identity; at most HB_MAX_STREAMS streams each, a new connection when all are full; released
 * after five idle minutes). A data callback on one connection usually writes to a stream of
 * another, so after every batch of events each connection is re-armed from hb_conn_want().
 * Objects dropped inside a batch are freed after it.
 */
#include <errno.h>
#include <netinet/tcp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hbone/hbone.h"
#include "tls/tls.h"
#include "wp.h"

#define WP_POOL_IDLE_MS (5 * 60 * 1000)

struct wp_hconn {
	struct wp_ev ev;
	struct wp_hconn *next;
	struct wp_worker *w;
	struct hb_conn *hc;
	bool server, connecting, dead;
	uint64_t idle_since_ms;
	char key[ZM_ADDR_STRLEN + ZM_SPIFFE_ID_MAX + 2];
};

int wp_ev_set(struct wp_worker *w, struct wp_ev *ev, uint32_t events)
{
	struct epoll_event e = {.events = events, .data.ptr = ev};

	if (ev->armed == events)
		return 0;
	if (!events) {
		wp_ev_del(w, ev);
		return 0;
	}
	if (epoll_ctl(w->epfd, ev->armed ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, ev->fd, &e))
		return -errno;
	ev->armed = events;
	return 0;
}

void wp_ev_del(struct wp_worker *w, struct wp_ev *ev)
{
	if (ev->armed && ev->fd >= 0)
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, ev->fd, NULL);
	ev->armed = 0;
}

void wp_defer_free(struct wp_worker *w, void (*fn)(void *), void *p)
{
	struct wp_dead *d = malloc(sizeof(*d));

	if (!d)
		return; /* leaking beats a use-after-free later in this batch */
	*d = (struct wp_dead){w->dead, fn, p};
	w->dead = d;
}

static void wp_hconn_free(void *p)
{
	struct wp_hconn *h = p;

	if (h->hc)
		hb_conn_free(h->hc);
	if (h->ev.fd >= 0)
		close(h->ev.fd);
	free(h);
}

static void wp_hconn_drop(struct wp_hconn *h)
{
	struct wp_hconn **pp;

	if (h->dead)
		return;
	h->dead = true;
	wp_ev_del(h->w, &h->ev);
	for (pp = &h->w->hconns; *pp; pp = &(*pp)->next) {
		if (*pp == h) {
			*pp = h->next;
			break;
		}
	}
	wp_defer_free(h->w, wp_hconn_free, h);
}

void wp_hconns_arm(struct wp_worker *w)
{
	struct wp_hconn *h, *next;

	for (h = w->hconns; h; h = next) {
		uint32_t want;

		next = h->next;
		if (h->connecting) {
			wp_ev_set(w, &h->ev, EPOLLOUT);
			continue;
		}
		want = hb_conn_want(h->hc);
		if (!want || hb_conn_is_closed(h->hc)) {
			wp_hconn_drop(h);
			continue;
		}
		wp_ev_set(w, &h->ev, want);
	}
}

static void wp_hconn_event(struct wp_worker *w, struct wp_ev *ev, uint32_t events)
{
	struct wp_hconn *h = (struct wp_hconn *)ev;
	socklen_t sl = sizeof(int);
	int err = 0;

	(void)w;
	if (h->dead)
		return;
	if (h->connecting) {
		if (getsockopt(ev->fd, SOL_SOCKET, SO_ERROR, &err, &sl))
			err = errno;
		if (err) {
			fprintf(stderr, "waypoint: dial %s failed: %s\n", h->key, strerror(err));
			/* Streams learn it from on_stream_close(CANCEL) inside hb_conn_free. */
			wp_hconn_drop(h);
			return;
		}
		h->connecting = false;
		events = EPOLLOUT;
	}
	if (hb_conn_io(h->hc, events) < 0 || hb_conn_is_closed(h->hc))
		wp_hconn_drop(h);
}

static void wp_conn_closed(struct hb_conn *conn, int err, const char *reason)
{
	struct wp_hconn *h = hb_conn_ud(conn);

	if (err && err != -ESHUTDOWN)
		fprintf(stderr, "waypoint: hbone %s connection %s closed: %s\n",
			h->server ? "inbound" : "upstream", h->key, reason);
}

static const struct hb_callbacks wp_server_cbs = {
    .on_request = wp_ds_on_request,
    .on_data = wp_ds_on_data,
    .on_eof = wp_ds_on_eof,
    .on_writable = wp_ds_on_writable,
    .on_stream_close = wp_ds_on_close,
    .on_conn_close = wp_conn_closed,
};

static const struct hb_callbacks wp_client_cbs = {
    .on_response = wp_up_on_response,
    .on_data = wp_up_on_data,
    .on_eof = wp_up_on_eof,
    .on_writable = wp_up_on_writable,
    .on_stream_close = wp_up_on_close,
    .on_conn_close = wp_conn_closed,
};

struct wp_worker *wp_stream_worker(struct hb_stream *s)
{
	struct wp_hconn *h = hb_conn_ud(hb_stream_conn(s));

	return h->w;
}

static void wp_accept(struct wp_worker *w, struct wp_ev *ev, uint32_t events)
{
	char err[256];
	int i;

	(void)events;
	for (i = 0; i < 64; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		struct wp_hconn *h;
		unsigned int port;
		struct zm_addr peer;
		SSL *ssl;
		int fd = accept4(ev->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		/* No Nagle: small HTTP/2 frames must not wait for delayed ACKs. */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
		h = calloc(1, sizeof(*h));
		if (!h) {
			close(fd);
			continue;
		}
		zm_addr_from_sockaddr((struct sockaddr *)&ss, &peer, &port);
		zm_addr_port_format(&peer, port, h->key, sizeof(h->key));
		h->w = w;
		h->server = true;
		h->ev.fn = wp_hconn_event;
		h->ev.fd = fd;
		if (zm_tls_server_ssl_new(w->wp->tls_server, fd, NULL, &ssl, err, sizeof(err))) {
			fprintf(stderr, "waypoint: TLS for %s: %s, closing\n", h->key, err);
			close(fd);
			free(h);
			continue;
		}
		h->hc = hb_conn_new(HB_ROLE_SERVER, fd, ssl, &wp_server_cbs, h, w->now_ms);
		if (!h->hc) {
			SSL_free(ssl);
			close(fd);
			free(h);
			continue;
		}
		h->next = w->hconns;
		w->hconns = h;
	}
}

static struct wp_hconn *wp_pool_dial(struct wp_worker *w, const struct zm_addr *ip,
				     const char *expected_id, const char *key)
{
	struct wp *wp = w->wp;
	struct sockaddr_storage ss;
	struct zm_cert *cert = NULL;
	struct wp_hconn *h;
	char err[256];
	SSL *ssl;
	socklen_t sl = zm_addr_to_sockaddr(ip, 15008, &ss);
	int fd, one = 1;

	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&ss, sl) && errno != EINPROGRESS)
		goto err_fd;
	if (zm_identity_get(wp->idp, wp->opts.identity, &cert, err, sizeof(err))) {
		fprintf(stderr, "waypoint: certificate for %s: %s\n", wp->opts.identity, err);
		goto err_fd;
	}
	if (zm_tls_client_ssl_new(wp->tls_client, fd, cert, &expected_id, 1, &ssl, err,
				  sizeof(err))) {
		fprintf(stderr, "waypoint: TLS to %s: %s\n", key, err);
		zm_cert_put(cert);
		goto err_fd;
	}
	zm_cert_put(cert);
	h = calloc(1, sizeof(*h));
	if (!h)
		goto err_ssl;
	h->hc = hb_conn_new(HB_ROLE_CLIENT, fd, ssl, &wp_client_cbs, h, w->now_ms);
	if (!h->hc) {
		free(h);
		goto err_ssl;
	}
	h->w = w;
	h->ev.fn = wp_hconn_event;
	h->ev.fd = fd;
	h->connecting = true;
	snprintf(h->key, sizeof(h->key), "%s", key);
	h->next = w->hconns;
	w->hconns = h;
	wp_ev_set(w, &h->ev, EPOLLOUT);
	return h;

err_ssl:
	SSL_free(ssl);
err_fd:
	close(fd);
	errno = EHOSTUNREACH;
	return NULL;
}

struct hb_stream *wp_pool_open(struct wp_worker *w, const struct zm_addr *ip, unsigned int port,
			       const char *expected_id, const char *forwarded, void *ud)
{
	char key[sizeof(((struct wp_hconn *)0)->key)], addr[ZM_ADDR_STRLEN];
	char auth[HB_AUTHORITY_MAX], tp[HB_TRACEPARENT_LEN];
	struct hb_request req = {.authority = auth, .forwarded = forwarded, .traceparent = tp};
	struct wp_hconn *h;

	snprintf(key, sizeof(key), "%s|%s", zm_addr_port_format(ip, 15008, addr, sizeof(addr)),
		 expected_id);
	if (hb_authority_format(ip, port, auth, sizeof(auth)) ||
	    hb_traceparent_new(tp, sizeof(tp))) {
		errno = EINVAL;
		return NULL;
	}
	for (h = w->hconns; h; h = h->next) {
		if (h->server || h->dead || hb_conn_is_closed(h->hc) || strcmp(h->key, key))
			continue;
		if (hb_conn_is_ready(h->hc) ? hb_conn_streams_available(h->hc) > 0
					    : hb_conn_stream_count(h->hc) < HB_MAX_STREAMS)
			break;
	}
	if (!h)
		h = wp_pool_dial(w, ip, expected_id, key);
	if (!h)
		return NULL;
	h->idle_since_ms = 0;
	return hb_stream_open(h->hc, &req, ud);
}

static void wp_tick(struct wp_worker *w)
{
	struct wp_hconn *h, *next;

	for (h = w->hconns; h; h = next) {
		next = h->next;
		if (h->dead || h->connecting)
			continue;
		if (hb_conn_tick(h->hc, w->now_ms) < 0) {
			wp_hconn_drop(h);
			continue;
		}
		if (h->server || hb_conn_stream_count(h->hc)) {
			h->idle_since_ms = 0;
		} else if (!h->idle_since_ms) {
			h->idle_since_ms = w->now_ms;
		} else if (w->now_ms - h->idle_since_ms > WP_POOL_IDLE_MS) {
			hb_conn_shutdown(h->hc);
		}
	}
}

static int wp_listen(struct wp_worker *w)
{
	struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = in6addr_any};
	int one = 1, zero = 0, fd;

	a.sin6_port = htons((uint16_t)w->wp->opts.port);
	fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Dual stack: one socket takes IPv4 (mapped) and IPv6 connections. */
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 1024)) {
		int e = -errno;

		close(fd);
		return e;
	}
	w->lis.fd = fd;
	w->lis.fn = wp_accept;
	return wp_ev_set(w, &w->lis, EPOLLIN);
}

static void *wp_worker_main(void *arg)
{
	struct wp_worker *w = arg;
	struct epoll_event evs[128];
	uint64_t last_tick = 0;

	while (!atomic_load(&w->wp->stop)) {
		int n = epoll_wait(w->epfd, evs, 128, 50), i;

		w->now_ms = wp_now_ms();
		for (i = 0; i < n; i++) {
			struct wp_ev *ev = evs[i].data.ptr;

			ev->fn(w, ev, evs[i].events);
		}
		wp_http_tick(w);
		if (w->now_ms - last_tick >= 1000) {
			wp_tick(w);
			last_tick = w->now_ms;
		}
		wp_hconns_arm(w);
		while (w->dead) {
			struct wp_dead *d = w->dead;

			w->dead = d->next;
			d->free_fn(d->p);
			free(d);
		}
		/* Freeing a connection ends its streams, whose callbacks may write elsewhere. */
		wp_hconns_arm(w);
	}
	return NULL;
}

int wp_workers_start(struct wp *wp)
{
	int i, ret;

	for (i = 0; i < wp->n_workers; i++) {
		struct wp_worker *w = &wp->workers[i];

		w->wp = wp;
		w->id = i;
		w->lis.fd = -1;
		w->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (w->epfd < 0)
			return -errno;
		w->now_ms = wp_now_ms();
		ret = wp_listen(w);
		if (ret) {
			fprintf(stderr, "waypoint: listen on port %d: %s\n", wp->opts.port,
				strerror(-ret));
			return ret;
		}
	}
	for (i = 0; i < wp->n_workers; i++) {
		ret = pthread_create(&wp->workers[i].thread, NULL, wp_worker_main, &wp->workers[i]);
		if (ret)
			return -ret;
	}
	return 0;
}

void wp_workers_join(struct wp *wp)
{
	int i;

	for (i = 0; i < wp->n_workers; i++)
		pthread_join(wp->workers[i].thread, NULL);
}
