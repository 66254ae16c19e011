"""lenet_fast.LeNet5 (lenet_fast/model.py): parameters, the whole forward against lenet_fast.reference,
input handling, determinism across batches and threads, bad input, save/load, build_info.

Tolerance of the whole forward: the engine computes in float32 (with FMA), the reference in float64 on the
same float32 parameters. Over the six layers the float32 roundings stay around 1e-6 relative (measured:
4e-7 on the classic RBF distances, ~2e-6 absolute on the modern logits); we allow rtol 1e-5 plus an atol
of 1e-5 of the largest output, which is far below what a wrong layer, a wrong table or a wrong input
mapping would change (0.01 and more).
"""
import os
import pickle
import zipfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import threadpoolctl

import lenet_fast
from lenet_fast import model as model_module
from lenet_fast import paper
from lenet_fast import reference as ref

VARIANTS = ("classic", "modern")
FORWARD_RTOL = 1e-5

# The documented parameters (lenet_fast/model.py, docs/paper.md#architecture), written out here independently.
CLASSIC_SHAPES = {
    "c1.weight": (6, 1, 5, 5), "c1.bias": (6,),
    "s2.coef": (6,), "s2.bias": (6,),
    "c3.weight": (60, 5, 5), "c3.bias": (16,),
    "s4.coef": (16,), "s4.bias": (16,),
    "c5.weight": (400, 120), "c5.bias": (120,),
    "f6.weight": (120, 84), "f6.bias": (84,),
}
MODERN_SHAPES = {
    "c1.weight": (6, 1, 5, 5), "c1.bias": (6,),
    "c3.weight": (16, 6, 5, 5), "c3.bias": (16,),
    "c5.weight": (400, 120), "c5.bias": (120,),
    "f6.weight": (120, 84), "f6.bias": (84,),
    "out.weight": (84, 10), "out.bias": (10,),
}
SHAPES = {"classic": CLASSIC_SHAPES, "modern": MODERN_SHAPES}


# ---- helpers -------------------------------------------------------------------------------------------


def digits(n, seed=0, size=28):
    """n random uint8 'images' of size x size, seeded."""
    return np.random.default_rng(seed).integers(0, 256, size=(n, size, size), dtype=np.uint8)


def assert_forward_close(got, want):
    assert got.dtype == np.float32
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=FORWARD_RTOL, atol=FORWARD_RTOL * np.abs(want).max())


@pytest.fixture(params=VARIANTS)
def model(request):
    return lenet_fast.LeNet5(request.param, seed=3)


# ---- parameters ----------------------------------------------------------------------------------------


def test_classic_has_exactly_60000_parameters():
    """The paper's count: 60,000 trainable parameters (the RBF centres are fixed, not counted)."""
    m = lenet_fast.LeNet5("classic")
    assert m.n_params == 60_000
    assert sum(a.size for a in m.params.values()) == 60_000


def test_modern_parameter_count():
    """C3 wired to all six S2 maps (2,416 parameters) and a linear 84 -> 10 head instead of the RBF."""
    assert lenet_fast.LeNet5("modern").n_params == 156 + 2416 + 48120 + 10164 + 850


@pytest.mark.parametrize("variant", VARIANTS)
def test_parameter_names_shapes_and_dtypes(variant):
    """param_shapes and the model's params list the documented names, in layer order, with their shapes,
    as C-contiguous float32 arrays."""
    shapes = model_module.param_shapes(variant)
    assert list(shapes) == list(SHAPES[variant])
    assert {name: shape for name, (shape, _) in shapes.items()} == SHAPES[variant]
    m = lenet_fast.LeNet5(variant)
    assert list(m.params) == list(SHAPES[variant])
    for name, a in m.params.items():
        assert a.shape == SHAPES[variant][name], name
        assert a.dtype == np.float32 and a.flags.c_contiguous, name
    assert (m.rbf_centers is None) == (variant == "modern")


