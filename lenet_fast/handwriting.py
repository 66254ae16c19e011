"""Synthetic photographs of handwritten digits and numbers: material for testing and timing read_digit and
read_number on pictures that are not from MNIST, made from a seed so that any set can be made again.

A digit is drawn as a pen would draw it: each class has a few styles (a 1 with or without its flag, a 4 open
or closed, a 7 with or without its bar), each a list of strokes through control points in a unit box (x to
the right, y down, the digit 1 high and about 0.6 wide). Every control point is jittered, the whole digit is
slanted, rotated and stretched, and the strokes are traced through their points (Catmull-Rom splines) with a
pen of random width. The ink is then photographed: put on tinted paper in a coloured ink, lit unevenly (a
gradient, vignetting, sometimes the edge of a shadow), blurred, with sensor noise, and saved as JPEG when
Pillow is installed (a photo's usual artefacts).

    from lenet_fast import handwriting
    pictures, labels = handwriting.digit_photos(100, seed=1)        # 100 (160, 160, 3) uint8 photos
    picture = handwriting.number_photo("90210", seed=2)            # one row of digits

Everything here depends only on the seed (and, for the JPEG step, on Pillow's encoder).
"""
import io

import numpy as np

# The styles of each class: strokes as control points (x, y) in the unit box.
STYLES = {
    0: [[[(0.32, 0.02), (0.08, 0.18), (0.02, 0.5), (0.1, 0.85), (0.32, 0.98), (0.54, 0.85), (0.6, 0.5),
          (0.52, 0.15), (0.3, 0.02), (0.2, 0.08)]]],
    1: [[[(0.32, 0.0), (0.3, 0.5), (0.28, 1.0)]],
        [[(0.22, 0.1), (0.34, 0.0), (0.32, 0.5), (0.3, 1.0)]]],
    2: [[[(0.04, 0.22), (0.2, 0.03), (0.44, 0.03), (0.56, 0.22), (0.46, 0.48), (0.2, 0.75), (0.0, 0.97),
          (0.3, 0.96), (0.62, 0.97)]],
        [[(0.06, 0.2), (0.28, 0.0), (0.52, 0.1), (0.5, 0.38), (0.06, 0.96), (0.6, 0.93)]]],
    3: [[[(0.04, 0.12), (0.28, 0.0), (0.52, 0.12), (0.48, 0.34), (0.22, 0.47), (0.5, 0.58), (0.58, 0.78),
          (0.4, 0.96), (0.14, 0.96), (0.0, 0.84)]]],
    4: [[[(0.42, 0.0), (0.2, 0.35), (0.0, 0.66), (0.3, 0.66), (0.64, 0.64)], [(0.46, 0.3), (0.46, 1.0)]],
        [[(0.1, 0.0), (0.06, 0.3), (0.04, 0.58), (0.3, 0.58), (0.62, 0.56)], [(0.52, 0.0), (0.5, 0.5),
                                                                              (0.48, 1.0)]]],
    5: [[[(0.56, 0.02), (0.32, 0.02), (0.1, 0.03)], [(0.1, 0.03), (0.08, 0.44), (0.32, 0.36), (0.54, 0.5),
                                                    (0.58, 0.74), (0.4, 0.96), (0.14, 0.96), (0.0, 0.84)]],
        [[(0.58, 0.0), (0.12, 0.02), (0.06, 0.42), (0.36, 0.38), (0.56, 0.58), (0.5, 0.86), (0.24, 0.98),
          (0.02, 0.86)]]],
    6: [[[(0.5, 0.0), (0.26, 0.22), (0.08, 0.55), (0.1, 0.86), (0.32, 0.98), (0.54, 0.84), (0.52, 0.6),
          (0.3, 0.52), (0.1, 0.64)]]],
    7: [[[(0.0, 0.04), (0.3, 0.03), (0.62, 0.02), (0.4, 0.46), (0.24, 1.0)]],
        [[(0.0, 0.04), (0.3, 0.03), (0.62, 0.02), (0.42, 0.46), (0.26, 1.0)], [(0.18, 0.5), (0.56, 0.48)]]],
    8: [[[(0.54, 0.14), (0.3, 0.0), (0.06, 0.14), (0.14, 0.36), (0.42, 0.54), (0.56, 0.78), (0.32, 0.98),
          (0.04, 0.8), (0.2, 0.56), (0.46, 0.38), (0.54, 0.14), (0.44, 0.06)]]],
    9: [[[(0.56, 0.2), (0.34, 0.0), (0.08, 0.12), (0.06, 0.34), (0.3, 0.46), (0.54, 0.32), (0.56, 0.2)],
         [(0.56, 0.14), (0.54, 0.6), (0.48, 1.0)]],
        [[(0.56, 0.22), (0.34, 0.02), (0.08, 0.12), (0.08, 0.36), (0.32, 0.46), (0.56, 0.3), (0.56, 0.1),
          (0.52, 0.6), (0.46, 1.0)]]],
}
SAMPLES_PER_SPAN = 10          # points traced between two control points
INKS = ((0.08, 0.08, 0.1), (0.1, 0.15, 0.5), (0.05, 0.1, 0.35), (0.55, 0.1, 0.1), (0.15, 0.3, 0.15))


