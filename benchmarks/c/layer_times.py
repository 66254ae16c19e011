"""Per-layer kernel times of the classic network, with no Python in the way.

Compiles benchmarks/c/layer_times.c against csrc/ (the kernels of one instruction-set path, with the package's
flags) and runs it: each layer's kernel on one work item (a block of LF_LANES images, and one image in the
spatial layout), and the whole forward pass at batch 1 and 1024. Runs alternate between the two layouts
and each figure is the fastest of all their rounds (the first rounds also warm the caches and the clock),
in microseconds per image: on a shared machine the minimum is the figure least disturbed by other tenants
(compare builds with it, not absolute speeds). With --threads above 1 it also gives what starting a thread
team costs (every forward call of more than one work item starts one; a single image runs on the calling
thread alone).

    python benchmarks/c/layer_times.py [--isa avx2] [--threads 2] [--rounds 8]
"""
import argparse
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
from lenet_fast import paper  # noqa: E402  (the source tree's Table I, not an installed copy's)

ISA_FLAGS = {"baseline": [], "avx2": ["-mavx2", "-mfma"], "avx512": ["-mavx512f", "-mavx2", "-mfma"]}
# Every C file but the dispatcher, which would pull in the other paths' tables.
KERNELS = sorted(p.name for p in (ROOT / "csrc").glob("*.c") if p.name != "dispatch.c")


def table_macros():
    """Table I in CSR form, as the engine takes it: -D flags for C3_START and C3_IN."""
    start, inputs = [0], []
    for maps in paper.C3_INPUTS:
        inputs += sorted(maps)
        start.append(len(inputs))
    return [f"-DC3_START={{{','.join(map(str, start))}}}", f"-DC3_IN={{{','.join(map(str, inputs))}}}"]


def build(isa, where):
    exe = os.path.join(where, "layer_times")
    cmd = (["gcc", "-std=gnu11", "-O3", "-fno-math-errno", "-fopenmp", f"-DLF_ISA_SUFFIX={isa}",
            f"-I{ROOT / 'csrc'}", "-o", exe, str(HERE / "layer_times.c")]
           + ISA_FLAGS[isa] + table_macros() + [str(ROOT / "csrc" / f) for f in KERNELS] + ["-lm", "-lpthread"])
    subprocess.run(cmd, check=True)
    return exe


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--isa", choices=sorted(ISA_FLAGS), default="avx2")
    ap.add_argument("--threads", type=int, default=1, help="OpenMP threads of the forward passes")
    ap.add_argument("--rounds", type=int, default=3, help="runs of each layout (each times 20 rounds itself)")
    args = ap.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    runs = {"blocked": "1024", "spatial": "1"}
    best = {layout: {} for layout in runs}
    with tempfile.TemporaryDirectory() as where:
        exe = build(args.isa, where)
        for _ in range(args.rounds):
            for layout, n in runs.items():
                words = subprocess.run([exe, layout, n, "20"], env=env, check=True, capture_output=True,
                                       text=True).stdout.split()
                for name, value in zip(words[::2], words[1::2]):
                    best[layout][name] = min(best[layout].get(name, float("inf")), float(value))
    print(f"classic, {args.isa}; fastest of {args.rounds} x 20 rounds; us per image; forward on {args.threads} "
          "thread(s)")
    print("| layer | blocked (batch 1024) | spatial (batch 1) |")
    print("| --- | ---: | ---: |")
    for name in best["blocked"]:
        if name != "parallel-region":
            print(f"| {name} | {best['blocked'][name]:.2f} | {best['spatial'][name]:.2f} |")
    if args.threads > 1:
        print(f"thread team of {args.threads}: a parallel region {best['spatial']['parallel-region']:.2f} us "
              "(fastest of all rounds)")


if __name__ == "__main__":
    main()
