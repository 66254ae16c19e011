"""Fixtures of the kernel tests: the NumPy oracle (lenet_fast.reference in float64) with its error bound, the
instruction-set paths, random layers, and the one-layer backward check.

A Network of one layer is that layer's kernel; two layers check how a kernel reads the previous one's output
(a convolution's "wide rows" in the spatial layout, a full layer after pooling, ...). Every check runs on
each instruction-set path this CPU has (cases.ISAS: the default one, e.g. AVX2, and the baseline with its 4
lanes and no FMA), switched with _core.select_isa and switched back.

Forward tolerance (oracle()): the kernels accumulate in float32, in a fixed order, with FMA on AVX2/AVX-512;
the oracle runs in float64 on the same float32 inputs and parameters, so its result is exact for our
purpose. A float32 sum of n terms t_i is off by about sqrt(n) * eps * sum |t_i| typically (eps = 6e-8) and
n * eps * sum |t_i| at worst; for the at most a few hundred terms here we allow ACC_RTOL = 1e-5 of sum |t_i|
(the magnitude of the terms accumulated, bias included), plus the error carried in from the previous layer
through |weights|. An activation adds ACT_RTOL = 1e-6 of its output (the fitted tanh is within 3.6e-7, plus
float32 roundings) and passes an input error on multiplied by at most its largest slope. Weights are scaled
by 1/sqrt(fan-in) so that sums are O(1) and the activations do not saturate: a wrong tap, a missing bias or
a misplaced weight then moves outputs by ~0.1, orders of magnitude beyond the bound (the
test_the_tolerance_catches_* tests check exactly that).

Backward tolerance (close()): Trainer.backward on a one-layer network (the linear loss of lenet_fast.h,
whose gradient at the output is the caller's dout) against reference.py's per-layer backward functions in
float64: 2e-4 of the largest entry plus 2e-3 relative. close() refuses an all-zero reference, and
test_gradient.py shows that it catches a perturbed gradient.
"""
import contextlib
import math
from collections import OrderedDict
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import strategies as st

from lenet_fast import _core
from lenet_fast import reference as ref
from lenet_fast.datasets import synthetic_digits
from lenet_fast.model import _views, flat_params

from cases import ACC_RTOL, ACT_RTOL, ISAS

LIPSCHITZ = {"none": 1.0, "relu": 1.0, "leaky_relu": 1.0, "elu": ref.ELU_ALPHA, "tanh": 1.0, "sigmoid": 0.25,
             "squash": ref.SQUASH_A * ref.SQUASH_S}


# ---- the oracle ----------------------------------------------------------------------------------------


def f64(a):
    return np.asarray(a, dtype=np.float64)


def flat(a):
    return a.reshape(a.shape[0], math.prod(a.shape[1:]))


def conv_oracle(spec, x, err):
    w, b, table = f64(spec["weight"]), f64(spec["bias"]), spec.get("table")
    y = ref.conv2d(x, w, b, table=table)
    terms = ref.conv2d(np.abs(x), np.abs(w), np.abs(b), table=table)
    carried = ref.conv2d(err, np.abs(w), np.zeros_like(b), table=table)
    return y, carried + ACC_RTOL * terms


def subsample_oracle(spec, x, err):
    pool = spec["pool"]
    if pool == "max":  # exact: a maximum moves by at most the largest error among its inputs
        return ref.subsample(x, "max"), ref.subsample(err, "max")
    if pool == "average":
        return (ref.subsample(x, "average"),
                ref.subsample(err, "average") + ACC_RTOL * ref.subsample(np.abs(x), "average"))
    coef, b = f64(spec["coef"]), f64(spec["bias"])
    y = ref.subsample(x, "trainable", coef, b)
    terms = ref.subsample(np.abs(x), "trainable", np.abs(coef), np.abs(b))
    carried = ref.subsample(err, "trainable", np.abs(coef), np.zeros_like(b))
    return y, carried + ACC_RTOL * terms


def full_oracle(spec, x, err):
    x, err = flat(x), flat(err)
    w, b = f64(spec["weight"]), f64(spec["bias"])
    y = ref.linear(x, w, b)
    terms = ref.linear(np.abs(x), np.abs(w), np.abs(b))
    carried = ref.linear(err, np.abs(w), np.zeros_like(b))
    return y[:, :, None, None], (carried + ACC_RTOL * terms)[:, :, None, None]


