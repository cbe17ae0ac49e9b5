// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of lib/obs: the Prometheus registry (HELP/TYPE lines, label escaping, histogram
 * buckets, counters set from elsewhere, refused names and shapes, scrape hooks), the logger
 * (logfmt and JSON renderings with their escaping, scope levels set by spec, bad specs
 * changing nothing, the rate limiter), the request-head parser and query decoding the admin
 * responder relies on, and the responder itself on loopback: many idle clients do not delay
 * a readiness probe, slowloris and garbage get their 408/400, /logging reads and sets levels.
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "obs/admin.h"
#include "obs/http.h"
#include "obs/istio.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "rt/loop.h"
#include "tap.h"

static bool has(const char *hay, const char *needle)
{
	return hay && strstr(hay, needle);
}

static void test_registry(void)
{
	static const char *const labels[] = {"reporter", "path", NULL};
	static const double le[] = {1, 10, 100};
	struct obs_registry *reg = obs_registry_new();
	struct obs_family *c, *g, *h;
	struct obs_series *s;
	char esc[64];
	size_t len;
	char *out;

	c = obs_family_new(reg, OBS_COUNTER, "zm_test_total", "Things\\counted\nhere", labels, NULL,
			   0);
	ok(c != NULL, "counter family");
	s = obs_series_get(c, (const char *const[]){"source", "a\"b\\c\nd"});
	obs_counter_add(s, 3);
	obs_counter_add(obs_series_get(c, (const char *const[]){"source", "a\"b\\c\nd"}), 2);
	ok(obs_series_get(c, (const char *const[]){"source", "a\"b\\c\nd"}) == s,
	   "the same label values find the same series");
	g = obs_family_new(reg, OBS_GAUGE, "zm_test_gauge", "A gauge", NULL, NULL, 0);
	obs_gauge_set(obs_series_get(g, NULL), 2.5);
	h = obs_family_new(reg, OBS_HISTOGRAM, "zm_test_ms", "Durations", NULL, le, 3);
	s = obs_series_get(h, NULL);
	obs_hist_observe(s, 0.5);
	obs_hist_observe(s, 5);
	obs_hist_observe(s, 1000);
	out = obs_registry_render(reg, &len);
	ok(out && len == strlen(out), "render");
	ok(has(out,
	       "# HELP zm_test_total Things\\\\counted\\nhere\n# TYPE zm_test_total counter\n"),
	   "HELP text escapes backslash and newline, TYPE follows");
	ok(has(out, "zm_test_total{reporter=\"source\",path=\"a\\\"b\\\\c\\nd\"} 5\n"),
	   "label value escaped: quote, backslash, newline");
	ok(has(out, "# TYPE zm_test_gauge gauge\nzm_test_gauge 2.5\n"), "gauge without labels");
	ok(has(out, "zm_test_ms_bucket{le=\"1\"} 1\nzm_test_ms_bucket{le=\"10\"} 2\n"
		    "zm_test_ms_bucket{le=\"100\"} 2\nzm_test_ms_bucket{le=\"+Inf\"} 3\n"
		    "zm_test_ms_sum 1005.5\nzm_test_ms_count 3\n"),
	   "histogram: cumulative buckets, +Inf, sum and count");
	free(out);

	ok(!obs_family_new(reg, OBS_COUNTER, "0bad", "", NULL, NULL, 0) && errno == EINVAL,
	   "a name starting with a digit is refused");
	ok(!obs_family_new(reg, OBS_COUNTER, "zm_x", "", (const char *const[]){"a-b", NULL}, NULL,
			   0),
	   "a label name with '-' is refused");
	ok(!obs_family_new(reg, OBS_HISTOGRAM, "zm_h", "", (const char *const[]){"le", NULL}, le,
			   3),
	   "a histogram label named le is refused");
	ok(!obs_family_new(reg, OBS_HISTOGRAM, "zm_h2", "", NULL, (const double[]){10, 5}, 2),
	   "buckets that do not increase are refused");
	ok(obs_family_new(reg, OBS_COUNTER, "zm_test_total", "again", labels, NULL, 0) == c,
	   "registering the same shape again returns the family");
	ok(!obs_family_new(reg, OBS_GAUGE, "zm_test_total", "", labels, NULL, 0) && errno == EEXIST,
	   "the same name with another type is refused");
	is_int(obs_label_escape("a\"b", esc, 4), -ENOSPC, "escape reports a short buffer");
	is_int(obs_label_escape("a\"b", esc, sizeof(esc)), 4, "escape length");
	is_str(esc, "a\\\"b", "escaped text");
	obs_registry_free(reg);
}

