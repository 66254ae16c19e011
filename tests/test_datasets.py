"""lenet_fast.datasets: IDX files (every type, raw and gzip, and every way one can be broken), load_mnist on the
committed subset, on files written here and on the official set when present, and the drawn digits.

The IDX files are written here by an independent writer, from the format's description (two zero bytes, type
code, number of dimensions, big-endian uint32 dimensions, big-endian data).
"""
import gzip
import struct

import numpy as np
import pytest

from lenet_fast import datasets


TYPE_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}
SHAPES = [(7,), (3, 5), (2, 3, 4), (2, 1, 3, 2)]
# Published class counts of the MNIST training and test sets, digits 0-9.
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def idx_bytes(a):
    head = struct.pack(f">2xBB{a.ndim}I", TYPE_CODES[a.dtype.type], a.ndim, *a.shape)
    return head + a.astype(a.dtype.newbyteorder(">")).tobytes()


def write(path, data, compress=False):
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)
    return path


def random_array(dtype, shape, rng):
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(shape).astype(dtype) * 1e3
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)


# ---- read_idx: well-formed files ---------------------------------------------------------------------------

@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("dtype", list(TYPE_CODES), ids=lambda t: np.dtype(t).name)
def test_read_idx_every_type_and_rank(tmp_path, dtype, compress):
    rng = np.random.default_rng(0)
    for shape in SHAPES:
        a = random_array(dtype, shape, rng)
        path = write(tmp_path / "a.idx", idx_bytes(a), compress)
        b = datasets.read_idx(path)
        assert b.dtype == np.dtype(dtype) and b.dtype.isnative
        assert b.shape == shape
        np.testing.assert_array_equal(b, a)
        assert b.flags.c_contiguous and b.flags.writeable


def test_read_idx_takes_str_and_empty_arrays(tmp_path):
    a = np.zeros((0, 28, 28), np.uint8)
    path = write(tmp_path / "empty.idx", idx_bytes(a))
    assert datasets.read_idx(str(path)).shape == (0, 28, 28)


def test_read_idx_tells_gzip_by_content_not_name(tmp_path):
    a = np.arange(12, dtype=np.int16).reshape(3, 4)
    compressed = write(tmp_path / "plain-name.idx", idx_bytes(a), compress=True)
    raw = write(tmp_path / "looks-compressed.gz", idx_bytes(a))
    np.testing.assert_array_equal(datasets.read_idx(compressed), a)
    np.testing.assert_array_equal(datasets.read_idx(raw), a)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        datasets.read_idx(tmp_path / "nothing-here")


# ---- read_idx: broken files --------------------------------------------------------------------------------

GOOD = idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
HUGE = struct.pack(">2xBB4I", 0x0E, 4, *[2**32 - 1] * 4) + bytes(64)  # ~2.6e39 bytes of float64 claimed

# (case, file content before any compression, what the message says raw, what it says in a gzip file)
BROKEN = [
    ("empty", b"", "empty, no IDX header", "empty, no IDX header"),
    ("short magic", b"\0\0\x08", "truncated IDX header", "truncated IDX header"),
    ("short dimensions", GOOD[:9], "truncated IDX header", "truncated IDX header"),
    ("short data", GOOD[:-1], "truncated", "truncated"),
    ("header only", GOOD[:16], "truncated", "truncated"),
    ("trailing bytes", GOOD + b"\0", "trailing bytes", "trailing bytes"),
    ("bad magic", b"\x01" + GOOD[1:], "not an IDX file", "not an IDX file"),
    ("bad magic 2", b"\0\x08" + GOOD[2:], "not an IDX file", "not an IDX file"),
    ("bad type code", GOOD[:2] + b"\x0a" + GOOD[3:], "unknown IDX type code 0x0a", "unknown IDX type code"),
    ("no dimensions", GOOD[:3] + b"\0", "0 dimensions", "0 dimensions"),
    ("too many dimensions", GOOD[:3] + b"\xff" + GOOD[4:], "255 dimensions", "255 dimensions"),
    ("huge claim", HUGE, "truncated", "more than a gzip file"),
    ("large claim", struct.pack(">2xBBI", 0x08, 1, 10**6) + bytes(10), "truncated", "more than a gzip file"),
    ("plausible claim", struct.pack(">2xBBI", 0x08, 1, 1000) + bytes(10), "truncated", "data ends after 10"),
]


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("case, content, raw_says, gz_says", BROKEN, ids=[b[0] for b in BROKEN])
def test_read_idx_rejects_broken_files(tmp_path, case, content, raw_says, gz_says, compress):
    path = write(tmp_path / "broken.idx", content, compress)
    with pytest.raises(ValueError) as info:
        datasets.read_idx(path)
    message = str(info.value)
    assert str(path) in message
    assert (gz_says if compress else raw_says) in message


