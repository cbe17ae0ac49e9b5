// SPDX-License-Identifier: Apache-2.0
/*
 * Per-request decisions and the downstream stream callbacks: which service the CONNECT named
 * (VIP:port, or a pod that has us as its waypoint), L7 authorization, VirtualService route,
 * faults, redirects and direct responses, the upstream request head (rewrite, header
 * operations, framing), endpoint choice (DestinationRule subset labels, ROUND_ROBIN / RANDOM /
 * LEAST_REQUEST, outlier ejection), timeouts and retries.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/list.h"
#include "h2.h"

static void wp_req_view(struct wp_ds *ds, struct l7_request *r)
{
	const char *host = NULL;
	size_t i;

	for (i = 0; i < ds->req.n; i++)
		if (!strcmp(ds->req.h[i].name, "host"))
			host = ds->req.h[i].value;
	*r = (struct l7_request){
	    .method = ds->req.start[0],
	    .path = ds->req.start[1],
	    .authority = host ? host : ds->authority,
	    .scheme = "http",
	    .port = ds->port,
	    .headers = ds->req.h,
	    .n_headers = ds->req.n,
	    .source_principal = ds->peer,
	    .source_namespace = ds->src_ns,
	};
}

bool wp_ops_removes(const struct l7_header_ops *ops, const char *name)
{
	size_t i;

	for (i = 0; ops && i < ops->n_remove; i++)
		if (!strcasecmp(ops->remove[i], name))
			return true;
	for (i = 0; ops && i < ops->n_set; i++)
		if (!strcasecmp(ops->set[i].name, name))
			return true;
	return false;
}

/* Headers of h (minus hop-by-hop and those ops remove or set), then ops' set and add. */
void wp_head_emit(struct wp_q *q, const struct wp_head *h, const struct l7_header_ops *ops)
{
	size_t i;

	for (i = 0; i < h->n; i++)
		if (!wp_hop_header(h->h[i].name) && !wp_ops_removes(ops, h->h[i].name))
			wp_q_printf(q, "%s: %s\r\n", h->h[i].name, h->h[i].value);
	for (i = 0; ops && i < ops->n_set; i++)
		wp_q_printf(q, "%s: %s\r\n", ops->set[i].name, ops->set[i].value);
	for (i = 0; ops && i < ops->n_add; i++)
		wp_q_printf(q, "%s: %s\r\n", ops->add[i].name, ops->add[i].value);
}

void wp_request_id_new(char *buf, size_t len)
{
	uint32_t a = wp_rand(), b = wp_rand(), c = wp_rand(), d = wp_rand();

	snprintf(buf, len, "%08x-%04x-4%03x-%04x-%04x%08x", a, b >> 16, b & 0xfff,
		 (c >> 16 & 0x3fff) | 0x8000, c & 0xffff, d);
}

