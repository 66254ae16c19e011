/*
 * conv.c: valid 2-D convolution, stride 1, with a connection table, bias and fused activation.
 *
 * Every output vector is an accumulator: out += w[o,c,u,v] * in[c] shifted by the tap (u, v). In the
 * blocked layout a vector is one pixel of 16 images; in the spatial layout it is 16 consecutive pixels of
 * one image's "wide" rows (the output keeps the input's row stride, so a tap is a constant shift and the
 * columns past the output width are junk that no consumer reads). A tile of LF_TILE vectors stays in
 * registers while the taps stream past it; each output is summed in the order (connection, u, v), then
 * the bias is added: the same in both layouts.
 */
#include "kernels.h"
#include "activation.h"

/* P output vectors of one output map. P is a constant after inlining, so acc lives in registers. */
static inline __attribute__((always_inline)) void conv_tile(const lf_layer *l, int o, const float *in,
                                                            ptrdiff_t ics, const ptrdiff_t *tap, float *out,
                                                            int P)
{
    const int ntaps = l->kh * l->kw;
    const int c0 = l->conn_start ? l->conn_start[o] : o * l->in_c;
    const int c1 = l->conn_start ? l->conn_start[o + 1] : c0 + l->in_c;
    lf_vf acc[LF_TILE];
    for (int p = 0; p < P; p++)
        acc[p] = lf_set1(0.0f);
    for (int k = c0; k < c1; k++) {
        const float *src = in + (l->conn_in ? l->conn_in[k] : k - c0) * ics;
        const float *w = l->weight + (size_t)k * ntaps;
        for (int t = 0; t < ntaps; t++) {
            const lf_vf wv = lf_set1(w[t]);
            const float *s = src + tap[t];
            for (int p = 0; p < P; p++)
                acc[p] += wv * lf_load(s + p * LF_LANES);
        }
    }
    const lf_vf b = lf_set1(l->bias[o]);
    for (int p = 0; p < P; p++)
        lf_store(out + p * LF_LANES, lf_activate(acc[p] + b, l->act));
}

/* nvec consecutive output vectors, split into balanced tiles of at most LF_TILE. */
static void conv_run(const lf_layer *l, int o, const float *in, ptrdiff_t ics, const ptrdiff_t *tap, float *out,
                     int nvec)
{
    const int ntiles = (nvec + LF_TILE - 1) / LF_TILE;
    for (int t = 0, v = 0; t < ntiles; t++) {
        const int P = (nvec - v) / (ntiles - t);
        const float *i = in + (ptrdiff_t)v * LF_LANES;
        float *u = out + (ptrdiff_t)v * LF_LANES;
        switch (P) {
#define LF_TILE_CASE(n)                                                                                          \
    case n:                                                                                                      \
        conv_tile(l, o, i, ics, tap, u, n);                                                                      \
        break;
            LF_TILE_SIZES(LF_TILE_CASE)
#undef LF_TILE_CASE
        }
        v += P;
    }
}

void LF_ISA(conv_block)(const lf_layer *l, const float *in, const lf_geom *gi, float *out, const lf_geom *go)
{
    ptrdiff_t tap[l->kh * l->kw];
    for (int u = 0; u < l->kh; u++)
        for (int v = 0; v < l->kw; v++)
            tap[u * l->kw + v] = u * gi->rs + (ptrdiff_t)v * gi->lanes;

    for (int o = 0; o < l->out_c; o++) {
        float *plane = out + o * go->cs;
        if (gi->lanes == LF_LANES) {
            for (int y = 0; y < l->out_h; y++)
                conv_run(l, o, in + y * gi->rs, gi->cs, tap, plane + y * go->rs, l->out_w);
        } else {
            /* One run over the wide rows: (out_h - 1) full rows plus the last row's valid columns. */
            const int span = (l->out_h - 1) * (int)gi->rs + l->out_w;
            conv_run(l, o, in, gi->cs, tap, plane, (span + LF_LANES - 1) / LF_LANES);
        }
    }
}
