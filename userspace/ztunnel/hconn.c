// SPDX-License-Identifier: Apache-2.0
/*
 * HBONE connections of one worker: the outbound pool (client role) and the inbound 15008
 * sessions (server role), both driven by lib/hbone over lib/tls.
 *
 * Pool: connections are keyed by (source identity, expected destination identity, source IP,
 * destination ip:port) (zt_pool_key_format). A new stream goes to the first connection of its
 * key with a free slot (at most HB_MAX_STREAMS; a connection still handshaking counts its
 * queued streams), else a new connection is dialed; since a worker is single-threaded and a
 * new connection accepts streams at once, creation is serialised per key for free. A
 * connection without streams for --pool-idle-ms (default 5 min) is closed, its idle time
 * counted from its last stream. The pool is per worker: nghttp2 sessions are single-threaded
 * and a connection's work stays on one CPU.
 *
 * Inbound: per CONNECT, the checks of userspace/lib/hbone/README.md (400 when the authority is not
 * the address the connection arrived on, 503 when no local workload owns it or the dial fails),
 * then a dial to the pod from the outer connection's source address, 200 once it is up.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config.h"
#include "hbone/hbone.h"
#include "tls/tls.h"
#include "authz.h"
#include "zt.h"

struct zt_hconn {
	struct zt_ev ev;
	struct zt_hconn *next;
	struct zt_worker *w;
	struct hb_conn *hc;
	bool server;
	bool connecting; /* client: TCP connect in progress */
	bool dead;
	uint64_t idle_since_ms;
	struct zm_addr local, peer; /* of the outer TCP connection */
	unsigned int peer_port;
	char key[ZT_POOL_KEY_LEN];
	char err[ZT_POOL_KEY_LEN + 128]; /* why it failed, for the streams' access-log lines */
};

struct zt_pool {
	struct zt_hconn *head; /* client and server connections of this worker */
};

static void zt_hconn_free(void *p)
{
	struct zt_hconn *h = p;

	if (h->hc)
		hb_conn_free(h->hc);
	if (h->ev.fd >= 0)
		close(h->ev.fd);
	free(h);
}

/* Take h out of its worker; released after the current batch of events. */
static void zt_hconn_drop(struct zt_hconn *h)
{
	struct zt_hconn **pp;

	if (h->dead)
		return;
	h->dead = true;
	atomic_fetch_sub(h->server ? &h->w->zt->hbone_inbound : &h->w->zt->pool_conns, 1);
	zt_ev_del(h->w, &h->ev);
	for (pp = &h->w->pool->head; *pp; pp = &(*pp)->next) {
		if (*pp == h) {
			*pp = h->next;
			break;
		}
	}
	zt_defer_free(h->w, zt_hconn_free, h);
}

static void zt_hconn_arm(struct zt_hconn *h)
{
	uint32_t want;

	if (h->dead)
		return;
	want = h->connecting ? EPOLLOUT : hb_conn_want(h->hc);
	if (!want && hb_conn_is_closed(h->hc)) {
		zt_hconn_drop(h);
		return;
	}
	zt_ev_set(h->w, &h->ev, want ? want : EPOLLIN);
}

static void zt_hconn_event(struct zt_worker *w, struct zt_ev *ev, uint32_t events)
{
	struct zt_hconn *h = (struct zt_hconn *)ev;
	int err = 0;
	socklen_t sl = sizeof(err);

	(void)w;
	if (h->dead)
		return;
	if (h->connecting) {
		if (getsockopt(ev->fd, SOL_SOCKET, SO_ERROR, &err, &sl))
			err = errno;
		if (err) {
			snprintf(h->err, sizeof(h->err), "dial %s failed: %s", h->key,
				 strerror(err));
			zt_hconn_drop(h);
			return;
		}
		h->connecting = false;
		events = EPOLLOUT;
	}
	if (hb_conn_io(h->hc, events) < 0 || hb_conn_is_closed(h->hc)) {
		zt_hconn_drop(h);
		return;
	}
	zt_hconn_arm(h);
}

