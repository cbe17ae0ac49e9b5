// SPDX-License-Identifier: Apache-2.0
/*
 * The logger (log.h): the scope table with its atomic levels, the output format, records and
 * their two renderings, and the rate limiter. A record's fields are kept as offsets into its
 * own buffer and only rendered (escaped for logfmt or JSON) when it is emitted, so a record
 * below its scope's level costs one atomic load.
 */
#include "obs/log.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/cliopt.h"
#include "common/errf.h"

#define OBS_SCOPE_NAME 32
#define OBS_LINE_MAX   (OBS_REC_BYTES * 2 + 256)

struct obs_scope {
	char name[OBS_SCOPE_NAME];
	atomic_int level;
};

static struct obs_scope obs_scopes[OBS_SCOPES_MAX] = {{"zmesh", OBS_INFO}};
static atomic_int obs_n_scopes = 1;
static atomic_int obs_fmt = OBS_FMT_LOGFMT;

static const char *const obs_level_names[] = {
    [OBS_OFF] = "off",	 [OBS_ERROR] = "error", [OBS_WARN] = "warn",
    [OBS_INFO] = "info", [OBS_DEBUG] = "debug", [OBS_TRACE] = "trace",
};

static int obs_scope_find(const char *name)
{
	int i, n = atomic_load(&obs_n_scopes);

	for (i = 0; name && i < n; i++)
		if (!strcmp(obs_scopes[i].name, name))
			return i;
	return -1;
}

static void obs_scope_add(const char *name)
{
	int n = atomic_load(&obs_n_scopes);

	if (!name || !*name || obs_scope_find(name) >= 0 || n >= OBS_SCOPES_MAX)
		return;
	snprintf(obs_scopes[n].name, sizeof(obs_scopes[n].name), "%s", name);
	atomic_store(&obs_scopes[n].level, OBS_INFO);
	atomic_store(&obs_n_scopes, n + 1);
}

void obs_log_init(const char *proc, const char *const *scopes)
{
	static bool flush_at_exit;

	/* exit() from inside a round of events still writes the lines batched before it. */
	if (!flush_at_exit)
		flush_at_exit = !atexit(obs_log_flush);
	if (proc && *proc && atomic_load(&obs_n_scopes) == 1 &&
	    !strcmp(obs_scopes[0].name, "zmesh"))
		snprintf(obs_scopes[0].name, sizeof(obs_scopes[0].name), "%s", proc);
	for (; scopes && *scopes; scopes++)
		obs_scope_add(*scopes);
}

int obs_log_set_format(const char *name)
{
	if (!name)
		return -EINVAL;
	if (!strcmp(name, "logfmt"))
		atomic_store(&obs_fmt, OBS_FMT_LOGFMT);
	else if (!strcmp(name, "json"))
		atomic_store(&obs_fmt, OBS_FMT_JSON);
	else
		return -EINVAL;
	return 0;
}

int obs_log_opt_format(const char *prog, const char *arg)
{
	if (!obs_log_set_format(arg))
		return 0;
	fprintf(stderr, "%s: --log-format: \"%s\" is not logfmt or json\n", prog, arg);
	return -EINVAL;
}

int obs_log_opt_level(const char *prog, const char *arg)
{
	char err[256];

	if (!obs_log_set_levels(arg, err, sizeof(err)))
		return 0;
	fprintf(stderr, "%s: --log-level: %s\n", prog, err);
	return -EINVAL;
}

int obs_log_getopt(const char *prog, int c, const char *arg, char *const *argv)
{
	if (c == OBS_OPT_LOG_FORMAT)
		return obs_log_opt_format(prog, arg);
	if (c == OBS_OPT_LOG_LEVEL)
		return obs_log_opt_level(prog, arg);
	zm_opt_bad(prog, c, argv);
	return -EINVAL;
}

enum obs_format obs_log_format(void)
{
	return (enum obs_format)atomic_load(&obs_fmt);
}

