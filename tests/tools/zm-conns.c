// SPDX-License-Identifier: Apache-2.0
/*
 * zm-conns: many concurrent TCP connections, and single slow ones, for the bounded-resources
 * tests (issue 15). One epoll loop, non-blocking sockets, no thread or process per connection;
 * each command raises its own RLIMIT_NOFILE soft limit to the hard limit.
 *
 *   zm-conns serve --port P
 *       echo server for any number of connections (dual stack).
 *   zm-conns client HOST PORT -n N [--payload B] [--parallel K] [--hold S] [--timeout S]
 *                   [--status FILE]
 *       opens N connections (at most K connecting at once), then on every one sends a payload
 *       of B bytes distinct to the connection (its index and round in a header, then
 *       pseudo-random bytes seeded by both) and checks the echo byte for byte; writes
 *       "holding N" to FILE, holds every connection S seconds watching for any that closes,
 *       exchanges a second round, closes all. Prints one line
 *       "connections=N connected=C failed=F verified=V round1=V1 round2=V2 closed_early=E
 *       checksum=X" (X: FNV-1a over every payload, so two runs can be compared) and exits 0
 *       only when all N were verified in both rounds.
 *   zm-conns push --port P [--http]
 *       pushes bytes to each accepted connection as fast as it takes them, until it closes;
 *       with --http first reads one HTTP/1.1 request head and answers 200 with a body of
 *       1 GiB (Content-Length) carrying the same bytes.
 *   zm-conns slowread HOST PORT [--rate BYTES_PER_S] [--seconds S] [--http] [--status FILE]
 *       connects (with --http sends "GET / HTTP/1.1"), then reads at most BYTES_PER_S (0: not
 *       at all) for S seconds, writing "read=N" to FILE every 0.2 s; prints the same at the end.
 * Exit status: 0 ok, 1 failure (with a message), 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HDR_LEN	      16
#define PUSH_CHUNK    (64 * 1024)
#define HTTP_BODY_LEN (1ull << 30)

static int usage(void)
{
	fprintf(stderr,
		"usage: zm-conns serve --port P\n"
		"       zm-conns client HOST PORT -n N [--payload B] [--parallel K] [--hold S]\n"
		"                       [--timeout S] [--status FILE]\n"
		"       zm-conns push --port P [--http]\n"
		"       zm-conns slowread HOST PORT [--rate B] [--seconds S] [--http] "
		"[--status FILE]\n");
	return 2;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nofile_raise(void)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void status_write(const char *path, const char *fmt, unsigned long long v)
{
	char tmp[4096];
	FILE *f;

	if (!path)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return;
	fprintf(f, fmt, v);
	fclose(f);
	rename(tmp, path);
}

/* A dual-stack (else IPv4) non-blocking listener on port. fd or -1 (printed). */
static int listen_on(int port)
{
	struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
	struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int one = 1, zero = 0, fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0);

	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
		if (bind(fd, (struct sockaddr *)&s6, sizeof(s6))) {
			close(fd);
			fd = -1;
		}
	}
	if (fd < 0) {
		fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (fd >= 0 && bind(fd, (struct sockaddr *)&s4, sizeof(s4))) {
			close(fd);
			fd = -1;
		}
	}
	if (fd < 0 || listen(fd, 4096)) {
		fprintf(stderr, "zm-conns: listen on port %d: %s\n", port, strerror(errno));
		return -1;
	}
	return fd;
}

static int resolve(const char *host, const char *port, struct sockaddr_storage *ss, socklen_t *sl)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST};
	struct addrinfo *ai;
	int r = getaddrinfo(host, port, &hints, &ai);

	if (r) {
		fprintf(stderr, "zm-conns: bad address %s port %s: %s\n", host, port,
			gai_strerror(r));
		return -1;
	}
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*sl = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

/* ---- serve: echo for any number of connections ---- */

struct echo_conn {
	int fd;
	char *pend; /* bytes read but not yet written back */
	size_t len, off;
};

static void echo_close(int ep, struct echo_conn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->pend);
	free(c);
}

