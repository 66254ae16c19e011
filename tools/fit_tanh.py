#!/usr/bin/env python3
"""Fit the float32 tanh approximation used by the C kernels, and measure it.

The squashing function f(a) = A tanh(S a) runs on every unit of the network, so the kernels
need a tanh that vectorizes: no libm call, no table, no data-dependent branch. The form is

    x' = clamp(x, -c, c)
    tanh(x) ~= x' * (P(x'^2) / Q(x'^2))

with P of degree 6 and Q of degree 3 in x^2 (an odd function, like tanh), both evaluated by
Horner's rule. Why this form:

* tanh is odd, so a rational function of x^2 times x is odd by construction: f(-x) == -f(x)
  bit for bit, and only half the degrees are needed.
* P(0) = Q(0) = 1 exactly, so for small |x| the ratio P/Q rounds to exactly 1.0f and the
  result is x itself: no branch is needed for tiny arguments (tanh(x) = x - x^3/3 + ..., and
  x^2/3 is below float32 resolution there anyway).
* Beyond c = ~9.01, tanh(x) rounds to 1.0f in float32, so clamping loses nothing; and the
  rational function only has to be accurate on [0, c], where P and Q stay far from overflow.
  The clamp is written as two comparisons (x > c ? c : x, then x < -c ? -c : x) so that a NaN
  (for which every comparison is false) passes through and gives NaN; fminf/fmaxf or
  SSE min/max with the operands the other way round would turn NaN into +-1.

Steps (all float64, numpy only):
1. c: the smallest float32 whose tanh rounds to 1.0f.
2. The coefficients: minimize the maximum relative error |R(x)/tanh(x) - 1| on [0, c] over a
   dense grid, by iteratively reweighted linear least squares (Sanathanan-Koerner iterations
   to linearize the rational fit, with Lawson's weight updates to go from least squares to
   minimax).
3. Round the coefficients to float32, then measure the float32 evaluation (Horner, one
   correctly rounded multiply then one correctly rounded add per step, as the C compiles
   without contraction; a fused multiply-add variant is measured as well) against np.tanh in
   float64, over: a dense grid on [0, 10]; every float32 in [1e-6, c]; tiny arguments; huge
   arguments and infinity; negative arguments; NaN.
4. Print the C snippet.

Run: python tools/fit_tanh.py   (numpy only; a few tens of seconds)
"""

import sys
import time

import numpy as np

F32 = np.float32
DEG_P = 6  # degree of P in x^2 (numerator degree 13 in x, with the factor x)
DEG_Q = 3  # degree of Q in x^2 (denominator degree 6 in x)
FIT_GRID = 20000  # fitting points on [0, c]
LAWSON_ITERATIONS = 200


# --------------------------------------------------------------------------------------
# 1. The clamp
# --------------------------------------------------------------------------------------

def clamp_limit():
    """The smallest float32 c for which tanh(c) rounds to 1.0f.

    1 - tanh(x) = 2 / (exp(2x) + 1). The float32 just below 1.0 is 1 - 2^-24, so tanh(x)
    rounds to 1.0f once 1 - tanh(x) <= 2^-25 (half that spacing; the tie goes to the even
    1.0f), i.e. once exp(2x) >= 2^26 - 1.
    """
    x = 0.5 * np.log(2.0**26 - 1.0)
    c = F32(x)
    while float(c) < x:
        c = np.nextafter(c, F32(np.inf))
    assert F32(np.tanh(float(c))) == F32(1.0)
    return c


# --------------------------------------------------------------------------------------
# 2. The fit
# --------------------------------------------------------------------------------------

def tanh_over_x(x):
    """g(x) = tanh(x) / x in float64, with its limit 1 at 0 (series for small x)."""
    x = np.asarray(x, dtype=np.float64)
    small = np.abs(x) < 1e-4
    safe = np.where(small, 1.0, x)
    return np.where(small, 1.0 - x * x / 3.0, np.tanh(safe) / safe)


