"""lenet_fast on a Dask cluster (the [dask] extra: dask and distributed): predictions over dask arrays and over
collections of image files, and several models trained at once (docs/dask.md).

The model travels to each worker once, never inside every task: with a distributed.Client it is scattered to
every worker (client.scatter(broadcast=True)) and the tasks take its future; without one it is one key of
the graph (named by a digest of its file entries), which each worker receives once and keeps while the
job runs. A model given as a file path is loaded by one task on a worker, whose result the others receive
the same way. Workers run the same engine on the same chunks, and the engine is bit-identical for any
thread count: results equal a single-process run's exactly.

dask and distributed are imported inside the functions that use them: lenet_fast itself never imports this
module, and `import lenet_fast.dask` works without them (each function then raises ImportError naming the
extra).
"""
import contextlib
import copy
import csv
import hashlib
import inspect
import os
import pickle
import socket
import sys

import numpy as np

from . import _core, storage, timing
from .command import message
from .ensemble import Ensemble
from .evaluation import CLASSES
from .images import expand_sources, in_place, read_digits
from .inputs import as_batch
from .model import LeNet5, load
from .predictor import Predictor, check_reject

EXTRA = 'pip install "lenet_fast[dask]"'
# Images per chunk when a NumPy array is given: 16,384 MNIST digits are 12.8 MB in and 128 KB of digits
# out, enough work per task that the scheduler's cost per task is small beside it, and enough tasks to keep
# every worker busy to the end (docs/dask.md#scaling-to-expect, benchmarks/results/dask-2026-12-03.md).
CHUNK = 16384
FILES_PER_TASK = 256  # image files read and predicted per task in predict_files
COLUMNS = ("path", "digit", "confidence", "error")
_MODEL_OPTIONS = frozenset(inspect.signature(LeNet5).parameters)
_FIT_ARGUMENTS = frozenset(inspect.signature(LeNet5.fit).parameters) - {"self", "images", "labels"}


def _dask():
    """The dask package, after checking that dask.array and distributed import; ImportError naming the
    extra otherwise."""
    try:
        import dask
        import dask.array  # noqa: F401 (the submodule, for dask.array below)
        import distributed  # noqa: F401 (the cluster's half of the extra)
    except ImportError as exc:
        raise ImportError(f"lenet_fast.dask needs dask[array] and distributed: {EXTRA} ({exc})") from exc
    return dask


@contextlib.contextmanager
def cluster(scheduler=None, workers=None, timeout=30):
    """A distributed.Client, closed on leaving the block: connected to the scheduler at address scheduler
    ("tcp://host:8786"), or to a new LocalCluster of workers worker processes, one thread each, on
    127.0.0.1 without a dashboard (closed too). Exactly one of the two; ValueError otherwise. timeout (s)
    bounds the connection and the start (OSError or TimeoutError when it runs out)."""
    _dask()
    from distributed import Client, LocalCluster
    if (scheduler is None) == (workers is None):
        raise ValueError("give a scheduler address or a number of local workers (one of the two)")
    if scheduler is not None:
        with Client(scheduler, timeout=timeout) as client:
            yield client
        return
    workers = _core.positive_int(workers, "workers", limit=None)
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, timeout=timeout) as local, Client(local, timeout=timeout) as client:
        yield client


def predict(array, model, client=None, normalized=False, reject=None):
    """The digits of a dask array of images, as a lazy (N,) int64 dask array: model.predict of each chunk.

    array: a dask.array (or a NumPy array, cut into chunks of CHUNK images) of shape (N, 28, 28),
    (N, 32, 32) or (N, 1, 32, 32), uint8 pixels or floats in [0, 1], or with normalized=True floats already
    in the paper's range; chunked along N as given (the image axes are rechunked whole). model: a LeNet5 or
    an Ensemble, or the path of a model file (LeNet5.save) that every worker can read. client: a
    distributed.Client to scatter the model to (compute the result with that client); None embeds the model
    once in the graph, for whichever scheduler computes it. reject as model.predict's (-1 for a refused image).

    TypeError or ValueError at once for a bad model, reject or array (shape, dtype); a model file that a
    worker cannot load raises, when computed, the OSError or ValueError saying which worker and why.
    """
    return _map_chunks(array, model, client, normalized, reject, proba=False)


