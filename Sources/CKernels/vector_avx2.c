// AVX2 + FMA + F16C variant (Zen 3 and later, Haswell and later).
#include "CKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "common.h"

#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)

/// Stores a tile row's 8 outputs, or the first `width` of them.
SB_INLINE void avx2_store(float *y, __m256 v, int64_t width) {
    if (width >= 8) {
        _mm256_storeu_ps(y, v);
    } else {
        float lanes[8];
        _mm256_storeu_ps(lanes, v);
        memcpy(y, lanes, (size_t)width * sizeof(float));
    }
}

/// Packed rows (`sb_pack_rows`) for 8 of a group's 16 weight rows (`half` 0 or 1: the first or
/// second 32 bytes of each 64-byte run) against `NT` (1…4) activation rows. Without VNNI the dot is
/// vpmaddubsw + vpmaddwd: q4_0's pair sums (at most 2 · 15 · 127) add across all 8 runs in int16
/// without reaching its limit, then widen once; q8_0's weights are made signed again and multiplied
/// as magnitude × signed activation, widening each run. Either way the block's integer sum is exact,
/// and the f32 steps are the scalar code's.
SB_INLINE void avx2_packed_tile(sb_weight_type type, const int NT, const uint8_t *group, int half, int64_t k, const int8_t *xq,
                                const sb_activation_block *xb, float *y, int64_t ldy, int64_t width) {
    const int64_t blocks = k / 32;
    const __m256i low4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    __m256 acc[4], offsets[4];
    for (int t = 0; t < NT; t++) acc[t] = offsets[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < blocks; b++) {
        const uint8_t *runs = group + sb_packed_runs_at(type, b) + 32 * half;
        __m256i w[8];
        if (type != SB_Q8_0) {
            const uint8_t *nibbles = runs + (sb_has_fifth_bit(type) ? SB_PACKED_Q5_MASKS : 0);
            for (int j = 0; j < 4; j++) {
                const __m256i packed = _mm256_loadu_si256((const __m256i *)(nibbles + 64 * j));
                w[j] = _mm256_and_si256(packed, low4);
                w[j + 4] = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low4);
            }
            if (sb_has_fifth_bit(type)) {
                // This half's 32 bits of each run's mask: byte i takes byte i/8 of them, keeps bit
                // i%8, and becomes 0x10 where it is set.
                const uint8_t *masks = group + sb_packed_runs_at(type, b);
                const __m256i bytes = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
                const __m256i bit = _mm256_set1_epi64x((int64_t)0x8040201008040201);
                for (int c = 0; c < 8; c++) {
                    uint32_t fifth;
                    memcpy(&fifth, masks + 8 * c + 4 * half, 4);
                    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32((int)fifth), bytes);
                    const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
                    w[c] = _mm256_or_si256(w[c], _mm256_and_si256(set, _mm256_set1_epi8(0x10)));
                }
            }
        } else {
            const __m256i bias = _mm256_set1_epi8((char)0x80);
            for (int c = 0; c < 8; c++) w[c] = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(runs + 64 * c)), bias);
        }
        const uint8_t *factors = group + sb_packed_scales_at(type, b) + 16 * half;
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)factors));
        for (int t = 0; t < NT; t++) {
            const sb_activation_block *xt = xb + t * blocks + b;
            const int8_t *x = xq + t * k + 32 * b;
            __m256i sum;
            if (type == SB_Q4_0 || type == SB_Q4_1) {
                __m256i pairs = _mm256_setzero_si256();
                for (int c = 0; c < 8; c++) {
                    int32_t xc;
                    memcpy(&xc, x + 4 * c, 4);
                    pairs = _mm256_add_epi16(pairs, _mm256_maddubs_epi16(w[c], _mm256_set1_epi32(xc)));
                }
                sum = _mm256_add_epi32(_mm256_madd_epi16(pairs, ones), _mm256_set1_epi32(sb_packed_offset(type, xt)));
            } else if (sb_has_fifth_bit(type)) {
                // Pair sums reach 2 · 31 · 127: 4 runs add in int16, then widen.
                sum = _mm256_set1_epi32(sb_packed_offset(type, xt));
                for (int part = 0; part < 2; part++) {
                    __m256i pairs = _mm256_setzero_si256();
                    for (int c = 4 * part; c < 4 * part + 4; c++) {
                        int32_t xc;
                        memcpy(&xc, x + 4 * c, 4);
                        pairs = _mm256_add_epi16(pairs, _mm256_maddubs_epi16(w[c], _mm256_set1_epi32(xc)));
                    }
                    sum = _mm256_add_epi32(sum, _mm256_madd_epi16(pairs, ones));
                }
            } else {
                sum = _mm256_setzero_si256();
                for (int c = 0; c < 8; c++) {
                    int32_t xc;
                    memcpy(&xc, x + 4 * c, 4);
                    const __m256i products = _mm256_maddubs_epi16(_mm256_abs_epi8(w[c]), _mm256_sign_epi8(_mm256_set1_epi32(xc), w[c]));
                    sum = _mm256_add_epi32(sum, _mm256_madd_epi16(products, ones));
                }
            }
            const __m256 scale = _mm256_mul_ps(dw, _mm256_set1_ps(xt->d));
            acc[t] = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(sum), acc[t]);
        }
        if (sb_has_min(type)) {
            const __m256 mins = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(factors + 2 * SB_PACK_ROWS)));
            for (int t = 0; t < NT; t++) offsets[t] = _mm256_fmadd_ps(mins, _mm256_set1_ps(xb[t * blocks + b].ds), offsets[t]);
        }
    }
    for (int t = 0; t < NT; t++) avx2_store(y + t * ldy, sb_has_min(type) ? _mm256_add_ps(acc[t], offsets[t]) : acc[t], width);
}

