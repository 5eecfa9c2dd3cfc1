// SHA-256's compression function (FIPS 180-4 section 6.2.2) with the x86 SHA extensions (SHA256RNDS2, SHA256MSG1,
// SHA256MSG2). The working variables live in two registers, ABEF and CDGH, as the instructions expect them; each
// group of four rounds adds four message words and their round constants, and the message schedule (FIPS 180-4
// 6.2.2 step 1) is computed four words at a time from the four groups before.
#include "circuito_sha256.h"

#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)

#include <cpuid.h>
#include <immintrin.h>

int circuito_sha256_hardware_available(void) {
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    const int has_ssse3 = (ecx >> 9) & 1;
    const int has_sse41 = (ecx >> 19) & 1;
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    const int has_sha = (ebx >> 29) & 1;
    return has_ssse3 && has_sse41 && has_sha;
}

// FIPS 180-4 section 4.2.2.
static const uint32_t round_constants[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

__attribute__((target("sha,sse4.1,ssse3")))
void circuito_sha256_compress(uint32_t state[8], const uint8_t *blocks, size_t block_count) {
    // Message words are big-endian: reverse the bytes of each 32-bit lane.
    const __m128i byte_order = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);

    // From a b c d | e f g h to ABEF and CDGH (highest lane first).
    __m128i abcd = _mm_loadu_si128((const __m128i *)&state[0]);
    __m128i efgh = _mm_loadu_si128((const __m128i *)&state[4]);
    abcd = _mm_shuffle_epi32(abcd, 0xB1);   // b a d c
    efgh = _mm_shuffle_epi32(efgh, 0x1B);   // h g f e
    __m128i abef = _mm_alignr_epi8(abcd, efgh, 8);      // f e b a: ABEF
    __m128i cdgh = _mm_blend_epi16(efgh, abcd, 0xF0);   // h g d c: CDGH

    for (size_t block = 0; block < block_count; block++) {
        const uint8_t *data = blocks + 64 * block;
        const __m128i abef_before = abef;
        const __m128i cdgh_before = cdgh;
        __m128i words[4];  // The last four groups of four message words, in a ring.
        for (int group = 0; group < 16; group++) {
            __m128i message;
            if (group < 4) {
                message = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 16 * group)), byte_order);
            } else {
                // w[t] = σ1(w[t−2]) + w[t−7] + σ0(w[t−15]) + w[t−16], four at a time.
                const __m128i minus16 = words[group & 3];
                const __m128i minus12 = words[(group + 1) & 3];
                const __m128i minus8 = words[(group + 2) & 3];
                const __m128i minus4 = words[(group + 3) & 3];
                message = _mm_sha256msg1_epu32(minus16, minus12);               // w[t−16] + σ0(w[t−15])
                message = _mm_add_epi32(message, _mm_alignr_epi8(minus4, minus8, 4));  // + w[t−7]
                message = _mm_sha256msg2_epu32(message, minus4);                // + σ1(w[t−2])
            }
            words[group & 3] = message;
            __m128i scheduled = _mm_add_epi32(message, _mm_loadu_si128((const __m128i *)&round_constants[4 * group]));
            // Two rounds on the low two words, two on the high two; the second pair's CDGH is the first pair's ABEF.
            cdgh = _mm_sha256rnds2_epu32(cdgh, abef, scheduled);
            scheduled = _mm_shuffle_epi32(scheduled, 0x0E);
            abef = _mm_sha256rnds2_epu32(abef, cdgh, scheduled);
        }
        abef = _mm_add_epi32(abef, abef_before);
        cdgh = _mm_add_epi32(cdgh, cdgh_before);
    }

    // Back to a b c d | e f g h.
    const __m128i feba = _mm_shuffle_epi32(abef, 0x1B);   // a b e f
    const __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);   // g h c d
    _mm_storeu_si128((__m128i *)&state[0], _mm_blend_epi16(feba, dchg, 0xF0));  // a b c d
    _mm_storeu_si128((__m128i *)&state[4], _mm_alignr_epi8(dchg, feba, 8));     // e f g h
}

#else

int circuito_sha256_hardware_available(void) { return 0; }

void circuito_sha256_compress(uint32_t state[8], const uint8_t *blocks, size_t block_count) {
    (void)state;
    (void)blocks;
    (void)block_count;
    abort();  // Never called: the hardware is reported missing.
}

#endif