def predict_proba(array, model, client=None, normalized=False):
    """The (N, 10) float32 probabilities of a dask array of images, lazily: model.predict_proba of each
    chunk. Arguments and errors as predict's."""
    return _map_chunks(array, model, client, normalized, None, proba=True)


def _map_chunks(array, model, client, normalized, reject, proba):
    dask = _dask()
    check_reject(reject)
    x = array if isinstance(array, dask.array.Array) else dask.array.from_array(
        np.asarray(array), chunks=(CHUNK,) + np.shape(array)[1:])
    if x.ndim not in (3, 4):
        raise ValueError(f"expected a batch of images, N first: (N, 28, 28), (N, 32, 32) or (N, 1, 32, 32); got "
                         f"shape {x.shape}")
    # a batch of no images, of the array's kind, through the same checks (the model's own when it is here):
    # a bad shape or dtype fails now, not on a worker
    empty = np.zeros((0,) + x.shape[1:], dtype=x.dtype)
    if _is_path(model):
        as_batch(empty, normalized)
    else:
        model.predict(empty, normalized=normalized)
    x = x.rechunk({axis: -1 for axis in range(1, x.ndim)})
    handle = _model_handle(model, client)
    dropped = list(range(2 if proba else 1, x.ndim))
    if proba:
        return x.map_blocks(_proba_chunk, handle, normalized, dtype=np.float32, drop_axis=dropped,
                            chunks=(x.chunks[0], (CLASSES,)), meta=np.empty((0, CLASSES), np.float32))
    return x.map_blocks(_digits_chunk, handle, normalized, reject, dtype=np.int64, drop_axis=dropped,
                        chunks=(x.chunks[0],), meta=np.empty((0,), np.int64))


def _digits_chunk(images, model, normalized, reject):
    return model.predict(images, normalized=normalized, reject=reject)


def _proba_chunk(images, model, normalized):
    return model.predict_proba(images, normalized=normalized)


def _model_handle(model, client):
    """What the tasks take for model: a future (with client) or a delayed key (without), made once per
    call; see the module docstring. TypeError for anything but a LeNet5, an Ensemble or a path (_is_path)."""
    dask = _dask()
    if _is_path(model):
        path = os.fspath(model)
        if client is not None:
            return client.submit(_load_model, path, pure=False)
        return dask.delayed(_load_model, pure=False)(path)
    if client is not None:
        return client.scatter(model, broadcast=True, hash=False)
    blob = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)  # the file's entries: a digest of the model
    name = f"lenet_fast-model-{hashlib.sha256(blob).hexdigest()[:32]}"
    return dask.delayed(model, name=name, traverse=False)


def _is_path(model):
    """Whether model is a model file's path (True) or a model (False: a LeNet5, its int8 form or an
    Ensemble); TypeError otherwise."""
    if isinstance(model, (str, os.PathLike)):
        return True
    if not isinstance(model, (Predictor, Ensemble)):
        raise TypeError(f"model must be a LeNet5, an Int8LeNet5, an Ensemble or a model file's path, got "
                        f"{type(model).__name__}")
    return False


def _load_model(path):
    """load(path) on a worker, its failure naming the worker (a file only the client's machine holds)."""
    try:
        return load(path)
    except (OSError, ValueError) as exc:
        raise type(exc)(f"the model file {path} cannot be loaded on the worker {socket.gethostname()} (pid "
                        f"{os.getpid()}): {message(exc)}; every worker must read it at this path, or pass the "
                        "loaded model, which is sent to each worker") from None


