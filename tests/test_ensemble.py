"""lenet_fast/ensemble.py: averaged probabilities, predict (and reject), score and evaluate, files (round
trip, crafted files refused), pickling, bad arguments, and the shipped pretrained ensemble."""
import pickle

import numpy as np
import pytest

import lenet_fast
from lenet_fast import Ensemble, storage
from lenet_fast.datasets import synthetic_digits
from lenet_fast.pretrained import weights_path


@pytest.fixture(scope="module")
def members():
    """Three different models: the two pretrained ones and a briefly trained modern one."""
    x, y = synthetic_digits(300, seed=4)
    young = lenet_fast.LeNet5("modern", seed=9)
    young.fit(x, y, epochs=1, batch_size=16, verbose=0)
    return [lenet_fast.pretrained("classic"), lenet_fast.pretrained("modern"), young]


@pytest.fixture(scope="module")
def digits(mnist_subset):
    x, y = lenet_fast.load_mnist(mnist_subset, "test")
    return x[:400], y[:400]


def test_probabilities_are_the_members_mean(members, digits):
    x, y = digits
    ensemble = Ensemble(members)
    proba = ensemble.predict_proba(x)
    expected = np.mean([m.predict_proba(x).astype(np.float64) for m in members], axis=0)
    assert proba.dtype == np.float32 and proba.shape == (400, 10)
    np.testing.assert_allclose(proba, expected, rtol=1e-6)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    predicted = ensemble.predict(x)
    np.testing.assert_array_equal(predicted, expected.argmax(axis=1))
    # the members disagree somewhere: the ensemble is not any one of them
    assert any((m.predict(x) != predicted).any() for m in members)
    refused = ensemble.predict(x, reject=0.9)
    np.testing.assert_array_equal(refused == -1, expected.max(axis=1) < 0.9)
    assert 0 < (refused == -1).sum() < 400
    assert ensemble.score(x, y) == np.mean(predicted == y)
    result = ensemble.evaluate(x, y)
    assert result.accuracy == ensemble.score(x, y)
    assert result.loss == pytest.approx(-np.mean(np.log(proba[np.arange(400), y].astype(np.float64))))
    assert Ensemble(members[:1]).predict(x).tolist() == members[0].predict(x).tolist()


def test_save_load_and_pickle_are_exact(members, digits, tmp_path):
    ensemble = Ensemble(members)
    ensemble.save(tmp_path / "e.npz")
    for copy in (Ensemble.load(tmp_path / "e.npz"), pickle.loads(pickle.dumps(ensemble))):
        assert len(copy) == 3 and [m.variant for m in copy] == ["classic", "modern", "modern"]
        assert np.array_equal(copy.predict_proba(digits[0]), ensemble.predict_proba(digits[0]))
        assert all(a is not b for a, b in zip(copy, ensemble))
    assert repr(ensemble) == "Ensemble(3 models: classic, modern, modern)"


def crafted(tmp_path, arrays):
    path = tmp_path / "crafted.npz"
    storage.write_npz(path, arrays)
    return path


def test_crafted_files_are_refused(members, tmp_path):
    good = tmp_path / "e.npz"
    Ensemble(members[:2]).save(good)
    arrays = storage.read_npz(good, "ensemble", {k: 1 << 30 for k in ["__format__", "__members__"] + [
        f"member{i}.{n}" for i in range(2) for n in lenet_fast.model._file_limits()]})
    cases = {
        "beyond its 1 members": dict(arrays, __members__=np.array(1)),
        "an ensemble of 0 models": dict(arrays, __members__=np.array(0)),
        "an ensemble of 99 models": dict(arrays, __members__=np.array(99)),
        "ensemble format 7": dict(arrays, __format__=np.array(7)),
        "no format version or member count": {k: v for k, v in arrays.items() if k != "__members__"},
        r"member 1\).*parameters": {k: v for k, v in arrays.items() if k != "member1.c1.weight"},
    }
    for message, content in cases.items():
        with pytest.raises(ValueError, match=message):
            Ensemble.load(crafted(tmp_path, content))
    with pytest.raises(ValueError, match="not a lenet_fast ensemble file"):
        Ensemble.load(crafted(tmp_path, dict(arrays, **{"member40.c1.weight": np.zeros(3, np.float32)})))
    with pytest.raises(ValueError, match="not a lenet_fast ensemble file"):  # a model file is not one
        members[0].save(tmp_path / "m.npz")
        Ensemble.load(tmp_path / "m.npz")


def test_bad_arguments(members, digits):
    with pytest.raises(ValueError, match="at least one model"):
        Ensemble([])
    with pytest.raises(TypeError, match=r"models\[1\] is not a LeNet5"):
        Ensemble([members[0], "modern"])
    with pytest.raises(TypeError, match="sequence of LeNet5 models"):
        Ensemble(3)
    with pytest.raises(ValueError, match="at most 32"):
        Ensemble(members[:1] * 33)
    with pytest.raises(ValueError, match="reject must be"):
        Ensemble(members).predict(digits[0], reject=2)
    with pytest.raises(ValueError, match="labels"):
        Ensemble(members).evaluate(digits[0], digits[1][:3])


def test_the_pretrained_ensemble(digits):
    if not weights_path("ensemble").is_file():
        pytest.skip("no pretrained ensemble in this installation")
    ensemble = lenet_fast.pretrained("ensemble")
    assert isinstance(ensemble, Ensemble) and len(ensemble) == 5
    x, y = digits
    assert ensemble.score(x, y) >= 0.99
    again = lenet_fast.pretrained("ensemble")  # a fresh copy each time
    assert all(a is not b for a, b in zip(again, ensemble))


@pytest.mark.parametrize("reject", [None, 0.0, 0.999])
def test_predict_with_proba_is_predict_and_predict_proba_from_one_pass(reject, digits):
    x = digits[0]
    for model in (lenet_fast.pretrained("classic"), lenet_fast.pretrained("modern"), lenet_fast.pretrained("ensemble")):
        classes, proba = model.predict_with_proba(x, reject=reject)
        np.testing.assert_array_equal(classes, model.predict(x, reject=reject))
        np.testing.assert_array_equal(proba, model.predict_proba(x))
        if reject == 0.999:
            assert (classes == -1).any() and (classes >= 0).mean() > 0.5  # the refusing path is exercised
