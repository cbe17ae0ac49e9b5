/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One worker's HBONE connections, client (the pool) and server (accepted on 15008), driven by
 * lib/hbone on the worker's loop with one policy for every daemon (userspace/lib/hbone/README.md):
 *  - Pooling: a client connection has a key (the daemon's: ztunnel uses source identity,
 *    expected destination identity, source IP and destination ip:port); rt_hset_find() returns
 *    the first connection of a key with a stream slot free (a connection still handshaking
 *    counts its queued streams against HB_MAX_STREAMS), else the daemon dials a new one. A
 *    worker is single-threaded, so creation is serialised per key for free.
 *  - Health: every connection ticks once a second on its own timer (hb_conn_tick: handshake
 *    timeout, PING every 10 s, dropped after 20 s without an answer).
 *  - Idle release: a client connection without streams for idle_ms (counted from its last
 *    stream) is sent a GOAWAY, flushed best-effort, and released with its TLS state.
 *  - Arming: after every batch each connection is re-armed from hb_conn_want() (a stream
 *    written by another connection's callback may have queued frames). want()==0 on a closed
 *    connection releases it; on a live one (nothing to wait for yet) it waits for EPOLLIN, so a
 *    quiet connection is never dropped for being quiet.
 *  - Release: through the loop's deferred release; hb_conn_free() runs after the batch and
 *    reports CANCEL to live streams then, while the struct rt_hconn is still readable.
 *  - Trim: when no connection of the set had any I/O for RT_HSET_TRIM_MS, the worker's spare
 *    HBONE buffers go back (hb_thread_trim) and so does the heap's free memory (malloc_trim),
 *    once per quiet period: a node that carried a bulk transfer returns to its idle RSS.
 * The daemon keeps its stream handlers (struct hb_callbacks); hb_conn_ud() of any connection
 * is its struct rt_hconn.
 */
#ifndef ZMESH_RT_HBSET_H
#define ZMESH_RT_HBSET_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/addr.h"
#include "common/list.h"
#include "hbone/hbone.h"
#include "rt/loop.h"

#define RT_HCONN_KEY_LEN 640
#define RT_HCONN_TICK_MS 1000
#define RT_HSET_TRIM_MS	 2000

struct rt_hset;

struct rt_hconn {
	struct rt_ev ev; /* first: the loop hands us &ev */
	struct rt_timer tick;
	struct zm_link link; /* in its set */
	struct rt_hset *set;
	struct hb_conn *hc;
	bool server;
	bool connecting; /* client: TCP connect in progress */
	bool dead;	 /* out of the set, released after the batch */
	uint64_t idle_since_ms;
	struct zm_addr local, peer; /* of the outer TCP connection */
	unsigned int local_port, peer_port;
	char key[RT_HCONN_KEY_LEN];	  /* client: pool key; server: "inbound" */
	char err[RT_HCONN_KEY_LEN + 128]; /* why it failed (first reason), "" while fine */
	void *ud;			  /* the daemon's */
};

struct rt_hset_ops {
	const struct hb_callbacks *client; /* streams of client connections */
	const struct hb_callbacks *server; /* streams of server connections */
	/* A connection ended (err 0 clean, else -errno with reason); h->err is set by then. */
	void (*on_closed)(struct rt_hconn *h, int err, const char *reason);
	/* Handshake and SETTINGS done (the daemon's callbacks' on_ready is not used). */
	void (*on_ready)(struct rt_hconn *h);
	atomic_int *n_client, *n_server; /* optional process-wide gauges, kept up to date */
};

struct rt_hset {
	struct rt_loop *loop;
	struct zm_link conns; /* struct rt_hconn.link */
	uint64_t idle_ms;
	bool draining; /* rt_hset_drain(): a connection without streams is closed at once */
	struct rt_hset_ops ops;
	struct hb_callbacks client_cbs, server_cbs; /* ops' with on_conn_close wrapped */
	struct rt_timer trim;			    /* every RT_HSET_TRIM_MS: quiet? trim */
	uint64_t io, io_seen; /* connection events, and at the last trim tick */
	bool trimmed;	      /* trimmed since the last I/O */
};

/* Attach a set to loop l (adds its end-of-batch hook). 0 or -errno. */
int rt_hset_init(struct rt_hset *s, struct rt_loop *l, const struct rt_hset_ops *ops,
		 uint64_t idle_ms);
/* Release every connection (their streams get CANCEL). */
void rt_hset_fini(struct rt_hset *s);

/*
 * Drain (the process stops): every connection gets a GOAWAY, so peers open no new streams
 * here; one without streams is released at once, the others as soon as their last stream
 * ends (checked on each tick). Streams in flight are never cut by this.
 */
void rt_hset_drain(struct rt_hset *s);

/* A client connection of key with a stream slot free, NULL when none. */
struct rt_hconn *rt_hset_find(struct rt_hset *s, const char *key);

/*
 * Add a client connection on fd (non-blocking, connect() in progress or done) with ssl (from
 * zm_tls_client_ssl_new; owned from now on, as is fd). Returns it, or NULL with errno, having
 * closed fd and freed ssl.
 */
struct rt_hconn *rt_hset_client_new(struct rt_hset *s, const char *key, int fd, SSL *ssl, void *ud);
/* The same for an accepted fd (server role); local and peer come from the socket. */
struct rt_hconn *rt_hset_server_new(struct rt_hset *s, int fd, SSL *ssl, void *ud);

/* A stream was just opened on h: its idle time restarts, its fd is armed for the request. */
void rt_hconn_used(struct rt_hconn *h);

/* Client connections (server false) or server ones in this set. */
unsigned int rt_hset_count(const struct rt_hset *s, bool server);

static inline struct rt_hconn *rt_hconn_of(const struct hb_conn *c)
{
	return (struct rt_hconn *)hb_conn_ud(c);
}

static inline struct rt_hconn *rt_hconn_of_stream(const struct hb_stream *st)
{
	return rt_hconn_of(hb_stream_conn(st));
}

#endif
