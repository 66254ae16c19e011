"""One layer's backward pass in C (Trainer.backward on a one-layer network: the linear loss of lenet_fast.h,
whose gradient at the output is the caller's dout) against reference.py's per-layer backward functions, on
random shapes, batch sizes that take single images, full blocks and partly filled blocks, and every
instruction-set path: the parameters' gradients and the input's gradient. Tolerance as in test_training.py
(2e-4 of the largest entry plus 2e-3 relative against float64); the checks refuse an all-zero reference and
are shown to catch a perturbed gradient.
"""
from collections import OrderedDict

import numpy as np
import pytest

import lenet_fast
from lenet_fast import _core, paper, reference
from lenet_fast.model import _views, flat_params
from test_kernels import ISAS, on_path

BATCHES = [1, 3, 8, 13, 21]
ACTS = ["none", "squash", "tanh", "relu"]


def close(c, ref, name):
    scale = np.abs(ref).max()
    assert scale > 1e-6, f"{name}: the reference gradient is zero: nothing is checked"
    err = np.abs(c - ref) - 2e-3 * np.abs(ref)
    assert err.max() <= 2e-4 * scale, f"{name}: off by {err.max() / scale:.2e} of its largest entry"


def uniform(rng, shape, scale=1.0):
    return rng.uniform(-scale, scale, size=shape).astype(np.float32)


class Layer:
    """A one-layer network whose trainable arrays are views into one flat vector, and its reference."""

    def __init__(self, input_shape, spec, arrays):
        self.flat, self.views = flat_params(OrderedDict(arrays))
        self.spec = dict(spec, **self.views)
        self.input_shape = input_shape
        self.net = _core.Network(input_shape, [self.spec])
        self.trainer = _core.Trainer(self.net, self.flat)

    def backward(self, x, dout):
        grad, dx, out = self.trainer.backward(x, dout)
        return _views(grad, self.views), dx, out

    def reference(self, x, dout):
        """(parameter gradients, dx) of the layer in float64."""
        s, x = self.spec, x.astype(np.float64)
        f = {k: np.asarray(v, np.float64) for k, v in self.views.items()}
        act = s.get("act", "none")
        if s["kind"] == "conv":
            a = reference.conv2d(x, f["weight"], f["bias"], s.get("table"))
            dx, dw, db = reference.conv2d_backward(x, f["weight"], reference.activation_backward(a, dout, act),
                                                   s.get("table"))
            return {"weight": dw, "bias": db}, dx
        if s["kind"] == "subsample":
            a = reference.subsample(x, s["pool"], f.get("coef"), f.get("bias"))
            dx, dc, db = reference.subsample_backward(x, reference.activation_backward(a, dout, act), s["pool"],
                                                      f.get("coef"))
            return ({"coef": dc, "bias": db} if s["pool"] == "trainable" else {}), dx
        flat_x, d = x.reshape(len(x), -1), dout.reshape(len(x), -1)
        if s["kind"] == "full":
            a = reference.linear(flat_x, f["weight"], f["bias"])
            dx, dw, db = reference.linear_backward(flat_x, f["weight"], reference.activation_backward(a, d, act))
            return {"weight": dw, "bias": db}, dx.reshape(x.shape)
        return {}, reference.rbf_backward(flat_x, np.asarray(s["centers"], np.float64), d).reshape(x.shape)


def conv(rng, tabled, act):
    ci, co, kh, kw = rng.integers(1, 7), rng.integers(1, 9), rng.integers(1, 6), rng.integers(1, 6)
    h, w = kh + rng.integers(0, 12), kw + rng.integers(0, 12)
    table = None
    if tabled:
        table = rng.random((co, ci)) < 0.6
        table[np.arange(co), rng.integers(ci, size=co)] = True
    n_w = int(table.sum()) if tabled else co * ci
    arrays = {"weight": uniform(rng, (n_w, kh, kw) if tabled else (co, ci, kh, kw), 0.5), "bias": uniform(rng, co)}
    spec = dict(kind="conv", out=int(co), kernel=(int(kh), int(kw)), table=table, act=act)
    return Layer((int(ci), int(h), int(w)), spec, arrays)


def subsample(rng, pool, act):
    c, h, w = rng.integers(1, 8), rng.integers(2, 15), rng.integers(2, 15)
    arrays = {"coef": uniform(rng, c), "bias": uniform(rng, c)} if pool == "trainable" else {}
    return Layer((int(c), int(h), int(w)), dict(kind="subsample", pool=pool, act=act), arrays)


def full(rng, act):
    n_in, out = rng.integers(1, 130), rng.integers(1, 90)
    arrays = {"weight": uniform(rng, (n_in, out), 2 / np.sqrt(n_in)), "bias": uniform(rng, out)}
    return Layer((int(n_in), 1, 1), dict(kind="full", out=int(out), act=act), arrays)


