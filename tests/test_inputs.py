"""lenet_fast.inputs: what forward, predict and predict_proba take besides pixel batches (pictures: image file
paths, PIL images, lists of them; channels-last arrays) and what they refuse, with messages that point to
read_digit. The pretrained classic model reads all ten sample digits right, so that reading a picture the
wrong way shows as wrong digits. Tests of PIL images skip without Pillow."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lenet_fast
from lenet_fast.inputs import as_batch

SAMPLES = lenet_fast.sample_paths()
DIGITS = list(range(10))  # digit_0.png ... digit_9.png


@pytest.fixture(scope="module")
def model():
    return lenet_fast.pretrained("classic")


@pytest.fixture(scope="module")
def samples():
    """The sample digits as read_digit makes them: (10, 28, 28) uint8."""
    return lenet_fast.read_digits(SAMPLES)[0]


@pytest.fixture
def Image():
    return pytest.importorskip("PIL.Image")


# ---- pictures ------------------------------------------------------------------------------------------


def test_the_samples_are_read_right(model, samples):
    assert len(SAMPLES) == 10
    assert model.predict(samples).tolist() == DIGITS


@pytest.mark.parametrize("kind", [str, Path])
def test_one_path(model, samples, kind):
    for digit in (0, 3, 7):
        assert model.predict(kind(SAMPLES[digit])).tolist() == [digit]
    np.testing.assert_array_equal(model.forward(kind(SAMPLES[3])), model.forward(samples[3]))
    np.testing.assert_array_equal(model.predict_proba(kind(SAMPLES[3])), model.predict_proba(samples[3:4]))


@pytest.mark.parametrize("container", [list, tuple])
def test_a_list_of_paths_is_a_batch_in_order(model, samples, container):
    order = [4, 1, 9, 0, 7]
    paths = container(str(SAMPLES[d]) if i % 2 else SAMPLES[d] for i, d in enumerate(order))  # str and Path
    assert model.predict(paths).tolist() == order
    np.testing.assert_array_equal(model.forward(paths), model.forward(samples[order]))


def test_pil_images_alone_and_mixed_with_paths(model, samples, Image):
    with Image.open(SAMPLES[8]) as img:
        img.load()
    assert model.predict(img).tolist() == [8]
    assert model.predict(img.convert("RGB")).tolist() == [8]
    mixed = [SAMPLES[2], img, str(SAMPLES[5])]
    assert model.predict(mixed).tolist() == [2, 8, 5]
    np.testing.assert_array_equal(model.predict_proba(mixed), model.predict_proba(samples[[2, 8, 5]]))


def test_a_bad_picture_raises_what_read_digit_raises(model, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not a digit")
    with pytest.raises(ValueError, match="notes.png"):
        model.predict(text)
    with pytest.raises(ValueError, match="notes.png"):
        model.predict([SAMPLES[0], text])
    with pytest.raises(FileNotFoundError):
        model.predict(tmp_path / "missing.png")


def test_normalized_true_refuses_pictures(model):
    for x in (SAMPLES[1], str(SAMPLES[1]), [SAMPLES[1]]):
        with pytest.raises(TypeError, match="normalized=True.*lenet_fast.read_digit"):
            model.forward(x, normalized=True)


def test_a_list_mixing_pictures_and_arrays_is_refused(model, samples):
    with pytest.raises(TypeError, match="lenet_fast.read_digit"):
        model.predict([SAMPLES[0], samples[1]])
    with pytest.raises(TypeError, match="lenet_fast.read_digit"):
        model.predict([samples[1], str(SAMPLES[0])])


def test_arrays_never_load_pillow():
    """Pillow is imported only when a file is read or a PIL image given: predicting arrays, lists of arrays
    and the refused inputs leaves it unloaded (in a fresh interpreter, where nothing else has loaded it)."""
    code = ("import sys, numpy as np, lenet_fast\n"
            "m = lenet_fast.LeNet5('modern', seed=0)\n"
            "m.predict(np.zeros((2, 28, 28), np.uint8)); m.predict([np.zeros((28, 28))]);"
            " m.predict(np.zeros((1, 28, 28, 1), np.float32))\n"
            "for bad in (b'x', None, {}):\n"
            "    try: m.predict(bad)\n"
            "    except TypeError: pass\n"
            "print('PIL' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


# ---- channels-last arrays ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64, np.int32])
def test_channels_last(model, samples, dtype):
    batch = samples / np.float32(255) if np.dtype(dtype).kind == "f" else samples
    batch = batch.astype(dtype)
    want = model.forward(batch)
    np.testing.assert_array_equal(model.forward(batch[..., None]), want)
    assert model.predict(batch[..., None]).tolist() == DIGITS
    np.testing.assert_array_equal(model.forward(batch[6][..., None]), want[6:7])
    field = np.zeros((10, 32, 32), dtype)
    field[:, 2:30, 2:30] = batch  # the digit centred in the 32x32 field: the same input to the network
    np.testing.assert_array_equal(model.forward(field[..., None]), want)
    np.testing.assert_array_equal(model.forward(field[4][..., None]), want[4:5])


def test_channels_last_uint8_is_not_copied(samples):
    x = np.ascontiguousarray(samples[..., None])
    batch, normalize = as_batch(x, normalized=False)
    assert normalize and batch.shape == (10, 28, 28) and np.shares_memory(batch, x)


def test_channels_last_normalized(model):
    x = np.random.default_rng(0).uniform(-0.1, 1.175, (3, 32, 32)).astype(np.float32)
    want = model.forward(x, normalized=True)
    assert np.ptp(want) > 0
    np.testing.assert_array_equal(model.forward(x[..., None], normalized=True), want)


def test_the_fast_path_returns_the_array_itself(samples):
    batch, normalize = as_batch(samples, normalized=False)
    assert batch is samples and normalize


# ---- refusals ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("x", [b"\x89PNG\r\n", {"image": 1}, None, np.array([object(), object()]),
                               np.array(["digit_0.png"]), np.zeros((28, 28), bool)],
                         ids=["bytes", "dict", "None", "object array", "string array", "bool array"])
def test_non_numbers_are_a_type_error_naming_read_digit(model, x):
    for method in (model.forward, model.predict, model.predict_proba):
        with pytest.raises(TypeError, match=r"read other pictures with lenet_fast\.read_digit"):
            method(x)


@pytest.mark.parametrize("shape", [(120, 120, 4), (120, 120), (28, 28, 3), (2, 28, 28, 2), (27, 27, 1)])
def test_pictures_of_another_size_are_a_value_error_pointing_to_read_digit(model, shape):
    with pytest.raises(ValueError, match=rf"got shape \({shape[0]}, .*read it with lenet_fast\.read_digit"):
        model.predict(np.zeros(shape, np.uint8))
