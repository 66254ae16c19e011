/*
 * subsample.c: 2x2, stride-2 subsampling of each map: trainable (coef * sum + bias, the paper's S2 and
 * S4), average or max, then the layer's activation. Odd rows or columns at the edge are dropped.
 *
 * Blocked: the four inputs of an output are four vectors of LF_LANES images. Spatial: a vector of LF_LANES
 * outputs takes the even and odd columns of two vectors of each input row. The sum is ((a + b) + c) + d and
 * the affine part and activation are the same vector code in both layouts, so both give the same bits.
 *
 * Backward: the gradient of a window's output goes to its four inputs (times the coefficient, or a
 * quarter, or all of it to the first input that holds the maximum, in the order top-left, top-right,
 * bottom-left, bottom-right); dropped edge rows and columns get zero.
 */
#include "ops.h"
#include "activation.h"

static inline lf_vf pool4(lf_vf a, lf_vf b, lf_vf c, lf_vf d, lf_pool mode)
{
    return mode == LF_POOL_MAX ? lf_max(lf_max(a, b), lf_max(c, d)) : ((a + b) + c) + d;
}

static inline float pool4_scalar(float a, float b, float c, float d, lf_pool mode)
{
    if (mode == LF_POOL_MAX) {
        const float ab = a > b ? a : b, cd = c > d ? c : d;
        return ab > cd ? ab : cd;
    }
    return ((a + b) + c) + d;
}

/* The affine part and activation of n pooled vectors of map ch, in place; the switches stand outside the
 * loops, so that the vectors' activations overlap (as in the convolution's tiles). */
static void finish(const lf_layer *l, int ch, lf_vf *v, int n)
{
    switch (l->pool) {
    case LF_POOL_TRAINABLE: {
        const lf_vf k = lf_set1(l->weight[ch]), b = lf_set1(l->bias[ch]);
        for (int i = 0; i < n; i++)
            v[i] = k * v[i] + b;
        break;
    }
    case LF_POOL_AVERAGE:
        for (int i = 0; i < n; i++)
            v[i] = v[i] * lf_set1(0.25f);
        break;
    case LF_POOL_MAX: break;
    }
    lf_activate_all(v, n, l->act);
}

/* Map ch; blocked is a constant after inlining. */
static inline __attribute__((always_inline)) void pool_map(const lf_layer *l, int ch, const float *in,
                                                           const lf_geom *gi, float *out, const lf_geom *go,
                                                           int blocked)
{
    /* A row's outputs as vectors: blocked, one per pixel; spatial, LF_LANES pixels each. */
    const int nvec = blocked ? l->out_w : (l->out_w + LF_LANES - 1) / LF_LANES;
    /* The map's output vectors, row by row, LF_TILE at a time. */
    for (int i0 = 0; i0 < l->out_h * nvec; i0 += LF_TILE) {
        const int n = l->out_h * nvec - i0 < LF_TILE ? l->out_h * nvec - i0 : LF_TILE;
        lf_vf v[LF_TILE];
        for (int i = 0, y = i0 / nvec, x = i0 % nvec; i < n; i++, x = x + 1 < nvec ? x + 1 : (y++, 0)) {
            /* Blocked, the window's four pixels; spatial, two vectors of each of its input rows split
             * into their even and odd columns (reads past the row's end stay inside the tensor,
             * lf_pairs_geom, and what they give is not stored). */
            const float *p = in + ch * gi->cs + 2 * y * gi->rs + 2 * (ptrdiff_t)x * LF_LANES, *q = p + gi->rs;
            const lf_vf a = lf_load(p), b = lf_load(p + LF_LANES), c = lf_load(q), d = lf_load(q + LF_LANES);
            v[i] = blocked ? pool4(a, b, c, d, l->pool)
                           : pool4(lf_even(a, b), lf_odd(a, b), lf_even(c, d), lf_odd(c, d), l->pool);
        }
        finish(l, ch, v, n);
        for (int i = 0, y = i0 / nvec, x = i0 % nvec; i < n; i++, x = x + 1 < nvec ? x + 1 : (y++, 0)) {
            float *dst = out + ch * go->cs + y * go->rs + (ptrdiff_t)x * LF_LANES;
            const int left = l->out_w - x * LF_LANES; /* spatial: the row's floats from this vector on */
            if (blocked || left >= LF_LANES)
                lf_store(dst, v[i]);
            else
                lf_store_n(dst, v[i], left);
        }
    }
}

static void subsample_forward(const lf_layer *l, const float *in, const lf_geom *gi, float *out,
                              const lf_geom *go)
{
    for (int ch = 0; ch < l->out_c; ch++)
        if (gi->lanes == LF_LANES)
            pool_map(l, ch, in, gi, out, go, 1);
        else
            pool_map(l, ch, in, gi, out, go, 0);
}

/* ---- Backward ---- */

