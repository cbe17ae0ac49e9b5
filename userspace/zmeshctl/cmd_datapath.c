// SPDX-License-Identifier: Apache-2.0
/*
 * zmeshctl datapath load | unload | status: thin wrappers over the datapath library that turn
 * its results into JSON (stable snake_case keys) and human text.
 */
#include "zmeshctl.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define CLI_MAX_UPLINKS 16

static void datapath_load_human(json_object *o)
{
	printf("datapath loaded in %s (%s, ABI %s): %s interface(s) attached, %s sockops "
	       "link(s) updated, %s node address(es) bypassed, XDP %s on %s uplink(s)\n",
	       cli_json_str(o, "pin_dir"),
	       strcmp(cli_json_str(o, "reused"), "true") ? "fresh install" : "reused pinned maps",
	       cli_json_str(o, "abi_version"), cli_json_str(o, "attached"),
	       cli_json_str(o, "links_updated"), cli_json_str(o, "node_addrs"),
	       cli_json_str(o, "xdp_mode"), cli_json_str(o, "xdp_attached"));
}

int cmd_datapath_load(struct cli *c, int argc, char **argv)
{
	enum { OPT_UPLINK = CLI_OPT_CMD_FIRST, OPT_FAIL_OPEN, OPT_XDP };
	static const struct option own[] = {
	    {"uplink", required_argument, NULL, OPT_UPLINK},
	    {"fail-open", no_argument, NULL, OPT_FAIL_OPEN},
	    {"xdp", required_argument, NULL, OPT_XDP},
	    {NULL, 0, NULL, 0},
	};
	const char *uplinks[CLI_MAX_UPLINKS];
	struct zm_dp_load_opts opts = {.uplinks = uplinks};
	struct zm_dp_load_result res;
	json_object *o;
	int opt, err;

	while ((opt = cli_getopt(c, argc, argv, own)) != -1) {
		if (opt == '?')
			return CLI_USAGE;
		if (opt == OPT_FAIL_OPEN)
			opts.fail_open = true;
		else if (opt == OPT_XDP && zm_dp_xdp_mode_parse(optarg, &opts.xdp))
			return cli_usage_fail(c, "--xdp takes native, generic or off, not %s",
					      optarg);
		else if (opt == OPT_XDP)
			continue;
		else if (opts.n_uplinks == CLI_MAX_UPLINKS)
			return cli_usage_fail(c, "at most %d --uplink", CLI_MAX_UPLINKS);
		else
			uplinks[opts.n_uplinks++] = optarg;
	}
	if (optind < argc)
		return cli_usage_fail(c, "unexpected argument %s", argv[optind]);
	if (cli_prepare(c))
		return CLI_ERR;
	err = zm_dp_load(&c->dp, &opts, &res);
	if (err)
		return cli_dp_fail(c, err);
	o = json_object_new_object();
	json_object_object_add(o, "pin_dir", json_object_new_string(c->dp.pin_dir));
	json_object_object_add(o, "abi_version", json_object_new_int(ZM_ABI_VERSION));
	json_object_object_add(o, "reused", json_object_new_boolean(res.reused));
	json_object_object_add(o, "fail_open", json_object_new_boolean(opts.fail_open));
	json_object_object_add(o, "attached", json_object_new_int((int)res.n_attached));
	json_object_object_add(o, "links_updated", json_object_new_int((int)res.n_links));
	json_object_object_add(o, "node_addrs", json_object_new_int((int)res.n_node_addrs));
	json_object_object_add(o, "xdp_mode",
			       json_object_new_string(zm_dp_xdp_mode_name(opts.xdp)));
	json_object_object_add(o, "xdp_attached", json_object_new_int((int)res.n_xdp));
	return cli_emit(c, o, datapath_load_human);
}

static void datapath_unload_human(json_object *o)
{
	printf("datapath unloaded from %s\n", cli_json_str(o, "pin_dir"));
}

int cmd_datapath_unload(struct cli *c, int argc, char **argv)
{
	json_object *o;
	int err;

	if ((err = cli_begin_bare(c, argc, argv)))
		return err;
	err = zm_dp_unload(&c->dp);
	if (err)
		return cli_dp_fail(c, err);
	o = json_object_new_object();
	json_object_object_add(o, "pin_dir", json_object_new_string(c->dp.pin_dir));
	json_object_object_add(o, "unloaded", json_object_new_boolean(1));
	return cli_emit(c, o, datapath_unload_human);
}

static json_object *status_pin_json(const struct zm_dp_pin *p)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "name", json_object_new_string(p->name));
	json_object_object_add(o, "kind", json_object_new_string(p->kind));
	json_object_object_add(o, "id", json_object_new_int64(p->id));
	json_object_object_add(o, "type", json_object_new_string(p->type));
	if (!strcmp(p->kind, "map")) {
		json_object_object_add(o, "key_size", json_object_new_int64(p->key_size));
		json_object_object_add(o, "value_size", json_object_new_int64(p->value_size));
		json_object_object_add(o, "max_entries", json_object_new_int64(p->max_entries));
	}
	return o;
}

