"""What the benchmark suites share besides fixtures (conftest.py): the engines and the input."""
import functools

import numpy as np

from lenet_fast import reference
from lenet_fast.datasets import synthetic_digits

ENGINES = ["lenet_fast", "reference"]


@functools.lru_cache(maxsize=None)
def digits(n):
    """(x, labels): n synthetic digits as network input, (n, 1, 32, 32) float32 in the paper's range."""
    images, labels = synthetic_digits(n, seed=0)
    return np.ascontiguousarray(reference.normalize_input(images), np.float32), labels.astype(np.int64)
