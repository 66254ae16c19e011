"""The distributable wheel: built with `pip wheel` (or the one LENET_FAST_WHEEL names, such as the repaired
wheel tools/package.sh made), holding no generated C and the LICENSE, installed in a fresh virtual environment
with nothing but numpy beside it (no Pillow), and run from outside the source tree, the lenet-fast command
included. Slow (a build and an install): it is part of the packaging step of CI (.ci/run) and runs only with
LENET_FAST_PACKAGING=1."""
import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from lenet_fast import __version__

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import numpy as np, lenet_fast
info = lenet_fast.build_info()
assert info["isa"] in ("avx512", "avx2", "baseline"), info
model = lenet_fast.LeNet5("classic", seed=0)
x = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
assert model.predict(x).shape == (5,)
assert "site-packages" in lenet_fast.__file__, lenet_fast.__file__
assert len(lenet_fast.sample_paths()) == 10  # package data: the sample digits and the pretrained weights
assert lenet_fast.pretrained("modern").n_params == lenet_fast.LeNet5("modern").n_params
import lenet_fast.serve
assert lenet_fast.serve.PAGE.read_text().startswith("<!DOCTYPE html>")  # package data: serve's drawing page
print("ok", info["isa"])
"""


def run(*cmd, cwd):
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.mark.skipif(os.environ.get("LENET_FAST_PACKAGING") != "1",
                    reason="the packaging step of CI: LENET_FAST_PACKAGING=1 (and LENET_FAST_WHEEL=a wheel to test)")
def test_wheel_installs_and_predicts_in_a_fresh_venv(tmp_path):
    if os.environ.get("LENET_FAST_WHEEL"):
        wheel = Path(os.environ["LENET_FAST_WHEEL"]).resolve()
    else:
        wheels = tmp_path / "wheels"
        run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT), cwd=tmp_path)
        (wheel,) = wheels.glob("lenet_fast-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert not [n for n in names if n.endswith(".c")], "generated C in the wheel"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), names
    env_dir = tmp_path / "env"
    venv.create(env_dir, with_pip=True)
    python = env_dir / ("Scripts" if os.name == "nt" else "bin") / "python"
    run(str(python), "-m", "pip", "install", "-q", str(wheel), cwd=tmp_path)
    out = run(str(python), "-c", SCRIPT, cwd=tmp_path)
    assert out.startswith("ok")
    # the first command of a bare install (no Pillow there): the shipped samples, the version
    script = python.with_name("lenet-fast")
    assert "digit_9.png" in run(str(script), cwd=tmp_path)
    assert run(str(script), "--version", cwd=tmp_path).strip().endswith(__version__)
