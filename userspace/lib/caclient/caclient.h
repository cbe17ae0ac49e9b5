/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ztunnel side of the CA service (zmesh-ca, Istio's IstioCertificateService): a
 * struct zm_identity_provider whose certificates come from CreateCertificate calls made over
 * mutual TLS with the node's own certificate. Per identity: a fresh ECDSA P-256 key and a CSR
 * with the SPIFFE URI as the only SAN and an empty subject, ImpersonatedIdentity set to the
 * same id. Certificates are prefetched for the identities the owner says this node needs
 * (wanted callback), fetched on demand otherwise, cached, rotated at half of their lifetime,
 * retried with exponential backoff (1 s doubling to 60 s) while the CA fails, and forgotten
 * once no local workload needs them. A refresh thread owned by the provider makes every CA
 * call (blocking, with a timeout); get() never talks to the CA itself: on a miss it asks the
 * thread and waits at most wait_ms. Connections keep the certificate reference they were
 * built with, so a rotation never disturbs them.
 */
#ifndef ZMESH_CACLIENT_CACLIENT_H
#define ZMESH_CACLIENT_CACLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "zmesh/ports.h"
#include "tls/tls.h"

/* Default port of the CA service (istiod's). */
#define ZM_CA_PORT_DEFAULT	   ZM_PORT_CA
/* File names inside a node directory written by `zmesh-ca issue-node`. */
#define ZM_NODE_CERT_FILE	   "node-cert.pem"
#define ZM_NODE_KEY_FILE	   "node-key.pem"
/* Rotation retry backoff bounds. */
#define ZM_CACLIENT_BACKOFF_MIN_MS 1000
#define ZM_CACLIENT_BACKOFF_MAX_MS 60000

/*
 * Parse "host:port", "[ipv6]:port" or "ipv6-without-port"-free forms into a socket address
 * (host resolved with getaddrinfo; blocking). Returns 0 or -EINVAL/-ENOENT.
 */
int zm_caclient_addr_parse(const char *text, struct sockaddr_storage *ss, socklen_t *sl);

/* The host part of "host:port" / "[v6]:port" into buf (empty when it does not parse). */
void zm_caclient_addr_host(const char *addr, char *buf, size_t len);

/*
 * Read a Bearer token file (a Kubernetes projected token: one line) into buf without
 * surrounding whitespace. Returns 0, or -errno / -EINVAL (empty, too long) with err.
 */
int zm_caclient_token_read(const char *path, char *buf, size_t len, char *err, size_t errlen);

/*
 * How a node proves itself to the CA: its certificate (zmesh-ca's mutual TLS), or a Bearer
 * token (istiod's way: the ztunnel's Kubernetes service-account token; zmesh-ca accepts it
 * with --tokens), or both. cluster_id, when set, goes in Istio's `clusterid` header.
 */
struct zm_caclient_auth {
	struct zm_cert *node; /* may be NULL with a token */
	const char *token;    /* may be NULL with a node certificate */
	const char *cluster_id;
};

/*
 * One CreateCertificate call: connect to addr, TLS with auth (roots verify the CA, named by
 * server_id: a spiffe:// URI SAN or a DNS name), send csr_pem for impersonated (may be NULL:
 * sent as the ImpersonatedIdentity metadata) with validity_s (0: CA default). On success returns 0
 * and the chain (leaf first) as malloc'd PEM strings in chain[0..*n). On a gRPC error returns
 * -EACCES (PERMISSION_DENIED, UNAUTHENTICATED), -EINVAL (INVALID_ARGUMENT, RESOURCE_EXHAUSTED) or
 * -EPROTO (others) with "CODE: message" in err; transport failures give -ECONNREFUSED, -ETIMEDOUT,
 * -EIO, ...
 */
int zm_caclient_call(const char *addr, struct zm_tls_roots *roots,
		     const struct zm_caclient_auth *auth, const char *server_id,
		     const char *csr_pem, const char *impersonated, long validity_s, int timeout_ms,
		     char **chain, size_t max, size_t *n, char *err, size_t len);

/*
 * Generate a P-256 key and a CSR for spiffe_id (URI SAN only, empty subject). *key_out and
 * *csr_out (malloc'd PEM) belong to the caller.
 */
int zm_caclient_csr_new(const char *spiffe_id, EVP_PKEY **key_out, char **csr_out, char *err,
			size_t len);

/*
 * Build a zm_cert from a PEM chain returned by the CA and the key that made the CSR: chain[0]
 * must match key and verify against roots; the last element (the root) is left out of the
 * presented chain. Takes no ownership.
 */
int zm_caclient_cert_build(EVP_PKEY *key, char *const *chain, size_t n, struct zm_tls_roots *roots,
			   struct zm_cert **out, char *err, size_t len);

/*
 * Identities this node needs now: called on the refresh thread about once a second. Call
 * add(ctx, id) for each; return 0, or -errno to keep the previous set.
 */
typedef int (*zm_caclient_wanted_fn)(void *ud, void (*add)(void *ctx, const char *id), void *ctx);

struct zm_caclient_opts {
	const char *addr;	    /* CA "host:port" (copied) */
	struct zm_tls_roots *roots; /* trust bundle (a reference is taken) */
	struct zm_cert *node;	    /* the node's client certificate (a reference is taken); may be
				     * NULL when token_file is set */
	/* Bearer token file, read before every call (tokens rotate); NULL: none. */
	const char *token_file;
	const char *cluster_id;	  /* Istio's clusterid header; NULL: none */
	const char *trust_domain; /* without a node certificate; NULL: cluster.local */
	/* The CA's expected identity: NULL means spiffe://TD/ns/istio-system/sa/istiod with a
	 * node certificate, else the host part of addr as a DNS name (istiod's serving cert). */
	const char *server_id;
	long validity_s;     /* requested lifetime; 0: $ZM_CERT_LIFETIME or the CA's default */
	int timeout_ms;	     /* per CA call; 0: 5000 */
	int wait_ms;	     /* get() wait on a miss; 0: 2000 */
	int keep_unwanted_s; /* on-demand ids nobody lists are kept this long; 0: 60 */
	zm_caclient_wanted_fn wanted; /* may be NULL: only on-demand identities */
	void *wanted_ud;
};

int zm_caclient_provider_new(const struct zm_caclient_opts *o, struct zm_identity_provider **out,
			     char *err, size_t len);

/*
 * A trust bundle or node certificate reload: use roots and/or node (either may be NULL: kept)
 * for CA calls from now on, and re-fetch every cached certificate (each stays in use until its
 * successor arrives), so none keeps chaining to a root that is about to be removed.
 */
int zm_caclient_provider_update(struct zm_identity_provider *p, struct zm_tls_roots *roots,
				struct zm_cert *node);

/*
 * Cached certificates as a JSON array (malloc'd): identity, state (pending, valid, rotating,
 * fetch-failed, expired), wanted, serial, issuer, not_before, not_after, rotate_in_s, error.
 */
char *zm_caclient_provider_dump(struct zm_identity_provider *p);

/* True when p was made by zm_caclient_provider_new(). */
bool zm_caclient_provider_is(const struct zm_identity_provider *p);

#endif
