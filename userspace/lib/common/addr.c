// SPDX-License-Identifier: Apache-2.0
/*
 * Address helpers: text <-> struct zm_addr <-> sockaddr. Pure functions, no allocation.
 */
#include "addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int zm_addr_parse(const char *text, struct zm_addr *out)
{
	memset(out, 0, sizeof(*out));
	if (!text)
		return -EINVAL;
	if (inet_pton(AF_INET, text, &out->addr[0]) == 1) {
		out->family = ZM_AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, text, out->addr) == 1) {
		out->family = ZM_AF_INET6;
		return 0;
	}
	memset(out, 0, sizeof(*out));
	return -EINVAL;
}

static unsigned int zm_addr_width(const struct zm_addr *a)
{
	return a->family == ZM_AF_INET ? 32 : 128;
}

int zm_cidr_parse(const char *text, bool strict, struct zm_addr *out, unsigned int *prefix_len)
{
	char buf[INET6_ADDRSTRLEN + 8];
	const char *slash;
	char *end;
	unsigned long len;

	memset(out, 0, sizeof(*out));
	if (!text || strlen(text) >= sizeof(buf))
		return -EINVAL;
	slash = strchr(text, '/');
	if (!slash)
		return zm_addr_parse(text, out) ?: (*prefix_len = zm_addr_width(out), 0);
	memcpy(buf, text, (size_t)(slash - text));
	buf[slash - text] = '\0';
	if (zm_addr_parse(buf, out))
		return -EINVAL;
	if (!slash[1] || slash[1] == '-' || slash[1] == '+')
		return -EINVAL;
	errno = 0;
	len = strtoul(slash + 1, &end, 10);
	if (errno || *end || len > zm_addr_width(out))
		return -EINVAL;
	if (strict) {
		struct zm_addr masked = *out;
		unsigned int i;

		for (i = 0; i < 4; i++) {
			unsigned int lo = i * 32;
			__u32 mask = len >= lo + 32 ? 0xffffffffu
				     : len <= lo    ? 0
						    : ~0u << (32 - (len - lo));
			masked.addr[i] &= htonl(mask);
		}
		if (!zm_addr_equal(&masked, out))
			return -EINVAL;
	}
	*prefix_len = (unsigned int)len;
	return 0;
}

const char *zm_addr_format(const struct zm_addr *a, char *buf, size_t len)
{
	if (a->family == ZM_AF_INET) {
		if (!inet_ntop(AF_INET, &a->addr[0], buf, (socklen_t)len))
			snprintf(buf, len, "?");
	} else if (a->family == ZM_AF_INET6) {
		if (!inet_ntop(AF_INET6, a->addr, buf, (socklen_t)len))
			snprintf(buf, len, "?");
	} else {
		snprintf(buf, len, "(family %u)", a->family);
	}
	return buf;
}

const char *zm_addr_port_format(const struct zm_addr *a, unsigned int port, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	zm_addr_format(a, ip, sizeof(ip));
	if (a->family == ZM_AF_INET6)
		snprintf(buf, len, "[%s]:%u", ip, port);
	else
		snprintf(buf, len, "%s:%u", ip, port);
	return buf;
}

int zm_addr_from_sockaddr(const struct sockaddr *sa, struct zm_addr *out, unsigned int *port)
{
	memset(out, 0, sizeof(*out));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		out->family = ZM_AF_INET;
		out->addr[0] = in->sin_addr.s_addr;
		if (port)
			*port = ntohs(in->sin_port);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			out->family = ZM_AF_INET;
			memcpy(&out->addr[0], &in6->sin6_addr.s6_addr[12], 4);
		} else {
			out->family = ZM_AF_INET6;
			memcpy(out->addr, &in6->sin6_addr, 16);
		}
		if (port)
			*port = ntohs(in6->sin6_port);
		return 0;
	}
	return -EAFNOSUPPORT;
}

socklen_t zm_addr_to_sockaddr(const struct zm_addr *a, unsigned int port,
			      struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == ZM_AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;

		in->sin_family = AF_INET;
		in->sin_port = htons((__u16)port);
		in->sin_addr.s_addr = a->addr[0];
		return sizeof(*in);
	}
	if (a->family == ZM_AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((__u16)port);
		memcpy(&in6->sin6_addr, a->addr, 16);
		return sizeof(*in6);
	}
	return 0;
}

bool zm_addr_equal(const struct zm_addr *a, const struct zm_addr *b)
{
	return a->family == b->family && memcmp(a->addr, b->addr, sizeof(a->addr)) == 0;
}

bool zm_addr_in_prefix(const struct zm_addr *a, const struct zm_addr *prefix, unsigned int len)
{
	unsigned int i;

	if (a->family != prefix->family || len > zm_addr_width(a))
		return false;
	for (i = 0; i < 4 && len > 0; i++) {
		unsigned int bits = len >= 32 ? 32 : len;
		__u32 mask = htonl(bits == 32 ? 0xffffffffu : ~0u << (32 - bits));

		if ((a->addr[i] & mask) != (prefix->addr[i] & mask))
			return false;
		len -= bits;
	}
	return true;
}
