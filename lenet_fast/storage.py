"""Parameter files: .npz archives written atomically and read without unpickling, shared by saved models
(model.save, model.load) and training checkpoints (train)."""
import os
import secrets

import numpy as np

from . import _core


def write_npz(path, arrays):
    """arrays to path as .npz, written beside it, flushed to disk and moved into place: a failure (or
    Ctrl-C) part way leaves any earlier file at path as it was, and no temporary file."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        while tmp is None:
            # Named before it exists: Ctrl-C can land right after os.open returns, and the cleanup below
            # must know the file then.
            tmp = os.path.join(folder, f".lenet_fast-{secrets.token_hex(8)}.tmp")
            try:  # mode 0666 less the umask, as open() gives (never os.umask: it is process-wide)
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
            except FileExistsError:  # someone else's: not ours to remove
                tmp = None
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the name points at it
        os.replace(tmp, path)
    except BaseException:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_npz(path, what):
    """Every array of an .npz file, never unpickling; a damaged file raises ValueError."""
    try:
        # the file opened here, so that it is closed whatever np.load does (it leaves a file it opened
        # itself open when the zip archive inside is damaged)
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as f:
            return {name: f[name] for name in f.files}
    except FileNotFoundError:
        raise
    except Exception as exc:  # OSError, EOFError, ValueError, zipfile.BadZipFile: a damaged archive
        raise ValueError(f"{path}: not a lenet_fast {what} file ({type(exc).__name__}: {exc})") from None


def check_finite(params):
    """ValueError naming the first parameter that holds NaN or infinity."""
    for name, a in params.items():
        if a.dtype == np.float32 and not _core.all_finite(a):
            raise ValueError(f"{name} contains NaN or infinity (a diverged run?): not saved")
