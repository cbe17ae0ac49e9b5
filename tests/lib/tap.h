/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Minimal TAP producer for the C test tiers (unit and BPF). Each check prints one
 * "ok N - name" or "not ok N - name" line with the failing expression and location; the
 * program prints the plan at the end and exits non-zero when anything failed, so the test
 * runner (tests/run.sh) counts a crashed or truncated test as failed.
 */
#ifndef ZMESH_TAP_H
#define ZMESH_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n, tap_failed;

static inline int tap_check(int cond, const char *file, int line, const char *expr, const char *fmt,
			    ...)
{
	va_list ap;

	tap_n++;
	printf("%sok %d - ", cond ? "" : "not ", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!cond) {
		tap_failed++;
		printf("#   failed: %s at %s:%d\n", expr, file, line);
	}
	fflush(stdout);
	return cond;
}

/* ok(cond, "name %d", ...): one test point. Returns cond so callers can stop early. */
#define ok(cond, ...) tap_check(!!(cond), __FILE__, __LINE__, #cond, __VA_ARGS__)

/* is_int / is_str: equality checks that print both values on failure. */
#define is_int(got, want, ...)                                                                     \
	({                                                                                         \
		long long g_ = (long long)(got), w_ = (long long)(want);                           \
		int r_ = ok(g_ == w_, __VA_ARGS__);                                                \
		if (!r_)                                                                           \
			printf("#   got %lld, want %lld\n", g_, w_);                               \
		r_;                                                                                \
	})
#define is_str(got, want, ...)                                                                     \
	({                                                                                         \
		const char *g_ = (got), *w_ = (want);                                              \
		int r_ = ok(g_ && w_ && strcmp(g_, w_) == 0, __VA_ARGS__);                         \
		if (!r_)                                                                           \
			printf("#   got \"%s\", want \"%s\"\n", g_ ? g_ : "(null)",                \
			       w_ ? w_ : "(null)");                                                \
		r_;                                                                                \
	})

/* A test that cannot run fails: it never passes by being skipped. */
#define tap_bail(...)                                                                              \
	do {                                                                                       \
		printf("Bail out! ");                                                              \
		printf(__VA_ARGS__);                                                               \
		printf("\n");                                                                      \
		exit(1);                                                                           \
	} while (0)

/* Call at the end of main: prints the plan and returns the exit status. */
static inline int tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif
