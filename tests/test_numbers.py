"""read_number (lenet_fast/numbers.py): rows of handwritten digits read as numbers, their records, the
segmentation's pieces (components, merging, specks, cuts), bad arguments, and lenet-fast read.

Rows are drawn here from handwriting's digit shapes: each digit in a cell of its own, the cells side by side
(or, for touching digits, overlapping until the strokes meet), dark ink on white paper with a little noise:
what read_number adds to read_digit's steps, apart from the background's removal (read_digit's, tested with
it; benchmarks/number_reading.py measures the two together on photos of numbers)."""
import numpy as np
import pytest

import lenet_fast
from lenet_fast import cli, handwriting, numbers
from lenet_fast.numbers import Digit, read_number
from lenet_fast.pretrained import pretrained

HEIGHT = 40


def digit_ink(digit, rng, height=HEIGHT):
    """One drawn digit's ink (coverage in [0, 1]), cropped to its columns, 2 * height rows."""
    cell = handwriting.draw(handwriting.digit_strokes(digit, rng), (2 * height, 2 * height), (height, height),
                            height * rng.uniform(0.85, 1.1), height * rng.uniform(0.07, 0.12))
    cols = np.flatnonzero(cell.max(axis=0) > 0)
    return cell[:, cols[0]:cols[-1] + 1]


