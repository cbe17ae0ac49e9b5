// SPDX-License-Identifier: Apache-2.0
/*
 * zmeshctl cert list: the workload certificates a ztunnel holds, read from its admin endpoint
 * (GET /certs on 127.0.0.1:15000, reachable only from inside the node namespace, which
 * --netns enters). One row per identity: serial, validity window, time to rotation, issuer and
 * state (valid, rotating, fetch-failed, expired, pending). Works with both identity sources:
 * the CA client (--ca-addr) and the dev CA (its cache). No key material ever crosses the
 * endpoint. -j prints the endpoint's array as it is.
 */
#include "zmeshctl.h"

#include "caclient/caclient.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define CERT_ADMIN_DEFAULT "127.0.0.1:15000"
#define CERT_BODY_MAX	   (4u << 20)

/* GET path from addr over HTTP/1.0; the body (malloc'd) on 200. */
static int cert_http_get(const char *addr, const char *path, char **body, char *err, size_t len)
{
	struct timeval tv = {5, 0};
	struct sockaddr_storage ss;
	char req[256], *buf = NULL, *p;
	size_t n = 0, cap = 0;
	socklen_t sl = sizeof(ss);
	ssize_t r;
	int fd, code;

	if (zm_caclient_addr_parse(addr, &ss, &sl)) {
		snprintf(err, len, "bad --admin address \"%s\" (want HOST:PORT)", addr);
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    connect(fd, (struct sockaddr *)&ss, sl)) {
		snprintf(err, len,
			 "cannot reach the ztunnel admin endpoint %s: %s (is --netns the "
			 "node namespace?)",
			 addr, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -ECONNREFUSED;
	}
	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n", path);
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
		goto io;
	for (;;) {
		if (cap - n < 4096) {
			cap = cap ? cap * 2 : 16384;
			if (cap > CERT_BODY_MAX || !(p = realloc(buf, cap + 1)))
				goto io;
			buf = p;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0)
			goto io;
		if (!r)
			break;
		n += (size_t)r;
	}
	close(fd);
	if (!buf)
		goto short_reply;
	buf[n] = '\0';
	p = strstr(buf, "\r\n\r\n");
	if (!p || sscanf(buf, "HTTP/%*s %d", &code) != 1)
		goto short_reply;
	if (code != 200) {
		snprintf(err, len, "%s%s answered HTTP %d", addr, path, code);
		free(buf);
		return -EPROTO;
	}
	memmove(buf, p + 4, n - (size_t)(p + 4 - buf) + 1);
	*body = buf;
	return 0;
io:
	snprintf(err, len, "talking to %s: %s", addr, errno ? strerror(errno) : "reply too big");
	close(fd);
	free(buf);
	return -EIO;
short_reply:
	snprintf(err, len, "%s%s: malformed HTTP reply", addr, path);
	free(buf);
	return -EPROTO;
}

/* "2024-05-01T10:00:00Z" from a JSON epoch field; "-" when absent. */
static const char *cert_time(json_object *row, const char *key, char *buf, size_t len)
{
	json_object *v;
	struct tm tm;
	time_t t;

	if (!json_object_object_get_ex(row, key, &v) || !json_object_is_type(v, json_type_int))
		return "-";
	t = (time_t)json_object_get_int64(v);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
	return buf;
}

static void cert_list_human(json_object *arr)
{
	size_t n = json_object_array_length(arr);
	char nb[32], na[32], rot[32];

	if (!n) {
		printf("no certificates\n");
		return;
	}
	printf("%-50s %-12s %-34s %-20s %-20s %-10s %s\n", "IDENTITY", "STATE", "SERIAL",
	       "NOT BEFORE", "NOT AFTER", "ROTATE IN", "ISSUER");
	for (size_t i = 0; i < n; i++) {
		json_object *row = json_object_array_get_idx(arr, i), *v;
		const char *err = cli_json_str(row, "error");

		if (json_object_object_get_ex(row, "rotate_in_s", &v))
			snprintf(rot, sizeof(rot), "%llds", (long long)json_object_get_int64(v));
		else
			snprintf(rot, sizeof(rot), "-");
		printf("%-50s %-12s %-34s %-20s %-20s %-10s %s\n",
		       cli_json_str(row, "identity") ?: "-", cli_json_str(row, "state") ?: "-",
		       cli_json_str(row, "serial") ?: "-",
		       cert_time(row, "not_before", nb, sizeof(nb)),
		       cert_time(row, "not_after", na, sizeof(na)), rot,
		       cli_json_str(row, "issuer") ?: "-");
		if (err)
			printf("  last error: %s\n", err);
	}
}

int cmd_cert_list(struct cli *c, int argc, char **argv)
{
	enum { O_ADMIN = CLI_OPT_CMD_FIRST };
	static const struct option own[] = {
	    {"admin", required_argument, NULL, O_ADMIN},
	    {NULL, 0, NULL, 0},
	};
	const char *admin = CERT_ADMIN_DEFAULT;
	char err[512], *body = NULL;
	json_object *arr;
	int opt, ret;

	while ((opt = cli_getopt(c, argc, argv, own)) != -1) {
		if (opt != O_ADMIN)
			return CLI_USAGE;
		admin = optarg;
	}
	if (optind < argc)
		return cli_usage_fail(c, "unexpected argument \"%s\"", argv[optind]);
	ret = cli_prepare(c);
	if (ret)
		return ret;
	if (cert_http_get(admin, "/certs", &body, err, sizeof(err)))
		return cli_fail(c, "cert list: %s", err);
	arr = json_tokener_parse(body);
	free(body);
	if (!arr || !json_object_is_type(arr, json_type_array)) {
		json_object_put(arr);
		return cli_fail(c, "cert list: %s/certs did not return a JSON array", admin);
	}
	return cli_emit(c, arr, cert_list_human);
}
