"""The lenet-fast command (also python -m lenet_fast): read digits from image files, train and evaluate on MNIST,
time the engine. With no command it reads the sample digits shipped with the package, so that the first run
after installing shows the whole path working: image files, the pretrained weights, the kernels.

A user's mistake (a missing or unreadable file, no MNIST folder, a damaged model file, bad arguments) ends the
command with one line "lenet-fast: error: ..." on stderr and exit status 1 (2 for bad arguments), not a
traceback: the library's documented exceptions carry messages written for the user already.
"""
import argparse
import json
import os
import sys

import lenet_fast

from . import maps, optim, paper, plotting, report, serve, storage
from .command import (PROG, Parser, dropout_share, execute, message, port, positive_float, positive_int,
                      probability, threads_option)
from ._version import __version__
from .datasets import load_mnist, mnist_files
from .images import expand_sources, in_place, read_digit, read_digits, sample_paths
from .model import ACTIVATIONS, INITS, LeNet5, load
from .numbers import read_number
from .pretrained import pretrained

VARIANTS = ("classic", "modern")

EPILOG = f"""examples:
  {PROG}                                       read the sample digits shipped with lenet_fast
  {PROG} predict photo.jpg scans/              your own digits: image files or folders of them
  {PROG} read zip.jpg                          the number (a row of digits) written in each image
  {PROG} train --data mnist/ --epochs 20 --out mine.npz
  {PROG} evaluate --data mnist/ --model mine.npz --report report/
  {PROG} show digit.png --out maps.png            the feature maps of C1 to S4 for one digit
  {PROG} serve --port 8000                     the HTTP service and its drawing page (docs/serving.md)
  {PROG} bench --quick                         lenet_fast beside NumPy, PyTorch and ONNX Runtime

MNIST folders hold the four official files (gzipped or not); --data defaults to LENET_FAST_DATA."""


def main(argv=None):
    """Run the command line argv (default sys.argv[1:]); returns the exit status."""
    args = _parser().parse_args(argv)  # --version and --help end here: they need nothing more
    if getattr(lenet_fast, "__file__", None) is None:
        # lenet_fast imported as a namespace package: a folder named lenet_fast in the current directory (a
        # clone of the source, say) has shadowed an editable install, whose modules still load one by one.
        print(f"{PROG}: error: the folder {os.path.abspath(list(lenet_fast.__path__)[0])} shadows the installed "
              "lenet_fast: run it from another folder", file=sys.stderr)
        return 1
    return execute(args)


