"""The same LeNet-5 in PyTorch, ONNX Runtime and OpenVINO, for the benchmark report (lenet_fast.bench):
built from a LeNet5's own parameters, so that every engine runs one network on one input. Optional: torch,
onnx, onnxruntime and openvino are imported only here and in lenet_fast.export, only when asked for (pip
install "lenet_fast[bench]").

The reduced-precision peers: ONNX Runtime's static int8 quantization of the exporter's graph
(onnx_int8_model) and OpenVINO compiling that graph with its default inference precision, which is bf16 on
CPUs with AVX512_BF16 or AMX and f32 elsewhere, or pinned to f32 (openvino_model).

The ONNX graph is lenet_fast's public exporter's (lenet_fast.export, whose docstring says how each layer is
written). The torch module, its input (N, 1, 32, 32) float32 already in the paper's range:
- C1, C3: torch.nn.functional.conv2d with lenet_fast's kernels. Classic C3 is wired by the paper's Table I:
  torch runs it, as the ONNX graph does, as a dense 16 x 6 convolution whose missing kernels are zero,
  multiplying by the 0/1 mask in every forward so that training keeps them zero. Dense does 240,000
  multiply-adds per image where the table needs 150,000: neither peer has a sparse-table convolution, and
  this is what a user of either would write.
- S2, S4 classic: the trainable subsampling, the 2x2 sum (average pooling times 4) times a per-map
  coefficient plus a per-map bias; modern: 2x2 max pooling.
- C5, F6 and the modern output: flatten, then torch's linear layer.
- Activations: the paper's squashing 1.7159 tanh(2a/3) (classic), ReLU (modern).
- Classic output: the squared Euclidean distances of F6's 84 outputs to the 10 fixed RBF centres, from
  the differences (as lenet_fast and the reference compute them).
Training (torch): the same losses (the paper's MAP criterion for classic, softmax cross-entropy for modern,
mean over the batch) and SGD with momentum.
"""
import numpy as np

from . import export, paper
from .export import dense_kernels
from .model import VARIANTS

SUM_POOL = 4.0  # a 2x2 sum is 4 times the 2x2 average


def _check_builds(model):
    """ValueError for a model these builders do not reproduce: only the two variants' default tables
    (no other activation, no dropout rows)."""
    if model.layers != VARIANTS[model.variant]:
        raise ValueError(f"the peers build the default classic and modern networks only, not {model!r}")


