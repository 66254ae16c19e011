"""lenet_fast/history.py: fit's History (records, columns, best epoch) and EarlyStopping (when it stops,
the weights it restores, its checks, and exact resumption from a checkpoint)."""
import json
import struct

import numpy as np
import pytest

import lenet_fast
from lenet_fast import EarlyStopping, History
from lenet_fast.datasets import synthetic_digits


def records(values, key="val_error"):
    return [{"epoch": i + 1, "loss": 1.0 / (i + 1), "error": 0.5, key: v} for i, v in enumerate(values)]


def test_history_is_the_list_of_records_with_columns():
    h = History(records([0.3, 0.2, 0.25]))
    assert h == records([0.3, 0.2, 0.25]) and len(h) == 3 and h[1]["val_error"] == 0.2
    assert json.loads(json.dumps(h)) == records([0.3, 0.2, 0.25])  # serializes as the records
    np.testing.assert_array_equal(h["val_error"], [0.3, 0.2, 0.25])
    assert h["val_error"].dtype == np.float64 and h.columns == ["epoch", "loss", "error", "val_error"]
    assert h.best_epoch() == 2 and h.best_epoch("loss") == 3 and h[:2] == records([0.3, 0.2])
    with pytest.raises(KeyError, match="columns: epoch, loss, error, val_error"):
        h["accuracy"]
    with pytest.raises(ValueError, match="one of the history's columns"):
        h.best_epoch("accuracy")
    with pytest.raises(ValueError, match="empty"):
        History().best_epoch()
    assert History(records([0.1, 0.1, 0.1])).best_epoch() == 1  # the first of ties


def test_early_stopping_rule():
    rule = EarlyStopping(patience=2)
    assert rule.best(records([])) is None and not rule.should_stop(records([]))
    assert not rule.should_stop(records([0.3, 0.2, 0.25]))  # one epoch without progress
    assert rule.should_stop(records([0.3, 0.2, 0.25, 0.21]))  # two
    assert not rule.should_stop(records([0.3, 0.2, 0.25, 0.19]))
    # min_delta: an improvement must exceed it
    assert EarlyStopping(patience=2, min_delta=0.05).should_stop(records([0.3, 0.2, 0.17, 0.16]))
    assert EarlyStopping(monitor="loss", patience=1).best(records([0.3, 0.2])) == 2


@pytest.mark.parametrize("kwargs,message", [
    (dict(monitor="accuracy"), "monitor must be one of 'val_error', 'error', 'loss'"),
    (dict(patience=0), "patience must be a positive integer"),
    (dict(patience=2.5), "patience must be a positive integer"),
    (dict(patience=True), "patience must be a positive integer"),
    (dict(min_delta=-0.1), "min_delta must be a finite number >= 0"),
    (dict(min_delta=float("nan")), "min_delta must be a finite number >= 0"),
    (dict(restore_best=1), "restore_best must be True or False"),
])
def test_early_stopping_refuses_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EarlyStopping(**kwargs)


@pytest.fixture(scope="module")
def data():
    x, y = synthetic_digits(400, seed=21)
    return (x[:300], y[:300]), (x[300:], y[300:])


def run(data, epochs=12, **kwargs):
    (x, y), validation = data
    model = lenet_fast.LeNet5("modern", seed=3)
    history = model.fit(x, y, epochs=epochs, batch_size=16, validation=validation, verbose=0, seed=5, **kwargs)
    return model, history


def test_fit_returns_a_history(data):
    _, history = run(data, epochs=2)
    assert isinstance(history, History) and [r["epoch"] for r in history] == [1, 2]
    assert history.stopped_early is None and history["val_error"].shape == (2,)


def test_early_stopping_stops_and_restores_the_best_weights(data):
    rule = EarlyStopping(patience=1, min_delta=0.02)
    model, history = run(data, early_stopping=rule)
    assert history.stopped_early == len(history) < 12  # it stopped before the budget
    best = rule.best(history)
    assert history.stopped_early - best == 1
    # the weights are those of the best epoch: a run of exactly that many epochs ends with them
    same, _ = run(data, epochs=best)
    assert np.array_equal(model.params_vector, same.params_vector)
    kept, _ = run(data, epochs=12, early_stopping=EarlyStopping(patience=1, min_delta=0.02, restore_best=False))
    last, _ = run(data, epochs=history.stopped_early)
    assert np.array_equal(kept.params_vector, last.params_vector)
    assert not np.array_equal(kept.params_vector, model.params_vector)


def test_early_stopping_resumes_exactly(data, tmp_path):
    path = tmp_path / "run.npz"
    rule = EarlyStopping(patience=1, min_delta=0.02)
    whole, history = run(data, early_stopping=rule)
    stopped = history.stopped_early
    # interrupted one epoch before the stop, then resumed
    _, first = run(data, epochs=stopped - 1, early_stopping=rule, checkpoint=path)
    assert first.stopped_early is None
    resumed, rest = run(data, early_stopping=rule, resume=path, checkpoint=path)
    assert rest.stopped_early == stopped
    np.testing.assert_array_equal(rest["val_error"], history["val_error"])  # the records but their seconds
    np.testing.assert_array_equal(rest["loss"], history["loss"])
    assert np.array_equal(resumed.params_vector, whole.params_vector)
    # resuming a run that had stopped does no work and gives the restored weights
    again, done = run(data, early_stopping=rule, resume=path)
    assert done.stopped_early == stopped and np.array_equal(again.params_vector, whole.params_vector)
    # and the checkpoint is a model file of the last epoch's weights
    assert lenet_fast.load(path).params_vector.shape == whole.params_vector.shape


def test_early_stopping_checks_before_any_work(data):
    (x, y), _ = data
    model = lenet_fast.LeNet5("modern", seed=3)
    before = model.params_vector.copy()
    with pytest.raises(ValueError, match="needs validation"):
        model.fit(x, y, epochs=3, verbose=0, early_stopping=EarlyStopping())
    with pytest.raises(TypeError, match="EarlyStopping or None"):
        model.fit(x, y, epochs=3, verbose=0, early_stopping=3)
    assert np.array_equal(model.params_vector, before)
    history = model.fit(x, y, epochs=2, verbose=0, early_stopping=EarlyStopping(monitor="loss", patience=5))
    assert history.stopped_early is None and len(history) == 2


@pytest.mark.usefixtures("needs_matplotlib")
@pytest.mark.parametrize("validated", [True, False])
def test_plot_draws_the_curves_to_a_png(tmp_path, validated):
    rows = [{"epoch": e, "loss": 1.0 / e, "error": 0.1 / e, "lr": 0.01, "seconds": 1.0} for e in (1, 2, 3)]
    if validated:
        for r, v in zip(rows, (0.08, 0.05, 0.06)):
            r["val_error"] = v
    out = tmp_path / "curves.png"
    assert History(rows).plot(out) == str(out)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width > 400 and height > 200


def test_plot_refuses_an_empty_history_and_a_missing_folder(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        History().plot(tmp_path / "curves.png")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        History([{"epoch": 1, "loss": 1.0, "error": 0.5}]).plot(tmp_path / "no" / "curves.png")
    assert list(tmp_path.iterdir()) == []