def corrupt_gzip_files():
    # a well-formed IDX file, long and varied enough for the deflate data to have some body
    stream = gzip.compress(idx_bytes((np.arange(4000) * 7 % 256).astype(np.uint8)), mtime=0)
    middle = len(stream) // 2
    flipped = bytearray(stream)
    flipped[middle] ^= 0xFF
    wrong_crc = bytearray(stream)
    wrong_crc[-8] ^= 0x01
    wrong_size = bytearray(stream)
    wrong_size[-4] ^= 0x01
    return {
        "cut in half": stream[:middle],
        "cut before the trailer": stream[:-8],
        "flipped byte": bytes(flipped),
        "wrong crc": bytes(wrong_crc),
        "wrong length": bytes(wrong_size),
        "magic then garbage": b"\x1f\x8b" + bytes(range(200)),
        "magic only": b"\x1f\x8b",
        "garbage after the stream": stream + b"not gzip",
    }


@pytest.mark.parametrize("case", list(corrupt_gzip_files()))
def test_read_idx_rejects_corrupt_gzip(tmp_path, case):
    path = write(tmp_path / "broken.gz", corrupt_gzip_files()[case])
    with pytest.raises(ValueError, match="corrupt gzip data") as info:
        datasets.read_idx(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
def test_read_idx_rejects_every_truncation(tmp_path, compress):
    content = idx_bytes(np.arange(60, dtype=np.int32).reshape(3, 4, 5))
    whole = gzip.compress(content, mtime=0) if compress else content
    path = tmp_path / "cut.idx"
    for end in range(len(whole)):
        path.write_bytes(whole[:end])
        with pytest.raises(ValueError, match="cut.idx"):
            datasets.read_idx(path)


def test_read_idx_survives_any_header_byte(tmp_path):
    """Every value of every header byte gives an error or an array that exactly fills the file, never a crash."""
    path = tmp_path / "flipped.idx"
    for position in range(16):
        for value in range(256):
            content = bytearray(GOOD)
            content[position] = value
            path.write_bytes(content)
            try:
                a = datasets.read_idx(path)
            except ValueError as exc:
                assert "flipped.idx" in str(exc)
            else:
                assert a.nbytes == len(GOOD) - 4 - 4 * a.ndim


# ---- load_mnist -----------------------------------------------------------------------------------------------

def check_mnist(images, labels, n):
    assert images.shape == (n, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (n,) and labels.dtype == np.int64
    assert labels.min() >= 0 and labels.max() <= 9


def test_load_mnist_committed_subset(mnist_subset):
    images, labels = datasets.load_mnist(mnist_subset, kind="test")
    check_mnist(images, labels, 1000)
    assert labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]  # MNIST's test set begins so
    assert set(labels.tolist()) == set(range(10))
    assert images.max() == 255 and 25 < images.mean() < 40  # white ink on black, MNIST's mean ~33


def test_load_mnist_from_environment(monkeypatch, mnist_subset):
    monkeypatch.setenv("LENET_FAST_DATA", str(mnist_subset))
    images, labels = datasets.load_mnist(kind="test")
    check_mnist(images, labels, 1000)
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):  # the subset has no training set
        datasets.load_mnist()


def write_mnist(folder, kind, images, labels, compress=False):
    prefix = {"train": "train", "test": "t10k"}[kind]
    suffix = ".gz" if compress else ""
    write(folder / f"{prefix}-images-idx3-ubyte{suffix}", idx_bytes(images), compress)
    write(folder / f"{prefix}-labels-idx1-ubyte{suffix}", idx_bytes(labels), compress)


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
def test_load_mnist_from_a_folder(tmp_path, compress):
    images, labels = datasets.synthetic_digits(30, seed=3)
    write_mnist(tmp_path, "train", images, labels.astype(np.uint8), compress)
    got_images, got_labels = datasets.load_mnist(str(tmp_path))
    check_mnist(got_images, got_labels, 30)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)


