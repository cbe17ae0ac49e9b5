// SPDX-License-Identifier: Apache-2.0
/*
 * Downstream HTTP/2 in the waypoint: the nghttp2 server session of one tunnelled client
 * connection, and the life of each of its requests: authorization, VirtualService route
 * (so gRPC is routed by method: the path is /package.Service/Method), faults, timeout,
 * endpoint choice, forwarding, retries, the response relayed with the route's header
 * operations, and one access-log line and metrics sample when the stream ends. Local answers
 * to gRPC requests are gRPC answers: HTTP 200 with grpc-status and grpc-message, the status
 * mapped from the HTTP one as Envoy does (403 -> 7 PERMISSION_DENIED, 503 -> 14 UNAVAILABLE,
 * 504 -> 4 DEADLINE_EXCEEDED ...).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "h2.h"

#define WP_H2_NV_MAX  (WP_H2_MAX_HEADERS + 32)
#define WP_H2_STREAMS 256

static const char wp_h2_magic[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

bool wp_h2_preface(const char *buf, size_t len)
{
	return len >= sizeof(wp_h2_magic) - 1 && !memcmp(buf, wp_h2_magic, sizeof(wp_h2_magic) - 1);
}

static void wp_h2_nv(nghttp2_nv *nv, size_t *n, const char *name, const char *value)
{
	if (*n >= WP_H2_NV_MAX)
		return;
	nv[*n] = (nghttp2_nv){.name = (uint8_t *)name,
			      .namelen = strlen(name),
			      .value = (uint8_t *)value,
			      .valuelen = strlen(value),
			      .flags = NGHTTP2_NV_FLAG_NONE};
	(*n)++;
}

/* Regular headers of h that go on (no pseudo, no hop-by-hop, not removed), then ops. */
static void wp_h2_nv_headers(nghttp2_nv *nv, size_t *n, const struct wp_h2hdrs *h,
			     const struct l7_header_ops *ops)
{
	size_t i;

	for (i = 0; i < h->n; i++) {
		const char *name = h->h[i].name;

		if (name[0] == ':' || wp_ops_removes(ops, name))
			continue;
		if (!strcmp(name, "te") ? strcmp(h->h[i].value, "trailers")
					: (wp_hop_header(name) && strcmp(name, "content-length")))
			continue;
		wp_h2_nv(nv, n, name, h->h[i].value);
	}
	for (i = 0; ops && i < ops->n_set; i++)
		wp_h2_nv(nv, n, ops->set[i].name, ops->set[i].value);
	for (i = 0; ops && i < ops->n_add; i++)
		wp_h2_nv(nv, n, ops->add[i].name, ops->add[i].value);
}

static const char *wp_h2_get(const struct wp_h2hdrs *h, const char *name)
{
	size_t i;

	for (i = 0; i < h->n; i++)
		if (!strcmp(h->h[i].name, name))
			return h->h[i].value;
	return NULL;
}

void wp_h2hdrs_clear(struct wp_h2hdrs *h)
{
	size_t i;

	for (i = 0; i < h->n; i++) {
		free((char *)h->h[i].name);
		free((char *)h->h[i].value);
	}
	h->n = h->bytes = 0;
}

int wp_h2hdrs_add(struct wp_h2hdrs *h, const uint8_t *name, size_t nlen, const uint8_t *value,
		  size_t vlen)
{
	if (h->n >= WP_H2_MAX_HEADERS || h->bytes + nlen + vlen > WP_H2_HEADER_BYTES)
		return -E2BIG;
	h->h[h->n].name = strndup((const char *)name, nlen);
	h->h[h->n].value = strndup((const char *)value, vlen);
	if (!h->h[h->n].name || !h->h[h->n].value) {
		free((char *)h->h[h->n].name);
		free((char *)h->h[h->n].value);
		return -ENOMEM;
	}
	h->bytes += nlen + vlen;
	h->n++;
	return 0;
}

/* Envoy's HTTP-to-gRPC status mapping for answers it makes itself. */
static unsigned int wp_grpc_status_of(unsigned int http)
{
	switch (http) {
	case 400:
		return 13; /* INTERNAL */
	case 401:
		return 16; /* UNAUTHENTICATED */
	case 403:
		return 7; /* PERMISSION_DENIED */
	case 404:
		return 12; /* UNIMPLEMENTED */
	case 504:
		return 4; /* DEADLINE_EXCEEDED */
	case 429:
	case 502:
	case 503:
		return 14; /* UNAVAILABLE */
	default:
		return 2; /* UNKNOWN */
	}
}

/* ---- sending to the client ---- */

