/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Plain TCP between a downstream connection and a tunnel to an endpoint, bytes unchanged both
 * ways, half-closes passed on, a reset answered with a reset: the waypoint's path for streams
 * that are not HTTP, and for a WebSocket connection after the endpoint's 101. Each side reads
 * only while the other has room (WP_IN_HIGH).
 */
#ifndef WAYPOINT_RELAY_H
#define WAYPOINT_RELAY_H

#include "conn.h"
#include "tunnel.h"

struct wp_relay {
	struct wp_conn *c; /* a reference */
	struct wp_tun *t;  /* NULL once closed */
	bool sent_eof;
	uint32_t up_error; /* the endpoint's stream ended with this error (0: none) */
	bool observed;	   /* a plain TCP stream: obs is its telemetry (not after a 101) */
	struct wp_tcp_obs obs;
};

/*
 * Relay c and t from now on: what c->in holds goes first, then t's held bytes to c. With obs
 * (a plain TCP stream; copied), its open and close are recorded.
 */
int wp_relay_start(struct wp_conn *c, struct wp_tun *t, const struct wp_tcp_obs *obs);
/* c->in has more, or the client half-closed (c->in_eof). */
void wp_relay_input(struct wp_conn *c);
/* c->out drained. */
void wp_relay_writable(struct wp_conn *c);
/* The client's stream is gone (error: its reset code, 0 clean): the tunnel is reset. */
void wp_relay_close(struct wp_conn *c, uint32_t error);

#endif
