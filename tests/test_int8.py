"""lenet_fast.int8: quantize, Int8LeNet5's predictions against the float32 model's, its file and pickling, and
what it refuses. The kernels themselves: tests/kernels/test_int8_kernels.py."""
import json
import pickle
import zipfile

import numpy as np
import pytest

import lenet_fast
from lenet_fast import _core, int8, paper
from lenet_fast.datasets import load_mnist


@pytest.fixture(scope="module")
def digits(mnist_subset):
    """The committed 1,000 MNIST test digits: the first 500 calibrate, the last 500 are checked."""
    images, labels = load_mnist(mnist_subset, "test")
    return images[:500], images[500:], labels[500:]


@pytest.fixture(scope="module", params=["classic", "modern"])
def pair(request, digits):
    model = lenet_fast.pretrained(request.param)
    return model, int8.quantize(model, digits[0])


def test_the_pixels_are_the_inputs_codes():
    """The paper's normalization is exactly s (p - 20): C1 can take the pixels as they are."""
    p = np.arange(256)
    assert int8.INPUT_ZERO == 20
    assert np.allclose(int8.INPUT_SCALE * (p - int8.INPUT_ZERO),
                       p / 255 * (paper.INPUT_INK - paper.INPUT_BACKGROUND) + paper.INPUT_BACKGROUND, atol=1e-12)


def test_pretrained_models_agree_with_float32(pair, digits):
    model, q = pair
    _, images, labels = digits
    want, got = model.predict(images), q.predict(images)
    assert (want == got).mean() >= 0.99
    assert abs(q.score(images, labels) - model.score(images, labels)) <= 0.01
    out, ref = q.forward(images), model.forward(images)
    assert out.shape == (500, 10) and out.dtype == np.float32
    # close to the float32 outputs, yet not them (the int8 path really ran)
    assert 0 < np.abs(out - ref).max() <= 0.1 * np.abs(ref).max()


def test_predictions_follow_the_source_models_rules(pair, digits):
    model, q = pair
    images = digits[1][:50]
    assert q.temperature == model.temperature and q.outlier_limit == model.outlier_limit
    proba = q.predict_proba(images)
    assert np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    classes, p2 = q.predict_with_proba(images, reject=0.999)
    assert np.array_equal(p2, proba)
    assert np.array_equal(classes[classes >= 0], q.predict(images)[classes >= 0])
    assert (classes == -1).any() and (classes >= 0).any()
    noise = np.random.default_rng(0).integers(0, 256, (20, 28, 28), dtype=np.uint8)
    assert (q.predict(noise, reject=0.0) == -1).sum() == (model.predict(noise, reject=0.0) == -1).sum() or \
        model.outlier_limit is None
    assert q.outlier_score(images).shape == (50,)


def test_floats_and_uint8_give_the_same(pair, digits):
    _, q = pair
    images = digits[1][:20]
    assert np.array_equal(q.forward(images), q.forward(images / np.float32(255)))
    assert np.array_equal(q.forward(images[0]), q.forward(images[:1]))
    field = np.zeros((20, 32, 32), np.uint8)
    field[:, 2:30, 2:30] = images
    assert np.array_equal(q.forward(field), q.forward(images))
    # normalized input (the paper's range, as the benchmark passes it) gives its pixels' codes back
    normalized = paper.INPUT_BACKGROUND + field / np.float32(255) * (paper.INPUT_INK - paper.INPUT_BACKGROUND)
    assert np.array_equal(q.forward(normalized.astype(np.float32), normalized=True), q.forward(images))
    with pytest.raises(ValueError, match="32x32 field"):
        q.forward(np.zeros((2, 28, 28), np.float32), normalized=True)


def test_one_and_two_threads_give_the_same_bits(pair, digits, restore_threads):
    _, q = pair
    images = digits[1][:100]
    lenet_fast.set_num_threads(1)
    one = q.forward(images)
    lenet_fast.set_num_threads(2)
    assert np.array_equal(one, q.forward(images))


def test_save_load_and_pickle_are_exact(pair, digits, tmp_path):
    _, q = pair
    images = digits[1][:50]
    path = tmp_path / "q.npz"
    q.save(path)
    assert int8.is_int8_file(path)
    for copy in (int8.Int8LeNet5.load(path), lenet_fast.load(path), pickle.loads(pickle.dumps(q))):
        assert isinstance(copy, int8.Int8LeNet5)
        assert copy.variant == q.variant and copy.precision == "int8"
        assert np.array_equal(copy.forward(images), q.forward(images))
        assert copy.temperature == q.temperature and copy.outlier_limit == q.outlier_limit
    assert "int8" in repr(q) and q.variant in repr(q)


