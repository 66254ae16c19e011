"""An ensemble of LeNet-5s trained from different seeds, against its members: MNIST test error of each
member and of the ensemble (lenet_fast.Ensemble: the members' probabilities averaged).

    python benchmarks/ensemble.py [--members 5] [--epochs 20] [--variant modern] [--save PATH]

Each member: LeNet5(variant, seed=k) for k = 0..members-1, trained on the 60,000 training digits with its
variant's recipe (modern: Adam, lr 1e-3 cosine-annealed to 0 over the run, batches of 32, softmax
cross-entropy; classic: the paper's SDLM on single patterns), each epoch's shuffled digits distorted afresh
by distort.random_affine (fit's augment, seeded by k). The test digits are used for the record only, never
to choose anything. The JSON record (benchmarks/results/README.md) holds the command, date, machine,
settings, every member's passes and test error, and the ensemble's test error, confusion matrix and log
loss. --save writes the ensemble (lenet_fast.Ensemble.save), e.g. to lenet_fast/weights/ensemble.npz.
"""
import argparse
import datetime
import json
import os
import shlex
import sys
import time

import lenet_fast
from lenet_fast import distort, optim

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reproduce import MODERN_BATCH, MODERN_LR, RESULTS, commit, data_folder, machine  # noqa: E402


def member(variant, seed, epochs):
    """(an untrained member, fit's keyword arguments, its optimizer's description)."""
    model = lenet_fast.LeNet5(variant, seed=seed)
    if variant == "modern":
        opt = optim.Adam(lr=MODERN_LR, schedule=optim.Cosine(epochs))
        return model, dict(optimizer=opt, batch_size=MODERN_BATCH, loss="xent"), repr(opt)
    opt = optim.SDLM()
    return model, dict(optimizer=opt, batch_size=1, loss="map"), repr(opt)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--variant", choices=("classic", "modern"), default="modern")
    parser.add_argument("--data", help="folder of the MNIST files (default: LENET_FAST_DATA)")
    parser.add_argument("--threads", type=int, help="kernel threads (default: OpenMP's)")
    parser.add_argument("--out", help="the JSON record (default: benchmarks/results/ensemble-<variant>.json)")
    parser.add_argument("--save", metavar="PATH", help="save the ensemble (.npz)")
    args = parser.parse_args()
    if args.members < 1 or args.epochs < 1:
        parser.error("--members and --epochs must be at least 1")
    if args.threads is not None:
        lenet_fast.set_num_threads(args.threads)
    folder = data_folder(args.data)
    x, y = lenet_fast.load_mnist(folder, "train")
    xt, yt = lenet_fast.load_mnist(folder, "test")
    started = datetime.datetime.now(datetime.timezone.utc)
    code = commit()
    t0 = time.perf_counter()
    members, records = [], []
    for k in range(args.members):
        model, kwargs, description = member(args.variant, k, args.epochs)
        history = model.fit(x, y, epochs=args.epochs, seed=k, augment=distort.random_affine,
                            verbose=1 if sys.stderr.isatty() else 0, **kwargs)
        error = 1.0 - model.score(xt, yt)
        print(f"member {k}: test error {error:.2%}", file=sys.stderr, flush=True)
        members.append(model)
        records.append({"seed": k, "optimizer": description, "passes": list(history), "test_error": error})
    ensemble = lenet_fast.Ensemble(members)
    result = ensemble.evaluate(xt, yt)
    print(f"ensemble of {len(members)}: test {result.summary()}", file=sys.stderr)
    record = {
        "command": shlex.join(["python", *sys.argv]),
        "date": started.isoformat(timespec="seconds"),
        "commit": code,
        "machine": machine(),
        "settings": {"variant": args.variant, "members": args.members, "epochs": args.epochs,
                     "augment": "distort.random_affine (defaults), fresh each epoch",
                     "training_images": len(x), "test_images": len(xt)},
        "wall_seconds": time.perf_counter() - t0,
        "members": records,
        "ensemble": result.as_dict(),
    }
    if args.save:
        ensemble.save(args.save)
        record["model"] = os.path.abspath(args.save)
    out = args.out or os.path.join(RESULTS, f"ensemble-{args.variant}.json")
    with open(out, "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