/* What one window's inputs receive of its pre-activation gradient d (second derivatives: of d2). */
static inline void window_grads(const lf_layer *l, int ch, lf_vf d, lf_vf a, lf_vf b, lf_vf c, lf_vf e,
                                int second, lf_vf g[4])
{
    if (l->pool == LF_POOL_MAX) {
        const lf_vf m = lf_max(lf_max(a, b), lf_max(c, e)), zero = lf_set1(0.0f);
        const lf_vi ta = a == m, tb = (b == m) & ~ta, tc = (c == m) & ~(ta | tb), te = ~(ta | tb | tc);
        g[0] = lf_select(ta, d, zero), g[1] = lf_select(tb, d, zero);
        g[2] = lf_select(tc, d, zero), g[3] = lf_select(te, d, zero);
        return;
    }
    const float k = l->pool == LF_POOL_TRAINABLE ? l->weight[ch] : 0.25f;
    g[0] = g[1] = g[2] = g[3] = d * lf_set1(second ? k * k : k);
}

static void subsample_backward(const lf_layer *l, const lf_backward *bw)
{
    const lf_geom *gx = bw->gx, *gy = bw->gy;
    const int lanes = gx->lanes, second = bw->second;
    const int trainable = l->pool == LF_POOL_TRAINABLE;
    for (int ch = 0; ch < l->out_c; ch++) {
        float *dy = bw->dy + ch * gy->cs, *dx = bw->dx ? bw->dx + ch * gx->cs : NULL;
        const float *x = bw->x + ch * gx->cs, *y = bw->y + ch * gy->cs;
        if (dx && (l->in_h % 2 || l->in_w % 2)) /* the dropped edge */
            for (int r = 0; r < l->in_h; r++)
                memset(dx + r * gx->rs, 0, (size_t)l->in_w * lanes * sizeof(float));
        /* One vector pass turns dy into the pre-activation gradient (the maps are dense: rs == out_w). */
        lf_activation_backward_n(dy, y, (size_t)l->out_h * l->out_w * lanes, l->act, second);
        if (lanes == LF_LANES) {
            lf_vf gc = lf_set1(0.0f), gb = lf_set1(0.0f);
            for (int r = 0; r < l->out_h; r++)
                for (int c = 0; c < l->out_w; c++) {
                    const float *p = x + 2 * r * gx->rs + 2 * c * LF_LANES;
                    const lf_vf a = lf_load(p), b = lf_load(p + LF_LANES), e = lf_load(p + gx->rs),
                                f = lf_load(p + gx->rs + LF_LANES);
                    const lf_vf d = lf_load(dy + r * gy->rs + c * LF_LANES);
                    if (trainable) {
                        const lf_vf s = ((a + b) + e) + f;
                        gc += d * (second ? s * s : s);
                        gb += d;
                    }
                    if (!dx)
                        continue;
                    lf_vf g[4];
                    window_grads(l, ch, d, a, b, e, f, second, g);
                    float *q = dx + 2 * r * gx->rs + 2 * c * LF_LANES;
                    lf_store(q, g[0]), lf_store(q + LF_LANES, g[1]);
                    lf_store(q + gx->rs, g[2]), lf_store(q + gx->rs + LF_LANES, g[3]);
                }
            if (trainable) {
                lf_grad_put(&bw->grad[l->weight_at + ch], lf_hsum(gc), bw->assign);
                lf_grad_put(&bw->grad[l->bias_at + ch], lf_hsum(gb), bw->assign);
            }
            continue;
        }
        /* Spatial: one image, scalar. */
        float gc = 0.0f, gb = 0.0f;
        const float k = trainable ? l->weight[ch] : 0.25f, kk = second ? k * k : k;
        for (int r = 0; r < l->out_h; r++)
            for (int c = 0; c < l->out_w; c++) {
                const float *p = x + 2 * r * gx->rs + 2 * c;
                const float a = p[0], b = p[1], e = p[gx->rs], f = p[gx->rs + 1];
                const float d = dy[r * gy->rs + c];
                if (trainable) {
                    const float s = ((a + b) + e) + f;
                    gc += d * (second ? s * s : s);
                    gb += d;
                }
                if (!dx)
                    continue;
                float *q = dx + 2 * r * gx->rs + 2 * c;
                if (l->pool == LF_POOL_MAX) {
                    const float m = pool4_scalar(a, b, e, f, LF_POOL_MAX);
                    const int w = a == m ? 0 : b == m ? 1 : e == m ? 2 : 3;
                    q[0] = w == 0 ? d : 0.0f, q[1] = w == 1 ? d : 0.0f;
                    q[gx->rs] = w == 2 ? d : 0.0f, q[gx->rs + 1] = w == 3 ? d : 0.0f;
                } else {
                    q[0] = q[1] = q[gx->rs] = q[gx->rs + 1] = d * kk;
                }
            }
        if (trainable) {
            lf_grad_put(&bw->grad[l->weight_at + ch], gc, bw->assign);
            lf_grad_put(&bw->grad[l->bias_at + ch], gb, bw->assign);
        }
    }
}

/* Spatial layout: the input grows to cover the pairs of vectors each row's last outputs read (layout.h). */
static void subsample_geometry(const lf_layer *l, int lanes, int for_backward, lf_geom *gi, lf_geom *go)
{
    (void)for_backward, (void)go;
    if (lanes == 1)
        lf_pairs_geom(l, gi);
}

const lf_layer_ops LF_ISA(subsample_ops) = {
    .forward = subsample_forward,
    .backward = subsample_backward,
    .geometry = subsample_geometry,
};
