// SPDX-License-Identifier: Apache-2.0
/*
 * The request lifecycle (request.h), the same for HTTP/1 and HTTP/2: authorize and route
 * (route.c), a fault delay, the endpoint (pick.c: DestinationRule subset, load balancer,
 * outlier ejection), connectionPool admission (pending and overflow, Envoy's circuit
 * breakers), the exchange with the endpoint (an upstream codec), retries on the conditions of
 * retryOn, the route timeout and perTryTimeout, the mirror copy, and one finish per request:
 * the access record, Istio's metrics, every counter released. Mirror copies are requests too,
 * with a sink instead of a client: their answers are dropped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "obs/log.h"
#include "route.h"
#include "tunnel.h"

static const struct wp_up_events wp_req_events;
static void wp_req_forward(struct wp_req *r);
static void wp_req_arm(struct wp_req *r);

static uint64_t wp_now(const struct wp_req *r)
{
	return r->c->w->loop->now_ms;
}

static void wp_req_flags(struct wp_req *r, const char *f)
{
	snprintf(r->flags, sizeof(r->flags), "%s", f);
}

/* ---- life and death ---- */

static void wp_req_free(void *p)
{
	struct wp_req *r = p;

	free(r->method);
	free(r->path);
	free(r->authority);
	free(r->scheme);
	free(r->up_path);
	free(r->up_authority);
	wp_hdrs_clear(&r->h);
	wp_hdrs_clear(&r->up_h);
	wp_q_free(&r->body);
	wp_q_free(&r->copy);
	wp_conn_put(r->c);
	free(r);
}

static void wp_req_timer_fired(struct rt_loop *l, struct rt_timer *t);

struct wp_req *wp_req_new(struct wp_conn *c, enum wp_proto proto, const struct wp_down_ops *down,
			  void *cx)
{
	struct wp_req *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	wp_conn_ref(c);
	r->c = c;
	r->proto = proto;
	r->down = down;
	r->cx = cx;
	r->ev = &wp_req_events;
	r->up_ops = proto == WP_H2 ? &wp_h2up_ops : &wp_h1up_ops;
	r->body_len = -1;
	r->copy_ok = true;
	r->start_ms = c->w->loop->now_ms;
	wp_req_flags(r, "-");
	rt_timer_init(&r->tmr, wp_req_timer_fired);
	return r;
}

