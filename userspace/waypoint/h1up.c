// SPDX-License-Identifier: Apache-2.0
/*
 * The HTTP/1.1 upstream codec (wp_h1up_ops): one request at a time over a tunnel to the
 * endpoint. The head is serialized from the request's parsed form (never copied from the
 * client's bytes), the body framed by Content-Length or chunked, the response parsed with the
 * strict parser (lib/http1) and handed to the lifecycle. After a complete keep-alive exchange
 * the connection waits on the worker's idle list (DestinationRule http.idleTimeout, 60 s by
 * default; maxRequestsPerConnection) for the next request to the same endpoint. A 101 to a
 * WebSocket request hands the tunnel over, with the bytes that followed the head.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http1/http1.h"
#include "obs/log.h"
#include "request-t.h"
#include "tunnel.h"

enum wp_h1u_state { WP_H1U_HEAD, WP_H1U_BODY, WP_H1U_DONE };

struct wp_h1c {
	struct wp_h1c *next_idle;
	struct wp_worker *w;
	struct wp_tun *t;
	struct wp_req *r; /* the request in flight; NULL when idle */
	char key[ZM_ADDR_STRLEN];
	bool idle, sent_head, req_done, body_chunked, keepalive, parsing;
	unsigned int nreq, max_rq;
	uint32_t idle_timeout_ms;
	struct rt_timer tmr; /* idle timeout */
	/* the response */
	enum wp_h1u_state state;
	struct wp_q in;
	struct h1_chunked ch;
	bool chunked, until_close;
	int64_t left;
};

static const struct wp_tun_ops wp_h1c_tun_ops;

static void wp_h1c_free(void *p)
{
	struct wp_h1c *c = p;

	wp_q_free(&c->in);
	free(c);
}

static void wp_h1c_unidle(struct wp_h1c *c)
{
	struct wp_h1c **pp;

	if (!c->idle)
		return;
	rt_timer_cancel(c->w->loop, &c->tmr);
	for (pp = &c->w->h1_idle; *pp; pp = &(*pp)->next_idle) {
		if (*pp == c) {
			*pp = c->next_idle;
			break;
		}
	}
	c->idle = false;
}

/* The connection is done for: its tunnel reset, its memory released after the batch. */
static void wp_h1c_drop(struct wp_h1c *c)
{
	wp_h1c_unidle(c);
	if (c->t)
		wp_tun_abort(c->t);
	c->t = NULL;
	c->r = NULL;
	rt_defer_free_timed(c->w->loop, &c->tmr, wp_h1c_free, c);
}

static void wp_h1c_idle_fired(struct rt_loop *l, struct rt_timer *tm)
{
	struct wp_h1c *c = zm_container_of(tm, struct wp_h1c, tmr);

	(void)l;
	if (c->idle)
		wp_h1c_drop(c);
}

static struct wp_h1c *wp_h1c_find_idle(struct wp_worker *w, const char *key)
{
	struct wp_h1c *c;

	for (c = w->h1_idle; c; c = c->next_idle)
		if (!strcmp(c->key, key) && c->t && c->t->st && !c->t->eof)
			return c;
	return NULL;
}

static bool wp_h1up_has_idle(struct wp_req *r)
{
	return wp_h1c_find_idle(r->c->w, r->tgt.ep_key) != NULL;
}

/* A field is written only when it cannot break the framing of what follows it. */
static bool wp_h1_field_ok(const char *name, const char *value)
{
	const char *p;

	if (!*name || strpbrk(value, "\r\n"))
		return false;
	for (p = name; *p; p++)
		if (*p <= ' ' || *p == ':' || *p >= 0x7f)
			return false;
	return true;
}

static bool wp_h1_framing_field(const char *name)
{
	return !strcmp(name, "content-length") || !strcmp(name, "transfer-encoding") ||
	       !strcmp(name, "host") || !strcmp(name, "connection") || !strcmp(name, "upgrade") ||
	       !strcmp(name, "te") || !strcmp(name, "keep-alive");
}

