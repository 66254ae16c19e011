"""Pure-NumPy reference implementation of LeNet-5 (LeCun et al., 1998).

This module is the oracle the tests compare the C kernels against and the
baseline the benchmarks time them against. It shares no code with the C path
(not even the C3 connection table) so that a mistake in one cannot hide in the
other. It is vectorized with NumPy but otherwise written for clarity: inputs
are taken as given, with no validation beyond what the computation needs.

Every function but normalize_input (which turns pixels into float32 or
float64) preserves the floating dtype of its inputs, float32 or float64
(gradient checks run it in float64), and accepts an empty batch (N = 0).

Besides the forward pass it holds the training side, in the same style: the
backward pass of each layer (beside its forward function), the three losses
(map_loss, rbf_loss, cross_entropy), the whole network's gradient (backward),
the diagonal Gauss-Newton curvature of the paper's stochastic diagonal
Levenberg-Marquardt (gauss_newton_diagonal) and the optimizer steps
(sgd_update, adagrad_update, rmsprop_update, adam_update, adamw_update, sdlm_update).

And the picture steps that find a digit in a photo (ink_above_floor, morphology, components), written the
slow and obvious way: every window taken whole, every median by a full sort, every component flooded from a
seed; and built from them, read_digit's whole way from a gray picture to its MNIST form (read_digit).

Conventions of the backward functions: dy is always the gradient of a scalar
loss with respect to the function's output; parameter gradients are SUMMED
over the batch (the loss is the sum of the per-image losses), and come in the
parameter's own layout (packed kernels stay packed).
"""

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# Plain constants of the paper (the rubbish-class distance j of the MAP loss, the
# SDLM damping mu); lenet_fast.paper computes nothing, so this shares no code.
from lenet_fast.paper import MAP_J, SDLM_MU, rbf_centers

# The paper's scaled tanh, f(a) = A tanh(S a), chosen so that f(1) = 1 and f(-1) = -1
# (docs/paper.md#squashing-function).
SQUASH_A = 1.7159
SQUASH_S = 2.0 / 3.0

# Input mapping: background -0.1, full ink 1.175 (mean about 0, variance about 1).
INPUT_SCALE = 1.275
INPUT_BACKGROUND = -0.1

# Table I of the paper (docs/paper.md#table-i): the S2 maps (0-5) that feed each C3 map (0-15).
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


LEAKY_SLOPE = 0.01  # PyTorch's defaults: LeakyReLU(negative_slope=0.01), ELU(alpha=1.0)
ELU_ALPHA = 1.0


def leaky_relu(a):
    """a where a > 0, else LEAKY_SLOPE * a."""
    return np.where(a > 0, a, LEAKY_SLOPE * a)


def elu(a):
    """a where a > 0, else ELU_ALPHA * (exp(a) - 1) (expm1: exact near 0)."""
    return np.where(a > 0, a, ELU_ALPHA * np.expm1(np.minimum(a, 0)))


def sigmoid(a):
    """1 / (1 + exp(-a)), written so that neither branch overflows."""
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e))


ACTIVATIONS = {"squash": squash, "tanh": tanh, "relu": relu, "leaky_relu": leaky_relu, "elu": elu,
               "sigmoid": sigmoid, "none": identity}


def activation(a, name):
    """Apply the activation called name (a key of ACTIVATIONS)."""
    return ACTIVATIONS[name](a)


def activation_derivative(a, name):
    """f'(a) of the activation called name, from the PRE-activation a.

    squash: A S (1 - tanh(S a)^2); tanh: 1 - tanh(a)^2; relu: 1 where a > 0,
    else 0 (so 0 at a = 0); leaky_relu: 1 or LEAKY_SLOPE; elu: 1 or ELU_ALPHA exp(a);
    sigmoid: s (1 - s); none: 1.
    """
    if name == "squash":
        t = np.tanh(SQUASH_S * a)
        return (SQUASH_A * SQUASH_S) * (1 - t * t)
    if name == "tanh":
        t = np.tanh(a)
        return 1 - t * t
    if name == "relu":
        return (a > 0).astype(a.dtype)
    if name == "leaky_relu":
        return np.where(a > 0, 1, LEAKY_SLOPE).astype(a.dtype)
    if name == "elu":
        return np.where(a > 0, 1, ELU_ALPHA * np.exp(np.minimum(a, 0))).astype(a.dtype)
    if name == "sigmoid":
        s = sigmoid(a)
        return s * (1 - s)
    if name == "none":
        return np.ones_like(a)
    raise ValueError(f"unknown activation {name!r}")


def activation_backward(a, dy, name):
    """Gradient through an activation: da = dy * f'(a), a the PRE-activation.

    For relu, da is exactly 0 where a <= 0 (also where dy is infinite or NaN);
    for none it is dy itself, as identity returns its input.
    """
    if name == "relu":
        return np.where(a > 0, dy, np.zeros((), dtype=dy.dtype))
    if name == "none":
        return dy
    return dy * activation_derivative(a, name)


def conv2d(x, w, b, table=None):
    """Valid 2-D cross-correlation, stride 1.

    x: (N, Ci, H, W); b: (Co,). Without table, w is dense (Co, Ci, kh, kw).
    With table, a (Co, Ci) boolean connection table, w is packed (n_conn, kh, kw):
    one kernel per True entry of table, in row-major order of the table.
    Returns (N, Co, H - kh + 1, W - kw + 1), with
    y[n, o, i, j] = b[o] + sum_{c, u, v} w[o, c, u, v] * x[n, c, i + u, j + v].
    """
    if table is not None:
        w, _ = _dense_kernels(w, table)
    kh, kw = w.shape[2:]
    windows = sliding_window_view(x, (kh, kw), axis=(2, 3))  # (N, Ci, Ho, Wo, kh, kw), a view
    y = np.tensordot(windows, w, axes=((1, 4, 5), (1, 2, 3)))  # (N, Ho, Wo, Co)
    return y.transpose(0, 3, 1, 2) + b[:, None, None]


