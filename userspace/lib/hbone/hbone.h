/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HBONE sessions (userspace/lib/hbone/README.md): HTTP/2 CONNECT tunnels over one mutual-TLS
 * connection, client or server role, built on nghttp2. Event-loop agnostic: one struct hb_conn
 * wraps a non-blocking fd and an SSL* made by lib/tls; the caller's loop calls hb_conn_io() when
 * the fd is ready, re-arms with hb_conn_want(), and calls hb_conn_tick() about once a second
 * (keepalive PINGs, handshake timeout). Memory is bounded both ways: received data a consumer
 * does not take stays unacknowledged (the peer stops at our flow-control window), and
 * hb_stream_write() accepts only what fits in a per-stream send buffer.
 *
 * Threading: an hb_conn and its streams belong to one thread. Callbacks run from inside
 * hb_conn_io(), hb_conn_tick(), hb_stream_resume() and hb_conn_free(); from a callback the
 * caller may call any hb_stream_* function (also on other streams of the connection) and
 * hb_stream_open(), but never hb_conn_free(). The hb_stream_* calls themselves never run
 * on_stream_close (a stream they end is finished from the next hb_conn_io(), which
 * hb_conn_want() asks for at once), so a stream stays valid across any call on it.
 */
#ifndef ZMESH_HBONE_HBONE_H
#define ZMESH_HBONE_HBONE_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/addr.h"

/* ---- protocol constants (the reference ztunnel's values) ---- */

#define HB_STREAM_WINDOW	(4u << 20)   /* SETTINGS_INITIAL_WINDOW_SIZE, bytes */
#define HB_CONN_WINDOW		(16u << 20)  /* connection receive window, bytes */
#define HB_MAX_FRAME		(1u << 20)   /* SETTINGS_MAX_FRAME_SIZE, bytes */
#define HB_MAX_STREAMS		100	     /* SETTINGS_MAX_CONCURRENT_STREAMS */
#define HB_PING_INTERVAL_MS	10000	     /* send a PING this long after the last ack */
#define HB_PING_TIMEOUT_MS	20000	     /* drop the connection when a PING is unanswered */
#define HB_HANDSHAKE_TIMEOUT_MS 10000	     /* TLS + SETTINGS must finish within this */
#define HB_SEND_BUFFER		(256u << 10) /* per-stream bytes hb_stream_write() accepts */

/* Response statuses of section 3. */
#define HB_STATUS_OK	      200
#define HB_STATUS_BAD_REQUEST 400 /* non-CONNECT, bad authority, wrong destination IP */
#define HB_STATUS_DENIED      401 /* L4 policy deny */
#define HB_STATUS_UNAVAILABLE 503 /* no such local workload/port, or the dial failed */

/* HTTP/2 error codes used on RST_STREAM (RFC 9113 section 7). */
#define HB_ERR_NO_ERROR	     0x0
#define HB_ERR_PROTOCOL	     0x1
#define HB_ERR_INTERNAL	     0x2
#define HB_ERR_REFUSED	     0x7 /* stream refused before any processing: safe to retry */
#define HB_ERR_CANCEL	     0x8
#define HB_ERR_CONNECT_ERROR 0xa /* the tunnelled TCP connection was reset or failed */

/* Text sizes, NUL included. */
#define HB_AUTHORITY_MAX   ZM_ADDR_STRLEN /* "[v6]:port" */
#define HB_TRACEPARENT_LEN 56		  /* "00-<32 hex>-<16 hex>-00" */
#define HB_FORWARDED_MAX   320
#define HB_BAGGAGE_MAX	   512

struct hb_conn;
struct hb_stream;

enum hb_role {
	HB_ROLE_CLIENT,
	HB_ROLE_SERVER,
};

/*
 * A CONNECT request. Client side (hb_stream_open): authority is required, the three header
 * values are optional (NULL or "" leaves the header out); method, dst and peer_identity are
 * ignored. Server side (on_request): every string is valid only during the callback (copy
 * what you keep); absent headers are ""; method is always "CONNECT" (anything else got a 400
 * before reaching you), dst/dst_port are the parsed authority (an unparsable one got a 400).
 */
struct hb_request {
	const char *method;
	const char *authority;	   /* "ip:port" or "[ip6]:port" */
	const char *forwarded;	   /* value of the forwarded header */
	const char *baggage;	   /* value of the baggage header */
	const char *traceparent;   /* value of the traceparent header */
	const char *peer_identity; /* server: the client's verified SPIFFE id, "" when unknown */
	struct zm_addr dst;
	unsigned int dst_port; /* host order */
};

