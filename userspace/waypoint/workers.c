// SPDX-License-Identifier: Apache-2.0
/*
 * Waypoint workers on the runtime (lib/rt): a SO_REUSEPORT listener on 15008 per worker (dual
 * stack; the kernel spreads connections), the inbound HBONE server sessions, and the pool of
 * outbound HBONE client sessions to endpoint pods, keyed by pod address and expected server
 * identity. Both are the worker's HBONE connection set (rt/hbset.h: at most HB_MAX_STREAMS
 * streams per connection, a new connection when all are full, health PINGs, GOAWAY and
 * release after five idle minutes, re-armed after every batch). Accept back-off, timers and
 * deferred release are the runtime's.
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
#include "tls/tls.h"
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
    .on_request = wp_ds_on_request,
    .on_data = wp_ds_on_data,
    .on_eof = wp_ds_on_eof,
    .on_writable = wp_ds_on_writable,
    .on_stream_close = wp_ds_on_close,
};

static const struct hb_callbacks wp_client_cbs = {
    .on_response = wp_up_on_response,
    .on_data = wp_up_on_data,
    .on_eof = wp_up_on_eof,
    .on_writable = wp_up_on_writable,
    .on_stream_close = wp_up_on_close,
};

struct wp_worker *wp_stream_worker(struct hb_stream *s)
{
	return rt_hconn_of_stream(s)->ud;
}

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

static struct rt_hconn *wp_pool_dial(struct wp_worker *w, const struct zm_addr *ip,
				     const char *expected_id, const char *key)
{
	struct wp *wp = w->wp;
	struct sockaddr_storage ss;
	struct zm_cert *cert = NULL;
	char err[256];
	SSL *ssl;
	socklen_t sl = zm_addr_to_sockaddr(ip, ZM_PORT_HBONE, &ss);
	int fd, one = 1;

	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&ss, sl) && errno != EINPROGRESS)
		goto err_fd;
	if (zm_identity_get(wp->idp, wp->opts.identity, &cert, err, sizeof(err))) {
		obs_log(OBS_WARN, "identity", "certificate for %s: %s", wp->opts.identity, err);
		goto err_fd;
	}
	if (zm_tls_client_ssl_new(wp->tls_client, fd, cert, &expected_id, 1, &ssl, err,
				  sizeof(err))) {
		obs_log(OBS_WARN, "hbone", "TLS to %s: %s", key, err);
		zm_cert_put(cert);
		goto err_fd;
	}
	zm_cert_put(cert);
	return rt_hset_client_new(&w->hset, key, fd, ssl, w);
err_fd:
	close(fd);
	errno = EHOSTUNREACH;
	return NULL;
}

struct hb_stream *wp_pool_open(struct wp_worker *w, const struct zm_addr *ip, unsigned int port,
			       const char *expected_id, const char *forwarded, void *ud)
{
	char key[RT_HCONN_KEY_LEN], addr[ZM_ADDR_STRLEN];
	char auth[HB_AUTHORITY_MAX], tp[HB_TRACEPARENT_LEN];
	struct hb_request req = {.authority = auth, .forwarded = forwarded, .traceparent = tp};
	struct hb_stream *st;
	struct rt_hconn *h;

	snprintf(key, sizeof(key), "%s|%s",
		 zm_addr_port_format(ip, ZM_PORT_HBONE, addr, sizeof(addr)), expected_id);
	if (hb_authority_format(ip, port, auth, sizeof(auth)) ||
	    hb_traceparent_new(tp, sizeof(tp))) {
		errno = EINVAL;
		return NULL;
	}
	h = rt_hset_find(&w->hset, key);
	if (!h)
		h = wp_pool_dial(w, ip, expected_id, key);
	if (!h)
		return NULL;
	st = hb_stream_open(h->hc, &req, ud);
	if (st)
		rt_hconn_used(h);
	return st;
}

int wp_worker_init(struct rt_worker *rw, void *ud)
{
	struct wp *wp = ud;
	struct wp_worker *w = &wp->workers[rw->id];
	struct rt_listen_opts o = {.family = AF_INET6,
				   .port = (unsigned int)wp->opts.port,
				   .backlog = 1024,
				   .reuseport = true};
	struct rt_hset_ops ops = {
	    .client = &wp_client_cbs,
	    .server = &wp_server_cbs,
	    .on_closed = wp_conn_closed,
	};
	int fd, r;

	w->wp = wp;
	w->id = rw->id;
	w->loop = &rw->loop;
	rw->ud = w;
	/* Dual stack: one socket takes IPv4 (mapped) and IPv6 connections. */
	fd = rt_listen(&o);
	if (fd < 0) {
		obs_log(OBS_ERROR, "waypoint", "listen on port %d: %s", wp->opts.port,
			strerror(-fd));
		return fd;
	}
	snprintf(w->lis_name, sizeof(w->lis_name), "HBONE [::]:%d", wp->opts.port);
	r = rt_listener_start(w->loop, &w->lis, fd, w->lis_name, wp_accept, w);
	return r ? r : rt_hset_init(&w->hset, w->loop, &ops, WP_POOL_IDLE_MS);
}
