// SPDX-License-Identifier: Apache-2.0
/*
 * HBONE streams: one CONNECT tunnel each. Owns the per-stream byte queues (tx: what
 * hb_stream_write() accepted and the nghttp2 data provider has not taken yet, bounded by
 * HB_SEND_BUFFER; rx: what arrived while the consumer was paused, bounded by our stream
 * window because held bytes are never credited back) and the calls a proxy makes on a
 * stream: open, respond, write, shutdown, reset, resume.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define HB_BUF_MIN	(16u << 10)
#define HB_BUF_BIG	(256u << 10) /* the size a busy buffer jumps to; then it doubles */
#define HB_POOL_CLASSES 4	     /* pooled sizes: 16 KiB, then 256 KiB, 512 KiB and 1 MiB */
#define HB_POOL_MAX	8 /* drained buffers a thread keeps per size, for the next user */

/*
 * The calling thread's spare buffers, one pool per size. A bulk transfer drains and refills
 * its buffers many times a second (a connection's frames and records grow past 256 KiB each
 * time the socket is full); parking a drained one here instead of free() and a fresh malloc()
 * keeps that cheap and, above all, keeps big blocks from going back and forth between the
 * heap and the kernel (lib/common/heap.h fixes the allocator's thresholds, so a big block is
 * its own mapping). A request/response stream fills and drains a small one each way per
 * request, and a malloc()/free() pair per request showed in its profile (3%). A buffer of an
 * idle stream or connection is never kept by its owner, and a quiet thread gives the pools
 * back (hb_thread_trim). lib/hbone's objects belong to one thread (hbone.h), so a buffer never
 * changes threads while in use.
 */
struct hb_pool {
	uint8_t *p[HB_POOL_MAX];
	int n;
};

static __thread struct hb_pool hb_pools[HB_POOL_CLASSES];

/* The pool of buffers of size cap, or NULL for a size that is not pooled. */
static struct hb_pool *hb_pool_of(size_t cap)
{
	size_t size = HB_BUF_BIG;
	int c;

	if (cap == HB_BUF_MIN)
		return &hb_pools[0];
	for (c = 1; c < HB_POOL_CLASSES; c++, size *= 2)
		if (cap == size)
			return &hb_pools[c];
	return NULL;
}

static uint8_t *hb_pool_get(size_t cap)
{
	struct hb_pool *pool = hb_pool_of(cap);

	return pool && pool->n ? pool->p[--pool->n] : malloc(cap);
}

static void hb_pool_put(uint8_t *p, size_t cap)
{
	struct hb_pool *pool = hb_pool_of(cap);

	if (pool && pool->n < HB_POOL_MAX)
		pool->p[pool->n++] = p;
	else
		free(p);
}

uint8_t *hb_buf_reserve(struct hb_buf *b, size_t n)
{
	size_t need = b->len + n, cap;
	uint8_t *d;

	if (b->off + need <= b->cap)
		return b->data + b->off + b->len;
	/*
	 * Move the live bytes to the front only when that leaves a quarter of the buffer free:
	 * then the bytes moved are at most three times the bytes appended before the next move.
	 * A nearly full buffer that moved its bytes for every record appended (a connection's
	 * ciphertext while the socket is full) copied its whole content per 16 KiB.
	 */
	if (b->off && need <= b->cap - b->cap / 4) {
		memmove(b->data, b->data + b->off, b->len);
		b->off = 0;
		return b->data + b->len;
	}
	/* The next size that holds it, and bigger than now: moving is what was refused. */
	cap = need <= HB_BUF_MIN ? HB_BUF_MIN : HB_BUF_BIG;
	while (cap < need || cap <= b->cap)
		cap = cap == HB_BUF_MIN ? HB_BUF_BIG : cap * 2;
	d = hb_pool_get(cap);
	if (!d)
		return NULL;
	if (b->len)
		memcpy(d, b->data + b->off, b->len);
	if (b->data)
		hb_pool_put(b->data, b->cap);
	b->data = d;
	b->off = 0;
	b->cap = cap;
	return b->data + b->len;
}

