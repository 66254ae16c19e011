"""The record of a training run: History, what fit returns, and EarlyStopping, which reads it.

A run's record is one dict per epoch (epoch, loss, error, lr, seconds, and val_error with a validation
set), as fit has always returned them. History keeps that list (it is one: it iterates, indexes, compares
and serializes as the records) and adds what Keras' and PyTorch Lightning's users look for: columns by name
(history["val_error"]) and the best epoch.
"""
import math

import numpy as np

from . import _core, plotting

MONITORS = ("val_error", "error", "loss")  # what a record holds that smaller is better for


class History(list):
    """fit's per-epoch records, in order: a list of dicts, plus columns and the best epoch.

    history[i] is the record of the (i + 1)-th epoch run (slices too, as a list's); history["name"] is that
    column over every epoch as a float64 array (KeyError naming the columns there are when no record has it).
    stopped_early is the epoch after which EarlyStopping ended the run, or None.
    """

    def __init__(self, records=(), stopped_early=None):
        super().__init__(records)
        self.stopped_early = stopped_early

    def __getitem__(self, key):
        if isinstance(key, str):
            if not self or any(key not in r for r in self):
                raise KeyError(f"{key!r}: no such column in every record (columns: {', '.join(self.columns)})")
            return np.array([r[key] for r in self], dtype=np.float64)
        return super().__getitem__(key)

    @property
    def columns(self):
        """The names every record holds, in the first record's order."""
        return [k for k in self[0] if all(k in r for r in self)] if self else []

    def best_epoch(self, monitor=None):
        """The epoch number (1-based, as the records count) where monitor was smallest, the first of ties:
        monitor is "val_error" when the run was validated, else "loss" (or any column named). ValueError
        for an empty history."""
        if not self:
            raise ValueError("the history is empty: no epoch has run")
        values = self[_monitor(monitor, self)]
        return int(self[int(np.argmin(values))]["epoch"])

    def plot(self, path):
        """Draw the training curves to path (PNG) and return it: the loss per epoch, and beside it the
        training error and (with validation) the validation error, the best epoch marked. ValueError for an
        empty history, FileNotFoundError when path's folder does not exist, ImportError without matplotlib
        (pip install "lenet_fast[plot]")."""
        if not self:
            raise ValueError("the history is empty: no epoch has run, nothing to plot")
        path = plotting.check_png_path(path)
        plt = plotting.pyplot()
        epochs = self["epoch"]
        fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
        left.plot(epochs, self["loss"], marker="o")
        left.set(xlabel="epoch", ylabel="training loss", title="loss")
        right.plot(epochs, self["error"] * 100, marker="o", label="training error")
        if "val_error" in self.columns:
            right.plot(epochs, self["val_error"] * 100, marker="o", label="validation error")
        best = self.best_epoch()
        for ax in (left, right):
            ax.axvline(best, color="gray", linestyle=":", label=f"best epoch ({best})" if ax is right else None)
            ax.grid(alpha=0.3)
            ax.xaxis.get_major_locator().set_params(integer=True)  # epochs are whole: no tick at 1.5
        right.set(xlabel="epoch", ylabel="error (%)", title="error")
        right.legend()
        fig.tight_layout()
        return plotting.save(fig, path)

    def __repr__(self):
        stopped = f", stopped_early={self.stopped_early}" if self.stopped_early is not None else ""
        return f"History({len(self)} epochs, columns {self.columns}{stopped})"


def _monitor(monitor, history):
    if monitor is None:
        return "val_error" if history and "val_error" in history[0] else "loss"
    if not isinstance(monitor, str) or monitor not in history.columns:
        raise ValueError(f"monitor must be one of the history's columns {history.columns}, got {monitor!r}")
    return monitor


class EarlyStopping:
    """Stop fit once the monitored value has not improved for `patience` epochs, and (restore_best) put
    back the weights of the best epoch.

    monitor: "val_error" (the default: needs fit's validation), "error" (the running training error) or
    "loss" (the training loss). An epoch improves when its value is below the best so far by more than
    min_delta (>= 0). patience: a positive integer. The state (best epoch, its weights) goes into fit's
    checkpoints, so a resumed run stops where an uninterrupted one would.
    """

    def __init__(self, monitor="val_error", patience=5, min_delta=0.0, restore_best=True):
        if monitor not in MONITORS:
            raise ValueError(f"monitor must be one of {', '.join(repr(m) for m in MONITORS)}, got {monitor!r}")
        if isinstance(min_delta, bool) or not isinstance(min_delta, (int, float, np.integer, np.floating)) \
                or not (0 <= min_delta < math.inf):
            raise ValueError(f"min_delta must be a finite number >= 0, got {min_delta!r}")
        if not isinstance(restore_best, bool):
            raise ValueError(f"restore_best must be True or False, got {restore_best!r}")
        self.monitor, self.patience = monitor, _core.positive_int(patience, "patience", limit=None)
        self.min_delta, self.restore_best = float(min_delta), restore_best

    @property
    def needs_validation(self):
        return self.monitor == "val_error"

    def best(self, history):
        """The 1-based epoch of the best record so far under this rule (an epoch counts as better only by
        more than min_delta), or None for an empty history."""
        best, best_value = None, math.inf
        for r in history:
            if r[self.monitor] < best_value - self.min_delta:
                best, best_value = r["epoch"], r[self.monitor]
        return best

    def should_stop(self, history):
        """Whether the run ends after the last record of history."""
        best = self.best(history)
        return best is not None and history[-1]["epoch"] - best >= self.patience

    def __repr__(self):
        return (f"EarlyStopping(monitor={self.monitor!r}, patience={self.patience}, min_delta={self.min_delta}, "
                f"restore_best={self.restore_best})")
