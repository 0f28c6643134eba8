// Portable kernels: the activation quantizer (the AVX2 one in vector_avx2.c is its bit-identical
// vector form), and the scalar reference of the vector kernels (same integer sums per lane, same f32
// operations in the same order).
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

#if !defined(__x86_64__)
void sb_quantize_activations(const float *x, int64_t k, int8_t *q, sb_activation_block *blocks) {
    quantize_activations_portable(x, k, q, blocks);
}
#endif

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
            }
        }
}

/// The 32 unsigned integer levels of 32-block `b` as the vector kernels multiply them.
static void levels(sb_weight_type type, const uint8_t *row, int64_t b, int q[32]) {
    const uint8_t *block = row + b * sb_block_bytes(type);
    const int header = 4;  // d and m
    const int five = type == SB_Q5_1;
    uint32_t qh = 0;
    if (five) memcpy(&qh, block + header, 4);
    const uint8_t *qs = block + header + (five ? 4 : 0);
    for (int i = 0; i < 16; i++) {
        q[i] = (qs[i] & 0xF) | (int)(((qh >> i) & 1) << 4);
        q[i + 16] = (qs[i] >> 4) | (int)(((qh >> (i + 16)) & 1) << 4);
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
                    acc[lane] = fmaf((float)p, s, acc[lane]);
                }
                correction = fmaf(f.coef, x->ds, correction);
            }
            y[t * ldy + o] = sb_reduce8(acc) + correction;
        }
    }
}

float sb_exp_sum_portable(const float *x, int64_t n, float shift, float *out) {
    float lanes[8] = {0};
    const int64_t whole = n / 8 * 8;
    for (int64_t i = 0; i < whole; i++) {
        const float e = sb_exp(x[i] - shift);
        if (out) out[i] = e;
        lanes[i % 8] += e;
    }
    return sb_exp_sum_tail(x, whole, n, shift, out, sb_reduce8(lanes));
}

void sb_silu_multiply_portable(float *gate, const float *up, int64_t n) {
    for (int64_t i = 0; i < n; i++) gate[i] = sb_silu_times(gate[i], up[i]);
}

#if !defined(__x86_64__)
float sb_exp_sum(const float *x, int64_t n, float shift, float *out) { return sb_exp_sum_portable(x, n, shift, out); }
void sb_silu_multiply(float *gate, const float *up, int64_t n) { sb_silu_multiply_portable(gate, up, n); }
#endif
