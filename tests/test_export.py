"""ONNX export (lenet_fast.export, LeNet5.to_onnx, lenet-fast export): ONNX Runtime's output of the exported
graph equals model.forward within the documented tolerance (1e-5 (1 + |forward|): absolute near 0, relative
for the large classic distances and modern logits) for both pretrained models and untrained models of every option, on
seeded random inputs and the 1,000 digits of tests/data, with identical predictions; the pixels form
likewise on uint8 digits; the file passes onnx's checker and carries its metadata; bad arguments are
refused before any work. Skipped without onnx and onnxruntime (the [onnx] extra), but for the test of the
ImportError that names the extra."""
import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

import lenet_fast
from lenet_fast import Ensemble, LeNet5, export, pretrained
from lenet_fast.__main__ import main
from lenet_fast.datasets import load_mnist

needs_onnx = pytest.mark.skipif(not all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime")),
                                reason='needs onnx and onnxruntime: pip install "lenet_fast[onnx]"')

TOLERANCE = 1e-5  # |onnx - forward| <= 1e-5 (1 + |forward|): absolute below 1, relative above (docs/export.md)

# untrained models of every option: each activation, dropout rows, each initialisation, both variants
OPTIONED = [
    ("modern", dict(activation="relu", dropout=0.5, init="xavier")),
    ("modern", dict(activation="leaky_relu", init="paper")),
    ("modern", dict(activation="elu", dropout=0.3)),
    ("modern", dict(activation="tanh", init="xavier")),
    ("modern", dict(activation="sigmoid", dropout=0.2, init="paper")),
    ("classic", dict(dropout=0.5, init="xavier")),
    ("classic", dict(init="he")),
]


@pytest.fixture(scope="module")
def subset(mnist_subset):
    images, labels = load_mnist(mnist_subset, "test")
    assert len(images) == 1000
    return images, labels


@pytest.fixture(scope="module")
def digits(subset):
    return subset[0]


def session(data):
    import onnxruntime as ort
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"])


def run(data, x):
    s = session(data)
    return s.run(None, {s.get_inputs()[0].name: x})[0]


def normalized(images):
    """uint8 (N, 28, 28) digits as forward(normalized=True) takes them: (N, 1, 32, 32) float32."""
    x = np.full((len(images), 1, 32, 32), -0.1, np.float32)
    x[:, 0, 2:30, 2:30] = images.astype(np.float32) * np.float32(1.275 / 255) - np.float32(0.1)
    return x


def random_inputs(n, seed):
    return np.random.default_rng(seed).uniform(-0.1, 1.175, size=(n, 1, 32, 32)).astype(np.float32)


def assert_close(got, want):
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=TOLERANCE, atol=TOLERANCE)


@needs_onnx
@pytest.mark.parametrize("variant", ["classic", "modern"])
def test_pretrained_models_run_in_onnx_runtime_as_forward(variant, subset):
    digits, labels = subset
    model = pretrained(variant)
    data = model.to_onnx()
    for x in (normalized(digits), random_inputs(200, seed=1)):
        want = model.forward(x, normalized=True)
        got = run(data, x)
        assert_close(got, want)
    got = run(data, normalized(digits))
    assert np.array_equal(np.argmin(got, 1) if variant == "classic" else np.argmax(got, 1), model.predict(digits))
    assert (model.predict(digits) == labels).mean() > 0.95  # the trained weights, not a trivial network


@needs_onnx
@pytest.mark.parametrize("variant,options", OPTIONED, ids=lambda v: v if isinstance(v, str) else
                         ",".join(f"{k}={x}" for k, x in v.items()))
def test_untrained_models_of_every_option_run_as_forward(variant, options, digits):
    model = LeNet5(variant, seed=7, **options)
    data = export.export_onnx(model)
    for x in (normalized(digits), random_inputs(100, seed=2)):
        want = model.forward(x, normalized=True)
        assert np.ptp(want, axis=1).mean() > 1e-3  # outputs that tell the classes apart: a check that can fail
        assert_close(run(data, x), want)


@needs_onnx
@pytest.mark.parametrize("model", [pretrained("classic"), pretrained("modern"),
                                   LeNet5("modern", seed=3, activation="elu", dropout=0.5)],
                         ids=["classic", "modern", "modern-elu-dropout"])
def test_the_pixels_form_takes_uint8_digits(model, digits):
    data = model.to_onnx(pixels=True)
    noise = np.random.default_rng(4).integers(0, 256, size=(50, 28, 28), dtype=np.uint8)
    for images in (digits, noise):
        assert_close(run(data, images), model.forward(images))
    s = session(data)
    assert [(i.name, i.type, i.shape) for i in s.get_inputs()] == [("pixels", "tensor(uint8)", ["N", 28, 28])]


