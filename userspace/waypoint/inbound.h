/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Inbound CONNECT streams: the hb_stream callbacks of every server stream (workers.c installs
 * them). A stream becomes a downstream connection (conn.h), classified by its first bytes: the
 * HTTP/2 preface makes it HTTP/2 (h2down.c), a request line HTTP/1 (h1down.c), anything else
 * plain TCP relayed to one endpoint (relay.c; the VirtualService's tcp route, if any).
 */
#ifndef WAYPOINT_INBOUND_H
#define WAYPOINT_INBOUND_H

#include "hbone/hbone.h"

void wp_in_on_request(struct hb_stream *s, const struct hb_request *req);
size_t wp_in_on_data(struct hb_stream *s, const uint8_t *buf, size_t len);
void wp_in_on_eof(struct hb_stream *s);
void wp_in_on_writable(struct hb_stream *s);
void wp_in_on_close(struct hb_stream *s, uint32_t error);

#endif
