"""The source distribution: `python -m build --sdist` holds every tracked file the build and the tests need
(csrc/, lenet_fast/, tests/ with its data and conftest files, LICENSE, README.md, docs/), so that the
tarball builds and tests on its own; and a build with no working C compiler stops with a message that says
one is needed and that wheels need none. The sdist is made without building the engine (seconds)."""
import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile

import pytest

TIMEOUT = 300


def tracked_files(root, *folders):
    """The files git tracks under folders of root (a git checkout), or skip."""
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("not a git checkout: no list of tracked files to compare with")
    result = subprocess.run(["git", "ls-files", "-z", "--", *folders], cwd=root, capture_output=True, timeout=60)
    if result.returncode != 0:
        pytest.skip(f"git ls-files failed: {result.stderr.decode(errors='replace')}")
    return {name for name in result.stdout.decode().split("\0") if name}


@pytest.mark.skipif(importlib.util.find_spec("build") is None, reason="needs build (pip install build)")
def test_the_sdist_holds_every_tracked_source_test_and_doc(repo_root, tmp_path):
    tracked = tracked_files(repo_root, "csrc", "lenet_fast", "tests")
    # --no-isolation would need the build requirements here; isolation fetches them like any pip install
    result = subprocess.run([sys.executable, "-m", "build", "--sdist", "--outdir", str(tmp_path), str(repo_root)],
                            capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (sdist,) = tmp_path.glob("lenet_fast-*.tar.gz")
    with tarfile.open(sdist) as tar:
        top = tar.getnames()[0].split("/")[0]
        names = {name[len(top) + 1:] for name in tar.getnames() if name.startswith(top + "/")}
    missing = sorted(tracked - names)
    assert not missing, f"tracked files missing from the sdist: {missing}"
    for name in ("LICENSE", "README.md", "CONTRIBUTING.md", "pyproject.toml", "setup.py", "MANIFEST.in",
                 "tests/conftest.py", "tests/kernels/conftest.py", "tests/data/t10k-images-idx3-ubyte.gz",
                 "docs/architecture.md", "lenet_fast/_core.pyx", "lenet_fast/_engine.pxd"):
        assert name in names, name
    built = sorted(n for n in names if n.endswith((".so", ".o")) or n == "lenet_fast/_core.c")
    assert not built, f"build products in the sdist: {built}"


def test_a_build_without_a_c_compiler_says_one_is_needed(repo_root, tmp_path):
    """pip (its isolated build environment fetches the build requirements) with CC=/bin/false: the build stops
    at setup.py's compiler check, before any kernel is compiled, with a message a user can act on."""
    env = dict(os.environ, CC="/bin/false", LDSHARED="/bin/false")
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path), str(repo_root)],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "building from source needs a working C compiler" in output, output[-3000:]
    assert "prebuilt wheel, which needs no compiler" in output
    assert not list(tmp_path.glob("*.whl"))