void wp_h2d_pump(struct wp_h2d *d)
{
	struct wp_ds *ds = d->ds;

	if (d->in_recv || !ds->st)
		return;
	d->in_recv = true;
	while (!d->dead && wp_q_size(&ds->out) < WP_IN_HIGH) {
		const uint8_t *data;
		ssize_t n = nghttp2_session_mem_send(d->s, &data);

		if (n <= 0) {
			d->dead = n < 0;
			break;
		}
		wp_q_put(&ds->out, data, (size_t)n);
	}
	d->in_recv = false;
	if (wp_q_flush(&ds->out, ds->st) < 0 || wp_q_size(&ds->out) || ds->shut)
		return;
	if (d->dead || (!nghttp2_session_want_read(d->s) && !nghttp2_session_want_write(d->s)) ||
	    (ds->in_eof && !d->rqs)) {
		ds->shut = true;
		hb_stream_shutdown(ds->st);
	}
}

static ssize_t wp_h2d_read_resp(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t len,
				uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct wp_h2rq *rq = nghttp2_session_get_stream_user_data(s, sid);
	nghttp2_nv nv[WP_H2_NV_MAX];
	size_t n, k = 0;

	(void)src;
	(void)ud;
	if (!rq)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	n = wp_q_size(&rq->rbody) < len ? wp_q_size(&rq->rbody) : len;
	if (n)
		memcpy(buf, rq->rbody.p + rq->rbody.off, n);
	wp_q_drop(&rq->rbody, n);
	if (n && !rq->local)
		wp_h2u_consumed(rq, n);
	if (wp_q_size(&rq->rbody) || !rq->resp_eof) {
		if (n)
			return (ssize_t)n;
		rq->deferred_down = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	*flags |= NGHTTP2_DATA_FLAG_EOF;
	if (rq->trailers.n) {
		wp_h2_nv_headers(nv, &k, &rq->trailers, NULL);
		if (k && !nghttp2_submit_trailer(s, sid, nv, k))
			*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
	}
	return (ssize_t)n;
}

static void wp_h2rq_finish(struct wp_h2rq *rq, uint32_t error);

static void wp_h2rq_up_done(struct wp_h2rq *rq)
{
	if (rq->active)
		atomic_fetch_sub(&rq->active->active, 1);
	rq->active = NULL;
}

/* A mirror copy is over (answered, failed with why, or timed out): forget it. */
static void wp_h2rq_shadow_end(struct wp_h2rq *rq, const char *why)
{
	if (why)
		obs_log(OBS_INFO, "mirror", "h2 mirror copy of %s to %s: %s", rq->path,
			rq->tgt.ep_key[0] ? rq->tgt.ep_key : "-", why);
	wp_h2u_cancel(rq);
	wp_h2rq_finish(rq, 0);
}

/* A local answer: no upstream (any more) for this request. */
static void wp_h2rq_reply(struct wp_h2rq *rq, unsigned int code, const char *flags,
			  const char *body, const char *xname, const char *xvalue)
{
	struct wp_h2d *d = rq->d;
	nghttp2_data_provider prd = {.read_callback = wp_h2d_read_resp};
	nghttp2_nv nv[8];
	char st[8], cl[24], gs[8];
	size_t n = 0;

	if (rq->done)
		return;
	if (rq->shadow) {
		wp_h2rq_shadow_end(rq, body);
		return;
	}
	wp_h2u_cancel(rq);
	wp_h2rq_up_done(rq);
	rq->local = true;
	snprintf(rq->flags, sizeof(rq->flags), "%s", flags);
	if (wp_q_size(&rq->body))
		wp_h2rq_consumed(rq, wp_q_size(&rq->body));
	wp_q_free(&rq->body);
	if (rq->resp_submitted) {
		nghttp2_submit_rst_stream(d->s, NGHTTP2_FLAG_NONE, rq->sid, NGHTTP2_INTERNAL_ERROR);
		wp_h2d_pump(d);
		return;
	}
	rq->resp_submitted = true;
	rq->resp_eof = true;
	wp_q_free(&rq->rbody);
	if (rq->grpc) {
		rq->status = 200;
		snprintf(rq->grpc_status, sizeof(rq->grpc_status), "%u", wp_grpc_status_of(code));
		snprintf(gs, sizeof(gs), "%s", rq->grpc_status);
		wp_h2_nv(nv, &n, ":status", "200");
		wp_h2_nv(nv, &n, "content-type", "application/grpc");
		wp_h2_nv(nv, &n, "grpc-status", gs);
		wp_h2_nv(nv, &n, "grpc-message", body);
		nghttp2_submit_response(d->s, rq->sid, nv, n, NULL);
		wp_h2d_pump(d);
		return;
	}
	rq->status = code;
	snprintf(st, sizeof(st), "%u", code);
	snprintf(cl, sizeof(cl), "%zu", strlen(body));
	wp_q_put(&rq->rbody, body, strlen(body));
	wp_h2_nv(nv, &n, ":status", st);
	wp_h2_nv(nv, &n, "content-type", "text/plain");
	wp_h2_nv(nv, &n, "content-length", cl);
	if (xname)
		wp_h2_nv(nv, &n, xname, xvalue);
	nghttp2_submit_response(d->s, rq->sid, nv, n, strlen(body) ? &prd : NULL);
	wp_h2d_pump(d);
}

/* ---- forwarding ---- */

static void wp_h2rq_view(const struct wp_h2rq *rq, struct l7_request *r)
{
	const struct wp_ds *ds = rq->d->ds;

	*r = (struct l7_request){
	    .method = rq->method,
	    .path = rq->path,
	    .authority = rq->authority ? rq->authority : ds->authority,
	    .scheme = "http",
	    .port = ds->port,
	    .headers = rq->req.h,
	    .n_headers = rq->req.n,
	    .source_principal = ds->peer,
	    .source_namespace = ds->src_ns,
	};
}

static void wp_h2rq_dispatch(struct wp_h2rq *rq)
{
	struct wp_ds *ds = rq->d->ds;
	struct wp_worker *w = ds->w;
	const struct l7_http_route *r = rq->route;
	const struct l7_header_ops *ops = r ? &r->req_ops : NULL;
	nghttp2_nv nv[WP_H2_NV_MAX];
	struct l7_request req;
	size_t n = 0;

	if (rq->done)
		return;
	rq->tgt = (struct wp_target){.snap = ds->snap,
				     .svc = ds->svc,
				     .pod = ds->pod,
				     .port = ds->port,
				     .dest = rq->dest,
				     .family = ds->vip.family};
	if (wp_target_pick(w, &rq->tgt)) {
		wp_h2rq_reply(rq, 503, "UH", "no healthy upstream", NULL, NULL);
		return;
	}
	if (!rq->counted) {
		if (!wp_cl_request_begin(rq->tgt.cl, rq->tgt.policy))
			goto overflow;
		rq->counted = rq->tgt.cl;
	}
	wp_h2rq_view(rq, &req);
	rq->attempts++;
	wp_h2_nv(nv, &n, ":method", rq->method);
	wp_h2_nv(nv, &n, ":scheme", "http");
	wp_h2_nv(nv, &n, ":authority",
		 r && r->rewrite.authority ? r->rewrite.authority : req.authority);
	wp_h2_nv(nv, &n, ":path", rq->path_up);
	wp_h2_nv_headers(nv, &n, &rq->req, ops);
	if (!wp_h2_get(&rq->req, "x-request-id"))
		wp_h2_nv(nv, &n, "x-request-id", rq->request_id);
	if (!wp_h2_get(&rq->req, "x-forwarded-proto"))
		wp_h2_nv(nv, &n, "x-forwarded-proto", "http");
	if (!wp_h2u_submit(w, rq, nv, n)) {
		if (errno == EBUSY)
			goto overflow;
		wp_h2rq_on_upstream_failed(rq, true, "cannot open an upstream stream");
		return;
	}
	rq->active = wp_ep_stat(w->wp, rq->tgt.ep_key);
	atomic_fetch_add(&rq->active->active, 1);
	if (r && r->retries.per_try_timeout_ms && !rq->shadow)
		rq->try_deadline_ms = w->loop->now_ms + r->retries.per_try_timeout_ms;
	wp_ds_timer_update(rq->d->ds);
	return;
overflow:
	atomic_fetch_add(&rq->tgt.cl->overflows, 1);
	wp_h2rq_reply(rq, 503, "UO",
		      "upstream connect error or disconnect/reset before headers. "
		      "reset reason: overflow",
		      NULL, NULL);
}

static bool wp_h2rq_retry_ok(const struct wp_h2rq *rq, uint32_t on)
{
	unsigned int max =
	    rq->route && rq->route->retries.set ? rq->route->retries.attempts + 1 : 3;

	return rq->copy_ok && rq->attempts < max && on;
}

static void wp_h2rq_retry(struct wp_h2rq *rq)
{
	wp_h2u_cancel(rq);
	wp_h2rq_up_done(rq);
	wp_h2hdrs_clear(&rq->resp);
	wp_h2hdrs_clear(&rq->trailers);
	wp_q_free(&rq->rbody);
	wp_q_free(&rq->body);
	wp_q_put(&rq->body, rq->copy.p + rq->copy.off, wp_q_size(&rq->copy));
	rq->status = 0;
	rq->resp_head = rq->resp_eof = false;
	rq->grpc_status[0] = '\0';
	snprintf(rq->flags, sizeof(rq->flags), "URX");
	wp_h2rq_dispatch(rq);
}

void wp_h2rq_on_upstream_failed(struct wp_h2rq *rq, bool connect_failure, const char *why)
{
	uint32_t on = rq->route && rq->route->retries.set ? rq->route->retries.retry_on
							  : L7_RETRY_CONNECT_FAILURE;

	if (rq->done)
		return;
	wp_h2rq_up_done(rq);
	if (rq->shadow) {
		wp_h2rq_shadow_end(rq, rq->resp_eof ? NULL : why);
		return;
	}
	if (rq->local)
		return;
	if (rq->resp_submitted) {
		/* Part of the answer went out: only a reset tells the client. */
		snprintf(rq->flags, sizeof(rq->flags), "UR");
		nghttp2_submit_rst_stream(rq->d->s, NGHTTP2_FLAG_NONE, rq->sid,
					  NGHTTP2_INTERNAL_ERROR);
		wp_h2d_pump(rq->d);
		return;
	}
	if (on & (L7_RETRY_5XX | L7_RETRY_GATEWAY_ERROR))
		on |= L7_RETRY_CONNECT_FAILURE | L7_RETRY_RESET;
	if (wp_h2rq_retry_ok(rq,
			     on & (connect_failure ? L7_RETRY_CONNECT_FAILURE : L7_RETRY_RESET))) {
		wp_h2rq_retry(rq);
		return;
	}
	obs_log(OBS_INFO, "h2", "h2 upstream %s for %s %s: %s", rq->tgt.ep_key,
		rq->d->ds->authority, rq->path, why);
	wp_h2rq_reply(rq, 503, connect_failure ? "UF" : "UC",
		      "upstream connect error or disconnect/reset before headers", NULL, NULL);
}

static bool wp_h2rq_retry_status(const struct wp_h2rq *rq, unsigned int code)
{
	uint32_t on;

	if (!rq->route || !rq->route->retries.set)
		return false;
	on = rq->route->retries.retry_on;
	return wp_h2rq_retry_ok(rq,
				((on & L7_RETRY_5XX) && code >= 500) ||
				    ((on & L7_RETRY_GATEWAY_ERROR) && code >= 502 && code <= 504) ||
				    ((on & L7_RETRY_UNAVAILABLE) && code == 503) ||
				    ((on & L7_RETRY_RETRIABLE_4XX) && code == 409));
}

static void wp_h2rq_grpc_status(struct wp_h2rq *rq, const struct wp_h2hdrs *h)
{
	const char *gs = wp_h2_get(h, "grpc-status");

	if (gs)
		snprintf(rq->grpc_status, sizeof(rq->grpc_status), "%.7s", gs);
}

void wp_h2rq_on_response(struct wp_h2rq *rq)
{
	struct wp_h2d *d = rq->d;
	nghttp2_data_provider prd = {.read_callback = wp_h2d_read_resp};
	nghttp2_nv nv[WP_H2_NV_MAX];
	const char *st = wp_h2_get(&rq->resp, ":status");
	size_t n = 0;

	if (rq->done || rq->local || rq->shadow)
		return;
	wp_outlier_note(d->ds->w, &rq->tgt, rq->tgt.ep_key, rq->status);
	if (rq->body_eof && wp_h2rq_retry_status(rq, rq->status)) {
		wp_h2rq_retry(rq);
		return;
	}
	wp_h2_nv(nv, &n, ":status", st ? st : "502");
	wp_h2_nv_headers(nv, &n, &rq->resp, rq->route ? &rq->route->resp_ops : NULL);
	wp_h2rq_grpc_status(rq, &rq->resp);
	rq->resp_submitted = true;
	nghttp2_submit_response(d->s, rq->sid, nv, n, rq->resp_eof ? NULL : &prd);
	wp_h2d_pump(d);
}

void wp_h2rq_on_data(struct wp_h2rq *rq)
{
	if (rq->done || !rq->resp_submitted || !rq->deferred_down)
		return;
	rq->deferred_down = false;
	nghttp2_session_resume_data(rq->d->s, rq->sid);
	wp_h2d_pump(rq->d);
}

void wp_h2rq_on_end(struct wp_h2rq *rq)
{
	wp_h2rq_up_done(rq);
	if (rq->done || rq->local || rq->shadow)
		return; /* a shadow ends when its stream closes */
	wp_h2rq_grpc_status(rq, &rq->trailers);
	if (rq->resp_submitted && rq->deferred_down) {
		rq->deferred_down = false;
		nghttp2_session_resume_data(rq->d->s, rq->sid);
	}
	wp_h2d_pump(rq->d);
}

void wp_h2rq_consumed(struct wp_h2rq *rq, size_t n)
{
	size_t left = rq->req_bytes - rq->consumed;

	if (rq->done || rq->shadow)
		return;
	n = n < left ? n : left;
	if (!n)
		return;
	rq->consumed += n;
	nghttp2_session_consume(rq->d->s, rq->sid, n);
	wp_h2d_pump(rq->d);
}

/* ---- a new request ---- */

static void wp_h2rq_request_id(struct wp_h2rq *rq)
{
	const char *id = wp_h2_get(&rq->req, "x-request-id");

	if (id)
		snprintf(rq->request_id, sizeof(rq->request_id), "%s", id);
	else
		wp_request_id_new(rq->request_id, sizeof(rq->request_id));
}

/* The head is in: everything up to forwarding (or a local answer). */
static void wp_h2rq_start(struct wp_h2rq *rq)
{
	struct wp_ds *ds = rq->d->ds;
	const struct l7_config *l7 = ds->snap->l7;
	const struct l7_http_route *r;
	const struct l7_authz *pol;
	const char *ct;
	struct l7_request req;
	const struct l7_vs *vs;
	char loc[1200];

	rq->method = wp_h2_get(&rq->req, ":method");
	rq->path = wp_h2_get(&rq->req, ":path");
	rq->authority = wp_h2_get(&rq->req, ":authority");
	if (!rq->authority)
		rq->authority = wp_h2_get(&rq->req, "host");
	ct = wp_h2_get(&rq->req, "content-type");
	rq->grpc = ct && !strncmp(ct, "application/grpc", 16);
	rq->copy_ok = true;
	snprintf(rq->flags, sizeof(rq->flags), "-");
	wp_h2rq_request_id(rq);
	if (!rq->method || !rq->path || !strcmp(rq->method, "CONNECT")) {
		wp_h2rq_reply(rq, 400, "DPE", "bad request\n", NULL, NULL);
		return;
	}
	wp_h2rq_view(rq, &req);
	if (ds->svc && !l7_authz_allows(l7, ds->svc->hostname, ds->svc->namespace, &req, &pol)) {
		wp_h2rq_reply(rq, 403, "RBAC", L7_DENY_BODY, NULL, NULL);
		return;
	}
	snprintf(rq->path_up, sizeof(rq->path_up), "%s", rq->path);
	vs = ds->svc ? l7_vs_find(l7, ds->svc->hostname) : NULL;
	if (!vs) {
		wp_h2rq_dispatch(rq);
		return;
	}
	r = rq->route = l7_route_match(vs, &req);
	if (!r) {
		wp_h2rq_reply(rq, 404, "NR", "route not found\n", NULL, NULL);
		return;
	}
	if (r->redirect.set) {
		const char *q = strchr(req.path, '?');

		snprintf(loc, sizeof(loc), "%s://%s%s%s",
			 r->redirect.scheme ? r->redirect.scheme : "http",
			 r->redirect.authority ? r->redirect.authority : req.authority,
			 r->redirect.uri ? r->redirect.uri : req.path,
			 r->redirect.uri && q ? q : "");
		wp_h2rq_reply(rq, r->redirect.code, "-", "", "location", loc);
		return;
	}
	if (r->direct.status) {
		wp_h2rq_reply(rq, r->direct.status, "-", r->direct.body ? r->direct.body : "", NULL,
			      NULL);
		return;
	}
	if (r->fault.abort_status && l7_percent_hit(r->fault.abort_pct, wp_rand())) {
		wp_h2rq_reply(rq, r->fault.abort_status, "FI", "fault filter abort", NULL, NULL);
		return;
	}
	if (l7_rewrite_path(r, &req, rq->path_up, sizeof(rq->path_up)))
		snprintf(rq->path_up, sizeof(rq->path_up), "%s", rq->path);
	rq->dest = l7_dest_pick(r->dests, r->n_dests, wp_rand());
	if (r->timeout_ms)
		rq->deadline_ms = ds->w->loop->now_ms + r->timeout_ms;
	if (r->fault.delay_ms && l7_percent_hit(r->fault.delay_pct, wp_rand())) {
		rq->delay_until_ms = ds->w->loop->now_ms + r->fault.delay_ms;
		if (rq->deadline_ms)
			rq->deadline_ms += r->fault.delay_ms;
		snprintf(rq->flags, sizeof(rq->flags), "DI");
		wp_ds_timer_update(ds);
		return; /* wp_h2d_tick dispatches it */
	}
	if (rq->deadline_ms)
		wp_ds_timer_update(ds);
	wp_h2rq_dispatch(rq);
}

static void wp_h2rq_free(void *p)
{
	struct wp_h2rq *rq = p;

	wp_h2hdrs_clear(&rq->req);
	wp_h2hdrs_clear(&rq->resp);
	wp_h2hdrs_clear(&rq->trailers);
	wp_q_free(&rq->body);
	wp_q_free(&rq->copy);
	wp_q_free(&rq->rbody);
	free(rq);
}

/*
 * The route's mirror, once the client's request is whole: a copy (":authority" with Envoy's
 * "-shadow" suffix) to the mirror host on a session of its own, its answer dropped. Bodies
 * over WP_RETRY_COPY_MAX are not copied; at most WP_SHADOW_MAX copies per worker are in
 * flight, each for the route's timeout or WP_SHADOW_MS.
 */
static void wp_h2rq_mirror(struct wp_h2rq *rq)
{
	const struct l7_http_route *r = rq->route;
	struct wp_worker *w = rq->d->ds->w;
	char auth[HB_AUTHORITY_MAX + 16];
	struct wp_h2rq *sh;
	size_t i;

	if (!r || !r->mirror.host || !r->mirror.service || rq->local || rq->shadow ||
	    !l7_percent_hit(r->mirror_pct, wp_rand()))
		return;
	if (!rq->copy_ok || w->n_shadows >= WP_SHADOW_MAX) {
		w->shadow_drops++;
		obs_log(OBS_WARN, "mirror", "h2 mirror copy of %s not sent: %s", rq->path,
			rq->copy_ok ? "too many copies in flight" : "body too large to copy");
		return;
	}
	sh = calloc(1, sizeof(*sh));
	if (!sh)
		return;
	for (i = 0; i < rq->req.n; i++) {
		const char *name = rq->req.h[i].name, *v = rq->req.h[i].value;

		if (!strcmp(name, ":authority") || !strcmp(name, "host")) {
			snprintf(auth, sizeof(auth), "%s-shadow", v);
			v = auth;
		}
		if (wp_h2hdrs_add(&sh->req, (const uint8_t *)name, strlen(name), (const uint8_t *)v,
				  strlen(v))) {
			wp_h2hdrs_clear(&sh->req);
			free(sh);
			return;
		}
	}
	sh->shadow = sh->body_eof = true;
	sh->d = rq->d;
	sh->start_ms = w->loop->now_ms;
	sh->method = wp_h2_get(&sh->req, ":method");
	sh->path = wp_h2_get(&sh->req, ":path");
	sh->authority = wp_h2_get(&sh->req, ":authority");
	if (!sh->authority)
		sh->authority = wp_h2_get(&sh->req, "host");
	sh->grpc = rq->grpc;
	sh->route = r;
	sh->dest = &r->mirror;
	snprintf(sh->path_up, sizeof(sh->path_up), "%s", rq->path_up);
	snprintf(sh->request_id, sizeof(sh->request_id), "%s", rq->request_id);
	wp_q_put(&sh->body, rq->copy.p + rq->copy.off, wp_q_size(&rq->copy));
	sh->req_bytes = wp_q_size(&sh->body);
	sh->deadline_ms = w->loop->now_ms + (r->timeout_ms ? r->timeout_ms : WP_SHADOW_MS);
	wp_ds_timer_update(rq->d->ds);
	sh->next = rq->d->rqs;
	if (rq->d->rqs)
		rq->d->rqs->prev = sh;
	rq->d->rqs = sh;
	w->n_shadows++;
	wp_h2rq_dispatch(sh);
}

/* The client's stream ended: log, count, forget. */
static void wp_h2rq_finish(struct wp_h2rq *rq, uint32_t error)
{
	struct wp_h2d *d = rq->d;
	struct wp_ds *ds = d->ds;
	char dst_id[ZM_SPIFFE_ID_MAX] = "";
	const struct zm_cfg_workload *wl = rq->tgt.ep.wl;
	struct wp_mreq mr;

	if (rq->head_done) {
		if (error && !rq->resp_eof && !rq->local)
			snprintf(rq->flags, sizeof(rq->flags), "DC"); /* the client went away */
		if (wl)
			zm_cfg_workload_identity(wl, dst_id, sizeof(dst_id));
		mr = (struct wp_mreq){
		    .src_principal = ds->peer,
		    .dst_principal = zm_spiffe_principal(dst_id),
		    .src = ds->src_wl,
		    .dst = wl,
		    .dst_workload =
			wl ? (wl->workload_name && wl->workload_name[0] ? wl->workload_name
									: wl->name)
			   : NULL,
		    .svc = ds->svc,
		    .protocol = rq->grpc ? "grpc" : "http",
		    .code = rq->status,
		    .grpc_status = rq->grpc_status,
		    .flags = rq->flags,
		    .duration_ms = ds->w->loop->now_ms - rq->start_ms,
		    .request_bytes = rq->req_bytes,
		    .response_bytes = rq->local ? 0 : rq->resp_bytes,
		    .method = rq->method,
		    .path = rq->path,
		    .authority = ds->authority,
		    .route = rq->route ? rq->route->name : NULL,
		    .upstream = rq->tgt.ep_key,
		    .upstream_name = wl ? wl->name : NULL,
		    .request_id = rq->request_id,
		    .version = "HTTP/2",
		};
		wp_request_finish(ds->w->wp, &mr);
	}
	wp_h2u_cancel(rq);
	wp_h2rq_up_done(rq);
	wp_cl_request_end(rq->counted);
	if (!rq->shadow)
		nghttp2_session_set_stream_user_data(d->s, rq->sid, NULL);
	else if (ds->w->n_shadows)
		ds->w->n_shadows--;
	if (rq->prev)
		rq->prev->next = rq->next;
	else
		d->rqs = rq->next;
	if (rq->next)
		rq->next->prev = rq->prev;
	rq->next = rq->prev = NULL;
	/*
	 * Callers up the stack may still hold rq (a reply's pump can end the stream): it stays
	 * readable, marked done, until the worker's batch of events is over.
	 */
	rq->done = true;
	rt_defer_free(ds->w->loop, wp_h2rq_free, rq);
}

/* ---- server session callbacks ---- */

static int wp_h2d_on_begin(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct wp_h2d *d = ud;
	struct wp_h2rq *rq;

	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	rq = calloc(1, sizeof(*rq));
	if (!rq)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	rq->d = d;
	rq->sid = f->hd.stream_id;
	rq->start_ms = d->ds->w->loop->now_ms;
	rq->next = d->rqs;
	if (d->rqs)
		d->rqs->prev = rq;
	d->rqs = rq;
	nghttp2_session_set_stream_user_data(s, rq->sid, rq);
	return 0;
}

static int wp_h2d_on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
			    size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
	struct wp_h2rq *rq = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);

	(void)flags;
	(void)ud;
	if (!rq || rq->head_done)
		return 0; /* request trailers are not forwarded */
	if (wp_h2hdrs_add(&rq->req, name, nlen, value, vlen)) {
		obs_log(OBS_WARN, "h2",
			"h2 request from %s: more than %u headers or %u bytes, "
			"stream refused",
			rq->d->ds->peer, WP_H2_MAX_HEADERS, WP_H2_HEADER_BYTES);
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	return 0;
}