def row(text, seed, touching=False, noise=0.02):
    """(H, W) float gray image in [0, 1] of text's digits in a row: separated by 0.2-0.5 heights of paper,
    or with touching, each digit overlapping the one before by 3 pixels."""
    rng = np.random.default_rng(seed)
    inks = [digit_ink(int(c), rng) for c in text]
    gaps = [-3 if touching else int(rng.integers(HEIGHT // 5, HEIGHT // 2)) for _ in inks]
    width = HEIGHT + sum(ink.shape[1] + gap for ink, gap in zip(inks, gaps))
    page = np.zeros((2 * HEIGHT, width))
    at = HEIGHT // 2
    for ink, gap in zip(inks, gaps):
        np.maximum(page[:, at:at + ink.shape[1]], ink, out=page[:, at:at + ink.shape[1]])
        at += ink.shape[1] + gap
    return np.clip(1.0 - 0.85 * page + rng.normal(0.0, noise, page.shape), 0.0, 1.0)


def texts(count, seed):
    """count digit strings, 3 to 6 digits long, from seed."""
    rng = np.random.default_rng(seed)
    return ["".join(map(str, rng.integers(0, 10, 3 + i % 4))) for i in range(count)]


def test_rows_of_separate_digits_read_exactly_at_the_goal_rate():
    numbers = texts(40, seed=3)
    read = [read_number(row(text, (3, i))) for i, text in enumerate(numbers)]
    exact = sum(r == t for r, t in zip(read, numbers))
    # the goal is 95%; on these 40 the shipped classic model reads 37 since its training with non-digits
    # (39 before), on 300 such numbers 97.7% (benchmarks/results/non-digits-2026-12-03.md)
    assert exact >= 37, list(zip(numbers, read))


@pytest.mark.parametrize("negative", [False, True])
def test_photos_of_numbers_read_exactly_at_the_goal_rate(negative):
    # handwriting's photos: coloured ink, uneven light, shadow edges, noise, blur, JPEG; their seed (21) was
    # used neither for tuning read_number nor in its benchmark's record. Their negatives are light ink on
    # dark paper. With read_digit's polarity rule (made for one digit, it takes the paper between a row's
    # strokes for ink in about a third of such photos) and cuts tried from 0.7 row heights, 35 and 36 of
    # these 40 were read exactly.
    wanted = texts(40, seed=21)
    photos = [handwriting.number_photo(text, (21, i)) for i, text in enumerate(wanted)]
    read = [read_number(255 - photo if negative else photo) for photo in photos]
    exact = sum(r == t for r, t in zip(read, wanted))
    assert exact >= 38, [(t, r) for t, r in zip(wanted, read) if r != t]  # 95%


def test_details_give_each_digit_its_confidence_and_box_left_to_right():
    image = row("40718", seed=5)
    digits = read_number(image, details=True)
    assert all(isinstance(d, Digit) for d in digits)
    assert "".join(str(d.digit) for d in digits) == "40718"
    assert all(0 < d.confidence <= 1 for d in digits)
    boxes = np.array([d.box for d in digits])
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= image.shape[0]).all()
    assert (boxes[:, 1] >= 0).all() and (boxes[:, 3] <= image.shape[1]).all()
    assert (boxes[:, 2] - boxes[:, 0] >= HEIGHT // 2).all() and (boxes[:, 3] > boxes[:, 1]).all()
    assert (boxes[1:, 1] >= boxes[:-1, 3]).all()  # ordered, and separate digits do not overlap
    # each box holds its digit's ink: outside every box is paper, at most the faint anti-aliased fringe of a
    # stroke the mask leaves out (a stroke's core is 0.15; paper with its noise 0.9 and up)
    outside = np.ones(image.shape, dtype=bool)
    for top, left, bottom, right in boxes:
        outside[top:bottom, left:right] = False
    assert image[outside].min() > 0.7


def test_the_confidence_is_the_models_probability_of_the_digit():
    image = row("285", seed=6)
    digits = read_number(image, details=True)
    model = pretrained("classic")
    for d in digits:
        top, left, bottom, right = d.box
        alone = np.ones_like(image)
        alone[top:bottom, left:right] = image[top:bottom, left:right]
        probs = model.predict_proba(lenet_fast.read_digit(alone))[0]
        assert probs.argmax() == d.digit
        assert d.confidence == pytest.approx(probs[d.digit], rel=1e-3)


def test_a_broken_digit_is_merged():
    image = row("385", seed=7, noise=0.0)
    labels, boxes = numbers._components(image < 0.5)
    assert len(boxes) - 1 == 3  # one component a digit
    eight = 1 + np.argsort(boxes[1:, 1])[1]
    top, left, bottom, right = boxes[eight]
    middle = (top + bottom) // 2
    image[middle - 1:middle + 2, left:right] = 1.0  # a blank band across the 8
    labels, boxes = numbers._components(image < 0.5)
    assert len(boxes) - 1 >= 4  # the premise: the 8 is in pieces now
    assert read_number(image) == "385"


def test_specks_are_dropped():
    image = row("9021", seed=8)
    rng = np.random.default_rng(8)
    for y, x in zip(rng.integers(2, image.shape[0] - 4, 30), rng.integers(2, image.shape[1] - 4, 30)):
        image[y:y + 3, x:x + 3] = 0.1  # dust: 3x3 dark dots all over the page
    assert read_number(image) == "9021"
    assert len(numbers._components(image < 0.5)[1]) - 1 > 20  # the premise: the dots are components of their own


def test_a_page_of_specks_only_is_refused():
    image = np.ones((60, 120))
    image[10:13, 20:23] = image[40:43, 90:93] = 0.0
    with pytest.raises(ValueError, match="only specks"):
        read_number(image)


def test_touching_pairs_are_cut_where_the_model_reads_them_best():
    pairs = texts(40, seed=9)
    exact = 0
    for i, text in enumerate(pairs):
        image = row(text[:2], (9, i), touching=True, noise=0.0)
        exact += read_number(image) == text[:2]
    # The premise: the pairs touch (one component). How many come apart right is what vertical cuts reach
    # (docs/numbers.md): most, not all.
    assert len(numbers._components(row("80", (9, 0), touching=True, noise=0.0) < 0.5)[1]) - 1 == 1
    assert exact >= 28, exact


def test_wide_digits_are_not_cut():
    for digit in range(10):
        image = row(str(digit), seed=100 + digit)
        image = image[:, (np.arange(image.shape[1] * 3 // 2) / 1.5).astype(int)]  # half as wide again
        assert read_number(image) == str(digit)


def test_a_large_picture_reads_as_its_small_original():
    image = row("4096", seed=17)
    large = np.repeat(np.repeat(image, 5, axis=0), 5, axis=1)  # digits about 200 pixels high
    small = read_number(image, details=True)
    digits = read_number(large, details=True)
    assert "".join(str(d.digit) for d in digits) == "".join(str(d.digit) for d in small) == "4096"
    assert np.allclose([d.box for d in digits], 5 * np.array([d.box for d in small]), atol=5)


def test_each_component_gets_its_bounding_box():
    """The boxes read_number cuts digits by (the labels themselves: tests/kernels/test_pictures.py)."""
    rng = np.random.default_rng(11)
    for _ in range(50):
        mask = rng.random(tuple(rng.integers(1, 25, 2))) < rng.uniform(0.1, 0.7)
        labels, boxes = numbers._components(mask)
        assert ((labels > 0) == mask).all() and len(boxes) == labels.max() + 1
        for k in range(1, len(boxes)):
            ys, xs = np.nonzero(labels == k)
            assert tuple(boxes[k]) == (ys.min(), xs.min(), ys.max() + 1, xs.max() + 1)


def test_any_source_read_digit_takes(tmp_path):
    from PIL import Image
    image = row("517", seed=12)
    pixels = np.round(image * 255).astype(np.uint8)
    path = tmp_path / "number.png"
    Image.fromarray(pixels).save(path)
    assert read_number(image) == "517"
    assert read_number(pixels) == "517"
    assert read_number(path) == read_number(str(path)) == "517"
    assert read_number(Image.open(path)) == "517"
    assert read_number(np.stack([pixels] * 3, axis=2)) == "517"
    assert read_number(255 - pixels) == "517"  # light ink on dark paper


def test_the_modern_model_reads_numbers_too():
    assert read_number(row("6039", seed=13), model=pretrained("modern")) == "6039"


def test_a_blank_page_is_refused():
    with pytest.raises(ValueError, match="contains no digit"):
        read_number(np.full((50, 200), 0.9))


@pytest.mark.parametrize("model", ["classic", object(), np.zeros(3)])
def test_a_model_must_be_a_lenet5(model):
    with pytest.raises(TypeError, match="LeNet5"):
        read_number(row("12", seed=14), model=model)


def test_details_must_be_a_bool():
    with pytest.raises(TypeError, match="details"):
        read_number(row("12", seed=14), details="yes")


@pytest.mark.parametrize("bad, error", [(np.zeros((5, 5, 2)), ValueError), (np.array([["a"]]), TypeError),
                                        (np.full((5, 5), np.nan), ValueError)])
def test_a_bad_array_is_refused_as_read_digit_refuses_it(bad, error):
    with pytest.raises(error):
        read_number(bad)


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_number(tmp_path / "none.png")


def test_the_read_command_reads_every_good_file_and_reports_the_bad_ones(tmp_path, capsys):
    from PIL import Image
    for name, text, seed in (("a.png", "2026", 15), ("b.png", "371", 16)):
        Image.fromarray(np.round(row(text, seed) * 255).astype(np.uint8)).save(tmp_path / name)
    (tmp_path / "c.png").write_bytes(b"not an image")
    status = cli.main(["read", str(tmp_path), "--threads", "1"])
    out, err = capsys.readouterr()
    assert status == 1
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == [str(tmp_path / "a.png"), str(tmp_path / "b.png")]
    assert [line.split()[1] for line in lines] == ["2026", "371"]
    assert err.count("\n") == 1 and "c.png" in err and err.startswith("lenet-fast: error: ")
    assert cli.main(["read", str(tmp_path / "a.png")]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / "a.png"), "2026"]
