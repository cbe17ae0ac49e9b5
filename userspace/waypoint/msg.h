/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The parts HTTP messages are made of in the waypoint, whatever protocol carried them: a byte
 * queue (struct wp_q: what a side did not take yet, a request body kept for retries) and a
 * header list (struct wp_hdrs: owned copies, names lower-case as HTTP/2 spells them, in the
 * order received). The codecs translate wire bytes to these and back; the request lifecycle
 * (request.h) reads and edits them and never sees a wire format.
 */
#ifndef WAYPOINT_MSG_H
#define WAYPOINT_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "l7/l7.h"

struct hb_stream;

struct wp_q {
	char *p;
	size_t off, len, cap; /* live bytes are p[off .. len) */
	uint64_t total;	      /* bytes ever put */
};

size_t wp_q_size(const struct wp_q *q);
/* Append; 0 or -ENOMEM. */
int wp_q_put(struct wp_q *q, const void *buf, size_t len);
int wp_q_printf(struct wp_q *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A NUL-terminated string appended, without its NUL. */
int wp_q_puts(struct wp_q *q, const char *s);
/* "name: value\r\n", whatever their length (a long cookie or URL is never cut or dropped). */
int wp_q_field(struct wp_q *q, const char *name, const char *value);
void wp_q_drop(struct wp_q *q, size_t n);
void wp_q_free(struct wp_q *q);
static inline const char *wp_q_data(const struct wp_q *q)
{
	return q->p + q->off;
}
/* Write q to s; what s refuses stays queued. Returns -errno on a dead stream. */
int wp_q_flush(struct wp_q *q, struct hb_stream *s);

#define WP_HDRS_MAX   100	  /* fields of one header list */
#define WP_HDRS_BYTES (64u << 10) /* their names and values together */

/*
 * A header list. h[i].name is lower-case; both strings are owned (one allocation per field).
 * A list refuses (-E2BIG) more than WP_HDRS_MAX fields or WP_HDRS_BYTES bytes.
 */
struct wp_hdrs {
	struct l7_header *h;
	size_t n, cap, bytes;
};

int wp_hdrs_add(struct wp_hdrs *l, const char *name, size_t nlen, const char *value, size_t vlen);
int wp_hdrs_add_str(struct wp_hdrs *l, const char *name, const char *value);
/* First value of name (lower case) or NULL. */
const char *wp_hdrs_get(const struct wp_hdrs *l, const char *name);
size_t wp_hdrs_count(const struct wp_hdrs *l, const char *name);
/* Remove every field name (any case); returns how many. */
size_t wp_hdrs_del(struct wp_hdrs *l, const char *name);
/* Replace every field name with one name: value (appended when absent). */
int wp_hdrs_set(struct wp_hdrs *l, const char *name, const char *value);
void wp_hdrs_clear(struct wp_hdrs *l);
int wp_hdrs_copy(struct wp_hdrs *dst, const struct wp_hdrs *src);

#endif
