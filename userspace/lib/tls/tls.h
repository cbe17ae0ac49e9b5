/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Workload identities and mutual TLS for HBONE (OpenSSL 3), shared by ztunnel and the
 * waypoint: SPIFFE ids, refcounted certificates (leaf + key + chain), a file-backed dev CA,
 * an identity-provider interface (the dev CA today, a CA service later), and TLS 1.3 contexts
 * with the peer checks of userspace/lib/hbone/README.md: TLS 1.3 only, AES-GCM suites, ALPN "h2",
 * no SNI, client certificates required, server certificate chosen by the address the connection
 * arrived on, URI SAN checks (server: peer in our trust domain; client: peer is one of the
 * expected ids). Everything here is thread-safe: certificates and contexts are immutable once
 * built and refcounted; the provider cache has its own lock. Functions return 0 or -errno and
 * write a one-line reason into err (never key material).
 */
#ifndef ZMESH_TLS_TLS_H
#define ZMESH_TLS_TLS_H

#include <errno.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "common/addr.h"

/* Longest SPIFFE id we accept, NUL included ("spiffe://td/ns/x/sa/y"). */
#define ZM_SPIFFE_ID_MAX 256
#define ZM_SPIFFE_PREFIX "spiffe://"

/* File names inside a dev CA directory. */
#define ZM_CA_KEY_FILE	"ca-key.pem"
#define ZM_CA_CERT_FILE "ca-cert.pem"

/* Default workload certificate lifetime (seconds); ZM_CERT_LIFETIME in the env overrides. */
#define ZM_CERT_LIFETIME_DEFAULT (24 * 3600)
#define ZM_CERT_LIFETIME_ENV	 "ZM_CERT_LIFETIME"

/* Dev CA root lifetime: 10 years. */
#define ZM_CA_LIFETIME (10L * 365 * 24 * 3600)

/* ALPN protocol every HBONE connection negotiates. */
#define ZM_TLS_ALPN "h2"

/* ---- SPIFFE ids ---- */

/* The parts of "spiffe://<trust_domain>/ns/<namespace>/sa/<service_account>". */
struct zm_spiffe_id {
	char trust_domain[128];
	char ns[64];
	char sa[64];
};

/*
 * Parse a SPIFFE URI (with the spiffe:// prefix). Accepts only the Istio shape
 * ".../ns/<ns>/sa/<sa>"; refuses anything else with -EINVAL. out may be NULL (validate only).
 */
int zm_spiffe_id_parse(const char *uri, struct zm_spiffe_id *out);

/* Write "spiffe://td/ns/ns/sa/sa" into buf. Returns 0 or -ENAMETOOLONG / -EINVAL. */
int zm_spiffe_id_format(char *buf, size_t len, const char *trust_domain, const char *ns,
			const char *sa);

/* The id without "spiffe://" (what policies compare as a principal); id itself when absent. */
const char *zm_spiffe_principal(const char *id);

/* ---- certificates ---- */

/*
 * A workload certificate: leaf, private key, intermediate chain (may be empty) and its SPIFFE
 * id. Immutable after creation; shared between threads by reference counting.
 */
struct zm_cert;

struct zm_cert *zm_cert_ref(struct zm_cert *cert);
/* Drop a reference (NULL is fine); the last one frees the key. */
void zm_cert_put(struct zm_cert *cert);

/* The SPIFFE id (full URI) of the leaf's URI SAN. */
const char *zm_cert_identity(const struct zm_cert *cert);
time_t zm_cert_not_before(const struct zm_cert *cert);
time_t zm_cert_not_after(const struct zm_cert *cert);
/* Serial number as lower-case hex into buf. Returns buf. */
const char *zm_cert_serial(const struct zm_cert *cert, char *buf, size_t len);
/* True once now has passed half of the certificate's lifetime (time to rotate). */
bool zm_cert_needs_rotation(const struct zm_cert *cert, time_t now);

/* Borrowed OpenSSL objects (valid while the caller holds a reference). */
X509 *zm_cert_x509(const struct zm_cert *cert);
EVP_PKEY *zm_cert_pkey(const struct zm_cert *cert);
STACK_OF(X509) * zm_cert_chain(const struct zm_cert *cert);

