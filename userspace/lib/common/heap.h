/* SPDX-License-Identifier: Apache-2.0 */
/* Giving the heap's free pages back to the kernel, on every build. */
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
