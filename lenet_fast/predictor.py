"""What every LeNet-5 model does with its ten output scores, whatever computes them: Predictor, the base of
lenet_fast.LeNet5 (float32 and bfloat16) and lenet_fast.int8.Int8LeNet5. A subclass gives variant
("classic": the scores are RBF distances, smaller likelier; "modern": logits) and forward(x, normalized)
-> (N, 10) float32, and sets _temperature and _outlier_limit (the properties' setters check them); the
classes, calibrated probabilities, rejection (docs/confidence.md) and calibration follow here once.
"""
import math

import numpy as np

from . import _core, calibration, evaluation
from .inputs import as_batch

OUTLIER_SHARE = 0.005  # calibrate's default: the share of held-out digits beyond the outlier limit


class Predictor:
    """Predictions from forward's (N, 10) scores (module docstring)."""

    def predict(self, x, normalized=False, reject=None):
        """(N,) int64 class ids. reject=None takes every image; a number in [0, 1] refuses, with -1, each image
        whose confidence (predict_proba's largest probability) is below it, and each outlier (outliers:
        beyond the model's outlier limit), so reject=0 refuses the outliers only (docs/confidence.md).
        reject that is not a number raises TypeError, one outside [0, 1] (or NaN) ValueError."""
        threshold = check_reject(reject)
        out = self.forward(x, normalized)
        return self._decide(out, None if threshold is None else self._proba(out), threshold)

    def predict_with_proba(self, x, normalized=False, reject=None):
        """(predict's (N,) class ids, predict_proba's (N, 10) probabilities) for the images x, from one forward
        pass; reject and its errors as predict's."""
        threshold = check_reject(reject)
        out = self.forward(x, normalized)
        proba = self._proba(out)
        return self._decide(out, proba, threshold), proba

    def _decide(self, out, proba, threshold):
        """The class ids of outputs out; with a threshold (and proba, out's probabilities), -1 for each image
        whose confidence is below it or which is an outlier."""
        classes = self._classes(out)
        if threshold is not None:
            # compared in float64: the thresholds rejection_curve gives lie between float32 confidences
            refused = proba.max(axis=1).astype(np.float64) < threshold
            classes[refused | self._outliers(out)] = -1
        return classes

    def score(self, x, y, normalized=False):
        """The share of the images x that predict classifies as their labels y (scikit-learn's accuracy).
        ValueError for labels that are not N class ids in 0..9, or no images."""
        x, normalize = as_batch(x, normalized)
        return evaluation.accuracy(self.predict(x, not normalize), y)

    def _classes(self, out):
        return (out.argmin(axis=1) if self.variant == "classic" else out.argmax(axis=1)).astype(np.int64)

    def predict_proba(self, x, normalized=False):
        """(N, 10) probabilities: softmax(scores / temperature), the scores being the logits (modern) or the
        negated RBF distances (classic); calibrate() fits the temperature."""
        return self._proba(self.forward(x, normalized))

    def _proba(self, out):
        # out / 1.0 is out exactly: an uncalibrated model's probabilities are softmax(scores) to the bit
        return _core.softmax(out / np.float32(self._temperature), negate=self.variant == "classic")

    @property
    def temperature(self):
        """T of predict_proba's softmax(scores / T): a positive finite float, 1.0 unless set or fitted by
        calibrate(); saved with the model. Setting it: TypeError for a non-number, ValueError for another
        number."""
        return self._temperature

    @temperature.setter
    def temperature(self, value):
        self._temperature = check_finite_number(value, "temperature", positive=True)

    @property
    def outlier_limit(self):
        """The largest outlier_score predict(reject=...) accepts, or None (no limit: an uncalibrated model's);
        saved with the model; calibrate() fits it. A finite float, or None (TypeError for a non-number,
        ValueError for NaN or infinity)."""
        return self._outlier_limit

    @outlier_limit.setter
    def outlier_limit(self, value):
        self._outlier_limit = None if value is None else check_finite_number(value, "outlier_limit")

    def outlier_score(self, x, normalized=False):
        """(N,) float64, how unlike the digits it was trained on the network finds each image, from its
        output alone: classic, the squared distance to the nearest RBF centre; modern, the energy
        -log(sum(exp(logits))). Larger is stranger; it does not depend on the temperature."""
        return self._outlier_score(self.forward(x, normalized))

    def _outlier_score(self, out):
        out = out.astype(np.float64)
        if self.variant == "classic":
            return out.min(axis=1)
        top = out.max(axis=1)
        return -(top + np.log(np.exp(out - top[:, None]).sum(axis=1)))

    def _outliers(self, out):
        if self._outlier_limit is None:
            return np.zeros(len(out), dtype=bool)
        return self._outlier_score(out) > self._outlier_limit

    def calibrate(self, images, labels, normalized=False, outlier_share=OUTLIER_SHARE):
        """Fit the temperature and the outlier limit to labelled images the model never trained on
        (held-out digits), and return the temperature. The temperature is the T that minimises the mean
        negative log-likelihood of the labels under predict_proba (calibration.fit_temperature);
        predictions are unchanged. The outlier limit is the outlier_score that a share outlier_share (in
        [0, 1)) of these images exceed (a quantile: outlier_share=0 takes the largest score). ValueError for
        malformed labels or share, or when no temperature fits (every image right by a wide margin); on an
        error nothing changes. Training changes the scores: calibrate again after fit."""
        share = unit_number(outlier_share, "outlier_share must be a number in [0, 1)", top=False)
        out = self.forward(images, normalized)
        temperature = calibration.fit_temperature(-out if self.variant == "classic" else out, labels)
        limit = float(np.quantile(self._outlier_score(out), 1.0 - share, method="higher"))
        self.temperature, self.outlier_limit = temperature, limit
        return temperature


def check_finite_number(value, name, positive=False):
    """value (a real number, not bool; a 0-d array too, as a file holds it) as a finite float, positive when
    asked; TypeError for a non-number, ValueError for any other value."""
    kind = "a positive finite number" if positive else "a finite number"
    a = np.asarray(value) if isinstance(value, np.ndarray) else value
    if isinstance(a, np.ndarray):
        if a.shape != () or a.dtype.kind not in "iuf":
            raise TypeError(f"{name} must be {kind}, got an array of {a.dtype} {a.shape}")
        a = a[()]
    if isinstance(a, (bool, np.bool_)) or not isinstance(a, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be {kind}, got {value!r}")
    t = float(a)
    if not math.isfinite(t) or (positive and t <= 0):
        raise ValueError(f"{name} must be {kind}, got {t!r}")
    return t


def check_reject(reject):
    """predict's reject option: None, or a float in [0, 1] (TypeError for a non-number, ValueError outside)."""
    return None if reject is None else unit_number(reject, "reject must be None or a confidence in [0, 1]")


def unit_number(value, rule, top=True):
    """value (a real number, not bool) as a float in [0, 1], or [0, 1) without top; TypeError for a
    non-number, ValueError for another number (NaN too), each message starting with rule."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{rule}, got {value!r}")
    if not (0 <= value <= 1 if top else 0 <= value < 1):  # NaN fails both
        raise ValueError(f"{rule}, got {value!r}")
    return float(value)
