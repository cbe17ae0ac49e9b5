// SPDX-License-Identifier: Apache-2.0
/*
 * HBONE connections, the TLS side: the handshake, non-blocking TLS reads that feed nghttp2
 * and writes of the frames it serializes, and closing (on_conn_close exactly once, with an
 * errno and a one-line reason). A peer that closes TCP without a TLS close_notify is read as
 * an end of stream, not a TLS failure: HTTP/2 framing and GOAWAY already say whether the
 * peer was done, and many stacks (Go, Python, Envoy after GOAWAY) skip close_notify.
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

#define HB_READ_BATCH (128u << 10) /* plaintext gathered before nghttp2 sees it */
#define HB_READ_MIN   (16u << 10)  /* without the batch buffer: one record at a time */

/*
 * The calling thread's read batch: plaintext of several records is handed to nghttp2 in one
 * call, so a tunnel's bytes reach the consumer (and its socket) in one piece per batch rather
 * than one per record. Per thread, not per connection: idle connections cost nothing here.
 */
static __thread uint8_t *hb_read_buf;

void hb_tlsio_trim(void)
{
	free(hb_read_buf);
	hb_read_buf = NULL;
}

int hb_conn_finish(struct hb_conn *conn, int err, const char *reason)
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
	hb_wire_flush(conn); /* best effort: the close_notify or an alert the peer should see */
	while ((s = conn->streams))
		hb_stream_finish(s, HB_ERR_CANCEL);
	if (conn->cbs.on_conn_close)
		conn->cbs.on_conn_close(conn, err, conn->pending_reason);
	return conn->pending_err;
}

int hb_conn_fail(struct hb_conn *conn, int err, const char *fmt, ...)
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
#ifdef SSL_R_UNEXPECTED_EOF_WHILE_READING
	case SSL_ERROR_SSL:
		/* OpenSSL 3 reports TCP EOF without close_notify as an error: an end here. */
		if (ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			ERR_clear_error();
			return -EPIPE;
		}
		break;
#endif
	default:
		break;
	}
	e = zm_tls_error(conn->ssl, ret, why, sizeof(why));
	hb_conn_fail_later(conn, e ?: -EIO, "%s: %s", op, why);
	return conn->pending_err;
}

