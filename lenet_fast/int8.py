"""int8 inference: quantize(model, calibration_images) gives an Int8LeNet5, which predicts through the integer
C kernels (csrc/int8.h has the arithmetic, docs/precision.md the scheme and its measured accuracy).

- Weights: int8, symmetric per output channel (a convolution's map, a full layer's unit): w ~ s_w q,
  q in -64..64, s_w = max |w| / 64 (WEIGHT_LEVELS: the bound AVX2's exact byte products need).
- Activations: uint8 codes per tensor, asymmetric: y ~ s (q - z), from the range of each layer's output over
  the calibration images as the float32 model computes it (with 0 inside the range, so that ReLU's zero and
  an exact zero are codes). The input is the pixels themselves (the paper's normalization is exactly
  s = 1.275 / 255, z = 20). Max pooling runs on the codes; classic's RBF output and modern's last layer
  give float32, so that predict, predict_proba, the temperature and reject work as for the float32 model.

This module does not import lenet_fast.model (which imports it for LeNet5.quantize): it reads the model
through its public attributes (variant, layers, params, rbf_centers, temperature, outlier_limit, guard), and
a file holds its own layer list.
"""
import json

import numpy as np

from . import _core, paper, storage
from .inputs import as_batch
from .predictor import Predictor, check_finite_number

PRECISION = "int8"
FORMAT_VERSION = 1
# int8 weights in -64..64: symmetric (-w is representable whenever w is), and within the bound that keeps
# AVX2's byte products exact (csrc/simd_int8.h); 129 levels per channel cost no measurable accuracy
WEIGHT_LEVELS = _core.I8_WEIGHT_MAX
CODES = 255  # uint8 activation codes 0..255
INPUT_SHAPE = (1, paper.INPUT_SIZE, paper.INPUT_SIZE)
# The pixels' codes: the paper's input normalization x = RANGE p / 255 + BACKGROUND is s (p - z) with:
INPUT_SCALE = (paper.INPUT_INK - paper.INPUT_BACKGROUND) / CODES
INPUT_ZERO = round(-paper.INPUT_BACKGROUND / INPUT_SCALE)  # 20, exactly (checked by the tests)
CLASSES = 10
# A file's members: the model's settings, then per layer i "layer{i}.<field>" (_FIELDS)
_FIELDS = ("weight", "weight_scale", "bias", "coef", "centers", "out_scale", "out_zero")
_MOST_BYTES = 1 << 22  # any one array of a LeNet-5 layer is far smaller (C5's int8 weights: 48,000 bytes)
_MAX_LAYERS = 16


def quantize(model, calibration_images):
    """An Int8LeNet5 of model (a LeNet5) with its activations' ranges from calibration_images (any batch
    LeNet5.forward takes; 1,000 to 5,000 digits are plenty: docs/precision.md). The model's temperature and
    outlier limit carry over. ValueError for an empty batch or one forward refuses (NaN, floats outside
    [0, 1], a wrong shape); TypeError for a model that is not a LeNet5."""
    for attr in ("variant", "layers", "params", "rbf_centers", "guard"):
        if not hasattr(model, attr):
            raise TypeError(f"quantize takes a LeNet5, got {type(model).__name__}")
    x, normalize = as_batch(calibration_images, False)
    if len(x) == 0:
        raise ValueError("calibration_images holds no image")
    if not normalize:
        raise ValueError("calibration_images must be pixels, not normalized input")
    with model.guard.reading():  # the weights all from one moment; fit refused meanwhile
        params = {name: np.array(a, copy=True) for name, a in model.params.items()}
        centers = model.rbf_centers
        rows = [layer for layer in model.layers if layer.kind != "dropout"]  # the identity at inference
        ranges = _output_ranges(rows, params, centers, x)
    quantized = [_quantize_layer(layer, params, centers, ranges[i], i == len(rows) - 1)
                 for i, layer in enumerate(rows)]
    return Int8LeNet5(model.variant, quantized, model.temperature, model.outlier_limit)


def _output_ranges(rows, params, centers, x):
    """(low, high) of each layer's float32 output over the images x, from a float32 Network of the first k
    layers (as maps.py makes); None where the output stays float32 (the last layer, and classic's F6, whose
    output the RBF layer takes in float32) or keeps its input's codes (max pooling)."""
    ranges = []
    for k in range(1, len(rows) + 1):
        if k == len(rows) or rows[k].kind == "rbf" or (rows[k - 1].kind == "subsample" and rows[k - 1].pool == "max"):
            ranges.append(None)
            continue
        net = _core.Network(INPUT_SHAPE, [layer.spec(params, centers) for layer in rows[:k]])
        y = net.forward(x, True, flat=True)
        ranges.append((float(y.min()), float(y.max())))
    return ranges


