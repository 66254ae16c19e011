"""Image batches from whatever the user passes, converted to what the engine takes.

The division of labour: this module converts (any array-like of numbers to a C-contiguous uint8 or float32
batch, N first) and applies the rules the engine cannot know: which dtypes can be converted, integer
pixels in 0..255 (a cast to uint8 would wrap them), float input when normalized=True, and that pixels come
as a 28x28 digit or a 32x32 field (docs/paper.md#input-normalization). Everything else (dimensions,
channels, exact shapes, finiteness, float pixels in [0, 1]) is checked once, by _core.Network on the way
into C.

Pictures (image file paths, PIL images, lists of them) are read here too, by images.read_digit, so that
predict takes what people pass; that and channels-last arrays are the slow path's business only: the fast
path at the top of as_batch sees neither.
"""
import os

import numpy as np

from .images import _is_pil_image, read_digit, read_digits

_FIELDS = ((28, 28), (32, 32))
_DIRECT = (np.dtype(np.uint8), np.dtype(np.float32))
_READ_DIGIT = "lenet_fast.read_digit"


def as_batch(x, normalized):
    """x as a batch (N first) that Network.forward takes, C-contiguous, aligned and native-endian uint8 or
    float32 (copied when it is not), and whether the engine normalizes it (pixels) or takes it as it is
    (normalized=True).

    x: pixels, (28, 28), (32, 32), (N, 28, 28), (N, 32, 32) or (N, 1, 32, 32), channels-last (28, 28, 1),
    (N, 28, 28, 1), (32, 32, 1), (N, 32, 32, 1) too; or a picture: a path (str or os.PathLike) to an image
    file, a PIL.Image, or a non-empty list or tuple of those, each read by images.read_digit (a list in
    order, as one batch).

    TypeError: non-numeric input (bytes, a dict, None, object or string arrays), a list mixing pictures with
    arrays, a picture with normalized=True (these name lenet_fast.read_digit), integers with normalized=True.
    ValueError: an array of another shape (a picture's, such as (120, 120, 4): the message points to
    lenet_fast.read_digit), integer pixels outside 0..255. A picture raises what read_digit raises for it
    (ValueError naming the file; OSError for a missing or unreadable one).
    """
    # One image from Python is this library's hottest path: pixels as the engine takes them go straight
    # through, in as few Python operations as can tell (each costs some tenths of a microsecond).
    # flags.carray: C-contiguous, aligned and writeable (a read-only array takes the longer way, uncopied).
    if type(x) is np.ndarray and not normalized and x.dtype in _DIRECT and x.flags.carray:
        if x.shape[-2:] in _FIELDS and (x.ndim == 3 or (x.ndim == 4 and x.shape[1] == 1)):
            return x, True
    # An array is never a picture: testing for one (isinstance with os.PathLike is an ABC check) would slow
    # the common single image, a (28, 28) array, which takes this path (benchmarks/results/as_batch_pictures.md).
    pictures = None if type(x) is np.ndarray else _pictures(x)
    if pictures is not None:
        if normalized:
            raise TypeError("normalized=True takes float arrays already mapped to the paper's range, not pictures: "
                            f"give a picture without it ({_READ_DIGIT} reads it)")
        return pictures, True
    a = np.asarray(x)
    if a.dtype.kind not in "uif":
        what = f"dtype {a.dtype}" if isinstance(x, np.ndarray) else f"{type(x).__name__} (dtype {a.dtype})"
        raise TypeError(f"images must be numbers (uint8 pixels or floats), image file paths or PIL images, got {what}: "
                        f"read other pictures with {_READ_DIGIT}")
    if a.ndim in (3, 4) and a.shape[-1] == 1 and a.shape[-3:-1] in _FIELDS:
        a = a[..., 0]  # channels-last; a view, converted below like any other
    if normalized:
        if a.dtype.kind != "f":
            raise TypeError("normalized=True takes float input already mapped to the paper's range")
        return _float32(a[None] if a.ndim == 2 else a), False
    if a.shape[-2:] not in _FIELDS:
        raise ValueError("images must be (28, 28), (32, 32), (N, 28, 28), (N, 32, 32), (N, 1, 32, 32) or those "
                         f"with channels last, got shape {a.shape}; a picture of another size: read it with "
                         f"{_READ_DIGIT}")
    if a.ndim == 2:
        a = a[None]
    if a.dtype == np.uint8:
        return np.require(a, requirements="CA"), True
    if a.dtype.kind in "ui":
        if a.size and (a.min() < 0 or a.max() > 255):
            raise ValueError("integer pixels must lie in 0..255")
        return np.require(a, np.uint8, "CA"), True
    return _float32(a), True


def _is_picture(x):
    return isinstance(x, (str, os.PathLike)) or _is_pil_image(x)


def _pictures(x):
    """The (N, 28, 28) uint8 batch read_digit makes of a picture or a list or tuple of pictures; None when x
    is not one (pixels, or anything else, for as_batch to judge). TypeError for a list mixing pictures with
    other items (an array among file names: which form it is in cannot be told)."""
    if _is_picture(x):
        return read_digit(x)[None]
    if type(x) in (list, tuple) and any(_is_picture(item) for item in x):
        if not all(_is_picture(item) for item in x):
            raise TypeError("a list of pictures holds only image file paths and PIL images; read arrays of another "
                            f"form with {_READ_DIGIT} and pass the batch they make")
        return read_digits(x)[0]
    return None


def _float32(a):
    """a as C-contiguous, aligned, native float32 (the engine refuses anything else: an array cut from a byte
    buffer at an odd offset is copied). Finite values beyond float32's range are refused here, saying so (the
    cast would make them infinities, which the engine would report as such); NaN and infinities themselves
    are left to the engine's check (one pass more, on this wider-than-float32 path only)."""
    if a.dtype.itemsize <= 4:
        return np.require(a, np.float32, "CA")
    with np.errstate(over="ignore"):  # no numpy warning: the error below says what happened
        out = np.require(a, np.float32, "CA")
    overflow = np.isinf(out)
    if overflow.any() and np.isfinite(a[overflow]).any():
        raise ValueError("images hold values outside float32's range (about -3.4e38 to 3.4e38)")
    return out