def rbf_oracle(spec, x, err):
    x, err = flat(x), flat(err)
    centers = f64(spec["centers"])
    y = ref.rbf(x, centers)
    d = np.abs(x[:, None, :] - centers[None])
    carried = np.einsum("nkd,nd->nk", 2 * d + err[:, None, :], err)  # |(d + e)^2 - d^2| <= (2|d| + e) e
    return y[:, :, None, None], (carried + ACC_RTOL * y)[:, :, None, None]


LAYER_ORACLES = {"conv": conv_oracle, "subsample": subsample_oracle, "full": full_oracle, "rbf": rbf_oracle}


def _oracle(specs, x):
    """The network of layer dicts `specs` on x through lenet_fast.reference, in float64.

    Returns (y, bound): the result, and elementwise how far a correct float32 kernel may be from it (the
    module docstring explains the bound)."""
    v = f64(x)
    e = np.zeros_like(v)
    for spec in specs:
        pre, pre_err = LAYER_ORACLES[spec["kind"]](spec, v, e)
        act = spec.get("act", "none")
        v = ref.activation(pre, act)
        e = LIPSCHITZ[act] * pre_err + ACT_RTOL * np.abs(v)
    return v, e


def _off_by(got, want, bound):
    """A description of the outputs farther from want than bound, or None when there are none."""
    diff = np.abs(f64(got) - want)
    bad = diff > bound
    if not bad.any():
        return None
    i = np.unravel_index(np.argmax(np.where(bad, diff - bound, -np.inf)), diff.shape)
    return (f"{bad.sum()} of {diff.size} outputs off; worst at {i}: got {got[i]!r}, want {want[i]!r}, "
            f"allowed {bound[i]:.3g}")


@pytest.fixture(scope="session")
def oracle():
    """oracle(specs, x) -> (y, bound): the reference's float64 answer and the error a float32 kernel may make."""
    return _oracle


@pytest.fixture(scope="session")
def off_by():
    """off_by(got, want, bound): a description of the outputs out of bound, or None."""
    return _off_by


# ---- instruction-set paths -----------------------------------------------------------------------------


@contextlib.contextmanager
def _on_path(isa):
    """Run the kernels on instruction-set path isa inside the block."""
    before = _core.isa()
    _core.select_isa(isa)
    try:
        yield
    finally:
        _core.select_isa(before)


def _each_path():
    """Iterate over the paths this CPU runs, the kernels switched to each in turn (and back after)."""
    for isa in ISAS:
        with _on_path(isa):
            yield isa


@pytest.fixture(scope="session")
def on_path():
    """on_path(isa): a context manager that runs the kernels on path isa inside it."""
    return _on_path


@pytest.fixture(scope="session")
def each_path():
    """each_path(): the paths this CPU runs, each selected while the loop body runs (for hypothesis tests,
    which cannot take the function-scoped `path` fixture)."""
    return _each_path


@pytest.fixture(params=ISAS)
def path(request):
    """Run the test on each instruction-set path."""
    with _on_path(request.param):
        yield request.param


# ---- network checks ------------------------------------------------------------------------------------


def _check_network(input_shape, specs, x):
    """Run specs on x through _core.Network on every path and compare with the oracle; returns the
    default path's output."""
    net = _core.Network(input_shape, specs)
    want, bound = _oracle(specs, x)
    outputs = []
    for isa in _each_path():
        got = net.forward(x)
        assert got.dtype == np.float32
        assert got.shape == want.shape
        problem = _off_by(got, want, bound)
        assert problem is None, f"{isa} path: {problem}"
        outputs.append(got)
    return outputs[0]


@pytest.fixture(scope="session")
def check_network():
    """check_network(input_shape, specs, x): the Network of specs on x, on every path, within the oracle's
    bound; returns the default path's output."""
    return _check_network


def _check_layer_by_layer(input_shape, specs, x):
    """A deep stack, each layer against the oracle run on the Network's own output of the layers before
    it (the networks of specs[:1], specs[:2], ...): a worst-case bound carried through many layers grows
    by sum |w| per layer and would be too loose to mean anything. Returns the whole stack's output."""
    for isa in _each_path():
        before = x
        for i in range(1, len(specs) + 1):
            got = _core.Network(input_shape, specs[:i]).forward(x)
            problem = _off_by(got, *_oracle(specs[i - 1 : i], before))
            assert problem is None, f"{isa} path, layer {i - 1} ({specs[i - 1]['kind']}): {problem}"
            before = got
    return got


@pytest.fixture(scope="session")
def check_layer_by_layer():
    return _check_layer_by_layer


def _catches(specs, input_shape, x, broken):
    """True when the oracle, run on the layer dicts changed by broken(spec), rejects the Network's output."""
    got = _core.Network(input_shape, specs).forward(x)
    assert _off_by(got, *_oracle(specs, x)) is None
    bad_specs = [broken(dict(s)) for s in specs]
    return _off_by(got, *_oracle(bad_specs, x)) is not None


