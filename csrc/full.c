/*
 * full.c: the two (In, Out) layers: the full layer, out = act(x W + b), and the Euclidean RBF output,
 * out_o = sum_k (x_k - W[k, o])^2 with W the transposed centres. Both keep W input-major.
 *
 * Blocked: each output is a vector of LF_LANES images; a tile of outputs accumulates broadcast weights against
 * the input vector. Spatial: one image; a tile of output vectors accumulates x[k] against a row of W.
 * Both sum over k in ascending order from zero, then add the bias: the same bits in both layouts.
 *
 * Backward: the pre-activation gradient is laid out image-major (lanes x Out) so that the weight gradient
 * is, for each input k, a row of vectors over the outputs summed over the images in lane order; the input
 * gradient is x's forward loop with the weights read column-wise.
 */
#include "kernels.h"
#include "activation.h"

/* The one term each layer accumulates; rbf is a constant after inlining. */
static inline __attribute__((always_inline)) lf_vf term(lf_vf acc, lf_vf x, lf_vf w, int rbf)
{
    if (rbf) {
        const lf_vf d = x - w;
        return acc + d * d;
    }
    return acc + x * w;
}

static inline __attribute__((always_inline)) lf_vf finish(const lf_layer *l, lf_vf acc, lf_vf bias, int rbf)
{
    return rbf ? acc : lf_activate(acc + bias, l->act);
}

/* Blocked: P outputs starting at o, each a vector of lanes. */
static inline __attribute__((always_inline)) void tile_blocked(const lf_layer *l, int in_n, int out_n,
                                                               const float *in, int o, float *out, int P,
                                                               int rbf)
{
    lf_vf acc[LF_TILE];
    LF_UNROLL
    for (int p = 0; p < P; p++)
        acc[p] = lf_set1(0.0f);
    for (int k = 0; k < in_n; k++) {
        const lf_vf x = lf_load(in + (size_t)k * LF_LANES);
        const float *w = l->weight + (size_t)k * out_n + o;
        LF_UNROLL
        for (int p = 0; p < P; p++)
            acc[p] = term(acc[p], x, lf_set1(w[p]), rbf);
    }
    LF_UNROLL
    for (int p = 0; p < P; p++)
        lf_store(out + (size_t)(o + p) * LF_LANES, finish(l, acc[p], lf_set1(rbf ? 0.0f : l->bias[o + p]), rbf));
}

/* Spatial tiles: P accumulators and the broadcast input; the weights stream from memory. */
#define LF_SPATIAL_TILE 8

/* Spatial: P vectors of outputs, at columns o, o + LF_LANES, ... and, the last one, at column last (o + (P - 1)
 * LF_LANES, or the ragged end's vector). The k loop runs once for all of them: each output is a chain of in_n
 * dependent multiply-adds, so the tile's vectors are what runs in parallel. */
static inline __attribute__((always_inline)) void tile_spatial(const lf_layer *l, int in_n, int out_n,
                                                               const float *x, float *out, int o, int last,
                                                               int P, int rbf)
{
    int col[LF_SPATIAL_TILE];
    for (int p = 0; p < P; p++)
        col[p] = p == P - 1 ? last : o + p * LF_LANES;
    lf_vf acc[LF_SPATIAL_TILE];
    for (int p = 0; p < P; p++)
        acc[p] = lf_set1(0.0f);
    for (int k = 0; k < in_n; k++) {
        const lf_vf xk = lf_set1(x[k]);
        const float *w = l->weight + (size_t)k * out_n;
        for (int p = 0; p < P; p++)
            acc[p] = term(acc[p], xk, lf_load(w + col[p]), rbf);
    }
    for (int p = 0; p < P; p++)
        lf_store(out + col[p], finish(l, acc[p], rbf ? lf_set1(0.0f) : lf_load(l->bias + col[p]), rbf));
}

static inline __attribute__((always_inline)) void dense_blocked(const lf_layer *l, int in_n, int out_n,
                                                                const float *in, float *out, int rbf)
{
    for (int o = 0; o < out_n;) {
        const int left = out_n - o, P = left < LF_TILE ? left : LF_TILE;
        switch (P) {
#define LF_CASE(n)                                                                                               \
    case n:                                                                                                      \
        tile_blocked(l, in_n, out_n, in, o, out, n, rbf);                                                        \
        break;
            LF_TILE_SIZES(LF_CASE)
#undef LF_CASE
        }
        o += P;
    }
}

