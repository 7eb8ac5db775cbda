#!/usr/bin/env python3
"""Prints the ami-vs-peers table of a run.sh JSONL file (markdown).

Per size and planner: every impl's median ms per thread count, ami's speed-up
over the best peer (any thread count) and over the best single-thread peer,
and the energy reduction (zero - mean energy) as a fraction of the best
peer's. Also the sgemm ceiling rows if the file has them.
"""
import json
import sys
from collections import defaultdict

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
env = [r for r in rows if r.get("kind") == "env"]
peak = [r for r in rows if r.get("kind") == "peak"]
runs = [r for r in rows if "median_ms" in r and "planner" in r]  # not the training lines
for e in env:
    print(f"- {e['when']}: {e['uptime']}")
if peak:
    print("\n| peak impl | n | threads | median GFLOP/s |\n|---|---|---|---|")
    for p in peak:
        print(f"| {p['impl']} | {p['n']} | {p['threads']} | {p['median_gflops']} |")
by = defaultdict(dict)
for r in runs:
    by[(r["size"], r["planner"])][(r["impl"], r["threads"])] = r
print("\n| size | planner | impl | threads | median ms | p10 | p90 | GFLOP/s | mean energy | reduction | load1 |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
summary = []
for (size, planner), d in by.items():
    for (impl, th), r in sorted(d.items(), key=lambda x: (x[0][0] != "ami", x[0])):
        red = r["zero_energy"] - r["mean_energy"]
        print(f"| {size} | {planner} | {impl} | {th} | {r['median_ms']:.3f} | {r['p10_ms']:.3f} | {r['p90_ms']:.3f} | "
              f"{r['gflops']:.1f} | {r['mean_energy']:.2f} | {red:.2f} | {r.get('load1', '')} |")
    peers = {k: v for k, v in d.items() if k[0] != "ami"}
    if not peers:
        continue
    best_any = min(v["median_ms"] for v in peers.values())
    best_1 = min((v["median_ms"] for k, v in peers.items() if k[1] == 1), default=None)
    best_red = max(v["zero_energy"] - v["mean_energy"] for v in peers.values())
    for (impl, th), r in d.items():
        if impl != "ami":
            continue
        red = r["zero_energy"] - r["mean_energy"]
        s1 = f"{best_1 / r['median_ms']:.2f}x" if best_1 else "-"
        summary.append(f"| {size} | {planner} | {th} | {r['median_ms']:.3f} | {best_any:.3f} | {best_any / r['median_ms']:.2f}x | "
                       f"{s1} | {100 * red / best_red:.1f}% |")
print("\n| size | planner | ami threads | ami ms | best peer ms (any threads) | speed-up vs best | vs best 1-thread peer | reduction vs best peer |")
print("|---|---|---|---|---|---|---|---|")
print("\n".join(summary))
