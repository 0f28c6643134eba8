// Picks the kernels for this CPU once, at load time, and refuses to run on an x86-64 CPU without
// AVX2, FMA and F16C: the Swift kernels are compiled for them (Package.swift), and such a CPU would
// otherwise die with SIGILL somewhere in the first matmul.
#include "common.h"
#include <stdio.h>
#include <stdlib.h>

typedef void (*sb_packed_fn)(sb_weight_type, const void *, int64_t, int64_t, int64_t, const int8_t *, const sb_activation_block *,
                             int64_t, float *, int64_t);

static sb_packed_fn chosen_packed = sb_packed_linear_scalar;
static const char *chosen_name = "scalar";

typedef void (*sb_float_fn)(sb_float_type, const void *, size_t, int64_t, int64_t, int64_t, const float *, int64_t, float *, int64_t);

#if defined(__x86_64__)
void sb_float_linear_avx2(sb_float_type, const void *, size_t, int64_t, int64_t, int64_t, const float *, int64_t, float *, int64_t);
void sb_float_linear_avx512(sb_float_type, const void *, size_t, int64_t, int64_t, int64_t, const float *, int64_t, float *, int64_t);
static sb_float_fn chosen_float = sb_float_linear_avx2;
void sb_packed_linear_avx2(sb_weight_type, const void *, int64_t, int64_t, int64_t, const int8_t *, const sb_activation_block *,
                           int64_t, float *, int64_t);
void sb_packed_linear_avx512vnni(sb_weight_type, const void *, int64_t, int64_t, int64_t, const int8_t *,
                                 const sb_activation_block *, int64_t, float *, int64_t);

__attribute__((constructor)) static void sb_choose_kernels(void) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma") || !__builtin_cpu_supports("f16c")) {
        fputs("stagebeam: this CPU lacks AVX2, FMA or F16C, which stagebeam's kernels need (x86-64 CPUs since 2013-2015: "
              "Intel Haswell, AMD Excavator/Zen); stopping.\n", stderr);
        exit(70);
    }
    const char *forced = getenv("STAGEBEAM_KERNELS");  // "avx2" measures the AVX2 path on an AVX-512 machine
    if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
        !(forced && strcmp(forced, "avx2") == 0)) {
        chosen_packed = sb_packed_linear_avx512vnni;
        chosen_float = sb_float_linear_avx512;
        chosen_name = "avx512vnni";
    } else {
        chosen_packed = sb_packed_linear_avx2;
        chosen_float = sb_float_linear_avx2;
        chosen_name = "avx2";
    }
}
#endif

void sb_packed_linear(sb_weight_type type, const void *packed, int64_t k, int64_t o_begin, int64_t o_end, const int8_t *xq,
                      const sb_activation_block *xb, int64_t rows, float *y, int64_t ldy) {
    chosen_packed(type, packed, k, o_begin, o_end, xq, xb, rows, y, ldy);
}

#if defined(__x86_64__)
void sb_float_linear(sb_float_type type, const void *w, size_t row_bytes, int64_t k, int64_t o_begin, int64_t o_end,
                     const float *x, int64_t rows, float *y, int64_t ldy) {
    chosen_float(type, w, row_bytes, k, o_begin, o_end, x, rows, y, ldy);
}
#endif

const char *sb_kernel_variant(void) { return chosen_name; }
