// SPDX-License-Identifier: Apache-2.0
/*
 * The waypoint's access records and metrics, in Istio's names and labels so that dashboards
 * and queries written for Istio work unchanged: istio_requests_total and the histograms
 * istio_request_duration_milliseconds, istio_request_bytes and istio_response_bytes, with
 * Istio's full label set (lib/obs/istio.h, reporter "waypoint"); zmesh_waypoint_streams_total
 * by the protocol a tunnelled stream turned out to speak; process and certificate metrics.
 * Every request is one access record (scope "access", msg "http") with Envoy's fields.
 * A connection's requests find their series through its cache (struct wp_mcache, wp.h):
 * formatting and looking up the 25 label values was most of the metrics' cost per request.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs/istio.h"
#include "obs/metrics.h"
#include "obs/process.h"
#include "wp.h"

/* Istio's default duration buckets (ms) and exponential byte buckets. */
static const double wp_dur_le[] = {0.5,	  1,	  5,	  10,	   25,	   50,	  100,
				   250,	  500,	  1000,	  2500,	   5000,   10000, 30000,
				   60000, 300000, 600000, 1800000, 3600000};
static const double wp_bytes_le[] = {1, 10, 100, 1000, 10000, 100000, 1e6, 1e7, 1e8, 1e9};

/* The request families, in the order of their group's series. */
enum { WP_M_REQUESTS, WP_M_DURATION, WP_M_REQ_BYTES, WP_M_RESP_BYTES, WP_M_N };

struct wp_metrics {
	struct obs_group *requests; /* [WP_M_...] */
	struct obs_group *tcp;	    /* [OBS_TCP_...] */
	struct obs_series *streams[3];
};

int wp_metrics_init(struct wp *wp)
{
	static const char *const proto[] = {"protocol", NULL};
	struct obs_registry *reg = obs_metrics();
	const char *const *l = OBS_ISTIO_HTTP_LABELS;
	struct obs_family *streams, *f[WP_M_N];
	struct wp_metrics *m = calloc(1, sizeof(*m));
	int r;

	if (!m || !reg) {
		free(m);
		return -ENOMEM;
	}
	f[WP_M_REQUESTS] =
	    obs_family_new(reg, OBS_COUNTER, "istio_requests_total",
			   "Total number of requests handled by the waypoint", l, NULL, 0);
	f[WP_M_DURATION] = obs_family_new(reg, OBS_HISTOGRAM, "istio_request_duration_milliseconds",
					  "Duration of requests in milliseconds", l, wp_dur_le,
					  sizeof(wp_dur_le) / sizeof(wp_dur_le[0]));
	f[WP_M_REQ_BYTES] = obs_family_new(reg, OBS_HISTOGRAM, "istio_request_bytes",
					   "Sizes of HTTP request bodies", l, wp_bytes_le,
					   sizeof(wp_bytes_le) / sizeof(wp_bytes_le[0]));
	f[WP_M_RESP_BYTES] = obs_family_new(reg, OBS_HISTOGRAM, "istio_response_bytes",
					    "Sizes of HTTP response bodies", l, wp_bytes_le,
					    sizeof(wp_bytes_le) / sizeof(wp_bytes_le[0]));
	m->requests = obs_group_new(f, WP_M_N);
	m->tcp = obs_istio_tcp_group(reg);
	streams = obs_family_new(reg, OBS_COUNTER, "zmesh_waypoint_streams_total",
				 "Tunnelled streams by the protocol they carried", proto, NULL, 0);
	m->streams[WP_STREAM_HTTP] = obs_series_get(streams, (const char *const[]){"http"});
	m->streams[WP_STREAM_HTTP2] = obs_series_get(streams, (const char *const[]){"http2"});
	m->streams[WP_STREAM_TCP] = obs_series_get(streams, (const char *const[]){"tcp"});
	if (!m->requests || !m->tcp || !streams) {
		free(m);
		return -EINVAL;
	}
	wp->m = m;
	r = obs_process_metrics(reg, "waypoint");
	return r ? r : obs_cert_metrics(reg, &wp->idp);
}

void wp_metric_stream(struct wp *wp, enum wp_stream_proto p)
{
	if (wp->m)
		obs_counter_add(wp->m->streams[p], 1);
}

/* A principal as Istio prints it: the full SPIFFE URI ("" stays unknown). */
static void wp_principal(char *out, size_t len, const char *p)
{
	snprintf(out, len, "%s%s", p && *p ? "spiffe://" : "", p ? p : "");
}

