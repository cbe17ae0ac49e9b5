// SPDX-License-Identifier: Apache-2.0
/*
 * zm-rr: request/response load for `make bench`, speaking minimal HTTP/1.1 keep-alive (as
 * Istio's published benchmark does) so the same tool later measures the waypoint.
 *   zm-rr server [--port P] [--size BYTES]       answers every request with a BYTES body
 *   zm-rr client HOST PORT --rate R --duration S [--conns C] [--size BYTES]
 *       open loop: requests are scheduled at a fixed rate over C keep-alive connections;
 *       latency runs from a request's *scheduled* time, so a stall delays and counts every
 *       request behind it (no coordinated omission). Prints one JSON object.
 *   zm-rr connect HOST PORT --duration S [--parallel N]
 *       closed loop: connect, one request/response, close, repeat. Prints one JSON object.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REQ	  "GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
#define MAX_CONNS 256

static int usage(void)
{
	fprintf(stderr,
		"usage: zm-rr server [--port P] [--size BYTES]\n"
		"       zm-rr client HOST PORT --rate R --duration S [--conns C] [--size BYTES]\n"
		"       zm-rr connect HOST PORT --duration S [--parallel N]\n");
	return 2;
}

static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/* Serve one keep-alive connection: a response per request header block. */
static void serve_conn(int c, int size)
{
	char hdr[128], buf[4096], *body = calloc(1, (size_t)size + 1);
	int hl = snprintf(hdr, sizeof(hdr), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", size);
	size_t have = 0;
	ssize_t n;

	memset(body, 'z', (size_t)size);
	while ((n = read(c, buf + have, sizeof(buf) - 1 - have)) > 0) {
		char *end;

		have += (size_t)n;
		buf[have] = '\0';
		while ((end = strstr(buf, "\r\n\r\n"))) {
			size_t used = (size_t)(end + 4 - buf);

			if (write(c, hdr, (size_t)hl) != hl || write(c, body, (size_t)size) != size)
				goto out;
			memmove(buf, buf + used, have - used + 1);
			have -= used;
		}
		if (have == sizeof(buf) - 1)
			break; /* a header block this large is not ours */
	}
out:
	free(body);
	close(c);
}

static int server(int argc, char **argv)
{
	int port = 8080, size = 1024, one = 1, zero = 0, fd;
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT};

	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--port") && i + 1 < argc)
			port = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--size") && i + 1 < argc)
			size = atoi(argv[++i]);
		else
			return usage();
	}
	if (port <= 0 || port > 65535 || size < 0 || size > (1 << 24))
		return usage();
	signal(SIGCHLD, SIG_IGN);
	fd = socket(AF_INET6, SOCK_STREAM, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	sa.sin6_port = htons((unsigned short)port);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 4096)) {
		fprintf(stderr, "zm-rr: listen on %d: %s\n", port, strerror(errno));
		return 1;
	}
	for (;;) {
		int c = accept(fd, NULL, NULL);

		if (c < 0)
			continue;
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (fork() == 0) {
			close(fd);
			serve_conn(c, size);
			_exit(0);
		}
		close(c);
	}
}

