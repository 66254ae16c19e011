"""The layer kinds of LeNet-5, each owning its facts: output shape, trainable parameters (shapes and
fan-in), multiply-adds per image and the description the C engine takes (a _core.Network layer dict).

Shapes are one image's (channels, height, width). A network is a tuple of layers; walk() follows an input
shape through it, and everything that depends on the whole network (parameter list, work count, engine
description) loops over that walk rather than asking which kind each layer is.
"""
from collections import OrderedDict
from typing import NamedTuple, Optional

import numpy as np


class Conv(NamedTuple):
    """A valid (unpadded) convolution, stride 1, square kernels; with a (maps, input maps) boolean table,
    output map i reads only the inputs table[i] marks, its kernels packed in the table's row-major order
    (docs/paper.md#table-i)."""

    name: str
    maps: int
    kernel: int
    act: str
    table: Optional[np.ndarray] = None

    kind = "conv"

    def output_shape(self, shape):
        c, h, w = shape
        return self.maps, h - self.kernel + 1, w - self.kernel + 1

    def _inputs(self, c):
        """How many input maps each output map reads: (maps,) with a table, else c for every map."""
        return self.table.sum(axis=1) if self.table is not None else np.full(self.maps, c)

    def params(self, shape):
        k, c = self.kernel, shape[0]
        if self.table is None:
            return OrderedDict([("weight", ((self.maps, c, k, k), c * k * k)), ("bias", ((self.maps,), c * k * k))])
        # a map's fan-in counts its connected inputs only; the weight's is per packed kernel
        inputs = self._inputs(c)
        fan = np.repeat(inputs * k * k, inputs)[:, None, None]
        return OrderedDict([("weight", ((int(inputs.sum()), k, k), fan)), ("bias", ((self.maps,), inputs * k * k))])

    def macs(self, shape):
        _, h, w = self.output_shape(shape)
        return int(self._inputs(shape[0]).sum()) * self.kernel ** 2 * h * w

    def spec(self, params, rbf_centers=None):
        p = self.name + "."
        return dict(kind=self.kind, out=self.maps, kernel=(self.kernel, self.kernel), act=self.act,
                    table=self.table, weight=params[p + "weight"], bias=params[p + "bias"])


class Subsample(NamedTuple):
    """2x2 windows, stride 2: "trainable" (a per-map coefficient times the window's sum, plus a per-map
    bias: docs/paper.md#architecture), "average" or "max"."""

    name: str
    pool: str
    act: str = "none"

    kind = "subsample"

    def output_shape(self, shape):
        c, h, w = shape
        return c, h // 2, w // 2

    def params(self, shape):
        if self.pool != "trainable":
            return OrderedDict()
        c = shape[0]
        return OrderedDict([("coef", ((c,), 4)), ("bias", ((c,), 4))])  # fan-in: the 4 inputs of a window

    def macs(self, shape):
        return 0  # pooling is not counted as work (only multiply-adds of weights and distances are)

    def spec(self, params, rbf_centers=None):
        p = self.name + "."
        return dict(kind=self.kind, pool=self.pool, act=self.act, coef=params.get(p + "coef"),
                    bias=params.get(p + "bias"))


class Full(NamedTuple):
    """Every unit reads the whole previous output, flattened channel-major; weight is (inputs, units)."""

    name: str
    units: int
    act: str = "none"

    kind = "full"

    def output_shape(self, shape):
        return self.units, 1, 1

    def params(self, shape):
        n = int(np.prod(shape))
        return OrderedDict([("weight", ((n, self.units), n)), ("bias", ((self.units,), n))])

    def macs(self, shape):
        return int(np.prod(shape)) * self.units

    def spec(self, params, rbf_centers=None):
        p = self.name + "."
        return dict(kind=self.kind, out=self.units, act=self.act, weight=params[p + "weight"],
                    bias=params[p + "bias"])


class Dropout(NamedTuple):
    """Inverted dropout of the share `rate` of its input's units in training (kept units scaled by
    1 / (1 - rate)), the identity at inference; nothing trained, the shape unchanged."""

    name: str
    rate: float

    kind = "dropout"
    act = "none"

    def output_shape(self, shape):
        return tuple(shape)

    def params(self, shape):
        return OrderedDict()

    def macs(self, shape):
        return 0

    def spec(self, params, rbf_centers=None):
        return dict(kind=self.kind, rate=self.rate)


class RBF(NamedTuple):
    """Squared Euclidean distances to `units` fixed centres (docs/paper.md#rbf-output): nothing trained."""

    name: str
    units: int

    kind = "rbf"
    act = "none"

    def output_shape(self, shape):
        return self.units, 1, 1

    def params(self, shape):
        return OrderedDict()

    def macs(self, shape):
        return int(np.prod(shape)) * self.units

    def spec(self, params, rbf_centers=None):
        return dict(kind=self.kind, centers=rbf_centers)


def walk(layers, input_shape):
    """(layer, its input shape) for each layer in order."""
    shape = tuple(input_shape)
    for layer in layers:
        yield layer, shape
        shape = layer.output_shape(shape)


def param_shapes(layers, input_shape):
    """Every trainable parameter in order: "layer.param" -> (shape, fan-in)."""
    return OrderedDict((f"{layer.name}.{p}", fact) for layer, shape in walk(layers, input_shape)
                       for p, fact in layer.params(shape).items())


def macs(layers, input_shape):
    """Multiply-adds of one image's forward pass."""
    return sum(layer.macs(shape) for layer, shape in walk(layers, input_shape))
