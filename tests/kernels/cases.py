"""Constants the kernel tests parametrize over. They are read at import time, by @pytest.mark.parametrize
and by hypothesis strategies in decorators, where a fixture cannot reach; everything else the kernel tests
share is a fixture in tests/kernels/conftest.py.

Batch sizes: with LF_LANES images per block (4 baseline, 8 AVX2, 16 AVX-512) both layouts run: whole blocks
("blocked"), leftover images one at a time ("spatial") and partly filled blocks (from LF_PARTIAL_BLOCK_MIN
leftovers on, 6 of 8 on AVX2: csrc/layout.h).
"""
from hypothesis import strategies as st

from lenet_fast import _core


def _available_isas():
    """The instruction-set paths this CPU runs, the default first."""
    default = _core.isa()
    paths = [default]
    try:
        for name in ("avx512", "avx2", "baseline"):
            if name != default:
                try:
                    _core.select_isa(name)
                    paths.append(name)
                except ValueError:
                    pass
    finally:
        _core.select_isa(default)
    return tuple(paths)


# The instruction-set paths this CPU runs, the default (fastest) first.
ISAS = _available_isas()

# Empty batch, single images, whole blocks, blocks plus single leftovers, partly filled blocks: for 4, 8
# and 16 lanes alike.
BATCHES = (0, 1, 2, 5, 6, 7, 8, 9, 13, 14, 16, 17, 22, 37)
# The same for the backward checks, fewer: single images, a block, blocks + a partial block + singles.
BACKWARD_BATCHES = (1, 3, 8, 13, 21)
ACTS = ("none", "squash", "tanh", "relu", "leaky_relu", "elu", "sigmoid")
POOLS = ("trainable", "average", "max")
SEEDS = st.integers(0, 2**32 - 1)
# Full-layer widths: below 8 lanes, multiples of 8 and 16, ragged ones (LeNet's own 84 and 120), around
# the blocked tile (12 or 24 outputs) and the spatial tile (4 vectors).
FULL_OUTS = (1, 2, 3, 5, 7, 8, 9, 10, 12, 15, 16, 17, 24, 25, 31, 32, 33, 48, 64, 65, 84, 96, 120, 127, 128,
             255, 300)
OUT_WIDTHS = st.one_of(st.sampled_from(FULL_OUTS), st.integers(1, 300))
# The oracle's tolerances (tests/kernels/conftest.py explains them): of the magnitude of the terms a kernel
# accumulates, and of an activation's output.
ACC_RTOL = 1e-5
ACT_RTOL = 1e-6
# The largest accumulator tile of any path (LF_TILE: 24 vectors on AVX-512, 12 otherwise; csrc/ops.h):
# a count from 1 to one past it meets every tile size, and the split into two balanced tiles.
MAX_TILE = 24
