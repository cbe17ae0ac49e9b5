// SPDX-License-Identifier: Apache-2.0
/*
 * HBONE test peer built on lib/hbone + lib/tls, for tests/integration/hbone-interop.sh.
 *
 *   hbone-echo ca-init --ca-dir D                       dev CA (like `zmeshctl ca init`)
 *   hbone-echo cert --ca-dir D --id SPIFFE --cert F --key F
 *                                                       issue a workload cert as PEM files
 *   hbone-echo server --ca-dir D --id SPIFFE --port P   HBONE server on 127.0.0.1:P: CONNECT
 *        to port 9 gets 503, to port 10 gets 200 then RST_STREAM(CONNECT_ERROR), anything
 *        else gets 200 and its bytes echoed (END_STREAM answered with END_STREAM). Logs
 *        each request's headers and peer identity on stdout. Runs until killed.
 *   hbone-echo client --ca-dir D --id SPIFFE --expect SPIFFE --port P --authority A
 *        [--send TEXT] [--status N]                     one CONNECT; prints status=, echo=,
 *        close=; exits 0 when the status is N (default 200) and a 200 echoed TEXT exactly.
 *
 * Loopback only; single-threaded epoll loop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "hbone/hbone.h"
#include "tls/tls.h"

static struct {
	const char *ca_dir, *id, *expect, *authority, *send, *cert_out, *key_out;
	unsigned int port;
	int want_status;
} opt = {.want_status = 200};

static struct zm_cert *my_cert;
static int epfd;

/* Client results. */
static int got_status, got_close = -1;
static char got_echo[65536];
static size_t got_len;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static __attribute__((noreturn)) void die(const char *what, const char *why)
{
	fprintf(stderr, "hbone-echo: %s: %s\n", what, why);
	exit(2);
}

static struct zm_tls_roots *load_ca(void)
{
	struct zm_tls_roots *roots;
	struct zm_ca *ca;
	char err[256];

	if (zm_ca_load(opt.ca_dir, &ca, err, sizeof(err)))
		die("load CA", err);
	if (opt.id && zm_ca_issue(ca, opt.id, 3600, &my_cert, err, sizeof(err)))
		die("issue", err);
	roots = zm_ca_roots(ca);
	zm_ca_free(ca);
	return roots;
}

/* ---- echo behaviour (both roles use the same stream callbacks) ---- */

static void on_request(struct hb_stream *s, const struct hb_request *req)
{
	printf("request authority=%s forwarded=%s baggage=%s traceparent=%s peer=%s\n",
	       req->authority, req->forwarded, req->baggage, req->traceparent, req->peer_identity);
	fflush(stdout);
	if (req->dst_port == 9) {
		hb_stream_respond(s, HB_STATUS_UNAVAILABLE);
		return;
	}
	hb_stream_respond(s, HB_STATUS_OK);
	if (req->dst_port == 10)
		hb_stream_reset(s, HB_ERR_CONNECT_ERROR);
}

static size_t on_data(struct hb_stream *s, const uint8_t *buf, size_t len)
{
	ssize_t n;

	if (hb_conn_role(hb_stream_conn(s)) == HB_ROLE_CLIENT) {
		if (got_len + len < sizeof(got_echo)) {
			memcpy(got_echo + got_len, buf, len);
			got_len += len;
		}
		return len;
	}
	n = hb_stream_write(s, buf, len);
	return n < 0 ? len : (size_t)n;
}

static void on_eof(struct hb_stream *s)
{
	if (hb_conn_role(hb_stream_conn(s)) == HB_ROLE_SERVER)
		hb_stream_shutdown(s);
}

static void on_writable(struct hb_stream *s)
{
	hb_stream_resume(s);
}

static void on_response(struct hb_stream *s, int status)
{
	got_status = status;
	printf("status=%d\n", status);
	if (status == 200 && opt.send) {
		hb_stream_write(s, opt.send, strlen(opt.send));
		hb_stream_shutdown(s);
	}
}

static void on_stream_close(struct hb_stream *s, uint32_t code)
{
	if (hb_conn_role(hb_stream_conn(s)) != HB_ROLE_CLIENT)
		return;
	got_close = (int)code;
	got_echo[got_len] = '\0';
	printf("echo=%s\nclose=%u\n", got_echo, code);
	hb_conn_shutdown(hb_stream_conn(s));
}

