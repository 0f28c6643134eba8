#!/usr/bin/env bash
# The test-time scaling curve of the built-in model: accuracy against generated tokens and wall time
# for greedy, best-of-N, stage search (pairwise judge), stage-beam (rewards) and SWIRES, each at
# several budgets, on the whole test split and on its hardest families (compare, spatial).
#
#   scripts/bench/scaling-curve.sh [BUDGETS] [OUT_DIR]
#   scripts/bench/scaling-curve.sh 2,4,8 docs
#
# Two `stagebeam eval` runs side by side, one thread each (the tournament methods in one, the reward
# methods in the other), with the model's recommended settings for everything else; then
# scripts/bench/scaling_curve.py writes OUT_DIR/scaling-curve.json and OUT_DIR/scaling-curve.svg.
# A budget is the beam N for best-of-N and stage search and the candidates per stage M for stage-beam
# and SWIRES (which keep the recommended N survivors). The time axis is each row's CPU time (one
# thread per run), which a busy machine barely changes; wall times are in the JSON too, comparable
# only on an idle machine (the script records the load average before and after).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
source "$root/scripts/find-stagebeam.sh"
find_stagebeam scaling-curve.sh
budgets="${1:-2,4,8}" out="${2:-$root/docs}"
dataset="$root/datasets/shapes/test.jsonl"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
"$bin" eval --dataset "$dataset" --methods greedy,best-of-n,stage --beam "$budgets" --threads 1 --no-judge-pairs --json \
  > "$work/tournament.json" 2> "$work/tournament.log" &
tournament=$!
"$bin" eval --dataset "$dataset" --methods stage-beam,swires --beam "$budgets" --threads 1 --no-judge-pairs --json \
  > "$work/reward.json" 2> "$work/reward.log" &
reward=$!
wait "$tournament" || { tail -n 20 "$work/tournament.log" >&2; exit 1; }
wait "$reward" || { tail -n 20 "$work/reward.log" >&2; exit 1; }
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

cat > "$work/meta.json" <<META
{"date": "$(date -u +%Y-%m-%dT%H:%MZ)", "commit": "$(git -C "$root" rev-parse --short HEAD)",
 "dataset": "datasets/shapes/test.jsonl", "budgets": "$budgets", "threads_per_run": 1,
 "cpu": "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')", "cores": $(nproc),
 "load_average_before": "$load_before", "load_average_after": "$load_after",
 "commands": ["stagebeam eval --methods greedy,best-of-n,stage --beam $budgets --threads 1 --no-judge-pairs --json",
              "stagebeam eval --methods stage-beam,swires --beam $budgets --threads 1 --no-judge-pairs --json"]}
META
python3 "$root/scripts/bench/scaling_curve.py" "$work/tournament.json" "$work/reward.json" --meta "$work/meta.json" \
  --json-out "$out/scaling-curve.json" --svg-out "$out/scaling-curve.svg"
echo "wrote $out/scaling-curve.json and $out/scaling-curve.svg (load average $load_before before, $load_after after)"
