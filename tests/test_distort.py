"""lenet_fast.distort: the paper's random affine distortions, on the 1,000 real MNIST digits in tests/data."""
import numpy as np
import pytest

from lenet_fast import LeNet5, distort, load_mnist

IDENTITY = dict(shift=0.0, scale=(1.0, 1.0), squeeze=0.0, shear=0.0)


@pytest.fixture(scope="module")
def digits(mnist_subset):
    images, labels = load_mnist(mnist_subset, "test")
    return images, labels


def framed(images, size=40):
    """The digits centred in a larger empty frame, so that no distortion moves ink out of it."""
    out = np.zeros((len(images), size, size), images.dtype)
    at = (size - 28) // 2
    out[:, at:at + 28, at:at + 28] = images
    return out


def centre_of_mass(images):
    """(N, 2) x, y of each image's ink, in pixels."""
    a = images.astype(np.float64)
    h, w = a.shape[-2:]
    mass = a.sum((-2, -1))
    return np.stack([(a.sum(-2) * np.arange(w)).sum(-1), (a.sum(-1) * np.arange(h)).sum(-1)], -1) / mass[:, None]


def test_identity_parameters_return_the_input_exactly(digits):
    x = digits[0]
    out = distort.random_affine(x, np.random.default_rng(0), **IDENTITY)
    assert out.dtype == np.uint8 and np.array_equal(out, x)
    xf = x.astype(np.float32) / 255
    assert np.array_equal(distort.random_affine(xf, np.random.default_rng(0), **IDENTITY), xf)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_a_pure_shift_moves_the_centre_of_mass_by_the_drawn_amount(digits, dtype):
    x = framed(digits[0][:200])
    if dtype == np.float32:
        x = x.astype(np.float32) / 255
    settings = dict(IDENTITY, shift=3.0)
    t = distort.draw(len(x), np.random.default_rng(7), **settings)[:, :, 2]
    out = distort.random_affine(x, np.random.default_rng(7), **settings)
    assert np.abs(t).max() > 2.5 and np.abs(t).min() < 0.5  # the draws span the range
    moved = centre_of_mass(out) - centre_of_mass(x)
    # Linear interpolation moves the mass exactly; rounding to uint8 perturbs it a little.
    np.testing.assert_allclose(moved, t, atol=0.02 if dtype == np.uint8 else 1e-4)


def test_draw_spans_each_documented_range():
    n = 2000
    one = dict(IDENTITY)

    def maps(**kwargs):
        return distort.draw(n, np.random.default_rng(1), **dict(one, **kwargs))

    t = maps(shift=2.0)
    assert np.allclose(t[:, :, :2], np.eye(2)) and np.abs(t[:, :, 2]).max() <= 2.0
    assert np.abs(t[:, :, 2]).max() > 1.95 and abs(t[:, :, 2].mean()) < 0.1
    s = maps(scale=(0.9, 1.1))
    assert np.array_equal(s[:, 0, 0], s[:, 1, 1]) and 0.9 <= s[:, 0, 0].min() < 0.91 < 1.09 < s[:, 0, 0].max() <= 1.1
    q = maps(squeeze=0.1)  # x and y in opposite directions, area kept
    assert np.allclose(q[:, 0, 0] * q[:, 1, 1], 1) and 0.9 <= q[:, 0, 0].min() < 0.91 < 1.09 < q[:, 0, 0].max()
    h = maps(shear=0.15)  # horizontal only: x moves with y
    assert np.allclose(h[:, 0, 0], 1) and np.allclose(h[:, 1], [0, 1, 0]) and np.abs(h[:, 0, 1]).max() <= 0.15
    assert np.abs(h[:, 0, 1]).max() > 0.14


