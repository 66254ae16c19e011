"""Why the paper's literal SDLM epsilons diverge here: the measurements behind optim.SDLM_SCALE.

    python benchmarks/sdlm_literal.py [--data DIR] [--exact]

Prints three tables (1 thread, seed 0, a few seconds each):
1. The Gauss-Newton diagonal h at the paper's initialisation (uniform +-2.4/F), averaged over 500 training
   digits as SDLM estimates it before the first pass, per parameter group, beside mu = 0.02 and the step
   epsilon / (mu + h) of the first pass at the paper's epsilon (0.0005) and at SDLM_SCALE times it.
2. The activations' RMS on 200 held-out digits after the first n per-pattern updates, at both scales: with
   the literal epsilon every layer from C3 up is saturated (RMS near 1.7159, the squash's bound) after 5
   digits, and the network never leaves saturation (its curvature, f'^2, is then near 0 too).
3. With --exact, two more tables. The exact diagonal of the Gauss-Newton matrix (84 back-propagations per digit, one per F6
   output, in NumPy) against the paper's approximation (squared weights back-propagated, appendix C) on 10
   digits, at initialisation and for the pretrained classic model: the approximation is exact for C5 and
   F6 and up to about 20 times too small below, so a step scaled by it is too large there.
4. (with --exact) One more pass over the 60,000 training digits from the pretrained classic model, at the
   first stage's epsilon times 1, 0.3 and 0.1, with appendix C's curvature and with the exact one (on 50
   digits) in its place: the test error after the pass. Whether the published epsilon undoes a trained
   network, and whether the exact curvature alone would rescue it. About 2 minutes.
"""
import argparse
import os

import numpy as np

import lenet_fast
from lenet_fast import optim, paper
from lenet_fast import reference as R

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def groups(model, flat):
    """flat (one value per parameter) cut into the model's named parameters."""
    out, at = {}, 0
    for name, p in model.params.items():
        out[name] = flat[at : at + p.size]
        at += p.size
    return out


