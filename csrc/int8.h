/*
 * int8.h: the int8 inference engine's interface (lenet_fast.h includes it; lenet_fast/int8.py builds the
 * layers, docs/precision.md explains the scheme). Inference only: training stays float32.
 *
 * Quantization, once:
 *  - A tensor of codes q (uint8, 0..255) stands for the reals s (q - z): per tensor, asymmetric, with scale
 *    s > 0 and zero point z in 0..255. The network's input is the pixels themselves: the paper's input
 *    normalization x = 1.275 p / 255 - 0.1 (docs/paper.md#input-normalization) is s = 1.275 / 255, z = 20,
 *    and the background around a 28x28 digit in the 32x32 field is code 0 (x = -0.1), exactly.
 *  - Weights are int8 within +-LF_I8_WEIGHT_MAX, symmetric per output channel: w = s_w[o] q_w (the bound
 *    keeps AVX2's byte products exact: simd_int8.h).
 *  - A convolution or full layer sums q_x q_w in int32, exactly on every instruction-set path (the largest
 *    sum, 416 x 255 x 64, is far below 2^31, and no step saturates: simd_int8.h). Then, in float32, in
 *    this order: a = (float)(acc - offset[o]) * scale[o] + bias[o], with offset[o] = z_x * sum of row o's
 *    weights (the zero point folded out in integers), scale[o] = s_x s_w[o]; y = act(a); then either the
 *    code rint(clamp(y / s_y + z_y, 0, 255)) (round to nearest even) or y itself as float32 (out_codes 0).
 *  - Max pooling takes the largest of 4 codes (max commutes with the increasing map q -> s (q - z)): its
 *    output keeps its input's scale and zero point. Trainable pooling sums the 4 codes in int32 and goes
 *    through the same float32 step (offset 4 z_x, scale coef[c] s_x, bias[c]).
 *  - An RBF layer takes float32 (the previous layer's y) and gives the squared distances to its centres.
 * Every image's result is a pure function of its pixels (integer sums, then a fixed float32 sequence), so
 * it is the same for any thread count and any batch it is part of.
 *
 * Layouts: codes of one image are (C, H, W) row-major; a full layer's input is that flattened (its
 * channel-major order, as the float32 model's). Weight rows are `depth` bytes: a convolution's taps in
 * (c, ky, kx) order (a tabled convolution: zeros where a map is not connected), a full layer's inputs, then
 * zeros up to depth, a multiple of LF_I8_DEPTH.
 */
#ifndef LENET_FAST_INT8_H
#define LENET_FAST_INT8_H

#include <stdint.h>

#define LF_I8_DEPTH 32 /* weight rows are a multiple of this many bytes: every dot product's step divides it */
#define LF_I8_BLOCK 8  /* images per work item: the full layers' weights are read once per block */
#define LF_I8_WEIGHT_MAX 64 /* |weight| at most this (simd_int8.h says why) */

typedef enum { LF_I8_CONV = 0, LF_I8_POOL, LF_I8_FULL, LF_I8_RBF } lf_i8_kind;

typedef struct {
    lf_i8_kind kind;
    int in_c, in_h, in_w;    /* input shape of one image */
    int out_c, out_h, out_w; /* output shape of one image (full and RBF: out_c x 1 x 1) */
    int k;                   /* conv: the square kernel's side; valid convolution, stride 1 */
    int depth;               /* conv, full: bytes per weight row (in_c k k or the inputs, rounded up) */
    const int8_t *weight;    /* conv, full: (out_c, depth) */
    const int32_t *offset;   /* conv, full, trainable pool: (out_c,) */
    const float *scale;      /* conv, full, trainable pool: (out_c,) */
    const float *bias;       /* conv, full, trainable pool: (out_c,) */
    const float *centers;    /* rbf: (out_c, in_c) */
    int pool;                /* pool: LF_POOL_MAX (on codes) or LF_POOL_TRAINABLE */
    int act;                 /* lf_act of conv, full and trainable pool */
    int out_codes;           /* 1: the output is codes (out_inv_scale = 1 / s_y, out_zero = z_y); 0: float32 */
    float out_inv_scale, out_zero;
} lf_int8_layer;

/* Runs layers[0..nlayers) on n images of pixels, uint8 (n, h, w), h and w at most the first layer's input,
 * each centred in it with code 0 around. out is (n, out_c, out_h, out_w) of the last layer: float32, or
 * its codes (uint8) when it has out_codes (a network cut short, for the tests). A max pooling layer has
 * out_codes set (its codes keep its input's scale). Returns 0, -1 (no workspace) or LF_ERR_THREADS. The
 * caller has checked the layers (lenet_fast/_core.pyx). */
int lf_int8_forward(const lf_int8_layer *layers, int nlayers, const uint8_t *pixels, int h, int w, int n,
                    void *out);

/* The integer kernel alone, for the tests: c[j * m + i] = sum over t < depth of a[i * lda + t] w[j * depth + t]
 * for i < m, j < nw (uint8 a, int8 w within +-LF_I8_WEIGHT_MAX, depth a multiple of LF_I8_DEPTH). */
void lf_int8_gemm(const uint8_t *a, size_t lda, int m, const int8_t *w, int depth, int nw, int32_t *c);

/* The int8 kernels' instruction-set path: the float32 path's (lf_isa_name), or with "vnni" its VNNI
 * form where the CPU has it ("avx2" -> "avxvnni", "avx512" -> "avx512vnni"). lf_int8_select_isa forces
 * one of lf_int8_isa_names (NULL: back to the default); -1 if this build or CPU lacks it. */
const char *lf_int8_isa_name(void);
int lf_int8_select_isa(const char *name);

#endif
