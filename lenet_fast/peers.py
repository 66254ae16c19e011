"""The same LeNet-5 in PyTorch and in ONNX Runtime, for the benchmark report (lenet_fast.bench): built from
a LeNet5's own parameters, so that every engine runs one network on one input. Optional: torch, onnx and
onnxruntime are imported only here and in lenet_fast.export, only when asked for (pip install
"lenet_fast[bench]").

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
