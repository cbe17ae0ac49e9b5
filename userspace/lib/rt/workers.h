/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-core workers and their listeners, the part of the runtime above one loop (loop.h):
 *  - rt_workers: N threads, each running its own struct rt_loop, so a connection's work stays
 *    on the CPU whose listener accepted it (each worker listens with SO_REUSEPORT and the
 *    kernel spreads connections over the group).
 *  - rt_listener: accept with back-off. When accept() fails for lack of resources (EMFILE,
 *    ENFILE, ENOBUFS, ENOMEM) the listener is taken out of the epoll set and retried on a
 *    timer (RT_ACCEPT_BACKOFF_MIN_MS doubling to RT_ACCEPT_BACKOFF_MAX_MS), so a process out of
 *    file descriptors keeps serving its existing connections instead of spinning on a
 *    listener that stays readable; the failure is logged at most once a second per process
 *    (with the number of suppressed repeats), and once more when accepting works again.
 *  - rt_nofile_raise: RLIMIT_NOFILE's soft limit raised to the hard one at start.
 */
#ifndef ZMESH_RT_WORKERS_H
#define ZMESH_RT_WORKERS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "rt/loop.h"

#define RT_MAX_WORKERS		 64
#define RT_ACCEPT_BATCH		 64 /* accepts per readiness event: relays are not starved */
#define RT_ACCEPT_BACKOFF_MIN_MS 50
#define RT_ACCEPT_BACKOFF_MAX_MS 1000

struct rt_worker {
	struct rt_loop loop; /* first: a loop's owner is found from the loop pointer */
	int id;
	pthread_t thread;
	bool started;
	void *ud; /* the daemon's per-worker state */
};

struct rt_workers {
	int n;
	struct rt_worker w[RT_MAX_WORKERS];
};

/* The worker that owns loop l (every loop run by rt_workers is a worker's). */
static inline struct rt_worker *rt_worker_of(struct rt_loop *l)
{
	return (struct rt_worker *)l;
}

/*
 * Make n loops (n <= RT_MAX_WORKERS; 0: one per online CPU) and call init(w, ud) for each on
 * this thread (listeners, per-worker state), then start the threads. On failure everything
 * made so far is stopped and released. 0 or -errno.
 */
int rt_workers_start(struct rt_workers *ws, int n, int (*init)(struct rt_worker *w, void *ud),
		     void *ud);
/* Stop every loop and join the threads (loops are released: rt_loop_fini). */
void rt_workers_stop(struct rt_workers *ws);
/* Wake every worker (each runs its loop's on_wake hook): "look at shared state again". */
void rt_workers_wake(struct rt_workers *ws);

/* How many workers to run when the user asked for 0: the online CPUs, at least 1. */
int rt_workers_default(void);

/* ---- listeners ---- */

struct rt_listen_opts {
	int family;	  /* AF_INET or AF_INET6 */
	const void *addr; /* struct in_addr / in6_addr in network order; NULL: any */
	unsigned int port;
	int backlog;	  /* 0: 4096 */
	bool reuseport;	  /* one socket per worker */
	bool transparent; /* IP_TRANSPARENT / IPV6_TRANSPARENT (needs CAP_NET_ADMIN) */
	bool v6only;	  /* AF_INET6: IPv6 only (else IPv4-mapped too) */
};

/* A non-blocking listening socket. Returns the fd or -errno. */
int rt_listen(const struct rt_listen_opts *o);

struct rt_listener {
	struct rt_ev ev;
	struct rt_timer retry;
	unsigned int backoff_ms;
	bool backing_off;
	const char *name; /* "outbound 15001": for the log lines */
	/* Called with each accepted fd (non-blocking, close-on-exec, TCP_NODELAY set). */
	void (*on_accept)(struct rt_loop *l, struct rt_listener *li, int fd);
	void *ud;
};

/* Start accepting on fd (owned from now on) in loop l. 0 or -errno. */
int rt_listener_start(struct rt_loop *l, struct rt_listener *li, int fd, const char *name,
		      void (*on_accept)(struct rt_loop *l, struct rt_listener *li, int fd),
		      void *ud);
/* Stop and close. */
void rt_listener_close(struct rt_loop *l, struct rt_listener *li);

/* Raise RLIMIT_NOFILE's soft limit to its hard limit; the limit now in force in *now. */
int rt_nofile_raise(uint64_t *now);

#endif
