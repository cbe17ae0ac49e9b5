// SPDX-License-Identifier: Apache-2.0
/*
 * Proxied connections: creation, description (access log, metric series), the upstream dial
 * that keeps the client's address (IP_TRANSPARENT + IP_BIND_ADDRESS_NO_PORT + bind(ip:0)),
 * the outbound (15001) and inbound plaintext (15006) accept paths, dial timeouts and the one
 * place a connection ends (zt_conn_finish: close line, counters, release).
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/list.h"
#include "config/config.h"
#include "hbone/hbone.h"
#include "authz.h"
#include "zt.h"

static void zt_leg_event(struct rt_loop *l, struct rt_ev *ev, uint32_t events);
static void zt_conn_deadline(struct rt_loop *l, struct rt_timer *t);

struct zt_conn *zt_conn_new(struct zt_worker *w, int fd_a, bool a_is_client)
{
	struct zt_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->w = w;
	c->a_is_client = a_is_client;
	rt_ev_init(&c->a.ev, fd_a, zt_leg_event);
	rt_ev_init(&c->b.ev, -1, zt_leg_event);
	c->a.c = c->b.c = c;
	c->b.side = 1;
	rt_timer_init(&c->deadline, zt_conn_deadline);
	c->ab.pipe[0] = c->ab.pipe[1] = c->ba.pipe[0] = c->ba.pipe[1] = -1;
	c->info.start_ms = w->loop->now_ms;
	c->info.via = "-";
	zm_list_add(&w->conns, &c->link);
	atomic_fetch_add(&w->zt->n_conns, 1);
	return c;
}

static void zt_conn_free(void *p)
{
	struct zt_conn *c = p;

	atomic_fetch_sub(&c->w->zt->n_conns, 1);
	free(c);
}

/* Close with RST: the peer learns the connection failed instead of seeing a clean EOF. */
void zt_conn_reset_fd(int fd)
{
	struct linger lg = {1, 0};

	if (fd < 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

void zt_conn_finish(struct zt_conn *c, enum zt_outcome o, const char *fmt, ...)
{
	struct zt_worker *w = c->w;
	struct obs_rec rec;
	bool rst = o != ZT_OUT_OK;
	va_list ap;

	if (c->state == ZT_CS_DONE)
		return;
	c->state = ZT_CS_DONE;
	c->outcome = o;
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(c->detail, sizeof(c->detail), fmt, ap);
		va_end(ap);
	}
	zt_access_close_rec(&c->info, o, c->detail, w->loop->now_ms - c->info.start_ms, &rec);
	obs_rec_emit(&rec);
	if (c->m)
		obs_counter_add(c->m[ZT_M_CLOSED], 1);
	if (c->st) {
		/* Detach first: the library reports this stream's close later, to nobody. */
		hb_stream_set_ud(c->st, NULL);
		if (rst)
			hb_stream_reset(c->st, HB_ERR_CONNECT_ERROR);
		c->st = NULL;
	}
	/* A reset goes out as an RST: the peer learns the connection failed, not a clean EOF. */
	rt_ev_close(w->loop, &c->a.ev, rst);
	rt_ev_close(w->loop, &c->b.ev, rst);
	zt_relay_pipe_put(&c->ab);
	zt_relay_pipe_put(&c->ba);
	zm_list_del(&c->link);
	rt_defer_free_timed(w->loop, &c->deadline, zt_conn_free, c);
}

void zt_conn_count(struct zt_conn *c, bool from_a, size_t n)
{
	if (from_a == c->a_is_client) {
		c->info.bytes_recv += n;
		if (c->m)
			obs_counter_add(c->m[ZT_M_RECEIVED], n);
	} else {
		c->info.bytes_sent += n;
		if (c->m)
			obs_counter_add(c->m[ZT_M_SENT], n);
	}
}

int zt_dial(const struct zm_addr *src, const struct zm_addr *dst, __u16 port, int *out)
{
	struct sockaddr_storage ss;
	socklen_t sl = zm_addr_to_sockaddr(dst, port, &ss);
	int fam = dst->family == ZM_AF_INET ? AF_INET : AF_INET6, one = 1, fd, r;

	fd = socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_TCP, 1 /* TCP_NODELAY */, &one, sizeof(one));
	if (src && src->family == dst->family) {
		struct sockaddr_storage bs;
		socklen_t bl = zm_addr_to_sockaddr(src, 0, &bs);

		/*
		 * Keep the client's address: the server sees the real peer, and the capture
		 * program routes the replies back to this socket. NO_PORT defers the port choice
		 * to connect(), where the full 4-tuple is known, so ports do not run out per IP.
		 */
		if (setsockopt(fd, fam == AF_INET ? SOL_IP : SOL_IPV6,
			       fam == AF_INET ? IP_TRANSPARENT : IPV6_TRANSPARENT, &one,
			       sizeof(one)) ||
		    setsockopt(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one)) ||
		    bind(fd, (struct sockaddr *)&bs, bl))
			goto err;
	}
	if (connect(fd, (struct sockaddr *)&ss, sl) && errno != EINPROGRESS)
		goto err;
	*out = fd;
	return 0;
