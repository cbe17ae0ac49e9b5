// SPDX-License-Identifier: Apache-2.0
/*
 * The HTTP/1 downstream codec (wp_h1_codec): a client connection's bytes to requests and their
 * responses back to bytes, one request at a time (a pipelined request waits in the input queue
 * until the one before it is answered). Heads go through the strict parser (lib/http1): a head
 * it refuses is answered with Envoy's status for it (400; 431 over WP_MAX_HEAD; 501 for a
 * Transfer-Encoding it cannot frame), logged, and the connection is closed, so no byte a
 * check did not see reaches an endpoint. Requests carry parsed fields only (hop-by-hop ones and
 * the fields Connection nominates are dropped); the upstream side writes them anew. Expect:
 * 100-continue is answered here, as Envoy does. Timeouts: a head still incomplete after the
 * request-head timeout (30 s) is answered 408 and the connection closed; a connection with no
 * request in flight for the idle timeout (60 s) is closed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http1/http1.h"
#include "obs/log.h"
#include "relay.h"
#include "request.h"
#include "tunnel.h"

enum wp_h1d_state {
	WP_H1D_HEAD,   /* reading a request head */
	WP_H1D_BODY,   /* reading its body */
	WP_H1D_WAIT,   /* request read, response not finished */
	WP_H1D_CLOSED, /* no more requests on this connection */
};

struct wp_h1d {
	struct wp_conn *c;
	struct wp_req *r; /* the current request */
	enum wp_h1d_state state;
	bool resp_done, close_after, resp_chunked, head_req, in_input;
	struct h1_chunked ch;
	bool chunked;
	int64_t left;
	uint64_t head_start_ms; /* the first byte of the head being read; 0 none */
	uint64_t idle_since_ms;
};

static const struct wp_down_ops wp_h1d_down;

static const char *wp_reason(unsigned int code)
{
	static const struct {
		unsigned int code;
		const char *text;
	} t[] = {{100, "Continue"},
		 {101, "Switching Protocols"},
		 {200, "OK"},
		 {201, "Created"},
		 {202, "Accepted"},
		 {204, "No Content"},
		 {206, "Partial Content"},
		 {301, "Moved Permanently"},
		 {302, "Found"},
		 {303, "See Other"},
		 {304, "Not Modified"},
		 {307, "Temporary Redirect"},
		 {308, "Permanent Redirect"},
		 {400, "Bad Request"},
		 {401, "Unauthorized"},
		 {403, "Forbidden"},
		 {404, "Not Found"},
		 {405, "Method Not Allowed"},
		 {408, "Request Timeout"},
		 {409, "Conflict"},
		 {413, "Payload Too Large"},
		 {418, "I'm a teapot"},
		 {429, "Too Many Requests"},
		 {431, "Request Header Fields Too Large"},
		 {500, "Internal Server Error"},
		 {501, "Not Implemented"},
		 {502, "Bad Gateway"},
		 {503, "Service Unavailable"},
		 {504, "Gateway Timeout"}};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (t[i].code == code)
			return t[i].text;
	return "Unknown";
}

static void wp_h1d_arm(struct wp_h1d *d)
{
	struct wp_conn *c = d->c;
	const struct wp_opts *o = &c->w->wp->opts;
	uint64_t t = 0;

	if (d->state == WP_H1D_HEAD && d->head_start_ms && o->head_timeout_ms)
		t = d->head_start_ms + o->head_timeout_ms;
	else if (d->state == WP_H1D_HEAD && !d->r && o->idle_timeout_ms)
		t = d->idle_since_ms + o->idle_timeout_ms;
	if (t)
		rt_timer_arm(c->w->loop, &c->tmr, t);
	else
		rt_timer_cancel(c->w->loop, &c->tmr);
}

/* A local answer the codec writes itself (no request object): refusals and timeouts. */
static void wp_h1d_refuse(struct wp_h1d *d, unsigned int code, const char *why)
{
	struct wp_conn *c = d->c;
	char out[512];
	int n;

	obs_log(OBS_WARN, "http", "http/1 request from %s (%s) refused: %s, %u, closing",
		c->peer[0] ? c->peer : "-", c->authority, why, code);
	n = snprintf(out, sizeof(out),
		     "HTTP/1.1 %u %s\r\ncontent-length: %zu\r\ncontent-type: text/plain\r\n"
		     "server: zmesh-waypoint\r\nconnection: close\r\n\r\n%s",
		     code, wp_reason(code), strlen(why), why);
	wp_conn_send(c, out, (size_t)n);
	d->state = WP_H1D_CLOSED;
	wp_q_free(&c->in);
	wp_conn_end(c);
	wp_h1d_arm(d);
}

