"""Whole numbers: read_number reads a row of handwritten digits in one picture (a ZIP code, an amount).

The picture goes through read_digit's first steps (images: gray levels, the paper under uneven light, the
noise floor), and then:

0. Polarity. Both paper estimates are made (read_digit's paper under uneven light: the closing, which
   removes dark ink, and the opening, which removes light ink, over a window wider than a stroke) and the
   smoother one, the least total variation, is the paper: the wrong one keeps the digits' shapes. read_digit
   decides on a coarse copy of the picture instead, which suits one digit in the frame but not a row, where
   the digits fill the coarse copy's window; a row read in the wrong polarity has the paper between its
   strokes for ink. When neither polarity leaves ink above the noise floor, read_digit's ink step decides
   (and refuses a picture with no ink).
1. Ink mask. A pixel is ink when its ink level is above Otsu's threshold of the ink levels (the level that
   best splits them into two classes: residual paper and strokes); a faint part of a stroke that touches a
   strong part is kept (hysteresis down to half the threshold), so that thin or pale strokes do not break.
2. Connected components (8-connected) of the mask, labelled in C (csrc/components.c), with their boxes.
3. Specks: components under MIN_SIZE pixels both ways are dropped; the row's height is the median height
   of the rest's tall components (at least half the tallest), and components smaller than SPECK of it both
   ways are dropped too (dust, JPEG blocks, a decimal point). No component left: ValueError.
4. Pieces of one digit are merged: components sorted by their left edge, each joins the group before it
   when their column ranges overlap by at least MERGE_OVERLAP of the narrower (the two strokes of a 4, the
   flag of a 5, the bar of a 7 lie over one another; neighbouring digits sit side by side).
5. Touching digits. A group wider than WIDE row heights may hold several digits. Cut points are the
   columns with the least ink within CUT_SPACING row heights on either side (evenly spaced ones fill longer
   stretches), and the segmentation is the path from the group's left edge to its right edge, through cut
   points, whose segments (each MIN_WIDTH to MAX_WIDTH row heights wide, or the whole group) fit the model
   best: the least sum of their misfits (the classic model's distance to the nearest RBF centre, which is
   small for one digit and large for half a digit or two of them; the modern model's minus log
   probability). Leaving the group whole is one of the paths, so a cut must lower the sum to be made. All
   candidate segments of a picture go to the model in one batch; the best path is found by dynamic
   programming (the paper's segmentation graph, scored by the recogniser). Vertical cuts cannot separate
   digits that lean into each other: docs/numbers.md says what works.
6. Each digit's ink (the other digits' pixels masked out) goes through read_digit's MNIST form, and all
   digits are recognised in one batch, left to right.
"""
import threading
from collections import namedtuple

import numpy as np

from . import _core, images
from .predictor import Predictor
from .pretrained import pretrained

SPECK = 0.25           # of the row's height, both ways: smaller components are dropped
MIN_SIZE = 6           # pixels, both ways: smaller components are specks whatever the row's height
MERGE_OVERLAP = 0.5    # of the narrower component's width: more shared columns make one digit
WIDE = 0.9             # row heights: a wider group is tried for cuts. One digit is 0.3 to 0.95 wide, and a
                       # wide one tried for cuts is often cut in two (its halves look like digits to the
                       # model); two touching digits are wider unless both are narrow (a 1 and another)
MIN_WIDTH = 0.15       # row heights: the narrowest segment a cut may leave (a 1 is 0.1 or more)
MAX_WIDTH = 1.3        # row heights: the widest segment
CUT_SPACING = 0.1      # row heights: a cut point has the least ink within this distance on either side
UNCUT_COST = 1000.0    # leaving a group wider than MAX_WIDTH whole, when no cut works
FORM_SOURCE = 60       # pixels: a digit's ink is block-averaged to no less than this before its MNIST form
HYSTERESIS = 0.5       # of the threshold: fainter ink joins the mask only when it touches ink above it

Digit = namedtuple("Digit", ["digit", "confidence", "box"])
Digit.__doc__ = """One digit read_number found: digit (int, 0-9), confidence (float in (0, 1]: the model's
predict_proba for that digit) and box ((top, left, bottom, right) ints in the input's pixels; bottom and right
are exclusive, as in a slice)."""

_default = None
_default_lock = threading.Lock()


