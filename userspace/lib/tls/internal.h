/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private definitions of lib/tls shared between its files: the certificate and root-set
 * layouts, error-text helpers and the X509 helpers the CA and the peer checks both need.
 * Nothing outside userspace/lib/tls includes this.
 */
#ifndef ZMESH_TLS_INTERNAL_H
#define ZMESH_TLS_INTERNAL_H

#include "common/errf.h"
#include "tls/tls.h"

#include <openssl/x509.h>

struct zm_cert {
	int refs; /* __atomic */
	X509 *x509;
	EVP_PKEY *pkey;
	STACK_OF(X509) * chain; /* intermediates, never NULL (may be empty) */
	time_t not_before, not_after;
	time_t rotate_at; /* half of the lifetime this certificate was issued (or found) with */
	char id[ZM_SPIFFE_ID_MAX];
};

struct zm_tls_roots {
	int refs; /* __atomic */
	X509_STORE *store;
	int count;
};

/*
 * Like zm_errf() (common/errf.h) with ": <first OpenSSL error>" appended; clears the thread's error
 * queue so a later failure does not report a stale reason.
 */
int tls_errf_ssl(char *err, size_t len, int ret, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * The first spiffe:// URI SAN of x into buf (validated by zm_spiffe_id_parse()). Returns 0,
 * -ENOENT (none), -EINVAL (a spiffe URI that does not parse) or -ENAMETOOLONG.
 */
int tls_x509_spiffe_id(X509 *x, char *buf, size_t len);

/* True when any URI SAN of x equals id (full "spiffe://..." form). */
bool tls_x509_has_uri(X509 *x, const char *id);

/* ASN1_TIME to time_t (UTC); 0 on a malformed time. */
time_t tls_asn1_time(const ASN1_TIME *t);

/*
 * Wrap leaf + key (+ chain, may be NULL) into a new zm_cert, taking ownership of all three on
 * success. rotate_at = midpoint of [issued, not_after], issued = 0 meaning notBefore.
 */
int tls_cert_wrap(X509 *x509, EVP_PKEY *pkey, STACK_OF(X509) * chain, time_t issued,
		  struct zm_cert **out, char *err, size_t len);

/* New root set holding the given certificates (each up-ref'd). */
int tls_roots_from_certs(X509 **certs, int n, struct zm_tls_roots **out, char *err, size_t len);

/* New root set holding every certificate of sk (each up-ref'd; sk stays the caller's). */
int tls_roots_from_stack(STACK_OF(X509) * sk, struct zm_tls_roots **out, char *err, size_t len);

/* Write a PEM produced by write() to path with mode, atomically (temp file + rename). */
int tls_pem_write_file(const char *path, mode_t mode, int (*write)(BIO *bio, const void *arg),
		       const void *arg, char *err, size_t len);

#endif