def _parser():
    common = threads_option()
    parser = Parser(prog=PROG, parents=[common], epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
                     description="LeNet-5 on C/OpenMP kernels. Without a command: recognize the sample digits\n"
                                 "shipped with lenet_fast using the pretrained classic model, and show the build.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.set_defaults(run=_samples)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    p = commands.add_parser("predict", parents=[common], help="recognize the digit in each image file",
                            description="Print each image's digit and the model's confidence in it. Any size or "
                                        "format Pillow reads; dark ink on light paper or light on dark. A file "
                                        "that cannot be read is one line on stderr, the others are still read; "
                                        "exit status 1 if any failed.")
    p.add_argument("files", nargs="+", metavar="FILE", help="an image file, or a folder: its image files")
    _model_options(p, ensemble=True)
    p.add_argument("--json", action="store_true",
                   help='a JSON list of {"file", "digit", "confidence", "probabilities"} instead, '
                        '{"file", "error"} for a file that cannot be read')
    p.add_argument("--reject", type=probability, metavar="P",
                   help="refuse (digit -1, printed as '-') each image whose confidence is below P, and each "
                        "outlier the model knows of; 0 refuses the outliers only (docs/confidence.md)")
    where = p.add_mutually_exclusive_group()  # a Dask cluster (docs/dask.md): FILE may be a quoted glob too
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="read and recognize the files on the Dask cluster at ADDRESS (tcp://host:8786; needs "
                            "lenet_fast[dask], and the files at the same paths on every worker); with --out")
    where.add_argument("--workers", type=positive_int, metavar="N",
                       help="the same on a local Dask cluster of N worker processes, one thread each; with --out")
    p.add_argument("--out", metavar="TABLE", help="with --scheduler or --workers: write path, digit, confidence and "
                                                  "error per file here: Parquet for .parquet (needs pyarrow), else CSV")
    p.add_argument("--quiet", action="store_true", help="with --scheduler or --workers: no progress bar")
    p.set_defaults(run=_predict)

    p = commands.add_parser("read", parents=[common], help="read the number written in each image file",
                            description="Print each image's number: a row of handwritten digits (a ZIP code, an "
                                        "amount), read digit by digit. Files that cannot be read are reported "
                                        "on stderr and the others still read; exit status 1 if any failed.")
    p.add_argument("files", nargs="+", metavar="FILE", help="an image file, or a folder: its image files")
    _model_options(p)
    p.set_defaults(run=_read)

    p = commands.add_parser("train", parents=[common], help="train a model on MNIST and save it",
                            description="Train on the MNIST training set, report the test error after every "
                                        "epoch, save the model.")
    _data_option(p)
    p.add_argument("--variant", choices=VARIANTS, default="classic",
                   help="the paper's network or its modern form (default classic)")
    p.add_argument("--epochs", type=positive_int, required=True, metavar="N",
                   help="passes over the training set (the total, with --resume)")
    p.add_argument("--batch-size", type=positive_int, metavar="B",
                   help="images per update (default 1 for sdlm, 32 otherwise)")
    p.add_argument("--optimizer", choices=sorted(optim.OPTIMIZERS),
                   help="sdlm (the paper's method, classic's default up to batch 32), sgd (classic's default beyond), "
                        "adagrad, rmsprop, adam (modern's default) or adamw (docs/training.md)")
    p.add_argument("--lr", type=positive_float, metavar="RATE",
                   help="learning rate (by default sgd 0.001 on classic and 0.01 on modern, adam 0.001); for "
                        f"sdlm the first pass's epsilon (default {optim.SDLM_SCALE * paper.sdlm_epsilon(0):g}), "
                        "later passes following the paper's schedule")
    p.add_argument("--loss", choices=("map", "rbf", "xent", "hinge"),
                   help="map (classic's default), rbf, xent (modern's default) or hinge (docs/training.md#losses)")
    p.add_argument("--activation", choices=ACTIVATIONS, help="modern only: its activation (default relu)")
    p.add_argument("--dropout", type=dropout_share, metavar="P", default=0.0,
                   help="the share of C5's and F6's inputs dropped in training, in [0, 1) (default 0)")
    p.add_argument("--init", choices=INITS, help="the initialisation (default paper for classic, he for modern)")
    p.add_argument("--seed", type=int, default=0, help="initialisation and shuffling seed (default 0)")
    p.add_argument("--limit", type=positive_int, metavar="N", help="train on the first N training images only")
    p.add_argument("--out", required=True, metavar="FILE", help="where to save the trained model (.npz)")
    p.add_argument("--checkpoint", metavar="FILE", help="save the run's state here after every epoch")
    p.add_argument("--resume", metavar="FILE", help="continue the run saved in this checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress, only the result")
    p.add_argument("--plot", metavar="FILE", help="draw the training curves (loss, training and validation error "
                                                  "per epoch) to this PNG after training (needs matplotlib)")
    p.set_defaults(run=_train)

    p = commands.add_parser("evaluate", parents=[common], help="test error and confusion matrix on MNIST",
                            description="Classify the MNIST test set: the error rate and the confusion matrix.")
    _data_option(p)
    _model_options(p, ensemble=True)
    p.add_argument("--limit", type=positive_int, metavar="N", help="the first N test images only")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--report", metavar="DIR",
                   help="also write the report into this folder (made if missing): confusion_matrix.png, errors.png, "
                        "rejection.png, per_class.csv, report.json and index.html (needs matplotlib; "
                        "docs/pictures.md)")
    p.set_defaults(run=_evaluate)

    p = commands.add_parser("show", parents=[common], help="draw the feature maps of one digit",
                            description="Draw what the network makes of one digit, as the 1998 paper's figures: the "
                                        "input as the model sees it, C1's six kernels, and the feature maps of C1, "
                                        "S2, C3 and S4 (needs matplotlib).")
    p.add_argument("image", metavar="IMAGE", help="an image file of one digit (read as predict reads it)")
    _model_options(p)
    p.add_argument("--out", required=True, metavar="FILE", help="the PNG to write")
    p.set_defaults(run=_show)

    p = commands.add_parser("serve", parents=[common], help="the HTTP service and its drawing page",
                            description="Serve the model over HTTP until SIGTERM or Ctrl-C: POST /predict, POST "
                                        "/read, GET /healthz, GET /version, and at / a page to draw digits on "
                                        "(needs the [serve] extra; docs/serving.md).")
    p.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1: this "
                                                       "machine only; 0.0.0.0 for every interface)")
    p.add_argument("--port", type=port, default=8000, help="the TCP port (default 8000; 0: any free one)")
    p.add_argument("--max-body", type=positive_int, default=serve.MAX_BODY, metavar="BYTES",
                   help=f"the largest request body taken (default {serve.MAX_BODY:,}); larger ones get 413")
    p.add_argument("--max-pixels", type=positive_int, default=serve.MAX_PIXELS, metavar="N",
                   help=f"the most pixels an image may claim in its header (default {serve.MAX_PIXELS:,})")
    p.add_argument("--max-batch", type=positive_int, default=serve.MAX_BATCH, metavar="N",
                   help=f"the most images in one request, JSON or .npy (default {serve.MAX_BATCH:,})")
    _model_options(p)
    p.set_defaults(run=_serve)

    p = commands.add_parser("export", parents=[common], help="write a model as a standard ONNX graph",
                            description="Write the model as an ONNX graph (opset 17) for ONNX Runtime and other "
                                        "runtimes: its output is forward's, RBF distances (classic: the digit is "
                                        "their argmin) or logits (modern: argmax); needs pip install "
                                        "\"lenet_fast[onnx]\" (docs/export.md).")
    _model_options(p)
    p.add_argument("out", metavar="OUT.onnx", help="the file to write (its folder must exist)")
    p.add_argument("--pixels", action="store_true",
                   help="the graph takes (N, 28, 28) uint8 pixels 0-255 and pads and scales them itself, instead "
                        "of (N, 1, 32, 32) float32 already in the paper's range")
    p.set_defaults(run=_export)

    p = commands.add_parser("bench", parents=[common], help="lenet_fast against NumPy, PyTorch, ONNX Runtime",
                            description="The benchmark report: inference and training images/s of lenet_fast "
                                        "beside its NumPy reference and, when installed, PyTorch and ONNX Runtime "
                                        "(pip install \"lenet_fast[bench]\"), on the same network, input and "
                                        "threads (1 and 2, or --threads).",
                            deferred=_bench_arguments)
    p.set_defaults(run=_bench)
    return parser


