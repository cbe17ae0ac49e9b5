// SPDX-License-Identifier: Apache-2.0
/*
 * zmeshctl enroll | unenroll | workload list. Input is validated here (addresses parse,
 * identity fields fit the pinned record, the pod netns exists) so the library only ever
 * sees well-formed requests; the library checks the node-side facts (veth, conflicts).
 */
#include "zmeshctl.h"

#include "common/addr.h"
#include "common/netns.h"

#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Copy an identity field into its fixed-size slot, refusing (not truncating) long values. */
static int enroll_field(struct cli *c, char *dst, size_t len, const char *what, const char *v)
{
	if (strlen(v) >= len)
		return cli_usage_fail(c, "%s \"%s\" is longer than %zu characters", what, v,
				      len - 1);
	strcpy(dst, v);
	return 0;
}

static void enroll_human(json_object *o)
{
	json_object *arr;

	json_object_object_get_ex(o, "addresses", &arr);
	printf("enrolled");
	for (size_t i = 0; i < json_object_array_length(arr); i++)
		printf("%s %s", i ? "," : "",
		       json_object_get_string(json_object_array_get_idx(arr, i)));
	printf(" on %s (%s/%s)\n", cli_json_str(o, "veth"), cli_json_str(o, "namespace"),
	       cli_json_str(o, "name"));
}

static int enroll_parse(struct cli *c, int argc, char **argv, struct zm_dp_enroll *e)
{
	enum {
		O_IP = CLI_OPT_CMD_FIRST,
		O_VETH,
		O_NAME,
		O_NS,
		O_SA,
		O_TD,
		O_NODE,
		O_PODNS,
		O_CGROUP,
		O_NOHBONE
	};
	static const struct option own[] = {
	    {"ip", required_argument, NULL, O_IP},
	    {"veth", required_argument, NULL, O_VETH},
	    {"name", required_argument, NULL, O_NAME},
	    {"namespace", required_argument, NULL, O_NS},
	    {"service-account", required_argument, NULL, O_SA},
	    {"trust-domain", required_argument, NULL, O_TD},
	    {"node", required_argument, NULL, O_NODE},
	    {"pod-netns", required_argument, NULL, O_PODNS},
	    {"cgroup", required_argument, NULL, O_CGROUP},
	    {"no-hbone", no_argument, NULL, O_NOHBONE},
	    {NULL, 0, NULL, 0},
	};
	struct zm_workload_info *in = &e->info;
	char path[256];
	int opt, r = 0;

	e->hbone = true;
	while (!r && (opt = cli_getopt(c, argc, argv, own)) != -1) {
		switch (opt) {
		case O_IP:
			if (e->n_addrs == ZM_DP_MAX_ADDRS)
				return cli_usage_fail(c, "at most %d --ip", ZM_DP_MAX_ADDRS);
			if (zm_addr_parse(optarg, &e->addrs[e->n_addrs]))
				return cli_usage_fail(c, "--ip %s is not an IPv4 or IPv6 address",
						      optarg);
			e->n_addrs++;
			break;
		case O_VETH:
			if (strlen(optarg) >= ZM_IFNAME_LEN)
				return cli_usage_fail(c,
						      "--veth %s: interface names have at most %d "
						      "characters",
						      optarg, ZM_IFNAME_LEN - 1);
			e->veth = optarg;
			break;
		case O_NAME:
			r = enroll_field(c, in->name, sizeof(in->name), "--name", optarg);
			break;
		case O_NS:
			r = enroll_field(c, in->namespace, sizeof(in->namespace), "--namespace",
					 optarg);
			break;
		case O_SA:
			r = enroll_field(c, in->service_account, sizeof(in->service_account),
					 "--service-account", optarg);
			break;
		case O_TD:
			r = enroll_field(c, in->trust_domain, sizeof(in->trust_domain),
					 "--trust-domain", optarg);
			break;
		case O_NODE:
			r = enroll_field(c, in->node, sizeof(in->node), "--node", optarg);
			break;
		case O_PODNS:
			if (zm_netns_resolve(optarg, path, sizeof(path)))
				return cli_usage_fail(
				    c, "--pod-netns %s is not a namespace name or path", optarg);
			r = enroll_field(c, in->netns, sizeof(in->netns), "--pod-netns", path);
			break;
		case O_CGROUP:
			e->cgroup_path = optarg;
			break;
		case O_NOHBONE:
			e->hbone = false;
			break;
		default:
			return CLI_USAGE;
		}
	}
	if (r)
		return r;
	if (optind < argc)
		return cli_usage_fail(c, "unexpected argument %s", argv[optind]);
	if (!e->n_addrs || !e->veth)
		return cli_usage_fail(c, "enroll needs --ip and --veth");
	return 0;
}

