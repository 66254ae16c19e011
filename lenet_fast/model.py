"""LeNet-5, as a table of layers run by the C engine.

Two variants share the kernels (docs/paper.md#architecture, docs/paper.md#modern-variant, and
lenet_fast.paper for the constants):

- ``classic``: the 1998 paper exactly: scaled-tanh squashing everywhere, trainable subsampling, C3 wired by
  Table I, Euclidean RBF output against fixed 7x12 digit bitmaps, LeCun's uniform initialisation; 60,000
  trainable parameters.
- ``modern``: what most tutorials call LeNet-5: ReLU, max pooling, C3 connected to all six S2 maps, a
  linear 84 -> 10 output read through softmax, He initialisation.

Options (docs/training.md): the modern variant's activation, dropout before C5 and F6 (rows of the
table, as in AlexNet before its full layers), and the initialisation.
"""
import functools
import math
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np

from . import _core, evaluation, export, int8, layers, paper, storage, train
from .inputs import as_batch
from .predictor import Predictor, unit_number
from .layers import RBF, Conv, Dropout, Full, Subsample


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
# The modern variant's activations (PyTorch's defaults: leaky slope 0.01, ELU alpha 1: csrc/lenet_fast.h)
ACTIVATIONS = ("relu", "leaky_relu", "elu", "tanh", "sigmoid")
INITS = ("paper", "xavier", "he")
DEFAULT_INIT = {"classic": "paper", "modern": "he"}
DROPOUT_BEFORE = ("c5", "f6")  # every full layer but the output, as AlexNet's classifier


def network_layers(variant, activation=None, dropout=0.0):
    """The variant's table with the options: activation (modern only; None: relu) in place of ReLU in c1,
    c3, c5 and f6, and with dropout > 0 a Dropout row before c5 and f6. ValueError for a bad option."""
    table = _layers(variant)
    activation = check_activation(variant, activation)
    dropout = check_dropout(dropout)
    rows = []
    for layer in table:
        if dropout and layer.name in DROPOUT_BEFORE:
            rows.append(Dropout("drop_" + layer.name, dropout))
        rows.append(layer._replace(act=activation) if layer.act == "relu" else layer)
    return tuple(rows)


def check_activation(variant, activation):
    """activation for variant: the modern one's name (None: "relu"); classic takes None only."""
    if variant == "classic":
        if activation is not None:
            raise ValueError("activation is for the modern variant: the classic one is the paper's network, "
                             f"its squashing function fixed (got activation={activation!r})")
        return None
    if activation is None:
        return "relu"
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {list(ACTIVATIONS)}, got {activation!r}")
    return activation


def check_dropout(dropout):
    """dropout as a float in [0, 1): the share of C5's and F6's inputs dropped in training."""
    return unit_number(dropout, "dropout must be a number in [0, 1)", top=False)


def param_shapes(variant):
    """The trainable parameters of a variant, in order: name -> (shape, fan-in), the fan-in a number or,
    for C3's table-wired kernels, an array broadcastable to the shape (75, 100 or 150 by map)."""
    return layers.param_shapes(_layers(variant), INPUT_SHAPE)


def flops_per_image(variant):
    """2 x the multiply-adds of one image's forward pass: convolutions (C3 by its table), full layers and
    the RBF distances; pooling and activations not counted."""
    return 2 * layers.macs(_layers(variant), INPUT_SHAPE)


def _layers(variant):
    try:
        return VARIANTS[variant]
    except (KeyError, TypeError):
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {variant!r}") from None


def init_params(variant, seed=0, init=None):
    """Freshly initialised parameters by init (None: the variant's default, DEFAULT_INIT):
    - "paper" (classic's): every weight, bias and coefficient uniform in (-2.4/F, 2.4/F), F the unit's
      fan-in (docs/paper.md#initialisation);
    - "xavier": Glorot uniform weights in +-sqrt(6 / (F + fan_out)), zero biases;
    - "he" (modern's): He-normal weights, std sqrt(2/F), zero biases.
    Trainable subsampling coefficients (classic) count as weights (F 4, fan_out 1). fan_out: fan_outs
    (C3's by Table I)."""
    init = check_init(variant, init)
    rng = np.random.default_rng(seed)
    params = OrderedDict()
    outs = fan_outs(variant)
    for name, (shape, fan) in param_shapes(variant).items():
        if init == "paper":
            a = rng.uniform(-1.0, 1.0, size=shape) * (paper.INIT_SCALE / fan)
        elif name.endswith(".bias"):
            a = np.zeros(shape)
        elif init == "he":
            a = rng.standard_normal(shape) * np.sqrt(2.0 / fan)
        else:
            a = rng.uniform(-1.0, 1.0, size=shape) * np.sqrt(6.0 / (fan + outs[name]))
        params[name] = np.ascontiguousarray(a, dtype=np.float32)
    return params


