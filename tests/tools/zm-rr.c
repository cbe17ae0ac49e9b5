// SPDX-License-Identifier: Apache-2.0
/*
 * zm-rr: request/response load for `make bench`, speaking minimal HTTP/1.1 keep-alive (as
 * Istio's published benchmark does) so the same tool later measures the waypoint.
 *   zm-rr server [--port P] [--size BYTES]       answers every request with a BYTES body
 *       one thread, epoll, non-blocking: no fork or thread per connection, so the server's
 *       own cost stays small and the same in every scenario.
 *   zm-rr client HOST PORT --rate R --duration S [--conns C] [--size BYTES]
 *       open loop: request k is sent at start + k/R on connection k % C whether or not
 *       earlier answers arrived (HTTP/1.1 pipelining on a busy connection), and its latency
 *       runs from that *scheduled* time, so a stall counts against every request behind it
 *       (no coordinated omission). Requests unanswered 5 s after the schedule ends are
 *       errors. Prints one JSON object.
 *   zm-rr load HOST PORT --duration S [--conns C]
 *       closed loop at the highest rate the path sustains: C keep-alive connections, each
 *       sending its next request as soon as the previous answer is complete. Prints one JSON
 *       object with the rate, the latency percentiles and the client's own CPU seconds (so a
 *       caller can relate requests to the CPU the whole path used).
 *   zm-rr connect HOST PORT --duration S [--parallel N]
 *       closed loop: connect, one request/response, close, repeat. Prints one JSON object
 *       with the rate and the percentiles of each connection's connect-to-answer time.
 *   zm-rr hold HOST PORT [--conns N] [--seconds S]
 *       opens N connections, each proven by one request/response, prints one JSON object
 *       and keeps them open and idle until SIGTERM or S seconds (idle-connection memory).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REQ	  "GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
#define MAX_CONNS 256
#define BUF_SIZE  8192
#define GRACE_US  5000000LL
#define SPIN_US	  60

static int usage(void)
{
	fprintf(stderr,
		"usage: zm-rr server [--port P] [--size BYTES]\n"
		"       zm-rr client HOST PORT --rate R --duration S [--conns C] [--size BYTES]\n"
		"       zm-rr load HOST PORT --duration S [--conns C]\n"
		"       zm-rr connect HOST PORT --duration S [--parallel N]\n"
		"       zm-rr hold HOST PORT [--conns N] [--seconds S]\n");
	return 2;
}

/* One "--name VALUE" option of a subcommand: into an int ('i'), a double ('d'), or ignored. */
struct rr_opt {
	const char *name;
	char type;
	void *val;
};

/* Options from argv[first..argc); 0, or -1 for anything not in opts (then show usage). */
static int rr_opts(int argc, char **argv, int first, const struct rr_opt *opts)
{
	for (int i = first; i < argc; i++) {
		const struct rr_opt *o = opts;

		while (o->name && strcmp(argv[i], o->name))
			o++;
		if (!o->name || i + 1 >= argc)
			return -1;
		i++;
		if (o->type == 'i')
			*(int *)o->val = atoi(argv[i]);
		else if (o->type == 'd')
			*(double *)o->val = atof(argv[i]);
	}
	return 0;
}

static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/*
 * The body length a response header block announces: the value of its Content-Length field,
 * whose name is matched in any case (HTTP field names are case-insensitive, and proxies such
 * as the waypoint send them in lower case), or 0 when there is none. head points at the
 * status line, end at the blank line that ends the block. -1 for a length that is not a
 * number of 0 or more.
 */
static long long resp_body_len(const char *head, const char *end)
{
	static const char name[] = "content-length:";
	const char *line = strstr(head, "\r\n");

	while (line && line < end) {
		char *num_end;
		long long n;

		line += 2;
		if (!strncasecmp(line, name, sizeof(name) - 1)) {
			n = strtoll(line + sizeof(name) - 1, &num_end, 10); /* skips the blanks */
			return n < 0 || num_end == line + sizeof(name) - 1 ? -1 : n;
		}
		line = strstr(line, "\r\n");
	}
	return 0;
}

