/* SPDX-License-Identifier: Apache-2.0 */
/*
 * In-process HBONE harness for the lib/hbone unit tests: a dev CA in a temporary directory
 * (lib/tls), a client and a server hb_conn joined by a non-blocking socketpair with real
 * TLS 1.3, a poll() pump driving both, and per-stream records of what each side saw. The
 * server side echoes (or holds, or answers with a chosen status) according to its mode.
 */
#ifndef ZMESH_TEST_HBONE_HARNESS_H
#define ZMESH_TEST_HBONE_HARNESS_H

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../lib/tap.h"
#include "hbone/hbone.h"
#include "tls/tls.h"

#define TH_CLIENT_ID "spiffe://cluster.local/ns/client-ns/sa/client-sa"
#define TH_SERVER_ID "spiffe://cluster.local/ns/server-ns/sa/server-sa"

enum th_server_mode {
	TH_SERVER_ACCEPT, /* respond 200 and record what arrives */
	TH_SERVER_ECHO,	  /* respond 200 and send back every byte, END_STREAM on END_STREAM */
	TH_SERVER_HOLD,	  /* respond 200 but take nothing (a consumer that stalls) */
};

/* What one side saw of one stream. */
struct th_rec {
	struct hb_stream *s;
	int status;
	bool requested, eof, closed;
	uint32_t close_code;
	char authority[64], forwarded[128], baggage[256], traceparent[64], peer[256];
	uint8_t *data;
	size_t len, cap;
	size_t echo_pending; /* echo mode: bytes taken but not yet written back */
};

#define TH_MAX_RECS 256

struct th_side {
	struct hb_conn *conn;
	int fd;
	bool ready, conn_closed;
	int close_err;
	char close_reason[256];
	int nbad; /* on_bad_request calls, the last one's values below */
	char bad_method[32], bad_authority[64], bad_why[128];
	enum th_server_mode mode;
	int respond_status; /* 0: 200; else answer every request with this */
	bool take_all;	    /* hold mode: flip to true to consume */
	struct th_rec recs[TH_MAX_RECS];
	int nrecs;
};

struct th_pair {
	struct th_side c, s;
	uint64_t now_ms;
};

static struct zm_cert *th_server_cert;

static struct th_rec *th_rec_of(struct hb_stream *s)
{
	return hb_stream_ud(s);
}

static struct th_rec *th_rec_new(struct th_side *side, struct hb_stream *s)
{
	struct th_rec *r;

	if (side->nrecs >= TH_MAX_RECS)
		tap_bail("too many streams in test");
	r = &side->recs[side->nrecs++];
	memset(r, 0, sizeof(*r));
	r->s = s;
	hb_stream_set_ud(s, r);
	return r;
}

static void th_rec_add(struct th_rec *r, const uint8_t *buf, size_t n)
{
	if (r->len + n > r->cap) {
		r->cap = (r->len + n) * 2;
		r->data = realloc(r->data, r->cap);
		if (!r->data)
			tap_bail("out of memory");
	}
	memcpy(r->data + r->len, buf, n);
	r->len += n;
}

static void th_on_ready(struct hb_conn *conn)
{
	((struct th_side *)hb_conn_ud(conn))->ready = true;
}

static void th_on_request(struct hb_stream *s, const struct hb_request *req)
{
	struct th_side *side = hb_conn_ud(hb_stream_conn(s));
	struct th_rec *r = th_rec_new(side, s);

	r->requested = true;
	snprintf(r->authority, sizeof(r->authority), "%s", req->authority);
	snprintf(r->forwarded, sizeof(r->forwarded), "%s", req->forwarded);
	snprintf(r->baggage, sizeof(r->baggage), "%s", req->baggage);
	snprintf(r->traceparent, sizeof(r->traceparent), "%s", req->traceparent);
	snprintf(r->peer, sizeof(r->peer), "%s", req->peer_identity);
	r->status = side->respond_status ? side->respond_status : 200;
	hb_stream_respond(s, r->status);
}

