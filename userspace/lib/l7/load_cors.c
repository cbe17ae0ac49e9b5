// SPDX-License-Identifier: Apache-2.0
/*
 * corsPolicy reader, as Istio translates it into Envoy's CORS filter (TranslateCORSPolicy):
 * allowOrigins as string matches (the deprecated allowOrigin as exact ones), methods, headers
 * and exposed headers joined with ",", maxAge in whole seconds, allowCredentials, and
 * unmatchedPreflights (FORWARD, Istio's default, or IGNORE).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "l7/internal.h"

/* An allowOrigins item (l7_item_fn): a StringMatch that is not empty. */
static int l7_origin_item(struct l7_ld *ld, yaml_node_t *it, void *elem, void *ctx)
{
	struct l7_strm *m = elem;
	int ret;

	(void)ctx;
	ret = l7_strmatch(ld, it, m);
	if (!ret && !m->value[0]) {
		zm_yl_error(&ld->yl, it, "an empty origin is not a valid match");
		ret = -EINVAL;
	}
	return ret;
}

/* A list of scalars joined with "," into the arena (NULL when absent or empty). */
static int l7_joined_at(struct l7_ld *ld, yaml_node_t *n, const char *key, const char **out)
{
	const char **v = NULL;
	size_t k = 0, i, len = 0;
	char *s;
	int ret = l7_strlist_at(ld, n, key, &v, &k);

	if (ret || !k)
		return ret;
	for (i = 0; i < k; i++)
		len += strlen(v[i]) + 1;
	s = l7_alloc(ld->cfg, len + 1);
	if (!s) {
		ld->oom = true;
		return -ENOMEM;
	}
	for (i = 0; i < k; i++) {
		if (i)
			strcat(s, ",");
		strcat(s, v[i]);
	}
	*out = s;
	return 0;
}

int l7_cors_load(struct l7_ld *ld, yaml_node_t *n, void *out)
{
	static const char *const known[] = {
	    "allowOrigins",	"allowOrigin",	       "allowMethods",
	    "allowHeaders",	"exposeHeaders",       "maxAge",
	    "allowCredentials", "unmatchedPreflights", NULL};
	struct l7_cors *c = out;
	const char **exact = NULL, *unmatched = NULL;
	size_t n_exact = 0, i;
	uint32_t max_age_ms = 0;
	char buf[24];
	int ret = l7_map_check(ld, n, known);

	c->set = true;
	c->forward_unmatched = true;
	ret = l7_list_at(ld, n, "allowOrigins", sizeof(*c->origins), l7_origin_item, NULL,
			 (void **)&c->origins, &c->n_origins)
		  ?: ret;
	ret = l7_strlist_at(ld, n, "allowOrigin", &exact, &n_exact) ?: ret;
	if (!c->n_origins && n_exact) {
		c->origins = l7_alloc(ld->cfg, (n_exact + 1) * sizeof(*c->origins));
		if (!c->origins) {
			ld->oom = true;
			return -ENOMEM;
		}
		for (i = 0; i < n_exact; i++)
			c->origins[i] = (struct l7_strm){.kind = L7_STR_EXACT, .value = exact[i]};
		c->n_origins = n_exact;
	}
	ret = l7_joined_at(ld, n, "allowMethods", &c->methods) ?: ret;
	ret = l7_joined_at(ld, n, "allowHeaders", &c->headers) ?: ret;
	ret = l7_joined_at(ld, n, "exposeHeaders", &c->expose) ?: ret;
	ret = l7_bool_at(ld, n, "allowCredentials", &c->credentials) ?: ret;
	ret = l7_duration_at(ld, n, "maxAge", &max_age_ms) ?: ret;
	if (zm_yl_get(&ld->yl, n, "maxAge")) {
		if (max_age_ms % 1000) {
			zm_yl_error_at(&ld->yl, zm_yl_get(&ld->yl, n, "maxAge"), "maxAge",
				       "max_age duration is accurate only to seconds precision");
			ret = -EINVAL;
		}
		snprintf(buf, sizeof(buf), "%u", max_age_ms / 1000);
		c->max_age = l7_strdup(ld->cfg, buf);
	}
	ret = l7_str_at(ld, n, "unmatchedPreflights", &unmatched) ?: ret;
	if (unmatched && !strcmp(unmatched, "IGNORE"))
		c->forward_unmatched = false;
	else if (unmatched && strcmp(unmatched, "FORWARD") && strcmp(unmatched, "UNSPECIFIED")) {
		zm_yl_error_at(&ld->yl, zm_yl_get(&ld->yl, n, "unmatchedPreflights"),
			       "unmatchedPreflights", "want FORWARD or IGNORE");
		ret = -EINVAL;
	}
	return ret;
}
