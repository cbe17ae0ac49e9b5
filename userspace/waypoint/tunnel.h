/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Upstream tunnels: one HBONE CONNECT stream from the waypoint to an endpoint pod (authority
 * podIP:targetPort, the waypoint's certificate, the pod's identity expected), on a pooled
 * HBONE connection of the worker (rt/hbset.h). A tunnel has one owner at a time (an HTTP/1
 * upstream connection, an HTTP/2 upstream session, or a TCP relay) that gets its events
 * through struct wp_tun_ops; ownership moves when a WebSocket upgrade turns an HTTP/1
 * connection into a relay. Bytes the stream does not take yet wait in the tunnel's queue.
 * Each open tunnel counts in its cluster's connections (DestinationRule tcp.maxConnections).
 */
#ifndef WAYPOINT_TUNNEL_H
#define WAYPOINT_TUNNEL_H

#include "msg.h"
#include "wp.h"

struct wp_tun;
struct wp_cl_stat;

/* What a tunnel tells its owner (ud). */
struct wp_tun_ops {
	/* The CONNECT was answered: 200 (ok) or another status (the stream then closes). */
	void (*opened)(struct wp_tun *t, void *ud, bool ok);
	/* Bytes from the pod; return how many were taken (fewer pauses: wp_tun_resume()). */
	size_t (*data)(struct wp_tun *t, void *ud, const uint8_t *buf, size_t len);
	void (*eof)(struct wp_tun *t, void *ud);
	/* Queued bytes went out: room for more. */
	void (*writable)(struct wp_tun *t, void *ud);
	/* The stream is gone (error: the HBONE code, 0 after a clean end). t is freed after. */
	void (*closed)(struct wp_tun *t, void *ud, uint32_t error);
};

struct wp_tun {
	struct wp_worker *w;
	struct hb_stream *st; /* NULL once closed */
	const struct wp_tun_ops *ops;
	void *ud;
	char key[ZM_ADDR_STRLEN]; /* the endpoint, "ip:port" (IPv6 bracketed) */
	struct wp_q out;
	struct wp_q held; /* received, not taken by the previous owner: the new owner's first */
	bool ok200, eof, want_shut, shut, dead;
	struct wp_cl_stat *cl;
	uint64_t opened_ms;
};

/*
 * A tunnel to ip:port of endpoint workload wl, carrying forwarded (the client, "for=..."),
 * owned by ops/ud and counted in cl (may be NULL) against its max_conns (0: no limit). NULL
 * with errno when no stream could be had: EBUSY when cl already has max_conns connections.
 */
struct wp_tun *wp_tun_open(struct wp_worker *w, const struct zm_addr *ip, unsigned int port,
			   const struct zm_cfg_workload *wl, const char *forwarded,
			   struct wp_cl_stat *cl, unsigned int max_conns,
			   const struct wp_tun_ops *ops, void *ud);
/* Queue bytes and write what the stream takes. 0, or -errno on a dead tunnel. */
int wp_tun_write(struct wp_tun *t, const void *buf, size_t len);
int wp_tun_flush(struct wp_tun *t);
size_t wp_tun_queued(const struct wp_tun *t);
/* Half-close once the queue is written. */
void wp_tun_end(struct wp_tun *t);
void wp_tun_resume(struct wp_tun *t);
/* Hand the tunnel to a new owner. */
void wp_tun_own(struct wp_tun *t, const struct wp_tun_ops *ops, void *ud);
/* The owner lets go: the stream is reset and the tunnel frees itself when it closes. */
void wp_tun_abort(struct wp_tun *t);

/* hb_stream callbacks of every client (upstream) stream (workers.c installs them). */
void wp_tun_on_response(struct hb_stream *s, int status);
size_t wp_tun_on_data(struct hb_stream *s, const uint8_t *buf, size_t len);
void wp_tun_on_eof(struct hb_stream *s);
void wp_tun_on_writable(struct hb_stream *s);
void wp_tun_on_close(struct hb_stream *s, uint32_t error);

#endif
