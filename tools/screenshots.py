#!/usr/bin/env python3
"""Write the pictures the README shows: docs/images/report.png (the evaluation report's confusion matrix and
its surest mistakes side by side, as `lenet-fast evaluate --report` draws them), docs/images/maps.png (what
`lenet-fast show` draws for a sample digit) and, with --page, docs/images/page.png (lenet-fast serve's drawing
page in headless Chromium, a 7 drawn on it with pointer events, read, with its feature maps: taken by
tests/test_page.py, which this script runs). Made by the library's own functions and the page itself, not by
hand.

    python tools/screenshots.py [--data MNIST_DIR] [--out docs/images] [--page]

--data defaults to LENET_FAST_DATA, else the 1,000-digit subset in tests/data. Needs matplotlib
(pip install "lenet_fast[plot]"); --page needs the [serve] extra, Selenium, Chromium and its
driver (docs/serving.md#tests). Each file must stay under LIMIT bytes (the repository keeps them).
"""
import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import lenet_fast
from lenet_fast import maps, plotting, report

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 150_000
SAMPLE = 7  # the sample digit whose maps are drawn: both pretrained models read it right
PANELS = ("confusion_matrix.png", "errors.png")


def write_report_picture(model, data, out):
    """The report's PANELS, drawn by report.write_report into a scratch folder, composed side by side."""
    images, labels = lenet_fast.load_mnist(data, "test")
    plt = plotting.pyplot()
    with tempfile.TemporaryDirectory() as scratch:
        paths = report.write_report(model, images, labels, scratch)
        panels = [plt.imread(paths[name]) for name in PANELS]
    height = max(p.shape[0] for p in panels)
    width = sum(p.shape[1] for p in panels)
    dpi = 100
    fig = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    left = 0
    for panel in panels:  # each at its own pixel size: no resampling blur
        ax = fig.add_axes([left / width, 1 - panel.shape[0] / height, panel.shape[1] / width,
                           panel.shape[0] / height])
        ax.imshow(panel, interpolation="nearest")
        ax.set_axis_off()
        left += panel.shape[1]
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out


def write_page_picture(out):
    """The drawing page's picture, saved by tests/test_page.py after it drew a 7 (its LENET_FAST_PAGE_PICTURE);
    RuntimeError when that test fails or skips (no browser)."""
    out = Path(out).resolve()
    out.unlink(missing_ok=True)
    result = subprocess.run([sys.executable, "-m", "pytest", str(ROOT / "tests" / "test_page.py"), "-q", "-rs"],
                            env=dict(os.environ, LENET_FAST_PAGE_PICTURE=str(out)), capture_output=True, text=True,
                            timeout=300, cwd=tempfile.gettempdir())  # python -m puts its folder on sys.path
    if result.returncode != 0 or not out.exists():
        raise RuntimeError(f"tests/test_page.py did not take the page's picture:\n{result.stdout}{result.stderr}")
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=os.environ.get("LENET_FAST_DATA") or str(ROOT / "tests" / "data"),
                        help="the MNIST folder (default: LENET_FAST_DATA, else tests/data)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "images"), help="the folder to write (default "
                                                                             "docs/images)")
    parser.add_argument("--page", action="store_true", help="also the drawing page's picture (page.png), taken in "
                                                            "headless Chromium by tests/test_page.py")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = lenet_fast.pretrained("classic")
    written = [write_report_picture(model, args.data, out / "report.png"),
               maps.draw_maps(model, lenet_fast.read_digit(lenet_fast.sample_paths()[SAMPLE]), out / "maps.png")]
    if args.page:
        written.append(write_page_picture(out / "page.png"))
    status = 0
    for path in map(Path, written):
        size = path.stat().st_size
        print(f"{path}: {size:,} bytes")
        if size > LIMIT:
            print(f"{path} is over {LIMIT:,} bytes: too large to commit", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
