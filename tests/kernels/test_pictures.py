"""csrc/morphology.c, csrc/ink.c and csrc/components.c, the steps that find a digit in a photo, through _core against
lenet_fast.reference: random shapes, window sizes and masks; exact (a closing only selects values, and a
labelling is either right or wrong). And csrc/read_digit.c, those steps put together (a gray picture to its
MNIST form), against reference.read_digit on photos and odd arrays."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lenet_fast import _core, handwriting, images
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


@pytest.mark.parametrize("seed", range(6))
def test_ink_above_floor_medians_of_ties_and_neighbouring_floats(seed):
    """csrc/ink.c's medians select by the floats' bits, 11 at a time: samples where most values tie, or
    differ only in their last bits (which only the last digit tells apart), or only in sign (-0.0 and 0.0
    among them), on either side of the median; the floor and contrast are the sorted reference's exactly."""
    rng = np.random.default_rng(seed)
    base = np.float32(rng.choice([0.0, 0.25, 0.5]))
    near = np.nextafter(base, np.float32(1), dtype=np.float32)
    values = np.array([base, near, np.nextafter(near, np.float32(1)), -base, np.float32(-0.0),
                       np.float32(0.0), np.float32(0.75), np.float32(2 ** -20)], np.float32)
    weights = rng.dirichlet(np.full(len(values), 0.3))
    gray = rng.choice(values, size=(90, 90), p=weights).astype(np.float32)
    args = (gray, np.float32(0), False, 0.02, 3.0, 0.1)  # light ink on a level of 0: the ink is gray itself
    ink, contrast, floor = _core.ink_above_floor(*args)
    want, contrast_want, floor_want = ref.ink_above_floor(*args)
    assert (contrast, floor) == (contrast_want, floor_want)
    assert (ink is None) == (want is None)
    if ink is not None:
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


# ---- read_digit.c: steps 2-8 -----------------------------------------------------------------------------

PARAMS = images.PICTURE_PARAMS


def assert_reads_like_the_reference(grays):
    """One _core.read_digits call for all of grays against reference.read_digit on each: the same status
    and figures; the same digit, but for at most a level on at most 3 pixels: the resampling to the box is
    in double in both, and NumPy's matrix products sum in another order than read_digit.c's loops, so a
    pixel whose level lies within a rounding of a half may round the other way."""
    digits, status, specks, contrasts, floors = _core.read_digits(grays, PARAMS)
    assert digits.shape == (len(grays), 28, 28) and digits.dtype == np.uint8
    for i, gray in enumerate(grays):
        want, kind, speck, contrast, floor = ref.read_digit(gray, PARAMS)
        assert (status[i], specks[i]) == (kind, speck), i
        assert (contrasts[i], floors[i]) == (contrast, floor), i
        if kind == _core.PICTURE_OK:
            diff = np.abs(digits[i].astype(int) - want)
            assert diff.max() <= 1 and np.count_nonzero(diff) <= 3, i
            assert digits[i].max() == 255
        else:
            assert not digits[i].any()
    return status


def luma(photos):
    return [images._gray(p) for p in photos]


@pytest.mark.parametrize("seed", [5, 6])
def test_read_digits_matches_the_reference_on_photos(seed):
    """Synthetic photos (handwriting.digit_photos: uneven light, shadows, grain, either polarity) of three
    sizes, one of them larger than WORK_SIZE so that the block averaging runs; every one is a digit."""
    grays = []
    for size in (48, 160, 700):
        photos, _ = handwriting.digit_photos(4 if size > 500 else 10, seed, size)
        grays += luma(photos)
    status = assert_reads_like_the_reference(grays)
    assert (status == _core.PICTURE_OK).all()


