/*
 * conv.c: valid 2-D convolution, stride 1, with a connection table, bias and fused activation.
 *
 * Every output vector is an accumulator: out += w[o,c,u,v] * in[c] shifted by the tap (u, v). In the
 * blocked layout a vector is one pixel of LF_LANES images; in the spatial layout it is LF_LANES consecutive
 * pixels of one image's "wide" rows (the output keeps the input's row stride, so a tap is a constant shift
 * and the columns past the output width are junk that no consumer reads). A tile of M maps x P vectors
 * (x 2 rows, blocked, one map) stays in registers while the taps stream past it; M > 1 only where the maps
 * read the same inputs (a dense table), so that one load feeds M multiply-adds. Each output is summed in the
 * order (connection, u, v), then the bias is added: the same in both layouts and for any tile shape.
 *
 * Backward: the weight gradient correlates the pre-activation gradient with the input, a tile of taps in
 * registers while the positions stream past; the input gradient is the forward kernel run on the
 * zero-padded output gradient with the kernels rotated and the table transposed (lf_trainer).
 */
#include "kernels.h"
#include "activation.h"

/* Where tiles read and write: the input's map and row strides and its step between columns (LF_LANES in
 * the blocked layout, 1 in the spatial one), and the output's map and row strides. */
typedef struct {
    ptrdiff_t ics, irs, col, ocs, ors;
    const ptrdiff_t *tap; /* the kernel's taps: row u, column v at u irs + v col */
} conv_strides;

/* M maps from o, R rows of P vectors each. M, R and P are constants after inlining, so acc lives in
 * registers. With two rows, each input row the pair reads is loaded once and feeds both (as kernel rows u
 * and u - 1): fewer loads than multiply-adds, where one row alone needs one more load than it has
 * multiply-adds when M = 1. Each output still sums its terms in the order (connection, u, v). */
static inline __attribute__((always_inline)) void conv_tile(const lf_layer *l, int o, const float *in,
                                                            float *out, const conv_strides *s, int M, int R,
                                                            int P)
{
    const int kh = l->kh, kw = l->kw, ntaps = kh * kw;
    const int c0 = l->conn_start ? l->conn_start[o] : o * l->in_c;
    const int c1 = l->conn_start ? l->conn_start[o + 1] : c0 + l->in_c;
    const size_t map_stride = (size_t)l->in_c * ntaps; /* between the kernels of maps o, o+1 (dense only) */
    lf_vf acc[2][6][LF_TILE];
    for (int r = 0; r < R; r++)
        for (int m = 0; m < M; m++)
            for (int p = 0; p < P; p++)
                acc[r][m][p] = lf_set1(0.0f);
    for (int k = c0; k < c1; k++) {
        const float *src = in + (l->conn_in ? l->conn_in[k] : k - c0) * s->ics;
        const float *w = l->weight + (size_t)k * ntaps;
        if (R == 1) {
            /* One row: one loop over the taps (cheaper than rows of kw, measured on C1). */
            for (int t = 0; t < ntaps; t++) {
                lf_vf x[LF_TILE];
                for (int p = 0; p < P; p++)
                    x[p] = lf_load(src + s->tap[t] + p * LF_LANES);
                for (int m = 0; m < M; m++) {
                    const lf_vf wv = lf_set1(w[m * map_stride + t]);
                    for (int p = 0; p < P; p++)
                        acc[0][m][p] += wv * x[p];
                }
            }
            continue;
        }
        for (int row = 0; row < kh + R - 1; row++)
            for (int v = 0; v < kw; v++) {
                const float *xp = src + row * s->irs + v * s->col;
                lf_vf x[LF_TILE];
                for (int p = 0; p < P; p++)
                    x[p] = lf_load(xp + p * LF_LANES);
                for (int r = 0; r < R; r++) {
                    const int u = row - r;
                    if (u < 0 || u >= kh)
                        continue;
                    for (int m = 0; m < M; m++) {
                        const lf_vf wv = lf_set1(w[m * map_stride + u * kw + v]);
                        for (int p = 0; p < P; p++)
                            acc[r][m][p] += wv * x[p];
                    }
                }
            }
    }
    for (int r = 0; r < R; r++)
        for (int m = 0; m < M; m++) {
            const lf_vf b = lf_set1(l->bias[o + m]);
            for (int p = 0; p < P; p++)
                acc[r][m][p] += b;
            lf_activate_all(acc[r][m], P, l->act);
            for (int p = 0; p < P; p++)
                lf_store(out + m * s->ocs + r * s->ors + p * LF_LANES, acc[r][m][p]);
        }
}

