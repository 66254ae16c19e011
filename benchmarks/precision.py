"""Reduced precision against float32: each pretrained model quantized to int8 (lenet_fast.int8.quantize) on
the first --calibration MNIST training digits, then the full 10,000-digit test set: float32's error, int8's,
and the share of digits on which both give the same class (the goals: int8's error within +0.05 points of
float32's, agreement at least 99.9%). With --speed, the forward pass's images/s at batch 1 and 1024 on 1
and 2 threads, float32 and int8 interleaved (medians of --repeats).

    python benchmarks/precision.py --data MNIST_FOLDER [--calibration 2000] [--speed] [--out FILE.md]

Prints Markdown tables and writes them with the command, date, machine and load average to --out.
"""
import argparse
import sys

import numpy as np

import lenet_fast
from lenet_fast import _core, int8, timing
from lenet_fast.datasets import load_mnist

VARIANTS = ("classic", "modern")


def accuracy_rows(calibration, test_images, test_labels):
    lines = ["| model | float32 error | int8 error | difference | same class | int8 path |",
             "| --- | ---: | ---: | ---: | ---: | --- |"]
    for variant in VARIANTS:
        model = lenet_fast.pretrained(variant)
        q = int8.quantize(model, calibration)
        want, got = model.predict(test_images), q.predict(test_images)
        e32, e8 = (want != test_labels).mean(), (got != test_labels).mean()
        lines.append(f"| {variant} | {100 * e32:.2f}% | {100 * e8:.2f}% | {100 * (e8 - e32):+.2f} points | "
                     f"{100 * (want == got).mean():.2f}% | {_core.int8_isa()} |")
        print(lines[-1], flush=True)
    return lines


def speed_rows(images, repeats):
    lines = ["| model | batch | threads | float32 images/s | int8 images/s | int8 / float32 |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for variant in VARIANTS:
        model = lenet_fast.pretrained(variant)
        q = int8.quantize(model, images[:1000])
        for batch in (1, 1024):
            x = np.ascontiguousarray(images[:batch])
            for threads in (1, 2):
                with timing.kernel_threads(threads):
                    times = timing.interleaved({name: _measure(forward, x) for name, forward in
                                                (("fp32", model.forward), ("int8", q.forward))}, repeats)
                f32, i8 = (batch / timing.median(times[k]) for k in ("fp32", "int8"))
                lines.append(f"| {variant} | {batch} | {threads} | {f32:,.0f} | {i8:,.0f} | {i8 / f32:.2f} |")
                print(lines[-1], flush=True)
    return lines


def _measure(forward, x):
    """A measure for timing.interleaved: seconds per forward(x), over calls filling 0.2 s."""
    return lambda: timing.per_call(lambda: forward(x), 0.2)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="folder holding MNIST's four IDX files")
    parser.add_argument("--calibration", type=int, default=2000, help="the first N training digits calibrate")
    parser.add_argument("--speed", action="store_true", help="also time the forward pass")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", help="write the tables and their record here (Markdown)")
    args = parser.parse_args(argv)
    train_images, _ = load_mnist(args.data, "train")
    test_images, test_labels = load_mnist(args.data, "test")
    lines = accuracy_rows(train_images[: args.calibration], test_images, test_labels)
    if args.speed:
        lines += [""] + speed_rows(test_images, args.repeats)
    if args.out:
        timing.write_record(args.out, "int8 against float32: the pretrained models on MNIST's test set",
                            "benchmarks/precision.py", sys.argv[1:] if argv is None else argv,
                            f"calibration: the first {args.calibration} training digits.", lines)


if __name__ == "__main__":
    main()
