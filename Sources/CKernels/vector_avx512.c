// AVX-512 VNNI variant (Zen 4, Ice Lake and later): the packed kernels work on 512-bit registers,
// one lane per row of a 16-row group, with vpdpbusd's four-byte dot products.
#include "CKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "common.h"

#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))), apply_to = function)

/// The 16 rows' exact integer sums of a 32-block's 8 runs `w` times its activations `x` (each run's
/// 4 bytes broadcast), from `start`: two chains of 4 vpdpbusd, so each waits on half as many.
SB_INLINE __m512i vnni_block_sum(const __m512i w[8], const int8_t *x, __m512i start) {
    __m512i even = start, odd = _mm512_setzero_si512();
    for (int c = 0; c < 8; c += 2) {
        int32_t x0, x1;
        memcpy(&x0, x + 4 * c, 4);
        memcpy(&x1, x + 4 * c + 4, 4);
        even = _mm512_dpbusd_epi32(even, w[c], _mm512_set1_epi32(x0));
        odd = _mm512_dpbusd_epi32(odd, w[c + 1], _mm512_set1_epi32(x1));
    }
    return _mm512_add_epi32(even, odd);
}

/// Packed rows (`sb_pack_rows`) for one group of 16 weight rows against `NT` (1…8) activation rows:
/// each 32-block's 8 runs are loaded (q4_0, q4_1: 4 loads split into low and high nibbles; q5_0,
/// q5_1 the same with each run's fifth bits set from its mask) once for all NT
/// rows; per activation row, 8 vpdpbusd with the activations' 4-byte runs broadcast give the 16
/// rows' exact block sums (two chains of 4, started from the offset's correction), and one fused
/// multiply-add per block adds them: `acc = fma(scale · x.d, sum, acc)` per lane, as the scalar code
/// (q4_1, q5_1: and `offsets = fma(m, x.ds, offsets)`, added at the end).
SB_INLINE void vnni_packed_tile(sb_weight_type type, const int NT, const uint8_t *group, int64_t k, const int8_t *xq,
                                const sb_activation_block *xb, float *y, int64_t ldy, int64_t width) {
    const int64_t blocks = k / 32;
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    __m512 acc[8], offsets[8];
    for (int t = 0; t < NT; t++) acc[t] = offsets[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < blocks; b++) {
        const uint8_t *runs = group + sb_packed_runs_at(type, b);
        __m512i w[8];
        if (type != SB_Q8_0) {
            const uint8_t *nibbles = runs + (sb_has_fifth_bit(type) ? SB_PACKED_Q5_MASKS : 0);
            for (int j = 0; j < 4; j++) {
                const __m512i packed = _mm512_loadu_si512(nibbles + 64 * j);
                w[j] = _mm512_and_si512(packed, low4);
                w[j + 4] = _mm512_and_si512(_mm512_srli_epi16(packed, 4), low4);
            }
            if (sb_has_fifth_bit(type))  // each run's fifth bits, a 64-bit mask: 0x10 where set
                for (int c = 0; c < 8; c++) {
                    uint64_t fifth;
                    memcpy(&fifth, runs + 8 * c, 8);
                    w[c] = _mm512_or_si512(w[c], _mm512_maskz_mov_epi8((__mmask64)fifth, _mm512_set1_epi8(0x10)));
                }
        } else {
            for (int c = 0; c < 8; c++) w[c] = _mm512_loadu_si512(runs + 64 * c);
        }
        const uint8_t *factors = group + sb_packed_scales_at(type, b);
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)factors));
        for (int t = 0; t < NT; t++) {
            const sb_activation_block *xt = xb + t * blocks + b;
            const int8_t *x = xq + t * k + 32 * b;
            const __m512i sum = vnni_block_sum(w, x, _mm512_set1_epi32(sb_packed_offset(type, xt)));
            acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_set1_ps(xt->d)), _mm512_cvtepi32_ps(sum), acc[t]);
        }
        if (sb_has_min(type)) {
            const __m512 mins = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(factors + 2 * SB_PACK_ROWS)));
            for (int t = 0; t < NT; t++) offsets[t] = _mm512_fmadd_ps(mins, _mm512_set1_ps(xb[t * blocks + b].ds), offsets[t]);
        }
    }
    const __mmask16 valid = (__mmask16)((1u << width) - 1);
    for (int t = 0; t < NT; t++)
        _mm512_mask_storeu_ps(y + t * ldy, valid, sb_has_min(type) ? _mm512_add_ps(acc[t], offsets[t]) : acc[t]);
}

/// Bit `s` of each byte of `bits`, moved to bit 4 (16-bit shifts; the mask drops what crossed bytes).
SB_INLINE __m512i vnni_fifth_bit(__m512i bits, const int s) {
    return _mm512_and_si512(s < 4 ? _mm512_slli_epi16(bits, 4 - s) : _mm512_srli_epi16(bits, s - 4), _mm512_set1_epi8(0x10));
}

