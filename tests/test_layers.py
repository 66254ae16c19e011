"""The layer classes (lenet_fast.layers): each kind's output shape, parameters and work, and the engine
description they give, on the two LeNet-5 tables."""
import numpy as np
import pytest

from lenet_fast import _core, layers, model, paper
from lenet_fast.layers import RBF, Conv, Full, Subsample

# per layer: (output shape, multiply-adds per image)
CLASSIC = {
    "c1": ((6, 28, 28), 6 * 25 * 28 * 28),
    "s2": ((6, 14, 14), 0),
    "c3": ((16, 10, 10), 60 * 25 * 10 * 10),  # Table I's 60 connections
    "s4": ((16, 5, 5), 0),
    "c5": ((120, 1, 1), 400 * 120),
    "f6": ((84, 1, 1), 120 * 84),
    "rbf": ((10, 1, 1), 84 * 10),
}
MODERN = dict(CLASSIC, c3=((16, 10, 10), 6 * 16 * 25 * 10 * 10), out=((10, 1, 1), 84 * 10))
del MODERN["rbf"]
EXPECTED = {"classic": CLASSIC, "modern": MODERN}


@pytest.mark.parametrize("variant", ["classic", "modern"])
def test_shapes_and_work_of_every_layer(variant):
    walked = list(layers.walk(model.VARIANTS[variant], model.INPUT_SHAPE))
    assert [layer.name for layer, _ in walked] == list(EXPECTED[variant])
    assert walked[0][1] == (1, 32, 32)
    for layer, shape in walked:
        out, macs = EXPECTED[variant][layer.name]
        assert layer.output_shape(shape) == out, layer.name
        assert layer.macs(shape) == macs, layer.name


def test_flops_per_image_is_twice_the_summed_work():
    assert model.flops_per_image("classic") == 2 * sum(m for _, m in CLASSIC.values()) == 653_040
    assert model.flops_per_image("modern") == 2 * sum(m for _, m in MODERN.values()) == 833_040
    with pytest.raises(ValueError, match="variant"):
        model.flops_per_image("lenet1")


def test_parameters_and_fan_in():
    shape = (6, 14, 14)
    assert Conv("c", 16, 5, "relu").params(shape) == {"weight": ((16, 6, 5, 5), 150), "bias": ((16,), 150)}
    c3 = Conv("c3", 16, 5, "squash", paper.C3_TABLE).params(shape)
    assert c3["weight"][0] == (60, 5, 5) and c3["bias"][0] == (16,)
    inputs = paper.C3_TABLE.sum(axis=1)
    assert np.array_equal(c3["bias"][1], inputs * 25)  # each map's fan-in: its connected inputs only
    assert np.array_equal(c3["weight"][1].ravel(), np.repeat(inputs * 25, inputs))  # per packed kernel
    assert Subsample("s", "trainable").params(shape) == {"coef": ((6,), 4), "bias": ((6,), 4)}
    assert Subsample("s", "max").params(shape) == {} and Subsample("s", "average").params(shape) == {}
    assert Full("f", 84).params((120, 1, 1)) == {"weight": ((120, 84), 120), "bias": ((84,), 120)}
    assert Full("f", 120).params((16, 5, 5))["weight"] == ((400, 120), 400)
    assert RBF("r", 10).params((84, 1, 1)) == {}
    # the whole network: 60,000 trainable parameters in the paper's network
    shapes = layers.param_shapes(model.CLASSIC, model.INPUT_SHAPE)
    assert list(shapes) == list(model.param_shapes("classic"))
    assert sum(int(np.prod(s)) for s, _ in shapes.values()) == 60_000


def test_kinds_and_activations():
    assert [l.kind for l in model.CLASSIC] == ["conv", "subsample", "conv", "subsample", "full", "full", "rbf"]
    assert [l.kind for l in model.MODERN][-1] == "full"
    assert RBF("r", 10).act == "none" and Subsample("s", "max").act == "none"
    assert Conv("c", 6, 5, "relu") == Conv("c", 6, 5, "relu")  # plain values, as a table needs


@pytest.mark.parametrize("variant", ["classic", "modern"])
def test_specs_build_the_network_they_describe(variant):
    """Each layer's spec, on the model's own arrays, builds a Network (every prefix of the table) whose
    output shape is the one output_shape walks to; the specs point at the parameter arrays, not copies."""
    m = model.LeNet5(variant, seed=1)
    centers = m.rbf_centers
    specs = [layer.spec(m.params, centers) for layer in m.layers]
    for layer, spec in zip(m.layers, specs):
        assert spec["kind"] == layer.kind and spec.get("act", "none") == layer.act
        for key in ("weight", "bias", "coef"):
            if spec.get(key) is not None:
                assert spec[key] is m.params[f"{layer.name}.{key}"]
    for i, (layer, shape) in enumerate(layers.walk(m.layers, model.INPUT_SHAPE)):
        net = _core.Network(model.INPUT_SHAPE, specs[: i + 1])
        assert net.output_shape == layer.output_shape(shape)
    full = _core.Network(model.INPUT_SHAPE, specs)
    x = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    assert np.array_equal(full.forward(x, True, flat=True), m.forward(x))
