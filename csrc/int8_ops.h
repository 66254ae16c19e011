/*
 * int8_ops.h: the int8 kernels of one instruction-set path (int8.h has the interface and the quantization
 * formulas). Not part of the public interface.
 */
#ifndef LENET_FAST_INT8_OPS_H
#define LENET_FAST_INT8_OPS_H

#include "ops.h"
#include "simd_int8.h"

/* The VNNI form this path's copy holds (int8_gemm.c), by the name __builtin_cpu_supports knows; none on the
 * baseline, or when the compiler lacks the intrinsics. */
#if defined(__AVX512F__) && defined(LF_I8_HAVE_AVX512VNNI)
#define LF_I8_VNNI "avx512vnni"
#elif defined(__AVX2__) && !defined(__AVX512F__) && defined(LF_I8_HAVE_AVXVNNI)
#define LF_I8_VNNI "avxvnni"
#endif

typedef void (*lf_i8_gemm_fn)(const uint8_t *a, size_t lda, int m, const int8_t *w, int depth, int nw, int32_t *c);

#ifdef LF_ISA_SUFFIX
/* int8_gemm.c: lf_int8_gemm's kernel in the default and (LF_I8_VNNI) the VNNI form. */
void LF_ISA(int8_gemm)(const uint8_t *a, size_t lda, int m, const int8_t *w, int depth, int nw, int32_t *c);
void LF_ISA(int8_gemm_vnni)(const uint8_t *a, size_t lda, int m, const int8_t *w, int depth, int nw, int32_t *c);

/* int8_conv.c: one image's convolution (cols: its patches, out_h out_w rows of depth bytes; acc: out_c
 * out_h out_w int32) and pooling (acc as large, trainable pooling only); out is codes or float32 (C, H, W). */
void LF_ISA(int8_conv)(const lf_int8_layer *l, const uint8_t *in, void *out, uint8_t *cols, int32_t *acc,
                       lf_i8_gemm_fn gemm);
void LF_ISA(int8_pool)(const lf_int8_layer *l, const uint8_t *in, void *out, int32_t *acc);

/* int8_full.c: a block of count images, in_stride and out_stride apart (in bytes for codes, elements of
 * the output's type otherwise): a full layer (acc: out_c count int32) and an RBF layer (float32 in). */
void LF_ISA(int8_full)(const lf_int8_layer *l, const uint8_t *in, size_t in_stride, int count, void *out,
                       size_t out_stride, int32_t *acc, lf_i8_gemm_fn gemm);
void LF_ISA(int8_rbf)(const lf_int8_layer *l, const float *in, size_t in_stride, int count, float *out,
                      size_t out_stride);

/* int8_forward.c: lf_int8_forward on this path, with its VNNI kernel when vnni is set. */
int LF_ISA(int8_forward)(const lf_int8_layer *layers, int nlayers, const uint8_t *pixels, int h, int w, int n,
                         void *out, int vnni);
/* lf_int8_gemm on this path */
void LF_ISA(int8_gemm_any)(const uint8_t *a, size_t lda, int m, const int8_t *w, int depth, int nw, int32_t *c,
                           int vnni);
#endif

#endif
