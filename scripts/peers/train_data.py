#!/usr/bin/env python3
"""Writes the training yardstick's data and initial weights for `ami bench --train --data`.

Reproduces ../shared/workload/train_peers.py's generation exactly (same seeds,
same calls in the same order, numpy only), so ami trains on the peers' data
from the peers' initial weights and the final losses can be compared:

* default_rng(0): X [N, S+A] standard normal, W_true [S+A, S] * 0.3,
  Y = tanh(X W_true) + 0.05 N(0, 1) [N, S], then idx [warmup+steps, K, B]
  (rng.integers(0, N)), the rows of each step's batch of each member;
* default_rng(1): the initial parameters as train_peers.py's init() returns
  them, p0..p7 = W1 b1 W2 b2 W3 b3 W4 b4 with weights [K, in, out] (x @ W;
  the transpose of ami's [out, in]) and biases [K, 1, out] (zeros).

Tensors X, Y (float32), idx (int64), p0..p7 (float32); metadata K, S, A, H,
B, N, layers (hidden), warmup, steps, lr (as strings).

  python scripts/peers/train_data.py [--warmup 10] [--steps 60] [--out target/train_data.safetensors]
"""
import argparse
import os

import numpy as np
from safetensors.numpy import save_file

ap = argparse.ArgumentParser()
ap.add_argument("--steps", type=int, default=60)
ap.add_argument("--warmup", type=int, default=10)
ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "target", "train_data.safetensors"))
args = ap.parse_args()

# Exactly train_peers.py's constants and generation (keep the two in step).
K, S, A, H, B, LR = 5, 17, 6, 200, 256, 1e-3
rng = np.random.default_rng(0)
N = 20000
X = rng.standard_normal((N, S + A)).astype(np.float32)
W_true = rng.standard_normal((S + A, S)).astype(np.float32) * 0.3
Y = (np.tanh(X @ W_true) + 0.05 * rng.standard_normal((N, S))).astype(np.float32)
idx = rng.integers(0, N, size=(args.warmup + args.steps, K, B))


def init(rng):
    dims = [S + A, H, H, H, 2 * S]
    ps = []
    for i in range(4):
        bound = 1 / np.sqrt(dims[i])
        ps.append(rng.uniform(-bound, bound, (K, dims[i], dims[i + 1])).astype(np.float32))
        ps.append(np.zeros((K, 1, dims[i + 1]), np.float32))
    return ps


params0 = init(np.random.default_rng(1))

tensors = {"X": X, "Y": Y, "idx": idx.astype(np.int64)}
for i, p in enumerate(params0):
    tensors[f"p{i}"] = np.ascontiguousarray(p)
meta = {"K": K, "S": S, "A": A, "H": H, "B": B, "N": N, "layers": 3, "warmup": args.warmup, "steps": args.steps, "lr": LR,
        "source": "scripts/peers/train_data.py (train_peers.py's generation)"}
os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
save_file(tensors, args.out, metadata={k: str(v) for k, v in meta.items()})
print(f"wrote {args.out}: X {X.shape}, Y {Y.shape}, idx {idx.shape}, " + ", ".join(f"p{i} {p.shape}" for i, p in enumerate(params0)))
