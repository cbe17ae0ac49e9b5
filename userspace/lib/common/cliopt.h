/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Command-line conventions every zmesh binary shares: an option error names the option and
 * the value that is wrong ("--workers: \"abc\" is not a whole number from 1 to 64"), then a
 * one-line usage and where the full help is, never the whole manual; exit status 2.
 */
#ifndef ZMESH_COMMON_CLIOPT_H
#define ZMESH_COMMON_CLIOPT_H

#include <stdbool.h>

/*
 * Parse arg as a decimal integer in [lo, hi] for option opt. 0 with *out set, or -EINVAL after
 * printing "PROG: OPT: \"ARG\" is not a whole number from LO to HI" on stderr.
 */
int zm_opt_long(const char *prog, const char *opt, const char *arg, long lo, long hi, long *out);
int zm_opt_int(const char *prog, const char *opt, const char *arg, int lo, int hi, int *out);

/*
 * After getopt_long returned '?' or ':' (with opterr = 0): print "PROG: unknown option X" or
 * "PROG: option X needs a value", naming the argument as the user typed it.
 */
void zm_opt_bad(const char *prog, int c, char *const *argv);

/* "usage: LINE\nRun 'PROG --help' for the options.\n" on stderr; returns 2. */
int zm_opt_usage(const char *prog, const char *line);

#endif
