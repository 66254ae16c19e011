/*
 * int8_conv.c: the int8 network's spatial layers on one image of codes (C, H, W): the convolution as its
 * patches (im2col) times the weight rows, and 2x2 pooling. int8.h has the formulas.
 */
#include "int8_epilogue.h"
#include "int8_ops.h"

/* One row of depth bytes per output pixel: its taps in the weights' (c, ky, kx) order. The bytes past the taps
 * hold whatever is there: the weights there are zero, so it adds nothing. Inlined with k constant, each
 * kernel row's copy is one move of `move` bytes (8 for k = 5: the 3 bytes past a kernel row are written over
 * by the next row's copy, or land in the row's padding, and read at most 3 bytes past the input map, inside
 * the workspace that follows it: int8_forward.c). */
static inline __attribute__((always_inline)) void patches(const lf_int8_layer *l, const uint8_t *in, uint8_t *cols,
                                                          int k, int move)
{
    const int h = l->in_h, w = l->in_w, ow = l->out_w;
    const size_t depth = (size_t)l->depth;
    /* x innermost: one kernel row's copies along an output row are a tight loop; a patch's kernel rows are
     * still copied in ascending order, so each move's extra bytes are written over by the next row's */
    for (int y = 0; y < l->out_h; y++)
        for (int c = 0; c < l->in_c; c++)
            for (int ky = 0; ky < k; ky++) {
                const uint8_t *src = in + ((size_t)c * h + y + ky) * w;
                uint8_t *dst = cols + (size_t)y * ow * depth + (c * k + ky) * k;
                for (int x = 0; x < ow; x++)
                    memcpy(dst + x * depth, src + x, (size_t)move);
            }
}

void LF_ISA(int8_conv)(const lf_int8_layer *l, const uint8_t *in, void *out, uint8_t *cols, int32_t *acc,
                       lf_i8_gemm_fn gemm)
{
    const int m = l->out_h * l->out_w;
    if (l->k == 5 && l->depth >= l->in_c * 25 + 3) /* LeNet-5's every convolution */
        patches(l, in, cols, 5, 8);
    else
        patches(l, in, cols, l->k, l->k);
    gemm(cols, (size_t)l->depth, m, l->weight, l->depth, l->out_c, acc);
    lf_i8_epilogue(l, acc, l->out_c, m, out, 1, (size_t)m);
}

void LF_ISA(int8_pool)(const lf_int8_layer *l, const uint8_t *in, void *out, int32_t *acc)
{
    const int w = l->in_w, oh = l->out_h, ow = l->out_w, m = oh * ow;
    for (int c = 0; c < l->out_c; c++)
        for (int y = 0; y < oh; y++) {
            const uint8_t *r0 = in + ((size_t)c * l->in_h + 2 * y) * w, *r1 = r0 + w;
            if (l->pool == LF_POOL_MAX) {
                uint8_t *o = (uint8_t *)out + (size_t)c * m + y * ow;
                int x = 0;
#if defined(__SSE2__)
                /* 8 outputs from 16 bytes of each row: the rows' maximum, then each pair's (the odd byte
                 * shifted onto the even one), the even bytes packed */
                for (; x + 8 <= ow; x += 8) {
                    const __m128i v = _mm_max_epu8(_mm_loadu_si128((const __m128i *)(r0 + 2 * x)),
                                                   _mm_loadu_si128((const __m128i *)(r1 + 2 * x)));
                    const __m128i pairs = _mm_and_si128(_mm_max_epu8(v, _mm_srli_epi16(v, 8)), _mm_set1_epi16(0xFF));
                    _mm_storel_epi64((__m128i *)(o + x), _mm_packus_epi16(pairs, pairs));
                }
#endif
                for (; x < ow; x++) {
                    const uint8_t a = r0[2 * x] > r0[2 * x + 1] ? r0[2 * x] : r0[2 * x + 1];
                    const uint8_t b = r1[2 * x] > r1[2 * x + 1] ? r1[2 * x] : r1[2 * x + 1];
                    o[x] = a > b ? a : b;
                }
            } else {
                int32_t *o = acc + (size_t)c * m + y * ow;
                for (int x = 0; x < ow; x++)
                    o[x] = r0[2 * x] + r0[2 * x + 1] + r1[2 * x] + r1[2 * x + 1];
            }
        }
    if (l->pool != LF_POOL_MAX)
        lf_i8_epilogue(l, acc, l->out_c, m, out, 1, (size_t)m);
}
