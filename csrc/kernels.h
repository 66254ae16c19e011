/*
 * kernels.h: what the kernel files share. Not part of the public interface.
 *
 * Every kernel file is compiled once per instruction set (setup.py: baseline x86-64, AVX2+FMA, AVX-512),
 * with LF_ISA_SUFFIX naming the copy; dispatch.c picks one table of them at run time. The kernels are
 * written once, in GCC vector extensions, so the same source becomes SSE2, AVX2 or AVX-512 code.
 *
 * Layout of one block (a "block" is the unit one thread works on):
 *  - blocked: LF_LANES images (one vector register: 16, 8 or 4) interleaved innermost, element
 *    (c, y, x, lane) at c*cs + y*rs + x*LF_LANES + lane. Every kernel then multiplies a broadcast weight by
 *    a vector of LF_LANES images: no edge cases at any map size, the connection table included.
 *  - spatial: one image, element (c, y, x) at c*cs + y*rs + x; kernels vectorize along its rows. Used for
 *    the few images that do not fill a block, so that one image costs one image's work.
 * Both modes run the same arithmetic in the same order on every output, so an image's result does not
 * depend on which mode, block or thread computed it (the tests check this to the bit).
 */
#ifndef LENET_FAST_KERNELS_H
#define LENET_FAST_KERNELS_H

#include <stddef.h>
#include <string.h>
#include "lenet_fast.h"

/* Images per block, and floats per vector: the instruction set's native register (a wider generic vector
 * is split by GCC through memory, which is slow). */
#if defined(__AVX512F__)
#define LF_LANES 16
#elif defined(__AVX__)
#define LF_LANES 8
#else
#define LF_LANES 4
#endif
typedef float lf_vf __attribute__((vector_size(LF_LANES * sizeof(float))));

/* Loads and stores through memcpy: no alignment or aliasing assumptions; compiles to one vector move. */
static inline lf_vf lf_load(const float *p) { lf_vf v; memcpy(&v, p, sizeof v); return v; }
static inline void lf_store(float *p, lf_vf v) { memcpy(p, &v, sizeof v); }
/* The first n < LF_LANES floats, through a zero-padded copy: for the ragged end of an array. */
static inline lf_vf lf_load_n(const float *p, size_t n)
{
    float t[LF_LANES] = {0};
    memcpy(t, p, n * sizeof(float));
    return lf_load(t);
}
static inline void lf_store_n(float *p, lf_vf v, size_t n)
{
    float t[LF_LANES];
    lf_store(t, v);
    memcpy(p, t, n * sizeof(float));
}
/* Broadcast, min, max and reciprocal estimate through the instruction set's own intrinsics (GCC lowers the
 * generic forms poorly). min(a, b) = a < b ? a : b and max(a, b) = a > b ? a : b return the second operand
 * when either is NaN: callers put the value that may be NaN second, so that a NaN (a diverged network)
 * propagates and is seen. */
#if defined(__AVX512F__)
#include <immintrin.h>
static inline lf_vf lf_set1(float s) { return (lf_vf)_mm512_set1_ps(s); }
static inline lf_vf lf_min(lf_vf a, lf_vf b) { return (lf_vf)_mm512_min_ps((__m512)a, (__m512)b); }
static inline lf_vf lf_max(lf_vf a, lf_vf b) { return (lf_vf)_mm512_max_ps((__m512)a, (__m512)b); }
static inline lf_vf lf_rcp_estimate(lf_vf a) { return (lf_vf)_mm512_rcp14_ps((__m512)a); }
#elif defined(__AVX__)
#include <immintrin.h>
static inline lf_vf lf_set1(float s) { return (lf_vf)_mm256_set1_ps(s); }
static inline lf_vf lf_min(lf_vf a, lf_vf b) { return (lf_vf)_mm256_min_ps((__m256)a, (__m256)b); }
static inline lf_vf lf_max(lf_vf a, lf_vf b) { return (lf_vf)_mm256_max_ps((__m256)a, (__m256)b); }
static inline lf_vf lf_rcp_estimate(lf_vf a) { return (lf_vf)_mm256_rcp_ps((__m256)a); }
#elif defined(__SSE__)
#include <immintrin.h>
static inline lf_vf lf_set1(float s) { return (lf_vf)_mm_set1_ps(s); }
static inline lf_vf lf_min(lf_vf a, lf_vf b) { return (lf_vf)_mm_min_ps((__m128)a, (__m128)b); }
static inline lf_vf lf_max(lf_vf a, lf_vf b) { return (lf_vf)_mm_max_ps((__m128)a, (__m128)b); }
static inline lf_vf lf_rcp_estimate(lf_vf a) { return (lf_vf)_mm_rcp_ps((__m128)a); }
#else
/* A broadcast; not (lf_vf){0} + s on x86, where GCC keeps the add (0 + -0 is +0). */
static inline lf_vf lf_set1(float s) { return (lf_vf){0} + s; }
typedef int32_t lf_vi __attribute__((vector_size(LF_LANES * sizeof(int32_t))));
static inline lf_vf lf_select(lf_vi mask, lf_vf a, lf_vf b)
{
    return (lf_vf)((mask & (lf_vi)a) | (~mask & (lf_vi)b));
}
static inline lf_vf lf_min(lf_vf a, lf_vf b) { return lf_select(a < b, a, b); }
static inline lf_vf lf_max(lf_vf a, lf_vf b) { return lf_select(a > b, a, b); }
static inline lf_vf lf_rcp_estimate(lf_vf a) { return lf_set1(1.0f) / a; }
#endif

