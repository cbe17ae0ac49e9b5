// SPDX-License-Identifier: Apache-2.0
/*
 * Stopping without cutting connections. A drain (SIGTERM, or a newer ztunnel that took over
 * our listening sockets through lib/rt/handover) makes ztunnel unready, stops every worker
 * accepting (their listeners are closed, or, after a hand-over, now only the new process's),
 * sends a GOAWAY on every HBONE connection so peers open new streams elsewhere, and keeps
 * relaying every established connection until it closes. The process exits when none is left
 * or when the drain timeout passes, with one log line saying which and what was cut.
 *
 * Timeouts: --drain-timeout SECONDS (0: unlimited) when given; else unlimited after a hand-over
 * (the old process costs little, and the operator's grace period is the limit that counts)
 * and the reference ztunnel's rule on a plain SIGTERM (zt_drain_default_s). A second SIGTERM
 * or SIGINT cuts what is left at once.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "obs/log.h"
#include "rt/handover.h"
#include "zt.h"

#define ZT_DRAIN_TICK_MS   100
#define ZT_DRAIN_DEFAULT_S 5
#define ZT_DRAIN_MARGIN_S  5	/* below Kubernetes' grace period, before its SIGKILL */
#define ZT_QUIET_WAIT_MS   2000 /* workers close their listeners within this */

/* Seconds from "5", "5s" or "1500ms" (rounded up); -1 when it is none of these. */
static int zt_drain_parse_env(const char *v)
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

int zt_drain_default_s(void)
{
	int s = zt_drain_parse_env(getenv("CONNECTION_TERMINATION_DEADLINE"));

	if (s >= 0)
		return s;
	s = zt_drain_parse_env(getenv("TERMINATION_GRACE_PERIOD_SECONDS"));
	if (s >= 0)
		return s > ZT_DRAIN_MARGIN_S ? s - ZT_DRAIN_MARGIN_S : 1;
	return ZT_DRAIN_DEFAULT_S;
}

static unsigned int zt_drain_left(struct zt *zt, int *hbone)
{
	*hbone = atomic_load(&zt->pool_conns) + atomic_load(&zt->hbone_inbound);
	return (unsigned int)atomic_load(&zt->n_conns);
}

static void zt_drain_tick(struct rt_loop *l, struct rt_timer *t)
{
	struct zt *zt = zm_container_of(t, struct zt, drain_tick);
	unsigned int left;
	int hbone;

	left = zt_drain_left(zt, &hbone);
	if (!left && !hbone) {
		obs_log(OBS_INFO, "ztunnel", "drained: every connection closed after %llu ms",
			(unsigned long long)(l->now_ms - zt->drain_started_ms));
		rt_control_stop(&zt->control);
		return;
	}
	if (zt->drain_deadline_ms && l->now_ms >= zt->drain_deadline_ms) {
		obs_log(OBS_WARN, "ztunnel",
			"drain timeout after %llu ms: cutting %u connections still open (%d HBONE "
			"connections)",
			(unsigned long long)(l->now_ms - zt->drain_started_ms), left, hbone);
		rt_control_stop(&zt->control);
		return;
	}
	rt_timer_after(l, t, ZT_DRAIN_TICK_MS);
}

/* Every worker closes its listeners and sends its GOAWAYs; wait (bounded) until they did. */
static void zt_drain_quiet_workers(struct zt *zt)
{
	int waited = 0;

	atomic_store(&zt->quiet, true);
	rt_workers_wake(&zt->rt);
	while (atomic_load(&zt->n_quiet) < zt->rt.n && waited < ZT_QUIET_WAIT_MS) {
		usleep(1000);
		waited++;
	}
	if (atomic_load(&zt->n_quiet) < zt->rt.n)
		obs_log(OBS_WARN, "ztunnel", "%d of %d workers still accepting after %d ms",
			zt->rt.n - atomic_load(&zt->n_quiet), zt->rt.n, ZT_QUIET_WAIT_MS);
}

void zt_drain_begin(struct zt *zt, int timeout_s, const char *why)
{
	struct rt_loop *l = &zt->control.loop;
	unsigned int left;
	int hbone;

	if (atomic_exchange(&zt->draining, true) && zt->drain_started_ms)
		return;
	zt_ready_update(zt);
	zt_drain_quiet_workers(zt);
	zt->drain_started_ms = rt_now_ms();
	zt->drain_deadline_ms =
	    timeout_s > 0 ? zt->drain_started_ms + (uint64_t)timeout_s * 1000 : 0;
	left = zt_drain_left(zt, &hbone);
	if (timeout_s > 0)
		obs_log(
		    OBS_INFO, "ztunnel",
		    "draining (%s): no longer accepting; %u connections and %d HBONE connections "
		    "left, %d s to finish",
		    why, left, hbone, timeout_s);
	else
		obs_log(
		    OBS_INFO, "ztunnel",
		    "draining (%s): no longer accepting; %u connections and %d HBONE connections "
		    "left, no deadline",
		    why, left, hbone);
	rt_timer_init(&zt->drain_tick, zt_drain_tick);
	rt_timer_after(l, &zt->drain_tick, 0);
}

void zt_drain_on_term(struct rt_control *c)
{
	struct zt *zt = c->ud;
	unsigned int left;
	int hbone;

	left = zt_drain_left(zt, &hbone);
	if (!zt->n_terms++) {
		if (!zt->drain_started_ms) {
			zt_drain_begin(zt,
				       zt->opts.drain_timeout_s >= 0 ? zt->opts.drain_timeout_s
								     : zt_drain_default_s(),
				       "SIGTERM");
			return;
		}
		/* Kubernetes deleting the pod we handed over from: keep draining. */
		obs_log(OBS_INFO, "ztunnel",
			"SIGTERM while draining after a hand-over: %u connections left, still "
			"relayed (a second SIGTERM cuts them)",
			left);
		return;
	}
	obs_log(OBS_WARN, "ztunnel",
		"second SIGTERM while draining: cutting %u connections still open (%d HBONE "
		"connections)",
		left, hbone);
	rt_control_stop(c);
}

void zt_drain_handed_over(void *ud)
{
	struct zt *zt = ud;

	/* The admin ports go to the new process with the proxy ports: it answers probes now. */
	zt_admin_stop();
	zt_drain_begin(zt, zt->opts.drain_timeout_s >= 0 ? zt->opts.drain_timeout_s : 0,
		       "handed over to a newer ztunnel");
}
