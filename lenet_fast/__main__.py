"""lenet-fast (or python -m lenet_fast): what this build is, and LeNet-5 run once on a batch of digit-like images.

Until the pretrained weights ship, the network here is freshly initialised, so its answers are not yet
meaningful; what this shows is that the engine is installed, which paths it runs, and how fast.
"""
import time

import numpy as np

import lenet_fast


def main():
    info = lenet_fast.build_info()
    print(f"lenet_fast {info['version']}: instruction set {info['isa']}, OpenMP {'on' if info['openmp'] else 'off'}, "
          f"{info['num_threads']} threads")
    images = np.random.default_rng(0).integers(0, 256, size=(1024, 28, 28), dtype=np.uint8)
    for variant in ("classic", "modern"):
        model = lenet_fast.LeNet5(variant, seed=0)
        model.predict(images)  # warm up: workspaces, thread pool
        start = time.perf_counter()
        digits = model.predict(images)
        elapsed = time.perf_counter() - start
        print(f"{variant:8s} {model.n_params:6d} parameters: {len(images)} images in {elapsed * 1e3:.1f} ms "
              f"({len(images) / elapsed:,.0f} images/s); first predictions {digits[:8].tolist()}")


if __name__ == "__main__":
    main()
