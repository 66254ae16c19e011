"""Fuzzing the public API: random shapes, dtypes, strides, byte orders, NaN and infinity, empty and huge
batches, random and damaged files. Each case must give the right answer or raise the documented exception
(ValueError or TypeError for bad input, MemoryError when memory runs out), never crash.

The right answer for an accepted batch is the model's answer on the same pixels given the plain way (a
C-contiguous uint8 or float32 array), which tests/test_model.py checks against the NumPy reference; here it
is checked against the reference too (the reference_forward fixture, tests/conftest.py). Examples are few
(the suite's time budget) and derandomized (tests/conftest.py); HYPOTHESIS_PROFILE=explore draws fresh ones.
"""
import gc
import io
import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import lenet_fast
from lenet_fast import _core, optim, paper
from lenet_fast.datasets import read_idx

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DTYPES = ["|u1", "|i1", "<u2", ">u2", "<i4", ">i8", "<f2", "<f4", ">f4", "<f8", ">f8", "|b1", "<c8"]
SPECIAL = [np.nan, np.inf, -np.inf, -0.0, 1.0, 1.5, -1e-3, 1e-45, 300.0, -1.0, 1e300]
MODELS = {v: lenet_fast.LeNet5(v, seed=7) for v in ("classic", "modern")}


def laid_out(a, layout):
    """a's values in another memory layout: Fortran order, every other element of a larger array, or
    reversed strides."""
    if layout == "fortran":
        return np.asfortranarray(a)
    if layout == "step":
        big = np.zeros(tuple(2 * s for s in a.shape), a.dtype)
        view = big[tuple(slice(None, None, 2) for _ in a.shape)]
        view[...] = a
        return view
    if layout == "reversed":
        return np.ascontiguousarray(a[tuple(slice(None, None, -1) for _ in a.shape)])[
            tuple(slice(None, None, -1) for _ in a.shape)]
    return a


@st.composite
def pixel_batches(draw):
    """(x, what the model takes: the batch as a C-contiguous (N, 1, H, W) uint8 or float32 array, or the
    exception expected)."""
    n = draw(st.integers(0, 4))
    size = draw(st.sampled_from([28, 32, 27]))
    form = draw(st.sampled_from(["one", "batch", "channels", "two channels"]))
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = {"one": (size, size), "batch": (n, size, size), "channels": (n, 1, size, size),
             "two channels": (n, 2, size, size)}[form]
    if dtype.kind in "ui":
        x = rng.integers(0, 256, size=shape).astype(dtype)
    else:
        x = rng.random(shape).astype(dtype)
    if x.size and draw(st.booleans()):  # one special value somewhere
        value = draw(st.sampled_from(SPECIAL))
        with np.errstate(invalid="ignore", over="ignore"):
            if dtype.kind in "uib":
                value = int(value) if np.isfinite(value) and -2**31 < value < 2**31 else 256
                if np.can_cast(np.min_scalar_type(value), dtype) or dtype.kind == "b":
                    x.reshape(-1)[rng.integers(x.size)] = value
            else:
                x.reshape(-1)[rng.integers(x.size)] = value
    x = laid_out(x, draw(st.sampled_from(["c", "fortran", "step", "reversed"])))
    # what inputs.as_batch and the Cython layer decide, written out independently
    if dtype.kind not in "uif":
        return x, TypeError
    if form == "two channels" or size == 27:
        return x, ValueError
    batch = x.reshape((-1, 1, size, size))
    if dtype.kind in "ui":
        if x.size and (x.min() < 0 or x.max() > 255):
            return x, ValueError
        return x, np.ascontiguousarray(batch, dtype=np.uint8)
    with np.errstate(over="ignore"):
        f = np.ascontiguousarray(batch, dtype=np.float32)
    if not np.isfinite(f).all() or (f.size and (f.min() < 0 or f.max() > 1)):
        return x, ValueError
    return x, f


@FUZZ
@given(case=pixel_batches(), variant=st.sampled_from(sorted(MODELS)))
def test_forward_predict_and_proba_on_any_batch(case, variant, reference_forward):
    x, want = case
    model = MODELS[variant]
    event("refused" if isinstance(want, type) else f"accepted, batch of {len(want)}")
    if isinstance(want, type):
        for method in (model.forward, model.predict, model.predict_proba):
            with pytest.raises(want):
                method(x)
        return
    out = model.forward(x)
    assert out.dtype == np.float32 and out.shape == (len(want), 10) and np.isfinite(out).all()
    assert np.array_equal(out, model.forward(want))  # the plain way, bit for bit
    if len(want):
        expect = reference_forward(model, want[:, 0])
        np.testing.assert_allclose(out, expect, rtol=1e-4, atol=1e-4 * np.abs(expect).max())
    assert np.array_equal(model.predict(x), model._classes(out))
    p = model.predict_proba(x)
    assert p.shape == out.shape and np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-5)


