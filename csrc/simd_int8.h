/*
 * simd_int8.h: the integer dot product the int8 kernels are written over (int8_gemm.h), one form per
 * instruction set. Not part of the public interface.
 *
 * A form defines LF_I8_STEP (the bytes one multiply-accumulate takes; it divides LF_I8_DEPTH), the types
 * lf_i8_acc (int32 partial sums), lf_i8_a (a step of uint8 activations, prepared) and lf_i8_w (a step of
 * int8 weights, prepared), and lf_i8_zero, lf_i8_load_a, lf_i8_load_w, lf_i8_mac, lf_i8_sum (one
 * accumulator's lanes summed) and lf_i8_store4 (four accumulators' sums stored at once). Every form
 * is exact: no step saturates or wraps.
 *
 * AVX2 multiplies bytes by vpmaddubsw, which adds each pair of uint8 x int8 products in int16 with
 * saturation: 255 x 127 x 2 = 64770 would saturate. Rather than cut the activations to 7 bits (half the
 * resolution of every code, the input pixels' too) or widen both sides to int16 for vpmaddwd (half the
 * products per instruction), the weights are kept within +-LF_I8_WEIGHT_MAX = 64: a pair then sums to at most
 * 2 x 255 x 64 = 32640 < 32767, exact, at 32 products per instruction; per-channel weights on 129 levels
 * measured no change in either pretrained model's MNIST error (benchmarks/results/int8-2026-12-03.md).
 * The SSE2 baseline (no vpmaddubsw) widens to int16 for pmaddwd; VNNI's vpdpbusd sums four products
 * into int32 without saturation.
 *
 * The default form follows the flags the file is compiled with (setup.py): AVX2 (also on the AVX-512 path,
 * whose AVX-512F alone has no byte or word instructions), SSE2 (the x86-64 baseline), or portable C. The
 * VNNI forms (vpdpbusd: four uint8 x int8 products summed into int32, without saturation) are selected by
 * defining LF_I8_FORM before including this header, inside a region compiled for that target
 * (int8_gemm.c); LF_I8_HAVE_AVXVNNI and LF_I8_HAVE_AVX512VNNI say whether this compiler has them.
 */
#ifndef LENET_FAST_SIMD_INT8_H
#define LENET_FAST_SIMD_INT8_H

#include <stdint.h>
#include <string.h>
#include "int8.h"
#if defined(__SSE2__)
#include <immintrin.h>
#endif

/* The compiler's VNNI intrinsics: GCC 11 and clang 12 added AVX-VNNI (AVX-512 VNNI is older). */
#if defined(__x86_64__) && ((defined(__clang__) && __clang_major__ >= 12) || \
                            (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 11))
#define LF_I8_HAVE_AVXVNNI 1
#define LF_I8_HAVE_AVX512VNNI 1
#endif

#endif

/* The forms: read by int8_gemm.c only (where LF_I8_GEMM names the kernel being made), once for each
 * LF_I8_FORM (int8_gemm.h undefines the names in between). */
#ifdef LF_I8_GEMM
#if !defined(LF_I8_FORM)
#if defined(__AVX2__)
#define LF_I8_FORM LF_I8_FORM_AVX2
#elif defined(__SSE2__)
#define LF_I8_FORM LF_I8_FORM_SSE2
#else
#define LF_I8_FORM LF_I8_FORM_C
#endif
#endif
#define LF_I8_FORM_C 0
#define LF_I8_FORM_SSE2 1
#define LF_I8_FORM_AVX2 2
#define LF_I8_FORM_AVXVNNI 3
#define LF_I8_FORM_AVX512VNNI 4

#if LF_I8_FORM == LF_I8_FORM_AVX2
/* 32 bytes; vpmaddubsw adds pairs of products into 16 int16 (exact: the weights' bound above), vpmaddwd by
 * ones adds those pairs into 8 int32. */
#define LF_I8_STEP 32
typedef __m256i lf_i8_acc, lf_i8_a, lf_i8_w;
#define lf_i8_zero() _mm256_setzero_si256()
#define lf_i8_load_a(p) _mm256_loadu_si256((const __m256i *)(p))
#define lf_i8_load_w(p) _mm256_loadu_si256((const __m256i *)(p))
#define lf_i8_mac(acc, a, w) \
    _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(a, w), _mm256_set1_epi16(1)))