def read_number(image, model=None, details=False):
    """The digits written in a row in image, as a string, left to right (module docstring says how).

    image: what read_digit takes (a path, a PIL.Image, or an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)
    array). model: a LeNet5 or an Int8LeNet5 (default: the pretrained classic, read once and kept). With
    details, a list of Digit records (digit, confidence, box) instead, one per digit, left to right.

    Raises ValueError when the image has no ink (as read_digit) or no component large enough to be a digit,
    TypeError when model is not a LeNet5 (or Int8LeNet5) or details not a bool, and read_digit's errors for a
    bad source.
    """
    if model is None:
        model = _default_model()
    elif not isinstance(model, Predictor):
        raise TypeError(f"model must be a lenet_fast.LeNet5 (or its int8 form) or None, got {type(model).__name__}")
    if not isinstance(details, bool):
        raise TypeError(f"details must be True or False, got {details!r}")
    name, gray = images._source_gray(image)
    ink = _ink(gray, name)
    labels, boxes = _components(_mask(ink))
    size = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    size[0] = 0
    if size.max() < MIN_SIZE:
        raise ValueError(f"{name} contains no digit: its ink is only specks (at most {size.max()} pixels "
                         f"across, fewer than {MIN_SIZE})")
    height = _row_height(boxes[size >= MIN_SIZE])
    groups = _merge(boxes, np.flatnonzero(size >= max(SPECK * height, MIN_SIZE)))
    digits = _segment(ink, labels, boxes, groups, height, model)
    if details:
        return digits
    return "".join(str(d.digit) for d in digits)


def _default_model():
    """The pretrained classic model, read on first use and kept (read_number only predicts with it)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = pretrained("classic")
        return _default


def _ink(gray, name):
    """The row's ink map (module docstring, step 0): read_digit's paper estimates and noise floor, the
    polarity the one whose paper estimate varies least; read_digit's ink step itself (its no-digit error)
    when neither polarity leaves ink above the noise. gray: float (H, W) in [0, 1], not modified."""
    closing, opening = (_core.paper(gray, dark, images.PICTURE_PARAMS) for dark in (True, False))
    dark = _variation(closing) <= _variation(opening)
    ink, _, _ = _core.ink_above_floor(gray, closing if dark else opening, dark, images.MIN_PAPER,
                                      images.NOISE_SIGMAS, images.MIN_CONTRAST)
    if ink is None:
        ink, contrast, floor = _core.picture_ink(gray, images.PICTURE_PARAMS)
        if ink is None:
            raise images._no_ink(name, contrast, floor)
    return ink


def _variation(a):
    """The total variation of a 2-D array: the sum of its neighbours' absolute differences."""
    return np.abs(np.diff(a, axis=0)).sum() + np.abs(np.diff(a, axis=1)).sum()


def _mask(ink):
    """Where the ink is (module docstring, step 1): a boolean array of ink's shape."""
    levels = ink[ink > 0]
    threshold = _otsu(levels)
    strong = ink > threshold
    weak = ink > HYSTERESIS * threshold
    labels, _ = _core.components(weak)
    held = np.zeros(labels.max() + 1, dtype=bool)
    held[labels[strong]] = True
    held[0] = False
    return held[labels]


