/*
 * forward.c: runs a network of layers over a batch. Full blocks of LF_LANES images run in the blocked layout;
 * the few images left over run one at a time in the spatial layout (or as one partly filled block when
 * there are many of them: layout.h). Each thread takes whole blocks and keeps every layer's tensor of its
 * block in its own workspace, so a block's activations stay in cache from the first layer to the last.
 */
#include "ops.h"
#include "paper_constants.h"

void LF_ISA(make_plan)(const lf_layer *layers, int nlayers, int lanes, int for_backward, lf_plan *p)
{
    lf_dense_geom(&p->g[0], layers[0].in_c, layers[0].in_h, layers[0].in_w, lanes);
    for (int i = 0; i < nlayers; i++) {
        const lf_layer *l = &layers[i];
        lf_dense_geom(&p->g[i + 1], l->out_c, l->out_h, l->out_w, lanes);
        if (lf_ops(l)->geometry)
            lf_ops(l)->geometry(l, lanes, for_backward, &p->g[i], &p->g[i + 1]);
    }
    p->total = 0;
    for (int i = 0; i <= nlayers; i++) {
        p->off[i] = p->total;
        p->total += p->g[i].size;
    }
}

/* Pixels p of the input become p * scale + shift: [0, 1] (uint8: p / 255) maps to the paper's input range
 * (docs/paper.md#input-normalization). */
static inline void pixel_map(const lf_input *in, float *scale, float *shift)
{
    *scale = in->normalize ? (in->dtype == LF_U8 ? LF_INPUT_RANGE / 255.0f : LF_INPUT_RANGE) : 1.0f;
    *shift = in->normalize ? LF_INPUT_BACKGROUND : 0.0f;
}

/* LF_LANES pixels of an input row from column x on, mapped (pixel_map). */
static inline lf_vf load_pixels(const lf_input *in, const char *row, int x, float scale, float shift)
{
    const lf_vf v = in->dtype == LF_U8 ? lf_load_u8((const uint8_t *)row + x) : lf_load((const float *)row + x);
    return v * lf_set1(scale) + lf_set1(shift);
}

/* The columns from which vectors of LF_LANES pixels cover a row of w >= LF_LANES: 0, LF_LANES, ... and one
 * that ends the row, overlapping the one before where w is no multiple of LF_LANES; then -1. */
static inline int next_vector(int x0, int w)
{
    return x0 == w - LF_LANES ? -1 : x0 + 2 * LF_LANES <= w ? x0 + LF_LANES : w - LF_LANES;
}

/* Image `image` of the input (or, when NULL, an unused lane: zeros) into dst, whose columns are step floats
 * apart (a constant after inlining). In the spatial layout (step 1) rows of at least LF_LANES pixels go a
 * vector at a time; narrower rows, and a block's lanes one by one, a float at a time. */
static inline __attribute__((always_inline)) void pack_image(const lf_input *in, const void *image,
                                                             const lf_geom *g, float *dst, size_t step)
{
    const int oy = (g->h - in->h) / 2, ox = (g->w - in->w) / 2;
    float scale, shift;
    pixel_map(in, &scale, &shift);
    const float background = image ? shift : 0.0f;
    for (int c = 0; c < g->c; c++)
        for (int y = 0; y < g->h; y++) {
            float *row = dst + c * g->cs + y * g->rs;
            const int iy = y - oy;
            if (!image || iy < 0 || iy >= in->h) {
                for (int x = 0; x < g->w; x++)
                    row[x * step] = background;
                continue;
            }
            const size_t at = ((size_t)c * in->h + iy) * in->w;
            for (int x = 0; x < ox; x++)
                row[x * step] = background;
            if (step == 1 && in->w >= LF_LANES) {
                const char *src = (const char *)image + at * lf_pixel_bytes(in);
                for (int x0 = 0; x0 >= 0; x0 = next_vector(x0, in->w))
                    lf_store(row + ox + x0, load_pixels(in, src, x0, scale, shift));
            } else if (in->dtype == LF_U8) {
                const uint8_t *p = (const uint8_t *)image + at;
                for (int x = 0; x < in->w; x++)
                    row[(x + ox) * step] = (float)p[x] * scale + shift;
            } else {
                const float *p = (const float *)image + at;
                for (int x = 0; x < in->w; x++)
                    row[(x + ox) * step] = p[x] * scale + shift;
            }
            for (int x = ox + in->w; x < g->w; x++)
                row[x * step] = background;
        }
}

/* count images from `images` (image bytes apart) into a block, for inputs at least LF_LANES pixels wide:
 * LF_LANES pixels of a row of every image at a time, transposed in registers into LF_LANES vectors of one
 * pixel of each image (the same numbers as pack_image's, without a store per float). */
