// SPDX-License-Identifier: Apache-2.0
/*
 * Protobuf wire coding of IstioCertificateRequest/Response (see capb.h). Only the wire types
 * proto3 can produce are accepted (varint, 64-bit, length-delimited, 32-bit); the deprecated
 * group types are refused, as is any length that runs past the buffer, so a hostile request
 * can at worst be refused, never read out of bounds.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caclient/capb.h"
#include "common/errf.h"

enum { PB_VARINT = 0, PB_I64 = 1, PB_LEN = 2, PB_I32 = 5 };

struct pb_rd {
	const uint8_t *p, *end;
};

static int pb_varint(struct pb_rd *r, uint64_t *v)
{
	uint64_t x = 0;

	for (int shift = 0; shift < 64; shift += 7) {
		if (r->p >= r->end)
			return -EINVAL;
		x |= (uint64_t)(*r->p & 0x7f) << shift;
		if (!(*r->p++ & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return -EINVAL; /* more than 10 bytes */
}

/* Next field: its number, wire type, and for PB_LEN the bytes; others are skipped. */
static int pb_field(struct pb_rd *r, uint32_t *num, int *type, const uint8_t **data, size_t *dlen)
{
	uint64_t key, v;

	if (pb_varint(r, &key) || key >> 32 || (key >> 3) == 0)
		return -EINVAL;
	*num = (uint32_t)(key >> 3);
	*type = (int)(key & 7);
	*data = NULL;
	*dlen = 0;
	switch (*type) {
	case PB_VARINT:
		if (pb_varint(r, &v))
			return -EINVAL;
		*dlen = v; /* the value, for the caller */
		return 0;
	case PB_I64:
	case PB_I32:
		if ((size_t)(r->end - r->p) < (*type == PB_I64 ? 8u : 4u))
			return -EINVAL;
		r->p += *type == PB_I64 ? 8 : 4;
		return 0;
	case PB_LEN:
		if (pb_varint(r, &v) || v > (uint64_t)(r->end - r->p))
			return -EINVAL;
		*data = r->p;
		*dlen = (size_t)v;
		r->p += v;
		return 0;
	default:
		return -EINVAL;
	}
}

/* google.protobuf.Value: the string_value (field 3) or -EINVAL when it holds something else. */
static int pb_value_string(const uint8_t *p, size_t n, const char **s, size_t *slen)
{
	struct pb_rd r = {p, p + n};
	const uint8_t *d;
	uint32_t num;
	size_t dl;
	int type;

	*s = NULL;
	*slen = 0;
	while (r.p < r.end) {
		if (pb_field(&r, &num, &type, &d, &dl))
			break;
		if (num == 3 && type == PB_LEN) {
			*s = (const char *)d;
			*slen = dl;
		} else if (num >= 1 && num <= 6) {
			*s = NULL; /* oneof: a later member replaces the string */
			*slen = 0;
		}
	}
	if (r.p < r.end || !*s) {
		/* Never leave a length without its pointer behind. */
		*s = NULL;
		*slen = 0;
		return -EINVAL;
	}
	return 0;
}

/* One Struct.fields map entry (key = 1, value = 2). */
static int pb_meta_entry(const uint8_t *p, size_t n, struct zm_capb_request *out, char *err,
			 size_t errlen)
{
	struct pb_rd r = {p, p + n};
	const uint8_t *d, *key = NULL, *val = NULL;
	size_t dl, klen = 0, vlen = 0;
	uint32_t num;
	int type;

	while (r.p < r.end) {
		if (pb_field(&r, &num, &type, &d, &dl))
			return zm_errf(err, errlen, -EINVAL, "metadata: malformed map entry");
		if (num == 1 && type == PB_LEN)
			key = d, klen = dl;
		else if (num == 2 && type == PB_LEN)
			val = d, vlen = dl;
	}
	if (!key || klen != strlen(ZM_CA_META_IMPERSONATE) ||
	    memcmp(key, ZM_CA_META_IMPERSONATE, klen))
		return 0; /* other metadata (WorkloadName, ClusterID, ...) is informational */
	if (out->impersonated)
		return zm_errf(err, errlen, -EINVAL,
			       "metadata: " ZM_CA_META_IMPERSONATE " given twice");
	if (!val || pb_value_string(val, vlen, &out->impersonated, &out->impersonated_len))
		return zm_errf(err, errlen, -EINVAL,
			       "metadata: " ZM_CA_META_IMPERSONATE " is not a string value");
	if (!out->impersonated_len)
		out->impersonated = NULL;
	return 0;
}

static int pb_metadata(const uint8_t *p, size_t n, struct zm_capb_request *out, char *err,
		       size_t errlen)
{
	struct pb_rd r = {p, p + n};
	const uint8_t *d;
	uint32_t num;
	size_t dl;
	int type, ret;

	while (r.p < r.end) {
		if (pb_field(&r, &num, &type, &d, &dl))
			return zm_errf(err, errlen, -EINVAL, "metadata: malformed Struct");
		if (num == 1 && type == PB_LEN) {
			ret = pb_meta_entry(d, dl, out, err, errlen);
			if (ret)
				return ret;
		}
	}
	return 0;
}

