// SPDX-License-Identifier: Apache-2.0
/*
 * Control-plane TLS clients (see cpclient.h). One SSL_CTX per SSL: these connections are
 * few and long-lived (one xDS stream, a CA call every few hours per identity), so sharing a
 * context buys nothing and a per-call context picks up a rotated root bundle for free.
 */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "internal.h"
#include "tls/cpclient.h"

static const unsigned char cp_alpn[] = {2, 'h', '2'};

/* Verify callback: after the chain checks, the leaf must carry the expected URI SAN. */
static int cp_verify_uri(int ok, X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	const char *want = SSL_get_app_data(ssl);

	if (!ok || X509_STORE_CTX_get_error_depth(xs) != 0 || !want)
		return ok;
	if (!tls_x509_has_uri(X509_STORE_CTX_get_current_cert(xs), want)) {
		X509_STORE_CTX_set_error(xs, X509_V_ERR_HOSTNAME_MISMATCH);
		return 0;
	}
	return 1;
}

static int cp_ctx_new(struct zm_tls_roots *roots, struct zm_cert *cert, SSL_CTX **out, char *err,
		      size_t len)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx)
		return tls_errf_ssl(err, len, -ENOMEM, "SSL_CTX_new");
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    SSL_CTX_set_alpn_protos(ctx, cp_alpn, sizeof(cp_alpn)) ||
	    !SSL_CTX_set1_verify_cert_store(ctx, roots->store))
		goto fail;
	if (cert &&
	    (SSL_CTX_use_certificate(ctx, cert->x509) != 1 ||
	     SSL_CTX_use_PrivateKey(ctx, cert->pkey) != 1 || !SSL_CTX_set1_chain(ctx, cert->chain)))
		goto fail;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, cp_verify_uri);
	*out = ctx;
	return 0;
fail:
	SSL_CTX_free(ctx);
	return tls_errf_ssl(err, len, -EINVAL, "configuring the control-plane TLS client");
}

int zm_tls_cp_ssl_new(struct zm_tls_roots *roots, int fd, struct zm_cert *cert,
		      const char *server_name, SSL **out, char *err, size_t len)
{
	bool uri = server_name && !strncmp(server_name, ZM_SPIFFE_PREFIX, strlen(ZM_SPIFFE_PREFIX));
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	int r;

	if (!roots || !server_name || !*server_name)
		return zm_errf(err, len, -EINVAL,
			       "control-plane TLS needs roots and a server name");
	r = cp_ctx_new(roots, cert, &ctx, err, len);
	if (r)
		return r;
	ssl = SSL_new(ctx);
	SSL_CTX_free(ctx); /* the SSL holds its own reference */
	if (!ssl || !SSL_set_fd(ssl, fd))
		goto fail;
	if (uri) {
		/* The string outlives the SSL: callers pass options that live as long. */
		SSL_set_app_data(ssl, (void *)server_name);
	} else if (!SSL_set_tlsext_host_name(ssl, server_name) ||
		   !SSL_set1_host(ssl, server_name)) {
		goto fail;
	}
	SSL_set_connect_state(ssl);
	*out = ssl;
	return 0;
fail:
	SSL_free(ssl);
	return tls_errf_ssl(err, len, -ENOMEM, "SSL for the control plane at %s", server_name);
}
