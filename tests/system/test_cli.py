"""The lenet-fast command end to end (python -m lenet_fast in a subprocess, as a user runs it), and the pretrained
models it uses by default. Tests that need the pretrained weights skip when lenet_fast/weights lacks them."""
import hashlib
import importlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lenet_fast
from lenet_fast.__main__ import main
from lenet_fast.pretrained import pretrained, weights_path

DATA = Path(__file__).resolve().parents[1] / "data"  # the first 1,000 MNIST test digits
SAMPLES = lenet_fast.sample_paths()
ERROR_LINE = re.compile(r"lenet-fast: error: \S.*\n")
PYTHON_WORDING = re.compile(r"(?<![-\w])[a-z_]+=|\bpath=")  # keyword arguments (path=), not --flags


def run(*args, env=None):
    """python -m lenet_fast args, on one thread and without LENET_FAST_DATA unless env sets them."""
    full_env = {k: v for k, v in os.environ.items() if k != "LENET_FAST_DATA"}
    full_env.update({"OMP_NUM_THREADS": "1"}, **(env or {}))
    return subprocess.run([sys.executable, "-m", "lenet_fast", *map(str, args)], capture_output=True, text=True,
                          env=full_env, timeout=120)


def ok(*args, env=None):
    result = run(*args, env=env)
    assert result.returncode == 0, result.stderr
    return result


def need_weights(variant="classic"):
    if not weights_path(variant).is_file():
        pytest.skip(f"no pretrained {variant} weights: {weights_path(variant)} is missing "
                    "(benchmarks/reproduce.py --save-model makes them)")


@pytest.fixture
def fresh_model(tmp_path):
    """A saved, untrained model: for what does not depend on the weights' quality."""
    path = tmp_path / "fresh.npz"
    lenet_fast.LeNet5("modern", seed=0).save(path)
    return path


@pytest.fixture
def mnist_dir(tmp_path):
    """An MNIST folder whose training files are the test subset's, so that train can run without the full set."""
    folder = tmp_path / "mnist"
    folder.mkdir()
    for kind in ("images-idx3", "labels-idx1"):
        shutil.copy(DATA / f"t10k-{kind}-ubyte.gz", folder / f"t10k-{kind}-ubyte.gz")
        shutil.copy(DATA / f"t10k-{kind}-ubyte.gz", folder / f"train-{kind}-ubyte.gz")
    return folder


def test_default_run_reads_the_ten_samples_and_shows_the_build():
    need_weights()
    out = ok("--threads", "1").stdout
    rows = re.findall(r"^\s+digit_(\d)\.png\s+(\d)\s+([\d.]+)%$", out, re.M)
    assert [int(name) for name, _, _ in rows] == list(range(10)), out
    assert sum(name == digit for name, digit, _ in rows) >= 9, out
    assert all(0 < float(c) <= 100 for _, _, c in rows)
    assert re.search(r"^lenet_fast \S+: instruction set \w+, OpenMP o(n|ff), 1 thread$", out, re.M), out


def test_default_run_needs_no_pillow():
    """A bare install (no extras) runs its first command: the samples are read without Pillow, the same."""
    need_weights()
    code = "import sys; sys.modules['PIL'] = None; from lenet_fast.__main__ import main; sys.exit(main(['--threads', '1']))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ok("--threads", "1").stdout


