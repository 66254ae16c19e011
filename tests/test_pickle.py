"""Models that pickle and copy (LeNet5.__reduce__ in lenet_fast/model.py): the copy keeps the variant and
every parameter, predicts bit-identically, shares nothing with the original, is checked on the way back in
as load() checks a file, and is refused while another thread trains the model."""
import copy
import multiprocessing
import pickle
import threading
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

import lenet_fast
from lenet_fast.model import FORMAT_VERSION


def trained(variant):
    """A model whose weights differ from any fresh initialisation (a short fit on random digits)."""
    rng = np.random.default_rng(1)
    model = lenet_fast.LeNet5(variant, seed=3)
    model.fit(rng.integers(0, 256, (64, 28, 28), dtype=np.uint8), rng.integers(0, 10, 64), epochs=1,
              batch_size=8, optimizer="sgd", verbose=0)
    return model


@pytest.fixture(scope="module", params=["classic", "modern"])
def model(request):
    return trained(request.param)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (20, 28, 28), dtype=np.uint8)


def assert_same(a, b, images):
    assert type(b) is lenet_fast.LeNet5 and b.variant == a.variant
    assert list(b.params) == list(a.params)
    for name in a.params:
        assert np.array_equal(a.params[name], b.params[name]), name
    np.testing.assert_array_equal(b.forward(images), a.forward(images))  # bit-identical
    np.testing.assert_array_equal(b.predict(images), a.predict(images))


@pytest.mark.parametrize("how", ["pickle", "copy", "deepcopy"])
def test_copies_keep_variant_and_weights_and_predict_the_same(model, images, how):
    clone = {"pickle": lambda m: pickle.loads(pickle.dumps(m, protocol=pickle.HIGHEST_PROTOCOL)),
             "copy": copy.copy, "deepcopy": copy.deepcopy}[how](model)
    assert clone is not model
    assert_same(model, clone, images)
    # nothing shared: changing the copy leaves the original as it was
    before = model.params_vector.copy()
    clone.params_vector[...] = 0
    assert np.array_equal(model.params_vector, before)
    assert clone.guard is not model.guard


def test_a_copy_trains_on_its_own(images):
    model = trained("modern")
    clone = copy.deepcopy(model)
    rng = np.random.default_rng(2)
    clone.fit(rng.integers(0, 256, (32, 28, 28), dtype=np.uint8), rng.integers(0, 10, 32), epochs=1, verbose=0)
    assert not np.array_equal(clone.params_vector, model.params_vector)


def test_the_pickle_holds_plain_arrays_not_engine_objects(model):
    data = pickle.dumps(model)
    assert b"lenet_fast._core" not in data and b"Network" not in data and b"Guard" not in data
    assert b"lenet_fast.model" in data


def test_unpickling_checks_what_it_reads_like_load(model):
    func, (arrays, source) = model.__reduce__()
    bad = dict(arrays, **{"c1.weight": np.full_like(arrays["c1.weight"], np.nan)})
    with pytest.raises(ValueError, match="pickled LeNet5"):
        func(bad, source)
    with pytest.raises(ValueError, match="c1.weight"):
        func(dict(arrays, **{"c1.weight": arrays["c1.weight"][:1]}), source)
    with pytest.raises(ValueError, match="format 99"):
        func(dict(arrays, __format__=np.array(99)), source)
    with pytest.raises(ValueError, match="unknown variant"):
        func(dict(arrays, __variant__=np.array("tiny")), source)
    with pytest.raises(ValueError, match="missing"):
        func({k: v for k, v in arrays.items() if k != "f6.bias"}, source)
    with pytest.raises(ValueError, match="not a lenet_fast model"):
        func([1, 2, 3], source)
    assert int(arrays["__format__"]) == FORMAT_VERSION


def test_pickling_during_fit_in_another_thread_is_refused():
    model = lenet_fast.LeNet5("modern", seed=0)
    outcome = []

    def pickle_from_another_thread():
        try:
            pickle.dumps(model)
            outcome.append("pickled")
        except RuntimeError as exc:
            outcome.append(str(exc))

    def augment(x, rng):  # runs inside fit, while fit holds the model as its writer
        other = threading.Thread(target=pickle_from_another_thread)
        other.start()
        other.join(timeout=30)
        return x

    rng = np.random.default_rng(0)
    model.fit(rng.integers(0, 256, (8, 28, 28), dtype=np.uint8), rng.integers(0, 10, 8), epochs=1, verbose=0,
              augment=augment)
    assert len(outcome) == 1 and "being trained in another thread" in outcome[0], outcome
    pickle.loads(pickle.dumps(model))  # after fit returns, it pickles


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_a_model_sent_to_a_worker_process_predicts_the_same(model, images, method):
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} start method here")
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context(method)) as pool:
        # a bound method: the model itself goes to the worker, pickled, and predicts there
        there = pool.submit(model.forward, images).result(timeout=120)
    np.testing.assert_array_equal(there, model.forward(images))
