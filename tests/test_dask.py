"""lenet_fast.dask (the [dask] extra) on a real distributed.LocalCluster: two worker processes on 127.0.0.1, one
thread each, started once for the module. Predictions over dask arrays and over a folder of image files (some
corrupt) equal a single-process run's to the bit; a worker killed during a job leaves the results complete
and right; a model file that only the client can read is a clear error; fit_many trains what local fits
train. The tests that need the cluster are marked `cluster` (deselect them with -m "not cluster")."""
import csv
import os
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import lenet_fast
from lenet_fast import Ensemble, LeNet5, load_mnist, pretrained

pytest.importorskip("dask.array", reason="lenet_fast.dask needs dask[array]: pip install \"lenet_fast[dask]\"")
pytest.importorskip("distributed", reason="lenet_fast.dask needs distributed: pip install \"lenet_fast[dask]\"")
import dask  # noqa: E402 (after the skip)
import dask.array as da  # noqa: E402

from lenet_fast import dask as on_dask  # noqa: E402
from lenet_fast.__main__ import main  # noqa: E402

cluster = pytest.mark.cluster


@pytest.fixture(scope="module")
def client():
    with on_dask.cluster(workers=2, timeout=60) as c:
        c.wait_for_workers(2, timeout=60)
        yield c


@pytest.fixture(scope="module")
def digits(mnist_subset):
    images, labels = load_mnist(mnist_subset, "test")
    return images[:600], labels[:600]


@pytest.fixture(scope="module")
def classic():
    return pretrained("classic")


@pytest.fixture(scope="module")
def scans(tmp_path_factory, digits):
    """A folder of 30 PNG digits and four files read_digit refuses: text named .png, a truncated PNG, an empty
    file, a blank page."""
    Image = pytest.importorskip("PIL.Image")
    folder = tmp_path_factory.mktemp("scans")
    for i, image in enumerate(digits[0][:30]):
        Image.fromarray(255 - image).resize((56, 56)).save(folder / f"digit_{i:02d}.png")
    (folder / "a_text.png").write_text("not an image")
    (folder / "b_truncated.png").write_bytes((folder / "digit_00.png").read_bytes()[:60])
    (folder / "c_empty.png").write_bytes(b"")
    Image.fromarray(np.full((40, 40), 255, np.uint8)).save(folder / "d_blank.png")
    return folder


def graph_bytes(collection):
    """The pickled size of a dask collection's graph: what the client sends the scheduler."""
    return len(pickle.dumps(dict(collection.__dask_graph__())))


@cluster
def test_predictions_on_the_cluster_equal_single_process_ones(client, digits, classic):
    images = digits[0]
    x = da.from_array(images, chunks=(64, 28, 28))  # 10 chunks, the last part full
    y = on_dask.predict(x, classic, client=client)
    assert y.dtype == np.int64 and y.shape == (600,) and y.chunks == (x.chunks[0],)
    got = client.compute(y).result()
    assert np.array_equal(got, classic.predict(images))
    assert (got == digits[1]).mean() > 0.95  # a real model on real digits
    proba = client.compute(on_dask.predict_proba(x, classic, client=client)).result()
    assert proba.dtype == np.float32 and np.array_equal(proba, classic.predict_proba(images))
    rejected = client.compute(on_dask.predict(x, classic, client=client, reject=0.99)).result()
    assert np.array_equal(rejected, classic.predict(images, reject=0.99)) and (rejected == -1).any()
    # the model is scattered, not in the graph: what predict adds to the input's graph is far smaller than it
    assert graph_bytes(y) - graph_bytes(x) < 20_000 < len(pickle.dumps(classic))