static void test_group(void)
{
	static const char *const labels[] = {"a", "b", NULL};
	static const double le[] = {1, 2};
	struct obs_registry *reg = obs_registry_new();
	struct obs_family *f[2], *other;
	struct obs_series *const *s1, *const *s2;
	struct obs_group *g;
	size_t len;
	char *out;

	f[0] = obs_family_new(reg, OBS_COUNTER, "g_total", "c", labels, NULL, 0);
	f[1] = obs_family_new(reg, OBS_HISTOGRAM, "g_ms", "h", labels, le, 2);
	other = obs_family_new(reg, OBS_COUNTER, "g_other", "o",
			       (const char *const[]){"a", "c", NULL}, NULL, 0);
	ok(!obs_group_new((struct obs_family *[]){f[0], other}, 2) && errno == EINVAL,
	   "a group needs the same label names");
	g = obs_group_new(f, 2);
	ok(g != NULL, "a counter and a histogram with the same labels");
	s1 = obs_group_get(g, (const char *const[]){"x", "y\"z"});
	s2 = obs_group_get(g, (const char *const[]){"x", "y\"z"});
	ok(s1 && s1 == s2, "the same values find the same series, cached");
	ok(obs_group_get(g, (const char *const[]){"x\x1fy", ""}) !=
	       obs_group_get(g, (const char *const[]){"x", "y"}),
	   "values are not confused by the joining byte");
	obs_counter_add(s1[0], 2);
	obs_hist_observe(s1[1], 1.5);
	out = obs_registry_render(reg, &len);
	ok(has(out, "g_total{a=\"x\",b=\"y\\\"z\"} 2\n"), "the counter counted, escaped");
	ok(has(out, "g_ms_bucket{a=\"x\",b=\"y\\\"z\",le=\"2\"} 1\n"), "the histogram observed");
	free(out);
	obs_group_free(g);
	obs_registry_free(reg);
}

static int scrapes;

static void on_scrape(void *ud)
{
	obs_counter_set(ud, 1.25);
	scrapes++;
}

static void test_scrape_hook(void)
{
	struct obs_registry *reg = obs_registry_new();
	struct obs_family *f =
	    obs_family_new(reg, OBS_COUNTER, "process_cpu_seconds_total", "CPU", NULL, NULL, 0);
	size_t len;
	char *out;

	obs_registry_on_scrape(reg, on_scrape, obs_series_get(f, NULL));
	out = obs_registry_render(reg, &len);
	is_int(scrapes, 1, "scrape hook ran before rendering");
	ok(has(out, "process_cpu_seconds_total 1.25\n"), "a counter set from elsewhere");
	free(out);
	obs_registry_free(reg);
}

/* ---- logging ---- */

