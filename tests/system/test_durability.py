"""Nothing lost: Ctrl-C during fit leaves the last checkpoint whole, and resuming from it ends on exactly the
weights of an uninterrupted run; a save that fails part way (an error, a full disk, Ctrl-C) leaves the
destination as it was and no temporary file behind. Saves respect their destination (a regular file or a
new one; never a device, FIFO or directory; a symlink written through; the mode kept; the folder flushed)
and clean up after killed writers; a crafted file is refused before it is unpacked.
(SIGKILL: test_kill.py; a real full disk: test_disk_full.py.)
"""
import errno
import io
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

import lenet_fast
from lenet_fast import optim, storage
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


# What save() writes over: a regular file or nothing; anything else refused, untouched.

def test_save_refuses_a_fifo_and_leaves_it(tmp_path):
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a regular file"):
        lenet_fast.LeNet5("classic").save(fifo)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and os.listdir(tmp_path) == ["pipe.npz"]


def test_save_refuses_a_symlink_loop(tmp_path):
    (tmp_path / "a.npz").symlink_to("b.npz")
    (tmp_path / "b.npz").symlink_to("a.npz")
    with pytest.raises(ValueError, match="symbolic link loop"):
        lenet_fast.LeNet5("classic").save(tmp_path / "a.npz")
    assert sorted(os.listdir(tmp_path)) == ["a.npz", "b.npz"]


@pytest.mark.skipif(os.geteuid() != 0, reason="only root may make a device node")
def test_save_refuses_a_device_node(tmp_path):
    """A character device like /dev/null (made here, in tmp_path: a regression must not replace the
    system's own /dev/null) is refused, untouched."""
    null = tmp_path / "null"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # /dev/null's numbers
    with pytest.raises(ValueError, match="not a regular file"):
        lenet_fast.LeNet5("classic").save(null)
    assert stat.S_ISCHR(os.lstat(null).st_mode) and os.lstat(null).st_rdev == os.makedev(1, 3)
    assert os.listdir(tmp_path) == ["null"]


def test_save_refuses_a_directory_and_a_symlink_to_one(tmp_path):
    (tmp_path / "dir.npz").mkdir()
    (tmp_path / "link.npz").symlink_to(tmp_path / "dir.npz")
    for name in ("dir.npz", "link.npz"):
        with pytest.raises(IsADirectoryError):
            lenet_fast.LeNet5("classic").save(tmp_path / name)
    assert sorted(os.listdir(tmp_path)) == ["dir.npz", "link.npz"] and os.listdir(tmp_path / "dir.npz") == []


def test_save_writes_through_a_symlink(tmp_path):
    """A symbolic link stays a link (relative, and a chain of two); its final target gets the new file."""
    (tmp_path / "real").mkdir()
    lenet_fast.LeNet5("classic", seed=1).save(tmp_path / "real" / "m.npz")
    (tmp_path / "first.npz").symlink_to("real/m.npz")
    (tmp_path / "second.npz").symlink_to("first.npz")
    lenet_fast.LeNet5("classic", seed=2).save(tmp_path / "second.npz")
    assert os.readlink(tmp_path / "second.npz") == "first.npz"
    assert os.readlink(tmp_path / "first.npz") == "real/m.npz"
    assert np.array_equal(lenet_fast.load(tmp_path / "real" / "m.npz").params_vector,
                          lenet_fast.LeNet5("classic", seed=2).params_vector)
    assert sorted(os.listdir(tmp_path)) == ["first.npz", "real", "second.npz"]
    assert os.listdir(tmp_path / "real") == ["m.npz"]
    (tmp_path / "dangling.npz").symlink_to("real/new.npz")  # a link to a file not yet made: made
    lenet_fast.LeNet5("classic", seed=3).save(tmp_path / "dangling.npz")
    assert (tmp_path / "dangling.npz").is_symlink() and (tmp_path / "real" / "new.npz").is_file()


def test_save_over_a_hard_linked_file_replaces_this_name_only(tmp_path):
    """The documented choice: atomic replacement of the name saved to; other names keep the old file."""
    lenet_fast.LeNet5("classic", seed=1).save(tmp_path / "m.npz")
    os.link(tmp_path / "m.npz", tmp_path / "backup.npz")
    lenet_fast.LeNet5("classic", seed=2).save(tmp_path / "m.npz")
    assert np.array_equal(lenet_fast.load(tmp_path / "m.npz").params_vector,
                          lenet_fast.LeNet5("classic", seed=2).params_vector)
    assert np.array_equal(lenet_fast.load(tmp_path / "backup.npz").params_vector,
                          lenet_fast.LeNet5("classic", seed=1).params_vector)
    assert os.stat(tmp_path / "backup.npz").st_nlink == 1


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o604])
def test_save_keeps_the_mode_of_the_file_it_replaces(tmp_path, mode):
    """A private 0600 checkpoint stays private (fit's checkpoints too), whatever the umask."""
    path = tmp_path / "m.npz"
    lenet_fast.LeNet5("classic").save(path)
    os.chmod(path, mode)
    umask = os.umask(0o077 if mode != 0o600 else 0o022)  # would narrow, or widen, a new file's mode
    try:
        lenet_fast.LeNet5("classic", seed=2).save(path)
        lenet_fast.LeNet5("modern").fit(*synthetic_digits(20, seed=1), epochs=1, verbose=0, checkpoint=path)
    finally:
        os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == mode


@pytest.mark.skipif(os.geteuid() != 0, reason="only root may give a file to another user")
def test_save_as_root_keeps_the_owner_and_group(tmp_path):
    path = tmp_path / "m.npz"
    lenet_fast.LeNet5("classic").save(path)
    os.chown(path, 12345, 23456)
    lenet_fast.LeNet5("classic", seed=2).save(path)
    assert (os.stat(path).st_uid, os.stat(path).st_gid) == (12345, 23456)


