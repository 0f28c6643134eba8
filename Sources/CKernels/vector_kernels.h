// The x86 row-major quantized kernels, included once per instruction-set variant (so no include
// guard): SB_NAME(name) prefixes its functions, SB_DOT(u, s) is the per-lane sum of four u8 × s8
// products (AVX2: vpmaddubsw + vpmaddwd; AVX-512 VNNI: vpdpbusd). No product pair reaches the int16
// limit of vpmaddubsw (levels are at most 31 unsigned against activations |x| ≤ 127), so both give
// the same integers, and the f32 arithmetic that follows is the same: every variant returns the
// scalar kernel's bits. These kernels read ggml's row-major blocks (q4_1 and q5_1); q8_0, q4_0,
// q5_0, q4_K, q5_K and q6_K are packed first and have kernels of their own (`sb_packed_linear`).

/// The 32 levels of 32-block `b` (see `levels` in scalar.c), in one register.
SB_INLINE __m256i SB_NAME(levels)(sb_weight_type type, const uint8_t *row, int64_t b) {
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    const uint8_t *block = row + b * sb_block_bytes(type);
    const int header = 4;  // d and m
    const int five = type == SB_Q5_1;
    const __m128i qs = _mm_loadu_si128((const __m128i *)(block + header + (five ? 4 : 0)));
    __m256i q = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(qs, 4), qs), low4);
    if (five) {
        uint32_t qh;
        memcpy(&qh, block + header, 4);
        // Byte i takes byte i/8 of qh, keeps bit i%8, and becomes 0x10 where it is set.
        const __m256i spread = _mm256_shuffle_epi8(
            _mm256_set1_epi32((int)qh), _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
        const __m256i bit = _mm256_set1_epi64x((int64_t)0x8040201008040201);
        const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
        q = _mm256_or_si256(q, _mm256_and_si256(set, _mm256_set1_epi8(0x10)));
    }
    return q;
}

SB_INLINE float SB_NAME(reduce)(__m256 acc) {
    float lanes[8];
    _mm256_storeu_ps(lanes, acc);
    return sb_reduce8(lanes);
}

/// Adds 32-block `b` (levels `q`, factors `f`) against activation rows 0..<NT to their accumulators.
SB_INLINE void SB_NAME(add_block)(const int NT, __m256i q, const sb_block_factors *f, int64_t b, int64_t k,
                                  const int8_t *xq, const sb_activation_block *xb, __m256 acc[4], float correction[4]) {
    const int64_t blocks = k / 32;
    for (int t = 0; t < NT; t++) {
        const sb_activation_block *x = xb + t * blocks + b;
        const __m256i xv = _mm256_loadu_si256((const __m256i *)(xq + t * k + 32 * b));
        const __m256i p = SB_DOT(q, xv);
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(f->scale * x->d), acc[t]);
        correction[t] = fmaf(f->coef, x->ds, correction[t]);
    }
}

/// `add_block` for 3 or 4 activation rows of one group: the rows' scales come from memory as
/// broadcasts and their corrections advance together, one lane each, in one 4-lane fused
/// multiply-add (the same f32 operation per lane as the scalar one), from the group's interleaved
/// offsets (`sb_activation_quad`).
SB_INLINE void SB_NAME(add_block4)(const int NT, __m256i q, const sb_block_factors *f, int64_t b, int64_t k,
                                   const int8_t *xq, const sb_activation_quad *xg, __m256 acc[4], __m128 *correction) {
    const sb_activation_quad *g = xg + b;
    // The 4 rows' scale products in one multiply, each then broadcast from memory (a load, not a
    // vector operation).
    float scales[4];
    _mm_storeu_ps(scales, _mm_mul_ps(_mm_set1_ps(f->scale), _mm_loadu_ps(g->d)));
    for (int t = 0; t < NT; t++) {
        const __m256i xv = _mm256_loadu_si256((const __m256i *)(xq + t * k + 32 * b));
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(SB_DOT(q, xv)), _mm256_broadcast_ss(&scales[t]), acc[t]);
    }
    *correction = _mm_fmadd_ps(_mm_set1_ps(f->coef), _mm_loadu_ps(g->ds), *correction);
}

/// `NW` (1 or 2) weight rows against `NT` (1…4) activation rows: each weight block is decoded once for
/// all activation rows, and the NW rows' accumulators are independent chains the CPU overlaps (one
/// row alone waits on each block's fused multiply-add before the next).
SB_INLINE void SB_NAME(tile)(sb_weight_type type, const int NW, const int NT, const uint8_t *row, size_t row_bytes, int64_t k,
                             const int8_t *xq, const sb_activation_block *xb, const sb_activation_quad *xg, float *y,
                             int64_t ldy) {
    const int64_t blocks = k / 32;
    __m256 acc[2][4];
    float correction[2][4];
    __m128 correction4[2];
    for (int r = 0; r < NW; r++) {
        correction4[r] = _mm_setzero_ps();
        for (int t = 0; t < NT; t++) {
            acc[r][t] = _mm256_setzero_ps();
            correction[r][t] = 0;
        }
    }
    // One or two activation rows (decode) are bound by memory: the weight rows two tiles ahead are
    // fetched line by line as these are read (a thread's rows are contiguous); rows of a few hundred
    // bytes leave the hardware prefetcher too little of each stream to follow.
    const uint8_t *ahead = row + 2 * NW * row_bytes;
    const int64_t bytes = NW * sb_block_bytes(type);
    for (int64_t b = 0; b < blocks; b++) {
        if (NT <= 2)
            for (int64_t line = 0; line < bytes; line += 64) _mm_prefetch((const char *)(ahead + b * bytes + line), _MM_HINT_T0);
        for (int r = 0; r < NW; r++) {
            const sb_block_factors f = sb_factors(type, row + r * row_bytes, b);
            const __m256i q = SB_NAME(levels)(type, row + r * row_bytes, b);
            if (NT >= 3) SB_NAME(add_block4)(NT, q, &f, b, k, xq, xg, acc[r], &correction4[r]);
            else SB_NAME(add_block)(NT, q, &f, b, k, xq, xb, acc[r], correction[r]);
        }
    }
    for (int r = 0; r < NW; r++) {
        if (NT >= 3) _mm_storeu_ps(correction[r], correction4[r]);
        for (int t = 0; t < NT; t++) y[t * ldy + r] = SB_NAME(reduce)(acc[r][t]) + correction[r][t];
    }
}

