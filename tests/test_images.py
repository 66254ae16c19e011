"""lenet_fast.images: digits from arrays and image files into MNIST's form.

The digits here are drawn by the tests (a ring "0", a bar "1", a "7" whose centre of mass is off its box's
centre), anti-aliased by supersampling, on canvases of any size and place. What read_digit promises is
checked on its output: the longer side of the ink's box is 20, the centre of mass is at (14, 14) within
rounding, and the same digit gives nearly the same 28x28 whatever its polarity, place, size, canvas,
colours, dtype or file format. Tests of files skip without Pillow; the one against MNIST skips without
the MNIST test set (the mnist_folder fixture, tests/conftest.py).
"""
import gzip
import struct
import sys
import zlib

import numpy as np
import pytest

from lenet_fast import images
from lenet_fast.images import read_digit, read_digits, sample_paths
from lenet_fast.reference import area_weights

# ---- helpers -------------------------------------------------------------------------------------------


def ring(y, x):
    """An oval "0", its hole above the middle: not symmetric top to bottom, so that its centre of mass is
    not on a half pixel, where rounding the shift to whole pixels would be a tie."""
    outer = (2 * y - 1) ** 2 + (2 * x - 1) ** 2
    hole = (2.2 * y - 1) ** 2 + (2 * x - 1) ** 2
    return (outer <= 1) & (hole >= 0.45)


def bar(y, x):
    return (y >= 0) & (y <= 1) & (x >= 0) & (x <= 1)


def seven(y, x):
    top = (y >= 0) & (y <= 0.2) & (x >= 0) & (x <= 1)
    stem = (y >= 0.2) & (y <= 1) & (np.abs(x - (1 - 0.6 * (y - 0.2) / 0.8) + 0.1) <= 0.12)
    return top | stem


SHAPES = {"ring": ring, "bar": bar, "seven": seven}


def draw(shape, canvas, box, dark=True, ss=4):
    """A float image of the canvas's (height, width), 1 white: shape drawn with full-strength ink in box
    (top, left, height, width), pixel coverage from ss x ss samples; dark ink on white, or the reverse."""
    h, w = canvas
    top, left, bh, bw = box
    y = ((np.arange(h * ss) + 0.5) / ss - top) / bh
    x = ((np.arange(w * ss) + 0.5) / ss - left) / bw
    cover = SHAPES[shape](y[:, None], x[None, :]).reshape(h, ss, w, ss).mean(axis=(1, 3))
    return 1 - cover if dark else cover


def to_uint8(a):
    return np.floor(a * 255 + 0.5).astype(np.uint8)


def corr(a, b):
    a = a.astype(np.float64).ravel() - a.mean()
    b = b.astype(np.float64).ravel() - b.mean()
    return a @ b / np.sqrt((a @ a) * (b @ b))