/* ---- server ---------------------------------------------------------------------------- */

struct srv_conn {
	int fd;
	size_t have; /* bytes of request data in in[] */
	char *out;   /* responses not yet written (the socket was full) */
	size_t out_len, out_off;
	char in[4096];
};

static const char *srv_resp;
static size_t srv_resp_len;

static void srv_conn_close(int ep, struct srv_conn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->out);
	free(c);
}

/* Writes what is queued; 0 when all of it went out, 1 when the socket is full, -1 on error. */
static int srv_conn_flush(struct srv_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);

		if (n < 0)
			return errno == EAGAIN ? 1 : -1;
		c->out_off += (size_t)n;
	}
	c->out_len = c->out_off = 0;
	return 0;
}

static int srv_conn_queue(struct srv_conn *c)
{
	char *p = realloc(c->out, c->out_len + srv_resp_len);

	if (!p)
		return -1;
	c->out = p;
	memcpy(c->out + c->out_len, srv_resp, srv_resp_len);
	c->out_len += srv_resp_len;
	return 0;
}

/* Reads requests and answers each complete header block. -1: close the connection. */
static int srv_conn_serve(int ep, struct srv_conn *c)
{
	struct epoll_event ev = {.data.ptr = c};
	ssize_t n;
	int rc;

	while ((n = read(c->fd, c->in + c->have, sizeof(c->in) - 1 - c->have)) > 0) {
		char *end;

		c->have += (size_t)n;
		c->in[c->have] = '\0';
		while ((end = strstr(c->in, "\r\n\r\n"))) {
			size_t used = (size_t)(end + 4 - c->in);

			if (srv_conn_queue(c))
				return -1;
			memmove(c->in, c->in + used, c->have - used + 1);
			c->have -= used;
		}
		if (c->have == sizeof(c->in) - 1)
			return -1; /* a header block this large is not ours */
	}
	if (n == 0 || errno != EAGAIN)
		return -1;
	rc = srv_conn_flush(c);
	if (rc < 0)
		return -1;
	ev.events = EPOLLIN | (rc ? EPOLLOUT : 0);
	return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static int server(int argc, char **argv)
{
	int port = 8080, size = 1024, one = 1, zero = 0, fd, ep, hl;
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT};
	struct epoll_event ev = {.events = EPOLLIN}, evs[64];
	char *resp;

	if (rr_opts(argc, argv, 0,
		    (const struct rr_opt[]){{"--port", 'i', &port}, {"--size", 'i', &size}, {0}}))
		return usage();
	if (port <= 0 || port > 65535 || size < 0 || size > (1 << 24))
		return usage();
	resp = malloc((size_t)size + 128);
	if (!resp)
		return 1;
	hl = snprintf(resp, 128, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", size);
	memset(resp + hl, 'z', (size_t)size);
	srv_resp = resp;
	srv_resp_len = (size_t)hl + (size_t)size;

	fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	sa.sin6_port = htons((unsigned short)port);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 4096)) {
		fprintf(stderr, "zm-rr: listen on %d: %s\n", port, strerror(errno));
		return 1;
	}
	ep = epoll_create1(0);
	ev.data.ptr = NULL; /* NULL marks the listener */
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) {
		fprintf(stderr, "zm-rr: epoll: %s\n", strerror(errno));
		return 1;
	}
	for (;;) {
		int n = epoll_wait(ep, evs, 64, -1);

		for (int i = 0; i < n; i++) {
			struct srv_conn *c = evs[i].data.ptr;
			int cfd;

			if (c) {
				if (srv_conn_serve(ep, c))
					srv_conn_close(ep, c);
				continue;
			}
			while ((cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
				struct epoll_event cev = {.events = EPOLLIN};

				c = calloc(1, sizeof(*c));
				if (!c) {
					close(cfd);
					continue;
				}
				c->fd = cfd;
				cev.data.ptr = c;
				setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
				if (epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &cev)) {
					close(cfd);
					free(c);
				}
			}
		}
	}
}