def c3_fan_in_per_kernel():
    """The fan-in of each packed C3 kernel: 25 x the number of S2 maps feeding its C3 map (75, 100 or
    150), from the reference's own copy of Table I."""
    return np.concatenate([[25 * row.sum()] * row.sum() for row in ref.C3_TABLE])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_c3_kernels_are_initialised_by_their_own_fan_in(seed):
    """Each packed C3 kernel is uniform in +-2.4/F with F its map's fan-in (75, 100 or 150), not the
    dense 150 for all: every kernel stays inside its range, and each map's kernels come close to its
    edge (a map's 75-150 draws all below 80% of the range has probability < 1e-7)."""
    fans = c3_fan_in_per_kernel()
    assert sorted(set(fans)) == [75, 100, 150]
    shape, fan = model_module.param_shapes("classic")["c3.weight"]
    np.testing.assert_array_equal(np.broadcast_to(fan, shape), np.broadcast_to(fans[:, None, None], shape))
    w = lenet_fast.LeNet5("classic", seed=seed).params["c3.weight"]
    limit = 2.4 / fans
    reach = np.abs(w).max(axis=(1, 2))
    assert np.all(reach < limit)
    start = 0
    for o, row in enumerate(ref.C3_TABLE):
        k = slice(start, start + row.sum())
        assert reach[k].max() > 0.8 * limit[k][0], f"C3 map {o}: kernels reach only {reach[k].max():.4g}"
        start += row.sum()


@pytest.mark.parametrize("name, fan", [("c1.weight", 25), ("c1.bias", 25), ("s2.coef", 4), ("s2.bias", 4),
                                       ("s4.coef", 4), ("s4.bias", 4), ("c5.weight", 400), ("c5.bias", 400),
                                       ("f6.weight", 120), ("f6.bias", 120)])
def test_classic_initialisation_range(name, fan):
    """Appendix A: every weight, bias and coefficient uniform in (-2.4/F, 2.4/F), F the unit's fan-in."""
    a = lenet_fast.LeNet5("classic", seed=5).params[name]
    assert np.abs(a).max() < 2.4 / fan
    if a.size >= 84:
        assert np.abs(a).max() > 0.9 * 2.4 / fan


def test_modern_initialisation():
    """He-normal weights (std sqrt(2 / fan-in)) and zero biases."""
    params = lenet_fast.LeNet5("modern", seed=5).params
    for name, fan in [("c3.weight", 150), ("c5.weight", 400), ("f6.weight", 120), ("out.weight", 84)]:
        assert abs(params[name].std() / np.sqrt(2 / fan) - 1) < 0.15, name
    for name in MODERN_SHAPES:
        if name.endswith(".bias"):
            assert not params[name].any(), name


def test_seed_fixes_the_initialisation():
    a, b, c = (lenet_fast.LeNet5("classic", seed=s).params for s in (4, 4, 5))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["c5.weight"], c["c5.weight"])


def test_unknown_variant():
    with pytest.raises(ValueError, match="variant must be one of"):
        lenet_fast.LeNet5("bogus")
    with pytest.raises(ValueError, match="variant must be one of"):
        model_module.param_shapes("bogus")


# ---- the whole forward against the reference -----------------------------------------------------------


def images_as(kind, n=9):
    """The same seeded digits in each input form the model takes: (given, the same as the reference takes
    them)."""
    d = digits(n, seed=11)
    f = d / 255.0
    big = digits(n, seed=12, size=32)
    forms = {
        "uint8 (N,28,28)": (d, d),
        "float [0,1] (N,28,28)": (f.astype(np.float32), f.astype(np.float32)),
        "float (N,32,32)": ((big / 255).astype(np.float32), (big / 255).astype(np.float32)),
        "float (N,1,32,32)": ((big / 255).astype(np.float32)[:, None], (big / 255).astype(np.float32)[:, None]),
        "uint8 (N,32,32)": (big, big),
        "uint8 (N,1,28,28)": (d[:, None], d),
        "single (28,28)": (d[0], d[:1]),
        "single (32,32)": (big[0], big[:1]),
        "int64 pixels": (d.astype(np.int64), d),
        "float64": (f, f),
        "list of lists of ints": (d[0].tolist(), d[:1]),
        "transposed view": (d.transpose(0, 2, 1), np.ascontiguousarray(d.transpose(0, 2, 1))),
        "strided view": (np.repeat(np.repeat(d, 2, axis=1), 2, axis=2)[:, ::2, ::2], d),
        "reversed batch": (d[::-1], d[::-1].copy()),
        "big-endian float": (f.astype(">f4"), f.astype(np.float32)),
        "Fortran order": (np.asfortranarray(f), f),
    }
    return forms[kind]