@FEW
@given(n=st.integers(0, 3), dtype=st.sampled_from(["<f2", "<f4", ">f4", ">f8", "|u1", "<i4"]),
       value=st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64), st.just(0.5)),
       four_d=st.booleans(), layout=st.sampled_from(["c", "fortran", "step"]))
def test_normalized_input(n, dtype, value, four_d, layout):
    """normalized=True takes any finite floats of (N, [1,] 32, 32), even outside the pixel range; integers
    are a TypeError, NaN or infinity (after conversion to float32) a ValueError."""
    model = MODELS["classic"]
    dtype = np.dtype(dtype)
    shape = (n, 1, 32, 32) if four_d else (n, 32, 32)
    with np.errstate(invalid="ignore", over="ignore"):
        x = laid_out(np.full(shape, value if dtype.kind == "f" else 3).astype(dtype), layout)
        f = np.ascontiguousarray(x.reshape(n, 1, 32, 32), dtype=np.float32)
    if dtype.kind != "f":
        with pytest.raises(TypeError):
            model.forward(x, normalized=True)
    elif n and not np.isfinite(f).all():
        with pytest.raises(ValueError, match="NaN or infinity"):
            model.forward(x, normalized=True)
    else:
        try:
            out = model.forward(x, normalized=True)
        except FloatingPointError:  # inputs near float32's limit overflow a layer: said, not NaN
            assert np.abs(f).max() > 1e30
            return
        assert np.array_equal(out, model.forward(f, normalized=True)) and np.isfinite(out).all()


@FEW
@given(labels=st.one_of(
    st.lists(st.integers(-3, 12), min_size=0, max_size=5).map(np.array),
    st.lists(st.floats(0, 9), min_size=3, max_size=3).map(np.array),
    st.sampled_from([np.array([1, 2, 3], np.uint8), np.array([[1, 2, 3]]), np.array(["1", "2", "3"]),
                     np.array([True, False, True]), np.array(3), np.array([1, 2, 3], ">i4")])),
    variant=st.sampled_from(sorted(MODELS)))
def test_gradient_labels(labels, variant):
    """Three images; labels must be three integers 0..9 (ValueError otherwise); the gradient is finite."""
    model = MODELS[variant]
    x = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    ok = labels.dtype.kind in "iu" and labels.shape == (3,) and labels.min() >= 0 and labels.max() <= 9
    if not ok:
        with pytest.raises(ValueError):
            model.gradient(x, labels)
        return
    grads, losses = model.gradient(x, labels)
    assert losses.shape == (3,) and np.isfinite(losses).all()
    assert all(np.isfinite(g).all() for g in grads.values())


@FEW
@given(data=st.data())
def test_set_params_takes_or_refuses(data):
    """set_params with one parameter replaced by an array of random shape, dtype and values: accepted only
    for finite real numbers of the right shape, and then taken exactly (as float32)."""
    model = lenet_fast.LeNet5("classic", seed=1)
    name = data.draw(st.sampled_from(sorted(model.params)))
    shape = model.params[name].shape
    new_shape = data.draw(st.sampled_from([shape, shape[::-1], shape + (1,), (), (0,)]))
    dtype = np.dtype(data.draw(st.sampled_from(["<f4", ">f8", "<f2", "<i4", "|b1", "<c8"])))
    value = data.draw(st.sampled_from([0.25, np.nan, np.inf, -2.0, 1e300]))
    with np.errstate(invalid="ignore", over="ignore"):
        a = np.full(new_shape, value).astype(dtype)
    before = model.params_vector.copy()
    params = dict(model.params)
    params[name] = a
    with np.errstate(over="ignore"):
        a32 = a.astype(np.float32) if dtype.kind == "f" else None
    if dtype.kind != "f" or new_shape != shape or not np.isfinite(a32).all():
        with pytest.raises((TypeError, ValueError)):
            model.set_params(params)
        assert np.array_equal(model.params_vector, before)  # nothing half done
    else:
        model.set_params(params)
        assert np.array_equal(model.params[name], a32)


