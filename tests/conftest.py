"""Shared test settings and fixtures.

Layout: the tests mirror the code. tests/kernels/ has one module per C kernel file (csrc/conv.c ->
test_conv.py, ...), with its own conftest.py (the NumPy oracle, the instruction-set paths, random layers);
tests/system/ holds the cross-cutting suites (fuzz, concurrency, durability, leaks, numerics, the CLI, the
wheel); the other modules here test one Python module each (test_model.py -> lenet_fast/model.py, ...).
Helpers shared between modules are fixtures here or in a conftest.py beside them: no test module imports
another.

Hypothesis runs derandomized by default, so that the suite is the same on every run and on every machine
(every NumPy generator in the tests is seeded, by a fixed seed or one drawn by hypothesis), and keeps no
example database (nothing is written outside tests/). HYPOTHESIS_PROFILE=explore draws fresh examples.

The tests run against whichever lenet_fast the test process imports: an installed package (README: `pip install
.` then `pytest tests`; `pytest`, unlike `python -m pytest`, does not put the working folder on sys.path) or an
editable build (CONTRIBUTING.md). The header names it. Files of the source tree (tests/data, csrc/, tools/) are
found from this file's folder, never from the package's. The tests run in an empty working folder, so that
the child interpreters they start (`python -c`, `python -m`, which put the working folder first on sys.path)
import that same lenet_fast, not an unbuilt source folder beside them.
"""
import importlib.util
import os
import struct
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

import lenet_fast
from lenet_fast import paper
from lenet_fast import reference as ref

settings.register_profile("default", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False, database=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

TESTS = Path(__file__).resolve().parent


def pytest_report_header(config):
    info = lenet_fast.build_info()
    return (f"lenet_fast {lenet_fast.__version__} from {Path(lenet_fast.__file__).parent} "
            f"(isa {info['isa']}, openmp {info['openmp']})")


@pytest.fixture(scope="session", autouse=True)
def outside_the_source_tree(tmp_path_factory):
    """Every test runs with an empty temporary folder as its working folder (see the module's docstring)."""
    before = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    yield
    os.chdir(before)


@pytest.fixture(scope="session")
def repo_root():
    """The source tree's root (the folder holding pyproject.toml)."""
    return TESTS.parent


@pytest.fixture(scope="session")
def mnist_subset():
    """tests/data: the first 1,000 MNIST test digits (t10k files only), committed with the tests."""
    return TESTS / "data"


@pytest.fixture(scope="session")
def mnist_folder(mnist_subset):
    """The MNIST folder to use: $LENET_FAST_DATA, else $MNIST_DIR, else shared/data/mnist beside the
    repository, else the committed subset (which has no training set: tests that need one check for its
    files). Skips when none of them is a folder."""
    candidates = [os.environ.get("LENET_FAST_DATA"), os.environ.get("MNIST_DIR"),
                  TESTS.parent.parent / "shared" / "data" / "mnist", mnist_subset]
    for folder in candidates:
        if folder and Path(folder).is_dir():
            return Path(folder)
    pytest.skip("no MNIST folder: set LENET_FAST_DATA or MNIST_DIR")


def _reference_forward(model, images):
    """The reference's answer for model on images (pixels as the model takes them), in float64."""
    params = {name: np.float64(a) for name, a in model.params.items()}
    if model.variant == "classic":
        params["rbf.centers"] = paper.rbf_centers(np.float64)
    return ref.forward(params, ref.normalize_input(images).astype(np.float64), model.variant)


@pytest.fixture(scope="session")
def reference_forward():
    """reference_forward(model, images): lenet_fast.reference's float64 output for a LeNet5 on pixels."""
    return _reference_forward


@pytest.fixture
def refused_while_training():
    """check(model, call): call() from another thread while this one holds the model's guard as fit does
    raises RuntimeError naming the training, leaves no reader behind, and runs once the guard is free."""
    def check(model, call):
        errors = []

        def other_thread():
            try:
                call()
            except RuntimeError as exc:
                errors.append(exc)

        with model.guard.writing():
            thread = threading.Thread(target=other_thread)
            thread.start()
            thread.join()
        assert len(errors) == 1 and "being trained in another thread" in str(errors[0])
        assert model.guard.readers == 0
        other_thread()  # after training, it runs
        assert len(errors) == 1
    return check


@pytest.fixture
def restore_threads():
    """Put the thread count back after a test that changes it."""
    before = lenet_fast.get_num_threads()
    yield
    lenet_fast.set_num_threads(before)


MATPLOTLIB_MISSING = 'matplotlib is not installed (pip install "lenet_fast[plot]")'


@pytest.fixture(scope="session")
def needs_matplotlib():
    """Skips the test without matplotlib (the [plot] extra): @pytest.mark.usefixtures("needs_matplotlib")."""
    if importlib.util.find_spec("matplotlib") is None:
        pytest.skip(MATPLOTLIB_MISSING)


def _png_size(path):
    """(width, height) of a PNG file, read from its signature and IHDR chunk (AssertionError if not a PNG)."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="session")
def png_size():
    """png_size(path): (width, height) of a PNG file, AssertionError if it is not one."""
    return _png_size
