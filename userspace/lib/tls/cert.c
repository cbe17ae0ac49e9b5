// SPDX-License-Identifier: Apache-2.0
/*
 * SPIFFE ids, the refcounted workload certificate (leaf, key, chain), trust-root sets and PEM
 * file input/output. Certificates and root sets are immutable once built, so any number of
 * worker threads may share them; only the reference counts change, atomically. Key files are
 * written 0600 through a temporary file and rename(), so a crash never leaves a half-written
 * or briefly world-readable key behind.
 */
#include "tls/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int tls_errf_ssl(char *err, size_t len, int ret, const char *fmt, ...)
{
	unsigned long e = ERR_peek_error();
	char ebuf[256] = "unknown OpenSSL error";
	va_list ap;
	size_t n;

	if (e)
		ERR_error_string_n(e, ebuf, sizeof(ebuf));
	ERR_clear_error();
	if (!err || !len)
		return ret;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	n = strlen(err);
	if (n < len)
		snprintf(err + n, len - n, ": %s", ebuf);
	return ret;
}

/* ---- SPIFFE ids ---- */

/* Trust domains: lower-case DNS-like; path segments: Kubernetes names plus '_' and '.'. */
static bool spiffe_td_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' ||
	       ch == '_';
}

static bool spiffe_seg_char(char ch)
{
	return spiffe_td_char(ch) || (ch >= 'A' && ch <= 'Z');
}

/* Copy the segment at *p (up to '/' or end) into out; advances *p. */
static int spiffe_seg(const char **p, char *out, size_t len, bool (*valid)(char))
{
	size_t n = 0;

	while ((*p)[n] && (*p)[n] != '/') {
		if (!valid((*p)[n]))
			return -EINVAL;
		n++;
	}
	if (!n || n >= len)
		return -EINVAL;
	memcpy(out, *p, n);
	out[n] = '\0';
	*p += n;
	return 0;
}

int zm_spiffe_id_parse(const char *uri, struct zm_spiffe_id *out)
{
	struct zm_spiffe_id tmp;
	const char *p;

	if (!out)
		out = &tmp;
	memset(out, 0, sizeof(*out));
	if (!uri || strncmp(uri, ZM_SPIFFE_PREFIX, strlen(ZM_SPIFFE_PREFIX)) ||
	    strlen(uri) >= ZM_SPIFFE_ID_MAX)
		return -EINVAL;
	p = uri + strlen(ZM_SPIFFE_PREFIX);
	if (spiffe_seg(&p, out->trust_domain, sizeof(out->trust_domain), spiffe_td_char))
		return -EINVAL;
	if (strncmp(p, "/ns/", 4))
		return -EINVAL;
	p += 4;
	if (spiffe_seg(&p, out->ns, sizeof(out->ns), spiffe_seg_char))
		return -EINVAL;
	if (strncmp(p, "/sa/", 4))
		return -EINVAL;
	p += 4;
	if (spiffe_seg(&p, out->sa, sizeof(out->sa), spiffe_seg_char) || *p)
		return -EINVAL;
	return 0;
}

int zm_spiffe_id_format(char *buf, size_t len, const char *trust_domain, const char *ns,
			const char *sa)
{
	int n;

	if (!trust_domain || !ns || !sa)
		return -EINVAL;
	n = snprintf(buf, len, ZM_SPIFFE_PREFIX "%s/ns/%s/sa/%s", trust_domain, ns, sa);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return zm_spiffe_id_parse(buf, NULL);
}

const char *zm_spiffe_principal(const char *id)
{
	size_t n = strlen(ZM_SPIFFE_PREFIX);

	return strncmp(id, ZM_SPIFFE_PREFIX, n) ? id : id + n;
}

/* ---- X509 helpers ---- */

time_t tls_asn1_time(const ASN1_TIME *t)
{
	struct tm tm;

	if (!t || !ASN1_TIME_to_tm(t, &tm))
		return 0;
	return timegm(&tm);
}

