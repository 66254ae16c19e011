/*
 * read_digit.c: a gray picture to its 28x28 MNIST form (lenet_fast.h: lf_read_digit), read_digit's steps 2-8
 * as lenet_fast/images.py's module docstring states them, in one call that holds no lock, so that threads
 * read pictures side by side. lenet_fast/reference.py's read_digit is the same steps in NumPy, the oracle
 * tests/kernels/test_pictures.py holds this file to.
 *
 * Wherever a result can turn on the last bit of a float32 (a comparison, the noise floor's medians), the
 * arithmetic is the NumPy steps' own: float32 per pixel, and float32 sums in NumPy's pairwise order
 * (pairwise below). The resampling to the 20-pixel box is in double, as NumPy's matrix products are, but in
 * another order, so a pixel may round to the next level (the test allows that much).
 *
 * Every buffer is carved from the caller's workspace by a layout function that the _workspace functions
 * run on no memory, so that the size and the use cannot disagree.
 */
#include <math.h>
#include <string.h>
#include "lenet_fast.h"
#include "select_rank.h"

/* A workspace being carved: with base NULL, only the bytes are counted. */
typedef struct {
    char *base;
    size_t used;
} arena;

static void *take(arena *a, size_t count, size_t size)
{
    const size_t at = (a->used + 15) & ~(size_t)15;
    a->used = at + count * size;
    return a->base ? a->base + at : NULL;
}

enum { LANES = 8 }; /* running maxima of a loop that vectorizes */

static int larger(int a, int b)
{
    return a > b ? a : b;
}

/* The sum of a[0], a[stride], ... (n terms) as NumPy's float32 add.reduce makes it over a contiguous run
 * (numpy's pairwise_sum): sequential under 8 terms, 8 interleaved partial sums up to 128, else the two
 * halves (a multiple of 8 first) summed apart. */
static float pairwise(const float *a, ptrdiff_t n, ptrdiff_t stride)
{
    if (n < 8) {
        float s = 0.0f;
        for (ptrdiff_t i = 0; i < n; i++)
            s += a[i * stride];
        return s;
    }
    if (n <= 128) {
        float r[8];
        for (int j = 0; j < 8; j++)
            r[j] = a[j * stride];
        ptrdiff_t i = 8;
        for (; i < n - n % 8; i += 8)
            for (int j = 0; j < 8; j++)
                r[j] += a[(i + j) * stride];
        float s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++)
            s += a[i * stride];
        return s;
    }
    ptrdiff_t half = n / 2;
    half -= half % 8;
    return pairwise(a, half, stride) + pairwise(a + half * stride, n - half, stride);
}

/* ---- step 2: block averaging ------------------------------------------------------------------------- */

/* The factor that brings the longer side of (h, w) to at most size (images._shrink). */
static int shrink_factor(int h, int w, int size)
{
    return (larger(h, w) + size - 1) / size;
}

/* out (h / f, w / f) = the means of gray's whole f x f blocks (the last partial ones dropped): each block's
 * rows summed in order into row (w / f * f floats), then each block's f sums pairwise, as images._shrink's
 * two sums run. */
static void shrink(const float *gray, int h, int w, int f, float *out, float *row)
{
    const int oh = h / f, ow = w / f, span = ow * f;
    const float cells = (float)(f * f);
    for (int y = 0; y < oh; y++) {
        const float *in = gray + (size_t)y * f * w;
        memcpy(row, in, span * sizeof *row);
        for (int j = 1; j < f; j++)
            for (int x = 0; x < span; x++)
                row[x] += in[(size_t)j * w + x];
        for (int x = 0; x < ow; x++)
            out[(size_t)y * ow + x] = pairwise(row + (size_t)x * f, f, 1) / cells;
    }
}

/* ---- step 3: the paper -------------------------------------------------------------------------------- */

typedef struct {
    int halved, k, sh, sw;   /* halved: 2x2 means first, of (sh, sw); k: the window */
    float *small, *small_paper, *scratch;
} paper_plan;