@FEW
@given(value=st.one_of(st.floats(allow_nan=True), st.integers(-5, 5), st.booleans(), st.text(max_size=2),
                       st.none()),
       make=st.sampled_from([lambda v: optim.SGD(lr=v), lambda v: optim.SGD(momentum=v),
                             lambda v: optim.Adam(lr=v), lambda v: optim.Adam(betas=(v, 0.999)),
                             lambda v: optim.Adam(eps=v), lambda v: optim.SDLM(mu=v),
                             lambda v: optim.Cosine(10, floor=v), lambda v: optim.Step(2, gamma=v)]))
def test_optimizer_settings(value, make):
    """Every hyperparameter is a finite number in its range, or ValueError: never NaN stored."""
    try:
        o = make(value)
    except ValueError:
        return
    if value is None and isinstance(o, optim.SGD) and o.base_lr is None:
        return  # SGD(lr=None): the variant's default rate, which fit fixes (tests/test_optim.py)
    assert not isinstance(value, (bool, str, type(None))) and np.isfinite(value)
    assert all(np.isfinite(v) for k, v in vars(o).items() if isinstance(v, float))


COUNTS = st.one_of(st.integers(-2, 3), st.sampled_from([32768, 32769, 2**31, 10**12, -(10**12)]),
                   st.builds(lambda t, v: t(v), st.sampled_from([np.int64, np.int32, np.uint8, np.int16]),
                             st.integers(0, 3)),
                   st.sampled_from([True, np.bool_(True), 2.0, np.float64(2), "2", None, 1j]))


def is_count(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) and v >= 1


@FEW
@given(epochs=COUNTS.filter(lambda v: not (is_count(v) and v > 3)), batch_size=COUNTS)
def test_fit_counts(epochs, batch_size):
    """epochs and batch_size of any type and value: integers (numpy's too, never bool) in range train;
    anything else is a ValueError before any work, the weights unchanged. batch_size None is the
    default; its range is the engine's, 1..32768."""
    model = lenet_fast.LeNet5("modern", seed=1)
    before = model.params_vector.copy()
    if not (is_count(epochs) and (batch_size is None or (is_count(batch_size) and batch_size <= 32768))):
        with pytest.raises(ValueError, match="epochs|batch_size"):
            model.fit(*TRAIN, epochs=epochs, batch_size=batch_size, optimizer="sgd", verbose=0)
        assert np.array_equal(model.params_vector, before)
        return
    hist = model.fit(*TRAIN, epochs=epochs, batch_size=batch_size, optimizer="sgd", verbose=0)
    assert len(hist) == epochs and not np.array_equal(model.params_vector, before)


# ---- files -----------------------------------------------------------------------------------------------

def saved_model_bytes():
    buf = io.BytesIO()
    arrays = {"__format__": np.array(1), "__variant__": np.array("modern")}
    arrays.update(lenet_fast.LeNet5("modern").params)
    np.savez(buf, **arrays)
    return buf.getvalue()


MODEL_BYTES = saved_model_bytes()


def damaged(data, draw):
    """data cut short, with bytes overwritten, or replaced by random bytes (a zip's or nothing's start)."""
    how = draw(st.sampled_from(["cut", "flip", "random"]))
    if how == "cut":
        return data[:draw(st.integers(0, len(data) - 1))]
    if how == "flip":
        b = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            b[draw(st.integers(0, len(b) - 1))] = draw(st.integers(0, 255))
        return bytes(b)
    return draw(st.sampled_from([b"", b"PK\x03\x04", b"\x93NUMPY"])) + draw(st.binary(max_size=300))


@FUZZ
@given(data=st.data())
def test_load_of_damaged_model_files(tmp_path_factory, data):
    """A damaged model file raises ValueError naming it, or (a change the archive does not notice) loads
    as a complete model of finite weights."""
    path = tmp_path_factory.mktemp("load") / "m.npz"
    path.write_bytes(damaged(MODEL_BYTES, data.draw))
    try:
        model = lenet_fast.load(path)
    except ValueError as exc:
        assert str(path) in str(exc)
        return
    assert _core.all_finite(model.params_vector)


VALID = object()


def test_a_damaged_model_file_is_closed(tmp_path):
    """Regression (found by fuzzing): np.load left a file that starts like a zip archive but is not one
    open, for the garbage collector to close with a ResourceWarning."""
    path = tmp_path / "m.npz"
    path.write_bytes(b"PK\x03\x04" + bytes(100))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            with pytest.raises(ValueError):
                lenet_fast.load(path)
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


