"""Threads: eight Python threads predicting with one model get exactly the serial results and run in
parallel (the kernels release the GIL); training excludes every other use of the model from other threads
(docs/architecture.md#threads): calls made during fit are refused with RuntimeError, calls already running
when fit starts are finished first; set_params is atomic for predictions running in other threads.
"""
import threading
import time

import numpy as np
import pytest

import lenet_fast

DIGITS = np.random.default_rng(5).integers(0, 256, (300, 28, 28), dtype=np.uint8)
LABELS = np.arange(300) % 10


@pytest.mark.parametrize("variant", ["classic", "modern"])
def test_eight_threads_share_one_model_exactly(variant):
    """Eight threads, released together, each run their own mix of batch sizes (single images, part and
    whole blocks) several times; every result equals the serial one to the bit."""
    model = lenet_fast.LeNet5(variant, seed=2)
    jobs = [[(s, s + n) for s, n in zip(range(t, 300, 37), (1, 3, 8, 17, 64, 5, 40, 2))] for t in range(8)]
    want = {job: (model.forward(DIGITS[job[0]:job[1]]), model.predict_proba(DIGITS[job[0]:job[1]]))
            for js in jobs for job in js}
    start = threading.Barrier(8)
    wrong, errors = [], []

    def work(js):
        try:
            start.wait()
            for _ in range(3):
                for a, b in js:
                    f, p = model.forward(DIGITS[a:b]), model.predict_proba(DIGITS[a:b])
                    if not (np.array_equal(f, want[a, b][0]) and np.array_equal(p, want[a, b][1])):
                        wrong.append((a, b))
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(js,)) for js in jobs]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert errors == [] and wrong == []


def test_predict_releases_the_gil():
    """While one thread is inside a long prediction (a 16,384-image batch on one OpenMP thread: about
    0.3 s), the main thread runs Python: it counts to 200,000 (some milliseconds) and finds the prediction
    still running. Were the GIL held, the count could only start once the prediction returned, and the
    predicting thread would then take the GIL back (every 5 ms) and say it finished before the count did."""
    model = lenet_fast.LeNet5("classic")
    batch = np.resize(DIGITS, (16384, 28, 28))
    inside, finished = threading.Event(), threading.Event()

    def predict():
        lenet_fast.set_num_threads(1)  # this thread's own setting
        inside.set()
        model.predict(batch)
        finished.set()

    t = threading.Thread(target=predict)
    t.start()
    inside.wait()
    count = 0
    while count < 200_000:
        count += 1
    overlapped = not finished.is_set()
    t.join()
    assert overlapped, "the main thread could not run Python while the prediction ran: the GIL is held"


def in_fit(model, during, **kw):
    """Run model.fit in a thread; during() is called from the main thread while that thread is inside fit
    (its augment hook holds it there). Returns what during returned and the history."""
    inside, proceed, out = threading.Event(), threading.Event(), {}

    def augment(x, rng):
        inside.set()
        proceed.wait(10)
        return x

    def train():
        out["history"] = model.fit(DIGITS[:64], LABELS[:64], epochs=1, batch_size=16, optimizer="sgd",
                                   verbose=0, augment=augment, **kw)

    t = threading.Thread(target=train)
    t.start()
    assert inside.wait(10)
    try:
        result = during()
    finally:
        proceed.set()
        t.join()
    return result, out.get("history")


@pytest.mark.parametrize("call", ["predict", "predict_proba", "forward", "gradient", "save", "set_params",
                                  "fit"])
def test_every_use_from_another_thread_during_fit_is_refused(call, tmp_path):
    model = lenet_fast.LeNet5("modern")
    calls = {
        "predict": lambda: model.predict(DIGITS[:2]),
        "predict_proba": lambda: model.predict_proba(DIGITS[:2]),
        "forward": lambda: model.forward(DIGITS[:2]),
        "gradient": lambda: model.gradient(DIGITS[:2], LABELS[:2]),
        "save": lambda: model.save(tmp_path / "m.npz"),
        "set_params": lambda: model.set_params(dict(model.params)),
        "fit": lambda: model.fit(DIGITS[:8], LABELS[:8], verbose=0),
    }

    def during():
        with pytest.raises(RuntimeError, match="being trained"):
            calls[call]()
        return True

    refused, history = in_fit(model, during)
    assert refused and len(history) == 1  # the training went on
    calls[call]()  # and after fit returns, the call works
    assert not (tmp_path / "m.npz").exists() or lenet_fast.load(tmp_path / "m.npz").variant == "modern"


