// SPDX-License-Identifier: Apache-2.0
/*
 * HBONE request header values (userspace/lib/hbone/README.md): the CONNECT authority ("ip:port",
 * bracketed IPv6) both ways, and the forwarded, baggage and traceparent values a client
 * sends. Pure functions over caller buffers; only traceparent reads randomness.
 */
#include "hbone.h"

#include <errno.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

int hb_authority_format(const struct zm_addr *a, unsigned int port, char *buf, size_t len)
{
	char ip[ZM_ADDR_STRLEN];
	int n;

	if (!a || !buf || port == 0 || port > 65535 ||
	    (a->family != ZM_AF_INET && a->family != ZM_AF_INET6))
		return -EINVAL;
	zm_addr_format(a, ip, sizeof(ip));
	if (a->family == ZM_AF_INET6)
		n = snprintf(buf, len, "[%s]:%u", ip, port);
	else
		n = snprintf(buf, len, "%s:%u", ip, port);
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

/* A decimal port 1..65535: digits only (no sign, no spaces), at most 5 of them. */
static int hb_port_parse(const char *p, unsigned int *port)
{
	unsigned int v = 0;
	size_t i;

	for (i = 0; p[i]; i++) {
		if (p[i] < '0' || p[i] > '9' || i >= 5)
			return -EINVAL;
		v = v * 10 + (unsigned int)(p[i] - '0');
	}
	if (i == 0 || v == 0 || v > 65535)
		return -EINVAL;
	*port = v;
	return 0;
}

int hb_authority_parse(const char *text, struct zm_addr *a, unsigned int *port)
{
	char ip[ZM_ADDR_STRLEN];
	const char *colon, *host = text;
	size_t hlen;

	memset(a, 0, sizeof(*a));
	*port = 0;
	if (!text)
		return -EINVAL;
	if (text[0] == '[') {
		const char *close = strchr(text, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		host = text + 1;
		hlen = (size_t)(close - host);
		colon = close + 1;
	} else {
		colon = strrchr(text, ':');
		if (!colon)
			return -EINVAL;
		hlen = (size_t)(colon - text);
		/* An unbracketed IPv6 literal is ambiguous (which colon starts the port?). */
		if (memchr(text, ':', hlen))
			return -EINVAL;
	}
	if (hlen == 0 || hlen >= sizeof(ip))
		return -EINVAL;
	memcpy(ip, host, hlen);
	ip[hlen] = '\0';
	if (zm_addr_parse(ip, a))
		return -EINVAL;
	/* "[1.2.3.4]:80" is not an IPv6 literal; refuse the mix. */
	if ((text[0] == '[') != (a->family == ZM_AF_INET6))
		goto bad;
	if (hb_port_parse(colon + 1, port))
		goto bad;
	return 0;
bad:
	memset(a, 0, sizeof(*a));
	*port = 0;
	return -EINVAL;
}

int hb_forwarded_format(const struct zm_addr *client, unsigned int port, const char *host,
			char *buf, size_t len)
{
	char ap[HB_AUTHORITY_MAX];
	const char *c;
	int n, err;

	err = hb_authority_format(client, port, ap, sizeof(ap));
	if (err)
		return err == -ENOSPC ? -ENOSPC : -EINVAL;
	if (host && *host) {
		/* host is emitted as an RFC 7239 token: refuse anything that would need quoting. */
		for (c = host; *c; c++)
			if (*c <= ' ' || *c >= 0x7f || strchr("\",;=()<>@\\/[]?{}", *c))
				return -EINVAL;
		n = snprintf(buf, len, "for=\"%s\";host=%s", ap, host);
	} else {
		n = snprintf(buf, len, "for=\"%s\"", ap);
	}
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

/* Baggage values are W3C baggage octets; anything that could split an item is refused. */
static bool hb_baggage_value_ok(const char *v)
{
	for (; *v; v++)
		if (*v <= ' ' || *v >= 0x7f || *v == ',' || *v == ';' || *v == '=' || *v == '"' ||
		    *v == '\\')
			return false;
	return true;
}

static int hb_baggage_add(char *buf, size_t len, size_t *off, const char *key_fmt,
			  const char *key_arg, const char *value)
{
	char key[96];
	int n;

	if (!value || !*value)
		return 0;
	if (!hb_baggage_value_ok(value))
		return -EINVAL;
	snprintf(key, sizeof(key), key_fmt, key_arg ? key_arg : "");
	n = snprintf(buf + *off, len - *off, "%s%s=%s", *off ? "," : "", key, value);
	if (n < 0 || (size_t)n >= len - *off)
		return -ENOSPC;
	*off += (size_t)n;
	return 0;
}

int hb_baggage_format(const struct hb_baggage *b, char *buf, size_t len)
{
	size_t off = 0;
	int err;

	if (!b || !buf || len == 0)
		return -EINVAL;
	buf[0] = '\0';
	if (b->workload_type && *b->workload_type && !hb_baggage_value_ok(b->workload_type))
		return -EINVAL;
	err = hb_baggage_add(buf, len, &off, "k8s.cluster.name", NULL, b->cluster);
	if (!err)
		err = hb_baggage_add(buf, len, &off, "k8s.namespace.name", NULL, b->ns);
	if (!err && b->workload_type && *b->workload_type)
		err = hb_baggage_add(buf, len, &off, "k8s.%s.name", b->workload_type,
				     b->workload_name);
	if (!err)
		err = hb_baggage_add(buf, len, &off, "service.name", NULL, b->service_name);
	if (!err)
		err = hb_baggage_add(buf, len, &off, "service.version", NULL, b->service_version);
	if (err)
		buf[0] = '\0';
	return err;
}

static bool hb_all_zero(const unsigned char *p, size_t n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

int hb_traceparent_new(char *buf, size_t len)
{
	unsigned char id[24]; /* 16 bytes trace id, 8 bytes span id */
	size_t i, off;

	if (!buf || len < HB_TRACEPARENT_LEN)
		return -ENOSPC;
	do {
		if (RAND_bytes(id, sizeof(id)) != 1)
			return -EIO;
	} while (hb_all_zero(id, 16) || hb_all_zero(id + 16, 8));
	memcpy(buf, "00-", 3);
	off = 3;
	for (i = 0; i < sizeof(id); i++) {
		if (i == 16)
			buf[off++] = '-';
		snprintf(buf + off, 3, "%02x", id[i]);
		off += 2;
	}
	memcpy(buf + off, "-00", 4);
	return 0;
}

static bool hb_hex_run(const char *p, size_t n, bool *nonzero)
{
	size_t i;

	*nonzero = false;
	for (i = 0; i < n; i++) {
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
			return false;
		if (p[i] != '0')
			*nonzero = true;
	}
	return true;
}

bool hb_traceparent_valid(const char *t)
{
	bool nz_trace, nz_span, nz_flags;

	if (!t || strlen(t) != HB_TRACEPARENT_LEN - 1)
		return false;
	if (strncmp(t, "00-", 3) || t[35] != '-' || t[52] != '-')
		return false;
	return hb_hex_run(t + 3, 32, &nz_trace) && nz_trace && hb_hex_run(t + 36, 16, &nz_span) &&
	       nz_span && hb_hex_run(t + 53, 2, &nz_flags);
}