/// One q4_K or q5_K sub-block of 8 of a group's rows (`half`) against NT activation rows (see
/// vnni_k4_sub_block), the integer sums as in avx2_packed_tile's q4_0 and q5_0.
SB_INLINE void avx2_k4_sub_block(sb_weight_type type, const int NT, const int high, const int s, const uint8_t *head, int half,
                                 __m256 d, __m256 dmin, int64_t b, int64_t k, const int8_t *xq, const sb_activation_block *xb,
                                 __m256 *acc, __m256 *offsets) {
    const int64_t blocks = k / 32;
    const __m256i low4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1), bit4 = _mm256_set1_epi8(0x10);
    const uint8_t *runs = head + sb_packed_k_nibbles(type, s) + 32 * half, *fifth = head + SB_PACKED_K4_HEADER + 32 * half;
    __m256i w[8];
    for (int c = 0; c < 8; c++) {
        const __m256i packed = _mm256_loadu_si256((const __m256i *)(runs + 64 * c));
        w[c] = _mm256_and_si256(high ? _mm256_srli_epi16(packed, 4) : packed, low4);
        if (type == SB_Q5_K) {
            // Bit s of each byte to bit 4 (16-bit shifts; the mask drops what crossed bytes).
            const __m256i bits = _mm256_loadu_si256((const __m256i *)(fifth + 64 * c));
            const __m256i moved = s < 4 ? _mm256_slli_epi16(bits, 4 - s) : _mm256_srli_epi16(bits, s - 4);
            w[c] = _mm256_or_si256(w[c], _mm256_and_si256(moved, bit4));
        }
    }
    const __m256 scale = _mm256_mul_ps(
        d, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(head + 64 + 16 * s + 8 * half)))));
    const __m256 offset = _mm256_mul_ps(
        dmin, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(head + 192 + 16 * s + 8 * half)))));
    for (int t = 0; t < NT; t++) {
        const sb_activation_block *xt = xb + t * blocks + b;
        const int8_t *x = xq + t * k + 32 * b;
        // q5_K's pair sums reach 2 · 31 · 127: 4 runs add in int16, then widen (q4_K's 8 at once).
        const int runs_per_widening = type == SB_Q5_K ? 4 : 8;
        __m256i sum = _mm256_setzero_si256();
        for (int part = 0; part < 8; part += runs_per_widening) {
            __m256i pairs = _mm256_setzero_si256();
            for (int c = part; c < part + runs_per_widening; c++) {
                int32_t xc;
                memcpy(&xc, x + 4 * c, 4);
                pairs = _mm256_add_epi16(pairs, _mm256_maddubs_epi16(w[c], _mm256_set1_epi32(xc)));
            }
            sum = _mm256_add_epi32(sum, _mm256_madd_epi16(pairs, ones));
        }
        acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(scale, _mm256_set1_ps(xt->d)), _mm256_cvtepi32_ps(sum), acc[t]);
        offsets[t] = _mm256_fnmadd_ps(offset, _mm256_set1_ps(xt->ds), offsets[t]);
    }
}

