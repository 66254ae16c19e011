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
 *    the few images that do not fill a block, so that one image costs one image's work (and, on more than
 *    one thread, for a batch that would be one block, so that every thread has work: net.c).
 * Both modes run the same arithmetic in the same order on every output, so an image's result does not
 * depend on which mode, block or thread computed it (the tests check this to the bit).
 */
#ifndef LENET_FAST_KERNELS_H
#define LENET_FAST_KERNELS_H

#include <stddef.h>
#include <string.h>
#if defined(__SSE__)
#include <immintrin.h>
#endif
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
typedef int32_t lf_vi __attribute__((vector_size(LF_LANES * sizeof(int32_t)))); /* comparison results */

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

/* The lanes of v summed in lane order (a fixed order: the same bits on every run). */
static inline float lf_hsum(lf_vf v)
{
    float s = v[0];
    for (int i = 1; i < LF_LANES; i++)
        s += v[i];
    return s;
}

/* One block's tensor. */
typedef struct {
    int c, h, w;
    int lanes;        /* LF_LANES (blocked) or 1 (spatial) */
    ptrdiff_t rs, cs; /* row and channel strides, in floats */
    size_t size;      /* floats to allocate, including the tail that vector reads may run into */
} lf_geom;

static inline size_t lf_round_lanes(size_t n) { return (n + LF_LANES - 1) / LF_LANES * LF_LANES; }

/* A tensor without gaps: rows of w, maps of h rows. */
static inline void lf_dense_geom(lf_geom *g, int c, int h, int w, int lanes)
{
    g->c = c, g->h = h, g->w = w, g->lanes = lanes;
    g->rs = (ptrdiff_t)w * lanes;
    g->cs = (ptrdiff_t)h * w * lanes;
    g->size = lf_round_lanes((size_t)c * g->cs);
}

/* A spatial convolution's output keeps its input's row stride ("wide" rows): a map spans out_h - 1 whole
 * input rows plus out_w columns, rounded up to whole vectors. Sets go's strides and size, and grows gi's
 * size to cover the vector reads of the last map's run (up to a vector plus the kernel's reach past it). */
static inline void lf_wide_geom(const lf_layer *l, lf_geom *gi, lf_geom *go)
{
    const size_t run = lf_round_lanes((size_t)(l->out_h - 1) * gi->rs + l->out_w);
    go->rs = gi->rs;
    go->cs = (ptrdiff_t)run;
    go->size = (size_t)l->out_c * run;
    const size_t reach = (size_t)(gi->c - 1) * gi->cs + run + (l->kh - 1) * gi->rs + l->kw - 1;
    if (gi->size < reach)
        gi->size = lf_round_lanes(reach);
}

/* Inference writes a spatial convolution's output in compact rows instead (row stride out_w), so that every
 * output vector holds LF_LANES pixels where wide rows waste the columns past out_w (C3: 4 of every 14). Its
 * tiles read kw copies of each input map, copy v shifted left by v columns and cut to out_w columns, so that
 * tap (u, v) is again a constant offset, u out_w into copy v (conv.c). A copy's floats: the map's rows,
 * then room for the vector reads of the last output vector past them and for the copy loop's last vector. */
static inline size_t lf_compact_vectors(const lf_layer *l)
{
    return ((size_t)l->out_h * l->out_w + LF_LANES - 1) / LF_LANES;
}

static inline size_t lf_copy_plane(const lf_layer *l)
{
    return lf_round_lanes((size_t)(l->kh - 1) * l->out_w + (lf_compact_vectors(l) + 1) * LF_LANES);
}

/* The copies of every input map live on the kernel's stack: layers whose copies exceed this many floats
 * (LeNet's take about 4,500) keep wide rows. */
#define LF_COPIES_MAX 16384

/* Sets go to compact rows and grows gi's size to cover the copy loop's reads (whole vectors from each
 * row's column v on); 0, leaving both as they were, when the copies would not fit LF_COPIES_MAX. */
static inline int lf_compact_geom(const lf_layer *l, lf_geom *gi, lf_geom *go)
{
    if ((size_t)l->in_c * l->kw * lf_copy_plane(l) > LF_COPIES_MAX || l->kw == 1)
        return 0;
    go->cs = (ptrdiff_t)(lf_compact_vectors(l) * LF_LANES);
    go->size = (size_t)l->out_c * go->cs;
    const size_t reach = (size_t)(gi->c - 1) * gi->cs + (size_t)(gi->h - 1) * gi->rs + l->kw - 1 +
                         lf_round_lanes(l->out_w);
    if (gi->size < reach)
        gi->size = lf_round_lanes(reach);
    return 1;
}

/* A spatial 2x2 subsampling reads two vectors of each input row from every LF_LANES outputs on, past the
 * row's end (what those lanes give is not stored): the tensor's size grows to cover the last map's reads. */
