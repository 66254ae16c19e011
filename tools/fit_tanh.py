#!/usr/bin/env python3
"""Fit the float32 tanh approximation used by the C kernels, and measure it.

The squashing function f(a) = A tanh(S a) runs on every unit of the network, so the kernels
need a tanh that vectorizes: no libm call, no table, no data-dependent branch. The form is

    x' = clamp(x, -c, c)
    y  = x' * (P(x'^2) / Q(x'^2))
    tanh(x) ~= clamp(y, -1, 1)

with P of degree 5 and Q of degree 3 in x^2 (an odd function, like tanh), both evaluated by
Horner's rule. (Degree 6 over 3 is no more accurate in float32; 4 over 3 misses the 5e-7 goal.) Why this form:

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
* The output clamp to [-1, 1] (two more comparisons, same NaN-safe form) makes the result
  saturate at exactly 1.0f, whatever the compiler does with the arithmetic. A plain minimax
  fit ends at R(c) ~= tanh(c) ~= 1 - 2^-25, right at the rounding midpoint, so the float32
  evaluation gives 0.99999994f or 1.00000012f there depending on rounding noise; and it
  exceeds 1 by an ulp here and there near saturation. So the fit is asked to reach
  R(c) = 1 + END_MARGIN, a margin well above the evaluation's rounding noise, and the output
  clamp brings every such value back to exactly 1. Only min(R, 1) is ever returned, so this
  is what the fit measures; overshooting 1 costs nothing where tanh(x) is within the error
  budget of 1 (x > ~7.6).

Steps (all float64, numpy only):
1. c: the smallest float32 whose tanh rounds to 1.0f.
2. The coefficients: minimize the maximum relative error |min(R(x), 1)/tanh(x) - 1| on
   [0, c] over a dense grid, with R(c) = 1 + END_MARGIN imposed, by iteratively reweighted
   linear least squares (Sanathanan-Koerner iterations to linearize the rational fit, with
   Lawson's weight updates to go from least squares to minimax).
3. Round the coefficients to float32, then measure the float32 evaluation (Horner, one
   correctly rounded multiply then one correctly rounded add per step, as the C compiles
   without contraction; a fused multiply-add variant is measured as well) against np.tanh in
   float64, over: a dense grid on [0, 10]; every float32 in [1e-6, c]; tiny arguments; huge
   arguments and infinity; negative arguments; NaN. At x = c, every one of the 2^9 ways of
   fusing or not fusing the Horner steps is checked to give exactly 1.0f.
4. Print the C snippet (stdout): a complete csrc/tanh_coefficients.h, with the clamp, the
   coefficient tables, the measured errors and the evaluation they assume. A one-line verdict
   goes to stderr; the exit status is 1 if a check fails.

Run: python tools/fit_tanh.py   (numpy only; about half a minute or less)
"""

import sys
import time

import numpy as np

F32 = np.float32
DEG_P = 5  # degree of P in x^2 (numerator degree 11 in x, with the factor x)
DEG_Q = 3  # degree of Q in x^2 (denominator degree 6 in x)
FIT_GRID = 20000  # fitting points on [0, c]
LAWSON_ITERATIONS = 100
UNIT_ROUNDOFF = 2.0**-24  # float32: half an ulp of 1.0 from below is 2^-25, relative 2^-24
# R(c) - 1 imposed by the fit: about twice the float32 evaluation's worst rounding error
# (~6 units), so R(c) computed in float32 is >= 1 in any evaluation order and the output
# clamp returns exactly 1 (checked below for all contraction choices). It costs about half a
# unit of fit error. (The final float32 maximum moves between ~5.5 and ~7 units with this
# choice, through the rounding of the coefficients; any value from 4 to 16 units passes.)
END_MARGIN = 12 * UNIT_ROUNDOFF


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


