/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Endpoint choice and the state behind it, shared by every worker of the process (HTTP/1,
 * HTTP/2 and TCP streams alike): per endpoint ("ip:port") the requests in flight (for
 * LEAST_REQUEST) and outlier detection; per cluster (service host and subset, Envoy's unit
 * for circuit breakers) the upstream connections, requests and pending requests that
 * DestinationRule connectionPool limits. Slots are claimed once under a lock and then read
 * and counted with atomics. A dual-stack endpoint is dialed on its address of the client's
 * family (the family of the VIP the client reached us on), as ztunnel does, and its state is
 * kept per address dialed.
 */
#ifndef WAYPOINT_PICK_H
#define WAYPOINT_PICK_H

#include "wp.h"

#define WP_STAT_KEY 160

struct wp_ep_stat {
	atomic_bool used;
	char key[WP_STAT_KEY];
	atomic_uint active;
	atomic_uint consecutive_5xx;
	atomic_uint ejections;
	_Atomic uint64_t ejected_until_ms;
};

struct wp_cl_stat {
	atomic_bool used;
	char key[WP_STAT_KEY];
	atomic_uint conns;    /* upstream streams open (tcp.maxConnections) */
	atomic_uint requests; /* requests in flight (http.http2MaxRequests) */
	atomic_uint pending;  /* requests waiting for a connection (http1MaxPendingRequests) */
	atomic_ulong overflows;
};

struct wp_stats {
	pthread_mutex_t lock;
	struct wp_ep_stat eps[WP_EP_SLOTS];
	struct wp_cl_stat cls[WP_EP_SLOTS];
	atomic_uint rr[64]; /* round-robin counters by destination host hash */
};

/* What to choose from (in) and what was chosen (out). */
struct wp_target {
	struct wp_snap *snap;
	const struct zm_cfg_service *svc;  /* the service the client named */
	const struct zm_cfg_workload *pod; /* or a pod behind the waypoint */
	unsigned int port;
	const struct l7_dest *dest; /* the route's destination, NULL for the service itself */
	uint8_t family;		    /* ZM_AF_* of the client's destination; 0: any */
	/* out */
	const struct l7_traffic_policy *policy;
	const struct l7_subset *subset;
	const struct zm_cfg_service *csvc; /* the cluster: service and port, NULL for a pod */
	unsigned int cport;
	struct wp_cl_stat *cl;
	struct l7_endpoint ep;
	const struct zm_addr *addr;  /* the address of ep to dial (in the snapshot's config) */
	char ep_key[ZM_ADDR_STRLEN]; /* addr:port, IPv6 bracketed */
};

/* The address of ep to dial: its first of family, else its first. */
const struct zm_addr *wp_ep_addr(const struct l7_endpoint *ep, uint8_t family);
struct wp_ep_stat *wp_ep_stat(struct wp *wp, const char *key);
struct wp_cl_stat *wp_cl_stat(struct wp *wp, const char *host, const char *subset);
/* Choose an endpoint into t->ep; -ENOENT when the cluster has none. */
int wp_target_pick(struct wp_worker *w, struct wp_target *t);
/* A 5xx (or not) answer from endpoint key of t's cluster: outlier detection. */
void wp_outlier_note(struct wp_worker *w, const struct wp_target *t, const char *key,
		     unsigned int code);
/* connectionPool: may one more request start in this cluster? Counts it when true. */
bool wp_cl_request_begin(struct wp_cl_stat *cl, const struct l7_traffic_policy *pol);
void wp_cl_request_end(struct wp_cl_stat *cl);
/* May a new upstream connection open? (tcp.maxConnections) A hint: workers race. */
bool wp_cl_conn_allowed(const struct wp_cl_stat *cl, const struct l7_traffic_policy *pol);
/*
 * Take one of cl's max connection slots (0: unlimited), atomically across workers: false when
 * all are taken. Every true is paired with wp_cl_conn_release.
 */
bool wp_cl_conn_claim(struct wp_cl_stat *cl, unsigned int max);
void wp_cl_conn_release(struct wp_cl_stat *cl);

#endif
