"""Optimizers and learning-rate schedules for LeNet5.fit.

An optimizer holds its hyperparameters and its state over the model's flat parameter vector; the update
itself runs in C (csrc/optimizer.c), elementwise. Each pass over the data starts with ``start_epoch``, which
sets the step size from the schedule (and, for SDLM, re-estimates the Hessian's diagonal); each pass ends
with ``end_epoch``, which tells the schedule the pass's validation error (ReduceOnPlateau uses it).

- ``SDLM()``: the paper's stochastic diagonal Levenberg-Marquardt: per-parameter steps epsilon / (mu + h),
  h the Gauss-Newton diagonal averaged over 500 patterns before each pass, epsilon by the paper's schedule.
- ``SGD``, ``AdaGrad``, ``RMSProp``, ``Adam``, ``AdamW``: PyTorch's update rules, defaults and argument
  names (each class's docstring gives its formulas; g is the gradient, w the weights).
Schedules: ``Constant()``, ``PaperSchedule()`` (the paper's five-stage epsilon), ``Step(every, gamma)``,
``Cosine(epochs, floor)``, ``Warmup(epochs, start, then)``, ``ReduceOnPlateau(factor, patience, ...)``; each
maps a 0-based epoch and a base rate to that epoch's rate. Bad settings raise ValueError naming the option
and the values it accepts, when the object is made.
"""
import math
from collections import OrderedDict

import numpy as np

from . import _core, paper


# The paper's epsilons as published (scale 1) make SDLM diverge here (benchmarks/sdlm_literal.py shows
# why): at the paper's +-2.4/F initialisation every curvature but F6's bias is far below mu = 0.02, so the
# first pass steps by epsilon / mu = 0.025 per pattern on the MAP loss (a sum of 84 squared differences),
# and 5 such steps saturate every layer from C3 up, for good. The schedule is therefore scaled as a
# whole (its five stages kept); this scale gave the lowest test error of those tried (see
# benchmarks/results/classic-sdlm-scale.json).
SDLM_SCALE = 0.025


class Constant:
    def __call__(self, epoch, base):
        return base

    def __repr__(self):
        return "Constant()"


class PaperSchedule:
    """The paper's epsilon for pass epoch + 1 (the base rate is ignored): 0.0005, 0.0002, 0.0001, 0.00005,
    then 0.00001 (docs/paper.md#sdlm), times scale."""

    def __init__(self, scale=1.0):
        self.scale = _number(scale, "scale")

    def __call__(self, epoch, base):
        return self.scale * paper.sdlm_epsilon(epoch)

    def __repr__(self):
        return f"PaperSchedule(scale={self.scale})"


