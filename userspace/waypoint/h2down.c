// SPDX-License-Identifier: Apache-2.0
/*
 * The HTTP/2 downstream codec (wp_h2_codec): an nghttp2 server session fed from a downstream
 * connection that started with the HTTP/2 preface (h2c with prior knowledge, as gRPC clients
 * speak it). Each stream is a request (pseudo-headers to method, path, authority and scheme,
 * the rest to its header list; nghttp2 has checked both); its response is submitted with a
 * data provider reading what the lifecycle handed over. Windows are given back to the client
 * only as the endpoint takes its bytes. A stream with more than WP_HDRS_MAX fields or
 * WP_HDRS_BYTES of them is refused (RST_STREAM) and logged; the others go on. A connection
 * with no stream open for the idle timeout is ended with GOAWAY.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "h2.h"
#include "obs/log.h"
#include "request.h"
#include "tunnel.h"

#define WP_H2_STREAMS 256

struct wp_h2s;

struct wp_h2d {
	struct wp_conn *c;
	nghttp2_session *s;
	struct wp_h2s *streams;
	unsigned int n_streams;
	uint64_t idle_since_ms;
	bool in_recv, dead;
};

/* One client stream and its request. */
struct wp_h2s {
	struct wp_h2s *prev, *next;
	struct wp_h2d *d;
	struct wp_req *r;
	int32_t sid;
	char *method, *path, *authority, *scheme, *host;
	struct wp_q rbody; /* response bytes the session has not taken yet */
	struct wp_hdrs trailers;
	bool head_done, resp_submitted, resp_eof, deferred, refused;
};

static const struct wp_down_ops wp_h2d_down;
static const char wp_h2_magic[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

bool wp_h2_preface(const char *buf, size_t len)
{
	return len >= sizeof(wp_h2_magic) - 1 && !memcmp(buf, wp_h2_magic, sizeof(wp_h2_magic) - 1);
}

static void wp_h2d_arm(struct wp_h2d *d)
{
	struct wp_conn *c = d->c;
	uint32_t idle = c->w->wp->opts.idle_timeout_ms;

	if (!d->n_streams && idle)
		rt_timer_arm(c->w->loop, &c->tmr, d->idle_since_ms + idle);
	else
		rt_timer_cancel(c->w->loop, &c->tmr);
}

static void wp_h2d_pump(struct wp_h2d *d)
{
	struct wp_conn *c = d->c;

	if (d->in_recv || !c->st)
		return;
	d->in_recv = true;
	while (!d->dead && wp_q_size(&c->out) < WP_IN_HIGH) {
		const uint8_t *data;
		ssize_t n = nghttp2_session_mem_send(d->s, &data);

		if (n <= 0) {
			d->dead = n < 0;
			break;
		}
		wp_q_put(&c->out, data, (size_t)n);
	}
	d->in_recv = false;
	wp_conn_flush(c);
	if (wp_q_size(&c->out) || c->want_end)
		return;
	if (d->dead || (!nghttp2_session_want_read(d->s) && !nghttp2_session_want_write(d->s)) ||
	    (c->in_eof && !d->n_streams))
		wp_conn_end(c);
}

static void wp_h2s_free(void *p)
{
	struct wp_h2s *s = p;

	free(s->method);
	free(s->path);
	free(s->authority);
	free(s->scheme);
	free(s->host);
	wp_q_free(&s->rbody);
	wp_hdrs_clear(&s->trailers);
	free(s);
}

/* The stream is gone: its request let go, s unlinked and released after the batch. */
static void wp_h2s_end(struct wp_h2s *s, bool client_gone)
{
	struct wp_h2d *d = s->d;
	struct wp_req *r = s->r;

	s->r = NULL;
	if (s->prev)
		s->prev->next = s->next;
	else
		d->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	if (!--d->n_streams) {
		d->idle_since_ms = d->c->w->loop->now_ms;
		wp_h2d_arm(d);
	}
	if (r)
		wp_req_release(r, client_gone);
	rt_defer_free(d->c->w->loop, wp_h2s_free, s);
}

/* ---- the response ---- */

static ssize_t wp_h2d_read_resp(nghttp2_session *ss, int32_t sid, uint8_t *buf, size_t len,
				uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct wp_h2s *s = nghttp2_session_get_stream_user_data(ss, sid);
	nghttp2_nv nv[WP_HDRS_MAX];
	size_t n, k = 0, i;

	(void)src;
	(void)ud;
	if (!s)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	n = wp_q_size(&s->rbody) < len ? wp_q_size(&s->rbody) : len;
	if (n)
		memcpy(buf, wp_q_data(&s->rbody), n);
	wp_q_drop(&s->rbody, n);
	if (n && s->r)
		wp_req_drained(s->r, n);
	if (wp_q_size(&s->rbody) || !s->resp_eof) {
		if (n)
			return (ssize_t)n;
		s->deferred = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	*flags |= NGHTTP2_DATA_FLAG_EOF;
	for (i = 0; i < s->trailers.n && k < WP_HDRS_MAX; i++)
		if (!wp_h2_conn_field(s->trailers.h[i].name, s->trailers.h[i].value))
			nv[k++] = (nghttp2_nv){.name = (uint8_t *)s->trailers.h[i].name,
					       .namelen = strlen(s->trailers.h[i].name),
					       .value = (uint8_t *)s->trailers.h[i].value,
					       .valuelen = strlen(s->trailers.h[i].value)};
	if (k && !nghttp2_submit_trailer(ss, sid, nv, k))
		*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
	return (ssize_t)n;
}

static void wp_h2s_resume(struct wp_h2s *s)
{
	if (s->deferred && s->resp_submitted) {
		s->deferred = false;
		nghttp2_session_resume_data(s->d->s, s->sid);
	}
	wp_h2d_pump(s->d);
}

static void wp_h2d_resp_head(struct wp_req *r, const struct wp_resp *resp, bool end)
{
	struct wp_h2s *s = r->cx;
	nghttp2_data_provider prd = {.read_callback = wp_h2d_read_resp};
	nghttp2_nv nv[WP_HDRS_MAX + 2];
	char st[8], cl[24];
	size_t n = 0, i;

	snprintf(st, sizeof(st), "%u", resp->status);
	nv[n++] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)st, 7, strlen(st), 0};
	for (i = 0; i < resp->h.n && n < WP_HDRS_MAX + 1; i++) {
		const struct l7_header *f = &resp->h.h[i];

		if (f->name[0] == ':' || wp_h2_conn_field(f->name, f->value) ||
		    !strcmp(f->name, "content-length"))
			continue;
		nv[n++] = (nghttp2_nv){(uint8_t *)f->name, (uint8_t *)f->value, strlen(f->name),
				       strlen(f->value), 0};
	}
	if (resp->len >= 0 && n < WP_HDRS_MAX + 2) {
		snprintf(cl, sizeof(cl), "%lld", (long long)resp->len);
		nv[n++] =
		    (nghttp2_nv){(uint8_t *)"content-length", (uint8_t *)cl, 14, strlen(cl), 0};
	}
	s->resp_submitted = true;
	s->resp_eof = end;
	nghttp2_submit_response(s->d->s, s->sid, nv, n, end ? NULL : &prd);
	wp_h2d_pump(s->d);
}

static void wp_h2d_resp_body(struct wp_req *r, const void *p, size_t n)
{
	struct wp_h2s *s = r->cx;

	wp_q_put(&s->rbody, p, n);
	wp_h2s_resume(s);
}

static void wp_h2d_resp_end(struct wp_req *r, const struct wp_hdrs *trailers)
{
	struct wp_h2s *s = r->cx;

	s->resp_eof = true;
	wp_hdrs_copy(&s->trailers, trailers);
	wp_h2s_resume(s);
}

