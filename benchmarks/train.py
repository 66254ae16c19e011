"""Training throughput: LeNet5.fit at batch 1 (SDLM, the paper's per-pattern updates), 32 and 256 (SGD with
momentum), on 1 and 2 threads, beside the NumPy reference's training step at batch 32, in one process.

    python benchmarks/train.py [--repeats 5] [--images 8192]

Each lenet_fast figure is one epoch of fit() over --images images (shuffling, SDLM's Hessian estimate on
500 patterns and the Python loop included: what a user gets), median of the repeats, engines interleaved.
The reference step is reference.sgd_step (backward, then sgd_update) on one batch of 32, its BLAS on one
thread (see benchmarks/forward.py for why). The machine is shared and noisy: compare within one run.
"""
import argparse

import numpy as np

import lenet_fast
from lenet_fast import optim, reference, timing


def fit_seconds(model, x, y, batch_size):
    opt = optim.SDLM(schedule=optim.PaperSchedule(1e-3)) if batch_size == 1 else optim.SGD(lr=1e-4)
    return timing.elapsed(lambda: model.fit(x, y, epochs=1, batch_size=batch_size, optimizer=opt, verbose=0))


def reference_step_seconds(params, x, y, variant, velocity):
    return timing.elapsed(
        lambda: reference.sgd_step(params, velocity, reference.normalize_input(x), y, variant, 1e-4, 0.9))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--images", type=int, default=8192)
    args = parser.parse_args()
    with timing.blas_threads(1) as limited:
        print(timing.build_line() + ("" if limited else "; BLAS threads not limited (no threadpoolctl)"))
        run(args)


def run(args):
    print("| variant | batch | threads | lenet_fast fit img/s | reference step img/s (batch 32) | ratio |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(args.images, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, size=args.images)
    for variant in ("classic", "modern"):
        model = lenet_fast.LeNet5(variant, seed=0)
        params = {k: v.copy() for k, v in reference.with_centers(model.params, variant).items()}
        velocity = {k: np.zeros_like(v) for k, v in model.params.items()}
        batches = (1, 32, 256) if variant == "classic" else (32, 256)  # SDLM is the classic network's method
        for batch_size in batches:
            measures = {
                "fit": lambda: args.images / fit_seconds(model, x, y, batch_size),
                "reference": lambda: 32 / reference_step_seconds(params, x[:32], y[:32], variant, velocity),
            }
            for threads in (1, 2):
                with timing.kernel_threads(threads):
                    rates = timing.interleaved(measures, args.repeats)
                f, r = timing.median(rates["fit"]), timing.median(rates["reference"])
                print(f"| {variant} | {batch_size} | {threads} | {f:,.0f} | {r:,.0f} | {f / r:.0f}x |", flush=True)


if __name__ == "__main__":
    main()