def _model_options(p, ensemble=False):
    """--model FILE or --variant NAME (--model takes a variant's name too: _model); with ensemble, --variant
    ensemble too (the pretrained Ensemble)."""
    group = p.add_mutually_exclusive_group()
    group.add_argument("--model", metavar="FILE", help="a model saved by lenet-fast train or LeNet5.save"
                       f" ({' or '.join(VARIANTS)}: that pretrained model)")
    group.add_argument("--variant", choices=VARIANTS + (("ensemble",) if ensemble else ()),
                       help="the pretrained model of this variant (default classic)"
                            + ("; ensemble: the five pretrained modern models averaged" if ensemble else ""))


def _data_option(p):
    p.add_argument("--data", metavar="DIR", help="the MNIST folder (default: LENET_FAST_DATA)")


def _model(args, needs=None):
    """(model, description) for --model or --variant; --model classic or modern is that pretrained model
    unless a file of that name exists. needs: what the command does that an int8 model (lenet_fast.int8,
    which predicts and reads) cannot, for the ValueError such a file gets."""
    if args.model is not None and not (args.model in VARIANTS and not os.path.exists(args.model)):
        model = load(args.model)
        if needs and not isinstance(model, LeNet5):
            raise ValueError(f"{args.model} is an int8 model, which cannot {needs}: use the float32 (or bf16) "
                             "model it was quantized from; int8 models predict and read (lenet-fast predict, read)")
        return model, args.model
    variant = args.variant or args.model or "classic"
    return pretrained(variant), f"pretrained {variant}"


def _data_folder(args):
    """--data DIR, else LENET_FAST_DATA; ValueError when neither is given."""
    folder = args.data or os.environ.get("LENET_FAST_DATA")
    if not folder:
        raise ValueError("no MNIST folder: pass --data DIR or set LENET_FAST_DATA")
    return folder


def _mnist(args, kind):
    """load_mnist from --data DIR (else LENET_FAST_DATA), its errors in the command's terms."""
    folder = _data_folder(args)
    try:
        mnist_files(folder, kind)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{exc}: give the folder that holds MNIST's four files with --data DIR or "
                                "LENET_FAST_DATA") from None
    return load_mnist(folder, kind)