/* Serialize queued frames and hand them to TLS until it would block. */
static int hb_conn_write_records(struct hb_conn *conn)
{
	const uint8_t *p;
	ssize_t n;
	int w;

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

/* Frames to TLS records, then the gathered records to the socket in one send(). */
int hb_conn_write(struct hb_conn *conn)
{
	int err;

	conn->ssl_want &= ~EPOLLOUT;
	hb_conn_write_records(conn);
	err = hb_wire_flush(conn);
	if (err && err != -EAGAIN && !conn->pending_err)
		hb_conn_fail_later(conn, err == -ECONNRESET ? -ECONNRESET : -EPIPE,
				   "TLS write: connection %s",
				   err == -ECONNRESET ? "reset by peer" : "closed");
	return conn->pending_err;
}

/*
 * Send what a stream call (write, shutdown, reset, respond) queued, right away. Streams that
 * this closes are finished on the next hb_conn_io(), not here: the caller still holds the
 * stream, and on_stream_close may only run where the API says callbacks run.
 */
static void hb_conn_soft_flush_now(struct hb_conn *conn)
{
	if (conn->in_h2 || conn->soft_flushing || conn->corked || conn->state != HB_CONN_H2 ||
	    conn->pending_err)
		return;
	conn->soft_flushing = true;
	hb_conn_write(conn);
	conn->soft_flushing = false;
}

void hb_conn_soft_flush(struct hb_conn *conn)
{
	hb_conn_soft_flush_data(conn, 0);
}

void hb_conn_soft_flush_data(struct hb_conn *conn, size_t queued)
{
	if (conn->batching && queued < HB_OUT_BATCH)
		conn->flush_due = true;
	else
		hb_conn_soft_flush_now(conn);
}

void hb_conn_set_batching(struct hb_conn *conn, bool on)
{
	conn->batching = on;
	if (!on)
		hb_conn_flush(conn);
}

void hb_conn_flush(struct hb_conn *conn)
{
	if (!conn->flush_due)
		return;
	conn->flush_due = false;
	hb_conn_soft_flush_now(conn);
}

/*
 * Hand received bytes to nghttp2. A violation it cannot handle with a GOAWAY of its own
 * (flood, bad preface, a callback failure) fails the connection with nghttp2's text.
 * Returns 0 or -errno (pending_err set).
 */
int hb_conn_feed(struct hb_conn *conn, const uint8_t *buf, size_t len)
{
	ssize_t rv;

	conn->in_h2++;
	rv = nghttp2_session_mem_recv(conn->h2, buf, len);
	conn->in_h2--;
	if (rv >= 0)
		return conn->pending_err;
	hb_conn_fail_later(conn, -EPROTO, "HTTP/2 from peer: %s%s%s", nghttp2_strerror((int)rv),
			   conn->h2_err[0] ? ": " : "", conn->h2_err);
	return conn->pending_err;
}

/* The socket is known empty and TLS holds nothing more: another read would only say EAGAIN. */
static bool hb_conn_drained(struct hb_conn *conn)
{
	return conn->own_bio && conn->rd_drained && !SSL_has_pending(conn->ssl);
}

/*
 * Read, gathering the plaintext of several records, and feed nghttp2 until TLS would block or
 * the socket is drained. Returns 0, -EPIPE at a clean end, or -errno (pending_err set).
 */
int hb_conn_read(struct hb_conn *conn)
{
	uint8_t small[HB_READ_MIN], *buf = small;
	size_t cap = sizeof(small), len = 0;
	int n, err;

	if (!hb_read_buf)
		hb_read_buf = malloc(HB_READ_BATCH);
	if (hb_read_buf) {
		buf = hb_read_buf;
		cap = HB_READ_BATCH;
	}
	conn->ssl_want &= ~EPOLLIN;
	while (conn->state == HB_CONN_H2 && !conn->pending_err) {
		ERR_clear_error();
		n = SSL_read(conn->ssl, buf + len, (int)(cap - len));
		if (n > 0) {
			len += (size_t)n;
			if (len < cap && !hb_conn_drained(conn))
				continue;
		}
		if (len && hb_conn_feed(conn, buf, len)) {
			hb_conn_write(conn); /* let a GOAWAY out if nghttp2 queued one */
			return conn->pending_err;
		}
		len = 0;
		if (n > 0) {
			if (hb_conn_drained(conn))
				return 0;
			continue;
		}
		err = hb_ssl_err(conn, n, "TLS read");
		if (err == -EAGAIN)
			return 0;
		if (conn->pending_err)
			return conn->pending_err;
		/* Clean end: nothing open, or nghttp2 is done after GOAWAY. */
		if (err == -EPIPE && (!conn->nstreams || !nghttp2_session_want_read(conn->h2)))
			return -EPIPE;
		hb_conn_fail_later(conn, -ECONNRESET, "peer %s the connection with %u streams open",
				   err == -EPIPE ? "closed" : "reset", conn->nstreams);
		return conn->pending_err;
	}
	return conn->pending_err;
}

int hb_conn_handshake(struct hb_conn *conn)
{
	char why[160];
	int want = 0, err;

	ERR_clear_error();
	err = zm_tls_handshake(conn->ssl, &want, why, sizeof(why));
	if (err == -EAGAIN) {
		conn->ssl_want = (want & POLLOUT) ? EPOLLOUT : EPOLLIN;
		hb_wire_flush(conn); /* our flight; EPOLLOUT when it did not all fit */
		return -EAGAIN;
	}
	if (err)
		return hb_conn_fail(conn, err, "TLS handshake failed: %s", why);
	if (zm_tls_peer_identity(conn->ssl, conn->peer_id, sizeof(conn->peer_id)))
		conn->peer_id[0] = '\0';
	conn->state = HB_CONN_H2;
	conn->ssl_want = 0;
	hb_wire_flush(conn); /* the client's Finished */
	return 0;
}
