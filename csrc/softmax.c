/*
 * softmax.c: softmax and log-softmax over the rows of an (n, k) array, the max subtracted first so that
 * no exponential overflows. sign = -1 gives the softmax of -x: the probabilities of an RBF head, whose
 * smallest distance is the likeliest class.
 */
#include <math.h>
#include "ops.h"

void LF_ISA(softmax)(const float *x, int n, int k, float sign, int log, float *y)
{
#pragma omp parallel for schedule(static) if (n >= 4096)
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * k;
        float *yi = y + (size_t)i * k;
        float m = sign * xi[0];
        for (int j = 1; j < k; j++)
            m = fmaxf(m, sign * xi[j]);
        double s = 0.0; /* k terms of at most 1 each: double keeps the sum exact enough for any k */
        for (int j = 0; j < k; j++)
            s += expf(sign * xi[j] - m);
        if (log) {
            const float ls = (float)logf((float)s);
            for (int j = 0; j < k; j++)
                yi[j] = sign * xi[j] - m - ls;
        } else {
            const float inv = (float)(1.0 / s);
            for (int j = 0; j < k; j++)
                yi[j] = expf(sign * xi[j] - m) * inv;
        }
    }
}