/* Calls fn(uri, arg) for every URI SAN of x until it returns non-zero; returns that value. */
static int x509_uri_each(X509 *x, int (*fn)(const char *uri, size_t n, void *arg), void *arg)
{
	GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	int ret = 0;

	for (int i = 0; names && i < sk_GENERAL_NAME_num(names) && !ret; i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);

		if (gn->type != GEN_URI)
			continue;
		ret = fn((const char *)ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier),
			 (size_t)ASN1_STRING_length(gn->d.uniformResourceIdentifier), arg);
	}
	GENERAL_NAMES_free(names);
	return ret;
}

struct uri_find {
	char *buf;
	size_t len;
	const char *want;
	int ret;
};

static int uri_first_spiffe(const char *uri, size_t n, void *arg)
{
	struct uri_find *f = arg;
	size_t plen = strlen(ZM_SPIFFE_PREFIX);

	if (n < plen || strncmp(uri, ZM_SPIFFE_PREFIX, plen))
		return 0;
	/* An embedded NUL would let "spiffe://a\0..." pass for "spiffe://a": refuse it. */
	if (n >= f->len || memchr(uri, '\0', n))
		f->ret = n >= f->len ? -ENAMETOOLONG : -EINVAL;
	else {
		memcpy(f->buf, uri, n);
		f->buf[n] = '\0';
		f->ret = zm_spiffe_id_parse(f->buf, NULL);
	}
	return 1;
}

int tls_x509_spiffe_id(X509 *x, char *buf, size_t len)
{
	struct uri_find f = {.buf = buf, .len = len, .ret = -ENOENT};

	if (len)
		buf[0] = '\0';
	x509_uri_each(x, uri_first_spiffe, &f);
	if (f.ret && len)
		buf[0] = '\0';
	return f.ret;
}

static int uri_equal(const char *uri, size_t n, void *arg)
{
	const struct uri_find *f = arg;

	return n == strlen(f->want) && !memcmp(uri, f->want, n);
}

bool tls_x509_has_uri(X509 *x, const char *id)
{
	struct uri_find f = {.want = id};

	return x509_uri_each(x, uri_equal, &f) != 0;
}

/* ---- certificates ---- */

int tls_cert_wrap(X509 *x509, EVP_PKEY *pkey, STACK_OF(X509) * chain, time_t issued,
		  struct zm_cert **out, char *err, size_t len)
{
	struct zm_cert *c;
	int ret;

	c = calloc(1, sizeof(*c));
	if (!c)
		return zm_errf(err, len, -ENOMEM, "out of memory for a certificate");
	ret = tls_x509_spiffe_id(x509, c->id, sizeof(c->id));
	if (ret) {
		free(c);
		return zm_errf(err, len, ret, "certificate has no valid spiffe:// URI SAN");
	}
	if (!chain)
		chain = sk_X509_new_null();
	if (!chain) {
		free(c);
		return zm_errf(err, len, -ENOMEM, "out of memory for a certificate chain");
	}
	c->refs = 1;
	c->x509 = x509;
	c->pkey = pkey;
	c->chain = chain;
	c->not_before = tls_asn1_time(X509_get0_notBefore(x509));
	c->not_after = tls_asn1_time(X509_get0_notAfter(x509));
	if (!issued || issued < c->not_before)
		issued = c->not_before;
	c->rotate_at = issued + (c->not_after - issued) / 2;
	*out = c;
	return 0;
}

struct zm_cert *zm_cert_ref(struct zm_cert *cert)
{
	if (cert)
		__atomic_add_fetch(&cert->refs, 1, __ATOMIC_RELAXED);
	return cert;
}

void zm_cert_put(struct zm_cert *cert)
{
	if (!cert || __atomic_sub_fetch(&cert->refs, 1, __ATOMIC_ACQ_REL))
		return;
	X509_free(cert->x509);
	EVP_PKEY_free(cert->pkey);
	sk_X509_pop_free(cert->chain, X509_free);
	free(cert);
}

