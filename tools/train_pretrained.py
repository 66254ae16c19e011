#!/usr/bin/env python3
"""Train the pretrained models lenet_fast ships (lenet_fast/weights/classic.npz and modern.npz) on MNIST, and
print a JSON record of the run on stdout (progress goes to stderr), so that the weights say how they were made.

    python tools/train_pretrained.py [--data DIR] [--variant classic modern] [--classic-epochs N]
                                     [--modern-epochs N] [--seed S] [--threads T] > record.json

classic: the paper's SDLM, one pattern per update, the paper's epsilon schedule times --sdlm-scale (at full
size it stalls at chance here). modern: Adam, mini-batches of 32, the rate annealed to zero over the run
along a cosine (a constant rate ends a third of a point worse). Both see the 60,000 training images each
epoch, seeded (initialisation and shuffling); the test set is measured after every epoch, for the record
only: nothing is selected by it. Results do not depend on the thread count.
"""
import argparse
import datetime
import hashlib
import json
import os
import shlex
import sys
import time
from pathlib import Path

import lenet_fast
from lenet_fast import optim

ROOT = Path(__file__).resolve().parents[1]

VARIANTS = ("classic", "modern")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=os.environ.get("LENET_FAST_DATA") or ROOT.parent / "shared/data/mnist",
                        help="folder of the four MNIST files (default: LENET_FAST_DATA, else ../shared/data/mnist)")
    parser.add_argument("--variant", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--classic-epochs", type=int, default=4, metavar="N")
    parser.add_argument("--modern-epochs", type=int, default=5, metavar="N")
    parser.add_argument("--seed", type=int, default=0, help="initialisation and shuffling seed (default 0)")
    parser.add_argument("--sdlm-scale", type=float, default=optim.SDLM_SCALE,
                        help="classic: the paper's epsilon schedule times this (default optim.SDLM_SCALE)")
    parser.add_argument("--adam-lr", type=float, default=1e-3, help="modern: Adam's initial rate (default 0.001)")
    parser.add_argument("--modern-batch-size", type=int, default=32, metavar="B")
    parser.add_argument("--threads", type=int, help="kernel threads (default: OpenMP's)")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "lenet_fast" / "weights")
    return parser.parse_args()


def train(variant, args, train_set, test_set):
    """Train one variant, save it under args.out_dir, and return its part of the record."""
    if variant == "classic":
        opt, batch_size, epochs = optim.SDLM(schedule=optim.PaperSchedule(args.sdlm_scale)), 1, args.classic_epochs
    else:
        epochs = args.modern_epochs
        opt, batch_size = optim.Adam(lr=args.adam_lr, schedule=optim.Cosine(epochs)), args.modern_batch_size
    print(f"{variant}: {opt!r}, batch size {batch_size}, {epochs} epochs", file=sys.stderr, flush=True)
    model = lenet_fast.LeNet5(variant, seed=args.seed)
    start = time.perf_counter()
    history = model.fit(*train_set, epochs=epochs, batch_size=batch_size, optimizer=opt, validation=test_set,
                        seed=args.seed, verbose=2)
    wall = time.perf_counter() - start
    out = args.out_dir / f"{variant}.npz"
    model.save(out)
    out.chmod(0o644)  # package data: saved files are private (0600) until made readable to every user
    errors = int((model.predict(test_set[0]) != test_set[1]).sum())
    return {
        "file": os.path.relpath(out, ROOT),
        "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
        "optimizer": repr(opt),
        "batch_size": batch_size,
        "epochs": epochs,
        "seed": args.seed,
        "train_images": len(train_set[1]),
        "wall_seconds": round(wall, 1),
        "history": history,
        "test_images": len(test_set[1]),
        "test_errors": errors,
        "test_error": errors / len(test_set[1]),
    }


def main():
    args = parse_args()
    if args.threads is not None:
        lenet_fast.set_num_threads(args.threads)
    train_set = lenet_fast.load_mnist(args.data, "train")
    test_set = lenet_fast.load_mnist(args.data, "test")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "command": shlex.join(["python", *sys.argv]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "build": lenet_fast.build_info(),
        "data": os.path.abspath(args.data),
        "models": {variant: train(variant, args, train_set, test_set) for variant in args.variant},
    }
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
