// SPDX-License-Identifier: Apache-2.0
/*
 * Upstream HTTP/2 sessions of the waypoint: an nghttp2 client session over one CONNECT
 * stream to an endpoint pod, carrying the requests of one client connection to that pod
 * (the CONNECT's forwarded header names the client, so sessions are not shared between
 * clients). Request bodies are read from the request's queue as the session sends them;
 * response bytes are acknowledged to the pod only as the client takes them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/list.h"
#include "h2.h"

#define WP_H2_WINDOW	  (1u << 20)  /* per stream */
#define WP_H2_CONN_WINDOW (16u << 20) /* per session */

void wp_h2u_pump(struct wp_h2u *u)
{
	struct wp_up *up = u->up;

	if (u->in_recv || !up || !up->st || u->dead)
		return;
	u->in_recv = true;
	while (wp_q_size(&up->out) < WP_IN_HIGH) {
		const uint8_t *data;
		ssize_t n = nghttp2_session_mem_send(u->s, &data);

		if (n <= 0) {
			if (n < 0)
				u->dead = true;
			break;
		}
		wp_q_put(&up->out, data, (size_t)n);
	}
	u->in_recv = false;
	if (u->dead) {
		obs_log(OBS_WARN, "h2", "h2 upstream %s: session failed, closing", up->key);
		hb_stream_reset(up->st, HB_ERR_INTERNAL);
		return;
	}
	wp_q_flush(&up->out, up->st);
}

static ssize_t wp_h2u_read_body(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t len,
				uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct wp_h2rq *rq = nghttp2_session_get_stream_user_data(s, sid);
	size_t n;

	(void)src;
	(void)ud;
	if (!rq)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	n = wp_q_size(&rq->body) < len ? wp_q_size(&rq->body) : len;
	if (n)
		memcpy(buf, rq->body.p + rq->body.off, n);
	wp_q_drop(&rq->body, n);
	if (n)
		wp_h2rq_consumed(rq, n);
	if (!wp_q_size(&rq->body) && rq->body_eof) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	} else if (!n) {
		rq->deferred_up = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	return (ssize_t)n;
}

static int wp_h2u_on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
			    size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
	struct wp_h2rq *rq = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
	struct wp_h2hdrs *h;

	(void)flags;
	(void)ud;
	if (!rq || f->hd.type != NGHTTP2_HEADERS)
		return 0;
	if (f->headers.cat == NGHTTP2_HCAT_RESPONSE)
		h = &rq->resp;
	else if (rq->resp_head)
		h = &rq->trailers;
	else
		h = &rq->resp; /* a final response after 1xx: resp was cleared */
	if (wp_h2hdrs_add(h, name, nlen, value, vlen))
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	if (h == &rq->resp && nlen == 7 && !memcmp(name, ":status", 7))
		rq->status = (unsigned int)strtoul(h->h[h->n - 1].value, NULL, 10);
	return 0;
}

static int wp_h2u_on_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct wp_h2rq *rq = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
	bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;

	(void)ud;
	if (!rq || (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA))
		return 0;
	if (f->hd.type == NGHTTP2_HEADERS && !rq->resp_head) {
		if (rq->status >= 100 && rq->status < 200 && !end) {
			wp_h2hdrs_clear(&rq->resp); /* interim: the final response follows */
			rq->status = 0;
			return 0;
		}
		rq->resp_head = true;
		rq->resp_eof = end;
		wp_h2rq_on_response(rq);
		if (end)
			wp_h2rq_on_end(rq);
		return 0;
	}
	if (end) {
		rq->resp_eof = true;
		wp_h2rq_on_end(rq);
	}
	return 0;
}

static int wp_h2u_on_chunk(nghttp2_session *s, uint8_t flags, int32_t sid, const uint8_t *data,
			   size_t len, void *ud)
{
	struct wp_h2rq *rq = nghttp2_session_get_stream_user_data(s, sid);

	(void)flags;
	(void)ud;
	if (!rq || !rq->resp_head || rq->local || rq->shadow) {
		nghttp2_session_consume(s, sid, len); /* nobody to give it to: dropped */
		return 0;
	}
	if (wp_q_put(&rq->rbody, data, len))
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	rq->resp_bytes += len;
	wp_h2rq_on_data(rq);
	return 0;
}

static void wp_h2u_unlink(struct wp_h2rq *rq)
{
	struct wp_h2u *u = rq->u;

	if (!u)
		return;
	if (rq->uprev)
		rq->uprev->unext = rq->unext;
	else
		u->rqs = rq->unext;
	if (rq->unext)
		rq->unext->uprev = rq->uprev;
	rq->unext = rq->uprev = NULL;
	rq->u = NULL;
	rq->usid = 0;
}