const char *zm_cert_identity(const struct zm_cert *cert)
{
	return cert->id;
}

time_t zm_cert_not_before(const struct zm_cert *cert)
{
	return cert->not_before;
}

time_t zm_cert_not_after(const struct zm_cert *cert)
{
	return cert->not_after;
}

time_t zm_cert_rotate_at(const struct zm_cert *cert)
{
	return cert->rotate_at;
}

bool zm_cert_needs_rotation(const struct zm_cert *cert, time_t now)
{
	return now >= cert->rotate_at;
}

const char *zm_cert_serial(const struct zm_cert *cert, char *buf, size_t len)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert->x509), NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;

	snprintf(buf, len, "%s", hex ?: "");
	for (char *p = buf; *p; p++)
		if (*p >= 'A' && *p <= 'F')
			*p += 'a' - 'A';
	OPENSSL_free(hex);
	BN_free(bn);
	return buf;
}

X509 *zm_cert_x509(const struct zm_cert *cert)
{
	return cert->x509;
}

EVP_PKEY *zm_cert_pkey(const struct zm_cert *cert)
{
	return cert->pkey;
}

STACK_OF(X509) * zm_cert_chain(const struct zm_cert *cert)
{
	return cert->chain;
}

/* ---- PEM files ---- */

int tls_pem_write_file(const char *path, mode_t mode, int (*write)(BIO *bio, const void *arg),
		       const void *arg, char *err, size_t len)
{
	char tmp[4096];
	BIO *bio = NULL;
	int fd, ret;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof(tmp))
		return zm_errf(err, len, -ENAMETOOLONG, "path too long: %s", path);
	/* O_EXCL + the final mode at creation: the key is never readable by others. */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return zm_errf(err, len, -errno, "cannot create %s: %s", tmp, strerror(errno));
	if (fchmod(fd, mode)) {
		ret = zm_errf(err, len, -errno, "chmod %s: %s", tmp, strerror(errno));
		goto err_close;
	}
	bio = BIO_new_fd(fd, BIO_NOCLOSE);
	if (!bio || !write(bio, arg) || BIO_flush(bio) != 1) {
		ret = tls_errf_ssl(err, len, -EIO, "cannot write %s", path);
		goto err_close;
	}
	if (fsync(fd)) {
		ret = zm_errf(err, len, -errno, "fsync %s: %s", tmp, strerror(errno));
		goto err_close;
	}
	BIO_free(bio);
	bio = NULL;
	if (close(fd)) {
		fd = -1;
		ret = zm_errf(err, len, -errno, "close %s: %s", tmp, strerror(errno));
		goto err_unlink;
	}
	fd = -1;
	if (rename(tmp, path)) {
		ret = zm_errf(err, len, -errno, "rename to %s: %s", path, strerror(errno));
		goto err_unlink;
	}
	return 0;

err_close:
	BIO_free(bio);
	close(fd);
err_unlink:
	unlink(tmp);
	return ret;
}

static int pem_write_leaf_chain(BIO *bio, const void *arg)
{
	const struct zm_cert *c = arg;

	if (!PEM_write_bio_X509(bio, c->x509))
		return 0;
	for (int i = 0; i < sk_X509_num(c->chain); i++)
		if (!PEM_write_bio_X509(bio, sk_X509_value(c->chain, i)))
			return 0;
	return 1;
}

static int pem_write_key(BIO *bio, const void *arg)
{
	return PEM_write_bio_PrivateKey(bio, (EVP_PKEY *)arg, NULL, NULL, 0, NULL, NULL);
}

int zm_cert_write_pem(const struct zm_cert *cert, const char *cert_path, const char *key_path,
		      char *err, size_t len)
{
	int ret;

	ret = tls_pem_write_file(key_path, 0600, pem_write_key, cert->pkey, err, len);
	if (ret)
		return ret;
	return tls_pem_write_file(cert_path, 0644, pem_write_leaf_chain, cert, err, len);
}