def check_init(variant, init):
    """init for variant: a name in INITS, None its default."""
    if init is None:
        _layers(variant)  # an unknown variant's error first
        return DEFAULT_INIT[variant]
    if init not in INITS:
        raise ValueError(f"init must be one of {list(INITS)}, got {init!r}")
    return init


def fan_outs(variant):
    """name -> the fan-out of each weight (a number, or an array broadcastable to its shape): how many
    outputs one input of the weight's layer feeds through one weight each. A convolution's input pixel
    feeds k*k positions of every output map connected to it: C1 6 * 25 = 150; C3 by Table I, input map c
    of S2 feeding the maps of its column (C3_TABLE[:, c].sum(): 10 for every S2 map, so 250), per packed
    kernel; dense C3 (modern) 16 * 25 = 400; a full layer its units; a trainable subsampling coefficient
    the one output of its window (1)."""
    out = OrderedDict()
    for layer, shape in layers.walk(_layers(variant), INPUT_SHAPE):
        for p in layer.params(shape):
            name = f"{layer.name}.{p}"
            if p == "bias":
                continue
            if layer.kind == "conv" and layer.table is not None:
                per_input = layer.table.sum(axis=0) * layer.kernel ** 2  # (input maps,)
                _, cols = np.nonzero(layer.table)  # the packed kernels' order
                out[name] = per_input[cols].astype(np.float64)[:, None, None]
            elif layer.kind == "conv":
                out[name] = layer.maps * layer.kernel ** 2
            elif layer.kind == "full":
                out[name] = layer.units
            else:
                out[name] = 1
    return out


def flat_params(arrays):
    """(flat, views): one float32 vector holding every array of the ordered mapping arrays, and an ordered
    mapping of the same names to views into it, filled with the arrays' values. The engine trains a flat
    vector: its gradients and optimizer states share this layout."""
    flat = np.empty(sum(np.size(a) for a in arrays.values()), dtype=np.float32)
    views = _views(flat, arrays)
    for name, a in arrays.items():
        views[name][...] = a
    return flat, views


def build_network(variant, params, rbf_centers=None, activation=None, dropout=0.0, round_outputs=False):
    """The C engine's Network for a variant and its options (network_layers), running on the given
    parameter arrays in place; with round_outputs, every layer's output is rounded to bfloat16 (the bf16
    model's arithmetic: BF16LeNet5)."""
    specs = [layer.spec(params, rbf_centers) for layer in network_layers(variant, activation, dropout)]
    if round_outputs:
        for spec in specs:
            spec["round"] = True
    return _core.Network(INPUT_SHAPE, specs)


def bf16_bits(a):
    """The bfloat16 nearest each value of the finite float32 array a, ties to even (as hardware converts),
    as its 16 bits (uint16, a's shape): float32's top half, rounded. A value beyond bfloat16's largest
    (3.39e38) gives infinity's bits."""
    u = np.ascontiguousarray(a, np.float32).view(np.uint32)
    # adding 0x7FFF, plus the kept half's lowest bit, carries into the top half exactly when the dropped
    # half is above one half, or one half with an odd kept half; no finite value overflows 32 bits
    return ((u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)).astype(np.uint16)


def from_bf16_bits(bits):
    """float32 values of bfloat16 bits (uint16): exact, bfloat16 being float32 with its low half zero."""
    return (np.asarray(bits, np.uint16).astype(np.uint32) << np.uint32(16)).view(np.float32)


def round_bf16(a):
    """float32 a rounded to bfloat16 (bf16_bits), as float32."""
    return from_bf16_bits(bf16_bits(a)).reshape(np.shape(a))


FORMAT_VERSION = 1
PRECISIONS = ("fp32", "bf16")  # a model file's __precision__ (none: fp32); LeNet5.quantize's dtypes: DTYPES
DTYPES = ("int8", "bf16")


