"""csrc/activation.c and activation.h: the activations (squash, the paper's scaled tanh; tanh, a fitted
rational function, csrc/tanh_coefficients.h; relu, leaky relu, ELU, the sigmoid; none) through
_core.activation, on every instruction-set path: against lenet_fast.reference on arrays of any shape, tanh
and squash over the whole float32 range, and simd.h's exp (through the sigmoid and ELU) to a few ulp.
(The activations fused into the layer kernels are checked with each layer: test_conv.py, ...)"""
import numpy as np
import pytest

from lenet_fast import _core
from lenet_fast import reference as ref

from cases import ACT_RTOL, ACTS

TINY32 = float(np.finfo(np.float32).smallest_subnormal)
FLT_MAX = float(np.finfo(np.float32).max)


# ---- activation(): any shape, dtype and layout ---------------------------------------------------------


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("shape", [(0,), (1,), (7,), (8,), (9,), (17,), (3, 5), (2, 3, 4), (4, 0, 3),
                                   (1000,), (5, 1, 3, 2)])
def test_activation_matches_the_reference(act, shape, path):
    """activation() on arrays of any shape and length (whole vectors plus a partial tail), empty included:
    same shape, float32, within ACT_RTOL of the reference (relu and none exactly)."""
    rng = np.random.default_rng(len(shape) * 100 + sum(shape))
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    got = _core.activation(x, act)
    assert got.shape == x.shape and got.dtype == np.float32
    want = ref.activation(np.float64(x), act)
    if act in ("none", "relu"):
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=ACT_RTOL, atol=0)


@pytest.mark.parametrize("act", ACTS)
def test_activation_of_a_scalar_keeps_its_shape(act):
    """A 0-d array (or a NumPy scalar) gives a 0-d result, as the docstring promises ("float32 of x's
    shape") and as the reference does, not a 1-element vector."""
    for x in (np.array(0.5, np.float32), np.float32(0.5), np.float64(-2.0)):
        got = _core.activation(x, act)
        assert got.shape == (), f"{type(x).__name__} {x!r}: got shape {got.shape}"
        np.testing.assert_allclose(got, ref.activation(np.float64(x), act), rtol=ACT_RTOL)


def test_activation_converts_and_copies_its_input():
    """float64, float16, big-endian and strided input are converted; the input is never written."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((6, 10))
    for variant in (x, x.astype(np.float16), x.astype(">f4"), x[:, ::3], x.T):
        before = variant.copy()
        got = _core.activation(variant, "tanh")
        np.testing.assert_allclose(got, np.tanh(np.float64(np.asarray(variant, np.float32))), rtol=ACT_RTOL)
        np.testing.assert_array_equal(variant, before)


@pytest.mark.parametrize(
    "x, act, exc, message",
    [
        (np.arange(5), "tanh", TypeError, "floating-point"),
        (np.ones(3, bool), "tanh", TypeError, "floating-point"),
        (np.ones(3, complex), "tanh", TypeError, "floating-point"),
        (np.ones(3, np.float32), "swish", ValueError, "act must be one of"),
        (np.array([0.0, np.nan], np.float32), "relu", ValueError, "NaN or infinity"),
    ],
)
def test_activation_refuses(x, act, exc, message):
    with pytest.raises(exc, match=message):
        _core.activation(x, act)


# ---- tanh and squash accuracy over the whole float32 range ---------------------------------------------


def every_997th_float32():
    """Every 997th non-negative finite float32 bit pattern (subnormals to FLT_MAX), and their negatives."""
    x = np.arange(0, 0x7F800000, 997, dtype=np.uint32).view(np.float32)
    return np.concatenate([x, -x, np.float32([FLT_MAX, -FLT_MAX])])


def dense_grid():
    return np.linspace(-12, 12, 2_400_001).astype(np.float32)


def tiny_and_huge():
    tiny = np.float32([TINY32, 2 * TINY32, 1e-44, 1e-40, 1.1754944e-38, 1e-37, 1e-30, 1e-20, 1e-10, 1e-7, 1e-6])
    huge = np.float32([8.5, 9.0, 9.01091385, 9.5, 10, 20, 100, 1e3, 1e10, 1e30, 1e38, FLT_MAX])
    both = np.concatenate([tiny, huge])
    return np.concatenate([both, -both, np.float32([0.0, -0.0])])


def max_relative_error(got, want):
    got, want = np.float64(got), np.float64(want)
    err = np.abs(got - want) / np.maximum(np.abs(want), np.finfo(np.float64).tiny)
    return err.max(), got[err.argmax()], want[err.argmax()]


@pytest.mark.parametrize("points", [every_997th_float32, dense_grid, tiny_and_huge])
def test_tanh_is_accurate_to_1e6_over_the_float32_range(points, path):
    """The fitted rational tanh (documented at ~3.6e-7) against numpy's float64 tanh: max relative error
    1e-6 over the whole float32 range."""
    x = points()
    err, got, want = max_relative_error(_core.activation(x, "tanh"), np.tanh(np.float64(x)))
    assert err <= 1e-6, f"relative error {err:.3g}: got {got!r}, want {want!r}"


@pytest.mark.parametrize("points", [every_997th_float32, dense_grid, tiny_and_huge])
def test_squash_is_accurate_to_1e6_over_the_float32_range(points, path):
    """squash = 1.7159 tanh(2a/3) within 1e-6 relative of the reference in float64, except that a
    subnormal input or output has at most a few subnormal steps of absolute error (2a/3 and 1.7159 * t
    rounded in float32 cannot do better there)."""
    x = points()
    got, want = np.float64(_core.activation(x, "squash")), ref.squash(np.float64(x))
    bad = np.abs(got - want) > 1e-6 * np.abs(want) + 4 * TINY32
    assert not bad.any(), f"x = {x[bad][:5]}: got {got[bad][:5]}, want {want[bad][:5]}"


@pytest.mark.parametrize("act, bound", [("tanh", 1.0), ("squash", np.float32(ref.SQUASH_A))])
def test_tanh_and_squash_are_odd_and_bounded(act, bound, path):
    """Exact odd symmetry, bit for bit (so tanh(-0) = -0), and |result| <= 1 (tanh) or 1.7159 (squash)."""
    x = np.concatenate([every_997th_float32(), dense_grid(), tiny_and_huge()])
    y, y_neg = _core.activation(x, act), _core.activation(-x, act)
    assert np.array_equal(y_neg.view(np.uint32), (-y).view(np.uint32))
    assert np.all(np.abs(y) <= bound)
    assert np.all(np.signbit(y) == np.signbit(x))


def test_tanh_is_exactly_one_far_out(path):
    """tanh is exactly +-1 from LF_TANH_CLAMP = 9.01091385 on, FLT_MAX included (the output clamp)."""
    far = np.float32([9.01091385, 9.5, 10, 1e3, 1e30, FLT_MAX])
    np.testing.assert_array_equal(_core.activation(far, "tanh"), np.ones(len(far), np.float32))
    np.testing.assert_array_equal(_core.activation(-far, "tanh"), -np.ones(len(far), np.float32))


def test_tanh_of_a_tiny_value_is_the_value_itself(path):
    """For |x| <= 1e-6, down to subnormals, tanh(x) == x exactly (csrc/tanh_coefficients.h: P0 = Q0 = 1,
    and p / q is a true division, so x * (p / q) == x)."""
    tiny = np.float32([TINY32, 1e-44, 1e-40, 1e-38, 1e-30, 1e-10, 1e-7, 1e-6])
    tiny = np.concatenate([tiny, -tiny])
    np.testing.assert_array_equal(_core.activation(tiny, "tanh"), tiny)


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("act", ACTS)
def test_activation_rejects_non_finite_input(value, act):
    """float32_array rejects infinity and NaN before C sees them."""
    with pytest.raises(ValueError, match="NaN or infinity"):
        _core.activation(np.float32([0.5, value, 1.0]), act)


def test_squash_maps_one_to_one(path):
    """The paper's choice of constants: f(1) = 1 (as closely as A = 1.7159 allows) and f(-1) = -1."""
    got = _core.activation(np.float32([1.0, -1.0]), "squash")
    want = ref.squash(np.array([1.0, -1.0]))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=0)
    np.testing.assert_allclose(got, [1.0, -1.0], rtol=1e-5)


