/*
 * trainer_state.c: what training keeps between calls (struct lf_trainer in trainer_state.h): the gradient slots, and
 * for each convolution the transposed convolution that passes its gradient back to its input (the first
 * layer's is used only when the caller asks for the input's gradient).
 * A valid convolution's input gradient is the full correlation of its output gradient with the kernels
 * rotated by 180 degrees, over the table read the other way: input map c gathers from every output map it
 * feeds. Written as a forward convolution (in ascending output-map order per input map), it runs on the
 * forward kernel (conv.c). Allocated once; the rotated kernels are refreshed from the weights per call.
 */
#include <stdlib.h>
#include "trainer_state.h"

void lf_trainer_free(lf_trainer *t)
{
    if (!t)
        return;
    free(t->slots);
    for (int i = 0; i < t->nlayers; i++) {
        free((void *)t->transposed[i].weight);
        free((void *)t->transposed[i].bias);
        free((void *)t->transposed[i].conn_start);
        free((void *)t->transposed[i].conn_in);
        free(t->source[i]);
    }
    free(t);
}

/* Layer l's transposed convolution into t, and which of l's connections each of its connections is. */
static int transpose(const lf_layer *l, lf_layer *t, int **source)
{
    lf_transpose_shape(l, t);
    const int nconn = l->conn_start ? l->conn_start[l->out_c] : l->out_c * l->in_c;
    const size_t ntaps = (size_t)l->kh * l->kw;
    float *weight = malloc(nconn * ntaps * sizeof(float)), *bias = calloc(t->out_c, sizeof(float));
    int *src = malloc(nconn * sizeof(int));
    t->weight = weight, t->bias = bias, *source = src;
    if (!weight || !bias || !src)
        return -1;
    if (!l->conn_start) { /* dense: connection (c, o) of the transpose is (o, c) of the layer */
        for (int c = 0, k = 0; c < l->in_c; c++)
            for (int o = 0; o < l->out_c; o++)
                src[k++] = o * l->in_c + c;
        return 0;
    }
    int *start = malloc((t->out_c + 1) * sizeof(int)), *in = malloc(nconn * sizeof(int));
    t->conn_start = start, t->conn_in = in;
    if (!start || !in)
        return -1;
    int k = 0;
    for (int c = 0; c < l->in_c; c++) {
        start[c] = k;
        for (int o = 0; o < l->out_c; o++)
            for (int j = l->conn_start[o]; j < l->conn_start[o + 1]; j++)
                if (l->conn_in[j] == c)
                    in[k] = o, src[k++] = j;
    }
    start[l->in_c] = k;
    return 0;
}

lf_trainer *lf_trainer_new(const lf_layer *layers, int nlayers, size_t nparams)
{
    if (nlayers > LF_MAX_LAYERS)
        return NULL;
    lf_trainer *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->layers = layers, t->nlayers = nlayers, t->nparams = nparams;
    t->slots = malloc((LF_GRAD_SLOTS - 1) * (nparams ? nparams : 1) * sizeof(float));
    int failed = !t->slots;
    for (int i = 0; i < nlayers && !failed; i++)
        if (layers[i].kind == LF_LAYER_CONV)
            failed = transpose(&layers[i], &t->transposed[i], &t->source[i]) != 0;
    if (failed) {
        lf_trainer_free(t);
        return NULL;
    }
    return t;
}

void lf_trainer_rotate(lf_trainer *t, int second, int first)
{
    for (int i = first; i < t->nlayers; i++) {
        const lf_layer *l = &t->layers[i], *tr = &t->transposed[i];
        if (!tr->weight)
            continue;
        const int kh = l->kh, kw = l->kw, ntaps = kh * kw;
        const int nconn = l->conn_start ? l->conn_start[l->out_c] : l->out_c * l->in_c;
        float *rot = (float *)tr->weight;
        for (int k = 0; k < nconn; k++) {
            const float *w = l->weight + (size_t)t->source[i][k] * ntaps;
            float *r = rot + (size_t)k * ntaps;
            for (int u = 0; u < kh; u++)
                for (int v = 0; v < kw; v++) {
                    const float x = w[u * kw + v];
                    r[(kh - 1 - u) * kw + (kw - 1 - v)] = second ? x * x : x;
                }
        }
    }
}