def _dense_kernels(w, table):
    """Packed kernels (n_conn, kh, kw) -> (dense (Co, Ci, kh, kw), table as a boolean array).

    Boolean-mask assignment fills the True entries in row-major order, which is
    exactly the packing order; missing connections stay zero.
    """
    table = np.asarray(table, dtype=bool)
    dense = np.zeros(table.shape + w.shape[1:], dtype=w.dtype)
    dense[table] = w
    return dense, table


def conv2d_backward(x, w, dy, table=None):
    """Backward pass of conv2d: returns (dx, dw, db).

    x: (N, Ci, H, W) the forward input; w as in conv2d (dense, or packed with
    table); dy: (N, Co, Ho, Wo) the gradient w.r.t. conv2d's output (before any
    activation). Gradients are summed over the batch:
        dw[o, c, u, v] = sum_{n, i, j} dy[n, o, i, j] * x[n, c, i + u, j + v]
        dx[n, c, p, q] = sum_{o, u, v} dy[n, o, p - u, q - v] * w[o, c, u, v]
        db[o]          = sum_{n, i, j} dy[n, o, i, j]
    dw has the layout of w: (Co, Ci, kh, kw), or with a table the packed
    (n_conn, kh, kw), one kernel per True entry in row-major order.
    """
    if table is not None:
        w, table = _dense_kernels(w, table)
    kh, kw = w.shape[2:]
    windows = sliding_window_view(x, (kh, kw), axis=(2, 3))  # (N, Ci, Ho, Wo, kh, kw)
    dw = np.tensordot(dy, windows, axes=((0, 2, 3), (0, 2, 3)))  # (Co, Ci, kh, kw)
    # dx is the "full" correlation of dy (zero-padded by the kernel size - 1) with the
    # kernels turned by 180 degrees: padded[p + a] = dy[p + a - (kh - 1)], u = kh - 1 - a.
    padded = np.pad(dy, ((0, 0), (0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1)))
    dy_windows = sliding_window_view(padded, (kh, kw), axis=(2, 3))  # (N, Co, H, W, kh, kw)
    dx = np.tensordot(dy_windows, w[:, :, ::-1, ::-1], axes=((1, 4, 5), (0, 2, 3)))  # (N, H, W, Ci)
    db = dy.sum(axis=(0, 2, 3))
    if table is not None:
        dw = dw[table]
    return dx.transpose(0, 3, 1, 2), dw, db


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


def _blocks(x):
    """The 2x2 blocks of x (N, C, H, W), odd edges dropped: (N, C, H // 2, 2, W // 2, 2), a view."""
    n, c, h, w = x.shape
    return x[:, :, : h - h % 2, : w - w % 2].reshape(n, c, h // 2, 2, w // 2, 2)


def _max_routing(x):
    """For each 2x2 window of x, a one-hot (N, C, H // 2, 2, W // 2, 2) boolean mask of the input
    that max pooling's gradient goes to: the first of (top-left, top-right, bottom-left,
    bottom-right) equal to the window's maximum (np.argmax's first-occurrence rule)."""
    blocks = _blocks(x)
    n, c, ho, _, wo, _ = blocks.shape
    flat = blocks.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, ho, wo, 4)  # TL, TR, BL, BR
    first = flat.argmax(axis=-1)
    hit = first[..., None] == np.arange(4)
    return hit.reshape(n, c, ho, wo, 2, 2).transpose(0, 1, 2, 4, 3, 5)


def _unblock(x, block_grad):
    """Scatter a (N, C, Ho, 2, Wo, 2) gradient back to x's shape; dropped odd edges get 0."""
    n, c, ho, _, wo, _ = block_grad.shape
    dx = np.zeros(x.shape, dtype=block_grad.dtype)
    dx[:, :, : 2 * ho, : 2 * wo] = block_grad.reshape(n, c, 2 * ho, 2 * wo)
    return dx


def subsample_backward(x, dy, mode, coef=None):
    """Backward pass of subsample: returns (dx, dcoef, dbias).

    x: (N, C, H, W) the forward input; dy: (N, C, H // 2, W // 2) the gradient
    w.r.t. subsample's output. dcoef and dbias are (C,), summed over the batch,
    for "trainable" (dcoef[c] = sum dy * (sum of the 2x2 block), dbias[c] =
    sum dy) and None for the other modes. An odd last row or column, dropped by
    the forward pass, gets dx = 0.
      trainable: each of the 4 inputs of a block gets coef[c] * dy.
      average:   each of the 4 inputs gets dy / 4.
      max:       the whole of dy goes to ONE input per window: the first of
                 (top-left, top-right, bottom-left, bottom-right) equal to the
                 window's maximum; on a tie the others get 0.
    """
    n, c, ho, wo = dy.shape
    shape = (n, c, ho, 2, wo, 2)
    spread = dy[:, :, :, None, :, None]
    if mode == "trainable":
        dx = _unblock(x, np.broadcast_to(coef[:, None, None, None, None] * spread, shape))
        sums = _blocks(x).sum(axis=(3, 5))
        return dx, (dy * sums).sum(axis=(0, 2, 3)), dy.sum(axis=(0, 2, 3))
    if mode == "average":
        return _unblock(x, np.broadcast_to(spread / 4, shape)), None, None
    if mode == "max":
        routed = np.where(_max_routing(x), spread, np.zeros((), dtype=dy.dtype))
        return _unblock(x, routed), None, None
    raise ValueError(f"unknown subsampling mode {mode!r}")


