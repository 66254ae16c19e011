"""Parameter files: .npz archives written atomically and read without unpickling, shared by saved models
(model.save, model.load) and training checkpoints (train).

A write goes to a temporary file beside the destination, named ``.<name>.<pid>.<random>.lenet_fast.tmp``
(the destination's name, the writer's process id), which is flushed, given the destination's mode and moved
into place; then the folder is flushed, so that the new name survives a power cut. A writer killed part
way (SIGKILL, a power cut) leaves its temporary file; the next write to the same destination removes the
ones whose writer is no longer running.
"""
import errno
import math
import os
import re
import secrets
import stat
import zipfile

import numpy as np
from numpy.lib import format as npy_format

from . import _core

NUMBER_BYTES = 8  # the most bytes per number a file may use (float64, int64); lenet_fast writes float32
TEXT_CHARS = 2**24  # the longest text member (a checkpoint's record of the run), in characters
NAME_CHARS = 64  # the longest short text member (a variant's name)
_OVERHEAD = 4096  # bytes per member beyond its data (zip entry, .npy header) when capping the file size
_TMP_SUFFIX = ".lenet_fast.tmp"
_TMP_NAME_CHARS = 100  # of the destination's name in a temporary file's (NAME_MAX is 255 bytes)


def write_npz(path, arrays):
    """arrays to path as .npz, atomically (write_file)."""
    write_file(path, lambda f: np.savez(f, **arrays))


def write_file(path, write):
    """The bytes write(f) puts into the binary file object f to path, atomically: a reader of path sees the
    old file or the new one, whole; a failure (or Ctrl-C) part way leaves the old file as it was and no
    temporary file.

    What path may be: a missing file (created with mode 0666 less the umask, as open() gives) or a regular
    file (replaced; the new file keeps its mode, and its owner and group where this process may set them).
    A symbolic link is followed: its final target is written and the link stays a link. Anything else (a
    directory, a device such as /dev/null, a FIFO, a socket) is refused with IsADirectoryError or
    ValueError before anything is written. A file with other hard links is replaced under this name only:
    the other names keep the old contents (writing in place, as np.save does, would keep the links but
    lose the atomicity: a crash part way would leave every name with a half-written file)."""
    target, st = destination(path)
    folder, name = os.path.split(target)
    _remove_dead_writers_files(folder, name)
    mode = 0o666 if st is None else stat.S_IMODE(st.st_mode) & 0o777
    tmp = None
    try:
        while tmp is None:
            # Named before it exists: Ctrl-C can land right after os.open returns, and the cleanup below
            # must know the file then.
            tmp = os.path.join(folder, _tmp_name(name, os.getpid(), secrets.token_hex(8)))
            # Created with the final mode (a new file's: 0666 less the umask, as open() gives; never read
            # through os.umask, which is process-wide), so no reader ever sees more than the final file.
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
            except FileExistsError:  # someone else's: not ours to remove
                tmp = None
        with os.fdopen(fd, "wb") as f:
            if st is not None:
                _keep_owner_and_mode(f.fileno(), st)
            write(f)
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the name points at it
        os.replace(tmp, target)
        tmp = None
        _flush_folder(folder)  # the rename itself is on disk
    except BaseException:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        raise


