// SPDX-License-Identifier: Apache-2.0
/*
 * Workers: one thread and one epoll loop per core, each with its own SO_REUSEPORT listeners
 * on 15001, 15006 and 15008 (IPv4 0.0.0.0 and IPv6 :: v6only, IP_TRANSPARENT so the capture
 * program's bpf_sk_assign() can hand them connections to any address; the kernel picks a
 * worker inside the reuseport group). Objects closed while a batch of events is being handled
 * are freed after the batch (zt_defer_free), so a later event of the same batch never touches
 * freed memory. A one-second tick drives dial timeouts, HBONE PINGs and pool idle release.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "authz.h"
#include "zt.h"
#include "zmesh/ports.h"

#define ZT_EVENTS 128

uint64_t zt_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int zt_ev_set(struct zt_worker *w, struct zt_ev *ev, uint32_t events)
{
	struct epoll_event e = {.events = events, .data.ptr = ev};
	int op;

	if (ev->armed == events && events)
		return 0;
	if (!events) {
		zt_ev_del(w, ev);
		return 0;
	}
	op = ev->armed ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (epoll_ctl(w->epfd, op, ev->fd, &e))
		return -errno;
	ev->armed = events;
	return 0;
}

void zt_ev_del(struct zt_worker *w, struct zt_ev *ev)
{
	if (ev->armed && ev->fd >= 0)
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, ev->fd, NULL);
	ev->armed = 0;
}

void zt_defer_free(struct zt_worker *w, void (*free_fn)(void *), void *p)
{
	struct zt_dead *d = malloc(sizeof(*d));

	if (!d) {
		/* Cannot defer: leaking is safer than a use-after-free in this batch. */
		return;
	}
	*d = (struct zt_dead){w->dead, free_fn, p};
	w->dead = d;
}

static void zt_reap(struct zt_worker *w)
{
	while (w->dead) {
		struct zt_dead *d = w->dead;

		w->dead = d->next;
		d->free_fn(d->p);
		free(d);
	}
}

static void zt_listener_event(struct zt_worker *w, struct zt_ev *ev, uint32_t events)
{
	struct zt_listener *l = (struct zt_listener *)ev;
	int i, fd, one = 1;

	(void)events;
	/* Bounded so one busy listener cannot starve the relays of this worker. */
	for (i = 0; i < 64; i++) {
		fd = accept4(ev->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				fprintf(stderr, "ztunnel: accept on port %s failed: %s\n",
					l->kind == ZT_LIS_OUTBOUND ? "15001"
					: l->kind == ZT_LIS_HBONE  ? "15008"
								   : "15006",
					strerror(errno));
			return;
		}
		/*
		 * No Nagle on any leg: HBONE writes small HTTP/2 frames (HEADERS, SETTINGS,
		 * WINDOW_UPDATE) that would otherwise wait for the peer's delayed ACK (~40 ms
		 * per connection set-up, measured by make bench).
		 */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		switch (l->kind) {
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
}

static int zt_listen(int family, int port, int *out)
{
	struct zm_addr any = {.family = family == AF_INET ? ZM_AF_INET : ZM_AF_INET6};
	struct sockaddr_storage ss;
	socklen_t sl = zm_addr_to_sockaddr(&any, (unsigned int)port, &ss);
	int one = 1, fd, r;

	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
	    (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one))) ||
	    setsockopt(fd, family == AF_INET ? SOL_IP : SOL_IPV6,
		       family == AF_INET ? IP_TRANSPARENT : IPV6_TRANSPARENT, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&ss, sl) || listen(fd, 4096)) {
		r = -errno;
		close(fd);
		return r;
	}
	*out = fd;
	return 0;
}

static int zt_worker_listeners(struct zt_worker *w)
{
	static const struct {
		int port;
		enum zt_lis_kind kind;
	} ports[] = {{ZM_PORT_OUTBOUND, ZT_LIS_OUTBOUND},
		     {ZM_PORT_INBOUND_PLAIN, ZT_LIS_INBOUND_PLAIN},
		     {ZM_PORT_HBONE, ZT_LIS_HBONE}};
	size_t i;
	int fam, fd = -1, r;

	for (i = 0; i < 3; i++) {
		for (fam = 0; fam < 2; fam++) {
			struct zt_listener *l = &w->lis[w->n_lis];

			r = zt_listen(fam ? AF_INET6 : AF_INET, ports[i].port, &fd);
			if (r) {
				fprintf(stderr,
					"ztunnel: listening on %s port %d failed: %s (needs "
					"CAP_NET_ADMIN for IP_TRANSPARENT)\n",
					fam ? "[::]" : "0.0.0.0", ports[i].port, strerror(-r));
				return r;
			}
			*l = (struct zt_listener){.ev = {zt_listener_event, fd, 0},
						  .kind = ports[i].kind};
			w->n_lis++;
			r = zt_ev_set(w, &l->ev, EPOLLIN);
			if (r)
				return r;
		}
	}
	return 0;
}

static void zt_worker_tick(struct zt_worker *w)
{
	zt_conn_tick(w);
	zt_pool_tick(w);
	zt_hsrv_tick(w);
	zt_authz_recheck(w);
}

static void *zt_worker_main(void *arg)
{
	struct zt_worker *w = arg;
	struct epoll_event evs[ZT_EVENTS];
	uint64_t last_tick = zt_now_ms();
	int n, i;

	while (!atomic_load(&w->zt->stop)) {
		n = epoll_wait(w->epfd, evs, ZT_EVENTS, 1000);
		w->now_ms = zt_now_ms();
		for (i = 0; i < n; i++) {
			struct zt_ev *ev = evs[i].data.ptr;

			ev->fn(w, ev, evs[i].events);
		}
		zt_hconn_after_batch(w);
		zt_reap(w);
		if (w->now_ms - last_tick >= 1000) {
			last_tick = w->now_ms;
			zt_worker_tick(w);
			zt_reap(w);
		}
	}
	return NULL;
}

int zt_workers_start(struct zt *zt)
{
	int i, r;

	for (i = 0; i < zt->n_workers; i++) {
		struct zt_worker *w = &zt->workers[i];

		w->zt = zt;
		w->id = i;
		w->now_ms = zt_now_ms();
		w->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (w->epfd < 0)
			return -errno;
		r = zt_worker_listeners(w);
		if (r)
			return r;
		r = zt_pool_new(w);
		if (r)
			return r;
	}
	for (i = 0; i < zt->n_workers; i++) {
		r = -pthread_create(&zt->workers[i].thread, NULL, zt_worker_main, &zt->workers[i]);
		if (r) {
			fprintf(stderr, "ztunnel: starting worker %d failed: %s\n", i,
				strerror(-r));
			return r;
		}
	}
	return 0;
}

void zt_workers_join(struct zt *zt)
{
	int i;

	for (i = 0; i < zt->n_workers; i++)
		if (zt->workers[i].thread)
			pthread_join(zt->workers[i].thread, NULL);
}
