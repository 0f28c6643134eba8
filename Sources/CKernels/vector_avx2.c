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

/// The portable quantizer's values (scalar.c) with AVX2 (checked at load, dispatch.c): the same f32
/// maximum, division, product and round-to-nearest-even (vcvtps2dq in the default rounding mode), so
/// the same bits, at a fraction of the time: a prefill quantizes every row before each quantized matmul.
__attribute__((target("avx2"))) void sb_quantize_activations(const float *x, int64_t k, int8_t *q, sb_activation_block *blocks) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t b = 0; b < k / 32; b++) {
        const float *xb = x + 32 * b;
        __m256 v[4], amax = _mm256_setzero_ps();
        for (int i = 0; i < 4; i++) {
            v[i] = _mm256_loadu_ps(xb + 8 * i);
            amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[i]));
        }
        __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
        m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        m = _mm_max_ss(m, _mm_movehdup_ps(m));
        const float d = _mm_cvtss_f32(m) / 127.0f;
        const __m256 id = _mm256_set1_ps(d != 0 ? 1.0f / d : 0.0f);
        __m256i n[4];
        for (int i = 0; i < 4; i++) n[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], id));
        // int32 → int8 in order: the packs work per 128-bit lane, the permute puts the dwords back.
        const __m256i words = _mm256_packs_epi32(n[0], n[1]), words2 = _mm256_packs_epi32(n[2], n[3]);
        const __m256i bytes = _mm256_packs_epi16(words, words2);
        _mm256_storeu_si256((__m256i *)(q + 32 * b), _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
        const __m256i half0 = _mm256_add_epi32(n[0], n[1]), half1 = _mm256_add_epi32(n[2], n[3]);
        int32_t lanes0[8], lanes1[8];
        _mm256_storeu_si256((__m256i *)lanes0, half0);
        _mm256_storeu_si256((__m256i *)lanes1, half1);
        int sum0 = 0, sum1 = 0;
        for (int i = 0; i < 8; i++) {
            sum0 += lanes0[i];
            sum1 += lanes1[i];
        }
        blocks[b].d = d;
        blocks[b].ds = d * (float)(sum0 + sum1);
        blocks[b].sum[0] = (int16_t)sum0;
        blocks[b].sum[1] = (int16_t)sum1;
    }
}

void sb_quantized_linear_avx2(sb_weight_type type, const void *w, size_t row_bytes, int64_t k, int64_t o_begin, int64_t o_end,
        const int8_t *xq, const sb_activation_block *xb, const sb_activation_quad *xg, int64_t rows, float *y, int64_t ldy) {
    avx2_linear(type, w, row_bytes, k, o_begin, o_end, xq, xb, xg, rows, y, ldy);
}
#endif
