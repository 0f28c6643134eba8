#!/usr/bin/env bash
# Where a search's time goes, per stage: candidate prefill and decode, judge prefill and decode, and
# the time calls waited, for each method and beam, first in this process, then on a local cluster
# (coordinator, 2 generate workers pinned to cores 0 and 1, one judge worker; --threads 1 each).
#
#   scripts/bench/search-profile.sh [ITEMS] [METHODS] [BEAMS] [EVAL_OPTIONS]
#   scripts/bench/search-profile.sh 1 greedy,stage,best-of-n 4 "--tournament bracket"
#
# Uses the built-in model and the first ITEMS questions of each family of its test set (7 families)
# with the model's recommended settings. STAGEBEAM picks the executable (default .build/release/stagebeam);
# JUDGE_THREADS the judge worker's threads (default 1: the generate workers are idle while it judges).
set -euo pipefail
items="${1:-1}" methods="${2:-greedy,stage}" beams="${3:-4}" options="${4:-}"
bin="${STAGEBEAM:-.build/release/stagebeam}"
port="${PORT:-5790}"
dir="$(mktemp -d)"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT

# The first ITEMS questions of each family of the built-in test set (its images beside them).
ln -s "$PWD/datasets/shapes/images" "$dir/images"
awk -v n="$items" -F'"family": "' '{ split($2, f, "\""); if (count[f[1]]++ < n) print }' datasets/shapes/test.jsonl > "$dir/mix.jsonl"

echo "== in process (--threads 1)"
"$bin" eval --methods "$methods" --beam "$beams" --dataset "$dir/mix.jsonl" --no-judge-pairs --threads 1 --profile $options

echo "== local cluster: 2 generate workers (cores 0, 1, --threads 1) + 1 judge worker (--threads ${JUDGE_THREADS:-1})"
endpoint="tcp://127.0.0.1:$port"
"$bin" coordinator --bind "$endpoint" --journal "$dir/journal.jsonl" > "$dir/coordinator.log" 2>&1 &
pids+=($!)
sleep 0.5
for k in 0 1; do
  taskset -c "$((k % $(nproc)))" "$bin" worker --coordinator "$endpoint" --roles generate --worker-id "g$k" --threads 1 \
    > "$dir/worker-g$k.log" 2>&1 &
  pids+=($!)
done
"$bin" worker --coordinator "$endpoint" --roles judge --worker-id j0 --threads "${JUDGE_THREADS:-1}" > "$dir/worker-j0.log" 2>&1 &
pids+=($!)
until [[ "$(grep -c 'worker registered' "$dir/coordinator.log" || true)" -ge 3 ]]; do sleep 0.2; done
"$bin" eval --coordinator "$endpoint" --methods "$methods" --beam "$beams" --dataset "$dir/mix.jsonl" --profile $options