static void th_on_response(struct hb_stream *s, int status)
{
	th_rec_of(s)->status = status;
}

static size_t th_on_data(struct hb_stream *s, const uint8_t *buf, size_t len)
{
	struct th_side *side = hb_conn_ud(hb_stream_conn(s));
	struct th_rec *r = th_rec_of(s);
	ssize_t n;

	if (side->mode == TH_SERVER_HOLD && !side->take_all)
		return 0;
	if (side->mode == TH_SERVER_ECHO) {
		n = hb_stream_write(s, buf, len);
		if (n < 0)
			return len;
		th_rec_add(r, buf, (size_t)n);
		return (size_t)n; /* what we could not echo stays with hbone: backpressure */
	}
	th_rec_add(r, buf, len);
	return len;
}

static void th_on_eof(struct hb_stream *s)
{
	struct th_side *side = hb_conn_ud(hb_stream_conn(s));

	th_rec_of(s)->eof = true;
	if (side->mode == TH_SERVER_ECHO)
		hb_stream_shutdown(s);
}

static void th_on_writable(struct hb_stream *s)
{
	hb_stream_resume(s);
}

static void th_on_stream_close(struct hb_stream *s, uint32_t code)
{
	struct th_rec *r = th_rec_of(s);

	if (!r)
		return;
	r->closed = true;
	r->close_code = code;
	r->s = NULL;
}

static void th_on_conn_close(struct hb_conn *conn, int err, const char *reason)
{
	struct th_side *side = hb_conn_ud(conn);

	side->conn_closed = true;
	side->close_err = err;
	snprintf(side->close_reason, sizeof(side->close_reason), "%s", reason);
	printf("# %s connection closed: %d %s\n",
	       hb_conn_role(conn) == HB_ROLE_CLIENT ? "client" : "server", err, reason);
}

static void th_on_bad_request(struct hb_conn *conn, const char *method, const char *authority,
			      const char *why)
{
	struct th_side *side = hb_conn_ud(conn);

	side->nbad++;
	snprintf(side->bad_method, sizeof(side->bad_method), "%s", method);
	snprintf(side->bad_authority, sizeof(side->bad_authority), "%s", authority);
	snprintf(side->bad_why, sizeof(side->bad_why), "%s", why);
}

static const struct hb_callbacks th_cbs = {
    .on_ready = th_on_ready,
    .on_request = th_on_request,
    .on_response = th_on_response,
    .on_data = th_on_data,
    .on_eof = th_on_eof,
    .on_writable = th_on_writable,
    .on_stream_close = th_on_stream_close,
    .on_conn_close = th_on_conn_close,
    .on_bad_request = th_on_bad_request,
};

static int th_select(void *ud, const struct zm_addr *local, struct zm_cert **out)
{
	(void)ud;
	(void)local;
	*out = zm_cert_ref(th_server_cert);
	return 0;
}

static struct zm_tls_ctx *th_sctx, *th_cctx;
static struct zm_cert *th_client_cert;

/* Dev CA, both certificates and both TLS contexts, once per test program. */
static void th_tls_init(void)
{
	char dir[] = "/tmp/zmh-hbone-XXXXXX", err[256], cmd[64];
	struct zm_tls_roots *roots;
	struct zm_ca *ca;

	if (!mkdtemp(dir))
		tap_bail("mkdtemp: %s", strerror(errno));
	if (zm_ca_init_files(dir, "cluster.local", err, sizeof(err)) ||
	    zm_ca_load(dir, &ca, err, sizeof(err)))
		tap_bail("dev CA: %s", err);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd))
		printf("# could not remove %s\n", dir);
	if (zm_ca_issue(ca, TH_SERVER_ID, 3600, &th_server_cert, err, sizeof(err)) ||
	    zm_ca_issue(ca, TH_CLIENT_ID, 3600, &th_client_cert, err, sizeof(err)))
		tap_bail("issue: %s", err);
	roots = zm_ca_roots(ca);
	if (zm_tls_server_ctx_new(roots, "cluster.local", th_select, NULL, &th_sctx, err,
				  sizeof(err)) ||
	    zm_tls_client_ctx_new(roots, &th_cctx, err, sizeof(err)))
		tap_bail("tls ctx: %s", err);
	zm_tls_roots_put(roots);
	zm_ca_free(ca);
}

