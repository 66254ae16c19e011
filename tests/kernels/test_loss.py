"""csrc/loss.c: the training losses (the paper's MAP criterion and the plain RBF loss on distances,
cross-entropy on logits, the multiclass hinge loss on either) and their gradients at the output, through _core.Trainer.gradient on a small head
(a full layer, then RBF units for the distance losses), on every instruction-set path, against
lenet_fast.reference's map_loss, rbf_loss and cross_entropy, with label -1 (not a digit) for MAP and
cross-entropy (the reference checked by its definition and finite differences); finite for huge distances;
the same losses from the outputs alone (Trainer.losses, evaluation's path)."""
from collections import OrderedDict

import numpy as np
import pytest

import lenet_fast
from lenet_fast import _core, paper
from lenet_fast import reference as ref
from lenet_fast.model import LeNet5, _views, flat_params

from cases import BACKWARD_BATCHES

N_IN, HIDDEN, CLASSES = 30, 12, 10


def head(rng, loss, layers):
    """(trainer, weight views, centres): a full layer of N_IN inputs, then, for the distance losses
    ("hinge_rbf": the hinge loss on an RBF head), RBF units with CLASSES centres; the full layer's weight
    and bias are views into the trainer's params."""
    out = CLASSES if loss in ("xent", "hinge") else HIDDEN
    spec = layers.full(rng, N_IN, out, "none")
    params, views = flat_params(OrderedDict(weight=spec["weight"], bias=spec["bias"]))
    specs = [dict(spec, **views)]
    centers = None
    if loss not in ("xent", "hinge"):
        centers = layers.uniform(rng, (CLASSES, HIDDEN))
        specs.append(dict(kind="rbf", centers=centers))
    return _core.Trainer(_core.Network((N_IN, 1, 1), specs), params), views, centers


@pytest.mark.parametrize("n", BACKWARD_BATCHES)
@pytest.mark.parametrize("loss, j, low, reject_j", [
    ("map", paper.MAP_J, 0, None), ("map", 0.5, 0, None), ("rbf", paper.MAP_J, 0, None), ("xent", paper.MAP_J, 0, None),
    ("hinge", paper.MAP_J, 0, None), ("hinge_rbf", paper.MAP_J, 0, None),
    # label -1 (not a digit) among the digits: the losses that take it, MAP's rubbish distance j or its own
    ("map", paper.MAP_J, -1, None), ("map", 0.5, -1, None), ("map", 0.5, -1, 4.0), ("xent", paper.MAP_J, -1, None)])
def test_loss_and_its_gradient_match_the_reference(loss, j, low, reject_j, n, path, layers, close):
    """Each image's loss, and the gradient it sends back (seen in the full layer's parameter gradients),
    as the reference computes them in float64 from the same parameters."""
    seed = 10 * n + len(loss) + int(j) - low
    rng = np.random.default_rng(seed)
    trainer, views, centers = head(rng, loss, layers)
    x = layers.uniform(rng, (n, N_IN, 1, 1))
    labels = rng.integers(low, CLASSES, n)
    if low < 0:
        labels[::2] = -1  # half of them at least, whatever the draw
    name = "hinge" if loss == "hinge_rbf" else loss
    grad, losses, out = trainer.gradient(x, labels, name, j=j, normalize=False, reject_j=reject_j)
    np.testing.assert_array_equal(out, trainer.network.forward(x))

    x64 = np.float64(x).reshape(n, N_IN)
    w, b = np.float64(views["weight"]), np.float64(views["bias"])
    hidden = ref.linear(x64, w, b)
    y = hidden if centers is None else ref.rbf(hidden, np.float64(centers))
    if loss == "hinge_rbf":  # the scores are the negative distances
        want_losses, dy = ref.hinge_loss(-y, labels)
        dy = -dy
    else:
        want_losses, dy = ref.map_loss(y, labels, j, reject_j) if loss == "map" else ref.LOSSES[loss](y, labels)
    np.testing.assert_allclose(losses, want_losses, rtol=1e-4, atol=1e-5 * np.abs(want_losses).max())
    # from the outputs alone (evaluation's path), the same losses to the bit
    np.testing.assert_array_equal(trainer.losses(out.reshape(n, -1), labels, name, j=j, reject_j=reject_j), losses)
    dh = dy if centers is None else ref.rbf_backward(hidden, np.float64(centers), dy)
    _, dw, db = ref.linear_backward(x64, w, dh)
    got = _views(grad, views)
    close(got["weight"], dw, f"{path}: {loss} weight")
    close(got["bias"], db, f"{path}: {loss} bias")


