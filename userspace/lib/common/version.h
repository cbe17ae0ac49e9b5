/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one version of every zmesh binary (ztunnel, waypoint, zmesh-ca, zmeshctl): the release
 * number below and the git revision of the source, baked in by the build
 * ($(BUILD)/zm-version.h, regenerated when `git describe` changes). `PROG --version` and
 * `zmeshctl version` print it; the istio_build metric carries it.
 */
#ifndef ZMESH_COMMON_VERSION_H
#define ZMESH_COMMON_VERSION_H

#include <stdio.h>

#define ZM_VERSION "0.3.0"

/* "0.3.0" */
const char *zm_version(void);
/* `git describe --always --dirty` of the source built, "unknown" outside a checkout. */
const char *zm_version_revision(void);
/* "PROG (zmesh) 0.3.0 (revision REV)\n" on f. */
void zm_version_print(FILE *f, const char *prog);

#endif
