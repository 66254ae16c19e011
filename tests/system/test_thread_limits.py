"""Thread counts the process cannot afford: a bounded set_num_threads, and MemoryError instead of the exit
of the process when OpenMP's threads cannot be created (libgomp exits on a failed pthread_create, so the
engine first checks that the threads can exist: csrc/dispatch.c). Each scenario runs in a fresh
interpreter with a capped address space (RLIMIT_AS), bounded by a timeout."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import lenet_fast

needs_openmp = pytest.mark.skipif(not lenet_fast.build_info()["openmp"], reason="built without OpenMP")
capped = pytest.mark.skipif("asan" in os.environ.get("LD_PRELOAD", ""),
                            reason="AddressSanitizer's own allocator aborts under a capped address space")

# 16 MB thread stacks (OMP_STACKSIZE, which libgomp and the engine's check both read): 999 of them are
# 16 GB, far beyond the 1 GB the address space may grow by.
CAPPED = textwrap.dedent("""
    import resource
    import numpy as np
    import lenet_fast

    def vm_bytes():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))

    def cap():  # the address space may grow by 1 GB from now on
        resource.setrlimit(resource.RLIMIT_AS, (vm_bytes() + (1 << 30), resource.RLIM_INFINITY))

    model = lenet_fast.LeNet5("classic")
    batch = np.random.default_rng(0).integers(0, 256, (64, 28, 28), dtype=np.uint8)
""")


def run(script, **env):
    proc = subprocess.run([sys.executable, "-c", CAPPED + textwrap.dedent(script)], capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, OMP_STACKSIZE="16M", **env))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.splitlines()


@needs_openmp
@capped
def test_threads_that_cannot_be_created_are_a_memory_error_and_the_count_stays():
    """The issue's reproducer (set_num_threads(1000) with memory short): MemoryError, the old count kept,
    and the process carries on with the same answers on it."""
    out = run("""
        lenet_fast.set_num_threads(2)
        want = model.forward(batch)  # the pool exists
        cap()
        try:
            lenet_fast.set_num_threads(1000)
        except MemoryError as exc:
            print("MemoryError", "1000 threads" in str(exc))
        print(lenet_fast.get_num_threads(), np.array_equal(model.forward(batch), want))
    """)
    assert out == ["MemoryError True", "2 True"]


@needs_openmp
@capped
def test_a_thread_count_from_the_environment_that_cannot_start_is_a_memory_error():
    """OMP_NUM_THREADS=1000 with memory short: the first batch raises MemoryError (nothing ran; libgomp
    would have exited), one image still runs on the calling thread, and after set_num_threads(2) batches
    run again, with the same bits."""
    out = run("""
        cap()
        try:
            model.forward(batch)
        except MemoryError as exc:
            print("MemoryError", "set_num_threads" in str(exc))
        single = model.forward(batch[:1])
        lenet_fast.set_num_threads(2)
        print(np.array_equal(model.forward(batch)[:1], single))
    """, OMP_NUM_THREADS="1000")
    assert out == ["MemoryError True", "True"]


@pytest.mark.parametrize("bad", [0, -1, 2**31, 10**30, lenet_fast.MAX_THREADS + 1])
def test_thread_counts_out_of_range_are_a_value_error_naming_the_range(bad, restore_threads):
    with pytest.raises(ValueError, match=f"1..{lenet_fast.MAX_THREADS}"):
        lenet_fast.set_num_threads(bad)


@pytest.mark.parametrize("bad", [True, np.bool_(True), 1.0, np.float64(2), "2", None])
def test_thread_counts_that_are_not_integers_are_a_value_error(bad, restore_threads):
    with pytest.raises(ValueError, match="positive integer"):
        lenet_fast.set_num_threads(bad)


@pytest.mark.parametrize("kind", [np.int64, np.int32, np.uint8, np.intc])
def test_numpy_integers_are_thread_counts(kind, restore_threads):
    lenet_fast.set_num_threads(kind(2))
    assert lenet_fast.get_num_threads() == (2 if lenet_fast.build_info()["openmp"] else 1)
    lenet_fast.set_num_threads(kind(1))
    assert lenet_fast.get_num_threads() == 1
