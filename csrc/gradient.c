/*
 * gradient.c: the gradient of a batch's loss, and the training loop.
 *
 * A batch is cut into work items as for inference (layout.h: blocks of LF_LANES images, then single
 * images), by its size alone. Each item runs forward keeping every layer's output in its workspace, takes
 * the loss's gradient, and runs backward while that block is still in cache, adding its parameters'
 * gradients into a slot: item it into slot it mod slots, in item order. The slots are summed in slot
 * order. Every sum therefore has one order, whatever the thread count or schedule, and so gradients and
 * trained weights are bit-identical for any number of threads (never a shared accumulation).
 */
#include "ops.h"

/* A block's workspace: the forward plan's tensors, then a gradient tensor for each layer's output (the
 * same geometry), then the scratch the backward passes need. */
typedef struct {
    lf_plan f;
    size_t grad[LF_MAX_LAYERS + 1]; /* where the gradient of tensor i starts (0: the input's, on request) */
    size_t scratch;
    size_t total;
} grad_plan;

static void make_grad_plan(const lf_trainer *t, int lanes, grad_plan *p)
{
    LF_ISA(make_plan)(t->layers, t->nlayers, lanes, 1, &p->f);
    size_t at = p->f.total, need = 0;
    for (int i = 0; i <= t->nlayers; i++) {
        p->grad[i] = at;
        at += p->f.g[i].size;
    }
    for (int i = 0; i < t->nlayers; i++) {
        const lf_layer *l = &t->layers[i];
        const size_t s = lf_ops(l)->backward_scratch ? lf_ops(l)->backward_scratch(l, lanes) : 0;
        need = s > need ? s : need;
    }
    p->scratch = at;
    p->total = at + need;
}

typedef struct {
    const lf_trainer *t;
    const grad_plan *plans; /* [0] blocked, [1] spatial */
    const lf_input *input;
    int n, nblocks;
    const int64_t *labels;
    const lf_loss *loss;
    int64_t offset; /* the position of image 0 in the lf_train call (dropout's masks) */
    float scale;
    int second;
    float *losses, *out, *dinput;
} batch_t;

/* Zeroes the floats past the end of each tensor of f that no layer writes (their sizes cover vector reads
 * past the data: layout.h). Inference only ever reads them into lanes it drops, but a spatial
 * convolution's weight gradient multiplies the ones its input's run reaches by its zeroed junk columns
 * (conv.c), and 0 times what a workspace last held is NaN when that was a NaN or an infinity: another
 * network's failed call in this thread, or any call with another plan, would poison this gradient. */
static void clear_tails(const lf_plan *f, int nlayers, float *ws)
{
    for (int i = 0; i <= nlayers; i++) {
        const size_t data = (size_t)f->g[i].c * f->g[i].cs;
        if (f->g[i].size > data)
            memset(ws + f->off[i] + data, 0, (f->g[i].size - data) * sizeof(float));
    }
}

/* Forward and backward of work item it, its parameters' gradients added into slot (stored, when assign:
 * every layer writes each of its gradients once per item, so the first item needs no zeroed slot). 0, or
 * -1 without a workspace. */
static int run_item(const batch_t *bt, int it, float *slot, int assign)
{
    const lf_trainer *t = bt->t;
    const lf_layer *layers = t->layers;
    const int nl = t->nlayers;
    size_t first;
    int count;
    const grad_plan *p = &bt->plans[!lf_item(bt->n, bt->nblocks, it, &first, &count)];
    const lf_plan *f = &p->f;
    float *ws = lf_workspace(p->total);
    if (!ws)
        return -1;
    clear_tails(f, nl, ws);
    LF_ISA(pack_input)(bt->input, first, count, &f->g[0], ws);
    const int64_t image = (int64_t)first + bt->offset;
    for (int i = 0; i < nl; i++) { /* run_block's loop, with dropout's masks (training only) */
        lf_ops(&layers[i])->forward(&layers[i], ws + f->off[i], &f->g[i], ws + f->off[i + 1], &f->g[i + 1]);
        if (layers[i].kind == LF_LAYER_DROPOUT)
            LF_ISA(dropout_mask)(&layers[i], ws + f->off[i + 1], &f->g[i + 1], image + layers[i].first, count, 0);
    }
    LF_ISA(unpack_output)(ws + f->off[nl], &f->g[nl], first, count, bt->out);
    LF_ISA(loss_block)(bt->loss, ws + f->off[nl], &f->g[nl], bt->labels, first, count, bt->scale, bt->second,
                       ws + p->grad[nl], bt->losses);
    int top = nl;
    if (bt->second && bt->loss->kind != LF_LOSS_LINEAR && layers[nl - 1].kind == LF_LAYER_RBF) {
        /* Gauss-Newton starts at the RBF's input: curvature 2 per unit (that of y_D). */
        top = nl - 1;
        const lf_geom *g = &f->g[top];
        float *d = ws + p->grad[top];
        for (int k = 0; k < g->c * g->h * g->w; k++)
            for (int b = 0; b < g->lanes; b++)
                d[(size_t)k * g->lanes + b] = b < count ? 2.0f * bt->scale : 0.0f;
    }
    for (int i = top - 1; i >= 0; i--) {
        const lf_backward b = {
            .x = ws + f->off[i],
            .y = ws + f->off[i + 1],
            .dy = ws + p->grad[i + 1],
            .dx = i > 0 || bt->dinput ? ws + p->grad[i] : NULL,
            .gx = &f->g[i],
            .gy = &f->g[i + 1],
            .grad = slot,
            .scratch = ws + p->scratch,
            .transposed = &t->transposed[i],
            .second = bt->second,
            .assign = assign,
            .image = image + layers[i].first,
            .count = count,
        };
        lf_ops(&layers[i])->backward(&layers[i], &b);
    }
    if (bt->dinput)
        LF_ISA(unpack_output)(ws + p->grad[0], &f->g[0], first, count, bt->dinput);
    return 0;
}

