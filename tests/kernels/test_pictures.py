"""csrc/morphology.c, csrc/ink.c and csrc/components.c, the steps that find a digit in a photo, through _core against
lenet_fast.reference: random shapes, window sizes and masks; exact (a closing only selects values, and a
labelling is either right or wrong)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lenet_fast import _core
from lenet_fast import reference as ref

from cases import SEEDS


@settings(max_examples=150, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), half=st.integers(0, 25), closing=st.booleans(),
       levels=st.sampled_from([2, 5, 1000]), seed=SEEDS)
def test_morphology_matches_the_reference(h, w, half, closing, levels, seed):
    """Windows smaller and larger than the image (k up to 51 on sides from 1 to 40), few or many grey
    levels (ties in every window, or none)."""
    rng = np.random.default_rng(seed)
    image = (rng.integers(0, levels, (h, w)) / levels).astype(np.float32)
    out = _core.morphology(image, 2 * half + 1, closing)
    assert out.dtype == np.float32 and out.shape == (h, w)
    np.testing.assert_array_equal(out, ref.morphology(image, 2 * half + 1, closing))


def test_a_closing_fills_a_dark_stroke_and_keeps_a_shadow_edge():
    """What the background estimate relies on: a 3-pixel dark stroke vanishes under a 7x7 closing, while the
    step between lit and shadowed paper stays where it is; the opening does the same for light ink."""
    paper = np.where(np.arange(40) < 20, 0.9, 0.5).astype(np.float32)[None, :].repeat(30, axis=0)
    page = paper.copy()
    page[5:25, 9:12] = 0.1
    np.testing.assert_array_equal(_core.morphology(page, 7, True), paper)
    np.testing.assert_array_equal(_core.morphology(1 - page, 7, False), 1 - paper)
    assert not np.array_equal(_core.morphology(page, 3, True), paper)  # a window no wider than the stroke


@settings(max_examples=150, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), dark=st.booleans(), level=st.booleans(),
       contrast=st.floats(0.0, 0.9), noise=st.floats(0.0, 0.2), seed=SEEDS)
def test_ink_above_floor_matches_the_reference(h, w, dark, level, contrast, noise, seed):
    """Paper as an image or one level, either polarity, strokes from invisible to strong on paper from clean
    to grainy, so that both outcomes (ink found, nothing above the floor) come up; the same ink to the bit,
    the same contrast and floor."""
    rng = np.random.default_rng(seed)
    paper = rng.uniform(0.0, 1.0) if level else rng.uniform(0.0, 1.0, (h, w)).astype(np.float32)
    stroke = (rng.random((h, w)) < 0.2) * contrast * (-1 if dark else 1)
    gray = np.clip(paper + stroke + rng.normal(0, noise, (h, w)), 0, 1).astype(np.float32)
    args = (gray, paper, dark, 0.02, 3.0, 0.1)
    ink, contrast_got, floor_got = _core.ink_above_floor(*args)
    want, contrast_want, floor_want = ref.ink_above_floor(*args)
    assert (contrast_got, floor_got) == (contrast_want, floor_want)
    assert (ink is None) == (want is None)
    if ink is not None:
        assert ink.dtype == np.float32
        np.testing.assert_array_equal(ink, want)


def test_ink_above_floor_finds_a_stroke_on_shaded_paper_and_nothing_on_blank_paper():
    """What read_digit relies on: relative to a shaded paper a faint dark stroke stands out as a constant
    contrast wherever it lies; blank grainy paper gives nothing."""
    paper = np.linspace(0.5, 1.0, 40, dtype=np.float32)[None, :].repeat(40, axis=0)
    gray = paper.copy()
    gray[10:30, 5:35:10] *= np.float32(0.6)  # three strokes across the shading, each 40% darker than its paper
    ink, contrast, floor = _core.ink_above_floor(gray, paper, True, 0.02, 3.0, 0.1)
    assert floor == 0.0 and contrast == pytest.approx(0.4, abs=1e-6)
    np.testing.assert_allclose(ink[10:30, 5:35:10], 0.4, atol=1e-6)
    assert ink.sum() == pytest.approx(0.4 * 60, rel=1e-5)
    grain = np.random.default_rng(0).normal(0, 0.02, paper.shape).astype(np.float32)
    assert _core.ink_above_floor(paper + grain, paper, True, 0.02, 3.0, 0.1)[0] is None


@settings(max_examples=150, deadline=None)
@given(h=st.integers(1, 50), w=st.integers(1, 50), density=st.floats(0.05, 0.95), seed=SEEDS)
def test_components_match_the_reference(h, w, density, seed):
    """Sparse masks (many small components), dense ones (a few that wind around), and everything between;
    the numbering is the reference's exactly."""
    mask = np.random.default_rng(seed).random((h, w)) < density
    labels, count = _core.components(mask)
    want, want_count = ref.components(mask)
    assert labels.dtype == np.int32 and count == want_count
    np.testing.assert_array_equal(labels, want)


