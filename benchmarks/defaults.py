"""Defaults that learn: each variant with its default optimizer, SGD with momentum and Adam, every one at its
default rate, at batch sizes 1, 32 and 256: one epoch over MNIST's 60,000 training digits, then the test
error on its 10,000 test digits (the goal: at most 3% each).

    python benchmarks/defaults.py --data MNIST_FOLDER [--out FILE.md] [--threads 2] [--seed 0]
        [--variants classic modern] [--optimizers sdlm sgd adam] [--batches 1 32 256]

Prints a Markdown table (variant, optimizer as fit resolves it with its rate, batch, test error, seconds of
the epoch) and writes it with the command, date, machine and load average to --out. An optimizer is made by
its name (optim.make: its defaults) and bound by fit, so the table shows what a user gets from
`fit(optimizer="sgd", batch_size=B)`; "default" is fit's own choice for the variant (optimizer=None).
"""
import argparse
import sys
import time

import lenet_fast
from lenet_fast import optim, timing
from lenet_fast.datasets import load_mnist

BATCHES = (1, 32, 256)


def one_run(variant, name, batch_size, data, seed):
    """(optimizer's repr after fit, test error, seconds of the epoch)."""
    (x, y), (xt, yt) = data
    opt = optim.make(name if name != "default" else optim.default_name(variant, batch_size))
    model = lenet_fast.LeNet5(variant, seed=seed)
    t0 = time.perf_counter()
    hist = model.fit(x, y, epochs=1, batch_size=batch_size, optimizer=opt, seed=seed, verbose=0)
    seconds = time.perf_counter() - t0
    error = float((model.predict(xt) != yt).mean())
    return opt.kind, hist[-1]["lr"], error, seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="folder holding MNIST's four IDX files")
    parser.add_argument("--out", help="write the table and its record here (Markdown)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", nargs="+", default=["classic", "modern"], choices=["classic", "modern"])
    parser.add_argument("--optimizers", nargs="+", default=["default", "sgd", "adam"],
                        choices=["default"] + sorted(optim.OPTIMIZERS))
    parser.add_argument("--batches", nargs="+", type=int, default=list(BATCHES))
    args = parser.parse_args(argv)
    data = load_mnist(args.data, "train"), load_mnist(args.data, "test")
    lines = ["| variant | optimizer | rate (first epoch) | batch | test error | seconds |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    print("\n".join(lines), flush=True)
    with timing.kernel_threads(args.threads):
        for variant in args.variants:
            for name in args.optimizers:
                for batch_size in args.batches:
                    kind, lr, error, seconds = one_run(variant, name, batch_size, data, args.seed)
                    label = kind if name != "default" else f"{kind} (default)"
                    lines.append(f"| {variant} | {label} | {lr:g} | {batch_size} | {100 * error:.2f}% | "
                                 f"{seconds:.1f} |")
                    print(lines[-1], flush=True)
    if args.out:
        timing.write_record(args.out, "Defaults that learn: one epoch over MNIST's 60,000 training digits",
                            "benchmarks/defaults.py", sys.argv[1:] if argv is None else argv,
                            f"{args.threads} threads, seed {args.seed}.", lines)


if __name__ == "__main__":
    main()
