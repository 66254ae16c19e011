"""The whole network, classic and modern: inference at batch 1, 64 and 1024, and one training step (forward,
backward, SGD-with-momentum update; MAP loss for classic, cross-entropy for modern) at batch 1, 32 and 256,
lenet_fast beside the NumPy reference, on 1 and 2 threads (conftest.py). For PyTorch and ONNX Runtime
beside them, and a report with the machine's peak: lenet-fast bench. The options (docs/training.md): the
modern variant with ELU (inference and training) and with dropout 0.5 (training: the masks' cost), beside
the defaults above.
"""
import numpy as np
import pytest

from lenet_fast import optim, paper, reference
from lenet_fast.model import LeNet5

from bench_data import ENGINES, digits

VARIANTS = ["classic", "modern"]
LR = 1e-5  # small: many steps on one batch must not move the weights anywhere strange


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("batch", [1, 64, 1024])
@pytest.mark.parametrize("variant", VARIANTS)
def test_inference(benchmark, variant, batch, engine, threads):
    benchmark.group = f"{variant} inference, batch {batch}, {threads} thread(s)"
    model = LeNet5(variant, seed=0)
    x = digits(batch)[0]
    if engine == "lenet_fast":
        benchmark(model.forward, x, normalized=True)
    else:
        benchmark(reference.forward, reference.with_centers(model.params, variant), x, variant)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("batch", [1, 32, 256])
@pytest.mark.parametrize("variant", VARIANTS)
def test_training_step(benchmark, variant, batch, engine, threads):
    benchmark.group = f"{variant} training step, batch {batch}, {threads} thread(s)"
    model = LeNet5(variant, seed=0)
    x, y = digits(batch)
    if engine == "lenet_fast":
        trainer, opt = model.trainer(), optim.SGD(lr=LR, momentum=0.9)
        opt.bind(model.params_vector.size)
        benchmark(trainer.train, x, y, batch, opt, model.default_loss, paper.MAP_J, False)
        return
    params = {k: v.copy() for k, v in reference.with_centers(model.params, variant).items()}
    velocity = {k: np.zeros_like(v) for k, v in model.params.items()}
    benchmark(reference.sgd_step, params, velocity, x, y, variant, LR, 0.9)


OPTIONS = {"elu": dict(activation="elu"), "dropout": dict(dropout=0.5)}


@pytest.mark.parametrize("batch", [64, 1024])
def test_inference_with_elu(benchmark, batch, threads):
    benchmark.group = f"modern inference, batch {batch}, {threads} thread(s)"
    model = LeNet5("modern", seed=0, activation="elu")
    benchmark(model.forward, digits(batch)[0], normalized=True)


@pytest.mark.parametrize("option", sorted(OPTIONS))
@pytest.mark.parametrize("batch", [32, 256])
def test_training_step_with_an_option(benchmark, option, batch, threads):
    benchmark.group = f"modern training step, batch {batch}, {threads} thread(s)"
    model = LeNet5("modern", seed=0, **OPTIONS[option])
    x, y = digits(batch)
    trainer, opt = model.trainer(), optim.SGD(lr=LR, momentum=0.9)
    opt.bind(model.params_vector.size)
    benchmark(trainer.train, x, y, batch, opt, model.default_loss, paper.MAP_J, False, dropout=(0, 0, 0))
