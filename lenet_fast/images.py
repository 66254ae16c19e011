"""Digits from image files and arrays, in the form the network was trained on (MNIST's).

MNIST's digits were scanned as dark ink on light paper; each was cropped to its ink, scaled with
anti-aliasing so that its longer side is 20 pixels (aspect ratio kept), and pasted into a 28x28 field with
its centre of mass at the centre; ink is bright (255) on a black (0) background. A digit photographed or
drawn anywhere else looks nothing like that until it goes through the same steps, which read_digit does:

1. Gray levels in [0, 1], 1 white. Colour is reduced to luma (ITU-R BT.601: 0.299 R + 0.587 G + 0.114 B,
   as Pillow's "L"). Transparent pixels are background: the image is composited over white, or over black
   when its visible pixels are light on average (alpha-weighted mean luma above 0.5), so that both dark and
   light strokes drawn on a transparent canvas stay visible.
2. Size. An image larger than WORK_SIZE (512) pixels on its longer side is reduced by area averaging over
   whole blocks (a JPEG file is decoded at a reduced scale already): a digit needs no more.
3. Paper and polarity. When the border (the outermost row and column on each side) is evenly lit (its
   10th to 90th percentiles within FLAT_PAPER), the paper is one level, the border's median, and the ink
   whatever the mean of the whole image moves away from it towards: below the paper's level, the ink is
   dark and the image is inverted; otherwise it is already light on dark. Otherwise the paper follows the
   light: the polarity is the one whose paper estimate is smooth (a coarse image's grey-level closing, which
   removes dark strokes, against its opening, which removes light ones), and the paper is the closing (or
   opening) of the image over a window wider than a stroke (a sixth of the longer side, at least
   MIN_WINDOW pixels): it keeps gradients, vignetting and shadow edges and fills the strokes. Dark ink is
   measured relative to the paper (paper - gray) / paper, so that the light's level cancels; light ink as
   gray - paper. When nothing stands out (step 4) in the polarity chosen, the other one is tried.
4. Noise floor. 3 robust standard deviations (1.4826 x the median absolute deviation) above the median of
   that ink map are subtracted, so that grainy paper, JPEG ringing and sensor noise become 0 rather than
   faint ink. The strongest ink must rise above the floor by MIN_CONTRAST (0.1 of the full range) and by
   3 standard deviations; if not, ValueError "contains no digit" (blank paper, or a digit too faint or small).
5. The digit's ink. Of the 8-connected components of what is left, the one holding the most ink is the
   digit; pieces near it that are large or dark enough (a digit written in pieces) stay, specks and shadow
   remnants go. A digit under MIN_SIZE pixels both ways is a speck: ValueError "contains no digit".
6. Crop to the bounding box of the pixels holding at least INK_THRESHOLD (a quarter) of the strongest
   ink: the stroke, without the faintest anti-aliasing and residual noise around it.
7. Scale by area averaging (each output pixel is the mean of the input area it covers; up-scaling spreads
   each input pixel over the outputs it overlaps) so that the longer side is 20 pixels, then stretch the
   levels so that the strongest ink is 255, as in a clean scan whatever the pen's or the photo's contrast.
8. Paste into 28x28 with the centre of mass (index coordinates, as MNIST's averages 14.0) at (14, 14):
   the offset is rounded to whole pixels and clipped so the 20-pixel box stays inside the field.

Steps 2-8 are one C call without the GIL (csrc/read_digit.c), for one picture or for each chunk of
read_digits' pictures, so that reading threads add up; lenet_fast.reference.read_digit is the same in NumPy.

Files need Pillow (pip install "lenet_fast[images]"), imported only when a file is read; arrays never
need it, and neither do 8-bit grayscale PNG files such as the sample digits the package ships (read by a
small strict decoder when Pillow is absent, so that a bare install's first command works).
"""
import concurrent.futures
import glob
import os
import struct
import sys
import zlib
from pathlib import Path

import numpy as np

from . import _core

