/*
 * optimizer.c: parameter updates over the flat parameter vector, elementwise (so the same for any thread
 * count). Plain loops that the compiler vectorizes; a step touches each parameter once. PyTorch's forms;
 * d = g + wd w is the gradient with L2 weight decay (every optimizer but AdamW, whose decay is decoupled).
 *  - SGD: b = mu b + d; w -= lr b, or with Nesterov momentum w -= lr (d + mu b).
 *  - AdaGrad: s += d^2; w -= lr d / (sqrt(s) + eps).
 *  - RMSProp: v = alpha v + (1 - alpha) d^2; u = d / (sqrt(v) + eps); with momentum b = mu b + u,
 *    w -= lr b; without, w -= lr u.
 *  - Adam (Kingma and Ba): m and v the moment estimates, bias corrected by 1 - beta^t.
 *  - AdamW: w -= lr wd w, then Adam's step on g.
 *  - SDLM: w -= step g, each parameter's step epsilon / (mu + h) computed once per pass.
 */
#include <math.h>
#include "ops.h"

/* Adam's and AdamW's step; wd is added to the gradient (Adam) and decay shrinks the weights first
 * (AdamW: lr wd); one of the two is zero. */
static void adam(lf_optimizer *opt, float *restrict w, const float *restrict g, size_t n, float wd,
                 float decay)
{
    opt->t++;
    const float b1 = opt->beta1, b2 = opt->beta2, lr = opt->lr, eps = opt->eps;
    const float c1 = (float)(1.0 - pow(b1, (double)opt->t)), c2 = (float)(1.0 - pow(b2, (double)opt->t));
    float *restrict m = opt->m, *restrict v = opt->v;
    for (size_t i = 0; i < n; i++) {
        const float d = g[i] + wd * w[i];
        m[i] = b1 * m[i] + (1.0f - b1) * d;
        v[i] = b2 * v[i] + (1.0f - b2) * (d * d);
        w[i] = (w[i] - decay * w[i]) - lr * (m[i] / c1) / (sqrtf(v[i] / c2) + eps);
    }
}

void LF_ISA(update)(lf_optimizer *opt, float *restrict w, const float *restrict g, size_t n)
{
    const float lr = opt->lr, mu = opt->momentum, wd = opt->weight_decay, eps = opt->eps;
    switch (opt->kind) {
    case LF_OPT_SGD: {
        float *restrict b = opt->m;
        if (opt->nesterov) {
            for (size_t i = 0; i < n; i++) {
                const float d = g[i] + wd * w[i];
                b[i] = mu * b[i] + d;
                w[i] -= lr * (d + mu * b[i]);
            }
        } else {
            for (size_t i = 0; i < n; i++) {
                b[i] = mu * b[i] + (g[i] + wd * w[i]);
                w[i] -= lr * b[i];
            }
        }
        break;
    }
    case LF_OPT_ADAGRAD: {
        float *restrict s = opt->v;
        for (size_t i = 0; i < n; i++) {
            const float d = g[i] + wd * w[i];
            s[i] += d * d;
            w[i] -= lr * d / (sqrtf(s[i]) + eps);
        }
        break;
    }
    case LF_OPT_RMSPROP: {
        const float a = opt->alpha;
        float *restrict b = opt->m, *restrict v = opt->v;
        for (size_t i = 0; i < n; i++) {
            const float d = g[i] + wd * w[i];
            v[i] = a * v[i] + (1.0f - a) * (d * d);
            const float u = d / (sqrtf(v[i]) + eps);
            if (mu != 0.0f) {
                b[i] = mu * b[i] + u;
                w[i] -= lr * b[i];
            } else {
                w[i] -= lr * u;
            }
        }
        break;
    }
    case LF_OPT_ADAM:
        adam(opt, w, g, n, wd, 0.0f);
        break;
    case LF_OPT_ADAMW:
        adam(opt, w, g, n, 0.0f, lr * wd);
        break;
    case LF_OPT_SDLM: {
        const float *restrict step = opt->step;
        for (size_t i = 0; i < n; i++)
            w[i] -= step[i] * g[i];
        break;
    }
    }
}
