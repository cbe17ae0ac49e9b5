// SPDX-License-Identifier: Apache-2.0
/*
 * HBONE connections: the TLS handshake and non-blocking TLS I/O on the caller's fd, the
 * nghttp2 session (SETTINGS of DESIGN.md section 3, manual WINDOW_UPDATEs so a paused
 * consumer stops the peer), the nghttp2 callbacks that turn frames into hb_callbacks, the
 * server's own 400 answers (non-CONNECT, bad authority), keepalive PINGs and the handshake
 * timeout. Streams' buffers and calls live in stream.c.
 */
#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "internal.h"
#include "tls/tls.h"

#define HB_OUT_BATCH (64u << 10) /* frames gathered before SSL_write: full 16 KiB records */
#define HB_READ_CHUNK (16u << 10)

static struct hb_stream *hb_h2_stream(struct hb_conn *conn, int32_t id)
{
	return nghttp2_session_get_stream_user_data(conn->h2, id);
}

/* ---- closing ---- */

static int hb_conn_finish(struct hb_conn *conn, int err, const char *reason)
{
	struct hb_stream *s;

	if (conn->state == HB_CONN_CLOSED)
		return conn->pending_err ?: -ESHUTDOWN;
	conn->state = HB_CONN_CLOSED;
	conn->pending_err = err ?: -ESHUTDOWN;
	if (reason != conn->pending_reason)
		snprintf(conn->pending_reason, sizeof(conn->pending_reason), "%s", reason);
	if (!err) {
		ERR_clear_error();
		SSL_shutdown(conn->ssl); /* best effort close_notify; never waits */
		ERR_clear_error();
	}
	while ((s = conn->streams))
		hb_stream_finish(s, HB_ERR_CANCEL);
	if (conn->cbs.on_conn_close)
		conn->cbs.on_conn_close(conn, err, conn->pending_reason);
	return conn->pending_err;
}

