// SPDX-License-Identifier: Apache-2.0
/*
 * The strict HTTP/1.1 parser of http1.h: message heads (RFC 9112 sections 2-5), the framing
 * and connection fields (sections 6-9) and chunked bodies (section 7.1). Lines end in CRLF
 * only; every byte of a head is checked against the grammar, so a head accepted here has one
 * reading. The tolerances RFC 9112 allows a recipient (bare LF, whitespace before the colon,
 * obs-fold) are exactly the ones request smuggling is built on, and a proxy that
 * re-serializes gains nothing from them, so none is taken.
 */
#include <string.h>
#include <strings.h>

#include "http1/http1.h"

#define H1_ERR_TEXT(name, code, text) text,
static const char *const h1_err_text[] = {H1_ERRORS(H1_ERR_TEXT)};
#undef H1_ERR_TEXT
#define H1_ERR_CODE(name, code, text) code,
static const unsigned short h1_err_code[] = {H1_ERRORS(H1_ERR_CODE)};
#undef H1_ERR_CODE

const char *h1_err_str(int err)
{
	if (err < 0)
		err = -err;
	return err < H1_E_COUNT ? h1_err_text[err] : "unknown error";
}

unsigned int h1_err_status(int err)
{
	if (err < 0)
		err = -err;
	return err < H1_E_COUNT ? h1_err_code[err] : 400;
}

/* tchar of RFC 9110 5.6.2 */
static bool h1_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c);
}

/* field-vchar, SP, HTAB (obs-text included): no NUL, CR, LF or other control bytes. */
static bool h1_value_char(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

bool h1_name_is(struct h1_span s, const char *lower)
{
	size_t n = strlen(lower);

	return s.len == n && !strncasecmp(s.p, lower, n);
}

/* The line starting at p (before end): its length without CRLF, or -1 need more, -2 bad. */
static long h1_line(const char *p, const char *end)
{
	const char *q;

	for (q = p; q < end; q++) {
		if (*q == '\n')
			return -2; /* bare LF */
		if (*q == '\r') {
			if (q + 1 == end)
				return -1;
			return q[1] == '\n' ? q - p : -2;
		}
	}
	return -1;
}

static int h1_version(const char *p, size_t len, unsigned int *minor)
{
	if (len != 8 || memcmp(p, "HTTP/1.", 7) || (p[7] != '0' && p[7] != '1'))
		return -H1_E_VERSION;
	*minor = (unsigned int)(p[7] - '0');
	return 0;
}

static int h1_request_line(const char *p, size_t len, struct h1_head *h)
{
	const char *sp1 = memchr(p, ' ', len), *sp2, *end = p + len, *c;

	if (!sp1 || sp1 == p)
		return -H1_E_LINE;
	for (c = p; c < sp1; c++)
		if (!h1_tchar((unsigned char)*c))
			return -H1_E_METHOD;
	sp2 = memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1));
	if (!sp2 || sp2 == sp1 + 1)
		return -H1_E_LINE;
	for (c = sp1 + 1; c < sp2; c++)
		if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
			return -H1_E_TARGET;
	h->method = (struct h1_span){p, (size_t)(sp1 - p)};
	h->target = (struct h1_span){sp1 + 1, (size_t)(sp2 - sp1 - 1)};
	/* origin-form, absolute-form, asterisk-form; authority-form is CONNECT's, refused later */
	if (h->target.p[0] != '/' && h->target.p[0] != '*' &&
	    !(h->target.len > 7 && !strncasecmp(h->target.p, "http://", 7)) &&
	    !(h->target.len > 8 && !strncasecmp(h->target.p, "https://", 8)) &&
	    !h1_name_is(h->method, "connect"))
		return -H1_E_TARGET;
	if (h->target.p[0] == '*' && h->target.len != 1)
		return -H1_E_TARGET;
	return h1_version(sp2 + 1, (size_t)(end - sp2 - 1), &h->minor);
}