/* The tile sizes: M maps x R rows x P vectors of accumulators, with P inputs and a weight, in registers. */
#if LF_TILE == 24
#define LF_P1 LF_UPTO_24
#define LF_P1R2 LF_UPTO_12
#define LF_P2 LF_UPTO_6
#define LF_P3 LF_UPTO_6
#define LF_P4 LF_UPTO_4
#define LF_P6 LF_UPTO_3
static const int pmax[7] = {0, 24, 6, 6, 4, 0, 3};
#else
#define LF_P1 LF_UPTO_12
#define LF_P1R2 LF_UPTO_6
#define LF_P2 LF_UPTO_4
#define LF_P3 LF_UPTO_3
#define LF_P4 LF_UPTO_2
#define LF_P6 LF_UPTO_2
static const int pmax[7] = {0, 12, 4, 3, 2, 0, 2};
#endif

/* nvec consecutive output vectors of maps o..o+M-1 in R rows (R = 2 only with M = 1), in balanced tiles
 * of as many vectors as fit. */
static void conv_run(const lf_layer *l, int o, int M, int R, const float *in, float *out, const conv_strides *s,
                     int nvec)
{
    const int most = pmax[M] / R, ntiles = (nvec + most - 1) / most;
    for (int t = 0, v = 0; t < ntiles; t++) {
        const int P = (nvec - v) / (ntiles - t);
        const float *i = in + (ptrdiff_t)v * LF_LANES;
        float *u = out + (ptrdiff_t)v * LF_LANES;
#define LF_CASE(m, r, n)                                                                                         \
    case n:                                                                                                      \
        conv_tile(l, o, i, u, s, m, r, n);                                                                       \
        break;
#define LF_M1(n) LF_CASE(1, 1, n)
#define LF_M1R2(n) LF_CASE(1, 2, n)
#define LF_M2(n) LF_CASE(2, 1, n)
#define LF_M3(n) LF_CASE(3, 1, n)
#define LF_M4(n) LF_CASE(4, 1, n)
#define LF_M6(n) LF_CASE(6, 1, n)
        switch (M) {
        case 1:
            if (R == 2) {
                switch (P) { LF_P1R2(LF_M1R2) }
            } else {
                switch (P) { LF_P1(LF_M1) }
            }
            break;
        case 2: switch (P) { LF_P2(LF_M2) } break;
        case 3: switch (P) { LF_P3(LF_M3) } break;
        case 4: switch (P) { LF_P4(LF_M4) } break;
        case 6: switch (P) { LF_P6(LF_M6) } break;
        }
#undef LF_CASE
        v += P;
    }
}

/* The maps that run together from o of [o, last): M > 1 only for a dense table, whose maps share their
 * inputs, so that one input load feeds M multiply-adds. */
static int group(const lf_layer *l, int o, int last)
{
    const int left = last - o;
    if (l->conn_start)
        return 1;
    return left % 6 == 0 ? 6 : left % 4 == 0 ? 4 : left % 3 == 0 ? 3 : left >= 4 ? 4 : left;
}

