#include "circuito_allocator.h"

#include <malloc.h>

int circuito_allocator_trim(void) {
    return malloc_trim(0);
}

size_t circuito_allocator_in_use_bytes(void) {
    struct mallinfo2 info = mallinfo2();
    return info.uordblks + info.hblkhd;
}