static int wp_h1c_send_head(struct wp_h1c *c, struct wp_req *r)
{
	struct wp_q q = {0};
	size_t i;
	int err;

	/* Put piece by piece: a path or field of any length goes out whole. */
	err = wp_q_puts(&q, r->method) ?: wp_q_puts(&q, " ") ?: wp_q_puts(&q, r->up_path)
	      ?: wp_q_puts(&q, " HTTP/1.1\r\n") ?: wp_q_field(&q, "host", r->up_authority);
	for (i = 0; i < r->up_h.n; i++) {
		const struct l7_header *h = &r->up_h.h[i];

		if (h->name[0] == ':' || wp_h1_framing_field(h->name) ||
		    !wp_h1_field_ok(h->name, h->value))
			continue;
		err = err ?: wp_q_field(&q, h->name, h->value);
	}
	/* WebSocket: the hop-by-hop Upgrade pair is the one thing passed on, as Envoy does. */
	if (r->websocket)
		err = err ?: wp_q_field(&q, "connection", "upgrade")
			  ?: wp_q_field(&q, "upgrade", "websocket");
	c->body_chunked = false;
	if (r->body_len >= 0) {
		err = err ?: wp_q_printf(&q, "content-length: %lld\r\n", (long long)r->body_len);
	} else if (!(r->body_eof && !r->req_bytes)) {
		c->body_chunked = true;
		err = err ?: wp_q_field(&q, "transfer-encoding", "chunked");
	}
	err = err ?: wp_q_put(&q, "\r\n", 2) ?: wp_tun_write(c->t, wp_q_data(&q), wp_q_size(&q));
	wp_q_free(&q);
	c->sent_head = true;
	return err;
}

/* Move the request body to the tunnel as far as the tunnel takes it. */
static void wp_h1up_pump(struct wp_req *r)
{
	struct wp_h1c *c = r->up;
	char hdr[32];
	size_t n;

	if (!c || !c->t || c->req_done)
		return;
	while ((n = wp_q_size(&r->body)) && wp_tun_queued(c->t) < WP_IN_HIGH) {
		if (n > WP_IN_HIGH)
			n = WP_IN_HIGH;
		if (c->body_chunked) {
			snprintf(hdr, sizeof(hdr), "%zx\r\n", n);
			wp_tun_write(c->t, hdr, strlen(hdr));
		}
		if (wp_tun_write(c->t, wp_q_data(&r->body), n))
			return;
		if (c->body_chunked)
			wp_tun_write(c->t, "\r\n", 2);
		wp_q_drop(&r->body, n);
		r->ev->taken(r, n);
		if (r->up != c)
			return;
	}
	if (r->body_eof && !wp_q_size(&r->body)) {
		if (c->body_chunked)
			wp_tun_write(c->t, "0\r\n\r\n", 5);
		c->req_done = true;
	}
}

static int wp_h1up_start(struct wp_req *r)
{
	struct wp_worker *w = r->c->w;
	const struct l7_traffic_policy *pol = r->tgt.policy;
	struct wp_h1c *c = wp_h1c_find_idle(w, r->tgt.ep_key);

	if (c) {
		wp_h1c_unidle(c);
	} else {
		c = calloc(1, sizeof(*c));
		if (!c)
			return -ENOMEM;
		c->w = w;
		rt_timer_init(&c->tmr, wp_h1c_idle_fired);
		snprintf(c->key, sizeof(c->key), "%s", r->tgt.ep_key);
		c->t = wp_tun_open(w, r->tgt.addr, r->tgt.ep.target_port, r->tgt.ep.wl,
				   r->c->forwarded, r->tgt.cl, pol ? pol->pool.max_connections : 0,
				   &wp_h1c_tun_ops, c);
		if (!c->t) {
			int busy = errno == EBUSY;

			free(c);
			return busy ? -EBUSY : -EHOSTUNREACH;
		}
		c->max_rq = pol ? pol->pool.max_requests_per_conn : 0;
		c->idle_timeout_ms =
		    pol && pol->pool.idle_timeout_ms ? pol->pool.idle_timeout_ms : WP_UP_IDLE_MS;
	}
	c->r = r;
	r->up = c;
	c->nreq++;
	c->state = WP_H1U_HEAD;
	c->req_done = c->sent_head = false;
	wp_q_free(&c->in);
	if (wp_h1c_send_head(c, r)) {
		r->up = NULL;
		wp_h1c_drop(c);
		return -EPIPE;
	}
	wp_h1up_pump(r);
	return 0;
}

static void wp_h1up_cancel(struct wp_req *r)
{
	struct wp_h1c *c = r->up;

	r->up = NULL;
	if (c)
		wp_h1c_drop(c);
}

static void wp_h1up_release(struct wp_req *r)
{
	struct wp_h1c *c = r->up;

	r->up = NULL;
	if (!c)
		return;
	c->r = NULL;
	/* A mirror copy's connection is not kept: its answer arrives when nobody waits for it. */
	if (r->shadow || !c->t || !c->t->ok200 || c->t->eof || c->state != WP_H1U_DONE ||
	    !c->keepalive || !c->req_done || wp_tun_queued(c->t) || wp_q_size(&c->in) ||
	    (c->max_rq && c->nreq >= c->max_rq)) {
		wp_h1c_drop(c);
		return;
	}
	c->idle = true;
	rt_timer_arm(c->w->loop, &c->tmr, c->w->loop->now_ms + c->idle_timeout_ms);
	c->next_idle = c->w->h1_idle;
	c->w->h1_idle = c;
}

/* ---- the response ---- */

