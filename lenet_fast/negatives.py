"""Pictures that are not digits, for training a model to refuse them (label -1 in fit, docs/training.md):
letters, marks and shapes drawn by hand, scribbles, filled polygons, noise and faint, blank-ish images,
made from a seed so that any set can be made again.

    from lenet_fast import negatives
    x = negatives.non_digits(6000, seed=1)        # (6000, 28, 28) uint8, MNIST form
    model.fit(np.concatenate([digits, x]), np.concatenate([labels, np.full(len(x), -1)]), loss="map")

The drawn kinds are traced with handwriting's pen (hand_strokes, draw) on a 64x64 canvas and put in MNIST
form by the steps read_digit ends with (_core.mnist_form: the ink's box scaled to 20x20 keeping its aspect,
its centre of mass at the centre of 28x28), so they look to a model as a photo of them read by read_digit
would. The noise and faint kinds are plain 28x28 arrays, as a caller may pass to predict directly.

Left out on purpose:
- shapes that are digits, or that a hand turns into one: the letters I l O o S Z B g q b, D, G, J, Q, U, L,
  C, e, a, h, t, y, z (1 0 5 2 8 9 6 and their near forms), a lone upright or steep bar (a 1), closed
  round loops (a 0) and a vertical or opening-sideways arc (a 1, a 0's side); also a triangle's outline
  (too near the held-out A to say anything about it);
- held out: the letter A, any filled disk or dot, and HELD_OUT's letters and marks (kind "held-out"), so
  that how well refusing them generalises can be measured (tests/test_calibration.py,
  tools/train_negatives.py).
"""
import numpy as np

from . import _core, images
from .handwriting import _catmull_rom, draw, hand_strokes

