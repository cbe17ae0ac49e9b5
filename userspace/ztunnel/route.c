// SPDX-License-Identifier: Apache-2.0
/*
 * Routing decisions over one config snapshot (route.h): source workload by address, service
 * VIP -> weighted endpoint, pod IP -> workload, waypoints (userspace/ztunnel/README.md),
 * passthrough for everything the mesh does not know. Pure: no I/O, no clock, randomness passed in.
 */
#include "route.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "config/config.h"

static const char *const zt_outcome_names[ZT_OUT_MAX] = {
#define ZT_OUTCOME_NAME(n, s, h) s,
    ZT_OUTCOMES(ZT_OUTCOME_NAME)
#undef ZT_OUTCOME_NAME
};

static const char *const zt_outcome_helps[ZT_OUT_MAX] = {
#define ZT_OUTCOME_HELP(n, s, h) h,
    ZT_OUTCOMES(ZT_OUTCOME_HELP)
#undef ZT_OUTCOME_HELP
};

const char *zt_outcome_name(enum zt_outcome o)
{
	return (unsigned int)o < ZT_OUT_MAX ? zt_outcome_names[o] : "?";
}

const char *zt_outcome_help(enum zt_outcome o)
{
	return (unsigned int)o < ZT_OUT_MAX ? zt_outcome_helps[o] : "?";
}

void zt_snap_destroy(struct zt_snap *s)
{
	size_t i;

	if (!s)
		return;
	if (s->eps)
		for (i = 0; i < s->cfg->n_services; i++)
			free(s->eps[i]);
	free(s->eps);
	free(s->n_eps);
	zm_config_free(s->cfg);
	free(s);
}

struct zt_snap *zt_snap_build(struct zm_config *cfg, const char *node)
{
	struct zt_snap *s = calloc(1, sizeof(*s));
	size_t i, j, n = cfg->n_services;

	if (!s)
		goto err;
	s->cfg = cfg;
	s->node = node ? node : "";
	s->eps = calloc(n ? n : 1, sizeof(*s->eps));
	s->n_eps = calloc(n ? n : 1, sizeof(*s->n_eps));
	if (!s->eps || !s->n_eps)
		goto err_snap;
	/* Two passes: count each service's endpoints, then fill. */
	for (i = 0; i < cfg->n_workloads; i++)
		for (j = 0; j < cfg->workloads[i].n_services; j++)
			if (cfg->workloads[i].services[j].service)
				s->n_eps[cfg->workloads[i].services[j].service - cfg->services]++;
	for (i = 0; i < n; i++) {
		s->eps[i] = calloc(s->n_eps[i] ? s->n_eps[i] : 1, sizeof(**s->eps));
		if (!s->eps[i])
			goto err_snap;
		s->n_eps[i] = 0;
	}
	for (i = 0; i < cfg->n_workloads; i++) {
		const struct zm_cfg_workload *wl = &cfg->workloads[i];

		for (j = 0; j < wl->n_services; j++) {
			size_t k;

			if (!wl->services[j].service)
				continue;
			k = (size_t)(wl->services[j].service - cfg->services);
			s->eps[k][s->n_eps[k]++] = (struct zt_svc_ep){wl, &wl->services[j]};
		}
	}
	return s;

err_snap:
	s->cfg = NULL; /* the caller still owns cfg on failure */
	zt_snap_destroy(s);
err:
	errno = ENOMEM;
	return NULL;
}

bool zt_route_wl_addr(const struct zm_cfg_workload *wl, __u8 family, struct zm_addr *out)
{
	size_t i;

	if (!wl->n_ips)
		return false;
	for (i = 0; i < wl->n_ips; i++) {
		if (wl->ips[i].addr.family == family) {
			*out = wl->ips[i].addr;
			return true;
		}
	}
	*out = wl->ips[0].addr;
	return true;
}

static bool zt_wl_is_local(const struct zt_snap *s, const struct zm_cfg_workload *wl)
{
	return wl && s->node[0] && !strcmp(wl->node, s->node);
}

