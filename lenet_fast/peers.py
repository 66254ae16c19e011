"""The same LeNet-5 in PyTorch and in ONNX Runtime, for the benchmark report (lenet_fast.bench): built from
a LeNet5's own parameters, so that every engine runs one network on one input. Optional: torch, onnx and
onnxruntime are imported only here, only when asked for (pip install "lenet_fast[bench]").

How each peer's network is built (input: (N, 1, 32, 32) float32, already in the paper's range):
- C1, C3: a 2-D convolution (torch.nn.functional.conv2d; ONNX Conv) with lenet_fast's kernels. Classic C3
  is wired by the paper's Table I: both peers run it as a dense 16 x 6 convolution whose missing kernels
  are zero (torch multiplies by the 0/1 mask in every forward, so that training keeps them zero). Dense
  does 240,000 multiply-adds per image where the table needs 150,000: neither peer has a sparse-table
  convolution, and this is what a user of either would write.
- S2, S4 classic: the trainable subsampling, the 2x2 sum (average pooling times 4) times a per-map
  coefficient plus a per-map bias; modern: 2x2 max pooling.
- C5, F6 and the modern output: flatten, then a full layer (torch linear; ONNX Gemm).
- Activations: the paper's squashing 1.7159 tanh(2a/3) (classic), ReLU (modern).
- Classic output: the squared Euclidean distances of F6's 84 outputs to the 10 fixed RBF centres, from
  the differences (as lenet_fast and the reference compute them).
Training (torch): the same losses (the paper's MAP criterion for classic, softmax cross-entropy for modern,
mean over the batch) and SGD with momentum.
"""
import numpy as np

from . import paper
from .model import VARIANTS

SUM_POOL = 4.0  # a 2x2 sum is 4 times the 2x2 average


def _dense_c3(model, name):
    """(dense (Co, Ci, k, k) kernels, (Co, Ci) 0/1 mask or None) of conv layer name."""
    layer = next(l for l in model.layers if l.name == name)
    w = np.asarray(model.params[name + ".weight"])
    if layer.table is None:
        return w, None
    dense = np.zeros(layer.table.shape + w.shape[1:], np.float32)
    dense[layer.table] = w  # packed in the table's row-major order (lenet_fast.h)
    return dense, layer.table.astype(np.float32)


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
            w, mask = _dense_c3(model, n)
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
    """The network as an ONNX model (bytes), its initializers model's parameters."""
    _check_builds(model)
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []

    def const(name, value):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value, np.float32), name))
        return name

    def node(op, inputs, **attrs):
        out = f"t{len(nodes)}"
        nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def conv(layer, n, x):
        w, _ = _dense_c3(model, n)  # masked: the zero kernels are in w
        return node("Conv", [x, const(n + ".weight", w), const(n + ".bias", model.params[n + ".bias"])])

    def subsample(layer, n, x):
        if layer.pool == "max":
            return node("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
        x = node("AveragePool", [x], kernel_shape=[2, 2], strides=[2, 2])
        x = node("Mul", [x, const(n + ".coef", (SUM_POOL * model.params[n + ".coef"])[:, None, None])])
        return node("Add", [x, const(n + ".bias", model.params[n + ".bias"][:, None, None])])

    def full(layer, n, x):
        x = node("Flatten", [x], axis=1)
        return node("Gemm", [x, const(n + ".weight", model.params[n + ".weight"]),
                             const(n + ".bias", model.params[n + ".bias"])])

    def rbf(layer, n, x):  # sum over d of (x[n, d] - centers[k, d])^2
        x = node("Unsqueeze", [x, _ints(inits, "rbf.axis1", [1])])
        d = node("Sub", [x, const("rbf.centers", model.rbf_centers)])
        return node("ReduceSum", [node("Mul", [d, d]), _ints(inits, "rbf.axis2", [2])], keepdims=0)

    builders = {"conv": conv, "subsample": subsample, "full": full, "rbf": rbf}
    x = "x"
    for layer in model.layers:
        n = layer.name
        x = builders[layer.kind](layer, n, x)
        if layer.act == "squash":
            x = node("Mul", [node("Tanh", [node("Mul", [x, const(f"{n}.s", paper.SQUASH_S)])]),
                             const(f"{n}.a", paper.SQUASH_A)])
        elif layer.act == "relu":
            x = node("Relu", [x])
    nodes[-1].output[0] = "y"
    graph = helper.make_graph(
        nodes, f"lenet5_{model.variant}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, paper.INPUT_SIZE, paper.INPUT_SIZE])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])], initializer=inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8  # what opset 17 needs; any ONNX Runtime since 1.13 reads it
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def _ints(inits, name, values):
    from onnx import numpy_helper
    inits.append(numpy_helper.from_array(np.array(values, np.int64), name))
    return name


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
