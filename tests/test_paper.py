"""Checks that lenet_fast.paper says what the 1998 paper says (and that the RBF prototypes are
drawn well apart). Pure Python and numpy: runs without building the C kernels."""

import itertools
import math

import numpy as np
import pytest

from lenet_fast import paper

# The minimum number of pixels in which any two RBF prototypes differ (of 84).
MIN_RBF_HAMMING = 21


# ---- C3 connection table (Table I) ---------------------------------------------------

def test_c3_inputs_match_table_one():
    assert len(paper.C3_INPUTS) == 16
    # rows 0-5 and 6-11: 3 and 4 contiguous maps starting at map i, wrapping around
    for i in range(6):
        assert paper.C3_INPUTS[i] == tuple((i + k) % 6 for k in range(3))
        assert paper.C3_INPUTS[6 + i] == tuple((i + k) % 6 for k in range(4))
    assert paper.C3_INPUTS[12:] == ((0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5), (0, 1, 2, 3, 4, 5))


def test_c3_table_counts():
    t = paper.C3_TABLE
    assert t.shape == (16, 6)
    assert t.dtype == np.bool_
    assert int(t.sum()) == 60
    per_row = t.sum(axis=1)
    assert sorted(per_row.tolist()) == [3] * 6 + [4] * 9 + [6]
    assert per_row[:6].tolist() == [3] * 6
    assert per_row[6:15].tolist() == [4] * 9
    assert per_row[15] == 6


def test_c3_table_rows_distinct_and_all_s2_maps_used():
    rows = {tuple(r) for r in paper.C3_TABLE.tolist()}
    assert len(rows) == 16
    assert paper.C3_TABLE.any(axis=0).all()
    for i, inputs in enumerate(paper.C3_INPUTS):
        assert np.flatnonzero(paper.C3_TABLE[i]).tolist() == sorted(inputs)


def test_c3_table_read_only():
    assert not paper.C3_TABLE.flags.writeable
    with pytest.raises(ValueError):
        paper.C3_TABLE[0, 5] = True


def test_parameter_count_is_60000():
    k = 5 * 5
    c1 = 6 * k + 6
    s2 = 6 * 2
    c3 = int(paper.C3_TABLE.sum()) * k + 16
    s4 = 16 * 2
    c5 = 120 * (16 * k) + 120
    f6 = 84 * 120 + 84
    assert (c1, s2, c3, s4, c5, f6) == (156, 12, 1516, 32, 48120, 10164)
    assert c1 + s2 + c3 + s4 + c5 + f6 == 60000


# ---- Input and squash -----------------------------------------------------------------

def test_input_and_squash_constants():
    assert paper.INPUT_SIZE - paper.DIGIT_SIZE == 4
    assert paper.INPUT_INK - paper.INPUT_BACKGROUND == pytest.approx(1.275)
    f = lambda a: paper.SQUASH_A * math.tanh(paper.SQUASH_S * a)
    assert f(1.0) == pytest.approx(1.0, abs=1e-4)
    assert f(-1.0) == pytest.approx(-1.0, abs=1e-4)


# ---- RBF prototypes -------------------------------------------------------------------

def test_rbf_bitmaps_shape_and_alphabet():
    assert len(paper.RBF_BITMAPS) == 10
    for bitmap in paper.RBF_BITMAPS:
        assert len(bitmap) == 12
        for row in bitmap:
            assert isinstance(row, str)
            assert len(row) == 7
            assert set(row) <= {"#", "."}


def test_rbf_centers_values():
    c = paper.rbf_centers()
    assert c.shape == (10, 84)
    assert c.dtype == np.float32
    assert set(np.unique(c).tolist()) == {-1.0, 1.0}
    # row-major flattening of the bitmaps
    for i, bitmap in enumerate(paper.RBF_BITMAPS):
        expected = [1.0 if ch == "#" else -1.0 for row in bitmap for ch in row]
        assert c[i].tolist() == expected
    assert paper.rbf_centers(np.float64).dtype == np.float64
    # a new array every call
    c[0, 0] = 42.0
    assert paper.rbf_centers()[0, 0] != 42.0


def test_rbf_centers_far_apart():
    c = paper.rbf_centers()
    distances = {
        (i, j): int((c[i] != c[j]).sum()) for i, j in itertools.combinations(range(10), 2)
    }
    assert all(d > 0 for d in distances.values())
    assert min(distances.values()) >= MIN_RBF_HAMMING, distances


def test_render_bitmaps():
    text = paper.render_bitmaps()
    print("\nRBF prototypes (7x12, digits 0-9):\n" + text)
    lines = text.rstrip("\n").split("\n")
    assert len(lines) == 13
    assert lines[-1].split() == [str(d) for d in range(10)]
    assert text.count("#") == int((paper.rbf_centers() > 0).sum())


# ---- Training schedule ----------------------------------------------------------------

def test_sdlm_schedule():
    # 1-based passes: 1-2, 3-5, 6-8, 9-12, 13-20
    expected = [0.0005] * 2 + [0.0002] * 3 + [0.0001] * 3 + [0.00005] * 4 + [0.00001] * 8
    assert len(expected) == paper.SDLM_PASSES
    assert [paper.sdlm_epsilon(p) for p in range(paper.SDLM_PASSES)] == expected
    # the 0.0001 stage exists (public copies often lose it)
    assert [paper.sdlm_epsilon(p) for p in (5, 6, 7)] == [0.0001] * 3
    assert paper.sdlm_epsilon(100) == 0.00001
    with pytest.raises(ValueError):
        paper.sdlm_epsilon(-1)


def test_training_constants():
    assert paper.INIT_SCALE == 2.4
    assert paper.SDLM_MU == 0.02
    assert paper.SDLM_HESSIAN_SAMPLES == 500
    assert paper.SDLM_PASSES == 20
    assert paper.MAP_J > 0
    assert paper.PUBLISHED_TEST_ERROR == {"classic": 0.0095, "classic_distorted": 0.008}
