// SPDX-License-Identifier: Apache-2.0
/*
 * One zmesh-ca connection, driven by the event loop (lib/rt) of the worker that accepted it:
 * mutual TLS 1.3 (client certificate verified against the CA's root, required unless
 * --tokens; ALPN h2 required) handshaken on a non-blocking socket, then the HTTP/2 session of
 * rpc.c fed from TLS and flushed back into it. One timer per connection holds the deadline of
 * its phase (ca.h: handshake, busy, idle), armed when the phase begins and never moved by
 * bytes arriving, so a peer trickling bytes is closed on time and a stalled peer costs a few
 * kilobytes, not a thread. Handshaking and idle connections are registered as evictable
 * (limits.c picks one when every slot is taken).
 */
#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "ca.h"
#include "conn.h"
#include "obs/log.h"
#include "rt/workers.h"

static const unsigned char alpn_h2[] = {2, 'h', '2'};

static int zca_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
			   const unsigned char *in, unsigned int inlen, void *arg)
{
	(void)ssl;
	(void)arg;
	if (SSL_select_next_proto((unsigned char **)out, outlen, alpn_h2, sizeof(alpn_h2), in,
				  inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL; /* gRPC needs h2: refuse in the handshake */
	return SSL_TLSEXT_ERR_OK;
}

int zca_ssl_ctx_init(struct zca *z, char *err, size_t len)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	int r;

	if (!ctx)
		return snprintf(err, len, "SSL_CTX_new failed"), -ENOMEM;
	r = zca_server_cert(z, &cert, &key, err, len);
	if (r)
		goto fail;
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384") ||
	    SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
	    !X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), z->ca_cert)) {
		snprintf(err, len, "configuring TLS: %s", ERR_reason_error_string(ERR_get_error()));
		r = -EINVAL;
		goto fail;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	/* Non-blocking writes: a partial SSL_write is fine and the buffer may move between
	 * retries. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				  SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* With --tokens a client may authenticate by Bearer token instead of a certificate. */
	SSL_CTX_set_verify(
	    ctx, SSL_VERIFY_PEER | (z->tokens_path ? 0 : SSL_VERIFY_FAIL_IF_NO_PEER_CERT), NULL);
	SSL_CTX_set_alpn_select_cb(ctx, zca_alpn_select, NULL);
	X509_free(cert);
	EVP_PKEY_free(key);
	z->ssl_ctx = ctx;
	return 0;
fail:
	ERR_clear_error();
	X509_free(cert);
	EVP_PKEY_free(key);
	SSL_CTX_free(ctx);
	return r;
}

/* The caller's SPIFFE id (first spiffe:// URI SAN that parses) and subject CN. */
static void zca_caller_fill(struct zca_caller *c, X509 *x)
{
	GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);

	for (int i = 0; names && i < sk_GENERAL_NAME_num(names) && !c->id[0]; i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
		int n;

		if (gn->type != GEN_URI)
			continue;
		n = ASN1_STRING_length(gn->d.uniformResourceIdentifier);
		if (n <= 0 || (size_t)n >= sizeof(c->id))
			continue;
		memcpy(c->id, ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier), (size_t)n);
		c->id[n] = '\0';
		if (strlen(c->id) != (size_t)n || zm_spiffe_id_parse(c->id, NULL))
			c->id[0] = '\0';
	}
	GENERAL_NAMES_free(names);
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, c->node,
				      sizeof(c->node)) <= 0)
		c->node[0] = '\0';
}

/* ---- phases and their deadlines ---- */

/*
 * Enter phase ph at the loop's clock: evictable or not (limits.c) and the deadline. Busy: the
 * oldest open request's start + --request-timeout-ms, so a new request on a busy connection
 * does not extend an older one's deadline.
 */
void zca_conn_phase(struct zca_conn *c, enum zca_phase ph)
{
	struct zca *z = c->z;
	uint64_t oldest = UINT64_MAX;

	if (c->ev.closed)
		return; /* nghttp2 closing streams while the connection is released */
	zca_evict_track(c, ph, false);
	switch (ph) {
	case ZCA_PH_HANDSHAKE:
		rt_timer_after(c->loop, &c->deadline, (uint64_t)z->handshake_ms);
		break;
	case ZCA_PH_IDLE:
		rt_timer_after(c->loop, &c->deadline, (uint64_t)z->idle_ms);
		break;
	case ZCA_PH_BUSY:
		for (struct zca_stream *s = c->streams; s; s = s->next)
			if (s->start_ms < oldest)
				oldest = s->start_ms;
		if (oldest == UINT64_MAX)
			oldest = c->loop->now_ms;
		rt_timer_arm(c->loop, &c->deadline, oldest + (uint64_t)z->request_ms);
		break;
	}
}