def linear(x, w, b):
    """Full layer: x (N, In), w (In, Out) input-major, b (Out,) -> x @ w + b, (N, Out)."""
    return x @ w + b


def linear_backward(x, w, dy):
    """Backward pass of linear: returns (dx, dw, db).

    x: (N, In); w: (In, Out); dy: (N, Out). dx = dy @ w.T (N, In);
    dw = x.T @ dy (In, Out) and db = sum of dy over the batch (Out,).
    """
    return dy @ w.T, x.T @ dy, dy.sum(axis=0)


def rbf(x, centers):
    """Euclidean RBF units: x (N, D), centers (K, D) -> (N, K) squared distances.

    Computed from the differences rather than as |x|^2 - 2 x.c + |c|^2, which
    cancels badly when x is close to a center (the case that matters).
    """
    diff = x[:, None, :] - centers[None, :, :]
    return np.einsum("nkd,nkd->nk", diff, diff)


def rbf_backward(x, centers, dy):
    """Backward pass of rbf w.r.t. its input x: dx[n, d] = 2 sum_k dy[n, k] (x[n, d] - centers[k, d]).

    x: (N, D); centers: (K, D), fixed (no gradient); dy: (N, K). Returns (N, D).
    """
    diff = x[:, None, :] - centers[None, :, :]
    return 2 * np.einsum("nk,nkd->nd", dy, diff)


def softmax(z):
    """Softmax over the last axis."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))  # shift so the largest exponent is 0: no overflow
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(z):
    """Log of the softmax over the last axis, without forming the softmax itself."""
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


# --- losses ----------------------------------------------------------------------------------------
_U64 = np.uint64


def _mix64(z):
    """csrc/dropout.c's 64-bit mixer, on a uint64 array (NumPy's uint64 products wrap as C's do)."""
    with np.errstate(over="ignore"):
        z = z ^ (z >> _U64(32))
        z = z * _U64(0xD6E8FEB86659FD93)
        z = z ^ (z >> _U64(32))
        z = z * _U64(0xD6E8FEB86659FD93)
        return z ^ (z >> _U64(32))


def dropout_mask(key, first, n, units, rate):
    """(n, units) float32 multipliers of inverted dropout for the images at epoch positions first ..
    first + n - 1: 0 for a dropped unit, 1 / (1 - rate) (in float32) for a kept one. Unit u of image p is
    dropped when the top 24 bits of mix(mix(key ^ p * golden) + u) are below rate * 2^24 (rounded)."""
    p = np.arange(first, first + n, dtype=np.int64).astype(_U64)[:, None]
    u = np.arange(units, dtype=_U64)[None, :]
    with np.errstate(over="ignore"):
        h = _mix64(_mix64(_U64(key) ^ (p * _U64(0x9E3779B97F4A7C15))) + u)
    threshold = int(np.float32(rate) * np.float32(16777216.0) + np.float32(0.5))
    scale = np.float32(1) / (np.float32(1) - np.float32(rate))
    return np.where((h >> _U64(40)) < threshold, np.float32(0), scale).astype(np.float32)


# Each takes the network output (N, K) and the labels (N,) (integers in 0..K-1; map_loss and cross_entropy
# also -1, "not a digit") and returns (per-image loss (N,), gradient (N, K) of the SUM of the per-image
# losses w.r.t. the output).


def _one_hot(labels, k, dtype):
    """(N, k): 1 at each row's label, a row of zeros for label -1."""
    return (np.asarray(labels)[:, None] == np.arange(k)).astype(dtype)


def _pick(y, labels):
    """y[p, labels[p]] for every row p (any value where labels[p] is -1: the callers replace it)."""
    return np.take_along_axis(y, np.maximum(np.asarray(labels), 0)[:, None], axis=1)[:, 0]


def map_loss(y, labels, j=MAP_J, reject_j=None):
    """The paper's MAP criterion on RBF distances y (N, K): returns (loss (N,), grad (N, K)).

        loss_p = y[p, D_p] + log(exp(-j) + sum_i exp(-y[p, i]))
        grad   = onehot(D) - exp(-y_i) / (exp(-j) + sum_l exp(-y_l))

    j > 0 is the distance of the "rubbish" class. Evaluated as a log-sum-exp
    shifted by m = min(j, min_i y_i), so that every exponent is <= 0 and one is
    0: huge distances give a finite loss and gradient. Each gradient row sums
    to exp(-j) / (exp(-j) + sum_l exp(-y_l)), the rubbish class's share.
    Label -1 (not a digit) makes the rubbish class the desired one, at its own
    distance reject_j (j when None) in that image's loss: y[p, D_p] and j both
    become reject_j and the one-hot row is zero, so every distance is pushed
    above reject_j.
    """
    rejects = np.asarray(labels) < 0
    j = np.where(rejects, j if reject_j is None else reject_j, j).astype(y.dtype)[:, None]  # (N, 1), y's dtype
    m = np.minimum(j, y.min(axis=1, keepdims=True))  # (N, 1)
    e = np.exp(-(y - m))
    total = np.exp(-(j - m)) + e.sum(axis=1, keepdims=True)  # in [1, K + 1]
    loss = np.where(rejects, j[:, 0], _pick(y, labels)) - m[:, 0] + np.log(total[:, 0])
    return loss, _one_hot(labels, y.shape[1], y.dtype) - e / total


