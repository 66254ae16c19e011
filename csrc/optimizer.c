/*
 * optimizer.c: parameter updates over the flat parameter vector, elementwise (so the same for any thread
 * count). Plain loops that the compiler vectorizes; a step touches each parameter once.
 *  - SGD with momentum and weight decay (PyTorch's convention): d = g + wd w; v = mu v + d; w -= lr v.
 *  - Adam (Kingma and Ba, with weight decay added to the gradient): m and v the moment estimates, bias
 *    corrected by 1 - beta^t.
 *  - SDLM: w -= step g, each parameter's step epsilon / (mu + h) computed once per pass.
 */
#include <math.h>
#include "ops.h"

void LF_ISA(update)(lf_optimizer *opt, float *restrict w, const float *restrict g, size_t n)
{
    switch (opt->kind) {
    case LF_OPT_SGD: {
        const float lr = opt->lr, mu = opt->momentum, wd = opt->weight_decay;
        float *restrict v = opt->m;
        for (size_t i = 0; i < n; i++) {
            v[i] = mu * v[i] + (g[i] + wd * w[i]);
            w[i] -= lr * v[i];
        }
        break;
    }
    case LF_OPT_ADAM: {
        opt->t++;
        const float b1 = opt->beta1, b2 = opt->beta2, lr = opt->lr, wd = opt->weight_decay, eps = opt->eps;
        const float c1 = (float)(1.0 - pow(b1, (double)opt->t)), c2 = (float)(1.0 - pow(b2, (double)opt->t));
        float *restrict m = opt->m, *restrict v = opt->v;
        for (size_t i = 0; i < n; i++) {
            const float d = g[i] + wd * w[i];
            m[i] = b1 * m[i] + (1.0f - b1) * d;
            v[i] = b2 * v[i] + (1.0f - b2) * (d * d);
            w[i] -= lr * (m[i] / c1) / (sqrtf(v[i] / c2) + eps);
        }
        break;
    }
    case LF_OPT_SDLM: {
        const float *restrict step = opt->step;
        for (size_t i = 0; i < n; i++)
            w[i] -= step[i] * g[i];
        break;
    }
    }
}