def odd_pictures(seed):
    """Arrays no photo gives: 1x1 to over 512 pixels a side, tall, wide, blank, noise, a lone speck, light
    ink on dark paper, a digit drawn on an evenly lit or a shaded page; strips thinner than the blocks of
    step 2 (nothing left: no ink) or of the polarity's coarse image (shaded: the polarity by the tie's rule)."""
    rng = np.random.default_rng(seed)
    strip = np.tile(np.linspace(0.3, 1.0, 1300), (3, 1))
    strip[:, 600:640] *= 0.2
    out = [np.zeros((1, 1)), np.ones((1, 7)), np.full((3, 2), 0.5), np.ones((1, 600)), np.ones((600, 1)),
           rng.random((5, 5)), rng.random((37, 90)), rng.random((520, 33)), np.ones((30, 40)), strip, 1 - strip.T]
    speck = np.ones((40, 40))
    speck[20, 20] = 0.0
    out.append(speck)
    for h, w in [(28, 28), (64, 20), (20, 64), (90, 90), (300, 700), (1030, 515)]:
        page = np.full((h, w), rng.uniform(0.6, 1.0))
        if rng.random() < 0.5:  # shaded: light falling off across the page
            page *= np.linspace(1.0, rng.uniform(0.3, 0.8), w)[None, :]
        top, left = int(h * rng.uniform(0.1, 0.4)), int(w * rng.uniform(0.1, 0.4))
        page[top:top + max(1, h // 2), left:left + max(1, w // 15)] *= rng.uniform(0.1, 0.6)  # a stroke
        page[top:top + max(1, h // 20), left:left + max(1, w // 3)] *= rng.uniform(0.1, 0.6)  # a bar
        page += rng.normal(0, rng.uniform(0, 0.03), (h, w))
        page = np.clip(page, 0, 1)
        out += [page, 1 - page]
    return [np.ascontiguousarray(a, np.float32) for a in out]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_read_digits_matches_the_reference_on_odd_arrays(seed):
    """Every status comes up: digits in both polarities and lights, no ink, specks."""
    status = assert_reads_like_the_reference(odd_pictures(seed))
    assert set(status.tolist()) == {_core.PICTURE_OK, _core.PICTURE_NO_INK, _core.PICTURE_SPECK}


def test_read_digits_reads_a_stroke_and_refuses_a_speck():
    """What the statuses mean, without the reference: a bar on paper is a digit, scaled and centred; a 2-pixel dot is a speck of 2; blank paper has no ink, its contrast 0."""
    bar = np.ones((60, 60), np.float32)
    bar[10:50, 28:32] = 0.2
    dot = np.ones((60, 60), np.float32)
    dot[30:32, 30:32] = 0.0
    digits, status, specks, contrasts, _ = _core.read_digits([bar, dot, np.ones((60, 60), np.float32)], PARAMS)
    assert status.tolist() == [_core.PICTURE_OK, _core.PICTURE_SPECK, _core.PICTURE_NO_INK]
    assert specks[1] == 2 and contrasts[2] == 0.0
    # 40x4 pixels scaled to 20x2, its centre of mass (9.5, 0.5) put at (14, 14): rows 5-24, columns 14-15
    assert np.count_nonzero(digits[0]) == 40 and digits[0, 5:25, 14:16].min() == 255
    assert not digits[1:].any()


def test_one_workspace_serves_pictures_of_every_size_in_one_call():
    """A small picture after a large one and the other way round (the workspace is sized for the largest,
    and what a large one left in it must not change a small one's result): each reads as it does alone."""
    grays = odd_pictures(3)[-4:] + odd_pictures(3)[10:14]
    together = _core.read_digits(grays, PARAMS)[0]
    alone = np.concatenate([_core.read_digits([g], PARAMS)[0] for g in grays])
    np.testing.assert_array_equal(together, alone)


def test_mnist_form_and_paper_match_the_reference():
    """The two steps read_number shares: the paper under uneven light on an image too small to halve and
    on one of odd sides; the MNIST form of a float64 ink map."""
    rng = np.random.default_rng(4)
    for h, w in [(30, 50), (61, 47)]:
        gray = rng.random((h, w)).astype(np.float32)
        for dark in (True, False):
            np.testing.assert_array_equal(_core.paper(gray, dark, PARAMS), ref.picture_paper(gray, dark, PARAMS))
    ink = np.zeros((40, 25))
    ink[5:35, 10:14] = rng.random((30, 4))
    diff = np.abs(_core.mnist_form(ink, PARAMS).astype(int) - ref.mnist_form(ink, PARAMS))
    assert diff.max() <= 1 and np.count_nonzero(diff) <= 3


def test_picture_ink_matches_the_reference():
    for gray in odd_pictures(5)[6:]:
        ink, contrast, floor = _core.picture_ink(gray, PARAMS)
        want, contrast_want, floor_want = ref.picture_ink(gray, PARAMS)
        assert (contrast, floor) == (contrast_want, floor_want)
        assert (ink is None) == (want is None)
        if ink is not None:
            np.testing.assert_array_equal(ink, want)


@pytest.mark.parametrize("grays, kind, error", [
    ([], ValueError, "empty"),
    ((np.ones((9, 9), np.float32),), TypeError, "list"),
    ([np.ones((9, 9))], TypeError, "float32"),
    ([np.ones((9, 9), np.float32)[:, ::2]], TypeError, "C-contiguous"),
    ([[[0.5]]], TypeError, "float32"),
    ([np.ones(9, np.float32)], ValueError, "2-D"),
    ([np.ones((9, 9, 1), np.float32)], ValueError, "2-D"),
    ([np.ones((0, 9), np.float32)], ValueError, "height"),
    ([np.ones((9, 9), np.float32), np.full((9, 9), np.nan, np.float32)], ValueError, r"grays\[1\].*NaN"),
    ([np.full((9, 9), np.inf, np.float32)], ValueError, "infinity"),
])
def test_read_digits_refuses_bad_arguments(grays, kind, error):
    with pytest.raises(kind, match=error):
        _core.read_digits(grays, PARAMS)


@pytest.mark.parametrize("call, error", [
    (lambda: _core.mnist_form(np.zeros((5, 5)), PARAMS), "positive"),
    (lambda: _core.mnist_form(-np.ones((5, 5)), PARAMS), "non-negative"),
    (lambda: _core.mnist_form(np.ones(5), PARAMS), "2-D"),
    (lambda: _core.mnist_form(np.ones((5, 5), int), PARAMS), "floating"),
    (lambda: _core.paper(np.ones((5, 5, 1)), True, PARAMS), "shape"),
    (lambda: _core.picture_ink(np.full((5, 5), np.nan), PARAMS), "NaN"),
])
def test_picture_steps_refuse_bad_arguments(call, error):
    with pytest.raises((TypeError, ValueError), match=error):
        call()
