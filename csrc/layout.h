/*
 * layout.h: where a block's tensors live: their geometry in the two layouts, the work items a batch is cut
 * into, and a block's plan of its workspace. Not part of the public interface.
 *
 * Layout of one block (a "block" is the unit one thread works on):
 *  - blocked: LF_LANES images (one vector register: 16, 8 or 4) interleaved innermost, element
 *    (c, y, x, lane) at c*cs + y*rs + x*LF_LANES + lane. Every kernel then multiplies a broadcast weight by
 *    a vector of LF_LANES images: no edge cases at any map size, the connection table included.
 *  - spatial: one image, element (c, y, x) at c*cs + y*rs + x; kernels vectorize along its rows. Used for
 *    the few images that do not fill a block, so that one image costs one image's work (and, on more than
 *    one thread, for a batch that would be one block, so that every thread has work: forward.c).
 * Both modes run the same arithmetic in the same order on every output, so an image's result does not
 * depend on which mode, block or thread computed it (the tests check this to the bit).
 * The public tensors (NCHW, what the caller passes and receives) are described in lenet_fast.h.
 */
#ifndef LENET_FAST_LAYOUT_H
#define LENET_FAST_LAYOUT_H

#include "lenet_fast.h"
#include "simd.h"

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

/* Bytes of one pixel of the input, and of one image. */
static inline size_t lf_pixel_bytes(const lf_input *in) { return in->dtype == LF_U8 ? 1 : sizeof(float); }
static inline size_t lf_image_bytes(const lf_input *in)
{
    return (size_t)in->c * in->h * in->w * lf_pixel_bytes(in);
}

/* A batch of n images as work items: nblocks blocks of LF_LANES images (the last possibly part full), then
 * one item per image left over, run in the spatial layout. From LF_PARTIAL_BLOCK_MIN leftover images on,
 * one partly filled block is cheaper than that many single images: an image costs about a third more in
 * the spatial layout than in a block (benchmarks/results/design-measurements.md#partial-block). */
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

/* Per-thread scratch memory, kept between calls (workspace.c). Zeroed when it grows. NULL on failure. */
float *lf_workspace(size_t floats);

#endif