def rbf_loss(y, labels):
    """The plain loss on RBF distances y (N, K): loss_p = y[p, D_p], grad = onehot(D)."""
    return _pick(y, labels), _one_hot(labels, y.shape[1], y.dtype)


def cross_entropy(z, labels):
    """Softmax cross-entropy on logits z (N, K): loss_p = -log_softmax(z)[p, D_p],
    grad = softmax(z) - onehot(D) (each row sums to 0). Label -1 (not a digit): the target is uniform
    (outlier exposure), loss_p = -mean_i log_softmax(z)[p, i], grad = softmax(z) - 1/K."""
    rejects = np.asarray(labels) < 0
    target = np.where(rejects[:, None], 1 / z.shape[1], _one_hot(labels, z.shape[1], z.dtype)).astype(z.dtype)
    logp = log_softmax(z)
    return np.where(rejects, -logp.mean(axis=1), -_pick(logp, labels)), softmax(z) - target


def hinge_loss(s, labels):
    """The multiclass SVM (Weston-Watkins) loss on scores s (N, K): loss_p = sum over i != D_p of
    max(0, s[p, i] - s[p, D_p] + 1); grad: 1 for each i != D with a positive margin, minus their count at
    D (0 on the kink). For an RBF head the scores are the negative distances: hinge_loss(-y, labels) and
    the gradient negated (backward does this)."""
    margins = s - _pick(s, labels)[:, None] + 1
    others = 1 - _one_hot(labels, s.shape[1], s.dtype)
    on = (margins > 0) * others
    grad = on - _one_hot(labels, s.shape[1], s.dtype) * on.sum(axis=1, keepdims=True)
    return (margins * on).sum(axis=1), grad


LOSSES = {"map": map_loss, "rbf": rbf_loss, "xent": cross_entropy, "hinge": hinge_loss}


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


# The two networks as layer tables: (kind, name, activation, extra), extra the connection
# table of a convolution or the mode of a subsampling layer. Parameters are named
# name + ".weight" / ".bias" (conv, full) or ".coef" / ".bias" (trainable subsampling); the
# RBF layer reads the fixed "rbf.centers".
_NETWORKS = {
    "classic": (
        ("conv", "c1", "squash", None),
        ("pool", "s2", "squash", "trainable"),
        ("conv", "c3", "squash", C3_TABLE),
        ("pool", "s4", "squash", "trainable"),
        ("full", "c5", "squash", None),  # a 5x5 convolution over 5x5 maps: a full layer on 400 inputs
        ("full", "f6", "squash", None),
        ("rbf", "rbf", "none", None),
    ),
    "modern": (
        ("conv", "c1", "relu", None),
        ("pool", "s2", "none", "max"),
        ("conv", "c3", "relu", None),
        ("pool", "s4", "none", "max"),
        ("full", "c5", "relu", None),
        ("full", "f6", "relu", None),
        ("full", "out", "none", None),
    ),
}
_DEFAULT_LOSS = {"classic": "map", "modern": "xent"}
_VARIANT_LOSSES = {"classic": ("map", "rbf", "hinge"), "modern": ("xent", "hinge")}


def _network(variant, activation=None):
    """The variant's layer table; activation (modern only) replaces ReLU in c1, c3, c5 and f6."""
    try:
        table = _NETWORKS[variant]
    except (KeyError, TypeError):
        raise ValueError(f"unknown variant {variant!r}") from None
    if activation is None:
        return table
    if variant != "modern":
        raise ValueError("only the modern variant takes another activation")
    return tuple((k, n, activation if a == "relu" else a, e) for k, n, a, e in table)


def _loss_and_grad(out, labels, variant, loss, j):
    """(losses, gradient of their sum w.r.t. the output) for a loss name; hinge scores the classic RBF
    head's distances by their negatives."""
    if loss == "map":
        return map_loss(out, labels, j)
    if loss == "hinge" and variant == "classic":
        losses, g = hinge_loss(-out, labels)
        return losses, -g
    return LOSSES[loss](out, labels)


def _loss_name(variant, loss):
    """The loss to use for variant (its default for None); ValueError for an unknown variant or a
    loss of the other output head."""
    _network(variant)
    loss = _DEFAULT_LOSS[variant] if loss is None else loss
    if loss not in _VARIANT_LOSSES[variant]:
        allowed = _VARIANT_LOSSES[variant]
        raise ValueError(f"loss {loss!r} does not apply to {variant!r}; use one of {allowed}")
    return loss


def _param_names(layers):
    """The trainable parameter names of a layer table, in order."""
    names = []
    for kind, name, _, extra in layers:
        if kind in ("conv", "full"):
            names += [name + ".weight", name + ".bias"]
        elif kind == "pool" and extra == "trainable":
            names += [name + ".coef", name + ".bias"]
    return names


def _layer_forward(layer, params, x):
    """One layer's pre-activation output."""
    kind, name, _, extra = layer
    if kind == "conv":
        return conv2d(x, params[name + ".weight"], params[name + ".bias"], table=extra)
    if kind == "pool":
        if extra == "trainable":
            return subsample(x, extra, params[name + ".coef"], params[name + ".bias"])
        return subsample(x, extra)
    if kind == "full":
        return linear(_flatten(x), params[name + ".weight"], params[name + ".bias"])
    return rbf(x, params["rbf.centers"])


