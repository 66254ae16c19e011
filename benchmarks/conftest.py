"""pytest-benchmark suites (not run by CI, which runs tests/ only):

    python -m pytest benchmarks/ --benchmark-only                   # everything: a few minutes
    python -m pytest benchmarks/ --benchmark-only -k "c3 and forward"

Each benchmark is in a group with its like (one layer, direction, batch and thread count; or one model,
batch and thread count), lenet_fast beside the NumPy reference, so that pytest-benchmark's tables compare
like with like. Inputs are synthetic digits already in the paper's range, float32. The reference's BLAS
runs on one thread (threadpoolctl, when installed): OpenBLAS's idle threads spin after each call and would
take the core lenet_fast's second thread needs. The machine is shared: compare within one run.
"""
import pytest

import lenet_fast


@pytest.fixture(params=[1, 2], ids=lambda t: f"{t}thread")
def threads(request):
    """lenet_fast's thread count for the benchmark."""
    saved = lenet_fast.get_num_threads()
    lenet_fast.set_num_threads(request.param)
    yield request.param
    lenet_fast.set_num_threads(saved)


@pytest.fixture(scope="session", autouse=True)
def one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield
