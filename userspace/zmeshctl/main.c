// SPDX-License-Identifier: Apache-2.0
/*
 * zmeshctl entry point: global options, the command table and dispatch, and the output and
 * error helpers every command shares. The node namespace (--netns) is entered with setns()
 * before any command touches the system, because `ip netns exec` would remount /sys and hide
 * the bpffs pins; the process is single-threaded so setns() covers all of it.
 */
#include "zmeshctl.h"

#include "common/netns.h"
#include "common/version.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The command table: OBJECT COMMAND as bpftool spells them. A NULL command is an object that is
 * a command by itself (version). Objects and commands match by unique prefix (`zmeshctl m l`
 * is `map list`); exact names win over prefixes.
 */
const struct cli_cmd cli_cmds[] = {
    {"datapath", "load", cmd_datapath_load,
     "[--uplink IFNAME]... [--fail-open] [--xdp native|generic|off]\n"
     "\t\t(--xdp: policy program on the uplinks; native is for physical NICs)",
     "load and attach the BPF datapath, pin it"},
    {"datapath", "unload", cmd_datapath_unload, "", "detach and unpin the datapath"},
    {"datapath", "status", cmd_datapath_status, "", "what is loaded and attached where"},
    {"datapath", "attach", cmd_datapath_attach, "IFNAME... (every pod's host-side veth)",
     "attach capture to pod veths"},
    {"datapath", "detach", cmd_datapath_detach, "IFNAME...", "detach capture from pod veths"},
    {"workload", "enroll", cmd_enroll,
     "--ip ADDR [--ip ADDR]... --veth IFNAME [--name N] [--namespace NS]\n"
     "\t\t[--service-account SA] [--trust-domain TD] [--node NODE]\n"
     "\t\t[--pod-netns PATH|NAME] [--cgroup PATH] [--no-hbone]",
     "capture a pod's traffic"},
    {"workload", "unenroll", cmd_unenroll, "--ip ADDR | --veth IFNAME", "stop capturing a pod"},
    {"workload", "list", cmd_workload_list, "", "enrolled workloads"},
    {"map", "list", cmd_map_list, "", "the datapath's maps"},
    {"map", "dump", cmd_map_dump, "NAME", "a map's entries, decoded"},
    {"stats", "show", cmd_stats, "", "per-reason packet counters"},
    {"conn", "list", cmd_conn_list, "", "captured connections (sockops)"},
    {"policy", "list", cmd_policy_list, "", "kernel fast-path rules and their drops"},
    {"policy", "set", cmd_policy_set,
     "--file RULES.json|- | --rule policy=NS/NAME,dst=ADDR[,port=N][,src=CIDR][,defer]...\n"
     "\t\t(replaces the whole fast-path rule set; no rules clears it)",
     "replace the fast-path rules"},
    {"ca", "init", cmd_ca_init, "--dir DIR [--trust-domain TD]", "create a dev CA"},
    {"cert", "list", cmd_cert_list, "[--admin HOST:PORT] (default 127.0.0.1:15000)",
     "the node's workload certificates"},
    {"version", NULL, cmd_version, "", "version and source revision"},
    {NULL, NULL, NULL, NULL, NULL},
};

/* The spellings before OBJECT COMMAND, still accepted. */
static const struct {
	const char *word, *object, *command;
} cli_aliases[] = {
    {"enroll", "workload", "enroll"},
    {"unenroll", "workload", "unenroll"},
    {"stats", "stats", "show"}, /* `zmeshctl stats` without a command */
};

static const struct cli_cmd *cli_current;

#define CLI_SHORT_USAGE                                                                            \
	"Usage: zmeshctl [OPTIONS] OBJECT COMMAND [ARGS]\n"                                        \
	"       OBJECT := { datapath | workload | map | stats | conn | policy | ca | cert |\n"     \
	"                   version }\n"                                                           \
	"Run 'zmeshctl help' for every command, 'zmeshctl OBJECT help' for one object's.\n"

