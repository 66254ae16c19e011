"""csrc/gradient.c (the backward pass of a whole network and of one layer, the Gauss-Newton second derivatives)
through LeNet5.gradient and _core.Trainer.backward: against the float64 reference on every instruction-set
path, bit-identical for any thread count, and what backward() refuses.

Tolerance of the C gradients against the float64 reference (the close fixture, tests/kernels/conftest.py):
float32 carries a relative error of about 6e-8 per rounding, and a gradient entry sums up to a few thousand
products (C1's weights: 784 positions per image) after a forward and backward chain of six layers. The checks
allow 2e-4 of the largest entry of the same parameter plus 2e-3 relative, far above that rounding and far
below what a wrong tap, a dropped term or a transposed kernel gives (the meta-tests show such faults are
caught).
"""
import numpy as np
import pytest

import lenet_fast
from lenet_fast import _core, paper, reference
from lenet_fast.model import LeNet5, _views

LOSSES = [("classic", "map"), ("classic", "rbf"), ("modern", "xent")]


def ref_params(model):
    p = {k: v.astype(np.float64) for k, v in model.params.items()}
    if model.variant == "classic":
        p["rbf.centers"] = paper.rbf_centers(np.float64)
    return p


# ---- the whole network's gradient against the reference ------------------------------------------------


@pytest.mark.parametrize("variant,loss", LOSSES)
@pytest.mark.parametrize("n", [1, 3, 8, 13, 21])  # single images, a block, blocks + a partial block + singles
def test_gradient_matches_reference(variant, loss, n, path, shuffled_digits, close):
    model = LeNet5(variant, seed=n)
    x, y = shuffled_digits(n, seed=n)
    grads, losses = model.gradient(x, y, loss=loss)
    ref_losses, ref_grads = reference.backward(ref_params(model), reference.normalize_input(x).astype(np.float64),
                                               y, variant, loss=loss)
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-4)
    assert list(grads) == list(ref_grads)
    for name in grads:
        close(grads[name], ref_grads[name], f"{path}: {name}")


def test_a_wrong_network_gradient_fails_the_check(shuffled_digits, close):
    model = LeNet5("classic", seed=1)
    x, y = shuffled_digits(8, seed=1)
    grads, _ = model.gradient(x, y)
    _, ref_grads = reference.backward(ref_params(model), reference.normalize_input(x).astype(np.float64), y,
                                      "classic")
    wrong = grads["c3.weight"][:, ::-1, ::-1]  # kernels rotated: the classic slip in a backward pass
    with pytest.raises(AssertionError):
        close(wrong, ref_grads["c3.weight"], "c3.weight")
    bumped = grads["c1.bias"].copy()
    bumped[2] *= 1.01
    with pytest.raises(AssertionError):
        close(bumped, ref_grads["c1.bias"], "c1.bias")


@pytest.mark.parametrize("variant,loss", [("classic", "map"), ("modern", "xent")])
@pytest.mark.parametrize("n", [1, 11])
def test_gauss_newton_matches_reference(variant, loss, n, path, shuffled_digits, close):
    model = LeNet5(variant, seed=3)
    x, y = shuffled_digits(n, seed=4)
    h = _views(model.curvature(x, y, loss, paper.MAP_J), model.params)
    ref = reference.gauss_newton_diagonal(ref_params(model), reference.normalize_input(x).astype(np.float64),
                                          variant, loss=loss)
    for name in ref:
        assert (h[name] >= 0).all()
        close(h[name] * n, ref[name], f"{path}: {name}")  # curvature averages, the reference sums


@pytest.mark.skipif(not lenet_fast.build_info()["openmp"], reason="built without OpenMP")
def test_gradient_is_bit_identical_for_any_thread_count(shuffled_digits, restore_threads):
    model = LeNet5("classic", seed=2)
    x, y = shuffled_digits(301, seed=9)
    out = []
    for threads in (1, 2):
        lenet_fast.set_num_threads(threads)
        out.append(model.gradient(x, y)[0])
    assert all(np.array_equal(out[0][k], out[1][k]) for k in out[0])


# ---- one layer's backward (each kind on its own: test_conv.py, test_subsample.py, ...) ----------------


def test_lenet_shapes(one_layer, check_backward, layers):
    """The layers at LeNet-5's own shapes (C1 dense, C3 with the paper's table, S2, F6), as the benchmarks
    run them."""
    rng = np.random.default_rng(5)
    uniform = layers.uniform
    c3 = one_layer.make((6, 14, 14), dict(kind="conv", out=16, kernel=(5, 5), table=paper.C3_TABLE, act="squash"),
                        {"weight": uniform(rng, (int(np.sum(paper.C3_TABLE)), 5, 5), 0.2),
                         "bias": uniform(rng, 16)})
    c1 = one_layer.make((1, 32, 32), dict(kind="conv", out=6, kernel=(5, 5), act="squash"),
                        {"weight": uniform(rng, (6, 1, 5, 5), 0.4), "bias": uniform(rng, 6)})
    for layer in (c1, c3, one_layer.subsample(rng, "trainable", "squash"), one_layer.full(rng, "squash")):
        check_backward(layer, 17, 5)


