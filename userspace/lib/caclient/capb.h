/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The wire format of Istio's certificate API (istio.v1.auth.IstioCertificateService, see
 * userspace/zmesh-ca/ca.proto), shared by the zmesh-ca server and the ztunnel-side client:
 * the two protobuf messages, hand-coded because they are tiny (three fields and one repeated
 * string) and because the decoder must be strict about hostile input anyway; gRPC's framing
 * and status codes are lib/grpc's. Decoders never read past len, refuse groups, truncated
 * fields and overlong varints, and return pointers into the caller's buffer (not
 * NUL-terminated).
 */
#ifndef ZMESH_CACLIENT_CAPB_H
#define ZMESH_CACLIENT_CAPB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "grpc/grpc.h"
#include "tls/tls.h"

/* The one RPC we speak. */
#define ZM_CA_GRPC_PATH	       "/istio.v1.auth.IstioCertificateService/CreateCertificate"
/* Metadata key naming the identity a node asks for on behalf of a workload. */
#define ZM_CA_META_IMPERSONATE "ImpersonatedIdentity"
/* Largest request message the CA accepts (a P-256 CSR in PEM is ~600 bytes). */
#define ZM_CA_MAX_REQUEST      (16u << 10)
/* Largest response message a client accepts (a chain of a few certificates). */
#define ZM_CA_MAX_RESPONSE     (256u << 10)
/* Most certificates in a response chain. */
#define ZM_CA_MAX_CHAIN	       8

/* IstioCertificateRequest, decoded. Strings point into the decoded buffer. */
struct zm_capb_request {
	const char *csr; /* field 1: PEM CSR */
	size_t csr_len;
	int64_t validity_s;	  /* field 3: requested lifetime, seconds (0: CA default) */
	const char *impersonated; /* metadata.fields["ImpersonatedIdentity"].string_value */
	size_t impersonated_len;  /* 0 when absent */
};

/*
 * Decode an IstioCertificateRequest. Unknown fields are skipped (proto3 rules); a metadata
 * value for ImpersonatedIdentity that is not a string, duplicated keys, or any malformed
 * encoding is refused with -EINVAL and a reason in err. Returns 0 or -EINVAL.
 */
int zm_capb_request_decode(const uint8_t *buf, size_t len, struct zm_capb_request *out, char *err,
			   size_t errlen);

/*
 * Encode an IstioCertificateRequest into a malloc'd buffer, prefixed with room for the gRPC
 * header (the first ZM_GRPC_HDR bytes are written as an uncompressed-message header).
 * impersonated may be NULL. Returns 0 or -ENOMEM/-EINVAL.
 */
int zm_capb_request_encode(const char *csr, int64_t validity_s, const char *impersonated,
			   uint8_t **out, size_t *out_len);

/* Encode an IstioCertificateResponse (cert_chain), gRPC header included, malloc'd. */
int zm_capb_response_encode(const char *const *chain, size_t n, uint8_t **out, size_t *out_len);

/*
 * Decode an IstioCertificateResponse: up to max cert_chain entries into chain[]/lens[]
 * (pointers into buf). Returns the number of entries (>= 1) or -EINVAL (malformed, empty or
 * more than max entries).
 */
int zm_capb_response_decode(const uint8_t *buf, size_t len, const char **chain, size_t *lens,
			    size_t max, char *err, size_t errlen);

#endif