static void datapath_status_human(json_object *o)
{
	static const char *const pin_keys[] = {"kind", "id", "type", "name", NULL};
	static const int pin_w[] = {5, 6, 24};
	json_object *arr, *route;
	size_t i;

	printf("pin dir:     %s\n", cli_json_str(o, "pin_dir"));
	printf("loaded:      %s\n", cli_json_str(o, "loaded"));
	printf("abi version: %s (this build: %s)\n", cli_json_str(o, "abi_version"),
	       cli_json_str(o, "expected_abi_version"));
	printf("loaded at:   %s\n", cli_json_str(o, "loaded_at_text"));
	json_object_object_get_ex(o, "route", &route);
	printf("route:       rule v4 %s, route v4 %s, rule v6 %s, route v6 %s\n",
	       cli_json_str(route, "rule_v4"), cli_json_str(route, "route_v4"),
	       cli_json_str(route, "rule_v6"), cli_json_str(route, "route_v6"));
	json_object_object_get_ex(o, "interfaces", &arr);
	printf("interfaces:  ");
	for (i = 0; i < json_object_array_length(arr); i++) {
		json_object *e = json_object_array_get_idx(arr, i);

		printf("%s%s(tc prog %s, xdp %s", i ? ", " : "", cli_json_str(e, "ifname"),
		       cli_json_str(e, "prog_id"), cli_json_str(e, "xdp_mode"));
		if (strcmp(cli_json_str(e, "xdp_mode"), "off"))
			printf(" prog %s", cli_json_str(e, "xdp_prog_id"));
		printf(")");
	}
	printf("%s\npins:\n  ", i ? "" : "none");
	cli_print_table_row(NULL, pin_keys, pin_w);
	json_object_object_get_ex(o, "pins", &arr);
	for (i = 0; i < json_object_array_length(arr); i++) {
		printf("  ");
		cli_print_table_row(json_object_array_get_idx(arr, i), pin_keys, pin_w);
	}
}

int cmd_datapath_status(struct cli *c, int argc, char **argv)
{
	static struct zm_dp_status st;
	json_object *o, *arr, *route;
	char when[64] = "-";
	int err;

	if ((err = cli_begin_bare(c, argc, argv)))
		return err;
	err = zm_dp_status(&c->dp, &st);
	if (err)
		return cli_dp_fail(c, err);
	o = json_object_new_object();
	json_object_object_add(o, "pin_dir", json_object_new_string(c->dp.pin_dir));
	json_object_object_add(o, "loaded", json_object_new_boolean(st.loaded));
	json_object_object_add(o, "abi_version", json_object_new_int64(st.abi_version));
	json_object_object_add(o, "expected_abi_version", json_object_new_int(ZM_ABI_VERSION));
	json_object_object_add(o, "loaded_at", json_object_new_int64((int64_t)st.loaded_at));
	if (st.loaded_at) {
		time_t t = (time_t)st.loaded_at;

		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
	}
	json_object_object_add(o, "loaded_at_text", json_object_new_string(when));
	arr = json_object_new_array();
	for (size_t i = 0; i < st.n_pins; i++)
		json_object_array_add(arr, status_pin_json(&st.pins[i]));
	json_object_object_add(o, "pins", arr);
	arr = json_object_new_array();
	for (size_t i = 0; i < st.n_ifaces; i++) {
		json_object *e = json_object_new_object();

		json_object_object_add(e, "ifname", json_object_new_string(st.ifaces[i].ifname));
		json_object_object_add(e, "ifindex", json_object_new_int(st.ifaces[i].ifindex));
		json_object_object_add(e, "prog_id", json_object_new_int64(st.ifaces[i].prog_id));
		json_object_object_add(
		    e, "xdp_mode", json_object_new_string(zm_dp_xdp_mode_name(st.ifaces[i].xdp)));
		json_object_object_add(e, "xdp_prog_id",
				       json_object_new_int64(st.ifaces[i].xdp_prog_id));
		json_object_array_add(arr, e);
	}
	json_object_object_add(o, "interfaces", arr);
	route = json_object_new_object();
	json_object_object_add(route, "rule_v4", json_object_new_boolean(st.route.rule4));
	json_object_object_add(route, "route_v4", json_object_new_boolean(st.route.route4));
	json_object_object_add(route, "rule_v6", json_object_new_boolean(st.route.rule6));
	json_object_object_add(route, "route_v6", json_object_new_boolean(st.route.route6));
	json_object_object_add(route, "present",
			       json_object_new_boolean(st.route.rule4 && st.route.route4 &&
						       st.route.rule6 && st.route.route6));
	json_object_object_add(o, "route", route);
	return cli_emit(c, o, datapath_status_human);
}

static void datapath_iface_human(json_object *o)
{
	json_object *a;

	json_object_object_get_ex(o, "interfaces", &a);
	for (size_t i = 0; i < json_object_array_length(a); i++)
		printf("%s %s\n", json_object_get_string(json_object_array_get_idx(a, i)),
		       cli_json_str(o, "action"));
}

/* datapath attach|detach IFNAME...: our filter on node interfaces (every pod veth needs it). */
static int datapath_iface(struct cli *c, int argc, char **argv, bool attach)
{
	json_object *o, *a;
	int opt, err;

	while ((opt = cli_getopt(c, argc, argv, NULL)) != -1)
		return CLI_USAGE;
	if (optind >= argc)
		return cli_usage_fail(c, "%s needs at least one interface name",
				      attach ? "attach" : "detach");
	if (cli_prepare(c))
		return CLI_ERR;
	a = json_object_new_array();
	for (int i = optind; i < argc; i++) {
		err = attach ? zm_dp_attach(&c->dp, argv[i]) : zm_dp_detach(&c->dp, argv[i]);
		if (err) {
			json_object_put(a);
			return cli_dp_fail(c, err);
		}
		json_object_array_add(a, json_object_new_string(argv[i]));
	}
	o = json_object_new_object();
	json_object_object_add(o, "interfaces", a);
	json_object_object_add(o, "action",
			       json_object_new_string(attach ? "attached" : "detached"));
	return cli_emit(c, o, datapath_iface_human);
}

int cmd_datapath_attach(struct cli *c, int argc, char **argv)
{
	return datapath_iface(c, argc, argv, true);
}

int cmd_datapath_detach(struct cli *c, int argc, char **argv)
{
	return datapath_iface(c, argc, argv, false);
}
