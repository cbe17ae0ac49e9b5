// SPDX-License-Identifier: Apache-2.0
/*
 * The HTTP/2 server session (nghttp2) of a zmesh-ca connection and the unary gRPC calls it
 * carries; the socket, TLS and the deadlines are conn.c's. gRPC framing: a request is exactly
 * one uncompressed length-prefixed message of at most ZM_CA_MAX_REQUEST bytes; the answer is
 * HEADERS (:status 200, content-type application/grpc), the response message, and trailers
 * grpc-status/message, or a trailers-only answer for errors. HTTP/2 garbage ends the
 * connection with a GOAWAY (nghttp2) and a log line; gRPC-level garbage gets a status on its
 * stream. A stream's HEADERS make the connection busy (its request deadline runs from then);
 * the close of its last stream makes it idle.
 */
#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca.h"
#include "conn.h"
#include "obs/log.h"

/* ---- answering ---- */

/* grpc-message is percent-encoded (gRPC over HTTP/2 spec): keep it printable ASCII. */
static void pct_encode(const char *in, char *out, size_t len)
{
	size_t o = 0;

	for (; *in && o + 4 < len; in++) {
		unsigned char ch = (unsigned char)*in;

		if (ch < 0x20 || ch > 0x7e || ch == '%')
			o += (size_t)snprintf(out + o, len - o, "%%%02X", ch);
		else
			out[o++] = (char)ch;
	}
	out[o] = '\0';
}

#define NV(n, v)                                                                                   \
	{                                                                                          \
		(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v),                          \
		    NGHTTP2_NV_FLAG_NO_COPY_NAME                                                   \
	}

static ssize_t zca_resp_read(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t len,
			     uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct zca_stream *s = src->ptr;
	size_t n = s->resp_len - s->resp_off;
	char code[16];

	(void)ud;
	if (n > len)
		n = len;
	memcpy(buf, s->resp + s->resp_off, n);
	s->resp_off += n;
	if (s->resp_off == s->resp_len) {
		snprintf(code, sizeof(code), "%d", s->status);

		nghttp2_nv tr[] = {NV("grpc-status", code)};

		*flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
		if (nghttp2_submit_trailer(h2, id, tr, 1))
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	return (ssize_t)n;
}

/*
 * The client may still be sending (an oversized body). gRPC clients take a RST_STREAM right
 * after an early answer as an INTERNAL error, hiding our status, so the rest is read and
 * dropped (on_data), and the stream reset only past ZCA_DISCARD_MAX bytes.
 */
#define ZCA_DISCARD_MAX (1u << 20)
static void zca_stop_input(struct zca_conn *c, struct zca_stream *s)
{
	if (!s->ended && s->discarded > ZCA_DISCARD_MAX)
		nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR);
}

/* A gRPC error: trailers-only response, then stop reading the rest of the request. */
static void zca_fail(struct zca_conn *c, struct zca_stream *s, int status, const char *msg)
{
	char code[16], enc[sizeof(s->msg) * 3];

	snprintf(code, sizeof(code), "%d", status);
	pct_encode(msg, enc, sizeof(enc));

	nghttp2_nv hd[] = {NV(":status", "200"), NV("content-type", "application/grpc"),
			   NV("grpc-status", code), NV("grpc-message", enc)};
	s->answered = true;
	nghttp2_submit_response(c->h2, s->id, hd, 4, NULL);
	zca_stop_input(c, s);
}

static void zca_http_fail(struct zca_conn *c, struct zca_stream *s, const char *status,
			  const char *why)
{
	nghttp2_nv hd[] = {NV(":status", status)};

	obs_log(OBS_WARN, "rpc", "refused from %s: HTTP %s: %s", c->caller.addr, status, why);
	s->answered = true;
	nghttp2_submit_response(c->h2, s->id, hd, 1, NULL);
	zca_stop_input(c, s);
}

static void zca_refuse(struct zca_conn *c, struct zca_stream *s, int status, const char *why)
{
	atomic_fetch_add(&c->z->refused, 1);
	obs_log(OBS_WARN, "rpc", "refused from %s caller=%s: %s %s", c->caller.addr,
		c->caller.id[0] ? c->caller.id : "-", zm_grpc_status_name(status), why);
	zca_fail(c, s, status, why);
}

