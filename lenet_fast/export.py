"""ONNX export: a LeNet5 as a standard ONNX graph (opset 17) that any ONNX runtime runs, with its metadata
(docs/export.md). The onnx package builds the graph: it is the [onnx] extra, imported only inside
export_onnx, so that importing lenet_fast never loads it.

How each layer is written, looping over the model's layer objects (lenet_fast.layers):
- Conv: an ONNX Conv. Classic C3, wired by the paper's Table I, is a dense 16 x 6 convolution whose
  missing kernels are zero (dense_kernels): standard operators have no sparse-table convolution.
- Subsample "trainable": coef * (the 2x2 window's sum) + bias, a depthwise Conv (one group per map) of
  2x2 kernels all equal to the map's coefficient, stride 2; "max": MaxPool.
- Full: Flatten (after a convolution's maps, channel-major as lenet_fast flattens them), then Gemm.
- Dropout: the identity at inference, so no node.
- RBF: the squared Euclidean distances of F6's outputs to the fixed centres, from the differences (as the
  engine computes them): Sub, Mul, ReduceSum.
- Activations: the paper's squashing A tanh(S a) as Mul, Tanh, Mul; relu, leaky_relu (slope 0.01), elu
  (alpha 1), tanh and sigmoid as their ONNX operators, with the engine's constants (csrc/lenet_fast.h).
"""
import json
import os

import numpy as np

from . import paper, storage
from ._version import __version__

ONNX_EXTRA = 'pip install "lenet_fast[onnx]"'
OPSET = 17
IR_VERSION = 8  # what opset 17 needs; ONNX Runtime reads it since 1.13
LEAKY_SLOPE = 0.01  # csrc/lenet_fast.h's LF_LEAKY_SLOPE and LF_ELU_ALPHA
ELU_ALPHA = 1.0
INPUT = "x"  # the graph's input: (N, 1, 32, 32) float32 in the paper's range
PIXELS = "pixels"  # the input of the pixels=True form: (N, 28, 28) uint8
OUTPUT = {"classic": "distances", "modern": "logits"}


def export_onnx(model, path=None, pixels=False):
    """model (a lenet_fast.LeNet5 of either variant, with any options) as an ONNX model: written to path
    atomically (as LeNet5.save writes, storage.write_file) and path returned, or, with path None, returned
    as bytes. Opset 17, IR version 8; it passes onnx.checker.check_model.

    Input: "x", (N, 1, 32, 32) float32 already in the paper's range (background -0.1, ink 1.175: what
    model.forward(x, normalized=True) takes). With pixels=True instead: "pixels", (N, 28, 28) uint8 MNIST
    pixels (0 background, 255 ink), which the graph pads to 32x32 and maps to the paper's range as the
    engine does. N is free.
    Output: (N, 10) float32, model.forward's: "distances" (classic: the squared distances to the RBF
    centres, the digit their argmin) or "logits" (modern: the digit their argmax). The model's temperature
    is not applied: it is in the metadata, for probabilities softmax(-distances / T) or softmax(logits / T).
    ONNX Runtime's output equals model.forward within 1e-5 (1 + |forward|): 1e-5 absolute for outputs
    near 0, 1e-5 relative for the large ones (classic distances reach hundreds, modern logits tens), about
    as far as forward itself is from a float64 computation (docs/export.md; tests/test_export.py).
    Metadata: producer lenet_fast and its version, a doc string saying what the output is, and the
    properties variant, options (JSON of model.options()), temperature, input and output (the tensors'
    names), and outlier_limit when the model has one.

    The weights are read under the model's guard: RuntimeError while another thread is inside fit.
    TypeError for anything but a LeNet5 (an Ensemble: export its members); FileNotFoundError when path's
    folder does not exist, IsADirectoryError or ValueError for a destination LeNet5.save refuses, all
    before any work; ImportError naming the [onnx] extra without the onnx package."""
    _check_model(model)
    if path is not None:
        path = _check_path(path)
    onnx = _onnx()
    with model.guard.reading():  # a consistent snapshot of the weights: the initializers are copies
        proto = _build(onnx, model, bool(pixels))
    onnx.checker.check_model(proto)
    data = proto.SerializeToString()
    if path is None:
        return data
    storage.write_file(path, lambda f: f.write(data))
    return path


