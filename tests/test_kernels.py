"""Every C kernel against lenet_fast.reference (the NumPy oracle), through lenet_fast._core.

A Network of one layer is that layer's kernel; two layers check how a kernel reads the previous one's
output (a convolution's "wide rows" in the spatial layout, a full layer after pooling, ...). Batch sizes
are chosen so that, with LF_LANES images per block (4 baseline, 8 AVX2, 16 AVX-512), both layouts run:
whole blocks ("blocked"), leftover images one at a time ("spatial") and partly filled blocks (from
LF_PARTIAL_BLOCK_MIN leftovers on, 6 of 8 on AVX2: csrc/kernels.h).

Every check runs on each instruction-set path this CPU has (ISAS: the default one, e.g. AVX2, and the
baseline with its 4 lanes and no FMA), switched with _core.select_isa and switched back.

Tolerance (see oracle()): the kernels accumulate in float32, in a fixed order, with FMA on AVX2/AVX-512;
the oracle runs in float64 on the same float32 inputs and parameters, so its result is exact for our
purpose. A float32 sum of n terms t_i is off by about sqrt(n) * eps * sum |t_i| typically (eps = 6e-8)
and n * eps * sum |t_i| at worst; for the at most a few hundred terms here we allow
ACC_RTOL = 1e-5 of sum |t_i| (the magnitude of the terms accumulated, bias included), plus the error
carried in from the previous layer through |weights|. An activation adds ACT_RTOL = 1e-6 of its output
(the fitted tanh is within 3.6e-7, plus float32 roundings) and passes an input error on multiplied by at
most its largest slope. Weights are scaled by 1/sqrt(fan-in) so that sums are O(1) and the activations do
not saturate: a wrong tap, a missing bias or a misplaced weight then moves outputs by ~0.1, orders of
magnitude beyond the bound (test_the_tolerance_catches_* check exactly that).
"""
import contextlib
import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lenet_fast import _core
from lenet_fast import reference as ref

# Empty batch, single images, whole blocks, blocks plus single leftovers, partly filled blocks: for 4, 8
# and 16 lanes alike.
BATCHES = (0, 1, 2, 5, 6, 7, 8, 9, 13, 14, 16, 17, 22, 37)
ACTS = ("none", "squash", "tanh", "relu")
POOLS = ("trainable", "average", "max")
SEEDS = st.integers(0, 2**32 - 1)
# Full-layer widths: below 8 lanes, multiples of 8 and 16, ragged ones (LeNet's own 84 and 120), around
# the blocked tile (12 or 24 outputs) and the spatial tile (4 vectors).
FULL_OUTS = (1, 2, 3, 5, 7, 8, 9, 10, 12, 15, 16, 17, 24, 25, 31, 32, 33, 48, 64, 65, 84, 96, 120, 127, 128,
             255, 300)

EPS32 = float(np.finfo(np.float32).eps)
TINY32 = float(np.finfo(np.float32).smallest_subnormal)
FLT_MAX = float(np.finfo(np.float32).max)
ACC_RTOL = 1e-5
ACT_RTOL = 1e-6
LIPSCHITZ = {"none": 1.0, "relu": 1.0, "tanh": 1.0, "squash": ref.SQUASH_A * ref.SQUASH_S}


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


def oracle(specs, x):
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


def off_by(got, want, bound):
    """A description of the outputs farther from want than bound, or None when there are none."""
    diff = np.abs(f64(got) - want)
    bad = diff > bound
    if not bad.any():
        return None
    i = np.unravel_index(np.argmax(np.where(bad, diff - bound, -np.inf)), diff.shape)
    return (f"{bad.sum()} of {diff.size} outputs off; worst at {i}: got {got[i]!r}, want {want[i]!r}, "
            f"allowed {bound[i]:.3g}")


def available_isas():
    """The instruction-set paths this CPU runs, the default first."""
    default = _core.isa()
    paths = [default]
    try:
        for name in ("avx512", "avx2", "baseline"):
            if name != default:
                try:
                    _core.select_isa(name)
                    paths.append(name)
                except ValueError:
                    pass
    finally:
        _core.select_isa(default)
    return tuple(paths)


ISAS = available_isas()


@contextlib.contextmanager
def on_path(isa):
    """Run the kernels on instruction-set path isa inside the block."""
    before = _core.isa()
    _core.select_isa(isa)
    try:
        yield
    finally:
        _core.select_isa(before)


@pytest.fixture(params=ISAS)
def path(request):
    """Run the test on each instruction-set path."""
    with on_path(request.param):
        yield request.param


def check_network(input_shape, specs, x):
    """Run specs on x through _core.Network on every path and compare with the oracle; returns the
    default path's output."""
    net = _core.Network(input_shape, specs)
    want, bound = oracle(specs, x)
    outputs = []
    for isa in ISAS:
        with on_path(isa):
            got = net.forward(x)
        assert got.dtype == np.float32
        assert got.shape == want.shape
        problem = off_by(got, want, bound)
        assert problem is None, f"{isa} path: {problem}"
        outputs.append(got)
    return outputs[0]


