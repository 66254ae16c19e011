/*
 * loss.c: the training losses on a block's outputs, and their gradients with respect to the outputs.
 *
 *  - MAP criterion (RBF head, distances y): E = y_D + log(exp(-j) + sum_i exp(-y_i)), the paper's eq. 9;
 *    dE/dy_i = [i = D] - exp(-y_i) / (exp(-j) + sum_l exp(-y_l)). Label -1 (not a digit) makes the
 *    rubbish class the desired one, at its own distance J (reject_j): E = J + log(exp(-J) + sum_i exp(-y_i)),
 *    dE/dy_i = -exp(-y_i) / (exp(-J) + sum_l exp(-y_l)), so every distance is pushed above J.
 *  - plain RBF: E = y_D; dE/dy_i = [i = D].
 *  - cross-entropy (logits z): E = log sum_i exp(z_i) - z_D; dE/dz_i = p_i - [i = D], p the softmax.
 *    Label -1 (not a digit): the target is uniform (outlier exposure), E = log sum_i exp(z_i) - mean_i z_i,
 *    dE/dz_i = p_i - 1/K; the second derivatives p_i (1 - p_i) as for a digit.
 * Label -1 reaches only these two (the Cython layer refuses it with the others, where it means nothing).
 *  - linear (any output shape): E = sum_i y_i G_i for the caller's G; dE/dy = G, second derivatives 0.
 *  - multiclass hinge (Weston-Watkins) on scores s = sign y: E = sum_{i != D} max(0, s_i - s_D + 1);
 *    dE/ds_i = [s_i - s_D + 1 > 0] for i != D, dE/ds_D = -(the number of those), the kink's side taken as
 *    0; dy = sign ds. Piecewise linear: second derivatives 0 (the Cython layer refuses SDLM with it).
 * Per image in double (ten outputs: cheap), the log-sum-exps shifted by their largest exponent so that
 * huge distances or logits give finite values.
 * losses() gives the same per-image losses from outputs already computed (evaluation: one forward pass, no
 * backward), through loss_block, so that they equal training's to the bit.
 */
#include <math.h>
#include "ops.h"

/* The linear loss of one image (lane b) and dy = scale * G; G's rows are dense, y's and dy's by g. */
static double linear_loss(const float *G, const float *y, const lf_geom *g, int b, float scale, int second,
                          float *dy)
{
    double e = 0.0;
    for (int c = 0; c < g->c; c++)
        for (int r = 0; r < g->h; r++)
            for (int x = 0; x < g->w; x++) {
                const ptrdiff_t at = c * g->cs + r * g->rs + (ptrdiff_t)x * g->lanes + b;
                const float d = G[((size_t)c * g->h + r) * g->w + x];
                e += (double)y[at] * d;
                dy[at] = second ? 0.0f : scale * d;
            }
    return e;
}

void LF_ISA(loss_block)(const lf_loss *loss, const float *y, const lf_geom *g, const int64_t *labels,
                        size_t first, int count, float scale, int second, float *dy, float *losses)
{
    const int k = g->c;
    const ptrdiff_t cs = g->cs;
    const size_t image = (size_t)g->c * g->h * g->w;
    for (int b = 0; b < g->lanes; b++) {
        if (b >= count) { /* an unused lane of a partly filled block: it must add nothing */
            for (int i = 0; i < g->c; i++)
                for (int r = 0; r < g->h; r++)
                    for (int x = 0; x < g->w; x++)
                        dy[i * cs + r * g->rs + (ptrdiff_t)x * g->lanes + b] = 0.0f;
            continue;
        }
        if (loss->kind == LF_LOSS_LINEAR) {
            losses[first + b] = (float)linear_loss(loss->dout + (first + b) * image, y, g, b, scale, second, dy);
            continue;
        }
        const int64_t label = labels[first + b];
        const float *v = y + b;
        double e = 0.0;
        switch (loss->kind) {
        case LF_LOSS_MAP: {
            const double j = label >= 0 ? loss->j : loss->reject_j;
            double m = j;
            for (int i = 0; i < k; i++)
                m = v[i * cs] < m ? v[i * cs] : m;
            double s = exp(m - j);
            for (int i = 0; i < k; i++)
                s += exp(m - v[i * cs]);
            e = (label >= 0 ? v[label * cs] : j) - m + log(s);
            for (int i = 0; i < k; i++)
                dy[i * cs + b] = second ? 0.0f : (float)(scale * ((i == label) - exp(m - v[i * cs]) / s));
            break;
        }
        case LF_LOSS_RBF:
            e = v[label * cs];
            for (int i = 0; i < k; i++)
                dy[i * cs + b] = second ? 0.0f : (float)(scale * (i == label));
            break;
        case LF_LOSS_XENT: {
            double m = v[0];
            for (int i = 1; i < k; i++)
                m = v[i * cs] > m ? v[i * cs] : m;
            double s = 0.0;
            for (int i = 0; i < k; i++)
                s += exp(v[i * cs] - m);
            double target = 0.0; /* z_D - m; for label -1 the mean of z_i - m */
            if (label >= 0)
                target = v[label * cs] - m;
            else
                for (int i = 0; i < k; i++)
                    target += (v[i * cs] - m) / k;
            e = log(s) - target;
            for (int i = 0; i < k; i++) {
                const double p = exp(v[i * cs] - m) / s;
                const double want = label >= 0 ? (double)(i == label) : 1.0 / k;
                dy[i * cs + b] = (float)(scale * (second ? p * (1.0 - p) : p - want));
            }
            break;
        }
        case LF_LOSS_HINGE: {
            const double sd = loss->sign * v[label * cs];
            int active = 0;
            for (int i = 0; i < k; i++) {
                const double margin = loss->sign * v[i * cs] - sd + 1.0;
                const int on = i != label && margin > 0.0;
                e += on ? margin : 0.0;
                active += on;
                dy[i * cs + b] = second ? 0.0f : (float)(scale * loss->sign * on);
            }
            dy[label * cs + b] = second ? 0.0f : (float)(-scale * loss->sign * active);
            break;
        }
        case LF_LOSS_LINEAR: /* above */
            break;
        }
        losses[first + b] = (float)e;
    }
}

int LF_ISA(losses)(const lf_loss *loss, const float *out, int n, int k, const int64_t *labels, float *losses)
{
    float *dy = lf_workspace((size_t)k); /* loss_block's gradient, unused here */
    if (!dy)
        return -1;
    lf_geom g;
    lf_dense_geom(&g, k, 1, 1, 1);
    for (int i = 0; i < n; i++)
        LF_ISA(loss_block)(loss, out + (size_t)i * k, &g, labels, (size_t)i, 1, 1.0f, 0, dy, losses);
    return 0;
}