def ink_box(d):
    """(height, width) of the nonzero pixels."""
    rows, cols = np.flatnonzero(d.any(axis=1)), np.flatnonzero(d.any(axis=0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def centre_of_mass(d):
    d = d.astype(np.float64)
    i = np.arange(d.shape[0])
    return d.sum(axis=1) @ i / d.sum(), d.sum(axis=0) @ i / d.sum()


def check_mnist_form(d):
    assert d.shape == (28, 28) and d.dtype == np.uint8
    assert d.max() == 255
    assert max(ink_box(d)) == 20
    r, c = centre_of_mass(d)
    assert abs(r - 14) <= 0.55 and abs(c - 14) <= 0.55, (r, c)


def read_idx(folder, name):
    """An IDX file of MNIST's (big-endian: 2 zero bytes, a type byte, the number of dimensions, one uint32
    per dimension, the data), gzipped or not."""
    path = folder / name
    data = path.read_bytes() if path.exists() else gzip.decompress(path.with_name(name + ".gz").read_bytes())
    ndim = data[3]
    shape = tuple(np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def mnist_or_skip(folder):
    """The MNIST test set's images and labels in folder, or skip."""
    try:
        return read_idx(folder, "t10k-images-idx3-ubyte"), read_idx(folder, "t10k-labels-idx1-ubyte")
    except FileNotFoundError:
        pytest.skip(f"no MNIST test set in {folder}")


# The reference drawing of each shape: a 60x45 box in the middle of a 100x100 canvas.
CENTRED = {shape: draw(shape, (100, 100), (20, 27.5, 60, 45)) for shape in SHAPES}


@pytest.fixture(scope="module")
def reference():
    return {shape: read_digit(img) for shape, img in CENTRED.items()}


# ---- the MNIST form ------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
def test_mnist_form(shape, reference):
    check_mnist_form(reference[shape])
    assert ink_box(reference[shape]) == (20, 15)  # 60x45 scaled by 1/3


@pytest.mark.parametrize("shape", SHAPES)
def test_polarity_dark_on_light_and_light_on_dark_agree(shape, reference):
    light_on_dark = read_digit(1 - CENTRED[shape])
    assert np.abs(light_on_dark.astype(int) - reference[shape]).max() <= 1
    gray_paper = read_digit(0.3 + 0.5 * CENTRED[shape])  # no white or black anywhere
    assert np.abs(gray_paper.astype(int) - reference[shape]).max() <= 1


PLACES = {
    "off-centre": ((100, 100), (3, 50, 60, 45)),
    "wide canvas": ((90, 160), (25, 110, 60, 45)),
    "tall canvas": ((200, 70), (130, 10, 60, 45)),
    "large": ((400, 300), (30, 40, 240, 180)),
    "touching the edges": ((60, 45), (0, 0, 60, 45)),
    "small, scaled up": ((16, 14), (2, 3, 12, 9)),
}


# No paper at the edges: the bar fills its canvas; the seven's bar lies along the top edge, where it cannot
# be told from a shadow's dark band, so the page reads as unevenly lit and the band as paper.
@pytest.mark.parametrize("shape, place", [(shape, place) for shape in SHAPES for place in PLACES
                                          if place != "touching the edges" or shape == "ring"])
def test_same_digit_anywhere_on_any_canvas(shape, place, reference):
    canvas, box = PLACES[place]
    d = read_digit(draw(shape, canvas, box))
    check_mnist_form(d)
    assert corr(d, reference[shape]) > (0.85 if place.startswith("small") else 0.97)
    assert np.abs(np.subtract(ink_box(d), ink_box(reference[shape]))).max() <= 1


@pytest.mark.parametrize("size", [(200, 30), (30, 200)])
def test_aspect_ratio_kept(size):
    h, w = size
    d = read_digit(draw("bar", (300, 300), (50, 60, h, w)))
    assert ink_box(d) == ((20, 3) if h > w else (3, 20))
    check_mnist_form(d)


@pytest.mark.parametrize("canvas, box", [((100, 100), (20, 27.5, 60, 45)), ((400, 300), (30, 40, 240, 180))])
def test_faint_noisy_paper(canvas, box, reference):
    rng = np.random.default_rng(0)
    ink = 1 - draw("seven", canvas, box)
    photo = np.clip(0.8 - 0.5 * ink + rng.normal(0, 0.05, ink.shape), 0, 1)  # gray pencil on grainy paper
    d = read_digit(photo)
    clean = reference["seven"]
    check_mnist_form(d)
    assert corr(d, clean) > 0.97
    assert np.abs(np.subtract(ink_box(d), ink_box(clean))).max() <= 1
    assert (d[clean == 0] > 0).mean() < 0.02  # the paper's grain is background, not faint ink


def test_mnist_digits_come_back_as_they_are(mnist_folder):
    x, _ = mnist_or_skip(mnist_folder)
    again = np.stack([read_digit(a) for a in x[:200]])
    c = [corr(a, b) for a, b in zip(x[:200], again)]
    assert np.median(c) > 0.99 and np.mean(c) > 0.95


def test_area_resampling():
    rng = np.random.default_rng(1)
    a = rng.random((60, 40))
    w = area_weights(60, 20)
    assert np.allclose(w @ a, a.reshape(20, 3, 40).mean(axis=1))  # 3x down: block means
    assert np.allclose(area_weights(10, 20) @ a[:10], np.repeat(a[:10], 2, axis=0))  # 2x up
    for n_in, n_out in [(7, 20), (20, 7), (133, 20), (3, 20), (1, 20), (20, 1)]:
        w = area_weights(n_in, n_out)
        assert np.allclose(w.sum(axis=1), 1)  # each output is a mean
        assert np.allclose(w.sum(axis=0), n_out / n_in)  # each input counts by its area


# ---- input types ---------------------------------------------------------------------------------------


def test_rgb(reference):
    cover = 1 - CENTRED["ring"]
    paper, pen = np.array([250, 240, 200]), np.array([20, 40, 160])  # blue ink on yellowish paper
    rgb = np.floor(paper * (1 - cover[..., None]) + pen * cover[..., None] + 0.5).astype(np.uint8)
    assert corr(read_digit(rgb), reference["ring"]) > 0.99
    assert (read_digit(rgb[..., :1]) == read_digit(rgb[..., 0])).all()


@pytest.mark.parametrize("stroke", [0, 255, 128])
def test_rgba_transparent_canvas(stroke, reference):
    """Strokes of one colour, drawn on a transparent canvas (the colour under the transparent pixels is
    arbitrary): the alpha channel is the digit, whatever the colour."""
    cover = 1 - CENTRED["ring"]
    rgba = np.zeros(cover.shape + (4,), dtype=np.uint8)
    rgba[..., :3] = stroke
    rgba[..., 3] = to_uint8(cover)
    assert corr(read_digit(rgba), reference["ring"]) > 0.99


def test_rgba_opaque_is_rgb():
    rgb = np.repeat(to_uint8(CENTRED["seven"])[..., None], 3, axis=2)
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], axis=2)
    assert (read_digit(rgba) == read_digit(rgb)).all()


def test_dtypes(reference):
    u8 = to_uint8(CENTRED["seven"])
    ref = read_digit(u8)
    assert corr(ref, reference["seven"]) > 0.999
    for a in (u8.astype(np.uint16), u8.astype(np.int64), u8 / 255.0, (u8 / 255.0).astype(np.float32)):
        assert np.abs(read_digit(a).astype(int) - ref).max() <= 1, a.dtype
    binary = CENTRED["seven"] > 0.5
    assert (read_digit(binary) == read_digit(binary.astype(np.uint8) * 255)).all()
    assert (read_digit(~binary) == read_digit(binary)).all()
    assert (read_digit(u8.tolist()) == ref).all()


# ---- errors --------------------------------------------------------------------------------------------


def blank_images():
    rng = np.random.default_rng(2)
    one_off = np.full((50, 40), 200, np.uint8)
    one_off[20, 20] = 205
    return {
        "zeros": np.zeros((28, 28), np.uint8),
        "white": np.ones((30, 20)),
        "gray": np.full((10, 10, 3), 128, np.uint8),
        "one pixel": np.zeros((1, 1)),
        "transparent": np.zeros((20, 20, 4), np.uint8),
        "one pixel slightly off": one_off,
        "noise": np.clip(0.5 + rng.normal(0, 0.05, (300, 300)), 0, 1),
    }


@pytest.mark.parametrize("name", list(blank_images()))
def test_blank_image_has_no_ink(name):
    with pytest.raises(ValueError, match="contains no digit"):
        read_digit(blank_images()[name])


@pytest.mark.parametrize("bad, error", [
    (np.zeros(28), ValueError),
    (np.zeros((2, 28, 28)), ValueError),
    (np.zeros((28, 28, 2)), ValueError),
    (np.zeros((28, 28, 5)), ValueError),
    (np.zeros((0, 28)), ValueError),
    (np.full((28, 28), np.nan), ValueError),
    (np.full((28, 28), 1.5), ValueError),
    (np.full((28, 28), -1, np.int16), ValueError),
    (np.full((28, 28), 256, np.int16), ValueError),
    (np.zeros((28, 28), complex), TypeError),
    (np.full((28, 28), "a"), TypeError),
    (None, TypeError),
])
def test_bad_arrays(bad, error):
    with pytest.raises(error):
        read_digit(bad)


def test_one_nan_pixel():
    a = CENTRED["ring"].copy()
    a[5, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        read_digit(a)


# ---- files (Pillow) ------------------------------------------------------------------------------------


@pytest.fixture
def Image():
    return pytest.importorskip("PIL.Image")


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "LA", "P", "1", "I;16", "F"])
def test_files_and_pil_images(Image, mode, tmp_path, reference):
    u8 = to_uint8(CENTRED["ring"])
    if mode == "I;16":
        img = Image.fromarray(u8.astype(np.uint16) * 257)
    elif mode == "F":
        img = Image.fromarray(CENTRED["ring"].astype(np.float32))
    else:
        img = Image.fromarray(u8).convert(mode)
    assert img.mode == mode
    want = 0.9 if mode == "1" else 0.999  # "1" is dithered
    assert corr(read_digit(img), reference["ring"]) > want
    path = tmp_path / ("ring.tif" if mode == "F" else "ring.png")
    img.save(path)
    assert (read_digit(path) == read_digit(str(path))).all()
    assert corr(read_digit(path), reference["ring"]) > want


