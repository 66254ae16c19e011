"""LeNet5.fit: epochs of shuffled mini-batches (or the paper's single patterns) through the C trainer, with
progress, validation, checkpoints and exact resumption.

A checkpoint is written after every epoch, atomically (a temporary file beside it, then os.replace): the
weights, the optimizer's state, the shuffling generator's state, the epoch and the history so far. Resuming
from it replays nothing: the next epoch draws the same permutation and starts from the same weights and
state, so an interrupted and resumed run ends bit-identical to an uninterrupted one.
"""
import json
import os
import sys
import time
import warnings

import numpy as np

from . import _core, optim, paper, storage
from .history import EarlyStopping, History
from .inputs import as_batch

CHECKPOINT_FORMAT = 1
_CHUNK = 4096  # images per call into C between progress updates
_CLASSES = 10  # the digits
REDUCTIONS = ("mean", "sum")  # how a batch's losses make the gradient an update takes


def fit(model, images, labels, epochs=1, batch_size=None, optimizer=None, loss=None, j=paper.MAP_J,
        validation=None, seed=0, verbose=1, checkpoint=None, resume=None, normalized=False, augment=None,
        early_stopping=None, reduction="mean", reject_j=None):
    """See LeNet5.fit. model is a LeNet5 (this module does not import lenet_fast.model: the dependency runs
    one way, model to train)."""
    trainer = model.trainer()
    x, normalize = as_batch(images, normalized)
    trainer.network.check_input(x, normalize)  # as every call into C checks it, but before any work
    if len(x) == 0:
        raise ValueError("no training images (an empty batch)")
    loss = model.default_loss if loss is None else loss
    y = _core.check_labels(labels, len(x), _CLASSES, loss=loss)  # -1 (not a digit) where the loss gives it a meaning
    if validation is not None:
        try:
            xv, yv = validation
        except (TypeError, ValueError):
            raise ValueError("validation must be a pair (images, labels)") from None
        xv, normalize_v = as_batch(xv, normalized)
        trainer.network.check_input(xv, normalize_v)
        yv = _core.check_labels(yv, len(xv), _CLASSES, "validation labels")
    epochs = _core.positive_int(epochs, "epochs", limit=None)
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {list(REDUCTIONS)}, got {reduction!r}")
    if batch_size is not None:
        batch_size = _core.positive_int(batch_size, "batch_size")  # the engine's limit, before any batch meets it
    opt = optim.make(optimizer if optimizer is not None else optim.default_name(model.variant, batch_size))
    if batch_size is None:
        batch_size = 1 if opt.kind == "sdlm" else 32
    trainer.check_loss(loss, j, reject_j)
    if opt.kind == "sdlm" and batch_size > optim.SDLM_MAX_BATCH:
        warnings.warn(f"SDLM is the paper's per-pattern method: with batch_size={batch_size} each update is "
                      f"sqrt({batch_size}) times a pattern's step and an epoch learns far less "
                      f"(docs/training.md#defaults); use batch_size <= {optim.SDLM_MAX_BATCH}, more epochs, or "
                      "another optimizer (fit's default for the classic variant at this batch size is SGD with "
                      "momentum)",
                      UserWarning, stacklevel=3)
    if opt.kind == "sdlm" and loss == "hinge":  # found here, not at the first epoch's curvature estimate
        raise ValueError("optimizer 'sdlm' divides its steps by the loss's curvature, and loss 'hinge' has none "
                         "(it is piecewise linear): use optimizer 'sgd' or 'adam' with it, or another loss")
    if verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0 (silent), 1 (progress) or 2 (a line per epoch), got {verbose!r}")
    if augment is not None and not callable(augment):
        raise TypeError(f"augment must be callable (images, rng) -> images, got {augment!r}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if early_stopping is not None and not isinstance(early_stopping, EarlyStopping):
        raise TypeError(f"early_stopping must be a lenet_fast.EarlyStopping or None, got {early_stopping!r}")
    watching = [w for w in (opt.schedule, early_stopping) if getattr(w, "needs_validation", False)]
    if watching and validation is None:
        raise ValueError(f"{watching[0]!r} watches the validation error, which needs validation=(images, labels)")
    if checkpoint is not None:
        _check_destination(checkpoint)
    opt.resolve(model.variant, batch_size, reduction)
    opt.bind(model.params_vector.size)

    settings = {"variant": model.variant, "batch_size": batch_size, "loss": loss, "j": float(j),
                "optimizer": opt.kind, "n": len(x)}
    # options at their defaults are absent, as in checkpoints made before the options existed
    if reduction != "mean":
        settings["reduction"] = reduction
    if early_stopping is not None:
        settings["early_stopping"] = repr(early_stopping)
    if reject_j is not None:
        settings["reject_j"] = float(reject_j)
    digits = int((y >= 0).sum())
    rng = np.random.default_rng(seed)
    start, history, best = 0, History(), None
    if resume is not None:
        start, records, best = _restore(resume, model, opt, rng, settings)
        history.extend(records)

    with model.guard.writing():  # waits for other threads' uses of the weights running, refuses new ones
        if early_stopping is not None and history and early_stopping.should_stop(history):  # it had stopped
            history.stopped_early, start = history[-1]["epoch"], epochs
        for epoch in range(start, epochs):
            t0 = time.perf_counter()
            order = rng.permutation(len(x))
            xe, ye = x[order], y[order]
            if augment is not None:
                xe = _augmented(augment, xe, rng, normalize)
            opt.start_epoch(epoch, model, xe, ye, loss, j, normalize)
            total, wrong = 0.0, 0
            chunk = max(batch_size, _CHUNK // batch_size * batch_size)  # whole batches per call
            bar = _progress(verbose, len(x), f"epoch {epoch + 1}/{epochs}")
            for s in range(0, len(x), chunk):
                losses, out = trainer.train(xe[s : s + chunk], ye[s : s + chunk], batch_size, opt, loss, j,
                                            normalize, reduction == "sum", dropout=(seed, epoch, s),
                                            reject_j=reject_j)
                if not np.isfinite(losses).all():
                    raise FloatingPointError(f"training diverged in epoch {epoch + 1}: the loss is not finite "
                                             "(lower the learning rate); the last checkpoint is intact")
                total += float(losses.sum(dtype=np.float64))
                yc = ye[s : s + chunk]  # the error counts the digits only: -1 (not a digit) is never predicted
                wrong += int(((model._classes(out.reshape(len(losses), -1)) != yc) & (yc >= 0)).sum())
                if bar is not None:
                    bar.update(len(losses))
                    bar.set_postfix(loss=f"{total / (s + len(losses)):.4f}",
                                    error=f"{100 * wrong / (s + len(losses)):.2f}%")
            if not _core.all_finite(model.params_vector):
                raise FloatingPointError(f"training diverged in epoch {epoch + 1}: the weights are not finite")
            record = {"epoch": epoch + 1, "loss": total / len(x), "error": wrong / max(digits, 1), "lr": opt.lr}
            if validation is not None:
                record["val_error"] = float((model.predict(xv, normalized) != yv).mean()) if len(xv) else 0.0
            opt.end_epoch(record.get("val_error"))
            record["seconds"] = time.perf_counter() - t0
            history.append(record)
            if bar is not None:
                bar.close()
            if verbose:
                _report(record, epochs, bar is None)
            stop = False
            if early_stopping is not None:
                if early_stopping.best(history) == record["epoch"]:
                    best = model.params_vector.copy()
                stop = early_stopping.should_stop(history)
            if checkpoint is not None:  # the last weights: a resumed run goes on from where this one was
                save_checkpoint(checkpoint, model, opt, rng, history, settings, best)
            if stop:
                history.stopped_early = record["epoch"]
                if verbose:
                    print(f"early stopping after epoch {record['epoch']}: no better {early_stopping.monitor} since "
                          f"epoch {early_stopping.best(history)}", file=sys.stderr, flush=True)
                break
        _restore_best(model, early_stopping, history, best)
    return history


def _restore_best(model, early_stopping, history, best):
    """At the end of a run with early stopping and restore_best, the weights of its best epoch (stopped
    early or not). Checkpoints keep the last weights and these beside them (__best__)."""
    if early_stopping is not None and early_stopping.restore_best and best is not None:
        model.params_vector[...] = best


def _check_destination(path):
    """Refuses, before any training, a checkpoint path that no checkpoint could be written to: not a path,
    a folder, what a save never replaces (a device, FIFO, socket: storage.destination), or in a folder that
    does not exist or cannot be written."""
    try:
        path = os.fspath(path)
    except TypeError:
        raise TypeError(f"checkpoint must be a file path, got {path!r}") from None
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ValueError(f"checkpoint {path!r} is a folder; give a file path")
    storage.destination(path)
    if not os.path.isdir(folder):
        raise ValueError(f"checkpoint {path!r}: its folder {folder!r} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"checkpoint {path!r}: its folder {folder!r} is not writable")


def _augmented(augment, x, rng, normalize):
    """augment(x, rng), checked to be images of x's shape and kind (pixels, unless normalized)."""
    out = np.asarray(augment(x, rng))
    if out.shape != x.shape or out.dtype.kind not in "uf":
        raise ValueError(f"augment must return images of shape {x.shape}, got {out.dtype} {out.shape}")
    out = np.ascontiguousarray(out, dtype=np.uint8 if out.dtype.kind == "u" and normalize else np.float32)
    if out.dtype == np.float32 and normalize:
        np.clip(out, 0.0, 1.0, out=out)
    return out


def _progress(verbose, total, desc):
    """A tqdm bar when verbose is 1 and tqdm is installed; None otherwise."""
    if verbose != 1:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="img", leave=True, file=sys.stderr)


def _report(r, epochs, plain):
    if not plain and "val_error" not in r:
        return  # the bar already said it
    line = f"epoch {r['epoch']}/{epochs}: loss {r['loss']:.4f}, training error {100 * r['error']:.2f}%"
    if "val_error" in r:
        line += f", validation error {100 * r['val_error']:.2f}%"
    print(line + f", {r['seconds']:.1f} s", file=sys.stderr, flush=True)


def save_checkpoint(path, model, opt, rng, history, settings, best=None):
    """Weights, optimizer state, generator state and history, atomically (see the module docstring); best:
    early stopping's best weights so far (a flat vector), or None."""
    record = json.dumps({"settings": settings, "history": history, "rng": rng.bit_generator.state})
    if len(record) > storage.TEXT_CHARS:  # a file load() would refuse
        raise ValueError(f"the record of the run is longer than a checkpoint holds ({storage.TEXT_CHARS} "
                         "characters): not saved")
    arrays = {
        "__format__": np.array(CHECKPOINT_FORMAT),
        "__checkpoint__": np.array(record),
        "__variant__": np.array(model.variant),
    }
    if best is not None:
        arrays["__best__"] = best
    arrays.update(model.option_entries())
    arrays.update(model.params)
    arrays.update(("optimizer." + k, v) for k, v in opt.state().items())
    storage.write_npz(path, arrays)


def checkpoint_limits(sizes, options, opt=None):
    """storage.read_npz's limits for a checkpoint of a model whose parameters have sizes (name -> number of
    values) and whose options' entries have the limits options (LeNet5.OPTION_LIMITS), holding opt's state
    (None: any optimizer's)."""
    limits = {"__format__": storage.NUMBER_BYTES, "__variant__": storage.text_bytes(storage.NAME_CHARS),
              "__checkpoint__": storage.text_bytes(storage.TEXT_CHARS)}
    limits.update(options)
    limits.update((name, storage.NUMBER_BYTES * size) for name, size in sizes.items())
    limits["__best__"] = storage.NUMBER_BYTES * sum(sizes.values())
    for o in [opt] if opt is not None else [optim.make(kind) for kind in optim.OPTIMIZERS]:
        o.bind(sum(sizes.values()))  # the state's sizes (nothing changes if bound already)
        limits.update(("optimizer." + k, storage.NUMBER_BYTES * np.size(v)) for k, v in o.state().items())
    return limits


def _restore(path, model, opt, rng, settings):
    """Load a checkpoint into model, opt and rng; returns (epochs done, history, early stopping's best
    weights or None)."""
    arrays = storage.read_npz(path, "checkpoint",
                              checkpoint_limits({k: v.size for k, v in model.params.items()}, model.OPTION_LIMITS,
                                                opt))
    try:
        if int(arrays.pop("__format__")) != CHECKPOINT_FORMAT:
            raise ValueError("an unknown checkpoint format")
        meta = json.loads(str(arrays.pop("__checkpoint__")))
        saved, history, state = meta["settings"], meta["history"], meta["rng"]
        if not (isinstance(saved, dict) and isinstance(history, list) and all(isinstance(r, dict) for r in history)):
            raise ValueError("a malformed record of the run")
        arrays.pop("__variant__")
        best = arrays.pop("__best__", None)
        if best is not None and (best.dtype != np.float32 or best.shape != model.params_vector.shape
                                 or not _core.all_finite(best)):
            raise ValueError("early stopping's best weights do not fit this model")
        saved_options = {k: str(arrays.pop(k)) for k in model.OPTION_LIMITS if k in arrays}
        if saved_options != {k: str(v) for k, v in model.option_entries().items()}:  # the same network
            raise ValueError(f"it was made by a model with other options ({saved_options or 'the defaults'})")
    except (KeyError, TypeError, ValueError, RecursionError) as exc:
        raise ValueError(f"{path}: not a lenet_fast checkpoint ({exc})") from None
    differ = {k: (saved.get(k), v) for k, v in settings.items() if saved.get(k) != v}
    if differ:
        raise ValueError(f"{path}: the checkpoint was made with other settings (saved, now): {differ}")
    opt_state = {k[len("optimizer."):]: arrays.pop(k) for k in list(arrays) if k.startswith("optimizer.")}
    try:  # the weights last: set_params changes nothing unless every one is right, so a bad file leaves them
        opt.load_state(opt_state)
        rng.bit_generator.state = state
        model.set_params(arrays)
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    return len(history), history, best
