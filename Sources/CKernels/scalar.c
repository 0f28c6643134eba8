// Portable kernels: the activation quantizer every variant shares, and the scalar reference of the
// vector kernels (same integer sums per lane, same f32 operations in the same order).
#include "common.h"

static void quantize_activations_portable(const float *x, int64_t k, int8_t *q, sb_activation_block *blocks) {
    for (int64_t b = 0; b < k / 32; b++) {
        const float *xb = x + 32 * b;
        float amax = 0;
        for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(xb[i]));
        const float d = amax / 127.0f;
        const float id = d != 0 ? 1.0f / d : 0.0f;
        int sum0 = 0, sum1 = 0;
        for (int i = 0; i < 32; i++) {
            const int v = (int)rintf(xb[i] * id);  // to nearest, ties to even
            q[32 * b + i] = (int8_t)v;
            if (i < 16) sum0 += v; else sum1 += v;
        }
        blocks[b].d = d;
        blocks[b].ds = d * (float)(sum0 + sum1);
        blocks[b].sum[0] = (int16_t)sum0;
        blocks[b].sum[1] = (int16_t)sum1;
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

/// The portable quantizer's values with AVX2 (checked at load, dispatch.c): the same f32 maximum,
/// division, product and round-to-nearest-even (vcvtps2dq in the default rounding mode), so the
/// same bits, at a fraction of the time: a prefill quantizes every row before each quantized matmul.
__attribute__((target("avx2"))) static void quantize_activations_avx2(const float *x, int64_t k, int8_t *q,
                                                                      sb_activation_block *blocks) {
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
#endif

void sb_quantize_activations(const float *x, int64_t k, int8_t *q, sb_activation_block *blocks) {
#if defined(__x86_64__)
    quantize_activations_avx2(x, k, q, blocks);
#else
    quantize_activations_portable(x, k, q, blocks);
#endif
}

void sb_quantize_activations_portable(const float *x, int64_t k, int8_t *q, sb_activation_block *blocks) {
    quantize_activations_portable(x, k, q, blocks);
}

void sb_group_activations(const sb_activation_block *xb, int64_t rows, int64_t k, sb_activation_quad *quads) {
    const int64_t blocks = k / 32;
    for (int64_t g = 0; g < (rows + 3) / 4; g++)
        for (int64_t b = 0; b < blocks; b++) {
            sb_activation_quad *quad = quads + g * blocks + b;
            memset(quad, 0, sizeof *quad);
            for (int64_t i = 0; i < 4 && 4 * g + i < rows; i++) {
                const sb_activation_block *x = xb + (4 * g + i) * blocks + b;
                quad->d[i] = x->d;
                quad->ds[i] = x->ds;
                quad->sum[i][0] = x->sum[0];
                quad->sum[i][1] = x->sum[1];
            }
        }
}

/// The 32 integer levels of 32-block `b` as the vector kernels multiply them (unsigned for every
/// format but q8_0, whose levels are signed).
static void levels(sb_weight_type type, const uint8_t *row, int64_t b, int q[32]) {
    if (!sb_is_k(type)) {
        const uint8_t *block = row + b * sb_block_bytes(type);
        if (type == SB_Q8_0) {
            for (int i = 0; i < 32; i++) q[i] = (int8_t)block[2 + i];
            return;
        }
        const int header = (type == SB_Q4_0 || type == SB_Q5_0) ? 2 : 4;
        const int five = type == SB_Q5_0 || type == SB_Q5_1;
        uint32_t qh = 0;
        if (five) memcpy(&qh, block + header, 4);
        const uint8_t *qs = block + header + (five ? 4 : 0);
        for (int i = 0; i < 16; i++) {
            q[i] = (qs[i] & 0xF) | (int)(((qh >> i) & 1) << 4);
            q[i + 16] = (qs[i] >> 4) | (int)(((qh >> (i + 16)) & 1) << 4);
        }
        return;
    }
    const uint8_t *block = row + (b / 8) * sb_block_bytes(type);
    const int s = (int)(b % 8);
    if (type == SB_Q6_K) {
        const int h = s / 4, i = s % 4;
        const uint8_t *ql = block + 64 * h + 32 * (i & 1), *qh = block + 128 + 32 * h;
        for (int l = 0; l < 32; l++) q[l] = (i < 2 ? ql[l] & 0xF : ql[l] >> 4) | (((qh[l] >> (2 * i)) & 3) << 4);
        return;
    }
    const int five = type == SB_Q5_K;
    const uint8_t *qs = block + (five ? 48 : 16) + 32 * (s / 2), *qh = block + 16;
    for (int l = 0; l < 32; l++) {
        q[l] = s % 2 == 0 ? qs[l] & 0xF : qs[l] >> 4;
        if (five) q[l] |= ((qh[l] >> s) & 1) << 4;
    }
}

void sb_quantized_linear_scalar(sb_weight_type type, const void *w, size_t row_bytes, int64_t k, int64_t o_begin,
                                int64_t o_end, const int8_t *xq, const sb_activation_block *xb, int64_t rows, float *y,
                                int64_t ldy) {
    const int64_t blocks = k / 32;
    for (int64_t o = o_begin; o < o_end; o++) {
        const uint8_t *row = (const uint8_t *)w + o * row_bytes;
        for (int64_t t = 0; t < rows; t++) {
            float acc[8] = {0}, correction = 0;
            for (int64_t b = 0; b < blocks; b++) {
                const sb_block_factors f = sb_factors(type, row, b);
                const sb_activation_block *x = xb + t * blocks + b;
                const int8_t *xv = xq + t * k + 32 * b;
                int q[32];
                levels(type, row, b, q);
                const float s = f.scale * x->d;
                for (int lane = 0; lane < 8; lane++) {
                    int32_t p = 0;
                    for (int e = 4 * lane; e < 4 * lane + 4; e++) p += q[e] * xv[e];
                    p *= f.lane_scale[lane / 4];
                    acc[lane] = fmaf((float)p, s, acc[lane]);
                }
                if (f.has_correction) correction = fmaf(f.coef, sb_offset(type, &f, x), correction);
            }
            y[t * ldy + o] = sb_reduce8(acc) + correction;
        }
    }
}
