"""lenet_fast/optim.py and fit's optimizer options: names, bad settings refused before any work, the
variant's default rate, the schedules (warm-up, reduce-on-plateau) and the reduction. The update rules
themselves are checked against the reference in tests/kernels/test_optimizer.py; resume in
tests/test_training.py."""
import math
import warnings

import numpy as np
import pytest

from lenet_fast import optim
from lenet_fast.datasets import synthetic_digits
from lenet_fast.model import LeNet5


@pytest.fixture(scope="module")
def digits():
    return synthetic_digits(120, seed=21)


def test_make_takes_every_lowercase_name():
    for name, cls in optim.OPTIMIZERS.items():
        assert type(optim.make(name)) is cls and optim.make(name).kind == name
    assert sorted(optim.OPTIMIZERS) == ["adagrad", "adam", "adamw", "rmsprop", "sdlm", "sgd"]
    with pytest.raises(ValueError, match=r"optimizer must be one of \['adagrad', 'adam'.*got 'nadam'"):
        optim.make("nadam")


def test_pytorch_defaults():
    assert (optim.AdaGrad().base_lr, optim.AdaGrad().eps) == (0.01, 1e-10)
    r = optim.RMSProp()
    assert (r.base_lr, r.alpha, r.eps, r.momentum, r.weight_decay) == (0.01, 0.99, 1e-8, 0.0, 0.0)
    w = optim.AdamW()
    assert (w.base_lr, w.beta1, w.beta2, w.eps, w.weight_decay) == (1e-3, 0.9, 0.999, 1e-8, 0.01)
    assert optim.Adam().weight_decay == 0.0 and optim.SGD().nesterov is False


def test_sgd_default_rate_depends_on_the_variant_and_says_so():
    opt = optim.SGD()
    assert "classic 0.001" in repr(opt) and "modern 0.01" in repr(opt) and "(batch_size / 32) ** 0.75" in repr(opt)
    opt.resolve("classic", 32)
    assert opt.base_lr == optim.SGD.DEFAULT_LR["classic"] == 0.001
    opt.resolve("modern", 32)  # fixed once
    assert opt.base_lr == 0.001 and repr(opt).startswith("SGD(lr=0.001,")
    for batch, reduction, want in ((512, "mean", 0.08), (2, "mean", 0.00125), (512, "sum", 0.08 / 512)):
        opt = optim.SGD()
        opt.resolve("modern", batch, reduction)
        assert opt.base_lr == pytest.approx(want)
    opt = optim.SGD(lr=0.5)
    opt.resolve("modern", 128)
    assert opt.base_lr == 0.5
    hist = LeNet5("modern").fit(*synthetic_digits(16, seed=1), batch_size=2, optimizer="sgd", verbose=0)
    assert hist[0]["lr"] == pytest.approx(0.00125)


