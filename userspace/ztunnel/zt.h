/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ztunnel process: shared types and the prototypes modules call across files. One
 * struct zt per process; one struct zt_worker per core, each with its own epoll loop and its
 * own SO_REUSEPORT listeners, so a connection's work stays on the CPU that accepted it (the
 * pool of HBONE client connections is per worker for the same reason: nghttp2 sessions are
 * single-threaded). The main thread runs the control loop: admin/metrics/readiness HTTP,
 * config reload (SIGHUP and mtime polling) and auto-enrollment.
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
#include "route.h"
#include "logfmt.h"

#define ZT_MAX_WORKERS	      64
#define ZT_CONNECT_TIMEOUT_MS 10000	      /* upstream dial */
#define ZT_POOL_IDLE_MS	      (5 * 60 * 1000) /* default --pool-idle-ms (section 3) */
#define ZT_BUF_MIN	      1024
#define ZT_BUF_MID	      (16 * 1024)
#define ZT_BUF_MAX	      (256 * 1024)

struct zt;
struct zt_worker;
struct zt_conn;
struct zt_pool;
struct hb_conn;
struct hb_stream;
struct zm_tls_ctx;
struct zm_identity_provider;

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
};

/* An fd in a worker's epoll set; fn runs for its events. */
struct zt_ev {
	void (*fn)(struct zt_worker *w, struct zt_ev *ev, uint32_t events);
	int fd;
	uint32_t armed; /* events registered, 0 when not in the set */
};

enum zt_lis_kind { ZT_LIS_OUTBOUND, ZT_LIS_INBOUND_PLAIN, ZT_LIS_HBONE };

struct zt_listener {
	struct zt_ev ev;
	enum zt_lis_kind kind;
};

/* Deferred release: objects closed inside a batch of events are freed after it. */
struct zt_dead {
	struct zt_dead *next;
	void (*free_fn)(void *p);
	void *p;
};

struct zt_worker {
	struct zt *zt;
	int id;
	int epfd;
	pthread_t thread;
	struct zt_listener lis[6];
	int n_lis;
	struct zt_conn *conns; /* every live proxied connection of this worker */
	struct zt_pool *pool;  /* outbound HBONE client connections */
	struct zt_hsrv *hsrv;  /* inbound HBONE server connections */
	struct zt_dead *dead;
	uint64_t now_ms;
};

struct zt {
	struct zt_opts opts;
	int n_workers;
	struct zt_worker workers[ZT_MAX_WORKERS];
	atomic_bool stop;
	atomic_bool ready;
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
	struct zt_ev ev;
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
	struct zt_conn *prev, *next; /* worker's list */
	struct zt_worker *w;
	enum zt_conn_state state;
	bool tunnel;	   /* a <-> HBONE stream, else a <-> b spliced */
	bool a_is_client;  /* a is the downstream client (byte accounting) */
	bool connect_on_a; /* the socket being dialed is a (inbound HBONE), else b */
	struct zt_leg a, b;
	struct zt_dir ab, ba; /* plain relay */
	struct hb_stream *st;
	/* tunnel relay, socket a -> stream: */
	char *buf;
	size_t buf_cap, buf_len, buf_off;
	bool a_eof, a_wr_shut, st_eof, st_shut, st_paused;
	uint64_t deadline_ms;
	struct zt_series *m;
	struct zt_conn_info info;
	enum zt_outcome outcome;
	char detail[160];
	void *pool_conn; /* outbound HBONE: the pooled connection carrying st */
};

/* worker.c */
int zt_workers_start(struct zt *zt);
void zt_workers_join(struct zt *zt);
int zt_ev_set(struct zt_worker *w, struct zt_ev *ev, uint32_t events);
void zt_ev_del(struct zt_worker *w, struct zt_ev *ev);
void zt_defer_free(struct zt_worker *w, void (*free_fn)(void *), void *p);
uint64_t zt_now_ms(void);

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
void zt_conn_log_open(struct zt_conn *c);
void zt_outbound_accept(struct zt_worker *w, int fd);
void zt_inbound_plain_accept(struct zt_worker *w, int fd);
void zt_conn_tick(struct zt_worker *w);
void zt_conn_reset_fd(int fd);
void zt_conn_count(struct zt_conn *c, bool from_a, size_t n);

/* relay.c */
int zt_relay_plain_start(struct zt_conn *c);
int zt_relay_tunnel_start(struct zt_conn *c);
void zt_relay_plain_event(struct zt_conn *c, int side, uint32_t events);
/* Give a direction's pipe back to the worker's pool (closed if it still holds bytes). */
void zt_relay_pipe_put(struct zt_dir *d);
void zt_relay_tunnel_event(struct zt_conn *c, uint32_t events);
size_t zt_tunnel_on_data(struct hb_stream *s, const uint8_t *buf, size_t len);
void zt_tunnel_on_eof(struct hb_stream *s);
void zt_tunnel_on_writable(struct hb_stream *s);
void zt_tunnel_on_stream_close(struct hb_stream *s, uint32_t error);

/* hbone_out.c: the pool */
int zt_pool_new(struct zt_worker *w);
void zt_pool_free(struct zt_worker *w);
void zt_pool_tick(struct zt_worker *w);
int zt_hbone_connect(struct zt_conn *c, const struct zt_route *r);
size_t zt_pool_conn_count(struct zt_worker *w);
void zt_hconn_after_batch(struct zt_worker *w);

/* hbone_in.c */
void zt_hbone_accept(struct zt_worker *w, int fd);
void zt_hsrv_tick(struct zt_worker *w);
void zt_hsrv_free_all(struct zt_worker *w);

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

/* enroll.c: returns the number of addresses that could not be enrolled (retry later) */
int zt_enroll_sync(struct zt *zt, const struct zt_snap *s);
/* JSON array text of the addresses this process enrolled (malloc'd) */
char *zt_enroll_dump(void);
/* Is addr enrolled by this process now? The last enrollment failure, as a sentence. */
bool zt_enroll_has(const struct zm_addr *addr);
void zt_enroll_last_error(char *buf, size_t len);

/*
 * kube_source.c: the Kubernetes API source. start waits for the first list of everything;
 * config builds a snapshot's config from the store (state.c); cni_pod makes sure the store
 * knows a pod before the CNI verdict (-EAGAIN with err: ask again later); dump is JSON text.
 */
struct zm_config;
bool zt_kube_enabled(const struct zt *zt);
int zt_kube_start(struct zt *zt, char *err, size_t len);
void zt_kube_stop(void);
int zt_kube_config(struct zm_config **out, char *err, size_t len);
int zt_kube_cni_pod(const char *ns, const char *name, char *err, size_t len);
char *zt_kube_dump(void);

/* admin.c */
int zt_control_run(struct zt *zt);

/* The process singleton, for callbacks that only get a library pointer. */
extern struct zt *zt_g;

#endif