err:
	r = -errno;
	close(fd);
	return r;
}

static void zt_wl_text(const struct zm_cfg_workload *wl, char *buf, size_t len)
{
	if (wl)
		snprintf(buf, len, "%s/%s", wl->namespace, wl->name);
	else
		buf[0] = '\0';
}

/*
 * Istio's labels of c (c->info filled): the reference reports canonical service and revision
 * as app and version; a source principal only when the peer proved it (mTLS) or, outbound,
 * for our own workload.
 */
static struct obs_series *const *zt_conn_series(struct zt_conn *c,
						const struct zm_cfg_workload *src,
						const struct zm_cfg_workload *dst,
						const struct zm_cfg_service *svc,
						const char *reporter, bool mtls, const char *flags)
{
	struct obs_istio_traffic t = {.reporter = reporter,
				      .request_protocol = "tcp",
				      .response_flags = flags,
				      .connection_security_policy =
					  mtls ? "mutual_tls" : "unknown"};
	bool src_known = mtls || !strcmp(reporter, "source");

	obs_istio_peer_fill(&t.src, src, true);
	obs_istio_peer_fill(&t.dst, dst, true);
	snprintf(t.src.principal, sizeof(t.src.principal), "%s", src_known ? c->info.src_id : "");
	snprintf(t.dst.principal, sizeof(t.dst.principal), "%s", c->info.dst_id);
	obs_istio_service_fill(&t, svc);
	if (!svc && c->info.dst_service[0])
		t.dst_service = c->info.dst_service;
	return zt_metrics_series(&t);
}

/* Fill the descriptive fields of c->info and pick its metric series; counts the open. */
void zt_conn_describe(struct zt_conn *c, const struct zm_cfg_workload *src,
		      const struct zm_cfg_workload *dst, const struct zm_cfg_service *svc,
		      const char *reporter, bool mtls, const char *peer_id)
{
	struct zt_conn_info *i = &c->info;

	zt_wl_text(src, i->src_workload, sizeof(i->src_workload));
	zt_wl_text(dst, i->dst_workload, sizeof(i->dst_workload));
	i->src_id[0] = i->dst_id[0] = '\0';
	if (peer_id && *peer_id)
		snprintf(i->src_id, sizeof(i->src_id), "%s", peer_id);
	else if (src)
		zm_cfg_workload_identity(src, i->src_id, sizeof(i->src_id));
	if (dst)
		zm_cfg_workload_identity(dst, i->dst_id, sizeof(i->dst_id));
	snprintf(i->dst_service, sizeof(i->dst_service), "%s", svc ? svc->hostname : "");
	c->m = zt_conn_series(c, src, dst, svc, reporter, mtls, NULL);
	if (c->m)
		obs_counter_add(c->m[ZT_M_OPENED], 1);
}

