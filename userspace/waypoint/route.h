/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The decisions of the request lifecycle, as Istio's generated Envoy configuration makes them,
 * for any protocol: L7 authorization, the VirtualService route (its CORS policy, redirect,
 * direct response and fault abort are answers the waypoint gives itself), the head sent
 * upstream (path and authority rewrites, header operations in Envoy's order, request id),
 * the response's header operations, and the retry conditions. They read and write a struct
 * wp_req and never send anything: request.c acts on them. The pure parts live in lib/l7.
 */
#ifndef WAYPOINT_ROUTE_H
#define WAYPOINT_ROUTE_H

#include "request.h"

/* A local answer. */
struct wp_answer {
	unsigned int code;
	const char *flags; /* Envoy response flags: RBAC, NR, FI, ... ("-" none) */
	const char *body;
	int grpc_status;  /* >= 0: a gRPC answer with this status (fault abort grpcStatus) */
	bool route_ops;	  /* the route's response header operations apply (its own action) */
	struct wp_hdrs h; /* extra fields (location, CORS) */
	char buf[2048];	  /* backing store for body or a field built here */
};

#define WP_ANSWER_INIT                                                                             \
	{                                                                                          \
		.grpc_status = -1                                                                  \
	}

enum wp_route_verdict {
	WP_ROUTE_FORWARD, /* r->route and r->dest are set (route NULL: no VirtualService) */
	WP_ROUTE_ANSWER,  /* answer a, not the endpoint */
};

/* The l7 view of r (borrowed pointers). */
void wp_route_view(const struct wp_req *r, struct l7_request *out);
/* authorize -> route -> CORS preflight -> fault abort (the fault delay is request.c's). */
enum wp_route_verdict wp_route_decide(struct wp_req *r, struct wp_answer *a);
/* The route's action after the fault delay: redirect, direct response, or r->dest picked. */
enum wp_route_verdict wp_route_action(struct wp_req *r, struct wp_answer *a);
void wp_answer_free(struct wp_answer *a);
/* r->up_path, r->up_authority and r->up_h from r's head and its route. 0 or -ENOMEM. */
int wp_route_upstream_head(struct wp_req *r);
/* The route's response header operations (ops) and the CORS fields, applied to resp. */
void wp_route_response(const struct wp_req *r, struct wp_resp *resp, bool ops);
/* Attempts allowed in all (1 + retries), and each one's time (perTryTimeout, 0 none). */
unsigned int wp_route_attempts(const struct wp_req *r);
uint32_t wp_route_per_try_ms(const struct wp_req *r);
/* Does retryOn cover a response (status, and grpc-status or NULL)? */
bool wp_route_retry_status(const struct wp_req *r, unsigned int status, const char *grpc_status);
/* Does retryOn cover an exchange that ended without a response (timeout: per-try timeout)? */
bool wp_route_retry_failure(const struct wp_req *r, enum wp_up_fail why, bool timeout);
/* Envoy's HTTP-to-gRPC status for answers the waypoint makes itself. */
unsigned int wp_grpc_status_of(unsigned int http);

#endif
