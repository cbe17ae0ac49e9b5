/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the HTTP/2 codecs share: h2down.c (the client's side: an nghttp2 server session per
 * downstream connection that starts with the HTTP/2 preface, h2c with prior knowledge as gRPC
 * clients speak it) and h2up.c (an nghttp2 client session per client connection and endpoint).
 */
#ifndef WAYPOINT_H2_H
#define WAYPOINT_H2_H

#include <stdbool.h>
#include <string.h>

#include "conn.h"

/* Connection-specific fields HTTP/2 forbids (RFC 9113 8.2.2), and Host (:authority there). */
static inline bool wp_h2_conn_field(const char *name, const char *value)
{
	if (!strcmp(name, "te"))
		return strcmp(value, "trailers") != 0;
	return !strcmp(name, "connection") || !strcmp(name, "keep-alive") ||
	       !strcmp(name, "proxy-connection") || !strcmp(name, "transfer-encoding") ||
	       !strcmp(name, "upgrade") || !strcmp(name, "host");
}

/* The client connection c is gone: end the upstream sessions that carried its requests. */
void wp_h2up_close_owned(struct wp_worker *w, const struct wp_conn *c);

#endif