static int hb_conn_fail(struct hb_conn *conn, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int hb_conn_fail(struct hb_conn *conn, int err, const char *fmt, ...)
{
	va_list ap;

	if (conn->state == HB_CONN_CLOSED)
		return conn->pending_err;
	va_start(ap, fmt);
	vsnprintf(conn->pending_reason, sizeof(conn->pending_reason), fmt, ap);
	va_end(ap);
	return hb_conn_finish(conn, err, conn->pending_reason);
}

/* Record a failure seen where callbacks must not run; hb_conn_io() reports it. */
void hb_conn_fail_later(struct hb_conn *conn, int err, const char *fmt, ...)
{
	va_list ap;

	if (conn->pending_err)
		return;
	conn->pending_err = err;
	va_start(ap, fmt);
	vsnprintf(conn->pending_reason, sizeof(conn->pending_reason), fmt, ap);
	va_end(ap);
}

/* ---- TLS I/O ---- */

static int hb_ssl_err(struct hb_conn *conn, int ret, const char *op)
{
	char why[160];
	int e = SSL_get_error(conn->ssl, ret);

	switch (e) {
	case SSL_ERROR_WANT_READ:
		conn->ssl_want |= EPOLLIN;
		return -EAGAIN;
	case SSL_ERROR_WANT_WRITE:
		conn->ssl_want |= EPOLLOUT;
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return -EPIPE;
	case SSL_ERROR_SYSCALL:
		if (!ERR_peek_error() && (errno == 0 || errno == ECONNRESET || errno == EPIPE))
			return errno == ECONNRESET ? -ECONNRESET : -EPIPE;
		break;
	default:
		break;
	}
	e = zm_tls_error(conn->ssl, ret, why, sizeof(why));
	hb_conn_fail_later(conn, e ?: -EIO, "%s: %s", op, why);
	return conn->pending_err;
}

/* Serialize queued frames and hand them to TLS until it would block. */
static int hb_conn_write(struct hb_conn *conn)
{
	const uint8_t *p;
	ssize_t n;
	int w;

	conn->ssl_want &= ~EPOLLOUT;
	for (;;) {
		while (conn->out.len < HB_OUT_BATCH) {
			conn->in_h2++;
			n = nghttp2_session_mem_send(conn->h2, &p);
			conn->in_h2--;
			if (n < 0) {
				hb_conn_fail_later(conn, -EPROTO, "HTTP/2 send: %s",
						   nghttp2_strerror((int)n));
				return conn->pending_err;
			}
			if (n == 0)
				break;
			if (hb_buf_append(&conn->out, p, (size_t)n)) {
				hb_conn_fail_later(conn, -ENOMEM, "out of memory queueing frames");
				return conn->pending_err;
			}
		}
		if (!conn->out.len)
			return 0;
		ERR_clear_error();
		w = SSL_write(conn->ssl, conn->out.data + conn->out.off,
			      conn->out.len > INT_MAX ? INT_MAX : (int)conn->out.len);
		if (w <= 0) {
			int err = hb_ssl_err(conn, w, "TLS write");

			if (err == -EAGAIN)
				return 0;
			if (!conn->pending_err)
				hb_conn_fail_later(conn, err, "TLS write: connection %s",
						   err == -ECONNRESET ? "reset by peer" : "closed");
			return conn->pending_err;
		}
		hb_buf_drop(&conn->out, (size_t)w);
	}
}

void hb_conn_soft_flush(struct hb_conn *conn)
{
	if (conn->in_h2 || conn->state != HB_CONN_H2 || conn->pending_err)
		return;
	hb_conn_write(conn);
}

/* Read and feed nghttp2 until TLS would block. Returns 0, or -errno (pending_err set). */
static int hb_conn_read(struct hb_conn *conn)
{
	uint8_t buf[HB_READ_CHUNK];
	ssize_t rv;
	int n, err;

	conn->ssl_want &= ~EPOLLIN;
	while (conn->state == HB_CONN_H2 && !conn->pending_err) {
		ERR_clear_error();
		n = SSL_read(conn->ssl, buf, sizeof(buf));
		if (n <= 0) {
			err = hb_ssl_err(conn, n, "TLS read");
			if (err == -EAGAIN)
				return 0;
			if (conn->pending_err)
				return conn->pending_err;
			if (err == -EPIPE && !conn->nstreams)
				return -EPIPE; /* clean end: peer closed an idle connection */
			hb_conn_fail_later(conn, -ECONNRESET,
					   "peer %s the connection with %u streams open",
					   err == -EPIPE ? "closed" : "reset", conn->nstreams);
			return conn->pending_err;
		}
		conn->in_h2++;
		rv = nghttp2_session_mem_recv(conn->h2, buf, (size_t)n);
		conn->in_h2--;
		if (rv < 0) {
			hb_conn_fail_later(conn, -EPROTO, "HTTP/2 from peer: %s",
					   nghttp2_strerror((int)rv));
			hb_conn_write(conn); /* let a GOAWAY out if nghttp2 queued one */
			return conn->pending_err;
		}
	}
	return conn->pending_err;
}

static int hb_conn_handshake(struct hb_conn *conn)
{
	char why[160];
	int want = 0, err;

	ERR_clear_error();
	err = zm_tls_handshake(conn->ssl, &want, why, sizeof(why));
	if (err == -EAGAIN) {
		conn->ssl_want = (want & POLLOUT) ? EPOLLOUT : EPOLLIN;
		return -EAGAIN;
	}
	if (err)
		return hb_conn_fail(conn, err, "TLS handshake failed: %s", why);
	if (zm_tls_peer_identity(conn->ssl, conn->peer_id, sizeof(conn->peer_id)))
		conn->peer_id[0] = '\0';
	conn->state = HB_CONN_H2;
	conn->ssl_want = 0;
	return 0;
}

/* ---- nghttp2 callbacks ---- */

static int hb_on_begin_headers(nghttp2_session *h2, const nghttp2_frame *frame, void *ud)
{
	struct hb_conn *conn = ud;
	struct hb_stream *s;

	(void)h2;
	if (conn->state == HB_CONN_CLOSED || conn->role != HB_ROLE_SERVER ||
	    frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	s = hb_stream_alloc(conn, frame->hd.stream_id);
	if (!s)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	s->req = calloc(1, sizeof(*s->req));
	if (!s->req) {
		hb_stream_free(s);
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	nghttp2_session_set_stream_user_data(conn->h2, s->id, s);
	return 0;
}

static int hb_hdr_keep(char **slot, const uint8_t *v, size_t len)
{
	if (*slot)
		return 0; /* the first one wins; repeats are ignored */
	*slot = strndup((const char *)v, len);
	return *slot ? 0 : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
}

static int hb_on_header(nghttp2_session *h2, const nghttp2_frame *frame, const uint8_t *name,
			size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
	struct hb_conn *conn = ud;
	struct hb_stream *s;

	(void)h2;
	(void)flags;
	if (conn->state == HB_CONN_CLOSED || frame->hd.type != NGHTTP2_HEADERS)
		return 0;
	s = hb_h2_stream(conn, frame->hd.stream_id);
	if (!s)
		return 0;
#define HB_IS(lit) (nlen == sizeof(lit) - 1 && !memcmp(name, lit, nlen))
	if (frame->headers.cat == NGHTTP2_HCAT_REQUEST && s->req) {
		if (HB_IS(":method"))
			return hb_hdr_keep(&s->req->method, value, vlen);
		if (HB_IS(":authority"))
			return hb_hdr_keep(&s->req->authority, value, vlen);
		if (HB_IS("forwarded"))
			return hb_hdr_keep(&s->req->forwarded, value, vlen);
		if (HB_IS("baggage"))
			return hb_hdr_keep(&s->req->baggage, value, vlen);
		if (HB_IS("traceparent"))
			return hb_hdr_keep(&s->req->traceparent, value, vlen);
	} else if (frame->headers.cat == NGHTTP2_HCAT_RESPONSE && HB_IS(":status")) {
		int st = 0;
		size_t i;

		for (i = 0; i < vlen && i < 3; i++)
			st = st * 10 + (value[i] - '0');
		s->status = st;
	}
#undef HB_IS
	return 0;
}

/* Server: a request's headers are complete. Refuse what is not a CONNECT to an IP:port. */
static void hb_server_request(struct hb_conn *conn, struct hb_stream *s, bool end_stream)
{
	struct hb_req_hdrs *h = s->req;
	struct hb_request r = { 0 };
	int err;

	s->req = NULL;
	if (end_stream)
		s->rx_eof = true;
	if (!h->method || strcmp(h->method, "CONNECT") ||
	    hb_authority_parse(h->authority, &r.dst, &r.dst_port)) {
		/* Not announced: the user never sees it, on_stream_close is not called. */
		err = hb_stream_respond(s, HB_STATUS_BAD_REQUEST);
		if (err)
			nghttp2_submit_rst_stream(conn->h2, NGHTTP2_FLAG_NONE, s->id,
						  HB_ERR_INTERNAL);
		goto out;
	}
	r.method = h->method;
	r.authority = h->authority;
	r.forwarded = h->forwarded ?: "";
	r.baggage = h->baggage ?: "";
	r.traceparent = h->traceparent ?: "";
	r.peer_identity = conn->peer_id;
	s->announced = true;
	if (conn->cbs.on_request)
		conn->cbs.on_request(s, &r);
	else
		hb_stream_respond(s, HB_STATUS_UNAVAILABLE);
out:
	free(h->method);
	free(h->authority);
	free(h->forwarded);
	free(h->baggage);
	free(h->traceparent);
	free(h);
}

static void hb_conn_set_ready(struct hb_conn *conn)
{
	if (conn->ready || conn->state != HB_CONN_H2 || !conn->settings_rx)
		return;
	conn->ready = true;
	conn->ping_ref_ms = conn->now_ms;
	if (conn->cbs.on_ready)
		conn->cbs.on_ready(conn);
}

static void hb_on_headers_recv(struct hb_conn *conn, const nghttp2_frame *frame,
			       struct hb_stream *s)
{
	bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;

	if (conn->role == HB_ROLE_SERVER && frame->headers.cat == NGHTTP2_HCAT_REQUEST &&
	    s->req) {
		hb_server_request(conn, s, end);
		return;
	}
	if (conn->role == HB_ROLE_CLIENT && frame->headers.cat == NGHTTP2_HCAT_RESPONSE) {
		if (s->status >= 100 && s->status < 200) {
			s->status = 0; /* informational: the final answer follows */
			return;
		}
		if (conn->cbs.on_response && !s->reset)
			conn->cbs.on_response(s, s->status);
		if (s->status != 200 && !s->reset && !s->tx_done) {
			/* No tunnel: drop what was queued and end our side so the stream closes
			 * even when the server does not follow its answer with RST_STREAM. */
			hb_buf_free(&s->tx);
			s->tx_eof = true;
			if (s->deferred) {
				s->deferred = false;
				nghttp2_session_resume_data(conn->h2, s->id);
			}
		}
	}
	if (end && !s->reset) {
		s->rx_eof = true;
		hb_stream_deliver(s);
	}
}

static int hb_on_frame_recv(nghttp2_session *h2, const nghttp2_frame *frame, void *ud)
{
	struct hb_conn *conn = ud;
	struct hb_stream *s;

	(void)h2;
	if (conn->state == HB_CONN_CLOSED)
		return 0;
	switch (frame->hd.type) {
	case NGHTTP2_SETTINGS:
		if (!(frame->hd.flags & NGHTTP2_FLAG_ACK)) {
			conn->settings_rx = true;
			hb_conn_set_ready(conn);
		}
		return 0;
	case NGHTTP2_PING:
		if (frame->hd.flags & NGHTTP2_FLAG_ACK) {
			conn->ping_out = false;
			conn->ping_ref_ms = conn->now_ms;
		}
		return 0;
	case NGHTTP2_GOAWAY:
		conn->goaway = true;
		return 0;
	case NGHTTP2_HEADERS:
		s = hb_h2_stream(conn, frame->hd.stream_id);
		if (s)
			hb_on_headers_recv(conn, frame, s);
		return 0;
	case NGHTTP2_DATA:
		s = hb_h2_stream(conn, frame->hd.stream_id);
		if (s && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) && !s->reset) {
			s->rx_eof = true;
			if (conn->role == HB_ROLE_CLIENT || s->status == 200)
				hb_stream_deliver(s);
		}
		return 0;
	default:
		return 0;
	}
}

/*
 * Tunnel bytes. Delivered straight from nghttp2's buffer when the consumer is not paused;
 * otherwise (or for what it does not take) held uncredited, so the peer runs into our
 * window instead of our memory.
 */
static int hb_on_data_chunk(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data,
			    size_t len, void *ud)
{
	struct hb_conn *conn = ud;
	struct hb_stream *s;
	size_t taken;

	(void)flags;
	if (conn->state == HB_CONN_CLOSED)
		return 0;
	conn->bytes_recv += len;
	s = hb_h2_stream(conn, id);
	if (!s || s->reset || !s->announced ||
	    (conn->role == HB_ROLE_SERVER && s->status && s->status != 200)) {
		nghttp2_session_consume(h2, id, len);
		return 0;
	}
	/* Server before its 200: hold (the upstream is not connected yet). */
	if (s->paused || s->rx.len || (conn->role == HB_ROLE_SERVER && !s->status))
		goto hold;
	taken = conn->cbs.on_data ? conn->cbs.on_data(s, data, len) : len;
	if (s->reset) {
		nghttp2_session_consume(h2, id, len);
		return 0;
	}
	if (taken > len)
		taken = len;
	if (taken)
		nghttp2_session_consume(h2, id, taken);
	if (taken == len)
		return 0;
	s->paused = true;
	data += taken;
	len -= taken;
hold:
	if (hb_buf_append(&s->rx, data, len)) {
		nghttp2_session_consume(h2, id, len);
		hb_stream_reset(s, HB_ERR_INTERNAL);
	}
	return 0;
}

static int hb_on_stream_close(nghttp2_session *h2, int32_t id, uint32_t code, void *ud)
{
	struct hb_conn *conn = ud;
	struct hb_stream *s;

	if (conn->state == HB_CONN_CLOSED)
		return 0;
	s = nghttp2_session_get_stream_user_data(h2, id);
	if (!s)
		return 0;
	if (code == NGHTTP2_NO_ERROR && !s->reset && s->announced &&
	    (s->rx.len || (s->rx_eof && !s->eof_told))) {
		/* Held bytes still to deliver: linger until the consumer resumes. */
		nghttp2_session_set_stream_user_data(h2, id, NULL);
		s->h2_closed = true;
		s->close_code = code;
		return 0;
	}
	hb_stream_finish(s, code);
	return 0;
}

static int hb_on_frame_send(nghttp2_session *h2, const nghttp2_frame *frame, void *ud)
{
	struct hb_conn *conn = ud;
	struct hb_stream *s;

	if (conn->state == HB_CONN_CLOSED || frame->hd.type != NGHTTP2_HEADERS)
		return 0;
	s = nghttp2_session_get_stream_user_data(h2, frame->hd.stream_id);
	if (!s)
		return 0;
	s->hdrs_sent = true;
	if (s->rst_deferred) {
		s->rst_deferred = false;
		nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, s->id, s->close_code);
		return 0;
	}
	if (conn->role != HB_ROLE_SERVER || !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	/* An error answer went out: ask a client that is still sending to stop (RFC 9113 8.1). */
	if (s->status != 200 && !s->rx_eof && !s->reset) {
		s->reset = true;
		s->close_code = HB_ERR_NO_ERROR;
		nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR);
	}
	return 0;
}

/* ---- the connection ---- */

static nghttp2_session *hb_h2_new(struct hb_conn *conn)
{
	nghttp2_session_callbacks *cb = NULL;
	nghttp2_option *opt = NULL;
	nghttp2_session *h2 = NULL;
	int rv;

	if (nghttp2_session_callbacks_new(&cb))
		goto out;
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, hb_on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, hb_on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, hb_on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, hb_on_data_chunk);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, hb_on_stream_close);
	nghttp2_session_callbacks_set_on_frame_send_callback(cb, hb_on_frame_send);
	if (nghttp2_option_new(&opt))
		goto out;
	/* WINDOW_UPDATEs follow what the consumer took, never what merely arrived. */
	nghttp2_option_set_no_auto_window_update(opt, 1);
	nghttp2_option_set_peer_max_concurrent_streams(opt, HB_MAX_STREAMS);
	if (conn->role == HB_ROLE_CLIENT)
		rv = nghttp2_session_client_new2(&h2, cb, conn, opt);
	else
		rv = nghttp2_session_server_new2(&h2, cb, conn, opt);
	if (rv)
		h2 = NULL;
