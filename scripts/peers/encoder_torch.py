#!/usr/bin/env python3
"""The JEPA image encoder in PyTorch: the same network as
benches/benches/encoder.rs (64x64 one-channel images, three 3x3 stride-2
padding-1 convolutions of 16, 32, 32 channels, each followed by a ReLU,
then a linear map to 32), timed the same way: forward, and forward plus
backward (weights' and input's gradients from a given output gradient),
of a batch of 64; and one whole JEPA training step (`train`): 64 windows of
4 frames (horizon 3) through that encoder with an embedding of 16, the
residual predictor [16 + 2 -> 256 -> 256 -> 16] rolled out 3 steps from
z_0 against stop-gradient targets, VICReg (variance 1, covariance 0.04) and
temporal smoothness 5, one Adam step: what `ami train --jepa` does a batch.
One JSON line per (case, threads) on stdout:
{"impl": "torch", "case", "threads", "batch", "median_ms", "frames_per_s"}
(frames: images through the encoder; a training step's are 64 x 4).

    python scripts/peers/encoder_torch.py --threads 1
    cargo bench -p ami-benches --bench encoder -- --noplot   # ami's encoder, same run
    python scripts/peers/encoder_torch.py --threads 2 --cases train
    ami train --jepa wall.trj -o /tmp/m.safetensors --epochs 1 --threads 2 --max-frames 10000
                                              # ami's training step: its frames/s

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
ap.add_argument("--cases", default="forward,forward_backward,train")
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


# The training step's networks.
H, B, E, A = 3, args.batch, 16, 2
enc = torch.nn.Sequential(
    torch.nn.Conv2d(1, 16, 3, 2, 1), torch.nn.ReLU(), torch.nn.Conv2d(16, 32, 3, 2, 1), torch.nn.ReLU(),
    torch.nn.Conv2d(32, 32, 3, 2, 1), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(32 * 8 * 8, E))
pred = torch.nn.Sequential(torch.nn.Linear(E + A, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, E))
opt = torch.optim.Adam(list(enc.parameters()) + list(pred.parameters()), lr=1e-3)
frames = torch.rand((H + 1) * B, 1, 64, 64)
actions = torch.rand(H, B, A) * 2 - 1


def vicreg(z):
    zc = z - z.mean(0)
    cov = zc.T @ zc / (z.shape[0] - 1)
    std = torch.sqrt(torch.diagonal(cov) + 1e-4)
    off = cov - torch.diag(torch.diagonal(cov))
    return torch.relu(1 - std).mean() + 0.04 * (off ** 2).sum() / z.shape[1]


def train_step():
    z = enc(frames).view(H + 1, B, E)
    s = z[0]
    loss = 0.0
    for k in range(H):
        s = s + pred(torch.cat([s, actions[k]], 1))
        loss = loss + ((s - z[k + 1].detach()) ** 2).mean()
    loss = loss + sum(vicreg(z[k]) for k in range(H + 1)) / (H + 1) + 5.0 * ((z[1:] - z[:-1]) ** 2).mean()
    opt.zero_grad(set_to_none=False)
    loss.backward()
    opt.step()


cases = {"forward": (forward, args.batch), "forward_backward": (forward_backward, args.batch), "train": (train_step, (H + 1) * B)}
for name in args.cases.split(","):
    fn, n_frames = cases[name]
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
                      "median_ms": med * 1e3, "frames_per_s": n_frames / med}))
