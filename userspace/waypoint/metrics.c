// SPDX-License-Identifier: Apache-2.0
/*
 * The waypoint's request metrics in Istio's names and labels, so dashboards and queries
 * written for Istio work unchanged: istio_requests_total, and the histograms
 * istio_request_duration_milliseconds, istio_request_bytes and istio_response_bytes. One
 * series per distinct label set, kept in a list under one mutex: the label sets of a mesh are
 * few (source x destination workload x code), and one lookup per request is cheap next to the
 * request itself.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wp.h"

/* Istio's default duration buckets (ms) and exponential byte buckets. */
static const double wp_dur_le[] = {0.5,	  1,	  5,	  10,	   25,	   50,	  100,
				   250,	  500,	  1000,	  2500,	   5000,   10000, 30000,
				   60000, 300000, 600000, 1800000, 3600000};
static const double wp_bytes_le[] = {1, 10, 100, 1000, 10000, 100000, 1e6, 1e7, 1e8, 1e9};
#define WP_NDUR	  (sizeof(wp_dur_le) / sizeof(wp_dur_le[0]))
#define WP_NBYTES (sizeof(wp_bytes_le) / sizeof(wp_bytes_le[0]))

struct wp_hist {
	unsigned long long sum;
	unsigned long bucket[WP_NDUR]; /* not cumulative; summed when printed */
};

struct wp_metric {
	struct wp_metric *next;
	char labels[4096];
	unsigned long count;
	struct wp_hist dur, req_bytes, resp_bytes;
};

static void wp_label_clean(char *buf, size_t len, const char *s)
{
	size_t i = 0;

	for (; s && *s && i + 2 < len; s++) {
		if (*s == '"' || *s == '\\' || *s == '\n')
			continue; /* label values never need them here; drop rather than escape */
		buf[i++] = *s;
	}
	if (!i && len > 7)
		i = (size_t)snprintf(buf, len, "unknown");
	buf[i] = '\0';
}

/* a when set and non-empty, else b. */
static const char *wp_or(const char *a, const char *b)
{
	return a && *a ? a : b;
}

static const char *wp_wl_label(const struct zm_cfg_workload *wl, const char *key)
{
	size_t i;

	for (i = 0; wl && i < wl->n_labels; i++)
		if (!strcmp(wl->labels[i].key, key))
			return wl->labels[i].value;
	return NULL;
}

/* One side's labels: PFX_workload, _workload_namespace, _app, _version, _canonical_service. */
static int wp_side_labels(char *buf, size_t len, const char *pfx, const struct zm_cfg_workload *wl)
{
	char ns[128], app[128], ver[128], cs[128];
	const char *canon = wl ? wl->canonical_name : NULL;

	wp_label_clean(ns, sizeof(ns), wl ? wl->namespace : NULL);
	wp_label_clean(app, sizeof(app), wp_wl_label(wl, "app"));
	wp_label_clean(ver, sizeof(ver), wp_wl_label(wl, "version"));
	canon = wp_or(canon, wp_or(wp_wl_label(wl, "app"), wl ? wl->name : NULL));
	wp_label_clean(cs, sizeof(cs), canon);
	return snprintf(buf, len,
			"%s_workload_namespace=\"%s\",%s_app=\"%s\",%s_version=\"%s\","
			"%s_canonical_service=\"%s\"",
			pfx, ns, pfx, app, pfx, ver, pfx, cs) < 0
		   ? -EINVAL
		   : 0;
}

static void wp_hist_add(struct wp_hist *h, const double *le, size_t n, unsigned long long v)
{
	size_t i;

	h->sum += v;
	for (i = 0; i < n; i++) {
		if ((double)v <= le[i]) {
			h->bucket[i]++;
			return;
		}
	}
}