static const char *wp_mreq_protocol(const struct wp_mreq *r)
{
	return r->protocol ? r->protocol : "http";
}

/* The request series of r's labels, looked up in the group. */
static struct obs_series *const *wp_metric_series(struct wp *wp, const struct wp_mreq *r)
{
	struct obs_istio_traffic t = {.reporter = "waypoint",
				      .request_protocol = wp_mreq_protocol(r),
				      .grpc_response_status = r->grpc_status ? r->grpc_status : "",
				      .connection_security_policy = "mutual_tls",
				      .response_flags = r->flags};
	const char *v[OBS_ISTIO_HTTP_N];
	char code[16];

	/* Envoy's stats: app and version from the pods' labels; the principals in full. */
	obs_istio_peer_fill(&t.src, r->src, false);
	obs_istio_peer_fill(&t.dst, r->dst, false);
	wp_principal(t.src.principal, sizeof(t.src.principal), r->src_principal);
	obs_istio_service_fill(&t, r->svc);
	snprintf(code, sizeof(code), "%u", r->code);
	t.response_code = code;
	obs_istio_values(&t, true, v);
	return obs_group_get(wp->m->requests, v);
}

/* s (NULL as "") copied into a key field of n bytes; false when it does not fit. */
static bool wp_mkey_set(char *out, size_t n, const char *s)
{
	size_t len = s ? strlen(s) : 0;

	if (len >= n)
		return false;
	memcpy(out, s ? s : "", len + 1);
	return true;
}

static bool wp_mkey_eq(const char *key, const char *s)
{
	return !strcmp(key, s ? s : "");
}

/* Does the cache hold r's connection-level labels (same snapshot, client and service)? */
static bool wp_mcache_conn_eq(const struct wp_mcache *mc, const struct wp_mreq *r)
{
	return mc->serial && mc->serial == r->snap->serial && mc->src == r->src &&
	       mc->svc == r->svc && wp_mkey_eq(mc->src_principal, r->src_principal);
}

static struct obs_series *const *wp_mcache_find(const struct wp_mcache *mc, const struct wp_mreq *r)
{
	const struct wp_mcache_ent *e;
	unsigned int i;

	if (!wp_mcache_conn_eq(mc, r))
		return NULL;
	for (i = 0; i < mc->n; i++) {
		e = &mc->e[i];
		if (e->dst == r->dst && e->code == r->code &&
		    wp_mkey_eq(e->protocol, wp_mreq_protocol(r)) &&
		    wp_mkey_eq(e->grpc_status, r->grpc_status) && wp_mkey_eq(e->flags, r->flags))
			return e->s;
	}
	return NULL;
}

/* Remember s for r's labels; a label too long for the key is simply not cached. */
static void wp_mcache_add(struct wp_mcache *mc, const struct wp_mreq *r,
			  struct obs_series *const *s)
{
	struct wp_mcache_ent e;

	if (!wp_mcache_conn_eq(mc, r)) {
		mc->serial = 0;
		mc->n = mc->next = 0;
		if (!wp_mkey_set(mc->src_principal, sizeof(mc->src_principal), r->src_principal))
			return;
		mc->src = r->src;
		mc->svc = r->svc;
		mc->serial = r->snap->serial;
	}
	/* Filled aside: a label that does not fit leaves the entry in place as it was. */
	if (!wp_mkey_set(e.protocol, sizeof(e.protocol), wp_mreq_protocol(r)) ||
	    !wp_mkey_set(e.grpc_status, sizeof(e.grpc_status), r->grpc_status) ||
	    !wp_mkey_set(e.flags, sizeof(e.flags), r->flags))
		return;
	e.dst = r->dst;
	e.code = r->code;
	e.s = s;
	mc->e[mc->next] = e;
	mc->next = (mc->next + 1) % WP_MCACHE_N;
	if (mc->n < WP_MCACHE_N)
		mc->n++;
}

void wp_metric_request(struct wp *wp, const struct wp_mreq *r)
{
	struct wp_mcache *mc = r->snap && r->snap->serial ? r->cache : NULL;
	struct obs_series *const *s;

	if (!wp->m)
		return;
	s = mc ? wp_mcache_find(mc, r) : NULL;
	if (!s) {
		s = wp_metric_series(wp, r);
		if (!s)
			return;
		if (mc)
			wp_mcache_add(mc, r, s);
	}
	obs_counter_add(s[WP_M_REQUESTS], 1);
	obs_hist_observe(s[WP_M_DURATION], (double)r->duration_ms);
	obs_hist_observe(s[WP_M_REQ_BYTES], (double)r->request_bytes);
	obs_hist_observe(s[WP_M_RESP_BYTES], (double)r->response_bytes);
}

