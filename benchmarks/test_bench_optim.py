"""One optimizer update (csrc/optimizer.c through lenet_fast.optim) over the classic network's parameter
count, for every optimizer, beside the NumPy reference's update rule (lenet_fast.reference) on the same
vectors. The update is one elementwise loop on the calling thread, so the thread count does not enter.

    python -m pytest benchmarks/test_bench_optim.py --benchmark-only
"""
import numpy as np
import pytest

from lenet_fast import optim, reference
from lenet_fast.model import LeNet5

LR = 1e-6  # small: many updates must not move the weights anywhere strange


def _reference(name, w, g, state):
    """The reference's update for name, its state arrays (float32 zeros) passed as they are."""
    a, b = state
    if name == "sgd":
        return reference.sgd_update(w, g, a, LR, 0.9)
    if name == "adagrad":
        return reference.adagrad_update(w, g, a, LR)
    if name == "rmsprop":
        return reference.rmsprop_update(w, g, a, b, LR)
    if name in ("adam", "adamw"):
        return (reference.adam_update if name == "adam" else reference.adamw_update)(w, g, a, b, 1, LR)
    return reference.sdlm_update(w, g, a, 1e-5)


@pytest.mark.parametrize("engine", ["lenet_fast", "reference"])
@pytest.mark.parametrize("name", sorted(optim.OPTIMIZERS))
def test_update(benchmark, name, engine):
    n = LeNet5("classic", seed=0).params_vector.size
    benchmark.group = f"{name} update, {n} parameters"
    rng = np.random.default_rng(0)
    w, g = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    if engine == "reference":
        benchmark(_reference, name, w, g, (np.zeros(n, np.float32), np.zeros(n, np.float32)))
        return
    opt = optim.SDLM() if name == "sdlm" else optim.OPTIMIZERS[name](lr=LR)
    opt.bind(n)
    if name == "sdlm":
        opt.step[...] = 1e-5
    benchmark(opt.update, w, g)
