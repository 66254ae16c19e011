/*
 * activation.h: the activations, inlined into the kernels that fuse them (conv, subsample, full).
 *
 * tanh is a rational approximation fitted by tools/fit_tanh.py: tanh(x) ~= x P(x^2) / Q(x^2) on
 * [-LF_TANH_CLAMP, LF_TANH_CLAMP], where float32 tanh has already rounded to +-1. It is odd by
 * construction, exact at 0 and accurate to a few 1e-7 relative everywhere (tests/kernels/test_activation.py checks it
 * against numpy over the whole float range); libm's scalar tanhf would cost more than the convolutions.
 * ELU and the sigmoid go through simd.h's lf_expm1 and lf_exp. Every derivative is computed from the output y, which
 * training keeps (the input a is gone by then): each of these activations is monotonic, so y determines a.
 */
#ifndef LENET_FAST_ACTIVATION_H
#define LENET_FAST_ACTIVATION_H

#include "lenet_fast.h"
#include "paper_constants.h"
#include "simd.h"
#include "tanh_coefficients.h"

/* C[i] k s2^i: a coefficient of the polynomial in z = x^2 after the substitution x -> s x. A constant when
 * inlined with constant arguments. */
static inline __attribute__((always_inline)) float lf_scaled_coef(const float *C, int i, float s2, float k)
{
    float c = C[i] * k;
    for (int j = 0; j < i; j++)
        c *= s2;
    return c;
}

/* g tanh(s x), with s and g folded into the coefficients (s and g constants: no extra multiplies). */
static inline __attribute__((always_inline)) lf_vf lf_scaled_tanh(lf_vf x, float s, float g)
{
    const float s2 = s * s;
    const lf_vf c = lf_set1(LF_TANH_CLAMP / s);
    x = lf_max(-c, lf_min(c, x));
    const lf_vf z = x * x;
    lf_vf p = lf_set1(lf_scaled_coef(LF_TANH_P, LF_TANH_NP - 1, s2, g * s));
    lf_vf q = lf_set1(lf_scaled_coef(LF_TANH_Q, LF_TANH_NQ - 1, s2, 1.0f));
    for (int i = LF_TANH_NP - 2; i >= 0; i--)
        p = p * z + lf_set1(lf_scaled_coef(LF_TANH_P, i, s2, g * s));
    for (int i = LF_TANH_NQ - 2; i >= 0; i--)
        q = q * z + lf_set1(lf_scaled_coef(LF_TANH_Q, i, s2, 1.0f));
    /* The fit overshoots 1 slightly at the clamp, so that the output clamp gives exactly +-g there. */
    const lf_vf limit = lf_set1(g);
    return lf_max(-limit, lf_min(limit, x * (p / q)));
}

/* The activations that need exp, one vector at a time out of line: inlined, their polynomials change how
 * the compiler allocates registers in every kernel that fuses an activation, slowing the default ones. */
static __attribute__((noinline, unused)) lf_vf lf_elu(lf_vf v)
{
    return lf_select(v > lf_set1(0.0f), v, lf_set1(LF_ELU_ALPHA) * lf_expm1(v));
}

static __attribute__((noinline, unused)) lf_vf lf_sigmoid(lf_vf v)
{
    return lf_set1(1.0f) / (lf_set1(1.0f) + lf_exp(-v));
}

/* The activation of n vectors in place. The switch stands outside the loop, so that a kernel's tile of
 * accumulators becomes one straight run of independent arithmetic that the processor overlaps (a switch per
 * vector serialises the polynomial chains). */
static inline __attribute__((always_inline)) void lf_activate_all(lf_vf *v, int n, lf_act act)
{
    switch (act) {
    case LF_ACT_SQUASH:
        for (int i = 0; i < n; i++)
            v[i] = lf_scaled_tanh(v[i], LF_SQUASH_S, LF_SQUASH_A);
        break;
    case LF_ACT_TANH:
        for (int i = 0; i < n; i++)
            v[i] = lf_scaled_tanh(v[i], 1.0f, 1.0f);
        break;
    case LF_ACT_RELU:
        for (int i = 0; i < n; i++)
            v[i] = lf_max(lf_set1(0.0f), v[i]);
        break;
    case LF_ACT_LEAKY_RELU:
        for (int i = 0; i < n; i++)
            v[i] = lf_select(v[i] > lf_set1(0.0f), v[i], lf_set1(LF_LEAKY_SLOPE) * v[i]);
        break;
    case LF_ACT_ELU: /* alpha (exp(a) - 1) below 0; NaN fails the comparison and takes that branch, still NaN */
        for (int i = 0; i < n; i++)
            v[i] = lf_elu(v[i]);
        break;
    case LF_ACT_SIGMOID:
        for (int i = 0; i < n; i++)
            v[i] = lf_sigmoid(v[i]);
        break;
    case LF_ACT_NONE: break;
    }
}

static inline __attribute__((always_inline)) lf_vf lf_activate(lf_vf v, lf_act act)
{
    lf_activate_all(&v, 1, act);
    return v;
}

/* f'(a) from the output y = f(a), which training keeps: squash A tanh(S a) has f' = (S / A)(A^2 - y^2),
 * tanh 1 - y^2, ReLU 1 where y > 0 (0 at the kink), leaky ReLU 1 or the slope, ELU 1 or y + alpha (alpha
 * exp(a) = y + alpha), the sigmoid y (1 - y). */
static inline __attribute__((always_inline)) lf_vf lf_derivative(lf_vf y, lf_act act)
{
    switch (act) {
    case LF_ACT_SQUASH: {
        const float k = LF_SQUASH_S / LF_SQUASH_A;
        return lf_set1(k * LF_SQUASH_A * LF_SQUASH_A) - lf_set1(k) * (y * y);
    }
    case LF_ACT_TANH: return lf_set1(1.0f) - y * y;
    case LF_ACT_RELU: return lf_select(y > lf_set1(0.0f), lf_set1(1.0f), lf_set1(0.0f));
    case LF_ACT_LEAKY_RELU: return lf_select(y > lf_set1(0.0f), lf_set1(1.0f), lf_set1(LF_LEAKY_SLOPE));
    case LF_ACT_ELU: return lf_select(y > lf_set1(0.0f), lf_set1(1.0f), y + lf_set1(LF_ELU_ALPHA));
    case LF_ACT_SIGMOID: return y * (lf_set1(1.0f) - y);
    case LF_ACT_NONE: break;
    }
    return lf_set1(1.0f);
}

/* The gradient dy with respect to the output, carried back through the activation: dy f'(a), or for second
 * derivatives (Gauss-Newton) dy f'(a)^2. */
static inline __attribute__((always_inline)) lf_vf lf_activation_backward(lf_vf dy, lf_vf y, lf_act act,
                                                                          int second)
{
    if (act == LF_ACT_NONE)
        return dy;
    const lf_vf d = lf_derivative(y, act);
    return second ? dy * (d * d) : dy * d;
}

/* lf_activation_backward over count contiguous floats, in place in dy. */
static inline void lf_activation_backward_n(float *dy, const float *y, size_t count, lf_act act, int second)
{
    size_t i = 0;
    for (; i + LF_LANES <= count; i += LF_LANES)
        lf_store(dy + i, lf_activation_backward(lf_load(dy + i), lf_load(y + i), act, second));
    if (i < count)
        lf_store_n(dy + i,
                   lf_activation_backward(lf_load_n(dy + i, count - i), lf_load_n(y + i, count - i), act, second),
                   count - i);
}

#endif
