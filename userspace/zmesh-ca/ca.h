/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zmesh-ca: the mesh's certificate service. Shared types of its files: main.c (options, the
 * runtime's workers and their listeners, `issue-node`), rpc.c (TLS + HTTP/2 + gRPC framing of
 * one connection, event-driven on a worker's loop, and its deadlines), limits.c (what bounds
 * the connections: the per-peer count, eviction order, the rate-limited log lines and
 * counters of connections dropped) and sign.c (CSR checks, node authorization against the
 * local config, certificate issuance). The CA key stays inside lib/tls's struct zm_ca and is
 * never logged.
 */
#ifndef ZMESH_CA_CA_H
#define ZMESH_CA_CA_H

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "caclient/capb.h"
#include "common/list.h"
#include "obs/log.h"
#include "rt/workers.h"
#include "tls/tls.h"

/* Identity of the CA's own serving certificate; clients expect it (zm_caclient default). */
#define ZCA_SERVER_SA		 "istiod"
#define ZCA_SERVER_NS		 "istio-system"
/* Identity every node certificate carries (the reference's trusted node account). */
#define ZCA_NODE_SA		 "ztunnel"
/*
 * The bounds of a connection's life (README "Certificates and the CA service"); each has its
 * option. Every connection is in one of three phases, and each phase has a deadline that
 * bytes arriving do not move, so a peer that trickles bytes gains nothing:
 *  - handshake: the TLS handshake must finish within --handshake-timeout-ms of the accept;
 *  - busy (a request open): every request must be answered and its stream closed within
 *    --request-timeout-ms of its HEADERS;
 *  - idle (no request open): the next request must start within --idle-timeout-ms.
 * At most --max-conns connections at once, and at most --max-conns-per-peer from one source
 * address. When every slot is taken, a new connection takes the slot of a connection waiting
 * in its handshake or idle (of the address with the most connections open, the one waiting
 * longest: limits.c); it is refused only when every connection has a request in progress.
 * A connection held costs about 50 KiB (1,000 idle TLS connections: +50 MiB RSS), so the
 * default bounds that to about 25 MiB.
 */
#define ZCA_MAX_CONNS_DEFAULT	 512
#define ZCA_PEER_CONNS_DEFAULT	 16
#define ZCA_HANDSHAKE_MS_DEFAULT 10000
#define ZCA_REQUEST_MS_DEFAULT	 10000
#define ZCA_IDLE_MS_DEFAULT	 30000
/* At most one log line a second per kind of dropped connection (the rest are counted). */
#define ZCA_DROP_LOG_INTERVAL_MS 1000
/* Concurrent streams per connection (SETTINGS_MAX_CONCURRENT_STREAMS). */
#define ZCA_MAX_STREAMS		 8
/* Largest header block we accept (SETTINGS_MAX_HEADER_LIST_SIZE). */
#define ZCA_MAX_HEADER_LIST	 (16u << 10)
/* Backdating of notBefore for clock skew, capped at a tenth of the lifetime. */
#define ZCA_BACKDATE_S		 300

/* Why a connection was dropped: the label of zmesh_ca_connections_dropped_total{reason}. */
#define ZCA_DROP_REASONS(X)                                                                        \
	X(HANDSHAKE_TIMEOUT, "handshake_timeout")                                                  \
	X(REQUEST_TIMEOUT, "request_timeout")                                                      \
	X(IDLE_TIMEOUT, "idle_timeout")                                                            \
	X(EVICTED, "evicted")                                                                      \
	X(PEER_LIMIT, "peer_limit")                                                                \
	X(MAX_CONNS, "max_conns")
enum zca_drop {
#define ZCA_DROP_ENUM(e, s) ZCA_DROP_##e,
	ZCA_DROP_REASONS(ZCA_DROP_ENUM)
#undef ZCA_DROP_ENUM
	    ZCA_DROP__N
};

/* A connection's phase (above): each has its deadline; the eviction lists hold two. */
enum zca_phase {
	ZCA_PH_HANDSHAKE,
	ZCA_PH_IDLE,
	ZCA_PH_BUSY,
};

/*
 * Per worker (indexed by the worker id): the connections of this worker that another worker
 * picked for eviction (under zca.evict_lock), closed by this worker when its loop is woken.
 */
struct zca_worker {
	struct rt_loop *loop;
	struct zm_link evict_q;
};

struct zca_peers; /* limits.c: source address -> connections open */
struct zca_peer;  /* one source address with connections open */