int cmd_enroll(struct cli *c, int argc, char **argv)
{
	static struct zm_dp_enroll e;
	char a[ZM_ADDR_STRLEN], err[512];
	json_object *o, *arr;
	int r;

	memset(&e, 0, sizeof(e));
	r = enroll_parse(c, argc, argv, &e);
	if (r)
		return r;
	if (!e.info.trust_domain[0])
		strcpy(e.info.trust_domain, "cluster.local");
	if (!e.info.namespace[0])
		strcpy(e.info.namespace, "default");
	if (!e.info.service_account[0])
		strcpy(e.info.service_account, "default");
	if (cli_prepare(c))
		return CLI_ERR;
	/* Checked after setns: a /proc/PID path is the same in every namespace, names too. */
	if (e.info.netns[0] && zm_netns_check(e.info.netns, err, sizeof(err)))
		return cli_fail(c, "%s", err);
	r = zm_dp_enroll(&c->dp, &e);
	if (r)
		return cli_dp_fail(c, r);
	o = json_object_new_object();
	arr = json_object_new_array();
	for (size_t i = 0; i < e.n_addrs; i++)
		json_object_array_add(
		    arr, json_object_new_string(zm_addr_format(&e.addrs[i], a, sizeof(a))));
	json_object_object_add(o, "addresses", arr);
	json_object_object_add(o, "veth", json_object_new_string(e.veth));
	json_object_object_add(o, "name", json_object_new_string(e.info.name));
	json_object_object_add(o, "namespace", json_object_new_string(e.info.namespace));
	json_object_object_add(o, "hbone", json_object_new_boolean(e.hbone));
	json_object_object_add(o, "cgroup",
			       e.cgroup_path ? json_object_new_string(e.cgroup_path) : NULL);
	return cli_emit(c, o, enroll_human);
}

static void unenroll_human(json_object *o)
{
	printf("unenrolled %s address(es)\n", cli_json_str(o, "removed"));
}

int cmd_unenroll(struct cli *c, int argc, char **argv)
{
	enum { O_IP = CLI_OPT_CMD_FIRST, O_VETH };
	static const struct option own[] = {
	    {"ip", required_argument, NULL, O_IP},
	    {"veth", required_argument, NULL, O_VETH},
	    {NULL, 0, NULL, 0},
	};
	struct zm_addr addr;
	const char *ip = NULL, *veth = NULL;
	unsigned int n;
	json_object *o;
	int opt, r;

	while ((opt = cli_getopt(c, argc, argv, own)) != -1) {
		if (opt == O_IP)
			ip = optarg;
		else if (opt == O_VETH)
			veth = optarg;
		else
			return CLI_USAGE;
	}
	if (optind < argc)
		return cli_usage_fail(c, "unexpected argument %s", argv[optind]);
	if (!ip == !veth)
		return cli_usage_fail(c, "unenroll needs exactly one of --ip or --veth");
	if (ip && zm_addr_parse(ip, &addr))
		return cli_usage_fail(c, "--ip %s is not an IPv4 or IPv6 address", ip);
	if (cli_prepare(c))
		return CLI_ERR;
	r = zm_dp_unenroll(&c->dp, ip ? &addr : NULL, veth, &n);
	if (r)
		return cli_dp_fail(c, r);
	o = json_object_new_object();
	json_object_object_add(o, "removed", json_object_new_int((int)n));
	return cli_emit(c, o, unenroll_human);
}

/* workload list: zm_workloads joined with zm_wl_info by address. */
static int wl_info_cb(const void *key, const void *values, const struct zm_dp_map_info *mi,
		      void *ctx)
{
	char a[ZM_ADDR_STRLEN];

	(void)mi;
	json_object_object_add(ctx, zm_addr_format(key, a, sizeof(a)),
			       dec_entry(ZM_STR(ZM_MAP_WL_INFO), key, values, mi));
	return 0;
}

static void wl_merge(json_object *dst, json_object *src)
{
	json_object_object_foreach (src, k, v)
		json_object_object_add(dst, k, json_object_get(v));
}

static int wl_cb(const void *key, const void *values, const struct zm_dp_map_info *mi, void *ctx)
{
	json_object **pair = ctx, *info, *e, *val;
	char a[ZM_ADDR_STRLEN];

	e = dec_entry(ZM_STR(ZM_MAP_WORKLOADS), key, values, mi);
	json_object_object_get_ex(e, "value", &val);
	val = json_object_get(val);
	json_object_object_add(val, "address",
			       json_object_new_string(zm_addr_format(key, a, sizeof(a))));
	json_object_put(e);
	if (json_object_object_get_ex(pair[1], a, &info) &&
	    json_object_object_get_ex(info, "value", &info))
		wl_merge(val, info);
	json_object_array_add(pair[0], val);
	return 0;
}

static void workload_list_human(json_object *arr)
{
	static const char *const keys[] = {"address",  "veth",	     "namespace", "name",
					   "identity", "flags_text", NULL};
	static const int w[] = {26, 15, 16, 20, 48};
	static const char *const heads[] = {"ADDRESS",	"VETH",	 "NAMESPACE", "NAME",
					    "IDENTITY", "FLAGS", NULL};

	cli_print_table(arr, heads, keys, w);
}

int cmd_workload_list(struct cli *c, int argc, char **argv)
{
	json_object *pair[2];
	int r;

	if ((r = cli_begin_bare(c, argc, argv)))
		return r;
	pair[0] = json_object_new_array();
	pair[1] = json_object_new_object();
	r = zm_dp_map_walk(&c->dp, ZM_STR(ZM_MAP_WL_INFO), wl_info_cb, pair[1], NULL);
	if (!r)
		r = zm_dp_map_walk(&c->dp, ZM_STR(ZM_MAP_WORKLOADS), wl_cb, pair, NULL);
	json_object_put(pair[1]);
	if (r) {
		json_object_put(pair[0]);
		return cli_dp_fail(c, r);
	}
	return cli_emit(c, pair[0], workload_list_human);
}
