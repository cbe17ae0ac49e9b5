// SPDX-License-Identifier: Apache-2.0
/*
 * Workers, listeners with accept back-off and the file-descriptor limit (workers.h).
 */
#include "common/list.h"
#include "rt/workers.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include "hbone/hbone.h"
#include "obs/log.h"

/* One line a second for the whole process: N workers hitting EMFILE together log once. */
static struct obs_ratelimit rt_accept_rl;

static void *rt_worker_main(void *arg)
{
	struct rt_worker *w = arg;

	rt_loop_run(&w->loop);
	/* lib/hbone's spare buffers are thread-local: freed here, or lost when the thread ends. */
	hb_thread_trim();
	return NULL;
}

int rt_workers_default(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > RT_MAX_WORKERS ? RT_MAX_WORKERS : (int)n;
}

int rt_workers_start(struct rt_workers *ws, int n, int (*init)(struct rt_worker *w, void *ud),
		     void *ud)
{
	int i, r = 0;

	if (n <= 0)
		n = rt_workers_default();
	if (n > RT_MAX_WORKERS)
		return -EINVAL;
	memset(ws, 0, sizeof(*ws));
	for (i = 0; i < n && !r; i++) {
		struct rt_worker *w = &ws->w[i];

		w->id = i;
		r = rt_loop_init(&w->loop);
		if (r)
			break;
		w->loop.ud = w;
		ws->n = i + 1;
		r = init ? init(w, ud) : 0;
	}
	for (i = 0; i < ws->n && !r; i++) {
		r = -pthread_create(&ws->w[i].thread, NULL, rt_worker_main, &ws->w[i]);
		ws->w[i].started = !r;
	}
	if (r) {
		obs_log(OBS_ERROR, "rt", "starting worker %d failed: %s", i, strerror(-r));
		rt_workers_stop(ws);
	}
	return r;
}

void rt_workers_stop(struct rt_workers *ws)
{
	int i;

	for (i = 0; i < ws->n; i++)
		rt_loop_stop(&ws->w[i].loop);
	for (i = 0; i < ws->n; i++) {
		if (ws->w[i].started)
			pthread_join(ws->w[i].thread, NULL);
		ws->w[i].started = false;
	}
	for (i = 0; i < ws->n; i++)
		rt_loop_fini(&ws->w[i].loop);
	ws->n = 0;
}

void rt_workers_wake(struct rt_workers *ws)
{
	int i;

	for (i = 0; i < ws->n; i++)
		rt_loop_wake(&ws->w[i].loop);
}

/* ---- listeners ---- */

int rt_listen(const struct rt_listen_opts *o)
{
	struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)o->port)};
	struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
	bool v6 = o->family == AF_INET6;
	int one = 1, v6only = o->v6only, fd, r;

	if (o->addr && v6)
		memcpy(&s6.sin6_addr, o->addr, sizeof(s6.sin6_addr));
	else if (o->addr)
		memcpy(&s4.sin_addr, o->addr, sizeof(s4.sin_addr));
	fd = socket(o->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (o->reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one))) ||
	    (v6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only))) ||
	    (o->transparent &&
	     setsockopt(fd, v6 ? SOL_IPV6 : SOL_IP, v6 ? IPV6_TRANSPARENT : IP_TRANSPARENT, &one,
			sizeof(one))) ||
	    bind(fd, v6 ? (struct sockaddr *)&s6 : (struct sockaddr *)&s4,
		 v6 ? sizeof(s6) : sizeof(s4)) ||
	    listen(fd, o->backlog > 0 ? o->backlog : 4096)) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

static bool rt_accept_starved(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

/* Out of descriptors or memory: stop listening for a while (the backlog keeps the SYNs). */
static void rt_listener_backoff(struct rt_loop *l, struct rt_listener *li, int err)
{
	uint64_t suppressed = 0;

	li->backoff_ms = !li->backing_off				 ? RT_ACCEPT_BACKOFF_MIN_MS
			 : li->backoff_ms * 2 > RT_ACCEPT_BACKOFF_MAX_MS ? RT_ACCEPT_BACKOFF_MAX_MS
									 : li->backoff_ms * 2;
	li->backing_off = true;
	rt_ev_set(l, &li->ev, 0);
	rt_timer_after(l, &li->retry, li->backoff_ms);
	if (obs_ratelimit_ok(&rt_accept_rl, l->now_ms, 1000, &suppressed))
		obs_log(OBS_WARN, "rt",
			"accept on %s failed: %s; pausing this listener %u ms, existing "
			"connections keep being served (%llu more like this suppressed)",
			li->name, strerror(err), li->backoff_ms, (unsigned long long)suppressed);
}

static void rt_listener_event(struct rt_loop *l, struct rt_ev *ev, uint32_t events)
{
	struct rt_listener *li = (struct rt_listener *)ev;
	int i, fd, one = 1;

	(void)events;
	for (i = 0; i < RT_ACCEPT_BATCH; i++) {
		fd = accept4(ev->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (rt_accept_starved(errno)) {
				rt_listener_backoff(l, li, errno);
			} else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED &&
				   errno != EPERM && errno != EPROTO) {
				obs_log(OBS_WARN, "rt", "accept on %s failed: %s", li->name,
					strerror(errno));
			}
			return;
		}
		if (li->backing_off) {
			li->backing_off = false;
			obs_log(OBS_INFO, "rt", "accepting on %s again", li->name);
		}
		/*
		 * No Nagle on any accepted leg: HBONE writes small HTTP/2 frames (HEADERS,
		 * SETTINGS, WINDOW_UPDATE) that would otherwise wait for the peer's delayed ACK
		 * (~40 ms per connection set-up, measured by make bench).
		 */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		li->on_accept(l, li, fd);
	}
}

static void rt_listener_retry(struct rt_loop *l, struct rt_timer *t)
{
	struct rt_listener *li = zm_container_of(t, struct rt_listener, retry);

	if (rt_ev_set(l, &li->ev, EPOLLIN))
		rt_timer_after(l, &li->retry, li->backoff_ms);
	else
		rt_listener_event(l, &li->ev, EPOLLIN);
}

int rt_listener_start(struct rt_loop *l, struct rt_listener *li, int fd, const char *name,
		      void (*on_accept)(struct rt_loop *l, struct rt_listener *li, int fd),
		      void *ud)
{
	memset(li, 0, sizeof(*li));
	rt_ev_init(&li->ev, fd, rt_listener_event);
	rt_timer_init(&li->retry, rt_listener_retry);
	li->name = name;
	li->on_accept = on_accept;
	li->ud = ud;
	return rt_ev_set(l, &li->ev, EPOLLIN);
}

void rt_listener_close(struct rt_loop *l, struct rt_listener *li)
{
	rt_timer_cancel(l, &li->retry);
	rt_ev_close(l, &li->ev, false);
}

int rt_nofile_raise(uint64_t *now)
{
	struct rlimit rl;
	int r = 0;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return -errno;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			r = -errno;
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (now)
		*now = rl.rlim_cur;
	return r;
}
