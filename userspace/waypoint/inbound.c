// SPDX-License-Identifier: Apache-2.0
/*
 * Inbound CONNECT streams (inbound.h): the service or pod the CONNECT names (503 when there is
 * neither), the protocol its first bytes speak, and then every event of the stream handed to
 * the codec or the relay that took it. Bytes the codec has not consumed wait in the
 * connection's input queue; above WP_IN_HIGH the stream is paused (HBONE holds the rest).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "inbound.h"
#include "obs/log.h"
#include "pick.h"
#include "relay.h"

extern const struct wp_codec wp_h1_codec, wp_h2_codec;
bool wp_h2_preface(const char *buf, size_t len);

void wp_in_on_request(struct hb_stream *s, const struct hb_request *req)
{
	struct wp_worker *w = wp_stream_worker(s);
	struct wp_conn *c = wp_conn_new(w, s, req);

	if (!c) {
		hb_stream_respond(s, HB_STATUS_UNAVAILABLE);
		return;
	}
	hb_stream_set_ud(s, c);
	if (!c->svc && !c->pod) {
		obs_log(OBS_WARN, "http", "CONNECT %s from %s: no service or workload there, 503",
			req->authority, c->peer);
		hb_stream_respond(s, HB_STATUS_UNAVAILABLE);
		return;
	}
	/* Nothing said yet: the idle timeout applies until the first bytes come. */
	if (w->wp->opts.idle_timeout_ms)
		rt_timer_after(w->loop, &c->tmr, w->wp->opts.idle_timeout_ms);
	hb_stream_respond(s, HB_STATUS_OK);
}

/* Plain TCP inside the tunnel: one endpoint (the VirtualService's tcp route, if any). */
static void wp_in_tcp(struct wp_conn *c)
{
	const struct l7_vs *vs = c->svc ? l7_vs_find(c->snap->l7, c->svc->hostname) : NULL;
	/* (TCPRoute is not read: a VirtualService's tcp route, or the service itself.) */
	struct wp_target t = {.snap = c->snap,
			      .svc = c->svc,
			      .pod = c->pod,
			      .port = c->port,
			      .family = c->vip.family};
	struct wp_tcp_obs obs;
	struct wp_tun *tun;

	wp_metric_stream(c->w->wp, WP_STREAM_TCP);
	if (vs && vs->n_tcp)
		t.dest = l7_dest_pick(vs->tcp, vs->n_tcp, wp_rand());
	if (wp_target_pick(c->w, &t)) {
		obs_log(OBS_WARN, "waypoint", "tcp stream to %s: no endpoint, resetting",
			c->authority);
		wp_conn_reset(c, HB_ERR_CONNECT_ERROR);
		return;
	}
	/* The slot is claimed atomically: two workers cannot both take the last one. */
	tun = wp_tun_open(c->w, t.addr, t.ep.target_port, t.ep.wl, c->forwarded, t.cl,
			  t.policy ? t.policy->pool.max_connections : 0, NULL, NULL);
	if (!tun && errno == EBUSY) {
		obs_log(OBS_WARN, "waypoint",
			"tcp stream to %s: connection pool of %s full (%u), resetting",
			c->authority, t.cl->key, t.policy->pool.max_connections);
		atomic_fetch_add(&t.cl->overflows, 1);
		wp_conn_reset(c, HB_ERR_CONNECT_ERROR);
		return;
	}
	obs = (struct wp_tcp_obs){.peer = c->peer,
				  .authority = c->authority,
				  .src = c->src_wl,
				  .dst = t.ep.wl,
				  .svc = c->svc};
	snprintf(obs.upstream, sizeof(obs.upstream), "%s", t.ep_key);
	if (!tun || wp_relay_start(c, tun, &obs)) {
		obs_log(OBS_WARN, "waypoint", "tcp stream to %s: no endpoint reachable, resetting",
			c->authority);
		wp_conn_reset(c, HB_ERR_CONNECT_ERROR);
	}
}

/* The first bytes decide; false while there are too few of them. */
static bool wp_in_detect(struct wp_conn *c)
{
	static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	const char *s = wp_q_data(&c->in);
	size_t n = wp_q_size(&c->in), i,
	       m = n < sizeof(h2_preface) - 1 ? n : sizeof(h2_preface) - 1;

	/* The HTTP/2 preface also starts like a request line, "PRI * HTTP/2.0". */
	if (n && !memcmp(s, h2_preface, m)) {
		if (n < sizeof(h2_preface) - 1 && !c->in_eof)
			return false;
		if (wp_h2_preface(s, n)) {
			c->codec = &wp_h2_codec;
			wp_metric_stream(c->w->wp, WP_STREAM_HTTP2);
			return true;
		}
	}
	/* A request line starts with an upper-case method token and a space. */
	for (i = 0; i < n && i < 20; i++) {
		if (s[i] == ' ' && i > 0) {
			c->codec = &wp_h1_codec;
			wp_metric_stream(c->w->wp, WP_STREAM_HTTP);
			return true;
		}
		if (s[i] < 'A' || s[i] > 'Z')
			break;
	}
	if ((i == n && i < 20 && !c->in_eof) || !n)
		return false;
	rt_timer_cancel(c->w->loop, &c->tmr);
	wp_in_tcp(c);
	return true;
}

/* New bytes or the client's half-close: to whoever has the stream. */
static void wp_in_dispatch(struct wp_conn *c)
{
	if (!c->st)
		return;
	if (c->relay) {
		wp_relay_input(c);
		return;
	}
	if (!c->codec) {
		if (!wp_q_size(&c->in) && c->in_eof) {
			wp_conn_end(c);
			return;
		}
		if (!wp_in_detect(c) || c->relay || !c->st)
			return;
		rt_timer_cancel(c->w->loop, &c->tmr);
		if (c->codec->start(c)) {
			wp_conn_reset(c, HB_ERR_INTERNAL);
			c->codec = NULL;
		}
		return;
	}
	c->codec->input(c);
}

size_t wp_in_on_data(struct hb_stream *s, const uint8_t *buf, size_t len)
{
	struct wp_conn *c = hb_stream_ud(s);

	if (!c || !c->st)
		return len;
	if (wp_q_size(&c->in) >= WP_IN_HIGH) {
		wp_conn_pause(c);
		return 0;
	}
	if (wp_q_put(&c->in, buf, len)) {
		wp_conn_reset(c, HB_ERR_INTERNAL);
		return len;
	}
	wp_in_dispatch(c);
	return len;
}

void wp_in_on_eof(struct hb_stream *s)
{
	struct wp_conn *c = hb_stream_ud(s);

	if (!c || !c->st)
		return;
	c->in_eof = true;
	wp_in_dispatch(c);
}

void wp_in_on_writable(struct hb_stream *s)
{
	struct wp_conn *c = hb_stream_ud(s);

	if (!c || !c->st)
		return;
	wp_conn_flush(c);
	if (c->relay)
		wp_relay_writable(c);
	else if (c->codec && c->codec->writable)
		c->codec->writable(c);
}

void wp_in_on_close(struct hb_stream *s, uint32_t error)
{
	struct wp_conn *c = hb_stream_ud(s);

	if (!c)
		return;
	wp_conn_unlink(c);
	rt_timer_cancel(c->w->loop, &c->tmr);
	wp_relay_close(c, error);
	if (c->codec && c->codec->close)
		c->codec->close(c);
	wp_conn_put(c);
}