INPUT_FORMS = ["uint8 (N,28,28)", "float [0,1] (N,28,28)", "float (N,32,32)", "float (N,1,32,32)",
               "uint8 (N,32,32)", "uint8 (N,1,28,28)", "single (28,28)", "single (32,32)", "int64 pixels",
               "float64", "list of lists of ints", "transposed view", "strided view", "reversed batch",
               "big-endian float", "Fortran order"]


@pytest.mark.parametrize("kind", INPUT_FORMS)
def test_forward_matches_the_reference(model, kind, reference_forward):
    """Every input form gives the reference's (N, 10): classic distances to paper.rbf_centers(), modern
    logits; 28x28 digits centred in the 32x32 field, pixels mapped to [-0.1, 1.175]."""
    given, as_reference = images_as(kind)
    assert_forward_close(model.forward(given), reference_forward(model, as_reference))


def test_normalized_input_is_used_as_it_is(model, reference_forward):
    """normalized=True takes reference.normalize_input's output ((N,1,32,32) or (N,32,32) float) straight."""
    d = digits(13, seed=14)
    x = ref.normalize_input(d)
    want = reference_forward(model, d)
    assert_forward_close(model.forward(x, normalized=True), want)
    assert_forward_close(model.forward(x[:, 0], normalized=True), want)
    assert_forward_close(model.forward(x.astype(np.float64), normalized=True), want)


def test_normalized_input_may_lie_outside_the_pixel_range():
    """Normalized input is any finite float (e.g. an augmented or standardized image), unlike pixels."""
    m = lenet_fast.LeNet5("modern", seed=1)
    x = np.random.default_rng(15).normal(0, 2, size=(6, 1, 32, 32)).astype(np.float32)
    params = {name: np.float64(a) for name, a in m.params.items()}
    want = ref.forward(params, np.float64(x), "modern")
    assert_forward_close(m.forward(x, normalized=True), want)


def test_predict_is_the_nearest_centre_or_the_largest_logit(model, reference_forward):
    """predict: argmin of the distances (classic), argmax of the logits (modern), as int64; the same as
    the reference wherever the best two outputs are clearly apart (ties within the float32 noise may go
    either way)."""
    d = digits(64, seed=16)
    want = reference_forward(model, d)
    got = model.predict(d)
    assert got.dtype == np.int64 and got.shape == (64,)
    out = model.forward(d)
    np.testing.assert_array_equal(got, out.argmin(1) if model.variant == "classic" else out.argmax(1))
    best = want.argmin(1) if model.variant == "classic" else want.argmax(1)
    ordered = np.sort(want, axis=1)
    gap = ordered[:, 1] - ordered[:, 0] if model.variant == "classic" else ordered[:, -1] - ordered[:, -2]
    clear = gap > 1e-3 * np.abs(want).max()
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(got[clear], best[clear])


def test_predict_proba(model, reference_forward):
    """predict_proba: softmax of the negated distances (classic) or of the logits (modern); rows sum to 1."""
    d = digits(21, seed=17)
    got = model.predict_proba(d)
    assert got.shape == (21, 10) and got.dtype == np.float32
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=0, atol=1e-6)
    sign = -1.0 if model.variant == "classic" else 1.0
    own = ref.softmax(sign * np.float64(model.forward(d)))
    np.testing.assert_allclose(got, own, rtol=2e-6, atol=1e-9)
    # Against the whole reference: a distance error of ~1e-4 moves a probability by ~1e-4 relative.
    np.testing.assert_allclose(got, ref.softmax(sign * reference_forward(model, d)), rtol=1e-3, atol=1e-7)
    np.testing.assert_array_equal(got.argmax(1), model.predict(d))