static int wp_h2d_on_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct wp_h2rq *rq = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
	bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;

	(void)ud;
	if (!rq || (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA))
		return 0;
	if (end)
		rq->body_eof = true;
	if (f->hd.type == NGHTTP2_HEADERS && !rq->head_done) {
		rq->head_done = true;
		wp_h2rq_start(rq);
	} else if (end) {
		wp_h2u_resume(rq);
	}
	if (end && !rq->done)
		wp_h2rq_mirror(rq); /* the request is whole */
	return 0;
}

static int wp_h2d_on_chunk(nghttp2_session *s, uint8_t flags, int32_t sid, const uint8_t *data,
			   size_t len, void *ud)
{
	struct wp_h2rq *rq = nghttp2_session_get_stream_user_data(s, sid);

	(void)flags;
	(void)ud;
	if (!rq) {
		nghttp2_session_consume(s, sid, len);
		return 0;
	}
	rq->req_bytes += len;
	if (rq->local) {
		wp_h2rq_consumed(rq, len);
		return 0;
	}
	if (wp_q_put(&rq->body, data, len))
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	if (rq->copy_ok && wp_q_size(&rq->copy) + len <= WP_RETRY_COPY_MAX) {
		wp_q_put(&rq->copy, data, len);
	} else {
		rq->copy_ok = false;
		wp_q_free(&rq->copy);
	}
	wp_h2u_resume(rq);
	return 0;
}

