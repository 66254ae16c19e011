"""The benchmark report: lenet_fast beside its NumPy reference, PyTorch, ONNX Runtime and OpenVINO, in one
process.

    lenet-fast bench [--quick] [--json FILE] [--chart FILE]       (or python -m lenet_fast.bench)

Every engine runs the same network (classic and modern LeNet-5, lenet_fast's pretrained weights, so that the
reduced-precision rows' class agreement is a trained network's; how the peers build
it: lenet_fast.peers) on the same input, (N, 1, 32, 32) float32 digits already in the paper's range, at
the same thread count. A peer is timed only after its outputs (and, for training, its gradients) agree
with lenet_fast's; one that disagrees is reported as refused, never timed. PyTorch, ONNX Runtime and
OpenVINO are optional (pip install "lenet_fast[bench]"); the report says which were absent.

The precision axis (docs/precision.md): lenet_fast's bf16 and int8 models (LeNet5.quantize), ONNX Runtime's
static int8 quantization (quantize_static) and OpenVINO, pinned to f32 and with its default precision (bf16
on CPUs with AVX512_BF16 or AMX), labelled with the precision it chose. The int8 engines calibrate on
CALIBRATION synthetic digits of another seed than the timed ones. OpenVINO pinned to f32 is an fp32 peer,
checked as the others; the reduced-precision rows are never refused for their numbers: the report gives each
one's largest output error relative to lenet_fast fp32's largest output and the share of the check digits
it classifies as lenet_fast fp32 does.

Timing (lenet_fast.timing, the harness the benchmarks/ scripts and suites share): for each setting the
engines run in turn, repeat after repeat (interleaved, so that the machine's load drifts over all of them
alike), each repeat timing as many calls as fill --min-time seconds after one untimed call, after a 20 ms
pause that lets the previous engine's idle threads stop spinning; the table gives the median. Inference is
a forward pass at batch 1, 64 and 1024; training is one step at batch 32 (forward, backward and an
SGD-with-momentum update: lenet_fast's trainer, the reference's backward and update, torch's
loss.backward() and optimizer.step()).

The machine's peak is measured in the same run: a large float32 matrix product through numpy at each
thread count, the fastest of 5. Share of peak = images/s * FLOPs per image / peak, FLOPs being twice the
multiply-adds of the convolutions, full layers and RBF (docs/paper.md#architecture; C3 by its table, though
the peers run it dense), three times that for a training step (forward, input gradients, weight
gradients). The reference's BLAS runs on one thread (threadpoolctl): OpenBLAS's idle threads spin after
each call and would take the core the next engine needs. The machine's load average is recorded: on a busy
machine, figures on more threads than the idle cores say little.
"""
import copy
import datetime
import json
import sys
import time

import numpy as np

from . import optim, paper, peers, plotting, reference, storage, timing
from .command import PROG, Parser, execute, positive_float, positive_int, threads_option
from .datasets import synthetic_digits
from .model import flops_per_image
from .pretrained import pretrained

ENGINES = ("lenet_fast", "reference", "torch", "onnxruntime", "lenet_fast-bf16", "lenet_fast-int8",
           "onnxruntime-int8", "openvino-f32", "openvino")
PEERS = ("torch", "onnxruntime", "openvino")  # the packages of other engines, whose versions the report records
# the modules each engine needs beyond lenet_fast's core
MODULES = {"torch": ("torch",), "onnxruntime": ("onnxruntime", "onnx"), "onnxruntime-int8": ("onnxruntime", "onnx"),
           "openvino-f32": ("openvino", "onnx"), "openvino": ("openvino", "onnx")}
# the reduced-precision engines: reported with their error and class agreement, never refused for them
REDUCED = ("lenet_fast-bf16", "lenet_fast-int8", "onnxruntime-int8", "openvino")
# column headings (the others are the engine's name); "openvino" gets the precision it chose
LABELS = {"lenet_fast-bf16": "lenet_fast bf16", "lenet_fast-int8": "lenet_fast int8",
          "onnxruntime-int8": "onnxruntime int8 (static)", "openvino-f32": "openvino f32 (pinned)"}