/// Packed q4_K or q5_K super-blocks for 8 of a group's 16 weight rows against `NT` (1 or 2)
/// activation rows: q4_K a pair of sub-blocks at a time, q5_K's 8 unrolled (see vnni_k4_tile).
SB_INLINE void avx2_k4_tile(sb_weight_type type, const int NT, const uint8_t *group, int half, int64_t k, const int8_t *xq,
                            const sb_activation_block *xb, float *y, int64_t ldy, int64_t width) {
    __m256 acc[4], offsets[4];
    for (int t = 0; t < NT; t++) acc[t] = offsets[t] = _mm256_setzero_ps();
    for (int64_t super = 0; super < k / 256; super++) {
        const uint8_t *head = group + super * sb_packed_super_bytes(type);
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(head + 16 * half)));
        const __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(head + 32 + 16 * half)));
        if (type == SB_Q5_K) {
#define SB_SUB(S) avx2_k4_sub_block(SB_Q5_K, NT, S % 2, S, head, half, d, dmin, 8 * super + S, k, xq, xb, acc, offsets);
            SB_SUB(0) SB_SUB(1) SB_SUB(2) SB_SUB(3) SB_SUB(4) SB_SUB(5) SB_SUB(6) SB_SUB(7)
#undef SB_SUB
            continue;
        }
#pragma clang loop unroll(disable)
        for (int s = 0; s < 8; s += 2) {
            avx2_k4_sub_block(SB_Q4_K, NT, 0, s, head, half, d, dmin, 8 * super + s, k, xq, xb, acc, offsets);
            avx2_k4_sub_block(SB_Q4_K, NT, 1, s + 1, head, half, d, dmin, 8 * super + s + 1, k, xq, xb, acc, offsets);
        }
    }
    for (int t = 0; t < NT; t++) avx2_store(y + t * ldy, _mm256_add_ps(acc[t], offsets[t]), width);
}

/// One q6_K sub-block of 8 of a group's rows (`half`) against NT activation rows (see
/// vnni_k6_sub_block). vpmaddubsw's pair sums reach 2 · 63 · 127, so two runs add in int16 before
/// each widening.
SB_INLINE void avx2_k6_sub_block(const int NT, const uint8_t *head, int half, int h, const int i, __m256 d, int64_t b, int64_t k,
                                 const int8_t *xq, const sb_activation_block *xb, __m256 *acc) {
    const int64_t blocks = k / 32;
    const int s = 4 * h + i;
    const __m256i low4 = _mm256_set1_epi8(0x0F), bits45 = _mm256_set1_epi8(0x30), ones = _mm256_set1_epi16(1);
    const uint8_t *low = head + sb_packed_k6_low(h, i & 1) + 32 * half, *high = head + sb_packed_k6_high(h) + 32 * half;
    __m256i w[8];
    for (int c = 0; c < 8; c++) {
        const __m256i l = _mm256_loadu_si256((const __m256i *)(low + 64 * c));
        const __m256i hb = _mm256_loadu_si256((const __m256i *)(high + 64 * c));
        const __m256i nibble = _mm256_and_si256(i < 2 ? l : _mm256_srli_epi16(l, 4), low4);
        const __m256i top = i < 3 ? _mm256_slli_epi16(hb, 4 - 2 * i) : _mm256_srli_epi16(hb, 2);
        w[c] = _mm256_or_si256(nibble, _mm256_and_si256(top, bits45));
    }
    const __m256i scale0 = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(head + 32 + 32 * s + 8 * half)));
    const __m256i scale1 = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(head + 48 + 32 * s + 8 * half)));
    for (int t = 0; t < NT; t++) {
        const sb_activation_block *xt = xb + t * blocks + b;
        const int8_t *x = xq + t * k + 32 * b;
        __m256i halves[2];
        for (int part = 0; part < 2; part++) {
            __m256i sum = _mm256_set1_epi32(-32 * xt->sum[part]);
            for (int c = 4 * part; c < 4 * part + 4; c += 2) {
                int32_t x0, x1;
                memcpy(&x0, x + 4 * c, 4);
                memcpy(&x1, x + 4 * c + 4, 4);
                const __m256i pairs = _mm256_add_epi16(
                    _mm256_maddubs_epi16(w[c], _mm256_set1_epi32(x0)), _mm256_maddubs_epi16(w[c + 1], _mm256_set1_epi32(x1)));
                sum = _mm256_add_epi32(sum, _mm256_madd_epi16(pairs, ones));
            }
            halves[part] = sum;
        }
        const __m256i sum = _mm256_add_epi32(_mm256_mullo_epi32(scale0, halves[0]), _mm256_mullo_epi32(scale1, halves[1]));
        acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(d, _mm256_set1_ps(xt->d)), _mm256_cvtepi32_ps(sum), acc[t]);
    }
}