int obs_level_parse(const char *name, enum obs_level *out)
{
	size_t i;

	for (i = 0; name && i < sizeof(obs_level_names) / sizeof(obs_level_names[0]); i++) {
		if (!strcmp(name, obs_level_names[i])) {
			*out = (enum obs_level)i;
			return 0;
		}
	}
	if (name && !strcmp(name, "warning")) {
		*out = OBS_WARN;
		return 0;
	}
	return -EINVAL;
}

const char *obs_level_name(enum obs_level l)
{
	return (unsigned int)l <= OBS_TRACE ? obs_level_names[l] : "?";
}

/* One item of a level spec: "LEVEL" (scope -1: all) or "SCOPE:LEVEL". */
static int obs_spec_item(const char *item, int *scope, enum obs_level *lvl, char *err, size_t len)
{
	const char *colon = strchr(item, ':');
	char name[OBS_SCOPE_NAME];

	*scope = -1;
	if (colon) {
		if ((size_t)(colon - item) >= sizeof(name))
			return zm_errf(err, len, -EINVAL, "unknown scope \"%.40s\"", item);
		memcpy(name, item, (size_t)(colon - item));
		name[colon - item] = '\0';
		*scope = obs_scope_find(name);
		if (*scope < 0)
			return zm_errf(err, len, -EINVAL, "unknown scope \"%s\"", name);
		item = colon + 1;
	}
	if (obs_level_parse(item, lvl))
		return zm_errf(err, len, -EINVAL,
			       "unknown level \"%.40s\" (want error, warn, info, debug, trace "
			       "or off)",
			       item);
	return 0;
}

int obs_log_set_levels(const char *spec, char *err, size_t len)
{
	enum obs_level lvls[OBS_SCOPES_MAX * 2];
	int scopes[OBS_SCOPES_MAX * 2], n = 0, i, j, r;
	char copy[512], *save = NULL, *tok;

	if (!spec || !*spec)
		return zm_errf(err, len, -EINVAL, "empty level");
	if (strlen(spec) >= sizeof(copy))
		return zm_errf(err, len, -EINVAL, "level spec longer than %zu bytes",
			       sizeof(copy) - 1);
	snprintf(copy, sizeof(copy), "%s", spec);
	/* Parse everything first: a bad item anywhere changes nothing. */
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (n == (int)(sizeof(scopes) / sizeof(scopes[0])))
			return zm_errf(err, len, -EINVAL, "too many items in the level spec");
		r = obs_spec_item(tok, &scopes[n], &lvls[n], err, len);
		if (r)
			return r;
		n++;
	}
	if (!n)
		return zm_errf(err, len, -EINVAL, "empty level");
	for (i = 0; i < n; i++) {
		if (scopes[i] >= 0) {
			atomic_store(&obs_scopes[scopes[i]].level, (int)lvls[i]);
			continue;
		}
		for (j = 0; j < atomic_load(&obs_n_scopes); j++)
			atomic_store(&obs_scopes[j].level, (int)lvls[i]);
	}
	return 0;
}

char *obs_log_levels_text(void)
{
	char *buf = NULL;
	size_t blen = 0;
	FILE *f = open_memstream(&buf, &blen);
	int i;

	if (!f)
		return NULL;
	for (i = 0; i < atomic_load(&obs_n_scopes); i++)
		fprintf(f, "%s: %s\n", obs_scopes[i].name,
			obs_level_name((enum obs_level)atomic_load(&obs_scopes[i].level)));
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}

static int obs_scope_of(const char *scope)
{
	int i = obs_scope_find(scope);

	return i < 0 ? 0 : i;
}

bool obs_log_on(enum obs_level lvl, const char *scope)
{
	return lvl != OBS_OFF && (int)lvl <= atomic_load(&obs_scopes[obs_scope_of(scope)].level);
}

/* ---- records ---- */

