/*
 * conv.c: valid 2-D convolution, stride 1, with a connection table, bias and fused activation.
 *
 * Every output vector is an accumulator: out += w[o,c,u,v] * in[c] shifted by the tap (u, v). In the
 * blocked layout a vector is one pixel of LF_LANES images. In the spatial layout it is LF_LANES consecutive
 * pixels of one image: for inference in compact rows (the row stride is the output's width; each input map
 * is first copied kw times, shifted by each kernel column, so that a tap is again a constant offset), for
 * training in "wide" rows (the output keeps the input's row stride, so a tap is a constant shift and the
 * columns past the output width are junk that no consumer reads). Either way a tile of M maps x P vectors
 * (x 2 rows, blocked, one map) stays in registers while the taps stream past it, and one input load feeds
 * its M maps. Map by map, a tile groups maps that read the same inputs (a dense table's); with a table,
 * whose maps read different inputs, the compact layout goes input by input instead, so that each input's
 * load still feeds the several maps it is connected to (multiply-adds that each load their operand run
 * slower than from registers, at about half speed when the loads are unaligned: benchmarks/c/load_bound.c,
 * benchmarks/results/design-measurements.md#load-bound). Each output is summed in the order (connection,
 * u, v), then the bias is added: the same bits in every layout and for any tile shape.
 *
 * Backward: the weight gradient correlates the pre-activation gradient with the input, a tile of taps in
 * registers while the positions stream past; the input gradient is the forward kernel run on the
 * zero-padded output gradient with the kernels rotated and the table transposed (lf_trainer).
 */
#include "ops.h"
#include "activation.h"

/* Where tiles read and write: the input's map and row strides and its step between columns (LF_LANES in
 * the blocked layout, 1 in the spatial one), and the output's map and row strides. */
typedef struct {
    ptrdiff_t ics, irs, col, ocs, ors;
    const ptrdiff_t *tap; /* the kernel's taps: row u, column v at u irs + v col */
} conv_strides;

/* The output maps of one tile: M maps that read the same J input maps, map o[m] through its connections
 * k[m] .. k[m] + J - 1 (a map's connections are packed together, lenet_fast.h). */
typedef struct {
    int o[6], k[6], J;
} conv_group;

/* Output map o's connections, [*c0, *c1). */
static inline void conn_range(const lf_layer *l, int o, int *c0, int *c1)
{
    *c0 = l->conn_start ? l->conn_start[o] : o * l->in_c;
    *c1 = l->conn_start ? l->conn_start[o + 1] : *c0 + l->in_c;
}

/* Group g's terms from its J input maps, R rows of P vectors each. M, R, P and whole are constants after
 * inlining, so acc lives in registers: each input load feeds M x R multiply-adds. whole: J is every
 * connection of the maps, and the sums start at zero and end with the bias and activation; otherwise they
 * start at what out holds and are stored as they are (conv_inputs finishes them). With two rows, each input
 * row the pair reads is loaded once and feeds both (as kernel rows u and u - 1). */