def in_existing_folder(path, option=None):
    """path as a str, after checking that the folder it names a file in exists: FileNotFoundError naming both
    (and the command-line option that gave path, if any) otherwise, so that a typo is found before the work
    whose result goes there."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{option + ' ' if option else ''}{path}: the folder {folder} does not exist")
    return path


def destination(path):
    """(the file a write to path replaces: a symlink's final target, its os.lstat or None when missing),
    refusing with IsADirectoryError or ValueError what write_file never replaces (see there)."""
    target = os.path.realpath(os.fspath(path))  # a symlink's final target; the link itself is not replaced
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return target, None
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(f"{path}: is a directory; save needs a file name")
    if stat.S_ISLNK(st.st_mode):  # realpath stops at a loop
        raise ValueError(f"{path}: a symbolic link loop; save writes a regular file, new or existing")
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{path}: not a regular file (a device, FIFO or socket is never replaced); save "
                         "writes a regular file, new or existing")
    return target, st


def _tmp_name(name, pid, token):
    return f".{name[:_TMP_NAME_CHARS]}.{pid}.{token}{_TMP_SUFFIX}"


def _keep_owner_and_mode(fd, st):
    """The replaced file's owner and group (as far as this process may give them: root any, others a
    group they belong to), then its mode exactly (the umask may have narrowed it at creation; chown may
    clear set-id bits)."""
    for uid, gid in ((st.st_uid, st.st_gid), (-1, st.st_gid)):
        try:
            os.fchown(fd, uid, gid)
            break
        except PermissionError:
            pass
    os.fchmod(fd, stat.S_IMODE(st.st_mode) & 0o777)


def _flush_folder(folder):
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):  # a file system that cannot flush a folder
            raise
    finally:
        os.close(fd)


def _remove_dead_writers_files(folder, name):
    """Remove the temporary files of writes to folder/name whose writer process has ended (killed part
    way). A file whose writer is running, or may be (this process, a pid now reused, a pid we may not
    signal), is left alone. A process id names a process of this host and PID namespace only: in a folder
    shared with another machine, a running writer's file there could be taken, and that save then fails
    (its rename finds no file) rather than leaving anything half-written."""
    pattern = re.compile(re.escape(f".{name[:_TMP_NAME_CHARS]}.") + r"([1-9][0-9]{0,9})\.[0-9a-f]{16}"
                         + re.escape(_TMP_SUFFIX))
    try:
        entries = os.listdir(folder)
    except OSError:
        return  # the write itself will report what is wrong with the folder
    for entry in entries:
        found = pattern.fullmatch(entry)
        if found is None or int(found.group(1)) == os.getpid() or _running(int(found.group(1))):
            continue
        try:
            os.unlink(os.path.join(folder, entry))
        except FileNotFoundError:  # another writer's cleanup got there first
            pass


def _running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # someone else's process, or not a pid this host has: not ours to judge
    return True


def read_npz(path, what, limits):
    """The arrays of an .npz file, never unpickling. limits maps each name the file may hold to the most
    bytes its array may take (see NUMBER_BYTES, TEXT_CHARS). The file's size, then every member's name,
    dtype and declared size (its .npy header) are checked before any array is read, so a crafted file costs
    little memory before it is refused. A damaged file, or one holding anything else, raises ValueError."""
    try:
        # the file opened here, so that it is closed whatever zipfile does with a damaged archive
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            most = sum(limits.values()) + _OVERHEAD * (len(limits) + 1)
            if size > most:
                raise ValueError(f"{size} bytes, more than a {what} file takes (at most {most})")
            with zipfile.ZipFile(fh) as archive:
                members = _members(archive, limits)
                out = {}
                for name, info in members.items():
                    with archive.open(info) as f:
                        out[name] = npy_format.read_array(f, allow_pickle=False)
                return out
    except FileNotFoundError:
        raise
    except Exception as exc:  # OSError, EOFError, ValueError, zipfile.BadZipFile: a damaged archive
        raise ValueError(f"{path}: not a lenet_fast {what} file ({type(exc).__name__}: {exc})") from None


def peek_npz(path, name, limit):
    """The array of the member name of the .npz file at path, read as read_npz reads (never unpickling; at
    most limit bytes), or None when the file has no such member or cannot be read (read_npz then says why):
    a look at one entry, such as a model file's precision, before choosing how to read the rest."""
    try:
        with open(path, "rb") as fh, zipfile.ZipFile(fh) as archive:
            members = _members(archive, {name: limit}, [archive.getinfo(name + ".npy")])
            with archive.open(members[name]) as f:
                return npy_format.read_array(f, allow_pickle=False)
    except Exception:  # OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile
        return None


def _members(archive, limits, infos=None):
    """name -> ZipInfo of each array of archive (or of those infos among them), after checking names, dtypes
    and declared sizes."""
    members = {}
    for info in archive.infolist() if infos is None else infos:
        name = info.filename[: -len(".npy")] if info.filename.endswith(".npy") else None
        if name not in limits:
            raise ValueError(f"unexpected member {info.filename!r}")
        if name in members:
            raise ValueError(f"member {info.filename!r} appears twice")
        with archive.open(info) as f:
            version = npy_format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = npy_format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = npy_format.read_array_header_2_0(f)
            else:
                raise ValueError(f"{name}: .npy format {version} is not read")
        if dtype.hasobject:
            raise ValueError(f"{name}: an object array (pickled data is never read)")
        declared = dtype.itemsize * math.prod(shape)
        if declared > limits[name]:
            raise ValueError(f"{name}: {dtype} {shape} declares {declared} bytes, more than the "
                             f"{limits[name]} it may take")
        members[name] = info
    return members


def text_bytes(chars):
    """The bytes of a text member of chars characters (numpy stores 4 bytes a character)."""
    return 4 * chars


def check_finite(params):
    """ValueError naming the first parameter that holds NaN or infinity."""
    for name, a in params.items():
        if a.dtype == np.float32 and not _core.all_finite(a):
            raise ValueError(f"{name} contains NaN or infinity (a diverged run?): not saved")