# ---- exp (simd.h), through the sigmoid and ELU ----------------------------------------------------------

ULP = 2.0 ** -23  # float32's relative spacing at 1 (the largest relative ulp of any normal float)


@pytest.mark.parametrize("points", [every_997th_float32, dense_grid, tiny_and_huge])
def test_sigmoid_is_accurate_to_a_few_ulp_over_the_float32_range(points, path):
    """1 / (1 + exp(-x)) within 3 ulp (relative 3 * 2^-23) of numpy's float64 value wherever that is a
    normal float32, and within 1e-38 absolutely below (exp(-x) overflowing to inf gives 0 there). Far
    below 0 the sigmoid is exp(x) itself, so this bounds lf_exp's error too."""
    x = points()
    got, want = np.float64(_core.activation(x, "sigmoid")), ref.sigmoid(np.float64(x))
    bad = np.abs(got - want) > 3 * ULP * want + 1e-38
    assert not bad.any(), f"x = {x[bad][:5]}: got {got[bad][:5]}, want {want[bad][:5]}"
    assert np.all((got >= 0) & (got <= 1))


def test_sigmoid_far_out_is_exactly_0_or_1(path):
    far = np.float32([120, 1e3, 1e30, FLT_MAX])
    np.testing.assert_array_equal(_core.activation(far, "sigmoid"), np.ones(4, np.float32))
    np.testing.assert_array_equal(_core.activation(-far, "sigmoid"), np.zeros(4, np.float32))


@pytest.mark.parametrize("points", [every_997th_float32, dense_grid, tiny_and_huge])
def test_elu_is_accurate_to_a_few_ulp_below_zero(points, path):
    """exp(x) - 1 without cancellation near 0 (lf_expm1): within 3 ulp of numpy's expm1 in float64, tiny
    inputs included (ELU(x) = x there, as expm1), and exactly -1 far out."""
    x = points()
    x = x[x < 0]
    got, want = np.float64(_core.activation(x, "elu")), np.expm1(np.float64(x))
    bad = np.abs(got - want) > 3 * ULP * np.abs(want) + 4 * TINY32
    assert not bad.any(), f"x = {x[bad][:5]}: got {got[bad][:5]}, want {want[bad][:5]}"
    np.testing.assert_array_equal(_core.activation(np.float32([-20, -104, -1e30]), "elu"), [-1, -1, -1])


def test_leaky_relu_and_elu_keep_positive_inputs_exactly(path):
    x = np.concatenate([every_997th_float32(), dense_grid()])
    x = x[x > 0]
    for act in ("leaky_relu", "elu"):
        np.testing.assert_array_equal(_core.activation(x, act), x)
    np.testing.assert_array_equal(_core.activation(np.float32([-2.0, -0.0]), "leaky_relu"),
                                  np.float32([-2.0, -0.0]) * np.float32(0.01))
