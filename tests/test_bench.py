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