def test_losses_from_outputs_refuse_what_does_not_fit(layers):
    trainer, _, _ = head(np.random.default_rng(5), "map", layers)
    out, labels = np.ones((3, CLASSES), np.float32), np.array([0, 1, 2])
    assert trainer.losses(out, labels, "map").shape == (3,)
    with pytest.raises(ValueError, match=r"out must have shape \(N, 10\)"):
        trainer.losses(np.ones((3, CLASSES + 1), np.float32), labels, "map")
    with pytest.raises(ValueError, match="NaN or infinity"):
        trainer.losses(np.full((3, CLASSES), np.nan, np.float32), labels, "map")
    with pytest.raises(ValueError, match="labels"):
        trainer.losses(out, np.array([0, 1, 10]), "map")
    with pytest.raises(ValueError, match="does not fit"):
        trainer.losses(out, labels, "xent")


def test_huge_distances_give_finite_losses_and_gradients(shuffled_digits):
    model = LeNet5("classic")
    model.params["f6.bias"][...] = 50.0  # squashed to 1.7159 everywhere: distances far from every centre
    x, y = shuffled_digits(9, seed=2)
    grads, losses = model.gradient(x, y)
    assert np.isfinite(losses).all() and all(np.isfinite(g).all() for g in grads.values())


def test_hinge_loss_has_no_curvature_and_sdlm_refuses_it(shuffled_digits):
    """Piecewise linear: no Gauss-Newton curvature, so SDLM cannot use it (a ValueError naming the loss
    and what to use instead), on either head; gradients work on both."""
    x, y = shuffled_digits(4, seed=1)
    for variant in ("classic", "modern"):
        model = LeNet5(variant)
        grads, losses = model.gradient(x, y, loss="hinge")
        assert (losses >= 0).all() and any(np.abs(g).max() > 0 for g in grads.values())
        with pytest.raises(ValueError, match="hinge.*no Gauss-Newton curvature.*sgd"):
            model.curvature(x, y, loss="hinge")


def finite_differences(f, y, step=1e-6):
    """(N, K) central differences of the per-image losses f(y) (N,) in each output y[:, i]."""
    grad = np.empty_like(y)
    for i in range(y.shape[1]):
        up, down = y.copy(), y.copy()
        up[:, i] += step
        down[:, i] -= step
        grad[:, i] = (f(up) - f(down)) / (2 * step)
    return grad


@pytest.mark.parametrize("loss, reject_j", [("map", None), ("map", 25.0), ("xent", None)])
def test_the_reference_not_a_digit_losses_by_their_definitions_and_finite_differences(loss, reject_j):
    """Label -1 in float64: MAP's loss is J + log(exp(-J) + sum exp(-y)) (the rubbish class desired, at
    J = reject_j, or j), cross-entropy's is log sum exp(z) - mean z (a uniform target); each gradient is
    the loss's finite differences; the images with digit labels keep their loss (with j)."""
    rng = np.random.default_rng(21)
    y = rng.uniform(0.0, 30.0, (7, CLASSES))
    labels = np.array([-1, 3, -1, 0, -1, 9, -1])
    j = paper.MAP_J
    if loss == "map":
        f = lambda v: ref.map_loss(v, labels, j, reject_j)[0]  # noqa: E731
        big_j = j if reject_j is None else reject_j
        want = big_j + np.log(np.exp(-big_j) + np.exp(-y).sum(axis=1))
    else:
        f = lambda v: ref.cross_entropy(v, labels)[0]  # noqa: E731
        want = np.log(np.exp(y).sum(axis=1)) - y.mean(axis=1)
    losses, grad = ref.LOSSES[loss](y, labels) if loss == "xent" else ref.map_loss(y, labels, j, reject_j)
    rejects = labels < 0
    np.testing.assert_allclose(losses[rejects], want[rejects], rtol=1e-12)
    digits = ref.map_loss(y[~rejects], labels[~rejects], j) if loss == "map" else \
        ref.cross_entropy(y[~rejects], labels[~rejects])
    np.testing.assert_allclose(losses[~rejects], digits[0], rtol=1e-12)
    numeric = finite_differences(f, y)
    assert np.abs(numeric[rejects]).max() > 1e-3  # a gradient to check, not zeros
    np.testing.assert_allclose(grad, numeric, atol=1e-7)
    if loss == "map":
        assert (grad[rejects] < 0).all()  # every distance pushed up, towards the rubbish class
    else:
        np.testing.assert_allclose(grad[rejects].sum(axis=1), 0, atol=1e-12)