out:
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cb);
	return h2;
}

static int hb_h2_settings(struct hb_conn *conn)
{
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, HB_MAX_STREAMS },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, HB_STREAM_WINDOW },
		{ NGHTTP2_SETTINGS_MAX_FRAME_SIZE, HB_MAX_FRAME },
		{ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 }, /* meaningful from a client only */
	};
	size_t n = conn->role == HB_ROLE_CLIENT ? 4 : 3;

	if (nghttp2_submit_settings(conn->h2, NGHTTP2_FLAG_NONE, iv, n))
		return -EIO;
	/* The connection window is 4x the stream window: equal windows can deadlock. */
	if (nghttp2_session_set_local_window_size(conn->h2, NGHTTP2_FLAG_NONE, 0, HB_CONN_WINDOW))
		return -EIO;
	return 0;
}

struct hb_conn *hb_conn_new(enum hb_role role, int fd, SSL *ssl, const struct hb_callbacks *cbs,
			    void *ud, uint64_t now_ms)
{
	struct hb_conn *conn;

	if (!ssl || fd < 0 || !cbs || (role != HB_ROLE_CLIENT && role != HB_ROLE_SERVER)) {
		errno = EINVAL;
		return NULL;
	}
	conn = calloc(1, sizeof(*conn));
	if (!conn) {
		errno = ENOMEM;
		return NULL;
	}
	conn->role = role;
	conn->fd = fd;
	conn->cbs = *cbs;
	conn->ud = ud;
	conn->start_ms = conn->now_ms = now_ms;
	conn->h2 = hb_h2_new(conn);
	if (!conn->h2 || hb_h2_settings(conn))
		goto err_h2;
	/* Partial writes let hb_conn_write() queue large batches and resume where TLS stopped. */
	SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	conn->ssl = ssl;
	conn->ssl_want = role == HB_ROLE_CLIENT ? EPOLLOUT : EPOLLIN;
	return conn;

err_h2:
	if (conn->h2)
		nghttp2_session_del(conn->h2);
	free(conn);
	errno = ENOMEM;
	return NULL;
}

