/*
 * int8_epilogue.h: the float32 step after the integer sums (int8.h: scale, bias, activation, then codes or
 * float32), shared by the convolution, the trainable pooling and the full layer. Not part of the public
 * interface.
 */
#ifndef LENET_FAST_INT8_EPILOGUE_H
#define LENET_FAST_INT8_EPILOGUE_H

#include "activation.h"
#include "int8.h"

typedef uint8_t lf_vu8 __attribute__((vector_size(LF_LANES)));

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
                    const lf_vu8 b = __builtin_convertvector(k, lf_vu8);
                    memcpy(o, &b, sizeof b);
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
