/*
 * simd.h: the vector layer the kernels are written in, apart from any operation on tensors (ggml's split
 * between its SIMD mappings and its ops). Not part of the public interface.
 *
 * Every kernel file is compiled once per instruction set (setup.py: baseline x86-64, AVX2+FMA, AVX-512),
 * and the kernels are written once, in GCC vector extensions, over the type lf_vf of LF_LANES floats: the
 * same source becomes SSE2, AVX2 or AVX-512 code. What the generic vector forms lower poorly (masked and
 * byte loads, broadcasts, min and max) goes through each instruction set's intrinsics here.
 */
#ifndef LENET_FAST_SIMD_H
#define LENET_FAST_SIMD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE__)
#include <immintrin.h>
#endif

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
typedef int32_t lf_vi __attribute__((vector_size(LF_LANES * sizeof(int32_t)))); /* comparison results */
typedef uint32_t lf_vu __attribute__((vector_size(LF_LANES * sizeof(uint32_t)))); /* float bits */

/* Loads and stores through memcpy: no alignment or aliasing assumptions; compiles to one vector move. */
static inline lf_vf lf_load(const float *p) { lf_vf v; memcpy(&v, p, sizeof v); return v; }
static inline void lf_store(float *p, lf_vf v) { memcpy(p, &v, sizeof v); }
/* The first n < LF_LANES floats (the rest of the vector zero), and their store: for the ragged end of an
 * array. AVX-512 and AVX2 mask the access (masked-off elements are never touched, so reading past the array
 * cannot fault); SSE2 has no masked move and goes through a zero-padded copy. */
#if defined(__AVX512F__)
static inline lf_vf lf_load_n(const float *p, size_t n)
{
    return (lf_vf)_mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), p);
}
static inline void lf_store_n(float *p, lf_vf v, size_t n)
{
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1), (__m512)v);
}
#elif defined(__AVX__)
/* Lanes below n all ones: the mask vmaskmovps reads from each lane's sign bit. */
static inline __m256i lf_first_n(size_t n)
{
    return (__m256i)((lf_vi){0, 1, 2, 3, 4, 5, 6, 7} < (int32_t)n);
}
static inline lf_vf lf_load_n(const float *p, size_t n) { return (lf_vf)_mm256_maskload_ps(p, lf_first_n(n)); }
static inline void lf_store_n(float *p, lf_vf v, size_t n) { _mm256_maskstore_ps(p, lf_first_n(n), (__m256)v); }
#else
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
#endif
/* LF_LANES bytes as floats (0 to 255, exactly). Through the instruction set's widening moves: GCC 12 turns
 * __builtin_convertvector from bytes into one scalar conversion per element. */
#if defined(__AVX512F__)
static inline lf_vf lf_load_u8(const uint8_t *p)
{
    return (lf_vf)_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p)));
}
#elif defined(__AVX2__)
static inline lf_vf lf_load_u8(const uint8_t *p)
{
    return (lf_vf)_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}
#elif defined(__SSE2__) && LF_LANES == 4
static inline lf_vf lf_load_u8(const uint8_t *p)
{
    int32_t four;
    memcpy(&four, p, sizeof four);
    const __m128i zero = _mm_setzero_si128();
    const __m128i words = _mm_unpacklo_epi8(_mm_cvtsi32_si128(four), zero);
    return (lf_vf)_mm_cvtepi32_ps(_mm_unpacklo_epi16(words, zero));
}
#else
static inline lf_vf lf_load_u8(const uint8_t *p)
{
    lf_vf v;
    for (int i = 0; i < LF_LANES; i++)
        v[i] = p[i];
    return v;
}
#endif
/* a where mask is set (all ones), else b. */
static inline lf_vf lf_select(lf_vi mask, lf_vf a, lf_vf b)
{
    return (lf_vf)((mask & (lf_vi)a) | (~mask & (lf_vi)b));
}
/* Broadcast, min and max through the instruction set's own intrinsics (GCC lowers the
 * generic forms poorly). min(a, b) = a < b ? a : b and max(a, b) = a > b ? a : b return the second operand
 * when either is NaN: callers put the value that may be NaN second, so that a NaN (a diverged network)
 * propagates and is seen. */
