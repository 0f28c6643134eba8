#!/usr/bin/env bash
# Beam width against latency with far more workers than this machine has cores: a real coordinator
# (real sockets, real journal) drives K simulated workers (`stagebeam simulate-workers`: the real
# protocol, candidates and verdicts replayed from search records of the built-in model, latencies
# from that model's measured engine times). What flattens the curve is then the coordinator's own
# work: dispatch, journal, fan-in.
#
#   scripts/bench/scaling-sim.sh [WORKER_COUNTS] [BEAMS] [ITEMS]
#   scripts/bench/scaling-sim.sh "16 64 256" 1,4,16,64 3
#
# Steps: (1) record 4 searches (beam 4, bracket) on the real engine with `stagebeam run --json`;
# (2) measure the decode step time at 1–16 sequences with `stagebeam bench`; (3) for each K, a fresh
# coordinator and K simulated workers (each generates and judges, 16 credits), then `stagebeam eval
# --coordinator` at every beam; reports latency per question and the coordinator's CPU seconds and
# journal fsyncs. STAGEBEAM picks the executable (default .build/release/stagebeam).
set -euo pipefail
counts="${1:-16 64 256}" beams="${2:-1,4,16,64}" items="${3:-3}"
bin="${STAGEBEAM:-.build/release/stagebeam}"
port="${PORT:-5820}"
dir="$(mktemp -d)"
pids=()
stop_all() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); }
trap 'stop_all; rm -rf "$dir"' EXIT

dataset=datasets/shapes/test.jsonl
records=()
for i in 0 1 2 3; do
  line="$(sed -n "$((i + 1))p" "$dataset")"
  question="$(printf '%s' "$line" | sed -E 's/.*"question": "([^"]*)".*/\1/')"
  image="datasets/shapes/$(printf '%s' "$line" | sed -E 's/.*"image": "([^"]*)".*/\1/')"
  "$bin" run --threads 1 --beam 4 --tournament bracket --seed "$i" --image "$image" --question "$question" --json > "$dir/record-$i.json"
  records+=("$dir/record-$i.json")
done
steps="$("$bin" bench --prompt-tokens 64 --gen-tokens 32 --batch 1,2,4,8,16 --threads 1 --repeats 2 --json |
  tr -d ' \n' | grep -o '"batch":[0-9]*,[^}]*"decode_tokens_per_second_per_sequence":[0-9.]*' |
  sed -E 's/"batch":([0-9]+),.*"decode_tokens_per_second_per_sequence":([0-9.]+)/\1 \2/' |
  awk '{ printf "%s%d:%.3f", (NR > 1 ? "," : ""), $1, 1000 / $2 }')"
echo "decode step ms by sequences (stagebeam bench, 1 thread): $steps"
records_list="$(IFS=,; echo "${records[*]}")"

for k in $counts; do
  endpoint="tcp://127.0.0.1:$port"
  "$bin" coordinator --bind "$endpoint" --journal "$dir/journal-$k.jsonl" --max-running-jobs 64 \
    --metrics-port $((port + 1000)) --log-level warning > "$dir/coordinator-$k.log" 2>&1 &
  coordinator=$!
  pids+=($coordinator)
  sleep 0.5
  "$bin" simulate-workers --coordinator "$endpoint" --workers "$k" --max-batch 16 --records "$records_list" \
    --decode-step-ms "$steps" --log-level warning > "$dir/sim-$k.log" 2>&1 &
  pids+=($!)
  until [[ "$(curl -s "http://127.0.0.1:$((port + 1000))/metrics" | grep -c '^stagebeam_worker_up' || true)" -ge "$k" ]]; do
    sleep 0.5
  done
  cpu_before="$(awk '{ print $14 + $15 }' "/proc/$coordinator/stat")"
  syncs_before="$(curl -s "http://127.0.0.1:$((port + 1000))/metrics" | awk '/^stagebeam_journal_syncs_total/ { print $2 }')"
  echo "== $k simulated workers, $items question(s) per beam"
  "$bin" eval --coordinator "$endpoint" --methods greedy,stage --beam "$beams" --tournament bracket --limit "$items"
  cpu_after="$(awk '{ print $14 + $15 }' "/proc/$coordinator/stat")"
  syncs_after="$(curl -s "http://127.0.0.1:$((port + 1000))/metrics" | awk '/^stagebeam_journal_syncs_total/ { print $2 }')"
  echo "coordinator CPU: $(awk -v a="$cpu_before" -v b="$cpu_after" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (b - a) / hz }') s;" \
    "journal fsyncs: $(awk -v a="$syncs_before" -v b="$syncs_after" 'BEGIN { print b - a }')"
  stop_all
  port=$((port + 2))
done
