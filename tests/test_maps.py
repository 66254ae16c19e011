"""lenet_fast.maps: the feature maps of C1, S2, C3 and S4 against the NumPy reference's forward of the same
layers, their errors, and the picture of them (when matplotlib is installed)."""

import numpy as np
import pytest

import lenet_fast
from lenet_fast import maps, paper
from lenet_fast import reference as ref


def reference_maps(model, digit):
    """The reference's outputs of the first four layers (after their activations) for one digit, float64."""
    params = ref.with_centers({name: np.float64(a) for name, a in model.params.items()}, model.variant)
    x = ref.normalize_input(digit).astype(np.float64)
    trace, _ = ref._forward_trace(params, x, model.variant, model.activation if model.variant == "modern" else None)
    return {"input": x[0, 0], **{layer[1]: ref.activation(pre, layer[2])[0] for layer, _, pre in trace[:4]}}


@pytest.fixture(scope="module")
def digits(mnist_subset):
    return lenet_fast.load_mnist(mnist_subset, "test")[0][:3]


@pytest.mark.parametrize("variant, options", [("classic", {}), ("modern", {}), ("modern", {"activation": "elu"}),
                                              ("modern", {"dropout": 0.3})])
def test_feature_maps_equal_the_reference(variant, options, digits):
    model = lenet_fast.LeNet5(variant, seed=4, **options)
    for digit in digits:
        got = maps.feature_maps(model, digit)
        expected = reference_maps(model, digit)
        assert list(got) == ["input", "c1", "s2", "c3", "s4"]
        assert {k: v.shape for k, v in got.items()} == {"input": (32, 32), "c1": (6, 28, 28), "s2": (6, 14, 14),
                                                          "c3": (16, 10, 10), "s4": (16, 5, 5)}
        for name, array in got.items():
            assert array.dtype == np.float32
            np.testing.assert_allclose(array, expected[name], rtol=1e-4, atol=1e-5, err_msg=name)


def test_the_maps_lead_to_the_models_own_answer(digits):
    """S4's maps, run through the model's remaining layers, give its forward output: the truncated network
    runs on the model's own weights, and a change to them shows at once."""
    model = lenet_fast.pretrained("classic")
    before = maps.feature_maps(model, digits[0])["c1"]
    model.params["c1.bias"][...] += 1.0
    after = maps.feature_maps(model, digits[0])["c1"]
    assert not np.allclose(before, after)
    expected = reference_maps(model, digits[0])
    np.testing.assert_allclose(after, expected["c1"], rtol=1e-4, atol=1e-5)


def test_feature_maps_take_floats_and_pictures(digits):
    model = lenet_fast.pretrained("modern")
    as_uint8 = maps.feature_maps(model, digits[1])
    as_float = maps.feature_maps(model, digits[1].astype(np.float32) / 255)
    for name in as_uint8:
        np.testing.assert_allclose(as_float[name], as_uint8[name], rtol=1e-5, atol=1e-6)
    sample = lenet_fast.sample_paths()[7]
    from_file = maps.feature_maps(model, sample)
    np.testing.assert_array_equal(from_file["c3"], maps.feature_maps(model, lenet_fast.read_digit(sample))["c3"])
    assert from_file["input"].min() == pytest.approx(paper.INPUT_BACKGROUND)


@pytest.mark.parametrize("bad, error, message", [
    (np.zeros((2, 28, 28), np.uint8), ValueError, "one image, got a batch of 2"),
    (np.zeros((32, 32), np.uint8), ValueError, "28x28 digit"),
    (np.zeros((5, 5), np.uint8), ValueError, "shape"),
    ("no-such-digit.png", FileNotFoundError, "no-such-digit.png"),
    (None, TypeError, "None"),
])
def test_feature_maps_refuse_bad_images(bad, error, message):
    with pytest.raises(error, match=message):
        maps.feature_maps(lenet_fast.LeNet5("classic"), bad)


def test_feature_maps_refuse_an_ensemble():
    ensemble = lenet_fast.Ensemble([lenet_fast.LeNet5("modern")])
    with pytest.raises(TypeError, match="takes a LeNet5, got Ensemble"):
        maps.feature_maps(ensemble, np.zeros((28, 28), np.uint8))


def test_feature_maps_wait_for_training(digits, refused_while_training):
    """The truncated network is not the model's: feature_maps takes the model's guard itself, so it is refused
    while another thread is inside fit, as predict is."""
    model = lenet_fast.LeNet5("classic")
    refused_while_training(model, lambda: maps.feature_maps(model, digits[0]))


@pytest.mark.usefixtures("needs_matplotlib")
@pytest.mark.parametrize("variant", ["classic", "modern"])
def test_draw_maps_writes_a_png(variant, digits, tmp_path, png_size):
    out = tmp_path / "maps.png"
    assert maps.draw_maps(lenet_fast.pretrained(variant), digits[0], out) == str(out)
    width, height = png_size(out)
    assert width > 300 and height > 300


@pytest.mark.usefixtures("needs_matplotlib")
def test_draw_maps_checks_the_folder_first(tmp_path, digits):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        maps.draw_maps(lenet_fast.LeNet5("classic"), digits[0], tmp_path / "missing" / "maps.png")
    assert not (tmp_path / "missing").exists()


def test_a_bf16_models_maps_are_the_ones_it_computes(digits):
    """BF16LeNet5 rounds every layer's output to bfloat16: its maps are bfloat16 values (the low 16 bits
    zero), and differ from the float32 model's."""
    model = lenet_fast.pretrained("classic")
    bf16 = model.quantize(dtype="bf16")
    got, fp32 = maps.feature_maps(bf16, digits[0]), maps.feature_maps(model, digits[0])
    for name in ("c1", "s2", "c3", "s4"):
        assert (got[name].view(np.uint32) & 0xFFFF).max() == 0
        assert not np.array_equal(got[name], fp32[name])
