"""How far ONNX Runtime's output of an exported model (lenet_fast.export) is from model.forward: the largest
absolute difference, the largest difference over 1 + |forward| (the tolerance's measure: absolute near 0,
relative for the large outputs), the same measure of forward itself against the float64 NumPy reference,
and the predictions that differ, on MNIST's 10,000 test digits, for both pretrained models and untrained
models of every option (the tolerance docs/export.md quotes and tests/test_export.py asserts).

    python benchmarks/export_tolerance.py --data MNIST_FOLDER [--out FILE.md]

Needs onnx and onnxruntime (pip install "lenet_fast[onnx]"). Prints a Markdown table; --out writes it with
the command, date, machine and the packages' versions.
"""
import argparse
import datetime
import json
import sys

import numpy as np

from lenet_fast import LeNet5, paper, pretrained, reference, timing
from lenet_fast.datasets import load_mnist

UNTRAINED = [("modern", dict(activation=a)) for a in ("relu", "leaky_relu", "elu", "tanh", "sigmoid")] + [
    ("modern", dict(dropout=0.5, init="xavier")), ("classic", dict(dropout=0.5)), ("classic", dict(init="he"))]


def differences(model, images, pixels):
    """(largest |onnx - forward|, largest |onnx - forward| / (1 + |forward|), the same measure of forward
    against the float64 reference, predictions that differ) on images."""
    import onnxruntime as ort

    session = ort.InferenceSession(model.to_onnx(pixels=pixels), providers=["CPUExecutionProvider"])
    x = images if pixels else _normalized(images)
    got = session.run(None, {session.get_inputs()[0].name: x})[0].astype(np.float64)
    want = model.forward(images).astype(np.float64)
    params = {name: np.float64(a) for name, a in model.params.items()}
    if model.variant == "classic":
        params["rbf.centers"] = paper.rbf_centers(np.float64)
    exact = reference.forward(params, reference.normalize_input(images).astype(np.float64), model.variant,
                              model.activation)
    pick = np.argmin if model.variant == "classic" else np.argmax
    return (np.abs(got - want).max(), _mixed(got, want), _mixed(want, exact),
            int((pick(got, 1) != pick(want, 1)).sum()))


def _mixed(a, b):
    """The largest |a - b| / (1 + |b|): the tolerance's measure, absolute below 1 and relative above."""
    return (np.abs(a - b) / (1 + np.abs(b))).max()


def _normalized(images):
    x = np.full((len(images), 1, 32, 32), -0.1, np.float32)
    x[:, 0, 2:30, 2:30] = images.astype(np.float32) * np.float32(1.275 / 255) - np.float32(0.1)
    return x


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="folder holding MNIST's test files")
    parser.add_argument("--out", help="write the table and its record here (Markdown)")
    args = parser.parse_args(argv)
    images, _ = load_mnist(args.data, "test")
    models = [(f"pretrained {v}", pretrained(v)) for v in ("classic", "modern")]
    models += [(f"untrained {v} {o}", LeNet5(v, seed=7, **o)) for v, o in UNTRAINED]
    lines = ["| model | input | largest absolute difference | largest difference / (1 + abs(forward)) | the "
             "same, forward against the float64 reference | predictions that differ |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    print("\n".join(lines), flush=True)
    for name, model in models:
        for pixels in (False, True):
            a, mixed, engine, wrong = differences(model, images, pixels)
            lines.append(f"| {name} | {'pixels' if pixels else 'x'} | {a:.2e} | {mixed:.2e} | {engine:.2e} | "
                         f"{wrong} of {len(images)} |")
            print(lines[-1], flush=True)
    if args.out:
        import onnx  # noqa: F401 (imported for timing.machine's versions)
        import onnxruntime  # noqa: F401

        command = " ".join(sys.argv).replace(args.data, "MNIST_FOLDER")  # the folder is this machine's
        with open(args.out, "w") as f:
            f.write(f"# ONNX export: ONNX Runtime against forward\n\nCommand: `python {command}`\n\n"
                    f"Date: {datetime.date.today()}. Machine: "
                    f"`{json.dumps(timing.machine(('onnx', 'onnxruntime')))}`\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
