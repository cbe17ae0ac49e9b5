/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Conversions between struct zm_addr (the datapath's address type, include/zmesh/abi.h) and
 * text, plus socket addresses. Shared by every userspace binary.
 */
#ifndef ZMESH_COMMON_ADDR_H
#define ZMESH_COMMON_ADDR_H

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "zmesh/abi.h"

/* Longest text zm_addr_format() writes, NUL included ("[ffff:...:ffff]:65535"). */
#define ZM_ADDR_STRLEN 56

/*
 * Parse an IPv4 or IPv6 literal (no brackets, no port, no prefix). Returns 0, or -EINVAL
 * when text is not an address; *out is zeroed first either way.
 */
int zm_addr_parse(const char *text, struct zm_addr *out);

/*
 * Parse "ip/len" (or a bare ip, taken as a host prefix). Refuses lengths beyond the family's
 * width and host bits set beyond the prefix only when strict is true. Returns 0 or -EINVAL.
 */
int zm_cidr_parse(const char *text, bool strict, struct zm_addr *out, unsigned int *prefix_len);

/* Write the address as text (IPv6 unbracketed). Returns buf. */
const char *zm_addr_format(const struct zm_addr *a, char *buf, size_t len);

/* Write "ip:port" or "[ip6]:port"; port in host byte order. Returns buf. */
const char *zm_addr_port_format(const struct zm_addr *a, unsigned int port, char *buf, size_t len);

/* Fill a zm_addr and host-order port from a sockaddr_in/in6 (v4-mapped v6 becomes v4). */
int zm_addr_from_sockaddr(const struct sockaddr *sa, struct zm_addr *out, unsigned int *port);

/* Build a sockaddr_in/in6 from a zm_addr and host-order port; returns its length or 0. */
socklen_t zm_addr_to_sockaddr(const struct zm_addr *a, unsigned int port,
			      struct sockaddr_storage *ss);

bool zm_addr_equal(const struct zm_addr *a, const struct zm_addr *b);

/* True when a lies inside prefix/len (families must match). */
bool zm_addr_in_prefix(const struct zm_addr *a, const struct zm_addr *prefix, unsigned int len);

#endif