def _codes(low, high):
    """(scale, zero point) of uint8 codes covering [low, high] widened to hold 0 (ReLU's zero, and a
    padding of zeros, then exact codes)."""
    low, high = min(low, 0.0), max(high, 0.0)
    scale = (high - low) / CODES
    if not scale > 0:  # a layer that is all zeros on these images
        return 1.0, 0
    return float(np.float32(scale)), int(np.clip(round(-low / scale), 0, CODES))


def _weights(w):
    """(q, scale): w (out, ...) float as int8 (out, taps) symmetric per output row, and each row's scale."""
    w = np.asarray(w, dtype=np.float64).reshape(len(w), -1)
    top = np.abs(w).max(axis=1)
    scale = np.where(top > 0, top / WEIGHT_LEVELS, 1.0)
    q = np.clip(np.rint(w / scale[:, None]), -WEIGHT_LEVELS, WEIGHT_LEVELS).astype(np.int8)
    return q, scale.astype(np.float32)


def _quantize_layer(layer, params, centers, out_range, last):
    """One layer of the float32 model as Int8LeNet5 keeps it (a dict: kind, options and arrays)."""
    p = layer.name + "."
    codes = {} if out_range is None else dict(zip(("out_scale", "out_zero"), _codes(*out_range)))
    if layer.kind == "conv":
        w = params[p + "weight"]
        if layer.table is not None:  # Table I's packed kernels into a dense (maps, inputs, k, k), zero elsewhere
            dense = np.zeros(layer.table.shape + w.shape[1:], dtype=np.float32)
            dense[layer.table] = w
            w = dense
        q, scale = _weights(w)
        return dict(kind="conv", act=layer.act, kernel=layer.kernel, weight=q, weight_scale=scale,
                    bias=params[p + "bias"], **codes)
    if layer.kind == "subsample":
        if layer.pool == "max":
            return dict(kind="pool", pool="max")
        if layer.pool != "trainable":
            raise ValueError(f"int8 has no {layer.pool!r} pooling")
        return dict(kind="pool", pool="trainable", act=layer.act, coef=params[p + "coef"],
                    bias=params[p + "bias"], **codes)
    if layer.kind == "full":
        q, scale = _weights(params[p + "weight"].T)  # (In, Out) -> rows per output
        return dict(kind="full", act=layer.act, weight=q, weight_scale=scale, bias=params[p + "bias"], **codes)
    if layer.kind == "rbf":
        return dict(kind="rbf", centers=np.asarray(centers, dtype=np.float32))
    raise ValueError(f"int8 has no {layer.kind!r} layer")


