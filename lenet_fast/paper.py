"""The facts of LeNet-5, as published.

Source: Y. LeCun, L. Bottou, Y. Bengio and P. Haffner, "Gradient-Based Learning Applied to
Document Recognition", Proceedings of the IEEE 86(11):2278-2324, 1998 (section II-B on
LeNet-5, section II-C on the loss, appendix A on the squashing function and the
initialisation, appendix C on stochastic diagonal Levenberg-Marquardt).

This module is the single place where the engine's constants live. Everything else (the C
kernels' wrappers, the models, the trainer, the tests) imports them from here; nothing in
this module computes anything beyond turning the paper's tables into arrays.

It is laid out in the paper's order: input, squashing function, C3 connection table
(Table I), output RBF prototypes, initialisation, training schedule, published results.
"""

import numpy as np

__all__ = [
    "SQUASH_A",
    "SQUASH_S",
    "INPUT_SIZE",
    "DIGIT_SIZE",
    "INPUT_BORDER",
    "INPUT_BACKGROUND",
    "INPUT_INK",
    "C3_INPUTS",
    "C3_TABLE",
    "RBF_WIDTH",
    "RBF_HEIGHT",
    "RBF_BITMAPS",
    "rbf_centers",
    "render_bitmaps",
    "INIT_SCALE",
    "SDLM_MU",
    "SDLM_HESSIAN_SAMPLES",
    "SDLM_PASSES",
    "SDLM_SCHEDULE",
    "SDLM_FINAL_EPSILON",
    "sdlm_epsilon",
    "MAP_J",
    "PUBLISHED_TEST_ERROR",
]

# ---------------------------------------------------------------------------------------
# Squashing function (appendix A): f(a) = A tanh(S a).
# A and S are chosen so that f(1) = 1 and f(-1) = -1, the second derivative of f is
# largest at +-1, and the gain around the origin is close to one.
# ---------------------------------------------------------------------------------------
SQUASH_A = 1.7159
SQUASH_S = 2.0 / 3.0

# ---------------------------------------------------------------------------------------
# Input (section II-B): a 28x28 digit centred in a 32x32 field, so that strokes near the
# edge still reach the centre of C1's receptive fields. Pixel intensities are mapped so
# that the white background is -0.1 and full black ink is 1.175, giving inputs of mean
# about 0 and variance about 1:
#     x = p * (INPUT_INK - INPUT_BACKGROUND) + INPUT_BACKGROUND,   p = pixel / 255 in [0, 1]
# ---------------------------------------------------------------------------------------
INPUT_SIZE = 32
DIGIT_SIZE = 28
INPUT_BORDER = (INPUT_SIZE - DIGIT_SIZE) // 2  # the background around a 28x28 digit in the 32x32 field
INPUT_BACKGROUND = -0.1
INPUT_INK = 1.175

# ---------------------------------------------------------------------------------------
# C3 connection table (Table I): which S2 feature maps (0-5) feed each C3 map (0-15).
# Not connecting every S2 map to every C3 map keeps the number of connections in bounds and
# breaks the symmetry of the network: different C3 maps see different input sets, so they
# are pushed to extract different, complementary features.
# ---------------------------------------------------------------------------------------
C3_INPUTS = (
    # C3 maps 0-5: three contiguous S2 maps each (wrapping around)
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (4, 5, 0), (5, 0, 1),
    # C3 maps 6-11: four contiguous S2 maps each (wrapping around)
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (3, 4, 5, 0), (4, 5, 0, 1), (5, 0, 1, 2),
    # C3 maps 12-14: four S2 maps each, two non-contiguous pairs
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    # C3 map 15: all six S2 maps
    (0, 1, 2, 3, 4, 5),
)


def _c3_table():
    table = np.zeros((len(C3_INPUTS), 6), dtype=bool)
    for c3_map, s2_maps in enumerate(C3_INPUTS):
        table[c3_map, list(s2_maps)] = True
    table.flags.writeable = False
    return table


