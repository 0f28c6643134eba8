// Attention of one query row and head over a paged KV cache stored in f16 (`--kv-type f16`): the
// scores, their softmax and the weighted sum of the values, widening each stored element to f32 as
// it is read. In C for the same reason as the float matmul: one vcvtph2ps per 8 elements, where
// Swift's Float16 vectors convert through spills.
//
// The arithmetic is fixed, so a row's output depends on its query and its cache alone (any batch,
// any thread): each score is one 8-lane f32 accumulator of fused multiply-adds over the head's
// dimensions, reduced as sb_reduce8 does, its tail added in order, then scaled; the softmax is
// sb_exp_sum's; each output element is one chain of fused multiply-adds over the positions in order.
#include "common.h"

/// Start of position `p`'s key or value: `base` is (block 0, layer, head), and a block holds
/// `block_size` positions of `head_dim` elements.
SB_INLINE const uint16_t *cache_row(const uint16_t *base, const int32_t *blocks, int64_t block_stride, int64_t block_size,
                                    int64_t head_dim, int64_t p) {
    return base + (int64_t)blocks[p / block_size] * block_stride + (p % block_size) * head_dim;
}

/// The softmax of `n` scores in place (as Swift's `softmax`: the maximum, `sb_exp_sum`, then one
/// multiply by the inverse of the sum).
SB_INLINE void normalize(float *scores, int64_t n) {
    float maximum = scores[0];
    for (int64_t i = 1; i < n; i++) maximum = scores[i] > maximum ? scores[i] : maximum;
    const float inverse = 1.0f / sb_exp_sum(scores, n, maximum, scores);
    for (int64_t i = 0; i < n; i++) scores[i] *= inverse;
}

static void attention_half_portable(const float *q, const uint16_t *keys, const uint16_t *values, const int32_t *blocks,
                                    int64_t block_stride, int64_t block_size, int64_t head_dim, int64_t first, int64_t last,
                                    float scale, float *scores, float *out) {
    const int64_t n = last - first + 1, vector_dim = head_dim & ~(int64_t)7;
    for (int64_t j = 0; j < n; j++) {
        const uint8_t *key = (const uint8_t *)cache_row(keys, blocks, block_stride, block_size, head_dim, first + j);
        float acc[8] = {0};
        for (int64_t i = 0; i < vector_dim; i++) acc[i % 8] = fmaf(q[i], sb_half(key + 2 * i), acc[i % 8]);
        float sum = sb_reduce8(acc);
        for (int64_t i = vector_dim; i < head_dim; i++) sum = fmaf(q[i], sb_half(key + 2 * i), sum);
        scores[j] = sum * scale;
    }
    normalize(scores, n);
    for (int64_t c = 0; c < head_dim; c++) {
        float sum = 0;
        for (int64_t j = 0; j < n; j++) {
            const uint8_t *value = (const uint8_t *)cache_row(values, blocks, block_stride, block_size, head_dim, first + j);
            sum = fmaf(scores[j], sb_half(value + 2 * c), sum);
        }
        out[c] = sum;
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)

SB_INLINE __m256 half8(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

SB_INLINE float reduce(__m256 acc) {
    float lanes[8];
    _mm256_storeu_ps(lanes, acc);
    return sb_reduce8(lanes);
}

/// `q · key` over the head's dimensions, as the portable loop computes it.
SB_INLINE float tail_dot(const float *q, const uint16_t *key, int64_t from, int64_t head_dim, float sum) {
    for (int64_t i = from; i < head_dim; i++) sum = fmaf(q[i], _cvtsh_ss(key[i]), sum);
    return sum;
}

static void attention_half_avx2(const float *q, const uint16_t *keys, const uint16_t *values, const int32_t *blocks,
                                int64_t block_stride, int64_t block_size, int64_t head_dim, int64_t first, int64_t last,
                                float scale, float *scores, float *out) {
    const int64_t n = last - first + 1, vector_dim = head_dim & ~(int64_t)7;
    // Scores, four keys at a time: four independent chains of fused multiply-adds share each load of q.
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
        const uint16_t *k[4];
        __m256 acc[4];
        for (int r = 0; r < 4; r++) {
            k[r] = cache_row(keys, blocks, block_stride, block_size, head_dim, first + j + r);
            acc[r] = _mm256_setzero_ps();
        }
        for (int64_t i = 0; i < vector_dim; i += 8) {
            const __m256 x = _mm256_loadu_ps(q + i);
            for (int r = 0; r < 4; r++) acc[r] = _mm256_fmadd_ps(x, half8(k[r] + i), acc[r]);
        }
        for (int r = 0; r < 4; r++) scores[j + r] = tail_dot(q, k[r], vector_dim, head_dim, reduce(acc[r])) * scale;
    }
    for (; j < n; j++) {
        const uint16_t *k = cache_row(keys, blocks, block_stride, block_size, head_dim, first + j);
        __m256 acc = _mm256_setzero_ps();
        for (int64_t i = 0; i < vector_dim; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), half8(k + i), acc);
        scores[j] = tail_dot(q, k, vector_dim, head_dim, reduce(acc)) * scale;
    }
    normalize(scores, n);
    // The weighted sum, 64 columns at a time held in registers across all positions.
    int64_t c = 0;
    for (; c + 64 <= head_dim; c += 64) {
        __m256 acc[8];
        for (int a = 0; a < 8; a++) acc[a] = _mm256_setzero_ps();
        for (int64_t p = 0; p < n; p++) {
            const uint16_t *v = cache_row(values, blocks, block_stride, block_size, head_dim, first + p) + c;
            const __m256 w = _mm256_set1_ps(scores[p]);
            for (int a = 0; a < 8; a++) acc[a] = _mm256_fmadd_ps(w, half8(v + 8 * a), acc[a]);
        }
        for (int a = 0; a < 8; a++) _mm256_storeu_ps(out + c + 8 * a, acc[a]);
    }
    for (; c + 8 <= head_dim; c += 8) {
        __m256 acc = _mm256_setzero_ps();
        for (int64_t p = 0; p < n; p++) {
            const uint16_t *v = cache_row(values, blocks, block_stride, block_size, head_dim, first + p) + c;
            acc = _mm256_fmadd_ps(_mm256_set1_ps(scores[p]), half8(v), acc);
        }
        _mm256_storeu_ps(out + c, acc);
    }
    for (; c < head_dim; c++) {
        float sum = 0;
        for (int64_t p = 0; p < n; p++)
            sum = fmaf(scores[p], _cvtsh_ss(cache_row(values, blocks, block_stride, block_size, head_dim, first + p)[c]), sum);
        out[c] = sum;
    }
}
#pragma clang attribute pop
#endif

void sb_attention_half(const float *q, const uint16_t *keys, const uint16_t *values, const int32_t *blocks, int64_t block_stride,
                       int64_t block_size, int64_t head_dim, int64_t first, int64_t last, float scale, float *scores, float *out) {
#if defined(__x86_64__)
    attention_half_avx2(q, keys, values, blocks, block_stride, block_size, head_dim, first, last, scale, scores, out);
#else
    attention_half_portable(q, keys, values, blocks, block_stride, block_size, head_dim, first, last, scale, scores, out);
#endif
}

void sb_attention_half_portable(const float *q, const uint16_t *keys, const uint16_t *values, const int32_t *blocks,
                                int64_t block_stride, int64_t block_size, int64_t head_dim, int64_t first, int64_t last, float scale,
                                float *scores, float *out) {
    attention_half_portable(q, keys, values, blocks, block_stride, block_size, head_dim, first, last, scale, scores, out);
}
