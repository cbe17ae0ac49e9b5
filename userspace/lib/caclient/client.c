// SPDX-License-Identifier: Apache-2.0
/*
 * One blocking CreateCertificate call (see caclient.h): TCP connect with a deadline, mutual
 * TLS through lib/tls (the node certificate as client certificate, the CA's SPIFFE id as the
 * expected server identity), an HTTP/2 client session (nghttp2) with one gRPC stream, and the
 * answer's status from the headers or trailers. Plus the two ends around it: a P-256 key and
 * CSR per identity, and turning the returned PEM chain into a struct zm_cert. Runs on the
 * provider's refresh thread only, never on a worker loop, so blocking with socket timeouts is
 * the simple and correct choice here.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "caclient/caclient.h"
#include "common/errf.h"
#include "caclient/capb.h"

int zm_caclient_addr_parse(const char *text, struct sockaddr_storage *ss, socklen_t *sl)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res;
	char host[256];
	const char *colon, *port;
	size_t hl;

	if (text[0] == '[') {
		colon = strstr(text, "]:");
		if (!colon)
			return -EINVAL;
		hl = (size_t)(colon - text - 1);
		text++;
		port = colon + 2;
	} else {
		colon = strrchr(text, ':');
		if (!colon || strchr(text, ':') != colon)
			return -EINVAL;
		hl = (size_t)(colon - text);
		port = colon + 1;
	}
	if (!hl || hl >= sizeof(host) || !*port || strspn(port, "0123456789") != strlen(port))
		return -EINVAL;
	memcpy(host, text, hl);
	host[hl] = '\0';
	if (getaddrinfo(host, port, &hints, &res) || !res)
		return -ENOENT;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sl = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* ---- key, CSR, certificate ---- */

int zm_caclient_csr_new(const char *spiffe_id, EVP_PKEY **key_out, char **csr_out, char *err,
			size_t len)
{
	X509_REQ *req = X509_REQ_new();
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	GENERAL_NAMES *names = GENERAL_NAMES_new();
	GENERAL_NAME *gn = GENERAL_NAME_new();
	ASN1_IA5STRING *s = ASN1_IA5STRING_new();
	X509_EXTENSION *ext = NULL;
	EVP_PKEY *key = EVP_EC_gen("P-256");
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long n;
	int ok;

	*csr_out = NULL;
	ok = req && exts && names && gn && s && key && bio &&
	     ASN1_STRING_set(s, spiffe_id, (int)strlen(spiffe_id));
	if (ok) {
		GENERAL_NAME_set0_value(gn, GEN_URI, s);
		s = NULL;
		ok = sk_GENERAL_NAME_push(names, gn) > 0;
		if (ok)
			gn = NULL;
	}
	/* Empty subject, so the SAN is critical (RFC 5280 4.2.1.6), as Istio's CSRs. */
	ok = ok && (ext = X509V3_EXT_i2d(NID_subject_alt_name, 1, names)) &&
	     sk_X509_EXTENSION_push(exts, ext) > 0;
	if (ok)
		ext = NULL;
	ok = ok && X509_REQ_set_version(req, 0) && X509_REQ_add_extensions(req, exts) &&
	     X509_REQ_set_pubkey(req, key) && X509_REQ_sign(req, key, EVP_sha256()) > 0 &&
	     PEM_write_bio_X509_REQ(bio, req);
	if (ok && (n = BIO_get_mem_data(bio, &data)) > 0)
		*csr_out = strndup(data, (size_t)n);
	X509_EXTENSION_free(ext);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	ASN1_IA5STRING_free(s);
	GENERAL_NAME_free(gn);
	GENERAL_NAMES_free(names);
	X509_REQ_free(req);
	BIO_free(bio);
	ERR_clear_error();
	if (!*csr_out) {
		EVP_PKEY_free(key);
		return zm_errf(err, len, -ENOMEM, "building a CSR for %s failed", spiffe_id);
	}
	*key_out = key;
	return 0;
}