void hb_thread_trim(void)
{
	struct hb_pool *pool;

	for (pool = hb_pools; pool < hb_pools + HB_POOL_CLASSES; pool++)
		while (pool->n)
			free(pool->p[--pool->n]);
	hb_tlsio_trim();
}

int hb_buf_append(struct hb_buf *b, const void *p, size_t n)
{
	uint8_t *d;

	if (n == 0)
		return 0;
	d = hb_buf_reserve(b, n);
	if (!d)
		return -ENOMEM;
	memcpy(d, p, n);
	b->len += n;
	return 0;
}

void hb_buf_drop(struct hb_buf *b, size_t n)
{
	if (n >= b->len) {
		/* Drained: nothing is kept per object (idle streams cost no buffer). */
		hb_buf_free(b);
		return;
	}
	b->off += n;
	b->len -= n;
}

void hb_buf_free(struct hb_buf *b)
{
	if (b->data)
		hb_pool_put(b->data, b->cap);
	memset(b, 0, sizeof(*b));
}

struct hb_stream *hb_stream_alloc(struct hb_conn *conn, int32_t id)
{
	struct hb_stream *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->conn = conn;
	s->id = id;
	s->next = conn->streams;
	if (conn->streams)
		conn->streams->prev = s;
	conn->streams = s;
	conn->nstreams++;
	return s;
}

static void hb_req_hdrs_free(struct hb_req_hdrs *r)
{
	if (!r)
		return;
	free(r->method);
	free(r->authority);
	free(r->forwarded);
	free(r->baggage);
	free(r->traceparent);
	free(r);
}

void hb_stream_free(struct hb_stream *s)
{
	struct hb_conn *conn = s->conn;

	if (s->prev)
		s->prev->next = s->next;
	else
		conn->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	conn->nstreams--;
	if (conn->state != HB_CONN_CLOSED && s->id > 0 && !s->h2_closed)
		nghttp2_session_set_stream_user_data(conn->h2, s->id, NULL);
	hb_req_hdrs_free(s->req);
	hb_buf_free(&s->tx);
	hb_buf_free(&s->rx);
	free(s);
}

/*
 * The stream is over: tell the user (when it knows the stream) and free it. Held bytes are
 * credited to the connection window so one abandoned stream cannot starve the others.
 */
void hb_stream_finish(struct hb_stream *s, uint32_t code)
{
	struct hb_conn *conn = s->conn;

	if (s->rx.len && conn->state != HB_CONN_CLOSED)
		nghttp2_session_consume_connection(conn->h2, s->rx.len);
	hb_buf_free(&s->rx);
	if (s->announced && conn->cbs.on_stream_close)
		conn->cbs.on_stream_close(s, code);
	hb_stream_free(s);
}

/* Credit the peer for n bytes the consumer took (stream level only while nghttp2 has it). */
static void hb_stream_credit(struct hb_stream *s, size_t n)
{
	struct hb_conn *conn = s->conn;

	if (!n || conn->state == HB_CONN_CLOSED)
		return;
	if (s->h2_closed)
		nghttp2_session_consume_connection(conn->h2, n);
	else
		nghttp2_session_consume(conn->h2, s->id, n);
}

/*
 * Hand held bytes to on_data until it takes less than offered, then END_STREAM as on_eof,
 * then a lingering close. Callbacks may reset the stream; nothing of s is touched after
 * a reset freed its buffers except flags.
 */
