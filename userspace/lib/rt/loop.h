/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The event loop every zmesh daemon runs its sockets on: one epoll set, a monotonic clock read
 * once per batch, a timer heap, deferred release and end-of-batch hooks. One loop belongs to
 * one thread; nothing here is thread-safe except rt_loop_wake().
 *
 * The lifetime rules, which the loop enforces rather than leaves to comments:
 *  1. An object is never freed inside a batch of events: rt_defer_free() queues the release
 *     and the loop runs it after the batch, so a later event of the same batch that points at
 *     the object still finds valid memory.
 *  2. A source closed with rt_ev_close() gets no further events, not even those already
 *     returned by the epoll_wait() of the current batch: the loop drops them. Handlers need no
 *     "am I dead" checks for their own source.
 *  3. A timer fires only while armed: rt_timer_cancel() (idempotent) before an object holding
 *     a timer is released. rt_defer_free_timed() does both in one call.
 *  4. End-of-batch hooks run after the events and timers of a batch and again after each
 *     round of releases (a release can run library callbacks that queue more work), until
 *     nothing is left to release.
 */
#ifndef ZMESH_RT_LOOP_H
#define ZMESH_RT_LOOP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rt_loop;

/* An fd in the loop's epoll set; fn runs for its events. */
struct rt_ev {
	void (*fn)(struct rt_loop *l, struct rt_ev *ev, uint32_t events);
	int fd;
	uint32_t armed; /* EPOLL* bits registered, 0 when not in the set */
	bool closed;	/* rt_ev_close() ran: no more events */
};

struct rt_timer {
	void (*fn)(struct rt_loop *l, struct rt_timer *t);
	uint64_t when_ms; /* deadline on the loop's clock */
	size_t slot;	  /* heap index + 1; 0: not armed */
};

struct rt_hook {
	void (*fn)(struct rt_loop *l, void *ud);
	void *ud;
};

#define RT_HOOKS_MAX 4

struct rt_loop {
	int epfd;
	int wakefd;	 /* eventfd: rt_loop_wake() from any thread */
	uint64_t now_ms; /* CLOCK_MONOTONIC ms, read at the start of each batch */
	atomic_bool stop;
	struct rt_timer **heap;
	size_t n_timers, cap_timers;
	struct {
		void (*fn)(void *p);
		void *p;
	} * dead;
	size_t n_dead, cap_dead;
	struct rt_hook hooks[RT_HOOKS_MAX];
	int n_hooks;
	struct rt_hook on_wake; /* runs in the loop after rt_loop_wake() */
	struct rt_ev wake_ev;
	void *ud; /* the owner's (a worker) */
};

uint64_t rt_now_ms(void);

/* 0 or -errno. */
int rt_loop_init(struct rt_loop *l);
/* Releases what is still queued; closes the epoll set. Sources are the owners' to close. */
void rt_loop_fini(struct rt_loop *l);

/*
 * Run one batch: wait for events (at most max_wait_ms, or until the next timer; -1: no
 * limit but the timers), dispatch them, fire due timers, run the hooks and the releases.
 * Returns the number of events handled, or -errno from epoll_wait (EINTR is 0).
 */
int rt_loop_run_once(struct rt_loop *l, int max_wait_ms);
/* Batches until rt_loop_stop(). */
void rt_loop_run(struct rt_loop *l);
/* Ask the loop to return from rt_loop_run() (any thread). */
void rt_loop_stop(struct rt_loop *l);
/* Wake the loop from another thread; it runs its on_wake hook (when set) once per wake-up. */
void rt_loop_wake(struct rt_loop *l);
void rt_loop_on_wake(struct rt_loop *l, void (*fn)(struct rt_loop *l, void *ud), void *ud);

/* Run fn after every batch (rule 4). -ENOSPC past RT_HOOKS_MAX. */
int rt_loop_add_hook(struct rt_loop *l, void (*fn)(struct rt_loop *l, void *ud), void *ud);

/* ---- sources ---- */

static inline void rt_ev_init(struct rt_ev *ev, int fd,
			      void (*fn)(struct rt_loop *l, struct rt_ev *ev, uint32_t events))
{
	ev->fn = fn;
	ev->fd = fd;
	ev->armed = 0;
	ev->closed = false;
}

/* Wait for events (EPOLLIN/EPOLLOUT bits; 0 removes the fd from the set). 0 or -errno. */
int rt_ev_set(struct rt_loop *l, struct rt_ev *ev, uint32_t events);
/* Remove the fd from the set (it stays open). */
void rt_ev_del(struct rt_loop *l, struct rt_ev *ev);
/*
 * Remove, close the fd (reset: with SO_LINGER 0, so the peer gets an RST instead of a FIN) and
 * drop every later event of this source (rule 2). Idempotent; a closed source may be re-used
 * only after rt_ev_init().
 */
void rt_ev_close(struct rt_loop *l, struct rt_ev *ev, bool reset);

/* ---- timers ---- */

static inline void rt_timer_init(struct rt_timer *t,
				 void (*fn)(struct rt_loop *l, struct rt_timer *t))
{
	t->fn = fn;
	t->when_ms = 0;
	t->slot = 0;
}

/* Fire at when_ms (absolute, the loop's clock); re-arming moves it. 0 or -ENOMEM. */
int rt_timer_arm(struct rt_loop *l, struct rt_timer *t, uint64_t when_ms);
/* Fire delay_ms after the current batch's clock. */
int rt_timer_after(struct rt_loop *l, struct rt_timer *t, uint64_t delay_ms);
/* Arm only when that is earlier than the current deadline (or the timer is idle). */
int rt_timer_earlier(struct rt_loop *l, struct rt_timer *t, uint64_t when_ms);
void rt_timer_cancel(struct rt_loop *l, struct rt_timer *t);
static inline bool rt_timer_armed(const struct rt_timer *t)
{
	return t->slot != 0;
}
/* The earliest armed deadline, UINT64_MAX when none. */
uint64_t rt_loop_next_deadline(const struct rt_loop *l);

/* ---- release ---- */

/* Release p with fn(p) after the current batch (rule 1). */
void rt_defer_free(struct rt_loop *l, void (*fn)(void *p), void *p);
/* The same, cancelling the object's timer first (rule 3); t may be NULL. */
void rt_defer_free_timed(struct rt_loop *l, struct rt_timer *t, void (*fn)(void *p), void *p);

#endif
