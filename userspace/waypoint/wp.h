/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The waypoint process: shared types and cross-file prototypes. One struct wp per process;
 * one struct wp_worker per thread, each with an epoll loop, its own SO_REUSEPORT listener on
 * 15008 and its own HBONE client connections (nghttp2 sessions are single-threaded). The main
 * thread serves metrics (15020) and readiness (15021) and reloads the config files.
 *
 * Per inbound CONNECT stream (struct wp_ds, "downstream"): the authority is the original
 * service VIP:port (userspace/ztunnel/README.md rule 1). The first bytes decide: an HTTP/1.x
 * request line makes it an HTTP stream (requests parsed, authorized, routed and forwarded one at a
 * time, each over an upstream CONNECT stream to the chosen endpoint pod, struct wp_up, kept for the
 * next request while both sides keep the connection alive); anything else is relayed unchanged to
 * one endpoint as plain TCP.
 */
#ifndef WAYPOINT_WP_H
#define WAYPOINT_WP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/addr.h"
#include "config/config.h"
#include "l7/l7.h"

#define WP_MAX_WORKERS	   64
#define WP_MAX_HEAD	   (32u << 10) /* request/response head bytes before 400/502 */
#define WP_MAX_HEADERS	   100
#define WP_IN_HIGH	   (256u << 10) /* pause a stream's input above this */
#define WP_RETRY_COPY_MAX  (64u << 10)	/* requests up to this size can be retried */
#define WP_CONNECT_TIMEOUT 10000	/* ms: upstream dial + CONNECT 200 */
#define WP_UP_IDLE_MS	   60000	/* idle upstream streams closed after this */
#define WP_SHADOW_MAX	   64		/* mirror copies in flight per worker; more are dropped */
#define WP_SHADOW_MS	   30000	/* ms: a mirror copy's life when its route has no timeout */
#define WP_EP_SLOTS	   256

struct wp;
struct wp_worker;
struct hb_conn;
struct hb_stream;
struct hb_request;
struct zm_tls_ctx;
struct zm_identity_provider;
struct zm_cert;
struct wp_stats;

/* An immutable pair of configs, refcounted; swapped whole on reload. */
struct wp_snap {
	atomic_int refs;
	struct zm_config *mesh;
	struct l7_config *l7;
};

struct wp_opts {
	const char *configs[16];
	int n_configs;
	const char *mesh_config;
	const char *identity;
	const char *ca_dir;
	const char *netns;
	int workers;
	int port, metrics_port, ready_port;
};

struct wp_ev {
	void (*fn)(struct wp_worker *w, struct wp_ev *ev, uint32_t events);
	int fd;
	uint32_t armed;
};

struct wp_dead {
	struct wp_dead *next;
	void (*free_fn)(void *);
	void *p;
};

struct wp_h2u;

struct wp_worker {
	struct wp *wp;
	int id;
	int epfd;
	pthread_t thread;
	struct wp_ev lis;
	struct wp_hconn *hconns; /* server and client HBONE connections */
	struct wp_up *idle;	 /* upstream HTTP streams ready for another request */
	struct wp_h2u *h2us;	 /* upstream HTTP/2 sessions (h2.h) */
	struct wp_ds *dss;	 /* live downstream streams (timers) */
	struct wp_up *shadows;	 /* mirror copies in flight (upstream.c), for their deadline */
	unsigned int n_shadows;
	unsigned long shadow_drops; /* copies not sent: WP_SHADOW_MAX were in flight */
	uint64_t shadow_log_ms;	    /* when the last drop was logged (one line a second) */
	struct wp_dead *dead;
	uint64_t now_ms;
};

struct wp {
	struct wp_opts opts;
	int n_workers;
	struct wp_worker workers[WP_MAX_WORKERS];
	atomic_bool stop, ready;
	struct wp_stats *stats; /* pick.h: endpoint and cluster state of all workers */
	struct zm_identity_provider *idp;
	struct zm_tls_ctx *tls_server, *tls_client;
	char trust_domain[128];
	pthread_mutex_t snap_lock;
	struct wp_snap *snap;
	/* metrics */
	pthread_mutex_t m_lock;
	struct wp_metric *metrics;
	atomic_ulong tcp_streams, http_streams, h2_streams;
};

/* main.c */
extern struct wp *wp_g;
struct wp_snap *wp_snap_get(struct wp *wp);
void wp_snap_put(struct wp_snap *s);
uint64_t wp_now_ms(void);
uint32_t wp_rand(void);
/* metrics.c: one finished request, in Istio's metric names and labels. */
struct wp_mreq {
	const char *src_principal, *dst_principal; /* without spiffe:// ("" unknown) */
	const struct zm_cfg_workload *src, *dst;   /* NULL when unknown */
	const char *dst_workload;
	const struct zm_cfg_service *svc;
	const char *protocol; /* "http", "grpc" */
	unsigned int code;
	const char *grpc_status; /* "" or the grpc-status the client got */
	const char *flags;
	uint64_t duration_ms, request_bytes, response_bytes;
	/* for the access log */
	const char *method, *path, *authority, *route, *upstream, *upstream_name, *request_id;
	const char *version; /* "HTTP/1.1", "HTTP/2" */
};
/* One finished request: its access-log line and its metrics. */
void wp_request_finish(struct wp *wp, const struct wp_mreq *r);
void wp_metric_request(struct wp *wp, const struct wp_mreq *r);
void wp_metrics_print(struct wp *wp, FILE *f);
int wp_ctl_run(struct wp *wp);

/* loop.c */
int wp_workers_start(struct wp *wp);
void wp_workers_join(struct wp *wp);
int wp_ev_set(struct wp_worker *w, struct wp_ev *ev, uint32_t events);
void wp_ev_del(struct wp_worker *w, struct wp_ev *ev);
void wp_defer_free(struct wp_worker *w, void (*fn)(void *), void *p);
/*
 * An upstream CONNECT stream to ep (authority ip:port, server identity expected_id) on a
 * pooled HBONE client connection of w; ud and cbs_ud go to the stream. NULL with errno.
 */
struct hb_stream *wp_pool_open(struct wp_worker *w, const struct zm_addr *ip, unsigned int port,
			       const char *expected_id, const char *forwarded, void *ud);
/* After any callback batch: re-arm every connection's fd. */
void wp_hconns_arm(struct wp_worker *w);

/* http.c: downstream/upstream stream handling */
struct wp_ds;
struct wp_up;
void wp_ds_on_request(struct hb_stream *s, const struct hb_request *req);
size_t wp_ds_on_data(struct hb_stream *s, const uint8_t *buf, size_t len);
void wp_ds_on_eof(struct hb_stream *s);
void wp_ds_on_writable(struct hb_stream *s);
void wp_ds_on_close(struct hb_stream *s, uint32_t error);
void wp_up_on_response(struct hb_stream *s, int status);
size_t wp_up_on_data(struct hb_stream *s, const uint8_t *buf, size_t len);
void wp_up_on_eof(struct hb_stream *s);
void wp_up_on_writable(struct hb_stream *s);
void wp_up_on_close(struct hb_stream *s, uint32_t error);
void wp_http_tick(struct wp_worker *w);
struct wp_worker *wp_stream_worker(struct hb_stream *s);

#endif
