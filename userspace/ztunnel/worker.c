// SPDX-License-Identifier: Apache-2.0
/*
 * The ztunnel's workers on the runtime (lib/rt): per worker, SO_REUSEPORT listeners on 15001,
 * 15006 and 15008 (IPv4 0.0.0.0 and IPv6 :: v6only, IP_TRANSPARENT so the capture program's
 * bpf_sk_assign() can hand them connections to any address; the kernel picks a worker inside
 * the reuseport group) that hand accepted sockets to the outbound, inbound plaintext and HBONE
 * paths, and the worker's HBONE connection set. Accept back-off, deferred release and timers
 * are the runtime's; a wake-up from the control thread (policy or config changed) makes each
 * worker re-check its live connections.
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#include "hbone/hbone.h"
#include "obs/log.h"
#include "rt/handover.h"
#include "authz.h"
#include "zt.h"
#include "zmesh/ports.h"

static const struct {
	unsigned int port;
	enum zt_lis_kind kind;
	const char *what;
} zt_ports[] = {
    {ZM_PORT_OUTBOUND, ZT_LIS_OUTBOUND, "outbound"},
    {ZM_PORT_INBOUND_PLAIN, ZT_LIS_INBOUND_PLAIN, "inbound plaintext"},
    {ZM_PORT_HBONE, ZT_LIS_HBONE, "HBONE"},
};

static void zt_accept(struct rt_loop *l, struct rt_listener *li, int fd)
{
	struct zt_worker *w = li->ud;

	(void)l;
	switch (w->lis_kind[li - w->lis]) {
	case ZT_LIS_OUTBOUND:
		zt_outbound_accept(w, fd);
		break;
	case ZT_LIS_INBOUND_PLAIN:
		zt_inbound_plain_accept(w, fd);
		break;
	case ZT_LIS_HBONE:
		zt_hbone_accept(w, fd);
		break;
	}
}

/* Start accepting on fd as listener kind; it is offered to a future process under name. */
static int zt_worker_listen_fd(struct zt_worker *w, int fd, enum zt_lis_kind kind, const char *what,
			       bool v6, const char *name)
{
	char *text = w->lis_name[w->n_lis];
	int r;

	if (w->n_lis == ZT_MAX_LIS) {
		obs_log(OBS_ERROR, "ztunnel", "worker %d: more than %d listening sockets", w->id,
			ZT_MAX_LIS);
		close(fd);
		return -ENOSPC;
	}
	snprintf(text, sizeof(w->lis_name[0]), "%s %s", what, v6 ? "[::]" : "0.0.0.0");
	w->lis_kind[w->n_lis] = kind;
	r = rt_listener_start(w->loop, &w->lis[w->n_lis], fd, text, zt_accept, w);
	if (r) {
		close(fd);
		return r;
	}
	w->n_lis++;
	return rt_export_add(name, fd);
}

/*
 * One kind and family of listener for this worker: the sockets inherited from the process we
 * took over from (spread so that every later worker still gets one, the rest kept here: none is
 * closed, so no connection waiting in an accept queue is lost), else a new socket joining the
 * SO_REUSEPORT group.
 */
static int zt_worker_listen(struct zt_worker *w, unsigned int i, bool v6)
{
	struct rt_listen_opts o = {.family = v6 ? AF_INET6 : AF_INET,
				   .port = zt_ports[i].port,
				   .reuseport = true,
				   .transparent = true,
				   .v6only = true};
	unsigned int want, k;
	char name[RT_HANDOVER_NAME_LEN], what[32];
	int fd, r;

	snprintf(name, sizeof(name), "ztunnel:%u:%d", zt_ports[i].port, v6 ? 6 : 4);
	snprintf(what, sizeof(what), "%s :%u", zt_ports[i].what, zt_ports[i].port);
	want = rt_inherit_share(name, w->id, w->zt->n_workers);
	for (k = 0; k < want; k++) {
		fd = rt_inherit_take(name);
		r = zt_worker_listen_fd(w, fd, zt_ports[i].kind, what, v6, name);
		if (r)
			return r;
	}
	if (want)
		return 0;
	fd = rt_listen(&o);
	if (fd < 0) {
		obs_log(OBS_ERROR, "ztunnel",
			"listening on %s %s failed: %s (needs CAP_NET_ADMIN for IP_TRANSPARENT)",
			what, v6 ? "[::]" : "0.0.0.0", strerror(-fd));
		return fd;
	}
	return zt_worker_listen_fd(w, fd, zt_ports[i].kind, what, v6, name);
}

static int zt_worker_listeners(struct zt_worker *w)
{
	unsigned int i;
	int r;

	for (i = 0; i < sizeof(zt_ports) / sizeof(zt_ports[0]); i++) {
		r = zt_worker_listen(w, i, false) ?: zt_worker_listen(w, i, true);
		if (r)
			return r;
	}
	return 0;
}

void zt_worker_quiet(struct zt_worker *w)
{
	int i;

	if (!rt_drain_worker_should_quiet(&w->zt->drain, &w->quiet))
		return;
	for (i = 0; i < w->n_lis; i++) {
		rt_export_del(w->lis[i].ev.fd);
		rt_listener_close(w->loop, &w->lis[i]);
	}
	w->n_lis = 0;
	rt_hset_drain(&w->hset);
	rt_drain_worker_quiet(&w->zt->drain, &w->quiet);
}

/* The control thread changed policies or the config: re-check live connections. */
static void zt_worker_woken(struct rt_loop *l, void *ud)
{
	(void)l;
	zt_worker_quiet(ud);
	zt_authz_recheck(ud);
}

int zt_worker_init(struct rt_worker *rw, void *ud)
{
	struct zt *zt = ud;
	struct zt_worker *w = &zt->workers[rw->id];
	int r;

	w->zt = zt;
	w->id = rw->id;
	w->loop = &rw->loop;
	zm_list_init(&w->conns);
	rw->ud = w;
	rt_loop_on_wake(w->loop, zt_worker_woken, w);
	if (!w->id) {
		r = hb_ktls_probe();
		obs_log(OBS_INFO, "hbone", "kTLS %s: TLS records are made in userspace",
			r ? "not in this kernel" : "available but not used yet");
	}
	r = zt_worker_listeners(w);
	return r ? r : zt_hset_init(w);
}