CANVAS = 64
# Strokes as control points (x, y) in the unit box (x right, y down, about 0.6 wide and 1 high), as
# handwriting.STYLES draws digits; each traced by a Catmull-Rom spline (a point repeated makes a corner).
LETTERS = {
    "E": [[(0.6, 0.0), (0.0, 0.0), (0.0, 0.0), (0.0, 1.0), (0.0, 1.0), (0.6, 1.0)], [(0.0, 0.5), (0.45, 0.5)]],
    "F": [[(0.6, 0.0), (0.0, 0.0), (0.0, 0.0), (0.0, 1.0)], [(0.0, 0.5), (0.45, 0.5)]],
    "H": [[(0.0, 0.0), (0.0, 1.0)], [(0.6, 0.0), (0.6, 1.0)], [(0.0, 0.5), (0.6, 0.5)]],
    "M": [[(0.0, 1.0), (0.0, 0.0), (0.0, 0.0), (0.3, 0.6), (0.3, 0.6), (0.6, 0.0), (0.6, 0.0), (0.6, 1.0)]],
    "N": [[(0.0, 1.0), (0.0, 0.0), (0.0, 0.0), (0.6, 1.0), (0.6, 1.0), (0.6, 0.0)]],
    "P": [[(0.0, 1.0), (0.0, 0.0), (0.4, 0.0), (0.6, 0.15), (0.55, 0.4), (0.3, 0.5), (0.0, 0.5)]],
    "R": [[(0.0, 1.0), (0.0, 0.0), (0.4, 0.0), (0.6, 0.15), (0.55, 0.4), (0.3, 0.5), (0.0, 0.5)],
          [(0.25, 0.5), (0.6, 1.0)]],
    "T": [[(0.0, 0.0), (0.7, 0.0)], [(0.35, 0.0), (0.35, 1.0)]],
    "V": [[(0.0, 0.0), (0.3, 1.0), (0.3, 1.0), (0.6, 0.0)]],
    "X": [[(0.0, 0.0), (0.6, 1.0)], [(0.6, 0.0), (0.0, 1.0)]],
    "m": [[(0.0, 1.0), (0.0, 0.4), (0.0, 0.5), (0.15, 0.4), (0.3, 0.5), (0.3, 1.0)],
          [(0.3, 0.5), (0.45, 0.4), (0.6, 0.5), (0.6, 1.0)]],
    "n": [[(0.0, 1.0), (0.0, 0.4), (0.0, 0.55), (0.25, 0.4), (0.5, 0.55), (0.5, 1.0)]],
    "r": [[(0.0, 1.0), (0.0, 0.4), (0.0, 0.6), (0.2, 0.42), (0.45, 0.42)]],
}
MARKS = {
    "plus": [[(0.0, 0.5), (0.6, 0.5)], [(0.3, 0.2), (0.3, 0.8)]],
    "equals": [[(0.0, 0.35), (0.6, 0.35)], [(0.0, 0.65), (0.6, 0.65)]],
    "check": [[(0.0, 0.55), (0.2, 0.8), (0.2, 0.8), (0.7, 0.1)]],
    "zigzag": [[(0.0, 0.2), (0.15, 0.8), (0.15, 0.8), (0.3, 0.2), (0.3, 0.2), (0.45, 0.8), (0.45, 0.8), (0.6, 0.2)]],
    "wave": [[(0.0, 0.5), (0.15, 0.3), (0.3, 0.5), (0.45, 0.7), (0.6, 0.5), (0.75, 0.3)]],
    "dash": [[(0.0, 0.5), (0.6, 0.5)]],
    "hump": [[(0.0, 0.8), (0.1, 0.35), (0.3, 0.2), (0.5, 0.35), (0.6, 0.8)]],
    "cup": [[(0.0, 0.2), (0.1, 0.65), (0.3, 0.8), (0.5, 0.65), (0.6, 0.2)]],
}
# Never drawn by the training kinds: tools/train_negatives.py measures how refusing them generalises.
HELD_OUT = {
    "K": [[(0.0, 0.0), (0.0, 1.0)], [(0.6, 0.0), (0.0, 0.55)], [(0.2, 0.45), (0.6, 1.0)]],
    "W": [[(0.0, 0.0), (0.15, 1.0), (0.15, 1.0), (0.3, 0.3), (0.3, 0.3), (0.45, 1.0), (0.45, 1.0), (0.6, 0.0)]],
    "Y": [[(0.0, 0.0), (0.3, 0.5)], [(0.6, 0.0), (0.3, 0.5), (0.3, 1.0)]],
    "hash": [[(0.2, 0.0), (0.1, 1.0)], [(0.5, 0.0), (0.4, 1.0)], [(0.0, 0.33), (0.6, 0.33)],
             [(0.0, 0.67), (0.6, 0.67)]],
    "star": [[(0.3, 0.0), (0.3, 1.0)], [(0.0, 0.25), (0.6, 0.75)], [(0.6, 0.25), (0.0, 0.75)]],
    "arrow": [[(0.0, 0.5), (0.7, 0.5)], [(0.45, 0.25), (0.7, 0.5), (0.7, 0.5), (0.45, 0.75)]],
}
# The kinds and their shares of non_digits's output (in this order, each image's kind drawn from them).
KINDS = {"letter": 0.3, "mark": 0.15, "scribble": 0.15, "filled": 0.1, "noise": 0.2, "faint": 0.1}


def non_digits(n, seed, kinds=None):
    """(n, 28, 28) uint8 pictures of non-digits (0 background, 255 ink), image i made from the seed
    (seed, i) alone, so that a set grows by appending. kinds: a list of KINDS names to draw from in equal
    shares, or "held-out" alone (the HELD_OUT letters and marks, for measuring; never in a training set);
    None: KINDS with its shares. ValueError for a negative n or an unknown kind."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    if kinds is None:
        names, shares = list(KINDS), np.array(list(KINDS.values()))
    else:
        names = list(kinds)
        unknown = [k for k in names if k not in KINDS and k != "held-out"]
        if not names or unknown or ("held-out" in names and len(names) > 1):
            raise ValueError(f"kinds must be a list of {sorted(KINDS)}, or ['held-out'] alone, got {kinds!r}")
        shares = np.ones(len(names))
    out = np.empty((n, 28, 28), np.uint8)
    for i in range(n):
        rng = np.random.default_rng((seed, i))
        out[i] = _MAKERS[names[rng.choice(len(names), p=shares / shares.sum())]](rng)
    return out


def _stroked(table):
    def make(rng):
        keys = sorted(table)
        return hand_drawn(table[keys[rng.integers(len(keys))]], rng)
    return make


def hand_drawn(strokes, rng):
    """A (28, 28) uint8 picture in MNIST form of strokes (lists of control points (x, y) in the unit box, as
    LETTERS holds them) drawn by a hand (handwriting.hand_strokes), turned by up to 15 degrees more, with
    a random pen: how the shapes here are drawn, and any other shape to compare with them."""
    strokes = hand_strokes(strokes, rng)
    angle = np.radians(rng.uniform(-15, 15))
    rotate = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return _form(_pen([s @ rotate.T for s in strokes], rng))


def _pen(strokes, rng):
    """The strokes' ink on the canvas, a random pen: as handwriting.digit_photo draws a digit."""
    height = CANVAS * rng.uniform(0.5, 0.7)
    return draw(strokes, (CANVAS, CANVAS), (CANVAS / 2, CANVAS / 2), height, height * rng.uniform(0.07, 0.16))


