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
#include <stdint.h>
#include <string.h>
#include "lenet_fast.h"
#include "select_rank.h"

/* Hoare's selection with a median-of-three pivot, on a[lo .. hi]: what a range too short for another
 * histogram pass is left to. */
static float hoare(float *a, ptrdiff_t lo, ptrdiff_t hi, ptrdiff_t k)
{
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

/* A float's bits turned into an unsigned key in the floats' order (negatives' bits flipped, positives'
 * sign bit set): equal floats get equal keys but for -0 before +0, which compare equal, so the value
 * selected is the one a comparison sort puts at rank k. */
static inline uint32_t sort_key(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u ^ ((uint32_t)-(int32_t)(u >> 31) | 0x80000000u);
}

/* The three digits of a key, most significant first: (shift, width). */
static const int DIGITS[3][2] = {{21, 11}, {10, 11}, {0, 10}};
enum {
    SHORT = 48, /* candidates left to Hoare's selection: fewer than a histogram's worth */
    COUNTS = 4, /* histograms counted side by side */
    LANES = 8   /* running maxima of a loop that vectorizes */
};

/* select_rank.h. A radix selection on the keys, 11 bits at a time: a histogram of the candidates' digit, the
 * bin holding rank k found from its counts, and that bin's elements swapped to the candidates' front (a
 * stays a permutation of itself: callers select several ranks of one array) to be the next digit's
 * candidates. O(n) whatever the values, where a pivot's comparisons mispredict on every other element. */
float lf_select_rank(float *a, ptrdiff_t n, ptrdiff_t k)
{
    ptrdiff_t len = n; /* the candidates: a[0 .. len), the one sought of rank k among them */
    for (int d = 0; d < 3 && len > SHORT; d++) {
        const int shift = DIGITS[d][0];
        const uint32_t mask = (1u << DIGITS[d][1]) - 1;
        /* COUNTS histograms, one per element in turn: a run of elements in one bin (an ink map's many
         * values near 0) then does not wait on each increment's store */
        uint32_t count[COUNTS][1 << 11];
        memset(count, 0, sizeof count);
        ptrdiff_t i = 0;
        for (; i + COUNTS <= len; i += COUNTS)
            for (int c = 0; c < COUNTS; c++)
                count[c][sort_key(a[i + c]) >> shift & mask]++;
        for (; i < len; i++)
            count[0][sort_key(a[i]) >> shift & mask]++;
        for (int c = 1; c < COUNTS; c++)
            for (uint32_t b = 0; b <= mask; b++)
                count[0][b] += count[c][b];
        uint32_t bin = 0;
        ptrdiff_t before = 0; /* candidates in the bins below k's */
        while (before + (ptrdiff_t)count[0][bin] <= k)
            before += count[0][bin++];
        if ((ptrdiff_t)count[0][bin] == len)
            continue; /* all in one bin: nothing to move */
        ptrdiff_t j = 0;
        for (ptrdiff_t i = 0; i < len; i++) {
            /* Lomuto's partition without a branch: a[0 .. j) are in the bin, a[j .. i) are not; a[i] is
             * swapped with a[j] whatever it is, and j moves past it only if it is in the bin */
            const float x = a[i];
            a[i] = a[j];
            a[j] = x;
            j += (sort_key(x) >> shift & mask) == bin;
        }
        k -= before;
        len = count[0][bin];
    }
    /* after the three digits, every candidate has k's key: hoare returns at once */
    return hoare(a, 0, len - 1, k);
}

int lf_ink(const float *restrict gray, const float *restrict paper, float level, int h, int w, int dark,
           float min_paper, double sigmas, double min_contrast, float *restrict ink, float *scratch, double *contrast,
           double *floor)
{
    const size_t count = (size_t)h * w;
    /* one loop per case, each vectorized, then the maximum in LANES running maxima (the order of a maximum
     * of finite floats does not matter) */
    if (paper && dark)
        for (size_t i = 0; i < count; i++)
            ink[i] = (paper[i] - gray[i]) / (paper[i] > min_paper ? paper[i] : min_paper);
    else if (paper)
        for (size_t i = 0; i < count; i++)
            ink[i] = gray[i] - paper[i];
    else if (dark)
        for (size_t i = 0; i < count; i++)
            ink[i] = (level - gray[i]) / (level > min_paper ? level : min_paper);
    else
        for (size_t i = 0; i < count; i++)
            ink[i] = gray[i] - level;
    float most[LANES];
    for (int j = 0; j < LANES; j++)
        most[j] = -INFINITY;
    size_t i = 0;
    for (; i + LANES <= count; i += LANES)
        for (int j = 0; j < LANES; j++)
            most[j] = ink[i + j] > most[j] ? ink[i + j] : most[j];
    float strongest = -INFINITY;
    for (; i < count; i++)
        strongest = ink[i] > strongest ? ink[i] : strongest;
    for (int j = 0; j < LANES; j++)
        strongest = most[j] > strongest ? most[j] : strongest;
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
