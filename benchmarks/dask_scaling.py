"""Cluster throughput of lenet_fast.dask.predict against one process, on the same machine.

1,000,000 synthetic digits (seeded uint8 pixels: the engine's time does not depend on what they show) are a
dask array held by the workers of a LocalCluster (--workers processes, one thread each, on 127.0.0.1); the
same digits are a NumPy array in this process. In turns, --repeats times: this process's
LeNet5.predict on the whole array with --threads kernel threads, then the cluster's predict of the persisted
array (its graph made, sent, run and its digits gathered here). Both return the same digits (checked). With
--chunks several sizes, the cluster runs once per size in each turn.

    python benchmarks/dask_scaling.py [--images 1000000] [--workers 2] [--threads 2] [--chunks 16384]

The result: medians of images/s, and the cluster's share of the single process's (the goal: >= 80% on 2
workers against 2 threads). The record: benchmarks/results/dask-2026-12-03.md.
"""
import argparse
import json
import pickle
import time

import numpy as np

from lenet_fast import pretrained, timing
from lenet_fast import dask as on_dask


def synthetic(da, n, chunk, seed=0):
    """n (28, 28) uint8 digits made on the workers in chunks of chunk: seeded pixels, ink (1-255) on about
    a fifth of them."""
    pixels = da.random.RandomState(seed).randint(-1020, 256, size=(n, 28, 28), chunks=(chunk, 28, 28),
                                                 dtype=np.int16)
    return da.maximum(pixels, 0).astype(np.uint8)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="the single process's kernel threads")
    parser.add_argument("--chunks", type=int, nargs="+", default=[on_dask.CHUNK], help="images per chunk")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--variant", default="classic")
    parser.add_argument("--json", metavar="FILE", help="also write the figures here")
    args = parser.parse_args()
    import dask.array as da

    model = pretrained(args.variant)
    print(timing.build_line())
    with on_dask.cluster(workers=args.workers) as client:
        client.wait_for_workers(args.workers, timeout=60)
        # the input lives on the workers, as data read there would, made before the timings; this process
        # gets a copy for its own runs
        made = client.persist(synthetic(da, args.images, args.chunks[0]))
        images = client.compute(made).result()
        arrays = {c: made if c == args.chunks[0] else client.persist(made.rechunk((c, 28, 28)))
                  for c in args.chunks}
        for x in arrays.values():
            client.rebalance(client.futures_of(x))  # as many chunks on each worker
        expected = None

        def single():
            nonlocal expected
            with timing.kernel_threads(args.threads):
                start = time.perf_counter()
                expected = model.predict(images)
                return args.images / (time.perf_counter() - start)

        def on_cluster(c):
            start = time.perf_counter()
            digits = client.compute(on_dask.predict(arrays[c], model, client=client)).result()
            rate = args.images / (time.perf_counter() - start)
            assert np.array_equal(digits, expected)
            return rate

        measures = {"single": single}
        measures.update({f"cluster-{c}": (lambda c=c: on_cluster(c)) for c in args.chunks})
        results = timing.interleaved(measures, args.repeats, pause=0.2)
        workers = client.scheduler_info()["workers"]
        threads = sorted(w["nthreads"] for w in workers.values())
        engine = client.run(lambda: __import__("lenet_fast").build_info())
    base = timing.median(results["single"])
    print(f"{args.images:,} digits, {args.variant} LeNet-5; single process: {args.threads} threads; cluster: "
          f"{args.workers} worker processes, threads {threads}, their engines "
          f"{sorted(set(json.dumps(e) for e in engine.values()))}")
    print(f"  {'run':<16} {'median img/s':>13} {'min':>10} {'max':>10}  share of single")
    for name, rates in results.items():
        print(f"  {name:<16} {timing.median(rates):>13,.0f} {min(rates):>10,.0f} {max(rates):>10,.0f}  "
              f"{timing.median(rates) / base:6.1%}")
    sizes = {c: len(pickle.dumps(np.zeros(c, np.int64))) for c in args.chunks}
    print("  results per chunk, pickled: " + ", ".join(f"{c:,} images: {b:,} bytes" for c, b in sizes.items()))
    print(f"  load average after: {timing.load_average()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"command": "python benchmarks/dask_scaling.py", "arguments": vars(args),
                       "date": time.strftime("%Y-%m-%d"), "machine": timing.machine(("dask", "distributed")),
                       "images_per_second": results}, f, indent=1)


if __name__ == "__main__":
    main()