@needs_onnx
def test_the_file_loads_passes_the_checker_and_carries_the_metadata(tmp_path):
    import onnx

    model = LeNet5("modern", seed=1, activation="tanh", dropout=0.25)
    model.temperature = 1.75
    path = tmp_path / "m.onnx"
    assert model.to_onnx(path) == str(path)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert path.read_bytes() == model.to_onnx()  # the bytes form is the file's
    assert proto.producer_name == "lenet_fast" and proto.producer_version == lenet_fast.__version__
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", 17)]
    props = {p.key: p.value for p in proto.metadata_props}
    assert props == {"variant": "modern", "options": json.dumps({"activation": "tanh", "dropout": 0.25}),
                     "temperature": "1.75", "input": "x", "output": "logits"}
    assert "argmax" in proto.doc_string and "softmax(logits / temperature)" in proto.doc_string
    graph = proto.graph
    assert [i.name for i in graph.input] == ["x"] and [o.name for o in graph.output] == ["logits"]
    assert not any(n.op_type == "Dropout" for n in graph.node)  # the identity at inference: omitted
    classic = onnx.load_from_string(pretrained("classic").to_onnx())
    assert "argmin" in classic.doc_string and [o.name for o in classic.graph.output] == ["distances"]
    props = {p.key: p.value for p in classic.metadata_props}
    calibrated = pretrained("classic")
    assert calibrated.outlier_limit is not None
    assert (props["temperature"], props["outlier_limit"]) == (repr(calibrated.temperature),
                                                              repr(calibrated.outlier_limit))


@needs_onnx
def test_an_existing_file_is_replaced_whole(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"old")
    LeNet5("classic").to_onnx(path)
    assert path.read_bytes() == LeNet5("classic").to_onnx()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # no temporary file left


@needs_onnx
def test_the_weights_are_read_under_the_guard(refused_while_training):
    """An export from another thread while a thread trains the model is refused, as a prediction is."""
    model = LeNet5("modern")
    refused_while_training(model, model.to_onnx)


@pytest.mark.parametrize("thing,match", [
    ("classic", "takes a lenet_fast.LeNet5, got str"),
    (object(), "takes a lenet_fast.LeNet5, got object"),
    (Ensemble([LeNet5("modern", seed=0), LeNet5("modern", seed=1)]), "not an Ensemble: export each of its members"),
], ids=["str", "object", "ensemble"])
def test_anything_but_a_lenet5_is_a_type_error(thing, match):
    with pytest.raises(TypeError, match=match):
        export.export_onnx(thing)


def test_bad_destinations_are_refused_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # any work would need it: the path is refused first
    with pytest.raises(FileNotFoundError, match="the folder .*no.* does not exist"):
        LeNet5("classic").to_onnx(tmp_path / "no" / "m.onnx")
    with pytest.raises(IsADirectoryError):
        LeNet5("classic").to_onnx(tmp_path)
    with pytest.raises(TypeError, match="path must be a file path or None"):
        LeNet5("classic").to_onnx(3)
    assert list(tmp_path.iterdir()) == []


def test_without_onnx_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx raises ImportError
    with pytest.raises(ImportError, match=r'pip install "lenet_fast\[onnx\]"'):
        LeNet5("modern").to_onnx()


@needs_onnx
def test_a_layer_the_exporter_does_not_know_is_refused():
    model = LeNet5("classic")
    model.layers = tuple(l._replace(pool="average") if l.kind == "subsample" else l for l in model.layers)
    with pytest.raises(ValueError, match="no builder for 'average' subsampling"):
        model.to_onnx()


@needs_onnx
def test_the_export_command(tmp_path, capsys, digits):
    out = tmp_path / "modern.onnx"
    assert main(["export", "--variant", "modern", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    model = pretrained("modern")
    assert_close(run(out.read_bytes(), normalized(digits[:100])), model.forward(digits[:100]))

    saved = tmp_path / "mine.npz"
    LeNet5("classic", seed=5, dropout=0.5).save(saved)
    out = tmp_path / "mine.onnx"
    assert main(["export", "--model", str(saved), str(out), "--pixels"]) == 0
    assert_close(run(out.read_bytes(), digits[:100]), lenet_fast.load(saved).forward(digits[:100]))


def test_the_export_commands_errors_are_one_line(tmp_path, capsys, monkeypatch):
    result = subprocess.run([sys.executable, "-m", "lenet_fast", "export", str(tmp_path / "no" / "m.onnx")],
                            capture_output=True, text=True, timeout=120)  # as a user runs it
    assert (result.returncode, result.stdout) == (1, "")
    folder = tmp_path / "no"
    assert result.stderr == f"lenet-fast: error: {folder / 'm.onnx'}: the folder {folder} does not exist\n"
    monkeypatch.setitem(sys.modules, "onnx", None)
    assert main(["export", str(tmp_path / "m.onnx")]) == 1
    err = capsys.readouterr().err
    assert err == 'lenet-fast: error: ONNX export needs the onnx package: pip install "lenet_fast[onnx]"\n'
    assert list(tmp_path.iterdir()) == []


def test_the_export_command_has_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["export", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: lenet-fast export ") and "--pixels" in out and 'lenet_fast[onnx]' in out