void zt_conn_series_flag(struct zt_conn *c, const struct zm_cfg_workload *src,
			 const struct zm_cfg_workload *dst, bool mtls, const char *flags)
{
	struct obs_series *const *m = zt_conn_series(c, src, dst, NULL, "destination", mtls, flags);

	if (m)
		c->m = m;
}

void zt_conn_log_open(struct zt_conn *c)
{
	struct obs_rec rec;

	zt_access_open_rec(&c->info, &rec);
	obs_rec_emit(&rec);
}

void zt_conn_deadline_start(struct zt_conn *c)
{
	rt_timer_after(c->w->loop, &c->deadline, ZT_CONNECT_TIMEOUT_MS);
}

/* Start a plain upstream connection on leg b (a is the client). */
static int zt_conn_dial_b(struct zt_conn *c, const struct zm_addr *src, const struct zm_addr *dst,
			  __u16 port)
{
	int r = zt_dial(src, dst, port, &c->b.ev.fd);

	c->info.up = *dst;
	c->info.up_port = port;
	if (r)
		return r;
	c->state = ZT_CS_CONNECTING;
	zt_conn_deadline_start(c);
	return rt_ev_set(c->w->loop, &c->b.ev, EPOLLOUT);
}

static bool zt_sock_ends(int fd, struct zm_addr *local, unsigned int *lport, struct zm_addr *peer,
			 unsigned int *pport)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) ||
	    zm_addr_from_sockaddr((struct sockaddr *)&ss, local, lport))
		return false;
	sl = sizeof(ss);
	return !getpeername(fd, (struct sockaddr *)&ss, &sl) &&
	       !zm_addr_from_sockaddr((struct sockaddr *)&ss, peer, pport);
}

static const char *const zt_via_names[] = {
    [ZT_ROUTE_REFUSE] = "-",
    [ZT_ROUTE_PASSTHROUGH] = "passthrough",
    [ZT_ROUTE_TCP] = "tcp",
    [ZT_ROUTE_LOCAL] = "local",
    [ZT_ROUTE_HBONE] = "hbone",
    /* Plaintext on the wire because the destination asked for it: say so in every line. */
    [ZT_ROUTE_MTLS_DISABLED] = "tcp_mtls_disabled",
};

/* Route and start an outbound connection; returns with c finished on any failure. */
static void zt_outbound_start(struct zt_conn *c, struct zt_snap *s)
{
	char why[ZM_RBAC_REASON_LEN];
	struct zt_route r;
	__u32 rnd;
	int err;

	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd))
		rnd = (__u32)random();
	zt_route_outbound(s, &c->info.src, &c->info.dst, c->info.dport, rnd, &r);
	/* PeerAuthentication DISABLE on the destination workload: plaintext, as Istio sends. */
	if (zt_route_direct_hbone(&r) &&
	    zt_authz_mtls_mode(s, r.dst, r.target_port, NULL, 0) == ZM_MTLS_DISABLE)
		zt_route_plaintext(&r);
	c->info.via = zt_via_names[r.kind];
	if (obs_log_on(OBS_DEBUG, "ztunnel")) {
		char a[ZM_ADDR_STRLEN], b[ZM_ADDR_STRLEN];

		obs_log(OBS_DEBUG, "ztunnel", "route %s -> %s: %s to %s",
			zm_addr_port_format(&c->info.src, c->info.sport, a, sizeof(a)),
			zm_addr_port_format(&c->info.dst, c->info.dport, b, sizeof(b)), c->info.via,
			r.kind == ZT_ROUTE_REFUSE ? "-"
			: r.dst			  ? r.dst->name
						  : "passthrough");
	}
	zt_conn_describe(c, r.src, r.waypoint ? r.waypoint : r.dst, r.svc, "source",
			 r.kind == ZT_ROUTE_HBONE, NULL);
	if (r.kind == ZT_ROUTE_REFUSE) {
		zt_conn_log_open(c);
		zt_conn_finish(c, r.refuse, NULL);
		return;
	}
	if (r.kind == ZT_ROUTE_HBONE) {
		c->info.up = r.dial_addr;
		c->info.up_port = r.dial_port;
		zt_conn_log_open(c);
		zt_hbone_connect(c, &r);
		return;
	}
	/* Same node: no inbound path of ours sees it, so its policy is decided here. */
	if (r.kind == ZT_ROUTE_LOCAL &&
	    zt_authz_local(c, s, r.dst, &r.dial_addr, r.dial_port, why, sizeof(why))) {
		c->info.up = r.dial_addr;
		c->info.up_port = r.dial_port;
		zt_conn_log_open(c);
		zt_conn_finish(c, ZT_OUT_DENIED, "%s", why);
		return;
	}
	err = zt_conn_dial_b(c, &c->info.src, &r.dial_addr, r.dial_port);
	zt_conn_log_open(c);
	if (err)
		zt_conn_finish(c, ZT_OUT_DIAL_FAILED, "%s", strerror(-err));
}