/* Echo what can be echoed; stop reading while a write is pending. -1: close. */
static int echo_io(int ep, struct echo_conn *c)
{
	struct epoll_event e = {.data.ptr = c};
	char buf[16384];
	ssize_t n, w;

	for (;;) {
		while (c->off < c->len) {
			w = write(c->fd, c->pend + c->off, c->len - c->off);
			if (w < 0 && errno == EAGAIN) {
				e.events = EPOLLOUT;
				return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
			}
			if (w <= 0)
				return -1;
			c->off += (size_t)w;
		}
		n = read(c->fd, buf, sizeof(buf));
		if (n == 0)
			return -1;
		if (n < 0) {
			if (errno != EAGAIN)
				return -1;
			e.events = EPOLLIN;
			return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
		}
		w = write(c->fd, buf, (size_t)n);
		if (w < 0 && errno == EAGAIN)
			w = 0;
		if (w < 0)
			return -1;
		if (w == n)
			continue;
		/* The rest waits for EPOLLOUT (only then is the socket read again). */
		free(c->pend);
		c->pend = malloc((size_t)(n - w));
		if (!c->pend)
			return -1;
		memcpy(c->pend, buf + w, (size_t)(n - w));
		c->len = (size_t)(n - w);
		c->off = 0;
	}
}

static int serve(int argc, char **argv)
{
	int port = 0, lfd, ep;
	struct epoll_event e = {.events = EPOLLIN, .data.ptr = NULL}, ev[256];

	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--port") && i + 1 < argc)
			port = atoi(argv[++i]);
		else
			return usage();
	}
	if (port <= 0 || port > 65535)
		return usage();
	lfd = listen_on(port);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (lfd < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &e))
		return 1;
	for (;;) {
		int n = epoll_wait(ep, ev, 256, -1);

		for (int i = 0; i < n; i++) {
			struct echo_conn *c = ev[i].data.ptr;

			if (!c) {
				int fd;

				while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
					c = calloc(1, sizeof(*c));
					e.events = EPOLLIN;
					e.data.ptr = c;
					if (!c ||
					    (c->fd = fd, epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e))) {
						close(fd);
						free(c);
					}
				}
				if (errno == EMFILE || errno == ENFILE)
					fprintf(stderr, "zm-conns: accept: %s\n", strerror(errno));
				continue;
			}
			if (echo_io(ep, c))
				echo_close(ep, c);
		}
	}
}

/* ---- client: N connections, checksummed rounds ---- */

/* A connection: not started, connecting, open (between rounds), in a round, failed. */
enum cstate { C_IDLE, C_CONNECTING, C_OPEN, C_SEND, C_FAILED };

struct cconn {
	int fd;
	uint32_t idx;
	enum cstate st;
	uint8_t *want; /* this round's payload */
	size_t sent, got;
};

struct client {
	struct sockaddr_storage ss;
	socklen_t sl;
	size_t n, payload;
	int parallel, ep;
	struct cconn *c;
	size_t connected, failed, verified, closed_early, inflight, next;
	uint64_t sum;
	char first_err[160];
};