/*
 * Write the leaf (+chain) PEM to cert_path and the key PEM to key_path (created 0600, replaced
 * atomically by rename). For interop tests and tools; the daemons keep keys in memory.
 */
int zm_cert_write_pem(const struct zm_cert *cert, const char *cert_path, const char *key_path,
		      char *err, size_t len);

/*
 * Load a leaf (+ following chain certificates) and its key from PEM files. The leaf must carry
 * exactly one spiffe:// URI SAN and match the key. Returns 0 with *out (one reference).
 */
int zm_cert_load_pem(const char *cert_path, const char *key_path, struct zm_cert **out, char *err,
		     size_t len);

/*
 * Build a certificate from memory: certs_pem holds the leaf then its intermediates (a root at
 * the end is kept too; peers ignore it), key_pem the leaf's private key. The same checks as
 * zm_cert_load_pem(). Returns 0 with *out (one reference).
 */
int zm_cert_from_pem(const char *certs_pem, size_t certs_len, const char *key_pem, size_t key_len,
		     struct zm_cert **out, char *err, size_t len);
/* The same with the key already in memory (the certificate takes its own reference). */
int zm_cert_from_pem_key(const char *certs_pem, size_t certs_len, EVP_PKEY *key,
			 struct zm_cert **out, char *err, size_t len);

/* ---- trust roots ---- */

/* A set of trusted root certificates (refcounted, immutable). */
struct zm_tls_roots;

/* Load every certificate of a PEM bundle. Refuses an empty bundle (-ENOENT). */
int zm_tls_roots_load(const char *pem_path, struct zm_tls_roots **out, char *err, size_t len);
/* The same from a PEM bundle in memory. */
int zm_tls_roots_from_pem(const char *pem, size_t pem_len, struct zm_tls_roots **out, char *err,
			  size_t len);
struct zm_tls_roots *zm_tls_roots_ref(struct zm_tls_roots *roots);
void zm_tls_roots_put(struct zm_tls_roots *roots);
/* Number of root certificates in the set. */
int zm_tls_roots_count(const struct zm_tls_roots *roots);

/* ---- dev CA ---- */

/* A CA key + self-signed root loaded in memory (the dev CA of `zmeshctl ca init`). */
struct zm_ca;

/*
 * Create dir (mode 0700 when missing) with ca-key.pem (0600) and ca-cert.pem (0644): ECDSA
 * P-256, 10 years, subject O=<trust_domain> CN=zmesh dev CA. Refuses to overwrite an existing
 * key (-EEXIST); trust_domain NULL means "cluster.local".
 */
int zm_ca_init_files(const char *dir, const char *trust_domain, char *err, size_t len);

/* Load the CA written by zm_ca_init_files(). Refuses a group/world-readable key (-EPERM). */
int zm_ca_load(const char *dir, struct zm_ca **out, char *err, size_t len);
void zm_ca_free(struct zm_ca *ca);

/* The trust domain recorded in the root (its subject O). */
const char *zm_ca_trust_domain(const struct zm_ca *ca);
/* The root as a trust set (new reference). */
struct zm_tls_roots *zm_ca_roots(struct zm_ca *ca);
/* The root certificate (borrowed). */
X509 *zm_ca_x509(const struct zm_ca *ca);

/*
 * Issue a workload certificate: fresh ECDSA P-256 key, empty subject, spiffe_id as the only
 * (critical) SAN, random 128-bit serial, notBefore = now - 5 min, notAfter = now + lifetime_s.
 * A negative lifetime_s (down to -299) yields an already-expired certificate (for tests).
 * Thread-safe. Returns 0 with *out (one reference).
 */
int zm_ca_issue(struct zm_ca *ca, const char *spiffe_id, long lifetime_s, struct zm_cert **out,
		char *err, size_t len);

/*
 * What zm_ca_sign_pubkey() puts in a leaf besides the public key: the SPIFFE id as URI SAN,
 * lifetime_s from now (notBefore backdated by 5 min at most and a tenth of the lifetime at
 * most, so a short test lifetime still starts now; notAfter never past the root's), an
 * optional subject CN (NULL: empty subject and a critical SAN) and optional extra SANs in
 * openssl.cnf syntax ("DNS:a,IP:1.2.3.4"; trusted text only, never request data).
 */
