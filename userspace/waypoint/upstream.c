// SPDX-License-Identifier: Apache-2.0
/*
 * Upstream side of the waypoint: one CONNECT stream to an endpoint pod (authority
 * podIP:targetPort, our own certificate, the pod's identity expected) per request in flight;
 * after a complete keep-alive response the stream waits on the worker's idle list and the
 * next request to the same endpoint reuses it. Responses are parsed with http_parser,
 * re-framed for the client (chunked when the upstream closes to end a body), get the route's
 * response header operations, feed outlier detection, and may be retried (retryOn statuses,
 * whole request buffered). Plain TCP streams relay bytes unchanged both ways.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/list.h"
#include "obs/log.h"
#include "h2.h"

void wp_head_emit(struct wp_q *q, const struct wp_head *h, const struct l7_header_ops *ops);

/* A mirror copy: write what the stream takes; the answer is read and dropped. */
static void wp_up_shadow_flush(struct wp_up *up)
{
	if (!up->st || up->dead || up->shut)
		return;
	if (wp_q_flush(&up->out, up->st) < 0 || wp_q_size(&up->out))
		return;
	up->shut = true; /* all sent: the request ends with our half-close */
	hb_stream_shutdown(up->st);
}

static void wp_up_shadow_unlink(struct wp_up *up)
{
	struct wp_up **pp;

	for (pp = &up->w->shadows; *pp; pp = &(*pp)->next_shadow) {
		if (*pp == up) {
			*pp = up->next_shadow;
			up->w->n_shadows--;
			return;
		}
	}
}

static void wp_up_free(void *p)
{
	struct wp_up *up = p;

	wp_q_free(&up->in);
	wp_q_free(&up->out);
	free(up);
}

static void wp_up_unidle(struct wp_up *up)
{
	struct wp_up **pp;

	if (!up->idle)
		return;
	rt_timer_cancel(up->w->loop, &up->tmr);
	for (pp = &up->w->idle; *pp; pp = &(*pp)->next_idle) {
		if (*pp == up) {
			*pp = up->next_idle;
			break;
		}
	}
	up->idle = false;
}

/*
 * A mirror copy's deadline (it ends when the mirror closes after answering our half-closed
 * request; one that never does is reset at the route timeout, else WP_SHADOW_MS), or an idle
 * keep-alive stream's idle timeout.
 */
static void wp_up_timer_fired(struct rt_loop *l, struct rt_timer *t)
{
	struct wp_up *up = zm_container_of(t, struct wp_up, tmr);

	if (!up->st || up->dead)
		return;
	if (up->shadow) {
		obs_log(OBS_WARN, "mirror", "mirror copy to %s still open after %llu ms, reset",
			up->key, (unsigned long long)(l->now_ms - up->opened_ms));
		up->dead = true;
		hb_stream_reset(up->st, HB_ERR_CANCEL);
		return;
	}
	if (!up->idle)
		return;
	wp_up_unidle(up);
	up->dead = true;
	hb_stream_reset(up->st, HB_ERR_CANCEL);
}

static void wp_up_reset_parser(struct wp_up *up)
{
	http_parser_init(&up->p, HTTP_RESPONSE);
	up->p.data = up;
	up->head_done = up->msg_done = up->keepalive = up->discard = false;
	wp_q_free(&up->in);
}