/* A protocol error in the message being read: refused, or the request in flight ended. */
static void wp_h1d_bad(struct wp_h1d *d, int err)
{
	struct wp_req *r = d->r;

	if (r && !r->resp_started) {
		d->close_after = true;
		obs_log(OBS_WARN, "http", "http/1 request from %s (%s) refused: %s, %u, closing",
			d->c->peer[0] ? d->c->peer : "-", d->c->authority, h1_err_str(err),
			h1_err_status(err));
		wp_req_reply(r, h1_err_status(err), "DPE", h1_err_str(err));
		wp_q_free(&d->c->in);
		d->state = WP_H1D_CLOSED;
		wp_conn_end(d->c);
		return;
	}
	if (r) {
		d->r = NULL;
		wp_req_release(r, true);
		wp_q_free(&d->c->in);
		d->state = WP_H1D_CLOSED;
		wp_conn_reset(d->c, HB_ERR_CONNECT_ERROR);
		return;
	}
	wp_h1d_refuse(d, h1_err_status(err), h1_err_str(err));
}

/* The request line's target: origin-form as it is; absolute-form split (RFC 9112 3.2.2). */
static int wp_h1d_target(const struct h1_head *h, struct h1_span *path, struct h1_span *auth)
{
	const char *p = h->target.p, *e = p + h->target.len, *s;

	if (p[0] == '/' || (p[0] == '*' && h->target.len == 1)) {
		*path = h->target;
		return 0;
	}
	p += p[4] == ':' ? 7 : 8; /* http:// or https:// */
	s = memchr(p, '/', (size_t)(e - p));
	*auth = (struct h1_span){p, (size_t)((s ? s : e) - p)};
	*path = s ? (struct h1_span){s, (size_t)(e - s)} : (struct h1_span){"/", 1};
	return auth->len ? 0 : -H1_E_TARGET;
}

/* A complete head: a request, or a refusal. */
static void wp_h1d_head(struct wp_h1d *d, const struct h1_head *h)
{
	struct wp_conn *c = d->c;
	struct h1_span path, auth = {NULL, 0};
	struct h1_msg m;
	struct wp_req *r;
	size_t i;
	int err = h1_msg_check(H1_REQUEST, h, &m) ?: wp_h1d_target(h, &path, &auth);

	if (!err && h1_name_is(h->method, "connect"))
		err = -H1_E_METHOD; /* no CONNECT inside a tunnel */
	if (!err && m.upgrade && !(m.upgrade_websocket && h1_name_is(h->method, "get"))) {
		wp_h1d_refuse(d, 400, "upgrade other than WebSocket");
		return;
	}
	if (err) {
		wp_h1d_bad(d, err);
		return;
	}
	if (!auth.len && m.host >= 0)
		auth = h->f[m.host].value;
	if (!auth.len)
		auth = (struct h1_span){c->authority, strlen(c->authority)}; /* HTTP/1.0 */
	r = wp_req_new(c, WP_H1, &wp_h1d_down, d);
	if (!r || wp_req_set_head(r, h->method.p, h->method.len, path.p, path.len, auth.p, auth.len,
				  "http")) {
		if (r)
			wp_req_release(r, true);
		wp_h1d_refuse(d, 500, "out of memory");
		return;
	}
	r->start_ms = d->head_start_ms ? d->head_start_ms : c->w->loop->now_ms;
	r->head_bytes = h->len;
	d->head_start_ms = 0;
	d->r = r;
	r->minor = h->minor;
	r->body_len = m.chunked ? -1 : m.content_length;
	r->websocket = m.upgrade_websocket && h1_name_is(h->method, "get");
	for (i = 0; i < h->n; i++) {
		struct h1_span n = h->f[i].name;

		if (h1_hop_by_hop(h, i) || (int)i == m.host || h1_name_is(n, "content-length") ||
		    (m.expect_continue && h1_name_is(n, "expect")))
			continue;
		if (wp_hdrs_add(&r->h, n.p, n.len, h->f[i].value.p, h->f[i].value.len)) {
			wp_h1d_refuse(d, 431, h1_err_str(-H1_E_TOO_MANY));
			return;
		}
	}
	d->close_after = m.close || c->w->quiet; /* draining: the last on this connection */
	d->head_req = h1_name_is(h->method, "head");
	d->chunked = m.chunked;
	d->left = m.content_length > 0 ? m.content_length : 0;
	d->ch = (struct h1_chunked){0};
	d->resp_done = false;
	d->state = WP_H1D_BODY;
	if (!d->chunked && !d->left) {
		r->body_eof = true;
		d->state = WP_H1D_WAIT;
	} else if (m.expect_continue) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

		wp_conn_send(c, cont, sizeof(cont) - 1);
	}
	wp_h1d_arm(d);
	wp_req_start(r);
}

