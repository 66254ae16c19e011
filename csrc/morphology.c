/*
 * morphology.c: grey-level closing and opening of one image by a k x k square (lenet_fast.h:
 * lf_morphology), the background estimate of a photographed digit: a closing keeps the paper (its light
 * gradients and shadow edges included) and fills in every dark stroke narrower than k.
 *
 * Each running maximum or minimum uses van Herk's method, so its cost does not depend on k: the column,
 * padded at both ends with r = k / 2 neutral values (windows are cut at the image's edges) and cut into
 * blocks of k, gets a running reduction forward within each block (ahead) and one backward (behind); the
 * window starting at padded position i spans at most two blocks and is op(behind[i], ahead[i + k - 1]).
 * The reductions run down columns, STRIP of them at a time, so that each step is one elementwise operation
 * on a row of the strip (vectorized, no chain of dependent operations); a square's reductions are
 * separable, and the rows' run as the columns of the transposed image.
 */
#include <math.h>
#include <string.h>
#include "lenet_fast.h"

enum { STRIP = 64 }; /* columns per strip: the two padded buffers of a strip stay in L2 */

/* out[j] = a[j] if it is beyond d[j] (above for max, below for min), else d[j], for j < n: rows of a strip,
 * never overlapping. The input is finite (the caller checks), so plain comparisons suffice; one loop per
 * operation, so that each vectorizes. */
static inline void combine(float *restrict out, const float *restrict d, const float *restrict a, int n, int is_max)
{
    if (is_max)
        for (int j = 0; j < n; j++)
            out[j] = a[j] > d[j] ? a[j] : d[j];
    else
        for (int j = 0; j < n; j++)
            out[j] = a[j] < d[j] ? a[j] : d[j];
}

static int padded_length(int n, int k)
{
    return (n + k - 1 + k - 1) / k * k; /* n + 2r rounded up to whole blocks */
}

/* dst[y][x] = op over src[y - r .. y + r][x] (cut at the column's ends), for a rows x cols image; ahead and
 * behind hold padded_length(rows, k) * STRIP floats each, pad STRIP. Both running reductions read the
 * source rows where they lie (the padding's rows are pad, filled with the neutral value) and write their
 * results only: no row is copied but a block's first (ahead) and last (behind). */
static void running(const float *src, float *dst, int rows, int cols, int k, int is_max, float *ahead,
                    float *behind, float *pad)
{
    const int r = k / 2, m = padded_length(rows, k);
    const float neutral = is_max ? -INFINITY : INFINITY;
    for (int j = 0; j < STRIP; j++)
        pad[j] = neutral;
    for (int x0 = 0; x0 < cols; x0 += STRIP) {
        const int n = cols - x0 < STRIP ? cols - x0 : STRIP;
#define ROW(i) ((i) >= r && (i) < r + rows ? src + (size_t)((i) - r) * cols + x0 : pad)
        for (int b0 = 0; b0 < m; b0 += k) {
            memcpy(ahead + (size_t)b0 * STRIP, ROW(b0), n * sizeof *ahead);
            for (int i = b0 + 1; i < b0 + k; i++)
                combine(ahead + (size_t)i * STRIP, ROW(i), ahead + (size_t)(i - 1) * STRIP, n, is_max);
            memcpy(behind + (size_t)(b0 + k - 1) * STRIP, ROW(b0 + k - 1), n * sizeof *behind);
            for (int i = b0 + k - 2; i >= b0; i--)
                combine(behind + (size_t)i * STRIP, ROW(i), behind + (size_t)(i + 1) * STRIP, n, is_max);
        }
#undef ROW
        for (int y = 0; y < rows; y++)
            combine(dst + (size_t)y * cols + x0, behind + (size_t)y * STRIP, ahead + (size_t)(y + k - 1) * STRIP, n,
                    is_max);
    }
}

static void transpose(const float *src, float *dst, int rows, int cols)
{
    enum { TILE = 32 }; /* a tile of each side stays in L1 */
    for (int y0 = 0; y0 < rows; y0 += TILE)
        for (int x0 = 0; x0 < cols; x0 += TILE)
            for (int y = y0; y < y0 + TILE && y < rows; y++)
                for (int x = x0; x < cols && x < x0 + TILE; x++)
                    dst[(size_t)x * rows + y] = src[(size_t)y * cols + x];
}

size_t lf_morphology_scratch(int h, int w, int k)
{
    return (size_t)h * w + (2 * (size_t)padded_length(h > w ? h : w, k) + 1) * STRIP;
}

void lf_morphology(const float *in, int h, int w, int k, int closing, float *out, float *scratch)
{
    float *t = scratch, *ahead = scratch + (size_t)h * w;
    float *behind = ahead + (size_t)padded_length(h > w ? h : w, k) * STRIP;
    float *pad = behind + (size_t)padded_length(h > w ? h : w, k) * STRIP;
    /* closing: maxima then minima; opening: minima then maxima. Columns, then rows as the columns of the
     * transposed image, ping-ponging between t and out so that the last pass lands in out. */
    running(in, t, h, w, k, closing, ahead, behind, pad);
    transpose(t, out, h, w);
    running(out, t, w, h, k, closing, ahead, behind, pad);
    running(t, out, w, h, k, !closing, ahead, behind, pad);
    transpose(out, t, w, h);
    running(t, out, h, w, k, !closing, ahead, behind, pad);
}