void hb_stream_deliver(struct hb_stream *s)
{
	struct hb_conn *conn = s->conn;
	size_t len, taken;

	while (s->rx.len && !s->paused && !s->reset) {
		len = s->rx.len;
		taken = conn->cbs.on_data ? conn->cbs.on_data(s, s->rx.data + s->rx.off, len) : len;
		if (s->reset)
			return;
		if (taken > len)
			taken = len;
		hb_stream_credit(s, taken);
		hb_buf_drop(&s->rx, taken);
		if (taken < len)
			s->paused = true;
	}
	if (s->reset || s->paused || s->rx.len)
		return;
	if (s->rx_eof && !s->eof_told) {
		s->eof_told = true;
		if (conn->cbs.on_eof)
			conn->cbs.on_eof(s);
	}
	/* A lingering stream is drained: end it on the next io, never under the caller. */
	if (s->h2_closed && !s->reset && !s->finish_pending) {
		s->finish_pending = true;
		conn->notify = true;
	}
}

/*
 * nghttp2 asks for a DATA frame's payload: we only say how much (NO_COPY) and hand the bytes
 * over in hb_data_send_cb, straight from the stream's queue into the connection's frame
 * batch. One copy instead of two (into nghttp2's frame buffer, then out of it).
 */
ssize_t hb_data_read_cb(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t length,
			uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct hb_stream *s = src->ptr;
	size_t n = s->tx.len < length ? s->tx.len : length;

	(void)h2;
	(void)id;
	(void)buf;
	(void)ud;
	if (n)
		*flags |= NGHTTP2_DATA_FLAG_NO_COPY;
	if (s->tx.len == n && s->tx_eof) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		s->tx_done = true;
	} else if (!n) {
		s->deferred = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	return (ssize_t)n;
}

int hb_data_send_cb(nghttp2_session *h2, nghttp2_frame *frame, const uint8_t *framehd,
		    size_t length, nghttp2_data_source *src, void *ud)
{
	struct hb_conn *conn = ud;
	struct hb_stream *s = src->ptr;

	(void)h2;
	(void)frame; /* no padding: we never ask for it */
	if (length > s->tx.len || hb_buf_append(&conn->out, framehd, 9) ||
	    hb_buf_append(&conn->out, s->tx.data + s->tx.off, length))
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	hb_buf_drop(&s->tx, length);
	conn->bytes_sent += length;
	/* Wake the writer once half the buffer is free, not per frame. */
	if (s->want_writable && s->tx.len <= HB_SEND_BUFFER / 2) {
		s->want_writable = false;
		s->tell_writable = true;
		conn->notify = true;
	}
	/* A full batch goes to TLS before nghttp2 packs the next frame. */
	return conn->out.len >= HB_OUT_BATCH ? NGHTTP2_ERR_PAUSE : 0;
}

/* DATA frames as large as the peer allows, up to HB_DATA_FRAME_MAX (nghttp2: 16 KiB). */
ssize_t hb_data_len_cb(nghttp2_session *h2, uint8_t type, int32_t id, int32_t conn_window,
		       int32_t stream_window, uint32_t peer_max_frame, void *ud)
{
	(void)h2;
	(void)type;
	(void)id;
	(void)conn_window;
	(void)stream_window;
	(void)ud;
	return peer_max_frame < HB_DATA_FRAME_MAX ? (ssize_t)peer_max_frame : HB_DATA_FRAME_MAX;
}

static void hb_stream_kick(struct hb_stream *s)
{
	if (s->deferred && s->provider && !s->h2_closed) {
		s->deferred = false;
		nghttp2_session_resume_data(s->conn->h2, s->id);
	}
}

