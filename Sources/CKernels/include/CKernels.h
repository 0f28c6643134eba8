// The matmul kernels in C: f32/f16/bf16 and block-quantized weights (AVX2 and AVX-512 variants
// chosen at run time by what the CPU supports: Swift has no per-function target attributes),
// the compute pool's spin hint, and the check that refuses to run on a CPU without the AVX2/FMA/F16C
// that the Swift kernels are compiled for.
#ifndef CKERNELS_H
#define CKERNELS_H

#include <stddef.h>
#include <stdint.h>

/// One block of 32 activations quantized to int8 (`x ≈ d · q`), with the sums of its two halves
/// that formats with offsets need.
typedef struct {
    float d;       ///< scale: max |x| / 127
    float ds;      ///< d · Σ q over all 32
    int16_t sum[2]; ///< Σ q over elements 0..<16 and 16..<32
} sb_activation_block;

/// Weight formats (ggml's block layouts; see Sources/Kernels/QuantizedBlocks.swift).
typedef enum {
    SB_Q8_0, SB_Q4_0, SB_Q4_1, SB_Q5_0, SB_Q5_1, SB_Q4_K, SB_Q5_K, SB_Q6_K
} sb_weight_type;

/// Quantizes one row of `k` activations (a multiple of 32) into `q` (k int8) and `blocks` (k / 32).
void sb_quantize_activations(const float *x, int64_t k, int8_t *q, sb_activation_block *blocks);

/// The same in portable scalar C, bit-identical: the vector quantizer's reference.
void sb_quantize_activations_portable(const float *x, int64_t k, int8_t *q, sb_activation_block *blocks);

/// Rows per group of packed rows (see `sb_pack_rows`).
#define SB_PACK_ROWS 16

/// Bytes `sb_pack_rows` writes for `rows` rows of `k` columns of quantized weights (every `sb_weight_type`).
size_t sb_packed_bytes(sb_weight_type type, int64_t rows, int64_t k);

/// Copies quantized rows (ggml's blocks, `row_bytes` apart) into the layout `sb_packed_linear`
/// reads: groups of `SB_PACK_ROWS` rows (the last padded with zero rows), each group its 32-blocks
/// two by two, a pair being the two blocks' 16 f16 scales each, then the two blocks' weights. A
/// block's weights are 8 runs of 64 bytes, run `c` carrying weights `4c..<4c+4` of each of the 16
/// rows side by side (q4_0: runs 0–3 in the low nibbles and 4–7 in the high nibbles of the same 64
/// bytes, as ggml pairs weights `i` and `i + 16`; q5_0: the same, after a 64-bit mask per run of
/// the weights' fifth bits; q8_0: offset by 128, so unsigned). One 16-lane
/// integer dot instruction then advances 16 rows by 4 weights. q4_K groups hold super-blocks instead
/// (`SB_PACKED_K4_BYTES` in common.h): the rows' d, dmin and unpacked 6-bit scales and mins, then
/// the nibbles in the same runs, two sub-blocks in the low and high nibbles; q5_K groups the same
/// with the fifth bits in runs of their own before the nibbles (`SB_PACKED_K5_BYTES`); q6_K groups
/// likewise (`SB_PACKED_K6_BYTES`), with the 2-bit high parts in runs of their own.
void sb_pack_rows(sb_weight_type type, const void *w, size_t row_bytes, int64_t rows, int64_t k, void *packed);

/// `y[t·ldy + o] = Σ_i w[o, i] · x[t, i]` over packed quantized rows, for outputs `o` in
/// `o_begin..<o_end` (`o_begin` a multiple of `SB_PACK_ROWS`) and activation rows `t` in
/// `0..<rows`. Each output is one f32 accumulator over its row's 32-blocks in order, adding
/// `(scale · x.d) · Σ q·x` per block with one fused multiply-add, where the block's integer sum is
/// exact (the K formats: per 32-value sub-block; q4_K's and q5_K's offsets in a second accumulator
/// added at the end):
/// its value depends on its own weight row and activation row only.
void sb_packed_linear(sb_weight_type type, const void *packed, int64_t k, int64_t o_begin, int64_t o_end, const int8_t *xq,
                      const sb_activation_block *xb, int64_t rows, float *y, int64_t ldy);

