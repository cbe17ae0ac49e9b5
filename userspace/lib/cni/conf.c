// SPDX-License-Identifier: Apache-2.0
/*
 * What a runtime hands zmesh-cni (cni.h): the network config JSON on stdin with its
 * prevResult, and CNI_ARGS; plus the VERSION answer, the error object and the result printed
 * back. Parsing is strict about our own fields and the parts of prevResult we use (a wrong
 * type is a refusal, never a guess), and tolerant of everything else, because every runtime
 * adds keys of its own. Input is bounded (ZM_CNI_MAX_INPUT, json-c depth 32), never trusted to
 * be text (a NUL byte is refused) and never read past len.
 */
#include "cni/cni.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "common/errf.h"

#define ZM_CNI_JSON_DEPTH 32
#define ZM_CNI_JSON_OUT	  (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

static const char *const zm_cni_versions[] = {"0.3.0", "0.3.1", "0.4.0", "1.0.0"};

bool zm_cni_version_supported(const char *v)
{
	size_t i;

	for (i = 0; v && i < sizeof(zm_cni_versions) / sizeof(zm_cni_versions[0]); i++)
		if (!strcmp(v, zm_cni_versions[i]))
			return true;
	return false;
}

const char *zm_cni_version_json(void)
{
	return "{\"cniVersion\":\"1.0.0\",\"supportedVersions\":[\"0.3.0\",\"0.3.1\",\"0.4.0\","
	       "\"1.0.0\"]}\n";
}

/* Parses exactly buf[0..len) as one JSON value (surrounding white space allowed). */
static json_object *zm_cni_json_parse(const char *buf, size_t len, char *err, size_t errlen)
{
	struct json_tokener *tok;
	json_object *o;
	size_t off;

	if (len > ZM_CNI_MAX_INPUT) {
		zm_errf(err, errlen, 0, "input of %zu bytes is larger than %u", len,
			ZM_CNI_MAX_INPUT);
		return NULL;
	}
	if (!len || memchr(buf, '\0', len)) {
		zm_errf(err, errlen, 0, len ? "input holds a NUL byte" : "input is empty");
		return NULL;
	}
	tok = json_tokener_new_ex(ZM_CNI_JSON_DEPTH);
	if (!tok) {
		zm_errf(err, errlen, 0, "out of memory");
		return NULL;
	}
	o = json_tokener_parse_ex(tok, buf, (int)len);
	if (!o || json_tokener_get_error(tok) != json_tokener_success) {
		zm_errf(err, errlen, 0, "not JSON: %s at offset %zu",
			json_tokener_error_desc(json_tokener_get_error(tok)),
			json_tokener_get_parse_end(tok));
		json_object_put(o);
		json_tokener_free(tok);
		return NULL;
	}
	off = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	while (off < len && strchr(" \t\r\n", buf[off]))
		off++;
	if (off != len) {
		zm_errf(err, errlen, 0, "unexpected data after the JSON value at offset %zu", off);
		json_object_put(o);
		return NULL;
	}
	return o;
}

/* Copies the string field key of o into dst. 0 absent, 1 copied, -1 wrong type or too long. */
static int zm_cni_str(json_object *o, const char *key, char *dst, size_t size, char *err,
		      size_t errlen)
{
	json_object *v;
	const char *s;

	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return zm_errf(err, errlen, -1, "%s must be a string", key);
	s = json_object_get_string(v);
	if ((size_t)json_object_get_string_len(v) >= size ||
	    strlen(s) != (size_t)json_object_get_string_len(v))
		return zm_errf(err, errlen, -1, "%s is longer than %zu characters", key, size - 1);
	memcpy(dst, s, strlen(s) + 1);
	return 1;
}

