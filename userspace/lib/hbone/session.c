// SPDX-License-Identifier: Apache-2.0
/*
 * HBONE connections, the HTTP/2 side: the nghttp2 session (SETTINGS of
 * userspace/lib/hbone/README.md, manual WINDOW_UPDATEs so a paused consumer stops the peer), the
 * callbacks that turn frames into hb_callbacks, the server's own 400 answers (non-CONNECT, bad
 * authority; reported through on_bad_request), and nghttp2's own error texts, kept so a connection
 * that ends on a protocol violation, oversized headers or a flood says which in its close reason.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static struct hb_stream *hb_h2_stream(struct hb_conn *conn, int32_t id)
{
	return nghttp2_session_get_stream_user_data(conn->h2, id);
}

/* Keep nghttp2's text on one printable line: it may quote bytes the peer sent. */
static void hb_text_keep(char *dst, size_t cap, const char *src, size_t len)
{
	size_t i;

	if (len >= cap)
		len = cap - 1;
	for (i = 0; i < len; i++)
		dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? src[i] : '?';
	dst[len] = '\0';
}

static int hb_on_h2_error(nghttp2_session *h2, int lib_error_code, const char *msg, size_t len,
			  void *ud)
{
	struct hb_conn *conn = ud;

	(void)h2;
	(void)lib_error_code;
	hb_text_keep(conn->h2_err, sizeof(conn->h2_err), msg, len);
	return 0;
}

/*
 * Why a connection that nghttp2 ended with a GOAWAY (ours with an error code, or the
 * peer's) ended, for on_conn_close; "" when neither side reported an error.
 */
void hb_h2_close_reason(struct hb_conn *conn, char *buf, size_t len)
{
	buf[0] = '\0';
	if (conn->goaway_tx_code)
		snprintf(buf, len, "HTTP/2 protocol error by peer, sent GOAWAY(%s)%s%s",
			 nghttp2_http2_strerror(conn->goaway_tx_code), conn->h2_err[0] ? ": " : "",
			 conn->h2_err);
	else if (conn->goaway_rx_code)
		snprintf(buf, len, "peer sent GOAWAY(%s)%s%s",
			 nghttp2_http2_strerror(conn->goaway_rx_code), conn->h2_err[0] ? ": " : "",
			 conn->h2_err);
}

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

/*
 * The server's own checks of a request: a CONNECT to "ip:port" / "[ip6]:port". Fills dst and
 * port on success; otherwise returns -EINVAL and *why says what was wrong (static text).
 */
int hb_request_check(const char *method, const char *authority, struct zm_addr *dst,
		     unsigned int *port, const char **why)
{
	*why = NULL;
	if (!method || !*method)
		*why = "request has no :method";
	else if (strcmp(method, "CONNECT"))
		*why = "method is not CONNECT";
	else if (!authority || !*authority)
		*why = "CONNECT has no :authority";
	else if (hb_authority_parse(authority, dst, port))
		*why = "authority is not ip:port or [ipv6]:port";
	return *why ? -EINVAL : 0;
}

/* Server: a request's headers are complete. Refuse what is not a CONNECT to an IP:port. */
static void hb_server_request(struct hb_conn *conn, struct hb_stream *s, bool end_stream)
{
	struct hb_req_hdrs *h = s->req;
	struct hb_request r = {0};
	const char *why;
	int err;

	s->req = NULL;
	if (end_stream)
		s->rx_eof = true;
	if (hb_request_check(h->method, h->authority, &r.dst, &r.dst_port, &why)) {
		/* Not announced: the user never sees it, on_stream_close is not called. */
		err = hb_stream_respond(s, HB_STATUS_BAD_REQUEST);
		if (err)
			nghttp2_submit_rst_stream(conn->h2, NGHTTP2_FLAG_NONE, s->id,
						  HB_ERR_INTERNAL);
		if (conn->cbs.on_bad_request)
			conn->cbs.on_bad_request(conn, h->method ?: "", h->authority ?: "", why);
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

	if (conn->role == HB_ROLE_SERVER && frame->headers.cat == NGHTTP2_HCAT_REQUEST && s->req) {
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
		if (frame->goaway.error_code && !conn->goaway_rx_code) {
			conn->goaway_rx_code = frame->goaway.error_code;
			hb_text_keep(conn->h2_err, sizeof(conn->h2_err),
				     (const char *)frame->goaway.opaque_data,
				     frame->goaway.opaque_data_len);
		}
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
	if (conn->soft_flushing) {
		/* Inside a stream call: its caller still uses s. Finish on the next io. */
		nghttp2_session_set_stream_user_data(h2, id, NULL);
		s->h2_closed = true;
		s->close_code = code;
		s->finish_pending = true;
		conn->notify = true;
		return 0;
	}
	hb_stream_finish(s, code);
	return 0;
}

static int hb_on_frame_send(nghttp2_session *h2, const nghttp2_frame *frame, void *ud)
{
	struct hb_conn *conn = ud;
	struct hb_stream *s;

	if (conn->state == HB_CONN_CLOSED)
		return 0;
	if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code && !conn->goaway_tx_code) {
		/* nghttp2 ended the session over a violation; its GOAWAY debug data says why. */
		conn->goaway_tx_code = frame->goaway.error_code;
		if (!conn->h2_err[0])
			hb_text_keep(conn->h2_err, sizeof(conn->h2_err),
				     (const char *)frame->goaway.opaque_data,
				     frame->goaway.opaque_data_len);
		return 0;
	}
	if (frame->hd.type != NGHTTP2_HEADERS)
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

nghttp2_session *hb_h2_new(struct hb_conn *conn)
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
	nghttp2_session_callbacks_set_error_callback2(cb, hb_on_h2_error);
	nghttp2_session_callbacks_set_send_data_callback(cb, hb_data_send_cb);
	nghttp2_session_callbacks_set_data_source_read_length_callback(cb, hb_data_len_cb);
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

int hb_h2_settings(struct hb_conn *conn)
{
	nghttp2_settings_entry iv[] = {
	    {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, HB_MAX_STREAMS},
	    {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, HB_STREAM_WINDOW},
	    {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, HB_MAX_FRAME},
	    {NGHTTP2_SETTINGS_ENABLE_PUSH, 0}, /* meaningful from a client only */
	};
	size_t n = conn->role == HB_ROLE_CLIENT ? 4 : 3;

	if (nghttp2_submit_settings(conn->h2, NGHTTP2_FLAG_NONE, iv, n))
		return -EIO;
	/* The connection window is 4x the stream window: equal windows can deadlock. */
	if (nghttp2_session_set_local_window_size(conn->h2, NGHTTP2_FLAG_NONE, 0, HB_CONN_WINDOW))
		return -EIO;
	return 0;
}
