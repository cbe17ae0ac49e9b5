// SPDX-License-Identifier: Apache-2.0
/*
 * ztunnel's side of a drain (lib/rt/drain.h): a drain (SIGTERM, or a newer ztunnel that took
 * over our listening sockets through lib/rt/handover) makes ztunnel unready, stops every worker
 * accepting (their listeners are closed, or, after a hand-over, now only the new process's),
 * sends a GOAWAY on every HBONE connection so peers open new streams elsewhere, and keeps
 * relaying every established connection until it closes: what is left is the proxied
 * connections and the HBONE connections (pooled outbound and accepted inbound).
 *
 * A plain SIGTERM drains for Istio's CONNECTION_TERMINATION_DEADLINE, else
 * TERMINATION_GRACE_PERIOD_SECONDS less 5 s, else 5 s (the reference ztunnel's rule).
 */
#include <stdio.h>

#include "zt.h"

static void zt_drain_unready(void *ud)
{
	struct zt *zt = ud;

	atomic_store(&zt->draining, true);
	zt_ready_update(zt);
}

static unsigned int zt_drain_left(void *ud, char *what, size_t len)
{
	struct zt *zt = ud;
	int hbone = atomic_load(&zt->pool_conns) + atomic_load(&zt->hbone_inbound);
	unsigned int conns = (unsigned int)atomic_load(&zt->n_conns);

	snprintf(what, len, "%u connections and %d HBONE connections", conns, hbone);
	return conns + (unsigned int)(hbone > 0 ? hbone : 0);
}

void zt_drain_init(struct zt *zt)
{
	const struct rt_drain_ops ops = {
	    .unready = zt_drain_unready, .left = zt_drain_left, .ud = zt};

	rt_drain_init(&zt->drain, "ztunnel", &zt->control, &zt->rt, zt->opts.drain_timeout_s,
		      "CONNECTION_TERMINATION_DEADLINE", &ops);
	rt_drain_attach(&zt->drain);
}

void zt_drain_handed_over(void *ud)
{
	struct zt *zt = ud;

	/* The admin ports go to the new process with the proxy ports: it answers probes now. */
	zt_admin_stop();
	rt_drain_handed_over(&zt->drain, "handed over to a newer ztunnel");
}
