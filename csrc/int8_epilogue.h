/*
 * int8_epilogue.h: the float32 step after the integer sums (int8.h: scale, bias, activation, then codes or
 * float32), shared by the convolution, the trainable pooling and the full layer. Not part of the public
 * interface.
 */
#ifndef LENET_FAST_INT8_EPILOGUE_H
#define LENET_FAST_INT8_EPILOGUE_H

#include "activation.h"
#include "int8.h"

/* LF_LANES codes (int32 lanes holding 0..255) stored as bytes, through narrowing instructions (GCC makes a
 * scalar shift-and-or sequence of __builtin_convertvector to bytes). */
static inline __attribute__((always_inline)) void lf_i8_store_codes(uint8_t *p, lf_vi k)
{
#if defined(__AVX512F__)
    _mm_storeu_si128((__m128i *)p, _mm512_cvtepi32_epi8((__m512i)k));
#elif defined(__AVX2__)
    const __m128i words = _mm_packus_epi32(_mm256_castsi256_si128((__m256i)k), _mm256_extracti128_si256((__m256i)k, 1));
    _mm_storel_epi64((__m128i *)p, _mm_packus_epi16(words, words));
#elif defined(__SSE2__) && LF_LANES == 4
    const __m128i words = _mm_packs_epi32((__m128i)k, (__m128i)k);
    const int32_t four = _mm_cvtsi128_si32(_mm_packus_epi16(words, words));
    memcpy(p, &four, sizeof four);
#else
    for (int t = 0; t < LF_LANES; t++)
        p[t] = (uint8_t)k[t];
#endif
}

/* acc[j * m + i] (channel j < n, position or image i < m) through layer l's float32 step; the result of
 * (i, j) goes to out[i * ms + j * ns], a code or a float as l->out_codes says. The vectors run along i
 * with every lane computed the same way (a ragged end through a zero-padded copy), so that a value does
 * not depend on where it falls in a vector. */
static inline void lf_i8_epilogue(const lf_int8_layer *l, const int32_t *acc, int n, int m, void *out, size_t ms,
                                  size_t ns)
{
    /* 1.5 x 2^23: adding it to a float in [0, 255] leaves the integer nearest to it (ties to even) in the
     * low mantissa bits */
    const lf_vf magic = lf_set1(12582912.0f);
    for (int j = 0; j < n; j++) {
        const lf_vi offset = (lf_vi){0} + l->offset[j];
        const lf_vf scale = lf_set1(l->scale[j]), bias = lf_set1(l->bias[j]);
        for (int i = 0; i < m; i += LF_LANES) {
            const int count = m - i < LF_LANES ? m - i : LF_LANES;
            lf_vi q = {0};
            memcpy(&q, acc + (size_t)j * m + i, (size_t)count * sizeof(int32_t));
            lf_vf y = lf_activate(__builtin_convertvector(q - offset, lf_vf) * scale + bias, (lf_act)l->act);
            if (l->out_codes) {
                y = y * lf_set1(l->out_inv_scale) + lf_set1(l->out_zero);
                y = lf_max(lf_set1(0.0f), lf_min(lf_set1(255.0f), y));
                const lf_vi k = (lf_vi)(y + magic) & 255;
                uint8_t *o = (uint8_t *)out + i * ms + j * ns;
                if (ms == 1 && count == LF_LANES) {
                    lf_i8_store_codes(o, k);
                } else {
                    for (int t = 0; t < count; t++)
                        o[t * ms] = (uint8_t)k[t];
                }
            } else {
                float *o = (float *)out + i * ms + j * ns;
                for (int t = 0; t < count; t++)
                    o[t * ms] = y[t];
            }
        }
    }
}

#endif