/// Packed q6_K super-blocks for 8 of a group's 16 weight rows against `NT` (1 or 2) activation rows.
SB_INLINE void avx2_k6_tile(const int NT, const uint8_t *group, int half, int64_t k, const int8_t *xq, const sb_activation_block *xb,
                            float *y, int64_t ldy, int64_t width) {
    __m256 acc[4];
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t super = 0; super < k / 256; super++) {
        const uint8_t *head = group + super * SB_PACKED_K6_BYTES;
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(head + 16 * half)));
        // The sub-block's position in its half is a constant (shifts and nibble choice fold).
#pragma clang loop unroll(disable)
        for (int h = 0; h < 2; h++) {
            avx2_k6_sub_block(NT, head, half, h, 0, d, 8 * super + 4 * h, k, xq, xb, acc);
            avx2_k6_sub_block(NT, head, half, h, 1, d, 8 * super + 4 * h + 1, k, xq, xb, acc);
            avx2_k6_sub_block(NT, head, half, h, 2, d, 8 * super + 4 * h + 2, k, xq, xb, acc);
            avx2_k6_sub_block(NT, head, half, h, 3, d, 8 * super + 4 * h + 3, k, xq, xb, acc);
        }
    }
    for (int t = 0; t < NT; t++) avx2_store(y + t * ldy, acc[t], width);
}

/// One half-group's tile of NT activation rows, by format.
SB_INLINE void avx2_packed_tile_of(sb_weight_type type, const int NT, const uint8_t *group, int half, int64_t k, const int8_t *xq,
                                   const sb_activation_block *xb, float *y, int64_t ldy, int64_t width) {
    if (type == SB_Q4_K || type == SB_Q5_K) avx2_k4_tile(type, NT, group, half, k, xq, xb, y, ldy, width);
    else if (type == SB_Q6_K) avx2_k6_tile(NT, group, half, k, xq, xb, y, ldy, width);
    else avx2_packed_tile(type, NT, group, half, k, xq, xb, y, ldy, width);
}

SB_INLINE void avx2_packed_run(sb_weight_type type, const void *packed, int64_t k, int64_t o_begin, int64_t o_end,
                               const int8_t *xq, const sb_activation_block *xb, int64_t rows, float *y, int64_t ldy) {
    const int64_t blocks = k / 32, group_bytes = sb_packed_group_bytes(type, k);
    // Activation rows per tile: 4 for the 32-block formats; the K formats' 8 unpacked runs, scales
    // and accumulators fill the 16 registers at 2.
    const int tile = sb_is_k(type) ? 2 : 4;
    for (int64_t o = o_begin; o < o_end; o += 8) {
        const uint8_t *group = (const uint8_t *)packed + o / SB_PACK_ROWS * group_bytes;
        const int half = (int)(o % SB_PACK_ROWS / 8);
        const int64_t width = o_end - o < 8 ? o_end - o : 8;
        int64_t t = 0;
        if (tile == 4)
            for (; t + 4 <= rows; t += 4)
                avx2_packed_tile_of(type, 4, group, half, k, xq + t * k, xb + t * blocks, y + t * ldy + o, ldy, width);
        for (; t + 2 <= rows; t += 2)
            avx2_packed_tile_of(type, 2, group, half, k, xq + t * k, xb + t * blocks, y + t * ldy + o, ldy, width);
        if (t < rows) avx2_packed_tile_of(type, 1, group, half, k, xq + t * k, xb + t * blocks, y + t * ldy + o, ldy, width);
    }
}
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

