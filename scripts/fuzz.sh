#!/usr/bin/env bash
# Frame fuzzing: a coordinator on loopback takes FRAMES hostile frames from PEERS connections —
# valid envelopes of every message kind mutated at the protobuf level, and random bytes (see
# `stagebeam probe fuzz`) — while a status request must be answered every 20,000 frames. Prints the
# probe's figures, whether the coordinator is still running, and its peak resident memory.
# Deterministic for a seed.
#
#   scripts/fuzz.sh [--frames 1000000] [--peers 4] [--seed 1]
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
frames=1000000
peers=4
seed=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --frames) frames="$2"; shift 2 ;;
    --peers) peers="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "fuzz.sh: unknown option $1 (see --help)" >&2; exit 64 ;;
  esac
done
source "$root/scripts/find-stagebeam.sh"
find_stagebeam fuzz.sh
dir="$(mktemp -d "${TMPDIR:-/tmp}/stagebeam-fuzz-XXXXXX")"

# Jobs the mutations leave valid are accepted and wait for a worker that never comes: they fail
# after the no-worker timeout, and the queue bound refuses the rest.
"$bin" coordinator --bind "tcp://127.0.0.1:*" --journal "$dir/journal.jsonl" --no-worker-timeout-s 5 --max-queued-jobs 256 \
  --log-level error >"$dir/coordinator.out" 2>"$dir/coordinator.err" &
coordinator=$!
trap 'kill -TERM $coordinator 2>/dev/null || true; wait 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q listening "$dir/coordinator.out" 2>/dev/null && break; sleep 0.1; done
endpoint="$(grep -o 'tcp://[0-9.:]*' "$dir/coordinator.out" | head -1)"
[[ -n "$endpoint" ]] || { echo "fuzz.sh: the coordinator did not start:" >&2; cat "$dir/coordinator.err" >&2; exit 1; }

"$bin" probe fuzz --coordinator "$endpoint" --frames "$frames" --peers "$peers" --seed "$seed"
kill -0 "$coordinator" 2>/dev/null && echo "coordinator still running" || { echo "coordinator DIED"; tail -20 "$dir/coordinator.err"; }
echo "coordinator peak RSS: $(awk '/VmHWM/ {print int($2 / 1024) " MB"}' "/proc/$coordinator/status")"
echo "logs: $dir"