CALIBRATION = 256  # digits the int8 engines calibrate on
TRAINERS = ("lenet_fast", "reference", "torch")
VARIANTS = ("classic", "modern")
TRAIN_BATCH = 32
LR = 1e-5  # small: thousands of timed steps on one batch must not move the weights anywhere strange
PAUSE = 0.02  # seconds between two engines' timings: see timing.interleaved
TOLERANCE = 1e-4  # of the largest entry: far above float32 rounding, far below a wrong layer
# The speed goals (docs/performance.md#goals), for lenet_fast's classic network on 2 threads (the most the
# run has, when fewer).
GOALS = [
    dict(name="inference at batch 1024", task="inference", batch=1024, images_per_second=120_000),
    dict(name="one image", task="inference", batch=1, microseconds=20),
    dict(name="training at batch 32", task="train", batch=32, images_per_second=30_000),
]


# --- the machine's peak ----------------------------------------------------------------------------------


def matmul_peak(threads, size, repeats=5):
    """GFLOP/s of a size x size float32 matrix product through numpy on threads BLAS threads (the fastest of
    repeats: a peak, what the machine can do when nothing else runs), and whether the thread count was
    actually set."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, size, size), dtype=np.float32)
    with timing.blas_threads(threads) as limited:
        a @ b
        fastest = min(timing.elapsed(lambda: a @ b) for _ in range(repeats))
    return 2 * size**3 / fastest / 1e9, limited




# --- the engines ------------------------------------------------------------------------------------------


def available_peers(wanted):
    """(engines importable among wanted, {engine: why absent})."""
    found, absent = [], {}
    for name in wanted:
        try:
            for module in MODULES.get(name, ()):
                __import__(module)
            found.append(name)
        except ImportError as exc:
            absent[name] = f"not installed ({exc.name}); pip install \"lenet_fast[bench]\""
    return found, absent


def agree(got, want, what):
    """None when got matches want (lenet_fast's) within TOLERANCE of want's largest entry, else why not."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape:
        return f"{what}: shape {got.shape}, lenet_fast's {want.shape}"
    off = np.abs(got - want).max() / max(np.abs(want).max(), 1e-30)
    return None if off <= TOLERANCE else f"{what}: off by {off:.1e} of the largest entry"


def precision_error(got, want, variant):
    """A reduced-precision engine's outputs got against lenet_fast fp32's want: the largest error relative to
    want's largest entry, and the share of images given the same class (the smallest RBF distance for
    classic, the largest logit for modern)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    pick = np.argmin if variant == "classic" else np.argmax
    return {"largest_error": float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-30)),
            "class_agreement": float((pick(got, axis=1) == pick(want, axis=1)).mean())}


class Engines:
    """Each engine's forward and training step for one variant, and the check that it computes lenet_fast's
    numbers before it is timed."""

    def __init__(self, variant, engines, x_check, y_check, calibration=None):
        """calibration: (pixels, the same normalized), the int8 engines' calibration digits."""
        self.variant, self.engines = variant, list(engines)
        self.model = pretrained(variant)
        self.params = reference.with_centers(self.model.params, variant)
        self.refused = {}
        self.sessions = {}  # (engine, threads) -> its run function
        self.precision = {}  # reduced-precision engine -> precision_error's figures
        self.chosen = None  # the precision OpenVINO's default chose
        self._build_peers(calibration)
        want = self.model.forward(x_check, normalized=True)
        for name in self.engines[1:]:
            got = self.forward(name, 1)(x_check)
            if name in REDUCED:
                self.precision[name] = precision_error(got, want, variant)
                continue
            problem = agree(got, want, f"{name} {variant} output")
            if name == "torch" and problem is None:
                problem = self._check_torch_gradient(x_check, y_check)
            if problem:
                self.refused[name] = problem
        self.engines = [e for e in self.engines if e not in self.refused]

    def _build_peers(self, calibration):
        if "torch" in self.engines:
            import torch
            self.torch = torch
            self.torch_model = peers.torch_model(self.model)
            self.torch_loss = peers.torch_loss(self.variant)
        if "onnxruntime" in self.engines:
            self.onnx_bytes = peers.onnx_model(self.model)
        if "onnxruntime-int8" in self.engines:
            self.onnx_int8_bytes = peers.onnx_int8_model(self.model, calibration[1])
        if "lenet_fast-bf16" in self.engines:
            self.bf16 = self.model.quantize(dtype="bf16")
        if "lenet_fast-int8" in self.engines:
            self.int8 = self.model.quantize(calibration[0], dtype="int8")

    def _check_torch_gradient(self, x, y):
        grads, _ = self.model.gradient(x, y, normalized=True)
        self.torch_model.zero_grad()
        self.torch_loss(self.torch_model(self.torch.from_numpy(x)), self.torch.from_numpy(y)).backward()
        got = self.torch_model.gradients()
        for name, g in grads.items():
            problem = agree(got[name], g / len(x), f"torch {self.variant} gradient of {name}")
            if problem:
                return problem
        return None

    def set_peer_threads(self, threads):
        """The peers' own thread counts (lenet_fast's: timing.kernel_threads)."""
        if hasattr(self, "torch"):
            self.torch.set_num_threads(threads)

    def forward(self, name, threads):
        """A function of x: the engine's forward pass on threads threads."""
        if name == "lenet_fast":
            return lambda x: self.model.forward(x, normalized=True)
        if name == "lenet_fast-bf16":
            return lambda x: self.bf16.forward(x, normalized=True)
        if name == "lenet_fast-int8":
            return lambda x: self.int8.forward(x, normalized=True)
        if name == "reference":
            return lambda x: reference.forward(self.params, x, self.variant)
        if name == "torch":
            model, torch = self.torch_model, self.torch

            def run(x):
                with torch.inference_mode():
                    return model(torch.from_numpy(x)).numpy()
            return run
        if (name, threads) not in self.sessions:
            self.sessions[name, threads] = self._session(name, threads)
        return self.sessions[name, threads]

    def _session(self, name, threads):
        """The run function of an ONNX Runtime or OpenVINO engine on threads threads."""
        if name.startswith("openvino"):
            run, chosen = peers.openvino_model(self.model, threads, "f32" if name == "openvino-f32" else None)
            if name == "openvino":
                self.chosen = chosen
            return run
        session = peers.onnx_session(self.onnx_bytes if name == "onnxruntime" else self.onnx_int8_bytes, threads)
        return lambda x: session.run(None, {"x": x})[0]

    def train_step(self, name, x, y):
        """A function of no arguments: one training step of the engine on (x, y), on its own copy of the
        weights."""
        if name == "lenet_fast":
            model = copy.deepcopy(self.model)
            trainer, opt, loss = model.trainer(), optim.SGD(lr=LR, momentum=0.9), model.default_loss
            opt.bind(model.params_vector.size)
            return lambda: trainer.train(x, y, len(x), opt, loss, paper.MAP_J, False)
        if name == "reference":
            params = {k: v.copy() for k, v in self.params.items()}
            velocity = {k: np.zeros_like(v) for k, v in self.model.params.items()}
            return lambda: reference.sgd_step(params, velocity, x, y, self.variant, LR, 0.9)
        torch = self.torch
        model, loss_fn = peers.torch_model(self.model), self.torch_loss
        opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)

        def step():
            opt.zero_grad(set_to_none=True)
            loss_fn(model(xt), yt).backward()
            opt.step()
        return step


