// SPDX-License-Identifier: Apache-2.0
/* Option errors that name what is wrong (cliopt.h). */
#include "common/cliopt.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

int zm_opt_long(const char *prog, const char *opt, const char *arg, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (!*arg || *end || errno || v < lo || v > hi) {
		fprintf(stderr, "%s: %s: \"%s\" is not a whole number from %ld to %ld\n", prog, opt,
			arg, lo, hi);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

int zm_opt_int(const char *prog, const char *opt, const char *arg, int lo, int hi, int *out)
{
	long v;
	int r = zm_opt_long(prog, opt, arg, lo, hi, &v);

	if (!r)
		*out = (int)v;
	return r;
}

void zm_opt_bad(const char *prog, int c, char *const *argv)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "?";

	if (c == ':')
		fprintf(stderr, "%s: option %s needs a value\n", prog, arg);
	else if (optopt && optopt < 256)
		fprintf(stderr, "%s: unknown option -%c\n", prog, optopt);
	else
		fprintf(stderr, "%s: unknown option %s\n", prog, arg);
}

int zm_opt_usage(const char *prog, const char *line)
{
	fprintf(stderr, "usage: %s\nRun '%s --help' for the options.\n", line, prog);
	return 2;
}
