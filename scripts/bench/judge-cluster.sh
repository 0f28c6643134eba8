#!/usr/bin/env bash
# Latency of greedy and stage search (beam 4) on a local cluster of 2 generate workers (worker k
# pinned to core k mod nproc) and J judge workers (`--threads 1` each, 16 credits), for each J and
# each stagebeam executable given: the first ITEMS questions of the built-in test set answered one
# at a time (`eval --coordinator … --profile`), with the model's recommended settings (random
# knockout, written verdicts), with logprob verdicts, and both again with a bracket tournament (or
# the eval options VARIANTS lists, separated by "|"; an empty one is the recommended settings, which
# also runs greedy). Every eval prints `uptime` before it starts. Compare executables only within one
# run of this script: the machine's load changes.
#
#   scripts/bench/judge-cluster.sh [ITEMS] [JUDGES] [EXECUTABLES] [VARIANTS]
#   scripts/bench/judge-cluster.sh 40 "1 2" "/tmp/stagebeam-before .build/release/stagebeam"
#   scripts/bench/judge-cluster.sh 10 "1 2" "/tmp/stagebeam-before .build/release/stagebeam" "|--judge-mode logprob"
set -euo pipefail
items="${1:-40}" judges="${2:-1 2}" executables="${3:-.build/release/stagebeam}"
model="$PWD/models/stagebeam-shapes"
port="${PORT:-5900}"
dir="$(mktemp -d)"
pids=()
stop_all() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); }
trap 'stop_all; rm -rf "$dir"' EXIT

IFS='|' read -r -a variants <<< "${4:-|--judge-mode logprob|--tournament bracket|--tournament bracket --judge-mode logprob}"

for j in $judges; do
  for bin in $executables; do
    endpoint="tcp://127.0.0.1:$port"
    "$bin" coordinator --bind "$endpoint" --journal "$dir/journal-$port.jsonl" > "$dir/coordinator-$port.log" 2>&1 &
    pids+=($!)
    sleep 0.5
    for k in 0 1; do
      taskset -c "$((k % $(nproc)))" "$bin" worker --coordinator "$endpoint" --model "$model" --roles generate --worker-id "g$k" \
        --threads 1 --max-batch 16 > "$dir/worker-g$k-$port.log" 2>&1 &
      pids+=($!)
    done
    for ((k = 0; k < j; k++)); do
      "$bin" worker --coordinator "$endpoint" --model "$model" --roles judge --worker-id "j$k" --threads 1 --max-batch 16 \
        > "$dir/worker-j$k-$port.log" 2>&1 &
      pids+=($!)
    done
    until [[ "$(grep -c 'worker registered' "$dir/coordinator-$port.log" || true)" -ge $((2 + j)) ]]; do sleep 0.2; done
    for variant in "${variants[@]}"; do
      methods=stage
      [[ -z "$variant" ]] && methods=greedy,stage
      echo "== $bin: 2 generate + $j judge worker(s), $items question(s), beam 4 ${variant:-(recommended settings)}"
      uptime
      # shellcheck disable=SC2086
      "$bin" eval --model "$model" --coordinator "$endpoint" --methods "$methods" --beam 4 --limit "$items" --profile $variant
    done
    stop_all
    port=$((port + 1))
  done
done