def test_a_wrong_layer_gradient_fails_the_check(one_layer, layers, close):
    layer = one_layer.conv(np.random.default_rng(9), True, "squash")
    rng = np.random.default_rng(9)
    x, dout = layers.uniform(rng, (8,) + layer.input_shape), layers.uniform(rng, (8,) + layer.net.output_shape)
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


def test_backward_is_bit_identical_for_any_thread_count(one_layer, layers, restore_threads):
    layer = one_layer.conv(np.random.default_rng(3), True, "squash")
    rng = np.random.default_rng(3)
    x, dout = layers.uniform(rng, (53,) + layer.input_shape), layers.uniform(rng, (53,) + layer.net.output_shape)
    results = []
    for threads in (1, 2, 3):
        lenet_fast.set_num_threads(threads)
        grad, dx, _ = layer.trainer.backward(x, dout)
        results.append((grad, dx))
    for grad, dx in results[1:]:
        np.testing.assert_array_equal(grad, results[0][0])
        np.testing.assert_array_equal(dx, results[0][1])


def test_backward_rejects_bad_dout(one_layer, layers):
    layer = one_layer.full(np.random.default_rng(1), "none")
    x = layers.uniform(np.random.default_rng(1), (4,) + layer.input_shape)
    k = layer.net.output_shape
    with pytest.raises(ValueError, match="dout must have shape"):
        layer.trainer.backward(x, np.zeros((3,) + k, np.float32))
    bad = np.zeros((4,) + k, np.float32)
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        layer.trainer.backward(x, bad)
    with pytest.raises(TypeError):
        layer.trainer.backward(x, np.zeros((4,) + k, np.int32))


# ---- isolation: a failed call leaves nothing behind ---------------------------------------------------


def fail_in_this_thread():
    """A failed call on the calling thread: a network whose weights turned NaN after it was built writes NaN
    over about 3 MB of this thread's workspace (4096 maps of one image's convolution: more than any LeNet
    plan, blocked training included, so that the calls after it reuse the workspace as this left it), and
    raises FloatingPointError."""
    weight = np.ones((4096, 1, 3, 3), np.float32)
    net = _core.Network((1, 16, 16), [dict(kind="conv", out=4096, kernel=(3, 3), weight=weight,
                                           bias=np.zeros(4096, np.float32), act="none")])
    weight[...] = np.nan
    with pytest.raises(FloatingPointError):
        net.forward(np.zeros((1, 1, 16, 16), np.float32))


def test_the_issues_reproducer_a_failed_forward_does_not_poison_another_models_gradient():
    """issue 15's case: a NaN weight makes forward fail; a healthy model's gradient in the same thread
    afterwards is finite (it raised FloatingPointError: stale NaN read from the workspace)."""
    x, y = np.zeros((1, 28, 28), np.uint8), np.zeros(1, np.int64)
    good = LeNet5("modern")
    want = good.gradient(x, y)[0]
    bad = LeNet5("modern")
    bad.params["c1.weight"][0, 0, 0, 0] = np.nan
    with pytest.raises(FloatingPointError):
        bad.forward(x)
    fail_in_this_thread()
    for name, g in LeNet5("modern").gradient(x, y)[0].items():
        assert np.array_equal(g, want[name]), name


@pytest.mark.parametrize("variant,loss", LOSSES)
@pytest.mark.parametrize("n", [1, 3, 13])  # single images (spatial plans), and with a block
def test_gradients_after_a_failed_call_keep_their_bits(variant, loss, n, shuffled_digits):
    """Gradients and Gauss-Newton curvatures after another network's failed call in this thread are the
    bits they were before it: every float a training item reads was written by that item."""
    model = LeNet5(variant, seed=n)
    x, y = shuffled_digits(n, seed=n)
    want, want_h = model.gradient(x, y, loss=loss)[0], model.curvature(x, y, loss=loss)
    fail_in_this_thread()
    got = model.gradient(x, y, loss=loss)[0]
    assert all(np.array_equal(got[k], want[k]) for k in want)
    fail_in_this_thread()
    assert np.array_equal(model.curvature(x, y, loss=loss), want_h)


def test_classic_fit_after_a_failed_call_is_the_same_run(shuffled_digits, restore_threads):
    """The paper's training (SDLM: Gauss-Newton curvatures, then one pattern at a time) on two images, so
    that every item is a single image in the spatial layout, on the calling thread: after a failed call it
    ends with the weights of the same run before it (it failed: "optimizer.step contains NaN")."""
    lenet_fast.set_num_threads(1)
    x, y = shuffled_digits(2, seed=5)
    before = LeNet5("classic", seed=1)
    before.fit(x, y, epochs=2, verbose=0)
    fail_in_this_thread()
    after = LeNet5("classic", seed=1)
    after.fit(x, y, epochs=2, verbose=0)
    assert np.array_equal(after.params_vector, before.params_vector)
