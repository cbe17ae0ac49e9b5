// SPDX-License-Identifier: Apache-2.0
/*
 * The admin/metrics/readiness responder (admin.h): listeners and clients on one rt loop of its
 * own thread. A client is read until its request is complete (or its deadline passes), parsed,
 * routed and answered; the answer is written as the socket takes it, then our side is shut
 * down and the connection drained briefly so the peer sees the whole answer rather than an
 * RST for input it sent that we never read.
 */
#include "obs/admin.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/list.h"
#include "obs/http.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "rt/handover.h"
#include "rt/workers.h"

#define OBS_ROUTES_MAX 32
#define OBS_LIS_MAX    6
#define OBS_PATH_MAX   64
#define OBS_DRAIN_MS   1000

struct obs_route {
	unsigned int tags, methods;
	char path[OBS_PATH_MAX];
	obs_http_fn fn;
	void *ud;
};

struct obs_admin_lis {
	struct rt_listener li;
	unsigned int tags;
	char name[32];
};

enum obs_cstate { OBS_C_READ, OBS_C_WRITE, OBS_C_DRAIN };

struct obs_client {
	struct rt_ev ev;
	struct rt_timer deadline;
	struct zm_link link; /* in a->clients */
	struct obs_admin *a;
	unsigned int port;
	enum obs_cstate st;
	char *in;
	size_t in_len, in_cap;
	char *out;
	size_t out_len, out_off;
};

struct obs_admin {
	struct rt_loop loop;
	bool loop_ok, started;
	pthread_t thread;
	struct obs_admin_lis lis[OBS_LIS_MAX];
	int n_lis;
	struct obs_route routes[OBS_ROUTES_MAX];
	int n_routes;
	struct zm_link clients; /* struct obs_client.link */
	int n_clients;
	const atomic_bool *ready;
	void (*quit_fn)(void *ud);
	void *quit_ud;
};

struct obs_admin *obs_admin_new(void)
{
	struct obs_admin *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	if (rt_loop_init(&a->loop)) {
		free(a);
		return NULL;
	}
	a->loop_ok = true;
	zm_list_init(&a->clients);
	return a;
}

static const char *obs_reason(int code)
{
	switch (code) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 411:
		return "Length Required";
	case 413:
		return "Payload Too Large";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 503:
		return "Service Unavailable";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Error";
	}
}

void obs_http_text(struct obs_http_resp *rs, int status, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	free(rs->body);
	rs->status = status;
	rs->ctype = "text/plain; charset=utf-8";
	rs->body = n < 0 ? NULL : s;
	rs->len = n < 0 ? 0 : (size_t)n;
}

int obs_admin_route(struct obs_admin *a, unsigned int tags, const char *path, unsigned int methods,
		    obs_http_fn fn, void *ud)
{
	struct obs_route *r;

	if (a->n_routes == OBS_ROUTES_MAX || strlen(path) >= OBS_PATH_MAX)
		return -ENOSPC;
	r = &a->routes[a->n_routes++];
	r->tags = tags;
	r->methods = methods;
	snprintf(r->path, sizeof(r->path), "%s", path);
	r->fn = fn;
	r->ud = ud;
	return 0;
}

/* ---- ready-made routes ---- */

static void obs_h_metrics(void *ud, const struct obs_http_req *rq, struct obs_http_resp *rs)
{
	(void)ud;
	(void)rq;
	rs->body = obs_registry_render(obs_metrics(), &rs->len);
	if (!rs->body) {
		obs_http_text(rs, 500, "out of memory rendering the metrics\n");
		return;
	}
	rs->ctype = OBS_PROM_CONTENT_TYPE;
}

static void obs_h_ready(void *ud, const struct obs_http_req *rq, struct obs_http_resp *rs)
{
	struct obs_admin *a = ud;

	(void)rq;
	if (a->ready && atomic_load(a->ready))
		obs_http_text(rs, 200, "ready\n");
	else
		obs_http_text(rs, 503, "not ready\n");
}