/* ---- client ---------------------------------------------------------------------------- */

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

/* Read one response (headers + Content-Length body), blocking. 0 ok, -1 error. */
static int read_response(int fd, char *buf, size_t cap)
{
	size_t have = 0, want = 0;
	ssize_t n;

	for (;;) {
		char *end;

		n = read(fd, buf + have, cap - 1 - have);
		if (n <= 0)
			return -1;
		have += (size_t)n;
		buf[have] = '\0';
		if (!want && (end = strstr(buf, "\r\n\r\n"))) {
			long long body = resp_body_len(buf, end);

			if (body < 0)
				return -1;
			want = (size_t)(end + 4 - buf) + (size_t)body;
		}
		if (want && have >= want)
			return have == want ? 0 : -1;
		if (have == cap - 1) { /* large body: keep only the count */
			if (!want)
				return -1;
			for (want -= have; want; want -= (size_t)n) {
				n = read(fd, buf, want < cap ? want : cap);
				if (n <= 0)
					return -1;
			}
			return 0;
		}
	}
}

/* One keep-alive connection of the open-loop client: requests in flight, in send order. */
struct cli_conn {
	int fd;
	long long body_left; /* body bytes of the current response still to come; -1: headers */
	long long *due;	     /* scheduled times of the requests in flight (a ring) */
	size_t head, count, cap;
	size_t have;
	char buf[BUF_SIZE];
};

struct cli_stats {
	long long *lat, n_lat, lat_cap; /* latencies recorded, while there is room */
	long long done, errors;		/* requests answered / failed */
};