void hb_conn_free(struct hb_conn *conn)
{
	struct hb_stream *s;

	if (!conn)
		return;
	if (conn->state != HB_CONN_CLOSED) {
		conn->state = HB_CONN_CLOSED;
		while ((s = conn->streams))
			hb_stream_finish(s, HB_ERR_CANCEL);
	}
	nghttp2_session_del(conn->h2);
	SSL_free(conn->ssl);
	hb_buf_free(&conn->out);
	free(conn);
}

/* Deliver what could not run inside nghttp2: on_writable, resets of lingering streams. */
static void hb_conn_notify(struct hb_conn *conn)
{
	struct hb_stream *s;

	while (conn->notify && conn->state != HB_CONN_CLOSED) {
		conn->notify = false;
		/* Restart from the head after each callback: it may free or add streams. */
		for (s = conn->streams; s; s = s->next) {
			if (s->finish_pending) {
				hb_stream_finish(s, s->close_code);
				conn->notify = true;
				break;
			}
			if (s->tell_writable) {
				s->tell_writable = false;
				conn->notify = true;
				if (conn->cbs.on_writable && !s->reset)
					conn->cbs.on_writable(s);
				break;
			}
		}
		if (!s)
			conn->notify = false;
	}
}

static int hb_conn_step(struct hb_conn *conn)
{
	int err, rounds;

	err = hb_conn_read(conn);
	if (err == -EPIPE)
		return hb_conn_fail(conn, 0, "peer closed the connection");
	for (rounds = 0; !conn->pending_err && rounds < 8; rounds++) {
		hb_conn_notify(conn);
		if (conn->state == HB_CONN_CLOSED)
			break;
		hb_conn_write(conn);
		if (!conn->notify)
			break;
	}
	if (conn->pending_err && conn->state != HB_CONN_CLOSED)
		return hb_conn_finish(conn, conn->pending_err, conn->pending_reason);
	if (conn->state == HB_CONN_CLOSED)
		return conn->pending_err;
	if (!nghttp2_session_want_read(conn->h2) && !nghttp2_session_want_write(conn->h2) &&
	    !conn->out.len)
		return hb_conn_fail(conn, 0, "connection closed after GOAWAY");
	return 0;
}

