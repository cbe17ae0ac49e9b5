/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zmesh-ca: the mesh's certificate service. Shared types of its three files: main.c (options,
 * the listener, one thread per connection, `issue-node`), rpc.c (TLS + HTTP/2 + gRPC framing
 * of one connection) and sign.c (CSR checks, node authorization against the local config,
 * certificate issuance). The CA key stays inside lib/tls's struct zm_ca and is never logged.
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
#include "tls/tls.h"

/* Identity of the CA's own serving certificate; clients expect it (zm_caclient default). */
#define ZCA_SERVER_SA	      "istiod"
#define ZCA_SERVER_NS	      "istio-system"
/* Identity every node certificate carries (the reference's trusted node account). */
#define ZCA_NODE_SA	      "ztunnel"
/* Connections served at once; more are closed right after accept (and logged). */
#define ZCA_MAX_CONNS_DEFAULT 64
/* A connection idle (or a handshake stalled) this long is closed. */
#define ZCA_IDLE_MS	      30000
/* Concurrent streams per connection (SETTINGS_MAX_CONCURRENT_STREAMS). */
#define ZCA_MAX_STREAMS	      8
/* Largest header block we accept (SETTINGS_MAX_HEADER_LIST_SIZE). */
#define ZCA_MAX_HEADER_LIST   (16u << 10)
/* Backdating of notBefore for clock skew, capped at a tenth of the lifetime. */
#define ZCA_BACKDATE_S	      300

struct zca {
	struct zm_ca *ca; /* validated CA directory (root, trust domain) */
	X509 *ca_cert;	  /* borrowed from ca */
	char td[128];
	char node_account[ZM_SPIFFE_ID_MAX]; /* callers allowed to impersonate */
	long default_ttl, max_ttl;	     /* seconds */
	SSL_CTX *ssl_ctx;
	int max_conns;
	atomic_int nconns;
	/* the local config naming which workload runs on which node (NULL: from the API) */
	const char *config_path;
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
 * kube.c: the Kubernetes API instead of config_path (kubeconfig NULL: in-cluster settings).
 * Waits for the first list of pods, then keeps z->cfg current from a thread. 0 or -errno.
 */
int zca_kube_start(struct zca *z, const char *kubeconfig, char *err, size_t len);

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

/* rpc.c: serve one accepted connection until it closes; closes fd. */
void zca_conn_serve(struct zca *z, int fd);
int zca_ssl_ctx_init(struct zca *z, char *err, size_t len);

#endif
