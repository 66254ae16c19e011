"""Calibrated confidence and rejection (lenet_fast/calibration.py, and LeNet5.temperature, calibrate,
outlier_score and predict(reject=...) in lenet_fast/model.py): the temperature fit, the metrics, the file
entries, rejection, and the pretrained models' calibration on the committed test digits."""
import copy
import math
import pickle

import numpy as np
import pytest

import lenet_fast
from lenet_fast import calibration


@pytest.fixture(scope="module")
def subset(mnist_subset):
    """The 1,000 committed test digits (none of them seen by tools/calibrate.py's fit) and their labels."""
    x = lenet_fast.read_idx(mnist_subset / "t10k-images-idx3-ubyte.gz")
    y = lenet_fast.read_idx(mnist_subset / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
    return x, y


def synthetic(temperature, n=20000, seed=0):
    """(scores, labels): labels drawn from softmax(scores / temperature), so that is the true temperature."""
    rng = np.random.default_rng(seed)
    scores = rng.normal(0.0, 3.0, (n, 10))
    p = np.exp(scores / temperature - (scores / temperature).max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    labels = (p.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return scores, labels


@pytest.mark.parametrize("temperature", [0.5, 2.5, 12.0])
def test_fit_temperature_recovers_a_known_temperature(temperature):
    scores, labels = synthetic(temperature)
    fitted = calibration.fit_temperature(scores, labels)
    assert abs(fitted / temperature - 1) < 0.05
    assert calibration.fit_temperature(scores, labels) == fitted  # deterministic


def test_fit_temperature_minimises_the_log_loss():
    scores, labels = synthetic(3.0, n=3000, seed=1)
    fitted = calibration.fit_temperature(scores, labels)

    def nll(t):
        z = scores / t
        z = z - z.max(axis=1, keepdims=True)
        return np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(z)), labels])

    assert nll(fitted) < min(nll(fitted * 0.97), nll(fitted * 1.03))


def test_fit_temperature_refuses_what_has_no_optimum():
    scores = np.eye(10)[np.arange(100) % 10] * 50.0
    with pytest.raises(ValueError, match="wide margin"):
        calibration.fit_temperature(scores, np.arange(100) % 10)  # all right: smaller T always better
    with pytest.raises(ValueError, match="say nothing"):
        calibration.fit_temperature(scores, (np.arange(100) + 1) % 10)  # all wrong: larger T always better
    for bad_scores, bad_labels in ((np.zeros((3, 10)), [0, 1]), (np.zeros((2, 10)), [0, 10]),
                                   (np.zeros((2, 10)), [0.5, 1]), (np.full((2, 10), np.nan), [0, 1]),
                                   (np.zeros((0, 10)), []), (np.zeros(10), [1])):
        with pytest.raises(ValueError):
            calibration.fit_temperature(bad_scores, bad_labels)


def test_metrics_on_a_worked_example():
    proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]])
    labels = np.array([0, 1, 1, 1])
    assert calibration.log_loss(proba, labels) == pytest.approx(-np.mean(np.log([0.9, 0.4, 0.7, 0.8])))
    # bins of width 1/15: 0.9 -> (0.867, 0.933], 0.6 -> (0.533, 0.6], 0.7 -> (0.667, 0.733], 0.8 -> (0.733, 0.8]
    assert calibration.expected_calibration_error(proba, labels) == pytest.approx((0.1 + 0.6 + 0.3 + 0.2) / 4)
    assert calibration.expected_calibration_error(proba, labels, bins=1) == pytest.approx(abs(0.75 - 0.75))
    assert calibration.error_confidence(proba, labels) == pytest.approx(0.6)
    assert math.isnan(calibration.error_confidence(proba, np.array([0, 0, 1, 1])))
    assert calibration.log_loss(np.array([[1.0, 0.0]]), np.array([1])) == pytest.approx(-math.log(
        np.finfo(np.float32).tiny))  # a zero probability counts as float32's smallest normal number


