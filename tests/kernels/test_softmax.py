"""csrc/softmax.c: softmax and log-softmax over rows (of x or of -x, as predict_proba takes the classic
head's distances) through _core.softmax, on every instruction-set path, against lenet_fast.reference."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lenet_fast import _core
from lenet_fast import reference as ref

from cases import SEEDS

EPS32 = float(np.finfo(np.float32).eps)
FLT_MAX = float(np.finfo(np.float32).max)


# ---- softmax and log-softmax against the reference -----------------------------------------------------


def softmax_bounds(z):
    """For rows z (float64): the reference softmax and log-softmax, and the error a float32 kernel may
    make on each. softmax: exp of the float32 difference z - max (rounded: relative eps * |z - max|),
    one ulp-ish for expf and the scaling (2e-6), and 1e-38 absolute where the result underflows.
    log-softmax: the roundings of z - max and of the result (eps of each) plus 1e-6 for log(sum)."""
    diff = np.abs(z - z.max(axis=1, keepdims=True))
    p, logp = ref.softmax(z), ref.log_softmax(z)
    return p, p * (2e-6 + EPS32 * diff) + 1e-38, logp, 2 * EPS32 * (diff + np.abs(logp)) + 1e-6


@settings(max_examples=100, deadline=None)
@given(n=st.integers(0, 20), k=st.integers(1, 40), log=st.booleans(), negate=st.booleans(),
       magnitude=st.floats(-3, 37.5), ties=st.booleans(), seed=SEEDS)
def test_softmax_matches_the_reference(n, k, log, negate, magnitude, ties, seed, each_path, off_by):
    """softmax / log-softmax of x or of -x over rows, magnitudes from 1e-3 to 3e37: within the bounds of
    softmax_bounds(), finite, rows of probabilities summing to 1."""
    rng = np.random.default_rng(seed)
    x = (rng.uniform(-1, 1, (n, k)) * 10.0**magnitude).astype(np.float32)
    if ties and k > 1:
        x[:, 1] = x[:, 0]
    p, p_tol, logp, logp_tol = softmax_bounds(-np.float64(x) if negate else np.float64(x))
    want, tol = (logp, logp_tol) if log else (p, p_tol)
    for isa in each_path():
        got = _core.softmax(x, log=log, negate=negate)
        assert got.shape == (n, k) and got.dtype == np.float32
        assert np.all(np.isfinite(got)), isa
        problem = off_by(got, want, tol)
        assert problem is None, f"{isa} path: {problem}"
        if not log:
            assert np.all((got >= 0) & (got <= 1)), isa
            np.testing.assert_allclose(got.sum(axis=1, dtype=np.float64), 1.0, rtol=0, atol=2e-6 + k * EPS32,
                                       err_msg=isa)


@pytest.mark.parametrize("negate", [False, True])
def test_softmax_of_the_largest_floats(negate, path):
    """Magnitudes up to FLT_MAX: no overflow, no NaN; the probabilities sum to 1 and put all the weight on
    the largest entry (on equal largest entries, equally)."""
    x = np.float32([[FLT_MAX, -FLT_MAX, 0.0, 1e38],
                    [-FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX],
                    [FLT_MAX, FLT_MAX, -1e38, 3.0],
                    [1e-45, -1e-45, 0.0, -0.0]])
    got = _core.softmax(x, negate=negate)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=0, atol=1e-6)
    np.testing.assert_allclose(got, ref.softmax(-np.float64(x) if negate else np.float64(x)), rtol=1e-6, atol=1e-38)
    # log-softmax: exact where representable; an entry more than FLT_MAX below the row's largest one
    # overflows to -inf, the float32 rounding of its true value.
    log = _core.softmax(x, log=True, negate=negate)
    want = ref.log_softmax(-np.float64(x) if negate else np.float64(x))
    assert not np.isnan(log).any()
    representable = want >= -FLT_MAX
    np.testing.assert_allclose(log[representable], want[representable], rtol=1e-6, atol=1e-6)
    assert np.all(log[~representable] == -np.inf)


def test_softmax_of_many_rows(path, off_by):
    """From 4096 rows on, the rows are shared among threads: the same bits as row by row, and the
    reference's values."""
    rng = np.random.default_rng(9)
    x = (rng.standard_normal((5000, 10)) * 20).astype(np.float32)
    for log in (False, True):
        got = _core.softmax(x, log=log, negate=True)
        rows = np.concatenate([_core.softmax(x[i : i + 1], log=log, negate=True) for i in range(len(x))])
        assert np.array_equal(got, rows)
        p, p_tol, logp, logp_tol = softmax_bounds(-np.float64(x))
        problem = off_by(got, *((logp, logp_tol) if log else (p, p_tol)))
        assert problem is None, problem


@pytest.mark.parametrize(
    "x, exc, message",
    [
        (np.zeros((3, 0), np.float32), ValueError, "at least one class"),
        (np.zeros(5, np.float32), ValueError, "shape"),
        (np.zeros((2, 3, 4), np.float32), ValueError, "shape"),
        (np.float32([[0.0, np.inf]]), ValueError, "NaN or infinity"),
        (np.zeros((2, 3), np.int32), TypeError, "floating-point"),
    ],
)
def test_softmax_refuses(x, exc, message):
    with pytest.raises(exc, match=message):
        _core.softmax(x)


def test_softmax_of_an_empty_batch():
    assert _core.softmax(np.zeros((0, 10), np.float32)).shape == (0, 10)
    assert _core.softmax(np.zeros((0, 10), np.float32), log=True, negate=True).shape == (0, 10)