@pytest.mark.parametrize("method, shape", [("forward", (0, 10)), ("predict", (0,)), ("predict_proba", (0, 10))])
def test_empty_batch(model, method, shape):
    """An empty batch is a batch: (0, 10) for forward and predict_proba, (0,) for predict."""
    for x in (np.zeros((0, 28, 28), np.uint8), np.zeros((0, 32, 32), np.float32),
              np.zeros((0, 1, 32, 32), np.float64)):
        assert getattr(model, method)(x).shape == shape, f"input of shape {x.shape}"


# ---- determinism ---------------------------------------------------------------------------------------


def test_batch_splits_give_the_same_bits(model):
    """An image's output does not depend on its batch: 53 images at once, in splits of 1, 7, 8, 16, 21
    and one at a time give identical bits (blocked, spatial and partly filled blocks agree)."""
    d = digits(53, seed=18)
    whole = model.forward(d)
    parts = np.split(d, np.cumsum([1, 7, 8, 16, 21])[:-1])
    assert [len(p) for p in parts] == [1, 7, 8, 16, 21]
    assert np.array_equal(whole, np.concatenate([model.forward(p) for p in parts]))
    assert np.array_equal(whole, np.concatenate([model.forward(d[i]) for i in range(53)]))


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_thread_count_does_not_change_the_bits(model, threads, restore_threads):
    """set_num_threads changes the thread count and not the output: for a batch split between threads, for
    one image, and for batches of one block (4, 8 or 16 images by the instruction set), which one thread runs
    in the blocked layout and more threads share out as single images."""
    d = digits(53, seed=19)
    sizes = (53, 1, 4, 8, 16)
    lenet_fast.set_num_threads(1)
    single = [model.forward(d[:n]) for n in sizes]
    lenet_fast.set_num_threads(threads)
    assert lenet_fast.get_num_threads() == (threads if lenet_fast.build_info()["openmp"] else 1)
    for n, expected in zip(sizes, single):
        assert np.array_equal(model.forward(d[:n]), expected), f"{n} images"


def test_threadpoolctl_limits_the_threads(model):
    """threadpoolctl sees the engine's OpenMP runtime: inside threadpool_limits(1) get_num_threads() is 1,
    after it the old value again; the output is bit-identical under the limit."""
    if not lenet_fast.build_info()["openmp"]:
        pytest.skip("built without OpenMP")
    d = digits(37, seed=20)
    before_threads = lenet_fast.get_num_threads()
    before = model.forward(d)
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert lenet_fast.get_num_threads() == 1
        limited = model.forward(d)
    assert lenet_fast.get_num_threads() == before_threads
    assert np.array_equal(limited, before)


def test_concurrent_calls_from_python_threads(model):
    """forward releases the GIL and each calling thread has its own workspace: Python threads running it
    at once on different batches get the same bits as sequential calls."""
    batches = [digits(n, seed=30 + n) for n in (1, 7, 13, 37, 8, 22)]
    want = [model.forward(b) for b in batches]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            got = list(pool.map(model.forward, batches))
            assert all(np.array_equal(g, w) for g, w in zip(got, want))


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2", None])
def test_set_num_threads_refuses_non_positive_or_non_integers(bad, restore_threads):
    with pytest.raises(ValueError, match="positive integer"):
        lenet_fast.set_num_threads(bad)


# ---- bad input -----------------------------------------------------------------------------------------


def with_pixel(value, dtype):
    x = np.zeros((3, 28, 28), dtype)
    x[1, 14, 9] = value
    return x