def test_fit_waits_for_predictions_already_running():
    """A prediction running when fit starts is finished on the old weights: fit changes nothing before it
    returns, and its answer is the one the weights before training give."""
    model = lenet_fast.LeNet5("classic", seed=3)
    batch = np.resize(DIGITS, (8192, 28, 28))
    want = model.forward(batch)
    inside, times, out = threading.Event(), {}, {}

    def predict():
        lenet_fast.set_num_threads(1)
        inside.set()
        out["forward"] = model.forward(batch)
        times["predicted"] = time.perf_counter()

    def augment(x, rng):
        times["training"] = time.perf_counter()
        return x

    t = threading.Thread(target=predict)
    t.start()
    inside.wait()
    time.sleep(0.01)  # well inside the prediction (about 0.15 s)
    model.fit(DIGITS[:32], LABELS[:32], batch_size=8, optimizer="sgd", verbose=0, augment=augment)
    t.join()
    assert times["predicted"] <= times["training"]
    assert np.array_equal(out["forward"], want)
    assert not np.array_equal(model.forward(batch[:50]), want[:50])  # and training did change the weights


@pytest.mark.parametrize("variant", ["classic", "modern"])
def test_set_params_is_atomic_for_predictions_in_other_threads(variant):
    """One thread predicts a batch over and over while another alternates set_params between two weight
    sets, for about a second: every output is exactly the output of one set or the other (never a mixture
    of old and new weights), and no prediction is refused."""
    model = lenet_fast.LeNet5(variant, seed=1)
    sets = [dict((k, v.copy()) for k, v in lenet_fast.LeNet5(variant, seed=s).params.items()) for s in (1, 2)]
    batch = DIGITS[:64]
    want = []
    for params in sets:
        model.set_params(params)
        want.append(model.forward(batch))
    assert not np.array_equal(want[0], want[1])
    stop, seen, errors = threading.Event(), [0, 0, 0], []  # outputs of set 0, set 1, a mixture
    # The swapper lets a prediction finish after each swap before the next (predictions still overlap the
    # swaps): on a loaded machine a free-running swapper can phase-lock with the predictor so that every
    # prediction happens to find the same set in place, and the test would see only one of them.
    predicted = threading.Semaphore(0)

    def predict():
        try:
            while not stop.is_set():
                out = model.forward(batch)
                seen[next((i for i, w in enumerate(want) if np.array_equal(out, w)), 2)] += 1
                predicted.release()
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    def swap():
        try:
            i = 0
            while not stop.is_set():
                model.set_params(sets[i % 2])
                i += 1
                predicted.acquire(timeout=0.1)
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=predict), threading.Thread(target=swap)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join(10)
    assert errors == [] and not any(t.is_alive() for t in threads)
    assert seen[2] == 0, f"{seen[2]} of {sum(seen)} outputs mixed old and new weights"
    assert seen[0] > 0 and seen[1] > 0, seen  # both sets were in place for some predictions


def test_fit_waits_for_a_set_params_running():
    """fit started while another thread's set_params copies waits for the copy, then trains from the new
    weights. (set_params while another thread is inside fit is refused: the test above.)"""
    model = lenet_fast.LeNet5("modern", seed=1)
    new = dict((k, v.copy()) for k, v in lenet_fast.LeNet5("modern", seed=2).params.items())
    copy = lenet_fast.LeNet5("modern", seed=1)
    copy.set_params(new)
    expected = copy.fit(DIGITS[:64], LABELS[:64], batch_size=16, optimizer="sgd", verbose=0)
    with model.guard.updating():  # as set_params holds it while copying
        for name, value in new.items():
            model.params[name][...] = value
        out = {}
        t = threading.Thread(target=lambda: out.setdefault("history", model.fit(
            DIGITS[:64], LABELS[:64], batch_size=16, optimizer="sgd", verbose=0)))
        t.start()
        t.join(0.2)
        assert t.is_alive()  # waiting for the update
    t.join(10)
    assert [r["loss"] for r in out["history"]] == [r["loss"] for r in expected]
    assert np.array_equal(model.params_vector, copy.params_vector)
