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

#include "hbone/hbone.h"
#include "obs/log.h"
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

static int zt_worker_listeners(struct zt_worker *w)
{
	size_t i;
	int fam, fd, r;

	for (i = 0; i < sizeof(zt_ports) / sizeof(zt_ports[0]); i++) {
		for (fam = 0; fam < 2; fam++) {
			struct rt_listen_opts o = {.family = fam ? AF_INET6 : AF_INET,
						   .port = zt_ports[i].port,
						   .reuseport = true,
						   .transparent = true,
						   .v6only = true};

			char *name = w->lis_name[w->n_lis];

			snprintf(name, sizeof(w->lis_name[0]), "%s %s:%u", zt_ports[i].what,
				 fam ? "[::]" : "0.0.0.0", zt_ports[i].port);
			fd = rt_listen(&o);
			if (fd < 0) {
				obs_log(OBS_ERROR, "ztunnel",
					"listening on %s failed: %s (needs CAP_NET_ADMIN for "
					"IP_TRANSPARENT)",
					name, strerror(-fd));
				return fd;
			}
			w->lis_kind[w->n_lis] = zt_ports[i].kind;
			r = rt_listener_start(w->loop, &w->lis[w->n_lis], fd, name, zt_accept, w);
			if (r)
				return r;
			w->n_lis++;
		}
	}
	return 0;
}

/* The control thread changed policies or the config: re-check live connections. */
static void zt_worker_woken(struct rt_loop *l, void *ud)
{
	(void)l;
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
