"""csrc/full.c: the full (dense) layer, forward and backward, on every instruction-set path, in both layouts
and at every accumulator tile size, against lenet_fast.reference (tolerances: tests/kernels/conftest.py)."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cases import ACTS, BACKWARD_BATCHES, BATCHES, MAX_TILE, OUT_WIDTHS, POOLS, SEEDS

# ---- forward -------------------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(data=st.data(), out=OUT_WIDTHS, n=st.sampled_from(BATCHES), act=st.sampled_from(ACTS), seed=SEEDS)
def test_full(data, out, n, act, seed, layers, check_network):
    """A full layer alone, 1 to 300 inputs and outputs: guards the input-major weight order, the ragged
    last vector (which the spatial layout recomputes overlapping its neighbour), the bias and the
    activation."""
    shape = layers.input_shape(data)
    rng = np.random.default_rng(seed)
    spec = layers.full(rng, math.prod(shape), out, act)
    check_network(shape, [spec], layers.uniform(rng, (n,) + shape))


@settings(max_examples=50, deadline=None)
@given(n_in=st.integers(1, 300), mid=OUT_WIDTHS, out=OUT_WIDTHS, n=st.sampled_from(BATCHES),
       acts=st.tuples(st.sampled_from(ACTS), st.sampled_from(ACTS)), seed=SEEDS)
def test_full_then_full(n_in, mid, out, n, acts, seed, layers, check_network):
    """Two full layers, as C5 feeds F6: the second reads the first one's output vector."""
    rng = np.random.default_rng(seed)
    specs = [layers.full(rng, n_in, mid, acts[0]), layers.full(rng, mid, out, acts[1])]
    check_network((n_in, 1, 1), specs, layers.uniform(rng, (n, n_in, 1, 1)))


@settings(max_examples=50, deadline=None)
@given(c=st.integers(1, 8), h=st.integers(2, 13), w=st.integers(2, 13), pool=st.sampled_from(POOLS),
       out=OUT_WIDTHS, n=st.sampled_from(BATCHES), acts=st.tuples(st.sampled_from(ACTS), st.sampled_from(ACTS)),
       seed=SEEDS)
def test_subsample_then_full(c, h, w, pool, out, n, acts, seed, layers, check_network):
    """A full layer over pooled maps, as C5 reads S4 (flattened channel-major)."""
    rng = np.random.default_rng(seed)
    specs = [layers.subsample(rng, c, pool, acts[0]), layers.full(rng, c * (h // 2) * (w // 2), out, acts[1])]
    check_network((c, h, w), specs, layers.uniform(rng, (n, c, h, w)))


# Blocked tiles: 1 to one past LF_TILE outputs. Spatial tiles (up to 8 vectors of 4, 8 or 16 outputs):
# every count of whole vectors up to 9, each with and without a ragged end, for every lane count.
TILED_OUTS = sorted(set(range(1, MAX_TILE + 2)) | {v * lanes + r for lanes in (4, 8, 16) for v in range(1, 10)
                                                   for r in (0, 1)})


@pytest.mark.parametrize("out", TILED_OUTS)
def test_full_at_every_tile_size(out, layers, check_network):
    """Whole blocks (the blocked tiles of 1 to LF_TILE outputs) and leftover images (the spatial tiles of
    1 to 8 vectors, balanced, with the ragged last vector) at every tile size."""
    rng = np.random.default_rng(out)
    spec = layers.full(rng, 20, out, "squash")
    check_network((20, 1, 1), [spec], layers.uniform(rng, (37, 20, 1, 1)))


@pytest.mark.parametrize("act", ACTS)
def test_the_tolerance_catches_a_wrong_weight_or_a_missing_bias_in_a_full_layer(act, layers, catches):
    """Meta-test of the bound: a 300 x 120 full layer without its bias, or with one input's weights
    shifted to the next output, is told apart from the real one."""
    rng = np.random.default_rng(4)
    specs = [layers.full(rng, 300, 120, act)]
    x = layers.uniform(rng, (9, 300, 1, 1))
    assert catches(specs, (300, 1, 1), x, lambda s: dict(s, bias=np.zeros_like(s["bias"])))
    assert catches(specs, (300, 1, 1), x, lambda s: dict(s, weight=np.roll(s["weight"], 1, axis=1)))


# ---- backward ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", BACKWARD_BATCHES)
@pytest.mark.parametrize("act", ACTS)
def test_full_backward(n, act, one_layer, check_backward):
    seed = 300 * n + ACTS.index(act)
    check_backward(one_layer.full(np.random.default_rng(seed), act), n, seed)


@pytest.mark.parametrize("n_in", range(1, MAX_TILE + 2))
def test_full_backward_at_every_tile_size(n_in, one_layer, check_backward):
    """1 to one past LF_TILE inputs: the input gradient's tiles (csrc/full.c dx_blocked) take every size."""
    rng = np.random.default_rng(600 + n_in)
    check_backward(one_layer.full(rng, "tanh", n_in=n_in, out=10 + n_in), 21, 600 + n_in)