static int wp_h2d_on_close(nghttp2_session *s, int32_t sid, uint32_t error, void *ud)
{
	struct wp_h2rq *rq = nghttp2_session_get_stream_user_data(s, sid);

	(void)ud;
	if (rq)
		wp_h2rq_finish(rq, error);
	return 0;
}

static int wp_h2d_on_error(nghttp2_session *s, int code, const char *msg, size_t len, void *ud)
{
	struct wp_h2d *d = ud;

	(void)s;
	obs_log(OBS_WARN, "h2", "h2 from %s (%s): %.*s (%s)", d->ds->peer, d->ds->authority,
		(int)len, msg, nghttp2_strerror(code));
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

/* ---- the downstream stream ---- */

int wp_h2d_start(struct wp_ds *ds)
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
	d->ds = ds;
	if (nghttp2_session_server_new2(&d->s, wp_h2d_cbs, d, opt))
		goto err;
	nghttp2_option_del(opt);
	if (nghttp2_submit_settings(d->s, NGHTTP2_FLAG_NONE, iv, 3) ||
	    nghttp2_session_set_local_window_size(d->s, NGHTTP2_FLAG_NONE, 0, 16u << 20)) {
		nghttp2_session_del(d->s);
		free(d);
		return -ENOMEM;
	}
	ds->h2 = d;
	wp_metric_stream(ds->w->wp, WP_STREAM_HTTP2);
	wp_h2d_input(ds, (const uint8_t *)ds->in.p + ds->in.off, wp_q_size(&ds->in));
	wp_q_free(&ds->in);
	return 0;
err:
	if (opt)
		nghttp2_option_del(opt);
	free(d);
	return -ENOMEM;
}

