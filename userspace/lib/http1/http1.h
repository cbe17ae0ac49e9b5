/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A strict HTTP/1.1 message parser (RFC 9112), pure: no I/O, no allocation, no clock. It reads
 * message heads (request line or status line, then header fields) and chunked bodies from a
 * caller's buffer and refuses, with a named reason, every form that two parsers could frame
 * differently: whitespace between a field name and its colon, obs-fold continuation lines,
 * bare CR or LF line ends, control bytes in values, conflicting or malformed Content-Length,
 * Transfer-Encoding other than a lone "chunked", both framings at once, a missing or repeated
 * Host. What it accepts a proxy can re-serialize field by field and be certain the next hop
 * frames the message as it did (this is what makes L7 authorization hold: nothing it did not
 * see can reach the endpoint). The waypoint's HTTP/1 codecs (userspace/waypoint) use it both
 * ways; tests/fuzz/fuzz_http1.c fuzzes it.
 */
#ifndef ZMESH_HTTP1_HTTP1_H
#define ZMESH_HTTP1_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define H1_MAX_FIELDS	 100	     /* header fields per head */
#define H1_MAX_HEAD	 (32u << 10) /* bytes of a head, blank line included */
#define H1_MAX_CHUNKLINE 1024	     /* a chunk-size line with its extensions */

/* Why bytes were refused: the code and the HTTP status a server answers with (h1_err_str). */
#define H1_ERRORS(X)                                                                               \
	X(NONE, 200, "ok")                                                                         \
	X(TOO_LARGE, 431, "head larger than the limit")                                            \
	X(LINE, 400, "malformed request or status line")                                           \
	X(METHOD, 400, "invalid method")                                                           \
	X(TARGET, 400, "invalid request target")                                                   \
	X(VERSION, 400, "unsupported HTTP version")                                                \
	X(STATUS, 400, "invalid status code")                                                      \
	X(NAME, 400, "invalid header name (whitespace before the colon, or not a token)")          \
	X(VALUE, 400, "invalid byte in a header value")                                            \
	X(FOLD, 400, "obsolete line folding")                                                      \
	X(CRLF, 400, "line not ended by CRLF")                                                     \
	X(TOO_MANY, 431, "too many header fields")                                                 \
	X(CL, 400, "invalid or conflicting Content-Length")                                        \
	X(CL_TE, 400, "both Content-Length and Transfer-Encoding")                                 \
	X(TE, 501, "Transfer-Encoding other than chunked")                                         \
	X(HOST, 400, "missing or repeated Host")                                                   \
	X(CHUNK, 400, "malformed chunked body")

#define H1_ERR_ENUM(name, code, text) H1_E_##name,
enum h1_err { H1_ERRORS(H1_ERR_ENUM) H1_E_COUNT };
#undef H1_ERR_ENUM

/* "invalid header name (...)" */
const char *h1_err_str(int err);
/* The status a server answers a request refused with err (400, 431, 501). */
unsigned int h1_err_status(int err);

enum h1_kind { H1_REQUEST, H1_RESPONSE };

/* Spans point into the parsed buffer; names as sent (compare with h1_name_is). */
struct h1_span {
	const char *p;
	size_t len;
};

struct h1_field {
	struct h1_span name, value; /* value without leading/trailing whitespace */
};

struct h1_head {
	struct h1_span method, target; /* request */
	unsigned int status;	       /* response */
	struct h1_span reason;	       /* response, may be empty */
	unsigned int minor;	       /* HTTP/1.<minor>: 0 or 1 */
	struct h1_field f[H1_MAX_FIELDS];
	size_t n;
	size_t len; /* bytes of the head, the blank line included */
};

/*
 * Parse the head at buf[0 .. len). Returns the head's length (> 0) with *h filled when it is
 * complete, 0 when more bytes are needed (and fewer than H1_MAX_HEAD are there), or
 * -H1_E_* when these bytes can never start a valid head.
 */
int h1_head_parse(enum h1_kind kind, const char *buf, size_t len, struct h1_head *h);

/* What a valid head says about its message. */
struct h1_msg {
	int64_t content_length; /* -1: none */
	bool chunked;
	bool close;		/* the connection ends after this message */
	bool upgrade;		/* Connection: upgrade and an Upgrade field */
	bool upgrade_websocket; /* and that field is "websocket" */
	bool expect_continue;	/* Expect: 100-continue */
	int host;		/* index of the Host field, -1 none */
};

/*
 * Check the framing and connection fields of a parsed head (for a response, req_method is the
 * request's, for HEAD). Returns 0 with *m filled, or -H1_E_CL, -H1_E_CL_TE, -H1_E_TE, -H1_E_HOST.
 */
int h1_msg_check(enum h1_kind kind, const struct h1_head *h, struct h1_msg *m);

/* Does a response to this request (method) with this status carry a body at all? */
bool h1_resp_has_body(const char *req_method, unsigned int status);

/*
 * Is field i of h hop-by-hop: a connection-level field of RFC 9110 7.6.1 (Connection,
 * Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade) or a name the
 * Connection field nominates? Such fields never go to the next hop.
 */
bool h1_hop_by_hop(const struct h1_head *h, size_t i);

/* Case-insensitive comparison of a span with a lower-case name. */
bool h1_name_is(struct h1_span s, const char *lower);

/* ---- chunked bodies ---- */

enum h1_chunk_state { H1_CH_SIZE = 0, H1_CH_DATA, H1_CH_DATA_CRLF, H1_CH_TRAILER, H1_CH_DONE };

struct h1_chunked {
	enum h1_chunk_state state;
	uint64_t left;	      /* data bytes left of the current chunk */
	size_t trailer_bytes; /* trailer section so far (bounded by H1_MAX_HEAD) */
};

/*
 * Decode the chunked body at buf[0 .. len): consumes a prefix (*used) and reports the body
 * bytes found in it (*data, *dlen; dlen may be 0). Call again with the rest until *used is 0
 * (more bytes needed) or it returns 1 (the body and its trailer section ended). Trailer
 * fields are checked and dropped. Returns 0, 1, or -H1_E_CHUNK.
 */
int h1_chunked_step(struct h1_chunked *c, const char *buf, size_t len, size_t *used,
		    const char **data, size_t *dlen);

#endif