static void obs_h_logging(void *ud, const struct obs_http_req *rq, struct obs_http_resp *rs)
{
	char spec[512], err[256], *levels;
	int r;

	(void)ud;
	r = obs_query_get(rq->query, "level", spec, sizeof(spec));
	if (r == -ENOENT && rq->query[0]) {
		obs_http_text(rs, 400,
			      "unknown parameter in \"%.100s\": want level=LEVEL or "
			      "level=SCOPE:LEVEL[,SCOPE:LEVEL...]\n",
			      rq->query);
		return;
	}
	if (r && r != -ENOENT) {
		obs_http_text(rs, 400, "level: %s\n",
			      r == -ENOSPC ? "too long" : "bad percent-encoding");
		return;
	}
	if (!r && strcmp(rq->method, "POST")) {
		obs_http_text(rs, 405, "changing levels needs POST (GET lists them)\n");
		return;
	}
	if (!r && obs_log_set_levels(spec, err, sizeof(err))) {
		obs_http_text(rs, 400, "%s\n", err);
		return;
	}
	if (!r)
		obs_log(OBS_INFO, "admin", "log levels changed: %s", spec);
	levels = obs_log_levels_text();
	obs_http_text(rs, levels ? 200 : 500, "%s", levels ? levels : "out of memory\n");
	free(levels);
}

static void obs_h_quit(void *ud, const struct obs_http_req *rq, struct obs_http_resp *rs)
{
	struct obs_admin *a = ud;

	(void)rq;
	obs_http_text(rs, 200, "OK\n");
	if (a->quit_fn)
		a->quit_fn(a->quit_ud);
}

int obs_admin_add_metrics(struct obs_admin *a, unsigned int tags)
{
	return obs_admin_route(a, tags, "/metrics", OBS_GET, obs_h_metrics, a)
		   ?: obs_admin_route(a, tags, "/stats/prometheus", OBS_GET, obs_h_metrics, a);
}

int obs_admin_add_ready(struct obs_admin *a, unsigned int tags, const atomic_bool *ready)
{
	a->ready = ready;
	return obs_admin_route(a, tags, "/healthz/ready", OBS_GET, obs_h_ready, a);
}

int obs_admin_add_logging(struct obs_admin *a, unsigned int tags)
{
	return obs_admin_route(a, tags, "/logging", OBS_GET | OBS_POST, obs_h_logging, a);
}

int obs_admin_add_quit(struct obs_admin *a, unsigned int tags, void (*fn)(void *ud), void *ud)
{
	a->quit_fn = fn;
	a->quit_ud = ud;
	return obs_admin_route(a, tags, "/quitquitquit", OBS_GET | OBS_POST, obs_h_quit, a);
}

/* ---- clients ---- */

static void obs_client_free(void *p)
{
	struct obs_client *c = p;

	free(c->in);
	free(c->out);
	free(c);
}

static void obs_client_close(struct obs_client *c)
{
	struct obs_admin *a = c->a;

	if (c->ev.closed)
		return;
	rt_ev_close(&a->loop, &c->ev, false);
	zm_list_del(&c->link);
	a->n_clients--;
	rt_defer_free_timed(&a->loop, &c->deadline, obs_client_free, c);
}

/* Write what the socket takes; then half-close and drain. */
static void obs_client_flush(struct obs_client *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->ev.fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EAGAIN) {
			rt_ev_set(&c->a->loop, &c->ev, EPOLLOUT);
			return;
		}
		if (n <= 0) {
			obs_client_close(c);
			return;
		}
		c->out_off += (size_t)n;
	}
	shutdown(c->ev.fd, SHUT_WR);
	c->st = OBS_C_DRAIN;
	rt_ev_set(&c->a->loop, &c->ev, EPOLLIN);
	rt_timer_after(&c->a->loop, &c->deadline, OBS_DRAIN_MS);
}