def test_components_join_diagonals_and_u_shapes():
    """The cases a one-pass labelling gets wrong: a U whose arms meet only at the bottom (two provisional
    labels merged late), and pixels touching only at a corner."""
    mask = np.zeros((6, 9), bool)
    mask[0:5, 1] = mask[0:5, 5] = mask[4, 1:6] = True   # a U
    mask[0, 7] = mask[1, 8] = True                      # a diagonal pair
    mask[5, 8] = True                                   # alone
    labels, count = _core.components(mask)
    assert count == 3
    assert set(np.unique(labels[mask])) == {1, 2, 3}
    assert labels[0, 1] == labels[0, 5] == 1 and labels[0, 7] == labels[1, 8] == 2 and labels[5, 8] == 3


@settings(max_examples=60, deadline=None)
@given(h=st.integers(1, 30), w=st.integers(1, 30), density=st.floats(0.05, 0.95), seed=SEEDS)
def test_component_stats_match_the_reference(h, w, density, seed):
    """Each component's box, sum and maximum of the values over it, against the reference's labels taken
    one at a time."""
    rng = np.random.default_rng(seed)
    mask = rng.random((h, w)) < density
    values = rng.uniform(-1, 1, (h, w)).astype(np.float32)
    labels, count = _core.components(mask)
    boxes, sums, peaks = _core.component_stats(labels, count, values)
    want, _ = ref.components(mask)
    assert boxes.shape == (count, 4)
    for k in range(1, count + 1):
        ys, xs = np.nonzero(want == k)
        assert tuple(boxes[k - 1]) == (ys.min(), xs.min(), ys.max() + 1, xs.max() + 1)
        assert sums[k - 1] == pytest.approx(np.float64(values[ys, xs]).sum(), abs=1e-9)
        assert peaks[k - 1] == values[ys, xs].max()
    only, no_sums, no_peaks = _core.component_stats(labels, count)
    assert np.array_equal(only, boxes) and no_sums is None and no_peaks is None


def test_a_component_number_without_pixels_gets_an_empty_box():
    labels = np.array([[0, 2], [2, 0]], np.int32)
    boxes, sums, peaks = _core.component_stats(labels, 3, np.ones((2, 2), np.float32))
    assert boxes.tolist() == [[2, 2, 0, 0], [0, 0, 2, 2], [2, 2, 0, 0]]
    assert sums.tolist() == [0.0, 2.0, 0.0] and peaks[0] == -np.inf and peaks[1] == 1.0


@pytest.mark.parametrize("call, error", [
    (lambda: _core.component_stats(np.zeros((2, 2), np.int64), 0, np.zeros((2, 2))), "int32"),
    (lambda: _core.component_stats(np.full((2, 2), 3, np.int32), 2, np.zeros((2, 2))), "0..count"),
    (lambda: _core.component_stats(np.full((2, 2), -1, np.int32), 2, np.zeros((2, 2))), "0..count"),
    (lambda: _core.component_stats(np.zeros((2, 2), np.int32), 0, np.zeros((2, 3))), "shape"),
    (lambda: _core.morphology(np.zeros((3, 3), np.float32), 4, True), "odd"),
    (lambda: _core.morphology(np.zeros((3, 3), np.float32), 0, True), "k must be"),
    (lambda: _core.morphology(np.zeros(3, np.float32), 3, True), "shape"),
    (lambda: _core.morphology(np.zeros((0, 3), np.float32), 3, True), "height"),
    (lambda: _core.morphology(np.full((3, 3), np.nan, np.float32), 3, True), "NaN"),
    (lambda: _core.components(np.zeros((3, 3), np.uint8)), "boolean"),
    (lambda: _core.ink_above_floor(np.zeros((3, 3)), np.zeros((3, 2)), True, 0.02, 3, 0.1), "paper"),
    (lambda: _core.ink_above_floor(np.zeros(3), 0.5, True, 0.02, 3, 0.1), "gray"),
    (lambda: _core.ink_above_floor(np.full((2, 2), np.nan), 0.5, True, 0.02, 3, 0.1), "NaN"),
    (lambda: _core.components(np.zeros(3, bool)), "2-D"),
    (lambda: _core.components(np.zeros((3, 0), bool)), "width"),
])
def test_bad_arguments_are_refused(call, error):
    with pytest.raises((TypeError, ValueError), match=error):
        call()
