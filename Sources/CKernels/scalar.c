// Portable kernels: the activation quantizer (the AVX2 one in vector_avx2.c is its bit-identical
// vector form) and the softmax and gating elementwise functions, the references of the vector ones
// (same operations in the same order). The packed products' reference is in packed.c.
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