static inline void lf_pairs_geom(const lf_layer *l, lf_geom *gi)
{
    const size_t map = (size_t)(2 * l->out_h - 1) * gi->rs + 2 * ((l->out_w - 1) / LF_LANES * LF_LANES) +
                       2 * LF_LANES;
    const size_t reach = (size_t)(gi->c - 1) * gi->cs + map;
    if (gi->size < reach)
        gi->size = lf_round_lanes(reach);
}

#define LF_MAX_LAYERS 16

/* Bytes of one pixel of the input, and of one image. */
static inline size_t lf_pixel_bytes(const lf_input *in) { return in->dtype == LF_U8 ? 1 : sizeof(float); }
static inline size_t lf_image_bytes(const lf_input *in)
{
    return (size_t)in->c * in->h * in->w * lf_pixel_bytes(in);
}

/* A batch of n images as work items: nblocks blocks of LF_LANES images (the last possibly part full), then
 * one item per image left over, run in the spatial layout. */
/* From this many leftover images on, one partly filled block is cheaper than that many single images (a
 * classic forward pass costs 1.33-1.35 times as much per image in the spatial layout as in a block on AVX2,
 * 1.57 on AVX-512, where 11 of 16 would do as well: one thread, `python tools/layer_times.py`, a Zen 3 host
 * on 2026-11-23 and a Zen 5 one on 2026-11-30). */
#define LF_PARTIAL_BLOCK_MIN (LF_LANES * 3 / 4)

static inline int lf_blocks(int n) { return n / LF_LANES + (n % LF_LANES >= LF_PARTIAL_BLOCK_MIN); }
static inline int lf_items(int n, int nblocks)
{
    return nblocks + (n > nblocks * LF_LANES ? n - nblocks * LF_LANES : 0);
}
/* Item it's first image and image count; returns whether it is a block. */
static inline int lf_item(int n, int nblocks, int it, size_t *first, int *count)
{
    if (it < nblocks) {
        *first = (size_t)it * LF_LANES;
        *count = n - (int)*first < LF_LANES ? n - (int)*first : LF_LANES;
        return 1;
    }
    *first = (size_t)nblocks * LF_LANES + (it - nblocks);
    *count = 1;
    return 0;
}

/* Where a block keeps every layer's tensor in its workspace. */
typedef struct {
    lf_geom g[LF_MAX_LAYERS + 1];  /* g[0] the input, g[i + 1] the output of layer i */
    size_t off[LF_MAX_LAYERS + 1]; /* where each tensor starts in the workspace */
    size_t total;
} lf_plan;

/* What training keeps between calls (lenet_fast.h). */
struct lf_trainer {
    const lf_layer *layers;
    int nlayers;
    size_t nparams;
    float *slots;                       /* gradient slots 1 .. LF_GRAD_SLOTS - 1 (slot 0 is the caller's) */
    lf_layer transposed[LF_MAX_LAYERS]; /* for each convolution: the convolution of its zero-padded output
                                         * gradient that gives its input gradient (kernels rotated by 180
                                         * degrees, table transposed); the first layer's runs only when the
                                         * caller asks for the input's gradient */
    int *source[LF_MAX_LAYERS];         /* its connection k' carries the layer's connection source[k'] */
};

/* The shape of the convolution that carries conv layer l's output gradient back to its input: a valid
 * convolution of that gradient zero-padded by the kernel's reach on every side. */
static inline void lf_transpose_shape(const lf_layer *l, lf_layer *t)
{
    memset(t, 0, sizeof *t);
    t->kind = LF_LAYER_CONV;
    t->in_c = l->out_c, t->in_h = l->out_h + 2 * (l->kh - 1), t->in_w = l->out_w + 2 * (l->kw - 1);
    t->out_c = l->in_c, t->out_h = l->in_h, t->out_w = l->in_w;
    t->kh = l->kh, t->kw = l->kw;
    t->act = LF_ACT_NONE;
    t->weight_at = t->bias_at = -1;
}

/* Rebuilds the transposed convolutions' kernels of layers first.. from the current weights (squared when
 * second is set); first is 1 when nobody asks for the input's gradient. */
void lf_trainer_rotate(lf_trainer *t, int second, int first);

/* One layer's backward pass on one block. */
typedef struct {
    const float *x;       /* the layer's input, geometry gx */
    const float *y;       /* its output, geometry gy */
    float *dy;            /* the gradient with respect to y; overwritten by that with respect to the
                           * pre-activation */
    float *dx;            /* receives the gradient with respect to x, or NULL when not needed */
    const lf_geom *gx, *gy;
    float *grad;          /* the block's gradient slot: weights at weight_at, biases at bias_at (added to) */
    float *scratch;       /* conv_backward_scratch or full_backward_scratch floats */
    const lf_layer *transposed; /* conv: the convolution that gives dx */
    int second;           /* Gauss-Newton second derivatives instead of gradients */
    int assign;           /* the slot is fresh: gradients are stored into it, not added (no zeroing pass) */
} lf_backward;

