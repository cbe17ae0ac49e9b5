/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private types of the waypoint's stream handling (http.c: downstream, requests, routing;
 * upstream.c: upstream streams, responses, plain TCP relay). A byte queue (struct wp_q)
 * holds what a stream did not accept yet; a parsed message head (struct wp_head) owns a copy
 * of the raw head split into the start line and lower-cased header names.
 */
#ifndef WAYPOINT_HTTP_H
#define WAYPOINT_HTTP_H

#include <http_parser.h>

#include "hbone/hbone.h"
#include "tls/tls.h"
#include "pick.h"

struct wp_q {
	char *p;
	size_t off, len, cap; /* live bytes are p[off .. len) */
	uint64_t total;	      /* bytes ever put: response sizes for metrics */
};

struct wp_head {
	char *buf;
	char *start[3]; /* request: method, target, version; response: version, code, reason */
	struct l7_header h[WP_MAX_HEADERS];
	size_t n;
};

enum wp_ds_mode { WP_DS_DETECT, WP_DS_HTTP, WP_DS_TCP, WP_DS_H2 };

enum wp_rq {
	WP_RQ_HEAD,	/* reading a request head */
	WP_RQ_DELAY,	/* fault delay running */
	WP_RQ_UPSTREAM, /* forwarded (or waiting for an upstream stream) */
	WP_RQ_LOCAL,	/* answered locally; the rest of the request body is dropped */
	WP_RQ_PENDING,	/* waiting for a connection (connectionPool.tcp.maxConnections) */
};

struct wp_up;
struct wp_h2d;
struct wp_h2u;

struct wp_ds {
	struct wp_worker *w;
	struct rt_timer tmr;  /* at the earliest deadline of its request(s) */
	struct hb_stream *st; /* NULL once the stream closed */
	struct wp_snap *snap;
	const struct zm_cfg_service *svc;
	const struct zm_cfg_workload *pod; /* authority named a pod behind us, not a VIP */
	unsigned int port;
	struct zm_addr vip;
	char authority[HB_AUTHORITY_MAX];
	char peer[ZM_SPIFFE_ID_MAX]; /* principal, without spiffe:// */
	char src_ns[64];
	char forwarded[HB_FORWARDED_MAX];
	enum wp_ds_mode mode;
	struct wp_q in;	 /* client bytes not parsed yet */
	struct wp_q out; /* bytes for the client the stream did not take yet */
	bool in_eof, shut, close_after, input_paused;
	/* the current request */
	http_parser p;
	enum wp_rq rq;
	size_t parsed; /* head bytes fed to the parser, still queued */
	bool head_done, msg_done, keepalive, bad;
	struct wp_head req;
	bool chunked;
	bool upgrade;	 /* a WebSocket Upgrade request: after a 101 the stream is relayed as TCP */
	struct wp_q upq; /* encoded request bytes for the upstream stream */
	struct wp_q copy; /* the whole encoded request, for retries */
	bool copy_ok;
	const struct l7_http_route *route;
	const struct l7_dest *dest;
	struct wp_target tgt;	    /* the cluster and endpoint of the current attempt */
	struct wp_cl_stat *counted; /* the cluster this request counts in */
	unsigned int attempts;
	uint64_t start_ms, deadline_ms, delay_until_ms, try_deadline_ms;
	struct wp_up *up;
	char ep_key[ZM_ADDR_STRLEN];
	const char *ep_name;
	const struct zm_cfg_workload *ep_wl, *src_wl;
	char request_id[40];
	uint64_t req_bytes, resp_mark; /* request bytes parsed; ds->out.total at its start */
	bool mirrored;
	/* the response */
	unsigned int status;
	bool resp_started, resp_chunked, resp_body;
	char flags[8];	   /* Envoy-style response flags for metrics: UF, UT, DI, FI, ... */
	struct wp_h2d *h2; /* WP_DS_H2: the HTTP/2 server session (h2.h) */
};

