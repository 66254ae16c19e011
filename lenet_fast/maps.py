"""Feature maps: what LeNet-5's convolution and subsampling layers make of one digit, and the picture of them
in the manner of the 1998 paper's figures (the input, C1's kernels, the maps of C1, S2, C3 and S4).

    maps = feature_maps(model, lenet_fast.read_digit("digit.png"))   # {"input", "c1", "s2", "c3", "s4"}
    draw_maps(model, image, "maps.png")

The maps come from the C engine itself: a Network running the model's first four layers on the model's own
parameter arrays (no copy), so they are exactly what the full forward pass computes on its way.
"""
from collections import OrderedDict

import numpy as np

from . import _core, paper, plotting
from .inputs import as_batch
from .model import INPUT_SHAPE, LeNet5

MAP_LAYERS = ("c1", "s2", "c3", "s4")  # the layers with maps (C5 on is a vector per image)


def feature_maps(model, image):
    """An OrderedDict for one digit: "input" -> (32, 32) float32, the image as the network sees it (the
    28x28 digit centred, pixels mapped to [-0.1, 1.175]), then "c1" (6, 28, 28), "s2" (6, 14, 14),
    "c3" (16, 10, 10) and "s4" (16, 5, 5): each layer's output, after its activation, as float32.

    model: a LeNet5 (either variant; TypeError otherwise: an Ensemble has no one set of maps). image: one
    digit as LeNet5.predict takes it: a (28, 28) array of pixels (uint8 0-255 or floats in [0, 1], MNIST's
    polarity), a path or PIL.Image (read by read_digit). ValueError for a batch of several images; whatever
    predict raises for a bad image."""
    if not isinstance(model, LeNet5):
        raise TypeError(f"feature_maps takes a LeNet5, got {type(model).__name__}")
    x, normalize = as_batch(image, False)
    if len(x) != 1:
        raise ValueError(f"feature_maps takes one image, got a batch of {len(x)}")
    if x.shape[-1] != paper.DIGIT_SIZE or not normalize:
        raise ValueError(f"feature_maps takes a {paper.DIGIT_SIZE}x{paper.DIGIT_SIZE} digit, got shape {x.shape[1:]}")
    maps = OrderedDict(input=_as_seen(x[0]))
    with model.guard.reading():  # the truncated network is not the model's own: exclude fit by hand
        for k, name in enumerate(MAP_LAYERS, start=1):
            layers = model.layers[:k]
            # a bf16 model's layers round their outputs (BF16LeNet5): its maps are the ones it computes
            specs = [dict(layer.spec(model.params), round=model.precision == "bf16") for layer in layers]
            net = _core.Network(INPUT_SHAPE, specs)
            maps[name] = net.forward(x, True)[0]
    return maps


def _as_seen(digit):
    """The (32, 32) float32 input the engine makes of a (28, 28) digit: paper.py's mapping of the pixels
    (uint8 0-255 or floats in [0, 1]) and the 2-pixel background border."""
    p = digit / np.float32(255) if digit.dtype == np.uint8 else digit.astype(np.float32)
    seen = np.full((paper.INPUT_SIZE, paper.INPUT_SIZE), paper.INPUT_BACKGROUND, dtype=np.float32)
    inside = slice(paper.INPUT_BORDER, -paper.INPUT_BORDER)
    seen[inside, inside] = p * np.float32(paper.INPUT_INK - paper.INPUT_BACKGROUND) + np.float32(paper.INPUT_BACKGROUND)
    return seen


def draw_maps(model, image, path, title=None):
    """Draw the digit's feature_maps to path (PNG; returns path): the input, C1's six 5x5 kernels, then one
    row per layer with each of its maps, every map on its own gray scale (the paper's figures: what
    lights up is where the map's feature is). title: a line above it (default: the model's variant and its
    answer). FileNotFoundError when path's folder does not exist (checked first); ImportError without
    matplotlib."""
    path = plotting.check_png_path(path)
    plt = plotting.pyplot()
    maps = feature_maps(model, image)
    kernels = model.params["c1.weight"][:, 0]
    proba = model.predict_proba(maps["input"][None, None], normalized=True)[0]
    if title is None:
        title = f"{model.variant} LeNet-5: {int(proba.argmax())} ({proba.max():.1%})"
    rows = [("input", [maps["input"]]), ("C1 kernels", list(kernels))]
    rows += [(name.upper(), list(maps[name])) for name in MAP_LAYERS]
    columns = max(len(images) for _, images in rows)
    fig, axes = plt.subplots(len(rows), columns, figsize=(columns * 0.62, len(rows) * 0.8 + 0.3), squeeze=False)
    for axes_row, (label, images) in zip(axes, rows):
        axes_row[0].set_title(label, loc="left", fontsize=8)
        for ax in axes_row[len(images):]:
            ax.set_axis_off()
        for ax, picture in zip(axes_row, images):
            ax.imshow(picture, cmap="gray_r", interpolation="nearest")
            ax.set(xticks=[], yticks=[])
            for spine in ax.spines.values():  # a frame: a ReLU map that is mostly zero still shows its extent
                spine.set_color("lightgray")
    fig.suptitle(title, fontsize=9)
    # Fixed margins, not tight_layout: it squeezes the columns under the rows' labels unevenly
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=1 - 0.45 / fig.get_figheight(), wspace=0.1,
                        hspace=0.45)
    return plotting.save(fig, path)
