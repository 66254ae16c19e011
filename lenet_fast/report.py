"""The evaluation report: a folder of pictures and records of a classifier on labelled digits, and a static
page showing them together (what `lenet-fast evaluate --report OUT/` writes).

    write_report(model, images, labels, "report/", model_info=model_identity(model, file="mine.npz"),
                 data_info=data_identity("mnist/"))

Files: confusion_matrix.png, errors.png (the worst-misclassified digits), rejection.png (error against the
share refused), per_class.csv, report.json and index.html (relative links, no external resources: it opens
from the folder, offline). Each picture has its own public function.
"""
import csv
import hashlib
import html
import json
import os

import numpy as np

from . import calibration, datasets, evaluation, plotting
from ._version import __version__

FILES = ("confusion_matrix.png", "errors.png", "rejection.png", "per_class.csv", "report.json", "index.html")
WORST = 24  # errors.png's digits: four rows of six stay legible at the page's width
_CHUNK = 1 << 20


def sha256(path):
    """The SHA-256 of a file's bytes, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def model_identity(model, file=None, pretrained=None):
    """What report.json says of the model: its variant ("ensemble" for an Ensemble) and options, and either
    the file it was loaded from (absolute path and SHA-256) or "pretrained NAME"."""
    identity = {"variant": getattr(model, "variant", "ensemble")}
    if hasattr(model, "options"):
        identity["options"] = model.options()
    if file is not None:
        identity.update(file=os.path.abspath(file), sha256=sha256(file))
    if pretrained is not None:
        identity["pretrained"] = f"pretrained {pretrained}"
    return identity


def data_identity(folder, kind="test"):
    """What report.json says of the data: the MNIST folder (absolute) and the SHA-256 of each of its kind's
    files (FileNotFoundError when they are not there)."""
    return {"folder": os.path.abspath(folder), "kind": kind,
            "files": {os.path.basename(f): sha256(f) for f in datasets.mnist_files(folder, kind)}}


def check_folder(folder):
    """folder as a str, after checking that a report can be written there: NotADirectoryError when the path,
    or the nearest part of it that exists, is not a folder. Nothing is made: callers check before the work
    and write_report makes the folder."""
    folder = os.fspath(folder)
    probe = os.path.abspath(folder)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        where = "" if probe == os.path.abspath(folder) else f": {probe} is a file"
        raise NotADirectoryError(f"{folder} is not a folder{where} (a report is a folder of files)")
    return folder


def write_report(model, images, labels, folder, model_info=None, data_info=None):
    """Evaluate model (a LeNet5 or an Ensemble) on images, (N, 28, 28) pixels, and their labels, and write the
    FILES into folder (made, with its parents, if missing; check_folder's error otherwise). model_info and
    data_info (dicts, e.g. from model_identity and data_identity) go into report.json as they are. Returns
    {file name: path}."""
    folder = check_folder(folder)
    plotting.pyplot()  # no matplotlib: said before the evaluation, not after it
    result = model.evaluate(images, labels)  # first: bad images or labels leave no folder behind
    proba = model.predict_proba(images)
    labels = np.asarray(labels)
    os.makedirs(folder, exist_ok=True)
    paths = {name: os.path.join(folder, name) for name in FILES}
    draw_confusion(result, paths["confusion_matrix.png"])
    draw_errors(images, labels, proba, paths["errors.png"])
    curve = calibration.rejection_curve(model, images, labels)
    draw_rejection(curve, paths["rejection.png"])
    write_per_class(result, paths["per_class.csv"])
    record = {"lenet_fast": __version__, "model": model_info or model_identity(model),
              "data": data_info or {}, **result.as_dict()}
    with open(paths["report.json"], "w") as f:
        json.dump(record, f)
    with open(paths["index.html"], "w", encoding="utf-8") as f:
        f.write(index_page(record))
    return paths


def draw_confusion(result, path):
    """The confusion matrix of an evaluation.Evaluation as a PNG (returns path): counts in each cell, shaded
    by their logarithm so that the few errors show beside the diagonal's thousands."""
    plt = plotting.pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    confusion = result.confusion
    ax.imshow(np.log1p(confusion), cmap="Blues")
    top = np.log1p(confusion.max())
    for (t, p), n in np.ndenumerate(confusion):
        if n:
            ax.text(p, t, str(n), ha="center", va="center", fontsize=7,
                    color="white" if np.log1p(n) > 0.6 * top else "black")
    ax.set(xticks=range(evaluation.CLASSES), yticks=range(evaluation.CLASSES), xlabel="predicted digit",
           ylabel="true digit", title=f"{result.n:,} digits: error {result.error:.2%} ({result.errors} wrong)")
    fig.tight_layout()
    return plotting.save(fig, path)


def worst_errors(labels, proba, count=WORST):
    """The indices of the misclassified images, the surest wrong answer first (by the probability of the
    wrong class chosen), at most count of them."""
    predicted = proba.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    order = np.argsort(-proba[wrong, predicted[wrong]], kind="stable")
    return wrong[order][:count]


def draw_errors(images, labels, proba, path, count=WORST):
    """The worst_errors digits as a PNG (returns path): each with its true label, the answer and the
    confidence in it. images: (N, 28, 28) pixels; proba: the model's predict_proba of them."""
    plt = plotting.pyplot()
    chosen = worst_errors(labels, proba, count)
    columns = 6
    rows = max(1, -(-len(chosen) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.1, rows * 1.3), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, i in zip(axes.flat, chosen):
        ax.imshow(images[i], cmap="gray_r", interpolation="nearest")
        guess = int(proba[i].argmax())
        ax.set_title(f"{int(labels[i])} as {guess}\n{proba[i, guess]:.0%}", fontsize=8)
    if not len(chosen):
        axes.flat[0].text(0.5, 0.5, "no errors", ha="center", va="center")
    fig.suptitle("the surest mistakes: true digit as predicted, confidence", fontsize=9)
    fig.tight_layout()
    return plotting.save(fig, path)


def draw_rejection(curve, path):
    """A calibration.RejectionCurve as a PNG (returns path): the error among the accepted digits against the
    share refused (refusing the least confident first)."""
    plt = plotting.pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    ax.step(curve.refused * 100, curve.errors * 100, where="post")
    # The curve runs to 100% refused; what matters is the start, up to where no error is left
    clean = np.flatnonzero(curve.errors == 0)
    end = 100 * curve.refused[clean[0]] if len(clean) else 100.0
    ax.set(xlabel="refused (% of digits)", ylabel="error among the accepted (%)",
           title="error against rejection", xlim=(0, min(100.0, max(5.0, 1.1 * end))))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return plotting.save(fig, path)


def write_per_class(result, path):
    """per_class.csv: digit, images, errors, error (each digit's share wrong; empty for a digit with no
    image). Returns path."""
    counts = result.confusion.sum(axis=1)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["digit", "images", "errors", "error"])
        for d in range(evaluation.CLASSES):
            e = result.per_class_error[d]
            writer.writerow([d, int(counts[d]), int(counts[d] - result.confusion[d, d]),
                             "" if np.isnan(e) else f"{e:.6f}"])
    return path


def index_page(record):
    """index.html for a report.json record: the summary, the three pictures and links to the records."""
    model = html.escape(json.dumps(record["model"]))
    data = html.escape(json.dumps(record["data"]))
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>lenet_fast evaluation report</title>
<style>body {{ font-family: sans-serif; max-width: 60em; margin: 1em auto; }} img {{ max-width: 100%; }}
code {{ word-break: break-all; }}</style></head>
<body>
<h1>Evaluation report</h1>
<p>{record["n"]:,} digits: error {record["error"]:.2%} ({record["errors"]} wrong), accuracy
{record["accuracy"]:.2%}, mean loss {record["loss"]:.4g}.</p>
<p>Model: <code>{model}</code><br>Data: <code>{data}</code><br>lenet_fast {html.escape(record["lenet_fast"])}</p>
<h2>Confusion matrix</h2>
<img src="confusion_matrix.png" alt="confusion matrix">
<h2>The surest mistakes</h2>
<img src="errors.png" alt="the worst-misclassified digits">
<h2>Error against rejection</h2>
<img src="rejection.png" alt="error against the share refused">
<p>Records: <a href="per_class.csv">per_class.csv</a> (each digit's error),
<a href="report.json">report.json</a> (everything above).</p>
</body>
</html>
"""
