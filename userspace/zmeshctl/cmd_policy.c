// SPDX-License-Identifier: Apache-2.0
/*
 * zmeshctl policy list | set: the L4 policy fast path's rule set (datapath.h,
 * zm_dp_policy_*). `set` replaces the whole set, for manual use and tests (ztunnel's RBAC
 * compiler writes the same rules through the library); `list` shows each policy's rules and
 * its drop counters at tc and XDP.
 *
 * A rule in JSON (`set --file`): {"policy": "ns/name", "dst": "198.18.0.2", "dst_port": 80,
 * "src": "198.18.1.0/24", "action": "drop"}; dst_port 0 or absent and src "any" or absent
 * mean any; action "drop" (default) or "defer". The file holds an array of rules or an object
 * {"rules": [...]}. On the command line (`set --rule`) the same keys as key=value pairs
 * separated by commas, with port for dst_port and a bare "defer".
 */
#include "zmeshctl.h"

#include "common/addr.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLI_MAX_RULES ZM_MAX_POL_RULES

/* "198.18.1.0/24", "198.18.1.1" (a host) or "any" into the rule's source. */
static int policy_src_parse(const char *s, struct zm_dp_policy_rule *r)
{
	if (!strcmp(s, "any")) {
		r->src_prefix = 0;
		return 0;
	}
	if (strchr(s, '/'))
		return zm_cidr_parse(s, false, &r->src, &r->src_prefix);
	if (zm_addr_parse(s, &r->src))
		return -EINVAL;
	r->src_prefix = r->src.family == ZM_AF_INET ? 32 : 128;
	return 0;
}

static int policy_port_parse(const char *s, __u16 *port)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (!*s || *end || v > 65535)
		return -EINVAL;
	*port = (__u16)v;
	return 0;
}