# ---- random layers -------------------------------------------------------------------------------------


def uniform(rng, shape, scale=1.0):
    return rng.uniform(-scale, scale, size=shape).astype(np.float32)


def weight_scale(fan_in):
    """Uniform weights in +-this give unit-variance sums of fan_in unit-variance-ish inputs."""
    return 3.0 / math.sqrt(fan_in)


def random_table(rng, co, ci):
    """A (co, ci) boolean connection table, each output map fed by at least one input map."""
    table = rng.random((co, ci)) < rng.uniform(0.2, 0.9)
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


# ---- convolution ---------------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(data=st.data(), ci=st.integers(1, 8), co=st.integers(1, 8), kh=st.integers(1, 7), kw=st.integers(1, 7),
       tabled=st.booleans(), n=st.sampled_from(BATCHES), act=st.sampled_from(ACTS), seed=SEEDS)
def test_conv(data, ci, co, kh, kw, tabled, n, act, seed):
    """A convolution alone, dense or wired by a random connection table, any kernel, map and batch size:
    guards every tap, the packed-weight order, the bias and the fused activation in both layouts."""
    h, w = data.draw(st.integers(kh, 20), label="h"), data.draw(st.integers(kw, 20), label="w")
    rng = np.random.default_rng(seed)
    spec = conv_layer(rng, ci, co, kh, kw, act, tabled)
    check_network((ci, h, w), [spec], uniform(rng, (n, ci, h, w)))


@settings(max_examples=50, deadline=None)
@given(data=st.data(), ci=st.integers(1, 8), co=st.integers(1, 8), kh=st.integers(1, 7), kw=st.integers(1, 7),
       tabled=st.booleans(), pool=st.sampled_from(POOLS), n=st.sampled_from(BATCHES),
       acts=st.tuples(st.sampled_from(ACTS), st.sampled_from(ACTS)), seed=SEEDS)
def test_conv_then_subsample(data, ci, co, kh, kw, tabled, pool, n, acts, seed):
    """Pooling reads a convolution's output as the engine lays it out (wide rows in the spatial layout,
    odd sizes dropping their last row and column): guards the strides between two kernels."""
    h, w = data.draw(st.integers(kh + 1, 21), label="h"), data.draw(st.integers(kw + 1, 21), label="w")
    rng = np.random.default_rng(seed)
    specs = [conv_layer(rng, ci, co, kh, kw, acts[0], tabled), subsample_layer(rng, co, pool, acts[1])]
    check_network((ci, h, w), specs, uniform(rng, (n, ci, h, w)))


def check_layer_by_layer(input_shape, specs, x):
    """A deep stack, each layer against the oracle run on the Network's own output of the layers before
    it (the networks of specs[:1], specs[:2], ...): a worst-case bound carried through many layers grows
    by sum |w| per layer and would be too loose to mean anything. Returns the whole stack's output."""
    for isa in ISAS:
        before = x
        with on_path(isa):
            for i in range(1, len(specs) + 1):
                got = _core.Network(input_shape, specs[:i]).forward(x)
                problem = off_by(got, *oracle(specs[i - 1 : i], before))
                assert problem is None, f"{isa} path, layer {i - 1} ({specs[i - 1]['kind']}): {problem}"
                before = got
    return got


@pytest.mark.parametrize("n", BATCHES)
def test_lenet_like_stack_at_every_batch_size(n):
    """C1-S2-C3-S4-C5-F6-RBF shaped network (with a random C3 table) at every batch size: each layout and
    the partly filled block run the whole stack, every layer giving the oracle's answer."""
    rng = np.random.default_rng(1000 + n)
    specs = [conv_layer(rng, 1, 4, 5, 5, "squash"), subsample_layer(rng, 4, "trainable", "squash"),
             conv_layer(rng, 4, 6, 3, 3, "tanh", tabled=True), subsample_layer(rng, 6, "max", "none"),
             full_layer(rng, 6 * 3 * 3, 20, "relu"), full_layer(rng, 20, 12, "squash"), rbf_layer(rng, 12, 10)]
    got = check_layer_by_layer((1, 22, 21), specs, uniform(rng, (n, 1, 22, 21)))
    assert got.shape == (n, 10, 1, 1)


# ---- subsampling ---------------------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(c=st.integers(1, 8), h=st.integers(2, 21), w=st.integers(2, 21), pool=st.sampled_from(POOLS),
       n=st.sampled_from(BATCHES), act=st.sampled_from(ACTS), seed=SEEDS)
