/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The waypoint process: shared types and cross-file prototypes. One struct wp per process;
 * one struct wp_worker per runtime worker (lib/rt), each with its own SO_REUSEPORT listener on
 * 15008 and its own HBONE connection set (nghttp2 sessions are single-threaded). Admin
 * (15000), metrics (15020) and readiness (15021) are lib/obs's responder; the main thread
 * reloads the config files.
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
#include <time.h>

#include "obs/log.h"

#include "common/addr.h"
#include "config/config.h"
#include "l7/l7.h"
#include "rt/control.h"
#include "rt/hbset.h"
#include "rt/workers.h"

#define WP_MAX_WORKERS	   RT_MAX_WORKERS
#define WP_MAX_HEAD	   (32u << 10) /* request/response head bytes before 400/502 */
#define WP_MAX_HEADERS	   100
#define WP_IN_HIGH	   (256u << 10) /* pause a stream's input above this */
#define WP_RETRY_COPY_MAX  (64u << 10)	/* requests up to this size can be retried */
#define WP_CONNECT_TIMEOUT 10000	/* ms: upstream dial + CONNECT 200 */
#define WP_UP_IDLE_MS	   60000	/* idle upstream streams closed after this */
#define WP_SHADOW_MAX	   64		/* mirror copies in flight per worker; more are dropped */
#define WP_SHADOW_MS	   30000	/* ms: a mirror copy's life when its route has no timeout */
#define WP_EP_SLOTS	   256
#define WP_PENDING_POLL_MS 50 /* a request waiting for a pool slot looks again this often */

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
	int port, admin_port, metrics_port, ready_port;
};

struct wp_h2u;

struct wp_worker {
	struct wp *wp;
	int id;
	struct rt_loop *loop;
	struct rt_listener lis;
	char lis_name[32];
	struct rt_hset hset;   /* server and client HBONE connections */
	struct wp_up *idle;    /* upstream HTTP streams ready for another request */
	struct wp_h2u *h2us;   /* upstream HTTP/2 sessions (h2.h) */
	struct wp_up *shadows; /* mirror copies in flight (upstream.c), for their deadline */
	unsigned int n_shadows;
	unsigned long shadow_drops;	 /* copies not sent: WP_SHADOW_MAX were in flight */
	struct obs_ratelimit shadow_log; /* drops are logged one line a second */
};

struct wp {
	struct wp_opts opts;
	int n_workers;
	struct rt_workers rt;
	struct wp_worker workers[WP_MAX_WORKERS];
	atomic_bool stop, ready;
	struct wp_stats *stats; /* pick.h: endpoint and cluster state of all workers */
	struct zm_identity_provider *idp;
	struct zm_tls_ctx *tls_server, *tls_client;
	char trust_domain[128];
	pthread_mutex_t snap_lock;
	struct wp_snap *snap;
	struct rt_control control; /* the main thread: signals, config polling */
	time_t cfg_mtime;	   /* of the config files behind snap */
	/* metrics: the process registry's families (metrics.c) */
	struct wp_metrics *m;
};

/* main.c */
extern struct wp *wp_g;
struct wp_snap *wp_snap_get(struct wp *wp);
void wp_snap_put(struct wp_snap *s);
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
/* One finished request: its access-log record and its metrics. */
void wp_request_finish(struct wp *wp, const struct wp_mreq *r);
void wp_metric_request(struct wp *wp, const struct wp_mreq *r);
/* A downstream stream was classified: counts zmesh_waypoint_streams_total{protocol}. */
enum wp_stream_proto { WP_STREAM_HTTP, WP_STREAM_HTTP2, WP_STREAM_TCP };
void wp_metric_stream(struct wp *wp, enum wp_stream_proto p);
/* Register the waypoint's families (istio_requests_*, process, certificates). 0 or -errno. */
int wp_metrics_init(struct wp *wp);

/* workers.c */
/* rt_workers_start()'s init for one worker (ud: the struct wp): listener, HBONE set. */
int wp_worker_init(struct rt_worker *rw, void *ud);
/*
 * An upstream CONNECT stream to ep (authority ip:port, server identity expected_id) on a
 * pooled HBONE client connection of w; ud and cbs_ud go to the stream. NULL with errno.
 */
struct hb_stream *wp_pool_open(struct wp_worker *w, const struct zm_addr *ip, unsigned int port,
			       const char *expected_id, const char *forwarded, void *ud);

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
struct wp_worker *wp_stream_worker(struct hb_stream *s);

#endif