static void wp_build_upstream_head(struct wp_ds *ds, const struct l7_request *req)
{
	const struct l7_http_route *r = ds->route;
	const char *cl = NULL;
	char path[4096];
	size_t i;

	if (!r || l7_rewrite_path(r, req, path, sizeof(path)))
		snprintf(path, sizeof(path), "%s", req->path);
	for (i = 0; i < ds->req.n; i++)
		if (!strcmp(ds->req.h[i].name, "content-length"))
			cl = ds->req.h[i].value;
	ds->copy_ok = true;
	wp_q_printf(&ds->upq, "%s %s HTTP/1.1\r\nhost: %s\r\n", req->method, path,
		    r && r->rewrite.authority ? r->rewrite.authority : req->authority);
	/* Envoy's request id: kept when the client sent one, else a random UUID v4. */
	for (i = 0; i < ds->req.n; i++)
		if (!strcmp(ds->req.h[i].name, "x-request-id"))
			snprintf(ds->request_id, sizeof(ds->request_id), "%s", ds->req.h[i].value);
	if (!ds->request_id[0]) {
		wp_request_id_new(ds->request_id, sizeof(ds->request_id));
		wp_q_printf(&ds->upq, "x-request-id: %s\r\n", ds->request_id);
	}
	/* WebSocket: the hop-by-hop Upgrade pair is the one thing passed on, as Envoy does. */
	for (i = 0; ds->p.upgrade && i < ds->req.n; i++)
		if (!strcmp(ds->req.h[i].name, "upgrade") &&
		    !strcasecmp(ds->req.h[i].value, "websocket"))
			ds->upgrade = true;
	if (ds->upgrade)
		wp_q_printf(&ds->upq, "connection: upgrade\r\nupgrade: websocket\r\n");
	if (ds->chunked)
		wp_q_printf(&ds->upq, "transfer-encoding: chunked\r\n");
	else if (cl)
		wp_q_printf(&ds->upq, "content-length: %s\r\n", cl);
	wp_head_emit(&ds->upq, &ds->req, r ? &r->req_ops : NULL);
	wp_q_printf(&ds->upq, "x-forwarded-proto: http\r\n\r\n");
	wp_q_put(&ds->copy, ds->upq.p + ds->upq.off, wp_q_size(&ds->upq));
}

/* Local answers a route may give before any upstream: redirect, direct response, abort. */
static bool wp_route_local(struct wp_ds *ds, const struct l7_request *req)
{
	const struct l7_http_route *r = ds->route;
	char extra[1200];

	if (r->redirect.set) {
		const char *q = strchr(req->path, '?');

		snprintf(extra, sizeof(extra), "location: %s://%s%s%s\r\n",
			 r->redirect.scheme ? r->redirect.scheme : "http",
			 r->redirect.authority ? r->redirect.authority : req->authority,
			 r->redirect.uri ? r->redirect.uri : req->path,
			 r->redirect.uri && q ? q : "");
		wp_ds_reply(ds, r->redirect.code, "-", "", false, extra);
		return true;
	}
	if (r->direct.status) {
		wp_ds_reply(ds, r->direct.status, "-", r->direct.body ? r->direct.body : "", false,
			    NULL);
		return true;
	}
	if (r->fault.abort_status && l7_percent_hit(r->fault.abort_pct, wp_rand())) {
		wp_ds_reply(ds, r->fault.abort_status, "FI", "fault filter abort", false, NULL);
		return true;
	}
	return false;
}

/* Called from on_headers_complete: everything up to choosing the endpoint. */
void wp_route_request(struct wp_ds *ds)
{
	const struct l7_config *l7 = ds->snap->l7;
	const struct l7_authz *pol;
	struct l7_request req;
	const struct l7_vs *vs;

	wp_req_view(ds, &req);
	ds->rq = WP_RQ_UPSTREAM;
	snprintf(ds->flags, sizeof(ds->flags), "-");
	if (ds->svc && !l7_authz_allows(l7, ds->svc->hostname, ds->svc->namespace, &req, &pol)) {
		wp_ds_reply(ds, 403, "RBAC", L7_DENY_BODY, false, NULL);
		return;
	}
	vs = ds->svc ? l7_vs_find(l7, ds->svc->hostname) : NULL;
	if (vs) {
		ds->route = l7_route_match(vs, &req);
		if (!ds->route) {
			wp_ds_reply(ds, 404, "NR", "route not found\n", false, NULL);
			return;
		}
		if (wp_route_local(ds, &req))
			return;
		ds->dest = l7_dest_pick(ds->route->dests, ds->route->n_dests, wp_rand());
		obs_log(OBS_DEBUG, "http", "%s %s from %s: route %s of %s", req.method, req.path,
			ds->peer[0] ? ds->peer : "-", ds->route->name ? ds->route->name : "-",
			ds->svc ? ds->svc->hostname : "-");
		if (ds->route->timeout_ms)
			ds->deadline_ms = ds->w->loop->now_ms + ds->route->timeout_ms;
		if (ds->route->fault.delay_ms &&
		    l7_percent_hit(ds->route->fault.delay_pct, wp_rand())) {
			ds->rq = WP_RQ_DELAY;
			ds->delay_until_ms = ds->w->loop->now_ms + ds->route->fault.delay_ms;
			if (ds->deadline_ms)
				ds->deadline_ms += ds->route->fault.delay_ms;
			snprintf(ds->flags, sizeof(ds->flags), "DI");
		}
		wp_ds_timer_update(ds);
	}
	wp_build_upstream_head(ds, &req);
}