void LF_ISA(conv_block)(const lf_layer *l, const float *in, const lf_geom *gi, float *out, const lf_geom *go,
                        int part, int nparts)
{
    ptrdiff_t tap[l->kh * l->kw];
    for (int u = 0; u < l->kh; u++)
        for (int v = 0; v < l->kw; v++)
            tap[u * l->kw + v] = u * gi->rs + (ptrdiff_t)v * gi->lanes;
    const conv_strides s = {gi->cs, gi->rs, gi->lanes, go->cs, go->rs, tap};
    /* This part's maps; with a table, balanced by connections (C3's maps read 3 to 6 inputs). */
    int first, last;
    if (l->conn_start) {
        int c0, c1;
        lf_split(l->conn_start[l->out_c], part, nparts, &c0, &c1);
        for (first = 0; first < l->out_c && l->conn_start[first] < c0; first++)
            ;
        for (last = first; last < l->out_c && l->conn_start[last] < c1; last++)
            ;
    } else {
        lf_split(l->out_c, part, nparts, &first, &last);
    }
    if (gi->lanes == LF_LANES) {
        /* A row, or pair of rows, at a time through all of the part's maps (map by map measured the same). */
        const int single = l->conn_start || last - first == 1; /* every group is one map: rows go in pairs */
        for (int y = 0, R; y < l->out_h; y += R) {
            R = single && y + 1 < l->out_h ? 2 : 1;
            for (int o = first, M; o < last; o += M) {
                M = group(l, o, last);
                conv_run(l, o, M, R, in + y * gi->rs, out + o * go->cs + y * go->rs, &s, l->out_w);
            }
        }
        return;
    }
    /* One run over the wide rows: (out_h - 1) full rows plus the last row's valid columns. */
    const int span = (l->out_h - 1) * (int)gi->rs + l->out_w;
    for (int o = first, M; o < last; o += M) {
        M = group(l, o, last);
        conv_run(l, o, M, 1, in, out + o * go->cs, &s, (span + LF_LANES - 1) / LF_LANES);
    }
}

/* ---- Backward ---- */

/* The zero-padded output gradient the transposed convolution t reads (pg) and, in the spatial layout, the
 * wide rows it writes before they are compacted into dx (wide). */
static void backward_geoms(const lf_layer *t, int lanes, lf_geom *pg, lf_geom *wide)
{
    lf_dense_geom(pg, t->in_c, t->in_h, t->in_w, lanes);
    lf_dense_geom(wide, t->out_c, t->out_h, t->out_w, lanes);
    if (lanes == 1)
        lf_wide_geom(t, pg, wide);
}

size_t LF_ISA(conv_backward_scratch)(const lf_layer *l, int lanes)
{
    lf_layer t;
    lf_geom pg, wide;
    lf_transpose_shape(l, &t);
    backward_geoms(&t, lanes, &pg, &wide);
    return pg.size + (lanes == 1 ? wide.size : 0);
}

/* g[t] += sum over positions of d * x shifted by tap[t] (x squared for second derivatives), for T taps:
 * rows of nvec vectors, rows drs and xrs apart. */
static inline __attribute__((always_inline)) void wgrad_tile(const float *d, ptrdiff_t drs, const float *x,
                                                             ptrdiff_t xrs, int rows, int nvec,
                                                             const ptrdiff_t *tap, float *g, int T, int second,
                                                             int assign)
{
    lf_vf acc[LF_TILE];
    for (int t = 0; t < T; t++)
        acc[t] = lf_set1(0.0f);
    for (int r = 0; r < rows; r++)
        for (int p = 0; p < nvec; p++) {
            const lf_vf dv = lf_load(d + r * drs + p * LF_LANES);
            const float *xp = x + r * xrs + p * LF_LANES;
            for (int t = 0; t < T; t++) {
                lf_vf xv = lf_load(xp + tap[t]);
                if (second)
                    xv *= xv;
                acc[t] += dv * xv;
            }
        }
    for (int t = 0; t < T; t++)
        lf_grad_put(&g[t], lf_hsum(acc[t]), assign);
}

static void wgrad(const float *d, ptrdiff_t drs, const float *x, ptrdiff_t xrs, int rows, int nvec,
                  const ptrdiff_t *tap, int ntaps, float *g, int second, int assign)
{
    const int ntiles = (ntaps + LF_TILE - 1) / LF_TILE;
    for (int i = 0, t0 = 0; i < ntiles; i++) {
        const int T = (ntaps - t0) / (ntiles - i);
        switch (T) {
#define LF_CASE(n)                                                                                               \
    case n:                                                                                                      \
        if (second)                                                                                              \
            wgrad_tile(d, drs, x, xrs, rows, nvec, tap + t0, g + t0, n, 1, assign);                              \
        else                                                                                                     \
            wgrad_tile(d, drs, x, xrs, rows, nvec, tap + t0, g + t0, n, 0, assign);                              \
        break;
            LF_TILE_SIZES(LF_CASE)
#undef LF_CASE
        }
        t0 += T;
    }
}