static void payload_fill(uint8_t *p, size_t len, uint32_t idx, uint32_t round)
{
	uint64_t x = ((uint64_t)idx << 32 | round) * 0x9e3779b97f4a7c15ull + 1;

	memcpy(p, "zmconns!", 8);
	memcpy(p + 8, &idx, 4);
	memcpy(p + 12, &round, 4);
	for (size_t i = HDR_LEN; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
}

static uint64_t fnv1a(uint64_t h, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

/* Close c as failed, keeping the first reason for the report. Returns true. */
static bool cl_fail(struct client *cl, struct cconn *c, const char *what, int err)
{
	if (!cl->first_err[0])
		snprintf(cl->first_err, sizeof(cl->first_err), "connection %u: %s: %s", c->idx,
			 what, err ? strerror(err) : "closed");
	if (c->fd >= 0) {
		epoll_ctl(cl->ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->fd = -1;
	}
	free(c->want);
	c->want = NULL;
	c->st = C_FAILED;
	return true;
}

static void cl_start_one(struct client *cl)
{
	struct cconn *c = &cl->c[cl->next++];
	struct epoll_event e = {.events = EPOLLOUT, .data.ptr = c};

	c->fd = socket(cl->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		cl_fail(cl, c, "socket", errno);
		cl->failed++;
		return;
	}
	if ((connect(c->fd, (struct sockaddr *)&cl->ss, cl->sl) && errno != EINPROGRESS) ||
	    epoll_ctl(cl->ep, EPOLL_CTL_ADD, c->fd, &e)) {
		cl_fail(cl, c, "connect", errno);
		cl->failed++;
		return;
	}
	c->st = C_CONNECTING;
	cl->inflight++;
}

static void cl_connected(struct client *cl, struct cconn *c)
{
	struct epoll_event e = {.events = EPOLLRDHUP, .data.ptr = c};
	int err = 0;
	socklen_t el = sizeof(err);

	cl->inflight--;
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) || err) {
		cl_fail(cl, c, "connect", err);
		cl->failed++;
		return;
	}
	epoll_ctl(cl->ep, EPOLL_CTL_MOD, c->fd, &e);
	c->st = C_OPEN;
	cl->connected++;
}

/* Open all N, K at a time, until timeout. */
static void cl_connect_all(struct client *cl, double deadline)
{
	struct epoll_event ev[512];

	while ((cl->next < cl->n || cl->inflight) && now_s() < deadline) {
		while (cl->next < cl->n && cl->inflight < (size_t)cl->parallel)
			cl_start_one(cl);
		int k = epoll_wait(cl->ep, ev, 512, 100);

		for (int i = 0; i < k; i++) {
			struct cconn *c = ev[i].data.ptr;

			if (c->st == C_CONNECTING)
				cl_connected(cl, c);
			else if (c->st == C_OPEN &&
				 cl_fail(cl, c, "closed while the others were opening", 0))
				cl->closed_early++;
		}
	}
	for (size_t i = 0; i < cl->n; i++)
		if (cl->c[i].st == C_CONNECTING || cl->c[i].st == C_IDLE) {
			cl_fail(cl, &cl->c[i], "connect", ETIMEDOUT);
			cl->failed++;
		}
}

/* Send and read back one chunk; true when the round of c is over (verified or failed). */
static bool cl_round_io(struct client *cl, struct cconn *c, uint32_t round)
{
	uint8_t buf[16384];
	ssize_t n;

	while (c->sent < cl->payload) {
		n = write(c->fd, c->want + c->sent, cl->payload - c->sent);
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0)
			return cl_fail(cl, c, "write", errno);
		c->sent += (size_t)n;
	}
	for (;;) {
		size_t room = cl->payload - c->got;

		n = read(c->fd, buf, room < sizeof(buf) ? room : sizeof(buf));
		if (n < 0 && errno == EAGAIN)
			return false;
		if (n <= 0)
			return cl_fail(cl, c, "read", n ? errno : 0);
		if (memcmp(buf, c->want + c->got, (size_t)n)) {
			char what[64];

			snprintf(what, sizeof(what), "round %u: echo differs at byte %zu", round,
				 c->got);
			return cl_fail(cl, c, what, EBADMSG);
		}
		c->got += (size_t)n;
		if (c->got == cl->payload) {
			cl->sum = fnv1a(cl->sum, c->want, cl->payload);
			free(c->want);
			c->want = NULL;
			c->st = C_OPEN;
			return true;
		}
	}
}

