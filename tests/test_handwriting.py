"""The synthetic handwriting that tests and benchmarks of photo reading use (lenet_fast.handwriting): made
again the same from a seed, shaped as documented, and legible: drawn cleanly, the pretrained classic model
reads its digits."""
import numpy as np
import pytest

import lenet_fast
from lenet_fast import handwriting


def test_a_seed_makes_the_same_photos_and_another_seed_other_ones():
    a, labels = handwriting.digit_photos(12, seed=3)
    b, _ = handwriting.digit_photos(12, seed=3)
    c, _ = handwriting.digit_photos(12, seed=4)
    assert a.shape == (12, 160, 160, 3) and a.dtype == np.uint8
    assert labels.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_a_photo_has_paper_and_ink():
    photo = handwriting.digit_photo(8, seed=0).mean(axis=2)
    assert np.percentile(photo, 50) > 120             # mostly paper
    assert photo.min() < np.percentile(photo, 50) - 60  # and some ink well below it


def test_clean_drawings_are_legible_to_the_pretrained_model():
    model = lenet_fast.pretrained("classic")
    labels = np.arange(200) % 10
    images = []
    for i, digit in enumerate(labels):
        rng = np.random.default_rng((5, i))
        ink = handwriting.draw(handwriting.digit_strokes(int(digit), rng), (120, 120), (60, 60), 80, 8)
        images.append(lenet_fast.read_digit(1.0 - ink))
    assert (model.predict(np.stack(images)) == labels).mean() >= 0.98


def test_a_number_is_a_row_wider_than_high():
    photo = handwriting.number_photo("90210", seed=1)
    assert photo.ndim == 3 and photo.shape[1] > 2 * photo.shape[0]
    assert np.array_equal(photo, handwriting.number_photo("90210", seed=1))


@pytest.mark.parametrize("bad", ["", "12a", "٣"])
def test_a_number_takes_ascii_digits_only(bad):
    with pytest.raises(ValueError, match="digits 0-9"):
        handwriting.number_photo(bad, seed=0)


@pytest.mark.parametrize("bad", [10, -1, "3"])
def test_a_digit_is_0_to_9(bad):
    with pytest.raises(ValueError, match="0-9"):
        handwriting.digit_strokes(bad, np.random.default_rng(0))
