"""The int8 kernels (csrc/int8_*.c) against a pure-NumPy integer reference, on every int8 path this CPU has
(_core.int8_isas(): the float32 paths, and their VNNI forms where the CPU runs them).

The integer sums must be exact (lf_int8_gemm compared for equality, with extreme values that would saturate
an int16 step). Whole layers are compared through Int8Network: a layer's output codes may differ from the
reference's by one where the float32 step (FMA on AVX2, the fitted tanh) rounds a value that lies on a
code boundary differently from float64; anything else (a wrong tap, a lost zero point) moves most codes
by many steps, which the bounds below refuse (test_the_check_catches_a_wrong_offset)."""
import contextlib

import numpy as np
import pytest

from lenet_fast import _core

SQUASH_A, SQUASH_S = 1.7159, 2.0 / 3.0
INT8_ISAS = _core.int8_isas()


@contextlib.contextmanager
def int8_path(name):
    _core.select_int8_isa(name)
    try:
        yield
    finally:
        _core.select_int8_isa(None)


def test_the_paths_include_the_baseline_and_the_default():
    assert "baseline" in INT8_ISAS
    assert _core.int8_isa() in INT8_ISAS
    with pytest.raises(ValueError):
        _core.select_int8_isa("sse9")


@pytest.mark.parametrize("isa", INT8_ISAS)
def test_gemm_is_exact(isa):
    rng = np.random.default_rng(5)
    with int8_path(isa):
        for m, n, depth in [(1, 1, 32), (3, 5, 64), (4, 2, 32), (37, 13, 160), (784, 6, 32), (8, 120, 416)]:
            a = rng.integers(0, 256, (m, depth), dtype=np.uint8)
            w = rng.integers(-64, 65, (n, depth), dtype=np.int8)
            want = w.astype(np.int64) @ a.T.astype(np.int64)
            assert np.array_equal(_core.int8_gemm(a, w), want), (m, n, depth)


@pytest.mark.parametrize("isa", INT8_ISAS)
def test_gemm_does_not_saturate(isa):
    """The extremes: 255 x +-64 in every position, the largest pair sums vpmaddubsw's int16 takes."""
    a = np.full((5, 416), 255, dtype=np.uint8)
    w = np.full((3, 416), 64, dtype=np.int8)
    w[1] = -64
    with int8_path(isa):
        got = _core.int8_gemm(a, w)
    assert got[0, 0] == 416 * 255 * 64 and got[1, 0] == -416 * 255 * 64


def test_gemm_refuses_bad_arrays():
    a = np.zeros((2, 32), dtype=np.uint8)
    w = np.zeros((2, 32), dtype=np.int8)
    with pytest.raises(TypeError):
        _core.int8_gemm(a.astype(np.int8), w)
    with pytest.raises(ValueError):
        _core.int8_gemm(a[:, :30].copy(), w[:, :30].copy())
    with pytest.raises(ValueError):
        _core.int8_gemm(a, np.full((2, 32), -65, dtype=np.int8))


# ---- a reference of the quantized network, in NumPy ----------------------------------------------------


def act(a, name):
    return {"none": a, "relu": np.maximum(a, 0), "squash": SQUASH_A * np.tanh(SQUASH_S * a)}[name]


def epilogue(acc, spec):
    """acc (out, ...) int64 through the float32 step in float64: (values, codes or None)."""
    shape = (-1,) + (1,) * (acc.ndim - 1)
    a = (acc - spec["offset"].reshape(shape)) * spec["scale"].astype(np.float64).reshape(shape) \
        + spec["bias"].astype(np.float64).reshape(shape)
    y = act(a, spec["act"])
    if spec["out_scale"] is None:
        return y, None
    return y, np.clip(np.rint(y / spec["out_scale"] + spec["out_zero"]), 0, 255)


