// SPDX-License-Identifier: Apache-2.0
/*
 * Downstream side of the waypoint: each inbound CONNECT stream (authority = the service VIP:
 * port the client dialed) is classified by its first bytes (an HTTP/1.x request line, else
 * plain TCP), then its requests are parsed one at a time with http_parser, refused when
 * malformed (400 and close: bad request line, conflicting Content-Length, Content-Length with
 * Transfer-Encoding, heads over WP_MAX_HEAD), authorized (AuthorizationPolicy: 403 "RBAC:
 * access denied"), routed (VirtualService: redirect, direct response, fault abort/delay,
 * weighted destination, rewrite, header operations) and forwarded to an endpoint pod chosen
 * by DestinationRule subset and load-balancer policy (pick.c), skipping ejected outliers. Requests
 * on one stream are answered in order; a pipelined request waits in the input queue.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "h2.h"

/* ---- byte queues ---- */

size_t wp_q_size(const struct wp_q *q)
{
	return q->len - q->off;
}

int wp_q_put(struct wp_q *q, const void *buf, size_t len)
{
	if (!len)
		return 0;
	if (q->off && q->off == q->len)
		q->off = q->len = 0;
	if (q->len + len > q->cap) {
		size_t live = q->len - q->off, cap = q->cap ? q->cap : 1024;
		char *p;

		if (q->off) { /* compact first */
			memmove(q->p, q->p + q->off, live);
			q->off = 0;
			q->len = live;
		}
		while (cap < live + len)
			cap *= 2;
		if (cap > q->cap) {
			p = realloc(q->p, cap);
			if (!p)
				return -ENOMEM;
			q->p = p;
			q->cap = cap;
		}
	}
	memcpy(q->p + q->len, buf, len);
	q->len += len;
	q->total += len;
	return 0;
}

int wp_q_printf(struct wp_q *q, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -ENOSPC;
	return wp_q_put(q, buf, (size_t)n);
}

void wp_q_drop(struct wp_q *q, size_t n)
{
	q->off += n;
	if (q->off >= q->len)
		q->off = q->len = 0;
}

void wp_q_free(struct wp_q *q)
{
	free(q->p);
	*q = (struct wp_q){0};
}

int wp_q_flush(struct wp_q *q, struct hb_stream *s)
{
	while (wp_q_size(q)) {
		ssize_t n = hb_stream_write(s, q->p + q->off, wp_q_size(q));

		if (n < 0)
			return (int)n;
		if (!n)
			break;
		wp_q_drop(q, (size_t)n);
	}
	return 0;
}

/* ---- heads ---- */

bool wp_hop_header(const char *n)
{
	static const char *const hop[] = {
	    "connection",	 "keep-alive", "proxy-connection", "te",   "trailer",
	    "transfer-encoding", "upgrade",    "content-length",   "host", NULL};
	size_t i;

	for (i = 0; hop[i]; i++)
		if (!strcmp(hop[i], n))
			return true;
	return false;
}

void wp_head_free(struct wp_head *h)
{
	free(h->buf);
	memset(h, 0, sizeof(*h));
}

static char *wp_trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/*
 * Split a head that http_parser already accepted. Refuses (-EINVAL) folded lines and more
 * than WP_MAX_HEADERS fields (http_parser lets both through).
 */
