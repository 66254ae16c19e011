"""csrc/loss.c: the training losses (the paper's MAP criterion and the plain RBF loss on distances,
cross-entropy on logits, the multiclass hinge loss on either) and their gradients at the output, through _core.Trainer.gradient on a small head
(a full layer, then RBF units for the distance losses), on every instruction-set path, against
lenet_fast.reference's map_loss, rbf_loss and cross_entropy; finite for huge distances."""
from collections import OrderedDict

import numpy as np
import pytest

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
@pytest.mark.parametrize("loss, j", [("map", paper.MAP_J), ("map", 0.5), ("rbf", paper.MAP_J), ("xent", paper.MAP_J),
                                     ("hinge", paper.MAP_J), ("hinge_rbf", paper.MAP_J)])
def test_loss_and_its_gradient_match_the_reference(loss, j, n, path, layers, close):
    """Each image's loss, and the gradient it sends back (seen in the full layer's parameter gradients),
    as the reference computes them in float64 from the same parameters."""
    seed = 10 * n + len(loss) + int(j)
    rng = np.random.default_rng(seed)
    trainer, views, centers = head(rng, loss, layers)
    x = layers.uniform(rng, (n, N_IN, 1, 1))
    labels = rng.integers(0, CLASSES, n)
    name = "hinge" if loss == "hinge_rbf" else loss
    grad, losses, out = trainer.gradient(x, labels, name, j=j, normalize=False)
    np.testing.assert_array_equal(out, trainer.network.forward(x))

    x64 = np.float64(x).reshape(n, N_IN)
    w, b = np.float64(views["weight"]), np.float64(views["bias"])
    hidden = ref.linear(x64, w, b)
    y = hidden if centers is None else ref.rbf(hidden, np.float64(centers))
    if loss == "hinge_rbf":  # the scores are the negative distances
        want_losses, dy = ref.hinge_loss(-y, labels)
        dy = -dy
    else:
        want_losses, dy = ref.map_loss(y, labels, j) if loss == "map" else ref.LOSSES[loss](y, labels)
    np.testing.assert_allclose(losses, want_losses, rtol=1e-4, atol=1e-5 * np.abs(want_losses).max())
    dh = dy if centers is None else ref.rbf_backward(hidden, np.float64(centers), dy)
    _, dw, db = ref.linear_backward(x64, w, dh)
    got = _views(grad, views)
    close(got["weight"], dw, f"{path}: {loss} weight")
    close(got["bias"], db, f"{path}: {loss} bias")


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
