"""LeNet-5, as a table of layers run by the C engine.

Two variants share the kernels (../shared/LENET5.md, and lenet_fast.paper for the constants):

- ``classic``: the 1998 paper exactly: scaled-tanh squashing everywhere, trainable subsampling, C3 wired by
  Table I, Euclidean RBF output against fixed 7x12 digit bitmaps, LeCun's uniform initialisation; 60,000
  trainable parameters.
- ``modern``: what most tutorials call LeNet-5: ReLU, max pooling, C3 connected to all six S2 maps, a
  linear 84 -> 10 output read through softmax, He initialisation.
"""
import functools
import os
import secrets
from collections import OrderedDict
from collections.abc import Mapping
from typing import NamedTuple, Optional

import numpy as np

from . import _core, paper


class Conv(NamedTuple):
    name: str
    maps: int
    kernel: int
    act: str
    table: Optional[np.ndarray] = None  # (maps, input maps) boolean, or None for every input


class Subsample(NamedTuple):
    name: str
    pool: str  # "trainable" (coefficient * sum + bias), "average" or "max", over 2x2 windows
    act: str = "none"


class Full(NamedTuple):
    name: str
    units: int
    act: str = "none"


class RBF(NamedTuple):
    name: str
    units: int


#             layer       maps  kernel  activation       connections
CLASSIC = (
    Conv("c1",              6,    5,    "squash"),
    Subsample("s2", "trainable",        "squash"),
    Conv("c3",             16,    5,    "squash",        paper.C3_TABLE),
    Subsample("s4", "trainable",        "squash"),
    Full("c5",            120,          "squash"),       # a 5x5 convolution over 5x5 maps: a full layer
    Full("f6",             84,          "squash"),
    RBF("rbf",             10),                          # distances to paper.rbf_centers()
)

MODERN = (
    Conv("c1",              6,    5,    "relu"),
    Subsample("s2", "max"),
    Conv("c3",             16,    5,    "relu"),
    Subsample("s4", "max"),
    Full("c5",            120,          "relu"),
    Full("f6",             84,          "relu"),
    Full("out",            10),                          # logits, read through softmax
)

VARIANTS = {"classic": CLASSIC, "modern": MODERN}
INPUT_SHAPE = (1, paper.INPUT_SIZE, paper.INPUT_SIZE)


def param_shapes(variant):
    """The trainable parameters of a variant, in order: name -> (shape, fan-in), the fan-in a number or,
    for C3's table-wired kernels, an array broadcastable to the shape (75, 100 or 150 by map)."""
    shapes = OrderedDict()
    c, h, w = INPUT_SHAPE
    for layer in _layers(variant):
        if isinstance(layer, Conv):
            k = layer.kernel
            if layer.table is None:
                shapes[layer.name + ".weight"] = ((layer.maps, c, k, k), c * k * k)
                shapes[layer.name + ".bias"] = ((layer.maps,), c * k * k)
            else:  # packed in table order; a map's fan-in counts its connected inputs only
                inputs = layer.table.sum(axis=1)
                fan = np.repeat(inputs * k * k, inputs)[:, None, None]
                shapes[layer.name + ".weight"] = ((int(inputs.sum()), k, k), fan)
                shapes[layer.name + ".bias"] = ((layer.maps,), inputs * k * k)
            c, h, w = layer.maps, h - k + 1, w - k + 1
        elif isinstance(layer, Subsample):
            if layer.pool == "trainable":
                shapes[layer.name + ".coef"] = ((c,), 4)
                shapes[layer.name + ".bias"] = ((c,), 4)
            h, w = h // 2, w // 2
        elif isinstance(layer, Full):
            shapes[layer.name + ".weight"] = ((c * h * w, layer.units), c * h * w)
            shapes[layer.name + ".bias"] = ((layer.units,), c * h * w)
            c, h, w = layer.units, 1, 1
    return shapes


def _layers(variant):
    try:
        return VARIANTS[variant]
    except (KeyError, TypeError):
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {variant!r}") from None