/*
 * Callbacks (any may be NULL except on_data when data can arrive). The stream pointer stays
 * valid until on_stream_close() returns; the connection until hb_conn_free().
 */
struct hb_callbacks {
	/* TLS handshake done and the peer's SETTINGS received: streams may be opened. */
	void (*on_ready)(struct hb_conn *conn);
	/* Server: a CONNECT arrived. Answer with hb_stream_respond(), now or later. */
	void (*on_request)(struct hb_stream *s, const struct hb_request *req);
	/* Client: the response status (200 = tunnel up; anything else, the stream then ends). */
	void (*on_response)(struct hb_stream *s, int status);
	/*
	 * Tunnel bytes from the peer. Return how many you took (0..len). Taking fewer pauses the
	 * stream: the rest and any later bytes are held (at most the 4 MiB stream window, the
	 * peer is not credited for them) until hb_stream_resume(), which delivers them again.
	 */
	size_t (*on_data)(struct hb_stream *s, const uint8_t *buf, size_t len);
	/* The peer sent END_STREAM (TCP half-close): no more on_data, after held data. */
	void (*on_eof)(struct hb_stream *s);
	/* hb_stream_write() space freed again after it accepted less than offered. */
	void (*on_writable)(struct hb_stream *s);
	/*
	 * The stream is gone. error is HB_ERR_NO_ERROR after a clean end both ways, the peer's
	 * RST_STREAM code (HB_ERR_CONNECT_ERROR: the far side's TCP connection was reset), or
	 * HB_ERR_CANCEL when the connection died. The stream pointer is invalid afterwards.
	 */
	void (*on_stream_close)(struct hb_stream *s, uint32_t error);
	/*
	 * The connection is finished (err: -ETIMEDOUT handshake/ping, -ECONNRESET, -EPROTO,
	 * -ECONNREFUSED TLS peer check, 0 clean GOAWAY/EOF, ...); reason is a one-line text.
	 * -EPROTO reasons carry nghttp2's own words for protocol violations, oversized header
	 * blocks and floods, or the error code and debug text of the peer's GOAWAY. A peer that
	 * closes TCP without a TLS close_notify while no stream is open (or after GOAWAY) is a
	 * clean end (err 0), not a TLS error.
	 * Called once, after every stream's on_stream_close. Call hb_conn_free() after the
	 * hb_conn_io()/hb_conn_tick() that reported it returns.
	 */
	void (*on_conn_close)(struct hb_conn *conn, int err, const char *reason);
	/*
	 * Server: the library answered a request 400 itself, without on_request (no or non-
	 * CONNECT :method, missing or unparsable :authority). method and authority are the
	 * request's values ("" when absent; nghttp2 has checked their characters, but they are
	 * still the peer's text), why a short static sentence. Valid only during the callback;
	 * for logs and metrics: the stream is already answered and is never seen again.
	 */
	void (*on_bad_request)(struct hb_conn *conn, const char *method, const char *authority,
			       const char *why);
};

/*
 * Wrap fd (non-blocking, connected or accepted) and ssl (made by zm_tls_client_ssl_new or
 * zm_tls_server_ssl_new on fd; the hb_conn takes ownership and frees it) in a session of
 * the given role. cbs is copied; ud is returned by hb_conn_ud(). The TLS handshake is driven
 * by hb_conn_io(): arm the fd with hb_conn_want() right away. now_ms is the caller's
 * monotonic clock (the same one later passed to hb_conn_tick()). Returns NULL with errno.
 */
struct hb_conn *hb_conn_new(enum hb_role role, int fd, SSL *ssl, const struct hb_callbacks *cbs,
			    void *ud, uint64_t now_ms);

/*
 * Free the session and its SSL (not the fd: the caller closes it after removing it from its
 * loop). Live streams get on_stream_close(HB_ERR_CANCEL) first. No on_conn_close here.
 */
void hb_conn_free(struct hb_conn *conn);

/*
 * Drive the connection after the fd reported revents (EPOLLIN/EPOLLOUT/EPOLLERR/EPOLLHUP
 * bits; 0 is fine: just make progress). Returns 0 while alive, or a negative errno once the
 * connection is finished (the err given to on_conn_close, -ESHUTDOWN after a clean close);
 * then hb_conn_want() is 0 and the caller frees it.
 */
int hb_conn_io(struct hb_conn *conn, uint32_t revents);

/* The EPOLLIN/EPOLLOUT bits the connection waits for now (0 once finished). */
uint32_t hb_conn_want(const struct hb_conn *conn);

