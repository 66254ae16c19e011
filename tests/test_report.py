"""lenet_fast.report (the evaluation report's files, parsed back) and lenet_fast.plotting (matplotlib only on
demand, its absence said in terms of the [plot] extra)."""
import csv
import hashlib
import html.parser
import json
import subprocess
import sys

import numpy as np
import pytest

import lenet_fast
from lenet_fast import plotting, report

class Links(html.parser.HTMLParser):
    """Every src and href of a page."""

    def __init__(self):
        super().__init__()
        self.links = []

    def handle_starttag(self, tag, attrs):
        self.links += [value for name, value in attrs if name in ("src", "href")]


@pytest.fixture(scope="module")
def subset(mnist_subset):
    return lenet_fast.load_mnist(mnist_subset, "test")


@pytest.fixture(scope="module")
def classic_report(subset, mnist_subset, tmp_path_factory, needs_matplotlib):
    model = lenet_fast.pretrained("classic")
    folder = tmp_path_factory.mktemp("report") / "nested" / "out"
    paths = report.write_report(model, *subset, folder, report.model_identity(model, pretrained="classic"),
                                report.data_identity(mnist_subset))
    return model, folder, paths


def test_the_report_holds_every_file(classic_report, png_size):
    _, folder, paths = classic_report
    assert sorted(p.name for p in folder.iterdir()) == sorted(report.FILES)
    assert paths == {name: str(folder / name) for name in report.FILES}
    for name in ("confusion_matrix.png", "errors.png", "rejection.png"):
        width, height = png_size(folder / name)
        assert width >= 300 and height >= 200, name


def test_report_json_is_the_models_evaluation_and_identity(classic_report, subset, mnist_subset):
    model, folder, _ = classic_report
    record = json.loads((folder / "report.json").read_text())
    expected = model.evaluate(*subset).as_dict()
    assert {k: record[k] for k in expected} == expected
    assert record["lenet_fast"] == lenet_fast.__version__
    assert record["model"] == {"variant": "classic", "options": {}, "pretrained": "pretrained classic"}
    files = record["data"]["files"]
    assert record["data"]["folder"] == str(mnist_subset) and len(files) == 2
    for name, digest in files.items():
        assert digest == hashlib.sha256((mnist_subset / name).read_bytes()).hexdigest()


def test_per_class_csv_has_a_row_per_digit(classic_report, subset):
    model, folder, _ = classic_report
    with open(folder / "per_class.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    result = model.evaluate(*subset)
    assert [int(r["digit"]) for r in rows] == list(range(10))
    assert [int(r["images"]) for r in rows] == np.bincount(subset[1], minlength=10).tolist()
    assert sum(int(r["errors"]) for r in rows) == result.errors
    np.testing.assert_allclose([float(r["error"]) for r in rows], result.per_class_error, atol=1e-6)


def test_the_page_links_each_file_relatively(classic_report):
    _, folder, _ = classic_report
    page = (folder / "index.html").read_text()
    parser = Links()
    parser.feed(page)
    assert sorted(parser.links) == sorted(set(report.FILES) - {"index.html"})
    assert "://" not in page  # static: nothing fetched from elsewhere
    record = json.loads((folder / "report.json").read_text())
    assert f"error {record['error']:.2%} ({record['errors']} wrong)" in page


def test_a_report_of_a_model_file_names_it_and_its_digest(tmp_path):
    path = tmp_path / "mine.npz"
    model = lenet_fast.LeNet5("modern", activation="elu", dropout=0.25)
    model.save(path)
    identity = report.model_identity(model, file=path)
    assert identity == {"variant": "modern", "options": {"activation": "elu", "dropout": 0.25},
                        "file": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    assert report.model_identity(lenet_fast.Ensemble([model]), pretrained="ensemble") == \
        {"variant": "ensemble", "pretrained": "pretrained ensemble"}


@pytest.mark.usefixtures("needs_matplotlib")
def test_an_ensemble_report(subset, tmp_path, png_size):
    x, y = subset[0][:200], subset[1][:200]
    ensemble = lenet_fast.Ensemble([lenet_fast.pretrained("classic"), lenet_fast.pretrained("modern")])
    report.write_report(ensemble, x, y, tmp_path)
    record = json.loads((tmp_path / "report.json").read_text())
    assert record["model"] == {"variant": "ensemble"} and record["data"] == {}
    assert record["confusion"] == ensemble.evaluate(x, y).confusion.tolist()
    png_size(tmp_path / "rejection.png")


def test_worst_errors_are_the_surest_wrong_answers():
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.05, 0.95], [0.7, 0.3]])
    labels = np.array([0, 0, 1, 0, 1])  # wrong: 1 (0.8), 3 (0.95), 4 (0.7)
    assert report.worst_errors(labels, proba).tolist() == [3, 1, 4]
    assert report.worst_errors(labels, proba, count=2).tolist() == [3, 1]
    assert report.worst_errors(np.array([0, 1, 1, 1, 0]), proba).tolist() == []


