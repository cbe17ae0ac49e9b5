// SPDX-License-Identifier: Apache-2.0
/*
 * zm-httpecho: a small HTTP/1.1 server for waypoint tests. Answers every request with its pod
 * name (--name, or $POD_NAME), the request line and the headers it saw, one per line; keeps
 * connections alive; reads Content-Length and chunked bodies and reports their size. The
 * path /status/NNN answers with status NNN. One thread per connection.
 *
 * Per-request behaviour for timeout, retry and outlier tests, chosen by request headers:
 *   x-echo-delay: MS     wait MS milliseconds before answering
 *   x-echo-status: NNN   answer with status NNN
 *   x-echo-fail: N       the first N requests carrying the same x-echo-key (default: the
 *                        request target) are answered 503; later ones normally
 * --status NNN makes every request fail with NNN (a broken endpoint); --label k=v (repeated)
 * adds "label=k=v" lines; with --log every request is also logged to stdout as "seen POD
 * REQUEST-LINE host=HOST", so a mirror target can be checked. x-echo-slow: N limits
 * x-echo-delay to the first N requests of the key (a per-try timeout then a fast retry).
 *   zm-httpecho --port 9080 [--port 9081] --name reviews-v1 [--label app=reviews] [--status 503]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

static const char *pod_name = "unknown";
static const char *labels[16];
static int n_labels, fixed_status, log_requests;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* Failure counters by x-echo-key: how many requests of that key were failed so far. */
static struct {
	char key[128];
	long n;
} fails[256];

/* True while the request of key should still fail (the first limit requests). */
static int fail_next(const char *key, long limit)
{
	int i, hit = 0;

	pthread_mutex_lock(&lock);
	for (i = 0; i < 256; i++) {
		if (!fails[i].key[0])
			snprintf(fails[i].key, sizeof(fails[i].key), "%s", key);
		if (!strcmp(fails[i].key, key)) {
			hit = fails[i].n < limit;
			fails[i].n += hit;
			break;
		}
	}
	pthread_mutex_unlock(&lock);
	return hit;
}

/* The value of "name:" in a header line, or NULL. */
static const char *hval(const char *line, const char *name)
{
	size_t n = strlen(name);

	if (strncasecmp(line, name, n) || line[n] != ':')
		return NULL;
	for (line += n + 1; *line == ' ' || *line == '\t'; line++)
		;
	return line;
}

static int read_more(int fd, char *buf, size_t *len, size_t cap)
{
	ssize_t n = read(fd, buf + *len, cap - *len);

	if (n <= 0)
		return -1;
	*len += (size_t)n;
	return 0;
}

/* Body bytes of a chunked message starting at buf[*off]; -1 on EOF/garbage. */
static long read_chunked(int fd, char *buf, size_t *len, size_t cap, size_t *off)
{
	long total = 0;

	for (;;) {
		char *nl;
		unsigned long sz;

		while (!(nl = memmem(buf + *off, *len - *off, "\r\n", 2)))
			if (*len == cap || read_more(fd, buf, len, cap))
				return -1;
		sz = strtoul(buf + *off, NULL, 16);
		*off = (size_t)(nl - buf) + 2;
		while (*len - *off < sz + 2) {
			/* Drop consumed bytes to make room for big chunks. */
			memmove(buf, buf + *off, *len - *off);
			*len -= *off;
			if (sz + 2 > *len) {
				size_t take = *len < sz ? *len : sz;

				sz -= take;
				total += (long)take;
				*len -= take;
				memmove(buf, buf + take, *len);
			}
			*off = 0;
			if (*len - *off >= sz + 2)
				break;
			if (read_more(fd, buf, len, cap))
				return -1;
		}
		*off += sz + 2;
		total += (long)sz;
		if (!sz)
			return total;
	}
}

