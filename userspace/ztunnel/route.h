/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Routing decisions of the ztunnel, as pure functions over one config snapshot: which local
 * workload a captured connection comes from, where it goes (service VIP -> a healthy endpoint
 * picked at random weighted by capacity; pod IP -> that workload; a service or pod with a
 * waypoint -> the waypoint; anything else passed through unchanged) and how (HBONE to
 * <pod>:15008, plain TCP, or a same-node splice without TLS; plain TCP too when the
 * destination's PeerAuthentication is DISABLE). Nothing here does I/O, so the
 * unit tests (tests/unit/test_ztunnel_route.c) drive it with hand-written configs; the random
 * number is an argument for the same reason.
 */
#ifndef ZTUNNEL_ROUTE_H
#define ZTUNNEL_ROUTE_H

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>

#include "config/model.h"

/*
 * A config snapshot plus what the ztunnel derives from it once: the endpoints of every service
 * (workloads whose `services` map names it). Refcounted by state.c; immutable once built.
 */
struct zt_svc_ep {
	const struct zm_cfg_workload *wl;
	const struct zm_cfg_svc_ref *ref; /* the workload's entry for this service */
};

struct zt_snap {
	struct zm_config *cfg;
	const char *node;	/* this ztunnel's node name (not owned) */
	struct zt_svc_ep **eps; /* per service (index = svc - cfg->services) */
	size_t *n_eps;
	int refs;	  /* guarded by state.c's lock */
	__u64 generation; /* 1 for the first snapshot, +1 per reload */
};

/* Build the derived indexes of cfg (taking ownership of cfg). NULL with errno on ENOMEM. */
struct zt_snap *zt_snap_build(struct zm_config *cfg, const char *node);
/* Release a snapshot directly (state.c uses refcounts on top). NULL is fine. */
void zt_snap_destroy(struct zt_snap *s);

enum zt_route_kind {
	ZT_ROUTE_REFUSE = 0,	/* close the client connection; see outcome */
	ZT_ROUTE_PASSTHROUGH,	/* not a mesh destination: connect to it unchanged */
	ZT_ROUTE_TCP,		/* plain TCP to a mesh workload that does not speak HBONE */
	ZT_ROUTE_LOCAL,		/* destination on this node: plain, spliced, no TLS */
	ZT_ROUTE_HBONE,		/* HBONE to dial_addr:dial_port, CONNECT authority target */
	ZT_ROUTE_MTLS_DISABLED, /* plain TCP to an HBONE workload: PeerAuthentication DISABLE */
};

/* Outcomes of a connection: the access log prints the name and a hint built from it. */
#define ZT_OUTCOMES(X)                                                                             \
	X(OK, "ok", "connection completed")                                                        \
	X(UNKNOWN_SOURCE, "unknown_source", "source address is not a workload of this node")       \
	X(NO_ENDPOINT, "no_healthy_endpoint", "service has no healthy endpoint for the port")      \
	X(NO_PORT, "no_such_port", "service does not expose the destination port")                 \
	X(DIAL_FAILED, "dial_failed", "upstream connect failed")                                   \
	X(DIAL_TIMEOUT, "dial_timeout", "upstream connect timed out: is the port blocked?")        \
	X(UPSTREAM_RESET, "upstream_reset", "upstream reset the connection")                       \
	X(DOWNSTREAM_RESET, "downstream_reset", "client reset the connection")                     \
	X(TLS_FAILED, "tls_failed", "TLS or HTTP/2 to the peer ztunnel failed")                    \
	X(HBONE_REFUSED, "hbone_refused", "peer answered the CONNECT with an error status")        \
	X(BAD_REQUEST, "bad_request", "malformed HBONE request (400)")                             \
	X(NO_WORKLOAD, "no_local_workload", "no such workload on this node (503)")                 \
	X(NO_IDENTITY, "no_identity", "no certificate for the workload identity")                  \
	X(INTERNAL, "internal_error", "ztunnel ran out of a resource")                             \
	X(DENIED, "denied", "denied by an authorization policy")                                   \
	X(PROXY_PORT, "proxy_port", "dialled a capture port directly: nothing to proxy to")

enum zt_outcome {
#define ZT_OUTCOME_ENUM(n, s, h) ZT_OUT_##n,
	ZT_OUTCOMES(ZT_OUTCOME_ENUM)
#undef ZT_OUTCOME_ENUM
	    ZT_OUT_MAX
};

const char *zt_outcome_name(enum zt_outcome o);
const char *zt_outcome_help(enum zt_outcome o);

struct zt_route {
	enum zt_route_kind kind;
	enum zt_outcome refuse;			/* when kind == ZT_ROUTE_REFUSE */
	const struct zm_cfg_workload *src;	/* source workload (local to this node) */
	const struct zm_cfg_workload *dst;	/* destination workload, NULL for passthrough */
	const struct zm_cfg_service *svc;	/* when the client addressed a service VIP */
	const struct zm_cfg_workload *waypoint; /* when going through a waypoint */
	bool via_waypoint; /* HBONE to a waypoint (waypoint may be NULL: an unlisted address) */
	struct zm_addr dial_addr; /* where the outer connection goes */
	__u16 dial_port;
	struct zm_addr target_addr; /* CONNECT :authority (HBONE) or == dial (plain) */
	__u16 target_port;
};

/*
 * Does r tunnel straight to its destination workload (HBONE, no waypoint)? Only such a route
 * depends on the destination's PeerAuthentication mode.
 */
bool zt_route_direct_hbone(const struct zt_route *r);

/*
 * The destination's effective PeerAuthentication mode at r->target_port is DISABLE (Istio
 * ambient: mesh sources then send plaintext): turn a direct HBONE route into plain TCP to the
 * pod's ip:port (kind ZT_ROUTE_MTLS_DISABLED); the destination node captures it to its 15006.
 * A route through a waypoint keeps HBONE (DISABLE is about the workload's own inbound);
 * same-node, TCP and passthrough routes are plaintext already. Returns true when r changed.
 */
bool zt_route_plaintext(struct zt_route *r);

/* The workload owning addr when it runs on this snapshot's node, else NULL. */
const struct zm_cfg_workload *zt_route_local_workload(const struct zt_snap *s,
						      const struct zm_addr *addr);

/*
 * Decide an outbound (15001) connection from src to the original destination dst:dport.
 * rnd is a uniformly random 32-bit number (endpoint choice). Fills *r and returns 0; a refusal
 * is not an error (kind REFUSE with the reason in r->refuse).
 */
int zt_route_outbound(const struct zt_snap *s, const struct zm_addr *src, const struct zm_addr *dst,
		      __u16 dport, __u32 rnd, struct zt_route *r);

/*
 * Pick an endpoint of svc for service port sport among healthy workloads, weighted by
 * capacity, preferring an address of family; NULL when none. *addr and *port get the endpoint's
 * address and target port.
 */
const struct zm_cfg_workload *zt_route_pick_endpoint(const struct zt_snap *s,
						     const struct zm_cfg_service *svc, __u16 sport,
						     __u8 family, __u32 rnd, struct zm_addr *addr,
						     __u16 *port);

/* The first address of wl in family (or any, when it has none in that family). */
bool zt_route_wl_addr(const struct zm_cfg_workload *wl, __u8 family, struct zm_addr *out);

/*
 * HBONE connection pool key: source identity, expected destination identity, source IP and
 * destination ip:port, as one printable string ("a|b|ip|ip:port"). Returns 0 or -ENOSPC.
 */
#define ZT_POOL_KEY_LEN 640
int zt_pool_key_format(const char *src_id, const char *dst_id, const struct zm_addr *src,
		       const struct zm_addr *dst, __u16 dport, char *buf, size_t len);

#endif
