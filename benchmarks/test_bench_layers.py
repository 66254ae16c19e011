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
from lenet_fast.model import INPUT_SHAPE, Conv, Full, LeNet5, Subsample, flat_params, layer_spec

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
            specs = [layer_spec(l, model.params, centers) for l in model.layers[:index]]
            x = _core.Network(INPUT_SHAPE, specs).forward(x)
        self.x = x
        arrays = OrderedDict((k, v) for k, v in model.params.items() if k.startswith(name + "."))
        self.flat, self.p = flat_params(arrays) if arrays else (np.zeros(0, np.float32), {})
        self.centers = centers
        self.net = _core.Network(x.shape[1:], [layer_spec(self.layer, self.p, centers)])
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
        l, p, x = self.layer, self.p, self.x
        act = getattr(l, "act", "none")
        if isinstance(l, Conv):
            a = reference.conv2d(x, p[l.name + ".weight"], p[l.name + ".bias"], l.table)
            if backward:
                return reference.conv2d_backward(x, p[l.name + ".weight"],
                                                 reference.activation_backward(a, self.dout, act), l.table)
        elif isinstance(l, Subsample):
            a = reference.subsample(x, l.pool, p.get(l.name + ".coef"), p.get(l.name + ".bias"))
            if backward:
                return reference.subsample_backward(x, reference.activation_backward(a, self.dout, act), l.pool,
                                                    p.get(l.name + ".coef"))
        else:
            flat = x.reshape(len(x), -1)
            d = self.dout.reshape(len(x), -1)
            if isinstance(l, Full):
                a = reference.linear(flat, p[l.name + ".weight"], p[l.name + ".bias"])
                if backward:
                    return reference.linear_backward(flat, p[l.name + ".weight"],
                                                     reference.activation_backward(a, d, act))
            else:
                a = reference.rbf(flat, self.centers)
                if backward:
                    return reference.rbf_backward(flat, self.centers, d)
        return reference.activation(a, act)


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
