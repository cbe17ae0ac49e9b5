/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zmesh-ca's connection and request objects, shared by the three files that handle them:
 * conn.c (the socket, TLS, the phases and their deadlines), rpc.c (the HTTP/2 session and the
 * gRPC calls on it) and limits.c (admission and eviction). Everything here runs on the thread
 * of the worker that accepted the connection.
 */
#ifndef ZMESH_CA_CONN_H
#define ZMESH_CA_CONN_H

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>

#include "ca.h"
#include "common/list.h"
#include "rt/loop.h"

/* One request (an HTTP/2 stream). */
struct zca_stream {
	struct zca_stream *next;
	int32_t id;
	char method[16], path[128], ctype[64];
	char bearer[4096]; /* the authorization header's token ("" when none) */
	uint8_t *body;
	size_t len;
	uint64_t start_ms; /* its HEADERS began (the loop's clock): the request deadline */
	bool answered;	   /* a response was submitted: ignore further input */
	bool ended;	   /* the client sent END_STREAM */
	size_t discarded;  /* bytes received after the answer */
	uint8_t *resp;
	size_t resp_len, resp_off;
	int status;
	char msg[320];
};

struct zca_conn {
	struct rt_ev ev;	  /* first: the loop hands us &ev */
	struct rt_timer deadline; /* of the phase */
	struct rt_loop *loop;
	struct zca *z;
	struct zca_worker *w;
	/* Written by zca_evict_track() under z->evict_lock (other workers read them there): */
	enum zca_phase phase;
	uint64_t phase_ms;     /* when the phase began (rt_now_ms clock) */
	struct zm_link lru;    /* in z's list of its phase (handshaking, idle), or w->evict_q */
	bool evicting;	       /* picked by an eviction: closed by w's next wake-up */
	struct zca_peer *peer; /* its source address's entry in the peer table */
	SSL *ssl;
	nghttp2_session *h2;
	struct zca_stream *streams;
	struct zca_caller caller;
	bool handshaken;
	uint8_t *out; /* bytes nghttp2 produced that TLS did not take yet */
	size_t out_len, out_off, out_cap;
};

/*
 * conn.c. zca_conn_start: serve fd (admitted: counted in z->nconns and in peer, whose count
 * it now owns) on loop l; addr is "ip:port" for the logs. zca_conn_phase: enter a phase (its
 * eviction list and deadline; a no-op once closed). zca_conn_close: close now (idempotent),
 * releasing its slot and peer count; freed after the loop's batch.
 */
void zca_conn_start(struct zca *z, struct rt_loop *l, int fd, const char *addr,
		    struct zca_peer *peer);
void zca_conn_phase(struct zca_conn *c, enum zca_phase ph);
void zca_conn_close(struct zca_conn *c);

/*
 * limits.c: make c evictable in phase ph (handshake, idle) or not (busy; closing: for good).
 * Sets c->phase and, on a change of phase, c->phase_ms. A connection picked for eviction
 * stays picked until it closes.
 */
void zca_evict_track(struct zca_conn *c, enum zca_phase ph, bool closing);

/* rpc.c: the HTTP/2 server session of a handshaken connection (SETTINGS queued). 0, -ENOMEM. */
int zca_h2_new(struct zca_conn *c);

#endif