/// The same products in portable scalar C, bit-identical to the vector kernels: their reference.
void sb_packed_linear_scalar(sb_weight_type type, const void *packed, int64_t k, int64_t o_begin, int64_t o_end,
                             const int8_t *xq, const sb_activation_block *xb, int64_t rows, float *y, int64_t ldy);

/// Unquantized weight formats.
typedef enum { SB_F32, SB_F16, SB_BF16 } sb_float_type;

/// `y[t·ldy + o] = Σ_i w[o, i] · x[t, i]` over f32/f16/bf16 weights (f32 activations, rows × k).
/// Each output is one 8-lane f32 accumulator over k in order, reduced in a fixed order: its value
/// depends on its own weight row and activation row only.
void sb_float_linear(sb_float_type type, const void *w, size_t row_bytes, int64_t k, int64_t o_begin, int64_t o_end,
                     const float *x, int64_t rows, float *y, int64_t ldy);

/// The same in portable scalar C, bit-identical: the vector kernel's reference.
void sb_float_linear_portable(sb_float_type type, const void *w, size_t row_bytes, int64_t k, int64_t o_begin,
                              int64_t o_end, const float *x, int64_t rows, float *y, int64_t ldy);

/// `Σ e^(x[i] − shift)` over `n` values, writing each term to `out[i]` when `out` is not NULL (it may
/// be `x`): the exponentials of a softmax or a log-normalizer. The terms are summed in 8 lanes
/// (element `i` into lane `i % 8`), reduced in a fixed order, then the `n % 8` last terms added in
/// order, so the result depends on `x` alone.
float sb_exp_sum(const float *x, int64_t n, float shift, float *out);

/// The same in portable scalar C, bit-identical: the vector version's reference.
float sb_exp_sum_portable(const float *x, int64_t n, float shift, float *out);

/// Attention of one query row `q` (`head_dim` floats) and one head over positions `first...last` of
/// a paged KV cache kept in f16: `out = softmax(scale · q·Kᵀ) · V`. `keys` and `values` point at the
/// head's (block 0, layer) slice; position `p` is at `blocks[p / block_size] · block_stride +
/// (p % block_size) · head_dim` elements from there. `scores` has room for `last − first + 1`.
/// Each score is an 8-lane f32 accumulator of fused multiply-adds reduced in a fixed order, the
/// softmax is `sb_exp_sum`'s, each output a chain of fused multiply-adds over positions in order.
void sb_attention_half(const float *q, const uint16_t *keys, const uint16_t *values, const int32_t *blocks, int64_t block_stride,
                       int64_t block_size, int64_t head_dim, int64_t first, int64_t last, float scale, float *scores, float *out);

/// The same in portable scalar C, bit-identical: the vector version's reference.
void sb_attention_half_portable(const float *q, const uint16_t *keys, const uint16_t *values, const int32_t *blocks,
                                int64_t block_stride, int64_t block_size, int64_t head_dim, int64_t first, int64_t last, float scale,
                                float *scores, float *out);

/// SwiGLU's gating in place: `gate[i] = gate[i] / (1 + e^(−gate[i])) · up[i]` (silu times up), with
/// `sb_exp_sum`'s exponential, element by element (each result depends on its two inputs alone).
void sb_silu_multiply(float *gate, const float *up, int64_t n);

/// The same in portable scalar C, bit-identical: the vector version's reference.
void sb_silu_multiply_portable(float *gate, const float *up, int64_t n);

/// A spin-wait hint to the CPU (x86 `pause`).
void sb_spin_pause(void);

/// Which kernels run here: "avx512vnni", "avx2" or "scalar".
const char *sb_kernel_variant(void);

#endif
