"""The timing harness every benchmark shares: `lenet-fast bench` (lenet_fast.bench), benchmarks/*.py, the
pytest-benchmark suites (benchmarks/conftest.py) and the C micro-benchmarks' drivers (benchmarks/c/).

- Timers: `elapsed` (one call) and `per_call` (a loop of calls filling a minimum time), on
  time.perf_counter_ns, returning seconds.
- Statistics: `median` and `percentile` (linear interpolation between order statistics, numpy's default).
- Interleaving: `interleaved` runs several measurements in turn, repeat after repeat, so that the drift of
  a shared machine's load falls on all of them alike; compare its results within one run only.
- Threads: `kernel_threads` (lenet_fast's OpenMP threads) and `blas_threads` (numpy's BLAS, through
  threadpoolctl when it is installed), each restoring the previous count on exit.
- The machine: `machine`, `build_line`, `load_average`: what a recorded figure needs beside it.

Of lenet_fast it needs only the package's build_info and thread counts, so that any module but the
package's __init__ may import it without a cycle.
"""
import contextlib
import datetime
import math
import os
import platform
import sys
import time

import numpy as np

import lenet_fast

# Variables some machines set to work around old OpenBLAS bugs. OPENBLAS_CORETYPE pins the kernel (to
# Haswell's AVX2, say, on a CPU with AVX-512): a BLAS measurement then measures that kernel, not the machine.
BLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


# --- timers -----------------------------------------------------------------------------------------------


def elapsed(fn):
    """Seconds that one call of fn takes."""
    start = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - start) / 1e9


def per_call(fn, min_time=0.0, warmup=1, min_calls=1):
    """Seconds per call of fn, after warmup untimed calls, over as many calls as fill min_time seconds and
    at least min_calls: a loop, so that the timer's own cost and resolution vanish in the mean."""
    for _ in range(warmup):
        fn()
    limit = min_time * 1e9
    calls, start = 0, time.perf_counter_ns()
    while True:
        fn()
        calls += 1
        spent = time.perf_counter_ns() - start
        if spent >= limit and calls >= min_calls:
            return spent / calls / 1e9


# --- statistics -------------------------------------------------------------------------------------------


def percentile(values, q):
    """The q-th percentile (0 <= q <= 100) of values, interpolated linearly between the two nearest order
    statistics (numpy.percentile's default, so that figures stay comparable with older records)."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is not in [0, 100]")
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values):
    """The middle value (the mean of the two middle ones for an even count)."""
    return percentile(values, 50)


# --- interleaving -----------------------------------------------------------------------------------------


def interleaved(measures, repeats, pause=0.0):
    """name -> list of repeats results: each measure (a function of no arguments returning a figure, such as
    lambda: per_call(fn, 0.1)) is called once per repeat, the measures taking turns in their order, each
    after sleeping pause seconds, in which the previous measure's idle threads stop spinning
    (benchmarks/results/harness-notes.md)."""
    results = {name: [] for name in measures}
    for _ in range(repeats):
        for name, measure in measures.items():
            if pause:
                time.sleep(pause)
            results[name].append(measure())
    return results


# --- threads ----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def kernel_threads(threads):
    """lenet_fast's kernels on threads threads inside the block, the previous count restored after it."""
    saved = lenet_fast.get_num_threads()
    lenet_fast.set_num_threads(threads)
    try:
        yield threads
    finally:
        lenet_fast.set_num_threads(saved)


@contextlib.contextmanager
def blas_threads(threads):
    """numpy's BLAS on threads threads inside the block; yields whether the limit is in force (False without
    threadpoolctl, when the BLAS keeps its own count)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield False
        return
    with threadpool_limits(limits=threads, user_api="blas"):
        yield True


def blas_info():
    """numpy's BLAS libraries as "internal_api version (architecture)", or why unknown."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (threadpoolctl not installed: BLAS threads not limited)"
    libs = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    return ", ".join(f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')})" for i in libs) or "none"


# --- the machine ------------------------------------------------------------------------------------------


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores():
    """The cores this process may run on (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def load_average():
    """The 1-minute load average (other processes compete for the cores), or None where unknown."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def machine(modules=()):
    """What a recorded figure depends on: the CPU, cores, lenet_fast's path and OpenMP, numpy's BLAS (and the
    variables that force its kernel), and the versions of Python, numpy, lenet_fast and of each of modules
    (names of modules already imported, such as "torch")."""
    info = lenet_fast.build_info()
    versions = {"python": platform.python_version(), "numpy": np.__version__, "lenet_fast": info["version"]}
    for name in modules:
        versions[name] = sys.modules[name].__version__
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "isa": info["isa"],
        "openmp": info["openmp"],
        "blas": blas_info(),
        "blas_environment": {k: os.environ[k] for k in BLAS_VARIABLES if k in os.environ},
        "versions": versions,
    }


def build_line():
    """One line naming the build a table was measured on, to print above it."""
    info = lenet_fast.build_info()
    return f"lenet_fast {info['version']}, ISA path {info['isa']}, OpenMP {'on' if info['openmp'] else 'off'}"


def write_record(path, title, script, argv, settings, lines):
    """Write a results record (benchmarks/results/) to path: the title, the command that made it (python
    script argv), the date, machine, build and load average at the end, the run's settings (text), then
    lines."""
    record = [f"# {title}", "", f"Command: `python {script} {' '.join(argv)}`",
              f"Date: {datetime.date.today().isoformat()}; machine: {cpu_model()}, {usable_cores()} usable cores, "
              f"{build_line()}; load average at the end: {load_average()}; {settings}", "", *lines, ""]
    with open(path, "w") as f:
        f.write("\n".join(record))