static void cli_usage(FILE *f)
{
	const char *obj = NULL;

	fprintf(f, "Usage: zmeshctl [OPTIONS] OBJECT COMMAND [ARGS]\n\n");
	for (const struct cli_cmd *k = cli_cmds; k->object; k++) {
		if (!obj || strcmp(obj, k->object))
			fprintf(f, "%s", obj ? "\n" : "");
		obj = k->object;
		fprintf(f, "  zmeshctl %s%s%s %s\n", k->object, k->command ? " " : "",
			k->command ?: "", k->usage);
	}
	fprintf(f,
		"\n  zmeshctl help | zmeshctl OBJECT help\n\n"
		"Objects and commands may be shortened to a unique prefix (zmeshctl m l).\n"
		"Old spellings still work: enroll, unenroll, stats.\n\n"
		"OPTIONS (anywhere on the line):\n"
		"  -j, --json        JSON output, compact; errors as {\"error\": \"...\"}\n"
		"  -p, --pretty      JSON output, indented (implies -j)\n"
		"  --pin-dir DIR     bpffs pin directory (default %s)\n"
		"  --netns PATH|NAME node network namespace to operate in\n"
		"                    (/var/run/netns/NAME or /proc/PID/ns/net)\n"
		"  -d, --debug       show libbpf messages (verifier logs)\n"
		"  --force           read the maps of another ABI version's datapath\n"
		"  -V, --version     same as zmeshctl version\n"
		"  -h, --help        this text\n\n"
		"Exit status: 0 ok, 1 error, 2 usage.\n",
		ZM_PIN_DIR_DEFAULT);
}

/* One object's commands (zmeshctl OBJECT help; a missing command). */
static void cli_object_usage(FILE *f, const char *obj)
{
	for (const struct cli_cmd *k = cli_cmds; k->object; k++)
		if (!strcmp(k->object, obj))
			fprintf(f, "  zmeshctl %s%s%s %s\n%s%s%s", k->object, k->command ? " " : "",
				k->command ?: "", k->usage, k->help ? "\t\t" : "", k->help ?: "",
				k->help ? "\n" : "");
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
			fputs(CLI_SHORT_USAGE, stderr);
	}
	return CLI_USAGE;
}

int cli_dp_fail(struct cli *c, int err)
{
	return cli_fail(c, "%s", c->dp.err[0] ? c->dp.err : strerror(-err));
}