def fit_rational(c, deg_p=DEG_P, deg_q=DEG_Q, n=FIT_GRID, iterations=LAWSON_ITERATIONS):
    """Minimax-relative-error fit of tanh(x) ~= x P(x^2) / Q(x^2) on [0, c], P(0) = Q(0) = 1.

    Returns (p, q, max_relative_error): coefficients in increasing powers of x^2, float64.

    The fit is done in the scaled variable s = (x / c)^2 in [0, 1], where the monomials are
    well conditioned, and converted back to powers of x^2 at the end (exact up to float64
    rounding: a division by a power of c^2).

    With P(s) = 1 + sum a_k s^k, Q(s) = 1 + sum b_k s^k and g = tanh(x)/x, the relative
    error is e = (P/Q - g)/g = (P - g Q)/(g Q). Given the previous iterate's Q, the linear
    residual P - g Q weighted by 1/(g Q_prev) approximates e (Sanathanan-Koerner), so each
    step is a linear least-squares problem in (a, b). Multiplying the per-point weights by
    |e| after each step (Lawson) shifts the fit from least squares towards equal ripple, the
    minimax solution. The best iterate seen (smallest max |e|) is kept.
    """
    c = float(c)
    # Chebyshev-like spacing in x: points cluster at both ends, where the error extrema of a
    # minimax fit crowd together.
    theta = np.linspace(0.0, np.pi, n)
    x = 0.5 * c * (1.0 - np.cos(theta))
    g = tanh_over_x(x)
    s = (x / c) ** 2

    # unknowns: a_1..a_deg_p, b_1..b_deg_q;   sum a_k s^k - g sum b_k s^k = g - 1
    powers_p = np.stack([s**k for k in range(1, deg_p + 1)], axis=1)
    powers_q = np.stack([s**k for k in range(1, deg_q + 1)], axis=1)
    design = np.hstack([powers_p, -g[:, None] * powers_q])
    rhs = g - 1.0

    q_prev = np.ones_like(s)
    lawson = np.ones_like(s)
    best = (np.inf, None, None)
    for it in range(iterations):
        w = lawson / (g * q_prev)
        sol = np.linalg.lstsq(design * w[:, None], rhs * w, rcond=None)[0]
        a = np.concatenate([[1.0], sol[:deg_p]])
        b = np.concatenate([[1.0], sol[deg_p:]])
        p_val = np.polynomial.polynomial.polyval(s, a)
        q_val = np.polynomial.polynomial.polyval(s, b)
        err = (p_val / q_val - g) / g
        worst = np.max(np.abs(err))
        if worst < best[0]:
            best = (worst, a, b)
        q_prev = q_val
        # Let the linearization settle for a few steps before reweighting; the square root
        # damps Lawson's update (plain |e| oscillates with rational fits).
        if it >= 5:
            lawson = lawson * np.sqrt(np.abs(err))
            lawson = np.maximum(lawson / lawson.max(), 1e-40)

    worst, a, b = best
    scale_p = c ** (-2.0 * np.arange(deg_p + 1))
    scale_q = c ** (-2.0 * np.arange(deg_q + 1))
    return a * scale_p, b * scale_q, worst


# --------------------------------------------------------------------------------------
# 3. Evaluation, as the C does it
# --------------------------------------------------------------------------------------

def clamp(x, c):
    """x > c ? c : x, then x < -c ? -c : x: NaN fails both comparisons and passes through."""
    x = np.where(x > c, c, x)
    return np.where(x < -c, -c, x)


def tanh_f32(x, p, q, c):
    """The C evaluation in float32: every multiply and every add rounded on its own."""
    x = clamp(np.asarray(x, dtype=F32), F32(c))
    t = x * x
    num = np.full_like(x, p[-1])
    for coef in p[-2::-1]:
        num = num * t + coef
    den = np.full_like(x, q[-1])
    for coef in q[-2::-1]:
        den = den * t + coef
    return x * (num / den)


