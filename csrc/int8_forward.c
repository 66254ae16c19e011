/*
 * int8_forward.c: the int8 network over a batch. The batch is cut into blocks of at most LF_I8_BLOCK
 * images, shared among the OpenMP threads by index; each thread keeps its block's tensors in its own
 * workspace (workspace.c), so a call allocates nothing once the workspaces have grown. The spatial layers
 * run image by image, the full layers on the whole block (their weights read once per block). An image's
 * result does not depend on its block (int8.h), so the output is the same for any thread count.
 */
#include "int8_ops.h"

/* Bytes per image of the tensor a layer writes (or, for t = 0, the input field): codes padded to whole
 * weight rows (a full layer reads them as its depth), float32 to whole cache lines. */
static size_t tensor_stride(const lf_int8_layer *layers, int t)
{
    const lf_int8_layer *l = &layers[t > 0 ? t - 1 : 0];
    const size_t size = t > 0 ? (size_t)l->out_c * l->out_h * l->out_w : (size_t)l->in_c * l->in_h * l->in_w;
    if (t == 0 || l->out_codes)
        return (size + LF_I8_DEPTH - 1) / LF_I8_DEPTH * LF_I8_DEPTH;
    return (size * sizeof(float) + 63) / 64 * 64;
}

typedef struct {
    const lf_int8_layer *layers;
    int nlayers, n, block, h, w;
    const uint8_t *pixels;
    void *out;
    lf_i8_gemm_fn gemm;
    size_t off[LF_MAX_LAYERS + 1], stride[LF_MAX_LAYERS + 1]; /* each tensor's place and per-image bytes */
    size_t cols, acc, bytes;                                   /* the scratch's places; the workspace's size */
} plan_t;

static void make_plan(plan_t *p)
{
    size_t at = 0, cols = 0, acc = 0;
    for (int t = 0; t <= p->nlayers; t++) {
        p->stride[t] = tensor_stride(p->layers, t);
        p->off[t] = at;
        at += p->stride[t] * p->block;
    }
    for (int i = 0; i < p->nlayers; i++) {
        const lf_int8_layer *l = &p->layers[i];
        const size_t m = (size_t)l->out_h * l->out_w;
        if (l->kind == LF_I8_CONV && m * l->depth > cols)
            cols = m * l->depth;
        const size_t sums = (size_t)l->out_c * (l->kind == LF_I8_FULL ? (size_t)p->block : m);
        if (sums > acc)
            acc = sums;
    }
    p->cols = at;
    p->acc = (at + cols + 63) / 64 * 64;
    p->bytes = p->acc + acc * sizeof(int32_t);
}

static int run_block(const plan_t *p, int it)
{
    const size_t first = (size_t)it * p->block;
    const int count = p->n - first < (size_t)p->block ? (int)(p->n - first) : p->block;
    uint8_t *ws = (uint8_t *)lf_workspace((p->bytes + sizeof(float) - 1) / sizeof(float));
    if (!ws)
        return -1;
    const lf_int8_layer *l0 = &p->layers[0];
    const int oy = (l0->in_h - p->h) / 2, ox = (l0->in_w - p->w) / 2;
    for (int b = 0; b < count; b++) {
        uint8_t *field = ws + p->off[0] + b * p->stride[0];
        memset(field, 0, (size_t)l0->in_h * l0->in_w);
        for (int y = 0; y < p->h; y++)
            memcpy(field + (size_t)(y + oy) * l0->in_w + ox, p->pixels + ((first + b) * p->h + y) * p->w,
                   (size_t)p->w);
    }
    uint8_t *cols = ws + p->cols;
    int32_t *acc = (int32_t *)(ws + p->acc);
    for (int i = 0; i < p->nlayers; i++) {
        const lf_int8_layer *l = &p->layers[i];
        uint8_t *in = ws + p->off[i], *out = ws + p->off[i + 1];
        const size_t si = p->stride[i], so = p->stride[i + 1];
        switch (l->kind) {
        case LF_I8_CONV:
            for (int b = 0; b < count; b++)
                LF_ISA(int8_conv)(l, in + b * si, out + b * so, cols, acc, p->gemm);
            break;
        case LF_I8_POOL:
            for (int b = 0; b < count; b++)
                LF_ISA(int8_pool)(l, in + b * si, out + b * so, acc);
            break;
        case LF_I8_FULL:
            LF_ISA(int8_full)(l, in, si, count, out, l->out_codes ? so : so / sizeof(float), acc, p->gemm);
            break;
        case LF_I8_RBF:
            LF_ISA(int8_rbf)(l, (const float *)in, si / sizeof(float), count, (float *)out, so / sizeof(float));
            break;
        }
    }
    const lf_int8_layer *last = &p->layers[p->nlayers - 1];
    const size_t size = (size_t)last->out_c * last->out_h * last->out_w;
    const size_t bytes = size * (last->out_codes ? 1 : sizeof(float));
    for (int b = 0; b < count; b++)
        memcpy((uint8_t *)p->out + (first + b) * bytes, ws + p->off[p->nlayers] + b * p->stride[p->nlayers], bytes);
    return 0;
}

int LF_ISA(int8_forward)(const lf_int8_layer *layers, int nlayers, const uint8_t *pixels, int h, int w, int n,
                         void *out, int vnni)
{
    if (n <= 0)
        return 0;
    plan_t p = {.layers = layers, .nlayers = nlayers, .n = n, .h = h, .w = w, .pixels = pixels, .out = out};
    p.gemm = LF_ISA(int8_gemm);
#ifdef LF_I8_VNNI
    if (vnni)
        p.gemm = LF_ISA(int8_gemm_vnni);
#else
    (void)vnni;
#endif
    /* Smaller blocks when whole ones would leave a thread idle (the result is the same either way). */
    const int threads = lf_get_num_threads();
    p.block = LF_I8_BLOCK;
    if (threads > 1 && n < LF_I8_BLOCK * threads)
        p.block = (n + threads - 1) / threads;
    make_plan(&p);
    const int items = (n + p.block - 1) / p.block;
    if (items == 1)
        return run_block(&p, 0);
    int failed = 0;
#pragma omp parallel for schedule(dynamic, 1) reduction(| : failed)
    for (int it = 0; it < items; it++)
        failed |= run_block(&p, it) != 0;
    return failed ? -1 : 0;
}

void LF_ISA(int8_gemm_any)(const uint8_t *a, size_t lda, int m, const int8_t *w, int depth, int nw, int32_t *c,
                           int vnni)
{
#ifdef LF_I8_VNNI
    if (vnni) {
        LF_ISA(int8_gemm_vnni)(a, lda, m, w, depth, nw, c);
        return;
    }
#else
    (void)vnni;
#endif
    LF_ISA(int8_gemm)(a, lda, m, w, depth, nw, c);
}
