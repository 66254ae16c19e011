"""The pretrained models shipped with lenet_fast: lenet_fast/weights/<variant>.npz, trained on the MNIST training
set (benchmarks/results/README.md says how, with the records of the runs).

    from lenet_fast.pretrained import pretrained
    model = pretrained("classic")
    model.predict(lenet_fast.read_digit("digit.png"))
"""
import threading
from pathlib import Path

from .model import VARIANTS, LeNet5, load

__all__ = ["pretrained", "weights_path"]

WEIGHTS = Path(__file__).parent / "weights"

_cache = {}  # variant -> the model read from its file, never handed out
_lock = threading.Lock()


def weights_path(variant="classic"):
    """Where the pretrained weights of variant are installed (the file may be missing)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {variant!r}")
    return WEIGHTS / f"{variant}.npz"


def pretrained(variant="classic"):
    """A LeNet5 ("classic" or "modern") with the shipped weights, ready to predict or to train further.

    The file is read once per variant; every call returns a new model with its own copy of the weights, so
    changing or training one affects neither the others nor later calls. Raises ValueError for an unknown
    variant or a damaged file, FileNotFoundError when this installation has no weights for the variant."""
    path = weights_path(variant)
    with _lock:
        source = _cache.get(variant)
        if source is None:
            if not path.is_file():
                raise FileNotFoundError(f"no pretrained {variant} weights in this installation: {path} is missing "
                                        "(in a source checkout, benchmarks/reproduce.py --save-model makes them)")
            source = load(path)
            if source.variant != variant:
                raise ValueError(f"{path}: holds a {source.variant} model, not {variant}")
            _cache[variant] = source
    model = LeNet5(variant)
    model.set_params(source.params)
    model.temperature, model.outlier_limit = source.temperature, source.outlier_limit
    return model