class Step:
    """base * gamma ** (epoch // every)."""

    def __init__(self, every, gamma=0.1):
        self.every, self.gamma = _core.positive_int(every, "every", limit=None), _number(gamma, "gamma")

    def __call__(self, epoch, base):
        return base * self.gamma ** (epoch // self.every)

    def __repr__(self):
        return f"Step(every={self.every}, gamma={self.gamma})"


class Cosine:
    """Cosine annealing from base at epoch 0 to floor at epoch `epochs` (and after)."""

    def __init__(self, epochs, floor=0.0):
        self.epochs = _core.positive_int(epochs, "epochs", limit=None)
        self.floor = _number(floor, "floor", low_allowed=True)

    def __call__(self, epoch, base):
        t = min(epoch, self.epochs) / self.epochs
        return self.floor + (base - self.floor) * 0.5 * (1.0 + math.cos(math.pi * t))

    def __repr__(self):
        return f"Cosine(epochs={self.epochs}, floor={self.floor})"


class Warmup:
    """Linear warm-up: base * (start + (1 - start) * epoch / epochs) for the first `epochs` epochs, then
    `then` (a schedule, Constant() by default) counted from the end of the warm-up. The rate changes at
    epoch boundaries only (fit sets the rate once per pass)."""

    def __init__(self, epochs, start=0.1, then=None):
        self.epochs = _core.positive_int(epochs, "epochs", limit=None)
        self.start = _number(start, "start", high=1.0)
        self.then = schedule(then)

    def __call__(self, epoch, base):
        if epoch < self.epochs:
            return base * (self.start + (1.0 - self.start) * epoch / self.epochs)
        return self.then(epoch - self.epochs, base)

    # the schedule after the warm-up may watch the validation error (ReduceOnPlateau)
    @property
    def needs_validation(self):
        return getattr(self.then, "needs_validation", False)

    def observe(self, val_error):
        if hasattr(self.then, "observe"):
            self.then.observe(val_error)

    def state(self):
        return self.then.state() if hasattr(self.then, "state") else _no_state()

    def load_state(self, a):
        if hasattr(self.then, "load_state"):
            self.then.load_state(a)

    def __repr__(self):
        return f"Warmup(epochs={self.epochs}, start={self.start}, then={self.then!r})"


class ReduceOnPlateau:
    """Divides the rate when the validation error stops improving (AlexNet's rate / 10), PyTorch's rule:
    after each epoch, an error below best - min_delta is the new best; otherwise a bad epoch is counted,
    and after more than `patience` bad epochs in a row the rate is multiplied by factor (never below
    min_lr) and `cooldown` epochs pass before bad epochs count again. Needs fit's validation set; its
    state (best, bad epochs, cooldown left, the current multiplier) is saved in checkpoints."""

    needs_validation = True

    def __init__(self, factor=0.1, patience=2, min_delta=0.0, cooldown=0, min_lr=0.0):
        self.factor = _number(factor, "factor", high=1.0)
        self.patience, self.cooldown = _count(patience, "patience"), _count(cooldown, "cooldown")
        self.min_delta = _number(min_delta, "min_delta", low_allowed=True)
        self.min_lr = _number(min_lr, "min_lr", low_allowed=True)
        self.best, self.bad, self.cooling, self.scale = math.inf, 0, 0, 1.0

    def __call__(self, epoch, base):
        return max(base * self.scale, self.min_lr) if self.scale != 1.0 else base

    def observe(self, val_error):
        if val_error < self.best - self.min_delta:
            self.best, self.bad = float(val_error), 0
        else:
            self.bad += 1
        if self.cooling > 0:
            self.cooling -= 1
            self.bad = 0
        if self.bad > self.patience:
            self.scale *= self.factor
            self.cooling, self.bad = self.cooldown, 0

    def state(self):
        return np.array([self.best, self.bad, self.cooling, self.scale], dtype=np.float64)

    def load_state(self, a):
        self.best, self.bad, self.cooling, self.scale = float(a[0]), int(a[1]), int(a[2]), float(a[3])

    def __repr__(self):
        return (f"ReduceOnPlateau(factor={self.factor}, patience={self.patience}, min_delta={self.min_delta}, "
                f"cooldown={self.cooldown}, min_lr={self.min_lr})")


_SCHEDULE_STATE = 4  # floats every checkpoint keeps for the schedule (ReduceOnPlateau's four; zeros otherwise)


def _no_state():
    return np.zeros(_SCHEDULE_STATE, dtype=np.float64)


SCHEDULES = {"constant": Constant, "paper": PaperSchedule, "plateau": ReduceOnPlateau}


def schedule(value):
    """A schedule from None (Constant()), a name in SCHEDULES (default settings) or a callable
    (epoch, base rate) -> rate, as it is."""
    if value is None:
        return Constant()
    if isinstance(value, str):
        if value not in SCHEDULES:
            raise ValueError(f"schedule must be one of {sorted(SCHEDULES)} or a callable, got {value!r}")
        return SCHEDULES[value]()
    if not callable(value):
        raise ValueError(f"schedule must be one of {sorted(SCHEDULES)} or a callable (epoch, base rate) -> "
                         f"rate, got {value!r}")
    return value


def _count(value, name):
    """value as an int >= 0 (any integer type but bool); ValueError naming it otherwise."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def _number(value, name, low=0.0, high=math.inf, low_allowed=False):
    """value as a float in (low, high), or [low, high) with low_allowed; ValueError otherwise."""
    ok = isinstance(value, (int, float, np.floating)) and not isinstance(value, bool) and value < high and \
        (value >= low if low_allowed else value > low)
    if not ok:
        raise ValueError(f"{name} must be a number in {'[' if low_allowed else '('}{low}, {high}), got {value!r}")
    return float(value)


class Optimizer:
    """The common part: the rate and its schedule, the state arrays (float32, one entry per parameter),
    the step counter t and the schedule's state, all saved in checkpoints by state()/load_state().

    lr=None (where a class allows it) is the variant's default rate (the class's DEFAULT_LR), fixed when
    fit first binds the optimizer to a model (``resolve``)."""

    kind = None
    _arrays = ()  # names of the state arrays
    DEFAULT_LR = None  # variant -> rate, for the classes whose lr=None depends on the variant

    def __init__(self, lr, schedule_):
        self.base_lr = None if lr is None and self.DEFAULT_LR else _number(lr, "lr")
        self.lr = self.base_lr
        self.schedule = schedule(schedule_)
        self.t = 0
        self.size = None

    def resolve(self, variant, batch_size=1, reduction="mean"):
        """Before fit's first epoch: fix lr=None to the variant's default rate (once; a later model keeps
        it). batch_size and reduction: how fit makes the gradient the updates take (SDLM uses them)."""
        if self.base_lr is None:
            self.base_lr = self.lr = self.DEFAULT_LR[variant]

    def bind(self, size):
        """Allocate zeroed state for a model of size parameters (once; a second model must match)."""
        if self.size is None:
            self.size = size
            for name in self._arrays:
                setattr(self, name, np.zeros(size, dtype=np.float32))
        elif self.size != size:
            raise ValueError(f"this optimizer holds state for {self.size} parameters, not {size}")

    def start_epoch(self, epoch, model, images, labels, loss, j, normalize):
        """Set this epoch's rate; images and labels are the epoch's data in training order, as the
        engine takes them (normalize: whether it maps their pixels)."""
        self.lr = _number(self.schedule(epoch, self.base_lr), "the scheduled rate")

    def end_epoch(self, val_error):
        """Tell the schedule the epoch's validation error (None without validation)."""
        if val_error is not None and hasattr(self.schedule, "observe"):
            self.schedule.observe(val_error)

    def update(self, params, grad):
        """One update of the flat vector params from grad (in place)."""
        _core.update(params, grad, self)

    def state(self):
        """The state as numpy arrays (for a checkpoint)."""
        out = OrderedDict((name, getattr(self, name)) for name in self._arrays)
        out["t"] = np.array(self.t, dtype=np.int64)
        out["lr"] = np.array(self.lr if self.lr is not None else math.nan)
        out["schedule"] = self.schedule.state() if hasattr(self.schedule, "state") else _no_state()
        return out

    def load_state(self, state):
        for name in self._arrays:
            a = np.asarray(state[name])
            if a.dtype != np.float32 or a.shape != (self.size,) or not _core.all_finite(a):
                raise ValueError(f"optimizer state {name!r} does not fit {self.size} parameters")
            getattr(self, name)[...] = a
        self.t, self.lr = int(state["t"]), float(state["lr"])
        if "schedule" in state and hasattr(self.schedule, "load_state"):
            a = np.asarray(state["schedule"], dtype=np.float64)
            if a.shape != (_SCHEDULE_STATE,):
                raise ValueError("the schedule's saved state has the wrong shape")
            self.schedule.load_state(a)

    def _rate_repr(self):
        if self.base_lr is not None:
            return f"{self.base_lr}"
        return "None (at batch 32: " + ", ".join(f"{k} {v:g}" for k, v in self.DEFAULT_LR.items()) + \
            ", times (batch_size / 32) ** 0.75)"