int wp_head_parse(struct wp_head *h, const char *raw, size_t len, bool request)
{
	char *line, *next, *sp;
	int i;

	memset(h, 0, sizeof(*h));
	h->buf = malloc(len + 1);
	if (!h->buf)
		return -ENOMEM;
	memcpy(h->buf, raw, len);
	h->buf[len] = '\0';
	line = h->buf;
	next = strchr(line, '\n');
	if (!next)
		return -EINVAL;
	*next++ = '\0';
	wp_trim(line);
	for (i = 0; i < 3; i++) {
		h->start[i] = line;
		sp = i < 2 ? strchr(line, ' ') : NULL;
		if (sp) {
			*sp = '\0';
			line = sp + 1;
		} else if (i < 2 && (request || i == 0)) {
			return -EINVAL;
		} else {
			line += strlen(line);
		}
	}
	for (line = next; line && *line; line = next) {
		char *colon, *c;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (*line == '\r' || !*line)
			break;
		if (*line == ' ' || *line == '\t' || h->n == WP_MAX_HEADERS)
			return -EINVAL;
		colon = strchr(line, ':');
		if (!colon)
			return -EINVAL;
		*colon = '\0';
		for (c = line; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');
		h->h[h->n].name = line;
		h->h[h->n].value = wp_trim(colon + 1);
		h->n++;
	}
	return 0;
}

static const char *wp_head_get(const struct wp_head *h, const char *name)
{
	size_t i;

	for (i = 0; i < h->n; i++)
		if (!strcmp(h->h[i].name, name))
			return h->h[i].value;
	return NULL;
}

static size_t wp_head_count(const struct wp_head *h, const char *name)
{
	size_t i, n = 0;

	for (i = 0; i < h->n; i++)
		n += !strcmp(h->h[i].name, name);
	return n;
}

/* ---- downstream output ---- */

void wp_ds_flush(struct wp_ds *ds)
{
	if (!ds->st)
		return;
	if (wp_q_flush(&ds->out, ds->st) < 0)
		return;
	if (!wp_q_size(&ds->out) && ds->close_after && ds->rq == WP_RQ_HEAD && !ds->shut) {
		ds->shut = true;
		hb_stream_shutdown(ds->st);
	}
}

static const char *wp_reason(unsigned int code)
{
	switch (code) {
	case 200:
		return "OK";
	case 301:
		return "Moved Permanently";
	case 302:
		return "Found";
	case 400:
		return "Bad Request";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 418:
		return "I'm a teapot";
	case 500:
		return "Internal Server Error";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	default:
		return "Status";
	}
}

void wp_ds_reply(struct wp_ds *ds, unsigned int code, const char *flags, const char *body,
		 bool close_conn, const char *extra)
{
	size_t blen = body ? strlen(body) : 0;

	ds->status = code;
	snprintf(ds->flags, sizeof(ds->flags), "%s", flags ? flags : "-");
	ds->resp_started = true;
	if (close_conn)
		ds->close_after = true;
	wp_q_printf(&ds->out,
		    "HTTP/1.1 %u %s\r\ncontent-length: %zu\r\ncontent-type: text/plain\r\n"
		    "server: zmesh-waypoint\r\n%s%s\r\n",
		    code, wp_reason(code), blen, extra ? extra : "",
		    ds->close_after ? "connection: close\r\n" : "");
	wp_q_put(&ds->out, body, blen);
	ds->rq = WP_RQ_LOCAL;
	wp_ds_flush(ds);
}

/* ---- request parsing ---- */

static int wp_rq_on_begin(http_parser *p)
{
	struct wp_ds *ds = p->data;

	ds->head_done = ds->msg_done = false;
	return 0;
}

static void wp_upq_put(struct wp_ds *ds, const void *buf, size_t len)
{
	wp_q_put(&ds->upq, buf, len);
	if (ds->copy_ok && wp_q_size(&ds->copy) + len <= WP_RETRY_COPY_MAX)
		wp_q_put(&ds->copy, buf, len);
	else
		ds->copy_ok = false;
}

static int wp_rq_on_body(http_parser *p, const char *at, size_t len)
{
	struct wp_ds *ds = p->data;
	char hdr[32];

	if (ds->rq == WP_RQ_LOCAL || !len)
		return 0;
	if (ds->chunked) {
		snprintf(hdr, sizeof(hdr), "%zx\r\n", len);
		wp_upq_put(ds, hdr, strlen(hdr));
	}
	wp_upq_put(ds, at, len);
	if (ds->chunked)
		wp_upq_put(ds, "\r\n", 2);
	return 0;
}

static int wp_rq_on_complete(http_parser *p)
{
	struct wp_ds *ds = p->data;

	ds->msg_done = true;
	ds->keepalive = http_should_keep_alive(p);
	if (ds->chunked && ds->rq != WP_RQ_LOCAL)
		wp_upq_put(ds, "0\r\n\r\n", 5);
	/* One request at a time: the next one waits in the input queue. */
	http_parser_pause(p, 1);
	return 0;
}

void wp_route_request(struct wp_ds *ds);

static int wp_rq_on_headers(http_parser *p)
{
	struct wp_ds *ds = p->data;
	const char *end = NULL, *raw = ds->in.p + ds->in.off;
	size_t i, avail = wp_q_size(&ds->in);

	/* The head is the input up to its blank line (the parser has just seen it). */
	for (i = 0; i + 1 < avail; i++) {
		if (raw[i] == '\n' && (raw[i + 1] == '\n' || (raw[i + 1] == '\r' && i + 2 < avail &&
							      raw[i + 2] == '\n'))) {
			end = raw + i + 1;
			break;
		}
	}
	if (!end || wp_head_parse(&ds->req, raw, (size_t)(end - raw), true)) {
		ds->bad = true;
		return -1;
	}
	if (wp_head_count(&ds->req, "content-length") > 1 ||
	    (wp_head_get(&ds->req, "content-length") &&
	     wp_head_get(&ds->req, "transfer-encoding"))) {
		/* Request smuggling guards: never guess which framing a peer will believe. */
		ds->bad = true;
		return -1;
	}
	ds->head_done = true;
	ds->chunked = p->flags & F_CHUNKED;
	ds->keepalive = http_should_keep_alive(p);
	wp_route_request(ds);
	return 0;
}

static const http_parser_settings wp_rq_settings = {
    .on_message_begin = wp_rq_on_begin,
    .on_headers_complete = wp_rq_on_headers,
    .on_body = wp_rq_on_body,
    .on_message_complete = wp_rq_on_complete,
};

/* Log, count and reset for the next request. */
static void wp_ds_log_request(struct wp_ds *ds)
{
	struct wp *wp = ds->w->wp;
	uint64_t dur = ds->w->loop->now_ms - ds->start_ms;
	char dst_id[ZM_SPIFFE_ID_MAX] = "";
	const char *wl_name = NULL;
	struct wp_mreq mr;

	if (ds->ep_wl)
		wl_name = ds->ep_wl->workload_name && ds->ep_wl->workload_name[0]
			      ? ds->ep_wl->workload_name
			      : ds->ep_wl->name;
	if (ds->ep_wl)
		zm_cfg_workload_identity(ds->ep_wl, dst_id, sizeof(dst_id));
	mr = (struct wp_mreq){
	    .src_principal = ds->peer,
	    .dst_principal = zm_spiffe_principal(dst_id),
	    .src = ds->src_wl,
	    .dst = ds->ep_wl,
	    .dst_workload = wl_name,
	    .svc = ds->svc,
	    .code = ds->status,
	    .flags = ds->flags,
	    .duration_ms = dur,
	    .request_bytes = ds->req_bytes,
	    .response_bytes = ds->out.total - ds->resp_mark,
	    .method = ds->req.start[0],
	    .path = ds->req.start[1],
	    .authority = ds->authority,
	    .route = ds->route ? ds->route->name : NULL,
	    .upstream = ds->ep_key,
	    .upstream_name = ds->ep_name,
	    .request_id = ds->request_id,
	    .version = "HTTP/1.1",
	};
	wp_request_finish(wp, &mr);
}

/*
 * The upstream answered an Upgrade (WebSocket) request with 101: the request is logged as
 * answered, and from now on the stream's bytes are relayed both ways unchanged, as TCP.
 */
void wp_ds_upgraded(struct wp_ds *ds)
{
	wp_ds_log_request(ds);
	wp_ds_pool_release(ds);
	wp_q_free(&ds->upq);
	wp_q_free(&ds->copy);
	ds->mode = WP_DS_TCP;
	ds->rq = WP_RQ_HEAD;
	ds->deadline_ms = ds->try_deadline_ms = 0;
	ds->up->tcp = true;
	wp_ds_flush(ds);
	wp_up_send(ds->up);
}

void wp_ds_request_done(struct wp_ds *ds)
{
	wp_ds_log_request(ds);
	wp_ds_pool_release(ds);
	if (!ds->mirrored)
		wp_ds_mirror(ds);
	if (ds->up)
		wp_up_detach(ds->up, ds->keepalive && !ds->close_after);
	if (!ds->keepalive)
		ds->close_after = true;
	wp_head_free(&ds->req);
	wp_q_free(&ds->upq);
	wp_q_free(&ds->copy);
	ds->rq = WP_RQ_HEAD;
	ds->head_done = ds->msg_done = ds->resp_started = ds->resp_chunked = false;
	ds->route = NULL;
	ds->dest = NULL;
	ds->status = 0;
	ds->ep_key[0] = '\0';
	ds->ep_name = NULL;
	ds->ep_wl = NULL;
	ds->request_id[0] = '\0';
	ds->req_bytes = 0;
	ds->resp_mark = ds->out.total;
	ds->mirrored = false;
	ds->attempts = 0;
	ds->deadline_ms = ds->delay_until_ms = ds->try_deadline_ms = 0;
	ds->parsed = 0;
	http_parser_init(&ds->p, HTTP_REQUEST);
	ds->p.data = ds;
	wp_ds_flush(ds);
}

/*
 * Feed the parser. Until the head is complete its bytes stay queued (on_headers_complete
 * copies the head from there); ds->parsed counts those already fed. Returns false when the
 * stream must stop (a bad request was answered).
 */
static bool wp_ds_parse(struct wp_ds *ds)
{
	size_t avail = wp_q_size(&ds->in) - ds->parsed, n;

	if (!avail)
		return true;
	if (ds->rq == WP_RQ_HEAD && !ds->head_done && !ds->parsed)
		ds->start_ms = ds->w->loop->now_ms;
	n = http_parser_execute(&ds->p, &wp_rq_settings, ds->in.p + ds->in.off + ds->parsed, avail);
	ds->req_bytes += n;
	if (HTTP_PARSER_ERRNO(&ds->p) != HPE_OK && HTTP_PARSER_ERRNO(&ds->p) != HPE_PAUSED)
		ds->bad = true;
	else if (ds->p.upgrade && ds->rq == WP_RQ_LOCAL)
		ds->close_after = true; /* answered here (403, redirect...): no upgrade follows */
	else if (ds->p.upgrade && !ds->upgrade)
		ds->bad = true; /* CONNECT, or an Upgrade other than WebSocket */
	if (!ds->bad && !ds->head_done) {
		ds->parsed += n;
		if (ds->parsed <= WP_MAX_HEAD)
			return true;
		ds->bad = true;
	}
	if (ds->bad) {
		if (ds->up)
			wp_up_detach(ds->up, false);
		ds->up = NULL;
		ds->close_after = true;
		wp_q_free(&ds->in);
		ds->parsed = 0;
		if (!ds->resp_started)
			wp_ds_reply(ds, 400, "DPE", "bad request\n", true, NULL);
		ds->rq = WP_RQ_HEAD;
		wp_ds_flush(ds);
		return false;
	}
	wp_q_drop(&ds->in, ds->parsed + n);
	ds->parsed = 0;
	return true;
}

static void wp_ds_detect(struct wp_ds *ds)
{
	const char *s = ds->in.p + ds->in.off;
	size_t n = wp_q_size(&ds->in), i;

	/*
	 * The HTTP/2 connection preface (h2c with prior knowledge, as gRPC clients send) also
	 * starts like a request line, "PRI * HTTP/2.0": it makes the stream an HTTP/2 one.
	 */
	static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

	if (!memcmp(s, h2_preface, n < sizeof(h2_preface) - 1 ? n : sizeof(h2_preface) - 1)) {
		if (n < sizeof(h2_preface) - 1 && !ds->in_eof)
			return; /* too little yet */
		if (wp_h2_preface(s, n)) {
			ds->mode = WP_DS_H2;
			return;
		}
	}
	/* A request line starts with an upper-case method token and a space. */
	for (i = 0; i < n && i < 20; i++) {
		if (s[i] == ' ' && i > 0) {
			ds->mode = WP_DS_HTTP;
			wp_metric_stream(ds->w->wp, WP_STREAM_HTTP);
			return;
		}
		if (s[i] < 'A' || s[i] > 'Z')
			break;
	}
	if ((i == n && i < 20 && !ds->in_eof) || !n)
		return; /* too little yet */
	ds->mode = WP_DS_TCP;
	wp_metric_stream(ds->w->wp, WP_STREAM_TCP);
}

void wp_ds_tcp_start(struct wp_ds *ds);

void wp_ds_process(struct wp_ds *ds)
{
	int guard;

	if (!ds->st)
		return;
	if (ds->mode == WP_DS_DETECT) {
		wp_ds_detect(ds);
		if (ds->mode == WP_DS_TCP)
			wp_ds_tcp_start(ds);
		if (ds->mode == WP_DS_H2 && wp_h2d_start(ds)) {
			hb_stream_reset(ds->st, HB_ERR_INTERNAL);
			return;
		}
		if (ds->mode != WP_DS_HTTP)
			return;
	}
	if (ds->mode == WP_DS_TCP) {
		if (ds->up)
			wp_up_send(ds->up);
		return;
	}
	for (guard = 0; guard < 64 && ds->st; guard++) {
		if (ds->close_after && ds->rq == WP_RQ_HEAD)
			return; /* no more requests on a closing stream */
		if (wp_q_size(&ds->upq) < WP_IN_HIGH && !ds->msg_done && !wp_ds_parse(ds))
			return;
		if (ds->rq == WP_RQ_UPSTREAM && ds->up)
			wp_up_send(ds->up);
		else if (ds->rq == WP_RQ_UPSTREAM && ds->head_done)
			wp_ds_dispatch_upstream(ds);
		if (ds->rq == WP_RQ_LOCAL && ds->msg_done) {
			wp_ds_request_done(ds);
			if (wp_q_size(&ds->in))
				continue;
		}
		break;
	}
	if (ds->st && ds->in_eof && ds->rq == WP_RQ_HEAD && !ds->head_done && !ds->shut) {
		ds->close_after = true;
		wp_ds_flush(ds);
	}
	if (ds->st && ds->input_paused && wp_q_size(&ds->in) < WP_IN_HIGH) {
		ds->input_paused = false;
		hb_stream_resume(ds->st);
	}
}