static int wp_h2u_on_stream_close(nghttp2_session *s, int32_t sid, uint32_t error, void *ud)
{
	struct wp_h2u *u = ud;
	struct wp_h2rq *rq = nghttp2_session_get_stream_user_data(s, sid);

	if (u->streams)
		u->streams--;
	if (!u->streams) {
		u->idle_ms = u->w->loop->now_ms;
		rt_timer_arm(u->w->loop, &u->tmr, u->idle_ms + WP_UP_IDLE_MS);
	}
	if (!rq)
		return 0;
	nghttp2_session_set_stream_user_data(s, sid, NULL);
	wp_h2u_unlink(rq);
	if (!rq->resp_eof || rq->shadow)
		wp_h2rq_on_upstream_failed(
		    rq, false, error ? "upstream stream reset" : "upstream stream closed");
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
	nghttp2_session_callbacks_set_on_header_callback(wp_h2u_cbs, wp_h2u_on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(wp_h2u_cbs, wp_h2u_on_frame);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(wp_h2u_cbs, wp_h2u_on_chunk);
	nghttp2_session_callbacks_set_on_stream_close_callback(wp_h2u_cbs, wp_h2u_on_stream_close);
	nghttp2_session_callbacks_set_error_callback2(wp_h2u_cbs, wp_h2u_on_error);
}

static nghttp2_session_callbacks *wp_h2u_callbacks(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, wp_h2u_cbs_init);
	return wp_h2u_cbs;
}

/* GOAWAY, then our half of the CONNECT stream: the pod closes its side when done. */
static void wp_h2u_end(struct wp_h2u *u)
{
	nghttp2_session_terminate_session(u->s, NGHTTP2_NO_ERROR);
	wp_h2u_pump(u);
	u->dead = true;
	if (u->up && u->up->st) {
		wp_q_flush(&u->up->out, u->up->st);
		hb_stream_shutdown(u->up->st);
	}
}

/* A session without requests for WP_UP_IDLE_MS is ended (its timer, armed when it idles). */
static void wp_h2u_idle_fired(struct rt_loop *l, struct rt_timer *t)
{
	struct wp_h2u *u = zm_container_of(t, struct wp_h2u, tmr);

	if (u->streams || u->dead || !u->up || !u->up->st)
		return;
	if (l->now_ms - u->idle_ms < WP_UP_IDLE_MS) {
		rt_timer_arm(l, t, u->idle_ms + WP_UP_IDLE_MS);
		return;
	}
	wp_h2u_end(u);
}