void obs_rec_begin(struct obs_rec *r, enum obs_level lvl, const char *scope, const char *msg)
{
	r->scope = obs_scope_of(scope);
	r->on = lvl != OBS_OFF && (int)lvl <= atomic_load(&obs_scopes[r->scope].level);
	r->truncated = false;
	r->lvl = lvl;
	r->msg = msg ? msg : "";
	r->used = 0;
	r->n = 0;
	/* A scope nobody registered still prints its own name (levels are the default's). */
	if (scope && strcmp(obs_scopes[r->scope].name, scope) && r->on) {
		int n = snprintf(r->buf, sizeof(r->buf), "%s", scope);

		if (n > 0 && (size_t)n < sizeof(r->buf)) {
			r->scope = -1;
			r->used = (size_t)n + 1;
		}
	}
}

/* Copy s (NUL included) into the record; the offset, or -1 when it does not fit. */
static int obs_rec_put(struct obs_rec *r, const char *s, size_t n)
{
	size_t at = r->used;

	if (r->used + n + 1 > sizeof(r->buf) || r->used + n + 1 > UINT16_MAX) {
		r->truncated = true;
		return -1;
	}
	memcpy(r->buf + at, s, n);
	r->buf[at + n] = '\0';
	r->used += n + 1;
	return (int)at;
}

static void obs_rec_add(struct obs_rec *r, const char *key, const char *val, size_t vlen, bool raw)
{
	size_t save = r->used;
	int k, v;

	if (!r->on)
		return;
	if (r->n == OBS_REC_FIELDS) {
		r->truncated = true;
		return;
	}
	k = obs_rec_put(r, key, strlen(key));
	v = k < 0 ? -1 : obs_rec_put(r, val, vlen);
	if (v < 0) {
		r->used = save;
		return;
	}
	r->f[r->n].key = (uint16_t)k;
	r->f[r->n].val = (uint16_t)v;
	r->f[r->n].raw = raw;
	r->n++;
}

void obs_rec_msgf(struct obs_rec *r, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	int off;

	if (!r->on)
		return;
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	off = obs_rec_put(r, tmp, strlen(tmp));
	r->msg = off < 0 ? "(message too long)" : r->buf + off;
}

void obs_rec_str(struct obs_rec *r, const char *key, const char *val)
{
	val = val ? val : "-";
	obs_rec_add(r, key, val, strlen(val), false);
}

void obs_rec_strf(struct obs_rec *r, const char *key, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	int n;

	if (!r->on)
		return;
	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	obs_rec_add(r, key, tmp, strlen(tmp), false);
}

void obs_rec_join(struct obs_rec *r, const char *key, const char *const *parts, size_t n)
{
	char tmp[1024]; /* obs_rec_strf's */
	size_t len = 0, m, i;

	if (!r->on)
		return;
	for (i = 0; i < n && len < sizeof(tmp) - 1; i++) {
		m = parts[i] ? strlen(parts[i]) : 0;
		if (m > sizeof(tmp) - 1 - len)
			m = sizeof(tmp) - 1 - len;
		memcpy(tmp + len, parts[i] ? parts[i] : "", m);
		len += m;
	}
	obs_rec_add(r, key, tmp, len, false);
}

/*
 * Decimal digits of v at the end of buf[24] (with a '-' first when neg); returns where they
 * start. By hand: a waypoint's access line has a dozen numbers, and vsnprintf per number was
 * a visible share of its CPU per request.
 */
static char *obs_dec(char buf[24], uint64_t v, bool neg)
{
	char *p = buf + 23;

	*p = '\0';
	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	if (neg)
		*--p = '-';
	return p;
}

void obs_rec_u64(struct obs_rec *r, const char *key, uint64_t v)
{
	char tmp[24], *p = obs_dec(tmp, v, false);

	obs_rec_add(r, key, p, (size_t)(tmp + 23 - p), true);
}

void obs_rec_i64(struct obs_rec *r, const char *key, int64_t v)
{
	char tmp[24], *p = obs_dec(tmp, v < 0 ? -(uint64_t)v : (uint64_t)v, v < 0);

	obs_rec_add(r, key, p, (size_t)(tmp + 23 - p), true);
}

