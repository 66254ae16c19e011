"""Child processes: fork after the kernels have run on several threads, multiprocessing's fork, spawn and
forkserver start methods.

OpenMP's thread pool does not survive fork: a child forked after its parent ran a batch on several threads
runs its kernels on one thread instead of waiting forever for threads it does not have (csrc/dispatch.c),
with the same bits as the parent; it says so (get_num_threads() == 1) and refuses more threads with a
RuntimeError that names the start methods that do give them. Every scenario runs in a fresh interpreter
(subprocess, bounded by a timeout) whose forked children are killed if they do not finish in time, so that
a regression is a failure, not a hung suite.
"""
import subprocess
import sys
import textwrap

import pytest

import lenet_fast

pytestmark = pytest.mark.skipif(not lenet_fast.build_info()["openmp"], reason="built without OpenMP")

# What every scenario starts with: a model, a batch, the parent's answer on two threads, and fork_child(f),
# which runs f() in a forked child and returns what it printed, or "HUNG" when it did not exit in time.
PRELUDE = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    import lenet_fast

    model = lenet_fast.LeNet5("modern")
    batch = np.random.default_rng(0).integers(0, 256, (64, 28, 28), dtype=np.uint8)

    def answer():
        return model.forward(batch).tobytes().hex()

    def fork_child(work, seconds=20):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                out = str(work())
            except BaseException as exc:
                out = f"{type(exc).__name__}: {exc}"
            os.write(w, out.encode())
            os._exit(0)
        os.close(w)
        deadline = time.monotonic() + seconds
        while os.waitpid(pid, os.WNOHANG)[0] == 0:
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                os.close(r)
                return "HUNG"
            time.sleep(0.02)
        with os.fdopen(r) as f:
            return f.read()

    lenet_fast.set_num_threads(2)
""")


def run(script, timeout=60):
    """Runs PRELUDE + script in a fresh interpreter; its stdout lines, without spaces."""
    proc = subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(script)], capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [line.replace(" ", "") for line in proc.stdout.splitlines()]


def test_os_fork_after_a_threaded_batch_predicts_on_one_thread_with_the_parents_bits():
    """The issue's reproducer: the parent predicts a batch on two threads (the pool exists), then a forked
    child predicts the same batch: it finishes, on one thread, with the parent's bits; build_info says 1."""
    out = run("""
        want = answer()
        print(fork_child(answer) == want)
        print(fork_child(lambda: (lenet_fast.get_num_threads(), lenet_fast.build_info()["num_threads"])))
        print(fork_child(lambda: [model.predict(batch[:n]).tolist() == model.predict(batch)[:n].tolist()
                                  for n in (1, 2, 9, 17)]))
        print(answer() == want)  # the parent keeps its threads
    """)
    assert out == ["True", "(1,1)", "[True,True,True,True]", "True"]


def test_more_threads_in_such_a_child_is_a_runtime_error_and_one_is_fine():
    """set_num_threads(2) in that child raises RuntimeError naming spawn and forkserver, the child still
    predicts; set_num_threads(1) is accepted; a grandchild is in the same state; the training kernels and
    predict_proba (softmax) finish too."""
    out = run("""
        answer()
        def more():
            try:
                lenet_fast.set_num_threads(2)
            except RuntimeError as exc:
                return ("spawn" in str(exc) and "forkserver" in str(exc), answer() == want)
            return "accepted"
        want = answer()
        print(fork_child(more))
        print(fork_child(lambda: (lenet_fast.set_num_threads(1), lenet_fast.get_num_threads())[1]))
        print(fork_child(lambda: fork_child(lambda: (answer() == want, lenet_fast.get_num_threads()))))
        grads = model.gradient(batch, np.arange(64) % 10)[0]
        print(fork_child(lambda: all(np.array_equal(a, grads[k]) for k, a in
                                     model.gradient(batch, np.arange(64) % 10)[0].items())))
        print(fork_child(lambda: np.array_equal(model.predict_proba(np.repeat(batch, 80, 0)),
                                                np.repeat(model.predict_proba(batch), 80, 0))))
    """)
    assert out == ["(True,True)", "1", "(True,1)", "True", "True"]


def test_threadpoolctl_cannot_raise_the_threads_of_such_a_child():
    """threadpoolctl sets OpenMP's count directly: in such a child the kernels stay on one thread (a
    raised count would hang them) and the answer keeps its bits."""
    pytest.importorskip("threadpoolctl")
    out = run("""
        want = answer()
        def limited():
            import threadpoolctl
            with threadpoolctl.threadpool_limits(limits=2, user_api="openmp"):
                return answer() == want
        print(fork_child(limited))
    """)
    assert out == ["True"]


def test_a_child_forked_before_any_threaded_call_keeps_its_threads():
    """With libgomp, a child forked before the parent's first parallel region has no pool to lose: it
    starts its own, so it may use two threads, with the same bits."""
    out = run("""
        single = model.forward(batch[:1])  # one image: runs on the calling thread, no pool
        def child():
            lenet_fast.set_num_threads(2)
            return (lenet_fast.get_num_threads(), answer())
        got = fork_child(child)
        print(got == repr((2, answer())))
    """)
    assert out == ["True"]


def test_multiprocessing_fork_pool_map_after_a_threaded_batch():
    """multiprocessing's fork start method (Pool.map) after the parent predicted a batch on two threads:
    the workers finish, with the parent's bits."""
    out = run("""
        import multiprocessing as mp
        want = [model.predict(batch[i::4]).tolist() for i in range(4)]
        def work(i):
            return model.predict(batch[i::4]).tolist()
        with mp.get_context("fork").Pool(2) as pool:
            print(pool.map_async(work, range(4)).get(timeout=30) == want)
    """)
    assert out == ["True"]


SPAWNED = textwrap.dedent("""
    import sys
    import numpy as np
    import lenet_fast

    def work(args):
        i, threads = args
        lenet_fast.set_num_threads(threads)
        model = lenet_fast.LeNet5("modern")
        batch = np.random.default_rng(0).integers(0, 256, (64, 28, 28), dtype=np.uint8)
        return lenet_fast.get_num_threads(), model.forward(batch).tobytes()

    if __name__ == "__main__":
        import multiprocessing as mp
        _, want = work((0, 2))  # the parent's pool exists
        with mp.get_context(sys.argv[1]).Pool(2) as pool:
            got = pool.map_async(work, [(0, 2), (1, 2)]).get(timeout=60)
        print(all(t == 2 and out == want for t, out in got))
""")


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_spawn_and_forkserver_children_have_their_threads(method, tmp_path):
    """The start methods the RuntimeError recommends: their workers run two threads, with the bits of the
    parent (which had started its own threads first)."""
    script = tmp_path / "spawned.py"
    script.write_text(SPAWNED)
    proc = subprocess.run([sys.executable, str(script), method], capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.split() == ["True"]