struct wp_up {
	struct wp_up *next_idle;
	struct wp_worker *w;
	struct rt_timer tmr; /* mirror copy: its deadline; idle keep-alive: its idle timeout */
	struct hb_stream *st;
	struct wp_ds *ds;
	char key[ZM_ADDR_STRLEN];
	bool tcp, ok200, eof, idle, dead, discard;
	uint64_t opened_ms, idle_ms;
	http_parser p;
	struct wp_q in;
	struct wp_q out; /* bytes for the upstream the stream did not take yet */
	bool head_done, msg_done, keepalive, upgraded;
	bool shadow, shut;	   /* a mirror copy: out holds the request, no downstream */
	struct wp_up *next_shadow; /* the worker's shadows list */
	uint64_t shadow_until_ms;  /* a mirror copy still open then is reset */
	struct wp_ep_stat *stat;
	struct wp_cl_stat *cl;	   /* the cluster whose connection this is */
	unsigned int nreq, max_rq; /* requests sent; maxRequestsPerConnection */
	uint32_t idle_timeout_ms;
	struct wp_h2u *h2u; /* this stream carries an HTTP/2 session (h2.h) */
};

/* queue helpers (http.c) */
int wp_q_put(struct wp_q *q, const void *buf, size_t len);
int wp_q_printf(struct wp_q *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
size_t wp_q_size(const struct wp_q *q);
void wp_q_drop(struct wp_q *q, size_t n);
void wp_q_free(struct wp_q *q);
/* Write q then buf to s; what s refuses stays queued in q. Returns -errno on a dead stream. */
int wp_q_flush(struct wp_q *q, struct hb_stream *s);
int wp_head_parse(struct wp_head *h, const char *raw, size_t len, bool request);
void wp_head_free(struct wp_head *h);
bool wp_hop_header(const char *name);
/* Envoy's x-request-id for a request that came without one: a random UUID v4. */
void wp_request_id_new(char *buf, size_t len);
/* Does ops remove or set header name (so the original value does not go on)? */
bool wp_ops_removes(const struct l7_header_ops *ops, const char *name);

/* http.c, called from upstream.c */
void wp_ds_flush(struct wp_ds *ds);
void wp_ds_process(struct wp_ds *ds);
/* A local answer (and the end of this request). */
void wp_ds_reply(struct wp_ds *ds, unsigned int code, const char *flags, const char *body,
		 bool close_conn, const char *extra_headers);
void wp_ds_request_done(struct wp_ds *ds);
void wp_ds_upgraded(struct wp_ds *ds);
/* The upstream of ds failed before a response: retry or answer 503. */
void wp_ds_upstream_failed(struct wp_ds *ds, const char *why, bool connect_failure);
void wp_ds_dispatch_upstream(struct wp_ds *ds);
/* Arm ds's timer for a deadline just set (no-op when an earlier one is armed). */
void wp_ds_timer_update(struct wp_ds *ds);
void wp_ds_timer_init(struct wp_ds *ds);
/* The access record of a plain TCP stream relayed to upstream workload name. */
void wp_access_tcp(const struct wp_ds *ds, const char *name);
/* The route's mirror: a copy of the finished request to the mirror host, answer dropped. */
void wp_ds_mirror(struct wp_ds *ds);

/* upstream.c */
struct wp_up *wp_up_get(struct wp_worker *w, struct wp_ds *ds, const struct l7_endpoint *ep,
			bool tcp);
void wp_up_detach(struct wp_up *up, bool reusable);
void wp_up_send(struct wp_up *up);
/* Is an idle upstream stream to key ("ip:port") waiting on w? */
bool wp_up_idle_for(struct wp_worker *w, const char *key);
/* End the current request's share of its cluster's connectionPool counters. */
void wp_ds_pool_release(struct wp_ds *ds);
/*
 * A fire-and-forget request (bytes) to ep, dialed in family (ZM_AF_*, 0 any); its response is
 * discarded and its stream reset when still open after timeout_ms. -EBUSY when WP_SHADOW_MAX
 * copies are in flight on w already (nothing sent), -ENOMEM when no stream could be opened.
 */
int wp_up_shadow(struct wp_worker *w, const struct l7_endpoint *ep, uint8_t family,
		 uint32_t timeout_ms, const char *forwarded, const void *bytes, size_t len);

#endif
