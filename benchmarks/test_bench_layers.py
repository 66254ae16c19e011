"""Every layer of the classic LeNet-5 at its own shapes (C1, S2, C3, S4, C5, F6, RBF), forward and backward,
lenet_fast's kernel beside the NumPy reference's, at batch 64 on 1 and 2 threads (conftest.py).

Forward: the layer alone on its real input (the network's activations at that layer). Backward: the layer's
forward and backward from a given output gradient, parameter and input gradients (lenet_fast's trainer
recomputes a block's forward right before its backward, in cache, so the reference does the same work:
forward, activation derivative, the layer's backward function).
"""
from collections import OrderedDict

import numpy as np
import pytest

from lenet_fast import _core, paper, reference
from lenet_fast.model import INPUT_SHAPE, LeNet5, flat_params

from bench_data import ENGINES, digits

BATCH = 64
LAYERS = ["c1", "s2", "c3", "s4", "c5", "f6", "rbf"]


class Layer:
    """One layer of a seeded classic model, on its own flat parameter vector, with its real input."""

    def __init__(self, name):
        model = LeNet5("classic", seed=0)
        centers = paper.rbf_centers()
        index = [l.name for l in model.layers].index(name)
        self.layer = model.layers[index]
        x = digits(BATCH)[0]
        if index:
            specs = [l.spec(model.params, centers) for l in model.layers[:index]]
            x = _core.Network(INPUT_SHAPE, specs).forward(x)
        self.x = x
        arrays = OrderedDict((k, v) for k, v in model.params.items() if k.startswith(name + "."))
        self.flat, self.p = flat_params(arrays) if arrays else (np.zeros(0, np.float32), {})
        self.centers = centers
        self.net = _core.Network(x.shape[1:], [self.layer.spec(self.p, centers)])
        self.trainer = _core.Trainer(self.net, self.flat)
        self.dout = np.random.default_rng(0).standard_normal((BATCH,) + self.net.output_shape, dtype=np.float32)

    def forward(self, engine):
        if engine == "lenet_fast":
            return lambda: self.net.forward(self.x)
        return lambda: self._reference(backward=False)

    def backward(self, engine):
        if engine == "lenet_fast":
            return lambda: self.trainer.backward(self.x, self.dout)
        return lambda: self._reference(backward=True)

    def _reference(self, backward):
        """The NumPy reference of this layer, forward (the activated output) or backward (the gradients)."""
        act = getattr(self.layer, "act", "none")
        pre, grads = getattr(self, "_reference_" + self.layer.kind)(backward, act)
        return grads if backward else reference.activation(pre, act)

    def _reference_conv(self, backward, act):
        l, p, x = self.layer, self.p, self.x
        w = p[l.name + ".weight"]
        a = reference.conv2d(x, w, p[l.name + ".bias"], l.table)
        return a, backward and reference.conv2d_backward(x, w, reference.activation_backward(a, self.dout, act),
                                                         l.table)

    def _reference_subsample(self, backward, act):
        l, p, x = self.layer, self.p, self.x
        coef = p.get(l.name + ".coef")
        a = reference.subsample(x, l.pool, coef, p.get(l.name + ".bias"))
        return a, backward and reference.subsample_backward(x, reference.activation_backward(a, self.dout, act),
                                                            l.pool, coef)

    def _reference_full(self, backward, act):
        l, p = self.layer, self.p
        flat, d, w = self.x.reshape(len(self.x), -1), self.dout.reshape(len(self.x), -1), p[l.name + ".weight"]
        a = reference.linear(flat, w, p[l.name + ".bias"])
        return a, backward and reference.linear_backward(flat, w, reference.activation_backward(a, d, act))

    def _reference_rbf(self, backward, act):
        flat, d = self.x.reshape(len(self.x), -1), self.dout.reshape(len(self.x), -1)
        return reference.rbf(flat, self.centers), backward and reference.rbf_backward(flat, self.centers, d)


_cases = {}


def case(name):
    if name not in _cases:
        _cases[name] = Layer(name)
    return _cases[name]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("layer", LAYERS)
def test_layer_forward(benchmark, layer, engine, threads):
    benchmark.group = f"layer {layer} forward, batch {BATCH}, {threads} thread(s)"
    benchmark(case(layer).forward(engine))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("layer", LAYERS)
def test_layer_backward(benchmark, layer, engine, threads):
    benchmark.group = f"layer {layer} forward+backward, batch {BATCH}, {threads} thread(s)"
    benchmark(case(layer).backward(engine))
