#!/usr/bin/env bash
# Back-pressure check of a coordinator, on loopback with the test model (as cluster/local.sh runs it):
#  1. a burst of COUNT job submissions from one peer while W workers serve the accepted ones;
#  2. PEERS peers each sending a frame of FRAME_MB megabytes at once (over every limit).
# Prints what the burst peer saw (accepted / refused by code / results / answered twice / never
# answered), workers lost (the coordinator's stagebeam_worker_removals_total by reason, read from
# /metrics, not from logs), journal records per fsync, and the coordinator's peak resident memory
# (VmHWM) after each step.
#
#   scripts/burst.sh [--count 10000] [--workers 2] [--max-queued-jobs 256] [--peers 8] [--frame-mb 120]
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
count=10000
workers=2
max_queued=256
peers=8
frame_mb=120
while [[ $# -gt 0 ]]; do
  case "$1" in
    --count) count="$2"; shift 2 ;;
    --workers) workers="$2"; shift 2 ;;
    --max-queued-jobs) max_queued="$2"; shift 2 ;;
    --peers) peers="$2"; shift 2 ;;
    --frame-mb) frame_mb="$2"; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "burst.sh: unknown option $1 (see --help)" >&2; exit 64 ;;
  esac
done

source "$root/scripts/find-stagebeam.sh"
find_stagebeam burst.sh
model="$root/Tests/Fixtures/models/llama-gqa"
dir="$(mktemp -d "${TMPDIR:-/tmp}/stagebeam-burst-XXXXXX")"
pids=()
cleanup() {
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[i]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

"$bin" coordinator --bind "tcp://127.0.0.1:*" --journal "$dir/journal.jsonl" --heartbeat-ms 200 --liveness 3 \
  --max-queued-jobs "$max_queued" --metrics-port 0 >"$dir/coordinator.out" 2>"$dir/coordinator.err" &
coordinator=$!
pids+=("$coordinator")
for _ in $(seq 200); do grep -q "^metrics on" "$dir/coordinator.out" 2>/dev/null && break; sleep 0.1; done
endpoint="$(grep -o 'tcp://[0-9.:]*' "$dir/coordinator.out" | head -1)"
metrics="$(grep -o 'http://[^ ]*/metrics' "$dir/coordinator.out" | head -1)"
[[ -n "$endpoint" && -n "$metrics" ]] || { echo "burst.sh: the coordinator did not start:" >&2; cat "$dir/coordinator.err" >&2; exit 1; }

for i in $(seq "$workers"); do
  "$bin" worker --coordinator "$endpoint" --model "$model" --worker-id "w$i" --roles generate,judge --max-batch 8 \
    --heartbeat-ms 200 --liveness 3 >"$dir/worker$i.out" 2>"$dir/worker$i.err" &
  pids+=($!)
done
# The sum of the samples whose line starts with $1.
metric() { curl -s "$metrics" | grep -F "$1" | grep -v '^#' | awk '{sum += $NF} END {print sum + 0}'; }
for _ in $(seq 600); do
  [[ "$(curl -s "$metrics" | awk '/^stagebeam_workers\{role="generate"\}/ {print $2}')" == "$workers" ]] && break
  sleep 0.1
done
peak() { awk '/VmHWM/ {print $2 / 1024 " MB"}' "/proc/$coordinator/status"; }
echo "coordinator $endpoint · $workers workers · max queued jobs $max_queued · peak RSS at start $(peak)"

echo "burst: $count submissions from one peer…"
"$bin" probe burst --coordinator "$endpoint" --count "$count" --timeout-s 1800 | tee "$dir/burst.json"
echo "workers lost (missed heartbeats): $(metric 'stagebeam_worker_removals_total{reason="missed_heartbeats"}')"
echo "workers reconnected: $(metric 'stagebeam_worker_removals_total{reason="reconnected"}')"
echo "journal: $(metric stagebeam_journal_records_total) records in $(metric stagebeam_journal_syncs_total) fsyncs"
echo "coordinator peak RSS after the burst: $(peak)"

echo "oversized: $peers peers × $frame_mb MB frames…"
"$bin" probe oversized --coordinator "$endpoint" --peers "$peers" --bytes $((frame_mb * 1000000)) | tee "$dir/oversized.json"
echo "coordinator peak RSS after the oversized frames: $(peak)"
kill -0 "$coordinator" && echo "coordinator still running"
echo "logs: $dir"
