// SPDX-License-Identifier: Apache-2.0
/*
 * zmeshctl version: the one zmesh version (common/version.h), the source revision it was built
 * from and the datapath ABI it speaks, as text or JSON.
 */
#include "zmeshctl.h"

#include "common/version.h"
#include "zmesh/abi.h"

#include <stdio.h>

static void version_human(json_object *o)
{
	printf("zmeshctl (zmesh) %s (revision %s), datapath ABI %s\n", cli_json_str(o, "version"),
	       cli_json_str(o, "revision"), cli_json_str(o, "abi_version"));
}

int cmd_version(struct cli *c, int argc, char **argv)
{
	json_object *o;

	if (cli_getopt(c, argc, argv, NULL) != -1)
		return CLI_USAGE;
	if (optind < argc)
		return cli_usage_fail(c, "unexpected argument %s", argv[optind]);
	o = json_object_new_object();
	json_object_object_add(o, "version", json_object_new_string(zm_version()));
	json_object_object_add(o, "revision", json_object_new_string(zm_version_revision()));
	json_object_object_add(o, "abi_version", json_object_new_int(ZM_ABI_VERSION));
	return cli_emit(c, o, version_human);
}