/* Read every certificate of a PEM file (at least one) into a new stack. */
/* Every PEM certificate of bio, in order. what names the source in err. */
static int pem_read_certs_bio(BIO *bio, const char *what, STACK_OF(X509) * *out, char *err,
			      size_t len)
{
	STACK_OF(X509) * sk;
	X509 *x;

	sk = sk_X509_new_null();
	while (sk && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)))
		if (!sk_X509_push(sk, x)) {
			X509_free(x);
			break;
		}
	ERR_clear_error(); /* the read loop always ends on a "no start line" error */
	if (!sk || sk_X509_num(sk) == 0) {
		sk_X509_free(sk);
		return zm_errf(err, len, -ENOENT, "no PEM certificate in %s", what);
	}
	*out = sk;
	return 0;
}

static int pem_read_certs(const char *path, STACK_OF(X509) * *out, char *err, size_t len)
{
	BIO *bio;
	int ret;

	bio = BIO_new_file(path, "r");
	if (!bio)
		return zm_errf(err, len, errno ? -errno : -EIO, "cannot open %s: %s", path,
			       strerror(errno ?: EIO));
	ret = pem_read_certs_bio(bio, path, out, err, len);
	BIO_free(bio);
	return ret;
}

/* Leaf = first of sk; takes sk and pkey on success (and frees both on failure). */
static int cert_assemble(STACK_OF(X509) * sk, EVP_PKEY *pkey, const char *what,
			 struct zm_cert **out, char *err, size_t len)
{
	X509 *leaf = sk_X509_shift(sk);
	int ret;

	if (!X509_check_private_key(leaf, pkey)) {
		ret = tls_errf_ssl(err, len, -EINVAL, "%s does not match its private key", what);
		goto err;
	}
	ret = tls_cert_wrap(leaf, pkey, sk, 0, out, err, len);
	if (!ret)
		return 0;
err:
	X509_free(leaf);
	EVP_PKEY_free(pkey);
	sk_X509_pop_free(sk, X509_free);
	return ret;
}

int zm_cert_load_pem(const char *cert_path, const char *key_path, struct zm_cert **out, char *err,
		     size_t len)
{
	STACK_OF(X509) *sk = NULL;
	EVP_PKEY *pkey = NULL;
	BIO *bio;
	int ret;

	ret = pem_read_certs(cert_path, &sk, err, len);
	if (ret)
		return ret;
	bio = BIO_new_file(key_path, "r");
	if (bio)
		pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (!pkey) {
		sk_X509_pop_free(sk, X509_free);
		return tls_errf_ssl(err, len, -EINVAL, "cannot read private key %s", key_path);
	}
	return cert_assemble(sk, pkey, cert_path, out, err, len);
}

int zm_cert_from_pem_key(const char *certs_pem, size_t certs_len, EVP_PKEY *key,
			 struct zm_cert **out, char *err, size_t len)
{
	STACK_OF(X509) *sk = NULL;
	BIO *bio;
	int ret;

	if (!certs_pem || !key || certs_len > INT_MAX)
		return zm_errf(err, len, -EINVAL, "certificate PEM and key are required");
	bio = BIO_new_mem_buf(certs_pem, (int)certs_len);
	if (!bio)
		return tls_errf_ssl(err, len, -ENOMEM, "BIO_new_mem_buf");
	ret = pem_read_certs_bio(bio, "the certificate PEM", &sk, err, len);
	BIO_free(bio);
	if (ret)
		return ret;
	if (!EVP_PKEY_up_ref(key)) {
		sk_X509_pop_free(sk, X509_free);
		return tls_errf_ssl(err, len, -ENOMEM, "EVP_PKEY_up_ref");
	}
	return cert_assemble(sk, key, "the certificate PEM", out, err, len);
}

