"""Pure-NumPy reference implementation of LeNet-5 (LeCun et al., 1998).

This module is the oracle the tests compare the C kernels against and the
baseline the benchmarks time them against. It shares no code with the C path
(not even the C3 connection table) so that a mistake in one cannot hide in the
other. It is vectorized with NumPy but otherwise written for clarity: inputs
are taken as given, with no validation beyond what the computation needs.

Every function but normalize_input (which turns pixels into float32 or
float64) preserves the floating dtype of its inputs, float32 or float64
(gradient checks run it in float64), and accepts an empty batch (N = 0).
"""

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# The paper's scaled tanh, f(a) = A tanh(S a), chosen so that f(1) = 1 and f(-1) = -1.
SQUASH_A = 1.7159
SQUASH_S = 2.0 / 3.0

# Input mapping: background -0.1, full ink 1.175 (mean about 0, variance about 1).
INPUT_SCALE = 1.275
INPUT_BACKGROUND = -0.1

# Table I of the paper: the S2 maps (0-5) that feed each C3 map (0-15).
_C3_INPUTS = (
    {0, 1, 2}, {1, 2, 3}, {2, 3, 4}, {3, 4, 5}, {4, 5, 0}, {5, 0, 1},
    {0, 1, 2, 3}, {1, 2, 3, 4}, {2, 3, 4, 5}, {3, 4, 5, 0}, {4, 5, 0, 1}, {5, 0, 1, 2},
    {0, 1, 3, 4}, {1, 2, 4, 5}, {0, 2, 3, 5},
    {0, 1, 2, 3, 4, 5},
)
C3_TABLE = np.array([[c in inputs for c in range(6)] for inputs in _C3_INPUTS], dtype=bool)
C3_TABLE.flags.writeable = False  # shared module state: guard the oracle against accidental edits


def squash(a):
    """The paper's squashing function, SQUASH_A * tanh(SQUASH_S * a)."""
    return SQUASH_A * np.tanh(SQUASH_S * a)


def tanh(a):
    """Plain hyperbolic tangent."""
    return np.tanh(a)


def relu(a):
    """max(a, 0)."""
    return np.maximum(a, 0)


def identity(a):
    """No activation: returns a unchanged."""
    return a


ACTIVATIONS = {"squash": squash, "tanh": tanh, "relu": relu, "none": identity}


def activation(a, name):
    """Apply the activation called name (a key of ACTIVATIONS)."""
    return ACTIVATIONS[name](a)


def conv2d(x, w, b, table=None):
    """Valid 2-D cross-correlation, stride 1.

    x: (N, Ci, H, W); b: (Co,). Without table, w is dense (Co, Ci, kh, kw).
    With table, a (Co, Ci) boolean connection table, w is packed (n_conn, kh, kw):
    one kernel per True entry of table, in row-major order of the table.
    Returns (N, Co, H - kh + 1, W - kw + 1), with
    y[n, o, i, j] = b[o] + sum_{c, u, v} w[o, c, u, v] * x[n, c, i + u, j + v].
    """
    if table is not None:
        # Boolean-mask assignment fills the True entries in row-major order,
        # which is exactly the packing order; missing connections stay zero.
        table = np.asarray(table, dtype=bool)
        dense = np.zeros(table.shape + w.shape[1:], dtype=w.dtype)
        dense[table] = w
        w = dense
    kh, kw = w.shape[2:]
    windows = sliding_window_view(x, (kh, kw), axis=(2, 3))  # (N, Ci, Ho, Wo, kh, kw), a view
    y = np.tensordot(windows, w, axes=((1, 4, 5), (1, 2, 3)))  # (N, Ho, Wo, Co)
    return y.transpose(0, 3, 1, 2) + b[:, None, None]


