// SPDX-License-Identifier: Apache-2.0
/*
 * The gRPC client (see grpc.h): a TCP connection with a deadline, TLS through
 * lib/tls/cpclient, an nghttp2 client session with one stream. The socket stays blocking with
 * send/receive timeouts; recv() polls for input with the caller's timeout and reads from the
 * socket only when no complete message is buffered, so a fast peer cannot make us buffer more
 * than one message plus one TLS record. Outgoing messages queue in one buffer that nghttp2
 * drains through a deferred data provider.
 */
#include <errno.h>
#include <fcntl.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "caclient/caclient.h"
#include "common/errf.h"
#include "grpc/grpc.h"
#include "tls/cpclient.h"

#define GRPC_DEFAULT_MAX     (4u << 20)
#define GRPC_DEFAULT_TIMEOUT 5000
/* Our receive windows: big enough for a large xDS push to stream without stalls. */
#define GRPC_STREAM_WINDOW   (4 << 20)
#define GRPC_CONN_WINDOW     (16 << 20)

struct zm_grpc_call {
	int fd;
	SSL *ssl;
	nghttp2_session *h2;
	int32_t stream;
	char server_name[256];
	uint32_t max_msg;
	int ping_ms, ping_timeout_ms;
	/* outgoing */
	uint8_t *out;
	size_t out_len, out_off;
	bool out_end, out_deferred;
	/* incoming */
	uint8_t *in;
	size_t in_len, in_cap, consumed; /* consumed: the message returned last, dropped next */
	bool closed, too_big;
	uint32_t rst;
	int http_status, grpc_status;
	char grpc_message[256];
	uint64_t last_input_ms, ping_sent_ms; /* ping_sent_ms 0: none outstanding */
};

static uint64_t grpc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static ssize_t grpc_data_read(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t len,
			      uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct zm_grpc_call *c = ud;
	size_t n = c->out_len - c->out_off;

	(void)h2;
	(void)id;
	(void)src;
	if (!n && !c->out_end) {
		c->out_deferred = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	if (n > len)
		n = len;
	memcpy(buf, c->out + c->out_off, n);
	c->out_off += n;
	if (c->out_off == c->out_len) {
		c->out_off = c->out_len = 0;
		if (c->out_end)
			*flags |= NGHTTP2_DATA_FLAG_EOF;
	}
	return (ssize_t)n;
}

static int grpc_on_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name,
			  size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
	struct zm_grpc_call *c = ud;
	char v[32];

	(void)h2;
	(void)flags;
	if (f->hd.stream_id != c->stream)
		return 0;
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

/* The size of the message at the front of the input, once its header is in; 0 before. */
static bool grpc_front_len(const struct zm_grpc_call *c, uint32_t *mlen)
{
	return c->in_len >= ZM_GRPC_HDR && zm_grpc_hdr_get(c->in, mlen) >= 0;
}

static int grpc_on_data(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data,
			size_t len, void *ud)
{
	struct zm_grpc_call *c = ud;
	uint32_t mlen;

	(void)h2;
	(void)flags;
	if (id != c->stream || c->too_big)
		return 0;
	if (c->in_len + len > c->in_cap) {
		size_t cap = c->in_cap ? c->in_cap : 16384;
		uint8_t *nb;

		while (cap < c->in_len + len)
			cap *= 2;
		nb = realloc(c->in, cap);
		if (!nb)
			return NGHTTP2_ERR_CALLBACK_FAILURE;
		c->in = nb;
		c->in_cap = cap;
	}
	memcpy(c->in + c->in_len, data, len);
	c->in_len += len;
	/* Refuse an oversized message at its header, before buffering it. */
	if (grpc_front_len(c, &mlen) && mlen > c->max_msg)
		c->too_big = true;
	return 0;
}

static int grpc_on_frame(nghttp2_session *h2, const nghttp2_frame *f, void *ud)
{
	struct zm_grpc_call *c = ud;

	(void)h2;
	if (f->hd.type == NGHTTP2_PING && (f->hd.flags & NGHTTP2_FLAG_ACK))
		c->ping_sent_ms = 0;
	return 0;
}

static int grpc_on_close(nghttp2_session *h2, int32_t id, uint32_t error, void *ud)
{
	struct zm_grpc_call *c = ud;

	(void)h2;
	if (id == c->stream) {
		c->closed = true;
		c->rst = error;
	}
	return 0;
}

static int grpc_flush(struct zm_grpc_call *c)
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

static int grpc_connect(const char *addr, int timeout_ms, char *err, size_t len)
{
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	struct sockaddr_storage ss;
	struct pollfd pfd;
	socklen_t sl = sizeof(ss);
	int fd, so = 0, r;

	if (zm_caclient_addr_parse(addr, &ss, &sl))
		return zm_errf(err, len, -EINVAL, "address %s: want HOST:PORT", addr);
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
	return zm_errf(err, len, r, "connecting to %s: %s", addr, strerror(-r));
}

static int grpc_h2_start(struct zm_grpc_call *c, const struct zm_grpc_opts *o, const char *path)
{
	nghttp2_settings_entry set[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
					{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, GRPC_STREAM_WINDOW}};
	nghttp2_data_provider prd = {.read_callback = grpc_data_read};
	nghttp2_session_callbacks *cb;
	nghttp2_nv hd[24];
	char bearer[4096];
	size_t n = 0;
	int r;

#define GNV(nm, v) (nghttp2_nv){(uint8_t *)(nm), (uint8_t *)(v), strlen(nm), strlen(v), 0}
	hd[n++] = GNV(":method", "POST");
	hd[n++] = GNV(":scheme", "https");
	hd[n++] = GNV(":path", path);
	hd[n++] = GNV(":authority", o->addr);
	hd[n++] = GNV("content-type", "application/grpc");
	hd[n++] = GNV("te", "trailers");
	if (o->token && *o->token) {
		if (snprintf(bearer, sizeof(bearer), "Bearer %s", o->token) >= (int)sizeof(bearer))
			return -E2BIG;
		hd[n++] = GNV("authorization", bearer);
	}
	for (size_t i = 0; o->headers && o->headers[i] && o->headers[i + 1] && n < 24; i += 2)
		hd[n++] = GNV(o->headers[i], o->headers[i + 1]);
#undef GNV
	if (nghttp2_session_callbacks_new(&cb))
		return -ENOMEM;
	nghttp2_session_callbacks_set_on_header_callback(cb, grpc_on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, grpc_on_data);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, grpc_on_frame);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, grpc_on_close);
	r = nghttp2_session_client_new(&c->h2, cb, c);
	nghttp2_session_callbacks_del(cb);
	if (r)
		return -ENOMEM;
	if (nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, set, 2) ||
	    nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, GRPC_CONN_WINDOW))
		return -ENOMEM;
	c->stream = nghttp2_submit_request(c->h2, NULL, hd, n, &prd, c);
	return c->stream < 0 ? -ENOMEM : 0;
}