static inline __attribute__((always_inline)) void dense_spatial(const lf_layer *l, int in_n, int out_n,
                                                                const float *x, float *out, int rbf)
{
    if (out_n < LF_LANES) {
        /* One partial vector: each weight row read as out_n floats (lf_load_n). */
        lf_vf acc = lf_set1(0.0f);
        for (int k = 0; k < in_n; k++)
            acc = term(acc, lf_set1(x[k]), lf_load_n(l->weight + (size_t)k * out_n, out_n), rbf);
        lf_store_n(out, finish(l, acc, rbf ? lf_set1(0.0f) : lf_load_n(l->bias, out_n), rbf), out_n);
        return;
    }
    /* Whole vectors in balanced tiles, and a ragged end as one more vector aligned to the end (in the last
     * tile), overlapping the previous one: it recomputes a few outputs with the same arithmetic and so
     * writes the same bits. */
    const int whole = out_n / LF_LANES, nvec = whole + (out_n % LF_LANES != 0);
    const int ntiles = (nvec + LF_SPATIAL_TILE - 1) / LF_SPATIAL_TILE;
    for (int t = 0, v = 0; t < ntiles; t++) {
        const int P = (nvec - v) / (ntiles - t), o = v * LF_LANES;
        const int last = v + P - 1 < whole ? o + (P - 1) * LF_LANES : out_n - LF_LANES;
        switch (P) {
#define LF_CASE(n)                                                                                               \
    case n:                                                                                                      \
        tile_spatial(l, in_n, out_n, x, out, o, last, n, rbf);                                                   \
        break;
            LF_UPTO_8(LF_CASE)
#undef LF_CASE
        }
        v += P;
    }
}

static inline __attribute__((always_inline)) void dense_block(const lf_layer *l, const float *in,
                                                              const lf_geom *gi, float *out, const lf_geom *go,
                                                              int rbf)
{
    const int in_n = gi->c * gi->h * gi->w;
    if (gi->lanes == LF_LANES)
        dense_blocked(l, in_n, go->c, in, out, rbf);
    else
        dense_spatial(l, in_n, go->c, in, out, rbf);
}

void LF_ISA(full_block)(const lf_layer *l, const float *in, const lf_geom *gi, float *out, const lf_geom *go)
{
    dense_block(l, in, gi, out, go, 0);
}

void LF_ISA(rbf_block)(const lf_layer *l, const float *in, const lf_geom *gi, float *out, const lf_geom *go)
{
    dense_block(l, in, gi, out, go, 1);
}

/* ---- Backward ---- */

size_t LF_ISA(full_backward_scratch)(const lf_layer *l, int lanes)
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

void LF_ISA(full_backward)(const lf_layer *l, const lf_backward *b)
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

/* RBF: dx[k] = sum_o 2 (x[k] - w[k, o]) dy[o]; the centres are fixed. Only gradients: training's
 * second derivatives start at the RBF's input. */
void LF_ISA(rbf_backward)(const lf_layer *l, const lf_backward *b)
{
    if (!b->dx)
        return;
    const int in_n = b->gx->c * b->gx->h * b->gx->w, out_n = l->out_c;
    if (b->gx->lanes == LF_LANES) {
        for (int k = 0; k < in_n; k++) {
            const lf_vf x = lf_load(b->x + (size_t)k * LF_LANES);
            lf_vf acc = lf_set1(0.0f);
            for (int o = 0; o < out_n; o++)
                acc += (x - lf_set1(l->weight[(size_t)k * out_n + o])) * lf_load(b->dy + (size_t)o * LF_LANES);
            lf_store(b->dx + (size_t)k * LF_LANES, acc + acc);
        }
        return;
    }
    for (int k = 0; k < in_n; k++) {
        float acc = 0.0f;
        for (int o = 0; o < out_n; o++)
            acc += (b->x[k] - l->weight[(size_t)k * out_n + o]) * b->dy[o];
        b->dx[k] = acc + acc;
    }
}
