/*
 * dense.h: the forward loop the two (In, Out) layers share, inlined into full.c and rbf.c: the full layer,
 * out = act(x W + b), and the Euclidean RBF output, out_o = sum_k (x_k - W[k, o])^2 with W the transposed
 * centres (lenet_fast.h: both keep W input-major). Not part of the public interface.
 *
 * Blocked: each output is a vector of LF_LANES images; a tile of outputs accumulates broadcast weights against
 * the input vector. Spatial: one image; a tile of output vectors accumulates x[k] against a row of W.
 * Both sum over k in ascending order from zero, then add the bias: the same bits in both layouts.
 */
#ifndef LENET_FAST_DENSE_H
#define LENET_FAST_DENSE_H

#include "activation.h"
#include "ops.h"

/* The one term each layer accumulates; rbf is a constant after inlining. */
static inline __attribute__((always_inline)) lf_vf lf_dense_term(lf_vf acc, lf_vf x, lf_vf w, int rbf)
{
    if (rbf) {
        const lf_vf d = x - w;
        return acc + d * d;
    }
    return acc + x * w;
}

static inline __attribute__((always_inline)) lf_vf lf_dense_finish(const lf_layer *l, lf_vf acc, lf_vf bias, int rbf)
{
    return rbf ? acc : lf_activate(acc + bias, l->act);
}

/* Blocked: P outputs starting at o, each a vector of lanes. */
static inline __attribute__((always_inline)) void lf_dense_tile_blocked(const lf_layer *l, int in_n, int out_n,
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
            acc[p] = lf_dense_term(acc[p], x, lf_set1(w[p]), rbf);
    }
    LF_UNROLL
    for (int p = 0; p < P; p++)
        lf_store(out + (size_t)(o + p) * LF_LANES,
                 lf_dense_finish(l, acc[p], lf_set1(rbf ? 0.0f : l->bias[o + p]), rbf));
}

/* Spatial tiles: P accumulators and the broadcast input; the weights stream from memory. */
#define LF_DENSE_SPATIAL_TILE 8

/* Spatial: P vectors of outputs, at columns o, o + LF_LANES, ... and, the last one, at column last (o + (P - 1)
 * LF_LANES, or the ragged end's vector). The k loop runs once for all of them: each output is a chain of in_n
 * dependent multiply-adds, so the tile's vectors are what runs in parallel. */
static inline __attribute__((always_inline)) void lf_dense_tile_spatial(const lf_layer *l, int in_n, int out_n,
                                                                        const float *x, float *out, int o, int last,
                                                                        int P, int rbf)
{
    int col[LF_DENSE_SPATIAL_TILE];
    for (int p = 0; p < P; p++)
        col[p] = p == P - 1 ? last : o + p * LF_LANES;
    lf_vf acc[LF_DENSE_SPATIAL_TILE];
    for (int p = 0; p < P; p++)
        acc[p] = lf_set1(0.0f);
    for (int k = 0; k < in_n; k++) {
        const lf_vf xk = lf_set1(x[k]);
        const float *w = l->weight + (size_t)k * out_n;
        for (int p = 0; p < P; p++)
            acc[p] = lf_dense_term(acc[p], xk, lf_load(w + col[p]), rbf);
    }
    for (int p = 0; p < P; p++)
        lf_store(out + col[p], lf_dense_finish(l, acc[p], rbf ? lf_set1(0.0f) : lf_load(l->bias + col[p]), rbf));
}

static inline __attribute__((always_inline)) void lf_dense_blocked(const lf_layer *l, int in_n, int out_n,
                                                                   const float *in, float *out, int rbf)
{
    for (int o = 0; o < out_n;) {
        const int left = out_n - o, P = left < LF_TILE ? left : LF_TILE;
        switch (P) {
#define LF_CASE(n)                                                                                               \
    case n:                                                                                                      \
        lf_dense_tile_blocked(l, in_n, out_n, in, o, out, n, rbf);                                               \
        break;
            LF_TILE_SIZES(LF_CASE)
#undef LF_CASE
        }
        o += P;
    }
}

static inline __attribute__((always_inline)) void lf_dense_spatial(const lf_layer *l, int in_n, int out_n,
                                                                   const float *x, float *out, int rbf)
{
    if (out_n < LF_LANES) {
        /* One partial vector: each weight row read as out_n floats (lf_load_n). */
        lf_vf acc = lf_set1(0.0f);
        for (int k = 0; k < in_n; k++)
            acc = lf_dense_term(acc, lf_set1(x[k]), lf_load_n(l->weight + (size_t)k * out_n, out_n), rbf);
        lf_store_n(out, lf_dense_finish(l, acc, rbf ? lf_set1(0.0f) : lf_load_n(l->bias, out_n), rbf), out_n);
        return;
    }
    /* Whole vectors in balanced tiles, and a ragged end as one more vector aligned to the end (in the last
     * tile), overlapping the previous one: it recomputes a few outputs with the same arithmetic and so
     * writes the same bits. */
    const int whole = out_n / LF_LANES, nvec = whole + (out_n % LF_LANES != 0);
    const int ntiles = (nvec + LF_DENSE_SPATIAL_TILE - 1) / LF_DENSE_SPATIAL_TILE;
    for (int t = 0, v = 0; t < ntiles; t++) {
        const int P = (nvec - v) / (ntiles - t), o = v * LF_LANES;
        const int last = v + P - 1 < whole ? o + (P - 1) * LF_LANES : out_n - LF_LANES;
        switch (P) {
#define LF_CASE(n)                                                                                               \
    case n:                                                                                                      \
        lf_dense_tile_spatial(l, in_n, out_n, x, out, o, last, n, rbf);                                          \
        break;
            LF_UPTO_8(LF_CASE)
#undef LF_CASE
        }
        v += P;
    }
}

static inline __attribute__((always_inline)) void lf_dense_forward(const lf_layer *l, const float *in,
                                                                   const lf_geom *gi, float *out, const lf_geom *go,
                                                                   int rbf)
{
    const int in_n = gi->c * gi->h * gi->w;
    if (gi->lanes == LF_LANES)
        lf_dense_blocked(l, in_n, go->c, in, out, rbf);
    else
        lf_dense_spatial(l, in_n, go->c, in, out, rbf);
}

#endif
