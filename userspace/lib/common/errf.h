/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one way a library function reports what went wrong: a message into the caller's buffer
 * and an error code back, so a failure path is `return zm_errf(err, len, -EINVAL, "...")`.
 */
#ifndef ZMESH_COMMON_ERRF_H
#define ZMESH_COMMON_ERRF_H

#include <stddef.h>

/* printf into err (when err is not NULL and len not 0); returns ret. */
int zm_errf(char *err, size_t len, int ret, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
