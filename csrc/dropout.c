/*
 * dropout.c: inverted dropout (before C5 and F6, as AlexNet before its full layers). At inference, and
 * in training where the rate is 0, the layer is the identity (a copy: a few hundred floats per image). In
 * training, unit u of the image at epoch position p is kept when the 24 top bits of a 64-bit hash of
 * (key, p, u) reach rate * 2^24, and then scaled by 1 / (1 - rate); the gradient goes back through the
 * same multipliers. The mask is a pure function of its arguments (a counter-based hash, no generator
 * state), so training is bit-identical for any thread count, batch split or chunk, and resume is exact.
 * lenet_fast/reference.py's dropout_mask computes the same masks in NumPy.
 */
#include "ops.h"

/* A bijective 64-bit mixer (xor-shifts and odd multipliers): every input bit reaches every output bit. */
static inline uint64_t mix64(uint64_t z)
{
    z ^= z >> 32;
    z *= 0xD6E8FEB86659FD93ull;
    z ^= z >> 32;
    z *= 0xD6E8FEB86659FD93ull;
    z ^= z >> 32;
    return z;
}

/* The multiplier of unit u of the image at epoch position p: 0 (dropped) or scale. */
static inline float multiplier(uint64_t key, int64_t p, int u, uint32_t threshold, float scale)
{
    const uint64_t h = mix64(mix64(key ^ (uint64_t)p * 0x9E3779B97F4A7C15ull) + (uint64_t)u);
    return (uint32_t)(h >> 40) < threshold ? 0.0f : scale;
}

void LF_ISA(dropout_mask)(const lf_layer *l, float *t, const lf_geom *g, int64_t image, int count, int second)
{
    if (l->rate <= 0.0f)
        return;
    const uint32_t threshold = (uint32_t)(l->rate * 16777216.0f + 0.5f);
    float scale = 1.0f / (1.0f - l->rate);
    scale = second ? scale * scale : scale;
    for (int b = 0; b < count; b++)
        for (int c = 0; c < g->c; c++)
            for (int r = 0; r < g->h; r++)
                for (int x = 0; x < g->w; x++) {
                    const int u = (c * g->h + r) * g->w + x;
                    t[c * g->cs + r * g->rs + (ptrdiff_t)x * g->lanes + b] *=
                        multiplier(l->key, image + b, u, threshold, scale);
                }
}

/* The output has the input's geometry: the copy and the masks keep every stride. */
static void dropout_geometry(const lf_layer *l, int lanes, int for_backward, lf_geom *gi, lf_geom *go)
{
    (void)l, (void)lanes, (void)for_backward;
    *go = *gi;
}

static void dropout_forward(const lf_layer *l, const float *in, const lf_geom *gi, float *out, const lf_geom *go)
{
    (void)l, (void)go;
    memcpy(out, in, (size_t)gi->c * gi->cs * sizeof(float));
}

static void dropout_backward(const lf_layer *l, const lf_backward *b)
{
    if (!b->dx)
        return;
    memcpy(b->dx, b->dy, (size_t)b->gy->c * b->gy->cs * sizeof(float));
    LF_ISA(dropout_mask)(l, b->dx, b->gx, b->image, b->count, b->second);
}

const lf_layer_ops LF_ISA(dropout_ops) = {
    .forward = dropout_forward,
    .backward = dropout_backward,
    .geometry = dropout_geometry,
};
