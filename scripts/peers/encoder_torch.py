#!/usr/bin/env python3
"""The JEPA image encoder in PyTorch: the same network as
benches/benches/encoder.rs (64x64 one-channel images, three 3x3 stride-2
padding-1 convolutions of 16, 32, 32 channels, each followed by a ReLU,
then a linear map to 32), timed the same way: forward, and forward plus
backward (weights' and input's gradients from a given output gradient),
of a batch of 64. One JSON line per (case, threads) on stdout:
{"impl": "torch", "case", "threads", "batch", "median_ms", "frames_per_s"}.

    python scripts/peers/encoder_torch.py --threads 1
    cargo bench -p ami-benches --bench encoder      # ami's side, same run

Run both back to back on an otherwise idle machine and quote the ratio of
the medians.
"""
import argparse
import json
import os
import statistics
import time

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--batch", type=int, default=64)
ap.add_argument("--min-time", type=float, default=3.0)
args = ap.parse_args()
for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[v] = str(args.threads)

import torch  # noqa: E402

torch.set_num_threads(args.threads)
torch.manual_seed(0)
layers = []
c = 1
for out in (16, 32, 32):
    layers += [torch.nn.Conv2d(c, out, 3, stride=2, padding=1), torch.nn.ReLU()]
    c = out
net = torch.nn.Sequential(*layers, torch.nn.Flatten(), torch.nn.Linear(32 * 8 * 8, 32))
x = torch.rand(args.batch, 1, 64, 64)
gz = torch.rand(args.batch, 32) * 2 - 1


def forward():
    with torch.no_grad():
        net(x)


def forward_backward():
    xi = x.clone().requires_grad_(True)
    net.zero_grad(set_to_none=False)
    net(xi).backward(gz)


for name, fn in (("forward", forward), ("forward_backward", forward_backward)):
    for _ in range(5):
        fn()
    ts = []
    start = time.perf_counter()
    while len(ts) < 20 or (time.perf_counter() - start < args.min_time and len(ts) < 10000):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    med = statistics.median(ts)
    print(json.dumps({"impl": "torch", "version": torch.__version__, "case": name, "threads": args.threads, "batch": args.batch,
                      "median_ms": med * 1e3, "frames_per_s": args.batch / med}))
