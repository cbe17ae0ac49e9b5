// SPDX-License-Identifier: Apache-2.0
/*
 * The event loop (loop.h): epoll dispatch that honours closed sources, a binary min-heap of
 * timers (O(log n) arm and cancel; one wait computes the time to the earliest), the queue of
 * deferred releases and the end-of-batch hooks.
 */
#include "rt/loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "obs/log.h"

#define RT_EVENTS      128
#define RT_REAP_ROUNDS 8

uint64_t rt_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void rt_wake_event(struct rt_loop *l, struct rt_ev *ev, uint32_t events)
{
	uint64_t v;

	(void)events;
	if (read(ev->fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	if (l->on_wake.fn)
		l->on_wake.fn(l, l->on_wake.ud);
}

int rt_loop_init(struct rt_loop *l)
{
	int r;

	memset(l, 0, sizeof(*l));
	l->now_ms = rt_now_ms();
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0)
		return -errno;
	l->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->wakefd < 0) {
		r = -errno;
		close(l->epfd);
		return r;
	}
	rt_ev_init(&l->wake_ev, l->wakefd, rt_wake_event);
	r = rt_ev_set(l, &l->wake_ev, EPOLLIN);
	if (r) {
		close(l->wakefd);
		close(l->epfd);
	}
	return r;
}

static void rt_reap(struct rt_loop *l)
{
	size_t i, n;

	/* A release may queue further releases: take the batch, then look again. */
	while (l->n_dead) {
		n = l->n_dead;
		typeof(l->dead) batch = l->dead;

		l->dead = NULL;
		l->n_dead = l->cap_dead = 0;
		for (i = 0; i < n; i++)
			batch[i].fn(batch[i].p);
		free(batch);
	}
}

void rt_loop_fini(struct rt_loop *l)
{
	rt_reap(l);
	free(l->heap);
	l->heap = NULL;
	l->n_timers = l->cap_timers = 0;
	if (l->wakefd >= 0)
		close(l->wakefd);
	if (l->epfd >= 0)
		close(l->epfd);
	l->epfd = l->wakefd = -1;
}

void rt_loop_on_wake(struct rt_loop *l, void (*fn)(struct rt_loop *l, void *ud), void *ud)
{
	l->on_wake = (struct rt_hook){fn, ud};
}

void rt_loop_wake(struct rt_loop *l)
{
	uint64_t one = 1;

	if (write(l->wakefd, &one, sizeof(one)) < 0)
		return; /* EAGAIN: the counter is saturated, a wake-up is pending anyway */
}

void rt_loop_stop(struct rt_loop *l)
{
	atomic_store(&l->stop, true);
	rt_loop_wake(l);
}

int rt_loop_add_hook(struct rt_loop *l, void (*fn)(struct rt_loop *l, void *ud), void *ud)
{
	if (l->n_hooks == RT_HOOKS_MAX)
		return -ENOSPC;
	l->hooks[l->n_hooks++] = (struct rt_hook){fn, ud};
	return 0;
}

/* ---- sources ---- */

int rt_ev_set(struct rt_loop *l, struct rt_ev *ev, uint32_t events)
{
	struct epoll_event e = {.events = events, .data.ptr = ev};

	if (ev->closed || ev->fd < 0)
		return events ? -EBADF : 0;
	if (ev->armed == events)
		return 0;
	if (!events) {
		rt_ev_del(l, ev);
		return 0;
	}
	if (epoll_ctl(l->epfd, ev->armed ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, ev->fd, &e))
		return -errno;
	ev->armed = events;
	return 0;
}

void rt_ev_del(struct rt_loop *l, struct rt_ev *ev)
{
	if (ev->armed && ev->fd >= 0)
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, ev->fd, NULL);
	ev->armed = 0;
}

void rt_ev_close(struct rt_loop *l, struct rt_ev *ev, bool reset)
{
	struct linger lg = {1, 0};

	if (ev->closed)
		return;
	rt_ev_del(l, ev);
	ev->closed = true;
	if (ev->fd < 0)
		return;
	if (reset)
		setsockopt(ev->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(ev->fd);
	ev->fd = -1;
}

/* ---- timers: a min-heap on when_ms ---- */

static void rt_heap_set(struct rt_loop *l, size_t i, struct rt_timer *t)
{
	l->heap[i] = t;
	t->slot = i + 1;
}

static void rt_heap_up(struct rt_loop *l, size_t i)
{
	struct rt_timer *t = l->heap[i];

	while (i) {
		size_t p = (i - 1) / 2;

		if (l->heap[p]->when_ms <= t->when_ms)
			break;
		rt_heap_set(l, i, l->heap[p]);
		i = p;
	}
	rt_heap_set(l, i, t);
}

static void rt_heap_down(struct rt_loop *l, size_t i)
{
	struct rt_timer *t = l->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= l->n_timers)
			break;
		if (c + 1 < l->n_timers && l->heap[c + 1]->when_ms < l->heap[c]->when_ms)
			c++;
		if (t->when_ms <= l->heap[c]->when_ms)
			break;
		rt_heap_set(l, i, l->heap[c]);
		i = c;
	}
	rt_heap_set(l, i, t);
}

