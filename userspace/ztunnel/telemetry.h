/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the ztunnel records about a proxied connection (struct zt_conn_info) and how it is
 * reported: one access-log record (scope "access") when the connection opens and one when it
 * closes, and the Prometheus series it counts into: Istio's istio_tcp_connections_opened_total,
 * _closed_total, istio_tcp_sent_bytes_total and _received_bytes_total with Istio's full label
 * set (lib/obs/istio.h), so the reference's dashboards work; plus the ztunnel's own gauges.
 * Building the records is pure so the unit tests pin the exact fields.
 */
#ifndef ZTUNNEL_TELEMETRY_H
#define ZTUNNEL_TELEMETRY_H

#include <linux/types.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "obs/istio.h"
#include "obs/log.h"
#include "zmesh/abi.h"

#define ZT_ID_LEN 256
#define ZT_WL_LEN 160

enum zt_outcome;

struct zt_conn_info {
	const char *dir; /* "outbound", "inbound" (HBONE) or "inbound_plain" */
	const char *via; /* "hbone", "tcp", "local", "passthrough", "-" before routing */
	struct zm_addr src;
	__u16 sport;
	struct zm_addr dst; /* as the client addressed it (VIP or pod) */
	__u16 dport;
	struct zm_addr up; /* where this ztunnel connected (pod, endpoint, peer :15008) */
	__u16 up_port;	   /* 0: not connected (yet) */
	char src_workload[ZT_WL_LEN]; /* "<namespace>/<name>", "" when unknown */
	char src_id[ZT_ID_LEN];
	char dst_workload[ZT_WL_LEN];
	char dst_id[ZT_ID_LEN];
	char dst_service[ZT_WL_LEN]; /* service hostname when a VIP was addressed */
	uint64_t start_ms;
	uint64_t bytes_recv; /* client -> server */
	uint64_t bytes_sent; /* server -> client */
};

/*
 * The access records: "open" with the connection's addresses, workloads and identities;
 * "close" with the same plus bytes_sent, bytes_recv, duration_ms, outcome and reason (the
 * outcome's hint, then ": detail" when there is one). r is begun here; emit it.
 */
void zt_access_open_rec(const struct zt_conn_info *i, struct obs_rec *r);
void zt_access_close_rec(const struct zt_conn_info *i, enum zt_outcome o, const char *detail,
			 uint64_t duration_ms, struct obs_rec *r);

/* ---- metrics ---- */

/* The four istio_tcp_* counters of one label set: zt_metrics_series()[ZT_M_...]. */
enum { ZT_M_OPENED, ZT_M_CLOSED, ZT_M_SENT, ZT_M_RECEIVED, ZT_M_N };

/*
 * Register the ztunnel's families in the process registry: istio_tcp_*, the process and
 * certificate metrics, and the HBONE connection gauges read from *pool and *inbound. 0 or
 * -errno.
 */
struct zm_identity_provider;
int zt_metrics_init(struct zm_identity_provider *const *idp, const atomic_int *pool,
		    const atomic_int *inbound);

/* The series of a label set, created on first use and kept. NULL on ENOMEM. */
struct obs_series *const *zt_metrics_series(const struct obs_istio_traffic *t);

#endif