BAD_INPUTS = {
    # name: (x, normalized, exception, message)
    "NaN pixel": (with_pixel(np.nan, np.float32), False, ValueError, "NaN"),
    "inf pixel": (with_pixel(np.inf, np.float64), False, ValueError, "infinity"),
    "NaN in normalized input": (np.full((2, 1, 32, 32), np.nan), True, ValueError, "NaN"),
    "float64 pixel 1e300": (with_pixel(1e300, np.float64), False, ValueError, "outside float32's range"),
    "float64 -1e300 normalized": (np.full((2, 1, 32, 32), -1e300), True, ValueError, "outside float32's range"),
    "float pixel above 1": (with_pixel(1.5, np.float32), False, ValueError, r"\[0, 1\]"),
    "float pixel below 0": (with_pixel(-0.01, np.float64), False, ValueError, r"\[0, 1\]"),
    "integer pixel 256": (with_pixel(256, np.int64), False, ValueError, "0..255"),
    "integer pixel -1": (with_pixel(-1, np.int16), False, ValueError, "0..255"),
    "uint16 pixel 300": (with_pixel(300, np.uint16), False, ValueError, "0..255"),
    "shape (27, 28)": (np.zeros((27, 28), np.uint8), False, ValueError, r"got shape \(27, 28\)"),
    "shape (N, 2, 32, 32)": (np.zeros((2, 2, 32, 32), np.uint8), False, ValueError, r"got shape \(2, 2, 32, 32\)"),
    "shape (N, 28, 32)": (np.zeros((2, 28, 32), np.uint8), False, ValueError, r"got shape \(2, 28, 32\)"),
    "1-D": (np.zeros(784, np.uint8), False, ValueError, r"got shape \(784,\)"),
    "5-D": (np.zeros((1, 1, 1, 28, 28), np.uint8), False, ValueError, r"got shape \(1, 1, 1, 28, 28\)"),
    "0-D": (np.uint8(3), False, ValueError, r"got shape \(\)"),
    "complex": (np.zeros((2, 28, 28), complex), False, TypeError, "dtype complex128"),
    "bool": (np.zeros((2, 28, 28), bool), False, TypeError, "dtype bool"),
    "object array": (np.zeros((2, 28, 28), object), False, TypeError, "dtype object"),
    "strings": (np.full((2, 28, 28), "0"), False, TypeError, "dtype <U1"),
    "normalized uint8": (np.zeros((2, 32, 32), np.uint8), True, TypeError, "normalized=True takes float"),
    "normalized 28x28": (np.zeros((2, 28, 28), np.float32), True, ValueError, "normalized input must be"),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_is_refused_with_a_clear_message(model, name):
    """Each kind of bad input raises the right exception, naming the problem, before any computation."""
    x, normalized, exc, message = BAD_INPUTS[name]
    for method in (model.forward, model.predict, model.predict_proba):
        with pytest.raises(exc, match=message):
            method(x, normalized=normalized)


def unaligned(a):
    """A copy of a whose data starts one byte past an aligned address (as when cut from a byte buffer)."""
    raw = np.empty(a.nbytes + 1, np.uint8)
    out = raw[1:].view(a.dtype).reshape(a.shape)
    out[...] = a
    assert not out.flags.aligned
    return out


@pytest.mark.parametrize("normalized", [False, True])
def test_unaligned_or_byte_swapped_float_batches_are_copied_not_refused(model, normalized):
    """A float32 batch at an unaligned address, or in the other byte order, gives the aligned batch's bits
    through forward, predict, predict_proba and gradient (as fit takes it), instead of a ValueError."""
    x = digits(5, seed=23).astype(np.float32) / 255
    if normalized:
        x = np.pad(x, ((0, 0), (2, 2), (2, 2))) * np.float32(1.275) - np.float32(0.1)
    for other in (unaligned(x), x.astype(x.dtype.newbyteorder())):
        for method in (model.forward, model.predict, model.predict_proba):
            assert np.array_equal(method(other, normalized=normalized), method(x, normalized=normalized))
        labels = np.arange(5) % 10
        want = model.gradient(x, labels, normalized=normalized)[0]
        got = model.gradient(other, labels, normalized=normalized)[0]
        assert all(np.array_equal(got[k], want[k]) for k in want)


def test_a_list_of_lists_is_an_image():
    """Nested lists of ints work like the array they make (int64 pixels 0..255)."""
    m = lenet_fast.LeNet5("classic")
    d = digits(2, seed=21)
    assert np.array_equal(m.forward(d.tolist()), m.forward(d))
    assert np.array_equal(m.forward(d[0].tolist()), m.forward(d[:1]))


# ---- parameter handling --------------------------------------------------------------------------------


def test_parameters_cannot_be_replaced_by_assignment(model):
    """params[name] = array would leave the engine running on the old array: it raises TypeError and
    points to in-place assignment or set_params."""
    with pytest.raises(TypeError, match=r"in place|set_params"):
        model.params["c1.weight"] = np.zeros((6, 1, 5, 5), np.float32)
    with pytest.raises(AttributeError):  # a read-only mapping: no dict methods that write
        model.params.update({"c1.bias": np.zeros(6, np.float32)})
    with pytest.raises(TypeError, match="cannot be removed"):
        del model.params["c1.weight"]


@pytest.mark.parametrize("operation", ["add a name", "setdefault", "pop", "popitem", "clear"])
def test_the_parameter_set_is_fixed(operation):
    """Nothing adds or removes a parameter (params is a read-only mapping: item assignment raises TypeError,
    dict's writing methods do not exist): otherwise n_params is wrong and save() writes a file that load()
    rejects (missing or unexpected parameter)."""
    params = lenet_fast.LeNet5("classic").params
    ops = {
        "add a name": lambda: params.__setitem__("extra.weight", np.zeros(3, np.float32)),
        "setdefault": lambda: params.setdefault("extra.weight", np.zeros(3, np.float32)),
        "pop": lambda: params.pop("c1.weight"),
        "popitem": lambda: params.popitem(),
        "clear": lambda: params.clear(),
    }
    names = list(params)
    with pytest.raises((TypeError, AttributeError)):
        ops[operation]()
    assert list(params) == names


def test_in_place_changes_take_effect(model, reference_forward):
    """The engine runs on the parameter arrays themselves: changing one in place changes the output, to
    what the reference says for the new values."""
    d = digits(9, seed=22)
    before = model.forward(d)
    model.params["c1.bias"][...] += 0.5
    model.params["f6.weight"][3] *= -2
    after = model.forward(d)
    assert not np.allclose(after, before)
    assert_forward_close(after, reference_forward(model, d))


def test_set_params_copies_values_in(model):
    """set_params takes a full set of same-shaped arrays (any float dtype) and copies them in place."""
    other = lenet_fast.LeNet5(model.variant, seed=99)
    arrays = {name: a.astype(np.float64) for name, a in other.params.items()}
    ids = {name: id(a) for name, a in model.params.items()}
    model.set_params(arrays)
    assert {name: id(a) for name, a in model.params.items()} == ids
    d = digits(5, seed=23)
    assert np.array_equal(model.forward(d), other.forward(d))


@pytest.mark.parametrize("problem, message", [("missing", "missing"), ("extra", "unexpected"),
                                              ("wrong shape", "must have shape"), ("NaN", "NaN"),
                                              ("infinity", "infinity")])
def test_set_params_refuses(model, problem, message):
    """set_params with a missing or unexpected name, a wrong shape or a non-finite value raises ValueError
    and changes nothing (all checks before any copy)."""
    params = {name: a.copy() + 1 for name, a in model.params.items()}
    last = list(params)[-1]
    if problem == "missing":
        del params[last]
    elif problem == "extra":
        params["rbf.centers"] = paper.rbf_centers()
    elif problem == "wrong shape":
        params[last] = np.zeros(params[last].shape + (1,), np.float32)
    else:
        params[last][0] = np.nan if problem == "NaN" else np.inf
    before = {name: a.copy() for name, a in model.params.items()}
    with pytest.raises(ValueError, match=message):
        model.set_params(params)
    assert all(np.array_equal(model.params[name], a) for name, a in before.items())


# ---- save and load -------------------------------------------------------------------------------------


def test_save_then_load_gives_the_same_bits(model, tmp_path):
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = lenet_fast.load(path)
    assert loaded.variant == model.variant
    assert list(loaded.params) == list(model.params)
    assert all(np.array_equal(loaded.params[k], model.params[k]) for k in model.params)
    d = digits(19, seed=24)
    assert np.array_equal(loaded.forward(d), model.forward(d))
    assert np.array_equal(lenet_fast.load(str(path)).forward(d), model.forward(d))


def test_the_saved_file_is_a_plain_npz(model, tmp_path):
    """The file loads with np.load(allow_pickle=False): format version, variant, temperature (no outlier
    limit: none is set), the parameters."""
    path = tmp_path / "model.npz"
    model.save(path)
    with np.load(path, allow_pickle=False) as f:
        assert set(f.files) == {"__format__", "__variant__", "__temperature__"} | set(model.params)
        assert int(f["__format__"]) == 1 and float(f["__temperature__"]) == 1.0
        assert str(f["__variant__"]) == model.variant
        for name, a in model.params.items():
            assert f[name].dtype == np.float32 and np.array_equal(f[name], a)


def test_save_writes_exactly_the_path_given(tmp_path):
    """No .npz suffix is appended: the file is where the caller said."""
    m = lenet_fast.LeNet5("modern")
    path = tmp_path / "weights.bin"
    m.save(path)
    assert sorted(os.listdir(tmp_path)) == ["weights.bin"]
    assert np.array_equal(lenet_fast.load(path).params["out.weight"], m.params["out.weight"])


def test_save_replaces_an_existing_file(tmp_path):
    path = tmp_path / "m.npz"
    lenet_fast.LeNet5("modern").save(path)
    lenet_fast.LeNet5("classic").save(path)
    assert lenet_fast.load(path).variant == "classic"
    assert os.listdir(tmp_path) == ["m.npz"]


def test_a_failed_save_leaves_no_file_behind(tmp_path):
    """A missing destination directory, or a destination that is a directory, raises OSError and leaves
    no temporary file in the destination's directory."""
    m = lenet_fast.LeNet5("classic")
    with pytest.raises(FileNotFoundError):
        m.save(tmp_path / "missing" / "m.npz")
    assert os.listdir(tmp_path) == []
    (tmp_path / "taken.npz").mkdir()
    with pytest.raises(OSError):
        m.save(tmp_path / "taken.npz")
    assert os.listdir(tmp_path) == ["taken.npz"]
    assert os.listdir(tmp_path / "taken.npz") == []


def write_npz(path, variant="classic", drop=None, **changes):
    """A model file as save() writes it, with some arrays changed (None: removed)."""
    arrays = {"__format__": np.array(1), "__variant__": np.array(variant)}
    arrays.update(lenet_fast.LeNet5(variant).params)
    arrays.update(changes)
    for name in drop or ():
        del arrays[name]
    np.savez(path, **arrays)
    return path


def save_npy(path, array):
    with open(path, "wb") as f:  # np.save(path) would append .npy
        np.save(f, array)


def nan_weight():
    w = lenet_fast.LeNet5("classic").params["c5.weight"].copy()
    w[7, 3] = np.nan
    return w


CORRUPT_FILES = {
    # name: (write the file into path, message)
    "random bytes": (lambda p: p.write_bytes(np.random.default_rng(25).bytes(4096)), "not a lenet_fast model file"),
    "empty file": (lambda p: p.write_bytes(b""), "not a lenet_fast model file"),
    "text file": (lambda p: p.write_text("hello\n"), "not a lenet_fast model file"),
    "a .npy array": (lambda p: save_npy(p, np.zeros(3)), "not a lenet_fast model file"),
    "zip without arrays": (lambda p: zipfile.ZipFile(p, "w").close(), "no format version"),
    "missing parameter": (lambda p: write_npz(p, drop=["f6.bias"]), r"missing \['f6.bias'\]"),
    "unexpected parameter": (lambda p: write_npz(p, **{"out.weight": np.zeros((84, 10), np.float32)}),
                             r"unexpected \['out.weight'\]"),
    "wrong shape": (lambda p: write_npz(p, **{"c1.weight": np.zeros((6, 5, 5), np.float32)}),
                    "c1.weight must have shape"),
    "NaN in a parameter": (lambda p: write_npz(p, **{"c5.weight": nan_weight()}), "c5.weight contains NaN"),
    "integer parameter": (lambda p: write_npz(p, **{"s2.coef": np.zeros(6, np.int32)}), "s2.coef"),
    "unknown variant": (lambda p: write_npz(p, __variant__=np.array("lenet1")), "unknown variant 'lenet1'"),
    "format version 99": (lambda p: write_npz(p, __format__=np.array(99)), "format 99"),
    "no format version": (lambda p: write_npz(p, drop=["__format__"]), "no format version"),
    "no variant": (lambda p: write_npz(p, drop=["__variant__"]), "variant"),
}


@pytest.mark.parametrize("name", sorted(CORRUPT_FILES))
def test_load_refuses_a_corrupt_file(tmp_path, name):
    """Anything but a complete model file of a known format and variant raises ValueError saying why,
    with the path in the message."""
    write, message = CORRUPT_FILES[name]
    path = tmp_path / "model.npz"
    write(path)
    with pytest.raises(ValueError, match=message) as info:
        lenet_fast.load(path)
    assert str(path) in str(info.value)


def test_load_refuses_a_truncated_file(tmp_path):
    good = tmp_path / "good.npz"
    lenet_fast.LeNet5("classic").save(good)
    data = good.read_bytes()
    for cut in (len(data) // 2, len(data) - 1, 100):
        bad = tmp_path / f"cut{cut}.npz"
        bad.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="not a lenet_fast model file"):
            lenet_fast.load(bad)


UNPICKLED = []


def record_unpickling(tag):
    UNPICKLED.append(tag)


class Canary:
    """Records its own unpickling: a file that made load() unpickle would show up in UNPICKLED."""

    def __reduce__(self):
        return (record_unpickling, ("unpickled",))


@pytest.mark.parametrize("slot", ["c1.weight", "__variant__", "__format__", "extra"])
def test_load_never_unpickles(tmp_path, slot):
    """An object array in the file (pickled by np.savez) is refused with ValueError, never unpickled."""
    payload = np.empty(2, dtype=object)
    payload[:] = [Canary(), Canary()]
    assert pickle.loads(pickle.dumps(Canary())) is None and UNPICKLED.pop() == "unpickled"  # the canary works
    path = write_npz(tmp_path / "evil.npz", **{slot: payload})
    with pytest.raises(ValueError, match="not a lenet_fast model file|pickle|[Oo]bject"):
        lenet_fast.load(path)
    assert UNPICKLED == []


def test_load_of_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        lenet_fast.load(tmp_path / "nowhere.npz")


# ---- build facts ---------------------------------------------------------------------------------------


def test_build_info():
    info = lenet_fast.build_info()
    assert set(info) >= {"version", "openmp", "num_threads", "isa"}
    assert info["version"] == lenet_fast.__version__ and isinstance(info["version"], str)
    assert isinstance(info["openmp"], bool)
    assert isinstance(info["num_threads"], int) and info["num_threads"] >= 1
    assert info["num_threads"] == lenet_fast.get_num_threads()
    assert info["isa"] in {"avx512", "avx2", "baseline"}
    if not info["openmp"]:
        assert info["num_threads"] == 1


def test_repr():
    assert repr(lenet_fast.LeNet5("classic")) == "LeNet5(variant='classic', params=60000)"
