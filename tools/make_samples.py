#!/usr/bin/env python3
"""Write the sample digits lenet_fast ships (lenet_fast/samples/digit_0.png ... digit_9.png).

For each class, the first image of that class in the MNIST test set, made to look like a digit a user
would have: dark ink on white paper (inverted) and three times larger (84x84, bicubic), so that reading
it back goes through every step of lenet_fast.images.read_digit. Deterministic: the same MNIST files and
Pillow version give the same pixels.

    python tools/make_samples.py [MNIST folder, default ../shared/data/mnist]

The folder holds t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, gzipped (.gz) or not.
"""
import gzip
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "lenet_fast" / "samples"
SCALE = 3


def read_idx(folder, name, magic):
    """The array in an IDX file: big-endian uint32 magic and one uint32 per dimension, then uint8 data."""
    path = folder / name
    data = path.read_bytes() if path.exists() else gzip.decompress(path.with_name(name + ".gz").read_bytes())
    ndim = magic & 0xFF
    header = np.frombuffer(data, dtype=">u4", count=1 + ndim)
    if header[0] != magic:
        raise ValueError(f"{path}: magic {header[0]}, expected {magic}")
    shape = tuple(int(n) for n in header[1:])
    return np.frombuffer(data, dtype=np.uint8, offset=4 * (1 + ndim)).reshape(shape)


def main():
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data" / "mnist"
    images = read_idx(folder, "t10k-images-idx3-ubyte", 2051)
    labels = read_idx(folder, "t10k-labels-idx1-ubyte", 2049)
    OUT.mkdir(exist_ok=True)
    for digit in range(10):
        index = int(np.argmax(labels == digit))
        paper = Image.fromarray(255 - images[index])
        big = paper.resize((28 * SCALE, 28 * SCALE), Image.Resampling.BICUBIC)
        big.save(OUT / f"digit_{digit}.png", optimize=True)
        print(f"digit_{digit}.png: test image {index}")


if __name__ == "__main__":
    main()
