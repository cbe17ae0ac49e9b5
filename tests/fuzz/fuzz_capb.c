// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for the CA wire format (lib/caclient/capb.c): the first byte picks the
 * decoder (IstioCertificateRequest, IstioCertificateResponse, gRPC message header), the rest
 * is its input. Decoders must return a result or -EINVAL without reading past the buffer
 * (the input is copied into an exact-size heap block so ASan sees any overrun), must leave a
 * terminated reason on failure, and whatever a decoder accepts must survive an encode/decode
 * round trip unchanged: the server and the client use the same code for both directions.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "caclient/capb.h"

/* Terminated copy of a decoded (length-delimited, not terminated) string; NULL if it holds NUL. */
static char *fuzz_strdup(const char *s, size_t n)
{
	char *out;

	if (memchr(s, '\0', n))
		return NULL;
	out = malloc(n + 1);
	if (!out)
		abort();
	memcpy(out, s, n);
	out[n] = '\0';
	return out;
}

static void fuzz_request(const uint8_t *buf, size_t len)
{
	struct zm_capb_request rq, rq2;
	char err[256] = "x", *csr, *imp = NULL;
	uint8_t *enc;
	size_t elen;

	if (zm_capb_request_decode(buf, len, &rq, err, sizeof(err))) {
		if (!memchr(err, '\0', sizeof(err)) || !err[0])
			abort();
		return;
	}
	if ((rq.csr_len &&
	     (rq.csr < (const char *)buf || rq.csr + rq.csr_len > (const char *)buf + len)) ||
	    (rq.impersonated_len &&
	     (rq.impersonated < (const char *)buf ||
	      rq.impersonated + rq.impersonated_len > (const char *)buf + len)))
		abort(); /* decoded strings must point into the input */
	csr = fuzz_strdup(rq.csr ?: "", rq.csr_len);
	if (rq.impersonated_len)
		imp = fuzz_strdup(rq.impersonated, rq.impersonated_len);
	if (!csr || (rq.impersonated_len && !imp) || rq.validity_s < 0)
		goto out; /* not representable by the encoder's C strings */
	if (zm_capb_request_encode(csr, rq.validity_s, imp, &enc, &elen))
		goto out;
	if (elen < ZM_GRPC_HDR ||
	    zm_capb_request_decode(enc + ZM_GRPC_HDR, elen - ZM_GRPC_HDR, &rq2, err, sizeof(err)) ||
	    rq2.csr_len != rq.csr_len || memcmp(rq2.csr ?: "", csr, rq.csr_len) ||
	    rq2.validity_s != rq.validity_s || rq2.impersonated_len != rq.impersonated_len ||
	    (imp && memcmp(rq2.impersonated, imp, rq.impersonated_len)))
		abort();
	free(enc);
out:
	free(csr);
	free(imp);
}

static void fuzz_response(const uint8_t *buf, size_t len)
{
	const char *chain[ZM_CA_MAX_CHAIN], *chain2[ZM_CA_MAX_CHAIN];
	size_t lens[ZM_CA_MAX_CHAIN], lens2[ZM_CA_MAX_CHAIN];
	char *copies[ZM_CA_MAX_CHAIN] = {0}, err[256] = "x";
	uint8_t *enc = NULL;
	size_t elen;
	int n, i, m;

	n = zm_capb_response_decode(buf, len, chain, lens, ZM_CA_MAX_CHAIN, err, sizeof(err));
	if (n < 0) {
		if (n != -EINVAL || !memchr(err, '\0', sizeof(err)) || !err[0])
			abort();
		return;
	}
	if (n < 1 || n > ZM_CA_MAX_CHAIN)
		abort();
	for (i = 0; i < n; i++) {
		if (lens[i] &&
		    (chain[i] < (const char *)buf || chain[i] + lens[i] > (const char *)buf + len))
			abort();
		copies[i] = fuzz_strdup(chain[i] ?: "", lens[i]);
		if (!copies[i])
			goto out;
	}
	if (zm_capb_response_encode((const char *const *)copies, (size_t)n, &enc, &elen))
		goto out;
	m = zm_capb_response_decode(enc + ZM_GRPC_HDR, elen - ZM_GRPC_HDR, chain2, lens2,
				    ZM_CA_MAX_CHAIN, err, sizeof(err));
	if (m != n)
		abort();
	for (i = 0; i < n; i++)
		if (lens2[i] != lens[i] || memcmp(chain2[i] ?: "", copies[i], lens[i]))
			abort();
out:
	free(enc);
	for (i = 0; i < n; i++)
		free(copies[i]);
}

static void fuzz_hdr(const uint8_t *buf, size_t len)
{
	uint8_t hdr[ZM_GRPC_HDR];
	uint32_t msg_len, again;
	int flag;

	if (len < ZM_GRPC_HDR)
		return;
	flag = zm_grpc_hdr_get(buf, &msg_len);
	if (flag == -EINVAL)
		return;
	if (flag != 0 && flag != 1)
		abort();
	zm_grpc_hdr_put(hdr, msg_len);
	if (zm_grpc_hdr_get(hdr, &again) != 0 || again != msg_len)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf;

	if (!size)
		return 0;
	/* An exact-size copy: one byte past the input is outside the allocation. */
	buf = malloc(size - 1 ? size - 1 : 1);
	if (!buf)
		return 0;
	memcpy(buf, data + 1, size - 1);
	switch (data[0] % 3) {
	case 0:
		fuzz_request(buf, size - 1);
		break;
	case 1:
		fuzz_response(buf, size - 1);
		break;
	default:
		fuzz_hdr(buf, size - 1);
		break;
	}
	free(buf);
	return 0;
}
