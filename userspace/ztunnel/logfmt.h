/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the ztunnel records about a proxied connection (struct zt_conn_info) and how it is
 * printed: one access-log line when the connection opens and one when it closes, and the
 * Prometheus series it counts into (Istio's istio_tcp_* metrics with Istio's labels, so the
 * reference's dashboards work). Formatting is pure so the unit tests pin the exact text.
 */
#ifndef ZTUNNEL_LOGFMT_H
#define ZTUNNEL_LOGFMT_H

#include <linux/types.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zmesh/abi.h"

#define ZT_ID_LEN  256
#define ZT_WL_LEN  160
#define ZT_LOG_LEN 1536

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

/* "access open ..." (no timestamp, no newline). Returns the length, or -ENOSPC. */
int zt_log_format_open(const struct zt_conn_info *i, char *buf, size_t len);

/* "access close ... outcome=NAME reason=\"HINT[: detail]\"". Returns the length or -ENOSPC. */
int zt_log_format_close(const struct zt_conn_info *i, enum zt_outcome o, const char *detail,
			uint64_t duration_ms, char *buf, size_t len);

/* Writes "<RFC 3339 UTC time> info <line>\n" to stderr in one write. */
void zt_log_emit(const char *line);

/* ---- metrics ---- */

/* Istio's label set of istio_tcp_*; NULL or "" values print as "unknown". */
struct zt_labels {
	const char *reporter; /* "source" (outbound) or "destination" (inbound) */
	const char *source_workload;
	const char *source_workload_namespace;
	const char *source_principal;
	const char *destination_workload;
	const char *destination_workload_namespace;
	const char *destination_principal;
	const char *destination_service;
	const char *connection_security_policy; /* "mutual_tls" or "unknown" */
	const char *response_flags; /* NULL: "-"; "DENY" when a policy refused the connection */
};

/* One time series: the label text and its counters (updated without locks). */
struct zt_series {
	struct zt_series *next;
	char *labels; /* rendered "{reporter=\"source\",...}" */
	atomic_uint_fast64_t opened, closed, sent, received;
};

/* Render the label set in Prometheus text form. Returns the length or -ENOSPC. */
int zt_labels_format(const struct zt_labels *l, char *buf, size_t len);

/* Find or create the series of a label set (never freed). NULL on ENOMEM. */
struct zt_series *zt_metrics_series(const struct zt_labels *l);

/* The Prometheus exposition of every series (malloc'd, *len set). NULL on ENOMEM. */
char *zt_metrics_render(size_t *len);

#endif
