"""Image batches from whatever the user passes, converted to what the engine takes.

The division of labour: this module converts (any array-like of numbers to a C-contiguous uint8 or float32
batch, N first) and applies the rules the engine cannot know: which dtypes can be converted, integer
pixels in 0..255 (a cast to uint8 would wrap them), float input when normalized=True, and that pixels come
as a 28x28 digit or a 32x32 field (docs/paper.md#input-normalization). Everything else (dimensions,
channels, exact shapes, finiteness, float pixels in [0, 1]) is checked once, by _core.Network on the way
into C.
"""
import numpy as np

_FIELDS = ((28, 28), (32, 32))
_DIRECT = (np.dtype(np.uint8), np.dtype(np.float32))


def as_batch(x, normalized):
    """x as a batch (N first) that Network.forward takes, C-contiguous, aligned and native-endian uint8 or
    float32 (copied when it is not), and whether the engine normalizes it (pixels) or takes it as it is
    (normalized=True)."""
    # One image from Python is this library's hottest path: pixels as the engine takes them go straight
    # through, in as few Python operations as can tell (each costs some tenths of a microsecond).
    # flags.carray: C-contiguous, aligned and writeable (a read-only array takes the longer way, uncopied).
    if type(x) is np.ndarray and not normalized and x.dtype in _DIRECT and x.flags.carray:
        if x.shape[-2:] in _FIELDS and (x.ndim == 3 or (x.ndim == 4 and x.shape[1] == 1)):
            return x, True
    a = np.asarray(x)
    if a.dtype.kind not in "uif":
        raise TypeError(f"images must be numbers (uint8 pixels or floats), got dtype {a.dtype}")
    if normalized:
        if a.dtype.kind != "f":
            raise TypeError("normalized=True takes float input already mapped to the paper's range")
        return _float32(a[None] if a.ndim == 2 else a), False
    if a.shape[-2:] not in _FIELDS:
        raise ValueError("images must be (28, 28), (32, 32), (N, 28, 28), (N, 32, 32) or (N, 1, 32, 32), "
                         f"got shape {a.shape}")
    if a.ndim == 2:
        a = a[None]
    if a.dtype == np.uint8:
        return np.require(a, requirements="CA"), True
    if a.dtype.kind in "ui":
        if a.size and (a.min() < 0 or a.max() > 255):
            raise ValueError("integer pixels must lie in 0..255")
        return np.require(a, np.uint8, "CA"), True
    return _float32(a), True


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
