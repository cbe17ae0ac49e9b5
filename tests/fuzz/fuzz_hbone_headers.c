// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for lib/hbone's header parsers and builders (userspace/lib/hbone/README.md). The
 * input, split at '\n', gives: an authority for hb_authority_parse() (what a peer's CONNECT
 * carries), a traceparent for hb_traceparent_valid(), then the forwarded host and the six
 * baggage values. Checks: a parsed authority formats back to text that parses to the same
 * address and port; builders return 0, -EINVAL or -ENOSPC and always leave a terminated
 * string when they succeed, for every buffer size from 0 up; the request check the server
 * applies before answering 400 agrees with the parser. Seeds: tests/data/hbone_headers/.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hbone/internal.h"

#define FZ_FIELDS 9

static void fz_authority(const char *text)
{
	char buf[HB_AUTHORITY_MAX], again[HB_AUTHORITY_MAX];
	struct zm_addr a, b;
	unsigned int port, port2;
	const char *why;
	int r;

	r = hb_authority_parse(text, &a, &port);
	if (r && r != -EINVAL)
		abort();
	if ((hb_request_check("CONNECT", text, &b, &port2, &why) == 0) != (r == 0))
		abort(); /* the 400 check and the parser must agree */
	if (r == 0 && why)
		abort();
	if (r)
		return;
	if (port < 1 || port > 65535)
		abort();
	if (hb_authority_format(&a, port, buf, sizeof(buf)))
		abort(); /* anything we parse must format */
	if (hb_authority_parse(buf, &b, &port2) || port2 != port || !zm_addr_equal(&a, &b))
		abort();
	if (hb_authority_format(&b, port2, again, sizeof(again)) || strcmp(buf, again))
		abort(); /* formatting is canonical */
}

static void fz_builders(char **f)
{
	struct hb_baggage bg = {f[3], f[4], f[5], f[6], f[7], f[8]};
	char buf[HB_BAGGAGE_MAX + 8];
	struct zm_addr a;
	size_t len;
	int r;

	if (zm_addr_parse("2001:2::7", &a))
		abort();
	for (len = 0; len <= sizeof(buf); len += len < 64 ? 1 : 37) {
		memset(buf, 'x', sizeof(buf));
		r = hb_forwarded_format(&a, 40000, f[2], buf, len);
		if (r && r != -EINVAL && r != -ENOSPC)
			abort();
		if (!r && !memchr(buf, '\0', len))
			abort();
		memset(buf, 'x', sizeof(buf));
		r = hb_baggage_format(&bg, buf, len);
		if (r && r != -EINVAL && r != -ENOSPC)
			abort();
		if (!r && !memchr(buf, '\0', len))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *f[FZ_FIELDS], *copy, *p;
	int i;

	copy = malloc(size + 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	p = copy;
	for (i = 0; i < FZ_FIELDS; i++) {
		f[i] = p;
		p = strchr(p, '\n');
		if (p)
			*p++ = '\0';
		else
			p = copy + size; /* the remaining fields are "" */
	}
	fz_authority(f[0]);
	if (hb_traceparent_valid(f[1]) && strlen(f[1]) != HB_TRACEPARENT_LEN - 1)
		abort();
	fz_builders(f);
	free(copy);
	return 0;
}