static struct wp_h2u *wp_h2u_new(struct wp_worker *w, struct wp_h2rq *rq)
{
	nghttp2_settings_entry iv[] = {
	    {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
	    {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, WP_H2_WINDOW},
	};
	const struct l7_endpoint *ep = &rq->tgt.ep;
	char id[ZM_SPIFFE_ID_MAX];
	nghttp2_option *opt = NULL;
	struct wp_h2u *u = calloc(1, sizeof(*u));
	struct wp_up *up = calloc(1, sizeof(*up));

	if (!u || !up || !wp_h2u_callbacks() || nghttp2_option_new(&opt))
		goto err;
	nghttp2_option_set_no_auto_window_update(opt, 1);
	if (nghttp2_session_client_new2(&u->s, wp_h2u_callbacks(), u, opt))
		goto err;
	nghttp2_option_del(opt);
	opt = NULL;
	if (nghttp2_submit_settings(u->s, NGHTTP2_FLAG_NONE, iv, 2) ||
	    nghttp2_session_set_local_window_size(u->s, NGHTTP2_FLAG_NONE, 0, WP_H2_CONN_WINDOW))
		goto err;
	up->w = w;
	up->h2u = u;
	up->opened_ms = w->loop->now_ms;
	snprintf(up->key, sizeof(up->key), "%s", rq->tgt.ep_key);
	zm_cfg_workload_identity(ep->wl, id, sizeof(id));
	up->st = wp_pool_open(w, rq->tgt.addr, ep->target_port, id, rq->d->ds->forwarded, up);
	if (!up->st)
		goto err;
	up->cl = rq->tgt.cl;
	if (up->cl)
		atomic_fetch_add(&up->cl->conns, 1);
	u->w = w;
	u->up = up;
	u->cl = rq->tgt.cl;
	u->idle_ms = w->loop->now_ms;
	rt_timer_init(&u->tmr, wp_h2u_idle_fired);
	rt_timer_arm(w->loop, &u->tmr, u->idle_ms + WP_UP_IDLE_MS);
	u->owner = rq->d;
	snprintf(u->key, sizeof(u->key), "%s", rq->tgt.ep_key);
	u->next = w->h2us;
	w->h2us = u;
	return u;
err:
	if (opt)
		nghttp2_option_del(opt);
	if (u && u->s)
		nghttp2_session_del(u->s);
	free(u);
	free(up);
	return NULL;
}

bool wp_h2u_submit(struct wp_worker *w, struct wp_h2rq *rq, const nghttp2_nv *nv, size_t n)
{
	nghttp2_data_provider prd = {.read_callback = wp_h2u_read_body};
	bool body = !(rq->body_eof && !wp_q_size(&rq->body));
	struct wp_h2u *u;
	int32_t sid;

	for (u = w->h2us; u; u = u->next) {
		if (u->dead || !u->up || !u->up->st || u->owner != rq->d ||
		    strcmp(u->key, rq->tgt.ep_key))
			continue;
		if (!nghttp2_session_check_request_allowed(u->s))
			continue; /* the pod sent GOAWAY: new requests go to a new session */
		if (u->streams < nghttp2_session_get_remote_settings(
				     u->s, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS))
			break;
	}
	if (!u && !wp_cl_conn_allowed(rq->tgt.cl, rq->tgt.policy)) {
		errno = EBUSY;
		return false;
	}
	if (!u && !(u = wp_h2u_new(w, rq)))
		return false;
	sid = nghttp2_submit_request(u->s, NULL, nv, n, body ? &prd : NULL, rq);
	if (sid < 0) {
		errno = EPROTO;
		return false;
	}
	u->streams++;
	rq->u = u;
	rq->usid = sid;
	rq->uprev = NULL;
	rq->unext = u->rqs;
	if (u->rqs)
		u->rqs->uprev = rq;
	u->rqs = rq;
	rq->deferred_up = false;
	wp_h2u_pump(u);
	return true;
}

void wp_h2u_cancel(struct wp_h2rq *rq)
{
	struct wp_h2u *u = rq->u;

	if (!u)
		return;
	if (rq->usid > 0) {
		nghttp2_session_set_stream_user_data(u->s, rq->usid, NULL);
		nghttp2_submit_rst_stream(u->s, NGHTTP2_FLAG_NONE, rq->usid, NGHTTP2_CANCEL);
	}
	wp_h2u_unlink(rq);
	wp_h2u_pump(u);
}

void wp_h2u_resume(struct wp_h2rq *rq)
{
	if (!rq->u || !rq->deferred_up)
		return;
	rq->deferred_up = false;
	nghttp2_session_resume_data(rq->u->s, rq->usid);
	wp_h2u_pump(rq->u);
}

void wp_h2u_consumed(struct wp_h2rq *rq, size_t n)
{
	if (!rq->u)
		return;
	nghttp2_session_consume(rq->u->s, rq->usid, n);
	wp_h2u_pump(rq->u);
}

/* ---- the CONNECT stream under a session ---- */

static void wp_h2u_free(void *p)
{
	struct wp_h2u *u = p;

	nghttp2_session_del(u->s);
	free(u);
}

void wp_h2u_on_response(struct wp_up *up, int status)
{
	struct wp_h2u *u = up->h2u;

	if (status == HB_STATUS_OK) {
		u->ok200 = true;
		return;
	}
	obs_log(OBS_WARN, "h2", "h2 upstream %s: CONNECT answered %d", up->key, status);
	u->dead = true; /* the stream's close fails its requests */
}

void wp_h2u_on_data(struct wp_up *up, const uint8_t *buf, size_t len)
{
	struct wp_h2u *u = up->h2u;
	ssize_t rv;

	if (u->dead)
		return;
	u->in_recv = true;
	rv = nghttp2_session_mem_recv(u->s, buf, len);
	u->in_recv = false;
	if (rv < 0) {
		obs_log(OBS_WARN, "h2", "h2 upstream %s: %s, closing", up->key,
			nghttp2_strerror((int)rv));
		u->dead = true;
		if (up->st)
			hb_stream_reset(up->st, HB_ERR_PROTOCOL);
		return;
	}
	wp_h2u_pump(u);
}

void wp_h2u_on_writable(struct wp_up *up)
{
	wp_h2u_pump(up->h2u);
}

/* The CONNECT stream is gone: every request still on the session fails. */
void wp_h2u_on_close(struct wp_up *up)
{
	struct wp_h2u *u = up->h2u, **pp;
	struct wp_h2rq *rq;

	u->dead = true;
	u->up = NULL;
	up->h2u = NULL;
	for (pp = &u->w->h2us; *pp; pp = &(*pp)->next) {
		if (*pp == u) {
			*pp = u->next;
			break;
		}
	}
	while ((rq = u->rqs)) {
		nghttp2_session_set_stream_user_data(u->s, rq->usid, NULL);
		wp_h2u_unlink(rq);
		if (!rq->resp_eof || rq->shadow)
			wp_h2rq_on_upstream_failed(rq, !u->ok200, "upstream connection lost");
	}
	rt_defer_free_timed(u->w->loop, &u->tmr, wp_h2u_free, u);
}

void wp_h2u_close_owned(struct wp_worker *w, const struct wp_h2d *d)
{
	struct wp_h2u *u;

	for (u = w->h2us; u; u = u->next) {
		if (u->owner != d)
			continue;
		u->owner = NULL;
		if (!u->dead && u->up && u->up->st)
			wp_h2u_end(u);
	}
}
