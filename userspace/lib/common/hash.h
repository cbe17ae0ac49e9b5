/* SPDX-License-Identifier: Apache-2.0 */
/* FNV-1a over a string: the hash of every small string-keyed table (metric series, caches). */
#ifndef ZMESH_COMMON_HASH_H
#define ZMESH_COMMON_HASH_H

#include <stdint.h>

static inline uint64_t zm_hash_str(const char *s)
{
	uint64_t h = 14695981039346656037ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

#endif
