"""Fine-tune the shipped classic and modern models with non-digits (label -1) mixed into MNIST's training
digits, so that they refuse what is not a digit (docs/confidence.md; the record:
benchmarks/results/non-digits-2026-12-03.md), and measure what they refuse.

    python tools/train_negatives.py --data DIR --start OLD --write   # fine-tune OLD/<variant>.npz, write the
                                                                     # result to lenet_fast/weights/
    python tools/calibrate.py --data DIR --write               # then calibrate them again (always after it)
    python tools/train_negatives.py --data DIR --measure A.npz B.npz ...   # the refusal table of model files

The recipe, per model, from the weights given by --start (the shipped ones came from reproduce.py's
classic-distorted and modern runs' models, docs/reproducing.md): EPOCHS passes over the 60,000 training
digits and NEGATIVES non-digits (negatives.non_digits(NEGATIVES, seed=SEED), about 15% of the whole),
shuffled by fit's seed, at a small rate, each model as it was trained: classic on digits distorted afresh
every pass (distort.random_affine, as the shipped model saw them; the non-digits too), SDLM with the MAP
loss (j = 10; the non-digits' rubbish distance CLASSIC_REJECT_J), one pattern a step, epsilon
CLASSIC_EPSILON; modern on the digits as they are, Adam on batches of 32, cross-entropy, lr MODERN_LR
cosine-annealed to 0. Seeded: the same command makes the same weights on the same instruction-set path.

--measure prints, for each model file, the test error and the share refused at reject=0.9 of: MNIST's
10,000 test digits (false refusals), letter As, dots (filled disks and ellipses), noise and blank-ish
images, and the letters and marks negatives.HELD_OUT. No A, dot or HELD_OUT shape is in the training set;
the noise and faint images are of kinds it has (drawn from another seed). Run it after calibrate.py:
refusal depends on the temperature and the outlier limit.
"""
import argparse
import os
import sys

import numpy as np

import lenet_fast
from lenet_fast import _core, distort, images, negatives, optim, paper
from lenet_fast.pretrained import weights_path

SEED = 17
EPOCHS = {"classic": 2, "modern": 3}
NEGATIVES = 10000
CLASSIC_EPSILON = 5e-6  # the paper's third-stage epsilon (0.0001) times SDLM_SCALE, doubled: see the record
# The rubbish class's distance for the non-digits (fit's reject_j; the digits keep the paper's j = 10): MAP
# pushes a non-digit's every distance above about it, and the outlier test refuses beyond the nearest-centre
# distance that 0.5% of digits exceed (about 33). At j = 10 most non-digits stay inside that; j = 40 for
# all images lets the digits drift out too; a larger reject_j refuses more non-digits and misreads more
# digits (the record has each).
CLASSIC_REJECT_J = 45.0
MODERN_LR = 3e-4        # 0.3 times the modern recipe's starting rate (lower rates left more digits misread)
REJECT = 0.9
MEASURED = 300          # images of each non-digit kind --measure shows the models
A_STROKES = [[(0.0, 1.0), (0.3, 0.0)], [(0.3, 0.0), (0.6, 1.0)], [(0.12, 0.6), (0.48, 0.6)]]


def augment(images, rng):
    return distort.random_affine(images, rng)


def fine_tune(variant, x, y, threads, start=None):
    """The model of start/<variant>.npz (None: lenet_fast/weights/) after the recipe, and its fit history."""
    model = lenet_fast.load(weights_path(variant) if start is None else os.path.join(start, f"{variant}.npz"))
    if variant == "classic":
        opt = optim.SDLM(schedule=optim.Constant(), epsilon=CLASSIC_EPSILON)
        kwargs = dict(optimizer=opt, batch_size=1, loss="map", j=paper.MAP_J, reject_j=CLASSIC_REJECT_J)
    else:
        opt = optim.Adam(lr=MODERN_LR, schedule=optim.Cosine(EPOCHS[variant]))
        kwargs = dict(optimizer=opt, batch_size=32, loss="xent")
    lenet_fast.set_num_threads(threads)
    history = model.fit(x, y, epochs=EPOCHS[variant], seed=SEED, verbose=2,
                        augment=augment if variant == "classic" else None, **kwargs)
    return model, history


def dot(rng):
    """A filled disk or ellipse, in MNIST form: a dot as read_digit scales it."""
    yy, xx = np.mgrid[0:64, 0:64] + 0.5
    ry, rx = rng.uniform(6, 24), rng.uniform(6, 24)
    return _core.mnist_form((((yy - 32) / ry) ** 2 + ((xx - 32) / rx) ** 2 <= 1).astype(np.float64),
                            images.PICTURE_PARAMS)


def held_out_sets(seed=SEED + 1):
    """{name: (N, 28, 28) uint8}: the kinds no training set here holds."""
    rng = np.random.default_rng(seed)
    n = MEASURED
    return {
        "letter A": np.stack([negatives.hand_drawn(A_STROKES, rng) for _ in range(n)]),
        "dots": np.stack([dot(rng) for _ in range(n)]),
        "uniform noise 0..255": rng.integers(0, 256, (n, 28, 28)).astype(np.uint8),
        "faint noise 0..19": rng.integers(0, 20, (n, 28, 28)).astype(np.uint8),
        "other letters and marks": negatives.non_digits(n, seed, kinds=["held-out"]),
    }


def measure(paths, data):
    xt, yt = lenet_fast.load_mnist(data, "test")
    sets = held_out_sets()
    print(f"| model | test error | MNIST test digits refused | {' | '.join(sets)} |")
    print("| --- | ---: | ---: |" + " ---: |" * len(sets))
    for path in paths:
        model = lenet_fast.load(path)
        err = np.mean(model.predict(xt) != yt)
        refused = [np.mean(model.predict(x, reject=REJECT) == -1) for x in (xt, *sets.values())]
        print(f"| {path} | {100 * err:.2f}% | " + " | ".join(f"{100 * r:.1f}%" for r in refused) + " |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.environ.get("LENET_FAST_DATA"), help="MNIST folder")
    ap.add_argument("--write", action="store_true", help="rewrite lenet_fast/weights/<variant>.npz")
    ap.add_argument("--out", help="a folder to save the fine-tuned models in instead (<variant>.npz)")
    ap.add_argument("--variants", nargs="+", default=["classic", "modern"], choices=["classic", "modern"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--start", metavar="FOLDER", help="fine-tune FOLDER/<variant>.npz (default: the shipped weights; "
                    "the shipped ones were made from reproduce.py's classic-distorted and modern runs' models)")
    ap.add_argument("--measure", nargs="+", metavar="MODEL", help="only measure these model files")
    args = ap.parse_args()
    if args.measure:
        measure(args.measure, args.data)
        return
    x, y = lenet_fast.load_mnist(args.data, "train")
    neg = negatives.non_digits(NEGATIVES, seed=SEED)
    x, y = np.concatenate([x, neg]), np.concatenate([y.astype(np.int64), np.full(len(neg), -1)])
    xt, yt = lenet_fast.load_mnist(args.data, "test")
    for variant in args.variants:
        model, _ = fine_tune(variant, x, y, args.threads, args.start)
        print(f"{variant}: test error {100 * np.mean(model.predict(xt) != yt):.2f}%", flush=True)
        if args.write:
            model.save(weights_path(variant))
        elif args.out:
            model.save(os.path.join(args.out, f"{variant}.npz"))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
