// SPDX-License-Identifier: Apache-2.0
/*
 * Access-log lines and the Prometheus metrics of proxied connections (logfmt.h). Series are
 * created under one mutex (once per distinct label set) and counted with relaxed atomics on
 * the data path; the admin thread renders them.
 */
#include "logfmt.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "common/addr.h"
#include "route.h"

static const char *zt_or_dash(const char *s)
{
	return s && *s ? s : "-";
}

/* The fields both lines share. Returns the length written or -ENOSPC. */
static int zt_log_common(const struct zt_conn_info *i, const char *event, char *buf, size_t len)
{
	char src[ZM_ADDR_STRLEN], dst[ZM_ADDR_STRLEN], up[ZM_ADDR_STRLEN];
	int n;

	zm_addr_port_format(&i->src, i->sport, src, sizeof(src));
	zm_addr_port_format(&i->dst, i->dport, dst, sizeof(dst));
	if (i->up_port)
		zm_addr_port_format(&i->up, i->up_port, up, sizeof(up));
	else
		snprintf(up, sizeof(up), "-");
	n = snprintf(buf, len,
		     "access %s dir=%s via=%s src.addr=%s src.workload=%s src.identity=%s "
		     "dst.addr=%s dst.service=%s dst.workload=%s dst.identity=%s upstream=%s",
		     event, zt_or_dash(i->dir), zt_or_dash(i->via), src,
		     zt_or_dash(i->src_workload), zt_or_dash(i->src_id), dst,
		     zt_or_dash(i->dst_service), zt_or_dash(i->dst_workload), zt_or_dash(i->dst_id),
		     up);
	return n < 0 || (size_t)n >= len ? -ENOSPC : n;
}

int zt_log_format_open(const struct zt_conn_info *i, char *buf, size_t len)
{
	return zt_log_common(i, "open", buf, len);
}

int zt_log_format_close(const struct zt_conn_info *i, enum zt_outcome o, const char *detail,
			uint64_t duration_ms, char *buf, size_t len)
{
	int n = zt_log_common(i, "close", buf, len), m;

	if (n < 0)
		return n;
	m = snprintf(buf + n, len - (size_t)n,
		     " bytes_sent=%llu bytes_recv=%llu duration_ms=%llu outcome=%s "
		     "reason=\"%s%s%s\"",
		     (unsigned long long)i->bytes_sent, (unsigned long long)i->bytes_recv,
		     (unsigned long long)duration_ms, zt_outcome_name(o), zt_outcome_help(o),
		     detail && *detail ? ": " : "", detail ? detail : "");
	return m < 0 || (size_t)m >= len - (size_t)n ? -ENOSPC : n + m;
}

void zt_log_emit(const char *line)
{
	char ts[96];
	struct timespec now;
	struct tm tm;
	struct iovec iov[3];

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ info ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec / 1000);
	iov[0] = (struct iovec){ts, strlen(ts)};
	iov[1] = (struct iovec){(void *)line, strlen(line)};
	iov[2] = (struct iovec){"\n", 1};
	/* One writev so lines of different workers never interleave. */
	if (writev(STDERR_FILENO, iov, 3) < 0)
		return;
}

/* Label values are ours or config strings; escape what Prometheus requires anyway. */
static int zt_label_put(char *buf, size_t len, size_t *off, const char *key, const char *val,
			bool first)
{
	const char *v = val && *val ? val : "unknown";
	int n = snprintf(buf + *off, len - *off, "%s%s=\"", first ? "" : ",", key);

	if (n < 0 || (size_t)n >= len - *off)
		return -ENOSPC;
	*off += (size_t)n;
	for (; *v; v++) {
		if (*off + 3 >= len)
			return -ENOSPC;
		if (*v == '"' || *v == '\\' || *v == '\n') {
			buf[(*off)++] = '\\';
			buf[(*off)++] = *v == '\n' ? 'n' : *v;
		} else {
			buf[(*off)++] = *v;
		}
	}
	buf[(*off)++] = '"';
	buf[*off] = '\0';
	return 0;
}

