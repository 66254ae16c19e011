"""Memory stays flat: many predictions, training steps and threads that come and go leave the process's
resident memory where it was (within LEAK_BUDGET) once the first calls have grown the workspaces.

What each check can see: predicting batches of 4 images, a leaked input (3 KB) per call would add 30 MB over
10,000 calls and a leaked per-call workspace far more; a leaked output (160 bytes) only 1.6 MB, which the
Python-object check (tracemalloc) sees instead.
"""
import ctypes
import ctypes.util
import os
import threading
import time
import tracemalloc

import numpy as np
import pytest

import lenet_fast
from lenet_fast import optim

LEAK_BUDGET = 4 << 20  # bytes of resident memory a loop may add after its warm-up


def rss():
    """Resident memory of this process, in bytes (Linux)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))


def threads():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Threads:"))


def release_free_memory():
    """Return the C heap's free pages to the system (glibc's malloc_trim), so that memory the tests before
    freed cannot absorb a leak unseen: a loop's growth is then new pages, whatever ran earlier."""
    libc = ctypes.util.find_library("c")
    trim = getattr(ctypes.CDLL(libc), "malloc_trim", None) if libc else None
    if trim is not None:
        trim(0)


def growth(step, repeats, warmup):
    """Bytes of resident memory repeats calls of step add after warmup calls (made after the free pages
    are returned, so that the warm-up, not the measured loop, brings back the pages the loop reuses)."""
    release_free_memory()
    for i in range(warmup):
        step(i)
    before = rss()
    for i in range(repeats):
        step(i)
    return rss() - before


pytestmark = [
    pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc"),
    pytest.mark.skipif("asan" in os.environ.get("LD_PRELOAD", ""),
                       reason="AddressSanitizer holds freed memory in quarantine: resident memory grows"),
]

DIGITS = np.random.default_rng(0).integers(0, 256, (64, 28, 28), dtype=np.uint8)


@pytest.fixture
def one_thread():
    """One OpenMP thread: memory is the point here, and thread teams' start-up on a busy machine is slow."""
    before = lenet_fast.get_num_threads()
    lenet_fast.set_num_threads(1)
    yield
    lenet_fast.set_num_threads(before)


@pytest.mark.parametrize("variant", ["classic", "modern"])
def test_10000_predictions_keep_memory_flat(variant, one_thread):
    model = lenet_fast.LeNet5(variant)

    def step(i):
        s = i % 60
        model.predict(DIGITS[s : s + 1 + i % 4])  # 1 to 4 images: the single-image and the block paths
        if i % 10 == 0:
            model.predict_proba(DIGITS[s : s + 3])

    assert growth(step, 10_000, 1_000) < LEAK_BUDGET
    tracemalloc.start()
    try:
        for i in range(500):
            step(i)
        before = tracemalloc.get_traced_memory()[0]
        for i in range(1_000):
            step(i)
        assert tracemalloc.get_traced_memory()[0] - before < 64 << 10  # no Python objects pile up
    finally:
        tracemalloc.stop()


def test_1000_training_steps_keep_memory_flat(one_thread):
    """1,000 calls of fit (one step of a batch of 8 each), gradient and a save: every call's Python and C
    allocations (trainer, optimizer state, workspaces, temporary files) are given back."""
    x, y = DIGITS[:8], np.arange(8)
    model = lenet_fast.LeNet5("modern")
    opt = optim.Adam(lr=1e-4)

    def step(i):
        model.fit(x, y, epochs=1, batch_size=8, optimizer=opt, verbose=0, seed=i)
        if i % 10 == 0:
            model.gradient(x, y)

    assert growth(step, 1_000, 100) < LEAK_BUDGET


def test_threads_that_come_and_go_free_their_workspaces():
    """Each calling thread gets a workspace (and, with OpenMP, a team of workers), freed when it exits:
    200 short-lived threads predicting a batch each leave memory and the thread count as they were."""
    model = lenet_fast.LeNet5("classic")

    def step(i):
        t = threading.Thread(target=model.predict, args=(DIGITS[: 20 + i % 40],))
        t.start()
        t.join()

    count = threads()
    assert growth(step, 200, 20) < LEAK_BUDGET
    deadline = time.monotonic() + 5
    while threads() > count and time.monotonic() < deadline:  # OpenMP's workers exit after their master
        time.sleep(0.01)
    assert threads() == count


def test_the_check_sees_a_leak():
    """The measure is sensitive: 16 KB kept per call for 2,000 calls (32 MB, more than memory freed
    earlier in the process could absorb) is over the budget."""
    kept = []
    assert growth(lambda i: kept.append(np.ones(4096, np.float32)), 2_000, 10) > LEAK_BUDGET
