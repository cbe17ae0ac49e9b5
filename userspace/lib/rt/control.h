/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A daemon's main thread once its workers run: one rt loop with a signalfd (SIGHUP, SIGTERM,
 * SIGINT; SIGPIPE ignored) and a poll timer (the config files' mtimes). SIGTERM and SIGINT
 * stop the loop; SIGHUP and every poll interval call the daemon. rt_control_init() must run
 * before any other thread exists: the signals are blocked in the calling thread, and threads
 * created afterwards inherit that, so only the signalfd ever sees them.
 */
#ifndef ZMESH_RT_CONTROL_H
#define ZMESH_RT_CONTROL_H

#include <stdint.h>

#include "rt/loop.h"

struct rt_control {
	struct rt_loop loop;
	struct rt_ev sig;
	struct rt_timer poll;
	uint64_t poll_ms;
	void (*on_hup)(struct rt_control *c);
	void (*on_poll)(struct rt_control *c);
	void (*on_term)(struct rt_control *c); /* NULL: SIGTERM/SIGINT stop the loop */
	void *term_ud;			       /* on_term's own (rt/drain.h), beside ud */
	void *ud;
};

/* 0 or -errno. on_hup and on_poll may be NULL; poll_ms 0 means no polling. */
int rt_control_init(struct rt_control *c, uint64_t poll_ms, void (*on_hup)(struct rt_control *c),
		    void (*on_poll)(struct rt_control *c), void *ud);
/*
 * SIGTERM and SIGINT call fn (a drain) instead of stopping the loop; fn stops it with
 * rt_control_stop() when it is done.
 */
static inline void rt_control_on_term(struct rt_control *c, void (*fn)(struct rt_control *c))
{
	c->on_term = fn;
}
/* Until SIGTERM/SIGINT (without on_term) or rt_control_stop(). */
void rt_control_run(struct rt_control *c);
/* From any thread (an admin /quitquitquit). */
void rt_control_stop(struct rt_control *c);
void rt_control_fini(struct rt_control *c);

#endif