def init_params(variant, seed=0):
    """Freshly initialised parameters: classic, every weight, bias and coefficient uniform in
    (-2.4/F, 2.4/F) with F the unit's fan-in (paper appendix A); modern, He-normal weights
    (std sqrt(2/F)) and zero biases."""
    rng = np.random.default_rng(seed)
    params = OrderedDict()
    for name, (shape, fan) in param_shapes(variant).items():
        if variant == "classic":
            a = rng.uniform(-1.0, 1.0, size=shape) * (paper.INIT_SCALE / fan)
        elif name.endswith(".weight"):
            a = rng.standard_normal(shape) * np.sqrt(2.0 / fan)
        else:
            a = np.zeros(shape)
        params[name] = np.ascontiguousarray(a, dtype=np.float32)
    return params


def flat_params(arrays):
    """(flat, views): one float32 vector holding every array of the ordered mapping arrays, and an ordered
    mapping of the same names to views into it, filled with the arrays' values. The engine trains a flat
    vector: its gradients and optimizer states share this layout."""
    flat = np.empty(sum(np.size(a) for a in arrays.values()), dtype=np.float32)
    views = _views(flat, arrays)
    for name, a in arrays.items():
        views[name][...] = a
    return flat, views


def layer_spec(layer, params, rbf_centers=None):
    """The C engine's description (a _core.Network layer dict) of one layer, on params' arrays in place."""
    p = layer.name + "."
    if isinstance(layer, Conv):
        return dict(kind="conv", out=layer.maps, kernel=(layer.kernel, layer.kernel), act=layer.act,
                    table=layer.table, weight=params[p + "weight"], bias=params[p + "bias"])
    if isinstance(layer, Subsample):
        return dict(kind="subsample", pool=layer.pool, act=layer.act,
                    coef=params.get(p + "coef"), bias=params.get(p + "bias"))
    if isinstance(layer, Full):
        return dict(kind="full", out=layer.units, act=layer.act, weight=params[p + "weight"], bias=params[p + "bias"])
    return dict(kind="rbf", centers=rbf_centers)


def build_network(variant, params, rbf_centers=None):
    """The C engine's Network for a variant, running on the given parameter arrays in place."""
    return _core.Network(INPUT_SHAPE, [layer_spec(layer, params, rbf_centers) for layer in _layers(variant)])


FORMAT_VERSION = 1


class Params(Mapping):
    """The model's parameters, a fixed, ordered set: name -> float32 array. The arrays may be changed in place
    (the engine runs on them directly); whole arrays are replaced through LeNet5.set_params, which checks
    shapes and values. Names cannot be added or removed."""

    def __init__(self, arrays):
        self._arrays = OrderedDict(arrays)

    def __getitem__(self, name):
        return self._arrays[name]

    def __iter__(self):
        return iter(self._arrays)

    def __len__(self):
        return len(self._arrays)

    def __setitem__(self, name, value):
        raise TypeError("parameters are changed in place (params[name][...] = value) or through "
                        "set_params(), not by assigning new arrays")

    def __delitem__(self, name):
        raise TypeError("the parameter set is fixed: names cannot be removed")

    def __repr__(self):
        return "Params(" + ", ".join(f"{k}: {tuple(a.shape)}" for k, a in self._arrays.items()) + ")"


def _uses_weights(method):
    """Marks a LeNet5 method that reads or sets the weights: refused while another thread trains the model,
    and registered (a token in model._users) while it runs, so that fit() waits for it (see LeNet5.__init__).
    The token is added and discarded inside one try block: an interrupt anywhere leaves none behind."""
    @functools.wraps(method)
    def use(self, *args, **kwargs):
        token = object()
        try:
            self._users.add(token)
            self._net.check_unclaimed()
            return method(self, *args, **kwargs)
        finally:
            self._users.discard(token)
    return use