def fit_rational(c, end_value=1.0 + END_MARGIN, deg_p=DEG_P, deg_q=DEG_Q, n=FIT_GRID,
                 iterations=LAWSON_ITERATIONS):
    """Fit tanh(x) ~= min(x P(x^2) / Q(x^2), 1) on [0, c], P(0) = Q(0) = 1, R(c) = end_value.

    Minimizes the maximum relative error of min(R, 1) against tanh. Returns (p, q,
    max_relative_error): coefficients in increasing powers of x^2, float64.

    The fit is done in the scaled variable s = (x / c)^2 in [0, 1], where the monomials are
    well conditioned, and converted back to powers of x^2 at the end (exact up to float64
    rounding: a division by a power of c^2).

    With P(s) = 1 + sum a_k s^k, Q(s) = 1 + sum b_k s^k and g = tanh(x)/x, the relative
    error is e = (P/Q - g)/g = (P - g Q)/(g Q). Given the previous iterate's Q, the linear
    residual P - g Q weighted by 1/(g Q_prev) approximates e (Sanathanan-Koerner), so each
    step is a linear least-squares problem in (a, b). Multiplying the per-point weights by
    |e| after each step (Lawson) shifts the fit from least squares towards equal ripple, the
    minimax solution. The end condition R(c) = end_value is linear in (a, b) too, and is
    imposed exactly by eliminating one unknown. The best iterate seen (smallest max |e|) is
    kept.
    """
    c = float(c)
    # Chebyshev-like spacing in x: points cluster at both ends, where the error extrema of a
    # minimax fit crowd together.
    theta = np.linspace(0.0, np.pi, n)
    x = 0.5 * c * (1.0 - np.cos(theta))
    g = tanh_over_x(x)
    s = (x / c) ** 2
    tanh_x = np.tanh(x)
    nonzero = x > 0

    # Unknowns a_1..a_deg_p, b_1..b_deg_q; each grid point gives the linear equation
    #     sum a_k s^k - g sum b_k s^k = g - 1.
    # The end condition (s = 1, g replaced by g_end = end_value / c) is
    #     sum a_k - g_end sum b_k = g_end - 1,
    # enforced exactly by eliminating the top coefficient a_n (n = deg_p):
    #     a_n = g_end - 1 + g_end sum b_k - sum_{k<n} a_k,
    # which turns each point's equation into
    #     sum_{k<n} a_k (s^k - s^n) - sum b_k (g s^k - g_end s^n) = g - 1 - (g_end - 1) s^n.
    # (Imposing it with a heavily weighted extra row instead makes the least-squares matrix
    # so ill-conditioned that lstsq's default cutoff starts dropping singular values.)
    g_end = end_value / c
    s_top = s**deg_p
    cols_p = [s**k - s_top for k in range(1, deg_p)]
    cols_q = [-(g * s**k - g_end * s_top) for k in range(1, deg_q + 1)]
    design = np.stack(cols_p + cols_q, axis=1)
    rhs = g - 1.0 - (g_end - 1.0) * s_top

    q_prev = np.ones_like(s)
    lawson = np.ones_like(s)
    best = (np.inf, None, None)
    for it in range(iterations):
        w = lawson / (g * q_prev)
        sol = np.linalg.lstsq(design * w[:, None], rhs * w, rcond=None)[0]
        a_low = sol[:deg_p - 1]
        b = np.concatenate([[1.0], sol[deg_p - 1:]])
        a_top = g_end - 1.0 + g_end * np.sum(b[1:]) - np.sum(a_low)
        a = np.concatenate([[1.0], a_low, [a_top]])
        p_val = np.polynomial.polynomial.polyval(s, a)
        q_val = np.polynomial.polynomial.polyval(s, b)
        # the error of what is returned, min(R, 1)
        r_val = np.minimum(x * p_val / q_val, 1.0)
        err = np.zeros_like(x)
        err[nonzero] = r_val[nonzero] / tanh_x[nonzero] - 1.0
        worst = np.max(np.abs(err))
        if worst < best[0]:
            best = (worst, a, b)
        q_prev = q_val
        # Let the linearization settle for a few steps before reweighting; the square root
        # damps Lawson's update (plain |e| oscillates with rational fits).
        if it >= 5:
            lawson = lawson * np.sqrt(np.abs(err) + 1e-30)
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


