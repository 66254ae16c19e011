"""Tests of the training side of lenet_fast.reference: layer backward passes, losses, the whole
network's gradient, the Gauss-Newton diagonal and the optimizer steps.

Gradients are checked against central finite differences in float64,
    dE/dw ~ (E(w + h) - E(w - h)) / (2 h),
one entry at a time, on small random inputs (every generator seeded). A check passes when the
normwise relative error max|analytic - numeric| / max|numeric| is at most GRAD_RTOL = 1e-6.
Why 1e-6: the truncation error of a central difference is about h^2 / 6 |E'''| and the rounding
error about a few eps |E| / h (eps = 2.2e-16), against gradients whose largest checked entry is
at least 0.04 (GRAD_FLOOR = 1e-3 is asserted, so that a check proves something). The step h is
chosen per case to keep both well below 1e-6:
  - layers and losses, h = STEP = 1e-5: |E| ~ 1-100, both errors <= ~1e-9 relative (measured:
    at most 1.2e-9). Kinks are kept at least 1e-2 away (relu inputs; max-pool values 0.1 apart).
  - the classic network, h = CLASSIC_STEP = 1e-4: it is smooth everywhere (squash only) but the
    summed loss is large (|E| ~ 150) while some gradients are small (~0.04), so a larger step
    keeps rounding down (measured: at most 1.1e-8; with h = 1e-6 it would be 3e-7).
  - the modern network, h = MODERN_STEP = 1e-6: it has kinks (relu, max pooling), so the test
    point is chosen with every relu input and every max-pool winner's lead at least KINK_MARGIN =
    1e-4 from its kink, 100 times what a 1e-6 step can move a pre-activation unless its
    sensitivity to one parameter exceeds 100 (measured error: at most 1.4e-9).
A genuine mistake (a wrong sign, a lost factor, a transposed kernel, one entry off by 1%) gives
an error of 1e-2 or more, 10^4 times the tolerance: the meta-tests below show the same checks
failing on such mistakes.

Second derivatives use second differences (E(w + h) - 2 E(w) + E(w - h)) / h^2 with h = 1e-3:
relative truncation error h^2 / 12 |E''''| / |E''| ~ 1e-7, hence rtol = HESS_RTOL = 1e-5; and an
absolute rounding error up to about 4 eps |E| / h^2 ~ 1e-9 |E|, hence atol = hess_atol(E), twice
that bound (about 3e-7 for the classic network's |E| ~ 150, well below the entries compared).

Exact identities (the Gauss-Newton rules against a brute-force loop, optimizer steps) use
rtol = 1e-12, as in test_reference.py.
"""

import math

import numpy as np
import pytest

from lenet_fast import model, paper
from lenet_fast import reference as ref

STEP = 1e-5  # layers and losses
CLASSIC_STEP = 1e-4  # the classic network (smooth, large |E|)
MODERN_STEP = 1e-6  # the modern network (kinks kept KINK_MARGIN away)
GRAD_RTOL = 1e-6
GRAD_FLOOR = 1e-3
STEP2 = 1e-3
HESS_RTOL = 1e-5
TOL64 = {"rtol": 1e-12, "atol": 1e-12}
KINK_MARGIN = 1e-4  # modern network: relu inputs and max-pool winners stay this far from a kink
NETWORK_STEP = {"classic": CLASSIC_STEP, "modern": MODERN_STEP}


# --- finite-difference helpers ----------------------------------------------------------------------


def numeric_gradient(f, x, entries, h=STEP):
    """Central differences of the scalar f() w.r.t. the flat entries of x (changed in place, restored)."""
    flat = x.reshape(-1)
    assert np.shares_memory(flat, x), "x must be contiguous, so that the flat view changes it"
    out = np.empty(len(entries))
    for k, i in enumerate(entries):
        old = flat[i]
        flat[i] = old + h
        up = f()
        flat[i] = old - h
        down = f()
        flat[i] = old
        out[k] = (up - down) / (2 * h)
    return out


def check_gradient(analytic, f, x, entries=None, h=STEP, rtol=GRAD_RTOL):
    """Assert that analytic (x's shape) is the gradient of f() w.r.t. x at the given flat entries
    (all by default); returns the normwise relative error."""
    assert analytic.shape == x.shape
    entries = np.arange(x.size) if entries is None else np.asarray(entries)
    a = analytic.reshape(-1)[entries]
    assert np.max(np.abs(a)) > GRAD_FLOOR, "the analytic gradient is (nearly) zero: the check proves nothing"
    n = numeric_gradient(f, x, entries, h)
    err = np.max(np.abs(a - n)) / np.max(np.abs(n))
    assert err <= rtol, f"gradient mismatch: normwise relative error {err:.3g} > {rtol:g}"
    return err


def numeric_second_derivative(f, x, index, h=STEP2):
    flat = x.reshape(-1)
    old = flat[index]
    center = f()
    flat[index] = old + h
    up = f()
    flat[index] = old - h
    down = f()
    flat[index] = old
    return (up - 2 * center + down) / h**2


def hess_atol(value):
    """Twice the rounding bound 4 eps |E| / h^2 of a second difference of a scalar of size value."""
    return 8 * np.finfo(np.float64).eps * abs(value) / STEP2**2


def perturbed(g, factor=1.01):
    """g with its largest-magnitude entry scaled by factor (a small, realistic mistake)."""
    g = g.copy()
    g.reshape(-1)[np.argmax(np.abs(g))] *= factor
    return g


# --- activations ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["squash", "tanh", "relu", "leaky_relu", "elu", "sigmoid", "none"])
def test_activation_backward_matches_finite_differences(name):
    rng = np.random.default_rng(100)
    a = rng.normal(size=(3, 7)) * 2
    a[np.abs(a) < 1e-2] = 0.5  # keep relu's kink out of reach of the differences
    r = rng.normal(size=a.shape)
    f = lambda: np.sum(r * ref.activation(a, name))  # noqa: E731
    check_gradient(ref.activation_backward(a, r, name), f, a)
    np.testing.assert_allclose(ref.activation_backward(a, r, name), r * ref.activation_derivative(a, name), **TOL64)