def digit_strokes(digit, rng):
    """One handwritten shape of digit (0-9): a list of (K, 2) arrays of points (x, y), the traced strokes,
    in a box about 1 high, y down, jittered, slanted, rotated and stretched by rng."""
    if digit not in STYLES:
        raise ValueError(f"digit must be 0-9, got {digit!r}")
    styles = STYLES[digit]
    return hand_strokes(styles[rng.integers(len(styles))], rng)


def hand_strokes(strokes, rng):
    """strokes (lists of control points (x, y) in the unit box, as STYLES holds them) as a hand draws them:
    a list of (K, 2) arrays of traced points, every point jittered, the whole slanted, rotated and
    stretched by rng, centred on y = 0 and about x = 0."""
    slant = rng.uniform(-0.3, 0.15)                     # x moves by slant * (0.5 - y): most hands lean right
    angle = np.radians(rng.uniform(-8, 8))
    stretch = rng.uniform(0.8, 1.25)
    rotate = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    traced = []
    for stroke in strokes:
        points = np.array(stroke) + rng.normal(0.0, 0.025, (len(stroke), 2))
        points[:, 0] = (points[:, 0] - 0.3) * stretch + slant * (0.5 - points[:, 1])
        points[:, 1] -= 0.5
        traced.append(_catmull_rom(points) @ rotate.T)
    return traced


def _catmull_rom(points):
    """The Catmull-Rom spline through points (K, 2), SAMPLES_PER_SPAN points a span; ends doubled so that the
    curve starts and stops at the first and last points."""
    p = np.concatenate([points[:1], points, points[-1:]])
    t = np.linspace(0.0, 1.0, SAMPLES_PER_SPAN, endpoint=False)[:, None]
    spans = [0.5 * (2 * p[i + 1] + (p[i + 2] - p[i]) * t + (2 * p[i] - 5 * p[i + 1] + 4 * p[i + 2] - p[i + 3]) * t ** 2
                    + (3 * p[i + 1] - p[i] - 3 * p[i + 2] + p[i + 3]) * t ** 3) for i in range(len(points) - 1)]
    return np.concatenate(spans + [points[-1:]])


def draw(strokes, shape, centre, height, width):
    """The ink of strokes drawn into an array of shape (rows, cols): coverage in [0, 1], anti-aliased over
    one pixel. The strokes' unit box is scaled to height pixels and centred on centre (row, col); the pen is
    width pixels wide."""
    nearest = np.full(shape, np.inf)  # each pixel's distance to the nearest stroke, near the strokes
    reach = width / 2 + 1
    for stroke in strokes:
        points = stroke * height + np.array([centre[1], centre[0]])
        for a, b in zip(points[:-1], points[1:]):  # each segment over the pixels within reach of it
            x0, y0 = np.maximum(np.floor(np.minimum(a, b) - reach), 0).astype(int)
            x1, y1 = np.ceil(np.maximum(a, b) + reach).astype(int)
            window = nearest[y0:y1, x0:x1]
            if window.size == 0:
                continue
            px = np.arange(x0, x0 + window.shape[1]) + 0.5 - a[0]
            py = (np.arange(y0, y0 + window.shape[0]) + 0.5 - a[1])[:, None]
            ab = b - a
            s = np.clip((px * ab[0] + py * ab[1]) / max(ab @ ab, 1e-12), 0.0, 1.0)
            np.minimum(window, np.hypot(px - s * ab[0], py - s * ab[1]), out=window)
    return np.clip(width / 2 - nearest + 0.5, 0.0, 1.0)


