#!/usr/bin/env bash
# Batch throughput with 1, 2, … workers: for each worker count, a fresh local cluster (coordinator +
# W workers, --threads 1 each) answers the same generated JSONL batch; prints each run's summary line.
#
#   ops/recipes/batch-scaling.sh --model Tests/Fixtures/models/llama-gqa --items 40 --workers "1 2" \
#       --beam 4 --max-stage-tokens 32 --concurrency 4
#
# --pin puts worker k on core k (taskset), so workers do not share cores.
# STAGEBEAM picks the executable (default: .build/release/stagebeam).
set -euo pipefail
model="" items=40 workers="1 2" beam=4 tokens=32 concurrency=4 port=5700 max_batch=8 pin=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --model) model="$2"; shift 2 ;;
    --items) items="$2"; shift 2 ;;
    --workers) workers="$2"; shift 2 ;;
    --beam) beam="$2"; shift 2 ;;
    --max-stage-tokens) tokens="$2"; shift 2 ;;
    --concurrency) concurrency="$2"; shift 2 ;;
    --max-batch) max_batch="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --pin) pin=1; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[[ -n "$model" ]] || { echo "--model DIR is required" >&2; exit 2; }
bin="${STAGEBEAM:-.build/release/stagebeam}"
dir="$(mktemp -d)"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT

for ((i = 0; i < items; i++)); do
  printf '{"id": "item-%d", "question": "Question %d: what is %d times %d?"}\n' "$i" "$i" "$i" "$((i + 3))"
done > "$dir/items.jsonl"

run=0
for w in $workers; do
  run=$((run + 1))
  endpoint="tcp://127.0.0.1:$port"
  "$bin" coordinator --bind "$endpoint" --journal "$dir/journal-$run.jsonl" > "$dir/coordinator-$run.log" 2>&1 &
  pids+=($!)
  sleep 0.5
  for ((k = 0; k < w; k++)); do
    ${pin:+taskset -c $((k % $(nproc)))} "$bin" worker --coordinator "$endpoint" --model "$model" --worker-id "w$k" --threads 1 --max-batch "$max_batch" \
      > "$dir/worker-$run-$k.log" 2>&1 &
    pids+=($!)
  done
  until [[ "$(grep -c 'worker registered' "$dir/coordinator-$run.log" || true)" -ge "$w" ]]; do sleep 0.2; done
  summary="$("$bin" batch --coordinator "$endpoint" --input "$dir/items.jsonl" --output "$dir/out-$run.jsonl" --beam "$beam" \
    --max-stage-tokens "$tokens" --concurrency "$concurrency" 2>&1 | grep '^batch: .* run now')"
  echo "workers $w: $summary"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
  port=$((port + 1))
done
