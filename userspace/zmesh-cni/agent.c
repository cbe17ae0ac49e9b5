// SPDX-License-Identifier: Apache-2.0
/*
 * The plugin's side of ztunnel's CNI socket (userspace/ztunnel/cni_server.c): one JSON line
 * out, one JSON line back. A socket that is missing or refuses is "ztunnel not up yet" and is
 * retried every 200 ms until the caller's wait runs out; a reply has 30 s to arrive (an ADD
 * rebuilds the model and enrolls), after which the runtime gets an error rather than a hang.
 */
#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/errf.h"
#include "cni.h"

#define CNI_REPLY_MAX	   (256 * 1024)
#define CNI_REPLY_TIMEOUT  30
#define CNI_RETRY_EVERY_MS 200

static double cni_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cni_connect(const char *path, int wait_s, char *err, size_t len)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	double deadline = cni_now() + wait_s;
	int fd, e;

	if (strlen(path) >= sizeof(sun.sun_path))
		return zm_errf(err, len, -ENAMETOOLONG, "socket path %s is too long", path);
	memcpy(sun.sun_path, path, strlen(path) + 1);
	for (;;) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return zm_errf(err, len, -errno, "socket: %s", strerror(errno));
		if (!connect(fd, (struct sockaddr *)&sun, sizeof(sun)))
			return fd;
		e = errno;
		close(fd);
		if (e != ENOENT && e != ECONNREFUSED && e != EAGAIN)
			return zm_errf(err, len, -e, "connecting to %s: %s", path, strerror(e));
		if (cni_now() >= deadline)
			return zm_errf(err, len, -EAGAIN,
				       "no ztunnel answers on %s (%s) after %d s: the pod waits "
				       "until ztunnel runs on this node",
				       path, strerror(e), wait_s);
		poll(NULL, 0, CNI_RETRY_EVERY_MS);
	}
}

int cni_agent_call(const char *path, int wait_s, json_object *req, json_object **reply, char *err,
		   size_t len)
{
	struct timeval tv = {CNI_REPLY_TIMEOUT, 0};
	const char *text;
	size_t n = 0;
	ssize_t r;
	char *buf;
	int fd;

	*reply = NULL;
	fd = cni_connect(path, wait_s, err, len);
	if (fd < 0)
		return fd;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	text = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN |
						       JSON_C_TO_STRING_NOSLASHESCAPE);
	buf = malloc(CNI_REPLY_MAX + 1);
	if (!buf) {
		close(fd);
		return zm_errf(err, len, -ENOMEM, "out of memory");
	}
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text) || write(fd, "\n", 1) != 1) {
		r = -errno;
		goto fail;
	}
	while (n < CNI_REPLY_MAX && !memchr(buf, '\n', n)) {
		r = read(fd, buf + n, CNI_REPLY_MAX - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	*reply = json_tokener_parse(buf);
	if (!*reply || !json_object_is_type(*reply, json_type_object)) {
		json_object_put(*reply);
		*reply = NULL;
		r = n ? -EPROTO : -ETIMEDOUT;
		goto fail;
	}
	free(buf);
	close(fd);
	return 0;
fail:
	zm_errf(err, len, (int)r, "exchange with ztunnel on %s failed: %s", path,
		r == -EPROTO ? "reply is not JSON" : strerror((int)-r));
	free(buf);
	close(fd);
	return (int)r;
}
