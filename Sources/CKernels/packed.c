// Packed rows (CKernels.h, `sb_pack_rows`) of quantized matrices, every format: the copy made at
// load, and the portable scalar reference of the vector kernels that multiply it (vector_avx2.c,
// vector_avx512.c).
//
// Why a copy: ggml's row-major blocks leave one row's 32-block sum spread over a vector's lanes, so a
// kernel either reduces it across lanes per block (several instructions per row and block) or keeps
// 8 lanes of partial sums and scales each lane, with the offsets as a separate correction: about 15
// instructions per 32-block and row for q4_0, measured. With 16 rows side by side in 4-byte runs,
// one integer dot instruction advances 16 rows, a block's exact integer sum lands in each row's
// lane, and one fused multiply-add per block adds it: about 2 instructions per block and row.
#include "common.h"

size_t sb_packed_bytes(sb_weight_type type, int64_t rows, int64_t k) {
    return (size_t)((rows + SB_PACK_ROWS - 1) / SB_PACK_ROWS * sb_packed_group_bytes(type, k));
}

/// q4_K or q5_K rows into packed super-blocks (`SB_PACKED_K4_BYTES`, `SB_PACKED_K5_BYTES`). ggml's
/// q5_K block is q4_K's with its 32 bytes of fifth bits (`qh`) before the nibbles.
static void pack_q45_k(sb_weight_type type, const uint8_t *w, size_t row_bytes, int64_t rows, int64_t k, uint8_t *packed) {
    const int64_t group_bytes = sb_packed_group_bytes(type, k), super_bytes = sb_packed_super_bytes(type);
    const int five = type == SB_Q5_K;
    for (int64_t o = 0; o < rows; o++) {
        const int64_t r = o % SB_PACK_ROWS;
        uint8_t *group = packed + o / SB_PACK_ROWS * group_bytes;
        for (int64_t super = 0; super < k / 256; super++) {
            const uint8_t *block = w + o * row_bytes + super * sb_block_bytes(type);
            const uint8_t *nibbles = block + 16 + (five ? 32 : 0);
            uint8_t *out = group + super * super_bytes;
            memcpy(out + 2 * r, block, 2);
            memcpy(out + 32 + 2 * r, block + 2, 2);
            for (int s = 0; s < 8; s++) sb_scale_min_k4(s, block + 4, out + 64 + 16 * s + r, out + 192 + 16 * s + r);
            if (five)
                for (int c = 0; c < 8; c++) memcpy(out + SB_PACKED_K4_HEADER + 64 * c + 4 * r, block + 16 + 4 * c, 4);
            for (int j = 0; j < 4; j++)
                for (int c = 0; c < 8; c++)
                    memcpy(out + sb_packed_k_nibbles(type, 2 * j) + 64 * c + 4 * r, nibbles + 32 * j + 4 * c, 4);
        }
    }
}

/// q6_K rows into packed super-blocks (`SB_PACKED_K6_BYTES`).
static void pack_q6_k(const uint8_t *w, size_t row_bytes, int64_t rows, int64_t k, uint8_t *packed) {
    const int64_t group_bytes = sb_packed_group_bytes(SB_Q6_K, k);
    for (int64_t o = 0; o < rows; o++) {
        const int64_t r = o % SB_PACK_ROWS;
        uint8_t *group = packed + o / SB_PACK_ROWS * group_bytes;
        for (int64_t super = 0; super < k / 256; super++) {
            const uint8_t *block = w + o * row_bytes + super * sb_block_bytes(SB_Q6_K);
            uint8_t *out = group + super * SB_PACKED_K6_BYTES;
            memcpy(out + 2 * r, block + 208, 2);
            for (int s = 0; s < 8; s++)
                for (int half = 0; half < 2; half++) {
                    // ggml's scale of values 16·half… of sub-block s = 4h + i: scales[8h + 2i + half].
                    out[32 + 32 * s + 16 * half + r] = block[192 + 8 * (s / 4) + 2 * (s % 4) + half];
                }
            for (int h = 0; h < 2; h++)
                for (int c = 0; c < 8; c++) {
                    for (int p = 0; p < 2; p++) memcpy(out + sb_packed_k6_low(h, p) + 64 * c + 4 * r, block + 64 * h + 32 * p + 4 * c, 4);
                    memcpy(out + sb_packed_k6_high(h) + 64 * c + 4 * r, block + 128 + 32 * h + 4 * c, 4);
                }
        }
    }
}