void wp_h2d_input(struct wp_ds *ds, const uint8_t *buf, size_t len)
{
	struct wp_h2d *d = ds->h2;
	ssize_t rv;

	if (!d || d->dead)
		return;
	d->in_recv = true;
	rv = nghttp2_session_mem_recv(d->s, buf, len);
	d->in_recv = false;
	if (rv < 0) {
		obs_log(OBS_WARN, "h2", "h2 from %s (%s): %s, closing", ds->peer, ds->authority,
			nghttp2_strerror((int)rv));
		nghttp2_session_terminate_session(d->s, NGHTTP2_PROTOCOL_ERROR);
	}
	wp_h2d_pump(d);
}

void wp_h2d_tick(struct wp_ds *ds)
{
	struct wp_h2d *d = ds->h2;
	struct wp_h2rq *rq, *next;
	uint64_t now = ds->w->loop->now_ms;

	if (!d)
		return;
	for (rq = d->rqs; rq; rq = next) {
		next = rq->next;
		if (rq->delay_until_ms && now >= rq->delay_until_ms) {
			rq->delay_until_ms = 0;
			wp_h2rq_dispatch(rq);
		}
		if (rq->done)
			continue;
		if (rq->deadline_ms && now >= rq->deadline_ms && !rq->local && !rq->resp_eof) {
			rq->deadline_ms = 0;
			wp_h2rq_reply(rq, 504, "UT", "upstream request timeout", NULL, NULL);
		}
		if (rq->done)
			continue;
		if (rq->try_deadline_ms && now >= rq->try_deadline_ms && rq->u && !rq->local &&
		    !rq->resp_submitted) {
			/* perTryTimeout: this attempt is over; a retry or 504 follows. */
			rq->try_deadline_ms = 0;
			wp_h2u_cancel(rq);
			if (wp_h2rq_retry_ok(
				rq, rq->route->retries.retry_on &
					(L7_RETRY_5XX | L7_RETRY_GATEWAY_ERROR | L7_RETRY_RESET)))
				wp_h2rq_retry(rq);
			else
				wp_h2rq_reply(rq, 504, "UT", "upstream request timeout", NULL,
					      NULL);
		}
	}
	wp_h2d_pump(d);
}

uint64_t wp_h2d_next_deadline(const struct wp_ds *ds)
{
	const struct wp_h2rq *rq;
	uint64_t t = 0;

#define WP_EARLIER(x)                                                                              \
	do {                                                                                       \
		if ((x) && (!t || (x) < t))                                                        \
			t = (x);                                                                   \
	} while (0)
	for (rq = ds->h2 ? ds->h2->rqs : NULL; rq; rq = rq->next) {
		WP_EARLIER(rq->delay_until_ms);
		if (rq->done || rq->local)
			continue;
		if (!rq->resp_eof)
			WP_EARLIER(rq->deadline_ms);
		if (rq->u && !rq->resp_submitted)
			WP_EARLIER(rq->try_deadline_ms);
	}
#undef WP_EARLIER
	return t;
}

void wp_h2d_close(struct wp_ds *ds)
{
	struct wp_h2d *d = ds->h2;

	if (!d)
		return;
	while (d->rqs)
		wp_h2rq_finish(d->rqs, NGHTTP2_CANCEL);
	wp_h2u_close_owned(ds->w, d);
	nghttp2_session_del(d->s);
	free(d);
	ds->h2 = NULL;
}