struct zm_ca_leaf_opts {
	const char *spiffe_id;
	long lifetime_s;
	const char *cn;
	const char *extra_sans;
};

/*
 * Sign a leaf for pub (the CA keeps no reference). A negative lifetime_s (down to -299) gives
 * an already-expired certificate, for tests. Returns 0 with *out (caller frees).
 */
int zm_ca_sign_pubkey(struct zm_ca *ca, EVP_PKEY *pub, const struct zm_ca_leaf_opts *o, X509 **out,
		      char *err, size_t len);

/*
 * Sign a CSR for spiffe_id (the caller has authorized it): the CSR's self-signature must
 * verify; its subject and requested extensions are ignored (the leaf gets an empty subject and
 * spiffe_id as its only SAN). lifetime_s > 0. Returns 0 with *out (caller frees).
 */
int zm_ca_sign_csr(struct zm_ca *ca, X509_REQ *req, const char *spiffe_id, long lifetime_s,
		   X509 **out, char *err, size_t len);

/* ---- identity providers ---- */

/*
 * Where workload certificates come from. get() returns a certificate for spiffe_id (one new
 * reference), valid now and not yet due for rotation; implementations cache and are safe to
 * call from several threads. roots() returns the current trust roots (new reference).
 */
struct zm_identity_provider {
	int (*get)(struct zm_identity_provider *p, const char *spiffe_id, struct zm_cert **out,
		   char *err, size_t len);
	struct zm_tls_roots *(*roots)(struct zm_identity_provider *p);
	void (*destroy)(struct zm_identity_provider *p);
	/* Visit every certificate held (under the provider's lock: fn must not call back). */
	int (*each)(struct zm_identity_provider *p,
		    void (*fn)(void *ud, const char *id, const struct zm_cert *cert), void *ud);
};

static inline int zm_identity_get(struct zm_identity_provider *p, const char *spiffe_id,
				  struct zm_cert **out, char *err, size_t len)
{
	return p->get(p, spiffe_id, out, err, len);
}

/* Every certificate the provider holds now (cert-expiry metrics); 0 or -errno. */
static inline int zm_identity_each(struct zm_identity_provider *p,
				   void (*fn)(void *ud, const char *id, const struct zm_cert *cert),
				   void *ud)
{
	return p && p->each ? p->each(p, fn, ud) : -EOPNOTSUPP;
}

static inline void zm_identity_provider_free(struct zm_identity_provider *p)
{
	if (p)
		p->destroy(p);
}

/*
 * The dev-CA provider: issues from ca, caches one certificate per identity and re-issues at
 * half lifetime. Takes ownership of ca on success only (on failure the caller frees it).
 * lifetime_s <= 0 means $ZM_CERT_LIFETIME (seconds) or ZM_CERT_LIFETIME_DEFAULT.
 */
int zm_dev_provider_new(struct zm_ca *ca, long lifetime_s, struct zm_identity_provider **out,
			char *err, size_t len);

/*
 * Visit the dev provider's cached certificates (under its lock: fn must not call back into
 * the provider). Returns -EINVAL when p is not a dev provider.
 */
int zm_dev_provider_each(struct zm_identity_provider *p,
			 void (*fn)(void *ud, const char *id, const struct zm_cert *cert),
			 void *ud);

/* Rotation time of a certificate (half of its lifetime from when it was issued or loaded). */
time_t zm_cert_rotate_at(const struct zm_cert *cert);

/* ---- TLS contexts and connections ---- */

/*
 * A TLS configuration (server or client) wrapping an SSL_CTX. Refcounted: every SSL made from
 * it keeps it alive, so a caller may drop its reference (e.g. after a root reload built a new
 * context) while connections are still open. zm_tls_ctx_set_roots() swaps the roots that
 * connections made afterwards verify their peer with (a trust bundle reload); connections made
 * before keep the roots they started with.
 * SSL modes: RELEASE_BUFFERS (idle connections give their buffers back), ENABLE_PARTIAL_WRITE
 * (SSL_write may return fewer bytes than asked) and ACCEPT_MOVING_WRITE_BUFFER (a retried
 * SSL_write may pass the same bytes from a reallocated buffer, never fewer of them).
 * No session tickets, no session cache: every connection gets the full peer checks.
 */