def test_jpeg(Image, tmp_path, reference):
    path = tmp_path / "seven.jpg"
    Image.fromarray(to_uint8(CENTRED["seven"])).convert("RGB").save(path, quality=75)
    assert corr(read_digit(path), reference["seven"]) > 0.98


def test_transparent_png(Image, tmp_path, reference):
    rgba = np.zeros((100, 100, 4), np.uint8)
    rgba[..., 3] = to_uint8(1 - CENTRED["ring"])
    path = tmp_path / "drawn.png"
    Image.fromarray(rgba).save(path)
    assert corr(read_digit(path), reference["ring"]) > 0.99


@pytest.mark.parametrize("suffix, least", [(".png", 0.999), (".jpg", 0.99)])
def test_exif_orientation_applied(Image, tmp_path, reference, suffix, least):
    """A camera stores the pixels as the sensor saw them and says how to turn them upright (EXIF tag 274;
    6: turn 90 degrees clockwise); a JPEG file (its EXIF read with the header) as a PNG one (after the
    pixels). Orientation 1 is upright as stored."""
    stored = np.rot90(to_uint8(CENTRED["seven"])).copy()  # as stored: turned anticlockwise
    for orientation, want in ((6, reference["seven"]), (1, read_digit(stored))):
        exif = Image.Exif()
        exif[274] = orientation
        path = tmp_path / f"photo{suffix}"
        Image.fromarray(stored).save(path, exif=exif)
        assert corr(read_digit(path), want) > least