/* ---- the connection ---- */

/*
 * Why a handshake failed, into buf. Returns true when the peer just went away (closed or
 * reset the connection) rather than sent something we refused: scanners and slow peers do
 * that by the thousand, so those lines are rate-limited.
 */
static bool zca_ssl_why(SSL *ssl, char *buf, size_t len)
{
	long v = SSL_get_verify_result(ssl);
	unsigned long e = ERR_get_error();
	bool gone = false;

	if (v != X509_V_OK) {
		snprintf(buf, len, "client certificate refused: %s",
			 X509_verify_cert_error_string(v));
	} else if (e) {
		snprintf(buf, len, "%s", ERR_reason_error_string(e) ?: "TLS error");
		gone = ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
	} else {
		snprintf(buf, len, "connection closed during the handshake");
		gone = true;
	}
	ERR_clear_error();
	return gone;
}

static void zca_conn_free(void *p)
{
	struct zca_conn *c = p;

	nghttp2_session_del(c->h2); /* frees nghttp2's streams, not ours: */
	while (c->streams) {
		struct zca_stream *s = c->streams;

		c->streams = s->next;
		free(s->body);
		free(s->resp);
		free(s);
	}
	ERR_clear_error();
	SSL_free(c->ssl);
	free(c->out);
	free(c);
}

void zca_conn_close(struct zca_conn *c)
{
	if (c->ev.closed)
		return;
	if (c->handshaken && !c->out_len) {
		SSL_shutdown(c->ssl); /* best effort: non-blocking */
		ERR_clear_error();
	}
	rt_ev_close(c->loop, &c->ev, false);
	zca_evict_track(c, c->phase, true);
	zca_peer_put(c->z, c->peer);
	atomic_fetch_sub(&c->z->nconns, 1);
	rt_defer_free_timed(c->loop, &c->deadline, zca_conn_free, c);
}

/* Queue what nghttp2 has to send and write what TLS takes. 0, or -1 when the peer is gone. */
static int zca_flush(struct zca_conn *c)
{
	const uint8_t *p;
	ssize_t n;

	while ((n = nghttp2_session_mem_send(c->h2, &p)) > 0) {
		if (c->out_len + (size_t)n > c->out_cap) {
			size_t cap = (c->out_len + (size_t)n) * 2;
			uint8_t *nb = realloc(c->out, cap);

			if (!nb)
				return -1;
			c->out = nb;
			c->out_cap = cap;
		}
		memcpy(c->out + c->out_len, p, (size_t)n);
		c->out_len += (size_t)n;
	}
	if (n < 0)
		return -1;
	while (c->out_off < c->out_len) {
		int w = SSL_write(c->ssl, c->out + c->out_off, (int)(c->out_len - c->out_off));

		if (w <= 0) {
			int e = SSL_get_error(c->ssl, w);

			ERR_clear_error();
			return e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ ? 0 : -1;
		}
		c->out_off += (size_t)w;
	}
	c->out_off = c->out_len = 0;
	return 0;
}

/* Read what TLS has for us into the session. 0 to go on, -1 when the connection is over. */
static int zca_read(struct zca_conn *c)
{
	uint8_t buf[16384];
	ssize_t rv;
	int n, e;

	for (;;) {
		n = SSL_read(c->ssl, buf, sizeof(buf));
		if (n <= 0)
			break;
		rv = nghttp2_session_mem_recv(c->h2, buf, (size_t)n);
		if (rv < 0) {
			obs_log(OBS_WARN, "rpc", "refused from %s: HTTP/2 protocol error: %s",
				c->caller.addr, nghttp2_strerror((int)rv));
			nghttp2_session_terminate_session(c->h2, NGHTTP2_PROTOCOL_ERROR);
			zca_flush(c);
			return -1;
		}
	}
	e = SSL_get_error(c->ssl, n);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return 0;
	/* A peer closing without close_notify (most gRPC clients) is a normal end. */
	if (e == SSL_ERROR_SSL &&
	    ERR_GET_REASON(ERR_peek_error()) != SSL_R_UNEXPECTED_EOF_WHILE_READING)
		obs_log(OBS_INFO, "rpc", "connection from %s ended: %s", c->caller.addr,
			ERR_reason_error_string(ERR_peek_error()) ?: "TLS error");
	ERR_clear_error();
	return -1;
}

/* The handshake: 1 done, 0 in progress, -1 refused (logged). */
/* Peers that leave in their handshake: one line a second for the whole process. */
static struct obs_ratelimit zca_gone_rl;