/* The whole request is in: check the framing, decode, handle, answer. */
static void zca_stream_done(struct zca_conn *c, struct zca_stream *s)
{
	struct zm_capb_request rq;
	char why[sizeof(s->msg)], *chain[2];
	nghttp2_data_provider prd = {.source.ptr = s, .read_callback = zca_resp_read};
	nghttp2_nv hd[] = {NV(":status", "200"), NV("content-type", "application/grpc")};
	struct zca_caller caller;
	uint32_t mlen;
	int comp, st;

	if (strcmp(s->method, "POST"))
		return zca_http_fail(c, s, "405", "method is not POST");
	if (strncmp(s->ctype, "application/grpc", 16) ||
	    (s->ctype[16] && s->ctype[16] != '+' && s->ctype[16] != ';'))
		return zca_http_fail(c, s, "415", "content-type is not application/grpc");
	if (strcmp(s->path, ZM_CA_GRPC_PATH))
		return zca_refuse(c, s, ZM_GRPC_UNIMPLEMENTED, "unknown method");
	caller = c->caller;
	if (!caller.id[0] && s->bearer[0] && c->z->tokens_path &&
	    zca_token_caller(c->z, s->bearer, &caller))
		return zca_refuse(c, s, ZM_GRPC_UNAUTHENTICATED, "Bearer token not accepted");
	if (!caller.id[0])
		return zca_refuse(c, s, ZM_GRPC_UNAUTHENTICATED,
				  c->z->tokens_path
				      ? "no client certificate with a SPIFFE id and no Bearer token"
				      : "client certificate carries no SPIFFE id");
	if (s->len < ZM_GRPC_HDR)
		return zca_refuse(c, s, ZM_GRPC_INVALID_ARGUMENT, "gRPC frame: no message");
	comp = zm_grpc_hdr_get(s->body, &mlen);
	if (comp < 0)
		return zca_refuse(c, s, ZM_GRPC_INVALID_ARGUMENT, "gRPC frame: bad flags byte");
	if (comp)
		return zca_refuse(c, s, ZM_GRPC_UNIMPLEMENTED,
				  "gRPC frame: compressed messages are not supported");
	if (mlen != s->len - ZM_GRPC_HDR)
		return zca_refuse(c, s, ZM_GRPC_INVALID_ARGUMENT,
				  mlen > s->len - ZM_GRPC_HDR
				      ? "gRPC frame: message truncated"
				      : "gRPC frame: more than one message in a unary call");
	if (zm_capb_request_decode(s->body + ZM_GRPC_HDR, mlen, &rq, why, sizeof(why)))
		return zca_refuse(c, s, ZM_GRPC_INVALID_ARGUMENT, why);
	st = zca_handle(c->z, &caller, &rq, chain, why, sizeof(why));
	if (st)
		return zca_fail(c, s, st, why);
	st = zm_capb_response_encode((const char *const *)chain, 2, &s->resp, &s->resp_len);
	free(chain[0]);
	free(chain[1]);
	if (st)
		return zca_fail(c, s, ZM_GRPC_INTERNAL, "out of memory");
	s->answered = true;
	s->status = ZM_GRPC_OK;
	nghttp2_submit_response(c->h2, s->id, hd, 2, &prd);
}

/* ---- nghttp2 callbacks ---- */

static struct zca_stream *zca_stream_of(nghttp2_session *h2, int32_t id)
{
	return nghttp2_session_get_stream_user_data(h2, id);
}

