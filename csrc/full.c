/*
 * full.c: the full layer, out = act(x W + b), W input-major (In, Out); its forward loop is dense.h's.
 *
 * Backward: the pre-activation gradient is laid out image-major (lanes x Out) so that the weight gradient
 * is, for each input k, a row of vectors over the outputs summed over the images in lane order; the input
 * gradient is x's forward loop with the weights read column-wise.
 */
#include "activation.h"
#include "dense.h"
#include "ops.h"

static void full_forward(const lf_layer *l, const float *in, const lf_geom *gi, float *out, const lf_geom *go)
{
    lf_dense_forward(l, in, gi, out, go, 0);
}

/* ---- Backward ---- */

static size_t full_backward_scratch(const lf_layer *l, int lanes)
{
    return lf_round_lanes((size_t)lanes * l->out_c);
}

/* g[o] += sum over b < lanes of x[b] * d[b * n + o] (x squared for second derivatives), o < n (g[o] = with
 * assign); lanes is a constant after inlining, so x's broadcasts stay in registers. */
static inline __attribute__((always_inline)) void outer_rows_n(const float *x, int lanes, const float *d, int n,
                                                               float *g, int second, int assign)
{
    lf_vf xb[LF_LANES];
    for (int b = 0; b < lanes; b++)
        xb[b] = lf_set1(second ? x[b] * x[b] : x[b]);
    int o = 0;
    for (; o + LF_LANES <= n; o += LF_LANES) {
        lf_vf acc = lf_set1(0.0f);
        for (int b = 0; b < lanes; b++)
            acc += xb[b] * lf_load(d + (size_t)b * n + o);
        lf_store(g + o, assign ? acc : lf_load(g + o) + acc);
    }
    if (o < n) { /* the ragged end: the same sums, a partial vector */
        lf_vf acc = lf_set1(0.0f);
        for (int b = 0; b < lanes; b++)
            acc += xb[b] * lf_load_n(d + (size_t)b * n + o, n - o);
        lf_store_n(g + o, assign ? acc : lf_load_n(g + o, n - o) + acc, n - o);
    }
}

static void outer_rows(const float *x, int lanes, const float *d, int n, float *g, int second, int assign)
{
    if (lanes == LF_LANES)
        outer_rows_n(x, LF_LANES, d, n, g, second, assign);
    else
        outer_rows_n(x, 1, d, n, g, second, assign);
}

/* Blocked: dx[k] = sum_o w[k, o] d[o] (w squared for second derivatives) for P inputs from k. */
static inline __attribute__((always_inline)) void dx_tile(const float *w, int out_n, const float *d, int k,
                                                          float *dx, int P, int second)
{
    lf_vf acc[LF_TILE];
    LF_UNROLL
    for (int p = 0; p < P; p++)
        acc[p] = lf_set1(0.0f);
    for (int o = 0; o < out_n; o++) {
        const lf_vf dv = lf_load(d + (size_t)o * LF_LANES);
        LF_UNROLL
        for (int p = 0; p < P; p++) {
            const float wv = w[(size_t)(k + p) * out_n + o];
            acc[p] += lf_set1(second ? wv * wv : wv) * dv;
        }
    }
    LF_UNROLL
    for (int p = 0; p < P; p++)
        lf_store(dx + (size_t)(k + p) * LF_LANES, acc[p]);
}

static void dx_blocked(const float *w, int in_n, int out_n, const float *d, float *dx, int second)
{
    for (int k = 0; k < in_n;) {
        const int left = in_n - k, P = left < LF_TILE ? left : LF_TILE;
        switch (P) {
#define LF_CASE(n)                                                                                               \
    case n:                                                                                                      \
        if (second)                                                                                              \
            dx_tile(w, out_n, d, k, dx, n, 1);                                                                   \
        else                                                                                                     \
            dx_tile(w, out_n, d, k, dx, n, 0);                                                                   \
        break;
            LF_TILE_SIZES(LF_CASE)
#undef LF_CASE
        }
        k += P;
    }
}

/* Spatial: dx[k] = sum_o w[k, o] d[o], each a dot product along w's row. */
static void dx_spatial(const float *w, int in_n, int out_n, const float *d, float *dx, int second)
{
    for (int k = 0; k < in_n; k++) {
        const float *row = w + (size_t)k * out_n;
        lf_vf acc = lf_set1(0.0f);
        int o = 0;
        for (; o + LF_LANES <= out_n; o += LF_LANES) {
            const lf_vf wv = lf_load(row + o);
            acc += (second ? wv * wv : wv) * lf_load(d + o);
        }
        if (o < out_n) {
            const lf_vf wv = lf_load_n(row + o, out_n - o);
            acc += (second ? wv * wv : wv) * lf_load_n(d + o, out_n - o);
        }
        dx[k] = lf_hsum(acc);
    }
}

static void full_backward(const lf_layer *l, const lf_backward *b)
{
    const int lanes = b->gx->lanes, in_n = b->gx->c * b->gx->h * b->gx->w, out_n = l->out_c;
    /* The pre-activation gradient, in place (output-major: o * lanes + b) ... */
    lf_activation_backward_n(b->dy, b->y, (size_t)out_n * lanes, l->act, b->second);
    /* ... and image-major (b * out_n + o) for the parameters' gradients. */
    float *d = b->scratch;
    for (int o = 0; o < out_n; o++)
        for (int j = 0; j < lanes; j++)
            d[(size_t)j * out_n + o] = b->dy[(size_t)o * lanes + j];
    if (l->bias_at >= 0) {
        float one[LF_LANES];
        for (int j = 0; j < LF_LANES; j++)
            one[j] = 1.0f;
        outer_rows(one, lanes, d, out_n, b->grad + l->bias_at, 0, b->assign);
    }
    if (l->weight_at >= 0)
        for (int k = 0; k < in_n; k++)
            outer_rows(b->x + (size_t)k * lanes, lanes, d, out_n, b->grad + l->weight_at + (size_t)k * out_n,
                       b->second, b->assign);
    if (!b->dx)
        return;
    if (lanes == LF_LANES)
        dx_blocked(l->weight, in_n, out_n, b->dy, b->dx, b->second);
    else
        dx_spatial(l->weight, in_n, out_n, b->dy, b->dx, b->second);
}

const lf_layer_ops LF_ISA(full_ops) = {
    .forward = full_forward,
    .backward = full_backward,
    .backward_scratch = full_backward_scratch,
};