def _otsu(levels, bins=256):
    """Otsu's threshold of levels (a 1-D array of positive floats, not empty): the value between two of
    bins equal histogram bins that maximises the between-class variance."""
    counts, edges = np.histogram(levels, bins=bins, range=(0.0, levels.max()))
    centres = (edges[:-1] + edges[1:]) / 2
    below = np.cumsum(counts)[:-1]
    above = len(levels) - below
    mass = np.cumsum(counts * centres)[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = below * above * (mass / below - (mass[-1] + counts[-1] * centres[-1] - mass) / above) ** 2
    return edges[1:-1][np.nanargmax(between)] if np.isfinite(between).any() else 0.0


def _components(mask):
    """(labels, boxes): the 8-connected components of a boolean (H, W) mask (module docstring, step 2):
    labels as _core.components numbers them, boxes (K + 1, 4) int64, row k the (top, left, bottom, right) of
    component k (bottom, right exclusive; row 0 unused)."""
    labels, count = _core.components(mask)
    boxes = np.zeros((count + 1, 4), dtype=np.int64)
    boxes[1:] = _core.component_stats(labels, count)[0]
    return labels, boxes


def _row_height(boxes):
    """The row's height in pixels (module docstring, step 3), from the (K, 4) boxes of its components (K > 0)."""
    heights = boxes[:, 2] - boxes[:, 0]
    return float(np.median(heights[heights >= heights.max() / 2]))


def _merge(boxes, kept):
    """The groups of kept components that make one digit each (module docstring, step 4): a list of arrays
    of component numbers, ordered by left edge."""
    order = kept[np.argsort(boxes[kept, 1], kind="stable")]
    groups, span = [], None
    for k in order:
        left, right = boxes[k, 1], boxes[k, 3]
        if span is not None:
            overlap = min(right, span[1]) - max(left, span[0])
            if overlap >= MERGE_OVERLAP * min(right - left, span[1] - span[0]):
                groups[-1].append(k)
                span = (span[0], max(span[1], right))
                continue
        groups.append([k])
        span = (left, right)
    return [np.array(g) for g in groups]


def _segment(ink, labels, boxes, groups, height, model):
    """The Digit records of the groups, left to right: each group cut into digits (module docstring, steps
    5-6) and recognised, all candidate segments in one batch."""
    pieces, forms, paths = [], [], []  # candidate segments: their ink's boxes, their MNIST forms; per group
    for members in groups:
        top, left = boxes[members, 0].min(), boxes[members, 1].min()
        bottom, right = boxes[members, 2].max(), boxes[members, 3].max()
        mine = np.isin(labels[top:bottom, left:right], members)
        cuts = [0, right - left]
        if right - left > WIDE * height:
            cuts = _cut_points(mine, height)
        segments = [(i, j) for i in range(len(cuts)) for j in range(i + 1, len(cuts))
                    if MIN_WIDTH * height <= cuts[j] - cuts[i] <= MAX_WIDTH * height
                    or (i == 0 and j == len(cuts) - 1)]
        at, kept = len(pieces), []
        for i, j in segments:
            part = np.where(mine[:, cuts[i]:cuts[j]], ink[top:bottom, left + cuts[i]:left + cuts[j]], 0.0)
            if part.max() <= 0:  # a cut between strokes leaves no ink: not a segment
                continue
            rows = np.flatnonzero(part.any(axis=1))
            cols = np.flatnonzero(part.any(axis=0)) + left + cuts[i]
            pieces.append((top + rows[0], cols[0], top + rows[-1] + 1, cols[-1] + 1))
            forms.append(_core.mnist_form(_shrunk(part), images.PICTURE_PARAMS))
            kept.append((i, j))
        paths.append((cuts, kept, at, len(pieces)))  # the group's segments are pieces[at:stop]
    forms = np.stack(forms)
    cost = _misfit(model, forms)
    chosen = [at + k for cuts, segments, at, stop in paths
              for k in _best_path(cuts, segments, cost[at:stop], height)]
    probs = model.predict_proba(forms[chosen])
    digits = probs.argmax(axis=1)
    return [Digit(int(d), float(row[d]), tuple(int(v) for v in pieces[k])) for k, d, row in zip(chosen, digits, probs)]


def _shrunk(part):
    """part (an ink map) averaged over square blocks so that it stays at least FORM_SOURCE pixels on its longer
    side: the MNIST form scales it to 20 pixels by area averaging anyway, and a digit hundreds of pixels high
    (a phone's photo) would cost that much more to scale."""
    f = max(part.shape) // FORM_SOURCE
    if f < 2:
        return part
    h, w = -(-part.shape[0] // f) * f, -(-part.shape[1] // f) * f  # padded with paper to whole blocks
    padded = np.zeros((h, w))
    padded[:part.shape[0], :part.shape[1]] = part
    return padded.reshape(h // f, f, w // f, f).mean(axis=(1, 3))


def _misfit(model, forms):
    """(N,) float64: how little each of forms (N, 28, 28) looks like a digit to model, the cost a segment
    adds to a path. Classic: the RBF distance to the nearest class centre (the paper's penalty, and the
    measure that tells a digit from two halves or a pair of digits; the probabilities do not, being near 1
    for all three). Modern: minus the log probability of the likeliest class."""
    out = model.forward(forms).astype(np.float64)
    if model.variant == "classic":
        return out.min(axis=1)
    top = out.max(axis=1)
    return np.log(np.exp(out - top[:, None]).sum(axis=1))


def _cut_points(mine, height):
    """Where a wide group may be cut (module docstring, step 5), in the group's columns, sorted: its edges,
    the columns of least ink within CUT_SPACING row heights on either side, and, where no such column lies
    within CUT_SPACING, evenly spaced columns (so that a path of plausible widths always exists)."""
    sums = mine.sum(axis=0).astype(np.float64)
    w = len(sums)
    radius = max(1, int(CUT_SPACING * height))
    padded = np.concatenate([np.full(radius, np.inf), sums, np.full(radius, np.inf)])
    window = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1).min(axis=1)
    minima = np.flatnonzero(sums <= window)
    minima = minima[np.concatenate([[True], np.diff(minima) > 1])]  # one column of each flat minimum
    grid = np.arange(radius, w, radius)
    near = np.abs(grid[:, None] - minima[None, :]).min(axis=1, initial=w) < radius
    cuts = np.union1d(minima, grid[~near])
    return [0] + [int(c) for c in cuts if 0 < c < w] + [w]


def _best_path(cuts, segments, cost, height):
    """The indexes (into segments, (i, j) pairs of cut indexes) of the cheapest segmentation from the first
    cut to the last: the sum of its segments' costs (UNCUT_COST more for the whole group when it is wider
    than MAX_WIDTH row heights), by dynamic programming over the cuts in order."""
    best = np.full(len(cuts), np.inf)
    best[0] = 0.0
    came = [None] * len(cuts)
    for k in sorted(range(len(segments)), key=lambda k: segments[k]):  # every way into cut i before any out
        i, j = segments[k]
        total = best[i] + cost[k]
        if cuts[j] - cuts[i] > MAX_WIDTH * height:
            total += UNCUT_COST
        if total < best[j]:
            best[j], came[j] = total, k
    path, j = [], len(cuts) - 1
    while j > 0:
        path.append(came[j])
        j = segments[came[j]][0]
    return path[::-1]