@pytest.mark.usefixtures("needs_matplotlib")
def test_a_report_without_errors_still_draws(tmp_path, subset, png_size):
    model = lenet_fast.pretrained("classic")
    x, y = subset
    right = model.predict(x) == y
    report.write_report(model, x[right][:50], y[right][:50], tmp_path)
    assert json.loads((tmp_path / "report.json").read_text())["errors"] == 0
    png_size(tmp_path / "errors.png")


def test_a_file_in_the_reports_place_is_refused_before_any_work(tmp_path, subset):
    taken = tmp_path / "taken"
    taken.write_text("mine")
    for folder in (taken, taken / "below"):
        with pytest.raises(NotADirectoryError, match="is not a folder"):
            report.write_report(lenet_fast.LeNet5("classic"), *subset, folder)
        with pytest.raises(NotADirectoryError, match="is not a folder"):
            report.check_folder(folder)
    assert taken.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
    assert report.check_folder(tmp_path / "new" / "deeper") == str(tmp_path / "new" / "deeper")
    assert not (tmp_path / "new").exists()  # checked, not made


def test_without_matplotlib_the_error_names_the_extra(monkeypatch, tmp_path, subset):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    with pytest.raises(ImportError, match=r'pip install "lenet_fast\[plot\]"'):
        plotting.pyplot()
    with pytest.raises(ImportError, match=r"lenet_fast\[plot\]"):
        report.write_report(lenet_fast.LeNet5("classic"), subset[0][:10], subset[1][:10], tmp_path / "r")


def test_check_png_path_names_the_missing_folder(tmp_path):
    assert plotting.check_png_path(tmp_path / "a.png") == str(tmp_path / "a.png")
    with pytest.raises(FileNotFoundError, match=f"the folder {tmp_path / 'no'} does not exist"):
        plotting.check_png_path(tmp_path / "no" / "a.png")


def test_importing_the_package_does_not_load_matplotlib():
    code = ("import sys, lenet_fast, lenet_fast.report, lenet_fast.maps, lenet_fast.cli, lenet_fast.history\n"
            "print('matplotlib' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


@pytest.mark.usefixtures("needs_matplotlib")
def test_the_screenshots_tool_writes_both_pictures(repo_root, mnist_subset, tmp_path, png_size):
    """tools/screenshots.py (the README's pictures) runs, and its files are PNGs under its size limit."""
    result = subprocess.run([sys.executable, str(repo_root / "tools" / "screenshots.py"), "--data", str(mnist_subset),
                             "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["maps.png", "report.png"]
    for name in ("maps.png", "report.png"):
        width, height = png_size(tmp_path / name)
        assert width > 600 and height > 300 and (tmp_path / name).stat().st_size < 150_000
        assert f"{tmp_path / name}: " in result.stdout


@pytest.mark.usefixtures("needs_matplotlib")
def test_bad_labels_leave_no_folder_behind(tmp_path, subset):
    with pytest.raises(ValueError):
        report.write_report(lenet_fast.LeNet5("classic"), subset[0][:10], np.full(10, 12), tmp_path / "r")
    assert not (tmp_path / "r").exists()
