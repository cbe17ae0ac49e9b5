// SPDX-License-Identifier: Apache-2.0
/* The version strings (version.h); ZM_GIT_REVISION comes from the build (Makefile). */
#include "common/version.h"

#ifndef ZM_GIT_REVISION
#define ZM_GIT_REVISION "unknown"
#endif

const char *zm_version(void)
{
	return ZM_VERSION;
}

const char *zm_version_revision(void)
{
	return ZM_GIT_REVISION;
}

void zm_version_print(FILE *f, const char *prog)
{
	fprintf(f, "%s (zmesh) %s (revision %s)\n", prog, ZM_VERSION, ZM_GIT_REVISION);
}