void LF_ISA(conv_backward)(const lf_layer *l, const lf_backward *b)
{
    const lf_geom *gx = b->gx, *gy = b->gy;
    const int lanes = gx->lanes, blocked = lanes == LF_LANES, ntaps = l->kh * l->kw;
    ptrdiff_t tap[ntaps];
    for (int u = 0; u < l->kh; u++)
        for (int v = 0; v < l->kw; v++)
            tap[u * l->kw + v] = u * gx->rs + (ptrdiff_t)v * lanes;
    /* The output positions as rows of vectors: blocked, out_h rows of out_w pixels; spatial, one run over
     * the wide rows, whose junk columns are zeroed first so that they add nothing. */
    const int rows = blocked ? l->out_h : 1;
    const int nvec = blocked ? l->out_w : (int)(gy->cs / LF_LANES);
    const ptrdiff_t drs = blocked ? gy->rs : 0, xrs = blocked ? gx->rs : 0;

    for (int o = 0; o < l->out_c; o++) {
        float *d = b->dy + o * gy->cs;
        const float *y = b->y + o * gy->cs;
        if (!blocked)
            for (int r = 0; r < l->out_h; r++) {
                const ptrdiff_t end = r + 1 < l->out_h ? gy->rs : gy->cs - r * gy->rs;
                memset(d + r * gy->rs + l->out_w, 0, (end - l->out_w) * sizeof(float));
            }
        lf_vf bias = lf_set1(0.0f);
        for (int r = 0; r < rows; r++)
            for (int p = 0; p < nvec; p++) {
                float *dp = d + r * drs + p * LF_LANES;
                const lf_vf v = lf_activation_backward(lf_load(dp), lf_load(y + r * drs + p * LF_LANES), l->act,
                                                       b->second);
                lf_store(dp, v);
                bias += v;
            }
        if (l->bias_at >= 0)
            lf_grad_put(&b->grad[l->bias_at + o], lf_hsum(bias), b->assign);
        if (l->weight_at < 0)
            continue;
        const int c0 = l->conn_start ? l->conn_start[o] : o * l->in_c;
        const int c1 = l->conn_start ? l->conn_start[o + 1] : c0 + l->in_c;
        for (int k = c0; k < c1; k++) {
            const float *x = b->x + (l->conn_in ? l->conn_in[k] : k - c0) * gx->cs;
            wgrad(d, drs, x, xrs, rows, nvec, tap, ntaps, b->grad + l->weight_at + (size_t)k * ntaps, b->second,
                  b->assign);
        }
    }
    if (!b->dx)
        return;

    const lf_layer *t = b->transposed;
    lf_geom pg, wide;
    backward_geoms(t, lanes, &pg, &wide);
    float *pad = b->scratch;
    memset(pad, 0, pg.size * sizeof(float));
    for (int o = 0; o < l->out_c; o++)
        for (int r = 0; r < l->out_h; r++)
            memcpy(pad + o * pg.cs + (r + l->kh - 1) * pg.rs + (ptrdiff_t)(l->kw - 1) * lanes,
                   b->dy + o * gy->cs + r * gy->rs, (size_t)l->out_w * lanes * sizeof(float));
    if (blocked) {
        LF_ISA(conv_block)(t, pad, &pg, b->dx, gx, 0, 1);
        return;
    }
    float *w = pad + pg.size;
    LF_ISA(conv_block)(t, pad, &pg, w, &wide, 0, 1);
    for (int c = 0; c < l->in_c; c++)
        for (int r = 0; r < l->in_h; r++)
            memcpy(b->dx + c * gx->cs + r * gx->rs, w + c * wide.cs + r * wide.rs, l->in_w * sizeof(float));
}