SIZE = 28                 # the field
BOX = 20                  # the longer side of the scaled digit
CENTRE = 14.0             # where the centre of mass goes, in index coordinates
INK_THRESHOLD = 0.25      # of the strongest ink: what counts for the bounding box
MIN_CONTRAST = 0.1        # of the full range: less is no ink
NOISE_SIGMAS = 3.0        # the noise floor, in robust standard deviations of the ink map
WORK_SIZE = 512           # a larger image is area-averaged to this longer side first
POLARITY_SIZE = 32        # the coarse image on which the polarity is decided
FLAT_PAPER = 0.05         # the coarse paper's range, of the full range: less is evenly lit
LIGHT_WINDOW = 6          # the window following uneven light is the longer side / this: wider than a stroke
MIN_WINDOW = 21           # pixels: the shortest such window (a small image is mostly digit)
MIN_PAPER = 0.02          # the paper's level divides the ink: never by less
PART_SHARE = 0.1          # of the digit's ink: a separate piece as large is part of it
MARK_PEAK = 0.5           # of the digit's strongest ink: a piece as dark is a mark, not noise, whatever its size
ADJACENT = 2              # pixels: a piece this close to the digit's box is kept whatever it holds
PART_REACH = 0.5          # of the digit's longer side: how far from its box such a piece may lie
MIN_SIZE = 3              # pixels: a smaller digit is a speck
LUMA = np.array([0.299, 0.587, 0.114])
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".pbm", ".pgm", ".png", ".pnm", ".ppm", ".tif", ".tiff",
                    ".webp")
PILLOW_MISSING = 'Reading image files needs Pillow: pip install "lenet_fast[images]"'
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EXIF_ORIENTATION = 0x0112  # the EXIF tag ImageOps.exif_transpose applies (1: upright as stored)
MAX_PIXELS = 64_000_000   # a file claiming more is refused before decoding: no decompression bomb
PNG_MAX_PIXELS = 1 << 24  # the built-in PNG reader's limit (a digit needs far fewer): no decompression bomb
SAMPLES = Path(__file__).parent / "samples"
READ_CHUNK = 16           # sources a reading thread takes at a time: few hand-offs, and the threads stay even
# The constants above as csrc/read_digit.c takes them (lenet_fast.h: lf_picture_params), steps 2-8 being C.
PICTURE_PARAMS = {
    "work_size": WORK_SIZE, "polarity_size": POLARITY_SIZE, "light_window": LIGHT_WINDOW, "min_window": MIN_WINDOW,
    "min_size": MIN_SIZE, "adjacent": ADJACENT, "box": BOX, "size": SIZE, "flat_paper": FLAT_PAPER,
    "min_paper": MIN_PAPER, "noise_sigmas": NOISE_SIGMAS, "min_contrast": MIN_CONTRAST,
    "ink_threshold": INK_THRESHOLD, "part_share": PART_SHARE, "mark_peak": MARK_PEAK, "part_reach": PART_REACH,
    "centre": CENTRE,
}


def read_digit(source):
    """One digit as a (28, 28) uint8 MNIST image (ink 255 on 0), by the steps in the module docstring.

    source: a path to an image file (str or os.PathLike; needs Pillow; EXIF orientation is applied, so
    photos come out upright), a PIL.Image, or an array: (H, W) gray, (H, W, 1), (H, W, 3) RGB or
    (H, W, 4) RGBA, of uint8 or other integers in 0..255, booleans, or floats in [0, 1]. Any size, either
    polarity: dark ink on light paper or light on dark.

    Raises ValueError for an image with no digit (blank, or a digit too faint or too small: "no digit
    found"), a file Pillow cannot read or whose header claims more than MAX_PIXELS (64 million) pixels
    (refused before decoding; both naming it) or a bad array
    (shape, range, NaN), TypeError for non-numeric pixels, FileNotFoundError for a missing file and
    ImportError when a file is given and Pillow is not installed (unless it is an 8-bit grayscale PNG, as
    the sample digits are: module docstring).
    """
    name, gray = _source_gray(source)
    [(digit, exc)] = _read_grays([gray], [name])
    if exc is not None:
        raise exc
    return digit