/*
 * Timers: handshake timeout, PING every HB_PING_INTERVAL_MS, close after HB_PING_TIMEOUT_MS
 * without an ack. Call about once a second; returns as hb_conn_io() does.
 */
int hb_conn_tick(struct hb_conn *conn, uint64_t now_ms);

/*
 * Hold what stream calls queue on conn until the matching hb_conn_uncork() (they nest), so
 * that calls made in a row (open a stream, then write its first bytes) leave in one TLS
 * record and one send() instead of one each. hb_conn_io() still sends as usual.
 */
void hb_conn_cork(struct hb_conn *conn);
void hb_conn_uncork(struct hb_conn *conn);

/*
 * Batching, for an owner that runs rounds of events: with it on, stream calls (write,
 * shutdown, reset, respond, resume, uncork) only note that the connection has frames to send,
 * and the owner calls hb_conn_flush() once at the end of each round. The frames that many
 * streams queued in one round (16 keep-alive clients answered, a waypoint forwarding a batch
 * of requests) then leave in one batch of TLS records and one send() instead of one each.
 * hb_conn_io() and hb_conn_tick() still send at once.
 */
void hb_conn_set_batching(struct hb_conn *conn, bool on);
void hb_conn_flush(struct hb_conn *conn);

/*
 * Stop taking new streams (GOAWAY); the connection finishes once its streams are done.
 * Returns 0 or -errno.
 */
int hb_conn_shutdown(struct hb_conn *conn);

void *hb_conn_ud(const struct hb_conn *conn);
void hb_conn_set_ud(struct hb_conn *conn, void *ud);
enum hb_role hb_conn_role(const struct hb_conn *conn);
/* The handshake and SETTINGS exchange are done (on_ready has been called). */
bool hb_conn_is_ready(const struct hb_conn *conn);
/* The connection is finished (on_conn_close has been called). */
bool hb_conn_is_closed(const struct hb_conn *conn);
/* Live streams (for pooling and idle release). */
unsigned int hb_conn_stream_count(const struct hb_conn *conn);
/*
 * How many more streams hb_stream_open() may open now: the peer's MAX_CONCURRENT_STREAMS
 * (at most HB_MAX_STREAMS) minus live ones; 0 before ready, after GOAWAY or once closed.
 */
unsigned int hb_conn_streams_available(const struct hb_conn *conn);
/* The verified peer SPIFFE id ("spiffe://..."), "" before the handshake or when unknown. */
const char *hb_conn_peer_identity(const struct hb_conn *conn);
/* Bytes of tunnel payload sent/received over all streams (for metrics). */
uint64_t hb_conn_bytes_sent(const struct hb_conn *conn);
uint64_t hb_conn_bytes_received(const struct hb_conn *conn);

/*
 * Client: open a CONNECT stream (no :scheme/:path; req->authority, optional forwarded,
 * baggage, traceparent). Allowed once ready (or before: the request waits for the
 * handshake). Bytes may be written at once and follow the request right away (early data:
 * a server holds them until it answers and drops them with any answer but 200). Returns the
 * stream, or NULL with errno (EAGAIN: no stream slot, EINVAL bad request, EPIPE conn closed).
 */
struct hb_stream *hb_stream_open(struct hb_conn *conn, const struct hb_request *req, void *ud);

/*
 * Server: answer a request. 200 opens the tunnel; any other status ends the stream (HEADERS
 * with END_STREAM, then RST_STREAM NO_ERROR so the client stops sending). Bytes the client
 * sent before the answer are held (not credited) and delivered through on_data from inside
 * hb_stream_respond(200). Returns 0, -EALREADY when answered before, or -errno.
 */
int hb_stream_respond(struct hb_stream *s, int status);

/*
 * Queue tunnel bytes. Returns how many were accepted (0..len; less when the stream's send
 * buffer, HB_SEND_BUFFER, is full: wait for on_writable), or -EPIPE after hb_stream_shutdown
 * or once the stream is closing, -EINVAL on a non-200 server stream.
 */
ssize_t hb_stream_write(struct hb_stream *s, const void *buf, size_t len);

/*
 * Zero-copy variant of hb_stream_write(): room for up to want bytes straight in the stream's
 * send queue, so a proxy can read() its socket into it. Returns the room (0..want; 0 when the
 * queue is full: on_writable follows) with *buf pointing at it, or the errors of
 * hb_stream_write() (-ENOMEM too). Nothing is queued until hb_stream_write_commit(s, n) says
 * how many bytes (<= the room) were put there (0 when the read found nothing: an empty queue
 * then gives its buffer back); no other call on s may come in between.
 */