struct wp_up *wp_up_get(struct wp_worker *w, struct wp_ds *ds, const struct l7_endpoint *ep,
			bool tcp)
{
	const struct zm_addr *addr = wp_ep_addr(ep, ds->vip.family);
	char id[ZM_SPIFFE_ID_MAX], key[ZM_ADDR_STRLEN];
	struct wp_up *up;

	zm_addr_port_format(addr, ep->target_port, key, sizeof(key));
	for (up = tcp ? NULL : w->idle; up; up = up->next_idle)
		if (!strcmp(up->key, key) && up->st && !up->eof)
			break;
	if (up) {
		wp_up_unidle(up);
	} else {
		up = calloc(1, sizeof(*up));
		if (!up)
			return NULL;
		up->w = w;
		up->tcp = tcp;
		up->opened_ms = w->loop->now_ms;
		rt_timer_init(&up->tmr, wp_up_timer_fired);
		snprintf(up->key, sizeof(up->key), "%s", key);
		zm_cfg_workload_identity(ep->wl, id, sizeof(id));
		up->st = wp_pool_open(w, addr, ep->target_port, id, ds->forwarded, up);
		if (!up->st) {
			free(up);
			return NULL;
		}
		up->cl = ds->tgt.cl;
		if (up->cl)
			atomic_fetch_add(&up->cl->conns, 1);
		up->max_rq = ds->tgt.policy ? ds->tgt.policy->pool.max_requests_per_conn : 0;
		up->idle_timeout_ms = ds->tgt.policy && ds->tgt.policy->pool.idle_timeout_ms
					  ? ds->tgt.policy->pool.idle_timeout_ms
					  : WP_UP_IDLE_MS;
	}
	wp_up_reset_parser(up);
	up->ds = ds;
	up->nreq++;
	up->stat = wp_ep_stat(w->wp, key);
	atomic_fetch_add(&up->stat->active, 1);
	return up;
}

bool wp_up_idle_for(struct wp_worker *w, const char *key)
{
	struct wp_up *up;

	for (up = w->idle; up; up = up->next_idle)
		if (!strcmp(up->key, key) && up->st && !up->eof)
			return true;
	return false;
}

int wp_up_shadow(struct wp_worker *w, const struct l7_endpoint *ep, uint8_t family,
		 uint32_t timeout_ms, const char *forwarded, const void *bytes, size_t len)
{
	const struct zm_addr *addr = wp_ep_addr(ep, family);
	char id[ZM_SPIFFE_ID_MAX];
	struct wp_up *up;

	/* A mirror that stalls must not hold a request copy per request it is sent. */
	if (w->n_shadows >= WP_SHADOW_MAX)
		return -EBUSY;
	up = calloc(1, sizeof(*up));
	if (!up)
		return -ENOMEM;
	up->w = w;
	up->shadow = true;
	up->opened_ms = w->loop->now_ms;
	rt_timer_init(&up->tmr, wp_up_timer_fired);
	zm_addr_port_format(addr, ep->target_port, up->key, sizeof(up->key));
	zm_cfg_workload_identity(ep->wl, id, sizeof(id));
	if (wp_q_put(&up->out, bytes, len))
		goto err;
	up->st = wp_pool_open(w, addr, ep->target_port, id, forwarded, up);
	if (!up->st)
		goto err;
	up->shadow_until_ms = w->loop->now_ms + timeout_ms;
	rt_timer_arm(w->loop, &up->tmr, up->shadow_until_ms);
	up->next_shadow = w->shadows;
	w->shadows = up;
	w->n_shadows++;
	wp_up_shadow_flush(up);
	return 0;
err:
	wp_q_free(&up->out);
	free(up);
	return -ENOMEM;
}

void wp_up_detach(struct wp_up *up, bool reusable)
{
	struct wp_ds *ds = up->ds;

	if (!ds)
		return;
	if (ds->up == up)
		ds->up = NULL;
	up->ds = NULL;
	if (up->stat)
		atomic_fetch_sub(&up->stat->active, 1);
	up->stat = NULL;
	if (reusable && up->st && up->ok200 && !up->eof && up->msg_done && up->keepalive &&
	    !wp_q_size(&ds->upq) && !up->tcp && (!up->max_rq || up->nreq < up->max_rq)) {
		up->idle = true;
		up->idle_ms = up->w->loop->now_ms;
		rt_timer_arm(up->w->loop, &up->tmr, up->idle_ms + up->idle_timeout_ms);
		up->next_idle = up->w->idle;
		up->w->idle = up;
		return;
	}
	if (up->st && !up->dead) {
		up->dead = true;
		hb_stream_reset(up->st, HB_ERR_CANCEL);
	}
}

void wp_up_send(struct wp_up *up)
{
	struct wp_ds *ds = up->ds;

	if (!up->st || !ds || up->dead)
		return;
	if (!up->tcp) {
		wp_q_flush(&ds->upq, up->st);
		return;
	}
	wp_q_flush(&ds->in, up->st);
	if (ds->in_eof && !wp_q_size(&ds->in) && !up->eof) {
		hb_stream_shutdown(up->st);
		ds->in_eof = false; /* shut once */
	}
	if (ds->st && ds->input_paused && wp_q_size(&ds->in) < WP_IN_HIGH) {
		ds->input_paused = false;
		hb_stream_resume(ds->st);
	}
}