/* An anonymous in-memory file holding text; its /proc/self/fd path feeds lib/tls's loader. */
static X509 *pem_x509(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;

	BIO_free(bio);
	return x;
}

int zm_caclient_cert_build(EVP_PKEY *key, char *const *chain, size_t n, struct zm_tls_roots *roots,
			   struct zm_cert **out, char *err, size_t len)
{
	X509 *leaf = NULL, *issuer = NULL;
	char *certs = NULL;
	size_t clen = 0;
	int r;

	(void)roots; /* peers verify against the roots; here the leaf's signature is checked */
	if (!n)
		return zm_errf(err, len, -EINVAL, "empty certificate chain");
	leaf = pem_x509(chain[0]);
	issuer = pem_x509(chain[n > 1 ? 1 : 0]);
	if (!leaf || !issuer || X509_check_private_key(leaf, key) != 1 ||
	    X509_verify(leaf, X509_get0_pubkey(issuer)) != 1) {
		r = zm_errf(err, len, -EINVAL,
			    "CA returned a leaf that does not match our key or its issuer");
		goto out;
	}
	/* The presented chain: the leaf and intermediates, never the root (chain[n-1]). */
	for (size_t i = 0; i < (n > 1 ? n - 1 : 1); i++) {
		size_t l = strlen(chain[i]);
		char *nc = realloc(certs, clen + l + 2);

		if (!nc) {
			r = zm_errf(err, len, -ENOMEM, "out of memory");
			goto out;
		}
		certs = nc;
		memcpy(certs + clen, chain[i], l);
		clen += l;
		certs[clen++] = '\n';
	}
	r = zm_cert_from_pem_key(certs, clen, key, out, err, len);
out:
	free(certs);
	X509_free(leaf);
	X509_free(issuer);
	ERR_clear_error();
	return r;
}

/* ---- the call ---- */

struct cac_call {
	SSL *ssl;
	nghttp2_session *h2;
	const uint8_t *req;
	size_t req_len, req_off;
	uint8_t *body;
	size_t body_len;
	bool too_big, closed;
	int http_status, grpc_status; /* -1: not seen */
	char grpc_message[256];
	uint32_t rst;
};

