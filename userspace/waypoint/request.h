/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One request, whatever protocol carried it (the model is h2o's h2o_req_t, and Envoy's split
 * between codecs and the router filter). A codec (h1down.c for HTTP/1, h2down.c for HTTP/2)
 * translates the client's bytes into a struct wp_req and its response back into bytes, and
 * nothing else; every semantic is the lifecycle's (request.c), written once:
 *
 *   authorize -> route -> fault -> pick -> forward -> retry -> mirror -> finish
 *
 * (route.c holds the decisions the lifecycle makes: authorization, the VirtualService route and
 * the local answers it gives, the upstream head, response header operations, retry
 * conditions.) An exchange with an endpoint is an upstream codec's (h1up.c, h2up.c) behind
 * struct wp_up_ops; it reports back through struct wp_up_events. Neither side calls the other
 * by name: the codecs above and the upstreams below see only these tables, so no file depends
 * on a file that depends on it.
 *
 * Lifetime: the codec creates a request (wp_req_new) and lets go of it (wp_req_release) when
 * its stream is over; the lifecycle finishes it exactly once (one access record, one metrics
 * sample, every counter released) when the response is complete, the request failed, or the
 * client went away. It is freed when both have happened.
 */
#ifndef WAYPOINT_REQUEST_H
#define WAYPOINT_REQUEST_H

#include "request-t.h"

/* ---- for codecs ---- */

/* A request of connection c (one more reference on it). NULL on no memory. */
struct wp_req *wp_req_new(struct wp_conn *c, enum wp_proto proto, const struct wp_down_ops *down,
			  void *cx);
/* Set method, path, authority, scheme (copies). 0 or -ENOMEM. */
int wp_req_set_head(struct wp_req *r, const char *method, size_t mlen, const char *path,
		    size_t plen, const char *authority, size_t alen, const char *scheme);
/* The head is complete: authorize, route, and answer or forward. */
void wp_req_start(struct wp_req *r);
/* Request body bytes, and the end of the request. */
void wp_req_body(struct wp_req *r, const void *p, size_t n);
void wp_req_body_end(struct wp_req *r);
/* The client took n response bytes (the codec's pending() went down by n). */
void wp_req_drained(struct wp_req *r, size_t n);
/* A local answer (code, Envoy response flags, body) that ends r; gRPC calls get gRPC's. */
void wp_req_reply(struct wp_req *r, unsigned int code, const char *flags, const char *body);
/*
 * The codec is done with r (client_gone: its stream was reset or closed before the response
 * completed). A request in flight is abandoned and finished ("DC"); r is freed later.
 */
void wp_req_release(struct wp_req *r, bool client_gone);

#endif
