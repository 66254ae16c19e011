/*
 * full.c: the two (In, Out) layers: the full layer, out = act(x W + b), and the Euclidean RBF output,
 * out_o = sum_k (x_k - W[k, o])^2 with W the transposed centres. Both keep W input-major.
 *
 * Blocked: each output is a vector of LF_LANES images; a tile of outputs accumulates broadcast weights against
 * the input vector. Spatial: one image; a tile of output vectors accumulates x[k] against a row of W.
 * Both sum over k in ascending order from zero, then add the bias: the same bits in both layouts.
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
    for (int p = 0; p < P; p++)
        acc[p] = lf_set1(0.0f);
    for (int k = 0; k < in_n; k++) {
        const lf_vf x = lf_load(in + (size_t)k * LF_LANES);
        const float *w = l->weight + (size_t)k * out_n + o;
        for (int p = 0; p < P; p++)
            acc[p] = term(acc[p], x, lf_set1(w[p]), rbf);
    }
    for (int p = 0; p < P; p++)
        lf_store(out + (size_t)(o + p) * LF_LANES, finish(l, acc[p], lf_set1(rbf ? 0.0f : l->bias[o + p]), rbf));
}

/* Spatial tiles: P accumulators and the broadcast input; the weights stream from memory. */
#define LF_SPATIAL_TILE 8

/* Spatial: P vectors of outputs from w0's column; wstride is the weight rows' stride. */
static inline __attribute__((always_inline)) void tile_spatial(const lf_layer *l, int in_n, const float *w0,
                                                               size_t wstride, const float *bias,
                                                               const float *x, float *out, int P, int rbf)
{
    lf_vf acc[LF_SPATIAL_TILE];
    for (int p = 0; p < P; p++)
        acc[p] = lf_set1(0.0f);
    for (int k = 0; k < in_n; k++) {
        const lf_vf xk = lf_set1(x[k]);
        const float *w = w0 + k * wstride;
        for (int p = 0; p < P; p++)
            acc[p] = term(acc[p], xk, lf_load(w + p * LF_LANES), rbf);
    }
    for (int p = 0; p < P; p++)
        lf_store(out + p * LF_LANES, finish(l, acc[p], rbf ? lf_set1(0.0f) : lf_load(bias + p * LF_LANES), rbf));
}

static void dense_blocked(const lf_layer *l, int in_n, int out_n, const float *in, float *out, int rbf)
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

static void dense_spatial(const lf_layer *l, int in_n, int out_n, const float *x, float *out, int rbf)
{
    if (out_n < LF_LANES) {
        /* One partial vector: each weight row goes through a zero-padded copy. */
        lf_vf acc = lf_set1(0.0f);
        for (int k = 0; k < in_n; k++)
            acc = term(acc, lf_set1(x[k]), lf_load_n(l->weight + (size_t)k * out_n, out_n), rbf);
        lf_store_n(out, finish(l, acc, rbf ? lf_set1(0.0f) : lf_load_n(l->bias, out_n), rbf), out_n);
        return;
    }
    /* Whole vectors in balanced tiles; a ragged end is one more vector aligned to the end, overlapping the
     * previous one: it recomputes a few outputs with the same arithmetic and so writes the same bits. */
    const int nvec = out_n / LF_LANES, ntiles = (nvec + LF_SPATIAL_TILE - 1) / LF_SPATIAL_TILE;
    for (int t = 0, v = 0; t < ntiles; t++) {
        const int P = (nvec - v) / (ntiles - t), o = v * LF_LANES;
        const float *w = l->weight + o, *b = rbf ? NULL : l->bias + o;
        switch (P) {
#define LF_CASE(n)                                                                                               \
    case n:                                                                                                      \
        tile_spatial(l, in_n, w, out_n, b, x, out + o, n, rbf);                                                 \
        break;
            LF_UPTO_8(LF_CASE)
#undef LF_CASE
        }
        v += P;
    }
    if (out_n % LF_LANES) {
        const int o = out_n - LF_LANES;
        tile_spatial(l, in_n, l->weight + o, out_n, rbf ? NULL : l->bias + o, x, out + o, 1, rbf);
    }
}

static void dense_block(const lf_layer *l, const float *in, const lf_geom *gi, float *out, const lf_geom *go,
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