static int on_begin_headers(nghttp2_session *h2, const nghttp2_frame *f, void *ud)
{
	struct zca_conn *c = ud;
	struct zca_stream *s;

	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
	s->id = f->hd.stream_id;
	s->start_ms = c->loop->now_ms;
	s->next = c->streams;
	c->streams = s;
	nghttp2_session_set_stream_user_data(h2, s->id, s);
	zca_conn_phase(c, ZCA_PH_BUSY);
	return 0;
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
		     const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
	struct zca_stream *s = zca_stream_of(h2, f->hd.stream_id);
	char *dst = NULL;
	size_t cap = 0;

	(void)flags;
	(void)ud;
	if (!s || f->hd.type != NGHTTP2_HEADERS)
		return 0;
	if (nlen == 7 && !memcmp(name, ":method", 7))
		dst = s->method, cap = sizeof(s->method);
	else if (nlen == 5 && !memcmp(name, ":path", 5))
		dst = s->path, cap = sizeof(s->path);
	else if (nlen == 12 && !memcmp(name, "content-type", 12))
		dst = s->ctype, cap = sizeof(s->ctype);
	else if (nlen == 13 && !memcmp(name, "authorization", 13) && vlen > 7 &&
		 !memcmp(value, "Bearer ", 7) && vlen - 7 < sizeof(s->bearer))
		dst = s->bearer, cap = sizeof(s->bearer), value += 7, vlen -= 7;
	if (dst) /* too long for the field: truncated, then fails the exact comparisons */
		snprintf(dst, cap, "%.*s", (int)(vlen < cap ? vlen : cap - 1), value);
	return 0;
}

static int on_data(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
		   void *ud)
{
	struct zca_stream *s = zca_stream_of(h2, id);
	struct zca_conn *c = ud;
	uint8_t *nb;

	(void)flags;
	if (!s)
		return 0;
	if (s->answered) {
		bool was_under = s->discarded <= ZCA_DISCARD_MAX;

		s->discarded += len;
		if (was_under && s->discarded > ZCA_DISCARD_MAX)
			zca_stop_input(c, s);
		return 0;
	}
	if (s->len + len > ZM_GRPC_HDR + ZM_CA_MAX_REQUEST) {
		char why[96];

		snprintf(why, sizeof(why), "request larger than %u bytes", ZM_CA_MAX_REQUEST);
		zca_refuse(c, s, ZM_GRPC_RESOURCE_EXHAUSTED, why);
		return 0;
	}
	nb = realloc(s->body, s->len + len);
	if (!nb)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	memcpy(nb + s->len, data, len);
	s->body = nb;
	s->len += len;
	/* A declared length beyond the cap is refused before its bytes arrive. */
	if (s->len >= ZM_GRPC_HDR) {
		uint32_t mlen;

		if (zm_grpc_hdr_get(s->body, &mlen) >= 0 && mlen > ZM_CA_MAX_REQUEST) {
			char why[96];

			snprintf(why, sizeof(why), "message of %u bytes exceeds the %u byte limit",
				 mlen, ZM_CA_MAX_REQUEST);
			zca_refuse(c, s, ZM_GRPC_RESOURCE_EXHAUSTED, why);
		}
	}
	return 0;
}

static int on_frame_recv(nghttp2_session *h2, const nghttp2_frame *f, void *ud)
{
	struct zca_stream *s;

	if ((f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) ||
	    !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	s = zca_stream_of(h2, f->hd.stream_id);
	if (s)
		s->ended = true;
	if (s && !s->answered)
		zca_stream_done(ud, s);
	return 0;
}

static int on_stream_close(nghttp2_session *h2, int32_t id, uint32_t error, void *ud)
{
	struct zca_stream *s = zca_stream_of(h2, id), **pp;
	struct zca_conn *c = ud;

	(void)error;
	if (!s)
		return 0;
	for (pp = &c->streams; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	nghttp2_session_set_stream_user_data(h2, id, NULL);
	free(s->body);
	free(s->resp);
	free(s);
	zca_conn_phase(c, c->streams ? ZCA_PH_BUSY : ZCA_PH_IDLE);
	return 0;
}

int zca_h2_new(struct zca_conn *c)
{
	nghttp2_session_callbacks *cb;
	nghttp2_option *opt;
	nghttp2_settings_entry iv[] = {
	    {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, ZCA_MAX_STREAMS},
	    {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, ZCA_MAX_HEADER_LIST},
	    {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 64u << 10},
	};
	int r;

	if (nghttp2_session_callbacks_new(&cb))
		return -ENOMEM;
	if (nghttp2_option_new(&opt)) {
		nghttp2_session_callbacks_del(cb);
		return -ENOMEM;
	}
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
	r = nghttp2_session_server_new2(&c->h2, cb, c, opt);
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cb);
	if (r)
		return -ENOMEM;
	return nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, 3) ? -ENOMEM : 0;
}