@cluster
def test_32x32_normalized_floats_and_an_ensemble(client, digits):
    rng = np.random.default_rng(0)
    field = rng.uniform(-0.1, 1.175, (200, 32, 32)).astype(np.float32)
    modern = pretrained("modern")
    got = on_dask.predict_proba(da.from_array(field, chunks=(50, 16, 32)), modern, client=client, normalized=True)
    assert np.array_equal(client.compute(got).result(), modern.predict_proba(field, normalized=True))
    ensemble = Ensemble([modern, LeNet5("modern", seed=3)])
    got = on_dask.predict(da.from_array(digits[0][:200], chunks=70), ensemble, client=client)
    assert np.array_equal(client.compute(got).result(), ensemble.predict(digits[0][:200]))


def test_without_a_client_the_active_scheduler_runs_it_and_the_model_is_in_the_graph_once(digits, classic):
    x = da.from_array(digits[0], chunks=(75, 28, 28))  # 8 chunks
    y = on_dask.predict(x, classic)
    model_keys = [k for k in y.__dask_graph__() if str(k).startswith("lenet_fast-model-")]
    assert len(model_keys) == 1
    size = len(pickle.dumps(classic))
    assert size < graph_bytes(y) - graph_bytes(x) < 2 * size  # once, not once per chunk
    for scheduler in ("synchronous", "threads"):
        with dask.config.set(scheduler=scheduler):
            assert np.array_equal(y.compute(), classic.predict(digits[0]))
    numpy_input = on_dask.predict_proba(digits[0], classic)  # a NumPy array is cut into CHUNK-image chunks
    assert np.array_equal(numpy_input.compute(scheduler="synchronous"), classic.predict_proba(digits[0]))


def test_bad_arguments_fail_at_once(classic):
    with pytest.raises(ValueError, match="N first"):
        on_dask.predict(da.zeros((28, 28), dtype=np.uint8), classic)
    with pytest.raises(ValueError, match=r"\(N, 28, 28\)"):
        on_dask.predict(da.zeros((4, 20, 20), dtype=np.uint8), classic)
    with pytest.raises(TypeError, match="normalized=True"):
        on_dask.predict(da.zeros((4, 32, 32), dtype=np.uint8), classic, normalized=True)
    with pytest.raises(ValueError, match=r"normalized input must be"):  # the model's own check, on no images
        on_dask.predict_proba(da.zeros((4, 28, 28), dtype=np.float32), classic, normalized=True)
    with pytest.raises(TypeError, match="model must be"):
        on_dask.predict(da.zeros((4, 28, 28), dtype=np.uint8), "classic".encode())
    with pytest.raises(TypeError, match="model must be"):
        on_dask.predict_files([], None)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        on_dask.predict(da.zeros((4, 28, 28), dtype=np.uint8), classic, reject=2)
    with pytest.raises(ValueError, match="batch"):
        on_dask.predict_files([], classic, batch=0)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        on_dask.predict_files([], classic, out="/no/such/folder/out.csv")
    for arguments in ({}, {"scheduler": "tcp://127.0.0.1:1", "workers": 2}, {"workers": 0}):
        with pytest.raises(ValueError, match="scheduler address or a number|positive integer"):
            with on_dask.cluster(**arguments):
                pass
    with pytest.raises(TypeError, match="no LeNet5 option or fit argument 'epoch'"):
        on_dask.fit_many([{"epoch": 1}], np.zeros((1, 28, 28), np.uint8), [0])


def test_a_missing_extra_is_named(monkeypatch, classic, tmp_path):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed now raises ImportError
    with pytest.raises(ImportError, match=r'pip install "lenet_fast\[dask\]"'):
        on_dask.predict(np.zeros((2, 28, 28), np.uint8), classic)
    monkeypatch.undo()
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ImportError, match="needs pyarrow"):  # before any file is read
        on_dask.predict_files(tmp_path / "nothing", classic, out=tmp_path / "t.parquet")


