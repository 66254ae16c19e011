"""Training: the C backward pass, losses, curvature and updates against the NumPy reference; bit-identity
for any thread count; fit's checks, history, checkpoints and exact resumption; a short real run.

Tolerance of the C gradients against the float64 reference: float32 carries a relative error of about
6e-8 per rounding, and a gradient entry sums up to a few thousand products (C1's weights: 784 positions
per image) after a forward and backward chain of six layers. The checks allow 2e-4 of the largest entry of
the same parameter plus 2e-3 relative, far above that rounding and far below what a wrong tap, a dropped
term or a transposed kernel gives (the meta-test shows one such fault is caught).
"""
import os
import threading

import numpy as np
import pytest

import lenet_fast
from lenet_fast import optim, paper, reference
from lenet_fast.datasets import synthetic_digits
from lenet_fast.model import LeNet5, _views

SHARED_MNIST = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist")
LOSSES = [("classic", "map"), ("classic", "rbf"), ("modern", "xent")]


def ref_params(model):
    p = {k: v.astype(np.float64) for k, v in model.params.items()}
    if model.variant == "classic":
        p["rbf.centers"] = paper.rbf_centers(np.float64)
    return p


def batch(n, seed):
    rng = np.random.default_rng(seed)
    x, y = synthetic_digits(n, seed=seed)
    return x, rng.permutation(y)  # labels unrelated to the images: gradients stay large


def close(c, ref, name):
    """C (float32) against reference (float64) gradient of one parameter (module docstring)."""
    scale = np.abs(ref).max()
    assert scale > 1e-6, f"{name}: the reference gradient is zero: nothing is checked"
    err = np.abs(c - ref) - 2e-3 * np.abs(ref)
    assert err.max() <= 2e-4 * scale, f"{name}: off by {err.max() / scale:.2e} of its largest entry"


# --- the gradient against the reference ----------------------------------------------------------


@pytest.mark.parametrize("variant,loss", LOSSES)
@pytest.mark.parametrize("n", [1, 3, 8, 13, 21])  # single images, a block, blocks + a partial block + singles
def test_gradient_matches_reference(variant, loss, n):
    model = LeNet5(variant, seed=n)
    x, y = batch(n, seed=n)
    grads, losses = model.gradient(x, y, loss=loss)
    ref_losses, ref_grads = reference.backward(ref_params(model), reference.normalize_input(x).astype(np.float64),
                                               y, variant, loss=loss)
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-4)
    assert list(grads) == list(ref_grads)
    for name in grads:
        close(grads[name], ref_grads[name], name)


def test_a_wrong_gradient_fails_the_check():
    model = LeNet5("classic", seed=1)
    x, y = batch(8, seed=1)
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
def test_gauss_newton_matches_reference(variant, loss, n):
    model = LeNet5(variant, seed=3)
    x, y = batch(n, seed=4)
    h = _views(model.curvature(x, y, loss, paper.MAP_J), model.params)
    ref = reference.gauss_newton_diagonal(ref_params(model), reference.normalize_input(x).astype(np.float64),
                                          variant, loss=loss)
    for name in ref:
        assert (h[name] >= 0).all()
        close(h[name] * n, ref[name], name)  # curvature averages, the reference sums


def test_huge_distances_give_finite_losses_and_gradients():
    model = LeNet5("classic")
    model.params["f6.bias"][...] = 50.0  # squashed to 1.7159 everywhere: distances far from every centre
    x, y = batch(9, seed=2)
    grads, losses = model.gradient(x, y)
    assert np.isfinite(losses).all() and all(np.isfinite(g).all() for g in grads.values())


# --- updates -------------------------------------------------------------------------------------


def test_updates_match_reference():
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