class LeNet5:
    """LeNet-5 (LeCun et al., 1998) on the C engine.

    LeNet5(variant="classic", seed=0): "classic" is the paper's network exactly, "modern" the common
    simplification (module docstring). seed fixes the initialisation.

    Inputs, wherever an image batch is taken: one image or a batch of shape (28, 28), (32, 32),
    (N, 28, 28), (N, 32, 32) or (N, 1, 32, 32); uint8 pixels (or other integers) in 0-255 or floats in
    [0, 1], 0 the background (MNIST's polarity: light ink on dark). 28x28 digits are centred in the 32x32
    field and pixels are mapped to the paper's range: background -0.1, full ink 1.175. Input already in
    that form (float, (N, 32, 32) or (N, 1, 32, 32)) is passed with normalized=True and used as it is.
    """

    def __init__(self, variant="classic", seed=0):
        self.layers = _layers(variant)
        self.variant = variant
        self._flat, arrays = flat_params(init_params(variant, seed))
        self._params = Params(arrays)
        self._centers = paper.rbf_centers() if variant == "classic" else None
        self._net = build_network(variant, self._params, self._centers)
        self._trainer = None
        # Training and every other use from other threads exclude each other (README, "Safety and checks"):
        # fit() claims the network (_core.Network.claim), and then waits for the calls using the weights that
        # are running: forward's own, which the network counts, and the other methods marked _uses_weights,
        # each of which holds a token in _users while it runs. No lock on these paths: set add and discard
        # are atomic, and a call enters _users before it looks at the claim while fit() claims before it
        # looks at _users, so one of the two always sees the other.
        self._users = set()

    @property
    def params(self):
        """Ordered mapping name -> float32 array (see param_shapes for the names and shapes)."""
        return self._params

    @property
    def params_vector(self):
        """Every parameter in one float32 vector (params are views into it, in order): the layout of
        gradients and optimizer state."""
        return self._flat

    @property
    def default_loss(self):
        """"map" (the paper's MAP criterion) for classic, "xent" (softmax cross-entropy) for modern."""
        return "map" if self.variant == "classic" else "xent"

    @property
    def n_params(self):
        return sum(a.size for a in self._params.values())

    @property
    def rbf_centers(self):
        """The classic output layer's fixed (10, 84) prototypes (None for modern)."""
        return None if self._centers is None else self._centers.copy()

    @_uses_weights
    def set_params(self, params):
        """Copy new values into every parameter; params must name each one with its exact shape."""
        for name, value in _check_params(self.variant, params).items():
            self._params[name][...] = value

    def forward(self, x, normalized=False):
        """(N, 10) float32: the RBF distances (classic; smaller is likelier) or the logits (modern).
        FloatingPointError if they overflow (weights so large that float32 cannot hold the result)."""
        # Not _uses_weights: the network itself refuses while fit() runs elsewhere and counts its calls.
        x, normalize = _as_batch(x, normalized)
        return self._net.forward(x, normalize, flat=True)

    def predict(self, x, normalized=False):
        """(N,) int64 class ids."""
        return self._classes(self.forward(x, normalized))

    def _classes(self, out):
        return (out.argmin(axis=1) if self.variant == "classic" else out.argmax(axis=1)).astype(np.int64)

    def predict_proba(self, x, normalized=False):
        """(N, 10) probabilities: softmax of the logits (modern) or of the negated distances (classic)."""
        return _core.softmax(self.forward(x, normalized), negate=self.variant == "classic")

    def fit(self, images, labels, epochs=1, batch_size=None, optimizer=None, loss=None, j=paper.MAP_J,
            validation=None, seed=0, verbose=1, checkpoint=None, resume=None, normalized=False, augment=None):
        """Train on images (any form forward takes) and labels (0-9); returns the history, a list of one
        dict per epoch: epoch, loss (mean), error (the running training error: each pattern classified
        just before its update), val_error (with validation=(images, labels)), lr and seconds.

        optimizer: "sdlm" (classic's default: the paper's method, batch_size 1 by default), "sgd", "adam"
        (modern's default, batch_size 32), or an instance from lenet_fast.optim with its own settings and
        schedule. loss: "map" (classic's default, with the constant j), "rbf" (the plain distance), or
        "xent" (modern). seed fixes the shuffling. verbose: 0 silent, 1 a progress bar (tqdm, when
        installed) or a line per epoch, 2 a line per epoch. checkpoint=path saves after every epoch;
        resume=path continues such a run exactly (same data and settings; epochs is the total).
        augment(images, rng) -> images, if given, transforms each epoch's shuffled images (e.g.
        lenet_fast.distort.random_affine) with fit's seeded generator. Every argument is checked before
        any work starts."""
        from .train import fit

        return fit(self, images, labels, epochs=epochs, batch_size=batch_size, optimizer=optimizer, loss=loss,
                   j=j, validation=validation, seed=seed, verbose=verbose, checkpoint=checkpoint, resume=resume,
                   normalized=normalized, augment=augment)

    @_uses_weights
    def gradient(self, images, labels, loss=None, j=paper.MAP_J, normalized=False):
        """(grads, losses): the gradient of the summed loss of the images, as an ordered mapping of the
        parameters' names to float32 arrays, and each image's loss."""
        from .train import check_labels

        x, normalize = _as_batch(images, normalized)
        y = check_labels(labels, len(x))
        loss = self.default_loss if loss is None else loss
        self._check_loss(loss, j)
        grad, losses, _ = self._get_trainer().gradient(x, y, loss, j, 1.0, False, normalize)
        if not (_core.all_finite(losses) and _core.all_finite(grad)):
            raise FloatingPointError("the loss or its gradient is not finite: float32 overflowed (weights or "
                                     "inputs far too large)")
        return _views(grad, self._params), losses

    def _gauss_newton(self, x, y, loss, j, normalize):
        """The Gauss-Newton diagonal averaged over the images x (as _as_batch gives them), flat."""
        h, _, _ = self._get_trainer().gradient(x, y, loss, j, 1.0 / len(x), True, normalize)
        return h

    def _check_loss(self, loss, j):
        allowed = ("map", "rbf") if self.variant == "classic" else ("xent",)
        if loss not in allowed:
            raise ValueError(f"loss for {self.variant!r} must be one of {allowed}, got {loss!r}")
        if isinstance(j, bool) or not isinstance(j, (int, float, np.floating)) or not 0 < j < 1e30:
            raise ValueError(f"j must be a positive number, got {j!r}")

    def _get_trainer(self):
        if self._trainer is None:
            self._trainer = _core.Trainer(self._net, self._flat)
        return self._trainer

    def _fitting(self):
        from .train import Fitting

        return Fitting(self)

    @_uses_weights
    def save(self, path):
        """Save to a .npz file (format version, variant and parameters; no pickled objects). The file is
        written beside its destination and moved into place, so a failure leaves no half-written file."""
        save(self, path)

    def __repr__(self):
        return f"LeNet5(variant={self.variant!r}, params={self.n_params})"