#: C3_TABLE[i, j] is True when S2 map j feeds C3 map i. Shape (16, 6), read-only.
C3_TABLE = _c3_table()

# ---------------------------------------------------------------------------------------
# Output layer (section II-B): ten Euclidean RBF units on the 84 outputs of F6,
#     y_i = sum_j (x_j - w_ij)^2,
# whose parameter vectors w_i are fixed by hand: a 7x12 bitmap of the character i, +1 for
# ink and -1 for background (F6's squash has f(+-1) = +-1, so these values are reachable
# without saturating the units). The paper shows its bitmaps only as a picture; the ten
# below are drawn for this engine: a printed, two-pixel-stroke font in the 7-wide by
# 12-tall box. Since classification picks the nearest prototype, they are drawn to be far
# apart: every pair differs in at least 21 of the 84 pixels (see tests/test_paper.py).
# '#' is ink (+1), '.' is background (-1).
# ---------------------------------------------------------------------------------------
RBF_WIDTH = 7
RBF_HEIGHT = 12

RBF_BITMAPS = (
    (  # 0
        "..###..",
        ".##.##.",
        "##...##",
        "##...##",
        "##...##",
        "##...##",
        "##...##",
        "##...##",
        "##...##",
        "##...##",
        ".##.##.",
        "..###..",
    ),
    (  # 1
        "...##..",
        "..###..",
        ".####..",
        "...##..",
        "...##..",
        "...##..",
        "...##..",
        "...##..",
        "...##..",
        "...##..",
        "...##..",
        ".######",
    ),
    (  # 2
        ".#####.",
        "##...##",
        ".....##",
        ".....##",
        "....##.",
        "...##..",
        "..##...",
        ".##....",
        "##.....",
        "##.....",
        "##.....",
        "#######",
    ),
    (  # 3
        "#######",
        ".....##",
        "....##.",
        "...##..",
        "..####.",
        ".....##",
        ".....##",
        ".....##",
        ".....##",
        ".....##",
        "##...##",
        ".#####.",
    ),
    (  # 4
        "....##.",
        "...###.",
        "..####.",
        ".##.##.",
        "##..##.",
        "#######",
        "#######",
        "....##.",
        "....##.",
        "....##.",
        "....##.",
        "....##.",
    ),
    (  # 5
        "#######",
        "##.....",
        "##.....",
        "##.....",
        "#####..",
        "...###.",
        ".....##",
        ".....##",
        ".....##",
        ".....##",
        "##..##.",
        ".####..",
    ),
    (  # 6
        "....##.",
        "...##..",
        "..##...",
        ".##....",
        "##.....",
        "######.",
        "##...##",
        "##...##",
        "##...##",
        "##...##",
        "##...##",
        ".#####.",
    ),
    (  # 7
        "#######",
        "#######",
        ".....##",
        "....##.",
        "....##.",
        "...##..",
        "...##..",
        "..##...",
        "..##...",
        "..##...",
        "..##...",
        "..##...",
    ),
    (  # 8
        ".#####.",
        "##...##",
        "##...##",
        ".##.##.",
        "..###..",
        ".##.##.",
        "##...##",
        "##...##",
        "##...##",
        "##...##",
        "##...##",
        ".#####.",
    ),
    (  # 9
        ".#####.",
        "##...##",
        "##...##",
        "##...##",
        "##...##",
        "##...##",
        ".######",
        ".....##",
        "....##.",
        "...##..",
        "..##...",
        ".##....",
    ),
)


def rbf_centers(dtype=np.float32):
    """The ten RBF parameter vectors as a new (10, 84) array.

    Row i is the bitmap of digit i flattened row-major (12 rows of 7), +1 for ink and -1
    for background.
    """
    ink = np.array([[ch == "#" for row in bitmap for ch in row] for bitmap in RBF_BITMAPS])
    return np.where(ink, 1, -1).astype(dtype)