def test_not_an_image_file(Image, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(ValueError, match="notes.png"):
        read_digit(text)
    good = tmp_path / "good.png"
    Image.fromarray(to_uint8(CENTRED["ring"])).save(good)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ValueError, match="truncated.png"):
        read_digit(truncated)


def test_blank_file_named(Image, tmp_path):
    path = tmp_path / "empty.png"
    Image.new("L", (40, 30), 255).save(path)
    with pytest.raises(ValueError, match="empty.png contains no digit"):
        read_digit(path)


def test_missing_file(Image, tmp_path):
    with pytest.raises(FileNotFoundError):
        read_digit(tmp_path / "nothing.png")
    with pytest.raises(FileNotFoundError):
        read_digits(tmp_path / "no folder")


def test_read_digits_folder(Image, tmp_path):
    for name, shape in [("b_ring.png", "ring"), ("a_seven.PNG", "seven"), ("c_bar.jpeg", "bar")]:
        Image.fromarray(to_uint8(CENTRED[shape])).save(tmp_path / name)
    (tmp_path / "readme.txt").write_text("not a digit")
    (tmp_path / "._a_seven.png").write_bytes(b"\0\5\26\7")  # macOS metadata beside a copied file
    (tmp_path / "sub.png").mkdir()
    digits, paths = read_digits(tmp_path)
    assert [p.name for p in paths] == ["a_seven.PNG", "b_ring.png", "c_bar.jpeg"]
    assert digits.shape == (3, 28, 28) and digits.dtype == np.uint8
    for d, p in zip(digits, paths):
        assert (d == read_digit(p)).all()
    assert (read_digits(str(tmp_path))[0] == digits).all()


