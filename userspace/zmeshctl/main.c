// SPDX-License-Identifier: Apache-2.0
/*
 * zmeshctl entry point: global options, the command table and dispatch, and the output and
 * error helpers every command shares. The node namespace (--netns) is entered with setns()
 * before any command touches the system, because `ip netns exec` would remount /sys and hide
 * the bpffs pins; the process is single-threaded so setns() covers all of it.
 */
#include "zmeshctl.h"

#include "common/netns.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct cli_cmd cli_cmds[] = {
    {"datapath", "load", cmd_datapath_load,
     "[--uplink IFNAME]... [--fail-open] [--xdp native|generic|off]\n"
     "\t\t(--xdp: policy program on the uplinks; native is for physical NICs)"},
    {"datapath", "unload", cmd_datapath_unload, ""},
    {"datapath", "status", cmd_datapath_status, ""},
    {"datapath", "attach", cmd_datapath_attach, "IFNAME... (every pod's host-side veth)"},
    {"datapath", "detach", cmd_datapath_detach, "IFNAME..."},
    {"enroll", NULL, cmd_enroll,
     "--ip ADDR [--ip ADDR]... --veth IFNAME [--name N] [--namespace NS]\n"
     "\t\t[--service-account SA] [--trust-domain TD] [--node NODE]\n"
     "\t\t[--pod-netns PATH|NAME] [--cgroup PATH] [--no-hbone]"},
    {"unenroll", NULL, cmd_unenroll, "--ip ADDR | --veth IFNAME"},
    {"workload", "list", cmd_workload_list, ""},
    {"map", "list", cmd_map_list, ""},
    {"map", "dump", cmd_map_dump, "NAME"},
    {"stats", NULL, cmd_stats, ""},
    {"conn", "list", cmd_conn_list, ""},
    {"policy", "list", cmd_policy_list, ""},
    {"policy", "set", cmd_policy_set,
     "--file RULES.json|- | --rule policy=NS/NAME,dst=ADDR[,port=N][,src=CIDR][,defer]...\n"
     "\t\t(replaces the whole fast-path rule set; no rules clears it)"},
    {"ca", "init", cmd_ca_init, "--dir DIR [--trust-domain TD]"},
    {"cert", "list", cmd_cert_list, "[--admin HOST:PORT] (default 127.0.0.1:15000)"},
    {NULL, NULL, NULL, NULL},
};

static const struct cli_cmd *cli_current;

static void cli_usage(FILE *f)
{
	fprintf(f, "Usage: zmeshctl [OPTIONS] OBJECT COMMAND [ARGS]\n\n");
	for (const struct cli_cmd *k = cli_cmds; k->object; k++)
		fprintf(f, "  zmeshctl %s%s%s %s\n", k->object, k->command ? " " : "",
			k->command ?: "", k->usage);
	fprintf(f,
		"  zmeshctl help\n\n"
		"OPTIONS (anywhere on the line):\n"
		"  -j, --json        JSON output; errors as {\"error\": \"...\"}\n"
		"  --pin-dir DIR     bpffs pin directory (default %s)\n"
		"  --netns PATH|NAME node network namespace to operate in\n"
		"                    (/var/run/netns/NAME or /proc/PID/ns/net)\n"
		"  -d, --debug       show libbpf messages (verifier logs)\n"
		"  --force           read the maps of another ABI version's datapath\n"
		"  -h, --help        this text\n\n"
		"Exit status: 0 ok, 1 error, 2 usage.\n",
		ZM_PIN_DIR_DEFAULT);
}

static void cli_vreport(struct cli *c, const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (c->json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "error", json_object_new_string(msg));
		printf("%s\n", json_object_to_json_string_ext(
				   o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	} else {
		fprintf(stderr, "zmeshctl: error: %s\n", msg);
	}
}

int cli_fail(struct cli *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cli_vreport(c, fmt, ap);
	va_end(ap);
	return CLI_ERR;
}

int cli_usage_fail(struct cli *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cli_vreport(c, fmt, ap);
	va_end(ap);
	if (!c->json) {
		if (cli_current)
			fprintf(stderr, "Usage: zmeshctl %s%s%s %s\n", cli_current->object,
				cli_current->command ? " " : "", cli_current->command ?: "",
				cli_current->usage);
		else
			cli_usage(stderr);
	}
	return CLI_USAGE;
}

int cli_dp_fail(struct cli *c, int err)
{
	return cli_fail(c, "%s", c->dp.err[0] ? c->dp.err : strerror(-err));
}

int cli_emit(struct cli *c, json_object *obj, void (*human)(json_object *obj))
{
	if (c->json)
		printf("%s\n", json_object_to_json_string_ext(
				   obj, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
					    JSON_C_TO_STRING_NOSLASHESCAPE));
	else if (human)
		human(obj);
	json_object_put(obj);
	return CLI_OK;
}

const char *cli_json_str(json_object *obj, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(obj, key, &v) || json_object_is_type(v, json_type_null))
		return "-";
	return json_object_get_string(v);
}