def test_activation_derivatives_at_known_points():
    a = np.array([0.0, -0.0, 1.0, -1.0, 1e-300])
    ones = np.ones_like(a)
    np.testing.assert_array_equal(ref.activation_backward(a, ones, "relu"), [0, 0, 1, 0, 1])  # f'(0) = 0
    np.testing.assert_array_equal(ref.activation_backward(a, ones, "none"), ones)
    np.testing.assert_allclose(ref.activation_backward(a[:1], ones[:1], "squash"), [1.7159 * 2 / 3], **TOL64)
    np.testing.assert_allclose(ref.activation_backward(a[:1], ones[:1], "tanh"), [1.0], **TOL64)
    # relu passes no gradient below the kink, even an infinite one
    np.testing.assert_array_equal(ref.activation_backward(np.array([-1.0]), np.array([np.inf]), "relu"), [0.0])


# --- conv2d_backward --------------------------------------------------------------------------------


def conv_case(seed, x_shape, w_shape, packed):
    rng = np.random.default_rng(seed)
    co, ci, kh, kw = w_shape
    table = None
    if packed:
        table = rng.random((co, ci)) < 0.5
        table[0, 0] = True
        table[-1] = False  # an output map with no connections at all
        w = rng.normal(size=(int(table.sum()), kh, kw))
    else:
        w = rng.normal(size=w_shape)
    x = rng.normal(size=x_shape)
    b = rng.normal(size=co)
    r = rng.normal(size=(x_shape[0], co, x_shape[2] - kh + 1, x_shape[3] - kw + 1))
    return x, w, b, r, table


CONV_SHAPES = [
    ((2, 3, 7, 6), (4, 3, 3, 2)),  # non-square kernel: catches swapped axes
    ((1, 2, 5, 5), (3, 2, 5, 5)),  # kernel as large as the image: 1x1 output
    ((2, 2, 4, 5), (3, 2, 1, 1)),
    ((1, 3, 6, 6), (4, 3, 2, 3)),
]


@pytest.mark.parametrize("packed", [False, True])
@pytest.mark.parametrize("x_shape, w_shape", CONV_SHAPES)
def test_conv2d_backward_matches_finite_differences(x_shape, w_shape, packed):
    x, w, b, r, table = conv_case(1, x_shape, w_shape, packed)
    f = lambda: np.sum(r * ref.conv2d(x, w, b, table=table))  # noqa: E731
    dx, dw, db = ref.conv2d_backward(x, w, r, table=table)
    assert dw.shape == w.shape and db.shape == b.shape
    check_gradient(dx, f, x)
    check_gradient(dw, f, w)
    check_gradient(db, f, b)


def test_conv2d_backward_packed_is_the_dense_gradient_in_table_order():
    x, w, b, r, table = conv_case(2, (2, 4, 6, 7), (5, 4, 3, 2), packed=True)
    dense = np.zeros(table.shape + w.shape[1:])
    dense[table] = w
    dx_p, dw_p, db_p = ref.conv2d_backward(x, w, r, table=table)
    dx_d, dw_d, db_d = ref.conv2d_backward(x, dense, r)
    np.testing.assert_allclose(dx_p, dx_d, **TOL64)
    np.testing.assert_allclose(db_p, db_d, **TOL64)
    k = 0
    for o in range(table.shape[0]):  # walk the table in row-major order
        for c in range(table.shape[1]):
            if table[o, c]:
                np.testing.assert_allclose(dw_p[k], dw_d[o, c], **TOL64)
                k += 1
    assert k == len(dw_p)


def test_check_gradient_catches_conv_mistakes():
    x, w, b, r, _ = conv_case(3, (2, 3, 7, 6), (4, 3, 3, 2), packed=False)
    f = lambda: np.sum(r * ref.conv2d(x, w, b))  # noqa: E731
    dx, dw, db = ref.conv2d_backward(x, w, r)
    dx_unflipped, _, _ = ref.conv2d_backward(x, w[:, :, ::-1, ::-1], r)  # forgot to turn the kernel
    mistakes = [
        (perturbed(dw), w),
        (dw[:, :, ::-1, ::-1], w),  # kernel gradient turned by 180 degrees
        (perturbed(dx), x),
        (dx_unflipped, x),
        (perturbed(db), b),
        (2 * db, b),
    ]
    for wrong, wrt in mistakes:
        with pytest.raises(AssertionError, match="gradient mismatch"):
            check_gradient(wrong, f, wrt)
    with pytest.raises(AssertionError, match="proves nothing"):
        check_gradient(np.zeros_like(db), f, b)


# --- subsample_backward -----------------------------------------------------------------------------


def distinct_values(rng, shape, spacing=0.1):
    """Random values, pairwise at least `spacing` apart: no ties, no near-ties in max pooling."""
    return rng.permutation(math.prod(shape)).reshape(shape) * spacing + rng.uniform(0, spacing / 10, shape) - 1


POOL_SHAPES = [(2, 3, 4, 6), (2, 3, 5, 7), (1, 2, 5, 4), (1, 2, 4, 3)]  # even, odd, odd H, odd W