class Params(Mapping):
    """The model's parameters, a fixed, ordered set: name -> float32 array. The arrays may be changed in place
    (the engine runs on them directly), but such edits are not synchronized with other threads: a
    prediction running meanwhile may see some old and some new values. Whole arrays are replaced through
    LeNet5.set_params, which checks shapes and values and is atomic for concurrent predictions. Names
    cannot be added or removed."""

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


class LeNet5(Predictor):
    """LeNet-5 (LeCun et al., 1998) on the C engine.

    LeNet5(variant="classic", seed=0, activation=None, dropout=0.0, init=None): "classic" is the paper's
    network exactly, "modern" the common simplification (module docstring). seed fixes the
    initialisation. activation (modern only): "relu" (default), "leaky_relu", "elu", "tanh" or "sigmoid".
    dropout: the share in [0, 1) of C5's and F6's inputs dropped in training (inverted dropout; the
    identity in predict and forward). init: "paper", "xavier" or "he" (init_params; default "paper" for
    classic, "he" for modern). A bad option raises ValueError naming it and the accepted values.

    Inputs, wherever an image batch is taken: one image or a batch of shape (28, 28), (32, 32),
    (N, 28, 28), (N, 32, 32) or (N, 1, 32, 32); uint8 pixels (or other integers) in 0-255 or floats in
    [0, 1], 0 the background (MNIST's polarity: light ink on dark). 28x28 digits are centred in the 32x32
    field and pixels are mapped to the paper's range: background -0.1, full ink 1.175. Input already in
    that form (float, (N, 32, 32) or (N, 1, 32, 32)) is passed with normalized=True and used as it is.

    precision: "fp32"; quantize() makes reduced-precision copies (docs/precision.md).
    """

    precision = "fp32"

    def __init__(self, variant="classic", seed=0, activation=None, dropout=0.0, init=None):
        self.layers = network_layers(variant, activation, dropout)
        self.variant = variant
        self.activation = check_activation(variant, activation)
        self.dropout = check_dropout(dropout)
        self.init = check_init(variant, init)
        self._flat, arrays = flat_params(init_params(variant, seed, init))
        self._params = Params(arrays)
        self._centers = paper.rbf_centers() if variant == "classic" else None
        self._net = build_network(variant, self._params, self._centers, activation, self.dropout)
        self._trainer = None
        self._temperature = 1.0
        self._outlier_limit = None

    @property
    def guard(self):
        """The _core.Guard between changes of the weights (its writers: fit for its whole run, set_params
        for one copy) and every other use of them (its readers: forward through the network itself, and
        gradient, curvature and save)."""
        return self._net.guard

    @property
    def params(self):
        """Ordered mapping name -> float32 array (see param_shapes for the names and shapes). Editing the
        arrays in place is not synchronized with predictions in other threads; set_params is (Params)."""
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

    def set_params(self, params):
        """Copy new values into every parameter; params must name each one with its exact shape, all finite
        (checked before anything changes: on an error the weights are as they were).

        Atomic for the model's other calls: it waits for the predictions (and gradient, curvature, save)
        running in other threads to finish, and those arriving during the copy wait for it, so each sees
        the weights all from before or all from after, and none is refused. RuntimeError while another
        thread is inside fit. (Edits in place through the views, params[name][...] = x, are not
        synchronized: make them while no other thread uses the model.)"""
        checked = _check_params(self.variant, params)  # before the guard: the copy alone excludes readers
        with self.guard.updating():
            for name, value in checked.items():
                self._params[name][...] = value

    def forward(self, x, normalized=False):
        """(N, 10) float32: the RBF distances (classic; smaller is likelier) or the logits (modern).
        FloatingPointError if they overflow (weights so large that float32 cannot hold the result)."""
        # No guard.reading() here: the network's forward is itself one of the guard's readers.
        x, normalize = as_batch(x, normalized)
        return self._net.forward(x, normalize, flat=True)

    def evaluate(self, x, y, normalized=False, loss=None, j=paper.MAP_J):
        """An evaluation.Evaluation of the images x against their labels y: accuracy and error (as predict
        classifies, nothing refused), the mean loss per image (the training loss: loss and j as fit takes
        them, the variant's default loss unless given), the (10, 10) confusion matrix (rows the true digit)
        and each digit's error. print() it for a report. ValueError for bad labels or no images."""
        x, normalize = as_batch(x, normalized)
        y = _core.check_labels(y, len(x), evaluation.CLASSES)
        out = self.forward(x, not normalize)
        per_image = self.trainer().losses(out, y, self.default_loss if loss is None else loss, j)
        return evaluation.evaluation(self._classes(out), y, per_image)

    def fit(self, images, labels, epochs=1, batch_size=None, optimizer=None, loss=None, j=paper.MAP_J,
            validation=None, seed=0, verbose=1, checkpoint=None, resume=None, normalized=False, augment=None,
            early_stopping=None, reduction="mean", reject_j=None):
        """Train on images (any form forward takes) and labels (0-9, or -1 for an image that is not a digit,
        with loss "map" or "xent": docs/training.md#non-digits); returns a lenet_fast.History: the list of
        one dict per epoch (epoch, loss (mean), error (the running training error: each pattern classified
        just before its update), val_error (with validation=(images, labels)), lr and seconds), which also
        gives columns (history["val_error"]) and history.best_epoch().

        optimizer: "sdlm" (classic's default: the paper's method, batch_size 1 by default; for batch sizes
        above 32 classic's default is "sgd"), "sgd", "adagrad", "rmsprop", "adam" (modern's default),
        "adamw" (batch_size 32 by default), or an instance from
        lenet_fast.optim with its own settings and schedule (docs/training.md). loss: "map" (classic's
        default, with the constant j; reject_j, j unless given, is the rubbish distance of the -1 images),
        "rbf" (the plain distance), "xent" (modern), or "hinge" (either; not with SDLM:
        docs/training.md#losses). seed fixes the shuffling and dropout's masks
        (docs/training.md#dropout). verbose: 0 silent, 1 a progress bar (tqdm, when installed) or a line per
        epoch, 2 a line per epoch. checkpoint=path saves after every epoch; resume=path continues such a run
        exactly (same data and settings; epochs is the total).
        augment(images, rng) -> images, if given, transforms each epoch's shuffled images (e.g.
        lenet_fast.distort.random_affine) with fit's seeded generator. early_stopping: a
        lenet_fast.EarlyStopping (stop when the validation error stops improving, and put back the best
        epoch's weights). reduction: "mean" (each batch's mean gradient, as PyTorch and Keras) or "sum"
        (docs/training.md#reduction). Every argument is checked before any work starts."""
        return train.fit(self, images, labels, epochs=epochs, batch_size=batch_size, optimizer=optimizer,
                         loss=loss, j=j, validation=validation, seed=seed, verbose=verbose, checkpoint=checkpoint,
                         resume=resume, normalized=normalized, augment=augment, early_stopping=early_stopping,
                         reduction=reduction, reject_j=reject_j)

    def gradient(self, images, labels, loss=None, j=paper.MAP_J, normalized=False):
        """(grads, losses): the gradient of the summed loss of the images, as an ordered mapping of the
        parameters' names to float32 arrays, and each image's loss."""
        with self.guard.reading():
            grad, losses = self._derivatives(images, labels, loss, j, normalized, second=False)
        if not (_core.all_finite(losses) and _core.all_finite(grad)):
            raise FloatingPointError("the loss or its gradient is not finite: float32 overflowed (weights or "
                                     "inputs far too large)")
        return _views(grad, self._params), losses

    def curvature(self, images, labels, loss=None, j=paper.MAP_J, normalized=False):
        """The diagonal of the Gauss-Newton approximation of the loss's Hessian, averaged over the images:
        one float32 vector in params_vector's layout (what SDLM divides its steps by:
        docs/paper.md#sdlm)."""
        with self.guard.reading():
            h, _ = self._derivatives(images, labels, loss, j, normalized, second=True)
        return h

    def _derivatives(self, images, labels, loss, j, normalized, second):
        """(the summed gradient, or the mean Gauss-Newton diagonal with second, and each image's loss) from
        the C trainer, which checks labels, loss and j."""
        x, normalize = as_batch(images, normalized)
        loss = self.default_loss if loss is None else loss
        scale = 1.0 / max(len(x), 1) if second else 1.0
        grad, losses, _ = self.trainer().gradient(x, labels, loss, j, scale, second, normalize)
        return grad, losses

    def trainer(self):
        """The C engine's _core.Trainer on this model's parameters (made on first use)."""
        if self._trainer is None:
            self._trainer = _core.Trainer(self._net, self._flat)
        return self._trainer

    def save(self, path):
        """Save to a .npz file (format version, variant, temperature, outlier limit and parameters; no pickled
        objects), atomically: the file is written beside its destination, flushed and moved into place, then
        the folder is flushed, so a reader, a failure, Ctrl-C, a kill or a full disk leaves the old file or
        the new one, whole.

        path may be a new file (mode 0666 less the umask) or a regular file, which keeps its mode (and its
        owner and group where this process may set them). A symbolic link is followed: its target gets the
        new file, the link stays. A directory raises IsADirectoryError; a device (/dev/null), FIFO or
        socket raises ValueError, untouched. If the file has other hard links, they keep the old contents
        (the new file replaces this name only: writing in place would give up atomicity). A temporary
        file left by a killed save to the same path is removed by the next save."""
        with self.guard.reading():
            save(self, path)

    def quantize(self, calibration_images=None, dtype="int8"):
        """A copy of this model that predicts in reduced precision (docs/precision.md); this model is
        unchanged. The copy keeps the variant, options, temperature and outlier limit; it predicts, saves,
        loads (lenet_fast.load) and pickles like this one, and is not trained (training is fp32: quantize
        after fit).

        dtype "int8": lenet_fast.int8.quantize(self, calibration_images): int8 weights (symmetric per output
        channel) and activations (scales from the calibration images, which it needs: some hundreds of
        digits of the kind the model will see, in any form predict takes), int32 accumulation.
        dtype "bf16": a BF16LeNet5: the weights, biases and every layer's output rounded to bfloat16 (nearest,
        ties to even), products and sums in float32; on every CPU (the fp32 kernels run it, rounding each
        layer's output). calibration_images is not needed.

        ValueError: dtype not one of "int8" and "bf16"; int8 without calibration_images; calibration images
        that are not an image batch predict takes (or hold no image); a model that is not fp32 itself.
        """
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(map(repr, DTYPES))}, got {dtype!r}")
        if self.precision != "fp32":
            raise ValueError(f"quantize an fp32 model: this one is already {self.precision}")
        if calibration_images is not None:
            try:
                x, normalize = as_batch(calibration_images, False)
                n = self._net.check_input(x, normalize)
            except TypeError as exc:
                raise ValueError(f"calibration_images: {exc}") from None
            if n == 0:
                raise ValueError("calibration_images holds no image")
        if dtype == "bf16":
            return BF16LeNet5.from_model(self)
        if calibration_images is None:
            raise ValueError("int8 quantization needs calibration_images: digits whose activations set its "
                             "scales (some hundreds, of the kind the model will see)")
        return int8.quantize(self, calibration_images)

    def to_onnx(self, path=None, pixels=False):
        """This model as a standard ONNX graph, written to path (returned) or, with path None, returned as
        bytes; pixels=True makes its input (N, 28, 28) uint8 pixels instead of (N, 1, 32, 32) float32 in the
        paper's range. lenet_fast.export.export_onnx says what the graph takes, gives and carries, and its
        errors (docs/export.md); it needs the onnx package (pip install "lenet_fast[onnx]")."""
        return export.export_onnx(self, path, pixels=pixels)

    def __reduce__(self):
        """Pickling, copy.copy and copy.deepcopy: a model's copy is what its file holds (format version,
        variant, temperature, outlier limit and a copy of every parameter, as plain NumPy arrays; never the
        engine's objects), rebuilt by the checks load() makes, so it predicts bit-identically; a copy shares
        nothing with the original.
        The parameters are copied under the guard, a consistent snapshot: RuntimeError while another thread
        is inside fit."""
        with self.guard.reading():
            arrays = {name: np.array(a, copy=True) for name, a in _entries(self).items()}
        return _from_entries, (arrays, "a pickled LeNet5")

    def options(self):
        """The options other than their defaults (activation, dropout, init), as LeNet5 takes them."""
        opts = {}
        if self.activation not in (None, "relu"):
            opts["activation"] = self.activation
        if self.dropout:
            opts["dropout"] = self.dropout
        if self.init != DEFAULT_INIT[self.variant]:
            opts["init"] = self.init
        return opts

    # The options a model file and a checkpoint carry (name -> the most bytes its entry takes): the
    # architecture's; the initialisation is spent once the weights exist.
    OPTION_LIMITS = {"__activation__": storage.text_bytes(storage.NAME_CHARS), "__dropout__": storage.NUMBER_BYTES}

    def option_entries(self):
        """OPTION_LIMITS' entries of this model, each only when it is not its default (options()), so that a
        default model's file is the one earlier versions wrote and read."""
        return {f"__{k}__": np.array(v) for k, v in self.options().items() if f"__{k}__" in self.OPTION_LIMITS}

    def __repr__(self):
        opts = "".join(f", {k}={v!r}" for k, v in self.options().items())
        precision = "" if self.precision == "fp32" else f", precision={self.precision!r}"
        return f"{type(self).__name__}(variant={self.variant!r}{opts}{precision}, params={self.n_params})"


