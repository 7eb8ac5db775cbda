#!/usr/bin/env bash
# Runs `ami bench` and the Python peers (../shared/workload/plan_*.py)
# back to back on the same machine, one JSON line per run, then prints the
# comparison table. Does not copy the peers: it runs them where they live.
#
#   scripts/peers/run.sh [OUT.jsonl]
#
# Env: PY (a python with numpy, safetensors, jax[cpu]; torch for the torch
# rows), WORKLOAD_DIR (default ../shared/workload), AMI (default
# target/release/ami; build it with `cargo build --release -p ami-agents`),
# SIZES, PLANNERS, THREADS, IMPLS (subset of "ami jax numpy torch
# torch-compile"), MIN_TIME (seconds of timed calls per run, default 3),
# PEAK=1 to measure the sgemm ceiling first (peak_np_jax.py).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${1:-$ROOT/target/peers.jsonl}
PY=${PY:-python3}
WORKLOAD_DIR=${WORKLOAD_DIR:-$ROOT/../shared/workload}
AMI=${AMI:-$ROOT/target/release/ami}
SIZES=${SIZES:-"small medium large"}
PLANNERS=${PLANNERS:-"cem mppi gd"}
THREADS=${THREADS:-"1 2"}
IMPLS=${IMPLS:-"ami jax"}
MIN_TIME=${MIN_TIME:-3}
mkdir -p "$(dirname "$OUT")"
: > "$OUT"
echo "{\"kind\": \"env\", \"when\": \"start\", \"uptime\": \"$(uptime)\"}" >> "$OUT"
if [ "${PEAK:-0}" = 1 ]; then
  for th in $THREADS; do
    "$PY" "$ROOT/scripts/peers/peak_np_jax.py" --threads "$th" >> "$OUT"
  done
fi
for size in $SIZES; do
  for planner in $PLANNERS; do
    for th in $THREADS; do
      for impl in $IMPLS; do
        case $impl in
          ami) "$AMI" bench --workload "$WORKLOAD_DIR/workload_$size.safetensors" --planner "$planner" \
                 --threads "$th" --seeds 10 --min-time "$MIN_TIME" --json >> "$OUT" ;;
          jax) (cd "$WORKLOAD_DIR" && "$PY" plan_jax.py --size "$size" --planner "$planner" --threads "$th" --min-time "$MIN_TIME") >> "$OUT" ;;
          numpy) [ "$planner" = gd ] || (cd "$WORKLOAD_DIR" && "$PY" plan_numpy.py --size "$size" --planner "$planner" --threads "$th" --min-time "$MIN_TIME") >> "$OUT" ;;
          torch) (cd "$WORKLOAD_DIR" && "$PY" plan_torch.py --size "$size" --planner "$planner" --threads "$th" --min-time "$MIN_TIME") >> "$OUT" ;;
          torch-compile) (cd "$WORKLOAD_DIR" && "$PY" plan_torch.py --compile --size "$size" --planner "$planner" --threads "$th" --min-time "$MIN_TIME") >> "$OUT" ;;
        esac
      done
    done
  done
done
echo "{\"kind\": \"env\", \"when\": \"end\", \"uptime\": \"$(uptime)\"}" >> "$OUT"
python3 "$ROOT/scripts/peers/table.py" "$OUT"