const struct zm_cfg_workload *zt_route_local_workload(const struct zt_snap *s,
						      const struct zm_addr *addr)
{
	const struct zm_cfg_workload *wl = zm_config_workload_by_ip(s->cfg, NULL, addr);

	return zt_wl_is_local(s, wl) ? wl : NULL;
}

/* The target port of service port sport on one endpoint; 0 when the service lacks sport. */
static __u16 zt_ep_target_port(const struct zm_cfg_service *svc, const struct zt_svc_ep *ep,
			       __u16 sport)
{
	__u16 target = 0;
	bool found = false;
	size_t i;

	for (i = 0; i < svc->n_ports; i++) {
		if (svc->ports[i].service_port == sport) {
			target = svc->ports[i].target_port;
			found = true;
		}
	}
	if (!found)
		return 0;
	/* The workload's own port map wins: it knows the pod's real container port. */
	for (i = 0; i < ep->ref->n_ports; i++)
		if (ep->ref->ports[i].service_port == sport && ep->ref->ports[i].target_port)
			target = ep->ref->ports[i].target_port;
	return target ? target : sport;
}

static bool zt_ep_usable(const struct zm_cfg_service *svc, const struct zm_cfg_workload *wl,
			 __u8 family, bool need_family)
{
	size_t i;

	if (wl->status != ZM_CFG_HEALTHY && svc->load_balancer.health_policy != ZM_CFG_LB_ALLOW_ALL)
		return false;
	if (!wl->capacity || !wl->n_ips)
		return false;
	if (!need_family)
		return true;
	for (i = 0; i < wl->n_ips; i++)
		if (wl->ips[i].addr.family == family)
			return true;
	return false;
}

const struct zm_cfg_workload *zt_route_pick_endpoint(const struct zt_snap *s,
						     const struct zm_cfg_service *svc, __u16 sport,
						     __u8 family, __u32 rnd, struct zm_addr *addr,
						     __u16 *port)
{
	size_t k = (size_t)(svc - s->cfg->services), i;
	const struct zt_svc_ep *eps = s->eps[k];
	__u64 total = 0, pick;
	int pass;

	/* Prefer endpoints with an address of the client's family; fall back to any. */
	for (pass = 0; pass < 2 && !total; pass++)
		for (i = 0; i < s->n_eps[k]; i++)
			if (zt_ep_usable(svc, eps[i].wl, family, pass == 0))
				total += eps[i].wl->capacity;
	if (!total)
		return NULL;
	pass--;
	pick = rnd % total;
	for (i = 0; i < s->n_eps[k]; i++) {
		if (!zt_ep_usable(svc, eps[i].wl, family, pass == 0))
			continue;
		if (pick < eps[i].wl->capacity) {
			*port = zt_ep_target_port(svc, &eps[i], sport);
			zt_route_wl_addr(eps[i].wl, family, addr);
			return eps[i].wl;
		}
		pick -= eps[i].wl->capacity;
	}
	return NULL;
}

/* Resolve a waypoint reference to a workload and address. false when it names nothing. */
static bool zt_gateway_resolve(const struct zt_snap *s, const struct zm_cfg_gateway *gw,
			       __u8 family, __u32 rnd, struct zt_route *r)
{
	__u16 port;

	if (!gw->present)
		return false;
	if (!gw->is_hostname) {
		r->dial_addr = gw->address.addr;
		r->waypoint =
		    zm_config_workload_by_ip(s->cfg, gw->address.network, &gw->address.addr);
	} else {
		if (!gw->service)
			return false;
		r->waypoint = zt_route_pick_endpoint(s, gw->service, gw->hbone_mtls_port, family,
						     rnd, &r->dial_addr, &port);
		if (!r->waypoint)
			return false;
	}
	r->dial_port = gw->hbone_mtls_port;
	r->kind = ZT_ROUTE_HBONE;
	r->via_waypoint = true;
	return true;
}

/* True when src is the waypoint of gw (rule 3: never send a waypoint back to itself). */
static bool zt_is_own_waypoint(const struct zt_snap *s, const struct zm_cfg_gateway *gw,
			       const struct zm_cfg_workload *src)
{
	if (!gw->present)
		return false;
	if (!gw->is_hostname)
		return zm_config_workload_by_ip(s->cfg, gw->address.network, &gw->address.addr) ==
		       src;
	if (gw->service) {
		size_t k = (size_t)(gw->service - s->cfg->services), i;

		for (i = 0; i < s->n_eps[k]; i++)
			if (s->eps[k][i].wl == src)
				return true;
	}
	return false;
}