/* One exchange on every open connection. Returns how many were verified. */
static size_t cl_round(struct client *cl, uint32_t round, double deadline)
{
	struct epoll_event e, ev[512];
	size_t pending = 0, ok = 0;

	for (size_t i = 0; i < cl->n; i++) {
		struct cconn *c = &cl->c[i];

		if (c->st != C_OPEN)
			continue;
		c->want = malloc(cl->payload);
		if (!c->want) {
			cl_fail(cl, c, "malloc", ENOMEM);
			continue;
		}
		payload_fill(c->want, cl->payload, c->idx, round);
		c->sent = c->got = 0;
		c->st = C_SEND;
		e = (struct epoll_event){.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
		epoll_ctl(cl->ep, EPOLL_CTL_MOD, c->fd, &e);
		pending++;
	}
	while (pending && now_s() < deadline) {
		int k = epoll_wait(cl->ep, ev, 512, 100);

		for (int i = 0; i < k; i++) {
			struct cconn *c = ev[i].data.ptr;

			if (c->st != C_SEND || !cl_round_io(cl, c, round))
				continue;
			pending--;
			if (c->st != C_OPEN)
				continue;
			ok++;
			e = (struct epoll_event){.events = EPOLLRDHUP, .data.ptr = c};
			epoll_ctl(cl->ep, EPOLL_CTL_MOD, c->fd, &e);
		}
	}
	for (size_t i = 0; i < cl->n; i++)
		if (cl->c[i].st == C_SEND)
			cl_fail(cl, &cl->c[i], "round timed out", ETIMEDOUT);
	return ok;
}

/* Hold every connection for s seconds; any that closes meanwhile is counted and dropped. */
static void cl_hold(struct client *cl, double s)
{
	struct epoll_event ev[512];
	double end = now_s() + s;

	while (now_s() < end) {
		int k = epoll_wait(cl->ep, ev, 512, 100);

		for (int i = 0; i < k; i++) {
			struct cconn *c = ev[i].data.ptr;

			if (c->st == C_OPEN) {
				cl_fail(cl, c, "closed while held", 0);
				cl->closed_early++;
			}
		}
	}
}

static int client(int argc, char **argv)
{
	struct client cl = {.payload = 1000, .parallel = 256};
	double hold = 0, timeout = 60, deadline;
	const char *status = NULL;
	size_t r1, r2;

	if (argc < 2)
		return usage();
	for (int i = 2; i < argc; i++) {
		if (i + 1 >= argc)
			return usage();
		if (!strcmp(argv[i], "-n"))
			cl.n = strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--payload"))
			cl.payload = strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--parallel"))
			cl.parallel = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--hold"))
			hold = atof(argv[++i]);
		else if (!strcmp(argv[i], "--timeout"))
			timeout = atof(argv[++i]);
		else if (!strcmp(argv[i], "--status"))
			status = argv[++i];
		else
			return usage();
	}
	if (!cl.n || cl.payload < HDR_LEN || cl.parallel < 1 ||
	    resolve(argv[0], argv[1], &cl.ss, &cl.sl))
		return usage();
	nofile_raise();
	cl.c = calloc(cl.n, sizeof(*cl.c));
	cl.ep = epoll_create1(EPOLL_CLOEXEC);
	if (!cl.c || cl.ep < 0)
		return fprintf(stderr, "zm-conns: out of memory\n"), 1;
	for (size_t i = 0; i < cl.n; i++)
		cl.c[i] = (struct cconn){.fd = -1, .idx = (uint32_t)i};
	cl.sum = 14695981039346656037ull;
	deadline = now_s() + timeout;
	cl_connect_all(&cl, deadline);
	r1 = cl_round(&cl, 1, deadline);
	status_write(status, "holding %llu\n", (unsigned long long)r1);
	cl_hold(&cl, hold);
	r2 = cl_round(&cl, 2, now_s() + timeout);
	cl.verified = r2;
	printf("connections=%zu connected=%zu failed=%zu verified=%zu round1=%zu round2=%zu "
	       "closed_early=%zu checksum=%016llx\n",
	       cl.n, cl.connected, cl.failed, cl.verified, r1, r2, cl.closed_early,
	       (unsigned long long)cl.sum);
	if (cl.first_err[0])
		printf("first error: %s\n", cl.first_err);
	status_write(status, "done %llu\n", (unsigned long long)r2);
	for (size_t i = 0; i < cl.n; i++)
		if (cl.c[i].fd >= 0)
			close(cl.c[i].fd);
	free(cl.c);
	close(cl.ep);
	return r1 == cl.n && r2 == cl.n ? 0 : 1;
}

/* ---- push and slowread: one fast writer, one slow reader ---- */

/* Read one HTTP/1.1 request head (blocking) and answer its response head. -1 on error. */
static int push_http_head(int fd)
{
	char buf[8192], head[128];
	size_t got = 0;
	int n;

	while (got < sizeof(buf) - 1) {
		ssize_t r = read(fd, buf + got, sizeof(buf) - 1 - got);

		if (r <= 0)
			return -1;
		got += (size_t)r;
		buf[got] = '\0';
		if (strstr(buf, "\r\n\r\n"))
			break;
	}
	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 200 OK\r\nContent-Length: %llu\r\n"
		     "Content-Type: application/octet-stream\r\n\r\n",
		     HTTP_BODY_LEN);
	return write(fd, head, (size_t)n) == n ? 0 : -1;
}