def photograph(ink, rng, jpeg=True):
    """A (H, W, 3) uint8 photo of ink (coverage in [0, 1]) on paper: coloured ink and paper, uneven light
    (a gradient, vignetting, sometimes a shadow's edge), blur, sensor noise and, when jpeg and Pillow is
    installed, JPEG compression at a random quality."""
    h, w = ink.shape
    ink = _blur(ink, rng.uniform(0.3, 1.2))
    paper = 1.0 - rng.uniform(0.0, 0.12, 3)
    colour = np.array(INKS[rng.integers(len(INKS))]) + rng.uniform(0.0, 0.1, 3)
    image = paper + ink[..., None] * (colour - paper)
    y, x = np.mgrid[0:h, 0:w]
    y, x = (y - h / 2) / max(h, w), (x - w / 2) / max(h, w)
    direction = rng.uniform(0, 2 * np.pi)
    light = 1.0 + rng.uniform(0.0, 0.35) * (np.cos(direction) * x + np.sin(direction) * y)
    light -= rng.uniform(0.0, 0.5) * (x * x + y * y)
    if rng.random() < 0.4:  # the edge of a shadow across the page, softened over a few pixels
        normal = rng.uniform(0, 2 * np.pi)
        side = np.cos(normal) * x + np.sin(normal) * y - rng.uniform(-0.35, 0.35)
        light *= 1.0 - rng.uniform(0.15, 0.4) / (1.0 + np.exp(-side * max(h, w) / rng.uniform(1.0, 4.0)))
    image = image * (light * rng.uniform(0.75, 1.05))[..., None]
    image += rng.normal(0.0, rng.uniform(0.0, 0.06), image.shape)
    pixels = np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8)
    return _jpeg(pixels, int(rng.integers(40, 95))) if jpeg else pixels


def _blur(a, sigma):
    """a blurred by a Gaussian of sigma pixels (separable, edges clamped)."""
    radius = int(np.ceil(3 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    for axis in (0, 1):
        padded = np.pad(a, [(radius, radius) if i == axis else (0, 0) for i in (0, 1)], mode="edge")
        n = a.shape[axis]
        a = sum(t * np.take(padded, np.arange(i, i + n), axis=axis) for i, t in enumerate(taps))
    return a


def _jpeg(pixels, quality):
    """pixels after a JPEG round trip at quality (unchanged without Pillow)."""
    try:
        from PIL import Image
    except ImportError:
        return pixels
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as img:
        return np.asarray(img.convert("RGB"))


def digit_photo(digit, seed, size=160):
    """A (size, size, 3) uint8 photo of one handwritten digit: the digit between a quarter and three quarters
    of the frame high, anywhere in it, drawn and photographed as the module docstring says."""
    rng = np.random.default_rng(seed)
    height = size * rng.uniform(0.25, 0.75)
    margin = 0.6 * height
    centre = rng.uniform(margin, size - margin, 2)
    ink = draw(digit_strokes(digit, rng), (size, size), centre, height, height * rng.uniform(0.07, 0.14))
    return photograph(ink, rng)


def digit_photos(n, seed, size=160):
    """(photos, labels): n photos as digit_photo makes them, (n, size, size, 3) uint8, and their digits
    (n,) int64, the classes in turn (0, 1, ..., 9, 0, ...); photo i is made from the seed (seed, i)."""
    labels = np.arange(n) % 10
    photos = np.stack([digit_photo(int(d), (seed, i), size) for i, d in enumerate(labels)]) if n else \
        np.empty((0, size, size, 3), np.uint8)
    return photos, labels


def number_photo(text, seed, height=48, touching=False):
    """A (rows, cols, 3) uint8 photo of the digits in text written in a row: each digit about height pixels
    high with its own size and baseline, separated by gaps (or, with touching, overlapping its neighbour by
    a little, so that their strokes usually meet)."""
    if not text or not text.isdigit() or not text.isascii():
        raise ValueError(f"text must be digits 0-9, got {text!r}")
    rng = np.random.default_rng(seed)
    shapes = [digit_strokes(int(c), rng) for c in text]
    heights = height * rng.uniform(0.85, 1.1, len(text))
    lefts, at = [], height * 0.8
    for strokes, h in zip(shapes, heights):
        x = np.concatenate([s[:, 0] for s in strokes]) * h
        lefts.append(at - x.min())
        gap = -rng.uniform(0.0, 0.06) * h if touching else rng.uniform(0.15, 0.5) * h
        at += x.max() - x.min() + gap
    rows, cols = int(height * 2), int(at + height * 0.8)
    ink = np.zeros((rows, cols))
    width = height * rng.uniform(0.07, 0.12)
    for strokes, h, left in zip(shapes, heights, lefts):
        centre = (rows / 2 + rng.normal(0, 0.05) * height, left)
        np.maximum(ink, draw(strokes, (rows, cols), centre, h, width), out=ink)
    return photograph(ink, rng)