#define LF_I8_SUM256 1
#elif LF_I8_FORM == LF_I8_FORM_AVXVNNI
/* 32 bytes; vpdpbusd (VEX) adds groups of four uint8 x int8 products into 8 int32. */
#define LF_I8_STEP 32
typedef __m256i lf_i8_acc, lf_i8_a, lf_i8_w;
#define lf_i8_zero() _mm256_setzero_si256()
#define lf_i8_load_a(p) _mm256_loadu_si256((const __m256i *)(p))
#define lf_i8_load_w(p) _mm256_loadu_si256((const __m256i *)(p))
#define lf_i8_mac(acc, a, w) _mm256_dpbusd_avx_epi32(acc, a, w)
#define LF_I8_SUM256 1
#elif LF_I8_FORM == LF_I8_FORM_AVX512VNNI
/* 32 bytes (weight rows are multiples of 32, not 64); the EVEX vpdpbusd on 256-bit registers. */
#define LF_I8_STEP 32
typedef __m256i lf_i8_acc, lf_i8_a, lf_i8_w;
#define lf_i8_zero() _mm256_setzero_si256()
#define lf_i8_load_a(p) _mm256_loadu_si256((const __m256i *)(p))
#define lf_i8_load_w(p) _mm256_loadu_si256((const __m256i *)(p))
#define lf_i8_mac(acc, a, w) _mm256_dpbusd_epi32(acc, a, w)
#define LF_I8_SUM256 1
#elif LF_I8_FORM == LF_I8_FORM_SSE2
/* 8 bytes widened to 8 int16 (the int8 side sign-extended by an arithmetic shift); pmaddwd into 4 int32. */
#define LF_I8_STEP 8
typedef __m128i lf_i8_acc, lf_i8_a, lf_i8_w;
#define lf_i8_zero() _mm_setzero_si128()
#define lf_i8_load_a(p) _mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)(p)), _mm_setzero_si128())
#define lf_i8_load_w(p) \
    _mm_srai_epi16(_mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)(p)), _mm_loadl_epi64((const __m128i *)(p))), 8)
#define lf_i8_mac(acc, a, w) _mm_add_epi32(acc, _mm_madd_epi16(a, w))
static inline int32_t lf_i8_sum(__m128i v)
{
    int32_t t[4];
    memcpy(t, &v, sizeof t);
    return t[0] + t[1] + t[2] + t[3];
}
/* The sums of a, b, c, d into p[0..3]: a 4x4 transpose by unpacking, then adds. */
static inline __attribute__((always_inline)) void lf_i8_store4(int32_t *p, __m128i a, __m128i b, __m128i c, __m128i d)
{
    const __m128i s0 = _mm_add_epi32(_mm_unpacklo_epi32(a, b), _mm_unpackhi_epi32(a, b));
    const __m128i s1 = _mm_add_epi32(_mm_unpacklo_epi32(c, d), _mm_unpackhi_epi32(c, d));
    _mm_storeu_si128((__m128i *)p, _mm_add_epi32(_mm_unpacklo_epi64(s0, s1), _mm_unpackhi_epi64(s0, s1)));
}
#else
/* Portable: 4 bytes, one int32 sum. */
#define LF_I8_STEP 4
typedef int32_t lf_i8_acc;
typedef const uint8_t *lf_i8_a;
typedef const int8_t *lf_i8_w;
#define lf_i8_zero() 0
#define lf_i8_load_a(p) (p)
#define lf_i8_load_w(p) (p)
#define lf_i8_mac(acc, a, w) \
    ((acc) + (a)[0] * (int32_t)(w)[0] + (a)[1] * (int32_t)(w)[1] + (a)[2] * (int32_t)(w)[2] + (a)[3] * (int32_t)(w)[3])
#define lf_i8_sum(acc) (acc)
#define lf_i8_store4(p, a, b, c, d) ((p)[0] = (a), (p)[1] = (b), (p)[2] = (c), (p)[3] = (d))
#endif

#if defined(LF_I8_SUM256) && !defined(LF_I8_SUM256_DEFINED)
#define LF_I8_SUM256_DEFINED
/* The 8 int32 lanes summed (integers: any order gives the same sum). */
static inline __attribute__((always_inline)) int32_t lf_i8_sum(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}
/* The sums of a, b, c, d into p[0..3]: three horizontal adds leave each one's two halves, then one add. */
static inline __attribute__((always_inline)) void lf_i8_store4(int32_t *p, __m256i a, __m256i b, __m256i c, __m256i d)
{
    const __m256i abcd = _mm256_hadd_epi32(_mm256_hadd_epi32(a, b), _mm256_hadd_epi32(c, d));
    _mm_storeu_si128((__m128i *)p, _mm_add_epi32(_mm256_castsi256_si128(abcd), _mm256_extracti128_si256(abcd, 1)));
}
#endif

#endif /* LF_I8_GEMM */