def _mul_add(a, b, c, fused):
    """One Horner step in float32: a*b + c, either fused (one rounding) or not (two).

    For the fused form, a*b is exact in float64 (a 48-bit product of float32 values); the
    sum then rounds to float64 and to float32. That double rounding can differ from a true
    fused multiply-add only in rare ties, which does not matter for an error measurement.
    """
    if fused:
        return (a.astype(np.float64) * b + c).astype(F32)
    return a * b + c


def rational_f32(x, p, q, fused=False):
    """x * (P(x^2) / Q(x^2)) in float32, every operation rounded to float32 as IEEE does.

    fused: False (each multiply and add rounded on its own: the C compiled without
    contraction), True (every Horner step a fused multiply-add: -ffp-contract=fast on FMA
    hardware), or a sequence of booleans, one per Horner step (P's steps first, from the
    highest coefficient down, then Q's), for mixed contraction.
    """
    n_steps = (len(p) - 1) + (len(q) - 1)
    steps = [fused] * n_steps if isinstance(fused, bool) else list(fused)
    x = np.asarray(x, dtype=F32)
    t = x * x
    k = 0
    num = np.full_like(x, p[-1])
    for coef in p[-2::-1]:
        num = _mul_add(num, t, coef, steps[k])
        k += 1
    den = np.full_like(x, q[-1])
    for coef in q[-2::-1]:
        den = _mul_add(den, t, coef, steps[k])
        k += 1
    return x * (num / den)


def tanh_f32(x, p, q, c, fused=False):
    """The C evaluation in float32: input clamp, rational function, output clamp."""
    x = clamp(np.asarray(x, dtype=F32), F32(c))
    return clamp(rational_f32(x, p, q, fused), F32(1.0))


def tanh_f64(x, p, q, c):
    """The approximation with the given coefficients in float64: the fit error alone."""
    x = clamp(np.asarray(x, dtype=np.float64), float(c))
    t = x * x
    pp = np.polynomial.polynomial.polyval(t, np.asarray(p, dtype=np.float64))
    qq = np.polynomial.polynomial.polyval(t, np.asarray(q, dtype=np.float64))
    return clamp(x * (pp / qq), 1.0)


def rel_err(approx, x):
    """|approx - tanh(x)| / |tanh(x)| against float64 tanh of the (float32) argument."""
    ref = np.tanh(np.asarray(x, dtype=np.float64))
    return np.abs(approx.astype(np.float64) - ref) / np.abs(ref)


def float32_bits(lo, hi):
    """Bit-pattern range (start, stop) covering every float32 in [lo, hi], 0 < lo < hi."""
    lo_bits = int(np.array(F32(lo)).view(np.int32))
    hi_bits = int(np.array(F32(hi)).view(np.int32))
    return lo_bits, hi_bits + 1


def sweep_float32(lo, hi, funcs, chunk=1 << 22):
    """Max relative error over every float32 in [lo, hi].

    funcs: name -> (function, stride); stride 1 takes every float32, stride k every k-th
    (used for the slower variants, to keep the run short).
    Returns ({name: (max error, argument)}, largest step down of the first function's
    result between consecutive float32 arguments, in ulps of the result).
    """
    start, stop = float32_bits(lo, hi)
    worst = {name: (0.0, 0.0) for name in funcs}
    first = next(iter(funcs))
    max_drop_ulps = 0.0
    last = None
    for b0 in range(start, stop, chunk):
        bits = np.arange(b0, min(b0 + chunk, stop), dtype=np.int32)
        x_all = bits.view(F32)
        for name, (f, stride) in funcs.items():
            x = x_all[::stride]
            y = f(x)
            e = rel_err(y, x)
            i = int(np.argmax(e))
            if e[i] > worst[name][0]:
                worst[name] = (float(e[i]), float(x[i]))
            if name == first:
                seq = y if last is None else np.concatenate([[last], y])
                drops = -np.diff(seq.astype(np.float64)) / np.spacing(seq[1:]).astype(np.float64)
                max_drop_ulps = max(max_drop_ulps, float(drops.max(initial=0.0)))
                last = y[-1]
    return worst, max_drop_ulps


