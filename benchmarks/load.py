#!/usr/bin/env python3
"""A bounded load test of lenet-fast serve, against 127.0.0.1 only: it starts the server itself (a subprocess
on a free port), sends a fixed number of single-image JSON predictions from concurrent clients (threads, each
with its own keep-alive connection), then times batch requests one after another (as JSON and as .npy),
stops the server and prints the figures. It stops by itself: after --requests requests or --time-limit
seconds, whichever comes first. Any failed request (a refused connection, a status other than 200, a wrong
digit) makes the exit status 1.

    python benchmarks/load.py [--requests 20000] [--clients 32] [--batch 1024] [--batch-repeats 9]

Goal on 2 cores (issue 19): at least 1,500 single-image predictions per second with p99 at most 50 ms, and a
batch of 1,024 digits in at most 30 ms. Records: benchmarks/results/serve-*.md.
"""
import argparse
import http.client
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np

import lenet_fast
from lenet_fast.timing import machine

HOST = "127.0.0.1"


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_server(port, extra=(), timeout=60):
    """lenet-fast serve on HOST:port as a subprocess, returned once /healthz answers (RuntimeError if it
    exits or does not answer within timeout seconds)."""
    process = subprocess.Popen([sys.executable, "-m", "lenet_fast", "serve", "--host", HOST, "--port", str(port),
                                *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=2):
                return process
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited: {process.stderr.read()}") from None
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"the server did not answer within {timeout} s") from None
            time.sleep(0.1)


def stop_server(process):
    process.terminate()
    try:
        return process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def cpu_seconds(pid=None):
    """CPU time (user + system, s) used so far by process pid (Linux's /proc), or by this one."""
    if pid is None:
        t = os.times()
        return t.user + t.system
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def post(connection, body, kind="application/json"):
    """(status, parsed JSON) of one POST /predict of body (of media type kind) on a keep-alive connection; a
    GET /healthz when body is None (the HTTP stack's own cost, for comparison)."""
    if body is None:
        connection.request("GET", "/healthz")
    else:
        connection.request("POST", "/predict", body=body, headers={"Content-Type": kind})
    response = connection.getresponse()
    return response.status, json.loads(response.read())


def singles(port, bodies, expected, requests, clients, time_limit):
    """Send requests single-image predictions from clients threads; (latencies in s, failures, wall time)."""
    latencies, failures, lock = [], [], threading.Lock()
    counter = iter(range(requests))
    stop = time.monotonic() + time_limit

    def client():
        connection = http.client.HTTPConnection(HOST, port, timeout=30)
        mine = []
        try:
            while time.monotonic() < stop:
                with lock:
                    i = next(counter, None)
                if i is None:
                    break
                k = i % len(bodies)
                started = time.perf_counter()
                try:
                    status, result = post(connection, bodies[k])
                except (OSError, http.client.HTTPException, ValueError) as exc:
                    failures.append(f"request {i}: {exc!r}")
                    connection.close()
                    connection = http.client.HTTPConnection(HOST, port, timeout=30)
                    continue
                mine.append(time.perf_counter() - started)
                if status != 200 or (bodies[k] is not None and result.get("digit") != expected[k]):
                    failures.append(f"request {i}: status {status}, {result}")
        finally:
            connection.close()
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return np.array(latencies), failures, time.perf_counter() - started


def batches(port, body, kind, expected, repeats):
    """The latency in s of each of repeats batch requests (body of media type kind), one after another, and the
    failures."""
    connection = http.client.HTTPConnection(HOST, port, timeout=60)
    times, failures = [], []
    try:
        for i in range(repeats + 1):  # the first warms the connection and the server's paths up
            started = time.perf_counter()
            status, result = post(connection, body, kind)
            elapsed = time.perf_counter() - started
            if status != 200 or [r["digit"] for r in result] != expected:
                failures.append(f"batch {i}: status {status}")
            if i:
                times.append(elapsed)
    finally:
        connection.close()
    return np.array(times), failures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000, help="single-image requests (default 20,000)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (default 32)")
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds for the single requests at most")
    parser.add_argument("--batch", type=int, default=1024, help="digits in a batch request (default 1,024)")
    parser.add_argument("--batch-repeats", type=int, default=9, help="batch requests timed (default 9)")
    parser.add_argument("--baseline", action="store_true",
                        help="also send as many GET /healthz requests first: what the HTTP stack alone allows")
    parser.add_argument("--server-threads", type=int, help="the server's --threads (default: its own default)")
    args = parser.parse_args(argv)

    model = lenet_fast.pretrained("classic")
    digits = np.stack([lenet_fast.read_digit(p) for p in lenet_fast.sample_paths()])
    bodies = [json.dumps(d.tolist()).encode() for d in digits]
    expected = model.predict(digits).tolist()
    batch = digits[np.arange(args.batch) % len(digits)]
    npy = io.BytesIO()
    np.save(npy, batch)
    batch_bodies = {"JSON": (json.dumps(batch.tolist()).encode(), "application/json"),
                    ".npy": (npy.getvalue(), "application/x-npy")}

    port = free_port()
    extra = ("--threads", str(args.server_threads)) if args.server_threads else ()
    process = start_server(port, extra)
    failures = []
    load = os.getloadavg()[0]  # other work on the machine shares its cores with the server and the clients
    try:
        if args.baseline:
            base, base_failures, base_wall = singles(port, [None], [None], args.requests, args.clients, args.time_limit)
            failures += base_failures
            print(f"baseline, GET /healthz: {len(base) / base_wall:,.0f} requests/s; latency p50 "
                  f"{np.percentile(base, 50) * 1e3:.2f} ms, p99 {np.percentile(base, 99) * 1e3:.2f} ms")
        cpu = cpu_seconds(process.pid), cpu_seconds()
        latencies, single_failures, wall = singles(port, bodies, expected, args.requests, args.clients,
                                                   args.time_limit)
        cpu = cpu_seconds(process.pid) - cpu[0], cpu_seconds() - cpu[1]
        failures += single_failures
        times = {}
        for name, (body, kind) in batch_bodies.items():
            times[name], batch_failures = batches(port, body, kind, model.predict(batch).tolist(), args.batch_repeats)
            failures += batch_failures
    finally:
        status = stop_server(process)
    if status != 0:
        failures.append(f"the server exited with status {status}")

    info = lenet_fast.build_info()
    print(f"lenet_fast {info['version']} ({info['isa']}), {os.cpu_count()} CPUs: {machine()}; load average "
          f"{load:.2f} at the start")
    print(f"single-image JSON predictions: {len(latencies):,} requests from {args.clients} clients in {wall:.2f} s: "
          f"{len(latencies) / wall:,.0f} requests/s; latency p50 {np.percentile(latencies, 50) * 1e3:.2f} ms, "
          f"p99 {np.percentile(latencies, 99) * 1e3:.2f} ms, max {latencies.max() * 1e3:.2f} ms; CPU per request: "
          f"server {cpu[0] / len(latencies) * 1e6:.0f} us, load clients {cpu[1] / len(latencies) * 1e6:.0f} us")
    for name, (body, _) in batch_bodies.items():
        t = times[name]
        print(f"batch of {args.batch:,} digits as {name} ({len(body):,} bytes): median {np.median(t) * 1e3:.1f} ms "
              f"of {len(t)} (min {t.min() * 1e3:.1f}, max {t.max() * 1e3:.1f})")
    print(f"failed requests: {len(failures)}")
    for failure in failures[:10]:
        print(f"  {failure}")
    return 1 if failures or len(latencies) == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