int zm_grpc_call_open(const struct zm_grpc_opts *o, const char *path, struct zm_grpc_call **out,
		      char *err, size_t len)
{
	int timeout = o->timeout_ms > 0 ? o->timeout_ms : GRPC_DEFAULT_TIMEOUT;
	struct zm_grpc_call *c = calloc(1, sizeof(*c));
	int r;

	*out = NULL;
	if (!c)
		return zm_errf(err, len, -ENOMEM, "out of memory");
	c->http_status = c->grpc_status = -1;
	c->max_msg = o->max_msg ? o->max_msg : GRPC_DEFAULT_MAX;
	c->ping_ms = o->ping_ms;
	c->ping_timeout_ms = o->ping_timeout_ms > 0 ? o->ping_timeout_ms : 20000;
	snprintf(c->server_name, sizeof(c->server_name), "%s",
		 o->server_name ? o->server_name : "");
	c->fd = grpc_connect(o->addr, timeout, err, len);
	if (c->fd < 0) {
		r = c->fd;
		free(c);
		return r;
	}
	r = zm_tls_cp_ssl_new(o->roots, c->fd, o->cert, c->server_name, &c->ssl, err, len);
	if (r)
		goto fail;
	ERR_clear_error();
	if (SSL_connect(c->ssl) != 1) {
		long vr = SSL_get_verify_result(c->ssl);

		r = vr != X509_V_OK ? -EPROTO : -ECONNRESET;
		if (vr != X509_V_OK)
			zm_errf(err, len, r, "TLS with %s: server %s not verified: %s", o->addr,
				c->server_name, X509_verify_cert_error_string(vr));
		else
			zm_errf(err, len, r, "TLS handshake with %s failed: %s", o->addr,
				ERR_reason_error_string(ERR_peek_last_error())
				    ?: (errno == EAGAIN ? "timed out" : "connection closed"));
		if (errno == EAGAIN && vr == X509_V_OK)
			r = -ETIMEDOUT;
		goto fail;
	}
	r = grpc_h2_start(c, o, path);
	if (!r)
		r = grpc_flush(c);
	if (r) {
		zm_errf(err, len, r, "starting the gRPC call %s on %s failed", path, o->addr);
		goto fail;
	}
	c->last_input_ms = grpc_now_ms();
	*out = c;
	return 0;
fail:
	ERR_clear_error();
	zm_grpc_call_close(c);
	return r;
}

