"""Tests of lenet_fast.reference, the NumPy oracle, against a deliberately naive one.

The naive oracle below uses explicit Python loops over tiny shapes, in float64,
and shares nothing with the reference but the documented formulas.

Tolerances: float64 results are compared with rtol = atol = 1e-12 (every value
here is of order 1 and sums run over at most a few hundred terms, so the two
summation orders agree to about 1e-14); float32 results with rtol = atol = 1e-6.
"""

import math

import numpy as np
import pytest

from lenet_fast import reference as ref

TOL64 = {"rtol": 1e-12, "atol": 1e-12}
TOL32 = {"rtol": 1e-6, "atol": 1e-6}
DTYPES = (np.float32, np.float64)


# --- naive oracle ---------------------------------------------------------------------------------


def naive_conv2d(x, w, b):
    """Dense valid cross-correlation, one multiply-add at a time."""
    n_img, ci, h, wd = x.shape
    co, _, kh, kw = w.shape
    y = np.zeros((n_img, co, h - kh + 1, wd - kw + 1))
    for n in range(n_img):
        for o in range(co):
            for i in range(h - kh + 1):
                for j in range(wd - kw + 1):
                    acc = b[o]
                    for c in range(ci):
                        for u in range(kh):
                            for v in range(kw):
                                acc += w[o, c, u, v] * x[n, c, i + u, j + v]
                    y[n, o, i, j] = acc
    return y


def naive_conv2d_packed(x, w, b, table):
    """Cross-correlation with packed kernels, walking the table in row-major order."""
    n_img, ci, h, wd = x.shape
    co = table.shape[0]
    _, kh, kw = w.shape
    y = np.zeros((n_img, co, h - kh + 1, wd - kw + 1))
    for n in range(n_img):
        for i in range(h - kh + 1):
            for j in range(wd - kw + 1):
                k = 0  # index of the next packed kernel
                for o in range(co):
                    acc = b[o]
                    for c in range(ci):
                        if table[o, c]:
                            for u in range(kh):
                                for v in range(kw):
                                    acc += w[k, u, v] * x[n, c, i + u, j + v]
                            k += 1
                    y[n, o, i, j] = acc
    return y


