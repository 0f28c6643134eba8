#!/usr/bin/env bash
# Latency against beam width with 1, 2, … generate workers: for each worker count a fresh local
# cluster (coordinator, W generate workers with worker k pinned to core k mod nproc, one judge
# worker; --threads 1 each) answers the first ITEMS questions of each family of the built-in test set
# one at a time, with stage-level search at every beam and greedy; `eval`'s table gives seconds per row (÷ n =
# latency per question) and its profile where the time went.
#
#   scripts/bench/beam-scaling.sh [ITEMS] [WORKERS] [BEAMS] [TOURNAMENT] [EVAL_OPTIONS]
#   scripts/bench/beam-scaling.sh 1 "1 2" 1,2,4,8,16 bracket "--limit 3"
#
# STAGEBEAM picks the executable (default .build/release/stagebeam).
set -euo pipefail
items="${1:-1}" workers="${2:-1 2}" beams="${3:-1,2,4,8,16}" tournament="${4:-bracket}" options="${5:-}"
bin="${STAGEBEAM:-.build/release/stagebeam}"
port="${PORT:-5800}"
dir="$(mktemp -d)"
pids=()
stop_all() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); }
trap 'stop_all; rm -rf "$dir"' EXIT

# The first ITEMS questions of each family of the built-in test set (its images beside them).
ln -s "$PWD/datasets/shapes/images" "$dir/images"
awk -v n="$items" -F'"family": "' '{ split($2, f, "\""); if (count[f[1]]++ < n) print }' datasets/shapes/test.jsonl > "$dir/mix.jsonl"

for w in $workers; do
  endpoint="tcp://127.0.0.1:$port"
  "$bin" coordinator --bind "$endpoint" --journal "$dir/journal-$w.jsonl" > "$dir/coordinator-$w.log" 2>&1 &
  pids+=($!)
  sleep 0.5
  for ((k = 0; k < w; k++)); do
    taskset -c "$((k % $(nproc)))" "$bin" worker --coordinator "$endpoint" --roles generate --worker-id "g$k" --threads 1 \
      --max-batch 16 > "$dir/worker-g$k-$w.log" 2>&1 &
    pids+=($!)
  done
  "$bin" worker --coordinator "$endpoint" --roles judge --worker-id j0 --threads 1 --max-batch 16 > "$dir/worker-j0-$w.log" 2>&1 &
  pids+=($!)
  until [[ "$(grep -c 'worker registered' "$dir/coordinator-$w.log" || true)" -ge $((w + 1)) ]]; do sleep 0.2; done
  echo "== $w generate worker(s) + 1 judge worker, tournament $tournament, $items question(s)"
  "$bin" eval --coordinator "$endpoint" --methods greedy,stage --beam "$beams" --tournament "$tournament" --dataset "$dir/mix.jsonl" --profile $options
  stop_all
  port=$((port + 1))
done
