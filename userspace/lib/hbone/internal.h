/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private state of lib/hbone shared by its files: conn.c (the public connection calls,
 * timers), tlsio.c (handshake, TLS reads and writes, closing), wire.c (the socket BIO under
 * TLS: gathered writes, read-ahead), session.c (the nghttp2 session and its callbacks, the
 * server's own 400s) and stream.c (tunnel buffers, stream calls).
 * Nothing here is part of the API; the unit tests and fuzz targets include it to reach what
 * the public API hides.
 */
#ifndef ZMESH_HBONE_INTERNAL_H
#define ZMESH_HBONE_INTERNAL_H

#include <nghttp2/nghttp2.h>

#include "hbone.h"

#define HB_OUT_BATCH	  (64u << 10)  /* frames gathered before SSL_write: full 16 KiB records */
#define HB_DATA_FRAME_MAX (256u << 10) /* our DATA frames' payload, when the peer allows it */

/* A byte queue: data[off, off + len) is live; compacted or freed as it drains. */
struct hb_buf {
	uint8_t *data;
	size_t off;
	size_t len;
	size_t cap;
};

/* Room for n more bytes at data + off + len (not counted in len yet); NULL when out of memory. */
uint8_t *hb_buf_reserve(struct hb_buf *b, size_t n);
int hb_buf_append(struct hb_buf *b, const void *p, size_t n);
void hb_buf_drop(struct hb_buf *b, size_t n);
void hb_buf_free(struct hb_buf *b);

/* Request header values collected for a server stream until its HEADERS frame ends. */
struct hb_req_hdrs {
	char *method;
	char *authority;
	char *forwarded;
	char *baggage;
	char *traceparent;
};

struct hb_stream {
	struct hb_conn *conn;
	struct hb_stream *prev, *next; /* conn->streams */
	int32_t id;
	void *ud;
	struct hb_req_hdrs *req; /* server: until the request is complete */
	struct hb_buf tx;	 /* queued by hb_stream_write, read by the data provider */
	struct hb_buf rx;	 /* received, not yet taken by on_data (paused) */
	int status;		 /* response status sent (server) or received (client) */
	bool announced;		 /* the user knows this stream (on_request / hb_stream_open) */
	bool provider;		 /* a data provider is attached (request or 200 response) */
	bool deferred;		 /* the data provider returned NGHTTP2_ERR_DEFERRED */
	bool tx_eof;		 /* hb_stream_shutdown: END_STREAM after tx drains */
	bool tx_done;		 /* END_STREAM handed to nghttp2 */
	bool reset;		 /* RST_STREAM submitted by us */
	bool paused;		 /* on_data took less than offered */
	bool rx_eof;		 /* END_STREAM received */
	bool eof_told;		 /* on_eof delivered */
	bool want_writable;	 /* hb_stream_write came up short: tell on_writable */
	bool tell_writable;	 /* space freed: on_writable pending */
	bool h2_closed;		 /* nghttp2 closed the stream; we linger for held rx data */
	bool hdrs_sent;		 /* our HEADERS (request or response) went out */
	bool rst_deferred;	 /* reset asked before our response HEADERS went out */
	bool finish_pending;	 /* reset while lingering: on_stream_close on the next io */
	uint32_t close_code;
};

enum hb_conn_state {
	HB_CONN_HANDSHAKE,
	HB_CONN_H2,
	HB_CONN_CLOSED,
};

struct hb_conn {
	enum hb_role role;
	enum hb_conn_state state;
	int fd;
	SSL *ssl;
	nghttp2_session *h2;
	struct hb_callbacks cbs;
	void *ud;
	struct hb_stream *streams;
	unsigned int nstreams; /* live, announced or not */
	int in_h2;	       /* depth of nghttp2 calls on the stack: no mem_send inside */
	bool soft_flushing;    /* sending from a stream call: stream closes wait for io */
	int corked;	       /* hb_conn_cork() depth: stream calls do not send */
	bool batching;	       /* hb_conn_set_batching(): stream calls wait for hb_conn_flush() */
	bool flush_due;	       /* batching: a stream call queued frames since the last flush */
	struct hb_buf out;     /* serialized frames not yet taken by SSL_write */
	struct hb_buf wire;    /* TLS records not yet taken by send() (wire.c) */
	bool own_bio;	       /* the SSL reads and writes through wire.c's BIO */
	bool rd_drained;       /* the last read() from the socket came back short */
	int wire_err;	       /* send() failed: -errno, the connection is lost */
	int ssl_want;	       /* EPOLLIN/EPOLLOUT the last SSL call asked for */
	bool ready;	       /* handshake done, peer SETTINGS received */
	bool settings_rx;
	bool goaway;		 /* sent or received: no new streams */
	bool notify;		 /* some stream has tell_writable or a lingering close */
	uint32_t goaway_tx_code; /* error code of a GOAWAY we sent (nghttp2 found a violation) */
	uint32_t goaway_rx_code; /* error code of a GOAWAY the peer sent */
	char h2_err[160];	 /* nghttp2's last error text (error_callback2 or GOAWAY debug) */
	int pending_err;	 /* a failure seen where callbacks could not run */
	char pending_reason[160];
	uint64_t start_ms, now_ms;
	uint64_t ping_ref_ms; /* last PING ack (or ready time) */
	uint64_t ping_sent_ms;
	bool ping_out;
	uint64_t bytes_sent, bytes_recv;
	char peer_id[256];
};

/* stream.c */
struct hb_stream *hb_stream_alloc(struct hb_conn *conn, int32_t id);
void hb_stream_free(struct hb_stream *s);
void hb_stream_deliver(struct hb_stream *s);
void hb_stream_finish(struct hb_stream *s, uint32_t code);
ssize_t hb_data_read_cb(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t length,
			uint32_t *flags, nghttp2_data_source *src, void *ud);
int hb_data_send_cb(nghttp2_session *h2, nghttp2_frame *frame, const uint8_t *framehd,
		    size_t length, nghttp2_data_source *src, void *ud);
ssize_t hb_data_len_cb(nghttp2_session *h2, uint8_t type, int32_t id, int32_t conn_window,
		       int32_t stream_window, uint32_t peer_max_frame, void *ud);

/* wire.c: install the BIO on ssl when it is a socket BIO on conn->fd (0 or -ENOMEM); send
 * gathered records (0, -EAGAIN with EPOLLOUT in ssl_want, or the send error). */
int hb_wire_attach(struct hb_conn *conn, SSL *ssl);
int hb_wire_flush(struct hb_conn *conn);

/* tlsio.c */
void hb_tlsio_trim(void); /* free the calling thread's read batch buffer */
int hb_conn_finish(struct hb_conn *conn, int err, const char *reason);
int hb_conn_fail(struct hb_conn *conn, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void hb_conn_fail_later(struct hb_conn *conn, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int hb_conn_handshake(struct hb_conn *conn);
int hb_conn_read(struct hb_conn *conn);
int hb_conn_write(struct hb_conn *conn);
void hb_conn_soft_flush(struct hb_conn *conn);
/* After a stream write that left @queued bytes in its buffer: batched unless that is a bulk
 * (HB_OUT_BATCH or more), which goes now so one round never holds a stream's whole buffer. */
void hb_conn_soft_flush_data(struct hb_conn *conn, size_t queued);
int hb_conn_feed(struct hb_conn *conn, const uint8_t *buf, size_t len);

/* session.c */
nghttp2_session *hb_h2_new(struct hb_conn *conn);
int hb_h2_settings(struct hb_conn *conn);
int hb_request_check(const char *method, const char *authority, struct zm_addr *dst,
		     unsigned int *port, const char **why);
void hb_h2_close_reason(struct hb_conn *conn, char *buf, size_t len);

#endif
