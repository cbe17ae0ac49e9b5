// SPDX-License-Identifier: Apache-2.0
/*
 * zm-echo: the TCP peer of the netns tests, so they do not depend on which netcat variant a
 * machine has.
 *   zm-echo serve [--port P] [--banner]   dual-stack echo server, one child per connection;
 *                                         --banner first writes "peer=IP:PORT local=IP:PORT\n"
 *                                         so a client learns what address the server saw
 *   zm-echo send HOST PORT [--data STR | --bytes N] [--line] [--timeout S]
 *                                         connects, sends, half-closes, prints what came back
 *                                         (with --bytes: checks the echo, prints "echo ok N");
 *                                         --line first reads and prints one line the server
 *                                         sends before echoing (a banner or report)
 * Exit status: 0 ok, 1 network or check failure (with a message), 2 usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/addr.h"

static int usage(void)
{
	fprintf(stderr,
		"usage: zm-echo serve [--port P] [--banner]\n"
		"       zm-echo send HOST PORT [--data STR | --bytes N] [--line] [--timeout S]\n");
	return 2;
}

static void sock_name(int fd, int peer, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct zm_addr a;
	unsigned int port = 0;
	int r = peer ? getpeername(fd, (struct sockaddr *)&ss, &sl)
		     : getsockname(fd, (struct sockaddr *)&ss, &sl);

	if (r || zm_addr_from_sockaddr((struct sockaddr *)&ss, &a, &port)) {
		snprintf(buf, len, "?");
		return;
	}
	zm_addr_port_format(&a, port, buf, len);
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static void serve_one(int c, int banner)
{
	char buf[65536], peer[ZM_ADDR_STRLEN], local[ZM_ADDR_STRLEN];
	ssize_t n;

	if (banner) {
		sock_name(c, 1, peer, sizeof(peer));
		sock_name(c, 0, local, sizeof(local));
		n = snprintf(buf, sizeof(buf), "peer=%s local=%s\n", peer, local);
		if (write_all(c, buf, (size_t)n))
			return;
	}
	while ((n = read(c, buf, sizeof(buf))) > 0)
		if (write_all(c, buf, (size_t)n))
			return;
	shutdown(c, SHUT_WR);
}

static int serve(int argc, char **argv)
{
	int port = 7777, banner = 0, one = 1, zero = 0, fd, i;
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT};

	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--port") && i + 1 < argc)
			port = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--banner"))
			banner = 1;
		else
			return usage();
	}
	if (port <= 0 || port > 65535)
		return usage();
	signal(SIGCHLD, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	fd = socket(AF_INET6, SOCK_STREAM, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	sa.sin6_port = htons((unsigned short)port);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 1024)) {
		fprintf(stderr, "zm-echo: listen on port %d: %s\n", port, strerror(errno));
		return 1;
	}
	for (;;) {
		int c = accept(fd, NULL, NULL);

		if (c < 0)
			continue;
		if (fork() == 0) {
			close(fd);
			serve_one(c, banner);
			_exit(0);
		}
		close(c);
	}
}

static int dial(const char *host, const char *port, int timeout_s)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST};
	struct addrinfo *ai;
	struct pollfd p;
	int fd, err = 0, r;
	socklen_t el = sizeof(err);

	if ((r = getaddrinfo(host, port, &hints, &ai))) {
		fprintf(stderr, "zm-echo: bad address %s port %s: %s\n", host, port,
			gai_strerror(r));
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0 || (connect(fd, ai->ai_addr, ai->ai_addrlen) && errno != EINPROGRESS)) {
		fprintf(stderr, "zm-echo: connect %s port %s: %s\n", host, port, strerror(errno));
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	p = (struct pollfd){.fd = fd, .events = POLLOUT};
	if (poll(&p, 1, timeout_s * 1000) != 1) {
		fprintf(stderr, "zm-echo: connect %s port %s: timed out after %ds\n", host, port,
			timeout_s);
		close(fd);
		return -1;
	}
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
	if (err) {
		fprintf(stderr, "zm-echo: connect %s port %s: %s\n", host, port, strerror(err));
		close(fd);
		return -1;
	}
	fcntl(fd, F_SETFL, 0);
	return fd;
}

/* Send len bytes (pattern when data is NULL) while reading the echo; returns bytes read. */
static long long exchange(int fd, const char *data, long long len, int print, int *mismatch)
{
	long long sent = 0, got = 0;
	char out[65536], in[65536];
	int wr_done = 0;

	*mismatch = 0;
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN | (wr_done ? 0 : POLLOUT)};
		ssize_t n;

		if (poll(&p, 1, 10000) <= 0)
			return -1;
		if (!wr_done && (p.revents & POLLOUT)) {
			size_t chunk =
			    (size_t)(len - sent) < sizeof(out) ? (size_t)(len - sent) : sizeof(out);
			long long i;

			for (i = 0; !data && i < (long long)chunk; i++)
				out[i] = (char)((sent + i) * 7 + 3);
			n = send(fd, data ? data + sent : out, chunk, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n < 0 && errno != EAGAIN)
				return -1;
			sent += n > 0 ? n : 0;
			if (sent == len) {
				shutdown(fd, SHUT_WR);
				wr_done = 1;
			}
		}
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			n = read(fd, in, sizeof(in));
			if (n < 0)
				return -1;
			if (n == 0)
				return got;
			if (print)
				fwrite(in, 1, (size_t)n, stdout);
			for (ssize_t i = 0; !data && i < n; i++)
				if (in[i] != (char)((got + i) * 7 + 3))
					*mismatch = 1;
			got += n;
		}
	}
}

/* Read one line byte by byte (so nothing of the echo is consumed) and print it. */
static int read_line(int fd, int timeout_s)
{
	char c;

	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};

		if (poll(&p, 1, timeout_s * 1000) != 1 || read(fd, &c, 1) != 1) {
			fprintf(stderr, "zm-echo: no line from the server\n");
			return -1;
		}
		putchar(c);
		if (c == '\n')
			return 0;
	}
}

static int send_cmd(int argc, char **argv)
{
	const char *data = "hello\n";
	long long bytes = -1, got;
	int timeout_s = 5, i, fd, mismatch, line = 0;

	if (argc < 2)
		return usage();
	for (i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--data") && i + 1 < argc)
			data = argv[++i];
		else if (!strcmp(argv[i], "--bytes") && i + 1 < argc)
			bytes = atoll(argv[++i]);
		else if (!strcmp(argv[i], "--line"))
			line = 1;
		else if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
			timeout_s = atoi(argv[++i]);
		else
			return usage();
	}
	fd = dial(argv[0], argv[1], timeout_s);
	if (fd < 0)
		return 1;
	if (line && read_line(fd, timeout_s)) {
		close(fd);
		return 1;
	}
	got = exchange(fd, bytes >= 0 ? NULL : data, bytes >= 0 ? bytes : (long long)strlen(data),
		       bytes < 0, &mismatch);
	close(fd);
	if (got < 0) {
		fprintf(stderr, "zm-echo: exchange with %s port %s failed: %s\n", argv[0], argv[1],
			strerror(errno));
		return 1;
	}
	if (bytes >= 0) {
		if (got != bytes || mismatch) {
			fprintf(stderr, "zm-echo: echo mismatch: sent %lld bytes, got %lld%s\n",
				bytes, got, mismatch ? " (content differs)" : "");
			return 1;
		}
		printf("echo ok %lld\n", got);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "serve"))
		return serve(argc - 2, argv + 2);
	if (argc >= 2 && !strcmp(argv[1], "send"))
		return send_cmd(argc - 2, argv + 2);
	return usage();
}