def render_bitmaps(ink="#", background=" ", gap="  "):
    """The ten RBF bitmaps side by side as text, digit labels underneath."""
    lines = []
    for r in range(RBF_HEIGHT):
        row = gap.join(bitmap[r] for bitmap in RBF_BITMAPS)
        lines.append(row.replace("#", ink).replace(".", background))
    labels = gap.join(str(d).center(RBF_WIDTH) for d in range(len(RBF_BITMAPS)))
    lines.append(labels)
    return "\n".join(line.rstrip() for line in lines) + "\n"


# ---------------------------------------------------------------------------------------
# Initialisation (appendix A): every weight and bias drawn uniformly from
# (-INIT_SCALE / F, +INIT_SCALE / F), F the fan-in of the unit the connection belongs to
# (for C3, only the connected inputs: 75, 100 or 150; for S2/S4 coefficients, 4). This keeps
# the weighted sums in the range where the squash is neither saturated nor linear.
# ---------------------------------------------------------------------------------------
INIT_SCALE = 2.4

# ---------------------------------------------------------------------------------------
# Training (section II-B and appendix C): stochastic diagonal Levenberg-Marquardt.
# Per-parameter step eta_k = epsilon / (SDLM_MU + h_kk), with h_kk a running estimate of the
# diagonal of the Gauss-Newton Hessian, re-estimated on SDLM_HESSIAN_SAMPLES patterns before
# each pass; weights updated after every pattern; SDLM_PASSES passes over the training set.
# ---------------------------------------------------------------------------------------
SDLM_MU = 0.02
SDLM_HESSIAN_SAMPLES = 500
SDLM_PASSES = 20

#: The global learning-rate schedule: (last 1-based pass of the stage, epsilon).
#: Passes after the last stage use SDLM_FINAL_EPSILON.
SDLM_SCHEDULE = (
    (2, 0.0005),   # passes 1-2
    (5, 0.0002),   # passes 3-5
    (8, 0.0001),   # passes 6-8
    (12, 0.00005),  # passes 9-12
)
SDLM_FINAL_EPSILON = 0.00001  # passes 13 and after


def sdlm_epsilon(pass_index):
    """Global SDLM learning rate for a pass, ``pass_index`` counted from 0.

    The paper counts passes from 1: 0.0005 for passes 1-2, 0.0002 for 3-5, 0.0001 for
    6-8, 0.00005 for 9-12 and 0.00001 after. Several public copies of this schedule drop
    the 0.0001 stage (passes 6-8) through a branch that can never be reached; this one has
    all five stages.
    """
    if pass_index < 0:
        raise ValueError(f"pass_index must be >= 0, got {pass_index}")
    pass_number = pass_index + 1
    for last_pass, epsilon in SDLM_SCHEDULE:
        if pass_number <= last_pass:
            return epsilon
    return SDLM_FINAL_EPSILON


# ---------------------------------------------------------------------------------------
# MAP criterion (section II-C), the loss the paper recommends over the plain distance:
#     E = 1/P sum_p ( y_{D_p} + log( exp(-j) + sum_i exp(-y_i) ) )
# The exp(-j) term is a "rubbish" class with a fixed distance j: it only matters when every
# RBF distance is at least about j. The paper fixes j only as "a positive constant". We use
# j = 10: a well-fitted pattern (F6 outputs within a few tenths of its prototype) has a
# distance of a few units, well below 10, so the term leaves it alone; while a pattern
# halfway between two prototypes has distance at least 21 to both (the prototypes differ in
# >= 21 pixels, each contributing 1 at the midpoint), well above 10, so such ambiguous
# outputs are treated as rubbish and pushed away from every wrong class.
# ---------------------------------------------------------------------------------------
MAP_J = 10.0

# ---------------------------------------------------------------------------------------
# Published results on MNIST (section III-C): test error rate of LeNet-5 after 20 passes,
# without distortions and with 540,000 affinely distorted training patterns.
# ---------------------------------------------------------------------------------------
PUBLISHED_TEST_ERROR = {"classic": 0.0095, "classic_distorted": 0.008}