/// A packed K super-block's 16 rows' byte factors at `bytes` (sub-block scales or mins), widened and
/// multiplied by the rows' `d` or `dmin`.
SB_INLINE __m512 vnni_k_factors(const uint8_t *bytes, __m512 times) {
    return _mm512_mul_ps(times, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)bytes))));
}

/// One q4_K or q5_K sub-block (`s`, of the super-block at `head`) of a 16-row group against NT
/// activation rows: its 8 runs unpacked once (low or high nibbles, and q5_K's fifth bits) for all
/// NT rows, the 16 rows' scales widened from bytes and multiplied by d, then per activation row 8
/// vpdpbusd for the exact integer sums and one fused multiply-add of the scaled sum into the row's
/// accumulator, as the scalar code. With `offsets` (up to 4 rows), the offset `−(dmin · min) · x.ds`
/// into a second accumulator too; 8 rows' offsets have a pass of their own (`vnni_k4_offsets`).
SB_INLINE void vnni_k4_sub_block(sb_weight_type type, const int NT, const int high, const int s, const uint8_t *head, __m512 d,
                                 __m512 dmin, int64_t b, int64_t k, const int8_t *xq, const sb_activation_block *xb, __m512 *acc,
                                 __m512 *offsets) {
    const int64_t blocks = k / 32;
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    const uint8_t *runs = head + sb_packed_k_nibbles(type, s), *fifth = head + SB_PACKED_K4_HEADER;
    __m512i w[8];
    for (int c = 0; c < 8; c++) {
        const __m512i packed = _mm512_loadu_si512(runs + 64 * c);
        w[c] = _mm512_and_si512(high ? _mm512_srli_epi16(packed, 4) : packed, low4);
        if (type == SB_Q5_K) w[c] = _mm512_or_si512(w[c], vnni_fifth_bit(_mm512_loadu_si512(fifth + 64 * c), s));
    }
    const __m512 scale = vnni_k_factors(head + 64 + 16 * s, d), offset = vnni_k_factors(head + 192 + 16 * s, dmin);
    for (int t = 0; t < NT; t++) {
        const sb_activation_block *xt = xb + t * blocks + b;
        const int8_t *x = xq + t * k + 32 * b;
        const __m512i sum = vnni_block_sum(w, x, _mm512_setzero_si512());
        acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(scale, _mm512_set1_ps(xt->d)), _mm512_cvtepi32_ps(sum), acc[t]);
        if (offsets) offsets[t] = _mm512_fnmadd_ps(offset, _mm512_set1_ps(xt->ds), offsets[t]);
    }
}

/// The offsets of a group's q4_K or q5_K super-blocks for NT activation rows: per sub-block in order,
/// `−(dmin · min) · x.ds` into each row's second accumulator, as the scalar code. A pass of its own,
/// after the products of 8 rows: with them the products' loop would hold two accumulators per
/// activation row, and no more than 4 rows' fit the registers beside a sub-block's 8 unpacked runs.
/// (Fewer rows keep them in the loop: one row measured 23 GB/s that way and 14 with the pass.)
SB_INLINE void vnni_k4_offsets(sb_weight_type type, const int NT, const uint8_t *group, int64_t k, const sb_activation_block *xb,
                               __m512 *offsets) {
    const int64_t blocks = k / 32;
    for (int64_t super = 0; super < k / 256; super++) {
        const uint8_t *head = group + super * sb_packed_super_bytes(type);
        const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(head + 32)));
        for (int s = 0; s < 8; s++) {
            const __m512 offset = vnni_k_factors(head + 192 + 16 * s, dmin);
            for (int t = 0; t < NT; t++)
                offsets[t] = _mm512_fnmadd_ps(offset, _mm512_set1_ps(xb[t * blocks + 8 * super + s].ds), offsets[t]);
        }
    }
}

/// Packed q4_K or q5_K super-blocks for one group of 16 weight rows against `NT` (1…8) activation
/// rows. q4_K goes a pair of sub-blocks (one set of nibbles) at a time: a fully unrolled super-block
/// spilled its unpacked runs to the stack. q5_K's sub-block is a constant in its fifth bits' shifts,
/// so its 8 are unrolled.
SB_INLINE void vnni_k4_tile(sb_weight_type type, const int NT, const uint8_t *group, int64_t k, const int8_t *xq,
                            const sb_activation_block *xb, float *y, int64_t ldy, int64_t width) {
    __m512 acc[8], offsets[8];
    for (int t = 0; t < NT; t++) acc[t] = offsets[t] = _mm512_setzero_ps();
    __m512 *inline_offsets = NT <= 4 ? offsets : NULL;
    for (int64_t super = 0; super < k / 256; super++) {
        const uint8_t *head = group + super * sb_packed_super_bytes(type);
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)head));
        const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(head + 32)));
        if (type == SB_Q5_K) {
#define SB_SUB(S) vnni_k4_sub_block(SB_Q5_K, NT, S % 2, S, head, d, dmin, 8 * super + S, k, xq, xb, acc, inline_offsets);
            SB_SUB(0) SB_SUB(1) SB_SUB(2) SB_SUB(3) SB_SUB(4) SB_SUB(5) SB_SUB(6) SB_SUB(7)
#undef SB_SUB
            continue;
        }