ssize_t hb_stream_write_space(struct hb_stream *s, size_t want, void **buf);
int hb_stream_write_commit(struct hb_stream *s, size_t n);

/* Bytes queued by hb_stream_write() and not yet handed to TLS. */
size_t hb_stream_unsent(const struct hb_stream *s);

/* Half-close our direction: END_STREAM after the queued bytes. Returns 0 or -errno. */
int hb_stream_shutdown(struct hb_stream *s);

/*
 * Abort the stream with RST_STREAM(code) (HB_ERR_CONNECT_ERROR when the tunnelled TCP
 * connection was reset). on_stream_close follows later with code. Returns 0 or -errno.
 */
int hb_stream_reset(struct hb_stream *s, uint32_t code);

/*
 * Un-pause a stream whose on_data took less than offered: delivers held bytes through
 * on_data right away (and on_eof when END_STREAM was held behind them), and credits the
 * peer for what was taken. When the peer had already finished the stream and everything is
 * delivered, on_stream_close follows from the next hb_conn_io() (s stays valid until then).
 * Returns 0 or -errno.
 */
int hb_stream_resume(struct hb_stream *s);

/* Bytes received and held for a paused stream. */
size_t hb_stream_held(const struct hb_stream *s);

void *hb_stream_ud(const struct hb_stream *s);
void hb_stream_set_ud(struct hb_stream *s, void *ud);
struct hb_conn *hb_stream_conn(const struct hb_stream *s);
/* The HTTP/2 stream id (odd, client-initiated), for logs. */
int32_t hb_stream_id(const struct hb_stream *s);

/*
 * Whether this kernel has kTLS (the "tls" TCP ULP): 0 when it has, -ENOENT (or another
 * -errno) when not. lib/hbone does TLS in userspace either way; this is the runtime check a
 * kTLS record layer (in place of wire.c's BIO) would sit behind.
 */
int hb_ktls_probe(void);

/*
 * Give back the calling thread's spare buffers (the pool of drained 256 KiB buffers and the
 * read batch buffer). For a thread that has gone quiet; they are made again when needed.
 */
void hb_thread_trim(void);

/* ---- header builders and parsers (section 3) ---- */

/*
 * Write the CONNECT authority "ip:port" / "[ip6]:port" (port 1..65535, host order).
 * Returns 0, -EINVAL or -ENOSPC.
 */
int hb_authority_format(const struct zm_addr *a, unsigned int port, char *buf, size_t len);

/*
 * Parse an authority: IPv4 "a.b.c.d:port" or bracketed IPv6 "[addr]:port", decimal port
 * 1..65535 without sign or leading '+'. Refuses hostnames, unbracketed IPv6, zone ids,
 * missing or bad ports (-EINVAL).
 */
int hb_authority_parse(const char *text, struct zm_addr *a, unsigned int *port);

/*
 * forwarded: for="<ip:port>" (IPv6 bracketed, RFC 7239), plus ;host=<host> when host is
 * non-empty (the service hostname the client addressed). Returns 0, -EINVAL or -ENOSPC.
 */
int hb_forwarded_format(const struct zm_addr *client, unsigned int port, const char *host,
			char *buf, size_t len);

/* What the baggage header tells the peer about the source workload; NULL/"" left out. */
struct hb_baggage {
	const char *cluster;	   /* k8s.cluster.name */
	const char *ns;		   /* k8s.namespace.name */
	const char *workload_type; /* "deployment", "pod", ... -> k8s.<type>.name */
	const char *workload_name;
	const char *service_name;    /* service.name (canonical service) */
	const char *service_version; /* service.version */
};

/*
 * baggage: comma-separated key=value items in the order of struct hb_baggage, empty ones
 * left out (an all-empty baggage is ""). Returns 0, -EINVAL (a value with ',', '=', ';' or
 * space) or -ENOSPC.
 */
int hb_baggage_format(const struct hb_baggage *b, char *buf, size_t len);

/*
 * A fresh random traceparent "00-<32 hex trace id>-<16 hex span id>-00" (ids never all
 * zero). buf must hold HB_TRACEPARENT_LEN. Returns 0 or -ENOSPC / -EIO (no randomness).
 */
int hb_traceparent_new(char *buf, size_t len);

/* True when text is a well-formed version-00 traceparent (lower-case hex, non-zero ids). */
bool hb_traceparent_valid(const char *text);

#endif