/* After a batch: streams written from socket events may have queued frames. */
static void zt_hconn_rearm_all(struct zt_worker *w)
{
	struct zt_hconn *h, *next;

	for (h = w->pool->head; h; h = next) {
		next = h->next;
		zt_hconn_arm(h);
	}
}

int zt_pool_new(struct zt_worker *w)
{
	w->pool = calloc(1, sizeof(*w->pool));
	return w->pool ? 0 : -ENOMEM;
}

void zt_pool_free(struct zt_worker *w)
{
	while (w->pool && w->pool->head)
		zt_hconn_drop(w->pool->head);
	free(w->pool);
	w->pool = NULL;
}

size_t zt_pool_conn_count(struct zt_worker *w)
{
	struct zt_hconn *h;
	size_t n = 0;

	for (h = w->pool->head; h; h = h->next)
		n += !h->server;
	return n;
}

void zt_pool_tick(struct zt_worker *w)
{
	struct zt_hconn *h, *next;

	for (h = w->pool->head; h; h = next) {
		next = h->next;
		if (h->connecting)
			continue;
		if (hb_conn_tick(h->hc, w->now_ms) < 0 || hb_conn_is_closed(h->hc)) {
			zt_hconn_drop(h);
			continue;
		}
		if (hb_conn_stream_count(h->hc)) {
			h->idle_since_ms = w->now_ms;
		} else if (!h->server &&
			   w->now_ms - h->idle_since_ms >= (uint64_t)w->zt->opts.pool_idle_ms) {
			/* Idle release: the peer gets a GOAWAY, we free the TLS state. */
			fprintf(stderr, "ztunnel: HBONE connection %s idle for %d ms: released\n",
				h->key, w->zt->opts.pool_idle_ms);
			hb_conn_shutdown(h->hc);
			hb_conn_io(h->hc, EPOLLOUT); /* best effort: flush the GOAWAY */
			zt_hconn_drop(h);
			continue;
		}
	}
	zt_hconn_rearm_all(w);
}

void zt_hsrv_tick(struct zt_worker *w)
{
	(void)w; /* server sessions are ticked with the pool (one list) */
}

void zt_hsrv_free_all(struct zt_worker *w)
{
	zt_pool_free(w);
}

void zt_hconn_after_batch(struct zt_worker *w)
{
	zt_hconn_rearm_all(w);
}

/* ---- client role ---- */

static void zt_client_on_response(struct hb_stream *s, int status)
{
	struct zt_conn *c = hb_stream_ud(s);

	if (!c || c->state != ZT_CS_WAIT_RESPONSE)
		return;
	if (status != HB_STATUS_OK) {
		hb_stream_set_ud(s, NULL);
		c->st = NULL;
		zt_conn_finish(c, ZT_OUT_HBONE_REFUSED, "status %d from %s", status,
			       c->info.dst_workload);
		return;
	}
	zt_relay_tunnel_start(c);
}

static void zt_client_on_stream_close(struct hb_stream *s, uint32_t error)
{
	struct zt_conn *c = hb_stream_ud(s);
	struct zt_hconn *h = hb_conn_ud(hb_stream_conn(s));

	if (c && c->state == ZT_CS_WAIT_RESPONSE && h && h->err[0]) {
		hb_stream_set_ud(s, NULL);
		c->st = NULL;
		zt_conn_finish(c, ZT_OUT_TLS_FAILED, "%s", h->err);
		return;
	}
	zt_tunnel_on_stream_close(s, error);
}

static void zt_hconn_on_close(struct hb_conn *conn, int err, const char *reason)
{
	struct zt_hconn *h = hb_conn_ud(conn);

	if (h && !h->err[0] && err)
		snprintf(h->err, sizeof(h->err), "%s", reason ? reason : strerror(-err));
	if (h && err && !h->server)
		fprintf(stderr, "ztunnel: HBONE connection %s closed: %s\n", h->key,
			reason ? reason : strerror(-err));
	if (h && h->server) {
		char a[ZM_ADDR_STRLEN];

		/*
		 * One line per inbound connection end, clean or not: a refused handshake, a stall
		 * or a protocol violation then always says who and why.
		 */
		fprintf(stderr, "ztunnel: inbound HBONE connection from %s ended: %s\n",
			zm_addr_port_format(&h->peer, h->peer_port, a, sizeof(a)),
			reason && *reason ? reason
			: err		  ? strerror(-err)
					  : "closed");
	}
}

