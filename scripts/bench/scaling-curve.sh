#!/usr/bin/env bash
# The test-time scaling curve of the built-in model: accuracy against generated tokens and CPU time
# for greedy, best-of-N, stage search (pairwise judge), stage-beam (rewards) and SWIRES, each at
# several budgets, on the whole test split and on its hardest families (compare, spatial).
#
#   scripts/bench/scaling-curve.sh [BUDGETS] [OUT_DIR]
#   PARALLEL=4 scripts/bench/scaling-curve.sh 2,4,8 docs
#
# One `stagebeam eval --threads 1` per method and budget, PARALLEL at a time (default: the cores),
# with the model's recommended settings for everything else; then scripts/bench/scaling_curve.py
# writes OUT_DIR/scaling-curve.json and OUT_DIR/scaling-curve.svg. A budget is the beam N for
# best-of-N and stage search and the candidates per stage M for stage-beam and SWIRES (which keep
# the recommended N survivors). The time axis is each row's CPU time (one thread), which runs side by
# side or a busy machine barely change; wall times are in the JSON too, comparable only when the
# runs had the machine to themselves (the script records the load average before and after).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
source "$root/scripts/find-stagebeam.sh"
find_stagebeam scaling-curve.sh
budgets="${1:-2,4,8}" out="${2:-$root/docs}" parallel="${PARALLEL:-$(nproc)}"
dataset="$root/datasets/shapes/test.jsonl"
# WORK_DIR keeps each eval's report and log (for a run to look into); else a temporary directory.
if [[ -n "${WORK_DIR:-}" ]]; then work="$WORK_DIR"; mkdir -p "$work"; else work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT; fi

rows=("greedy 1")
for method in best-of-n stage stage-beam swires; do
  for budget in ${budgets//,/ }; do rows+=("$method $budget"); done
done
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%s\n' "${rows[@]}" | xargs -P "$parallel" -L 1 bash -c '
  method="$0" budget="$1"
  "'"$bin"'" eval --dataset "'"$dataset"'" --methods "$method" --beam "$budget" --threads 1 --no-judge-pairs --json \
    > "'"$work"'/$method-$budget.json" 2> "'"$work"'/$method-$budget.log" \
    || { echo "eval $method $budget failed:" >&2; tail -n 20 "'"$work"'/$method-$budget.log" >&2; exit 255; }'
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

cat > "$work/meta.json" <<META
{"date": "$(date -u +%Y-%m-%dT%H:%MZ)", "commit": "$(git -C "$root" rev-parse --short HEAD)",
 "dataset": "datasets/shapes/test.jsonl", "budgets": "$budgets", "threads_per_eval": 1, "evals_side_by_side": $parallel,
 "cpu": "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')", "cores": $(nproc),
 "load_average_before": "$load_before", "load_average_after": "$load_after",
 "command": "stagebeam eval --methods METHOD --beam BUDGET --threads 1 --no-judge-pairs --json, one per method and budget"}
META
reports=()
for row in "${rows[@]}"; do reports+=("$work/${row// /-}.json"); done
python3 "$root/scripts/bench/scaling_curve.py" "${reports[@]}" --meta "$work/meta.json" \
  --json-out "$out/scaling-curve.json" --svg-out "$out/scaling-curve.svg"
echo "wrote $out/scaling-curve.json and $out/scaling-curve.svg (load average $load_before before, $load_after after)"