static void paper_layout(arena *a, int h, int w, const lf_picture_params *p, paper_plan *q)
{
    q->halved = h >= 2 * p->min_window && w >= 2 * p->min_window;
    q->sh = q->halved ? h / 2 : h;
    q->sw = q->halved ? w / 2 : w;
    const int floor_k = q->halved ? p->min_window / 2 : p->min_window;
    q->k = larger(floor_k, larger(q->sh, q->sw) / p->light_window) | 1;
    q->small = q->halved ? take(a, (size_t)q->sh * q->sw, sizeof(float)) : NULL;
    q->small_paper = q->halved ? take(a, (size_t)q->sh * q->sw, sizeof(float)) : NULL;
    q->scratch = take(a, lf_morphology_scratch(q->sh, q->sw, q->k), sizeof(float));
}

size_t lf_paper_workspace(int h, int w, const lf_picture_params *p)
{
    arena a = {NULL, 0};
    paper_plan q;
    paper_layout(&a, h, w, p, &q);
    return a.used;
}

void lf_paper(const float *gray, int h, int w, int dark, const lf_picture_params *p, float *paper, void *workspace)
{
    arena a = {workspace, 0};
    paper_plan q;
    paper_layout(&a, h, w, p, &q);
    if (!q.halved) {
        lf_morphology(gray, h, w, q.k, dark, paper, q.scratch);
        return;
    }
    for (int y = 0; y < q.sh; y++) {
        const float *top = gray + (size_t)2 * y * w, *bottom = top + w;
        float *s = q.small + (size_t)y * q.sw;
        for (int x = 0; x < q.sw; x++)  /* images._paper's order: down the left column, then the right */
            s[x] = (((top[2 * x] + bottom[2 * x]) + top[2 * x + 1]) + bottom[2 * x + 1]) * 0.25f;
    }
    lf_morphology(q.small, q.sh, q.sw, q.k, dark, q.small_paper, q.scratch);
    /* each pixel repeated 2x2; an odd last row or column repeats its neighbour */
    for (int y = 0; y < h; y++) {
        const float *s = q.small_paper + (size_t)(y / 2 < q.sh ? y / 2 : q.sh - 1) * q.sw;
        float *out = paper + (size_t)y * w;
        for (int x = 0; x < q.sw; x++)
            out[2 * x] = out[2 * x + 1] = s[x];
        if (w % 2)
            out[w - 1] = s[q.sw - 1];
    }
}

/* ---- steps 3-4: polarity and ink ---------------------------------------------------------------------- */

typedef struct {
    int f, ch, cw, k;        /* the coarse picture: factor, shape; the closing's window */
    float *border, *coarse, *row, *closing, *opening, *morph, *diffs, *paper, *scratch;
    void *paper_ws;
} ink_plan;

static void ink_layout(arena *a, int h, int w, const lf_picture_params *p, ink_plan *q)
{
    q->border = take(a, 2 * (size_t)h + 2 * (size_t)w, sizeof(float));
    q->f = shrink_factor(h, w, p->polarity_size);
    q->ch = h / q->f;
    q->cw = w / q->f;
    q->k = larger(3, larger(q->ch, q->cw) / 2 | 1);
    q->coarse = q->f > 1 ? take(a, (size_t)q->ch * q->cw, sizeof(float)) : NULL;
    q->row = q->f > 1 ? take(a, (size_t)q->cw * q->f, sizeof(float)) : NULL;
    q->closing = take(a, (size_t)q->ch * q->cw, sizeof(float));
    q->opening = take(a, (size_t)q->ch * q->cw, sizeof(float));
    q->morph = take(a, lf_morphology_scratch(q->ch, q->cw, q->k), sizeof(float));
    q->diffs = take(a, (size_t)q->ch * q->cw, sizeof(float));
    q->paper = take(a, (size_t)h * w, sizeof(float));
    q->scratch = take(a, (size_t)((h + 1) / 2) * ((w + 1) / 2), sizeof(float));
    q->paper_ws = take(a, lf_paper_workspace(h, w, p), 1);
}

