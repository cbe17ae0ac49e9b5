// SPDX-License-Identifier: Apache-2.0
/*
 * Waypoint workers on the runtime (lib/rt): a SO_REUSEPORT listener on 15008 per worker (dual
 * stack; the kernel spreads connections), the inbound HBONE server sessions (their streams go
 * to inbound.c), and the pool of outbound HBONE client sessions to endpoint pods, keyed by pod
 * address and expected server identity (their streams are tunnel.c's). Both are the worker's
 * HBONE connection set (rt/hbset.h: at most HB_MAX_STREAMS
 * streams per connection, a new connection when all are full, health PINGs, GOAWAY and
 * release after five idle minutes, re-armed after every batch). Accept back-off, timers and
 * deferred release are the runtime's.
 *
 * Upgrades (rt/handover.h): the listening sockets are exported as "waypoint:PORT", and a
 * starting waypoint takes those of the one it replaces instead of opening its own. Draining
 * (rt/drain.h), each worker closes its listeners, sends GOAWAY on every HBONE connection and
 * tells each HTTP connection to finish what is in flight (conn.c).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hbone/hbone.h"
#include "obs/log.h"
#include "rt/handover.h"
#include "tls/tls.h"
#include "conn.h"
#include "inbound.h"
#include "tunnel.h"
#include "wp.h"
#include "zmesh/ports.h"

#define WP_POOL_IDLE_MS (5 * 60 * 1000)

static void wp_conn_closed(struct rt_hconn *h, int err, const char *reason)
{
	char a[ZM_ADDR_STRLEN];

	if (!err || err == -ESHUTDOWN)
		return;
	if (h->server)
		obs_log(OBS_WARN, "hbone", "hbone inbound connection %s closed: %s",
			zm_addr_port_format(&h->peer, h->peer_port, a, sizeof(a)), reason);
	else
		obs_log(OBS_WARN, "hbone", "hbone upstream connection %s closed: %s", h->key,
			reason);
}

static const struct hb_callbacks wp_server_cbs = {
    .on_request = wp_in_on_request,
    .on_data = wp_in_on_data,
    .on_eof = wp_in_on_eof,
    .on_writable = wp_in_on_writable,
    .on_stream_close = wp_in_on_close,
};

static const struct hb_callbacks wp_client_cbs = {
    .on_response = wp_tun_on_response,
    .on_data = wp_tun_on_data,
    .on_eof = wp_tun_on_eof,
    .on_writable = wp_tun_on_writable,
    .on_stream_close = wp_tun_on_close,
};

static void wp_accept(struct rt_loop *l, struct rt_listener *li, int fd)
{
	struct wp_worker *w = li->ud;
	char err[256];
	SSL *ssl;

	(void)l;
	if (zm_tls_server_ssl_new(w->wp->tls_server, fd, NULL, &ssl, err, sizeof(err))) {
		obs_log(OBS_WARN, "hbone", "TLS for an inbound connection: %s, closing", err);
		close(fd);
		return;
	}
	if (!rt_hset_server_new(&w->hset, fd, ssl, w))
		obs_log(OBS_WARN, "hbone", "inbound connection dropped: %s", strerror(errno));
}

static int wp_worker_listen_fd(struct wp_worker *w, int fd, const char *name)
{
	int r;

	if (w->n_lis == WP_MAX_LIS) {
		obs_log(OBS_ERROR, "waypoint", "worker %d: more than %d listening sockets", w->id,
			WP_MAX_LIS);
		close(fd);
		return -ENOSPC;
	}
	r = rt_listener_start(w->loop, &w->lis[w->n_lis], fd, w->lis_name, wp_accept, w);
	if (r) {
		close(fd);
		return r;
	}
	w->n_lis++;
	return rt_export_add(name, fd);
}

/* The sockets inherited from the waypoint we replace (this worker's share), else a new one. */
static int wp_worker_listen(struct wp_worker *w)
{
	struct rt_listen_opts o = {.family = AF_INET6,
				   .port = (unsigned int)w->wp->opts.port,
				   .backlog = 1024,
				   .reuseport = true};
	char name[RT_HANDOVER_NAME_LEN];
	unsigned int want, k;
	int fd, r;

	snprintf(name, sizeof(name), "waypoint:%d", w->wp->opts.port);
	snprintf(w->lis_name, sizeof(w->lis_name), "HBONE [::]:%d", w->wp->opts.port);
	want = rt_inherit_share(name, w->id, w->wp->n_workers);
	for (k = 0; k < want; k++) {
		r = wp_worker_listen_fd(w, rt_inherit_take(name), name);
		if (r)
			return r;
	}
	if (want)
		return 0;
	/* Dual stack: one socket takes IPv4 (mapped) and IPv6 connections. */
	fd = rt_listen(&o);
	if (fd < 0) {
		obs_log(OBS_ERROR, "waypoint", "listen on port %d: %s", w->wp->opts.port,
			strerror(-fd));
		return fd;
	}
	return wp_worker_listen_fd(w, fd, name);
}

/* Draining: stop accepting, GOAWAY everywhere, HTTP connections finish and end. */
static void wp_worker_woken(struct rt_loop *l, void *ud)
{
	struct wp_worker *w = ud;
	int i;

	if (!rt_drain_worker_should_quiet(&w->wp->drain, &w->quiet))
		return;
	for (i = 0; i < w->n_lis; i++) {
		rt_export_del(w->lis[i].ev.fd);
		rt_listener_close(l, &w->lis[i]);
	}
	w->n_lis = 0;
	rt_hset_drain(&w->hset);
	wp_conns_drain(w);
	rt_drain_worker_quiet(&w->wp->drain, &w->quiet);
}

int wp_worker_init(struct rt_worker *rw, void *ud)
{
	struct wp *wp = ud;
	struct wp_worker *w = &wp->workers[rw->id];
	struct rt_hset_ops ops = {
	    .client = &wp_client_cbs,
	    .server = &wp_server_cbs,
	    .on_closed = wp_conn_closed,
	    .n_client = &wp->n_upstream,
	    .n_server = &wp->n_inbound,
	};
	int r;

	w->wp = wp;
	w->id = rw->id;
	w->loop = &rw->loop;
	rw->ud = w;
	zm_list_init(&w->conns);
	rt_loop_on_wake(w->loop, wp_worker_woken, w);
	r = wp_worker_listen(w);
	return r ? r : rt_hset_init(&w->hset, w->loop, &ops, WP_POOL_IDLE_MS);
}