int cli_emit(struct cli *c, json_object *obj, void (*human)(json_object *obj))
{
	/* bpftool's convention: -j compact (one line, for tools), -p indented (for people). */
	int flags = JSON_C_TO_STRING_NOSLASHESCAPE |
		    (c->pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED
			       : JSON_C_TO_STRING_PLAIN);

	if (c->json)
		printf("%s\n", json_object_to_json_string_ext(obj, flags));
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
	    {"pretty", no_argument, NULL, 'p'},
	    {"version", no_argument, NULL, 'V'},
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
		opt = getopt_long(argc, argv, c->stop_at_word ? "+:jpdhV" : ":jpdhV", all, NULL);
		switch (opt) {
		case 'j':
			c->json = true;
			continue;
		case 'p':
			c->json = c->pretty = true;
			continue;
		case 'V':
			c->want_version = true;
			continue;
		case 'd':
			c->debug = true;
			continue;
		case 'h':
			if (cli_current)
				printf("Usage: zmeshctl %s%s%s %s\n", cli_current->object,
				       cli_current->command ? " " : "", cli_current->command ?: "",
				       cli_current->usage);
			else
				cli_usage(stdout);
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

/* name among the words the table gives for (object; NULL: objects): exact, else a unique prefix. */
static const char *cli_match(struct cli *c, const char *object, const char *name, int *rc)
{
	const char *hit = NULL, *seen[32];
	char list[512] = "";
	size_t n = 0, len = strlen(name), i;

	for (const struct cli_cmd *k = cli_cmds; k->object; k++) {
		const char *w = object ? k->command : k->object;

		if ((object && (strcmp(k->object, object) || !w)) || n == 32)
			continue;
		for (i = 0; i < n && strcmp(seen[i], w); i++)
			;
		if (i < n)
			continue;
		seen[n++] = w;
		if (!strcmp(w, name))
			return w;
		if (!strncmp(w, name, len)) {
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
				 hit ? ", " : "", w);
			if (hit)
				hit = "";
			else
				hit = w;
		}
	}
	if (hit && *hit)
		return hit;
	if (hit)
		*rc = cli_usage_fail(c, "ambiguous %s \"%s\": %s", object ? "command" : "object",
				     name, list);
	else if (object)
		*rc = cli_usage_fail(c, "unknown command \"%s %s\" (zmeshctl %s help)", object,
				     name, object);
	else
		*rc = cli_usage_fail(c, "unknown object \"%s\"", name);
	return NULL;
}

static const struct cli_cmd *cli_find(const char *object, const char *command)
{
	for (const struct cli_cmd *k = cli_cmds; k->object; k++)
		if (!strcmp(k->object, object) &&
		    (command ? k->command && !strcmp(k->command, command) : !k->command))
			return k;
	return NULL;
}

/* The whole table as "OBJECT COMMAND" lines (the bash completion reads it). */
static int cli_list_commands(void)
{
	for (const struct cli_cmd *k = cli_cmds; k->object; k++)
		printf("%s%s%s\n", k->object, k->command ? " " : "", k->command ?: "");
	return CLI_OK;
}

static int cli_run(struct cli *c, const struct cli_cmd *k, int argc, char **argv)
{
	int ret;

	cli_current = k;
	optind = 0; /* GNU getopt: start over on the command's own argv */
	ret = k->run(c, argc, argv);
	zm_dp_close(&c->dp);
	return ret;
}

/* OBJECT [COMMAND] at argv[first]: resolve aliases, prefixes and help; run. */
static int cli_dispatch(struct cli *c, int argc, char **argv, int first)
{
	const char *obj = argv[first], *cmd;
	const struct cli_cmd *k;
	int rc = CLI_USAGE, at;
	size_t i;

	for (i = 0; i < sizeof(cli_aliases) / sizeof(cli_aliases[0]); i++) {
		if (strcmp(obj, cli_aliases[i].word))
			continue;
		/* `stats show` as well as the old `stats`: the alias only without a command. */
		if (!strcmp(obj, cli_aliases[i].object) && first + 1 < argc &&
		    argv[first + 1][0] != '-')
			break;
		return cli_run(c, cli_find(cli_aliases[i].object, cli_aliases[i].command),
			       argc - first, argv + first);
	}
	obj = cli_match(c, NULL, obj, &rc);
	if (!obj)
		return rc;
	k = cli_find(obj, NULL);
	if (k) /* an object that is a command by itself */
		return cli_run(c, k, argc - first, argv + first);
	at = first + 1;
	if (at >= argc || argv[at][0] == '-') {
		fprintf(stderr, "zmeshctl: %s needs a command:\n", obj);
		cli_object_usage(stderr, obj);
		return CLI_USAGE;
	}
	if (!strcmp(argv[at], "help")) {
		cli_object_usage(stdout, obj);
		return CLI_OK;
	}
	cmd = cli_match(c, obj, argv[at], &rc);
	if (!cmd)
		return rc;
	return cli_run(c, cli_find(obj, cmd), argc - at, argv + at);
}

int main(int argc, char **argv)
{
	struct cli c = {0};
	int first;

	c.dp.lock_fd = -1;
	c.stop_at_word = true;
	optind = 1;
	if (cli_parse_globals(&c, argc, argv))
		return CLI_USAGE;
	c.stop_at_word = false;
	first = optind;
	if (c.want_version && first >= argc)
		return cli_run(&c, cli_find("version", NULL), 1, (char *[]){"version", NULL});
	if (first >= argc) {
		fputs(CLI_SHORT_USAGE, stderr);
		return CLI_USAGE;
	}
	if (!strcmp(argv[first], "help")) {
		if (first + 1 < argc && !strcmp(argv[first + 1], "commands"))
			return cli_list_commands();
		cli_usage(stdout);
		return CLI_OK;
	}
	return cli_dispatch(&c, argc, argv, first);
}