/* Body bytes of the current request, while its lifecycle has room for them. */
static bool wp_h1d_body(struct wp_h1d *d)
{
	struct wp_conn *c = d->c;
	struct wp_req *r = d->r;
	const char *data;
	size_t used, dlen;
	int n;

	while (wp_q_size(&c->in) && d->state == WP_H1D_BODY) {
		if (wp_q_size(&r->body) >= WP_IN_HIGH)
			return false; /* consumed() resumes */
		if (d->chunked) {
			n = h1_chunked_step(&d->ch, wp_q_data(&c->in), wp_q_size(&c->in), &used,
					    &data, &dlen);
			if (n < 0) {
				wp_h1d_bad(d, n);
				return false;
			}
			if (!used)
				return true;
			if (dlen)
				wp_req_body(r, data, dlen);
			wp_q_drop(&c->in, used);
		} else {
			dlen = (uint64_t)d->left < wp_q_size(&c->in) ? (size_t)d->left
								     : wp_q_size(&c->in);
			wp_req_body(r, wp_q_data(&c->in), dlen);
			wp_q_drop(&c->in, dlen);
			d->left -= (int64_t)dlen;
			n = !d->left;
		}
		if (d->r != r)
			return false;
		if (n == 1) {
			d->state = WP_H1D_WAIT;
			wp_req_body_end(r);
		}
	}
	return true;
}

/* The current request is answered and read: the next one, or the end. */
static void wp_h1d_next(struct wp_h1d *d)
{
	struct wp_req *r = d->r;

	if (!r || !d->resp_done || d->state != WP_H1D_WAIT)
		return;
	d->r = NULL;
	wp_req_release(r, false);
	d->idle_since_ms = d->c->w->loop->now_ms;
	if (d->close_after || (d->c->in_eof && !wp_q_size(&d->c->in))) {
		d->state = WP_H1D_CLOSED;
		wp_conn_end(d->c);
	} else {
		d->state = WP_H1D_HEAD;
	}
	wp_h1d_arm(d);
}

static void wp_h1d_input(struct wp_conn *c)
{
	struct wp_h1d *d = c->cx;
	struct h1_head h;
	int n;

	if (d->in_input)
		return;
	d->in_input = true;
	while (c->st && d->state != WP_H1D_CLOSED) {
		if (d->state == WP_H1D_BODY && !wp_h1d_body(d))
			break;
		wp_h1d_next(d);
		if (d->state != WP_H1D_HEAD || !wp_q_size(&c->in))
			break;
		if (!d->head_start_ms)
			d->head_start_ms = c->w->loop->now_ms;
		n = h1_head_parse(H1_REQUEST, wp_q_data(&c->in), wp_q_size(&c->in), &h);
		if (n < 0) {
			wp_h1d_bad(d, n);
			break;
		}
		if (!n) {
			wp_h1d_arm(d);
			break;
		}
		wp_q_drop(&c->in, (size_t)n);
		wp_h1d_head(d, &h);
		if (c->relay)
			break;
	}
	if (c->st && c->in_eof && d->state == WP_H1D_HEAD && !d->r) {
		d->state = WP_H1D_CLOSED; /* the client is done sending: done */
		wp_conn_end(c);
	}
	if (c->st && c->in_eof && d->r && d->state == WP_H1D_BODY)
		d->close_after = true; /* a body cut short: answered, then closed */
	if (wp_q_size(&c->in) < WP_IN_HIGH)
		wp_conn_resume(c);
	d->in_input = false;
}

