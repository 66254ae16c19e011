"""csrc/forward.c (the whole-network forward pass) through _core.Network: a LeNet-like stack at every batch size
layer by layer against the reference, an image's bits independent of its batch (blocked, spatial and partly
filled layouts), parameters read in place, the input normalization, and what Network and forward() refuse.
Tolerances: tests/kernels/conftest.py."""
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lenet_fast import _core
from lenet_fast import reference as ref

from cases import ACTS, BATCHES, POOLS, SEEDS

EPS32 = float(np.finfo(np.float32).eps)


@pytest.mark.parametrize("n", BATCHES)
def test_lenet_like_stack_at_every_batch_size(n, layers, check_layer_by_layer):
    """C1-S2-C3-S4-C5-F6-RBF shaped network (with a random C3 table) at every batch size: each layout and
    the partly filled block run the whole stack, every layer giving the oracle's answer."""
    rng = np.random.default_rng(1000 + n)
    specs = [layers.conv(rng, 1, 4, 5, 5, "squash"), layers.subsample(rng, 4, "trainable", "squash"),
             layers.conv(rng, 4, 6, 3, 3, "tanh", tabled=True), layers.subsample(rng, 6, "max", "none"),
             layers.full(rng, 6 * 3 * 3, 20, "relu"), layers.full(rng, 20, 12, "squash"), layers.rbf(rng, 12, 10)]
    got = check_layer_by_layer((1, 22, 21), specs, layers.uniform(rng, (n, 1, 22, 21)))
    assert got.shape == (n, 10, 1, 1)

# ---- the layouts agree to the bit ----------------------------------------------------------------------

def random_two_layer_network(data, rng, layers):
    """One of the layer pairs the engine accepts, with random small shapes: (input_shape, specs)."""
    kind = data.draw(st.sampled_from(["conv+subsample", "subsample+conv", "subsample+full", "full+full",
                                      "full+rbf"]), label="pair")
    act = data.draw(st.sampled_from(ACTS), label="act")
    pool = data.draw(st.sampled_from(POOLS), label="pool")
    if kind == "conv+subsample":
        return (3, 12, 11), [layers.conv(rng, 3, 5, 3, 4, act, True), layers.subsample(rng, 5, pool, act)]
    if kind == "subsample+conv":
        return (4, 13, 14), [layers.subsample(rng, 4, pool, act), layers.conv(rng, 4, 3, 5, 2, act)]
    if kind == "subsample+full":
        return (3, 9, 8), [layers.subsample(rng, 3, pool, act), layers.full(rng, 48, 84, act)]
    if kind == "full+full":
        return (50, 1, 1), [layers.full(rng, 50, 120, act), layers.full(rng, 120, 7, act)]
    return (40, 1, 1), [layers.full(rng, 40, 84, act), layers.rbf(rng, 84, 10)]


@settings(max_examples=30, deadline=None)
@given(data=st.data(), n=st.sampled_from([b for b in BATCHES if b >= 2]), seed=SEEDS)
def test_an_images_result_does_not_depend_on_its_batch(data, n, seed, layers, each_path):
    """An image gives the same bits whether it runs alone (spatial layout), in a whole block or in a
    partly filled one (csrc/layout.h promises the same arithmetic in the same order)."""
    rng = np.random.default_rng(seed)
    shape, specs = random_two_layer_network(data, rng, layers)
    net = _core.Network(shape, specs)
    x = layers.uniform(rng, (n,) + shape)
    split = data.draw(st.integers(1, n - 1), label="split")
    for isa in each_path():
        whole = net.forward(x)
        singles = np.concatenate([net.forward(x[i : i + 1]) for i in range(n)])
        halves = np.concatenate([net.forward(x[:split]), net.forward(x[split:])])
        assert np.array_equal(whole, singles), isa
        assert np.array_equal(whole, halves), isa

# ---- parameters in place, normalization of the input ---------------------------------------------------

def test_parameters_are_used_in_place(layers, oracle, off_by):
    """Network keeps the parameter arrays, not copies: an in-place update (as training does) changes the
    next forward, exactly as the oracle on the new values says."""
    rng = np.random.default_rng(5)
    specs = [layers.subsample(rng, 2, "trainable", "squash"), layers.full(rng, 2 * 4 * 4, 9, "tanh")]
    net = _core.Network((2, 8, 8), specs)
    x = layers.uniform(rng, (11, 2, 8, 8))
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
        p = np.float64(pixels)
    got = _core.Network((c, big_h, big_w), [identity]).forward(pixels, normalize=True)
    want = np.full((n, c, big_h, big_w), ref.INPUT_BACKGROUND)
    top, left = (big_h - h) // 2, (big_w - w) // 2
    want[:, :, top : top + h, left : left + w] = p * ref.INPUT_SCALE + ref.INPUT_BACKGROUND
    np.testing.assert_allclose(got.reshape(want.shape), want, rtol=0, atol=4 * EPS32)


# ---- what Network refuses ------------------------------------------------------------------------------