# --- the report -------------------------------------------------------------------------------------------


def run(args, out=None):
    """Measure, print the markdown report to out (default stdout), write --json and --chart; returns the
    results dict."""
    out = out or sys.stdout
    for option, path in (("--json", args.json), ("--chart", args.chart)):  # found now, not after the run
        if path is not None:
            storage.in_existing_folder(path, option)
    started = time.perf_counter()
    quick = args.quick
    threads_list = [args.threads] if getattr(args, "threads", None) else [1, 2]
    batches = args.batches or ([1, 64] if quick else [1, 64, 1024])
    repeats = args.repeats or (3 if quick else 7)
    min_time = args.min_time or (0.01 if quick else 0.1)
    variants = args.variants or list(VARIANTS)
    # lenet_fast first, always: the others are checked against it and measured relative to it
    engines, refused = available_peers([e for e in ENGINES if e == "lenet_fast" or e in (args.engines or ENGINES)])
    load_before = timing.load_average()

    peak_size = 1024 if quick else 2048
    peaks, blas_set = {}, True
    for t in threads_list:
        peaks[t], blas_set = matmul_peak(t, peak_size)

    n_max = max(batches + [TRAIN_BATCH])
    digits, labels = synthetic_digits(max(n_max, 64), seed=0)
    x_all = np.ascontiguousarray(reference.normalize_input(digits), np.float32)
    y_all = labels.astype(np.int64)
    calibration = None
    if any(e in engines for e in ("lenet_fast-int8", "onnxruntime-int8")):
        pixels, _ = synthetic_digits(CALIBRATION, seed=1)
        calibration = pixels, np.ascontiguousarray(reference.normalize_input(pixels), np.float32)
    results, precision = [], {}
    with timing.blas_threads(1) as reference_blas_limited:
        for variant in variants:
            e = Engines(variant, engines, x_all[:64], y_all[:64], calibration)
            for name, why in e.refused.items():
                refused[name] = why
            for name, figures in e.precision.items():
                precision.setdefault(variant, {})[name] = dict(
                    figures, precision=e.chosen if name == "openvino" else name.split("-")[-1])
            results += _measure(e, variant, batches, threads_list, x_all, y_all, repeats, min_time, peaks)

    report = {
        "command": command(args),
        "date": datetime.date.today().isoformat(),
        "machine": timing.machine([p for p in PEERS if any(p in MODULES.get(e, ()) for e in engines)]),
        "settings": {"quick": quick, "threads": threads_list, "batches": batches, "train_batch": TRAIN_BATCH,
                     "calibration_digits": CALIBRATION if calibration is not None else 0,
                     "repeats": repeats, "min_time_s": min_time, "input": "(N, 1, 32, 32) float32, paper range",
                     "reference_blas_threads": 1 if reference_blas_limited else "unknown"},
        "peak": {"matmul_size": peak_size, "blas_threads_set": blas_set,
                 "gflops": {str(t): round(g, 2) for t, g in peaks.items()}},
        "flops_per_image": {v: flops_per_image(v) for v in variants},
        "refused": refused,
        "precision": precision,
        "results": results,
        "goals": _goals(results, threads_list),
        "seconds": round(time.perf_counter() - started, 1),
        "load_average": {"before": load_before, "after": timing.load_average()},
    }
    print(markdown(report), file=out)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
            f.write("\n")
        print(f"\nresults written to {args.json}", file=out)
    if args.chart:
        print(chart(report, args.chart), file=out)
    return report


