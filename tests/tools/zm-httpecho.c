// SPDX-License-Identifier: Apache-2.0
/*
 * zm-httpecho: a small HTTP server for waypoint tests, speaking HTTP/1.1 and HTTP/2 cleartext
 * with prior knowledge on the same port. Answers every request with its pod name (--name, or
 * $POD_NAME), the request line ("request=METHOD TARGET HTTP/1.1", or "HTTP/2" for h2c) and
 * the headers it saw, one per line ("header=name: value"; for h2c the authority is shown as
 * a host header); keeps connections alive (HTTP/1.1 answers say "conn_req=N", the request's
 * number on its connection, so a test sees reuse); reads Content-Length and chunked bodies and
 * reports their size. The path /status/NNN answers with status NNN. One thread per connection.
 *
 * Per-request behaviour for timeout, retry, outlier and header tests, chosen by request
 * headers:
 *   x-echo-delay: MS     wait MS milliseconds before answering
 *   x-echo-status: NNN   answer with status NNN
 *   x-echo-fail: N       the first N requests carrying the same x-echo-key (default: the
 *                        request target) are answered 503; later ones normally
 *   x-echo-slow: N       limits x-echo-delay to the first N requests of the key
 *   x-echo-resp-header: NAME: VALUE   (repeated) adds that field to the response
 * --status NNN makes every request fail with NNN (a broken endpoint); --label k=v (repeated)
 * adds "label=k=v" lines; with --log every request is also logged to stdout as "seen POD
 * REQUEST-LINE host=HOST", so a test can check what reached the endpoint; --call IP:PORT/PATH
 * makes each request first GET that URL (HTTP/1.1) and report "call=STATUS" (an application
 * that calls another service; a failed call answers 503).
 *   zm-httpecho --port 9080 [--port 9081] --name reviews-v1 [--label app=reviews] [--status 503]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#define OUT_MAX 16384

static const char *pod_name = "unknown";
static const char *labels[16];
static int n_labels, fixed_status, log_requests;
static const char *call_url; /* "IP:PORT/PATH" */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* Failure counters by x-echo-key: how many requests of that key were failed so far. */
static struct {
	char key[128];
	long n;
} fails[256];

/* True while the request of key should still fail (the first limit requests). */
static int fail_next(const char *key, long limit)
{
	int i, hit = 0;

	pthread_mutex_lock(&lock);
	for (i = 0; i < 256; i++) {
		if (!fails[i].key[0])
			snprintf(fails[i].key, sizeof(fails[i].key), "%s", key);
		if (!strcmp(fails[i].key, key)) {
			hit = fails[i].n < limit;
			fails[i].n += hit;
			break;
		}
	}
	pthread_mutex_unlock(&lock);
	return hit;
}

/* One request, whatever protocol brought it. */
struct req {
	char method[32], target[1024], version[16], host[256];
	size_t target_len;     /* the whole target's, which target may hold only the start of */
	char hdrs[8][2][3072]; /* the x-echo-resp-header fields */
	int n_hdrs;
	char lines[OUT_MAX]; /* "header=..." lines */
	size_t lines_len;
	long delay_ms, fail_n, slow_n, body;
	int status;
	char key[128];
	int conn_req; /* this request's number on its connection (1 for the first) */
};

/* The answer. */
struct resp {
	int status;
	char body[OUT_MAX];
	size_t len;
};

static void req_header(struct req *q, const char *name, const char *value)
{
	if (q->lines_len < sizeof(q->lines) - 600)
		q->lines_len +=
		    (size_t)snprintf(q->lines + q->lines_len, sizeof(q->lines) - q->lines_len,
				     "header=%s: %s\n", name, value);
	if (!strcasecmp(name, "x-echo-delay"))
		q->delay_ms = atol(value);
	else if (!strcasecmp(name, "x-echo-status"))
		q->status = atoi(value);
	else if (!strcasecmp(name, "x-echo-fail"))
		q->fail_n = atol(value);
	else if (!strcasecmp(name, "x-echo-slow"))
		q->slow_n = atol(value);
	else if (!strcasecmp(name, "x-echo-key"))
		snprintf(q->key, sizeof(q->key), "%s", value);
	else if (!strcasecmp(name, "host"))
		snprintf(q->host, sizeof(q->host), "%s", value);
	else if (!strcasecmp(name, "x-echo-resp-header") && q->n_hdrs < 8) {
		const char *colon = strchr(value, ':');

		if (colon) {
			snprintf(q->hdrs[q->n_hdrs][0], sizeof(q->hdrs[0][0]), "%.*s",
				 (int)(colon - value), value);
			for (colon++; *colon == ' '; colon++)
				;
			snprintf(q->hdrs[q->n_hdrs][1], sizeof(q->hdrs[0][1]), "%s", colon);
			q->n_hdrs++;
		}
	}
}

