// SPDX-License-Identifier: Apache-2.0
/*
 * Request-head parsing and query decoding for the admin responder (http.h).
 */
#include "obs/http.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/errf.h"

static bool obs_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       strchr("!#$%&'*+-.^_`|~", c);
}

/* The request line in [p, eol). */
static int obs_request_line(const char *p, const char *eol, struct obs_http_head *h, char *why,
			    size_t wlen)
{
	const char *sp1 = memchr(p, ' ', (size_t)(eol - p)), *sp2, *q, *c;
	size_t mlen, tlen;

	if (!sp1)
		return zm_errf(why, wlen, 400, "request line has no target: not HTTP");
	sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1));
	if (!sp2)
		return zm_errf(why, wlen, 400, "request line has no HTTP version");
	mlen = (size_t)(sp1 - p);
	if (!mlen || mlen >= sizeof(h->method))
		return zm_errf(why, wlen, 400, "bad method");
	for (c = p; c < sp1; c++)
		if (*c < 'A' || *c > 'Z')
			return zm_errf(why, wlen, 400, "bad method (want an upper-case token)");
	memcpy(h->method, p, mlen);
	h->method[mlen] = '\0';
	if ((size_t)(eol - sp2 - 1) != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) ||
	    (sp2[8] != '0' && sp2[8] != '1'))
		return zm_errf(why, wlen, strncmp(sp2 + 1, "HTTP/", 5) ? 400 : 505,
			       "want HTTP/1.0 or HTTP/1.1");
	h->minor = sp2[8] - '0';
	tlen = (size_t)(sp2 - sp1 - 1);
	if (!tlen || sp1[1] != '/')
		return zm_errf(why, wlen, 400, "target is not a path");
	for (c = sp1 + 1; c < sp2; c++)
		if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f)
			return zm_errf(why, wlen, 400, "target has a control or non-ASCII byte");
	q = memchr(sp1 + 1, '?', tlen);
	if ((size_t)((q ? q : sp2) - sp1 - 1) >= sizeof(h->path) ||
	    (q && (size_t)(sp2 - q - 1) >= sizeof(h->query)))
		return zm_errf(why, wlen, 400, "target longer than %d bytes", OBS_HTTP_TARGET_MAX);
	memcpy(h->path, sp1 + 1, (size_t)((q ? q : sp2) - sp1 - 1));
	h->path[(q ? q : sp2) - sp1 - 1] = '\0';
	if (q) {
		memcpy(h->query, q + 1, (size_t)(sp2 - q - 1));
		h->query[sp2 - q - 1] = '\0';
	}
	return 0;
}

/* One header line [p, eol): checks the name, takes Content-Length and Transfer-Encoding. */
static int obs_header_line(const char *p, const char *eol, struct obs_http_head *h, bool *have_cl,
			   char *why, size_t wlen)
{
	const char *colon = memchr(p, ':', (size_t)(eol - p)), *v, *c;
	unsigned long long n = 0;

	if (*p == ' ' || *p == '\t')
		return zm_errf(why, wlen, 400, "folded header line");
	if (!colon || colon == p)
		return zm_errf(why, wlen, 400, "header line without a name");
	for (c = p; c < colon; c++)
		if (!obs_tchar(*c))
			return zm_errf(why, wlen, 400, "bad header name");
	for (v = colon + 1; v < eol && (*v == ' ' || *v == '\t'); v++)
		;
	if ((size_t)(colon - p) == 17 && !strncasecmp(p, "transfer-encoding", 17))
		return zm_errf(why, wlen, 501, "Transfer-Encoding is not supported");
	if ((size_t)(colon - p) != 14 || strncasecmp(p, "content-length", 14))
		return 0;
	if (v == eol)
		return zm_errf(why, wlen, 400, "empty Content-Length");
	for (c = v; c < eol && *c != ' ' && *c != '\t'; c++) {
		if (*c < '0' || *c > '9')
			return zm_errf(why, wlen, 400, "bad Content-Length");
		n = n * 10 + (unsigned long long)(*c - '0');
		if (n > (1ull << 32))
			return zm_errf(why, wlen, 413, "Content-Length too large");
	}
	if (*have_cl && n != h->content_length)
		return zm_errf(why, wlen, 400, "conflicting Content-Length headers");
	*have_cl = true;
	h->content_length = (size_t)n;
	return 0;
}

int obs_http_head_parse(const char *buf, size_t len, struct obs_http_head *h, char *why,
			size_t wlen)
{
	const char *p = buf, *end = buf + len, *eol;
	bool first = true, have_cl = false;
	int r;

	memset(h, 0, sizeof(*h));
	while (p < end) {
		eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			return zm_errf(why, wlen, 400, "incomplete request head");
		if (eol == p || eol[-1] != '\r')
			return zm_errf(why, wlen, 400, "line not ended by CRLF");
		if (memchr(p, '\0', (size_t)(eol - p)))
			return zm_errf(why, wlen, 400, "NUL byte in the request head");
		if (eol - 1 == p) {
			if (first)
				return zm_errf(why, wlen, 400, "empty request line");
			return 0; /* the blank line: done */
		}
		r = first ? obs_request_line(p, eol - 1, h, why, wlen)
			  : obs_header_line(p, eol - 1, h, &have_cl, why, wlen);
		if (r)
			return r;
		first = false;
		p = eol + 1;
	}
	return zm_errf(why, wlen, 400, "request head without its blank line");
}

bool obs_http_plausible(const char *buf, size_t len)
{
	size_t i;
	bool method = true;

	for (i = 0; i < len && buf[i] != '\n'; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (method && c == ' ' && i > 0) {
			method = false;
			continue;
		}
		if (method && (c < 'A' || c > 'Z' || i >= OBS_HTTP_METHOD_MAX))
			return false;
		if (c < 0x20 && c != '\r')
			return false;
	}
	return true;
}

static int obs_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int obs_pct_decode(const char *s, size_t n, char *buf, size_t len)
{
	size_t i, o = 0;

	if (!len)
		return -ENOSPC;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (c == '%') {
			int hi = i + 2 < n + 1 && i + 1 < n ? obs_hex(s[i + 1]) : -1;
			int lo = i + 2 < n ? obs_hex(s[i + 2]) : -1;

			if (hi < 0 || lo < 0 || (hi | lo) == 0)
				return -EINVAL;
			c = (char)(hi << 4 | lo);
			i += 2;
		} else if (c == '+') {
			c = ' ';
		}
		if (o + 1 >= len)
			return -ENOSPC;
		buf[o++] = c;
	}
	buf[o] = '\0';
	return 0;
}

int obs_query_get(const char *query, const char *key, char *buf, size_t len)
{
	size_t klen = strlen(key);
	const char *p = query;

	while (p && *p) {
		const char *amp = strchr(p, '&');
		size_t n = amp ? (size_t)(amp - p) : strlen(p);
		const char *eq = memchr(p, '=', n);
		size_t kn = eq ? (size_t)(eq - p) : n;

		if (kn == klen && !memcmp(p, key, klen))
			return eq ? obs_pct_decode(eq + 1, n - kn - 1, buf, len)
				  : obs_pct_decode("", 0, buf, len);
		p = amp ? amp + 1 : NULL;
	}
	return -ENOENT;
}