def test_calibrate_sets_the_temperature_and_keeps_the_predictions(subset):
    x, y = subset
    model = lenet_fast.pretrained("modern")
    model.temperature, model.outlier_limit = 1.0, None
    before, proba_before = model.predict(x), model.predict_proba(x)
    t = model.calibrate(x[:500], y[:500])
    assert t == model.temperature and t != 1.0 and 0.5 < t < 10
    assert model.outlier_limit == pytest.approx(np.quantile(model.outlier_score(x[:500]), 0.995, method="higher"))
    assert np.array_equal(model.predict(x), before)
    assert not np.allclose(model.predict_proba(x), proba_before)
    assert np.allclose(model.predict_proba(x).sum(axis=1), 1, atol=1e-5)
    model.calibrate(x[:500], y[:500], outlier_share=0)
    assert model.outlier_limit == model.outlier_score(x[:500]).max()


def test_calibrate_refuses_bad_arguments_and_changes_nothing(subset):
    x, y = subset
    model = lenet_fast.pretrained("classic")
    state = (model.temperature, model.outlier_limit)
    for share, error in ((1.0, ValueError), (-0.1, ValueError), (math.nan, ValueError), ("0.1", TypeError)):
        with pytest.raises(error, match="outlier_share"):
            model.calibrate(x[:50], y[:50], outlier_share=share)
    with pytest.raises(ValueError, match="labels"):
        model.calibrate(x[:50], y[:49])
    assert (model.temperature, model.outlier_limit) == state


def test_the_temperature_is_a_positive_finite_number():
    model = lenet_fast.LeNet5("modern")
    assert model.temperature == 1.0 and model.outlier_limit is None
    model.temperature = np.float32(2)
    assert model.temperature == 2.0 and type(model.temperature) is float
    for bad in (0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="temperature"):
            model.temperature = bad
    for bad in ("2", None, True, [2.0]):
        with pytest.raises(TypeError, match="temperature"):
            model.temperature = bad
    with pytest.raises(ValueError, match="outlier_limit"):
        model.outlier_limit = math.nan
    assert model.temperature == 2.0


def test_predict_proba_is_softmax_of_the_scores_over_the_temperature(subset):
    x = subset[0][:64]
    for variant in ("classic", "modern"):
        model = lenet_fast.LeNet5(variant, seed=1)
        out = model.forward(x).astype(np.float64)
        scores = -out if variant == "classic" else out
        for t in (1.0, 0.3, 7.0):
            model.temperature = t
            z = scores / t
            expected = np.exp(z - z.max(axis=1, keepdims=True))
            assert np.allclose(model.predict_proba(x), expected / expected.sum(axis=1, keepdims=True), atol=1e-5)


def calibrated(variant, seed=4):
    model = lenet_fast.LeNet5(variant, seed=seed)
    model.temperature, model.outlier_limit = 3.25, 17.5
    return model


