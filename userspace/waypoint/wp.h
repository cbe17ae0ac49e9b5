/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The waypoint process: shared types and cross-file prototypes. One struct wp per process;
 * one struct wp_worker per runtime worker (lib/rt), each with its own SO_REUSEPORT listener on
 * 15008 and its own HBONE connection set (nghttp2 sessions are single-threaded). Admin
 * (15000), metrics (15020) and readiness (15021) are lib/obs's responder; the main thread
 * reloads the config files (snap.c), a thread of kube_source.c the Kubernetes API's objects.
 *
 * The files, from the client's bytes to the endpoint's (each uses only those after it):
 *   workers.c   listeners and the HBONE callbacks of every stream
 *   inbound.c   an inbound CONNECT stream: classified by its first bytes as HTTP/1, HTTP/2
 *               or plain TCP (relay.c)
 *   h1down.c, h2down.c   the codecs: bytes to requests, responses to bytes
 *   request.c, route.c   one request lifecycle for every protocol (request.h)
 *   h1up.c, h2up.c       the upstream codecs: an exchange with an endpoint
 *   relay.c, tunnel.c    plain TCP; CONNECT streams to endpoint pods
 *   conn.c, pick.c, telemetry.c, msg.c, snap.c   what they all share
 *   kube_source.c        the snapshot's source with --kube / --kubeconfig
 */
#ifndef WAYPOINT_WP_H
#define WAYPOINT_WP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "obs/istio.h"
#include "obs/log.h"

#include "common/addr.h"
#include "common/list.h"
#include "config/config.h"
#include "l7/l7.h"
#include "rt/control.h"
#include "rt/drain.h"
#include "rt/hbset.h"
#include "rt/workers.h"

#define WP_MAX_WORKERS	   RT_MAX_WORKERS
#define WP_MAX_LIS	   8 /* listening sockets per worker (a hand-over may bring more) */
#define WP_IN_HIGH	   (256u << 10) /* pause a stream's input above this */
#define WP_RETRY_COPY_MAX  (64u << 10)	/* requests up to this size can be retried */
#define WP_CONNECT_TIMEOUT 10000	/* ms: upstream dial + CONNECT 200 */
#define WP_UP_IDLE_MS	   60000	/* idle upstream streams closed after this */
#define WP_SHADOW_MAX	   64		/* mirror copies in flight per worker; more are dropped */
#define WP_SHADOW_MS	   30000	/* ms: a mirror copy's life when its route has no timeout */
#define WP_EP_SLOTS	   256
#define WP_HEAD_TIMEOUT_MS 30000 /* default: a request head must be complete within this */
#define WP_IDLE_TIMEOUT_MS 60000 /* default: a connection with no request in flight closes */
#define WP_PENDING_POLL_MS 50	 /* a request waiting for a pool slot looks again this often */

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
	uint64_t serial; /* unique per snapshot of the process, from 1 (wp_snap_load) */
	struct zm_config *mesh;
	struct l7_config *l7;
	const struct zm_cfg_workload *self; /* the waypoint's own workload, if the mesh has it */
};

struct wp_opts {
	const char *configs[16];
	int n_configs;
	const char *mesh_config;
	bool kube;		 /* --kube: the in-cluster API (kube_source.c) */
	const char *kubeconfig;	 /* --kubeconfig FILE: the API of its current context */
	const char *kube_sa_dir; /* --kube-sa-dir: the token and CA (default: the kubelet's) */
	const char *identity;
	const char *ca_dir;
	const char *netns;
	int workers;
	int port, admin_port, metrics_port, ready_port;
	const char *handover; /* --handover PATH (main.c); NULL: none */
	int drain_timeout_s;  /* --drain-timeout; -1: not given (defaults apply), 0: unlimited */
	uint32_t head_timeout_ms; /* --request-head-timeout; 0: none */
	uint32_t idle_timeout_ms; /* --idle-timeout; 0: none */
};

struct wp_h1c;
struct wp_h2u;

struct wp_worker {
	struct wp *wp;
	int id;
	struct rt_loop *loop;
	struct rt_listener lis[WP_MAX_LIS];
	int n_lis;
	char lis_name[32];
	bool quiet;			 /* draining: listeners closed, GOAWAYs sent */
	struct zm_link conns;		 /* live downstream connections (wp_conn.link) */
	struct rt_hset hset;		 /* server and client HBONE connections */
	struct wp_h1c *h1_idle;		 /* HTTP/1 upstream connections waiting for a request */
	struct wp_h2u *h2us;		 /* HTTP/2 upstream sessions (h2up.c) */
	unsigned int n_shadows;		 /* mirror copies in flight (request.c) */
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
	char self_ns[64], self_sa[128]; /* of --identity */
	pthread_mutex_t snap_lock;
	struct wp_snap *snap;
	struct rt_control control; /* the main thread: signals, config polling */
	struct rt_drain drain;	   /* SIGTERM or a hand-over (main.c) */
	atomic_int n_inbound;	   /* HBONE connections from clients (all workers) */
	atomic_int n_upstream;	   /* HBONE connections to endpoint pods */
	time_t cfg_mtime;	   /* of the config files behind snap */
	/* metrics: the process registry's families (metrics.c) */
	struct wp_metrics *m;
};

/* snap.c */
extern struct wp *wp_g;
struct wp_snap *wp_snap_get(struct wp *wp);
void wp_snap_put(struct wp_snap *s);
/* Build a snapshot from the files; NULL with the reasons in err. */
struct wp_snap *wp_snap_load(struct wp *wp, char *err, size_t len);
/* A changed or signalled config: a new snapshot, or the old one kept (logged). */
void wp_snap_reload(struct wp *wp);
uint32_t wp_rand(void);

/*
 * kube_source.c: the Kubernetes API instead of --mesh-config, beside --config. start connects
 * and waits for the first list of every kind (0 or -errno with err); watch starts the thread
 * that rebuilds the snapshot after changes; mesh and l7 build a snapshot's halves from the
 * store (0 or -errno with err); dump is the reflector's state as JSON (malloc'd) or NULL.
 */
bool wp_kube_enabled(const struct wp *wp);
int wp_kube_start(struct wp *wp, char *err, size_t len);
int wp_kube_watch(void);
void wp_kube_stop(void);
int wp_kube_mesh(struct zm_config **out, char *err, size_t len);
int wp_kube_l7(struct wp *wp, const struct zm_config *mesh, struct l7_config **out, char *err,
	       size_t len);
char *wp_kube_dump(void);

/*
 * telemetry.c: the request series a downstream connection used last, so that its requests
 * find their istio_requests_* series without formatting and looking up 25 label values each
 * time. Most labels are fixed by the connection (the client workload and principal, the
 * service), which is the cache's own key: a request that differs there empties it. The rest
 * (endpoint workload, protocol, code, gRPC status, flags) take few values per connection:
 * WP_MCACHE_N entries, replaced in turn. Workloads and services are compared by address
 * within one snapshot only (wp_snap.serial): a request of another snapshot empties the cache
 * first, so an address freed with an old snapshot and reused by a new one never matches.
 * Zeroed is empty; nothing to free.
 */
#define WP_MCACHE_N 4
struct wp_mcache {
	uint64_t serial; /* of the snapshot the pointers come from; 0: empty */
	const struct zm_cfg_workload *src;
	const struct zm_cfg_service *svc;
	char src_principal[OBS_ISTIO_ID_MAX];
	unsigned int n, next; /* entries in use; the one replaced next */
	struct wp_mcache_ent {
		const struct zm_cfg_workload *dst;
		unsigned int code;
		char protocol[8], grpc_status[8], flags[8];
		struct obs_series *const *s; /* the group's series (the registry's) */
	} e[WP_MCACHE_N];
};

/* telemetry.c: one finished request, in Istio's metric names and labels. */
struct wp_mreq {
	const struct wp_snap *snap; /* where src, dst and svc come from */
	struct wp_mcache *cache;    /* the connection's; NULL: none */
	const char *src_principal;  /* without spiffe:// ("" unknown) */
	/* NULL when unknown; dst's workload name and identity are the destination's labels */
	const struct zm_cfg_workload *src, *dst;
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
/*
 * A plain TCP stream relayed from a client to an endpoint: Istio's istio_tcp_* series (reporter
 * "waypoint") and an access record when it opens and when it closes, with bytes and reason.
 * The pointers stay valid while the stream lives (they point into its connection).
 */
struct wp_tcp_obs {
	const char *peer, *authority; /* the client's principal (no spiffe://), its VIP:port */
	const struct zm_cfg_workload *src, *dst;
	const struct zm_cfg_service *svc;
	char upstream[ZM_ADDR_STRLEN];	    /* the endpoint's addr:port */
	struct obs_series *const *m;	    /* NULL without metrics */
	uint64_t opened_ms, received, sent; /* from the client, to the client */
};
void wp_tcp_open(struct wp *wp, struct wp_tcp_obs *o);
/* Bytes relayed: rx from the client, tx to it. */
void wp_tcp_bytes(struct wp_tcp_obs *o, uint64_t rx, uint64_t tx);
void wp_tcp_close(struct wp_tcp_obs *o, const char *reason);
/* A downstream stream was classified: counts zmesh_waypoint_streams_total{protocol}. */
enum wp_stream_proto { WP_STREAM_HTTP, WP_STREAM_HTTP2, WP_STREAM_TCP };
void wp_metric_stream(struct wp *wp, enum wp_stream_proto p);
/* Register the waypoint's families (istio_requests_*, process, certificates). 0 or -errno. */
int wp_metrics_init(struct wp *wp);

/* workers.c */
/* rt_workers_start()'s init for one worker (ud: the struct wp): listener, HBONE set. */
int wp_worker_init(struct rt_worker *rw, void *ud);

/* The worker of a stream of its HBONE connection set. */
static inline struct wp_worker *wp_stream_worker(struct hb_stream *s)
{
	return rt_hconn_of_stream(s)->ud;
}

#endif
