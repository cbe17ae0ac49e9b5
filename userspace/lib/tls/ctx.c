// SPDX-License-Identifier: Apache-2.0
/*
 * TLS contexts and connections for HBONE (userspace/lib/hbone/README.md): TLS 1.3 only with the two
 * AES-GCM suites, ALPN "h2" (a client that offers no ALPN or no "h2" is refused during the
 * handshake, not after it), mutual authentication and the SPIFFE peer checks done inside the
 * certificate verification callback so a bad peer fails the handshake with an alert. The
 * server picks its certificate per connection from the address the connection arrived on
 * (there is no SNI in HBONE). Per-context settings live in SSL_CTX ex_data and per-connection
 * state in SSL ex_data, both freed by OpenSSL's ex_data destructors: a struct zm_tls_ctx is
 * therefore exactly as alive as its SSL_CTX, whose reference count OpenSSL already keeps
 * atomically for every SSL made from it. Session tickets and caches are off: each HBONE
 * connection is long-lived and pooled, and resumption would skip the peer checks.
 */
#include "tls/internal.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define TLS_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384"

/* ALPN wire format: length-prefixed protocol names. */
static const unsigned char tls_alpn_h2[] = {2, 'h', '2'};

struct zm_tls_ctx {
	SSL_CTX *ssl_ctx;
	bool server;
	bool any_trust_domain;
	char trust_domain[128];
	zm_tls_cert_select_fn select;
	void *ud;
	pthread_mutex_t lock; /* guards roots (swapped by a trust bundle reload) */
	struct zm_tls_roots *roots;
};

/* Per-connection state. */
struct tls_conn {
	bool server;
	bool have_local;
	bool peer_ok; /* leaf passed the SPIFFE check */
	struct zm_addr local;
	size_t n_expected;
	char (*expected)[ZM_SPIFFE_ID_MAX];
	char peer_id[ZM_SPIFFE_ID_MAX];
	char fail[2 * ZM_SPIFFE_ID_MAX +
		  256]; /* why our own check refused the peer, for zm_tls_error() */
};

static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static int tls_ctx_idx = -1, tls_conn_idx = -1;

static void tls_ctx_exfree(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
			   void *argp)
{
	struct zm_tls_ctx *ctx = ptr;

	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	if (!ctx)
		return;
	zm_tls_roots_put(ctx->roots);
	pthread_mutex_destroy(&ctx->lock);
	free(ctx);
}

static void tls_conn_exfree(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
			    void *argp)
{
	struct tls_conn *conn = ptr;

	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	if (!conn)
		return;
	free(conn->expected);
	free(conn);
}

static void tls_indices_init(void)
{
	tls_ctx_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, tls_ctx_exfree);
	tls_conn_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, tls_conn_exfree);
}

static struct zm_tls_ctx *tls_ctx_of(const SSL *ssl)
{
	return SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), tls_ctx_idx);
}

static struct tls_conn *tls_conn_of(const SSL *ssl)
{
	return SSL_get_ex_data(ssl, tls_conn_idx);
}

/* ---- peer checks ---- */

/* The SPIFFE check of the leaf: trust domain (server side) or expected ids (client side). */
static int tls_check_leaf(struct zm_tls_ctx *ctx, struct tls_conn *conn, X509 *leaf)
{
	char id[ZM_SPIFFE_ID_MAX];
	struct zm_spiffe_id sid;
	int ret;

	ret = tls_x509_spiffe_id(leaf, id, sizeof(id));
	if (ret) {
		snprintf(conn->fail, sizeof(conn->fail),
			 ret == -ENOENT ? "peer certificate has no spiffe:// URI SAN"
					: "peer certificate has a malformed spiffe:// URI SAN");
		return 0;
	}
	if (ctx->server) {
		zm_spiffe_id_parse(id, &sid);
		if (!ctx->any_trust_domain && strcmp(sid.trust_domain, ctx->trust_domain)) {
			snprintf(conn->fail, sizeof(conn->fail),
				 "peer %s is outside trust domain %s", id, ctx->trust_domain);
			return 0;
		}
	} else {
		size_t i;

		/* Any URI SAN of the server may match, as the reference accepts. */
		for (i = 0; i < conn->n_expected; i++)
			if (tls_x509_has_uri(leaf, conn->expected[i]))
				break;
		if (i == conn->n_expected) {
			snprintf(conn->fail, sizeof(conn->fail),
				 "server identity %s is not the expected %s%s", id,
				 conn->n_expected ? conn->expected[0] : "(none)",
				 conn->n_expected > 1 ? " (or others)" : "");
			return 0;
		}
		snprintf(id, sizeof(id), "%s", conn->expected[i]);
	}
	snprintf(conn->peer_id, sizeof(conn->peer_id), "%s", id);
	conn->peer_ok = true;
	return 1;
}