/* The items of one slot, in order. */
static int run_slot(const batch_t *bt, int s, int nslots, int nitems, float *slot)
{
    for (int it = s; it < nitems; it += nslots)
        if (run_item(bt, it, slot, it == s) != 0)
            return -1;
    return 0;
}

/* lf_gradient on images that start at position offset of an lf_train call. */
static int gradient_at(lf_trainer *t, const lf_input *input, int n, int64_t offset, const int64_t *labels,
                       const lf_loss *loss, float scale, int second, float *grad, float *losses, float *out,
                       float *dinput)
{
    if (n <= 0) {
        memset(grad, 0, t->nparams * sizeof(float));
        return 0;
    }
    lf_trainer_rotate(t, second, dinput == NULL);
    grad_plan plans[2];
    make_grad_plan(t, LF_LANES, &plans[0]);
    make_grad_plan(t, 1, &plans[1]);
    const int nblocks = lf_blocks(n), nitems = lf_items(n, nblocks);
    const int nslots = nitems < LF_GRAD_SLOTS ? nitems : LF_GRAD_SLOTS;
    const batch_t bt = {t, plans, input, n, nblocks, labels, loss, offset, scale, second, losses, out, dinput};
    if (nslots == 1) /* one item: no thread team */
        return run_slot(&bt, 0, 1, nitems, grad);

    const size_t np = t->nparams, chunk = 4096;
    int failed = 0;
#pragma omp parallel
    {
#pragma omp for schedule(dynamic, 1) reduction(| : failed)
        for (int s = 0; s < nslots; s++)
            failed |= run_slot(&bt, s, nslots, nitems, s ? t->slots + (s - 1) * np : grad) != 0;
        /* Slot order for every parameter; the chunks split the parameters, not the sums. */
#pragma omp for schedule(static)
        for (size_t c = 0; c < (np + chunk - 1) / chunk; c++)
            for (size_t i = c * chunk; i < np && i < (c + 1) * chunk; i++) {
                float acc = grad[i];
                for (int s = 1; s < nslots; s++)
                    acc += t->slots[(s - 1) * np + i];
                grad[i] = acc;
            }
    }
    return failed ? -1 : 0;
}

int LF_ISA(gradient)(lf_trainer *t, const lf_input *input, int n, const int64_t *labels, const lf_loss *loss,
                     float scale, int second, float *grad, float *losses, float *out, float *dinput)
{
    return gradient_at(t, input, n, 0, labels, loss, scale, second, grad, losses, out, dinput);
}

int LF_ISA(train)(lf_trainer *t, const lf_input *input, int n, const int64_t *labels, const lf_loss *loss,
                  int batch_size, int summed, lf_optimizer *opt, float *params, float *grad, float *losses,
                  float *out)
{
    const lf_layer *last = &t->layers[t->nlayers - 1];
    const size_t k = (size_t)last->out_c * last->out_h * last->out_w;
    const size_t image = lf_image_bytes(input);
    for (int s = 0; s < n; s += batch_size) {
        const int m = n - s < batch_size ? n - s : batch_size;
        lf_input batch = *input;
        batch.data = (const char *)input->data + s * image;
        const float scale = summed ? 1.0f : 1.0f / m;
        if (gradient_at(t, &batch, m, s, labels + s, loss, scale, 0, grad, losses + s, out + s * k, NULL) != 0)
            return -1;
        LF_ISA(update)(opt, params, grad, t->nparams);
    }
    return 0;
}