static void req_init(struct req *q)
{
	memset(q, 0, sizeof(*q));
	q->status = fixed_status ? fixed_status : 200;
}

/* GET call_url over HTTP/1.1: the status, or -1. */
static int call_upstream(void)
{
	char ip[64], buf[4096], *slash, *colon;
	struct sockaddr_in a = {.sin_family = AF_INET};
	int fd, n, st = -1;
	size_t len = 0;
	struct pollfd p;

	snprintf(ip, sizeof(ip), "%s", call_url);
	slash = strchr(ip, '/');
	if (slash)
		*slash = '\0';
	colon = strchr(ip, ':');
	if (!colon)
		return -1;
	*colon = '\0';
	a.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, ip, &a.sin_addr) != 1)
		return -1;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	if (!connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		n = snprintf(buf, sizeof(buf),
			     "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
			     strchr(call_url, '/') ? strchr(call_url, '/') : "/", call_url);
		if (write(fd, buf, (size_t)n) == n) {
			p = (struct pollfd){.fd = fd, .events = POLLIN};
			while (len < sizeof(buf) - 1 && poll(&p, 1, 30000) > 0) {
				ssize_t r = read(fd, buf + len, sizeof(buf) - 1 - len);

				if (r <= 0)
					break;
				len += (size_t)r;
				buf[len] = '\0';
				if (strstr(buf, "\r\n"))
					break;
			}
			buf[len] = '\0';
			if (!strncmp(buf, "HTTP/1.", 7) && len > 12)
				st = atoi(buf + 9);
		}
	}
	close(fd);
	return st;
}

/* The echo answer to q (after its body was read: q->body). */
static void answer(struct req *q, struct resp *a)
{
	size_t o = 0;
	char *p;
	int i, call;

	if ((p = strstr(q->target, "/status/")) == q->target)
		q->status = atoi(p + 8);
	if (!q->key[0])
		snprintf(q->key, sizeof(q->key), "%.127s", q->target);
	if (log_requests) {
		pthread_mutex_lock(&lock);
		printf("seen %s %s %s %s host=%s\n", pod_name, q->method, q->target, q->version,
		       q->host);
		fflush(stdout);
		pthread_mutex_unlock(&lock);
	}
	if (q->fail_n && fail_next(q->key, q->fail_n))
		q->status = 503;
	if (q->slow_n && q->delay_ms > 0) {
		char skey[160];

		snprintf(skey, sizeof(skey), "slow:%s", q->key);
		if (!fail_next(skey, q->slow_n))
			q->delay_ms = 0;
	}
	if (q->delay_ms > 0)
		usleep((useconds_t)q->delay_ms * 1000);
	o += (size_t)snprintf(a->body + o, sizeof(a->body) - o, "pod=%s\n", pod_name);
	o += (size_t)snprintf(a->body + o, sizeof(a->body) - o, "request=%s %s %s\n", q->method,
			      q->target, q->version);
	o += (size_t)snprintf(a->body + o, sizeof(a->body) - o, "target_len=%zu\n", q->target_len);
	for (i = 0; i < n_labels; i++)
		o += (size_t)snprintf(a->body + o, sizeof(a->body) - o, "label=%s\n", labels[i]);
	if (call_url) {
		call = call_upstream();
		o += (size_t)snprintf(a->body + o, sizeof(a->body) - o, "call=%d\n", call);
		if (call != 200)
			q->status = 503;
	}
	if (o + q->lines_len < sizeof(a->body) - 64) {
		memcpy(a->body + o, q->lines, q->lines_len);
		o += q->lines_len;
	}
	o += (size_t)snprintf(a->body + o, sizeof(a->body) - o, "body_bytes=%ld\n", q->body);
	if (q->conn_req)
		o += (size_t)snprintf(a->body + o, sizeof(a->body) - o, "conn_req=%d\n",
				      q->conn_req);
	a->len = o;
	a->status = q->status;
}

