"""int8 inference (lenet_fast.int8) beside float32, classic and modern, at batch 1 and 1024, on 1 and 2 threads
(conftest.py): the pretrained models, the int8 one calibrated on 1,000 synthetic digits. Inputs are uint8
pixels for both (what predict takes). benchmarks/precision.py --speed records interleaved medians."""
import functools

import pytest

import lenet_fast
from lenet_fast import int8
from lenet_fast.datasets import synthetic_digits


@functools.lru_cache(maxsize=None)
def models(variant):
    model = lenet_fast.pretrained(variant)
    return model, int8.quantize(model, synthetic_digits(1000, seed=1)[0])


@pytest.mark.parametrize("precision", ["float32", "int8"])
@pytest.mark.parametrize("batch", [1, 1024])
@pytest.mark.parametrize("variant", ["classic", "modern"])
def test_inference(benchmark, variant, batch, precision, threads):
    benchmark.group = f"{variant} inference by precision, batch {batch}, {threads} thread(s)"
    model, quantized = models(variant)
    x = synthetic_digits(batch, seed=0)[0]
    benchmark((model if precision == "float32" else quantized).forward, x)