int zm_grpc_call_send(struct zm_grpc_call *c, const uint8_t *msg, size_t len, bool end, char *err,
		      size_t errlen)
{
	uint8_t *nb;

	if (c->closed || c->out_end)
		return zm_errf(err, errlen, -EPIPE, "the call is over");
	if (len > UINT32_MAX - ZM_GRPC_HDR)
		return zm_errf(err, errlen, -EMSGSIZE, "message too large");
	nb = realloc(c->out, c->out_len + ZM_GRPC_HDR + len);
	if (!nb)
		return zm_errf(err, errlen, -ENOMEM, "out of memory");
	c->out = nb;
	zm_grpc_hdr_put(c->out + c->out_len, (uint32_t)len);
	if (len)
		memcpy(c->out + c->out_len + ZM_GRPC_HDR, msg, len);
	c->out_len += ZM_GRPC_HDR + len;
	c->out_end = end;
	if (c->out_deferred) {
		c->out_deferred = false;
		nghttp2_session_resume_data(c->h2, c->stream);
	}
	if (grpc_flush(c))
		return zm_errf(err, errlen, -ECONNRESET, "sending to the server failed");
	return 0;
}

/* Drop the message handed out last time. */
static void grpc_consume(struct zm_grpc_call *c)
{
	if (!c->consumed)
		return;
	memmove(c->in, c->in + c->consumed, c->in_len - c->consumed);
	c->in_len -= c->consumed;
	c->consumed = 0;
}

/* A complete message at the front? 1 with it, 0 not yet, -errno on bad framing. */
static int grpc_take(struct zm_grpc_call *c, const uint8_t **msg, size_t *len, char *err,
		     size_t errlen)
{
	uint32_t mlen;

	if (c->too_big && grpc_front_len(c, &mlen))
		return zm_errf(err, errlen, -EMSGSIZE,
			       "a message of %u bytes is over the limit of %u bytes", mlen,
			       c->max_msg);
	if (c->in_len >= ZM_GRPC_HDR && zm_grpc_hdr_get(c->in, &mlen) != 0)
		return zm_errf(err, errlen, -EPROTO, "compressed or malformed gRPC message");
	if (c->in_len < ZM_GRPC_HDR || c->in_len - ZM_GRPC_HDR < mlen)
		return 0;
	*msg = c->in + ZM_GRPC_HDR;
	*len = mlen;
	c->consumed = ZM_GRPC_HDR + mlen;
	return 1;
}

/* Keepalive: a PING after ping_ms of silence; -ETIMEDOUT when one stays unanswered. */
static int grpc_keepalive(struct zm_grpc_call *c, uint64_t now, char *err, size_t errlen)
{
	if (!c->ping_ms)
		return 0;
	if (c->ping_sent_ms && now - c->ping_sent_ms >= (uint64_t)c->ping_timeout_ms)
		return zm_errf(err, errlen, -ETIMEDOUT,
			       "the server stalled: no answer to a PING in %d ms",
			       c->ping_timeout_ms);
	if (!c->ping_sent_ms && now - c->last_input_ms >= (uint64_t)c->ping_ms) {
		if (nghttp2_submit_ping(c->h2, NGHTTP2_FLAG_NONE, NULL) || grpc_flush(c))
			return zm_errf(err, errlen, -ECONNRESET, "sending a PING failed");
		c->ping_sent_ms = now;
	}
	return 0;
}

