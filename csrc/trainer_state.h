/*
 * trainer_state.h: what training keeps between calls (struct lf_trainer, trainer_state.c) and what one
 * layer's backward pass receives (lf_backward). Not part of the public interface.
 */
#ifndef LENET_FAST_TRAINER_STATE_H
#define LENET_FAST_TRAINER_STATE_H

#include "layout.h"

/* What training keeps between calls (lenet_fast.h). */
struct lf_trainer {
    const lf_layer *layers;
    int nlayers;
    size_t nparams;
    float *slots;                       /* gradient slots 1 .. LF_GRAD_SLOTS - 1 (slot 0 is the caller's) */
    lf_layer transposed[LF_MAX_LAYERS]; /* for each convolution: the convolution of its zero-padded output
                                         * gradient that gives its input gradient (kernels rotated by 180
                                         * degrees, table transposed); the first layer's runs only when the
                                         * caller asks for the input's gradient */
    int *source[LF_MAX_LAYERS];         /* its connection k' carries the layer's connection source[k'] */
};

/* The shape of the convolution that carries conv layer l's output gradient back to its input: a valid
 * convolution of that gradient zero-padded by the kernel's reach on every side. */
static inline void lf_transpose_shape(const lf_layer *l, lf_layer *t)
{
    memset(t, 0, sizeof *t);
    t->kind = LF_LAYER_CONV;
    t->in_c = l->out_c, t->in_h = l->out_h + 2 * (l->kh - 1), t->in_w = l->out_w + 2 * (l->kw - 1);
    t->out_c = l->in_c, t->out_h = l->in_h, t->out_w = l->in_w;
    t->kh = l->kh, t->kw = l->kw;
    t->act = LF_ACT_NONE;
    t->weight_at = t->bias_at = -1;
}

/* Rebuilds the transposed convolutions' kernels of layers first.. from the current weights (squared when
 * second is set); first is 1 when nobody asks for the input's gradient. */
void lf_trainer_rotate(lf_trainer *t, int second, int first);

/* One layer's backward pass on one block. */
typedef struct {
    const float *x;       /* the layer's input, geometry gx */
    const float *y;       /* its output, geometry gy */
    float *dy;            /* the gradient with respect to y; overwritten by that with respect to the
                           * pre-activation */
    float *dx;            /* receives the gradient with respect to x, or NULL when not needed */
    const lf_geom *gx, *gy;
    float *grad;          /* the block's gradient slot: weights at weight_at, biases at bias_at (added to) */
    float *scratch;       /* the layer's backward_scratch floats (lf_layer_ops) */
    const lf_layer *transposed; /* conv: the convolution that gives dx */
    int second;           /* Gauss-Newton second derivatives instead of gradients */
    int assign;           /* the slot is fresh: gradients are stored into it, not added (no zeroing pass) */
    int64_t image;        /* the epoch position of the block's first image (dropout's masks) */
    int count;            /* the images in the block */
} lf_backward;

/* One gradient entry into a slot (lf_backward.assign). */
static inline void lf_grad_put(float *g, float v, int assign) { *g = assign ? v : *g + v; }

#endif
