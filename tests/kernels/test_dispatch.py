"""csrc/dispatch.c, the instruction-set paths: the choice of path (select_isa, LENET_FAST_ISA), and every path
this CPU runs (the x86-64 baseline: SSE2, 4 lanes, no FMA; AVX2 with FMA, 8 lanes; AVX-512, 16 lanes) agreeing
with the default (fastest) path to float32 rounding, in the forward pass, the gradients and the second
derivatives of both variants. The kernel modules beside this one test each kernel on every path against the
NumPy reference; this one checks the whole networks across paths.

rtol 1e-5 (plus 1e-5 of the largest entry, for entries near zero): the paths differ only in FMA contraction
and vector width, i.e. in roundings of ~1e-7 relative per operation; any real difference between the paths
(a kernel compiled differently, a wrong ragged end at another lane count) is far larger.
LENET_FAST_ISA is read once, at the first kernel call, so the variable is tested in a fresh interpreter.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import lenet_fast
from lenet_fast import _core

from cases import ISAS

RTOL = 1e-5
N_IMAGES = 37  # blocks of 4, 8 or 16 images plus leftovers: both layouts of every path
DEFAULT = ISAS[0]
OTHERS = ISAS[1:]


def outputs():
    """Every kernel's work on the current path: each variant's forward pass (a batch, and its images one
    at a time), its loss gradient and its second derivatives, and the activations on a grid."""
    rng = np.random.default_rng(2024)
    images = rng.integers(0, 256, size=(N_IMAGES, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=N_IMAGES)
    got = {}
    for variant in ("classic", "modern"):
        model = lenet_fast.LeNet5(variant, seed=7)
        got[variant] = model.forward(images)
        got[variant + " one by one"] = np.concatenate([model.forward(image) for image in images])
        got[variant + " probabilities"] = model.predict_proba(images)
        grad, got[variant + " losses"] = model.gradient(images, labels)
        got[variant + " gradient"] = np.concatenate([g.ravel() for g in grad.values()])
        got[variant + " second derivatives"] = model.curvature(images, labels)
    grid = np.linspace(-12, 12, 100001).astype(np.float32)
    for act in ("squash", "tanh", "relu"):
        got[act] = _core.activation(grid, act)
    return got


@pytest.mark.skipif(not OTHERS, reason="this CPU runs one instruction-set path only")
@pytest.mark.parametrize("name", OTHERS)
def test_every_path_agrees_with_the_default_path(name, on_path):
    """Forward, gradients and second derivatives of both variants on another path are within float32
    rounding of the default path's; on every path a batch gives the same bits as its images one by one."""
    here = outputs()
    with on_path(name):
        assert _core.isa() == lenet_fast.build_info()["isa"] == name
        there = outputs()
    assert _core.isa() == DEFAULT
    for key, want in here.items():
        assert np.abs(want).max() > 0, key  # a check that can fail
        np.testing.assert_allclose(there[key], want, rtol=RTOL, atol=RTOL * np.abs(want).max(), err_msg=key)
    for variant in ("classic", "modern"):
        assert np.array_equal(there[variant], there[variant + " one by one"]), f"{name}: {variant}"
        assert np.array_equal(here[variant], here[variant + " one by one"]), f"{DEFAULT}: {variant}"


CHILD = """
import json
import numpy as np
import lenet_fast
lenet_fast.LeNet5().forward(np.zeros((28, 28), np.uint8))
print(json.dumps({"isa": lenet_fast.build_info()["isa"]}))
"""


def path_in_a_child(isa, cwd):
    """The path a fresh interpreter with LENET_FAST_ISA=isa runs its kernels on, importing the lenet_fast these
    tests import (a build in the source tree or an installed package; started in cwd, outside the sources,
    so that an unbuilt source tree cannot shadow an installed package)."""
    env = dict(os.environ, LENET_FAST_ISA=isa)
    home = os.path.dirname(os.path.dirname(os.path.abspath(lenet_fast.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [home, env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-c", CHILD], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])["isa"]


def test_the_environment_variable_forces_a_path(tmp_path):
    assert path_in_a_child("baseline", tmp_path) == "baseline"


def test_an_unknown_isa_in_the_environment_falls_back_to_the_default(tmp_path):
    """A misspelt LENET_FAST_ISA does not break the import or the kernels: the best path runs instead."""
    assert path_in_a_child("nonexistent", tmp_path) == DEFAULT


def test_select_isa_refuses_an_unknown_path():
    with pytest.raises(ValueError, match="nonexistent"):
        _core.select_isa("nonexistent")
    assert _core.isa() == DEFAULT