static const struct hb_callbacks zt_client_cbs = {
    .on_response = zt_client_on_response,
    .on_data = zt_tunnel_on_data,
    .on_eof = zt_tunnel_on_eof,
    .on_writable = zt_tunnel_on_writable,
    .on_stream_close = zt_client_on_stream_close,
    .on_conn_close = zt_hconn_on_close,
};

static struct zt_hconn *zt_pool_find(struct zt_worker *w, const char *key)
{
	struct zt_hconn *h;

	for (h = w->pool->head; h; h = h->next) {
		if (h->server || h->dead || strcmp(h->key, key) || hb_conn_is_closed(h->hc))
			continue;
		if (hb_conn_is_ready(h->hc) ? hb_conn_streams_available(h->hc) > 0
					    : hb_conn_stream_count(h->hc) < HB_MAX_STREAMS)
			return h;
	}
	return NULL;
}

static int zt_pool_dial(struct zt_worker *w, struct zt_conn *c, const struct zt_route *r,
			const char *key, const char *const *ids, size_t n_ids,
			struct zt_hconn **out)
{
	struct zt *zt = w->zt;
	struct zt_hconn *h = calloc(1, sizeof(*h));
	struct zm_cert *cert = NULL;
	SSL *ssl = NULL;
	int fd = -1, err;

	if (!h)
		return -ENOMEM;
	err = zm_identity_get(zt->idp, c->info.src_id, &cert, h->err, sizeof(h->err));
	if (err)
		goto fail;
	err = zt_dial(&c->info.src, &r->dial_addr, r->dial_port, &fd);
	if (err) {
		snprintf(h->err, sizeof(h->err), "%s", strerror(-err));
		goto fail;
	}
	err = zm_tls_client_ssl_new(zt->tls_client, fd, cert, ids, n_ids, &ssl, h->err,
				    sizeof(h->err));
	if (err)
		goto fail;
	h->hc = hb_conn_new(HB_ROLE_CLIENT, fd, ssl, &zt_client_cbs, h, w->now_ms);
	if (!h->hc) {
		err = -errno;
		SSL_free(ssl);
		snprintf(h->err, sizeof(h->err), "hb_conn_new: %s", strerror(errno));
		goto fail;
	}
	zm_cert_put(cert);
	h->ev = (struct zt_ev){zt_hconn_event, fd, 0};
	h->w = w;
	h->connecting = true;
	h->idle_since_ms = w->now_ms;
	snprintf(h->key, sizeof(h->key), "%s", key);
	h->next = w->pool->head;
	w->pool->head = h;
	atomic_fetch_add(&zt->pool_conns, 1);
	zt_hconn_arm(h);
	*out = h;
	return 0;
fail:
	snprintf(c->detail, sizeof(c->detail), "%.150s", h->err);
	if (fd >= 0)
		close(fd);
	zm_cert_put(cert);
	free(h);
	return err ? err : -EIO;
}

static void zt_hbone_headers(const struct zt_conn *c, const struct zt_route *r, char *fwd,
			     char *bag, char *tp)
{
	const struct zm_cfg_workload *src = r->src;
	struct hb_baggage b = {
	    .cluster = src->cluster_id,
	    .ns = src->namespace,
	    .workload_type = src->workload_type[0] ? src->workload_type : "pod",
	    .workload_name = src->workload_name[0] ? src->workload_name : src->name,
	    .service_name = src->canonical_name,
	    .service_version = src->canonical_revision,
	};

	if (hb_forwarded_format(&c->info.src, c->info.sport, r->svc ? r->svc->hostname : "", fwd,
				HB_FORWARDED_MAX))
		fwd[0] = '\0';
	if (hb_baggage_format(&b, bag, HB_BAGGAGE_MAX))
		bag[0] = '\0';
	if (hb_traceparent_new(tp, HB_TRACEPARENT_LEN))
		tp[0] = '\0';
}