/* images._variation in NumPy's order: the float32 sum (pairwise) of the absolute differences down the
 * columns, plus that across the rows, each first written out as np.diff writes them. */
static float variation(const float *a, int h, int w, float *diffs)
{
    size_t n = 0;
    for (int y = 0; y + 1 < h; y++)
        for (int x = 0; x < w; x++, n++)
            diffs[n] = fabsf(a[(size_t)(y + 1) * w + x] - a[(size_t)y * w + x]);
    const float down = pairwise(diffs, (ptrdiff_t)n, 1);
    n = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x + 1 < w; x++, n++)
            diffs[n] = fabsf(a[(size_t)y * w + x + 1] - a[(size_t)y * w + x]);
    return down + pairwise(diffs, (ptrdiff_t)n, 1);
}

size_t lf_picture_ink_workspace(int h, int w, const lf_picture_params *p)
{
    arena a = {NULL, 0};
    ink_plan q;
    ink_layout(&a, h, w, p, &q);
    return a.used;
}

int lf_picture_ink(const float *gray, int h, int w, const lf_picture_params *p, float *ink, void *workspace,
                   double *contrast, double *floor)
{
    arena a = {workspace, 0};
    ink_plan q;
    ink_layout(&a, h, w, p, &q);
    const ptrdiff_t n = 2 * (ptrdiff_t)h + 2 * (ptrdiff_t)w;  /* the outermost rows and columns, corners twice */
    memcpy(q.border, gray, w * sizeof(float));
    memcpy(q.border + w, gray + (size_t)(h - 1) * w, w * sizeof(float));
    for (int y = 0; y < h; y++) {
        q.border[2 * w + y] = gray[(size_t)y * w];
        q.border[2 * w + h + y] = gray[(size_t)y * w + w - 1];
    }
    const float low = lf_select_rank(q.border, n, n / 10), high = lf_select_rank(q.border, n, n * 9 / 10);
    int dark, even = high - low <= p->flat_paper;
    float level = 0.0f;
    if (even) {
        /* one level, the border's median (n is even: the mean of the middle two, as np.median), and the ink
         * whatever side of it the mean lies on (np.mean's: the float32 pairwise sum, divided by the count in
         * double and rounded back to float32) */
        level = (lf_select_rank(q.border, n, n / 2 - 1) + lf_select_rank(q.border, n, n / 2)) / 2.0f;
        dark = (float)((double)pairwise(gray, (ptrdiff_t)h * w, 1) / ((double)h * w)) < level;
    } else if (q.ch == 0 || q.cw == 0) {
        dark = 1; /* a strip thinner than the coarse blocks: no evidence either way, the tie's answer */
    } else {
        const float *coarse = gray;
        if (q.f > 1) {
            shrink(gray, h, w, q.f, q.coarse, q.row);
            coarse = q.coarse;
        }
        lf_morphology(coarse, q.ch, q.cw, q.k, 1, q.closing, q.morph);
        lf_morphology(coarse, q.ch, q.cw, q.k, 0, q.opening, q.morph);
        dark = variation(q.closing, q.ch, q.cw, q.diffs) <= variation(q.opening, q.ch, q.cw, q.diffs);
    }
    /* the other polarity when nothing stands out: a vignette or a digit near the edge can mislead either rule */
    for (int attempt = 0; attempt < 2; attempt++) {
        const int d = attempt ? !dark : dark;
        if (!even)
            lf_paper(gray, h, w, d, p, q.paper, q.paper_ws);
        if (lf_ink(gray, even ? NULL : q.paper, level, h, w, d, p->min_paper, p->noise_sigmas, p->min_contrast, ink,
                   q.scratch, contrast, floor))
            return 1;
    }
    return 0;
}

/* ---- steps 6-8: the MNIST form ------------------------------------------------------------------------ */

typedef struct {
    double *row_most;    /* each row's strongest ink */
    double *rows, *box;  /* the crop resampled down its columns (box x w), then across (box x box) */
} form_plan;

