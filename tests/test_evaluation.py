"""lenet_fast/evaluation.py through LeNet5.score and LeNet5.evaluate: accuracy, mean loss, confusion matrix
and per-class error against figures computed here from predict and gradient; bad labels."""
import numpy as np
import pytest

import lenet_fast
from lenet_fast.evaluation import evaluation


@pytest.fixture(scope="module")
def test_digits(mnist_subset):
    x, y = lenet_fast.load_mnist(mnist_subset, "test")
    return x[:500], y[:500]


@pytest.mark.parametrize("variant", ["classic", "modern"])
def test_score_and_evaluate_agree_with_predict_and_the_loss(variant, test_digits):
    x, y = test_digits
    model = lenet_fast.pretrained(variant)
    predicted = model.predict(x)
    assert 0.95 < model.score(x, y) == np.mean(predicted == y) < 1.0  # some wrong: the counts are not trivial
    result = model.evaluate(x, y)
    assert result.accuracy == model.score(x, y) and result.error == 1 - result.accuracy and result.n == 500
    expected = np.zeros((10, 10), np.int64)
    np.add.at(expected, (y, predicted), 1)
    np.testing.assert_array_equal(result.confusion, expected)
    assert result.errors == int((predicted != y).sum()) > 0
    for d in range(10):
        assert result.per_class_error[d] == pytest.approx(np.mean(predicted[y == d] != d))
    _, losses = model.gradient(x, y)
    assert result.loss == pytest.approx(np.mean(losses, dtype=np.float64), rel=1e-6) and result.loss > 0
    text = str(result)
    assert f"error {result.error:.2%} ({result.errors} wrong)" in text and "confusion matrix" in text
    assert result.as_dict()["confusion"] == expected.tolist()


def test_a_digit_without_images_has_no_error_rate():
    result = evaluation(np.array([1, 1, 2]), np.array([1, 2, 2]), np.zeros(3))
    assert np.isnan(result.per_class_error[0]) and result.per_class_error[2] == 0.5
    assert result.as_dict()["per_class_error"][0] is None and "0 -" in str(result)


@pytest.mark.parametrize("labels,message", [
    (np.zeros(499, np.int64), "499 labels for 500 images"),
    (np.full(500, 10), r"must lie in 0..9"),
    (np.zeros(500, np.float64), "integer class ids"),
])
def test_bad_labels_are_refused(labels, message, test_digits):
    model = lenet_fast.LeNet5("modern")
    for method in (model.score, model.evaluate):
        with pytest.raises(ValueError, match=message):
            method(test_digits[0], labels)


def test_no_images_are_refused():
    model = lenet_fast.LeNet5("classic")
    with pytest.raises(ValueError, match="no images"):
        model.score(np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int64))