static int zm_cni_own_fields(json_object *root, struct zm_cni_conf *c, char *err, size_t errlen)
{
	json_object *v, *e;
	size_t i, n;

	if (zm_cni_str(root, "socketPath", c->socket_path, sizeof(c->socket_path), err, errlen) <
		0 ||
	    zm_cni_str(root, "defaultNamespace", c->default_ns, sizeof(c->default_ns), err,
		       errlen) < 0)
		return ZM_CNI_E_CONFIG;
	if (!c->socket_path[0] || c->socket_path[0] != '/')
		return zm_errf(err, errlen, ZM_CNI_E_CONFIG,
			       "socketPath must be an absolute path, got \"%.64s\"",
			       c->socket_path);
	if (json_object_object_get_ex(root, "agentWaitSeconds", &v)) {
		int64_t w = json_object_get_int64(v);

		if (!json_object_is_type(v, json_type_int) || w < 0 || w > ZM_CNI_WAIT_MAX)
			return zm_errf(err, errlen, ZM_CNI_E_CONFIG,
				       "agentWaitSeconds must be an integer from 0 to %d",
				       ZM_CNI_WAIT_MAX);
		c->agent_wait_s = (int)w;
	}
	if (!json_object_object_get_ex(root, "excludeNamespaces", &v) ||
	    json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_array))
		return zm_errf(err, errlen, ZM_CNI_E_CONFIG,
			       "excludeNamespaces must be a list of strings");
	n = json_object_array_length(v);
	if (n > ZM_CNI_MAX_EXCLUDE)
		return zm_errf(err, errlen, ZM_CNI_E_CONFIG,
			       "excludeNamespaces holds %zu names, at most %d", n,
			       ZM_CNI_MAX_EXCLUDE);
	for (i = 0; i < n; i++) {
		const char *s;

		e = json_object_array_get_idx(v, i);
		s = json_object_get_string(e);
		if (!json_object_is_type(e, json_type_string) || !*s ||
		    strlen(s) >= ZM_CNI_NAME_LEN)
			return zm_errf(err, errlen, ZM_CNI_E_CONFIG,
				       "excludeNamespaces[%zu] must be a namespace name", i);
		memcpy(c->exclude[c->n_exclude++], s, strlen(s) + 1);
	}
	return 0;
}

/* Is interface idx of prevResult the container's (has a sandbox; named ifname when given)? */
static int zm_cni_iface_is_ours(json_object *ifaces, int64_t idx, const char *ifname, bool *ours,
				char *err, size_t errlen)
{
	json_object *itf, *v;

	if (!ifaces || idx < 0 || (size_t)idx >= json_object_array_length(ifaces))
		return zm_errf(err, errlen, ZM_CNI_E_CONFIG,
			       "prevResult.ips[].interface %lld names no interface",
			       (long long)idx);
	itf = json_object_array_get_idx(ifaces, (size_t)idx);
	if (!json_object_is_type(itf, json_type_object))
		return zm_errf(err, errlen, ZM_CNI_E_CONFIG,
			       "prevResult.interfaces[%lld] is not an object", (long long)idx);
	*ours = json_object_object_get_ex(itf, "sandbox", &v) &&
		json_object_is_type(v, json_type_string) && json_object_get_string_len(v) > 0;
	if (*ours && ifname && *ifname)
		*ours = json_object_object_get_ex(itf, "name", &v) &&
			json_object_is_type(v, json_type_string) &&
			!strcmp(json_object_get_string(v), ifname);
	return 0;
}

/* One prevResult.ips[] entry: its address when it is on the container interface. */
static int zm_cni_ip(json_object *ip, json_object *ifaces, size_t i, const char *ifname,
		     struct zm_cni_conf *c, char *err, size_t errlen)
{
	struct zm_addr a;
	json_object *v;
	unsigned int plen;
	bool ours = true;
	int r;