static void test_log_render(void)
{
	static const char *const scopes[] = {"access", "hbone", NULL};
	struct obs_rec r;
	char line[4096], err[256];
	char *levels;

	obs_log_init("testd", scopes);
	obs_rec_begin(&r, OBS_INFO, "access", "close");
	obs_rec_str(&r, "dir", "outbound");
	obs_rec_str(&r, "reason", "said \"no\"\nthen left");
	obs_rec_u64(&r, "bytes", 42);
	obs_rec_str(&r, "empty", "");
	ok(r.on, "info is on by default");
	obs_rec_render(&r, line, sizeof(line));
	ok(!strncmp(line, "time=", 5) && line[9] == '-' && strstr(line, "Z level=info "),
	   "logfmt: RFC 3339 UTC time, then the level (%s)", line);
	ok(has(line, " level=info scope=access msg=close dir=outbound "
		     "reason=\"said \\\"no\\\"\\nthen left\" bytes=42 empty=\"\""),
	   "logfmt: bare simple values, quoted and escaped others, numbers bare");
	ok(!obs_log_set_format("json"), "json format");
	obs_rec_render(&r, line, sizeof(line));
	ok(line[0] == '{' && has(line, "\"level\":\"info\",\"scope\":\"access\",\"msg\":\"close\","
				       "\"dir\":\"outbound\",\"reason\":\"said \\\"no\\\"\\nthen "
				       "left\",\"bytes\":42,\"empty\":\"\"}"),
	   "json: one object, strings escaped, numbers bare (%s)", line);
	ok(obs_log_set_format("yaml") == -EINVAL && obs_log_format() == OBS_FMT_JSON,
	   "an unknown format is refused and changes nothing");
	obs_log_set_format("logfmt");
	obs_rec_begin(&r, OBS_INFO, "access", "n");
	obs_rec_u64(&r, "z", 0);
	obs_rec_u64(&r, "max", UINT64_MAX);
	obs_rec_i64(&r, "neg", -7);
	obs_rec_i64(&r, "min", INT64_MIN);
	obs_rec_i64(&r, "pos", 1234567890123);
	obs_rec_render(&r, line, sizeof(line));
	ok(has(line, " z=0 max=18446744073709551615 neg=-7 min=-9223372036854775808 "
		     "pos=1234567890123"),
	   "numbers: zero, the extremes of both types, negatives (%s)", line);
	ok(strlen(line) > 32 && line[24] == '.' && line[31] == 'Z' && line[32] == ' ',
	   "the time has six digits of microseconds, then Z (%.40s)", line);

	obs_rec_begin(&r, OBS_DEBUG, "access", "x");
	ok(!r.on, "debug is off at info");
	ok(!obs_log_set_levels("access:debug", err, sizeof(err)), "access:debug");
	ok(obs_log_on(OBS_DEBUG, "access") && !obs_log_on(OBS_DEBUG, "hbone"),
	   "only the access scope went to debug");
	is_int(obs_log_set_levels("hbone:debug,nosuch:info", err, sizeof(err)), -EINVAL,
	       "unknown scope refused");
	ok(has(err, "nosuch"), "the error names the scope (%s)", err);
	ok(!obs_log_on(OBS_DEBUG, "hbone"),
	   "a refused spec changes nothing, not even its valid part");
	is_int(obs_log_set_levels("loud", err, sizeof(err)), -EINVAL, "unknown level refused");
	ok(has(err, "loud"), "the error names the level (%s)", err);
	ok(!obs_log_set_levels("warn,access:trace", err, sizeof(err)), "mixed spec");
	ok(!obs_log_on(OBS_INFO, "hbone") && obs_log_on(OBS_TRACE, "access") &&
	       obs_log_on(OBS_WARN, "testd"),
	   "everything warn, access trace");
	levels = obs_log_levels_text();
	ok(has(levels, "testd: warn\naccess: trace\nhbone: warn\n"), "levels listed (%s)", levels);
	free(levels);
	obs_log_set_levels("info", err, sizeof(err));
	obs_rec_begin(&r, OBS_INFO, "unregistered", "m");
	obs_rec_render(&r, line, sizeof(line));
	ok(has(line, "scope=unregistered msg=m"), "an unregistered scope still prints its name");
}

/* The rendered record of one field, from obs_rec_join or obs_rec_strf ("%s" per part). */
static void join_line(bool join, const char *const *parts, size_t n, char *line, size_t len)
{
	struct obs_rec r;

	obs_rec_begin(&r, OBS_INFO, "access", "j");
	if (join)
		obs_rec_join(&r, "v", parts, n);
	else if (n == 0)
		obs_rec_strf(&r, "v", "%s", "");
	else if (n == 1)
		obs_rec_strf(&r, "v", "%s", parts[0]);
	else
		obs_rec_strf(&r, "v", "%s%s%s%s", parts[0], parts[1], parts[2], parts[3]);
	obs_rec_u64(&r, "after", 1);
	obs_rec_render(&r, line, len);
	/* The timestamps may differ: compare from the level on. */
	memmove(line, strstr(line, "level"), strlen(strstr(line, "level")) + 1);
}