int hb_conn_io(struct hb_conn *conn, uint32_t revents)
{
	int err;

	(void)revents; /* errors and hangups surface from SSL_read/SSL_write */
	if (conn->state == HB_CONN_CLOSED)
		return conn->pending_err;
	if (conn->pending_err)
		return hb_conn_finish(conn, conn->pending_err, conn->pending_reason);
	if (conn->state == HB_CONN_HANDSHAKE) {
		err = hb_conn_handshake(conn);
		if (err == -EAGAIN)
			return 0;
		if (err)
			return err;
	}
	return hb_conn_step(conn);
}

uint32_t hb_conn_want(const struct hb_conn *conn)
{
	uint32_t w;

	if (conn->state == HB_CONN_CLOSED)
		return 0;
	if (conn->pending_err || conn->notify)
		return EPOLLIN | EPOLLOUT; /* EPOLLOUT fires at once: report it on the next io */
	if (conn->state == HB_CONN_HANDSHAKE)
		return (uint32_t)conn->ssl_want;
	w = EPOLLIN | ((uint32_t)conn->ssl_want & EPOLLOUT);
	if (conn->out.len || nghttp2_session_want_write(conn->h2))
		w |= EPOLLOUT;
	return w;
}

int hb_conn_tick(struct hb_conn *conn, uint64_t now_ms)
{
	if (conn->state == HB_CONN_CLOSED)
		return conn->pending_err;
	conn->now_ms = now_ms;
	if (conn->pending_err)
		return hb_conn_finish(conn, conn->pending_err, conn->pending_reason);
	if (!conn->ready) {
		if (now_ms - conn->start_ms >= HB_HANDSHAKE_TIMEOUT_MS)
			return hb_conn_fail(conn, -ETIMEDOUT,
					    "%s not finished after %u ms",
					    conn->state == HB_CONN_HANDSHAKE ? "TLS handshake"
									     : "HTTP/2 SETTINGS",
					    HB_HANDSHAKE_TIMEOUT_MS);
		return 0;
	}
	if (conn->ping_out && now_ms - conn->ping_sent_ms >= HB_PING_TIMEOUT_MS)
		return hb_conn_fail(conn, -ETIMEDOUT, "no PING reply from peer in %u ms",
				    HB_PING_TIMEOUT_MS);
	if (!conn->ping_out && now_ms - conn->ping_ref_ms >= HB_PING_INTERVAL_MS) {
		if (nghttp2_submit_ping(conn->h2, NGHTTP2_FLAG_NONE, NULL))
			return hb_conn_fail(conn, -ENOMEM, "cannot queue PING");
		conn->ping_out = true;
		conn->ping_sent_ms = now_ms;
		hb_conn_write(conn);
		if (conn->pending_err)
			return hb_conn_finish(conn, conn->pending_err, conn->pending_reason);
	}
	return 0;
}

