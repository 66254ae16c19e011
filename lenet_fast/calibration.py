"""Calibrated confidence and rejection: fitting a model's temperature, the measures of calibration, and the
paper-style rejection curve (docs/confidence.md).

A model's probabilities are softmax(scores / T): the scores are the logits (modern) or the negated RBF
distances (classic), T the model's temperature (LeNet5.temperature, 1 unless calibrated). Temperature
scaling keeps every prediction (the order of the scores is unchanged) and only says how sure to be.

    T = model.calibrate(images, labels)        # held-out digits: fits T by the mean log-likelihood
    proba = model.predict_proba(images)
    log_loss(proba, labels), expected_calibration_error(proba, labels), error_confidence(proba, labels)
    curve = rejection_curve(model, images, labels)
"""
import math
from collections import namedtuple

import numpy as np

from . import _core

__all__ = ["fit_temperature", "log_loss", "expected_calibration_error", "error_confidence", "rejection_curve",
           "RejectionCurve", "ECE_BINS", "TEMPERATURE_RANGE"]

ECE_BINS = 15  # equal-width confidence bins of the expected calibration error, as is usual
TEMPERATURE_RANGE = (1e-4, 1e6)  # where fit_temperature searches; an optimum outside is refused
_BISECTIONS = 100  # halvings of the bracket in log(1/T): far below float64's resolution of the optimum
_TINY = float(np.finfo(np.float32).tiny)  # log_loss's floor: the smallest normal float32 probability


def fit_temperature(scores, labels):
    """The temperature T minimising the mean negative log-likelihood of labels under softmax(scores / T).

    scores: (N, K) finite, larger meaning likelier (logits, or negated RBF distances); labels: (N,) class ids
    in 0..K-1, N >= 1. With b = 1/T the mean NLL is convex in b, so its derivative, mean(E_p[s] - s_label),
    only grows with b: its root is found by bisection in log b over TEMPERATURE_RANGE, deterministic.
    ValueError when the scores or labels are malformed, or when the optimum lies outside the range (every
    image right by a wide margin: the likelihood keeps growing as T shrinks; or scores that say nothing
    of the labels: it keeps growing as T grows)."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] == 0 or s.shape[1] < 2:
        raise ValueError(f"scores must have shape (N, K) with N >= 1 and K >= 2, got {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    y = _labels(labels, s.shape)
    s = s - s.max(axis=1, keepdims=True)  # the same softmax; exp never overflows
    chosen = s[np.arange(len(s)), y]

    def slope(log_b):  # d(mean NLL)/db at b = exp(log_b)
        e = np.exp(np.exp(log_b) * s)
        return float(np.mean((e * s).sum(axis=1) / e.sum(axis=1) - chosen))

    lo, hi = -math.log(TEMPERATURE_RANGE[1]), -math.log(TEMPERATURE_RANGE[0])
    # A slope of exactly 0 at an end is a flat likelihood there (rounded to 0), no optimum inside either
    if slope(lo) >= 0:
        raise ValueError(f"no temperature fits: the likelihood does not fall below T = {TEMPERATURE_RANGE[1]:g} "
                         "(the scores say nothing of the labels)")
    if slope(hi) <= 0:
        raise ValueError("no temperature fits: the likelihood still grows at T = "
                         f"{TEMPERATURE_RANGE[0]:g} (every image right by a wide margin; calibrate on more, "
                         "or harder, held-out images)")
    for _ in range(_BISECTIONS):
        mid = 0.5 * (lo + hi)
        if slope(mid) < 0:
            lo = mid
        else:
            hi = mid
    return math.exp(-0.5 * (lo + hi))


def log_loss(proba, labels):
    """The mean negative log of the probability given to each image's label. proba: (N, K) rows of
    probabilities (predict_proba's); labels: (N,) class ids. A probability below float32's smallest normal
    number (1.2e-38) counts as that number, so one image adds at most 87.3."""
    p, y = _checked(proba, labels)
    return float(-np.mean(np.log(np.maximum(p[np.arange(len(p)), y], _TINY))))


def expected_calibration_error(proba, labels, bins=ECE_BINS):
    """The expected calibration error: images grouped by confidence (the largest probability) into bins
    equal-width bins of [0, 1] (the first closed, the others open below), the mean over images of
    |accuracy - mean confidence| of their bin."""
    p, y = _checked(proba, labels)
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    conf = p.max(axis=1)
    right = p.argmax(axis=1) == y
    which = np.clip(np.ceil(conf * bins).astype(np.int64) - 1, 0, bins - 1)
    total = 0.0
    for b in np.unique(which):
        inside = which == b
        total += inside.sum() * abs(right[inside].mean() - conf[inside].mean())
    return float(total / len(p))


def error_confidence(proba, labels):
    """The mean confidence (largest probability) over the images whose prediction is wrong; NaN if none."""
    p, y = _checked(proba, labels)
    wrong = p.argmax(axis=1) != y
    return float(p.max(axis=1)[wrong].mean()) if wrong.any() else math.nan


RejectionCurve = namedtuple("RejectionCurve", "thresholds refused errors")
RejectionCurve.__doc__ = """The paper-style rejection curve: at each threshold t (ascending), what
model.predict(images, reject=t) does: refused, the share of the images it refuses; errors, the error rate
among the images it accepts (0 when it accepts none). Arrays of one length, float64."""


def rejection_curve(model, images, labels, normalized=False):
    """RejectionCurve of model (a LeNet5, or an Ensemble, which has no outlier limit and refuses by
    confidence alone) on labelled images: one point for reject=0 (only the outlier limit refuses) and one
    for each distinct confidence of the images, the smallest reject that refuses that image. Error among
    the accepted images falls, roughly, as the share refused grows."""
    proba = model.predict_proba(images, normalized)
    y = _labels(labels, proba.shape)
    conf = proba.max(axis=1)
    wrong = proba.argmax(axis=1) != y
    limit = getattr(model, "outlier_limit", None)
    outlier = np.zeros(len(conf), dtype=bool) if limit is None else model.outlier_score(images, normalized) > limit
    # An image is refused at threshold t when it is an outlier or conf < t: sort the others by confidence,
    # and each distinct confidence c, as t just above it, refuses every image with conf <= c.
    order = np.argsort(conf[~outlier], kind="stable")
    c, w = conf[~outlier][order], wrong[~outlier][order]
    last = np.flatnonzero(np.append(c[1:] != c[:-1], len(c) > 0))  # the last image of each distinct confidence
    n, n_out = len(conf), int(outlier.sum())
    refused = np.concatenate([[n_out], n_out + last + 1]) / max(n, 1)
    wrong_left = w.sum() - np.concatenate([[0], np.cumsum(w)[last]])
    accepted = len(c) - np.concatenate([[0], last + 1])
    thresholds = np.concatenate([[0.0], np.nextafter(c[last].astype(np.float64), np.inf)])
    errors = np.divide(wrong_left, accepted, out=np.zeros(len(accepted)), where=accepted > 0)
    return RejectionCurve(thresholds, refused.astype(np.float64), errors)


def _checked(proba, labels):
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0:
        raise ValueError(f"proba must have shape (N, K) with N >= 1, got {p.shape}")
    return p, _labels(labels, p.shape)


def _labels(labels, shape):
    return _core.check_labels(labels, shape[0], shape[1])