static void test_log_join(void)
{
	static char big[1100], edge[1023];
	const char *cases[][4] = {
	    {"10.0.0.1:80", "(", "web-0", ")"},
	    {"-", "(", "-", ")"},
	    {"", "", "", ""},
	    {"with space", "(", "q\"x", ")"},
	    {big, "(", "w", ")"},
	    {edge, "(", "w", ")"},
	    {"a", "(", big, ")"},
	};
	char want[8192], got[8192];
	size_t i;

	memset(big, 'b', sizeof(big) - 1);
	memset(edge, 'e', sizeof(edge) - 1);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		join_line(false, cases[i], 4, want, sizeof(want));
		join_line(true, cases[i], 4, got, sizeof(got));
		ok(!strcmp(want, got),
		   "obs_rec_join gives what obs_rec_strf gives, case %zu (%.60s)", i, got);
	}
	join_line(false, cases[0], 0, want, sizeof(want));
	join_line(true, cases[0], 0, got, sizeof(got));
	ok(!strcmp(want, got) && has(got, "v=\"\" after=1"), "no parts: an empty value (%s)", got);
	join_line(true, (const char *const[]){"x", NULL, "y"}, 3, got, sizeof(got));
	ok(has(got, " v=xy after=1"), "a NULL part is empty (%s)", got);
	join_line(false, (const char *const[]){big}, 1, want, sizeof(want));
	ok(has(want, "v=bbb") && strlen(strstr(want, "v=")) == 2 + 1023 + 8,
	   "both cut at 1,023 bytes");
	obs_log_set_format("json");
	join_line(false, cases[3], 4, want, sizeof(want));
	join_line(true, cases[3], 4, got, sizeof(got));
	ok(!strcmp(want, got), "json: the same (%s)", got);
	obs_log_set_format("logfmt");
}

/* One write(2) of the logger, if there is one now (a non-blocking SOCK_SEQPACKET keeps them apart).
 */
static size_t drain(int fd, char *buf, size_t len)
{
	ssize_t n = read(fd, buf, len - 1);

	buf[n > 0 ? n : 0] = '\0';
	return n > 0 ? (size_t)n : 0;
}

static void test_log_batch(void)
{
	int p[2], saved = dup(STDERR_FILENO), i, lines = 0, writes = 0, whole = 1;
	static char buf[64 * 1024];
	char err[128];
	size_t n;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, p) || saved < 0 ||
	    dup2(p[1], STDERR_FILENO) < 0)
		tap_bail("socketpair/dup2: %s", strerror(errno));
	obs_log_set_levels("info", err, sizeof(err));
	obs_log_set_format("logfmt");

	obs_log(OBS_INFO, "access", "unbatched");
	drain(p[0], buf, sizeof(buf));
	ok(has(buf, "msg=unbatched"), "without batching a line is written at once");
	obs_log_batch(true);
	obs_log(OBS_INFO, "access", "first");
	obs_log(OBS_DEBUG, "access", "below the level");
	obs_log(OBS_INFO, "access", "second");
	ok(drain(p[0], buf, sizeof(buf)) == 0, "batched info lines wait for the flush");
	obs_log(OBS_WARN, "access", "third");
	n = drain(p[0], buf, sizeof(buf));
	n += drain(p[0], buf + n, sizeof(buf) - n);
	ok(has(buf, "msg=first") && has(buf, "msg=third") &&
	       strstr(buf, "msg=first") < strstr(buf, "msg=second") &&
	       strstr(buf, "msg=second") < strstr(buf, "msg=third") && !has(buf, "below the level"),
	   "a warning goes out at once, after the lines batched before it, in order");
	obs_log(OBS_INFO, "access", "fourth");
	obs_log_flush();
	ok(has(buf + 0 * drain(p[0], buf, sizeof(buf)), "msg=fourth"),
	   "obs_log_flush writes the batch");

	/* Many lines: every write(2) is whole lines of at most PIPE_BUF bytes. */
	for (i = 0; i < 100; i++)
		obs_log(OBS_INFO, "access", "line %d of a batch that outgrows one pipe write", i);
	obs_log_batch(false);
	while ((n = drain(p[0], buf, sizeof(buf))) > 0) {
		writes++;
		whole &= n <= PIPE_BUF && buf[n - 1] == '\n';
		for (size_t k = 0; k < n; k++)
			lines += buf[k] == '\n';
	}
	ok(lines == 100 && whole && writes > 1 && writes < 100,
	   "100 batched lines: all there, in %d writes of whole lines under PIPE_BUF", writes);

	dup2(saved, STDERR_FILENO);
	close(saved);
	close(p[0]);
	close(p[1]);
}