struct hb_stream *hb_stream_open(struct hb_conn *conn, const struct hb_request *req, void *ud)
{
	nghttp2_nv nva[5];
	nghttp2_data_provider prd;
	struct zm_addr dst;
	unsigned int port, n = 0;
	struct hb_stream *s;
	int32_t id;

#define HB_NV(nm, val)                                                                             \
	(nghttp2_nv)                                                                               \
	{                                                                                          \
		(uint8_t *)(nm), (uint8_t *)(val), sizeof(nm) - 1, strlen(val),                    \
		    NGHTTP2_NV_FLAG_NONE                                                           \
	}
	if (!conn || !req || conn->role != HB_ROLE_CLIENT ||
	    hb_authority_parse(req->authority, &dst, &port)) {
		errno = EINVAL;
		return NULL;
	}
	if (conn->state == HB_CONN_CLOSED || conn->goaway || conn->pending_err) {
		errno = EPIPE;
		return NULL;
	}
	if (conn->ready ? !hb_conn_streams_available(conn) : conn->nstreams >= HB_MAX_STREAMS) {
		errno = EAGAIN;
		return NULL;
	}
	nva[n++] = HB_NV(":method", "CONNECT");
	nva[n++] = HB_NV(":authority", req->authority);
	if (req->forwarded && *req->forwarded)
		nva[n++] = HB_NV("forwarded", req->forwarded);
	if (req->baggage && *req->baggage)
		nva[n++] = HB_NV("baggage", req->baggage);
	if (req->traceparent && *req->traceparent)
		nva[n++] = HB_NV("traceparent", req->traceparent);
#undef HB_NV
	s = hb_stream_alloc(conn, 0);
	if (!s) {
		errno = ENOMEM;
		return NULL;
	}
	prd.source.ptr = s;
	prd.read_callback = hb_data_read_cb;
	id = nghttp2_submit_request(conn->h2, NULL, nva, n, &prd, s);
	if (id < 0) {
		hb_stream_free(s);
		errno = id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE ? EAGAIN : EIO;
		return NULL;
	}
	s->id = id;
	s->ud = ud;
	s->announced = true;
	s->provider = true;
	hb_conn_soft_flush(conn);
	return s;
}

int hb_stream_respond(struct hb_stream *s, int status)
{
	struct hb_conn *conn = s->conn;
	nghttp2_data_provider prd = {.source.ptr = s, .read_callback = hb_data_read_cb};
	char code[8];
	nghttp2_nv nv;
	int err;

	if (conn->role != HB_ROLE_SERVER || status < 200 || status > 599)
		return -EINVAL;
	if (s->status)
		return -EALREADY;
	if (conn->state == HB_CONN_CLOSED || s->reset || s->h2_closed)
		return -EPIPE;
	snprintf(code, sizeof(code), "%d", status);
	nv = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)code, 7, strlen(code),
			  NGHTTP2_NV_FLAG_NONE};
	err = nghttp2_submit_response(conn->h2, s->id, &nv, 1, status == 200 ? &prd : NULL);
	if (err)
		return -EIO;
	s->status = status;
	s->provider = status == 200;
	if (status != 200) {
		/* Whatever the client sent or sends is dropped: credit it, hold nothing. */
		hb_stream_credit(s, s->rx.len);
		hb_buf_free(&s->rx);
	}
	if (status == 200 && (s->rx.len || s->rx_eof))
		hb_stream_deliver(s);
	hb_conn_soft_flush(conn);
	return 0;
}

/* Whether the stream takes bytes now: 0, -EINVAL or -EPIPE (see hb_stream_write). */
static int hb_stream_writable(const struct hb_stream *s)
{
	if (s->conn->role == HB_ROLE_SERVER && s->status && s->status != 200)
		return -EINVAL;
	if (s->reset || s->h2_closed || s->tx_eof || s->conn->state == HB_CONN_CLOSED ||
	    (s->conn->role == HB_ROLE_CLIENT && s->status && s->status != 200))
		return -EPIPE;
	return 0;
}

ssize_t hb_stream_write_space(struct hb_stream *s, size_t want, void **buf)
{
	size_t room = HB_SEND_BUFFER > s->tx.len ? HB_SEND_BUFFER - s->tx.len : 0;
	int err = hb_stream_writable(s);

	if (err)
		return err;
	if (want < room)
		room = want;
	if (!room) {
		s->want_writable = true;
		return 0;
	}
	*buf = hb_buf_reserve(&s->tx, room);
	return *buf ? (ssize_t)room : -ENOMEM;
}