static void *serve(void *arg)
{
	int fd = (int)(long)arg;
	static __thread char buf[1 << 16];
	size_t len = 0;

	for (;;) {
		char *end, *line, *save, out[16384], *p, reqline[1024];
		size_t hlen, off, o = 0;
		long clen = 0, body = 0, delay_ms = 0, fail_n = 0, slow_n = 0;
		int status = fixed_status ? fixed_status : 200, close_after = 0, chunked = 0, i;
		char key[128] = "", host[128] = "";
		const char *v;

		while (!(end = memmem(buf, len, "\r\n\r\n", 4)))
			if (len == sizeof(buf) || read_more(fd, buf, &len, sizeof(buf)))
				goto out;
		hlen = (size_t)(end - buf) + 4;
		end[2] = '\0';
		o += (size_t)snprintf(out + o, sizeof(out) - o, "pod=%s\n", pod_name);
		line = strtok_r(buf, "\r\n", &save);
		snprintf(reqline, sizeof(reqline), "%s", line ? line : "");
		o += (size_t)snprintf(out + o, sizeof(out) - o, "request=%s\n", reqline);
		for (i = 0; i < n_labels; i++)
			o += (size_t)snprintf(out + o, sizeof(out) - o, "label=%s\n", labels[i]);
		if ((p = strstr(reqline, " /status/")))
			status = atoi(p + 9);
		if ((p = strchr(reqline, ' ')))
			snprintf(key, sizeof(key), "%.*s", (int)strcspn(p + 1, " "), p + 1);
		if (strstr(reqline, "HTTP/1.0"))
			close_after = 1;
		while ((line = strtok_r(NULL, "\r\n", &save))) {
			if (o < sizeof(out) - 1)
				o +=
				    (size_t)snprintf(out + o, sizeof(out) - o, "header=%s\n", line);
			if (!strncasecmp(line, "content-length:", 15))
				clen = atol(line + 15);
			if (!strncasecmp(line, "transfer-encoding:", 18) &&
			    strcasestr(line, "chunked"))
				chunked = 1;
			if (!strncasecmp(line, "connection:", 11) && strcasestr(line, "close"))
				close_after = 1;
			if ((v = hval(line, "x-echo-delay")))
				delay_ms = atol(v);
			if ((v = hval(line, "x-echo-status")))
				status = atoi(v);
			if ((v = hval(line, "x-echo-fail")))
				fail_n = atol(v);
			if ((v = hval(line, "x-echo-slow")))
				slow_n = atol(v);
			if ((v = hval(line, "x-echo-key")))
				snprintf(key, sizeof(key), "%s", v);
			if ((v = hval(line, "host")))
				snprintf(host, sizeof(host), "%s", v);
		}
		if (log_requests) {
			pthread_mutex_lock(&lock);
			printf("seen %s %s host=%s\n", pod_name, reqline, host);
			fflush(stdout);
			pthread_mutex_unlock(&lock);
		}
		if (fail_n && fail_next(key, fail_n))
			status = 503;
		if (slow_n && delay_ms > 0) {
			char skey[160];

			snprintf(skey, sizeof(skey), "slow:%s", key);
			if (!fail_next(skey, slow_n))
				delay_ms = 0;
		}
		if (delay_ms > 0)
			usleep((useconds_t)delay_ms * 1000);
		off = hlen;
		if (chunked) {
			body = read_chunked(fd, buf, &len, sizeof(buf), &off);
			if (body < 0)
				goto out;
		} else {
			while ((long)(len - off) < clen) {
				body += (long)(len - off);
				clen -= (long)(len - off);
				len = off = 0;
				if (read_more(fd, buf, &len, sizeof(buf)))
					goto out;
			}
			off += (size_t)clen;
			body += clen;
		}
		memmove(buf, buf + off, len - off);
		len -= off;
		if (o > sizeof(out) - 64)
			o = sizeof(out) - 64;
		o += (size_t)snprintf(out + o, sizeof(out) - o, "body_bytes=%ld\n", body);
		{
			char hdr[256];
			int hn = snprintf(hdr, sizeof(hdr),
					  "HTTP/1.1 %d X\r\ncontent-type: text/plain\r\n"
					  "x-pod: %s\r\ncontent-length: %zu\r\n%s\r\n",
					  status, pod_name, o,
					  close_after ? "connection: close\r\n" : "");

			struct iovec iov[2] = {{hdr, (size_t)hn}, {out, o}};

			/* One write: head and body in one segment, no delayed-ACK stall. */
			if (writev(fd, iov, 2) < 0)
				goto out;
		}
		if (close_after)
			goto out;
	}
out:
	close(fd);
	return NULL;
}

static void *listener(void *arg)
{
	int port = (int)(long)arg, one = 1, zero = 0;
	struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = in6addr_any};
	int lfd = socket(AF_INET6, SOCK_STREAM, 0);

	a.sin6_port = htons((uint16_t)port);
	setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, 128)) {
		fprintf(stderr, "zm-httpecho: port %d: %s\n", port, strerror(errno));
		exit(1);
	}
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		pthread_t t;

		if (fd < 0)
			continue;
		if (pthread_create(&t, NULL, serve, (void *)(long)fd))
			close(fd);
		else
			pthread_detach(t);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int ports[8], n = 0, i;
	pthread_t t;

	signal(SIGPIPE, SIG_IGN);
	if (getenv("POD_NAME"))
		pod_name = getenv("POD_NAME");
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--port") && i + 1 < argc && n < 8)
			ports[n++] = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--name") && i + 1 < argc)
			pod_name = argv[++i];
		else if (!strcmp(argv[i], "--label") && i + 1 < argc && n_labels < 16)
			labels[n_labels++] = argv[++i];
		else if (!strcmp(argv[i], "--log"))
			log_requests = 1;
		else if (!strcmp(argv[i], "--status") && i + 1 < argc)
			fixed_status = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: zm-httpecho --port N [--port N] [--name POD] "
					"[--label K=V]... [--status NNN] [--log]\n");
			return 2;
		}
	}
	if (!n)
		ports[n++] = 8080;
	for (i = 1; i < n; i++)
		pthread_create(&t, NULL, listener, (void *)(long)ports[i]);
	listener((void *)(long)ports[0]);
	return 0;
}