static void wp_h2d_resp_reset(struct wp_req *r)
{
	struct wp_h2s *s = r->cx;

	nghttp2_submit_rst_stream(s->d->s, NGHTTP2_FLAG_NONE, s->sid, NGHTTP2_INTERNAL_ERROR);
	wp_h2d_pump(s->d);
}

static void wp_h2d_consumed(struct wp_req *r, size_t n)
{
	struct wp_h2s *s = r->cx;

	nghttp2_session_consume(s->d->s, s->sid, n);
	wp_h2d_pump(s->d);
}

static size_t wp_h2d_pending(const struct wp_req *r)
{
	const struct wp_h2s *s = r->cx;

	return wp_q_size(&s->rbody);
}

static void wp_h2d_upgraded(struct wp_req *r, const struct wp_resp *resp, struct wp_tun *t)
{
	(void)resp;
	wp_tun_abort(t); /* HTTP/2 has no Upgrade: never asked for */
	wp_h2d_resp_reset(r);
}

static const struct wp_down_ops wp_h2d_down = {
    .head = wp_h2d_resp_head,
    .body = wp_h2d_resp_body,
    .end = wp_h2d_resp_end,
    .reset = wp_h2d_resp_reset,
    .consumed = wp_h2d_consumed,
    .pending = wp_h2d_pending,
    .upgraded = wp_h2d_upgraded,
};

/* ---- the request ---- */

static int wp_h2s_set(char **slot, const uint8_t *v, size_t len)
{
	if (*slot)
		return -EINVAL; /* nghttp2 refuses repeated pseudo-headers already */
	*slot = strndup((const char *)v, len);
	return *slot ? 0 : -ENOMEM;
}

/* The head is in: the request, or a refusal. */
static void wp_h2s_head(struct wp_h2s *s, bool end)
{
	struct wp_req *r = s->r;
	const char *auth = s->authority ? s->authority : s->host;
	const char *cl = wp_hdrs_get(&r->h, "content-length");

	if (!s->method || !s->path || !strcmp(s->method, "CONNECT")) {
		wp_req_set_head(r, s->method ? s->method : "-", s->method ? strlen(s->method) : 1,
				s->path ? s->path : "-", s->path ? strlen(s->path) : 1, "", 0,
				"http");
		wp_req_reply(r, 400, "DPE", "bad request");
		return;
	}
	if (wp_req_set_head(r, s->method, strlen(s->method), s->path, strlen(s->path), auth,
			    auth ? strlen(auth) : 0, s->scheme ? s->scheme : "http")) {
		wp_req_reply(r, 500, "-", "out of memory");
		return;
	}
	if (cl)
		r->body_len = strtoll(cl, NULL, 10); /* nghttp2 checked it against the DATA */
	wp_hdrs_del(&r->h, "content-length");
	r->minor = 1;
	r->body_eof = end;
	wp_req_start(r);
}

