/*
 * subsample.c: 2x2, stride-2 subsampling of each map: trainable (coef * sum + bias, the paper's S2 and
 * S4), average or max, then the layer's activation. Odd rows or columns at the edge are dropped.
 *
 * Blocked: the four inputs of an output are four vectors of LF_LANES images. Spatial: the sums (or maxima) are
 * gathered with scalar code into the output map, then one vector pass applies the affine part and the
 * activation. The sum is ((a + b) + c) + d in both layouts and the vector pass is the blocked code's, so
 * both give the same bits.
 */
#include "kernels.h"
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

/* The affine part and activation of one map's pooled values. */
static inline lf_vf finish(const lf_layer *l, int ch, lf_vf s)
{
    switch (l->pool) {
    case LF_POOL_TRAINABLE: s = lf_set1(l->weight[ch]) * s + lf_set1(l->bias[ch]); break;
    case LF_POOL_AVERAGE: s = s * lf_set1(0.25f); break;
    case LF_POOL_MAX: break;
    }
    return lf_activate(s, l->act);
}

void LF_ISA(subsample_block)(const lf_layer *l, const float *in, const lf_geom *gi, float *out,
                             const lf_geom *go)
{
    for (int ch = 0; ch < l->out_c; ch++) {
        const float *src = in + ch * gi->cs;
        float *dst = out + ch * go->cs;
        if (gi->lanes == LF_LANES) {
            for (int y = 0; y < l->out_h; y++)
                for (int x = 0; x < l->out_w; x++) {
                    const float *p = src + 2 * y * gi->rs + 2 * x * LF_LANES;
                    const lf_vf s = pool4(lf_load(p), lf_load(p + LF_LANES), lf_load(p + gi->rs),
                                          lf_load(p + gi->rs + LF_LANES), l->pool);
                    lf_store(dst + y * go->rs + x * LF_LANES, finish(l, ch, s));
                }
            continue;
        }
        for (int y = 0; y < l->out_h; y++)
            for (int x = 0; x < l->out_w; x++) {
                const float *p = src + 2 * y * gi->rs + 2 * x;
                dst[y * go->rs + x] = pool4_scalar(p[0], p[1], p[gi->rs], p[gi->rs + 1], l->pool);
            }
        /* The map is dense (rs == out_w): one vector pass over it. */
        const int count = l->out_h * l->out_w;
        int i = 0;
        for (; i + LF_LANES <= count; i += LF_LANES)
            lf_store(dst + i, finish(l, ch, lf_load(dst + i)));
        if (i < count)
            lf_store_n(dst + i, finish(l, ch, lf_load_n(dst + i, count - i)), count - i);
    }
}