def _source_gray(source):
    """(name, gray): a source as read_digit takes it, read into its gray image (_gray), and the name its
    errors give (the file's, or "the image"); a file's ValueError names it."""
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        try:
            return name, _gray(_read_file(source))
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    if _is_pil_image(source):
        return "the image", _gray(_pil_pixels(source))
    return "the image", _gray(source)


def read_digits(sources, errors="raise"):
    """The digits of several sources as an (N, 28, 28) uint8 array, read by read_digit, and for each the
    pathlib.Path it came from (None for an array or a PIL.Image), in the order of sources.

    sources: a folder (str or os.PathLike), for the files image_files(folder) lists (its errors are raised
    whatever errors says: they concern the folder, not an image), or an iterable of sources as read_digit
    takes them.

    errors says what a source that cannot be read does: the ValueError, TypeError or OSError read_digit
    raises (no ink, not an image, a bad array; a missing file, a folder, no permission), each naming its
    source (a file by its name, anything else as "sources[i]"):
    - "raise" (the default): the first one is raised; returns (images, paths).
    - "skip": it is left out; returns (images, paths) of the sources that could be read.
    - "report": as "skip", and returns (images, paths, failures): failures lists (index, source, error) for
      each source left out, in order: its position in sources (in the folder's listing for a folder), the
      source itself (the pathlib.Path for a folder's file) and the exception "raise" would have raised.
    Anything else (ImportError when Pillow is missing, MemoryError, KeyboardInterrupt) is always raised.
    ValueError for another value of errors.
    """
    if errors not in ("raise", "skip", "report"):
        raise ValueError(f"errors must be 'raise', 'skip' or 'report', got {errors!r}")
    if isinstance(sources, (str, os.PathLike)):
        sources = image_files(sources)
    sources = list(sources)
    images = np.empty((len(sources), SIZE, SIZE), dtype=np.uint8)
    paths, failures = [], []
    for i, (source, (digit, exc)) in enumerate(zip(sources, _read_all(sources))):
        path = Path(source) if isinstance(source, (str, os.PathLike)) else None
        if exc is not None:
            if path is not None:  # read_digit named the file already
                error = exc
                if errors == "raise":
                    raise exc
            else:
                error = type(exc)(f"sources[{i}]: {exc}")
                if errors == "raise":
                    raise error from None
            failures.append((i, source, error))
            continue
        images[len(paths)] = digit
        paths.append(path)
    images = images[: len(paths)]
    return (images, paths, failures) if errors == "report" else (images, paths)


def _read_all(sources):
    """For each source, (read_digit's digit, None) or (None, the OSError, TypeError or ValueError it raised),
    in order. The sources are read on as many threads as the kernels use (get_num_threads), in chunks of
    READ_CHUNK: each chunk's files are decoded and grayed (Pillow's decoding and numpy's larger loops release
    the GIL), and then its gray pictures go through steps 2-8 in one C call that releases it."""
    def attempt(chunk):
        out, grays, names = [], [], []
        for source in chunk:
            try:
                name, gray = _source_gray(source)
            except (OSError, TypeError, ValueError) as exc:
                out.append((None, exc))
                continue
            out.append(len(grays))  # its place among the chunk's pictures
            grays.append(gray)
            names.append(name)
        read = _read_grays(grays, names) if grays else []
        return [read[r] if isinstance(r, int) else r for r in out]

    chunks = [sources[i:i + READ_CHUNK] for i in range(0, len(sources), READ_CHUNK)]
    workers = min(_core.get_num_threads(), len(chunks))
    if workers <= 1:
        return [result for chunk in chunks for result in attempt(chunk)]
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return [result for done in pool.map(attempt, chunks) for result in done]