/* ---- HTTP/1.1 ---- */

static int read_more(int fd, char *buf, size_t *len, size_t cap)
{
	ssize_t n = read(fd, buf + *len, cap - *len);

	if (n <= 0)
		return -1;
	*len += (size_t)n;
	return 0;
}

/* Body bytes of a chunked message starting at buf[*off]; -1 on EOF/garbage. */
static long read_chunked(int fd, char *buf, size_t *len, size_t cap, size_t *off)
{
	long total = 0;

	for (;;) {
		char *nl;
		unsigned long sz;

		while (!(nl = memmem(buf + *off, *len - *off, "\r\n", 2)))
			if (*len == cap || read_more(fd, buf, len, cap))
				return -1;
		sz = strtoul(buf + *off, NULL, 16);
		*off = (size_t)(nl - buf) + 2;
		while (*len - *off < sz + 2) {
			/* Drop consumed bytes to make room for big chunks. */
			memmove(buf, buf + *off, *len - *off);
			*len -= *off;
			if (sz + 2 > *len) {
				size_t take = *len < sz ? *len : sz;

				sz -= take;
				total += (long)take;
				*len -= take;
				memmove(buf, buf + take, *len);
			}
			*off = 0;
			if (*len - *off >= sz + 2)
				break;
			if (read_more(fd, buf, len, cap))
				return -1;
		}
		*off += sz + 2;
		total += (long)sz;
		if (!sz)
			return total; /* "0\r\n\r\n": no trailers are sent to it */
	}
}

static void serve_h2(int fd, const char *pre, size_t prelen);

static void *serve(void *arg)
{
	int fd = (int)(long)arg;
	static __thread char buf[1 << 16];
	static __thread struct req q;
	static __thread struct resp a;
	size_t len = 0;
	int nreq = 0;

	for (;;) {
		char *end, *line, *save;
		size_t hlen, off;
		long clen = 0;
		int close_after = 0, chunked = 0, i;

		while (!(end = memmem(buf, len, "\r\n\r\n", 4))) {
			if (len >= 24 && !memcmp(buf, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24)) {
				serve_h2(fd, buf, len);
				goto out;
			}
			if (len == sizeof(buf) || read_more(fd, buf, &len, sizeof(buf)))
				goto out;
		}
		if (len >= 24 && !memcmp(buf, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24)) {
			serve_h2(fd, buf, len);
			goto out;
		}
		hlen = (size_t)(end - buf) + 4;
		end[2] = '\0';
		req_init(&q);
		line = strtok_r(buf, "\r\n", &save);
		if (!line)
			goto out;
		if (sscanf(line, "%31s %1023s %15s", q.method, q.target, q.version) != 3) {
			/* Not a request line (bytes relayed as TCP): echoed as they came. */
			snprintf(q.target, sizeof(q.target), "%.1023s", line);
			q.method[0] = q.version[0] = '\0';
			q.target_len = strlen(line);
		} else {
			q.target_len = strcspn(line + strlen(q.method) + 1, " ");
		}
		if (!strcmp(q.version, "HTTP/1.0"))
			close_after = 1;
		while ((line = strtok_r(NULL, "\r\n", &save))) {
			char *colon = strchr(line, ':'), *v;

			if (!colon)
				continue;
			*colon = '\0';
			for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
				;
			req_header(&q, line, v);
			if (!strcasecmp(line, "content-length"))
				clen = atol(v);
			if (!strcasecmp(line, "transfer-encoding") && strcasestr(v, "chunked"))
				chunked = 1;
			if (!strcasecmp(line, "connection") && strcasestr(v, "close"))
				close_after = 1;
		}
		off = hlen;
		if (chunked) {
			q.body = read_chunked(fd, buf, &len, sizeof(buf), &off);
			if (q.body < 0)
				goto out;
		} else {
			while ((long)(len - off) < clen) {
				q.body += (long)(len - off);
				clen -= (long)(len - off);
				len = off = 0;
				if (read_more(fd, buf, &len, sizeof(buf)))
					goto out;
			}
			off += (size_t)clen;
			q.body += clen;
		}
		memmove(buf, buf + off, len - off);
		len -= off;
		q.conn_req = ++nreq;
		answer(&q, &a);
		{
			char hdr[sizeof(q.hdrs) + 4096];
			int hn =
			    snprintf(hdr, sizeof(hdr),
				     "HTTP/1.1 %d X\r\ncontent-type: text/plain\r\nx-pod: %s\r\n",
				     a.status, pod_name);

			for (i = 0; i < q.n_hdrs; i++)
				hn += snprintf(hdr + hn, sizeof(hdr) - (size_t)hn, "%s: %s\r\n",
					       q.hdrs[i][0], q.hdrs[i][1]);
			hn += snprintf(hdr + hn, sizeof(hdr) - (size_t)hn,
				       "content-length: %zu\r\n%s\r\n", a.len,
				       close_after ? "connection: close\r\n" : "");
			struct iovec iov[2] = {{hdr, (size_t)hn}, {a.body, a.len}};

			/* One write: head and body in one segment, no delayed-ACK stall. */
			if (writev(fd, iov, 2) < 0)
				goto out;
		}
		if (close_after)
			goto out;
	}
out:
	close(fd);
	return NULL;
}