/// `sb_exp` on 8 lanes: the same comparisons, rounding (vroundps to nearest even, as rintf in the
/// default mode), fused multiply-adds and exponent construction, so the same bits.
__attribute__((target("avx2,fma,f16c"))) static inline __m256 exp8(__m256 x) {
    const __m256 underflow = _mm256_cmp_ps(x, _mm256_set1_ps(-87.33654f), _CMP_LT_OQ);
    x = _mm256_blendv_ps(x, _mm256_set1_ps(88.0f), _mm256_cmp_ps(x, _mm256_set1_ps(88.0f), _CMP_GT_OQ));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-0.693359375f), x);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(2.12194440e-4f), r);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_add_ps(_mm256_fmadd_ps(y, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(underflow, _mm256_mul_ps(y, _mm256_castsi256_ps(bits)));
}

__attribute__((target("avx2,fma,f16c"))) float sb_exp_sum(const float *x, int64_t n, float shift, float *out) {
    __m256 lanes = _mm256_setzero_ps();
    const __m256 s = _mm256_set1_ps(shift);
    const int64_t whole = n / 8 * 8;
    for (int64_t i = 0; i < whole; i += 8) {
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), s));
        if (out) _mm256_storeu_ps(out + i, e);
        lanes = _mm256_add_ps(lanes, e);
    }
    float stored[8];
    _mm256_storeu_ps(stored, lanes);
    return sb_exp_sum_tail(x, whole, n, shift, out, sb_reduce8(stored));
}

__attribute__((target("avx2,fma,f16c"))) void sb_silu_multiply(float *gate, const float *up, int64_t n) {
    const int64_t whole = n / 8 * 8;
    for (int64_t i = 0; i < whole; i += 8) {
        const __m256 g = _mm256_loadu_ps(gate + i);
        const __m256 e = exp8(_mm256_xor_ps(g, _mm256_set1_ps(-0.0f)));  // e^(−g)
        const __m256 silu = _mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
        _mm256_storeu_ps(gate + i, _mm256_mul_ps(silu, _mm256_loadu_ps(up + i)));
    }
    for (int64_t i = whole; i < n; i++) gate[i] = sb_silu_times(gate[i], up[i]);
}

__attribute__((target("avx2,fma,f16c"))) void sb_packed_linear_avx2(sb_weight_type type, const void *packed, int64_t k,
    int64_t o_begin, int64_t o_end, const int8_t *xq, const sb_activation_block *xb, int64_t rows, float *y, int64_t ldy) {
    switch (type) {
    case SB_Q4_0: avx2_packed_run(SB_Q4_0, packed, k, o_begin, o_end, xq, xb, rows, y, ldy); break;
    case SB_Q4_1: avx2_packed_run(SB_Q4_1, packed, k, o_begin, o_end, xq, xb, rows, y, ldy); break;
    case SB_Q5_0: avx2_packed_run(SB_Q5_0, packed, k, o_begin, o_end, xq, xb, rows, y, ldy); break;
    case SB_Q5_1: avx2_packed_run(SB_Q5_1, packed, k, o_begin, o_end, xq, xb, rows, y, ldy); break;
    case SB_Q4_K: avx2_packed_run(SB_Q4_K, packed, k, o_begin, o_end, xq, xb, rows, y, ldy); break;
    case SB_Q5_K: avx2_packed_run(SB_Q5_K, packed, k, o_begin, o_end, xq, xb, rows, y, ldy); break;
    case SB_Q6_K: avx2_packed_run(SB_Q6_K, packed, k, o_begin, o_end, xq, xb, rows, y, ldy); break;
    default: avx2_packed_run(SB_Q8_0, packed, k, o_begin, o_end, xq, xb, rows, y, ldy); break;
    }
}
#endif
