"""The pretrained models shipped with lenet_fast: lenet_fast/weights/<name>.npz, trained on the MNIST training
set (benchmarks/results/README.md says how, with the records of the runs): one LeNet5 of each variant, and
an ensemble of five (lenet_fast.Ensemble).

    from lenet_fast.pretrained import pretrained
    model = pretrained("classic")
    model.predict(lenet_fast.read_digit("digit.png"))
"""
import copy
import threading
from pathlib import Path

from .ensemble import Ensemble
from .model import VARIANTS, load

__all__ = ["pretrained", "weights_path"]

WEIGHTS = Path(__file__).parent / "weights"
NAMES = tuple(VARIANTS) + ("ensemble",)

_cache = {}  # variant -> the model read from its file, never handed out
_lock = threading.Lock()


def weights_path(variant="classic"):
    """Where the pretrained weights of variant (one of NAMES) are installed (the file may be missing)."""
    if variant not in NAMES:
        raise ValueError(f"variant must be one of {', '.join(map(repr, NAMES))}, got {variant!r}")
    return WEIGHTS / f"{variant}.npz"


def pretrained(variant="classic"):
    """A LeNet5 ("classic" or "modern") with the shipped weights, ready to predict or to train further; or,
    for "ensemble", a lenet_fast.Ensemble of five LeNet5 models.

    The file is read once per name; every call returns new models with their own copies of the weights, so
    changing or training one affects neither the others nor later calls. Raises ValueError for an unknown
    name or a damaged file, FileNotFoundError when this installation has no weights for it."""
    path = weights_path(variant)
    # a deep copy is what the file holds, rebuilt (LeNet5.__reduce__): every option and the calibration
    return copy.deepcopy(_read(variant, path, Ensemble.load if variant == "ensemble" else load))


def _read(variant, path, read):
    """What path holds, read by read once (then cached; never handed out)."""
    with _lock:
        source = _cache.get(variant)
        if source is None:
            if not path.is_file():
                raise FileNotFoundError(f"no pretrained {variant} weights in this installation: {path} is missing "
                                        "(in a source checkout, benchmarks/reproduce.py --save-model makes them)")
            source = read(path)
            if variant in VARIANTS and source.variant != variant:
                raise ValueError(f"{path}: holds a {source.variant} model, not {variant}")
            _cache[variant] = source
    return source

