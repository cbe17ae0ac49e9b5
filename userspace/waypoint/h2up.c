// SPDX-License-Identifier: Apache-2.0
/*
 * The HTTP/2 upstream codec (wp_h2up_ops): an nghttp2 client session over one tunnel to an
 * endpoint pod, carrying the requests of one client connection to that pod (the CONNECT's
 * forwarded header names the client, so sessions are not shared between clients, and they
 * end with it: wp_h2up_close_owned). Request bodies are read from the request as the session
 * sends them; response bytes are acknowledged to the pod only as the client takes them, so a
 * slow reader slows its writer instead of filling memory. A session without requests for
 * WP_UP_IDLE_MS is ended with GOAWAY.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "h2.h"
#include "obs/log.h"
#include "request-t.h"
#include "tunnel.h"

#define WP_H2_WINDOW	  (1u << 20)  /* per stream */
#define WP_H2_CONN_WINDOW (16u << 20) /* per session */

struct wp_h2x;

struct wp_h2u {
	struct wp_h2u *next; /* the worker's list */
	struct wp_worker *w;
	struct wp_tun *t;
	nghttp2_session *s;
	const struct wp_conn *owner; /* the client connection whose requests this carries */
	char key[ZM_ADDR_STRLEN];
	struct wp_h2x *xs; /* its exchanges */
	unsigned int streams;
	uint64_t idle_ms;
	struct rt_timer tmr;
	bool in_recv, dead;
};

/* One exchange: a request's stream on a session (r->up), freed when the stream is gone. */
struct wp_h2x {
	struct wp_h2x *prev, *next;
	struct wp_worker *w;
	struct wp_h2u *u;
	struct wp_req *r;
	int32_t sid;
	struct wp_resp resp;
	struct wp_hdrs trailers;
	bool resp_head, ended, req_done, deferred;
};

static void wp_h2x_free(void *p)
{
	struct wp_h2x *x = p;

	wp_hdrs_clear(&x->resp.h);
	wp_hdrs_clear(&x->trailers);
	free(x);
}

/* The stream is gone: unlink x from its session and request, release it after the batch. */
static void wp_h2x_end(struct wp_h2x *x)
{
	struct wp_h2u *u = x->u;

	if (u) {
		if (x->prev)
			x->prev->next = x->next;
		else
			u->xs = x->next;
		if (x->next)
			x->next->prev = x->prev;
		if (x->sid > 0)
			nghttp2_session_set_stream_user_data(u->s, x->sid, NULL);
		if (u->streams && !--u->streams) {
			u->idle_ms = u->w->loop->now_ms;
			rt_timer_arm(u->w->loop, &u->tmr, u->idle_ms + WP_UP_IDLE_MS);
		}
	}
	x->u = NULL;
	if (x->r)
		x->r->up = NULL;
	x->r = NULL;
	rt_defer_free(x->w->loop, wp_h2x_free, x);
}

/* The exchange failed: x goes, the lifecycle decides what follows. */
static void wp_h2x_fail(struct wp_h2x *x, enum wp_up_fail why, const char *text)
{
	struct wp_req *r = x->r;

	wp_h2x_end(x);
	if (r)
		r->ev->failed(r, why, text);
}

static void wp_h2u_free(void *p)
{
	struct wp_h2u *u = p;

	nghttp2_session_del(u->s);
	free(u);
}

/* The session is over: every exchange on it fails, the session goes after the batch. */
static void wp_h2u_kill(struct wp_h2u *u, bool connected, const char *why)
{
	struct wp_h2u **pp;

	if (u->t)
		wp_tun_abort(u->t);
	u->t = NULL;
	u->dead = true;
	for (pp = &u->w->h2us; *pp; pp = &(*pp)->next) {
		if (*pp == u) {
			*pp = u->next;
			break;
		}
	}
	while (u->xs)
		wp_h2x_fail(u->xs, connected ? WP_UPF_RESET : WP_UPF_CONNECT, why);
	rt_defer_free_timed(u->w->loop, &u->tmr, wp_h2u_free, u);
}

