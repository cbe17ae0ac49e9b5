// SPDX-License-Identifier: Apache-2.0
/* The main thread's control loop: signals and config polling (control.h). */
#include "common/list.h"
#include "rt/control.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

static void rt_control_signal(struct rt_loop *l, struct rt_ev *ev, uint32_t events)
{
	struct rt_control *c = zm_container_of(ev, struct rt_control, sig);
	struct signalfd_siginfo si;

	(void)events;
	while (read(ev->fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo != SIGHUP) {
			if (c->on_term)
				c->on_term(c);
			else
				rt_loop_stop(l);
			continue;
		}
		if (c->on_hup)
			c->on_hup(c);
	}
}

static void rt_control_poll(struct rt_loop *l, struct rt_timer *t)
{
	struct rt_control *c = zm_container_of(t, struct rt_control, poll);

	if (c->on_poll)
		c->on_poll(c);
	rt_timer_after(l, t, c->poll_ms);
}

int rt_control_init(struct rt_control *c, uint64_t poll_ms, void (*on_hup)(struct rt_control *c),
		    void (*on_poll)(struct rt_control *c), void *ud)
{
	sigset_t set;
	int fd, r;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL))
		return -EINVAL;
	fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (fd < 0)
		return -errno;
	r = rt_loop_init(&c->loop);
	if (r) {
		close(fd);
		return r;
	}
	c->poll_ms = poll_ms;
	c->on_hup = on_hup;
	c->on_poll = on_poll;
	c->on_term = NULL; /* SIGTERM stops the loop until a daemon sets a drain */
	c->term_ud = NULL;
	c->ud = ud;
	rt_ev_init(&c->sig, fd, rt_control_signal);
	rt_timer_init(&c->poll, rt_control_poll);
	r = rt_ev_set(&c->loop, &c->sig, EPOLLIN);
	if (!r && poll_ms)
		r = rt_timer_after(&c->loop, &c->poll, poll_ms);
	if (r)
		rt_control_fini(c);
	return r;
}

void rt_control_run(struct rt_control *c)
{
	rt_loop_run(&c->loop);
}

void rt_control_stop(struct rt_control *c)
{
	rt_loop_stop(&c->loop);
}

void rt_control_fini(struct rt_control *c)
{
	rt_timer_cancel(&c->loop, &c->poll);
	rt_ev_close(&c->loop, &c->sig, false);
	rt_loop_fini(&c->loop);
}
