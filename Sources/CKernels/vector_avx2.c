// AVX2 + FMA + F16C variant (Zen 3 and later, Haswell and later).
#include "CKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <string.h>

#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
// F16C converts the blocks' f16 scales (exactly, as the portable conversion does). The scale and
// the 2 bytes after it are loaded with one vmovd, which zeroes the rest of the register: a 16-bit
// load goes through vpinsrw into whatever register is free, often one written by the block before,
// and that false dependency chained every block's scale to the last one's.
static inline float sb_half_f16c(const uint8_t *p) {
    int32_t bits;
    memcpy(&bits, p, 4);
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits)));
}
// The same for a scale that ends its block (q6_K's): the 2 bytes before it are loaded instead.
static inline float sb_half_end_f16c(const uint8_t *p) {
    int32_t bits;
    memcpy(&bits, p - 2, 4);
    return _mm_cvtss_f32(_mm_movehdup_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(bits))));
}
#define SB_HALF_END sb_half_end_f16c
#define SB_HALF sb_half_f16c
#include "common.h"
#define SB_NAME(name) avx2_##name
#define SB_DOT(u, s) _mm256_madd_epi16(_mm256_maddubs_epi16((u), (s)), _mm256_set1_epi16(1))
#include "vector_kernels.h"
#pragma clang attribute pop

void sb_quantized_linear_avx2(sb_weight_type type, const void *w, size_t row_bytes, int64_t k, int64_t o_begin, int64_t o_end,
        const int8_t *xq, const sb_activation_block *xb, const sb_activation_quad *xg, int64_t rows, float *y, int64_t ldy) {
    avx2_linear(type, w, row_bytes, k, o_begin, o_end, xq, xb, xg, rows, y, ldy);
}
#endif