static void form_layout(arena *a, int h, int w, const lf_picture_params *p, form_plan *q)
{
    q->row_most = take(a, h, sizeof(double));
    q->rows = take(a, (size_t)p->box * w, sizeof(double));
    q->box = take(a, (size_t)p->box * p->box, sizeof(double));
}

size_t lf_mnist_form_workspace(int h, int w, const lf_picture_params *p)
{
    arena a = {NULL, 0};
    form_plan q;
    form_layout(&a, h, w, p, &q);
    return a.used;
}

/* The weight of input pixel i in output pixel o when n_in pixels are area-resampled to n_out
 * (images._area_weights, the same expressions): the length of [i, i + 1) inside o's footprint
 * [o, o + 1) * n_in / n_out, times n_out / n_in. */
static double area_weight(int o, int i, int n_in, int n_out)
{
    const double step = (double)n_in / n_out, lo = o * step, hi = (o + 1) * step;
    const double overlap = (hi < i + 1.0 ? hi : i + 1.0) - (lo > i ? lo : (double)i);
    return (overlap > 0.0 ? overlap : 0.0) * ((double)n_out / n_in);
}

/* The input pixels output pixel o's footprint touches: [*first, *last]. */
static void footprint(int o, int n_in, int n_out, int *first, int *last)
{
    const double step = (double)n_in / n_out;
    *first = (int)floor(o * step);
    *last = (int)ceil((o + 1) * step) - 1;
    *first = *first < n_in - 1 ? *first : n_in - 1;
    *last = *last < n_in - 1 ? *last : n_in - 1;
}

/* Where a box of this length starts so that its centre of mass lands on the centre, rounded half up, kept
 * inside the field (images._offset). */
static int offset(double centre_of_mass, int length, const lf_picture_params *p)
{
    const int at = (int)floor(p->centre - centre_of_mass + 0.5);
    return at < 0 ? 0 : at > p->size - length ? p->size - length : at;
}