static const char *wp_dash(const char *s)
{
	return s && *s ? s : "-";
}

void wp_request_finish(struct wp *wp, const struct wp_mreq *r)
{
	struct obs_rec rec;

	/* One access record per request, Envoy's fields in key=value form. */
	obs_rec_begin(&rec, OBS_INFO, "access", "http");
	obs_rec_str(&rec, "src.principal", wp_dash(r->src_principal));
	obs_rec_str(&rec, "src.workload", r->src ? r->src->name : "-");
	obs_rec_str(&rec, "method", wp_dash(r->method));
	obs_rec_str(&rec, "path", wp_dash(r->path));
	obs_rec_str(&rec, "authority", wp_dash(r->authority));
	obs_rec_str(&rec, "dst.service", r->svc ? r->svc->hostname : "-");
	obs_rec_str(&rec, "route", wp_dash(r->route));
	obs_rec_join(
	    &rec, "upstream",
	    (const char *const[]){wp_dash(r->upstream), "(", wp_dash(r->upstream_name), ")"}, 4);
	obs_rec_u64(&rec, "status", r->code);
	obs_rec_str(&rec, "flags", wp_dash(r->flags));
	obs_rec_str(&rec, "request_id", wp_dash(r->request_id));
	obs_rec_u64(&rec, "bytes_received", r->request_bytes);
	obs_rec_u64(&rec, "bytes_sent", r->response_bytes);
	obs_rec_u64(&rec, "duration_ms", r->duration_ms);
	obs_rec_str(&rec, "protocol", wp_dash(r->version));
	if (r->grpc_status && *r->grpc_status)
		obs_rec_str(&rec, "grpc_status", r->grpc_status);
	obs_rec_emit(&rec);
	wp_metric_request(wp, r);
}

static void wp_tcp_rec(struct obs_rec *rec, const struct wp_tcp_obs *o, const char *msg)
{
	obs_rec_begin(rec, OBS_INFO, "access", msg);
	obs_rec_str(rec, "src.principal", wp_dash(o->peer));
	obs_rec_str(rec, "src.workload", o->src ? o->src->name : "-");
	obs_rec_str(rec, "authority", o->authority);
	obs_rec_str(rec, "dst.service", o->svc ? o->svc->hostname : "-");
	obs_rec_join(rec, "upstream",
		     (const char *const[]){o->upstream, "(", o->dst ? o->dst->name : "-", ")"}, 4);
}

void wp_tcp_open(struct wp *wp, struct wp_tcp_obs *o)
{
	struct obs_istio_traffic t = {.reporter = "waypoint",
				      .request_protocol = "tcp",
				      .connection_security_policy = "mutual_tls",
				      .response_flags = "-"};
	struct obs_rec rec;

	o->opened_ms = rt_now_ms();
	if (wp->m) {
		obs_istio_peer_fill(&t.src, o->src, false);
		obs_istio_peer_fill(&t.dst, o->dst, false);
		wp_principal(t.src.principal, sizeof(t.src.principal), o->peer);
		if (o->dst)
			zm_cfg_workload_identity(o->dst, t.dst.principal, sizeof(t.dst.principal));
		obs_istio_service_fill(&t, o->svc);
		o->m = obs_istio_tcp_series(wp->m->tcp, &t);
		if (o->m)
			obs_counter_add(o->m[OBS_TCP_OPENED], 1);
	}
	wp_tcp_rec(&rec, o, "tcp open");
	obs_rec_emit(&rec);
}

void wp_tcp_bytes(struct wp_tcp_obs *o, uint64_t rx, uint64_t tx)
{
	o->received += rx;
	o->sent += tx;
	if (!o->m)
		return;
	if (rx)
		obs_counter_add(o->m[OBS_TCP_RECEIVED], rx);
	if (tx)
		obs_counter_add(o->m[OBS_TCP_SENT], tx);
}

void wp_tcp_close(struct wp_tcp_obs *o, const char *reason)
{
	struct obs_rec rec;

	if (o->m)
		obs_counter_add(o->m[OBS_TCP_CLOSED], 1);
	wp_tcp_rec(&rec, o, "tcp close");
	obs_rec_u64(&rec, "bytes_received", o->received);
	obs_rec_u64(&rec, "bytes_sent", o->sent);
	obs_rec_u64(&rec, "duration_ms", rt_now_ms() - o->opened_ms);
	obs_rec_str(&rec, "reason", reason);
	obs_rec_emit(&rec);
}