def test_save_flushes_the_folder_after_the_rename(tmp_path, monkeypatch):
    """The file is flushed, renamed, then its folder is flushed (so the new name survives a power cut)."""
    steps, real_fsync, real_replace = [], os.fsync, os.replace

    def fsync(fd):
        steps.append(("fsync", "folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"))
        real_fsync(fd)

    def replace(src, dst):
        steps.append(("replace", os.path.basename(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    (tmp_path / "sub").mkdir()
    lenet_fast.LeNet5("classic").save(tmp_path / "sub" / "m.npz")
    assert steps == [("fsync", "file"), ("replace", "m.npz"), ("fsync", "folder")]


def test_save_on_a_file_system_that_cannot_flush_a_folder(tmp_path, monkeypatch):
    """Some file systems refuse fsync on a folder (EINVAL): the save, already renamed into place, stands."""
    real_fsync = os.fsync

    def fsync(fd):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "Invalid argument")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    lenet_fast.LeNet5("classic").save(tmp_path / "m.npz")
    assert os.listdir(tmp_path) == ["m.npz"] and lenet_fast.load(tmp_path / "m.npz").variant == "classic"


def test_a_run_record_too_long_to_read_back_is_not_saved(tmp_path, monkeypatch):
    """fit refuses to write a checkpoint whose record of the run load() would refuse, keeping the last."""
    x, y = synthetic_digits(20, seed=1)
    ckpt = tmp_path / "run.npz"
    monkeypatch.setattr(storage, "TEXT_CHARS", 460)  # one epoch's record (some 410 characters) fits, not two
    with pytest.raises(ValueError, match="longer than a checkpoint holds"):
        lenet_fast.LeNet5("modern").fit(x, y, epochs=3, verbose=0, checkpoint=ckpt)
    assert os.listdir(tmp_path) == ["run.npz"]
    assert len(lenet_fast.LeNet5("modern").fit(x, y, epochs=1, verbose=0, resume=ckpt)) == 1


def test_save_removes_the_temporary_files_of_dead_writers_only(tmp_path):
    """Temporary files are named .<name>.<pid>.<random>.lenet_fast.tmp; a save removes those of its own
    destination whose writer has ended, never a running process's, another destination's or a stranger."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, timeout=60, check=True)
    dead_pid = int(dead.stdout)
    leftovers = {
        f".m.npz.{dead_pid}.0123456789abcdef.lenet_fast.tmp": False,  # a dead writer's: removed
        f".m.npz.{os.getpid()}.0123456789abcdef.lenet_fast.tmp": True,  # this process (another thread)
        ".m.npz.1.0123456789abcdef.lenet_fast.tmp": True,  # a running process (init)
        f".other.npz.{dead_pid}.0123456789abcdef.lenet_fast.tmp": True,  # another destination
        f".m.npz.{dead_pid}.notours.lenet_fast.tmp": True,  # not a name save makes
        "m.npz.tmp": True,
    }
    for name in leftovers:
        (tmp_path / name).write_bytes(b"partial")
    lenet_fast.LeNet5("classic").save(tmp_path / "m.npz")
    assert sorted(os.listdir(tmp_path)) == sorted(["m.npz"] + [n for n, kept in leftovers.items() if kept])


# Reading: a crafted file is refused from its member list and .npy headers, before any array is read.

def npy_header(shape, dtype="<f4"):
    """The .npy header of an array of shape and dtype (no data)."""
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {"descr": dtype, "fortran_order": False, "shape": shape})
    return out.getvalue()


def npy(a):
    """The .npy file of array a."""
    out = io.BytesIO()
    np.save(out, a)
    return out.getvalue()


def crafted(path, members):
    """A .npz whose members are name -> bytes (compressed: a huge zero array costs little disk)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name + ".npy", data)
    return path


def peak_bytes(call):
    """call()'s ValueError message and the peak of the memory traced while it ran."""
    tracemalloc.start()
    try:
        with pytest.raises(ValueError) as info:
            call()
        return str(info.value), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


HUGE = 2**28  # floats a crafted member declares: 1 GiB if unpacked


@pytest.mark.parametrize("case", ["huge parameter", "huge record", "unknown names", "huge last member"])
def test_load_refuses_a_crafted_file_before_unpacking_it(tmp_path, case):
    """Each file is a few megabytes at most on disk; unpacking any of its members would take a GiB. load()
    and resume refuse it with ValueError while using under 16 MiB."""
    params = lenet_fast.LeNet5("classic").params
    zeros = b"\0" * (4 * HUGE // 1024)  # the members are truncated: the header is what matters
    members = {
        "huge parameter": {"__format__": npy(np.array(1)), "c1.weight": npy_header((HUGE,)) + zeros},
        "huge record": {"__format__": npy(np.array(1)), "__checkpoint__": npy_header((), f"<U{HUGE}") + zeros},
        "unknown names": {f"a{i}": npy_header((HUGE,)) for i in range(5000)},
        "huge last member": {"__format__": npy(np.array(1)), "__variant__": npy(np.array("classic")),
                             **{name: npy(a) for name, a in params.items() if name != "f6.weight"},
                             "f6.weight": npy_header((HUGE,)) + zeros},
    }[case]
    path = crafted(tmp_path / "crafted.npz", members)
    message, peak = peak_bytes(lambda: lenet_fast.load(path))
    assert str(path) in message and peak < 16 * 2**20, (message, peak)
    x, y = synthetic_digits(10, seed=1)
    message, peak = peak_bytes(lambda: lenet_fast.LeNet5("classic").fit(x, y, verbose=0, resume=path))
    assert str(path) in message and peak < 16 * 2**20, (message, peak)
