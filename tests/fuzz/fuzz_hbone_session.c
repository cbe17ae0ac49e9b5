// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for lib/hbone's HTTP/2 side: arbitrary bytes from the peer go into a real
 * hb_conn (server or client role) through hb_conn_feed(), the same entry TLS reads use, so
 * nghttp2 and every callback of session.c and stream.c run as they do in ztunnel. TLS is
 * left out: the SSL has memory BIOs and never finishes a handshake (its reads and writes
 * just "would block"); the connection is put in its HTTP/2 state by hand and what it wants
 * to send is taken off its output queue as if TLS had written it.
 *
 * Input: byte 0 picks the role (bit 0: client) and how the application behaves (bits 1-3:
 * answer 200 and echo, answer 503, answer later, take half of each chunk, reset); byte 1 the
 * feed chunk size (0: all at once, else 8 * n bytes); the rest is what the peer sends (the
 * server role gets the client connection preface first, so inputs need not carry it). After
 * each chunk the connection runs hb_conn_io() (deferred notifications, closing) and the
 * application resumes and answers pending streams. Seeds: tests/data/hbone_session/.
 */
#include <fcntl.h>
#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hbone/internal.h"

#define FZ_MAX_STREAMS 16

enum {
	FZ_ECHO,
	FZ_503,
	FZ_LATER,
	FZ_HALF,
	FZ_RESET,
};

static struct {
	int mode;
	struct hb_stream *live[FZ_MAX_STREAMS]; /* known streams, NULL once closed */
	bool answered[FZ_MAX_STREAMS];
} fz;

static int fz_slot(struct hb_stream *s)
{
	return (int)(intptr_t)hb_stream_ud(s) - 1;
}

static void fz_track(struct hb_stream *s)
{
	int i;

	for (i = 0; i < FZ_MAX_STREAMS; i++) {
		if (!fz.live[i]) {
			fz.live[i] = s;
			fz.answered[i] = false;
			hb_stream_set_ud(s, (void *)(intptr_t)(i + 1));
			return;
		}
	}
	hb_stream_set_ud(s, NULL);
}

static void fz_answer(struct hb_stream *s)
{
	int i = fz_slot(s);

	if (i >= 0)
		fz.answered[i] = true;
	if (fz.mode == FZ_503) {
		hb_stream_respond(s, HB_STATUS_UNAVAILABLE);
		return;
	}
	if (hb_stream_respond(s, HB_STATUS_OK))
		return;
	hb_stream_write(s, "hello", 5);
	if (fz.mode == FZ_RESET)
		hb_stream_reset(s, HB_ERR_CONNECT_ERROR);
}

static void fz_on_request(struct hb_stream *s, const struct hb_request *req)
{
	if (!req->method || !req->authority || !req->forwarded || !req->baggage ||
	    !req->traceparent || !req->peer_identity || strcmp(req->method, "CONNECT") ||
	    req->dst_port < 1 || req->dst_port > 65535)
		abort(); /* the documented guarantees of on_request */
	fz_track(s);
	if (fz.mode != FZ_LATER || !hb_stream_ud(s))
		fz_answer(s);
}

static void fz_on_response(struct hb_stream *s, int status)
{
	if (status == 200)
		hb_stream_write(s, "ping", 4);
}

static size_t fz_on_data(struct hb_stream *s, const uint8_t *buf, size_t len)
{
	ssize_t n;

	if (fz.mode == FZ_HALF)
		return len / 2;
	if (hb_conn_role(hb_stream_conn(s)) == HB_ROLE_SERVER) {
		n = hb_stream_write(s, buf, len);
		return n < 0 ? len : (size_t)n;
	}
	return len;
}

static void fz_on_eof(struct hb_stream *s)
{
	hb_stream_shutdown(s);
}

static void fz_on_writable(struct hb_stream *s)
{
	hb_stream_resume(s);
}

static void fz_on_stream_close(struct hb_stream *s, uint32_t code)
{
	int i = fz_slot(s);

	(void)code;
	if (i >= 0 && fz.live[i] == s)
		fz.live[i] = NULL;
}

static const struct hb_callbacks fz_cbs = {
    .on_request = fz_on_request,
    .on_response = fz_on_response,
    .on_data = fz_on_data,
    .on_eof = fz_on_eof,
    .on_writable = fz_on_writable,
    .on_stream_close = fz_on_stream_close,
};

/* What the application does between reads: answer late requests, un-pause streams. */
static void fz_app_step(struct hb_conn *conn)
{
	int i;

	for (i = 0; i < FZ_MAX_STREAMS && !hb_conn_is_closed(conn); i++) {
		if (!fz.live[i])
			continue;
		if (hb_conn_role(conn) == HB_ROLE_SERVER && !fz.answered[i]) {
			fz_answer(fz.live[i]);
			continue;
		}
		if (fz.live[i] && hb_stream_held(fz.live[i]))
			hb_stream_resume(fz.live[i]);
	}
}

/* Run the connection and take what it wrote, as a TLS layer that never blocks would. */
static int fz_run(struct hb_conn *conn)
{
	int err = 0, i;

	for (i = 0; i < 4 && !err; i++) {
		err = hb_conn_io(conn, 0);
		hb_buf_drop(&conn->out, conn->out.len);
	}
	return err;
}

static SSL_CTX *fz_ctx;
static int fz_fd = -1;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	struct hb_request req = {.authority = "10.0.0.1:80", .traceparent = ""};
	struct hb_conn *conn;
	enum hb_role role;
	size_t chunk, off, n;
	SSL *ssl;

	if (size < 2)
		return 0;
	if (!fz_ctx) {
		fz_ctx = SSL_CTX_new(TLS_method());
		fz_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (!fz_ctx || fz_fd < 0)
			abort();
	}
	memset(&fz, 0, sizeof(fz));
	role = (data[0] & 1) ? HB_ROLE_CLIENT : HB_ROLE_SERVER;
	fz.mode = (data[0] >> 1) % 5;
	chunk = data[1] ? (size_t)data[1] * 8 : size;
	data += 2;
	size -= 2;
	ssl = SSL_new(fz_ctx);
	if (!ssl)
		abort();
	SSL_set_bio(ssl, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
	if (role == HB_ROLE_SERVER)
		SSL_set_accept_state(ssl);
	else
		SSL_set_connect_state(ssl);
	conn = hb_conn_new(role, fz_fd, ssl, &fz_cbs, NULL, 1000);
	if (!conn)
		abort();
	conn->state = HB_CONN_H2; /* as if the handshake had finished */
	if (role == HB_ROLE_CLIENT) {
		struct hb_stream *s = hb_stream_open(conn, &req, NULL);

		if (!s)
			abort();
		fz_track(s);
	} else if (hb_conn_feed(conn, preface, sizeof(preface) - 1)) {
		abort();
	}
	for (off = 0; off < size && !hb_conn_is_closed(conn); off += n) {
		n = size - off < chunk ? size - off : chunk;
		if (!hb_conn_feed(conn, data + off, n))
			fz_app_step(conn);
		if (fz_run(conn))
			break;
	}
	if (!hb_conn_is_closed(conn)) {
		hb_conn_tick(conn, 1000 + HB_PING_INTERVAL_MS);
		hb_conn_shutdown(conn);
		fz_run(conn);
	}
	hb_conn_free(conn);
	return 0;
}
