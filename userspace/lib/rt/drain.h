/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Stopping without cutting connections, the same way in every daemon. A drain (SIGTERM, a
 * preStop, or a newer process that took our listening sockets over through rt/handover.h)
 * makes the daemon unready and its workers stop accepting (each closes its listeners and sends
 * GOAWAY on its HBONE connections, then says so with rt_drain_worker_quiet), and keeps
 * relaying every established connection until it closes. The control loop looks every 100 ms:
 * the process stops when nothing is left or when the drain timeout passes, with one log line
 * saying which and what was cut. A second SIGTERM or SIGINT cuts what is left at once.
 *
 * Timeouts: the daemon's --drain-timeout SECONDS (0: unlimited) when given; else unlimited
 * after a hand-over (the old process costs little, and the operator's grace period is the limit
 * that counts) and rt_drain_default_s() on a plain SIGTERM.
 */
#ifndef ZMESH_RT_DRAIN_H
#define ZMESH_RT_DRAIN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rt/control.h"
#include "rt/workers.h"

#define RT_DRAIN_TICK_MS       100
#define RT_DRAIN_QUIET_WAIT_MS 2000 /* workers close their listeners within this */

struct rt_drain_ops {
	/* Not ready from now on (runs first, in the control loop). May be NULL. */
	void (*unready)(void *ud);
	/*
	 * What is still open: 0 when nothing is, and a phrase for the log ("3 connections and 1
	 * HBONE connections") in what. Called from the control loop.
	 */
	unsigned int (*left)(void *ud, char *what, size_t len);
	void *ud;
};

struct rt_drain {
	const char *daemon; /* log scope and name */
	struct rt_control *control;
	struct rt_workers *workers; /* woken to go quiet */
	struct rt_drain_ops ops;
	int timeout_opt_s; /* --drain-timeout; -1: not given */
	const char *env;   /* the daemon's deadline variable, see rt_drain_default_s */
	atomic_bool draining;
	atomic_bool quiet;  /* workers must stop accepting and send GOAWAYs */
	atomic_int n_quiet; /* workers that did */
	struct rt_timer tick;
	uint64_t started_ms, deadline_ms; /* control loop clock; deadline 0: none */
	unsigned int n_terms;
};

/*
 * Seconds a plain SIGTERM drains for: env (the daemon's own variable: "5", "5s" or "1500ms")
 * when set, else TERMINATION_GRACE_PERIOD_SECONDS less a 5 s margin (so the drain ends before
 * Kubernetes' SIGKILL), else 5.
 */
int rt_drain_default_s(const char *env);

/* Set d up; nothing happens until rt_drain_begin or a signal (rt_drain_attach). */
void rt_drain_init(struct rt_drain *d, const char *daemon, struct rt_control *control,
		   struct rt_workers *workers, int timeout_opt_s, const char *env,
		   const struct rt_drain_ops *ops);
/* SIGTERM and SIGINT drain from now on (the control's ud must stay the daemon's). */
void rt_drain_attach(struct rt_drain *d);
/* Begin draining (once; later calls do nothing): timeout_s 0 means no deadline. */
void rt_drain_begin(struct rt_drain *d, int timeout_s, const char *why);
/* A newer process serves on our sockets: drain with the option's timeout, else none. */
void rt_drain_handed_over(struct rt_drain *d, const char *why);

/* In a worker after a wake-up: true once it must stop accepting (and has not said so yet). */
static inline bool rt_drain_worker_should_quiet(struct rt_drain *d, bool *done)
{
	return atomic_load(&d->quiet) && !*done;
}
/* The worker closed its listeners and sent its GOAWAYs. */
static inline void rt_drain_worker_quiet(struct rt_drain *d, bool *done)
{
	*done = true;
	atomic_fetch_add(&d->n_quiet, 1);
}
static inline bool rt_draining(struct rt_drain *d)
{
	return atomic_load(&d->draining);
}

#endif
