// SPDX-License-Identifier: Apache-2.0
/*
 * Upstream tunnels (tunnel.h): opening a CONNECT stream on the worker's pooled HBONE client
 * connection to the pod (dialing one when none has a free stream slot), its output queue and
 * half-close, and the hb_stream callbacks, handed to the tunnel's current owner.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hbone/hbone.h"
#include "obs/log.h"
#include "tls/tls.h"
#include "zmesh/ports.h"
#include "pick.h"
#include "tunnel.h"

static struct rt_hconn *wp_tun_dial(struct wp_worker *w, const struct zm_addr *ip,
				    const char *expected_id, const char *key)
{
	struct wp *wp = w->wp;
	struct sockaddr_storage ss;
	struct zm_cert *cert = NULL;
	char err[256];
	SSL *ssl;
	socklen_t sl = zm_addr_to_sockaddr(ip, ZM_PORT_HBONE, &ss);
	int fd, one = 1;

	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&ss, sl) && errno != EINPROGRESS)
		goto err_fd;
	if (zm_identity_get(wp->idp, wp->opts.identity, &cert, err, sizeof(err))) {
		obs_log(OBS_WARN, "identity", "certificate for %s: %s", wp->opts.identity, err);
		goto err_fd;
	}
	if (zm_tls_client_ssl_new(wp->tls_client, fd, cert, &expected_id, 1, &ssl, err,
				  sizeof(err))) {
		obs_log(OBS_WARN, "hbone", "TLS to %s: %s", key, err);
		zm_cert_put(cert);
		goto err_fd;
	}
	zm_cert_put(cert);
	return rt_hset_client_new(&w->hset, key, fd, ssl, w);
err_fd:
	close(fd);
	errno = EHOSTUNREACH;
	return NULL;
}

/* A CONNECT stream to ip:port on a pooled connection keyed by pod address and identity. */
static struct hb_stream *wp_tun_stream(struct wp_worker *w, const struct zm_addr *ip,
				       unsigned int port, const char *expected_id,
				       const char *forwarded, void *ud)
{
	char key[RT_HCONN_KEY_LEN], addr[ZM_ADDR_STRLEN];
	char auth[HB_AUTHORITY_MAX], tp[HB_TRACEPARENT_LEN];
	struct hb_request req = {.authority = auth, .forwarded = forwarded, .traceparent = tp};
	struct hb_stream *st;
	struct rt_hconn *h;

	snprintf(key, sizeof(key), "%s|%s",
		 zm_addr_port_format(ip, ZM_PORT_HBONE, addr, sizeof(addr)), expected_id);
	if (hb_authority_format(ip, port, auth, sizeof(auth)) ||
	    hb_traceparent_new(tp, sizeof(tp))) {
		errno = EINVAL;
		return NULL;
	}
	h = rt_hset_find(&w->hset, key);
	if (!h)
		h = wp_tun_dial(w, ip, expected_id, key);
	if (!h)
		return NULL;
	st = hb_stream_open(h->hc, &req, ud);
	if (st)
		rt_hconn_used(h);
	return st;
}

struct wp_tun *wp_tun_open(struct wp_worker *w, const struct zm_addr *ip, unsigned int port,
			   const struct zm_cfg_workload *wl, const char *forwarded,
			   struct wp_cl_stat *cl, unsigned int max_conns,
			   const struct wp_tun_ops *ops, void *ud)
{
	char id[ZM_SPIFFE_ID_MAX];
	struct wp_tun *t;

	if (!wp_cl_conn_claim(cl, max_conns)) {
		errno = EBUSY;
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		wp_cl_conn_release(cl);
		errno = ENOMEM;
		return NULL;
	}
	t->w = w;
	t->ops = ops;
	t->ud = ud;
	t->opened_ms = w->loop->now_ms;
	zm_addr_port_format(ip, port, t->key, sizeof(t->key));
	zm_cfg_workload_identity(wl, id, sizeof(id));
	t->st = wp_tun_stream(w, ip, port, id, forwarded, t);
	if (!t->st) {
		int err = errno;

		free(t);
		wp_cl_conn_release(cl);
		errno = err;
		return NULL;
	}
	t->cl = cl;
	return t;
}

size_t wp_tun_queued(const struct wp_tun *t)
{
	return wp_q_size(&t->out);
}

int wp_tun_flush(struct wp_tun *t)
{
	int r;

	if (!t->st || t->dead)
		return -EPIPE;
	r = wp_q_flush(&t->out, t->st);
	if (r)
		return r;
	if (t->want_shut && !t->shut && !wp_q_size(&t->out)) {
		t->shut = true;
		hb_stream_shutdown(t->st);
	}
	return 0;
}

int wp_tun_write(struct wp_tun *t, const void *buf, size_t len)
{
	if (!t->st || t->dead || t->want_shut)
		return -EPIPE;
	if (wp_q_put(&t->out, buf, len))
		return -ENOMEM;
	return wp_tun_flush(t);
}

void wp_tun_end(struct wp_tun *t)
{
	t->want_shut = true;
	wp_tun_flush(t);
}

void wp_tun_resume(struct wp_tun *t)
{
	if (t->st && !t->dead)
		hb_stream_resume(t->st);
}

void wp_tun_own(struct wp_tun *t, const struct wp_tun_ops *ops, void *ud)
{
	t->ops = ops;
	t->ud = ud;
}

void wp_tun_abort(struct wp_tun *t)
{
	t->ops = NULL;
	t->ud = NULL;
	if (t->st && !t->dead) {
		t->dead = true;
		hb_stream_reset(t->st, HB_ERR_CANCEL);
	}
}

/* ---- hb_stream callbacks ---- */

void wp_tun_on_response(struct hb_stream *s, int status)
{
	struct wp_tun *t = hb_stream_ud(s);

	if (!t)
		return;
	t->ok200 = status == HB_STATUS_OK;
	if (!t->ok200)
		obs_log(OBS_INFO, "upstream", "CONNECT to %s answered %d", t->key, status);
	if (t->ops && t->ops->opened)
		t->ops->opened(t, t->ud, t->ok200);
}

size_t wp_tun_on_data(struct hb_stream *s, const uint8_t *buf, size_t len)
{
	struct wp_tun *t = hb_stream_ud(s);

	if (!t || !t->ops || t->dead)
		return len; /* nobody reads it any more: dropped */
	return t->ops->data(t, t->ud, buf, len);
}

void wp_tun_on_eof(struct hb_stream *s)
{
	struct wp_tun *t = hb_stream_ud(s);

	if (!t)
		return;
	t->eof = true;
	if (t->ops && t->ops->eof)
		t->ops->eof(t, t->ud);
}

void wp_tun_on_writable(struct hb_stream *s)
{
	struct wp_tun *t = hb_stream_ud(s);

	if (!t || wp_tun_flush(t))
		return;
	if (t->ops && t->ops->writable)
		t->ops->writable(t, t->ud);
}

static void wp_tun_free(void *p)
{
	struct wp_tun *t = p;

	wp_q_free(&t->out);
	wp_q_free(&t->held);
	free(t);
}

void wp_tun_on_close(struct hb_stream *s, uint32_t error)
{
	struct wp_tun *t = hb_stream_ud(s);

	if (!t)
		return;
	t->st = NULL;
	wp_cl_conn_release(t->cl);
	t->cl = NULL;
	if (t->ops && t->ops->closed)
		t->ops->closed(t, t->ud, error);
	rt_defer_free(t->w->loop, wp_tun_free, t);
}
