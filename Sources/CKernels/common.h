// Shared by the scalar and vector kernels: block layouts and the per-block arithmetic both follow.
#ifndef CKERNELS_COMMON_H
#define CKERNELS_COMMON_H

#include "CKernels.h"
#include <math.h>
#include <string.h>

#define SB_INLINE static inline __attribute__((always_inline))

/// Bytes per 32-element block (or per 256-element super-block for the K formats).
SB_INLINE int64_t sb_block_bytes(sb_weight_type type) {
    switch (type) {
    case SB_Q8_0: return 34;
    case SB_Q4_0: return 18;
    case SB_Q4_1: return 20;
    case SB_Q5_0: return 22;
    case SB_Q5_1: return 24;
    case SB_Q4_K: return 144;
    case SB_Q5_K: return 176;
    case SB_Q6_K: return 210;
    }
    return 0;
}

SB_INLINE int sb_is_k(sb_weight_type type) { return type == SB_Q4_K || type == SB_Q5_K || type == SB_Q6_K; }

/// IEEE f16 → f32 (exact; no F16C needed).
SB_INLINE float sb_half(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff, bits;
    if (exponent == 0x1f) {
        bits = sign | 0x7f800000 | (mantissa << 13);
    } else if (exponent != 0) {
        bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
    } else if (mantissa == 0) {
        bits = sign;
    } else {  // subnormal: normalize
        exponent = 113;
        while (!(mantissa & 0x400)) { mantissa <<= 1; exponent--; }
        bits = sign | (exponent << 23) | ((mantissa & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/// The 6-bit scale and min of sub-block `j` of a q4_K / q5_K super-block.
SB_INLINE void sb_scale_min_k4(int j, const uint8_t *q, uint8_t *scale, uint8_t *min) {
    if (j < 4) {
        *scale = q[j] & 63;
        *min = q[j + 4] & 63;
    } else {
        *scale = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/// The fixed reduction of an 8-lane accumulator: (lane i + lane i+4), then (0+2, 1+3), then (0+1).
SB_INLINE float sb_reduce8(const float a[8]) {
    const float l0 = a[0] + a[4], l1 = a[1] + a[5], l2 = a[2] + a[6], l3 = a[3] + a[7];
    const float m0 = l0 + l2, m1 = l1 + l3;
    return m0 + m1;
}

/// Whether a 32-block format adds a per-block minimum (`d · q + m`: q4_1, q5_1).
SB_INLINE int sb_has_min(sb_weight_type type) { return type == SB_Q4_1 || type == SB_Q5_1; }

/// Whether a 32-block format keeps its weights' fifth bits apart (q5_0, q5_1).
SB_INLINE int sb_has_fifth_bit(sb_weight_type type) { return type == SB_Q5_0 || type == SB_Q5_1; }

/// Bytes of one packed 32-block's weights for a group of `SB_PACK_ROWS` rows (`sb_pack_rows`):
/// q4_0 and q4_1 their 4 nibble runs; q5_0 and q5_1 the 8 runs' fifth bits (one 64-bit mask per
/// run, bit `4r + e` for row `r`'s weight `4c + e`) before the same nibble runs; q8_0 its 8 byte runs.
SB_INLINE int64_t sb_packed_quant_bytes(sb_weight_type type) {
    return type == SB_Q8_0 ? 512 : sb_has_fifth_bit(type) ? 320 : 256;
}

/// Bytes of one packed 32-block's factors: the 16 rows' f16 scales, then (q4_1, q5_1) their f16 minimums.
SB_INLINE int64_t sb_packed_factor_bytes(sb_weight_type type) { return (sb_has_min(type) ? 4 : 2) * SB_PACK_ROWS; }

/// Where a q5_0 or q5_1 block's nibble runs start after its fifth-bit masks.
#define SB_PACKED_Q5_MASKS 64

/// Bytes of one packed pair of 32-blocks: the two blocks' factors (16 f16 scales each, and q4_1's
/// and q5_1's 16 minimums after each block's scales), then the two blocks' weights. Scales beside
/// their weights keep a group one sequential stream (scales in a region of their own were a second
/// stream per group, and one-thread decode read q8_0 weights at two thirds of the rate).
SB_INLINE int64_t sb_packed_pair_bytes(sb_weight_type type) { return 2 * (sb_packed_factor_bytes(type) + sb_packed_quant_bytes(type)); }

/// Bytes of one packed q4_K super-block of a group (256 weights of 16 rows): a header of the rows'
/// d and dmin (16 f16 each) and the 8 sub-blocks' 6-bit scales and mins as bytes (sub-block by
/// sub-block, 16 rows each: 128 bytes each), then the weights: per pair of sub-blocks 8 runs of 64
/// bytes, the low nibbles the pair's first sub-block and the high nibbles its second, as ggml pairs
/// them. 2,368 bytes against the rows' 2,304: the unpacked scales cost 2.8% more memory and save
/// their 6-bit unpacking per row on every product.
#define SB_PACKED_K4_HEADER 320
#define SB_PACKED_K4_BYTES (SB_PACKED_K4_HEADER + 2048)

/// Bytes of one packed q5_K super-block of a group: q4_K's header, then 8 runs of 64 bytes of the
/// fifth bits (ggml's `qh`: run `c` holds bytes `4c…4c+3` of each of the 16 rows, bit `s` of a
/// byte being that weight's fifth bit in sub-block `s`), then q4_K's nibble runs. The fifth bits
/// come first because every sub-block reads them, so the super-block stays one sequential stream.
/// 2,880 bytes against the rows' 2,816.
#define SB_PACKED_K5_BYTES (SB_PACKED_K4_HEADER + 512 + 2048)

/// Where sub-block `s`'s nibble runs start in a packed q4_K or q5_K super-block.
SB_INLINE int64_t sb_packed_k_nibbles(sb_weight_type type, int s) {
    return SB_PACKED_K4_HEADER + (type == SB_Q5_K ? 512 : 0) + 512 * (s / 2);
}

/// Bytes of one packed q6_K super-block of a group: a header of the rows' d (16 f16) and their 16
/// int8 scales (per 32-value sub-block, the first and second 16 values' scale, 16 rows each; padded
/// to 320 bytes so the weights start on a cache line), then per half `h` of the super-block (its
/// sub-blocks `4h…4h+3`) 1,536 bytes: 8 runs of 64 bytes of the 2-bit high parts (`qh[32h …]`,
/// sub-block `4h + i` at bits `2i`), then two sets of 8 runs of low nibbles (set `p` holds ggml's
/// `ql[64h + 32p …]`: sub-block `4h + p` in the low nibbles, `4h + p + 2` in the high). The first
/// sub-block of a half reads its first two sets, so the super-block is one sequential stream (the
/// high parts in a region after all the nibbles read q6_K rows at half the rate, waiting on
/// memory at each half). 3,392 bytes against the rows' 3,360.
#define SB_PACKED_K6_HEADER 320
#define SB_PACKED_K6_BYTES (SB_PACKED_K6_HEADER + 3072)

/// Where the low nibbles of set `p` of half `h`, and that half's high parts, start in a packed
/// q6_K super-block.
SB_INLINE int64_t sb_packed_k6_low(int h, int p) { return SB_PACKED_K6_HEADER + 1536 * h + 512 + 512 * p; }
SB_INLINE int64_t sb_packed_k6_high(int h) { return SB_PACKED_K6_HEADER + 1536 * h; }

/// Bytes of one packed super-block of a group (q4_K, q5_K or q6_K).
SB_INLINE int64_t sb_packed_super_bytes(sb_weight_type type) {
    return type == SB_Q4_K ? SB_PACKED_K4_BYTES : type == SB_Q5_K ? SB_PACKED_K5_BYTES : SB_PACKED_K6_BYTES;
}

/// Bytes of one packed group: its pairs of 32-blocks (an odd last block fills half a pair), or its
/// q4_K, q5_K or q6_K super-blocks.
SB_INLINE int64_t sb_packed_group_bytes(sb_weight_type type, int64_t k) {
    if (sb_is_k(type)) return k / 256 * sb_packed_super_bytes(type);
    return (k / 32 + 1) / 2 * sb_packed_pair_bytes(type);
}

/// Where 32-block `b`'s weights start in a packed group.
SB_INLINE int64_t sb_packed_runs_at(sb_weight_type type, int64_t b) {
    return b / 2 * sb_packed_pair_bytes(type) + 2 * sb_packed_factor_bytes(type) + b % 2 * sb_packed_quant_bytes(type);
}

/// Where 32-block `b`'s 16 f16 scales are in a packed group.
SB_INLINE int64_t sb_packed_scales_at(sb_weight_type type, int64_t b) {
    return b / 2 * sb_packed_pair_bytes(type) + b % 2 * sb_packed_factor_bytes(type);
}

/// The integer added to a packed block's unsigned dot product to make it the signed one: the
/// weights are stored offset by 8 (q4_0), 16 (q5_0) or 128 (q8_0), so Σ (u − offset)·x = Σ u·x −
/// offset · Σ x. q4_1's and q5_1's levels are unsigned as they are (their minimum is added apart).
SB_INLINE int32_t sb_packed_offset(sb_weight_type type, const sb_activation_block *x) {
    if (sb_has_min(type)) return 0;
    return -(type == SB_Q4_0 ? 8 : type == SB_Q5_0 ? 16 : 128) * ((int32_t)x->sum[0] + x->sum[1]);
}

/// e^x for the vocabulary-wide sums of sampling (`sb_exp_sum`, whose inputs are x − max ≤ 0):
/// Cephes' expf polynomial (within 2 ulp of the exact value on [-87.3, 88]), written with fused
/// multiply-adds so the vector kernel computes the same bits lane by lane. 0 below -87.3 (e^x there
/// is under f32's normal range, and a masked logit of -inf must get no probability); inputs above 88
/// give e^88 (2^128 would be needed past it); NaN stays NaN.
SB_INLINE float sb_exp(float x) {
    if (x != x) return x;
    if (x < -87.33654f) return 0;
    x = x > 88.0f ? 88.0f : x;
    const float n = rintf(x * 1.44269504088896341f);
    float r = fmaf(n, -0.693359375f, x);
    r = fmaf(n, 2.12194440e-4f, r);
    float y = 1.9875691500e-4f;
    y = fmaf(y, r, 1.3981999507e-3f);
    y = fmaf(y, r, 8.3334519073e-3f);
    y = fmaf(y, r, 4.1665795894e-2f);
    y = fmaf(y, r, 1.6666665459e-1f);
    y = fmaf(y, r, 5.0000001201e-1f);
    y = fmaf(y, r * r, r) + 1.0f;
    const uint32_t bits = (uint32_t)((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, 4);
    return y * scale;
}

/// One element of SwiGLU's gating (`sb_silu_multiply`): silu(g) · u.
SB_INLINE float sb_silu_times(float g, float u) { return g / (1.0f + sb_exp(-g)) * u; }

/// `sb_exp_sum`'s last values, `x[from..<n]`, added one at a time to `sum` (and written to `out`).
SB_INLINE float sb_exp_sum_tail(const float *x, int64_t from, int64_t n, float shift, float *out, float sum) {
    for (int64_t i = from; i < n; i++) {
        const float e = sb_exp(x[i] - shift);
        if (out) out[i] = e;
        sum += e;
    }
    return sum;
}

#endif
