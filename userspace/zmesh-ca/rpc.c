// SPDX-License-Identifier: Apache-2.0
/*
 * One zmesh-ca connection, driven by a worker's event loop (lib/rt): mutual TLS 1.3 (client
 * certificate required and verified against the CA's root; ALPN h2 required) handshaken on a
 * non-blocking socket, then an HTTP/2 server session (nghttp2) carrying unary gRPC calls. A
 * connection idle (or a handshake stalled) for ZCA_IDLE_MS is closed by its timer, so a
 * stalled peer costs a few kilobytes, not a thread. gRPC framing: a request is exactly one
 * uncompressed length-prefixed message of at most ZM_CA_MAX_REQUEST bytes; the answer is
 * HEADERS (:status 200, content-type application/grpc), the response message, and trailers
 * grpc-status/message, or a trailers-only answer for errors. HTTP/2 garbage ends the
 * connection with a GOAWAY (nghttp2) and a log line; gRPC-level garbage gets a status on its
 * stream.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <unistd.h>

#include "common/list.h"
#include "ca.h"
#include "common/addr.h"
#include "obs/log.h"
#include "rt/loop.h"

struct zca_stream {
	struct zca_stream *next;
	int32_t id;
	char method[16], path[128], ctype[64];
	char bearer[4096]; /* the authorization header's token ("" when none) */
	uint8_t *body;
	size_t len;
	bool answered;	  /* a response was submitted: ignore further input */
	bool ended;	  /* the client sent END_STREAM */
	size_t discarded; /* bytes received after the answer */
	uint8_t *resp;
	size_t resp_len, resp_off;
	int status;
	char msg[320];
};

struct zca_conn {
	struct rt_ev ev; /* first: the loop hands us &ev */
	struct rt_timer idle;
	struct rt_loop *loop;
	struct zca *z;
	SSL *ssl;
	nghttp2_session *h2;
	struct zca_stream *streams;
	struct zca_caller caller;
	bool handshaken;
	uint8_t *out; /* bytes nghttp2 produced that TLS did not take yet */
	size_t out_len, out_off, out_cap;
};

static const unsigned char alpn_h2[] = {2, 'h', '2'};

static int zca_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
			   const unsigned char *in, unsigned int inlen, void *arg)
{
	(void)ssl;
	(void)arg;
	if (SSL_select_next_proto((unsigned char **)out, outlen, alpn_h2, sizeof(alpn_h2), in,
				  inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL; /* gRPC needs h2: refuse in the handshake */
	return SSL_TLSEXT_ERR_OK;
}

int zca_ssl_ctx_init(struct zca *z, char *err, size_t len)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	int r;

	if (!ctx)
		return snprintf(err, len, "SSL_CTX_new failed"), -ENOMEM;
	r = zca_server_cert(z, &cert, &key, err, len);
	if (r)
		goto fail;
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384") ||
	    SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
	    !X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), z->ca_cert)) {
		snprintf(err, len, "configuring TLS: %s", ERR_reason_error_string(ERR_get_error()));
		r = -EINVAL;
		goto fail;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	/* Non-blocking writes: a partial SSL_write is fine and the buffer may move between
	 * retries. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* With --tokens a client may authenticate by Bearer token instead of a certificate. */
	SSL_CTX_set_verify(
	    ctx, SSL_VERIFY_PEER | (z->tokens_path ? 0 : SSL_VERIFY_FAIL_IF_NO_PEER_CERT), NULL);
	SSL_CTX_set_alpn_select_cb(ctx, zca_alpn_select, NULL);
	X509_free(cert);
	EVP_PKEY_free(key);
	z->ssl_ctx = ctx;
	return 0;
fail:
	ERR_clear_error();
	X509_free(cert);
	EVP_PKEY_free(key);
	SSL_CTX_free(ctx);
	return r;
}