/* ---- HTTP/2 cleartext (prior knowledge) ---- */

struct h2_stream {
	struct req q;
	struct resp a;
	size_t sent;
};

static ssize_t h2_read_body(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t len,
			    uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct h2_stream *st = src->ptr;
	size_t n = st->a.len - st->sent < len ? st->a.len - st->sent : len;

	(void)s;
	(void)sid;
	(void)ud;
	memcpy(buf, st->a.body + st->sent, n);
	st->sent += n;
	if (st->sent == st->a.len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static void h2_respond(nghttp2_session *s, int32_t sid, struct h2_stream *st)
{
	nghttp2_data_provider prd = {.source.ptr = st, .read_callback = h2_read_body};
	nghttp2_nv nv[16];
	char status[8], clen[24];
	size_t n = 0;
	int i;

	answer(&st->q, &st->a);
	snprintf(status, sizeof(status), "%d", st->a.status);
	snprintf(clen, sizeof(clen), "%zu", st->a.len);
#define NV(k, v) nv[n++] = (nghttp2_nv){(uint8_t *)(k), (uint8_t *)(v), strlen(k), strlen(v), 0}
	NV(":status", status);
	NV("content-type", "text/plain");
	NV("x-pod", pod_name);
	NV("content-length", clen);
	for (i = 0; i < st->q.n_hdrs; i++)
		NV(st->q.hdrs[i][0], st->q.hdrs[i][1]);
#undef NV
	nghttp2_submit_response(s, sid, nv, n, &prd);
}

static int h2_on_begin(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct h2_stream *st;

	(void)ud;
	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	st = calloc(1, sizeof(*st));
	if (!st)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	req_init(&st->q);
	snprintf(st->q.version, sizeof(st->q.version), "HTTP/2");
	nghttp2_session_set_stream_user_data(s, f->hd.stream_id, st);
	return 0;
}

static int h2_on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
			size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
	struct h2_stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
	char n[256], v[1024];

	(void)flags;
	(void)ud;
	if (!st)
		return 0;
	snprintf(n, sizeof(n), "%.*s", (int)nlen, name);
	snprintf(v, sizeof(v), "%.*s", (int)vlen, value);
	if (!strcmp(n, ":method"))
		snprintf(st->q.method, sizeof(st->q.method), "%.31s", v);
	else if (!strcmp(n, ":path")) {
		snprintf(st->q.target, sizeof(st->q.target), "%s", v);
		st->q.target_len = vlen;
	} else if (!strcmp(n, ":authority"))
		req_header(&st->q, "host", v);
	else if (n[0] != ':')
		req_header(&st->q, n, v);
	return 0;
}

static int h2_on_chunk(nghttp2_session *s, uint8_t flags, int32_t sid, const uint8_t *data,
		       size_t len, void *ud)
{
	struct h2_stream *st = nghttp2_session_get_stream_user_data(s, sid);

	(void)flags;
	(void)data;
	(void)ud;
	if (st)
		st->q.body += (long)len;
	return 0;
}

static int h2_on_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct h2_stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);

	(void)ud;
	if (st && (f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
	    (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
		h2_respond(s, f->hd.stream_id, st);
	return 0;
}

static int h2_on_close(nghttp2_session *s, int32_t sid, uint32_t err, void *ud)
{
	(void)err;
	(void)ud;
	free(nghttp2_session_get_stream_user_data(s, sid));
	nghttp2_session_set_stream_user_data(s, sid, NULL);
	return 0;
}

static void serve_h2(int fd, const char *pre, size_t prelen)
{
	nghttp2_session_callbacks *cbs;
	nghttp2_session *s;
	static __thread char buf[1 << 16];
	ssize_t n;

	if (nghttp2_session_callbacks_new(&cbs))
		return;
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, h2_on_begin);
	nghttp2_session_callbacks_set_on_header_callback(cbs, h2_on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, h2_on_chunk);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, h2_on_frame);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, h2_on_close);
	if (nghttp2_session_server_new(&s, cbs, NULL)) {
		nghttp2_session_callbacks_del(cbs);
		return;
	}
	nghttp2_session_callbacks_del(cbs);
	nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, NULL, 0);
	n = nghttp2_session_mem_recv(s, (const uint8_t *)pre, prelen);
	while (n >= 0) {
		const uint8_t *out;
		ssize_t w;

		while ((w = nghttp2_session_mem_send(s, &out)) > 0)
			if (write(fd, out, (size_t)w) != w)
				goto done;
		if (!nghttp2_session_want_read(s) && !nghttp2_session_want_write(s))
			break;
		n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		n = nghttp2_session_mem_recv(s, (const uint8_t *)buf, (size_t)n);
	}
done:
	nghttp2_session_del(s);
}

/* ---- listeners ---- */

static void *listener(void *arg)
{
	int port = (int)(long)arg, one = 1, zero = 0;
	struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = in6addr_any};
	int lfd = socket(AF_INET6, SOCK_STREAM, 0);

	a.sin6_port = htons((uint16_t)port);
	setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, 128)) {
		fprintf(stderr, "zm-httpecho: port %d: %s\n", port, strerror(errno));
		exit(1);
	}
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		pthread_t t;
		pthread_attr_t at;

		if (fd < 0)
			continue;
		pthread_attr_init(&at);
		pthread_attr_setstacksize(&at, 1 << 20);
		if (pthread_create(&t, &at, serve, (void *)(long)fd))
			close(fd);
		else
			pthread_detach(t);
		pthread_attr_destroy(&at);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int ports[8], n = 0, i;
	pthread_t t;

	signal(SIGPIPE, SIG_IGN);
	if (getenv("POD_NAME"))
		pod_name = getenv("POD_NAME");
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--port") && i + 1 < argc && n < 8)
			ports[n++] = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--name") && i + 1 < argc)
			pod_name = argv[++i];
		else if (!strcmp(argv[i], "--label") && i + 1 < argc && n_labels < 16)
			labels[n_labels++] = argv[++i];
		else if (!strcmp(argv[i], "--log"))
			log_requests = 1;
		else if (!strcmp(argv[i], "--status") && i + 1 < argc)
			fixed_status = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--call") && i + 1 < argc)
			call_url = argv[++i];
		else {
			fprintf(stderr,
				"usage: zm-httpecho --port N [--port N] [--name POD] "
				"[--label K=V]... [--status NNN] [--log] [--call IP:PORT/PATH]\n");
			return 2;
		}
	}
	if (!n)
		ports[n++] = 8080;
	for (i = 1; i < n; i++)
		pthread_create(&t, NULL, listener, (void *)(long)ports[i]);
	listener((void *)(long)ports[0]);
	return 0;
}