BAD_NETWORKS = {
    # name: (input_shape, layers as a function of rng and the `layers` fixture, exception, message)
    "conv after conv": ((2, 9, 9), lambda r, L: [L.conv(r, 2, 2, 3, 3, "none"), L.conv(r, 2, 2, 3, 3, "none")],
                        ValueError, "cannot follow a convolution"),
    "full after conv": ((2, 9, 9), lambda r, L: [L.conv(r, 2, 2, 3, 3, "none"), L.full(r, 98, 4, "none")],
                        ValueError, "full or RBF layer"),
    "rbf after conv": ((2, 9, 9), lambda r, L: [L.conv(r, 2, 2, 3, 3, "none"), L.rbf(r, 98, 4)],
                       ValueError, "full or RBF layer"),
    "rbf with an activation": ((5, 1, 1), lambda r, L: [dict(L.rbf(r, 5, 3), act="tanh")],
                               ValueError, "no activation"),
    "table row without inputs": ((2, 9, 9), lambda r, L: [dict(L.conv(r, 2, 2, 3, 3, "none"), weight=L.uniform(r, (1, 3, 3)),
                                                            table=np.array([[True, False], [False, False]]))],
                                 ValueError, "at least one input"),
    "table of the wrong shape": ((2, 9, 9), lambda r, L: [dict(L.conv(r, 2, 2, 3, 3, "none"), table=np.ones((2, 3), bool))],
                                 ValueError, "table must be"),
    "table not boolean": ((2, 9, 9), lambda r, L: [dict(L.conv(r, 2, 2, 3, 3, "none"), table=np.ones((2, 2)))],
                          ValueError, "table must be"),
    "kernel larger than the input": ((2, 4, 9), lambda r, L: [L.conv(r, 2, 2, 5, 3, "none")],
                                     ValueError, "does not fit"),
    "pooling a 1-row input": ((2, 1, 9), lambda r, L: [L.subsample(r, 2, "max", "none")], ValueError, "2x2"),
    "float64 weight": ((2, 9, 9), lambda r, L: [dict(L.conv(r, 2, 2, 3, 3, "none"),
                                                  weight=np.zeros((2, 2, 3, 3)))], TypeError, "float32"),
    "strided weight": ((2, 9, 9), lambda r, L: [dict(L.conv(r, 2, 2, 3, 3, "none"),
                                                  weight=np.zeros((2, 2, 3, 6), np.float32)[..., ::2])],
                       TypeError, "C-contiguous"),
    "weight of the wrong shape": ((2, 9, 9), lambda r, L: [dict(L.conv(r, 2, 2, 3, 3, "none"), weight=L.uniform(r, (2, 2, 3, 2)))],
                                  ValueError, "must have shape"),
    "NaN in a bias": ((6, 1, 1), lambda r, L: [dict(L.full(r, 6, 4, "none"), bias=np.array([0, np.nan, 0, 0], np.float32))],
                      ValueError, "NaN"),
    "missing coefficients": ((2, 4, 4), lambda r, L: [dict(kind="subsample", pool="trainable", bias=L.uniform(r, 2))],
                             ValueError, "missing 'coef'"),
    "unknown kind": ((2, 4, 4), lambda r, L: [dict(kind="dense")], ValueError, "kind must be one of"),
    "unknown pool": ((2, 4, 4), lambda r, L: [dict(kind="subsample", pool="median")], ValueError, "pool must be one of"),
    "unknown activation": ((2, 4, 4), lambda r, L: [L.subsample(r, 2, "max", "swish")], ValueError, "act must be one of"),
    "no layers": ((2, 4, 4), lambda r, L: [], ValueError, "1 to 16 layers"),
    "17 layers": ((2, 4, 4), lambda r, L: [L.full(r, 32, 32, "none")] + [L.full(r, 32, 32, "none")] * 16,
                  ValueError, "1 to 16 layers"),
    "zero-sized input": ((0, 4, 4), lambda r, L: [L.subsample(r, 2, "max", "none")], ValueError, "input channels"),
}


@pytest.mark.parametrize("name", sorted(BAD_NETWORKS))
def test_network_refuses(name, layers):
    """The Cython layer checks every layer before C sees it, and says which layer and what is wrong."""
    shape, build, exc, message = BAD_NETWORKS[name]
    with pytest.raises(exc, match=message):
        _core.Network(shape, build(np.random.default_rng(6), layers))


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
def test_network_forward_refuses(x, normalize, exc, message, layers):
    """forward() checks the batch: dtype, layout, shape, finiteness and, for pixels, their range."""
    net = _core.Network((3, 8, 8), [layers.subsample(np.random.default_rng(0), 3, "max", "none")])
    with pytest.raises(exc, match=message):
        net.forward(x, normalize)


def test_network_forward_takes_one_channel_images_without_the_channel_axis(layers):
    """With one input channel, (N, H, W) and one (H, W) image run as (N, 1, H, W); flat=True gives (N, K)."""
    rng = np.random.default_rng(11)
    net = _core.Network((1, 12, 12), [layers.conv(rng, 1, 4, 5, 5, "tanh"), layers.subsample(rng, 4, "max", "none")])
    x = rng.uniform(0, 1, (3, 1, 10, 10)).astype(np.float32)
    want = net.forward(x, True)
    assert want.shape == (3, 4, 4, 4)
    np.testing.assert_array_equal(net.forward(x[:, 0], True), want)
    np.testing.assert_array_equal(net.forward(np.ascontiguousarray(x[1, 0]), True), want[1:2])
    np.testing.assert_array_equal(net.forward(x, True, flat=True), want.reshape(3, -1))

def test_network_refuses_sizes_the_engine_cannot_hold():
    """Limits that keep C's indices in range and its stack small are checked before any C runs."""
    with pytest.raises(ValueError, match="at most 4096 positions"):
        _core.Network((1, 1, 30000), [dict(kind="conv", out=1, kernel=(1, 5000), bias=np.zeros(1, np.float32),
                                           weight=np.zeros((1, 1, 1, 5000), np.float32))])
    with pytest.raises(ValueError, match="floats per image is over"):
        _core.Network((4096, 4096, 2), [dict(kind="subsample", pool="max")])