struct zm_tls_ctx;

/* Verify peers of connections made from now on against roots (thread-safe). */
void zm_tls_ctx_set_roots(struct zm_tls_ctx *ctx, struct zm_tls_roots *roots);

/*
 * Server certificate choice: called during each handshake with the local (destination)
 * address the connection arrived on. Return 0 and *out (one reference, released by the
 * library), or -errno (e.g. -ENOENT: no local workload there) to fail the handshake.
 * Called on the thread driving the handshake.
 */
typedef int (*zm_tls_cert_select_fn)(void *ud, const struct zm_addr *local, struct zm_cert **out);

/*
 * Server: TLS 1.3 only, the two AES-GCM suites, ALPN "h2" required (no overlap -> handshake
 * alert), a client certificate required and verified against roots, whose URI SAN must be a
 * spiffe:// id in trust_domain (NULL: any trust domain the roots vouch for).
 */
int zm_tls_server_ctx_new(struct zm_tls_roots *roots, const char *trust_domain,
			  zm_tls_cert_select_fn select, void *ud, struct zm_tls_ctx **out,
			  char *err, size_t len);

/* Client: the same versions and suites, ALPN "h2", server chain verified against roots. */
int zm_tls_client_ctx_new(struct zm_tls_roots *roots, struct zm_tls_ctx **out, char *err,
			  size_t len);

struct zm_tls_ctx *zm_tls_ctx_ref(struct zm_tls_ctx *ctx);
void zm_tls_ctx_put(struct zm_tls_ctx *ctx);
/* The wrapped SSL_CTX (borrowed). */
SSL_CTX *zm_tls_ctx_ssl_ctx(struct zm_tls_ctx *ctx);

/*
 * A server-side SSL on fd (non-blocking is fine) in accept state. local is the address the
 * connection arrived on (copied); NULL means getsockname(fd) at handshake time.
 */
int zm_tls_server_ssl_new(struct zm_tls_ctx *ctx, int fd, const struct zm_addr *local, SSL **out,
			  char *err, size_t len);

/*
 * A client-side SSL on fd in connect state, presenting cert (the SSL keeps its own references
 * to the leaf, key and chain: the caller may put cert right after), no SNI,
 * ALPN "h2"; the server's URI SAN must equal one of expected_ids[0..n) (with or without the
 * spiffe:// prefix; copied). n == 0 refuses (-EINVAL): a client always knows whom it expects.
 */
int zm_tls_client_ssl_new(struct zm_tls_ctx *ctx, int fd, struct zm_cert *cert,
			  const char *const *expected_ids, size_t n, SSL **out, char *err,
			  size_t len);

/*
 * One step of the handshake on a non-blocking SSL. Returns 0 when done (ALPN h2 negotiated,
 * peer verified; err is then ""), -EAGAIN with *want set to POLLIN or POLLOUT (same values
 * as EPOLLIN/EPOLLOUT), or a negative errno with the reason in err (-ECONNREFUSED peer
 * verification failed, -EPROTO protocol/alert, -ECONNRESET, -EIO). Clears the thread's OpenSSL
 * error queue. TLS 1.3 note: a client finishes before the server has checked its certificate,
 * so a refused client learns it from its first SSL_read (an alert), not from the handshake.
 */
int zm_tls_handshake(SSL *ssl, int *want, char *err, size_t len);

/*
 * Describe why the last SSL call on ssl failed (ret: its return value): verification
 * failures name the peer check, then the OpenSSL error queue (consumed). Returns a -errno
 * as zm_tls_handshake() does.
 */
int zm_tls_error(SSL *ssl, int ret, char *err, size_t len);

/*
 * The verified peer's SPIFFE id ("spiffe://..."), after a successful handshake. Returns 0,
 * -ENOENT (no verified peer) or -ENAMETOOLONG.
 */
int zm_tls_peer_identity(const SSL *ssl, char *buf, size_t len);

#endif