void lf_mnist_form(const double *ink, int h, int w, const lf_picture_params *p, uint8_t *digit, void *workspace)
{
    arena a = {workspace, 0};
    form_plan q;
    form_layout(&a, h, w, p, &q);
    /* each row's strongest ink (in LANES running maxima, so that the loop vectorizes: the order of a maximum
     * of finite values does not matter), and the picture's */
    double strongest = 0.0;
    for (int y = 0; y < h; y++) {
        const double *in = ink + (size_t)y * w;
        double most[LANES] = {0.0};
        int x = 0;
        for (; x + LANES <= w; x += LANES)
            for (int j = 0; j < LANES; j++)
                most[j] = in[x + j] > most[j] ? in[x + j] : most[j];
        double row = 0.0;
        for (; x < w; x++)
            row = in[x] > row ? in[x] : row;
        for (int j = 0; j < LANES; j++)
            row = most[j] > row ? most[j] : row;
        q.row_most[y] = row;
        strongest = row > strongest ? row : strongest;
    }
    /* step 6: the bounding box of the strong ink: its rows are those whose strongest is strong enough, its
     * columns found from each such row's ends */
    const double strong = p->ink_threshold * strongest;
    int top = h, left = w, bottom = -1, right = -1;
    for (int y = 0; y < h; y++) {
        if (q.row_most[y] < strong)
            continue;
        const double *in = ink + (size_t)y * w;
        top = y < top ? y : top;
        bottom = y;
        int x = 0;
        while (in[x] < strong)
            x++;
        left = x < left ? x : left;
        x = w - 1;
        while (in[x] < strong)
            x--;
        right = x > right ? x : right;
    }
    const int ch = bottom - top + 1, cw = right - left + 1;
    const double scale = (double)p->box / larger(ch, cw);
    const int bh = larger(1, (int)(ch * scale + 0.5)), bw = larger(1, (int)(cw * scale + 0.5));
    /* step 7: area resampling, down the columns, then across the rows */
    for (int o = 0; o < bh; o++) {
        double *r = q.rows + (size_t)o * cw;
        int first, last;
        footprint(o, ch, bh, &first, &last);
        for (int x = 0; x < cw; x++)
            r[x] = 0.0;
        for (int y = first; y <= last; y++) {
            const double wt = area_weight(o, y, ch, bh);
            const double *in = ink + (size_t)(top + y) * w + left;
            for (int x = 0; x < cw; x++)
                r[x] += wt * in[x];
        }
    }
    double most = 0.0;
    for (int o = 0; o < bh; o++)
        for (int c = 0; c < bw; c++) {
            int first, last;
            footprint(c, cw, bw, &first, &last);
            double s = 0.0;
            for (int x = first; x <= last; x++)
                s += q.rows[(size_t)o * cw + x] * area_weight(c, x, cw, bw);
            q.box[(size_t)o * bw + c] = s;
            most = s > most ? s : most;
        }
    /* the levels stretched so that the strongest is 1 */
    for (int i = 0; i < bh * bw; i++)
        q.box[i] /= most;
    /* step 8: the centre of mass, from the row sums (the column sums), weighed in long double: a digit whose
     * rows are alike (a drawn bar) has its centre exactly on a half pixel, and must round half up there, as
     * step 8 says, not by the last bit its sums happened to lose (the products and the short sums are then
     * exact) */
    long double rows = 0.0L, down = 0.0L, cols = 0.0L, across = 0.0L;
    for (int o = 0; o < bh; o++) {
        double sum = 0.0;
        for (int c = 0; c < bw; c++)
            sum += q.box[(size_t)o * bw + c];
        rows += sum;
        down += (long double)sum * o;
    }
    for (int c = 0; c < bw; c++) {
        double sum = 0.0;
        for (int o = 0; o < bh; o++)
            sum += q.box[(size_t)o * bw + c];
        cols += sum;
        across += (long double)sum * c;
    }
    const int y0 = offset((double)(down / rows), bh, p), x0 = offset((double)(across / cols), bw, p);
    memset(digit, 0, (size_t)p->size * p->size);
    for (int o = 0; o < bh; o++)
        for (int c = 0; c < bw; c++)
            digit[(size_t)(y0 + o) * p->size + x0 + c] = (uint8_t)floor(q.box[(size_t)o * bw + c] * 255.0 + 0.5);
}

/* ---- the whole: steps 2-8 ----------------------------------------------------------------------------- */

typedef struct {
    int f, h, w;             /* the working picture: block factor, shape */
    float *work, *row, *ink, *peaks;
    uint8_t *mask, *keep;
    int32_t *labels, *parent, *boxes;
    double *sums, *form;
    void *ink_ws, *form_ws;
} digit_plan;

static void digit_layout(arena *a, int h, int w, const lf_picture_params *p, digit_plan *q)
{
    q->f = shrink_factor(h, w, p->work_size);
    q->h = h / q->f;
    q->w = w / q->f;
    const size_t n = (size_t)q->h * q->w;
    /* 8-connected components are at most one per 2x2 block */
    const size_t most = (size_t)((q->h + 1) / 2) * ((q->w + 1) / 2);
    q->work = q->f > 1 ? take(a, n, sizeof(float)) : NULL;
    q->row = q->f > 1 ? take(a, (size_t)q->w * q->f, sizeof(float)) : NULL;
    q->ink = take(a, n, sizeof(float));
    q->mask = take(a, n, 1);
    q->labels = take(a, n, sizeof(int32_t));
    q->parent = take(a, n + 1, sizeof(int32_t));
    q->boxes = take(a, 4 * most, sizeof(int32_t));
    q->sums = take(a, most, sizeof(double));
    q->peaks = take(a, most, sizeof(float));
    q->keep = take(a, most + 1, 1);
    q->form = take(a, n, sizeof(double));
    q->ink_ws = take(a, lf_picture_ink_workspace(q->h, q->w, p), 1);
    q->form_ws = take(a, lf_mnist_form_workspace(q->h, q->w, p), 1);
}