@pytest.mark.parametrize("make,match", [
    (lambda: optim.SGD(lr=0), r"lr must be a number in \(0.0, inf\), got 0"),
    (lambda: optim.SGD(lr=-1e-3), "lr must be"),
    (lambda: optim.Adam(lr=math.nan), "lr must be"),
    (lambda: optim.AdaGrad(lr=math.inf), "lr must be"),
    (lambda: optim.SGD(lr=0.1, momentum=1.0), r"momentum must be a number in \[0.0, 1.0\)"),
    (lambda: optim.SGD(lr=0.1, momentum=-0.1), "momentum must be"),
    (lambda: optim.SGD(lr=0.1, momentum=0.0, nesterov=True), "nesterov=True needs a momentum"),
    (lambda: optim.SGD(lr=0.1, nesterov="yes"), "nesterov must be True or False"),
    (lambda: optim.Adam(betas=(0.9, 1.0)), r"betas\[1\] must be a number in \[0.0, 1.0\)"),
    (lambda: optim.AdamW(betas=0.9), "betas must be a pair"),
    (lambda: optim.RMSProp(alpha=1.5), "alpha must be"),
    (lambda: optim.RMSProp(eps=0), r"eps must be a number in \(0.0"),
    (lambda: optim.AdaGrad(eps=-1.0), "eps must be"),
    (lambda: optim.RMSProp(weight_decay=-1.0), "weight_decay must be"),
    (lambda: optim.Adam(schedule="linear"), r"schedule must be one of \['constant', 'paper', 'plateau'\]"),
    (lambda: optim.Adam(schedule=3), "schedule must be one of"),
    (lambda: optim.ReduceOnPlateau(factor=1.0), r"factor must be a number in \(0.0, 1.0\)"),
    (lambda: optim.ReduceOnPlateau(patience=-1), "patience must be an integer >= 0"),
    (lambda: optim.Warmup(0), "epochs must be a positive integer"),
    (lambda: optim.Warmup(2, start=0.0), r"start must be a number in \(0.0, 1.0\)"),
])
def test_bad_settings_name_the_option_and_the_accepted_values(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("kwargs,match", [
    (dict(reduction="average"), r"reduction must be one of \['mean', 'sum'\], got 'average'"),
    (dict(optimizer="nadam"), "optimizer must be one of"),
    (dict(optimizer=optim.Adam(schedule=optim.ReduceOnPlateau())), "watches the validation error"),
    (dict(optimizer=optim.Adam(schedule=optim.Warmup(1, then="plateau"))), "watches the validation error"),
])
def test_fit_refuses_bad_options_before_any_work(digits, kwargs, match):
    model = LeNet5("modern", seed=1)
    before = model.params_vector.copy()
    with pytest.raises(ValueError, match=match):
        model.fit(*digits, epochs=1, verbose=0, **kwargs)
    assert np.array_equal(model.params_vector, before)


def test_warmup_rises_linearly_then_follows_its_schedule():
    w = optim.Warmup(4, start=0.25, then=optim.Step(every=1, gamma=0.5))
    assert [w(e, 1.0) for e in range(7)] == [0.25, 0.4375, 0.625, 0.8125, 1.0, 0.5, 0.25]
    assert optim.Warmup(1)(0, 2.0) == pytest.approx(0.2) and optim.Warmup(1)(5, 2.0) == 2.0


def test_reduce_on_plateau_follows_pytorchs_rule():
    s = optim.ReduceOnPlateau(factor=0.1, patience=1, cooldown=1, min_lr=2e-4)
    rates = []
    for err in [0.5, 0.4, 0.4, 0.41, 0.42, 0.43, 0.44, 0.3, 0.3, 0.3, 0.3]:
        s.observe(err)
        rates.append(s(0, 0.01))
    # two bad epochs in a row (more than patience 1) divide by 10; the cooldown epoch then counts nothing;
    # min_lr floors the rate
    assert rates == pytest.approx([0.01, 0.01, 0.01, 0.001, 0.001, 0.001, 2e-4, 2e-4, 2e-4, 2e-4, 2e-4])
    t = optim.ReduceOnPlateau()
    t.load_state(s.state())
    assert (t.best, t.bad, t.cooling, t.scale) == (s.best, s.bad, s.cooling, s.scale)


def test_fit_tells_the_schedule_the_validation_error(digits):
    x, y = digits
    sched = optim.ReduceOnPlateau(factor=0.5, patience=0)
    # a rate far too small to move the validation error: every epoch after the first is a plateau
    opt = optim.SGD(lr=1e-9, momentum=0.0, schedule=sched)
    hist = LeNet5("modern", seed=2).fit(x[:80], y[:80], epochs=4, batch_size=16, optimizer=opt, verbose=0,
                                        validation=(x[80:], y[80:]))
    # the first epoch sets the best; each later one halves the rate of the epoch after it
    assert [r["lr"] for r in hist] == pytest.approx([1e-9, 1e-9, 5e-10, 2.5e-10])
    assert sched.best == hist[0]["val_error"]


def test_reduction_sum_is_the_mean_times_the_batch(digits):
    x, y = digits
    x, y = x[:64], y[:64]
    # plain SGD, one batch: the summed gradient at rate lr / m takes the same step as the mean one at lr
    runs = []
    for reduction, lr in (("mean", 0.02), ("sum", 0.02 / 64)):
        model = LeNet5("modern", seed=5)
        model.fit(x, y, epochs=1, batch_size=64, optimizer=optim.SGD(lr=lr, momentum=0.0), verbose=0,
                  reduction=reduction)
        runs.append(model.params_vector.copy())
    start = LeNet5("modern", seed=5).params_vector
    np.testing.assert_allclose(runs[0] - start, runs[1] - start, rtol=1e-3, atol=1e-7)
    assert np.abs(runs[0] - start).max() > 1e-4
    # and "sum" at the same rate moves further than "mean"
    model = LeNet5("modern", seed=5)
    model.fit(x, y, epochs=1, batch_size=64, optimizer=optim.SGD(lr=0.02, momentum=0.0), verbose=0,
              reduction="sum")
    assert np.abs(model.params_vector - start).max() > 10 * np.abs(runs[0] - start).max()


def test_sdlm_steps_sqrt_m_times_per_pattern_on_a_batch_whatever_the_reduction(digits):
    x, y = digits
    out = []
    for reduction in ("mean", "sum"):
        opt = optim.SDLM(samples=30, schedule=optim.PaperSchedule(0.05))
        model = LeNet5("classic", seed=6)
        # 112 images: whole batches (the factor is batch_size's, a last shorter batch's included)
        model.fit(x[:112], y[:112], epochs=1, batch_size=16, verbose=0, reduction=reduction, optimizer=opt)
        assert opt.batch_factor == (4.0 if reduction == "mean" else 0.25)
        out.append(model.params_vector.copy())
    start = LeNet5("classic", seed=6).params_vector
    np.testing.assert_allclose(out[0] - start, out[1] - start, rtol=1e-4, atol=1e-7)
    assert np.abs(out[0] - start).max() > 1e-3
    one = optim.SDLM()
    LeNet5("classic", seed=6).fit(x[:10], y[:10], epochs=1, batch_size=1, verbose=0, optimizer=one)
    assert one.batch_factor == 1.0  # the paper's per-pattern steps


def test_sdlm_with_large_batches_warns_and_explains():
    x, y = synthetic_digits(80, seed=2)
    with pytest.warns(UserWarning, match=r"per-pattern method: with batch_size=64 .*sqrt\(64\)"):
        LeNet5("classic").fit(x, y, batch_size=64, optimizer=optim.SDLM(samples=20), verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LeNet5("classic").fit(x, y, batch_size=32, optimizer=optim.SDLM(samples=20), verbose=0)


def test_the_classic_default_is_sdlm_up_to_batch_32_and_sgd_beyond():
    names = [optim.default_name("classic", b) for b in (None, 1, 32, 33, 256)]
    assert names == ["sdlm", "sdlm", "sdlm", "sgd", "sgd"]
    assert {optim.default_name("modern", b) for b in (None, 1, 256)} == {"adam"}
    x, y = synthetic_digits(80, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # SDLM's large-batch warning would be an error: it is not SDLM
        history = LeNet5("classic").fit(x, y, batch_size=64, verbose=0)
    assert history[-1]["lr"] == pytest.approx(optim.SGD.DEFAULT_LR["classic"] * 2 ** optim.SGD_BATCH_POWER)
