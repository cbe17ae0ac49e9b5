// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of lib/rt: the timer heap (order, re-arm, cancel, earlier, many timers), deferred
 * release (nothing freed inside a batch, nested releases, hooks after releases), closed
 * sources getting no more events of their batch, cross-thread wake-ups, workers, and accept
 * back-off on a listener starved of file descriptors (RLIMIT_NOFILE lowered in this process):
 * the listener leaves the epoll set, a retry timer is armed, one warning is logged however
 * often it fails, and connections are accepted again once descriptors are free.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "obs/log.h"
#include "rt/drain.h"
#include "rt/loop.h"
#include "rt/workers.h"
#include "tap.h"

static int fired[16], n_fired;

static void on_timer(struct rt_loop *l, struct rt_timer *t)
{
	(void)l;
	fired[n_fired++] = (int)t->when_ms;
}

static void test_timer_order(void)
{
	struct rt_loop l;
	struct rt_timer t[5];
	int i;

	ok(!rt_loop_init(&l), "loop init");
	l.now_ms = 1000;
	for (i = 0; i < 5; i++)
		rt_timer_init(&t[i], on_timer);
	rt_timer_arm(&l, &t[0], 1050);
	rt_timer_arm(&l, &t[1], 1010);
	rt_timer_arm(&l, &t[2], 1030);
	rt_timer_arm(&l, &t[3], 1020);
	rt_timer_arm(&l, &t[4], 1040);
	is_int(rt_loop_next_deadline(&l), 1010, "earliest deadline first");
	rt_timer_cancel(&l, &t[3]);
	ok(!rt_timer_armed(&t[3]), "cancelled timer is idle");
	rt_timer_cancel(&l, &t[3]);
	ok(1, "cancel is idempotent");
	rt_timer_arm(&l, &t[0], 1005);	   /* re-arm earlier */
	rt_timer_earlier(&l, &t[4], 1100); /* later: ignored */
	rt_timer_earlier(&l, &t[2], 1025); /* earlier: taken */
	n_fired = 0;
	while (rt_loop_next_deadline(&l) != UINT64_MAX && n_fired < 10) {
		l.now_ms = rt_loop_next_deadline(&l);
		/* fire through a batch: no events, only due timers */
		rt_loop_run_once(&l, 0);
	}
	is_int(n_fired, 4, "four timers fired");
	ok(fired[0] == 1005 && fired[1] == 1010 && fired[2] == 1025 && fired[3] == 1040,
	   "in deadline order, re-armed and earlier ones at their new time (%d %d %d %d)", fired[0],
	   fired[1], fired[2], fired[3]);
	rt_loop_fini(&l);
}

/* Many timers with pseudo-random deadlines and cancels: the heap stays ordered. */
static uint64_t last_fired;
static int order_errors, n_many;

static void on_many(struct rt_loop *l, struct rt_timer *t)
{
	(void)l;
	if (t->when_ms < last_fired)
		order_errors++;
	last_fired = t->when_ms;
	n_many++;
}

static void test_timer_many(void)
{
	enum { N = 2000 };
	static struct rt_timer t[N];
	struct rt_loop l;
	unsigned int s = 12345, i;
	int armed = 0;

	rt_loop_init(&l);
	l.now_ms = 0;
	for (i = 0; i < N; i++) {
		rt_timer_init(&t[i], on_many);
		s = s * 1103515245 + 12345;
		rt_timer_arm(&l, &t[i], 1 + (s >> 8) % 100000);
	}
	for (i = 0; i < N; i += 7)
		rt_timer_cancel(&l, &t[i]);
	for (i = 1; i < N; i += 11) {
		s = s * 1103515245 + 12345;
		rt_timer_arm(&l, &t[i], 1 + (s >> 8) % 100000); /* move */
	}
	for (i = 0; i < N; i++)
		armed += rt_timer_armed(&t[i]);
	while (rt_loop_next_deadline(&l) != UINT64_MAX) {
		l.now_ms = rt_loop_next_deadline(&l);
		rt_loop_run_once(&l, 0);
	}
	is_int(order_errors, 0, "%d timers fired in deadline order", n_many);
	is_int(n_many, armed, "every armed timer fired once, cancelled ones never");
	rt_loop_fini(&l);
}