/* One gradient entry into a slot (lf_backward.assign). */
static inline void lf_grad_put(float *g, float v, int assign) { *g = assign ? v : *g + v; }

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
/* Unrolls the loop that follows completely: for loops over a tile's accumulators (constant trip counts up to
 * LF_TILE), so that the accumulators stay in registers. GCC unrolls at most 16 iterations by itself and
 * keeps larger AVX-512 tiles in memory. */
#define LF_UNROLL _Pragma(LF_XSTR(GCC unroll LF_TILE))
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
    int (*gradient)(lf_trainer *, const lf_input *, int, const int64_t *, const lf_loss *, float, int, float *,
                    float *, float *, float *);
    int (*train)(lf_trainer *, const lf_input *, int, const int64_t *, const lf_loss *, int, lf_optimizer *,
                 float *, float *, float *, float *);
    void (*update)(lf_optimizer *, float *, const float *, size_t);
} lf_kernel_table;

extern const lf_kernel_table lf_kernels_avx512, lf_kernels_avx2, lf_kernels_baseline;

#ifdef LF_ISA_SUFFIX
/* net.c: plans and runs the forward pass of one block. */
/* A block's plan. Spatial convolutions write compact rows for inference, wide rows for training
 * (for_backward: the backward passes read them). */
void LF_ISA(make_plan)(const lf_layer *layers, int nlayers, int lanes, int for_backward, lf_plan *p);
void LF_ISA(pack_input)(const lf_input *in, size_t first, int count, const lf_geom *g, float *dst);
void LF_ISA(unpack_output)(const float *src, const lf_geom *g, size_t first, int count, float *out);
/* Runs the layers on one work item in the calling thread's workspace ws. */
void LF_ISA(run_block)(const lf_layer *layers, int nlayers, const lf_plan *p, float *ws);

/* Kernels on one block; in and out are laid out by the geometries. */
void LF_ISA(conv_block)(const lf_layer *l, const float *in, const lf_geom *gi, float *out, const lf_geom *go);
void LF_ISA(subsample_block)(const lf_layer *l, const float *in, const lf_geom *gi, float *out,
                             const lf_geom *go);
void LF_ISA(full_block)(const lf_layer *l, const float *in, const lf_geom *gi, float *out, const lf_geom *go);
void LF_ISA(rbf_block)(const lf_layer *l, const float *in, const lf_geom *gi, float *out, const lf_geom *go);

/* Backward passes (lf_backward), and the scratch floats they need in a layout of lanes. */
void LF_ISA(conv_backward)(const lf_layer *l, const lf_backward *b);
void LF_ISA(subsample_backward)(const lf_layer *l, const lf_backward *b);
void LF_ISA(full_backward)(const lf_layer *l, const lf_backward *b);
void LF_ISA(rbf_backward)(const lf_layer *l, const lf_backward *b);
size_t LF_ISA(conv_backward_scratch)(const lf_layer *l, int lanes);
size_t LF_ISA(full_backward_scratch)(const lf_layer *l, int lanes);

/* loss.c: the loss of a block's count images (the batch's from first on) and its gradient times scale (zero
 * in unused lanes) with respect to the output y (geometry g); second: the output curvature instead
 * (cross-entropy only). labels, losses and the linear loss's dout are the whole batch's. */
void LF_ISA(loss_block)(const lf_loss *loss, const float *y, const lf_geom *g, const int64_t *labels,
                        size_t first, int count, float scale, int second, float *dy, float *losses);

int LF_ISA(forward)(const lf_layer *layers, int nlayers, const lf_input *input, int n, float *out);
int LF_ISA(gradient)(lf_trainer *t, const lf_input *input, int n, const int64_t *labels, const lf_loss *loss,
                     float scale, int second, float *grad, float *losses, float *out, float *dinput);
int LF_ISA(train)(lf_trainer *t, const lf_input *input, int n, const int64_t *labels, const lf_loss *loss,
                  int batch_size, lf_optimizer *opt, float *params, float *grad, float *losses, float *out);
void LF_ISA(update)(lf_optimizer *opt, float *params, const float *grad, size_t nparams);
void LF_ISA(softmax)(const float *x, int n, int k, float sign, int log, float *y);
void LF_ISA(activation)(const float *x, size_t count, lf_act act, float *y);
#endif

/* Per-thread scratch memory, kept between calls (workspace.c). Zeroed when it grows. NULL on failure. */
float *lf_workspace(size_t floats);

#endif