/* The endpoint for this request (or TCP stream); false with a reply already given. */
static bool wp_pick_endpoint(struct wp_ds *ds, struct l7_endpoint *out)
{
	struct wp_target *t = &ds->tgt;

	*t = (struct wp_target){.snap = ds->snap,
				.svc = ds->svc,
				.pod = ds->pod,
				.port = ds->port,
				.dest = ds->dest,
				.family = ds->vip.family};
	if (wp_target_pick(ds->w, t)) {
		if (ds->mode == WP_DS_HTTP)
			wp_ds_reply(ds, 503, "UH", "no healthy upstream", false, NULL);
		return false;
	}
	*out = t->ep;
	return true;
}

void wp_ds_pool_release(struct wp_ds *ds)
{
	if (ds->rq == WP_RQ_PENDING && ds->tgt.cl)
		atomic_fetch_sub(&ds->tgt.cl->pending, 1);
	if (ds->rq == WP_RQ_PENDING)
		ds->rq = WP_RQ_UPSTREAM;
	wp_cl_request_end(ds->counted);
	ds->counted = NULL;
}

/* connectionPool: false with 503 "UO" (Envoy's overflow) when the cluster is full. */
static bool wp_pool_admit(struct wp_ds *ds)
{
	struct wp_target *t = &ds->tgt;
	unsigned int max_pending = t->policy->pool.http1_max_pending;

	if (!ds->counted) {
		if (!wp_cl_request_begin(t->cl, t->policy))
			goto overflow;
		ds->counted = t->cl;
	}
	if (wp_up_idle_for(ds->w, t->ep_key) || wp_cl_conn_allowed(t->cl, t->policy)) {
		if (ds->rq == WP_RQ_PENDING) {
			atomic_fetch_sub(&t->cl->pending, 1);
			ds->rq = WP_RQ_UPSTREAM;
		}
		return true;
	}
	if (ds->rq == WP_RQ_PENDING)
		return false; /* still waiting: the stream's timer tries again */
	if (max_pending && atomic_fetch_add(&t->cl->pending, 1) >= max_pending) {
		atomic_fetch_sub(&t->cl->pending, 1);
		goto overflow;
	}
	if (!max_pending)
		atomic_fetch_add(&t->cl->pending, 1);
	ds->rq = WP_RQ_PENDING;
	return false;
overflow:
	atomic_fetch_add(&t->cl->overflows, 1);
	obs_log(OBS_WARN, "waypoint", "%s: connection pool of %s full, 503", ds->authority,
		t->cl->key);
	wp_ds_reply(ds, 503, "UO",
		    "upstream connect error or disconnect/reset before headers. "
		    "reset reason: overflow",
		    false, NULL);
	if (ds->msg_done)
		wp_ds_request_done(ds);
	return false;
}

void wp_ds_dispatch_upstream(struct wp_ds *ds)
{
	struct l7_endpoint ep;

	if (!wp_pick_endpoint(ds, &ep))
		return;
	if (!wp_pool_admit(ds)) {
		wp_ds_timer_update(ds); /* pending: look again soon */
		return;
	}
	ds->attempts++;
	ds->ep_name = ep.wl->name;
	ds->ep_wl = ep.wl;
	snprintf(ds->ep_key, sizeof(ds->ep_key), "%s", ds->tgt.ep_key);
	if (ds->route && ds->route->retries.per_try_timeout_ms)
		ds->try_deadline_ms = ds->w->loop->now_ms + ds->route->retries.per_try_timeout_ms;
	ds->up = wp_up_get(ds->w, ds, &ep, false);
	if (!ds->up) {
		wp_ds_upstream_failed(ds, "cannot open an upstream stream", true);
		return;
	}
	wp_ds_timer_update(ds);
	wp_up_send(ds->up);
}