void sb_pack_rows(sb_weight_type type, const void *w, size_t row_bytes, int64_t rows, int64_t k, void *packed) {
    const int64_t blocks = k / 32, group_bytes = sb_packed_group_bytes(type, k);
    memset(packed, 0, sb_packed_bytes(type, rows, k));
    if (type == SB_Q4_K || type == SB_Q5_K) {
        pack_q45_k(type, w, row_bytes, rows, k, packed);
        return;
    }
    if (type == SB_Q6_K) {
        pack_q6_k(w, row_bytes, rows, k, packed);
        return;
    }
    for (int64_t o = 0; o < rows; o++) {
        const int64_t r = o % SB_PACK_ROWS;
        uint8_t *group = (uint8_t *)packed + o / SB_PACK_ROWS * group_bytes;
        for (int64_t b = 0; b < blocks; b++) {
            const uint8_t *block = (const uint8_t *)w + o * row_bytes + b * sb_block_bytes(type);
            // ggml's blocks: d, then m (q4_1, q5_1), then the fifth bits (q5_0, q5_1), then the weights.
            const int header = sb_has_min(type) ? 4 : 2;
            memcpy(group + sb_packed_scales_at(type, b) + 2 * r, block, 2);
            if (sb_has_min(type)) memcpy(group + sb_packed_scales_at(type, b) + 2 * SB_PACK_ROWS + 2 * r, block + 2, 2);
            uint8_t *runs = group + sb_packed_runs_at(type, b) + 4 * r;
            if (type == SB_Q4_0 || type == SB_Q4_1) {
                for (int j = 0; j < 4; j++) memcpy(runs + 64 * j, block + header + 4 * j, 4);
            } else if (sb_has_fifth_bit(type)) {
                uint32_t fifth;
                memcpy(&fifth, block + header, 4);
                uint8_t *masks = group + sb_packed_runs_at(type, b);
                for (int c = 0; c < 8; c++)
                    for (int e = 0; e < 4; e++)
                        if ((fifth >> (4 * c + e)) & 1) masks[8 * c + (4 * r + e) / 8] |= (uint8_t)(1u << ((4 * r + e) % 8));
                for (int j = 0; j < 4; j++) memcpy(runs + SB_PACKED_Q5_MASKS + 64 * j, block + header + 4 + 4 * j, 4);
            } else {
                for (int c = 0; c < 8; c++)
                    for (int e = 0; e < 4; e++) runs[64 * c + e] = block[2 + 4 * c + e] ^ 0x80;
            }
        }
    }
}

/// Packed q4_K and q5_K: per sub-block, the exact integer sum of its levels (the nibble, and q5_K's
/// fifth bit) times the activations, times `(d · scale) · x.d` into the row's accumulator, and
/// `−(dmin · min) · x.ds` into a second one for the offsets; the output is their sum.
static void q45_k_scalar(sb_weight_type type, const uint8_t *packed, int64_t k, int64_t o_begin, int64_t o_end, const int8_t *xq,
                         const sb_activation_block *xb, int64_t rows, float *y, int64_t ldy) {
    const int64_t blocks = k / 32, group_bytes = sb_packed_group_bytes(type, k), super_bytes = sb_packed_super_bytes(type);
    for (int64_t o = o_begin; o < o_end; o++) {
        const int64_t r = o % SB_PACK_ROWS;
        const uint8_t *group = packed + o / SB_PACK_ROWS * group_bytes;
        for (int64_t t = 0; t < rows; t++) {
            float acc = 0, offsets = 0;
            for (int64_t super = 0; super < k / 256; super++) {
                const uint8_t *head = group + super * super_bytes;
                const float d = sb_half(head + 2 * r), dmin = sb_half(head + 32 + 2 * r);
                for (int s = 0; s < 8; s++) {
                    const int64_t b = 8 * super + s;
                    const sb_activation_block *x = xb + t * blocks + b;
                    const int8_t *xv = xq + t * k + 32 * b;
                    const uint8_t *runs = head + sb_packed_k_nibbles(type, s) + 4 * r, *fifth = head + SB_PACKED_K4_HEADER + 4 * r;
                    int32_t sum = 0;
                    for (int c = 0; c < 8; c++)
                        for (int e = 0; e < 4; e++) {
                            int level = (runs[64 * c + e] >> (4 * (s % 2))) & 0xF;
                            if (type == SB_Q5_K) level |= ((fifth[64 * c + e] >> s) & 1) << 4;
                            sum += level * xv[4 * c + e];
                        }
                    const float scale = d * (float)head[64 + 16 * s + r], offset = dmin * (float)head[192 + 16 * s + r];
                    acc = fmaf(scale * x->d, (float)sum, acc);
                    offsets = fmaf(-offset, x->ds, offsets);
                }
            }
            y[t * ldy + o] = acc + offsets;
        }
    }
}