/* ---- the response ---- */

static void wp_h1d_resp_reset(struct wp_req *r);

static void wp_h1d_resp_head(struct wp_req *r, const struct wp_resp *resp, bool end)
{
	struct wp_h1d *d = r->cx;
	struct wp_q q = {0};
	bool body = h1_resp_has_body(r->method, resp->status);
	size_t i;
	int err;

	err = wp_q_printf(&q, "HTTP/1.1 %u %s\r\n", resp->status, wp_reason(resp->status));
	for (i = 0; i < resp->h.n; i++) {
		const struct l7_header *f = &resp->h.h[i];

		if (!strcmp(f->name, "connection") || !strcmp(f->name, "transfer-encoding") ||
		    !strcmp(f->name, "content-length") || !strcmp(f->name, "keep-alive") ||
		    strpbrk(f->value, "\r\n"))
			continue;
		err = err ?: wp_q_field(&q, f->name, f->value);
	}
	d->resp_chunked = false;
	if (resp->len >= 0 && (body || d->head_req)) {
		err = err ?: wp_q_printf(&q, "content-length: %lld\r\n", (long long)resp->len);
	} else if (body && end) {
		err = err ?: wp_q_field(&q, "content-length", "0");
	} else if (body && r->minor >= 1) {
		d->resp_chunked = true;
		err = err ?: wp_q_field(&q, "transfer-encoding", "chunked");
	} else if (body) {
		d->close_after = true; /* an HTTP/1.0 client: the close ends the body */
	}
	if (d->state == WP_H1D_BODY && end)
		d->close_after = true; /* answered before the request was read: no reuse */
	if (d->close_after)
		err = err ?: wp_q_field(&q, "connection", "close");
	err = err ?: wp_q_put(&q, "\r\n", 2);
	if (err) { /* out of memory: no head at all rather than a cut one */
		wp_q_free(&q);
		wp_h1d_resp_reset(r);
		return;
	}
	wp_conn_send(d->c, wp_q_data(&q), wp_q_size(&q));
	wp_q_free(&q);
	if (end) {
		d->resp_done = true;
		wp_h1d_next(d);
	}
}

static void wp_h1d_resp_body(struct wp_req *r, const void *p, size_t n)
{
	struct wp_h1d *d = r->cx;
	char hdr[32];

	if (d->head_req || !n)
		return;
	if (d->resp_chunked) {
		snprintf(hdr, sizeof(hdr), "%zx\r\n", n);
		wp_conn_send(d->c, hdr, strlen(hdr));
	}
	wp_conn_send(d->c, p, n);
	if (d->resp_chunked)
		wp_conn_send(d->c, "\r\n", 2);
}

static void wp_h1d_resp_end(struct wp_req *r, const struct wp_hdrs *trailers)
{
	struct wp_h1d *d = r->cx;

	(void)trailers; /* an HTTP/1 response's trailers are not passed on */
	if (d->resp_chunked && !d->head_req)
		wp_conn_send(d->c, "0\r\n\r\n", 5);
	d->resp_done = true;
	if (d->state == WP_H1D_BODY)
		d->close_after = true; /* the rest of the request is read and dropped, then close */
	wp_h1d_next(d);
	if (!d->in_input && d->state == WP_H1D_HEAD && wp_q_size(&d->c->in))
		wp_h1d_input(d->c); /* a pipelined request waited */
}

static void wp_h1d_resp_reset(struct wp_req *r)
{
	struct wp_h1d *d = r->cx;

	d->state = WP_H1D_CLOSED;
	wp_conn_reset(d->c, HB_ERR_CONNECT_ERROR);
}

static void wp_h1d_consumed(struct wp_req *r, size_t n)
{
	struct wp_h1d *d = r->cx;

	(void)n;
	if (!d->in_input && d->r == r && d->state == WP_H1D_BODY &&
	    wp_q_size(&r->body) < WP_IN_HIGH)
		wp_h1d_input(d->c);
}