/// One weight row against 8 activation rows (two groups of 4): each weight block is decoded once for
/// all 8 (a wide batch or prefill; `tile` with NT ≤ 4 decodes it once per 4).
SB_INLINE void SB_NAME(tile8)(sb_weight_type type, const uint8_t *row, int64_t k, const int8_t *xq, const sb_activation_quad *xg,
                              float *y, int64_t ldy) {
    const int64_t blocks = k / 32;
    __m256 acc[8];
    __m128 correction4[2] = {_mm_setzero_ps(), _mm_setzero_ps()};
    for (int t = 0; t < 8; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < blocks; b++) {
        const sb_block_factors f = sb_factors(type, row, b);
        const __m256i q = SB_NAME(levels)(type, row, b);
        SB_NAME(add_block4)(4, q, &f, b, k, xq, xg, acc, &correction4[0]);
        SB_NAME(add_block4)(4, q, &f, b, k, xq + 4 * k, xg + blocks, acc + 4, &correction4[1]);
    }
    float correction[8];
    _mm_storeu_ps(correction, correction4[0]);
    _mm_storeu_ps(correction + 4, correction4[1]);
    for (int t = 0; t < 8; t++) y[t * ldy] = SB_NAME(reduce)(acc[t]) + correction[t];
}

/// One weight row (NW = 1) or two (NW = 2) against all activation rows: groups of 8, then of 4,
/// one weight row at a time (8 accumulators of 2 × 4 spill), the last 1 or 2 activation rows with
/// both weight rows at once.
SB_INLINE void SB_NAME(rows)(sb_weight_type type, const int NW, const uint8_t *row, size_t row_bytes, int64_t k,
                             const int8_t *xq, const sb_activation_block *xb, const sb_activation_quad *xg, int64_t rows,
                             float *y, int64_t ldy) {
    const int64_t blocks = k / 32;
    int64_t t = 0;
    for (; t + 8 <= rows; t += 8)
        for (int r = 0; r < NW; r++)
            SB_NAME(tile8)(type, row + r * row_bytes, k, xq + t * k, xg + t / 4 * blocks, y + t * ldy + r, ldy);
    for (; t + 4 <= rows; t += 4)
        for (int r = 0; r < NW; r++)
            SB_NAME(tile)(type, 1, 4, row + r * row_bytes, row_bytes, k, xq + t * k, xb + t * blocks, xg + t / 4 * blocks,
                          y + t * ldy + r, ldy);
    switch (rows - t) {
    case 3:
        for (int r = 0; r < NW; r++)
            SB_NAME(tile)(type, 1, 3, row + r * row_bytes, row_bytes, k, xq + t * k, xb + t * blocks, xg + t / 4 * blocks,
                          y + t * ldy + r, ldy);
        break;
    case 2: SB_NAME(tile)(type, NW, 2, row, row_bytes, k, xq + t * k, xb + t * blocks, NULL, y + t * ldy, ldy); break;
    case 1: SB_NAME(tile)(type, NW, 1, row, row_bytes, k, xq + t * k, xb + t * blocks, NULL, y + t * ldy, ldy); break;
    default: break;
    }
}

SB_INLINE void SB_NAME(run)(sb_weight_type type, const void *w, size_t row_bytes, int64_t k, int64_t o_begin, int64_t o_end,
                            const int8_t *xq, const sb_activation_block *xb, const sb_activation_quad *xg, int64_t rows,
                            float *y, int64_t ldy) {
    int64_t o = o_begin;
    for (; o + 2 <= o_end; o += 2) SB_NAME(rows)(type, 2, (const uint8_t *)w + o * row_bytes, row_bytes, k, xq, xb, xg, rows, y + o, ldy);
    for (; o < o_end; o++) SB_NAME(rows)(type, 1, (const uint8_t *)w + o * row_bytes, row_bytes, k, xq, xb, xg, rows, y + o, ldy);
}

/// One specialized copy per format, so each inner loop is straight-line code for its format.
static void SB_NAME(linear)(sb_weight_type type, const void *w, size_t row_bytes, int64_t k, int64_t o_begin, int64_t o_end,
                            const int8_t *xq, const sb_activation_block *xb, const sb_activation_quad *xg, int64_t rows,
                            float *y, int64_t ldy) {
    switch (type) {
#define SB_CASE(T) case T: SB_NAME(run)(T, w, row_bytes, k, o_begin, o_end, xq, xb, xg, rows, y, ldy); break;
    SB_CASE(SB_Q4_1) SB_CASE(SB_Q5_1)
#undef SB_CASE
    case SB_Q8_0: case SB_Q4_0: case SB_Q5_0: case SB_Q4_K: case SB_Q5_K: case SB_Q6_K: break;  // packed: sb_packed_linear
    }
}
