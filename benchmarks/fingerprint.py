"""Fingerprints of the engine's numbers: SHA-256 digests of the pretrained models' outputs and of the
weights of fixed-seed training runs, on every instruction-set path this CPU runs.

A change that must not alter any result (a refactor, a new tile shape that keeps the summation order) is
checked by running this before and after it on the same machine and comparing the two outputs line by line:

    python benchmarks/fingerprint.py > before.txt
    ... change, rebuild ...
    python benchmarks/fingerprint.py > after.txt && diff before.txt after.txt

Results depend on the path (AVX-512, AVX2 and the baseline round in different orders), never on the thread
count, so each path is fingerprinted on its own and at two thread counts.
"""
import argparse
import hashlib

import numpy as np

import lenet_fast as lf
from lenet_fast import _core


def digest(*arrays):
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def mnist_subset():
    """The 1,000 test digits that ship with the tests (tests/data), or seeded noise digits without them."""
    try:
        from pathlib import Path

        data = Path(__file__).resolve().parent.parent / "tests" / "data"
        x = lf.read_idx(data / "t10k-images-idx3-ubyte.gz")
        y = lf.read_idx(data / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
        return x, y
    except (OSError, ValueError):
        rng = np.random.default_rng(0)
        return rng.integers(0, 256, (1000, 28, 28), dtype=np.uint8), rng.integers(0, 10, 1000)


def runs(x, y):
    """name -> digest, for everything fingerprinted on the current path and thread count."""
    out = {}
    for variant in ("classic", "modern"):
        m = lf.pretrained(variant)
        out[f"pretrained {variant} forward batch"] = digest(m.forward(x))
        out[f"pretrained {variant} forward one by one"] = digest(np.stack([m.forward(x[i]) for i in range(37)]))
        g, losses = m.gradient(x[:100], y[:100])
        out[f"pretrained {variant} gradient"] = digest(*g.values(), losses)
    for variant, optimizer, batch in (("classic", None, None), ("classic", "sgd", 32), ("modern", None, None),
                                      ("modern", "sgd", 16)):
        m = lf.LeNet5(variant, seed=3)
        # SGD at 0.01 on both variants: the fixed computation these lines name (classic's default SGD rate
        # is lower, and a default may change without changing the engine's numbers)
        opt = lf.optim.SGD(lr=0.01) if optimizer == "sgd" else optimizer
        history = m.fit(x[:600], y[:600], epochs=2, batch_size=batch, optimizer=opt, seed=5, verbose=0)
        out[f"fit {variant} {optimizer or 'default'} batch {batch or 'default'}"] = digest(
            m.params_vector, np.array([r["loss"] for r in history]))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    x, y = mnist_subset()
    for isa in ("avx512", "avx2", "baseline"):
        try:
            _core.select_isa(isa)
        except ValueError:
            continue
        for threads in args.threads:
            lf.set_num_threads(threads)
            for name, d in runs(x, y).items():
                # the thread count is left out of the line: the digests must not depend on it
                print(f"{isa:8} {name:45} {d}", flush=True)


if __name__ == "__main__":
    main()
