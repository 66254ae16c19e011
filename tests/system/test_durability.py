"""Nothing lost: Ctrl-C during fit leaves the last checkpoint whole, and resuming from it ends on exactly the
weights of an uninterrupted run; a save that fails part way (an error, a full disk, Ctrl-C) leaves the
destination as it was and no temporary file behind.
"""
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import lenet_fast
from lenet_fast import optim
from lenet_fast.datasets import synthetic_digits

FIT = textwrap.dedent("""
    import signal
    import sys
    import lenet_fast
    # Python leaves SIGINT alone when it starts ignored (a background job of a shell script, as CI may be).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from lenet_fast.datasets import synthetic_digits
    x, y = synthetic_digits(800, seed=1)
    print("ready", flush=True)
    lenet_fast.LeNet5("modern", seed=2).fit(x, y, epochs=1000, batch_size=32, verbose=0, seed=3,
                                            checkpoint=sys.argv[1])
""")


def test_ctrl_c_during_fit_keeps_the_checkpoint_and_resume_is_exact(tmp_path):
    ckpt = tmp_path / "run.npz"
    child = subprocess.Popen([sys.executable, "-c", FIT, str(ckpt)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "ready\n"
        deadline = time.monotonic() + 60
        while not ckpt.exists() and time.monotonic() < deadline:
            time.sleep(0.005)
        assert ckpt.exists(), "no checkpoint within a minute"
        time.sleep(0.1)  # a little into the next epochs (some 0.05 s each), or into a save
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode != 0 and "KeyboardInterrupt" in err, err
    assert [p.name for p in tmp_path.iterdir()] == ["run.npz"]  # no temporary file left

    saved = lenet_fast.load(ckpt)  # whole and loadable, as a model too
    x, y = synthetic_digits(800, seed=1)
    resumed = lenet_fast.LeNet5("modern", seed=99)
    history = resumed.fit(x, y, epochs=1, batch_size=32, verbose=0, seed=3, resume=ckpt)  # epochs done
    epochs = len(history)
    assert epochs >= 1 and np.array_equal(resumed.params_vector, saved.params_vector)
    history = resumed.fit(x, y, epochs=epochs + 1, batch_size=32, verbose=0, seed=3, resume=ckpt)
    whole = lenet_fast.LeNet5("modern", seed=2)
    whole_history = whole.fit(x, y, epochs=epochs + 1, batch_size=32, verbose=0, seed=3)
    assert np.array_equal(resumed.params_vector, whole.params_vector)
    assert [r["loss"] for r in history] == [r["loss"] for r in whole_history]


class Failure(Exception):
    pass


def failing_savez(after_bytes, error):
    """np.savez that writes after_bytes of garbage to the file, then raises error."""
    def savez(f, **arrays):
        f.write(b"x" * after_bytes)
        raise error
    return savez


@pytest.mark.parametrize("error", [Failure("boom"), OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_save_failing_part_way_leaves_the_old_file(tmp_path, monkeypatch, error):
    path = tmp_path / "m.npz"
    lenet_fast.LeNet5("classic", seed=1).save(path)
    before = path.read_bytes()
    monkeypatch.setattr(np, "savez", failing_savez(5000, error))
    with pytest.raises(type(error)):
        lenet_fast.LeNet5("classic", seed=2).save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.npz"]
    assert np.array_equal(lenet_fast.load(path).params_vector, lenet_fast.LeNet5("classic", seed=1).params_vector)


@pytest.mark.parametrize("step", ["fsync", "replace"])
def test_a_save_failing_at_the_last_steps_leaves_the_old_file(tmp_path, monkeypatch, step):
    """The file is written and flushed, then fsync or the rename fails: the old file stays, the temporary
    one is removed. And a new file gets the umask's mode, as open() would give it."""
    path = tmp_path / "m.npz"
    lenet_fast.LeNet5("modern", seed=1).save(path)
    before = path.read_bytes()

    def fail(*args):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, step, fail)
    with pytest.raises(OSError, match="Input/output"):
        lenet_fast.LeNet5("modern", seed=2).save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.npz"]
    umask = os.umask(0o027)
    try:
        lenet_fast.LeNet5("modern").save(tmp_path / "new.npz")
    finally:
        os.umask(umask)
    assert (tmp_path / "new.npz").stat().st_mode & 0o777 == 0o640


def test_a_checkpoint_failing_part_way_keeps_the_last_one(tmp_path, monkeypatch):
    """fit's checkpoint of epoch 2 fails while being written: fit raises, the checkpoint of epoch 1 is
    whole, and resuming from it gives the uninterrupted run's weights."""
    x, y = synthetic_digits(200, seed=4)
    ckpt = tmp_path / "run.npz"
    real_savez, calls = np.savez, []

    def savez(f, **arrays):
        calls.append(1)
        if len(calls) == 2:
            failing_savez(3000, OSError(28, "No space left on device"))(f, **arrays)
        real_savez(f, **arrays)

    monkeypatch.setattr(np, "savez", savez)
    with pytest.raises(OSError, match="No space"):
        lenet_fast.LeNet5("modern").fit(x, y, epochs=3, optimizer=optim.Adam(), verbose=0, checkpoint=ckpt)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["run.npz"]
    resumed = lenet_fast.LeNet5("modern", seed=9)
    assert len(resumed.fit(x, y, epochs=1, verbose=0, resume=ckpt)) == 1
    resumed.fit(x, y, epochs=3, verbose=0, resume=ckpt)
    whole = lenet_fast.LeNet5("modern")
    whole.fit(x, y, epochs=3, optimizer=optim.Adam(), verbose=0)
    assert np.array_equal(resumed.params_vector, whole.params_vector)