def test_each_pixel_is_the_bilinear_sample_of_the_inverse_map(digits):
    """Against a plain per-pixel reading of the definition: output p is the input, bilinearly interpolated
    with 0 outside, at c + A^-1 (p - c - t)."""
    x = digits[0][:20].astype(np.float32) / 255
    maps = distort.draw(len(x), np.random.default_rng(3), shift=4.0, scale=(0.7, 1.3), squeeze=0.3, shear=0.4)
    out = distort.warp(x, maps)
    c = np.array([13.5, 13.5])

    def pixel(img, col, row):
        return img[row, col] if 0 <= row < 28 and 0 <= col < 28 else 0.0

    for i in range(len(x)):
        inverse = np.linalg.inv(maps[i, :, :2])
        for row, col in np.random.default_rng(i).integers(0, 28, (40, 2)):
            sx, sy = c + inverse @ (np.array([col, row]) - c - maps[i, :, 2])
            x0, y0 = int(np.floor(sx)), int(np.floor(sy))
            fx, fy = sx - x0, sy - y0
            value = ((1 - fy) * ((1 - fx) * pixel(x[i], x0, y0) + fx * pixel(x[i], x0 + 1, y0))
                     + fy * ((1 - fx) * pixel(x[i], x0, y0 + 1) + fx * pixel(x[i], x0 + 1, y0 + 1)))
            assert out[i, row, col] == pytest.approx(value, abs=1e-5), (i, row, col)


def test_the_centre_of_mass_follows_the_drawn_map():
    """Scaling, squeezing and shearing in the directions draw documents: ink at p goes to c + A (p - c) + t
    (on smooth blobs, which resampling moves by hundredths of a pixel, unlike thin strokes; a wrong sign or
    order would be pixels off)."""
    rng = np.random.default_rng(5)
    centres = rng.uniform(16, 24, (100, 2))
    yy, xx = np.indices((40, 40))
    x = np.exp(-((xx - centres[:, 0, None, None]) ** 2 + (yy - centres[:, 1, None, None]) ** 2) / 8)
    maps = distort.draw(len(x), rng, shift=1.0, scale=(0.8, 1.2), squeeze=0.2, shear=0.3)
    c = np.array([19.5, 19.5])
    expected = c + np.einsum("nij,nj->ni", maps[:, :, :2], centre_of_mass(x) - c) + maps[:, :, 2]
    np.testing.assert_allclose(centre_of_mass(distort.warp(x, maps)), expected, atol=0.05)


def test_shear_and_squeeze_directions():
    """A vertical bar leans right at the bottom under positive shear; positive squeeze widens it."""
    bar = np.zeros((1, 28, 28), np.float32)
    bar[0, 4:24, 13:15] = 1
    shear = distort.warp(bar, np.array([[[1.0, 0.2, 0.0], [0.0, 1.0, 0.0]]]))[0]
    top, bottom = centre_of_mass(shear[None, 4:8])[0, 0], centre_of_mass(shear[None, 20:24])[0, 0]
    assert bottom - top == pytest.approx(0.2 * 16, abs=0.1)
    squeeze = distort.warp(bar, np.array([[[1.5, 0.0, 0.0], [0.0, 1 / 1.5, 0.0]]]))[0]
    assert (squeeze.sum(0) > 0).sum() > (bar[0].sum(0) > 0).sum()  # wider
    assert (squeeze.sum(1) > 0).sum() < (bar[0].sum(1) > 0).sum()  # shorter


def test_the_same_generator_state_gives_the_same_output(digits):
    x = digits[0][:300]
    a = distort.random_affine(x, np.random.default_rng(11))
    assert np.array_equal(a, distort.random_affine(x, np.random.default_rng(11)))
    assert not np.array_equal(a, distort.random_affine(x, np.random.default_rng(12)))
    rng = np.random.default_rng(11)
    first, second = distort.random_affine(x, rng), distort.random_affine(x, rng)
    assert np.array_equal(first, a) and not np.array_equal(second, a)  # the generator moves on
    assert np.array_equal(distort.random_affine(x, np.random.default_rng(11)),
                          distort.warp(x, distort.draw(len(x), np.random.default_rng(11))))


