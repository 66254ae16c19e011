"""csrc/conv.c: the convolution, dense or wired by a connection table, forward and backward, on every
instruction-set path, in both layouts and at every accumulator tile size, against lenet_fast.reference
(tolerances: tests/kernels/conftest.py)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cases import ACTS, BACKWARD_BATCHES, BATCHES, MAX_TILE, POOLS, SEEDS

# ---- forward -------------------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(data=st.data(), ci=st.integers(1, 8), co=st.integers(1, 8), kh=st.integers(1, 7), kw=st.integers(1, 7),
       tabled=st.booleans(), n=st.sampled_from(BATCHES), act=st.sampled_from(ACTS), seed=SEEDS)
def test_conv(data, ci, co, kh, kw, tabled, n, act, seed, layers, check_network):
    """A convolution alone, dense or wired by a random connection table, any kernel, map and batch size:
    guards every tap, the packed-weight order, the bias and the fused activation in both layouts."""
    h, w = data.draw(st.integers(kh, 20), label="h"), data.draw(st.integers(kw, 20), label="w")
    rng = np.random.default_rng(seed)
    spec = layers.conv(rng, ci, co, kh, kw, act, tabled)
    check_network((ci, h, w), [spec], layers.uniform(rng, (n, ci, h, w)))


@settings(max_examples=50, deadline=None)
@given(data=st.data(), c=st.integers(1, 8), co=st.integers(1, 8), kh=st.integers(1, 7), kw=st.integers(1, 7),
       tabled=st.booleans(), pool=st.sampled_from(POOLS), n=st.sampled_from(BATCHES),
       acts=st.tuples(st.sampled_from(ACTS), st.sampled_from(ACTS)), seed=SEEDS)
def test_subsample_then_conv(data, c, co, kh, kw, tabled, pool, n, acts, seed, layers, check_network):
    """A convolution reading a pooled map (dense rows), as C3 reads S2."""
    h = data.draw(st.integers(2 * kh, 2 * kh + 9), label="h")
    w = data.draw(st.integers(2 * kw, 2 * kw + 9), label="w")
    rng = np.random.default_rng(seed)
    specs = [layers.subsample(rng, c, pool, acts[0]), layers.conv(rng, c, co, kh, kw, acts[1], tabled)]
    check_network((c, h, w), specs, layers.uniform(rng, (n, c, h, w)))


@pytest.mark.parametrize("out_w", range(1, MAX_TILE + 2))
@pytest.mark.parametrize("co", [1, 2, 3, 4, 6])
def test_conv_at_every_tile_size(out_w, co, layers, check_network):
    """Output rows of 1 to 25 positions with 1 to 6 output maps, whole blocks plus leftovers: the tiles
    of M maps x R rows x P vectors (csrc/conv.c's pmax) take every size up to their largest, and the
    split of a row into balanced tiles."""
    rng = np.random.default_rng(100 * out_w + co)
    spec = layers.conv(rng, 3, co, 3, 2, "tanh", tabled=co > 2)
    shape = (3, 4, out_w + 1)
    check_network(shape, [spec], layers.uniform(rng, (37,) + shape))


@pytest.mark.parametrize("act", ACTS)
def test_the_tolerance_catches_a_wrong_tap_or_a_missing_bias_in_a_conv(act, layers, catches):
    """Meta-test of the bound: a convolution with its kernels shifted by one tap, or without its bias, or
    with two packed kernels swapped, is told apart from the real one."""
    rng = np.random.default_rng(3)
    specs = [layers.conv(rng, 8, 8, 7, 7, act, tabled=True)]  # the most terms per output here: 392
    x = layers.uniform(rng, (9, 8, 20, 20))

    def shift_tap(s):
        return dict(s, weight=np.roll(s["weight"], 1, axis=-1))

    def drop_bias(s):
        return dict(s, bias=np.zeros_like(s["bias"]))

    def swap_kernels(s):
        return dict(s, weight=s["weight"][[1, 0] + list(range(2, len(s["weight"])))])

    for broken in (shift_tap, drop_bias, swap_kernels):
        assert catches(specs, (8, 20, 20), x, broken), broken.__name__


# ---- backward ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", BACKWARD_BATCHES)
@pytest.mark.parametrize("tabled", [False, True])
@pytest.mark.parametrize("act", ACTS)
def test_conv_backward(n, tabled, act, one_layer, check_backward):
    seed = 100 * n + 10 * tabled + ACTS.index(act)
    check_backward(one_layer.conv(np.random.default_rng(seed), tabled, act), n, seed)


@pytest.mark.parametrize("taps", range(1, MAX_TILE + 2))
def test_conv_backward_at_every_tile_size(taps, one_layer, check_backward):
    """1 x taps kernels: the weight gradient's tiles (one accumulator per tap, csrc/conv.c wgrad) take every
    size up to LF_TILE, and the split into two balanced tiles past it."""
    rng = np.random.default_rng(500 + taps)
    check_backward(one_layer.conv(rng, taps % 2 == 0, "squash", kernel=(1, taps)), 13, 500 + taps)