static int wp_h2d_on_begin(nghttp2_session *ss, const nghttp2_frame *f, void *ud)
{
	struct wp_h2d *d = ud;
	struct wp_h2s *s;

	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	s->r = wp_req_new(d->c, WP_H2, &wp_h2d_down, s);
	if (!s->r) {
		free(s);
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	s->d = d;
	s->sid = f->hd.stream_id;
	s->next = d->streams;
	if (d->streams)
		d->streams->prev = s;
	d->streams = s;
	d->n_streams++;
	wp_h2d_arm(d);
	nghttp2_session_set_stream_user_data(ss, s->sid, s);
	return 0;
}

static int wp_h2d_on_header(nghttp2_session *ss, const nghttp2_frame *f, const uint8_t *name,
			    size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
	struct wp_h2s *s = nghttp2_session_get_stream_user_data(ss, f->hd.stream_id);
	struct wp_h2d *d = ud;
	int r = 0;

	(void)flags;
	if (!s || s->head_done || !s->r)
		return 0; /* request trailers are not forwarded */
	s->r->head_bytes += nlen + vlen;
	if (nlen == 7 && !memcmp(name, ":method", 7))
		r = wp_h2s_set(&s->method, value, vlen);
	else if (nlen == 5 && !memcmp(name, ":path", 5))
		r = wp_h2s_set(&s->path, value, vlen);
	else if (nlen == 10 && !memcmp(name, ":authority", 10))
		r = wp_h2s_set(&s->authority, value, vlen);
	else if (nlen == 7 && !memcmp(name, ":scheme", 7))
		r = wp_h2s_set(&s->scheme, value, vlen);
	else if (nlen == 4 && !memcmp(name, "host", 4))
		r = s->host ? 0 : wp_h2s_set(&s->host, value, vlen);
	else if (name[0] != ':')
		r = wp_hdrs_add(&s->r->h, (const char *)name, nlen, (const char *)value, vlen);
	if (r) {
		obs_log(OBS_WARN, "h2",
			"h2 request from %s: more than %u headers or %u bytes, stream refused",
			d->c->peer, WP_HDRS_MAX, WP_HDRS_BYTES);
		s->refused = true;
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	return 0;
}

static int wp_h2d_on_frame(nghttp2_session *ss, const nghttp2_frame *f, void *ud)
{
	struct wp_h2s *s = nghttp2_session_get_stream_user_data(ss, f->hd.stream_id);
	bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;

	(void)ud;
	if (!s || !s->r || (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA))
		return 0;
	if (f->hd.type == NGHTTP2_HEADERS && !s->head_done) {
		s->head_done = true;
		wp_h2s_head(s, end);
	} else if (end) {
		wp_req_body_end(s->r);
	}
	return 0;
}

static int wp_h2d_on_chunk(nghttp2_session *ss, uint8_t flags, int32_t sid, const uint8_t *data,
			   size_t len, void *ud)
{
	struct wp_h2s *s = nghttp2_session_get_stream_user_data(ss, sid);

	(void)flags;
	(void)ud;
	if (!s || !s->r) {
		nghttp2_session_consume(ss, sid, len);
		return 0;
	}
	wp_req_body(s->r, data, len); /* consumed as the endpoint takes it */
	return 0;
}

static int wp_h2d_on_close(nghttp2_session *ss, int32_t sid, uint32_t error, void *ud)
{
	struct wp_h2s *s = nghttp2_session_get_stream_user_data(ss, sid);

	(void)ud;
	if (!s)
		return 0;
	nghttp2_session_set_stream_user_data(ss, sid, NULL);
	wp_h2s_end(s, error || s->refused || !s->resp_eof);
	return 0;
}

static int wp_h2d_on_error(nghttp2_session *ss, int code, const char *msg, size_t len, void *ud)
{
	struct wp_h2d *d = ud;

	(void)ss;
	obs_log(OBS_WARN, "h2", "h2 from %s (%s): %.*s (%s)", d->c->peer, d->c->authority, (int)len,
		msg, nghttp2_strerror(code));
	return 0;
}

static nghttp2_session_callbacks *wp_h2d_cbs;

static void wp_h2d_cbs_init(void)
{
	if (nghttp2_session_callbacks_new(&wp_h2d_cbs))
		return;
	nghttp2_session_callbacks_set_on_begin_headers_callback(wp_h2d_cbs, wp_h2d_on_begin);
	nghttp2_session_callbacks_set_on_header_callback(wp_h2d_cbs, wp_h2d_on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(wp_h2d_cbs, wp_h2d_on_frame);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(wp_h2d_cbs, wp_h2d_on_chunk);
	nghttp2_session_callbacks_set_on_stream_close_callback(wp_h2d_cbs, wp_h2d_on_close);
	nghttp2_session_callbacks_set_error_callback2(wp_h2d_cbs, wp_h2d_on_error);
}

/* ---- the codec ---- */

static void wp_h2d_input(struct wp_conn *c)
{
	struct wp_h2d *d = c->cx;
	ssize_t rv;

	if (!d->dead && wp_q_size(&c->in)) {
		d->in_recv = true;
		rv = nghttp2_session_mem_recv(d->s, (const uint8_t *)wp_q_data(&c->in),
					      wp_q_size(&c->in));
		d->in_recv = false;
		if (rv < 0) {
			obs_log(OBS_WARN, "h2", "h2 from %s (%s): %s, closing", c->peer,
				c->authority, nghttp2_strerror((int)rv));
			nghttp2_session_terminate_session(d->s, NGHTTP2_PROTOCOL_ERROR);
		}
	}
	wp_q_free(&c->in); /* HTTP/2 flow control bounds what comes in */
	wp_h2d_pump(d);
}

static int wp_h2d_start(struct wp_conn *c)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	nghttp2_settings_entry iv[] = {
	    {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, WP_H2_STREAMS},
	    {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1u << 20},
	    {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
	};
	nghttp2_option *opt = NULL;
	struct wp_h2d *d = calloc(1, sizeof(*d));

	pthread_once(&once, wp_h2d_cbs_init);
	if (!d || !wp_h2d_cbs || nghttp2_option_new(&opt))
		goto err;
	nghttp2_option_set_no_auto_window_update(opt, 1);
	d->c = c;
	d->idle_since_ms = c->w->loop->now_ms;
	if (nghttp2_session_server_new2(&d->s, wp_h2d_cbs, d, opt))
		goto err;
	nghttp2_option_del(opt);
	opt = NULL;
	if (nghttp2_submit_settings(d->s, NGHTTP2_FLAG_NONE, iv, 3) ||
	    nghttp2_session_set_local_window_size(d->s, NGHTTP2_FLAG_NONE, 0, 16u << 20)) {
		nghttp2_session_del(d->s);
		goto err;
	}
	c->cx = d;
	wp_h2d_arm(d);
	wp_h2d_input(c);
	return 0;
err:
	if (opt)
		nghttp2_option_del(opt);
	free(d);
	return -ENOMEM;
}

static void wp_h2d_writable(struct wp_conn *c)
{
	wp_h2d_pump(c->cx);
}

/* No stream for the idle timeout: GOAWAY, and the session ends. */
static void wp_h2d_timer(struct wp_conn *c)
{
	struct wp_h2d *d = c->cx;
	uint32_t idle = c->w->wp->opts.idle_timeout_ms;

	if (d->n_streams || !idle)
		return;
	if (c->w->loop->now_ms < d->idle_since_ms + idle) {
		wp_h2d_arm(d);
		return;
	}
	obs_log(OBS_INFO, "h2", "h2 connection from %s (%s) idle for %u ms, closing", c->peer,
		c->authority, idle);
	nghttp2_session_terminate_session(d->s, NGHTTP2_NO_ERROR);
	wp_h2d_pump(d);
}

/* Draining: GOAWAY naming the last stream taken; the session ends when those are done. */
static void wp_h2d_drain(struct wp_conn *c)
{
	struct wp_h2d *d = c->cx;

	if (d->dead)
		return;
	nghttp2_submit_goaway(d->s, NGHTTP2_FLAG_NONE,
			      nghttp2_session_get_last_proc_stream_id(d->s), NGHTTP2_NO_ERROR, NULL,
			      0);
	wp_h2d_pump(d);
}

static void wp_h2d_session_free(void *p)
{
	struct wp_h2d *d = p;

	nghttp2_session_del(d->s);
	free(d);
}

static void wp_h2d_close(struct wp_conn *c)
{
	struct wp_h2d *d = c->cx;

	if (!d)
		return;
	while (d->streams) {
		nghttp2_session_set_stream_user_data(d->s, d->streams->sid, NULL);
		wp_h2s_end(d->streams, true);
	}
	wp_h2up_close_owned(c->w, c);
	c->cx = NULL;
	d->dead = true;
	rt_defer_free(c->w->loop, wp_h2d_session_free, d);
}

const struct wp_codec wp_h2_codec = {
    .name = "http2",
    .start = wp_h2d_start,
    .input = wp_h2d_input,
    .writable = wp_h2d_writable,
    .timer = wp_h2d_timer,
    .close = wp_h2d_close,
    .drain = wp_h2d_drain,
};