def test_subsample(c, h, w, pool, n, act, seed):
    """2x2 pooling first in the network, every mode, odd and even sizes: guards the window positions, the
    dropped odd edge, the per-map coefficient and bias, the 1/4 of the average and the activation."""
    rng = np.random.default_rng(seed)
    spec = subsample_layer(rng, c, pool, act)
    check_network((c, h, w), [spec], uniform(rng, (n, c, h, w), 2.0))


@settings(max_examples=50, deadline=None)
@given(data=st.data(), c=st.integers(1, 8), co=st.integers(1, 8), kh=st.integers(1, 7), kw=st.integers(1, 7),
       tabled=st.booleans(), pool=st.sampled_from(POOLS), n=st.sampled_from(BATCHES),
       acts=st.tuples(st.sampled_from(ACTS), st.sampled_from(ACTS)), seed=SEEDS)
def test_subsample_then_conv(data, c, co, kh, kw, tabled, pool, n, acts, seed):
    """A convolution reading a pooled map (dense rows), as C3 reads S2."""
    h = data.draw(st.integers(2 * kh, 2 * kh + 9), label="h")
    w = data.draw(st.integers(2 * kw, 2 * kw + 9), label="w")
    rng = np.random.default_rng(seed)
    specs = [subsample_layer(rng, c, pool, acts[0]), conv_layer(rng, c, co, kh, kw, acts[1], tabled)]
    check_network((c, h, w), specs, uniform(rng, (n, c, h, w)))


@settings(max_examples=40, deadline=None)
@given(c=st.integers(1, 8), h=st.integers(4, 21), w=st.integers(4, 21),
       pools=st.tuples(st.sampled_from(POOLS), st.sampled_from(POOLS)), n=st.sampled_from(BATCHES),
       acts=st.tuples(st.sampled_from(ACTS), st.sampled_from(ACTS)), seed=SEEDS)
def test_subsample_twice(c, h, w, pools, n, acts, seed):
    """Pooling a pooled map: the second kernel reads the first one's output geometry."""
    rng = np.random.default_rng(seed)
    specs = [subsample_layer(rng, c, pools[0], acts[0]), subsample_layer(rng, c, pools[1], acts[1])]
    check_network((c, h, w), specs, uniform(rng, (n, c, h, w)))


# ---- full and RBF layers -------------------------------------------------------------------------------