def _build_line():
    info = lenet_fast.build_info()
    return (f"lenet_fast {info['version']}: instruction set {info['isa']}, OpenMP {'on' if info['openmp'] else 'off'}, "
            f"{info['num_threads']} thread{'s' if info['num_threads'] != 1 else ''}")


def _samples(args):
    images, paths = read_digits(sample_paths())
    model = pretrained("classic")
    print("The sample digits shipped with lenet_fast, read by the pretrained classic LeNet-5:")
    _print_rows(_predictions(model, images, [p.name for p in paths]))
    print(_build_line())
    print(f"Your own digits: {PROG} predict FILE...; everything else: {PROG} --help")


def _predict(args):
    """Every file's row in the order given: good files' results on stdout, one line on stderr for each bad
    one (a file read_digit refuses, a missing path, a folder without image files); exit status 1 if any."""
    on_cluster = args.scheduler is not None or args.workers is not None
    if on_cluster != (args.out is not None) or (on_cluster and args.json):
        raise ValueError("--scheduler and --workers take --out TABLE (and no --json); --out is for them only")
    model, _ = _model(args)  # first: a bad --model ends the command before any file is read
    if on_cluster:
        return _predict_on_cluster(args, model)
    sources, bad_folders = expand_sources(args.files)  # a folder's own error: unreadable, or no image files
    images, paths, failures = read_digits(sources, errors="report")
    bad_files = {i: {"file": str(source), "error": message(error)} for i, source, error in failures}
    results = iter(_predictions(model, images, [str(p) for p in paths], args.reject))
    rows = in_place([bad_files[i] if i in bad_files else next(results) for i in range(len(sources))],
                    {i: [{"file": str(name), "error": message(error)} for name, error in errors]
                     for i, errors in bad_folders.items()})
    if args.json:
        _print_rows([row for row in rows if "error" in row])  # stderr still names every bad file
        print("[\n  " + ",\n  ".join(json.dumps(row) for row in rows) + "\n]")
    else:
        _print_rows(rows)
    return 1 if failures or bad_folders else 0


def _predict_on_cluster(args, model):
    """predict with --scheduler or --workers: the table to --out, each bad file's line on stderr, a summary on
    stdout; exit status 1 if any file failed."""
    from . import dask as on_dask  # only here: no other command loads dask
    with on_dask.cluster(scheduler=args.scheduler, workers=args.workers) as client:
        rows = on_dask.predict_files(args.files, model, out=args.out, client=client, reject=args.reject,
                                     progress=not args.quiet)
    failed = [row for row in rows if row["error"]]
    _print_rows([{"file": row["path"], "error": row["error"]} for row in failed])
    print(f"{len(rows) - len(failed):,} of {len(rows):,} files recognized; table written to {args.out}")
    return 1 if failed else 0


def _read(args):
    """Every file's number in the order given, on stdout; one line on stderr for each file that cannot be
    read (as _predict); exit status 1 if any."""
    model, _ = _model(args)
    sources, bad_folders = expand_sources(args.files)
    failed = 0
    for _, exc in (entry for errors in bad_folders.values() for entry in errors):
        failed += 1
        print(f"{PROG}: error: {message(exc)}", file=sys.stderr)
    width = max((len(str(source)) for source in sources), default=0)
    for source in sources:
        try:
            number = read_number(source, model)
        except (OSError, ValueError, ImportError) as exc:  # this file's problem: report it, read the others
            failed += 1
            print(f"{PROG}: error: {message(exc)}", file=sys.stderr)
            continue
        print(f"  {str(source):<{width}}  {number}", flush=True)
    return 1 if failed else 0


def _predictions(model, images, names, reject=None):
    """One {"file", "digit", "confidence", "probabilities"} row per image; digit -1 for an image refused by
    reject (model.predict's), its confidence still that of the likeliest class."""
    digits, probs = model.predict_with_proba(images, reject=reject)
    confidence = probs.max(axis=1)
    return [{"file": name, "digit": int(d), "confidence": round(float(c), 6),
             "probabilities": [round(float(p), 6) for p in row]}
            for name, d, c, row in zip(names, digits, confidence, probs)]


def _print_rows(rows):
    """The rows _predictions makes as aligned text on stdout (file, digit, confidence), and a row
    {"file", "error"} as an error line on stderr, in its place."""
    width = max((len(row["file"]) for row in rows if "error" not in row), default=0)
    for row in rows:
        if "error" in row:
            print(f"{PROG}: error: {row['error']}", file=sys.stderr)
        else:
            digit = "-" if row["digit"] < 0 else row["digit"]
            print(f"  {row['file']:<{width}}  {digit}  {row['confidence']:6.1%}")


