// SPDX-License-Identifier: Apache-2.0
/*
 * What a matched route does to a request, as Envoy does it with the configuration Istio
 * generates: the upstream path (prefix_rewrite, regex_rewrite), the redirect's Location
 * (Envoy's RouteEntryImplBase::newUri, with Istio's port rules), CORS origin matching, and
 * the retry conditions of retryOn (Envoy's x-envoy-retry-on and x-envoy-retry-grpc-on).
 * Pure: no I/O, no clock.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "l7/l7.h"

static size_t l7_path_len(const char *path)
{
	const char *q = strchr(path, '?');

	return q ? (size_t)(q - path) : strlen(path);
}

/* How much of the path the prefix rewrite replaces: Envoy's "matched prefix (or path)". */
static size_t l7_matched_prefix(const struct l7_http_match *m, size_t plen)
{
	if (!m)
		return 1; /* a route without match is Envoy's prefix "/" */
	if (m->uri.kind == L7_STR_PREFIX || m->uri.kind == L7_STR_PATH_PREFIX)
		return strlen(m->uri.value) <= plen ? strlen(m->uri.value) : plen;
	if (m->uri.kind == L7_STR_NONE)
		return 1;
	return plen; /* exact and regex: the whole path */
}

/* Every match of re in s[0 .. len) replaced by sub (Envoy's "\1" groups as PCRE2's "$1"). */
static int l7_regex_replace(void *re, const char *sub, const char *s, size_t len, char *out,
			    size_t *olen)
{
	char psub[1024];
	size_t i, o = 0;
	int rc;

	for (i = 0; sub[i] && o + 4 < sizeof(psub); i++) {
		if (sub[i] == '\\' && sub[i + 1] >= '0' && sub[i + 1] <= '9') {
			psub[o++] = '$';
			psub[o++] = sub[++i];
		} else if (sub[i] == '$') {
			psub[o++] = '$';
			psub[o++] = '$';
		} else {
			psub[o++] = sub[i];
		}
	}
	psub[o] = '\0';
	rc = pcre2_substitute(re, (PCRE2_SPTR)s, len, 0, PCRE2_SUBSTITUTE_GLOBAL, NULL, NULL,
			      (PCRE2_SPTR)psub, PCRE2_ZERO_TERMINATED, (PCRE2_UCHAR *)out,
			      (PCRE2_SIZE *)olen);
	return rc < 0 ? -ENOSPC : 0;
}

int l7_rewrite_path(const struct l7_http_route *r, const struct l7_http_match *m,
		    const struct l7_request *req, char *buf, size_t len)
{
	size_t plen = l7_path_len(req->path), keep, n;
	const char *q = req->path + plen;
	int w;

	if (r->rewrite.re) {
		n = len;
		if (l7_regex_replace(r->rewrite.re, r->rewrite.re_sub, req->path, plen, buf, &n))
			return -ENOSPC;
		w = snprintf(buf + n, len - n, "%s", q);
		return w < 0 || (size_t)w >= len - n ? -ENOSPC : 0;
	}
	if (!r->rewrite.uri) {
		w = snprintf(buf, len, "%s", req->path);
		return w < 0 || (size_t)w >= len ? -ENOSPC : 0;
	}
	keep = l7_matched_prefix(m, plen);
	if (m && m->uri.kind == L7_STR_PATH_PREFIX && !strcmp(r->rewrite.uri, "/")) {
		/* Istio's Gateway API rewrite to "/": ^PREFIX(/?)(.*) -> /\2 */
		if (keep < plen && req->path[keep] == '/')
			keep++;
		w = snprintf(buf, len, "/%.*s%s", (int)(plen - keep), req->path + keep, q);
		return w < 0 || (size_t)w >= len ? -ENOSPC : 0;
	}
	w = snprintf(buf, len, "%s%.*s%s", r->rewrite.uri, (int)(plen - keep), req->path + keep, q);
	return w < 0 || (size_t)w >= len ? -ENOSPC : 0;
}

/* The request's host for the Location: Envoy's processRequestHost. */
static void l7_redirect_host(const char *host, const char *req_scheme, const char *scheme,
			     bool new_port, char *out, size_t len)
{
	const char *end = NULL, *port;
	bool drop = new_port;

	if (host[0] == '[') {
		end = strstr(host, "]:");
		end = end ? end + 1 : NULL;
	} else {
		end = strrchr(host, ':');
	}
	if (end && strcmp(scheme, req_scheme)) {
		port = end;
		drop |= (!strcmp(req_scheme, "https") && !strcmp(port, ":443")) ||
			(!strcmp(req_scheme, "http") && !strcmp(port, ":80"));
	}
	if (end && drop)
		snprintf(out, len, "%.*s", (int)(end - host), host);
	else
		snprintf(out, len, "%s", host);
}

