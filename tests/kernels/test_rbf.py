"""The Euclidean RBF output units (the rbf_block and rbf_backward kernels), forward and backward, on every
instruction-set path, in both layouts and at every accumulator tile size, against lenet_fast.reference
(tolerances: tests/kernels/conftest.py)."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cases import ACTS, BACKWARD_BATCHES, BATCHES, MAX_TILE, OUT_WIDTHS, SEEDS

# ---- forward -------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(data=st.data(), k=st.integers(1, 20), n=st.sampled_from(BATCHES), seed=SEEDS)
def test_rbf(data, k, n, seed, layers, check_network):
    """Euclidean RBF units alone, 1 to 20 centres: guards the centres' transposition and the square."""
    shape = layers.input_shape(data, 120)
    rng = np.random.default_rng(seed)
    spec = layers.rbf(rng, math.prod(shape), k)
    check_network(shape, [spec], layers.uniform(rng, (n,) + shape))


@settings(max_examples=50, deadline=None)
@given(n_in=st.integers(1, 300), mid=OUT_WIDTHS, k=st.integers(1, 20), n=st.sampled_from(BATCHES),
       act=st.sampled_from(ACTS), seed=SEEDS)
def test_full_then_rbf(n_in, mid, k, n, act, seed, layers, check_network):
    """RBF units on a full layer's output, as the classic head reads F6."""
    rng = np.random.default_rng(seed)
    specs = [layers.full(rng, n_in, mid, act), layers.rbf(rng, mid, k)]
    check_network((n_in, 1, 1), specs, layers.uniform(rng, (n, n_in, 1, 1)))


@pytest.mark.parametrize("k", range(1, MAX_TILE + 2))
def test_rbf_at_every_tile_size(k, layers, check_network):
    """1 to one past LF_TILE centres, whole blocks plus leftovers: the RBF shares the full layer's tiles."""
    rng = np.random.default_rng(700 + k)
    check_network((30, 1, 1), [layers.rbf(rng, 30, k)], layers.uniform(rng, (37, 30, 1, 1)))


def test_rbf_is_exact_at_a_centre(layers, check_network):
    """An input equal to a centre is at distance exactly 0 (the kernel takes differences, no cancelling
    |x|^2 - 2 x.c + |c|^2), and the other distances are the oracle's."""
    rng = np.random.default_rng(7)
    centers = layers.uniform(rng, (10, 84))
    x = np.ascontiguousarray(centers[[3, 0, 9, 9, 5, 1, 2, 8, 7]].reshape(9, 84, 1, 1))
    got = check_network((84, 1, 1), [dict(kind="rbf", centers=centers)], x)[:, :, 0, 0]
    assert np.all(got[np.arange(9), [3, 0, 9, 9, 5, 1, 2, 8, 7]] == 0)


# ---- backward ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", BACKWARD_BATCHES)
def test_rbf_backward(n, one_layer, check_backward):
    check_backward(one_layer.rbf(np.random.default_rng(400 + n)), n, 400 + n)