/* ---- deferred release ---- */

struct obj {
	struct rt_ev ev;
	struct rt_timer t;
	int *freed;
	int events;
	struct obj *peer; /* closed by this object's handler */
};

static void obj_free(void *p)
{
	struct obj *o = p;

	(*o->freed)++;
	free(o);
}

static int freed_during_batch, handler_runs;
static int hook_runs;

static void obj_event(struct rt_loop *l, struct rt_ev *ev, uint32_t events)
{
	struct obj *o = (struct obj *)ev;

	(void)events;
	o->events++;
	handler_runs++;
	if (*o->freed)
		freed_during_batch++;
	/* Close our peer and ourselves; both released after the batch. */
	if (o->peer) {
		rt_ev_close(l, &o->peer->ev, false);
		rt_defer_free_timed(l, &o->peer->t, obj_free, o->peer);
		o->peer->peer = NULL;
		o->peer = NULL;
	}
	rt_ev_close(l, ev, false);
	rt_defer_free_timed(l, &o->t, obj_free, o);
}

static void hook(struct rt_loop *l, void *ud)
{
	(void)l;
	(void)ud;
	hook_runs++;
}

static void test_defer_and_closed(void)
{
	struct rt_loop l;
	struct obj *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	int freed = 0, pa[2], pb[2];

	rt_loop_init(&l);
	rt_loop_add_hook(&l, hook, NULL);
	ok(!pipe(pa) && !pipe(pb), "pipes");
	a->freed = b->freed = &freed;
	rt_ev_init(&a->ev, pa[0], obj_event);
	rt_ev_init(&b->ev, pb[0], obj_event);
	rt_timer_init(&a->t, on_timer);
	rt_timer_init(&b->t, on_timer);
	rt_timer_after(&l, &a->t, 100000);
	rt_timer_after(&l, &b->t, 100000);
	a->peer = b;
	b->peer = a;
	rt_ev_set(&l, &a->ev, EPOLLIN);
	rt_ev_set(&l, &b->ev, EPOLLIN);
	/* Both readable: one batch returns both events. */
	ok(write(pa[1], "x", 1) == 1 && write(pb[1], "x", 1) == 1, "both sources readable");
	is_int(rt_loop_run_once(&l, 1000), 2, "one batch with two events");
	is_int(handler_runs, 1,
	       "one handler ran: the other source was closed by it, its event dropped");
	is_int(freed_during_batch, 0, "nothing freed while the batch ran");
	is_int(freed, 2, "both released after the batch");
	is_int(l.n_timers, 0, "their timers were cancelled with them");
	ok(hook_runs >= 1, "end-of-batch hook ran (%d)", hook_runs);
	close(pa[1]);
	close(pb[1]);
	rt_loop_fini(&l);
}

static int nested_freed;

static void nested_inner(void *p)
{
	(void)p;
	nested_freed++;
}

static struct rt_loop *nested_loop;

static void nested_outer(void *p)
{
	(void)p;
	nested_freed++;
	/* A release that queues another (a library callback freeing more): handled too. */
	rt_defer_free(nested_loop, nested_inner, NULL);
}

static void test_defer_nested(void)
{
	struct rt_loop l;

	rt_loop_init(&l);
	nested_loop = &l;
	rt_defer_free(&l, nested_outer, NULL);
	rt_loop_run_once(&l, 0);
	is_int(nested_freed, 2, "a release queued by a release runs in the same batch");
	rt_loop_fini(&l);
}

/* ---- wake-ups and workers ---- */

static atomic_int woken;

static void on_wake(struct rt_loop *l, void *ud)
{
	(void)l;
	(void)ud;
	atomic_fetch_add(&woken, 1);
}

static int worker_init(struct rt_worker *w, void *ud)
{
	(void)ud;
	rt_loop_on_wake(&w->loop, on_wake, NULL);
	return 0;
}

