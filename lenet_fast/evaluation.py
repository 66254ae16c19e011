"""How well a classifier does on labelled digits: accuracy, mean loss, confusion matrix, per-class error.

LeNet5.evaluate, Ensemble.evaluate and `lenet-fast evaluate` all report through Evaluation, so each figure
means the same thing wherever it is read.
"""
from dataclasses import dataclass

import numpy as np

from . import _core

CLASSES = 10  # the digits


@dataclass(frozen=True)
class Evaluation:
    """The result of evaluate(x, y).

    accuracy: the share of images classified right; error = 1 - accuracy; loss: the mean loss per image
    (what "loss" means is the evaluating model's: LeNet5.evaluate's docstring); confusion: (10, 10) int64,
    confusion[t, p] the images of digit t classified as p; per_class_error: (10,) float64, each digit's
    share of its images classified wrong (NaN for a digit with no image); n: the number of images.
    """

    accuracy: float
    loss: float
    confusion: np.ndarray
    per_class_error: np.ndarray
    n: int

    @property
    def error(self):
        return 1.0 - self.accuracy

    @property
    def errors(self):
        """The number of images classified wrong."""
        return int(self.n - np.trace(self.confusion))

    def as_dict(self):
        """Plain Python values (for JSON): accuracy, error, errors, loss, n, confusion, per_class_error
        (None for NaN)."""
        return {"accuracy": self.accuracy, "error": self.error, "errors": self.errors, "loss": self.loss,
                "n": self.n, "confusion": self.confusion.tolist(),
                "per_class_error": [None if np.isnan(e) else float(e) for e in self.per_class_error]}

    def summary(self):
        """One line: the error (and the count wrong), the accuracy and the mean loss."""
        return f"error {self.error:.2%} ({self.errors} wrong), accuracy {self.accuracy:.2%}, mean loss {self.loss:.4g}"

    def tables(self):
        """The confusion matrix and each digit's error, as text lines."""
        width = max(4, len(str(self.confusion.max())) + 1)
        lines = ["confusion matrix (rows: true digit, columns: predicted digit):",
                 "    " + "".join(f"{d:>{width}}" for d in range(CLASSES))]
        lines += [f"{d:>4}" + "".join(f"{n:>{width}}" for n in row) for d, row in enumerate(self.confusion)]
        lines.append("error by digit: " + ", ".join(
            f"{d} {'-' if np.isnan(e) else f'{e:.2%}'}" for d, e in enumerate(self.per_class_error)))
        return "\n".join(lines)

    def __str__(self):
        """The summary on n images, then the tables."""
        return f"{self.n:,} images: {self.summary()}\n{self.tables()}"


def accuracy(predicted, labels):
    """The share of predicted (N,) equal to labels, which must be N class ids in 0..9 (ValueError
    otherwise, or for no images)."""
    labels = _core.check_labels(labels, len(predicted), CLASSES)
    if len(labels) == 0:
        raise ValueError("no images to score (an empty batch)")
    return float(np.mean(predicted == labels))


def evaluation(predicted, labels, losses):
    """The Evaluation of predicted classes (N,) against labels (N,) (both checked in 0..9 by the caller),
    with each image's loss (N,). ValueError for no images."""
    n = len(labels)
    if n == 0:
        raise ValueError("no images to evaluate (an empty batch)")
    confusion = np.bincount(labels * CLASSES + predicted, minlength=CLASSES * CLASSES).reshape(CLASSES, CLASSES)
    counts = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(counts > 0, 1.0 - np.diag(confusion) / counts, np.nan)
    return Evaluation(accuracy=float(np.trace(confusion) / n), loss=float(np.mean(losses, dtype=np.float64)),
                      confusion=confusion.astype(np.int64), per_class_error=per_class, n=n)