@pytest.fixture(scope="session")
def catches():
    """catches(specs, input_shape, x, broken): whether the bound tells the layers changed by broken(spec)
    apart from the real ones (a meta-test of the tolerance)."""
    return _catches


# ---- random layers -------------------------------------------------------------------------------------


def uniform(rng, shape, scale=1.0):
    return rng.uniform(-scale, scale, size=shape).astype(np.float32)


def weight_scale(fan_in):
    """Uniform weights in +-this give unit-variance sums of fan_in unit-variance-ish inputs."""
    return 3.0 / math.sqrt(fan_in)


def random_table(rng, co, ci, density=None):
    """A (co, ci) boolean connection table, each output map fed by at least one input map."""
    table = rng.random((co, ci)) < (rng.uniform(0.2, 0.9) if density is None else density)
    table[np.arange(co), rng.integers(ci, size=co)] = True
    return table


def conv_layer(rng, ci, co, kh, kw, act, tabled=False):
    table = random_table(rng, co, ci) if tabled else None
    shape = (int(table.sum()), kh, kw) if tabled else (co, ci, kh, kw)
    fan = (ci if table is None else max(table.sum(axis=1))) * kh * kw
    return dict(kind="conv", out=co, kernel=(kh, kw), table=table, act=act,
                weight=uniform(rng, shape, weight_scale(fan)), bias=uniform(rng, co, 0.5))


def subsample_layer(rng, c, pool, act):
    spec = dict(kind="subsample", pool=pool, act=act)
    if pool == "trainable":
        spec.update(coef=uniform(rng, c, 0.6), bias=uniform(rng, c, 0.5))
    return spec


def full_layer(rng, n_in, out, act):
    return dict(kind="full", out=out, act=act, weight=uniform(rng, (n_in, out), weight_scale(n_in)),
                bias=uniform(rng, out, 0.5))


def rbf_layer(rng, n_in, k):
    return dict(kind="rbf", centers=uniform(rng, (k, n_in)))


