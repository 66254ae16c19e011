/*
 * components.c: the 8-connected components of a binary image (lenet_fast.h: lf_components), how a picture is
 * cut into the marks it holds: a digit, the pieces of one, the digits of a number, specks.
 *
 * Two raster passes. The first gives each mask pixel a provisional label of a neighbour already seen (west,
 * north-west, north, north-east), or a new one, and records that the labels it touches are one component
 * (union-find whose roots are always the smallest label, with path halving). The second
 * numbers the roots 1, 2, ... in the order their components' first pixels come in raster order, so the
 * labels do not depend on how the unions happened. parent holds one entry per provisional label: at most
 * one per pixel, plus label 0.
 */
#include <math.h>
#include <string.h>
#include "lenet_fast.h"

/* Whether any of the 8 bytes at m is nonzero. */
static inline int any8(const uint8_t *m)
{
    uint64_t v;
    memcpy(&v, m, sizeof v);
    return v != 0;
}

static int32_t root(int32_t *parent, int32_t a)
{
    while (parent[a] != a) {
        parent[a] = parent[parent[a]];
        a = parent[a];
    }
    return a;
}

static int32_t join(int32_t *parent, int32_t a, int32_t b)
{
    a = root(parent, a);
    b = root(parent, b);
    if (a < b)
        parent[b] = a;
    else
        parent[a] = b;
    return a < b ? a : b;
}

int32_t lf_components(const uint8_t *mask, int h, int w, int32_t *labels, int32_t *parent)
{
    int32_t next = 1;
    parent[0] = 0;
    for (int y = 0; y < h; y++) {
        const uint8_t *m = mask + (size_t)y * w;
        int32_t *l = labels + (size_t)y * w, *up = l - w;
        for (int x = 0; x < w; x++) {
            if (!m[x]) {
                /* a picture's mask is mostly background: its runs of 8 skipped at once */
                if (x + 8 <= w && !any8(m + x)) {
                    for (int j = 0; j < 8; j++)
                        l[x + j] = 0;
                    x += 7;
                } else {
                    l[x] = 0;
                }
                continue;
            }
            /* Of the neighbours seen already, those that touch one another are joined already: north
             * touches north-west and west (so, when north is ink, nothing is left to join), west touches
             * north-west; only north-east may still be apart from west or north-west. */
            const int32_t north = y > 0 ? up[x] : 0, west = x > 0 ? l[x - 1] : 0;
            const int32_t north_west = y > 0 && x > 0 ? up[x - 1] : 0;
            const int32_t north_east = y > 0 && x + 1 < w ? up[x + 1] : 0;
            int32_t label = north ? north : west ? west : north_west;
            if (!north && north_east)
                label = label ? join(parent, label, north_east) : north_east;
            if (!label) {
                label = next++;
                parent[label] = label;
            }
            l[x] = label;
        }
    }
    /* Each label's final number, negated, replaces its parent: counting up, a label's parent is smaller and
     * already replaced (a root keeps itself until its turn, and a root is its component's first label). */
    int32_t count = 0;
    for (int32_t a = 1; a < next; a++)
        parent[a] = parent[a] == a ? -++count : parent[parent[a]];
    size_t i = 0;
    for (; i + 8 <= (size_t)h * w; i += 8)
        if (labels[i] | labels[i + 1] | labels[i + 2] | labels[i + 3] | labels[i + 4] | labels[i + 5] |
            labels[i + 6] | labels[i + 7])  /* 8 of the background at a time stay 0 */
            for (int j = 0; j < 8; j++)
                labels[i + j] = -parent[labels[i + j]];
    for (; i < (size_t)h * w; i++)
        labels[i] = -parent[labels[i]];
    return count;
}

void lf_component_stats(const int32_t *labels, int h, int w, int32_t count, const float *values, int32_t *boxes,
                        double *sums, float *peaks)
{
    for (int32_t c = 0; c < count; c++) {
        int32_t *b = boxes + 4 * (size_t)c;
        b[0] = h, b[1] = w, b[2] = 0, b[3] = 0;
        if (values)
            sums[c] = 0.0, peaks[c] = -INFINITY;
    }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const size_t i = (size_t)y * w + x;
            if (!labels[i]) {
                /* the background's runs of 4 skipped at once */
                if (x + 4 <= w && !(labels[i + 1] | labels[i + 2] | labels[i + 3]))
                    x += 3;
                continue;
            }
            const int32_t c = labels[i] - 1;
            int32_t *b = boxes + 4 * (size_t)c;
            b[0] = y < b[0] ? y : b[0];
            b[1] = x < b[1] ? x : b[1];
            b[2] = y + 1 > b[2] ? y + 1 : b[2];
            b[3] = x + 1 > b[3] ? x + 1 : b[3];
            if (values) {
                sums[c] += values[i];
                peaks[c] = values[i] > peaks[c] ? values[i] : peaks[c];
            }
        }
}