/* The caller's SPIFFE id (first spiffe:// URI SAN that parses) and subject CN. */
static void zca_caller_fill(struct zca_caller *c, X509 *x)
{
	GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);

	for (int i = 0; names && i < sk_GENERAL_NAME_num(names) && !c->id[0]; i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
		int n;

		if (gn->type != GEN_URI)
			continue;
		n = ASN1_STRING_length(gn->d.uniformResourceIdentifier);
		if (n <= 0 || (size_t)n >= sizeof(c->id))
			continue;
		memcpy(c->id, ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier), (size_t)n);
		c->id[n] = '\0';
		if (strlen(c->id) != (size_t)n || zm_spiffe_id_parse(c->id, NULL))
			c->id[0] = '\0';
	}
	GENERAL_NAMES_free(names);
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, c->node,
				      sizeof(c->node)) <= 0)
		c->node[0] = '\0';
}

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
	s->next = c->streams;
	c->streams = s;
	nghttp2_session_set_stream_user_data(h2, s->id, s);
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
	return 0;
}

static int zca_h2_new(struct zca_conn *c)
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

/* ---- the connection ---- */

static const char *zca_ssl_why(SSL *ssl, int ret, char *buf, size_t len)
{
	long v = SSL_get_verify_result(ssl);
	unsigned long e = ERR_get_error();

	(void)ret;
	if (v != X509_V_OK)
		snprintf(buf, len, "client certificate refused: %s",
			 X509_verify_cert_error_string(v));
	else if (e)
		snprintf(buf, len, "%s", ERR_reason_error_string(e) ?: "TLS error");
	else
		snprintf(buf, len, "connection closed during the handshake");
	ERR_clear_error();
	return buf;
}

static void zca_conn_free(void *p)
{
	struct zca_conn *c = p;

	nghttp2_session_del(c->h2); /* frees nghttp2's streams, not ours: */
	while (c->streams) {
		struct zca_stream *s = c->streams;

		c->streams = s->next;
		free(s->body);
		free(s->resp);
		free(s);
	}
	ERR_clear_error();
	SSL_free(c->ssl);
	free(c->out);
	free(c);
}

static void zca_conn_close(struct zca_conn *c)
{
	if (c->ev.closed)
		return;
	if (c->handshaken && !c->out_len) {
		SSL_shutdown(c->ssl); /* best effort: non-blocking */
		ERR_clear_error();
	}
	rt_ev_close(c->loop, &c->ev, false);
	atomic_fetch_sub(&c->z->nconns, 1);
	rt_defer_free_timed(c->loop, &c->idle, zca_conn_free, c);
}

/* Queue what nghttp2 has to send and write what TLS takes. 0, or -1 when the peer is gone. */
static int zca_flush(struct zca_conn *c)
{
	const uint8_t *p;
	ssize_t n;

	while ((n = nghttp2_session_mem_send(c->h2, &p)) > 0) {
		if (c->out_len + (size_t)n > c->out_cap) {
			size_t cap = (c->out_len + (size_t)n) * 2;
			uint8_t *nb = realloc(c->out, cap);

			if (!nb)
				return -1;
			c->out = nb;
			c->out_cap = cap;
		}
		memcpy(c->out + c->out_len, p, (size_t)n);
		c->out_len += (size_t)n;
	}
	if (n < 0)
		return -1;
	while (c->out_off < c->out_len) {
		int w = SSL_write(c->ssl, c->out + c->out_off, (int)(c->out_len - c->out_off));

		if (w <= 0) {
			int e = SSL_get_error(c->ssl, w);

			ERR_clear_error();
			return e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ ? 0 : -1;
		}
		c->out_off += (size_t)w;
	}
	c->out_off = c->out_len = 0;
	return 0;
}

/* Read what TLS has for us into the session. 0 to go on, -1 when the connection is over. */
static int zca_read(struct zca_conn *c)
{
	uint8_t buf[16384];
	ssize_t rv;
	int n, e;

	for (;;) {
		n = SSL_read(c->ssl, buf, sizeof(buf));
		if (n <= 0)
			break;
		rt_timer_after(c->loop, &c->idle, ZCA_IDLE_MS);
		rv = nghttp2_session_mem_recv(c->h2, buf, (size_t)n);
		if (rv < 0) {
			obs_log(OBS_WARN, "rpc", "refused from %s: HTTP/2 protocol error: %s",
				c->caller.addr, nghttp2_strerror((int)rv));
			nghttp2_session_terminate_session(c->h2, NGHTTP2_PROTOCOL_ERROR);
			zca_flush(c);
			return -1;
		}
	}
	e = SSL_get_error(c->ssl, n);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return 0;
	/* A peer closing without close_notify (most gRPC clients) is a normal end. */
	if (e == SSL_ERROR_SSL &&
	    ERR_GET_REASON(ERR_peek_error()) != SSL_R_UNEXPECTED_EOF_WHILE_READING)
		obs_log(OBS_INFO, "rpc", "connection from %s ended: %s", c->caller.addr,
			ERR_reason_error_string(ERR_peek_error()) ?: "TLS error");
	ERR_clear_error();
	return -1;
}