# --------------------------------------------------------------------------------------
# 4. Main: fit, round, measure, print
# --------------------------------------------------------------------------------------

def c_float(v):
    """A float32 written so that the C compiler reads back the same float32."""
    text = "%.9g" % float(v)
    if "e" not in text and "." not in text:
        text += ".0"
    return text + "f"


def c_snippet(c, p32, q32, comment):
    """The C text, a complete header (csrc/tanh_coefficients.h): the measurements as a
    comment, the clamp, the coefficient tables, and the evaluation they were measured with
    (as a comment: the kernels write their own vector version)."""
    fmt_list = lambda coefs: ", ".join(c_float(v) for v in coefs)
    lines = ["/* tanh_coefficients.h: generated by tools/fit_tanh.py (numpy, float64 fit); do not edit. */",
             "/*"]
    lines += [(" * " + line).rstrip() for line in comment]
    lines += [
        " */",
        "#ifndef LENET_FAST_TANH_COEFFICIENTS_H",
        "#define LENET_FAST_TANH_COEFFICIENTS_H",
        "",
        "#define LF_TANH_CLAMP %s" % c_float(c),
        "#define LF_TANH_NP %d" % len(p32),
        "#define LF_TANH_NQ %d" % len(q32),
        "/* LF_TANH_P[k], LF_TANH_Q[k]: the coefficients of (x^2)^k */",
        "static const float LF_TANH_P[LF_TANH_NP] = {%s};" % fmt_list(p32),
        "static const float LF_TANH_Q[LF_TANH_NQ] = {%s};" % fmt_list(q32),
        "",
        "/*",
        " * The evaluation measured above. The clamps are comparisons, not fminf/fmaxf, so that a",
        " * NaN (false in every comparison) passes through; the output clamp is what makes every",
        " * |x| >= LF_TANH_CLAMP give exactly +-1.0f and is required (without it the result there",
        " * is 1 + %g x 2^-24)." % (END_MARGIN / UNIT_ROUNDOFF),
        " *",
        " * static inline float lf_tanhf(float x)",
        " * {",
        " *     x = x > LF_TANH_CLAMP ? LF_TANH_CLAMP : x;",
        " *     x = x < -LF_TANH_CLAMP ? -LF_TANH_CLAMP : x;",
        " *     const float t = x * x;",
        " *     float p = LF_TANH_P[LF_TANH_NP - 1], q = LF_TANH_Q[LF_TANH_NQ - 1];",
        " *     for (int k = LF_TANH_NP - 2; k >= 0; k--)",
        " *         p = p * t + LF_TANH_P[k];",
        " *     for (int k = LF_TANH_NQ - 2; k >= 0; k--)",
        " *         q = q * t + LF_TANH_Q[k];",
        " *     float y = x * (p / q);",
        " *     y = y > 1.0f ? 1.0f : y;",
        " *     y = y < -1.0f ? -1.0f : y;",
        " *     return y;",
        " * }",
        " */",
        "",
        "#endif",
    ]
    return "\n".join(lines)