def _fma32(a, b, c):
    # a*b is exact in float64 for float32 a, b (48-bit product); the sum then rounds once
    # to float64 and once to float32. That double rounding differs from a true fused
    # multiply-add only in rare ties, which does not matter for a maximum-error measurement.
    return (a.astype(np.float64) * b + c).astype(F32)


def tanh_f32_fma(x, p, q, c):
    """The same with each Horner step a fused multiply-add (what -ffp-contract=fast with
    FMA hardware produces)."""
    x = clamp(np.asarray(x, dtype=F32), F32(c))
    t = x * x
    num = np.full_like(x, p[-1])
    for coef in p[-2::-1]:
        num = _fma32(num, t, coef)
    den = np.full_like(x, q[-1])
    for coef in q[-2::-1]:
        den = _fma32(den, t, coef)
    return x * (num / den)


def tanh_f64(x, p, q, c):
    """The rational function with the given coefficients in float64: the fit error alone."""
    x = clamp(np.asarray(x, dtype=np.float64), float(c))
    t = x * x
    pp = np.polynomial.polynomial.polyval(t, np.asarray(p, dtype=np.float64))
    qq = np.polynomial.polynomial.polyval(t, np.asarray(q, dtype=np.float64))
    return x * (pp / qq)


def rel_err(approx, x):
    """|approx - tanh(x)| / |tanh(x)| against float64 tanh of the (float32) argument."""
    ref = np.tanh(np.asarray(x, dtype=np.float64))
    return np.abs(approx.astype(np.float64) - ref) / np.abs(ref)


def float32_range(lo, hi):
    """Every float32 in [lo, hi] (positive lo, hi), as bit patterns (int64 range)."""
    lo_bits = int(np.array(F32(lo)).view(np.int32))
    hi_bits = int(np.array(F32(hi)).view(np.int32))
    return lo_bits, hi_bits + 1


def sweep_all_float32(lo, hi, funcs, chunk=1 << 22):
    """Max relative error of each evaluation over every float32 in [lo, hi].

    Also checks that the float32 evaluation is non-decreasing and within [-1, 1] (useful
    properties for an activation function, reported rather than required).
    """
    start, stop = float32_range(lo, hi)
    worst = {name: (0.0, 0.0) for name in funcs}
    monotone = True
    bounded = True
    last = -np.inf
    for b0 in range(start, stop, chunk):
        bits = np.arange(b0, min(b0 + chunk, stop), dtype=np.int32)
        x = bits.view(F32)
        ref = np.tanh(x.astype(np.float64))
        for name, f in funcs.items():
            y = f(x)
            e = np.abs(y.astype(np.float64) - ref) / ref
            i = int(np.argmax(e))
            if e[i] > worst[name][0]:
                worst[name] = (float(e[i]), float(x[i]))
            if name == "float32":
                if y[0] < last or np.any(np.diff(y) < 0):
                    monotone = False
                if np.any(np.abs(y) > 1):
                    bounded = False
                last = y[-1]
    return worst, monotone, bounded


# --------------------------------------------------------------------------------------
# 4. Main: fit, round, measure, print
# --------------------------------------------------------------------------------------

def c_float(v):
    """A float32 written so that the C compiler reads back the same float32."""
    s = "%.9g" % float(v)
    if "e" not in s and "." not in s:
        s += ".0"
    return s + "f"