static void wp_h2u_pump(struct wp_h2u *u)
{
	if (!u || u->in_recv || u->dead || !u->t)
		return;
	u->in_recv = true;
	while (wp_tun_queued(u->t) < WP_IN_HIGH) {
		const uint8_t *data;
		ssize_t n = nghttp2_session_mem_send(u->s, &data);

		if (n <= 0 || wp_tun_write(u->t, data, (size_t)n)) {
			u->dead = n != 0;
			break;
		}
	}
	u->in_recv = false;
	if (u->dead) {
		obs_log(OBS_WARN, "h2", "h2 upstream %s: session failed, closing", u->key);
		wp_h2u_kill(u, true, "upstream session failed");
	}
}

/* ---- session callbacks ---- */

static ssize_t wp_h2u_read_body(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t len,
				uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct wp_h2x *x = nghttp2_session_get_stream_user_data(s, sid);
	struct wp_req *r = x ? x->r : NULL;
	size_t n;

	(void)src;
	(void)ud;
	if (!r)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	n = wp_q_size(&r->body) < len ? wp_q_size(&r->body) : len;
	if (n)
		memcpy(buf, wp_q_data(&r->body), n);
	wp_q_drop(&r->body, n);
	if (!wp_q_size(&r->body) && r->body_eof) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		x->req_done = true;
	} else if (!n) {
		x->deferred = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	if (n)
		r->ev->taken(r, n);
	return (ssize_t)n;
}

static int wp_h2u_on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
			    size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
	struct wp_h2x *x = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);

	(void)flags;
	(void)ud;
	if (!x || f->hd.type != NGHTTP2_HEADERS)
		return 0;
	if (x->resp_head) {
		if (wp_hdrs_add(&x->trailers, (const char *)name, nlen, (const char *)value, vlen))
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		return 0;
	}
	if (nlen == 7 && !memcmp(name, ":status", 7)) {
		x->resp.status = (unsigned int)strtoul((const char *)value, NULL, 10);
		return 0;
	}
	if (nlen == 14 && !memcmp(name, "content-length", 14)) {
		x->resp.len = strtoll((const char *)value, NULL, 10);
		return 0;
	}
	if (name[0] == ':')
		return 0;
	if (wp_hdrs_add(&x->resp.h, (const char *)name, nlen, (const char *)value, vlen))
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	return 0;
}

static int wp_h2u_on_begin(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct wp_h2x *x = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);

	(void)ud;
	if (x && f->hd.type == NGHTTP2_HEADERS && !x->resp_head) {
		/* A final response after a 1xx: start over. */
		wp_hdrs_clear(&x->resp.h);
		x->resp.status = 0;
		x->resp.len = -1;
	}
	return 0;
}

static int wp_h2u_on_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct wp_h2x *x = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
	bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;
	struct wp_req *r = x ? x->r : NULL;

	(void)ud;
	if (!x || (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA))
		return 0;
	if (f->hd.type == NGHTTP2_HEADERS && !x->resp_head) {
		if (x->resp.status >= 100 && x->resp.status < 200 && !end)
			return 0; /* interim: the final response follows */
		x->resp_head = true;
		x->ended = end;
		if (r)
			r->ev->head(r, &x->resp, end);
		return 0;
	}
	if (end) {
		x->ended = true;
		if (r)
			r->ev->end(r, &x->trailers);
	}
	return 0;
}

static int wp_h2u_on_chunk(nghttp2_session *s, uint8_t flags, int32_t sid, const uint8_t *data,
			   size_t len, void *ud)
{
	struct wp_h2x *x = nghttp2_session_get_stream_user_data(s, sid);

	(void)flags;
	(void)ud;
	if (!x || !x->r || !x->resp_head) {
		nghttp2_session_consume(s, sid, len); /* nobody to give it to: dropped */
		return 0;
	}
	x->r->ev->body(x->r, data, len); /* acknowledged when the client takes it */
	return 0;
}