def test_read_digits_list():
    digits, paths = read_digits([CENTRED["ring"], to_uint8(CENTRED["bar"])])
    assert digits.shape == (2, 28, 28) and paths == [None, None]
    assert (digits[0] == read_digit(CENTRED["ring"])).all()
    empty, paths = read_digits([])
    assert empty.shape == (0, 28, 28) and empty.dtype == np.uint8 and paths == []
    with pytest.raises(ValueError, match=r"sources\[1\]: the image contains no digit"):
        read_digits([CENTRED["ring"], np.zeros((5, 5))])


def test_read_digits_empty_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(ValueError, match="no image files"):
        read_digits(tmp_path)


def bad_folder(Image, folder):
    """A folder of good digits (a ring, a seven, a bar) between bad files of every kind read_digit refuses:
    {name: what its error says}, and the good files' names and shapes, in the folder's order."""
    Image.fromarray(to_uint8(CENTRED["ring"])).save(folder / "a_ring.png")
    good = (folder / "a_ring.png").read_bytes()
    (folder / "b_corrupt.png").write_bytes(good[: len(good) // 2])  # a truncated PNG
    (folder / "c_text.png").write_text("not an image")
    (folder / "d_empty.png").write_bytes(b"")
    Image.new("L", (40, 30), 255).save(folder / "e_blank.png")
    Image.fromarray(to_uint8(CENTRED["seven"])).save(folder / "f_seven.png")
    (folder / "g_dir.png").mkdir()  # a folder named like an image: image_files does not list it
    Image.fromarray(to_uint8(CENTRED["bar"])).save(folder / "h_bar.jpeg")
    bad = {"b_corrupt.png": "b_corrupt.png", "c_text.png": "c_text.png: not an image file",
           "d_empty.png": "d_empty.png: not an image file", "e_blank.png": "e_blank.png contains no digit"}
    return bad, ["a_ring.png", "f_seven.png", "h_bar.jpeg"], ["ring", "seven", "bar"]


def test_read_digits_raise_stops_at_the_first_bad_file(Image, tmp_path):
    bad_folder(Image, tmp_path)
    with pytest.raises(ValueError, match="b_corrupt.png"):
        read_digits(tmp_path)
    with pytest.raises(ValueError, match="b_corrupt.png"):
        read_digits(tmp_path, errors="raise")


@pytest.mark.parametrize("errors", ["skip", "report"])
def test_read_digits_skip_and_report_keep_every_good_file(Image, tmp_path, reference, errors):
    bad, good, shapes = bad_folder(Image, tmp_path)
    result = read_digits(tmp_path, errors=errors)
    assert len(result) == (3 if errors == "report" else 2)
    digits, paths = result[:2]
    assert [p.name for p in paths] == good and digits.shape == (3, 28, 28) and digits.dtype == np.uint8
    for d, path, shape in zip(digits, paths, shapes):
        assert (d == read_digit(path)).all()
        assert max(reference, key=lambda s: corr(d, reference[s])) == shape
    if errors == "report":
        failures = result[2]
        listing = sorted(p.name for p in tmp_path.iterdir() if p.is_file())
        assert [(i, source.name) for i, source, _ in failures] == [(listing.index(n), n) for n in bad]
        for (_, source, error), (name, says) in zip(failures, bad.items()):
            assert source == tmp_path / name and isinstance(error, ValueError)
            assert says in str(error), str(error)


def test_read_digits_report_os_errors_and_arrays(Image, tmp_path):
    missing = tmp_path / "missing.png"
    sources = [CENTRED["ring"], missing, np.zeros((5, 5)), str(tmp_path), np.array([["x"]]), CENTRED["bar"]]
    digits, paths, failures = read_digits(sources, errors="report")
    assert digits.shape == (2, 28, 28) and paths == [None, None]
    assert (digits[1] == read_digit(CENTRED["bar"])).all()
    assert [i for i, _, _ in failures] == [1, 2, 3, 4]
    assert failures[0][1] is missing and isinstance(failures[0][2], FileNotFoundError)
    assert failures[1][1] is sources[2] and isinstance(failures[1][2], ValueError)
    assert str(failures[1][2]).startswith("sources[2]: the image contains no digit")
    assert isinstance(failures[2][2], OSError)  # a folder given as an image file
    assert isinstance(failures[3][2], TypeError) and str(failures[3][2]).startswith("sources[4]: ")
    with pytest.raises(FileNotFoundError):
        read_digits(sources, errors="raise")


def test_read_digits_bad_errors_value():
    with pytest.raises(ValueError, match="errors must be 'raise', 'skip' or 'report', got 'ignore'"):
        read_digits([CENTRED["ring"]], errors="ignore")


def test_read_digits_never_swallows_interrupts_or_memory_errors(monkeypatch):
    for exc in (KeyboardInterrupt, MemoryError):
        def refuse(source, exc=exc):
            raise exc()
        monkeypatch.setattr(images, "_source_gray", refuse)  # each source's first step, in a batch too
        with pytest.raises(exc):
            read_digits([CENTRED["ring"]], errors="skip")


def test_read_digits_folder_errors_are_raised_whatever_errors_says(tmp_path):
    (tmp_path / "notes.txt").write_text("")
    for errors in ("skip", "report"):
        with pytest.raises(ValueError, match="no image files"):
            read_digits(tmp_path, errors=errors)
        with pytest.raises(FileNotFoundError):
            read_digits(tmp_path / "no folder", errors=errors)


def test_without_pillow(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "PIL", None)  # import PIL now fails, as when Pillow is not installed
    path = tmp_path / "digit.png"
    path.write_bytes(b"")
    message = 'Reading image files needs Pillow: pip install "lenet_fast[images]"'
    with pytest.raises(ImportError) as info:
        read_digit(path)
    assert str(info.value) == message
    with pytest.raises(ImportError, match="needs Pillow"):
        read_digits(tmp_path)
    check_mnist_form(read_digit(CENTRED["ring"]))  # arrays never need it


def png(pixels, filters, depth=8, colour=0, chunks=()):
    """An 8-bit grayscale PNG of pixels ((H, W) uint8), row y filtered with filters[y % len(filters)] (PNG's
    five filter types, written out here as the specification defines them), extra chunks before IDAT."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    h, w = pixels.shape
    raw, above = bytearray(), [0] * w
    for y in range(h):
        kind, row = filters[y % len(filters)], [int(v) for v in pixels[y]]
        out = []
        for x in range(w):
            left, up, corner = row[x - 1] if x else 0, above[x], above[x - 1] if x else 0
            p = left + up - corner
            paeth = min((abs(p - left), 0, left), (abs(p - up), 1, up), (abs(p - corner), 2, corner))[2]
            guess = [0, left, up, (left + up) >> 1, paeth][kind] if kind < 5 else 0  # 5: no such filter
            out.append((row[x] - guess) & 0xFF)
        raw += bytes([kind] + out)
        above = row
    header = struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 0)
    return (images.PNG_SIGNATURE + chunk(b"IHDR", header) + b"".join(chunk(k, b) for k, b in chunks)
            + chunk(b"IDAT", zlib.compress(bytes(raw))) + chunk(b"IEND", b""))


@pytest.mark.parametrize("filters", [[0], [1], [2], [3], [4], [4, 0, 3, 1, 2]],
                         ids=lambda f: "filters" + "".join(map(str, f)))
def test_gray_png_read_without_pillow(filters, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "PIL", None)
    pixels = np.random.default_rng(len(filters) * 10 + filters[0]).integers(0, 256, (11, 13), dtype=np.uint8)
    path = tmp_path / "digit.png"
    path.write_bytes(png(pixels, filters, chunks=[(b"tEXt", b"comment\0ancillary: skipped")]))
    np.testing.assert_array_equal(images._read_file(path), pixels)


def test_gray_png_reader_is_strict(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "PIL", None)
    pixels = np.arange(30, dtype=np.uint8).reshape(5, 6)
    good = png(pixels, [1])
    path = tmp_path / "digit.png"
    damaged = {
        "a bad CRC": good[:40] + bytes([good[40] ^ 1]) + good[41:],
        "truncated": good[:-20],
        "no end": good[:-12],
        "a bad filter": png(pixels, [5]),
    }
    for what, data in damaged.items():
        path.write_bytes(data)
        with pytest.raises(ValueError, match="not an image file"):
            read_digit(path)
    others = {"16-bit": png(pixels, [0], depth=16), "colour": png(pixels, [0], colour=2),
              "a palette": png(pixels, [0], chunks=[(b"PLTE", bytes(3))])}
    for what, data in others.items():
        path.write_bytes(data)
        with pytest.raises(ImportError, match="needs Pillow"):
            images._read_file(path)


def test_samples_read_without_pillow_as_with_it(Image, monkeypatch):
    with_pillow, _ = read_digits(sample_paths())
    pixels = [np.asarray(Image.open(p)) for p in sample_paths()]
    monkeypatch.setitem(sys.modules, "PIL", None)
    for p, expected in zip(sample_paths(), pixels):
        np.testing.assert_array_equal(images._read_file(p), expected)
    without, _ = read_digits(sample_paths())
    np.testing.assert_array_equal(without, with_pillow)


# ---- the samples ---------------------------------------------------------------------------------------


def test_samples_are_shipped():
    paths = sample_paths()
    assert [p.name for p in paths] == [f"digit_{d}.png" for d in range(10)]
    assert all(p.is_file() for p in paths)


def test_samples_read_as_their_mnist_originals(Image, mnist_folder):
    digits, paths = read_digits(sample_paths())
    for d in digits:
        check_mnist_form(d)
    x, labels = mnist_or_skip(mnist_folder)
    for digit, d in enumerate(digits):
        original = x[np.argmax(labels == digit)]
        assert corr(d, original) > 0.8, digit


def test_expand_sources_keeps_each_error_at_its_place(tmp_path):
    (tmp_path / "scans").mkdir()
    for name in ("b.png", "a.png"):
        (tmp_path / "scans" / name).write_bytes(b"")
    (tmp_path / "empty").mkdir()
    names = [tmp_path / "one.png", tmp_path / "empty", tmp_path / "scans", str(tmp_path / "scans" / "*.png"),
             str(tmp_path / "none*.png")]
    sources, errors = images.expand_sources(names)
    assert [p.name for p in sources] == ["one.png", "a.png", "b.png", "*.png", "none*.png"]  # no patterns: names
    assert list(errors) == [1] and "no image files" in str(errors[1][0][1])
    sources, errors = images.expand_sources(names, patterns=True)
    assert [p.name for p in sources] == ["one.png", "a.png", "b.png", "a.png", "b.png"]
    assert sorted(errors) == [1, 5] and "no file matches" in str(errors[5][0][1])
    assert images.in_place(["s0", "s1", "s2"], {0: ["e0"], 2: ["e2a", "e2b"], 3: ["end"]}) == \
        ["e0", "s0", "s1", "e2a", "e2b", "s2", "end"]