class BF16LeNet5(LeNet5):
    """A LeNet5 in bfloat16 arithmetic (LeNet5.quantize(dtype="bf16"); docs/precision.md): its weights and
    biases are bfloat16 values (held in float32, where they are exact), and every layer's output is rounded
    to bfloat16 (nearest, ties to even) before the next layer reads it; products and sums are float32, as in
    bf16 hardware's dot products. It runs on the fp32 kernels on every CPU, with the same results on any
    thread count and (within an instruction-set path) any batch.

    It predicts, calibrates, evaluates, saves (the weights as their 16 bits: half the file), loads and
    pickles like a LeNet5. set_params rounds the values it is given to bfloat16 (edits in place through
    params should keep them bfloat16 values). Training is fp32: fit, gradient and curvature raise
    ValueError, as does to_onnx (the ONNX graph is fp32).
    """

    precision = "bf16"

    def __init__(self, variant="classic", seed=0, activation=None, dropout=0.0, init=None):
        super().__init__(variant, seed, activation, dropout, init)
        self._flat[...] = round_bf16(self._flat)
        self._net = build_network(variant, self._params, self._centers, activation, self.dropout,
                                  round_outputs=True)

    @classmethod
    def from_model(cls, model):
        """model (an fp32 LeNet5) in bfloat16: its weights rounded, its variant, options, temperature and
        outlier limit kept."""
        with model.guard.reading():
            params = {name: np.array(a, copy=True) for name, a in model.params.items()}
        bf16 = cls(model.variant, activation=model.activation, dropout=model.dropout)
        bf16.set_params(params)
        bf16.temperature = model.temperature
        bf16.outlier_limit = model.outlier_limit
        return bf16

    def set_params(self, params):
        """LeNet5.set_params, each value rounded to bfloat16 first (the caller's arrays untouched)."""
        checked = _check_params(self.variant, params)
        super().set_params({name: round_bf16(a) for name, a in checked.items()})

    def _fp32_only(self, what):
        raise ValueError(f"{what}: training is fp32: quantize after fit (this model is {self.precision})")

    def fit(self, *args, **kwargs):
        self._fp32_only("fit")

    def gradient(self, *args, **kwargs):
        self._fp32_only("gradient")

    def curvature(self, *args, **kwargs):
        self._fp32_only("curvature")

    def to_onnx(self, path=None, pixels=False):
        raise ValueError(f"the ONNX export is fp32: export the fp32 model (this one is {self.precision})")


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