static int push(int argc, char **argv)
{
	static uint8_t chunk[PUSH_CHUNK];
	int port = 0, http = 0, lfd;

	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--port") && i + 1 < argc)
			port = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--http"))
			http = 1;
		else
			return usage();
	}
	if (port <= 0 || port > 65535)
		return usage();
	payload_fill(chunk, sizeof(chunk), 0, 0);
	signal(SIGCHLD, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	lfd = listen_on(port);
	if (lfd < 0)
		return 1;
	fcntl(lfd, F_SETFL, 0);
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		unsigned long long sent = 0;

		if (fd < 0)
			continue;
		if (fork()) {
			close(fd);
			continue;
		}
		close(lfd);
		if (http && push_http_head(fd))
			_exit(1);
		while (!http || sent < HTTP_BODY_LEN) {
			ssize_t w = write(fd, chunk, sizeof(chunk));

			if (w <= 0)
				break;
			sent += (unsigned long long)w;
		}
		fprintf(stderr, "zm-conns push: %llu bytes written\n", sent);
		_exit(0);
	}
}

static int slowread(int argc, char **argv)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	double rate = 0, secs = 10, start, next_status = 0;
	const char *status = NULL;
	unsigned long long got = 0;
	char buf[65536];
	int http = 0, fd;

	if (argc < 2)
		return usage();
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--http")) {
			http = 1;
			continue;
		}
		if (i + 1 >= argc)
			return usage();
		if (!strcmp(argv[i], "--rate"))
			rate = atof(argv[++i]);
		else if (!strcmp(argv[i], "--seconds"))
			secs = atof(argv[++i]);
		else if (!strcmp(argv[i], "--status"))
			status = argv[++i];
		else
			return usage();
	}
	if (resolve(argv[0], argv[1], &ss, &sl))
		return usage();
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&ss, sl)) {
		fprintf(stderr, "zm-conns: connect %s %s: %s\n", argv[0], argv[1], strerror(errno));
		return 1;
	}
	if (http) {
		char req[256];
		int n = snprintf(req, sizeof(req), "GET /big HTTP/1.1\r\nHost: %s:%s\r\n\r\n",
				 argv[0], argv[1]);

		if (write(fd, req, (size_t)n) != n)
			return fprintf(stderr, "zm-conns: write: %s\n", strerror(errno)), 1;
	}
	start = now_s();
	for (double t = 0; t < secs; t = now_s() - start) {
		/* Read what the rate allows by now, in small reads; else sleep a little. */
		double allowed = rate * t - (double)got;

		if (allowed >= 1) {
			size_t want = allowed < sizeof(buf) ? (size_t)allowed : sizeof(buf);
			ssize_t r = recv(fd, buf, want, MSG_DONTWAIT);

			if (r == 0)
				break;
			if (r > 0)
				got += (unsigned long long)r;
		}
		if (t >= next_status) {
			status_write(status, "read=%llu\n", got);
			next_status = t + 0.2;
		}
		usleep(10000);
	}
	status_write(status, "read=%llu\n", got);
	printf("read=%llu\n", got);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	signal(SIGPIPE, SIG_IGN);
	if (!strcmp(argv[1], "serve"))
		return nofile_raise(), serve(argc - 2, argv + 2);
	if (!strcmp(argv[1], "client"))
		return client(argc - 2, argv + 2);
	if (!strcmp(argv[1], "push"))
		return push(argc - 2, argv + 2);
	if (!strcmp(argv[1], "slowread"))
		return slowread(argc - 2, argv + 2);
	return usage();
}