static unsigned int wp_max_attempts(const struct wp_ds *ds)
{
	if (ds->route && ds->route->retries.set)
		return ds->route->retries.attempts + 1;
	return 3; /* Istio's default: 2 retries on connect failure */
}

void wp_ds_upstream_failed(struct wp_ds *ds, const char *why, bool connect_failure)
{
	uint32_t on = ds->route && ds->route->retries.set ? ds->route->retries.retry_on
							  : L7_RETRY_CONNECT_FAILURE;

	if (ds->up)
		wp_up_detach(ds->up, false);
	ds->up = NULL;
	if (ds->resp_started) {
		/* Part of a response went out: the client can only learn from the close. */
		ds->close_after = true;
		ds->keepalive = false;
		ds->status = ds->status ? ds->status : 502;
		wp_ds_request_done(ds);
		return;
	}
	/*
	 * Envoy's retryOn: "5xx" also covers no answer at all (connect failure, reset, per-try
	 * timeout), "gateway-error" the same failures as 502/503/504.
	 */
	if (on & (L7_RETRY_5XX | L7_RETRY_GATEWAY_ERROR))
		on |= L7_RETRY_CONNECT_FAILURE | L7_RETRY_RESET;
	if (ds->copy_ok && ds->attempts < wp_max_attempts(ds) &&
	    (on & (connect_failure ? L7_RETRY_CONNECT_FAILURE : L7_RETRY_RESET))) {
		wp_q_free(&ds->upq);
		wp_q_put(&ds->upq, ds->copy.p + ds->copy.off, wp_q_size(&ds->copy));
		wp_ds_dispatch_upstream(ds);
		return;
	}
	obs_log(OBS_WARN, "waypoint", "upstream %s for %s: %s", ds->ep_key, ds->authority, why);
	wp_ds_reply(ds, 503, connect_failure ? "UF" : "UC",
		    "upstream connect error or disconnect/reset before headers", false, NULL);
	if (ds->msg_done)
		wp_ds_request_done(ds);
}

/* ---- timers: one per downstream stream, at its earliest deadline ---- */

static void wp_earlier(uint64_t *t, uint64_t when)
{
	if (when && (!*t || when < *t))
		*t = when;
}

/* The earliest moment ds has something to do (0: nothing). */
static uint64_t wp_ds_next_deadline(const struct wp_ds *ds)
{
	uint64_t t = 0;

	if (!ds->st)
		return 0;
	if (ds->mode == WP_DS_H2)
		return wp_h2d_next_deadline(ds);
	if (ds->mode != WP_DS_HTTP)
		return 0;
	if (ds->rq == WP_RQ_DELAY)
		wp_earlier(&t, ds->delay_until_ms);
	if (ds->rq == WP_RQ_UPSTREAM || ds->rq == WP_RQ_PENDING)
		wp_earlier(&t, ds->deadline_ms);
	if (ds->rq == WP_RQ_UPSTREAM && ds->up)
		wp_earlier(&t, ds->try_deadline_ms);
	/* A slot may free on any worker: a pending request looks again every 50 ms. */
	if (ds->rq == WP_RQ_PENDING)
		wp_earlier(&t, ds->w->loop->now_ms + WP_PENDING_POLL_MS);
	return t;
}

void wp_ds_timer_update(struct wp_ds *ds)
{
	uint64_t t = wp_ds_next_deadline(ds);

	if (t)
		rt_timer_earlier(ds->w->loop, &ds->tmr, t);
}