int l7_redirect_location(const struct l7_http_route *r, const struct l7_http_match *m,
			 const struct l7_request *req, char *buf, size_t len)
{
	const char *req_scheme = req->scheme ? req->scheme : "http";
	const char *scheme = r->redirect.scheme ? r->redirect.scheme : req_scheme;
	size_t plen = l7_path_len(req->path), keep;
	const char *q = req->path + plen;
	unsigned int port = 0;
	char host[512], path[4096], portbuf[16] = "";
	int w;

	if (r->redirect.port_rule == L7_PORT_FIXED)
		port = r->redirect.port;
	else if (r->redirect.port_rule == L7_PORT_FROM_REQUEST)
		port = req->port;
	/* Istio: no explicit :80 for http or :443 for https. */
	if ((port == 80 && !strcmp(scheme, "http")) || (port == 443 && !strcmp(scheme, "https")))
		port = 0;
	if (port)
		snprintf(portbuf, sizeof(portbuf), ":%u", port);
	if (r->redirect.authority)
		snprintf(host, sizeof(host), "%s", r->redirect.authority);
	else
		l7_redirect_host(req->authority ? req->authority : "", req_scheme, scheme,
				 port != 0, host, sizeof(host));
	if (r->redirect.uri && r->redirect.uri[0]) {
		w = snprintf(path, sizeof(path), "%s%s", r->redirect.uri,
			     strchr(r->redirect.uri, '?') ? "" : q);
	} else if (r->redirect.prefix) {
		keep = l7_matched_prefix(m, plen);
		w = snprintf(path, sizeof(path), "%s%.*s%s", r->redirect.prefix, (int)(plen - keep),
			     req->path + keep, q);
	} else {
		w = snprintf(path, sizeof(path), "%s", req->path);
	}
	if (w < 0 || (size_t)w >= sizeof(path))
		return -ENOSPC;
	w = snprintf(buf, len, "%s://%s%s%s", scheme, host, portbuf, path);
	return w < 0 || (size_t)w >= len ? -ENOSPC : 0;
}

bool l7_cors_origin_allowed(const struct l7_cors *c, const char *origin)
{
	size_t i;

	for (i = 0; i < c->n_origins; i++) {
		const struct l7_strm *m = &c->origins[i];

		if (m->kind == L7_STR_EXACT && !strcmp(m->value, "*"))
			return true;
		if (l7_strm_match(m, origin))
			return true;
	}
	return false;
}

static const struct l7_retry l7_retry_default = {.attempts = 2, .retry_on = L7_RETRY_DEFAULT};

const struct l7_retry *l7_route_retry(const struct l7_http_route *r)
{
	return r && r->retries_set ? &r->retries : &l7_retry_default;
}

bool l7_retry_on_response(const struct l7_retry *rt, unsigned int status, int grpc_status)
{
	uint32_t on = rt->retry_on;
	size_t i;

	if (((on & L7_RETRY_5XX) && status >= 500 && status <= 599) ||
	    ((on & L7_RETRY_GATEWAY_ERROR) && status >= 502 && status <= 504) ||
	    ((on & L7_RETRY_RETRIABLE_4XX) && status == 409))
		return true;
	for (i = 0; (on & L7_RETRY_RETRIABLE_CODES) && i < rt->n_codes; i++)
		if (rt->codes[i] == status)
			return true;
	switch (grpc_status) {
	case 1:
		return on & L7_RETRY_CANCELLED;
	case 4:
		return on & L7_RETRY_DEADLINE_EXCEEDED;
	case 8:
		return on & L7_RETRY_RESOURCE_EXHAUSTED;
	case 13:
		return on & L7_RETRY_INTERNAL;
	case 14:
		return on & L7_RETRY_UNAVAILABLE;
	default:
		return false;
	}
}

bool l7_retry_on_reset(const struct l7_retry *rt, enum l7_reset why)
{
	uint32_t on = rt->retry_on;

	/* Envoy counts any reset as a 5xx, and a per-try timeout as a 504. */
	if (on & (L7_RETRY_RESET | L7_RETRY_5XX | L7_RETRY_GATEWAY_ERROR))
		return true;
	switch (why) {
	case L7_RESET_CONNECT:
		return on & (L7_RETRY_CONNECT_FAILURE | L7_RETRY_RESET_BEFORE_REQUEST);
	case L7_RESET_REFUSED:
		return on & (L7_RETRY_REFUSED_STREAM | L7_RETRY_RESET_BEFORE_REQUEST);
	case L7_RESET_BEFORE_REQUEST:
		return on & L7_RETRY_RESET_BEFORE_REQUEST;
	default:
		return false;
	}
}