static void pack_block(const lf_input *in, const char *images, size_t image, int count, const lf_geom *g,
                       float *dst)
{
    const int oy = (g->h - in->h) / 2, ox = (g->w - in->w) / 2, w = in->w;
    const size_t elem = lf_pixel_bytes(in);
    float scale, shift;
    pixel_map(in, &scale, &shift);
    lf_vi lane;
    for (int b = 0; b < LF_LANES; b++)
        lane[b] = b;
    const lf_vf background = lf_select(lane < count, lf_set1(shift), lf_set1(0.0f));
    for (int c = 0; c < g->c; c++)
        for (int y = 0; y < g->h; y++) {
            float *row = dst + c * g->cs + y * g->rs;
            const int iy = y - oy;
            for (int x = 0; x < g->w; x++)
                if (iy < 0 || iy >= in->h || x < ox || x >= ox + w)
                    lf_store(row + x * LF_LANES, background);
            if (iy < 0 || iy >= in->h)
                continue;
            const char *src = images + ((size_t)c * in->h + iy) * w * elem;
            for (int x0 = 0; x0 >= 0; x0 = next_vector(x0, w)) {
                lf_vf r[LF_LANES];
                for (int b = 0; b < LF_LANES; b++)
                    r[b] = b < count ? load_pixels(in, src + b * image, x0, scale, shift) : lf_set1(0.0f);
                lf_transpose(r);
                for (int i = 0; i < LF_LANES; i++)
                    lf_store(row + (ox + x0 + i) * LF_LANES, r[i]);
            }
        }
}

/* The network's input for images [first, first + count) into a block's first tensor (the unused lanes of a
 * partly filled block hold zeros). */
void LF_ISA(pack_input)(const lf_input *in, size_t first, int count, const lf_geom *g, float *dst)
{
    const size_t image = lf_image_bytes(in);
    const char *images = (const char *)in->data + first * image;
    if (g->lanes == 1) {
        pack_image(in, images, g, dst, 1);
        return;
    }
    if (in->w >= LF_LANES) {
        pack_block(in, images, image, count, g, dst);
        return;
    }
    for (int b = 0; b < g->lanes; b++)
        pack_image(in, b < count ? images + b * image : NULL, g, dst + b, LF_LANES);
}

void LF_ISA(unpack_output)(const float *src, const lf_geom *g, size_t first, int count, float *out)
{
    const size_t image = (size_t)g->c * g->h * g->w;
    for (int b = 0; b < count; b++)
        for (int c = 0; c < g->c; c++)
            for (int y = 0; y < g->h; y++)
                for (int x = 0; x < g->w; x++)
                    out[(first + b) * image + ((size_t)c * g->h + y) * g->w + x] =
                        src[c * g->cs + y * g->rs + x * g->lanes + b];
}

/* The n floats of t rounded to bfloat16 in place (a layer's round_output). The whole tensor, padding
 * included: rounding is elementwise, so the layout does not matter, and a finite value stays finite or becomes
 * infinity, which the caller's check of the output catches. */
static void round_bf16(float *t, size_t n)
{
    size_t i = 0;
    for (; i + LF_LANES <= n; i += LF_LANES)
        lf_store(t + i, lf_round_bf16(lf_load(t + i)));
    if (i < n)
        lf_store_n(t + i, lf_round_bf16(lf_load_n(t + i, n - i)), n - i);
}

void LF_ISA(run_block)(const lf_layer *layers, int nlayers, const lf_plan *p, float *ws)
{
    for (int i = 0; i < nlayers; i++) {
        const lf_layer *l = &layers[i];
        const float *in = ws + p->off[i];
        float *out = ws + p->off[i + 1];
        lf_ops(l)->forward(l, in, &p->g[i], out, &p->g[i + 1]);
        if (l->round_output)
            round_bf16(out, p->g[i + 1].size);
    }
}

typedef struct {
    const lf_layer *layers;
    int nlayers, n, nblocks;
    const lf_input *input;
    const lf_plan *plans; /* [0] blocked, [1] spatial */
    float *out;
} batch_t;

/* Work item it (lf_item), by the calling thread in its own workspace. 0, or -1 without a workspace. */
static int run_item(const batch_t *b, int it)
{
    size_t first;
    int count;
    const lf_plan *p = &b->plans[!lf_item(b->n, b->nblocks, it, &first, &count)];
    float *ws = lf_workspace(p->total);
    if (!ws)
        return -1;
    LF_ISA(pack_input)(b->input, first, count, &p->g[0], ws);
    LF_ISA(run_block)(b->layers, b->nlayers, p, ws);
    LF_ISA(unpack_output)(ws + p->off[b->nlayers], &p->g[b->nlayers], first, count, b->out);
    return 0;
}

int LF_ISA(forward)(const lf_layer *layers, int nlayers, const lf_input *input, int n, float *out)
{
    if (n <= 0)
        return 0;
    lf_plan plans[2];
    LF_ISA(make_plan)(layers, nlayers, LF_LANES, 0, &plans[0]);
    LF_ISA(make_plan)(layers, nlayers, 1, 0, &plans[1]);
    int nblocks = lf_blocks(n), nitems = lf_items(n, nblocks);
    /* Threads share out whole items, never one item's layers: splitting one image's layers over the team
     * made a lone call after an idle pause wait for the sleeping threads to wake, at a cost far above the
     * image's own (benchmarks/results/design-measurements.md#threads-share-items). A batch that would be
     * one block runs as single images instead, so that every thread has some. */
    if (nitems == 1 && n > 1 && lf_get_num_threads() > 1)
        nblocks = 0, nitems = n;
    const batch_t b = {layers, nlayers, n, nblocks, input, plans, out};
    if (nitems == 1)
        return run_item(&b, 0);
    int failed = 0;
    /* Dynamic scheduling balances blocks against single images; an image's result does not depend on
     * which thread, block or layout computed it, so the output is the same for any thread count. */
#pragma omp parallel for schedule(dynamic, 1) reduction(| : failed)
    for (int it = 0; it < nitems; it++)
        failed |= run_item(&b, it) != 0;
    return failed ? -1 : 0;
}