static void th_pair_open(struct th_pair *p, enum th_server_mode mode)
{
	const char *expect[] = {TH_SERVER_ID};
	struct zm_addr local;
	char err[256];
	SSL *cssl, *sssl;
	int sv[2];

	memset(p, 0, sizeof(*p));
	p->now_ms = 1000;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
		tap_bail("socketpair: %s", strerror(errno));
	zm_addr_parse("127.0.0.1", &local);
	if (zm_tls_client_ssl_new(th_cctx, sv[0], th_client_cert, expect, 1, &cssl, err,
				  sizeof(err)) ||
	    zm_tls_server_ssl_new(th_sctx, sv[1], &local, &sssl, err, sizeof(err)))
		tap_bail("ssl: %s", err);
	p->c.fd = sv[0];
	p->s.fd = sv[1];
	p->s.mode = mode;
	p->c.conn = hb_conn_new(HB_ROLE_CLIENT, sv[0], cssl, &th_cbs, &p->c, p->now_ms);
	p->s.conn = hb_conn_new(HB_ROLE_SERVER, sv[1], sssl, &th_cbs, &p->s, p->now_ms);
	if (!p->c.conn || !p->s.conn)
		tap_bail("hb_conn_new: %s", strerror(errno));
}

static void th_pair_close(struct th_pair *p)
{
	int i;

	hb_conn_free(p->c.conn);
	hb_conn_free(p->s.conn);
	close(p->c.fd);
	close(p->s.fd);
	for (i = 0; i < p->c.nrecs; i++)
		free(p->c.recs[i].data);
	for (i = 0; i < p->s.nrecs; i++)
		free(p->s.recs[i].data);
}

/* One poll round over both ends (up to ms milliseconds of waiting). */
static void th_pump_once(struct th_pair *p, int ms)
{
	struct pollfd pf[2] = {{.fd = p->c.fd}, {.fd = p->s.fd}};
	struct th_side *sides[2] = {&p->c, &p->s};
	uint32_t w;
	int i;

	for (i = 0; i < 2; i++) {
		w = sides[i]->conn_closed ? 0 : hb_conn_want(sides[i]->conn);
		pf[i].events = (short)((w & EPOLLIN ? POLLIN : 0) | (w & EPOLLOUT ? POLLOUT : 0));
		if (!w)
			pf[i].fd = -1;
	}
	poll(pf, 2, ms);
	for (i = 0; i < 2; i++)
		if (!sides[i]->conn_closed && (pf[i].revents || ms == 0))
			hb_conn_io(sides[i]->conn, (uint32_t)pf[i].revents);
}

/* Pump until cond() holds or 5 s pass. Returns whether cond held. */
#define th_pump_until(p, cond)                                                                     \
	({                                                                                         \
		struct timespec t0_, t1_;                                                          \
		bool ok_ = false;                                                                  \
		clock_gettime(CLOCK_MONOTONIC, &t0_);                                              \
		for (;;) {                                                                         \
			if (cond) {                                                                \
				ok_ = true;                                                        \
				break;                                                             \
			}                                                                          \
			clock_gettime(CLOCK_MONOTONIC, &t1_);                                      \
			if (t1_.tv_sec - t0_.tv_sec > 5)                                           \
				break;                                                             \
			th_pump_once(p, 20);                                                       \
		}                                                                                  \
		ok_;                                                                               \
	})

#endif
