// SPDX-License-Identifier: Apache-2.0
/*
 * The ztunnel's admin routes and its control loop. Admin (15000, 127.0.0.1 only:
 * /config_dump, /certs, /logging, /quitquitquit), Prometheus metrics (15020: /metrics,
 * /stats/prometheus) and readiness (15021: /healthz/ready, and /drain: a Kubernetes preStop
 * hook makes us unready, so no new pod is handed to this ztunnel, before SIGTERM) are served
 * by lib/obs's responder on its own thread; this file adds the ztunnel's own pages and keeps
 * zt->ready, what /healthz/ready reports, true only while running, not draining and, with
 * istiod, once both resource types had their first answer (as the reference). The control loop (the
 * process's main thread once the workers run, lib/rt's rt_control): SIGHUP reloads, SIGTERM/SIGINT
 * stop, a timer polls the config's mtime; the auto-enrollment follows every new snapshot,
 * and every worker is woken to re-check its connections when policies or the config changed.
 */
#include <errno.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "common/heap.h"
#include "config/config.h"
#include "obs/admin.h"
#include "obs/log.h"
#include "zmesh/ports.h"
#include "authz.h"
#include "zt.h"

static struct obs_admin *zt_admin;

static void zt_h_config_dump(void *ud, const struct obs_http_req *rq, struct obs_http_resp *rs)
{
	(void)rq;
	rs->body = zt_config_dump(ud);
	if (!rs->body) {
		obs_http_text(rs, 500, "out of memory\n");
		return;
	}
	rs->len = strlen(rs->body);
	rs->ctype = "application/json";
}

static void zt_h_certs(void *ud, const struct obs_http_req *rq, struct obs_http_resp *rs)
{
	(void)rq;
	rs->body = zt_identity_certs_json(ud);
	if (!rs->body) {
		obs_http_text(rs, 503, "[]\n");
		rs->ctype = "application/json";
		return;
	}
	rs->len = strlen(rs->body);
	rs->ctype = "application/json";
}

void zt_ready_update(struct zt *zt)
{
	atomic_store(&zt->ready, atomic_load(&zt->running) && atomic_load(&zt->healthy) &&
				     !atomic_load(&zt->draining) && zt_xds_synced() &&
				     zt_kube_synced());
}

static void zt_h_drain(void *ud, const struct obs_http_req *rq, struct obs_http_resp *rs)
{
	struct zt *zt = ud;

	(void)rq;
	atomic_store(&zt->draining, true);
	zt_ready_update(zt);
	obs_log(OBS_INFO, "ztunnel", "draining: not ready from now on (preStop)");
	obs_http_text(rs, 200, "draining\n");
}

static void zt_quit(void *ud)
{
	struct zt *zt = ud;

	atomic_store(&zt->stop, true);
	rt_control_stop(&zt->control);
}

int zt_admin_start(struct zt *zt)
{
	struct obs_admin *a = obs_admin_standard(zt->opts.admin_port, zt->opts.metrics_port,
						 zt->opts.ready_port, &zt->ready, zt_quit, zt);
	int r;

	if (!a)
		return -EADDRINUSE;
	r = obs_admin_route(a, OBS_PORT_ADMIN, "/config_dump", OBS_GET, zt_h_config_dump, zt) ?:
	    obs_admin_route(a, OBS_PORT_ADMIN, "/certs", OBS_GET, zt_h_certs, zt) ?:
	    obs_admin_route(a, OBS_PORT_READY, "/drain", OBS_GET | OBS_POST, zt_h_drain, zt) ?:
	    obs_admin_start(a);
	if (r) {
		obs_admin_free(a);
		return r;
	}
	zt_admin = a;
	return 0;
}

void zt_admin_stop(void)
{
	obs_admin_free(zt_admin);
	zt_admin = NULL;
}

/* Reload (forced or on change) and enroll what the new snapshot says. */
static int zt_control_reload(struct zt *zt, bool force, bool retry_enroll)
{
	uint64_t gen = zt_authz_generation(), t0 = rt_now_ms();
	struct zt_snap *s;
	int r = zt_state_reload_if_changed(zt, force), failed = 0;

	/* Trust bundle and node certificate: reloaded on SIGHUP or when they change. */
	zt_identity_reload(zt, force);
	/* Policy files reload with the config; either change re-checks live connections. */
	zt_authz_reload(force, r == 1);
	if (zt_authz_generation() != gen)
		rt_workers_wake(&zt->rt);
	if (r == 1 || retry_enroll) {
		s = zt_state_get();
		failed = zt_enroll_sync(zt, s);
		/* make bench's scale scenario reads this line: parse, index, policies, enroll */
		/*
		 * Parsing a large config builds the whole YAML tree and frees it again: give
		 * those pages back now (50,000 workloads: ~280 MiB at the peak), or they stay in
		 * the process's RSS until the heap happens to shrink.
		 */
		if (r == 1)
			zm_heap_trim();
		if (r == 1 && s->cfg)
			obs_log(OBS_INFO, "config",
				"generation %llu applied in %llu ms (%zu workloads, %zu services)",
				(unsigned long long)s->generation,
				(unsigned long long)(rt_now_ms() - t0), s->cfg->n_workloads,
				s->cfg->n_services);
		zt_state_put(s);
	}
	return failed;
}

static int zt_enroll_failed; /* addresses the last enrollment could not enroll: retried */

static void zt_control_hup(struct rt_control *c)
{
	zt_enroll_failed = zt_control_reload(c->ud, true, zt_enroll_failed > 0);
}

static void zt_control_poll(struct rt_control *c)
{
	int missing;

	zt_enroll_failed = zt_control_reload(c->ud, false, zt_enroll_failed > 0);
	missing = zt_health_check(c->ud, zt_enroll_failed);
	if (missing)
		zt_enroll_failed = missing; /* enrolled again on the next poll */
	zt_ready_update(c->ud);
}

int zt_control_init(struct zt *zt)
{
	return rt_control_init(&zt->control, (uint64_t)zt->opts.poll_ms, zt_control_hup,
			       zt_control_poll, zt);
}

int zt_control_run(struct zt *zt)
{
	struct zt_snap *s = zt_state_get();

	zt_enroll_failed = zt_enroll_sync(zt, s);
	zt_state_put(s);
	zt_health_check(zt, zt_enroll_failed);
	atomic_store(&zt->running, true);
	zt_ready_update(zt);
	obs_log(OBS_INFO, "ztunnel", "node %s ready: %d workers, listening on %d %d %d",
		zt->opts.node, zt->n_workers, ZM_PORT_OUTBOUND, ZM_PORT_INBOUND_PLAIN,
		ZM_PORT_HBONE);
	if (!atomic_load(&zt->stop))
		rt_control_run(&zt->control);
	atomic_store(&zt->running, false);
	zt_ready_update(zt);
	return 0;
}
