// AVX-512 VNNI variant (Zen 4, Ice Lake and later): vpdpbusd on 256-bit registers replaces the
// two-instruction AVX2 product.
#include "CKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <string.h>

#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))), apply_to = function)
// F16C converts the blocks' f16 scales (exactly, as the portable conversion does).
static inline float sb_half_f16c(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    // Through a general register and vmovd: loaded straight into a vector register, clang inserts the
    // 16 bits into whatever register is free (vpinsrw), often one written by the block before, and
    // that false dependency chained every block's scale to the last one's.
    uint32_t bits = h;
    __asm__("" : "+r"(bits));
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128((int)bits)));
}
#define SB_HALF sb_half_f16c
#include "common.h"
#define SB_NAME(name) vnni_##name
#define SB_DOT(u, s) _mm256_dpbusd_epi32(_mm256_setzero_si256(), (u), (s))
#include "vector_kernels.h"
#pragma clang attribute pop

void sb_quantized_linear_avx512vnni(sb_weight_type type, const void *w, size_t row_bytes, int64_t k, int64_t o_begin, int64_t o_end,
        const int8_t *xq, const sb_activation_block *xb, int64_t rows, float *y, int64_t ldy) {
    vnni_linear(type, w, row_bytes, k, o_begin, o_end, xq, xb, rows, y, ldy);
}
#endif