def test_lenet_fast_and_its_local_predict_never_import_dask():
    code = ("import sys\nfrom lenet_fast.__main__ import main\nfrom lenet_fast.images import sample_paths\n"
            "main(['predict', str(sample_paths()[0])])\n"
            "print(sorted(m for m in ('dask', 'distributed', 'lenet_fast.dask') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"


def local_rows(model, paths):
    """What predict_files must give for paths, computed here with read_digits and the model."""
    images, _, failures = lenet_fast.read_digits(paths, errors="report")
    bad = {i for i, _, _ in failures}
    good = iter(zip(model.predict(images).tolist(), model.predict_proba(images).max(axis=1).tolist()))
    return [(str(p), None, None) if i in bad else (str(p),) + next(good) for i, p in enumerate(paths)]


@cluster
def test_files_on_the_cluster_equal_single_process_reading_bad_files_are_rows(client, scans, classic, tmp_path):
    paths = sorted(scans.iterdir())
    out = tmp_path / "table.csv"
    rows = on_dask.predict_files(str(scans / "*.png"), classic, out=out, client=client, batch=7)
    assert [(r["path"], r["digit"], r["confidence"]) for r in rows] == local_rows(classic, paths)
    errors = {os.path.basename(r["path"]): r["error"] for r in rows if r["error"]}
    assert sorted(errors) == ["a_text.png", "b_truncated.png", "c_empty.png", "d_blank.png"]
    assert all(name in error for name, error in errors.items())  # each names its file
    assert "contains no digit" in errors["d_blank.png"]
    with open(out, newline="") as f:
        table = list(csv.DictReader(f))
    assert [t["path"] for t in table] == [str(p) for p in paths]
    assert [t["digit"] for t in table] == ["" if r["digit"] is None else str(r["digit"]) for r in rows]
    assert [float(t["confidence"] or "nan") for t in table] == pytest.approx(
        [np.nan if r["confidence"] is None else r["confidence"] for r in rows], nan_ok=True, rel=1e-15)
    # a list of a folder, a file, a pattern matching nothing and a missing file: each in its place
    rows = on_dask.predict_files([scans, paths[5], str(scans / "*.jpg"), scans / "gone.png"], classic, client=client)
    assert [r["path"] for r in rows] == [str(p) for p in paths] + [str(paths[5]), str(scans / "*.jpg"),
                                                                    str(scans / "gone.png")]
    assert "no file matches" in rows[-2]["error"] and "gone.png" in rows[-1]["error"]
    assert rows[-3]["digit"] == rows[5]["digit"] is not None


def test_files_without_a_client_and_parquet(scans, classic, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    paths = sorted(scans.iterdir())
    with dask.config.set(scheduler="threads"):
        rows = on_dask.predict_files(scans, classic, out=tmp_path / "t.parquet", batch=10)
    assert [(r["path"], r["digit"], r["confidence"]) for r in rows] == local_rows(classic, paths)
    assert pq.read_table(tmp_path / "t.parquet").to_pylist() == rows


def test_progress_without_a_client_is_dasks_bar_on_stderr(scans, classic, capsys):
    paths = sorted(scans.iterdir())[:3]
    with dask.config.set(scheduler="synchronous"):
        rows = on_dask.predict_files(paths, classic, progress=True)
    captured = capsys.readouterr()
    assert "100% Completed" in captured.err and captured.out == ""
    assert [r["path"] for r in rows] == [str(p) for p in paths]


@cluster
def test_a_worker_killed_during_a_job_leaves_the_results_complete_and_right(client, digits, classic):
    x = da.concatenate([da.from_array(digits[0], chunks=100)] * 40)  # 24,000 digits in 240 chunks
    y = client.persist(on_dask.predict(x, classic, client=client))
    futures = client.futures_of(y)
    pids = client.run(os.getpid)  # {worker address: pid}
    deadline = time.monotonic() + 30
    while not any(f.done() for f in futures):  # the job is under way: results held by the workers
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(next(iter(pids.values())), signal.SIGKILL)  # its nanny starts another; its results are lost
    got = client.compute(y).result(timeout=120)
    assert np.array_equal(got, classic.predict(np.concatenate([digits[0]] * 40)))
    client.wait_for_workers(2, timeout=60)  # the cluster whole again for the next tests
    assert set(client.run(os.getpid).values()).isdisjoint([next(iter(pids.values()))])


@cluster
def test_a_model_file_the_workers_cannot_read_is_a_clear_error(client, digits, classic, tmp_path):
    path = tmp_path / "mine.npz"
    classic.save(path)
    x = da.from_array(digits[0][:100], chunks=50)
    assert np.array_equal(client.compute(on_dask.predict(x, path, client=client)).result(),
                          classic.predict(digits[0][:100]))
    y = on_dask.predict(x, path, client=client)
    path.unlink()  # as a file on the client's disk only: the worker looks for it and does not find it
    with pytest.raises(FileNotFoundError, match=r"mine\.npz cannot be loaded on the worker .*every worker must read"):
        client.compute(y).result(timeout=60)
    path.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="cannot be loaded on the worker"):
        client.compute(on_dask.predict(x, path, client=client)).result(timeout=60)


def configs():
    return [{"variant": "classic", "seed": 0, "optimizer": "sgd", "batch_size": 16},
            {"variant": "modern", "seed": 1, "dropout": 0.25, "batch_size": 32}]


def local_fits(images, labels):
    fits = []
    for config in configs():
        model = LeNet5(config["variant"], seed=config["seed"], dropout=config.get("dropout", 0.0))
        history = model.fit(images, labels, epochs=2, seed=config["seed"], verbose=0,
                            **{k: config[k] for k in ("optimizer", "batch_size") if k in config})
        fits.append((model, history))
    return fits


@cluster
def test_fit_many_on_the_cluster_equals_local_fits(client, digits, restore_threads):
    images, labels = digits[0][:256], digits[1][:256]
    lenet_fast.set_num_threads(2)
    before = lenet_fast.get_num_threads()  # 1 on a build without OpenMP
    trained = on_dask.fit_many(configs(), images, labels, client=client, epochs=2)
    assert lenet_fast.get_num_threads() == before
    for (model, history), (expected, expected_history) in zip(trained, local_fits(images, labels)):
        assert model.variant == expected.variant and model.dropout == expected.dropout
        assert np.array_equal(model.params_vector, expected.params_vector)
        assert [r["loss"] for r in history] == [r["loss"] for r in expected_history]
        assert not np.array_equal(model.params_vector, LeNet5(model.variant, seed=0).params_vector)


def test_fit_many_without_a_client_runs_each_on_one_thread_and_restores_it(digits, restore_threads):
    images, labels = digits[0][:128], digits[1][:128]
    lenet_fast.set_num_threads(2)
    before = lenet_fast.get_num_threads()  # 1 on a build without OpenMP
    with dask.config.set(scheduler="synchronous"):  # in this thread: its count must come back
        trained = on_dask.fit_many(configs(), images, labels, epochs=2)
    assert lenet_fast.get_num_threads() == before
    for (model, _), (expected, _) in zip(trained, local_fits(images, labels)):
        assert np.array_equal(model.params_vector, expected.params_vector)


@cluster
def test_the_command_line_on_an_existing_cluster(client, scans, tmp_path, capsys):
    out = tmp_path / "t.csv"
    status = main(["predict", "--scheduler", client.scheduler.address, str(scans / "*.png"), "--out", str(out),
                   "--quiet"])
    captured = capsys.readouterr()
    assert status == 1  # four bad files
    assert "30 of 34 files recognized" in captured.out and captured.err.count("lenet-fast: error:") == 4
    assert len(out.read_text().splitlines()) == 35
    assert main(["predict", "--workers", "2", str(scans)]) == 1  # no --out: refused before any cluster starts
    assert "take --out" in capsys.readouterr().err