/* Direct (no waypoint) to a known destination workload at r->target. */
static void zt_route_direct(const struct zt_snap *s, struct zt_route *r)
{
	r->dial_addr = r->target_addr;
	r->dial_port = r->target_port;
	if (zt_wl_is_local(s, r->dst)) {
		r->kind = ZT_ROUTE_LOCAL;
	} else if (r->dst->protocol == ZM_CFG_PROTO_HBONE) {
		r->kind = ZT_ROUTE_HBONE;
		r->dial_port = ZM_PORT_HBONE;
	} else {
		r->kind = ZT_ROUTE_TCP;
	}
}

int zt_route_outbound(const struct zt_snap *s, const struct zm_addr *src, const struct zm_addr *dst,
		      __u16 dport, __u32 rnd, struct zt_route *r)
{
	const struct zm_cfg_service *svc;
	const struct zm_cfg_workload *wl;

	memset(r, 0, sizeof(*r));
	r->target_addr = *dst;
	r->target_port = dport;
	r->src = zt_route_local_workload(s, src);
	if (!r->src) {
		/* Fail closed: only this node's pods may originate mesh traffic through us. */
		r->refuse = ZT_OUT_UNKNOWN_SOURCE;
		return 0;
	}
	svc = zm_config_service_by_vip(s->cfg, NULL, dst);
	if (svc) {
		r->svc = svc;
		/* Rule 1: a service waypoint gets the original VIP:port as the authority. */
		if (!zt_is_own_waypoint(s, &svc->waypoint, r->src) &&
		    zt_gateway_resolve(s, &svc->waypoint, dst->family, rnd, r))
			return 0;
		r->kind = ZT_ROUTE_REFUSE;
		r->dst = zt_route_pick_endpoint(s, svc, dport, dst->family, rnd, &r->target_addr,
						&r->target_port);
		if (!r->dst) {
			r->target_addr = *dst;
			r->refuse = ZT_OUT_NO_ENDPOINT;
			return 0;
		}
		if (!r->target_port) {
			r->refuse = ZT_OUT_NO_PORT;
			return 0;
		}
		zt_route_direct(s, r);
		return 0;
	}
	wl = zm_config_workload_by_ip(s->cfg, NULL, dst);
	if (!wl) {
		/* Not ours: keep the client's destination, like the reference's passthrough. */
		r->kind = ZT_ROUTE_PASSTHROUGH;
		r->dial_addr = *dst;
		r->dial_port = dport;
		return 0;
	}
	r->dst = wl;
	/* Rule 3: a pod behind a waypoint, unless the caller is that waypoint. */
	if (!zt_is_own_waypoint(s, &wl->waypoint, r->src) &&
	    zt_gateway_resolve(s, &wl->waypoint, dst->family, rnd, r))
		return 0;
	zt_route_direct(s, r);
	return 0;
}

bool zt_route_direct_hbone(const struct zt_route *r)
{
	return r->kind == ZT_ROUTE_HBONE && r->dst && !r->via_waypoint && !r->waypoint;
}

bool zt_route_plaintext(struct zt_route *r)
{
	if (!zt_route_direct_hbone(r))
		return false;
	r->kind = ZT_ROUTE_MTLS_DISABLED;
	r->dial_addr = r->target_addr;
	r->dial_port = r->target_port;
	return true;
}

int zt_pool_key_format(const char *src_id, const char *dst_id, const struct zm_addr *src,
		       const struct zm_addr *dst, __u16 dport, char *buf, size_t len)
{
	char a[ZM_ADDR_STRLEN], b[ZM_ADDR_STRLEN];
	int n;

	n = snprintf(buf, len, "%s|%s|%s|%s", src_id, dst_id, zm_addr_format(src, a, sizeof(a)),
		     zm_addr_port_format(dst, dport, b, sizeof(b)));
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}
