"""Forward-pass throughput: lenet_fast beside its NumPy reference, in one process, interleaved.

    python benchmarks/forward.py [--repeats 15]

For each variant, batch size (1, 64, 1024) and thread count (1, 2), runs the engines in turn, repeat after
repeat, and prints the median images/s of each and their ratio. The machine is shared and noisy: compare
the ratios and medians of one run, not figures from different runs.

The reference's BLAS (OpenBLAS in numpy's wheels) runs on one thread (lenet_fast.timing.blas_threads;
needs threadpoolctl, else the header says the BLAS threads are not limited): its idle worker threads spin
for a while after every call, and on a 2-core machine they would take the core the engine's second thread
needs (benchmarks/results/harness-notes.md).
"""
import argparse

import numpy as np

import lenet_fast
from lenet_fast import reference, timing


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64, 1024])
    args = parser.parse_args()
    with timing.blas_threads(1) as limited:  # BLAS only: the engine's OpenMP threads are set below
        print(timing.build_line() + ("" if limited else "; BLAS threads not limited (no threadpoolctl)"))
        run(args)


def run(args):
    print("| variant | batch | threads | lenet_fast img/s | reference img/s (1 BLAS thread) | ratio "
          "| lenet_fast us/batch |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    rng = np.random.default_rng(0)
    for variant in ("classic", "modern"):
        model = lenet_fast.LeNet5(variant, seed=0)
        ref_params = reference.with_centers(model.params, variant)
        for n in args.batches:
            x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
            engines = {
                "lenet_fast": lambda: model.forward(x),
                "reference": lambda: reference.forward(ref_params, reference.normalize_input(x), variant),
            }
            measures = {name: (lambda fn=fn: timing.per_call(fn, 0.05)) for name, fn in engines.items()}
            for threads in (1, 2):
                with timing.kernel_threads(threads):
                    times = timing.interleaved(measures, args.repeats)
                med = {name: timing.median(t) for name, t in times.items()}
                fast, ref = n / med["lenet_fast"], n / med["reference"]
                print(f"| {variant} | {n} | {threads} | {fast:,.0f} | {ref:,.0f} | {fast / ref:.1f}x "
                      f"| {med['lenet_fast'] * 1e6:,.1f} |", flush=True)


if __name__ == "__main__":
    main()
