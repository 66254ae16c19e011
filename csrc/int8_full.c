/*
 * int8_full.c: the int8 network's vector layers on a block of images: a full layer (the block's code rows
 * times the weight rows) and the RBF output in float32 (the paper's distances to the +-1 prototypes, on
 * the previous layer's float32 output). int8.h has the formulas.
 */
#include "int8_epilogue.h"
#include "int8_ops.h"

void LF_ISA(int8_full)(const lf_int8_layer *l, const uint8_t *in, size_t in_stride, int count, void *out,
                       size_t out_stride, int32_t *acc, lf_i8_gemm_fn gemm)
{
    gemm(in, in_stride, count, l->weight, l->depth, l->out_c, acc);
    lf_i8_epilogue(l, acc, l->out_c, count, out, out_stride, 1);
}

void LF_ISA(int8_rbf)(const lf_int8_layer *l, const float *in, size_t in_stride, int count, float *out,
                      size_t out_stride)
{
    const int n = l->in_c * l->in_h * l->in_w;
    for (int b = 0; b < count; b++)
        for (int k = 0; k < l->out_c; k++) {
            const float *x = in + b * in_stride, *c = l->centers + (size_t)k * n;
            float d = 0.0f;
            for (int i = 0; i < n; i++)
                d += (x[i] - c[i]) * (x[i] - c[i]);
            out[b * out_stride + k] = d;
        }
}
