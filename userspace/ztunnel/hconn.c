// SPDX-License-Identifier: Apache-2.0
/*
 * The ztunnel's HBONE handlers: the client role (outbound: the pool key of a route, dialing a
 * new pooled connection from the source workload's address with its certificate, the CONNECT
 * with its forwarded/baggage/traceparent headers) and the server role (inbound 15008: per
 * CONNECT, the checks of userspace/lib/hbone/README.md: 400 when the authority is not the address
 * the connection arrived on, 503 when no local workload owns it or the dial fails, then a dial to
 * the pod from the outer connection's source address, 200 once it is up). Pooling, health,
 * idle release and arming are lib/rt's HBONE connection set (rt/hbset.h), one per worker.
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
#include "obs/log.h"
#include "authz.h"
#include "zt.h"

/* The connection a stream rides on (its rt_hconn's worker is the stream's). */
static struct zt_worker *zt_hconn_worker(const struct rt_hconn *h)
{
	return h->ud;
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
	struct rt_hconn *h = rt_hconn_of_stream(s);

	if (c && c->state == ZT_CS_WAIT_RESPONSE && h && h->err[0]) {
		hb_stream_set_ud(s, NULL);
		c->st = NULL;
		zt_conn_finish(c, ZT_OUT_TLS_FAILED, "%s", h->err);
		return;
	}
	zt_tunnel_on_stream_close(s, error);
}

static void zt_hconn_on_closed(struct rt_hconn *h, int err, const char *reason)
{
	char a[ZM_ADDR_STRLEN];

	if (err && !h->server)
		obs_log(OBS_WARN, "hbone", "HBONE connection %s closed: %s", h->key,
			reason ? reason : strerror(-err));
	/*
	 * One line per inbound connection end, clean or not: a refused handshake, a stall or a
	 * protocol violation then always says who and why.
	 */
	if (h->server)
		obs_log(err ? OBS_WARN : OBS_INFO, "hbone",
			"inbound HBONE connection from %s ended: %s",
			zm_addr_port_format(&h->peer, h->peer_port, a, sizeof(a)),
			reason && *reason ? reason
			: err		  ? strerror(-err)
					  : "closed");
}

static const struct hb_callbacks zt_client_cbs = {
    .on_response = zt_client_on_response,
    .on_data = zt_tunnel_on_data,
    .on_eof = zt_tunnel_on_eof,
    .on_writable = zt_tunnel_on_writable,
    .on_stream_close = zt_client_on_stream_close,
};