#if defined(__AVX512F__)
static inline lf_vf lf_set1(float s) { return (lf_vf)_mm512_set1_ps(s); }
static inline lf_vf lf_min(lf_vf a, lf_vf b) { return (lf_vf)_mm512_min_ps((__m512)a, (__m512)b); }
static inline lf_vf lf_max(lf_vf a, lf_vf b) { return (lf_vf)_mm512_max_ps((__m512)a, (__m512)b); }
#elif defined(__AVX__)
static inline lf_vf lf_set1(float s) { return (lf_vf)_mm256_set1_ps(s); }
static inline lf_vf lf_min(lf_vf a, lf_vf b) { return (lf_vf)_mm256_min_ps((__m256)a, (__m256)b); }
static inline lf_vf lf_max(lf_vf a, lf_vf b) { return (lf_vf)_mm256_max_ps((__m256)a, (__m256)b); }
#elif defined(__SSE__)
static inline lf_vf lf_set1(float s) { return (lf_vf)_mm_set1_ps(s); }
static inline lf_vf lf_min(lf_vf a, lf_vf b) { return (lf_vf)_mm_min_ps((__m128)a, (__m128)b); }
static inline lf_vf lf_max(lf_vf a, lf_vf b) { return (lf_vf)_mm_max_ps((__m128)a, (__m128)b); }
#else
/* A broadcast; not (lf_vf){0} + s on x86, where GCC keeps the add (0 + -0 is +0). */
static inline lf_vf lf_set1(float s) { return (lf_vf){0} + s; }
static inline lf_vf lf_min(lf_vf a, lf_vf b) { return lf_select(a < b, a, b); }
static inline lf_vf lf_max(lf_vf a, lf_vf b) { return lf_select(a > b, a, b); }
#endif

/* Two-vector shuffles with constant indices: GCC's __builtin_shuffle takes them as a vector, clang's
 * __builtin_shufflevector as a list. The indices below: the even and the odd elements of the 2 LF_LANES
 * floats a, b, in order; and the first (LO) and second (HI) halves of a and b interleaved, a0 b0 a1 b1 ... */
#if defined(__clang__)
#define LF_SHUFFLE(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#else
#define LF_SHUFFLE(a, b, ...) __builtin_shuffle(a, b, (lf_vi){__VA_ARGS__})
#endif
#if LF_LANES == 16
#define LF_EVEN 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30
#define LF_ODD 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31
#define LF_ZIP_LO 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23
#define LF_ZIP_HI 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31
#elif LF_LANES == 8
#define LF_EVEN 0, 2, 4, 6, 8, 10, 12, 14
#define LF_ODD 1, 3, 5, 7, 9, 11, 13, 15
#define LF_ZIP_LO 0, 8, 1, 9, 2, 10, 3, 11
#define LF_ZIP_HI 4, 12, 5, 13, 6, 14, 7, 15
#else
#define LF_EVEN 0, 2, 4, 6
#define LF_ODD 1, 3, 5, 7
#define LF_ZIP_LO 0, 4, 1, 5
#define LF_ZIP_HI 2, 6, 3, 7
#endif
static inline lf_vf lf_even(lf_vf a, lf_vf b) { return LF_SHUFFLE(a, b, LF_EVEN); }
static inline lf_vf lf_odd(lf_vf a, lf_vf b) { return LF_SHUFFLE(a, b, LF_ODD); }

/* The LF_LANES x LF_LANES floats of r transposed in place (r[i][b] becomes r[b][i]): log2(LF_LANES) rounds,
 * each interleaving rows j and j + LF_LANES / 2 into rows 2j and 2j + 1 (the first and second halves of
 * their elements taken in turn). */
static inline __attribute__((always_inline)) void lf_transpose(lf_vf r[LF_LANES])
{
    for (int round = 1; round < LF_LANES; round *= 2) {
        lf_vf t[LF_LANES];
        for (int j = 0; j < LF_LANES / 2; j++) {
            t[2 * j] = LF_SHUFFLE(r[j], r[j + LF_LANES / 2], LF_ZIP_LO);
            t[2 * j + 1] = LF_SHUFFLE(r[j], r[j + LF_LANES / 2], LF_ZIP_HI);
        }
        for (int j = 0; j < LF_LANES; j++)
            r[j] = t[j];
    }
}

