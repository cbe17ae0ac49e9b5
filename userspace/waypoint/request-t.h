/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The types of one request (request.h says what it is and how it lives): struct wp_req, the
 * response head, and the tables through which the lifecycle, the codecs and the upstream
 * codecs reach each other. Types only, so that an upstream codec (h1up.c, h2up.c), which the
 * lifecycle uses, can know a request without depending on the lifecycle.
 */
#ifndef WAYPOINT_REQUEST_T_H
#define WAYPOINT_REQUEST_T_H

#include "conn.h"
#include "msg.h"
#include "pick.h"

enum wp_proto { WP_H1 = 1, WP_H2 = 2 };

enum wp_req_state {
	WP_RQ_HEAD,	/* the head is being read */
	WP_RQ_DELAY,	/* a fault delay runs */
	WP_RQ_PENDING,	/* waiting for a connection (connectionPool.tcp.maxConnections) */
	WP_RQ_UPSTREAM, /* an exchange with an endpoint is in flight */
	WP_RQ_DONE,	/* finished: logged and counted; the codec may still hold it */
};

/* A response head on its way to the client. */
struct wp_resp {
	unsigned int status;
	struct wp_hdrs h; /* regular fields: no pseudo-headers, no framing or hop-by-hop ones */
	int64_t len;	  /* the body's length when known (Content-Length), else -1 */
};

struct wp_req;
struct wp_tun;

/* What the lifecycle asks of the client's side: a codec, or a mirror copy's sink. */
struct wp_down_ops {
	/* The response head; end: no body follows. */
	void (*head)(struct wp_req *r, const struct wp_resp *resp, bool end);
	void (*body)(struct wp_req *r, const void *p, size_t n);
	/* The response is complete (trailers may be empty). */
	void (*end)(struct wp_req *r, const struct wp_hdrs *trailers);
	/* The response cannot be completed after its head went out: abort the client's stream. */
	void (*reset)(struct wp_req *r);
	/* n more bytes of the request body went on: the client may send more. */
	void (*consumed)(struct wp_req *r, size_t n);
	/* Response bytes handed to the codec that the client has not taken yet. */
	size_t (*pending)(const struct wp_req *r);
	/* The endpoint switched protocols (WebSocket, 101): the codec relays t as plain TCP. */
	void (*upgraded)(struct wp_req *r, const struct wp_resp *resp, struct wp_tun *t);
};

/* Why an exchange ended without a response (Envoy's reset reasons, for retryOn). */
enum wp_up_fail {
	WP_UPF_CONNECT,	     /* no connection: dial, TLS, or the CONNECT refused */
	WP_UPF_REFUSED,	     /* the endpoint refused the stream (HTTP/2 REFUSED_STREAM) */
	WP_UPF_RESET_BEFORE, /* reset before the request was sent */
	WP_UPF_RESET,	     /* reset or closed before the response was complete */
	WP_UPF_PROTOCOL,     /* the response could not be parsed */
};

/* What an upstream codec reports about r's exchange: head, body*, end; or failed. */
struct wp_up_events {
	void (*head)(struct wp_req *r, struct wp_resp *resp, bool end);
	void (*body)(struct wp_req *r, const void *p, size_t n);
	void (*end)(struct wp_req *r, const struct wp_hdrs *trailers);
	void (*failed)(struct wp_req *r, enum wp_up_fail why, const char *text);
	/* n bytes of r->body were sent (and dropped from it). */
	void (*taken)(struct wp_req *r, size_t n);
	/* A 101 to a WebSocket request: t carries the rest; the exchange is over. */
	void (*upgraded)(struct wp_req *r, struct wp_resp *resp, struct wp_tun *t);
};

/* An upstream codec: one exchange per request attempt, state in r->up. */
struct wp_up_ops {
	const char *name;
	/*
	 * Send r's upstream head (r->up_*) to r->tgt's endpoint, then r->body as it comes.
	 * 0; -EBUSY when a new connection would be needed and the cluster allows none
	 * (nothing started); -errno when no stream could be opened.
	 */
	int (*start)(struct wp_req *r);
	/* More bytes in r->body, or r->body_eof was set. */
	void (*pump)(struct wp_req *r);
	/* The client took n response bytes: take more from the endpoint. */
	void (*drained)(struct wp_req *r, size_t n);
	/* Abandon the exchange (reset, its connection not reused). r->up is NULL after. */
	void (*cancel)(struct wp_req *r);
	/* The exchange completed: keep its connection for another request if it can be. */
	void (*release)(struct wp_req *r);
	/* Could r start without a new connection (an idle one to its endpoint is there)? */
	bool (*has_idle)(struct wp_req *r);
};

extern const struct wp_up_ops wp_h1up_ops, wp_h2up_ops;

struct wp_req {
	struct wp_conn *c; /* a reference */
	enum wp_proto proto;
	const struct wp_down_ops *down;
	void *cx; /* the codec's */
	const struct wp_up_events *ev;
	enum wp_req_state state;
	bool released, finished;

	/* the request head, as the client sent it */
	char *method, *path, *authority, *scheme; /* owned; authority "" when none */
	struct wp_hdrs h;			  /* regular fields, lower-case names */
	unsigned int minor;			  /* HTTP/1.<minor> */
	bool grpc, websocket;
	int64_t body_len; /* Content-Length, -1 when not known */

	/* the request body */
	struct wp_q body; /* not yet sent upstream */
	struct wp_q copy; /* all of it while copy_ok, for retries and mirrors */
	bool copy_ok, body_eof;
	uint64_t head_bytes; /* of the request head, as the client sent it */
	uint64_t req_bytes;  /* body bytes from the client */
	uint64_t consumed;   /* of which given back to the client as consumed */

	/* the decisions */
	const struct l7_http_route *route;
	const struct l7_http_match *match; /* the route's match that selected it, NULL none */
	const struct l7_dest *dest;
	bool cors; /* a CORS request whose origin the route's policy allows */
	struct wp_target tgt;
	struct wp_cl_stat *counted; /* the cluster whose requests this one counts in */
	struct wp_ep_stat *active;  /* the endpoint it counts in (LEAST_REQUEST) */
	unsigned int attempts;
	/* the head sent upstream (route.c: rewrites and header operations applied) */
	char *up_path, *up_authority;
	struct wp_hdrs up_h;

	/* the exchange in flight */
	const struct wp_up_ops *up_ops;
	void *up;

	/* the response */
	unsigned int status;
	bool resp_started, resp_done, local, shadow, mirrored;
	char grpc_status[8], flags[8], request_id[40];
	uint64_t resp_bytes;

	uint64_t start_ms, deadline_ms, delay_until_ms, try_deadline_ms;
	struct rt_timer tmr;
};

#define WP_REQ_GRPC_CT "application/grpc"

#endif