/* The exchange failed: the connection goes, the lifecycle decides what follows. */
static void wp_h1c_fail(struct wp_h1c *c, enum wp_up_fail why, const char *text)
{
	struct wp_req *r = c->r;

	if (r)
		r->up = NULL;
	wp_h1c_drop(c);
	if (r)
		r->ev->failed(r, why, text);
}

static bool wp_h1_resp_field(const struct h1_head *h, size_t i)
{
	struct h1_span n = h->f[i].name;

	return !h1_hop_by_hop(h, i) && !h1_name_is(n, "content-length");
}

/* A final response head: to the lifecycle, framed for the body that follows. */
static void wp_h1c_head(struct wp_h1c *c, const struct h1_head *h)
{
	struct wp_req *r = c->r;
	struct wp_resp resp = {.status = h->status, .len = -1};
	struct h1_msg m;
	bool body;
	size_t i;
	int err = h1_msg_check(H1_RESPONSE, h, &m);

	if (err) {
		wp_h1c_fail(c, WP_UPF_PROTOCOL, h1_err_str(err));
		return;
	}
	for (i = 0; i < h->n; i++)
		if (wp_h1_resp_field(h, i) && wp_hdrs_add(&resp.h, h->f[i].name.p, h->f[i].name.len,
							  h->f[i].value.p, h->f[i].value.len)) {
			wp_hdrs_clear(&resp.h);
			wp_h1c_fail(c, WP_UPF_PROTOCOL, "response head too large");
			return;
		}
	body = h1_resp_has_body(r->method, h->status);
	c->keepalive = !m.close;
	c->chunked = body && m.chunked;
	c->left = body && !m.chunked ? m.content_length : 0;
	c->until_close = body && !m.chunked && m.content_length < 0;
	if (c->until_close)
		c->keepalive = false;
	c->ch = (struct h1_chunked){0};
	resp.len = m.chunked ? -1 : m.content_length;
	c->state = body && (c->chunked || c->left || c->until_close) ? WP_H1U_BODY : WP_H1U_DONE;
	r->ev->head(r, &resp, c->state == WP_H1U_DONE);
	wp_hdrs_clear(&resp.h);
}

/* WebSocket accepted: the head goes to the client, then the tunnel is relayed as TCP. */
static void wp_h1c_upgrade(struct wp_h1c *c, const struct h1_head *h)
{
	struct wp_req *r = c->r;
	struct wp_resp resp = {.status = 101, .len = -1};
	struct wp_tun *t = c->t;
	size_t i;

	for (i = 0; i < h->n; i++)
		if (wp_h1_resp_field(h, i))
			wp_hdrs_add(&resp.h, h->f[i].name.p, h->f[i].name.len, h->f[i].value.p,
				    h->f[i].value.len);
	/* What followed the head is already the new protocol's. */
	wp_q_put(&t->held, wp_q_data(&c->in), wp_q_size(&c->in));
	wp_q_free(&c->in);
	c->t = NULL;
	c->r = NULL;
	r->up = NULL;
	wp_tun_own(t, NULL, NULL);
	rt_defer_free_timed(c->w->loop, &c->tmr, wp_h1c_free, c);
	r->ev->upgraded(r, &resp, t);
	wp_hdrs_clear(&resp.h);
}

/* Parse what c->in holds; stops when the client's side is full or the exchange moved on. */
static void wp_h1c_parse_loop(struct wp_h1c *c)
{
	struct h1_head h;
	struct wp_req *r;
	int n;

	while ((r = c->r) && wp_q_size(&c->in) && c->state != WP_H1U_DONE) {
		const char *p = wp_q_data(&c->in);
		size_t len = wp_q_size(&c->in), used = 0, dlen = 0;
		const char *data = NULL;

		if (r->down->pending(r) >= WP_IN_HIGH)
			return; /* resumed from drained() */
		if (c->state == WP_H1U_HEAD) {
			n = h1_head_parse(H1_RESPONSE, p, len, &h);
			if (n < 0) {
				wp_h1c_fail(c, WP_UPF_PROTOCOL, h1_err_str(n));
				return;
			}
			if (!n)
				return;
			if (h.status == 101 && r->websocket) {
				wp_q_drop(&c->in, (size_t)n);
				wp_h1c_upgrade(c, &h);
				return;
			}
			if (h.status >= 100 && h.status < 200) {
				wp_q_drop(&c->in, (size_t)n); /* interim: the final one follows */
				continue;
			}
			wp_h1c_head(c, &h);
			if (c->r == r)
				wp_q_drop(&c->in, (size_t)n);
		} else if (c->chunked) {
			n = h1_chunked_step(&c->ch, p, len, &used, &data, &dlen);
			if (n < 0) {
				wp_h1c_fail(c, WP_UPF_PROTOCOL, h1_err_str(n));
				return;
			}
			if (!used)
				return;
			wp_q_drop(&c->in, used);
			if (dlen)
				r->ev->body(r, data, dlen);
			if (n == 1 && c->r == r)
				c->state = WP_H1U_DONE;
		} else {
			dlen = c->until_close || (uint64_t)c->left > len ? len : (size_t)c->left;
			r->ev->body(r, p, dlen);
			if (c->r != r)
				return;
			wp_q_drop(&c->in, dlen);
			if (!c->until_close) {
				c->left -= (int64_t)dlen;
				if (!c->left)
					c->state = WP_H1U_DONE;
			}
		}
		if (c->r == r && c->state == WP_H1U_DONE) {
			if (wp_q_size(&c->in))
				c->keepalive = false; /* bytes past the response: no reuse */
			r->ev->end(r, &(struct wp_hdrs){0});
			return;
		}
	}
}