int hb_conn_shutdown(struct hb_conn *conn)
{
	if (conn->state == HB_CONN_CLOSED)
		return -EPIPE;
	if (conn->goaway)
		return 0;
	conn->goaway = true;
	if (nghttp2_submit_goaway(conn->h2, NGHTTP2_FLAG_NONE,
				  nghttp2_session_get_last_proc_stream_id(conn->h2),
				  NGHTTP2_NO_ERROR, NULL, 0))
		return -EIO;
	hb_conn_soft_flush(conn);
	return 0;
}

void *hb_conn_ud(const struct hb_conn *conn)
{
	return conn->ud;
}

void hb_conn_set_ud(struct hb_conn *conn, void *ud)
{
	conn->ud = ud;
}

enum hb_role hb_conn_role(const struct hb_conn *conn)
{
	return conn->role;
}

bool hb_conn_is_ready(const struct hb_conn *conn)
{
	return conn->ready;
}

bool hb_conn_is_closed(const struct hb_conn *conn)
{
	return conn->state == HB_CONN_CLOSED;
}

unsigned int hb_conn_stream_count(const struct hb_conn *conn)
{
	return conn->nstreams;
}

unsigned int hb_conn_streams_available(const struct hb_conn *conn)
{
	uint32_t lim;

	if (!conn->ready || conn->goaway || conn->pending_err || conn->state == HB_CONN_CLOSED)
		return 0;
	lim = nghttp2_session_get_remote_settings(conn->h2,
						  NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
	if (lim > HB_MAX_STREAMS)
		lim = HB_MAX_STREAMS;
	return conn->nstreams >= lim ? 0 : lim - conn->nstreams;
}

const char *hb_conn_peer_identity(const struct hb_conn *conn)
{
	return conn->peer_id;
}

uint64_t hb_conn_bytes_sent(const struct hb_conn *conn)
{
	return conn->bytes_sent;
}

uint64_t hb_conn_bytes_received(const struct hb_conn *conn)
{
	return conn->bytes_recv;
}