def command(args):
    """The lenet-fast command line that repeats this run."""
    words = ["lenet-fast bench"]
    for option in ("quick", "threads", "engines", "variants", "batches", "repeats", "min_time", "json", "chart"):
        value = getattr(args, option, None)
        if value is True:
            words.append("--" + option)
        elif value:
            words.append(f"--{option.replace('_', '-')} " + (" ".join(map(str, value)) if isinstance(value, list) else str(value)))
    return " ".join(words)


def _measure(e, variant, batches, threads_list, x_all, y_all, repeats, min_time, peaks):
    rows = []
    flops = flops_per_image(variant)
    for batch in batches:
        x = x_all[:batch]
        for t in threads_list:
            fns = {name: (lambda f=e.forward(name, t): f(x)) for name in e.engines}
            times = _interleaved(e, t, fns, repeats, min_time)
            rows += _rows(variant, "inference", batch, t, times, flops, peaks[t])
    x, y = x_all[:TRAIN_BATCH], y_all[:TRAIN_BATCH]
    for t in threads_list:
        fns = {name: e.train_step(name, x, y) for name in e.engines if name in TRAINERS}
        times = _interleaved(e, t, fns, repeats, min_time)
        rows += _rows(variant, "train", TRAIN_BATCH, t, times, 3 * flops, peaks[t])
    return rows


def _interleaved(e, threads, fns, repeats, min_time):
    """name -> seconds per call of fns[name] in each repeat, every engine on threads threads."""
    with timing.kernel_threads(threads):
        e.set_peer_threads(threads)
        measures = {name: (lambda fn=fn: timing.per_call(fn, min_time)) for name, fn in fns.items()}
        return timing.interleaved(measures, repeats, PAUSE)