/* 1 / a within about an ulp: the estimate and two Newton steps, cheaper than a division. Two, because one
 * leaves 1 / 1 just below 1. */
static inline lf_vf lf_rcp(lf_vf a)
{
    const lf_vf one = lf_set1(1.0f);
    lf_vf r = lf_rcp_estimate(a);
    r = r + r * (one - a * r);
    return r + r * (one - a * r);
}

/* One block's tensor. */
typedef struct {
    int c, h, w;
    int lanes;        /* LF_LANES (blocked) or 1 (spatial) */
    ptrdiff_t rs, cs; /* row and channel strides, in floats */
    size_t size;      /* floats to allocate, including the tail that vector reads may run into */
} lf_geom;

/* Accumulator tiles: how many vectors of outputs one pass keeps in registers (of 32 or 16). */
#define LF_UPTO_2(X) X(1) X(2)
#define LF_UPTO_3(X) LF_UPTO_2(X) X(3)
#define LF_UPTO_4(X) LF_UPTO_3(X) X(4)
#define LF_UPTO_6(X) LF_UPTO_4(X) X(5) X(6)
#define LF_UPTO_8(X) LF_UPTO_6(X) X(7) X(8)
#define LF_UPTO_12(X) LF_UPTO_8(X) X(9) X(10) X(11) X(12)
#define LF_UPTO_24(X) LF_UPTO_12(X) X(13) X(14) X(15) X(16) X(17) X(18) X(19) X(20) X(21) X(22) X(23) X(24)
#if defined(__AVX512F__)
#define LF_TILE 24
#define LF_TILE_SIZES LF_UPTO_24
#else
#define LF_TILE 12
#define LF_TILE_SIZES LF_UPTO_12
#endif

#define LF_STR(x) #x
#define LF_XSTR(x) LF_STR(x)
#define LF_CAT_(a, b) a##_##b
#define LF_CAT(a, b) LF_CAT_(a, b)
#ifdef LF_ISA_SUFFIX
#define LF_ISA(name) LF_CAT(name, LF_ISA_SUFFIX)
#endif

/* The per-instruction-set kernel table. */
typedef struct {
    const char *name;
    int (*forward)(const lf_layer *, int, const lf_input *, int, float *);
    void (*softmax)(const float *, int, int, float, int, float *);
    void (*activation)(const float *, size_t, lf_act, float *);
} lf_kernel_table;

extern const lf_kernel_table lf_kernels_avx512, lf_kernels_avx2, lf_kernels_baseline;

#ifdef LF_ISA_SUFFIX
/* Kernels on one block; in and out are laid out by the geometries. */
void LF_ISA(conv_block)(const lf_layer *l, const float *in, const lf_geom *gi, float *out, const lf_geom *go);
void LF_ISA(subsample_block)(const lf_layer *l, const float *in, const lf_geom *gi, float *out,
                             const lf_geom *go);
void LF_ISA(full_block)(const lf_layer *l, const float *in, const lf_geom *gi, float *out, const lf_geom *go);
void LF_ISA(rbf_block)(const lf_layer *l, const float *in, const lf_geom *gi, float *out, const lf_geom *go);

int LF_ISA(forward)(const lf_layer *layers, int nlayers, const lf_input *input, int n, float *out);
void LF_ISA(softmax)(const float *x, int n, int k, float sign, int log, float *y);
void LF_ISA(activation)(const float *x, size_t count, lf_act act, float *y);
#endif

/* Per-thread scratch memory, kept between calls (workspace.c). Zeroed when it grows. NULL on failure. */
float *lf_workspace(size_t floats);

#endif