def dense_kernels(model, name):
    """(dense (maps, input maps, k, k) float32 kernels of conv layer name, its (maps, input maps) 0/1 mask
    or None): a table-wired convolution's packed kernels placed in a dense array, the missing ones zero."""
    layer = next(l for l in model.layers if l.name == name)
    w = np.asarray(model.params[name + ".weight"])
    if layer.table is None:
        return w, None
    dense = np.zeros(layer.table.shape + w.shape[1:], np.float32)
    dense[layer.table] = w  # packed in the table's row-major order (lenet_fast.h)
    return dense, layer.table.astype(np.float32)


def _check_model(model):
    """TypeError unless model is a LeNet5 (told by its layer table, parameters and guard: model.py imports
    this module, so it cannot import model.py)."""
    if hasattr(model, "members"):
        raise TypeError("export_onnx takes one LeNet5, not an Ensemble: export each of its members "
                        "(ensemble.members) and average their probabilities")
    if not all(hasattr(model, a) for a in ("layers", "params", "variant", "guard", "temperature", "options")):
        raise TypeError(f"export_onnx takes a lenet_fast.LeNet5, got {type(model).__name__}")


def _check_path(path):
    """path as a str, refused before any work when no file could be written there."""
    try:
        path = os.fspath(path)
    except TypeError:
        raise TypeError(f"path must be a file path or None, got {path!r}") from None
    storage.destination(storage.in_existing_folder(path))
    return path


def _onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError(f"ONNX export needs the onnx package: {ONNX_EXTRA}") from None
    return onnx


class _Graph:
    """The nodes and initializers of a graph being built; node() names each output after its node."""

    def __init__(self, onnx):
        self.helper, self.numpy_helper = onnx.helper, onnx.numpy_helper
        self.nodes, self.inits = [], []

    def const(self, name, value, dtype=np.float32):
        self.inits.append(self.numpy_helper.from_array(np.ascontiguousarray(value, dtype), name))
        return name

    def node(self, op, inputs, **attrs):
        out = f"{op.lower()}{len(self.nodes)}"
        self.nodes.append(self.helper.make_node(op, inputs, [out], **attrs))
        return out


def _build(onnx, model, pixels):
    """The ModelProto of model (export_onnx checks it)."""
    helper, TensorProto = onnx.helper, onnx.TensorProto
    g = _Graph(onnx)
    size = paper.INPUT_SIZE
    if pixels:
        source = helper.make_tensor_value_info(PIXELS, TensorProto.UINT8, ["N", paper.DIGIT_SIZE, paper.DIGIT_SIZE])
        x = _normalize(g, PIXELS)
    else:
        source = helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["N", 1, size, size])
        x = INPUT
    flat = False
    for layer in model.layers:
        build = _LAYERS.get(layer.kind)
        if build is None:
            raise ValueError(f"the ONNX export has no builder for the {layer.kind!r} layer {layer.name!r}")
        x, flat = build(g, model, layer, x, flat)
        x = _activation(g, layer, x)
    output = OUTPUT[model.variant]
    g.nodes[-1].output[0] = output
    graph = helper.make_graph(g.nodes, f"lenet5_{model.variant}", [source],
                              [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["N", 10])],
                              initializer=g.inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="lenet_fast", producer_version=__version__,
                              doc_string=_doc(model, pixels))
    proto.ir_version = IR_VERSION
    props = {"variant": model.variant, "options": json.dumps(model.options(), sort_keys=True),
             "temperature": repr(float(model.temperature)), "input": PIXELS if pixels else INPUT, "output": output}
    if model.outlier_limit is not None:
        props["outlier_limit"] = repr(float(model.outlier_limit))
    helper.set_model_props(proto, props)
    return proto