void obs_rec_bool(struct obs_rec *r, const char *key, bool v)
{
	obs_rec_add(r, key, v ? "true" : "false", v ? 4 : 5, true);
}

/* ---- rendering ---- */

struct obs_out {
	char *p;
	size_t len, off;
};

static void obs_putn(struct obs_out *o, const char *s, size_t n)
{
	if (o->off + n >= o->len)
		n = o->len - o->off - 1;
	memcpy(o->p + o->off, s, n);
	o->off += n;
}

static void obs_putc(struct obs_out *o, char c)
{
	obs_putn(o, &c, 1);
}

static void obs_puts(struct obs_out *o, const char *s)
{
	obs_putn(o, s, strlen(s));
}

static bool obs_plain(unsigned char c)
{
	return c >= 0x20 && c != 0x7f && c != '"' && c != '\\';
}

/*
 * Escape s for a quoted logfmt or JSON string (the same rules: both read as JSON strings).
 * Runs of plain bytes are copied whole: most values have nothing to escape.
 */
static void obs_put_escaped(struct obs_out *o, const char *s)
{
	char hex[8];

	while (*s) {
		const char *run = s;
		unsigned char c;

		while (*s && obs_plain((unsigned char)*s))
			s++;
		obs_putn(o, run, (size_t)(s - run));
		c = (unsigned char)*s;
		if (!c)
			break;
		s++;
		if (c == '"' || c == '\\') {
			hex[0] = '\\';
			hex[1] = (char)c;
			obs_putn(o, hex, 2);
		} else if (c == '\n') {
			obs_puts(o, "\\n");
		} else if (c == '\t') {
			obs_puts(o, "\\t");
		} else if (c == '\r') {
			obs_puts(o, "\\r");
		} else {
			snprintf(hex, sizeof(hex), "\\u%04x", c);
			obs_puts(o, hex);
		}
	}
}

/* logfmt: a value goes bare unless empty or holding a space, '=', '"' or a control byte. */
static bool obs_needs_quotes(const char *s)
{
	if (!*s)
		return true;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == '=' || *s == '"' || *s == '\\' ||
		    (unsigned char)*s == 0x7f)
			return true;
	return false;
}

static void obs_put_pair(struct obs_out *o, bool json, const char *k, const char *v, bool raw)
{
	if (json) {
		obs_puts(o, ",\"");
		obs_put_escaped(o, k);
		obs_puts(o, "\":");
		if (raw) {
			obs_puts(o, v);
			return;
		}
		obs_putc(o, '"');
		obs_put_escaped(o, v);
		obs_putc(o, '"');
		return;
	}
	obs_putc(o, ' ');
	obs_puts(o, k);
	obs_putc(o, '=');
	if (raw || !obs_needs_quotes(v)) {
		obs_puts(o, v);
		return;
	}
	obs_putc(o, '"');
	obs_put_escaped(o, v);
	obs_putc(o, '"');
}

/*
 * RFC 3339 UTC with microseconds. The date and time of day are formatted once per second per
 * thread: gmtime_r() takes glibc's time zone lock, which the workers would otherwise contend
 * for on every line.
 */