def subsample(x, mode, coef=None, bias=None):
    """2x2 pooling with stride 2 over x: (N, C, H, W); returns (N, C, H // 2, W // 2).

    An odd last row or column is dropped (floor), as in PyTorch. mode is
    "trainable" (coef[c] * sum of the 2x2 block + bias[c], coef and bias of
    shape (C,); the paper's S2/S4), "average" or "max".
    """
    n, c, h, w = x.shape
    blocks = x[:, :, : h - h % 2, : w - w % 2].reshape(n, c, h // 2, 2, w // 2, 2)
    if mode == "trainable":
        return coef[:, None, None] * blocks.sum(axis=(3, 5)) + bias[:, None, None]
    if mode == "average":
        return blocks.mean(axis=(3, 5))
    if mode == "max":
        return blocks.max(axis=(3, 5))
    raise ValueError(f"unknown subsampling mode {mode!r}")


def linear(x, w, b):
    """Full layer: x (N, In), w (In, Out) input-major, b (Out,) -> x @ w + b, (N, Out)."""
    return x @ w + b


def rbf(x, centers):
    """Euclidean RBF units: x (N, D), centers (K, D) -> (N, K) squared distances.

    Computed from the differences rather than as |x|^2 - 2 x.c + |c|^2, which
    cancels badly when x is close to a center (the case that matters).
    """
    diff = x[:, None, :] - centers[None, :, :]
    return np.einsum("nkd,nkd->nk", diff, diff)


def softmax(z):
    """Softmax over the last axis."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))  # shift so the largest exponent is 0: no overflow
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(z):
    """Log of the softmax over the last axis, without forming the softmax itself."""
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def normalize_input(images):
    """The paper's input pipeline: digit images to network input (N, 1, 32, 32).

    images: (28, 28), (32, 32), (N, 28, 28), (N, 32, 32) or (N, 1, 32, 32);
    integer pixels 0-255 (0 = background, 255 = ink) or floats in [0, 1]
    (1 = ink). A pixel p in [0, 1] becomes p * 1.275 - 0.1, and a 28x28 digit
    is centred in a 32x32 field whose 2-pixel border is background (-0.1).
    Returns float64 for float64 input, float32 otherwise.
    """
    images = np.asarray(images)
    dtype = np.float64 if images.dtype == np.float64 else np.float32
    given_shape = images.shape
    if images.ndim == 2:
        images = images[None]
    elif images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.ndim != 3 or images.shape[1:] not in ((28, 28), (32, 32)):
        raise ValueError(f"expected 28x28 or 32x32 images, got shape {given_shape}")
    # Map in float64 and round once, on assignment, to the output dtype.
    p = images / 255.0 if np.issubdtype(images.dtype, np.integer) else images.astype(np.float64)
    mapped = p * INPUT_SCALE + INPUT_BACKGROUND
    out = np.full((images.shape[0], 1, 32, 32), INPUT_BACKGROUND, dtype=dtype)
    border = (32 - images.shape[-1]) // 2  # 2 for a 28x28 digit, 0 for 32x32
    out[:, 0, border : 32 - border, border : 32 - border] = mapped
    return out


def _flatten(a):
    """(N, ...) -> (N, prod(...)) in C order; unlike reshape(N, -1), also works for N = 0."""
    return a.reshape(a.shape[0], math.prod(a.shape[1:]))


def forward(params, x, variant):
    """Run the whole network on normalized input x: (N, 1, 32, 32).

    params maps names (e.g. "c1.weight") to arrays; variant is "classic" (the
    paper's network) or "modern". Returns (N, 10): the RBF distances for
    "classic" (smaller is better), the logits for "modern".
    C5 is a 5x5 convolution over 5x5 maps, i.e. a full layer on the 400
    flattened S4 values (index c * 25 + i * 5 + j).
    """
    p = params
    if variant == "classic":
        c1 = squash(conv2d(x, p["c1.weight"], p["c1.bias"]))
        s2 = squash(subsample(c1, "trainable", p["s2.coef"], p["s2.bias"]))
        c3 = squash(conv2d(s2, p["c3.weight"], p["c3.bias"], table=C3_TABLE))
        s4 = squash(subsample(c3, "trainable", p["s4.coef"], p["s4.bias"]))
        c5 = squash(linear(_flatten(s4), p["c5.weight"], p["c5.bias"]))
        f6 = squash(linear(c5, p["f6.weight"], p["f6.bias"]))
        return rbf(f6, p["rbf.centers"])
    if variant == "modern":
        c1 = relu(conv2d(x, p["c1.weight"], p["c1.bias"]))
        s2 = subsample(c1, "max")
        c3 = relu(conv2d(s2, p["c3.weight"], p["c3.bias"]))
        s4 = subsample(c3, "max")
        c5 = relu(linear(_flatten(s4), p["c5.weight"], p["c5.bias"]))
        f6 = relu(linear(c5, p["f6.weight"], p["f6.bias"]))
        return linear(f6, p["out.weight"], p["out.bias"])
    raise ValueError(f"unknown variant {variant!r}")


def predict(params, x, variant):
    """Predicted classes (N,) int64: nearest RBF center (classic) or largest logit (modern)."""
    out = forward(params, x, variant)
    best = np.argmin(out, axis=1) if variant == "classic" else np.argmax(out, axis=1)
    return best.astype(np.int64)