def _rows(variant, task, batch, threads, times, flops, peak):
    med = {name: timing.median(ts) for name, ts in times.items()}
    rows = []
    for name, s in med.items():
        ips = batch / s
        rows.append({"variant": variant, "task": task, "batch": batch, "threads": threads, "engine": name,
                     "seconds_per_batch": s, "images_per_second": ips,
                     "lenet_fast_speedup": s / med["lenet_fast"], "peak_share": ips * flops / (peak * 1e9),
                     "repeats_s": [round(v, 9) for v in times[name]]})
    return rows


def _goals(results, threads_list):
    out, threads = [], min(2, max(threads_list))
    for g in GOALS:
        row = next((r for r in results if r["engine"] == "lenet_fast" and r["variant"] == "classic"
                    and r["task"] == g["task"] and r["batch"] == g["batch"] and r["threads"] == threads), None)
        if row is None:
            continue
        if "microseconds" in g:
            got = row["seconds_per_batch"] * 1e6
            out.append({"goal": f"{g['name']}: at most {g['microseconds']} us ({threads} threads)",
                        "measured": f"{got:.1f} us", "met": got <= g["microseconds"]})
        else:
            got = row["images_per_second"]
            out.append({"goal": f"{g['name']}: at least {g['images_per_second']:,} images/s ({threads} threads)",
                        "measured": f"{got:,.0f} images/s", "met": got >= g["images_per_second"]})
    return out


def _cell(r):
    if r is None:
        return "-"
    ratio = "" if r["engine"] == "lenet_fast" else f"{r['lenet_fast_speedup']:.1f}x; "
    return f"{r['images_per_second']:,.0f} ({ratio}{100 * r['peak_share']:.1f}%)"


def _blas_environment(variables):
    if not variables:
        return ""
    names = " ".join(f"-u {k}" for k in variables)
    return (", forced by " + ", ".join(f"{k}={v}" for k, v in variables.items()) + ": the peak is that "
            f"kernel's and may be below the machine's (`env {names} lenet-fast bench` measures the machine)")


def markdown(report):
    m = report["machine"]
    lines = [
        f"# lenet_fast benchmark, {report['date']}",
        "",
        f"- machine: {m['cpu']}, {m['usable_cores']} usable cores of {m['cores']}; lenet_fast path {m['isa']}, "
        f"OpenMP {'on' if m['openmp'] else 'off'}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
        f"- numpy BLAS: {m['blas']}" + _blas_environment(m.get("blas_environment")),
        f"- peak (numpy float32 {report['peak']['matmul_size']}^2 matrix product): "
        + ", ".join(f"{g:.1f} GFLOP/s on {t} thread{'s' if t != '1' else ''}" for t, g in report["peak"]["gflops"].items())
        + ("" if report["peak"]["blas_threads_set"] else " (BLAS threads unknown: threadpoolctl not installed)"),
        "- FLOPs per image: " + ", ".join(f"{v} {f:,}" for v, f in report["flops_per_image"].items())
        + " (forward; a training step counts 3 times that)",
        f"- command: `{report['command']}`; medians of {report['settings']['repeats']} interleaved repeats; "
        f"reference BLAS threads: {report['settings']['reference_blas_threads']}",
    ]
    engines = [e for e in ENGINES if any(r["engine"] == e for r in report["results"])]
    lines += [
        "",
        "Cells: images/s (how many times faster lenet_fast is; share of the peak).",
        "",
        "| variant | task | batch | threads | lenet_fast us per batch | "
        + " | ".join(label(e, report) for e in engines) + " |",
        "| --- | --- | ---: | ---: | ---: |" + " ---: |" * len(engines),
    ]
    settings = {}
    for r in report["results"]:
        settings.setdefault((r["variant"], r["task"], r["batch"], r["threads"]), {})[r["engine"]] = r
    for (variant, task, batch, threads), by_engine in settings.items():
        cells = [_cell(by_engine.get(e)) for e in engines]
        lines.append(f"| {variant} | {task} | {batch} | {threads} "
                     f"| {by_engine['lenet_fast']['seconds_per_batch'] * 1e6:,.1f} | " + " | ".join(cells) + " |")
    precision = report.get("precision", {})
    if precision:
        lines += ["", "Reduced precision against lenet_fast fp32, on the 64 check digits: the largest output error "
                  "relative to fp32's largest output, and the share of digits given fp32's class.", "",
                  "| variant | engine | precision | largest error | class agreement |", "| --- | --- | --- | ---: | ---: |"]
        for variant, by_engine in precision.items():
            for name, f in by_engine.items():
                lines.append(f"| {variant} | {label(name, report)} | {f['precision']} | {f['largest_error']:.1e} "
                             f"| {100 * f['class_agreement']:.1f}% |")
    if report["goals"]:
        lines += ["", "| goal (lenet_fast, classic) | measured | met |", "| --- | ---: | --- |"]
        lines += [f"| {g['goal']} | {g['measured']} | {'yes' if g['met'] else 'no'} |" for g in report["goals"]]
    load = report["load_average"]
    if load["before"] is not None and load["before"] > 0.5:
        lines.append(f"\nThe machine was not idle (1-minute load average {load['before']} at the start, "
                     f"on {m['usable_cores']} cores): other processes took cores, and figures on more "
                     "threads than the idle cores are low by an unknown amount.")
    for name, why in report["refused"].items():
        lines.append(f"\n{name}: not reported: {why}")
    return "\n".join(lines)