def _forward_trace(params, x, variant, activation_name=None, masks=None):
    """The forward pass, keeping what the backward passes need.

    Returns (trace, out): trace lists (layer, input, pre-activation) for every
    layer in order, out is the network's output (N, 10). masks (dropout in
    training): name -> (N, inputs) multipliers of a full layer's flattened input
    (0 for a dropped unit, 1 / (1 - p) for a kept one); the trace then holds the
    masked input.
    """
    trace = []
    for layer in _network(variant, activation_name):
        if masks and layer[1] in masks:
            x = _flatten(x) * masks[layer[1]]
        pre = _layer_forward(layer, params, x)
        trace.append((layer, x, pre))
        x = activation(pre, layer[2])
    return trace, x


def with_centers(params, variant):
    """A new dict of params (a model's parameters) plus, for "classic", the fixed "rbf.centers" the
    reference's output layer reads (the paper's prototypes; not a trainable parameter)."""
    full = dict(params)
    if variant == "classic":
        full["rbf.centers"] = rbf_centers()
    return full


def forward(params, x, variant, activation=None, masks=None):
    """Run the whole network on normalized input x: (N, 1, 32, 32).

    params maps names (e.g. "c1.weight") to arrays; variant is "classic" (the
    paper's network) or "modern". Returns (N, 10): the RBF distances for
    "classic" (smaller is better), the logits for "modern".
    classic: C1 conv + squash, S2 trainable subsampling + squash, C3 conv wired
    by C3_TABLE + squash, S4 as S2, C5 and F6 full + squash, RBF distances to
    params["rbf.centers"]. modern: C1 conv + relu, S2 max, C3 dense conv +
    relu, S4 max, C5 and F6 full + relu, "out" full (logits).
    C5 is a 5x5 convolution over 5x5 maps, i.e. a full layer on the 400
    flattened S4 values (index c * 25 + i * 5 + j). activation (modern only)
    replaces relu; masks: dropout's, as in _forward_trace.
    """
    return _forward_trace(params, x, variant, activation, masks)[1]


def backward(params, x, labels, variant, loss=None, j=MAP_J, activation=None, masks=None):
    """Loss and gradient of the whole network: returns (losses (N,), grads).

    x: (N, 1, 32, 32) normalized input; labels: (N,) integer classes. loss is
    "map" (the paper's MAP criterion, with rubbish distance j; the classic
    default) or "rbf" (the plain distance y_D) for "classic", "xent" (softmax
    cross-entropy, the default) for "modern". grads maps every trainable
    parameter name (in the order of model.param_shapes) to the gradient of the
    SUM of the per-image losses, in the parameter's layout (C3's kernels packed
    by C3_TABLE for "classic"). The classic RBF centres are fixed: no gradient.
    "hinge" (either variant) scores the logits or the negative distances.
    activation and masks as in forward (the masks fixed: the gradient for that draw).
    """
    loss = _loss_name(variant, loss)
    trace, out = _forward_trace(params, x, variant, activation, masks)
    losses, g = _loss_and_grad(out, labels, variant, loss, j)
    grads = {}
    for (kind, name, act, extra), inp, pre in reversed(trace):
        if kind == "rbf":
            g = rbf_backward(inp, params["rbf.centers"], g)
            continue
        g = activation_backward(pre, g.reshape(pre.shape), act)
        if kind == "conv":
            g, grads[name + ".weight"], grads[name + ".bias"] = conv2d_backward(
                inp, params[name + ".weight"], g, table=extra
            )
        elif kind == "pool":
            g, dcoef, dbias = subsample_backward(inp, g, extra, params.get(name + ".coef"))
            if extra == "trainable":
                grads[name + ".coef"], grads[name + ".bias"] = dcoef, dbias
        else:
            dx, grads[name + ".weight"], grads[name + ".bias"] = linear_backward(
                _flatten(inp), params[name + ".weight"], g
            )
            g = dx.reshape(inp.shape)
            if masks and name in masks:
                g = g * masks[name]  # through the mask, to the unmasked input (still flat)
    return losses, {name: grads[name] for name in _param_names(_network(variant))}


def _subsample_curvature(x, d2y, mode, coef=None):
    """Gauss-Newton rule through subsample: (d2x, d2coef, d2bias) from the output curvature d2y.

    trainable: d2x = coef^2 d2y on each input of the block, d2coef = sum s^2 d2y
    (s the block's sum), d2bias = sum d2y; average: d2x = d2y / 16; max: d2y
    routed like the gradient. Dropped odd edges get 0.
    """
    if mode == "trainable":
        sums = _blocks(x).sum(axis=(3, 5))
        d2x = subsample_backward(x, d2y, mode, coef * coef)[0]
        return d2x, (d2y * sums * sums).sum(axis=(0, 2, 3)), d2y.sum(axis=(0, 2, 3))
    if mode == "average":
        return subsample_backward(x, d2y, mode)[0] / 4, None, None  # (1/4)^2 = the gradient's 1/4, again
    return subsample_backward(x, d2y, mode)[0], None, None