int hb_stream_write_commit(struct hb_stream *s, size_t n)
{
	if (!n) {
		if (!s->tx.len)
			hb_buf_free(&s->tx); /* nothing came: an idle stream keeps no buffer */
		return 0;
	}
	if (s->tx.off + s->tx.len + n > s->tx.cap)
		return -EINVAL;
	s->tx.len += n;
	hb_stream_kick(s);
	hb_conn_soft_flush_data(s->conn, s->tx.len);
	return 0;
}

ssize_t hb_stream_write(struct hb_stream *s, const void *buf, size_t len)
{
	size_t room, n;
	int err = hb_stream_writable(s);

	if (err)
		return err;
	room = HB_SEND_BUFFER > s->tx.len ? HB_SEND_BUFFER - s->tx.len : 0;
	n = len < room ? len : room;
	if (n < len)
		s->want_writable = true;
	if (!n)
		return 0;
	if (hb_buf_append(&s->tx, buf, n))
		return s->want_writable = false, -ENOMEM;
	hb_stream_kick(s);
	hb_conn_soft_flush_data(s->conn, s->tx.len);
	return (ssize_t)n;
}

size_t hb_stream_unsent(const struct hb_stream *s)
{
	return s->tx.len;
}

int hb_stream_shutdown(struct hb_stream *s)
{
	if (s->reset || s->h2_closed || s->conn->state == HB_CONN_CLOSED)
		return -EPIPE;
	if (s->tx_eof)
		return 0;
	s->tx_eof = true;
	hb_stream_kick(s);
	hb_conn_soft_flush(s->conn);
	return 0;
}

int hb_stream_reset(struct hb_stream *s, uint32_t code)
{
	struct hb_conn *conn = s->conn;

	if (s->reset)
		return 0;
	if (conn->state == HB_CONN_CLOSED)
		return -EPIPE;
	s->reset = true;
	s->close_code = code;
	s->want_writable = false;
	s->tell_writable = false;
	hb_buf_free(&s->tx);
	if (s->rx.len)
		nghttp2_session_consume_connection(conn->h2, s->rx.len);
	hb_buf_free(&s->rx);
	if (s->h2_closed) {
		/* nghttp2 is done with it already: nothing to send; end it on the next io. */
		s->finish_pending = true;
		conn->notify = true;
		return 0;
	}
	if (s->status && !s->hdrs_sent && conn->role == HB_ROLE_SERVER) {
		/* nghttp2 drops a queued response when RST_STREAM is queued behind it; the
		 * client must see the 200 before the reset, so send it from on_frame_send. */
		s->rst_deferred = true;
		return 0;
	}
	if (nghttp2_submit_rst_stream(conn->h2, NGHTTP2_FLAG_NONE, s->id, code))
		return -EIO;
	hb_conn_soft_flush(conn);
	return 0;
}

int hb_stream_resume(struct hb_stream *s)
{
	struct hb_conn *conn = s->conn;

	if (s->reset || conn->state == HB_CONN_CLOSED)
		return -EPIPE;
	if (conn->role == HB_ROLE_SERVER && !s->status)
		return 0; /* delivery starts with hb_stream_respond(200) */
	s->paused = false;
	hb_stream_deliver(s);
	hb_conn_soft_flush(conn);
	return 0;
}

size_t hb_stream_held(const struct hb_stream *s)
{
	return s->rx.len;
}

void *hb_stream_ud(const struct hb_stream *s)
{
	return s->ud;
}

void hb_stream_set_ud(struct hb_stream *s, void *ud)
{
	s->ud = ud;
}

struct hb_conn *hb_stream_conn(const struct hb_stream *s)
{
	return s->conn;
}

int32_t hb_stream_id(const struct hb_stream *s)
{
	return s->id;
}
