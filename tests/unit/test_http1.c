// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of the strict HTTP/1.1 parser (userspace/lib/http1): a table of request and
 * response heads, each with the verdict the parser must give (the head's length, "need more",
 * or the refusal and the status a server answers it with), including every form request
 * smuggling is built on (whitespace before the colon, obs-fold, bare LF, CL.TE and TE.CL,
 * conflicting lengths, a second Host); the framing a valid head implies; the fields that are
 * hop-by-hop (listed, or nominated by Connection); and chunked bodies fed whole and one byte
 * at a time.
 */
#include <string.h>

#include "../lib/tap.h"
#include "http1/http1.h"

struct head_case {
	const char *name, *bytes;
	int want; /* > 0: complete (that is the length); 0: need more; < 0: -H1_E_* */
	int check;
};

#define COMPLETE 1

static const struct head_case requests[] = {
    {"simple GET", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", COMPLETE, 0},
    {"HTTP/1.0 without Host", "GET /x HTTP/1.0\r\n\r\n", COMPLETE, 0},
    {"absolute form", "GET http://a/b?c HTTP/1.1\r\nHost: a\r\n\r\n", COMPLETE, 0},
    {"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", COMPLETE, 0},
    {"token chars in a name", "GET / HTTP/1.1\r\nHost: a\r\na!#$%&'*+-.^_`|~z: why\r\n\r\n",
     COMPLETE, 0},
    {"empty value", "GET / HTTP/1.1\r\nHost: a\r\nx-e:\r\n\r\n", COMPLETE, 0},
    {"incomplete", "GET / HTTP/1.1\r\nHost: a\r\n", 0, 0},
    {"incomplete line", "GET / HTT", 0, 0},
    {"space before colon", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n", -H1_E_NAME,
     0},
    {"tab before colon", "GET / HTTP/1.1\r\nHost: a\r\nx-a\t: 5\r\n\r\n", -H1_E_NAME, 0},
    {"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nx-a: 1\r\n 2\r\n\r\n", -H1_E_FOLD, 0},
    {"bare LF", "GET / HTTP/1.1\nHost: a\n\n", -H1_E_CRLF, 0},
    {"bare CR in a value", "GET / HTTP/1.1\r\nHost: a\r\nx: a\rb\r\n\r\n", -H1_E_CRLF, 0},
    {"NUL in a value", "GET / HTTP/1.1\r\nHost: a\r\nx: a\001b\r\n\r\n", -H1_E_VALUE, 0},
    {"no colon", "GET / HTTP/1.1\r\nHost: a\r\nnocolon\r\n\r\n", -H1_E_NAME, 0},
    {"empty name", "GET / HTTP/1.1\r\n: v\r\n\r\n", -H1_E_NAME, 0},
    {"HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", -H1_E_VERSION, 0},
    {"HTTP/0.9", "GET /\r\n\r\n", -H1_E_LINE, 0},
    {"two spaces", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", -H1_E_LINE, 0},
    {"method not a token", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", -H1_E_METHOD, 0},
    {"target not origin form", "GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", -H1_E_TARGET, 0},
    {"CL.TE",
     "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
     COMPLETE, -H1_E_CL_TE},
    {"TE.CL",
     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n",
     COMPLETE, -H1_E_CL_TE},
    {"conflicting lengths",
     "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", COMPLETE,
     -H1_E_CL},
    {"length list that disagrees", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 2\r\n\r\n",
     COMPLETE, -H1_E_CL},
    {"same length twice",
     "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", COMPLETE, 0},
    {"signed length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\n", COMPLETE,
     -H1_E_CL},
    {"TE gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", COMPLETE,
     -H1_E_TE},
    {"TE twice",
     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
     "chunked\r\n\r\n",
     COMPLETE, -H1_E_TE},
    {"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", COMPLETE, -H1_E_TE},
    {"duplicate Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", COMPLETE, -H1_E_HOST},
    {"missing Host", "GET / HTTP/1.1\r\n\r\n", COMPLETE, -H1_E_HOST},
};

static void test_request_heads(void)
{
	size_t i;

	for (i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
		const struct head_case *c = &requests[i];
		struct h1_head h;
		struct h1_msg m;
		int n = h1_head_parse(H1_REQUEST, c->bytes, strlen(c->bytes), &h);

		if (c->want == COMPLETE)
			is_int(n, strlen(c->bytes), "request %s: complete", c->name);
		else
			is_int(n, c->want, "request %s: %s", c->name, h1_err_str(c->want));
		if (n > 0)
			is_int(h1_msg_check(H1_REQUEST, &h, &m), c->check, "request %s: framing %s",
			       c->name, h1_err_str(c->check));
	}
}

static void test_limits(void)
{
	static char big[H1_MAX_HEAD + 64];
	struct h1_head h;
	size_t n;
	int r;

	/* A head of exactly H1_MAX_HEAD bytes passes; one byte more does not. */
	strcpy(big, "GET / HTTP/1.1\r\nHost: a\r\nx: ");
	n = strlen(big);
	memset(big + n, 'a', H1_MAX_HEAD - n - 4);
	memcpy(big + H1_MAX_HEAD - 4, "\r\n\r\n", 4);
	is_int(h1_head_parse(H1_REQUEST, big, H1_MAX_HEAD, &h), H1_MAX_HEAD,
	       "a head of exactly %u bytes is accepted", H1_MAX_HEAD);
	memset(big + n, 'a', H1_MAX_HEAD - n - 3);
	memcpy(big + H1_MAX_HEAD - 3, "\r\n\r\n", 4);
	r = h1_head_parse(H1_REQUEST, big, H1_MAX_HEAD + 1, &h);
	is_int(r, -H1_E_TOO_LARGE, "one byte more is refused");
	is_int(h1_err_status(r), 431, "with 431, as Envoy answers");
	r = h1_head_parse(H1_REQUEST, big, H1_MAX_HEAD - 10, &h);
	is_int(r, 0, "an incomplete head under the limit waits for more");

	/* Field count */
	strcpy(big, "GET / HTTP/1.1\r\n");
	for (n = 0; n <= H1_MAX_FIELDS; n++)
		strcat(big, "x: 1\r\n");
	strcat(big, "\r\n");
	is_int(h1_head_parse(H1_REQUEST, big, strlen(big), &h), -H1_E_TOO_MANY,
	       "more than %u fields refused", H1_MAX_FIELDS);
}

static void test_framing(void)
{
	static const char req[] =
	    "POST /x HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret\r\n"
	    "X-Secret: s\r\nKeep-Alive: 5\r\nContent-Length: 7\r\nX-Ok: 1\r\n"
	    "Expect: 100-continue\r\n\r\n";
	static const char ws[] = "GET /c HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
				 "Upgrade: websocket\r\n\r\n";
	static const char resp[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
				   "Connection: close\r\n\r\n";
	struct h1_head h;
	struct h1_msg m;
	size_t i;

	ok(h1_head_parse(H1_REQUEST, req, strlen(req), &h) > 0, "request head parsed");
	is_int(h1_msg_check(H1_REQUEST, &h, &m), 0, "framing valid");
	is_int(m.content_length, 7, "Content-Length 7");
	ok(!m.chunked && !m.close && m.expect_continue, "not chunked, keep-alive, expects 100");
	is_int(m.host, 0, "Host is field 0");
	for (i = 0; i < h.n; i++) {
		bool hop = h1_hop_by_hop(&h, i);

		if (h1_name_is(h.f[i].name, "x-secret"))
			ok(hop, "X-Secret, nominated by Connection, is hop-by-hop");
		if (h1_name_is(h.f[i].name, "x-ok"))
			ok(!hop, "X-Ok is end-to-end");
		if (h1_name_is(h.f[i].name, "keep-alive"))
			ok(hop, "Keep-Alive is hop-by-hop");
	}
	ok(h1_head_parse(H1_REQUEST, ws, strlen(ws), &h) > 0 && !h1_msg_check(H1_REQUEST, &h, &m) &&
	       m.upgrade && m.upgrade_websocket,
	   "WebSocket upgrade recognized");
	ok(h1_head_parse(H1_RESPONSE, resp, strlen(resp), &h) > 0, "response head parsed");
	is_int(h.status, 200, "status 200");
	ok(!h1_msg_check(H1_RESPONSE, &h, &m) && m.chunked && m.close, "chunked, then close");
	ok(h1_head_parse(H1_RESPONSE, "HTTP/1.1 204\r\n\r\n", 16, &h) == 16 && h.status == 204,
	   "a status line without a reason phrase");
	ok(h1_head_parse(H1_RESPONSE, "HTTP/1.1 2000 OK\r\n\r\n", 20, &h) < 0,
	   "a four-digit status refused");
	ok(!h1_resp_has_body("HEAD", 200) && !h1_resp_has_body("GET", 304) &&
	       !h1_resp_has_body("GET", 204) && h1_resp_has_body("GET", 200),
	   "HEAD, 204 and 304 have no body");
}

/* Decode body with steps of at most step bytes; returns the body or NULL on error. */
static const char *chunked(const char *body, size_t step, int *rc)
{
	static char out[256];
	struct h1_chunked c = {0};
	size_t len = strlen(body), off = 0, avail = 0, o = 0;

	*rc = 0;
	while (*rc == 0) {
		const char *data;
		size_t used, dlen;

		avail = avail + step > len - off ? len - off : avail + step;
		*rc = h1_chunked_step(&c, body + off, avail, &used, &data, &dlen);
		if (*rc < 0)
			return NULL;
		if (dlen)
			memcpy(out + o, data, dlen);
		o += dlen;
		off += used;
		avail -= used;
		if (!used && off + avail == len && *rc == 0)
			return NULL; /* stuck: needs bytes that never come */
	}
	out[o] = '\0';
	return out;
}

static void test_chunked(void)
{
	static const char *const bad[] = {
	    "5\r\nhello\r\nx\r\n",	   /* not hex */
	    "5\nhello\r\n0\r\n\r\n",	   /* bare LF */
	    "5\r\nhelloXX0\r\n\r\n",	   /* data not followed by CRLF */
	    "fffffffffffffffff\r\n",	   /* size overflow */
	    "0\r\nx-t : 1\r\n\r\n",	   /* bad trailer field */
	    "5 \r\nhello\r\n0\r\n\r\n hi", /* fine up to the end; see below */
	};
	const char *got;
	int rc;
	size_t i;

	got = chunked("5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nx-t: 1\r\n\r\n", 1000, &rc);
	ok(got && rc == 1 && !strcmp(got, "hello world"),
	   "chunked body with extension and trailer");
	got = chunked("5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n", 1, &rc);
	ok(got && rc == 1 && !strcmp(got, "hello world"), "the same body one byte at a time");
	for (i = 0; i < 5; i++) {
		got = chunked(bad[i], 1000, &rc);
		ok(!got && rc == -H1_E_CHUNK, "malformed chunked body %zu refused", i);
	}
}

int main(void)
{
	test_request_heads();
	test_limits();
	test_framing();
	test_chunked();
	return tap_done();
}