def test_load_mnist_missing_files(tmp_path, monkeypatch):
    monkeypatch.delenv("LENET_FAST_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="LENET_FAST_DATA") as info:
        datasets.load_mnist()
    assert "path=" in str(info.value) and "train-images-idx3-ubyte" in str(info.value)

    with pytest.raises(FileNotFoundError) as info:
        datasets.load_mnist(tmp_path, kind="test")
    message = str(info.value)
    for expected in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", str(tmp_path), "LENET_FAST_DATA"):
        assert expected in message

    write(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(np.zeros((1, 28, 28), np.uint8)))
    with pytest.raises(FileNotFoundError) as info:
        datasets.load_mnist(tmp_path, kind="test")
    assert "t10k-labels-idx1-ubyte" in str(info.value) and "t10k-images" not in str(info.value)

    monkeypatch.setenv("LENET_FAST_DATA", str(tmp_path / "no-such-folder"))
    with pytest.raises(FileNotFoundError, match="no-such-folder"):
        datasets.load_mnist()


def test_load_mnist_bad_kind(mnist_subset):
    with pytest.raises(ValueError, match="kind"):
        datasets.load_mnist(mnist_subset, kind="validation")


@pytest.mark.parametrize("images, labels, says", [
    (np.zeros((3, 28, 28), np.uint8), np.array([0, 10, 1], np.uint8), "labels must be digits 0-9"),
    (np.zeros((3, 28, 28), np.uint8), np.array([0, 1], np.uint8), "3 images but"),
    (np.zeros((3, 32, 32), np.uint8), np.zeros(3, np.uint8), "shape \\(N, 28, 28\\)"),
    (np.zeros((3, 28, 28), np.float32), np.zeros(3, np.uint8), "uint8 images"),
    (np.zeros((3, 784), np.uint8), np.zeros(3, np.uint8), "uint8 images"),
    (np.zeros((3, 28, 28), np.uint8), np.zeros(3, np.int32), "uint8 labels"),
    (np.zeros((3, 28, 28), np.uint8), np.zeros((3, 1), np.uint8), "uint8 labels"),
], ids=["label 10", "counts differ", "32x32", "float images", "flat images", "int32 labels", "2-D labels"])
def test_load_mnist_rejects_files_that_are_not_mnist(tmp_path, images, labels, says):
    write_mnist(tmp_path, "test", images, labels)
    with pytest.raises(ValueError, match=says):
        datasets.load_mnist(tmp_path, kind="test")


def test_load_mnist_official(mnist_folder, mnist_subset):
    if not any((mnist_folder / f"train-images-idx3-ubyte{gz}").is_file() for gz in ("", ".gz")):
        pytest.skip(f"the official MNIST files are not in {mnist_folder}")
    for kind, n, counts in (("train", 60000, TRAIN_COUNTS), ("test", 10000, TEST_COUNTS)):
        images, labels = datasets.load_mnist(mnist_folder, kind)
        check_mnist(images, labels, n)
        assert np.bincount(labels, minlength=10).tolist() == counts
    subset_images, subset_labels = datasets.load_mnist(mnist_subset, "test")  # the committed subset is cut from these
    np.testing.assert_array_equal(subset_images, images[:1000])
    np.testing.assert_array_equal(subset_labels, labels[:1000])


# ---- synthetic_digits ---------------------------------------------------------------------------------------

def test_synthetic_digits_form():
    images, labels = datasets.synthetic_digits(1000, seed=0)
    assert images.shape == (1000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (1000,) and labels.dtype == np.int64
    assert np.bincount(labels, minlength=10).tolist() == [100] * 10
    # white ink on black, about as much of it as MNIST has (mean pixel ~33)
    assert (images.max(axis=(1, 2)) >= 200).all()
    assert 20 < images.mean() < 45
    # every digit whole inside the frame: the 2-pixel border is clear
    assert not images[:, :2].any() and not images[:, -2:].any()
    assert not images[:, :, :2].any() and not images[:, :, -2:].any()
    # about 20 pixels tall (MNIST fits digits in a 20x20 box) and centred
    ink = images > 64
    height = np.array([np.ptp(np.flatnonzero(a.any(axis=1))) + 1 for a in ink])
    assert 16 <= np.median(height) <= 22 and height.min() >= 12
    weight = images.astype(float)
    r = np.arange(28)
    centre_row = (weight.sum(2) * r).sum(1) / weight.sum((1, 2))
    centre_col = (weight.sum(1) * r).sum(1) / weight.sum((1, 2))
    assert np.abs(centre_row - 13.5).max() < 4 and np.abs(centre_col - 13.5).max() < 4


def test_synthetic_digits_seeded():
    a, la = datasets.synthetic_digits(50, seed=7)
    b, lb = datasets.synthetic_digits(50, seed=7)
    c, lc = datasets.synthetic_digits(50, seed=8)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    assert not np.array_equal(a, c)


def test_synthetic_digits_sizes():
    images, labels = datasets.synthetic_digits(0)
    assert images.shape == (0, 28, 28) and labels.shape == (0,)
    assert sorted(datasets.synthetic_digits(10)[1].tolist()) == list(range(10))
    for bad in (-1, 2.5, "10", True):
        with pytest.raises(ValueError):
            datasets.synthetic_digits(bad)


def test_synthetic_digits_are_learnable():
    """Distinct enough that even a linear classifier (ridge regression on the pixels) tells them apart."""
    images, labels = datasets.synthetic_digits(5000, seed=1)
    x = np.c_[images.reshape(len(images), -1) / 255.0, np.ones(len(images))]
    train, test = slice(0, 4000), slice(4000, None)
    w = np.linalg.solve(x[train].T @ x[train] + np.eye(x.shape[1]), x[train].T @ np.eye(10)[labels[train]])
    accuracy = ((x[test] @ w).argmax(axis=1) == labels[test]).mean()
    assert accuracy > 0.9