def _engine_layers(quantized):
    """The _core.Int8Network layer dicts of Int8LeNet5's layers: the zero points folded out of the sums
    (offset = z_in x the row's weight sum), the scales multiplied (s_in s_w), rows padded to whole
    _core.I8_DEPTH; each layer's input codes are the previous code layer's (the first's, the pixels)."""
    specs = []
    s, z = INPUT_SCALE, INPUT_ZERO
    for layer in quantized:
        kind = layer["kind"]
        spec = dict(kind=kind)
        if kind in ("conv", "full"):
            q = layer["weight"]
            depth = -(-q.shape[1] // _core.I8_DEPTH) * _core.I8_DEPTH
            weight = np.zeros((len(q), depth), dtype=np.int8)
            weight[:, : q.shape[1]] = q
            spec.update(out=len(q), weight=weight, offset=(z * q.astype(np.int64).sum(axis=1)).astype(np.int32),
                        scale=(s * layer["weight_scale"].astype(np.float64)).astype(np.float32))
            if kind == "conv":
                spec["kernel"] = layer["kernel"]
        elif kind == "pool" and layer["pool"] == "trainable":
            coef = layer["coef"]
            spec.update(offset=np.full(len(coef), 4 * z, dtype=np.int32),
                        scale=(s * coef.astype(np.float64)).astype(np.float32))
        elif kind == "rbf":
            spec["centers"] = layer["centers"]
        if kind == "pool":
            spec["pool"] = layer["pool"]
        if "bias" in layer:
            spec.update(bias=layer["bias"], act=layer["act"], out_scale=layer.get("out_scale"),
                        out_zero=layer.get("out_zero", 0))
        if layer.get("out_scale") is not None:
            s, z = layer["out_scale"], layer["out_zero"]
        specs.append(spec)
    return specs


class Int8LeNet5(Predictor):
    """A LeNet5 quantized to int8 (quantize() makes one; Int8LeNet5.load reads one). Inference only.

    forward(x) gives what LeNet5.forward gives, (N, 10) float32 (classic: RBF distances; modern: logits), from
    the int8 kernels; predict, predict_with_proba, predict_proba, outlier_score, score and calibrate are
    LeNet5's (lenet_fast.predictor; the temperature and outlier limit start as the source model's). Inputs:
    LeNet5's (uint8 pixels, or floats in [0, 1], which become codes round(255 p); normalized input).
    Models save (save(path), an .npz with precision "int8") and pickle."""

    precision = PRECISION

    def __init__(self, variant, layers, temperature=1.0, outlier_limit=None):
        if variant not in ("classic", "modern"):
            raise ValueError(f"variant must be 'classic' or 'modern', got {variant!r}")
        self.variant = variant
        self._layers = [dict(layer) for layer in layers]
        self._net = _core.Int8Network(INPUT_SHAPE, _engine_layers(self._layers))
        last = self._layers[-1]["kind"] if self._layers else None
        if self._net.codes or self._net.output_shape != (CLASSES, 1, 1) or (last == "rbf") != (variant == "classic"):
            raise ValueError(f"not a {variant} LeNet-5: its output must be {CLASSES} "
                             f"{'RBF distances' if variant == 'classic' else 'float32 logits'}")
        self.temperature = temperature
        self.outlier_limit = outlier_limit

    def forward(self, x, normalized=False):
        """(N, 10) float32: RBF distances (classic) or logits (modern), through the int8 kernels. x: pixels,
        as LeNet5.forward takes them; normalized=True: floats already in the paper's input range (N, 32, 32)
        or (N, 1, 32, 32), which become the codes of that range (exact for input made from pixels)."""
        return self._net.forward(_codes_of_input(x, normalized))

    def save(self, path):
        """Write to path as .npz (precision "int8", format version, variant, temperature, outlier limit,
        the layer list and its arrays; no pickled objects), atomically as LeNet5.save."""
        storage.write_npz(path, self._entries())

    @classmethod
    def load(cls, path):
        """An Int8LeNet5 from a file save() wrote. Never unpickles; ValueError for any other file (a float32
        model's included), a crafted or corrupt one."""
        return _from_entries(storage.read_npz(path, "int8 model", _limits()), path)

    def _entries(self):
        arrays = {"__format__": np.array(FORMAT_VERSION), "__precision__": np.array(PRECISION),
                  "__variant__": np.array(self.variant), "__temperature__": np.array(self.temperature)}
        if self.outlier_limit is not None:
            arrays["__outlier_limit__"] = np.array(self.outlier_limit)
        arrays["__layers__"] = np.array(json.dumps([{k: v for k, v in layer.items() if k in _OPTIONS}
                                                    for layer in self._layers]))
        for i, layer in enumerate(self._layers):
            for field in _FIELDS:
                if layer.get(field) is not None:
                    arrays[f"layer{i}.{field}"] = np.array(layer[field], dtype=_DTYPES[field], copy=True)
        return arrays

    def __reduce__(self):
        """Pickling and copies: what the file holds, rebuilt through load's checks."""
        return _from_entries, (self._entries(), "a pickled Int8LeNet5")

    def __repr__(self):
        return f"Int8LeNet5(variant={self.variant!r}, precision='int8', isa={_core.int8_isa()!r})"


_OPTIONS = ("kind", "act", "pool", "kernel")  # a layer's settings in the file's layer list (JSON)
_DTYPES = {"weight": np.int8, "weight_scale": np.float32, "bias": np.float32, "coef": np.float32,
           "centers": np.float32, "out_scale": np.float32, "out_zero": np.uint8}


def _limits():
    limits = {"__format__": storage.NUMBER_BYTES, "__precision__": storage.text_bytes(storage.NAME_CHARS),
              "__variant__": storage.text_bytes(storage.NAME_CHARS), "__temperature__": storage.NUMBER_BYTES,
              "__outlier_limit__": storage.NUMBER_BYTES, "__layers__": storage.text_bytes(4096)}
    limits.update({f"layer{i}.{field}": _MOST_BYTES for i in range(_MAX_LAYERS) for field in _FIELDS})
    return limits


def is_int8_file(path):
    """True when path is a model file whose precision member says "int8" (read without loading the rest)."""
    precision = storage.peek_npz(path, "__precision__", _limits()["__precision__"])
    return precision is not None and precision.shape == () and str(precision) == PRECISION


def _from_entries(arrays, source):
    """An Int8LeNet5 from a file's entries (Int8LeNet5._entries' form), checked: ValueError naming source."""
    try:
        arrays = dict(arrays)
        version = int(arrays.pop("__format__"))
        precision = str(arrays.pop("__precision__"))
        variant = str(arrays.pop("__variant__"))
        listing = json.loads(str(arrays.pop("__layers__")))
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{source}: not an int8 lenet_fast model (no format, precision, variant or layer list)"
                         ) from None
    if precision != PRECISION:
        raise ValueError(f"{source}: precision {precision!r} is not int8")
    if version != FORMAT_VERSION:
        raise ValueError(f"{source}: int8 model format {version} is not supported (this version reads "
                         f"{FORMAT_VERSION})")
    try:
        temperature = arrays.pop("__temperature__", 1.0)
        outlier_limit = arrays.pop("__outlier_limit__", None)
        if not isinstance(listing, list) or not 1 <= len(listing) <= _MAX_LAYERS:
            raise ValueError("the layer list must be a list of 1 to 16 layers")
        layers = []
        for i, options in enumerate(listing):
            if not isinstance(options, dict) or set(options) - set(_OPTIONS):
                raise ValueError(f"layer {i}'s settings are not a dict of {list(_OPTIONS)}")
            layer = dict(options)
            for field in _FIELDS:
                a = arrays.pop(f"layer{i}.{field}", None)
                if a is not None:
                    if a.dtype != _DTYPES[field]:
                        raise ValueError(f"layer{i}.{field} must be {np.dtype(_DTYPES[field]).name}, got {a.dtype}")
                    if field in ("out_scale", "out_zero"):
                        a = a.item() if a.shape == () else None
                        if a is None:
                            raise ValueError(f"layer{i}.{field} must be one number")
                    layer[field] = a
            if "weight_scale" in layer and not (np.isfinite(layer["weight_scale"]).all()
                                                and (layer["weight_scale"] > 0).all()):
                raise ValueError(f"layer {i}'s weight scales must be positive and finite")
            if "weight" in layer and (layer["weight"].ndim != 2 or "weight_scale" not in layer
                                      or layer["weight_scale"].shape != (len(layer["weight"]),)):
                raise ValueError(f"layer {i}'s weight must be (out, inputs) with one scale per output")
            if "out_scale" in layer:
                layer["out_scale"] = check_finite_number(layer["out_scale"], f"layer {i}'s out_scale", positive=True)
            layers.append(layer)
        if arrays:
            raise ValueError(f"unexpected members {sorted(arrays)[:5]}")
        model = Int8LeNet5(variant, layers, temperature, outlier_limit)
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"{source}: {exc}") from None
    return model


def _codes_of_input(x, normalized):
    """x (any image batch LeNet5.forward takes) as the uint8 (N, H, W) batch the int8 network takes: float
    pixels in [0, 1] become round(255 p) (exact for pixels that were uint8 / 255); normalized input x (the
    paper's range) the pixel codes of x = INPUT_SCALE (p - INPUT_ZERO), clipped to 0..255."""
    x, normalize = as_batch(x, normalized)
    if x.dtype == np.uint8:
        return x
    if not _core.all_finite(x):
        raise ValueError("x contains NaN or infinity")
    if normalize:
        if x.size and (x.min() < 0 or x.max() > 1):
            raise ValueError("float pixels must lie in [0, 1] (0 = background, 1 = ink)")
        return np.rint(x * np.float32(CODES)).astype(np.uint8)
    if x.shape[-2:] != INPUT_SHAPE[1:]:
        raise ValueError(f"normalized input is the {INPUT_SHAPE[1]}x{INPUT_SHAPE[2]} field, got {x.shape}")
    codes = np.rint(x.reshape(len(x), *x.shape[-2:]).astype(np.float64) / INPUT_SCALE + INPUT_ZERO)
    return np.clip(codes, 0, CODES).astype(np.uint8)
