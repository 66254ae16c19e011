"""The bfloat16 rounding step of csrc/forward.c (lf_round_bf16 in csrc/simd.h): a layer whose spec has
"round": True has its output rounded to the nearest bfloat16, ties to even, on every instruction-set path,
in both layouts. The kernel is reached through a Network of one dropout layer (the identity at inference),
so that its output is its input rounded; the oracle below picks the nearer of the two bfloat16 neighbours
in float64 (no bit trick shared with the kernel or lenet_fast.model.bf16_bits).
"""
import numpy as np
import pytest

from lenet_fast import _core
from lenet_fast.model import bf16_bits

from cases import BATCHES

LOW = np.uint32(0xFFFF)
STEP = np.uint32(0x10000)
LARGEST_BELOW_INF = 0x7F7F7FFF  # above it (to 0x7F7FFFFF) a float32 rounds up to bfloat16's infinity
TO_INF = np.array([0x7F7F8000], np.uint32).view(np.float32)[0]  # the tie between the largest and infinity


def oracle(x):
    """float32 x rounded to bfloat16 (ties to even), as float32: the nearer of the two bfloat16 values around
    each element, measured in float64."""
    bits = x.view(np.uint32)
    down_bits = bits & ~LOW  # toward zero
    up_bits = down_bits + STEP  # away from zero
    down = down_bits.view(np.float32).astype(np.float64)
    up = up_bits.view(np.float32).astype(np.float64)
    up[np.isinf(up)] = np.copysign(2.0**128, up[np.isinf(up)])  # the bfloat16 step past the largest value
    exact = x.astype(np.float64)
    d_down, d_up = np.abs(exact - down), np.abs(up - exact)
    down_even = (down_bits & STEP) == 0
    take_up = (d_up < d_down) | ((d_up == d_down) & ~down_even)
    out = np.where(take_up, up_bits, down_bits)
    return out.view(np.float32)


def random_floats(n, seed):
    """n finite float32 of every kind, seeded: random bit patterns (every exponent, subnormals included),
    exact ties (low half 0x8000, kept halves odd and even), values one below and above a tie, zero and the
    largest that does not round to infinity."""
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    kind = rng.integers(0, 5, n)
    bits = np.where(kind == 1, (bits & ~LOW) | np.uint32(0x8000), bits)  # ties
    bits = np.where(kind == 2, (bits & ~LOW) | np.uint32(0x7FFF), bits)  # just below a tie
    bits = np.where(kind == 3, (bits & ~LOW) | np.uint32(0x8001), bits)  # just above
    bits = np.where(kind == 4, bits & np.uint32(0x807FFFFF), bits)  # exponent 0: zero and subnormals
    magnitude = bits & np.uint32(0x7FFFFFFF)
    bits = np.where(magnitude > LARGEST_BELOW_INF, bits & np.uint32(0x8F7FFFFF), bits)  # no inf, NaN, overflow
    special = np.array([0, 0x00008000, 0x00018000, LARGEST_BELOW_INF], np.uint32)[:n]
    bits[:len(special)] = special
    # -0.0 becomes +0.0 on the way in (the input map adds 0.0), before any rounding: not this kernel's
    bits[bits == 0x80000000] = 0
    return bits.view(np.float32)


def rounding_network(shape):
    return _core.Network(shape, [{"kind": "dropout", "rate": 0.0, "round": True}])


def test_the_oracle_rounds_to_nearest_even():
    x = np.array([1 + 2**-8, 1 + 3 * 2**-8, 1 + 2**-8 + 2**-20, 1 - 2**-9, 2**-133 * 1.5, TO_INF],
                 np.float32)
    want = np.array([1.0, 1 + 2**-6, 1 + 2**-7, 1.0, 2**-132, np.inf], np.float32)
    np.testing.assert_array_equal(oracle(x), want)


@pytest.mark.parametrize("n", [1, 7, 37])
def test_rounding_is_bit_exact(path, n):
    shape = (3, 5, 13)  # odd sizes: ragged vector ends in both layouts
    x = random_floats(n * int(np.prod(shape)), seed=n).reshape((n,) + shape)
    got = rounding_network(shape).forward(x)
    want = oracle(x)
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    assert (got != x).mean() > 0.5  # the check can fail: most values move
    np.testing.assert_array_equal(bf16_bits(x), (want.view(np.uint32) >> 16).astype(np.uint16))


@pytest.mark.parametrize("n", BATCHES)
def test_every_batch_size(path, n):
    x = random_floats(n * 32 * 32, seed=100 + n).reshape(n, 1, 32, 32)
    got = rounding_network((1, 32, 32)).forward(x)
    np.testing.assert_array_equal(got.view(np.uint32), oracle(x).view(np.uint32))


def test_a_value_that_rounds_to_infinity_is_refused():
    x = np.full((1, 1, 4, 4), TO_INF, np.float32)
    with pytest.raises(FloatingPointError):
        rounding_network((1, 4, 4)).forward(x)


def test_without_the_flag_nothing_is_rounded():
    x = random_floats(2 * 16, seed=1).reshape(2, 1, 4, 4)
    got = _core.Network((1, 4, 4), [{"kind": "dropout", "rate": 0.0}]).forward(x)
    np.testing.assert_array_equal(got, x)


@pytest.mark.parametrize("bad", [1, "yes", None, np.array([True])])
def test_the_flag_is_a_bool(bad):
    with pytest.raises(ValueError, match="round"):
        _core.Network((1, 4, 4), [{"kind": "dropout", "rate": 0.0, "round": bad}])