def test_schedules():
    assert [optim.PaperSchedule()(e, 1.0) for e in (0, 1, 2, 5, 8, 12, 19)] == \
           [5e-4, 5e-4, 2e-4, 1e-4, 5e-5, 1e-5, 1e-5]
    assert optim.Step(every=2, gamma=0.5)(5, 1.0) == 0.25
    cos = optim.Cosine(epochs=10, floor=0.1)
    assert cos(0, 1.0) == 1.0 and abs(cos(5, 1.0) - 0.55) < 1e-12 and cos(10, 1.0) == cos(20, 1.0) == 0.1


# --- bit-identity --------------------------------------------------------------------------------


def train_weights(threads, optimizer, batch_size, variant="classic", n=150):
    lenet_fast.set_num_threads(threads)
    try:
        model = LeNet5(variant, seed=7)
        x, y = synthetic_digits(n, seed=8)
        model.fit(x, y, epochs=2, batch_size=batch_size, optimizer=optimizer, verbose=0, seed=3)
        return model.params_vector.copy()
    finally:
        lenet_fast.set_num_threads(2)


@pytest.mark.skipif(not lenet_fast.build_info()["openmp"], reason="built without OpenMP")
@pytest.mark.parametrize("make,batch_size,variant", [
    (lambda: optim.SGD(lr=0.01), 32, "classic"),
    (lambda: optim.Adam(), 37, "modern"),
    (lambda: optim.SDLM(samples=50, schedule=optim.PaperSchedule(0.05)), 1, "classic"),
])
def test_training_is_bit_identical_for_any_thread_count(make, batch_size, variant):
    one = train_weights(1, make(), batch_size, variant)
    two = train_weights(2, make(), batch_size, variant)
    assert np.array_equal(one, two)
    assert np.array_equal(two, train_weights(2, make(), batch_size, variant))  # and from run to run


@pytest.mark.skipif(not lenet_fast.build_info()["openmp"], reason="built without OpenMP")
def test_gradient_is_bit_identical_for_any_thread_count():
    model = LeNet5("classic", seed=2)
    x, y = batch(301, seed=9)
    out = []
    for threads in (1, 2):
        lenet_fast.set_num_threads(threads)
        out.append(model.gradient(x, y)[0])
    lenet_fast.set_num_threads(2)
    assert all(np.array_equal(out[0][k], out[1][k]) for k in out[0])


# --- fit -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    return synthetic_digits(200, seed=11)


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(labels=np.full(200, 10)), ValueError, "0..9"),
    (dict(labels=np.zeros(199, dtype=int)), ValueError, "199 labels for 200 images"),
    (dict(labels=np.zeros(200)), ValueError, "integer"),
    (dict(optimizer="lbfgs"), ValueError, "optimizer"),
    (dict(loss="xent"), ValueError, "loss"),
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(epochs=0), ValueError, "epochs"),
    (dict(verbose=3), ValueError, "verbose"),
    (dict(j=-1.0), ValueError, "j must be"),
    (dict(validation=(np.zeros((3, 28, 28), np.uint8), [1, 2])), ValueError, "2 labels for 3 images"),
])
def test_fit_rejects_bad_arguments_before_any_work(digits, kwargs, error, match):
    model = LeNet5("classic")
    before = model.params_vector.copy()
    args = dict(images=digits[0], labels=digits[1], verbose=0)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        model.fit(**args)
    assert np.array_equal(model.params_vector, before)


