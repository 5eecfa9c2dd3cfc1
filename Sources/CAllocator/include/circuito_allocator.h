#ifndef CIRCUITO_ALLOCATOR_H
#define CIRCUITO_ALLOCATOR_H

#include <stddef.h>

// glibc's allocator, whose malloc.h Swift's Glibc module leaves out.

/// malloc_trim(0): gives the free memory of every arena back to the system. 1 when some was given back.
int circuito_allocator_trim(void);

/// The bytes the allocator has handed out and not had back (mallinfo2's uordblks and hblkhd, over every arena).
size_t circuito_allocator_in_use_bytes(void);

#endif
