"""csrc/optimizer.c: the parameter updates (SGD with classical and Nesterov momentum, AdaGrad, RMSProp, Adam,
AdamW, SDLM, with L2 or decoupled weight decay) through lenet_fast.optim, on every instruction-set path,
against lenet_fast.reference's update rules over several steps; and each trains a small model."""
import numpy as np
import pytest

from lenet_fast import optim, paper, reference


def test_updates_match_reference(path):
    rng = np.random.default_rng(5)
    n = 1000
    w, g = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)

    sgd = optim.SGD(lr=0.1, momentum=0.9, weight_decay=1e-3)
    sgd.bind(n)
    sgd.m[...] = rng.standard_normal(n)
    want_w, want_v = reference.sgd_update(w.astype(np.float64), g, sgd.m.astype(np.float64), 0.1, 0.9, 1e-3)
    p = w.copy()
    sgd.update(p, g)
    np.testing.assert_allclose(p, want_w, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(sgd.m, want_v, rtol=1e-6, atol=1e-6)

    adam = optim.Adam(lr=0.01, weight_decay=1e-2)
    adam.bind(n)
    p, m, v = w.copy(), np.zeros(n), np.zeros(n)
    want = w.astype(np.float64)
    for t in (1, 2, 3):
        adam.update(p, g)
        want, m, v = reference.adam_update(want, g.astype(np.float64), m, v, t, lr=0.01, weight_decay=1e-2)
    assert adam.t == 3
    np.testing.assert_allclose(p, want, rtol=1e-5, atol=1e-6)

    sdlm = optim.SDLM()
    sdlm.bind(n)
    h = rng.uniform(0, 1, n)
    sdlm.step[...] = 5e-4 / (paper.SDLM_MU + h)
    p = w.copy()
    sdlm.update(p, g)
    np.testing.assert_allclose(p, reference.sdlm_update(w.astype(np.float64), g, h, 5e-4), rtol=1e-6, atol=1e-7)


def _run(opt, w, grads):
    """opt's C updates of a copy of w, one per gradient in grads; returns the weights."""
    opt.bind(len(w))
    p = w.copy()
    for g in grads:
        opt.update(p, g)
    return p


def _vectors(seed, n=777, steps=4):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(n).astype(np.float32)
    return w, [rng.standard_normal(n).astype(np.float32) for _ in range(steps)]


@pytest.mark.parametrize("nesterov,momentum,wd", [(False, 0.0, 0.0), (False, 0.9, 1e-3), (True, 0.9, 1e-2)])
def test_sgd_over_several_steps_matches_reference(path, nesterov, momentum, wd):
    w, grads = _vectors(1)
    opt = optim.SGD(lr=0.05, momentum=momentum, nesterov=nesterov, weight_decay=wd)
    got = _run(opt, w, grads)
    want, vel = w.astype(np.float64), np.zeros(len(w))
    for g in grads:
        want, vel = reference.sgd_update(want, g.astype(np.float64), vel, 0.05, momentum, wd, nesterov)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(opt.m, vel, rtol=1e-5, atol=1e-6)
    assert not np.allclose(got, w, atol=1e-3)  # it moved


@pytest.mark.parametrize("wd", [0.0, 1e-2])
def test_adagrad_over_several_steps_matches_reference(path, wd):
    w, grads = _vectors(2)
    opt = optim.AdaGrad(lr=0.1, weight_decay=wd)
    got = _run(opt, w, grads)
    want, s = w.astype(np.float64), np.zeros(len(w))
    for g in grads:
        want, s = reference.adagrad_update(want, g.astype(np.float64), s, 0.1, 1e-10, wd)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(opt.v, s, rtol=1e-5)
    assert not np.allclose(got, w, atol=1e-2)


@pytest.mark.parametrize("momentum,wd", [(0.0, 0.0), (0.9, 1e-2)])
def test_rmsprop_over_several_steps_matches_reference(path, momentum, wd):
    w, grads = _vectors(3)
    opt = optim.RMSProp(lr=0.01, alpha=0.9, momentum=momentum, weight_decay=wd)
    got = _run(opt, w, grads)
    want, b, v = w.astype(np.float64), np.zeros(len(w)), np.zeros(len(w))
    for g in grads:
        want, b, v = reference.rmsprop_update(want, g.astype(np.float64), b, v, 0.01, 0.9, 1e-8, momentum, wd)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert not np.allclose(got, w, atol=1e-2)


def test_adamw_over_several_steps_matches_reference(path):
    w, grads = _vectors(4)
    opt = optim.AdamW(lr=0.01, weight_decay=0.1)
    got = _run(opt, w, grads)
    want, m, v = w.astype(np.float64), np.zeros(len(w)), np.zeros(len(w))
    for t, g in enumerate(grads, 1):
        want, m, v = reference.adamw_update(want, g.astype(np.float64), m, v, t, lr=0.01, weight_decay=0.1)
    assert opt.t == len(grads)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # decoupled: not Adam with the decay added to the gradient
    coupled = _run(optim.Adam(lr=0.01, weight_decay=0.1), w, grads)
    assert np.abs(coupled - got).max() > 1e-4


@pytest.mark.parametrize("make", [
    lambda: optim.SGD(lr=0.01, nesterov=True), lambda: optim.AdaGrad(), lambda: optim.RMSProp(lr=1e-3),
    lambda: optim.AdamW(), lambda: optim.Adam(weight_decay=1e-4),
])
def test_each_optimizer_trains_a_small_model(make):
    from lenet_fast.datasets import synthetic_digits
    from lenet_fast.model import LeNet5

    x, y = synthetic_digits(256, seed=12)
    model = LeNet5("modern", seed=3)
    hist = model.fit(x, y, epochs=3, batch_size=16, optimizer=make(), verbose=0, seed=1)
    assert hist[-1]["loss"] < 0.8 * hist[0]["loss"], hist
