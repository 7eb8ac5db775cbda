#!/usr/bin/env python3
"""Prints the training-yardstick table of a `TRAIN=1 run.sh` JSONL file (markdown).

Reads the lines of `ami bench --train --json` (impl "ami") and of
../shared/workload/train_peers.py (impl torch, torch-compile, jax): keys impl,
threads, median_ms (one step: forward + backward + Adam on all members),
samples_per_s, final_loss. Prints every run's samples/s and final loss (on the
first 2,000 rows after warmup + steps Adam steps) with its difference from the
first peer's (torch, else any) at the same thread count, then per thread count
ami's samples/s over the best peer's at that thread count (above 1: ami is
faster), and over the best peer at any thread count. ami's final loss is
comparable with the peers' only when it ran with --data (the peers' data and
initial weights, scripts/peers/train_data.py); the table says which. With
several rounds of the same impl and thread count (run.sh REPEAT), each row is
the round with the median samples/s, and every round's figure is listed.

  python3 scripts/peers/train_table.py OUT.jsonl [MORE.jsonl ...]
"""
import json
import sys
from collections import defaultdict

rows = []
for path in sys.argv[1:]:
    rows += [json.loads(l) for l in open(path) if l.strip().startswith("{")]
env = [r for r in rows if r.get("kind") == "env"]
errors = [r for r in rows if r.get("kind") == "error"]
runs = [r for r in rows if "samples_per_s" in r and "impl" in r]
for e in env:
    print(f"- {e['when']}: {e['uptime']}")
for e in errors:
    print(f"- FAILED: {e.get('what', '')} (exit {e.get('rc', '?')})")


def load1(r):
    la = r.get("loadavg", r.get("load1", ""))
    return f"{float(la[0]):.2f}" if isinstance(la, list) and la else str(la)


order = {"ami": 0, "torch": 1, "torch-compile": 2, "jax": 3}
runs.sort(key=lambda r: (order.get(r["impl"], 9), r["impl"], r["threads"]))
# Several rounds (run.sh REPEAT): each impl and thread count is the round
# with the median samples/s (an odd count of rounds picks the middle one).
rounds = defaultdict(list)
for r in runs:
    rounds[(r["threads"], r["impl"])].append(r)
by_th = defaultdict(dict)
for (th, impl), rs in rounds.items():
    rs.sort(key=lambda r: r["samples_per_s"])
    med = rs[(len(rs) - 1) // 2]
    med["rounds"] = [round(r["samples_per_s"]) for r in rs]
    by_th[th][impl] = med
runs = [r for th in sorted(by_th) for r in by_th[th].values()]
runs.sort(key=lambda r: (order.get(r["impl"], 9), r["impl"], r["threads"]))


def ref_loss(th):
    """The final loss the others are compared with at `th` threads: torch's, else the first peer's."""
    d = by_th[th]
    for i in ("torch", "jax", "torch-compile"):
        if isinstance(d.get(i, {}).get("final_loss"), (int, float)):
            return i, d[i]["final_loss"]
    return None, None


print("\n| impl | threads | median ms/step | samples/s | every round's samples/s | final loss | final loss - ref | load1 |")
print("|---|---|---|---|---|---|---|---|")
for r in runs:
    fl = r.get("final_loss")
    ref_impl, ref = ref_loss(r["threads"])
    diff = f"{fl - ref:+.2e} ({ref_impl})" if isinstance(fl, (int, float)) and ref is not None and r["impl"] != ref_impl else "-"
    fls = f"{fl:.6f}" if isinstance(fl, (int, float)) else "-"
    name = r["impl"]
    if name == "ami":
        name += " (peers' data)" if r.get("data") else " (own data: loss not comparable)"
    every = ", ".join(str(v) for v in r["rounds"])
    print(f"| {name} | {r['threads']} | {r['median_ms']:.3f} | {r['samples_per_s']:.0f} | {every} | {fls} | {diff} | {load1(r)} |")
peers_all = [r for r in runs if r["impl"] != "ami"]
best_any = max(peers_all, key=lambda r: r["samples_per_s"], default=None)
print("\n| threads | ami samples/s | best peer | best peer samples/s | ami / best peer | ami / best peer (any threads) |")
print("|---|---|---|---|---|---|")
for th in sorted(by_th):
    d = by_th[th]
    peers = [r for i, r in d.items() if i != "ami"]
    best = max(peers, key=lambda r: r["samples_per_s"], default=None)
    ami = d.get("ami")
    a = f"{ami['samples_per_s']:.0f}" if ami else "-"
    b = f"{best['impl']}" if best else "-"
    bs = f"{best['samples_per_s']:.0f}" if best else "-"
    ratio = f"{ami['samples_per_s'] / best['samples_per_s']:.2f}x" if ami and best else "-"
    ratio_any = (f"{ami['samples_per_s'] / best_any['samples_per_s']:.2f}x ({best_any['impl']} {best_any['threads']}t)"
                 if ami and best_any else "-")
    print(f"| {th} | {a} | {b} | {bs} | {ratio} | {ratio_any} |")
