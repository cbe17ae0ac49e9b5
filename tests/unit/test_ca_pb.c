// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of lib/caclient/capb.c: the hand-coded IstioCertificateRequest/Response wire
 * format round-trips, matches bytes protoc would produce for the same message, and refuses
 * malformed input (truncated lengths, groups, overlong varints, a non-string impersonation)
 * without reading past the buffer (run under make SANITIZE=1).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "caclient/capb.h"
#include "tap.h"

static void test_request_roundtrip(void)
{
	struct zm_capb_request rq;
	uint8_t *buf;
	size_t len;
	uint32_t mlen;
	char err[128];

	is_int(zm_capb_request_encode("CSR", 3600, "spiffe://td/ns/a/sa/b", &buf, &len), 0,
	       "encode a request");
	is_int(zm_grpc_hdr_get(buf, &mlen), 0, "gRPC header: uncompressed");
	is_int((int)mlen, (int)(len - ZM_GRPC_HDR), "gRPC header: length of the message");
	/* protoc's bytes: csr (field 1), validity (field 3), metadata (field 4) */
	ok(buf[5] == 0x0a && buf[6] == 3 && !memcmp(buf + 7, "CSR", 3), "csr is field 1");
	ok(buf[10] == 0x18, "validity_duration is field 3 (varint)");
	is_int(zm_capb_request_decode(buf + ZM_GRPC_HDR, mlen, &rq, err, sizeof(err)), 0,
	       "decode it back");
	ok(rq.csr_len == 3 && !memcmp(rq.csr, "CSR", 3), "csr survives");
	is_int((int)rq.validity_s, 3600, "validity survives");
	ok(rq.impersonated_len == strlen("spiffe://td/ns/a/sa/b") &&
	       !memcmp(rq.impersonated, "spiffe://td/ns/a/sa/b", rq.impersonated_len),
	   "ImpersonatedIdentity survives");
	free(buf);

	is_int(zm_capb_request_encode("X", 0, NULL, &buf, &len), 0, "encode without metadata");
	is_int(zm_capb_request_decode(buf + 5, len - 5, &rq, err, sizeof(err)), 0, "decodes");
	ok(!rq.impersonated && !rq.validity_s, "no impersonation, no validity");
	free(buf);
}

/*
 * Found by fuzz_capb: a second metadata field used to drop the impersonated pointer but keep
 * its length. Two metadata messages merge (proto3), so the identity stays; named twice, refused.
 */
static void test_request_two_metadata(void)
{
	uint8_t *a = NULL, *b = NULL, buf[512];
	struct zm_capb_request rq;
	size_t al, bl, n;
	char err[128];

	if (zm_capb_request_encode("C", 0, "spiffe://td/ns/a/sa/b", &a, &al) ||
	    zm_capb_request_encode("C", 0, NULL, &b, &bl) || al + bl > sizeof(buf)) {
		ok(0, "encoding the two-metadata request");
		goto out;
	}
	/* a's body carries csr + metadata; append a second, empty metadata field (tag 4). */
	n = al - ZM_GRPC_HDR;
	memcpy(buf, a + ZM_GRPC_HDR, n);
	buf[n++] = 0x22;
	buf[n++] = 0x00;
	is_int(zm_capb_request_decode(buf, n, &rq, err, sizeof(err)), 0, "two metadata fields");
	ok(rq.impersonated && rq.impersonated_len == strlen("spiffe://td/ns/a/sa/b"),
	   "the identity survives an empty second metadata (pointer and length agree)");
	memcpy(buf + n - 2, a + ZM_GRPC_HDR, al - ZM_GRPC_HDR);
	n = n - 2 + al - ZM_GRPC_HDR;
	is_int(zm_capb_request_decode(buf, n, &rq, err, sizeof(err)), -EINVAL,
	       "the identity named in two metadata fields is refused (%s)", err);
out:
	free(a);
	free(b);
}

static void test_request_bad(void)
{
	static const struct {
		const char *name;
		uint8_t b[24];
		size_t n;
	} bad[] = {
	    {"length past the end", {0x0a, 0x10, 'a'}, 3},
	    {"length of 4 GiB", {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f}, 6},
	    {"overlong varint",
	     {0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	     12},
	    {"group wire type", {0x0b, 0x0c}, 2},
	    {"field number 0", {0x02, 0x00}, 2},
	    {"csr as varint", {0x08, 0x01}, 2},
	    {"truncated fixed64", {0x11, 1, 2, 3}, 4},
	    /* metadata { fields { key "ImpersonatedIdentity" value { bool_value: true } } } */
	    {"impersonation not a string",
	     {0x22, 0x1c, 0x0a, 0x1a, 0x0a, 0x14, 'I', 'm', 'p', 'e', 'r', 's',
	      'o',  'n',  'a',	't',  'e',  'd',  'I', 'd', 'e', 'n', 't', 'i'},
	     24},
	};
	struct zm_capb_request rq;
	char err[128];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		is_int(zm_capb_request_decode(bad[i].b, bad[i].n, &rq, err, sizeof(err)), -EINVAL,
		       "refuses %s (%s)", bad[i].name, err);
	/* unknown fields are skipped (proto3) */
	const uint8_t unk[] = {0x2a, 0x01, 'x', 0x0a, 0x01, 'C', 0x35, 1, 2, 3, 4};

	is_int(zm_capb_request_decode(unk, sizeof(unk), &rq, err, sizeof(err)), 0,
	       "skips unknown fields");
	ok(rq.csr_len == 1 && rq.csr[0] == 'C', "and still finds the csr");
	test_request_two_metadata();
}

static void test_response(void)
{
	const char *chain[] = {"LEAF", "ROOT"}, *got[4];
	size_t lens[4], len;
	uint8_t *buf;
	char err[128];

	is_int(zm_capb_response_encode(chain, 2, &buf, &len), 0, "encode a response");
	is_int(zm_capb_response_decode(buf + 5, len - 5, got, lens, 4, err, sizeof(err)), 2,
	       "two certificates back");
	ok(lens[0] == 4 && !memcmp(got[0], "LEAF", 4) && !memcmp(got[1], "ROOT", 4),
	   "leaf first, root last");
	is_int(zm_capb_response_decode(buf + 5, len - 5, got, lens, 1, err, sizeof(err)), -EINVAL,
	       "more certificates than the caller takes: refused");
	is_int(zm_capb_response_decode(buf + 5, 0, got, lens, 4, err, sizeof(err)), -EINVAL,
	       "empty chain refused");
	free(buf);
	ok(zm_grpc_hdr_get((const uint8_t *)"\x02\0\0\0\0", &(uint32_t){0}) < 0,
	   "gRPC flags byte 2 refused");
	is_str(zm_grpc_status_name(ZM_GRPC_PERMISSION_DENIED), "PERMISSION_DENIED", "status names");
}

int main(void)
{
	test_request_roundtrip();
	test_request_bad();
	test_response();
	return tap_done();
}