struct zca {
	struct zm_ca *ca; /* validated CA directory (root, trust domain) */
	X509 *ca_cert;	  /* borrowed from ca */
	char td[128];
	char node_account[ZM_SPIFFE_ID_MAX]; /* callers allowed to impersonate */
	long default_ttl, max_ttl;	     /* seconds */
	SSL_CTX *ssl_ctx;
	int max_conns;	/* --max-conns */
	int peer_conns; /* --max-conns-per-peer */
	int handshake_ms, request_ms, idle_ms;
	atomic_int nconns;
	struct zca_peers *peers;
	struct zca_worker workers[RT_MAX_WORKERS];
	/*
	 * Every worker's connections that may be evicted, newest first (the oldest at the
	 * tail): in their TLS handshake, and idle. Taken once per phase change and eviction.
	 */
	pthread_mutex_t evict_lock;
	struct zm_link handshaking, idle;
	struct obs_ratelimit drop_rl[ZCA_DROP__N];
	atomic_ulong dropped[ZCA_DROP__N];
	/* the local config naming which workload runs on which node (NULL: from the API) */
	const char *config_path;
	const char *tokens_path; /* --tokens: Bearer tokens of nodes (tokens.c); NULL: none */
	pthread_mutex_t cfg_lock;
	struct zm_config *cfg;
	struct stat cfg_st;
	atomic_ulong issued, refused;
};

/* The verified caller of one connection. */
struct zca_caller {
	char addr[64];		   /* "ip:port", for logs */
	char id[ZM_SPIFFE_ID_MAX]; /* its certificate's SPIFFE id */
	char node[64];		   /* its certificate's subject CN ("" when none) */
};

/*
 * tokens.c: the caller a Bearer token stands for (istiod's way of authenticating ztunnels,
 * accepted so either CA serves either kind of client). The --tokens file holds lines
 * "<token> <node name>"; a match makes the caller that node's node account. Returns 0, or
 * -EACCES when no line matches, -errno when the file cannot be read. Read per call, so
 * edits apply at once; compared in constant time.
 */
int zca_token_caller(struct zca *z, const char *token, struct zca_caller *out);

/*
 * kube.c: the Kubernetes API instead of config_path (kubeconfig NULL: in-cluster settings).
 * Waits for the first list of pods, then keeps z->cfg current from a thread until
 * zca_kube_stop(). 0 or -errno.
 */
int zca_kube_start(struct zca *z, const char *kubeconfig, char *err, size_t len);
void zca_kube_stop(void);

/* sign.c */
int zca_load(struct zca *z, const char *dir, const char *config, char *err, size_t len);
void zca_fini(struct zca *z);
/*
 * Handle one decoded request from caller: check the CSR, authorize, sign. On success returns
 * ZM_GRPC_OK with the PEM chain (leaf, root) in chain[0..1] (malloc'd). Otherwise a gRPC
 * status code and the reason in why. Logs one line either way.
 */
int zca_handle(struct zca *z, const struct zca_caller *caller, const struct zm_capb_request *req,
	       char *chain[2], char *why, size_t wlen);
/* The CA's own serving certificate and key, signed at startup. */
int zca_server_cert(struct zca *z, X509 **cert, EVP_PKEY **key, char *err, size_t len);
/*
 * `issue-node`: write DIR/node-cert.pem, DIR/node-key.pem (0600) and DIR/ca-cert.pem for node
 * name, with the node account as URI SAN and CN=name.
 */
int zca_issue_node(struct zca *z, const char *dir, const char *name, long lifetime_s, char *err,
		   size_t len);

/* conn.c: the TLS server context (mutual TLS 1.3, ALPN h2, the CA's serving certificate). */
int zca_ssl_ctx_init(struct zca *z, char *err, size_t len);

/*
 * limits.c. zca_limits_init: the peer table and the counters of dropped connections (in the
 * process registry, for --metrics-port); 0 or -ENOMEM. zca_limits_fini frees the table.
 */
int zca_limits_init(struct zca *z);
void zca_limits_fini(struct zca *z);
/* Before the workers run: worker w's slot of z->workers (its loop and wake-up hook). */
void zca_worker_setup(struct zca *z, struct rt_worker *w);
/*
 * Take an accepted connection on loop l (a worker's): admitted under the limits above (making
 * room by eviction when every slot is taken) and served until it closes (conn.c), or refused
 * and closed at once. Owns fd from now on.
 */
void zca_conn_accept(struct zca *z, struct rt_loop *l, int fd);
/*
 * Count one more connection from addr (an address without port, as text) and return its
 * entry, valid until the matching zca_peer_put(). NULL with errno EBUSY when
 * --max-conns-per-peer are open from it already (nothing counted), or ENOMEM.
 */
struct zca_peer *zca_peer_get(struct zca *z, const char *addr);
/* One connection of p closed. */
void zca_peer_put(struct zca *z, struct zca_peer *p);
/*
 * A connection dropped for why: counted, and one log line at most every
 * ZCA_DROP_LOG_INTERVAL_MS per reason, naming addr and the detail (printf-style), plus how
 * many more were dropped for the same reason since the last line.
 */
void zca_drop(struct zca *z, enum zca_drop why, const char *addr, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
const char *zca_drop_name(enum zca_drop why);

#endif
