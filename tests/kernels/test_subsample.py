"""csrc/subsample.c: 2x2 subsampling (trainable, average and max pooling), forward and backward, on every
instruction-set path and in both layouts, against lenet_fast.reference (tolerances:
tests/kernels/conftest.py)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cases import ACTS, BACKWARD_BATCHES, BATCHES, POOLS, SEEDS

# ---- forward -------------------------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(c=st.integers(1, 8), h=st.integers(2, 21), w=st.integers(2, 21), pool=st.sampled_from(POOLS),
       n=st.sampled_from(BATCHES), act=st.sampled_from(ACTS), seed=SEEDS)
def test_subsample(c, h, w, pool, n, act, seed, layers, check_network):
    """2x2 pooling first in the network, every mode, odd and even sizes: guards the window positions, the
    dropped odd edge, the per-map coefficient and bias, the 1/4 of the average and the activation."""
    rng = np.random.default_rng(seed)
    spec = layers.subsample(rng, c, pool, act)
    check_network((c, h, w), [spec], layers.uniform(rng, (n, c, h, w), 2.0))


@settings(max_examples=50, deadline=None)
@given(data=st.data(), ci=st.integers(1, 8), co=st.integers(1, 8), kh=st.integers(1, 7), kw=st.integers(1, 7),
       tabled=st.booleans(), pool=st.sampled_from(POOLS), n=st.sampled_from(BATCHES),
       acts=st.tuples(st.sampled_from(ACTS), st.sampled_from(ACTS)), seed=SEEDS)
def test_conv_then_subsample(data, ci, co, kh, kw, tabled, pool, n, acts, seed, layers, check_network):
    """Pooling reads a convolution's output as the engine lays it out (wide rows in the spatial layout,
    odd sizes dropping their last row and column): guards the strides between two kernels."""
    h, w = data.draw(st.integers(kh + 1, 21), label="h"), data.draw(st.integers(kw + 1, 21), label="w")
    rng = np.random.default_rng(seed)
    specs = [layers.conv(rng, ci, co, kh, kw, acts[0], tabled), layers.subsample(rng, co, pool, acts[1])]
    check_network((ci, h, w), specs, layers.uniform(rng, (n, ci, h, w)))


@settings(max_examples=40, deadline=None)
@given(c=st.integers(1, 8), h=st.integers(4, 21), w=st.integers(4, 21),
       pools=st.tuples(st.sampled_from(POOLS), st.sampled_from(POOLS)), n=st.sampled_from(BATCHES),
       acts=st.tuples(st.sampled_from(ACTS), st.sampled_from(ACTS)), seed=SEEDS)
def test_subsample_twice(c, h, w, pools, n, acts, seed, layers, check_network):
    """Pooling a pooled map: the second kernel reads the first one's output geometry."""
    rng = np.random.default_rng(seed)
    specs = [layers.subsample(rng, c, pools[0], acts[0]), layers.subsample(rng, c, pools[1], acts[1])]
    check_network((c, h, w), specs, layers.uniform(rng, (n, c, h, w)))


# ---- backward ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", BACKWARD_BATCHES)
@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize("act", ["none", "squash"])
def test_subsample_backward(n, pool, act, one_layer, check_backward):
    seed = 200 * n + len(pool) + len(act)
    check_backward(one_layer.subsample(np.random.default_rng(seed), pool, act), n, seed)