def gauss_newton_diagonal(params, x, variant, loss=None, activation=None):
    """Diagonal Gauss-Newton second derivatives d2E/dw2, summed over the images of x.

    The curvature estimate of the paper's stochastic diagonal Levenberg-Marquardt
    (LeCun et al. 1998, appendix C; LeCun et al., "Efficient BackProp", sec. 9):
    second derivatives are back-propagated like gradients, with every
    off-diagonal term and every term in f'' dropped, so all entries are >= 0.
    Returns a dict with the names and shapes of backward's grads.

    Seed at the output, per image:
      classic ("map" or "rbf"): d2E/dx_k^2 = 2 for each of the 84 F6 outputs x_k,
        the curvature of the plain loss y_D = sum_k (x_k - w_Dk)^2, exact for
        that term. The MAP criterion's log-sum-exp term is left out, as in the
        paper's Gauss-Newton approximation; the RBF layer itself is not traversed.
      modern ("xent"): d2E/dz_i^2 = p_i (1 - p_i) at the logits z, p = softmax(z)
        (the diagonal of the cross-entropy's Hessian).
    Through a layer with pre-activation a, input x and output curvature d2Y:
      activation:   d2A = d2Y * f'(a)^2
      conv, full:   d2W = sum over the weight's uses of x^2 * d2A;  d2b = sum d2A;
                    d2X = sum over the input's uses of W^2 * d2A
      trainable pooling: d2X = coef^2 * d2A (each input of the block);
                    d2coef = sum s^2 * d2A, s the 2x2 block's sum; d2bias = sum d2A
      average pooling: d2X = d2A / 16;  max pooling: d2A routed to the same
                    input as the gradient (subsample_backward's tie rule).
    """
    loss = _loss_name(variant, loss)
    if loss == "hinge":
        raise ValueError("the hinge loss is piecewise linear: it has no Gauss-Newton curvature")
    trace, out = _forward_trace(params, x, variant, activation)
    if loss == "xent":
        p = softmax(out)
        d2 = p * (1 - p)
    else:
        f6_output = trace[-1][1]  # the RBF layer's input; the RBF layer is not traversed
        trace = trace[:-1]
        d2 = np.full_like(f6_output, 2)
    curv = {}
    for (kind, name, act, extra), inp, pre in reversed(trace):
        d2 = d2 * activation_derivative(pre, act) ** 2
        if kind == "conv":
            w = params[name + ".weight"]
            d2, curv[name + ".weight"], curv[name + ".bias"] = conv2d_backward(
                inp * inp, w * w, d2, table=extra
            )
        elif kind == "pool":
            d2, d2coef, d2bias = _subsample_curvature(inp, d2, extra, params.get(name + ".coef"))
            if extra == "trainable":
                curv[name + ".coef"], curv[name + ".bias"] = d2coef, d2bias
        else:
            flat = _flatten(inp)
            w = params[name + ".weight"]
            d2x, curv[name + ".weight"], curv[name + ".bias"] = linear_backward(flat * flat, w * w, d2)
            d2 = d2x.reshape(inp.shape)
    return {name: curv[name] for name in _param_names(_network(variant))}


# --- optimizer steps: pure functions, returning new arrays (their inputs are left alone) ---------
# The scalars (lr, momentum, betas, t, epsilon, ...) are meant as Python numbers, which keep the
# arrays' dtype; NumPy float64 scalars would promote float32 arrays to float64.