def test_version_for_every_kind_of_run(tmp_path):
    """--version from python -m lenet_fast, from the console script, and from a folder holding another folder
    named lenet_fast (the parent folder of a clone), which shadows an editable install's package."""
    expected = f"lenet-fast {lenet_fast.__version__}\n"
    assert ok("--version").stdout == expected
    script = Path(sys.executable).with_name("lenet-fast")
    if script.is_file():
        result = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0 and result.stdout == expected, result.stderr
    clone = tmp_path / "lenet_fast"
    clone.mkdir()
    (clone / "README.md").write_text("a clone's root: no __init__.py here")
    result = subprocess.run([sys.executable, "-m", "lenet_fast", "--version"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0 and result.stdout == expected, result.stderr
    # any other command there: it runs (a regular install wins) or says what is wrong in one line
    result = subprocess.run([sys.executable, "-m", "lenet_fast", "--threads", "1"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        assert result.returncode == 1 and ERROR_LINE.fullmatch(result.stderr), result.stderr
        assert f"the folder {clone} shadows the installed lenet_fast" in result.stderr


def test_predict_sample_files_as_text_and_json():
    need_weights()
    text = ok("predict", *SAMPLES).stdout.splitlines()
    assert [line.split()[0] for line in text] == [str(p) for p in SAMPLES]
    rows = json.loads(ok("predict", *SAMPLES, "--json").stdout)
    assert [row["file"] for row in rows] == [str(p) for p in SAMPLES]
    assert sum(row["digit"] == int(Path(row["file"]).stem[-1]) for row in rows) >= 9, rows
    for row, line in zip(rows, text):
        assert line.split()[1] == str(row["digit"])
        assert len(row["probabilities"]) == 10 and abs(sum(row["probabilities"]) - 1) < 1e-4
        assert row["confidence"] == row["probabilities"][row["digit"]] == max(row["probabilities"])


def test_predict_reject_refuses_below_the_confidence_and_keeps_the_rest():
    """--reject P: an image whose confidence is below P is printed with '-' (digit -1 in JSON), the others as
    without it; the sample digits' confidences straddle 0.99 (digit_3's is lower), so the check can fail both
    ways. A value outside [0, 1] is a usage error."""
    need_weights()
    rows = json.loads(ok("predict", *SAMPLES, "--json").stdout)
    refused = json.loads(ok("predict", *SAMPLES, "--json", "--reject", "0.99").stdout)
    want = [-1 if row["confidence"] < 0.99 else row["digit"] for row in rows]
    assert [row["digit"] for row in refused] == want and -1 in want and any(d >= 0 for d in want)
    text = ok("predict", *SAMPLES, "--reject", "0.99").stdout.splitlines()
    assert [line.split()[1] for line in text] == ["-" if d < 0 else str(d) for d in want]
    result = run("predict", *SAMPLES, "--reject", "1.5")
    assert result.returncode == 2 and "expected a number in [0, 1]" in result.stderr


def test_predict_expands_folders_to_their_image_files(tmp_path, fresh_model):
    folder = tmp_path / "scans"
    folder.mkdir()
    for p in SAMPLES[:3]:
        shutil.copy(p, folder / p.name)
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden.png").write_text("not an image either")
    rows = json.loads(ok("predict", SAMPLES[5], folder, "--model", fresh_model, "--json").stdout)
    expected = [SAMPLES[5]] + [folder / p.name for p in SAMPLES[:3]]
    assert [row["file"] for row in rows] == [str(p) for p in expected]
    model = lenet_fast.load(fresh_model)
    images, _ = lenet_fast.read_digits(expected)
    assert [row["digit"] for row in rows] == model.predict(images).tolist()


def folder_with_bad_files(folder):
    """The ten sample digits and, between them in name order, a truncated PNG, a text file named .png, an
    empty file and a blank image: {bad file: what its error line says}."""
    Image = pytest.importorskip("PIL.Image")  # the bad files' reasons are Pillow's
    folder.mkdir()
    for p in SAMPLES:
        shutil.copy(p, folder / p.name)
    good = SAMPLES[3].read_bytes()
    (folder / "digit_3_corrupt.png").write_bytes(good[: len(good) // 2])
    (folder / "digit_5_text.png").write_text("not an image")
    (folder / "a_empty.png").write_bytes(b"")
    Image.new("L", (60, 40), 255).save(folder / "z_blank.png")
    return {"a_empty.png": "a_empty.png: not an image file", "digit_3_corrupt.png": "digit_3_corrupt.png: not an image",
            "digit_5_text.png": "digit_5_text.png: not an image file", "z_blank.png": "z_blank.png contains no digit"}


def test_predict_prints_every_good_file_and_reports_each_bad_one(tmp_path):
    need_weights()
    folder = tmp_path / "scans"
    bad = folder_with_bad_files(folder)
    result = run("predict", folder)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [[str(folder / p.name), str(d)] for d, p in enumerate(SAMPLES)]
    errors = result.stderr.splitlines(keepends=True)
    assert len(errors) == len(bad) and all(ERROR_LINE.fullmatch(line) for line in errors), result.stderr
    for line, (name, says) in zip(errors, sorted(bad.items())):
        assert str(folder / name) in line and says in line, line
    assert "Traceback" not in result.stderr

    result = run("predict", folder, "--json")
    assert result.returncode == 1 and len(result.stderr.splitlines()) == len(bad)
    rows = json.loads(result.stdout)
    names = sorted([p.name for p in SAMPLES] + list(bad))
    assert [row["file"] for row in rows] == [str(folder / name) for name in names]
    for row in rows:
        name = Path(row["file"]).name
        if name in bad:
            assert set(row) == {"file", "error"} and bad[name] in row["error"]
        else:
            assert row["digit"] == int(name[len("digit_")]) and len(row["probabilities"]) == 10


def test_predict_reports_missing_paths_and_folders_without_images(tmp_path):
    need_weights()
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no image here")
    missing = tmp_path / "missing.png"
    result = run("predict", SAMPLES[7], missing, empty, SAMPLES[2])
    assert result.returncode == 1
    assert [line.split()[:2] for line in result.stdout.splitlines()] == [[str(SAMPLES[7]), "7"], [str(SAMPLES[2]), "2"]]
    assert result.stderr == (f"lenet-fast: error: {missing}: No such file or directory\n"
                             f"lenet-fast: error: {empty}: no image files (names ending in .bmp, .gif, .jpeg, .jpg, "
                             ".pbm, .pgm, .png, .pnm, .ppm, .tif, .tiff, .webp)\n")
    rows = json.loads(run("predict", SAMPLES[7], missing, empty, SAMPLES[2], "--json").stdout)
    assert [(row["file"], row.get("digit"), "error" in row) for row in rows] == [
        (str(SAMPLES[7]), 7, False), (str(missing), None, True), (str(empty), None, True), (str(SAMPLES[2]), 2, False)]


def test_predict_exits_0_when_every_file_is_read(tmp_path):
    need_weights()
    folder = tmp_path / "good"
    folder.mkdir()
    for p in SAMPLES[4:7]:
        shutil.copy(p, folder / p.name)
    result = run("predict", folder, SAMPLES[9])
    assert result.returncode == 0 and result.stderr == ""
    assert [line.split()[1] for line in result.stdout.splitlines()] == ["4", "5", "6", "9"]


def test_evaluate_prints_the_error_rate_and_the_confusion_matrix(fresh_model):
    labels = lenet_fast.load_mnist(DATA, "test")[1]
    predicted = lenet_fast.load(fresh_model).predict(lenet_fast.load_mnist(DATA, "test")[0])
    expected = np.zeros((10, 10), dtype=int)
    np.add.at(expected, (labels, predicted), 1)
    errors = int((predicted != labels).sum())

    out = ok("evaluate", "--data", DATA, "--model", fresh_model, "--threads", "1").stdout.splitlines()
    assert f"1,000 MNIST test images: error {errors / 10:.2f}% ({errors} wrong)" in out[0]
    assert out[2].split() == [str(d) for d in range(10)]
    assert np.array_equal([[int(n) for n in line.split()[1:]] for line in out[3:13]], expected)
    assert [int(line.split()[0]) for line in out[3:13]] == list(range(10))

    result = json.loads(ok("evaluate", "--model", fresh_model, "--json", env={"LENET_FAST_DATA": str(DATA)}).stdout)
    assert result["images"] == 1000 and result["errors"] == errors and result["error_rate"] == errors / 1000
    assert result["confusion"] == expected.tolist()
    result = json.loads(ok("evaluate", "--data", DATA, "--model", fresh_model, "--limit", 100, "--json").stdout)
    assert result["images"] == 100 and np.sum(result["confusion"]) == 100


def test_evaluate_the_pretrained_model_by_default():
    need_weights()
    out = ok("evaluate", "--data", DATA).stdout
    error = float(re.search(r"pretrained classic model on 1,000 MNIST test images: error ([\d.]+)%", out)[1])
    assert error <= 1.5, out


@pytest.mark.parametrize("variant", ["classic", "modern"])
def test_pretrained_models_are_at_least_98_5_percent_accurate_on_the_subset(variant):
    need_weights(variant)
    images, labels = lenet_fast.load_mnist(DATA, "test")
    model = pretrained(variant)
    assert model.variant == variant
    assert (model.predict(images) == labels).mean() >= 0.985


def test_pretrained_returns_a_new_model_each_call():
    need_weights()
    first = pretrained()
    saved = lenet_fast.load(weights_path())
    first.params["c1.weight"][...] = 0
    second = pretrained()
    for name, value in saved.params.items():
        assert np.array_equal(second.params[name], value), name


def test_pretrained_errors(tmp_path, monkeypatch):
    module = importlib.import_module("lenet_fast.pretrained")
    with pytest.raises(ValueError, match="variant must be one of"):
        pretrained("lenet1")
    monkeypatch.setattr(module, "WEIGHTS", tmp_path)
    monkeypatch.setattr(module, "_cache", {})
    with pytest.raises(FileNotFoundError, match="no pretrained modern weights"):
        pretrained("modern")
    lenet_fast.LeNet5("classic").save(tmp_path / "modern.npz")
    with pytest.raises(ValueError, match="holds a classic model"):
        pretrained("modern")


def test_train_a_short_run_saves_a_model_and_reports_its_test_error(tmp_path, mnist_dir):
    out, checkpoint = tmp_path / "classic.npz", tmp_path / "run.ckpt.npz"
    result = ok("train", "--data", mnist_dir, "--epochs", 1, "--limit", 300, "--out", out, "--checkpoint", checkpoint)
    assert "epoch 1/1" in result.stderr  # progress: a tqdm bar or a plain line
    model = lenet_fast.load(out)
    assert model.variant == "classic"
    images, labels = lenet_fast.load_mnist(DATA, "test")
    errors = int((model.predict(images) != labels).sum())
    assert f"test error {errors / 10:.2f}% ({errors} of 1,000 images); classic model saved to {out}" in result.stdout

    resumed = ok("train", "--epochs", 2, "--limit", 300, "--out", out, "--resume", checkpoint, "--quiet",
                 env={"LENET_FAST_DATA": str(mnist_dir)})
    assert resumed.stderr == "" and resumed.stdout.startswith("test error ")

    out = tmp_path / "modern.npz"
    ok("train", "--data", mnist_dir, "--variant", "modern", "--optimizer", "sgd", "--lr", 0.02, "--batch-size", 16,
       "--seed", 3, "--epochs", 1, "--limit", 200, "--out", out, "--quiet")
    assert lenet_fast.load(out).variant == "modern"


@pytest.mark.parametrize("case", [
    "missing image", "text file as image", "no data folder", "folder without MNIST", "corrupt model",
    "unknown variant", "no files", "unknown command", "bad epochs", "missing output folder", "train without data",
])
def test_user_errors_end_with_one_line_and_a_status(case, tmp_path, fresh_model):
    text = tmp_path / "notes.txt"
    text.write_text("not a digit")
    corrupt = tmp_path / "model.npz"
    corrupt.write_bytes(fresh_model.read_bytes()[:500])
    sample = SAMPLES[0]
    args, status, message = {
        "missing image": (["predict", tmp_path / "nope.png"], 1, f"{tmp_path / 'nope.png'}: No such file"),
        "text file as image": (["predict", text, "--model", fresh_model], 1, "not an image file"),
        "no data folder": (["evaluate", "--model", fresh_model], 1, "no MNIST folder: pass --data"),
        "folder without MNIST": (["evaluate", "--data", tmp_path, "--model", fresh_model], 1,
                                 "give the folder that holds MNIST's four files with --data DIR or LENET_FAST_DATA"),
        "corrupt model": (["predict", sample, "--model", corrupt], 1, "not a lenet_fast model file"),
        "unknown variant": (["predict", sample, "--variant", "lenet1"], 2, "invalid choice: 'lenet1'"),
        "no files": (["predict"], 2, "required: FILE"),
        "unknown command": (["frobnicate"], 2, "invalid choice: 'frobnicate'"),
        "bad epochs": (["train", "--data", DATA, "--epochs", 0, "--out", tmp_path / "m.npz"], 2, "--epochs"),
        "missing output folder": (["train", "--data", DATA, "--epochs", 1, "--out", tmp_path / "no" / "m.npz"], 1,
                                  "does not exist"),
        "train without data": (["train", "--epochs", 1, "--out", tmp_path / "m.npz"], 1, "no MNIST folder"),
    }[case]
    result = run(*args)
    assert result.returncode == status, result.stderr
    assert ERROR_LINE.fullmatch(result.stderr), result.stderr
    assert message in result.stderr
    assert not PYTHON_WORDING.search(result.stderr), result.stderr  # the command's flags, not Python's arguments
    assert result.stdout == ""


@pytest.mark.parametrize("command", [[], ["predict"], ["train"], ["evaluate"], ["show"], ["bench"]])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: {' '.join(['lenet-fast', *command])} ")


def test_predict_and_evaluate_take_the_pretrained_ensemble():
    need_weights("ensemble")
    result = json.loads(ok("evaluate", "--data", DATA, "--variant", "ensemble", "--json").stdout)
    assert result["model"] == "pretrained ensemble" and result["images"] == 1000 and result["error_rate"] <= 0.01
    ensemble = lenet_fast.pretrained("ensemble")
    rows = json.loads(ok("predict", "--variant", "ensemble", "--json", *SAMPLES).stdout)
    assert [row["digit"] for row in rows] == list(range(10))
    np.testing.assert_allclose([row["probabilities"] for row in rows],
                               ensemble.predict_proba(lenet_fast.read_digits(SAMPLES)[0]), atol=1e-6)
    # read_number scores its cuts with one model's own output: the ensemble is not offered there
    result = run("read", "--variant", "ensemble", SAMPLES[0])
    assert result.returncode == 2 and "invalid choice: 'ensemble'" in result.stderr


@pytest.mark.usefixtures("needs_matplotlib")
def test_evaluate_writes_a_report_folder(tmp_path, fresh_model, png_size):
    folder = tmp_path / "made" / "report"
    printed = json.loads(ok("evaluate", "--data", DATA, "--model", fresh_model, "--limit", 300, "--json",
                            "--report", folder).stdout)  # stdout stays one JSON document
    record = json.loads((folder / "report.json").read_text())
    assert record["accuracy"] == printed["accuracy"] and record["confusion"] == printed["confusion"]
    assert record["n"] == 300 and record["data"]["limit"] == 300 and record["data"]["folder"] == str(DATA)
    assert record["model"]["file"] == str(fresh_model) and record["model"]["variant"] == "modern"
    assert record["model"]["sha256"] == hashlib.sha256(fresh_model.read_bytes()).hexdigest()
    assert sorted(p.name for p in folder.iterdir()) == ["confusion_matrix.png", "errors.png", "index.html",
                                                        "per_class.csv", "rejection.png", "report.json"]
    for name in ("confusion_matrix.png", "errors.png", "rejection.png"):
        png_size(folder / name)
    need_weights("ensemble")
    result = ok("evaluate", "--data", DATA, "--variant", "ensemble", "--limit", 200, "--report", tmp_path / "e")
    assert f"report written to {tmp_path / 'e' / 'index.html'}" in result.stdout
    assert json.loads((tmp_path / "e" / "report.json").read_text())["model"] == \
        {"variant": "ensemble", "pretrained": "pretrained ensemble"}


@pytest.mark.usefixtures("needs_matplotlib")
def test_train_plot_draws_the_curves_after_training(tmp_path, mnist_dir, png_size):
    curves = tmp_path / "curves.png"
    result = ok("train", "--data", mnist_dir, "--variant", "modern", "--epochs", 2, "--limit", 200, "--quiet",
                "--out", tmp_path / "m.npz", "--plot", curves)
    assert f"training curves drawn to {curves}" in result.stdout
    png_size(curves)


@pytest.mark.usefixtures("needs_matplotlib")
@pytest.mark.parametrize("variant", ["classic", "modern"])
def test_show_draws_the_feature_maps(tmp_path, variant, png_size):
    need_weights(variant)
    out = tmp_path / "maps.png"
    result = ok("show", "--variant", variant, SAMPLES[7], "--out", out)
    assert result.stdout == f"feature maps of {SAMPLES[7]} drawn to {out}\n"
    width, height = png_size(out)
    assert width > 400 and height > 300


@pytest.mark.usefixtures("needs_matplotlib")
@pytest.mark.parametrize("case", ["show missing image", "show into a missing folder", "show without --out",
                                  "show an ensemble", "report onto a file", "report below a file",
                                  "plot into a missing folder"])
def test_picture_errors_end_with_one_line_and_a_status(case, tmp_path, fresh_model):
    taken = tmp_path / "taken"
    taken.write_text("mine")
    args, status, message = {
        "show missing image": (["show", tmp_path / "nope.png", "--out", tmp_path / "m.png"], 1,
                               f"{tmp_path / 'nope.png'}: No such file"),
        "show into a missing folder": (["show", SAMPLES[0], "--out", tmp_path / "no" / "m.png"], 1,
                                       f"the folder {tmp_path / 'no'} does not exist"),
        "show without --out": (["show", SAMPLES[0]], 2, "required: --out"),
        "show an ensemble": (["show", "--variant", "ensemble", SAMPLES[0], "--out", tmp_path / "m.png"], 2,
                             "invalid choice: 'ensemble'"),
        "report onto a file": (["evaluate", "--data", DATA, "--model", fresh_model, "--report", taken], 1,
                               f"{taken} is not a folder"),
        "report below a file": (["evaluate", "--data", DATA, "--model", fresh_model, "--report", taken / "r"], 1,
                                f"{taken} is a file"),
        "plot into a missing folder": (["train", "--data", DATA, "--epochs", 1, "--out", tmp_path / "m.npz",
                                        "--plot", tmp_path / "no" / "c.png"], 1, "does not exist"),
    }[case]
    result = run(*args)
    assert result.returncode == status, result.stderr
    assert ERROR_LINE.fullmatch(result.stderr), result.stderr
    assert message in result.stderr
    assert result.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh.npz", "taken"]  # nothing written


def test_train_takes_the_model_and_loss_options(mnist_dir, tmp_path):
    out = tmp_path / "options.npz"
    ok("train", "--data", mnist_dir, "--variant", "modern", "--activation", "elu", "--dropout", 0.3, "--init",
       "xavier", "--loss", "hinge", "--epochs", 1, "--limit", 200, "--out", out, "--quiet")
    model = lenet_fast.load(out)
    assert (model.variant, model.activation, model.dropout) == ("modern", "elu", 0.3)


@pytest.mark.parametrize("args,status,message", [
    (["--activation", "elu"], 1, "--activation is for --variant modern"),
    (["--loss", "hinge"], 1, "optimizer 'sdlm' divides its steps by the loss's curvature"),
    (["--loss", "xent"], 1, "loss 'xent' does not fit the network's RBF output layer"),
    (["--dropout", 1], 2, "argument --dropout: expected a number in [0, 1)"),
    (["--init", "zeros"], 2, "argument --init: invalid choice"),
])
def test_bad_training_options_end_before_training(args, status, message, mnist_dir, tmp_path):
    out = tmp_path / "m.npz"
    result = run("train", "--data", mnist_dir, "--epochs", 1, "--limit", 50, "--out", out, *args)
    assert result.returncode == status and ERROR_LINE.fullmatch(result.stderr), result.stderr
    assert message in result.stderr and not PYTHON_WORDING.search(result.stderr) and not out.exists()


def test_an_int8_model_file_predicts_and_reads_and_is_refused_clearly_elsewhere(tmp_path):
    """lenet_fast.load gives an int8 file's Int8LeNet5: predict and read take it; the commands that need the
    float32 model (evaluate's loss, show's maps, serve's page, export) refuse it with one line, no traceback."""
    need_weights()
    path = tmp_path / "q8.npz"
    images, _ = lenet_fast.load_mnist(DATA, "test")
    pretrained("classic").quantize(images[:300], "int8").save(path)
    rows = json.loads(ok("predict", *SAMPLES, "--model", path, "--json").stdout)
    assert [row["digit"] for row in rows] == list(range(10))
    assert ok("read", SAMPLES[3], "--model", path).stdout.split()[-1] == "3"
    for command in (["evaluate", "--data", DATA], ["show", SAMPLES[3], "--out", tmp_path / "m.png"],
                    ["export", tmp_path / "q.onnx"], ["serve", "--port", "1"]):
        result = run(*command, "--model", path)
        assert result.returncode != 0 and ERROR_LINE.search(result.stderr), result.stderr
        assert "is an int8 model" in result.stderr and "Traceback" not in result.stderr