def reference(specs, pixels, field):
    """The network's output for uint8 pixels (N, h, w): float64 values or codes, as Int8Network gives."""
    n, h, w = pixels.shape
    x = np.zeros((n, 1, field, field), dtype=np.int64)
    oy, ox = (field - h) // 2, (field - w) // 2
    x[:, 0, oy:oy + h, ox:ox + w] = pixels
    out = []
    for image in x:
        t = image
        for spec in specs:
            kind = spec["kind"]
            if kind == "conv":
                k, (c, hh, ww) = spec["kernel"], t.shape
                q = spec["weight"][:, : c * k * k].astype(np.int64).reshape(-1, c, k, k)
                windows = np.lib.stride_tricks.sliding_window_view(t, (k, k), axis=(1, 2))  # c, oh, ow, k, k
                acc = np.einsum("ocij,cyxij->oyx", q, windows)
                y, codes = epilogue(acc, spec)
                t = y if codes is None else codes.astype(np.int64)
            elif kind == "pool":
                c, hh, ww = t.shape
                win = t[:, : hh // 2 * 2, : ww // 2 * 2].reshape(c, hh // 2, 2, ww // 2, 2)
                if spec["pool"] == "max":
                    t = win.max(axis=(2, 4))
                else:
                    y, codes = epilogue(win.sum(axis=(2, 4)), spec)
                    t = y if codes is None else codes.astype(np.int64)
            elif kind == "full":
                v = t.reshape(-1)
                acc = spec["weight"][:, : v.size].astype(np.int64) @ v
                y, codes = epilogue(acc, spec)
                t = y if codes is None else codes.astype(np.int64)
            else:
                v = t.reshape(-1)
                t = ((v[None, :] - spec["centers"].astype(np.float64)) ** 2).sum(axis=1)
        out.append(np.asarray(t, dtype=np.float64).reshape(-1))
    return np.array(out)


def rows(rng, out, taps, depth):
    w = np.zeros((out, depth), dtype=np.int8)
    w[:, :taps] = rng.integers(-64, 65, (out, taps))
    return w


def code_layer(rng, kind, out, taps, act_name, in_zero, codes=True, **extra):
    depth = -(-taps // _core.I8_DEPTH) * _core.I8_DEPTH
    w = rows(rng, out, taps, depth)
    # scales that keep the pre-activations O(1) for codes spread over 0..255
    scale = (rng.uniform(0.5, 1.5, out) / (64 * 128 * np.sqrt(taps))).astype(np.float32)
    spec = dict(kind=kind, out=out, weight=w, offset=(in_zero * w.astype(np.int64).sum(axis=1)).astype(np.int32),
                scale=scale, bias=rng.uniform(-0.3, 0.3, out).astype(np.float32), act=act_name,
                out_scale=(1 / 100 if codes else None), out_zero=(128 if act_name == "squash" else 0), **extra)
    return spec


def trainable_pool(rng, c, z):
    return dict(kind="pool", pool="trainable", offset=np.full(c, 4 * z, np.int32),
                scale=rng.uniform(0.002, 0.004, c).astype(np.float32),
                bias=rng.uniform(-0.2, 0.2, c).astype(np.float32),
                act="squash", out_scale=1 / 100, out_zero=z)


def random_network(rng, classic):
    """A LeNet-5-shaped int8 network with random integer weights (classic: squash, trainable pooling, RBF;
    modern: ReLU, max pooling, float32 logits)."""
    a, z = ("squash", 128) if classic else ("relu", 0)
    specs = [code_layer(rng, "conv", 6, 25, a, 20, kernel=5),
             trainable_pool(rng, 6, z) if classic else dict(kind="pool", pool="max"),
             code_layer(rng, "conv", 16, 150, a, z, kernel=5),
             trainable_pool(rng, 16, z) if classic else dict(kind="pool", pool="max"),
             code_layer(rng, "full", 120, 400, a, z),
             code_layer(rng, "full", 84, 120, a, z, codes=not classic)]
    if classic:
        specs.append(dict(kind="rbf", centers=rng.choice([-1.0, 1.0], (10, 84)).astype(np.float32)))
    else:
        specs.append(code_layer(rng, "full", 10, 84, "none", 0, codes=False))
    return specs


def check(got, want, codes):
    if codes:
        diff = np.abs(got.astype(np.int64) - want)
        assert diff.max() <= 1 and (diff > 0).mean() < 0.02, (diff.max(), (diff > 0).mean())
    else:
        scale = np.abs(want).max() + 1e-30
        assert np.abs(got - want).max() <= 2e-3 * scale, np.abs(got - want).max() / scale


@pytest.mark.parametrize("classic", [True, False], ids=["classic", "modern"])
@pytest.mark.parametrize("isa", INT8_ISAS)
def test_each_layer_matches_the_reference(classic, isa):
    """The network cut after each layer (its output as codes, or float32 where it gives float32) against
    the NumPy reference, on 11 images (a block and a ragged one) of 28x28 and of 32x32 pixels."""
    rng = np.random.default_rng(1 if classic else 2)
    specs = random_network(rng, classic)
    with int8_path(isa):
        for size in (28, 32):
            pixels = rng.integers(0, 256, (11, size, size), dtype=np.uint8)
            for k in range(1, len(specs) + 1):
                net = _core.Int8Network((1, 32, 32), specs[:k])
                check(net.forward(pixels), reference(specs[:k], pixels, 32), net.codes)


def test_the_check_catches_a_wrong_offset():
    rng = np.random.default_rng(3)
    specs = random_network(rng, True)[:1]
    pixels = rng.integers(0, 256, (4, 28, 28), dtype=np.uint8)
    got = _core.Int8Network((1, 32, 32), specs).forward(pixels)
    wrong = dict(specs[0], offset=specs[0]["offset"] + 2000)
    with pytest.raises(AssertionError):
        check(got, reference([wrong], pixels, 32), True)


@pytest.mark.parametrize("classic", [True, False], ids=["classic", "modern"])
def test_the_same_bits_for_any_threads_and_batch(classic, restore_threads):
    rng = np.random.default_rng(4)
    net = _core.Int8Network((1, 32, 32), random_network(rng, classic))
    pixels = rng.integers(0, 256, (37, 28, 28), dtype=np.uint8)
    _core.set_num_threads(1)
    one = net.forward(pixels)
    parts = np.concatenate([net.forward(pixels[:5]), net.forward(pixels[5:6]), net.forward(pixels[6:])])
    _core.set_num_threads(2)
    two = net.forward(pixels)
    assert one.dtype == np.float32 and np.array_equal(one, two) and np.array_equal(one, parts)
    assert np.ptp(one) > 0


def _bad(specs, i, **change):
    out = [dict(s) for s in specs]
    out[i].update(change)
    return out


def test_bad_layers_are_refused():
    rng = np.random.default_rng(6)
    specs = random_network(rng, False)
    w = specs[0]["weight"].copy()
    w[0, 30] = 1  # in the padding
    cases = [
        (ValueError, _bad(specs, 0, weight=w)),
        (TypeError, _bad(specs, 0, weight=specs[0]["weight"].astype(np.int16))),
        (ValueError, _bad(specs, 0, weight=np.where(specs[0]["weight"] != 0, np.int8(100), np.int8(0)))),
        (ValueError, _bad(specs, 0, weight=specs[0]["weight"][:, :31].copy())),
        (ValueError, _bad(specs, 0, out_zero=256)),
        (ValueError, _bad(specs, 0, out_scale=0.0)),
        (ValueError, _bad(specs, 0, out_scale=float("nan"))),
        (ValueError, _bad(specs, 0, scale=np.full(6, np.nan, np.float32))),
        (ValueError, _bad(specs, 0, offset=np.full(6, 2**30, np.int32))),
        (ValueError, _bad(specs, 0, kernel=40)),
        (ValueError, _bad(specs, 0, act="swish")),
        (ValueError, _bad(specs, 0, out_scale=None)),  # the max pooling after it takes codes
        (ValueError, _bad(specs, 1, pool="average")),
        (ValueError, [dict(kind="rbf", centers=np.zeros((10, 1024), np.float32))]),  # RBF on the pixels' codes
    ]
    for error, bad in cases:
        with pytest.raises(error):
            _core.Int8Network((1, 32, 32), bad)
    with pytest.raises(ValueError):
        _core.Int8Network((3, 32, 32), specs)


def test_bad_inputs_are_refused():
    net = _core.Int8Network((1, 32, 32), random_network(np.random.default_rng(7), False))
    for error, x in [(TypeError, np.zeros((2, 28, 28), np.float32)), (ValueError, np.zeros((2, 33, 28), np.uint8)),
                     (ValueError, np.zeros((2, 28), np.uint8)),
                     (ValueError, np.zeros((2, 28, 56), np.uint8)[:, :, ::2]),
                     (ValueError, [[0]]), (ValueError, np.zeros((2, 3, 28, 28), np.uint8))]:
        with pytest.raises(error):
            net.forward(x)
    assert net.forward(np.zeros((0, 28, 28), np.uint8)).shape == (0, 10)