int zt_labels_format(const struct zt_labels *l, char *buf, size_t len)
{
	size_t off = 1;
	int r = 0;

	if (len < 3)
		return -ENOSPC;
	buf[0] = '{';
	buf[1] = '\0';
	r |= zt_label_put(buf, len, &off, "reporter", l->reporter, true);
	r |= zt_label_put(buf, len, &off, "source_workload", l->source_workload, false);
	r |= zt_label_put(buf, len, &off, "source_workload_namespace", l->source_workload_namespace,
			  false);
	r |= zt_label_put(buf, len, &off, "source_principal", l->source_principal, false);
	r |= zt_label_put(buf, len, &off, "destination_workload", l->destination_workload, false);
	r |= zt_label_put(buf, len, &off, "destination_workload_namespace",
			  l->destination_workload_namespace, false);
	r |= zt_label_put(buf, len, &off, "destination_principal", l->destination_principal, false);
	r |= zt_label_put(buf, len, &off, "destination_service", l->destination_service, false);
	r |= zt_label_put(buf, len, &off, "request_protocol", "tcp", false);
	r |= zt_label_put(buf, len, &off, "response_flags",
			  l->response_flags ? l->response_flags : "-", false);
	r |= zt_label_put(buf, len, &off, "connection_security_policy",
			  l->connection_security_policy, false);
	if (r || off + 2 > len)
		return -ENOSPC;
	buf[off++] = '}';
	buf[off] = '\0';
	return (int)off;
}

static pthread_mutex_t zt_metrics_lock = PTHREAD_MUTEX_INITIALIZER;
static struct zt_series *zt_metrics_head;

struct zt_series *zt_metrics_series(const struct zt_labels *l)
{
	char text[2048];
	struct zt_series *s;

	if (zt_labels_format(l, text, sizeof(text)) < 0)
		snprintf(text, sizeof(text), "{reporter=\"%s\"}", l->reporter);
	pthread_mutex_lock(&zt_metrics_lock);
	for (s = zt_metrics_head; s; s = s->next)
		if (!strcmp(s->labels, text))
			break;
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (s && !(s->labels = strdup(text))) {
			free(s);
			s = NULL;
		}
		if (s) {
			s->next = zt_metrics_head;
			zt_metrics_head = s;
		}
	}
	pthread_mutex_unlock(&zt_metrics_lock);
	return s;
}

struct zt_metric_def {
	const char *name, *help;
	size_t off;
};

static const struct zt_metric_def zt_metric_defs[] = {
    {"istio_tcp_connections_opened_total", "Connections opened",
     offsetof(struct zt_series, opened)},
    {"istio_tcp_connections_closed_total", "Connections closed",
     offsetof(struct zt_series, closed)},
    {"istio_tcp_sent_bytes_total", "Bytes sent to the client (server to client)",
     offsetof(struct zt_series, sent)},
    {"istio_tcp_received_bytes_total", "Bytes received from the client",
     offsetof(struct zt_series, received)},
};

char *zt_metrics_render(size_t *len)
{
	char *buf = NULL;
	size_t i;
	FILE *f = open_memstream(&buf, len);
	struct zt_series *s;

	if (!f)
		return NULL;
	pthread_mutex_lock(&zt_metrics_lock);
	for (i = 0; i < sizeof(zt_metric_defs) / sizeof(zt_metric_defs[0]); i++) {
		const struct zt_metric_def *d = &zt_metric_defs[i];

		fprintf(f, "# HELP %s %s\n# TYPE %s counter\n", d->name, d->help, d->name);
		for (s = zt_metrics_head; s; s = s->next) {
			atomic_uint_fast64_t *v = (atomic_uint_fast64_t *)((char *)s + d->off);

			fprintf(f, "%s%s %llu\n", d->name, s->labels,
				(unsigned long long)atomic_load_explicit(v, memory_order_relaxed));
		}
	}
	pthread_mutex_unlock(&zt_metrics_lock);
	if (fclose(f))
		return NULL;
	return buf;
}