@pytest.mark.parametrize("variant", ["classic", "modern"])
def test_not_a_digit_labels_in_the_network(variant, shuffled_digits):
    """On the whole network: a -1 image's loss is its definition on the network's output, its curvature
    is a digit's (the losses' second derivatives do not depend on the label), and rbf and hinge refuse
    -1 with a ValueError saying which losses take it."""
    model = LeNet5(variant, seed=5)
    x, y = shuffled_digits(6, seed=3)
    labels = np.where(np.arange(6) % 2 == 0, -1, y)
    loss = "map" if variant == "classic" else "xent"
    _, losses = model.gradient(x, labels, loss)
    out = np.float64(model.forward(x))
    want = ref.map_loss(out, labels)[0] if loss == "map" else ref.cross_entropy(out, labels)[0]
    np.testing.assert_allclose(losses, want, rtol=1e-4, atol=1e-4)
    curvature = model.curvature(x, labels, loss)
    assert np.abs(curvature).max() > 0 and np.array_equal(curvature, model.curvature(x, y, loss))
    for other in ("rbf", "hinge") if variant == "classic" else ("hinge",):
        with pytest.raises(ValueError, match=r"-1, not a digit, is a training label for loss 'map' or 'xent'"):
            model.gradient(x, labels, other)
    for bad in (np.full(6, -2), np.full(6, 10)):
        with pytest.raises(ValueError, match=r"must lie in -1\.\.9"):
            model.gradient(x, bad, loss)


@pytest.mark.skipif(not lenet_fast.build_info()["openmp"], reason="built without OpenMP")
@pytest.mark.parametrize("variant", ["classic", "modern"])
def test_not_a_digit_gradients_are_bit_identical_for_any_thread_count(variant, shuffled_digits, restore_threads):
    model = LeNet5(variant, seed=2)
    x, y = shuffled_digits(301, seed=9)
    labels = np.where(np.arange(301) % 3 == 0, -1, y)
    loss = "map" if variant == "classic" else "xent"
    out = []
    for threads in (1, 2):
        lenet_fast.set_num_threads(threads)
        out.append(model.gradient(x, labels, loss))
    assert all(np.array_equal(out[0][0][k], out[1][0][k]) for k in out[0][0])
    assert np.array_equal(out[0][1], out[1][1])


def test_reject_j_is_checked_and_changes_only_the_non_digits(shuffled_digits):
    model = LeNet5("classic", seed=5)
    x, y = shuffled_digits(6, seed=3)
    labels = np.where(np.arange(6) % 2 == 0, -1, y)
    trainer = model.trainer()
    _, plain, _ = trainer.gradient(x, labels, "map", j=10.0)
    _, far, _ = trainer.gradient(x, labels, "map", j=10.0, reject_j=500.0)
    assert np.array_equal(plain[labels >= 0], far[labels >= 0])
    assert (far[labels < 0] > plain[labels < 0] + 100).all()  # every distance now far below the rubbish class
    for bad in (0, -1.0, float("nan"), "40", True):
        with pytest.raises(ValueError, match="reject_j must be a positive number"):
            trainer.gradient(x, labels, "map", reject_j=bad)
        with pytest.raises(ValueError, match="reject_j"):
            model.fit(x, labels, reject_j=bad, verbose=0)