	if (!json_object_is_type(ip, json_type_object))
		return zm_errf(err, errlen, ZM_CNI_E_CONFIG, "prevResult.ips[%zu] is not an object",
			       i);
	if (json_object_object_get_ex(ip, "interface", &v)) {
		if (!json_object_is_type(v, json_type_int))
			return zm_errf(err, errlen, ZM_CNI_E_CONFIG,
				       "prevResult.ips[%zu].interface must be an integer", i);
		r = zm_cni_iface_is_ours(ifaces, json_object_get_int64(v), ifname, &ours, err,
					 errlen);
		if (r)
			return r;
	}
	if (!json_object_object_get_ex(ip, "address", &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    zm_cidr_parse(json_object_get_string(v), false, &a, &plen))
		return zm_errf(err, errlen, ZM_CNI_E_CONFIG,
			       "prevResult.ips[%zu].address must be an address with its prefix "
			       "length (\"198.18.1.5/24\")",
			       i);
	if (!ours)
		return 0;
	if (c->n_addrs >= ZM_CNI_MAX_ADDRS)
		return zm_errf(err, errlen, ZM_CNI_E_CONFIG,
			       "prevResult lists more than %d addresses for the pod",
			       ZM_CNI_MAX_ADDRS);
	c->addrs[c->n_addrs++] = a;
	return 0;
}

static int zm_cni_prev(json_object *prev, const char *ifname, struct zm_cni_conf *c, char *err,
		       size_t errlen)
{
	json_object *ips = NULL, *ifaces = NULL;
	size_t i;
	int r;

	if (!json_object_is_type(prev, json_type_object))
		return zm_errf(err, errlen, ZM_CNI_E_CONFIG, "prevResult must be an object");
	if (json_object_object_get_ex(prev, "interfaces", &ifaces) &&
	    !json_object_is_type(ifaces, json_type_array))
		return zm_errf(err, errlen, ZM_CNI_E_CONFIG,
			       "prevResult.interfaces must be a list");
	if (json_object_object_get_ex(prev, "ips", &ips) &&
	    !json_object_is_type(ips, json_type_array))
		return zm_errf(err, errlen, ZM_CNI_E_CONFIG, "prevResult.ips must be a list");
	for (i = 0; ips && i < json_object_array_length(ips); i++) {
		r = zm_cni_ip(json_object_array_get_idx(ips, i), ifaces, i, ifname, c, err, errlen);
		if (r)
			return r;
	}
	c->prev_json = strdup(json_object_to_json_string_ext(prev, ZM_CNI_JSON_OUT));
	if (!c->prev_json)
		return zm_errf(err, errlen, ZM_CNI_E_IO, "out of memory");
	c->has_prev = true;
	return 0;
}

int zm_cni_conf_parse(const char *buf, size_t len, const char *ifname, struct zm_cni_conf *c,
		      char *err, size_t errlen)
{
	json_object *root, *prev;
	int r;

	memset(c, 0, sizeof(*c));
	snprintf(c->socket_path, sizeof(c->socket_path), "%s", ZM_CNI_SOCKET_DEFAULT);
	c->agent_wait_s = ZM_CNI_WAIT_DEFAULT;
	root = zm_cni_json_parse(buf, len, err, errlen);
	if (!root)
		return ZM_CNI_E_DECODE;
	r = ZM_CNI_E_DECODE;
	if (!json_object_is_type(root, json_type_object)) {
		zm_errf(err, errlen, 0, "the network config must be a JSON object");
		goto out;
	}
	r = ZM_CNI_E_VERSION;
	if (zm_cni_str(root, "cniVersion", c->cni_version, sizeof(c->cni_version), err, errlen) <=
	    0) {
		if (!c->cni_version[0])
			zm_errf(err, errlen, 0, "the network config has no cniVersion string");
		goto out;
	}
	if (!zm_cni_version_supported(c->cni_version)) {
		zm_errf(err, errlen, 0, "cniVersion \"%s\" is not supported (want 0.3.0 to 1.0.0)",
			c->cni_version);
		goto out;
	}
	r = ZM_CNI_E_CONFIG;
	if (zm_cni_str(root, "name", c->name, sizeof(c->name), err, errlen) < 0)
		goto out;
	r = zm_cni_own_fields(root, c, err, errlen);
	if (r)
		goto out;
	if (json_object_object_get_ex(root, "prevResult", &prev) &&
	    !json_object_is_type(prev, json_type_null))
		r = zm_cni_prev(prev, ifname, c, err, errlen);
out:
	json_object_put(root);
	return r;
}

void zm_cni_conf_free(struct zm_cni_conf *c)
{
	free(c->prev_json);
	c->prev_json = NULL;
}

void zm_cni_pod_default_ns(const struct zm_cni_conf *c, struct zm_cni_pod *pod)
{
	if (!pod->k8s && pod->name[0] && !pod->namespace[0] && c->default_ns[0]) {
		memcpy(pod->namespace, c->default_ns, sizeof(pod->namespace));
		pod->k8s = true;
	}
}

bool zm_cni_excluded(const struct zm_cni_conf *c, const char *ns)
{
	size_t i;

	for (i = 0; i < c->n_exclude; i++)
		if (!strcmp(c->exclude[i], ns))
			return true;
	return false;
}

/* Copies one CNI_ARGS value of vlen bytes into dst. 0 or ZM_CNI_E_ENV. */
static int zm_cni_arg_copy(char *dst, size_t size, const char *key, const char *v, size_t vlen,
			   char *err, size_t errlen)
{
	if (vlen >= size)
		return zm_errf(err, errlen, ZM_CNI_E_ENV, "CNI_ARGS: %s is longer than %zu", key,
			       size - 1);
	memcpy(dst, v, vlen);
	dst[vlen] = '\0';
	return 0;
}

int zm_cni_args_parse(const char *args, struct zm_cni_pod *pod, char *err, size_t errlen)
{
	const char *p = args, *end, *eq;
	size_t klen;
	int r = 0;

	memset(pod, 0, sizeof(*pod));
	while (p && *p && !r) {
		end = strchr(p, ';');
		if (!end)
			end = p + strlen(p);
		eq = memchr(p, '=', (size_t)(end - p));
		if (end == p) {
			p = end + 1;
			continue;
		}
		if (!eq)
			return zm_errf(err, errlen, ZM_CNI_E_ENV,
				       "CNI_ARGS: \"%.*s\" is not KEY=VALUE",
				       (int)(end - p > 64 ? 64 : end - p), p);
		klen = (size_t)(eq - p);
		eq++;
		if (klen == 17 && !strncmp(p, "K8S_POD_NAMESPACE", klen))
			r = zm_cni_arg_copy(pod->namespace, sizeof(pod->namespace),
					    "K8S_POD_NAMESPACE", eq, (size_t)(end - eq), err,
					    errlen);
		else if (klen == 12 && !strncmp(p, "K8S_POD_NAME", klen))
			r = zm_cni_arg_copy(pod->name, sizeof(pod->name), "K8S_POD_NAME", eq,
					    (size_t)(end - eq), err, errlen);
		else if (klen == 11 && !strncmp(p, "K8S_POD_UID", klen))
			r = zm_cni_arg_copy(pod->uid, sizeof(pod->uid), "K8S_POD_UID", eq,
					    (size_t)(end - eq), err, errlen);
		p = *end ? end + 1 : end;
	}
	pod->k8s = !r && pod->namespace[0] && pod->name[0];
	return r;
}

char *zm_cni_error_json(const char *version, int code, const char *msg, const char *details)
{
	json_object *o = json_object_new_object();
	char *out = NULL;

	if (!o)
		return NULL;
	json_object_object_add(
	    o, "cniVersion",
	    json_object_new_string(zm_cni_version_supported(version) ? version : "1.0.0"));
	json_object_object_add(o, "code", json_object_new_int(code));
	json_object_object_add(o, "msg", json_object_new_string(msg ? msg : ""));
	json_object_object_add(o, "details", json_object_new_string(details ? details : ""));
	if (asprintf(&out, "%s\n", json_object_to_json_string_ext(o, ZM_CNI_JSON_OUT)) < 0)
		out = NULL;
	json_object_put(o);
	return out;
}

char *zm_cni_result_json(const struct zm_cni_conf *c)
{
	json_object *o;
	char *out = NULL;

	if (!c->prev_json)
		return NULL;
	o = json_tokener_parse(c->prev_json);
	if (!o)
		return NULL;
	json_object_object_add(o, "cniVersion", json_object_new_string(c->cni_version));
	if (asprintf(&out, "%s\n", json_object_to_json_string_ext(o, ZM_CNI_JSON_OUT)) < 0)
		out = NULL;
	json_object_put(o);
	return out;
}