def save(model, path):
    """Write model to path as .npz: format version, variant, temperature, outlier limit, parameters (see
    LeNet5.save). Weights that are not finite (a diverged run) are refused: such a file could not be
    loaded."""
    arrays = _entries(model)
    storage.check_finite(arrays)
    storage.write_npz(path, arrays)


@functools.cache  # the same for every file: computed (optimizers bound to each variant's size) once
def _file_limits():
    """storage.read_npz's limits for the files load() reads: a model or a checkpoint (of any optimizer) of
    either variant. Read only: the one dict is shared by every load."""
    limits = {}
    for variant in VARIANTS:
        sizes = {name: math.prod(shape) for name, (shape, _) in param_shapes(variant).items()}
        for name, most in train.checkpoint_limits(sizes, LeNet5.OPTION_LIMITS).items():
            limits[name] = max(limits.get(name, 0), most)
    limits.update(__temperature__=storage.NUMBER_BYTES, __outlier_limit__=storage.NUMBER_BYTES,
                  __precision__=storage.text_bytes(storage.NAME_CHARS))
    return limits


def load(path):
    """Load a model saved by LeNet5.save, or the weights of a training checkpoint. Never unpickles; a file
    that is not a complete lenet_fast model of a known format and variant raises ValueError saying why.
    Member names and declared sizes are checked before any array is read, so a crafted file is refused
    at little cost in memory (an unknown name, or more bytes than a checkpoint's largest entry of that
    name). An int8 model's file (Int8LeNet5.save) gives an Int8LeNet5."""
    if int8.is_int8_file(path):
        return int8.Int8LeNet5.load(path)
    arrays = storage.read_npz(path, "model", _file_limits())
    if "__checkpoint__" in arrays:  # the weights of a checkpoint; its other entries are for resuming
        arrays = {k: v for k, v in arrays.items()
                  if k == "__variant__" or k in LeNet5.OPTION_LIMITS
                  or not (k.startswith("__") or k.startswith("optimizer."))}
        arrays["__format__"] = np.array(FORMAT_VERSION)
    return _from_entries(arrays, path)