static int wp_h2u_on_close(nghttp2_session *s, int32_t sid, uint32_t error, void *ud)
{
	struct wp_h2x *x = nghttp2_session_get_stream_user_data(s, sid);

	(void)ud;
	if (!x)
		return 0;
	if (x->ended || !x->r) {
		wp_h2x_end(x);
		return 0;
	}
	if (error == NGHTTP2_REFUSED_STREAM)
		wp_h2x_fail(x, WP_UPF_REFUSED, "upstream stream refused");
	else
		wp_h2x_fail(x, WP_UPF_RESET,
			    error ? "upstream stream reset" : "upstream stream closed");
	return 0;
}

static int wp_h2u_on_error(nghttp2_session *s, int code, const char *msg, size_t len, void *ud)
{
	struct wp_h2u *u = ud;

	(void)s;
	obs_log(OBS_WARN, "h2", "h2 upstream %s: %.*s (%s)", u->key, (int)len, msg,
		nghttp2_strerror(code));
	return 0;
}

static nghttp2_session_callbacks *wp_h2u_cbs;

static void wp_h2u_cbs_init(void)
{
	if (nghttp2_session_callbacks_new(&wp_h2u_cbs))
		return;
	nghttp2_session_callbacks_set_on_begin_headers_callback(wp_h2u_cbs, wp_h2u_on_begin);
	nghttp2_session_callbacks_set_on_header_callback(wp_h2u_cbs, wp_h2u_on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(wp_h2u_cbs, wp_h2u_on_frame);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(wp_h2u_cbs, wp_h2u_on_chunk);
	nghttp2_session_callbacks_set_on_stream_close_callback(wp_h2u_cbs, wp_h2u_on_close);
	nghttp2_session_callbacks_set_error_callback2(wp_h2u_cbs, wp_h2u_on_error);
}

static nghttp2_session_callbacks *wp_h2u_callbacks(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, wp_h2u_cbs_init);
	return wp_h2u_cbs;
}

/* ---- the tunnel under a session ---- */

static void wp_h2u_opened(struct wp_tun *t, void *ud, bool ok)
{
	(void)t;
	(void)ud;
	(void)ok; /* a refused CONNECT closes the stream: wp_h2u_closed fails the exchanges */
}

static size_t wp_h2u_data(struct wp_tun *t, void *ud, const uint8_t *buf, size_t len)
{
	struct wp_h2u *u = ud;
	ssize_t rv;

	(void)t;
	if (u->dead)
		return len;
	u->in_recv = true;
	rv = nghttp2_session_mem_recv(u->s, buf, len);
	u->in_recv = false;
	if (rv < 0) {
		obs_log(OBS_WARN, "h2", "h2 upstream %s: %s, closing", u->key,
			nghttp2_strerror((int)rv));
		wp_h2u_kill(u, true, "upstream protocol error");
		return len;
	}
	wp_h2u_pump(u);
	return len;
}

static void wp_h2u_eof(struct wp_tun *t, void *ud)
{
	(void)ud;
	wp_tun_end(t); /* the pod ended the session: end ours; the close fails what is left */
}

static void wp_h2u_writable(struct wp_tun *t, void *ud)
{
	(void)t;
	wp_h2u_pump(ud);
}

static void wp_h2u_closed(struct wp_tun *t, void *ud, uint32_t error)
{
	struct wp_h2u *u = ud;

	(void)error;
	u->t = NULL;
	wp_h2u_kill(u, t->ok200, "upstream connection lost");
}

static const struct wp_tun_ops wp_h2u_tun_ops = {
    .opened = wp_h2u_opened,
    .data = wp_h2u_data,
    .eof = wp_h2u_eof,
    .writable = wp_h2u_writable,
    .closed = wp_h2u_closed,
};

/* GOAWAY, then our half of the tunnel: the pod closes its side when done. */
static void wp_h2u_end(struct wp_h2u *u)
{
	if (u->dead || !u->t)
		return;
	nghttp2_session_terminate_session(u->s, NGHTTP2_NO_ERROR);
	wp_h2u_pump(u);
	if (u->t)
		wp_tun_end(u->t);
}