def input_shape_of_size(data, limit=300):
    """An image shape (C, H, W) drawn from hypothesis' `data` whose flattened size is at most limit: a
    vector (K, 1, 1) or a stack of maps, so that the channel-major flattening is exercised too."""
    if data.draw(st.booleans(), label="vector input"):
        return (data.draw(st.integers(1, limit), label="inputs"), 1, 1)
    c = data.draw(st.integers(1, 8), label="c")
    h = data.draw(st.integers(1, 6), label="h")
    w = data.draw(st.integers(1, min(6, limit // (c * h))), label="w")
    return (c, h, w)


@pytest.fixture(scope="session")
def layers():
    """Random layer dicts for _core.Network, weights scaled by fan-in (module docstring): layers.conv(rng,
    ci, co, kh, kw, act, tabled), layers.subsample(rng, c, pool, act), layers.full(rng, n_in, out, act),
    layers.rbf(rng, n_in, k); layers.uniform(rng, shape, scale) for inputs; layers.input_shape(data, limit)
    for an input shape drawn by hypothesis."""
    return SimpleNamespace(conv=conv_layer, subsample=subsample_layer, full=full_layer, rbf=rbf_layer,
                           uniform=uniform, input_shape=input_shape_of_size)


# ---- one layer's backward ------------------------------------------------------------------------------


def _close(c, want, name):
    """C (float32) against reference (float64) gradient (module docstring)."""
    scale = np.abs(want).max()
    assert scale > 1e-6, f"{name}: the reference gradient is zero: nothing is checked"
    err = np.abs(c - want) - 2e-3 * np.abs(want)
    assert err.max() <= 2e-4 * scale, f"{name}: off by {err.max() / scale:.2e} of its largest entry"


@pytest.fixture(scope="session")
def close():
    """close(c, want, name): asserts a C gradient is within the backward tolerance of the reference's."""
    return _close


class OneLayer:
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
            a = ref.conv2d(x, f["weight"], f["bias"], s.get("table"))
            dx, dw, db = ref.conv2d_backward(x, f["weight"], ref.activation_backward(a, dout, act), s.get("table"))
            return {"weight": dw, "bias": db}, dx
        if s["kind"] == "subsample":
            a = ref.subsample(x, s["pool"], f.get("coef"), f.get("bias"))
            dx, dc, db = ref.subsample_backward(x, ref.activation_backward(a, dout, act), s["pool"], f.get("coef"))
            return ({"coef": dc, "bias": db} if s["pool"] == "trainable" else {}), dx
        flat_x, d = x.reshape(len(x), -1), dout.reshape(len(x), -1)
        if s["kind"] == "full":
            a = ref.linear(flat_x, f["weight"], f["bias"])
            dx, dw, db = ref.linear_backward(flat_x, f["weight"], ref.activation_backward(a, d, act))
            return {"weight": dw, "bias": db}, dx.reshape(x.shape)
        return {}, ref.rbf_backward(flat_x, np.asarray(s["centers"], np.float64), d).reshape(x.shape)


def one_conv(rng, tabled, act, kernel=None):
    """A random convolution (kernel (kh, kw) drawn unless given) as a OneLayer."""
    ci, co = rng.integers(1, 7), rng.integers(1, 9)
    kh, kw = (rng.integers(1, 6), rng.integers(1, 6)) if kernel is None else kernel
    h, w = kh + rng.integers(0, 12), kw + rng.integers(0, 12)
    table = random_table(rng, co, ci, 0.6) if tabled else None
    n_w = int(table.sum()) if tabled else co * ci
    arrays = {"weight": uniform(rng, (n_w, kh, kw) if tabled else (co, ci, kh, kw), 0.5), "bias": uniform(rng, co)}
    spec = dict(kind="conv", out=int(co), kernel=(int(kh), int(kw)), table=table, act=act)
    return OneLayer((int(ci), int(h), int(w)), spec, arrays)


def one_subsample(rng, pool, act):
    c, h, w = rng.integers(1, 8), rng.integers(2, 15), rng.integers(2, 15)
    arrays = {"coef": uniform(rng, c), "bias": uniform(rng, c)} if pool == "trainable" else {}
    return OneLayer((int(c), int(h), int(w)), dict(kind="subsample", pool=pool, act=act), arrays)


def one_full(rng, act, n_in=None, out=None):
    """A random full layer (sizes drawn unless given) as a OneLayer."""
    n_in = rng.integers(1, 130) if n_in is None else n_in
    out = rng.integers(1, 90) if out is None else out
    arrays = {"weight": uniform(rng, (n_in, out), 2 / np.sqrt(n_in)), "bias": uniform(rng, out)}
    return OneLayer((int(n_in), 1, 1), dict(kind="full", out=int(out), act=act), arrays)


def one_rbf(rng, n_in=None, k=None):
    n_in = rng.integers(1, 90) if n_in is None else n_in
    k = rng.integers(1, 12) if k is None else k
    return OneLayer((int(n_in), 1, 1), dict(kind="rbf", centers=uniform(rng, (k, n_in))), {})


@pytest.fixture(scope="session")
def one_layer():
    """Random one-layer networks with a Trainer and their float64 reference backward:
    one_layer.conv(rng, tabled, act, kernel=None), .subsample(rng, pool, act), .full(rng, act, n_in=None,
    out=None), .rbf(rng, n_in=None, k=None), and one_layer.make(input_shape, spec, arrays) for any other."""
    return SimpleNamespace(conv=one_conv, subsample=one_subsample, full=one_full, rbf=one_rbf, make=OneLayer)


def _check_backward(layer, n, seed):
    """layer's backward on n random images and output gradients, on every path, against the reference: the
    parameters' gradients, the input's gradient, and the forward output the backward pass returns."""
    rng = np.random.default_rng(seed)
    x = uniform(rng, (n,) + layer.input_shape)
    dout = uniform(rng, (n,) + layer.net.output_shape)
    want_grads, want_dx = layer.reference(x, dout)
    for isa in _each_path():
        grads, dx, out = layer.backward(x, dout)
        np.testing.assert_array_equal(out, layer.net.forward(x))
        assert set(grads) == set(want_grads)
        for name in grads:
            _close(grads[name], want_grads[name], f"{isa}: {name}")
        _close(dx, want_dx, f"{isa}: dx")


@pytest.fixture(scope="session")
def check_backward():
    """check_backward(layer, n, seed): a OneLayer's gradients on every path against its reference."""
    return _check_backward


# ---- whole networks ------------------------------------------------------------------------------------


def _shuffled_digits(n, seed):
    """n drawn digits (uint8, 28 x 28) with labels unrelated to the images, so that gradients stay large."""
    rng = np.random.default_rng(seed)
    x, y = synthetic_digits(n, seed=seed)
    return x, rng.permutation(y)


@pytest.fixture(scope="session")
def shuffled_digits():
    """shuffled_digits(n, seed) -> (images, labels): seeded digits with permuted labels."""
    return _shuffled_digits