static int zca_handshake(struct zca_conn *c)
{
	uint64_t suppressed = 0;
	char why[256];
	X509 *peer;
	int r = SSL_accept(c->ssl), e;

	if (r == 1) {
		peer = SSL_get0_peer_certificate(c->ssl);
		if (peer)
			zca_caller_fill(&c->caller, peer);
		if (zca_h2_new(c))
			return -1;
		c->handshaken = true;
		zca_conn_phase(c, ZCA_PH_IDLE);
		return 1;
	}
	e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		ERR_clear_error();
		return 0;
	}
	atomic_fetch_add(&c->z->refused, 1);
	if (!zca_ssl_why(c->ssl, why, sizeof(why)))
		obs_log(OBS_WARN, "rpc", "refused from %s: TLS handshake failed: %s",
			c->caller.addr, why);
	else if (obs_ratelimit_ok(&zca_gone_rl, c->loop->now_ms, ZCA_DROP_LOG_INTERVAL_MS,
				  &suppressed))
		obs_log(OBS_INFO, "rpc",
			"TLS handshake from %s ended: %s; %llu more like it since the last line",
			c->caller.addr, why, (unsigned long long)suppressed);
	return -1;
}

static void zca_conn_event(struct rt_loop *l, struct rt_ev *ev, uint32_t events)
{
	struct zca_conn *c = (struct zca_conn *)ev;
	int r;

	(void)l;
	(void)events;
	if (!c->handshaken) {
		r = zca_handshake(c);
		if (r < 0) {
			zca_conn_close(c);
			return;
		}
		if (!r) {
			rt_ev_set(c->loop, ev, SSL_want_write(c->ssl) ? EPOLLOUT : EPOLLIN);
			return;
		}
	}
	if (zca_read(c) || zca_flush(c) ||
	    (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2) &&
	     !c->out_len)) {
		zca_conn_close(c);
		return;
	}
	rt_ev_set(c->loop, ev, c->out_len ? EPOLLIN | EPOLLOUT : EPOLLIN);
}

/* The phase's deadline passed: the connection is closed, counted and (rate-limited) logged. */
static void zca_conn_deadline(struct rt_loop *l, struct rt_timer *t)
{
	struct zca_conn *c = zm_container_of(t, struct zca_conn, deadline);
	struct zca *z = c->z;
	int open = 0;

	(void)l;
	switch (c->phase) {
	case ZCA_PH_HANDSHAKE:
		zca_drop(z, ZCA_DROP_HANDSHAKE_TIMEOUT, c->caller.addr,
			 "TLS handshake not finished within %d ms", z->handshake_ms);
		break;
	case ZCA_PH_BUSY:
		for (struct zca_stream *s = c->streams; s; s = s->next)
			open++;
		zca_drop(z, ZCA_DROP_REQUEST_TIMEOUT, c->caller.addr,
			 "request not answered within %d ms of its start (caller %s, %d open)",
			 z->request_ms, c->caller.id[0] ? c->caller.id : "-", open);
		/* Tell a well-behaved client why before the close (best effort). */
		nghttp2_session_terminate_session(c->h2, NGHTTP2_NO_ERROR);
		zca_flush(c);
		break;
	case ZCA_PH_IDLE:
		zca_drop(z, ZCA_DROP_IDLE_TIMEOUT, c->caller.addr, "no request within %d ms",
			 z->idle_ms);
		break;
	}
	zca_conn_close(c);
}

void zca_conn_start(struct zca *z, struct rt_loop *l, int fd, const char *addr,
		    struct zca_peer *peer)
{
	struct zca_conn *c = calloc(1, sizeof(*c));

	if (!c) {
		close(fd);
		zca_peer_put(z, peer);
		atomic_fetch_sub(&z->nconns, 1);
		return;
	}
	c->z = z;
	c->loop = l;
	c->w = &z->workers[rt_worker_of(l)->id];
	rt_ev_init(&c->ev, fd, zca_conn_event);
	rt_timer_init(&c->deadline, zca_conn_deadline);
	snprintf(c->caller.addr, sizeof(c->caller.addr), "%s", addr);
	c->peer = peer;
	c->ssl = SSL_new(z->ssl_ctx);
	if (!c->ssl || !SSL_set_fd(c->ssl, fd)) {
		rt_ev_close(l, &c->ev, false);
		zca_peer_put(z, peer);
		atomic_fetch_sub(&z->nconns, 1);
		zca_conn_free(c);
		return;
	}
	zca_conn_phase(c, ZCA_PH_HANDSHAKE);
	zca_conn_event(l, &c->ev, EPOLLIN);
}
