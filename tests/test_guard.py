"""The reader-writer guard (_core.Guard) between training and every other use of a model: readers share,
a writer refuses other threads' reads and waits for the running ones, the writing thread may read, and
nesting a write inside a read (or two writes) is refused rather than left to deadlock. An update (the
brief writer of set_params) waits for the running reads, and reads arriving meanwhile wait for it."""
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
            leave.wait(60)  # far longer than the test: the read must outlast the writer's wait

    # Python leaves SIGINT ignored when the process started with it ignored (a background job of a shell
    # script, as CI may be): Ctrl-C's handler is installed for this test.
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    reader = threading.Thread(target=read)
    reader.start()
    assert inside.wait(60), "the reading thread did not start"
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
        signal.signal(signal.SIGINT, handler)
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


def test_an_update_waits_for_the_reads_running_and_reads_wait_for_it():
    guard = _core.Guard()
    inside, leave, order = threading.Event(), threading.Event(), []

    def read():
        with guard.reading():
            inside.set()
            leave.wait(10)
            order.append("first read done")

    first = threading.Thread(target=read)
    first.start()
    inside.wait(10)
    updated = threading.Event()

    def update():
        with guard.updating():
            order.append("updating")
            time.sleep(0.05)  # a read arriving now must wait, not be refused
            order.append("update done")
        updated.set()

    updater = threading.Thread(target=update)
    updater.start()
    time.sleep(0.05)
    assert order == [] and guard.updating_now  # the update waits for the read running
    leave.set()
    time.sleep(0.01)
    late = in_thread(lambda: guard.reading().__enter__().__exit__(None, None, None) or order.append("late read"))
    first.join(10)
    updater.join(10)
    assert "error" not in late
    assert order == ["first read done", "updating", "update done", "late read"]
    assert guard.readers == 0 and not guard.updating_now


def test_a_nested_read_does_not_wait_for_an_update_waiting_for_it():
    """A thread inside reading() reads again (forward inside a read) while an update waits for it: the
    nested read goes ahead (waiting would deadlock: the update waits for this thread's first read)."""
    guard = _core.Guard()
    with guard.reading():
        updater = threading.Thread(target=lambda: guard.updating().__enter__().__exit__(None, None, None))
        updater.start()
        for _ in range(1000):
            if guard.updating_now:
                break
            time.sleep(0.001)
        assert guard.updating_now
        with guard.reading():
            assert guard.readers == 2
    updater.join(10)
    assert not updater.is_alive() and not guard.updating_now and guard.readers == 0


def test_updates_and_training():
    """An update while another thread trains is refused; the training thread may update; an update from
    inside a read on the same thread is refused rather than left to wait for itself."""
    guard = _core.Guard()
    with guard.writing():
        refused = in_thread(lambda: guard.updating().__enter__())
        assert isinstance(refused.get("error"), RuntimeError) and "being trained" in str(refused["error"])
        with guard.updating():
            assert guard.updating_now
    with guard.reading():
        with pytest.raises(RuntimeError, match="inside a call that uses them"):
            guard.updating().__enter__()
    assert not guard.updating_now and not guard.writing_now and guard.readers == 0
    with guard.updating():
        pass


def test_training_waits_for_an_update_running():
    guard = _core.Guard()
    order = []
    with guard.updating():
        trainer = threading.Thread(target=lambda: guard.writing().__enter__().__exit__(None, None, None) or
                                   order.append("trained"))
        trainer.start()
        trainer.join(0.05)
        assert trainer.is_alive()
        order.append("update done")
    trainer.join(10)
    assert order == ["update done", "trained"]