#pragma clang loop unroll(disable)
        for (int s = 0; s < 8; s += 2) {
            vnni_k4_sub_block(SB_Q4_K, NT, 0, s, head, d, dmin, 8 * super + s, k, xq, xb, acc, inline_offsets);
            vnni_k4_sub_block(SB_Q4_K, NT, 1, s + 1, head, d, dmin, 8 * super + s + 1, k, xq, xb, acc, inline_offsets);
        }
    }
    if (NT > 4) vnni_k4_offsets(type, NT, group, k, xb, offsets);
    const __mmask16 valid = (__mmask16)((1u << width) - 1);
    for (int t = 0; t < NT; t++) _mm512_mask_storeu_ps(y + t * ldy, valid, _mm512_add_ps(acc[t], offsets[t]));
}

/// One q6_K sub-block (`s` of the super-block at `head`) of a 16-row group against NT activation
/// rows: its 8 runs of 6-bit levels assembled once (a nibble from the low runs, two bits from the
/// high runs moved to bits 4–5), then per activation row two chains of 4 vpdpbusd for the first
/// and second 16 values, each started from its `−32 · Σx`, multiplied by the rows' two int8 scales
/// (vpmulld) and added: the exact integer the scalar code forms, times `d · x.d`.
SB_INLINE void vnni_k6_sub_block(const int NT, const uint8_t *head, int h, const int i, __m512 d, int64_t b, int64_t k,
                                 const int8_t *xq, const sb_activation_block *xb, __m512 *acc) {
    const int64_t blocks = k / 32;
    const int s = 4 * h + i;
    const __m512i low4 = _mm512_set1_epi8(0x0F), bits45 = _mm512_set1_epi8(0x30);
    const uint8_t *low = head + sb_packed_k6_low(h, i & 1), *high = head + sb_packed_k6_high(h);
    __m512i w[8];
    for (int c = 0; c < 8; c++) {
        const __m512i l = _mm512_loadu_si512(low + 64 * c), hb = _mm512_loadu_si512(high + 64 * c);
        const __m512i nibble = _mm512_and_si512(i < 2 ? l : _mm512_srli_epi16(l, 4), low4);
        // Bits 2i, 2i+1 of each byte to bits 4, 5 (16-bit shifts; the mask drops what crossed bytes).
        const __m512i top = i < 3 ? _mm512_slli_epi16(hb, 4 - 2 * i) : _mm512_srli_epi16(hb, 2);
        w[c] = _mm512_or_si512(nibble, _mm512_and_si512(top, bits45));
    }
    const __m512i scale0 = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(head + 32 + 32 * s)));
    const __m512i scale1 = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(head + 48 + 32 * s)));
    for (int t = 0; t < NT; t++) {
        const sb_activation_block *xt = xb + t * blocks + b;
        const int8_t *x = xq + t * k + 32 * b;
        __m512i first = _mm512_set1_epi32(-32 * xt->sum[0]), second = _mm512_set1_epi32(-32 * xt->sum[1]);
        for (int c = 0; c < 4; c++) {
            int32_t x0, x1;
            memcpy(&x0, x + 4 * c, 4);
            memcpy(&x1, x + 16 + 4 * c, 4);
            first = _mm512_dpbusd_epi32(first, w[c], _mm512_set1_epi32(x0));
            second = _mm512_dpbusd_epi32(second, w[c + 4], _mm512_set1_epi32(x1));
        }
        const __m512i sum = _mm512_add_epi32(_mm512_mullo_epi32(scale0, first), _mm512_mullo_epi32(scale1, second));
        acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(d, _mm512_set1_ps(xt->d)), _mm512_cvtepi32_ps(sum), acc[t]);
    }
}

/// Packed q6_K super-blocks for one group of 16 weight rows against `NT` (1…8) activation rows.
SB_INLINE void vnni_k6_tile(const int NT, const uint8_t *group, int64_t k, const int8_t *xq, const sb_activation_block *xb,
                            float *y, int64_t ldy, int64_t width) {
    __m512 acc[8];
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t super = 0; super < k / 256; super++) {
        const uint8_t *head = group + super * SB_PACKED_K6_BYTES;
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)head));
        // The sub-block's position in its half is a constant (shifts and nibble choice fold).