int zm_cert_from_pem(const char *certs_pem, size_t certs_len, const char *key_pem, size_t key_len,
		     struct zm_cert **out, char *err, size_t len)
{
	EVP_PKEY *pkey = NULL;
	BIO *bio;
	int ret;

	if (!key_pem || key_len > INT_MAX)
		return zm_errf(err, len, -EINVAL, "a private key PEM is required");
	bio = BIO_new_mem_buf(key_pem, (int)key_len);
	if (bio)
		pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (!pkey)
		return tls_errf_ssl(err, len, -EINVAL, "cannot parse the private key PEM");
	ret = zm_cert_from_pem_key(certs_pem, certs_len, pkey, out, err, len);
	EVP_PKEY_free(pkey); /* zm_cert_from_pem_key() took its own reference */
	return ret;
}

int zm_tls_roots_from_pem(const char *pem, size_t pem_len, struct zm_tls_roots **out, char *err,
			  size_t len)
{
	STACK_OF(X509) *sk = NULL;
	BIO *bio;
	int ret;

	if (!pem || pem_len > INT_MAX)
		return zm_errf(err, len, -EINVAL, "a PEM bundle is required");
	bio = BIO_new_mem_buf(pem, (int)pem_len);
	if (!bio)
		return tls_errf_ssl(err, len, -ENOMEM, "BIO_new_mem_buf");
	ret = pem_read_certs_bio(bio, "the PEM bundle", &sk, err, len);
	BIO_free(bio);
	if (!ret)
		ret = tls_roots_from_stack(sk, out, err, len);
	sk_X509_pop_free(sk, X509_free);
	return ret;
}

/* ---- trust roots ---- */

int tls_roots_from_certs(X509 **certs, int n, struct zm_tls_roots **out, char *err, size_t len)
{
	struct zm_tls_roots *r;

	r = calloc(1, sizeof(*r));
	if (!r)
		return zm_errf(err, len, -ENOMEM, "out of memory for trust roots");
	r->store = X509_STORE_new();
	if (!r->store) {
		free(r);
		return tls_errf_ssl(err, len, -ENOMEM, "X509_STORE_new");
	}
	for (int i = 0; i < n; i++) {
		if (!X509_STORE_add_cert(r->store, certs[i])) {
			X509_STORE_free(r->store);
			free(r);
			return tls_errf_ssl(err, len, -EINVAL, "adding a trust root");
		}
	}
	r->count = n;
	r->refs = 1;
	*out = r;
	return 0;
}

int tls_roots_from_stack(STACK_OF(X509) * sk, struct zm_tls_roots **out, char *err, size_t len)
{
	int ret, n = sk_X509_num(sk);
	X509 **certs;

	certs = calloc((size_t)n, sizeof(*certs));
	if (!certs)
		return zm_errf(err, len, -ENOMEM, "out of memory for trust roots");
	for (int i = 0; i < n; i++)
		certs[i] = sk_X509_value(sk, i);
	ret = tls_roots_from_certs(certs, n, out, err, len);
	free(certs);
	return ret;
}

int zm_tls_roots_load(const char *pem_path, struct zm_tls_roots **out, char *err, size_t len)
{
	STACK_OF(X509) *sk = NULL;
	int ret;

	ret = pem_read_certs(pem_path, &sk, err, len);
	if (ret)
		return ret;
	ret = tls_roots_from_stack(sk, out, err, len);
	sk_X509_pop_free(sk, X509_free);
	return ret;
}

struct zm_tls_roots *zm_tls_roots_ref(struct zm_tls_roots *roots)
{
	if (roots)
		__atomic_add_fetch(&roots->refs, 1, __ATOMIC_RELAXED);
	return roots;
}

void zm_tls_roots_put(struct zm_tls_roots *roots)
{
	if (!roots || __atomic_sub_fetch(&roots->refs, 1, __ATOMIC_ACQ_REL))
		return;
	X509_STORE_free(roots->store);
	free(roots);
}

int zm_tls_roots_count(const struct zm_tls_roots *roots)
{
	return roots->count;
}