static ssize_t cac_req_read(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t len,
			    uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct cac_call *c = ud;
	size_t n = c->req_len - c->req_off;

	(void)h2;
	(void)id;
	(void)src;
	if (n > len)
		n = len;
	memcpy(buf, c->req + c->req_off, n);
	c->req_off += n;
	if (c->req_off == c->req_len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static int cac_on_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name,
			 size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
	struct cac_call *c = ud;
	char v[32];

	(void)h2;
	(void)f;
	(void)flags;
	snprintf(v, sizeof(v), "%.*s", (int)(vlen < sizeof(v) ? vlen : sizeof(v) - 1), value);
	if (nlen == 7 && !memcmp(name, ":status", 7))
		c->http_status = atoi(v);
	else if (nlen == 11 && !memcmp(name, "grpc-status", 11))
		c->grpc_status = atoi(v);
	else if (nlen == 12 && !memcmp(name, "grpc-message", 12))
		snprintf(c->grpc_message, sizeof(c->grpc_message), "%.*s",
			 (int)(vlen < sizeof(c->grpc_message) ? vlen : sizeof(c->grpc_message) - 1),
			 value);
	return 0;
}

static int cac_on_data(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data,
		       size_t len, void *ud)
{
	struct cac_call *c = ud;
	uint8_t *nb;

	(void)h2;
	(void)flags;
	(void)id;
	if (c->too_big || c->body_len + len > ZM_GRPC_HDR + ZM_CA_MAX_RESPONSE) {
		c->too_big = true;
		return 0;
	}
	nb = realloc(c->body, c->body_len + len);
	if (!nb)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	memcpy(nb + c->body_len, data, len);
	c->body = nb;
	c->body_len += len;
	return 0;
}

static int cac_on_close(nghttp2_session *h2, int32_t id, uint32_t error, void *ud)
{
	struct cac_call *c = ud;

	(void)h2;
	(void)id;
	c->closed = true;
	c->rst = error;
	return 0;
}

static int cac_flush(struct cac_call *c)
{
	const uint8_t *p;
	ssize_t n;

	while ((n = nghttp2_session_mem_send(c->h2, &p)) > 0)
		for (ssize_t off = 0; off < n;) {
			int w = SSL_write(c->ssl, p + off, (int)(n - off));

			if (w <= 0)
				return -EIO;
			off += w;
		}
	return n < 0 ? -EPROTO : 0;
}

static int cac_connect(const char *addr, int timeout_ms, char *err, size_t len)
{
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	struct sockaddr_storage ss;
	struct pollfd pfd;
	socklen_t sl = sizeof(ss);
	int fd, so = 0, r;

	if (zm_caclient_addr_parse(addr, &ss, &sl))
		return zm_errf(err, len, -EINVAL, "CA address %s: want HOST:PORT", addr);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return zm_errf(err, len, -errno, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&ss, sl) && errno != EINPROGRESS) {
		r = -errno;
		goto fail;
	}
	pfd = (struct pollfd){.fd = fd, .events = POLLOUT};
	r = poll(&pfd, 1, timeout_ms);
	if (r <= 0) {
		r = r ? -errno : -ETIMEDOUT;
		goto fail;
	}
	sl = sizeof(so);
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &sl);
	if (so) {
		r = -so;
		goto fail;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
fail:
	close(fd);
	return zm_errf(err, len, r, "connecting to the CA at %s: %s", addr, strerror(-r));
}

static int cac_h2_start(struct cac_call *c, const char *addr)
{
	nghttp2_session_callbacks *cb;
	nghttp2_data_provider prd = {.read_callback = cac_req_read};
	nghttp2_nv hd[] = {
#define CNV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), 0}
	    CNV(":method", "POST"),
	    CNV(":scheme", "https"),
	    CNV(":path", ZM_CA_GRPC_PATH),
	    CNV(":authority", addr),
	    CNV("content-type", "application/grpc"),
	    CNV("te", "trailers"),
#undef CNV
	};
	int r;

	if (nghttp2_session_callbacks_new(&cb))
		return -ENOMEM;
	nghttp2_session_callbacks_set_on_header_callback(cb, cac_on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, cac_on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, cac_on_close);
	r = nghttp2_session_client_new(&c->h2, cb, c);
	nghttp2_session_callbacks_del(cb);
	if (r)
		return -ENOMEM;
	if (nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, NULL, 0) ||
	    nghttp2_submit_request(c->h2, NULL, hd, sizeof(hd) / sizeof(hd[0]), &prd, c) < 0)
		return -ENOMEM;
	return 0;
}

/* Drive the session until our stream closes. */
static int cac_h2_run(struct cac_call *c, char *err, size_t len)
{
	uint8_t buf[16384];
	int n, r;

	while (!c->closed) {
		r = cac_flush(c);
		if (r)
			return zm_errf(err, len, r, "sending to the CA failed");
		n = SSL_read(c->ssl, buf, sizeof(buf));
		if (n <= 0) {
			char why[200];

			r = zm_tls_error(c->ssl, n, why, sizeof(why));
			if (SSL_get_error(c->ssl, n) == SSL_ERROR_SYSCALL && errno == EAGAIN)
				return zm_errf(err, len, -ETIMEDOUT, "CA did not answer in time");
			return zm_errf(err, len, r ?: -EIO, "CA connection: %s", why);
		}
		if (nghttp2_session_mem_recv(c->h2, buf, (size_t)n) < 0)
			return zm_errf(err, len, -EPROTO, "CA sent malformed HTTP/2");
	}
	cac_flush(c);
	return 0;
}