def sgd_update(w, g, velocity, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
    """One SGD step, PyTorch's convention: returns (w, velocity), both new.

    d = g + weight_decay * w;  velocity = momentum * velocity + d;  w = w - lr * velocity, or with nesterov
    w = w - lr * (d + momentum * velocity).
    """
    d = g + weight_decay * w
    velocity = momentum * velocity + d
    return w - lr * (d + momentum * velocity if nesterov else velocity), velocity


def adagrad_update(w, g, s, lr=0.01, eps=1e-10, weight_decay=0.0):
    """One AdaGrad step: returns (w, s), both new. d = g + weight_decay w;  s = s + d^2;
    w = w - lr d / (sqrt(s) + eps)."""
    d = g + weight_decay * w
    s = s + d * d
    return w - lr * d / (np.sqrt(s) + eps), s


def rmsprop_update(w, g, b, v, lr=0.01, alpha=0.99, eps=1e-8, momentum=0.0, weight_decay=0.0):
    """One RMSProp step: returns (w, b, v), all new. d = g + weight_decay w;  v = alpha v + (1 - alpha) d^2;
    u = d / (sqrt(v) + eps);  b = momentum b + u and w = w - lr b (without momentum: w = w - lr u)."""
    d = g + weight_decay * w
    v = alpha * v + (1 - alpha) * (d * d)
    u = d / (np.sqrt(v) + eps)
    if momentum:
        b = momentum * b + u
        return w - lr * b, b, v
    return w - lr * u, b, v


def sgd_step(params, velocity, x, labels, variant, lr, momentum=0.0):
    """One training step on a batch: the gradient of the mean loss (backward), then sgd_update of every
    trainable parameter; params and velocity (name -> array, velocity zeros at first) are updated in place."""
    _, grads = backward(params, x, labels, variant)
    for k, g in grads.items():
        params[k], velocity[k] = sgd_update(params[k], g / len(x), velocity[k], lr, momentum)


def adam_update(w, g, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
    """One Adam step (t the 1-based step number): returns (w, m, v), all new.

    d = g + weight_decay * w;  m = beta1 m + (1 - beta1) d;  v = beta2 v + (1 - beta2) d^2;
    w = w - lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps).
    """
    d = g + weight_decay * w
    m = beta1 * m + (1 - beta1) * d
    v = beta2 * v + (1 - beta2) * (d * d)
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    return w - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def adamw_update(w, g, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01):
    """One AdamW step (decoupled weight decay): w = w - lr weight_decay w, then adam_update's step on g
    without weight decay. Returns (w, m, v), all new."""
    return adam_update(w - lr * weight_decay * w, g, m, v, t, lr, beta1, beta2, eps)


def sdlm_update(w, g, h, epsilon, mu=SDLM_MU):
    """One stochastic diagonal Levenberg-Marquardt step: w - epsilon / (mu + h) * g, new.

    h: the Gauss-Newton diagonal estimate for w (gauss_newton_diagonal, per
    pattern); epsilon the global rate (paper.sdlm_epsilon); mu the damping.
    """
    return w - epsilon / (mu + h) * g


def predict(params, x, variant):
    """Predicted classes (N,) int64: nearest RBF center (classic) or largest logit (modern)."""
    out = forward(params, x, variant)
    best = np.argmin(out, axis=1) if variant == "classic" else np.argmax(out, axis=1)
    return best.astype(np.int64)


# ---- picture steps ---------------------------------------------------------------------------------------


def morphology(image, k, closing):
    """Grey-level closing (maximum over each k x k window, then minimum) or opening (minimum, then maximum)
    of a 2-D image, k odd, windows cut at the edges (the image padded with the neutral value)."""
    r = k // 2

    def extreme(a, high):
        padded = np.pad(a, r, constant_values=-np.inf if high else np.inf)
        windows = sliding_window_view(padded, (k, k))
        return windows.max(axis=(2, 3)) if high else windows.min(axis=(2, 3))

    return extreme(extreme(image, closing), not closing)


def components(mask):
    """(labels, count): the 8-connected components of a 2-D boolean mask, numbered 1, 2, ... in the raster
    order of their first pixels (0 off the mask), each flooded from that pixel."""
    h, w = mask.shape
    labels = np.zeros((h, w), np.int64)
    count = 0
    for y, x in zip(*np.nonzero(mask)):  # raster order
        if labels[y, x]:
            continue
        count += 1
        labels[y, x] = count
        todo = [(y, x)]
        while todo:
            cy, cx = todo.pop()
            for ny in range(max(cy - 1, 0), min(cy + 2, h)):
                for nx in range(max(cx - 1, 0), min(cx + 2, w)):
                    if mask[ny, nx] and not labels[ny, nx]:
                        labels[ny, nx] = count
                        todo.append((ny, nx))
    return labels, count


def ink_above_floor(gray, paper, dark, min_paper, sigmas, min_contrast):
    """(ink or None, contrast, floor): how far each pixel of gray stands out from paper (an array of its shape
    or one level), float32 per pixel: (paper - gray) / max(paper, min_paper) for dark ink, gray - paper
    otherwise; less the noise floor, median + sigmas * 1.4826 * median absolute deviation over every other
    pixel each way (each median the element of rank n // 2), in float64; clipped at 0. None when the
    strongest ink is less than max(min_contrast, sigmas * sigma) above the floor."""
    gray = np.asarray(gray, np.float32)
    paper = np.asarray(paper, np.float32)
    if dark:
        ink = (paper - gray) / np.maximum(paper, np.float32(min_paper))
    else:
        ink = gray - paper
    ink = np.broadcast_to(ink, gray.shape).astype(np.float32)
    sample = np.sort(ink[::2, ::2], axis=None)
    middle = sample[len(sample) // 2]
    spread = np.sort(np.abs(sample - middle))
    sigma = 1.4826 * float(spread[len(spread) // 2])
    floor = float(middle) + sigmas * sigma
    contrast = float(ink.max()) - floor
    if contrast < max(min_contrast, sigmas * sigma):
        return None, contrast, floor
    return np.maximum(ink - np.float32(floor), np.float32(0)), contrast, floor


def read_digit(gray, params):
    """(digit, status, speck, contrast, floor): a gray picture (float32 (H, W), 1 white) through read_digit's
    steps 2-8 (lenet_fast/images.py's module docstring), in NumPy: digit the (size, size) uint8 MNIST form
    or None; status 0 for a digit, 1 for no ink (contrast and floor say by how little), 2 for a speck (speck
    its size). params: images.PICTURE_PARAMS's fields by name."""
    p = params
    gray = picture_shrink(gray, p["work_size"])
    if gray.size == 0:  # a sliver thinner than the block factor
        return None, 1, 0, 0.0, 0.0
    ink, contrast, floor = picture_ink(gray, p)
    if ink is None:
        return None, 1, 0, contrast, floor
    ink, speck = picture_digit(ink, p)
    if ink is None:
        return None, 2, speck, contrast, floor
    return mnist_form(ink, p), 0, 0, contrast, floor


def picture_shrink(gray, size):
    """gray reduced by area averaging over whole blocks of f x f pixels, f the smallest integer that brings
    its longer side to at most size (the last partial row and column of blocks dropped); gray itself when
    f is 1. Sums in float32, down the block's rows, then across."""
    f = -(-max(gray.shape) // size)
    if f == 1:
        return gray
    h, w = gray.shape[0] // f, gray.shape[1] // f
    rows = gray[:h * f, :w * f].reshape(h, f, w * f).sum(axis=1)
    return rows.reshape(h, w, f).sum(axis=2) / (f * f)


def picture_ink(gray, p):
    """(ink or None, contrast, floor): steps 3-4, polarity and paper, then ink_above_floor; the other
    polarity when nothing stands out in the first."""
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    ranked = np.sort(border)
    if ranked[len(ranked) * 9 // 10] - ranked[len(ranked) // 10] <= np.float32(p["flat_paper"]):
        level = np.median(border)
        dark = gray.mean() < level

        def paper(dark):
            return level
    else:
        coarse = picture_shrink(gray, p["polarity_size"])
        k = max(3, max(coarse.shape) // 2 | 1)
        # a strip thinner than the coarse blocks leaves no coarse image: no evidence either way, the tie's answer
        dark = coarse.size == 0 or (_variation(morphology(coarse, k, True))
                                    <= _variation(morphology(coarse, k, False)))

        def paper(dark):
            return picture_paper(gray, dark, p)
    found = ink_above_floor(gray, paper(dark), dark, p["min_paper"], p["noise_sigmas"], p["min_contrast"])
    if found[0] is None:
        found = ink_above_floor(gray, paper(not dark), not dark, p["min_paper"], p["noise_sigmas"],
                                p["min_contrast"])
    return found


def picture_paper(gray, dark, p):
    """The paper under uneven light: gray's closing (dark) or opening over a window of a light_window-th of
    its longer side and at least min_window pixels; with both sides at least 2 * min_window, of gray's 2x2
    means, each result pixel then repeated 2x2 (an odd last row or column repeating its neighbour)."""
    h, w = gray.shape
    if min(h, w) < 2 * p["min_window"]:
        return morphology(gray, max(p["min_window"], max(h, w) // p["light_window"]) | 1, dark)
    even = gray[:h // 2 * 2, :w // 2 * 2]
    small = (even[0::2, 0::2] + even[1::2, 0::2] + even[0::2, 1::2] + even[1::2, 1::2]) * np.float32(0.25)
    window = max(p["min_window"] // 2, max(small.shape) // p["light_window"]) | 1
    paper = np.repeat(np.repeat(morphology(small, window, dark), 2, axis=0), 2, axis=1)
    return np.pad(paper, ((0, h % 2), (0, w % 2)), mode="edge")


def _variation(a):
    """The total variation of a 2-D array: the sum of its neighbours' absolute differences (float32 sums)."""
    return np.abs(np.diff(a, axis=0)).sum() + np.abs(np.diff(a, axis=1)).sum()


def picture_digit(ink, p):
    """(ink keeping only the digit, or None; the digit's size): step 5. The component (components) holding
    the most ink, with the pieces within part_reach of its box that hold part_share as much or are
    mark_peak as dark, and any within adjacent pixels; None when the digit is under min_size both ways."""
    labels, count = components(ink > 0)
    mass = np.bincount(labels.ravel(), weights=ink.ravel().astype(np.float64), minlength=count + 1)[1:]
    peak = np.full(count + 1, -np.inf, np.float32)
    np.maximum.at(peak, labels.ravel(), ink.ravel())
    peak = peak[1:]
    ys, xs = np.nonzero(labels)
    top, left = np.full(count + 1, ink.shape[0]), np.full(count + 1, ink.shape[1])
    bottom, right = np.full(count + 1, -1), np.full(count + 1, -1)  # inclusive
    np.minimum.at(top, labels[ys, xs], ys)
    np.minimum.at(left, labels[ys, xs], xs)
    np.maximum.at(bottom, labels[ys, xs], ys)
    np.maximum.at(right, labels[ys, xs], xs)
    top, left, bottom, right = top[1:], left[1:], bottom[1:], right[1:]
    main = int(np.argmax(mass))
    size = max(bottom[main] - top[main], right[main] - left[main]) + 1
    if size < p["min_size"]:
        return None, int(size)

    def near(reach):
        return ((top <= bottom[main] + reach) & (bottom >= top[main] - reach)
                & (left <= right[main] + reach) & (right >= left[main] - reach))

    part = (mass >= p["part_share"] * mass[main]) | (peak >= p["mark_peak"] * peak[main])
    keep = (near(p["part_reach"] * size) & part) | near(p["adjacent"])
    return ink * np.concatenate([[False], keep])[labels], int(size)


def mnist_form(ink, p):
    """Steps 6-8: ink cropped to its strong pixels (ink_threshold of the strongest), resampled by area to
    the box (its longer side box pixels) in float64, stretched to 1, pasted with its centre of mass at the
    centre (offset rounded half up, kept inside the field), times 255 rounded half up: (size, size) uint8."""
    strong = ink >= p["ink_threshold"] * ink.max()
    rows, cols = np.flatnonzero(strong.any(axis=1)), np.flatnonzero(strong.any(axis=0))
    ink = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = ink.shape
    scale = p["box"] / max(h, w)
    bh, bw = max(1, int(h * scale + 0.5)), max(1, int(w * scale + 0.5))
    box = area_weights(h, bh) @ ink @ area_weights(w, bw).T
    box /= box.max()
    mass = box.sum()

    def offset(centre_of_mass, length):
        return min(max(int(np.floor(p["centre"] - centre_of_mass + 0.5)), 0), p["size"] - length)

    top = offset(box.sum(axis=1) @ np.arange(bh) / mass, bh)
    left = offset(box.sum(axis=0) @ np.arange(bw) / mass, bw)
    out = np.zeros((p["size"], p["size"]))
    out[top:top + bh, left:left + bw] = box
    return np.floor(out * 255 + 0.5).astype(np.uint8)


def area_weights(n_in, n_out):
    """(n_out, n_in) area-resampling matrix: output pixel i averages the input over [i, i + 1) * n_in / n_out,
    each input pixel weighted by the length it overlaps."""
    edges = np.arange(n_out + 1) * (n_in / n_out)
    pixels = np.arange(n_in)
    overlap = np.minimum(edges[1:, None], pixels + 1.0) - np.maximum(edges[:-1, None], pixels)
    return np.maximum(overlap, 0.0) * (n_out / n_in)
