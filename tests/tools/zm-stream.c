// SPDX-License-Identifier: Apache-2.0
/*
 * zm-stream: a long-lived, checked TCP stream for the upgrade and drain tests. It connects to
 * an echo server (zm-echo serve), writes a deterministic pseudo-random byte stream at a steady
 * rate for a given time while it reads the echo back and compares every byte with the same
 * generator, then half-closes and waits for the rest of the echo. A lost, duplicated, reordered
 * or corrupted byte, a reset or a stall is a failure, reported with the byte offset.
 *
 *   zm-stream HOST PORT [--seconds S] [--rate KB_PER_S] [--stall-ms MS]
 *
 * Prints "stream ok sent=N echoed=N seconds=S" (exit 0) or "stream FAILED at byte N sent=S: why"
 * (exit 1); --stall-ms (default 5000) is how long the echo may fall silent while bytes are
 * outstanding. Exit 2 on usage errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 4096

struct gen {
	uint64_t s;
};

static uint8_t gen_next(struct gen *g)
{
	/* xorshift64*: cheap and never all-zero, so a zero-filled hole never passes. */
	g->s ^= g->s >> 12;
	g->s ^= g->s << 25;
	g->s ^= g->s >> 27;
	return (uint8_t)((g->s * 0x2545F4914F6CDD1DULL) >> 56);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int usage(void)
{
	fprintf(stderr, "usage: zm-stream HOST PORT [--seconds S] [--rate KB_PER_S] "
			"[--stall-ms MS]\n");
	return 2;
}

/* One failure line: where the echo stopped, how much was sent, why. Returns 1 (exit status). */
static int fail(uint64_t echoed, uint64_t sent, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(uint64_t echoed, uint64_t sent, const char *fmt, ...)
{
	va_list ap;

	printf("stream FAILED at byte %llu sent=%llu: ", (unsigned long long)echoed,
	       (unsigned long long)sent);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	return 1;
}

static int dial(const char *host, const char *port)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
	int fd, r = getaddrinfo(host, port, &hints, &ai);

	if (r) {
		fprintf(stderr, "zm-stream: %s: %s\n", host, gai_strerror(r));
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen)) {
		fail(0, 0, "connect %s port %s: %s", host, port, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

struct run {
	int fd;
	struct gen tx, rx;
	uint8_t pend[CHUNK]; /* generated, not yet written */
	size_t pend_len, pend_off;
	uint64_t sent, echoed, start, last_rx, stall_ms, seconds, rate;
	int shut;
};

/* Read and check what came back. 0 on progress or nothing yet, 1 at EOF, -1 on failure. */
static int run_read(struct run *r)
{
	uint8_t buf[CHUNK];
	ssize_t n = read(r->fd, buf, sizeof(buf));

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n < 0) {
		fail(r->echoed, r->sent, "read: %s", strerror(errno));
		return -1;
	}
	if (n == 0)
		return 1;
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] != gen_next(&r->rx)) {
			fail(r->echoed + (uint64_t)i, r->sent,
			     "the echo differs (lost or corrupted)");
			return -1;
		}
	}
	r->echoed += (uint64_t)n;
	r->last_rx = now_ms();
	return 0;
}

/* Write what the rate allows by now (non-blocking). 0 or -1. */
static int run_write(struct run *r, uint64_t t)
{
	uint64_t due = (t - r->start) * r->rate;
	ssize_t n;

	if (!r->pend_len && t - r->start >= r->seconds * 1000) {
		if (!r->shut && shutdown(r->fd, SHUT_WR) == 0)
			r->shut = 1;
		return 0;
	}
	if (!r->pend_len && due > r->sent) {
		uint64_t k = due - r->sent > CHUNK ? CHUNK : due - r->sent;

		for (uint64_t i = 0; i < k; i++)
			r->pend[i] = gen_next(&r->tx);
		r->pend_len = (size_t)k;
		r->pend_off = 0;
	}
	if (!r->pend_len)
		return 0;
	n = write(r->fd, r->pend + r->pend_off, r->pend_len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n < 0) {
		fail(r->echoed, r->sent, "write: %s", strerror(errno));
		return -1;
	}
	r->pend_off += (size_t)n;
	r->pend_len -= (size_t)n;
	r->sent += (uint64_t)n;
	return 0;
}

int main(int argc, char **argv)
{
	struct run r = {.tx = {0x9e3779b97f4a7c15ULL},
			.rx = {0x9e3779b97f4a7c15ULL},
			.stall_ms = 5000,
			.seconds = 10,
			.rate = 256};
	struct pollfd p;
	int i, st;

	if (argc < 3)
		return usage();
	for (i = 3; i + 1 < argc; i += 2) {
		char *end;
		unsigned long long v = strtoull(argv[i + 1], &end, 10);

		if (*end || !*argv[i + 1])
			return usage();
		if (!strcmp(argv[i], "--seconds"))
			r.seconds = v;
		else if (!strcmp(argv[i], "--rate"))
			r.rate = v; /* KB/s = bytes per ms, near enough */
		else if (!strcmp(argv[i], "--stall-ms"))
			r.stall_ms = v;
		else
			return usage();
	}
	if (i != argc || !r.rate)
		return usage();
	r.fd = dial(argv[1], argv[2]);
	if (r.fd < 0)
		return 1;
	fcntl(r.fd, F_SETFL, O_NONBLOCK);
	r.start = r.last_rx = now_ms();
	p.fd = r.fd;
	for (;;) {
		uint64_t t = now_ms();

		if (run_write(&r, t))
			return 1;
		if (r.echoed < r.sent && t - r.last_rx > r.stall_ms) {
			return fail(r.echoed, r.sent, "no echo for %llu ms",
				    (unsigned long long)(t - r.last_rx));
		}
		p.events = POLLIN | (r.pend_len ? POLLOUT : 0);
		if (poll(&p, 1, 5) < 0 && errno != EINTR)
			return 1;
		if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		st = run_read(&r);
		if (st < 0)
			return 1;
		if (st == 1)
			break;
	}
	if (!r.shut || r.echoed != r.sent) {
		return fail(r.echoed, r.sent, "the server closed early");
	}
	printf("stream ok sent=%llu echoed=%llu seconds=%llu\n", (unsigned long long)r.sent,
	       (unsigned long long)r.echoed, (unsigned long long)((now_ms() - r.start) / 1000));
	return 0;
}