/* One row: each key's value left-aligned in its width (the last one unpadded). */
void cli_print_table_row(json_object *row, const char *const *keys, const int *widths)
{
	for (int i = 0; keys[i]; i++) {
		const char *s = row ? cli_json_str(row, keys[i]) : keys[i];

		if (keys[i + 1])
			printf("%-*s ", widths[i], s);
		else
			printf("%s\n", s);
	}
}

/* A whole table: the heads row, then one row per element of the JSON array. */
void cli_print_table(json_object *arr, const char *const *heads, const char *const *keys,
		     const int *widths)
{
	cli_print_table_row(NULL, heads, widths);
	for (size_t i = 0; i < json_object_array_length(arr); i++)
		cli_print_table_row(json_object_array_get_idx(arr, i), keys, widths);
}

int cli_getopt(struct cli *c, int argc, char **argv, const struct option *own)
{
	static struct option all[64];
	static const struct option globals[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"debug", no_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},
	    {"pin-dir", required_argument, NULL, CLI_OPT_PIN_DIR},
	    {"netns", required_argument, NULL, CLI_OPT_NETNS},
	    {"force", no_argument, NULL, CLI_OPT_FORCE},
	};
	size_t n = 0;
	int opt;

	for (; own && own[n].name && n < 50; n++)
		all[n] = own[n];
	memcpy(&all[n], globals, sizeof(globals));
	memset(&all[n + sizeof(globals) / sizeof(globals[0])], 0, sizeof(all[0]));
	for (;;) {
		opt = getopt_long(argc, argv, c->stop_at_word ? "+:jdh" : ":jdh", all, NULL);
		switch (opt) {
		case 'j':
			c->json = true;
			continue;
		case 'd':
			c->debug = true;
			continue;
		case 'h':
			cli_current ? printf("Usage: zmeshctl %s%s%s %s\n", cli_current->object,
					     cli_current->command ? " " : "",
					     cli_current->command ?: "", cli_current->usage)
				    : (cli_usage(stdout), 0);
			exit(CLI_OK);
		case CLI_OPT_PIN_DIR:
			c->pin_dir = optarg;
			continue;
		case CLI_OPT_NETNS:
			c->netns = optarg;
			continue;
		case CLI_OPT_FORCE:
			c->force = true;
			continue;
		case ':':
			cli_usage_fail(c, "option %s needs an argument", argv[optind - 1]);
			return '?';
		case '?':
			cli_usage_fail(c, "unknown option %s", argv[optind - 1]);
			return '?';
		default:
			return opt;
		}
	}
}

int cli_prepare(struct cli *c)
{
	char err[512];

	zm_dp_set_debug(c->debug);
	if (c->netns && !c->netns_entered) {
		if (zm_netns_enter(c->netns, err, sizeof(err)))
			return cli_fail(c, "%s", err);
		c->netns_entered = true;
	}
	zm_dp_init(&c->dp, c->pin_dir);
	c->dp.force = c->force;
	return CLI_OK;
}

int cli_begin_bare(struct cli *c, int argc, char **argv)
{
	if (cli_getopt(c, argc, argv, NULL) != -1)
		return CLI_USAGE; /* no options of its own: cli_getopt reported it */
	if (optind < argc)
		return cli_usage_fail(c, "unexpected argument %s", argv[optind]);
	return cli_prepare(c) ? CLI_ERR : 0;
}

/* Global options may come before OBJECT: parse them, stopping at the first word. */
static int cli_parse_globals(struct cli *c, int argc, char **argv)
{
	static const struct option none[] = {{NULL, 0, NULL, 0}};
	int opt;

	opt = cli_getopt(c, argc, argv, none);
	if (opt == '?')
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	struct cli c = {0};
	const char *obj, *cmd;
	int first, ret;

	c.dp.lock_fd = -1;
	c.stop_at_word = true;
	optind = 1;
	if (cli_parse_globals(&c, argc, argv))
		return CLI_USAGE;
	c.stop_at_word = false;
	first = optind;
	if (first >= argc || !strcmp(argv[first], "help")) {
		cli_usage(first >= argc ? stderr : stdout);
		return first >= argc ? CLI_USAGE : CLI_OK;
	}
	obj = argv[first];
	cmd = first + 1 < argc ? argv[first + 1] : NULL;
	for (const struct cli_cmd *k = cli_cmds; k->object; k++) {
		if (strcmp(k->object, obj))
			continue;
		if (k->command && (!cmd || strcmp(k->command, cmd)))
			continue;
		cli_current = k;
		optind = 0; /* GNU getopt: start over on the command's own argv */
		/* The command's parser sees argv from its own name on. */
		ret = k->command ? k->run(&c, argc - first - 1, argv + first + 1)
				 : k->run(&c, argc - first, argv + first);
		zm_dp_close(&c.dp);
		return ret;
	}
	for (const struct cli_cmd *k = cli_cmds; k->object; k++)
		if (!strcmp(k->object, obj))
			return cli_usage_fail(&c, "unknown command \"%s %s\"", obj, cmd ?: "");
	return cli_usage_fail(&c, "unknown object \"%s\"", obj);
}
