"""Ensembles: several LeNet5 models voting by their averaged probabilities.

An ensemble's probabilities are the mean of its members' predict_proba (each calibrated by its own
temperature), summed in member order in float64: the same for any thread count, as every member's are.
Members trained from different seeds make different mistakes; averaging them removes some (AlexNet's seven
networks cut its error from 18.2% to 15.4%; benchmarks/results/ensemble-*.json for LeNet-5's figures).

A file (Ensemble.save) holds each member's model file entries under "member<i>." and the member count; it is
read without pickle, with the same checks as a model file.
"""
import numpy as np

from . import _core, evaluation, model as _model, predictor, storage
from .inputs import as_batch

FORMAT_VERSION = 1
MAX_MEMBERS = 32  # a file claiming more is refused before any array is read


class Ensemble:
    """Ensemble(models): a non-empty sequence of LeNet5 models (of either variant, mixed if wanted), used as
    given (not copied: training a member later changes the ensemble). TypeError for anything else.

    predict_proba, predict, score and evaluate take the images as LeNet5's methods do; save(path) and
    Ensemble.load(path) store and read it; it pickles, as its members do.
    """

    def __init__(self, models):
        try:
            members = list(models)
        except TypeError:
            raise TypeError(f"Ensemble takes a sequence of LeNet5 models, got {models!r}") from None
        if not members:
            raise ValueError("an ensemble needs at least one model")
        for i, m in enumerate(members):
            if not isinstance(m, _model.LeNet5):
                raise TypeError(f"models[{i}] is not a LeNet5: {m!r}")
        if len(members) > MAX_MEMBERS:
            raise ValueError(f"an ensemble holds at most {MAX_MEMBERS} models, got {len(members)}")
        self.members = tuple(members)

    def __len__(self):
        return len(self.members)

    def __iter__(self):
        return iter(self.members)

    def predict_proba(self, x, normalized=False):
        """(N, 10) float32: the mean of the members' predict_proba."""
        x, normalize = as_batch(x, normalized)
        total = np.zeros((len(x), evaluation.CLASSES))
        for m in self.members:
            total += m.predict_proba(x, not normalize)
        return (total / len(self.members)).astype(np.float32)

    def predict(self, x, normalized=False, reject=None):
        """(N,) int64: the class of largest mean probability; reject=p in [0, 1] refuses with -1 each image
        whose largest mean probability is below p (TypeError for a non-number, ValueError outside [0, 1])."""
        return self.predict_with_proba(x, normalized, reject)[0]

    def predict_with_proba(self, x, normalized=False, reject=None):
        """(predict's (N,) class ids, predict_proba's (N, 10) probabilities), each member run once."""
        threshold = predictor.check_reject(reject)
        proba = self.predict_proba(x, normalized)
        classes = proba.argmax(axis=1).astype(np.int64)
        if threshold is not None:
            classes[proba.max(axis=1).astype(np.float64) < threshold] = -1
        return classes, proba

    def score(self, x, y, normalized=False):
        """The share of the images predict classifies as their labels (scikit-learn's accuracy)."""
        return evaluation.accuracy(self.predict(x, normalized), y)

    def evaluate(self, x, y, normalized=False):
        """An evaluation.Evaluation (LeNet5.evaluate); its loss is the mean negative log-likelihood of the
        labels under the averaged probabilities (the log loss)."""
        proba = self.predict_proba(x, normalized)
        y = _core.check_labels(y, len(proba), evaluation.CLASSES)
        predicted = proba.argmax(axis=1).astype(np.int64)
        nll = -np.log(np.maximum(proba[np.arange(len(y)), y].astype(np.float64), np.finfo(np.float32).tiny))
        return evaluation.evaluation(predicted, y, nll)

    def save(self, path):
        """Save to a .npz file, atomically, as LeNet5.save does (its docstring says what that guarantees)."""
        arrays = {"__format__": np.array(FORMAT_VERSION), "__members__": np.array(len(self.members))}
        for i, m in enumerate(self.members):
            with m.guard.reading():
                entries = _model._entries(m)
                storage.check_finite(m.params)
                arrays.update((f"member{i}.{k}", np.array(v, copy=True)) for k, v in entries.items())
        storage.write_npz(path, arrays)

    @classmethod
    def load(cls, path):
        """An Ensemble from a file save() wrote; ValueError, saying why, for anything else (never unpickles)."""
        limits = {"__format__": storage.NUMBER_BYTES, "__members__": storage.NUMBER_BYTES}
        for name, most in _model._file_limits().items():
            limits.update((f"member{i}.{name}", most) for i in range(MAX_MEMBERS))
        return _from_arrays(storage.read_npz(path, "ensemble", limits), path)

    def __reduce__(self):
        """Pickling and copies: the members' own (LeNet5.__reduce__)."""
        return Ensemble, (list(self.members),)

    def __repr__(self):
        return f"Ensemble({len(self.members)} models: {', '.join(m.variant for m in self.members)})"


def _from_arrays(arrays, source):
    try:
        version = int(arrays.pop("__format__"))
        count = int(arrays.pop("__members__"))
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{source}: not a lenet_fast ensemble file (no format version or member count)") from None
    if version != FORMAT_VERSION:
        raise ValueError(f"{source}: ensemble format {version} is not supported (this version reads {FORMAT_VERSION})")
    if not 1 <= count <= MAX_MEMBERS:
        raise ValueError(f"{source}: an ensemble of {count} models (1 to {MAX_MEMBERS} are read)")
    entries = [{} for _ in range(count)]
    for key, value in arrays.items():
        member, _, name = key.partition(".")
        i = int(member[len("member"):])
        if i >= count:
            raise ValueError(f"{source}: an entry of member {i}, beyond its {count} members")
        entries[i][name] = value
    return Ensemble([_model._from_entries(e, f"{source} (member {i})") for i, e in enumerate(entries)])
