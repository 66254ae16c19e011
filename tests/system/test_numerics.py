"""Numerics at the edges: saturated activations, overflowing networks and extreme learning rates give finite
results or a clear error (FloatingPointError), never NaN answers or NaN weights saved; the same seed gives
the same bits in another process with another thread count.
"""
import hashlib
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import lenet_fast
from lenet_fast import optim
from lenet_fast.datasets import synthetic_digits

X, Y = synthetic_digits(96, seed=6)


def scaled(model, factor):
    """The model's weights times factor (clipped to float32's range: finite)."""
    model.set_params({k: np.clip(a.astype(np.float64) * factor, -3e38, 3e38) for k, a in model.params.items()})
    return model


def test_saturated_classic_stays_finite():
    """The scaled tanh saturates: with every weight a million times too large, the distances, the
    probabilities, the losses and the gradient are all finite."""
    model = scaled(lenet_fast.LeNet5("classic"), 1e6)
    out = model.forward(X)
    assert np.isfinite(out).all() and np.isfinite(model.predict_proba(X)).all()
    for loss in ("map", "rbf"):
        grads, losses = model.gradient(X, Y, loss=loss)
        assert np.isfinite(losses).all() and all(np.isfinite(g).all() for g in grads.values())


@pytest.mark.parametrize("method", ["forward", "predict", "predict_proba"])
def test_an_overflowing_network_is_an_error_not_nan(method):
    """ReLU does not saturate: weights of 1e30 overflow float32 on the way. The answer is a
    FloatingPointError saying so (regression: forward gave NaN silently, predict a meaningless class, and
    predict_proba a ValueError about its own input)."""
    model = scaled(lenet_fast.LeNet5("modern"), 1e30)
    with pytest.raises(FloatingPointError, match="not finite"):
        getattr(model, method)(X)


def test_an_overflowing_gradient_is_an_error():
    model = scaled(lenet_fast.LeNet5("modern"), 1e30)
    with pytest.raises(FloatingPointError, match="not finite"):
        model.gradient(X, Y)


def test_huge_normalized_inputs():
    """Inputs of 1e38 (normalized=True takes any finite floats): classic saturates and stays finite;
    modern overflows and says so, in forward and in fit."""
    x = np.full((4, 32, 32), 1e38, np.float32)
    assert np.isfinite(lenet_fast.LeNet5("classic").forward(x, normalized=True)).all()
    modern = lenet_fast.LeNet5("modern")
    with pytest.raises(FloatingPointError):
        modern.forward(x, normalized=True)
    with pytest.raises(FloatingPointError, match="diverged"):
        modern.fit(x, Y[:4], normalized=True, verbose=0)


@pytest.mark.parametrize("variant,optimizer", [
    ("modern", optim.SGD(lr=1e6, momentum=0.0)),
    ("modern", optim.Adam(lr=1e12)),
    ("classic", optim.SDLM(samples=20, schedule=optim.PaperSchedule(1e12))),
    ("classic", optim.SGD(lr=1e30)),
])
def test_extreme_learning_rates_never_save_nan_weights(variant, optimizer, tmp_path):
    """An epoch at a sane rate writes a checkpoint; then an absurd rate: each epoch either ends with a
    finite loss and finite weights, or fit raises FloatingPointError. Either way, no file ever holds
    NaN: the checkpoint is the last good one, and save() refuses weights that are not finite."""
    model = lenet_fast.LeNet5(variant, seed=1)
    ckpt = tmp_path / "run.npz"
    model.fit(X, Y, epochs=1, batch_size=8, optimizer="sgd", verbose=0, checkpoint=ckpt)
    good = ckpt.read_bytes()
    try:
        history = model.fit(X, Y, epochs=2, batch_size=8, optimizer=optimizer, verbose=0, checkpoint=ckpt)
    except FloatingPointError as exc:
        assert "diverged" in str(exc)
        assert ckpt.read_bytes() == good
        if not lenet_fast._core.all_finite(model.params_vector):
            with pytest.raises(ValueError, match="NaN or infinity"):
                model.save(tmp_path / "after.npz")
            assert not (tmp_path / "after.npz").exists()
    else:
        assert all(np.isfinite(r["loss"]) for r in history)
        assert lenet_fast._core.all_finite(model.params_vector)
    assert lenet_fast._core.all_finite(lenet_fast.load(ckpt).params_vector)
    assert [p.name for p in tmp_path.iterdir()] == ["run.npz"]


def test_save_refuses_nan_weights(tmp_path):
    model = lenet_fast.LeNet5("classic")
    model.params["f6.weight"][3, 4] = np.nan  # in place, as a diverged run would leave it
    with pytest.raises(ValueError, match="f6.weight contains NaN"):
        model.save(tmp_path / "m.npz")
    assert list(tmp_path.iterdir()) == []


RUN = textwrap.dedent("""
    import hashlib, sys
    import lenet_fast
    from lenet_fast.datasets import synthetic_digits
    from lenet_fast.distort import random_affine
    x, y = synthetic_digits(96, seed=6)
    for variant in ("classic", "modern"):
        model = lenet_fast.LeNet5(variant, seed=11)
        model.fit(x, y, epochs=2, batch_size=1 if variant == "classic" else 16, seed=12, verbose=0,
                  augment=random_affine)
        print(hashlib.sha256(model.params_vector.tobytes()).hexdigest())
""")


def test_same_seed_same_bits_in_another_process():
    """Training with a seed (shuffling, augmentation, initialisation) gives the same weights, bit for bit,
    here and in a fresh process with one thread instead of two."""
    from lenet_fast.distort import random_affine

    here = []
    for variant in ("classic", "modern"):
        model = lenet_fast.LeNet5(variant, seed=11)
        model.fit(X, Y, epochs=2, batch_size=1 if variant == "classic" else 16, seed=12, verbose=0,
                  augment=random_affine)
        here.append(hashlib.sha256(model.params_vector.tobytes()).hexdigest())
    env = dict(os.environ, OMP_NUM_THREADS="1")
    there = subprocess.run([sys.executable, "-c", RUN], capture_output=True, text=True, env=env, timeout=120)
    assert there.returncode == 0, there.stderr
    assert there.stdout.split() == here
