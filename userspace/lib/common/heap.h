/* SPDX-License-Identifier: Apache-2.0 */
/* The heap's settings, and giving its free pages back to the kernel, on every build. */
#ifndef ZMESH_COMMON_HEAP_H
#define ZMESH_COMMON_HEAP_H

#include <malloc.h>

#if defined(__SANITIZE_ADDRESS__)
#define ZM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ZM_ASAN 1
#endif
#endif

#define ZM_HEAP_MMAP_MIN (128u << 10) /* blocks this big are mappings of their own */
#define ZM_HEAP_TOP_MAX	 (256u << 10) /* free memory at a heap's top kept for reuse */

/*
 * Fixed thresholds, set by each daemon before its threads start. glibc raises both
 * thresholds whenever a big block that was a mapping of its own is freed (up to 32 MiB and
 * 64 MiB), so after one bulk transfer freed its buffers, the per-thread heaps grew to hold them
 * and kept their free tops resident for good: malloc_trim() gives back free pages inside a
 * heap but never the top of a worker thread's heap (an idle ztunnel kept 5 MiB so). Fixed,
 * big blocks come and go as mappings (lib/hbone pools its big buffers so that stays rare) and
 * the tops shrink as they free.
 */
static inline void zm_heap_init(void)
{
#ifndef ZM_ASAN
	mallopt(M_MMAP_THRESHOLD, ZM_HEAP_MMAP_MIN);
	mallopt(M_TRIM_THRESHOLD, ZM_HEAP_TOP_MAX);
#endif
}

/*
 * malloc_trim(0): free memory at the top of glibc's heaps and whole free pages inside them go
 * back to the kernel. A no-op under AddressSanitizer, whose allocator replaces glibc's: trimming
 * would walk glibc's never-used main arena and fault on its empty top chunk.
 */
static inline void zm_heap_trim(void)
{
#ifndef ZM_ASAN
	malloc_trim(0);
#endif
}

#endif