static void wp_h2u_idle_fired(struct rt_loop *l, struct rt_timer *tm)
{
	struct wp_h2u *u = zm_container_of(tm, struct wp_h2u, tmr);

	if (u->streams || u->dead)
		return;
	if (l->now_ms - u->idle_ms < WP_UP_IDLE_MS) {
		rt_timer_arm(l, tm, u->idle_ms + WP_UP_IDLE_MS);
		return;
	}
	wp_h2u_end(u);
}

static struct wp_h2u *wp_h2u_new(struct wp_req *r)
{
	nghttp2_settings_entry iv[] = {
	    {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
	    {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, WP_H2_WINDOW},
	};
	struct wp_worker *w = r->c->w;
	nghttp2_option *opt = NULL;
	struct wp_h2u *u = calloc(1, sizeof(*u));

	int busy = 0;

	if (!u || !wp_h2u_callbacks() || nghttp2_option_new(&opt))
		goto err;
	nghttp2_option_set_no_auto_window_update(opt, 1);
	if (nghttp2_session_client_new2(&u->s, wp_h2u_callbacks(), u, opt))
		goto err;
	nghttp2_option_del(opt);
	opt = NULL;
	if (nghttp2_submit_settings(u->s, NGHTTP2_FLAG_NONE, iv, 2) ||
	    nghttp2_session_set_local_window_size(u->s, NGHTTP2_FLAG_NONE, 0, WP_H2_CONN_WINDOW))
		goto err;
	u->w = w;
	u->owner = r->c;
	snprintf(u->key, sizeof(u->key), "%s", r->tgt.ep_key);
	rt_timer_init(&u->tmr, wp_h2u_idle_fired);
	u->t = wp_tun_open(w, r->tgt.addr, r->tgt.ep.target_port, r->tgt.ep.wl, r->c->forwarded,
			   r->tgt.cl, r->tgt.policy ? r->tgt.policy->pool.max_connections : 0,
			   &wp_h2u_tun_ops, u);
	if (!u->t) {
		busy = errno == EBUSY;
		goto err;
	}
	u->idle_ms = w->loop->now_ms;
	rt_timer_arm(w->loop, &u->tmr, u->idle_ms + WP_UP_IDLE_MS);
	u->next = w->h2us;
	w->h2us = u;
	return u;
err:
	if (opt)
		nghttp2_option_del(opt);
	if (u && u->s)
		nghttp2_session_del(u->s);
	free(u);
	errno = busy ? EBUSY : EHOSTUNREACH;
	return NULL;
}

/* A session of r's client to r's endpoint with a free stream slot. */
static struct wp_h2u *wp_h2u_find(struct wp_req *r)
{
	struct wp_h2u *u;

