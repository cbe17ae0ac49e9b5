// SPDX-License-Identifier: Apache-2.0
/*
 * Access records and the metrics of proxied connections (telemetry.h). A label set's four
 * counters are one lookup in an obs group (once per connection), then counted with relaxed
 * atomics on the data path; the registry renders them.
 */
#include "telemetry.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "obs/metrics.h"
#include "obs/process.h"
#include "route.h"

static const char *zt_or_dash(const char *s)
{
	return s && *s ? s : "-";
}

/* The fields both records share. */
static void zt_access_common(const struct zt_conn_info *i, const char *event, struct obs_rec *r)
{
	char a[ZM_ADDR_STRLEN];

	obs_rec_begin(r, OBS_INFO, "access", event);
	if (!r->on)
		return;
	obs_rec_str(r, "dir", zt_or_dash(i->dir));
	obs_rec_str(r, "via", zt_or_dash(i->via));
	obs_rec_str(r, "src.addr", zm_addr_port_format(&i->src, i->sport, a, sizeof(a)));
	obs_rec_str(r, "src.workload", zt_or_dash(i->src_workload));
	obs_rec_str(r, "src.identity", zt_or_dash(i->src_id));
	obs_rec_str(r, "dst.addr", zm_addr_port_format(&i->dst, i->dport, a, sizeof(a)));
	obs_rec_str(r, "dst.service", zt_or_dash(i->dst_service));
	obs_rec_str(r, "dst.workload", zt_or_dash(i->dst_workload));
	obs_rec_str(r, "dst.identity", zt_or_dash(i->dst_id));
	obs_rec_str(r, "upstream",
		    i->up_port ? zm_addr_port_format(&i->up, i->up_port, a, sizeof(a)) : "-");
}

void zt_access_open_rec(const struct zt_conn_info *i, struct obs_rec *r)
{
	zt_access_common(i, "open", r);
}

void zt_access_close_rec(const struct zt_conn_info *i, enum zt_outcome o, const char *detail,
			 uint64_t duration_ms, struct obs_rec *r)
{
	zt_access_common(i, "close", r);
	if (!r->on)
		return;
	obs_rec_u64(r, "bytes_sent", i->bytes_sent);
	obs_rec_u64(r, "bytes_recv", i->bytes_recv);
	obs_rec_u64(r, "duration_ms", duration_ms);
	obs_rec_str(r, "outcome", zt_outcome_name(o));
	obs_rec_strf(r, "reason", "%s%s%s", zt_outcome_help(o), detail && *detail ? ": " : "",
		     detail ? detail : "");
}

/* ---- metrics ---- */

static struct obs_group *zt_tcp;

struct zt_gauges {
	const atomic_int *pool, *inbound;
	struct obs_series *pool_s, *inbound_s;
};

static void zt_gauges_scrape(void *ud)
{
	struct zt_gauges *g = ud;

	obs_gauge_set(g->pool_s, atomic_load(g->pool));
	obs_gauge_set(g->inbound_s, atomic_load(g->inbound));
}

static int zt_gauges_init(struct obs_registry *reg, const atomic_int *pool,
			  const atomic_int *inbound)
{
	static struct zt_gauges g;

	g.pool = pool;
	g.inbound = inbound;
	g.pool_s =
	    obs_series_get(obs_family_new(reg, OBS_GAUGE, "zmesh_hbone_pool_connections",
					  "Outbound HBONE connections in the pool.", NULL, NULL, 0),
			   NULL);
	g.inbound_s =
	    obs_series_get(obs_family_new(reg, OBS_GAUGE, "zmesh_hbone_inbound_connections",
					  "Inbound HBONE (15008) connections.", NULL, NULL, 0),
			   NULL);
	if (!g.pool_s || !g.inbound_s)
		return -ENOMEM;
	return obs_registry_on_scrape(reg, zt_gauges_scrape, &g);
}

int zt_metrics_init(struct zm_identity_provider *const *idp, const atomic_int *pool,
		    const atomic_int *inbound)
{
	struct obs_registry *reg = obs_metrics();
	const char *const *l = OBS_ISTIO_TCP_LABELS;
	struct obs_family *f[ZT_M_N];
	int r;

	if (!reg)
		return -ENOMEM;
	f[ZT_M_OPENED] = obs_family_new(reg, OBS_COUNTER, "istio_tcp_connections_opened_total",
					"The total number of TCP connections opened", l, NULL, 0);
	f[ZT_M_CLOSED] = obs_family_new(reg, OBS_COUNTER, "istio_tcp_connections_closed_total",
					"The total number of TCP connections closed", l, NULL, 0);
	f[ZT_M_SENT] = obs_family_new(reg, OBS_COUNTER, "istio_tcp_sent_bytes_total",
				      "The size of total bytes sent during response in case of a "
				      "TCP connection",
				      l, NULL, 0);
	f[ZT_M_RECEIVED] = obs_family_new(reg, OBS_COUNTER, "istio_tcp_received_bytes_total",
					  "The size of total bytes received during request in case "
					  "of a TCP connection",
					  l, NULL, 0);
	zt_tcp = obs_group_new(f, ZT_M_N);
	if (!zt_tcp)
		return -errno;
	r = zt_gauges_init(reg, pool, inbound);
	if (!r)
		r = obs_process_metrics(reg, "ztunnel");
	if (!r)
		r = obs_cert_metrics(reg, idp);
	return r;
}

struct obs_series *const *zt_metrics_series(const struct obs_istio_traffic *t)
{
	const char *v[OBS_ISTIO_HTTP_N];

	obs_istio_values(t, false, v);
	return zt_tcp ? obs_group_get(zt_tcp, v) : NULL;
}