/* Dial a new pooled connection for c's route; NULL with c->detail and the error in *err. */
static struct rt_hconn *zt_pool_dial(struct zt_worker *w, struct zt_conn *c,
				     const struct zt_route *r, const char *key,
				     const char *const *ids, size_t n_ids, int *err)
{
	struct zt *zt = w->zt;
	struct zm_cert *cert = NULL;
	struct rt_hconn *h;
	char why[RT_HCONN_KEY_LEN + 128] = "";
	SSL *ssl = NULL;
	int fd = -1;

	*err = zm_identity_get(zt->idp, c->info.src_id, &cert, why, sizeof(why));
	if (*err)
		goto fail;
	*err = zt_dial(&c->info.src, &r->dial_addr, r->dial_port, &fd);
	if (*err) {
		snprintf(why, sizeof(why), "%s", strerror(-*err));
		goto fail;
	}
	*err = zm_tls_client_ssl_new(zt->tls_client, fd, cert, ids, n_ids, &ssl, why, sizeof(why));
	if (*err)
		goto fail;
	zm_cert_put(cert);
	h = rt_hset_client_new(&w->hset, key, fd, ssl, w); /* owns fd and ssl, failed or not */
	if (!h) {
		*err = -errno;
		snprintf(c->detail, sizeof(c->detail), "hb_conn_new: %s", strerror(errno));
	}
	return h;
fail:
	snprintf(c->detail, sizeof(c->detail), "%.150s", why);
	if (fd >= 0)
		close(fd);
	zm_cert_put(cert);
	if (!*err)
		*err = -EIO;
	return NULL;
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
	struct rt_hconn *h;
	bool early;
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
	h = rt_hset_find(&w->hset, key);
	if (!h) {
		h = zt_pool_dial(w, c, r, key, ids, 1, &err);
		if (!h) {
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
	early = w->zt->opts.early_data;
	if (early)
		hb_conn_cork(h->hc); /* the CONNECT and the client's first bytes in one record */
	c->st = hb_stream_open(h->hc, &req, c);
	if (!c->st) {
		err = errno;
		if (early)
			hb_conn_uncork(h->hc);
		zt_conn_finish(c, ZT_OUT_TLS_FAILED, "opening a stream on %s: %s", key,
			       strerror(err));
		return -EIO;
	}
	c->pool_conn = h;
	rt_hconn_used(h); /* idle time counts from the last use */
	c->state = ZT_CS_WAIT_RESPONSE;
	zt_conn_deadline_start(c);
	if (early) {
		zt_relay_tunnel_early(c);
		hb_conn_uncork(h->hc);
	}
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
	struct rt_hconn *h = rt_hconn_of_stream(s);
	struct zt_conn *c = zt_conn_new(zt_hconn_worker(h), -1, false);
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
		err = rt_ev_set(c->w->loop, &c->a.ev, EPOLLOUT);
	if (err) {
		zt_server_refuse(c, s, HB_STATUS_UNAVAILABLE, ZT_OUT_DIAL_FAILED, strerror(-err));
		return;
	}
	c->state = ZT_CS_CONNECTING;
	zt_conn_deadline_start(c);
	zt_conn_log_open(c);
}

/* lib/hbone answered 400 itself (not a CONNECT to ip:port): one line per refusal. */
static void zt_server_on_bad_request(struct hb_conn *conn, const char *method,
				     const char *authority, const char *why)
{
	struct rt_hconn *h = rt_hconn_of(conn);
	char a[ZM_ADDR_STRLEN];

	obs_log(OBS_WARN, "hbone",
		"inbound HBONE request from %s (%s) refused with 400: %s "
		"(method \"%.16s\", authority \"%.64s\")",
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
};

int zt_hset_init(struct zt_worker *w)
{
	struct rt_hset_ops ops = {
	    .client = &zt_client_cbs,
	    .server = &zt_server_cbs,
	    .on_closed = zt_hconn_on_closed,
	    .n_client = &w->zt->pool_conns,
	    .n_server = &w->zt->hbone_inbound,
	};

	return rt_hset_init(&w->hset, w->loop, &ops, (uint64_t)w->zt->opts.pool_idle_ms);
}

void zt_hbone_accept(struct zt_worker *w, int fd)
{
	struct zt *zt = w->zt;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct zm_addr local;
	unsigned int lport;
	char err[256];
	SSL *ssl;

	if (!zt->tls_server) {
		/* No identities: we cannot terminate mTLS, so refuse rather than pretend. */
		zt_conn_reset_fd(fd);
		return;
	}
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) ||
	    zm_addr_from_sockaddr((struct sockaddr *)&ss, &local, &lport)) {
		zt_conn_reset_fd(fd);
		return;
	}
	/* The server certificate is picked by the address the connection arrived on. */
	if (zm_tls_server_ssl_new(zt->tls_server, fd, &local, &ssl, err, sizeof(err))) {
		obs_log(OBS_WARN, "hbone", "TLS on an inbound HBONE connection: %s", err);
		zt_conn_reset_fd(fd);
		return;
	}
	if (!rt_hset_server_new(&w->hset, fd, ssl, w))
		obs_log(OBS_WARN, "hbone", "inbound HBONE connection dropped: %s", strerror(errno));
}