/// Packed q6_K: per sub-block, the exact integer `scale₀ · Σ (q − 32)·x` over its first 16 values
/// plus `scale₁ ·` the same over its last 16 (at most 2²⁴ in magnitude, so exact in f32 too), times
/// `d · x.d` into the row's accumulator.
static void q6_k_scalar(const uint8_t *packed, int64_t k, int64_t o_begin, int64_t o_end, const int8_t *xq,
                        const sb_activation_block *xb, int64_t rows, float *y, int64_t ldy) {
    const int64_t blocks = k / 32, group_bytes = sb_packed_group_bytes(SB_Q6_K, k);
    for (int64_t o = o_begin; o < o_end; o++) {
        const int64_t r = o % SB_PACK_ROWS;
        const uint8_t *group = packed + o / SB_PACK_ROWS * group_bytes;
        for (int64_t t = 0; t < rows; t++) {
            float acc = 0;
            for (int64_t super = 0; super < k / 256; super++) {
                const uint8_t *head = group + super * SB_PACKED_K6_BYTES;
                const float d = sb_half(head + 2 * r);
                for (int s = 0; s < 8; s++) {
                    const int64_t b = 8 * super + s;
                    const sb_activation_block *x = xb + t * blocks + b;
                    const int8_t *xv = xq + t * k + 32 * b;
                    const int h = s / 4, i = s % 4;
                    const uint8_t *low = head + sb_packed_k6_low(h, i & 1) + 4 * r, *high = head + sb_packed_k6_high(h) + 4 * r;
                    int32_t halves[2] = {-32 * x->sum[0], -32 * x->sum[1]};
                    for (int c = 0; c < 8; c++)
                        for (int e = 0; e < 4; e++) {
                            const int q = ((low[64 * c + e] >> (i < 2 ? 0 : 4)) & 0xF) | (((high[64 * c + e] >> (2 * i)) & 3) << 4);
                            halves[c / 4] += q * xv[4 * c + e];
                        }
                    const int32_t sum = (int8_t)head[32 + 32 * s + r] * halves[0] + (int8_t)head[32 + 32 * s + 16 + r] * halves[1];
                    acc = fmaf(d * x->d, (float)sum, acc);
                }
            }
            y[t * ldy + o] = acc;
        }
    }
}

void sb_packed_linear_scalar(sb_weight_type type, const void *packed, int64_t k, int64_t o_begin, int64_t o_end,
                             const int8_t *xq, const sb_activation_block *xb, int64_t rows, float *y, int64_t ldy) {
    if (type == SB_Q4_K || type == SB_Q5_K) {
        q45_k_scalar(type, packed, k, o_begin, o_end, xq, xb, rows, y, ldy);
        return;
    }
    if (type == SB_Q6_K) {
        q6_k_scalar(packed, k, o_begin, o_end, xq, xb, rows, y, ldy);
        return;
    }
    const int64_t blocks = k / 32, group_bytes = sb_packed_group_bytes(type, k);
    for (int64_t o = o_begin; o < o_end; o++) {
        const int64_t r = o % SB_PACK_ROWS;
        const uint8_t *group = (const uint8_t *)packed + o / SB_PACK_ROWS * group_bytes;
        for (int64_t t = 0; t < rows; t++) {
            float acc = 0, offsets = 0;
            for (int64_t b = 0; b < blocks; b++) {
                const uint8_t *runs = group + sb_packed_runs_at(type, b) + 4 * r;
                const uint8_t *masks = group + sb_packed_runs_at(type, b);
                const int8_t *x = xq + t * k + 32 * b;
                int32_t sum = 0;
                for (int c = 0; c < 8; c++)
                    for (int e = 0; e < 4; e++) {
                        int u;
                        if (type == SB_Q8_0) {
                            u = runs[64 * c + e];
                        } else {
                            const uint8_t *nibbles = runs + (sb_has_fifth_bit(type) ? SB_PACKED_Q5_MASKS : 0);
                            u = (nibbles[64 * (c % 4) + e] >> (c < 4 ? 0 : 4)) & 0xF;
                            if (sb_has_fifth_bit(type)) u |= ((masks[8 * c + (4 * r + e) / 8] >> ((4 * r + e) % 8)) & 1) << 4;
                        }
                        sum += u * x[4 * c + e];
                    }
                sum += sb_packed_offset(type, xb + t * blocks + b);
                const float scale = sb_half(group + sb_packed_scales_at(type, b) + 2 * r) * xb[t * blocks + b].d;
                acc = fmaf(scale, (float)sum, acc);
                // q4_1, q5_1: Σ m · x = m · x.ds, into an accumulator of its own.
                if (sb_has_min(type)) {
                    const float minimum = sb_half(group + sb_packed_scales_at(type, b) + 2 * SB_PACK_ROWS + 2 * r);
                    offsets = fmaf(minimum, xb[t * blocks + b].ds, offsets);
                }
            }
            y[t * ldy + o] = sb_has_min(type) ? acc + offsets : acc;
        }
    }
}