def _form(ink):
    return _core.mnist_form(ink, images.PICTURE_PARAMS)


def _scribble(rng):
    """One to three strokes through 5-10 random points each: tangles no digit is drawn as."""
    strokes = [rng.uniform(-0.5, 0.5, (rng.integers(5, 11), 2)) for _ in range(rng.integers(1, 4))]
    return _form(_pen([_catmull_rom(s) for s in strokes], rng))


def _filled(rng):
    """A filled triangle or convex quadrilateral of random corners (never round: the disk is held out)."""
    k = int(rng.integers(3, 5))
    angles = np.sort(rng.uniform(0, 2 * np.pi, k))
    while np.max(np.diff(np.r_[angles, angles[0] + 2 * np.pi])) > 0.9 * np.pi:  # a sliver: spread the corners
        angles = np.sort(rng.uniform(0, 2 * np.pi, k))
    corners = np.c_[np.cos(angles), np.sin(angles)] * rng.uniform(0.5, 1.0, (k, 1)) * 24 + CANVAS / 2
    yy, xx = np.mgrid[0:CANVAS, 0:CANVAS] + 0.5
    inside = np.ones((CANVAS, CANVAS), bool)
    for a, b in zip(corners, np.roll(corners, -1, axis=0)):  # counter-clockwise: inside is left of each edge
        inside &= (b[0] - a[0]) * (yy - a[1]) - (b[1] - a[1]) * (xx - a[0]) >= 0
    if not inside.any():
        return _filled(rng)
    return _form(inside.astype(np.float64))


def _noise(rng):
    """Uniform, Gaussian-smoothed or sparse noise at a random strength, as a plain 28x28 array."""
    strength = rng.uniform(30, 256)
    style = rng.integers(3)
    if style == 0:
        a = rng.uniform(0, strength, (28, 28))
    elif style == 1:
        a = rng.uniform(0, 1, (30, 30))
        a = (a[:-2, :-2] + a[1:-1, :-2] + a[2:, :-2] + a[:-2, 1:-1] + a[1:-1, 1:-1] + a[2:, 1:-1] + a[:-2, 2:]
             + a[1:-1, 2:] + a[2:, 2:]) / 9
        a = (a - a.min()) / max(np.ptp(a), 1e-9) * strength
    else:
        a = (rng.random((28, 28)) < rng.uniform(0.02, 0.3)) * strength
    return np.clip(a, 0, 255).astype(np.uint8)


def _faint(rng):
    """A blank-ish image: a faint uniform wash, noise or gradient below 40 of 255."""
    level = rng.uniform(1, 40)
    style = rng.integers(3)
    if style == 0:
        a = np.full((28, 28), rng.uniform(0, level))
    elif style == 1:
        a = rng.uniform(0, level, (28, 28))
    else:
        a = np.linspace(0, level, 28)[None, :] * np.ones((28, 1))
        a = a if rng.random() < 0.5 else a.T
    return a.astype(np.uint8)


_MAKERS = {"letter": _stroked(LETTERS), "mark": _stroked(MARKS), "scribble": _scribble, "filled": _filled,
           "noise": _noise, "faint": _faint, "held-out": _stroked(HELD_OUT)}