static char *wp_strndup(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

int wp_req_set_head(struct wp_req *r, const char *method, size_t mlen, const char *path,
		    size_t plen, const char *authority, size_t alen, const char *scheme)
{
	r->method = wp_strndup(method, mlen);
	r->path = wp_strndup(path, plen);
	r->authority = wp_strndup(authority ? authority : "", authority ? alen : 0);
	r->scheme = wp_strndup(scheme, strlen(scheme));
	return r->method && r->path && r->authority && r->scheme ? 0 : -ENOMEM;
}

/* The endpoint r counts in for LEAST_REQUEST, and its cluster's requests. */
static void wp_req_uncount(struct wp_req *r)
{
	if (r->active)
		atomic_fetch_sub(&r->active->active, 1);
	r->active = NULL;
	if (r->state == WP_RQ_PENDING && r->tgt.cl)
		atomic_fetch_sub(&r->tgt.cl->pending, 1);
	wp_cl_request_end(r->counted);
	r->counted = NULL;
}

static void wp_req_log(struct wp_req *r)
{
	const struct zm_cfg_workload *wl = r->tgt.ep.wl;
	struct wp_conn *c = r->c;
	struct wp_mreq mr;

	mr = (struct wp_mreq){
	    .snap = c->snap,
	    .cache = &c->mcache,
	    .src_principal = c->peer,
	    .src = c->src_wl,
	    .dst = wl,
	    .svc = c->svc,
	    .protocol = r->grpc ? "grpc" : "http",
	    .code = r->status,
	    .grpc_status = r->grpc_status,
	    .flags = r->flags,
	    .duration_ms = wp_now(r) - r->start_ms,
	    .request_bytes = r->head_bytes + r->req_bytes,
	    .response_bytes = r->resp_bytes,
	    .method = r->method,
	    .path = r->path,
	    .authority = c->authority,
	    .route = r->route ? r->route->name : NULL,
	    .upstream = r->tgt.ep_key,
	    .upstream_name = wl ? wl->name : NULL,
	    .request_id = r->request_id,
	    .version = r->proto == WP_H2 ? "HTTP/2"
		       : r->minor	 ? "HTTP/1.1"
					 : "HTTP/1.0",
	};
	wp_request_finish(c->w->wp, &mr);
}

/* Exactly once: the exchange let go, counters released, the record written. */
static void wp_req_finish(struct wp_req *r)
{
	if (r->finished)
		return;
	r->finished = true;
	rt_timer_cancel(r->c->w->loop, &r->tmr);
	if (r->up)
		r->up_ops->cancel(r);
	wp_req_uncount(r);
	r->state = WP_RQ_DONE;
	if (r->shadow) {
		if (r->c->w->n_shadows)
			r->c->w->n_shadows--;
	} else if (r->method) {
		wp_req_log(r);
	}
	if (r->released)
		rt_defer_free_timed(r->c->w->loop, &r->tmr, wp_req_free, r);
}

void wp_req_release(struct wp_req *r, bool client_gone)
{
	if (r->released)
		return;
	r->released = true;
	if (!r->finished) {
		if (client_gone && !r->resp_done && !r->local)
			wp_req_flags(r, "DC"); /* the client went away first */
		wp_req_finish(r);
		return;
	}
	rt_defer_free_timed(r->c->w->loop, &r->tmr, wp_req_free, r);
}

/* ---- answers made here ---- */

/*
 * The upstream's response is complete: the exchange (if any) may keep its connection. Done
 * before the downstream hears of the end, which may release the request at once (the next
 * request of a keep-alive client): the connection would otherwise be cancelled, not kept.
 */
static void wp_req_up_done(struct wp_req *r)
{
	r->resp_done = true;
	if (r->up)
		r->up_ops->release(r);
	r->up = NULL;
}

static void wp_req_complete(struct wp_req *r)
{
	wp_req_up_done(r);
	wp_req_finish(r);
}

/* A local answer (a). A gRPC call, or a grpcStatus abort, is answered the gRPC way. */
static void wp_req_answer(struct wp_req *r, const struct wp_answer *a)
{
	struct wp_resp resp = {.status = a->code, .len = (int64_t)strlen(a->body)};
	const char *body = a->body;
	int gs = a->grpc_status;
	char gsbuf[16];

	if (r->finished)
		return;
	if (r->up)
		r->up_ops->cancel(r);
	wp_req_flags(r, a->flags);
	r->local = true;
	if (r->resp_started) {
		/* Part of the response went out already: only a reset tells the client. */
		r->down->reset(r);
		wp_req_finish(r);
		return;
	}
	r->resp_started = true;
	if (gs < 0 && r->grpc && r->proto == WP_H2)
		gs = (int)wp_grpc_status_of(a->code);
	if (gs >= 0) {
		/* 200, trailers-only, grpc-status (Envoy's map from the HTTP status). */
		snprintf(gsbuf, sizeof(gsbuf), "%d", gs);
		snprintf(r->grpc_status, sizeof(r->grpc_status), "%.7s", gsbuf);
		r->status = resp.status = 200;
		resp.len = -1;
		wp_hdrs_add_str(&resp.h, "content-type", WP_REQ_GRPC_CT);
		wp_hdrs_add_str(&resp.h, "grpc-status", gsbuf);
		wp_hdrs_add_str(&resp.h, "grpc-message", body);
		wp_route_response(r, &resp, a->route_ops);
		r->down->head(r, &resp, true);
		wp_hdrs_clear(&resp.h);
		wp_req_complete(r);
		return;
	}
	r->status = a->code;
	wp_hdrs_copy(&resp.h, &a->h);
	if (*body && !wp_hdrs_get(&resp.h, "content-type"))
		wp_hdrs_add_str(&resp.h, "content-type", "text/plain");
	wp_hdrs_add_str(&resp.h, "server", "zmesh-waypoint");
	wp_route_response(r, &resp, a->route_ops);
	r->down->head(r, &resp, !*body);
	wp_hdrs_clear(&resp.h);
	if (*body) {
		r->down->body(r, body, strlen(body));
		r->down->end(r, &(struct wp_hdrs){0});
	}
	wp_req_complete(r);
}

void wp_req_reply(struct wp_req *r, unsigned int code, const char *flags, const char *body)
{
	struct wp_answer a = WP_ANSWER_INIT;

	a.code = code;
	a.flags = flags;
	a.body = body;
	wp_req_answer(r, &a);
}

/* ---- the request ---- */

static void wp_req_request_id(struct wp_req *r)
{
	const char *id = wp_hdrs_get(&r->h, "x-request-id");
	uint32_t a = wp_rand(), b = wp_rand(), c = wp_rand(), d = wp_rand();

	if (id) {
		snprintf(r->request_id, sizeof(r->request_id), "%s", id);
		return;
	}
	/* Envoy's x-request-id for a request that came without one: a random UUID v4. */
	snprintf(r->request_id, sizeof(r->request_id), "%08x-%04x-4%03x-%04x-%04x%08x", a, b >> 16,
		 b & 0xfff, (c >> 16 & 0x3fff) | 0x8000, c & 0xffff, d);
}

/* After the fault delay: the route's own action (redirect, direct response) or forward. */
static void wp_req_act(struct wp_req *r)
{
	struct wp_answer a = WP_ANSWER_INIT;

	r->state = WP_RQ_HEAD;
	if (wp_route_action(r, &a) == WP_ROUTE_ANSWER)
		wp_req_answer(r, &a);
	else
		wp_req_forward(r);
	wp_answer_free(&a);
}

void wp_req_start(struct wp_req *r)
{
	const char *ct = wp_hdrs_get(&r->h, "content-type");
	const struct l7_http_route *rt;
	struct wp_answer a = WP_ANSWER_INIT;

	r->grpc = ct && !strncmp(ct, WP_REQ_GRPC_CT, strlen(WP_REQ_GRPC_CT));
	wp_req_request_id(r);
	if (wp_route_decide(r, &a) == WP_ROUTE_ANSWER) {
		wp_req_answer(r, &a);
		wp_answer_free(&a);
		return;
	}
	wp_answer_free(&a);
	rt = r->route;
	if (rt && rt->timeout_ms)
		r->deadline_ms = wp_now(r) + rt->timeout_ms;
	if (rt && rt->fault.delay_ms && l7_percent_hit(rt->fault.delay_pct, wp_rand())) {
		r->state = WP_RQ_DELAY;
		r->delay_until_ms = wp_now(r) + rt->fault.delay_ms;
		if (r->deadline_ms)
			r->deadline_ms += rt->fault.delay_ms;
		wp_req_flags(r, "DI");
		wp_req_arm(r);
		return;
	}
	wp_req_act(r);
}

/* ---- mirroring ---- */

static void wp_shadow_head(struct wp_req *r, const struct wp_resp *resp, bool end)
{
	(void)r;
	(void)resp;
	(void)end;
}

static void wp_shadow_body(struct wp_req *r, const void *p, size_t n)
{
	(void)p;
	wp_req_drained(r, n); /* dropped as it comes */
}

static void wp_shadow_end(struct wp_req *r, const struct wp_hdrs *t)
{
	(void)r;
	(void)t;
}

static void wp_shadow_nop(struct wp_req *r)
{
	(void)r;
}

static void wp_shadow_consumed(struct wp_req *r, size_t n)
{
	(void)r;
	(void)n;
}

static size_t wp_shadow_pending(const struct wp_req *r)
{
	(void)r;
	return 0;
}

static void wp_shadow_upgraded(struct wp_req *r, const struct wp_resp *resp, struct wp_tun *t)
{
	(void)r;
	(void)resp;
	wp_tun_abort(t);
}

static const struct wp_down_ops wp_shadow_down = {
    .head = wp_shadow_head,
    .body = wp_shadow_body,
    .end = wp_shadow_end,
    .reset = wp_shadow_nop,
    .consumed = wp_shadow_consumed,
    .pending = wp_shadow_pending,
    .upgraded = wp_shadow_upgraded,
};

static void wp_req_mirror_dropped(struct wp_req *r, const struct l7_mirror *m, const char *why)
{
	struct wp_worker *w = r->c->w;

	/* Dropped copies are counted; a stalled mirror logs one line a second, not each. */
	w->shadow_drops++;
	if (obs_ratelimit_ok(&w->shadow_log, w->loop->now_ms, 1000, NULL))
		obs_log(OBS_WARN, "mirror", "mirror to %s: %s, copy dropped (%lu dropped so far)",
			m->dest.host, why, w->shadow_drops);
}

/*
 * A copy of r for mirror m: the head sent upstream (":authority" with Envoy's "-shadow"
 * suffix) and the body (up to WP_RETRY_COPY_MAX) to the mirror host; its answer is dropped,
 * and it is reset when still open after the route's timeout (WP_SHADOW_MS when none). At most
 * WP_SHADOW_MAX copies per worker are in flight.
 */
static void wp_req_mirror_one(struct wp_req *r, const struct l7_mirror *m)
{
	const struct l7_http_route *rt = r->route;
	struct wp_worker *w = r->c->w;
	struct wp_req *sh;
	char auth[HB_AUTHORITY_MAX + 300];

	if (!m->dest.service || !l7_percent_hit(m->pct, wp_rand()))
		return;
	if (!r->copy_ok) {
		wp_req_mirror_dropped(r, m, "body larger than 64 KiB");
		return;
	}
	if (w->n_shadows >= WP_SHADOW_MAX) {
		snprintf(auth, sizeof(auth), "%u copies in flight on this worker", w->n_shadows);
		wp_req_mirror_dropped(r, m, auth);
		return;
	}
	sh = wp_req_new(r->c, r->proto, &wp_shadow_down, NULL);
	if (!sh)
		return;
	sh->shadow = sh->released = true;
	w->n_shadows++;
	snprintf(auth, sizeof(auth), "%s-shadow", r->up_authority);
	if (wp_req_set_head(sh, r->method, strlen(r->method), r->path, strlen(r->path), auth,
			    strlen(auth), r->scheme) ||
	    wp_hdrs_copy(&sh->up_h, &r->up_h) || !(sh->up_path = strdup(r->up_path)) ||
	    !(sh->up_authority = strdup(auth)) ||
	    wp_q_put(&sh->body, wp_q_data(&r->copy), wp_q_size(&r->copy))) {
		wp_req_finish(sh);
		return;
	}
	sh->grpc = r->grpc;
	sh->minor = r->minor;
	sh->body_len = r->body_len;
	sh->body_eof = true;
	sh->req_bytes = wp_q_size(&sh->body);
	sh->route = rt;
	sh->dest = &m->dest;
	sh->state = WP_RQ_UPSTREAM;
	snprintf(sh->request_id, sizeof(sh->request_id), "%s", r->request_id);
	sh->deadline_ms = wp_now(r) + (rt->timeout_ms ? rt->timeout_ms : WP_SHADOW_MS);
	wp_req_forward(sh);
}

/* The route's mirrors, once the client's request is whole. */
static void wp_req_mirror(struct wp_req *r)
{
	size_t i;

	if (r->mirrored || !r->route || r->shadow || !r->up_path)
		return;
	r->mirrored = true;
	for (i = 0; i < r->route->n_mirrors; i++)
		wp_req_mirror_one(r, &r->route->mirrors[i]);
}

/* ---- the exchange ---- */

static void wp_req_overflow(struct wp_req *r)
{
	struct wp_cl_stat *cl = r->tgt.cl;

	atomic_fetch_add(&cl->overflows, 1);
	obs_log(OBS_WARN, "waypoint", "%s: connection pool of %s full, 503", r->c->authority,
		cl->key);
	wp_req_reply(r, 503, "UO",
		     "upstream connect error or disconnect/reset before headers. reset reason: "
		     "overflow");
}

/* Wait for a connection (http1MaxPendingRequests bounds the waiters): false on overflow. */
static bool wp_req_pend(struct wp_req *r)
{
	struct wp_target *t = &r->tgt;
	unsigned int max_pending = t->policy->pool.http1_max_pending;

	if (r->state == WP_RQ_PENDING) {
		wp_req_arm(r); /* still waiting: the timer looks again */
		return true;
	}
	if (max_pending && atomic_fetch_add(&t->cl->pending, 1) >= max_pending) {
		atomic_fetch_sub(&t->cl->pending, 1);
		wp_req_overflow(r);
		return false;
	}
	if (!max_pending)
		atomic_fetch_add(&t->cl->pending, 1);
	r->state = WP_RQ_PENDING;
	wp_req_arm(r);
	return true;
}

/* connectionPool admission: true when r may start now (else it waits, or was answered). */
static bool wp_req_admit(struct wp_req *r)
{
	struct wp_target *t = &r->tgt;

	if (!r->counted) {
		if (!wp_cl_request_begin(t->cl, t->policy)) {
			wp_req_overflow(r);
			return false;
		}
		r->counted = t->cl;
	}
	if (r->up_ops->has_idle(r) || wp_cl_conn_allowed(t->cl, t->policy)) {
		if (r->state == WP_RQ_PENDING)
			atomic_fetch_sub(&t->cl->pending, 1);
		r->state = WP_RQ_UPSTREAM;
		return true;
	}
	wp_req_pend(r);
	return false;
}

static void wp_req_failed(struct wp_req *r, enum wp_up_fail why, const char *text);

/* One attempt: endpoint, admission, the exchange. */
static void wp_req_forward(struct wp_req *r)
{
	struct wp_conn *c = r->c;
	int err;

	if (r->finished)
		return;
	if (!r->up_path && wp_route_upstream_head(r)) {
		wp_req_reply(r, 500, "-", "out of memory");
		return;
	}
	if (r->state != WP_RQ_PENDING) {
		r->tgt = (struct wp_target){.snap = c->snap,
					    .svc = c->svc,
					    .pod = c->pod,
					    .port = c->port,
					    .dest = r->dest,
					    .family = c->vip.family};
		if (wp_target_pick(c->w, &r->tgt)) {
			wp_req_reply(r, 503, "UH", "no healthy upstream");
			return;
		}
	}
	if (!wp_req_admit(r))
		return;
	err = r->up_ops->start(r);
	if (err == -EBUSY) {
		/* A new connection was needed after all, and the cluster allows none: wait. */
		r->state = WP_RQ_HEAD;
		wp_req_pend(r);
		return;
	}
	r->attempts++;
	if (err) {
		wp_req_failed(r, WP_UPF_CONNECT, "cannot open an upstream stream");
		return;
	}
	r->active = wp_ep_stat(c->w->wp, r->tgt.ep_key);
	atomic_fetch_add(&r->active->active, 1);
	if (wp_route_per_try_ms(r) && !r->shadow)
		r->try_deadline_ms = wp_now(r) + wp_route_per_try_ms(r);
	wp_req_arm(r);
	if (r->body_eof)
		wp_req_mirror(r);
}

/* Another attempt with the buffered request, when retryOn covers it and attempts are left. */
static bool wp_req_retry(struct wp_req *r, bool allowed)
{
	if (!allowed || r->shadow || !r->copy_ok || r->attempts >= wp_route_attempts(r))
		return false;
	if (r->up)
		r->up_ops->cancel(r);
	if (r->active)
		atomic_fetch_sub(&r->active->active, 1);
	r->active = NULL;
	wp_q_free(&r->body);
	if (wp_q_put(&r->body, wp_q_data(&r->copy), wp_q_size(&r->copy)))
		return false;
	r->try_deadline_ms = 0;
	r->status = 0;
	r->grpc_status[0] = '\0';
	wp_req_flags(r, "URX");
	r->state = WP_RQ_HEAD;
	wp_req_forward(r);
	return true;
}

static void wp_req_failed(struct wp_req *r, enum wp_up_fail why, const char *text)
{
	r->up = NULL; /* the upstream codec let go of the exchange */
	if (r->active)
		atomic_fetch_sub(&r->active->active, 1);
	r->active = NULL;
	if (r->finished)
		return;
	if (r->shadow) {
		obs_log(OBS_INFO, "mirror", "mirror copy of %s to %s: %s", r->path,
			r->tgt.ep_key[0] ? r->tgt.ep_key : "-", text);
		wp_req_finish(r);
		return;
	}
	if (r->resp_started) {
		wp_req_flags(r, "UR");
		r->down->reset(r);
		wp_req_finish(r);
		return;
	}
	if (why != WP_UPF_PROTOCOL && wp_req_retry(r, wp_route_retry_failure(r, why, false)))
		return;
	obs_log(OBS_WARN, "waypoint", "upstream %s for %s %s: %s", r->tgt.ep_key, r->c->authority,
		r->path, text);
	if (why == WP_UPF_PROTOCOL)
		wp_req_reply(r, 502, "UPE", "upstream protocol error");
	else
		wp_req_reply(r, 503, why == WP_UPF_CONNECT ? "UF" : "UC",
			     "upstream connect error or disconnect/reset before headers");
}

/* ---- upstream events ---- */

/* What a response head weighs, for istio_response_bytes (headers count, as in Istio's). */
static size_t wp_resp_head_size(const struct wp_resp *resp)
{
	size_t i, n = 16;

	for (i = 0; i < resp->h.n; i++)
		n += strlen(resp->h.h[i].name) + strlen(resp->h.h[i].value) + 4;
	return n;
}

static void wp_ev_head(struct wp_req *r, struct wp_resp *resp, bool end)
{
	const char *gs = wp_hdrs_get(&resp->h, "grpc-status");

	if (r->finished)
		return;
	wp_outlier_note(r->c->w, &r->tgt, r->tgt.ep_key, resp->status);
	if (r->body_eof && wp_req_retry(r, wp_route_retry_status(r, resp->status, end ? gs : NULL)))
		return;
	if (gs)
		snprintf(r->grpc_status, sizeof(r->grpc_status), "%.7s", gs);
	r->status = resp->status;
	r->try_deadline_ms = 0;
	r->resp_started = true;
	r->resp_bytes += wp_resp_head_size(resp);
	wp_route_response(r, resp, true);
	if (end)
		wp_req_up_done(r);
	r->down->head(r, resp, end);
	if (end)
		wp_req_complete(r);
}

static void wp_ev_body(struct wp_req *r, const void *p, size_t n)
{
	if (r->finished)
		return;
	r->resp_bytes += n;
	r->down->body(r, p, n);
}

static void wp_ev_end(struct wp_req *r, const struct wp_hdrs *trailers)
{
	const char *gs = wp_hdrs_get(trailers, "grpc-status");

	if (r->finished)
		return;
	if (gs)
		snprintf(r->grpc_status, sizeof(r->grpc_status), "%.7s", gs);
	wp_req_up_done(r);
	r->down->end(r, trailers);
	wp_req_complete(r);
}

/* Request body bytes went on: the client may send as many more. */
static void wp_ev_taken(struct wp_req *r, size_t n)
{
	uint64_t sent = r->req_bytes - wp_q_size(&r->body);

	(void)n;
	if (sent > r->consumed && !r->finished) {
		r->down->consumed(r, (size_t)(sent - r->consumed));
		r->consumed = sent;
	}
}

static void wp_ev_upgraded(struct wp_req *r, struct wp_resp *resp, struct wp_tun *t)
{
	r->up = NULL;
	r->status = resp->status;
	r->resp_started = r->resp_done = true;
	wp_route_response(r, resp, true);
	wp_req_finish(r);
	r->down->upgraded(r, resp, t);
}

static const struct wp_up_events wp_req_events = {
    .head = wp_ev_head,
    .body = wp_ev_body,
    .end = wp_ev_end,
    .failed = wp_req_failed,
    .taken = wp_ev_taken,
    .upgraded = wp_ev_upgraded,
};

/* ---- the body and flow control ---- */

void wp_req_body(struct wp_req *r, const void *p, size_t n)
{
	if (!n)
		return;
	r->req_bytes += n;
	if (r->finished || r->local) {
		/* Answered already: the rest of the request is read and dropped. */
		r->down->consumed(r, n);
		r->consumed += n;
		return;
	}
	if (wp_q_put(&r->body, p, n)) {
		wp_req_reply(r, 500, "-", "out of memory");
		return;
	}
	if (r->copy_ok && wp_q_size(&r->copy) + n <= WP_RETRY_COPY_MAX) {
		wp_q_put(&r->copy, p, n);
	} else {
		r->copy_ok = false; /* too large to retry or mirror */
		wp_q_free(&r->copy);
	}
	if (r->up)
		r->up_ops->pump(r);
}

void wp_req_body_end(struct wp_req *r)
{
	r->body_eof = true;
	if (r->finished)
		return;
	if (r->up) {
		r->up_ops->pump(r);
		wp_req_mirror(r);
	}
}

void wp_req_drained(struct wp_req *r, size_t n)
{
	if (r->up && n)
		r->up_ops->drained(r, n);
}

/* ---- time ---- */

static void wp_earlier(uint64_t *t, uint64_t when)
{
	if (when && (!*t || when < *t))
		*t = when;
}

static void wp_req_arm(struct wp_req *r)
{
	uint64_t t = 0;

	if (r->finished)
		return;
	if (r->state == WP_RQ_DELAY)
		wp_earlier(&t, r->delay_until_ms);
	if (!r->resp_done)
		wp_earlier(&t, r->deadline_ms);
	if (r->state == WP_RQ_UPSTREAM && !r->resp_started)
		wp_earlier(&t, r->try_deadline_ms);
	/* A slot may free on any worker: a pending request looks again every 50 ms. */
	if (r->state == WP_RQ_PENDING)
		wp_earlier(&t, wp_now(r) + WP_PENDING_POLL_MS);
	if (t)
		rt_timer_arm(r->c->w->loop, &r->tmr, t);
	else
		rt_timer_cancel(r->c->w->loop, &r->tmr);
}

static void wp_req_timer_fired(struct rt_loop *l, struct rt_timer *t)
{
	struct wp_req *r = zm_container_of(t, struct wp_req, tmr);
	uint64_t now = l->now_ms;

	if (r->finished)
		return;
	if (r->deadline_ms && now >= r->deadline_ms && !r->resp_done) {
		if (r->shadow) {
			obs_log(OBS_WARN, "mirror",
				"mirror copy to %s still open after %llu ms, reset", r->tgt.ep_key,
				(unsigned long long)(now - r->start_ms));
			wp_req_finish(r);
			return;
		}
		wp_req_reply(r, 504, "UT", "upstream request timeout");
		return;
	}
	if (r->state == WP_RQ_DELAY && now >= r->delay_until_ms) {
		wp_req_act(r);
		return;
	}
	if (r->state == WP_RQ_PENDING) {
		wp_req_forward(r);
		return;
	}
	if (r->state == WP_RQ_UPSTREAM && r->try_deadline_ms && now >= r->try_deadline_ms &&
	    !r->resp_started) {
		/* perTryTimeout: this attempt is over; another follows, or a 504. */
		r->try_deadline_ms = 0;
		if (!wp_req_retry(r, wp_route_retry_failure(r, WP_UPF_RESET, true)))
			wp_req_reply(r, 504, "UT", "upstream request timeout");
		return;
	}
	wp_req_arm(r);
}