static void test_workers(void)
{
	struct rt_workers ws;
	int i;

	is_int(rt_workers_start(&ws, 3, worker_init, NULL), 0, "three workers start");
	rt_workers_wake(&ws);
	for (i = 0; i < 200 && atomic_load(&woken) < 3; i++)
		usleep(10000);
	is_int(atomic_load(&woken), 3, "each worker ran its wake hook");
	rt_workers_stop(&ws);
	ok(1, "workers stopped and joined");
}

/* ---- accept back-off ---- */

static int accepted_fd = -1, n_accepted;

static void on_accept(struct rt_loop *l, struct rt_listener *li, int fd)
{
	(void)l;
	(void)li;
	n_accepted++;
	if (accepted_fd >= 0)
		close(accepted_fd);
	accepted_fd = fd;
}

static int count_lines(const char *path, const char *needle)
{
	char line[4096];
	FILE *f = fopen(path, "r");
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

static int connect_to(unsigned int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	return fd;
}

static void test_accept_backoff(void)
{
	struct in_addr lo = {htonl(INADDR_LOOPBACK)};
	struct rt_listen_opts o = {.family = AF_INET, .addr = &lo, .port = 0};
	char logpath[] = "/tmp/zm-test-rt-XXXXXX";
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	struct rt_listener li;
	struct rt_loop l;
	struct rlimit old, low;
	int logfd = mkstemp(logpath), saved_err = dup(2), fd, i, c1 = -1, c2, fill[64], nfill = 0;

	rt_loop_init(&l);
	fd = rt_listen(&o);
	ok(fd >= 0, "listen on 127.0.0.1");
	getsockname(fd, (struct sockaddr *)&sa, &sl);
	rt_listener_start(&l, &li, fd, "test 0", on_accept, NULL);
	/* The log goes to a file we can count lines in. */
	dup2(logfd, 2);
	getrlimit(RLIMIT_NOFILE, &old);
	/* Client sockets first, then use up every remaining descriptor. */
	c1 = connect_to(ntohs(sa.sin_port));
	c2 = connect_to(ntohs(sa.sin_port));
	low = old;
	low.rlim_cur = 64;
	setrlimit(RLIMIT_NOFILE, &low);
	while (nfill < 64) {
		int x = open("/dev/null", O_RDONLY | O_CLOEXEC);

		if (x < 0)
			break;
		fill[nfill++] = x;
	}
	for (i = 0; i < 5; i++)
		rt_loop_run_once(&l, 20);
	dup2(saved_err, 2);
	ok(li.backing_off, "EMFILE: the listener backs off");
	is_int(li.ev.armed, 0, "... and is out of the epoll set (no busy loop)");
	ok(rt_timer_armed(&li.retry), "... with a retry timer armed");
	is_int(n_accepted, 0, "nothing accepted while out of descriptors");
	/* Free the descriptors: the retry accepts both waiting connections. */
	while (nfill)
		close(fill[--nfill]);
	setrlimit(RLIMIT_NOFILE, &old);
	is_int(count_lines(logpath, "accept on test 0 failed"), 1,
	       "one warning logged for repeated failures");
	for (i = 0; i < 100 && n_accepted < 2; i++)
		rt_loop_run_once(&l, 50);
	is_int(n_accepted, 2, "both pending connections accepted once descriptors are free");
	ok(!li.backing_off && li.ev.armed, "the listener is back in the epoll set");
	if (accepted_fd >= 0)
		close(accepted_fd);
	close(c1);
	close(c2);
	rt_listener_close(&l, &li);
	rt_loop_fini(&l);
	close(logfd);
	close(saved_err);
	unlink(logpath);
}

static void test_nofile(void)
{
	struct rlimit rl;
	uint64_t now = 0;

	getrlimit(RLIMIT_NOFILE, &rl);
	rt_nofile_raise(&now);
	is_int(now, rl.rlim_max, "RLIMIT_NOFILE raised to the hard limit");
}

/* ---- drain ---- */

static void test_drain_default(void)
{
	static const struct {
		const char *deadline, *grace;
		int want;
		const char *what;
	} t[] = {
	    {NULL, NULL, 5, "nothing set: 5 s"},
	    {"12", NULL, 12, "the daemon's variable in seconds"},
	    {"7s", "100", 7, "... with an s, before the grace period"},
	    {"1500ms", NULL, 2, "... in ms, rounded up"},
	    {NULL, "30", 25, "grace period less 5 s"},
	    {NULL, "3", 1, "a grace period under 5 s: 1 s"},
	    {"soon", "30", 25, "a malformed variable is ignored"},
	    {"-4", NULL, 5, "a negative one too"},
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (t[i].deadline)
			setenv("ZM_TEST_DEADLINE", t[i].deadline, 1);
		else
			unsetenv("ZM_TEST_DEADLINE");
		if (t[i].grace)
			setenv("TERMINATION_GRACE_PERIOD_SECONDS", t[i].grace, 1);
		else
			unsetenv("TERMINATION_GRACE_PERIOD_SECONDS");
		is_int(rt_drain_default_s("ZM_TEST_DEADLINE"), t[i].want, t[i].what);
	}
	unsetenv("ZM_TEST_DEADLINE");
	unsetenv("TERMINATION_GRACE_PERIOD_SECONDS");
}

static struct rt_drain drain;
static atomic_int drain_left, drain_unready;
static bool drain_quiet[2];

static void drain_woken(struct rt_loop *l, void *ud)
{
	bool *done = ud;

	(void)l;
	if (rt_drain_worker_should_quiet(&drain, done))
		rt_drain_worker_quiet(&drain, done);
}

static int drain_worker_init(struct rt_worker *w, void *ud)
{
	(void)ud;
	rt_loop_on_wake(&w->loop, drain_woken, &drain_quiet[w->id]);
	return 0;
}

static void drain_unready_fn(void *ud)
{
	(void)ud;
	atomic_fetch_add(&drain_unready, 1);
}

static unsigned int drain_left_fn(void *ud, char *what, size_t len)
{
	(void)ud;
	snprintf(what, len, "%d things", atomic_load(&drain_left));
	return (unsigned int)atomic_load(&drain_left);
}

/* A connection that closes after 300 ms: the control loop stops then, not at the deadline. */
static void drain_close_one(struct rt_loop *l, struct rt_timer *t)
{
	(void)l;
	(void)t;
	atomic_store(&drain_left, 0);
}

static void test_drain(void)
{
	const struct rt_drain_ops ops = {
	    .unready = drain_unready_fn, .left = drain_left_fn, .ud = NULL};
	struct rt_control c;
	struct rt_workers ws;
	struct rt_timer close_one;
	uint64_t t0;

	if (rt_control_init(&c, 0, NULL, NULL, NULL) ||
	    rt_workers_start(&ws, 2, drain_worker_init, NULL)) {
		ok(0, "control loop and workers for the drain");
		return;
	}
	rt_drain_init(&drain, "test", &c, &ws, -1, NULL, &ops);
	rt_drain_attach(&drain);
	ok(!rt_draining(&drain), "not draining before it begins");
	atomic_store(&drain_left, 1);
	rt_drain_begin(&drain, 10, "test");
	ok(rt_draining(&drain), "draining once begun");
	is_int(atomic_load(&drain_unready), 1, "unready first");
	is_int(atomic_load(&drain.n_quiet), 2, "both workers went quiet before begin returned");
	rt_drain_begin(&drain, 10, "again");
	is_int(atomic_load(&drain_unready), 1, "a second begin does nothing");
	rt_timer_init(&close_one, drain_close_one);
	rt_timer_after(&c.loop, &close_one, 300);
	t0 = rt_now_ms();
	rt_control_run(&c);
	ok(rt_now_ms() - t0 >= 250 && rt_now_ms() - t0 < 5000,
	   "the control loop stopped once nothing was left (%llu ms), before the deadline",
	   (unsigned long long)(rt_now_ms() - t0));
	rt_workers_stop(&ws);
	rt_control_fini(&c);
}

int main(void)
{
	obs_log_init("test", NULL);
	test_timer_order();
	test_timer_many();
	test_defer_and_closed();
	test_defer_nested();
	test_workers();
	test_accept_backoff();
	test_nofile();
	test_drain_default();
	test_drain();
	return tap_done();
}
