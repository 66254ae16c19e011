/*
 * conv.c: valid 2-D convolution, stride 1, with a connection table, bias and fused activation.
 *
 * Every output vector is an accumulator: out += w[o,c,u,v] * in[c] shifted by the tap (u, v). In the
 * blocked layout a vector is one pixel of LF_LANES images; in the spatial layout it is LF_LANES consecutive
 * pixels of one image's "wide" rows (the output keeps the input's row stride, so a tap is a constant shift
 * and the columns past the output width are junk that no consumer reads). A tile of M maps x P vectors
 * stays in registers while the taps stream past it; M > 1 only where the maps read the same inputs (a dense
 * table), so that one load feeds M multiply-adds. Each output is summed in the order (connection, u, v),
 * then the bias is added: the same in both layouts and for any tile shape.
 */
#include "kernels.h"
#include "activation.h"

/* M maps from o, P vectors each. M and P are constants after inlining, so acc lives in registers. */
static inline __attribute__((always_inline)) void conv_tile(const lf_layer *l, int o, const float *in,
                                                            ptrdiff_t ics, const ptrdiff_t *tap, float *out,
                                                            ptrdiff_t ocs, int M, int P)
{
    const int ntaps = l->kh * l->kw;
    const int c0 = l->conn_start ? l->conn_start[o] : o * l->in_c;
    const int c1 = l->conn_start ? l->conn_start[o + 1] : c0 + l->in_c;
    const size_t map_stride = (size_t)l->in_c * ntaps; /* between the kernels of maps o, o+1 (dense only) */
    lf_vf acc[4][LF_TILE];
    for (int m = 0; m < M; m++)
        for (int p = 0; p < P; p++)
            acc[m][p] = lf_set1(0.0f);
    for (int k = c0; k < c1; k++) {
        const float *src = in + (l->conn_in ? l->conn_in[k] : k - c0) * ics;
        const float *w = l->weight + (size_t)k * ntaps;
        for (int t = 0; t < ntaps; t++) {
            lf_vf x[LF_TILE];
            for (int p = 0; p < P; p++)
                x[p] = lf_load(src + tap[t] + p * LF_LANES);
            for (int m = 0; m < M; m++) {
                const lf_vf wv = lf_set1(w[m * map_stride + t]);
                for (int p = 0; p < P; p++)
                    acc[m][p] += wv * x[p];
            }
        }
    }
    for (int m = 0; m < M; m++) {
        const lf_vf b = lf_set1(l->bias[o + m]);
        for (int p = 0; p < P; p++)
            lf_store(out + m * ocs + p * LF_LANES, lf_activate(acc[m][p] + b, l->act));
    }
}

/* The tile sizes each map count M runs with: M x P accumulators, P inputs and a weight in registers. */
#if LF_TILE == 24
#define LF_P1 LF_UPTO_24
#define LF_P2 LF_UPTO_6
#define LF_P3 LF_UPTO_6
#define LF_P4 LF_UPTO_4
static const int pmax[5] = {0, 24, 6, 6, 4};
#else
#define LF_P1 LF_UPTO_12
#define LF_P2 LF_UPTO_4
#define LF_P3 LF_UPTO_3
#define LF_P4 LF_UPTO_2
static const int pmax[5] = {0, 12, 4, 3, 2};
#endif

/* nvec consecutive output vectors of maps o..o+M-1, in balanced tiles of as many vectors as fit. */
static void conv_run(const lf_layer *l, int o, int M, const float *in, ptrdiff_t ics, const ptrdiff_t *tap,
                     float *out, ptrdiff_t ocs, int nvec)
{
    const int ntiles = (nvec + pmax[M] - 1) / pmax[M];
    for (int t = 0, v = 0; t < ntiles; t++) {
        const int P = (nvec - v) / (ntiles - t);
        const float *i = in + (ptrdiff_t)v * LF_LANES;
        float *u = out + (ptrdiff_t)v * LF_LANES;
#define LF_CASE(m, n)                                                                                            \
    case n:                                                                                                      \
        conv_tile(l, o, i, ics, tap, u, ocs, m, n);                                                              \
        break;
#define LF_M1(n) LF_CASE(1, n)
#define LF_M2(n) LF_CASE(2, n)
#define LF_M3(n) LF_CASE(3, n)
#define LF_M4(n) LF_CASE(4, n)
        switch (M) {
        case 1: switch (P) { LF_P1(LF_M1) } break;
        case 2: switch (P) { LF_P2(LF_M2) } break;
        case 3: switch (P) { LF_P3(LF_M3) } break;
        case 4: switch (P) { LF_P4(LF_M4) } break;
        }
#undef LF_CASE
        v += P;
    }
}

void LF_ISA(conv_block)(const lf_layer *l, const float *in, const lf_geom *gi, float *out, const lf_geom *go)
{
    ptrdiff_t tap[l->kh * l->kw];
    for (int u = 0; u < l->kh; u++)
        for (int v = 0; v < l->kw; v++)
            tap[u * l->kw + v] = u * gi->rs + (ptrdiff_t)v * gi->lanes;

    for (int o = 0, M; o < l->out_c; o += M) {
        const int left = l->out_c - o;
        M = l->conn_start ? 1 : left % 4 == 0 ? 4 : left % 3 == 0 ? 3 : left >= 4 ? 4 : left;
        float *plane = out + o * go->cs;
        if (gi->lanes == LF_LANES) {
            for (int y = 0; y < l->out_h; y++)
                conv_run(l, o, M, in + y * gi->rs, gi->cs, tap, plane + y * go->rs, go->cs, l->out_w);
        } else {
            /* One run over the wide rows: (out_h - 1) full rows plus the last row's valid columns. */
            const int span = (l->out_h - 1) * (int)gi->rs + l->out_w;
            conv_run(l, o, M, in, gi->cs, tap, plane, go->cs, (span + LF_LANES - 1) / LF_LANES);
        }
    }
}
