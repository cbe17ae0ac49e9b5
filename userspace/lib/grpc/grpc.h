/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gRPC over HTTP/2 for everything zmesh says to a control plane: the 5-byte message framing
 * and status codes (shared with zmesh-ca's server side), and a client for one call at a time
 * on its own TLS connection (nghttp2), unary or bidirectional streaming. The client is
 * blocking and meant for a thread of its own (the CA client's refresh thread, ztunnel's xDS
 * thread), never a worker loop: it connects with a deadline, verifies the server against the
 * mesh roots by a SPIFFE id or a DNS name, sends `authorization: Bearer <token>` and extra
 * headers (Istio's `clusterid`), reassembles messages up to a size limit, and keeps the
 * connection honest with HTTP/2 PINGs so a stalled peer is noticed.
 */
#ifndef ZMESH_GRPC_GRPC_H
#define ZMESH_GRPC_GRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* gRPC message prefix: 1 byte compressed flag + 4 bytes big-endian length. */
#define ZM_GRPC_HDR 5

/* gRPC status codes (grpc/doc/statuscodes.md). */
enum zm_grpc_status {
	ZM_GRPC_OK = 0,
	ZM_GRPC_CANCELLED = 1,
	ZM_GRPC_UNKNOWN = 2,
	ZM_GRPC_INVALID_ARGUMENT = 3,
	ZM_GRPC_DEADLINE_EXCEEDED = 4,
	ZM_GRPC_PERMISSION_DENIED = 7,
	ZM_GRPC_RESOURCE_EXHAUSTED = 8,
	ZM_GRPC_UNIMPLEMENTED = 12,
	ZM_GRPC_INTERNAL = 13,
	ZM_GRPC_UNAVAILABLE = 14,
	ZM_GRPC_UNAUTHENTICATED = 16,
};

/* "INVALID_ARGUMENT" etc.; "UNKNOWN" for codes we do not name. */
const char *zm_grpc_status_name(int code);

/* Write/parse a gRPC message header. Parse returns the compressed flag or -EINVAL. */
void zm_grpc_hdr_put(uint8_t *hdr, uint32_t msg_len);
int zm_grpc_hdr_get(const uint8_t *hdr, uint32_t *msg_len);

struct zm_tls_roots;
struct zm_cert;

struct zm_grpc_opts {
	const char *addr;	    /* "host:port" or "[v6]:port" */
	struct zm_tls_roots *roots; /* the server's chain must verify against these */
	struct zm_cert *cert;	    /* client certificate; NULL: none (token auth) */
	/* Whom we expect: "spiffe://..." (URI SAN) or a DNS name (SAN, also sent as SNI). */
	const char *server_name;
	const char *token;	    /* "authorization: Bearer <token>"; NULL or "": none */
	const char *const *headers; /* extra name, value, name, value, ..., NULL */
	int timeout_ms;		    /* connect, handshake, each blocking write; 0: 5000 */
	uint32_t max_msg;	    /* largest message accepted; 0: 4 MiB */
	int ping_ms;		    /* PING after this long without input; 0: never */
	int ping_timeout_ms;	    /* drop when a PING stays unanswered this long */
};

/* One call on its own connection. Not thread-safe: one thread drives it. */
struct zm_grpc_call;

/*
 * Connect to o->addr, verify the server, start HTTP/2 and open the call to path
 * ("/package.Service/Method" form). Returns 0 with *out, or -errno with the reason in err
 * (-ECONNREFUSED, -ETIMEDOUT, -EHOSTUNREACH, -EPROTO handshake/verification failures...).
 */
int zm_grpc_call_open(const struct zm_grpc_opts *o, const char *path, struct zm_grpc_call **out,
		      char *err, size_t len);

/*
 * Queue one message (msg is copied, framing added) and, with end, half-close our side.
 * Flushes what fits. Returns 0 or -errno (-EPIPE when the call is over).
 */
int zm_grpc_call_send(struct zm_grpc_call *c, const uint8_t *msg, size_t len, bool end, char *err,
		      size_t errlen);

/*
 * Wait at most timeout_ms for the next message. Returns 1 with *msg and *len (valid until the
 * next recv or close), 0 when the server ended the call (see zm_grpc_call_status), -EAGAIN
 * when nothing arrived in time, or -errno with err: -EMSGSIZE (a message over max_msg),
 * -ETIMEDOUT (a PING unanswered: the peer stalled), -ECONNRESET, -EPROTO (bad HTTP/2, bad
 * framing, compressed messages, a non-200 answer).
 */
int zm_grpc_call_recv(struct zm_grpc_call *c, int timeout_ms, const uint8_t **msg, size_t *len,
		      char *err, size_t errlen);

/* grpc-status of an ended call (-1 when none was received) and grpc-message ("" if none). */
int zm_grpc_call_status(const struct zm_grpc_call *c, const char **message);

/* Close the connection and free the call. NULL is fine. */
void zm_grpc_call_close(struct zm_grpc_call *c);

/*
 * A unary call: open, send req (len bytes, unframed), receive one message (malloc'd into
 * *resp) and the status. Returns 0, -EREMOTEIO with "CODE: message" in err for a non-OK
 * status (*status set), or -errno from the transport.
 */
int zm_grpc_unary(const struct zm_grpc_opts *o, const char *path, const uint8_t *req, size_t len,
		  uint8_t **resp, size_t *resp_len, int *status, char *err, size_t errlen);

#endif
