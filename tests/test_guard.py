"""The reader-writer guard (_core.Guard) between training and every other use of a model: readers share,
a writer refuses other threads' reads and waits for the running ones, the writing thread may read, and
nesting a write inside a read (or two writes) is refused rather than left to deadlock."""
import signal
import threading
import time

import numpy as np
import pytest

from lenet_fast import _core, model


def in_thread(fn):
    """Run fn in another thread and return what it returned or raised."""
    out = {}

    def run():
        try:
            out["value"] = fn()
        except Exception as exc:  # noqa: BLE001 (returned to the caller)
            out["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    t.join(10)
    assert not t.is_alive()
    return out


def test_readers_share():
    guard = _core.Guard()
    both_inside = threading.Barrier(2, timeout=10)

    def read():
        with guard.reading():
            both_inside.wait()  # would time out if one reader excluded the other
            return guard.readers

    threads = [threading.Thread(target=read) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert guard.readers == 0


def test_a_writer_refuses_reads_from_other_threads_only():
    guard = _core.Guard()
    with guard.writing():
        assert guard.writing_now
        refused = in_thread(lambda: guard.reading().__enter__())
        assert isinstance(refused.get("error"), RuntimeError) and "being trained" in str(refused["error"])
        with guard.reading():  # the writing thread reads, nested as it likes
            with guard.reading():
                assert guard.readers == 2
    assert not guard.writing_now and guard.readers == 0
    assert "error" not in in_thread(lambda: guard.reading().__enter__().__exit__(None, None, None))


def test_a_writer_waits_for_the_reads_running():
    guard = _core.Guard()
    inside, order = threading.Event(), []

    def read():
        with guard.reading():
            inside.set()
            time.sleep(0.05)
            order.append("read done")

    t = threading.Thread(target=read)
    t.start()
    inside.wait(10)
    with guard.writing():
        order.append("writing")
        assert guard.readers == 0
    t.join()
    assert order == ["read done", "writing"]


def test_one_writer_and_no_write_inside_a_read():
    guard = _core.Guard()
    with guard.writing():
        with pytest.raises(RuntimeError, match="already being trained"):
            guard.writing().__enter__()
        assert isinstance(in_thread(lambda: guard.writing().__enter__()).get("error"), RuntimeError)
    with guard.reading():
        with pytest.raises(RuntimeError, match="inside a call that uses it"):
            guard.writing().__enter__()
    assert not guard.writing_now and guard.readers == 0
    with guard.writing():  # and after all of that, the guard is free again
        pass


def test_ctrl_c_while_a_writer_waits_leaves_no_writer():
    """Ctrl-C (a real SIGINT to this thread) while writing() waits for a reader: KeyboardInterrupt, and the
    guard is as it was, so that reads from other threads and a later write go through."""
    guard = _core.Guard()
    inside, leave = threading.Event(), threading.Event()

    def read():
        with guard.reading():
            inside.set()
            leave.wait(10)

    reader = threading.Thread(target=read)
    reader.start()
    inside.wait(10)
    main = threading.get_ident()
    timer = threading.Timer(0.05, signal.pthread_kill, (main, signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            with guard.writing():
                pytest.fail("the writer went ahead of a running read")
    finally:
        timer.join()
        leave.set()
        reader.join()
    assert not guard.writing_now and guard.readers == 0
    assert "error" not in in_thread(lambda: guard.reading().__enter__().__exit__(None, None, None))
    with guard.writing():
        pass


def test_an_error_inside_leaves_the_guard_free():
    guard = _core.Guard()
    for context in (guard.reading, guard.writing):
        with pytest.raises(KeyError):
            with context():
                raise KeyError("boom")
    assert guard.readers == 0 and not guard.writing_now
    with guard.writing():
        pass


def test_a_network_forward_is_a_reader():
    """Network.forward takes the guard's read side: refused while another thread writes."""
    m = model.LeNet5("modern")
    x = np.zeros((1, 28, 28), np.uint8)
    with m.guard.writing():
        m.forward(x)  # the writing thread itself
        out = in_thread(lambda: m.forward(x))
        assert isinstance(out.get("error"), RuntimeError)
        assert isinstance(in_thread(lambda: m.forward(x[:0])).get("error"), RuntimeError)  # even empty
    assert m.guard.readers == 0
    assert m.forward(x).shape == (1, 10)