def input_shape_of_size(data, limit=300):
    """An image shape (C, H, W) whose flattened size is at most limit: a vector (K, 1, 1) or a stack of
    maps, so that the channel-major flattening is exercised too."""
    if data.draw(st.booleans(), label="vector input"):
        return (data.draw(st.integers(1, limit), label="inputs"), 1, 1)
    c = data.draw(st.integers(1, 8), label="c")
    h = data.draw(st.integers(1, 6), label="h")
    w = data.draw(st.integers(1, min(6, limit // (c * h))), label="w")
    return (c, h, w)


OUT_WIDTHS = st.one_of(st.sampled_from(FULL_OUTS), st.integers(1, 300))


@settings(max_examples=100, deadline=None)
@given(data=st.data(), out=OUT_WIDTHS, n=st.sampled_from(BATCHES), act=st.sampled_from(ACTS), seed=SEEDS)
def test_full(data, out, n, act, seed):
    """A full layer alone, 1 to 300 inputs and outputs: guards the input-major weight order, the ragged
    last vector (which the spatial layout recomputes overlapping its neighbour), the bias and the
    activation."""
    shape = input_shape_of_size(data)
    rng = np.random.default_rng(seed)
    spec = full_layer(rng, math.prod(shape), out, act)
    check_network(shape, [spec], uniform(rng, (n,) + shape))


@settings(max_examples=50, deadline=None)
@given(n_in=st.integers(1, 300), mid=OUT_WIDTHS, out=OUT_WIDTHS, n=st.sampled_from(BATCHES),
       acts=st.tuples(st.sampled_from(ACTS), st.sampled_from(ACTS)), seed=SEEDS)
def test_full_then_full(n_in, mid, out, n, acts, seed):
    """Two full layers, as C5 feeds F6: the second reads the first one's output vector."""
    rng = np.random.default_rng(seed)
    specs = [full_layer(rng, n_in, mid, acts[0]), full_layer(rng, mid, out, acts[1])]
    check_network((n_in, 1, 1), specs, uniform(rng, (n, n_in, 1, 1)))


@settings(max_examples=50, deadline=None)
@given(c=st.integers(1, 8), h=st.integers(2, 13), w=st.integers(2, 13), pool=st.sampled_from(POOLS),
       out=OUT_WIDTHS, n=st.sampled_from(BATCHES), acts=st.tuples(st.sampled_from(ACTS), st.sampled_from(ACTS)),
       seed=SEEDS)
def test_subsample_then_full(c, h, w, pool, out, n, acts, seed):
    """A full layer over pooled maps, as C5 reads S4 (flattened channel-major)."""
    rng = np.random.default_rng(seed)
    specs = [subsample_layer(rng, c, pool, acts[0]), full_layer(rng, c * (h // 2) * (w // 2), out, acts[1])]
    check_network((c, h, w), specs, uniform(rng, (n, c, h, w)))


@settings(max_examples=60, deadline=None)
@given(data=st.data(), k=st.integers(1, 20), n=st.sampled_from(BATCHES), seed=SEEDS)
def test_rbf(data, k, n, seed):
    """Euclidean RBF units alone, 1 to 20 centres: guards the centres' transposition and the square."""
    shape = input_shape_of_size(data, 120)
    rng = np.random.default_rng(seed)
    spec = rbf_layer(rng, math.prod(shape), k)
    check_network(shape, [spec], uniform(rng, (n,) + shape))


@settings(max_examples=50, deadline=None)
@given(n_in=st.integers(1, 300), mid=OUT_WIDTHS, k=st.integers(1, 20), n=st.sampled_from(BATCHES),
       act=st.sampled_from(ACTS), seed=SEEDS)
def test_full_then_rbf(n_in, mid, k, n, act, seed):
    """RBF units on a full layer's output, as the classic head reads F6."""
    rng = np.random.default_rng(seed)
    specs = [full_layer(rng, n_in, mid, act), rbf_layer(rng, mid, k)]
    check_network((n_in, 1, 1), specs, uniform(rng, (n, n_in, 1, 1)))


def test_rbf_is_exact_at_a_centre():
    """An input equal to a centre is at distance exactly 0 (the kernel takes differences, no cancelling
    |x|^2 - 2 x.c + |c|^2), and the other distances are the oracle's."""
    rng = np.random.default_rng(7)
    centers = uniform(rng, (10, 84))
    x = np.ascontiguousarray(centers[[3, 0, 9, 9, 5, 1, 2, 8, 7]].reshape(9, 84, 1, 1))
    got = check_network((84, 1, 1), [dict(kind="rbf", centers=centers)], x)[:, :, 0, 0]
    assert np.all(got[np.arange(9), [3, 0, 9, 9, 5, 1, 2, 8, 7]] == 0)


# ---- the layouts agree to the bit ----------------------------------------------------------------------


def random_two_layer_network(data, rng):
    """One of the layer pairs the engine accepts, with random small shapes: (input_shape, specs)."""
    kind = data.draw(st.sampled_from(["conv+subsample", "subsample+conv", "subsample+full", "full+full",
                                      "full+rbf"]), label="pair")
    act = data.draw(st.sampled_from(ACTS), label="act")
    pool = data.draw(st.sampled_from(POOLS), label="pool")
    if kind == "conv+subsample":
        return (3, 12, 11), [conv_layer(rng, 3, 5, 3, 4, act, True), subsample_layer(rng, 5, pool, act)]
    if kind == "subsample+conv":
        return (4, 13, 14), [subsample_layer(rng, 4, pool, act), conv_layer(rng, 4, 3, 5, 2, act)]
    if kind == "subsample+full":
        return (3, 9, 8), [subsample_layer(rng, 3, pool, act), full_layer(rng, 48, 84, act)]
    if kind == "full+full":
        return (50, 1, 1), [full_layer(rng, 50, 120, act), full_layer(rng, 120, 7, act)]
    return (40, 1, 1), [full_layer(rng, 40, 84, act), rbf_layer(rng, 84, 10)]


@settings(max_examples=30, deadline=None)
@given(data=st.data(), n=st.sampled_from([b for b in BATCHES if b >= 2]), seed=SEEDS)
def test_an_images_result_does_not_depend_on_its_batch(data, n, seed):
    """An image gives the same bits whether it runs alone (spatial layout), in a whole block or in a
    partly filled one (csrc/kernels.h promises the same arithmetic in the same order)."""
    rng = np.random.default_rng(seed)
    shape, specs = random_two_layer_network(data, rng)
    net = _core.Network(shape, specs)
    x = uniform(rng, (n,) + shape)
    split = data.draw(st.integers(1, n - 1), label="split")
    for isa in ISAS:
        with on_path(isa):
            whole = net.forward(x)
            singles = np.concatenate([net.forward(x[i : i + 1]) for i in range(n)])
            halves = np.concatenate([net.forward(x[:split]), net.forward(x[split:])])
        assert np.array_equal(whole, singles), isa
        assert np.array_equal(whole, halves), isa


# ---- the tolerance is tight enough to see a bug --------------------------------------------------------


def catches(specs, input_shape, x, broken):
    """True when the oracle, run on the layer dicts changed by broken(spec), rejects the Network's output."""
    got = _core.Network(input_shape, specs).forward(x)
    assert off_by(got, *oracle(specs, x)) is None
    bad_specs = [broken(dict(s)) for s in specs]
    return off_by(got, *oracle(bad_specs, x)) is not None


@pytest.mark.parametrize("act", ACTS)
def test_the_tolerance_catches_a_wrong_tap_or_a_missing_bias_in_a_conv(act):
    """Meta-test of the bound: a convolution with its kernels shifted by one tap, or without its bias, or
    with two packed kernels swapped, is told apart from the real one."""
    rng = np.random.default_rng(3)
    specs = [conv_layer(rng, 8, 8, 7, 7, act, tabled=True)]  # the most terms per output here: 392
    x = uniform(rng, (9, 8, 20, 20))

    def shift_tap(s):
        return dict(s, weight=np.roll(s["weight"], 1, axis=-1))

    def drop_bias(s):
        return dict(s, bias=np.zeros_like(s["bias"]))

    def swap_kernels(s):
        return dict(s, weight=s["weight"][[1, 0] + list(range(2, len(s["weight"])))])

    for broken in (shift_tap, drop_bias, swap_kernels):
        assert catches(specs, (8, 20, 20), x, broken), broken.__name__


@pytest.mark.parametrize("act", ACTS)
def test_the_tolerance_catches_a_wrong_weight_or_a_missing_bias_in_a_full_layer(act):
    """Meta-test of the bound: a 300 x 120 full layer without its bias, or with one input's weights
    shifted to the next output, is told apart from the real one."""
    rng = np.random.default_rng(4)
    specs = [full_layer(rng, 300, 120, act)]
    x = uniform(rng, (9, 300, 1, 1))
    assert catches(specs, (300, 1, 1), x, lambda s: dict(s, bias=np.zeros_like(s["bias"])))
    assert catches(specs, (300, 1, 1), x, lambda s: dict(s, weight=np.roll(s["weight"], 1, axis=1)))


# ---- parameters in place, normalization ----------------------------------------------------------------


def test_parameters_are_used_in_place():
    """Network keeps the parameter arrays, not copies: an in-place update (as training does) changes the
    next forward, exactly as the oracle on the new values says."""
    rng = np.random.default_rng(5)
    specs = [subsample_layer(rng, 2, "trainable", "squash"), full_layer(rng, 2 * 4 * 4, 9, "tanh")]
    net = _core.Network((2, 8, 8), specs)
    x = uniform(rng, (11, 2, 8, 8))
    before = net.forward(x)
    specs[0]["coef"] *= -1.5
    specs[1]["weight"][3] += 0.25
    specs[1]["bias"][...] = 0.125
    after = net.forward(x)
    assert not np.allclose(before, after)
    assert off_by(after, *oracle(specs, x)) is None


@settings(max_examples=40, deadline=None)
@given(c=st.integers(1, 3), size=st.tuples(st.integers(4, 8), st.integers(4, 40)),
       field=st.tuples(st.integers(0, 5), st.integers(0, 5)), uint8=st.booleans(), n=st.sampled_from(BATCHES),
       seed=SEEDS)
# Batches that fill blocks, with rows of one vector of 16 pixels plus one, of two with an overlap, of 40.
@example(c=1, size=(4, 17), field=(0, 3), uint8=False, n=37, seed=1)
@example(c=2, size=(5, 28), field=(4, 4), uint8=True, n=37, seed=2)
@example(c=1, size=(4, 40), field=(1, 0), uint8=True, n=22, seed=3)
def test_normalize_maps_pixels_and_centres_the_image(c, size, field, uint8, n, seed):
    """normalize=True maps pixels p (uint8 / 255, or float in [0, 1]) to p * 1.275 - 0.1 and centres a
    smaller image in the input field, background -0.1 around it: read back through an identity full
    layer (one nonzero term per output, so exact up to the mapping's float32 rounding). Rows up to 40
    pixels wide: narrower and wider than a vector of 4, 8 or 16, whose blocks are packed a vector of
    pixels at a time."""
    h, w = size
    big_h, big_w = h + field[0], w + field[1]
    rng = np.random.default_rng(seed)
    n_in = c * big_h * big_w
    identity = dict(kind="full", out=n_in, weight=np.eye(n_in, dtype=np.float32),
                    bias=np.zeros(n_in, np.float32))
    if uint8:
        pixels = rng.integers(0, 256, size=(n, c, h, w), dtype=np.uint8)
        p = pixels / 255.0
    else:
        pixels = rng.random((n, c, h, w), dtype=np.float32)
        pixels[..., 0, 0] = 1.0  # the ends of the range
        pixels[..., -1, -1] = 0.0
        p = f64(pixels)
    got = _core.Network((c, big_h, big_w), [identity]).forward(pixels, normalize=True)
    want = np.full((n, c, big_h, big_w), ref.INPUT_BACKGROUND)
    top, left = (big_h - h) // 2, (big_w - w) // 2
    want[:, :, top : top + h, left : left + w] = p * ref.INPUT_SCALE + ref.INPUT_BACKGROUND
    np.testing.assert_allclose(got.reshape(want.shape), want, rtol=0, atol=4 * EPS32)


# ---- what Network refuses ------------------------------------------------------------------------------


BAD_NETWORKS = {
    # name: (input_shape, layers as a function of rng, exception, message)
    "conv after conv": ((2, 9, 9), lambda r: [conv_layer(r, 2, 2, 3, 3, "none"), conv_layer(r, 2, 2, 3, 3, "none")],
                        ValueError, "cannot follow a convolution"),
    "full after conv": ((2, 9, 9), lambda r: [conv_layer(r, 2, 2, 3, 3, "none"), full_layer(r, 98, 4, "none")],
                        ValueError, "full or RBF layer"),
    "rbf after conv": ((2, 9, 9), lambda r: [conv_layer(r, 2, 2, 3, 3, "none"), rbf_layer(r, 98, 4)],
                       ValueError, "full or RBF layer"),
    "rbf with an activation": ((5, 1, 1), lambda r: [dict(rbf_layer(r, 5, 3), act="tanh")],
                               ValueError, "no activation"),
    "table row without inputs": ((2, 9, 9), lambda r: [dict(conv_layer(r, 2, 2, 3, 3, "none"), weight=uniform(r, (1, 3, 3)),
                                                            table=np.array([[True, False], [False, False]]))],
                                 ValueError, "at least one input"),
    "table of the wrong shape": ((2, 9, 9), lambda r: [dict(conv_layer(r, 2, 2, 3, 3, "none"), table=np.ones((2, 3), bool))],
                                 ValueError, "table must be"),
    "table not boolean": ((2, 9, 9), lambda r: [dict(conv_layer(r, 2, 2, 3, 3, "none"), table=np.ones((2, 2)))],
                          ValueError, "table must be"),
    "kernel larger than the input": ((2, 4, 9), lambda r: [conv_layer(r, 2, 2, 5, 3, "none")],
                                     ValueError, "does not fit"),
    "pooling a 1-row input": ((2, 1, 9), lambda r: [subsample_layer(r, 2, "max", "none")], ValueError, "2x2"),
    "float64 weight": ((2, 9, 9), lambda r: [dict(conv_layer(r, 2, 2, 3, 3, "none"),
                                                  weight=np.zeros((2, 2, 3, 3)))], TypeError, "float32"),
    "strided weight": ((2, 9, 9), lambda r: [dict(conv_layer(r, 2, 2, 3, 3, "none"),
                                                  weight=np.zeros((2, 2, 3, 6), np.float32)[..., ::2])],
                       TypeError, "C-contiguous"),
    "weight of the wrong shape": ((2, 9, 9), lambda r: [dict(conv_layer(r, 2, 2, 3, 3, "none"), weight=uniform(r, (2, 2, 3, 2)))],
                                  ValueError, "must have shape"),
    "NaN in a bias": ((6, 1, 1), lambda r: [dict(full_layer(r, 6, 4, "none"), bias=np.array([0, np.nan, 0, 0], np.float32))],
                      ValueError, "NaN"),
    "missing coefficients": ((2, 4, 4), lambda r: [dict(kind="subsample", pool="trainable", bias=uniform(r, 2))],
                             ValueError, "missing 'coef'"),
    "unknown kind": ((2, 4, 4), lambda r: [dict(kind="dense")], ValueError, "kind must be one of"),
    "unknown pool": ((2, 4, 4), lambda r: [dict(kind="subsample", pool="median")], ValueError, "pool must be one of"),
    "unknown activation": ((2, 4, 4), lambda r: [subsample_layer(r, 2, "max", "sigmoid")], ValueError, "act must be one of"),
    "no layers": ((2, 4, 4), lambda r: [], ValueError, "1 to 16 layers"),
    "17 layers": ((2, 4, 4), lambda r: [full_layer(r, 32, 32, "none")] + [full_layer(r, 32, 32, "none")] * 16,
                  ValueError, "1 to 16 layers"),
    "zero-sized input": ((0, 4, 4), lambda r: [subsample_layer(r, 2, "max", "none")], ValueError, "input channels"),
}


@pytest.mark.parametrize("name", sorted(BAD_NETWORKS))
def test_network_refuses(name):
    """The Cython layer checks every layer before C sees it, and says which layer and what is wrong."""
    shape, layers, exc, message = BAD_NETWORKS[name]
    with pytest.raises(exc, match=message):
        _core.Network(shape, layers(np.random.default_rng(6)))


@pytest.mark.parametrize(
    "x, normalize, exc, message",
    [
        (np.zeros((2, 3, 8, 8), np.float64), False, TypeError, "uint8 or float32"),
        (np.zeros((2, 3, 8, 8), np.uint8), False, TypeError, "normalize=True"),
        (np.zeros((2, 3, 8, 16), np.float32)[..., ::2], False, ValueError, "C-contiguous"),
        (np.zeros((2, 3, 8, 7), np.float32), False, ValueError, "must be"),
        (np.zeros((3, 8, 8), np.float32), False, ValueError, "4-D"),
        (np.full((2, 3, 8, 8), np.inf, np.float32), False, ValueError, "NaN or infinity"),
        (np.full((2, 3, 8, 8), 1.5, np.float32), True, ValueError, r"\[0, 1\]"),
        (np.zeros((2, 3, 9, 8), np.uint8), True, ValueError, "images must be"),
    ],
)
def test_network_forward_refuses(x, normalize, exc, message):
    """forward() checks the batch: dtype, layout, shape, finiteness and, for pixels, their range."""
    net = _core.Network((3, 8, 8), [subsample_layer(np.random.default_rng(0), 3, "max", "none")])
    with pytest.raises(exc, match=message):
        net.forward(x, normalize)


def test_network_forward_takes_one_channel_images_without_the_channel_axis():
    """With one input channel, (N, H, W) and one (H, W) image run as (N, 1, H, W); flat=True gives (N, K)."""
    rng = np.random.default_rng(11)
    net = _core.Network((1, 12, 12), [conv_layer(rng, 1, 4, 5, 5, "tanh"), subsample_layer(rng, 4, "max", "none")])
    x = rng.uniform(0, 1, (3, 1, 10, 10)).astype(np.float32)
    want = net.forward(x, True)
    assert want.shape == (3, 4, 4, 4)
    np.testing.assert_array_equal(net.forward(x[:, 0], True), want)
    np.testing.assert_array_equal(net.forward(np.ascontiguousarray(x[1, 0]), True), want[1:2])
    np.testing.assert_array_equal(net.forward(x, True, flat=True), want.reshape(3, -1))


# ---- activation() --------------------------------------------------------------------------------------


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
    want = ref.activation(f64(x), act)
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
        np.testing.assert_allclose(got, ref.activation(f64(x), act), rtol=ACT_RTOL)


def test_activation_converts_and_copies_its_input():
    """float64, float16, big-endian and strided input are converted; the input is never written."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((6, 10))
    for variant in (x, x.astype(np.float16), x.astype(">f4"), x[:, ::3], x.T):
        before = variant.copy()
        got = _core.activation(variant, "tanh")
        np.testing.assert_allclose(got, np.tanh(f64(np.asarray(variant, np.float32))), rtol=ACT_RTOL)
        np.testing.assert_array_equal(variant, before)


@pytest.mark.parametrize(
    "x, act, exc, message",
    [
        (np.arange(5), "tanh", TypeError, "floating-point"),
        (np.ones(3, bool), "tanh", TypeError, "floating-point"),
        (np.ones(3, complex), "tanh", TypeError, "floating-point"),
        (np.ones(3, np.float32), "sigmoid", ValueError, "act must be one of"),
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
    got, want = f64(got), f64(want)
    err = np.abs(got - want) / np.maximum(np.abs(want), np.finfo(np.float64).tiny)
    return err.max(), got[err.argmax()], want[err.argmax()]


@pytest.mark.parametrize("points", [every_997th_float32, dense_grid, tiny_and_huge])
def test_tanh_is_accurate_to_1e6_over_the_float32_range(points, path):
    """The fitted rational tanh (documented at ~3.6e-7) against numpy's float64 tanh: max relative error
    1e-6 over the whole float32 range."""
    x = points()
    err, got, want = max_relative_error(_core.activation(x, "tanh"), np.tanh(f64(x)))
    assert err <= 1e-6, f"relative error {err:.3g}: got {got!r}, want {want!r}"


@pytest.mark.parametrize("points", [every_997th_float32, dense_grid, tiny_and_huge])
def test_squash_is_accurate_to_1e6_over_the_float32_range(points, path):
    """squash = 1.7159 tanh(2a/3) within 1e-6 relative of the reference in float64, except that a
    subnormal input or output has at most a few subnormal steps of absolute error (2a/3 and 1.7159 * t
    rounded in float32 cannot do better there)."""
    x = points()
    got, want = f64(_core.activation(x, "squash")), ref.squash(f64(x))
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


# ---- softmax -------------------------------------------------------------------------------------------


def softmax_bounds(z):
    """For rows z (float64): the reference softmax and log-softmax, and the error a float32 kernel may
    make on each. softmax: exp of the float32 difference z - max (rounded: relative eps * |z - max|),
    one ulp-ish for expf and the scaling (2e-6), and 1e-38 absolute where the result underflows.
    log-softmax: the roundings of z - max and of the result (eps of each) plus 1e-6 for log(sum)."""
    diff = np.abs(z - z.max(axis=1, keepdims=True))
    p, logp = ref.softmax(z), ref.log_softmax(z)
    return p, p * (2e-6 + EPS32 * diff) + 1e-38, logp, 2 * EPS32 * (diff + np.abs(logp)) + 1e-6


@settings(max_examples=100, deadline=None)
@given(n=st.integers(0, 20), k=st.integers(1, 40), log=st.booleans(), negate=st.booleans(),
       magnitude=st.floats(-3, 37.5), ties=st.booleans(), seed=SEEDS)
def test_softmax_matches_the_reference(n, k, log, negate, magnitude, ties, seed):
    """softmax / log-softmax of x or of -x over rows, magnitudes from 1e-3 to 3e37: within the bounds of
    softmax_bounds(), finite, rows of probabilities summing to 1."""
    rng = np.random.default_rng(seed)
    x = (rng.uniform(-1, 1, (n, k)) * 10.0**magnitude).astype(np.float32)
    if ties and k > 1:
        x[:, 1] = x[:, 0]
    p, p_tol, logp, logp_tol = softmax_bounds(-f64(x) if negate else f64(x))
    want, tol = (logp, logp_tol) if log else (p, p_tol)
    for isa in ISAS:
        with on_path(isa):
            got = _core.softmax(x, log=log, negate=negate)
        assert got.shape == (n, k) and got.dtype == np.float32
        assert np.all(np.isfinite(got)), isa
        problem = off_by(got, want, tol)
        assert problem is None, f"{isa} path: {problem}"
        if not log:
            assert np.all((got >= 0) & (got <= 1)), isa
            np.testing.assert_allclose(got.sum(axis=1, dtype=np.float64), 1.0, rtol=0, atol=2e-6 + k * EPS32,
                                       err_msg=isa)


@pytest.mark.parametrize("negate", [False, True])
def test_softmax_of_the_largest_floats(negate, path):
    """Magnitudes up to FLT_MAX: no overflow, no NaN; the probabilities sum to 1 and put all the weight on
    the largest entry (on equal largest entries, equally)."""
    x = np.float32([[FLT_MAX, -FLT_MAX, 0.0, 1e38],
                    [-FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX],
                    [FLT_MAX, FLT_MAX, -1e38, 3.0],
                    [1e-45, -1e-45, 0.0, -0.0]])
    got = _core.softmax(x, negate=negate)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=0, atol=1e-6)
    np.testing.assert_allclose(got, ref.softmax(-f64(x) if negate else f64(x)), rtol=1e-6, atol=1e-38)
    # log-softmax: exact where representable; an entry more than FLT_MAX below the row's largest one
    # overflows to -inf, the float32 rounding of its true value.
    log = _core.softmax(x, log=True, negate=negate)
    want = ref.log_softmax(-f64(x) if negate else f64(x))
    assert not np.isnan(log).any()
    representable = want >= -FLT_MAX
    np.testing.assert_allclose(log[representable], want[representable], rtol=1e-6, atol=1e-6)
    assert np.all(log[~representable] == -np.inf)


def test_softmax_of_many_rows(path):
    """From 4096 rows on, the rows are shared among threads: the same bits as row by row, and the
    reference's values."""
    rng = np.random.default_rng(9)
    x = (rng.standard_normal((5000, 10)) * 20).astype(np.float32)
    for log in (False, True):
        got = _core.softmax(x, log=log, negate=True)
        rows = np.concatenate([_core.softmax(x[i : i + 1], log=log, negate=True) for i in range(len(x))])
        assert np.array_equal(got, rows)
        p, p_tol, logp, logp_tol = softmax_bounds(-f64(x))
        problem = off_by(got, *((logp, logp_tol) if log else (p, p_tol)))
        assert problem is None, problem


@pytest.mark.parametrize(
    "x, exc, message",
    [
        (np.zeros((3, 0), np.float32), ValueError, "at least one class"),
        (np.zeros(5, np.float32), ValueError, "shape"),
        (np.zeros((2, 3, 4), np.float32), ValueError, "shape"),
        (np.float32([[0.0, np.inf]]), ValueError, "NaN or infinity"),
        (np.zeros((2, 3), np.int32), TypeError, "floating-point"),
    ],
)
def test_softmax_refuses(x, exc, message):
    with pytest.raises(exc, match=message):
        _core.softmax(x)


def test_softmax_of_an_empty_batch():
    assert _core.softmax(np.zeros((0, 10), np.float32)).shape == (0, 10)
    assert _core.softmax(np.zeros((0, 10), np.float32), log=True, negate=True).shape == (0, 10)


def test_network_refuses_sizes_the_engine_cannot_hold():
    """Limits that keep C's indices in range and its stack small are checked before any C runs."""
    with pytest.raises(ValueError, match="at most 4096 positions"):
        _core.Network((1, 1, 30000), [dict(kind="conv", out=1, kernel=(1, 5000), bias=np.zeros(1, np.float32),
                                           weight=np.zeros((1, 1, 1, 5000), np.float32))])
    with pytest.raises(ValueError, match="floats per image is over"):
        _core.Network((4096, 4096, 2), [dict(kind="subsample", pool="max")])
