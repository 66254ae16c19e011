"""Training with non-digits: lenet_fast/negatives.py's generator, and label -1 (not a digit) in fit
(lenet_fast/train.py; the losses themselves: tests/kernels/test_loss.py)."""
import numpy as np
import pytest

import lenet_fast
from lenet_fast import negatives


@pytest.fixture(scope="module")
def digits(mnist_subset):
    """The first 200 of the committed test digits and their labels."""
    x = lenet_fast.read_idx(mnist_subset / "t10k-images-idx3-ubyte.gz")[:200]
    return x, lenet_fast.read_idx(mnist_subset / "t10k-labels-idx1-ubyte.gz")[:200].astype(np.int64)


def test_non_digits_are_mnist_form_images_made_from_their_seed():
    x = negatives.non_digits(30, seed=3)
    assert x.shape == (30, 28, 28) and x.dtype == np.uint8
    assert np.array_equal(x, negatives.non_digits(30, seed=3))
    assert np.array_equal(x[:10], negatives.non_digits(10, seed=3))  # image i from (seed, i) alone
    assert not np.array_equal(x, negatives.non_digits(30, seed=4))
    assert len({im.tobytes() for im in x}) == 30
    drawn = negatives.non_digits(20, seed=3, kinds=["letter", "mark", "scribble", "filled"])
    assert (drawn.max(axis=(1, 2)) == 255).all()  # put in MNIST form: the ink at full strength
    # the ink's centre of mass near the middle, as read_digit's last step puts it
    yy, xx = np.mgrid[0:28, 0:28]
    mass = drawn.sum(axis=(1, 2)).astype(float)
    assert np.all(np.abs((drawn * yy).sum(axis=(1, 2)) / mass - 13.5) < 1.5)
    assert np.all(np.abs((drawn * xx).sum(axis=(1, 2)) / mass - 13.5) < 1.5)
    faint = negatives.non_digits(10, seed=3, kinds=["faint"])
    assert faint.max() < 40 and faint.max() > 0
    assert negatives.non_digits(0, seed=1).shape == (0, 28, 28)


def test_non_digits_kinds_and_the_held_out_ones():
    held = negatives.non_digits(12, seed=5, kinds=["held-out"])
    train = negatives.non_digits(12, seed=5)
    assert held.shape == (12, 28, 28) and not np.array_equal(held, train)
    assert "A" not in negatives.LETTERS and not set(negatives.HELD_OUT) & set(negatives.LETTERS)
    assert not set(negatives.HELD_OUT) & set(negatives.MARKS)
    assert not set("IlOoSZBgqb") & set(negatives.LETTERS)  # letters that are digits to a reader
    e = negatives.hand_drawn(negatives.LETTERS["E"], np.random.default_rng(0))
    assert e.shape == (28, 28) and e.dtype == np.uint8 and e.max() == 255
    assert np.array_equal(e, negatives.hand_drawn(negatives.LETTERS["E"], np.random.default_rng(0)))
    assert not np.array_equal(e, negatives.hand_drawn(negatives.LETTERS["F"], np.random.default_rng(0)))
    for bad in (-1, 2.5, True, "3"):
        with pytest.raises(ValueError, match="n must be"):
            negatives.non_digits(bad, seed=0)
    for kinds in ([], ["letters"], ["held-out", "noise"], "noise"):
        with pytest.raises(ValueError, match="kinds"):
            negatives.non_digits(3, seed=0, kinds=kinds)


def test_fit_with_non_digits_counts_the_digits_only_in_the_training_error(digits):
    """A step too small to change any answer: the training error is the digits' error under predict
    (-1 counted as wrong would add 32 of 96); all non-digits: no error."""
    x, y = digits[0][:64], digits[1][:64]
    neg = negatives.non_digits(32, seed=7)
    for variant in ("classic", "modern"):
        model = lenet_fast.LeNet5(variant, seed=1)
        wrong = int((model.predict(x) != y).sum())
        assert 0 < wrong < 64
        history = model.fit(np.concatenate([neg, x]), np.concatenate([np.full(32, -1), y]), epochs=1, verbose=0,
                            optimizer=lenet_fast.optim.SGD(lr=1e-30))
        assert history[-1]["error"] == wrong / 64
        assert model.fit(neg, np.full(32, -1), epochs=1, verbose=0)[-1]["error"] == 0.0


@pytest.mark.parametrize("variant", ["classic", "modern"])
def test_training_with_non_digits_teaches_the_model_to_refuse_them(variant, digits):
    """A trained model fine-tuned briefly on digits and non-digits (tools/train_negatives.py's recipe,
    small): the non-digits' loss falls, their answers grow less sure (classic: farther from every RBF
    centre), and the digits are still read. The modern model is an ensemble member, which never saw
    non-digits; the classic one the shipped model, pushed past a rubbish distance farther than its own."""
    x, y = digits
    neg = negatives.non_digits(100, seed=7)
    if variant == "classic":
        model, loss, reject_j = lenet_fast.pretrained("classic"), "map", 80.0
        optimizer = lenet_fast.optim.SDLM(schedule=lenet_fast.optim.Constant(), epsilon=5e-6)
    else:
        model, loss, reject_j = lenet_fast.pretrained("ensemble").members[0], "xent", None
        optimizer = lenet_fast.optim.Adam(lr=3e-4)

    def non_digit_loss():
        return model.trainer().gradient(neg, np.full(100, -1), loss, reject_j=reject_j)[1].mean()

    before = non_digit_loss()
    nearest = model.forward(neg).min(axis=1) if variant == "classic" else model.predict_proba(neg).max(axis=1)
    model.fit(np.concatenate([x, neg]), np.concatenate([y, np.full(100, -1)]), epochs=2, verbose=0, seed=2,
              optimizer=optimizer, reject_j=reject_j)
    assert non_digit_loss() < 0.9 * before
    if variant == "classic":
        assert np.median(model.forward(neg).min(axis=1)) > np.median(nearest)
    else:
        assert np.median(model.predict_proba(neg).max(axis=1)) < np.median(nearest)
    assert (model.predict(x) == y).mean() > 0.97


def test_fit_refuses_non_digit_labels_where_they_mean_nothing(digits):
    x, y = digits[0][:8], digits[1][:8]
    y = np.where(np.arange(8) < 2, -1, y)
    model = lenet_fast.LeNet5("classic", seed=1)
    before = model.params_vector.copy()
    for loss in ("rbf", "hinge"):
        with pytest.raises(ValueError, match="not a digit, is a training label for loss 'map' or 'xent' only"):
            model.fit(x, y, loss=loss, optimizer="sgd", verbose=0)
    with pytest.raises(ValueError, match="validation labels must lie in 0..9"):
        model.fit(x, np.abs(y), validation=(x, y), verbose=0)
    with pytest.raises(ValueError, match="must lie in 0..9"):
        model.evaluate(x, y)
    assert np.array_equal(model.params_vector, before)