def _decay(weight_decay):
    return _number(weight_decay, "weight_decay", low_allowed=True)


def _fraction(value, name):
    """value in [0, 1)."""
    return _number(value, name, high=1.0, low_allowed=True)


SGD_BATCH_POWER = 0.75  # SGD(lr=None)'s rate grows as (batch_size / 32) ** this (SGD's docstring)


class SGD(Optimizer):
    """Stochastic gradient descent with momentum (classical or Nesterov) and L2 weight decay, PyTorch's
    form: d = g + weight_decay w; b = momentum b + d; then w -= lr b, or with nesterov w -= lr (d +
    momentum b). momentum defaults to 0.9 (PyTorch: 0) so that the default learns within an epoch.
    lr=None: the variant's rate at batch 32, DEFAULT_LR (classic's MAP/RBF gradients are larger than
    modern's cross-entropy ones, so one rate cannot serve both), times (batch_size / 32) ** 0.75 (at a
    fixed rate, batch 1 diverges and batch 256 learns too slowly in an epoch; the power is the one measured
    to serve batches 1 to 256 for both variants: benchmarks/results/defaults-2026-12-03.md), divided by
    batch_size under reduction="sum"; fixed when fit first binds it."""

    kind = "sgd"
    _arrays = ("m",)
    DEFAULT_LR = {"classic": 0.001, "modern": 0.01}  # at batch 32

    def resolve(self, variant, batch_size=32, reduction="mean"):
        if self.base_lr is None:
            rate = self.DEFAULT_LR[variant] * (batch_size / 32) ** SGD_BATCH_POWER
            self.base_lr = self.lr = rate / batch_size if reduction == "sum" else rate

    def __init__(self, lr=None, momentum=0.9, nesterov=False, weight_decay=0.0, schedule=None):
        super().__init__(lr, schedule)
        self.momentum = _fraction(momentum, "momentum")
        if not isinstance(nesterov, bool):
            raise ValueError(f"nesterov must be True or False, got {nesterov!r}")
        if nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs a momentum in (0, 1), got momentum=0")
        self.nesterov = nesterov
        self.weight_decay = _decay(weight_decay)

    def __repr__(self):
        return f"SGD(lr={self._rate_repr()}, momentum={self.momentum}, nesterov={self.nesterov}, " \
               f"weight_decay={self.weight_decay}, schedule={self.schedule!r})"


class AdaGrad(Optimizer):
    """AdaGrad (Duchi et al., 2011), PyTorch's form: d = g + weight_decay w; s += d^2;
    w -= lr d / (sqrt(s) + eps)."""

    kind = "adagrad"
    _arrays = ("v",)

    def __init__(self, lr=0.01, eps=1e-10, weight_decay=0.0, schedule=None):
        super().__init__(lr, schedule)
        self.eps = _number(eps, "eps")
        self.weight_decay = _decay(weight_decay)

    def __repr__(self):
        return f"AdaGrad(lr={self.base_lr}, eps={self.eps}, weight_decay={self.weight_decay}, " \
               f"schedule={self.schedule!r})"


class RMSProp(Optimizer):
    """RMSProp (Hinton's lecture notes), PyTorch's form: d = g + weight_decay w;
    v = alpha v + (1 - alpha) d^2; u = d / (sqrt(v) + eps); with momentum b = momentum b + u, w -= lr b;
    without, w -= lr u."""

    kind = "rmsprop"
    _arrays = ("m", "v")

    def __init__(self, lr=0.01, alpha=0.99, eps=1e-8, momentum=0.0, weight_decay=0.0, schedule=None):
        super().__init__(lr, schedule)
        self.alpha = _fraction(alpha, "alpha")
        self.eps = _number(eps, "eps")
        self.momentum = _fraction(momentum, "momentum")
        self.weight_decay = _decay(weight_decay)

    def __repr__(self):
        return f"RMSProp(lr={self.base_lr}, alpha={self.alpha}, eps={self.eps}, momentum={self.momentum}, " \
               f"weight_decay={self.weight_decay}, schedule={self.schedule!r})"


class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015), PyTorch's form, t the update's number from 1: d = g + weight_decay w;
    m = beta1 m + (1 - beta1) d; v = beta2 v + (1 - beta2) d^2;
    w -= lr (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)."""

    kind = "adam"
    _arrays = ("m", "v")
    _decoupled = False

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, schedule=None):
        super().__init__(lr, schedule)
        try:
            b1, b2 = betas
        except (TypeError, ValueError):
            raise ValueError(f"betas must be a pair of numbers in [0, 1), got {betas!r}") from None
        self.beta1, self.beta2 = _fraction(b1, "betas[0]"), _fraction(b2, "betas[1]")
        self.eps = _number(eps, "eps")
        self.weight_decay = _decay(weight_decay)

    def __repr__(self):
        return f"{type(self).__name__}(lr={self.base_lr}, betas=({self.beta1}, {self.beta2}), eps={self.eps}, " \
               f"weight_decay={self.weight_decay}, schedule={self.schedule!r})"


class AdamW(Adam):
    """AdamW (Loshchilov and Hutter, 2019): Adam with decoupled weight decay, PyTorch's form:
    w -= lr weight_decay w first, then Adam's step on the plain gradient (d = g)."""

    kind = "adamw"

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, schedule=None):
        super().__init__(lr, betas, eps, weight_decay, schedule)