static void wp_h1c_parse(struct wp_h1c *c)
{
	if (c->parsing)
		return; /* drained() from inside the loop: it goes on by itself */
	c->parsing = true;
	wp_h1c_parse_loop(c);
	c->parsing = false;
}

static void wp_h1up_drained(struct wp_req *r, size_t n)
{
	struct wp_h1c *c = r->up;

	(void)n;
	if (!c || r->down->pending(r) >= WP_IN_HIGH)
		return;
	wp_h1c_parse(c);
	if (r->up == c && c->t)
		wp_tun_resume(c->t);
}

/* ---- tunnel events ---- */

static void wp_h1c_opened(struct wp_tun *t, void *ud, bool ok)
{
	(void)t;
	(void)ud;
	(void)ok; /* a refused CONNECT closes the stream: wp_h1c_closed reports it */
}

static size_t wp_h1c_data(struct wp_tun *t, void *ud, const uint8_t *buf, size_t len)
{
	struct wp_h1c *c = ud;
	struct wp_req *r = c->r;

	(void)t;
	if (!r) {
		/* Bytes on an idle connection: the server broke keep-alive framing; drop it. */
		wp_h1c_drop(c);
		return len;
	}
	if (r->down->pending(r) >= WP_IN_HIGH || wp_q_size(&c->in) >= WP_IN_HIGH)
		return 0; /* resumed from drained() */
	if (wp_q_put(&c->in, buf, len)) {
		wp_h1c_fail(c, WP_UPF_PROTOCOL, "out of memory");
		return len;
	}
	wp_h1c_parse(c);
	return len;
}

static void wp_h1c_eof(struct wp_tun *t, void *ud)
{
	struct wp_h1c *c = ud;
	struct wp_req *r = c->r;

	(void)t;
	if (!r)
		return;
	wp_h1c_parse(c);
	if (c->r != r)
		return;
	if (c->state == WP_H1U_BODY && c->until_close && !wp_q_size(&c->in)) {
		c->state = WP_H1U_DONE; /* the close ends a body of unknown length */
		r->ev->end(r, &(struct wp_hdrs){0});
		return;
	}
	if (c->state != WP_H1U_DONE)
		wp_h1c_fail(c, WP_UPF_RESET, "connection closed before the response ended");
}

static void wp_h1c_writable(struct wp_tun *t, void *ud)
{
	struct wp_h1c *c = ud;

	(void)t;
	if (c->r)
		wp_h1up_pump(c->r);
}

static void wp_h1c_closed(struct wp_tun *t, void *ud, uint32_t error)
{
	struct wp_h1c *c = ud;
	struct wp_req *r = c->r;
	bool ok = t->ok200;

	c->t = NULL;
	if (!r || c->state == WP_H1U_DONE) {
		wp_h1c_drop(c);
		return;
	}
	if (!ok)
		wp_h1c_fail(c, WP_UPF_CONNECT, "connection refused");
	else if (error == HB_ERR_REFUSED)
		wp_h1c_fail(c, WP_UPF_REFUSED, "stream refused");
	else
		wp_h1c_fail(c,
			    c->state == WP_H1U_HEAD && !c->sent_head ? WP_UPF_RESET_BEFORE
								     : WP_UPF_RESET,
			    error ? "stream reset" : "stream closed");
}

static const struct wp_tun_ops wp_h1c_tun_ops = {
    .opened = wp_h1c_opened,
    .data = wp_h1c_data,
    .eof = wp_h1c_eof,
    .writable = wp_h1c_writable,
    .closed = wp_h1c_closed,
};

const struct wp_up_ops wp_h1up_ops = {
    .name = "http/1.1",
    .start = wp_h1up_start,
    .pump = wp_h1up_pump,
    .drained = wp_h1up_drained,
    .cancel = wp_h1up_cancel,
    .release = wp_h1up_release,
    .has_idle = wp_h1up_has_idle,
};