static void test_ratelimit(void)
{
	struct obs_ratelimit rl = {0};
	uint64_t sup = 99;
	int i, n = 0;

	for (i = 0; i < 1000; i++)
		n += obs_ratelimit_ok(&rl, 5000 + (uint64_t)i, 1000, &sup);
	is_int(n, 1, "one line in a second of repeats");
	ok(obs_ratelimit_ok(&rl, 6000, 1000, &sup), "the next second may log again");
	is_int(sup, 999, "and says how many were suppressed");
}

/* ---- HTTP heads ---- */

static int parse(const char *s, struct obs_http_head *h, char *why)
{
	return obs_http_head_parse(s, strlen(s), h, why, 128);
}

static void test_http_parse(void)
{
	static const struct {
		const char *req;
		int status;
		const char *name;
	} bad[] = {
	    {"\r\n", 400, "empty request line"},
	    {"GET /\r\n\r\n", 400, "no version"},
	    {"GET\r\n\r\n", 400, "no target"},
	    {"get / HTTP/1.1\r\n\r\n", 400, "lower-case method"},
	    {"GET x HTTP/1.1\r\n\r\n", 400, "target not a path"},
	    {"GET http://a/ HTTP/1.1\r\n\r\n", 400, "absolute form"},
	    {"GET / HTTP/2.0\r\n\r\n", 505, "HTTP/2 version"},
	    {"GET / FOO/1.1\r\n\r\n", 400, "not HTTP"},
	    {"GET / HTTP/1.1\n\n", 400, "bare LF"},
	    {"GET / HTTP/1.1\r\nHost x\r\n\r\n", 400, "header without colon"},
	    {"GET / HTTP/1.1\r\n folded\r\n\r\n", 400, "folded header"},
	    {"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400, "space in a header name"},
	    {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501, "chunked body"},
	    {"POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400, "bad length"},
	    {"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400,
	     "conflicting lengths"},
	    {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400, "a TLS ClientHello"},
	};
	struct obs_http_head h;
	char why[128], val[64];
	size_t i;

	is_int(parse("GET /logging?level=access%3Adebug&x HTTP/1.1\r\nHost: a\r\n"
		     "Content-Length: 0\r\n\r\n",
		     &h, why),
	       0, "a good request");
	ok(!strcmp(h.method, "GET") && !strcmp(h.path, "/logging") &&
	       !strcmp(h.query, "level=access%3Adebug&x") && h.minor == 1,
	   "method, path, query, version");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int st = parse(bad[i].req, &h, why);

		ok(st == bad[i].status, "refused: %s -> %d (%s)", bad[i].name, st, why);
	}
	is_int(obs_query_get("level=access%3Adebug&x", "level", val, sizeof(val)), 0, "query");
	is_str(val, "access:debug", "percent-decoded");
	is_int(obs_query_get("a=1", "level", val, sizeof(val)), -ENOENT, "absent key");
	is_int(obs_query_get("level=%zz", "level", val, sizeof(val)), -EINVAL, "bad escape");
	is_int(obs_query_get("level=%00", "level", val, sizeof(val)), -EINVAL, "%%00 refused");
	is_int(obs_query_get("level=%4", "level", val, sizeof(val)), -EINVAL, "truncated escape");
}

/* ---- the responder on loopback ---- */

static int dial(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	return fd;
}

static int ask_halfclose; /* shut our side down after the request, as `printf | nc -N` does */

/* Send req, read the whole answer (until close, 3 s at most). */
static char *ask(int port, const char *req, uint64_t *ms)
{
	static char buf[65536];
	uint64_t t0 = rt_now_ms();
	size_t off = 0;
	int fd = dial(port);
	ssize_t n;

	buf[0] = '\0';
	if (fd < 0)
		return buf;
	if (write(fd, req, strlen(req)) < 0) {
		close(fd);
		return buf;
	}
	if (ask_halfclose)
		shutdown(fd, SHUT_WR);
	for (;;) {
		struct pollfd p = {fd, POLLIN, 0};

		if (poll(&p, 1, 3000) <= 0)
			break;
		n = read(fd, buf + off, sizeof(buf) - 1 - off);
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	buf[off] = '\0';
	close(fd);
	if (ms)
		*ms = rt_now_ms() - t0;
	return buf;
}

static void test_responder(void)
{
	struct obs_admin *a = obs_admin_new();
	atomic_bool ready = true;
	int idle[100], i, rp, mp, ap, slow;
	uint64_t ms = 0;
	char *r;

	ok(a && !obs_admin_listen(a, OBS_PORT_READY, 0, true) &&
	       !obs_admin_listen(a, OBS_PORT_METRICS, 0, true) &&
	       !obs_admin_listen(a, OBS_PORT_ADMIN, 0, true),
	   "three listeners on loopback");
	obs_admin_add_ready(a, OBS_PORT_READY, &ready);
	obs_admin_add_metrics(a, OBS_PORT_METRICS);
	obs_admin_add_logging(a, OBS_PORT_ADMIN);
	ok(!obs_admin_start(a), "responder thread");
	rp = obs_admin_bound_port(a, OBS_PORT_READY);
	mp = obs_admin_bound_port(a, OBS_PORT_METRICS);
	ap = obs_admin_bound_port(a, OBS_PORT_ADMIN);
	for (i = 0; i < 100; i++)
		idle[i] = dial(mp);
	r = ask(rp, "GET /healthz/ready HTTP/1.1\r\nHost: x\r\n\r\n", &ms);
	ok(has(r, "HTTP/1.1 200 OK\r\n") && has(r, "\r\n\r\nready\n"),
	   "readiness answers while 100 idle sockets sit on the metrics port (%llu ms)",
	   (unsigned long long)ms);
	ok(ms < 1000, "well within kubelet's 1 s probe timeout (%llu ms)", (unsigned long long)ms);
	r = ask(mp, "GET /metrics HTTP/1.1\r\n\r\n", NULL);
	ok(has(r, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
	   "metrics content type is Prometheus' text format");
	r = ask(mp, "GET /healthz/ready HTTP/1.1\r\n\r\n", NULL);
	ok(has(r, "404 Not Found"), "readiness is not served on the metrics port");
	ask_halfclose = 1;
	r = ask(rp, "GET /healthz/ready HTTP/1.0\r\n\r\n", NULL);
	ok(has(r, "200 OK") && has(r, "ready\n"),
	   "a client that half-closes after asking is answered");
	r = ask(rp, "GET /healthz/rea", NULL);
	ok(!r[0], "one that half-closes mid-request is closed without an answer");
	ask_halfclose = 0;
	r = ask(rp, "DELETE /healthz/ready HTTP/1.1\r\n\r\n", NULL);
	ok(has(r, "405 Method Not Allowed") && has(r, "Allow: GET\r\n"), "wrong method: 405");
	r = ask(rp, "\x16\x03\x01 garbage\r\n\r\n", NULL);
	ok(has(r, "400 Bad Request"), "garbage: 400");
	slow = dial(rp);
	ok(write(slow, "GET /healthz/re", 15) == 15, "a slowloris client starts a request");
	r = ask(ap, "POST /logging?level=nosuch:debug HTTP/1.1\r\n\r\n", NULL);
	ok(has(r, "400 Bad Request") && has(r, "unknown scope \"nosuch\""),
	   "/logging: unknown scope is a 400 naming it");
	r = ask(ap, "POST /logging?level=verbose HTTP/1.1\r\n\r\n", NULL);
	ok(has(r, "400 Bad Request") && has(r, "unknown level \"verbose\""),
	   "/logging: unknown level is a 400 naming it");
	r = ask(ap, "GET /logging?level=debug HTTP/1.1\r\n\r\n", NULL);
	ok(has(r, "405"), "/logging: changing needs POST");
	r = ask(ap, "POST /logging?level=access:debug HTTP/1.1\r\n\r\n", NULL);
	ok(has(r, "200 OK") && has(r, "access: debug"), "/logging: access:debug set and listed");
	ok(obs_log_on(OBS_DEBUG, "access"), "... and in force");
	r = ask(ap, "POST /logging?level=info HTTP/1.1\r\n\r\n", NULL);
	ok(has(r, "access: info"), "/logging: back to info everywhere");
	{
		char buf[512] = "";
		struct pollfd p = {slow, POLLIN, 0};
		ssize_t n;

		poll(&p, 1, OBS_ADMIN_READ_MS + 2000);
		n = read(slow, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = '\0';
		ok(has(buf, "408 Request Timeout"),
		   "the slowloris client got a 408 at its deadline");
		close(slow);
	}
	r = ask(rp, "GET /healthz/ready HTTP/1.1\r\n\r\n", NULL);
	ok(has(r, "200 OK"), "still serving afterwards");
	for (i = 0; i < 100; i++)
		close(idle[i]);
	obs_admin_free(a);
}

/* Istio's derivation of canonical service and revision, app and version, cluster. */
static const char istio_cfg[] =
    "workloads:\n"
    "- {uid: a, name: a-pod, namespace: ns, workloadIps: [198.18.1.1], canonicalName: cn,"
    " canonicalRevision: cr, labels: {app: z, service.istio.io/canonical-name: x}}\n"
    "- {uid: b, name: b-pod, namespace: ns, workloadIps: [198.18.1.2], clusterId: c1,"
    " labels: {service.istio.io/canonical-name: x, app.kubernetes.io/name: y, app: z,"
    " service.istio.io/canonical-revision: r1, version: v9}}\n"
    "- {uid: c, name: c-pod, namespace: ns, workloadIps: [198.18.1.3],"
    " labels: {app.kubernetes.io/name: y, app: z, app.kubernetes.io/version: av, version: v2}}\n"
    "- {uid: d, name: d-pod, namespace: ns, workloadIps: [198.18.1.4], labels: {app: z}}\n"
    "- {uid: e, name: e-pod, namespace: ns, workloadIps: [198.18.1.5], workloadName: deploy}\n";

static void test_istio_derivation(void)
{
	static const struct {
		const char *cs, *cr, *app, *ver, *cluster;
	} want[] = {
	    {"cn", "cr", "z", NULL, "Kubernetes"}, /* explicit fields win over labels */
	    {"x", "r1", "z", "v9", "c1"},	   /* service.istio.io/canonical-* labels first */
	    {"y", "av", "z", "v2", "Kubernetes"},  /* then app.kubernetes.io/name and /version */
	    {"z", "latest", "z", NULL, "Kubernetes"},	    /* app; no version: latest */
	    {"deploy", "latest", NULL, NULL, "Kubernetes"}, /* nothing: the workload name */
	};
	struct obs_istio_traffic t = {.reporter = "source"};
	struct zm_config *cfg;
	char err[1024];
	const char *v[OBS_ISTIO_HTTP_N];
	size_t i;

	if (zm_config_load_buf("istio.yaml", istio_cfg, sizeof(istio_cfg) - 1, &cfg, err,
			       sizeof(err))) {
		ok(0, "config: %s", err);
		return;
	}
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct obs_istio_peer p;

		obs_istio_peer_fill(&p, &cfg->workloads[i], false);
		ok(!strcmp(p.canonical_service, want[i].cs) &&
		       !strcmp(p.canonical_revision, want[i].cr) &&
		       (p.app && want[i].app ? !strcmp(p.app, want[i].app)
					     : p.app == want[i].app) &&
		       (p.version && want[i].ver ? !strcmp(p.version, want[i].ver)
						 : p.version == want[i].ver) &&
		       !strcmp(p.cluster, want[i].cluster),
		   "workload %zu: canonical %s/%s, app %s, version %s, cluster %s", i,
		   p.canonical_service, p.canonical_revision, p.app ?: "(none)",
		   p.version ?: "(none)", p.cluster);
	}
	obs_istio_peer_fill(&t.src, &cfg->workloads[2], true);
	is_str(t.src.app, "y", "the ztunnel's way: app is the canonical service");
	is_str(t.src.version, "av", "... and version the canonical revision");
	is_str(t.src.principal, "spiffe://cluster.local/ns/ns/sa/default",
	       "principal from the config");
	obs_istio_values(&t, true, v);
	is_str(v[0], "source", "reporter first");
	is_str(v[10], "unknown", "no destination: unknown");
	is_str(v[OBS_ISTIO_HTTP_N - 4], "", "grpc_response_status empty when not gRPC");
	is_str(v[OBS_ISTIO_HTTP_N - 1], "-", "response_flags \"-\" when none");
	zm_config_free(cfg);
}

int main(void)
{
	test_registry();
	test_group();
	test_istio_derivation();
	test_scrape_hook();
	test_log_render();
	test_log_join();
	test_log_batch();
	test_ratelimit();
	test_http_parse();
	test_responder();
	return tap_done();
}