/*
 * Refuse a connection made to a capture port itself (15001 or 15006 as the destination): the
 * datapath never captures those, so someone dialled ztunnel directly (a node address, from a
 * pod the datapath did not see, or from the node), and "proxying" it would dial the same port
 * again, a loop holding sockets in SYN-SENT. True when refused (reset, logged).
 */
static bool zt_conn_capture_port(struct zt_conn *c)
{
	if (c->info.dport != ZM_PORT_OUTBOUND && c->info.dport != ZM_PORT_INBOUND_PLAIN)
		return false;
	zt_conn_finish(c, ZT_OUT_PROXY_PORT, "connection to port %u itself refused", c->info.dport);
	return true;
}

void zt_outbound_accept(struct zt_worker *w, int fd)
{
	struct zt_conn *c = zt_conn_new(w, fd, true);
	unsigned int sport, dport;
	struct zt_snap *s;

	if (!c) {
		zt_conn_reset_fd(fd);
		return;
	}
	c->info.dir = "outbound";
	if (!zt_sock_ends(fd, &c->info.dst, &dport, &c->info.src, &sport)) {
		zt_conn_finish(c, ZT_OUT_INTERNAL, "getsockname/getpeername: %s", strerror(errno));
		return;
	}
	c->info.sport = (__u16)sport;
	c->info.dport = (__u16)dport;
	if (zt_conn_capture_port(c))
		return;
	s = zt_state_get();
	zt_outbound_start(c, s);
	zt_state_put(s);
}

void zt_inbound_plain_accept(struct zt_worker *w, int fd)
{
	struct zt_conn *c = zt_conn_new(w, fd, true);
	const struct zm_cfg_workload *dst, *src;
	char why[ZM_RBAC_REASON_LEN];
	unsigned int sport, dport;
	struct zt_snap *s;
	int err;

	if (!c) {
		zt_conn_reset_fd(fd);
		return;
	}
	c->info.dir = "inbound_plain";
	c->info.via = "tcp";
	if (!zt_sock_ends(fd, &c->info.dst, &dport, &c->info.src, &sport)) {
		zt_conn_finish(c, ZT_OUT_INTERNAL, "getsockname/getpeername: %s", strerror(errno));
		return;
	}
	c->info.sport = (__u16)sport;
	c->info.dport = (__u16)dport;
	if (zt_conn_capture_port(c))
		return;
	s = zt_state_get();
	dst = zt_route_local_workload(s, &c->info.dst);
	src = zm_config_workload_by_ip(s->cfg, NULL, &c->info.src);
	zt_conn_describe(c, src, dst, NULL, "destination", false, NULL);
	zt_state_put(s);
	if (!dst) {
		zt_conn_log_open(c);
		zt_conn_finish(c, ZT_OUT_NO_WORKLOAD, NULL);
		return;
	}
	/* Plaintext has no identity; a deny resets (zt_conn_finish: SO_LINGER 0). */
	if (zt_authz_inbound(c, NULL, why, sizeof(why))) {
		zt_conn_log_open(c);
		zt_conn_finish(c, ZT_OUT_DENIED, "%s", why);
		return;
	}
	err = zt_conn_dial_b(c, &c->info.src, &c->info.dst, c->info.dport);
	zt_conn_log_open(c);
	if (err)
		zt_conn_finish(c, ZT_OUT_DIAL_FAILED, "%s", strerror(-err));
}

