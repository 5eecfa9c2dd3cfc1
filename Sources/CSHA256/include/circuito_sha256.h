// SHA-256's compression function with the x86 SHA extensions, for the Merkle leaves and nodes that every append,
// verify and rebuild hashes. CircuitoCrypto uses it only when the processor has them, and libsodium otherwise.
#ifndef CIRCUITO_SHA256_H
#define CIRCUITO_SHA256_H

#include <stddef.h>
#include <stdint.h>

/// 1 when this processor runs the SHA, SSSE3 and SSE4.1 instructions the compression below needs, otherwise 0.
int circuito_sha256_hardware_available(void);

/// Runs `block_count` 64-byte blocks through SHA-256's compression function, updating `state` (the eight working
/// words a to h, in that order). Only call it when circuito_sha256_hardware_available() returned 1.
void circuito_sha256_compress(uint32_t state[8], const uint8_t *blocks, size_t block_count);

#endif