@pytest.mark.parametrize("mode", ["trainable", "average", "max"])
@pytest.mark.parametrize("shape", POOL_SHAPES)
def test_subsample_backward_matches_finite_differences(mode, shape):
    rng = np.random.default_rng(4)
    x = distinct_values(rng, shape)
    coef = rng.normal(size=shape[1])
    bias = rng.normal(size=shape[1])
    r = rng.normal(size=(shape[0], shape[1], shape[2] // 2, shape[3] // 2))
    args = (coef, bias) if mode == "trainable" else ()
    f = lambda: np.sum(r * ref.subsample(x, mode, *args))  # noqa: E731
    dx, dcoef, dbias = ref.subsample_backward(x, r, mode, coef if mode == "trainable" else None)
    check_gradient(dx, f, x)
    # the odd last row / column is dropped by the forward pass: exactly zero gradient
    h, w = shape[2:]
    assert np.all(dx[:, :, h - h % 2 :, :] == 0) and np.all(dx[:, :, :, w - w % 2 :] == 0)
    if mode == "trainable":
        check_gradient(dcoef, f, coef)
        check_gradient(dbias, f, bias)
    else:
        assert dcoef is None and dbias is None


def test_subsample_backward_of_an_empty_output_is_zero():
    x = np.ones((1, 2, 1, 3))
    for mode in ("trainable", "average", "max"):
        dx, _, _ = ref.subsample_backward(x, np.zeros((1, 2, 0, 1)), mode, np.ones(2))
        np.testing.assert_array_equal(dx, np.zeros_like(x))


@pytest.mark.parametrize(
    "window, winner",
    [
        ([[3, 3], [3, 3]], (0, 0)),  # four-way tie: top-left
        ([[1, 2], [2, 2]], (0, 1)),  # top-right beats bottom-left and bottom-right
        ([[0, 1], [2, 2]], (1, 0)),  # bottom-left beats bottom-right
        ([[0, 1], [1, 2]], (1, 1)),
        ([[-1, -1], [-3, -2]], (0, 0)),
    ],
)
def test_max_pooling_tie_rule(window, winner):
    x = np.array(window, dtype=float)[None, None]
    dx, _, _ = ref.subsample_backward(x, np.array([[[[5.0]]]]), "max")
    expected = np.zeros((2, 2))
    expected[winner] = 5.0
    np.testing.assert_array_equal(dx[0, 0], expected)


def test_check_gradient_catches_pooling_mistakes():
    rng = np.random.default_rng(5)
    x = distinct_values(rng, (2, 3, 5, 7))
    r = rng.normal(size=(2, 3, 2, 3))
    f = lambda: np.sum(r * ref.subsample(x, "max"))  # noqa: E731
    dx, _, _ = ref.subsample_backward(x, r, "max")
    average, _, _ = ref.subsample_backward(x, r, "average")
    for wrong in (perturbed(dx), 4 * average, dx[:, :, ::-1]):
        with pytest.raises(AssertionError, match="gradient mismatch"):
            check_gradient(wrong, f, x)


# --- linear_backward, rbf_backward ------------------------------------------------------------------


def test_linear_backward_matches_finite_differences():
    rng = np.random.default_rng(6)
    x, w, b = rng.normal(size=(3, 7)), rng.normal(size=(7, 5)), rng.normal(size=5)
    r = rng.normal(size=(3, 5))
    f = lambda: np.sum(r * ref.linear(x, w, b))  # noqa: E731
    dx, dw, db = ref.linear_backward(x, w, r)
    check_gradient(dx, f, x)
    check_gradient(dw, f, w)
    check_gradient(db, f, b)
    with pytest.raises(AssertionError, match="gradient mismatch"):
        check_gradient(perturbed(dw), f, w)


def test_rbf_backward_matches_finite_differences():
    rng = np.random.default_rng(7)
    x, centers = rng.normal(size=(3, 6)), rng.choice([-1.0, 1.0], size=(4, 6))
    r = rng.normal(size=(3, 4))
    f = lambda: np.sum(r * ref.rbf(x, centers))  # noqa: E731
    dx = ref.rbf_backward(x, centers, r)
    check_gradient(dx, f, x)
    with pytest.raises(AssertionError, match="gradient mismatch"):
        check_gradient(perturbed(dx), f, x)


# --- losses -----------------------------------------------------------------------------------------


def naive_map_loss(y, labels, j):
    """The MAP criterion straight from its definition (moderate distances only)."""
    return np.array([y[p, d] + math.log(math.exp(-j) + sum(math.exp(-v) for v in y[p])) for p, d in enumerate(labels)])


LABELS = np.array([0, 3, 9, 3, 5])


def loss_case(name, seed=8):
    rng = np.random.default_rng(seed)
    if name == "xent":
        return rng.normal(size=(5, 10)) * 3
    return rng.uniform(0, 20, size=(5, 10))  # distances, on both sides of j = 10


@pytest.mark.parametrize(
    "name, fn",
    [
        ("map", ref.map_loss),
        ("map_j3", lambda y, lab: ref.map_loss(y, lab, j=3.0)),
        ("rbf", ref.rbf_loss),
        ("xent", ref.cross_entropy),
        ("hinge", ref.hinge_loss),
    ],
)
def test_loss_gradients_match_finite_differences(name, fn):
    y = loss_case(name)
    loss, grad = fn(y, LABELS)
    assert loss.shape == (5,) and grad.shape == (5, 10)
    check_gradient(grad, lambda: np.sum(fn(y, LABELS)[0]), y)
    with pytest.raises(AssertionError, match="gradient mismatch"):
        check_gradient(perturbed(grad), lambda: np.sum(fn(y, LABELS)[0]), y)


def test_loss_values_match_their_definitions():
    y = loss_case("map")
    np.testing.assert_allclose(ref.map_loss(y, LABELS)[0], naive_map_loss(y, LABELS, paper.MAP_J), **TOL64)
    np.testing.assert_allclose(ref.map_loss(y, LABELS, j=2.5)[0], naive_map_loss(y, LABELS, 2.5), **TOL64)
    np.testing.assert_array_equal(ref.rbf_loss(y, LABELS)[0], y[np.arange(5), LABELS])
    z = loss_case("xent")
    expected = [-math.log(math.exp(z[p, d]) / sum(math.exp(v) for v in z[p])) for p, d in enumerate(LABELS)]
    np.testing.assert_allclose(ref.cross_entropy(z, LABELS)[0], expected, **TOL64)


def test_loss_gradient_row_sums():
    y = loss_case("map")
    onehot = np.eye(10)[LABELS]
    # MAP: 1 - (the classes' total share) = the rubbish class's share exp(-j) / (exp(-j) + sum exp(-y))
    for j in (paper.MAP_J, 3.0):
        rubbish = np.exp(-j) / (np.exp(-j) + np.exp(-y).sum(axis=1))
        _, grad = ref.map_loss(y, LABELS, j)
        np.testing.assert_allclose(grad.sum(axis=1), rubbish, **TOL64)
        assert np.all(grad.sum(axis=1) > 0)
        np.testing.assert_allclose(grad, onehot - np.exp(-y) / (np.exp(-j) + np.exp(-y).sum(axis=1))[:, None], **TOL64)
    np.testing.assert_array_equal(ref.rbf_loss(y, LABELS)[1], onehot)  # plain: the one-hot, sum 1
    _, grad = ref.cross_entropy(loss_case("xent"), LABELS)
    np.testing.assert_allclose(grad.sum(axis=1), 0, atol=1e-15)  # cross-entropy: sum 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_losses_are_finite_for_huge_distances(dtype):
    y = np.full((3, 10), 1e4, dtype=dtype)
    y[1, 4] = 3.0
    y[2] = np.linspace(1e4, 2e4, 10)
    labels = np.array([0, 0, 9])
    loss, grad = ref.map_loss(y, labels)
    assert loss.dtype == dtype and grad.dtype == dtype
    assert np.all(np.isfinite(loss)) and np.all(np.isfinite(grad))
    tol = {"rtol": 1e-6 if dtype == np.float32 else 1e-12}
    # every distance >> j: the rubbish term dominates, loss = y_D - j
    np.testing.assert_allclose(loss[[0, 2]], [1e4 - paper.MAP_J, 2e4 - paper.MAP_J], **tol)
    np.testing.assert_allclose(grad[[0, 2]], np.eye(10)[[0, 9]], atol=1e-12)
    # one distance of 3: loss = y_D + log(exp(-j) + exp(-3))
    np.testing.assert_allclose(loss[1], 1e4 - 3 + math.log1p(math.exp(3 - paper.MAP_J)), **tol)
    for fn in (ref.rbf_loss, ref.cross_entropy):
        loss, grad = fn(y, labels)
        assert np.all(np.isfinite(loss)) and np.all(np.isfinite(grad))


def test_map_loss_with_large_j_is_cross_entropy_of_negated_distances():
    y = loss_case("map")
    loss, grad = ref.map_loss(y, LABELS, j=1e3)
    xent_loss, xent_grad = ref.cross_entropy(-y, LABELS)
    np.testing.assert_allclose(loss, xent_loss, **TOL64)
    np.testing.assert_allclose(grad, -xent_grad, **TOL64)  # d/dy = -d/dz at z = -y


# --- whole network: backward ------------------------------------------------------------------------


def network_params(variant, seed):
    """Parameters of the documented names and shapes: classic as the paper initialises them (uniform
    +-2.4 / fan-in) with its fixed centres; modern He-normal weights and small, mostly positive biases."""
    rng = np.random.default_rng(seed)
    params = {}
    for name, (shape, fan) in model.param_shapes(variant).items():
        if variant == "classic":
            params[name] = rng.uniform(-1.0, 1.0, size=shape) * (paper.INIT_SCALE / fan)
        elif name.endswith(".weight"):
            params[name] = rng.standard_normal(shape) * np.sqrt(2.0 / fan)
        else:
            params[name] = rng.uniform(-0.05, 0.15, size=shape)
    if variant == "classic":
        params["rbf.centers"] = paper.rbf_centers(np.float64)
    return params


def modern_kink_margin(params, x):
    """How close the modern network's relu inputs and max-pool winners come to a kink: the smallest
    |pre-activation| and the smallest gap between a window's largest and second largest value
    (windows whose maximum is 0, i.e. all four relu inputs negative, cannot switch)."""
    p = params
    margins = []

    def relu(a):
        margins.append(np.min(np.abs(a)))
        return ref.relu(a)

    def pool(a):
        n, c, h, w = a.shape
        blocks = np.sort(a.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(-1, 4), axis=1)
        live = blocks[:, 3] > 0
        margins.append(np.min(blocks[live, 3] - blocks[live, 2], initial=np.inf))
        return ref.subsample(a, "max")

    s2 = pool(relu(ref.conv2d(x, p["c1.weight"], p["c1.bias"])))
    s4 = pool(relu(ref.conv2d(s2, p["c3.weight"], p["c3.bias"])))
    c5 = relu(ref.linear(s4.reshape(len(x), -1), p["c5.weight"], p["c5.bias"]))
    relu(ref.linear(c5, p["f6.weight"], p["f6.bias"]))
    return min(margins)


def network_case(variant, n=2):
    """(params, x, labels), float64; for modern, the first seed whose point is KINK_MARGIN away from
    every relu and max-pool kink."""
    labels = np.array([3, 8, 1, 0, 7][:n])
    for seed in range(200):
        params = network_params(variant, seed)
        x = np.random.default_rng(1000 + seed).uniform(-0.1, 1.175, size=(n, 1, 32, 32))
        if variant == "classic" or modern_kink_margin(params, x) > KINK_MARGIN:
            return params, x, labels
    raise AssertionError("no test point away from the kinks")


def total_loss(params, x, labels, variant, loss):
    out = ref.forward(params, x, variant)
    if loss == "map":
        return np.sum(ref.map_loss(out, labels)[0])
    return np.sum({"rbf": ref.rbf_loss, "xent": ref.cross_entropy}[loss](out, labels)[0])


def check_network_gradient(params, x, labels, variant, loss, grads, name, per_param=6, seed=0):
    """check_gradient on a random subset of the entries of params[name], plus its largest one."""
    size = params[name].size
    rng = np.random.default_rng(seed)
    entries = rng.choice(size, size=min(size, per_param), replace=False)
    entries = np.union1d(entries, [np.argmax(np.abs(grads[name]))])
    f = lambda: total_loss(params, x, labels, variant, loss)  # noqa: E731
    return check_gradient(grads[name], f, params[name], entries, h=NETWORK_STEP[variant])


NETWORK_LOSSES = [("classic", "map"), ("classic", "rbf"), ("modern", "xent")]


@pytest.mark.parametrize("variant, loss", NETWORK_LOSSES)
def test_backward_matches_finite_differences(variant, loss):
    params, x, labels = network_case(variant)
    losses, grads = ref.backward(params, x, labels, variant, loss=loss)
    shapes = model.param_shapes(variant)
    assert list(grads) == list(shapes)  # exactly the trainable parameters, in order; no rbf.centers
    for name, (shape, _) in shapes.items():
        assert grads[name].shape == shape
    assert losses.shape == (len(x),)
    np.testing.assert_allclose(np.sum(losses), total_loss(params, x, labels, variant, loss), **TOL64)
    for k, name in enumerate(shapes):
        check_network_gradient(params, x, labels, variant, loss, grads, name, seed=k)


@pytest.mark.parametrize("variant", ["classic", "modern"])
def test_backward_default_loss_and_j(variant):
    params, x, labels = network_case(variant)
    out = ref.forward(params, x, variant)
    losses, grads = ref.backward(params, x, labels, variant)
    expected = ref.map_loss(out, labels) if variant == "classic" else ref.cross_entropy(out, labels)
    np.testing.assert_array_equal(losses, expected[0])
    explicit = ref.backward(params, x, labels, variant, loss="map" if variant == "classic" else "xent")[1]
    for name in grads:
        np.testing.assert_array_equal(grads[name], explicit[name])
    if variant == "classic":
        losses_j = ref.backward(params, x, labels, variant, j=4.0)[0]
        np.testing.assert_allclose(losses_j, ref.map_loss(out, labels, j=4.0)[0], **TOL64)


def test_backward_rejects_a_loss_of_the_other_head():
    params, x, labels = network_case("classic")
    with pytest.raises(ValueError):
        ref.backward(params, x, labels, "classic", loss="xent")
    with pytest.raises(ValueError):
        ref.gauss_newton_diagonal(params, x, "bogus")


def test_check_network_gradient_catches_mistakes():
    variant, loss = "classic", "map"
    params, x, labels = network_case(variant)
    _, grads = ref.backward(params, x, labels, variant, loss=loss)
    table = np.asarray(paper.C3_TABLE)
    dense = np.zeros((16, 6, 5, 5))
    dense[table] = grads["c3.weight"]
    mistakes = {
        "c3.weight": [perturbed(grads["c3.weight"]), dense.transpose(1, 0, 2, 3)[table.T]],  # column-major packing
        "s2.coef": [perturbed(grads["s2.coef"])],
        "f6.weight": [perturbed(grads["f6.weight"])],
        "c1.weight": [grads["c1.weight"].transpose(0, 1, 3, 2)],  # transposed kernels
    }
    for name, wrongs in mistakes.items():
        for wrong in wrongs:
            bad = dict(grads, **{name: wrong})
            with pytest.raises(AssertionError, match="gradient mismatch"):
                check_network_gradient(params, x, labels, variant, loss, bad, name, per_param=40)


def test_modern_test_point_is_away_from_kinks():
    params, x, _ = network_case("modern")
    assert modern_kink_margin(params, x) > KINK_MARGIN


# --- whole network: Gauss-Newton diagonal -----------------------------------------------------------


def squash_derivative(a):
    return 1.7159 * (2 / 3) / np.cosh(2 / 3 * a) ** 2


def squash_second_derivative(a):
    t = np.tanh(2 / 3 * a)
    return -2 * 1.7159 * (2 / 3) ** 2 * t * (1 - t**2)


def brute_gauss_newton(params, x, variant):
    """The Gauss-Newton rules one image at a time, with explicit loops over weights, connections
    and pooling windows (shares only the forward pass's layer functions with the reference)."""
    p = params
    table = np.zeros((16, 6), dtype=bool)
    for o, inputs in enumerate(paper.C3_INPUTS):
        table[o, list(inputs)] = True
    act, deriv = (ref.squash, squash_derivative) if variant == "classic" else (ref.relu, lambda a: (a > 0) * 1.0)
    total = {name: np.zeros(shape) for name, (shape, _) in model.param_shapes(variant).items()}

    def conv(name, inp, pre, d2y, packed):
        w = p[name + ".weight"]
        if packed:
            dense = np.zeros((16, 6, 5, 5))
            dense[table] = w
            w, connected = dense, table
        else:
            connected = np.ones(w.shape[:2], dtype=bool)
        d2a = d2y * deriv(pre) ** 2
        d2w = np.zeros(w.shape)
        d2x = np.zeros(inp.shape)
        ho, wo = d2a.shape[1:]
        for o in range(w.shape[0]):
            for c in range(w.shape[1]):
                if not connected[o, c]:
                    continue
                for u in range(5):
                    for v in range(5):
                        d2w[o, c, u, v] = np.sum(inp[c, u : u + ho, v : v + wo] ** 2 * d2a[o])
                        d2x[c, u : u + ho, v : v + wo] += w[o, c, u, v] ** 2 * d2a[o]
        total[name + ".weight"] += d2w[connected] if packed else d2w
        total[name + ".bias"] += d2a.sum(axis=(1, 2))
        return d2x

    def pool(name, inp, pre, d2y):
        c, h, w = inp.shape
        d2x = np.zeros(inp.shape)
        if variant == "classic":
            d2a = d2y * deriv(pre) ** 2
            coef = p[name + ".coef"]
            s = sum(inp[:, di::2, dj::2] for di in (0, 1) for dj in (0, 1))
            total[name + ".coef"] += np.sum(s**2 * d2a, axis=(1, 2))
            total[name + ".bias"] += np.sum(d2a, axis=(1, 2))
            for di in (0, 1):
                for dj in (0, 1):
                    d2x[:, di::2, dj::2] = coef[:, None, None] ** 2 * d2a
            return d2x
        for ch in range(c):
            for i in range(h // 2):
                for j in range(w // 2):
                    block = [inp[ch, 2 * i + di, 2 * j + dj] for di in (0, 1) for dj in (0, 1)]
                    k = block.index(max(block))  # the first of TL, TR, BL, BR equal to the max
                    d2x[ch, 2 * i + k // 2, 2 * j + k % 2] = d2y[ch, i, j]
        return d2x

    def full(name, inp, pre, d2y, act_deriv):
        d2a = d2y * act_deriv(pre) ** 2
        total[name + ".weight"] += np.outer(inp**2, d2a)
        total[name + ".bias"] += d2a
        return (p[name + ".weight"] ** 2) @ d2a

    for img in x:
        img = img[None]
        a1 = ref.conv2d(img, p["c1.weight"], p["c1.bias"])
        c1 = act(a1)
        if variant == "classic":
            a2 = ref.subsample(c1, "trainable", p["s2.coef"], p["s2.bias"])
            s2 = act(a2)
            a3 = ref.conv2d(s2, p["c3.weight"], p["c3.bias"], table=table)
            c3 = act(a3)
            a4 = ref.subsample(c3, "trainable", p["s4.coef"], p["s4.bias"])
        else:
            a2 = s2 = ref.subsample(c1, "max")
            a3 = ref.conv2d(s2, p["c3.weight"], p["c3.bias"])
            c3 = act(a3)
            a4 = ref.subsample(c3, "max")
        s4 = act(a4) if variant == "classic" else a4
        flat = s4.reshape(-1)
        a5 = flat @ p["c5.weight"] + p["c5.bias"]
        c5 = act(a5)
        a6 = c5 @ p["f6.weight"] + p["f6.bias"]
        f6 = act(a6)
        if variant == "classic":
            d2 = np.full(84, 2.0)
        else:
            z = f6 @ p["out.weight"] + p["out.bias"]
            prob = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
            d2 = full("out", f6, z, prob * (1 - prob), lambda a: np.ones_like(a))
        d2 = full("f6", c5, a6, d2, deriv)
        d2 = full("c5", flat, a5, d2, deriv).reshape(s4.shape[1:])
        d2 = pool("s4", c3[0], a4[0], d2)
        d2 = conv("c3", s2[0], a3[0], d2, packed=variant == "classic")
        d2 = pool("s2", c1[0], a2[0], d2)
        conv("c1", img[0], a1[0], d2, packed=False)
    return total


@pytest.mark.parametrize("variant", ["classic", "modern"])
def test_gauss_newton_diagonal_follows_the_rules(variant):
    params, x, _ = network_case(variant, n=2)
    curv = ref.gauss_newton_diagonal(params, x, variant)
    shapes = model.param_shapes(variant)
    assert list(curv) == list(shapes)
    expected = brute_gauss_newton(params, x, variant)
    for name, (shape, _) in shapes.items():
        assert curv[name].shape == shape
        assert np.all(curv[name] >= 0)
        assert np.max(curv[name]) > 0
        np.testing.assert_allclose(curv[name], expected[name], rtol=1e-12, atol=1e-14 * np.max(expected[name]))
    # the sum over the batch is the sum of the per-image estimates
    per_image = [ref.gauss_newton_diagonal(params, x[i : i + 1], variant) for i in range(len(x))]
    for name in shapes:
        np.testing.assert_allclose(curv[name], sum(c[name] for c in per_image), **TOL64)
    if variant == "classic":  # the seed is the same for either classic loss
        plain = ref.gauss_newton_diagonal(params, x, variant, loss="rbf")
        for name in shapes:
            np.testing.assert_array_equal(curv[name], plain[name])


def test_gauss_newton_seeds_are_the_exact_output_curvatures():
    rng = np.random.default_rng(9)
    labels = np.array([2, 7])
    # classic: the plain loss y_D = |x - w_D|^2 has d2/dx_k^2 = 2 exactly at the RBF's input
    f6 = rng.uniform(-1, 1, size=(2, 84))
    centers = paper.rbf_centers(np.float64)
    f = lambda: np.sum(ref.rbf_loss(ref.rbf(f6, centers), labels)[0])  # noqa: E731
    for index in rng.choice(f6.size, 8, replace=False):
        np.testing.assert_allclose(numeric_second_derivative(f, f6, index), 2.0, rtol=HESS_RTOL)
    # modern: the cross-entropy's Hessian diagonal at the logits is p (1 - p)
    z = rng.normal(size=(2, 10)) * 2
    p = ref.softmax(z).copy()
    g = lambda: np.sum(ref.cross_entropy(z, labels)[0])  # noqa: E731
    for index in range(z.size):
        np.testing.assert_allclose(numeric_second_derivative(g, z, index), (p * (1 - p)).flat[index], rtol=HESS_RTOL)


def test_gauss_newton_is_the_exact_hessian_diagonal_of_the_linear_output_layer():
    # modern: the logits are linear in out.weight / out.bias, so each diagonal Hessian entry of the
    # cross-entropy is exactly f6_k^2 p_i (1 - p_i) (summed over images): what the rules give.
    params, x, labels = network_case("modern")
    curv = ref.gauss_newton_diagonal(params, x, "modern")
    rng = np.random.default_rng(10)
    for name in ("out.weight", "out.bias"):
        f = lambda: total_loss(params, x, labels, "modern", "xent")  # noqa: E731
        for index in rng.choice(params[name].size, 6, replace=False):
            exact = numeric_second_derivative(f, params[name], index)
            np.testing.assert_allclose(curv[name].flat[index], exact, rtol=HESS_RTOL, atol=hess_atol(f()))


def test_gauss_newton_of_f6_is_the_hessian_without_the_residual_term():
    # classic, plain loss: E = sum_p sum_k (f(a_pk) - w_{D_p k})^2, a = c5 @ W + b. Exactly,
    #   d2E/db_k^2 = sum_p 2 f'(a_pk)^2 + 2 (f(a_pk) - w_{D_p k}) f''(a_pk)
    # (times c5_pj^2 for W_jk); Gauss-Newton keeps the first term.
    params, x, labels = network_case("classic")
    curv = ref.gauss_newton_diagonal(params, x, "classic", loss="rbf")
    p = params
    c1 = ref.squash(ref.conv2d(x, p["c1.weight"], p["c1.bias"]))
    s2 = ref.squash(ref.subsample(c1, "trainable", p["s2.coef"], p["s2.bias"]))
    c3 = ref.squash(ref.conv2d(s2, p["c3.weight"], p["c3.bias"], table=paper.C3_TABLE))
    s4 = ref.squash(ref.subsample(c3, "trainable", p["s4.coef"], p["s4.bias"]))
    c5 = ref.squash(s4.reshape(len(x), -1) @ p["c5.weight"] + p["c5.bias"])
    a6 = c5 @ p["f6.weight"] + p["f6.bias"]
    residual = ref.squash(a6) - p["rbf.centers"][labels]
    gn_bias = np.sum(2 * squash_derivative(a6) ** 2, axis=0)
    rest_bias = np.sum(2 * residual * squash_second_derivative(a6), axis=0)
    np.testing.assert_allclose(curv["f6.bias"], gn_bias, **TOL64)
    f = lambda: total_loss(params, x, labels, "classic", "rbf")  # noqa: E731
    rng = np.random.default_rng(11)
    for k in rng.choice(84, 5, replace=False):
        exact = numeric_second_derivative(f, params["f6.bias"], k)
        np.testing.assert_allclose(curv["f6.bias"][k] + rest_bias[k], exact, rtol=HESS_RTOL, atol=hess_atol(f()))
    rows = np.append(rng.choice(120, 4, replace=False), np.argmax(np.sum(c5**2, axis=0)))  # and the largest
    for j, k in zip(rows, rng.choice(84, 5, replace=False)):
        exact = numeric_second_derivative(f, params["f6.weight"], j * 84 + k)
        rest = np.sum(c5[:, j] ** 2 * 2 * residual[:, k] * squash_second_derivative(a6[:, k]))
        np.testing.assert_allclose(curv["f6.weight"][j, k] + rest, exact, rtol=HESS_RTOL, atol=hess_atol(f()))


@pytest.mark.parametrize("mode", ["trainable", "average", "max"])
def test_subsample_curvature_rules(mode):
    rng = np.random.default_rng(12)
    x = distinct_values(rng, (2, 3, 5, 7))
    d2y = rng.uniform(0, 1, size=(2, 3, 2, 3))
    coef = rng.normal(size=3)
    d2x, d2coef, d2bias = ref._subsample_curvature(x, d2y, mode, coef)
    assert np.all(d2x[:, :, 4:, :] == 0) and np.all(d2x[:, :, :, 6:] == 0)
    for n in range(2):
        for c in range(3):
            for i in range(2):
                for j in range(3):
                    block = x[n, c, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2]
                    got = d2x[n, c, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2]
                    if mode == "trainable":
                        np.testing.assert_allclose(got, np.full((2, 2), coef[c] ** 2 * d2y[n, c, i, j]), **TOL64)
                    elif mode == "average":
                        np.testing.assert_allclose(got, np.full((2, 2), d2y[n, c, i, j] / 16), **TOL64)
                    else:
                        expected = np.where(block == block.max(), d2y[n, c, i, j], 0.0)
                        np.testing.assert_array_equal(got, expected)
    if mode == "trainable":
        s = x[:, :, 0:4:2, 0:6:2] + x[:, :, 1:4:2, 0:6:2] + x[:, :, 0:4:2, 1:6:2] + x[:, :, 1:4:2, 1:6:2]
        np.testing.assert_allclose(d2coef, np.sum(s**2 * d2y, axis=(0, 2, 3)), **TOL64)
        np.testing.assert_allclose(d2bias, np.sum(d2y, axis=(0, 2, 3)), **TOL64)
    else:
        assert d2coef is None and d2bias is None


# --- optimizer steps --------------------------------------------------------------------------------


def test_sgd_update_by_hand():
    w, g, vel = np.array([1.0, -2.0]), np.array([0.5, 0.25]), np.array([0.1, -0.1])
    originals = [a.copy() for a in (w, g, vel)]
    w2, vel2 = ref.sgd_update(w, g, vel, lr=0.1, momentum=0.9, weight_decay=0.01)
    # d = g + 0.01 w = (0.51, 0.23); v = 0.9 v + d = (0.6, 0.14); w - 0.1 v = (0.94, -2.014)
    np.testing.assert_allclose(vel2, [0.6, 0.14], **TOL64)
    np.testing.assert_allclose(w2, [0.94, -2.014], **TOL64)
    for a, original in zip((w, g, vel), originals):
        np.testing.assert_array_equal(a, original)  # pure: inputs untouched
    w3, vel3 = ref.sgd_update(w, g, np.zeros(2), lr=0.5)  # plain SGD
    np.testing.assert_allclose(w3, w - 0.5 * g, **TOL64)
    np.testing.assert_array_equal(vel3, g)


def test_adam_update_by_hand():
    # A constant gradient g = 2: m_hat = 2 and v_hat = 4 at every step, so each step is lr * 2 / (2 + eps).
    w, m, v = np.array([1.0]), np.zeros(1), np.zeros(1)
    g = np.array([2.0])
    w, m, v = ref.adam_update(w, g, m, v, t=1, lr=0.1)
    np.testing.assert_allclose(m, [0.2], **TOL64)  # (1 - 0.9) * 2
    np.testing.assert_allclose(v, [0.004], **TOL64)  # (1 - 0.999) * 4
    np.testing.assert_allclose(w, [0.9], rtol=1e-8)
    w, m, v = ref.adam_update(w, g, m, v, t=2, lr=0.1)
    np.testing.assert_allclose(m, [0.38], **TOL64)  # 0.9 * 0.2 + 0.1 * 2; / (1 - 0.81) = 2
    np.testing.assert_allclose(v, [0.007996], **TOL64)  # 0.999 * 0.004 + 0.001 * 4; / (1 - 0.998001) = 4
    np.testing.assert_allclose(w, [0.8], rtol=1e-8)
    # weight decay enters the moments: d = 0 + 0.5 * 0.8 = 0.4
    _, m, _ = ref.adam_update(np.array([0.8]), np.zeros(1), np.zeros(1), np.zeros(1), t=1, weight_decay=0.5)
    np.testing.assert_allclose(m, [0.04], **TOL64)


def test_adam_first_step_is_lr_times_sign_of_the_gradient():
    g = np.array([1e-3, -1.0, 1e3, -5e-2])
    w = np.array([0.5, 0.5, -0.5, 0.0])
    zeros = np.zeros(4)
    w2, _, _ = ref.adam_update(w, g, zeros, zeros, t=1, lr=1e-3)
    np.testing.assert_allclose(w2 - w, -1e-3 * np.sign(g), rtol=1e-5)
    np.testing.assert_array_equal(zeros, 0)


def test_sdlm_update_by_hand():
    w, g, h = np.array([1.0, 2.0]), np.array([1.0, -1.0]), np.array([0.0, 0.98])
    # steps eps / (mu + h) = 0.01 / 0.02 = 0.5 and 0.01 / 1.0 = 0.01
    np.testing.assert_allclose(ref.sdlm_update(w, g, h, 0.01), [0.5, 2.01], **TOL64)
    # mu = 1: steps 0.01 / 1 and 0.01 / 1.98
    np.testing.assert_allclose(ref.sdlm_update(w, g, h, 0.01, mu=1.0), [0.99, 2 + 0.01 / 1.98], **TOL64)
    np.testing.assert_array_equal(w, [1.0, 2.0])


# --- dtype preservation and empty batches -----------------------------------------------------------


def _network_grads(dtype, n, variant, fn):
    params = {k: v.astype(dtype) for k, v in network_params(variant, 0).items()}
    x = np.random.default_rng(13).uniform(-0.1, 1.175, size=(n, 1, 32, 32)).astype(dtype)
    labels = np.arange(n) % 10
    if fn == "backward":
        losses, grads = ref.backward(params, x, labels, variant)
        return [losses] + list(grads.values())
    return list(ref.gauss_newton_diagonal(params, x, variant).values())


TABLE = np.array([[True, False, True], [False, False, False], [True, True, False], [False, True, True]])
CASES = (
    ["activation_backward_" + name for name in ("squash", "tanh", "relu", "none")]
    + ["conv2d_backward", "conv2d_backward_packed"]
    + ["subsample_backward_" + mode for mode in ("trainable", "average", "max")]
    + ["linear_backward", "rbf_backward", "map_loss", "rbf_loss", "cross_entropy"]
    + ["backward_classic", "backward_modern", "gauss_newton_classic", "gauss_newton_modern"]
    + ["sgd_update", "adam_update", "sdlm_update"]
)


def run_case(name, rng, dtype, n):
    """Run one new reference function on a batch of n in dtype; returns the list of arrays it gave."""

    def arrays(*shapes):
        return [rng.normal(size=s).astype(dtype) for s in shapes]

    labels = np.arange(n) % 10
    if name.startswith("activation_backward_"):
        return [ref.activation_backward(*arrays((n, 5), (n, 5)), name.rsplit("_", 1)[1])]
    if name == "conv2d_backward":
        return list(ref.conv2d_backward(*arrays((n, 3, 6, 6), (4, 3, 3, 3), (n, 4, 4, 4))))
    if name == "conv2d_backward_packed":
        return list(ref.conv2d_backward(*arrays((n, 3, 6, 6), (6, 3, 3), (n, 4, 4, 4)), table=TABLE))
    if name.startswith("subsample_backward_"):
        x, dy, coef = arrays((n, 3, 5, 5), (n, 3, 2, 2), (3,))
        return [a for a in ref.subsample_backward(x, dy, name.rsplit("_", 1)[1], coef) if a is not None]
    if name == "linear_backward":
        return list(ref.linear_backward(*arrays((n, 6), (6, 4), (n, 4))))
    if name == "rbf_backward":
        return [ref.rbf_backward(*arrays((n, 6), (4, 6), (n, 4)))]
    if name in ("map_loss", "rbf_loss", "cross_entropy"):
        y = np.abs(arrays((n, 10))[0])
        return list(getattr(ref, name)(y, labels))
    if name.startswith(("backward_", "gauss_newton_")):
        variant = name.rsplit("_", 1)[1]
        return _network_grads(dtype, n, variant, "backward" if name.startswith("backward") else "gn")
    w, g, state = arrays((n, 3), (n, 3), (n, 3))
    positive = np.abs(state)
    if name == "sgd_update":
        return list(ref.sgd_update(w, g, state, 0.1, momentum=0.9, weight_decay=1e-4))
    if name == "adam_update":
        return list(ref.adam_update(w, g, state, positive, 3, weight_decay=1e-4))
    return [ref.sdlm_update(w, g, positive, 5e-4)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", CASES)
def test_dtype_is_preserved(name, dtype):
    outs = run_case(name, np.random.default_rng(14), dtype, 2)
    assert outs
    for out in outs:
        assert out.dtype == dtype
        assert np.all(np.isfinite(out))


@pytest.mark.parametrize("name", CASES)
def test_empty_batch(name):
    for out in run_case(name, np.random.default_rng(15), np.float64, 0):
        assert np.all(out == 0)  # empty per-image results; batch sums over no image are zero


@pytest.mark.parametrize("variant", ["classic", "modern"])
def test_float32_network_gradients_agree_with_float64(variant):
    # float32 rounds every stage to ~6e-8 relative; through ~10 layers and sums of up to a few
    # thousand terms the normwise error stays far below 1e-3.
    g32 = _network_grads(np.float32, 3, variant, "backward") + _network_grads(np.float32, 3, variant, "gn")
    g64 = _network_grads(np.float64, 3, variant, "backward") + _network_grads(np.float64, 3, variant, "gn")
    for a, b in zip(g32, g64):
        assert np.max(np.abs(a - b)) <= 1e-3 * np.max(np.abs(b))


# --- the options: activations, hinge loss, dropout (masks fixed) ----------------------------------------


def option_loss(params, x, labels, variant, loss, activation=None, masks=None):
    out = ref.forward(params, x, variant, activation, masks)
    return np.sum(ref._loss_and_grad(out, labels, variant, loss, paper.MAP_J)[0])


def check_option_gradient(variant, loss, activation=None, masks=None):
    params, x, labels = network_case(variant)
    losses, grads = ref.backward(params, x, labels, variant, loss=loss, activation=activation, masks=masks)
    f = lambda: option_loss(params, x, labels, variant, loss, activation, masks)  # noqa: E731
    np.testing.assert_allclose(np.sum(losses), f(), **TOL64)
    for k, name in enumerate(model.param_shapes(variant)):
        rng = np.random.default_rng(k)
        entries = np.union1d(rng.choice(params[name].size, size=min(params[name].size, 6), replace=False),
                             [np.argmax(np.abs(grads[name]))])
        check_gradient(grads[name], f, params[name], entries, h=NETWORK_STEP[variant])


@pytest.mark.parametrize("activation", ["leaky_relu", "elu", "tanh", "sigmoid"])
def test_backward_with_each_activation_matches_finite_differences(activation):
    check_option_gradient("modern", "xent", activation=activation)


@pytest.mark.parametrize("variant", ["classic", "modern"])
def test_backward_with_the_hinge_loss_matches_finite_differences(variant):
    check_option_gradient(variant, "hinge")


@pytest.mark.parametrize("variant", ["classic", "modern"])
def test_backward_with_dropout_masks_matches_finite_differences(variant):
    """The gradient for one fixed draw of the masks (rate 0.5 before C5 and F6)."""
    masks = {"c5": ref.dropout_mask(11, 0, 2, 400, 0.5).astype(np.float64),
             "f6": ref.dropout_mask(12, 0, 2, 120, 0.5).astype(np.float64)}
    assert 0.3 < np.mean(masks["c5"] == 0) < 0.7
    check_option_gradient(variant, model.LeNet5(variant).default_loss, masks=masks)


def test_activation_options_only_for_modern():
    with pytest.raises(ValueError, match="only the modern variant"):
        ref.forward({}, np.zeros((1, 1, 32, 32)), "classic", activation="elu")
