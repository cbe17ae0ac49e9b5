/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one logger of every zmesh daemon: levelled records with an RFC 3339 UTC timestamp, a
 * scope (a named target whose level is set on its own, as Istio's ztunnel has them: "access",
 * "hbone", ...), a message and typed fields, written to stderr as one line in one write(2),
 * either logfmt (the default) or JSON (--log-format json):
 *
 *   time=2026-12-01T10:00:00.123456Z level=info scope=access msg=close dir=outbound bytes=12
 *   {"time":"2026-12-01T10:00:00.123456Z","level":"info","scope":"access","msg":"close",...}
 *
 * Levels and the format are process-wide atomics, read on every record and changed at run time
 * by the admin port's /logging (obs_log_set_levels); nothing is formatted for a record whose
 * scope is below its level. A record is built on the caller's stack (struct obs_rec, no
 * allocation); a field that does not fit is dropped and the line says "truncated=true".
 */
#ifndef ZMESH_OBS_LOG_H
#define ZMESH_OBS_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum obs_level {
	OBS_OFF = 0,
	OBS_ERROR,
	OBS_WARN,
	OBS_INFO,
	OBS_DEBUG,
	OBS_TRACE,
};

enum obs_format {
	OBS_FMT_LOGFMT,
	OBS_FMT_JSON,
};

#define OBS_SCOPES_MAX 32
#define OBS_REC_BYTES  3072 /* keys and values of one record */
#define OBS_REC_FIELDS 40

/*
 * Name the process and its scopes (NULL-terminated list; the process name itself is always a
 * scope, the default one for records that name no known scope). Every scope starts at info.
 * Call once from main() before any thread starts; later calls add scopes.
 */
void obs_log_init(const char *proc, const char *const *scopes);

/* "logfmt" or "json"; -EINVAL (nothing changed) for anything else. */
int obs_log_set_format(const char *name);
enum obs_format obs_log_format(void);

/*
 * --log-format FORMAT and --log-level SPEC as every daemon takes them: applied, or -EINVAL
 * after "PROG: --log-format: \"xml\" is not logfmt or json" (the level spec's own error for
 * --log-level) on stderr.
 */
int obs_log_opt_format(const char *prog, const char *arg);
int obs_log_opt_level(const char *prog, const char *arg);

/*
 * The two rows every daemon's getopt_long table has, and their handling, for the default case
 * of its option switch: 0 when c was one of them and applied; -EINVAL when its value was
 * refused, or c is no option of ours (getopt's '?' or ':'), with the message printed.
 */
#define OBS_OPT_LOG_FORMAT 0x10f0
#define OBS_OPT_LOG_LEVEL  0x10f1
#define OBS_LOG_OPTIONS                                                                            \
	{"log-format", required_argument, NULL, OBS_OPT_LOG_FORMAT},                               \
	{                                                                                          \
		"log-level", required_argument, NULL, OBS_OPT_LOG_LEVEL                            \
	}
int obs_log_getopt(const char *prog, int c, const char *arg, char *const *argv);

/* "error", "warn" ("warning"), "info", "debug", "trace", "off". -EINVAL when unknown. */
int obs_level_parse(const char *name, enum obs_level *out);
const char *obs_level_name(enum obs_level l);

/*
 * Change levels: "LEVEL" sets every scope, "SCOPE:LEVEL" one scope, and a comma-separated list
 * of both applies left to right ("info,access:debug"). All or nothing: an unknown scope or
 * level changes nothing and returns -EINVAL with the offending word named in err.
 */
int obs_log_set_levels(const char *spec, char *err, size_t len);

/* "SCOPE: LEVEL\n" per scope, the process's own first (malloc'd; NULL on ENOMEM). */
char *obs_log_levels_text(void);

/* Would a record of this level in this scope be written? */
bool obs_log_on(enum obs_level lvl, const char *scope);

/* A record under construction. */
struct obs_rec {
	bool on;
	bool truncated;
	enum obs_level lvl;
	int scope;
	const char *msg;
	size_t used;
	unsigned int n;
	struct {
		uint16_t key, val; /* offsets into buf */
		bool raw;	   /* a number or boolean: never quoted */
	} f[OBS_REC_FIELDS];
	char buf[OBS_REC_BYTES];
};

/* Start a record; msg must stay valid until obs_rec_emit (copy it with obs_rec_msgf). */
void obs_rec_begin(struct obs_rec *r, enum obs_level lvl, const char *scope, const char *msg);
/* The message from a format instead (copied into the record). */
void obs_rec_msgf(struct obs_rec *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Fields, in the order they are added; a NULL string is written as "-". */
void obs_rec_str(struct obs_rec *r, const char *key, const char *val);
void obs_rec_strf(struct obs_rec *r, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/*
 * A value joined from n parts (a NULL part is ""), as obs_rec_strf with "%s%s..." would give
 * it (cut at the same 1,023 bytes), without a format to parse: for fields of every request.
 */
void obs_rec_join(struct obs_rec *r, const char *key, const char *const *parts, size_t n);
void obs_rec_u64(struct obs_rec *r, const char *key, uint64_t v);
void obs_rec_i64(struct obs_rec *r, const char *key, int64_t v);
void obs_rec_bool(struct obs_rec *r, const char *key, bool v);
/* Write the record (when its level is on). The record may not be used afterwards. */
void obs_rec_emit(struct obs_rec *r);

/*
 * Batching for the calling thread: with it on, info and less severe lines wait in a
 * per-thread buffer (PIPE_BUF bytes, written atomically) until obs_log_flush() or a full buffer;
 * warnings and errors flush it and go out at once. rt_loop_run() turns it on for its thread and
 * flushes after every round of events, so a line waits at most for the end of the round it was
 * logged in. Turning it off flushes.
 */
void obs_log_batch(bool on);
void obs_log_flush(void);

/* The common case: a message alone. */
void obs_log(enum obs_level lvl, const char *scope, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Render r into out (no trailing newline) in the current format; for tests and for callers
 * that log elsewhere. Returns the length written (out is always NUL-terminated).
 */
size_t obs_rec_render(const struct obs_rec *r, char *out, size_t len);

/*
 * At most one record per interval: callers that may fail in a loop (accept on EMFILE, a
 * stalled mirror) keep one of these and log only when obs_ratelimit_ok() says so; it returns
 * how many were suppressed since the last line through *suppressed. Thread-safe.
 */
struct obs_ratelimit {
	_Atomic uint64_t next_ms;
	_Atomic uint64_t suppressed;
};
bool obs_ratelimit_ok(struct obs_ratelimit *rl, uint64_t now_ms, uint64_t interval_ms,
		      uint64_t *suppressed);

#endif