/* The handshake: 1 done, 0 in progress, -1 refused (logged). */
static int zca_handshake(struct zca_conn *c)
{
	char why[256];
	X509 *peer;
	int r = SSL_accept(c->ssl), e;

	if (r == 1) {
		peer = SSL_get0_peer_certificate(c->ssl);
		if (peer)
			zca_caller_fill(&c->caller, peer);
		if (zca_h2_new(c))
			return -1;
		c->handshaken = true;
		return 1;
	}
	e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		ERR_clear_error();
		return 0;
	}
	atomic_fetch_add(&c->z->refused, 1);
	obs_log(OBS_WARN, "rpc", "refused from %s: TLS handshake failed: %s", c->caller.addr,
		zca_ssl_why(c->ssl, r, why, sizeof(why)));
	return -1;
}

static void zca_conn_event(struct rt_loop *l, struct rt_ev *ev, uint32_t events)
{
	struct zca_conn *c = (struct zca_conn *)ev;
	int r;

	(void)l;
	(void)events;
	if (!c->handshaken) {
		r = zca_handshake(c);
		if (r < 0) {
			zca_conn_close(c);
			return;
		}
		if (!r) {
			rt_ev_set(c->loop, ev, SSL_want_write(c->ssl) ? EPOLLOUT : EPOLLIN);
			return;
		}
	}
	if (zca_read(c) || zca_flush(c) ||
	    (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2) &&
	     !c->out_len)) {
		zca_conn_close(c);
		return;
	}
	rt_ev_set(c->loop, ev, c->out_len ? EPOLLIN | EPOLLOUT : EPOLLIN);
}

static void zca_conn_idle(struct rt_loop *l, struct rt_timer *t)
{
	struct zca_conn *c = zm_container_of(t, struct zca_conn, idle);

	(void)l;
	if (c->handshaken) {
		obs_log(OBS_INFO, "rpc", "connection from %s idle for %d ms, closed",
			c->caller.addr, ZCA_IDLE_MS);
	} else {
		atomic_fetch_add(&c->z->refused, 1);
		obs_log(OBS_WARN, "rpc",
			"refused from %s: TLS handshake failed: timed out after %d ms",
			c->caller.addr, ZCA_IDLE_MS);
	}
	zca_conn_close(c);
}

void zca_conn_start(struct zca *z, struct rt_loop *l, int fd)
{
	struct zca_conn *c = calloc(1, sizeof(*c));
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct zm_addr a;
	unsigned int port;

	if (!c) {
		close(fd);
		atomic_fetch_sub(&z->nconns, 1);
		return;
	}
	c->z = z;
	c->loop = l;
	rt_ev_init(&c->ev, fd, zca_conn_event);
	rt_timer_init(&c->idle, zca_conn_idle);
	snprintf(c->caller.addr, sizeof(c->caller.addr), "?");
	if (!getpeername(fd, (struct sockaddr *)&ss, &sl) &&
	    !zm_addr_from_sockaddr((struct sockaddr *)&ss, &a, &port))
		zm_addr_port_format(&a, port, c->caller.addr, sizeof(c->caller.addr));
	c->ssl = SSL_new(z->ssl_ctx);
	if (!c->ssl || !SSL_set_fd(c->ssl, fd)) {
		rt_ev_close(l, &c->ev, false);
		atomic_fetch_sub(&z->nconns, 1);
		zca_conn_free(c);
		return;
	}
	rt_timer_after(l, &c->idle, ZCA_IDLE_MS);
	zca_conn_event(l, &c->ev, EPOLLIN);
}