void wp_metric_request(struct wp *wp, const struct wp_mreq *r)
{
	char sp[256], dp[256], sw[128], dw[128], svc[256], sname[128], sns[128];
	char srcl[700], dstl[700], labels[4096];
	struct wp_metric *m;

	wp_label_clean(sp, sizeof(sp), r->src_principal);
	wp_label_clean(dp, sizeof(dp), r->dst_principal);
	wp_label_clean(sw, sizeof(sw), r->src ? wp_or(r->src->workload_name, r->src->name) : NULL);
	wp_label_clean(dw, sizeof(dw), r->dst_workload);
	wp_label_clean(svc, sizeof(svc), r->svc ? r->svc->hostname : NULL);
	wp_label_clean(sname, sizeof(sname), r->svc ? r->svc->name : NULL);
	wp_label_clean(sns, sizeof(sns), r->svc ? r->svc->namespace : NULL);
	wp_side_labels(srcl, sizeof(srcl), "source", r->src);
	wp_side_labels(dstl, sizeof(dstl), "destination", r->dst);
	snprintf(labels, sizeof(labels),
		 "reporter=\"waypoint\",source_principal=\"%s%s\",destination_service=\"%s\","
		 "destination_workload=\"%s\",source_workload=\"%s\",%s,%s,"
		 "destination_principal=\"%s%s\",destination_service_name=\"%s\","
		 "destination_service_namespace=\"%s\",connection_security_policy=\"mutual_tls\","
		 "grpc_response_status=\"%s\",request_protocol=\"%s\",response_code=\"%u\","
		 "response_flags=\"%s\"",
		 strcmp(sp, "unknown") ? "spiffe://" : "", sp, svc, dw, sw, srcl, dstl,
		 strcmp(dp, "unknown") ? "spiffe://" : "", dp, sname, sns,
		 r->grpc_status ? r->grpc_status : "", r->protocol ?: "http", r->code,
		 r->flags ?: "-");
	pthread_mutex_lock(&wp->m_lock);
	for (m = wp->metrics; m && strcmp(m->labels, labels); m = m->next)
		;
	if (!m && (m = calloc(1, sizeof(*m)))) {
		snprintf(m->labels, sizeof(m->labels), "%s", labels);
		m->next = wp->metrics;
		wp->metrics = m;
	}
	if (m) {
		m->count++;
		wp_hist_add(&m->dur, wp_dur_le, WP_NDUR, r->duration_ms);
		wp_hist_add(&m->req_bytes, wp_bytes_le, WP_NBYTES, r->request_bytes);
		wp_hist_add(&m->resp_bytes, wp_bytes_le, WP_NBYTES, r->response_bytes);
	}
	pthread_mutex_unlock(&wp->m_lock);
}

static const char *wp_dash(const char *s)
{
	return s && *s ? s : "-";
}

void wp_request_finish(struct wp *wp, const struct wp_mreq *r)
{
	/* One access log line per request, Envoy's fields in key=value form. */
	fprintf(stderr,
		"access http src.principal=%s src.workload=%s method=%s path=%s "
		"authority=%s dst.service=%s route=%s upstream=%s(%s) status=%u flags=%s "
		"request_id=%s bytes_received=%llu bytes_sent=%llu duration_ms=%llu "
		"protocol=%s%s%s\n",
		wp_dash(r->src_principal), r->src ? r->src->name : "-", wp_dash(r->method),
		wp_dash(r->path), wp_dash(r->authority), r->svc ? r->svc->hostname : "-",
		wp_dash(r->route), wp_dash(r->upstream), wp_dash(r->upstream_name), r->code,
		wp_dash(r->flags), wp_dash(r->request_id), (unsigned long long)r->request_bytes,
		(unsigned long long)r->response_bytes, (unsigned long long)r->duration_ms,
		wp_dash(r->version), r->grpc_status && *r->grpc_status ? " grpc_status=" : "",
		r->grpc_status && *r->grpc_status ? r->grpc_status : "");
	wp_metric_request(wp, r);
}

static void wp_hist_print(FILE *f, const char *name, const struct wp_metric *m,
			  const struct wp_hist *h, const double *le, size_t n)
{
	unsigned long cum = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		cum += h->bucket[i];
		fprintf(f, "%s_bucket{%s,le=\"%g\"} %lu\n", name, m->labels, le[i], cum);
	}
	fprintf(f, "%s_bucket{%s,le=\"+Inf\"} %lu\n", name, m->labels, m->count);
	fprintf(f, "%s_sum{%s} %llu\n%s_count{%s} %lu\n", name, m->labels, h->sum, name, m->labels,
		m->count);
}

void wp_metrics_print(struct wp *wp, FILE *f)
{
	struct wp_metric *m;

	pthread_mutex_lock(&wp->m_lock);
	fprintf(f, "# TYPE istio_requests_total counter\n");
	for (m = wp->metrics; m; m = m->next)
		fprintf(f, "istio_requests_total{%s} %lu\n", m->labels, m->count);
	fprintf(f, "# TYPE istio_request_duration_milliseconds histogram\n");
	for (m = wp->metrics; m; m = m->next)
		wp_hist_print(f, "istio_request_duration_milliseconds", m, &m->dur, wp_dur_le,
			      WP_NDUR);
	fprintf(f, "# TYPE istio_request_bytes histogram\n");
	for (m = wp->metrics; m; m = m->next)
		wp_hist_print(f, "istio_request_bytes", m, &m->req_bytes, wp_bytes_le, WP_NBYTES);
	fprintf(f, "# TYPE istio_response_bytes histogram\n");
	for (m = wp->metrics; m; m = m->next)
		wp_hist_print(f, "istio_response_bytes", m, &m->resp_bytes, wp_bytes_le, WP_NBYTES);
	pthread_mutex_unlock(&wp->m_lock);
}