def _read_grays(grays, names):
    """For each gray picture (_gray's) and the name its errors give, (its MNIST form, None) or (None, the
    no-digit ValueError), in order: steps 2-8 of the module docstring, all the pictures in one C call
    (csrc/read_digit.c), which releases the GIL."""
    digits, status, specks, contrasts, floors = _core.read_digits(grays, PICTURE_PARAMS)
    out = []
    for digit, name, kind, speck, contrast, floor in zip(digits, names, status, specks, contrasts, floors):
        if kind == _core.PICTURE_OK:
            out.append((digit, None))
        elif kind == _core.PICTURE_SPECK:
            out.append((None, ValueError(f"{name} contains no digit: the largest mark is a speck of {speck} "
                                         f"pixels: blank paper, or a digit too faint or too small to read")))
        else:
            out.append((None, _no_ink(name, contrast, floor)))
    return out


def _no_ink(name, contrast, floor):
    """The ValueError of a picture where nothing stands out from the background (module docstring, step 4)."""
    return ValueError(f"{name} contains no digit: nothing stands out from the background (strongest contrast "
                      f"{contrast:.3f} above a noise floor of {floor:.3f}): blank paper, or a digit too faint or "
                      f"too small to read")


def image_files(folder):
    """The image files directly in folder, sorted by name (plain string order: "10.png" before "2.png"):
    names ending in IMAGE_EXTENSIONS, any case; hidden files (".name", such as macOS's "._x.png") are
    skipped. FileNotFoundError or NotADirectoryError when folder is not a folder; ValueError when it holds
    no image file."""
    with os.scandir(folder) as entries:
        paths = sorted(Path(e.path) for e in entries
                       if e.is_file() and not e.name.startswith(".") and e.name.lower().endswith(IMAGE_EXTENSIONS))
    if not paths:
        raise ValueError(f"{os.fspath(folder)}: no image files (names ending in {', '.join(IMAGE_EXTENSIONS)})")
    return paths


def expand_sources(names, patterns=False):
    """(the files to read, as pathlib.Paths in order; {how many files come before it: [(name, error)]}) for
    names given on a command line or to a batch job: each a file, a folder (its image_files) or, with
    patterns, a glob pattern ("scans/**/*.png": its matches, sorted). A folder that cannot be listed or holds
    no image file, and a pattern matching nothing, are errors kept at their place; a missing file is left to
    the reader, whose error it then is."""
    sources, errors = [], {}
    for item in names:
        name = os.fspath(item)
        try:
            if os.path.isdir(name):
                sources.extend(image_files(name))
            elif patterns and glob.has_magic(name):
                matches = sorted(glob.glob(name, recursive=True))
                if not matches:
                    raise FileNotFoundError(f"{name}: no file matches this pattern")
                sources.extend(Path(match) for match in matches)
            else:
                sources.append(Path(name))
        except (OSError, ValueError) as exc:
            errors.setdefault(len(sources), []).append((name, exc))
    return sources, errors


def in_place(rows, extra):
    """rows (one per source, in order) with extra's rows ({how many sources come before them: [row]}) put
    back at their places."""
    out = []
    for i, row in enumerate(rows):
        out.extend(extra.get(i, ()))
        out.append(row)
    out.extend(extra.get(len(rows), ()))
    return out


def sample_paths():
    """The sample digits shipped with the package, digit_0.png to digit_9.png: for each class the first
    image of the MNIST test set, drawn dark on white and enlarged to 84x84 (tools/make_samples.py)."""
    return sorted(SAMPLES.glob("digit_*.png"))


class TooManyPixels(ValueError):
    """An image file whose header claims more pixels than the reader takes, refused before decoding."""