/* ---- responses ---- */

static bool wp_retry_status(const struct wp_ds *ds, unsigned int code)
{
	uint32_t on;

	if (!ds->route || !ds->route->retries.set || !ds->copy_ok || !ds->msg_done ||
	    ds->attempts > ds->route->retries.attempts)
		return false;
	on = ds->route->retries.retry_on;
	return ((on & L7_RETRY_5XX) && code >= 500) ||
	       ((on & L7_RETRY_GATEWAY_ERROR) && code >= 502 && code <= 504) ||
	       ((on & L7_RETRY_UNAVAILABLE) && code == 503) ||
	       ((on & L7_RETRY_RETRIABLE_4XX) && code == 409);
}

static void wp_resp_head_emit(struct wp_up *up, struct wp_ds *ds, const struct wp_head *h)
{
	unsigned int code = up->p.status_code;
	const char *method = ds->req.start[0] ? ds->req.start[0] : "";
	bool no_body = !strcmp(method, "HEAD") || code == 204 || code == 304;
	const char *cl = NULL;
	size_t i;

	for (i = 0; i < h->n; i++)
		if (!strcmp(h->h[i].name, "content-length"))
			cl = h->h[i].value;
	wp_q_printf(&ds->out, "HTTP/1.1 %u %s\r\n", code, h->start[2] ? h->start[2] : "");
	if (no_body) {
		if (cl)
			wp_q_printf(&ds->out, "content-length: %s\r\n", cl);
	} else if (!(up->p.flags & F_CHUNKED) && cl) {
		wp_q_printf(&ds->out, "content-length: %s\r\n", cl);
	} else if (ds->p.http_major == 1 && ds->p.http_minor >= 1) {
		ds->resp_chunked = true;
		wp_q_printf(&ds->out, "transfer-encoding: chunked\r\n");
	} else {
		ds->close_after = true; /* HTTP/1.0 client: the close ends the body */
	}
	if (!ds->keepalive)
		ds->close_after = true;
	wp_head_emit(&ds->out, h, ds->route ? &ds->route->resp_ops : NULL);
	wp_q_printf(&ds->out, "%s\r\n", ds->close_after ? "connection: close\r\n" : "");
}

static int wp_rs_on_headers(http_parser *p)
{
	struct wp_up *up = p->data;
	struct wp_ds *ds = up->ds;
	const char *raw = up->in.p + up->in.off, *end = NULL;
	size_t avail = wp_q_size(&up->in), i;
	struct wp_head h;
	unsigned int code = p->status_code;

	if (!ds)
		return -1;
	if (code == 101 && ds->upgrade)
		up->upgraded = true; /* WebSocket accepted: the head goes out, then raw bytes */
	else if (code >= 100 && code < 200)
		return 0; /* interim: dropped; the final response follows */
	for (i = 0; i + 1 < avail && !end; i++)
		if (raw[i] == '\n' && (raw[i + 1] == '\n' ||
				       (raw[i + 1] == '\r' && i + 2 < avail && raw[i + 2] == '\n')))
			end = raw + i + 1;
	if (!end || wp_head_parse(&h, raw, (size_t)(end - raw), false))
		return -1;
	up->head_done = true;
	if (up->upgraded) {
		ds->status = code;
		ds->resp_started = true;
		wp_q_printf(&ds->out, "HTTP/1.1 101 %s\r\n", h.start[2] ? h.start[2] : "");
		wp_q_printf(&ds->out, "connection: upgrade\r\nupgrade: websocket\r\n");
		wp_head_emit(&ds->out, &h, ds->route ? &ds->route->resp_ops : NULL);
		wp_q_printf(&ds->out, "\r\n");
		wp_head_free(&h);
		return 0; /* http_parser stops at the head's end by itself (upgrade) */
	}
	wp_outlier_note(up->w, &ds->tgt, up->key, code);
	if (wp_retry_status(ds, code)) {
		up->discard = true;
		wp_head_free(&h);
		http_parser_pause(p, 1);
		return 0;
	}
	ds->status = code;
	ds->resp_started = true;
	wp_resp_head_emit(up, ds, &h);
	wp_head_free(&h);
	return ds->req.start[0] && !strcmp(ds->req.start[0], "HEAD") ? 1 : 0;
}