/* An HTTP/1 stream's deadlines: fault delay over, request timeout, pending, per-try timeout. */
static void wp_ds_http_due(struct wp_ds *ds, uint64_t now)
{
	if (ds->rq == WP_RQ_DELAY && now >= ds->delay_until_ms) {
		ds->rq = WP_RQ_UPSTREAM;
		wp_ds_dispatch_upstream(ds);
		wp_ds_process(ds);
		return;
	}
	if ((ds->rq == WP_RQ_UPSTREAM || ds->rq == WP_RQ_PENDING) && ds->deadline_ms &&
	    now >= ds->deadline_ms && !ds->resp_started) {
		wp_ds_pool_release(ds);
		if (ds->up)
			wp_up_detach(ds->up, false);
		ds->up = NULL;
		wp_ds_reply(ds, 504, "UT", "upstream request timeout", false, NULL);
		if (ds->msg_done)
			wp_ds_request_done(ds);
		else
			ds->close_after = true;
		return;
	}
	if (ds->rq == WP_RQ_PENDING) {
		wp_ds_dispatch_upstream(ds);
		wp_ds_process(ds);
		return;
	}
	if (ds->rq == WP_RQ_UPSTREAM && ds->try_deadline_ms && now >= ds->try_deadline_ms &&
	    !ds->resp_started && ds->up) {
		ds->try_deadline_ms = 0;
		wp_ds_upstream_failed(ds, "per-try timeout", false);
	}
}

static void wp_ds_timer_fired(struct rt_loop *l, struct rt_timer *t)
{
	struct wp_ds *ds = zm_container_of(t, struct wp_ds, tmr);

	if (ds->st && ds->mode == WP_DS_H2)
		wp_h2d_tick(ds);
	else if (ds->st && ds->mode == WP_DS_HTTP)
		wp_ds_http_due(ds, l->now_ms);
	/* Released in there? Its timer was cancelled with it, and ds->st is NULL. */
	wp_ds_timer_update(ds);
}

void wp_ds_timer_init(struct wp_ds *ds)
{
	rt_timer_init(&ds->tmr, wp_ds_timer_fired);
}

/* ---- mirroring ---- */

void wp_ds_mirror(struct wp_ds *ds)
{
	const struct l7_http_route *r = ds->route;
	struct l7_endpoint eps[L7_MAX_ENDPOINTS];
	const struct l7_subset *ss = NULL;
	const char *p = ds->copy.p + ds->copy.off, *h, *e;
	size_t len = wp_q_size(&ds->copy), n;
	struct wp_worker *w = ds->w;
	struct wp_q q = {0};
	int err;

	ds->mirrored = true;
	if (!r || !r->mirror.host || !r->mirror.service || !ds->copy_ok || !ds->msg_done ||
	    !ds->attempts || !l7_percent_hit(r->mirror_pct, wp_rand()))
		return;
	if (r->mirror.subset[0])
		ss = l7_dr_subset(l7_dr_find(ds->snap->l7, r->mirror.host), r->mirror.subset);
	n = l7_endpoints(ds->snap->mesh, r->mirror.service,
			 r->mirror.port ? r->mirror.port : ds->port, ss, eps, L7_MAX_ENDPOINTS);
	/* Envoy marks the copy by the Host header suffix "-shadow". */
	h = memmem(p, len, "\r\nhost: ", 8);
	e = h ? memmem(h + 2, len - (size_t)(h + 2 - p), "\r\n", 2) : NULL;
	if (!n || !e)
		return;
	wp_q_put(&q, p, (size_t)(e - p));
	wp_q_put(&q, "-shadow", 7);
	wp_q_put(&q, e, len - (size_t)(e - p));
	err = wp_up_shadow(w, &eps[wp_rand() % n], ds->vip.family,
			   r->timeout_ms ? r->timeout_ms : WP_SHADOW_MS, ds->forwarded, q.p + q.off,
			   wp_q_size(&q));
	wp_q_free(&q);
	if (err == -EBUSY) {
		/* Dropped copies are counted; a stalled mirror logs one line a second, not each. */
		w->shadow_drops++;
		if (obs_ratelimit_ok(&w->shadow_log, w->loop->now_ms, 1000, NULL))
			obs_log(
			    OBS_WARN, "mirror",
			    "mirror to %s: %u copies in flight on this worker, copy dropped (%lu "
			    "dropped so far)",
			    r->mirror.host, w->n_shadows, w->shadow_drops);
	} else if (err) {
		obs_log(OBS_WARN, "mirror", "mirror to %s: cannot open a stream", r->mirror.host);
	}
}