def predict_files(paths_or_glob, model, out=None, client=None, batch=FILES_PER_TASK, reject=None, progress=False):
    """Read and recognize image files on the cluster: one row per file, in order, as a list of dicts
    {"path": str, "digit": int, "confidence": float, "error": ""}; a file that cannot be read is the row
    {"path", "digit": None, "confidence": None, "error": why}, never a failed job.

    paths_or_glob: a glob pattern ("scans/**/*.png": recursive), a folder (its image files), a file, or a
    list of those, expanded here in order (each pattern's matches sorted): the workers read the files at
    the same paths (a shared file system). A pattern matching nothing or a folder without image files is
    an error row of its own. model, client and reject as predict's; batch: files per task. The digit is
    model.predict's (-1 refused, with reject), the confidence predict_proba's largest probability.

    out: also write the rows to this file: Parquet when it ends in .parquet (needs pyarrow), else CSV
    (header path,digit,confidence,error; an error row's digit and confidence empty). progress: with client, a
    tqdm bar on stderr (when tqdm is installed) counting finished tasks; without, dask's ProgressBar on
    stderr (which the local schedulers show).

    Checked before any work: ImportError for a .parquet out without pyarrow, FileNotFoundError when out's
    folder does not exist, ValueError for batch, TypeError or ValueError for model and reject.
    """
    dask = _dask()
    check_reject(reject)
    _is_path(model)
    batch = _core.positive_int(batch, "batch", limit=None)
    writer = None if out is None else _table_writer(out)
    sources, missing = _expand(paths_or_glob)
    handle = _model_handle(model, client) if sources else None
    groups = [sources[i : i + batch] for i in range(0, len(sources), batch)]
    if client is not None:
        futures = [client.submit(_read_and_predict, group, handle, reject, pure=False) for group in groups]
        results = _gather(futures, progress)
    else:
        tasks = [dask.delayed(_read_and_predict, pure=False)(group, handle, reject) for group in groups]
        results = _compute_locally(dask, tasks, progress)
    table = in_place([row for result in results for row in result], missing)
    if writer is not None:
        writer(table)
    return table


def _expand(paths_or_glob):
    """(the files to read, in order, as strings; {how many files come before it: [error rows]}) for
    predict_files' paths_or_glob (images.expand_sources; a missing file is the worker's error row)."""
    items = [paths_or_glob] if isinstance(paths_or_glob, (str, os.PathLike)) else list(paths_or_glob)
    sources, errors = expand_sources(items, patterns=True)
    return ([os.fspath(p) for p in sources],
            {i: [_error_row(name, exc) for name, exc in entries] for i, entries in errors.items()})


def _error_row(path, exc):
    return {"path": str(path), "digit": None, "confidence": None, "error": message(exc)}


def _read_and_predict(paths, model, reject):
    """predict_files' rows for one task's files (read_digits with errors="report", then the model)."""
    images, _, failures = read_digits(paths, errors="report")
    bad = {i: error for i, _, error in failures}
    digits, proba = model.predict_with_proba(images, reject=reject)
    confidence = proba.max(axis=1)
    good = iter(zip(digits.tolist(), confidence.tolist()))
    rows = []
    for i, path in enumerate(paths):
        if i in bad:
            rows.append(_error_row(path, bad[i]))
        else:
            digit, conf = next(good)
            rows.append({"path": path, "digit": digit, "confidence": conf, "error": ""})
    return rows


def _gather(futures, progress):
    """Each future's result, in order, gathered as they finish (a tqdm bar on stderr counting them, with
    progress, when tqdm is installed)."""
    from distributed import as_completed
    place = {future.key: i for i, future in enumerate(futures)}
    results = [None] * len(futures)
    bar = _bar(len(futures)) if progress else None
    try:
        for future, result in as_completed(futures, with_results=True):
            results[place[future.key]] = result
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return results


