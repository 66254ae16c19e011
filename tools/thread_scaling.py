"""What a second thread buys at small batches, and what it costs after an idle pause.

Classic `LeNet5.forward` on uint8 28x28 digits through the installed lenet_fast (or the one PYTHONPATH
points at), one process:

- hot: for each batch size, 1 and 2 threads take turns over 15 rounds, each round the mean of a loop of
  calls after 20 untimed ones; the medians and their ratio;
- after a pause: one call after each of 100 sleeps of --pause seconds, on 1 and on 2 threads, for one image
  and for 16; the median and the 90th percentile of the calls. On a virtual machine an idle core can take
  milliseconds to wake, and a call that needs the second thread waits for it.

    python tools/thread_scaling.py [--pause 0.1]

(benchmarks/c/layer_times.py times the kernels in C; this times what a Python caller sees.)
"""
import argparse
import time

import numpy as np

import lenet_fast


def hot(model, images, rounds=15):
    """Median microseconds per call on 1 and on 2 threads, interleaved."""
    reps = max(20, 2000 // len(images))
    times = {1: [], 2: []}
    for _ in range(rounds):
        for threads in times:
            lenet_fast.set_num_threads(threads)
            for _ in range(20):
                model.forward(images)
            start = time.perf_counter()
            for _ in range(reps):
                model.forward(images)
            times[threads].append((time.perf_counter() - start) / reps * 1e6)
    return {threads: float(np.median(t)) for threads, t in times.items()}


def after_pause(model, images, threads, pause, calls=100):
    """Microseconds of each call made after sleeping pause seconds."""
    lenet_fast.set_num_threads(threads)
    model.forward(images)
    times = []
    for _ in range(calls):
        time.sleep(pause)
        start = time.perf_counter()
        model.forward(images)
        times.append((time.perf_counter() - start) * 1e6)
    return np.array(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pause", type=float, default=0.1, help="seconds of idleness before each timed call")
    args = ap.parse_args()
    model = lenet_fast.LeNet5("classic")
    rng = np.random.default_rng(0)
    digits = rng.integers(0, 256, size=(64, 28, 28), dtype=np.uint8)
    info = lenet_fast.build_info()
    print(f"lenet_fast {info['version']}, ISA path {info['isa']}, OpenMP {'on' if info['openmp'] else 'off'}")
    print("| images | 1 thread, us | 2 threads, us | speed-up |")
    print("| ---: | ---: | ---: | ---: |")
    for n in (1, 2, 4, 8, 12, 16, 24, 32, 64):
        t = hot(model, digits[:n])
        print(f"| {n} | {t[1]:.1f} | {t[2]:.1f} | {t[1] / t[2]:.2f} |")
    print(f"\nafter {args.pause} s idle, 100 calls each")
    print("| images | threads | median us | 90th percentile us |")
    print("| ---: | ---: | ---: | ---: |")
    for n in (1, 16):
        for threads in (1, 2):
            t = after_pause(model, digits[:n], threads, args.pause)
            print(f"| {n} | {threads} | {np.median(t):,.1f} | {np.percentile(t, 90):,.1f} |")


if __name__ == "__main__":
    main()