size_t lf_read_digit_workspace(int h, int w, const lf_picture_params *p)
{
    arena a = {NULL, 0};
    digit_plan q;
    digit_layout(&a, h, w, p, &q);
    return a.used;
}

/* Whether component c's box (inclusive bottom and right here) comes within reach of box m's. */
static int near(const int32_t *c, const int32_t *m, double reach)
{
    return c[0] <= m[2] - 1 + reach && c[2] - 1 >= m[0] - reach && c[1] <= m[3] - 1 + reach &&
           c[3] - 1 >= m[1] - reach;
}

int lf_read_digit(const float *gray, int h, int w, const lf_picture_params *p, uint8_t *digit, void *workspace,
                  lf_picture_result *result)
{
    arena a = {workspace, 0};
    digit_plan q;
    digit_layout(&a, h, w, p, &q);
    result->speck = 0;
    result->contrast = result->floor = 0.0;
    if (q.h == 0 || q.w == 0)  /* a sliver thinner than the block factor: no whole block, no digit */
        return result->status = LF_PICTURE_NO_INK;
    if (q.f > 1) {
        shrink(gray, h, w, q.f, q.work, q.row);
        gray = q.work;
    }
    const size_t n = (size_t)q.h * q.w;
    if (!lf_picture_ink(gray, q.h, q.w, p, q.ink, q.ink_ws, &result->contrast, &result->floor))
        return result->status = LF_PICTURE_NO_INK;
    /* step 5: the component holding the most ink, and the pieces of the digit near it */
    for (size_t i = 0; i < n; i++)
        q.mask[i] = q.ink[i] > 0.0f;
    const int32_t count = lf_components(q.mask, q.h, q.w, q.labels, q.parent);
    lf_component_stats(q.labels, q.h, q.w, count, q.ink, q.boxes, q.sums, q.peaks);
    int32_t largest = 0;
    for (int32_t c = 1; c < count; c++)
        largest = q.sums[c] > q.sums[largest] ? c : largest;
    const int32_t *m = q.boxes + 4 * (size_t)largest;
    const int size = larger(m[2] - m[0], m[3] - m[1]);
    if (size < p->min_size) {
        result->speck = size;
        return result->status = LF_PICTURE_SPECK;
    }
    q.keep[0] = 0;
    for (int32_t c = 0; c < count; c++) {
        const int32_t *b = q.boxes + 4 * (size_t)c;
        const int part =
            q.sums[c] >= p->part_share * q.sums[largest] || q.peaks[c] >= p->mark_peak * q.peaks[largest];
        q.keep[c + 1] = (near(b, m, p->part_reach * size) && part) || near(b, m, p->adjacent);
    }
    /* the kept ink, in the box around the kept components only: steps 6-8 see no ink outside it, and their
     * result does not depend on where the box lies (the workspace, sized for the whole, serves a part) */
    int32_t top = q.h, left = q.w, bottom = 0, right = 0;
    for (int32_t c = 0; c < count; c++)
        if (q.keep[c + 1]) {
            const int32_t *b = q.boxes + 4 * (size_t)c;
            top = b[0] < top ? b[0] : top;
            left = b[1] < left ? b[1] : left;
            bottom = b[2] > bottom ? b[2] : bottom;
            right = b[3] > right ? b[3] : right;
        }
    const int fw = right - left;
    for (int y = top; y < bottom; y++) {
        const float *in = q.ink + (size_t)y * q.w + left;
        const int32_t *label = q.labels + (size_t)y * q.w + left;
        double *out = q.form + (size_t)(y - top) * fw;
        for (int x = 0; x < fw; x++)  /* ink * 1 or * 0 (ink is finite, not negative): no branch */
            out[x] = (double)in[x] * q.keep[label[x]];
    }
    lf_mnist_form(q.form, bottom - top, fw, p, digit, q.form_ws);
    return result->status = LF_PICTURE_OK;
}
