/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A downstream connection: one inbound HBONE CONNECT stream, which is one client TCP
 * connection to a service (authority = the original VIP:port, userspace/ztunnel/README.md
 * rule 1) or to a pod that has this waypoint. It holds what every request on it shares (who
 * the client is, which service, the config snapshot) and the stream's byte queues; a codec
 * (struct wp_codec: HTTP/1 or HTTP/2) or a TCP relay turns its bytes into requests or passes
 * them on. Requests and mirror copies hold a reference, so what they read outlives the
 * stream (c->st is NULL once it closed).
 */
#ifndef WAYPOINT_CONN_H
#define WAYPOINT_CONN_H

#include "hbone/hbone.h"
#include "tls/tls.h"
#include "msg.h"
#include "wp.h"

struct wp_conn;
struct wp_relay;

/* A protocol on a downstream connection. Every member is called with the stream open. */
struct wp_codec {
	const char *name; /* "http", "http2" */
	/* Recognized: c->in holds the first bytes. 0, or -errno to reset the stream. */
	int (*start)(struct wp_conn *c);
	/* More bytes in c->in, or c->in_eof was just set. */
	void (*input)(struct wp_conn *c);
	/* c->out was drained: room for more. */
	void (*writable)(struct wp_conn *c);
	/* c->tmr fired. */
	void (*timer)(struct wp_conn *c);
	/* The stream is gone (c->st already NULL): let go of every request, free the state. */
	void (*close)(struct wp_conn *c);
	/* The process drains: finish what is in flight, take no new request, then end. */
	void (*drain)(struct wp_conn *c);
};

struct wp_conn {
	int refs;
	struct wp_worker *w;
	struct zm_link link;  /* in w->conns while the stream is open */
	struct hb_stream *st; /* NULL once the stream closed */
	struct wp_snap *snap;
	const struct zm_cfg_service *svc;  /* the service the client dialed, or NULL */
	const struct zm_cfg_workload *pod; /* or a pod that has us as waypoint */
	const struct zm_cfg_workload *src_wl;
	unsigned int port;
	struct zm_addr vip;
	char authority[HB_AUTHORITY_MAX];
	char peer[ZM_SPIFFE_ID_MAX]; /* the client's principal, without spiffe:// */
	char src_ns[64];
	char forwarded[HB_FORWARDED_MAX];
	struct wp_q in;	 /* client bytes not consumed yet */
	struct wp_q out; /* bytes for the client the stream did not take yet */
	bool in_eof, want_end, shut, paused;
	const struct wp_codec *codec; /* NULL until recognized */
	void *cx;		      /* the codec's state */
	struct wp_relay *relay;	      /* plain TCP, or after a WebSocket upgrade */
	struct rt_timer tmr;	      /* the codec's timeouts */
	struct wp_mcache mcache;      /* its requests' metric series (telemetry.c) */
};

/* A new connection for stream s, from the CONNECT req; one reference. NULL on no memory. */
struct wp_conn *wp_conn_new(struct wp_worker *w, struct hb_stream *s, const struct hb_request *req);
void wp_conn_ref(struct wp_conn *c);
void wp_conn_put(struct wp_conn *c);
/* Queue bytes for the client and write what the stream takes. */
void wp_conn_send(struct wp_conn *c, const void *buf, size_t len);
void wp_conn_flush(struct wp_conn *c);
/* Half-close toward the client once c->out is written (nothing is sent after). */
void wp_conn_end(struct wp_conn *c);
/* Abort the client's stream (RST_STREAM). */
void wp_conn_reset(struct wp_conn *c, uint32_t code);
/* The stream closed: off the worker's list (the references stay). */
void wp_conn_unlink(struct wp_conn *c);
/* The process drains: every open connection of worker w is told (wp_codec.drain). */
void wp_conns_drain(struct wp_worker *w);
/* Stop reading the client (c->in is full), and start again. */
void wp_conn_pause(struct wp_conn *c);
void wp_conn_resume(struct wp_conn *c);

#endif
