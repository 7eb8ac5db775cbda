#!/usr/bin/env python3
"""The Mode-1 policy's numbers on Pendulum, evaluation seeds 100..109.

Runs agents/examples/pendulum-distill.toml (which writes the distilled
policy), then variants of agents/examples/pendulum.toml on seeds 100..109:
random actions, the planner, the policy alone, planning with half the
iterations or samples with and without the policy's proposals, and
Mode-1 / Mode-2 switching. Prints a markdown table.

    cargo build --release -p ami-agents
    python3 scripts/distill_table.py [--ami target/release/ami]
"""

import argparse
import json
import pathlib
import shutil
import subprocess
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
POLICY_NODE = '[[nodes]]\nname = "policy"\nkind = "policy"\nimplementation = "learned"\nparams = { load = "policy.safetensors" }\n\n'


def run(ami, path):
    out = subprocess.run([ami, "run", str(path), "--json"], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def variant(tmp, name, actor="", policy=False, iterations=6, samples=256):
    src = (ROOT / "agents/examples/pendulum.toml").read_text()
    s = src.replace("seed = 0        # episodes use seeds 0..9", "seed = 100")
    s = s.replace('implementation = "cem"\n[nodes.params]\n', 'implementation = "cem"\n[nodes.params]\n' + actor)
    s = s.replace("iterations = 6", f"iterations = {iterations}")
    s = s.replace("samples = 256", f"samples = {samples}").replace("elites = 24", f"elites = {max(2, 24 * samples // 256)}")
    if policy:
        s = s.replace('[[nodes]]\nname = "env"', POLICY_NODE + '[[nodes]]\nname = "env"')
    path = tmp / f"{name}.toml"
    path.write_text(s)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ami", default=str(ROOT / "target/release/ami"))
    args = ap.parse_args()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="ami-distill-"))
    distill = tmp / "distill.toml"
    distill.write_text((ROOT / "agents/examples/pendulum-distill.toml").read_text().replace("pendulum-policy.safetensors", "policy.safetensors"))
    d = run(args.ami, distill)
    rows = []

    def row(label, r, note=""):
        m = r["modes"]
        n = m["reactive"] + m["planned"]
        rows.append((label, r["mean_return"], m, n, note))
        return r["mean_return"]

    r_random = row("random actions", run(args.ami, variant(tmp, "random", "explore_episodes = 10\n")))
    r_plan = row("CEM h30, 256 samples x 6 iterations (the planner)", run(args.ami, variant(tmp, "plan")))
    ev = d["eval"]
    ev["mean_plan_ms"] = ev["modes"]["reactive_ms"]
    r_pol = row("the distilled policy alone (`pendulum-distill.toml`, 12 episodes)", ev)
    for label, kw in [
        ("CEM, 3 iterations", dict(iterations=3)),
        ("CEM, 128 samples", dict(samples=128)),
        ("CEM, 1 iteration", dict(iterations=1)),
        ("CEM, 32 samples", dict(samples=32)),
    ]:
        row(label, run(args.ami, variant(tmp, label.split(",")[1].strip().replace(" ", "-"), **kw)))
        row(label + " + the policy's proposals", run(args.ami, variant(tmp, "p-" + label.split(",")[1].strip().replace(" ", "-"), 'policy = "policy"\n', True, **kw)))
    for margin in [0.1, 0.0]:
        actor = f'policy = "policy"\nmode = "switch"\nswitch_margin = {margin}\n'
        row(f"switch: Mode-1 when E_policy <= E_plan + {margin} \\|E_plan\\|", run(args.ami, variant(tmp, f"switch{margin}", actor, True)))
    span = r_plan - r_random
    print(f"random {r_random:.1f}, planner {r_plan:.1f}; policy (R - R_random) / (R_planner - R_random) = {(r_pol - r_random) / span:.3f}\n")
    print("| agent | mean return | normalised | Mode-1 / Mode-2 decisions | ms per Mode-1 / Mode-2 decision |")
    print("|---|---|---|---|---|")
    for label, ret, m, n, _ in rows:
        share = f"{m['reactive']} / {m['planned']}" if n else "-"
        ms = f"{m['reactive_ms']:.4f} / {m['planned_ms']:.2f}"
        print(f"| {label} | {ret:.1f} | {(ret - r_random) / span:.3f} | {share} | {ms} |")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