static int wp_rs_on_body(http_parser *p, const char *at, size_t len)
{
	struct wp_up *up = p->data;
	struct wp_ds *ds = up->ds;

	if (!ds || up->discard || !len)
		return 0;
	if (ds->resp_chunked)
		wp_q_printf(&ds->out, "%zx\r\n", len);
	wp_q_put(&ds->out, at, len);
	if (ds->resp_chunked)
		wp_q_put(&ds->out, "\r\n", 2);
	return 0;
}

static int wp_rs_on_complete(http_parser *p)
{
	struct wp_up *up = p->data;
	struct wp_ds *ds = up->ds;

	if (p->status_code >= 100 && p->status_code < 200)
		return 0;
	up->msg_done = true;
	up->keepalive = http_should_keep_alive(p);
	if (ds && ds->resp_chunked && !up->discard)
		wp_q_put(&ds->out, "0\r\n\r\n", 5);
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings wp_rs_settings = {
    .on_headers_complete = wp_rs_on_headers,
    .on_body = wp_rs_on_body,
    .on_message_complete = wp_rs_on_complete,
};

/* After the parser ran: finish, retry or fail the request of up->ds. */
static void wp_up_after_parse(struct wp_up *up, bool error)
{
	struct wp_ds *ds = up->ds;

	if (!ds)
		return;
	if (up->discard) {
		wp_up_detach(up, false);
		wp_q_free(&ds->upq);
		wp_q_put(&ds->upq, ds->copy.p + ds->copy.off, wp_q_size(&ds->copy));
		snprintf(ds->flags, sizeof(ds->flags), "URX");
		wp_ds_dispatch_upstream(ds);
		return;
	}
	if (error) {
		if (!ds->resp_started) {
			wp_up_detach(up, false);
			wp_ds_reply(ds, 502, "UPE", "upstream protocol error", true, NULL);
			if (ds->msg_done)
				wp_ds_request_done(ds);
		} else {
			wp_ds_upstream_failed(ds, "bad response", false);
		}
		return;
	}
	wp_ds_flush(ds);
	if (!up->msg_done)
		return;
	if (!ds->msg_done) {
		/* Answered before the request ended: the rest cannot be framed for reuse. */
		ds->close_after = true;
		ds->keepalive = false;
	}
	wp_ds_request_done(ds);
	wp_ds_process(ds);
}

static void wp_up_parse(struct wp_up *up, const uint8_t *buf, size_t len)
{
	size_t n, avail;
	bool error;

	if (len && wp_q_put(&up->in, buf, len)) {
		wp_up_after_parse(up, true);
		return;
	}
	avail = wp_q_size(&up->in);
	if (!len && !avail) {
		n = http_parser_execute(&up->p, &wp_rs_settings, NULL, 0); /* EOF */
		(void)n;
	} else if (!up->msg_done) {
		n = http_parser_execute(&up->p, &wp_rs_settings, up->in.p + up->in.off, avail);
		if (up->head_done || up->msg_done)
			wp_q_drop(&up->in, n);
	}
	if (up->upgraded && up->ds) {
		/* What followed the 101 head (dropped above) is already the new protocol's. */
		wp_q_put(&up->ds->out, up->in.p + up->in.off, wp_q_size(&up->in));
		wp_q_free(&up->in);
		wp_ds_upgraded(up->ds);
		return;
	}
	error = HTTP_PARSER_ERRNO(&up->p) != HPE_OK && HTTP_PARSER_ERRNO(&up->p) != HPE_PAUSED;
	if (!up->head_done && wp_q_size(&up->in) > WP_MAX_HEAD)
		error = true;
	if (up->head_done && !up->msg_done)
		wp_q_free(&up->in);
	wp_up_after_parse(up, error);
}

/* ---- upstream stream callbacks ---- */

void wp_up_on_response(struct hb_stream *s, int status)
{
	struct wp_up *up = hb_stream_ud(s);
	char why[64];

	if (!up)
		return;
	if (up->h2u) {
		wp_h2u_on_response(up, status);
		return;
	}
	if (status == HB_STATUS_OK) {
		up->ok200 = true;
		return;
	}
	snprintf(why, sizeof(why), "CONNECT answered %d", status);
	up->dead = true;
	if (up->ds && up->tcp) {
		hb_stream_reset(up->ds->st, HB_ERR_CONNECT_ERROR);
		up->ds->up = NULL;
		up->ds = NULL;
	} else if (up->ds) {
		wp_ds_upstream_failed(up->ds, why, true);
	}
}

size_t wp_up_on_data(struct hb_stream *s, const uint8_t *buf, size_t len)
{
	struct wp_up *up = hb_stream_ud(s);
	struct wp_ds *ds = up ? up->ds : NULL;

	if (up && up->shadow)
		return len; /* the mirror's answer: dropped */
	if (up && up->h2u) {
		wp_h2u_on_data(up, buf, len);
		return len;
	}
	if (!ds) {
		/* Bytes on an idle stream: the server broke keep-alive framing; drop it. */
		if (up && !up->dead) {
			up->dead = true;
			wp_up_unidle(up);
			hb_stream_reset(s, HB_ERR_CANCEL);
		}
		return len;
	}
	if (wp_q_size(&ds->out) >= WP_IN_HIGH)
		return 0; /* resumed from the client's on_writable */
	if (up->tcp) {
		wp_q_put(&ds->out, buf, len);
		wp_ds_flush(ds);
		return len;
	}
	wp_up_parse(up, buf, len);
	return len;
}

void wp_up_on_eof(struct hb_stream *s)
{
	struct wp_up *up = hb_stream_ud(s);

	if (!up)
		return;
	up->eof = true;
	if (up->h2u) {
		/* The pod ended the session: end ours; its requests fail when the stream closes. */
		up->h2u->dead = true;
		if (up->st)
			hb_stream_shutdown(up->st);
		return;
	}
	if (!up->ds)
		return;
	if (up->tcp) {
		wp_ds_flush(up->ds);
		if (up->ds->st && !up->ds->shut) {
			up->ds->shut = true;
			hb_stream_shutdown(up->ds->st);
		}
		return;
	}
	wp_up_parse(up, NULL, 0);
}

void wp_up_on_writable(struct hb_stream *s)
{
	struct wp_up *up = hb_stream_ud(s);

	if (up && up->shadow)
		wp_up_shadow_flush(up);
	if (up && up->h2u) {
		wp_q_flush(&up->out, s);
		wp_h2u_on_writable(up);
		return;
	}
	if (!up || !up->ds)
		return;
	wp_up_send(up);
	if (!up->tcp && up->ds && wp_q_size(&up->ds->upq) < WP_IN_HIGH)
		wp_ds_process(up->ds);
}

void wp_up_on_close(struct hb_stream *s, uint32_t error)
{
	struct wp_up *up = hb_stream_ud(s);
	struct wp_ds *ds;

	if (!up)
		return;
	up->st = NULL;
	if (up->shadow)
		wp_up_shadow_unlink(up);
	if (up->h2u)
		wp_h2u_on_close(up);
	if (up->cl)
		atomic_fetch_sub(&up->cl->conns, 1);
	up->cl = NULL;
	wp_up_unidle(up);
	ds = up->ds;
	if (ds) {
		if (up->tcp) {
			wp_up_detach(up, false);
			if (ds->st && error)
				hb_stream_reset(ds->st, HB_ERR_CONNECT_ERROR);
			else if (ds->st && !ds->shut) {
				ds->shut = true;
				hb_stream_shutdown(ds->st);
			}
		} else if (!up->msg_done) {
			wp_ds_upstream_failed(ds, error ? "stream reset" : "stream closed",
					      !up->ok200);
		}
		if (up->ds)
			wp_up_detach(up, false);
	}
	rt_defer_free_timed(up->w->loop, &up->tmr, wp_up_free, up);
}