	for (u = r->c->w->h2us; u; u = u->next) {
		if (u->dead || !u->t || u->owner != r->c || strcmp(u->key, r->tgt.ep_key))
			continue;
		if (!nghttp2_session_check_request_allowed(u->s))
			continue; /* the pod sent GOAWAY: new requests go to a new session */
		if (u->streams < nghttp2_session_get_remote_settings(
				     u->s, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS))
			return u;
	}
	return NULL;
}

static bool wp_h2up_has_idle(struct wp_req *r)
{
	return wp_h2u_find(r) != NULL;
}

static void wp_nv(nghttp2_nv *nv, size_t *n, const char *name, const char *value)
{
	nv[(*n)++] = (nghttp2_nv){.name = (uint8_t *)name,
				  .namelen = strlen(name),
				  .value = (uint8_t *)value,
				  .valuelen = strlen(value),
				  .flags = NGHTTP2_NV_FLAG_NONE};
}

static int wp_h2up_start(struct wp_req *r)
{
	nghttp2_data_provider prd = {.read_callback = wp_h2u_read_body};
	nghttp2_nv nv[WP_HDRS_MAX + 8];
	struct wp_h2u *u = wp_h2u_find(r);
	struct wp_h2x *x;
	char cl[24];
	size_t n = 0, i;
	int32_t sid;

	if (!u && !wp_cl_conn_allowed(r->tgt.cl, r->tgt.policy))
		return -EBUSY;
	if (!u && !(u = wp_h2u_new(r)))
		return errno == EBUSY ? -EBUSY : -EHOSTUNREACH;
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->w = u->w;
	x->r = r;
	x->resp.len = -1;
	wp_nv(nv, &n, ":method", r->method);
	wp_nv(nv, &n, ":scheme", "http");
	wp_nv(nv, &n, ":authority", r->up_authority);
	wp_nv(nv, &n, ":path", r->up_path);
	for (i = 0; i < r->up_h.n && n < WP_HDRS_MAX + 6; i++) {
		const char *name = r->up_h.h[i].name, *v = r->up_h.h[i].value;

		if (name[0] == ':' || wp_h2_conn_field(name, v) || !strcmp(name, "content-length"))
			continue;
		wp_nv(nv, &n, name, v);
	}
	if (r->body_len >= 0) {
		snprintf(cl, sizeof(cl), "%lld", (long long)r->body_len);
		wp_nv(nv, &n, "content-length", cl);
	}
	sid = nghttp2_submit_request(u->s, NULL, nv, n,
				     r->body_eof && !wp_q_size(&r->body) ? NULL : &prd, x);
	if (sid < 0) {
		free(x);
		return -EPROTO;
	}
	x->req_done = r->body_eof && !wp_q_size(&r->body);
	x->sid = sid;
	x->u = u;
	x->next = u->xs;
	if (u->xs)
		u->xs->prev = x;
	u->xs = x;
	u->streams++;
	rt_timer_cancel(u->w->loop, &u->tmr);
	r->up = x;
	wp_h2u_pump(u);
	return 0;
}

static void wp_h2up_pump(struct wp_req *r)
{
	struct wp_h2x *x = r->up;

	if (!x || !x->u || !x->deferred)
		return;
	x->deferred = false;
	nghttp2_session_resume_data(x->u->s, x->sid);
	wp_h2u_pump(x->u);
}

static void wp_h2up_drained(struct wp_req *r, size_t n)
{
	struct wp_h2x *x = r->up;

	if (!x || !x->u)
		return;
	nghttp2_session_consume(x->u->s, x->sid, n);
	wp_h2u_pump(x->u);
}

/* r lets go of its stream; reset it when it is still open (cancel, or answered early). */
static void wp_h2x_leave(struct wp_req *r, uint32_t code)
{
	struct wp_h2x *x = r->up;
	struct wp_h2u *u = x ? x->u : NULL;

	r->up = NULL;
	if (!x)
		return;
	x->r = NULL;
	if (!u) {
		wp_h2x_end(x);
		return;
	}
	if (!x->ended || !x->req_done)
		nghttp2_submit_rst_stream(u->s, NGHTTP2_FLAG_NONE, x->sid, code);
	wp_h2u_pump(u); /* the stream's close ends x */
}

static void wp_h2up_cancel(struct wp_req *r)
{
	wp_h2x_leave(r, NGHTTP2_CANCEL);
}

static void wp_h2up_release(struct wp_req *r)
{
	wp_h2x_leave(r, NGHTTP2_NO_ERROR);
}

void wp_h2up_close_owned(struct wp_worker *w, const struct wp_conn *c)
{
	struct wp_h2u *u, *next;

	for (u = w->h2us; u; u = next) {
		next = u->next;
		if (u->owner != c)
			continue;
		u->owner = NULL;
		/* Mirror copies still on it are cancelled with it. */
		while (u->xs)
			wp_h2x_fail(u->xs, WP_UPF_RESET, "client connection closed");
		wp_h2u_end(u);
	}
}

const struct wp_up_ops wp_h2up_ops = {
    .name = "h2",
    .start = wp_h2up_start,
    .pump = wp_h2up_pump,
    .drained = wp_h2up_drained,
    .cancel = wp_h2up_cancel,
    .release = wp_h2up_release,
    .has_idle = wp_h2up_has_idle,
};