#pragma clang loop unroll(disable)
        for (int h = 0; h < 2; h++) {
            vnni_k6_sub_block(NT, head, h, 0, d, 8 * super + 4 * h, k, xq, xb, acc);
            vnni_k6_sub_block(NT, head, h, 1, d, 8 * super + 4 * h + 1, k, xq, xb, acc);
            vnni_k6_sub_block(NT, head, h, 2, d, 8 * super + 4 * h + 2, k, xq, xb, acc);
            vnni_k6_sub_block(NT, head, h, 3, d, 8 * super + 4 * h + 3, k, xq, xb, acc);
        }
    }
    const __mmask16 valid = (__mmask16)((1u << width) - 1);
    for (int t = 0; t < NT; t++) _mm512_mask_storeu_ps(y + t * ldy, valid, acc[t]);
}

/// One group's tile of NT activation rows, by format.
SB_INLINE void vnni_packed_tile_of(sb_weight_type type, const int NT, const uint8_t *group, int64_t k, const int8_t *xq,
                                   const sb_activation_block *xb, float *y, int64_t ldy, int64_t width) {
    if (type == SB_Q4_K || type == SB_Q5_K) vnni_k4_tile(type, NT, group, k, xq, xb, y, ldy, width);
    else if (type == SB_Q6_K) vnni_k6_tile(NT, group, k, xq, xb, y, ldy, width);
    else vnni_packed_tile(type, NT, group, k, xq, xb, y, ldy, width);
}

SB_INLINE void vnni_packed_run(sb_weight_type type, const void *packed, int64_t k, int64_t o_begin, int64_t o_end,
                               const int8_t *xq, const sb_activation_block *xb, int64_t rows, float *y, int64_t ldy) {
    const int64_t blocks = k / 32, group_bytes = sb_packed_group_bytes(type, k);
    for (int64_t o = o_begin; o < o_end; o += SB_PACK_ROWS) {
        const uint8_t *group = (const uint8_t *)packed + o / SB_PACK_ROWS * group_bytes;
        const int64_t width = o_end - o < SB_PACK_ROWS ? o_end - o : SB_PACK_ROWS;
        int64_t t = 0;
        // Tiles of 8 activation rows: 8 unpacked runs, their scales and one accumulator per row fit
        // the 32 registers.
        for (; t + 8 <= rows; t += 8) vnni_packed_tile_of(type, 8, group, k, xq + t * k, xb + t * blocks, y + t * ldy + o, ldy, width);
        for (; t + 4 <= rows; t += 4) vnni_packed_tile_of(type, 4, group, k, xq + t * k, xb + t * blocks, y + t * ldy + o, ldy, width);
        const int8_t *xt = xq + t * k;
        const sb_activation_block *bt = xb + t * blocks;
        float *yt = y + t * ldy + o;
        switch (rows - t) {
#define SB_REST(N) case N: vnni_packed_tile_of(type, N, group, k, xt, bt, yt, ldy, width); break;
        SB_REST(1) SB_REST(2) SB_REST(3)
#undef SB_REST
        default: break;
        }
    }
}
#pragma clang attribute pop

__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))) void sb_packed_linear_avx512vnni(
    sb_weight_type type, const void *packed, int64_t k, int64_t o_begin, int64_t o_end, const int8_t *xq,
    const sb_activation_block *xb, int64_t rows, float *y, int64_t ldy) {
    switch (type) {
    case SB_Q4_0: vnni_packed_run(SB_Q4_0, packed, k, o_begin, o_end, xq, xb, rows, y, ldy); break;
    case SB_Q4_1: vnni_packed_run(SB_Q4_1, packed, k, o_begin, o_end, xq, xb, rows, y, ldy); break;
    case SB_Q5_0: vnni_packed_run(SB_Q5_0, packed, k, o_begin, o_end, xq, xb, rows, y, ldy); break;
    case SB_Q5_1: vnni_packed_run(SB_Q5_1, packed, k, o_begin, o_end, xq, xb, rows, y, ldy); break;
    case SB_Q4_K: vnni_packed_run(SB_Q4_K, packed, k, o_begin, o_end, xq, xb, rows, y, ldy); break;
    case SB_Q5_K: vnni_packed_run(SB_Q5_K, packed, k, o_begin, o_end, xq, xb, rows, y, ldy); break;
    case SB_Q6_K: vnni_packed_run(SB_Q6_K, packed, k, o_begin, o_end, xq, xb, rows, y, ldy); break;
    default: vnni_packed_run(SB_Q8_0, packed, k, o_begin, o_end, xq, xb, rows, y, ldy); break;
    }
}
#endif