int zt_hbone_connect(struct zt_conn *c, const struct zt_route *r)
{
	struct zt_worker *w = c->w;
	char key[ZT_POOL_KEY_LEN], dst_id[ZT_ID_LEN], auth[HB_AUTHORITY_MAX];
	char fwd[HB_FORWARDED_MAX], bag[HB_BAGGAGE_MAX], tp[HB_TRACEPARENT_LEN];
	const char *ids[1] = {dst_id};
	const struct zm_cfg_workload *peer = r->waypoint ? r->waypoint : r->dst;
	struct hb_request req;
	struct zt_hconn *h;
	int err;

	if (!w->zt->idp) {
		zt_conn_finish(c, ZT_OUT_NO_IDENTITY, "ztunnel runs without --ca-dir");
		return -ENOKEY;
	}
	if (!peer || zm_cfg_workload_identity(peer, dst_id, sizeof(dst_id)) ||
	    zt_pool_key_format(c->info.src_id, dst_id, &c->info.src, &r->dial_addr, r->dial_port,
			       key, sizeof(key)) ||
	    hb_authority_format(&r->target_addr, r->target_port, auth, sizeof(auth))) {
		zt_conn_finish(c, ZT_OUT_INTERNAL, "cannot build the HBONE request");
		return -EINVAL;
	}
	h = zt_pool_find(w, key);
	if (!h) {
		err = zt_pool_dial(w, c, r, key, ids, 1, &h);
		if (err) {
			zt_conn_finish(c,
				       err == -ENOENT || err == -EACCES ? ZT_OUT_NO_IDENTITY
									: ZT_OUT_DIAL_FAILED,
				       NULL);
			return err;
		}
	}
	zt_hbone_headers(c, r, fwd, bag, tp);
	req = (struct hb_request){
	    .authority = auth, .forwarded = fwd, .baggage = bag, .traceparent = tp};
	c->tunnel = true;
	c->st = hb_stream_open(h->hc, &req, c);
	if (!c->st) {
		zt_conn_finish(c, ZT_OUT_TLS_FAILED, "opening a stream on %s: %s", key,
			       strerror(errno));
		return -EIO;
	}
	c->pool_conn = h;
	h->idle_since_ms = w->now_ms; /* idle time counts from the last use */
	c->state = ZT_CS_WAIT_RESPONSE;
	c->deadline_ms = w->now_ms + ZT_CONNECT_TIMEOUT_MS;
	zt_hconn_arm(h);
	return 0;
}

/* ---- server role (15008) ---- */

static void zt_server_refuse(struct zt_conn *c, struct hb_stream *s, int status, enum zt_outcome o,
			     const char *why)
{
	hb_stream_set_ud(s, NULL);
	hb_stream_respond(s, status);
	c->st = NULL;
	zt_conn_log_open(c);
	zt_conn_finish(c, o, "%d %s", status, why);
}

