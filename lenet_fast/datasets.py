"""Digits to train and test on: the MNIST files read from disk, or digits drawn here when they are absent.

Nothing is downloaded. load_mnist reads the four official files (IDX format, raw or gzip-compressed) from a
folder given as path= or by the LENET_FAST_DATA environment variable. synthetic_digits draws MNIST-like
digits from stroke definitions, so that training can be exercised on a machine without the files.

IDX (the MNIST format): two zero bytes, a type code, the number of dimensions, each dimension as a big-endian
uint32, then the data, row-major and big-endian.
"""
import functools
import gzip
import math
import os
import struct
import zlib

import numpy as np

__all__ = ["read_idx", "load_mnist", "synthetic_digits"]

# IDX type code -> numpy dtype (multi-byte types are big-endian on disk).
_IDX_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_MAX_NDIM = 4
_GZIP_MAGIC = b"\x1f\x8b"
# Deflate cannot compress by more than 1032:1, so a header that claims more data than that, times the size
# of the gzip file, is refused before anything is allocated.
_DEFLATE_MAX_RATIO = 1032
_CHUNK = 1 << 22


def read_idx(path):
    """The array in an IDX file (raw or gzip-compressed, told apart by the gzip magic bytes; 1 to 4
    dimensions), in native byte order. A file that is not exactly one well-formed IDX array (bad magic or type
    code, a truncated header or data, trailing bytes, a corrupt gzip stream) raises ValueError naming the file
    and the fault."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        compressed = f.read(2) == _GZIP_MAGIC
        f.seek(0)
        if not compressed:
            return _read_idx(f, path, size, compressed)
        try:
            with gzip.GzipFile(fileobj=f) as g:
                return _read_idx(g, path, size, compressed)
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise ValueError(f"{path}: corrupt gzip data ({str(exc) or type(exc).__name__})") from None


def _read_idx(f, path, size, compressed):
    """Read one IDX array from the stream f, the contents of a file of size bytes (gzip-compressed or not)."""
    head = f.read(4)
    if not head:
        raise ValueError(f"{path}: empty, no IDX header")
    if len(head) < 4:
        raise ValueError(f"{path}: truncated IDX header ({len(head)} of at least 8 bytes)")
    if head[:2] != b"\0\0":
        raise ValueError(f"{path}: not an IDX file (starts with bytes {head[:2].hex(' ')}, expected 00 00)")
    code, ndim = head[2], head[3]
    if code not in _IDX_TYPES:
        raise ValueError(f"{path}: unknown IDX type code 0x{code:02x} "
                         f"(known: {', '.join(f'0x{c:02x}' for c in _IDX_TYPES)})")
    if not 1 <= ndim <= _MAX_NDIM:
        raise ValueError(f"{path}: IDX header gives {ndim} dimensions, expected 1 to {_MAX_NDIM}")
    dims = f.read(4 * ndim)
    header = 4 + 4 * ndim
    if len(dims) < 4 * ndim:
        raise ValueError(f"{path}: truncated IDX header ({4 + len(dims)} of {header} bytes)")
    shape = struct.unpack(f">{ndim}I", dims)
    dtype = np.dtype(_IDX_TYPES[code])
    nbytes = math.prod(shape) * dtype.itemsize
    declared = f"the header declares {dtype.name} data of shape {shape}, {nbytes} bytes"
    if not compressed and nbytes != size - header:
        fault = "truncated" if nbytes > size - header else "trailing bytes"
        raise ValueError(f"{path}: {fault}: {declared}, the file holds {size - header} after the header")
    if compressed and header + nbytes > size * _DEFLATE_MAX_RATIO:
        raise ValueError(f"{path}: truncated or not IDX: {declared}, more than a gzip file of {size} bytes "
                         "can hold")
    out = np.empty(shape, dtype)
    buf = memoryview(out.reshape(-1).view(np.uint8))
    filled = 0
    while filled < nbytes:
        got = f.readinto(buf[filled:filled + _CHUNK])
        if not got:
            raise ValueError(f"{path}: truncated: {declared}, the data ends after {filled}")
        filled += got
    if f.read(1):
        raise ValueError(f"{path}: trailing bytes: {declared}, more data follows")
    if not dtype.isnative:
        out = out.byteswap(inplace=True).view(dtype.newbyteorder("="))
    return out


_MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def mnist_files(folder, kind):
    """(image file, label file): the paths of MNIST's kind ("train" or "test") set in folder, raw or .gz.
    FileNotFoundError saying which files were looked for where (how to name another folder is for the
    caller to say: path= in Python, --data on the command line)."""
    names = _MNIST_FILES[kind]
    found = []
    for name in names:
        candidates = [os.path.join(folder, name + suffix) for suffix in ("", ".gz")]
        found.append(next((c for c in candidates if os.path.isfile(c)), None))
    if None in found:
        missing = " and ".join(f"{n}[.gz]" for n, f in zip(names, found) if f is None)
        raise FileNotFoundError(f"MNIST {kind} files not found: looked for {missing} in {folder}")
    return tuple(found)


def load_mnist(path=None, kind="train"):
    """MNIST's training (kind="train", 60,000) or test (kind="test", 10,000) set from a folder holding the
    official files, raw or with a .gz suffix: (images, labels), uint8 (N, 28, 28) and int64 (N,).

    path defaults to the LENET_FAST_DATA environment variable. Missing files raise FileNotFoundError saying
    what was looked for where; files that are not MNIST images and labels raise ValueError."""
    if kind not in _MNIST_FILES:
        raise ValueError(f"kind must be one of {sorted(_MNIST_FILES)}, got {kind!r}")
    hint = "pass path= or set LENET_FAST_DATA to the folder that holds them"
    folder = os.environ.get("LENET_FAST_DATA") if path is None else os.fspath(path)
    if not folder:
        wanted = " and ".join(f"{name}[.gz]" for name in _MNIST_FILES[kind])
        raise FileNotFoundError(f"no MNIST folder given to look for {wanted} in: {hint}")
    try:
        image_file, label_file = mnist_files(folder, kind)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{exc}; {hint}") from None
    images, labels = read_idx(image_file), read_idx(label_file)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{image_file}: expected uint8 images of shape (N, 28, 28), "
                         f"got {images.dtype} of shape {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(f"{label_file}: expected uint8 labels of shape (N,), got {labels.dtype} of shape "
                         f"{labels.shape}")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{label_file}: labels must be digits 0-9, found {labels.max()}")
    if len(images) != len(labels):
        raise ValueError(f"{image_file} holds {len(images)} images but {label_file} {len(labels)} labels")
    return images, labels.astype(np.int64)


# ---------------------------------------------------------------------------------------------------------
# Drawn digits. Each digit has one or more styles; a style is a set of polylines in a frame where the digit's
# box is 1 tall (y from -0.5 at the top to 0.5 at the bottom: image orientation) and about 0.6 wide. An image
# is a per-image affine map and gentle wave-shaped bend of one style, with ink where the distance to the
# nearest stroke is below the pen's half-width, anti-aliased over about a pixel. The distance to each
# style's strokes is computed once on a grid and interpolated, so an image costs a few gathers per pixel.
# ---------------------------------------------------------------------------------------------------------

def _arc(cx, cy, rx, ry, start, stop):
    """Points along an ellipse from angle start to stop in degrees (0 right, 90 down), one per 15 degrees."""
    t = np.radians(np.linspace(start, stop, int(abs(stop - start) // 15) + 2))
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def _line(*points):
    return np.array(points, dtype=float)


def _path(*parts):
    return np.concatenate(parts)


_STYLES = (
    (  # 0
        [_arc(0, 0, 0.28, 0.5, -90, 270)],
        [_arc(0.01, 0, 0.33, 0.5, -80, 290)],
    ),
    (  # 1
        [_line((0, -0.5), (0, 0.5))],
        [_line((-0.16, -0.3), (0, -0.5), (0, 0.5))],
    ),
    (  # 2
        [_path(_arc(0, -0.22, 0.27, 0.28, 190, 400), _line((-0.3, 0.5), (0.32, 0.5)))],
        [_path(_arc(0, -0.24, 0.26, 0.26, 180, 360), _arc(-0.3, -0.24, 0.56, 0.74, 0, 90), _line((0.3, 0.5)))],
    ),
    (  # 3
        [_path(_arc(0, -0.25, 0.24, 0.25, 200, 450), _arc(0, 0.24, 0.28, 0.26, 270, 520))],
        [_path(_line((-0.25, -0.5), (0.25, -0.5), (-0.03, -0.06)), _arc(0, 0.22, 0.28, 0.28, 260, 520))],
    ),
    (  # 4
        [_line((-0.18, -0.5), (-0.28, 0.1), (0.3, 0.1)), _line((0.14, -0.45), (0.14, 0.5))],
        [_line((0.12, 0.5), (0.12, -0.5), (-0.3, 0.14), (0.3, 0.14))],
    ),
    (  # 5
        [_line((0.26, -0.5), (-0.19, -0.5)), _path(_line((-0.19, -0.5)), _arc(0, 0.2, 0.27, 0.3, 220, 510))],
        [_path(_line((0.26, -0.5), (-0.2, -0.5), (-0.22, -0.06)), _arc(0.0, 0.2, 0.27, 0.3, 225, 505))],
    ),
    (  # 6
        [_path(_arc(0.3, 0.2, 0.55, 0.7, 250, 180), _arc(0, 0.22, 0.25, 0.28, 180, 540))],
        [_path(_line((0.12, -0.5), (-0.2, 0.05)), _arc(0, 0.22, 0.25, 0.28, 200, 560))],
    ),
    (  # 7
        [_line((-0.28, -0.5), (0.28, -0.5), (-0.04, 0.5))],
        [_line((-0.28, -0.5), (0.28, -0.5), (-0.04, 0.5)), _line((-0.05, 0.0), (0.25, 0.0))],
    ),
    (  # 8
        [_arc(0, -0.26, 0.22, 0.24, 90, 450), _arc(0, 0.23, 0.27, 0.27, -90, 270)],
        [_path(_arc(0, -0.26, 0.22, 0.24, 45, 315), _line((0.2, 0.3)), _arc(0, 0.23, 0.27, 0.27, 10, 270),
               _line((0.17, -0.34)))],
    ),
    (  # 9
        [_arc(0, -0.22, 0.26, 0.28, 0, 360), _line((0.26, -0.22), (0.2, 0.5))],
        [_path(_arc(0, -0.22, 0.26, 0.28, 0, 360), _arc(-0.54, -0.22, 0.8, 0.72, 0, 70))],
    ),
)

_GRID = 65  # distance-field samples per side over [-1, 1]: a step of 1/32 of the digit's height
_FRAME = 28
_MARGIN = 2.0  # pixels of the frame left without ink on every side


@functools.lru_cache(maxsize=None)
def _distance_fields():
    """For each style: the distance from each point of a _GRID x _GRID grid over [-1, 1]^2 to its nearest
    stroke (flattened row by row, y down), its strokes' centroid, its vertices (padded by repetition to a
    common count) and its digit. Computed once (a fifth of a second); read-only."""
    g = np.linspace(-1.0, 1.0, _GRID)
    grid = np.stack(np.meshgrid(g, g, indexing="xy"), axis=-1).reshape(-1, 1, 2)  # (x, y) points
    fields, centroids, vertices, digits = [], [], [], []
    for digit, styles in enumerate(_STYLES):
        for polylines in styles:
            a = np.concatenate([p[:-1] for p in polylines])
            b = np.concatenate([p[1:] for p in polylines])
            d = b - a
            t = np.clip(((grid - a) * d).sum(-1) / (d * d).sum(-1), 0.0, 1.0)
            fields.append(np.linalg.norm(grid - a - t[..., None] * d, axis=-1).min(axis=1))
            length = np.linalg.norm(d, axis=1)
            centroids.append((length[:, None] * (a + b) / 2).sum(0) / length.sum())
            vertices.append(np.concatenate(polylines))
            digits.append(digit)
    most = max(len(v) for v in vertices)
    vertices = [np.concatenate([v, np.repeat(v[-1:], most - len(v), axis=0)]) for v in vertices]
    arrays = (np.array(fields, dtype=np.float32), np.array(centroids), np.array(vertices), np.array(digits))
    for a in arrays:
        a.flags.writeable = False
    return arrays


def synthetic_digits(n, seed=0):
    """n drawn digits in MNIST's form, (images, labels): uint8 (n, 28, 28), white ink on black, about 20 pixels
    tall and centred, and int64 (n,) labels, each digit n // 10 or n // 10 + 1 times in a shuffled order.

    Each image draws one of its digit's stroke styles with its own size, aspect, slant, rotation, bend, pen
    width and position, always leaving a 2-pixel border clear. The same n and seed give the same digits."""
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    fields, centroids, vertices, style_digit = _distance_fields()
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 10)
    per_digit = [np.flatnonzero(style_digit == d) for d in range(10)]
    counts = np.array([len(s) for s in per_digit])
    first = np.array([s[0] for s in per_digit])
    style = first[labels] + (rng.random(n) * counts[labels]).astype(np.int64)

    # Per image: pen half-width and softness (pixels), the template -> pixel linear map, the bend, the jitter.
    half_width = rng.uniform(0.8, 1.7, n)
    soft = rng.uniform(0.7, 1.3, n)
    height = rng.uniform(15.0, 19.0, n)
    width = height * rng.uniform(0.8, 1.2, n)
    slant = rng.uniform(-0.35, 0.25, n)  # x moves by slant * y: positive leans the top left, negative right
    angle = np.radians(rng.uniform(-12.0, 12.0, n))
    cos, sin = np.cos(angle), np.sin(angle)
    shape = np.stack([width, slant * height, np.zeros(n), height], -1).reshape(n, 2, 2)
    linear = np.stack([cos, -sin, sin, cos], -1).reshape(n, 2, 2) @ shape
    bend = rng.uniform(0.0, 0.9, (n, 2))
    wavenumber = 2 * np.pi / rng.uniform(14.0, 30.0, (n, 2))
    phase = rng.uniform(0.0, 2 * np.pi, (n, 2))
    jitter = rng.normal(0.0, 0.7, (n, 2))

    # Fit the digit in the frame: shrink the map if the inked box is wider than the frame allows, then move
    # the centre (13.5 plus jitter) only as far as needed to keep the box inside.
    pad = half_width + soft / 2 + bend.max(1) + 0.5  # 0.5: the interpolated distance errs by under that
    drawn = (vertices[style] - centroids[style][:, None]) @ linear.transpose(0, 2, 1)
    lo, hi = drawn.min(1), drawn.max(1)
    room = _FRAME - 1 - 2 * _MARGIN - 2 * pad
    shrink = np.minimum(1.0, room / (hi - lo).max(1))
    linear *= shrink[:, None, None]
    lo *= shrink[:, None]
    hi *= shrink[:, None]
    centre = np.clip((_FRAME - 1) / 2 + jitter, _MARGIN + pad[:, None] - lo, _FRAME - 1 - _MARGIN - pad[:, None] - hi)

    # Render in float32, a block of images at a time: map every pixel centre back into the style's frame and
    # interpolate its distance field there.
    images = np.empty((n, _FRAME * _FRAME), dtype=np.uint8)
    y, x = (a.reshape(-1).astype(np.float32) for a in np.indices((_FRAME, _FRAME)))
    inverse = np.linalg.inv(linear).astype(np.float32)
    to_grid = (_GRID - 1) / 2
    origin = ((centroids[style] + 1) * to_grid).astype(np.float32)  # the centroid, in grid steps
    scale = np.sqrt(np.abs(np.linalg.det(linear))).astype(np.float32)  # template -> pixel distances, on average
    flat = fields.reshape(-1)
    bend, wavenumber, phase, centre, half_width, soft = (
        a.astype(np.float32) for a in (bend, wavenumber, phase, centre, half_width, soft))
    for s in range(0, n, 1024):
        i = slice(s, s + 1024)  # below, per-image values are columns against the pixels
        (cx, cy), (bx, by), (kx, ky), (phx, phy) = (a[i].T[..., None] for a in (centre, bend, wavenumber, phase))
        px = x - cx - bx * np.sin(kx * y + phx)
        py = y - cy - by * np.sin(ky * x + phy)
        m00, m01, m10, m11 = inverse[i].reshape(-1, 4).T[..., None]
        ox, oy = origin[i].T[..., None]
        gx = np.clip((m00 * px + m01 * py) * to_grid + ox, 0, _GRID - 1.001)
        gy = np.clip((m10 * px + m11 * py) * to_grid + oy, 0, _GRID - 1.001)
        x0, y0 = gx.astype(np.intp), gy.astype(np.intp)
        fx, fy = gx - x0, gy - y0
        k = style[i, None] * (_GRID * _GRID) + y0 * _GRID + x0
        top = flat.take(k) * (1 - fx) + flat.take(k + 1) * fx
        bottom = flat.take(k + _GRID) * (1 - fx) + flat.take(k + _GRID + 1) * fx
        distance = (top * (1 - fy) + bottom * fy) * scale[i, None]
        ink = np.clip((half_width[i, None] - distance) / soft[i, None] + 0.5, 0.0, 1.0)
        images[i] = ink * 255 + 0.5
    return images.reshape(n, _FRAME, _FRAME), labels.astype(np.int64)
