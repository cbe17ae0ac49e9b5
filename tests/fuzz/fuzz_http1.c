// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for the strict HTTP/1.1 parser (userspace/lib/http1). The input is parsed
 * as a request head and as a response head; every span the parser returns must lie inside
 * the input, a complete head's length must end in CRLF CRLF within the limit, and its framing
 * check must return a known verdict. What follows a complete head is then decoded as a chunked
 * body, whole and one byte at a time, and both must agree. Seeds: tests/data/http1/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http1/http1.h"

static void fz_span(const char *buf, size_t len, struct h1_span s)
{
	if (s.len && (s.p < buf || s.p + s.len > buf + len))
		abort();
}

static void fz_head(enum h1_kind k, const char *buf, size_t len, struct h1_head *h)
{
	struct h1_msg m;
	size_t i;
	int n = h1_head_parse(k, buf, len, h), r;

	if (n < 0 && -n >= H1_E_COUNT)
		abort();
	if (n <= 0)
		return;
	if ((size_t)n > len || n > (int)H1_MAX_HEAD || memcmp(buf + n - 4, "\r\n\r\n", 4))
		abort();
	fz_span(buf, len, h->method);
	fz_span(buf, len, h->target);
	fz_span(buf, len, h->reason);
	for (i = 0; i < h->n; i++) {
		fz_span(buf, len, h->f[i].name);
		fz_span(buf, len, h->f[i].value);
		(void)h1_hop_by_hop(h, i);
	}
	r = h1_msg_check(k, h, &m);
	if (r > 0 || -r >= H1_E_COUNT)
		abort();
}

/* Decode as a chunked body in steps of step bytes; returns the verdict and body size. */
static int fz_chunked(const char *buf, size_t len, size_t step, size_t *body)
{
	struct h1_chunked c = {0};
	size_t off = 0, avail = 0;
	int rc = 0;

	*body = 0;
	while (rc == 0 && off < len) {
		const char *data;
		size_t used, dlen;

		avail = avail + step > len - off ? len - off : avail + step;
		rc = h1_chunked_step(&c, buf + off, avail, &used, &data, &dlen);
		if (used > avail || (dlen && (data < buf + off || data + dlen > buf + off + used)))
			abort();
		*body += dlen;
		off += used;
		avail -= used;
		if (!used && avail == len - off)
			break; /* needs more than there is */
	}
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct h1_head *h = malloc(sizeof(*h));
	size_t a, b;
	int n;

	if (!h)
		return 0;
	fz_head(H1_RESPONSE, buf, size, h);
	fz_head(H1_REQUEST, buf, size, h);
	n = h1_head_parse(H1_REQUEST, buf, size, h);
	if (n > 0) {
		int r1 = fz_chunked(buf + n, size - (size_t)n, size, &a);
		int r2 = fz_chunked(buf + n, size - (size_t)n, 1, &b);

		if ((r1 < 0) != (r2 < 0) || (r1 == 1 && (r2 != 1 || a != b)))
			abort(); /* the verdict must not depend on how the bytes arrive */
	}
	free(h);
	return 0;
}
