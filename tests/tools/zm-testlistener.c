// SPDX-License-Identifier: Apache-2.0
/*
 * zm-testlistener: stands in for ztunnel in the capture tests until ztunnel exists. Listens
 * with IP_TRANSPARENT on 0.0.0.0 and :: at the capture ports (default 15001, 15006, 15008),
 * as ztunnel does, and for every accepted connection reports what the datapath delivered:
 *   "port=15001 orig_dst=198.18.2.11:7777 src=198.18.1.11:40000\n"
 * getsockname() of a connection handed over by bpf_sk_assign is the original destination and
 * getpeername() the pod's real address. The line goes to the client and to stdout, then the
 * connection is held open until the client closes it (so tests can keep flows established).
 * With --echo, whatever the client sends after the report line is echoed back (so a test can
 * keep a captured flow busy across a datapath reload).
 * Usage: zm-testlistener [--ports P,P,...] [--echo]     runs until killed
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/addr.h"

#define MAX_FDS 1024

static int echo;

static int listen_on(int family, int port)
{
	struct sockaddr_storage ss;
	struct zm_addr any = {.family = family == AF_INET ? ZM_AF_INET : ZM_AF_INET6};
	socklen_t sl = zm_addr_to_sockaddr(&any, (unsigned int)port, &ss);
	int one = 1, fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (setsockopt(fd, family == AF_INET ? SOL_IP : SOL_IPV6,
		       family == AF_INET ? IP_TRANSPARENT : IPV6_TRANSPARENT, &one, sizeof(one))) {
		fprintf(stderr, "zm-testlistener: IP_TRANSPARENT: %s (needs CAP_NET_ADMIN)\n",
			strerror(errno));
		close(fd);
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&ss, sl) || listen(fd, 1024)) {
		fprintf(stderr, "zm-testlistener: listen on port %d: %s\n", port, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* Blocking-style write on a non-blocking socket: a test tool serving one busy client. */
static int echo_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EAGAIN) {
			struct pollfd pw = {.fd = fd, .events = POLLOUT};

			if (poll(&pw, 1, 10000) != 1)
				return -1;
			continue;
		}
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void report(int c, int port)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct zm_addr dst, src;
	unsigned int dport = 0, sport = 0;
	char d[ZM_ADDR_STRLEN], s[ZM_ADDR_STRLEN], line[256];
	int n;

	getsockname(c, (struct sockaddr *)&ss, &sl);
	zm_addr_from_sockaddr((struct sockaddr *)&ss, &dst, &dport);
	sl = sizeof(ss);
	getpeername(c, (struct sockaddr *)&ss, &sl);
	zm_addr_from_sockaddr((struct sockaddr *)&ss, &src, &sport);
	n = snprintf(line, sizeof(line), "port=%d orig_dst=%s src=%s\n", port,
		     zm_addr_port_format(&dst, dport, d, sizeof(d)),
		     zm_addr_port_format(&src, sport, s, sizeof(s)));
	fputs(line, stdout);
	fflush(stdout);
	if (write(c, line, (size_t)n) != n)
		fprintf(stderr, "zm-testlistener: short write to client\n");
}

int main(int argc, char **argv)
{
	struct pollfd fds[MAX_FDS];
	int lport[MAX_FDS], nl = 0, nfds, i;
	char ports[256] = "15001,15006,15008", *tok, *save;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--ports") && i + 1 < argc) {
			snprintf(ports, sizeof(ports), "%s", argv[++i]);
		} else if (!strcmp(argv[i], "--echo")) {
			echo = 1;
		} else {
			fprintf(stderr, "usage: zm-testlistener [--ports P,P,...] [--echo]\n");
			return 2;
		}
	}
	for (tok = strtok_r(ports, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int port = atoi(tok), fam;

		if (port <= 0 || port > 65535 || nl + 2 > 64) {
			fprintf(stderr, "zm-testlistener: bad port '%s'\n", tok);
			return 2;
		}
		for (fam = 0; fam < 2; fam++) {
			int fd = listen_on(fam ? AF_INET6 : AF_INET, port);

			if (fd < 0)
				return 1;
			fds[nl] = (struct pollfd){.fd = fd, .events = POLLIN};
			lport[nl++] = port;
		}
	}
	printf("listening\n");
	fflush(stdout);
	nfds = nl;
	for (;;) {
		if (poll(fds, (nfds_t)nfds, -1) < 0)
			continue;
		for (i = 0; i < nfds; i++) {
			if (!fds[i].revents)
				continue;
			if (i < nl) {
				int c = accept4(fds[i].fd, NULL, NULL, SOCK_NONBLOCK);

				if (c < 0)
					continue;
				report(c, lport[i]);
				if (nfds < MAX_FDS)
					fds[nfds++] = (struct pollfd){.fd = c, .events = POLLIN};
				else
					close(c);
				continue;
			}
			/* A client connection: drain (or echo); close on EOF or error. */
			char buf[65536];
			ssize_t n = read(fds[i].fd, buf, sizeof(buf));

			if (n > 0 && echo && echo_all(fds[i].fd, buf, (size_t)n))
				n = -1;
			if (n == 0 || (n < 0 && errno != EAGAIN)) {
				close(fds[i].fd);
				fds[i--] = fds[--nfds];
			}
		}
	}
}
