"""The benchmark report (lenet_fast.bench): `lenet-fast bench --quick` end to end with the peers off (so that
it runs without torch or onnxruntime, as in CI), the table and JSON checked for sense; a peer that is absent
or disagrees is reported, never timed; the FLOP counts; and, where torch and onnxruntime are installed, that
they compute lenet_fast's numbers. Speed itself is never asserted.
"""
import argparse
import json
import math
import subprocess
import sys
import importlib.util
import types

import numpy as np
import pytest

from lenet_fast import bench, peers, reference, timing
from lenet_fast.datasets import synthetic_digits
from lenet_fast.model import LeNet5


def quick(tmp_path, *extra):
    result = subprocess.run([sys.executable, "-m", "lenet_fast", "bench", "--quick", "--engines", "lenet_fast",
                             "reference", "--json", tmp_path / "r.json", "--chart", tmp_path / "r.png", *extra],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout, json.loads((tmp_path / "r.json").read_text())


def test_quick_report_table_and_json(tmp_path):
    out, report = quick(tmp_path)
    rows = report["results"]
    want = {(v, "inference", b, t, e) for v in ("classic", "modern") for b in (1, 64) for t in (1, 2)
            for e in ("lenet_fast", "reference")}
    want |= {(v, "train", 32, t, e) for v in ("classic", "modern") for t in (1, 2) for e in ("lenet_fast", "reference")}
    assert {(r["variant"], r["task"], r["batch"], r["threads"], r["engine"]) for r in rows} == want
    for r in rows:
        assert math.isfinite(r["images_per_second"]) and r["images_per_second"] > 0
        assert r["images_per_second"] == pytest.approx(r["batch"] / r["seconds_per_batch"])
        assert len(r["repeats_s"]) == 3 and 0 < r["peak_share"] < 10
        if r["engine"] == "lenet_fast":
            assert r["lenet_fast_speedup"] == 1
        # every row of the JSON is a cell of the table, in its setting's row and its engine's column
        line = next(l for l in out.splitlines()
                    if l.startswith(f"| {r['variant']} | {r['task']} | {r['batch']} | {r['threads']} |"))
        cell = line.split(" | ")[5 + ["lenet_fast", "reference"].index(r["engine"])]
        assert cell.startswith(f"{r['images_per_second']:,.0f} (")
    assert set(report["peak"]["gflops"]) == {"1", "2"} and all(g > 0 for g in report["peak"]["gflops"].values())
    m = report["machine"]
    assert m["cpu"] and m["cores"] >= 1 and m["isa"] in ("avx512", "avx2", "baseline") and "numpy" in m["versions"]
    assert report["command"].startswith("lenet-fast bench --quick --engines lenet_fast reference")
    assert report["refused"] == {} and report["settings"]["quick"]
    assert [g["goal"].split(":")[0] for g in report["goals"]] == ["one image", "training at batch 32"]
    assert "| variant | task | batch | threads | lenet_fast us per batch | lenet_fast | reference |" in out
    assert "peak (numpy float32 1024^2 matrix product)" in out
    if importlib.util.find_spec("matplotlib"):
        assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert "no chart: drawing needs matplotlib" in out


def test_a_forced_blas_kernel_is_named(monkeypatch):
    """OPENBLAS_CORETYPE pins numpy's kernel (an AVX2 one on an AVX-512 CPU, say): the report says so, since
    the peak is then the kernel's, and gives the command that measures the machine's."""
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.delenv("OPENBLAS_L2_SIZE", raising=False)
    m = timing.machine()
    assert m["blas_environment"] == {"OPENBLAS_CORETYPE": "Haswell"}
    note = bench._blas_environment(m["blas_environment"])
    assert "forced by OPENBLAS_CORETYPE=Haswell" in note and "`env -u OPENBLAS_CORETYPE lenet-fast bench`" in note
    monkeypatch.delenv("OPENBLAS_CORETYPE")
    assert bench._blas_environment(timing.machine()["blas_environment"]) == ""


def args(**kw):
    defaults = dict(quick=True, json=None, chart=None, engines=None, variants=["classic"], batches=[3],
                    repeats=1, min_time=0.001, threads=1)
    defaults.update(kw)
    return argparse.Namespace(**defaults)


def test_an_absent_peer_is_reported_not_timed(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    report = bench.run(args(engines=["lenet_fast", "torch"]))
    assert "not installed" in report["refused"]["torch"]
    assert {r["engine"] for r in report["results"]} == {"lenet_fast"}
    assert "torch: not reported: not installed" in capsys.readouterr().out


def test_a_peer_that_disagrees_is_refused(monkeypatch):
    right = reference.forward
    monkeypatch.setattr(reference, "forward", lambda params, x, variant: right(params, x, variant) * 1.001)
    report = bench.run(args(engines=["lenet_fast", "reference"]))
    assert "off by" in report["refused"]["reference"]
    assert {r["engine"] for r in report["results"]} == {"lenet_fast"}


def test_the_agreement_check_can_fail():
    want = np.linspace(-3, 5, 40, dtype=np.float32)
    assert bench.agree(want + 1e-6, want, "x") is None
    assert bench.agree(want + 1e-2, want, "x") is not None
    assert bench.agree(want[:-1], want, "x") is not None


def test_flops_per_image():
    # docs/paper.md#architecture: C1 117,600; C3 150,000 (the table; 240,000 dense); C5 48,000; F6 10,080; RBF 840
    assert bench.flops_per_image("classic") == 2 * (117_600 + 150_000 + 48_000 + 10_080 + 840)
    assert bench.flops_per_image("modern") == 2 * (117_600 + 240_000 + 48_000 + 10_080 + 840)


@pytest.mark.skipif(not all(importlib.util.find_spec(m) for m in ("torch", "onnxruntime", "onnx")),
                    reason="needs torch, onnx and onnxruntime (lenet_fast[bench])")
@pytest.mark.parametrize("variant", ["classic", "modern"])
def test_peers_compute_lenet_fasts_numbers(variant):
    images, labels = synthetic_digits(16, seed=1)
    x = np.ascontiguousarray(reference.normalize_input(images), np.float32)
    e = bench.Engines(variant, ["lenet_fast", "reference", "torch", "onnxruntime"], x, labels.astype(np.int64))
    assert e.refused == {}
    assert e.engines == ["lenet_fast", "reference", "torch", "onnxruntime"]


def test_python_m_lenet_fast_bench_is_the_command(tmp_path, capsys):
    # a --json folder that does not exist is an error before any timing, in one line
    assert bench.main(["--json", str(tmp_path / "no" / "r.json")]) == 1
    assert capsys.readouterr().err.startswith("lenet-fast: error: --json")


@pytest.mark.parametrize("options", [dict(activation="elu"), dict(dropout=0.5)])
def test_the_peers_refuse_networks_they_do_not_build(options):
    model = LeNet5("modern", **options)
    for build in (peers.torch_model, peers.onnx_model):
        with pytest.raises(ValueError, match="default classic and modern networks only"):
            build(model)


# ---- the precision axis ---------------------------------------------------------------------------------


def calibration_digits(n=256):
    pixels, _ = synthetic_digits(n, seed=1)
    return pixels, np.ascontiguousarray(reference.normalize_input(pixels), np.float32)


def test_precision_rows_report_error_and_agreement(capsys):
    report = bench.run(args(engines=["lenet_fast", "lenet_fast-bf16"], variants=["classic", "modern"]))
    assert {r["engine"] for r in report["results"]} == {"lenet_fast", "lenet_fast-bf16"}
    for variant in ("classic", "modern"):
        f = report["precision"][variant]["lenet_fast-bf16"]
        # bf16 rounds every layer: an error well above float32's, well below a wrong network's
        assert 1e-4 < f["largest_error"] < 0.03 and f["class_agreement"] >= 0.95 and f["precision"] == "bf16"
    out = capsys.readouterr().out
    assert "| lenet_fast fp32 | lenet_fast bf16 |" in out
    assert "| classic | lenet_fast bf16 | bf16 |" in out


def test_the_precision_figures_can_fail():
    want = np.array([[1.0, 5.0, 2.0], [4.0, 0.5, 3.0]])
    assert bench.precision_error(want, want, "modern") == {"largest_error": 0.0, "class_agreement": 1.0}
    off = bench.precision_error(want[::-1], want, "modern")
    assert off["largest_error"] == pytest.approx(4.5 / 5) and off["class_agreement"] == 0.0
    assert bench.precision_error(want[::-1], want, "classic")["class_agreement"] == 0.0


def test_the_int8_row():
    images, labels = synthetic_digits(64, seed=2)
    x = np.ascontiguousarray(reference.normalize_input(images), np.float32)
    e = bench.Engines("modern", ["lenet_fast", "lenet_fast-int8"], x, labels.astype(np.int64), calibration_digits())
    f = e.precision["lenet_fast-int8"]
    assert 0 < f["largest_error"] < 0.2 and f["class_agreement"] >= 0.9


@pytest.mark.skipif(not all(importlib.util.find_spec(m) for m in ("onnxruntime", "onnx")),
                    reason="needs onnx and onnxruntime")
def test_onnxruntime_static_int8_is_reported_not_refused():
    images, labels = synthetic_digits(64, seed=2)
    x = np.ascontiguousarray(reference.normalize_input(images), np.float32)
    e = bench.Engines("classic", ["lenet_fast", "onnxruntime-int8"], x, labels.astype(np.int64), calibration_digits())
    assert e.refused == {} and e.engines == ["lenet_fast", "onnxruntime-int8"]
    f = e.precision["onnxruntime-int8"]
    # int8 moves the outputs far more than float32 rounding, yet classifies as fp32 does
    assert 1e-3 < f["largest_error"] < 0.5 and f["class_agreement"] >= 0.9
    assert e.forward("onnxruntime-int8", 1)(x[:3]).shape == (3, 10)


def fake_openvino(monkeypatch, chosen, scale):
    """OpenVINO replaced: its default "chooses" chosen and returns lenet_fast's outputs times scale; pinned
    to f32 it returns them exactly."""
    for name in ("openvino", "onnx"):
        module = types.ModuleType(name)
        module.__version__ = "fake"
        monkeypatch.setitem(sys.modules, name, module)

    def openvino_model(model, threads, precision=None):
        factor = 1.0 if precision == "f32" else scale
        return (lambda x: model.forward(x, normalized=True) * np.float32(factor)), precision or chosen
    monkeypatch.setattr(peers, "openvino_model", openvino_model)


def test_openvinos_default_is_labelled_with_its_precision(monkeypatch, capsys):
    fake_openvino(monkeypatch, "bf16", 1.004)
    report = bench.run(args(engines=["lenet_fast", "openvino-f32", "openvino"]))
    assert {r["engine"] for r in report["results"]} == {"lenet_fast", "openvino-f32", "openvino"}
    f = report["precision"]["classic"]["openvino"]
    assert f["precision"] == "bf16" and f["largest_error"] == pytest.approx(0.004, rel=1e-3)
    assert f["class_agreement"] == 1.0
    out = capsys.readouterr().out
    assert "| openvino f32 (pinned) | openvino default (bf16) |" in out
    assert "| classic | openvino default (bf16) | bf16 | 4.0e-03 | 100.0% |" in out


def test_openvino_pinned_to_f32_must_agree(monkeypatch):
    fake_openvino(monkeypatch, "f32", 1.0)
    right = peers.openvino_model
    monkeypatch.setattr(peers, "openvino_model",
                        lambda model, threads, precision=None: (lambda run: ((lambda x: run[0](x) * 1.01), run[1]))(
                            right(model, threads, precision)))
    report = bench.run(args(engines=["lenet_fast", "openvino-f32"]))
    assert "off by" in report["refused"]["openvino-f32"]
    assert {r["engine"] for r in report["results"]} == {"lenet_fast"}


@pytest.mark.skipif(not all(importlib.util.find_spec(m) for m in ("openvino", "onnx")), reason="needs openvino and onnx")
@pytest.mark.parametrize("precision", ["f32", None])
def test_openvino_computes_lenet_fasts_numbers(precision):
    images, _ = synthetic_digits(16, seed=1)
    x = np.ascontiguousarray(reference.normalize_input(images), np.float32)
    model = LeNet5("modern", seed=1)
    run, chosen = peers.openvino_model(model, 1, precision)
    assert chosen in ("f32", "bf16", "f16")
    got, want = run(x), model.forward(x, normalized=True)
    tolerance = bench.TOLERANCE if chosen == "f32" else 0.05  # bf16 or f16 where OpenVINO chooses it
    assert np.abs(got - want).max() <= tolerance * np.abs(want).max()