static void obs_timestamp(char *ts, size_t len)
{
	static __thread time_t sec = -1;
	static __thread char day[64];
	struct timespec now;
	unsigned long usec;
	struct tm tm;
	size_t n;
	int i;

	clock_gettime(CLOCK_REALTIME, &now);
	if (now.tv_sec != sec) {
		gmtime_r(&now.tv_sec, &tm);
		snprintf(day, sizeof(day), "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		sec = now.tv_sec;
	}
	/* The microseconds by hand: this runs for every line. */
	usec = (unsigned long)now.tv_nsec / 1000;
	n = strlen(day);
	if (len < n + 9)
		return (void)snprintf(ts, len, "%s", day);
	memcpy(ts, day, n);
	ts[n] = '.';
	for (i = 6; i > 0; i--, usec /= 10)
		ts[n + i] = (char)('0' + usec % 10);
	ts[n + 7] = 'Z';
	ts[n + 8] = '\0';
}

size_t obs_rec_render(const struct obs_rec *r, char *out, size_t len)
{
	bool json = obs_log_format() == OBS_FMT_JSON;
	struct obs_out o = {out, len, 0};
	const char *scope = r->scope < 0 ? r->buf : obs_scopes[r->scope].name;
	char ts[128];
	unsigned int i;

	if (!len)
		return 0;
	obs_timestamp(ts, sizeof(ts));
	if (json) {
		obs_puts(&o, "{\"time\":\"");
		obs_puts(&o, ts);
		obs_putc(&o, '"');
	} else {
		obs_puts(&o, "time=");
		obs_puts(&o, ts);
	}
	obs_put_pair(&o, json, "level", obs_level_name(r->lvl), false);
	obs_put_pair(&o, json, "scope", scope, false);
	obs_put_pair(&o, json, "msg", r->msg, false);
	for (i = 0; i < r->n; i++)
		obs_put_pair(&o, json, r->buf + r->f[i].key, r->buf + r->f[i].val, r->f[i].raw);
	if (r->truncated)
		obs_put_pair(&o, json, "truncated", "true", true);
	if (json)
		obs_putc(&o, '}');
	out[o.off] = '\0';
	return o.off;
}

/*
 * The calling thread's batch (obs_log_batch): whole lines waiting for obs_log_flush(). Event
 * loops batch, so the lines of one round of events (a connection's open and close lines, those
 * of other connections) leave in one write(2) instead of one each: fewer system calls, and less
 * contention for the shared stderr file's position lock between workers. A batch holds whole
 * lines and at most PIPE_BUF bytes, so on a pipe (a container runtime's stderr) it is written
 * atomically and lines of different threads still never mix.
 */
#define OBS_BATCH_BYTES PIPE_BUF /* a write(2) to a pipe up to PIPE_BUF is never split */

static __thread struct {
	bool on;
	size_t len;
	char buf[OBS_BATCH_BYTES];
} obs_batch;

/* One write: lines of different threads never interleave. Errors are not reported. */
static void obs_write(const char *p, size_t n)
{
	if (n && write(STDERR_FILENO, p, n) < 0)
		return;
}

void obs_log_flush(void)
{
	obs_write(obs_batch.buf, obs_batch.len);
	obs_batch.len = 0;
}

void obs_log_batch(bool on)
{
	obs_log_flush();
	obs_batch.on = on;
}

void obs_rec_emit(struct obs_rec *r)
{
	char line[OBS_LINE_MAX];
	size_t n;

	if (!r->on)
		return;
	n = obs_rec_render(r, line, sizeof(line) - 1);
	line[n++] = '\n';
	/* Warnings and errors leave at once, after what the thread batched before them. */
	if (!obs_batch.on || r->lvl < OBS_INFO || n > sizeof(obs_batch.buf)) {
		obs_log_flush();
		obs_write(line, n);
		return;
	}
	if (obs_batch.len + n > sizeof(obs_batch.buf))
		obs_log_flush();
	memcpy(obs_batch.buf + obs_batch.len, line, n);
	obs_batch.len += n;
}

void obs_log(enum obs_level lvl, const char *scope, const char *fmt, ...)
{
	struct obs_rec r;
	char msg[2048];
	va_list ap;

	obs_rec_begin(&r, lvl, scope, NULL);
	if (!r.on)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r.msg = msg;
	obs_rec_emit(&r);
}

bool obs_ratelimit_ok(struct obs_ratelimit *rl, uint64_t now_ms, uint64_t interval_ms,
		      uint64_t *suppressed)
{
	uint64_t next = atomic_load(&rl->next_ms);

	if (now_ms < next ||
	    !atomic_compare_exchange_strong(&rl->next_ms, &next, now_ms + interval_ms)) {
		atomic_fetch_add(&rl->suppressed, 1);
		return false;
	}
	if (suppressed)
		*suppressed = atomic_exchange(&rl->suppressed, 0);
	return true;
}
