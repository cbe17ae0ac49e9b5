/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared pieces of zmeshctl, the node-local CLI (`zmeshctl [OPTIONS] OBJECT COMMAND`, the
 * bpftool shape): the per-invocation context, the command table entry, option parsing that
 * accepts the global options anywhere, and output that is either human text or JSON (json-c)
 * built from the same object. Exit codes: 0 ok, 1 error, 2 usage.
 */
#ifndef ZMESHCTL_H
#define ZMESHCTL_H

#include <getopt.h>
#include <json-c/json.h>
#include <stdbool.h>

#include "datapath/datapath.h"

#define CLI_OK	  0
#define CLI_ERR	  1
#define CLI_USAGE 2

struct cli {
	bool json;
	bool pretty;	   /* -p: indented JSON */
	bool want_version; /* -V/--version */
	bool debug;
	const char *pin_dir;
	const char *netns; /* node namespace to setns() into, NULL: stay */
	bool force;	   /* --force: read a datapath pinned by another ABI version anyway */
	bool netns_entered;
	bool stop_at_word; /* parsing the globals before OBJECT */
	struct zm_dp dp;
};

struct cli_cmd {
	const char *object;
	const char *command; /* NULL: the object alone is the command ("stats") */
	int (*run)(struct cli *c, int argc, char **argv);
	const char *usage; /* arguments after OBJECT COMMAND */
	const char *help;  /* one line: what it does */
};

extern const struct cli_cmd cli_cmds[];

/* Global options (-j, --pin-dir, --netns, -d) accepted by every command's parser too. */
#define CLI_OPT_BASE 1000
enum { CLI_OPT_PIN_DIR = CLI_OPT_BASE, CLI_OPT_NETNS, CLI_OPT_FORCE, CLI_OPT_CMD_FIRST };

/*
 * getopt_long over argv with the command's own options plus the global ones. Returns the next
 * command option, -1 at the end, or '?' (already reported) for a usage error.
 */
int cli_getopt(struct cli *c, int argc, char **argv, const struct option *own);

/* Enter --netns and initialise the datapath handle: call after parsing, before any work. */
int cli_prepare(struct cli *c);

/*
 * For a command that takes no options or arguments of its own: parse, refuse anything else,
 * cli_prepare. Returns 0 to go on, else the exit status (CLI_USAGE or CLI_ERR).
 */
int cli_begin_bare(struct cli *c, int argc, char **argv);

/* Report an error ({"error": ...} on stdout in JSON mode, stderr otherwise); returns CLI_ERR. */
int cli_fail(struct cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same for usage errors (plus the command's usage line); returns CLI_USAGE. */
int cli_usage_fail(struct cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A datapath failure: dp.err, or strerror(-err) when the library left no message. */
int cli_dp_fail(struct cli *c, int err);

/* Print obj (consumed) as JSON or through human(); returns CLI_OK. */
int cli_emit(struct cli *c, json_object *obj, void (*human)(json_object *obj));

/* Printing helpers for human output. */
void cli_print_table_row(json_object *row, const char *const *keys, const int *widths);
void cli_print_table(json_object *arr, const char *const *heads, const char *const *keys,
		     const int *widths);
const char *cli_json_str(json_object *obj, const char *key);

/* Commands. */
int cmd_datapath_load(struct cli *c, int argc, char **argv);
int cmd_datapath_unload(struct cli *c, int argc, char **argv);
int cmd_datapath_status(struct cli *c, int argc, char **argv);
int cmd_datapath_attach(struct cli *c, int argc, char **argv);
int cmd_datapath_detach(struct cli *c, int argc, char **argv);
int cmd_enroll(struct cli *c, int argc, char **argv);
int cmd_unenroll(struct cli *c, int argc, char **argv);
int cmd_workload_list(struct cli *c, int argc, char **argv);
int cmd_map_list(struct cli *c, int argc, char **argv);
int cmd_map_dump(struct cli *c, int argc, char **argv);
int cmd_stats(struct cli *c, int argc, char **argv);
int cmd_conn_list(struct cli *c, int argc, char **argv);
int cmd_policy_list(struct cli *c, int argc, char **argv);
int cmd_policy_set(struct cli *c, int argc, char **argv);
int cmd_ca_init(struct cli *c, int argc, char **argv);
int cmd_cert_list(struct cli *c, int argc, char **argv);
int cmd_version(struct cli *c, int argc, char **argv);

/* Decoders shared by map dump, workload list and conn list. */
json_object *dec_addr(const struct zm_addr *a);
json_object *dec_wl_flags(__u32 flags);
const char *dec_tcp_state(__u32 state);
json_object *dec_entry(const char *map, const void *key, const void *values,
		       const struct zm_dp_map_info *mi);

#endif