_FIELDS = ((28, 28), (32, 32))
_DIRECT = (np.dtype(np.uint8), np.dtype(np.float32))


def _as_batch(x, normalized):
    """x as a batch (N first) of one-channel images that Network.forward takes, C-contiguous uint8 or
    float32, and whether the engine normalizes it."""
    # One image from Python is this library's hottest path: pixels as the engine takes them go straight
    # through, in as few Python operations as can tell (each costs some tenths of a microsecond).
    if type(x) is np.ndarray and not normalized and x.dtype in _DIRECT and x.flags.c_contiguous:
        if x.shape[-2:] in _FIELDS and (x.ndim == 3 or (x.ndim == 4 and x.shape[1] == 1)):
            return x, True
    a = np.asarray(x)
    if a.dtype.kind not in "uif":
        raise TypeError(f"images must be numbers (uint8 pixels or floats), got dtype {a.dtype}")
    if normalized:
        if a.dtype.kind != "f":
            raise TypeError("normalized=True takes float input already mapped to the paper's range")
        if a.shape[1:] not in (INPUT_SHAPE, INPUT_SHAPE[1:]):
            raise ValueError(f"normalized input must be (N, 32, 32) or (N, 1, 32, 32), got {a.shape}")
        return _float32(a), False
    shape = a.shape
    if shape[-2:] not in _FIELDS or not (a.ndim == 3 or a.ndim == 2 or (a.ndim == 4 and shape[1] == 1)):
        raise ValueError("images must be (28, 28), (32, 32), (N, 28, 28), (N, 32, 32) or (N, 1, 32, 32), "
                         f"got shape {np.shape(x)}")
    if a.ndim == 2:
        a = a[None]
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a), True
    if a.dtype.kind in "ui":
        if a.size and (a.min() < 0 or a.max() > 255):
            raise ValueError("integer pixels must lie in 0..255")
        return np.ascontiguousarray(a, dtype=np.uint8), True
    return _float32(a), True