void rt_timer_cancel(struct rt_loop *l, struct rt_timer *t)
{
	size_t i;
	struct rt_timer *last;

	if (!t || !t->slot)
		return;
	i = t->slot - 1;
	t->slot = 0;
	last = l->heap[--l->n_timers];
	if (i == l->n_timers)
		return;
	rt_heap_set(l, i, last);
	rt_heap_down(l, i);
	rt_heap_up(l, last->slot - 1);
}

int rt_timer_arm(struct rt_loop *l, struct rt_timer *t, uint64_t when_ms)
{
	if (t->slot) {
		size_t i = t->slot - 1;

		t->when_ms = when_ms;
		rt_heap_down(l, i);
		rt_heap_up(l, t->slot - 1);
		return 0;
	}
	if (l->n_timers == l->cap_timers) {
		size_t cap = l->cap_timers ? l->cap_timers * 2 : 64;
		struct rt_timer **nh = realloc(l->heap, cap * sizeof(*nh));

		if (!nh)
			return -ENOMEM;
		l->heap = nh;
		l->cap_timers = cap;
	}
	t->when_ms = when_ms;
	rt_heap_set(l, l->n_timers++, t);
	rt_heap_up(l, l->n_timers - 1);
	return 0;
}

int rt_timer_after(struct rt_loop *l, struct rt_timer *t, uint64_t delay_ms)
{
	return rt_timer_arm(l, t, l->now_ms + delay_ms);
}

int rt_timer_earlier(struct rt_loop *l, struct rt_timer *t, uint64_t when_ms)
{
	if (t->slot && t->when_ms <= when_ms)
		return 0;
	return rt_timer_arm(l, t, when_ms);
}

uint64_t rt_loop_next_deadline(const struct rt_loop *l)
{
	return l->n_timers ? l->heap[0]->when_ms : UINT64_MAX;
}

static void rt_timers_fire(struct rt_loop *l)
{
	/* Bounded: a timer re-armed for "now" by its own callback waits for the next batch. */
	size_t budget = l->n_timers + 16;

	while (l->n_timers && l->heap[0]->when_ms <= l->now_ms && budget--) {
		struct rt_timer *t = l->heap[0];

		rt_timer_cancel(l, t);
		t->fn(l, t);
	}
}

/* ---- release ---- */

void rt_defer_free(struct rt_loop *l, void (*fn)(void *p), void *p)
{
	static struct obs_ratelimit rl;

	if (l->n_dead == l->cap_dead) {
		size_t cap = l->cap_dead ? l->cap_dead * 2 : 64;
		typeof(l->dead) nd = realloc(l->dead, cap * sizeof(*nd));

		if (!nd) {
			/* Leaking is safer than a use-after-free later in this batch. */
			if (obs_ratelimit_ok(&rl, rt_now_ms(), 1000, NULL))
				obs_log(OBS_ERROR, "rt",
					"out of memory queueing a release: leaked");
			return;
		}
		l->dead = nd;
		l->cap_dead = cap;
	}
	l->dead[l->n_dead].fn = fn;
	l->dead[l->n_dead].p = p;
	l->n_dead++;
}

void rt_defer_free_timed(struct rt_loop *l, struct rt_timer *t, void (*fn)(void *p), void *p)
{
	rt_timer_cancel(l, t);
	rt_defer_free(l, fn, p);
}

/* ---- batches ---- */

static int rt_wait_ms(const struct rt_loop *l, int max_wait_ms)
{
	uint64_t next = rt_loop_next_deadline(l), now = rt_now_ms();
	uint64_t until = next > now ? next - now : 0;

	if (next == UINT64_MAX)
		return max_wait_ms;
	if (max_wait_ms >= 0 && until > (uint64_t)max_wait_ms)
		return max_wait_ms;
	return until > 3600000 ? 3600000 : (int)until;
}

static void rt_hooks_run(struct rt_loop *l)
{
	int i;

	for (i = 0; i < l->n_hooks; i++)
		l->hooks[i].fn(l, l->hooks[i].ud);
}

int rt_loop_run_once(struct rt_loop *l, int max_wait_ms)
{
	struct epoll_event evs[RT_EVENTS];
	int n, i, round;

	n = epoll_wait(l->epfd, evs, RT_EVENTS, rt_wait_ms(l, max_wait_ms));
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	l->now_ms = rt_now_ms();
	for (i = 0; i < n; i++) {
		struct rt_ev *ev = evs[i].data.ptr;

		/* Rule 2: closed earlier in this batch (its memory is still ours: rule 1). */
		if (ev->closed)
			continue;
		ev->fn(l, ev, evs[i].events);
	}
	rt_timers_fire(l);
	for (round = 0; round < RT_REAP_ROUNDS; round++) {
		rt_hooks_run(l);
		if (!l->n_dead)
			break;
		rt_reap(l);
	}
	obs_log_flush(); /* the round's log lines, batched (rt_loop_run), in one write */
	return n;
}

void rt_loop_run(struct rt_loop *l)
{
	obs_log_batch(true);
	while (!atomic_load(&l->stop))
		if (rt_loop_run_once(l, -1) < 0)
			break;
	obs_log_batch(false);
}
