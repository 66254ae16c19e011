/*
 * int8_gemm.c: the integer matrix kernel (int8_gemm.h) in this instruction-set path's default form and, on
 * the AVX2 and AVX-512 paths, in their VNNI form, compiled for that target alone (function attributes, so
 * that the rest of the path runs on CPUs without it); dispatch.c uses the VNNI form only where the CPU has
 * it (int8.h: lf_int8_isa_name).
 */
#include "int8_ops.h"

#define LF_I8_GEMM LF_ISA(int8_gemm)
#define LF_I8_ATTRIBUTE
#include "simd_int8.h"
#include "int8_gemm.h"

#ifdef LF_I8_VNNI
#undef LF_I8_FORM
#if defined(__AVX512F__)
#define LF_I8_FORM LF_I8_FORM_AVX512VNNI
#define LF_I8_ATTRIBUTE __attribute__((target("avx512vnni,avx512vl")))
#else
#define LF_I8_FORM LF_I8_FORM_AVXVNNI
#define LF_I8_ATTRIBUTE __attribute__((target("avxvnni")))
#endif
#define LF_I8_GEMM LF_ISA(int8_gemm_vnni)
#include "simd_int8.h"
#include "int8_gemm.h"
#endif