static size_t wp_h1d_pending(const struct wp_req *r)
{
	const struct wp_h1d *d = r->cx;

	return wp_q_size(&d->c->out);
}

static void wp_h1d_upgraded(struct wp_req *r, const struct wp_resp *resp, struct wp_tun *t)
{
	struct wp_h1d *d = r->cx;
	struct wp_conn *c = d->c;
	struct wp_q q = {0};
	size_t i;
	int err;

	err = wp_q_printf(&q, "HTTP/1.1 101 Switching Protocols\r\n");
	for (i = 0; i < resp->h.n; i++)
		if (!strpbrk(resp->h.h[i].value, "\r\n"))
			err = err ?: wp_q_field(&q, resp->h.h[i].name, resp->h.h[i].value);
	err = err ?: wp_q_printf(&q, "connection: upgrade\r\nupgrade: websocket\r\n\r\n");
	if (err)
		wp_conn_reset(c, HB_ERR_CONNECT_ERROR);
	else
		wp_conn_send(c, wp_q_data(&q), wp_q_size(&q));
	wp_q_free(&q);
	d->r = NULL;
	d->state = WP_H1D_CLOSED;
	wp_req_release(r, false);
	rt_timer_cancel(c->w->loop, &c->tmr);
	wp_relay_start(c, t, NULL);
}

static const struct wp_down_ops wp_h1d_down = {
    .head = wp_h1d_resp_head,
    .body = wp_h1d_resp_body,
    .end = wp_h1d_resp_end,
    .reset = wp_h1d_resp_reset,
    .consumed = wp_h1d_consumed,
    .pending = wp_h1d_pending,
    .upgraded = wp_h1d_upgraded,
};

/* ---- the codec ---- */

static int wp_h1d_start(struct wp_conn *c)
{
	struct wp_h1d *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	d->c = c;
	d->idle_since_ms = c->w->loop->now_ms;
	c->cx = d;
	wp_h1d_input(c);
	return 0;
}

static void wp_h1d_writable(struct wp_conn *c)
{
	struct wp_h1d *d = c->cx;

	if (d->r && wp_q_size(&c->out) < WP_IN_HIGH)
		wp_req_drained(d->r, WP_IN_HIGH - wp_q_size(&c->out));
}

static void wp_h1d_timer(struct wp_conn *c)
{
	struct wp_h1d *d = c->cx;
	uint64_t now = c->w->loop->now_ms;
	const struct wp_opts *o = &c->w->wp->opts;

	if (d->state != WP_H1D_HEAD)
		return;
	if (d->head_start_ms && o->head_timeout_ms &&
	    now >= d->head_start_ms + o->head_timeout_ms) {
		wp_h1d_refuse(d, 408, "request header timeout");
		return;
	}
	if (!d->head_start_ms && !d->r && o->idle_timeout_ms &&
	    now >= d->idle_since_ms + o->idle_timeout_ms) {
		obs_log(OBS_INFO, "http", "http/1 connection from %s (%s) idle for %u ms, closing",
			c->peer[0] ? c->peer : "-", c->authority, o->idle_timeout_ms);
		d->state = WP_H1D_CLOSED;
		wp_conn_end(c);
		return;
	}
	wp_h1d_arm(d);
}

/* Draining: an idle connection ends now, a busy one after its response ("connection: close"). */
static void wp_h1d_drain(struct wp_conn *c)
{
	struct wp_h1d *d = c->cx;

	if (d->state == WP_H1D_HEAD && !d->r && !d->head_start_ms && !wp_q_size(&c->in)) {
		d->state = WP_H1D_CLOSED;
		wp_conn_end(c);
		wp_h1d_arm(d);
		return;
	}
	d->close_after = true;
}

static void wp_h1d_close(struct wp_conn *c)
{
	struct wp_h1d *d = c->cx;

	if (!d)
		return;
	if (d->r)
		wp_req_release(d->r, true);
	c->cx = NULL;
	free(d);
}

const struct wp_codec wp_h1_codec = {
    .name = "http",
    .start = wp_h1d_start,
    .input = wp_h1d_input,
    .writable = wp_h1d_writable,
    .timer = wp_h1d_timer,
    .close = wp_h1d_close,
    .drain = wp_h1d_drain,
};
