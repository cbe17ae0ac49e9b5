// SPDX-License-Identifier: Apache-2.0
/*
 * HBONE connections, the public calls: create and free, hb_conn_io() (TLS handshake, then
 * read, deferred stream notifications, write), what to wait for, the timers (handshake
 * timeout, keepalive PINGs) and GOAWAY. The TLS I/O and closing live in tlsio.c, the nghttp2
 * session and its callbacks in session.c, streams in stream.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "internal.h"

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
	if (hb_wire_attach(conn, ssl))
		goto err_h2;
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
	hb_buf_free(&conn->wire);
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

/* The session is over without a local error: say whether nghttp2 saw a violation. */
static int hb_conn_end(struct hb_conn *conn, const char *clean)
{
	char why[sizeof(conn->pending_reason)];

	hb_h2_close_reason(conn, why, sizeof(why));
	if (why[0])
		return hb_conn_fail(conn, -EPROTO, "%s", why);
	return hb_conn_fail(conn, 0, "%s", clean);
}

static int hb_conn_step(struct hb_conn *conn)
{
	int err, rounds;

	err = hb_conn_read(conn);
	if (err == -EPIPE)
		return hb_conn_end(conn, conn->goaway ? "peer closed the connection after GOAWAY"
						      : "peer closed the connection");
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
		return hb_conn_end(conn, "connection closed after GOAWAY");
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
		return (uint32_t)conn->ssl_want | (conn->wire.len ? EPOLLOUT : 0);
	w = EPOLLIN | ((uint32_t)conn->ssl_want & EPOLLOUT);
	if (conn->out.len || conn->wire.len || nghttp2_session_want_write(conn->h2))
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
			return hb_conn_fail(conn, -ETIMEDOUT, "%s not finished after %u ms",
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

void hb_conn_cork(struct hb_conn *conn)
{
	conn->corked++;
}

void hb_conn_uncork(struct hb_conn *conn)
{
	if (conn->corked && !--conn->corked)
		hb_conn_soft_flush(conn);
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
	lim =
	    nghttp2_session_get_remote_settings(conn->h2, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
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