static void obs_client_answer(struct obs_client *c, const struct obs_http_resp *rs,
			      const char *extra)
{
	char head[512];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
			 "Connection: close\r\n\r\n",
			 rs->status, obs_reason(rs->status),
			 rs->ctype ? rs->ctype : "text/plain; charset=utf-8", rs->len,
			 extra ? extra : "");

	free(c->out);
	c->out = malloc((size_t)n + rs->len);
	if (!c->out) {
		obs_client_close(c);
		return;
	}
	memcpy(c->out, head, (size_t)n);
	if (rs->len)
		memcpy(c->out + n, rs->body, rs->len);
	c->out_len = (size_t)n + rs->len;
	c->out_off = 0;
	c->st = OBS_C_WRITE;
	obs_client_flush(c);
}

static void obs_client_error(struct obs_client *c, int status, const char *why)
{
	struct obs_http_resp rs = {0};

	obs_http_text(&rs, status, "%s\n", why);
	obs_client_answer(c, &rs, NULL);
	free(rs.body);
}

static const struct obs_route *obs_route_find(const struct obs_admin *a, unsigned int port,
					      const char *path)
{
	int i;

	for (i = 0; i < a->n_routes; i++)
		if ((a->routes[i].tags & port) && !strcmp(a->routes[i].path, path))
			return &a->routes[i];
	return NULL;
}

static void obs_client_dispatch(struct obs_client *c, struct obs_http_req *rq)
{
	unsigned int m = !strcmp(rq->method, "GET")    ? OBS_GET
			 : !strcmp(rq->method, "POST") ? OBS_POST
						       : 0;
	const struct obs_route *r = obs_route_find(c->a, c->port, rq->path);
	struct obs_http_resp rs = {.status = 200};
	char allow[64];

	if (!r) {
		obs_client_error(c, 404, "not found");
		return;
	}
	if (!(r->methods & m)) {
		snprintf(allow, sizeof(allow), "Allow: %s%s%s\r\n",
			 r->methods & OBS_GET ? "GET" : "",
			 (r->methods & OBS_GET) && (r->methods & OBS_POST) ? ", " : "",
			 r->methods & OBS_POST ? "POST" : "");
		obs_http_text(&rs, 405, "method %s not allowed on %s\n", rq->method, rq->path);
		obs_client_answer(c, &rs, allow);
		free(rs.body);
		return;
	}
	r->fn(r->ud, rq, &rs);
	obs_log(OBS_DEBUG, "admin", "%s %s%s%s: %d (%zu bytes)", rq->method, rq->path,
		rq->query[0] ? "?" : "", rq->query, rs.status, rs.len);
	obs_client_answer(c, &rs, NULL);
	free(rs.body);
}

/* The head is complete at end (just past its blank line); the body may still be coming. */
static void obs_client_request(struct obs_client *c, size_t head_len)
{
	struct obs_http_req rq = {.port = c->port};
	struct obs_http_head h;
	char why[128];
	int status;

	status = obs_http_head_parse(c->in, head_len, &h, why, sizeof(why));
	if (status) {
		obs_client_error(c, status, why);
		return;
	}
	if (h.content_length > OBS_ADMIN_BODY_MAX) {
		obs_client_error(c, 413, "request body larger than 16 KiB");
		return;
	}
	if (c->in_len < head_len + h.content_length)
		return; /* the body is not all here yet */
	rq.method = h.method;
	rq.path = h.path;
	rq.query = h.query;
	rq.body = c->in + head_len;
	rq.body_len = h.content_length;
	obs_client_dispatch(c, &rq);
}

