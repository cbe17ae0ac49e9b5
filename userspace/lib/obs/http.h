/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTTP/1.x request-head parser of the admin responder (admin.h), pure (no I/O) so that the
 * unit tests can feed it every malformed request we refuse. It accepts an origin-form request
 * line ("METHOD /path?query HTTP/1.0|1.1"), header lines "Name: value" and a Content-Length;
 * it refuses (with the status to answer and a sentence naming the problem) anything else: a
 * bare LF line end, a method that is not an upper-case token, a target that is not a path,
 * another HTTP version, obsolete line folding, a header name with bad characters, a
 * Transfer-Encoding (we never need chunked requests) and conflicting or bad lengths.
 */
#ifndef ZMESH_OBS_HTTP_H
#define ZMESH_OBS_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#define OBS_HTTP_METHOD_MAX 16
#define OBS_HTTP_TARGET_MAX 1024

struct obs_http_head {
	char method[OBS_HTTP_METHOD_MAX];
	char path[OBS_HTTP_TARGET_MAX];	 /* starts with '/' */
	char query[OBS_HTTP_TARGET_MAX]; /* after '?', "" when none */
	size_t content_length;
	int minor; /* HTTP/1.minor */
};

/*
 * Parse the head in buf[0..len) (up to and including its blank line). Returns 0, or the HTTP
 * status to answer (400, 411, 413, 501, 505) with the reason in why.
 */
int obs_http_head_parse(const char *buf, size_t len, struct obs_http_head *h, char *why,
			size_t wlen);

/*
 * Could buf[0..len) (the start of what a client sent, head possibly incomplete) begin an
 * HTTP/1 request? False as soon as the method is not an upper-case token followed by a space,
 * or the request line holds a control byte: a TLS ClientHello or binary junk is refused at
 * once instead of waiting for a blank line that never comes.
 */
bool obs_http_plausible(const char *buf, size_t len);

/*
 * The value of key in a query string, percent-decoded into buf ('+' is a space). 0, -ENOENT
 * when absent, -EINVAL on bad encoding (including %00), -ENOSPC when buf is too small.
 */
int obs_query_get(const char *query, const char *key, char *buf, size_t len);

#endif