static void on_ready(struct hb_conn *conn)
{
	char fwd[HB_FORWARDED_MAX], bag[HB_BAGGAGE_MAX], tp[HB_TRACEPARENT_LEN];
	struct hb_baggage b = {.cluster = "Kubernetes",
			       .ns = "client-ns",
			       .workload_type = "deployment",
			       .workload_name = "sleep",
			       .service_name = "sleep",
			       .service_version = "v1"};
	struct hb_request req = {
	    .authority = opt.authority, .forwarded = fwd, .baggage = bag, .traceparent = tp};
	struct zm_addr a;

	if (hb_conn_role(conn) != HB_ROLE_CLIENT)
		return;
	printf("server=%s\n", hb_conn_peer_identity(conn));
	zm_addr_parse("127.0.0.1", &a);
	if (hb_forwarded_format(&a, 40000, "echo.default.svc.cluster.local", fwd, sizeof(fwd)) ||
	    hb_baggage_format(&b, bag, sizeof(bag)) || hb_traceparent_new(tp, sizeof(tp)))
		die("headers", "cannot build");
	if (!hb_stream_open(conn, &req, NULL))
		die("hb_stream_open", strerror(errno));
}

static void on_conn_close(struct hb_conn *conn, int err, const char *reason)
{
	(void)conn;
	fprintf(stderr, "hbone-echo: connection closed: %d %s\n", err, reason);
}

static const struct hb_callbacks cbs = {
    .on_ready = on_ready,
    .on_request = on_request,
    .on_response = on_response,
    .on_data = on_data,
    .on_eof = on_eof,
    .on_writable = on_writable,
    .on_stream_close = on_stream_close,
    .on_conn_close = on_conn_close,
};

/* ---- loop ---- */

struct ent {
	int fd;
	struct hb_conn *conn; /* NULL: the listener */
};

static void ent_arm(struct ent *e, int op)
{
	struct epoll_event ev = {.events = hb_conn_want(e->conn), .data.ptr = e};

	epoll_ctl(epfd, op, e->fd, &ev);
}

/* Returns false once the connection is gone (freed). */
static bool ent_io(struct ent *e, uint32_t revents)
{
	if (hb_conn_io(e->conn, revents) < 0) {
		epoll_ctl(epfd, EPOLL_CTL_DEL, e->fd, NULL);
		hb_conn_free(e->conn);
		close(e->fd);
		free(e);
		return false;
	}
	ent_arm(e, EPOLL_CTL_MOD);
	return true;
}

static struct ent *ent_new(int fd, SSL *ssl, enum hb_role role)
{
	struct ent *e = calloc(1, sizeof(*e));

	if (!e)
		die("calloc", "out of memory");
	e->fd = fd;
	e->conn = hb_conn_new(role, fd, ssl, &cbs, e, now_ms());
	if (!e->conn)
		die("hb_conn_new", strerror(errno));
	ent_arm(e, EPOLL_CTL_ADD);
	return e;
}

static int select_cert(void *ud, const struct zm_addr *local, struct zm_cert **out)
{
	(void)ud;
	(void)local;
	*out = zm_cert_ref(my_cert);
	return 0;
}

static __attribute__((noreturn)) void run_server(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(opt.port)};
	struct zm_tls_roots *roots = load_ca();
	struct epoll_event evs[16], ev;
	struct zm_tls_ctx *ctx;
	struct ent lst = {0};
	struct zm_addr local;
	char err[256];
	int one = 1, n, i;

	if (zm_tls_server_ctx_new(roots, "cluster.local", select_cert, NULL, &ctx, err,
				  sizeof(err)))
		die("server ctx", err);
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	zm_addr_parse("127.0.0.1", &local);
	lst.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	setsockopt(lst.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lst.fd, (struct sockaddr *)&sin, sizeof(sin)) || listen(lst.fd, 64))
		die("bind", strerror(errno));
	ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = &lst};
	epoll_ctl(epfd, EPOLL_CTL_ADD, lst.fd, &ev);
	printf("listening 127.0.0.1:%u\n", opt.port);
	fflush(stdout);
	for (;;) {
		n = epoll_wait(epfd, evs, 16, 1000);
		for (i = 0; i < n; i++) {
			struct ent *e = evs[i].data.ptr;
			SSL *ssl;
			int fd;

			if (e != &lst) {
				ent_io(e, evs[i].events);
				continue;
			}
			fd = accept4(lst.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
			if (fd < 0)
				continue;
			if (zm_tls_server_ssl_new(ctx, fd, &local, &ssl, err, sizeof(err))) {
				fprintf(stderr, "hbone-echo: ssl: %s\n", err);
				close(fd);
				continue;
			}
			ent_io(ent_new(fd, ssl, HB_ROLE_SERVER), 0);
		}
		fflush(stdout);
	}
}