def _doc(model, pixels):
    if pixels:
        source = f"{PIXELS}: (N, 28, 28) uint8 MNIST pixels, 0 background, 255 ink"
    else:
        source = (f"{INPUT}: (N, 1, 32, 32) float32 in the paper's range (background {paper.INPUT_BACKGROUND}, "
                  f"ink {paper.INPUT_INK})")
    if model.variant == "classic":
        out = ("distances: (N, 10) squared distances to the RBF centres; the digit is their argmin, "
               "probabilities softmax(-distances / temperature)")
    else:
        out = "logits: (N, 10); the digit is their argmax, probabilities softmax(logits / temperature)"
    return f"LeNet-5 ({model.variant}) exported by lenet_fast {__version__}. Input {source}. Output {out}."


def _normalize(g, pixels):
    """(N, 28, 28) uint8 pixels p to (N, 1, 32, 32) float32: p * 1.275 / 255 - 0.1, the digit centred in
    a background border, as the engine packs its input (docs/inputs.md)."""
    scale = (paper.INPUT_INK - paper.INPUT_BACKGROUND) / 255.0
    x = g.node("Cast", [pixels], to=g.helper.np_dtype_to_tensor_dtype(np.dtype(np.float32)))
    x = g.node("Add", [g.node("Mul", [x, g.const("input.scale", scale)]),
                       g.const("input.background", paper.INPUT_BACKGROUND)])
    x = g.node("Unsqueeze", [x, g.const("input.channel", [1], np.int64)])
    border = paper.INPUT_BORDER
    pads = [0, 0, border, border, 0, 0, border, border]  # the begins of the 4 axes, then their ends
    return g.node("Pad", [x, g.const("input.pads", pads, np.int64), g.const("input.background_value",
                                                                            paper.INPUT_BACKGROUND)])


def _conv(g, model, layer, x, flat):
    w, _ = dense_kernels(model, layer.name)
    return g.node("Conv", [x, g.const(layer.name + ".weight", w),
                           g.const(layer.name + ".bias", model.params[layer.name + ".bias"])]), flat


def _subsample(g, model, layer, x, flat):
    if layer.pool == "max":
        return g.node("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2]), flat
    if layer.pool != "trainable":
        raise ValueError(f"the ONNX export has no builder for {layer.pool!r} subsampling ({layer.name!r})")
    coef = np.asarray(model.params[layer.name + ".coef"])
    kernels = np.broadcast_to(coef[:, None, None, None], (len(coef), 1, 2, 2))
    return g.node("Conv", [x, g.const(layer.name + ".coef", kernels),
                           g.const(layer.name + ".bias", model.params[layer.name + ".bias"])],
                  kernel_shape=[2, 2], strides=[2, 2], group=len(coef)), flat


def _full(g, model, layer, x, flat):
    if not flat:
        x = g.node("Flatten", [x], axis=1)
    return g.node("Gemm", [x, g.const(layer.name + ".weight", model.params[layer.name + ".weight"]),
                           g.const(layer.name + ".bias", model.params[layer.name + ".bias"])]), True


def _dropout(g, model, layer, x, flat):
    return x, flat


def _rbf(g, model, layer, x, flat):
    """sum over d of (x[n, d] - centers[k, d])^2."""
    x = g.node("Unsqueeze", [x, g.const("rbf.axis1", [1], np.int64)])
    d = g.node("Sub", [x, g.const("rbf.centers", model.rbf_centers)])
    return g.node("ReduceSum", [g.node("Mul", [d, d]), g.const("rbf.axis2", [2], np.int64)], keepdims=0), flat


_LAYERS = {"conv": _conv, "subsample": _subsample, "full": _full, "dropout": _dropout, "rbf": _rbf}


def _activation(g, layer, x):
    act = layer.act
    if act == "none":
        return x
    if act == "squash":
        scaled = g.node("Mul", [x, g.const(layer.name + ".squash_s", paper.SQUASH_S)])
        return g.node("Mul", [g.node("Tanh", [scaled]), g.const(layer.name + ".squash_a", paper.SQUASH_A)])
    if act == "leaky_relu":
        return g.node("LeakyRelu", [x], alpha=LEAKY_SLOPE)
    if act == "elu":
        return g.node("Elu", [x], alpha=ELU_ALPHA)
    ops = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid"}
    if act not in ops:
        raise ValueError(f"the ONNX export has no builder for the activation {act!r} ({layer.name!r})")
    return g.node(ops[act], [x])