static int dial(const char *host, const char *port)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST}, *ai;
	int fd, one = 1;

	if (getaddrinfo(host, port, &hints, &ai))
		return -1;
	fd = socket(ai->ai_family, SOCK_STREAM, 0);
	if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen)) {
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* Read one response (headers + Content-Length body). 0 ok, -1 error. */
static int read_response(int fd, char *buf, size_t cap)
{
	size_t have = 0, want = 0;
	ssize_t n;

	for (;;) {
		char *end, *cl;

		n = read(fd, buf + have, cap - 1 - have);
		if (n <= 0)
			return -1;
		have += (size_t)n;
		buf[have] = '\0';
		if (!want && (end = strstr(buf, "\r\n\r\n"))) {
			cl = strstr(buf, "Content-Length: ");
			want = (size_t)(end + 4 - buf) + (cl ? strtoul(cl + 16, NULL, 10) : 0);
		}
		if (want && have >= want)
			return have == want ? 0 : -1;
		if (have == cap - 1) { /* large body: keep only the count */
			if (!want)
				return -1;
			want -= have;
			have = 0;
			if (!want)
				return 0;
			for (; want; want -= (size_t)n) {
				n = read(fd, buf, want < cap ? want : cap);
				if (n <= 0)
					return -1;
			}
			return 0;
		}
	}
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

static int client(int argc, char **argv)
{
	double rate = 1000, duration = 10;
	int conns = 16, fds[MAX_CONNS], errors = 0;
	long long start, total, *lat, n_lat = 0;
	char buf[65536];

	if (argc < 2)
		return usage();
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--rate") && i + 1 < argc)
			rate = atof(argv[++i]);
		else if (!strcmp(argv[i], "--duration") && i + 1 < argc)
			duration = atof(argv[++i]);
		else if (!strcmp(argv[i], "--conns") && i + 1 < argc)
			conns = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--size") && i + 1 < argc)
			++i; /* the server decides; accepted for symmetry */
		else
			return usage();
	}
	if (rate <= 0 || duration <= 0 || conns <= 0 || conns > MAX_CONNS)
		return usage();
	for (int c = 0; c < conns; c++) {
		fds[c] = dial(argv[0], argv[1]);
		if (fds[c] < 0) {
			fprintf(stderr, "zm-rr: connect %s:%s: %s\n", argv[0], argv[1],
				strerror(errno));
			return 1;
		}
	}
	total = (long long)(rate * duration);
	lat = calloc((size_t)total + 1, sizeof(*lat));
	start = now_us() + 1000;
	/*
	 * Request k is due at start + k/rate on connection k % conns. One thread: while a
	 * request is in flight on a connection, later ones queue behind it, and their latency
	 * includes that wait (measured from the due time).
	 */
	for (long long k = 0; k < total; k++) {
		long long due = start + (long long)(k * 1e6 / rate), t;
		int c = (int)(k % conns);

		while ((t = now_us()) < due)
			if (due - t > 200)
				usleep((useconds_t)(due - t - 100));
		if (write(fds[c], REQ, sizeof(REQ) - 1) != (ssize_t)(sizeof(REQ) - 1) ||
		    read_response(fds[c], buf, sizeof(buf))) {
			errors++;
			close(fds[c]);
			fds[c] = dial(argv[0], argv[1]);
			if (fds[c] < 0)
				break;
			continue;
		}
		lat[n_lat++] = now_us() - due;
	}
	qsort(lat, (size_t)n_lat, sizeof(*lat), cmp_ll);
#define PCT(p) (n_lat ? lat[(long long)((n_lat - 1) * (p))] : -1)
	printf("{\"rate\": %.0f, \"requests\": %lld, \"errors\": %d, \"achieved_rps\": %.1f, "
	       "\"p50_us\": %lld, \"p90_us\": %lld, \"p99_us\": %lld, \"max_us\": %lld}\n",
	       rate, n_lat, errors, n_lat / ((now_us() - start) / 1e6), PCT(0.50), PCT(0.90),
	       PCT(0.99), n_lat ? lat[n_lat - 1] : -1);
	free(lat);
	return errors && !n_lat;
}

/* One closed loop of connect / request / response / close until the deadline. */
static long long connect_loop(const char *host, const char *port, long long deadline, int *errs)
{
	char buf[65536];
	long long done = 0;

	while (now_us() < deadline) {
		int fd = dial(host, port);

		if (fd < 0 || write(fd, REQ, sizeof(REQ) - 1) != (ssize_t)(sizeof(REQ) - 1) ||
		    read_response(fd, buf, sizeof(buf)))
			(*errs)++;
		else
			done++;
		if (fd >= 0)
			close(fd);
	}
	return done;
}

static int connect_cmd(int argc, char **argv)
{
	double duration = 5;
	int parallel = 4, errs = 0, pipefd[2];
	long long total = 0, start, deadline;

	if (argc < 2)
		return usage();
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--duration") && i + 1 < argc)
			duration = atof(argv[++i]);
		else if (!strcmp(argv[i], "--parallel") && i + 1 < argc)
			parallel = atoi(argv[++i]);
		else
			return usage();
	}
	if (duration <= 0 || parallel <= 0 || parallel > 64 || pipe(pipefd))
		return usage();
	start = now_us();
	deadline = start + (long long)(duration * 1e6);
	for (int p = 0; p < parallel; p++) {
		if (fork() == 0) {
			long long r[2];
			int e = 0;

			r[0] = connect_loop(argv[0], argv[1], deadline, &e);
			r[1] = e;
			_exit(write(pipefd[1], r, sizeof(r)) != sizeof(r));
		}
	}
	close(pipefd[1]);
	for (int p = 0; p < parallel; p++) {
		long long r[2];

		if (read(pipefd[0], r, sizeof(r)) == sizeof(r)) {
			total += r[0];
			errs += (int)r[1];
		}
		wait(NULL);
	}
	printf("{\"connections\": %lld, \"errors\": %d, \"conn_per_s\": %.1f}\n", total, errs,
	       total / ((now_us() - start) / 1e6));
	return total == 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc >= 2 && !strcmp(argv[1], "server"))
		return server(argc - 2, argv + 2);
	if (argc >= 2 && !strcmp(argv[1], "client"))
		return client(argc - 2, argv + 2);
	if (argc >= 2 && !strcmp(argv[1], "connect"))
		return connect_cmd(argc - 2, argv + 2);
	return usage();
}