static void zt_server_on_request(struct hb_stream *s, const struct hb_request *req)
{
	struct zt_hconn *h = hb_conn_ud(hb_stream_conn(s));
	struct zt_conn *c = zt_conn_new(h->w, -1, false);
	const struct zm_cfg_workload *dst, *src;
	char why[ZM_RBAC_REASON_LEN];
	struct zt_snap *st;
	int err;

	if (!c) {
		hb_stream_respond(s, HB_STATUS_UNAVAILABLE);
		return;
	}
	c->info.dir = "inbound";
	c->info.via = "hbone";
	c->info.src = h->peer;
	c->info.sport = (__u16)h->peer_port;
	c->info.dst = req->dst;
	c->info.dport = (__u16)req->dst_port;
	c->tunnel = true;
	c->connect_on_a = true;
	c->st = s;
	hb_stream_set_ud(s, c);
	st = zt_state_get();
	dst = zt_route_local_workload(st, &req->dst);
	src = zm_config_workload_by_ip(st->cfg, NULL, &h->peer);
	zt_conn_describe(c, src, dst, NULL, "destination", true, req->peer_identity);
	zt_state_put(st);
	if (!zm_addr_equal(&req->dst, &h->local)) {
		zt_server_refuse(c, s, HB_STATUS_BAD_REQUEST, ZT_OUT_BAD_REQUEST,
				 "authority is not the address the connection arrived on");
		return;
	}
	if (!dst) {
		zt_server_refuse(c, s, HB_STATUS_UNAVAILABLE, ZT_OUT_NO_WORKLOAD, req->authority);
		return;
	}
	if (zt_authz_inbound(c, req->peer_identity, why, sizeof(why))) {
		zt_server_refuse(c, s, HB_STATUS_DENIED, ZT_OUT_DENIED, why);
		return;
	}
	c->info.up = req->dst;
	c->info.up_port = (__u16)req->dst_port;
	err = zt_dial(&h->peer, &req->dst, (__u16)req->dst_port, &c->a.ev.fd);
	if (!err)
		err = zt_ev_set(c->w, &c->a.ev, EPOLLOUT);
	if (err) {
		zt_server_refuse(c, s, HB_STATUS_UNAVAILABLE, ZT_OUT_DIAL_FAILED, strerror(-err));
		return;
	}
	c->state = ZT_CS_CONNECTING;
	c->deadline_ms = c->w->now_ms + ZT_CONNECT_TIMEOUT_MS;
	zt_conn_log_open(c);
}

/* lib/hbone answered 400 itself (not a CONNECT to ip:port): one line per refusal. */
static void zt_server_on_bad_request(struct hb_conn *conn, const char *method,
				     const char *authority, const char *why)
{
	struct zt_hconn *h = hb_conn_ud(conn);
	char a[ZM_ADDR_STRLEN];

	fprintf(stderr,
		"ztunnel: inbound HBONE request from %s (%s) refused with 400: %s "
		"(method \"%.16s\", authority \"%.64s\")\n",
		zm_addr_port_format(&h->peer, h->peer_port, a, sizeof(a)),
		*hb_conn_peer_identity(conn) ? hb_conn_peer_identity(conn) : "no identity", why,
		method, authority);
}

static const struct hb_callbacks zt_server_cbs = {
    .on_request = zt_server_on_request,
    .on_bad_request = zt_server_on_bad_request,
    .on_data = zt_tunnel_on_data,
    .on_eof = zt_tunnel_on_eof,
    .on_writable = zt_tunnel_on_writable,
    .on_stream_close = zt_tunnel_on_stream_close,
    .on_conn_close = zt_hconn_on_close,
};

void zt_hbone_accept(struct zt_worker *w, int fd)
{
	struct zt *zt = w->zt;
	struct zt_hconn *h;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	unsigned int lport;
	char err[256];
	SSL *ssl;

	if (!zt->tls_server) {
		/* No identities: we cannot terminate mTLS, so refuse rather than pretend. */
		zt_conn_reset_fd(fd);
		return;
	}
	h = calloc(1, sizeof(*h));
	if (!h)
		goto fail;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) ||
	    zm_addr_from_sockaddr((struct sockaddr *)&ss, &h->local, &lport))
		goto fail;
	sl = sizeof(ss);
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) ||
	    zm_addr_from_sockaddr((struct sockaddr *)&ss, &h->peer, &h->peer_port))
		goto fail;
	if (zm_tls_server_ssl_new(zt->tls_server, fd, &h->local, &ssl, err, sizeof(err))) {
		fprintf(stderr, "ztunnel: TLS on an inbound HBONE connection: %s\n", err);
		goto fail;
	}
	h->hc = hb_conn_new(HB_ROLE_SERVER, fd, ssl, &zt_server_cbs, h, w->now_ms);
	if (!h->hc) {
		SSL_free(ssl);
		goto fail;
	}
	h->ev = (struct zt_ev){zt_hconn_event, fd, 0};
	h->w = w;
	h->server = true;
	h->idle_since_ms = w->now_ms;
	snprintf(h->key, sizeof(h->key), "inbound");
	h->next = w->pool->head;
	w->pool->head = h;
	atomic_fetch_add(&zt->hbone_inbound, 1);
	zt_hconn_arm(h);
	return;
fail:
	free(h);
	zt_conn_reset_fd(fd);
}
