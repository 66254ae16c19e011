#!/usr/bin/env python3
"""valgrind memcheck of lenet_fast's C code: a short run of every C path under valgrind, and a report of the
errors it found in lenet_fast's own code (CONTRIBUTING.md#memcheck).

    python tools/memcheck.py            # runs itself under valgrind; exit status 1 if lenet_fast has errors

The run: forward (one image, part and whole blocks), softmax, the gradient and the Gauss-Newton curvature
(backward), updates by SDLM, SGD and Adam (fit), a save and a load, for both variants; small, because
memcheck runs some 50 times slower. Python and numpy themselves are not memcheck-clean (CPython's small-int
cache reads, numpy's module set-up allocations kept for the process's life), so the report counts every
error valgrind gives but fails only on those with a lenet_fast frame in their stack: invalid reads or
writes, uses of uninitialised values, and memory definitely lost.
"""
import os
import re
import subprocess
import sys
import tempfile

# A stack frame in lenet_fast: the extension's file, a Cython function or its generated _core.c, a C kernel
# (lf_ functions, csrc/ files).
OURS = re.compile(r"lenet_fast|_core\.c:|\blf_|csrc/|\b(conv|subsample|full|net|train|trainer|loss|optimizer|"
                  r"softmax|activation|dropout|workspace|dispatch|int8_\w+)\.c:")


def workload():
    import numpy as np

    import lenet_fast
    from lenet_fast import int8, optim
    from lenet_fast.datasets import synthetic_digits

    x, y = synthetic_digits(24, seed=0)
    with tempfile.TemporaryDirectory() as folder:
        for variant, optimizer, batch_size in [("classic", optim.SDLM(samples=8), 1),
                                               ("classic", optim.SGD(lr=1e-3), 4),
                                               ("modern", optim.Adam(), 8)]:
            model = lenet_fast.LeNet5(variant, seed=0)
            for n in (1, 5, 13):  # one image, a part-full block, whole blocks and single images
                model.forward(x[:n])
            model.predict_proba(x)
            model.gradient(x[:11], y[:11])
            model.fit(x, y, epochs=1, batch_size=batch_size, optimizer=optimizer, verbose=0)
            path = os.path.join(folder, "m.npz")
            model.save(path)
            assert np.array_equal(lenet_fast.load(path).forward(x), model.forward(x))
            quantized = int8.quantize(model, x)  # the int8 engine: one image, a ragged block, whole blocks
            for n in (1, 5, 13):
                quantized.forward(x[:n])


def error_blocks(log):
    """valgrind's error and leak reports: lists of lines, the pid prefix removed."""
    blocks, block = [], []
    for line in log.splitlines():
        text = re.sub(r"^==\d+== ?", "", line)
        if text:
            block.append(text)
        elif block:
            blocks.append(block)
            block = []
    kinds = ("Invalid ", "Conditional jump", "Use of uninitialised", "Syscall param", "Mismatched free",
             "Source and destination overlap")
    return [b for b in blocks if b[0].startswith(kinds) or "definitely lost" in b[0]]


def main():
    if sys.argv[1:] == ["--workload"]:
        workload()
        return 0
    with tempfile.NamedTemporaryFile("r", suffix=".log") as log:
        command = ["valgrind", "--tool=memcheck", "--leak-check=full", "--show-leak-kinds=definite",
                   "--num-callers=30", f"--log-file={log.name}", sys.executable, __file__, "--workload"]
        run = subprocess.run(command, env=dict(os.environ, PYTHONMALLOC="malloc"))
        blocks = error_blocks(log.read())
    ours = [b for b in blocks if any(OURS.search(line) for line in b)]
    for b in ours:
        print("\n".join(b), end="\n\n")
    print(f"valgrind memcheck: the run {'finished' if run.returncode == 0 else f'failed ({run.returncode})'}; "
          f"{len(blocks)} error reports, {len(ours)} in lenet_fast")
    return 1 if ours or run.returncode else 0


if __name__ == "__main__":
    sys.exit(main())