def test_fit_rejects_nan_and_empty_input():
    model = LeNet5("modern")
    x = np.zeros((4, 28, 28), np.float32)
    x[1, 3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.fit(x, [0, 1, 2, 3], verbose=0)
    with pytest.raises(ValueError, match="empty"):
        model.fit(np.zeros((0, 28, 28), np.uint8), np.zeros(0, int), verbose=0)


def test_fit_history_and_report(digits, capsys):
    model = LeNet5("modern")
    hist = model.fit(*digits, epochs=2, validation=digits, verbose=2)
    assert [r["epoch"] for r in hist] == [1, 2]
    assert set(hist[0]) == {"epoch", "loss", "error", "val_error", "lr", "seconds"}
    assert hist[1]["loss"] < hist[0]["loss"]
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2: loss ")
    model.fit(*digits, verbose=0)
    assert capsys.readouterr().err == ""


def test_checkpoint_and_exact_resume(digits, tmp_path):
    make = lambda: optim.SDLM(samples=40, schedule=optim.PaperSchedule(0.05))  # noqa: E731
    whole = LeNet5("classic", seed=4)
    whole.fit(*digits, epochs=3, optimizer=make(), verbose=0, seed=5)

    ckpt = tmp_path / "run.npz"
    part = LeNet5("classic", seed=4)
    part.fit(*digits, epochs=2, optimizer=make(), verbose=0, seed=5, checkpoint=ckpt)
    resumed = LeNet5("classic", seed=99)  # a fresh process would start from other weights
    hist = resumed.fit(*digits, epochs=3, optimizer=make(), verbose=0, seed=5, checkpoint=ckpt, resume=ckpt)
    assert [r["epoch"] for r in hist] == [1, 2, 3]
    assert np.array_equal(resumed.params_vector, whole.params_vector)
    # a checkpoint is also a model file
    assert np.array_equal(lenet_fast.load(ckpt).params_vector, whole.params_vector)


def test_resume_checks_the_file_and_the_settings(digits, tmp_path):
    ckpt = tmp_path / "run.npz"
    LeNet5("modern").fit(*digits, epochs=1, verbose=0, checkpoint=ckpt)
    with pytest.raises(ValueError, match="other settings"):
        LeNet5("modern").fit(*digits, epochs=2, batch_size=16, verbose=0, resume=ckpt)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(ckpt.read_bytes()[:300])
    with pytest.raises(ValueError, match="not a lenet_fast"):
        LeNet5("modern").fit(*digits, epochs=2, verbose=0, resume=bad)


def test_divergence_is_an_error_not_nan_weights(digits, tmp_path):
    model = LeNet5("modern")
    ckpt = tmp_path / "run.npz"
    with pytest.raises(FloatingPointError, match="diverged"):
        model.fit(*digits, epochs=2, optimizer=optim.SGD(lr=1e30), verbose=0, checkpoint=ckpt)
    assert not ckpt.exists()


def test_predict_from_another_thread_during_fit_is_refused():
    model = LeNet5("modern")
    writing = model.guard.writing()
    claimant = threading.Thread(target=writing.__enter__)  # as fit() holds it, from some other thread
    claimant.start()
    claimant.join()
    with pytest.raises(RuntimeError, match="being trained"):
        model.predict(np.zeros((28, 28), np.uint8))
    writing.__exit__(None, None, None)
    assert model.predict(np.zeros((28, 28), np.uint8)).shape == (1,)


# --- a short real run ----------------------------------------------------------------------------


def real_digits(n_train, n_test):
    """MNIST when ../shared has it, drawn digits otherwise."""
    from lenet_fast.datasets import load_mnist

    try:
        x, y = load_mnist(SHARED_MNIST, "train")
        return (x[:n_train], y[:n_train]), (x[-n_test:], y[-n_test:])
    except FileNotFoundError:
        x, y = synthetic_digits(n_train + n_test, seed=1)
        return (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:])


@pytest.mark.parametrize("variant,optimizer,batch_size", [
    ("classic", optim.SDLM(schedule=optim.PaperSchedule(0.05)), 1),
    ("modern", optim.Adam(), 32),
])
def test_a_short_real_run_learns(variant, optimizer, batch_size):
    train, test = real_digits(3000, 1000)
    model = LeNet5(variant, seed=0)
    hist = model.fit(*train, epochs=3, optimizer=optimizer, batch_size=batch_size, validation=test, verbose=0)
    assert hist[-1]["val_error"] < 0.12, hist  # chance is 0.9
