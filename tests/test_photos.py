"""read_digit on photos: handwritten digits that are not from MNIST (lenet_fast.handwriting, seeded),
photographed under uneven light, shadow edges, vignetting, noise, blur and JPEG; the issue's shading example;
what is refused and how; decompression bombs."""
import struct
import zlib

import numpy as np
import pytest

import lenet_fast
from lenet_fast import handwriting
from lenet_fast.images import read_digit


@pytest.fixture(scope="module")
def classic():
    return lenet_fast.pretrained("classic")


def error_rate(model, photos, labels):
    """The share read wrong, every refusal counted wrong."""
    wrong = 0
    for photo, label in zip(photos, labels):
        try:
            wrong += int(model.predict(read_digit(photo))[0] != label)
        except ValueError:
            wrong += 1
    return wrong / len(labels)


def test_photos_read_within_two_percent(classic):
    photos, labels = handwriting.digit_photos(200, seed=11)
    assert error_rate(classic, photos, labels) <= 0.02


def test_light_ink_on_dark_photos(classic):
    photos, labels = handwriting.digit_photos(50, seed=12)
    assert error_rate(classic, 255 - photos, labels) <= 0.04


def test_shading_example(classic):
    """The issue's example: a crisp dark 3 under a left-to-right shading of +-20/255, no noise."""
    ink = handwriting.draw(handwriting.digit_strokes(3, np.random.default_rng(5)), (120, 120), (60, 60), 80, 9)
    shading = np.linspace(-20, 20, 120)[None, :] / 255
    photo = np.clip(0.85 + shading - 0.75 * ink, 0, 1)
    assert classic.predict(read_digit(photo))[0] == 3
    assert classic.predict(read_digit(1 - photo))[0] == 3  # light ink on dark paper


@pytest.mark.parametrize("name", ["blank", "noise", "gradient"])
def test_refused_with_the_cause(name):
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:160, 0:160] / 160
    image = {"blank": np.full((160, 160), 0.9), "noise": np.clip(0.7 + rng.normal(0, 0.05, (160, 160)), 0, 1),
             "gradient": 0.4 + 0.5 * x * y}[name]
    with pytest.raises(ValueError, match="contains no digit.*blank paper, or a digit too faint or too small"):
        read_digit(image)


def effect_photo(digit, seed, **effect):
    """A 160x160 photo of digit with one effect only: gray paper, black ink, even light otherwise."""
    rng = np.random.default_rng(seed)
    size, height = 160, effect.get("height", 90)
    centre = effect.get("centre", (80, 80))
    ink = handwriting.draw(handwriting.digit_strokes(digit, rng), (size, size), centre, height, height * 0.1)
    if "blur" in effect:
        ink = handwriting._blur(ink, effect["blur"])
    colour = np.array(effect.get("colour", (0.05, 0.05, 0.05)))
    image = 0.9 + ink[..., None] * (colour - 0.9)
    y, x = (np.mgrid[0:size, 0:size] - size / 2) / size
    light = np.ones((size, size))
    if "shadow" in effect:
        light *= 1 - 0.35 / (1 + np.exp(-(x + 0.8 * y - 0.1) * size / 2))
    if "vignette" in effect:
        light -= 0.5 * (x * x + y * y)
    image = image * light[..., None] + rng.normal(0, effect.get("noise", 0.0), image.shape)
    pixels = np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8)
    return handwriting._jpeg(pixels, effect["jpeg"]) if "jpeg" in effect else pixels


EFFECTS = {
    "shadow edge": {"shadow": True},
    "vignette": {"vignette": True},
    "noise": {"noise": 0.06},
    "jpeg": {"jpeg": 40},
    "blur": {"blur": 1.5},
    "small, off-centre": {"height": 36, "centre": (30, 125)},
    "coloured ink": {"colour": (0.6, 0.1, 0.1)},
}


@pytest.mark.parametrize("effect", EFFECTS)
def test_each_effect_alone(effect, classic):
    digits = np.arange(10)
    read = [classic.predict(read_digit(effect_photo(int(d), (3, int(d)), **EFFECTS[effect])))[0] for d in digits]
    assert (np.array(read) == digits).sum() >= 9, read


def test_mnist_error_does_not_grow(mnist_subset, classic):
    """The pretrained classic reads MNIST's test digits through read_digit as well as directly."""
    from lenet_fast.datasets import load_mnist
    x, y = load_mnist(mnist_subset, "test")
    direct = (classic.predict(x) != y).sum()
    through = (classic.predict(np.stack([read_digit(a) for a in x])) != y).sum()
    assert through <= direct + 1, (direct, through)


def png_header(width, height):
    """A PNG file claiming width x height 8-bit gray pixels in its header, holding one row of them."""
    body = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + body + struct.pack(">I", zlib.crc32(b"IHDR" + body))
    data = zlib.compress(b"\0" * (width + 1))  # one row; the rest is missing, never read
    idat = struct.pack(">I", len(data)) + b"IDAT" + data + struct.pack(">I", zlib.crc32(b"IDAT" + data))
    end = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + chunk + idat + end


def test_decompression_bomb_refused_before_decoding(tmp_path):
    pytest.importorskip("PIL.Image")
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header(8_500, 8_500))
    with pytest.raises(ValueError, match=r"bomb\.png: the image is 8500x8500 pixels, more than the 64,000,000"):
        read_digit(path)
