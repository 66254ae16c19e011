"""SIGKILL (nothing runs after it: no handler, no cleanup) during a save or during fit: the destination
holds the old file or the new one, whole; the killed writer's temporary file is removed by the next save to
the same destination; resuming from the checkpoint ends on exactly the weights of an uninterrupted run.
"""
import os
import re
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

TIMEOUT = 60  # seconds any child may take

# A save that writes part of its file and then waits to be killed.
STUCK_SAVE = textwrap.dedent("""
    import sys
    import time
    import numpy as np
    import lenet_fast

    def savez(f, **arrays):
        f.write(b"x" * 5000)
        f.flush()
        print("writing", flush=True)
        time.sleep(60)

    np.savez = savez
    lenet_fast.LeNet5("classic", seed=2).save(sys.argv[1])
""")

# Saves of two models in turn, forever.
SAVES = textwrap.dedent("""
    import sys
    import lenet_fast
    models = [lenet_fast.LeNet5("classic", seed=1), lenet_fast.LeNet5("classic", seed=2)]
    print("ready", flush=True)
    for i in range(10**9):
        models[i % 2].save(sys.argv[1])
""")

# fit with a checkpoint after every epoch, forever.
FIT = textwrap.dedent("""
    import sys
    import lenet_fast
    from lenet_fast import optim
    from lenet_fast.datasets import synthetic_digits
    x, y = synthetic_digits(300, seed=1)
    print("ready", flush=True)
    lenet_fast.LeNet5("modern", seed=2).fit(x, y, epochs=10**6, batch_size=32, optimizer=optim.Adam(),
                                            verbose=0, seed=3, checkpoint=sys.argv[1])
""")


def start(script, path):
    child = subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    line = child.stdout.readline()
    assert line in ("ready\n", "writing\n"), child.communicate(timeout=TIMEOUT)[1]
    return child


def kill(child):
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=TIMEOUT)
    assert child.returncode == -signal.SIGKILL
    child.stdout.close()
    child.stderr.close()


def temporaries(folder):
    return [name for name in os.listdir(folder) if name.endswith(".lenet_fast.tmp")]


def test_a_save_killed_part_way_leaves_the_old_file_and_the_next_save_cleans_up(tmp_path):
    path = tmp_path / "m.npz"
    lenet_fast.LeNet5("classic", seed=1).save(path)
    before = path.read_bytes()
    child = start(STUCK_SAVE, path)
    try:
        kill(child)
    finally:
        child.kill()
    left = temporaries(tmp_path)
    assert len(left) == 1 and re.fullmatch(rf"\.m\.npz\.{child.pid}\.[0-9a-f]{{16}}\.lenet_fast\.tmp", left[0])
    assert path.read_bytes() == before  # untouched
    lenet_fast.LeNet5("classic", seed=3).save(path)
    assert os.listdir(tmp_path) == ["m.npz"]
    assert np.array_equal(lenet_fast.load(path).params_vector, lenet_fast.LeNet5("classic", seed=3).params_vector)


def test_saves_killed_at_any_point_leave_a_whole_file(tmp_path):
    """A process saving in a loop, killed at a few points: the file is one of the two models, whole."""
    path = tmp_path / "m.npz"
    expected = [lenet_fast.LeNet5("classic", seed=s).params_vector for s in (1, 2)]
    rng = np.random.default_rng(5)
    for _ in range(4):
        child = start(SAVES, path)
        try:
            time.sleep(rng.uniform(0.05, 0.3))
            kill(child)
        finally:
            child.kill()
        got = lenet_fast.load(path).params_vector
        assert any(np.array_equal(got, e) for e in expected)
    lenet_fast.LeNet5("classic", seed=1).save(path)
    assert os.listdir(tmp_path) == ["m.npz"]


@pytest.mark.parametrize("delay", [0.0, 0.03, 0.11])
def test_fit_killed_resumes_exactly(tmp_path, delay):
    """fit with a checkpoint, killed at some point after its first checkpoint (between epochs, inside
    one, or inside a save): the checkpoint loads, and resuming ends on the weights (and losses) of an
    uninterrupted run of one more epoch."""
    ckpt = tmp_path / "run.npz"
    child = start(FIT, ckpt)
    try:
        deadline = time.monotonic() + TIMEOUT
        while not ckpt.exists() and time.monotonic() < deadline:
            time.sleep(0.002)
        assert ckpt.exists(), "no checkpoint within a minute"
        time.sleep(delay)
        kill(child)
    finally:
        child.kill()
    saved = lenet_fast.load(ckpt)
    x, y = synthetic_digits(300, seed=1)
    resumed = lenet_fast.LeNet5("modern", seed=99)
    done = len(resumed.fit(x, y, epochs=1, batch_size=32, optimizer=optim.Adam(), verbose=0, seed=3,
                           resume=ckpt))  # no epoch run: the checkpoint's history
    assert done >= 1 and np.array_equal(resumed.params_vector, saved.params_vector)
    history = resumed.fit(x, y, epochs=done + 1, batch_size=32, optimizer=optim.Adam(), verbose=0, seed=3,
                          resume=ckpt, checkpoint=ckpt)
    assert os.listdir(tmp_path) == ["run.npz"]  # the killed writer's temporary file, if any, removed
    whole = lenet_fast.LeNet5("modern", seed=2)
    whole_history = whole.fit(x, y, epochs=done + 1, batch_size=32, optimizer=optim.Adam(), verbose=0, seed=3)
    assert np.array_equal(resumed.params_vector, whole.params_vector)
    assert [r["loss"] for r in history] == [r["loss"] for r in whole_history]
