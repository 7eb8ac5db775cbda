#!/usr/bin/env python3
"""peak.py without torch: large f32 matmul GFLOP/s of numpy and jax (the
machine's sgemm ceiling), one JSON line per (impl, n). Same method as
../shared/workload/peak.py; run with the peers' python."""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.environ.get("WORKLOAD_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../shared/workload")))
import common as C  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, choices=[1, 2], default=1)
ap.add_argument("--sizes", default="2048,512")
ap.add_argument("--min-time", type=float, default=2.0)
args = ap.parse_args()
C.setup_threads(args.threads)

import numpy as np  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402


def bench(fn, flops, min_time):
    fn(); fn()
    ts = []
    t_start = time.perf_counter()
    while len(ts) < 5 or (time.perf_counter() - t_start < min_time and len(ts) < 1000):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    ts = np.array(ts)
    return dict(median_gflops=round(flops / np.median(ts) / 1e9, 2), best_gflops=round(flops / ts.min() / 1e9, 2), n_calls=len(ts))


for n in (int(x) for x in args.sizes.split(",")):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    out = np.empty((n, n), np.float32)
    ja, jb = jnp.asarray(a), jnp.asarray(b)
    jmm = jax.jit(jnp.matmul)
    flops = 2.0 * n ** 3
    for impl, fn in (("numpy", lambda: np.matmul(a, b, out=out)), ("jax", lambda: jmm(ja, jb).block_until_ready())):
        print(json.dumps(dict(kind="peak", impl=impl, n=n, threads=args.threads, **bench(fn, flops, args.min_time))), flush=True)