static int grpc_read_some(struct zm_grpc_call *c, char *err, size_t errlen)
{
	uint8_t buf[16384];
	int n = SSL_read(c->ssl, buf, sizeof(buf));

	if (n <= 0) {
		int e = SSL_get_error(c->ssl, n);

		ERR_clear_error();
		if (e == SSL_ERROR_WANT_READ || (e == SSL_ERROR_SYSCALL && errno == EAGAIN))
			return 0;
		return zm_errf(err, errlen, -ECONNRESET, "the server closed the connection");
	}
	c->last_input_ms = grpc_now_ms();
	c->ping_sent_ms = 0; /* any input proves the peer alive */
	if (nghttp2_session_mem_recv(c->h2, buf, (size_t)n) < 0)
		return zm_errf(err, errlen, -EPROTO, "the server sent malformed HTTP/2");
	return grpc_flush(c) ? zm_errf(err, errlen, -ECONNRESET, "sending to the server failed")
			     : 0;
}

int zm_grpc_call_recv(struct zm_grpc_call *c, int timeout_ms, const uint8_t **msg, size_t *len,
		      char *err, size_t errlen)
{
	uint64_t deadline = grpc_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
	int r;

	grpc_consume(c);
	for (;;) {
		uint64_t now = grpc_now_ms();
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
		int wait;

		r = grpc_take(c, msg, len, err, errlen);
		if (r)
			return r;
		if (c->http_status > 0 && c->http_status != 200)
			return zm_errf(err, errlen, -EPROTO, "the server answered HTTP %d",
				       c->http_status);
		if (c->closed)
			return c->in_len ? zm_errf(err, errlen, -EPROTO,
						   "the call ended inside a message")
					 : 0;
		r = grpc_keepalive(c, now, err, errlen);
		if (r)
			return r;
		if (now >= deadline && !SSL_pending(c->ssl))
			return -EAGAIN;
		wait = (int)(deadline - now);
		if (c->ping_ms && wait > c->ping_ms)
			wait = c->ping_ms;
		if (!SSL_pending(c->ssl) && poll(&pfd, 1, wait) <= 0)
			continue;
		r = grpc_read_some(c, err, errlen);
		if (r)
			return r;
	}
}

int zm_grpc_call_status(const struct zm_grpc_call *c, const char **message)
{
	if (message)
		*message = c->grpc_message;
	return c->grpc_status;
}

void zm_grpc_call_close(struct zm_grpc_call *c)
{
	if (!c)
		return;
	nghttp2_session_del(c->h2);
	if (c->ssl)
		SSL_free(c->ssl);
	if (c->fd >= 0)
		close(c->fd);
	free(c->out);
	free(c->in);
	free(c);
	ERR_clear_error();
}

int zm_grpc_unary(const struct zm_grpc_opts *o, const char *path, const uint8_t *req, size_t len,
		  uint8_t **resp, size_t *resp_len, int *status, char *err, size_t errlen)
{
	int timeout = o->timeout_ms > 0 ? o->timeout_ms : GRPC_DEFAULT_TIMEOUT;
	struct zm_grpc_call *c;
	const uint8_t *m;
	const char *gm;
	size_t ml = 0;
	int r, got;

	*resp = NULL;
	*resp_len = 0;
	*status = -1;
	r = zm_grpc_call_open(o, path, &c, err, errlen);
	if (r)
		return r;
	r = zm_grpc_call_send(c, req, len, true, err, errlen);
	if (r)
		goto out;
	got = r = zm_grpc_call_recv(c, timeout, &m, &ml, err, errlen);
	if (r == 1) {
		*resp = malloc(ml ? ml : 1);
		if (!*resp) {
			r = zm_errf(err, errlen, -ENOMEM, "out of memory");
			goto out;
		}
		memcpy(*resp, m, ml);
		*resp_len = ml;
		r = zm_grpc_call_recv(c, timeout, &m, &ml, err, errlen);
	}
	if (r == -EAGAIN)
		r = zm_errf(err, errlen, -ETIMEDOUT, "%s did not answer in time", o->addr);
	if (r < 0)
		goto out;
	*status = zm_grpc_call_status(c, &gm);
	if (*status < 0)
		r = zm_errf(err, errlen, -EPROTO, "answer without grpc-status (stream %s)",
			    c->rst ? "reset" : "ended");
	else if (*status)
		r = zm_errf(err, errlen, -EREMOTEIO, "%s: %s", zm_grpc_status_name(*status), gm);
	else if (got != 1 || r == 1)
		r = zm_errf(err, errlen, -EPROTO, "a unary answer must hold one message");
	else
		r = 0;
out:
	if (r) {
		free(*resp);
		*resp = NULL;
	}
	zm_grpc_call_close(c);
	return r;
}