/* ---- downstream stream callbacks ---- */

/* The source workload from the HBONE forwarded header: for="ip:port" or for="[ip]:port". */
static const struct zm_cfg_workload *wp_forwarded_workload(const struct zm_config *mesh,
							   const char *fwd)
{
	const char *p = fwd ? strstr(fwd, "for=") : NULL;
	char ip[64];
	size_t n;
	struct zm_addr a;
	char *c;

	if (!p)
		return NULL;
	p += 4 + (p[4] == '"');
	p += *p == '[';
	n = strcspn(p, "]\";,");
	snprintf(ip, sizeof(ip), "%.*s", (int)n, p);
	/* IPv4 "ip:port": cut the port; IPv6 was bracketed, so the cut above ended it. */
	if ((c = strchr(ip, ':')) && !strchr(c + 1, ':'))
		*c = '\0';
	if (zm_addr_parse(ip, &a))
		return NULL;
	return zm_config_workload_by_ip(mesh, NULL, &a);
}

static void wp_ds_free(void *p)
{
	struct wp_ds *ds = p;

	wp_q_free(&ds->in);
	wp_q_free(&ds->out);
	wp_q_free(&ds->upq);
	wp_q_free(&ds->copy);
	wp_head_free(&ds->req);
	wp_snap_put(ds->snap);
	free(ds);
}

void wp_ds_on_request(struct hb_stream *s, const struct hb_request *req)
{
	struct wp_worker *w = wp_stream_worker(s);
	struct zm_spiffe_id id;
	struct wp_ds *ds = calloc(1, sizeof(*ds));

	if (!ds) {
		hb_stream_respond(s, HB_STATUS_UNAVAILABLE);
		return;
	}
	ds->w = w;
	ds->st = s;
	wp_ds_timer_init(ds);
	ds->snap = wp_snap_get(w->wp);
	ds->vip = req->dst;
	ds->port = req->dst_port;
	snprintf(ds->authority, sizeof(ds->authority), "%s", req->authority);
	snprintf(ds->peer, sizeof(ds->peer), "%s", zm_spiffe_principal(req->peer_identity));
	if (!zm_spiffe_id_parse(req->peer_identity, &id))
		snprintf(ds->src_ns, sizeof(ds->src_ns), "%s", id.ns);
	snprintf(ds->forwarded, sizeof(ds->forwarded), "%s", req->forwarded);
	ds->src_wl = wp_forwarded_workload(ds->snap->mesh, req->forwarded);
	ds->svc = zm_config_service_by_vip(ds->snap->mesh, NULL, &req->dst);
	if (!ds->svc)
		ds->pod = zm_config_workload_by_ip(ds->snap->mesh, NULL, &req->dst);
	http_parser_init(&ds->p, HTTP_REQUEST);
	ds->p.data = ds;
	hb_stream_set_ud(s, ds);
	if (!ds->svc && !ds->pod) {
		obs_log(OBS_WARN, "http", "CONNECT %s from %s: no service or workload there, 503",
			req->authority, ds->peer);
		hb_stream_respond(s, HB_STATUS_UNAVAILABLE);
		return;
	}
	hb_stream_respond(s, HB_STATUS_OK);
}

