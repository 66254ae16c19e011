/*
 * loss.c: the training losses on a block's outputs, and their gradients with respect to the outputs.
 *
 *  - MAP criterion (RBF head, distances y): E = y_D + log(exp(-j) + sum_i exp(-y_i)), the paper's eq. 9;
 *    dE/dy_i = [i = D] - exp(-y_i) / (exp(-j) + sum_l exp(-y_l)).
 *  - plain RBF: E = y_D; dE/dy_i = [i = D].
 *  - cross-entropy (logits z): E = log sum_i exp(z_i) - z_D; dE/dz_i = p_i - [i = D], p the softmax.
 * Per image in double (ten outputs: cheap), the log-sum-exps shifted by their largest exponent so that
 * huge distances or logits give finite values.
 */
#include <math.h>
#include "kernels.h"

void LF_ISA(loss_block)(const lf_loss *loss, const float *y, const lf_geom *g, const int64_t *labels, int count,
                        float scale, int second, float *dy, float *losses)
{
    const int k = g->c;
    const ptrdiff_t cs = g->cs;
    for (int b = 0; b < g->lanes; b++) {
        if (b >= count) { /* an unused lane of a partly filled block: it must add nothing */
            for (int i = 0; i < k; i++)
                dy[i * cs + b] = 0.0f;
            continue;
        }
        const int64_t label = labels[b];
        const float *v = y + b;
        double e = 0.0;
        switch (loss->kind) {
        case LF_LOSS_MAP: {
            double m = loss->j;
            for (int i = 0; i < k; i++)
                m = v[i * cs] < m ? v[i * cs] : m;
            double s = exp(m - loss->j);
            for (int i = 0; i < k; i++)
                s += exp(m - v[i * cs]);
            e = v[label * cs] - m + log(s);
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
            e = log(s) - (v[label * cs] - m);
            for (int i = 0; i < k; i++) {
                const double p = exp(v[i * cs] - m) / s;
                dy[i * cs + b] = (float)(scale * (second ? p * (1.0 - p) : p - (i == label)));
            }
            break;
        }
        }
        losses[b] = (float)e;
    }
}
