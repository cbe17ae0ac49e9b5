// SPDX-License-Identifier: Apache-2.0
/* Stopping without cutting connections (drain.h). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/list.h"
#include "obs/log.h"
#include "rt/drain.h"

#define RT_DRAIN_DEFAULT_S 5
#define RT_DRAIN_MARGIN_S  5 /* below Kubernetes' grace period, before its SIGKILL */

/* Seconds from "5", "5s" or "1500ms" (rounded up); -1 when it is none of these. */
static int rt_drain_parse_env(const char *v)
{
	char *end;
	long n;

	if (!v || !*v)
		return -1;
	n = strtol(v, &end, 10);
	if (end == v || n < 0 || n > 86400)
		return -1;
	if (!strcmp(end, "ms"))
		return (int)((n + 999) / 1000);
	return !*end || !strcmp(end, "s") ? (int)n : -1;
}

int rt_drain_default_s(const char *env)
{
	int s = env ? rt_drain_parse_env(getenv(env)) : -1;

	if (s >= 0)
		return s;
	s = rt_drain_parse_env(getenv("TERMINATION_GRACE_PERIOD_SECONDS"));
	if (s >= 0)
		return s > RT_DRAIN_MARGIN_S ? s - RT_DRAIN_MARGIN_S : 1;
	return RT_DRAIN_DEFAULT_S;
}

void rt_drain_init(struct rt_drain *d, const char *daemon, struct rt_control *control,
		   struct rt_workers *workers, int timeout_opt_s, const char *env,
		   const struct rt_drain_ops *ops)
{
	d->daemon = daemon;
	d->control = control;
	d->workers = workers;
	d->timeout_opt_s = timeout_opt_s;
	d->env = env;
	d->ops = *ops;
}

static unsigned int rt_drain_left(struct rt_drain *d, char *what, size_t len)
{
	*what = '\0';
	return d->ops.left(d->ops.ud, what, len);
}

static void rt_drain_tick(struct rt_loop *l, struct rt_timer *t)
{
	struct rt_drain *d = zm_container_of(t, struct rt_drain, tick);
	char what[128];

	uint64_t now = rt_now_ms();

	if (!rt_drain_left(d, what, sizeof(what))) {
		obs_log(OBS_INFO, d->daemon, "drained: every connection closed after %llu ms",
			(unsigned long long)(now - d->started_ms));
		rt_control_stop(d->control);
		return;
	}
	if (d->deadline_ms && now >= d->deadline_ms) {
		obs_log(OBS_WARN, d->daemon, "drain timeout after %llu ms: cutting %s still open",
			(unsigned long long)(now - d->started_ms), what);
		rt_control_stop(d->control);
		return;
	}
	rt_timer_after(l, t, RT_DRAIN_TICK_MS);
}

/* Every worker closes its listeners and sends its GOAWAYs; wait (bounded) until they did. */
static void rt_drain_quiet_workers(struct rt_drain *d)
{
	int waited = 0, n = d->workers->n;

	atomic_store(&d->quiet, true);
	rt_workers_wake(d->workers);
	while (atomic_load(&d->n_quiet) < n && waited < RT_DRAIN_QUIET_WAIT_MS) {
		usleep(1000);
		waited++;
	}
	if (atomic_load(&d->n_quiet) < n)
		obs_log(OBS_WARN, d->daemon, "%d of %d workers still accepting after %d ms",
			n - atomic_load(&d->n_quiet), n, RT_DRAIN_QUIET_WAIT_MS);
}

void rt_drain_begin(struct rt_drain *d, int timeout_s, const char *why)
{
	struct rt_loop *l = &d->control->loop;
	char what[128];

	if (atomic_exchange(&d->draining, true) && d->started_ms)
		return;
	if (d->ops.unready)
		d->ops.unready(d->ops.ud);
	rt_drain_quiet_workers(d);
	d->started_ms = rt_now_ms();
	d->deadline_ms = timeout_s > 0 ? d->started_ms + (uint64_t)timeout_s * 1000 : 0;
	rt_drain_left(d, what, sizeof(what));
	if (timeout_s > 0)
		obs_log(OBS_INFO, d->daemon,
			"draining (%s): no longer accepting; %s left, %d s to finish", why, what,
			timeout_s);
	else
		obs_log(OBS_INFO, d->daemon,
			"draining (%s): no longer accepting; %s left, no deadline", why, what);
	rt_timer_init(&d->tick, rt_drain_tick);
	rt_timer_after(l, &d->tick, 0);
}

void rt_drain_handed_over(struct rt_drain *d, const char *why)
{
	rt_drain_begin(d, d->timeout_opt_s >= 0 ? d->timeout_opt_s : 0, why);
}

/* The control loop's on_term: the first signal drains, a second cuts. */
static void rt_drain_on_term(struct rt_control *c)
{
	struct rt_drain *d = c->term_ud;
	char what[128];

	rt_drain_left(d, what, sizeof(what));
	if (!d->n_terms++) {
		if (!d->started_ms) {
			rt_drain_begin(d,
				       d->timeout_opt_s >= 0 ? d->timeout_opt_s
							     : rt_drain_default_s(d->env),
				       "SIGTERM");
			return;
		}
		/* Kubernetes deleting the pod we handed over from: keep draining. */
		obs_log(OBS_INFO, d->daemon,
			"SIGTERM while draining after a hand-over: %s left, still relayed (a "
			"second SIGTERM cuts them)",
			what);
		return;
	}
	obs_log(OBS_WARN, d->daemon, "second SIGTERM while draining: cutting %s still open", what);
	rt_control_stop(c);
}

void rt_drain_attach(struct rt_drain *d)
{
	d->control->term_ud = d;
	rt_control_on_term(d->control, rt_drain_on_term);
}