/* One --rule argument: policy=..,dst=..[,port=..][,src=..][,defer|,drop]. */
static int policy_rule_parse_cli(struct cli *c, char *arg, struct zm_dp_policy_rule *r)
{
	char *save = NULL, *tok, *val;
	bool have_dst = false;

	memset(r, 0, sizeof(*r));
	for (tok = strtok_r(arg, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		val = strchr(tok, '=');
		if (val)
			*val++ = '\0';
		if (!strcmp(tok, "defer") && !val)
			r->defer = true;
		else if (!strcmp(tok, "drop") && !val)
			r->defer = false;
		else if (!val)
			return cli_usage_fail(c, "--rule: %s needs a value", tok);
		else if (!strcmp(tok, "policy"))
			snprintf(r->policy, sizeof(r->policy), "%s", val);
		else if (!strcmp(tok, "dst") && !zm_addr_parse(val, &r->dst))
			have_dst = true;
		else if (!strcmp(tok, "port") && !policy_port_parse(val, &r->dst_port))
			continue;
		else if (!strcmp(tok, "src") && !policy_src_parse(val, r))
			continue;
		else
			return cli_usage_fail(c, "--rule: bad %s=%s", tok, val);
	}
	if (!r->policy[0] || !have_dst)
		return cli_usage_fail(c, "--rule needs policy= and dst=");
	return CLI_OK;
}

/* One JSON rule object. */
static int policy_rule_parse_json(struct cli *c, json_object *o, size_t i,
				  struct zm_dp_policy_rule *r)
{
	json_object *v;
	const char *s;

	memset(r, 0, sizeof(*r));
	if (!json_object_is_type(o, json_type_object))
		return cli_fail(c, "rule %zu is not an object", i);
	if (!json_object_object_get_ex(o, "policy", &v) ||
	    !json_object_is_type(v, json_type_string))
		return cli_fail(c, "rule %zu has no \"policy\" string", i);
	snprintf(r->policy, sizeof(r->policy), "%s", json_object_get_string(v));
	if (!json_object_object_get_ex(o, "dst", &v) ||
	    zm_addr_parse(json_object_get_string(v), &r->dst))
		return cli_fail(c, "rule %zu (%s): \"dst\" is not an address", i, r->policy);
	if (json_object_object_get_ex(o, "dst_port", &v)) {
		int port = json_object_get_int(v);

		if (!json_object_is_type(v, json_type_int) || port < 0 || port > 65535)
			return cli_fail(c, "rule %zu (%s): bad \"dst_port\"", i, r->policy);
		r->dst_port = (__u16)port;
	}
	if (json_object_object_get_ex(o, "src", &v) &&
	    policy_src_parse(json_object_get_string(v), r))
		return cli_fail(c, "rule %zu (%s): \"src\" is not a CIDR", i, r->policy);
	if (json_object_object_get_ex(o, "action", &v)) {
		s = json_object_get_string(v);
		if (strcmp(s, "drop") && strcmp(s, "defer"))
			return cli_fail(c, "rule %zu (%s): action is drop or defer", i, r->policy);
		r->defer = !strcmp(s, "defer");
	}
	return CLI_OK;
}

static int policy_file_read(struct cli *c, const char *path, struct zm_dp_policy_rule *rules,
			    size_t *n)
{
	json_object *root, *arr;
	size_t len;
	int ret = CLI_OK;

	root = strcmp(path, "-") ? json_object_from_file(path) : json_object_from_fd(0);
	if (!root)
		return cli_fail(c, "%s: not readable JSON: %s", path, json_util_get_last_err());
	arr = root;
	if (json_object_is_type(root, json_type_object))
		json_object_object_get_ex(root, "rules", &arr);
	if (!arr || !json_object_is_type(arr, json_type_array)) {
		json_object_put(root);
		return cli_fail(c, "%s: expected an array of rules or {\"rules\": [...]}", path);
	}
	len = json_object_array_length(arr);
	if (*n + len > CLI_MAX_RULES)
		ret = cli_fail(c, "%s: more than %u rules", path, CLI_MAX_RULES);
	for (size_t i = 0; i < len && ret == CLI_OK; i++)
		ret =
		    policy_rule_parse_json(c, json_object_array_get_idx(arr, i), i, &rules[(*n)++]);
	json_object_put(root);
	return ret;
}

static json_object *policy_rule_json(const struct zm_dp_policy_rule *r)
{
	json_object *o = json_object_new_object();
	char buf[ZM_ADDR_STRLEN + 8];

	json_object_object_add(o, "policy", json_object_new_string(r->policy));
	json_object_object_add(o, "dst", dec_addr(&r->dst));
	json_object_object_add(o, "dst_port", json_object_new_int(r->dst_port));
	if (r->src_prefix) {
		zm_addr_format(&r->src, buf, ZM_ADDR_STRLEN);
		snprintf(buf + strlen(buf), 8, "/%u", r->src_prefix);
		json_object_object_add(o, "src", json_object_new_string(buf));
	} else {
		json_object_object_add(o, "src", json_object_new_string("any"));
	}
	json_object_object_add(o, "action", json_object_new_string(r->defer ? "defer" : "drop"));
	return o;
}

static void policy_set_human(json_object *o)
{
	printf("policy fast path: %s rule(s) of %s policy(ies) installed (serial %s)\n",
	       cli_json_str(o, "rules"), cli_json_str(o, "policies"), cli_json_str(o, "serial"));
}

int cmd_policy_set(struct cli *c, int argc, char **argv)
{
	enum { OPT_FILE = CLI_OPT_CMD_FIRST, OPT_RULE };
	static const struct option own[] = {
	    {"file", required_argument, NULL, OPT_FILE},
	    {"rule", required_argument, NULL, OPT_RULE},
	    {NULL, 0, NULL, 0},
	};
	static struct zm_dp_policy_rule rules[CLI_MAX_RULES];
	static struct zm_dp_policy_stat stats[ZM_MAX_POLICIES];
	size_t n = 0, n_pol = 0, n_live = 0;
	__u64 serial = 0;
	json_object *o;
	int opt, ret;

	while ((opt = cli_getopt(c, argc, argv, own)) != -1) {
		if (opt == '?')
			return CLI_USAGE;
		if (opt == OPT_FILE)
			ret = policy_file_read(c, optarg, rules, &n);
		else if (n == CLI_MAX_RULES)
			ret = cli_usage_fail(c, "more than %u rules", CLI_MAX_RULES);
		else
			ret = policy_rule_parse_cli(c, optarg, &rules[n++]);
		if (ret != CLI_OK)
			return ret;
	}
	if (optind < argc)
		return cli_usage_fail(c, "unexpected argument %s", argv[optind]);
	if (cli_prepare(c))
		return CLI_ERR;
	ret = zm_dp_policy_replace(&c->dp, rules, n) ?:
	      zm_dp_policy_stats(&c->dp, stats, ZM_MAX_POLICIES, &n_pol) ?:
	      zm_dp_policy_list(&c->dp, NULL, 0, &n_live, &serial);
	if (ret)
		return cli_dp_fail(c, ret);
	o = json_object_new_object();
	json_object_object_add(o, "rules", json_object_new_int64((int64_t)n_live));
	json_object_object_add(o, "policies", json_object_new_int64((int64_t)n_pol));
	json_object_object_add(o, "serial", json_object_new_int64((int64_t)serial));
	return cli_emit(c, o, policy_set_human);
}

static void policy_list_human(json_object *o)
{
	static const char *const keys[] = {"policy", "n_rules", "tc_drops", "xdp_drops", NULL};
	static const char *const heads[] = {"POLICY", "RULES", "TC_DROPS", "XDP_DROPS", NULL};
	static const int w[] = {40, 6, 10};
	static const char *const rkeys[] = {"action", "dst", "dst_port", "src", NULL};
	static const int rw[] = {6, 40, 6};
	json_object *arr, *rules;

	printf("rule set serial %s\n", cli_json_str(o, "serial"));
	cli_print_table_row(NULL, heads, w);
	json_object_object_get_ex(o, "policies", &arr);
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *p = json_object_array_get_idx(arr, i);

		cli_print_table_row(p, keys, w);
		json_object_object_get_ex(p, "rules", &rules);
		for (size_t j = 0; j < json_object_array_length(rules); j++) {
			printf("    ");
			cli_print_table_row(json_object_array_get_idx(rules, j), rkeys, rw);
		}
	}
}