size_t wp_ds_on_data(struct hb_stream *s, const uint8_t *buf, size_t len)
{
	struct wp_ds *ds = hb_stream_ud(s);

	if (!ds || !ds->st)
		return len;
	if (ds->mode == WP_DS_H2) {
		wp_h2d_input(ds, buf, len); /* HTTP/2 flow control bounds what comes in */
		return len;
	}
	if (wp_q_size(&ds->in) >= WP_IN_HIGH) {
		ds->input_paused = true;
		return 0;
	}
	if (wp_q_put(&ds->in, buf, len)) {
		hb_stream_reset(s, HB_ERR_INTERNAL);
		return len;
	}
	wp_ds_process(ds);
	return len;
}

void wp_ds_on_eof(struct hb_stream *s)
{
	struct wp_ds *ds = hb_stream_ud(s);

	if (!ds || !ds->st)
		return;
	ds->in_eof = true;
	if (ds->mode == WP_DS_H2) {
		wp_h2d_pump(ds->h2);
		return;
	}
	if (ds->mode == WP_DS_TCP && ds->up) {
		wp_up_send(ds->up);
		return;
	}
	if (ds->mode == WP_DS_DETECT && !wp_q_size(&ds->in)) {
		ds->close_after = true;
		wp_ds_flush(ds);
		return;
	}
	wp_ds_process(ds);
}

void wp_ds_on_writable(struct hb_stream *s)
{
	struct wp_ds *ds = hb_stream_ud(s);

	if (!ds || !ds->st)
		return;
	wp_ds_flush(ds);
	if (ds->mode == WP_DS_H2) {
		wp_h2d_pump(ds->h2);
		return;
	}
	/* The upstream paused when our output queue grew: let it go on. */
	if (ds->up && ds->up->st && wp_q_size(&ds->out) < WP_IN_HIGH)
		hb_stream_resume(ds->up->st);
}

void wp_ds_on_close(struct hb_stream *s, uint32_t error)
{
	struct wp_ds *ds = hb_stream_ud(s);
	struct wp_worker *w;

	(void)error;
	if (!ds)
		return;
	w = ds->w;
	ds->st = NULL;
	wp_h2d_close(ds);
	wp_ds_pool_release(ds);
	if (ds->up) {
		wp_up_detach(ds->up, false);
		ds->up = NULL;
	}
	rt_defer_free_timed(w->loop, &ds->tmr, wp_ds_free, ds);
}

/* Plain TCP inside the tunnel: one endpoint (the VirtualService's tcp route, if any). */
void wp_ds_tcp_start(struct wp_ds *ds)
{
	const struct l7_vs *vs = ds->svc ? l7_vs_find(ds->snap->l7, ds->svc->hostname) : NULL;
	struct l7_endpoint ep;

	if (vs && vs->n_tcp)
		ds->dest = l7_dest_pick(vs->tcp, vs->n_tcp, wp_rand());
	if (wp_pick_endpoint(ds, &ep) && !wp_cl_conn_allowed(ds->tgt.cl, ds->tgt.policy)) {
		obs_log(OBS_WARN, "waypoint",
			"tcp stream to %s: connection pool of %s full (%u), "
			"resetting",
			ds->authority, ds->tgt.cl->key, ds->tgt.policy->pool.max_connections);
		atomic_fetch_add(&ds->tgt.cl->overflows, 1);
		hb_stream_reset(ds->st, HB_ERR_CONNECT_ERROR);
		return;
	}
	if (!ds->tgt.ep.wl || !(ds->up = wp_up_get(ds->w, ds, &ep, true))) {
		obs_log(OBS_WARN, "waypoint", "tcp stream to %s: no endpoint reachable, resetting",
			ds->authority);
		hb_stream_reset(ds->st, HB_ERR_CONNECT_ERROR);
		return;
	}
	snprintf(ds->ep_key, sizeof(ds->ep_key), "%s", ds->tgt.ep_key);
	ds->ep_wl = ep.wl;
	wp_access_tcp(ds, ep.wl->name);
	wp_up_send(ds->up);
}