static int h1_status_line(const char *p, size_t len, struct h1_head *h)
{
	int r;

	if (len < 12 || p[8] != ' ')
		return -H1_E_LINE;
	r = h1_version(p, 8, &h->minor);
	if (r)
		return r;
	if (p[9] < '1' || p[9] > '9' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9')
		return -H1_E_STATUS;
	h->status = (unsigned int)((p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0'));
	if (len > 12 && p[12] != ' ')
		return -H1_E_STATUS;
	h->reason = (struct h1_span){p + (len > 12 ? 13 : 12), len > 12 ? len - 13 : 0};
	for (size_t i = 0; i < h->reason.len; i++)
		if (!h1_value_char((unsigned char)h->reason.p[i]))
			return -H1_E_LINE;
	return 0;
}

/* One field line (without CRLF) into f. */
static int h1_field_line(const char *p, size_t len, struct h1_field *f)
{
	const char *colon = memchr(p, ':', len), *v, *e, *c;

	if (len && (p[0] == ' ' || p[0] == '\t'))
		return -H1_E_FOLD;
	if (!colon || colon == p)
		return -H1_E_NAME;
	for (c = p; c < colon; c++)
		if (!h1_tchar((unsigned char)*c))
			return -H1_E_NAME; /* "Content-Length : 5" ends here */
	for (c = colon + 1; c < p + len; c++)
		if (!h1_value_char((unsigned char)*c))
			return -H1_E_VALUE;
	v = colon + 1;
	e = p + len;
	while (v < e && (*v == ' ' || *v == '\t'))
		v++;
	while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	f->name = (struct h1_span){p, (size_t)(colon - p)};
	f->value = (struct h1_span){v, (size_t)(e - v)};
	return 0;
}

int h1_head_parse(enum h1_kind kind, const char *buf, size_t len, struct h1_head *h)
{
	const char *p = buf, *end = buf + (len > H1_MAX_HEAD ? H1_MAX_HEAD : len);
	long n;
	int r;

	memset(h, 0, offsetof(struct h1_head, f));
	h->n = 0;
	/* RFC 9112 2.2: empty lines before a request line may be ignored; a proxy need not. */
	n = h1_line(p, end);
	if (n == -1)
		return len >= H1_MAX_HEAD ? -H1_E_TOO_LARGE : 0;
	if (n < 0)
		return -H1_E_CRLF;
	r = kind == H1_REQUEST ? h1_request_line(p, (size_t)n, h) : h1_status_line(p, (size_t)n, h);
	if (r)
		return r;
	p += n + 2;
	for (;;) {
		n = h1_line(p, end);
		if (n == -1)
			return len >= H1_MAX_HEAD ? -H1_E_TOO_LARGE : 0;
		if (n < 0)
			return -H1_E_CRLF;
		if (!n)
			break;
		if (h->n == H1_MAX_FIELDS)
			return -H1_E_TOO_MANY;
		r = h1_field_line(p, (size_t)n, &h->f[h->n]);
		if (r)
			return r;
		h->n++;
		p += n + 2;
	}
	h->len = (size_t)(p + 2 - buf);
	return (int)h->len;
}

/* Each comma-separated element of a field value, trimmed; fn returns false to stop. */
static bool h1_list_each(struct h1_span v, bool (*fn)(struct h1_span el, void *ud), void *ud)
{
	const char *p = v.p, *end = v.p + v.len;

	while (p <= end) {
		const char *c = memchr(p, ',', (size_t)(end - p)), *e = c ? c : end, *s = p;

		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (!fn((struct h1_span){s, (size_t)(e - s)}, ud))
			return false;
		if (!c)
			break;
		p = c + 1;
	}
	return true;
}

struct h1_cl_ctx {
	int64_t v;
	bool bad;
};

static bool h1_cl_el(struct h1_span el, void *ud)
{
	struct h1_cl_ctx *c = ud;
	int64_t x = 0;
	size_t i;

	if (!el.len || el.len > 15) {
		c->bad = true;
		return false;
	}
	for (i = 0; i < el.len; i++) {
		if (el.p[i] < '0' || el.p[i] > '9') {
			c->bad = true;
			return false;
		}
		x = x * 10 + (el.p[i] - '0');
	}
	if (c->v >= 0 && c->v != x)
		c->bad = true;
	c->v = x;
	return !c->bad;
}

struct h1_conn_ctx {
	struct h1_msg *m;
	bool upgrade, keep_alive;
};

static bool h1_conn_el(struct h1_span el, void *ud)
{
	struct h1_conn_ctx *c = ud;

	if (h1_name_is(el, "close"))
		c->m->close = true;
	else if (h1_name_is(el, "upgrade"))
		c->upgrade = true;
	else if (h1_name_is(el, "keep-alive"))
		c->keep_alive = true;
	return true;
}

int h1_msg_check(enum h1_kind kind, const struct h1_head *h, struct h1_msg *m)
{
	struct h1_cl_ctx cl = {.v = -1};
	struct h1_conn_ctx cc = {.m = m};
	bool te = false, ws = false, up = false;
	size_t i;

	*m = (struct h1_msg){.content_length = -1, .host = -1};
	for (i = 0; i < h->n; i++) {
		struct h1_span n = h->f[i].name, v = h->f[i].value;

		if (h1_name_is(n, "content-length")) {
			h1_list_each(v, h1_cl_el, &cl);
			if (cl.bad)
				return -H1_E_CL;
		} else if (h1_name_is(n, "transfer-encoding")) {
			/* Only a lone "chunked", once: any other coding is one we cannot frame. */
			if (te || !h1_name_is(v, "chunked"))
				return -H1_E_TE;
			te = true;
		} else if (h1_name_is(n, "host") && kind == H1_REQUEST) {
			if (m->host >= 0)
				return -H1_E_HOST;
			m->host = (int)i;
		} else if (h1_name_is(n, "connection")) {
			h1_list_each(v, h1_conn_el, &cc);
		} else if (h1_name_is(n, "upgrade")) {
			up = true;
			ws = h1_name_is(v, "websocket");
		} else if (h1_name_is(n, "expect") && kind == H1_REQUEST) {
			m->expect_continue = h1_name_is(v, "100-continue");
		}
	}
	if (te && cl.v >= 0)
		return -H1_E_CL_TE;
	if (te && h->minor == 0)
		return -H1_E_TE; /* HTTP/1.0 has no chunked coding */
	if (kind == H1_REQUEST && h->minor == 1 && m->host < 0)
		return -H1_E_HOST;
	m->content_length = cl.v;
	m->chunked = te;
	m->upgrade = cc.upgrade && up;
	m->upgrade_websocket = m->upgrade && ws;
	if (h->minor == 0 && !cc.keep_alive)
		m->close = true;
	return 0;
}

bool h1_resp_has_body(const char *req_method, unsigned int status)
{
	if (req_method && !strcmp(req_method, "HEAD"))
		return false;
	return !(status < 200 || status == 204 || status == 304);
}

struct h1_nom_ctx {
	struct h1_span name;
	bool hit;
};

static bool h1_nom_el(struct h1_span el, void *ud)
{
	struct h1_nom_ctx *c = ud;

	if (el.len == c->name.len && !strncasecmp(el.p, c->name.p, el.len))
		c->hit = true;
	return !c->hit;
}

bool h1_hop_by_hop(const struct h1_head *h, size_t i)
{
	static const char *const hop[] = {
	    "connection",	 "keep-alive", "proxy-connection",   "te", "trailer",
	    "transfer-encoding", "upgrade",    "proxy-authenticate", NULL};
	struct h1_nom_ctx c = {.name = h->f[i].name};
	size_t k;

	for (k = 0; hop[k]; k++)
		if (h1_name_is(c.name, hop[k]))
			return true;
	for (k = 0; k < h->n && !c.hit; k++)
		if (h1_name_is(h->f[k].name, "connection"))
			h1_list_each(h->f[k].value, h1_nom_el, &c);
	return c.hit;
}

/* ---- chunked ---- */

static int h1_chunk_size(struct h1_chunked *c, const char *p, size_t n)
{
	size_t i, digits = 0;
	uint64_t x = 0;

	for (i = 0; i < n; i++) {
		char ch = p[i];
		int d = ch >= '0' && ch <= '9'	 ? ch - '0'
			: ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
			: ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
						 : -1;

		if (d < 0)
			break;
		if (++digits > 15)
			return -H1_E_CHUNK; /* no size a 64-bit count cannot hold */
		x = x * 16 + (uint64_t)d;
	}
	if (!digits)
		return -H1_E_CHUNK;
	/* chunk-ext: BWS ";" BWS token [ "=" value ]: checked for bytes only, then ignored. */
	for (; i < n; i++)
		if (!h1_value_char((unsigned char)p[i]) ||
		    (i == digits && p[i] != ';' && p[i] != ' ' && p[i] != '\t'))
			return -H1_E_CHUNK;
	c->left = x;
	c->state = x ? H1_CH_DATA : H1_CH_TRAILER;
	return 0;
}

int h1_chunked_step(struct h1_chunked *c, const char *buf, size_t len, size_t *used,
		    const char **data, size_t *dlen)
{
	long n;

	*used = 0;
	*data = NULL;
	*dlen = 0;
	switch (c->state) {
	case H1_CH_SIZE:
		n = h1_line(buf, buf + len);
		if (n == -1)
			return len > H1_MAX_CHUNKLINE ? -H1_E_CHUNK : 0;
		if (n < 0 || n > H1_MAX_CHUNKLINE || h1_chunk_size(c, buf, (size_t)n))
			return -H1_E_CHUNK;
		*used = (size_t)n + 2;
		return 0;
	case H1_CH_DATA:
		*dlen = len < c->left ? len : (size_t)c->left;
		*data = buf;
		*used = *dlen;
		c->left -= *dlen;
		if (!c->left)
			c->state = H1_CH_DATA_CRLF;
		return 0;
	case H1_CH_DATA_CRLF:
		if (len < 2)
			return 0;
		if (buf[0] != '\r' || buf[1] != '\n')
			return -H1_E_CHUNK;
		*used = 2;
		c->state = H1_CH_SIZE;
		return 0;
	case H1_CH_TRAILER:
		n = h1_line(buf, buf + len);
		if (n == -1)
			return c->trailer_bytes + len > H1_MAX_HEAD ? -H1_E_CHUNK : 0;
		if (n < 0)
			return -H1_E_CHUNK;
		*used = (size_t)n + 2;
		c->trailer_bytes += *used;
		if (!n) {
			c->state = H1_CH_DONE;
			return 1;
		}
		{
			struct h1_field f;

			if (c->trailer_bytes > H1_MAX_HEAD || h1_field_line(buf, (size_t)n, &f))
				return -H1_E_CHUNK;
		}
		return 0;
	case H1_CH_DONE:
		return 1;
	}
	return -H1_E_CHUNK;
}
