// SPDX-License-Identifier: Apache-2.0
/* Error messages into the caller's buffer (errf.h). */
#include <stdarg.h>
#include <stdio.h>

#include "common/errf.h"

int zm_errf(char *err, size_t len, int ret, const char *fmt, ...)
{
	va_list ap;

	if (err && len) {
		va_start(ap, fmt);
		vsnprintf(err, len, fmt, ap);
		va_end(ap);
	}
	return ret;
}