int zm_capb_request_decode(const uint8_t *buf, size_t len, struct zm_capb_request *out, char *err,
			   size_t errlen)
{
	struct pb_rd r = {buf, buf + len};
	const uint8_t *d;
	uint32_t num;
	size_t dl;
	int type, ret;

	memset(out, 0, sizeof(*out));
	while (r.p < r.end) {
		if (pb_field(&r, &num, &type, &d, &dl))
			return zm_errf(err, errlen, -EINVAL, "malformed protobuf at byte %zu",
				       (size_t)(r.p - buf));
		if (num == 1) {
			if (type != PB_LEN)
				return zm_errf(err, errlen, -EINVAL,
					       "csr has wire type %d, want bytes", type);
			out->csr = (const char *)d;
			out->csr_len = dl;
		} else if (num == 3) {
			if (type != PB_VARINT)
				return zm_errf(err, errlen, -EINVAL,
					       "validity_duration has wire type %d", type);
			out->validity_s = (int64_t)dl;
		} else if (num == 4) {
			if (type != PB_LEN)
				return zm_errf(err, errlen, -EINVAL, "metadata has wire type %d",
					       type);
			/* A repeated singular message merges (proto3): a second metadata
			 * naming the identity again is refused as "given twice". */
			ret = pb_metadata(d, dl, out, err, errlen);
			if (ret)
				return ret;
		}
	}
	return 0;
}

/* ---- encoding ---- */

struct pb_wr {
	uint8_t *buf;
	size_t len, cap;
	bool oom;
};

static void pb_put(struct pb_wr *w, const void *p, size_t n)
{
	if (w->oom)
		return;
	if (w->len + n > w->cap) {
		size_t cap = (w->cap ?: 256) * 2;
		uint8_t *nb;

		while (cap < w->len + n)
			cap *= 2;
		nb = realloc(w->buf, cap);
		if (!nb) {
			w->oom = true;
			return;
		}
		w->buf = nb;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static size_t pb_varint_enc(uint8_t *out, uint64_t v)
{
	size_t n = 0;

	do {
		out[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			out[n] |= 0x80;
		n++;
	} while (v);
	return n;
}

static void pb_put_varint(struct pb_wr *w, uint64_t v)
{
	uint8_t tmp[10];

	pb_put(w, tmp, pb_varint_enc(tmp, v));
}

static void pb_put_bytes(struct pb_wr *w, uint32_t num, const void *p, size_t n)
{
	pb_put_varint(w, (uint64_t)num << 3 | PB_LEN);
	pb_put_varint(w, n);
	pb_put(w, p, n);
}

/* Finish: fill in the gRPC header reserved at the start. */
static int pb_finish(struct pb_wr *w, uint8_t **out, size_t *out_len)
{
	if (w->oom || w->len - ZM_GRPC_HDR > UINT32_MAX) {
		free(w->buf);
		return -ENOMEM;
	}
	zm_grpc_hdr_put(w->buf, (uint32_t)(w->len - ZM_GRPC_HDR));
	*out = w->buf;
	*out_len = w->len;
	return 0;
}

int zm_capb_request_encode(const char *csr, int64_t validity_s, const char *impersonated,
			   uint8_t **out, size_t *out_len)
{
	struct pb_wr w = {0}, val = {0}, ent = {0}, meta = {0};
	static const uint8_t hdr[ZM_GRPC_HDR];

	if (!csr)
		return -EINVAL;
	pb_put(&w, hdr, sizeof(hdr));
	pb_put_bytes(&w, 1, csr, strlen(csr));
	if (validity_s) {
		pb_put_varint(&w, 3 << 3 | PB_VARINT);
		pb_put_varint(&w, (uint64_t)validity_s);
	}
	if (impersonated && *impersonated) {
		pb_put_bytes(&val, 3, impersonated, strlen(impersonated));
		pb_put_bytes(&ent, 1, ZM_CA_META_IMPERSONATE, strlen(ZM_CA_META_IMPERSONATE));
		pb_put_bytes(&ent, 2, val.buf, val.len);
		pb_put_bytes(&meta, 1, ent.buf, ent.len);
		pb_put_bytes(&w, 4, meta.buf, meta.len);
		w.oom |= val.oom || ent.oom || meta.oom;
		free(val.buf);
		free(ent.buf);
		free(meta.buf);
	}
	return pb_finish(&w, out, out_len);
}

int zm_capb_response_encode(const char *const *chain, size_t n, uint8_t **out, size_t *out_len)
{
	static const uint8_t hdr[ZM_GRPC_HDR];
	struct pb_wr w = {0};

	pb_put(&w, hdr, sizeof(hdr));
	for (size_t i = 0; i < n; i++)
		pb_put_bytes(&w, 1, chain[i], strlen(chain[i]));
	return pb_finish(&w, out, out_len);
}

int zm_capb_response_decode(const uint8_t *buf, size_t len, const char **chain, size_t *lens,
			    size_t max, char *err, size_t errlen)
{
	struct pb_rd r = {buf, buf + len};
	const uint8_t *d;
	size_t dl, n = 0;
	uint32_t num;
	int type;

	while (r.p < r.end) {
		if (pb_field(&r, &num, &type, &d, &dl))
			return zm_errf(err, errlen, -EINVAL,
				       "malformed protobuf in the CA response");
		if (num != 1)
			continue;
		if (type != PB_LEN)
			return zm_errf(err, errlen, -EINVAL, "cert_chain has wire type %d", type);
		if (n == max)
			return zm_errf(err, errlen, -EINVAL,
				       "CA response has more than %zu certificates", max);
		chain[n] = (const char *)d;
		lens[n++] = dl;
	}
	if (!n)
		return zm_errf(err, errlen, -EINVAL, "CA response has an empty cert_chain");
	return (int)n;
}