static void obs_client_read(struct obs_client *c)
{
	const char *end;
	bool eof = false;
	ssize_t n;

	while (!eof) {
		if (c->in_len + 1 >= c->in_cap) {
			size_t cap = c->in_cap ? c->in_cap * 2 : 1024;
			char *p;

			if (cap > OBS_ADMIN_HEAD_MAX + OBS_ADMIN_BODY_MAX + 1) {
				obs_client_error(c, 413, "request too large");
				return;
			}
			p = realloc(c->in, cap);
			if (!p) {
				obs_client_close(c);
				return;
			}
			c->in = p;
			c->in_cap = cap;
		}
		n = recv(c->ev.fd, c->in + c->in_len, c->in_cap - c->in_len - 1, MSG_DONTWAIT);
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0) {
			obs_client_close(c);
			return;
		}
		/* A client may half-close after its request (printf | nc -N): answer it. */
		eof = n == 0;
		c->in_len += (size_t)n;
		c->in[c->in_len] = '\0';
	}
	if (!obs_http_plausible(c->in, c->in_len)) {
		/* TLS or other binary input: no point waiting for a blank line. */
		obs_client_error(c, 400, "not an HTTP/1 request");
		return;
	}
	end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
	if (!end && c->in_len > OBS_ADMIN_HEAD_MAX) {
		obs_client_error(c, 431, "request head larger than 8 KiB");
		return;
	}
	if (end)
		obs_client_request(c, (size_t)(end + 4 - c->in));
	else if (eof)
		obs_client_close(c); /* gone before asking anything complete */
	else
		return;
	/* Still reading (a body on its way) when the client is gone: nothing to answer. */
	if (eof && c->st == OBS_C_READ)
		obs_client_close(c);
}

static void obs_client_event(struct rt_loop *l, struct rt_ev *ev, uint32_t events)
{
	struct obs_client *c = (struct obs_client *)ev;
	char sink[512];
	ssize_t n;

	(void)l;
	switch (c->st) {
	case OBS_C_READ:
		obs_client_read(c);
		break;
	case OBS_C_WRITE:
		if (events & (EPOLLERR | EPOLLHUP))
			obs_client_close(c);
		else
			obs_client_flush(c);
		break;
	case OBS_C_DRAIN:
		do
			n = recv(ev->fd, sink, sizeof(sink), MSG_DONTWAIT);
		while (n > 0);
		/* EOF (the peer read our answer and closed) or an error: done. */
		if (n == 0 || errno != EAGAIN || (events & (EPOLLHUP | EPOLLERR)))
			obs_client_close(c);
		break;
	}
}

static void obs_client_deadline(struct rt_loop *l, struct rt_timer *t)
{
	struct obs_client *c = zm_container_of(t, struct obs_client, deadline);

	(void)l;
	if (c->st == OBS_C_READ)
		obs_client_error(c, 408, "request not complete within 5 s");
	else
		obs_client_close(c); /* not taking the answer, or not closing after it */
}