@pytest.mark.parametrize("shape", [(5, 28, 28), (5, 1, 28, 28), (28, 28), (4, 32, 32), (0, 28, 28)])
@pytest.mark.parametrize("dtype,out_dtype", [(np.uint8, np.uint8), (np.float32, np.float32),
                                             (np.float64, np.float32)])
def test_shapes_and_dtypes(shape, dtype, out_dtype):
    x = np.random.default_rng(0).integers(0, 256, shape).astype(dtype)
    if dtype != np.uint8:
        x /= 255
    out = distort.random_affine(x, np.random.default_rng(0))
    assert out.shape == x.shape and out.dtype == out_dtype
    if x.size:
        assert not np.array_equal(out, x)


def test_ink_stays_mostly_inside_the_frame(digits):
    x = digits[0]
    maps = distort.draw(len(x), np.random.default_rng(0))
    out = distort.warp(x, maps)
    area = maps[:, 0, 0] * maps[:, 1, 1]
    kept = out.sum((1, 2), dtype=np.float64) / (x.sum((1, 2), dtype=np.float64) * area)
    assert np.median(kept) > 0.99 and np.percentile(kept, 1) > 0.9 and kept.max() < 1.05
    assert out.max() == 255 and out.min() == 0


def test_float_input_matches_uint8_input(digits):
    x = digits[0][:300]
    as_pixels = distort.random_affine(x, np.random.default_rng(4))
    as_floats = distort.random_affine(x.astype(np.float32) / 255, np.random.default_rng(4))
    assert as_floats.dtype == np.float32 and 0 <= as_floats.min() and as_floats.max() <= 1
    assert np.abs(as_floats * 255 - as_pixels).max() <= 0.5 + 1e-3  # uint8 output is the float one rounded


@pytest.mark.parametrize("kwargs,match", [
    (dict(shift=-1.0), "shift"), (dict(shift=float("nan")), "shift"), (dict(shift=float("inf")), "shift"),
    (dict(shift="2"), "shift"), (dict(shift=True), "shift"),
    (dict(scale=(0.0, 1.0)), "scale"), (dict(scale=(1.1, 0.9)), "scale"), (dict(scale=1.0), "scale"),
    (dict(scale=(1.0,)), "scale"), (dict(scale=(1.0, float("nan"))), "scale"), (dict(scale=(1, 2, 3)), "scale"),
    (dict(squeeze=1.0), "squeeze"), (dict(squeeze=-0.1), "squeeze"), (dict(shear=-0.1), "shear"),
    (dict(shear=None), "shear"),
])
def test_bad_parameters_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        distort.random_affine(np.zeros((2, 28, 28), np.uint8), np.random.default_rng(0), **kwargs)


def test_bad_inputs_raise():
    rng = np.random.default_rng(0)
    with pytest.raises(TypeError, match="Generator"):
        distort.random_affine(np.zeros((2, 28, 28), np.uint8), 0)
    with pytest.raises(TypeError, match="uint8"):
        distort.random_affine(np.zeros((2, 28, 28), np.int64), rng)
    with pytest.raises(ValueError, match="height, width"):
        distort.random_affine(np.zeros(28, np.uint8), rng)
    x = np.zeros((2, 28, 28), np.uint8)
    identity = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    with pytest.raises(ValueError, match=r"\(2, 2, 3\)"):
        distort.warp(x, identity[None])
    with pytest.raises(ValueError, match="invertible"):
        distort.warp(x, np.stack([identity, 0 * identity]))
    with pytest.raises(ValueError, match="rows horizontal"):
        distort.warp(x, np.stack([identity, [[1.0, 0, 0], [0.1, 1.0, 0]]]))


def test_fit_takes_it_as_augment(digits):
    x, y = digits[0][:64], digits[1][:64]
    model = LeNet5("classic", seed=0)
    hist = model.fit(x, y, epochs=1, augment=distort.random_affine, verbose=0)
    assert np.isfinite(hist[0]["loss"])
