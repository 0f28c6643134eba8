// AVX-512 VNNI variant (Zen 4, Ice Lake and later): vpdpbusd on 256-bit registers replaces the
// two-instruction AVX2 product in the row-major kernels, and the packed q8_0 / q4_0 kernel works on
// 512-bit registers, one lane per row of a 16-row group.
#include "CKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <string.h>

#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))), apply_to = function)
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
#define SB_NAME(name) vnni_##name
#define SB_DOT(u, s) _mm256_dpbusd_epi32(_mm256_setzero_si256(), (u), (s))
#include "vector_kernels.h"

/// Packed rows (`sb_pack_rows`) for one group of 16 weight rows against `NT` (1…8) activation rows:
/// each 32-block's 8 runs are loaded (q4_0: 4 loads split into low and high nibbles) once for all NT
/// rows; per activation row, 8 vpdpbusd with the activations' 4-byte runs broadcast give the 16
/// rows' exact block sums (two chains of 4, started from the offset's correction), and one fused
/// multiply-add per block adds them: `acc = fma(scale · x.d, sum, acc)` per lane, as the scalar code.
SB_INLINE void vnni_packed_tile(sb_weight_type type, const int NT, const uint8_t *group, int64_t k, const int8_t *xq,
                                const sb_activation_block *xb, float *y, int64_t ldy, int64_t width) {
    const int64_t blocks = k / 32;
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    __m512 acc[8];
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < blocks; b++) {
        const uint8_t *runs = group + sb_packed_runs_at(type, b);
        __m512i w[8];
        if (type == SB_Q4_0) {
            for (int j = 0; j < 4; j++) {
                const __m512i packed = _mm512_loadu_si512(runs + 64 * j);
                w[j] = _mm512_and_si512(packed, low4);
                w[j + 4] = _mm512_and_si512(_mm512_srli_epi16(packed, 4), low4);
            }
        } else {
            for (int c = 0; c < 8; c++) w[c] = _mm512_loadu_si512(runs + 64 * c);
        }
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(group + sb_packed_scales_at(type, b))));
        for (int t = 0; t < NT; t++) {
            const sb_activation_block *xt = xb + t * blocks + b;
            const int8_t *x = xq + t * k + 32 * b;
            __m512i even = _mm512_set1_epi32(sb_packed_offset(type, xt)), odd = _mm512_setzero_si512();
            for (int c = 0; c < 8; c += 2) {
                int32_t x0, x1;
                memcpy(&x0, x + 4 * c, 4);
                memcpy(&x1, x + 4 * c + 4, 4);
                even = _mm512_dpbusd_epi32(even, w[c], _mm512_set1_epi32(x0));
                odd = _mm512_dpbusd_epi32(odd, w[c + 1], _mm512_set1_epi32(x1));
            }
            const __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(xt->d));
            acc[t] = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(_mm512_add_epi32(even, odd)), acc[t]);
        }
    }
    const __mmask16 valid = (__mmask16)((1u << width) - 1);
    for (int t = 0; t < NT; t++) _mm512_mask_storeu_ps(y + t * ldy, valid, acc[t]);
}

SB_INLINE void vnni_packed_run(sb_weight_type type, const void *packed, int64_t k, int64_t o_begin, int64_t o_end,
                               const int8_t *xq, const sb_activation_block *xb, int64_t rows, float *y, int64_t ldy) {
    const int64_t blocks = k / 32, group_bytes = sb_packed_group_bytes(type, k);
    for (int64_t o = o_begin; o < o_end; o += SB_PACK_ROWS) {
        const uint8_t *group = (const uint8_t *)packed + o / SB_PACK_ROWS * group_bytes;
        const int64_t width = o_end - o < SB_PACK_ROWS ? o_end - o : SB_PACK_ROWS;
        int64_t t = 0;
        for (; t + 8 <= rows; t += 8) vnni_packed_tile(type, 8, group, k, xq + t * k, xb + t * blocks, y + t * ldy + o, ldy, width);
        const int8_t *xt = xq + t * k;
        const sb_activation_block *bt = xb + t * blocks;
        float *yt = y + t * ldy + o;
        switch (rows - t) {
#define SB_REST(N) case N: vnni_packed_tile(type, N, group, k, xt, bt, yt, ldy, width); break;
        SB_REST(1) SB_REST(2) SB_REST(3) SB_REST(4) SB_REST(5) SB_REST(6) SB_REST(7)
#undef SB_REST
        default: break;
        }
    }
}
#pragma clang attribute pop

void sb_quantized_linear_avx512vnni(sb_weight_type type, const void *w, size_t row_bytes, int64_t k, int64_t o_begin, int64_t o_end,
        const int8_t *xq, const sb_activation_block *xb, const sb_activation_quad *xg, int64_t rows, float *y, int64_t ldy) {
    vnni_linear(type, w, row_bytes, k, o_begin, o_end, xq, xb, xg, rows, y, ldy);
}

__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))) void sb_packed_linear_avx512vnni(
    sb_weight_type type, const void *packed, int64_t k, int64_t o_begin, int64_t o_end, const int8_t *xq,
    const sb_activation_block *xb, int64_t rows, float *y, int64_t ldy) {
    if (type == SB_Q4_0) vnni_packed_run(SB_Q4_0, packed, k, o_begin, o_end, xq, xb, rows, y, ldy);
    else vnni_packed_run(SB_Q8_0, packed, k, o_begin, o_end, xq, xb, rows, y, ldy);
}
#endif