def _entries(model):
    """What a model file holds (format version, variant, temperature, outlier limit when set, parameters),
    as plain arrays: the parameters are
    the model's own arrays, not copies."""
    arrays = {"__format__": np.array(FORMAT_VERSION), "__variant__": np.array(model.variant),
              "__temperature__": np.array(model.temperature, dtype=np.float64)}
    if model.outlier_limit is not None:
        arrays["__outlier_limit__"] = np.array(model.outlier_limit, dtype=np.float64)
    arrays.update(model.option_entries())
    if model.precision == "bf16":  # fp32 files hold no precision: those earlier versions wrote and read
        arrays["__precision__"] = np.array(model.precision)
        arrays.update({name: bf16_bits(a) for name, a in model.params.items()})
    else:
        arrays.update(model.params)
    return arrays


def _from_entries(arrays, source):
    """A new LeNet5 from a model file's entries (_entries' form), checked: ValueError, naming source, for
    a missing or unknown format version or variant, a temperature or outlier limit that is not a number
    (positive for the temperature) and finite, or parameters of the wrong names, shapes or values.
    load() and unpickling (LeNet5.__reduce__) both come through here."""
    if not isinstance(arrays, Mapping):
        raise ValueError(f"{source}: not a lenet_fast model (expected its entries, got {type(arrays).__name__})")
    arrays = dict(arrays)
    try:
        version = int(arrays.pop("__format__"))
        variant = str(arrays.pop("__variant__"))
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{source}: not a lenet_fast model file (no format version or variant)") from None
    if version != FORMAT_VERSION:
        raise ValueError(f"{source}: model format {version} is not supported (this version reads {FORMAT_VERSION})")
    if variant not in VARIANTS:
        raise ValueError(f"{source}: unknown variant {variant!r}")
    precision = str(arrays.pop("__precision__", "fp32"))
    if precision not in PRECISIONS:
        raise ValueError(f"{source}: unknown precision {precision!r} (this version reads {', '.join(PRECISIONS)})")
    if precision == "bf16":
        arrays = _from_bf16_entries(arrays, source)
    cls = BF16LeNet5 if precision == "bf16" else LeNet5
    try:
        # optional: files from before these options existed hold neither (relu, no dropout)
        activation = arrays.pop("__activation__", None)
        activation = None if activation is None else str(activation)
        dropout = arrays.pop("__dropout__", 0.0)
        dropout = float(dropout) if isinstance(dropout, np.ndarray) and dropout.shape == () else dropout
        model = cls(variant, activation=activation, dropout=dropout)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{source}: {exc}") from None
    try:
        # optional: files from before calibration existed hold neither (temperature 1, no outlier limit)
        model.temperature = arrays.pop("__temperature__", 1.0)
        model.outlier_limit = arrays.pop("__outlier_limit__", None)
        model.set_params(arrays)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{source}: {exc}") from None
    return model


def _from_bf16_entries(arrays, source):
    """A bf16 file's entries with its parameters (uint16 bfloat16 bits) as float32 values; ValueError, naming
    source, for a parameter of another dtype."""
    out = {}
    for name, a in arrays.items():
        if name.startswith("__"):
            out[name] = a
        elif not isinstance(a, np.ndarray) or a.dtype != np.uint16:
            raise ValueError(f"{source}: {name} must hold bfloat16 bits (uint16) in a bf16 model")
        else:
            out[name] = from_bf16_bits(a)
    return out