def curvature_table(x, y):
    model = lenet_fast.LeNet5("classic", seed=0)
    h = model.curvature(x[:500], y[:500], "map", paper.MAP_J).astype(np.float64)
    eps = paper.sdlm_epsilon(0)
    print(f"## 1. Gauss-Newton diagonal at initialisation (mean over 500 digits); mu = {paper.SDLM_MU}\n")
    print(f"| parameters | median h | max h | first-pass step, epsilon {eps} | step x {optim.SDLM_SCALE} |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, g in groups(model, h).items():
        step = eps / (paper.SDLM_MU + np.median(g))
        print(f"| {name} | {np.median(g):.2g} | {g.max():.2g} | {step:.2g} | {step * optim.SDLM_SCALE:.2g} |")


def rms(model, probe):
    params = R.with_centers(model.params, "classic")
    trace, _ = R._forward_trace(params, probe, "classic")
    return [np.sqrt(np.mean(R.activation(pre, layer[2]) ** 2)) for layer, _, pre in trace[:-1]]


def saturation_table(x, y, probe):
    print("\n## 2. Activation RMS on 200 held-out digits after n per-pattern updates (squash bound 1.7159)\n")
    print("| epsilon scale | n | C1 | S2 | C3 | S4 | C5 | F6 |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for scale in (1.0, optim.SDLM_SCALE):
        for n in (0, 5, 50, 500, 2000):
            model = lenet_fast.LeNet5("classic", seed=0)
            if n:
                opt = optim.SDLM(schedule=optim.PaperSchedule(scale))
                model.fit(x[:n], y[:n], epochs=1, batch_size=1, optimizer=opt, verbose=0, seed=0)
            print(f"| {scale} | {n} | " + " | ".join(f"{v:.2f}" for v in rms(model, probe)) + " |")


def exact_gauss_newton(params, x):
    """The exact Gauss-Newton diagonal of the y_D term (curvature 2 per F6 output), summed over x."""
    total = {}
    for i in range(len(x)):
        trace, _ = R._forward_trace(params, x[i : i + 1], "classic")
        for k in range(84):
            g = np.zeros((1, 84))
            g[0, k] = 1.0
            for (kind, name, act, extra), inp, pre in reversed(trace[:-1]):
                g = R.activation_backward(pre, g, act)
                if kind == "conv":
                    g, dw, db = R.conv2d_backward(inp, params[name + ".weight"], g, table=extra)
                elif kind == "pool":
                    g, dw, db = R.subsample_backward(inp, g, extra, params[name + ".coef"])
                else:
                    dx, dw, db = R.linear_backward(R._flatten(inp), params[name + ".weight"], g)
                    g = dx.reshape(inp.shape)
                for key, d in (("weight" if kind != "pool" else "coef", dw), ("bias", db)):
                    total[f"{name}.{key}"] = total.get(f"{name}.{key}", 0.0) + 2.0 * d * d
    return total


def exact_table(x):
    print("\n## 3. Exact Gauss-Newton diagonal / the paper's approximation (median over each group, 10 digits)\n")
    print("| parameters | at initialisation | pretrained classic |")
    print("| --- | ---: | ---: |")
    xs = R.normalize_input(x[:10]).astype(np.float64)
    ratios = []
    for model in (lenet_fast.LeNet5("classic", seed=0), lenet_fast.pretrained("classic")):
        params = {k: v.astype(np.float64) for k, v in R.with_centers(model.params, "classic").items()}
        approx = R.gauss_newton_diagonal(params, xs, "classic")
        exact = exact_gauss_newton(params, xs)
        ratios.append({k: np.median(exact[k] / np.maximum(approx[k], 1e-30)) for k in approx})
    for k in ratios[0]:
        print(f"| {k} | {ratios[0][k]:.3g} | {ratios[1][k]:.3g} |")


def restart_table(x, y, xt, yt):
    print("\n## 4. Test error after one more pass from the pretrained classic model, at epsilon 0.0005 x scale\n")
    base = lenet_fast.pretrained("classic")
    print(f"Before the pass: {100 * np.mean(base.predict(xt) != yt):.2f}%.\n")
    params = {k: v.astype(np.float64) for k, v in R.with_centers(base.params, "classic").items()}
    pick = np.random.default_rng(1).choice(len(x), 50, replace=False)
    exact = exact_gauss_newton(params, R.normalize_input(x[pick]).astype(np.float64))
    h_exact = np.concatenate([(exact[k] / len(pick)).ravel() for k in base.params]).astype(np.float32)

    class ExactSDLM(optim.SDLM):
        """SDLM with the exact curvature above in place of appendix C's estimate."""

        def start_epoch(self, epoch, *args):
            optim.Optimizer.start_epoch(self, epoch, *args)
            self.h = h_exact
            self.step[...] = (self.lr / (self.mu + h_exact.astype(np.float64))).astype(np.float32)

    print("| epsilon scale | appendix C's curvature | exact curvature |")
    print("| ---: | ---: | ---: |")
    for scale in (1.0, 0.3, 0.1):
        errors = []
        for kind in (optim.SDLM, ExactSDLM):
            model = lenet_fast.pretrained("classic")
            model.fit(x, y, epochs=1, batch_size=1, optimizer=kind(schedule=optim.PaperSchedule(scale)),
                      verbose=0, seed=5)
            errors.append(f"{100 * np.mean(model.predict(xt) != yt):.2f}%")
        print(f"| {scale} | " + " | ".join(errors) + " |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("LENET_FAST_DATA",
                                                         os.path.join(REPO, "..", "shared", "data", "mnist")))
    parser.add_argument("--exact", action="store_true", help="also tables 3 and 4 (about 2 minutes)")
    args = parser.parse_args()
    lenet_fast.set_num_threads(1)
    x, y = lenet_fast.load_mnist(args.data, "train")
    probe = R.normalize_input(x[-200:]).astype(np.float64)
    curvature_table(x, y)
    saturation_table(x, y, probe)
    if args.exact:
        exact_table(x)
        restart_table(x, y, *lenet_fast.load_mnist(args.data, "test"))


if __name__ == "__main__":
    main()