# SDLM's step with mini-batches of m patterns: per-pattern steps on the batch's mean gradient (scale 1) learn
# too slowly, and m times them (the summed gradient: as far as the patterns would move one by one, from the
# batch's weights) drive the classic network into saturation. sqrt(m) learns at m = 32 and is near the
# largest stable scale at m = 256 (benchmarks/results/defaults-2026-12-03.md has the runs).


class SDLM(Optimizer):
    """The paper's stochastic diagonal Levenberg-Marquardt (docs/paper.md#sdlm), with the paper's
    epsilon schedule scaled by SDLM_SCALE unless another schedule is given (see SDLM_SCALE for why).

    Before each pass, h is the diagonal of the Gauss-Newton Hessian averaged over `samples` patterns (the
    pass's first ones, so a seeded shuffle picks them); each parameter then steps by
    epsilon / (mu + h) times its gradient, epsilon from the schedule (the paper's by default). The paper
    updates after every pattern. With a batch of m patterns, each step is sqrt(m) times the per-pattern
    step on the batch's mean gradient (whatever fit's reduction): m times, the distance the patterns would
    move one by one, diverges from m = 32 on (the comment above this class says why).
    """

    kind = "sdlm"
    _arrays = ("step",)

    def __init__(self, mu=paper.SDLM_MU, samples=paper.SDLM_HESSIAN_SAMPLES, schedule=None, epsilon=None):
        # epsilon: the base rate a custom schedule scales; the paper's schedule sets its own.
        super().__init__(paper.sdlm_epsilon(0) if epsilon is None else epsilon,
                         schedule or PaperSchedule(SDLM_SCALE))
        self.mu = _number(mu, "mu")
        if not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
            raise ValueError(f"samples must be a positive integer, got {samples!r}")
        self.samples = samples
        self.h = None
        self.batch_factor = 1.0

    def start_epoch(self, epoch, model, images, labels, loss, j, normalize):
        super().start_epoch(epoch, model, images, labels, loss, j, normalize)
        m = min(self.samples, len(images))
        self.h = model.curvature(images[:m], labels[:m], loss, j, normalized=not normalize)
        self.step[...] = (self.lr * self.batch_factor / (self.mu + self.h.astype(np.float64))).astype(np.float32)

    def resolve(self, variant, batch_size=1, reduction="mean"):
        super().resolve(variant, batch_size, reduction)
        # sqrt(m) on the mean gradient; the same move on the summed one (which is m times larger)
        self.batch_factor = math.sqrt(batch_size) / (batch_size if reduction == "sum" else 1)

    def __repr__(self):
        return f"SDLM(mu={self.mu}, samples={self.samples}, schedule={self.schedule!r})"


# SDLM's batches beyond this learn too slowly per epoch (docs/training.md#defaults): fit warns when it is asked
# for them, and the classic variant's default optimizer there is SGD with momentum instead
SDLM_MAX_BATCH = 32

OPTIMIZERS = {"sdlm": SDLM, "sgd": SGD, "adagrad": AdaGrad, "rmsprop": RMSProp, "adam": Adam, "adamw": AdamW}


def default_name(variant, batch_size=None):
    """fit's optimizer when none is given: the modern variant's is Adam; the classic one's is the paper's SDLM
    (per pattern: batch_size None means 1), or SGD with momentum for batches above SDLM_MAX_BATCH, where an
    epoch gives SDLM too few updates to learn."""
    if variant != "classic":
        return "adam"
    return "sdlm" if batch_size is None or batch_size <= SDLM_MAX_BATCH else "sgd"


def make(optimizer):
    """An optimizer from a name in OPTIMIZERS (default settings) or an Optimizer as it is."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str) and optimizer in OPTIMIZERS:
        return OPTIMIZERS[optimizer]()
    raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)} or an Optimizer, got {optimizer!r}")
