#!/usr/bin/env bash
# Runs `ami bench` and the Python peers (../shared/workload/*.py) back to
# back on the same machine, one JSON line per run, then prints the
# comparison table. Does not copy the peers: it runs them where they live.
#
#   scripts/peers/run.sh [OUT.jsonl]            planning yardstick (default)
#   TRAIN=1 scripts/peers/run.sh [OUT.jsonl]    training yardstick
#
# Planning (default; OUT defaults to target/peers.jsonl): per size, planner,
# thread count and impl, `ami bench --workload ... --planner ...` against
# plan_{jax,numpy,torch}.py; table by scripts/peers/table.py.
#
# Training (TRAIN=1; OUT defaults to target/peers-train.jsonl): first
# writes the peers' data, batch rows and initial weights once with
# "$PY" scripts/peers/train_data.py (train_peers.py's generation, same
# seeds) into TRAIN_DATA; then per thread count,
# `ami bench --train --data TRAIN_DATA --threads N --json $AMI_TRAIN_ARGS`
# and train_peers.py --impl torch|torch-compile|jax --threads N (K=5
# members of (S+A)->200->200->200->2S SiLU, S=17, A=6, Gaussian NLL, Adam
# 1e-3, batch 256 per member; one line each with samples_per_s, median_ms,
# final_loss): ami and the peers train on the same batches from the same
# weights, so their final losses agree. Table (samples/s, final loss, ami
# / best peer per thread count) by scripts/peers/train_table.py. A failing
# run is logged as a {"kind": "error"} line and the other runs go on.
#
# Env: PY (a python with numpy, safetensors, jax[cpu]; torch for the torch
# rows; pins in ../shared/workload/requirements-peers.txt), WORKLOAD_DIR
# (default ../shared/workload), AMI (default target/release/ami; build it
# with `cargo build --release -p ami-agents`), THREADS (default "1 2").
# Planning only: SIZES, PLANNERS, IMPLS (subset of "ami jax numpy torch
# torch-compile"), MIN_TIME (seconds of timed calls per run, default 3),
# PEAK=1 to measure the sgemm ceiling first (peak_np_jax.py).
# Training only: REPEAT (rounds of every impl and thread count, default 3:
# on a shared machine one run's median moves by 20%, so the table takes the
# median over rounds run back to back), TRAIN_IMPLS (subset of "ami torch
# torch-compile jax", the default), TRAIN_DATA (default target/train_data.safetensors; "none": ami
# trains on its own RNG's data, its final loss is then not comparable),
# AMI_TRAIN_ARGS (extra flags for ami, e.g. "--isa avx2"; the shape flags
# "--width 200 --members 5 ..." only with TRAIN_DATA=none, with --data the
# shapes are the file's).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TRAIN=${TRAIN:-0}
if [ "$TRAIN" = 1 ]; then OUT=${1:-$ROOT/target/peers-train.jsonl}; else OUT=${1:-$ROOT/target/peers.jsonl}; fi
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
if [ "$TRAIN" = 1 ]; then
  TRAIN_IMPLS=${TRAIN_IMPLS:-"ami torch torch-compile jax"}
  TRAIN_DATA=${TRAIN_DATA:-$ROOT/target/train_data.safetensors}
  DATA_ARGS=()
  if [ "$TRAIN_DATA" != none ]; then
    # One file for every ami run: train_peers.py's X, Y, idx and init().
    "$PY" "$ROOT/scripts/peers/train_data.py" --out "$TRAIN_DATA" >&2
    DATA_ARGS=(--data "$TRAIN_DATA")
  fi
  # Runs "$@" appending its stdout to OUT; on failure logs an error line.
  guarded() {
    local what=$1; shift
    local rc=0
    "$@" >> "$OUT" || rc=$?
    if [ "$rc" != 0 ]; then
      echo "run.sh: $what failed (exit $rc)" >&2
      echo "{\"kind\": \"error\", \"what\": \"$what\", \"rc\": $rc}" >> "$OUT"
    fi
  }
  peer() { (cd "$WORKLOAD_DIR" && "$PY" train_peers.py --impl "$1" --threads "$2"); }
  for rep in $(seq "${REPEAT:-3}"); do
  for th in $THREADS; do
    for impl in $TRAIN_IMPLS; do
      case $impl in
        # shellcheck disable=SC2086  # AMI_TRAIN_ARGS is a list of flags
        ami) guarded "ami bench --train --threads $th" "$AMI" bench --train "${DATA_ARGS[@]}" --threads "$th" --json ${AMI_TRAIN_ARGS:-} ;;
        torch|torch-compile|jax)
          guarded "train_peers.py --impl $impl --threads $th" peer "$impl" "$th" ;;
        *) echo "run.sh: unknown TRAIN_IMPLS entry $impl" >&2 ;;
      esac
    done
  done
  done
  echo "{\"kind\": \"env\", \"when\": \"end\", \"uptime\": \"$(uptime)\"}" >> "$OUT"
  python3 "$ROOT/scripts/peers/train_table.py" "$OUT"
  exit 0
fi
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