def test_quantize_from_the_model_and_calibrate_as_float32_does(digits):
    """LeNet5.quantize(x, "int8") is int8.quantize; calibrate is LeNet5's (lenet_fast.predictor): it fits a
    temperature and an outlier limit to the int8 outputs."""
    model = lenet_fast.pretrained("modern")
    q = model.quantize(digits[0], dtype="int8")
    assert np.array_equal(q.forward(digits[1][:20]), int8.quantize(model, digits[0]).forward(digits[1][:20]))
    temperature = q.calibrate(digits[1], digits[2])
    assert temperature == q.temperature > 0 and temperature != model.temperature
    assert q.outlier_limit is not None and q.outlier_limit != model.outlier_limit


def test_a_float32_model_file_is_not_int8(tmp_path):
    path = tmp_path / "m.npz"
    lenet_fast.LeNet5("modern").save(path)
    assert not int8.is_int8_file(path)
    assert not int8.is_int8_file(tmp_path / "missing.npz")
    with pytest.raises(ValueError):
        int8.Int8LeNet5.load(path)


def _rewrite(src, dst, change):
    """dst: src's members with change(name, array) -> array (None drops it)."""
    with np.load(src, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    out = {}
    for k, v in arrays.items():
        v = change(k, v)
        if v is not None:
            out[k] = v
    np.savez(dst, **out)


@pytest.mark.parametrize("change", [
    lambda k, v: None if k == "layer0.weight" else v,
    lambda k, v: v.astype(np.int16) if k == "layer2.weight" else v,
    lambda k, v: -v if k == "layer0.weight_scale" else v,
    lambda k, v: np.float32(np.nan) if k == "layer0.out_scale" else v,
    lambda k, v: np.uint16(300) if k == "layer0.out_zero" else v,
    lambda k, v: np.array("bf16") if k == "__precision__" else v,
    lambda k, v: np.array(9) if k == "__format__" else v,
    lambda k, v: np.array("[1, 2") if k == "__layers__" else v,
    lambda k, v: np.array(json.dumps(json.loads(str(v))[:3])) if k == "__layers__" else v,
    lambda k, v: np.array(json.dumps([dict(d, kind="conv") for d in json.loads(str(v))])) if k == "__layers__" else v,
    lambda k, v: v[:, :7].copy() if k == "layer4.weight" else v,
    lambda k, v: np.array("classic") if k == "__variant__" and str(v) == "modern" else
    (np.array("modern") if k == "__variant__" else v),
    lambda k, v: np.array(-1.0) if k == "__temperature__" else v,
], ids=["missing", "dtype", "negative-scale", "nan-scale", "zero-range", "precision", "format", "json",
        "short-list", "kinds", "shape", "variant", "temperature"])
def test_crafted_files_are_refused(pair, tmp_path, change):
    _, q = pair
    good, bad = tmp_path / "good.npz", tmp_path / "bad.npz"
    q.save(good)
    _rewrite(good, bad, change)
    with pytest.raises(ValueError):
        int8.Int8LeNet5.load(bad)


def test_an_unknown_member_is_refused(pair, tmp_path):
    _, q = pair
    good, bad = tmp_path / "good.npz", tmp_path / "bad.npz"
    q.save(good)
    with zipfile.ZipFile(good) as z:
        members = {n: z.read(n) for n in z.namelist()}
    with zipfile.ZipFile(bad, "w") as z:
        for n, b in members.items():
            z.writestr(n, b)
        z.writestr("evil.npy", members["__format__.npy"])
    with pytest.raises(ValueError):
        int8.Int8LeNet5.load(bad)


def test_bad_calibration_is_refused():
    model = lenet_fast.LeNet5("classic", seed=0)
    for bad in (np.zeros((0, 28, 28), np.uint8), np.zeros((3, 27, 27), np.uint8), np.full((2, 28, 28), np.nan),
                np.full((2, 28, 28), 2.0)):
        with pytest.raises(ValueError):
            int8.quantize(model, bad)
    with pytest.raises(TypeError):
        int8.quantize("model", np.zeros((2, 28, 28), np.uint8))


def test_bad_inputs_are_refused(pair):
    _, q = pair
    for error, bad in [(ValueError, np.full((2, 28, 28), np.nan, np.float32)), (ValueError, np.full((2, 28, 28), 1.5)),
                       (ValueError, np.zeros((2, 30, 30), np.uint8)), (TypeError, np.array(["a"])),
                       (ValueError, np.full((2, 28, 28), 300))]:
        with pytest.raises(error):
            q.forward(bad)
    with pytest.raises(ValueError):
        q.predict(np.zeros((1, 28, 28), np.uint8), reject=1.5)
    with pytest.raises(TypeError):
        q.predict(np.zeros((1, 28, 28), np.uint8), reject="high")


def test_a_small_seeded_model_with_options(digits):
    """An untrained modern model with another activation and dropout: its outputs track float32's."""
    model = lenet_fast.LeNet5("modern", seed=3, activation="leaky_relu", dropout=0.25)
    q = int8.quantize(model, digits[0][:200])
    out, ref = q.forward(digits[1][:100]), model.forward(digits[1][:100])
    assert np.corrcoef(out.ravel(), ref.ravel())[0, 1] > 0.99
    assert _core.int8_isa() in _core.I8_ISAS
