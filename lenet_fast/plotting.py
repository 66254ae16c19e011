"""What every picture lenet_fast draws shares: matplotlib loaded on demand, on its Agg backend, and a figure
saved to a file and closed.

matplotlib is the [plot] extra, not a dependency: it is imported here only inside the functions, so that
importing lenet_fast (and predicting, training, evaluating without pictures) never loads it.
"""
from . import storage

PLOT_EXTRA = 'pip install "lenet_fast[plot]"'


def pyplot():
    """matplotlib.pyplot on the Agg backend (files only: no display is needed or opened). ImportError naming
    the [plot] extra when matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError(f"drawing needs matplotlib: {PLOT_EXTRA}") from None
    matplotlib.use("Agg")  # before pyplot's import picks an interactive backend
    import matplotlib.pyplot as plt
    return plt


def check_png_path(path):
    """path as a str, after checking that its folder exists (storage.in_existing_folder), before the work
    that makes the picture."""
    return storage.in_existing_folder(path)


def save(fig, path):
    """Write fig to path as PNG and close it (pyplot keeps every open figure alive otherwise); returns path."""
    plt = pyplot()
    try:
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return path
