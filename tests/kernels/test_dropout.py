"""csrc/dropout.c: inverted dropout, through _core.Trainer (its dropout argument: fit's seed, the epoch and
the position of the call's first image) on every instruction-set path: the masks bit for bit against
lenet_fast.reference.dropout_mask (an independent NumPy version of the hash), a full layer after dropout
forward and backward against the reference with the same mask, the share dropped, the identity at
inference and without a training context, and bit-identical results for any thread count."""
from collections import OrderedDict

import numpy as np
import pytest

import lenet_fast
from lenet_fast import _core
from lenet_fast import reference as ref
from lenet_fast.model import _views, flat_params

from cases import BACKWARD_BATCHES

UNITS = 400  # C5's input


def mask_network(rate, units=UNITS):
    """A network of one dropout layer on `units` inputs: in training its output for inputs of 1 is the
    mask itself (a loss needs labels: any of the units)."""
    net = _core.Network((units, 1, 1), [dict(kind="dropout", rate=rate)])
    return _core.Trainer(net, np.zeros(0, np.float32))


def c_mask(rate, n, seed=7, epoch=2, offset=0, units=UNITS):
    trainer = mask_network(rate, units)
    x = np.ones((n, units, 1, 1), np.float32)
    _, _, out = trainer.gradient(x, np.zeros(n, np.int64), "xent", normalize=False, dropout=(seed, epoch, offset))
    return out.reshape(n, units)


@pytest.mark.parametrize("n", [1, 3, 8, 13, 21, 37])  # single images, blocks, partly filled blocks
@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_masks_are_the_references_bit_for_bit(rate, n, path):
    key = _core.dropout_key(7, 2, 0)
    for offset in (0, 4096, 123457):
        want = ref.dropout_mask(key, offset, n, UNITS, rate)
        np.testing.assert_array_equal(c_mask(rate, n, offset=offset), want)


def test_the_share_dropped_is_the_rate():
    """Over 2,000 images of 400 units, the share of zeros is the rate to within 0.005 (the binomial's
    standard deviation is at most 0.0004); the kept units are scaled by 1 / (1 - rate) exactly."""
    for rate in (0.1, 0.25, 0.5, 0.8):
        m = c_mask(rate, 2000)
        assert abs(np.mean(m == 0) - rate) < 0.005, rate
        np.testing.assert_array_equal(np.unique(m), [0, np.float32(1) / (np.float32(1) - np.float32(rate))])


def test_masks_change_with_seed_epoch_position_and_layer():
    """Each argument of the mask matters: another seed, epoch or position gives another mask (about half
    the units differ at rate 0.5), and two dropout layers of one network draw independently."""
    base = c_mask(0.5, 4)
    for other in (c_mask(0.5, 4, seed=8), c_mask(0.5, 4, epoch=3), c_mask(0.5, 4, offset=4)):
        assert 0.4 < np.mean(other != base) < 0.6
    keys = {_core.dropout_key(7, 2, layer) for layer in range(4)}
    assert len(keys) == 4


@pytest.mark.parametrize("n", BACKWARD_BATCHES)
def test_a_full_layer_after_dropout_matches_the_reference(n, path, layers, close):
    """[dropout 0.5, full 400 -> 10] with cross-entropy: the output and the parameters' and input's
    gradients are the reference's with the same mask (x * mask into the full layer; the input gradient
    through the mask)."""
    rng = np.random.default_rng(n)
    spec = layers.full(rng, UNITS, 10, "none")
    params, views = flat_params(OrderedDict(weight=spec["weight"], bias=spec["bias"]))
    net = _core.Network((UNITS, 1, 1), [dict(kind="dropout", rate=0.5), dict(spec, **views)])
    trainer = _core.Trainer(net, params)
    x = layers.uniform(rng, (n, UNITS, 1, 1))
    labels = rng.integers(0, 10, n)
    grad, losses, out = trainer.gradient(x, labels, "xent", normalize=False, dropout=(3, 1, 10))
    mask = ref.dropout_mask(_core.dropout_key(3, 1, 0), 10, n, UNITS, 0.5).astype(np.float64)
    x64 = np.float64(x).reshape(n, UNITS)
    w, b = np.float64(views["weight"]), np.float64(views["bias"])
    z = ref.linear(x64 * mask, w, b)
    np.testing.assert_allclose(out.reshape(n, 10), z, rtol=1e-5, atol=1e-5 * np.abs(z).max())
    want_losses, dz = ref.cross_entropy(z, labels)
    np.testing.assert_allclose(losses, want_losses, rtol=1e-4)
    _, dw, db = ref.linear_backward(x64 * mask, w, dz)
    got = _views(grad, views)
    close(got["weight"], dw, "weight")
    close(got["bias"], db, "bias")
    # without a training context (evaluation) dropout is the identity: the plain full layer's output
    _, _, plain = trainer.gradient(x, labels, "xent", normalize=False)
    np.testing.assert_array_equal(plain, net.forward(x))


def test_inference_is_the_network_without_dropout(layers):
    """Network.forward through a dropout layer gives the bits of the same network without it."""
    rng = np.random.default_rng(4)
    spec = layers.full(rng, UNITS, 10, "relu")
    with_drop = _core.Network((UNITS, 1, 1), [dict(kind="dropout", rate=0.5), spec])
    without = _core.Network((UNITS, 1, 1), [spec])
    x = layers.uniform(rng, (29, UNITS, 1, 1))
    np.testing.assert_array_equal(with_drop.forward(x), without.forward(x))


@pytest.mark.skipif(not lenet_fast.build_info()["openmp"], reason="built without OpenMP")
def test_masks_are_the_same_for_any_thread_count(restore_threads):
    got = []
    for threads in (1, 2, 3):
        lenet_fast.set_num_threads(threads)
        got.append(c_mask(0.5, 301))
    for m in got[1:]:
        np.testing.assert_array_equal(m, got[0])


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, float("nan"), "0.5", True, None])
def test_bad_rates_are_refused(rate):
    with pytest.raises(ValueError, match="rate must be a number in"):
        _core.Network((UNITS, 1, 1), [dict(kind="dropout", rate=rate)])


def test_bad_training_contexts_are_refused():
    trainer = mask_network(0.5)
    x, y = np.ones((2, UNITS, 1, 1), np.float32), np.zeros(2, np.int64)
    for bad in ((1, 2), (1, 2, -1), "abc", (1.5, 2, 0)):
        with pytest.raises(ValueError, match="dropout"):
            trainer.gradient(x, y, "xent", normalize=False, dropout=bad)
