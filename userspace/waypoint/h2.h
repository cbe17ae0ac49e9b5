/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTP/2 inside tunnels (h2c with prior knowledge, as gRPC clients speak it), proxied per
 * request. A downstream CONNECT stream whose first bytes are the HTTP/2 preface gets an
 * nghttp2 server session (struct wp_h2d, h2down.c) fed from and writing to that stream.
 * Each request stream (struct wp_h2rq) is authorized, routed and balanced like an HTTP/1
 * request (same AuthorizationPolicy, VirtualService, DestinationRule and endpoint state)
 * and forwarded as a stream of an nghttp2 client session (struct wp_h2u, h2up.c) that rides
 * one upstream CONNECT stream to the chosen endpoint pod, shared by the requests of one
 * client connection to that endpoint and closed with it (the CONNECT's forwarded header
 * names that client). Bodies, responses and trailers (grpc-status) are
 * relayed frame by frame; flow-control windows are opened only as the other side takes
 * the bytes, so a slow reader slows its writer instead of filling memory.
 */
#ifndef WAYPOINT_H2_H
#define WAYPOINT_H2_H

#include <nghttp2/nghttp2.h>

#include "http.h"

#define WP_H2_MAX_HEADERS  100
#define WP_H2_HEADER_BYTES (64u << 10) /* a request's or response's header bytes */

struct wp_h2u;

struct wp_h2hdrs {
	struct l7_header h[WP_H2_MAX_HEADERS]; /* names lower-case (HTTP/2 requires it) */
	size_t n, bytes;
};

/* One request stream, known to both sessions (stream user data on each). */
struct wp_h2rq {
	struct wp_h2rq *prev, *next; /* the downstream session's requests */
	struct wp_h2d *d;
	int32_t sid;		       /* downstream stream id */
	struct wp_h2u *u;	       /* upstream session, NULL before dispatch or after */
	struct wp_h2rq *uprev, *unext; /* that session's requests */
	int32_t usid;		       /* upstream stream id, 0 none */
	struct wp_h2hdrs req, resp, trailers;
	const char *method, *path, *authority, *scheme; /* pointers into req */
	bool grpc, head_done, body_eof, deferred_up, deferred_down;
	bool resp_head, resp_eof, resp_submitted, done, local;
	bool shadow;	  /* a mirror copy: no client stream, its answer is dropped */
	struct wp_q body; /* request body not yet taken by the upstream session */
	struct wp_q copy; /* the whole body, for retries, while copy_ok */
	bool copy_ok;
	struct wp_q rbody; /* response body not yet taken by the downstream session */
	const struct l7_http_route *route;
	const struct l7_dest *dest;
	struct wp_target tgt;
	struct wp_cl_stat *counted;
	struct wp_ep_stat *active; /* the endpoint this request counts in (LEAST_REQUEST) */
	unsigned int attempts, status;
	char grpc_status[8], flags[8], request_id[40];
	char path_up[2048];
	uint64_t start_ms, deadline_ms, delay_until_ms, try_deadline_ms, req_bytes, resp_bytes;
	uint64_t consumed; /* request bytes whose window we gave back to the client */
};

struct wp_h2d {
	struct wp_ds *ds;
	nghttp2_session *s;
	struct wp_h2rq *rqs;
	bool in_recv, dead;
};

/* An HTTP/2 client session over one upstream CONNECT stream. */
struct wp_h2u {
	struct wp_h2u *next; /* the worker's list */
	struct wp_worker *w;
	struct wp_up *up; /* the CONNECT stream's holder (up->h2u points back) */
	nghttp2_session *s;
	struct wp_h2d *owner;	  /* the client connection whose requests this carries */
	char key[ZM_ADDR_STRLEN]; /* the endpoint */
	struct wp_cl_stat *cl;
	struct wp_h2rq *rqs;
	unsigned int streams;
	uint64_t idle_ms;
	struct rt_timer tmr; /* idle: ended after WP_UP_IDLE_MS without requests */
	bool ok200, in_recv, dead;
};

/* h2down.c */
/* Copy one header into h; -E2BIG past WP_H2_MAX_HEADERS or WP_H2_HEADER_BYTES. */
int wp_h2hdrs_add(struct wp_h2hdrs *h, const uint8_t *name, size_t nlen, const uint8_t *value,
		  size_t vlen);
void wp_h2hdrs_clear(struct wp_h2hdrs *h);
bool wp_h2_preface(const char *buf, size_t len);
int wp_h2d_start(struct wp_ds *ds);
void wp_h2d_input(struct wp_ds *ds, const uint8_t *buf, size_t len);
void wp_h2d_pump(struct wp_h2d *d);
void wp_h2d_close(struct wp_ds *ds);
void wp_h2d_tick(struct wp_ds *ds);
/* The earliest deadline of ds's requests (0: none). */
uint64_t wp_h2d_next_deadline(const struct wp_ds *ds);
/* From h2up.c: the upstream's answer for rq. */
void wp_h2rq_on_response(struct wp_h2rq *rq);
void wp_h2rq_on_data(struct wp_h2rq *rq);
void wp_h2rq_on_end(struct wp_h2rq *rq);
/* The upstream stream of rq ended before its response ended (reset, connection lost). */
void wp_h2rq_on_upstream_failed(struct wp_h2rq *rq, bool connect_failure, const char *why);
/* The upstream took n request-body bytes of rq: open the client's window by n. */
void wp_h2rq_consumed(struct wp_h2rq *rq, size_t n);

/* h2up.c */
/* Submit rq on a session to rq->tgt.ep; false (errno) when none can be had. */
bool wp_h2u_submit(struct wp_worker *w, struct wp_h2rq *rq, const nghttp2_nv *nv, size_t n);
/* The client connection d is gone: close the sessions that carried its requests. */
void wp_h2u_close_owned(struct wp_worker *w, const struct wp_h2d *d);
void wp_h2u_cancel(struct wp_h2rq *rq);		    /* reset rq's upstream stream, forget rq */
void wp_h2u_resume(struct wp_h2rq *rq);		    /* more request body or its end */
void wp_h2u_consumed(struct wp_h2rq *rq, size_t n); /* the client took n response bytes */
void wp_h2u_pump(struct wp_h2u *u);
/* hb_stream callbacks of an upstream stream carrying a session (up->h2u set). */
void wp_h2u_on_response(struct wp_up *up, int status);
void wp_h2u_on_data(struct wp_up *up, const uint8_t *buf, size_t len);
void wp_h2u_on_writable(struct wp_up *up);
void wp_h2u_on_close(struct wp_up *up);

#endif