def torch_model(model):
    """A torch.nn.Module computing model.forward(x, normalized=True), its parameters copies of model's."""
    _check_builds(model)
    import torch
    import torch.nn.functional as F

    class LeNet5Torch(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.tables = {}  # conv layer name -> its connection table, for the table-wired C3
            for layer in model.layers:
                getattr(self, "_add_" + layer.kind)(layer, layer.name)

        def _add_conv(self, layer, n):
            w, mask = dense_kernels(model, n)
            self._param(n + ".weight", w)
            self._param(n + ".bias", model.params[n + ".bias"])
            if mask is not None:
                self.register_buffer(n + "_mask", torch.from_numpy(mask[:, :, None, None]))
                self.tables[n] = layer.table

        def _add_subsample(self, layer, n):
            if layer.pool == "trainable":
                self._param(n + ".coef", model.params[n + ".coef"])
                self._param(n + ".bias", model.params[n + ".bias"])

        def _add_full(self, layer, n):
            self._param(n + ".weight", np.asarray(model.params[n + ".weight"]).T)  # torch: (out, in)
            self._param(n + ".bias", model.params[n + ".bias"])

        def _add_rbf(self, layer, n):
            self.register_buffer("centers", torch.from_numpy(model.rbf_centers))

        def _param(self, name, value):
            self.register_parameter(name.replace(".", "_"),
                                    torch.nn.Parameter(torch.from_numpy(np.array(value, np.float32))))

        def p(self, name):
            return getattr(self, name.replace(".", "_"))

        def forward(self, x):
            for layer in model.layers:
                x = getattr(self, "_run_" + layer.kind)(layer, layer.name, x)
                if layer.act == "squash":
                    x = paper.SQUASH_A * torch.tanh(paper.SQUASH_S * x)
                elif layer.act == "relu":
                    x = F.relu(x)
            return x

        def _run_conv(self, layer, n, x):
            w = self.p(n + ".weight")
            if n in self.tables:
                w = w * getattr(self, n + "_mask")
            return F.conv2d(x, w, self.p(n + ".bias"))

        def _run_subsample(self, layer, n, x):
            if layer.pool == "max":
                return F.max_pool2d(x, 2)
            return F.avg_pool2d(x, 2) * (SUM_POOL * self.p(n + ".coef"))[:, None, None] \
                + self.p(n + ".bias")[:, None, None]

        def _run_full(self, layer, n, x):
            return F.linear(x.flatten(1), self.p(n + ".weight"), self.p(n + ".bias"))

        def _run_rbf(self, layer, n, x):
            return ((x[:, None, :] - self.centers[None]) ** 2).sum(-1)

        def gradients(self):
            """The parameters' gradients by lenet_fast's names, in its layouts."""
            out = {}
            for name in model.params:
                g = self.p(name).grad.numpy()
                layer = name.split(".")[0]
                if layer in self.tables and name.endswith(".weight"):
                    g = g[self.tables[layer]]  # dense kernels back to the table's packed order
                elif g.ndim == 2:
                    g = g.T  # full layers: torch's (out, in) to lenet_fast's (in, out)
                out[name] = g
            return out

    return LeNet5Torch()


def torch_loss(variant, j=paper.MAP_J):
    """The model's default loss in torch, the mean over the batch: MAP (classic) or cross-entropy."""
    import torch
    import torch.nn.functional as F

    if variant == "modern":
        return F.cross_entropy

    def map_loss(distances, labels):
        # y_D + log(exp(-j) + sum_i exp(-y_i)), the paper's eq. 9 (docs/paper.md#map-loss)
        wall = torch.full((len(distances), 1), -j, dtype=distances.dtype)
        picked = distances.gather(1, labels[:, None])[:, 0]
        return (picked + torch.logsumexp(torch.cat([wall, -distances], 1), 1)).mean()

    return map_loss


def onnx_model(model):
    """The network as an ONNX model (bytes): lenet_fast's exporter (lenet_fast.export), input "x"."""
    _check_builds(model)
    return export.export_onnx(model)


def onnx_session(model_bytes, threads):
    """An ONNX Runtime CPU session on threads intra-op threads (one inter-op: the graph is a chain)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle workers block instead of spinning: spinning ones keep a core after each run, and the engine timed
    # next (the engines take turns) would find it taken.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])


def onnx_int8_model(model, calibration):
    """The exporter's graph statically quantized to int8 by ONNX Runtime (bytes, input "x"), with ONNX
    Runtime's recommended settings for CPUs: pre-processed (quant_pre_process), QDQ format, weights QInt8
    per output channel, activations QUInt8 per tensor with min-max ranges from calibration, (N, 1, 32, 32)
    float32 digits in the paper's range."""
    import os
    import tempfile

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quant_pre_process, quantize_static

    class Digits(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"x": calibration[i:i + 64]} for i in range(0, len(calibration), 64)])

        def get_next(self):
            return next(self.batches, None)

    with tempfile.TemporaryDirectory() as folder:
        source, prepared, target = (os.path.join(folder, name) for name in ("fp32.onnx", "prepared.onnx", "int8.onnx"))
        with open(source, "wb") as f:
            f.write(onnx_model(model))
        # shapes inferred and the graph optimized first, as ORT advises (ONNX's shape inference: the shapes are
        # static but for N, so its symbolic one, which needs sympy, adds nothing)
        quant_pre_process(source, prepared, skip_symbolic_shape=True)
        quantize_static(prepared, target, Digits(), quant_format=QuantFormat.QDQ, per_channel=True,
                        weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8)
        with open(target, "rb") as f:
            return f.read()


def openvino_model(model, threads, precision=None):
    """(run, chosen): the exporter's graph compiled by OpenVINO for the CPU on threads inference threads;
    run(x) is its forward on (N, 1, 32, 32) float32 (any N), chosen the inference precision OpenVINO reports
    for the compiled model ("f32", "bf16", ...). precision None keeps OpenVINO's default; "f32" pins it."""
    import openvino

    core = openvino.Core()
    graph = core.read_model(onnx_model(model), b"")  # the graph's batch dimension is free ("N")
    config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
    if precision is not None:
        config["INFERENCE_PRECISION_HINT"] = precision
    compiled = core.compile_model(graph, "CPU", config)
    chosen = compiled.get_property("INFERENCE_PRECISION_HINT")  # an openvino.Type: "f32", "bf16", ...
    request = compiled.create_infer_request()

    def run(x):
        return request.infer({0: x})[0]
    return run, chosen.to_string() if hasattr(chosen, "to_string") else str(chosen)