def _train(args):
    for option, path in (("--out", args.out), ("--checkpoint", args.checkpoint)):  # now, not after the training
        if path is not None:
            storage.in_existing_folder(path, option)
    if args.activation is not None and args.variant != "modern":
        raise ValueError("--activation is for --variant modern: the classic network's squashing function is the "
                         "paper's")
    if args.plot is not None:  # the folder and matplotlib, both before training
        plotting.check_png_path(args.plot)
        plotting.pyplot()
    images, labels = _mnist(args, "train")
    images, labels = images[: args.limit], labels[: args.limit]
    test_images, test_labels = _mnist(args, "test")
    model = LeNet5(args.variant, seed=args.seed, activation=args.activation, dropout=args.dropout, init=args.init)
    name = args.optimizer or optim.default_name(args.variant, args.batch_size)
    history = model.fit(images, labels, epochs=args.epochs, batch_size=args.batch_size,
                        optimizer=_optimizer(name, args.lr), loss=args.loss, validation=(test_images, test_labels),
                        seed=args.seed, verbose=0 if args.quiet else 1, checkpoint=args.checkpoint,
                        resume=args.resume)
    model.save(args.out)
    if args.plot is not None:
        print(f"training curves drawn to {history.plot(args.plot)}")
    errors = int((model.predict(test_images) != test_labels).sum())
    print(f"test error {errors / len(test_labels):.2%} ({errors} of {len(test_labels):,} images); "
          f"{args.variant} model saved to {args.out}")


def _optimizer(name, lr):
    if name == "sdlm":
        return optim.SDLM(schedule=optim.PaperSchedule(optim.SDLM_SCALE if lr is None else lr / paper.sdlm_epsilon(0)))
    cls = optim.OPTIMIZERS[name]
    return cls() if lr is None else cls(lr=lr)


def _evaluate(args):
    if args.report is not None:
        report.check_folder(args.report)  # both before the work: a typo or no matplotlib ends it at once
        plotting.pyplot()
    images, labels = _mnist(args, "test")
    images, labels = images[: args.limit], labels[: args.limit]
    model, description = _model(args, needs="be evaluated (its loss is the float32 trainer's)")
    result = model.evaluate(images, labels)
    _print_evaluation(args, description, result)
    if args.report is not None:
        identity = (report.model_identity(model, file=args.model) if args.model is not None
                    else report.model_identity(model, pretrained=args.variant or "classic"))
        data = dict(report.data_identity(_data_folder(args)), images=len(labels), limit=args.limit)
        paths = report.write_report(model, images, labels, args.report, identity, data)
        # stderr under --json: stdout stays one JSON document
        print(f"report written to {paths['index.html']}", file=sys.stderr if args.json else sys.stdout)


def _print_evaluation(args, description, result):
    if args.json:
        record = result.as_dict()
        print(json.dumps({"model": description, "images": result.n, "errors": result.errors,
                          "error_rate": result.error, "accuracy": result.accuracy, "loss": result.loss,
                          "confusion": record["confusion"], "per_class_error": record["per_class_error"]}))
    else:
        print(f"{description} model on {result.n:,} MNIST test images: {result.summary()}")
        print(result.tables())


def _show(args):
    plotting.check_png_path(args.out)  # both before the work, as evaluate's report
    plotting.pyplot()
    model, _ = _model(args, needs="show feature maps")
    image = read_digit(args.image)
    print(f"feature maps of {args.image} drawn to {maps.draw_maps(model, image, args.out)}")


def _serve(args):
    serve.requirements()  # before the model loads: without the extra, one line naming it
    model, description = _model(args, needs="be served")
    serve.run(model, host=args.host, port=args.port, max_body=args.max_body, max_pixels=args.max_pixels,
              max_batch=args.max_batch, description=description)


def _export(args):
    model, description = _model(args, needs="be exported to ONNX")
    path = model.to_onnx(args.out, pixels=args.pixels)
    source = "(N, 28, 28) uint8 pixels" if args.pixels else "(N, 1, 32, 32) float32 in the paper's range"
    print(f"{description} model written to {path} as ONNX: {model.variant} network, input {source}")


def _bench_arguments(p):
    from . import bench  # here, not at the top: only the bench command loads the benchmark and its peers
    bench.add_arguments(p)


def _bench(args):
    from . import bench
    bench.run(args)