/* The policies with their counters, each with its live rules. */
static json_object *policy_list_json(const struct zm_dp_policy_stat *st, size_t n_st,
				     const struct zm_dp_policy_rule *rules, size_t n_rules)
{
	json_object *arr = json_object_new_array();

	for (size_t i = 0; i < n_st; i++) {
		json_object *p = json_object_new_object(), *ra = json_object_new_array();

		json_object_object_add(p, "policy", json_object_new_string(st[i].policy));
		json_object_object_add(p, "index", json_object_new_int64(st[i].index));
		json_object_object_add(p, "n_rules", json_object_new_int64(st[i].n_rules));
		json_object_object_add(p, "tc_drops",
				       json_object_new_int64((int64_t)st[i].tc_drops));
		json_object_object_add(p, "xdp_drops",
				       json_object_new_int64((int64_t)st[i].xdp_drops));
		json_object_object_add(
		    p, "drops", json_object_new_int64((int64_t)(st[i].tc_drops + st[i].xdp_drops)));
		for (size_t j = 0; j < n_rules; j++)
			if (!strcmp(rules[j].policy, st[i].policy))
				json_object_array_add(ra, policy_rule_json(&rules[j]));
		json_object_object_add(p, "rules", ra);
		json_object_array_add(arr, p);
	}
	return arr;
}

int cmd_policy_list(struct cli *c, int argc, char **argv)
{
	static struct zm_dp_policy_rule rules[2 * ZM_MAX_POL_RULES];
	static struct zm_dp_policy_stat stats[ZM_MAX_POLICIES];
	size_t n_st = 0, n_rules = 0;
	__u64 serial = 0;
	json_object *o;
	int err;

	if ((err = cli_begin_bare(c, argc, argv)))
		return err;
	err = zm_dp_policy_stats(&c->dp, stats, ZM_MAX_POLICIES, &n_st)
		  ?: zm_dp_policy_list(&c->dp, rules, 2 * ZM_MAX_POL_RULES, &n_rules, &serial);
	if (err)
		return cli_dp_fail(c, err);
	if (n_rules > 2 * ZM_MAX_POL_RULES)
		n_rules = 2 * ZM_MAX_POL_RULES;
	o = json_object_new_object();
	json_object_object_add(o, "serial", json_object_new_int64((int64_t)serial));
	json_object_object_add(o, "policies", policy_list_json(stats, n_st, rules, n_rules));
	return cli_emit(c, o, policy_list_human);
}
