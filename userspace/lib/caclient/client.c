// SPDX-License-Identifier: Apache-2.0
/*
 * One blocking CreateCertificate call (see caclient.h), a unary call of lib/grpc: TLS to the CA
 * (the node certificate as client certificate, or none with istiod's token authentication),
 * `authorization: Bearer` and `clusterid` when given, the CA's SPIFFE id or DNS name as the
 * expected server identity. Plus the two ends around it: a P-256 key and
 * CSR per identity, and turning the returned PEM chain into a struct zm_cert. Runs on the
 * provider's refresh thread only, never on a worker loop, so blocking with socket timeouts is
 * the simple and correct choice here.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
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

void zm_caclient_addr_host(const char *addr, char *buf, size_t len)
{
	const char *end;
	size_t n;

	if (addr[0] == '[') {
		addr++;
		end = strchr(addr, ']');
	} else {
		end = strrchr(addr, ':');
	}
	n = end ? (size_t)(end - addr) : strlen(addr);
	snprintf(buf, len, "%.*s", (int)(n < len ? n : len - 1), addr);
}

int zm_caclient_token_read(const char *path, char *buf, size_t len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	size_t n, i = 0;

	if (!f)
		return zm_errf(err, errlen, -errno, "token file %s: %s", path, strerror(errno));
	n = fread(buf, 1, len, f);
	fclose(f);
	if (n == len)
		return zm_errf(err, errlen, -EINVAL, "token file %s: over %zu bytes", path,
			       len - 1);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		n--;
	while (i < n && (buf[i] == ' ' || buf[i] == '\n'))
		i++;
	memmove(buf, buf + i, n - i);
	buf[n - i] = '\0';
	if (!buf[0] || strpbrk(buf, "\r\n"))
		return zm_errf(err, errlen, -EINVAL, "token file %s: empty or several lines", path);
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

/* Turn the answer's one message into the chain. */
static int cac_result(const uint8_t *body, size_t blen, char **chain, size_t max, size_t *n,
		      char *err, size_t len)
{
	const char *certs[ZM_CA_MAX_CHAIN];
	size_t lens[ZM_CA_MAX_CHAIN];
	int k;

	k = zm_capb_response_decode(body, blen, certs, lens,
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

int zm_caclient_call(const char *addr, struct zm_tls_roots *roots,
		     const struct zm_caclient_auth *auth, const char *server_id,
		     const char *csr_pem, const char *impersonated, long validity_s, int timeout_ms,
		     char **chain, size_t max, size_t *n, char *err, size_t len)
{
	const char *hdrs[] = {"clusterid", auth->cluster_id, NULL};
	struct zm_grpc_opts o = {.addr = addr,
				 .roots = roots,
				 .cert = auth->node,
				 .server_name = server_id,
				 .token = auth->token,
				 .headers = auth->cluster_id && *auth->cluster_id ? hdrs : NULL,
				 .timeout_ms = timeout_ms,
				 .max_msg = ZM_CA_MAX_RESPONSE};
	uint8_t *req = NULL, *resp = NULL;
	size_t req_len, resp_len;
	int r, status;

	*n = 0;
	r = zm_capb_request_encode(csr_pem, validity_s, impersonated, &req, &req_len);
	if (r)
		return zm_errf(err, len, r, "encoding the request failed");
	r = zm_grpc_unary(&o, ZM_CA_GRPC_PATH, req + ZM_GRPC_HDR, req_len - ZM_GRPC_HDR, &resp,
			  &resp_len, &status, err, len);
	if (r == -EREMOTEIO)
		r = status == ZM_GRPC_PERMISSION_DENIED || status == ZM_GRPC_UNAUTHENTICATED
			? -EACCES
		    : status == ZM_GRPC_INVALID_ARGUMENT || status == ZM_GRPC_RESOURCE_EXHAUSTED
			? -EINVAL
			: -EPROTO;
	if (!r)
		r = cac_result(resp, resp_len, chain, max, n, err, len);
	free(req);
	free(resp);
	return r;
}