/* v rounded to bfloat16, float32's top 16 bits, to nearest with ties to even as hardware converts
 * (vcvtneps2bf16), as float32 with the low half zero. Adding 0x7FFF plus the lowest kept bit carries into
 * the kept half exactly when the dropped half is above one half, or one half with an odd kept half; a value
 * past bfloat16's largest becomes infinity. Finite v: a NaN may come out as infinity (callers check
 * outputs finite). */
static inline lf_vf lf_round_bf16(lf_vf v)
{
    const lf_vu u = (lf_vu)v;
    return (lf_vf)((u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u);
}

/* exp(x) - 1 = 2^n (1 + q) - 1, in parts: x = n ln2 + r with |r| <= ln2 / 2 (ln2 split in two so that
 * n ln2 is exact for the n that occur) and q = exp(r) - 1 by its Taylor series to r^7, whose remainder
 * (r^8 / 8! < 6e-9) is far below float32's rounding. x is first clamped to [-104, 89] (outside, exp is 0
 * or inf either way); NaN passes through the clamp (lf_min/lf_max return their second operand) and gives
 * NaN. Sets *n (an integer in a float) and returns q. */
static inline __attribute__((always_inline)) lf_vf lf_exp_parts(lf_vf x, lf_vf *n)
{
    x = lf_max(lf_set1(-104.0f), lf_min(lf_set1(89.0f), x));
    /* round(x / ln2): adding 1.5 * 2^23 rounds to an integer in float arithmetic */
    const lf_vf magic = lf_set1(12582912.0f);
    *n = (x * lf_set1(1.44269504f) + magic) - magic;
    const lf_vf r = (x - *n * lf_set1(0.693145752f)) - *n * lf_set1(1.42860677e-6f);
    lf_vf p = lf_set1(1.0f / 5040.0f);
    p = p * r + lf_set1(1.0f / 720.0f);
    p = p * r + lf_set1(1.0f / 120.0f);
    p = p * r + lf_set1(1.0f / 24.0f);
    p = p * r + lf_set1(1.0f / 6.0f);
    p = p * r + lf_set1(0.5f);
    return (p * r) * r + r;
}

/* 2^n v for an integer n in [-150, 128], in two halves so that results that are subnormal (x down to
 * -103) or overflow (x above 88.7: inf) come out as IEEE's. */
static inline __attribute__((always_inline)) lf_vf lf_scale2(lf_vf v, lf_vf n)
{
    const lf_vi k = __builtin_convertvector(n, lf_vi);
    const lf_vi half = k / 2;
    return (v * (lf_vf)((half + 127) << 23)) * (lf_vf)((k - half + 127) << 23);
}

/* exp(x) to a few ulp (tests/kernels/test_activation.py checks it against numpy through the sigmoid). */
static inline __attribute__((always_inline)) lf_vf lf_exp(lf_vf x)
{
    lf_vf n;
    const lf_vf q = lf_exp_parts(x, &n);
    return lf_scale2(q + lf_set1(1.0f), n);
}

/* exp(x) - 1 without the cancellation near 0: q itself where n = 0 (|x| < ln2 / 2), else exp(x) - 1, where
 * |exp(x) - 1| >= 0.29 loses nothing. */
static inline __attribute__((always_inline)) lf_vf lf_expm1(lf_vf x)
{
    lf_vf n;
    const lf_vf q = lf_exp_parts(x, &n);
    return lf_select(n == lf_set1(0.0f), q, lf_scale2(q + lf_set1(1.0f), n) - lf_set1(1.0f));
}

/* The lanes of v summed in lane order (a fixed order: the same bits on every run). */
static inline float lf_hsum(lf_vf v)
{
    float s = v[0];
    for (int i = 1; i < LF_LANES; i++)
        s += v[i];
    return s;
}

#endif