def main():
    t_start = time.time()
    u = UNIT_ROUNDOFF
    c = clamp_limit()

    p64, q64, fit_err = fit_rational(c)
    p32 = p64.astype(F32)
    q32 = q64.astype(F32)
    # P(0) = Q(0) = 1 survive rounding exactly: that is what makes tiny x come out as x.
    assert p32[0] == 1 and q32[0] == 1

    f32 = lambda x: tanh_f32(x, p32, q32, c)
    f32_fma = lambda x: tanh_f32(x, p32, q32, c, fused=True)
    fit_rounded = lambda x: tanh_f64(x, p32, q32, c)
    fit_exact = lambda x: tanh_f64(x, p64, q64, c)

    # Dense grid on [0, 10] (float32 arguments), including the clamp region.
    grid = np.linspace(0.0, 10.0, 2_000_001).astype(F32)
    zero_ok = bool(f32(grid[:1])[0] == 0.0)
    grid = grid[grid > 0]
    grid_err = {name: float(np.max(rel_err(f(grid), grid)))
                for name, f in (("f32", f32), ("fma", f32_fma),
                                ("fit_rounded", fit_rounded), ("fit_exact", fit_exact))}

    # Every float32 in [1e-6, c] (about 190 million) for both float32 evaluations; every
    # 7th for the float64 fit, which only confirms the fit and is slower.
    sweep, max_drop = sweep_float32(1e-6, c, {
        "f32": (f32, 1), "fma": (f32_fma, 1), "fit_rounded": (fit_rounded, 7)})

    e32 = max(grid_err["f32"], sweep["f32"][0])
    e32_at = sweep["f32"][1] if sweep["f32"][0] >= grid_err["f32"] else None
    efma = max(grid_err["fma"], sweep["fma"][0])
    efit_rounded = max(grid_err["fit_rounded"], sweep["fit_rounded"][0])
    efit_exact = max(grid_err["fit_exact"], fit_err)

    # Tiny arguments: the result should be x itself (tanh(x) = x (1 - x^2/3 + ...), and x^2/3
    # is below float32 resolution for |x| < ~3e-4). Log-spaced down to 1e-30, plus the
    # smallest normal and subnormal values.
    tiny = np.concatenate([
        np.logspace(-30, -6, 200_001).astype(F32),
        np.array([np.finfo(F32).tiny, np.finfo(F32).smallest_subnormal, 1e-40], dtype=F32),
    ])
    tiny_exact = bool(np.array_equal(f32(tiny), tiny)) and bool(np.array_equal(f32_fma(tiny), tiny))
    mid = np.logspace(-6, -3, 100_001).astype(F32)  # where x^2/3 starts to matter
    mid_ulps = float(np.max(np.abs(f32(mid).astype(np.float64) - np.tanh(mid.astype(np.float64)))
                            / np.spacing(mid).astype(np.float64)))

    # Huge arguments: exactly 1.0; and at the clamp, exactly 1.0 however the compiler
    # contracts the Horner steps (each of the 2^9 fused/unfused choices).
    huge = np.array([c, 9.5, 10.0, 1e3, 1e30, np.finfo(F32).max, np.inf], dtype=F32)
    huge_exact = bool(np.all(f32(huge) == 1.0)) and bool(np.all(f32_fma(huge) == 1.0))
    n_steps = (len(p32) - 1) + (len(q32) - 1)
    at_c = np.array([c], dtype=F32)
    contraction_ok = all(
        tanh_f32(at_c, p32, q32, c, fused=[bool((mask >> k) & 1) for k in range(n_steps)])[0] == 1.0
        for mask in range(1 << n_steps))
    # the value at c before the output clamp (the margin above 1), lowest over all choices
    raw_c = min(float(rational_f32(at_c, p32, q32, [bool((mask >> k) & 1) for k in range(n_steps)])[0])
                for mask in range(1 << n_steps))

    # Odd symmetry, bit for bit (the clamps are symmetric and P, Q depend on x^2 only).
    sym_x = np.concatenate([grid, tiny, huge])
    odd = bool(np.array_equal(f32(-sym_x), -f32(sym_x)))
    neg_zero = bool(np.signbit(f32(np.array([-0.0], dtype=F32))[0]))

    # NaN in, NaN out (both signs).
    nan_ok = bool(np.all(np.isnan(f32(np.array([np.nan, -np.nan], dtype=F32)))))

    # Absolute error near saturation.
    sat = np.linspace(4.0, 10.0, 1_000_001).astype(F32)
    abs_sat = float(np.max(np.abs(f32(sat).astype(np.float64) - np.tanh(sat.astype(np.float64)))))

    ok = (zero_ok and tiny_exact and huge_exact and contraction_ok and odd and neg_zero
          and nan_ok and e32 <= 5e-7 and efma <= 5e-7)
    elapsed = time.time() - t_start

    where = " (at x = %.9g)" % e32_at if e32_at is not None else ""
    yes = lambda flag: "yes" if flag else "NO"
    comment = [
        "tanh(x) ~= clamp(x' * (P(x'^2) / Q(x'^2)), -1, 1),  x' = clamp(x, -LF_TANH_CLAMP, LF_TANH_CLAMP)",
        "P(t) = P0 + P1 t + ... + P%d t^%d,  Q(t) = Q0 + ... + Q%d t^%d,  P0 = Q0 = 1 (so tiny x -> x)"
        % (len(p32) - 1, len(p32) - 1, len(q32) - 1, len(q32) - 1),
        "LF_TANH_CLAMP: the smallest float32 whose tanh rounds to 1.0f.",
        "Fit: minimax relative error of min(R, 1) on [0, LF_TANH_CLAMP], with R(LF_TANH_CLAMP) =",
        "1 + %g x 2^-24 so that the result there is >= 1 before the output clamp" % (END_MARGIN / u),
        "(at least %.9g here, any contraction), hence exactly 1.0f for every |x| >= LF_TANH_CLAMP." % raw_c,
        "",
        "Max relative error against float64 tanh, every float32 in [1e-6, LF_TANH_CLAMP] (the",
        "fit: every 7th) and a dense grid on [0, 10] (2^-24 = 5.96e-8):",
        "  float32, multiply then add: %.3g (%.2f x 2^-24)%s" % (e32, e32 / u, where),
        "  float32, fused multiply-add: %.3g (%.2f x 2^-24)" % (efma, efma / u),
        "  fit alone (float64 evaluation): %.3g with these float32 coefficients, %.3g before"
        % (efit_rounded, efit_exact),
        "    rounding them (2^-25 = 2.98e-8 of it is tanh(x) < 1 above LF_TANH_CLAMP)",
        "  max absolute error on [4, 10]: %.3g" % abs_sat,
        "  |x| <= 1e-6 (down to subnormals): result == x exactly: %s" % yes(tiny_exact),
        "  |x| in [1e-6, 1e-3]: within %.2f ulp of tanh" % mid_ulps,
        "  x = LF_TANH_CLAMP, 9.5, 10, 1e3, 1e30, FLT_MAX, inf: exactly 1.0f: %s" % yes(huge_exact),
        "  exactly 1.0f at LF_TANH_CLAMP for all %d fused/unfused Horner choices: %s"
        % (1 << n_steps, yes(contraction_ok)),
        "  odd, bit for bit: %s; tanh(-0) = -0: %s; NaN -> NaN: %s; |result| <= 1: by the clamp"
        % (yes(odd), yes(neg_zero), yes(nan_ok)),
        "  monotonic: to within %.0f ulp (rounding noise; tanh is nearly flat near saturation)"
        % max_drop,
        "Do not compile with -ffast-math: the clamps must keep NaN, and p / q must be a true",
        "division: the kernels divide (the divider is otherwise idle in them, while a reciprocal",
        "estimate's Newton steps would load the multiply-add pipes; one step misses 1/1 = 1 and",
        "tiny x -> x). GCC 12 will not if-convert the comparisons (so not vectorize a loop",
        "over lf_tanhf) unless given -fno-trapping-math, which keeps IEEE results intact.",
    ]
    print(c_snippet(c, p32, q32, comment))
    print("[fit_tanh] P degree %d, Q degree %d in x^2: %s (%.1f s)"
          % (len(p32) - 1, len(q32) - 1, "all checks pass" if ok else "CHECKS FAILED", elapsed),
          file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
