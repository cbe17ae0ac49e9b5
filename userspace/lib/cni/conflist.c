// SPDX-License-Identifier: Apache-2.0
/*
 * The edit of a node's CNI config that chains zmesh-cni after the primary plugin (cni.h):
 * the node's network stays the primary CNI's, our entry comes last so it sees the final
 * prevResult, the way istio-cni chains itself. A single-plugin .conf becomes a conflist
 * holding it. Text in, text out: the installer in userspace/zmesh-cni owns the files.
 */
#include "cni/cni.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errf.h"

#define ZM_CNI_JSON_OUT (JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE)

static json_object *zm_cni_object_parse(const char *in, size_t len, const char *what, char *err,
					size_t errlen)
{
	struct json_tokener *tok;
	json_object *o;

	if (len > ZM_CNI_MAX_INPUT || memchr(in, '\0', len)) {
		zm_errf(err, errlen, 0, "%s is not a CNI config (too large or binary)", what);
		return NULL;
	}
	tok = json_tokener_new_ex(32);
	if (!tok) {
		zm_errf(err, errlen, 0, "out of memory");
		return NULL;
	}
	o = json_tokener_parse_ex(tok, in, (int)len);
	if (!o || json_tokener_get_error(tok) != json_tokener_success ||
	    !json_object_is_type(o, json_type_object)) {
		zm_errf(err, errlen, 0, "%s is not a JSON object", what);
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

static bool zm_cni_is_ours(json_object *plugin)
{
	json_object *t;

	return json_object_is_type(plugin, json_type_object) &&
	       json_object_object_get_ex(plugin, "type", &t) &&
	       json_object_is_type(t, json_type_string) &&
	       !strcmp(json_object_get_string(t), ZM_CNI_TYPE);
}

/*
 * The conflist form of root (taking root): root itself when it has "plugins", else a new list
 * around the single plugin config root. NULL when root is neither.
 */
static json_object *zm_cni_as_conflist(json_object *root, char *err, size_t errlen)
{
	json_object *v, *list, *plugins;

	if (json_object_object_get_ex(root, "plugins", &v)) {
		if (json_object_is_type(v, json_type_array))
			return root;
		zm_errf(err, errlen, 0, "\"plugins\" is not a list");
		goto fail;
	}
	if (!json_object_object_get_ex(root, "type", &v)) {
		zm_errf(err, errlen, 0,
			"neither a conflist (\"plugins\") nor a plugin config (\"type\")");
		goto fail;
	}
	list = json_object_new_object();
	plugins = json_object_new_array();
	if (!list || !plugins) {
		json_object_put(list);
		json_object_put(plugins);
		zm_errf(err, errlen, 0, "out of memory");
		goto fail;
	}
	if (json_object_object_get_ex(root, "cniVersion", &v))
		json_object_object_add(list, "cniVersion", json_object_get(v));
	if (json_object_object_get_ex(root, "name", &v))
		json_object_object_add(list, "name", json_object_get(v));
	json_object_object_del(root, "cniVersion");
	json_object_object_del(root, "name");
	json_object_array_add(plugins, root);
	json_object_object_add(list, "plugins", plugins);
	return list;
fail:
	json_object_put(root);
	return NULL;
}

static int zm_cni_emit(json_object *list, char **out, char *err, size_t errlen)
{
	if (asprintf(out, "%s\n", json_object_to_json_string_ext(list, ZM_CNI_JSON_OUT)) < 0) {
		*out = NULL;
		return zm_errf(err, errlen, -ENOMEM, "out of memory");
	}
	return 0;
}

/* A new array of plugins without ours; *had counts the entries dropped. */
static json_object *zm_cni_without_ours(json_object *plugins, size_t *had)
{
	json_object *keep = json_object_new_array();
	size_t i, n = json_object_array_length(plugins);

	*had = 0;
	for (i = 0; keep && i < n; i++) {
		json_object *p = json_object_array_get_idx(plugins, i);

		if (zm_cni_is_ours(p))
			(*had)++;
		else
			json_object_array_add(keep, json_object_get(p));
	}
	return keep;
}

int zm_cni_conflist_insert(const char *in, size_t len, const char *entry, char **out, bool *changed,
			   char *err, size_t errlen)
{
	json_object *root, *list, *ent, *plugins, *keep, *last;
	size_t n, had;
	int r = -EINVAL;

	*out = NULL;
	*changed = false;
	ent = zm_cni_object_parse(entry, strlen(entry), "the zmesh-cni entry", err, errlen);
	if (!ent)
		return -EINVAL;
	if (!zm_cni_is_ours(ent)) {
		json_object_put(ent);
		return zm_errf(err, errlen, -EINVAL, "the entry's type is not \"%s\"", ZM_CNI_TYPE);
	}
	root = zm_cni_object_parse(in, len, "the CNI config", err, errlen);
	list = root ? zm_cni_as_conflist(root, err, errlen) : NULL;
	if (!list)
		goto out_ent;
	json_object_object_get_ex(list, "plugins", &plugins);
	n = json_object_array_length(plugins);
	last = n ? json_object_array_get_idx(plugins, n - 1) : NULL;
	keep = zm_cni_without_ours(plugins, &had);
	if (!keep) {
		r = zm_errf(err, errlen, -ENOMEM, "out of memory");
		goto out_list;
	}
	if (!(had == 1 && zm_cni_is_ours(last) && json_object_equal(last, ent) && list == root)) {
		/* Absent, stale, not last, duplicated, or a .conf to convert: write it anew. */
		*changed = true;
		json_object_array_add(keep, json_object_get(ent));
		json_object_object_add(list, "plugins", keep);
	} else {
		json_object_put(keep);
	}
	r = zm_cni_emit(list, out, err, errlen);
out_list:
	json_object_put(list);
out_ent:
	json_object_put(ent);
	return r;
}

int zm_cni_conflist_remove(const char *in, size_t len, char **out, bool *changed, char *err,
			   size_t errlen)
{
	json_object *root, *list, *plugins, *keep;
	size_t had;
	int r;

	*out = NULL;
	*changed = false;
	root = zm_cni_object_parse(in, len, "the CNI config", err, errlen);
	list = root ? zm_cni_as_conflist(root, err, errlen) : NULL;
	if (!list)
		return -EINVAL;
	json_object_object_get_ex(list, "plugins", &plugins);
	keep = zm_cni_without_ours(plugins, &had);
	if (!keep) {
		json_object_put(list);
		return zm_errf(err, errlen, -ENOMEM, "out of memory");
	}
	if (had) {
		*changed = true;
		json_object_object_add(list, "plugins", keep);
	} else {
		json_object_put(keep);
	}
	r = zm_cni_emit(list, out, err, errlen);
	json_object_put(list);
	return r;
}