def rbf(rng):
    n_in, k = rng.integers(1, 90), rng.integers(1, 12)
    return Layer((int(n_in), 1, 1), dict(kind="rbf", centers=uniform(rng, (k, n_in))), {})


def check(layer, n, seed):
    rng = np.random.default_rng(seed)
    x = uniform(rng, (n,) + layer.input_shape)
    dout = uniform(rng, (n,) + layer.net.output_shape)
    want_grads, want_dx = layer.reference(x, dout)
    for isa in ISAS:
        with on_path(isa):
            grads, dx, out = layer.backward(x, dout)
            np.testing.assert_array_equal(out, layer.net.forward(x))
        assert set(grads) == set(want_grads)
        for name in grads:
            close(grads[name], want_grads[name], f"{isa}: {name}")
        close(dx, want_dx, f"{isa}: dx")


@pytest.mark.parametrize("n", BATCHES)
@pytest.mark.parametrize("tabled", [False, True])
@pytest.mark.parametrize("act", ACTS)
def test_conv_backward(n, tabled, act):
    seed = 100 * n + 10 * tabled + ACTS.index(act)
    check(conv(np.random.default_rng(seed), tabled, act), n, seed)


@pytest.mark.parametrize("n", BATCHES)
@pytest.mark.parametrize("pool", ["trainable", "average", "max"])
@pytest.mark.parametrize("act", ["none", "squash"])
def test_subsample_backward(n, pool, act):
    seed = 200 * n + len(pool) + len(act)
    check(subsample(np.random.default_rng(seed), pool, act), n, seed)


@pytest.mark.parametrize("n", BATCHES)
@pytest.mark.parametrize("act", ACTS)
def test_full_backward(n, act):
    seed = 300 * n + ACTS.index(act)
    check(full(np.random.default_rng(seed), act), n, seed)


@pytest.mark.parametrize("n", BATCHES)
def test_rbf_backward(n):
    check(rbf(np.random.default_rng(400 + n)), n, 400 + n)


def test_lenet_shapes():
    """The layers at LeNet-5's own shapes (C1 dense, C3 with the paper's table, S2, F6), as the benchmarks
    run them."""
    rng = np.random.default_rng(5)
    c3 = Layer((6, 14, 14), dict(kind="conv", out=16, kernel=(5, 5), table=paper.C3_TABLE, act="squash"),
               {"weight": uniform(rng, (int(np.sum(paper.C3_TABLE)), 5, 5), 0.2), "bias": uniform(rng, 16)})
    c1 = Layer((1, 32, 32), dict(kind="conv", out=6, kernel=(5, 5), act="squash"),
               {"weight": uniform(rng, (6, 1, 5, 5), 0.4), "bias": uniform(rng, 6)})
    for layer in (c1, c3, subsample(rng, "trainable", "squash"), full(rng, "squash")):
        check(layer, 17, 5)


def test_a_wrong_gradient_fails_the_check():
    layer = conv(np.random.default_rng(9), True, "squash")
    rng = np.random.default_rng(9)
    x, dout = uniform(rng, (8,) + layer.input_shape), uniform(rng, (8,) + layer.net.output_shape)
    grads, dx, _ = layer.backward(x, dout)
    want, want_dx = layer.reference(x, dout)
    close(grads["weight"], want["weight"], "weight")
    with pytest.raises(AssertionError):
        close(grads["weight"][:, ::-1, ::-1], want["weight"], "weight rotated")
    bumped = dx.copy()
    bumped.reshape(-1)[np.argmax(np.abs(dx))] *= 1.01
    with pytest.raises(AssertionError):
        close(bumped, want_dx, "dx bumped")
    with pytest.raises(AssertionError):
        close(np.zeros_like(dx), np.zeros_like(want_dx), "zero")


def test_backward_is_bit_identical_for_any_thread_count():
    layer = conv(np.random.default_rng(3), True, "squash")
    rng = np.random.default_rng(3)
    x, dout = uniform(rng, (53,) + layer.input_shape), uniform(rng, (53,) + layer.net.output_shape)
    saved = lenet_fast.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 3):
            lenet_fast.set_num_threads(threads)
            grad, dx, _ = layer.trainer.backward(x, dout)
            results.append((grad, dx))
    finally:
        lenet_fast.set_num_threads(saved)
    for grad, dx in results[1:]:
        np.testing.assert_array_equal(grad, results[0][0])
        np.testing.assert_array_equal(dx, results[0][1])


def test_backward_rejects_bad_dout():
    layer = full(np.random.default_rng(1), "none")
    x = uniform(np.random.default_rng(1), (4,) + layer.input_shape)
    k = layer.net.output_shape
    with pytest.raises(ValueError, match="dout must have shape"):
        layer.trainer.backward(x, np.zeros((3,) + k, np.float32))
    bad = np.zeros((4,) + k, np.float32)
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        layer.trainer.backward(x, bad)
    with pytest.raises(TypeError):
        layer.trainer.backward(x, np.zeros((4,) + k, np.int32))
