/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The admin, metrics and readiness responder of every daemon (ports 15000, 15020, 15021 by
 * default, include/zmesh/ports.h): a small HTTP/1.1 server on its own thread and event loop
 * (lib/rt), serving many clients at once. Each connection gets one request: its head must
 * arrive within OBS_ADMIN_READ_MS of the accept (slowloris clients get a 408 and are closed,
 * without delaying anyone else), at most OBS_ADMIN_HEAD_MAX bytes of head (431) and
 * OBS_ADMIN_BODY_MAX of body (413); a request that is not HTTP gets a 400 naming what is
 * wrong; an unknown path a 404; a known path with the wrong method a 405. Every answer
 * carries Content-Length and "Connection: close".
 *
 * Routes are exact paths, each on a set of listeners (tags). The common ones come ready-made:
 * /metrics and /stats/prometheus (the process registry, Prometheus text format), /healthz/ready,
 * /logging (GET lists scope levels; POST ?level=SPEC changes them, obs_log_set_levels) and
 * /quitquitquit (POST or GET, a callback). Handlers run on the responder's thread.
 */
#ifndef ZMESH_OBS_ADMIN_H
#define ZMESH_OBS_ADMIN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "obs/http.h"

#define OBS_ADMIN_READ_MS  5000	       /* a request's head and body must arrive by then */
#define OBS_ADMIN_HEAD_MAX (8u << 10)  /* request line and headers */
#define OBS_ADMIN_BODY_MAX (16u << 10) /* request body (POST) */
#define OBS_ADMIN_CLIENTS  1024	       /* connections at once; more are answered 503 */

/* Listener tags (a route names the listeners it is served on as a bit mask). */
enum {
	OBS_PORT_ADMIN = 1u << 0,
	OBS_PORT_METRICS = 1u << 1,
	OBS_PORT_READY = 1u << 2,
};

enum {
	OBS_GET = 1u << 0,
	OBS_POST = 1u << 1,
};

struct obs_http_req {
	const char *method;
	const char *path;  /* without the query */
	const char *query; /* after '?', "" when none (still percent-encoded) */
	const char *body;
	size_t body_len;
	unsigned int port; /* the tag of the listener it came in on */
};

struct obs_http_resp {
	int status;	   /* 200 unless set */
	const char *ctype; /* "text/plain; charset=utf-8" unless set */
	char *body;	   /* malloc'd, freed by the server; NULL: empty */
	size_t len;
};

typedef void (*obs_http_fn)(void *ud, const struct obs_http_req *rq, struct obs_http_resp *rs);

struct obs_admin;

struct obs_admin *obs_admin_new(void);

/*
 * Listen on port for the routes tagged tag; loopback_only binds 127.0.0.1 (the admin port),
 * otherwise every address (IPv6 dual stack, IPv4 when the namespace has no IPv6). Several tags
 * may share one port: call once with the tags or'ed. 0 or -errno (logged, naming the port).
 */
int obs_admin_listen(struct obs_admin *a, unsigned int tags, int port, bool loopback_only);

/* The port the listener for tags is bound to (after port 0: the one the kernel picked). */
int obs_admin_bound_port(const struct obs_admin *a, unsigned int tags);

/* Serve path on the listeners in tags for the methods in methods. 0 or -ENOSPC. */
int obs_admin_route(struct obs_admin *a, unsigned int tags, const char *path, unsigned int methods,
		    obs_http_fn fn, void *ud);

/* The ready-made routes. */
int obs_admin_add_metrics(struct obs_admin *a, unsigned int tags);
int obs_admin_add_ready(struct obs_admin *a, unsigned int tags, const atomic_bool *ready);
int obs_admin_add_logging(struct obs_admin *a, unsigned int tags);
int obs_admin_add_quit(struct obs_admin *a, unsigned int tags, void (*fn)(void *ud), void *ud);

/*
 * What every daemon serves, in one call: the admin port (127.0.0.1: /logging, /quitquitquit
 * calling quit(ud)), the metrics port (/metrics, /stats/prometheus) and the readiness port
 * (/healthz/ready from *ready). Add the daemon's own routes, then obs_admin_start(). NULL
 * (logged) when a port cannot be bound.
 */
struct obs_admin *obs_admin_standard(int admin_port, int metrics_port, int ready_port,
				     const atomic_bool *ready, void (*quit)(void *ud), void *ud);

/* Start the responder's thread. 0 or -errno. */
int obs_admin_start(struct obs_admin *a);
/* Stop, join, close every socket and free. */
void obs_admin_free(struct obs_admin *a);

/* Helpers for handlers. */
/* Set a text answer (copied). */
void obs_http_text(struct obs_http_resp *rs, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