static int tls_verify_cb(int preverify_ok, X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct tls_conn *conn = ssl ? tls_conn_of(ssl) : NULL;
	int depth = X509_STORE_CTX_get_error_depth(xs);

	if (!conn)
		return 0; /* an SSL not made by us: fail closed */
	if (!preverify_ok) {
		int e = X509_STORE_CTX_get_error(xs);

		if (!conn->fail[0])
			snprintf(conn->fail, sizeof(conn->fail),
				 "peer certificate chain rejected at depth %d: %s", depth,
				 X509_verify_cert_error_string(e));
		return 0;
	}
	if (depth > 0)
		return 1;
	if (!tls_check_leaf(tls_ctx_of(ssl), conn, X509_STORE_CTX_get_current_cert(xs))) {
		X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
		return 0;
	}
	return 1;
}

/* ---- server callbacks ---- */

/* Refuse clients that offer no ALPN at all (the select callback never runs for them). */
static int tls_client_hello_cb(SSL *ssl, int *al, void *arg)
{
	struct tls_conn *conn = tls_conn_of(ssl);
	const unsigned char *p;
	size_t n;

	(void)arg;
	if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &p,
				      &n))
		return SSL_CLIENT_HELLO_SUCCESS;
	if (conn)
		snprintf(conn->fail, sizeof(conn->fail), "client offered no ALPN (want h2)");
	*al = SSL_AD_NO_APPLICATION_PROTOCOL;
	return SSL_CLIENT_HELLO_ERROR;
}

