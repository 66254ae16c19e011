"""Training (lenet_fast/train.py, the schedules of lenet_fast/optim.py): the learning-rate schedules;
bit-identical training for any thread count; fit's checks, history, checkpoints and exact resumption; a
short real run. The C backward pass, losses, curvature and updates are tested against the NumPy reference
where they live: tests/kernels/test_gradient.py, test_loss.py and test_optimizer.py.
"""
import os
import threading

import numpy as np
import pytest

import lenet_fast
from lenet_fast import optim
from lenet_fast.datasets import synthetic_digits
from lenet_fast.model import LeNet5

# --- schedules -------------------------------------------------------------------------------------


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


# --- fit -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    return synthetic_digits(200, seed=11)


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(labels=np.full(200, 10)), ValueError, r"must lie in -1\.\.9"),
    (dict(labels=np.zeros(199, dtype=int)), ValueError, "199 labels for 200 images"),
    (dict(labels=np.zeros(200)), ValueError, "integer"),
    (dict(optimizer="lbfgs"), ValueError, "optimizer"),
    (dict(loss="xent"), ValueError, "loss"),
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(epochs=0), ValueError, "epochs"),
    (dict(verbose=3), ValueError, "verbose"),
    (dict(j=-1.0), ValueError, "j must be"),
    (dict(validation=(np.zeros((3, 28, 28), np.uint8), [1, 2])), ValueError, "2 labels for 3 images"),
    (dict(validation=(np.zeros((3, 28, 28), np.uint8), [1, 2, 10])), ValueError, "validation labels"),
    (dict(validation=(np.full((2, 28, 28), np.nan, np.float32), [1, 2])), ValueError, "NaN"),
    (dict(validation=(np.full((2, 28, 28), 1.5), [1, 2])), ValueError, r"\[0, 1\]"),
    (dict(validation=(np.full((2, 28, 28), 1e300), [1, 2])), ValueError, "outside float32's range"),
    (dict(validation=np.zeros((3, 28, 28), np.uint8)), ValueError, "pair"),
    (dict(batch_size=10**12), ValueError, r"batch_size must be an integer in 1\.\.32768"),
    (dict(batch_size=32769), ValueError, r"batch_size must be an integer in 1\.\.32768"),
    (dict(batch_size=np.float64(8)), ValueError, "batch_size"),
    (dict(batch_size=True), ValueError, "batch_size"),
    (dict(epochs=np.bool_(True)), ValueError, "epochs"),
    (dict(epochs=2.0), ValueError, "epochs"),
    (dict(augment="flip"), TypeError, "augment"),
    (dict(seed=0.5), ValueError, "seed"),
    (dict(checkpoint="/nonexistent-folder/run.npz"), ValueError, "does not exist"),
    (dict(checkpoint="."), ValueError, "is a folder"),
    (dict(checkpoint=3.5), TypeError, "checkpoint must be a file path"),
    (dict(resume="/nonexistent-folder/run.npz"), FileNotFoundError, "run.npz"),
])
def test_fit_rejects_bad_arguments_before_any_work(digits, kwargs, error, match):
    """Each refused before the first batch: the weights unchanged, and the epoch never started (augment,
    which runs at each epoch's start, is never called)."""
    model = LeNet5("classic")
    before = model.params_vector.copy()
    epochs_started = []
    args = dict(images=digits[0], labels=digits[1], verbose=0,
                augment=lambda x, rng: epochs_started.append(1) or x)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        model.fit(**args)
    assert np.array_equal(model.params_vector, before)
    assert epochs_started == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_fit_refuses_a_checkpoint_folder_it_cannot_write_before_training(digits, tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    model = LeNet5("modern")
    before = model.params_vector.copy()
    try:
        with pytest.raises(ValueError, match="not writable"):
            model.fit(*digits, verbose=0, checkpoint=folder / "run.npz")
    finally:
        folder.chmod(0o700)
    assert np.array_equal(model.params_vector, before)


def test_fit_refuses_a_checkpoint_a_save_would_refuse_before_training(digits, tmp_path):
    """A FIFO (like a device or a socket) is never replaced by a save: fit says so before the first epoch,
    not after it."""
    fifo = tmp_path / "run.npz"
    os.mkfifo(fifo)
    model = LeNet5("modern")
    before = model.params_vector.copy()
    with pytest.raises(ValueError, match="not a regular file"):
        model.fit(*digits, verbose=0, checkpoint=fifo)
    assert np.array_equal(model.params_vector, before)
    assert fifo.is_fifo()


def test_the_trainer_refuses_a_huge_batch_size_with_its_limit(digits):
    """_core.Trainer.train, under fit: a batch size beyond a C int is a ValueError giving the range, not
    an OverflowError."""
    model = LeNet5("modern")
    opt = optim.SGD(lr=0.01)
    opt.bind(model.params_vector.size)
    for bad in (10**12, 2**31, 0, 1.0):
        with pytest.raises(ValueError, match=r"batch_size must be an integer in 1\.\.32768"):
            model.trainer().train(digits[0][:4], digits[1][:4], bad, opt, "xent")
    assert model.trainer().train(digits[0][:4], digits[1][:4], np.int64(2), opt, "xent")[0].shape == (4,)


def test_fit_takes_numpy_integers_for_epochs_and_batch_size(digits):
    """np.int64 counts (what arithmetic on numpy arrays gives) train exactly as Python ints do."""
    runs = []
    for epochs, batch_size in ((2, 50), (np.int64(2), np.int64(50)), (np.uint16(2), np.int32(50))):
        model = LeNet5("modern", seed=1)
        hist = model.fit(*digits, epochs=epochs, batch_size=batch_size, verbose=0)
        runs.append((model.params_vector.copy(), [r["loss"] for r in hist]))
    for weights, losses in runs[1:]:
        assert np.array_equal(weights, runs[0][0]) and losses == runs[0][1]


def test_resume_from_a_bad_checkpoint_leaves_the_weights(digits, tmp_path):
    """A checkpoint whose weights are fine but whose optimizer state is not: refused, and the model keeps
    its own weights (none of the file's are copied in before everything in it is known good)."""
    ckpt, bad = tmp_path / "run.npz", tmp_path / "bad.npz"
    LeNet5("modern", seed=3).fit(*digits, epochs=1, verbose=0, checkpoint=ckpt)
    with np.load(ckpt) as f:
        arrays = dict(f)
    arrays["optimizer.m"] = arrays["optimizer.m"][:-1]
    np.savez(bad, **arrays)
    model = LeNet5("modern", seed=4)
    before = model.params_vector.copy()
    with pytest.raises(ValueError, match="optimizer state"):
        model.fit(*digits, epochs=2, verbose=0, resume=bad)
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


@pytest.mark.parametrize("name", sorted(optim.OPTIMIZERS))
def test_exact_resume_for_every_optimizer_and_a_plateau_schedule(name, digits, tmp_path):
    x, y = digits
    variant = "classic" if name == "sdlm" else "modern"

    def make():
        if name == "sdlm":
            return optim.SDLM(samples=30, schedule=optim.PaperSchedule(0.05))
        # min_delta 1: every epoch after the first is a plateau, so the rate halves each epoch and the
        # schedule's state must resume too
        return optim.OPTIMIZERS[name](schedule=optim.ReduceOnPlateau(factor=0.5, patience=0, min_delta=1.0))

    def run(model, epochs, **kwargs):
        return model.fit(x[:120], y[:120], epochs=epochs, batch_size=1 if name == "sdlm" else 16,
                         optimizer=make(), verbose=0, seed=5, validation=(x[120:], y[120:]), **kwargs)

    whole = LeNet5(variant, seed=4)
    want = run(whole, 4)
    ckpt = tmp_path / "run.npz"
    run(LeNet5(variant, seed=4), 2, checkpoint=ckpt)
    got = run(LeNet5(variant, seed=99), 4, checkpoint=ckpt, resume=ckpt)
    assert [r["lr"] for r in got] == [r["lr"] for r in want]
    if name != "sdlm":
        assert want[3]["lr"] == want[0]["lr"] / 4
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


def real_digits(folder, n_train, n_test):
    """MNIST's training set when folder has it (the mnist_folder fixture), drawn digits otherwise."""
    from lenet_fast.datasets import load_mnist

    try:
        x, y = load_mnist(folder, "train")
        return (x[:n_train], y[:n_train]), (x[-n_test:], y[-n_test:])
    except FileNotFoundError:
        x, y = synthetic_digits(n_train + n_test, seed=1)
        return (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:])


@pytest.mark.parametrize("variant,optimizer,batch_size", [
    ("classic", optim.SDLM(schedule=optim.PaperSchedule(0.05)), 1),
    ("modern", optim.Adam(), 32),
])
def test_a_short_real_run_learns(variant, optimizer, batch_size, mnist_folder):
    train, test = real_digits(mnist_folder, 3000, 1000)
    model = LeNet5(variant, seed=0)
    hist = model.fit(*train, epochs=3, optimizer=optimizer, batch_size=batch_size, validation=test, verbose=0)
    assert hist[-1]["val_error"] < 0.12, hist  # chance is 0.9
