"""Fit the shipped models' temperatures and outlier limits on held-out MNIST test digits, and report the
calibration before and after (docs/confidence.md; the record: benchmarks/results/calibration-2026-12-03.md).

The pretrained models were trained on all 60,000 training digits (benchmarks/results/README.md), so the fit
uses half of the 10,000 test digits: 5,000 drawn by a seeded generator from test digits 1,000-9,999, so that
the first 1,000 (the tests' committed subset, tests/data) are never seen by the fit. The metrics are reported
on the other half (held out), on the fitting half and on the whole test set.

    python tools/calibrate.py --data DIR            # report only
    python tools/calibrate.py --data DIR --write     # also rewrite lenet_fast/weights/<variant>.npz

--write replaces only the temperature and outlier-limit entries: every other member of the file is kept
byte for byte (checked before the file is replaced).
"""
import argparse
import io
import os
import sys
import zipfile

import numpy as np

import lenet_fast
from lenet_fast import calibration, storage
from lenet_fast.pretrained import weights_path

SEED = 0
FIT_SIZE = 5000
UNSEEN = 1000  # the tests' subset: the first 1,000 test digits, kept out of the fit
CALIBRATION_ENTRIES = ("__temperature__", "__outlier_limit__")
ERROR_TARGETS = (0.005, 0.002, 0.001)


def split(n):
    """(fit, held_out): index arrays of the test set, disjoint, the fit drawn from UNSEEN..n-1."""
    rng = np.random.default_rng(SEED)
    fit = np.sort(rng.choice(np.arange(UNSEEN, n), size=FIT_SIZE, replace=False))
    held_out = np.setdiff1d(np.arange(n), fit)
    return fit, held_out


def metrics(model, x, y):
    p = model.predict_proba(x)
    return {"error": float(np.mean(p.argmax(axis=1) != y)), "log_loss": calibration.log_loss(p, y),
            "ece": calibration.expected_calibration_error(p, y),
            "error_confidence": calibration.error_confidence(p, y)}


def curve_points(model, x, y):
    """For each target error: (share refused, threshold) at the first curve point reaching it."""
    c = lenet_fast.rejection_curve(model, x, y)
    out = {}
    for target in ERROR_TARGETS:
        i = int(np.argmax(c.errors <= target)) if (c.errors <= target).any() else None
        out[target] = None if i is None else (float(c.refused[i]), float(c.thresholds[i]))
    return out


def rewrite(path, temperature, limit):
    """path with only the calibration entries replaced; ValueError if any other member would change."""
    with zipfile.ZipFile(path) as z:
        before = {i.filename: z.read(i) for i in z.infolist()}
    arrays = {name[: -len(".npy")]: np.load(io.BytesIO(data), allow_pickle=False) for name, data in before.items()}
    arrays["__temperature__"] = np.array(temperature, dtype=np.float64)
    arrays["__outlier_limit__"] = np.array(limit, dtype=np.float64)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with zipfile.ZipFile(buf) as z:
        after = {i.filename: z.read(i) for i in z.infolist()}
    kept = [n for n in before if n[: -len(".npy")] not in CALIBRATION_ENTRIES]
    if any(after[n] != before[n] for n in kept):
        raise ValueError(f"{path}: rewriting would change more than the calibration entries")
    storage.write_npz(path, arrays)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.environ.get("LENET_FAST_DATA"), help="MNIST folder")
    ap.add_argument("--write", action="store_true", help="rewrite the shipped weights' calibration entries")
    args = ap.parse_args()
    x, y = lenet_fast.load_mnist(args.data, "test")
    y = y.astype(np.int64)
    fit, held = split(len(x))
    sets = {"held-out half": held, "fitting half": fit, "whole test set": np.arange(len(x))}
    for variant in ("classic", "modern"):
        path = weights_path(variant)
        model = lenet_fast.load(path)
        model.temperature, model.outlier_limit = 1.0, None
        before = {name: metrics(model, x[i], y[i]) for name, i in sets.items()}
        temperature = model.calibrate(x[fit], y[fit])
        after = {name: metrics(model, x[i], y[i]) for name, i in sets.items()}
        print(f"## {variant}: temperature {temperature:.6g}, outlier limit {model.outlier_limit:.6g}")
        print("| set | T | error | log loss | ECE (15 bins) | mean confidence on errors |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for name in sets:
            for label, m in (("1 (before)", before[name]), (f"{temperature:.4g}", after[name])):
                print(f"| {name} | {label} | {100 * m['error']:.2f}% | {m['log_loss']:.4f} | {m['ece']:.4f} | "
                      f"{m['error_confidence']:.3f} |")
        held_refused = np.mean(model.predict(x[held], reject=0.0) == -1)
        print(f"\noutlier limit alone (reject=0) refuses {100 * held_refused:.2f}% of the held-out half")
        print("\n| error among accepted (held-out half) | share refused | reject threshold |")
        print("| ---: | ---: | ---: |")
        for target, point in curve_points(model, x[held], y[held]).items():
            text = "not reached | -" if point is None else f"{100 * point[0]:.2f}% | {point[1]:.6f}"
            print(f"| {100 * target:.1f}% | {text} |")
        print()
        if args.write:
            rewrite(path, temperature, model.outlier_limit)
            print(f"wrote {path}\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