def label(engine, report):
    """An engine's column heading: OpenVINO's default with the precision it chose; lenet_fast and ONNX Runtime
    as "... fp32" in a report with reduced-precision rows."""
    if engine == "openvino":
        chosen = {f["precision"] for v in report.get("precision", {}).values() for e, f in v.items() if e == engine}
        return f"openvino default ({'/'.join(sorted(chosen)) or '?'})"
    if engine in ("lenet_fast", "onnxruntime") and report.get("precision"):
        return engine + " fp32"
    return LABELS.get(engine, engine)


def chart(report, path):
    """Writes a PNG of images/s against batch size per engine (inference, each variant, the most threads);
    returns a line to print."""
    try:
        plt = plotting.pyplot()
    except ImportError as exc:
        return f"no chart: {exc}; {path} not written"
    rows = [r for r in report["results"] if r["task"] == "inference"]
    variants = sorted({r["variant"] for r in rows}, key=VARIANTS.index)
    fig, axes = plt.subplots(1, len(variants), figsize=(6 * len(variants), 4.5), squeeze=False)
    colors = dict(zip(ENGINES, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for ax, variant in zip(axes[0], variants):
        for engine in ENGINES:
            for t in report["settings"]["threads"]:
                pts = sorted((r["batch"], r["images_per_second"]) for r in rows
                             if r["variant"] == variant and r["engine"] == engine and r["threads"] == t)
                if pts:
                    ax.plot(*zip(*pts), marker="o", color=colors[engine], linestyle="-" if t == max(report["settings"]["threads"]) else "--",
                            label=f"{label(engine, report)}, {t} thread{'s' if t != 1 else ''}")
        ax.set(xscale="log", yscale="log", xlabel="batch size", ylabel="images/s", title=f"LeNet-5 {variant}, inference")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"{report['machine']['cpu']}, {report['date']}", fontsize=9)
    fig.tight_layout()
    fig.set_dpi(110)
    plotting.save(fig, path)
    return f"chart written to {path}"


def add_arguments(p):
    """The options of lenet-fast bench and python -m lenet_fast.bench."""
    p.add_argument("--quick", action="store_true", help="a short run (under 30 s): batches 1 and 64, 3 repeats")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.add_argument("--chart", metavar="FILE", help="write a PNG chart of images/s against batch (needs matplotlib)")
    p.add_argument("--engines", nargs="+", choices=ENGINES, metavar="ENGINE",
                   help=f"engines to compare (default: all installed of {', '.join(ENGINES)})")
    p.add_argument("--variants", nargs="+", choices=VARIANTS, help="networks (default both)")
    p.add_argument("--batches", nargs="+", type=positive_int, metavar="N",
                   help="inference batch sizes (default 1 64 1024)")
    p.add_argument("--repeats", type=positive_int, metavar="N", help="interleaved repeats per setting (default 7)")
    p.add_argument("--min-time", type=positive_float, metavar="S", help="seconds each timing fills (default 0.1)")


def main(argv=None):
    """python -m lenet_fast.bench [options]: the same as lenet-fast bench [options]."""
    parser = Parser(prog=f"{PROG} bench", parents=[threads_option()], description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.set_defaults(run=run)
    return execute(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
