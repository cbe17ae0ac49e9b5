// SPDX-License-Identifier: Apache-2.0
/*
 * Downstream connections (conn.h): who the client is (its principal and namespace from the
 * peer certificate, its workload from the HBONE forwarded header), which service or pod it
 * dialed, the reference count requests and mirror copies share, and writing to the client.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "obs/log.h"

/* The source workload from the HBONE forwarded header: for="ip:port" or for="[ip]:port". */
static const struct zm_cfg_workload *wp_forwarded_workload(const struct zm_config *mesh,
							   const char *fwd)
{
	const char *p = fwd ? strstr(fwd, "for=") : NULL;
	char ip[64];
	size_t n;
	struct zm_addr a;
	char *c;

	if (!p)
		return NULL;
	p += 4 + (p[4] == '"');
	p += *p == '[';
	n = strcspn(p, "]\";,");
	snprintf(ip, sizeof(ip), "%.*s", (int)n, p);
	/* IPv4 "ip:port": cut the port; IPv6 was bracketed, so the cut above ended it. */
	if ((c = strchr(ip, ':')) && !strchr(c + 1, ':'))
		*c = '\0';
	if (zm_addr_parse(ip, &a))
		return NULL;
	return zm_config_workload_by_ip(mesh, NULL, &a);
}

static void wp_conn_timer_fired(struct rt_loop *l, struct rt_timer *t)
{
	struct wp_conn *c = zm_container_of(t, struct wp_conn, tmr);

	(void)l;
	if (!c->st)
		return;
	if (c->codec && c->codec->timer) {
		c->codec->timer(c);
	} else if (!c->codec && !c->relay) {
		/* Connected, and not a byte since: the idle timeout. */
		obs_log(OBS_INFO, "http", "connection from %s (%s) sent nothing, closing",
			c->peer[0] ? c->peer : "-", c->authority);
		wp_conn_end(c);
	}
}

struct wp_conn *wp_conn_new(struct wp_worker *w, struct hb_stream *s, const struct hb_request *req)
{
	struct wp_conn *c = calloc(1, sizeof(*c));
	struct zm_spiffe_id id;

	if (!c)
		return NULL;
	c->refs = 1;
	c->w = w;
	c->st = s;
	zm_list_add(&w->conns, &c->link);
	rt_timer_init(&c->tmr, wp_conn_timer_fired);
	c->snap = wp_snap_get(w->wp);
	c->vip = req->dst;
	c->port = req->dst_port;
	snprintf(c->authority, sizeof(c->authority), "%s", req->authority);
	snprintf(c->peer, sizeof(c->peer), "%s", zm_spiffe_principal(req->peer_identity));
	if (!zm_spiffe_id_parse(req->peer_identity, &id))
		snprintf(c->src_ns, sizeof(c->src_ns), "%s", id.ns);
	snprintf(c->forwarded, sizeof(c->forwarded), "%s", req->forwarded ? req->forwarded : "");
	c->src_wl = wp_forwarded_workload(c->snap->mesh, req->forwarded);
	c->svc = zm_config_service_by_vip(c->snap->mesh, NULL, &req->dst);
	if (!c->svc)
		c->pod = zm_config_workload_by_ip(c->snap->mesh, NULL, &req->dst);
	return c;
}

void wp_conn_ref(struct wp_conn *c)
{
	c->refs++;
}

static void wp_conn_free(void *p)
{
	struct wp_conn *c = p;

	wp_q_free(&c->in);
	wp_q_free(&c->out);
	wp_snap_put(c->snap);
	free(c);
}

void wp_conn_put(struct wp_conn *c)
{
	if (!c || --c->refs > 0)
		return;
	rt_defer_free_timed(c->w->loop, &c->tmr, wp_conn_free, c);
}

void wp_conn_flush(struct wp_conn *c)
{
	if (!c->st || wp_q_flush(&c->out, c->st) < 0)
		return;
	if (c->want_end && !c->shut && !wp_q_size(&c->out)) {
		c->shut = true;
		hb_stream_shutdown(c->st);
	}
}

void wp_conn_send(struct wp_conn *c, const void *buf, size_t len)
{
	if (!c->st || c->want_end)
		return;
	if (wp_q_put(&c->out, buf, len)) {
		wp_conn_reset(c, HB_ERR_INTERNAL);
		return;
	}
	wp_conn_flush(c);
}

void wp_conn_end(struct wp_conn *c)
{
	c->want_end = true;
	wp_conn_flush(c);
}

void wp_conn_reset(struct wp_conn *c, uint32_t code)
{
	if (c->st)
		hb_stream_reset(c->st, code);
}

void wp_conn_unlink(struct wp_conn *c)
{
	c->st = NULL;
	zm_list_del(&c->link);
}

void wp_conns_drain(struct wp_worker *w)
{
	struct zm_link *p, *n;

	zm_list_each_safe(p, n, &w->conns)
	{
		struct wp_conn *c = zm_container_of(p, struct wp_conn, link);

		/* Plain TCP relays (and connections not classified yet) run to their end. */
		if (c->st && c->codec && c->codec->drain && !c->relay)
			c->codec->drain(c);
	}
}

void wp_conn_pause(struct wp_conn *c)
{
	c->paused = true;
}

void wp_conn_resume(struct wp_conn *c)
{
	if (!c->paused || !c->st)
		return;
	c->paused = false;
	hb_stream_resume(c->st);
}