def _bar(total):
    """A tqdm bar of total tasks on stderr; None without tqdm."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc="files", unit="task", file=sys.stderr)


def _compute_locally(dask, tasks, progress):
    """dask.compute of the tasks on the active scheduler (dask's ProgressBar on stderr, with progress: it
    shows for the local schedulers)."""
    bar = contextlib.nullcontext()
    if progress:
        from dask.diagnostics import ProgressBar
        bar = ProgressBar(out=sys.stderr)
    with bar:
        return dask.compute(*tasks)


def _table_writer(out):
    """A function writing predict_files' rows to out, checked now: a .parquet out needs pyarrow (ImportError),
    out's folder must exist (FileNotFoundError)."""
    out = storage.in_existing_folder(out)
    if out.endswith(".parquet"):
        try:
            import pyarrow
            import pyarrow.parquet
        except ImportError:
            raise ImportError(f"{out}: writing Parquet needs pyarrow (pip install pyarrow); or name a .csv "
                              "file") from None

        def write(rows):
            schema = pyarrow.schema([("path", pyarrow.string()), ("digit", pyarrow.int64()),
                                     ("confidence", pyarrow.float64()), ("error", pyarrow.string())])
            pyarrow.parquet.write_table(pyarrow.Table.from_pylist(rows, schema=schema), out)
        return write

    def write(rows):
        with open(out, "w", newline="") as f:
            table = csv.DictWriter(f, fieldnames=COLUMNS)
            table.writeheader()
            table.writerows(rows)
    return write


def fit_many(configs, images, labels, client=None, **fit_args):
    """Train one model per config at once, each a task training single-threaded on a worker; returns
    [(model, history)] in the order of configs, each equal to a local run's to the bit.

    configs: dicts of LeNet5's options (variant, seed, activation, dropout, init) and fit's arguments
    (epochs, batch_size, optimizer, loss, ...): a hyper-parameter grid, or the seeds of an ensemble's
    members. "seed" is both the initialisation's and fit's (as lenet-fast train --seed). fit_args: fit
    arguments every config shares (a config's own win); verbose is 0 unless given. images, labels and
    fit_args (a validation=(images, labels), say) are sent to each worker once; each task trains on its own
    copy of the arguments (an optimizer instance is never shared). client: a distributed.Client, or None
    for the active scheduler (dask.config).

    TypeError for a config that is not a dict or names an unknown argument, ValueError for a bad LeNet5
    option, at once; fit's own errors are raised by the task when it runs (the first failing config's).
    """
    dask = _dask()
    unknown = set(fit_args) - _FIT_ARGUMENTS
    if unknown:
        raise TypeError(f"fit takes no argument {sorted(unknown)[0]!r}")
    tasks = []
    for i, config in enumerate(configs):
        if not isinstance(config, dict):
            raise TypeError(f"configs[{i}] must be a dict of LeNet5 options and fit arguments, got "
                            f"{type(config).__name__}")
        unknown = set(config) - _MODEL_OPTIONS - _FIT_ARGUMENTS
        if unknown:
            raise TypeError(f"configs[{i}]: no LeNet5 option or fit argument {sorted(unknown)[0]!r}")
        model = LeNet5(**{k: v for k, v in config.items() if k in _MODEL_OPTIONS})
        tasks.append((model, {k: v for k, v in config.items() if k in _FIT_ARGUMENTS}))
    shared = (images, labels, dict({"verbose": 0}, **fit_args))
    if client is not None:
        shared = client.scatter([shared], broadcast=True, hash=False)[0]
        return client.gather([client.submit(_fit_one, model, shared, own, pure=False) for model, own in tasks])
    shared = dask.delayed(shared, traverse=False)
    return list(dask.compute(*[dask.delayed(_fit_one, pure=False)(model, shared, own) for model, own in tasks]))


def _fit_one(model, shared, own):
    """(model, history): model.fit on shared's (images, labels) with shared's fit arguments updated by own,
    copied, on one thread (the caller's count restored after)."""
    images, labels, arguments = shared
    # each task's own copy of what holds state (an optimizer, a schedule, early stopping); the validation
    # arrays are only read
    arguments = {k: v if k == "validation" else copy.deepcopy(v) for k, v in dict(arguments, **own).items()}
    with timing.kernel_threads(1):
        history = model.fit(images, labels, **arguments)
    return model, history
