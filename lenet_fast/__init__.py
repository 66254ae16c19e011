"""lenet_fast: LeNet-5 with C/OpenMP kernels, the 1998 paper's network exactly and its modern form.

    import lenet_fast
    model = lenet_fast.LeNet5("classic")
    model.fit(images, labels)                  # the paper's SDLM, or optimizer="adam" etc. (lenet_fast.optim)
    model.predict(images)                      # (N, 28, 28) uint8 -> (N,) digits
    model.predict(lenet_fast.read_digit("digit.png"))
"""
try:
    from . import _core
except ImportError:
    # The compiled engine is missing here, typically because Python runs in the source tree (a clone), whose
    # lenet_fast/ folder shadows the installed package and has never been built: say so, rather than
    # Python's "partially initialized module (circular import)". A _core that exists but fails to load
    # (a missing shared library, a wrong platform) keeps its own message.
    import importlib.machinery as _machinery
    import os as _os
    _here = _os.path.dirname(_os.path.abspath(__file__))
    if not any(_os.path.exists(_os.path.join(_here, "_core" + suffix)) for suffix in _machinery.EXTENSION_SUFFIXES):
        _root = _os.path.dirname(_here)
        raise ImportError(f"lenet_fast's compiled engine (_core) is not built in {_here}: run `pip install -e .` "
                          f"in {_root}, or run Python from another folder to use the installed package",
                          name=__name__, path=_here) from None
    raise
from . import calibration, datasets, int8, optim
from .calibration import rejection_curve
from .datasets import load_mnist, read_idx
from .ensemble import Ensemble
from .history import EarlyStopping, History
from .images import read_digit, read_digits, sample_paths
from .model import LeNet5, load
from .numbers import read_number
from ._version import __version__
from .pretrained import pretrained

__all__ = ["LeNet5", "load", "Ensemble", "EarlyStopping", "History", "pretrained", "optim", "int8", "datasets", "load_mnist", "read_idx", "read_digit", "read_digits",
           "calibration", "rejection_curve", "read_number", "sample_paths", "build_info", "get_num_threads",
           "set_num_threads", "MAX_THREADS", "__version__"]


MAX_THREADS = _core.MAX_THREADS


def get_num_threads():
    """Threads the kernels use: OpenMP's current setting (OMP_NUM_THREADS, set_num_threads or
    threadpoolctl's limit); 1 when built without OpenMP, and in a child process forked after the parent
    had run the kernels on several threads (OpenMP's threads do not survive fork: that child runs every
    call on one thread rather than hang)."""
    return _core.get_num_threads()


def set_num_threads(n):
    """Use n threads in the calling thread's later kernel calls (like omp_set_num_threads).

    n is an integer (int or numpy integer, not bool) in 1..MAX_THREADS (1024), else ValueError. When n
    threads cannot be created now (memory or the process's thread limit), MemoryError and the count stays
    as it was: the process never exits for want of threads. In a child forked after the parent had run
    the kernels on several threads, n > 1 raises RuntimeError (use the "spawn" or "forkserver" start
    method for multithreaded children); 1 is accepted. Results are bit-identical for any n."""
    _core.set_num_threads(n)


def build_info():
    """The version, OpenMP on or off, the thread count (get_num_threads: 1 in a forked child that cannot
    start threads) and the instruction-set path in use."""
    return {
        "version": __version__,
        "openmp": _core.openmp_enabled(),
        "num_threads": get_num_threads(),
        "isa": _core.isa(),
    }
