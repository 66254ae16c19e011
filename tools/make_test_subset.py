#!/usr/bin/env python3
"""Write tests/data: the first 1,000 MNIST test images and labels, as gzip IDX files like the official ones.

    python tools/make_test_subset.py [MNIST_FOLDER]

MNIST_FOLDER (default ../shared/data/mnist beside the checkout) holds the official t10k-images-idx3-ubyte.gz
and t10k-labels-idx1-ubyte.gz; their md5 sums are checked against the published ones, so the subset is always
cut from the same bytes. Each output keeps the IDX header with its first dimension rewritten to 1,000, then
the first 1,000 items. gzip runs with mtime 0, no file name and level 9, so the output is the same on every run.
Standard library only: the package need not be built.
"""
import gzip
import hashlib
import struct
import sys
from pathlib import Path

COUNT = 1000
ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data"
# file -> (md5 of the official gzip file, IDX magic, item shape)
SOURCES = {
    "t10k-images-idx3-ubyte.gz": ("9fb629c4189551a2d022fa330f9573f3", 0x0803, (28, 28)),
    "t10k-labels-idx1-ubyte.gz": ("ec29112dd5afa0611ce80d1b7f02629c", 0x0801, ()),
}


def subset(data, magic, item_shape, count):
    """The IDX bytes data cut to its first count items, the header's first dimension rewritten to match."""
    ndim = 1 + len(item_shape)
    head = 4 + 4 * ndim
    found_magic, n, *rest = struct.unpack(f">I{ndim}I", data[:head])
    item = 1
    for d in item_shape:
        item *= d
    if found_magic != magic or tuple(rest) != item_shape or len(data) != head + n * item or n < count:
        raise ValueError(f"unexpected IDX header: magic {found_magic:#x}, dimensions {[n, *rest]}")
    return struct.pack(f">I{ndim}I", magic, count, *item_shape) + data[head:head + count * item]


def main(argv):
    source = Path(argv[1]) if len(argv) > 1 else ROOT.parent / "shared" / "data" / "mnist"
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (md5, magic, item_shape) in SOURCES.items():
        packed = (source / name).read_bytes()
        if hashlib.md5(packed).hexdigest() != md5:
            raise SystemExit(f"{source / name}: not the official file (md5 differs from {md5})")
        data = subset(gzip.decompress(packed), magic, item_shape, COUNT)
        target = OUT / name
        with open(target, "wb") as f, gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=f,
                                                     mtime=0) as g:
            g.write(data)
        print(f"{target.relative_to(ROOT)}: {COUNT} items, {target.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