def checkpoint_bytes(meta=VALID, **changes):
    """A modern checkpoint as fit writes it (for 16 images, batch 8, Adam), with its record or arrays
    replaced."""
    from lenet_fast.train import CHECKPOINT_FORMAT

    model = lenet_fast.LeNet5("modern")
    opt = optim.Adam()
    opt.bind(model.params_vector.size)
    rng = np.random.default_rng(0)
    if meta is VALID:
        meta = {"settings": {"variant": "modern", "batch_size": 8, "loss": "xent", "j": float(paper.MAP_J),
                             "optimizer": "adam", "n": 16},
                "history": [], "rng": rng.bit_generator.state}
    arrays = {"__format__": np.array(CHECKPOINT_FORMAT), "__checkpoint__": np.array(json.dumps(meta)),
              "__variant__": np.array("modern")}
    arrays.update(model.params)
    arrays.update(("optimizer." + k, v) for k, v in opt.state().items())
    arrays.update(changes)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


TRAIN = (np.random.default_rng(3).integers(0, 256, (16, 28, 28), dtype=np.uint8), np.arange(16) % 10)
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=4),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                    max_leaves=8)


def resume_from(path):
    """fit(resume=path): the history, or the ValueError it raised (which must name the file)."""
    try:
        return lenet_fast.LeNet5("modern").fit(*TRAIN, epochs=2, batch_size=8, verbose=0, resume=path)
    except ValueError as exc:
        assert str(path) in str(exc)
        return exc


@FEW
@given(data=st.data())
def test_resume_from_damaged_checkpoints(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("resume") / "c.npz"
    path.write_bytes(damaged(checkpoint_bytes(), data.draw))
    out = resume_from(path)
    assert isinstance(out, ValueError) or len(out) == 2


@FEW
@given(meta=st.one_of(JSON, st.fixed_dictionaries({"settings": JSON, "history": JSON, "rng": JSON}),
                      st.fixed_dictionaries({"settings": st.just({}), "history": st.just([]), "rng": JSON})))
def test_resume_from_a_checkpoint_with_any_record(tmp_path_factory, meta):
    """Whatever the JSON record of the run holds, resuming raises ValueError (regression: a record whose
    settings were not a mapping raised AttributeError)."""
    path = tmp_path_factory.mktemp("meta") / "c.npz"
    path.write_bytes(checkpoint_bytes(meta))
    assert isinstance(resume_from(path), ValueError)


def test_resume_never_unpickles(tmp_path):
    """An object array in a checkpoint is refused, never unpickled (as for model files, test_model.py)."""
    payload = np.empty(1, dtype=object)
    payload[0] = {"x": 1}
    path = tmp_path / "c.npz"
    path.write_bytes(checkpoint_bytes(**{"optimizer.m": payload}))
    assert isinstance(resume_from(path), ValueError)


IDX = bytes([0, 0, 0x08, 3]) + (2).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + bytes(range(256)) * 6 + bytes(32)


@FUZZ
@given(data=st.data(), compress=st.booleans())
def test_read_idx_of_damaged_files(tmp_path_factory, data, compress):
    """test_datasets.py tries every truncation and header byte; here random damage anywhere, raw or gzip."""
    import gzip

    content = damaged(IDX, data.draw)
    if compress:
        content = gzip.compress(content, mtime=0)
        if data.draw(st.booleans()):
            content = damaged(content, data.draw)
    path = tmp_path_factory.mktemp("idx") / "f.idx"
    path.write_bytes(content)
    try:
        a = read_idx(path)
    except ValueError as exc:
        assert str(path) in str(exc)
        return
    assert a.ndim >= 1 and a.dtype.isnative


# ---- images ------------------------------------------------------------------------------------------------

def png_bytes():
    from PIL import Image

    img = Image.fromarray(np.pad(np.full((10, 4), 255, np.uint8), 9))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@FEW
@given(data=st.data())
def test_read_digit_of_damaged_image_files(tmp_path_factory, data):
    """A damaged image file (including a header claiming billions of pixels: regression, Pillow's
    DecompressionBombError escaped) raises ValueError naming it, or reads as an MNIST digit."""
    pytest.importorskip("PIL")
    path = tmp_path_factory.mktemp("img") / "d.png"
    content = damaged(png_bytes(), data.draw)
    if data.draw(st.booleans()) and len(content) > 24:  # claim a huge width and height in IHDR
        content = content[:16] + (100_000).to_bytes(4, "big") * 2 + content[24:]
    path.write_bytes(content)
    try:
        d = lenet_fast.read_digit(path)
    except ValueError as exc:
        assert str(path) in str(exc)
        return
    assert d.shape == (28, 28) and d.dtype == np.uint8


@FUZZ
@given(h=st.integers(1, 40), w=st.integers(1, 40), channels=st.sampled_from([None, 1, 2, 3, 4]),
       dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**32 - 1), special=st.sampled_from([None] + SPECIAL))
