/*
 * ink.c: how far each pixel of a gray picture stands out from its paper, less the noise floor (lenet_fast.h:
 * lf_ink), the step between the paper's estimate and the digit's components in read_digit.
 *
 * The floor is the median of the ink map plus `sigmas` robust standard deviations (1.4826 times the median
 * absolute deviation), both taken over every other pixel each way: the paper's statistics need no more, and
 * the medians are the costly part. A median here is the element of rank n / 2 (the upper middle one of an
 * even count), found by selection in place. The arithmetic is images.py's and reference.ink_above_floor's
 * order exactly: float32 per pixel, the statistics in double.
 */
#include <math.h>
#include "lenet_fast.h"
#include "select_rank.h"

/* select_rank.h: Hoare's selection with a median-of-three pivot. */
float lf_select_rank(float *a, ptrdiff_t n, ptrdiff_t k)
{
    ptrdiff_t lo = 0, hi = n - 1;
    while (lo < hi) {
        const float x = a[lo], y = a[lo + (hi - lo) / 2], z = a[hi];
        const float pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        ptrdiff_t i = lo, j = hi;
        while (i <= j) { /* the pivot is in [lo, hi]: both scans stop inside it */
            while (a[i] < pivot)
                i++;
            while (a[j] > pivot)
                j--;
            if (i <= j) {
                const float t = a[i];
                a[i++] = a[j];
                a[j--] = t;
            }
        }
        /* a[lo .. j] <= pivot <= a[i .. hi], and anything between equals the pivot */
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return a[k];
    }
    return a[k];
}

int lf_ink(const float *gray, const float *paper, float level, int h, int w, int dark, float min_paper,
           double sigmas, double min_contrast, float *ink, float *scratch, double *contrast, double *floor)
{
    const size_t count = (size_t)h * w;
    float strongest = -INFINITY;
    for (size_t i = 0; i < count; i++) {
        const float p = paper ? paper[i] : level;
        const float v = dark ? (p - gray[i]) / (p > min_paper ? p : min_paper) : gray[i] - p;
        ink[i] = v;
        strongest = v > strongest ? v : strongest;
    }
    ptrdiff_t n = 0;
    for (int y = 0; y < h; y += 2)
        for (int x = 0; x < w; x += 2)
            scratch[n++] = ink[(size_t)y * w + x];
    const float middle = lf_select_rank(scratch, n, n / 2);
    for (ptrdiff_t i = 0; i < n; i++)
        scratch[i] = fabsf(scratch[i] - middle);
    const double sigma = 1.4826 * (double)lf_select_rank(scratch, n, n / 2);
    *floor = (double)middle + sigmas * sigma;
    *contrast = (double)strongest - *floor;
    if (*contrast < (min_contrast > sigmas * sigma ? min_contrast : sigmas * sigma))
        return 0;
    const float f = (float)*floor;
    for (size_t i = 0; i < count; i++) {
        const float v = ink[i] - f;
        ink[i] = v > 0.0f ? v : 0.0f;
    }
    return 1;
}
