"""A disk that fills part way through a save: here a file size limit (RLIMIT_FSIZE, with SIGXFSZ ignored,
so that a write past it fails with EFBIG as a full disk fails with ENOSPC), set in a child process. The save
raises OSError, the old file is intact, and no temporary file is left; fit stops with OSError, keeping its
last checkpoint.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np

import lenet_fast
from lenet_fast import optim
from lenet_fast.datasets import synthetic_digits

LIMIT = 20_000  # bytes any file may grow to in the child: far less than a model file

CHILD = textwrap.dedent("""
    import errno
    import resource
    import signal
    import sys
    import lenet_fast
    from lenet_fast import optim
    from lenet_fast.datasets import synthetic_digits

    x, y = synthetic_digits(100, seed=1)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[3]), resource.RLIM_INFINITY))
    for call in (lambda: lenet_fast.LeNet5("classic", seed=2).save(sys.argv[1]),
                 lambda: lenet_fast.LeNet5("modern", seed=2).fit(x, y, epochs=2, optimizer=optim.Adam(),
                                                                 verbose=0, checkpoint=sys.argv[2])):
        try:
            call()
        except OSError as exc:
            print(errno.errorcode[exc.errno], flush=True)
        else:
            print("written", flush=True)
""")


def test_a_full_disk_during_a_save_or_a_checkpoint_leaves_the_old_files(tmp_path):
    model, ckpt = tmp_path / "m.npz", tmp_path / "run.npz"
    lenet_fast.LeNet5("classic", seed=1).save(model)
    x, y = synthetic_digits(100, seed=1)
    lenet_fast.LeNet5("modern", seed=1).fit(x, y, epochs=1, optimizer=optim.Adam(), verbose=0, checkpoint=ckpt)
    before = {p: p.read_bytes() for p in (model, ckpt)}
    assert min(len(b) for b in before.values()) > LIMIT
    done = subprocess.run([sys.executable, "-c", CHILD, str(model), str(ckpt), str(LIMIT)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["EFBIG", "EFBIG"]
    assert sorted(os.listdir(tmp_path)) == ["m.npz", "run.npz"]  # no temporary file left
    assert {p: p.read_bytes() for p in before} == before
    assert np.array_equal(lenet_fast.load(model).params_vector, lenet_fast.LeNet5("classic", seed=1).params_vector)