def main():
    t_start = time.time()
    c = clamp_limit()

    p64, q64, fit_err = fit_rational(c)
    p32 = p64.astype(F32)
    q32 = q64.astype(F32)
    # P(0) = Q(0) = 1 survive rounding exactly: that is what makes tiny x come out as x.
    assert p32[0] == 1 and q32[0] == 1

    f32 = lambda x: tanh_f32(x, p32, q32, c)
    f32_fma = lambda x: tanh_f32_fma(x, p32, q32, c)
    f64_rounded = lambda x: tanh_f64(x, p32, q32, c)
    f64_exact = lambda x: tanh_f64(x, p64, q64, c)
    funcs = {
        "float32": f32,
        "float32_fma": f32_fma,
        "fit_f32_coefs": f64_rounded,
    }

    report = []  # (label, value) lines for the C comment

    # Dense grid on [0, 10] (float32 arguments), including the clamp region.
    grid = np.linspace(0.0, 10.0, 4_000_001).astype(F32)
    assert f32(grid[:1])[0] == 0.0  # tanh(0) = 0 exactly
    grid = grid[grid > 0]
    e_grid = {name: float(np.max(rel_err(f(grid), grid))) for name, f in funcs.items()}
    e_fit_exact = float(np.max(rel_err(f64_exact(grid), grid)))

    # Every float32 in [1e-6, c] (about 190 million values).
    e_all, monotone, bounded = sweep_all_float32(1e-6, c, funcs)

    # Tiny arguments: the result should be x itself (tanh(x) = x(1 - x^2/3 + ...), and
    # x^2/3 < 2^-25 below about 3e-4). Log-spaced down to 1e-30, plus subnormals.
    tiny = np.concatenate([
        np.logspace(-30, -6, 200_001).astype(F32),
        np.array([np.finfo(F32).tiny, np.finfo(F32).smallest_subnormal, 1e-40, 3e-4], F32),
    ])
    y_tiny = f32(tiny)
    tiny_ulps = float(np.max(np.abs(y_tiny.astype(np.float64) - tanh_over_x(tiny) * tiny)
                             / np.spacing(tiny).astype(np.float64)))
    tiny_exact = bool(np.all(y_tiny == tiny))

    # Huge arguments: exactly 1.0.
    huge = np.array([c, 9.5, 10.0, 1e3, 1e30, np.finfo(F32).max, np.inf], dtype=F32)
    y_huge = f32(huge)
    huge_exact = bool(np.all(y_huge == 1.0)) and bool(np.all(f32_fma(huge) == 1.0))

    # Odd symmetry, bit for bit, on the grid and the tiny values; negative zero kept.
    sym_x = np.concatenate([grid, tiny, huge])
    odd = bool(np.array_equal(f32(-sym_x), -f32(sym_x)))
    neg_zero = bool(np.signbit(f32(np.array([-0.0], F32))[0]))

    # NaN in, NaN out (both signs).
    nan_ok = bool(np.all(np.isnan(f32(np.array([np.nan, -np.nan], F32)))))

    # Absolute error near saturation, where relative error hides what matters to the
    # squash's derivative-free uses: [4, 10].
    sat = np.linspace(4.0, 10.0, 1_000_001).astype(F32)
    abs_sat = float(np.max(np.abs(f32(sat).astype(np.float64) - np.tanh(sat.astype(np.float64)))))

    e32 = max(e_grid["float32"], e_all["float32"][0])
    e32_fma = max(e_grid["float32_fma"], e_all["float32_fma"][0])
    e_fit_rounded = max(e_grid["fit_f32_coefs"], e_all["fit_f32_coefs"][0])
    ulp = 2.0**-24  # float32 unit roundoff (half an ulp at 1.0, relative)

    elapsed = time.time() - t_start

    ok = (tiny_exact and huge_exact and odd and neg_zero and nan_ok and bounded
          and e32 <= 5e-7)

    lines = []
    lines.append("/* float32 tanh: generated by tools/fit_tanh.py (numpy, float64 fit). */")
    lines.append("/*")
    lines.append(" * tanh(x) ~= x' * (P(x'^2) / Q(x'^2)),  x' = x clamped to [-LF_TANH_CLAMP, LF_TANH_CLAMP]")
    lines.append(" * P(t) = P0 + P1 t + ... + P%d t^%d,  Q(t) = Q0 + ... + Q%d t^%d,  P0 = Q0 = 1"
                 % (DEG_P, DEG_P, DEG_Q, DEG_Q))
    lines.append(" * LF_TANH_CLAMP: smallest float32 whose tanh rounds to 1.0f.")
    lines.append(" * Coefficients fitted for minimax relative error on [0, LF_TANH_CLAMP].")
    lines.append(" *")
    lines.append(" * Measured against float64 tanh (max relative error):")
    lines.append(" *   float32 evaluation, mul then add:  %.3g (%.2f x 2^-24), worst at x = %.9g"
                 % (e32, e32 / ulp, e_all["float32"][1]))
    lines.append(" *   float32 evaluation, fused mul-add: %.3g (%.2f x 2^-24)" % (e32_fma, e32_fma / ulp))
    lines.append(" *   fit alone (float64 evaluation):    %.3g with these float32 coefficients,"
                 % e_fit_rounded)
    lines.append(" *                                      %.3g before rounding them" % max(fit_err, e_fit_exact))
    lines.append(" *   over: every float32 in [1e-6, LF_TANH_CLAMP], a dense grid on [0, 10].")
    lines.append(" *   max absolute error on [4, 10]: %.3g" % abs_sat)
    lines.append(" *   |x| in [1e-30, 1e-6] and subnormals: result == x %s (max %.2f ulp from tanh)"
                 % ("exactly" if tiny_exact else "NOT exactly", tiny_ulps))
    lines.append(" *   x = c, 10, 1e3, 1e30, FLT_MAX, inf: result == 1.0f %s"
                 % ("exactly" if huge_exact else "NOT exactly"))
    lines.append(" *   odd symmetry bit for bit: %s; tanh(-0) = -0: %s; NaN -> NaN: %s"
                 % ("yes" if odd else "NO", "yes" if neg_zero else "NO", "yes" if nan_ok else "NO"))
    lines.append(" *   non-decreasing over [1e-6, c]: %s; |result| <= 1: %s"
                 % ("yes" if monotone else "no", "yes" if bounded else "NO"))
    lines.append(" * Do not compile with -ffast-math: the clamp must keep NaN and the division")
    lines.append(" * must be a real division (not a reciprocal estimate).")
    lines.append(" */")
    lines.append("#define LF_TANH_CLAMP %s" % c_float(c))
    for k, v in enumerate(p32):
        lines.append("#define LF_TANH_P%d %s" % (k, c_float(v)))
    for k, v in enumerate(q32):
        lines.append("#define LF_TANH_Q%d %s" % (k, c_float(v)))
    lines.append("")
    lines.append("static inline float lf_tanhf(float x)")
    lines.append("{")
    lines.append("    x = x > LF_TANH_CLAMP ? LF_TANH_CLAMP : x;    /* NaN fails both tests */")
    lines.append("    x = x < -LF_TANH_CLAMP ? -LF_TANH_CLAMP : x;")
    lines.append("    float t = x * x;")
    num = "LF_TANH_P%d" % DEG_P
    for k in range(DEG_P - 1, -1, -1):
        num = "%s * t + LF_TANH_P%d" % (num if k == DEG_P - 1 else "(" + num + ")", k)
    den = "LF_TANH_Q%d" % DEG_Q
    for k in range(DEG_Q - 1, -1, -1):
        den = "%s * t + LF_TANH_Q%d" % (den if k == DEG_Q - 1 else "(" + den + ")", k)
    lines.append("    float p = %s;" % num)
    lines.append("    float q = %s;" % den)
    lines.append("    return x * (p / q);")
    lines.append("}")
    print("\n".join(lines))
    print("\n[fit_tanh] P degree %d, Q degree %d in x^2; %s; %.1f s"
          % (DEG_P, DEG_Q, "all checks pass" if ok else "CHECKS FAILED", elapsed),
          file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