def naive_subsample(x, mode, coef=None, bias=None):
    n_img, ch, h, wd = x.shape
    y = np.zeros((n_img, ch, h // 2, wd // 2))
    for n in range(n_img):
        for c in range(ch):
            for i in range(h // 2):
                for j in range(wd // 2):
                    block = [x[n, c, 2 * i + di, 2 * j + dj] for di in (0, 1) for dj in (0, 1)]
                    if mode == "trainable":
                        y[n, c, i, j] = coef[c] * sum(block) + bias[c]
                    elif mode == "average":
                        y[n, c, i, j] = sum(block) / 4
                    else:
                        y[n, c, i, j] = max(block)
    return y


def naive_linear(x, w, b):
    n_img, n_in = x.shape
    n_out = w.shape[1]
    y = np.zeros((n_img, n_out))
    for n in range(n_img):
        for o in range(n_out):
            y[n, o] = b[o] + sum(x[n, k] * w[k, o] for k in range(n_in))
    return y


def naive_rbf(x, centers):
    y = np.zeros((x.shape[0], centers.shape[0]))
    for n in range(x.shape[0]):
        for k in range(centers.shape[0]):
            y[n, k] = sum((x[n, j] - centers[k, j]) ** 2 for j in range(x.shape[1]))
    return y


def naive_softmax(z):
    """Softmax of each row of a 2-D array, straight from the definition (moderate inputs only)."""
    y = np.zeros(z.shape)
    for n in range(z.shape[0]):
        total = sum(math.exp(v) for v in z[n])
        for k in range(z.shape[1]):
            y[n, k] = math.exp(z[n, k]) / total
    return y


def naive_squash(a):
    return 1.7159 * np.tanh(2.0 / 3.0 * a)


def naive_relu(a):
    return np.maximum(a, 0.0)


def naive_flatten(s4):
    """(N, 16, 5, 5) -> (N, 400) with input index c * 25 + i * 5 + j, as documented for C5."""
    flat = np.zeros((s4.shape[0], 400))
    for n in range(s4.shape[0]):
        for c in range(16):
            for i in range(5):
                for j in range(5):
                    flat[n, c * 25 + i * 5 + j] = s4[n, c, i, j]
    return flat


# Table I of the paper as printed: rows are S2 maps 0-5, columns C3 maps 0-15, X = connected.
PAPER_TABLE_I = (
    "X...XXX..XXXX.XX",
    "XX...XXX..XXXX.X",
    "XXX...XXX..X.XXX",
    ".XXX..XXXX..X.XX",
    "..XXX..XXXX.XX.X",
    "...XXX..XXXX.XXX",
)
NAIVE_C3_TABLE = np.array([[ch == "X" for ch in row] for row in PAPER_TABLE_I]).T  # (16, 6)


def naive_forward(params, x, variant):
    p = params
    if variant == "classic":
        c1 = naive_squash(naive_conv2d(x, p["c1.weight"], p["c1.bias"]))
        s2 = naive_squash(naive_subsample(c1, "trainable", p["s2.coef"], p["s2.bias"]))
        c3 = naive_squash(naive_conv2d_packed(s2, p["c3.weight"], p["c3.bias"], NAIVE_C3_TABLE))
        s4 = naive_squash(naive_subsample(c3, "trainable", p["s4.coef"], p["s4.bias"]))
        c5 = naive_squash(naive_linear(naive_flatten(s4), p["c5.weight"], p["c5.bias"]))
        f6 = naive_squash(naive_linear(c5, p["f6.weight"], p["f6.bias"]))
        return naive_rbf(f6, p["rbf.centers"])
    c1 = naive_relu(naive_conv2d(x, p["c1.weight"], p["c1.bias"]))
    s2 = naive_subsample(c1, "max")
    c3 = naive_relu(naive_conv2d(s2, p["c3.weight"], p["c3.bias"]))
    s4 = naive_subsample(c3, "max")
    c5 = naive_relu(naive_linear(naive_flatten(s4), p["c5.weight"], p["c5.bias"]))
    f6 = naive_relu(naive_linear(c5, p["f6.weight"], p["f6.bias"]))
    return naive_linear(f6, p["out.weight"], p["out.bias"])


# --- parameters of the documented shapes ------------------------------------------------------------

# name -> (shape, fan-in); drawn like the paper's initialisation, uniform in +-2.4 / fan-in,
# so that activations stay in a meaningful range. The RBF centers are +-1 "bitmaps".
PARAM_SPECS = {
    "classic": {
        "c1.weight": ((6, 1, 5, 5), 25), "c1.bias": ((6,), 25),
        "s2.coef": ((6,), 4), "s2.bias": ((6,), 4),
        "c3.weight": ((60, 5, 5), 100), "c3.bias": ((16,), 100),
        "s4.coef": ((16,), 4), "s4.bias": ((16,), 4),
        "c5.weight": ((400, 120), 400), "c5.bias": ((120,), 400),
        "f6.weight": ((120, 84), 120), "f6.bias": ((84,), 120),
        "rbf.centers": ((10, 84), None),
    },
    "modern": {
        "c1.weight": ((6, 1, 5, 5), 25), "c1.bias": ((6,), 25),
        "c3.weight": ((16, 6, 5, 5), 150), "c3.bias": ((16,), 150),
        "c5.weight": ((400, 120), 400), "c5.bias": ((120,), 400),
        "f6.weight": ((120, 84), 120), "f6.bias": ((84,), 120),
        "out.weight": ((84, 10), 84), "out.bias": ((10,), 84),
    },
}


def random_params(variant, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    params = {}
    for name, (shape, fan_in) in PARAM_SPECS[variant].items():
        if fan_in is None:
            value = rng.choice([-1.0, 1.0], size=shape)
        else:
            value = rng.uniform(-2.4 / fan_in, 2.4 / fan_in, size=shape)
        params[name] = value.astype(dtype)
    return params


def random_input(n, seed, dtype=np.float64):
    """A normalized-looking batch (N, 1, 32, 32) with values in [-0.1, 1.175]."""
    rng = np.random.default_rng(seed)
    return rng.uniform(-0.1, 1.175, size=(n, 1, 32, 32)).astype(dtype)


# --- activations ------------------------------------------------------------------------------------


def test_squash_maps_plus_minus_one_to_themselves():
    # The paper's choice of A and S: f(1) = 1 and f(-1) = -1.
    assert abs(ref.squash(np.float64(1.0)) - 1.0) < 1e-4
    assert abs(ref.squash(np.float64(-1.0)) + 1.0) < 1e-4
    assert ref.SQUASH_A == 1.7159
    assert ref.SQUASH_S == 2.0 / 3.0


def test_activations_match_their_definitions():
    a = np.random.default_rng(0).normal(size=(3, 7)) * 3
    np.testing.assert_allclose(ref.squash(a), naive_squash(a), **TOL64)
    np.testing.assert_allclose(ref.tanh(a), np.vectorize(math.tanh)(a), **TOL64)
    np.testing.assert_array_equal(ref.relu(a), np.where(a > 0, a, 0.0))
    assert ref.identity(a) is a
    np.testing.assert_allclose(ref.leaky_relu(a), np.where(a > 0, a, 0.01 * a), **TOL64)
    np.testing.assert_allclose(ref.elu(a), np.where(a > 0, a, np.vectorize(math.expm1)(a)), **TOL64)
    np.testing.assert_allclose(ref.sigmoid(a), 1 / (1 + np.vectorize(math.exp)(-a)), **TOL64)
    assert set(ref.ACTIVATIONS) == {"squash", "tanh", "relu", "leaky_relu", "elu", "sigmoid", "none"}
    for name, fn in ref.ACTIVATIONS.items():
        np.testing.assert_array_equal(ref.activation(a, name), fn(a))


# --- conv2d -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "x_shape, w_shape",
    [
        ((2, 3, 7, 6), (4, 3, 3, 2)),  # non-square kernel: catches swapped axes
        ((1, 1, 5, 5), (2, 1, 5, 5)),  # kernel as large as the image (like C5): 1x1 output
        ((3, 2, 4, 4), (1, 2, 1, 1)),
    ],
)
def test_conv2d_dense_matches_naive(x_shape, w_shape):
    rng = np.random.default_rng(1)
    x = rng.normal(size=x_shape)
    w = rng.normal(size=w_shape)
    b = rng.normal(size=w_shape[0])
    np.testing.assert_allclose(ref.conv2d(x, w, b), naive_conv2d(x, w, b), **TOL64)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_conv2d_packed_matches_naive(seed):
    rng = np.random.default_rng(seed)
    co, ci, kh, kw = 5, 4, 3, 2
    table = rng.random((co, ci)) < 0.5
    table[2] = False  # an output map with no connections: bias only
    table[0, 0] = True  # and at least one connection somewhere
    x = rng.normal(size=(2, ci, 6, 7))
    w = rng.normal(size=(table.sum(), kh, kw))
    b = rng.normal(size=co)
    y = ref.conv2d(x, w, b, table=table)
    np.testing.assert_allclose(y, naive_conv2d_packed(x, w, b, table), **TOL64)
    np.testing.assert_array_equal(y[:, 2], np.broadcast_to(b[2], y[:, 2].shape))


def test_c3_table_is_table_i_of_the_paper():
    assert ref.C3_TABLE.shape == (16, 6)
    assert ref.C3_TABLE.dtype == bool
    np.testing.assert_array_equal(ref.C3_TABLE, NAIVE_C3_TABLE)
    assert ref.C3_TABLE.sum() == 60


# --- subsample --------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["trainable", "average", "max"])
@pytest.mark.parametrize(
    "shape",
    [(2, 3, 4, 6), (2, 3, 5, 7), (1, 2, 5, 4), (1, 2, 4, 3), (1, 1, 1, 3)],  # even, odd, odd H, odd W, empty
)
def test_subsample_matches_naive(mode, shape):
    rng = np.random.default_rng(2)
    x = rng.normal(size=shape)
    coef = rng.normal(size=shape[1])
    bias = rng.normal(size=shape[1])
    args = (coef, bias) if mode == "trainable" else ()
    y = ref.subsample(x, mode, *args)
    assert y.shape == (shape[0], shape[1], shape[2] // 2, shape[3] // 2)
    np.testing.assert_allclose(y, naive_subsample(x, mode, coef, bias), **TOL64)


# --- linear, rbf, softmax ---------------------------------------------------------------------------


def test_linear_matches_naive():
    rng = np.random.default_rng(3)
    x, w, b = rng.normal(size=(3, 7)), rng.normal(size=(7, 5)), rng.normal(size=5)
    np.testing.assert_allclose(ref.linear(x, w, b), naive_linear(x, w, b), **TOL64)


def test_rbf_matches_naive():
    rng = np.random.default_rng(4)
    x, centers = rng.normal(size=(3, 6)), rng.normal(size=(4, 6))
    np.testing.assert_allclose(ref.rbf(x, centers), naive_rbf(x, centers), **TOL64)


def test_rbf_has_no_cancellation_near_a_center():
    # Far from the origin, |x|^2 - 2 x.c + |c|^2 loses every digit; the differences are exact.
    x = np.full((1, 84), 1e8 + 0.5)
    centers = np.full((2, 84), 1e8)
    centers[1] = x[0]
    np.testing.assert_array_equal(ref.rbf(x, centers), [[84 * 0.25, 0.0]])


def test_softmax_and_log_softmax_match_naive():
    z = np.random.default_rng(5).normal(size=(4, 7)) * 3
    expected = naive_softmax(z)
    np.testing.assert_allclose(ref.softmax(z), expected, **TOL64)
    np.testing.assert_allclose(ref.log_softmax(z), np.log(expected), **TOL64)


def test_softmax_works_over_the_last_axis_of_any_rank():
    z = np.random.default_rng(6).normal(size=(2, 3, 5))
    expected = naive_softmax(z.reshape(6, 5)).reshape(2, 3, 5)
    np.testing.assert_allclose(ref.softmax(z), expected, **TOL64)
    np.testing.assert_allclose(ref.log_softmax(z), np.log(expected), **TOL64)


def test_softmax_is_stable_for_large_magnitudes():
    z = np.array(
        [
            [1000.0, 1001.0, 1002.0],
            [-1000.0, -1001.0, -999.0],
            [1e4, -1e4, 0.0],
            [710.0, 0.0, -710.0],  # exp(710) overflows float64
        ]
    )
    s, log_s = ref.softmax(z), ref.log_softmax(z)
    assert np.all(np.isfinite(s)) and np.all(np.isfinite(log_s))
    np.testing.assert_allclose(s.sum(axis=-1), 1.0, **TOL64)
    np.testing.assert_allclose(np.exp(log_s), s, **TOL64)
    # Shift invariance: the first two rows are softmax([0, 1, 2]) and softmax([0, -1, 1]).
    np.testing.assert_allclose(s[:2], naive_softmax(z[:2] - z[:2, :1]), **TOL64)


# --- normalize_input --------------------------------------------------------------------------------


def naive_normalize(images, size):
    """images: (N, size, size) pixels already scaled to [0, 1]; returns (N, 1, 32, 32) float64."""
    border = (32 - size) // 2
    out = np.full((images.shape[0], 1, 32, 32), -0.1)
    for n in range(images.shape[0]):
        for i in range(size):
            for j in range(size):
                out[n, 0, border + i, border + j] = images[n, i, j] * 1.275 - 0.1
    return out


@pytest.mark.parametrize("kind", [np.uint8, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(28, 28), (32, 32), (3, 28, 28), (3, 32, 32), (3, 1, 32, 32)])
def test_normalize_input(shape, kind):
    rng = np.random.default_rng(7)
    size = shape[-1]
    if kind == np.uint8:
        images, ink = rng.integers(0, 256, size=shape).astype(np.uint8), 255
    else:
        images, ink = rng.random(size=shape).astype(kind), 1.0
    images.reshape(-1, size, size)[0, :2, 0] = (ink, 0)  # a view: one full-ink and one background pixel
    unit = images / 255.0 if kind == np.uint8 else images.astype(np.float64)

    x = ref.normalize_input(images)

    n = 1 if len(shape) == 2 else shape[0]
    out_dtype = np.float64 if kind == np.float64 else np.float32
    assert x.shape == (n, 1, 32, 32)
    assert x.dtype == out_dtype
    tol = TOL64 if out_dtype == np.float64 else TOL32
    np.testing.assert_allclose(x, naive_normalize(unit.reshape(n, size, size), size), **tol)
    border = (32 - size) // 2
    np.testing.assert_allclose(x[0, 0, border, border], 1.175, **tol)  # full ink
    np.testing.assert_allclose(x[0, 0, border + 1, border], -0.1, **tol)  # background
    if size == 28:
        # Padding is background exactly (the dtype's nearest value to -0.1), on every side.
        pad = out_dtype(-0.1)
        for edge in (x[:, :, :2, :], x[:, :, -2:, :], x[:, :, :, :2], x[:, :, :, -2:]):
            assert np.all(edge == pad)


@pytest.mark.parametrize("shape", [(30, 30), (2, 3, 32, 32), (2, 28, 32)])
def test_normalize_input_rejects_other_shapes(shape):
    with pytest.raises(ValueError):
        ref.normalize_input(np.zeros(shape, dtype=np.uint8))


# --- forward and predict ----------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["classic", "modern"])
def test_forward_matches_naive(variant):
    params = random_params(variant, seed=8)
    x = random_input(2, seed=9)
    np.testing.assert_allclose(ref.forward(params, x, variant), naive_forward(params, x, variant), **TOL64)


@pytest.mark.parametrize("n", [0, 1, 3])
@pytest.mark.parametrize("variant", ["classic", "modern"])
def test_forward_and_predict_shapes(variant, n):
    params = random_params(variant, seed=10)
    x = random_input(n, seed=11)
    out = ref.forward(params, x, variant)
    assert out.shape == (n, 10)
    assert np.all(np.isfinite(out))
    labels = ref.predict(params, x, variant)
    assert labels.shape == (n,)
    assert labels.dtype == np.int64
    expected = out.argmin(axis=1) if variant == "classic" else out.argmax(axis=1)
    np.testing.assert_array_equal(labels, expected)


def test_classic_distances_are_non_negative():
    params = random_params("classic", seed=12)
    assert np.all(ref.forward(params, random_input(3, seed=13), "classic") >= 0)


# --- dtype preservation and empty batches -----------------------------------------------------------


def _packed_conv2d(rng, dtype, n):
    table = rng.random((4, 3)) < 0.6
    table[0, 0] = True
    return ref.conv2d(
        rng.normal(size=(n, 3, 6, 6)).astype(dtype),
        rng.normal(size=(table.sum(), 3, 3)).astype(dtype),
        rng.normal(size=4).astype(dtype),
        table=table,
    )


# name -> function of (rng, dtype, n) running one reference function on a batch of n.
CASES = {
    "squash": lambda rng, dt, n: ref.squash(rng.normal(size=(n, 5)).astype(dt)),
    "tanh": lambda rng, dt, n: ref.tanh(rng.normal(size=(n, 5)).astype(dt)),
    "relu": lambda rng, dt, n: ref.relu(rng.normal(size=(n, 5)).astype(dt)),
    "identity": lambda rng, dt, n: ref.identity(rng.normal(size=(n, 5)).astype(dt)),
    "conv2d": lambda rng, dt, n: ref.conv2d(
        rng.normal(size=(n, 3, 6, 6)).astype(dt),
        rng.normal(size=(4, 3, 3, 3)).astype(dt),
        rng.normal(size=4).astype(dt),
    ),
    "conv2d_packed": _packed_conv2d,
    "subsample_trainable": lambda rng, dt, n: ref.subsample(
        rng.normal(size=(n, 3, 5, 5)).astype(dt), "trainable",
        rng.normal(size=3).astype(dt), rng.normal(size=3).astype(dt),
    ),
    "subsample_average": lambda rng, dt, n: ref.subsample(rng.normal(size=(n, 3, 5, 5)).astype(dt), "average"),
    "subsample_max": lambda rng, dt, n: ref.subsample(rng.normal(size=(n, 3, 5, 5)).astype(dt), "max"),
    "linear": lambda rng, dt, n: ref.linear(
        rng.normal(size=(n, 6)).astype(dt), rng.normal(size=(6, 4)).astype(dt), rng.normal(size=4).astype(dt)
    ),
    "rbf": lambda rng, dt, n: ref.rbf(rng.normal(size=(n, 6)).astype(dt), rng.normal(size=(4, 6)).astype(dt)),
    "softmax": lambda rng, dt, n: ref.softmax(rng.normal(size=(n, 5)).astype(dt)),
    "log_softmax": lambda rng, dt, n: ref.log_softmax(rng.normal(size=(n, 5)).astype(dt)),
    "normalize_input": lambda rng, dt, n: ref.normalize_input(rng.random(size=(n, 28, 28)).astype(dt)),
    "forward_classic": lambda rng, dt, n: ref.forward(
        random_params("classic", 14, dt), random_input(n, 15, dt), "classic"
    ),
    "forward_modern": lambda rng, dt, n: ref.forward(
        random_params("modern", 14, dt), random_input(n, 15, dt), "modern"
    ),
}
EXPECTED_SHAPES = {  # per-image output shape for the cases above
    "squash": (5,), "tanh": (5,), "relu": (5,), "identity": (5,),
    "conv2d": (4, 4, 4), "conv2d_packed": (4, 4, 4),
    "subsample_trainable": (3, 2, 2), "subsample_average": (3, 2, 2), "subsample_max": (3, 2, 2),
    "linear": (4,), "rbf": (4,), "softmax": (5,), "log_softmax": (5,),
    "normalize_input": (1, 32, 32), "forward_classic": (10,), "forward_modern": (10,),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_dtype_is_preserved(name, dtype):
    out = CASES[name](np.random.default_rng(16), dtype, 2)
    assert out.dtype == dtype
    assert out.shape == (2,) + EXPECTED_SHAPES[name]


@pytest.mark.parametrize("name", sorted(CASES))
def test_empty_batch_gives_empty_result(name):
    out = CASES[name](np.random.default_rng(17), np.float64, 0)
    assert out.shape == (0,) + EXPECTED_SHAPES[name]

