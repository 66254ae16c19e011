"""The C sources against the facts they must agree with: csrc/paper_constants.h is what tools/paper_constants.py
makes of lenet_fast/paper.py now, it holds paper.py's values, and no other C file spells a paper constant."""
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

from lenet_fast import paper

ROOT = pathlib.Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"
GENERATED = {"paper_constants.h", "tanh_coefficients.h"}  # written by tools/, checked by their own tests
# The paper's constants as the kernels use them (float32), by the name paper_constants.h gives them.
PAPER = {
    "LF_SQUASH_A": paper.SQUASH_A,
    "LF_SQUASH_S": paper.SQUASH_S,
    "LF_INPUT_BACKGROUND": paper.INPUT_BACKGROUND,
    "LF_INPUT_RANGE": paper.INPUT_INK - paper.INPUT_BACKGROUND,
}


def code(text):
    """C text without its comments."""
    return re.sub(r"/\*.*?\*/|//[^\n]*", " ", text, flags=re.S)


def paper_literals(text):
    """The numeric literals in C text's code that spell a paper constant (or its magnitude, or the ink
    level), and any 2/3 written as a division."""
    values = {abs(np.float32(v)) for v in PAPER.values()} | {np.float32(paper.INPUT_INK)}
    found = [t for t in re.findall(r"(?<![\w.])(\d+\.\d*(?:[eE][-+]?\d+)?)[fF]?", code(text))
             if np.float32(t) in values]
    return found + re.findall(r"\b2(?:\.0*)?[fF]?\s*/\s*3\b", code(text))


def test_paper_constants_header_is_what_the_tool_makes_of_paper_py():
    made = subprocess.run([sys.executable, str(ROOT / "tools" / "paper_constants.py")], capture_output=True,
                          text=True, check=True).stdout
    assert (CSRC / "paper_constants.h").read_text() == made


def test_paper_constants_header_holds_paper_py_values():
    header = code((CSRC / "paper_constants.h").read_text())
    defined = dict(re.findall(r"#define (LF_\w+) \(?(-?[\d.]+)f\)?", header))
    assert set(defined) == set(PAPER)
    for name, value in PAPER.items():
        assert np.float32(defined[name]) == np.float32(value), name


@pytest.mark.parametrize("path", sorted(p.name for p in CSRC.glob("*.[ch]") if p.name not in GENERATED))
def test_no_c_file_spells_a_paper_constant(path):
    text = (CSRC / path).read_text()
    assert paper_literals(text) == [], f"csrc/{path}: use paper_constants.h"
    assert "../shared" not in text  # cite docs/paper.md, inside the repository


def test_the_literal_scan_finds_what_it_looks_for():
    assert paper_literals("y = 1.7159f * tanh(x * (2.0f / 3.0f)) + 1.275f - 0.1f;") == ["1.7159", "1.275", "0.1",
                                                                                        "2.0f / 3"]
    assert paper_literals("/* 1.7159 tanh(2/3 a) */ y = 0.5f * x + 11.7159f;") == []