/* Turn the finished call into the chain or an error. */
static int cac_result(struct cac_call *c, char **chain, size_t max, size_t *n, char *err,
		      size_t len)
{
	const char *certs[ZM_CA_MAX_CHAIN];
	size_t lens[ZM_CA_MAX_CHAIN];
	uint32_t mlen;
	int k;

	if (c->http_status != 200)
		return zm_errf(err, len, -EPROTO, "CA answered HTTP %d", c->http_status);
	if (c->grpc_status < 0)
		return zm_errf(err, len, -EPROTO, "CA answer has no grpc-status (stream %s)",
			       c->rst ? "reset" : "ended");
	if (c->grpc_status)
		return zm_errf(err, len,
			       c->grpc_status == ZM_GRPC_PERMISSION_DENIED ||
				       c->grpc_status == ZM_GRPC_UNAUTHENTICATED
				   ? -EACCES
			       : c->grpc_status == ZM_GRPC_INVALID_ARGUMENT ||
				       c->grpc_status == ZM_GRPC_RESOURCE_EXHAUSTED
				   ? -EINVAL
				   : -EPROTO,
			       "%s: %s", zm_grpc_status_name(c->grpc_status), c->grpc_message);
	if (c->too_big || c->body_len < ZM_GRPC_HDR || zm_grpc_hdr_get(c->body, &mlen) != 0 ||
	    mlen != c->body_len - ZM_GRPC_HDR)
		return zm_errf(err, len, -EPROTO, "CA response is not one gRPC message");
	k = zm_capb_response_decode(c->body + ZM_GRPC_HDR, mlen, certs, lens,
				    max < ZM_CA_MAX_CHAIN ? max : ZM_CA_MAX_CHAIN, err, len);
	if (k < 0)
		return k;
	for (int i = 0; i < k; i++) {
		chain[i] = strndup(certs[i], lens[i]);
		if (!chain[i]) {
			while (i--)
				free(chain[i]);
			return zm_errf(err, len, -ENOMEM, "out of memory");
		}
	}
	*n = (size_t)k;
	return 0;
}

int zm_caclient_call(const char *addr, struct zm_tls_roots *roots, struct zm_cert *node,
		     const char *server_id, const char *csr_pem, const char *impersonated,
		     long validity_s, int timeout_ms, char **chain, size_t max, size_t *n,
		     char *err, size_t len)
{
	struct cac_call c = {.http_status = -1, .grpc_status = -1};
	struct zm_tls_ctx *ctx = NULL;
	uint8_t *req = NULL;
	int fd, r, want;

	*n = 0;
	r = zm_capb_request_encode(csr_pem, validity_s, impersonated, &req, &c.req_len);
	if (r)
		return zm_errf(err, len, r, "encoding the request failed");
	c.req = req;
	fd = cac_connect(addr, timeout_ms, err, len);
	if (fd < 0) {
		free(req);
		return fd;
	}
	r = zm_tls_client_ctx_new(roots, &ctx, err, len);
	if (!r)
		r = zm_tls_client_ssl_new(ctx, fd, node, &server_id, 1, &c.ssl, err, len);
	if (r)
		goto out;
	r = zm_tls_handshake(c.ssl, &want, err, len);
	if (r) {
		if (r == -EAGAIN)
			r = zm_errf(err, len, -ETIMEDOUT, "TLS handshake with the CA timed out");
		goto out;
	}
	r = cac_h2_start(&c, addr);
	if (r) {
		zm_errf(err, len, r, "starting HTTP/2 failed");
		goto out;
	}
	r = cac_h2_run(&c, err, len);
	if (!r)
		r = cac_result(&c, chain, max, n, err, len);
out:
	nghttp2_session_del(c.h2);
	if (c.ssl)
		SSL_free(c.ssl);
	zm_tls_ctx_put(ctx);
	close(fd);
	free(c.body);
	free(req);
	ERR_clear_error();
	return r;
}
