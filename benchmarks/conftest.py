"""pytest-benchmark suites (not run by CI, which runs tests/ only):

    python -m pytest benchmarks/ --benchmark-only                   # everything: a few minutes
    python -m pytest benchmarks/ --benchmark-only -k "c3 and forward"

Each benchmark is in a group with its like (one layer, direction, batch and thread count; or one model,
batch and thread count), lenet_fast beside the NumPy reference, so that pytest-benchmark's tables compare
like with like. Inputs are synthetic digits already in the paper's range, float32. pytest-benchmark times
the calls; the threads, the BLAS limit and the machine description come from lenet_fast.timing, the harness
lenet-fast bench and benchmarks/*.py use. The reference's BLAS runs on one thread (threadpoolctl, when
installed): OpenBLAS's idle threads spin after each call and would take the core lenet_fast's second thread
needs. The machine is shared: compare within one run.
"""
import pytest

from lenet_fast import timing


@pytest.fixture(params=[1, 2], ids=lambda t: f"{t}thread")
def threads(request):
    """lenet_fast's thread count for the benchmark."""
    with timing.kernel_threads(request.param):
        yield request.param


@pytest.fixture(scope="session", autouse=True)
def one_blas_thread():
    with timing.blas_threads(1):
        yield


def pytest_benchmark_update_machine_info(config, machine_info):
    """--benchmark-save and --benchmark-json record lenet_fast's build and the BLAS beside pytest-benchmark's
    own description of the machine."""
    machine_info["lenet_fast"] = timing.machine()