static void obs_admin_accept(struct rt_loop *l, struct rt_listener *li, int fd)
{
	struct obs_admin *a = li->ud;
	struct obs_admin_lis *al = (struct obs_admin_lis *)li;
	static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\n"
				   "Connection: close\r\n\r\nbusy\n";
	struct obs_client *c;

	if (a->n_clients >= OBS_ADMIN_CLIENTS || !(c = calloc(1, sizeof(*c)))) {
		if (send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			(void)0;
		close(fd);
		return;
	}
	c->a = a;
	c->port = al->tags;
	rt_ev_init(&c->ev, fd, obs_client_event);
	rt_timer_init(&c->deadline, obs_client_deadline);
	zm_list_add(&a->clients, &c->link);
	a->n_clients++;
	rt_timer_after(l, &c->deadline, OBS_ADMIN_READ_MS);
	if (rt_ev_set(l, &c->ev, EPOLLIN | EPOLLRDHUP))
		obs_client_close(c);
}

int obs_admin_listen(struct obs_admin *a, unsigned int tags, int port, bool loopback_only)
{
	struct in_addr lo = {htonl(INADDR_LOOPBACK)};
	struct rt_listen_opts o = {.family = AF_INET6, .port = (unsigned int)port, .backlog = 256};
	char name[RT_HANDOVER_NAME_LEN];
	struct obs_admin_lis *al;
	int fd, r;

	if (a->n_lis == OBS_LIS_MAX)
		return -ENOSPC;
	/* Taken over from the process we replace (rt/handover.h), else a socket of our own. */
	snprintf(name, sizeof(name), "obs:%u:%d", tags, port);
	fd = rt_inherit_take(name);
	if (fd >= 0) {
		/* inherited, already listening */
	} else if (loopback_only) {
		o.family = AF_INET;
		o.addr = &lo;
		fd = rt_listen(&o);
	} else {
		fd = rt_listen(&o);
		if (fd == -EAFNOSUPPORT || fd == -EADDRNOTAVAIL) {
			o.family = AF_INET; /* no IPv6 in this namespace */
			fd = rt_listen(&o);
		}
	}
	if (fd < 0) {
		obs_log(OBS_ERROR, "admin", "listening on %s port %d failed: %s",
			loopback_only ? "127.0.0.1" : "every address", port, strerror(-fd));
		return fd;
	}
	al = &a->lis[a->n_lis];
	al->tags = tags;
	snprintf(al->name, sizeof(al->name), "admin port %d", port);
	r = rt_listener_start(&a->loop, &al->li, fd, al->name, obs_admin_accept, a);
	if (r) {
		close(fd);
		return r;
	}
	a->n_lis++;
	return rt_export_add(name, fd);
}

int obs_admin_bound_port(const struct obs_admin *a, unsigned int tags)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int i;

	for (i = 0; i < a->n_lis; i++) {
		if (a->lis[i].tags != tags ||
		    getsockname(a->lis[i].li.ev.fd, (struct sockaddr *)&ss, &sl))
			continue;
		return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
						     : ((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	return -ENOENT;
}

struct obs_admin *obs_admin_standard(int admin_port, int metrics_port, int ready_port,
				     const atomic_bool *ready, void (*quit)(void *ud), void *ud)
{
	struct obs_admin *a = obs_admin_new();

	if (!a)
		return NULL;
	if (obs_admin_listen(a, OBS_PORT_ADMIN, admin_port, true) ||
	    obs_admin_listen(a, OBS_PORT_METRICS, metrics_port, false) ||
	    obs_admin_listen(a, OBS_PORT_READY, ready_port, false) ||
	    obs_admin_add_metrics(a, OBS_PORT_METRICS) ||
	    obs_admin_add_ready(a, OBS_PORT_READY, ready) ||
	    obs_admin_add_logging(a, OBS_PORT_ADMIN) ||
	    obs_admin_add_quit(a, OBS_PORT_ADMIN, quit, ud)) {
		obs_admin_free(a);
		return NULL;
	}
	return a;
}

static void *obs_admin_main(void *arg)
{
	struct obs_admin *a = arg;

	rt_loop_run(&a->loop);
	return NULL;
}

int obs_admin_start(struct obs_admin *a)
{
	int r = -pthread_create(&a->thread, NULL, obs_admin_main, a);

	a->started = !r;
	return r;
}

void obs_admin_free(struct obs_admin *a)
{
	int i;

	if (!a)
		return;
	if (a->started) {
		rt_loop_stop(&a->loop);
		pthread_join(a->thread, NULL);
	}
	while (!zm_list_empty(&a->clients))
		obs_client_close(zm_container_of(a->clients.next, struct obs_client, link));
	for (i = 0; i < a->n_lis; i++) {
		rt_export_del(a->lis[i].li.ev.fd);
		rt_listener_close(&a->loop, &a->lis[i].li);
	}
	if (a->loop_ok)
		rt_loop_fini(&a->loop);
	free(a);
}
