/*
 * rbf.c: the Euclidean RBF output layer, out_o = sum_k (x_k - W[k, o])^2, W the transposed centres (In, Out);
 * its forward loop is dense.h's (docs/paper.md#rbf-output).
 */
#include "dense.h"
#include "ops.h"

static void rbf_forward(const lf_layer *l, const float *in, const lf_geom *gi, float *out, const lf_geom *go)
{
    lf_dense_forward(l, in, gi, out, go, 1);
}

/* RBF: dx[k] = sum_o 2 (x[k] - w[k, o]) dy[o]; the centres are fixed. Only gradients: training's
 * second derivatives start at the RBF's input. */
static void rbf_backward(const lf_layer *l, const lf_backward *b)
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

const lf_layer_ops LF_ISA(rbf_ops) = {
    .forward = rbf_forward,
    .backward = rbf_backward,
};