@pytest.mark.parametrize("variant", ["classic", "modern"])
def test_temperature_and_outlier_limit_are_saved_loaded_and_pickled(variant, tmp_path):
    model = calibrated(variant)
    model.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as f:
        assert f["__temperature__"].dtype == np.float64 and float(f["__temperature__"]) == 3.25
        assert float(f["__outlier_limit__"]) == 17.5
    for copied in (lenet_fast.load(tmp_path / "m.npz"), pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
        assert (copied.temperature, copied.outlier_limit) == (3.25, 17.5)
    lenet_fast.LeNet5(variant).save(tmp_path / "fresh.npz")  # no limit: no entry, loaded as None
    fresh = lenet_fast.load(tmp_path / "fresh.npz")
    assert (fresh.temperature, fresh.outlier_limit) == (1.0, None)


def test_pretrained_models_carry_their_calibration():
    for variant in ("classic", "modern"):
        a, b = lenet_fast.pretrained(variant), lenet_fast.pretrained(variant)
        assert a.temperature != 1.0 and a.outlier_limit is not None
        assert (a.temperature, a.outlier_limit) == (b.temperature, b.outlier_limit)
        a.temperature = 1.0
        assert lenet_fast.pretrained(variant).temperature == b.temperature  # each call its own model


def write_file(path, **changes):
    """A classic model file as save() writes it, with entries changed (None: removed)."""
    arrays = {"__format__": np.array(1), "__variant__": np.array("classic"),
              "__temperature__": np.array(2.0), "__outlier_limit__": np.array(20.0)}
    arrays.update(lenet_fast.LeNet5("classic").params)
    arrays.update(changes)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def test_a_file_without_calibration_loads_uncalibrated(tmp_path):
    """Files written before calibration existed: temperature 1, no outlier limit, same predictions."""
    path = write_file(tmp_path / "old.npz", __temperature__=None, __outlier_limit__=None)
    model = lenet_fast.load(path)
    assert (model.temperature, model.outlier_limit) == (1.0, None)
    assert lenet_fast.load(write_file(tmp_path / "t.npz", __outlier_limit__=None)).temperature == 2.0


@pytest.mark.parametrize("entry, value", [
    ("__temperature__", np.array(0.0)), ("__temperature__", np.array(-2.0)), ("__temperature__", np.array(np.nan)),
    ("__temperature__", np.array(np.inf)), ("__temperature__", np.array("hot")), ("__temperature__", np.ones(2)),
    ("__outlier_limit__", np.array(np.nan)), ("__outlier_limit__", np.array("far")),
    ("__outlier_limit__", np.zeros((1, 1))),
])
def test_load_refuses_a_bad_calibration_entry(tmp_path, entry, value):
    path = write_file(tmp_path / "bad.npz", **{entry: value})
    name = entry.strip("_")
    with pytest.raises(ValueError, match=name) as info:
        lenet_fast.load(path)
    assert str(path) in str(info.value)


def test_predict_reject_refuses_exactly_the_unsure_and_the_outliers(subset):
    x, y = subset
    model = lenet_fast.pretrained("classic")
    conf = model.predict_proba(x).max(axis=1).astype(np.float64)
    outlier = model.outlier_score(x) > model.outlier_limit
    plain = model.predict(x)
    assert np.array_equal(model.predict(x, reject=None), plain)
    assert outlier.any() and not outlier.all()
    for t in (0.0, 0.5, 0.95, 0.999, 1.0):
        got = model.predict(x, reject=t)
        refused = (conf < t) | outlier
        assert np.array_equal(got == -1, refused)
        assert np.array_equal(got[~refused], plain[~refused])
    assert (model.predict(x, reject=0.95) == -1).sum() > (model.predict(x, reject=0.0) == -1).sum()
    model.outlier_limit = None  # no limit: reject=0 refuses nothing
    assert (model.predict(x, reject=0.0) >= 0).all()


@pytest.mark.parametrize("bad, error", [(math.nan, ValueError), (-0.01, ValueError), (1.01, ValueError),
                                        ("0.9", TypeError), (True, TypeError), ([0.9], TypeError)])
def test_predict_refuses_bad_reject_values(bad, error):
    model = lenet_fast.LeNet5("modern")
    with pytest.raises(error, match="reject"):
        model.predict(np.zeros((2, 28, 28), np.uint8), reject=bad)


def test_rejection_curve_matches_predict(subset):
    x, y = subset
    model = lenet_fast.pretrained("modern")
    curve = lenet_fast.rejection_curve(model, x, y)
    assert len(curve.thresholds) == len(curve.refused) == len(curve.errors) > 100
    assert np.all(np.diff(curve.thresholds) > 0) and np.all(np.diff(curve.refused) > 0)
    assert curve.refused[-1] == 1.0 and curve.errors[-1] == 0.0
    assert curve.errors[0] > 0 and curve.errors[len(curve.errors) // 2] < curve.errors[0]
    for i in (0, 3, 40, len(curve.thresholds) // 2):
        got = model.predict(x, reject=curve.thresholds[i])
        accepted = got >= 0
        assert np.mean(~accepted) == pytest.approx(curve.refused[i])
        assert np.mean(got[accepted] != y[accepted]) == pytest.approx(curve.errors[i])


def test_rejection_curve_of_an_ensemble_is_by_confidence_alone(subset):
    """An Ensemble has no outlier limit: its curve starts with nothing refused, and each point is what its
    predict(reject=t) does."""
    x, y = subset[0][:300], subset[1][:300]
    ensemble = lenet_fast.Ensemble([lenet_fast.pretrained("modern"), lenet_fast.pretrained("classic")])
    curve = lenet_fast.rejection_curve(ensemble, x, y)
    assert curve.refused[0] == 0.0 and curve.refused[-1] == 1.0
    for i in (0, 5, len(curve.thresholds) // 2):
        got = ensemble.predict(x, reject=curve.thresholds[i])
        accepted = got >= 0
        assert np.mean(~accepted) == pytest.approx(curve.refused[i])
        assert np.mean(got[accepted] != y[accepted]) == pytest.approx(curve.errors[i])


def test_rejection_curve_when_every_image_is_an_outlier(subset):
    x, y = subset[0][:50], subset[1][:50]
    model = lenet_fast.pretrained("classic")
    model.outlier_limit = -1.0  # below every squared distance
    curve = lenet_fast.rejection_curve(model, x, y)
    assert list(curve.thresholds) == [0.0] and list(curve.refused) == [1.0] and list(curve.errors) == [0.0]
    assert (model.predict(x, reject=0) == -1).all()


@pytest.mark.parametrize("variant", ["classic", "modern"])
def test_pretrained_models_are_calibrated(subset, variant):
    """The goals (log loss <= 0.05, mean confidence on errors <= 0.8 on the held-out half of the test set)
    as far as 1,000 digits can tell; uncalibrated, the classic model misses them on the same digits (the
    modern one, trained with non-digits on a uniform target, is nearly calibrated at T = 1: its T is 0.94)."""
    x, y = subset
    model = lenet_fast.pretrained(variant)
    proba = model.predict_proba(x)
    assert calibration.log_loss(proba, y) < 0.08
    assert calibration.error_confidence(proba, y) < 0.85
    assert calibration.expected_calibration_error(proba, y) < 0.02
    if variant == "classic":
        model.temperature = 1.0
        assert calibration.error_confidence(model.predict_proba(x), y) > 0.85


def noise_and_blank(seed=0):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.integers(0, 256, (20, 28, 28)), rng.integers(0, 20, (20, 28, 28))]).astype(np.uint8)


@pytest.mark.parametrize("variant", ["classic", "modern"])
def test_noise_and_blank_images_are_refused(variant):
    """Both refuse them since their training with non-digits (docs/confidence.md#what-is-refused); these
    are of kinds negatives.non_digits makes (uniform and faint noise), from another seed."""
    model = lenet_fast.pretrained(variant)
    assert (model.predict(noise_and_blank(), reject=0.9) == -1).all()
    assert (model.predict(noise_and_blank()) >= 0).all()  # without reject every image gets a digit


def drawn(shape):
    """A 120x120 picture, dark on white, through read_digit: the letter A (three strokes) or a dot."""
    yy, xx = np.mgrid[0:120, 0:120].astype(float)
    page = np.full((120, 120), 255, np.uint8)
    if shape == "dot":
        page[(yy - 60) ** 2 + (xx - 60) ** 2 <= 36] = 0
    for (y0, x0), (y1, x1) in ([((15, 60), (105, 25)), ((15, 60), (105, 95)), ((70, 38), (70, 82))]
                               if shape == "A" else []):
        t = np.clip(((yy - y0) * (y1 - y0) + (xx - x0) * (x1 - x0)) / ((y1 - y0) ** 2 + (x1 - x0) ** 2), 0, 1)
        page[np.hypot(yy - y0 - t * (y1 - y0), xx - x0 - t * (x1 - x0)) <= 5] = 0
    return lenet_fast.read_digit(page)


@pytest.mark.parametrize("variant, shape", [
    pytest.param("classic", "A", marks=pytest.mark.xfail(strict=True, reason="a limit of the classic model, measured "
                 "(docs/confidence.md#what-is-refused): trained with non-digits it refuses about half of held-out "
                 "As, but reads this one as a sure 4 within its outlier limit")),
    ("classic", "dot"), ("modern", "A"), ("modern", "dot")])
def test_a_letter_and_a_dot_are_refused(variant, shape):
    """Neither shape is in the models' non-digit training (negatives.py holds them out): refusing them is
    how that training generalises."""
    assert lenet_fast.pretrained(variant).predict(drawn(shape), reject=0.9)[0] == -1