/*
 * Inbound HBONE: answer the CONNECT with an error status. The stream is detached first: the
 * library ends it right away and its close must not be mistaken for the client leaving.
 */
static void zt_conn_answer(struct zt_conn *c, int status)
{
	struct hb_stream *st = c->st;

	if (!st)
		return;
	hb_stream_set_ud(st, NULL);
	c->st = NULL;
	hb_stream_respond(st, status);
}

/* The dialed socket finished connecting (or failed). */
static void zt_conn_connected(struct zt_conn *c, struct zt_leg *leg)
{
	int err = 0;
	socklen_t sl = sizeof(err);
	char up[ZM_ADDR_STRLEN];

	if (getsockopt(leg->ev.fd, SOL_SOCKET, SO_ERROR, &err, &sl))
		err = errno;
	if (err) {
		zm_addr_port_format(&c->info.up, c->info.up_port, up, sizeof(up));
		zt_conn_answer(c, HB_STATUS_UNAVAILABLE);
		zt_conn_finish(c, err == ETIMEDOUT ? ZT_OUT_DIAL_TIMEOUT : ZT_OUT_DIAL_FAILED,
			       "%s: %s", up, strerror(err));
		return;
	}
	c->state = ZT_CS_RELAY;
	rt_timer_cancel(c->w->loop, &c->deadline);
	if (c->tunnel) {
		/* Section 3: 200 only once the upstream connection is up. */
		if (hb_stream_respond(c->st, HB_STATUS_OK)) {
			zt_conn_finish(c, ZT_OUT_TLS_FAILED, "responding 200 failed");
			return;
		}
		zt_relay_tunnel_start(c);
	} else {
		zt_relay_plain_start(c);
	}
}

static void zt_leg_event(struct rt_loop *l, struct rt_ev *ev, uint32_t events)
{
	struct zt_leg *leg = (struct zt_leg *)ev;
	struct zt_conn *c = leg->c;

	(void)l;
	if (c->state == ZT_CS_CONNECTING) {
		if (leg == (c->connect_on_a ? &c->a : &c->b))
			zt_conn_connected(c, leg);
		return;
	}
	if (c->state != ZT_CS_RELAY && !(c->tunnel && c->state == ZT_CS_WAIT_RESPONSE))
		return;
	if (c->tunnel)
		zt_relay_tunnel_event(c, events);
	else
		zt_relay_plain_event(c, leg->side, events);
}

/* No answer in time: dial timed out, or the HBONE peer never answered the CONNECT. */
static void zt_conn_deadline(struct rt_loop *l, struct rt_timer *t)
{
	struct zt_conn *c = zm_container_of(t, struct zt_conn, deadline);

	(void)l;
	if (c->state != ZT_CS_CONNECTING && c->state != ZT_CS_WAIT_RESPONSE)
		return;
	if (c->connect_on_a)
		zt_conn_answer(c, HB_STATUS_UNAVAILABLE);
	zt_conn_finish(c, ZT_OUT_DIAL_TIMEOUT, "no answer after %d ms", ZT_CONNECT_TIMEOUT_MS);
}