static inline __attribute__((always_inline)) void conv_tile(const lf_layer *l, const conv_group *g,
                                                            const float *in, float *out, const conv_strides *s,
                                                            int M, int R, int P, int whole)
{
    const int kh = l->kh, kw = l->kw, ntaps = kh * kw;
    const float *w[6];
    lf_vf acc[6][2][LF_TILE];
    for (int m = 0; m < M; m++) {
        w[m] = l->weight + (size_t)g->k[m] * ntaps;
        for (int r = 0; r < R; r++)
            LF_UNROLL
            for (int p = 0; p < P; p++)
                acc[m][r][p] = whole ? lf_set1(0.0f) : lf_load(out + g->o[m] * s->ocs + r * s->ors + p * LF_LANES);
    }
    for (int j = 0; j < g->J; j++) {
        const int k = g->k[0] + j;
        const float *src = in + (l->conn_in ? l->conn_in[k] : k - g->o[0] * l->in_c) * s->ics;
        if (R == 1) {
            /* One row: one loop over the taps (cheaper than rows of kw, measured on C1). */
            for (int t = 0; t < ntaps; t++) {
                lf_vf x[LF_TILE];
                LF_UNROLL
                for (int p = 0; p < P; p++)
                    x[p] = lf_load(src + s->tap[t] + p * LF_LANES);
                for (int m = 0; m < M; m++) {
                    const lf_vf wv = lf_set1(w[m][j * ntaps + t]);
                    LF_UNROLL
                    for (int p = 0; p < P; p++)
                        acc[m][0][p] += wv * x[p];
                }
            }
            continue;
        }
        for (int row = 0; row < kh + R - 1; row++)
            for (int v = 0; v < kw; v++) {
                const float *xp = src + row * s->irs + v * s->col;
                lf_vf x[LF_TILE];
                LF_UNROLL
                for (int p = 0; p < P; p++)
                    x[p] = lf_load(xp + p * LF_LANES);
                for (int r = 0; r < R; r++) {
                    const int u = row - r;
                    if (u < 0 || u >= kh)
                        continue;
                    for (int m = 0; m < M; m++) {
                        const lf_vf wv = lf_set1(w[m][j * ntaps + u * kw + v]);
                        LF_UNROLL
                        for (int p = 0; p < P; p++)
                            acc[m][r][p] += wv * x[p];
                    }
                }
            }
    }
    for (int m = 0; m < M; m++)
        for (int r = 0; r < R; r++) {
            if (whole) {
                const lf_vf b = lf_set1(l->bias[g->o[m]]);
                LF_UNROLL
                for (int p = 0; p < P; p++)
                    acc[m][r][p] += b;
                lf_activate_all(acc[m][r], P, l->act);
            }
            LF_UNROLL
            for (int p = 0; p < P; p++)
                lf_store(out + g->o[m] * s->ocs + r * s->ors + p * LF_LANES, acc[m][r][p]);
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

/* Group g: nvec consecutive output vectors in R rows (R = 2 only with M = 1), in balanced tiles of as many
 * vectors as fit. */
static void conv_run(const lf_layer *l, const conv_group *g, int M, int R, const float *in, float *out,
                     const conv_strides *s, int nvec, int whole)
{
    const int most = pmax[M] / R, ntiles = (nvec + most - 1) / most;
    for (int t = 0, v = 0; t < ntiles; t++) {
        const int P = (nvec - v) / (ntiles - t);
        const float *i = in + (ptrdiff_t)v * LF_LANES;
        float *u = out + (ptrdiff_t)v * LF_LANES;
#define LF_CASE(m, r, n)                                                                                         \
    case n:                                                                                                      \
        if (whole)                                                                                               \
            conv_tile(l, g, i, u, s, m, r, n, 1);                                                                \
        else                                                                                                     \
            conv_tile(l, g, i, u, s, m, r, n, 0);                                                                \
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

/* How many of n maps that share their inputs go in the next tile: one load then feeds them all. Never a
 * last tile of one map (a load per multiply-add) where the rest can be split otherwise. */
static int group_size(int n)
{
    return n % 6 == 0 ? 6 : n % 4 == 0 ? 4 : n % 3 == 0 || (n > 4 && n % 4 == 1) ? 3 : n >= 4 ? 4 : n;
}

/* Every map, each over all of its connections (maps that share every input, a dense table's, in groups;
 * with a table, one by one): R rows of nvec vectors. */
static void conv_maps(const lf_layer *l, int R, const float *in, float *out, const conv_strides *s, int nvec)
{
    conv_group g;
    for (int o = 0, M; o < l->out_c; o += M) {
        M = l->conn_start ? 1 : group_size(l->out_c - o);
        for (int m = 0; m < M; m++) {
            int c1;
            conn_range(l, o + m, &g.k[m], &c1);
            g.o[m] = o + m, g.J = c1 - g.k[m];
        }
        conv_run(l, &g, M, R, in, out, s, nvec, 1);
    }
}

/* Output map o's connection from input map c, or -1. */
static int connection(const lf_layer *l, int o, int c)
{
    if (!l->conn_start)
        return o * l->in_c + c;
    for (int k = l->conn_start[o]; k < l->conn_start[o + 1]; k++)
        if (l->conn_in[k] == c)
            return k;
    return -1;
}

/* Every map input by input: for each input map c, its terms of the maps it feeds, in groups that share c's
 * loads even where the table makes every map's inputs different. A map's connections come in ascending c
 * (lenet_fast.h), so every output still sums its terms in the order (connection, u, v). */
static void conv_inputs(const lf_layer *l, const float *in, float *out, const conv_strides *s, int nvec)
{
    memset(out, 0, (size_t)l->out_c * s->ocs * sizeof(float));
    conv_group g;
    g.J = 1;
    int maps[l->out_c], conns[l->out_c]; /* the maps c feeds, through which connections */
    for (int c = 0; c < l->in_c; c++) {
        int n = 0;
        for (int o = 0; o < l->out_c; o++)
            if ((conns[n] = connection(l, o, c)) >= 0)
                maps[n++] = o;
        for (int i = 0, M; i < n; i += M) {
            M = group_size(n - i);
            for (int m = 0; m < M; m++)
                g.o[m] = maps[i + m], g.k[m] = conns[i + m];
            conv_run(l, &g, M, 1, in, out, s, nvec, 0);
        }
    }
    /* The bias and activation, a map's run LF_TILE vectors at a time (its switch outside the loop). */
    for (int o = 0; o < l->out_c; o++) {
        const lf_vf b = lf_set1(l->bias[o]);
        for (int i0 = 0; i0 < nvec; i0 += LF_TILE) {
            const int n = nvec - i0 < LF_TILE ? nvec - i0 : LF_TILE;
            float *dst = out + o * s->ocs + i0 * LF_LANES;
            lf_vf v[LF_TILE];
            for (int i = 0; i < n; i++)
                v[i] = lf_load(dst + i * LF_LANES) + b;
            lf_activate_all(v, n, l->act);
            for (int i = 0; i < n; i++)
                lf_store(dst + i * LF_LANES, v[i]);
        }
    }
}

/* Spatial, compact rows (lf_compact_geom): the kw shifted copies of every input map, then one run over the
 * compact output, input by input. */
static void conv_compact(const lf_layer *l, const float *in, const lf_geom *gi, float *out, const lf_geom *go)
{
    const int kw = l->kw, ow = l->out_w;
    const ptrdiff_t plane = (ptrdiff_t)lf_copy_plane(l);
    float copies[l->in_c * kw * plane] __attribute__((aligned(64)));
    for (int c = 0; c < l->in_c; c++)
        for (int v = 0; v < kw; v++) {
            float *dst = copies + (c * kw + v) * plane;
            const float *src = in + c * gi->cs + v;
            /* Whole vectors: each row's overrun is overwritten by the next row, the last one's by zeros. */
            for (int r = 0; r < l->in_h; r++)
                for (int x = 0; x < ow; x += LF_LANES)
                    lf_store(dst + r * ow + x, lf_load(src + r * gi->rs + x));
            for (ptrdiff_t i = (ptrdiff_t)l->in_h * ow; i < plane; i++)
                dst[i] = 0.0f;
        }
    ptrdiff_t tap[l->kh * kw];
    for (int u = 0; u < l->kh; u++)
        for (int v = 0; v < kw; v++)
            tap[u * kw + v] = v * plane + u * ow;
    const conv_strides s = {kw * plane, 0, 1, go->cs, go->rs, tap};
    const int nvec = (int)lf_compact_vectors(l);
    if (l->conn_start)
        conv_inputs(l, copies, out, &s, nvec);
    else
        conv_maps(l, 1, copies, out, &s, nvec);
}

static void conv_forward(const lf_layer *l, const float *in, const lf_geom *gi, float *out, const lf_geom *go)
{
    if (gi->lanes == 1 && go->rs != gi->rs) {
        conv_compact(l, in, gi, out, go);
        return;
    }
    ptrdiff_t tap[l->kh * l->kw];
    for (int u = 0; u < l->kh; u++)
        for (int v = 0; v < l->kw; v++)
            tap[u * l->kw + v] = u * gi->rs + (ptrdiff_t)v * gi->lanes;
    const conv_strides s = {gi->cs, gi->rs, gi->lanes, go->cs, go->rs, tap};
    if (gi->lanes == LF_LANES) {
        /* A row, or pair of rows, at a time through all of the maps (map by map measured the same). */
        const int single = l->conn_start || l->out_c == 1; /* every group is one map: rows go in pairs */
        for (int y = 0, R; y < l->out_h; y += R) {
            R = single && y + 1 < l->out_h ? 2 : 1;
            conv_maps(l, R, in + y * gi->rs, out + y * go->rs, &s, l->out_w);
        }
        return;
    }
    /* Wide rows: one run over (out_h - 1) full rows plus the last row's valid columns. */
    const int span = (l->out_h - 1) * (int)gi->rs + l->out_w;
    conv_maps(l, 1, in, out, &s, (span + LF_LANES - 1) / LF_LANES);
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

static size_t conv_backward_scratch(const lf_layer *l, int lanes)
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
    LF_UNROLL
    for (int t = 0; t < T; t++)
        acc[t] = lf_set1(0.0f);
    for (int r = 0; r < rows; r++)
        for (int p = 0; p < nvec; p++) {
            const lf_vf dv = lf_load(d + r * drs + p * LF_LANES);
            const float *xp = x + r * xrs + p * LF_LANES;
            LF_UNROLL
            for (int t = 0; t < T; t++) {
                lf_vf xv = lf_load(xp + tap[t]);
                if (second)
                    xv *= xv;
                acc[t] += dv * xv;
            }
        }
    LF_UNROLL
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

static void conv_backward(const lf_layer *l, const lf_backward *b)
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
        conv_forward(t, pad, &pg, b->dx, gx);
        return;
    }
    float *w = pad + pg.size;
    conv_forward(t, pad, &pg, w, &wide);
    for (int c = 0; c < l->in_c; c++)
        for (int r = 0; r < l->in_h; r++)
            memcpy(b->dx + c * gx->cs + r * gx->rs, w + c * wide.cs + r * wide.rs, l->in_w * sizeof(float));
}

/* Spatial layout: compact rows for inference where the copies fit, wide rows otherwise and for training,
 * whose backward passes read them (layout.h). The blocked layout is dense. */
static void conv_geometry(const lf_layer *l, int lanes, int for_backward, lf_geom *gi, lf_geom *go)
{
    if (lanes == 1 && (for_backward || !lf_compact_geom(l, gi, go)))
        lf_wide_geom(l, gi, go);
}

const lf_layer_ops LF_ISA(conv_ops) = {
    .forward = conv_forward,
    .backward = conv_backward,
    .backward_scratch = conv_backward_scratch,
    .geometry = conv_geometry,
};
