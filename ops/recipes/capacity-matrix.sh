#!/usr/bin/env bash
# "How many workers do I need for beam N at rate R?": for each worker count, a fresh local cluster
# (coordinator + W workers, --threads 1 each) is swept by `stagebeam loadtest --sweep --beams …`;
# the per-run CSVs are merged into PREFIX.csv with a `workers` column, and each W keeps its own
# PREFIX-wW.{json,csv,html}. Read the saturation rate per (workers, beam) from the output.
#
#   ops/recipes/capacity-matrix.sh --model Tests/Fixtures/models/llama-gqa --workers "1 2" --beams 2,4 \
#       --slo latency_p99:3s --duration 6 --output capacity
#
# STAGEBEAM picks the executable (default: .build/release/stagebeam).
set -euo pipefail
model="" workers="1 2" beams="2,4" slo="latency_p99:20s" duration=10 tokens=16 start=0.5 factor=2 steps=6 output=capacity port=5800
while [[ $# -gt 0 ]]; do
  case "$1" in
    --model) model="$2"; shift 2 ;;
    --workers) workers="$2"; shift 2 ;;
    --beams) beams="$2"; shift 2 ;;
    --slo) slo="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --max-stage-tokens) tokens="$2"; shift 2 ;;
    --start-rate) start="$2"; shift 2 ;;
    --rate-factor) factor="$2"; shift 2 ;;
    --max-steps) steps="$2"; shift 2 ;;
    --output) output="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[[ -n "$model" ]] || { echo "--model DIR is required" >&2; exit 2; }
bin="${STAGEBEAM:-.build/release/stagebeam}"
dir="$(mktemp -d)"
pids=()
stop() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); }
trap 'stop; rm -rf "$dir"' EXIT

first=1
for w in $workers; do
  endpoint="tcp://127.0.0.1:$port"
  "$bin" coordinator --bind "$endpoint" --journal "$dir/journal-$w.jsonl" > "$dir/coordinator-$w.log" 2>&1 &
  pids+=($!)
  sleep 0.5
  for ((k = 0; k < w; k++)); do
    "$bin" worker --coordinator "$endpoint" --model "$model" --worker-id "w$k" --threads 1 > "$dir/worker-$w-$k.log" 2>&1 &
    pids+=($!)
  done
  until [[ "$(grep -c 'worker registered' "$dir/coordinator-$w.log" || true)" -ge "$w" ]]; do sleep 0.2; done
  echo "== $w worker(s)"
  "$bin" loadtest --coordinator "$endpoint" --sweep --beams "$beams" --duration "$duration" --max-stage-tokens "$tokens" \
    --start-rate "$start" --rate-factor "$factor" --max-steps "$steps" --slo "$slo" --output "$output-w$w" 2>/dev/null \
    | grep -E '^(saturation|sweep stopped)'
  if [[ $first == 1 ]]; then head -1 "$output-w$w.csv" | sed 's/^/workers,/' > "$output.csv"; first=0; fi
  tail -n +2 "$output-w$w.csv" | sed "s/^/$w,/" >> "$output.csv"
  stop
  port=$((port + 1))
done
echo "wrote $output.csv"