def test_read_digit_of_any_array(h, w, channels, dtype, seed, special):
    """Any array is an MNIST digit, or ValueError/TypeError."""
    rng = np.random.default_rng(seed)
    shape = (h, w) if channels is None else (h, w, channels)
    dtype = np.dtype(dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        x = (rng.random(shape) * (255 if dtype.kind in "ui" else 1)).astype(dtype)
        if special is not None and dtype.kind in "fc":
            x.reshape(-1)[rng.integers(x.size)] = special
    try:
        d = lenet_fast.read_digit(x)
    except (ValueError, TypeError):
        return
    assert d.shape == (28, 28) and d.dtype == np.uint8 and d.max() == 255


# ---- memory ------------------------------------------------------------------------------------------------

MEMORY_SCRIPT = textwrap.dedent("""
    import resource, threading
    import numpy as np
    import lenet_fast
    from lenet_fast import _core

    def vm_bytes():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))

    def limit(extra):  # the address space may grow by extra bytes from now on
        resource.setrlimit(resource.RLIMIT_AS, (vm_bytes() + extra, resource.RLIM_INFINITY))

    def unlimit():
        resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    def expect_memory_error(what, call):
        try:
            call()
        except MemoryError as exc:
            print(what, "MemoryError", exc if "allocate the" in str(exc) else "")
        else:
            print(what, "no error")

    model = lenet_fast.LeNet5("classic")
    digits = np.random.default_rng(0).integers(0, 256, (100, 28, 28), dtype=np.uint8)
    want = model.forward(digits)  # warm up: the thread team and the workspaces exist
    big = _core.Network((1, 4096, 4096), [dict(kind="subsample", pool="average")])
    image = np.zeros((1, 1, 4096, 4096), np.float32)  # (untouched zero pages: no memory in use)
    flat = np.zeros((1 << 14) * 257, np.float32)
    net = _core.Network((1, 256, 256), [dict(kind="subsample", pool="average"),
                                        dict(kind="full", out=1 << 8, weight=flat[: 1 << 22].reshape(1 << 14, 1 << 8),
                                             bias=flat[1 << 22 : (1 << 22) + (1 << 8)])])

    # the C workspace (80 MB for one 4096x4096 image) cannot be allocated, the output (16 MB) can:
    # lf_forward returns -1; nor can the trainer's gradient slots (15 copies of 4 million parameters)
    limit(24 << 20)
    expect_memory_error("workspace", lambda: big.forward(image))
    expect_memory_error("trainer", lambda: _core.Trainer(net, flat))
    # a batch too large to hold (10^9 images, 784 GB): numpy's allocation fails
    expect_memory_error("huge batch", lambda: model.predict(np.broadcast_to(np.uint8(0), (10**9, 28, 28))))
    unlimit()
    # the output of 3 million images (120 MB) cannot be allocated, the input (untouched) is there
    many = np.zeros((3_000_000, 1, 28, 28), np.uint8)
    limit(32 << 20)
    expect_memory_error("output", lambda: model._net.forward(many, True))
    unlimit()
    # and the process carries on, with the same answers
    print("after", np.array_equal(model.forward(digits), want), big.forward(image).shape)
""")


@pytest.mark.skipif("asan" in os.environ.get("LD_PRELOAD", ""),
                    reason="AddressSanitizer's own allocator aborts under a capped address space")
def test_memory_that_cannot_be_allocated_is_a_memory_error():
    """In a child process whose address space is capped (RLIMIT_AS, so that nothing large is really
    allocated): a batch too large to store, an output that cannot be allocated, a C workspace
    and a trainer's gradient slots that cannot be allocated each raise MemoryError, and the process goes
    on working."""
    env = dict(os.environ, OMP_NUM_THREADS="2")
    run = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT], capture_output=True, text=True, timeout=120,
                         env=env)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split("\n") == [
        "workspace MemoryError cannot allocate the per-thread workspace",
        "trainer MemoryError cannot allocate the trainer's gradient slots",
        "huge batch MemoryError ", "output MemoryError ",
        "after True (1, 1, 2048, 2048)", ""], run.stdout + run.stderr