def _float32(a):
    """a as C-contiguous float32; values beyond float32's range become infinity, which the engine refuses
    (without numpy's overflow warning first)."""
    if a.dtype.itemsize <= 4:
        return np.ascontiguousarray(a, dtype=np.float32)
    with np.errstate(over="ignore"):
        return np.ascontiguousarray(a, dtype=np.float32)


def _check_params(variant, params):
    """params as float32 arrays of the variant's exact names and shapes, all finite."""
    shapes = param_shapes(variant)
    missing = [n for n in shapes if n not in params]
    extra = [n for n in params if n not in shapes]
    if missing or extra:
        raise ValueError(f"parameters for {variant!r} do not match: missing {missing}, unexpected {extra}")
    out = OrderedDict()
    for name, (shape, _) in shapes.items():
        a = _core.float32_array(params[name], name)
        if a.shape != shape:
            raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
        out[name] = a
    return out


def _views(flat, like):
    """flat (in like's layout) as an ordered mapping of like's names to views of the same shapes."""
    out, at = OrderedDict(), 0
    for name, a in like.items():
        out[name] = flat[at : at + np.size(a)].reshape(np.shape(a))
        at += np.size(a)
    return out


def write_npz(path, arrays):
    """arrays to path as .npz, written beside it, flushed to disk and moved into place: a failure (or
    Ctrl-C) part way leaves any earlier file at path as it was, and no temporary file."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        while tmp is None:
            # Named before it exists: Ctrl-C can land right after os.open returns, and the cleanup below
            # must know the file then.
            tmp = os.path.join(folder, f".lenet_fast-{secrets.token_hex(8)}.tmp")
            try:  # mode 0666 less the umask, as open() gives (never os.umask: it is process-wide)
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
            except FileExistsError:  # someone else's: not ours to remove
                tmp = None
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the name points at it
        os.replace(tmp, path)
    except BaseException:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_npz(path, what):
    """Every array of an .npz file, never unpickling; a damaged file raises ValueError."""
    try:
        # the file opened here, so that it is closed whatever np.load does (it leaves a file it opened
        # itself open when the zip archive inside is damaged)
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as f:
            return {name: f[name] for name in f.files}
    except FileNotFoundError:
        raise
    except Exception as exc:  # OSError, EOFError, ValueError, zipfile.BadZipFile: a damaged archive
        raise ValueError(f"{path}: not a lenet_fast {what} file ({type(exc).__name__}: {exc})") from None


def save(model, path):
    """Write model to path as .npz: format version, variant, parameters (see LeNet5.save). Weights that are
    not finite (a diverged run) are refused: such a file could not be loaded."""
    arrays = {"__format__": np.array(FORMAT_VERSION), "__variant__": np.array(model.variant)}
    arrays.update(model.params)
    check_finite(arrays)
    write_npz(path, arrays)


def check_finite(params):
    """ValueError naming the first parameter that holds NaN or infinity."""
    for name, a in params.items():
        if a.dtype == np.float32 and not _core.all_finite(a):
            raise ValueError(f"{name} contains NaN or infinity (a diverged run?): not saved")


def load(path):
    """Load a model saved by LeNet5.save, or the weights of a training checkpoint. Never unpickles; a file
    that is not a complete lenet_fast model of a known format and variant raises ValueError saying why."""
    arrays = read_npz(path, "model")
    if "__checkpoint__" in arrays:  # the weights of a checkpoint; its other entries are for resuming
        arrays = {k: v for k, v in arrays.items()
                  if k in ("__variant__",) or not (k.startswith("__") or k.startswith("optimizer."))}
        arrays["__format__"] = np.array(FORMAT_VERSION)
    try:
        version = int(arrays.pop("__format__"))
        variant = str(arrays.pop("__variant__"))
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{path}: not a lenet_fast model file (no format version or variant)") from None
    if version != FORMAT_VERSION:
        raise ValueError(f"{path}: model format {version} is not supported (this version reads {FORMAT_VERSION})")
    if variant not in VARIANTS:
        raise ValueError(f"{path}: unknown variant {variant!r}")
    model = LeNet5(variant)
    try:
        model.set_params(arrays)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    return model