static void cli_conn_fail(struct cli_conn *c, struct cli_stats *st)
{
	st->errors += (long long)c->count;
	c->head = c->count = 0;
	c->have = 0;
	c->body_left = -1;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* Consumes whole responses from buf; each completes the oldest request in flight. */
static int cli_conn_parse(struct cli_conn *c, struct cli_stats *st, long long now)
{
	for (;;) {
		char *end;
		size_t hl;

		if (c->body_left >= 0) {
			size_t take =
			    c->have < (size_t)c->body_left ? c->have : (size_t)c->body_left;

			memmove(c->buf, c->buf + take, c->have - take);
			c->have -= take;
			c->body_left -= (long long)take;
			if (c->body_left > 0)
				return 0;
			if (!c->count)
				return -1; /* an answer nobody asked for */
			if (st->n_lat < st->lat_cap)
				st->lat[st->n_lat++] = now - c->due[c->head];
			st->done++;
			c->head = (c->head + 1) % c->cap;
			c->count--;
			c->body_left = -1;
			continue;
		}
		c->buf[c->have] = '\0';
		end = strstr(c->buf, "\r\n\r\n");
		if (!end)
			return c->have == sizeof(c->buf) - 1 ? -1 : 0;
		hl = (size_t)(end + 4 - c->buf);
		c->body_left = resp_body_len(c->buf, end);
		if (c->body_left < 0)
			return -1;
		memmove(c->buf, c->buf + hl, c->have - hl);
		c->have -= hl;
	}
}

static int cli_conn_send(struct cli_conn *c, long long due)
{
	if (c->fd < 0 || c->count == c->cap)
		return -1;
	if (write(c->fd, REQ, sizeof(REQ) - 1) != (ssize_t)(sizeof(REQ) - 1))
		return -1;
	c->due[(c->head + c->count) % c->cap] = due;
	c->count++;
	return 0;
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

static void client_report(double rate, struct cli_stats *st, long long start, long long last)
{
	long long *lat = st->lat, n = st->n_lat;
	double secs = (last - start) / 1e6;

	qsort(lat, (size_t)n, sizeof(*lat), cmp_ll);
#define PCT(p) (n ? lat[(long long)((n - 1) * (p))] : -1)
	printf("{\"rate\": %.0f, \"requests\": %lld, \"errors\": %lld, \"achieved_rps\": %.1f, "
	       "\"p50_us\": %lld, \"p90_us\": %lld, \"p99_us\": %lld, \"max_us\": %lld}\n",
	       rate, n, st->errors, secs > 0 ? n / secs : 0.0, PCT(0.50), PCT(0.90), PCT(0.99),
	       n ? lat[n - 1] : -1);
#undef PCT
}

/*
 * The event loop: send every request that is due, then sleep in ppoll until the next one is
 * due or an answer arrives. A connection that fails counts its requests in flight as errors
 * and is dialled again.
 */
static int client_run(const char *host, const char *port, double rate, double duration, int conns,
		      struct cli_conn *cc, struct cli_stats *st)
{
	long long total = (long long)(rate * duration), k = 0, start, end, last, in_flight;
	struct pollfd pfd[MAX_CONNS];

	start = now_us() + 1000;
	end = start + (long long)(duration * 1e6);
	last = start;
	for (;;) {
		long long now = now_us(), due = start + (long long)(k * 1e6 / rate), wait_us;
		struct timespec ts;
		int n;

		while (k < total && due <= now) {
			struct cli_conn *c = &cc[k % conns];

			if (c->fd < 0)
				c->fd = dial(host, port);
			if (cli_conn_send(c, due)) {
				st->errors++;
				cli_conn_fail(c, st);
			}
			due = start + (long long)(++k * 1e6 / rate);
		}
		in_flight = 0;
		for (int i = 0; i < conns; i++) {
			pfd[i].fd = cc[i].fd;
			pfd[i].events = POLLIN;
			in_flight += (long long)cc[i].count;
		}
		if (k >= total && (!in_flight || now > end + GRACE_US))
			break;
		wait_us = k < total ? due - now : end + GRACE_US - now;
		/*
		 * Sleep until SPIN_US before the due time, then poll without sleeping: waking a
		 * sleeping CPU costs tens of microseconds on a VM, which would count as latency.
		 */
		if (k < total)
			wait_us = wait_us > SPIN_US ? wait_us - SPIN_US : 0;
		ts.tv_sec = wait_us / 1000000;
		ts.tv_nsec = (wait_us % 1000000) * 1000;
		n = ppoll(pfd, (nfds_t)conns, &ts, NULL);
		now = now_us();
		for (int i = 0; n > 0 && i < conns; i++) {
			struct cli_conn *c = &cc[i];
			ssize_t r;

			if (!pfd[i].revents || c->fd < 0)
				continue;
			r = read(c->fd, c->buf + c->have, sizeof(c->buf) - 1 - c->have);
			if (r <= 0 || (c->have += (size_t)r, cli_conn_parse(c, st, now)))
				cli_conn_fail(c, st);
			else
				last = now;
		}
	}
	for (int i = 0; i < conns; i++)
		cli_conn_fail(&cc[i], st); /* still in flight after the grace period: errors */
	client_report(rate, st, start, last > end ? last : end);
	return st->n_lat ? 0 : 1;
}

static int client(int argc, char **argv)
{
	double rate = 1000, duration = 10;
	int conns = 16, rc = 1;
	struct cli_stats st = {0};
	struct cli_conn *cc;
	long long total;

	/* --size: the server decides; accepted for symmetry. */
	if (argc < 2 || rr_opts(argc, argv, 2,
				(const struct rr_opt[]){{"--rate", 'd', &rate},
							{"--duration", 'd', &duration},
							{"--conns", 'i', &conns},
							{"--size", '-', NULL},
							{0}}))
		return usage();
	if (rate <= 0 || duration <= 0 || conns <= 0 || conns > MAX_CONNS)
		return usage();
	total = (long long)(rate * duration);
	/* Wake-ups on time matter more here than the timer's power savings. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	cc = calloc((size_t)conns, sizeof(*cc));
	st.lat_cap = total + 1;
	st.lat = calloc((size_t)st.lat_cap, sizeof(*st.lat));
	if (!cc || !st.lat)
		goto out;
	for (int c = 0; c < conns; c++) {
		cc[c].body_left = -1;
		cc[c].cap = (size_t)(total / conns) + 2;
		cc[c].due = calloc(cc[c].cap, sizeof(*cc[c].due));
		cc[c].fd = dial(argv[0], argv[1]);
		if (!cc[c].due || cc[c].fd < 0) {
			fprintf(stderr, "zm-rr: connect %s:%s: %s\n", argv[0], argv[1],
				strerror(errno));
			goto out;
		}
	}
	rc = client_run(argv[0], argv[1], rate, duration, conns, cc, &st);
out:
	for (int c = 0; cc && c < conns; c++)
		free(cc[c].due);
	free(cc);
	free(st.lat);
	return rc;
}

/* ---- load ------------------------------------------------------------------------------ */

#define LOAD_LAT_MAX (1 << 22)

/* Sends conn c's next request now; a connection that failed is dialled again first. */
static void load_send(const char *host, const char *port, struct cli_conn *c, struct cli_stats *st)
{
	if (c->fd < 0)
		c->fd = dial(host, port);
	if (cli_conn_send(c, now_us())) {
		st->errors++;
		cli_conn_fail(c, st);
	}
}

/*
 * The closed loop: every connection has one request in flight until the deadline; an answer
 * completes it and sends the next one at once. Requests still unanswered GRACE_US after the
 * deadline are errors.
 */
static void load_run(const char *host, const char *port, double duration, int conns,
		     struct cli_conn *cc, struct cli_stats *st, long long *start, long long *last)
{
	struct pollfd pfd[MAX_CONNS];
	long long end;

	*start = *last = now_us();
	end = *start + (long long)(duration * 1e6);
	for (int i = 0; i < conns; i++)
		load_send(host, port, &cc[i], st);
	for (;;) {
		long long now = now_us(), in_flight = 0;
		int n;

		for (int i = 0; i < conns; i++) {
			if (now < end && !cc[i].count)
				load_send(host, port, &cc[i], st); /* after a failure */
			pfd[i].fd = cc[i].fd;
			pfd[i].events = POLLIN;
			in_flight += (long long)cc[i].count;
		}
		if (now >= end && (!in_flight || now > end + GRACE_US))
			break;
		n = poll(pfd, (nfds_t)conns, 100);
		now = now_us();
		for (int i = 0; n > 0 && i < conns; i++) {
			struct cli_conn *c = &cc[i];
			ssize_t r;

			if (!pfd[i].revents || c->fd < 0)
				continue;
			r = read(c->fd, c->buf + c->have, sizeof(c->buf) - 1 - c->have);
			if (r <= 0 || (c->have += (size_t)r, cli_conn_parse(c, st, now))) {
				cli_conn_fail(c, st);
				continue;
			}
			*last = now;
			if (!c->count && now < end)
				load_send(host, port, c, st);
		}
	}
	for (int i = 0; i < conns; i++)
		cli_conn_fail(&cc[i], st); /* still in flight after the grace period: errors */
}

static int load_cmd(int argc, char **argv)
{
	double duration = 5, cpu;
	int conns = 16, rc = 1;
	struct cli_stats st = {0};
	struct cli_conn *cc;
	struct rusage ru;
	long long start, last, n;

	if (argc < 2 || rr_opts(argc, argv, 2,
				(const struct rr_opt[]){
				    {"--duration", 'd', &duration}, {"--conns", 'i', &conns}, {0}}))
		return usage();
	if (duration <= 0 || conns <= 0 || conns > MAX_CONNS)
		return usage();
	cc = calloc((size_t)conns, sizeof(*cc));
	st.lat_cap = LOAD_LAT_MAX;
	st.lat = calloc((size_t)st.lat_cap, sizeof(*st.lat));
	if (!cc || !st.lat)
		goto out;
	for (int c = 0; c < conns; c++)
		cc[c].fd = -1;
	for (int c = 0; c < conns; c++) {
		cc[c].body_left = -1;
		cc[c].cap = 1; /* one request in flight per connection */
		cc[c].due = calloc(1, sizeof(*cc[c].due));
		cc[c].fd = dial(argv[0], argv[1]);
		if (!cc[c].due || cc[c].fd < 0) {
			fprintf(stderr, "zm-rr: connect %s:%s: %s\n", argv[0], argv[1],
				strerror(errno));
			goto out;
		}
	}
	load_run(argv[0], argv[1], duration, conns, cc, &st, &start, &last);
	getrusage(RUSAGE_SELF, &ru);
	cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	      ru.ru_stime.tv_usec / 1e6;
	n = st.n_lat;
	qsort(st.lat, (size_t)n, sizeof(*st.lat), cmp_ll);
#define PCT(p) (n ? st.lat[(long long)((n - 1) * (p))] : -1)
	printf("{\"conns\": %d, \"requests\": %lld, \"errors\": %lld, \"rps\": %.1f, "
	       "\"p50_us\": %lld, \"p90_us\": %lld, \"p99_us\": %lld, \"max_us\": %lld, "
	       "\"seconds\": %.3f, \"cpu_s\": %.3f}\n",
	       conns, st.done, st.errors, last > start ? st.done / ((last - start) / 1e6) : 0.0,
	       PCT(0.50), PCT(0.90), PCT(0.99), n ? st.lat[n - 1] : -1, (last - start) / 1e6, cpu);
#undef PCT
	rc = st.done ? 0 : 1;
out:
	for (int c = 0; cc && c < conns; c++) {
		if (cc[c].fd >= 0)
			close(cc[c].fd);
		free(cc[c].due);
	}
	free(cc);
	free(st.lat);
	return rc;
}

/* ---- connect --------------------------------------------------------------------------- */

/* Per-connection times of one connect loop, in memory shared with the parent across fork. */
#define CONN_LAT_MAX (1 << 20)
struct conn_lat {
	long long n;
	long long us[CONN_LAT_MAX];
};

/*
 * One closed loop of connect / request / response / close until the deadline; each
 * connection's time from connect() to its answer goes into lat (while there is room).
 */
static long long connect_loop(const char *host, const char *port, long long deadline, int *errs,
			      struct conn_lat *lat)
{
	char buf[65536];
	long long done = 0;

	while (now_us() < deadline) {
		long long t0 = now_us();
		int fd = dial(host, port);

		if (fd < 0 || write(fd, REQ, sizeof(REQ) - 1) != (ssize_t)(sizeof(REQ) - 1) ||
		    read_response(fd, buf, sizeof(buf))) {
			(*errs)++;
		} else {
			done++;
			if (lat->n < CONN_LAT_MAX)
				lat->us[lat->n++] = now_us() - t0;
		}
		if (fd >= 0)
			close(fd);
	}
	return done;
}

/* Merge the children's connection times and print the report. */
static void connect_report(struct conn_lat *lats, int parallel, long long total, int errs,
			   long long start)
{
	long long n = 0, *all;

	for (int p = 0; p < parallel; p++)
		n += lats[p].n;
	all = malloc((size_t)(n ? n : 1) * sizeof(*all));
	if (!all)
		n = 0;
	for (int p = 0, k = 0; all && p < parallel; p++)
		for (long long i = 0; i < lats[p].n; i++)
			all[k++] = lats[p].us[i];
	qsort(all, (size_t)n, sizeof(*all), cmp_ll);
#define PCT(q) (n ? all[(long long)((n - 1) * (q))] : -1)
	printf(
	    "{\"connections\": %lld, \"errors\": %d, \"conn_per_s\": %.1f, \"conn_p50_us\": %lld, "
	    "\"conn_p90_us\": %lld, \"conn_p99_us\": %lld}\n",
	    total, errs, total / ((now_us() - start) / 1e6), PCT(0.50), PCT(0.90), PCT(0.99));
#undef PCT
	free(all);
}

static int connect_cmd(int argc, char **argv)
{
	double duration = 5;
	int parallel = 4, errs = 0, pipefd[2];
	long long total = 0, start, deadline;
	struct conn_lat *lats;

	if (argc < 2 ||
	    rr_opts(argc, argv, 2,
		    (const struct rr_opt[]){
			{"--duration", 'd', &duration}, {"--parallel", 'i', &parallel}, {0}}))
		return usage();
	if (duration <= 0 || parallel <= 0 || parallel > 64 || pipe(pipefd))
		return usage();
	lats = mmap(NULL, sizeof(*lats) * (size_t)parallel, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (lats == MAP_FAILED) {
		fprintf(stderr, "zm-rr: mmap: %s\n", strerror(errno));
		return 1;
	}
	start = now_us();
	deadline = start + (long long)(duration * 1e6);
	for (int p = 0; p < parallel; p++) {
		if (fork() == 0) {
			long long r[2];
			int e = 0;

			r[0] = connect_loop(argv[0], argv[1], deadline, &e, &lats[p]);
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
	connect_report(lats, parallel, total, errs, start);
	return total == 0;
}

/* ---- hold ------------------------------------------------------------------------------ */

static volatile sig_atomic_t hold_stop;

static void hold_on_signal(int sig)
{
	(void)sig;
	hold_stop = 1;
}

/*
 * Open N connections one after another, each proven end to end by one request/response,
 * then keep all of them open and idle until SIGTERM/SIGINT or --seconds. The report line is
 * printed (and flushed) once all are open, so a caller can measure while they are held.
 */
static int hold_cmd(int argc, char **argv)
{
	int conns = 1000, held = 0, errs = 0, *fds;
	double seconds = 600;
	char buf[65536];
	long long start, deadline;

	if (argc < 2 || rr_opts(argc, argv, 2,
				(const struct rr_opt[]){
				    {"--conns", 'i', &conns}, {"--seconds", 'd', &seconds}, {0}}))
		return usage();
	if (conns <= 0 || conns > 1000000 || seconds <= 0)
		return usage();
	fds = calloc((size_t)conns, sizeof(*fds));
	if (!fds)
		return 1;
	signal(SIGTERM, hold_on_signal);
	signal(SIGINT, hold_on_signal);
	start = now_us();
	/* Give up after conns/100 failures: a refused mesh should not take minutes to say so. */
	for (int i = 0; i < conns && !hold_stop && errs <= conns / 100; i++) {
		int fd = dial(argv[0], argv[1]);

		if (fd < 0 || write(fd, REQ, sizeof(REQ) - 1) != (ssize_t)(sizeof(REQ) - 1) ||
		    read_response(fd, buf, sizeof(buf))) {
			if (fd >= 0)
				close(fd);
			errs++;
			continue;
		}
		fds[held++] = fd;
	}
	printf("{\"held\": %d, \"errors\": %d, \"open_s\": %.2f}\n", held, errs,
	       (now_us() - start) / 1e6);
	fflush(stdout);
	deadline = now_us() + (long long)(seconds * 1e6);
	while (!hold_stop && now_us() < deadline)
		usleep(100000);
	for (int i = 0; i < held; i++)
		close(fds[i]);
	free(fds);
	return held == conns ? 0 : 1;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc >= 2 && !strcmp(argv[1], "server"))
		return server(argc - 2, argv + 2);
	if (argc >= 2 && !strcmp(argv[1], "client"))
		return client(argc - 2, argv + 2);
	if (argc >= 2 && !strcmp(argv[1], "load"))
		return load_cmd(argc - 2, argv + 2);
	if (argc >= 2 && !strcmp(argv[1], "connect"))
		return connect_cmd(argc - 2, argv + 2);
	if (argc >= 2 && !strcmp(argv[1], "hold"))
		return hold_cmd(argc - 2, argv + 2);
	return usage();
}