/* Frees everything it made (the sanitizer build checks for leaks on exit). */
static int run_client(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(opt.port)};
	struct zm_tls_roots *roots = load_ca();
	const char *expect[] = {opt.expect};
	uint64_t deadline = now_ms() + 10000;
	struct epoll_event evs[4];
	struct zm_tls_ctx *ctx;
	struct ent *e = NULL;
	char err[256];
	SSL *ssl;
	int fd, rc = 1;

	if (zm_tls_client_ctx_new(roots, &ctx, err, sizeof(err)))
		die("client ctx", err);
	zm_tls_roots_put(roots); /* the context holds its own reference */
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)))
		die("connect", strerror(errno));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	if (zm_tls_client_ssl_new(ctx, fd, my_cert, expect, 1, &ssl, err, sizeof(err)))
		die("client ssl", err);
	e = ent_new(fd, ssl, HB_ROLE_CLIENT);
	if (!ent_io(e, 0)) {
		e = NULL;
		goto out;
	}
	while (now_ms() < deadline) {
		int n = epoll_wait(epfd, evs, 4, 200);

		if (n > 0 && !ent_io(e, evs[0].events)) {
			e = NULL;
			break;
		}
		if (n == 0 && hb_conn_tick(e->conn, now_ms()) < 0 && !ent_io(e, 0)) {
			e = NULL;
			break;
		}
	}
	fflush(stdout);
	if (got_status != opt.want_status)
		goto out;
	if (got_status == 200 && opt.send && strcmp(got_echo, opt.send))
		goto out;
	rc = 0;
out:
	if (e) { /* timed out with the connection still up */
		epoll_ctl(epfd, EPOLL_CTL_DEL, e->fd, NULL);
		hb_conn_free(e->conn);
		close(e->fd);
		free(e);
	}
	zm_tls_ctx_put(ctx);
	zm_cert_put(my_cert);
	my_cert = NULL;
	close(epfd);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"ca-dir", 1, NULL, 'd'},	 {"id", 1, NULL, 'i'},
	    {"expect", 1, NULL, 'e'},	 {"port", 1, NULL, 'p'},
	    {"authority", 1, NULL, 'a'}, {"send", 1, NULL, 's'},
	    {"status", 1, NULL, 'S'},	 {"cert", 1, NULL, 'c'},
	    {"key", 1, NULL, 'k'},	 {0},
	};
	const char *mode = argc > 1 ? argv[1] : "";
	char err[256];
	int c;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((c = getopt_long(argc - 1, argv + 1, "", lo, NULL)) != -1) {
		switch (c) {
		case 'd':
			opt.ca_dir = optarg;
			break;
		case 'i':
			opt.id = optarg;
			break;
		case 'e':
			opt.expect = optarg;
			break;
		case 'p':
			opt.port = (unsigned int)atoi(optarg);
			break;
		case 'a':
			opt.authority = optarg;
			break;
		case 's':
			opt.send = optarg;
			break;
		case 'S':
			opt.want_status = atoi(optarg);
			break;
		case 'c':
			opt.cert_out = optarg;
			break;
		case 'k':
			opt.key_out = optarg;
			break;
		default:
			return 2;
		}
	}
	if (!opt.ca_dir)
		die("usage", "--ca-dir is required (see the comment at the top of hbone-echo.c)");
	if (!strcmp(mode, "ca-init")) {
		if (zm_ca_init_files(opt.ca_dir, "cluster.local", err, sizeof(err)))
			die("ca-init", err);
		return 0;
	}
	if (!opt.id)
		die("usage", "--id is required");
	if (!strcmp(mode, "cert")) {
		zm_tls_roots_put(load_ca());
		if (!opt.cert_out || !opt.key_out ||
		    zm_cert_write_pem(my_cert, opt.cert_out, opt.key_out, err, sizeof(err)))
			die("cert", opt.cert_out ? err : "--cert and --key are required");
		zm_cert_put(my_cert);
		return 0;
	}
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!strcmp(mode, "server") && opt.port)
		run_server();
	if (!strcmp(mode, "client") && opt.port && opt.expect && opt.authority)
		return run_client();
	die("usage", "mode is ca-init, cert, server or client (see hbone-echo.c)");
}