def _read_file(path, max_pixels=MAX_PIXELS):
    """The pixels of an image file (a path or a binary file object), as _pil_pixels gives them. A JPEG file
    is decoded at the smallest of its reduced scales (1/2 to 1/8) that keeps the longer side at least
    WORK_SIZE, a colour one as its luma. TooManyPixels, before any pixel is decoded, when the header claims
    more than max_pixels pixels (or more than Pillow's own limit); ValueError for a file Pillow cannot read."""
    try:
        from PIL import Image, ImageOps
    except ImportError:
        return _read_gray_png(path)
    try:
        with Image.open(path) as img:
            size = img.size
            if size[0] * size[1] <= max_pixels:
                longer = max(size)
                # a colour JPEG is decoded as its luma plane only (JPEG's Y is BT.601 luma, as _gray's)
                img.draft("L" if img.mode == "RGB" else img.mode,
                          (size[0] * WORK_SIZE // longer, size[1] * WORK_SIZE // longer))
                # exif_transpose reads the same orientation; without one to apply it would copy the pixels
                if img.getexif().get(EXIF_ORIENTATION, 1) != 1:
                    img = ImageOps.exif_transpose(img)
                return _pil_pixels(img)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Image.DecompressionBombError:  # not an OSError: a header past Pillow's own limit
        raise TooManyPixels("the image claims more pixels than Pillow decodes (a decompression bomb?)") from None
    except (OSError, SyntaxError, ValueError) as exc:  # UnidentifiedImageError, a truncated or damaged file
        raise ValueError(f"not an image file Pillow can read ({exc})") from None
    raise TooManyPixels(f"the image is {size[0]}x{size[1]} pixels, more than the {max_pixels:,} accepted "
                        "(a decompression bomb?)")


def _read_gray_png(path):
    """The (H, W) uint8 pixels of an 8-bit grayscale, non-interlaced PNG file (the sample digits' form),
    without Pillow. ImportError (Pillow is needed) for any other file or PNG kind; ValueError for a PNG that
    is damaged (bad signature, CRC, chunk order, filter or data length)."""
    with open(path, "rb") as f:
        data = f.read(len(PNG_SIGNATURE))
        if data != PNG_SIGNATURE:
            raise ImportError(PILLOW_MISSING)
        data = f.read()
    chunks, at = [], 0
    while at < len(data):
        if at + 12 > len(data):
            raise ValueError("not an image file Pillow can read (a truncated PNG chunk)")
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        body = data[at + 8 : at + 8 + length]
        if len(body) != length or at + 12 + length > len(data):
            raise ValueError("not an image file Pillow can read (a truncated PNG chunk)")
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        if zlib.crc32(kind + body) != crc:
            raise ValueError(f"not an image file Pillow can read (PNG chunk {kind!r} fails its CRC)")
        chunks.append((kind, body))
        at += 12 + length
        if kind == b"IEND":
            break
    if not chunks or chunks[0][0] != b"IHDR" or len(chunks[0][1]) != 13 or chunks[-1][0] != b"IEND":
        raise ValueError("not an image file Pillow can read (a PNG without its header or end)")
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    if (depth, colour, compression, filtering, interlace) != (8, 0, 0, 0, 0):
        raise ImportError(PILLOW_MISSING + " (only 8-bit grayscale PNG files are read without it)")
    if not 0 < width * height <= PNG_MAX_PIXELS:
        raise ValueError(f"not an image file Pillow can read (a PNG of {width}x{height} pixels)")
    # Ancillary chunks (lower-case first letter) may be skipped; a critical one other than IDAT changes the
    # pixels' meaning.
    if any(kind[:1].isupper() and kind not in (b"IHDR", b"IDAT", b"IEND") for kind, _ in chunks):
        raise ImportError(PILLOW_MISSING + " (a PNG with chunks the built-in reader does not handle)")
    expected = height * (width + 1)  # each row: its filter type byte, then the pixels
    inflate = zlib.decompressobj()
    try:
        raw = inflate.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"), expected + 1)
    except zlib.error as exc:
        raise ValueError(f"not an image file Pillow can read (PNG data: {exc})") from None
    if len(raw) != expected or not inflate.eof:
        raise ValueError(f"not an image file Pillow can read (PNG data of {len(raw)} bytes, expected {expected})")
    return _unfilter(raw, width, height)


def _unfilter(raw, width, height):
    """PNG's per-row filters undone (one byte per pixel): the (height, width) uint8 image."""
    out = np.zeros((height + 1, width), dtype=np.uint8)  # row 0: the zero row above the first
    for y in range(height):
        start = y * (width + 1) + 1
        kind, line, up = raw[start - 1], raw[start : start + width], out[y]
        if kind == 0:
            row = np.frombuffer(line, np.uint8)
        elif kind == 2:
            row = np.frombuffer(line, np.uint8) + up  # wraps modulo 256, as PNG's arithmetic does
        elif kind in (1, 3, 4):  # each pixel depends on the one decoded before it
            row, left, up = bytearray(width), 0, up.tolist()
            for x in range(width):
                above, corner = up[x], up[x - 1] if x else 0
                if kind == 1:
                    guess = left
                elif kind == 3:
                    guess = (left + above) >> 1
                else:  # Paeth: whichever of left, above, corner is nearest left + above - corner
                    p = left + above - corner
                    pa, pb, pc = abs(p - left), abs(p - above), abs(p - corner)
                    guess = left if pa <= pb and pa <= pc else above if pb <= pc else corner
                left = row[x] = (line[x] + guess) & 0xFF
            row = np.frombuffer(row, np.uint8)
        else:
            raise ValueError(f"not an image file Pillow can read (PNG row filter {kind})")
        out[y + 1] = row
    return out[1:]


def _is_pil_image(x):
    """Whether x is a PIL.Image, without importing Pillow: if PIL.Image is not loaded, x cannot be one."""
    module = sys.modules.get("PIL.Image")
    return module is not None and isinstance(x, module.Image)


def _pil_pixels(img):
    """A PIL image's pixels as an array _gray takes: 8-bit gray, or RGBA when there is transparency."""
    if img.mode.startswith("I"):  # 16-bit (and 32-bit) integer gray: Pillow's "L" would clip it
        return np.clip(np.asarray(img, dtype=np.float64) / 65535, 0.0, 1.0)
    if img.mode == "F":  # float gray: taken like a float array, in [0, 1]
        return np.asarray(img)
    transparent = "A" in img.getbands() or "transparency" in img.info
    mode = "RGBA" if transparent else "L"
    return np.asarray(img if img.mode == mode else img.convert(mode))  # convert to its own mode would copy


def _gray(a):
    """A float32 (H, W) image in [0, 1], 1 white, from an array source; transparency resolved as the
    module docstring says. float32 holds a pixel's level to 6e-8, far below any photo's noise, and halves
    the memory every later step moves."""
    a = np.asarray(a)
    if a.dtype != bool and a.dtype.kind not in "uif":
        raise TypeError(f"image pixels must be numbers or booleans, got dtype {a.dtype}")
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (1, 3, 4))):
        raise ValueError(f"an image array must be (H, W) gray, (H, W, 1), (H, W, 3) RGB or (H, W, 4) RGBA, "
                         f"got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"the image is empty: shape {a.shape}")
    if a.dtype.kind in "ui" and a.dtype != np.uint8:  # uint8 is in range by its type
        if a.min() < 0 or a.max() > 255:
            raise ValueError("integer pixels must lie in 0..255")
    elif a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise ValueError("the image contains NaN or infinite pixels")
        if a.min() < 0 or a.max() > 1:
            raise ValueError("float pixels must lie in [0, 1]")
    unit = 1 / 255 if a.dtype.kind in "ui" else 1.0
    if a.ndim == 2 or a.shape[2] == 1:
        return np.multiply(a.reshape(a.shape[:2]), np.float32(unit), dtype=np.float32)
    # (pixels, 3) @ (3,): a matrix-vector product, far faster than an einsum over the colour axis; in bands
    # of rows, so that a photo's float copy of its colours is never whole
    gray = np.empty(a.shape[:2], np.float32)
    weights = (LUMA * unit).astype(np.float32)
    rows = max(1, (1 << 16) // a.shape[1])
    for top in range(0, a.shape[0], rows):
        band = np.asarray(a[top:top + rows, :, :3], np.float32)
        gray[top:top + rows] = (band.reshape(-1, 3) @ weights).reshape(band.shape[:2])
    if a.shape[2] == 4:
        alpha = np.multiply(a[..., 3], np.float32(unit), dtype=np.float32)
        paper = 1.0 if np.vdot(alpha, gray) <= 0.5 * alpha.sum() else 0.0
        gray -= paper  # over the paper: paper + alpha * (gray - paper)
        gray *= alpha
        gray += paper
    return gray
