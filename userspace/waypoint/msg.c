// SPDX-License-Identifier: Apache-2.0
/*
 * Byte queues and header lists (msg.h). A queue grows by doubling from 1 KiB and compacts
 * before it grows; a header list keeps each field's name and value in one allocation.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hbone/hbone.h"
#include "msg.h"

size_t wp_q_size(const struct wp_q *q)
{
	return q->len - q->off;
}

int wp_q_put(struct wp_q *q, const void *buf, size_t len)
{
	if (!len)
		return 0;
	if (q->off && q->off == q->len)
		q->off = q->len = 0;
	if (q->len + len > q->cap) {
		size_t live = q->len - q->off, cap = q->cap ? q->cap : 1024;
		char *p;

		if (q->off) { /* compact first */
			memmove(q->p, q->p + q->off, live);
			q->off = 0;
			q->len = live;
		}
		while (cap < live + len)
			cap *= 2;
		if (cap > q->cap) {
			p = realloc(q->p, cap);
			if (!p)
				return -ENOMEM;
			q->p = p;
			q->cap = cap;
		}
	}
	memcpy(q->p + q->len, buf, len);
	q->len += len;
	q->total += len;
	return 0;
}

int wp_q_printf(struct wp_q *q, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -ENOSPC;
	return wp_q_put(q, buf, (size_t)n);
}

int wp_q_puts(struct wp_q *q, const char *s)
{
	return wp_q_put(q, s, strlen(s));
}

int wp_q_field(struct wp_q *q, const char *name, const char *value)
{
	return wp_q_puts(q, name) ?: wp_q_puts(q, ": ") ?: wp_q_puts(q, value)
		?: wp_q_puts(q, "\r\n");
}

void wp_q_drop(struct wp_q *q, size_t n)
{
	q->off += n;
	if (q->off >= q->len)
		q->off = q->len = 0;
}

void wp_q_free(struct wp_q *q)
{
	free(q->p);
	*q = (struct wp_q){0};
}

int wp_q_flush(struct wp_q *q, struct hb_stream *s)
{
	while (wp_q_size(q)) {
		ssize_t n = hb_stream_write(s, wp_q_data(q), wp_q_size(q));

		if (n < 0)
			return (int)n;
		if (!n)
			break;
		wp_q_drop(q, (size_t)n);
	}
	return 0;
}

/* ---- header lists ---- */

int wp_hdrs_add(struct wp_hdrs *l, const char *name, size_t nlen, const char *value, size_t vlen)
{
	char *s;
	size_t i;

	if (l->n >= WP_HDRS_MAX || l->bytes + nlen + vlen > WP_HDRS_BYTES)
		return -E2BIG;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct l7_header *h = realloc(l->h, cap * sizeof(*h));

		if (!h)
			return -ENOMEM;
		l->h = h;
		l->cap = cap;
	}
	s = malloc(nlen + vlen + 2);
	if (!s)
		return -ENOMEM;
	for (i = 0; i < nlen; i++)
		s[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] - 'A' + 'a' : name[i]);
	s[nlen] = '\0';
	memcpy(s + nlen + 1, value, vlen);
	s[nlen + 1 + vlen] = '\0';
	l->h[l->n].name = s;
	l->h[l->n].value = s + nlen + 1;
	l->n++;
	l->bytes += nlen + vlen;
	return 0;
}

int wp_hdrs_add_str(struct wp_hdrs *l, const char *name, const char *value)
{
	return wp_hdrs_add(l, name, strlen(name), value, strlen(value));
}

const char *wp_hdrs_get(const struct wp_hdrs *l, const char *name)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (!strcmp(l->h[i].name, name))
			return l->h[i].value;
	return NULL;
}

size_t wp_hdrs_count(const struct wp_hdrs *l, const char *name)
{
	size_t i, n = 0;

	for (i = 0; i < l->n; i++)
		n += !strcmp(l->h[i].name, name);
	return n;
}

size_t wp_hdrs_del(struct wp_hdrs *l, const char *name)
{
	size_t i, k = 0, gone = 0;

	for (i = 0; i < l->n; i++) {
		if (!strcasecmp(l->h[i].name, name)) {
			l->bytes -= strlen(l->h[i].name) + strlen(l->h[i].value);
			free((char *)l->h[i].name);
			gone++;
			continue;
		}
		l->h[k++] = l->h[i];
	}
	l->n = k;
	return gone;
}

int wp_hdrs_set(struct wp_hdrs *l, const char *name, const char *value)
{
	wp_hdrs_del(l, name);
	return wp_hdrs_add_str(l, name, value);
}

void wp_hdrs_clear(struct wp_hdrs *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free((char *)l->h[i].name);
	free(l->h);
	*l = (struct wp_hdrs){0};
}

int wp_hdrs_copy(struct wp_hdrs *dst, const struct wp_hdrs *src)
{
	size_t i;
	int r;

	for (i = 0; i < src->n; i++) {
		r = wp_hdrs_add_str(dst, src->h[i].name, src->h[i].value);
		if (r)
			return r;
	}
	return 0;
}
