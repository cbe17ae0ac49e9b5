/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ztunnel process: shared types and the prototypes modules call across files. One
 * struct zt per process; one struct zt_worker per core on the runtime's workers (lib/rt), each
 * with its own SO_REUSEPORT listeners and its own HBONE connection set, so a connection's
 * work stays on the CPU that accepted it (nghttp2 sessions are single-threaded). The main
 * thread runs the control loop (config reload on SIGHUP and mtime polling, auto-enrollment);
 * admin/metrics/readiness are lib/obs's responder on its own thread.
 *
 * Files: main.c (options, start-up), worker.c (listeners, accept paths), conn.c (a proxied
 * connection's life), relay.c (moving bytes), hconn.c (HBONE client pool and 15008 server),
 * authz.c (L4 policy), route.c (pure routing), telemetry.c (access log, istio_tcp_*),
 * admin.c (control loop and admin routes), identity.c, state.c, enroll.c; the model's other
 * sources: xds_source.c (istiod) and kube_source.c (the Kubernetes API).
 *
 * A proxied connection (struct zt_conn) is either two sockets relayed with splice() (plain
 * legs: same node, plain TCP, passthrough, inbound plaintext) or one socket and an HBONE
 * stream (outbound HBONE, inbound 15008).
 */
#ifndef ZTUNNEL_ZT_H
#define ZTUNNEL_ZT_H

#include <linux/types.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/addr.h"
#include "common/list.h"
#include "rt/control.h"
#include "rt/drain.h"
#include "rt/hbset.h"
#include "rt/workers.h"
#include "route.h"
#include "telemetry.h"

#define ZT_MAX_LIS	      24 /* listening sockets per worker */
#define ZT_MAX_WORKERS	      RT_MAX_WORKERS
#define ZT_CONNECT_TIMEOUT_MS 10000	      /* upstream dial */
#define ZT_POOL_IDLE_MS	      (5 * 60 * 1000) /* default --pool-idle-ms (section 3) */
#define ZT_BUF_MIN	      1024	      /* tunnel reads: the first size */
#define ZT_BUF_MID	      (16 * 1024)     /* after a read filled the first */
#define ZT_BUF_MAX	      (256 * 1024)    /* after a read filled the second */
/*
 * --hbone-early-data: most bytes of a client sent before the CONNECT's answer. The server
 * holds them uncredited (connection window too) until its upstream is up: kept small so
 * streams waiting on a slow dial cannot fill a pooled connection's window (16 MiB) and
 * stall its other streams (HB_MAX_STREAMS x 16 KiB = 1.6 MiB at most).
 */
#define ZT_EARLY_MAX	      (16 * 1024)

struct zt;
struct zt_worker;
struct zt_conn;
struct zt_pool;
struct hb_conn;
struct hb_stream;
struct zm_tls_ctx;
struct zm_identity_provider;
struct zm_config;

struct zt_opts {
	const char *config;
	const char *node;
	const char *netns;
	const char *pin_dir;
	const char *ca_dir;
	const char *ca_addr; /* --ca-addr: certificates from zmesh-ca */
	int admin_port, metrics_port, ready_port;
	int workers;
	bool check;
	bool no_enroll;
	const char *run_dir;	 /* --run-dir: cni.sock and pods.json (agent.h), NULL: none */
	const char *cgroup_root; /* --cgroup-root: where pods' cgroup paths start */
	int poll_ms;		 /* config mtime poll interval */
	/* The Kubernetes API as the source (kube_source.c), instead of config */
	bool kube;		 /* --kube: in-cluster settings */
	const char *kubeconfig;	 /* --kubeconfig FILE */
	const char *kube_sa_dir; /* --kube-sa-dir: in-cluster token and CA, default the kubelet's */
	int pool_idle_ms;	 /* release a pooled HBONE connection idle this long */
	/* istiod (xds_source.c): workloads, services and policies over delta ADS */
	const char *xds_address; /* --xds-address / XDS_ADDRESS; NULL: the config file */
	const char *token_file;	 /* --token-file: Bearer token for istiod's xDS and CA */
	const char *cluster_id;	 /* --cluster-id / CLUSTER_ID: Istio's clusterid header */
	const char *cp_name;	 /* --istiod-name: its TLS name (SPIFFE id or DNS) */
	const char *xds_root;	 /* --xds-root-cert: roots istiod's certificate verifies against */
	/* drain.c: hand-over and drain */
	const char *handover; /* --handover PATH; default RUN_DIR/ztunnel.handover; NULL: none */
	int drain_timeout_s;  /* --drain-timeout; -1: not given (defaults apply), 0: unlimited */
	bool early_data;      /* --hbone-early-data: outbound bytes before the 200 (relay.c) */
};

enum zt_lis_kind { ZT_LIS_OUTBOUND, ZT_LIS_INBOUND_PLAIN, ZT_LIS_HBONE };

/* One worker's state, hung off its runtime worker (rt_worker.ud). */
struct zt_worker {
	struct zt *zt;
	int id;
	struct rt_loop *loop;
	/* Up to ZT_MAX_LIS: a hand-over from a process with more workers brings more sockets. */
	struct rt_listener lis[ZT_MAX_LIS];
	enum zt_lis_kind lis_kind[ZT_MAX_LIS];
	char lis_name[ZT_MAX_LIS][40]; /* "outbound 0.0.0.0:15001": for the log lines */
	int n_lis;
	bool quiet;	      /* listeners closed, HBONE draining (zt_worker_quiet) */
	struct zm_link conns; /* every live proxied connection of this worker (zt_conn.link) */
	struct rt_hset hset;  /* HBONE: outbound pool and inbound 15008 connections */
};

struct zt {
	struct zt_opts opts;
	int n_workers;
	struct rt_workers rt;
	struct zt_worker workers[ZT_MAX_WORKERS];
	struct rt_control control; /* the main thread's loop: signals, config polling */
	atomic_bool stop;
	atomic_bool ready;    /* what /healthz/ready says: zt_ready_update() keeps it */
	atomic_bool running;  /* the control loop runs (workers up, first enrollment done) */
	atomic_bool draining; /* /drain, SIGTERM or a hand-over: never ready again */
	atomic_bool healthy;  /* health.c: datapath, enrollment and certificates all fine */
	/* drain.c: stopping without cutting connections */
	struct rt_drain drain;
	atomic_int n_conns; /* proxied connections (struct zt_conn) over all workers */
	/* identities: NULL when no --ca-dir (then HBONE destinations are refused) */
	struct zm_identity_provider *idp;
	struct zm_tls_ctx *tls_client;
	struct zm_tls_ctx *tls_server;
	char trust_domain[128];
	atomic_int pool_conns;	  /* outbound HBONE connections over all workers (admin, metrics) */
	atomic_int hbone_inbound; /* inbound 15008 connections over all workers */
};

/* One end of a plain leg. */
struct zt_leg {
	struct rt_ev ev;
	struct zt_conn *c;
	int side; /* 0: a, 1: b */
};

/* One direction of a splice relay: src socket -> pipe -> dst socket. */
struct zt_dir {
	int pipe[2];
	size_t in_pipe; /* bytes sitting in the pipe */
	bool eof;	/* src reached EOF */
	bool shut;	/* dst got SHUT_WR */
	bool dst_blocked;
};

enum zt_conn_state { ZT_CS_CONNECTING, ZT_CS_WAIT_RESPONSE, ZT_CS_RELAY, ZT_CS_DONE };

struct zt_conn {
	struct zm_link link; /* in its worker's conns */
	struct zt_worker *w;
	enum zt_conn_state state;
	bool tunnel;	   /* a <-> HBONE stream, else a <-> b spliced */
	bool a_is_client;  /* a is the downstream client (byte accounting) */
	bool connect_on_a; /* the socket being dialed is a (inbound HBONE), else b */
	struct zt_leg a, b;
	struct zt_dir ab, ba; /* plain relay */
	struct hb_stream *st;
	/* tunnel relay, socket a -> stream (read straight into the stream's queue): */
	size_t rd_want; /* the next read's size: ZT_BUF_MIN, _MID or _MAX */
	bool st_full;	/* the stream's queue is full: reading waits for on_writable */
	size_t early;	/* bytes sent before the CONNECT's answer (at most ZT_EARLY_MAX) */
	bool a_eof, a_wr_shut, st_eof, st_shut, st_paused;
	struct rt_timer deadline;    /* dial or CONNECT answer, armed until the relay starts */
	struct obs_series *const *m; /* its istio_tcp_* series, [OBS_TCP_...] */
	struct zt_conn_info info;
	enum zt_outcome outcome;
	char detail[160];
	void *pool_conn; /* outbound HBONE: the pooled connection carrying st */
};

/* worker.c */
/* rt_workers_start()'s init for one worker (ud: the struct zt): listeners, HBONE set. */
int zt_worker_init(struct rt_worker *rw, void *ud);

/* conn.c */
struct zt_conn *zt_conn_new(struct zt_worker *w, int fd_a, bool a_is_client);
void zt_conn_finish(struct zt_conn *c, enum zt_outcome o, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int zt_dial(const struct zm_addr *src, const struct zm_addr *dst, __u16 port, int *fd);
struct zm_cfg_workload;
struct zm_cfg_service;
void zt_conn_describe(struct zt_conn *c, const struct zm_cfg_workload *src,
		      const struct zm_cfg_workload *dst, const struct zm_cfg_service *svc,
		      const char *reporter, bool mtls, const char *peer_id);
/*
 * Move an inbound connection to the series of the same labels with response_flags flags
 * ("DENY"): its close is counted there (its open already was, in the plain series).
 */
void zt_conn_series_flag(struct zt_conn *c, const struct zm_cfg_workload *src,
			 const struct zm_cfg_workload *dst, bool mtls, const char *flags);
void zt_conn_log_open(struct zt_conn *c);
void zt_outbound_accept(struct zt_worker *w, int fd);
void zt_inbound_plain_accept(struct zt_worker *w, int fd);
/* Arm c's dial/answer deadline ZT_CONNECT_TIMEOUT_MS from now. */
void zt_conn_deadline_start(struct zt_conn *c);
void zt_conn_reset_fd(int fd);
void zt_conn_count(struct zt_conn *c, bool from_a, size_t n);

/* relay.c */
int zt_relay_plain_start(struct zt_conn *c);
int zt_relay_tunnel_start(struct zt_conn *c);
/* Outbound, CONNECT sent, --hbone-early-data: read the client into the stream before the 200. */
void zt_relay_tunnel_early(struct zt_conn *c);
void zt_relay_plain_event(struct zt_conn *c, int side, uint32_t events);
/* Give a direction's pipe back to the worker's pool (closed if it still holds bytes). */
void zt_relay_pipe_put(struct zt_dir *d);
void zt_relay_tunnel_event(struct zt_conn *c, uint32_t events);
size_t zt_tunnel_on_data(struct hb_stream *s, const uint8_t *buf, size_t len);
void zt_tunnel_on_eof(struct hb_stream *s);
void zt_tunnel_on_writable(struct hb_stream *s);
void zt_tunnel_on_stream_close(struct hb_stream *s, uint32_t error);

/* hconn.c: HBONE, outbound (the pool) and inbound (15008) */
int zt_hset_init(struct zt_worker *w);
int zt_hbone_connect(struct zt_conn *c, const struct zt_route *r);
void zt_hbone_accept(struct zt_worker *w, int fd);

/* identity.c */
int zt_identity_init(struct zt *zt, char *err, size_t len);
void zt_identity_fini(struct zt *zt);
/* Reload the trust bundle (and node certificate) when forced or changed on disk. */
void zt_identity_reload(struct zt *zt, bool force);
/* JSON array text of this node's workload certificates (malloc'd; admin /certs). */
char *zt_identity_certs_json(struct zt *zt);

/* state.c: the current snapshot, refcounted */
int zt_state_load(struct zt *zt, char *err, size_t len);
struct zt_snap *zt_state_get(void);
void zt_state_put(struct zt_snap *s);
int zt_state_reload_if_changed(struct zt *zt, bool force);
__u64 zt_state_generation(void);
/* Tell the control thread a snapshot came in from elsewhere (policies, fast path follow it). */
void zt_state_mark_news(void);

/* state.c: swap in a snapshot made by another source (xDS), like a reload; takes cfg. */
int zt_state_install(struct zt *zt, struct zm_config *cfg, char *err, size_t len);

/* xds_source.c: the xDS thread (--xds-address) and its state for /config_dump. */
int zt_xds_start(struct zt *zt, char *err, size_t len);
void zt_xds_stop(void);
char *zt_xds_dump(void);  /* JSON object text (malloc'd), NULL without xDS */
bool zt_xds_synced(void); /* true without xDS, else once both types had a response */

/* enroll.c: returns the number of addresses that could not be enrolled (retry later) */
int zt_enroll_sync(struct zt *zt, const struct zt_snap *s);
/* JSON array text of the addresses this process enrolled (malloc'd) */
char *zt_enroll_dump(void);
/* Is addr enrolled by this process now? The last enrollment failure, as a sentence. */
bool zt_enroll_has(const struct zm_addr *addr);
void zt_enroll_last_error(char *buf, size_t len);
/*
 * Addresses we enrolled that the pinned datapath does not hold (it was unloaded and loaded
 * again, or a hand edited it): how many, the first one described in why. Control loop.
 */
int zt_enroll_missing(struct zt *zt, char *why, size_t len);

/*
 * kube_source.c: the Kubernetes API source (--kube, --kubeconfig). start waits for the first
 * list of everything; config builds a snapshot's config from the store (state.c); cni_pod makes
 * sure the store knows a pod before the CNI verdict (-EAGAIN with err: ask again later); dump
 * is JSON text (malloc'd); synced is true without the API, else once the first list is in.
 */
bool zt_kube_enabled(const struct zt *zt);
int zt_kube_start(struct zt *zt, char *err, size_t len);
void zt_kube_stop(void);
int zt_kube_config(struct zm_config **out, char *err, size_t len);
int zt_kube_cni_pod(const char *ns, const char *name, char *err, size_t len);
char *zt_kube_dump(void);
bool zt_kube_synced(void);

/* admin.c: the admin routes and the control loop */
int zt_admin_start(struct zt *zt);
void zt_admin_stop(void);
/*
 * ready = running && healthy && !draining && (without xDS, or xDS had both types' first
 * answer) && (without the Kubernetes API, or its first list is in).
 */
void zt_ready_update(struct zt *zt);
/*
 * health.c, control loop: datapath of our ABI, local workloads enrolled, certificates held.
 * Returns the addresses that need enrolling again (the control loop retries them).
 */
int zt_health_check(struct zt *zt, int enroll_failed);

/* drain.c: stopping without cutting connections, and upgrades that hand sockets over */
/* SIGTERM/SIGINT drain from now on; a second one cuts what is left and stops. */
void zt_drain_init(struct zt *zt);
/* A newer ztunnel serves on our sockets (rt_handover_ops.release). */
void zt_drain_handed_over(void *ud);
/* In each worker after a wake-up: close its listeners and GOAWAY once draining. */
void zt_worker_quiet(struct zt_worker *w);
/* Before any thread starts: blocks the signals the control loop takes. */
int zt_control_init(struct zt *zt);
int zt_control_run(struct zt *zt);
/* config_dump.c: the admin /config_dump JSON (malloc'd) */
char *zt_config_dump(struct zt *zt);

/* The process singleton, for callbacks that only get a library pointer. */
extern struct zt *zt_g;

#endif
