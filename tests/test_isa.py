"""The instruction-set paths: the x86-64 baseline (SSE2, 4 lanes, no FMA) must agree with the default
path (AVX2 or AVX-512 with FMA, 8 or 16 lanes) to float32 rounding.

LENET_FAST_ISA is read once, at the first kernel call, so the forced path runs in a fresh interpreter;
the parent compares its outputs with its own. rtol 1e-5 (plus 1e-5 of the largest output for logits near
zero): the paths differ only in FMA contraction and vector width, i.e. in roundings of ~1e-7 relative per
operation; any real difference between the paths (a kernel compiled differently) is far larger.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import lenet_fast
from lenet_fast import _core

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RTOL = 1e-5
N_IMAGES = 37  # blocks of 4 (baseline), 8 or 16, plus leftovers

CHILD = """
import json, sys
import numpy as np
import lenet_fast
from lenet_fast import _core

out = sys.argv[1]
images = np.random.default_rng(2024).integers(0, 256, size=({n}, 28, 28), dtype=np.uint8)
same_bits = True
for variant in ("classic", "modern"):
    model = lenet_fast.LeNet5(variant, seed=7)
    y = model.forward(images)
    np.save(f"{{out}}/{{variant}}.npy", y)
    singles = np.concatenate([model.forward(images[i]) for i in range(len(images))])
    same_bits &= bool(np.array_equal(y, singles))
grid = np.linspace(-12, 12, 100001).astype(np.float32)
np.save(f"{{out}}/tanh.npy", _core.activation(grid, "tanh"))
print(json.dumps({{"isa": lenet_fast.build_info()["isa"], "same_bits": same_bits}}))
""".format(n=N_IMAGES)


def run_child(tmp_path, isa):
    """Run CHILD with LENET_FAST_ISA=isa; returns its JSON report. Outputs land in tmp_path."""
    env = dict(os.environ, LENET_FAST_ISA=isa)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO, env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def default_outputs():
    images = np.random.default_rng(2024).integers(0, 256, size=(N_IMAGES, 28, 28), dtype=np.uint8)
    return {variant: lenet_fast.LeNet5(variant, seed=7).forward(images) for variant in ("classic", "modern")}


def test_baseline_path_agrees_with_the_default_path(tmp_path):
    """LENET_FAST_ISA=baseline selects the baseline path, whose whole forward (both variants) and tanh are
    within float32 rounding of this process's path, and whose batches give the same bits as single images."""
    report = run_child(tmp_path, "baseline")
    assert report["isa"] == "baseline"
    assert report["same_bits"], "baseline path: a batch and its images one at a time differ"
    for variant, here in default_outputs().items():
        there = np.load(tmp_path / f"{variant}.npy")
        assert there.shape == here.shape == (N_IMAGES, 10)
        np.testing.assert_allclose(there, here, rtol=RTOL, atol=RTOL * np.abs(here).max(), err_msg=variant)
    grid = np.linspace(-12, 12, 100001).astype(np.float32)
    np.testing.assert_allclose(np.load(tmp_path / "tanh.npy"), _core.activation(grid, "tanh"), rtol=1e-6, atol=0)


def test_an_unknown_isa_in_the_environment_falls_back_to_the_default(tmp_path):
    """A misspelt LENET_FAST_ISA does not break the import or the kernels: the best path runs instead."""
    assert run_child(tmp_path, "nonexistent")["isa"] == lenet_fast.build_info()["isa"]


def test_select_isa_refuses_an_unknown_path():
    before = _core.isa()
    with pytest.raises(ValueError, match="nonexistent"):
        _core.select_isa("nonexistent")
    assert _core.isa() == before


def test_select_isa_switches_paths_in_process():
    """select_isa('baseline') switches at once (and back); outputs stay within rounding of each other."""
    before = _core.isa()
    here = default_outputs()
    try:
        _core.select_isa("baseline")
        assert lenet_fast.build_info()["isa"] == "baseline"
        there = default_outputs()
    finally:
        _core.select_isa(before)
    assert _core.isa() == before
    for variant in here:
        np.testing.assert_allclose(there[variant], here[variant], rtol=RTOL,
                                   atol=RTOL * np.abs(here[variant]).max(), err_msg=variant)
