// The x86 vector kernels, included once per instruction-set variant (so no include guard):
// SB_NAME(name) prefixes its functions, SB_DOT(u, s) is the per-lane sum of four u8 × s8 products (AVX2: vpmaddubsw + vpmaddwd;
// AVX-512 VNNI: vpdpbusd). No product pair reaches the int16 limit of vpmaddubsw (levels are at most
// 63 unsigned, or |q| ≤ 128 against activations |x| ≤ 127), so both give the same integers, and the f32
// arithmetic that follows is the same: every variant returns the scalar kernel's bits.

/// The 32 levels of 32-block `b` (see `levels` in scalar.c), in one register.
SB_INLINE __m256i SB_NAME(levels)(sb_weight_type type, const uint8_t *row, int64_t b) {
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    if (!sb_is_k(type)) {
        const uint8_t *block = row + b * sb_block_bytes(type);
        if (type == SB_Q8_0) return _mm256_loadu_si256((const __m256i *)(block + 2));
        const int header = (type == SB_Q4_0 || type == SB_Q5_0) ? 2 : 4;
        const int five = type == SB_Q5_0 || type == SB_Q5_1;
        const __m128i qs = _mm_loadu_si128((const __m128i *)(block + header + (five ? 4 : 0)));
        __m256i q = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(qs, 4), qs), low4);
        if (five) {
            uint32_t qh;
            memcpy(&qh, block + header, 4);
            // Byte i takes byte i/8 of qh, keeps bit i%8, and becomes 0x10 where it is set.
            const __m256i spread = _mm256_shuffle_epi8(
                _mm256_set1_epi32((int)qh),
                _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
            const __m256i bit = _mm256_set1_epi64x((int64_t)0x8040201008040201);
            const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
            q = _mm256_or_si256(q, _mm256_and_si256(set, _mm256_set1_epi8(0x10)));
        }
        return q;
    }
    const uint8_t *block = row + (b / 8) * sb_block_bytes(type);
    const int s = (int)(b % 8);
    if (type == SB_Q6_K) {
        const int h = s / 4, i = s % 4;
        const __m256i ql = _mm256_loadu_si256((const __m256i *)(block + 64 * h + 32 * (i & 1)));
        const __m256i qh = _mm256_loadu_si256((const __m256i *)(block + 128 + 32 * h));
        const __m256i low = _mm256_and_si256(i < 2 ? ql : _mm256_srli_epi16(ql, 4), low4);
        const __m256i top = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * i), _mm256_set1_epi8(3));
        return _mm256_or_si256(low, _mm256_slli_epi16(top, 4));
    }
    const int five = type == SB_Q5_K;
    const __m256i qs = _mm256_loadu_si256((const __m256i *)(block + (five ? 48 : 16) + 32 * (s / 2)));
    __m256i q = _mm256_and_si256(s % 2 == 0 ? qs : _mm256_srli_epi16(qs, 4), low4);
    if (five) {
        const __m256i qh = _mm256_loadu_si256((const __m256i *)(block + 16));
        const __m256i bit = _mm256_and_si256(_mm256_srli_epi16(qh, s), _mm256_set1_epi8(1));
        q = _mm256_or_si256(q, _mm256_slli_epi16(bit, 4));
    }
    return q;
}

SB_INLINE float SB_NAME(reduce)(__m256 acc) {
    float lanes[8];
    _mm256_storeu_ps(lanes, acc);
    return sb_reduce8(lanes);
}

/// One weight row against `NT` (1…4) activation rows: the weight row is decoded once per block
/// for all of them.
SB_INLINE void SB_NAME(tile)(sb_weight_type type, const int NT, const uint8_t *row, int64_t k, const int8_t *xq,
                             const sb_activation_block *xb, float *y, int64_t ldy) {
    const int64_t blocks = k / 32;
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    float correction[4] = {0, 0, 0, 0};
    for (int64_t b = 0; b < blocks; b++) {
        const sb_block_factors f = sb_factors(type, row, b);
        const __m256i q = SB_NAME(levels)(type, row, b);
        const __m256i magnitude = type == SB_Q8_0 ? _mm256_abs_epi8(q) : q;
        for (int t = 0; t < NT; t++) {
            const sb_activation_block *x = xb + t * blocks + b;
            const __m256i xv = _mm256_loadu_si256((const __m256i *)(xq + t * k + 32 * b));
            __m256i p;
            if (type == SB_Q8_0) {
                p = SB_DOT(magnitude, _mm256_sign_epi8(xv, q));
            } else if (type == SB_Q6_K) {
                const __m256i scales = _mm256_set_m128i(_mm_set1_epi16(f.lane_scale[1]), _mm_set1_epi16(f.lane_scale[0]));
                p = _mm256_madd_epi16(_mm256_maddubs_epi16(q, xv), scales);
            } else {
                p = SB_DOT(q, xv);
            }
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(f.scale * x->d), acc[t]);
            if (f.has_correction) correction[t] = fmaf(f.coef, sb_offset(type, &f, x), correction[t]);
        }
    }
    for (int t = 0; t < NT; t++) y[t * ldy] = SB_NAME(reduce)(acc[t]) + correction[t];
}

SB_INLINE void SB_NAME(run)(sb_weight_type type, const void *w, size_t row_bytes, int64_t k, int64_t o_begin, int64_t o_end,
                            const int8_t *xq, const sb_activation_block *xb, int64_t rows, float *y, int64_t ldy) {
    const int64_t blocks = k / 32;
    for (int64_t o = o_begin; o < o_end; o++) {
        const uint8_t *row = (const uint8_t *)w + o * row_bytes;
        int64_t t = 0;
        for (; t + 4 <= rows; t += 4) SB_NAME(tile)(type, 4, row, k, xq + t * k, xb + t * blocks, y + t * ldy + o, ldy);
        switch (rows - t) {
        case 3: SB_NAME(tile)(type, 3, row, k, xq + t * k, xb + t * blocks, y + t * ldy + o, ldy); break;
        case 2: SB_NAME(tile)(type, 2, row, k, xq + t * k, xb + t * blocks, y + t * ldy + o, ldy); break;
        case 1: SB_NAME(tile)(type, 1, row, k, xq + t * k, xb + t * blocks, y + t * ldy + o, ldy); break;
        default: break;
        }
    }
}

/// One specialized copy per format, so each inner loop is straight-line code for its format.
static void SB_NAME(linear)(sb_weight_type type, const void *w, size_t row_bytes, int64_t k, int64_t o_begin, int64_t o_end,
                            const int8_t *xq, const sb_activation_block *xb, int64_t rows, float *y, int64_t ldy) {
    switch (type) {
#define SB_CASE(T) case T: SB_NAME(run)(T, w, row_bytes, k, o_begin, o_end, xq, xb, rows, y, ldy); break;
    SB_CASE(SB_Q8_0) SB_CASE(SB_Q4_0) SB_CASE(SB_Q4_1) SB_CASE(SB_Q5_0) SB_CASE(SB_Q5_1)
    SB_CASE(SB_Q4_K) SB_CASE(SB_Q5_K) SB_CASE(SB_Q6_K)
#undef SB_CASE
    }
}