static int tls_alpn_select_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
			      const unsigned char *in, unsigned int inlen, void *arg)
{
	struct tls_conn *conn = tls_conn_of(ssl);
	unsigned char *sel;

	(void)arg;
	if (SSL_select_next_proto(&sel, outlen, tls_alpn_h2, sizeof(tls_alpn_h2), in, inlen) ==
	    OPENSSL_NPN_NEGOTIATED) {
		*out = sel;
		return SSL_TLSEXT_ERR_OK;
	}
	if (conn)
		snprintf(conn->fail, sizeof(conn->fail), "client ALPN does not include h2");
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* Certificate by arrival address: the HBONE client sends no SNI. */
static int tls_cert_cb(SSL *ssl, void *arg)
{
	struct zm_tls_ctx *ctx = arg;
	struct tls_conn *conn = tls_conn_of(ssl);
	char abuf[ZM_ADDR_STRLEN];
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct zm_cert *cert = NULL;
	int ret, ok;

	if (!conn || !ctx->select)
		return 0;
	if (!conn->have_local) {
		if (getsockname(SSL_get_fd(ssl), (struct sockaddr *)&ss, &sl) ||
		    zm_addr_from_sockaddr((struct sockaddr *)&ss, &conn->local, NULL)) {
			snprintf(conn->fail, sizeof(conn->fail),
				 "cannot tell the local address of the connection");
			return 0;
		}
		conn->have_local = true;
	}
	ret = ctx->select(ctx->ud, &conn->local, &cert);
	if (ret || !cert) {
		snprintf(conn->fail, sizeof(conn->fail), "no certificate for local address %s: %s",
			 zm_addr_format(&conn->local, abuf, sizeof(abuf)),
			 strerror(ret ? -ret : ENOENT));
		zm_cert_put(cert);
		return 0;
	}
	ok = SSL_use_cert_and_key(ssl, cert->x509, cert->pkey, cert->chain, 1);
	if (!ok)
		snprintf(conn->fail, sizeof(conn->fail), "cannot use the certificate of %s",
			 cert->id);
	zm_cert_put(cert); /* the SSL holds its own references to the leaf, key and chain */
	return ok;
}

/* ---- contexts ---- */

static int tls_ctx_new(bool server, struct zm_tls_roots *roots, struct zm_tls_ctx **out, char *err,
		       size_t len)
{
	struct zm_tls_ctx *ctx;
	SSL_CTX *sc;

	pthread_once(&tls_once, tls_indices_init);
	if (tls_ctx_idx < 0 || tls_conn_idx < 0)
		return zm_errf(err, len, -ENOMEM, "cannot allocate OpenSSL ex_data indices");
	if (!roots)
		return zm_errf(err, len, -EINVAL, "TLS context needs trust roots");
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return zm_errf(err, len, -ENOMEM, "out of memory for a TLS context");
	sc = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (!sc) {
		free(ctx);
		return tls_errf_ssl(err, len, -ENOMEM, "SSL_CTX_new");
	}
	ctx->ssl_ctx = sc;
	ctx->server = server;
	ctx->roots = zm_tls_roots_ref(roots);
	pthread_mutex_init(&ctx->lock, NULL);
	if (!SSL_CTX_set_ex_data(sc, tls_ctx_idx, ctx)) {
		zm_tls_roots_put(ctx->roots);
		pthread_mutex_destroy(&ctx->lock);
		free(ctx);
		SSL_CTX_free(sc);
		return tls_errf_ssl(err, len, -ENOMEM, "SSL_CTX_set_ex_data");
	}
	/* From here SSL_CTX_free() frees ctx too. */
	if (!SSL_CTX_set_min_proto_version(sc, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(sc, TLS1_3_VERSION) ||
	    !SSL_CTX_set_ciphersuites(sc, TLS_SUITES)) {
		SSL_CTX_free(sc);
		return tls_errf_ssl(err, len, -EINVAL, "configuring the TLS context");
	}
	SSL_CTX_set1_cert_store(sc, roots->store); /* shared, read-only after load */
	SSL_CTX_set_mode(sc, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
				 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_session_cache_mode(sc, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(sc, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_verify(sc, SSL_VERIFY_PEER | (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
			   tls_verify_cb);
	*out = ctx;
	return 0;
}

int zm_tls_server_ctx_new(struct zm_tls_roots *roots, const char *trust_domain,
			  zm_tls_cert_select_fn select, void *ud, struct zm_tls_ctx **out,
			  char *err, size_t len)
{
	struct zm_tls_ctx *ctx;
	int ret;

	if (!select)
		return zm_errf(err, len, -EINVAL, "TLS server needs a certificate selector");
	if (trust_domain && strlen(trust_domain) >= sizeof(ctx->trust_domain))
		return zm_errf(err, len, -EINVAL, "trust domain too long");
	ret = tls_ctx_new(true, roots, &ctx, err, len);
	if (ret)
		return ret;
	ctx->select = select;
	ctx->ud = ud;
	ctx->any_trust_domain = !trust_domain;
	snprintf(ctx->trust_domain, sizeof(ctx->trust_domain), "%s", trust_domain ?: "");
	SSL_CTX_set_num_tickets(ctx->ssl_ctx, 0);
	SSL_CTX_set_client_hello_cb(ctx->ssl_ctx, tls_client_hello_cb, NULL);
	SSL_CTX_set_alpn_select_cb(ctx->ssl_ctx, tls_alpn_select_cb, NULL);
	SSL_CTX_set_cert_cb(ctx->ssl_ctx, tls_cert_cb, ctx);
	*out = ctx;
	return 0;
}

int zm_tls_client_ctx_new(struct zm_tls_roots *roots, struct zm_tls_ctx **out, char *err,
			  size_t len)
{
	return tls_ctx_new(false, roots, out, err, len);
}

struct zm_tls_ctx *zm_tls_ctx_ref(struct zm_tls_ctx *ctx)
{
	if (ctx)
		SSL_CTX_up_ref(ctx->ssl_ctx);
	return ctx;
}

void zm_tls_ctx_put(struct zm_tls_ctx *ctx)
{
	if (ctx)
		SSL_CTX_free(ctx->ssl_ctx); /* the last reference frees ctx (tls_ctx_exfree) */
}

void zm_tls_ctx_set_roots(struct zm_tls_ctx *ctx, struct zm_tls_roots *roots)
{
	struct zm_tls_roots *old;

	if (!ctx || !roots)
		return;
	zm_tls_roots_ref(roots);
	pthread_mutex_lock(&ctx->lock);
	old = ctx->roots;
	ctx->roots = roots;
	pthread_mutex_unlock(&ctx->lock);
	zm_tls_roots_put(old);
}

SSL_CTX *zm_tls_ctx_ssl_ctx(struct zm_tls_ctx *ctx)
{
	return ctx->ssl_ctx;
}

/* ---- connections ---- */

static int tls_ssl_new(struct zm_tls_ctx *ctx, int fd, struct tls_conn *conn, SSL **out, char *err,
		       size_t len)
{
	SSL *ssl = SSL_new(ctx->ssl_ctx);
	int ok;

	if (!ssl) {
		tls_conn_exfree(NULL, conn, NULL, 0, 0, NULL);
		return tls_errf_ssl(err, len, -ENOMEM, "SSL_new");
	}
	if (!SSL_set_ex_data(ssl, tls_conn_idx, conn)) {
		tls_conn_exfree(NULL, conn, NULL, 0, 0, NULL);
		SSL_free(ssl);
		return tls_errf_ssl(err, len, -ENOMEM, "SSL_set_ex_data");
	}
	if (!SSL_set_fd(ssl, fd)) {
		SSL_free(ssl);
		return tls_errf_ssl(err, len, -EBADF, "SSL_set_fd(%d)", fd);
	}
	/* The roots of this moment: a later reload must not change what this peer is checked
	 * against halfway, and the SSL holds its own reference to the store. */
	pthread_mutex_lock(&ctx->lock);
	ok = SSL_set1_verify_cert_store(ssl, ctx->roots->store);
	pthread_mutex_unlock(&ctx->lock);
	if (!ok) {
		SSL_free(ssl);
		return tls_errf_ssl(err, len, -ENOMEM, "SSL_set1_verify_cert_store");
	}
	*out = ssl;
	return 0;
}

int zm_tls_server_ssl_new(struct zm_tls_ctx *ctx, int fd, const struct zm_addr *local, SSL **out,
			  char *err, size_t len)
{
	struct tls_conn *conn;
	int ret;

	if (!ctx->server)
		return zm_errf(err, len, -EINVAL, "zm_tls_server_ssl_new on a client context");
	conn = calloc(1, sizeof(*conn));
	if (!conn)
		return zm_errf(err, len, -ENOMEM, "out of memory for a TLS connection");
	conn->server = true;
	if (local) {
		conn->local = *local;
		conn->have_local = true;
	}
	ret = tls_ssl_new(ctx, fd, conn, out, err, len);
	if (ret)
		return ret;
	SSL_set_accept_state(*out);
	return 0;
}

/* Copy the expected ids, adding the spiffe:// prefix where the caller left it out. */
static int tls_conn_expect(struct tls_conn *conn, const char *const *ids, size_t n, char *err,
			   size_t len)
{
	conn->expected = calloc(n, sizeof(*conn->expected));
	if (!conn->expected)
		return zm_errf(err, len, -ENOMEM, "out of memory for expected identities");
	for (size_t i = 0; i < n; i++) {
		const char *pfx = strncmp(ids[i], ZM_SPIFFE_PREFIX, strlen(ZM_SPIFFE_PREFIX))
				      ? ZM_SPIFFE_PREFIX
				      : "";
		int w = snprintf(conn->expected[i], ZM_SPIFFE_ID_MAX, "%s%s", pfx, ids[i]);

		if (w < 0 || w >= ZM_SPIFFE_ID_MAX)
			return zm_errf(err, len, -ENAMETOOLONG, "expected identity too long");
	}
	conn->n_expected = n;
	return 0;
}

int zm_tls_client_ssl_new(struct zm_tls_ctx *ctx, int fd, struct zm_cert *cert,
			  const char *const *expected_ids, size_t n, SSL **out, char *err,
			  size_t len)
{
	struct tls_conn *conn;
	SSL *ssl;
	int ret;

	if (ctx->server)
		return zm_errf(err, len, -EINVAL, "zm_tls_client_ssl_new on a server context");
	if (!cert || !n || !expected_ids)
		return zm_errf(err, len, -EINVAL,
			       "TLS client needs a certificate and expected server identities");
	conn = calloc(1, sizeof(*conn));
	if (!conn)
		return zm_errf(err, len, -ENOMEM, "out of memory for a TLS connection");
	ret = tls_conn_expect(conn, expected_ids, n, err, len);
	if (ret) {
		tls_conn_exfree(NULL, conn, NULL, 0, 0, NULL);
		return ret;
	}
	ret = tls_ssl_new(ctx, fd, conn, &ssl, err, len);
	if (ret)
		return ret;
	/* SSL_set_alpn_protos() returns 0 on success, unlike most of OpenSSL. */
	if (!SSL_use_cert_and_key(ssl, cert->x509, cert->pkey, cert->chain, 1) ||
	    SSL_set_alpn_protos(ssl, tls_alpn_h2, sizeof(tls_alpn_h2))) {
		SSL_free(ssl);
		return tls_errf_ssl(err, len, -EINVAL, "setting up the TLS client for %s",
				    cert->id);
	}
	SSL_set_connect_state(ssl);
	*out = ssl;
	return 0;
}

/* ---- handshake, errors, identity ---- */

int zm_tls_error(SSL *ssl, int ret, char *err, size_t len)
{
	struct tls_conn *conn = tls_conn_of(ssl);
	int e = SSL_get_error(ssl, ret);
	long vr;

	switch (e) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return zm_errf(err, len, -EAGAIN, "TLS wants I/O");
	case SSL_ERROR_ZERO_RETURN:
		ERR_clear_error();
		return zm_errf(err, len, -ECONNRESET, "TLS peer closed the connection");
	case SSL_ERROR_SYSCALL:
		if (!ERR_peek_error()) {
			int en = errno;

			if (ret == 0 || !en)
				return zm_errf(err, len, -ECONNRESET,
					       "TLS peer closed the connection unexpectedly");
			return zm_errf(err, len, -en, "TLS I/O: %s", strerror(en));
		}
		break;
	default:
		break;
	}
	if (ERR_GET_REASON(ERR_peek_error()) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
		ERR_clear_error();
		return zm_errf(err, len, -ECONNREFUSED, "client presented no certificate");
	}
	if (conn && conn->fail[0]) {
		ERR_clear_error();
		return zm_errf(err, len, -ECONNREFUSED, "%s", conn->fail);
	}
	vr = SSL_get_verify_result(ssl);
	if (vr != X509_V_OK && SSL_get0_peer_certificate(ssl)) {
		ERR_clear_error();
		return zm_errf(err, len, -ECONNREFUSED, "peer certificate rejected: %s",
			       X509_verify_cert_error_string(vr));
	}
	return tls_errf_ssl(err, len, -EPROTO, "TLS handshake failed");
}

int zm_tls_handshake(SSL *ssl, int *want, char *err, size_t len)
{
	struct tls_conn *conn = tls_conn_of(ssl);
	const unsigned char *alpn = NULL;
	unsigned int alen = 0;
	int r, e;

	*want = 0;
	ERR_clear_error();
	r = SSL_do_handshake(ssl);
	if (r != 1) {
		e = SSL_get_error(ssl, r);
		if (e == SSL_ERROR_WANT_READ)
			*want = POLLIN;
		else if (e == SSL_ERROR_WANT_WRITE)
			*want = POLLOUT;
		return zm_tls_error(ssl, r, err, len);
	}
	SSL_get0_alpn_selected(ssl, &alpn, &alen);
	if (alen != 2 || memcmp(alpn, "h2", 2))
		return zm_errf(err, len, -EPROTO, "TLS peer did not negotiate ALPN h2");
	/* Belt and braces: a finished handshake must have passed our peer check. */
	if (!conn || !conn->peer_ok || SSL_get_verify_result(ssl) != X509_V_OK)
		return zm_errf(err, len, -ECONNREFUSED, "TLS peer was not verified");
	return zm_errf(err, len, 0, "%s", "");
}

int zm_tls_peer_identity(const SSL *ssl, char *buf, size_t len)
{
	const struct tls_conn *conn = tls_conn_of(ssl);

	if (len)
		buf[0] = '\0';
	if (!conn || !conn->peer_ok || SSL_get_verify_result(ssl) != X509_V_OK)
		return -ENOENT;
	if ((size_t)snprintf(buf, len, "%s", conn->peer_id) >= len)
		return -ENAMETOOLONG;
	return 0;
}
